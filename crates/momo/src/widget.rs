//! The Collection Widget, MTN's fourth MoMo product: a script a merchant drops into any
//! page (`/v0.1.0/mobile-money-widget-mtn.js`, MTN's sandbox path) that turns a
//! `<div class="mobile-money-qr-payment" data-api-user-id data-amount data-currency
//! data-external-id>` into a MoMo pay button, and the endpoints it calls.
//!
//! Each widget payment is a Collection v2 invoice of the API user (kind `Invoice`, product
//! `Collection`): the partner reads it with its own token through
//! `/collection/v2_0/invoice/{id}` and gets its callback, and the money lands in the
//! partner's collection account on the same ledger. Its payer is whoever scans the QR code
//! or dials the USSD code, unknown when the invoice is made, so the invoice gets a payer of
//! its own ([`mkoba_platform::widget::widget_payer`]) and, in the sandbox, its amount
//! decides as MTN's widget does (1–19 waits for the payer, 20–79 fails, anything else
//! succeeds).
//!
//! The page-side endpoints (`/widget/v1_0/…`) take only what a page can show — the API
//! user id, amount, currency and external id — so they are guarded instead by the API
//! user's allowed origins (the sandbox allows any page until a list is set; production-like
//! environments need one), by rate limits per API user and per client address, and by the
//! invoice id itself (a random UUID) for reads. Answers carry CORS headers for the calling
//! origin, so a refusal is readable by the script. The partner manages the origins and the
//! callback URL with its Collection Widget subscription key
//! (`/collection_widget/v1_0/apiuser/{id}/widget`) or in the portal.
//!
//! The script learns the outcome by long-polling (`?wait=25&known=PENDING`): the request
//! waits on the platform's watch of the payment, never on a loop, and the number of waiting
//! requests is bounded; past the bound the answer is an immediate 503.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use mkoba_api_types::momo::ErrorReason;
use mkoba_platform::CancelError;
use mkoba_platform::accounts::AccountStatus;
use mkoba_platform::model::{
    ApiUser, CallbackMethod, NewPayment, Payment, PaymentKind, PaymentStatus, Product,
    SubscriptionKey, WidgetSettings,
};
use mkoba_platform::throttle::{Limit, Rate, address_key};
use mkoba_platform::widget::{
    WIDGET_LINK_PURPOSE, check_origins, is_widget_payer, payment_reference, widget_payer,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::MomoState;
use crate::error::{MomoError, json as json_response, retry_after};
use crate::validate;

/// The script, written for Mkoba (no dependencies, no build step).
pub const SCRIPT: &str = include_str!("../assets/mobile-money-widget-mtn.js");
/// Where MTN's sandbox serves the script, and so does Mkoba.
pub const SCRIPT_PATH: &str = "/v0.1.0/mobile-money-widget-mtn.js";

/// The widget's limits.
#[derive(Debug, Clone)]
pub struct WidgetConfig {
    /// How long a widget invoice can be paid (its `expiryDateTime`).
    pub invoice_validity: Duration,
    /// Invoices one API user's pages may create.
    pub per_api_user: Rate,
    /// Widget requests from one client address (an IPv6 address by its /64).
    pub per_client: Rate,
    /// Invoices one client address may create for one API user: well under the API user's
    /// own budget, so that no single client can spend it and lock the partner's shoppers
    /// out (nor fill its ledger with invoices no one pays).
    pub per_client_invoices: Rate,
    /// Long-polls waiting at once, over all clients.
    pub max_waiters: usize,
    /// The longest a long-poll waits.
    pub max_wait: Duration,
}

impl Default for WidgetConfig {
    fn default() -> WidgetConfig {
        WidgetConfig {
            invoice_validity: Duration::from_secs(15 * 60),
            // 30 at once, then 120 a minute.
            per_api_user: Rate::new(30, Duration::from_secs(15)),
            // 120 at once, then 600 a minute.
            per_client: Rate::new(120, Duration::from_secs(12)),
            // 5 at once, then 20 a minute.
            per_client_invoices: Rate::new(5, Duration::from_secs(15)),
            max_waiters: 1024,
            max_wait: Duration::from_secs(25),
        }
    }
}

/// The most keys a rate limiter remembers; past it, idle buckets are forgotten first, and
/// were every one busy, the limiter refuses until some are idle (`throttle`'s notes).
const MAX_BUCKETS: usize = 10_000;

/// The widget's shared state: limiters and the bound on waiting long-polls.
#[derive(Debug)]
pub struct Widget {
    config: WidgetConfig,
    per_api_user: Limit,
    per_client: Limit,
    per_client_invoices: Limit,
    waiters: Arc<Semaphore>,
}

impl Widget {
    pub fn new(config: WidgetConfig) -> Widget {
        Widget {
            per_api_user: Limit::new(config.per_api_user, MAX_BUCKETS),
            per_client: Limit::new(config.per_client, MAX_BUCKETS),
            per_client_invoices: Limit::new(config.per_client_invoices, MAX_BUCKETS),
            waiters: Arc::new(Semaphore::new(config.max_waiters)),
            config,
        }
    }
}

/// Every refusal of the widget's endpoints, answered in MTN's envelope.
#[derive(Debug)]
enum Refused {
    /// Bad input, or a fault inside (the dialect's own errors).
    Momo(MomoError),
    NotFound,
    /// The page may not take payments for the API user: its origin is not allowed, or the
    /// developer is not subscribed to the widget.
    Origin(String),
    /// Over a rate limit; try again after this long.
    TooMany(Duration),
    /// Too many long-polls waiting.
    Busy,
    NotCancellable,
}

impl From<MomoError> for Refused {
    fn from(e: MomoError) -> Refused {
        Refused::Momo(e)
    }
}

fn envelope(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        &ErrorReason {
            code: code.to_owned(),
            message: message.into(),
        },
    )
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Momo(e) => e.into_response(),
            Refused::NotFound => envelope(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "Requested resource was not found.",
            ),
            Refused::Origin(message) => envelope(StatusCode::FORBIDDEN, "NOT_ALLOWED", message),
            Refused::TooMany(after) => retry_after(
                envelope(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOO_MANY_REQUESTS",
                    "Too many widget requests; try again shortly.",
                ),
                after,
            ),
            Refused::Busy => retry_after(
                envelope(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "Service temporary unavailable, try again later.",
                ),
                Duration::from_secs(1),
            ),
            Refused::NotCancellable => envelope(
                StatusCode::CONFLICT,
                "NOT_ALLOWED",
                "Only a pending invoice can be cancelled.",
            ),
        }
    }
}

