//! What the platform needs from a database, and nothing more.
//!
//! The write side ([`Journal`]) is used by one thread only, the platform's single writer,
//! which hands it a whole [`Batch`] to commit atomically (group commit: one fsync for many
//! requests). Where several nodes share a database, their writers take turns through
//! [`Journal::begin`], which also returns what the others committed ([`Changes`]). The
//! read side ([`Reader`]) is shared by request handlers. Backends implement
//! both; the domain never sees SQL.

use mkoba_ledger::{Account, AccountId, Currency, Limit, Transfer};
use uuid::Uuid;

use crate::model::{
    AccountOwner, ApiUser, CallbackAttempt, OutboxItem, OutboxState, Party, Payment, PaymentKind,
    PaymentStatus, SubscriptionKey,
};
use crate::mpesa::MpesaApp;

/// A storage failure. The platform answers it as an internal error and logs the cause.
/// Its text is the cause alone (the commands print it after what they were doing).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Everything the writer needs in memory when it starts.
#[derive(Debug, Default)]
pub struct LoadedState {
    /// Every account but idle customer wallets (nothing reserved on them), and of those the
    /// newest ones only, as many as the writer holds ([`load_accounts_sql`]).
    pub accounts: Vec<(Account, AccountOwner)>,
    /// The highest account id in the database (some accounts may not be loaded).
    pub max_account_id: u64,
    pub pending_transfers: Vec<Transfer>,
    /// Payments that are still PENDING.
    pub pending_payments: Vec<Payment>,
    pub max_transfer_id: u64,
    pub max_outbox_id: i64,
    pub subscription_keys: Vec<SubscriptionKey>,
    /// The token signing secret, once created.
    pub token_secret: Option<Vec<u8>>,
    /// Every test clock.
    pub test_clocks: Vec<crate::test_clock::TestClock>,
}

/// The query for [`LoadedState::accounts`] over `columns` (then `owner`), with the number
/// of idle wallets as `$1`: every account that is not a customer wallet or has money
/// reserved, and the newest idle wallets. Loading every wallet would make the memory of a
/// start grow with every payer ever seen (a million payers: 509 MiB at start, before the
/// bound dropped most of them); the others are read back when a payment names them
/// (`engine/wallets.rs`).
pub fn load_accounts_sql(columns: &str) -> String {
    let wallet = AccountOwner::WALLET_PREFIX;
    format!(
        "SELECT {columns}, owner FROM accounts \
         WHERE owner NOT LIKE '{wallet}%' OR debits_pending <> 0 OR credits_pending <> 0 \
         UNION ALL \
         SELECT * FROM (SELECT {columns}, owner FROM accounts \
         WHERE owner LIKE '{wallet}%' AND debits_pending = 0 AND credits_pending = 0 \
         ORDER BY id DESC LIMIT $1) AS newest"
    )
}

/// `wallets` as the `$1` of [`load_accounts_sql`]: a bound past `i64::MAX` is no bound (a
/// plain cast would make it negative, which PostgreSQL refuses as a `LIMIT`).
pub fn wallets_limit(wallets: usize) -> i64 {
    i64::try_from(wallets).unwrap_or(i64::MAX)
}

/// What other writers of the same database committed since this writer's last look: the
/// rows its in-memory state must take over before it decides anything (see
/// [`Journal::begin`]). Applying the same changes twice is harmless.
#[derive(Debug, Default)]
pub struct Changes {
    /// Accounts opened or changed, with their current totals.
    pub accounts: Vec<(Account, AccountOwner)>,
    /// Transfers created or changed: pending ones are restored, posted or voided ones
    /// forgotten.
    pub transfers: Vec<Transfer>,
    /// Payments created or changed that are PENDING: they join the settlement queue.
    pub pending_payments: Vec<Payment>,
    /// Payments that became final: they leave it (and wake whoever waits for them).
    pub final_payments: Vec<Uuid>,
    /// Subscription keys created or regenerated.
    pub subscription_keys: Vec<SubscriptionKey>,
    /// Developers whose payers approve on the virtual phone, when anything changed.
    pub approval_developers: Option<Vec<i64>>,
    /// Every test clock, when any was created, advanced or deleted.
    pub test_clocks: Option<Vec<crate::test_clock::TestClock>>,
    /// The highest callback id in use, so new rows never reuse one (accounts and transfers
    /// carry their ids).
    pub max_outbox_id: i64,
    /// How many undelivered callbacks this writer now delivers (their node stopped); they
    /// are read with [`Journal::pending_outbox`].
    pub outbox_taken_over: usize,
    /// The nodes they were taken from (for the log).
    pub outbox_taken_from: Vec<String>,
}

