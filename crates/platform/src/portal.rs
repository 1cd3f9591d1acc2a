//! What the developer portal needs from the platform: developer accounts with passwords,
//! sign-in sessions, subscriptions, API users and keys seen per developer, payments listed
//! and aggregated per developer, callback re-sends and the virtual phone (payments that wait
//! for the payer's approval).
//!
//! Writes go through the single writer like every other change ([`PortalWrite`] rows ride
//! in the same [`crate::store::Batch`]); reads go to the store through
//! [`PortalReader`]. Everything is scoped to one developer account: a method that takes a
//! developer id never returns another developer's data.

use crate::Portal;
use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::accounts::{
    AccountRecord, AccountRole, AccountStatus, Mail, MailFilter, MailState, NewMail, PhoneCode,
};
use crate::engine::Command;
pub(crate) use crate::engine::PortalCommand;
use crate::model::{
    ApiUser, KeySlot, Party, PartyIdType, Payment, PaymentKind, PaymentStatus, Product,
    SubscriptionKey, WidgetSettings,
};
use crate::store::{Batch, Journal, StoreError};
use crate::{CreateError, Internal, Platform, logged, secrets};

/// The sign-in e-mail of the sandbox developer account created at first start.
pub const SANDBOX_EMAIL: &str = "sandbox@mkoba.local";

/// How long a portal session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A developer account as the portal shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperAccount {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// Collections from MSISDN payers wait on the virtual phone instead of settling.
    pub approval_mode: bool,
    pub created_at_ms: i64,
    /// Where the account is in its journey (only active accounts use the portal).
    pub status: AccountStatus,
    /// The confirmed phone number (international digits).
    pub phone: Option<String>,
    pub role: AccountRole,
}

impl DeveloperAccount {
    pub fn is_operator(&self) -> bool {
        self.role == AccountRole::Operator
    }
}

/// Which accounts an operator lists, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// A substring of the e-mail address (lower case).
    pub email: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// A signed-in browser session (looked up by the hash of its cookie value).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub developer_id: i64,
    /// The synchronizer token every form of this session carries.
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("developer_id", &self.developer_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// The sandbox developer's sign-in, printed at start like its subscription keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxLogin {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for SandboxLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxLogin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// An API key's bookkeeping (the key itself is only ever stored as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub api_user: Uuid,
    /// The key's last characters; `None` for a key made before they were kept
    /// (2026-12-07).
    pub ending: Option<String>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Which payments of a developer to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub developer_id: i64,
    pub product: Option<Product>,
    pub kind: Option<PaymentKind>,
    pub status: Option<PaymentStatus>,
    /// A substring of the party id.
    pub party: Option<String>,
    /// A reference id, external id or financial transaction id, exactly.
    pub reference: Option<String>,
    pub api_user: Option<Uuid>,
    /// Created at or after (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Created before (ms since the epoch).
    pub to_ms: Option<i64>,
    /// Only the sandbox's (MoMo's `sandbox` target environment, M-Pesa's `sandbox`: a
    /// go-live report counts those), or only production's (every other environment).
    pub environment: Option<Environments>,
    pub limit: u32,
    /// Payments to skip, where neither [`PaymentFilter::after`] nor
    /// [`PaymentFilter::before`] is given.
    pub offset: u32,
    /// Only the payments after this one in page order (a key a page or run gave,
    /// [`PaymentPage::next`]): a page or run starts there instead of at `offset`, found in
    /// the index, so that going on costs the same however deep, and payments made
    /// meanwhile neither push one already seen onto the next page nor skip one. A key
    /// another store made matches nothing.
    pub after: Option<PageKey>,
    /// Only the payments before this one in page order (a key a page gave,
    /// [`PaymentPage::first`]): the `limit` nearest to it, still listed newest first — the
    /// page before, found in the index as [`PaymentFilter::after`] finds the page after.
    pub before: Option<PageKey>,
    /// Only this payment and those before it in page order (newer): the oldest payment a
    /// search reads ([`Portal::search_window`]).
    pub until: Option<PageKey>,
    /// Only the payments after this one in page order (older), as a condition of the
    /// filter (counted, unlike [`PaymentFilter::after`]): where a search was continued
    /// from, the end of the window before.
    pub older_than: Option<PageKey>,
}

/// The two sides of the platform a filter can keep to: the sandbox (the environment
/// `sandbox`, MoMo's and M-Pesa's) and production (every other: M-Pesa's `openapi`, MoMo's
/// markets such as `mtnuganda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environments {
    Sandbox,
    Production,
}

impl Environments {
    pub const ALL: [Environments; 2] = [Environments::Sandbox, Environments::Production];

    /// How a filter's choices name it.
    pub fn label(self) -> &'static str {
        match self {
            Environments::Sandbox => "Sandbox",
            Environments::Production => "Production (openapi, MoMo markets)",
        }
    }

    /// The filter's value in a link: `sandbox` or `production`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environments::Sandbox => "sandbox",
            Environments::Production => "production",
        }
    }

    pub fn parse(s: &str) -> Option<Environments> {
        match s {
            "sandbox" => Some(Environments::Sandbox),
            "production" => Some(Environments::Production),
            _ => None,
        }
    }

    /// Whether a payment of this environment is on this side ([`Environments::sql`] in
    /// memory).
    pub fn holds(self, environment: &str) -> bool {
        (environment == crate::SANDBOX) == (self == Environments::Sandbox)
    }

    /// The SQL condition on a payment `p` (both stores write it alike).
    pub fn sql(self) -> &'static str {
        match self {
            Environments::Sandbox => "p.environment = 'sandbox'",
            Environments::Production => "p.environment <> 'sandbox'",
        }
    }
}

/// Most payments a search reads, the newest of its range (API user, dates): a filter that
/// no index serves reads each payment, so its cost has this bound whatever the database
/// holds ([`Portal::search_window`]).
pub const SEARCH_MAX: u32 = 100_000;

