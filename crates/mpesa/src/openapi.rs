//! The OpenAPI 3.0 document of both M-Pesa gateways, written from [`crate::catalogue`] and
//! nothing else, so it documents exactly what the dispatcher serves. Served at
//! `/_mkoba/mpesa/openapi.json` and rendered by the portal's API docs page.
//!
//! * v2 paths are `/{env}/ipg/v2/{market}/<path>` (`env` and `market` as enumerated path
//!   parameters); v1x paths are `/ipg/v1x/<path>`, with the real gateway's port for the API
//!   in `x-mkoba-port` and in a `servers` entry of their own.
//! * GET operations take their fields as query parameters, POST and PUT as a JSON object
//!   body (every field a string; `pattern` when the portal gives a regular expression, the
//!   allowed values in `x-allowed` and the description otherwise).
//! * Responses: the operation's success status with its `output_*` fields, then one
//!   response per HTTP status of its error codes; every operation also lists its codes in
//!   `x-codes` (`[{code, status, text}]`), status and text as its gateway answers them.
//! * Field order on the wire is the catalogue's: objects here are sorted by name, so each
//!   object schema carries its fields in order in `x-field-order`.

use axum::http::StatusCode;
use mkoba_api_types::mpesa::{InsCode, Market};
use serde_json::{Map, Value, json};

use crate::catalogue::{Api, OPERATIONS, Operation, Param, Presence};
use crate::wire::{self, Code, Gateway};

/// Where the server serves the document.
pub const PATH: &str = "/_mkoba/mpesa/openapi.json";

/// The tag of each gateway's operations, in the order the document lists them.
fn tag(gateway: Gateway) -> &'static str {
    match gateway {
        Gateway::V2 => "M-Pesa v2",
        Gateway::V1x => "M-Pesa v1x (Mozambique)",
    }
}

/// A code of the v2 per-API table (`mkoba-api-types`).
fn v2_code(name: &str) -> Option<Code> {
    let d = InsCode::parse(name).documented()?;
    Some(Code {
        code: d.code,
        status: StatusCode::from_u16(d.status).ok()?,
        desc: d.text,
    })
}

/// A code `op` lists, as Mkoba answers it there: the operation's own variant when it has
/// one ([`Operation::answers`]), Mkoba's 500 for `INS-1`, else v2 from the per-API table,
/// v1x from the generic table (through [`Gateway::code`] where v2 knows the code too). A
/// success has the operation's own success status (201, or 200 for sessions and queries).
pub fn code_of(op: &Operation, name: &str) -> Option<Code> {
    if let Some(c) = op.answers.iter().find(|c| c.code == name) {
        return Some(*c);
    }
    let c = match (op.gateway, name) {
        (_, "INS-1") => wire::INTERNAL,
        (Gateway::V2, _) => v2_code(name)?,
        (Gateway::V1x, _) => match v2_code(name) {
            Some(c) => Gateway::V1x.code(c),
            None => wire::generic_code(name)?,
        },
    };
    Some(if c.code == "INS-0" {
        c.with(op.success, c.desc)
    } else {
        c
    })
}