/// The sums of debits and credits over all accounts of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub currency: String,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

impl CurrencyTotals {
    /// Debits equal credits, posted and pending.
    pub fn balanced(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending == self.credits_pending
    }
}

/// A newly opened account and its owner.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub owner: AccountOwner,
    pub currency: Currency,
    pub limit: Limit,
}

/// A ledger transfer and what caused it.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub transfer: Transfer,
    pub reference_id: Option<Uuid>,
    pub at_ms: i64,
}

/// A change of a payment's state.
#[derive(Debug, Clone)]
pub struct PaymentUpdate {
    pub reference_id: Uuid,
    pub status: PaymentStatus,
    pub reason: Option<crate::reason::FailureReason>,
    pub financial_transaction_id: Option<String>,
    pub settled_at_ms: Option<i64>,
    pub transfer_id: Option<u64>,
    pub notifications: u32,
}

/// The most API keys one API user holds: storing another removes its oldest, so a check
/// of a key reads a bounded number of hashes however many keys a client makes (some make
/// one before every payment).
pub const MAX_API_KEYS_PER_USER: i64 = 100;

/// An API key, stored only as a hash.
#[derive(Clone)]
pub struct ApiKeyRecord {
    pub api_user: Uuid,
    pub key_hash: [u8; 32],
    /// The key's last characters ([`key_ending`](crate::secrets::key_ending)), by which
    /// its owner tells it from their other keys.
    pub ending: String,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("api_user", &self.api_user)
            .field("ending", &self.ending)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// The outcome of a callback attempt for its outbox row.
#[derive(Debug, Clone)]
pub struct OutboxUpdate {
    pub id: i64,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    /// The attempt itself when it is the row's first (`attempt` 1, to the row's own URL
    /// and method): stored on the outbox row, in the update that records its outcome,
    /// instead of as a `callback_attempts` row of its own, so a callback delivered at once
    /// writes one row, not two. When the row already has a first attempt (the same
    /// callback sent twice) or is not found (PostgreSQL: another node's), it is stored as a
    /// `callback_attempts` row like the later ones. [`Reader::callback_attempts`] lists
    /// both kinds together.
    pub first_attempt: Option<CallbackAttempt>,
}

/// Everything one group commit writes, in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub developers: Vec<i64>,
    /// Subscription keys created or regenerated: each replaces the key its developer,
    /// product and slot had.
    pub subscription_keys: Vec<SubscriptionKey>,
    /// Subscription keys written only where their developer, product and slot has no key
    /// yet (start-up's keys: of several nodes starting at once, the first one's stand).
    pub missing_keys: Vec<SubscriptionKey>,
    /// The secret tokens and sessions are signed with, written only where none is stored
    /// yet: of several nodes starting at once, the first one's stands and every node reads
    /// it back (one that wrote over it would refuse what the others had signed).
    pub token_secret: Option<Vec<u8>>,
    pub api_users: Vec<ApiUser>,
    pub api_keys: Vec<ApiKeyRecord>,
    pub new_accounts: Vec<NewAccount>,
    /// Current totals of every account touched.
    pub accounts: Vec<Account>,
    pub transfers: Vec<TransferRecord>,
    pub new_payments: Vec<Payment>,
    pub payment_updates: Vec<PaymentUpdate>,
    pub outbox: Vec<OutboxItem>,
    pub attempts: Vec<CallbackAttempt>,
    pub outbox_updates: Vec<OutboxUpdate>,
    /// Developer portal rows (accounts, sessions, revocations, settings).
    pub portal: Vec<crate::portal::PortalWrite>,
    /// M-Pesa applications created or changed (whole rows, keyed by developer).
    pub mpesa_apps: Vec<crate::mpesa::MpesaApp>,
    /// Test clocks created, advanced (whole rows) or deleted.
    pub test_clocks: Vec<crate::test_clock::ClockWrite>,
}