impl PaymentFilter {
    /// Whether a condition no index serves narrows it (API, operation, status, party,
    /// reference), so that it reads each payment of its range.
    pub fn searches(&self) -> bool {
        self.product.is_some()
            || self.kind.is_some()
            || self.environment.is_some()
            || self.status.is_some()
            || self.party.is_some()
            || self.reference.is_some()
    }

    /// Its range alone: the developer, API user, dates and where a continued search starts
    /// (what a search's window is of).
    pub fn range(&self) -> PaymentFilter {
        PaymentFilter {
            developer_id: self.developer_id,
            api_user: self.api_user,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            older_than: self.older_than.clone(),
            ..PaymentFilter::default()
        }
    }
}

/// The most API users the portal lists of a developer: the newest
/// ([`Portal::api_users_of`]).
pub const LISTED_API_USERS: usize = 200;

/// Which payments a report counts: a developer's created since `from_ms` (where its time
/// slots start), narrowed to one API, operation or API user when those are given, and to
/// those created since `since_ms` when the period holds too many ([`REPORT_MAX`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportScope {
    pub developer_id: i64,
    pub from_ms: i64,
    pub product: Option<Product>,
    pub kind: Option<PaymentKind>,
    /// The sandbox's or production's only.
    pub environment: Option<Environments>,
    pub api_user: Option<Uuid>,
    pub since_ms: Option<i64>,
    /// Created before (the period's end): a payment stamped later, on a test clock ahead of
    /// real time, is in none of the report's figures, as it is in none of its slots.
    pub until_ms: Option<i64>,
}

/// Most payments a report reads: past it, the newest this many of its period (of the
/// developer, or of its API user), so that a report's cost has a bound whatever the
/// database holds ([`PortalReader::report_start`]).
pub const REPORT_MAX: u64 = 100_000;

/// The most latency samples of each kind a report reads: the newest, when there are more
/// (a callback may be tried several times, so a period's attempts can outnumber its
/// [`REPORT_MAX`] payments).
pub const LATENCY_SAMPLES: u32 = 200_000;

impl ReportScope {
    /// All of a developer's payments created since `from_ms`.
    pub fn all(developer_id: i64, from_ms: i64) -> ReportScope {
        ReportScope {
            developer_id,
            from_ms,
            ..ReportScope::default()
        }
    }
}

/// Most payments one read of a listing holds ([`PaymentFilter::limit`]): the transactions
/// export reads its rows this many at a time, no caller needs more, and a read's memory has
/// this bound (it was 100,000 while the export read its rows in one query).
pub const PAGE_MAX: u32 = 1_000;

/// One page of payments, newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    /// How many the filter matches in all ([`PaymentFilter::after`] and
    /// [`PaymentFilter::before`] aside).
    pub total: u64,
    /// The key of the page's last payment when the page is full (there may be more).
    pub next: Option<PageKey>,
    /// The key of the page's first payment (for the page before it).
    pub first: Option<PageKey>,
}

/// Where a page or run of payments in page order stopped ([`PaymentFilter::after`]): the
/// last one's creation time and the store's own tie-break among payments of the same
/// millisecond (SQLite: the row's number; PostgreSQL: the reference id). Opaque outside the
/// store that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub created_at_ms: i64,
    pub tie: String,
}

impl PageKey {
    /// The key in a link: `{created_at_ms}.{tie}`.
    pub fn to_param(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.tie)
    }

    /// A key from a link ([`PageKey::to_param`]): `None` unless it has the form the stores
    /// give (a time, then a tie of at most 64 letters, digits, `-` or `_`).
    pub fn parse(param: &str) -> Option<PageKey> {
        let (ms, tie) = param.split_once('.')?;
        let tie_ok = (1..=64).contains(&tie.len())
            && tie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let ms_ok = !ms.is_empty() && ms.len() <= 18 && ms.bytes().all(|b| b.is_ascii_digit());
        (tie_ok && ms_ok).then(|| PageKey {
            created_at_ms: ms.parse().unwrap_or_default(),
            tie: tie.to_owned(),
        })
    }
}

/// How many of a developer's payments are of one product, operation and status
/// ([`PortalReader::payment_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindCount {
    /// The Collection Widget's for the widget's invoices ([`crate::widget::WIDGET_PAYMENTS_SQL`]),
    /// otherwise the payment's own.
    pub product: Product,
    pub kind: PaymentKind,
    pub status: PaymentStatus,
    pub count: u64,
}

/// Payments of one bucket (time slot), product, status, currency and operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    /// Index of the time slot counted from the report's start.
    pub bucket: i64,
    pub product: Product,
    pub status: PaymentStatus,
    pub currency: String,
    pub count: u64,
    pub amount_minor: i64,
    /// The operation: whether the money came in (a collection, a C2B) or went out (a
    /// payout, a refund, a reversal).
    pub kind: PaymentKind,
}

/// Latency samples, sorted ascending (milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latencies {
    /// From acceptance to the settlement decision.
    pub settlement_ms: Vec<i64>,
    /// One callback attempt's round trip.
    pub callback_ms: Vec<i64>,
}

/// The value at percentile `p` (0–100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100);
    let index = (rank.max(1) - 1) as usize;
    sorted.get(index.min(sorted.len() - 1)).copied()
}

/// A callback as queued (its body is what was, or will be, sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: i64,
    pub url: String,
    pub method: String,
    pub body: String,
    pub state: String,
    pub attempts: u32,
}

