//! The developer portal, served at `/portal`: server-rendered HTML with its stylesheet and
//! script compiled into the binary, so it works offline and without JavaScript (the
//! script only adds copy buttons and the virtual phone's live refresh).
//!
//! Security: sign-in sessions are 256-bit random ids in an `HttpOnly`, `SameSite=Lax`
//! cookie (`Secure` when configured), stored only as SHA-256 hashes; every form carries a
//! CSRF token (the session's synchronizer token, or before sign-in a token the server
//! signed, in a cookie and in the form alike) and a POST without a valid one is refused
//! with 403; sign-in, password reset and sign-up are throttled per account and per client
//! address, and password hashing has a bounded queue (past either: 429 with
//! `Retry-After`); every page but sign-in and sign-up
//! needs a session; every read is scoped to the signed-in developer; responses carry a
//! strict Content-Security-Policy and are never cached. Keys and passwords are never
//! logged.

pub mod chart;
pub mod html;
mod pages;

pub use pages::mpesa::check_origins;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::Platform;
use mkoba_platform::accounts::AccountStatus;
use mkoba_platform::portal::DeveloperAccount;
use mkoba_platform::secrets::TokenError;
use mkoba_platform::throttle::PortalThrottle;

use crate::html::Html;

/// How the portal behaves.
#[derive(Debug, Clone, Default)]
pub struct PortalConfig {
    /// Mark cookies `Secure` (serve the portal over HTTPS then).
    pub secure_cookies: bool,
    /// Where people open the server (`http://127.0.0.1:8080`): links in e-mails start
    /// with it. It is configured, never taken from a request's `Host`, so nobody can make
    /// the platform mail a link to their own host.
    pub public_url: String,
    /// Sandbox mailbox: mail is readable in the portal by whoever it concerns (the browser
    /// that signed up, or proved the password of an account not yet activated), so the
    /// journey works on a laptop with no mail server. Off when mail really goes out: then
    /// the portal never shows the links that prove control of an address.
    pub sandbox_mailbox: bool,
    /// Mail goes out through a mail server (`--smtp-url`). Without it and without the
    /// sandbox mailbox (the production profile), no activation link reaches anyone, and
    /// the pages say so instead of "we sent".
    pub mail_goes_out: bool,
    /// Most payments a report reads, the newest of its period ([`mkoba_platform::portal::REPORT_MAX`]
    /// when `None`; tests set a few).
    pub report_max: Option<u64>,
    /// Most payments a transactions CSV export holds, the newest ([`EXPORT_MAX`] when
    /// `None`; tests set a few).
    ///
    /// [`EXPORT_MAX`]: crate::pages::transactions::EXPORT_MAX
    pub export_max: Option<u32>,
    /// Payments an export reads at a time ([`EXPORT_RUN`] when `None`; tests set a few, so
    /// that a short export spans runs).
    ///
    /// [`EXPORT_RUN`]: crate::pages::transactions::EXPORT_RUN
    pub export_run: Option<u32>,
    /// Most payments a search reads, the newest of its range
    /// ([`mkoba_platform::portal::SEARCH_MAX`] when `None`; tests set a few).
    pub search_max: Option<u32>,
}

impl PortalConfig {
    /// An absolute link to a portal path (`/portal/…`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }
}

/// An M-Pesa application as its settings page shows it.
#[derive(Clone, Default)]
pub struct MpesaApplication {
    /// The current API key, shown on the Account Profile and the M-Pesa page and used by
    /// the API pages (seed 004); `None` when nobody holds it or it was issued before keys
    /// were kept (renewing shows a new one).
    pub api_key: Option<String>,
    /// When the current API key was issued.
    pub api_key_created_at_ms: Option<i64>,
    /// The platform's RSA public key, base64 DER, as clients encrypt with it.
    pub public_key: String,
    pub session_lifetime_secs: u64,
    pub allowed_origins: Vec<String>,
    pub result_url: Option<String>,
    /// Why no result is sent to `result_url`, when it was set under other rules than the
    /// server has now (an `http://` URL, then a restart without
    /// `--mpesa-insecure-result-urls`): the APIs stay asynchronous and send nothing.
    pub result_url_refused: Option<String>,
    /// Every resource URL of this server (address, port, path, SSL), v1x and v2.
    pub resource_urls: Vec<mkoba_api_types::mpesa::ResourceUrl>,
    /// The server takes `http://` result URLs on any port of a loopback host
    /// (`--mpesa-insecure-result-urls`, local development).
    pub insecure_result_urls: bool,
}

