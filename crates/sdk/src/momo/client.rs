//! What every product client shares: the configuration, the HTTP client, the token cache,
//! and the request shapes (authenticated GET, creating POST with `X-Reference-Id`).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use mkoba_api_types::momo::AccessToken;
use tokio::time::Instant;

use super::{Config, Product, ReferenceId};
use crate::error::{Error, ReasonCode, Result};
use crate::transport::{Call, Reply, Transport};

/// MTN's public sandbox, the default base URL.
pub const SANDBOX_URL: &str = "https://sandbox.momodeveloper.mtn.com";

static SUBSCRIPTION_KEY: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");
static TARGET_ENVIRONMENT: HeaderName = HeaderName::from_static("x-target-environment");
static REFERENCE_ID: HeaderName = HeaderName::from_static("x-reference-id");
static CALLBACK_URL: HeaderName = HeaderName::from_static("x-callback-url");

/// The longest a token is refreshed ahead of its expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(600);

/// A cached access token. Its lifetime is counted on Tokio's clock
/// ([`tokio::time::Instant`]), which a test can move on with `tokio::time::advance`.
#[derive(Clone)]
pub(crate) struct Cached {
    pub token: Arc<str>,
    /// `Bearer <token>`, ready to send.
    pub header: HeaderValue,
    /// From here on the next caller refreshes it.
    refresh_at: Instant,
    /// From here on it is no longer sent.
    expires_at: Instant,
}

/// One product's token: fetched lazily, shared, refreshed ahead of expiry by one task.
#[derive(Default)]
struct TokenCache {
    current: Mutex<Option<Cached>>,
    /// Held by the one task fetching a token.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl TokenCache {
    fn snapshot(&self) -> Option<Cached> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    fn store(&self, cached: Option<Cached>) {
        if let Ok(mut c) = self.current.lock() {
            *c = cached;
        }
    }
}

/// A product client's shared state.
pub(crate) struct Core {
    pub product: Product,
    pub base: String,
    pub environment: String,
    pub subscription_key: String,
    /// The two headers every call sends, checked once.
    subscription_header: HeaderValue,
    environment_header: HeaderValue,
    api_user: String,
    api_key: String,
    pub callback_url: Option<String>,
    pub transport: Transport,
    token: TokenCache,
}

impl Core {
    pub fn new(product: Product, config: Config) -> Result<Arc<Core>> {
        let base = crate::transport::base_url(&config.base_url)?;
        if config.subscription_key.trim().is_empty() {
            return Err(Error::Config(format!(
                "a {product} subscription key is required"
            )));
        }
        let header = |what: &str, value: &str| {
            HeaderValue::from_str(value).map_err(|_| {
                Error::Config(format!("the {what} has characters not allowed in a header"))
            })
        };
        if config.target_environment.trim().is_empty() {
            // Every product call would be refused (400 without X-Target-Environment).
            return Err(Error::Config(
                "a target environment is required: \"sandbox\", or a market's (mtnuganda, …)"
                    .to_owned(),
            ));
        }
        let subscription_header = header("subscription key", &config.subscription_key)?;
        let environment_header = header("target environment", &config.target_environment)?;
        Ok(Arc::new(Core {
            product,
            base,
            subscription_header,
            environment_header,
            environment: config.target_environment,
            subscription_key: config.subscription_key,
            api_user: config.api_user,
            api_key: config.api_key,
            callback_url: config.callback_url,
            transport: config.transport.unwrap_or_default(),
            token: TokenCache::default(),
        }))
    }

