//! The MTN MoMo Open API: one client per product ([`Collection`], [`Disbursement`],
//! [`Remittance`]) and sandbox provisioning ([`Provisioning`]).
//!
//! A product client is configured with a [`Config`]: base URL (MTN's sandbox by default),
//! target environment (`sandbox` by default), the product's subscription key, the API user
//! and its key, and an optional callback URL. Pointing at Mkoba is one base-URL change.
//!
//! # Tokens
//!
//! The access token is fetched the first time a call needs one, cached, and shared by every
//! clone of the client and every task using it: when many tasks need a token at once, one
//! fetches and the others wait for it. It is refreshed ahead of its expiry (a sixth of its
//! lifetime, at most ten minutes, before; until then the old token keeps serving the other
//! tasks) and once more if a call is refused with 401. Never one token per call.
//!
//! # Reference ids
//!
//! Creating calls return a builder ([`Create`]) that can be awaited directly; it generates
//! the `X-Reference-Id` (a UUID v4) and returns it. Pass your own with
//! [`Create::reference_id`] to retry a request whose answer was lost: a 409
//! [`ReasonCode::ResourceAlreadyExist`](crate::ReasonCode) then means the first attempt
//! was accepted.
//!
//! ```no_run
//! # async fn demo() -> mkoba_sdk::Result<()> {
//! use mkoba_sdk::momo::{Collection, Config, Poll, Status};
//! use mkoba_sdk::types::momo::{Party, RequestToPay};
//!
//! let collection = Collection::new(
//!     Config::new("collection-subscription-key")
//!         .base_url("http://127.0.0.1:8080") // Mkoba; the default is MTN's sandbox
//!         .api_user("api-user-uuid", "api-key"),
//! )?;
//! let reference = collection
//!     .request_to_pay(&RequestToPay {
//!         amount: "100".into(),
//!         currency: "EUR".into(),
//!         external_id: Some("order-1".into()),
//!         payer: Party::msisdn("46733123450"),
//!         payer_message: Some("Order 1".into()),
//!         payee_note: None,
//!     })
//!     .await?;
//! let result = collection.wait_for_request_to_pay(&reference, Poll::default()).await?;
//! assert_eq!(result.status, "FAILED"); // 46733123450 is a sandbox test number
//! # Ok(()) }
//! ```

mod callback;
mod client;
mod products;
mod provisioning;
mod status;
mod test_clock;

pub use callback::{Callback, parse_callback, reference_in_path};
pub use client::{Create, SANDBOX_URL};
pub use products::{AccessType, Collection, Disbursement, IdType, Remittance};
pub use provisioning::{MarketUser, Provisioning, SandboxUser};
pub use status::{NOT_VISIBLE_FOR, Poll, Status, Transaction, wait_for_final_status};
pub use test_clock::{TestClock, TestClocks};

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::transport::Transport;

/// A MoMo product: each has its own subscription key, token endpoint and path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// `/collection`: getting paid.
    Collection,
    /// `/disbursement`: paying out.
    Disbursement,
    /// `/remittance`: international transfers.
    Remittance,
}

impl Product {
    /// The three products.
    pub const ALL: [Product; 3] = [
        Product::Collection,
        Product::Disbursement,
        Product::Remittance,
    ];

    /// The path prefix without slashes (`collection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Collection => "collection",
            Product::Disbursement => "disbursement",
            Product::Remittance => "remittance",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Product {
    type Err = String;

    fn from_str(s: &str) -> Result<Product, String> {
        Product::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown product {s:?}: collection, disbursement or remittance"))
    }
}

/// An `X-Reference-Id`: a UUID v4 naming a resource (a payment, an API user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferenceId(Uuid);

impl ReferenceId {
    /// A fresh random (v4) id.
    pub fn new() -> ReferenceId {
        ReferenceId(Uuid::new_v4())
    }

    /// Refused unless it is a version 4 (random) UUID, as `X-Reference-Id` must be.
    pub fn check_random(&self) -> Result<(), String> {
        match self.0.get_version_num() {
            4 => Ok(()),
            version => Err(format!(
                "the reference id {self} is a version {version} UUID; X-Reference-Id must be a version 4 (random) UUID"
            )),
        }
    }

    /// The UUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for ReferenceId {
    fn default() -> Self {
        ReferenceId::new()
    }
}

impl From<Uuid> for ReferenceId {
    fn from(u: Uuid) -> ReferenceId {
        ReferenceId(u)
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ReferenceId {
    type Err = String;

    fn from_str(s: &str) -> Result<ReferenceId, String> {
        Uuid::parse_str(s.trim())
            .map(ReferenceId)
            .map_err(|_| format!("{s:?} is not a UUID (reference ids look like 3f0a…-…)"))
    }
}

/// How a product client reaches the platform and who it is.
#[derive(Clone)]
pub struct Config {
    pub(crate) base_url: String,
    pub(crate) target_environment: String,
    pub(crate) subscription_key: String,
    pub(crate) api_user: String,
    pub(crate) api_key: String,
    pub(crate) callback_url: Option<String>,
    pub(crate) transport: Option<Transport>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("target_environment", &self.target_environment)
            .field("subscription_key", &"<redacted>")
            .field("api_user", &self.api_user)
            .field("api_key", &"<redacted>")
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// MTN's sandbox (`https://sandbox.momodeveloper.mtn.com`, environment `sandbox`) with
    /// this product subscription key; set the API user with [`Config::api_user`].
    pub fn new(subscription_key: impl Into<String>) -> Config {
        Config {
            base_url: SANDBOX_URL.to_owned(),
            target_environment: "sandbox".to_owned(),
            subscription_key: subscription_key.into(),
            api_user: String::new(),
            api_key: String::new(),
            callback_url: None,
            transport: None,
        }
    }

    /// Where the API is: MTN's production `https://proxy.momoapi.mtn.com`, or Mkoba
    /// (`http://127.0.0.1:8080`). A trailing slash is ignored.
    pub fn base_url(mut self, url: impl Into<String>) -> Config {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// `X-Target-Environment`: `sandbox`, or the market (`mtnuganda`, `mtnghana`, …).
    pub fn target_environment(mut self, environment: impl Into<String>) -> Config {
        self.target_environment = environment.into();
        self
    }

    /// The API user (a UUID) and its API key.
    pub fn api_user(mut self, api_user: impl Into<String>, api_key: impl Into<String>) -> Config {
        self.api_user = api_user.into();
        self.api_key = api_key.into();
        self
    }

    /// `X-Callback-Url` sent with every creating call (its host must be the API user's
    /// `providerCallbackHost`); a call can override it with [`Create::callback_url`].
    pub fn callback_url(mut self, url: impl Into<String>) -> Config {
        self.callback_url = Some(url.into());
        self
    }

    /// Shares this HTTP client (and its connection pool) instead of making a new one.
    pub fn transport(mut self, transport: Transport) -> Config {
        self.transport = Some(transport);
        self
    }

    /// The base URL.
    pub fn get_base_url(&self) -> &str {
        &self.base_url
    }

    /// The target environment.
    pub fn get_target_environment(&self) -> &str {
        &self.target_environment
    }
}
