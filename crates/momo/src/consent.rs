//! The consent flow (OIDC CIBA, reference §2.2), under every product prefix:
//!
//! 1. `POST /{product}/v1_0/bc-authorize` asks an account holder (`login_hint`, e.g.
//!    `ID:46733123454/MSISDN`) to consent to `scope`. Authenticated with the product's
//!    ordinary `Bearer` access token (what the official SDKs send) or with
//!    `Basic apiUser:apiKey` (what the disbursement and remittance definitions say).
//!    Answers `{"auth_req_id","interval","expires_in"}`.
//! 2. `POST /{product}/oauth2/token/` (also without the trailing slash), with
//!    `Basic apiUser:apiKey`, exchanges the `auth_req_id`
//!    (`grant_type=urn:openid:params:grant-type:ciba`) or a refresh token
//!    (`grant_type=refresh_token`) for an oauth2 access token.
//! 3. `GET /{product}/oauth2/v1_0/userinfo`, with `Bearer <oauth2 access token>` (the
//!    ordinary access token is refused), answers the sandbox identity (reference §10.4).
//!
//! Bodies are `application/x-www-form-urlencoded` (decoded here: `+` and `%XX`); a JSON
//! object with the same fields is accepted too.
//!
//! # Stateless
//!
//! Nothing is stored. The `auth_req_id`, the oauth2 access token and the refresh token are
//! claims signed by the platform ([`mkoba_platform::Credentials::sign_claims`]), each with its
//! own purpose, carrying the API user, the product, the account holder, the scope and an
//! expiry in Unix milliseconds. A token is honoured only by the API user and product it was
//! issued to. Lifetimes: `auth_req_id` [`AUTH_REQ_TTL_SECS`], access token
//! [`ACCESS_TTL_SECS`], refresh token `consent_valid_in` (offline access) or
//! [`DEFAULT_CONSENT_SECS`]. Every consent is polled (CIBA poll mode): `X-Callback-Url` is
//! checked like on other calls (same host as the API user's) but no notification is sent.
//!
//! # Errors
//!
//! - `bc-authorize` and `userinfo` speak the wallet platform's `{"code","message"}`:
//!   bad credentials 401 `UNAUTHORIZED`, bad body 400 `BAD_REQUEST`, missing
//!   `X-Target-Environment` 400, another environment 500 `NOT_ALLOWED_TARGET_ENVIRONMENT`,
//!   foreign callback host 500 `INVALID_CALLBACK_URL_HOST`.
//! - `oauth2/token/` is a token endpoint: bad Basic credentials are the platform's
//!   `500 {"error":"login_failed"}` (like `/token/`); a missing `X-Target-Environment` is the
//!   platform's 400; everything about the grant is OAuth2 (RFC 6749 §5.2, CIBA §11):
//!   `400 {"error","error_description"}` with `invalid_request` (malformed body, missing
//!   parameter), `unsupported_grant_type`, `invalid_grant` (unknown, tampered or foreign
//!   `auth_req_id`/refresh token, expired refresh token), `expired_token` (expired
//!   `auth_req_id`), and the scenario errors below.
//!
//! # Sandbox scenarios (reference §10.3, Oauth2 column)
//!
//! Only for API users of the `sandbox` environment, and only for `MSISDN` login hints
//! `467331234xx`; every other account holder (and every one outside the sandbox) consents
//! at once.
//!
//! | MSISDN | Portal scenario | Answer |
//! |---|---|---|
//! | 46733123450 | AccountHolderNotFound | `bc-authorize`: 404 `RESOURCE_NOT_FOUND` |
//! | 46733123451 | ConsentRejected | token: `access_denied` |
//! | 46733123452 | ConsentPending | token: `authorization_pending` on every poll (until the `auth_req_id` expires: `expired_token`) |
//! | 46733123453 | ConsentExpired | token: `expired_token` |
//! | 46733123454 | ConsentExpiredRefreshToken | token: 200 with `refresh_token_expired_in: 0`; the refresh grant: `invalid_grant` |
//! | 46733123455 | ConsentRevoked | token: `invalid_grant` |
//! | 46733123456 | ConsentDeletedScope | token: `invalid_scope` |
//! | 46733123457 | ConsentAlreadyUsed | token: `invalid_grant` |
//! | 46733123458 | FinancialNoFunds | token: `access_denied` (`NOT_ENOUGH_FUNDS`) |
//! | 46733123459 | FinancialPayeeNotFound | token: `access_denied` (`PAYEE_NOT_FOUND`) |
//! | 46733123460 | FinancialConsentMismatch | token: `access_denied` (consent mismatch) |
//! | 46733123461 | FinancialPayerLimitReached | token: `access_denied` (`PAYER_LIMIT_REACHED`) |
//! | 46733123462 | FinancialPayeeNotAllowedToReceive | token: `access_denied` (`PAYEE_NOT_ALLOWED_TO_RECEIVE`) |
//!
//! The account holder's answer comes at the token step (CIBA's poll), so a client sees each
//! scenario where a real consent would surface it. Without stored state, answers do not
//! change between polls ("already used" is refused on the first exchange). An
//! `auth_req_id` that was exchanged for tokens is recorded in the store
//! ([`Credentials::use_auth_request`](mkoba_platform::Credentials)) and a second exchange is
//! `invalid_grant`, as on the real platform: also after a restart, and on another node
//! sharing a PostgreSQL database (the writer looks inside its pass, under the pass lock).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use mkoba_api_types::momo::BasicUserInfo;
use mkoba_platform::model::{ApiUser, PartyIdType, Product, SubscriptionKey};
use mkoba_platform::{CreateError, SANDBOX};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::{basic_credentials, bearer_user};
use crate::error::{MomoError, json as json_response};
use crate::{MomoState, validate};

