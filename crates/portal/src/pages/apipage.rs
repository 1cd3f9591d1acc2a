//! One page per API operation (`/portal/docs/{operationId}`), for both dialects, written
//! from the OpenAPI documents the server serves: the context (REST verb, resource URL with
//! address, port and path, SSL), the parameters, the request and response schemas with
//! every field (`$ref`s resolved), examples, the error codes, sample code in five
//! languages pre-filled with the signed-in developer's own keys, and the "Send Request"
//! box (seed 004's popup, a `<details>` here so it works without JavaScript), which sends
//! through the same in-process path as the index page's try-it box and shows the response
//! beside the request parameters that were sent.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::mpesa::{Market, ResourceUrl};
use mkoba_platform::model::{ApiUser, KeySlot, Product};
use mkoba_platform::widget::environment_currency;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::docs::{self, Attempt, Dialect, Exchange};
use super::samples::{Const, EnvVar, Gateway, HVal, MomoAuth, Sample, Seg};
use crate::html::Html;
use crate::{Form, MpesaApplication, PortalState, Session, csrf_field, document, w};

/// One operation of a document.
#[derive(Debug, Clone)]
pub(crate) struct Op<'a> {
    pub id: &'a str,
    pub method: String,
    pub path: &'a str,
    pub op: &'a Value,
    pub item: &'a Value,
    pub doc: &'a Value,
    pub dialect: Dialect,
}

/// Every operation of the documents, in document order.
pub(crate) fn operations(docs: &[Value]) -> Vec<Op<'_>> {
    let mut out = Vec::new();
    for doc in docs {
        let Some(paths) = doc["paths"].as_object() else {
            continue;
        };
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops
                .iter()
                .filter(|(m, _)| docs::METHODS.contains(&m.as_str()))
            {
                let Some(id) = op["operationId"].as_str() else {
                    continue;
                };
                out.push(Op {
                    id,
                    method: method.to_ascii_uppercase(),
                    path,
                    op,
                    item,
                    doc,
                    dialect: docs::dialect_of(path.trim_start_matches("/{env}")),
                });
            }
        }
    }
    out
}

fn find<'a>(docs: &'a [Value], id: &str) -> Option<Op<'a>> {
    operations(docs).into_iter().find(|o| o.id == id)
}

// ---- schemas -------------------------------------------------------------------------------

/// The schema a `$ref` names (or the schema itself).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        match s["$ref"].as_str() {
            Some(r) => match r.strip_prefix("#/components/schemas/") {
                Some(name) => s = &doc["components"]["schemas"][name],
                None => return s,
            },
            None => return s,
        }
    }
    s
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema["$ref"].as_str().and_then(|r| r.rsplit('/').next())
}

/// A type said for a person: `string`, `object (Party)`, `array of PreApprovalDetails`,
/// `one of: string, ErrorReason`.
fn type_of(doc: &Value, schema: &Value) -> String {
    if let Some(alts) = schema["oneOf"].as_array() {
        let names: Vec<String> = alts.iter().map(|a| type_of(doc, a)).collect();
        return format!("one of: {}", names.join(", "));
    }
    if let Some(name) = ref_name(schema) {
        let target = resolve(doc, schema);
        return match target["type"].as_str() {
            Some("object") => format!("object ({name})"),
            Some("array") => format!("array ({name})"),
            _ => name.to_owned(),
        };
    }
    match schema["type"].as_str() {
        Some("array") => format!("array of {}", type_of(doc, &schema["items"])),
        Some(t) => {
            let mut t = t.to_owned();
            if let Some(f) = schema["format"].as_str() {
                t.push_str(&format!(" ({f})"));
            }
            if schema["nullable"] == true {
                t.push_str(", or null");
            }
            t
        }
        None => String::new(),
    }
}

/// One row of a schema table.
struct Row {
    name: String,
    kind: String,
    required: bool,
    rule: Option<String>,
    example: Option<String>,
    description: String,
}

/// The rows of an object schema, nested objects flattened as `parent.child` and array
/// items as `parent[].child`.
fn rows(doc: &Value, schema: &Value, prefix: &str, out: &mut Vec<Row>, depth: usize) {
    let s = resolve(doc, schema);
    if depth > 5 {
        return;
    }
    if s["type"] == "array" {
        rows(doc, &s["items"], &format!("{prefix}[]"), out, depth + 1);
        return;
    }
    let required = s["required"].as_array();
    for name in docs::property_names(s) {
        let p = &s["properties"][name];
        let full = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        let target = resolve(doc, p);
        let rule = p["pattern"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| p["x-allowed"].as_str().map(str::to_owned))
            .or_else(|| {
                target["enum"].as_array().map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            })
            .or_else(|| {
                p["maxLength"]
                    .as_u64()
                    .map(|m| format!("at most {m} characters"))
            });
        out.push(Row {
            name: full.clone(),
            kind: type_of(doc, p),
            required: required.is_some_and(|r| r.iter().any(|n| n == name)),
            rule,
            example: p["example"].as_str().map(str::to_owned),
            description: p["description"]
                .as_str()
                .or_else(|| target["description"].as_str())
                .unwrap_or("")
                .to_owned(),
        });
        if target["type"] == "object" && target["properties"].is_object() {
            rows(doc, target, &full, out, depth + 1);
        } else if target["type"] == "array" {
            let items = resolve(doc, &target["items"]);
            if items["properties"].is_object() {
                rows(doc, items, &format!("{full}[]"), out, depth + 1);
            }
        } else if let Some(alts) = p["oneOf"].as_array() {
            for alt in alts {
                let t = resolve(doc, alt);
                if t["properties"].is_object() {
                    rows(doc, t, &full, out, depth + 1);
                }
            }
        }
    }
}