impl std::fmt::Debug for MpesaApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpesaApplication")
            .field("api_key_created_at_ms", &self.api_key_created_at_ms)
            .field("session_lifetime_secs", &self.session_lifetime_secs)
            .field("allowed_origins", &self.allowed_origins)
            .field("result_url", &self.result_url)
            .finish_non_exhaustive()
    }
}

/// Settings a developer saves on the M-Pesa page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpesaSettings {
    pub allowed_origins: Vec<String>,
    /// `None` clears it (synchronous mode).
    pub result_url: Option<String>,
    /// `None` keeps the current lifetime.
    pub session_lifetime_secs: Option<u64>,
}

/// A boxed future, for the object-safe [`MpesaBackend`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the M-Pesa page needs from the M-Pesa dialect; the server provides it once M-Pesa
/// is built in (until then the page explains that M-Pesa is not available).
pub trait MpesaBackend: Send + Sync + 'static {
    /// Why no result goes to `url` under the rules of now (the scheme and port, the hosts
    /// callbacks may reach), when one saved under others does not meet them.
    fn result_url_refused(&self, url: &str) -> Option<String>;
    /// The developer's application, if any.
    fn application(&self, developer_id: i64) -> BoxFuture<'_, Option<MpesaApplication>>;
    /// Issues a new API key (the old one stops working) and returns it.
    fn renew_api_key(
        &self,
        developer_id: i64,
    ) -> BoxFuture<'_, Result<String, mkoba_platform::Internal>>;
    /// For the try-it box: a fresh session of the developer's application on the gateway of
    /// `environment` (`sandbox`, `openapi`), encrypted as a client sends it (`Bearer`
    /// value), and an `Origin` the application allows; `None` without an application.
    fn session_bearer(
        &self,
        developer_id: i64,
        environment: &'static str,
    ) -> BoxFuture<'_, Option<(String, String)>>;
    /// For the try-it box: the application's current API key encrypted as a client sends
    /// it (the bearer of `getSession` and of every v1x call), and an `Origin` it allows;
    /// `None` without an application or when its key is not kept.
    fn api_key_bearer(&self, developer_id: i64) -> BoxFuture<'_, Option<(String, String)>>;
    /// Saves the settings (already validated by the portal), or says why not: the form
    /// field the refusal is about (`origins`, `session_lifetime_secs`, `result_url`, or
    /// `""` for the form as a whole) and the sentence.
    fn save_settings(
        &self,
        developer_id: i64,
        settings: MpesaSettings,
    ) -> BoxFuture<'_, Result<(), (&'static str, String)>>;
}

impl PortalState {
    /// The developer's M-Pesa application, when M-Pesa is built in and they have one.
    pub(crate) async fn mpesa_application(&self, developer_id: i64) -> Option<MpesaApplication> {
        match &self.mpesa {
            Some(m) => m.application(developer_id).await,
            None => None,
        }
    }

    /// A try-it API key bearer and origin (see [`MpesaBackend::api_key_bearer`]).
    pub(crate) async fn mpesa_api_key_bearer(&self, developer_id: i64) -> Option<(String, String)> {
        match &self.mpesa {
            Some(m) => m.api_key_bearer(developer_id).await,
            None => None,
        }
    }

    /// A try-it session bearer and origin (see [`MpesaBackend::session_bearer`]).
    /// [`MpesaBackend::result_url_refused`]; `None` without M-Pesa.
    pub(crate) fn mpesa_result_url_refused(&self, url: &str) -> Option<String> {
        self.mpesa.as_ref()?.result_url_refused(url)
    }

    pub(crate) async fn mpesa_session_bearer(
        &self,
        developer_id: i64,
        environment: &'static str,
    ) -> Option<(String, String)> {
        match &self.mpesa {
            Some(m) => m.session_bearer(developer_id, environment).await,
            None => None,
        }
    }
}

/// Everything the portal's handlers share.
#[derive(Clone)]
pub struct PortalState {
    pub platform: Platform,
    pub config: PortalConfig,
    /// The OpenAPI documents of the APIs served, rendered on the docs page.
    pub openapi: Arc<Vec<serde_json::Value>>,
    /// Target environments an API user may be created for (`sandbox`, markets).
    pub environments: Arc<Vec<String>>,
    /// The API router, which the docs page's "try it" box calls in-process.
    pub api: Router,
    pub mpesa: Option<Arc<dyn MpesaBackend>>,
    /// Sign-in, password reset and sign-up limits, and the password hashing pool (one
    /// per server).
    pub throttle: Arc<PortalThrottle>,
}