/// A row the writer commits for the portal.
#[derive(Clone, PartialEq, Eq)]
pub enum PortalWrite {
    /// A developer account (its `developers` row is in the same batch).
    CreateDeveloper {
        id: i64,
        email: String,
        name: String,
        password_hash: String,
        created_at_ms: i64,
        status: AccountStatus,
        role: AccountRole,
    },
    /// The password of the operator created at first start, kept to print in the banner
    /// (like the sandbox developer's).
    OperatorLogin {
        password: String,
    },
    /// A new go-live request (its id is the database's), pending.
    CreateGoLive {
        request: crate::golive::NewGoLive,
        created_at_ms: i64,
    },
    /// An operator's decision on a pending request.
    DecideGoLive {
        id: i64,
        state: crate::golive::GoLiveState,
        decided_at_ms: i64,
        decided_by: i64,
        comment: String,
    },
    /// An account's changeable fields, replacing what it had.
    UpdateAccount(AccountRecord),
    /// Ends every session of a developer but `except` (a hash of a session id).
    DeleteSessionsOf {
        developer_id: i64,
        except: Option<[u8; 32]>,
    },
    /// Revokes every API key of the developer's API users.
    RevokeDeveloperKeys {
        developer_id: i64,
        at_ms: i64,
    },
    /// The code a developer was sent last, replacing the one before.
    SetPhoneCode(PhoneCode),
    DeletePhoneCode {
        developer_id: i64,
    },
    /// A new mailbox row (its id is the database's).
    QueueMail {
        mail: NewMail,
        created_at_ms: i64,
        state: MailState,
    },
    /// A mailbox row's delivery state.
    UpdateMail {
        id: i64,
        state: MailState,
        attempts: u32,
        next_attempt_at_ms: i64,
        last_error: Option<String>,
        sent_at_ms: Option<i64>,
    },
    /// The sandbox developer's sign-in: its account row and the password to print.
    SandboxLogin {
        login: SandboxLogin,
        password_hash: String,
    },
    CreateSession {
        id_hash: [u8; 32],
        developer_id: i64,
        csrf_token: String,
        created_at_ms: i64,
        expires_at_ms: i64,
    },
    DeleteSession {
        id_hash: [u8; 32],
    },
    RevokeApiKey {
        key_id: i64,
        api_user: Uuid,
        at_ms: i64,
    },
    SetApprovalMode {
        developer_id: i64,
        on: bool,
    },
    /// An API user's Collection Widget settings, replacing what it had (the API user
    /// exists: [`Portal::set_widget_settings`] checks before it writes).
    SetWidgetSettings {
        api_user: Uuid,
        settings: WidgetSettings,
    },
    /// A CIBA `auth_req_id` (its `jti`) exchanged for tokens: kept until `keep_until_ms`
    /// (real time), so a second exchange is refused, also after a restart and on another
    /// node. Rows kept past their time are dropped with the next one written.
    UseAuthRequest {
        jti: String,
        api_user: Uuid,
        used_at_ms: i64,
        keep_until_ms: i64,
    },
}

impl std::fmt::Debug for PortalWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            PortalWrite::CreateDeveloper { .. } => "CreateDeveloper",
            PortalWrite::UpdateAccount(_) => "UpdateAccount",
            PortalWrite::DeleteSessionsOf { .. } => "DeleteSessionsOf",
            PortalWrite::RevokeDeveloperKeys { .. } => "RevokeDeveloperKeys",
            PortalWrite::SetPhoneCode(_) => "SetPhoneCode",
            PortalWrite::DeletePhoneCode { .. } => "DeletePhoneCode",
            PortalWrite::QueueMail { .. } => "QueueMail",
            PortalWrite::UpdateMail { .. } => "UpdateMail",
            PortalWrite::SandboxLogin { .. } => "SandboxLogin",
            PortalWrite::CreateSession { .. } => "CreateSession",
            PortalWrite::DeleteSession { .. } => "DeleteSession",
            PortalWrite::RevokeApiKey { .. } => "RevokeApiKey",
            PortalWrite::SetApprovalMode { .. } => "SetApprovalMode",
            PortalWrite::SetWidgetSettings { .. } => "SetWidgetSettings",
            PortalWrite::UseAuthRequest { .. } => "UseAuthRequest",
            PortalWrite::OperatorLogin { .. } => "OperatorLogin",
            PortalWrite::CreateGoLive { .. } => "CreateGoLive",
            PortalWrite::DecideGoLive { .. } => "DecideGoLive",
        };
        f.write_str(name)
    }
}

/// The writer's extra questions to the store.
pub trait PortalJournal {
    /// Whether a developer account uses this (lower-case) e-mail.
    fn developer_email_taken(&mut self, email: &str) -> Result<bool, StoreError>;
    /// The highest developer id in use.
    fn max_developer_id(&mut self) -> Result<i64, StoreError>;
    /// The developer account an API user belongs to.
    fn api_user_developer(&mut self, id: &Uuid) -> Result<Option<i64>, StoreError>;
    /// Developers whose payments wait for the payer's approval.
    fn approval_developers(&mut self) -> Result<Vec<i64>, StoreError>;
    /// Whether the sandbox developer's sign-in exists.
    fn sandbox_login_exists(&mut self) -> Result<bool, StoreError>;
    /// A developer account as the writer changes it.
    fn account(&mut self, developer_id: i64) -> Result<Option<AccountRecord>, StoreError>;
    /// The phone code a developer was sent last.
    fn phone_code(&mut self, developer_id: i64) -> Result<Option<PhoneCode>, StoreError>;
    /// Queued (or claimed, lease over) e-mails due at `now_ms`, oldest first.
    fn due_mail(&mut self, now_ms: i64, limit: u32) -> Result<Vec<Mail>, StoreError>;
    /// Operator accounts (active ones): id and e-mail, oldest first.
    fn operators(&mut self) -> Result<Vec<(i64, String)>, StoreError>;
    /// Go-live requests, newest first.
    fn golive_requests(
        &mut self,
        filter: &crate::golive::GoLiveFilter,
    ) -> Result<Vec<crate::golive::GoLiveRequest>, StoreError>;
    fn golive_request(
        &mut self,
        id: i64,
    ) -> Result<Option<crate::golive::GoLiveRequest>, StoreError>;
    /// Whether a CIBA `auth_req_id` (its `jti`) was exchanged for tokens already.
    fn auth_request_used(&mut self, jti: &str) -> Result<bool, StoreError>;
}