impl Batch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.developers.is_empty()
            && self.subscription_keys.is_empty()
            && self.missing_keys.is_empty()
            && self.token_secret.is_none()
            && self.api_users.is_empty()
            && self.api_keys.is_empty()
            && self.new_accounts.is_empty()
            && self.accounts.is_empty()
            && self.transfers.is_empty()
            && self.new_payments.is_empty()
            && self.payment_updates.is_empty()
            && self.outbox.is_empty()
            && self.attempts.is_empty()
            && self.outbox_updates.is_empty()
            && self.portal.is_empty()
            && self.mpesa_apps.is_empty()
            && self.test_clocks.is_empty()
    }
}

/// The write side, owned by the single writer thread.
pub trait Journal: crate::portal::PortalJournal + Send + 'static {
    /// Hands the store the series it records its own work in (SQLite: the WAL's
    /// checkpoints); called once, before the writer starts.
    fn watch(&mut self, _metrics: &crate::metrics::StoreMetrics) {}
    /// Reads the state the writer keeps in memory, with at most `wallets` idle customer
    /// wallets ([`LoadedState::accounts`]).
    fn load(&mut self, wallets: usize) -> Result<LoadedState, StoreError>;
    /// Whether a payment with this reference id exists (committed).
    fn payment_exists(&mut self, id: &Uuid) -> Result<bool, StoreError>;
    /// Which of these reference ids are taken by committed payments (one round trip for a
    /// whole batch of new payments where the database is remote).
    fn payments_existing(
        &mut self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, StoreError> {
        let mut taken = std::collections::HashSet::new();
        for id in ids {
            if self.payment_exists(id)? {
                taken.insert(*id);
            }
        }
        Ok(taken)
    }
    /// Whether an API user with this id exists (committed).
    fn api_user_exists(&mut self, id: &Uuid) -> Result<bool, StoreError>;
    /// Whether an API user has made any payment (committed), settled ones included.
    fn api_user_has_payments(&mut self, id: &Uuid) -> Result<bool, StoreError>;
    /// A committed payment, for changes to settled payments (delivery notifications).
    fn payment(&mut self, id: &Uuid) -> Result<Option<Payment>, StoreError>;
    /// The amount of the refunds of a payment that have not failed (committed).
    fn refunded_total(&mut self, original: &Uuid) -> Result<i64, StoreError>;
    /// The ledger account of an owner in a currency (committed): a wallet the writer had
    /// dropped from memory.
    fn ledger_account(
        &mut self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> Result<Option<Account>, StoreError>;
    /// The ledger accounts of several owners (committed), those that exist, with their
    /// owners: the wallets a pass needs that the writer had dropped, looked up at once. A
    /// store that can should answer in one query; this default asks for each.
    fn ledger_accounts(
        &mut self,
        wanted: &[(AccountOwner, Currency)],
    ) -> Result<Vec<(AccountOwner, Account)>, StoreError> {
        let mut found = Vec::new();
        for (owner, currency) in wanted {
            if let Some(account) = self.ledger_account(owner, *currency)? {
                found.push((owner.clone(), account));
            }
        }
        Ok(found)
    }
    /// An API user's payments of one kind with one party, oldest first (committed): the
    /// payer's pre-approvals a request-to-pay may be drawn against. Only for the kinds of
    /// [`PaymentKind::BY_PARTY`] (the party index holds no others).
    fn payments_of_party(
        &mut self,
        api_user: &Uuid,
        kind: PaymentKind,
        party: &Party,
    ) -> Result<Vec<Payment>, StoreError>;
    /// A developer's M-Pesa application (committed).
    fn mpesa_app(&mut self, developer_id: i64) -> Result<Option<MpesaApp>, StoreError>;
    /// Up to `limit` callbacks this writer delivers that are still pending, with ids above
    /// `after_id`, in id order (committed rows).
    fn pending_outbox(
        &mut self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// The callback `id`, if this writer delivers it and it is still pending.
    fn pending_outbox_row(&mut self, id: i64) -> Result<Option<OutboxItem>, StoreError> {
        Ok(self
            .pending_outbox(id - 1, 1)?
            .into_iter()
            .find(|item| item.id == id))
    }
    /// Writes the batch atomically and durably; nothing of it is visible on error.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// Starts a pass of the writer, before it reads or decides anything. A store that
    /// several writers share (PostgreSQL with several nodes) keeps the others out until
    /// [`Journal::commit`] or [`Journal::end`], and returns what they committed since this
    /// writer's last pass. A store with one writer returns `None`.
    fn begin(&mut self) -> Result<Option<Changes>, StoreError> {
        Ok(None)
    }

    /// [`Journal::begin`], then which of `references` are taken, as
    /// [`Journal::payments_existing`] finds them; a store that can ask both at once (one
    /// round trip to a remote database) does. The look-up is `None` when it failed: the
    /// pass then asks per payment.
    fn begin_looking_up(
        &mut self,
        references: &[Uuid],
    ) -> Result<(Option<Changes>, Option<std::collections::HashSet<Uuid>>), StoreError> {
        let changes = self.begin()?;
        if references.is_empty() {
            return Ok((changes, None));
        }
        let taken = self
            .payments_existing(references)
            .inspect_err(
                |e| tracing::warn!(error = %e, "looking up a batch of reference ids failed"),
            )
            .ok();
        Ok((changes, taken))
    }

    /// Ends a pass that had nothing to commit.
    fn end(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How often an idle writer should begin a pass to take in other writers' changes
    /// (settlements, callbacks to take over); `None` for a store with one writer.
    fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// This node's lease on the callbacks it holds ([`crate::lease`]); `None` for a store
    /// with one writer, whose callbacks no other node can take.
    fn lease(&self) -> Option<crate::lease::Lease> {
        None
    }

    /// Why this writer can write no more for good, if it cannot: a PostgreSQL node whose
    /// id another process has taken over. The writer then ends, `/_mkoba/health` fails and
    /// the server exits (a supervisor's restart is refused while the other holds the id).
    fn gone(&self) -> Option<String> {
        None
    }
}

/// Most refunds or reversals of one payment a page lists ([`Reader::refunds_of`]): a
/// payment may be refunded in as many parts as its amount has minor units.
pub const REFUNDS_SHOWN: u32 = 100;

/// The read side, shared by request handlers.
pub trait Reader: crate::portal::PortalReader + Send + Sync + 'static {
    fn payment(&self, id: &Uuid) -> Result<Option<Payment>, StoreError>;
    fn api_user(&self, id: &Uuid) -> Result<Option<ApiUser>, StoreError>;
    /// Hashes of the API user's keys that are not revoked.
    fn api_key_hashes(&self, api_user: &Uuid) -> Result<Vec<[u8; 32]>, StoreError>;
    /// An account by owner and currency.
    fn account(
        &self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> Result<Option<Account>, StoreError>;
    /// An API user's payments of one kind with one party, oldest first; only for the kinds
    /// of [`PaymentKind::BY_PARTY`].
    fn payments_of_party(
        &self,
        api_user: &Uuid,
        kind: crate::model::PaymentKind,
        party: &crate::model::Party,
    ) -> Result<Vec<Payment>, StoreError>;
    /// The refunds or reversals of a payment, oldest first, at most [`REFUNDS_SHOWN`].
    fn refunds_of(&self, original: &Uuid) -> Result<Vec<Payment>, StoreError>;
    /// Every callback attempt for a payment: its callbacks oldest first, and each one's
    /// attempts by number (a first attempt made twice: as they were recorded).
    fn callback_attempts(&self, id: &Uuid) -> Result<Vec<CallbackAttempt>, StoreError>;
    /// Per currency, the sums of debits and credits over all accounts.
    fn ledger_totals(&self) -> Result<Vec<CurrencyTotals>, StoreError>;
    /// How many ledger transfers reference a payment.
    fn transfers_for(&self, id: &Uuid) -> Result<Vec<Transfer>, StoreError>;
    /// A developer's M-Pesa application.
    fn mpesa_app(&self, developer_id: i64) -> Result<Option<MpesaApp>, StoreError>;
    /// The M-Pesa application whose current API key has this hash.
    fn mpesa_app_by_key_hash(&self, hash: &[u8; 32]) -> Result<Option<MpesaApp>, StoreError>;
    /// An M-Pesa payment by its transaction id (`financial_transaction_id`), whoever owns
    /// it (MoMo payments are not indexed by it).
    fn payment_by_transaction_id(
        &self,
        transaction_id: &str,
    ) -> Result<Option<Payment>, StoreError>;
    /// The amount of the refunds or reversals of a payment that have not failed.
    fn refunded_total(&self, original: &Uuid) -> Result<i64, StoreError>;
}
