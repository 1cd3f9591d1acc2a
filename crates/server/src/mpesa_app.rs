//! A developer's M-Pesa application, for the portal and for scripts.
//!
//! The portal's M-Pesa page reads and changes the application through [`PortalBackend`].
//! The same operations are JSON endpoints under `/_mkoba/mpesa/` for scripts, tests and the
//! CLI, authenticated like the other admin endpoints by one of the developer's subscription
//! keys:
//!
//! * `GET /_mkoba/mpesa/application`: settings and the platform public key (and the
//!   sandbox developer's first API key while it has not been renewed);
//! * `PUT /_mkoba/mpesa/application`: `{"allowed_origins":[…],"session_lifetime_secs":…,
//!   "result_url":"https://…:12000/…"|null}`, each member optional;
//! * `POST /_mkoba/mpesa/apikey`: renews the API key and returns it, once;
//! * `GET /_mkoba/mpesa/openapi.json`: the OpenAPI document of both gateways, generated
//!   from the operation catalogue; public, like MoMo's `/_mkoba/openapi.json`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mkoba_api_types::mpesa::ResourceUrl;
use mkoba_momo::error::MomoError;
use mkoba_mpesa::PlatformKey;
use mkoba_mpesa::check_result_url;
use mkoba_platform::Platform;
use mkoba_platform::mpesa::{MpesaApp, MpesaAppSettings};
use mkoba_portal::{BoxFuture, MpesaApplication, MpesaBackend, MpesaSettings};
use serde_json::json;

/// What the portal page and the endpoints share.
#[derive(Debug, Clone)]
pub struct PortalBackend {
    pub platform: Platform,
    pub key: Arc<PlatformKey>,
    /// Local development: `http://` result URLs on loopback.
    pub insecure_result_urls: bool,
    /// The callback dispatcher's address policy (`allow_loopback`, `allow_private`): a
    /// result URL it would never deliver to is refused when it is set.
    pub callback_targets: (bool, bool),
    /// Every M-Pesa resource URL of this server.
    pub resource_urls: Arc<Vec<ResourceUrl>>,
}

/// Why a settings change was refused, said for a person.
fn check_settings(
    current: Option<&MpesaApp>,
    origins: Option<Vec<String>>,
    lifetime: Option<u64>,
    result_url: Option<Option<String>>,
    insecure: bool,
    targets: (bool, bool),
) -> Result<MpesaAppSettings, (&'static str, String)> {
    let origins = origins
        .or_else(|| current.map(|a| a.allowed_origins.clone()))
        .unwrap_or_else(|| vec!["*".to_owned()]);
    if origins.is_empty() {
        return Err((
            "origins",
            "Give at least one allowed origin (or * for any).".to_owned(),
        ));
    }
    let origins = mkoba_portal::check_origins(&origins).map_err(|e| ("origins", e))?;
    let lifetime = lifetime
        .or_else(|| current.map(|a| a.session_lifetime_secs))
        .unwrap_or(mkoba_platform::mpesa::DEFAULT_SESSION_LIFETIME_SECS);
    if !(1..=30 * 86_400).contains(&lifetime) {
        return Err((
            "session_lifetime_secs",
            "The session lifetime is a number of seconds between 1 and 2592000 (30 days)."
                .to_owned(),
        ));
    }
    // A URL is checked when it is given: one kept from before (saved under other rules,
    // which calls do not send to) does not stand in the way of changing the rest.
    let given = result_url.is_some();
    let result_url = match result_url {
        Some(url) => url.filter(|u| !u.trim().is_empty()),
        None => current.and_then(|a| a.result_url.clone()),
    };
    if let Some(url) = result_url.as_ref().filter(|_| given) {
        check_result_url(url, insecure).map_err(|e| ("result_url", e))?;
        if let Some(e) = unreachable_host(url, targets) {
            return Err((
                "result_url",
                format!(
                    "No result would reach {url}: {e} (--callback-allow-private; loopback only in the sandbox profile)."
                ),
            ));
        }
    }
    Ok(MpesaAppSettings {
        allowed_origins: origins,
        session_lifetime_secs: lifetime,
        result_url,
    })
}