fn render_rows(h: &mut Html, caption: &'static str, rows: &[Row], testid: &str) {
    if rows.is_empty() {
        return;
    }
    let detailed = rows
        .iter()
        .any(|r| r.rule.is_some() || r.example.is_some() || !r.description.is_empty());
    w!(*h, "<div class=\"table-wrap\"><table class=\"schema\" data-testid=\"" {testid} "\"><caption>" {caption} "</caption><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Type</th><th scope=\"col\">Required</th>");
    if detailed {
        h.raw("<th scope=\"col\">Allowed values / pattern</th><th scope=\"col\">Example</th><th scope=\"col\">Description</th>");
    }
    h.raw("</tr></thead><tbody>");
    for r in rows {
        w!(*h, "<tr><td><code>" {r.name} "</code></td><td>" {r.kind} "</td><td>" {if r.required { "yes" } else { "no" }} "</td>");
        if detailed {
            h.raw("<td>");
            if let Some(rule) = &r.rule {
                w!(*h, "<code>" {rule} "</code>");
            }
            h.raw("</td><td>");
            if let Some(e) = &r.example {
                w!(*h, "<code>" {e} "</code>");
            }
            w!(*h, "</td><td>" {r.description} "</td>");
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table></div>");
}

// ---- examples ------------------------------------------------------------------------------

/// What the samples fill in.
struct Fill {
    currency: String,
    api_user: String,
    callback_host: String,
    base: String,
}

/// A MoMo example value by field name.
fn momo_value(name: &str, f: &Fill) -> Option<Value> {
    let party = json!({"partyIdType": "MSISDN", "partyId": "256774290781"});
    Some(match name {
        "amount" | "originalAmount" => json!("100"),
        "currency" | "payerCurrency" | "originalCurrency" | "fromCurrency" => json!(f.currency),
        "externalId" => json!("order-1"),
        "payer" | "payee" | "intendedPayer" => party,
        "payerMessage" | "payeeNote" | "description" => json!("Order 1"),
        "referenceIdToRefund" => json!("REFERENCE_ID_OF_THE_PAYMENT_TO_REFUND"),
        "validityDuration" => json!("3600"),
        "validityTime" => json!(3600),
        "notificationMessage" => json!("Your order is on its way"),
        "providerCallbackHost" => json!(f.callback_host),
        "apiUserId" => json!(f.api_user),
        "allowedOrigins" => json!([f.base]),
        "callbackUrl" => Value::Null,
        "money" => json!({"amount": "1000", "currency": f.currency}),
        "customerReference" => json!("256774290781"),
        "serviceProviderUserName" => json!("shop"),
        "externalTransactionId" => json!("order-1"),
        "login_hint" => json!("ID:256774290781/MSISDN"),
        "scope" => json!("profile"),
        "access_type" => json!("online"),
        "grant_type" => json!("urn:openid:params:grant-type:ciba"),
        "auth_req_id" => json!("AUTH_REQ_ID_FROM_BC_AUTHORIZE"),
        "orginatingCountry" => json!("UG"),
        "payerIdentificationType" => json!("PASS"),
        "payerIdentificationNumber" => json!("A1234567"),
        "payerFirstName" => json!("Ada"),
        "payerSurName" => json!("Lovelace"),
        "payerLanguageCode" => json!("en"),
        "payerEmail" => json!("ada@example.com"),
        "payerMsisdn" => json!("256774290781"),
        // Results.
        "financialTransactionId" => json!("6308871522"),
        "status" => json!("SUCCESSFUL"),
        "access_token" => json!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0…"),
        "token_type" => json!("access_token"),
        "expires_in" => json!(3600),
        "availableBalance" => json!("1000000"),
        "result" => json!(true),
        "apiKey" => json!("f1db798c98df4bcf83b538175893bbf0"),
        "targetEnvironment" => json!("sandbox"),
        "referenceId" => json!("0fdd5f45-4a54-4a2c-b1b0-2a9f3b5a8f3c"),
        "invoiceId" => json!("7f6bd8c6-30b2-4f63-9c6a-3a2b9b1f0c11"),
        "paymentReference" => json!("123456789"),
        "auth_req_id_out" => json!("…"),
        "interval" => json!(5),
        "sub" => json!("0"),
        "name" => json!("Sand Box"),
        "given_name" => json!("Sand"),
        "family_name" => json!("Box"),
        "code" => json!("RESOURCE_NOT_FOUND"),
        // A success's message (a pre-approval's); an error's comes from its code.
        "message" => json!("Order 1"),
        "statusCode" => json!(401),
        "error" => json!("login_failed"),
        _ => return None,
    })
}

/// The body a MoMo error answers with, for the first code the page lists for its status.
fn momo_error_example(status: u16, code: &str) -> Value {
    match code {
        "{\"statusCode\":401}" => json!({
            "statusCode": status,
            "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
        }),
        "login_failed" => json!({"error": "login_failed"}),
        "invalid_request" | "invalid_grant" | "unsupported_grant_type" => {
            json!({"error": code, "error_description": "auth_req_id is unknown or has been tampered with"})
        }
        "BAD_REQUEST" => {
            json!({"code": code, "message": "X-Reference-Id must be a UUID such as 3fa85f64-5717-4562-b3fc-2c963f66afa6"})
        }
        "UNAUTHORIZED" => {
            json!({"code": code, "message": "Authentication failed. Credentials not valid: the access token has expired."})
        }
        "EXPIRED" if status == 410 => {
            json!({"code": code, "message": "The delivery notification opportunity has expired."})
        }
        _ => json!({"code": code, "message": mkoba_api_types::momo::message_for(code)}),
    }
}

/// An example of a MoMo schema: the required fields and every field with a known value.
fn momo_example(doc: &Value, schema: &Value, f: &Fill, depth: usize) -> Value {
    let s = resolve(doc, schema);
    if depth > 5 {
        return Value::Null;
    }
    if let Some(alts) = s["oneOf"].as_array() {
        return alts
            .first()
            .map_or(Value::Null, |a| momo_example(doc, a, f, depth + 1));
    }
    match s["type"].as_str() {
        Some("array") => json!([momo_example(doc, &s["items"], f, depth + 1)]),
        Some("object") | None if s["properties"].is_object() => {
            let required = s["required"].as_array();
            let mut out = Map::new();
            for name in docs::property_names(s) {
                let is_required = required.is_some_and(|r| r.iter().any(|n| n == name));
                let property = resolve(doc, &s["properties"][name]);
                // A known value only where the field's schema allows it (a pre-approval's
                // status is APPROVED, not a payment's SUCCESSFUL).
                let allowed = |v: &Value| {
                    property["enum"]
                        .as_array()
                        .is_none_or(|choices| choices.contains(v))
                };
                let known = momo_value(name, f);
                let refused = known.as_ref().is_some_and(|v| !allowed(v));
                if let Some(v) = known.filter(allowed) {
                    out.insert(name.to_owned(), v);
                } else if is_required || refused {
                    out.insert(
                        name.to_owned(),
                        momo_example(doc, &s["properties"][name], f, depth + 1),
                    );
                }
            }
            Value::Object(out)
        }
        Some("integer") | Some("number") => json!(0),
        Some("boolean") => json!(false),
        Some("string") => s["enum"][0]
            .as_str()
            .map_or_else(|| json!("string"), |e| json!(e)),
        _ => Value::Null,
    }
}

/// An M-Pesa output field's example (inputs are echoed where a field is one).
fn mpesa_output(name: &str, input: &Map<String, Value>, v1x: bool) -> Value {
    if let Some(echo) = name
        .strip_prefix("output_")
        .and_then(|n| input.get(&format!("input_{n}")))
    {
        return echo.clone();
    }
    json!(match name {
        "output_ResponseCode" => "INS-0",
        "output_ResponseDesc" => "Request processed successfully",
        "output_TransactionID" => "DBc6xEB4YeOa",
        "output_ConversationID" => "d3502e1c8a1b4a5c9b7a2d6f0e4c3b21",
        "output_SessionID" => "8ff5c5f8c3d64d6c9e3a1b7f2e4d6a10",
        "output_ResponseTransactionStatus" => "Completed",
        "output_OriginalTransactionID" => "DBc6xEB4YeOa",
        "output_Reversed" => "False",
        "output_CustomerFirstName" | "output_FirstName" => "J***n",
        "output_CustomerLastName" | "output_SecondName" => "W***u",
        "output_MsisdnToken" => "cvgwUBZ3lAO9ivwhWAFeng==",
        "output_MandateID" => "15045",
        "output_MandateStatus" => "Active",
        "output_AccountStatus" => "Active",
        "output_FirstPaymentDate" => "20260324",
        "output_Frequency" => "06",
        "output_ExpiryDate" => "20271126",
        "output_SufficientBalance" => "True",
        _ if v1x => "…",
        _ => "…",
    })
}

/// The example `input_*` fields of an M-Pesa operation: the required ones, the first of a
/// one-of group (the MSISDN), and the optional ones whose example stands on its own (not a
/// mandate's token or id, nor dates that have passed); a fresh conversation id (v2) or
/// third-party reference (v1x), since the gateway refuses a reused one as a duplicate; the
/// market's country and currency.
fn mpesa_input(op: &Op<'_>, market: Option<Market>) -> Map<String, Value> {
    const SKIP: &[&str] = &[
        "input_MsisdnToken",
        "input_MandateID",
        "input_FirstPaymentDate",
        "input_ExpiryDate",
        "input_StartRangeOfDays",
        "input_EndRangeOfDays",
        "input_Frequency",
    ];
    let mut fields: Vec<(&str, Value, bool)> = Vec::new();
    let body = &op.op["requestBody"]["content"]["application/json"]["schema"];
    let required = body["required"].as_array();
    for name in docs::property_names(body) {
        let p = &body["properties"][name];
        fields.push((
            name,
            p["example"].clone(),
            required.is_some_and(|r| r.iter().any(|n| n == name)),
        ));
    }
    for p in op.op["parameters"].as_array().into_iter().flatten() {
        if p["in"] == "query" {
            fields.push((
                p["name"].as_str().unwrap_or(""),
                p["example"].clone(),
                p["required"] == true,
            ));
        }
    }
    let fresh = Uuid::new_v4().simple().to_string();
    let mut out = Map::new();
    for (name, example, required) in fields {
        if example.is_null() {
            continue;
        }
        if !required && SKIP.contains(&name) {
            continue;
        }
        let value = match (name, op.dialect, market) {
            ("input_ThirdPartyConversationID", _, _) => json!(fresh),
            ("input_ThirdPartyReference", Dialect::MpesaV1x, _) => json!(fresh),
            // The C2B sample's amount, so that the reversal sample reverses that payment
            // (the document's 25 is more than it paid).
            ("input_ReversalAmount", Dialect::MpesaV1x, _) => json!("10"),
            ("input_ReversalAmount", _, _) => json!("10.00"),
            ("input_Country", _, Some(m)) => json!(m.country()),
            ("input_Currency", _, Some(m)) => json!(m.currency()),
            _ => example,
        };
        out.insert(name.to_owned(), value);
    }
    out
}

/// The markets a v2 operation is offered in (its `market` path parameter's values).
fn markets_offered(op: &Op<'_>) -> Vec<Market> {
    op.op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "market")
        .and_then(|p| p["schema"]["enum"].as_array())
        .map(|e| {
            e.iter()
                .filter_map(|m| m.as_str().and_then(Market::from_path))
                .collect()
        })
        .unwrap_or_default()
}

/// The v2 market of the samples: the market of the example's country when the operation
/// offers it, else the first it offers.
fn market_of(op: &Op<'_>) -> Option<Market> {
    if op.dialect != Dialect::MpesaV2 {
        return None;
    }
    let offered = markets_offered(op);
    let body = &op.op["requestBody"]["content"]["application/json"]["schema"];
    let country = body["properties"]["input_Country"]["example"]
        .as_str()
        .or_else(|| {
            op.op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "input_Country")
                .and_then(|p| p["example"].as_str())
        })
        .unwrap_or("TZN");
    offered
        .iter()
        .copied()
        .find(|m| m.country() == country)
        .or_else(|| offered.first().copied())
        .or(Some(Market::VodacomTzn))
}

// ---- the developer's context ---------------------------------------------------------------

/// What the page knows about the developer and the server for one operation.
struct Context {
    /// `http://host` as the browser reached the portal.
    base: String,
    host_name: String,
    product: Option<Product>,
    /// The primary key of the product (any product's for provisioning).
    key: Option<String>,
    /// A product the operation needs but the developer is not subscribed to.
    unsubscribed: Option<Product>,
    user: Option<ApiUser>,
    app: Option<MpesaApplication>,
    resource: Option<ResourceUrl>,
    market: Option<Market>,
    /// The M-Pesa gateway the page speaks to: `sandbox`, or `openapi` (production).
    mpesa_env: &'static str,
}

/// What the page's market and environment choice asked for (`?market=…&env=…`, M-Pesa v2
/// pages): a market the operation does not offer, or another value, is the default.
#[derive(Debug, Clone, Copy, Default)]
struct Choice {
    market: Option<Market>,
    production: bool,
}

