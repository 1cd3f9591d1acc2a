//! Credentials through [`Credentials`]: subscription keys, API users and their keys, access
//! tokens and signed claims.

use crate::engine::Command;
use crate::model::{ApiUser, KeySlot, Product, SubscriptionKey};
use crate::secrets;
use crate::secrets::TokenError;
use crate::store::ApiKeyRecord;
use crate::{CreateError, Credentials, Internal};
use uuid::Uuid;

impl Credentials<'_> {
    /// The subscription key's record, if it is one of ours.
    pub fn subscription(self, key: &str) -> Option<SubscriptionKey> {
        self.inner
            .subscriptions
            .read()
            .expect("subscriptions lock")
            .get(key)
            .cloned()
    }

    /// Whether a developer account is subscribed to `product` (holds a key of it).
    pub fn subscribed(self, developer_id: i64, product: crate::model::Product) -> bool {
        self.inner
            .subscriptions
            .read()
            .expect("subscriptions lock")
            .of(developer_id)
            .any(|k| k.product == product)
    }

    /// Every subscription key of a developer account.
    pub fn subscription_keys(self, developer_id: i64) -> Vec<SubscriptionKey> {
        let mut keys: Vec<SubscriptionKey> = self
            .inner
            .subscriptions
            .read()
            .expect("subscriptions lock")
            .of(developer_id)
            .cloned()
            .collect();
        keys.sort_by_key(|k| (k.product, k.slot == KeySlot::Secondary));
        keys
    }

    /// Creates an API user; `Duplicate` when the id is taken.
    pub async fn create_api_user(self, user: ApiUser) -> Result<(), CreateError> {
        let cached = user.clone();
        let result = self
            .call(
                |r| Command::CreateApiUser(user, r),
                Err(CreateError::Unavailable),
            )
            .await;
        if result.is_ok() {
            self.inner
                .api_users
                .write()
                .expect("api user cache")
                .insert(cached.id, cached);
        }
        result
    }

    /// Marks a CIBA `auth_req_id` (its `jti`) exchanged for tokens by `api_user` now, kept
    /// until `keep_until_ms` (both real time, the system clock's): `Duplicate` when it was
    /// exchanged already (also before a restart, or on another node), `Unavailable` when it
    /// cannot be stored now.
    pub async fn use_auth_request(
        self,
        jti: String,
        api_user: Uuid,
        keep_until_ms: i64,
    ) -> Result<(), CreateError> {
        let used_at_ms = crate::clock::system_now_ms();
        self.call(
            |reply| {
                Command::Portal(crate::engine::PortalCommand::UseAuthRequest {
                    jti,
                    api_user,
                    used_at_ms,
                    keep_until_ms,
                    reply,
                })
            },
            Err(CreateError::Unavailable),
        )
        .await
    }

    /// An API user.
    pub async fn api_user(self, id: &Uuid) -> Result<Option<ApiUser>, Internal> {
        if let Some(u) = self
            .inner
            .api_users
            .read()
            .expect("api user cache")
            .peek(id)
        {
            return Ok(Some(u.clone()));
        }
        let id = id.to_owned();
        let user = self.inner.reads.read(move |r| r.api_user(&id)).await?;
        if let Some(u) = &user {
            self.inner
                .api_users
                .write()
                .expect("api user cache")
                .insert(u.id, u.clone());
        }
        Ok(user)
    }

    /// Creates a new API key for the user and returns it; it is stored only as a hash.
    pub async fn create_api_key(self, api_user: Uuid) -> Result<String, CreateError> {
        let key = secrets::random_hex_key();
        let record = ApiKeyRecord {
            api_user,
            key_hash: secrets::hash_key(&key),
            ending: secrets::key_ending(&key),
            created_at_ms: self.now_ms(),
        };
        self.call(
            |r| Command::AddApiKey(record, r),
            Err(CreateError::Unavailable),
        )
        .await?;
        Ok(key)
    }

    /// Whether `key` is a live API key of `api_user`.
    pub async fn verify_api_key(self, api_user: &Uuid, key: &str) -> Result<bool, Internal> {
        let hash = secrets::hash_key(key);
        let api_user = api_user.to_owned();
        let hashes = self
            .inner
            .reads
            .read(move |r| r.api_key_hashes(&api_user))
            .await?;
        Ok(hashes.iter().any(|h| secrets::hashes_equal(h, &hash)))
    }

    /// An access token for the API user on a product, and its lifetime in seconds (on the
    /// API user's time: its test clock's when it has one).
    pub fn issue_token(self, api_user: Uuid, product: Product) -> (String, u64) {
        let ttl = self.inner.config.token_ttl;
        let expires = self.clocks().now_for(&api_user) + ttl.as_millis() as i64;
        let token = self.inner.signer.issue(api_user, product, expires);
        (token, ttl.as_secs())
    }

    /// The API user a bearer token belongs to (expiry judged on the API user's time, and a
    /// token issued ahead of real time on a clock since deleted has expired:
    /// [`crate::test_clock::TestClocks::issued_ahead`]). The issue time is worked out from the configured
    /// lifetime: lowering `--token-ttl-secs` ends the tokens issued within the difference
    /// before the change, which their clients then ask again for.
    pub fn verify_token(self, token: &str, product: Product) -> Result<Uuid, TokenError> {
        let ttl = self.inner.config.token_ttl.as_millis() as i64;
        self.inner
            .signer
            .verify_with(token, product, |user, expires| {
                let clocks = self.clocks();
                clocks.now_for(user) >= expires || clocks.issued_ahead(user, expires - ttl)
            })
    }

    /// Whether `token` is the signed token of widget invoice `invoice`'s payer link (the
    /// link itself, and its QR code, carry it).
    pub fn invoice_link_is(self, token: &str, invoice: &Uuid) -> bool {
        self.verify_claims(crate::widget::WIDGET_LINK_PURPOSE, token)
            .is_ok_and(|claims| claims["invoice"] == invoice.to_string())
    }

    /// Signs claims for a purpose (see [`crate::secrets::TokenSigner::sign_claims`]); verifiable by every
    /// node sharing the database.
    pub fn sign_claims(self, purpose: &str, claims: &serde_json::Value) -> String {
        self.inner.signer.sign_claims(purpose, claims)
    }

    /// `plain` encrypted for `purpose` ([`crate::secrets::TokenSigner::seal`]), for a secret
    /// carried in signed claims (a new API key's flash cookie); every node can open it.
    pub fn seal(self, purpose: &str, plain: &str) -> String {
        self.inner.signer.seal(purpose, plain)
    }

    /// What [`Credentials::seal`] sealed for `purpose`.
    pub fn unseal(self, purpose: &str, sealed: &str) -> Option<String> {
        self.inner.signer.unseal(purpose, sealed)
    }

    /// [`Credentials::sign_claims`] in a JWT's shape (MTN's OAuth2 tokens).
    pub fn sign_jwt(self, purpose: &str, claims: &serde_json::Value) -> String {
        self.inner.signer.sign_jwt(purpose, claims)
    }

    /// Verifies a token made by [`Credentials::sign_claims`] or
    /// [`Credentials::sign_jwt`] for the same purpose.
    pub fn verify_claims(
        self,
        purpose: &str,
        token: &str,
    ) -> Result<serde_json::Value, TokenError> {
        self.inner.signer.verify_claims(purpose, token)
    }
}
