//! The Vodacom/Vodafone M-Pesa OpenAPI v2: a [`Client`] per market with a typed method for
//! every operation, its sessions managed, its errors typed by [`InsCode`], and helpers for
//! the asynchronous results the gateway POSTs to a result URL.
//!
//! It works unchanged against the real gateway (`https://openapi.m-pesa.com`, environments
//! `sandbox` and `openapi`) and against Mkoba: pointing at Mkoba is one base-URL change.
//!
//! # Sessions
//!
//! Every call but `getSession` needs a session: `getSession` is sent with
//! `Authorization: Bearer base64(RSA(api key))` and returns a session id, which later calls
//! send as `Bearer base64(RSA(session id))`. The client fetches one the first time a call
//! needs it and shares it between every clone and every task (one task fetches while the
//! others wait, never one `getSession` per call). The gateway does not say how long a
//! session lives, so the client assumes [`Config::session_lifetime`] (one hour unless set;
//! make it the application's) and fetches a new one shortly before that. If a call is
//! refused because of its session anyway (HTTP 401 about the session), the client fetches a
//! new one and sends the call once more.
//!
//! The session's bearer is encrypted once and reused for the session's calls.
//!
//! # Conversation ids
//!
//! Each transaction carries the caller's `input_ThirdPartyConversationID`. The methods
//! return a [`Request`] that can be awaited directly: it generates the id (32 hex
//! characters) unless one is given with [`Request::third_party_conversation_id`], shows it
//! before sending ([`Request::id`]) so that a request whose answer was lost can be queried
//! or retried, and the response echoes it. Reusing an id answers `INS-10` (duplicate).
//!
//! # Errors
//!
//! An answer other than `INS-0` is [`Error::Mpesa`](crate::Error::Mpesa): the HTTP status,
//! the [`InsCode`] (`INS-2006`, 422: insufficient balance), the text, the conversation ids,
//! and a [`hint`](crate::MpesaError::hint). The gateway's own refusals
//! (`{"output_error":"Origin not allowed"}`) come the same way without a code.
//!
//! ```no_run
//! # async fn demo(api_key: &str, public_key: &str) -> mkoba_sdk::Result<()> {
//! use mkoba_sdk::mpesa::{Amount, C2bPayment, Client, Config, Market};
//!
//! let client = Client::new(
//!     Config::new(Market::VodacomTzn, api_key, public_key)
//!         .base_url("http://127.0.0.1:8080"), // Mkoba; the default is the real gateway
//! )?;
//! let paid = client
//!     .c2b(&C2bPayment {
//!         amount: Amount::parse("10.50")?,
//!         customer_msisdn: "000000000001".into(),
//!         service_provider_code: "000000".into(),
//!         transaction_reference: "T1234C".into(),
//!         purchased_items_desc: "Shoes".into(),
//!     })
//!     .await?;
//! println!("{:?} {}", paid.transaction_id, paid.third_party_conversation_id);
//! # Ok(()) }
//! ```
//!
//! # Asynchronous results
//!
//! With a result URL configured for the application, every call is answered at once
//! (without a transaction id: [`PaymentResponse::is_asynchronous`]) and the outcome is
//! POSTed to the URL. Read it with [`parse_result`], match it to the request by
//! [`AsyncResult::third_party_conversation_id`], and answer with
//! [`AsyncResult::acknowledgement`] (`output_ResponseCode` `"0"`, or `INS-0` for a Query
//! Direct Debit result). Nothing signs a result: confirm with
//! [`Client::query_transaction_status`] before acting on it, and expect it twice.
//!
//! The bearer encryption alone is [`PublicKey`]:
//!
//! ```no_run
//! use mkoba_sdk::mpesa::PublicKey;
//!
//! # fn demo(published_key: &str) -> mkoba_sdk::Result<()> {
//! let key = PublicKey::from_base64(published_key)?;
//! let bearer = key.bearer("6bc4157dbee34d409118e0978dc6dd17")?;
//! assert_eq!(bearer.len(), 684); // 512 bytes of ciphertext for a 4096-bit key
//! # Ok(()) }
//! ```

mod amount;
mod client;
mod key;
mod operations;
mod result;

pub use amount::Amount;
pub use client::{Client, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Request, new_conversation_id};

/// How long a call waits for a new session to become live ([`Config::activation_wait`]).
pub const DEFAULT_ACTIVATION_WAIT: Duration = Duration::from_secs(30);
pub use key::{PublicKey, bearer};
pub use mkoba_api_types::mpesa::{InsCode, Market};
pub use operations::{
    B2bPayment, B2cPayment, BeneficiaryNameQuery, BeneficiaryNameResponse, C2bPayment,
    DirectDebitCancel, DirectDebitCancelResponse, DirectDebitCreate, DirectDebitCreateResponse,
    DirectDebitPayment, DirectDebitPaymentResponse, DirectDebitQuery, DirectDebitQueryResponse,
    Frequency, PaymentResponse, Reversal, TransactionStatusQuery, TransactionStatusResponse,
};
pub use result::{Acknowledgement, AsyncResult, ResultKind, parse_result};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::transport::Transport;