impl Choice {
    /// From a page's query string or a Send Request form's fields (`market`, `env`).
    fn of(market: Option<&str>, env: Option<&str>) -> Choice {
        Choice {
            market: market.and_then(Market::from_path),
            production: env == Some("openapi"),
        }
    }
}

fn product_of_path(path: &str) -> Option<Product> {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .and_then(Product::parse)
}

async fn context(
    state: &PortalState,
    session: &Session,
    headers: &HeaderMap,
    tls: bool,
    op: &Op<'_>,
    choice: Choice,
) -> Result<Context, mkoba_platform::Internal> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1");
    let base = mkoba_platform::widget::base_url(Some(host), tls);
    let host_name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => host.to_owned(),
    };
    let product = product_of_path(op.path);
    let keys = state
        .platform
        .credentials()
        .subscription_keys(session.developer.id);
    let primary = |p: Product| {
        keys.iter()
            .find(|k| k.product == p && k.slot == KeySlot::Primary)
            .map(|k| k.key.clone())
    };
    let public = op.op["security"].as_array().is_some_and(|s| s.is_empty());
    let (key, unsubscribed) = match (op.dialect, product) {
        (Dialect::Momo, Some(p)) => match primary(p) {
            Some(k) => (Some(k), None),
            None => (None, Some(p)),
        },
        (Dialect::Momo, None) if !public => {
            let any = keys
                .iter()
                .find(|k| k.slot == KeySlot::Primary)
                .map(|k| k.key.clone());
            let missing = any.is_none().then_some(Product::Collection);
            (any, missing)
        }
        _ => (None, None),
    };
    // The developer's first API user: the oldest in the sandbox, else the oldest (the
    // list comes newest first), so the samples do not change as more are made.
    let users = state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await?;
    let user = users
        .iter()
        .rev()
        .find(|u| u.target_environment == "sandbox")
        .or_else(|| users.last())
        .cloned();
    let app = if op.dialect == Dialect::Momo {
        None
    } else {
        state.mpesa_application(session.developer.id).await
    };
    let market = match choice.market {
        Some(m) if op.dialect == Dialect::MpesaV2 && markets_offered(op).contains(&m) => Some(m),
        _ => market_of(op),
    };
    let mpesa_env = if choice.production && op.dialect == Dialect::MpesaV2 {
        "openapi"
    } else {
        "sandbox"
    };
    let resource = app.as_ref().and_then(|a| {
        a.resource_urls
            .iter()
            .find(|r| r.operation_id == op.id)
            .cloned()
            .map(|mut r| {
                if r.address == "0.0.0.0" || r.address == "::" {
                    r.address = host_name.trim_matches(['[', ']']).to_owned();
                }
                if let Some(m) = market {
                    r.path = r.path.replace("{market}", m.path());
                }
                if mpesa_env == "openapi" {
                    r.path = r.path.replacen("/sandbox/", "/openapi/", 1);
                }
                r
            })
    });
    Ok(Context {
        base,
        host_name,
        product,
        key,
        unsubscribed,
        user,
        app,
        resource,
        market,
        mpesa_env,
    })
}

impl Context {
    /// The Send Request form's fields that keep an M-Pesa v2 page's market and gateway
    /// for the page of its answer (none for other pages).
    fn choice_fields(&self) -> Html {
        let mut h = Html::new();
        if let Some(m) = self.market {
            w!(h, "<input type=\"hidden\" name=\"market\" value=\"" {m.path()} "\">"
                "<input type=\"hidden\" name=\"env\" value=\"" {self.mpesa_env} "\">");
        }
        h
    }

    fn origin(&self) -> String {
        match &self.app {
            Some(a) if a.allowed_origins.iter().any(|o| o == "*") => "*".to_owned(),
            Some(a) => a
                .allowed_origins
                .first()
                .cloned()
                .unwrap_or_else(|| "*".to_owned()),
            None => "*".to_owned(),
        }
    }

    fn environment(&self) -> String {
        self.user
            .as_ref()
            .map_or_else(|| "sandbox".to_owned(), |u| u.target_environment.clone())
    }

