//! A journal whose commits can be made to fail as a full disk or a failing `fsync` makes
//! them fail, to wait as a disk that stopped answering, or to panic as a bug in the writer
//! would — the fault the server must survive without losing or half-writing anything
//! (issue 16). The server wraps its journal in one only when its settings carry
//! [`Faults`] (tests); everything but `commit` passes straight through. The same switches
//! can stall store reads (checked by the read pool before each read).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use uuid::Uuid;

use crate::accounts::{AccountRecord, Mail, PhoneCode};
use crate::golive::{GoLiveFilter, GoLiveRequest};
use crate::model::{OutboxItem, Payment};
use crate::mpesa::MpesaApp;
use crate::portal::PortalJournal;
use crate::store::{Batch, Changes, Journal, LoadedState, StoreError};

/// The switches: while `disk_full` is on every commit fails and writes nothing; while
/// `stalled` is on a commit waits (a disk that has stopped answering), so requests pile up
/// in front of the writer.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    full: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    panics: Arc<AtomicBool>,
    reads_stalled: Arc<AtomicBool>,
    portal_reads_stalled: Arc<AtomicBool>,
    /// Reader threads held by the stall now.
    reads_held: Arc<AtomicUsize>,
    /// Portal reads to let through, then how many to refuse as if the read queue were
    /// full ([`Faults::refuse_portal_reads`]).
    portal_refusals: Arc<std::sync::Mutex<(usize, usize)>>,
    /// Portal reads asked for so far, refused ones included.
    portal_reads: Arc<AtomicUsize>,
    /// Commits to let land and then report failed, as a connection lost once the `COMMIT`
    /// was sent ([`Faults::lose_commit_answers`]).
    answers_lost: Arc<AtomicUsize>,
    /// While on, the writer's reloads of its state fail (a database it cannot reach).
    loads_fail: Arc<AtomicBool>,
    /// While on, the API reads fail (a database the readers cannot reach).
    reads_fail: Arc<AtomicBool>,
}

impl Faults {
    /// Makes commits fail (`true`) or succeed again (`false`, the space came back).
    pub fn set_disk_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    pub fn disk_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    /// Makes the next commit panic: the writer thread dies (a bug in it), which the
    /// platform must notice.
    pub fn set_writer_panics(&self, panics: bool) {
        self.panics.store(panics, Ordering::SeqCst);
    }

    /// Makes the next `n` commits land and then report failure, as a connection to
    /// PostgreSQL lost once the `COMMIT` was sent does.
    pub fn lose_commit_answers(&self, n: usize) {
        self.answers_lost.store(n, Ordering::SeqCst);
    }

    /// Makes the API reads fail (`true`) or work again (`false`).
    pub fn set_reads_fail(&self, fail: bool) {
        self.reads_fail.store(fail, Ordering::SeqCst);
    }

    pub(crate) fn reads_fail(&self) -> bool {
        self.reads_fail.load(Ordering::SeqCst)
    }

    /// Makes the writer's reloads of its state fail (`true`) or work again (`false`).
    pub fn set_loads_fail(&self, fail: bool) {
        self.loads_fail.store(fail, Ordering::SeqCst);
    }

    /// Makes commits wait (`true`) until released (`false`).
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Makes store reads wait (`true`, a database that stopped answering reads) until
    /// released (`false`): the reader threads are taken and reads queue behind them.
    pub fn set_reads_stalled(&self, stalled: bool) {
        self.reads_stalled.store(stalled, Ordering::SeqCst);
    }

    /// Makes only the portal's reads wait (`true`: a report that takes its time) until
    /// released (`false`).
    pub fn set_portal_reads_stalled(&self, stalled: bool) {
        self.portal_reads_stalled.store(stalled, Ordering::SeqCst);
    }

    /// Lets the next `after` portal reads through, then refuses the `count` after them at
    /// once as if the portal's read queue were full ([`crate::Internal::Busy`]): a queue
    /// that is full at an exact moment, such as between two runs of a CSV export.
    pub fn refuse_portal_reads(&self, after: usize, count: usize) {
        *self
            .portal_refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (after, count);
    }

    /// Portal reads asked for so far, refused ones included.
    pub fn portal_reads(&self) -> usize {
        self.portal_reads.load(Ordering::SeqCst)
    }

    /// Whether this portal read is refused ([`Faults::refuse_portal_reads`]).
    pub(crate) fn refuses_portal_read(&self) -> bool {
        self.portal_reads.fetch_add(1, Ordering::SeqCst);
        let mut refusals = self
            .portal_refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *refusals {
            (0, 0) => false,
            (0, ref mut count) => {
                *count -= 1;
                true
            }
            (ref mut after, _) => {
                *after -= 1;
                false
            }
        }
    }

    /// Reader threads holding a read while reads are stalled.
    pub fn reads_held(&self) -> usize {
        self.reads_held.load(Ordering::SeqCst)
    }

