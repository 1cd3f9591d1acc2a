//! What every operation shares: the configuration checked once, the HTTP client, the
//! session cache, and the request shape (session bearer, `Origin`, JSON; the GET queries'
//! fields in the query string, as the official SDKs send them).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, ORIGIN};
use http::{Method, StatusCode};
use tokio::time::Instant;

use super::{Config, Environment, InsCode, Market, PublicKey};
use crate::error::{Error, MpesaError, Result};
use crate::transport::{Call, Reply, Transport, form_encode};

/// The real gateway, the default base URL (both environments live on it).
pub const DEFAULT_BASE_URL: &str = "https://openapi.m-pesa.com";

/// The time limit of one request when no [`Transport`] is given: a synchronous call waits
/// for the customer's PIN, which the real gateway gives up on after about 66 s (a transport
/// given to the client should allow as long).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// The longest a session is replaced ahead of its assumed end.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// `input_ThirdPartyConversationID`.
const TPCID: &str = "input_ThirdPartyConversationID";

/// A fresh `input_ThirdPartyConversationID`: 32 hex characters (a UUID v4 without dashes).
pub fn new_conversation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The gateway's rule for conversation ids: `^[0-9a-zA-Z \w+]{1,40}$`.
fn check_conversation_id(id: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '+');
    if (1..=40).contains(&id.chars().count()) && id.chars().all(ok_char) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "the ThirdPartyConversationID {id:?} must be 1 to 40 letters, digits, spaces, _ or +"
        )))
    }
}

/// A session in use. Its lifetime is counted on Tokio's clock ([`tokio::time::Instant`]),
/// which a test can move on with `tokio::time::advance`.
#[derive(Clone)]
struct Session {
    id: Arc<str>,
    /// `Bearer base64(RSA(id))`, encrypted once.
    header: HeaderValue,
    /// From here on the next caller replaces it.
    refresh_at: Instant,
    /// From here on it is no longer sent.
    expires_at: Instant,
}

/// The client's session: fetched lazily, shared, replaced by one task at a time.
#[derive(Default)]
struct SessionCache {
    current: tokio::sync::RwLock<Option<Session>>,
    /// Held by the one task fetching a session.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

/// `output_*` of `getSession`.
#[derive(serde::Deserialize)]
struct SessionAnswer {
    #[serde(rename = "output_SessionID")]
    session_id: String,
}

/// The configuration checked once, and the session.
pub(crate) struct Core {
    market: Market,
    environment: Environment,
    /// `{base}/{environment}/ipg/v2/{market}/`.
    prefix: String,
    base: String,
    api_key: String,
    key: PublicKey,
    origin: HeaderValue,
    lifetime: Duration,
    activation_wait: Duration,
    transport: Transport,
    session: SessionCache,
}

/// An M-Pesa client for one market. Cheap to clone: clones share the session and the
/// connection pool.
#[derive(Clone)]
pub struct Client(Arc<Core>);

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.0.base)
            .field("environment", &self.0.environment)
            .field("market", &self.0.market)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the configured market. Fails if the base URL, the public key or the
    /// origin is unusable; nothing is sent yet.
    pub fn new(config: Config) -> Result<Client> {
        let base = crate::transport::base_url(&config.base_url)?;
        if config.api_key.trim().is_empty() {
            return Err(Error::Config(
                "an M-Pesa API key is required (the application's, from the portal)".to_owned(),
            ));
        }
        if config.public_key.trim().is_empty() {
            return Err(Error::Config(
                "the M-Pesa public key is required (the platform key of the environment, from the portal)"
                    .to_owned(),
            ));
        }
        let key = PublicKey::from_base64(&config.public_key)?;
        let origin = HeaderValue::from_str(&config.origin).map_err(|_| {
            Error::Config(format!(
                "the origin {:?} has characters not allowed in a header",
                config.origin
            ))
        })?;
        if config.session_lifetime.is_zero() {
            return Err(Error::Config(
                "the session lifetime must be above zero".to_owned(),
            ));
        }
        let prefix = format!(
            "{base}/{}/ipg/v2/{}/",
            config.environment.as_str(),
            config.market.path()
        );
        Ok(Client(Arc::new(Core {
            market: config.market,
            environment: config.environment,
            prefix,
            base,
            api_key: config.api_key,
            key,
            origin,
            lifetime: config.session_lifetime,
            activation_wait: config.activation_wait,
            transport: config
                .transport
                .unwrap_or_else(|| Transport::new().timeout(DEFAULT_TIMEOUT)),
            session: SessionCache::default(),
        })))
    }

    /// The market of this client.
    pub fn market(&self) -> Market {
        self.0.market
    }

    /// The environment of this client.
    pub fn environment(&self) -> Environment {
        self.0.environment
    }

    /// The market, environment and base URL, for messages.
    pub fn describe(&self) -> String {
        format!(
            "M-Pesa {} ({}) at {}",
            self.0.market, self.0.environment, self.0.base
        )
    }

    /// The session id the client uses now, fetched if there is none (or it is due).
    pub async fn session_id(&self) -> Result<String> {
        Ok(self.0.session().await?.id.to_string())
    }

    /// `GET …/getSession/`: the gateway's session id of now, bypassing (and not replacing)
    /// the cache; counted in `session_fetches()`. (Mkoba's session ids are stateless: two
    /// asked for within one second are the same.)
    pub async fn create_session(&self) -> Result<String> {
        self.0.fetch_session().await
    }

    /// How many `getSession` requests this client has sent (for monitoring and tests).
    pub fn session_fetches(&self) -> u64 {
        self.0.session.fetches.load(Ordering::Relaxed)
    }

    /// A request of `api` with `fields`, answered as `T`.
    pub(crate) fn request<T>(
        &self,
        method: Method,
        api: &'static str,
        fields: Result<Fields>,
    ) -> Request<'_, T> {
        Request {
            client: self,
            method,
            api,
            fields,
            id: new_conversation_id(),
            answer: PhantomData,
        }
    }
}