    /// `http://address:port` of an M-Pesa operation, and its path (market filled in).
    /// Whether the browser reached the portal over HTTPS (the MoMo samples' scheme).
    fn ssl(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// The port of the address the browser reached the portal on (its scheme's default
    /// when the address names none).
    fn port(&self) -> String {
        match self.base.rsplit_once(':') {
            Some((_, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.to_owned(),
            _ if self.ssl() => "443".to_owned(),
            _ => "80".to_owned(),
        }
    }

    /// Whether the M-Pesa resource URL is HTTPS (`serve --tls`).
    fn mpesa_ssl(&self) -> bool {
        self.resource.as_ref().map_or_else(|| self.ssl(), |r| r.ssl)
    }

    fn mpesa_url(&self, op: &Op<'_>) -> (String, String) {
        if let Some(r) = &self.resource {
            let url = r.url();
            let base = url.strip_suffix(&r.path).unwrap_or(&url).to_owned();
            return (base, r.path.clone());
        }
        let market = self.market.map_or("vodacomTZN", Market::path);
        let path = op
            .path
            .replace("{env}", self.mpesa_env)
            .replace("{market}", market);
        (self.base.clone(), path)
    }
}

// ---- samples -------------------------------------------------------------------------------

fn header_param<'a>(op: &'a Value, name: &str) -> Option<&'a Value> {
    op["parameters"].as_array()?.iter().find(|p| {
        p["in"] == "header"
            && p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

fn momo_auth(op: &Op<'_>) -> MomoAuth {
    if op.id.ends_with("CreateOauth2Token") {
        return MomoAuth::Basic;
    }
    if op.id.ends_with("GetUserInfoWithConsent") {
        return MomoAuth::Oauth2;
    }
    if op.op["security"].as_array().is_some_and(|s| s.is_empty()) {
        return MomoAuth::Public;
    }
    match header_param(op.op, "Authorization").and_then(|p| p["description"].as_str()) {
        Some(d) if d.starts_with("Basic") => MomoAuth::Basic,
        Some(_) => MomoAuth::Token,
        None => MomoAuth::Key,
    }
}

const API_KEY_NOTE_MOMO: &str = "your API user's API key (shown once when created on the API users page; the portal keeps only a hash)";
const API_KEY_NOTE_MPESA: &str =
    "your M-Pesa API key (on your profile and the M-Pesa page, where you can renew it)";

fn build_sample(op: &Op<'_>, ctx: &Context) -> Sample {
    let summary = op.op["summary"].as_str().unwrap_or(op.id).to_owned();
    let mut consts = Vec::new();
    let mut env = Vec::new();
    let mut headers = Vec::new();
    let mut path = Vec::new();
    let mut query = Vec::new();
    let mut body = None;
    let mut form = false;
    let mut field_vars: Vec<(String, &'static str)> = Vec::new();
    let mut fresh = Vec::new();
    let auth = if op.dialect == Dialect::Momo {
        momo_auth(op)
    } else {
        MomoAuth::Key
    };
    let gateway = match op.dialect {
        Dialect::Momo => Gateway::Momo,
        Dialect::MpesaV2 => Gateway::V2,
        Dialect::MpesaV1x => Gateway::V1x,
    };
    let base;
    if op.dialect == Dialect::Momo {
        base = ctx.base.clone();
        consts.push(Const {
            name: "BASE",
            value: base.clone(),
            note: "this server".to_owned(),
        });
        let product_name = ctx.product.map_or("any product", |p| p.display_name());
        if auth != MomoAuth::Public {
            consts.push(Const {
                name: "SUBSCRIPTION_KEY",
                value: ctx
                    .key
                    .clone()
                    .unwrap_or_else(|| "YOUR_SUBSCRIPTION_KEY".to_owned()),
                note: if ctx.key.is_some() {
                    format!("your {product_name} primary key")
                } else {
                    format!("subscribe to {product_name} on the portal's overview first")
                },
            });
        }
        let user_id = ctx
            .user
            .as_ref()
            .map_or_else(|| "YOUR_API_USER".to_owned(), |u| u.id.to_string());
        let uses_user = matches!(auth, MomoAuth::Token | MomoAuth::Basic)
            || op.path.contains("{X-Reference-Id}")
            || op.path.contains("{apiUserId}");
        if uses_user {
            consts.push(Const {
                name: "API_USER",
                value: user_id.clone(),
                note: if ctx.user.is_some() {
                    "your API user".to_owned()
                } else {
                    "create an API user on the API users page first".to_owned()
                },
            });
        }
        if matches!(auth, MomoAuth::Token | MomoAuth::Basic) {
            env.push(EnvVar {
                name: "API_KEY",
                note: API_KEY_NOTE_MOMO.to_owned(),
                default: None,
            });
        }
        for seg in op.path.split('/').filter(|s| !s.is_empty()) {
            path.push(Seg::Lit("/".to_owned()));
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some("X-Reference-Id" | "apiUserId") => path.push(Seg::Var("API_USER")),
                Some("currency") => path.push(Seg::Lit(
                    environment_currency(&ctx.environment()).to_owned(),
                )),
                Some("accountHolderIdType") => path.push(Seg::Lit("msisdn".to_owned())),
                Some("accountHolderId") => path.push(Seg::Lit("256774290781".to_owned())),
                Some("invoiceId") => {
                    path.push(Seg::Var("INVOICE_ID"));
                    env.push(EnvVar {
                        name: "INVOICE_ID",
                        note: "the invoiceId the widget's invoice was created with".to_owned(),
                        default: None,
                    });
                }
                Some(_) => {
                    path.push(Seg::Var("REFERENCE_ID"));
                    env.push(EnvVar {
                        name: "REFERENCE_ID",
                        note: "the X-Reference-Id the resource was created with".to_owned(),
                        default: None,
                    });
                }
                None => path.push(Seg::Lit(seg.to_owned())),
            }
        }
        if op.path.ends_with('/') {
            path.push(Seg::Lit("/".to_owned()));
        }
        match auth {
            MomoAuth::Token => headers.push(("Authorization".to_owned(), HVal::Token)),
            MomoAuth::Oauth2 => {
                env.push(EnvVar {
                    name: "OAUTH2_TOKEN",
                    note: "the access_token of oauth2/token/ once the account holder consented"
                        .to_owned(),
                    default: None,
                });
                headers.push(("Authorization".to_owned(), HVal::Oauth2));
            }
            MomoAuth::Basic => headers.push(("Authorization".to_owned(), HVal::Basic)),
            MomoAuth::Key | MomoAuth::Public => {}
        }
        if header_param(op.op, "X-Reference-Id").is_some() {
            headers.push(("X-Reference-Id".to_owned(), HVal::NewUuid));
        }
        if header_param(op.op, "X-Target-Environment").is_some() {
            headers.push((
                "X-Target-Environment".to_owned(),
                HVal::Lit(ctx.environment()),
            ));
        }
        if auth == MomoAuth::Public {
            // The page's origin, as a browser sends it (one of the API user's allowed
            // origins once a list is set).
            headers.push(("Origin".to_owned(), HVal::Lit(ctx.base.clone())));
        } else {
            headers.push((
                "Ocp-Apim-Subscription-Key".to_owned(),
                HVal::Const("SUBSCRIPTION_KEY"),
            ));
        }
        let schema = &op.op["requestBody"]["content"]["application/json"]["schema"];
        if !schema.is_null() {
            let fill = Fill {
                currency: environment_currency(&ctx.environment()).to_owned(),
                api_user: user_id,
                callback_host: ctx.host_name.clone(),
                base: ctx.base.clone(),
            };
            let mut example = momo_example(op.doc, schema, &fill, 0);
            if op.id.ends_with("CreateOauth2Token") {
                example = json!({"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": "AUTH_REQ_ID_FROM_BC_AUTHORIZE"});
            }
            form = op.id.ends_with("bc-authorize") || op.id.ends_with("CreateOauth2Token");
            // Ids of earlier calls come from the environment, as the path's do.
            for (field, var, note) in [
                (
                    "referenceIdToRefund",
                    "REFERENCE_ID",
                    "the X-Reference-Id of the payment to refund",
                ),
                (
                    "auth_req_id",
                    "AUTH_REQ_ID",
                    "the auth_req_id bc-authorize answered",
                ),
            ] {
                if example.get(field).is_some() {
                    field_vars.push((field.to_owned(), var));
                    env.push(EnvVar {
                        name: var,
                        note: note.to_owned(),
                        default: None,
                    });
                }
            }
            body = Some(example);
        }
        // The QR code's signed token, as the invoice's qrCodeUrl carries it.
        let takes_token = op.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query" && p["name"] == "t");
        if takes_token {
            query.push(("t".to_owned(), String::new()));
            field_vars.push(("t".to_owned(), "INVOICE_TOKEN"));
            env.push(EnvVar {
                name: "INVOICE_TOKEN",
                note: "the t= of the invoice's qrCodeUrl (GET the invoice to read it)".to_owned(),
                default: None,
            });
        }
    } else {
        let public_key = ctx.app.as_ref().map(|a| a.public_key.clone());
        consts.push(Const {
            name: "PUBLIC_KEY",
            value: public_key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "YOUR_PUBLIC_KEY".to_owned()),
            note: "the platform public key (base64 SPKI), from your M-Pesa page".to_owned(),
        });
        env.push(EnvVar {
            name: "MPESA_API_KEY",
            note: API_KEY_NOTE_MPESA.to_owned(),
            default: ctx
                .app
                .as_ref()
                .and_then(|a| a.api_key.clone())
                .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric())),
        });
        let (b, p) = ctx.mpesa_url(op);
        base = b;
        path.push(Seg::Lit(p));
        headers.push(("Origin".to_owned(), HVal::Lit(ctx.origin())));
        let bearer = if op.dialect == Dialect::MpesaV2 && op.id != "v2GetSession" {
            HVal::SessionBearer
        } else {
            HVal::KeyBearer
        };
        headers.push(("Authorization".to_owned(), bearer));
        let input = mpesa_input(op, ctx.market);
        // A fresh id each run (a reused one is a duplicate), and the transaction an earlier
        // call answered from the environment.
        let fresh_field = match op.dialect {
            Dialect::MpesaV1x => "input_ThirdPartyReference",
            _ => "input_ThirdPartyConversationID",
        };
        if input.contains_key(fresh_field) {
            let var = match op.dialect {
                Dialect::MpesaV1x => "THIRD_PARTY_REFERENCE",
                _ => "CONVERSATION_ID",
            };
            field_vars.push((fresh_field.to_owned(), var));
            fresh.push(var);
        }
        // A direct debit's mandate is known by its input_ThirdPartyReference: made fresh
        // by the creation (a second with the same one is a duplicate), read from the
        // environment by the payment, the query and the cancel.
        if op.dialect == Dialect::MpesaV2 && input.contains_key("input_ThirdPartyReference") {
            field_vars.push(("input_ThirdPartyReference".to_owned(), "MANDATE_REFERENCE"));
            if op.id == "v2DirectDebitCreation" {
                fresh.push("MANDATE_REFERENCE");
            } else {
                env.push(EnvVar {
                    name: "MANDATE_REFERENCE",
                    note: "the input_ThirdPartyReference the mandate was created with".to_owned(),
                    default: None,
                });
            }
        }
        for field in ["input_QueryReference", "input_TransactionID"] {
            if input.contains_key(field) {
                field_vars.push((field.to_owned(), "TRANSACTION_ID"));
                env.push(EnvVar {
                    name: "TRANSACTION_ID",
                    note: "the output_TransactionID of an earlier payment".to_owned(),
                    default: None,
                });
            }
        }
        if op.method == "GET" {
            query = input
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect();
        } else if !input.is_empty() {
            body = Some(Value::Object(input));
        }
    }
    if let Some(b) = consts.iter().find(|c| c.name == "BASE") {
        let _ = b;
    } else {
        consts.insert(
            0,
            Const {
                name: "BASE",
                value: base.clone(),
                note: "the resource URL's address and port".to_owned(),
            },
        );
    }
    Sample {
        gateway,
        operation_id: op.id.to_owned(),
        summary,
        method: op.method.clone(),
        base,
        path,
        query,
        headers,
        body,
        form,
        consts,
        env,
        product: ctx.product.map(|p| p.as_str().to_owned()),
        momo_auth: auth,
        market: ctx.market,
        origin: ctx.origin(),
        field_vars,
        fresh,
    }
}

// ---- the page ------------------------------------------------------------------------------

/// MoMo's documented refusals, by status: (status, code, when, what to do).
const MOMO_ERRORS: &[(u16, &str, &str, &str)] = &[
    (
        400,
        "BAD_REQUEST",
        "A header is missing or malformed (X-Reference-Id not a UUID), the body breaks a rule (amount, currency, ' or & in a message); the message says which.",
        "Fix the request as the message says.",
    ),
    (
        400,
        "invalid_request",
        "OAuth2: auth_req_id or grant_type is missing, or the body is not a form.",
        "Send grant_type and auth_req_id as the page's example does.",
    ),
    (
        400,
        "invalid_grant",
        "OAuth2: the auth_req_id is unknown, expired, used, or not yet consented to.",
        "Use the auth_req_id bc-authorize answered, after the account holder consented.",
    ),
    (
        400,
        "unsupported_grant_type",
        "OAuth2: the grant_type is not urn:openid:params:grant-type:ciba.",
        "Send that grant type.",
    ),
    (
        401,
        "{\"statusCode\":401}",
        "The subscription key is missing, unknown, or of another product.",
        "Send the product's primary or secondary key in Ocp-Apim-Subscription-Key.",
    ),
    (
        401,
        "UNAUTHORIZED",
        "The access token is missing, malformed, expired, or of another product.",
        "Get a fresh token from /{product}/token/ of this product.",
    ),
    (
        403,
        "NOT_ALLOWED",
        "The page's Origin is not one of the API user's allowed origins (widget).",
        "Add the origin on the Widget page.",
    ),
    (
        404,
        "RESOURCE_NOT_FOUND",
        "No such reference id, API user or invoice for this API user.",
        "Check the id; a status is found only under its own operation.",
    ),
    (
        409,
        "RESOURCE_ALREADY_EXIST",
        "The X-Reference-Id was used before.",
        "Send a new UUID (a retry with the same id means the first attempt was accepted).",
    ),
    (
        409,
        "NOT_ALLOWED",
        "The Collection Widget's invoice is no longer pending (paid, failed or cancelled).",
        "Check the invoice's status first.",
    ),
    (
        409,
        "TRANSACTION_NOT_COMPLETED",
        "A delivery notification for a payment that is not SUCCESSFUL.",
        "Wait until the payment succeeded.",
    ),
    (
        410,
        "EXPIRED",
        "The payment succeeded longer ago than the delivery-notification window (a day, --delivery-notification-window-secs).",
        "Nothing to send now: the window has passed.",
    ),
    (
        429,
        "TOO_MANY_REQUESTS",
        "A delivery notification was sent for this payment already: one per payment.",
        "Nothing to do: waiting does not open another.",
    ),
    (
        429,
        "TOO_MANY_REQUESTS",
        "Too many requests from one client.",
        "Wait (Retry-After) and try again.",
    ),
    (
        500,
        "login_failed",
        "The token endpoint: wrong API user or API key.",
        "Check both; create a new API key if it is lost.",
    ),
    (
        500,
        "NOT_ALLOWED_TARGET_ENVIRONMENT",
        "X-Target-Environment is not the API user's.",
        "Send sandbox for sandbox users, the market (mtnuganda, …) for others.",
    ),
    (
        500,
        "INVALID_CALLBACK_URL_HOST",
        "The X-Callback-Url host is not the API user's providerCallbackHost.",
        "Use a callback URL on that host, or an API user made for your host.",
    ),
    (
        500,
        "INVALID_CURRENCY",
        "The currency is not the environment's (the sandbox takes only EUR).",
        "Send the environment's currency.",
    ),
    (
        500,
        "NOT_ALLOWED",
        "The operation is not allowed (cancelling a settled invoice).",
        "Check the resource's status first.",
    ),
    (
        500,
        "INTERNAL_PROCESSING_ERROR",
        "Something failed inside the platform.",
        "Retry later with the same X-Reference-Id.",
    ),
    (
        503,
        "SERVICE_UNAVAILABLE",
        "The service is temporarily unavailable.",
        "Retry later.",
    ),
];

/// The rows of [`MOMO_ERRORS`] an operation can answer, in the table's order.
fn momo_error_rows(op: &Op<'_>) -> Vec<&'static (u16, &'static str, &'static str, &'static str)> {
    let statuses: Vec<u16> = op.op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(s, _)| s.parse().ok())
        .filter(|s: &u16| *s >= 400)
        .collect();
    let auth = momo_auth(op);
    let has = |name: &str| header_param(op.op, name).is_some();
    let body = &op.op["requestBody"]["content"]["application/json"]["schema"];
    let body_has_currency = {
        let s = resolve(op.doc, body);
        s["properties"]["currency"].is_object() || s["properties"]["money"].is_object()
    };
    let widget = op.id.starts_with("widget-");
    let oauth2 = op.id.ends_with("CreateOauth2Token");
    let notification = op.id == "RequesttoPayDeliveryNotification";
    let relevant = |status: u16, code: &str, when: &str| match code {
        "invalid_request" | "invalid_grant" | "unsupported_grant_type" => oauth2,
        "EXPIRED" => notification,
        "TOO_MANY_REQUESTS" => notification == when.starts_with("A delivery notification"),
        "login_failed" => auth == MomoAuth::Basic,
        "UNAUTHORIZED" => matches!(auth, MomoAuth::Token | MomoAuth::Oauth2),
        "{\"statusCode\":401}" => auth != MomoAuth::Public,
        "NOT_ALLOWED_TARGET_ENVIRONMENT" => has("X-Target-Environment"),
        "INVALID_CALLBACK_URL_HOST" => has("X-Callback-Url"),
        "INVALID_CURRENCY" => body_has_currency || op.path.contains("{currency}"),
        "RESOURCE_ALREADY_EXIST" => has("X-Reference-Id"),
        "TRANSACTION_NOT_COMPLETED" => op.id == "RequesttoPayDeliveryNotification",
        // The widget's cancel refuses with 409, MTN's CancelInvoice with 500.
        "NOT_ALLOWED" if status == 403 => auth == MomoAuth::Public,
        "NOT_ALLOWED" => op.id.contains("Cancel") && widget == (status == 409),
        _ => true,
    };
    MOMO_ERRORS
        .iter()
        .filter(|(status, code, when, _)| {
            statuses.contains(status) && relevant(*status, code, when)
        })
        .collect()
}

/// An operation's error codes, as a table.
fn momo_errors(h: &mut Html, op: &Op<'_>) {
    h.raw("<div class=\"table-wrap\"><table data-testid=\"error-codes\"><caption>Error codes</caption><thead><tr><th scope=\"col\">HTTP status</th><th scope=\"col\">Code</th><th scope=\"col\">When</th><th scope=\"col\">What to do</th></tr></thead><tbody>");
    for (status, code, when, action) in momo_error_rows(op) {
        w!(*h, "<tr><td>" {status} "</td><td><code>" {code} "</code></td><td>" {when} "</td><td>" {action} "</td></tr>");
    }
    h.raw("</tbody></table></div>");
    if header_param(op.op, "X-Callback-Url").is_some() {
        h.raw("<p>Accepted payments can still end <code>FAILED</code> with a <code>reason</code> in the status and the callback: the sandbox's test numbers make each one happen (<a href=\"/portal/guides/sandbox-use-cases\">Sandbox use cases</a>; what to do for each: <a href=\"/portal/guides/common-error-codes\">Common error codes</a>).</p>");
    }
}

fn status_text(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn render_context(h: &mut Html, op: &Op<'_>, ctx: &Context) {
    h.raw("<section class=\"card\" aria-labelledby=\"context\"><h2 id=\"context\">Context</h2><dl class=\"facts\" data-testid=\"context\">");
    w!(*h, "<dt>Method type</dt><dd><code>" {op.method} "</code></dd>");
    match op.dialect {
        Dialect::Momo => {
            let url = format!("{}{}", ctx.base, op.path);
            w!(*h, "<dt>Resource URL</dt><dd><code>" {url} "</code></dd>");
            if ctx.ssl() {
                h.raw("<dt>SSL</dt><dd><code>true</code></dd>");
            } else {
                h.raw("<dt>SSL</dt><dd>false (serve with <code>--tls</code>, or put a TLS proxy in front, for https)</dd>");
            }
            let auth = match momo_auth(op) {
                MomoAuth::Key => "Subscription key",
                MomoAuth::Basic => "Subscription key and Basic API user:API key",
                MomoAuth::Token => "Subscription key and Bearer access token",
                MomoAuth::Oauth2 => "Subscription key and Bearer oauth2 access token (consent)",
                MomoAuth::Public => "None (called from the merchant's page; allowed origins apply)",
            };
            w!(*h, "<dt>Authentication</dt><dd>" {auth} "</dd>");
        }
        Dialect::MpesaV2 | Dialect::MpesaV1x => {
            let (base, path) = ctx.mpesa_url(op);
            let (address, port) = match &ctx.resource {
                Some(r) => (r.address.clone(), r.port.to_string()),
                // No resource URL of its own (an operation not built): the portal's.
                None => (ctx.host_name.clone(), ctx.port()),
            };
            w!(*h, "<dt>Resource URL</dt><dd><code data-testid=\"resource-url\">" {base} {path} "</code></dd>"
                "<dt>Address</dt><dd><code>" {address} "</code></dd>"
                "<dt>Port</dt><dd><code data-testid=\"resource-port\">" {port} "</code>");
            if let Some(p) = op.item["x-mkoba-port"].as_u64() {
                w!(*h, " <span class=\"hint\">(the real gateway's port for this API is " {p} "; Mkoba serves the API on a port of its own with <code>--mpesa-v1x-ports</code>: " {p} " with <code>on</code>, or the port given for it; and every v1x API on its main port too)</span>");
            }
            w!(*h, "</dd><dt>Path</dt><dd><code>" {path} "</code></dd><dt>SSL</dt><dd><code>" {ctx.mpesa_ssl()} "</code></dd>");
            let bearer = if op.dialect == Dialect::MpesaV2 && op.id != "v2GetSession" {
                "Bearer base64(RSA(session id)): the session getSession returned, encrypted with the public key"
            } else {
                "Bearer base64(RSA(API key)): your API key, encrypted with the public key"
            };
            w!(*h, "<dt>Authorization</dt><dd>" {bearer} "</dd>");
        }
    }
    h.raw("</dl></section>");
}

fn render_request(h: &mut Html, op: &Op<'_>, sample: &Sample) {
    h.raw("<section aria-labelledby=\"request\"><h2 id=\"request\">Request parameters</h2>");
    let fields = docs::fields_of(op.op);
    let params: Vec<_> = fields.into_iter().filter(|f| f.place != "body").collect();
    docs::render_fields(h, &params);
    let schema = &op.op["requestBody"]["content"]["application/json"]["schema"];
    if !schema.is_null() {
        let mut r = Vec::new();
        rows(op.doc, schema, "", &mut r, 0);
        let name = ref_name(schema).unwrap_or("");
        w!(*h, "<h3>Body <code>" {name} "</code></h3>");
        render_rows(h, "Request body", &r, "request-body");
    }
    let example = match (&sample.body, sample.query.is_empty()) {
        (Some(b), _) if sample.form => Some(
            b.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("&"),
        ),
        (Some(b), _) => serde_json::to_string_pretty(b).ok(),
        (None, false) => Some(
            sample
                .query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (None, true) => None,
    };
    if let Some(e) = example {
        let what = if sample.body.is_some() {
            "Example body"
        } else {
            "Example query parameters"
        };
        w!(*h, "<h3>" {what} "</h3><pre data-testid=\"request-example\">" {e} "</pre>");
    }
    h.raw("</section>");
}

fn render_responses(h: &mut Html, op: &Op<'_>, sample: &Sample) {
    h.raw("<section aria-labelledby=\"responses\"><h2 id=\"responses\">Responses</h2>");
    let input: Map<String, Value> = match &sample.body {
        Some(Value::Object(m)) => m.clone(),
        _ => sample
            .query
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect(),
    };
    let codes = op.op["x-codes"].as_array();
    for (status, r) in op.op["responses"].as_object().into_iter().flatten() {
        let description = r["description"].as_str().unwrap_or("");
        w!(*h, "<h3 class=\"status\"><code>" {status} "</code> " {status_text(status)} "</h3>");
        if description.contains('\n') {
            h.raw("<ul>");
            for l in description.lines() {
                w!(*h, "<li>" {l.trim_start_matches("- ")} "</li>");
            }
            h.raw("</ul>");
        } else if !description.is_empty() {
            w!(*h, "<p>" {description} "</p>");
        }
        let schema = &r["content"]["application/json"]["schema"];
        if schema.is_null() {
            if status.starts_with('2') {
                h.raw("<p class=\"hint\">No body.</p>");
            }
            continue;
        }
        let mut rs = Vec::new();
        rows(op.doc, schema, "", &mut rs, 0);
        if let Some(alts) = schema["oneOf"].as_array() {
            let names: Vec<&str> = alts.iter().filter_map(ref_name).collect();
            w!(*h, "<p>One of: " {names.join(", ")} "</p>");
            for alt in alts {
                rows(op.doc, alt, "", &mut rs, 0);
            }
        }
        render_rows(h, "Response fields", &rs, "response-fields");
        // An example body.
        let error_row = status.parse::<u16>().ok().and_then(|n| {
            (n >= 400)
                .then(|| momo_error_rows(op).into_iter().find(|r| r.0 == n))
                .flatten()
        });
        let example = if let (Dialect::Momo, Some(row)) = (op.dialect, error_row) {
            momo_error_example(row.0, row.1)
        } else if op.dialect == Dialect::Momo {
            let fill = Fill {
                currency: "EUR".to_owned(),
                api_user: String::new(),
                callback_host: String::new(),
                base: String::new(),
            };
            momo_example(op.doc, schema, &fill, 0)
        } else {
            let s = resolve(op.doc, schema);
            let first = codes.and_then(|c| {
                c.iter()
                    .find(|c| {
                        c["status"]
                            .as_u64()
                            .is_some_and(|n| n.to_string() == *status)
                    })
                    .cloned()
            });
            let mut out = Map::new();
            for name in docs::property_names(s) {
                let v = match (name, &first) {
                    ("output_ResponseCode", Some(c)) => c["code"].clone(),
                    ("output_ResponseDesc", Some(c)) => c["text"].clone(),
                    _ => mpesa_output(name, &input, op.dialect == Dialect::MpesaV1x),
                };
                out.insert(name.to_owned(), v);
            }
            Value::Object(out)
        };
        if let Ok(text) = serde_json::to_string_pretty(&example) {
            w!(*h, "<details class=\"example\"><summary>Example</summary><pre data-testid=\"example-" {status} "\">" {text} "</pre></details>");
        }
    }
    h.raw("</section>");
}

fn render_codes(h: &mut Html, op: &Op<'_>) {
    h.raw("<section aria-labelledby=\"codes\"><h2 id=\"codes\">Response codes</h2>");
    match op.op["x-codes"].as_array().filter(|c| !c.is_empty()) {
        Some(codes) => {
            let table = if op.dialect == Dialect::MpesaV1x {
                "The v1x gateway answers with the generic table of Vodacom Mozambique's portal."
            } else {
                "The v2 gateway's table for this API; every call after getSession may also be refused for its session (INS-6)."
            };
            w!(*h, "<p class=\"hint\">" {table} " What to do for each: <a href=\"/portal/guides/mpesa-response-codes\">M-Pesa response codes</a>.</p>");
            docs::render_codes(h, codes);
        }
        None => momo_errors(h, op),
    }
    h.raw("</section>");
}

fn render_samples(h: &mut Html, op: &Op<'_>, ctx: &Context, sample: &Sample) {
    h.raw("<section class=\"card samples\" aria-labelledby=\"samples\"><h2 id=\"samples\">Sample code</h2><ul class=\"notes\">");
    match op.dialect {
        Dialect::Momo => {
            if let Some(p) = ctx.unsubscribed {
                w!(*h, "<li class=\"warn\" data-testid=\"not-subscribed\">You are not subscribed to " {p.display_name()} ": <a href=\"/portal\">subscribe on the overview</a> for its keys; the samples say <code>YOUR_SUBSCRIPTION_KEY</code> until then.</li>");
            } else if let (Some(_), Some(p)) = (&ctx.key, ctx.product) {
                w!(*h, "<li>Pre-filled with your " {p.display_name()} " primary key.</li>");
            } else if ctx.key.is_some() {
                h.raw("<li>Pre-filled with one of your primary keys (provisioning takes any product's).</li>");
            }
            if sample.consts.iter().any(|c| c.name == "API_USER") {
                match &ctx.user {
                    Some(u) => {
                        w!(*h, "<li>API user: your <a href=\"/portal/apiusers/" {u.id} "\">" {u.id} "</a> (" {u.target_environment} ").</li>");
                    }
                    None => {
                        h.raw("<li class=\"warn\">You have no API user yet: <a href=\"/portal/apiusers\">create one</a>; the samples say <code>YOUR_API_USER</code> until then.</li>");
                    }
                }
            }
            if sample.env.iter().any(|e| e.name == "API_KEY") {
                h.raw("<li>The API key is never stored in clear, so the samples read it from <code>$API_KEY</code>: create one on the API user's page (it is shown once) and <code>export API_KEY=…</code>.</li>");
            }
        }
        Dialect::MpesaV2 | Dialect::MpesaV1x => {
            if ctx.app.is_some() {
                h.raw(
                    "<li>Pre-filled with the platform public key of your M-Pesa application.</li>",
                );
            }
            if ctx.app.as_ref().is_some_and(|a| a.api_key.is_some()) {
                h.raw("<li>Pre-filled with your API key (from your <a href=\"/portal/profile\">profile</a>; <code>MPESA_API_KEY</code> set in the environment wins), which the samples encrypt as the gateway expects: <code>base64(RSA-PKCS#1 v1.5(API key))</code> under the public key. Step by step: <a href=\"/portal/guides/mpesa-develop-without-library\">Develop without library file</a>.</li>");
            } else {
                h.raw("<li>Your API key was issued before the portal kept keys, so the samples read it from <code>$MPESA_API_KEY</code>; renew it on your <a href=\"/portal/profile\">profile</a> to have it filled in. They encrypt it as the gateway expects: <code>base64(RSA-PKCS#1 v1.5(API key))</code> under the public key. Step by step: <a href=\"/portal/guides/mpesa-develop-without-library\">Develop without library file</a>.</li>");
            }
            if op.dialect == Dialect::MpesaV2 && op.id != "v2GetSession" {
                h.raw("<li>v2: getSession first with the encrypted API key, then the encrypted session id as the bearer of this call.</li>");
            } else if op.dialect == Dialect::MpesaV1x {
                h.raw("<li>v1x: the encrypted API key is the bearer of every call; there is no session.</li>");
            }
        }
    }
    h.raw("</ul>");
    for (i, code) in sample.all().iter().enumerate() {
        if i == 0 {
            w!(*h, "<details class=\"code\" open data-lang=\"" {code.key} "\">");
        } else {
            w!(*h, "<details class=\"code\" data-lang=\"" {code.key} "\">");
        }
        w!(*h, "<summary>" {code.label} "</summary><div class=\"code-actions\"><button type=\"button\" class=\"copy\" data-copy=\"" {code.text} "\" aria-label=\"Copy the " {code.label} " sample\" hidden>Copy</button></div>"
            "<pre data-testid=\"sample-" {code.key} "\"><code>" {code.text} "</code></pre></details>");
    }
    h.raw("</section>");
}

/// The headers the Send Request box starts with: what will be sent, bearer included.
async fn send_headers(
    state: &PortalState,
    session: &Session,
    op: &Op<'_>,
    ctx: &Context,
) -> String {
    let mut lines = Vec::new();
    match op.dialect {
        Dialect::Momo => {
            let auth = momo_auth(op);
            if auth != MomoAuth::Public
                && let Some(k) = &ctx.key
            {
                lines.push(format!("Ocp-Apim-Subscription-Key: {k}"));
            }
            if let (MomoAuth::Token, Some(u), Some(p)) = (auth, &ctx.user, ctx.product) {
                let (token, _) = state.platform.credentials().issue_token(u.id, p);
                lines.push(format!("Authorization: Bearer {token}"));
            }
            if header_param(op.op, "X-Target-Environment").is_some() {
                lines.push(format!("X-Target-Environment: {}", ctx.environment()));
            }
            if op.id.ends_with("bc-authorize") || op.id.ends_with("CreateOauth2Token") {
                lines.push("Content-Type: application/x-www-form-urlencoded".to_owned());
            }
        }
        Dialect::MpesaV2 if op.id != "v2GetSession" => {
            // A session of the gateway the page speaks to (the box's path).
            match state
                .mpesa_session_bearer(session.developer.id, ctx.mpesa_env)
                .await
            {
                Some((bearer, origin)) => {
                    lines.push(format!("Origin: {origin}"));
                    lines.push(format!("Authorization: Bearer {bearer}"));
                }
                None => lines.push(format!("Origin: {}", ctx.origin())),
            }
        }
        // getSession and every v1x call: the encrypted API key (seed 004: "Also included in
        // the Header section is an encrypted format of the API Key").
        Dialect::MpesaV2 | Dialect::MpesaV1x => {
            match state.mpesa_api_key_bearer(session.developer.id).await {
                Some((bearer, origin)) => {
                    lines.push(format!("Origin: {origin}"));
                    lines.push(format!("Authorization: Bearer {bearer}"));
                }
                None => lines.push(format!("Origin: {}", ctx.origin())),
            }
        }
    }
    lines.join("\n")
}

fn send_path(op: &Op<'_>, ctx: &Context, sample: &Sample) -> String {
    let mut path = match op.dialect {
        Dialect::Momo => {
            let user = ctx.user.as_ref().map(|u| u.id.to_string());
            let mut p = String::new();
            for s in &sample.path {
                match s {
                    Seg::Lit(t) => p.push_str(t),
                    Seg::Var("API_USER") => {
                        p.push_str(user.as_deref().unwrap_or("YOUR_API_USER"));
                    }
                    Seg::Var(v) => p.push_str(v),
                }
            }
            p
        }
        _ => ctx.mpesa_url(op).1,
    };
    if !sample.query.is_empty() {
        let q: Vec<String> = sample
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", crate::form_encode(k), crate::form_encode(v)))
            .collect();
        path.push('?');
        path.push_str(&q.join("&"));
    }
    path
}

/// Flattened `name → value` of a JSON value, for the parameter tables.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn pairs_table(
    h: &mut Html,
    caption: &'static str,
    testid: &'static str,
    pairs: &[(String, String)],
) {
    w!(*h, "<div class=\"table-wrap\"><table data-testid=\"" {testid} "\"><caption>" {caption} "</caption><thead><tr><th scope=\"col\">Parameter</th><th scope=\"col\">Value</th></tr></thead><tbody>");
    if pairs.is_empty() {
        h.raw("<tr><td colspan=\"2\">None</td></tr>");
    }
    for (k, v) in pairs {
        w!(*h, "<tr><td><code>" {k} "</code></td><td><code>" {v} "</code></td></tr>");
    }
    h.raw("</tbody></table></div>");
}

fn render_result(h: &mut Html, ctx: &Context, op: &Op<'_>, x: &Exchange, made: Option<&str>) {
    let mut sent = Vec::new();
    if let Some((_, q)) = x.path.split_once('?') {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        sent.extend(pairs);
    }
    if let Ok(v) = serde_json::from_str::<Value>(&x.body) {
        flatten("", &v, &mut sent);
    }
    let mut received = Vec::new();
    if let Some(v) = &x.response_json {
        flatten("", v, &mut received);
    }
    let url = match op.dialect {
        Dialect::Momo => format!("{}{}", ctx.base, x.path),
        _ => {
            let (base, _) = ctx.mpesa_url(op);
            format!("{base}{}", x.path)
        }
    };
    w!(*h, "<section class=\"card result\" aria-labelledby=\"sent\" aria-live=\"polite\"><h2 id=\"sent\">Response</h2>"
        "<p><strong data-testid=\"send-status\">" {x.status} "</strong> " {status_text(&x.status.to_string())} " in " {format!("{:.1}", x.elapsed_ms)} " ms · <code>" {x.method} "</code> <code>" {url} "</code></p>");
    docs::made_line(h, made);
    h.raw("<div class=\"pair-tables\">");
    pairs_table(h, "Request parameters sent", "sent-parameters", &sent);
    pairs_table(h, "Response parameters", "response-parameters", &received);
    w!(*h, "</div><details><summary>Request sent</summary><pre data-testid=\"send-request\">" {x.request_text()} "</pre></details>"
        "<details open><summary>Response received</summary><pre data-testid=\"send-response\">" {x.response_text()} "</pre></details></section>");
}

/// An M-Pesa v2 page's market and gateway: the samples, the resource URL and the Send
/// Request box follow the choice (a GET form, so it works without JavaScript). Production
/// (`openapi`) answers only a developer whose go-live request was approved.
fn render_choice(h: &mut Html, op: &Op<'_>, ctx: &Context) {
    let offered = markets_offered(op);
    if op.dialect != Dialect::MpesaV2 || offered.is_empty() {
        return;
    }
    w!(*h, "<form method=\"get\" action=\"/portal/docs/" {op.id} "\" class=\"inline choice\" aria-label=\"Market and environment\" data-testid=\"choice\">"
        "<label for=\"choice-market\">Market</label> <select id=\"choice-market\" name=\"market\">");
    for m in offered {
        w!(*h, "<option value=\"" {m.path()} "\"");
        h.raw(if ctx.market == Some(m) {
            " selected"
        } else {
            ""
        });
        w!(*h, ">" {m.path()} " (" {m.currency()} ")</option>");
    }
    h.raw("</select> <label for=\"choice-env\">Environment</label> <select id=\"choice-env\" name=\"env\">");
    for (value, label) in [("sandbox", "Sandbox"), ("openapi", "Production (openapi)")] {
        w!(*h, "<option value=\"" {value} "\"");
        h.raw(if ctx.mpesa_env == value {
            " selected"
        } else {
            ""
        });
        w!(*h, ">" {label} "</option>");
    }
    h.raw("</select> <button type=\"submit\">Show</button></form>");
}

async fn render_send(
    h: &mut Html,
    state: &PortalState,
    session: &Session,
    op: &Op<'_>,
    ctx: &Context,
    sample: &Sample,
    attempt: Option<&Attempt>,
) {
    if attempt.is_some() {
        h.raw("<details class=\"send card\" id=\"send\" open>");
    } else {
        h.raw("<details class=\"send card\" id=\"send\">");
    }
    h.raw("<summary><span class=\"send-button\">Send Request</span></summary>");
    // An M-Pesa box's fields filled in from what the developer made (body or query).
    let mut filled = std::borrow::Cow::Borrowed(sample);
    if attempt.is_none() && op.dialect != Dialect::Momo {
        let mut given: Vec<&str> = sample.query.iter().map(|(k, _)| k.as_str()).collect();
        if let Some(b) = sample.body.as_ref().and_then(Value::as_object) {
            given.extend(b.keys().map(String::as_str));
        }
        let history = from_history(state, session, op, ctx, &given).await;
        if !history.is_empty() {
            let s = filled.to_mut();
            for (name, value) in history {
                if let Some(b) = s.body.as_mut().and_then(Value::as_object_mut)
                    && b.contains_key(name)
                {
                    b.insert(name.to_owned(), json!(value));
                }
                for (k, v) in &mut s.query {
                    if k == name {
                        v.clone_from(&value);
                    }
                }
            }
        }
    }
    let sample: &Sample = &filled;
    let path = attempt.map_or_else(|| send_path(op, ctx, sample), |a| a.path.clone());
    let headers = match attempt {
        Some(a) => a.headers.clone(),
        None => send_headers(state, session, op, ctx).await,
    };
    let body = attempt.map_or_else(
        || match &sample.body {
            Some(b) if sample.form => b
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        crate::form_encode(k),
                        crate::form_encode(v.as_str().unwrap_or(""))
                    )
                })
                .collect::<Vec<_>>()
                .join("&"),
            Some(b) => serde_json::to_string_pretty(b).unwrap_or_default(),
            None => String::new(),
        },
        |a| a.body.clone(),
    );
    let (verb_url, ssl) = match op.dialect {
        Dialect::Momo => (format!("{}{}", ctx.base, op.path), ctx.ssl()),
        _ => {
            let (b, p) = ctx.mpesa_url(op);
            (format!("{b}{p}"), ctx.mpesa_ssl())
        }
    };
    w!(*h, "<div class=\"send-body\"><h3>Header</h3><dl class=\"facts\" data-testid=\"send-context\"><dt>REST verb</dt><dd><code>" {op.method} "</code></dd>"
        "<dt>Resource URL</dt><dd><code>" {verb_url} "</code></dd><dt>SSL</dt><dd><code>" {ssl} "</code></dd></dl>");
    match op.dialect {
        Dialect::Momo => {
            if header_param(op.op, "X-Reference-Id").is_some() && op.method == "POST" {
                h.raw("<p class=\"hint\">A fresh <code>X-Reference-Id</code> is added when you send.</p>");
            }
            if momo_auth(op) == MomoAuth::Basic {
                h.raw("<p class=\"hint\">Add <code>Authorization: Basic base64(API user:API key)</code>: the portal does not keep API keys in clear.</p>");
            }
            if momo_auth(op) == MomoAuth::Token && ctx.user.is_none() {
                h.raw("<p class=\"hint\">Create an API user first: the box sends a fresh access token of it.</p>");
            }
        }
        Dialect::MpesaV2 if op.id != "v2GetSession" => {
            h.raw("<p class=\"hint\">The bearer below is a fresh session of your application, encrypted with the public key as a client sends it.</p>");
        }
        _ if ctx.app.as_ref().is_some_and(|a| a.api_key.is_some()) => {
            h.raw("<p class=\"hint\">The bearer below is your API key, encrypted with the public key as a client sends it.</p>");
        }
        _ => {
            h.raw("<p class=\"hint\">This call takes your encrypted API key as the bearer, and yours was issued before the portal kept keys: renew it on your <a href=\"/portal/profile\">profile</a>, or add <code>Authorization: Bearer …</code> with the output of the curl sample's <code>bearer \"$MPESA_API_KEY\"</code>.</p>");
        }
    }
    w!(*h, "<form method=\"post\" action=\"/portal/docs/" {op.id} "#sent\" class=\"stack\">" [csrf_field(session)] [ctx.choice_fields()]
        "<input type=\"hidden\" name=\"method\" value=\"" {op.method} "\">"
        "<label for=\"send-path\">Path</label><input id=\"send-path\" name=\"path\" class=\"mono\" required value=\"" {path} "\">"
        "<label for=\"send-headers\">Headers <span class=\"hint\">(one <code>Name: value</code> per line)</span></label>"
        "<textarea id=\"send-headers\" name=\"headers\" rows=\"5\" class=\"mono\" data-testid=\"send-headers\">" ~{headers} "</textarea>"
        "<label for=\"send-body\">Body <span class=\"hint\">(the request parameters; editable)</span></label>"
        "<textarea id=\"send-body\" name=\"body\" rows=\"10\" class=\"mono\">" ~{body} "</textarea>"
        "<button type=\"submit\">Send</button></form></div></details>");
}