/// Purpose of the signed `auth_req_id`.
const AUTH_REQ: &str = "ciba-auth-req";
/// Purpose of the signed oauth2 access token.
const ACCESS: &str = "oauth2-access";
/// Purpose of the signed refresh token.
const REFRESH: &str = "oauth2-refresh";
/// The CIBA grant type.
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// How long an exchanged `auth_req_id` is remembered after the time it could last be
/// exchanged (its expiry, or its use if later), in milliseconds of real time: 30 days. An
/// API user on a test clock can hold one valid for as long as its clock stands still;
/// this covers a clock frozen for a month.
const USED_KEPT_MS: i64 = 30 * 86_400 * 1000;

/// Seconds a client should wait between two polls of `oauth2/token/`.
pub const POLL_INTERVAL_SECS: i64 = 5;
/// Lifetime of an `auth_req_id`, in seconds.
pub const AUTH_REQ_TTL_SECS: i64 = 300;
/// Lifetime of an oauth2 access token, in seconds (the definitions' default).
pub const ACCESS_TTL_SECS: i64 = 3600;
/// Lifetime of a refresh token when `consent_valid_in` is not given, in seconds.
pub const DEFAULT_CONSENT_SECS: i64 = 86_400;
/// Longest `consent_valid_in` accepted (ten years), in seconds.
const MAX_CONSENT_SECS: i64 = 10 * 365 * 86_400;

/// Routes of the consent flow, mounted under each product prefix.
pub(crate) fn routes(prefix: &str) -> Router<MomoState> {
    Router::new()
        .route(&format!("{prefix}/v1_0/bc-authorize"), post(bc_authorize))
        .route(
            &format!("{prefix}/oauth2/token/"),
            post(create_oauth2_token),
        )
        .route(&format!("{prefix}/oauth2/token"), post(create_oauth2_token))
        .route(
            &format!("{prefix}/oauth2/v1_0/userinfo"),
            get(get_user_info_with_consent),
        )
}

/// `bc-authorize` answer.
#[derive(Debug, Serialize)]
struct BcAuthorizeResponse {
    auth_req_id: String,
    interval: i64,
    expires_in: i64,
}

/// `oauth2/token/` answer.
#[derive(Debug, Serialize)]
struct Oauth2TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
    refresh_token: String,
    refresh_token_expired_in: i64,
}

