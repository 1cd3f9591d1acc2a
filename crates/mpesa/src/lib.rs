//! The Vodacom/Vodafone M-Pesa OpenAPI v2 dialect: `/{sandbox|openapi}/ipg/v2/{market}/…`.
//!
//! Authentication is the gateway's two steps (reference §3): `getSession` takes
//! `Bearer base64(RSA(apiKey))` and returns a session id; every other call takes
//! `Bearer base64(RSA(sessionId))`. Both are decrypted with the platform key ([`rsa`]), the
//! session verified statelessly by the platform, and `Origin` checked against the
//! application's allowed origins. Then the operation's fields are validated in the order the
//! codes suggest (missing → `INS-20`, each field's rule → its own code, market →
//! `INS-998`, currency → `INS-26`) and mapped onto platform payments: money moves on the
//! same ledger and through the same writer as MoMo's.
//!
//! Synchronous by default: the call returns when the transaction is final. With an
//! asynchronous result URL on the application, the first response omits the transaction id
//! and the result is POSTed to that URL through the callback outbox.
//!
//! Liberal in what it accepts (reference §9): any `Host`, fields in the query string or a
//! JSON body on every method, names in any case, amounts as strings or numbers, unknown
//! fields ignored, paths with or without the trailing slash, `b2cPayment/singleStage/`,
//! reversals by POST. Exact in what it sends: every response is JSON, in the documented
//! field order, and no header value holds a quote character.

pub mod callback;
pub mod input;
mod ops;
pub mod rsa;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use mkoba_platform::Platform;
use mkoba_platform::mpesa::{MpesaApp, SessionError};

pub use crate::rsa::PlatformKey;
use crate::wire::{Body, Code, Market};

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
}

impl Default for MpesaConfig {
    fn default() -> MpesaConfig {
        MpesaConfig {
            session_activation: Duration::ZERO,
            sync_timeout: Duration::from_secs(60),
            insecure_result_urls: false,
        }
    }
}

/// What every M-Pesa handler gets.
#[derive(Debug, Clone)]
pub struct MpesaState {
    pub platform: Platform,
    pub key: Arc<PlatformKey>,
    pub config: Arc<MpesaConfig>,
}

/// The M-Pesa routes.
pub fn router(state: MpesaState) -> Router {
    Router::new()
        .route("/sandbox/ipg/v2/{*rest}", any(handle))
        .route("/openapi/ipg/v2/{*rest}", any(handle))
        .with_state(state)
}

pub use mkoba_platform::mpesa::{RESULT_PORTS, check_result_url};

/// The session codes (the portal documents none; these are Mkoba's, with 401 so clients
/// that refresh on 401 do so).
const SESSION_INVALID: Code = wire::INS_6.with(401, "Invalid Session ID");
const SESSION_EXPIRED: Code = wire::INS_6.with(401, "Session key expired");
const SESSION_NOT_ACTIVE: Code = wire::INS_6.with(401, "Session key not yet active");

/// One request, authenticated.
pub(crate) struct Call {
    pub state: MpesaState,
    pub app: MpesaApp,
    pub market: Market,
    /// `sandbox` or `openapi`: the payments' environment (test MSISDNs only in the sandbox).
    pub environment: &'static str,
    pub fields: input::Fields,
}

/// Which operation a path names, ignoring case and the trailing slash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    GetSession,
    C2b,
    B2c,
    B2b,
    Reversal,
    QueryStatus,
    QueryBeneficiary,
    DirectDebitCreate,
    DirectDebitPay,
    DirectDebitQuery,
    DirectDebitCancel,
    /// Listed by the portal's introduction but undocumented: answered `INS-997`.
    NotBuilt,
}

impl Api {
    fn parse(path: &str) -> Option<(Api, &'static [Method])> {
        let p = path.trim_matches('/').to_ascii_lowercase();
        let found = match p.as_str() {
            "getsession" => (Api::GetSession, &[Method::GET][..]),
            "c2bpayment/singlestage" => (Api::C2b, &[Method::POST][..]),
            "b2cpayment" | "b2cpayment/singlestage" => (Api::B2c, &[Method::POST][..]),
            "b2bpayment" | "b2bpayment/singlestage" => (Api::B2b, &[Method::POST][..]),
            "reversal" => (Api::Reversal, &[Method::PUT, Method::POST][..]),
            "querytransactionstatus" => (Api::QueryStatus, &[Method::GET, Method::POST][..]),
            "querybeneficiaryname" => (Api::QueryBeneficiary, &[Method::GET, Method::POST][..]),
            "directdebitcreation" => (Api::DirectDebitCreate, &[Method::POST][..]),
            "directdebitpayment" => (Api::DirectDebitPay, &[Method::POST][..]),
            "querydirectdebit" => (Api::DirectDebitQuery, &[Method::GET, Method::POST][..]),
            "directdebitcancel" => (Api::DirectDebitCancel, &[Method::PUT, Method::POST][..]),
            "c2bpayment/multistage" | "updatetransactionstatus" => {
                (Api::NotBuilt, &[Method::POST, Method::PUT][..])
            }
            _ => return None,
        };
        Some(found)
    }
}

