//! API docs: the OpenAPI documents of what the server serves, rendered readably, and a
//! "try it" box that sends a request with the signed-in developer's credentials (their
//! subscription key and a token for one of their API users) and shows the raw response.
//!
//! The request never leaves the process: it is handed to the API router directly, so the
//! box cannot be used to reach anything but this server's API.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{KeySlot, Product};
use serde_json::Value;
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::html::Html;
use crate::{Form, PortalState, Session, csrf_field, document, w};

const BODY_LIMIT: usize = 1 << 20;

/// (method, path, operation object, path item).
type Operation<'a> = (String, String, &'a Value, &'a Value);

/// The keys of a path item that are operations (the others are `servers`, `parameters`,
/// extensions…).
pub(crate) const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One row of an operation's parameter table: a path, header or query parameter, or a
/// property of an inline JSON body.
pub(crate) struct Field<'a> {
    name: &'a str,
    pub place: &'a str,
    kind: &'a str,
    required: bool,
    /// A regular expression, shown as code.
    pattern: Option<&'a str>,
    /// Allowed values said in words (`x-allowed`) or enumerated.
    allowed: Option<String>,
    example: Option<String>,
    description: &'a str,
}

fn example_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn allowed_of(schema: &Value) -> Option<String> {
    if let Some(a) = schema["x-allowed"].as_str() {
        return Some(a.to_owned());
    }
    let values: Vec<String> = schema["enum"]
        .as_array()?
        .iter()
        .filter_map(example_of)
        .collect();
    Some(values.join(", "))
}

/// An object schema's property names, in wire order when the document gives it
/// (`x-field-order`), else in the document's order.
pub(crate) fn property_names(schema: &Value) -> Vec<&str> {
    if let Some(order) = schema["x-field-order"].as_array() {
        return order.iter().filter_map(Value::as_str).collect();
    }
    schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

pub(crate) fn fields_of(op: &Value) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        let schema = &p["schema"];
        out.push(Field {
            name: p["name"].as_str().unwrap_or(""),
            place: p["in"].as_str().unwrap_or(""),
            kind: schema["type"].as_str().unwrap_or(""),
            required: p["required"] == true,
            pattern: schema["pattern"].as_str(),
            allowed: allowed_of(schema),
            example: example_of(&p["example"]).or_else(|| example_of(&schema["example"])),
            description: p["description"].as_str().unwrap_or(""),
        });
    }
    let body = &op["requestBody"]["content"]["application/json"]["schema"];
    let required = body["required"].as_array();
    for name in property_names(body) {
        let schema = &body["properties"][name];
        out.push(Field {
            name,
            place: "body",
            kind: schema["type"].as_str().unwrap_or(""),
            required: required.is_some_and(|r| r.iter().any(|n| n == name)),
            pattern: schema["pattern"].as_str(),
            allowed: allowed_of(schema),
            example: example_of(&schema["example"]),
            description: schema["description"].as_str().unwrap_or(""),
        });
    }
    out
}