/// An OAuth2 error body (RFC 6749 §5.2).
#[derive(Debug, Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// Why `oauth2/token/` refused: in the platform's envelope (credentials, headers) or in
/// OAuth2's (the grant).
#[derive(Debug)]
enum Refusal {
    Momo(MomoError),
    OAuth {
        error: &'static str,
        description: String,
    },
}

impl From<MomoError> for Refusal {
    fn from(e: MomoError) -> Refusal {
        Refusal::Momo(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Momo(e) => e.into_response(),
            Refusal::OAuth { error, description } => no_store(json_response(
                StatusCode::BAD_REQUEST,
                &OAuthErrorBody {
                    error,
                    error_description: &description,
                },
            )),
        }
    }
}

fn oauth(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal::OAuth {
        error,
        description: description.into(),
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

// ---------------------------------------------------------------------------------------
// Bodies

/// The form fields the consent operations read (bc-authorize and oauth2/token/).
const FORM_FIELDS: &[&str] = &[
    "login_hint",
    "scope",
    "access_type",
    "consent_valid_in",
    "client_notification_token",
    "scope_instruction",
    "grant_type",
    "auth_req_id",
    "refresh_token",
];

/// The fields of an `application/x-www-form-urlencoded` body, or of a JSON object (sent
/// with a JSON content type, or starting with `{`), as a JSON object of strings.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Result<Value, MomoError> {
    let json_type = validate::header(headers, "content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if json_type || looks_json {
        return validate::json_body(body);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| MomoError::bad("the form body is malformed: it is not UTF-8 text"))?;
    let mut fields = Map::new();
    for pair in text.trim().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = validate::form_decode(name)?;
        let value = validate::form_decode(value)?;
        if name.is_empty() {
            continue; // a nameless pair names nothing the operation reads
        }
        if fields.contains_key(&name) {
            // RFC 6749 §3.1: a parameter must not be given twice, and unrecognized
            // parameters are ignored, so only a known one repeated is an error.
            if FORM_FIELDS.contains(&name.as_str()) {
                return Err(MomoError::bad(format!(
                    "the form field {name} is given more than once"
                )));
            }
            continue;
        }
        fields.insert(name, Value::String(value));
    }
    Ok(Value::Object(fields))
}

/// An optional field; blank counts as absent.
fn optional(body: &Value, name: &str) -> Result<Option<String>, MomoError> {
    Ok(validate::string_field(body, name)?.filter(|s| !s.trim().is_empty()))
}

/// `login_hint`: `ID:{id}/{idType}`, e.g. `ID:46733123454/MSISDN`.
fn login_hint(text: &str) -> Result<(PartyIdType, String), MomoError> {
    let text = bounded("login_hint", text, MAX_HINT_CHARS)?;
    let expected = || {
        MomoError::bad(format!(
            "login_hint must be ID:{{id}}/{{idType}} with idType MSISDN, EMAIL or PARTY_CODE, e.g. ID:46733123454/MSISDN, got {text:?}"
        ))
    };
    let t = text.trim();
    let rest = t
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("ID:"))
        .and_then(|_| t.get(3..))
        .ok_or_else(expected)?;
    let (id, id_type) = rest.rsplit_once('/').ok_or_else(expected)?;
    let id_type = PartyIdType::parse_ignore_case(id_type.trim()).ok_or_else(expected)?;
    let id = validate::party_id(id_type, id).map_err(|_| {
        MomoError::bad(format!(
            "login_hint {text:?} does not hold a valid {}",
            id_type.as_str()
        ))
    })?;
    Ok((id_type, id))
}

/// Longest `login_hint` (`ID:` and an e-mail address of 254 characters, or less) and
/// `scope` taken, in characters; a field past its length is a 400 that quotes none of it.
/// Both travel inside every token issued for the consent, so unbounded they made tokens too
/// large for a header (a 1 MB scope gave a 1.3 MB access token).
const MAX_HINT_CHARS: usize = 270;
const MAX_SCOPE_CHARS: usize = 256;
/// Longest `scope_instruction` and `client_notification_token` taken, in characters.
const MAX_OTHER_CHARS: usize = 4_096;

