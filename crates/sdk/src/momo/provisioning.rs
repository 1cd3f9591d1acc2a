//! Sandbox user provisioning (reference §3), at the host root: create an API user, give it
//! an API key, read it back. Only the sandbox has it; production API users come from MTN's
//! partner portal (on Mkoba: [`Provisioning::create_market_user`]).

use http::Method;
use mkoba_api_types::momo::{ApiKeyResult, ApiUserCreate, ApiUserResult};
use serde::{Deserialize, Serialize};

use super::ReferenceId;
use super::client::SANDBOX_URL;
use crate::error::{Error, Result};
use crate::transport::{Call, Transport};

/// The provisioning API of one host, called with any product's subscription key.
#[derive(Clone)]
pub struct Provisioning {
    base: String,
    /// Why the base URL given is refused ([`Provisioning::base_url`]): every call says so,
    /// before anything is sent.
    refused: Option<String>,
    subscription_key: String,
    transport: Transport,
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning")
            .field("base_url", &self.base)
            .finish_non_exhaustive()
    }
}

/// A sandbox API user with its key: what [`Provisioning::provision`] makes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxUser {
    /// The API user's id (its `X-Reference-Id`).
    pub api_user: String,
    /// Its API key.
    pub api_key: String,
    /// The host callback URLs must be on.
    pub provider_callback_host: String,
    /// Always `sandbox` here.
    pub target_environment: String,
}

impl SandboxUser {
    /// The API user's id as the calls that name one take it ([`Provisioning::get_api_user`],
    /// [`Provisioning::create_api_key`]); `None` only for a value changed since it was
    /// provisioned into something that is no UUID v4.
    pub fn id(&self) -> Option<ReferenceId> {
        self.api_user.parse().ok()
    }
}

impl std::fmt::Debug for SandboxUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxUser")
            .field("api_user", &self.api_user)
            .field("api_key", &"<redacted>")
            .field("provider_callback_host", &self.provider_callback_host)
            .finish_non_exhaustive()
    }
}

/// An API user for a market (production-like target environment), made by Mkoba's admin
/// API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketUser {
    /// The API user's id.
    pub api_user: String,
    /// Its API key.
    pub api_key: String,
    /// The host callback URLs must be on.
    pub provider_callback_host: String,
    /// `mtnuganda`, `mtnghana`, …
    pub target_environment: String,
    /// The market's currency.
    pub currency: String,
}

impl std::fmt::Debug for MarketUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketUser")
            .field("api_user", &self.api_user)
            .field("api_key", &"<redacted>")
            .field("target_environment", &self.target_environment)
            .finish_non_exhaustive()
    }
}

impl Provisioning {
    /// MTN's sandbox with this subscription key.
    pub fn new(subscription_key: impl Into<String>) -> Provisioning {
        Provisioning {
            base: SANDBOX_URL.to_owned(),
            refused: None,
            subscription_key: subscription_key.into(),
            transport: Transport::default(),
        }
    }

    /// Another host (Mkoba: `http://127.0.0.1:8080`). Checked as a client's base URL is:
    /// one that cannot be right (no `http://` or `https://`, no host, a port past 65535)
    /// makes every call fail with [`Error::Config`] before anything is sent.
    pub fn base_url(mut self, url: impl Into<String>) -> Provisioning {
        let url = url.into();
        (self.base, self.refused) = match crate::transport::base_url(&url) {
            Ok(base) => (base, None),
            Err(Error::Config(why)) => (url, Some(why)),
            Err(e) => (url, Some(e.to_string())),
        };
        self
    }

    /// Shares this HTTP client.
    pub fn transport(mut self, transport: Transport) -> Provisioning {
        self.transport = transport;
        self
    }

    fn call(&self, method: Method, path: &str) -> Result<Call> {
        if let Some(why) = &self.refused {
            return Err(Error::Config(why.clone()));
        }
        Ok(Call::new(method, format!("{}{path}", self.base))
            .header("ocp-apim-subscription-key", &self.subscription_key))
    }

