//! What the M-Pesa OpenAPI needs from the platform: one application per developer (API key
//! stored only as a hash, allowed origins, session lifetime, asynchronous result URL),
//! stateless session ids that every node sharing the database can verify, idempotency on
//! the client's `input_ThirdPartyConversationID`, M-Pesa transaction ids, and a way for a
//! synchronous request to wait until its transaction is final.
//!
//! Sessions are 32 lower-case hex characters, the shape of the real gateway's: 4 bytes of
//! issue time (Unix seconds), 4 bytes of the developer id and the first 8 bytes of an
//! HMAC-SHA256 under the platform secret over both *and the hash of the application's
//! current API key*. Renewing the API key therefore ends every session made with the old
//! one, and no session needs a row in the database.

use crate::{MpesaApps, Payments};
use std::time::Duration;

use rand::Rng as _;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::engine::{Command, MpesaCommand};
use crate::model::{ApiUser, Payment};
use crate::{CreateError, Internal, Platform, secrets};

/// `output_ResponseTransactionStatus` of a payment, as `queryTransactionStatus` answers it
/// (`v1x`: through Mozambique's gateway). On v1x a payment the customer declined is
/// `Cancelled`, as its answer was `INS-5` "Transaction cancelled by customer" (v1x's
/// documented statuses are `Cancelled`, `Completed`, `Expired`, `N/A`).
pub fn status_text(p: &Payment, v1x: bool) -> &'static str {
    use crate::model::PaymentStatus;
    use crate::reason::FailureReason;
    match (p.status, p.reason) {
        (PaymentStatus::Pending, _) => "Pending",
        (PaymentStatus::Successful, _) => "Completed",
        (PaymentStatus::Failed, Some(FailureReason::TransactionCanceled)) => "Cancelled",
        (PaymentStatus::Failed, Some(FailureReason::ApprovalRejected)) if v1x => "Cancelled",
        (PaymentStatus::Failed, Some(FailureReason::Expired)) => "Expired",
        (PaymentStatus::Failed, _) => "Failed",
    }
}

/// The `target_environment` of the API user row that owns an application's payments (so the
/// portal's per-developer listings include them).
pub const APP_ENVIRONMENT: &str = "mpesa";

/// A session's lifetime when the application sets none (one hour).
pub const DEFAULT_SESSION_LIFETIME_SECS: u64 = 3600;

/// A developer's M-Pesa application.
#[derive(Clone, PartialEq, Eq)]
pub struct MpesaApp {
    /// The developer account (one application each).
    pub developer_id: i64,
    /// Owner of the application's payments and short-code accounts.
    pub api_user: Uuid,
    /// SHA-256 of the current API key.
    pub api_key_hash: [u8; 32],
    pub api_key_created_at_ms: i64,
    /// The current API key, kept so that the Account Profile can show it and the API pages
    /// can put it in their samples and their Send Request box (seed 004), and `mkoba
    /// credentials` print the sandbox developer's. `None` for a key nobody holds (made
    /// with an account not yet active, or to replace the key of a stopped account) and
    /// for a key issued before 2026-12-06, when only the hash was kept. Stored in the
    /// column `sandbox_api_key`, named when only the sandbox developer's key was kept.
    pub api_key: Option<String>,
    /// `Origin` values accepted; `*` accepts any (and none).
    pub allowed_origins: Vec<String>,
    pub session_lifetime_secs: u64,
    /// Where results go in asynchronous mode; `None` is synchronous mode.
    pub result_url: Option<String>,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for MpesaApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpesaApp")
            .field("developer_id", &self.developer_id)
            .field("api_user", &self.api_user)
            .field("allowed_origins", &self.allowed_origins)
            .field("session_lifetime_secs", &self.session_lifetime_secs)
            .field("result_url", &self.result_url)
            .finish_non_exhaustive()
    }
}