    /// `{base}/{product}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}{path}", self.base, self.product.as_str())
    }

    /// `Basic base64(apiUser:apiKey)`.
    pub fn basic(&self) -> Result<String> {
        if self.api_user.is_empty() || self.api_key.is_empty() {
            return Err(Error::Config(
                "an API user and API key are required (Config::api_user)".to_owned(),
            ));
        }
        let pair = format!("{}:{}", self.api_user, self.api_key);
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// `POST /{product}/token/`, uncached.
    pub async fn fetch_token(&self) -> Result<AccessToken> {
        let call = Call::new(Method::POST, self.url("/token/"))
            .header("ocp-apim-subscription-key", &self.subscription_key)
            .header("authorization", self.basic()?);
        let reply = self.transport.send(call.build()?).await?.ok()?;
        self.token.fetches.fetch_add(1, Ordering::Relaxed);
        reply.json()
    }

    /// Tokens fetched so far by this client.
    pub fn token_fetches(&self) -> u64 {
        self.token.fetches.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one, or a new one fetched by exactly one task.
    pub async fn bearer(&self) -> Result<Cached> {
        let now = Instant::now();
        if let Some(c) = self.token.snapshot() {
            if now < c.refresh_at {
                return Ok(c);
            }
            // Due for refresh but still valid: if another task is already fetching, keep
            // using this one rather than waiting.
            if now < c.expires_at {
                match self.token.fetching.try_lock() {
                    Err(_) => return Ok(c),
                    // A refresh that fails leaves the old token serving until it expires.
                    Ok(guard) => return Ok(self.refresh(guard).await.unwrap_or(c)),
                }
            }
        }
        let guard = self.token.fetching.lock().await;
        if let Some(c) = self.token.snapshot()
            && Instant::now() < c.refresh_at
        {
            return Ok(c);
        }
        self.refresh(guard).await
    }

    async fn refresh(&self, _guard: tokio::sync::MutexGuard<'_, ()>) -> Result<Cached> {
        let started = Instant::now();
        let t = self.fetch_token().await?;
        let header =
            HeaderValue::from_str(&format!("Bearer {}", t.access_token)).map_err(|_| {
                Error::Decode {
                    url: self.url("/token/"),
                    status: 200,
                    message: "the access token has characters not allowed in a header".to_owned(),
                }
            })?;
        // A server's lifetime is taken up to a day (one far past that overflowed the clock).
        let lifetime = Duration::from_secs(t.expires_in).min(crate::MAX_CACHED_LIFETIME);
        let margin = (lifetime / 6).min(MAX_REFRESH_MARGIN);
        let cached = Cached {
            token: Arc::from(t.access_token),
            header,
            refresh_at: started + lifetime - margin,
            expires_at: started + lifetime,
        };
        self.token.store(Some(cached.clone()));
        Ok(cached)
    }

    /// Forgets `token` if it is still the cached one (a 401 said it is no longer good).
    fn invalidate(&self, token: &str) {
        if let Ok(mut c) = self.token.current.lock()
            && c.as_ref().is_some_and(|c| &*c.token == token)
        {
            *c = None;
        }
    }

    /// Sends a Bearer-authenticated call built by `build` (given the token), once more with
    /// a fresh token if the first answer is a 401 that is not about the subscription key.
    pub async fn send(&self, build: impl Fn(Call) -> Result<Call>) -> Result<Reply> {
        let mut retried = false;
        loop {
            let token = self.bearer().await?;
            let call = Call::new(Method::GET, String::new())
                .header_value(SUBSCRIPTION_KEY.clone(), self.subscription_header.clone())
                .header_value(http::header::AUTHORIZATION, token.header.clone())
                .header_value(TARGET_ENVIRONMENT.clone(), self.environment_header.clone());
            let reply = self.transport.send(build(call)?.build()?).await?;
            if reply.status.as_u16() == 401 && !retried {
                let err = crate::error::ApiError::from_body(401, &reply.body);
                if !matches!(
                    err.code,
                    ReasonCode::InvalidSubscriptionKey | ReasonCode::MissingSubscriptionKey
                ) {
                    self.invalidate(&token.token);
                    retried = true;
                    continue;
                }
            }
            return reply.ok();
        }
    }

    /// `GET {path}` as `T`.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        self.send(|c| Ok(with(c, Method::GET, &url))).await?.json()
    }

    /// A creating POST of `body` to `path`.
    pub fn create<'a, B: serde::Serialize + ?Sized>(
        self: &'a Arc<Core>,
        path: &'static str,
        body: &B,
    ) -> Create<'a> {
        Create {
            core: self,
            path,
            body: serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|e| format!("request body cannot be serialised: {e}")),
            reference_id: ReferenceId::new(),
            callback_url: self.callback_url.clone(),
        }
    }
}