/// `text`, when it is at most `max` characters long.
fn bounded<'t>(name: &str, text: &'t str, max: usize) -> Result<&'t str, MomoError> {
    if text.chars().count() > max {
        return Err(MomoError::bad(format!(
            "{name} is longer than {max} characters"
        )));
    }
    Ok(text)
}

/// `scope`: space-separated scope tokens (RFC 6749 §3.3), normalised to single spaces.
fn scope(body: &Value) -> Result<String, MomoError> {
    let text = optional(body, "scope")?
        .ok_or_else(|| MomoError::bad("scope is required: space-separated, e.g. profile"))?;
    let text = bounded("scope", &text, MAX_SCOPE_CHARS)?;
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let valid = |t: &&str| {
        t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    if let Some(bad) = tokens.iter().find(|t| !valid(t)) {
        return Err(MomoError::bad(format!(
            "scope contains the invalid scope token {bad:?}"
        )));
    }
    Ok(tokens.join(" "))
}

/// What `bc-authorize` asks for.
#[derive(Debug)]
struct ConsentRequest {
    id_type: PartyIdType,
    id: String,
    scope: String,
    offline: bool,
    /// Seconds the refresh token lives.
    consent_secs: i64,
}

fn consent_request(body: &Value) -> Result<ConsentRequest, MomoError> {
    let hint = optional(body, "login_hint")?
        .ok_or_else(|| MomoError::bad("login_hint is required, e.g. ID:46733123454/MSISDN"))?;
    let (id_type, id) = login_hint(&hint)?;
    let scope = scope(body)?;
    let offline = match optional(body, "access_type")? {
        None => false,
        Some(a) if a.trim().eq_ignore_ascii_case("online") => false,
        Some(a) if a.trim().eq_ignore_ascii_case("offline") => true,
        Some(a) => {
            return Err(MomoError::bad(format!(
                "access_type must be online or offline, got {a:?}"
            )));
        }
    };
    let consent_secs = match optional(body, "consent_valid_in")? {
        None => DEFAULT_CONSENT_SECS,
        Some(_) if !offline => {
            return Err(MomoError::bad(
                "consent_valid_in can only be used with access_type offline",
            ));
        }
        Some(v) => match v.trim().parse::<i64>() {
            Ok(s) if (1..=MAX_CONSENT_SECS).contains(&s) => s,
            _ => {
                return Err(MomoError::bad(format!(
                    "consent_valid_in must be a whole number of seconds from 1 to {MAX_CONSENT_SECS}, got {v:?}"
                )));
            }
        },
    };
    // Accepted for ping/push clients; this emulator only serves poll mode.
    if let Some(token) = optional(body, "client_notification_token")? {
        bounded("client_notification_token", &token, MAX_OTHER_CHARS)?;
    }
    if let Some(instruction) = optional(body, "scope_instruction")? {
        let i = bounded("scope_instruction", instruction.trim(), MAX_OTHER_CHARS)?;
        let decodes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .any(|engine| engine.decode(i).is_ok());
        if !decodes {
            return Err(MomoError::bad(
                "scope_instruction must be Base64 (the encoded instruction of a financial transaction)",
            ));
        }
    }
    Ok(ConsentRequest {
        id_type,
        id,
        scope,
        offline,
        consent_secs,
    })
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// What the account holder answers to a consent request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Consent given.
    Granted,
    /// Consent given, but the consent cannot be refreshed.
    GrantedRefreshExpired,
    /// Refused at the token step with this OAuth2 error and description.
    Refused(&'static str, &'static str),
}

/// The sandbox test-number suffix of a login hint (`467331234xx`), for sandbox API users.
fn test_suffix<'a>(user: &ApiUser, id_type: PartyIdType, id: &'a str) -> Option<&'a str> {
    (user.target_environment == SANDBOX && id_type == PartyIdType::Msisdn)
        .then(|| id.strip_prefix("467331234"))
        .flatten()
}