pub(crate) fn render_fields(h: &mut Html, fields: &[Field<'_>]) {
    if fields.is_empty() {
        return;
    }
    // Type, rules and examples get columns only when the document gives some.
    let detailed = fields
        .iter()
        .any(|f| f.pattern.is_some() || f.allowed.is_some() || f.example.is_some());
    h.raw("<div class=\"table-wrap\"><table><caption>Parameters</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">In</th>");
    if detailed {
        h.raw("<th scope=\"col\">Type</th>");
    }
    h.raw("<th scope=\"col\">Required</th>");
    if detailed {
        h.raw("<th scope=\"col\">Allowed values / pattern</th><th scope=\"col\">Example</th>");
    }
    h.raw("<th scope=\"col\">Description</th></tr></thead><tbody>");
    for f in fields {
        w!(*h, "<tr><td><code>" {f.name} "</code></td><td>" {f.place} "</td>");
        if detailed {
            w!(*h, "<td>" {f.kind} "</td>");
        }
        w!(*h, "<td>" {if f.required { "yes" } else { "no" }} "</td>");
        if detailed {
            h.raw("<td>");
            if let Some(p) = f.pattern {
                w!(*h, "<code>" {p} "</code>");
            } else if let Some(a) = &f.allowed {
                h.text(a);
            }
            h.raw("</td><td>");
            if let Some(e) = &f.example {
                w!(*h, "<code>" {e} "</code>");
            }
            h.raw("</td>");
        }
        w!(*h, "<td>" {f.description} "</td></tr>");
    }
    h.raw("</tbody></table></div>");
}

/// The `x-codes` of an operation (`[{code, status, text}]`) as a table.
pub(crate) fn render_codes(h: &mut Html, codes: &[Value]) {
    h.raw("<div class=\"table-wrap\"><table><caption>Response codes</caption><thead><tr><th scope=\"col\">Code</th><th scope=\"col\">HTTP status</th><th scope=\"col\">Text</th></tr></thead><tbody>");
    for c in codes {
        w!(*h, "<tr><td><code>" {c["code"].as_str().unwrap_or("")} "</code></td><td>" {c["status"]} "</td><td>" {c["text"].as_str().unwrap_or("")} "</td></tr>");
    }
    h.raw("</tbody></table></div>");
}

fn render_operation(h: &mut Html, method: &str, path: &str, op: &Value, item: &Value) {
    let summary = op["summary"].as_str().unwrap_or("");
    match op["operationId"].as_str() {
        Some(id) => w!(*h, "<details class=\"op\" id=\"op-" {id} "\">"),
        None => {
            h.raw("<details class=\"op\">");
        }
    }
    w!(*h, "<summary><span class=\"method m-" {method.to_ascii_lowercase()} "\">" {method} "</span> <code>" {path} "</code>");
    if let Some(port) = item["x-mkoba-port"].as_u64() {
        w!(*h, " <span class=\"badge\">port " {port} "</span>");
    }
    w!(*h, " <span class=\"summary\">" {summary} "</span></summary>");
    if let Some(d) = op["description"].as_str() {
        w!(*h, "<p>" {d} "</p>");
    }
    if let Some(id) = op["operationId"].as_str() {
        // Named for a screen reader's list of links, where 78 alike told nothing apart.
        w!(*h, "<p><a class=\"op-page\" href=\"/portal/docs/" {id} "\">Full reference, sample code with your keys, and a box to send it<span class=\"sr-only\">: " {summary} " (" {id} ")</span></a></p>");
    }
    render_fields(h, &fields_of(op));
    if let Some(schema) =
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
    {
        w!(*h, "<p>Body: <code>" {schema.rsplit('/').next().unwrap_or(schema)} "</code></p>");
    }
    let responses = op["responses"].as_object();
    // Responses whose fields the document lists inline (M-Pesa's outputs).
    for (status, r) in responses.into_iter().flatten() {
        let names = property_names(&r["content"]["application/json"]["schema"]);
        if names.is_empty() {
            continue;
        }
        w!(*h, "<p>Returns <code>" {status} "</code> with ");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            w!(*h, "<code>" {name} "</code>");
        }
        h.raw("</p>");
    }
    if let Some(codes) = op["x-codes"].as_array().filter(|c| !c.is_empty()) {
        render_codes(h, codes);
    } else if let Some(responses) = responses {
        h.raw("<p>Responses: ");
        for (i, (code, r)) in responses.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            w!(*h, "<code>" {code} "</code> " {r["description"].as_str().unwrap_or("")});
        }
        h.raw("</p>");
    }
    h.raw("</details>");
}

