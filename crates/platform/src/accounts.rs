//! A developer account's journey and the mailbox.
//!
//! * **Activation.** A new account is [`AccountStatus::Pending`] until the link of its
//!   activation e-mail is opened, then [`AccountStatus::Phone`] until a phone number is
//!   confirmed with a 6-digit code sent to the virtual phone, then
//!   [`AccountStatus::Active`]. Accounts made before this existed, and the sandbox
//!   developer, are active.
//! * **Links** (activation, e-mail change, password reset, the sandbox mailbox) are signed
//!   claims ([`Portal::link_token`]) under the platform secret: the developer, a subject
//!   the link is bound to and an expiry. Each is checked against the account's current
//!   state when used, which makes it work once: an activation link against a pending
//!   account, an e-mail change against the address it changes from, a reset link against
//!   (a digest of) the password hash it replaces.
//! * **Phone codes** are stored as a MAC under the platform secret, expire after
//!   [`PHONE_CODE_TTL_MS`], allow [`PHONE_CODE_ATTEMPTS`] tries and can be sent again only
//!   after [`PHONE_CODE_INTERVAL_MS`]; the writer checks them, so tries cannot race.
//! * **Mail.** Every message — e-mail or the virtual phone's SMS — is a row of the mailbox
//!   table, written in the same commit as the change it reports. With SMTP configured
//!   ([`crate::PlatformConfig::mail_delivery`]) e-mail rows are queued; a sender (the
//!   server's) claims due rows through the writer ([`Portal::claim_mail`], so two nodes
//!   never claim the same row), sends them and records the outcome
//!   ([`Portal::record_mail`]). Without SMTP they are only kept, for the portal's
//!   mailbox.
//!
//! Every change goes through the single writer, which reads the account as this pass
//! leaves it, so two requests for one account cannot both succeed against a state only one
//! of them saw.

use crate::Portal;
use rand::Rng as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::engine::{Command, PortalCommand};
use crate::portal::{blocking_error, hashing, verify_password};
use crate::secrets::TokenError;
use crate::{Internal, Platform, logged, secrets};

/// How long activation, e-mail change and mailbox links work.
pub const LINK_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a password reset link works.
pub const RESET_TTL_MS: i64 = 3600 * 1000;
/// How long a phone code works.
pub const PHONE_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Tries per phone code.
pub const PHONE_CODE_ATTEMPTS: u32 = 5;
/// The least time between two phone codes for one account.
pub const PHONE_CODE_INTERVAL_MS: i64 = 30 * 1000;
/// The least time between two mails of one kind that a visitor can trigger (activation
/// again, password reset) for one account.
pub const MAIL_INTERVAL_MS: i64 = 60 * 1000;
/// Most messages a mailbox page lists.
pub const MAILBOX_LIMIT: u32 = 50;

/// How long a verified operator credential is remembered: the admin endpoints take HTTP
/// Basic on every call, and each verification is an Argon2 hash.
pub const OPERATOR_CREDENTIAL_TTL_MS: i64 = 60_000;
/// Most operator credentials remembered at once.
pub const OPERATOR_CREDENTIALS_CACHED: usize = 64;

/// Operator credentials verified lately: MAC of `email \0 password` → (developer id,
/// expiry). Bounded; only right credentials of active operators go in.
#[derive(Default)]
pub(crate) struct CredentialCache(
    std::sync::Mutex<std::collections::HashMap<[u8; 32], (i64, i64)>>,
);

/// Where a developer account is in its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// Signed up; the activation link has not been opened.
    Pending,
    /// E-mail confirmed; the phone number is not.
    Phone,
    Active,
    /// Deleted by its developer: no sign-in, keys revoked, history kept.
    Deleted,
    /// Deactivated by an operator: no sign-in, keys replaced; an operator can reactivate
    /// it (the developer then finds new keys in the portal).
    Deactivated,
}

