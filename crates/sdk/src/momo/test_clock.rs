//! Mkoba only: test clocks (`/_mkoba/test_clocks`). A test clock drives one new API user:
//! its payments, tokens and expiries run on the clock's time, which moves only when you
//! advance it, and advancing settles what became due as the time would have.
//!
//! ```no_run
//! # async fn demo() -> mkoba_sdk::Result<()> {
//! use mkoba_sdk::momo::TestClocks;
//!
//! let clocks = TestClocks::new("collection-subscription-key").base_url("http://127.0.0.1:8080");
//! let clock = clocks.create("api-user-uuid", "expiry tests", None).await?;
//! let clock = clocks.advance(&clock.id, "3d").await?; // three days on (its `now_ms` moves by 259,200,000)
//! clocks.delete(&clock.id).await?;
//! # Ok(()) }
//! ```

use http::Method;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::transport::{Call, Transport};

/// A test clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestClock {
    /// Its id (a UUID).
    pub id: String,
    /// The API user it drives.
    pub api_user: String,
    /// A name you gave it.
    pub name: String,
    /// Its time, in milliseconds since 1970.
    pub now_ms: i64,
    /// Its time, RFC 3339.
    pub now: String,
    /// When it was made, by the server's own time (ms since 1970).
    pub created_at_ms: i64,
}

/// The test clocks of the developer a subscription key belongs to.
#[derive(Clone)]
pub struct TestClocks {
    base: String,
    subscription_key: String,
    transport: Transport,
}

impl std::fmt::Debug for TestClocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClocks")
            .field("base_url", &self.base)
            .finish_non_exhaustive()
    }
}

impl TestClocks {
    /// With any product's subscription key, against a local Mkoba
    /// (`http://127.0.0.1:8080`; see [`TestClocks::base_url`]).
    pub fn new(subscription_key: impl Into<String>) -> TestClocks {
        TestClocks {
            base: "http://127.0.0.1:8080".to_owned(),
            subscription_key: subscription_key.into(),
            transport: Transport::default(),
        }
    }

    /// Another host.
    pub fn base_url(mut self, url: impl Into<String>) -> TestClocks {
        self.base = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Shares this HTTP client.
    pub fn transport(mut self, transport: Transport) -> TestClocks {
        self.transport = transport;
        self
    }

    fn call(&self, method: Method, path: &str) -> Call {
        Call::new(method, format!("{}/_mkoba/test_clocks{path}", self.base))
            .header("ocp-apim-subscription-key", &self.subscription_key)
    }

    /// `POST /_mkoba/test_clocks`: a clock for an API user with no payments yet, standing at
    /// `frozen_time_ms` (the server's time when `None`).
    pub async fn create(
        &self,
        api_user: &str,
        name: &str,
        frozen_time_ms: Option<i64>,
    ) -> Result<TestClock> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            api_user: &'a str,
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            frozen_time_ms: Option<i64>,
        }
        let call = self.call(Method::POST, "").json(&Body {
            api_user,
            name,
            frozen_time_ms,
        })?;
        self.transport.send(call.build()?).await?.ok()?.json()
    }

    /// `GET /_mkoba/test_clocks`.
    pub async fn list(&self) -> Result<Vec<TestClock>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct List {
            test_clocks: Vec<TestClock>,
        }
        let call = self.call(Method::GET, "");
        let list: List = self.transport.send(call.build()?).await?.ok()?.json()?;
        Ok(list.test_clocks)
    }

    /// `GET /_mkoba/test_clocks/{id}`.
    pub async fn get(&self, id: &str) -> Result<TestClock> {
        let call = self.call(Method::GET, &format!("/{id}"));
        self.transport.send(call.build()?).await?.ok()?.json()
    }

    /// `POST /_mkoba/test_clocks/{id}/advance`: moves the clock forward by `by` (`90s`,
    /// `15m`, `3h`, `2d`); answers once everything that became due is settled.
    pub async fn advance(&self, id: &str, by: &str) -> Result<TestClock> {
        let call = self
            .call(Method::POST, &format!("/{id}/advance"))
            .json(&serde_json::json!({ "by": by }))?;
        self.transport.send(call.build()?).await?.ok()?.json()
    }

    /// `DELETE /_mkoba/test_clocks/{id}`: its API user's pending payments end as EXPIRED
    /// and the API user runs on real time again.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let call = self.call(Method::DELETE, &format!("/{id}"));
        self.transport.send(call.build()?).await?.ok()?;
        Ok(())
    }
}