impl std::fmt::Debug for PortalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const SESSION_COOKIE: &str = "mkoba_session";
const PRE_CSRF_COOKIE: &str = "mkoba_csrf";
const CSS: &str = include_str!("../assets/portal.css");
const JS: &str = include_str!("../assets/portal.js");
const WIDGET_DEMO_JS: &str = include_str!("../assets/widget-demo.js");

/// The portal's routes, to be nested at `/portal`.
pub fn router(state: PortalState) -> Router {
    pages::routes()
        .route("/assets/portal.css", axum::routing::get(css))
        .route("/assets/portal.js", axum::routing::get(js))
        .route(
            "/assets/docs.css",
            axum::routing::get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    include_str!("../assets/docs.css"),
                )
            }),
        )
        .route(
            "/assets/widget-demo.js",
            axum::routing::get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    WIDGET_DEMO_JS,
                )
            }),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::map_response(framework_errors))
        .layer(axum::middleware::map_response(security_headers))
}

/// Marks the portal's own plain-text answers (a CSV export's refusal), which
/// [`framework_errors`] leaves as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnText;

/// The framework refuses a form it cannot read in plain text: one over the body limit
/// (413), or a body that did not arrive whole or in time (400: cut off, trickled past the
/// listener's body time, broken chunked encoding); and a method a page does not take with
/// no body at all (405, with `Allow`). The portal answers those with its page, like its
/// other errors.
async fn framework_errors(response: Response) -> Response {
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let plain = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    // A method a page does not take: the router's 405 has no body at all.
    let bare_405 = response.status() == StatusCode::METHOD_NOT_ALLOWED && content_type.is_none();
    if !(plain || bare_405)
        || !response.status().is_client_error()
        || response.extensions().get::<OwnText>().is_some()
    {
        return response;
    }
    let status = response.status();
    let headers = response.headers().clone();
    // The listener stopped reading the body because the server holds as many as it may:
    // the busy answer, not the client's fault.
    let said = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap_or_default();
    if String::from_utf8_lossy(&said).contains(mkoba_platform::throttle::BODIES_BUSY) {
        let mut busy = message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "The server is reading many requests at once. Send the form again in a moment.",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return busy;
    }
    let mut page = match status {
        StatusCode::METHOD_NOT_ALLOWED => message_page(
            status,
            "Method not allowed",
            "This page does not take that kind of request. Open it from the portal's links and forms.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => message_page(
            status,
            "Too large",
            "The form was larger than the portal takes. Send less, or use the API for large data.",
        ),
        StatusCode::BAD_REQUEST => message_page(
            status,
            "Form not read",
            "The form did not arrive whole. Send it again.",
        ),
        _ => message_page(
            status,
            "Request not understood",
            "The portal could not read this request. Go back and send the form again.",
        ),
    };
    // The framework's other headers (say, `Connection: close`) go with the page.
    for (name, value) in &headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the portal.",
    )
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

/// The signed-in developer of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub developer: DeveloperAccount,
    pub csrf: String,
    id: String,
}

/// Cookie values by name.
fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                out.entry(k.trim().to_owned())
                    .or_insert_with(|| v.trim().to_owned());
            }
        }
    }
    out
}

fn cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/portal; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A request without a live session is sent to sign in.
#[derive(Debug)]
pub struct SignInFirst(String);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        see_other(&format!("/portal/signin?next={}", self.0))
    }
}

/// A signed-in developer whose account is active or at the phone step (the pages of the
/// phone step, the mailbox and sign-out take it; every other page takes [`Session`], which
/// sends an account at the phone step to finish it first).
#[derive(Debug, Clone)]
pub struct Onboarding(pub Session);

impl FromRequestParts<PortalState> for Onboarding {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Onboarding, Response> {
        let session = any_session(parts, state).await?;
        match session.developer.status {
            AccountStatus::Active | AccountStatus::Phone => Ok(Onboarding(session)),
            AccountStatus::Pending | AccountStatus::Deleted | AccountStatus::Deactivated => {
                Err(sign_in_first(parts))
            }
        }
    }
}

impl FromRequestParts<PortalState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Session, Response> {
        let session = any_session(parts, state).await?;
        match session.developer.status {
            // An operator owns no keys or payments: the developer pages send them to theirs.
            AccountStatus::Active if session.developer.is_operator() => {
                Err(see_other("/portal/operator"))
            }
            AccountStatus::Active => Ok(session),
            AccountStatus::Phone => Err(see_other("/portal/welcome")),
            AccountStatus::Pending | AccountStatus::Deleted | AccountStatus::Deactivated => {
                Err(sign_in_first(parts))
            }
        }
    }
}

/// A signed-in operator. Anyone else is answered 404, as if the page did not exist (a
/// developer learns nothing about the operator's pages).
#[derive(Debug, Clone)]
pub struct Operator(pub Session);