/// The gateway's environment: the first path segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Environment {
    /// `sandbox`: test MSISDNs, no real money.
    #[default]
    Sandbox,
    /// `openapi`: production (the live environment is literally called `openapi`).
    Openapi,
}

impl Environment {
    /// The path segment (`sandbox`).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Openapi => "openapi",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Environment, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sandbox" => Ok(Environment::Sandbox),
            "openapi" | "production" => Ok(Environment::Openapi),
            _ => Err(format!(
                "unknown M-Pesa environment {s:?}: sandbox or openapi (production)"
            )),
        }
    }
}

/// How a [`Client`] reaches the gateway and who it is.
#[derive(Clone)]
pub struct Config {
    pub(crate) base_url: String,
    pub(crate) environment: Environment,
    pub(crate) market: Market,
    pub(crate) api_key: String,
    pub(crate) public_key: String,
    pub(crate) origin: String,
    pub(crate) session_lifetime: Duration,
    pub(crate) activation_wait: Duration,
    pub(crate) transport: Option<Transport>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("environment", &self.environment)
            .field("market", &self.market)
            .field("api_key", &"<redacted>")
            .field(
                "public_key",
                &format_args!("<{} base64 characters>", self.public_key.trim().len()),
            )
            .field("origin", &self.origin)
            .field("session_lifetime", &self.session_lifetime)
            .field("activation_wait", &self.activation_wait)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The real gateway (`https://openapi.m-pesa.com`, environment `sandbox`, `Origin: *`,
    /// sessions assumed to live an hour) for this market, with the application's API key and
    /// the platform public key of the environment (base64 SPKI, as the portal shows it).
    pub fn new(
        market: Market,
        api_key: impl Into<String>,
        public_key: impl Into<String>,
    ) -> Config {
        Config {
            base_url: DEFAULT_BASE_URL.to_owned(),
            environment: Environment::Sandbox,
            market,
            api_key: api_key.into(),
            public_key: public_key.into(),
            origin: "*".to_owned(),
            session_lifetime: Duration::from_secs(3600),
            activation_wait: DEFAULT_ACTIVATION_WAIT,
            transport: None,
        }
    }

    /// Where the gateway is: Mkoba (`http://127.0.0.1:8080`), say. A trailing slash is
    /// ignored.
    pub fn base_url(mut self, url: impl Into<String>) -> Config {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// `sandbox` (the default) or `openapi` (production). Each has its own public key.
    pub fn environment(mut self, environment: Environment) -> Config {
        self.environment = environment;
        self
    }

    /// The `Origin` header: one of the application's allowed origins (`*` by default, as
    /// in the portal's samples).
    pub fn origin(mut self, origin: impl Into<String>) -> Config {
        self.origin = origin.into();
        self
    }

    /// How long a session lives: the application's session lifetime on the portal (the
    /// gateway does not say). The client fetches a new session shortly before it ends.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Config {
        self.session_lifetime = lifetime;
        self
    }

    /// How long a call waits for a new session to become live: the gateway answers `401
    /// INS-6` "Session key not yet active" for a while after `getSession` (up to 30 s on
    /// the real one, whose samples sleep 30 s), and the call is sent again with the same
    /// session, after 0.25 s, then doubling up to 2 s, until it is taken or this has
    /// passed (30 s by default; zero sends it once).
    pub fn activation_wait(mut self, wait: Duration) -> Config {
        self.activation_wait = wait;
        self
    }

    /// Shares this HTTP client (and its connection pool) instead of making a new one. A
    /// synchronous call lasts until the customer answers (about a minute at most on the
    /// real gateway), so give it a time limit above that; the client's own has 90 s.
    pub fn transport(mut self, transport: Transport) -> Config {
        self.transport = Some(transport);
        self
    }

    /// The base URL.
    pub fn get_base_url(&self) -> &str {
        &self.base_url
    }

    /// The environment.
    pub fn get_environment(&self) -> Environment {
        self.environment
    }

    /// The market.
    pub fn get_market(&self) -> Market {
        self.market
    }

    /// The `Origin` header.
    pub fn get_origin(&self) -> &str {
        &self.origin
    }

    /// The assumed session lifetime.
    pub fn get_session_lifetime(&self) -> Duration {
        self.session_lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markets_are_read_by_path_or_country_in_any_case() {
        assert_eq!("vodacomtzn".parse::<Market>(), Ok(Market::VodacomTzn));
        assert_eq!("GHA".parse::<Market>(), Ok(Market::VodafoneGha));
        assert_eq!(Market::VodacomDrc.currency(), "USD");
        assert_eq!(Market::VodacomMoz.dialling_code(), "258");
        assert_eq!(Market::VodacomLes.to_string(), "vodacomLES");
        assert!("vodafoneEGY".parse::<Market>().is_err());
    }

    #[test]
    fn the_configuration_never_prints_the_api_key() {
        let c = Config::new(
            Market::VodacomTzn,
            "6bc4157dbee34d409118e0978dc6dd17",
            "MIIC",
        )
        .base_url("http://127.0.0.1:8080/");
        let text = format!("{c:?}");
        assert!(!text.contains("6bc4157d"), "{text}");
        assert!(text.contains("<redacted>"));
        assert_eq!(c.get_base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            "production".parse::<Environment>(),
            Ok(Environment::Openapi)
        );
    }
}