/// What the try-it box sends for an application: `secret` encrypted as a client sends it
/// (the `Bearer` value), and an `Origin` it allows (`*` when it allows any, else the first).
fn try_it_bearer(key: &PlatformKey, app: &MpesaApp, secret: &str) -> Option<(String, String)> {
    let bearer = key.encrypt(secret.as_bytes()).ok()?;
    let origin = if app.allowed_origins.iter().any(|o| o == "*") {
        "*".to_owned()
    } else {
        app.allowed_origins.first()?.clone()
    };
    Some((bearer, origin))
}

impl MpesaBackend for PortalBackend {
    fn result_url_refused(&self, url: &str) -> Option<String> {
        result_url_refusal(url, self.insecure_result_urls, self.callback_targets)
    }

    fn application(&self, developer_id: i64) -> BoxFuture<'_, Option<MpesaApplication>> {
        Box::pin(async move {
            let app = self.platform.mpesa().app(developer_id).await.ok().flatten();
            Some(MpesaApplication {
                api_key: app.as_ref().and_then(|a| a.api_key.clone()),
                api_key_created_at_ms: app.as_ref().map(|a| a.api_key_created_at_ms),
                public_key: self.key.public_key_base64().to_owned(),
                session_lifetime_secs: app
                    .as_ref()
                    .map_or(mkoba_platform::mpesa::DEFAULT_SESSION_LIFETIME_SECS, |a| {
                        a.session_lifetime_secs
                    }),
                allowed_origins: app
                    .as_ref()
                    .map_or_else(|| vec!["*".to_owned()], |a| a.allowed_origins.clone()),
                result_url_refused: refused(app.as_ref(), self),
                result_url: app.and_then(|a| a.result_url),
                resource_urls: self.resource_urls.to_vec(),
                insecure_result_urls: self.insecure_result_urls,
            })
        })
    }

    fn session_bearer(
        &self,
        developer_id: i64,
        environment: &'static str,
    ) -> BoxFuture<'_, Option<(String, String)>> {
        Box::pin(async move {
            let app = self.platform.mpesa().app(developer_id).await.ok()??;
            let session = self.platform.mpesa().issue_session(&app, environment);
            try_it_bearer(&self.key, &app, &session)
        })
    }

    fn api_key_bearer(&self, developer_id: i64) -> BoxFuture<'_, Option<(String, String)>> {
        Box::pin(async move {
            let app = self.platform.mpesa().app(developer_id).await.ok()??;
            try_it_bearer(&self.key, &app, app.api_key.as_deref()?)
        })
    }

    fn renew_api_key(
        &self,
        developer_id: i64,
    ) -> BoxFuture<'_, Result<String, mkoba_platform::Internal>> {
        Box::pin(async move { self.platform.mpesa().renew_key(developer_id).await })
    }

    fn save_settings(
        &self,
        developer_id: i64,
        settings: MpesaSettings,
    ) -> BoxFuture<'_, Result<(), (&'static str, String)>> {
        Box::pin(async move {
            let current = self
                .platform
                .mpesa()
                .app(developer_id)
                .await
                .map_err(|_| ("", "The settings could not be read; try again.".to_owned()))?;
            let checked = check_settings(
                current.as_ref(),
                Some(settings.allowed_origins),
                settings.session_lifetime_secs,
                Some(settings.result_url),
                self.insecure_result_urls,
                self.callback_targets,
            )?;
            self.platform
                .mpesa()
                .save_settings(developer_id, checked)
                .await
                .map_err(|_| ("", "The settings could not be saved; try again.".to_owned()))
        })
    }
}

/// The `/_mkoba/mpesa/` routes.
pub fn router(backend: PortalBackend) -> Router {
    Router::new()
        .route("/application", get(show).put(update))
        .route("/apikey", post(renew))
        .route("/openapi.json", get(openapi))
        .layer(axum::middleware::map_response(crate::admin::no_store))
        .with_state(backend)
}

/// `GET /_mkoba/mpesa/openapi.json`: needs no key (it describes the server, not a
/// developer's data).
async fn openapi() -> Response {
    Json(mkoba_mpesa::openapi::document()).into_response()
}

fn developer_id(platform: &Platform, headers: &HeaderMap) -> Result<i64, MomoError> {
    let key = mkoba_momo::auth::subscription_key(headers, None)
        .ok_or(MomoError::MissingSubscriptionKey)?;
    platform
        .credentials()
        .subscription(&key)
        .map(|s| s.developer_id)
        .ok_or(MomoError::InvalidSubscriptionKey)
}