    /// Waits while reads are stalled (the portal's reads, `portal`, also while they are).
    pub(crate) fn wait_for_reads(&self, portal: bool) {
        let stalled = || {
            self.reads_stalled.load(Ordering::SeqCst)
                || (portal && self.portal_reads_stalled.load(Ordering::SeqCst))
        };
        if !stalled() {
            return;
        }
        self.reads_held.fetch_add(1, Ordering::SeqCst);
        while stalled() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.reads_held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A journal with [`Faults`].
pub struct FaultyJournal {
    inner: Box<dyn Journal>,
    faults: Faults,
}

impl std::fmt::Debug for FaultyJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyJournal")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl FaultyJournal {
    pub fn new(inner: Box<dyn Journal>, faults: Faults) -> FaultyJournal {
        FaultyJournal { inner, faults }
    }
}

impl Journal for FaultyJournal {
    fn watch(&mut self, metrics: &crate::metrics::StoreMetrics) {
        self.inner.watch(metrics);
    }
    fn load(&mut self, wallets: usize) -> Result<LoadedState, StoreError> {
        if self.faults.loads_fail.load(Ordering::SeqCst) {
            return Err(StoreError(
                "the database cannot be reached (injected fault)".to_owned(),
            ));
        }
        self.inner.load(wallets)
    }
    fn pending_outbox(
        &mut self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.inner.pending_outbox(after_id, limit)
    }
    fn pending_outbox_row(&mut self, id: i64) -> Result<Option<OutboxItem>, StoreError> {
        self.inner.pending_outbox_row(id)
    }
    fn payment_exists(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.inner.payment_exists(id)
    }
    fn payments_existing(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        self.inner.payments_existing(ids)
    }
    fn api_user_exists(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.inner.api_user_exists(id)
    }
    fn api_user_has_payments(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.inner.api_user_has_payments(id)
    }
    fn payment(&mut self, id: &Uuid) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(id)
    }
    fn refunded_total(&mut self, original: &Uuid) -> Result<i64, StoreError> {
        self.inner.refunded_total(original)
    }
    fn ledger_account(
        &mut self,
        owner: &crate::model::AccountOwner,
        currency: mkoba_ledger::Currency,
    ) -> Result<Option<mkoba_ledger::Account>, StoreError> {
        self.inner.ledger_account(owner, currency)
    }
    fn ledger_accounts(
        &mut self,
        wanted: &[(crate::model::AccountOwner, mkoba_ledger::Currency)],
    ) -> Result<Vec<(crate::model::AccountOwner, mkoba_ledger::Account)>, StoreError> {
        self.inner.ledger_accounts(wanted)
    }
    fn payments_of_party(
        &mut self,
        api_user: &Uuid,
        kind: crate::model::PaymentKind,
        party: &crate::model::Party,
    ) -> Result<Vec<Payment>, StoreError> {
        self.inner.payments_of_party(api_user, kind, party)
    }
    fn mpesa_app(&mut self, developer_id: i64) -> Result<Option<MpesaApp>, StoreError> {
        self.inner.mpesa_app(developer_id)
    }
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        assert!(
            !self.faults.panics.load(Ordering::SeqCst),
            "injected fault: the writer panics"
        );
        while self.faults.stalled.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if self.faults.disk_full() {
            return Err(StoreError(
                "database or disk is full (injected fault)".to_owned(),
            ));
        }
        self.inner.commit(batch)?;
        let lost = self
            .faults
            .answers_lost
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if lost.is_ok() {
            return Err(StoreError(
                "connection closed after COMMIT was sent (injected fault)".to_owned(),
            ));
        }
        Ok(())
    }
    fn begin(&mut self) -> Result<Option<Changes>, StoreError> {
        self.inner.begin()
    }
    fn begin_looking_up(
        &mut self,
        references: &[Uuid],
    ) -> Result<(Option<Changes>, Option<HashSet<Uuid>>), StoreError> {
        self.inner.begin_looking_up(references)
    }
    fn end(&mut self) -> Result<(), StoreError> {
        self.inner.end()
    }
    fn poll_interval(&self) -> Option<std::time::Duration> {
        self.inner.poll_interval()
    }
    fn lease(&self) -> Option<crate::lease::Lease> {
        self.inner.lease()
    }
}

impl PortalJournal for FaultyJournal {
    fn developer_email_taken(&mut self, email: &str) -> Result<bool, StoreError> {
        self.inner.developer_email_taken(email)
    }
    fn max_developer_id(&mut self) -> Result<i64, StoreError> {
        self.inner.max_developer_id()
    }
    fn api_user_developer(&mut self, id: &Uuid) -> Result<Option<i64>, StoreError> {
        self.inner.api_user_developer(id)
    }
    fn approval_developers(&mut self) -> Result<Vec<i64>, StoreError> {
        self.inner.approval_developers()
    }
    fn sandbox_login_exists(&mut self) -> Result<bool, StoreError> {
        self.inner.sandbox_login_exists()
    }
    fn account(&mut self, developer_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.account(developer_id)
    }
    fn phone_code(&mut self, developer_id: i64) -> Result<Option<PhoneCode>, StoreError> {
        self.inner.phone_code(developer_id)
    }
    fn due_mail(&mut self, now_ms: i64, limit: u32) -> Result<Vec<Mail>, StoreError> {
        self.inner.due_mail(now_ms, limit)
    }
    fn operators(&mut self) -> Result<Vec<(i64, String)>, StoreError> {
        self.inner.operators()
    }
    fn golive_requests(&mut self, filter: &GoLiveFilter) -> Result<Vec<GoLiveRequest>, StoreError> {
        self.inner.golive_requests(filter)
    }
    fn golive_request(&mut self, id: i64) -> Result<Option<GoLiveRequest>, StoreError> {
        self.inner.golive_request(id)
    }
    fn auth_request_used(&mut self, jti: &str) -> Result<bool, StoreError> {
        self.inner.auth_request_used(jti)
    }
}