/// The page-side routes (no subscription key) and the script.
pub fn public_routes(state: &MomoState) -> Router<MomoState> {
    Router::new()
        .route("/widget/v1_0/invoice", post(create).options(preflight))
        .route(
            "/widget/v1_0/invoice/{id}",
            get(read).delete(cancel).options(preflight),
        )
        .route(
            "/widget/v1_0/invoice/{id}/qr.svg",
            get(qr).options(preflight),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), cors))
        .route(SCRIPT_PATH, get(script))
}

/// The partner's routes, under `/collection_widget` behind its subscription key.
pub fn partner_routes() -> Router<MomoState> {
    Router::new().route(
        "/v1_0/apiuser/{id}/widget",
        get(read_settings).put(save_settings),
    )
}

/// A browser's preflight (answered by [`cors`]).
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// CORS for the calling page (the origin is checked by each handler against the API
/// user's list; the headers only let the script read the answer, refusals included), the
/// preflight, and the per-client rate limit.
async fn cors(State(state): State<MomoState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let mut response = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        match state.widget.per_client.check(address_key(client)) {
            Ok(()) => next.run(req).await,
            Err(retry) => Refused::TooMany(retry).into_response(),
        }
    };
    let h = response.headers_mut();
    match origin {
        Some(o) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    // So the script can honour a rate limit's Retry-After.
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
    response
}

