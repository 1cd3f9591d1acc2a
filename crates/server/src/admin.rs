//! Mkoba's own JSON endpoints under `/_mkoba/`: health, a transaction (by MoMo reference id
//! or M-Pesa conversation id) with its ledger
//! postings and callback attempts, the ledger's balance check, and API users for any target
//! environment (on MTN, production API users come from the partner portal, not from the
//! sandbox provisioning API; until Mkoba's portal exists, this endpoint is that portal).
//!
//! The transaction and API-user endpoints need a subscription key (header
//! `Ocp-Apim-Subscription-Key`) of the developer account concerned, so one developer never
//! reads another's data. The platform-wide reads — the ledger check and health's details
//! (pid, memory) — need an operator's credentials as HTTP Basic (`Authorization: Basic
//! base64(email:password)`, the operator's portal sign-in); without them health answers
//! only whether the server is alive.
//!
//! Test clocks (`/_mkoba/test_clocks`, `mkoba_platform::test_clock`) are the developer's
//! too: create one for a new API user, advance it, delete it (`docs/test-clocks.md`).

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mkoba_momo::error::MomoError;
use mkoba_momo::extract::Path;
use mkoba_platform::model::{ApiUser, SubscriptionKey};
use mkoba_platform::test_clock::{ClockError, TestClock};
use mkoba_platform::throttle::Throttles;
use mkoba_platform::{CreateError, Platform};
use mkoba_portal::ClientAddr;
use serde_json::json;

/// The admin routes; wrong operator credentials count in `throttles`.
pub fn router(platform: Platform, throttles: Throttles) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/ledger", get(ledger))
        .route("/transactions/{reference_id}", get(transaction))
        .route("/apiusers", post(create_api_user))
        .route("/test_clocks", get(list_clocks).post(create_clock))
        .route("/test_clocks/{id}", get(show_clock).delete(delete_clock))
        .route("/test_clocks/{id}/advance", post(advance_clock))
        .layer(Extension(throttles))
        .layer(axum::middleware::map_response(no_store))
        .with_state(platform)
}

/// `Cache-Control: no-store` on every answer of the admin API: they carry keys (a new API
/// user's, the M-Pesa application's), transactions and balances, which no cache between
/// the client and the server may keep.
pub(crate) async fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `GET /_mkoba/openapi.json`: the OpenAPI document of everything served, generated from
/// the route catalogue.
async fn openapi() -> Response {
    Json(mkoba_momo::openapi::document()).into_response()
}

/// Who asks: the client's address and the server's throttles, for the operator's
/// credentials.
struct Asker {
    client: IpAddr,
    throttles: Throttles,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Asker {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Asker, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        let throttles = parts
            .extensions
            .get::<Throttles>()
            .cloned()
            .expect("the admin router carries the throttles");
        Ok(Asker { client, throttles })
    }
}

/// Why an operator's credentials were not taken.
enum Refusal {
    /// Also the hashing pool's being full: `503 SERVICE_UNAVAILABLE` with `Retry-After`.
    Momo(MomoError),
    /// Too many wrong credentials from this address: 429 until the time given.
    Throttled(Duration),
}

impl From<MomoError> for Refusal {
    fn from(e: MomoError) -> Refusal {
        Refusal::Momo(e)
    }
}

impl From<mkoba_platform::Internal> for Refusal {
    fn from(e: mkoba_platform::Internal) -> Refusal {
        Refusal::Momo(e.into())
    }
}