impl AccountStatus {
    /// Taken away by an operator or by its owner: its keys were replaced by ones nobody may
    /// hold, so nothing prints them.
    pub fn withdrawn(self) -> bool {
        matches!(self, AccountStatus::Deactivated | AccountStatus::Deleted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Pending => "pending",
            AccountStatus::Phone => "phone",
            AccountStatus::Active => "active",
            AccountStatus::Deleted => "deleted",
            AccountStatus::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<AccountStatus> {
        Some(match s {
            "pending" => AccountStatus::Pending,
            "phone" => AccountStatus::Phone,
            "active" => AccountStatus::Active,
            "deleted" => AccountStatus::Deleted,
            "deactivated" => AccountStatus::Deactivated,
            _ => return None,
        })
    }
}

/// What an account may do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AccountRole {
    /// Keys, API users, payments: the developer's own objects only.
    #[default]
    Developer,
    /// The platform's staff: reviews go-live requests, lists and deactivates accounts,
    /// reads every mailbox; owns no keys or payments.
    Operator,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Developer => "developer",
            AccountRole::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<AccountRole> {
        match s {
            "developer" => Some(AccountRole::Developer),
            "operator" => Some(AccountRole::Operator),
            _ => None,
        }
    }
}

/// A developer account as the writer changes it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub developer_id: i64,
    pub email: String,
    pub name: String,
    /// Argon2id, PHC string (`!` for a deleted account: nothing verifies against it).
    pub password_hash: String,
    pub status: AccountStatus,
    /// The confirmed phone number (digits, international form).
    pub phone: Option<String>,
}

impl std::fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("developer_id", &self.developer_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The code sent to confirm a phone number.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneCode {
    pub developer_id: i64,
    pub msisdn: String,
    /// MAC of the code under the platform secret (see [`Portal::phone_code_mac`]).
    pub code_mac: [u8; 32],
    pub sent_at_ms: i64,
    pub expires_at_ms: i64,
    /// Wrong tries so far.
    pub attempts: u32,
}

impl std::fmt::Debug for PhoneCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneCode")
            .field("developer_id", &self.developer_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailChannel {
    Email,
    /// To the virtual phone: never leaves the platform.
    Sms,
}

impl MailChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            MailChannel::Email => "email",
            MailChannel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<MailChannel> {
        match s {
            "email" => Some(MailChannel::Email),
            "sms" => Some(MailChannel::Sms),
            _ => None,
        }
    }
}

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// The activation link.
    Activation,
    /// The link that confirms a new address.
    EmailChange,
    /// To the old address: the e-mail was changed.
    EmailChanged,
    /// The forgot-password link.
    PasswordReset,
    /// A go-live request was received, approved or rejected (to its developer), or waits
    /// for review (to the operators).
    GoLive,
    /// The password was changed or reset.
    PasswordChanged,
    /// The 6-digit code (SMS).
    PhoneCode,
    AccountDeleted,
    Notice,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Activation => "activation",
            MailKind::EmailChange => "email_change",
            MailKind::EmailChanged => "email_changed",
            MailKind::PasswordReset => "password_reset",
            MailKind::GoLive => "go_live",
            MailKind::PasswordChanged => "password_changed",
            MailKind::PhoneCode => "phone_code",
            MailKind::AccountDeleted => "account_deleted",
            MailKind::Notice => "notice",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        Some(match s {
            "activation" => MailKind::Activation,
            "email_change" => MailKind::EmailChange,
            "email_changed" => MailKind::EmailChanged,
            "password_reset" => MailKind::PasswordReset,
            "go_live" => MailKind::GoLive,
            "password_changed" => MailKind::PasswordChanged,
            "phone_code" => MailKind::PhoneCode,
            "account_deleted" => MailKind::AccountDeleted,
            "notice" => MailKind::Notice,
            _ => return None,
        })
    }

    /// Whether the message carries a link or code that proves control of its recipient
    /// (the portal shows those to the account only in sandbox mode).
    pub fn carries_secret(self) -> bool {
        matches!(
            self,
            MailKind::Activation | MailKind::EmailChange | MailKind::PasswordReset
        )
    }
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailState {
    /// Kept in the mailbox only (no SMTP configured, or an SMS).
    Kept,
    /// Waiting for the SMTP sender.
    Queued,
    /// Claimed by a sender until `next_attempt_at_ms` (then due again).
    Sending,
    Sent,
    /// Given up.
    Failed,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Kept => "kept",
            MailState::Queued => "queued",
            MailState::Sending => "sending",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<MailState> {
        Some(match s {
            "kept" => MailState::Kept,
            "queued" => MailState::Queued,
            "sending" => MailState::Sending,
            "sent" => MailState::Sent,
            "failed" => MailState::Failed,
            _ => return None,
        })
    }
}