/// Whether a page of `origin` may take widget payments for `user`: an allowed-origins list
/// must name it; without a list the sandbox allows any page and the markets none. A
/// request without `Origin` is a page of this server's own host (`own`): browsers send
/// none on a same-origin `GET` (the portal's demo, a shop behind the same host), and a
/// client that is not a browser could send any; it passes when an allowed origin names
/// the host it reached, whatever its scheme (behind a proxy that ends TLS the page is
/// `https://` while the request came in plain). Answers the user's widget settings (read
/// once per request).
async fn origin_allowed(
    state: &MomoState,
    user: &ApiUser,
    origin: Option<&str>,
    own: &Base,
) -> Result<Option<WidgetSettings>, Refused> {
    let settings = state
        .platform
        .portal()
        .widget_settings(&user.id)
        .await
        .map_err(MomoError::from)?;
    // For a refusal only.
    let shown = || match origin {
        Some(o) => o.to_owned(),
        None => format!("{} (no Origin header: this server's own)", own.0),
    };
    match settings.as_ref().and_then(|s| s.allowed_origins.as_ref()) {
        None if user.target_environment == "sandbox" => Ok(settings),
        None => Err(Refused::Origin(format!(
            "No allowed origins are set for this API user; outside the sandbox the widget takes payments only from the origins listed in the portal (origin {}).",
            shown()
        ))),
        Some(list) => {
            let listed = match origin {
                Some(o) => list.iter().any(|a| {
                    a == "*"
                        || a.trim_end_matches('/')
                            .eq_ignore_ascii_case(o.trim_end_matches('/'))
                }),
                None => {
                    let host = authority(&own.0);
                    list.iter().any(|a| a == "*" || authority(a) == host)
                }
            };
            if listed {
                Ok(settings)
            } else {
                Err(Refused::Origin(format!(
                    "The origin {} is not allowed to take widget payments for this API user; add it to the API user's allowed origins in the portal.",
                    shown()
                )))
            }
        }
    }
}

/// An origin's host and port (`https://Pay.example:8443/` → `pay.example:8443`).
fn authority(origin: &str) -> String {
    origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// This server as the request reached it (`http://host`, `https://` over TLS), for the
/// payer link in the QR code.
struct Base(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Base, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        let tls = parts
            .extensions
            .get::<mkoba_platform::widget::OverTls>()
            .is_some();
        Ok(Base(mkoba_platform::widget::base_url(host, tls)))
    }
}

fn iso(ms: i64) -> String {
    mkoba_platform::clock::iso_millis(ms)
}

/// The invoice as the widget shows it and its events carry it (reference: the invoice
/// fields of the events' `detail`), with where the payer goes: the QR code, its link and
/// the USSD code.
fn invoice_json(state: &MomoState, p: &Payment, base: &Base) -> Value {
    let id = p.reference_id;
    let token = state
        .platform
        .credentials()
        .sign_claims(WIDGET_LINK_PURPOSE, &json!({ "invoice": id.to_string() }));
    let reference = payment_reference(&id);
    let mut invoice = json!({
        "invoiceId": id.to_string(),
        "externalId": p.external_id,
        "referenceId": id.to_string(),
        "paymentReference": reference,
        "payee": {"partyIdType": "PARTY_CODE", "partyId": p.api_user.to_string()},
        "payeeFirstName": "Sand",
        "payeeLastName": "Box",
        "amount": p.amount.to_decimal_string(),
        "currency": p.currency().to_string(),
        "status": p.status.as_str(),
        "expiryDateTime": p.expires_at_ms.map(iso),
        "qrCodeUrl": format!("/widget/v1_0/invoice/{id}/qr.svg?t={token}"),
        "qrLink": format!("{}/portal/phone/invoice/{id}?t={token}", base.0),
        "ussdCode": ussd_code(&reference),
    });
    // Why a failed one failed, as Collection's invoice status says it: the script tells a
    // cancelled invoice (by its own button, the partner or another tab) from a failed one.
    if let Some(reason) = crate::v2::error_reason(p) {
        invoice["errorReason"] = json!(reason);
    }
    invoice
}

/// The USSD code a payer dials for an invoice (`*165*3*<paymentReference>#`, MoMo's
/// pay-bill menu), also accepted by the virtual phone's dial pad.
pub fn ussd_code(payment_reference: &str) -> String {
    format!("*165*3*{payment_reference}#")
}

/// A widget invoice by id, or the 404.
async fn widget_invoice(state: &MomoState, id: &str) -> Result<Payment, Refused> {
    // Only the hyphenated form the invoice's answers give (`Uuid::parse_str` also reads
    // `{…}`, `urn:uuid:…` and 32 bare digits).
    let id = validate::reference_id(id, "the invoice id").map_err(|_| Refused::NotFound)?;
    match state.platform.payments().get(&id).await {
        Ok(Some(p)) if p.kind == PaymentKind::Invoice && is_widget_payer(&p.party) => Ok(p),
        Ok(_) => Err(Refused::NotFound),
        Err(e) => Err(MomoError::from(e).into()),
    }
}