/// How many of a developer's newest payments a Send Request box looks through for its
/// defaults ([`from_history`]).
const HISTORY_WINDOW: u32 = 1_000;

/// An M-Pesa Send Request box's fields with what the developer made last, so that it works
/// as it stands: a status query names their latest successful C2B of the page's market
/// and gateway (the document's example id is no payment of theirs), a reversal the latest
/// one not reversed yet and all of its amount, a
/// mandate's creation a fresh reference (a second one with the same is a duplicate), and
/// a mandate's payment, query and cancel their latest active mandate and its customer.
/// Where there is none, the examples stay. `given`: the fields of the box (body or query).
async fn from_history(
    state: &PortalState,
    session: &Session,
    op: &Op<'_>,
    ctx: &Context,
    given: &[&str],
) -> Vec<(&'static str, String)> {
    use mkoba_platform::model::{PaymentKind, PaymentStatus};
    let has = |name: &str| given.contains(&name);
    if op.id == "v2DirectDebitCreation" && has("input_ThirdPartyReference") {
        return vec![(
            "input_ThirdPartyReference",
            Uuid::new_v4().simple().to_string(),
        )];
    }
    let wants_transaction = has("input_TransactionID") || has("input_QueryReference");
    let wants_mandate = matches!(
        op.id,
        "v2DirectDebitPayment" | "v2QueryDirectDebit" | "v2DirectDebitCancel"
    );
    let currency = match (op.dialect, ctx.market) {
        _ if !wants_transaction && !wants_mandate => return Vec::new(),
        (Dialect::MpesaV1x, _) => "MZN",
        (_, Some(m)) => m.currency(),
        _ => return Vec::new(),
    };
    let mut filter = mkoba_platform::portal::PaymentFilter {
        developer_id: session.developer.id,
        kind: Some(if wants_mandate {
            PaymentKind::MpesaMandate
        } else {
            PaymentKind::MpesaC2b
        }),
        status: Some(PaymentStatus::Successful),
        environment: Some(if ctx.mpesa_env == "openapi" {
            mkoba_platform::portal::Environments::Production
        } else {
            mkoba_platform::portal::Environments::Sandbox
        }),
        limit: 25,
        ..mkoba_platform::portal::PaymentFilter::default()
    };
    // Among the developer's newest thousand payments, so that a page costs the same
    // however many they made; a page that cannot read them keeps the examples.
    let portal = state.platform.portal();
    let Ok(until) = portal.search_window(&filter, HISTORY_WINDOW).await else {
        return Vec::new();
    };
    filter.until = until;
    let Ok((latest, _)) = portal.payments_after(&filter).await else {
        return Vec::new();
    };
    // A reversal reverses one not reversed yet, all of it (a second run of the box would
    // otherwise reverse the same one again: INS-15).
    let reversal = has("input_ReversalAmount");
    let mut chosen = None;
    for p in latest
        .into_iter()
        .filter(|p| p.currency().as_str() == currency)
    {
        let untouched = !reversal
            || state
                .platform
                .payments()
                .refunds_of(&p.reference_id)
                .await
                .is_ok_and(|r| r.iter().all(|r| r.status == PaymentStatus::Failed));
        if untouched {
            chosen = Some(p);
            break;
        }
    }
    let Some(p) = chosen else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if reversal {
        let amount = p.amount.to_decimal_string();
        // v1x amounts are written without decimals where they have none (the sample's 10).
        let amount = match op.dialect {
            Dialect::MpesaV1x => amount.trim_end_matches(".00").to_owned(),
            _ => amount,
        };
        out.push(("input_ReversalAmount", amount));
    }
    if wants_mandate {
        if let Some(reference) = p.payee_note {
            out.push(("input_ThirdPartyReference", reference));
        }
        if has("input_CustomerMSISDN") {
            out.push(("input_CustomerMSISDN", p.party.id));
        }
    } else if let Some(id) = p.financial_transaction_id {
        for name in ["input_TransactionID", "input_QueryReference"] {
            if has(name) {
                out.push((name, id.clone()));
            }
        }
    }
    out
}

