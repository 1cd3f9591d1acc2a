//! The gateway layer and the credentials: subscription keys, Basic and Bearer.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mkoba_platform::model::{ApiUser, Product, SubscriptionKey};
use mkoba_platform::secrets::TokenError;
use uuid::Uuid;

use crate::MomoState;
use crate::error::MomoError;

/// The subscription key from the `Ocp-Apim-Subscription-Key` header or the
/// `subscription-key` query parameter (`query`): `None` when neither is given. Given twice
/// (either way), it is what a proxy joining the copies would pass on, which is no key
/// (`Some("")`): a key decides whose call it is, and which copy counted would depend on who
/// read it (the other deciding headers are refused so too, `given_twice`). One that is not
/// ASCII is no key either, not a missing one.
pub fn subscription_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let mut given = headers.get_all("ocp-apim-subscription-key").iter();
    if let Some(v) = given.next() {
        if given.next().is_some() {
            return Some(String::new());
        }
        return Some(
            v.to_str()
                .map_or_else(|_| String::new(), |s| s.trim().to_owned()),
        );
    }
    let mut given = query?.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "subscription-key").then(|| v.trim().to_owned())
    });
    let first = given.next()?;
    Some(if given.next().is_some() {
        String::new()
    } else {
        first
    })
}

/// The API gateway's check, run before anything else: a key of `product` (or of any
/// product, for the provisioning API at the host root).
pub(crate) async fn require_subscription(
    State((state, product)): State<(MomoState, Option<Product>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(key) = subscription_key(req.headers(), req.uri().query()) else {
        return MomoError::MissingSubscriptionKey.into_response();
    };
    match state.platform.credentials().subscription(&key) {
        Some(k) if product.is_none_or(|p| p == k.product) => {
            if let Some(name) = given_twice(req.headers()) {
                return MomoError::bad(format!(
                    "{name} is given more than once: send it once (which copy counts would depend on who reads it)"
                ))
                .into_response();
            }
            req.extensions_mut().insert(k);
            next.run(req).await
        }
        _ => MomoError::InvalidSubscriptionKey.into_response(),
    }
}

/// A header that decides what a call does (whose it is, which payment, where its callback
/// goes) sent more than once: a proxy or a log reading the other copy would see another
/// call than the ledger's, as with a JSON member given twice.
fn given_twice(headers: &HeaderMap) -> Option<&'static str> {
    // Names, not text: a look-up by text parses the name first.
    const DECIDING: [(http::HeaderName, &str); 4] = [
        (http::header::AUTHORIZATION, "Authorization"),
        (
            http::HeaderName::from_static("x-reference-id"),
            "X-Reference-Id",
        ),
        (
            http::HeaderName::from_static("x-target-environment"),
            "X-Target-Environment",
        ),
        (
            http::HeaderName::from_static("x-callback-url"),
            "X-Callback-Url",
        ),
    ];
    DECIDING
        .iter()
        .find(|(name, _)| headers.get_all(name).iter().nth(1).is_some())
        .map(|(_, shown)| *shown)
}

/// The API user and key from `Authorization: Basic base64(user:key)`.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(Uuid, String)> {
    let (user, key) = basic_pair(headers)?;
    Some((Uuid::parse_str(user.trim()).ok()?, key))
}

/// The user and password of `Authorization: Basic base64(user:password)`, as sent.
pub fn basic_pair(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 1024 {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The API user behind `Authorization: Bearer <token>`, for `product`, belonging to the
/// subscription's developer.
pub(crate) async fn bearer_user(
    state: &MomoState,
    headers: &HeaderMap,
    product: Product,
    subscription: &SubscriptionKey,
) -> Result<ApiUser, MomoError> {
    let value = headers
        .get("authorization")
        .ok_or(MomoError::Unauthorized("no Authorization header"))?
        .to_str()
        .map_err(|_| MomoError::Unauthorized("unreadable Authorization header"))?
        .trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(MomoError::Unauthorized(
                "expected Authorization: Bearer <token>",
            ));
        }
    };
    let verify = || state.platform.credentials().verify_token(token, product);
    let user_id = match verify() {
        // On several nodes, a token issued on a test clock this node has not taken in yet
        // (made on another node a moment ago) looks expired by real time: take in what the
        // others committed (one writer pass; at once on a store of one writer), then judge
        // it again (it was refused for about 100 ms after the clock was made).
        Err(TokenError::Expired) if state.platform.clocks().caught_up_for_request().await => {
            verify()
        }
        checked => checked,
    }
    .map_err(|e| match e {
        TokenError::Expired => MomoError::Unauthorized("access token expired"),
        TokenError::Invalid => MomoError::Unauthorized(
            "access token not valid: not one this platform issued, or one of another product",
        ),
    })?;
    let user = state
        .platform
        .credentials()
        .api_user(&user_id)
        .await?
        .filter(|u| u.developer_id == subscription.developer_id)
        .ok_or(MomoError::Unauthorized(
            "access token invalid for this subscription",
        ))?;
    Ok(user)
}