/// A message to send.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The account it concerns (its mailbox lists it).
    pub developer_id: i64,
    pub channel: MailChannel,
    pub kind: MailKind,
    /// An e-mail address, or an MSISDN for an SMS.
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for NewMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("developer_id", &self.developer_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A message in the mailbox.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub id: i64,
    pub developer_id: i64,
    pub channel: MailChannel,
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at_ms: i64,
    pub state: MailState,
    /// SMTP attempts so far.
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub sent_at_ms: Option<i64>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("id", &self.id)
            .field("developer_id", &self.developer_id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Which messages to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFilter {
    /// Of this account only (`None`: every account's, for the operator).
    pub developer_id: Option<i64>,
    /// To this recipient only (compared as stored: lower-case e-mail, MSISDN digits).
    pub recipient: Option<String>,
    pub channel: Option<MailChannel>,
    pub kind: Option<MailKind>,
    pub limit: u32,
}

impl MailFilter {
    /// Every message of an account (up to [`MAILBOX_LIMIT`]).
    pub fn of(developer_id: i64) -> MailFilter {
        MailFilter {
            developer_id: Some(developer_id),
            recipient: None,
            channel: None,
            kind: None,
            limit: MAILBOX_LIMIT,
        }
    }
}

/// The outcome of one SMTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Try again at this time.
    Retry {
        at_ms: i64,
        error: String,
    },
    /// Give up.
    Failed {
        error: String,
    },
}

/// A link's purpose: a token made for one is refused by the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Subject: the e-mail address signed up with.
    Activate,
    /// Subject: `old address` + `\n` + `new address`.
    ChangeEmail,
    /// Subject: [`password_digest`] of the hash the new password replaces.
    ResetPassword,
    /// Subject: the recipient whose mail may be read (sandbox mode).
    Mailbox,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Activate => "account activate",
            LinkPurpose::ChangeEmail => "account change email",
            LinkPurpose::ResetPassword => "account reset password",
            LinkPurpose::Mailbox => "account mailbox",
        }
    }
}

/// What a link token says.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub developer_id: i64,
    pub subject: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for LinkClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkClaims")
            .field("developer_id", &self.developer_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// What an account change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOutcome {
    Done,
    /// Nothing to do: it was done before (an activation link opened twice).
    AlreadyDone,
}

/// Why an account change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("no such account")]
    NotFound,
    #[error("the account is not at that step")]
    WrongState,
    /// The link or form was made for a state that has changed since (a used link).
    #[error("the account changed since")]
    Stale,
    #[error("the password is wrong")]
    WrongPassword,
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("too soon: wait {wait_ms} ms")]
    TooSoon { wait_ms: i64 },
    #[error("wrong code")]
    WrongCode { attempts_left: u32 },
    /// Expired, or out of tries: ask for a new one.
    #[error("the code expired")]
    CodeExpired,
    #[error("no code was sent")]
    NoCode,
    #[error("internal error")]
    Internal,
    /// The writer's queue is full, or its commit failed: nothing was done; try again.
    #[error("the platform is busy; try again")]
    Busy,
}

/// Every reader busy, or the store failing for now (a lost database, a full disk, a failed
/// commit): nothing was done; try again.
impl From<crate::Internal> for AccountError {
    fn from(e: crate::Internal) -> AccountError {
        match e {
            crate::Internal::Busy | crate::Internal::Failed => AccountError::Busy,
        }
    }
}