fn render_document(h: &mut Html, doc: &Value) {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let desc = doc["info"]["description"].as_str().unwrap_or("");
    w!(*h, "<h2>" {title} "</h2><p>" {desc} "</p>");
    let Some(paths) = doc["paths"].as_object() else {
        return;
    };
    // Group operations by their first tag: the document's tags first, in its order, then
    // the others in the order they appear.
    let declared = doc["tags"].as_array();
    let mut groups: Vec<(String, Vec<Operation<'_>>)> = declared
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .map(|t| (t.to_owned(), Vec::new()))
        .collect();
    for (path, item) in paths {
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops.iter().filter(|(m, _)| METHODS.contains(&m.as_str())) {
            let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
            let entry = match groups.iter().position(|(t, _)| *t == tag) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((tag, Vec::new()));
                    &mut groups.last_mut().expect("pushed").1
                }
            };
            entry.push((method.to_ascii_uppercase(), path.clone(), op, item));
        }
    }
    for (tag, ops) in groups.iter().filter(|(_, ops)| !ops.is_empty()) {
        w!(*h, "<h3>" {crate::pages::account::title_case(tag)} " <span class=\"count\">" {ops.len()} "</span></h3>");
        let about = declared
            .into_iter()
            .flatten()
            .find(|t| t["name"] == tag.as_str())
            .and_then(|t| t["description"].as_str());
        if let Some(about) = about {
            w!(*h, "<p class=\"hint\">" {about} "</p>");
        }
        for (method, path, op, item) in ops {
            render_operation(h, method, path, op, item);
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Attempt {
    pub api_user: String,
    pub method: String,
    pub path: String,
    pub headers: String,
    pub body: String,
}

async fn try_form(
    h: &mut Html,
    state: &PortalState,
    session: &Session,
    a: &Attempt,
) -> Result<(), mkoba_platform::Internal> {
    let users = state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await?;
    w!(*h, "<section class=\"card\" aria-labelledby=\"try\"><h2 id=\"try\">Try it</h2>"
        "<p>The request goes to this server with your primary subscription key for the path's product and, when you pick an API user, a fresh access token for it (and its target environment). Headers you give override these.</p>"
        "<p>M-Pesa paths (<code>/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/</code>, …) go with a fresh session of your M-Pesa application, RSA-encrypted as a client sends it, and an allowed <code>Origin</code>; give the <code>input_*</code> fields as a JSON body (or in the query string for the GET queries).</p>"
        "<form method=\"post\" action=\"/portal/docs/try#result\" class=\"stack\">" [csrf_field(session)]
        "<label for=\"api_user\">API user</label><select id=\"api_user\" name=\"api_user\"><option value=\"\">None (no token)</option>");
    // A fresh form picks the first API user, so the default call (the balance) answers 200
    // rather than 401 for want of a token.
    let fresh = a.method.is_empty() && a.api_user.is_empty();
    for (i, u) in users.iter().enumerate() {
        let id = u.id.to_string();
        if id == a.api_user || (fresh && i == 0) {
            w!(*h, "<option value=\"" {id} "\" selected>" {id} " (" {u.target_environment} ")</option>");
        } else {
            w!(*h, "<option value=\"" {id} "\">" {id} " (" {u.target_environment} ")</option>");
        }
    }
    h.raw("</select><div class=\"row\"><div><label for=\"method\">Method</label><select id=\"method\" name=\"method\">");
    for m in ["GET", "POST", "PUT", "DELETE"] {
        if m == a.method || (a.method.is_empty() && m == "GET") {
            w!(*h, "<option selected>" {m} "</option>");
        } else {
            w!(*h, "<option>" {m} "</option>");
        }
    }
    let path = if a.path.is_empty() {
        "/collection/v1_0/account/balance"
    } else {
        a.path.as_str()
    };
    w!(*h, "</select></div><div class=\"grow\"><label for=\"path\">Path</label><input id=\"path\" name=\"path\" required class=\"mono\" value=\"" {path} "\"></div></div>"
        "<label for=\"headers\">Extra headers <span class=\"hint\">(one <code>Name: value</code> per line)</span></label>"
        "<textarea id=\"headers\" name=\"headers\" rows=\"3\" class=\"mono\">" ~{a.headers} "</textarea>"
        "<label for=\"body\">Body</label><textarea id=\"body\" name=\"body\" rows=\"6\" class=\"mono\">" ~{a.body} "</textarea>"
        "<button type=\"submit\">Send request</button></form></section>");
    Ok(())
}

async fn page(
    state: &PortalState,
    session: &Session,
    attempt: &Attempt,
    result: Option<Html>,
) -> Response {
    let mut h = Html::new();
    h.raw("<h1>API docs</h1><p class=\"lead\">Every operation this server serves, from its OpenAPI documents (also at <a href=\"/_mkoba/openapi.json\"><code>/_mkoba/openapi.json</code></a> for MoMo and <a href=\"/_mkoba/mpesa/openapi.json\"><code>/_mkoba/mpesa/openapi.json</code></a> for M-Pesa). Each operation has a page with sample code in five languages pre-filled with your keys and a box that sends the request; how to use them: the <a href=\"/portal/guides\">guides</a>.</p>");
    if let Err(e) = try_form(&mut h, state, session, attempt).await {
        return crate::failed(e);
    }
    if let Some(r) = result {
        w!(h, "<section class=\"card result\" aria-labelledby=\"result\" aria-live=\"polite\"><h2 id=\"result\">Response</h2>" [r] "</section>");
    }
    for doc in state.openapi.iter() {
        render_document(&mut h, doc);
    }
    document("API docs", Some(session), "docs", h).into_response()
}

pub(crate) async fn show(State(state): State<PortalState>, session: Session) -> Response {
    page(&state, &session, &Attempt::default(), None).await
}

fn product_of(path: &str) -> Product {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .and_then(Product::parse)
        .unwrap_or(Product::Collection)
}

pub(crate) async fn try_it(
    State(state): State<PortalState>,
    session: Session,
    crate::ClientAddr(client): crate::ClientAddr,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let attempt = Attempt {
        api_user: form.get("api_user").to_owned(),
        method: form.get("method").to_owned(),
        path: form.get("path").to_owned(),
        headers: form.raw("headers").to_owned(),
        body: form.raw("body").to_owned(),
    };
    let (result, refused) = match exchange(&state, &session, client, &attempt).await {
        Ok(x) => {
            let made = made_payment(&state, &session, &x).await;
            (render_exchange(&x, made.as_deref()), false)
        }
        Err(problem) => {
            let mut h = Html::new();
            w!(h, "<p class=\"error\" role=\"alert\">" {problem} "</p>");
            (h, true)
        }
    };
    let page = page(&state, &session, &attempt, Some(result)).await;
    if refused { bad_request(page) } else { page }
}

/// A page that says why nothing was sent, answered 400 as the portal's forms answer a
/// refusal (the API's own answer to a request that was sent keeps the page's 200).
pub(crate) fn bad_request(mut page: Response) -> Response {
    if page.status().is_success() {
        *page.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    page
}

/// Which API a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Momo,
    MpesaV2,
    MpesaV1x,
}

pub(crate) fn dialect_of(path: &str) -> Dialect {
    if path.contains("/ipg/v2/") {
        Dialect::MpesaV2
    } else if path.starts_with("/ipg/v1x/") {
        Dialect::MpesaV1x
    } else {
        Dialect::Momo
    }
}

/// A request the portal sent to the API router and what came back.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub method: Method,
    /// Path and query as sent.
    pub path: String,
    /// Every header sent, values as text.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
    pub elapsed_ms: f64,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    /// The response body when it is JSON.
    pub response_json: Option<Value>,
}

impl Exchange {
    /// The request as text: request line, headers, body.
    pub(crate) fn request_text(&self) -> String {
        let mut req = format!("{} {}\n", self.method, self.path);
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\n"));
        }
        if !self.body.is_empty() {
            req.push('\n');
            req.push_str(&self.body);
        }
        req
    }

    /// The response as text: status line, headers, body (pretty when JSON).
    pub(crate) fn response_text(&self) -> String {
        let status = axum::http::StatusCode::from_u16(self.status)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| self.status.to_string());
        let mut resp = format!("HTTP/1.1 {status}\n");
        for (k, v) in &self.response_headers {
            resp.push_str(&format!("{k}: {v}\n"));
        }
        resp.push('\n');
        match &self.response_json {
            Some(v) => resp.push_str(
                &serde_json::to_string_pretty(v).unwrap_or_else(|_| self.response_body.clone()),
            ),
            None => resp.push_str(&self.response_body),
        }
        resp
    }
}

