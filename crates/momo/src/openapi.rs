//! The OpenAPI 3.0 document of everything Mkoba serves for MoMo, generated from
//! [`crate::catalogue`] (the same list the router is built from). Served at
//! `/_mkoba/openapi.json`.

use serde_json::{Map, Value, json};

use crate::catalogue::{Auth, Route, routes};

fn string() -> Value {
    json!({"type": "string"})
}

fn obj(properties: Value, required: &[&str]) -> Value {
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The schemas, written from the wire types in `mkoba-api-types`.
fn schemas() -> Value {
    let party = obj(
        json!({"partyIdType": {"type": "string", "enum": ["MSISDN", "EMAIL", "PARTY_CODE"]}, "partyId": string()}),
        &["partyIdType", "partyId"],
    );
    let reason = json!({"oneOf": [string(), r("ErrorReason")], "description": "A bare code string as the real sandbox sends it, or {code, message} with --reason-format object."});
    let result = |party_field: &str| {
        obj(
            json!({
                "financialTransactionId": string(), "externalId": string(), "amount": string(),
                "currency": string(), party_field: r("Party"), "payerMessage": string(),
                "payeeNote": string(),
                "status": {"type": "string", "enum": ["PENDING", "SUCCESSFUL", "FAILED"]},
                "reason": reason.clone(),
            }),
            &["amount", "currency", party_field, "status"],
        )
    };
    let payment = |party_field: &str| {
        obj(
            json!({"amount": string(), "currency": string(), "externalId": string(), party_field: r("Party"), "payerMessage": string(), "payeeNote": string()}),
            &["amount", "currency", party_field],
        )
    };
    let cash_fields = json!({
        "amount": string(), "currency": string(), "payee": r("Party"), "externalId": string(),
        "orginatingCountry": string(), "originalAmount": string(), "originalCurrency": string(),
        "payerMessage": string(), "payeeNote": string(),
        "payerIdentificationType": {"type": "string", "enum": ["PASS", "CPFA", "SRSSA", "NRIN", "OTHR", "DRLC", "SOCS", "AREG", "IDCD", "EMID"]},
        "payerIdentificationNumber": string(), "payerIdentity": string(), "payerFirstName": string(),
        "payerSurName": string(), "payerLanguageCode": string(), "payerEmail": string(),
        "payerMsisdn": string(), "payerGender": string(),
    });
    let mut cash_result = cash_fields.clone();
    cash_result["financialTransactionId"] = string();
    cash_result["status"] = json!({"type": "string", "enum": ["PENDING", "SUCCESSFUL", "FAILED"]});
    cash_result["reason"] = reason.clone();
    let schemas = json!({
        "Party": party,
        "ErrorReason": obj(json!({"code": string(), "message": string()}), &["code", "message"]),
        "GatewayError": obj(json!({"statusCode": {"type": "integer"}, "message": string()}), &["statusCode", "message"]),
        "TokenError": obj(json!({"error": string()}), &["error"]),
        "AccessToken": obj(json!({"access_token": string(), "token_type": string(), "expires_in": {"type": "integer"}}), &["access_token", "token_type", "expires_in"]),
        "ApiUserCreate": obj(json!({"providerCallbackHost": string()}), &["providerCallbackHost"]),
        "ApiUserResult": obj(json!({"providerCallbackHost": string(), "targetEnvironment": string()}), &["providerCallbackHost", "targetEnvironment"]),
        "ApiKeyResult": obj(json!({"apiKey": string()}), &["apiKey"]),
        "Balance": obj(json!({"availableBalance": string(), "currency": string()}), &["availableBalance", "currency"]),
        "BooleanResult": obj(json!({"result": {"type": "boolean"}}), &["result"]),
        "BasicUserInfo": obj(json!({"sub": string(), "name": string(), "given_name": string(), "family_name": string(), "birthdate": string(), "locale": string(), "gender": string(), "updated_at": {"type": "integer"}}), &[]),
        "RequestToPay": payment("payer"),
        "RequestToPayResult": result("payer"),
        "Transfer": payment("payee"),
        "TransferResult": result("payee"),
        "Refund": obj(json!({"amount": string(), "currency": string(), "externalId": string(), "payerMessage": string(), "payeeNote": string(), "referenceIdToRefund": {"type": "string", "format": "uuid"}}), &["amount", "currency", "referenceIdToRefund"]),
        "CashTransfer": obj(cash_fields, &["amount", "currency", "payee"]),
        "CashTransferResult": obj(cash_result, &["amount", "currency", "payee", "status"]),
        "DeliveryNotification": obj(json!({"notificationMessage": {"type": "string", "maxLength": 160}}), &[]),
        "CreateInvoice": obj(json!({"externalId": string(), "amount": string(), "currency": string(), "validityDuration": string(), "intendedPayer": r("Party"), "payee": r("Party"), "description": string()}), &["amount", "currency", "intendedPayer"]),
        "InvoiceResult": obj(json!({"referenceId": string(), "externalId": string(), "amount": string(), "currency": string(), "status": {"type": "string", "enum": ["CREATED", "PENDING", "SUCCESSFUL", "FAILED"]}, "paymentReference": string(), "invoiceId": string(), "expiryDateTime": string(), "payeeFirstName": string(), "payeeLastName": string(), "errorReason": r("ErrorReason"), "intendedPayer": r("Party"), "description": string()}), &["referenceId", "amount", "currency", "status", "invoiceId", "intendedPayer"]),
        "CancelInvoice": obj(json!({"externalId": string()}), &[]),
        "PreApproval": obj(json!({"payer": r("Party"), "payerCurrency": string(), "payerMessage": string(), "validityTime": {"type": "integer"}}), &["payer", "payerCurrency"]),
        "PreApprovalResult": obj(json!({"payer": r("Party"), "payerCurrency": string(), "payerMessage": string(), "status": {"type": "string", "enum": ["PENDING", "SUCCESSFUL", "FAILED"]}, "expirationDateTime": string(), "reason": r("ErrorReason")}), &["payer", "payerCurrency", "status"]),
        "PreApprovalDetails": obj(json!({"preApprovalId": string(), "toFri": string(), "fromFri": string(), "fromCurrency": string(), "createdTime": string(), "approvedTime": string(), "expiryTime": string(), "status": {"type": "string", "enum": ["APPROVED", "CANCELLED", "EXPIRED", "REJECTED", "PENDING"]}, "message": string()}), &["preApprovalId", "toFri", "fromFri", "fromCurrency", "createdTime", "status", "message"]),
        "PreApprovalDetailsList": {"type": "array", "items": r("PreApprovalDetails")},
        "CreatePayments": obj(json!({"externalTransactionId": string(), "money": obj(json!({"amount": string(), "currency": string()}), &["amount", "currency"]), "customerReference": string(), "serviceProviderUserName": string(), "couponId": string(), "productId": string(), "productOfferingId": string(), "receiverMessage": string(), "senderNote": string(), "maxNumberOfRetries": {"type": "integer"}, "includeSenderCharges": {"type": "boolean"}}), &["money", "customerReference"]),
        "PaymentResult": obj(json!({"referenceId": string(), "status": {"type": "string", "enum": ["CREATED", "PENDING", "SUCCESSFUL", "FAILED"]}, "financialTransactionId": string(), "reason": r("ErrorReason")}), &["referenceId", "status"]),
        "BcAuthorize": obj(json!({"login_hint": string(), "scope": string(), "access_type": {"type": "string", "enum": ["online", "offline"]}, "consent_valid_in": {"type": "integer"}, "client_notification_token": string(), "scope_instruction": string()}), &["login_hint", "scope"]),
        "BcAuthorizeResponse": obj(json!({"auth_req_id": string(), "interval": {"type": "integer"}, "expires_in": {"type": "integer"}}), &["auth_req_id"]),
        "Oauth2TokenRequest": obj(json!({"grant_type": string(), "auth_req_id": string(), "refresh_token": string()}), &["grant_type"]),
        "Oauth2TokenResponse": obj(json!({"access_token": string(), "token_type": string(), "expires_in": {"type": "integer"}, "scope": string(), "refresh_token": string(), "refresh_token_expired_in": {"type": "integer"}}), &["access_token", "token_type", "expires_in"]),
    });
    let mut schemas = schemas;
    schemas["OAuthError"] = obj(
        json!({"error": string(), "error_description": string()}),
        &["error"],
    );
    schemas["UnauthorizedWithError"] = obj(
        json!({"error": string(), "code": string(), "message": string()}),
        &["error", "code", "message"],
    );
    widget_schemas(&mut schemas, party);
    schemas
}

/// The Collection Widget's bodies.
fn widget_schemas(schemas: &mut Value, party: Value) {
    schemas["WidgetInvoiceCreate"] = obj(
        json!({"apiUserId": string(), "amount": string(), "currency": string(), "externalId": string()}),
        &["apiUserId", "amount", "currency", "externalId"],
    );
    let status = json!({"type": "string", "enum": ["PENDING", "SUCCESSFUL", "FAILED"]});
    schemas["WidgetInvoice"] = obj(
        json!({"invoiceId": string(), "externalId": string(), "referenceId": string(), "paymentReference": string(), "payee": party, "payeeFirstName": string(), "payeeLastName": string(), "amount": string(), "currency": string(), "status": status, "expiryDateTime": string(), "qrCodeUrl": string(), "qrLink": string(), "ussdCode": string(), "errorReason": r("ErrorReason")}),
        &[
            "invoiceId",
            "externalId",
            "referenceId",
            "amount",
            "currency",
            "status",
        ],
    );
    schemas["WidgetSettings"] = obj(
        json!({"allowedOrigins": {"type": "array", "items": string(), "nullable": true}, "callbackUrl": {"type": "string", "nullable": true}}),
        &[],
    );
}

fn header(name: &str, required: bool, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": required, "schema": string(), "description": description})
}

fn operation(route: &Route, schemas: &Value) -> Value {
    let d = &route.doc;
    let mut parameters = Vec::new();
    let path = full_path(route);
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            // Resource ids are the UUIDs their X-Reference-Id gave them; anything else is 400.
            let schema = if matches!(
                name,
                "referenceId" | "X-Reference-Id" | "apiUserId" | "invoiceId" | "preApprovalId"
            ) {
                uuid()
            } else {
                string()
            };
            parameters
                .push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    for q in d.query {
        parameters.push(
            json!({"name": q.name, "in": "query", "required": q.required,
            "schema": {"type": q.kind}, "description": q.description}),
        );
    }
    match d.auth {
        Auth::Basic => parameters.push(header(
            "Authorization",
            true,
            "Basic base64(apiUser:apiKey)",
        )),
        Auth::Bearer => parameters.push(header("Authorization", true, "Bearer <access token>")),
        Auth::None => {}
        Auth::Public => parameters.push(header(
            "Origin",
            false,
            "The merchant page's origin: one of the API user's allowed origins (the sandbox takes any page until a list is set)",
        )),
    }
    if d.target_environment {
        parameters.push(header(
            "X-Target-Environment",
            true,
            "sandbox, or the API user's market (mtnuganda, …)",
        ));
    }
    if d.reference_id {
        let mut id = header(
            "X-Reference-Id",
            true,
            "A fresh UUID (version 4); it becomes the resource id",
        );
        id["schema"] = uuid();
        parameters.push(id);
    }
    for (name, required, description) in d.headers {
        parameters.push(header(name, *required, description));
    }
    if let Some(method) = d.callback {
        parameters.push(header(
            "X-Callback-Url",
            false,
            &format!("Called back with {} when final; its host must equal the API user's providerCallbackHost", method.as_str()),
        ));
    }
    let mut responses = Map::new();
    let (code, schema) = d.success;
    let mut ok = json!({"description": "Success"});
    if let Some(schema) = schema {
        ok["content"] = json!({"application/json": {"schema": r(schema)}});
    } else if path.ends_with("/qr.svg") {
        ok["content"] = json!({"image/svg+xml": {"schema": {"type": "string"}}});
    }
    responses.insert(code.to_string(), ok);
    for e in d.errors {
        let schema = match (*e, d.auth) {
            // Its 401 as MTN's definitions document it, beside the wallet's code.
            (401, _) if d.operation_id.ends_with("GetBasicUserinfo") => {
                json!({"oneOf": [r("GatewayError"), r("UnauthorizedWithError")]})
            }
            (401, _) => json!({"oneOf": [r("GatewayError"), r("ErrorReason")]}),
            // OAuth's answer to the grant; the wallet's to a request it cannot read at all.
            (400, _) if d.body == Some("Oauth2TokenRequest") => {
                json!({"oneOf": [r("OAuthError"), r("ErrorReason")]})
            }
            (500, Auth::Basic) => r("TokenError"),
            _ => r("ErrorReason"),
        };
        responses.insert(
            e.to_string(),
            json!({"description": "Error", "content": {"application/json": {"schema": schema}}}),
        );
    }
    let mut op = json!({
        "operationId": d.operation_id,
        "summary": d.summary,
        "tags": [match (d.auth, route.product) {
            (Auth::Public, _) => "collection_widget",
            (_, Some(p)) => p.as_str(),
            (_, None) => "provisioning",
        }],
        "parameters": parameters,
        "responses": responses,
    });
    // The credential beside the subscription key, as a security scheme: OpenAPI ignores a
    // header parameter named Authorization (it stays, for people reading the parameters),
    // so a generated client sends tokens only through these.
    match d.auth {
        Auth::Public => op["security"] = json!([]),
        Auth::Basic | Auth::Bearer => {
            let scheme = if d.auth == Auth::Basic {
                "basicAuth"
            } else {
                "bearerAuth"
            };
            op["security"] = json!([
                {"apiKeyHeader": [], scheme: []},
                {"apiKeyQuery": [], scheme: []},
            ]);
        }
        Auth::None => {}
    }
    if let Some(body) = d.body {
        // The consent calls are forms, as MTN defines them; they take JSON too.
        op["requestBody"] = if matches!(body, "BcAuthorize" | "Oauth2TokenRequest") {
            json!({"required": true, "content": {
                "application/x-www-form-urlencoded": {"schema": r(body)},
                "application/json": {"schema": r(body)},
            }})
        } else {
            // Required where the schema has required members: an empty body is read as
            // `{}` and refused for the first of them.
            let required = schemas[body]["required"]
                .as_array()
                .is_some_and(|r| !r.is_empty());
            json!({"required": required, "content": {"application/json": {"schema": r(body)}}})
        };
    }
    op
}

fn full_path(route: &Route) -> String {
    match route.product {
        Some(p) => format!("/{}{}", p.as_str(), route.path),
        None => route.path.clone(),
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let schemas = schemas();
    for route in routes() {
        let entry = paths.entry(full_path(&route)).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation(&route, &schemas);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Mkoba: MTN MoMo Open API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Everything Mkoba serves in MTN MoMo's dialect. Every call needs a subscription key (header Ocp-Apim-Subscription-Key or query subscription-key) of the product; provisioning accepts any product's key.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKeyHeader": {"type": "apiKey", "name": "Ocp-Apim-Subscription-Key", "in": "header"},
                "apiKeyQuery": {"type": "apiKey", "name": "subscription-key", "in": "query"},
                "basicAuth": {"type": "http", "scheme": "basic", "description": "apiUser:apiKey (the token endpoints)"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An access token of /{product}/token/ (or an OAuth2 token where the operation says so)"},
            },
            "schemas": schemas,
        },
        "security": [{"apiKeyHeader": []}, {"apiKeyQuery": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_that_is_referenced_is_defined() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for route in routes() {
            assert!(
                seen.insert(route.doc.operation_id.clone()),
                "{}",
                route.doc.operation_id
            );
        }
    }
}
