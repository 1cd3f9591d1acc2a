//! The Vodacom/Vodafone M-Pesa OpenAPI dialect, both of its deployments (reference §1):
//!
//! * the **v2 gateway**, `/{sandbox|openapi}/ipg/v2/{market}/…`: `getSession` takes
//!   `Bearer base64(RSA(apiKey))` and returns a session id; every other call takes
//!   `Bearer base64(RSA(sessionId))`;
//! * Mozambique's **v1x gateway**, `/ipg/v1x/…` on the main listener and, when asked, one
//!   port per API as on `api.sandbox.vm.co.mz` ([`v1x_port_router`]): the encrypted API key
//!   is the bearer of every call, `input_ThirdPartyReference` is the client's reference, the
//!   market is Mozambique, and codes come from the generic table (reference §6.2, §11).
//!
//! Bearers are decrypted with the platform key ([`rsa`]), the session or API key checked by
//! the platform, and `Origin` against the application's allowed origins. Failed API key
//! checks (getSession, every v1x call) are counted per client address; an address past its
//! limit is answered `503 INS-16` with `Retry-After` at once, before any decryption, until
//! its bucket refills (a bearer that proved valid before is still answered from the cache). The operation is
//! found in [`catalogue`], its mandatory fields checked from there, then each field's rule in
//! the order the codes suggest, and the request is mapped onto platform payments: money
//! moves on the same ledger and through the same writer as MoMo's, and a payment made
//! through one gateway can be queried and reversed through the other.
//!
//! Synchronous by default: the call returns when the transaction is final. With an
//! asynchronous result URL on the application, the first response omits the transaction id
//! and the result is POSTed to that URL through the callback outbox.
//!
//! Liberal in what it accepts (reference §9): any `Host`, fields in the query string or a
//! JSON body on every method, names in any case, amounts as strings or numbers, unknown
//! fields ignored, paths with or without the trailing slash and the aliases clients use.
//! Exact in what it sends: every response is JSON, in the documented field order, and no
//! header value holds a quote character; every refusal goes through [`wire::MpesaError`].

pub mod callback;
pub mod catalogue;
pub mod input;
pub mod openapi;
mod ops;
pub mod rsa;
mod v1x;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use mkoba_platform::Platform;
use mkoba_platform::mpesa::{MpesaApp, SessionError};
use mkoba_platform::throttle::KeyFailures;

use crate::catalogue::{Api, Operation};
pub use crate::rsa::PlatformKey;
use crate::wire::{Body, Code, Gateway, Market, MpesaError};

/// Dialect settings.
#[derive(Debug, Clone)]
pub struct MpesaConfig {
    /// How long a new session id takes to become live (the real gateway: up to 30 s).
    pub session_activation: Duration,
    /// How long a synchronous call waits for its transaction to become final before it
    /// answers `INS-9` (the customer did not answer the USSD prompt in time).
    pub sync_timeout: Duration,
    /// Accept `http://` result URLs on loopback hosts, on any port (local development);
    /// otherwise only `https://` on ports 11000–19000, as on the real portal.
    pub insecure_result_urls: bool,
    /// RSA decryptions at once and waiting; past them a bearer is answered `INS-16`.
    pub rsa: rsa::RsaLimits,
}

impl Default for MpesaConfig {
    fn default() -> MpesaConfig {
        MpesaConfig {
            session_activation: Duration::ZERO,
            sync_timeout: Duration::from_secs(60),
            insecure_result_urls: false,
            rsa: rsa::RsaLimits::default(),
        }
    }
}

/// The v1x sandbox's short code (reference §8): the one the real sandbox accepts, and
/// the one Mkoba's samples use (any 4–12 letters and digits work: each is a short code of
/// the caller's application).
pub const V1X_SANDBOX_SHORT_CODE: &str = "171717";

/// What every M-Pesa handler gets.
#[derive(Debug, Clone)]
pub struct MpesaState {
    pub platform: Platform,
    pub key: Arc<PlatformKey>,
    pub config: Arc<MpesaConfig>,
    /// Failed API key checks per client address (one per server, every listener).
    pub key_failures: Arc<KeyFailures>,
}