impl FromRequestParts<PortalState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Operator, Response> {
        let session = any_session(parts, state).await?;
        if session.developer.is_operator() && session.developer.status == AccountStatus::Active {
            Ok(Operator(session))
        } else {
            Err(not_found().await)
        }
    }
}

fn sign_in_first(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| parts.method == axum::http::Method::GET && p.starts_with('/'))
        .map(|p| format!("/portal{}", if p == "/" { "" } else { p }))
        .unwrap_or_else(|| "/portal".to_owned());
    SignInFirst(form_encode(&next)).into_response()
}

/// The session of a request's cookie, whatever its account's status.
async fn any_session(parts: &mut Parts, state: &PortalState) -> Result<Session, Response> {
    let Some(id) = cookies(&parts.headers).remove(SESSION_COOKIE) else {
        return Err(sign_in_first(parts));
    };
    let record = match state.platform.portal().session(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(sign_in_first(parts)),
        Err(e) => return Err(crate::failed(e)),
    };
    match state.platform.portal().developer(record.developer_id).await {
        Ok(Some(developer)) => Ok(Session {
            developer,
            csrf: record.csrf_token,
            id,
        }),
        Ok(None) => Err(sign_in_first(parts)),
        Err(e) => Err(crate::failed(e)),
    }
}

/// The signed-in developer of a request (active or at the phone step), if any.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<PortalState> for MaybeSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<MaybeSession, Response> {
        Ok(MaybeSession(
            Onboarding::from_request_parts(parts, state)
                .await
                .ok()
                .map(|o| o.0),
        ))
    }
}

/// A submitted form's fields.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

/// A form or query value with every NUL replaced by ASCII's SUB (U+001A, the control code
/// for a character that cannot be represented): no e-mail, number or name holds either, and
/// PostgreSQL cannot take a NUL as a parameter (a sign-in with `%00` in its e-mail was a
/// 500 there). SUB matches nothing, and as a control character it is still refused by every
/// rule that stores text.
///
/// So is U+FFFD, which stands where a form's percent-encoded bytes were not UTF-8 text
/// (the decoder reads them so): a name of `%FF%FE` was stored as two of them without a
/// word (the hostile-input audit of 2026-12-07); as SUB it is refused with the rest.
fn without_nul(v: String) -> String {
    if v.contains(['\0', '\u{FFFD}']) {
        v.replace(['\0', '\u{FFFD}'], "\u{1A}")
    } else {
        v
    }
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let mut map = HashMap::new();
        for (k, v) in pairs {
            map.entry(k).or_insert_with(|| without_nul(v));
        }
        Form(map)
    }

    /// A field, trimmed (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    /// A field exactly as sent.
    pub fn raw(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.as_str())
    }
}

/// Query parameters.
pub fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            map.entry(k)
                .or_insert_with(|| without_nul(v.trim().to_owned()));
        }
    }
    map
}

/// Why a new password is refused, for a person (`None`: it will do): at least 10
/// characters, and at most 1024 bytes (hashing a longer one costs the same, but the form
/// need not carry megabytes).
pub(crate) fn password_problem(password: &str, new: bool) -> Option<&'static str> {
    if password.chars().count() < 10 {
        Some(if new {
            "Choose a new password of at least 10 characters."
        } else {
            "Choose a password of at least 10 characters."
        })
    } else if password.len() > 1024 {
        Some(
            "Choose a shorter password: at most 1024 bytes (1024 letters of the Latin alphabet, fewer of others).",
        )
    } else {
        None
    }
}

/// `application/x-www-form-urlencoded` value encoding.
pub fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s[2..].to_owned())
        .unwrap_or_default()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Session {
    /// Whether a form carries this session's CSRF token (refuse it with
    /// [`csrf_refused`] when not).
    pub fn check(&self, form: &Form) -> bool {
        constant_time_eq(form.get("csrf"), &self.csrf)
    }
}