impl Core {
    /// `GET …/getSession/` with `Bearer base64(RSA(api key))`, uncached.
    async fn fetch_session(&self) -> Result<String> {
        let bearer = format!("Bearer {}", self.key.bearer(&self.api_key)?);
        let call = Call::new(Method::GET, format!("{}getSession/", self.prefix))
            .header("authorization", bearer)
            .header_value(ORIGIN, self.origin.clone())
            .header_value(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.session.fetches.fetch_add(1, Ordering::Relaxed);
        let reply = self.transport.send(call.build()?).await?;
        let answer: SessionAnswer = decode(reply)?;
        if answer.session_id.trim().is_empty() {
            return Err(Error::Decode {
                url: format!("{}getSession/", self.prefix),
                status: 200,
                message: "getSession answered INS-0 without a session id".to_owned(),
            });
        }
        Ok(answer.session_id)
    }

    /// A live session: the cached one, or a new one fetched by exactly one task while the
    /// others wait (or, while the old one is still valid, keep using it).
    async fn session(&self) -> Result<Session> {
        let now = Instant::now();
        let current = self.session.current.read().await.clone();
        if let Some(s) = current {
            if now < s.refresh_at {
                return Ok(s);
            }
            if now < s.expires_at {
                // Due but still valid: one task replaces it (keeping it if that fails),
                // the others go on using it meanwhile.
                return match self.session.fetching.try_lock() {
                    Ok(guard) => Ok(self.refresh(guard).await.unwrap_or(s)),
                    Err(_) => Ok(s),
                };
            }
        }
        let guard = self.session.fetching.lock().await;
        // Another task may have fetched one while this one waited.
        if let Some(s) = self.session.current.read().await.clone()
            && Instant::now() < s.refresh_at
        {
            return Ok(s);
        }
        self.refresh(guard).await
    }

    async fn refresh(&self, _fetching: tokio::sync::MutexGuard<'_, ()>) -> Result<Session> {
        let started = Instant::now();
        let id = self.fetch_session().await?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", self.key.bearer(&id)?))
            .map_err(|_| Error::Config("the session bearer is not a header value".to_owned()))?;
        header.set_sensitive(true);
        // Taken up to a day, whatever the configuration said (one far past that overflowed
        // the clock).
        let lifetime = self.lifetime.min(crate::MAX_CACHED_LIFETIME);
        let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
        let session = Session {
            id: Arc::from(id),
            header,
            refresh_at: started + lifetime - margin,
            expires_at: started + lifetime,
        };
        *self.session.current.write().await = Some(session.clone());
        Ok(session)
    }

    /// Forgets `id` if it is still the cached session (the gateway refused it).
    async fn invalidate(&self, id: &str) {
        let mut current = self.session.current.write().await;
        if current.as_ref().is_some_and(|s| &*s.id == id) {
            *current = None;
        }
    }

    /// Sends `fields` to `api` with the session's bearer; once more with a new session if
    /// the gateway refuses the session.
    async fn exchange(&self, method: Method, api: &str, fields: &Fields) -> Result<Reply> {
        let mut url = format!("{}{api}", self.prefix);
        let body = if method == Method::GET {
            url.push('?');
            url.push_str(&fields.query());
            None
        } else {
            Some(fields.json()?)
        };
        let mut retried = false;
        let (mut waited, mut pause) = (Duration::ZERO, Duration::from_millis(250));
        loop {
            let session = self.session().await?;
            let mut call = Call::new(method.clone(), url.clone())
                .header_value(AUTHORIZATION, session.header.clone())
                .header_value(ORIGIN, self.origin.clone());
            match &body {
                Some(b) => call.body = Some(("application/json", b.clone())),
                None => {
                    call = call
                        .header_value(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                }
            }
            let reply = self.transport.send(call.build()?).await?;
            if reply.status == StatusCode::UNAUTHORIZED {
                let refusal = MpesaError::from_body(401, &reply.body);
                // Not live yet: the same session again, a little later (a new one would
                // start its wait over). The call was refused before anything happened.
                if refusal.is_session_not_yet_active() {
                    if waited < self.activation_wait {
                        let now = pause.min(self.activation_wait - waited);
                        tokio::time::sleep(now).await;
                        waited += now;
                        pause = (pause * 2).min(Duration::from_secs(2));
                        continue;
                    }
                } else if !retried && refusal.is_session_refusal() {
                    self.invalidate(&session.id).await;
                    retried = true;
                    continue;
                }
            }
            return Ok(reply);
        }
    }
}

/// The answer as `T` if it is a success (`INS-0`), else the gateway's error.
fn decode<T: serde::de::DeserializeOwned>(reply: Reply) -> Result<T> {
    if reply.status.is_success() {
        let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("output_ResponseCode").cloned())
            .and_then(|c| serde_json::from_value::<InsCode>(c).ok());
        if code.is_none_or(|c| c.is_success()) {
            return reply.json();
        }
    }
    Err(Error::Mpesa(Box::new(MpesaError::from_body(
        reply.status.as_u16(),
        &reply.body,
    ))))
}

/// A request's `input_*` fields, in the documented order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields(Vec<(&'static str, String)>);

impl Fields {
    /// Appends a field.
    pub fn with(mut self, name: &'static str, value: impl fmt::Display) -> Fields {
        self.0.push((name, value.to_string()));
        self
    }