/// Why no result goes to the application's result URL under the server's rules now
/// ([`mkoba_mpesa::check_result_url`]; the calls do the same check).
fn refused(app: Option<&MpesaApp>, backend: &PortalBackend) -> Option<String> {
    let url = app?.result_url.as_ref()?;
    result_url_refusal(url, backend.insecure_result_urls, backend.callback_targets)
}

/// Why no result reaches `url` under these rules: the portal's (scheme, port), or a host
/// the callback dispatcher may not call (a private address saved with
/// `--callback-allow-private`, then a restart without it: every attempt failed).
fn result_url_refusal(url: &str, insecure: bool, targets: (bool, bool)) -> Option<String> {
    if let Err(e) = check_result_url(url, insecure) {
        return Some(e);
    }
    unreachable_host(url, targets)
        .map(|e| format!("No result reaches it: {e} (--callback-allow-private)."))
}

/// Why the callback dispatcher would not call `url`'s host under `targets` (loopback,
/// private), if it would not.
fn unreachable_host(url: &str, (loopback, private): (bool, bool)) -> Option<String> {
    let uri = url.parse::<axum::http::Uri>().ok()?;
    mkoba_webhooks::check_target_with(uri.host()?, loopback, private).err()
}

fn describe(backend: &PortalBackend, app: Option<&MpesaApp>) -> serde_json::Value {
    json!({
        "public_key": backend.key.public_key_base64(),
        "api_key": app.and_then(|a| a.api_key.clone()),
        "api_key_created_at_ms": app.map(|a| a.api_key_created_at_ms),
        "api_user": app.map(|a| a.api_user.to_string()),
        "allowed_origins": app.map(|a| a.allowed_origins.clone()),
        "session_lifetime_secs": app.map(|a| a.session_lifetime_secs),
        "result_url": app.and_then(|a| a.result_url.clone()),
        "mode": if app.is_some_and(|a| a.result_url.is_some()) { "asynchronous" } else { "synchronous" },
        "result_url_refused": refused(app, backend),
        "resource_urls": *backend.resource_urls,
    })
}

async fn show(
    State(backend): State<PortalBackend>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    let developer = developer_id(&backend.platform, &headers)?;
    let app = backend.platform.mpesa().app(developer).await?;
    Ok(Json(describe(&backend, app.as_ref())).into_response())
}

async fn update(
    State(backend): State<PortalBackend>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let developer = developer_id(&backend.platform, &headers)?;
    let body = mkoba_momo::validate::json_body(&body)?;
    let origins = match body.get("allowed_origins") {
        None => None,
        Some(v) => Some(
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|o| o.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| MomoError::bad("allowed_origins must be an array of strings"))?,
        ),
    };
    let lifetime = match body.get("session_lifetime_secs") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| {
                    MomoError::bad(
                        "session_lifetime_secs must be a whole number of seconds from 1 to 2592000 (30 days)",
                    )
                })?,
        ),
    };
    let result_url = match body.get("result_url") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(v) => Some(Some(
            v.as_str()
                .ok_or_else(|| MomoError::bad("result_url must be a string or null"))?
                .to_owned(),
        )),
    };
    let current = backend.platform.mpesa().app(developer).await?;
    let settings = check_settings(
        current.as_ref(),
        origins,
        lifetime,
        result_url,
        backend.insecure_result_urls,
        backend.callback_targets,
    )
    .map_err(|(_, e)| MomoError::bad(e))?;
    backend
        .platform
        .mpesa()
        .save_settings(developer, settings)
        .await
        .map_err(MomoError::from)?;
    let app = backend.platform.mpesa().app(developer).await?;
    Ok(Json(describe(&backend, app.as_ref())).into_response())
}

async fn renew(
    State(backend): State<PortalBackend>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    let developer = developer_id(&backend.platform, &headers)?;
    let key = backend
        .platform
        .mpesa()
        .renew_key(developer)
        .await
        .map_err(MomoError::from)?;
    tracing::info!(developer.id = developer, "M-Pesa API key renewed");
    Ok((StatusCode::CREATED, Json(json!({ "api_key": key }))).into_response())
}