/// The portal's reads.
pub trait PortalReader {
    /// A developer account and its password hash, by lower-case e-mail.
    fn developer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(DeveloperAccount, String)>, StoreError>;
    fn developer(&self, id: i64) -> Result<Option<DeveloperAccount>, StoreError>;
    /// A developer's password hash.
    fn developer_password_hash(&self, id: i64) -> Result<Option<String>, StoreError>;
    /// Mailbox rows of one developer, newest first.
    fn mail(&self, filter: &MailFilter) -> Result<Vec<Mail>, StoreError>;
    /// The phone code a developer was sent last.
    fn phone_code(&self, developer_id: i64) -> Result<Option<PhoneCode>, StoreError>;
    /// A session by the hash of its id (expired ones included; the caller checks).
    fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;
    fn sandbox_login(&self) -> Result<Option<SandboxLogin>, StoreError>;
    /// A developer's newest API users, at most `limit`, newest first.
    fn api_users_of(&self, developer_id: i64, limit: u32) -> Result<Vec<ApiUser>, StoreError>;
    /// An API user's keys, oldest first.
    fn api_keys_of(&self, api_user: &Uuid) -> Result<Vec<ApiKeyInfo>, StoreError>;
    /// A page of the payments a filter matches, newest first (ties in the store's own
    /// order, the same on every page), from `filter.after`, or up to `filter.before`, or
    /// else from `filter.offset`; how many match in all, and the keys of its ends.
    fn payments_page(&self, filter: &PaymentFilter) -> Result<PaymentPage, StoreError>;
    /// The key of the `n`-th newest payment of the filter's range
    /// ([`PaymentFilter::range`]; its other conditions aside), when there are that many:
    /// where a search stops. (PostgreSQL's key takes in every payment of that
    /// millisecond, so that it is read from the index alone.)
    fn window_end(&self, filter: &PaymentFilter, n: u32) -> Result<Option<PageKey>, StoreError>;
    /// At most `filter.limit` payments the filter matches, in [`payments_page`]'s order,
    /// from the one after `filter.after` (from the newest without it, and the nearest up to
    /// `filter.before` with that; `filter.offset` is not used), and the key to go on from
    /// when there may be more. Nothing is counted, and
    /// the stores seek the key in their index of payments by API user and time, so a run
    /// reads only the rows from where the last one stopped to its own last one.
    ///
    /// [`payments_page`]: PortalReader::payments_page
    fn payments_after(
        &self,
        filter: &PaymentFilter,
    ) -> Result<(Vec<Payment>, Option<PageKey>), StoreError>;
    /// A developer's sandbox payments (those created since `since_ms`, when given) counted
    /// by product (the widget's invoices under the Collection Widget), operation and
    /// status, in one read.
    fn payment_counts(
        &self,
        developer_id: i64,
        since_ms: Option<i64>,
    ) -> Result<Vec<KindCount>, StoreError>;
    /// The payments of a scope, counted per `bucket_ms` slot from its `from_ms`.
    fn payment_stats(
        &self,
        scope: &ReportScope,
        bucket_ms: i64,
    ) -> Result<Vec<StatsRow>, StoreError>;
    /// The settlement and callback latencies of a scope's payments.
    fn latencies(&self, scope: &ReportScope) -> Result<Latencies, StoreError>;
    /// When the scope's period holds more than `most` payments of its developer (of its API
    /// user, when it names one; its API and operation aside), the creation time of the
    /// `most`-th newest: the report then counts those created since. Read in the index of
    /// payments by API user and time, so that it costs the same whatever the period holds
    /// past `most`.
    fn report_start(&self, scope: &ReportScope, most: u64) -> Result<Option<i64>, StoreError>;
    /// Callbacks queued for a payment, oldest first.
    fn outbox_of(&self, reference_id: &Uuid) -> Result<Vec<OutboxRecord>, StoreError>;
    /// PENDING payments of a developer that an MSISDN payer can approve, oldest first.
    fn waiting_payments(
        &self,
        developer_id: i64,
        msisdn: Option<&str>,
    ) -> Result<Vec<Payment>, StoreError>;
    /// When each ledger transfer of a payment was last changed, by transfer id.
    fn transfer_times(&self, reference_id: &Uuid) -> Result<Vec<(u64, i64, i64)>, StoreError>;
    /// An API user's Collection Widget settings (`None` until first set).
    fn widget_settings(&self, api_user: &Uuid) -> Result<Option<WidgetSettings>, StoreError>;
    /// Accounts for the operator's list, newest first, and how many match in all.
    fn accounts(&self, filter: &AccountFilter) -> Result<(Vec<DeveloperAccount>, u64), StoreError>;
    /// The operator created at first start and its printed password, while it is unchanged.
    fn operator_login(&self) -> Result<Option<SandboxLogin>, StoreError>;
    /// Go-live requests, newest first.
    fn golive_requests(
        &self,
        filter: &crate::golive::GoLiveFilter,
    ) -> Result<Vec<crate::golive::GoLiveRequest>, StoreError>;
    fn golive_request(&self, id: i64) -> Result<Option<crate::golive::GoLiveRequest>, StoreError>;
}

/// Kinds the payer approves on a phone: collections and pre-approvals.
pub fn payer_approves(kind: PaymentKind) -> bool {
    matches!(
        kind,
        PaymentKind::RequestToPay
            | PaymentKind::RequestToWithdraw
            | PaymentKind::Invoice
            | PaymentKind::PreApproval
            | PaymentKind::MpesaC2b
            | PaymentKind::MpesaMandate
    )
}

/// Whether a party can hold a virtual phone.
pub fn is_phone(party: &Party) -> bool {
    party.id_type == PartyIdType::Msisdn
}