async fn page(
    state: &PortalState,
    session: &Session,
    headers: &HeaderMap,
    tls: bool,
    id: &str,
    choice: Choice,
    sent: Option<(&Attempt, Result<Exchange, String>)>,
) -> Response {
    let (attempt, result) = match sent {
        Some((a, r)) => (Some(a), Some(r)),
        None => (None, None),
    };
    let Some(op) = find(&state.openapi, id) else {
        tracing::error!(
            operation = id,
            "an operation the page was routed for is not in the OpenAPI documents"
        );
        return crate::internal_error();
    };
    let ctx = match context(state, session, headers, tls, &op, choice).await {
        Ok(ctx) => ctx,
        Err(e) => return crate::failed(e),
    };
    let sample = build_sample(&op, &ctx);
    let summary = op.op["summary"].as_str().unwrap_or(op.id);
    let tag = op.op["tags"][0].as_str().unwrap_or("");
    let title = op.doc["info"]["title"].as_str().unwrap_or("API");
    let mut h = Html::new();
    w!(h, "<link rel=\"stylesheet\" href=\"/portal/assets/docs.css\">"
        "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/portal/docs\">API docs</a> › " {title} " › " {crate::pages::account::title_case(tag)} "</nav>"
        "<h1>" {summary} "</h1>"
        "<p class=\"endpoint\"><span class=\"method m-" {op.method.to_ascii_lowercase()} "\">" {op.method} "</span> <code data-testid=\"op-path\">" {op.path} "</code>");
    if let Some(port) = op.item["x-mkoba-port"].as_u64() {
        w!(h, " <span class=\"badge\">port " {port} "</span>");
    }
    w!(h, " <span class=\"badge\">" {op.id} "</span></p>");
    if let Some(d) = op.op["description"].as_str() {
        w!(h, "<p>" {d} "</p>");
    }
    h.raw("<div class=\"doc-grid\"><div class=\"doc-main\">");
    render_context(&mut h, &op, &ctx);
    render_choice(&mut h, &op, &ctx);
    render_send(&mut h, state, session, &op, &ctx, &sample, attempt).await;
    if let Some(result) = result {
        match result {
            Ok(x) => {
                let made = docs::made_payment(state, session, &x).await;
                render_result(&mut h, &ctx, &op, &x, made.as_deref());
            }
            Err(problem) => {
                w!(h, "<p class=\"error\" role=\"alert\" data-testid=\"send-error\">" {problem} "</p>");
            }
        }
    }
    render_request(&mut h, &op, &sample);
    render_responses(&mut h, &op, &sample);
    h.raw("</div><div class=\"doc-side\">");
    render_samples(&mut h, &op, &ctx, &sample);
    h.raw("</div></div>");
    // Below both columns, at the page's width: the codes' table has up to four columns
    // of text, which the reference column cut to a scroll at 1280 px.
    render_codes(&mut h, &op);
    document(summary, Some(session), "docs", h).into_response()
}