    /// `POST /v1_0/apiuser`: a new API user (id generated and returned) whose callbacks
    /// must go to `provider_callback_host`.
    pub async fn create_api_user(&self, provider_callback_host: &str) -> Result<ReferenceId> {
        let id = ReferenceId::new();
        self.create_api_user_with_id(id, provider_callback_host)
            .await?;
        Ok(id)
    }

    /// `POST /v1_0/apiuser` with a chosen id.
    pub async fn create_api_user_with_id(
        &self,
        id: ReferenceId,
        provider_callback_host: &str,
    ) -> Result<()> {
        let call = self
            .call(Method::POST, "/v1_0/apiuser")?
            .header("x-reference-id", id.to_string())
            .json(&ApiUserCreate {
                provider_callback_host: provider_callback_host.to_owned(),
            })?;
        self.transport.send(call.build()?).await?.ok()?;
        Ok(())
    }

    /// `POST /v1_0/apiuser/{id}/apikey`: a new API key (shown once; earlier keys stay
    /// valid on Mkoba).
    pub async fn create_api_key(&self, api_user: &ReferenceId) -> Result<String> {
        let call = self.call(Method::POST, &format!("/v1_0/apiuser/{api_user}/apikey"))?;
        let r: ApiKeyResult = self.transport.send(call.build()?).await?.ok()?.json()?;
        Ok(r.api_key)
    }

    /// `GET /v1_0/apiuser/{id}`.
    pub async fn get_api_user(&self, api_user: &ReferenceId) -> Result<ApiUserResult> {
        let call = self.call(Method::GET, &format!("/v1_0/apiuser/{api_user}"))?;
        self.transport.send(call.build()?).await?.ok()?.json()
    }

    /// An API user and its key in one go.
    pub async fn provision(&self, provider_callback_host: &str) -> Result<SandboxUser> {
        let id = self.create_api_user(provider_callback_host).await?;
        let api_key = self.create_api_key(&id).await?;
        Ok(SandboxUser {
            api_user: id.to_string(),
            api_key,
            provider_callback_host: provider_callback_host.to_owned(),
            target_environment: "sandbox".to_owned(),
        })
    }

    /// Mkoba only (`POST /_mkoba/apiusers`, standing in for MTN's partner portal): an API
    /// user and key for a market's target environment (`mtnuganda`, …).
    pub async fn create_market_user(
        &self,
        provider_callback_host: &str,
        target_environment: &str,
    ) -> Result<MarketUser> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            provider_callback_host: &'a str,
            target_environment: &'a str,
        }
        let call = self.call(Method::POST, "/_mkoba/apiusers")?.json(&Body {
            provider_callback_host,
            target_environment,
        })?;
        let reply = self.transport.send(call.build()?).await?;
        if reply.status.as_u16() == 404 {
            return Err(Error::Config(format!(
                "{} has no /_mkoba/apiusers: market API users come from the provider's partner portal",
                self.base
            )));
        }
        reply.ok()?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_base_url_that_cannot_be_right_fails_every_call_before_sending() {
        for (url, why) in [
            ("localhost:8080", "must start with http:// or https://"),
            ("http://127.0.0.1:65536", "no port from 1 to 65535"),
            // Said as typed (it was "must start with http://, got \"http:\"").
            ("http://", "has no host, got \"http://\""),
            ("https:///", "has no host"),
        ] {
            let p = Provisioning::new("key").base_url(url);
            let e = p.provision("shop.example").await.unwrap_err();
            assert!(
                matches!(&e, Error::Config(m) if m.contains(why)),
                "{url}: {e}"
            );
            let e = p.get_api_user(&ReferenceId::new()).await.unwrap_err();
            assert!(
                matches!(&e, Error::Config(m) if m.contains(why)),
                "{url}: {e}"
            );
        }
        let p = Provisioning::new("key").base_url("http://127.0.0.1:8080/");
        assert_eq!(p.base, "http://127.0.0.1:8080");
        assert!(p.refused.is_none());
    }
}