/// The payment an exchange made, when it made one of the developer's: a MoMo request's
/// `X-Reference-Id` answered `202` (its empty body names nothing), an M-Pesa answer's
/// conversation id. Looked up, so that a query's or a refusal's id links nowhere; given in
/// the form the client saw (an M-Pesa conversation id without hyphens).
pub(crate) async fn made_payment(
    state: &PortalState,
    session: &Session,
    x: &Exchange,
) -> Option<String> {
    let momo = (x.status == 202)
        .then(|| {
            x.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-reference-id"))
                .map(|(_, v)| v.as_str())
        })
        .flatten();
    // An M-Pesa answer that made something: INS-0 (a duplicate's INS-10 names the earlier
    // payment), and not a query (whose conversation id is the payment queried).
    let query = x.path.to_ascii_lowercase().contains("query");
    let mpesa = x
        .response_json
        .as_ref()
        .filter(|v| v["output_ResponseCode"] == "INS-0" && !query)
        .and_then(|v| v["output_ConversationID"].as_str());
    let seen = momo.or(mpesa)?.trim();
    let id = uuid::Uuid::parse_str(seen).ok()?;
    match state
        .platform
        .portal()
        .owned_payment(session.developer.id, &id)
        .await
    {
        Ok(Some(_)) => Some(seen.to_owned()),
        _ => None,
    }
}