    /// Appends a field when there is a value.
    pub fn maybe(self, name: &'static str, value: Option<impl fmt::Display>) -> Fields {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }

    /// A flat JSON object of strings, in order.
    fn json(&self) -> Result<Bytes> {
        use serde::ser::SerializeMap as _;
        struct Ordered<'a>(&'a [(&'static str, String)]);
        impl serde::Serialize for Ordered<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        serde_json::to_vec(&Ordered(&self.0))
            .map(Bytes::from)
            .map_err(|e| Error::Config(format!("request body cannot be serialised: {e}")))
    }

    /// `name=value&…`, form-encoded.
    fn query(&self) -> String {
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        pairs.join("&")
    }
}

/// An M-Pesa request: await it to send it with a fresh `input_ThirdPartyConversationID`
/// (or the one given), and get the typed answer.
#[must_use = "a request does nothing until awaited"]
pub struct Request<'a, T> {
    client: &'a Client,
    method: Method,
    api: &'static str,
    fields: Result<Fields>,
    id: String,
    answer: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Request<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("api", &self.api)
            .field("third_party_conversation_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'a, T: serde::de::DeserializeOwned> Request<'a, T> {
    /// Sends this `input_ThirdPartyConversationID` instead of a fresh one: your own
    /// reference, or the id of a request whose answer was lost (a duplicate then answers
    /// `INS-10`, meaning the first one arrived).
    pub fn third_party_conversation_id(mut self, id: impl Into<String>) -> Request<'a, T> {
        self.id = id.into();
        self
    }

    /// The `input_ThirdPartyConversationID` this request sends: keep it to query the
    /// transaction if the answer never comes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends the request; the answer once the gateway says `INS-0`.
    pub async fn send(self) -> Result<T> {
        check_conversation_id(&self.id)?;
        let fields = self.fields?.with(TPCID, &self.id);
        let reply = self
            .client
            .0
            .exchange(self.method, self.api, &fields)
            .await?;
        decode(reply)
    }
}

impl<'a, T: serde::de::DeserializeOwned + Send + 'a> IntoFuture for Request<'a, T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_order_in_json_and_are_encoded_in_queries() {
        let f = Fields::default()
            .with("input_B", "2")
            .with("input_A", "a b+c")
            .maybe("input_C", None::<&str>);
        assert_eq!(
            std::str::from_utf8(&f.json().unwrap()).unwrap(),
            r#"{"input_B":"2","input_A":"a b+c"}"#
        );
        assert_eq!(f.query(), "input_B=2&input_A=a+b%2Bc");
    }

    #[test]
    fn generated_conversation_ids_follow_the_gateways_rule() {
        let id = new_conversation_id();
        assert_eq!(id.len(), 32);
        assert!(check_conversation_id(&id).is_ok());
        assert!(check_conversation_id("order-1").is_err());
        assert!(check_conversation_id("").is_err());
        assert!(check_conversation_id(&"x".repeat(41)).is_err());
    }
}