/// Sign-up was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignUpError {
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("internal error")]
    Internal,
}

/// Approving or rejecting on the virtual phone was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no such payment for this developer")]
    NotFound,
    #[error("the payment is no longer pending")]
    NotPending,
    #[error("internal error")]
    Internal,
}

/// Re-sending a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResendError {
    #[error("no such payment for this developer")]
    NotFound,
    #[error("the payment has no callback URL")]
    NoCallbackUrl,
    #[error("the payment is still pending")]
    NotFinal,
    #[error("internal error")]
    Internal,
}

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, two passes) and a random
/// salt, in the PHC string format.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError(format!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError(format!("hashing a password failed: {e}")))
}

/// Whether `password` matches a PHC hash made by [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// 256 random bits as hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    secrets::hex(&b)
}

/// Creates the sandbox developer's sign-in (e-mail [`SANDBOX_EMAIL`], a random password
/// stored so that `mkoba serve` and `mkoba credentials` can print it) if it is missing.
pub(crate) fn bootstrap_login(journal: &mut dyn Journal) -> Result<(), StoreError> {
    if journal.sandbox_login_exists()? {
        return Ok(());
    }
    let password = {
        let key = secrets::random_hex_key();
        format!("{}-{}-{}", &key[0..6], &key[6..12], &key[12..18])
    };
    let password_hash = hash_password(&password)?;
    let batch = Batch {
        portal: vec![PortalWrite::SandboxLogin {
            login: SandboxLogin {
                email: SANDBOX_EMAIL.to_owned(),
                password,
            },
            password_hash,
        }],
        ..Batch::default()
    };
    journal.commit(&batch)
}

/// The shortest password the portal takes.
pub const MIN_PASSWORD_LEN: usize = 10;

/// The operator account's e-mail created at first start.
pub const OPERATOR_EMAIL: &str = "operator@mkoba.local";

/// Creates the first operator account, with a printed password, when no operator exists.
pub(crate) fn bootstrap_operator(journal: &mut dyn Journal) -> Result<(), StoreError> {
    if !journal.operators()?.is_empty() || journal.developer_email_taken(OPERATOR_EMAIL)? {
        return Ok(());
    }
    let password = {
        let key = secrets::random_hex_key();
        format!("{}-{}-{}", &key[0..6], &key[6..12], &key[12..18])
    };
    let (_, mut batch) = operator_batch(journal, OPERATOR_EMAIL, "Platform operator", &password)?;
    batch.portal.push(PortalWrite::OperatorLogin { password });
    journal.commit(&batch)
}

/// A character a page does not show as itself: a control character, or a bidirectional
/// formatting one (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which reorders
/// the text after it (a name with U+202E reads backwards on every page that shows it).
/// Names, e-mail addresses and free text a developer or operator gives are refused with
/// one.
pub fn hides_text(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `email` is a bare address (`local@domain`) that mail can go to as given: at most
/// 254 bytes; a local part and a domain as the mail library reads them (lettre, through
/// `email_address`: no empty or doubled dot, no label starting with a hyphen, …), the
/// domain a host name; and none
/// of white space, the characters [`hides_text`] refuses, the invisible ones (soft hyphen,
/// zero-width spaces and joiners, word joiner, byte-order mark), nor `<>()[],;:"\`, with
/// which a mail library reads a display name and another address (`x<victim@example.com>`
/// was accepted, and its mail went to `victim@example.com`: the security audit of
/// 2026-12-07).
pub fn plain_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let invisible = |c: char| matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}');
    email.len() <= 254
        && !email.chars().any(|c| {
            c.is_whitespace() || hides_text(c) || invisible(c) || "<>()[],;:\"\\".contains(c)
        })
        && email_address::EmailAddress::is_valid_local_part(local)
        && email_address::EmailAddress::is_valid_domain(domain)
        // A host name (letters, digits, hyphens; the library takes `b.c/x` too).
        && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