async fn handle(
    State(state): State<MpesaState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let path = uri.path();
    let (environment, rest) = if let Some(r) = path.strip_prefix("/sandbox/ipg/v2/") {
        ("sandbox", r)
    } else if let Some(r) = path.strip_prefix("/openapi/ipg/v2/") {
        ("openapi", r)
    } else {
        return wire::gateway_error(StatusCode::NOT_FOUND, "Resource not found");
    };
    let (market_path, api_path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((api, methods)) = Api::parse(api_path) else {
        return wire::gateway_error(StatusCode::NOT_FOUND, "Resource not found");
    };
    // HEAD and OPTIONS of a known path: browsers' preflights.
    if method == Method::OPTIONS {
        return wire::json_response(StatusCode::OK, "{}".to_owned());
    }
    if !methods.contains(&method) {
        return wire::gateway_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let Ok(body) = body else {
        return wire::gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    };
    let bearer = bearer_of(&headers);
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if api == Api::GetSession {
        return get_session(&state, bearer, origin.as_deref(), market_path).await;
    }
    let app = match authenticate(&state, bearer).await {
        Ok(app) => app,
        Err(code) => return Body::of(code).respond(code.status),
    };
    if !app.origin_allowed(origin.as_deref()) {
        return wire::gateway_error(StatusCode::FORBIDDEN, "Origin not allowed");
    }
    let Some(market) = Market::from_path(market_path) else {
        return Body::of(wire::INS_998).respond(wire::INS_998.status);
    };
    let Ok(Query(query)) = Query::<Vec<(String, String)>>::try_from_uri(&uri) else {
        return Body::of(wire::INS_21).respond(wire::INS_21.status);
    };
    let fields = match input::Fields::read(&query, &body) {
        Ok(f) => f,
        Err(code) => return Body::of(code).respond(code.status),
    };
    let call = Call {
        state,
        app,
        market,
        environment,
        fields,
    };
    match api {
        Api::GetSession => unreachable_session(),
        Api::C2b => ops::c2b(call).await,
        Api::B2c => ops::b2c(call).await,
        Api::B2b => ops::b2b(call).await,
        Api::Reversal => ops::reversal(call).await,
        Api::QueryStatus => ops::query_status(call).await,
        Api::QueryBeneficiary => ops::query_beneficiary(call).await,
        Api::DirectDebitCreate => ops::direct_debit_create(call).await,
        Api::DirectDebitPay => ops::direct_debit_pay(call).await,
        Api::DirectDebitQuery => ops::direct_debit_query(call).await,
        Api::DirectDebitCancel => ops::direct_debit_cancel(call).await,
        Api::NotBuilt => Body::of(wire::INS_997).respond(wire::INS_997.status),
    }
}

fn unreachable_session() -> Response {
    Body::of(wire::INS_1).respond(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The text after `Bearer ` (any case), if any.
fn bearer_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// Decrypts a bearer off the async threads (a cached one costs nothing).
async fn decrypt(state: &MpesaState, bearer: String) -> Option<Arc<[u8]>> {
    if state.key.is_cached(&bearer) {
        return state.key.decrypt_bearer(&bearer);
    }
    let key = state.key.clone();
    tokio::task::spawn_blocking(move || key.decrypt_bearer(&bearer))
        .await
        .ok()
        .flatten()
}

/// `GET …/getSession/`: the encrypted API key in, a session id out. Every failure (no
/// bearer, not a ciphertext, bad padding, a wrong or renewed key) answers the same
/// documented `INS-989`, so nothing tells one from another.
async fn get_session(
    state: &MpesaState,
    bearer: Option<String>,
    origin: Option<&str>,
    market_path: &str,
) -> Response {
    let refused = || Body::of(wire::INS_989).respond(wire::INS_989.status);
    let Some(bearer) = bearer else {
        return refused();
    };
    let Some(plain) = decrypt(state, bearer).await else {
        return refused();
    };
    let Ok(api_key) = std::str::from_utf8(&plain) else {
        return refused();
    };
    let app = match state.platform.mpesa_app_by_key(api_key) {
        Ok(Some(app)) => app,
        Ok(None) => return refused(),
        Err(_) => return Body::of(wire::INS_1).respond(StatusCode::INTERNAL_SERVER_ERROR),
    };
    if !app.origin_allowed(origin) {
        return wire::gateway_error(StatusCode::FORBIDDEN, "Origin not allowed");
    }
    if Market::from_path(market_path).is_none() {
        return refused();
    }
    let session = state.platform.mpesa_issue_session(&app);
    Body::of(wire::INS_0)
        .field("output_SessionID", session)
        .respond(StatusCode::OK)
}

/// The application of a session bearer, or the session code to answer.
async fn authenticate(state: &MpesaState, bearer: Option<String>) -> Result<MpesaApp, Code> {
    let bearer = bearer.ok_or(SESSION_INVALID)?;
    let plain = decrypt(state, bearer).await.ok_or(SESSION_INVALID)?;
    let session = std::str::from_utf8(&plain).map_err(|_| SESSION_INVALID)?;
    match state
        .platform
        .mpesa_verify_session(session, state.config.session_activation)
    {
        Ok(Ok(app)) => Ok(app),
        Ok(Err(SessionError::Invalid)) => Err(SESSION_INVALID),
        Ok(Err(SessionError::Expired)) => Err(SESSION_EXPIRED),
        Ok(Err(SessionError::NotYetActive)) => Err(SESSION_NOT_ACTIVE),
        Err(_) => Err(wire::INS_1.with(500, "Internal Error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_in_any_case_with_or_without_the_slash() {
        assert_eq!(Api::parse("getSession/").unwrap().0, Api::GetSession);
        assert_eq!(Api::parse("c2bPayment/singleStage").unwrap().0, Api::C2b);
        assert_eq!(Api::parse("b2cPayment/singleStage/").unwrap().0, Api::B2c);
        assert_eq!(
            Api::parse("querydirectDebit/").unwrap().0,
            Api::DirectDebitQuery
        );
        assert!(Api::parse("nothing/").is_none());
    }
}