/// What is wrong with a submitted form: the field it is about (the control's `name`, or
/// `""` for the form as a whole), and the sentence that says so.
pub(crate) type Problem = (&'static str, String);

/// A form's error sentence, `id="form-error"`, which [`invalid_if`] points its field at.
pub(crate) fn form_error(h: &mut Html, problem: Option<&Problem>) {
    if let Some((_, sentence)) = problem {
        w!(*h, "<p class=\"error\" role=\"alert\" id=\"form-error\">" {sentence} "</p>");
    }
}

/// [`form_error`] as a piece of a page (inside a `w!`).
pub(crate) fn form_error_html(problem: Option<&Problem>) -> Html {
    let mut h = Html::new();
    form_error(&mut h, problem);
    h
}

/// The attributes of control `field` when the form's error is about it: assistive
/// technology announces it invalid and reads the sentence ([`form_error`]) with it.
pub(crate) fn invalid_if(problem: Option<&Problem>, field: &str) -> Html {
    described(problem, field, None)
}

/// [`invalid_if`] for a control with a hint of its own (`hint`: the hint's `id`), which
/// describes it whether or not the error is about it.
pub(crate) fn described(problem: Option<&Problem>, field: &str, hint: Option<&str>) -> Html {
    let invalid = problem.is_some_and(|(f, _)| *f == field);
    let mut h = Html::new();
    if invalid {
        h.raw(" aria-invalid=\"true\"");
    }
    match (hint, invalid) {
        (Some(hint), true) => w!(h, " aria-describedby=\"" {hint} " form-error\""),
        (Some(hint), false) => w!(h, " aria-describedby=\"" {hint} "\""),
        (None, true) => {
            h.raw(" aria-describedby=\"form-error\"");
        }
        (None, false) => {}
    }
    h
}

pub(crate) fn csrf_refused() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form did not carry a valid security token (it may be from an old page or another site). Go back, reload the page and try again.",
    )
}

/// 303 to a portal path.
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A 500 page; the cause has been logged where it happened.
pub fn internal_error() -> Response {
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The portal could not complete this request. The cause has been logged; try again.",
    )
}

fn message_page(status: StatusCode, title: &'static str, text: &'static str) -> Response {
    let mut body = Html::new();
    w!(body, "<h1>" {title} "</h1><p>" {text} "</p><p><a href=\"/portal\">Back to the portal</a></p>");
    (status, document(title, None, "", body)).into_response()
}

/// The navigation: (path, label, section key).
const NAV: &[(&str, &str, &str)] = &[
    ("/portal", "Overview", "overview"),
    ("/portal/apiusers", "API users", "apiusers"),
    ("/portal/mpesa", "M-Pesa", "mpesa"),
    ("/portal/transactions", "Transactions", "transactions"),
    ("/portal/reports", "Reports", "reports"),
    ("/portal/phone", "Virtual phone", "phone"),
    ("/portal/clocks", "Test clocks", "clocks"),
    ("/portal/widget", "Widget", "widget"),
    ("/portal/docs", "API docs", "docs"),
    ("/portal/guides", "Guides", "guides"),
    ("/portal/golive", "Go live", "golive"),
    ("/portal/profile", "My profile", "profile"),
];

/// The operator's navigation.
const OPERATOR_NAV: &[(&str, &str, &str)] = &[
    ("/portal/operator", "Go-live requests", "operator"),
    ("/portal/operator/accounts", "Accounts", "accounts"),
    ("/portal/mail", "Mailbox", "mail"),
    ("/portal/guides", "Guides", "guides"),
];

/// A whole page: head, header with navigation (when signed in), main content.
pub fn document(
    title: &str,
    session: Option<&Session>,
    section: &str,
    main: Html,
) -> axum::response::Html<String> {
    let mut h = Html::new();
    w!(h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        "<title>" {title} " · Mkoba portal</title>"
        "<link rel=\"stylesheet\" href=\"/portal/assets/portal.css\">"
        "<script src=\"/portal/assets/portal.js\" defer></script></head><body>"
        "<a class=\"skip\" href=\"#main\">Skip to content</a>"
        "<header class=\"top\"><div class=\"bar\"><a class=\"brand\" href=\"/portal\">Mkoba <span>developer portal</span></a>");
    let active = session.is_some_and(|s| s.developer.status == AccountStatus::Active);
    if let Some(s) = session {
        w!(h, "<form class=\"signout\" method=\"post\" action=\"/portal/signout\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"" {s.csrf} "\">");
        w!(h, "<span class=\"who\">" {s.developer.email} "</span>");
        // Where mail to the account waits (go-live decisions, key notices, codes); the
        // operator's navigation has it already.
        if !s.developer.is_operator() && s.developer.status == AccountStatus::Active {
            h.raw(" <a class=\"mailbox\" href=\"/portal/mail\">Mailbox</a>");
        }
        h.raw(" <button type=\"submit\" class=\"link\">Sign out</button></form>");
    }
    h.raw("</div>");
    if active {
        let nav = if session.is_some_and(|s| s.developer.is_operator()) {
            OPERATOR_NAV
        } else {
            NAV
        };
        h.raw("<nav aria-label=\"Portal\"><ul>");
        for (path, label, key) in nav {
            if *key == section {
                w!(h, "<li><a href=\"" {path} "\" aria-current=\"page\">" {label} "</a></li>");
            } else {
                w!(h, "<li><a href=\"" {path} "\">" {label} "</a></li>");
            }
        }
        h.raw("</ul></nav>");
    }
    w!(h, "</header><main id=\"main\">" [main] "</main>"
        "<footer>Mkoba " {env!("CARGO_PKG_VERSION")} " · a self-hosted mobile-money platform · OpenAPI: <a href=\"/_mkoba/openapi.json\">MoMo</a>, <a href=\"/_mkoba/mpesa/openapi.json\">M-Pesa</a></footer>"
        "</body></html>");
    axum::response::Html(h.into_string())
}