/// The connection's peer, as the listener records it (`ConnectInfo`).
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The client's address; unspecified for a request made inside the process (the portal's
/// try-it box), which all such requests share.
fn client_of(peer: Peer) -> IpAddr {
    peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(c)| c.0.ip())
}

/// The M-Pesa routes of the main listener: both gateways.
pub fn router(state: MpesaState) -> Router {
    Router::new()
        .route("/sandbox/ipg/v2/{*rest}", any(v2))
        .route("/openapi/ipg/v2/{*rest}", any(v2))
        .route("/ipg/v1x/{*rest}", any(v1x_any))
        // The gateways' roots are theirs too: an unknown API there is M-Pesa's 404.
        .route("/sandbox/ipg/v2/", any(v2))
        .route("/openapi/ipg/v2/", any(v2))
        .route("/ipg/v1x/", any(v1x_any))
        .with_state(state)
}

/// The routes of one v1x per-API listener (`:18352` for C2B, …): that API's path only,
/// as on the real gateway, where each port serves one API.
pub fn v1x_port_router(state: MpesaState, op: &'static Operation) -> Router {
    Router::new()
        .route(
            "/ipg/v1x/{*rest}",
            any(
                move |State(state): State<MpesaState>,
                      peer: Peer,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    let client = client_of(peer);
                    v1x(state, Some(op), client, method, uri, headers, body).await
                },
            ),
        )
        .fallback(|| async { MpesaError::NotFound.respond(Gateway::V1x, None) })
        .with_state(state)
}

pub use mkoba_api_types::mpesa::{RESULT_PORTS, check_result_url};

/// One request, authenticated.
pub(crate) struct Call {
    pub state: MpesaState,
    pub app: MpesaApp,
    pub gateway: Gateway,
    pub market: Market,
    /// `sandbox` or `openapi`: the payments' environment (test MSISDNs only in the sandbox).
    pub environment: &'static str,
    pub fields: input::Fields,
}

impl Call {
    /// Where this call's result goes: the application's result URL when it meets the
    /// server's rules now (`https://`, a port in 11000–19000, unless
    /// `--mpesa-insecure-result-urls`), as they were checked when it was set. One saved under
    /// other rules (the server restarted without the flag) keeps the APIs asynchronous, as
    /// the URL's presence says, but no result is sent to it (seed 004: "Asynchronous
    /// requests will not be sent to endpoints listening on ports which are outside of this
    /// range"); the M-Pesa page says why. A payment keeps the URL (its page shows where its
    /// result would go): the server's callback renderer applies the same rule when it
    /// settles, so one accepted before a restart gets none either.
    pub fn result_target(&self) -> Option<String> {
        let url = self.app.result_url.as_ref()?;
        check_result_url(url, self.state.config.insecure_result_urls)
            .is_ok()
            .then(|| url.clone())
    }
}

/// The largest body an M-Pesa operation takes, in bytes (a direct-debit creation, the
/// largest, is under a kilobyte).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every operation checks before authentication: a known path, an allowed method, a
/// body within the limit. `Ok(None)` is a browser's preflight, answered at once.
fn route(
    gateway: Gateway,
    path: &str,
    only: Option<&'static Operation>,
    method: &Method,
    body: &Result<Bytes, BytesRejection>,
) -> Result<Option<&'static Operation>, MpesaError> {
    let op = catalogue::find(gateway, path)
        .filter(|op| only.is_none_or(|o| std::ptr::eq(o, *op)))
        .ok_or(MpesaError::NotFound)?;
    if method == Method::OPTIONS {
        return Ok(None);
    }
    if !op.allows(method.as_str()) {
        return Err(MpesaError::MethodNotAllowed {
            method: op.method,
            also: op.also,
        });
    }
    // Every operation's body is a few hundred bytes: one past `MAX_BODY_BYTES` is refused
    // before it is parsed, so that a synchronous call waiting a minute for its customer
    // does not hold megabytes (a re-audit held 650 MB with 150 waiting calls).
    if body.as_ref().is_ok_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(MpesaError::BodyTooLarge);
    }
    if let Err(rejection) = body {
        // Over the limit, or not all there in time (the listener's body deadline).
        return Err(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            MpesaError::BodyTooLarge
        } else if rejection
            .body_text()
            .contains(mkoba_platform::throttle::BODIES_BUSY)
        {
            MpesaError::BodiesBusy
        } else {
            MpesaError::BodyUnreadable
        });
    }
    Ok(Some(op))
}