/// The codes of `op` (once each, in the catalogue's order), then on v2 the session
/// refusals every call after `getSession` may get; a name neither table knows is left out
/// (the unit tests make sure there is none).
pub fn codes_of(op: &Operation) -> Vec<Code> {
    let mut out: Vec<Code> = Vec::new();
    let sessions: &[Code] = if op.gateway == Gateway::V2 && op.api != Api::GetSession {
        &wire::SESSION_REFUSALS
    } else {
        &[]
    };
    for c in op
        .codes
        .iter()
        .filter_map(|n| code_of(op, n))
        .chain(sessions.iter().copied())
    {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// A rule that is a regular expression (`^…$`) as the pattern and what follows it (a note
/// such as `(YYYYMMDD)`); any other rule is a description of the allowed values.
fn split_rule(rule: &str) -> (Option<&str>, Option<&str>) {
    if !rule.starts_with('^') {
        return (None, Some(rule).filter(|r| !r.is_empty()));
    }
    match rule.rfind('$') {
        Some(end) if end + 1 < rule.len() => {
            let note = rule[end + 1..].trim();
            (Some(&rule[..=end]), Some(note).filter(|n| !n.is_empty()))
        }
        _ => (Some(rule), None),
    }
}

/// What a field's description says: the portal's text, then its rule when that is not a
/// regular expression, then the group it is one of.
fn param_description(op: &Operation, p: &Param) -> String {
    let mut d = p.description.trim_end_matches('.').to_owned();
    let (pattern, note) = split_rule(p.rule);
    if let Some(note) = note {
        if pattern.is_some() {
            d.push_str(&format!(" {note}"));
        } else {
            d.push_str(&format!(". Allowed: {note}"));
        }
    }
    if p.presence == Presence::OneOf {
        let group: Vec<&str> = op
            .params
            .iter()
            .filter(|q| q.presence == Presence::OneOf)
            .map(|q| q.name)
            .collect();
        d.push_str(&format!(
            ". One of {} is required",
            group.join(if group.len() == 2 { " and " } else { ", " })
        ));
    }
    d.push('.');
    d
}

/// A field's schema: a string, with its pattern or allowed values and its example.
fn param_schema(p: &Param) -> Value {
    let mut s = json!({"type": "string"});
    match split_rule(p.rule) {
        (Some(pattern), _) => s["pattern"] = json!(pattern),
        (None, Some(allowed)) => s["x-allowed"] = json!(allowed),
        (None, None) => {}
    }
    if !p.example.is_empty() {
        s["example"] = json!(p.example);
    }
    s
}

fn header(name: &str, required: bool, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": required, "schema": {"type": "string"}, "description": description})
}

/// The bearer an operation takes.
fn security_scheme(op: &Operation) -> &'static str {
    match (op.gateway, op.api) {
        (Gateway::V2, Api::GetSession) | (Gateway::V1x, _) => "apiKeyBearer",
        (Gateway::V2, _) => "sessionBearer",
    }
}

fn parameters(op: &Operation) -> Vec<Value> {
    let mut out = Vec::new();
    if op.gateway == Gateway::V2 {
        out.push(json!({
            "name": "env", "in": "path", "required": true,
            "schema": {"type": "string", "enum": ["sandbox", "openapi"]},
            "description": "sandbox (the sandbox's test numbers are active) or openapi (production: only the ledger decides).",
        }));
        let offered = if op.markets.is_empty() {
            &Market::ALL[..]
        } else {
            op.markets
        };
        let markets: Vec<&str> = offered.iter().map(|m| m.path()).collect();
        let described: Vec<String> = offered
            .iter()
            .map(|m| format!("{} ({}, {})", m.path(), m.country(), m.currency()))
            .collect();
        out.push(json!({
            "name": "market", "in": "path", "required": true,
            "schema": {"type": "string", "enum": markets},
            "description": format!("The market, with its input_Country and input_Currency: {}.", described.join(", ")),
        }));
    }
    let bearer = match security_scheme(op) {
        "sessionBearer" => {
            "Bearer base64(RSA-PKCS#1 v1.5(session id)) under the platform public key: the session id getSession returned."
        }
        _ if op.gateway == Gateway::V2 => {
            "Bearer base64(RSA-PKCS#1 v1.5(API key)) under the platform public key: the application's API key."
        }
        _ => {
            "Bearer base64(RSA-PKCS#1 v1.5(API key)) under the platform public key, on every call (no session)."
        }
    };
    out.push(header("Authorization", true, bearer));
    out.push(header(
        "Origin",
        false,
        "One of the application's allowed origins (with * any, or none, is allowed); another is 403 {\"output_error\":\"Origin not allowed\"}.",
    ));
    if op.method == "GET" {
        for p in op.params {
            let mut schema = param_schema(p);
            let example = schema.as_object_mut().and_then(|s| s.remove("example"));
            let mut q = json!({
                "name": p.name, "in": "query", "required": p.presence == Presence::Required,
                "schema": schema, "description": param_description(op, p),
            });
            if let Some(example) = example {
                q["example"] = example;
            }
            out.push(q);
        }
    }
    out
}

/// The JSON body of a POST or PUT.
fn request_body(op: &Operation) -> Option<Value> {
    if op.method == "GET" || op.params.is_empty() {
        return None;
    }
    let mut properties = Map::new();
    for p in op.params {
        let mut s = param_schema(p);
        s["description"] = json!(param_description(op, p));
        properties.insert(p.name.to_owned(), s);
    }
    let order: Vec<&str> = op.params.iter().map(|p| p.name).collect();
    let mut schema = json!({"type": "object", "properties": properties, "x-field-order": order});
    let required: Vec<&str> = op.required().collect();
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}))
}