/// A hidden CSRF field.
pub fn csrf_field(session: &Session) -> Html {
    let mut h = Html::new();
    w!(h, "<input type=\"hidden\" name=\"csrf\" value=\"" {session.csrf} "\">");
    h
}

/// `2026-11-22 14:03:07 UTC`.
pub fn when(ms: i64) -> String {
    let Some(t) = mkoba_platform::clock::utc(ms) else {
        return ms.to_string();
    };
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&f)
        .map(|s| format!("{s} UTC"))
        .unwrap_or_else(|_| ms.to_string())
}

/// `2026-11-22 14:03:07.123 UTC`: for timelines, where events are milliseconds apart.
pub fn when_precise(ms: i64) -> String {
    let base = when(ms.div_euclid(1000) * 1000);
    match base.strip_suffix(" UTC") {
        Some(b) => format!("{b}.{:03} UTC", ms.rem_euclid(1000)),
        None => base,
    }
}

/// `2026-11-22`.
pub fn day(ms: i64) -> String {
    when(ms).chars().take(10).collect()
}

/// Parses `YYYY-MM-DD` to the start of that day (ms, UTC).
pub fn parse_day(s: &str) -> Option<i64> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &f).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp() * 1000)
}

/// What the MAC of a pre-session CSRF token is for (no other signed token verifies as one).
pub const PRE_SESSION_PURPOSE: &str = "portal pre-session csrf v1";
/// How long a pre-session CSRF token is accepted; a page is given a new one when less
/// than half of this is left.
pub const PRE_SESSION_TTL_MS: i64 = 24 * 3600 * 1000;

/// A new pre-session token: a random nonce and an expiry, signed (`sign`: the platform's
/// claims signer for [`PRE_SESSION_PURPOSE`]).
fn new_pre_session_token(sign: impl FnOnce(&serde_json::Value) -> String, now_ms: i64) -> String {
    let nonce = mkoba_platform::portal::random_token();
    sign(&serde_json::json!({"n": &nonce[..32], "x": now_ms + PRE_SESSION_TTL_MS}))
}

/// The expiry of a pre-session token if this server signed it and it is still live
/// (`verify`: the platform's claims verifier for [`PRE_SESSION_PURPOSE`]).
fn pre_session_expiry(
    verify: impl FnOnce(&str) -> Result<serde_json::Value, TokenError>,
    token: &str,
    now_ms: i64,
) -> Option<i64> {
    if token.is_empty() || token.len() > 256 {
        return None;
    }
    let claims = verify(token).ok()?;
    claims["n"].as_str()?;
    let expires = claims["x"].as_i64()?;
    (expires > now_ms).then_some(expires)
}

/// Marks the request as one that needs no session (sign-in pages): the pre-session CSRF
/// token of the request's cookie while it is this server's and has more than half its life
/// left, else a new one with the cookie that carries it.
pub(crate) fn pre_session_token(
    state: &PortalState,
    headers: &HeaderMap,
) -> (String, Option<HeaderValue>) {
    let now = state.platform.now_ms();
    if let Some(v) = cookies(headers).remove(PRE_CSRF_COOKIE) {
        let verify = |t: &str| {
            state
                .platform
                .credentials()
                .verify_claims(PRE_SESSION_PURPOSE, t)
        };
        if pre_session_expiry(verify, &v, now).is_some_and(|x| x - now > PRE_SESSION_TTL_MS / 2) {
            return (v, None);
        }
    }
    let v = new_pre_session_token(
        |c| {
            state
                .platform
                .credentials()
                .sign_claims(PRE_SESSION_PURPOSE, c)
        },
        now,
    );
    let c = cookie(
        PRE_CSRF_COOKIE,
        &v,
        Some(PRE_SESSION_TTL_MS / 1000),
        state.config.secure_cookies,
    );
    (v, Some(c))
}