/// The request's fields (query string, then JSON body), the mandatory ones checked. A
/// refusal carries the fields read (those given once), for the echo, and none when nothing
/// could be read: its
/// answer still carries a fresh conversation id, as every `INS-*` answer to an operation
/// does.
fn fields_of(
    uri: &Uri,
    body: &[u8],
    op: &Operation,
) -> Result<input::Fields, (Code, input::Fields)> {
    let unread = |c| (c, input::Fields::default());
    let Ok(Query(query)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return Err(unread(wire::INS_21));
    };
    let fields = input::Fields::read(&query, body)?;
    match fields.require(op.required()) {
        Ok(()) => Ok(fields),
        Err(code) => Err((code, fields)),
    }
}

/// Both gateways' `Origin` rule: the header must be one the application allows. Given
/// twice it counts as absent, which only an application allowing `*` accepts.
fn origin_of(headers: &HeaderMap) -> Option<String> {
    once(headers, header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A header's value when it is given exactly once. A header that decides whose call it is
/// (`Authorization`, `Origin`) given twice would let a proxy or a log read another call
/// than the gateway's, so neither copy counts (as MoMo answers 400 for its own).
fn once(headers: &HeaderMap, name: header::HeaderName) -> Option<&HeaderValue> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then_some(first)
}

/// `/{sandbox|openapi}/ipg/v2/{market}/{api}`.
async fn v2(
    State(state): State<MpesaState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let fail = |e: MpesaError| e.respond(Gateway::V2, None);
    let path = uri.path();
    let (environment, rest) = if let Some(r) = path.strip_prefix("/sandbox/ipg/v2/") {
        ("sandbox", r)
    } else if let Some(r) = path.strip_prefix("/openapi/ipg/v2/") {
        ("openapi", r)
    } else {
        return fail(MpesaError::NotFound);
    };
    let (market_path, api_path) = rest.split_once('/').unwrap_or((rest, ""));
    let op = match route(Gateway::V2, api_path, None, &method, &body) {
        Ok(Some(op)) => op,
        Ok(None) => return preflight(&headers),
        Err(e) => return fail(e),
    };
    let body = body.unwrap_or_default();
    let bearer = bearer_of(&headers);
    let origin = origin_of(&headers);
    if op.api == Api::GetSession {
        return get_session(
            &state,
            client_of(peer),
            bearer,
            origin.as_deref(),
            market_path,
            environment,
        )
        .await;
    }
    // Read before the session is checked, so that its refusal too carries a conversation
    // id and echoes the client's (as every error body does); refused in this order still.
    let fields = fields_of(&uri, &body, op);
    let echo = match &fields {
        Ok(f) | Err((_, f)) => Some(f),
    };
    let refuse = |code| MpesaError::Ins(code).respond(Gateway::V2, echo);
    let app = match authenticate(&state, bearer, environment).await {
        Ok(app) => app,
        Err(code) => return refuse(code),
    };
    match live(&state, environment, &app).await {
        Ok(true) => {}
        // The production gateway never issued this session.
        Ok(false) => return refuse(wire::SESSION_INVALID),
        Err(code) => return refuse(code),
    }
    if !app.origin_allowed(origin.as_deref()) {
        return fail(MpesaError::OriginNotAllowed);
    }
    let Some(market) = Market::from_path(market_path) else {
        return refuse(wire::INS_998);
    };
    let fields = match fields {
        Ok(f) => f,
        Err((code, f)) => return MpesaError::Ins(code).respond(Gateway::V2, Some(&f)),
    };
    if !op.markets.is_empty() && !op.markets.contains(&market) {
        // Not offered in this market (Query Beneficiary Name is Vodafone Ghana's only).
        return MpesaError::Ins(wire::INS_997).respond(Gateway::V2, Some(&fields));
    }
    let call = Call {
        state,
        app,
        gateway: Gateway::V2,
        market,
        environment,
        fields,
    };
    dispatch(call, op).await
}

/// `/ipg/v1x/{api}` on the main listener: every v1x API.
async fn v1x_any(
    State(state): State<MpesaState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    v1x(state, None, client_of(peer), method, uri, headers, body).await
}

/// A v1x request: the encrypted API key on every call, Mozambique's market.
async fn v1x(
    state: MpesaState,
    only: Option<&'static Operation>,
    client: IpAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let fail = |e: MpesaError| e.respond(Gateway::V1x, None);
    let api_path = uri.path().strip_prefix("/ipg/v1x/").unwrap_or_default();
    let op = match route(Gateway::V1x, api_path, only, &method, &body) {
        Ok(Some(op)) => op,
        Ok(None) => return preflight(&headers),
        Err(e) => return fail(e),
    };
    let body = body.unwrap_or_default();
    // Read before the key is checked, so that a refused key still echoes the reference.
    let fields = fields_of(&uri, &body, op);
    let readable = match &fields {
        Ok(f) | Err((_, f)) => Some(f),
    };
    let app = match app_of_key(&state, client, bearer_of(&headers)).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return MpesaError::Ins(wire::V1X_INVALID_API_KEY).respond(Gateway::V1x, readable);
        }
        Err(refused) => return refused.respond(Gateway::V1x, readable),
    };
    if !app.origin_allowed(origin_of(&headers).as_deref()) {
        return fail(MpesaError::OriginNotAllowed);
    }
    // The live gateway is another host (api.vm.co.mz): there a key is known only once the
    // developer's go-live request for M-Pesa was approved.
    let environment = if v1x::is_live_host(&headers) {
        "openapi"
    } else {
        "sandbox"
    };
    match live(&state, environment, &app).await {
        Ok(true) => {}
        Ok(false) => {
            return MpesaError::Ins(wire::V1X_INVALID_API_KEY).respond(Gateway::V1x, readable);
        }
        Err(code) => return fail(MpesaError::Ins(code)),
    }
    let fields = match fields {
        Ok(f) => f,
        Err((code, f)) => return MpesaError::Ins(code).respond(Gateway::V1x, Some(&f)),
    };
    let call = Call {
        state,
        app,
        gateway: Gateway::V1x,
        market: v1x::MARKET,
        environment,
        fields,
    };
    dispatch(call, op).await
}