/// `INS-0 Request processed successfully`; several codes as a (CommonMark) list.
fn listed(codes: &[&Code]) -> String {
    match codes {
        [one] => format!("{} {}", one.code, one.desc),
        _ => codes
            .iter()
            .map(|c| format!("- {} {}", c.code, c.desc))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn error_schema(gateway: Gateway) -> Value {
    let name = match gateway {
        Gateway::V2 => "V2Error",
        Gateway::V1x => "V1xError",
    };
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn responses(op: &Operation, codes: &[Code]) -> Map<String, Value> {
    let mut out = Map::new();
    let at = |status: u16| -> Vec<&Code> {
        codes
            .iter()
            .filter(|c| c.status.as_u16() == status)
            .collect()
    };
    let success = at(op.success);
    let properties: Map<String, Value> = op
        .outputs
        .iter()
        .map(|o| ((*o).to_owned(), json!({"type": "string"})))
        .collect();
    out.insert(
        op.success.to_string(),
        json!({
            "description": if success.is_empty() { "Success".to_owned() } else { listed(&success) },
            "content": {"application/json": {"schema": {"type": "object", "properties": properties, "x-field-order": op.outputs}}},
        }),
    );
    let mut statuses: Vec<u16> = codes
        .iter()
        .map(|c| c.status.as_u16())
        .filter(|s| *s != op.success)
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        out.insert(
            status.to_string(),
            json!({
                "description": listed(&at(status)),
                "content": {"application/json": {"schema": error_schema(op.gateway)}},
            }),
        );
    }
    out
}

/// The other methods and paths an operation is served on, said for a person.
fn description(op: &Operation) -> Option<String> {
    let mut d = Vec::new();
    if !op.also.is_empty() {
        d.push(format!("Also served by {}.", op.also.join(" and ")));
    }
    if !op.aliases.is_empty() {
        let prefix = op.full_path();
        let prefix = &prefix[..prefix.len() - op.path.len()];
        let aliases: Vec<String> = op.aliases.iter().map(|a| format!("{prefix}{a}")).collect();
        d.push(format!("Also served at {}.", aliases.join(", ")));
    }
    if let Some(port) = op.port {
        d.push(format!(
            "The real gateway serves this API on port {port} only; Mkoba serves it on its main listener, and on a port of its own with --mpesa-v1x-ports ({port} with `on`, or the port given for it)."
        ));
    }
    (!d.is_empty()).then(|| d.join(" "))
}

fn operation(op: &Operation) -> Value {
    let codes = codes_of(op);
    let mut o = json!({
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [tag(op.gateway)],
        "parameters": parameters(op),
        "responses": responses(op, &codes),
        "security": [{security_scheme(op): []}],
        "x-codes": codes.iter().map(|c| json!({"code": c.code, "status": c.status.as_u16(), "text": c.desc})).collect::<Vec<_>>(),
    });
    if let Some(d) = description(op) {
        o["description"] = json!(d);
    }
    if let Some(body) = request_body(op) {
        o["requestBody"] = body;
    }
    if !op.also.is_empty() {
        o["x-also-methods"] = json!(op.also);
    }
    if !op.aliases.is_empty() {
        o["x-aliases"] = json!(op.aliases);
    }
    o
}

fn schemas() -> Value {
    let error = |reference: &str| {
        // A duplicate (409 INS-10) says "N/A" for the transaction id, as the gateway does.
        let order = [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionID",
            "output_ConversationID",
            reference,
        ];
        let properties: Map<String, Value> = order
            .iter()
            .map(|o| ((*o).to_owned(), json!({"type": "string"})))
            .collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": ["output_ResponseCode", "output_ResponseDesc"],
            "x-field-order": order,
        })
    };
    json!({
        "V2Error": error(Gateway::V2.echo()),
        "V1xError": error(Gateway::V1x.echo()),
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths.entry(op.full_path()).or_insert_with(|| json!({}));
        item[op.method.to_ascii_lowercase()] = operation(op);
        if let Some(port) = op.port {
            item["x-mkoba-port"] = json!(port);
            item["servers"] = json!([
                {"url": "/", "description": "Mkoba's main listener: every v1x API"},
                {
                    "url": format!("http://{{host}}:{port}"),
                    "description": format!("Port {port}: this API's own port, as on the real gateway (api.sandbox.vm.co.mz:{port}); Mkoba listens on it with --mpesa-v1x-ports on"),
                    "variables": {"host": {"default": "localhost"}},
                },
            ]);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Mkoba: Vodacom M-Pesa OpenAPI",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Everything Mkoba serves in the M-Pesa dialect, both gateways. v2 (openapi.m-pesa.com): /{env}/ipg/v2/{market}/…, getSession with the encrypted API key, then the encrypted session id on every call. v1x (Vodacom Mozambique): /ipg/v1x/…, one port per API on the real gateway, the encrypted API key on every call, input_ThirdPartyReference and the generic code table. Bearers are base64 of RSA-PKCS#1 v1.5 under the platform public key (the portal's M-Pesa page, or GET /_mkoba/mpesa/application). Fields may also come in the query string or a JSON body on any method, names in any case. With an asynchronous result URL the first answer has no output_TransactionID and the result is POSTed to the URL.",
        },
        "tags": [
            {"name": tag(Gateway::V2), "description": "The OpenAPI v2 gateway: paths /{env}/ipg/v2/{market}/…, per-API response codes."},
            {"name": tag(Gateway::V1x), "description": "Vodacom Mozambique's v1x gateway: paths /ipg/v1x/…, the API key on every call, the generic response codes."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKeyBearer": {"type": "http", "scheme": "bearer", "description": "base64(RSA-PKCS#1 v1.5(API key)) under the platform public key."},
                "sessionBearer": {"type": "http", "scheme": "bearer", "description": "base64(RSA-PKCS#1 v1.5(session id)) under the platform public key."},
            },
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str) -> Value {
        let doc = document();
        let found = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .find(|o| o["operationId"] == id)
            .cloned();
        found.unwrap_or_else(|| panic!("{id} is not documented"))
    }

    #[test]
    fn every_catalogued_operation_is_documented_once_with_every_code_known() {
        let doc = document();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for (key, o) in item.as_object().unwrap() {
                if ["get", "post", "put", "delete"].contains(&key.as_str()) {
                    ids.push(o["operationId"].as_str().unwrap().to_owned());
                }
            }
        }
        ids.sort();
        let mut catalogued: Vec<String> = OPERATIONS
            .iter()
            .map(|o| o.operation_id.to_owned())
            .collect();
        catalogued.sort();
        assert_eq!(ids, catalogued);
        for o in OPERATIONS {
            for name in o.codes {
                assert!(
                    code_of(o, name).is_some(),
                    "{} lists {name}, which its gateway's table does not have",
                    o.operation_id
                );
            }
        }
    }

    #[test]
    fn v2_paths_enumerate_environments_and_markets() {
        let doc = document();
        let item = &doc["paths"]["/{env}/ipg/v2/{market}/c2bPayment/singleStage/"];
        let params = item["post"]["parameters"].as_array().unwrap();
        assert_eq!(params[0]["name"], "env");
        assert_eq!(params[0]["schema"]["enum"], json!(["sandbox", "openapi"]));
        assert_eq!(
            params[1]["schema"]["enum"],
            json!([
                "vodafoneGHA",
                "vodacomTZN",
                "vodacomLES",
                "vodacomDRC",
                "vodacomMOZ"
            ])
        );
        assert!(item.get("x-mkoba-port").is_none());
    }

    #[test]
    fn bodies_carry_patterns_examples_and_the_required_fields() {
        let c2b = op("v2C2bSingleStage");
        let schema = &c2b["requestBody"]["content"]["application/json"]["schema"];
        let amount = &schema["properties"]["input_Amount"];
        assert_eq!(amount["type"], "string");
        assert_eq!(amount["pattern"], r"^\d*\.?\d+$");
        assert_eq!(amount["example"], "10.00");
        let country = &schema["properties"]["input_Country"];
        assert!(country.get("pattern").is_none());
        assert_eq!(
            country["x-allowed"],
            "the market's: GHA, TZN, LES, DRC, MOZ"
        );
        assert!(
            country["description"]
                .as_str()
                .unwrap()
                .contains("Allowed: the market's")
        );
        assert_eq!(schema["required"].as_array().unwrap().len(), 8);
        assert_eq!(schema["x-field-order"][0], "input_Amount");
        assert!(c2b["parameters"].as_array().unwrap().len() == 4);
        // A regular expression followed by a note keeps the note out of the pattern.
        let create = op("v2DirectDebitCreation");
        let date = &create["requestBody"]["content"]["application/json"]["schema"]["properties"]["input_FirstPaymentDate"];
        assert_eq!(date["pattern"], "^[0-9]{8}$");
        assert!(date["description"].as_str().unwrap().contains("(YYYYMMDD)"));
        // One of a group: none required, each says so.
        let pay = op("v2DirectDebitPayment");
        let schema = &pay["requestBody"]["content"]["application/json"]["schema"];
        let required = schema["required"].as_array().unwrap();
        assert!(!required.contains(&json!("input_MsisdnToken")));
        assert!(!required.contains(&json!("input_CustomerMSISDN")));
        assert!(
            schema["properties"]["input_MsisdnToken"]["description"]
                .as_str()
                .unwrap()
                .contains("One of input_MsisdnToken and input_CustomerMSISDN is required")
        );
    }

    #[test]
    fn gets_take_query_parameters_and_no_body() {
        let query = op("v2QueryTransactionStatus");
        assert!(query.get("requestBody").is_none());
        let params = query["parameters"].as_array().unwrap();
        let reference = params
            .iter()
            .find(|p| p["name"] == "input_QueryReference")
            .unwrap();
        assert_eq!(reference["in"], "query");
        assert_eq!(reference["required"], true);
        assert_eq!(reference["schema"]["pattern"], "^[A-Za-z0-9]{1,32}$");
        assert_eq!(reference["example"], "000000000000000000001");
        assert_eq!(query["x-also-methods"], json!(["POST"]));
        let session = op("v2GetSession");
        let auth = session["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Authorization")
            .unwrap();
        assert!(auth["description"].as_str().unwrap().contains("API key"));
        assert_eq!(session["security"], json!([{"apiKeyBearer": []}]));
        assert_eq!(
            query["security"],
            json!([{"sessionBearer": []}]),
            "every other v2 call takes the session"
        );
    }

    #[test]
    fn responses_group_the_codes_by_status_as_each_gateway_answers_them() {
        let c2b = op("v2C2bSingleStage");
        let responses = c2b["responses"].as_object().unwrap();
        let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert_eq!(statuses, ["201", "400", "401", "408", "409", "422", "500"]);
        assert_eq!(
            responses["201"]["description"],
            "INS-0 Request processed successfully"
        );
        let schema = &responses["201"]["content"]["application/json"]["schema"];
        assert_eq!(schema["x-field-order"][2], "output_TransactionID");
        assert!(
            responses["422"]["description"]
                .as_str()
                .unwrap()
                .contains("INS-2006 Insufficient balance")
        );
        // Mkoba's own faults are 500 (the portal's v2 tables say 400).
        assert_eq!(responses["500"]["description"], "INS-1 Internal Error");
        // Every call after getSession may be refused for its session.
        let unauthorized = responses["401"]["description"].as_str().unwrap();
        assert!(
            unauthorized.contains("Invalid Session ID")
                && unauthorized.contains("Session key expired"),
            "{unauthorized}"
        );
        // An operation's own variants.
        let cancel = op("v2DirectDebitCancel");
        assert!(
            cancel["x-codes"].as_array().unwrap().contains(
                &json!({"code": "INS-6", "status": 401, "text": "Mandate does not exist"})
            )
        );
        let query_dd = op("v2QueryDirectDebit");
        assert!(query_dd["x-codes"].as_array().unwrap().contains(&json!({
            "code": "INS-52", "status": 500,
            "text": "The MandateID used does not correspond to the ThirdPartyReference used."
        })));
        assert!(
            c2b["x-codes"].as_array().unwrap().contains(
                &json!({"code": "INS-26", "status": 400, "text": "Invalid Currency Used"})
            )
        );
        // A query succeeds with 200.
        let query = op("v2QueryTransactionStatus");
        assert_eq!(
            query["x-codes"][0],
            json!({"code": "INS-0", "status": 200, "text": "Request processed successfully"})
        );
        assert!(query["responses"].get("200").is_some());
        // v1x: the generic table (INS-1 is 500, INS-26 is "Not authorized").
        let reversal = op("v1xReversal");
        let codes = reversal["x-codes"].as_array().unwrap();
        assert!(codes.contains(&json!({"code": "INS-1", "status": 500, "text": "Internal Error"})));
        assert!(
            codes.contains(&json!({"code": "INS-26", "status": 400, "text": "Not authorized"}))
        );
        assert!(
            codes.contains(&json!({"code": "INS-2", "status": 401, "text": "Invalid API Key"}))
        );
        assert!(reversal["responses"].get("500").is_some());
        // The undocumented operations answer 400 INS-997 (once the session is good).
        let not_built = op("v2NotBuilt");
        let responses = not_built["responses"].as_object().unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses["400"]["description"], "INS-997 API Not Enabled");
    }

    #[test]
    fn v1x_paths_name_their_port() {
        let doc = document();
        let item = &doc["paths"]["/ipg/v1x/c2bPayment/singleStage/"];
        assert_eq!(item["x-mkoba-port"], 18352);
        assert_eq!(item["servers"][1]["url"], "http://{host}:18352");
        let c2b = &item["post"];
        assert_eq!(c2b["security"], json!([{"apiKeyBearer": []}]));
        let names: Vec<&str> = c2b["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Authorization", "Origin"]);
        let schema = &c2b["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            schema["properties"]
                .get("input_ThirdPartyReference")
                .is_some()
        );
        assert!(schema["properties"].get("input_Country").is_none());
        assert_eq!(
            c2b["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/V1xError"
        );
        assert!(
            op("v2B2cSingleStage")["description"]
                .as_str()
                .unwrap()
                .contains("/{env}/ipg/v2/{market}/b2cPayment/singleStage/")
        );
    }

    #[test]
    fn rules_split_into_pattern_and_note() {
        assert_eq!(split_rule("^[0-9]{2}$"), (Some("^[0-9]{2}$"), None));
        assert_eq!(
            split_rule("^[0-9]{8}$ (YYYYMMDD)"),
            (Some("^[0-9]{8}$"), Some("(YYYYMMDD)"))
        );
        assert_eq!(split_rule("True or False"), (None, Some("True or False")));
        assert_eq!(split_rule(""), (None, None));
    }

    #[test]
    fn the_document_is_the_same_every_time() {
        assert_eq!(document().to_string(), document().to_string());
    }
}