/// An API user by id, or the 404; also the 404 when its developer's account is deleted or
/// deactivated (the widget takes no key, which is how those stop everything else: an
/// account's keys are replaced by ones nobody holds).
async fn api_user(state: &MomoState, id: &Uuid) -> Result<ApiUser, Refused> {
    let user = match state.platform.credentials().api_user(id).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(Refused::NotFound),
        Err(e) => return Err(MomoError::from(e).into()),
    };
    match state.platform.portal().developer(user.developer_id).await {
        Ok(Some(d))
            if !matches!(
                d.status,
                AccountStatus::Deleted | AccountStatus::Deactivated
            ) =>
        {
            Ok(user)
        }
        Ok(_) => Err(Refused::NotFound),
        Err(e) => Err(MomoError::from(e).into()),
    }
}

/// The invoice's API user, and the page's right to it.
async fn owner(
    state: &MomoState,
    p: &Payment,
    headers: &HeaderMap,
    base: &Base,
) -> Result<ApiUser, Refused> {
    let user = api_user(state, &p.api_user).await?;
    origin_allowed(state, &user, origin_of(headers), base).await?;
    Ok(user)
}

/// The query parameter `name`, percent-decoded, if given: given twice, or not decodable,
/// is a 400 (in the widget's answers, so the script can read why).
fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, MomoError> {
    let mut found = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if validate::form_decode(key).ok().as_deref() != Some(name) {
            continue;
        }
        if found.is_some() {
            return Err(MomoError::bad(format!("the query gives {name} twice")));
        }
        let value = validate::form_decode(value).map_err(|_| {
            MomoError::bad(format!(
                "the query's {name} is not valid percent-encoded UTF-8"
            ))
        })?;
        found = Some(value);
    }
    Ok(found)
}