/// The operation's handler.
async fn dispatch(call: Call, op: &'static Operation) -> Response {
    match (op.gateway, op.api) {
        (_, Api::C2b) => ops::c2b(call).await,
        (_, Api::B2c) => ops::b2c(call).await,
        (_, Api::B2b) => ops::b2b(call).await,
        (_, Api::Reversal) => ops::reversal(call).await,
        (_, Api::QueryStatus) => ops::query_status(call).await,
        (Gateway::V2, Api::QueryBeneficiary) => ops::query_beneficiary(call).await,
        (Gateway::V2, Api::DirectDebitCreate) => ops::direct_debit_create(call).await,
        (Gateway::V2, Api::DirectDebitPay) => ops::direct_debit_pay(call).await,
        (Gateway::V2, Api::DirectDebitQuery) => ops::direct_debit_query(call).await,
        (Gateway::V2, Api::DirectDebitCancel) => ops::direct_debit_cancel(call).await,
        (Gateway::V1x, Api::CustomerName) => v1x::customer_name(call).await,
        // Not enabled (C2B multi-stage, the transaction status update): refused as any
        // other call, with a conversation id and the caller's echoed.
        _ => ops::refuse(&call, wire::INS_997),
    }
}

/// A browser's preflight (`OPTIONS`): the gateway's `{}` with what lets the browser send
/// the call itself, its `Authorization`, its JSON body and its method. The headers it asks
/// for are allowed as it names them (when they are plain names), else the three every call
/// uses.
fn preflight(headers: &HeaderMap) -> Response {
    let mut r = wire::json_response(StatusCode::OK, "{}".to_owned());
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| {
            v.len() <= 512
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(b))
        })
        .cloned();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        asked.unwrap_or(HeaderValue::from_static(
            "Authorization, Content-Type, Origin",
        )),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}