/// The operator whose HTTP Basic credentials a request carries. Wrong credentials count
/// against the client's address ([`Throttles::operator_credentials`]); an address past its
/// limit is answered at once, before any password hashing, and the hashing runs in the
/// portal's bounded pool.
async fn operator(platform: &Platform, headers: &HeaderMap, asker: Asker) -> Result<i64, Refusal> {
    let refused =
        || MomoError::Unauthorized("an operator's e-mail and password (HTTP Basic) are required");
    let (email, password) = mkoba_momo::auth::basic_pair(headers).ok_or_else(refused)?;
    let failures = &asker.throttles.operator_credentials;
    if let Some(wait) = failures.blocked(asker.client) {
        // Counted with the portal's throttled sign-ins: the password-guessing alert of
        // docs/operations.md watches both.
        mkoba_platform::metrics::Metrics::count(
            &platform.metrics().portal_signins,
            "outcome",
            "throttled",
        );
        return Err(Refusal::Throttled(wait));
    }
    let found = asker
        .throttles
        .portal
        .passwords()
        .run(platform.portal().operator_by_credentials(&email, &password))
        .await
        .map_err(|_| MomoError::unavailable())??;
    found.ok_or_else(|| {
        failures.failed(asker.client);
        refused().into()
    })
}

/// A refusal as MTN's envelope; a 401 asks for Basic credentials.
fn ask_credentials(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Momo(e) => {
            let mut r = e.into_response();
            if r.status() == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Basic realm=\"mkoba operator\""),
                );
            }
            r
        }
        Refusal::Throttled(wait) => mkoba_momo::error::retry_after(
            MomoError::Platform(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS").into_response(),
            wait,
        ),
    }
}

/// `GET /_mkoba/health`: liveness for anyone (`503 {"status":"failing"}` once the writer
/// or the callback dispatcher has stopped); with an operator's credentials, what failed,
/// whether the store is failing now (`"store": "failing"` while commits fail: writes are
/// refused until it recovers, which needs no restart), the version, pid and memory use
/// too.
async fn health(State(platform): State<Platform>, asker: Asker, headers: HeaderMap) -> Response {
    let failures = platform.failures();
    let (status, word) = if failures.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failing")
    };
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return (status, Json(json!({ "status": word }))).into_response();
    }
    if let Err(e) = operator(&platform, &headers, asker).await {
        // The credentials cannot be checked while the store fails: say that much, which is
        // what the operator needs to know, rather than an overload answer.
        if platform.store_failing() {
            return (status, Json(json!({ "status": word, "store": "failing" }))).into_response();
        }
        return ask_credentials(e);
    }
    let (rss, peak) = mkoba_platform::metrics::memory_kib();
    (
        status,
        Json(json!({
            "status": word,
            "failures": failures,
            "store": if platform.store_failing() { "failing" } else { "ok" },
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "rss_kb": rss,
            "peak_rss_kb": peak,
        })),
    )
        .into_response()
}

/// `GET /_mkoba/ledger` (operators): per currency, the sums of debits and credits over
/// every account.
async fn ledger(State(platform): State<Platform>, asker: Asker, headers: HeaderMap) -> Response {
    match ledger_totals(&platform, &headers, asker).await {
        Ok(r) => r,
        Err(e) => ask_credentials(e),
    }
}

async fn ledger_totals(
    platform: &Platform,
    headers: &HeaderMap,
    asker: Asker,
) -> Result<Response, Refusal> {
    operator(platform, headers, asker).await?;
    let totals = platform.payments().ledger_totals().await?;
    let currencies: Vec<_> = totals
        .iter()
        .map(|t| {
            json!({
                "currency": t.currency,
                "debits_posted": t.debits_posted,
                "credits_posted": t.credits_posted,
                "debits_pending": t.debits_pending,
                "credits_pending": t.credits_pending,
                "balanced": t.balanced(),
            })
        })
        .collect();
    let balanced = currencies.iter().all(|c| c["balanced"] == true);
    Ok(Json(json!({ "balanced": balanced, "currencies": currencies })).into_response())
}

fn developer(platform: &Platform, headers: &HeaderMap) -> Result<SubscriptionKey, MomoError> {
    let key = mkoba_momo::auth::subscription_key(headers, None)
        .ok_or(MomoError::MissingSubscriptionKey)?;
    platform
        .credentials()
        .subscription(&key)
        .ok_or(MomoError::InvalidSubscriptionKey)
}