/// Whether a form before sign-in carries the pre-session token of its cookie, and that
/// token is one this server signed and still live (a pair the client made up, however
/// well matched, is refused).
pub(crate) fn pre_session_ok(state: &PortalState, headers: &HeaderMap, form: &Form) -> bool {
    let Some(c) = cookies(headers).remove(PRE_CSRF_COOKIE) else {
        return false;
    };
    constant_time_eq(&c, form.get("csrf"))
        && pre_session_expiry(
            |t| {
                state
                    .platform
                    .credentials()
                    .verify_claims(PRE_SESSION_PURPOSE, t)
            },
            &c,
            state.platform.now_ms(),
        )
        .is_some()
}

/// The client's address, from the listener's `ConnectInfo`; unspecified (`0.0.0.0`) for a
/// request made inside the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}

/// Whole seconds, rounded up, at least one: a `Retry-After` value.
fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A wait for people: `45 seconds`, `2 minutes`, `1 hour`.
fn wait_text(wait: Duration) -> String {
    let secs = retry_secs(wait);
    let (n, unit) = if secs < 120 {
        (secs, "second")
    } else if secs < 2 * 3600 {
        (secs.div_ceil(60), "minute")
    } else {
        (secs.div_ceil(3600), "hour")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `429 Too Many Requests` with `Retry-After` and a page saying what to do; `back` is the
/// link offered (path, label).
pub(crate) fn too_many(title: &str, text: &str, wait: Duration, back: (&str, &str)) -> Response {
    let mut body = Html::new();
    w!(body, "<div class=\"auth\"><h1>" {title} "</h1><p class=\"error\" role=\"alert\" data-testid=\"too-many\">" {text} "</p>"
        "<p><a href=\"" {back.0} "\">" {back.1} "</a></p></div>");
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        document(title, None, "", body),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_secs(wait)));
    r
}

/// Past a throttle: `what` is tried too often (`sign-in attempts for this account or from
/// this address`), or a flood has filled the throttle and everyone waits (then the page
/// does not blame the account or the address).
pub(crate) fn throttled(
    refused: mkoba_platform::throttle::Refusal,
    what: &str,
    back: (&str, &str),
) -> Response {
    let wait = refused.wait;
    let text = if refused.flood {
        format!(
            "The portal is receiving more attempts than it can tell apart (a flood from many addresses), so every one waits for now, yours included. Try again in {}.",
            wait_text(wait)
        )
    } else {
        format!(
            "Too many {what}. Try again in {}. This limit protects accounts from password guessing.",
            wait_text(wait)
        )
    };
    too_many("Too many attempts", &text, wait, back)
}

/// How long a client is told to wait when password hashing is at capacity.
pub(crate) const BUSY_RETRY: Duration = Duration::from_secs(5);

/// An error a handler could not get past: whether it was an overload (the caller may try
/// again at once) rather than a fault.
pub(crate) trait Failure {
    fn overloaded(&self) -> bool;
}

/// Every reader busy, or the store failing for now (a lost database, a full disk, a failed
/// commit: logged where it failed): either passes.
impl Failure for mkoba_platform::Internal {
    fn overloaded(&self) -> bool {
        true
    }
}

/// A payer's decision the writer could not take (its queue full, or the store failing for
/// now): nothing was decided, and the payer may try again.
impl Failure for mkoba_platform::portal::DecideError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::portal::DecideError::Internal
    }
}

/// A sign-up or a callback re-send the writer could not take (its queue full, or the
/// store failing for now): nothing was done.
impl Failure for mkoba_platform::portal::SignUpError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::portal::SignUpError::Internal
    }
}

impl Failure for mkoba_platform::portal::ResendError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::portal::ResendError::Internal
    }
}

impl Failure for mkoba_platform::CreateError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::CreateError::Unavailable
    }
}

/// Account and go-live refusals a handler did not answer itself are faults, but for the
/// writer's overload.
impl Failure for mkoba_platform::accounts::AccountError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::accounts::AccountError::Busy
    }
}

impl Failure for mkoba_platform::golive::GoLiveError {
    fn overloaded(&self) -> bool {
        *self == mkoba_platform::golive::GoLiveError::Busy
    }
}