/// A change for the writer to check against the account as this pass leaves it.
pub(crate) enum AccountChange {
    Activate {
        email: String,
    },
    SetName {
        name: String,
    },
    ChangeEmail {
        from: String,
        to: String,
        notice: Option<NewMail>,
    },
    SetPassword {
        /// The hash the caller verified (or the reset link names), replaced only if it is
        /// still the current one.
        expected_hash: String,
        new_hash: String,
        /// Sessions of the developer end, except this one (a hash of its id).
        keep_session: Option<[u8; 32]>,
        notice: Option<NewMail>,
    },
    /// A code to a phone number: the last step of sign-up, or (`changing`) a new number
    /// for an active account.
    StartPhone {
        msisdn: String,
        code_mac: [u8; 32],
        sms: NewMail,
        changing: bool,
    },
    /// The right code makes the number the active account's.
    ChangePhone {
        code_mac: [u8; 32],
        notice: Option<NewMail>,
    },
    VerifyPhone {
        code_mac: [u8; 32],
        /// The M-Pesa application's first API key the developer sees.
        api_key: String,
    },
    Delete {
        expected_hash: String,
        goodbye: Option<NewMail>,
    },
    /// An operator stops the account (sign-in, sessions, keys), or lets it in again.
    SetActive {
        active: bool,
        notice: Option<NewMail>,
    },
}

/// A short digest of a password hash, bound into reset links (so a link works until the
/// password changes, once).
pub fn password_digest(hash: &str) -> String {
    let d = Sha256::digest(hash.as_bytes());
    secrets::hex(&d[..12])
}

/// A phone number as typed (`+255 712-345 678`) to its digits in international form
/// (`255712345678`): an optional `+`, then 8 to 15 digits, spaces, dots, dashes and
/// parentheses allowed between them; the first digit is not 0.
pub fn normalize_phone(input: &str) -> Option<String> {
    let s = input.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.len() > 40 {
        return None;
    }
    let mut digits = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return None;
    }
    Some(digits)
}

/// Six random digits.
fn phone_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

impl Platform {
    pub(crate) async fn account_change(
        &self,
        developer_id: i64,
        change: AccountChange,
    ) -> Result<AccountOutcome, AccountError> {
        let result = self
            .call(
                |reply| {
                    Command::Portal(PortalCommand::Account {
                        developer_id,
                        change,
                        reply,
                    })
                },
                Err(AccountError::Busy),
            )
            .await;
        // Whatever it queued may be for the SMTP sender.
        self.inner.mail_wake.notify_one();
        result
    }

    async fn hash_new_password(&self, password: &str) -> Result<String, AccountError> {
        let password = password.to_owned();
        hashing(move || crate::portal::hash_password(&password))
            .await
            .map_err(blocking_error)
            .and_then(|r| r)
            .map_err(|e| {
                tracing::error!(error = %e, "hashing a password failed");
                AccountError::Internal
            })
    }
}