impl MpesaApp {
    /// A new application with a fresh API key (returned beside it) and default settings.
    pub fn new(developer_id: i64, now: i64) -> (MpesaApp, String) {
        let key = random_api_key();
        let app = MpesaApp {
            developer_id,
            api_user: Uuid::new_v4(),
            api_key_hash: secrets::hash_key(&key),
            api_key_created_at_ms: now,
            api_key: None,
            allowed_origins: vec!["*".to_owned()],
            session_lifetime_secs: DEFAULT_SESSION_LIFETIME_SECS,
            result_url: None,
            created_at_ms: now,
        };
        (app, key)
    }

    /// The API user row that owns the application's payments.
    pub fn api_user_row(&self) -> ApiUser {
        ApiUser {
            id: self.api_user,
            developer_id: self.developer_id,
            provider_callback_host: String::new(),
            target_environment: APP_ENVIRONMENT.to_owned(),
            created_at_ms: self.created_at_ms,
        }
    }

    /// Whether a request's `Origin` header is allowed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        self.allowed_origins.iter().any(|o| {
            o == "*"
                || origin.is_some_and(|v| {
                    v.trim_end_matches('/')
                        .eq_ignore_ascii_case(o.trim_end_matches('/'))
                })
        })
    }
}

/// A registration for a payment's final state (see [`Payments::watch`]).
pub struct Watch {
    rx: oneshot::Receiver<()>,
    id: Uuid,
    waiters: crate::Waiters,
    /// Its place among the requests waiting (its developer's share of them).
    _place: crate::throttle::Share<i64>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("id", &self.id).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.rx.close();
        let mut waiters = self.waiters.lock().expect("waiters lock");
        if let Some(list) = waiters.get_mut(&self.id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiters.remove(&self.id);
            }
        }
    }
}

/// Settings a developer changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpesaAppSettings {
    pub allowed_origins: Vec<String>,
    pub session_lifetime_secs: u64,
    pub result_url: Option<String>,
}

/// Why a session id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Not one of ours (malformed, forged, or made with a renewed API key).
    Invalid,
    /// Ours, but not live yet (the configured activation delay).
    NotYetActive,
    /// Ours, past the application's session lifetime.
    Expired,
}

/// A random 32-character API key of lower-case letters and digits, like the portal's.
pub fn random_api_key() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The payment id of an application's `input_ThirdPartyConversationID` (or another
/// client reference, under its own `scope`): the same id for the same reference, so a
/// second request with it is a duplicate by construction, without a lookup that could
/// race. Its simple (dash-less) form is the `output_ConversationID`.
pub fn reference_id(api_user: &Uuid, scope: &str, client_reference: &str) -> Uuid {
    digest_id(&[
        b"mkoba mpesa reference v1:",
        api_user.as_bytes(),
        scope.as_bytes(),
        b":",
        client_reference.as_bytes(),
    ])
}

/// The payment id of a client reference in one environment and market (`place`, e.g.
/// `sandbox/vodacomTZN`), taken when [`reference_id`]'s is held by a payment of another
/// (the same reference used first in the other environment or another market, which are
/// systems of their own): an application's references are its own in each place, and the
/// ids of references used in one place only stay what they always were.
pub fn reference_id_in(api_user: &Uuid, scope: &str, client_reference: &str, place: &str) -> Uuid {
    digest_id(&[
        b"mkoba mpesa reference in place v1:",
        api_user.as_bytes(),
        place.as_bytes(),
        b":",
        scope.as_bytes(),
        b":",
        client_reference.as_bytes(),
    ])
}