/// The text after `Bearer ` (any case), if any.
fn bearer_of(headers: &HeaderMap) -> Option<String> {
    let v = once(headers, header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// A bearer's secret: remembered if it proved valid before, else decrypted on the bounded
/// RSA pool (off the async threads). `Err` is the overload answer to give at once.
/// `throttled`: the client's address is past its failure limit, so it decrypts only on an
/// idle worker ([`PlatformKey::decrypt_if_idle`](rsa::PlatformKey::decrypt_if_idle)).
async fn decrypt(
    state: &MpesaState,
    bearer: &str,
    throttled: bool,
) -> Result<Option<Arc<[u8]>>, Code> {
    use mkoba_platform::metrics::Metrics;
    let metrics = state.platform.metrics();
    if let Some(hit) = state.key.cached(bearer) {
        Metrics::count(&metrics.bearer_cache, "result", "hit");
        return Ok(Some(hit));
    }
    Metrics::count(&metrics.bearer_cache, "result", "miss");
    let result = if throttled {
        state.key.decrypt_if_idle(bearer.to_owned()).await
    } else {
        state.key.decrypt_bounded(bearer.to_owned()).await
    };
    let outcome = match &result {
        Ok(Some(_)) => "ok",
        Ok(None) => "invalid",
        Err(_) => "overloaded",
    };
    Metrics::count(&metrics.rsa_decryptions, "result", outcome);
    result.map_err(|_| wire::OVERLOADED)
}

/// Why an API key check gave no answer of its own.
enum KeyRefusal {
    /// A fault or an overload: this code, as it is.
    Code(Code),
    /// The client's address failed too often: the overload answer at once, with how long
    /// until it may try again.
    Throttled(Duration),
}

impl KeyRefusal {
    fn respond(self, gateway: Gateway, fields: Option<&input::Fields>) -> Response {
        match self {
            KeyRefusal::Code(code) => MpesaError::Ins(code).respond(gateway, fields),
            KeyRefusal::Throttled(wait) => {
                let mut r = MpesaError::Ins(wire::OVERLOADED).respond(gateway, fields);
                let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
        }
    }
}

/// The application whose API key a bearer encrypts: `Ok(None)` for every kind of
/// refusal alike (no bearer, not a ciphertext, bad padding, a wrong or renewed key), so
/// nothing tells one from another, and each counts as a failure of the client's address;
/// `Err` is the answer for a fault or an overload. An address past its failure limit has
/// its bearers decrypted only on an idle worker, and is answered the overload code at once
/// when none is (many clients may share one address, behind one NAT or on one machine:
/// one client's wrong key must not shut out the others, while a flood of garbage from
/// one address cannot keep anyone else from a worker). A bearer that proved valid is
/// remembered, and answered from memory whatever its address.
async fn app_of_key(
    state: &MpesaState,
    client: IpAddr,
    bearer: Option<String>,
) -> Result<Option<MpesaApp>, KeyRefusal> {
    let cached = bearer.as_deref().and_then(|b| state.key.cached(b));
    let found = match (bearer, cached) {
        (Some(bearer), Some(plain)) => check_key(state, &bearer, plain).await,
        (Some(bearer), None) => {
            let throttled = state.key_failures.blocked(client);
            match decrypt(state, &bearer, throttled.is_some()).await {
                Ok(Some(plain)) => check_key(state, &bearer, plain).await,
                Ok(None) => Ok(None),
                Err(_) if let Some(wait) = throttled => {
                    tracing::debug!(%client, "M-Pesa API key check throttled");
                    return Err(KeyRefusal::Throttled(wait));
                }
                Err(code) => Err(code),
            }
        }
        (None, _) => Ok(None),
    };
    match found {
        Ok(None) => {
            state.key_failures.failed(client);
            Ok(None)
        }
        Ok(Some(app)) => Ok(Some(app)),
        Err(code) => Err(KeyRefusal::Code(code)),
    }
}

/// The application of a decrypted API key (remembering the bearer when it is one).
async fn check_key(
    state: &MpesaState,
    bearer: &str,
    plain: Arc<[u8]>,
) -> Result<Option<MpesaApp>, Code> {
    let Ok(api_key) = std::str::from_utf8(&plain) else {
        return Ok(None);
    };
    match state.platform.mpesa().app_by_key(api_key).await {
        Ok(Some(app)) => {
            state.key.remember(bearer, plain.clone());
            Ok(Some(app))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(wire::failed(e)),
    }
}

/// Whether an application may use this environment: `sandbox` always, `openapi`
/// (production) once its developer's go-live request for M-Pesa was approved.
async fn live(state: &MpesaState, environment: &str, app: &MpesaApp) -> Result<bool, Code> {
    if environment != "openapi" {
        return Ok(true);
    }
    match state.platform.portal().live_access(app.developer_id).await {
        Ok(access) => Ok(access.mpesa),
        Err(e) => Err(wire::failed(e)),
    }
}

/// `GET …/getSession/`: the encrypted API key in, a session id out. Every failure answers
/// the same documented `INS-989`.
async fn get_session(
    state: &MpesaState,
    client: IpAddr,
    bearer: Option<String>,
    origin: Option<&str>,
    market_path: &str,
    environment: &str,
) -> Response {
    let fail = |e: MpesaError| e.respond(Gateway::V2, None);
    let app = match app_of_key(state, client, bearer).await {
        Ok(Some(app)) => app,
        Ok(None) => return fail(MpesaError::Ins(wire::INS_989)),
        Err(refused) => return refused.respond(Gateway::V2, None),
    };
    match live(state, environment, &app).await {
        Ok(true) => {}
        // The production gateway does not know a key that was never approved for it.
        Ok(false) => return fail(MpesaError::Ins(wire::INS_989)),
        Err(code) => return fail(MpesaError::Ins(code)),
    }
    if !app.origin_allowed(origin) {
        return fail(MpesaError::OriginNotAllowed);
    }
    if Market::from_path(market_path).is_none() {
        return fail(MpesaError::Ins(wire::INS_989));
    }
    let session = state.platform.mpesa().issue_session(&app, environment);
    Body::of(wire::INS_0)
        .field("output_SessionID", session)
        .respond(StatusCode::OK)
}

/// The application of a session bearer, or the session code to answer.
async fn authenticate(
    state: &MpesaState,
    bearer: Option<String>,
    environment: &str,
) -> Result<MpesaApp, Code> {
    use wire::{SESSION_EXPIRED, SESSION_INVALID, SESSION_NOT_ACTIVE};
    let bearer = bearer.ok_or(SESSION_INVALID)?;
    let plain = decrypt(state, &bearer, false)
        .await?
        .ok_or(SESSION_INVALID)?;
    let session = std::str::from_utf8(&plain).map_err(|_| SESSION_INVALID)?;
    match state
        .platform
        .mpesa()
        .verify_session(session, state.config.session_activation, environment)
        .await
    {
        Ok(Ok(app)) => {
            state.key.remember(&bearer, plain.clone());
            Ok(app)
        }
        Ok(Err(SessionError::Invalid)) => Err(SESSION_INVALID),
        Ok(Err(SessionError::Expired)) => Err(SESSION_EXPIRED),
        Ok(Err(SessionError::NotYetActive)) => Err(SESSION_NOT_ACTIVE),
        Err(e) => Err(wire::failed(e)),
    }
}