impl Portal<'_> {
    /// A signed link token for `purpose`, bound to a developer and a subject, valid until
    /// `expires_at_ms`.
    pub fn link_token(
        self,
        purpose: LinkPurpose,
        developer_id: i64,
        subject: &str,
        expires_at_ms: i64,
    ) -> String {
        self.credentials().sign_claims(
            purpose.as_str(),
            &json!({"d": developer_id, "s": subject, "x": expires_at_ms}),
        )
    }

    /// The claims of a link token made for `purpose`, if it is ours and not expired.
    pub fn check_link(self, purpose: LinkPurpose, token: &str) -> Result<LinkClaims, LinkError> {
        if token.len() > 2048 {
            return Err(LinkError::Invalid);
        }
        let claims = self
            .credentials()
            .verify_claims(purpose.as_str(), token)
            .map_err(|_: TokenError| LinkError::Invalid)?;
        let (Some(developer_id), Some(subject), Some(expires_at_ms)) = (
            claims["d"].as_i64(),
            claims["s"].as_str(),
            claims["x"].as_i64(),
        ) else {
            return Err(LinkError::Invalid);
        };
        if self.now_ms() >= expires_at_ms {
            return Err(LinkError::Expired);
        }
        Ok(LinkClaims {
            developer_id,
            subject: subject.to_owned(),
            expires_at_ms,
        })
    }

    /// An account by (lower-case) e-mail, with the [`password_digest`] a reset link binds.
    pub async fn account_by_email(
        self,
        email: &str,
    ) -> Result<Option<(crate::portal::DeveloperAccount, String)>, Internal> {
        let email = email.trim().to_lowercase();
        let email = email.to_owned();
        Ok(self
            .inner
            .portal_reads
            .read(move |r| r.developer_by_email(&email))
            .await?
            .map(|(account, hash)| (account, password_digest(&hash))))
    }

    /// The [`password_digest`] of an account's current password hash.
    pub async fn password_digest_of(self, developer_id: i64) -> Result<Option<String>, Internal> {
        Ok(self
            .inner
            .portal_reads
            .read(move |r| r.developer_password_hash(developer_id))
            .await?
            .map(|h| password_digest(&h)))
    }

    /// The MAC a phone code is stored as.
    pub fn phone_code_mac(self, developer_id: i64, code: &str) -> [u8; 32] {
        let mut data = developer_id.to_be_bytes().to_vec();
        data.extend_from_slice(code.trim().as_bytes());
        self.inner.signer.mac("phone code v1", &data)
    }

    /// Opens an activation link's account: a pending account with this e-mail goes on to
    /// the phone step.
    pub async fn activate_email(
        self,
        developer_id: i64,
        email: &str,
    ) -> Result<AccountOutcome, AccountError> {
        let email = email.to_owned();
        self.account_change(developer_id, AccountChange::Activate { email })
            .await
    }

    /// Changes an active account's name.
    pub async fn set_name(self, developer_id: i64, name: &str) -> Result<(), AccountError> {
        let name = name.trim().to_owned();
        self.account_change(developer_id, AccountChange::SetName { name })
            .await
            .map(|_| ())
    }

    /// Changes an active account's e-mail from `from` to `to` (a confirmed change link),
    /// telling the old address with `notice`.
    pub async fn change_email(
        self,
        developer_id: i64,
        from: &str,
        to: &str,
        notice: Option<NewMail>,
    ) -> Result<(), AccountError> {
        let (from, to) = (from.to_lowercase(), to.trim().to_lowercase());
        self.account_change(
            developer_id,
            AccountChange::ChangeEmail { from, to, notice },
        )
        .await
        .map(|_| ())
    }

    /// The account's password hash if `password` verifies against it (one Argon2
    /// verification, on a blocking thread).
    pub async fn check_password(
        self,
        developer_id: i64,
        password: &str,
    ) -> Result<Option<String>, Internal> {
        let Some(hash) = self
            .inner
            .portal_reads
            .read(move |r| r.developer_password_hash(developer_id))
            .await?
        else {
            return Ok(None);
        };
        let password = password.to_owned();
        let checked = hash.clone();
        let ok = hashing(move || verify_password(&password, &checked))
            .await
            .map_err(|e| logged(blocking_error(e)))?;
        Ok(ok.then_some(hash))
    }

    /// Changes the password after checking the current one; every session of the developer
    /// but `keep_session` (a session id) ends.
    pub async fn change_password(
        self,
        developer_id: i64,
        current: &str,
        new: &str,
        keep_session: Option<&str>,
        notice: Option<NewMail>,
    ) -> Result<(), AccountError> {
        let Some(expected_hash) = self
            .portal()
            .check_password(developer_id, current)
            .await
            .map_err(AccountError::from)?
        else {
            return Err(AccountError::WrongPassword);
        };
        let new_hash = self.hash_new_password(new).await?;
        let change = AccountChange::SetPassword {
            expected_hash,
            new_hash,
            keep_session: keep_session.map(secrets::hash_key),
            notice,
        };
        self.account_change(developer_id, change).await.map(|_| ())
    }

    /// Sets a new password from a reset link naming the digest of the hash it replaces;
    /// every session of the developer ends. `Stale` once the password has changed (the
    /// link was used).
    pub async fn reset_password(
        self,
        developer_id: i64,
        digest: &str,
        new: &str,
        notice: Option<NewMail>,
    ) -> Result<(), AccountError> {
        let Some(expected_hash) = self
            .inner
            .portal_reads
            .read(move |r| r.developer_password_hash(developer_id))
            .await
            .map_err(AccountError::from)?
        else {
            return Err(AccountError::NotFound);
        };
        if password_digest(&expected_hash) != digest {
            return Err(AccountError::Stale);
        }
        let new_hash = self.hash_new_password(new).await?;
        let change = AccountChange::SetPassword {
            expected_hash,
            new_hash,
            keep_session: None,
            notice,
        };
        self.account_change(developer_id, change).await.map(|_| ())
    }

    /// Sends a new 6-digit code to the virtual phone `msisdn` (an SMS in the mailbox) for
    /// an account at the phone step.
    pub async fn start_phone_verification(
        self,
        developer_id: i64,
        msisdn: &str,
    ) -> Result<(), AccountError> {
        self.send_phone_code(developer_id, msisdn, false).await
    }

    /// Sends a code to a new phone number of an active account (My profile): the number
    /// becomes the account's once the code comes back ([`Platform::change_phone`]).
    pub async fn start_phone_change(
        self,
        developer_id: i64,
        msisdn: &str,
    ) -> Result<(), AccountError> {
        self.send_phone_code(developer_id, msisdn, true).await
    }

    /// Checks the code of a phone number change; the right one makes the number the
    /// account's, and `notice` (to the account's e-mail address) says so.
    pub async fn change_phone(
        self,
        developer_id: i64,
        code: &str,
        notice: Option<NewMail>,
    ) -> Result<(), AccountError> {
        let change = AccountChange::ChangePhone {
            code_mac: self.portal().phone_code_mac(developer_id, code),
            notice,
        };
        self.account_change(developer_id, change).await.map(|_| ())
    }

    async fn send_phone_code(
        self,
        developer_id: i64,
        msisdn: &str,
        changing: bool,
    ) -> Result<(), AccountError> {
        let code = phone_code();
        let sms = NewMail {
            developer_id,
            channel: MailChannel::Sms,
            kind: MailKind::PhoneCode,
            recipient: msisdn.to_owned(),
            subject: "Mkoba verification code".to_owned(),
            body: format!(
                "Your Mkoba verification code is {code}. It expires in {} minutes. Do not share it.",
                PHONE_CODE_TTL_MS / 60_000
            ),
        };
        let change = AccountChange::StartPhone {
            msisdn: msisdn.to_owned(),
            code_mac: self.portal().phone_code_mac(developer_id, &code),
            sms,
            changing,
        };
        self.account_change(developer_id, change).await.map(|_| ())
    }

    /// Checks a phone code; the right one makes the account active and issues the first
    /// API key of its M-Pesa application (created at sign-up), returned to be shown once.
    pub async fn verify_phone(self, developer_id: i64, code: &str) -> Result<String, AccountError> {
        let key = crate::mpesa::random_api_key();
        let change = AccountChange::VerifyPhone {
            code_mac: self.portal().phone_code_mac(developer_id, code),
            api_key: key.clone(),
        };
        match self.account_change(developer_id, change).await? {
            AccountOutcome::Done => Ok(key),
            AccountOutcome::AlreadyDone => Err(AccountError::WrongState),
        }
    }

    /// Deletes an account after checking its password: sign-in stops, sessions end, API
    /// keys are revoked and subscription and M-Pesa keys replaced by ones nobody holds;
    /// API users, payments and the ledger stay. `goodbye` goes to the old address.
    pub async fn delete_account(
        self,
        developer_id: i64,
        password: &str,
        goodbye: Option<NewMail>,
    ) -> Result<(), AccountError> {
        let Some(expected_hash) = self
            .portal()
            .check_password(developer_id, password)
            .await
            .map_err(AccountError::from)?
        else {
            return Err(AccountError::WrongPassword);
        };
        self.account_change(
            developer_id,
            AccountChange::Delete {
                expected_hash,
                goodbye,
            },
        )
        .await
        .map(|_| ())
    }

    /// An operator deactivates an account (sign-in stops, sessions end, subscription and
    /// M-Pesa keys are replaced by ones nobody holds, API keys revoked) or reactivates it
    /// (sign-in works again; the developer finds new keys in the portal). `notice` tells
    /// the developer.
    pub async fn set_account_active(
        self,
        developer_id: i64,
        active: bool,
        notice: Option<NewMail>,
    ) -> Result<AccountOutcome, AccountError> {
        self.account_change(developer_id, AccountChange::SetActive { active, notice })
            .await
    }

    /// The active operator whose e-mail and password these are (the admin endpoints' HTTP
    /// Basic credentials). Right answers are remembered for
    /// [`OPERATOR_CREDENTIAL_TTL_MS`], so a monitoring poll costs one Argon2 verification a
    /// minute; wrong ones are verified every time (through the bounded hashing pool).
    pub async fn operator_by_credentials(
        self,
        email: &str,
        password: &str,
    ) -> Result<Option<i64>, Internal> {
        let email = email.trim().to_lowercase();
        let mut data = email.as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(password.as_bytes());
        let mac = self.inner.signer.mac("operator credential v1", &data);
        let now = self.now_ms();
        {
            let cache = self
                .inner
                .operator_credentials
                .0
                .lock()
                .expect("credential cache");
            if let Some((id, until)) = cache.get(&mac)
                && *until > now
            {
                return Ok(Some(*id));
            }
        }
        let Some(id) = self.portal().sign_in(&email, password).await? else {
            return Ok(None);
        };
        let operator =
            self.portal().developer(id).await?.is_some_and(|d| {
                d.role == AccountRole::Operator && d.status == AccountStatus::Active
            });
        if !operator {
            return Ok(None);
        }
        let mut cache = self
            .inner
            .operator_credentials
            .0
            .lock()
            .expect("credential cache");
        cache.retain(|_, (_, until)| *until > now);
        if cache.len() >= OPERATOR_CREDENTIALS_CACHED {
            cache.clear();
        }
        cache.insert(mac, (id, now + OPERATOR_CREDENTIAL_TTL_MS));
        Ok(Some(id))
    }

    /// Accounts for the operator's list, newest first, and how many match.
    pub async fn accounts(
        self,
        filter: &crate::portal::AccountFilter,
    ) -> Result<(Vec<crate::portal::DeveloperAccount>, u64), Internal> {
        let mut filter = filter.clone();
        filter.limit = filter.limit.clamp(1, 500);
        let filter = filter.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.accounts(&filter))
            .await
    }

    /// The operator created at first start and its password, while unchanged (printed in
    /// the banner).
    pub async fn operator_login(self) -> Result<Option<crate::portal::SandboxLogin>, Internal> {
        self.inner
            .portal_reads
            .read(move |r| r.operator_login())
            .await
    }

    /// Puts a message into the mailbox (and the SMTP queue when configured).
    pub async fn queue_mail(self, mail: NewMail) -> Result<(), Internal> {
        let result = self
            .call(
                |reply| Command::Portal(PortalCommand::QueueMail { mail, reply }),
                Err(Internal::Failed),
            )
            .await;
        self.inner.mail_wake.notify_one();
        result
    }

    /// Messages of one account, newest first.
    pub async fn mailbox(self, filter: &MailFilter) -> Result<Vec<Mail>, Internal> {
        let mut filter = filter.clone();
        filter.limit = filter.limit.clamp(1, 500);
        let filter = filter.to_owned();
        self.inner.portal_reads.read(move |r| r.mail(&filter)).await
    }

    /// Whether a message of `kind` went to the account within `within_ms`.
    /// Queues `mail` unless one of its kind went to its account within `within_ms` (so
    /// asking again and again sends at most one a minute, say): whether it was queued.
    pub async fn queue_mail_unless_recent(
        self,
        mail: NewMail,
        within_ms: i64,
    ) -> Result<bool, Internal> {
        if self
            .mailed_recently(mail.developer_id, mail.kind, within_ms)
            .await?
        {
            return Ok(false);
        }
        self.queue_mail(mail).await?;
        Ok(true)
    }

    pub async fn mailed_recently(
        self,
        developer_id: i64,
        kind: MailKind,
        within_ms: i64,
    ) -> Result<bool, Internal> {
        let last = self
            .portal()
            .mailbox(&MailFilter {
                developer_id: Some(developer_id),
                recipient: None,
                channel: None,
                kind: Some(kind),
                limit: 1,
            })
            .await?;
        Ok(last
            .first()
            .is_some_and(|m| m.created_at_ms > self.now_ms() - within_ms))
    }

    /// The code an account at the phone step was sent last, if any.
    pub async fn phone_code_of(self, developer_id: i64) -> Result<Option<PhoneCode>, Internal> {
        self.inner
            .portal_reads
            .read(move |r| r.phone_code(developer_id))
            .await
    }

    /// Claims up to `limit` queued e-mails that are due, for `lease_ms` (a sender that
    /// stops makes them due again then). Through the writer, so with several nodes exactly
    /// one claims each.
    pub async fn claim_mail(self, limit: u32, lease_ms: i64) -> Vec<Mail> {
        self.call(
            |reply| {
                Command::Portal(PortalCommand::ClaimMail {
                    limit: limit.max(1),
                    lease_ms: lease_ms.max(1),
                    reply,
                })
            },
            Vec::new(),
        )
        .await
    }

    /// Records the outcome of sending a claimed e-mail.
    pub async fn record_mail(self, mail: &Mail, outcome: MailOutcome) -> Result<(), Internal> {
        let id = mail.id;
        let attempts = mail.attempts + 1;
        self.call(
            |reply| {
                Command::Portal(PortalCommand::MailResult {
                    id,
                    attempts,
                    outcome,
                    reply,
                })
            },
            Err(Internal::Failed),
        )
        .await
    }

    /// Waits until mail may have been queued (or `timeout` passes): the SMTP sender's
    /// nudge.
    pub async fn mail_queued(self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.mail_wake.notified()).await;
    }
}