/// The line that links the payment a request made to its page.
pub(crate) fn made_line(h: &mut Html, made: Option<&str>) {
    if let Some(id) = made {
        w!(*h, "<p data-testid=\"made-transaction\">Transaction <a class=\"mono\" href=\"/portal/transactions/" {id} "\">" {id} "</a>: its timeline, ledger postings and callbacks.</p>");
    }
}

/// The result box of the index page's try-it form.
fn render_exchange(x: &Exchange, made: Option<&str>) -> Html {
    let mut h = Html::new();
    w!(h, "<p><strong data-testid=\"try-status\">" {x.status} "</strong> in " {format!("{:.1}", x.elapsed_ms)} " ms</p>");
    made_line(&mut h, made);
    w!(h,
        "<details><summary>Request sent</summary><pre>" {x.request_text()} "</pre></details>"
        "<pre data-testid=\"try-response\">" {x.response_text()} "</pre>");
    h
}

/// Sends an attempt to the API router in-process with the developer's credentials filled
/// in where the attempt's headers do not give them, as from `client` (the developer's
/// address), so that the APIs' throttles count it against the developer and no one else.
pub(crate) async fn exchange(
    state: &PortalState,
    session: &Session,
    client: std::net::IpAddr,
    a: &Attempt,
) -> Result<Exchange, String> {
    let method =
        Method::from_bytes(a.method.as_bytes()).map_err(|_| "Choose a method.".to_owned())?;
    if !a.path.starts_with('/') || a.path.starts_with("//") || a.path.starts_with("/portal") {
        return Err(
            "The path must be an API path such as /collection/v1_0/account/balance.".to_owned(),
        );
    }
    let uri: Uri = a
        .path
        .parse()
        .map_err(|_| "That path is not a valid URL path.".to_owned())?;
    let product = product_of(&a.path);
    let dialect = dialect_of(&a.path);
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for line in a.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("Header line {line:?} has no colon."))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{:?} is not a header name.", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("The value of {name} is not a valid header value."))?;
        headers.push((name, value));
    }
    let has = |headers: &[(HeaderName, HeaderValue)], n: &str| {
        headers.iter().any(|(k, _)| k.as_str() == n)
    };
    let add = |headers: &mut Vec<(HeaderName, HeaderValue)>, n: &'static str, v: &str| {
        if !has(headers, n)
            && let Ok(v) = HeaderValue::from_str(v)
        {
            headers.push((HeaderName::from_static(n), v));
        }
    };
    let needs_api_key = dialect == Dialect::MpesaV1x
        || (dialect == Dialect::MpesaV2 && a.path.to_ascii_lowercase().contains("getsession"));
    if needs_api_key && !has(&headers, "authorization") {
        let Some((bearer, origin)) = state.mpesa_api_key_bearer(session.developer.id).await else {
            return Err("This call takes your encrypted M-Pesa API key as its bearer, and yours was issued before the portal kept keys: renew it on your profile, or add the header Authorization: Bearer … (the sample code shows how to encrypt the key).".to_owned());
        };
        add(&mut headers, "authorization", &format!("Bearer {bearer}"));
        add(&mut headers, "origin", &origin);
    }
    match dialect {
        Dialect::MpesaV2 | Dialect::MpesaV1x => {
            if dialect == Dialect::MpesaV2 && !has(&headers, "authorization") {
                let environment = if a.path.starts_with("/openapi/") {
                    "openapi"
                } else {
                    "sandbox"
                };
                // Production answers an application only once it went live: say so rather
                // than show a bare 401 INS-6.
                if environment == "openapi" {
                    let live = state
                        .platform
                        .portal()
                        .live_access(session.developer.id)
                        .await
                        .map_err(|_| "The portal could not read your go-live access.".to_owned())?;
                    if !(live.all || live.mpesa) {
                        return Err("Production (openapi) answers your M-Pesa application once a go-live request for M-Pesa is approved (the Go live page): until then every call there is refused with 401 INS-6. Send it to the sandbox instead.".to_owned());
                    }
                }
                let (bearer, origin) = state
                    .mpesa_session_bearer(session.developer.id, environment)
                    .await
                    .ok_or_else(|| {
                        "You have no M-Pesa application yet: create its API key on the M-Pesa page."
                            .to_owned()
                    })?;
                add(&mut headers, "authorization", &format!("Bearer {bearer}"));
                add(&mut headers, "origin", &origin);
            } else if let Some(app) = state.mpesa_application(session.developer.id).await {
                let origin = if app.allowed_origins.iter().any(|o| o == "*") {
                    "*"
                } else {
                    app.allowed_origins.first().map_or("*", String::as_str)
                };
                add(&mut headers, "origin", origin);
            }
        }
        Dialect::Momo if !has(&headers, "ocp-apim-subscription-key") => {
            let Some(k) = state
                .platform
                .credentials()
                .subscription_keys(session.developer.id)
                .into_iter()
                .find(|k| k.product == product && k.slot == KeySlot::Primary)
            else {
                return Err(format!(
                    "You are not subscribed to {}: subscribe on the overview (/portal) to get its keys, or add an Ocp-Apim-Subscription-Key header.",
                    product.display_name()
                ));
            };
            add(&mut headers, "ocp-apim-subscription-key", &k.key);
        }
        Dialect::Momo => {}
    }
    if !a.api_user.is_empty() && dialect == Dialect::Momo {
        let id =
            Uuid::parse_str(&a.api_user).map_err(|_| "Choose one of your API users.".to_owned())?;
        let user = state
            .platform
            .portal()
            .owned_api_user(session.developer.id, &id)
            .await
            .map_err(|_| "The portal could not read your API users.".to_owned())?
            .ok_or_else(|| "Choose one of your API users.".to_owned())?;
        if !a.path.contains("/token") {
            let (token, _) = state.platform.credentials().issue_token(user.id, product);
            add(&mut headers, "authorization", &format!("Bearer {token}"));
        }
        add(
            &mut headers,
            "x-target-environment",
            &user.target_environment,
        );
    }
    if method == Method::POST && dialect == Dialect::Momo {
        add(&mut headers, "x-reference-id", &Uuid::new_v4().to_string());
    }
    if !a.body.trim().is_empty() {
        add(&mut headers, "content-type", "application/json");
    }
    // Addressed to this server, as a request from the developer's machine is: an answer
    // that names the server (a widget invoice's links, its own origin) names it rightly.
    if let Some(host) = state
        .config
        .public_url
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
    {
        add(&mut headers, "host", &host);
    }
    let mut request = Request::builder().method(method.clone()).uri(uri);
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let mut request = request
        .body(Body::from(a.body.clone()))
        .map_err(|_| "The request could not be built.".to_owned())?;
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            client, 0,
        )));
    let started = std::time::Instant::now();
    let response = match state.api.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| "The response body was too large to show.".to_owned())?;
    let text = |v: &HeaderValue| v.to_str().unwrap_or("…").to_owned();
    Ok(Exchange {
        method,
        path: a.path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), text(v)))
            .collect(),
        body: a.body.clone(),
        status: parts.status.as_u16(),
        elapsed_ms,
        response_headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), text(v)))
            .collect(),
        response_body: String::from_utf8_lossy(&bytes).into_owned(),
        response_json: serde_json::from_slice::<Value>(&bytes).ok(),
    })
}