/// `POST /_mkoba/apiusers`: `{"providerCallbackHost":"…","targetEnvironment":"mtnuganda"}`
/// (an `X-Reference-Id` header chooses the id) → 201 `{"apiUser","apiKey",…}`.
async fn create_api_user(
    State(platform): State<Platform>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    use mkoba_momo::validate;
    let subscription = developer(&platform, &headers)?;
    let id = match validate::header(&headers, "x-reference-id") {
        Some(v) => validate::reference_id(v, "X-Reference-Id")?,
        None => uuid::Uuid::new_v4(),
    };
    let body = validate::json_body(&body)?;
    let host = validate::callback_host(&validate::required_string(&body, "providerCallbackHost")?)?;
    let environment = validate::required(&body, "targetEnvironment")?;
    if !mkoba_momo::ENVIRONMENTS.contains(&environment.as_str()) {
        return Err(MomoError::bad(format!(
            "targetEnvironment must be one of {}, got {environment:?}",
            mkoba_momo::ENVIRONMENTS.join(", ")
        )));
    }
    // A production market only for a developer whose go-live request covers it (the
    // sandbox developer created at start has every market).
    match platform
        .portal()
        .live_access(subscription.developer_id)
        .await
    {
        Ok(access) if access.allows_environment(&environment) => {}
        Ok(_) => {
            return Err(MomoError::Platform(
                StatusCode::INTERNAL_SERVER_ERROR,
                "NOT_ALLOWED_TARGET_ENVIRONMENT",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let user = ApiUser {
        id,
        developer_id: subscription.developer_id,
        provider_callback_host: host.trim().to_owned(),
        target_environment: environment.clone(),
        created_at_ms: platform.now_ms(),
    };
    match platform.credentials().create_api_user(user).await {
        Ok(()) => {}
        Err(CreateError::Duplicate) => {
            return Err(MomoError::Platform(
                StatusCode::CONFLICT,
                "RESOURCE_ALREADY_EXIST",
            ));
        }
        Err(_) => return Err(MomoError::Internal),
    }
    let key = platform
        .credentials()
        .create_api_key(id)
        .await
        .map_err(|_| MomoError::Internal)?;
    tracing::info!(api_user.id = %id, environment = %environment, "API user created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "apiUser": id.to_string(),
            "apiKey": key,
            "providerCallbackHost": host.trim(),
            "targetEnvironment": environment,
            "currency": mkoba_momo::environment_currency(&environment),
        })),
    )
        .into_response())
}