/// A reply channel for the writer's account work.
pub(crate) type AccountReply = oneshot::Sender<Result<AccountOutcome, AccountError>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_digits_in_international_form() {
        assert_eq!(
            normalize_phone("+255 712-345 678").as_deref(),
            Some("255712345678")
        );
        assert_eq!(
            normalize_phone("(256) 772.000.001").as_deref(),
            Some("256772000001")
        );
        for bad in [
            "",
            "1234567",
            "0712345678",
            "+255 71a",
            "1234567890123456",
            "++255712345678",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_kinds_and_states_round_trip() {
        for s in [
            AccountStatus::Pending,
            AccountStatus::Phone,
            AccountStatus::Active,
            AccountStatus::Deleted,
        ] {
            assert_eq!(AccountStatus::parse(s.as_str()), Some(s));
        }
        for k in [
            MailKind::Activation,
            MailKind::EmailChange,
            MailKind::EmailChanged,
            MailKind::PasswordReset,
            MailKind::PasswordChanged,
            MailKind::PhoneCode,
            MailKind::AccountDeleted,
            MailKind::Notice,
        ] {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
        for s in [
            MailState::Kept,
            MailState::Queued,
            MailState::Sending,
            MailState::Sent,
            MailState::Failed,
        ] {
            assert_eq!(MailState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn password_digests_differ_per_hash() {
        assert_eq!(password_digest("a"), password_digest("a"));
        assert_ne!(password_digest("a"), password_digest("b"));
        assert_eq!(password_digest("a").len(), 24);
    }

    #[test]
    fn phone_codes_are_six_digits() {
        for _ in 0..100 {
            let c = phone_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