/// The long poll's `wait`: whole seconds (more than the most is the most).
fn wait_param(query: Option<&str>) -> Result<u64, MomoError> {
    match query_param(query, "wait")? {
        None => Ok(0),
        Some(w) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(w.parse().unwrap_or(u64::MAX))
        }
        Some(w) => Err(MomoError::bad(format!(
            "wait must be a whole number of seconds (at most 25), got {:?}",
            w.chars().take(32).collect::<String>()
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    api_user_id: Option<Value>,
    amount: Option<Value>,
    currency: Option<Value>,
    external_id: Option<Value>,
}

/// A string member (numbers accepted as their text, as a page's script may send them;
/// `-0` as written, not as the float's "-0.0").
fn text(v: Option<&Value>, name: &str) -> Result<String, Refused> {
    match validate::string_value(v, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => Err(MomoError::bad(format!("{name} is required")).into()),
    }
}

/// `POST /widget/v1_0/invoice`: `{"apiUserId","amount","currency","externalId"}` from the
/// element's attributes; 201 with the invoice.
async fn create(
    State(state): State<MomoState>,
    base: Base,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    let b: CreateBody = serde_json::from_value(validate::json_body(&body)?)
        .map_err(|e| MomoError::bad(format!("the body is not a widget invoice: {e}")))?;
    let user_id = text(b.api_user_id.as_ref(), "apiUserId")?;
    // The script's own pattern: a UUID v4 in its hyphenated form.
    let user_id = validate::reference_id(&user_id, "apiUserId")
        .ok()
        .filter(|u| u.get_version_num() == 4)
        .ok_or_else(|| MomoError::bad(format!("apiUserId must be a UUID v4, got {user_id:?}")))?;
    let user = api_user(&state, &user_id).await?;
    // The widget is a product of its own (MTN issues it its own keys): a developer takes
    // widget payments once subscribed to it, not with a Collection subscription alone.
    if !state.platform.credentials().subscribed(
        user.developer_id,
        mkoba_platform::model::Product::CollectionWidget,
    ) {
        return Err(Refused::Origin(
            "The API user's developer account is not subscribed to the Collection Widget: subscribe to it on the developer portal's overview.".to_owned(),
        ));
    }
    let settings = origin_allowed(&state, &user, origin_of(&headers), &base).await?;
    let currency = validate::currency(&text(b.currency.as_ref(), "currency")?)?;
    validate::check_currency(
        currency,
        crate::environment_currency(&user.target_environment),
    )?;
    let amount = validate::amount(&text(b.amount.as_ref(), "amount")?, currency)?;
    let external_id = text(b.external_id.as_ref(), "externalId")?;
    if external_id.chars().count() > 64 || external_id.chars().any(char::is_control) {
        return Err(MomoError::bad(
            "externalId must be 1 to 64 characters without control characters",
        )
        .into());
    }
    // The client's share first: past it, the API user's own budget is not touched.
    let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    state
        .widget
        .per_client_invoices
        .check((address_key(client), user.id))
        .map_err(Refused::TooMany)?;
    state
        .widget
        .per_api_user
        .check(user.id)
        .map_err(Refused::TooMany)?;
    let id = Uuid::new_v4();
    let validity = state.widget.config.invoice_validity.as_millis() as i64;
    let details = json!({
        "widget": true,
        "origin": origin_of(&headers),
        "description": "Collection Widget",
    });
    let new = NewPayment {
        reference_id: id,
        kind: PaymentKind::Invoice,
        product: Product::Collection,
        api_user: user.id,
        environment: user.target_environment.clone(),
        amount,
        external_id: Some(external_id),
        party: widget_payer(&id),
        payer_message: None,
        payee_note: None,
        callback_url: settings.and_then(|s| s.callback_url),
        // An invoice's, as the Collection API's own (v2: PUT).
        callback_method: Some(CallbackMethod::Put),
        refund_of: None,
        details: Some(details.to_string()),
        expires_at_ms: Some(state.platform.clocks().now_for(&user.id) + validity),
        short_code: None,
        mandate: None,
    };
    // A fresh v4 id does not collide: every refusal here is a fault.
    if let Err(e) = state.platform.payments().create(new).await {
        tracing::error!(error = ?e, "creating a widget invoice failed");
        return Err(MomoError::from(e).into());
    }
    let mut p = match state.platform.payments().get(&id).await {
        Ok(Some(p)) => p,
        _ => return Err(MomoError::Internal.into()),
    };
    // The answer is the invoice as created (the `created` event's detail): with no settle
    // delay it may already be final when read back, and its outcome is the reads' to tell.
    p.status = PaymentStatus::Pending;
    Ok(json_response(
        StatusCode::CREATED,
        &invoice_json(&state, &p, &base),
    ))
}

/// `GET /widget/v1_0/invoice/{id}`, with `?wait=N&known=STATUS` a long-poll: the answer
/// comes when the status is no longer `known`, or after at most `N` seconds (25 at most).
async fn read(
    State(state): State<MomoState>,
    base: Base,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    let (wait, known) = (
        wait_param(query.as_deref())?,
        query_param(query.as_deref(), "known")?,
    );
    let p = widget_invoice(&state, &id).await?;
    let user = owner(&state, &p, &headers, &base).await?;
    let waits = wait > 0
        && known.as_deref() == Some(p.status.as_str())
        && p.status == PaymentStatus::Pending;
    let p = if waits {
        let permit = state
            .widget
            .waiters
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Busy)?;
        let wait = Duration::from_secs(wait).min(state.widget.config.max_wait);
        let watch = state
            .platform
            .payments()
            .watch(p.reference_id, user.developer_id)
            .ok_or(Refused::Busy)?;
        let p = match state
            .platform
            .payments()
            .wait_final(&p.reference_id, watch, wait)
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => return Err(Refused::NotFound),
            Err(e) => return Err(MomoError::from(e).into()),
        };
        drop(permit);
        p
    } else {
        p
    };
    Ok(json_response(
        StatusCode::OK,
        &invoice_json(&state, &p, &base),
    ))
}

/// `DELETE /widget/v1_0/invoice/{id}`: the payer's page cancels a pending invoice.
async fn cancel(
    State(state): State<MomoState>,
    base: Base,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    let p = widget_invoice(&state, &id).await?;
    owner(&state, &p, &headers, &base).await?;
    match state
        .platform
        .payments()
        .cancel(p.reference_id, p.api_user, PaymentKind::Invoice, None)
        .await
    {
        Ok(()) => {}
        Err(CancelError::NotFound) => return Err(Refused::NotFound),
        Err(CancelError::NotCancellable) => return Err(Refused::NotCancellable),
        Err(CancelError::Internal) => return Err(MomoError::Internal.into()),
    }
    let p = widget_invoice(&state, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &invoice_json(&state, &p, &base),
    ))
}

/// `GET /widget/v1_0/invoice/{id}/qr.svg?t=…`: the QR code of the payer link, drawn here.
/// A page shows it with an `<img>`, which sends no `Origin`, so the allowed origins cannot
/// guard it; the invoice's signed token does instead, the one its payer link (and so the
/// QR code itself) carries, which only the invoice's answers (origin-checked) give out.
async fn qr(
    State(state): State<MomoState>,
    base: Base,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refused> {
    let token = query_param(query.as_deref(), "t")?;
    let p = widget_invoice(&state, &id).await?;
    // Not once its developer's account is deleted or deactivated, as the invoice's reads.
    api_user(&state, &p.api_user).await?;
    let credentials = state.platform.credentials();
    if !token
        .as_deref()
        .is_some_and(|t| credentials.invoice_link_is(t, &p.reference_id))
    {
        return Err(Refused::NotFound);
    }
    let json = invoice_json(&state, &p, &base);
    let svg = qr_svg(json["qrLink"].as_str().unwrap_or_default()).ok_or(MomoError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=300"),
            // An image only: opened on its own, nothing in it may run or load (it is the
            // server's own drawing, but an SVG is a document a browser would script).
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'self'",
            ),
        ],
        svg,
    )
        .into_response())
}