/// `GET /_mkoba/transactions/{referenceId}`.
async fn transaction(
    State(platform): State<Platform>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
) -> Result<Response, MomoError> {
    let subscription = developer(&platform, &headers)?;
    // A MoMo reference id, or an M-Pesa conversation id (the same id without dashes).
    let id = match uuid::Uuid::try_parse(&reference_id) {
        Ok(id) if reference_id.len() == 32 => id,
        _ => mkoba_momo::validate::reference_id(&reference_id, "referenceId")?,
    };
    let not_found = MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let p = platform
        .payments()
        .get(&id)
        .await?
        .ok_or(not_found.clone())?;
    let owner = platform.credentials().api_user(&p.api_user).await?;
    if owner.is_none_or(|u| u.developer_id != subscription.developer_id) {
        return Err(not_found);
    }
    let transfers: Vec<_> = platform
        .payments()
        .transfers_for(&id)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "id": t.id.0,
                "debit_account": t.debit.0,
                "credit_account": t.credit.0,
                "amount_minor": t.amount,
                "currency": t.currency.as_str(),
                "state": t.state.as_str(),
            })
        })
        .collect();
    let callbacks: Vec<_> = platform
        .payments()
        .callback_attempts(&id)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                // Which delivery (a manual re-send is a delivery of its own) and which try
                // of it.
                "outbox_id": a.outbox_id,
                "attempt": a.attempt,
                "at_ms": a.at_ms,
                "url": mkoba_platform::model::shown_url(&a.url),
                "method": a.method.as_str(),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                // Why no answer came; or, for an answer that refused the callback, the
                // start of its body.
                "error": a.error.as_ref().filter(|_| a.status_code.is_none()),
                "answer": a.error.as_ref().filter(|_| a.status_code.is_some()),
                "retry_at_ms": a.retry_at_ms,
            })
        })
        .collect();
    Ok(Json(json!({
        "reference_id": p.reference_id.to_string(),
        "kind": p.kind.as_str(),
        "product": p.product.as_str(),
        "api_user": p.api_user.to_string(),
        "environment": p.environment,
        "amount_minor": p.amount.minor(),
        "currency": p.currency().as_str(),
        "party": {"type": p.party.id_type.as_str(), "id": p.party.id},
        "external_id": p.external_id,
        "status": p.status.as_str(),
        "reason": p.reason.map(|r| r.as_str()),
        "financial_transaction_id": p.financial_transaction_id,
        "callback_url": p.callback_url.as_deref().map(mkoba_platform::model::shown_url),
        "created_at_ms": p.created_at_ms,
        "settle_at_ms": p.settle_at_ms,
        "settled_at_ms": p.settled_at_ms,
        "notifications": p.notifications,
        // Made on a test clock (its API user has one): times are the clock's.
        "test_clock": platform.clocks().of(&p.api_user).map(|c| c.id.to_string()),
        "transfers": transfers,
        "callbacks": callbacks,
    }))
    .into_response())
}

/// A test clock as the admin API shows it.
fn clock_json(c: &TestClock) -> serde_json::Value {
    json!({
        "id": c.id.to_string(),
        "apiUser": c.api_user.to_string(),
        "name": c.name,
        "nowMs": c.now_ms,
        "now": iso(c.now_ms),
        "createdAtMs": c.created_at_ms,
    })
}

/// An RFC 3339 time in UTC, to the millisecond, always three decimals.
fn iso(ms: i64) -> String {
    mkoba_platform::clock::iso_millis(ms)
}

fn clock_refused(e: ClockError) -> MomoError {
    let conflict = |code| MomoError::Platform(StatusCode::CONFLICT, code);
    match e {
        ClockError::NotFound => MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND"),
        ClockError::Attached => conflict("RESOURCE_ALREADY_EXIST"),
        ClockError::HasPayments | ClockError::HasOpenPayments | ClockError::TooMany => {
            MomoError::bad(e.to_string())
        }
        ClockError::Backwards | ClockError::TooFar | ClockError::PastTheEnd => {
            MomoError::bad(e.to_string())
        }
        ClockError::Unavailable => MomoError::unavailable(),
    }
}

fn clock_id(id: &str) -> Result<uuid::Uuid, MomoError> {
    uuid::Uuid::try_parse(id)
        .map_err(|_| MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND"))
}

/// `POST /_mkoba/test_clocks`: `{"apiUser":"…","name":"…","frozenTimeMs":…}` (name and
/// start optional; the start is the server's time when absent) → 201 with the clock.
async fn create_clock(
    State(platform): State<Platform>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    use mkoba_momo::validate;
    let subscription = developer(&platform, &headers)?;
    let body = validate::json_body(&body)?;
    let api_user = validate::reference_id(&validate::required(&body, "apiUser")?, "apiUser")?;
    let name = match body.get("name") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s))
            if s.chars().count() <= 100 && !s.chars().any(mkoba_platform::portal::hides_text) =>
        {
            s.clone()
        }
        Some(_) => {
            return Err(MomoError::bad(
                "name must be a string of at most 100 characters, without control characters (one line)",
            ));
        }
    };
    let start = match body.get("frozenTimeMs") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|ms| (0..=mkoba_platform::test_clock::LAST_MS).contains(ms))
                .ok_or_else(|| {
                    MomoError::bad(
                        "frozenTimeMs must be milliseconds since 1970 (an integer), at most the end of the year 9899",
                    )
                })?,
        ),
    };
    let clock = platform
        .clocks()
        .create(subscription.developer_id, api_user, name, start)
        .await
        .map_err(clock_refused)?;
    Ok((StatusCode::CREATED, Json(clock_json(&clock))).into_response())
}