/// What an operator account needs: an e-mail address, a name of 1 to 100 characters, a
/// password of [`MIN_PASSWORD_LEN`] characters or more (`mkoba admin create-operator` says
/// so before it opens the database).
pub fn check_operator(email: &str, name: &str, password: &str) -> Result<(), String> {
    let email = email.trim().to_lowercase();
    let name = name.trim();
    if !plain_email(&email) {
        return Err(format!("{email:?} is not an e-mail address"));
    }
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(hides_text) {
        return Err("the name must be 1 to 100 characters".to_owned());
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

/// Adds an operator account straight through a journal (no writer running in this
/// process: `mkoba admin create-operator`). The e-mail must be free and the password at
/// least [`MIN_PASSWORD_LEN`] characters.
pub fn add_operator(
    journal: &mut dyn Journal,
    email: &str,
    name: &str,
    password: &str,
) -> Result<i64, StoreError> {
    check_operator(email, name, password).map_err(StoreError)?;
    let email = email.trim().to_lowercase();
    let name = name.trim();
    if journal.developer_email_taken(&email)? {
        return Err(StoreError(format!("an account with e-mail {email} exists")));
    }
    let (id, batch) = operator_batch(journal, &email, name, password)?;
    journal.commit(&batch)?;
    Ok(id)
}

/// The batch that creates an active operator account, and its id.
fn operator_batch(
    journal: &mut dyn Journal,
    email: &str,
    name: &str,
    password: &str,
) -> Result<(i64, Batch), StoreError> {
    let password_hash = hash_password(password)?;
    let id = journal.max_developer_id()? + 1;
    let batch = Batch {
        developers: vec![id],
        portal: vec![PortalWrite::CreateDeveloper {
            id,
            email: email.to_owned(),
            name: name.to_owned(),
            password_hash,
            created_at_ms: crate::clock::system_now_ms(),
            status: AccountStatus::Active,
            role: AccountRole::Operator,
        }],
        ..Batch::default()
    };
    Ok((id, batch))
}

pub(crate) fn blocking_error(e: crate::throttle::HashError) -> StoreError {
    StoreError(e.to_string())
}

/// Runs an Argon2 hash or verification on a blocking thread of the password pool
/// ([`crate::throttle::PasswordPool`]: one worker per core by default, each taking 19 MiB
/// and tens of milliseconds) with a bounded queue: past it the job is refused at once
/// ([`crate::throttle::HashError::Busy`]) instead of waiting without bound.
pub(crate) async fn hashing<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::throttle::HashError> {
    crate::throttle::hash_job(f).await
}

impl Platform {
    async fn portal_call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> PortalCommand,
        on_error: T,
    ) -> T {
        self.call(|reply| Command::Portal(make(reply)), on_error)
            .await
    }

    async fn portal_write(
        &self,
        writes: Vec<PortalWrite>,
        keys: Vec<SubscriptionKey>,
    ) -> Result<(), Internal> {
        self.portal_call(
            |reply| PortalCommand::Write {
                writes,
                keys,
                reply,
            },
            Err(CreateError::Internal),
        )
        .await
        .map_err(|_| Internal::Failed)
    }
}

impl Portal<'_> {
    /// Creates a developer account, pending until its activation link is opened, with its
    /// M-Pesa application; the e-mail is compared ignoring case. `activation` makes the
    /// activation mail for the new account's id; it is queued in the same commit.
    pub async fn sign_up(
        self,
        email: &str,
        name: &str,
        password: &str,
        activation: impl FnOnce(i64) -> NewMail + Send + 'static,
    ) -> Result<i64, SignUpError> {
        let password = password.to_owned();
        let password_hash = match hashing(move || hash_password(&password)).await {
            // Refused at once, no fault: the caller's scope knows (see `throttle`).
            Err(crate::throttle::HashError::Busy) => return Err(SignUpError::Internal),
            hashed => hashed
                .map_err(blocking_error)
                .and_then(|r| r)
                .map_err(|e| {
                    tracing::error!(error = %e, "hashing a password failed");
                    SignUpError::Internal
                })?,
        };
        let email = email.trim().to_lowercase();
        let name = name.trim().to_owned();
        let result = self
            .portal_call(
                |reply| PortalCommand::SignUp {
                    email,
                    name,
                    password_hash,
                    activation: Box::new(activation),
                    reply,
                },
                Err(SignUpError::Internal),
            )
            .await;
        self.inner.mail_wake.notify_one();
        result
    }

    /// The developer whose e-mail and password these are. Takes as long for an unknown
    /// e-mail as for a wrong password.
    pub async fn sign_in(self, email: &str, password: &str) -> Result<Option<i64>, Internal> {
        let email = email.trim().to_lowercase();
        let email = email.to_owned();
        let found = self
            .inner
            .portal_reads
            .read(move |r| r.developer_by_email(&email))
            .await?;
        let password = password.to_owned();
        let (id, hash) = match found {
            Some((account, hash)) => (Some(account.id), hash),
            None => (None, dummy_hash().to_owned()),
        };
        let ok = match hashing(move || verify_password(&password, &hash)).await {
            Ok(ok) => ok,
            // Refused at once, no fault: the caller's scope knows (see `throttle`).
            Err(crate::throttle::HashError::Busy) => {
                crate::metrics::Metrics::count(&self.metrics().portal_signins, "outcome", "busy");
                return Err(Internal::Busy);
            }
            Err(e) => return Err(logged(blocking_error(e))),
        };
        let outcome = if id.is_some() && ok { "ok" } else { "refused" };
        crate::metrics::Metrics::count(&self.metrics().portal_signins, "outcome", outcome);
        Ok(id.filter(|_| ok))
    }

    /// Starts a session; returns its id (the cookie value) and CSRF token.
    pub async fn create_session(self, developer_id: i64) -> Result<(String, String), Internal> {
        let id = random_token();
        let csrf_token = random_token();
        let now = self.now_ms();
        let write = PortalWrite::CreateSession {
            id_hash: secrets::hash_key(&id),
            developer_id,
            csrf_token: csrf_token.clone(),
            created_at_ms: now,
            expires_at_ms: now + SESSION_TTL_MS,
        };
        self.portal_write(vec![write], Vec::new()).await?;
        Ok((id, csrf_token))
    }

    /// The live session with this id.
    pub async fn session(self, id: &str) -> Result<Option<SessionRecord>, Internal> {
        let id = id.to_owned();
        let found = self
            .inner
            .portal_reads
            .read(move |r| r.session(&secrets::hash_key(&id)))
            .await?;
        Ok(found.filter(|s| s.expires_at_ms > self.now_ms()))
    }

    /// Ends a session (logout).
    pub async fn end_session(self, id: &str) -> Result<(), Internal> {
        let write = PortalWrite::DeleteSession {
            id_hash: secrets::hash_key(id),
        };
        self.portal_write(vec![write], Vec::new()).await
    }

    /// A developer account.
    pub async fn developer(self, id: i64) -> Result<Option<DeveloperAccount>, Internal> {
        self.inner.portal_reads.read(move |r| r.developer(id)).await
    }

    /// The sandbox developer's sign-in, while it is the one created at first start.
    pub async fn sandbox_login(self) -> Result<Option<SandboxLogin>, Internal> {
        self.inner
            .portal_reads
            .read(move |r| r.sandbox_login())
            .await
    }

    /// Subscribes a developer to a product (a fresh primary and secondary key), or
    /// regenerates one key of a subscribed product (`slot`).
    pub async fn renew_subscription_keys(
        self,
        developer_id: i64,
        product: Product,
        slot: Option<KeySlot>,
    ) -> Result<(), Internal> {
        let slots = match slot {
            Some(s) => vec![s],
            None => vec![KeySlot::Primary, KeySlot::Secondary],
        };
        let keys: Vec<SubscriptionKey> = slots
            .into_iter()
            .map(|slot| SubscriptionKey {
                developer_id,
                product,
                slot,
                key: secrets::random_hex_key(),
            })
            .collect();
        // The writer puts the new keys into the cache when they are committed.
        self.portal_write(Vec::new(), keys).await
    }

    /// A developer's newest MoMo API users, at most [`LISTED_API_USERS`], newest first
    /// (sandbox users made through the provisioning API included; not the row that owns the
    /// M-Pesa application's payments). The pages that list them list no more: a developer
    /// may make any number (clients make one a run), and a page of 40,000 was 35 MB.
    pub async fn api_users_of(self, developer_id: i64) -> Result<Vec<ApiUser>, Internal> {
        let limit = LISTED_API_USERS as u32 + 1;
        let mut users = self
            .inner
            .portal_reads
            .read(move |r| r.api_users_of(developer_id, limit))
            .await?;
        users.retain(|u| u.target_environment != crate::mpesa::APP_ENVIRONMENT);
        users.truncate(LISTED_API_USERS);
        Ok(users)
    }

    /// The API user if it belongs to the developer.
    pub async fn owned_api_user(
        self,
        developer_id: i64,
        id: &Uuid,
    ) -> Result<Option<ApiUser>, Internal> {
        Ok(self.credentials().api_user(id).await?.filter(|u| {
            u.developer_id == developer_id && u.target_environment != crate::mpesa::APP_ENVIRONMENT
        }))
    }

    /// An API user's keys (never the keys themselves).
    pub async fn api_keys_of(self, api_user: &Uuid) -> Result<Vec<ApiKeyInfo>, Internal> {
        let api_user = api_user.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.api_keys_of(&api_user))
            .await
    }

    /// Revokes one key of an API user the developer owns; `false` when there is no such
    /// user or key.
    pub async fn revoke_api_key(
        self,
        developer_id: i64,
        api_user: Uuid,
        key_id: i64,
    ) -> Result<bool, Internal> {
        if self
            .portal()
            .owned_api_user(developer_id, &api_user)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let keys = self.portal().api_keys_of(&api_user).await?;
        if !keys
            .iter()
            .any(|k| k.id == key_id && k.revoked_at_ms.is_none())
        {
            return Ok(false);
        }
        let write = PortalWrite::RevokeApiKey {
            key_id,
            api_user,
            at_ms: self.now_ms(),
        };
        self.portal_write(vec![write], Vec::new()).await?;
        Ok(true)
    }

    /// Where a search of `filter` stops: the key of the `most`-th newest payment of its
    /// range, when it searches ([`PaymentFilter::searches`]) and the range holds more.
    pub async fn search_window(
        self,
        filter: &PaymentFilter,
        most: u32,
    ) -> Result<Option<PageKey>, Internal> {
        if !filter.searches() {
            return Ok(None);
        }
        let filter = filter.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.window_end(&filter, most.max(1)))
            .await
    }

    /// A page of a developer's payments.
    pub async fn payments_page(self, filter: &PaymentFilter) -> Result<PaymentPage, Internal> {
        let filter = filter.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.payments_page(&filter))
            .await
    }

    /// A run of a developer's payments after `filter.after`
    /// ([`PortalReader::payments_after`]).
    pub async fn payments_after(
        self,
        filter: &PaymentFilter,
    ) -> Result<(Vec<Payment>, Option<PageKey>), Internal> {
        let filter = filter.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.payments_after(&filter))
            .await
    }

    /// A payment if it belongs to the developer: made through any of their API users, the
    /// M-Pesa application's included (whose API-user row the API-user listings leave out).
    pub async fn owned_payment(
        self,
        developer_id: i64,
        id: &Uuid,
    ) -> Result<Option<Payment>, Internal> {
        let Some(p) = self.payments().get(id).await? else {
            return Ok(None);
        };
        let owner = self.credentials().api_user(&p.api_user).await?;
        Ok(owner.filter(|u| u.developer_id == developer_id).map(|_| p))
    }

    /// A developer's payments counted by operation and status
    /// ([`PortalReader::payment_counts`]).
    pub async fn payment_counts(
        self,
        developer_id: i64,
        since_ms: Option<i64>,
    ) -> Result<Vec<KindCount>, Internal> {
        self.inner
            .portal_reads
            .read(move |r| r.payment_counts(developer_id, since_ms))
            .await
    }

    /// Counts and sums of a scope's payments, per `bucket_ms` slot.
    pub async fn payment_stats(
        self,
        scope: &ReportScope,
        bucket_ms: i64,
    ) -> Result<Vec<StatsRow>, Internal> {
        let scope = scope.clone();
        self.inner
            .portal_reads
            .read(move |r| r.payment_stats(&scope, bucket_ms.max(1)))
            .await
    }

    /// [`PortalReader::report_start`].
    pub async fn report_start(
        self,
        scope: &ReportScope,
        most: u64,
    ) -> Result<Option<i64>, Internal> {
        let scope = scope.clone();
        self.inner
            .portal_reads
            .read(move |r| r.report_start(&scope, most))
            .await
    }

    /// Settlement and callback latencies of a scope's payments.
    pub async fn latencies(self, scope: &ReportScope) -> Result<Latencies, Internal> {
        let scope = scope.clone();
        self.inner
            .portal_reads
            .read(move |r| r.latencies(&scope))
            .await
    }

    /// Callbacks queued for a payment.
    pub async fn outbox_of(self, reference_id: &Uuid) -> Result<Vec<OutboxRecord>, Internal> {
        let reference_id = reference_id.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.outbox_of(&reference_id))
            .await
    }

    /// `(transfer id, created, updated)` of a payment's ledger transfers.
    pub async fn transfer_times(
        self,
        reference_id: &Uuid,
    ) -> Result<Vec<(u64, i64, i64)>, Internal> {
        let reference_id = reference_id.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.transfer_times(&reference_id))
            .await
    }

    /// Turns the virtual phone on or off for a developer: while on, collections from MSISDN
    /// payers that would succeed wait for the payer's approval.
    pub async fn set_approval_mode(self, developer_id: i64, on: bool) -> Result<(), Internal> {
        let write = PortalWrite::SetApprovalMode { developer_id, on };
        self.portal_write(vec![write], Vec::new()).await
    }

    /// Sets an API user's Collection Widget settings, replacing what it had; returns once
    /// committed. `None` origins means no list is set. An unknown API user is refused
    /// (logged, `Internal`) before anything reaches the writer.
    pub async fn set_widget_settings(
        self,
        api_user: Uuid,
        allowed_origins: Option<Vec<String>>,
        callback_url: Option<String>,
    ) -> Result<(), Internal> {
        if self.credentials().api_user(&api_user).await?.is_none() {
            tracing::error!(%api_user, "widget settings for an unknown API user refused");
            return Err(Internal::Failed);
        }
        let write = PortalWrite::SetWidgetSettings {
            api_user,
            settings: WidgetSettings {
                allowed_origins,
                callback_url,
                updated_at_ms: self.now_ms(),
            },
        };
        self.portal_write(vec![write], Vec::new()).await
    }

    /// An API user's Collection Widget settings (`None` until first set), read from the
    /// store: every node sharing the database sees a change as soon as it is committed.
    pub async fn widget_settings(
        self,
        api_user: &Uuid,
    ) -> Result<Option<WidgetSettings>, Internal> {
        let api_user = api_user.to_owned();
        self.inner
            .reads
            .read(move |r| r.widget_settings(&api_user))
            .await
    }

    /// Pending payments a payer can approve, grouped by MSISDN (oldest first in each):
    /// not those of test numbers that fail or stay pending whatever the payer does.
    pub async fn waiting_payments(
        self,
        developer_id: i64,
    ) -> Result<Vec<(String, Vec<Payment>)>, Internal> {
        let all = self
            .inner
            .portal_reads
            .read(move |r| r.waiting_payments(developer_id, None))
            .await?;
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Payment>> = HashMap::new();
        for p in all.into_iter().filter(crate::engine::payer_decides) {
            let msisdn = p.party.id.clone();
            if !groups.contains_key(&msisdn) {
                order.push(msisdn.clone());
            }
            groups.entry(msisdn).or_default().push(p);
        }
        Ok(order
            .into_iter()
            .map(|m| {
                let payments = groups.remove(&m).unwrap_or_default();
                (m, payments)
            })
            .collect())
    }

    /// The payer approves (`true`) or rejects a pending payment of the developer; it is
    /// settled through the same path as automatic settlement (ledger postings, status,
    /// callback). A rejection fails it with `APPROVAL_REJECTED`.
    pub async fn decide_payment(
        self,
        developer_id: i64,
        reference_id: Uuid,
        approve: bool,
    ) -> Result<(), DecideError> {
        self.portal_call(
            |reply| PortalCommand::Decide {
                reference_id,
                developer_id,
                approve,
                reply,
            },
            Err(DecideError::Internal),
        )
        .await
    }

    /// Queues the callback of a settled payment again, with its current status body: to
    /// `last_url`, where its last callback went (an invoice's cancellation goes to the
    /// cancel's URL), else to its own callback URL.
    pub async fn resend_callback(
        self,
        developer_id: i64,
        reference_id: Uuid,
        last_url: Option<String>,
    ) -> Result<(), ResendError> {
        self.portal_call(
            |reply| PortalCommand::Resend {
                reference_id,
                developer_id,
                last_url,
                reply,
            },
            Err(ResendError::Internal),
        )
        .await
    }
}