/// The first 16 bytes of the SHA-256 of `parts` one after the other, as an id.
fn digest_id(parts: &[&[u8]]) -> Uuid {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// An M-Pesa transaction id for a ledger transfer: 12 characters, an upper-case letter and
/// 11 base-62 digits of a bijective scramble of the transfer id (so ids are unique and do not
/// look consecutive), e.g. `G27DEn1DLoQ3`.
pub fn transaction_id(transfer_id: u64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // An odd multiplier is invertible modulo 2^64; the xor is a bijection too.
    let mut n = transfer_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut out = [0u8; 12];
    out[0] = b'A' + (transfer_id % 26) as u8;
    for slot in out[1..].iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// A mandate's numeric id (`output_MandateID`), derived from its payment id.
pub fn mandate_id(reference_id: &Uuid) -> String {
    let b = reference_id.as_bytes();
    let n = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    (10_000 + n % 9_999_990_000).to_string()
}

/// The `MsisdnToken` that stands for a customer's MSISDN towards one application: 22
/// letters and digits and `==`, like the portal's `cvgwUBZ3lAO9ivwhWAFeng==`.
pub fn msisdn_token(api_user: &Uuid, msisdn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = Sha256::new();
    h.update(b"mkoba msisdn token v1:");
    h.update(api_user.as_bytes());
    h.update(msisdn.as_bytes());
    let digest = h.finalize();
    let mut s: String = digest[..21]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    // The last character before the padding carries 2 bits of the 16th byte and 4 bits
    // that must be zero: one of these four, so that strict base64 decoders take the token.
    s.push(['A', 'Q', 'g', 'w'][usize::from(digest[21]) % 4]);
    s.push_str("==");
    s
}

/// A session id's 16 bytes: the issue time in Unix seconds (5 bytes, so a test clock may
/// run to the year 9999), the developer id (4) and a MAC (7) over both, the application's
/// session lifetime and its API key's hash. The lifetime is under the MAC so that a session
/// keeps the one it was issued with: changing it ends the sessions issued before (they
/// answer 401 INS-6, as an expired one does, and a client asks for a new one), where a
/// longer lifetime would otherwise bring expired sessions back.
const SESSION_TIME: usize = 5;
const SESSION_MAC: usize = 7;

/// Parses a session id into (developer id, issue time in Unix seconds, MAC), without
/// checking the MAC.
fn decode_session(session: &str) -> Option<(i64, u64, [u8; SESSION_MAC])> {
    let s = session.as_bytes();
    if s.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in s.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        bytes[i] = (hi * 16 + lo) as u8;
    }
    let (time, rest) = bytes.split_at(SESSION_TIME);
    let (developer, mac) = rest.split_at(4);
    let issued = time.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
    let developer = u32::from_be_bytes(developer.try_into().ok()?);
    Some((i64::from(developer), issued, mac.try_into().ok()?))
}

impl Platform {
    fn session_mac(&self, app: &MpesaApp, issued: u64, environment: &str) -> [u8; SESSION_MAC] {
        let mut data = Vec::with_capacity(60);
        data.extend_from_slice(&issued.to_be_bytes());
        data.extend_from_slice(&(app.developer_id as u32).to_be_bytes());
        data.extend_from_slice(&app.session_lifetime_secs.to_be_bytes());
        data.extend_from_slice(&app.api_key_hash);
        // The gateway's environment (`sandbox`, `openapi`): a session of one is not one of
        // the other, as the real gateways are two.
        data.extend_from_slice(environment.as_bytes());
        let full = self.inner.signer.mac("mpesa session v3", &data);
        let mut mac = [0u8; SESSION_MAC];
        mac.copy_from_slice(&full[..SESSION_MAC]);
        mac
    }
}

impl MpesaApps<'_> {
    /// A new session id for the application (`getSession`) on the gateway of `environment`.
    pub fn issue_session(self, app: &MpesaApp, environment: &str) -> String {
        // Test clocks run from 1970 to 9999: the time fits its 5 bytes.
        let issued = (self.clocks().now_for(&app.api_user).max(0) / 1000) as u64;
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&issued.to_be_bytes()[8 - SESSION_TIME..]);
        bytes.extend_from_slice(&(app.developer_id as u32).to_be_bytes());
        bytes.extend_from_slice(&self.session_mac(app, issued, environment));
        secrets::hex(&bytes)
    }

    /// The application a session id belongs to, if it is live: issued by us for the
    /// application's current API key, at least `activation` ago, and within the
    /// application's session lifetime.
    pub async fn verify_session(
        self,
        session: &str,
        activation: Duration,
        environment: &str,
    ) -> Result<Result<MpesaApp, SessionError>, Internal> {
        let Some((developer, issued, mac)) = decode_session(session) else {
            return Ok(Err(SessionError::Invalid));
        };
        let Some(app) = self.mpesa().app(developer).await? else {
            return Ok(Err(SessionError::Invalid));
        };
        let expected = self.session_mac(&app, issued, environment);
        if expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            return Ok(Err(SessionError::Invalid));
        }
        let issued_ms = issued as i64 * 1000;
        let clocks = self.clocks();
        // Issued on a clock ahead of real time that has since been deleted: it does not
        // outlive the clock (as tokens do not), and it is expired, not "not yet active".
        if clocks.issued_ahead(&app.api_user, issued_ms) {
            return Ok(Err(SessionError::Expired));
        }
        let now = clocks.now_for(&app.api_user);
        // Not yet active in the activation time after its issue; issued after the
        // application's time (before its clock was set in the past) it is active, as a
        // token is, until it expires.
        if (issued_ms..issued_ms + activation.as_millis() as i64).contains(&now) {
            return Ok(Err(SessionError::NotYetActive));
        }
        // The id holds the issue time in whole seconds: count the lifetime from the end of
        // that second, so a session lives at least its lifetime (and at most a second more).
        if now >= issued_ms + 1000 + (app.session_lifetime_secs as i64) * 1000 {
            return Ok(Err(SessionError::Expired));
        }
        Ok(Ok(app))
    }

    /// A developer's application.
    pub async fn app(self, developer_id: i64) -> Result<Option<MpesaApp>, Internal> {
        self.inner
            .reads
            .read(move |r| r.mpesa_app(developer_id))
            .await
    }

    /// The application whose current API key this is.
    pub async fn app_by_key(self, api_key: &str) -> Result<Option<MpesaApp>, Internal> {
        let hash = secrets::hash_key(api_key);
        let app = self
            .inner
            .reads
            .read(move |r| r.mpesa_app_by_key_hash(&hash))
            .await?;
        Ok(app.filter(|a| secrets::hashes_equal(&a.api_key_hash, &hash)))
    }

    /// Issues a new API key for the developer's application (creating the application on
    /// first use) and returns it; the old key stops working at once.
    pub async fn renew_key(self, developer_id: i64) -> Result<String, Internal> {
        let key = random_api_key();
        let hash = secrets::hash_key(&key);
        self.call(
            |reply| {
                Command::Mpesa(MpesaCommand::RenewKey {
                    developer_id,
                    api_key_hash: hash,
                    api_key: Some(key.clone()),
                    reply,
                })
            },
            Err(Internal::Failed),
        )
        .await?;
        Ok(key)
    }

    /// Saves the application's settings (validated by the caller).
    pub async fn save_settings(
        self,
        developer_id: i64,
        settings: MpesaAppSettings,
    ) -> Result<(), Internal> {
        self.call(
            |reply| {
                Command::Mpesa(MpesaCommand::Settings {
                    developer_id,
                    settings,
                    reply,
                })
            },
            Err(Internal::Failed),
        )
        .await
    }
}