/// The page for an error no handler answers itself: `503` with `Retry-After` and "the
/// portal is busy" for an overload (every reader busy, the writer's queue full, the store
/// failing for now), else the 500 page.
pub(crate) fn failed(e: impl Failure) -> Response {
    if !e.overloaded() {
        return internal_error();
    }
    let mut r = message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The portal is busy",
        "The portal is busy, try again in a few seconds. Nothing was changed.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Password hashing is at capacity (its workers busy, its queue full): nothing was done.
pub(crate) fn busy(back: (&str, &str)) -> Response {
    too_many(
        "The portal is busy",
        "The portal is busy, try again in a few seconds. Nothing was changed.",
        BUSY_RETRY,
        back,
    )
}

pub(crate) fn session_cookie(state: &PortalState, id: &str) -> HeaderValue {
    cookie(
        SESSION_COOKIE,
        id,
        Some(mkoba_platform::portal::SESSION_TTL_MS / 1000),
        state.config.secure_cookies,
    )
}

const MAILBOX_COOKIE: &str = "mkoba_mailbox";

/// The sandbox mailbox's cookie: a signed token naming the account and address whose mail
/// this browser may read (set after sign-up, or after the password of an account not yet
/// activated was given).
pub(crate) fn mailbox_cookie(state: &PortalState, token: &str) -> HeaderValue {
    cookie(
        MAILBOX_COOKIE,
        token,
        Some(mkoba_platform::accounts::LINK_TTL_MS / 1000),
        state.config.secure_cookies,
    )
}

/// The sandbox mailbox's token from its cookie.
pub(crate) fn mailbox_token(headers: &HeaderMap) -> Option<String> {
    cookies(headers)
        .remove(MAILBOX_COOKIE)
        .filter(|v| !v.is_empty())
}

pub(crate) fn clear_session_cookie(state: &PortalState) -> HeaderValue {
    cookie(SESSION_COOKIE, "", Some(0), state.config.secure_cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_from_every_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mkoba_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let c = cookies(&h);
        assert_eq!(c["mkoba_session"], "abc");
        assert_eq!(c["b"], "2");
    }

    #[test]
    fn session_cookies_are_http_only_and_lax() {
        let c = cookie(SESSION_COOKIE, "x", None, false);
        assert_eq!(
            c.to_str().unwrap(),
            "mkoba_session=x; Path=/portal; HttpOnly; SameSite=Lax"
        );
        let c = cookie(SESSION_COOKIE, "x", Some(0), true);
        assert!(c.to_str().unwrap().ends_with("; Max-Age=0; Secure"));
    }

    #[test]
    fn days_round_trip() {
        let ms = parse_day("2026-11-22").unwrap();
        assert_eq!(day(ms), "2026-11-22");
        assert_eq!(when(ms + 3_723_000), "2026-11-22 01:02:03 UTC");
        assert!(parse_day("22/11/2026").is_none());
    }

    #[test]
    fn pre_session_tokens_are_the_servers_own_and_expire() {
        use mkoba_platform::secrets::TokenSigner;
        let ours = TokenSigner::new(b"secret".to_vec());
        let theirs = TokenSigner::new(b"other".to_vec());
        let sign = |s: &TokenSigner, now| {
            new_pre_session_token(|c| s.sign_claims(PRE_SESSION_PURPOSE, c), now)
        };
        let verify = |t: &str, now| {
            pre_session_expiry(|t| ours.verify_claims(PRE_SESSION_PURPOSE, t), t, now)
        };
        let now = 1_700_000_000_000;
        let t = sign(&ours, now);
        assert_eq!(verify(&t, now), Some(now + PRE_SESSION_TTL_MS));
        assert_ne!(t, sign(&ours, now), "each token has its own nonce");
        // Expired.
        assert_eq!(verify(&t, now + PRE_SESSION_TTL_MS), None);
        // Made up by the client: random hex (what the cookie used to hold), another
        // server's, another purpose's, tampered.
        assert_eq!(verify(&mkoba_platform::portal::random_token(), now), None);
        assert_eq!(verify(&sign(&theirs, now), now), None);
        let other_purpose =
            ours.sign_claims("mailbox", &serde_json::json!({"n": "x", "x": now + 1000}));
        assert_eq!(verify(&other_purpose, now), None);
        let mut bad = t.clone();
        bad.insert(3, 'A');
        assert_eq!(verify(&bad, now), None);
        assert_eq!(verify("", now), None);
        assert_eq!(verify(&"a".repeat(300), now), None);
        // A token is cookie- and form-safe as it is.
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        );
    }

    #[test]
    fn waits_are_whole_seconds_for_retry_after_and_words_for_people() {
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_millis(90_001)), 91);
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(wait_text(Duration::from_secs(1)), "1 second");
        assert_eq!(wait_text(Duration::from_secs(90)), "90 seconds");
        assert_eq!(wait_text(Duration::from_secs(900)), "15 minutes");
        assert_eq!(wait_text(Duration::from_secs(3 * 3600)), "3 hours");
    }

    #[test]
    fn constant_time_equality() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(!constant_time_eq("", "a"));
    }
}