/// The Oauth2 column of reference §10.3, at the token step.
fn answer(user: &ApiUser, id_type: PartyIdType, id: &str) -> Answer {
    let Some(suffix) = test_suffix(user, id_type, id) else {
        return Answer::Granted;
    };
    match suffix {
        "51" => Answer::Refused(
            "access_denied",
            "The account holder rejected the consent request (sandbox scenario ConsentRejected).",
        ),
        "52" => Answer::Refused(
            "authorization_pending",
            "The account holder has not answered yet; poll again after interval seconds (sandbox scenario ConsentPending).",
        ),
        "53" => Answer::Refused(
            "expired_token",
            "The account holder did not answer in time and the consent request expired (sandbox scenario ConsentExpired).",
        ),
        "54" => Answer::GrantedRefreshExpired,
        "55" => Answer::Refused(
            "invalid_grant",
            "The account holder revoked the consent (sandbox scenario ConsentRevoked).",
        ),
        "56" => Answer::Refused(
            "invalid_scope",
            "The requested scope was deleted from the consent (sandbox scenario ConsentDeletedScope).",
        ),
        "57" => Answer::Refused(
            "invalid_grant",
            "The consent has already been used (sandbox scenario ConsentAlreadyUsed).",
        ),
        "58" => Answer::Refused(
            "access_denied",
            "NOT_ENOUGH_FUNDS: the account holder does not have enough funds for the instruction (sandbox scenario FinancialNoFunds).",
        ),
        "59" => Answer::Refused(
            "access_denied",
            "PAYEE_NOT_FOUND: the payee of the instruction does not exist (sandbox scenario FinancialPayeeNotFound).",
        ),
        "60" => Answer::Refused(
            "access_denied",
            "The instruction does not match the consent (sandbox scenario FinancialConsentMismatch).",
        ),
        "61" => Answer::Refused(
            "access_denied",
            "PAYER_LIMIT_REACHED: the account holder's limit has been breached (sandbox scenario FinancialPayerLimitReached).",
        ),
        "62" => Answer::Refused(
            "access_denied",
            "PAYEE_NOT_ALLOWED_TO_RECEIVE: the payee is not allowed to receive funds (sandbox scenario FinancialPayeeNotAllowedToReceive).",
        ),
        _ => Answer::Granted,
    }
}

// ---------------------------------------------------------------------------------------
// Credentials and claims

/// The API user of valid `Authorization: Basic` credentials of the subscription's
/// developer; `None` when they are missing or wrong.
async fn basic_user(
    state: &MomoState,
    headers: &HeaderMap,
    subscription: &SubscriptionKey,
) -> Result<Option<ApiUser>, MomoError> {
    let Some((user_id, key)) = basic_credentials(headers) else {
        return Ok(None);
    };
    let Some(user) = state
        .platform
        .credentials()
        .api_user(&user_id)
        .await?
        .filter(|u| u.developer_id == subscription.developer_id)
    else {
        return Ok(None);
    };
    Ok(state
        .platform
        .credentials()
        .verify_api_key(&user.id, &key)
        .await?
        .then_some(user))
}

/// The `Authorization` scheme, lower-cased.
fn auth_scheme(headers: &HeaderMap) -> Option<String> {
    let value = validate::header(headers, "authorization")?;
    Some(value.split(' ').next().unwrap_or("").to_ascii_lowercase())
}

/// Claims are honoured only by the API user and product they were issued to.
fn bound_to(claims: &Value, user: Uuid, product: Product) -> bool {
    claims["usr"].as_str() == Some(user.to_string().as_str())
        && claims["prd"].as_str() == Some(product.as_str())
}

/// A time of claims in Unix ms: `{name}_ms` where the token is a JWT (whose own `iat` and
/// `exp` are seconds, as a client decoding it expects), else `{name}` (ms: the tokens
/// issued before the JWT shape, and consent requests).
fn ms(claims: &Value, name: &str) -> Option<i64> {
    claims[format!("{name}_ms")]
        .as_i64()
        .or_else(|| claims[name].as_i64())
}