/// `GET /_mkoba/test_clocks`: the developer's clocks.
async fn list_clocks(
    State(platform): State<Platform>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    let subscription = developer(&platform, &headers)?;
    if !platform.clocks().caught_up().await {
        return Err(MomoError::unavailable());
    }
    let clocks: Vec<_> = platform
        .clocks()
        .list(subscription.developer_id)
        .iter()
        .map(clock_json)
        .collect();
    Ok(Json(json!({ "testClocks": clocks })).into_response())
}

/// `GET /_mkoba/test_clocks/{id}`.
async fn show_clock(
    State(platform): State<Platform>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, MomoError> {
    let subscription = developer(&platform, &headers)?;
    let id = clock_id(&id)?;
    if !platform.clocks().caught_up().await {
        return Err(MomoError::unavailable());
    }
    let clock = platform
        .clocks()
        .get(subscription.developer_id, &id)
        .ok_or(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        ))?;
    Ok(Json(clock_json(&clock)).into_response())
}

/// `POST /_mkoba/test_clocks/{id}/advance`: `{"by":"3d"}` (`s`, `m`, `h`, `d`) or
/// `{"seconds":259200}` → 200 with the clock, once everything that became due is settled.
async fn advance_clock(
    State(platform): State<Platform>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, MomoError> {
    use mkoba_momo::validate;
    let subscription = developer(&platform, &headers)?;
    let id = clock_id(&id)?;
    let body = validate::json_body(&body)?;
    let by = match (body.get("by"), body.get("seconds")) {
        (Some(serde_json::Value::String(text)), None) => {
            mkoba_platform::test_clock::parse_span(text).ok_or_else(|| {
                span_refused(
                    text.trim(),
                    true,
                    "by must be a number and a unit: 90s, 15m, 3h or 2d",
                )
            })?
        }
        // A number, or its digits as a string (what the JSON reader advises for a number
        // written with an exponent).
        (None, Some(v)) => std::time::Duration::from_secs(
            v.as_u64()
                .or_else(|| {
                    v.as_str()
                        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|t| t.parse().ok())
                })
                .ok_or_else(|| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    span_refused(
                        text.trim(),
                        false,
                        "seconds must be a whole number, 0 or more",
                    )
                })?,
        ),
        _ => return Err(MomoError::bad("give either by (\"3d\") or seconds")),
    };
    let clock = platform
        .clocks()
        .advance(subscription.developer_id, id, by)
        .await
        .map_err(clock_refused)?;
    Ok(Json(clock_json(&clock)).into_response())
}

/// Why an advance's span was not read, said for what it looks like: a well-formed span
/// (`by`: digits and one unit; `seconds`: digits) that is negative goes backwards, one that
/// is not is past what one advance moves (a number too large to hold is no less);
/// anything else gets `otherwise`.
fn span_refused(text: &str, unit: bool, otherwise: &str) -> MomoError {
    match mkoba_platform::test_clock::span_refusal(text, unit) {
        Some(e) => MomoError::bad(e.to_string()),
        None => MomoError::bad(otherwise),
    }
}

/// `DELETE /_mkoba/test_clocks/{id}` → 204; the API user's pending payments end as EXPIRED.
async fn delete_clock(
    State(platform): State<Platform>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, MomoError> {
    let subscription = developer(&platform, &headers)?;
    platform
        .clocks()
        .delete(subscription.developer_id, clock_id(&id)?)
        .await
        .map_err(clock_refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