/// A valid Argon2 hash of a random password, verified against when the e-mail is unknown
/// so that sign-in takes the same time either way.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_a_bare_address_mail_goes_to_as_given() {
        for ok in ["ada@example.com", "a.b+tag@mail.example.co.tz", "x@y"] {
            assert!(plain_email(ok), "{ok}");
        }
        for bad in [
            "x<victim@example.com>",
            "Name <a@b.c>",
            "a@b.c,c@d.e",
            "\"quoted\"@example.com",
            "a(comment)@b.c",
            "a@b;c",
            "a@b@c",
            "@b.c",
            "a@",
            "a b@c.d",
            "a@b.c\r\nBcc: x@y",
            "\u{202e}a@b.c",
            // What the mail library refuses to send to (the re-audit of 2026-12-07).
            "a@b.c.",
            "a@.b",
            "a@-b",
            "a@b..c",
            "a..b@c.d",
            "a@b.c/x",
            "a@b.c?x",
            "a@b.c%0a",
            "a@b\u{200b}.c",
            "\u{feff}a@b.c",
        ] {
            assert!(!plain_email(bad), "{bad:?}");
        }
        assert!(!plain_email(&format!("{}@b.c", "a".repeat(251))));
    }

    #[test]
    fn a_password_verifies_against_its_hash_and_no_other() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn a_page_key_goes_through_a_link_and_nothing_else_is_taken_for_one() {
        for key in [
            PageKey {
                created_at_ms: 1_767_225_600_123,
                tie: "48213".to_owned(),
            },
            PageKey {
                created_at_ms: 0,
                tie: "0b9e3a1c-7f2d-4c55-9a31-2e8f0d6b7c44".to_owned(),
            },
        ] {
            assert_eq!(PageKey::parse(&key.to_param()), Some(key));
        }
        for bad in [
            "",
            "123",
            ".5",
            "12.",
            "-1.5",
            "1e3.5",
            "12.a b",
            "12.a.b",
            "1234567890123456789.5",
            &format!("1.{}", "a".repeat(65)),
        ] {
            assert_eq!(PageKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&v, 100), Some(100));
        assert_eq!(percentile(&v, 0), Some(1));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn tokens_are_64_hex_characters_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
    }
}