/// `call` with its method and URL set.
pub(crate) fn with(mut call: Call, method: Method, url: &str) -> Call {
    call.method = method;
    url.clone_into(&mut call.url);
    call
}

/// A creating call (request-to-pay, transfer, invoice, …): await it to send it with a fresh
/// `X-Reference-Id`, which it returns once the platform answered 202. The id is chosen when
/// the call is made ([`Create::id`]): keep it before awaiting, so that a call whose answer
/// was lost (a timeout) can be read, or sent again with the same id, which the platform
/// answers `409` if the first was accepted ([`Error::is_duplicate`]).
#[must_use = "a creating call does nothing until awaited"]
pub struct Create<'a> {
    core: &'a Arc<Core>,
    path: &'static str,
    body: std::result::Result<Bytes, String>,
    reference_id: ReferenceId,
    callback_url: Option<String>,
}

impl std::fmt::Debug for Create<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Create")
            .field("path", &self.path)
            .field("reference_id", &self.reference_id)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl<'a> Create<'a> {
    /// Uses this `X-Reference-Id` instead of a fresh one (to retry a request whose answer
    /// was lost). It must be a UUID version 4, as the platform requires; another version is
    /// refused before anything is sent ([`Error::Config`]).
    pub fn reference_id(mut self, id: ReferenceId) -> Create<'a> {
        self.reference_id = id;
        self
    }

    /// The `X-Reference-Id` this call sends (fresh unless [`Create::reference_id`] gave
    /// one): known before it is sent, for the status read or the retry of a call whose
    /// answer was lost, and for a callback URL that names it
    /// (`https://shop.example/momo/{id}`, read back by
    /// [`crate::momo::callback::reference_in_path`]):
    ///
    /// ```no_run
    /// # async fn f(
    /// #     c: mkoba_sdk::momo::Collection,
    /// #     req: mkoba_sdk::types::momo::RequestToPay,
    /// # ) -> mkoba_sdk::Result<()> {
    /// let call = c.request_to_pay(&req);
    /// let id = *call.id();
    /// let accepted = call
    ///     .callback_url(format!("https://shop.example/momo/{id}"))
    ///     .await?;
    /// assert_eq!(accepted, id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> &ReferenceId {
        &self.reference_id
    }

    /// Sends this `X-Callback-Url` (instead of the configured one).
    pub fn callback_url(mut self, url: impl Into<String>) -> Create<'a> {
        self.callback_url = Some(url.into());
        self
    }

    /// Sends no `X-Callback-Url`, even if one is configured.
    pub fn no_callback(mut self) -> Create<'a> {
        self.callback_url = None;
        self
    }

    /// Sends the request; the reference id once it is accepted (202).
    pub async fn send(self) -> Result<ReferenceId> {
        let body = self.body.map_err(Error::Config)?;
        let reference = self.reference_id;
        reference.check_random().map_err(Error::Config)?;
        let url = self.core.url(self.path);
        let mut buf = uuid::Uuid::encode_buffer();
        let reference_header =
            HeaderValue::from_str(reference.uuid().hyphenated().encode_lower(&mut buf))
                .map_err(|_| Error::Config("invalid reference id".to_owned()))?;
        let callback = match &self.callback_url {
            Some(cb) => Some(HeaderValue::from_str(cb).map_err(|_| {
                Error::Config(format!(
                    "the callback URL {cb:?} has characters not allowed in a header"
                ))
            })?),
            None => None,
        };
        self.core
            .send(|c| {
                let mut c = with(c, Method::POST, &url)
                    .header_value(REFERENCE_ID.clone(), reference_header.clone());
                if let Some(cb) = &callback {
                    c = c.header_value(CALLBACK_URL.clone(), cb.clone());
                }
                c.body = Some(("application/json", body.clone()));
                Ok(c)
            })
            .await?;
        Ok(reference)
    }
}

impl<'a> IntoFuture for Create<'a> {
    type Output = Result<ReferenceId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<ReferenceId>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