/// A QR code of `text` as SVG: one path of dark modules, a four-module quiet zone.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 8;
    let mut path = String::with_capacity(width * width * 6);
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

/// The API user the partner names, if it is the key's developer's.
async fn partners_user(
    state: &MomoState,
    subscription: &SubscriptionKey,
    id: &str,
) -> Result<ApiUser, MomoError> {
    let id = validate::reference_id(id, "the API user id")?;
    match state.platform.credentials().api_user(&id).await {
        Ok(Some(u)) if u.developer_id == subscription.developer_id => Ok(u),
        Ok(_) => Err(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        )),
        Err(e) => Err(MomoError::from(e)),
    }
}

fn settings_json(allowed: Option<Vec<String>>, callback: Option<String>) -> Value {
    json!({ "allowedOrigins": allowed, "callbackUrl": callback })
}

/// `GET /collection_widget/v1_0/apiuser/{id}/widget`.
async fn read_settings(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    Path(id): Path<String>,
) -> Result<Response, MomoError> {
    let user = partners_user(&state, &subscription, &id).await?;
    let s = state
        .platform
        .portal()
        .widget_settings(&user.id)
        .await
        .map_err(MomoError::from)?;
    let (allowed, callback) = s.map_or((None, None), |s| (s.allowed_origins, s.callback_url));
    Ok(json_response(
        StatusCode::OK,
        &settings_json(allowed, callback),
    ))
}

/// `PUT /collection_widget/v1_0/apiuser/{id}/widget` with `{"allowedOrigins":[…]|null,
/// "callbackUrl":"…"|null}`. A member left out keeps its value (a partner changing only
/// the callback URL does not open the widget to every page); `null` clears it.
async fn save_settings(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, MomoError> {
    let user = partners_user(&state, &subscription, &id).await?;
    let body = validate::json_body(&body)?;
    let (kept_origins, kept_callback) = state
        .platform
        .portal()
        .widget_settings(&user.id)
        .await
        .map_err(MomoError::from)?
        .map_or((None, None), |s| (s.allowed_origins, s.callback_url));
    let allowed = match body.get("allowedOrigins") {
        None => kept_origins,
        Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let items: Vec<String> = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| MomoError::bad("allowedOrigins must be a list of strings"))?;
            // An empty one is a mistake to say, not to drop: dropped, `[""]` would be the
            // empty list, which lets no page in.
            if items.iter().any(|o| o.trim().is_empty()) {
                return Err(MomoError::bad(
                    "allowedOrigins holds an empty origin: give scheme://host[:port], or [] to let no page in",
                ));
            }
            Some(check_origins(&items).map_err(MomoError::bad)?)
        }
        Some(_) => return Err(MomoError::bad("allowedOrigins must be a list or null")),
    };
    let callback = match validate::string_field(&body, "callbackUrl")? {
        _ if body.get("callbackUrl").is_none() => kept_callback,
        Some(url) if !url.trim().is_empty() => Some(
            validate::callback_url_of(url.trim(), &user, "callbackUrl").map_err(|e| match e {
                // A setting, not a payment: the partner's mistake, said as one (a request
                // to pay answers MTN's 500 for it).
                MomoError::Platform(_, "INVALID_CALLBACK_URL_HOST") => MomoError::bad(format!(
                    "callbackUrl's host must be the API user's providerCallbackHost, {}",
                    user.provider_callback_host
                )),
                e => e,
            })?,
        ),
        _ => None,
    };
    state
        .platform
        .portal()
        .set_widget_settings(user.id, allowed.clone(), callback.clone())
        .await
        .map_err(MomoError::from)?;
    Ok(json_response(
        StatusCode::OK,
        &settings_json(allowed, callback),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_path_of_dark_modules() {
        let svg = qr_svg("http://127.0.0.1:8080/portal/phone/invoice/x?t=y").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.matches('M').count() > 100);
    }
}