/// `GET /portal/docs/{operationId}`.
pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    tls: Option<axum::Extension<mkoba_platform::widget::OverTls>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if find(&state.openapi, &id).is_none() {
        return crate::not_found().await;
    }
    let q = crate::query_params(query.as_deref());
    let choice = Choice::of(
        q.get("market").map(String::as_str),
        q.get("env").map(String::as_str),
    );
    page(&state, &session, &headers, tls.is_some(), &id, choice, None).await
}

/// `POST /portal/docs/{operationId}`: the Send Request box.
pub(crate) async fn send(
    State(state): State<PortalState>,
    session: Session,
    crate::ClientAddr(client): crate::ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    tls: Option<axum::Extension<mkoba_platform::widget::OverTls>>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Some(op) = find(&state.openapi, &id) else {
        return crate::not_found().await;
    };
    let attempt = Attempt {
        api_user: String::new(),
        method: op.method.clone(),
        path: form.get("path").to_owned(),
        headers: form.raw("headers").to_owned(),
        body: form.raw("body").to_owned(),
    };
    let result = docs::exchange(&state, &session, client, &attempt).await;
    let refused = result.is_err();
    let page = page(
        &state,
        &session,
        &headers,
        tls.is_some(),
        &id,
        Choice::of(Some(form.get("market")), Some(form.get("env"))),
        Some((&attempt, result)),
    )
    .await;
    if refused {
        docs::bad_request(page)
    } else {
        page
    }
}