impl Payments<'_> {
    /// A payment by its M-Pesa transaction id, whoever owns it (callers check).
    pub async fn by_transaction_id(
        self,
        transaction_id: &str,
    ) -> Result<Option<Payment>, Internal> {
        let transaction_id = transaction_id.to_owned();
        self.inner
            .reads
            .read(move |r| r.payment_by_transaction_id(&transaction_id))
            .await
    }

    /// How much of a payment has been refunded or reversed (not counting failed ones).
    pub async fn refunded_total(self, original: &Uuid) -> Result<i64, Internal> {
        let original = original.to_owned();
        self.inner
            .reads
            .read(move |r| r.refunded_total(&original))
            .await
    }

    /// Waits until the payment is final, `timeout` passes or the server begins to stop
    /// ([`Platform::stop_waiting`]), and returns it as stored then. Register with
    /// [`Payments::watch`] *before* creating the payment so its settlement cannot be
    /// missed.
    pub async fn wait_final(
        self,
        id: &Uuid,
        mut watch: Watch,
        timeout: Duration,
    ) -> Result<Option<Payment>, Internal> {
        if !self
            .payments()
            .get(id)
            .await?
            .is_some_and(|p| p.status.is_final())
        {
            let _ = tokio::time::timeout(timeout, &mut watch.rx).await;
        }
        drop(watch);
        self.payments().get(id).await
    }

    /// A watch that fires once the payment's final state is committed. Dropping it (a
    /// client that went away, a wait that timed out) forgets it. `None` when
    /// [`crate::PlatformConfig::max_waiting`] requests wait already: answer the overload
    /// form at once.
    pub fn watch(self, id: Uuid, developer: i64) -> Option<Watch> {
        // One developer's requests hold at most half of the places, so that one partner
        // waiting on payments that never end cannot refuse everyone's.
        let place = self.inner.waiting.take(developer)?;
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.inner.waiters.lock().expect("waiters lock");
        if self
            .inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // The server is stopping: answer with the payment as it is, at once.
            let _ = tx.send(());
        } else {
            waiters.entry(id).or_default().push(tx);
        }
        drop(waiters);
        Some(Watch {
            rx,
            id,
            waiters: self.inner.waiters.clone(),
            _place: place,
        })
    }

    /// Queues a callback that no settlement produces (the result of an asynchronous query),
    /// delivered and recorded like every other; answered once it is committed.
    /// [`CreateError::Unavailable`] when the writer is overloaded or the store fails.
    pub async fn queue_callback(
        self,
        reference_id: Uuid,
        url: String,
        body: String,
    ) -> Result<(), CreateError> {
        self.call(
            |reply| Command::QueueCallback {
                reference_id,
                url,
                body,
                reply,
            },
            Err(CreateError::Unavailable),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_twelve_alphanumerics_and_distinct() {
        let ids: std::collections::HashSet<String> = (1..50_000).map(transaction_id).collect();
        assert_eq!(ids.len(), 49_999);
        assert!(
            ids.iter()
                .all(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }

    #[test]
    fn references_depend_on_the_application_and_the_scope() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(reference_id(&a, "tx", "x"), reference_id(&a, "tx", "x"));
        assert_ne!(reference_id(&a, "tx", "x"), reference_id(&b, "tx", "x"));
        assert_ne!(
            reference_id(&a, "tx", "x"),
            reference_id(&a, "mandate", "x")
        );
        let here = reference_id_in(&a, "tx", "x", "sandbox/vodacomTZN");
        assert_ne!(here, reference_id(&a, "tx", "x"));
        assert_ne!(here, reference_id_in(&a, "tx", "x", "openapi/vodacomTZN"));
        assert_ne!(here, reference_id_in(&a, "tx", "x", "sandbox/vodafoneGHA"));
        assert_ne!(
            here,
            reference_id_in(&a, "mandate", "x", "sandbox/vodacomTZN")
        );
        assert_eq!(here, reference_id_in(&a, "tx", "x", "sandbox/vodacomTZN"));
    }

    #[test]
    fn msisdn_tokens_match_the_portal_shape() {
        let t = msisdn_token(&Uuid::new_v4(), "000000000001");
        assert_eq!(t.len(), 24);
        assert!(t.ends_with("=="));
        assert!(t[..22].bytes().all(|b| b.is_ascii_alphanumeric()));
        // Canonical base64 of 16 bytes: the bits past the 16th byte are zero.
        for _ in 0..64 {
            let t = msisdn_token(&Uuid::new_v4(), "000000000001");
            let last = t.as_bytes()[21];
            assert!(b"AQgw".contains(&last), "{t}");
        }
    }

    #[test]
    fn api_keys_are_32_lower_case_alphanumerics() {
        let k = random_api_key();
        assert_eq!(k.len(), 32);
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }

    #[test]
    fn session_ids_decode_back() {
        assert_eq!(decode_session("zz"), None);
        let (dev, issued, _) = decode_session("000000000a00000001ffffffffffffff").unwrap();
        assert_eq!((dev, issued), (1, 10));
        // The last second of 9999 (a test clock's end) fits.
        let (_, issued, _) = decode_session("3afff4417f00000001ffffffffffffff").unwrap();
        assert_eq!(issued, 253_402_300_799);
    }
}