/// Whether a token's claims have expired on its API user's time (missing counts as
/// expired), or were issued ahead of real time on a clock since deleted
/// ([`mkoba_platform::test_clock::TestClocks::issued_ahead`]).
fn expired(state: &MomoState, user: &Uuid, claims: &Value) -> bool {
    let clocks = state.platform.clocks();
    ms(claims, "iat").is_some_and(|iat| clocks.issued_ahead(user, iat))
        || ms(claims, "exp").is_none_or(|exp| clocks.now_for(user) >= exp)
}

/// The consent fields every token carries: account holder and scope.
struct Consent {
    id_type: String,
    id: String,
    scope: String,
}

impl Consent {
    fn of(claims: &Value) -> Option<Consent> {
        Some(Consent {
            id_type: claims["idt"].as_str()?.to_owned(),
            id: claims["id"].as_str()?.to_owned(),
            scope: claims["scp"].as_str()?.to_owned(),
        })
    }
}

/// A fresh access token and a refresh token valid until `consent_end_ms`, issued at `now`
/// (both Unix ms).
fn issue_tokens(
    state: &MomoState,
    user: Uuid,
    product: Product,
    consent: Consent,
    now: i64,
    consent_end_ms: i64,
) -> Response {
    // A JWT as MTN's come: `sub` the account holder, `cid` the API user, `iat` and `exp` in
    // seconds; the milliseconds (a test clock's time) beside them.
    let claims = |exp: i64| {
        json!({
            "sub": consent.id,
            "cid": user.to_string(),
            "scp": consent.scope,
            "iat": now.div_euclid(1000),
            "exp": exp.div_euclid(1000),
            "usr": user.to_string(),
            "prd": product.as_str(),
            "idt": consent.id_type,
            "id": consent.id,
            "iat_ms": now,
            "exp_ms": exp,
            "jti": Uuid::new_v4().to_string(),
        })
    };
    let access_token = state
        .platform
        .credentials()
        .sign_jwt(ACCESS, &claims(now + ACCESS_TTL_SECS * 1000));
    let refresh_token = state
        .platform
        .credentials()
        .sign_jwt(REFRESH, &claims(consent_end_ms));
    no_store(json_response(
        StatusCode::OK,
        &Oauth2TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TTL_SECS,
            scope: consent.scope,
            refresh_token,
            refresh_token_expired_in: (consent_end_ms - now).max(0) / 1000,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Handlers

/// `POST /{product}/v1_0/bc-authorize`: starts a consent request.
async fn bc_authorize(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let user = if auth_scheme(&headers).as_deref() == Some("basic") {
        basic_user(&state, &headers, &subscription)
            .await?
            .ok_or(MomoError::Unauthorized("API user or API key not valid"))?
    } else {
        bearer_user(&state, &headers, product, &subscription).await?
    };
    validate::target_environment(&headers, &user)?;
    if let Some(url) = validate::callback_url(&headers, &user)? {
        tracing::debug!(%url, "bc-authorize callback URL accepted; consents are polled");
    }
    let request = consent_request(&body_fields(&headers, &body)?)?;
    if test_suffix(&user, request.id_type, &request.id) == Some("50") {
        return Err(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        ));
    }
    let now = state.platform.clocks().now_for(&user.id);
    let auth_req_id = state.platform.credentials().sign_claims(
        AUTH_REQ,
        &json!({
            "usr": user.id.to_string(),
            "prd": product.as_str(),
            "idt": request.id_type.as_str(),
            "id": request.id,
            "scp": request.scope,
            "off": request.offline,
            "cvi": request.consent_secs,
            "iat": now,
            "exp": now + AUTH_REQ_TTL_SECS * 1000,
            "jti": Uuid::new_v4().to_string(),
        }),
    );
    Ok(json_response(
        StatusCode::OK,
        &BcAuthorizeResponse {
            auth_req_id,
            interval: POLL_INTERVAL_SECS,
            expires_in: AUTH_REQ_TTL_SECS,
        },
    ))
}

/// `POST /{product}/oauth2/token/`: the CIBA and refresh-token grants.
async fn create_oauth2_token(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let user = basic_user(&state, &headers, &subscription)
        .await?
        .ok_or(MomoError::LoginFailed)?;
    validate::target_environment(&headers, &user)?;
    let fields = body_fields(&headers, &body).map_err(|e| match e {
        MomoError::BadRequest(m) => oauth("invalid_request", m),
        other => Refusal::Momo(other),
    })?;
    let field = |name: &str| {
        optional(&fields, name).map_err(|e| match e {
            MomoError::BadRequest(m) => oauth("invalid_request", m),
            other => Refusal::Momo(other),
        })
    };
    let grant_type = field("grant_type")?.ok_or_else(|| {
        oauth(
            "invalid_request",
            format!("grant_type is required: {CIBA_GRANT} or refresh_token"),
        )
    })?;
    match grant_type.trim() {
        CIBA_GRANT => {
            let id = field("auth_req_id")?.ok_or_else(|| {
                oauth(
                    "invalid_request",
                    "auth_req_id is required with the CIBA grant",
                )
            })?;
            let claims = state
                .platform
                .credentials()
                .verify_claims(AUTH_REQ, id.trim())
                .map_err(|_| {
                    oauth(
                        "invalid_grant",
                        "auth_req_id is unknown or has been tampered with",
                    )
                })?;
            if !bound_to(&claims, user.id, product) {
                return Err(oauth(
                    "invalid_grant",
                    "auth_req_id was issued to another API user or product",
                ));
            }
            if expired(&state, &user.id, &claims) {
                return Err(oauth(
                    "expired_token",
                    "auth_req_id has expired; start again with bc-authorize",
                ));
            }
            let consent = Consent::of(&claims)
                .ok_or_else(|| oauth("invalid_grant", "auth_req_id is unknown"))?;
            let id_type = PartyIdType::parse_ignore_case(&consent.id_type)
                .ok_or_else(|| oauth("invalid_grant", "auth_req_id is unknown"))?;
            let consent_secs = claims["cvi"].as_i64().unwrap_or(DEFAULT_CONSENT_SECS);
            let now = state.platform.clocks().now_for(&user.id);
            let consent_end_ms = match answer(&user, id_type, &consent.id) {
                Answer::Granted => now + consent_secs * 1000,
                Answer::GrantedRefreshExpired => now,
                Answer::Refused(error, description) => return Err(oauth(error, description)),
            };
            let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
            let used_at = mkoba_platform::clock::system_now_ms();
            let keep_until = claims["exp"].as_i64().unwrap_or(used_at).max(used_at) + USED_KEPT_MS;
            match state
                .platform
                .credentials()
                .use_auth_request(jti, user.id, keep_until)
                .await
            {
                Ok(()) => {}
                Err(CreateError::Duplicate) => {
                    return Err(oauth(
                        "invalid_grant",
                        "auth_req_id has already been exchanged for tokens; use the refresh token, or start again with bc-authorize",
                    ));
                }
                Err(_) => return Err(Refusal::Momo(MomoError::unavailable())),
            }
            Ok(issue_tokens(
                &state,
                user.id,
                product,
                consent,
                now,
                consent_end_ms,
            ))
        }
        "refresh_token" => {
            let token = field("refresh_token")?.ok_or_else(|| {
                oauth(
                    "invalid_request",
                    "refresh_token is required with the refresh_token grant",
                )
            })?;
            let claims = state
                .platform
                .credentials()
                .verify_claims(REFRESH, token.trim())
                .map_err(|_| {
                    oauth(
                        "invalid_grant",
                        "refresh_token is unknown or has been tampered with",
                    )
                })?;
            if !bound_to(&claims, user.id, product) {
                return Err(oauth(
                    "invalid_grant",
                    "refresh_token was issued to another API user or product",
                ));
            }
            if expired(&state, &user.id, &claims) {
                return Err(oauth(
                    "invalid_grant",
                    "refresh_token has expired; ask the account holder for consent again with bc-authorize",
                ));
            }
            let consent = Consent::of(&claims)
                .ok_or_else(|| oauth("invalid_grant", "refresh_token is unknown"))?;
            let now = state.platform.clocks().now_for(&user.id);
            let consent_end_ms = ms(&claims, "exp").unwrap_or(now);
            Ok(issue_tokens(
                &state,
                user.id,
                product,
                consent,
                now,
                consent_end_ms,
            ))
        }
        other => Err(oauth(
            "unsupported_grant_type",
            format!("grant_type must be {CIBA_GRANT} or refresh_token, got {other:?}"),
        )),
    }
}

/// The API user behind `Authorization: Bearer <oauth2 access token>`.
async fn oauth2_user(
    state: &MomoState,
    headers: &HeaderMap,
    product: Product,
    subscription: &SubscriptionKey,
) -> Result<ApiUser, MomoError> {
    let value = validate::header(headers, "authorization")
        .ok_or(MomoError::Unauthorized("no Authorization header"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(MomoError::Unauthorized(
                "expected Authorization: Bearer <oauth2 access token>",
            ));
        }
    };
    let claims = state
        .platform
        .credentials()
        .verify_claims(ACCESS, token)
        .map_err(|_| MomoError::Unauthorized("not an oauth2 access token from oauth2/token/"))?;
    if claims["prd"].as_str() != Some(product.as_str()) {
        return Err(MomoError::Unauthorized(
            "oauth2 access token invalid for this product",
        ));
    }
    let user_id = claims["usr"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or(MomoError::Unauthorized("oauth2 access token invalid"))?;
    if expired(state, &user_id, &claims) {
        return Err(MomoError::Unauthorized("oauth2 access token expired"));
    }
    state
        .platform
        .credentials()
        .api_user(&user_id)
        .await?
        .filter(|u| u.developer_id == subscription.developer_id)
        .ok_or(MomoError::Unauthorized(
            "oauth2 access token invalid for this subscription",
        ))
}

/// `GET /{product}/oauth2/v1_0/userinfo`: the consenting account holder's identity; the
/// sandbox's fixed "Sand Box" (reference §10.4), `updated_at` being now.
async fn get_user_info_with_consent(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    let user = oauth2_user(&state, &headers, product, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    Ok(json_response(
        StatusCode::OK,
        &BasicUserInfo {
            sub: "0".to_owned(),
            name: "Sand Box".to_owned(),
            given_name: "Sand".to_owned(),
            family_name: "Box".to_owned(),
            birthdate: "1976-08-13".to_owned(),
            locale: "sv_SE".to_owned(),
            gender: "MALE".to_owned(),
            updated_at: state.platform.now_ms() / 1000,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hints_are_id_slash_type() {
        assert_eq!(
            login_hint("ID:46733123454/MSISDN").unwrap(),
            (PartyIdType::Msisdn, "46733123454".to_owned())
        );
        assert_eq!(
            login_hint("id:a@b.io/email").unwrap(),
            (PartyIdType::Email, "a@b.io".to_owned())
        );
        assert!(login_hint("46733123454").is_err());
        assert!(login_hint("ID:46733123454").is_err());
        assert!(login_hint("ID:46733123454/PHONE").is_err());
        assert!(login_hint("ID:abc/MSISDN").is_err());
        assert!(login_hint("é").is_err());
    }

    #[test]
    fn form_bodies_become_objects_and_repeats_are_refused() {
        let h = HeaderMap::new();
        let v = body_fields(&h, b"scope=profile+all_info&access_type=online&flag").unwrap();
        assert_eq!(v["scope"], "profile all_info");
        assert_eq!(v["flag"], "");
        assert!(body_fields(&h, b"scope=a&scope=b").is_err());
        let v = body_fields(&h, b"x=1&x=2&scope=a").unwrap();
        assert_eq!(
            v["x"], "1",
            "an unknown field repeated is ignored after its first"
        );
        assert_eq!(body_fields(&h, b"=x&scope=a").unwrap()["scope"], "a");
        let v = body_fields(&h, br#" {"scope":"profile"}"#).unwrap();
        assert_eq!(v["scope"], "profile");
    }
}
