//! The single writer: group commit, the in-memory ledger and the settlement worker.
//!
//! Every change goes through one thread that owns the [`Journal`]. It takes whatever
//! commands are waiting (up to a batch limit), applies them to its in-memory state (ledger,
//! pending payments, settlement queue), commits everything as one transaction and only then
//! answers the callers. One fsync covers hundreds of requests, so durability does not cost
//! throughput, and no row lock is ever held while application code runs: the hot partner
//! account is just a number in memory that is written once per batch.
//!
//! Settlement runs in the same loop: payments whose settle time has come are decided by the
//! scenario rules and the ledger, and their status change, postings and callback outbox row
//! are committed together. A payment accepted in a batch is settled in a later one, so a 202
//! is always followed by at least one visible PENDING state.
//!
//! With several nodes on one PostgreSQL database, every pass starts with
//! [`Journal::begin`]: the store keeps the other nodes' writers out until this pass commits
//! and returns what they committed since this node's last pass, which [`Engine::catch_up`]
//! takes into memory before anything is decided. So one writer at a time still decides,
//! always on the database's current state (`docs/postgres.md`).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use mkoba_ledger::{AccountId, Currency, Ledger, LedgerError, Limit, Money, TransferId};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::model::{
    AccountOwner, ApiUser, CallbackAttempt, CallbackMethod, NewPayment, OutboxItem, OutboxState,
    Party, Payment, PaymentKind, PaymentStatus, Product,
};
use crate::scenario::{self, Outcome};
use crate::store::{
    ApiKeyRecord, Batch, Changes, Journal, LoadedState, NewAccount, OutboxUpdate, PaymentUpdate,
    StoreError, TransferRecord,
};
use crate::{CallbackRenderer, CancelError, CreateError, NotifyError, SANDBOX};

mod clock;
mod mpesa;
mod open;
mod portal;
mod wallets;
pub(crate) use mpesa::MpesaCommand;
pub use mpesa::refusal;
pub(crate) use portal::PortalCommand;

/// Work for the writer.
pub(crate) enum Command {
    CreatePayment(NewPayment, oneshot::Sender<Result<(), CreateError>>),
    CreateApiUser(ApiUser, oneshot::Sender<Result<(), CreateError>>),
    AddApiKey(ApiKeyRecord, oneshot::Sender<Result<(), CreateError>>),
    Notify {
        reference_id: Uuid,
        api_user: Uuid,
        reply: oneshot::Sender<Result<(), NotifyError>>,
    },
    RecordAttempt(CallbackAttempt, oneshot::Sender<bool>),
    /// The dispatcher's sweep: this node's pending callbacks after an id, in id order.
    PendingCallbacks {
        after_id: i64,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<OutboxItem>, crate::Internal>>,
    },
    /// One callback, if this node delivers it and it is still pending.
    PendingCallback {
        id: i64,
        reply: oneshot::Sender<Result<Option<OutboxItem>, crate::Internal>>,
    },
    Cancel {
        reference_id: Uuid,
        api_user: Uuid,
        kind: PaymentKind,
        /// Where the cancellation's callback goes, when the cancelling request names a URL
        /// of its own (else the payment's).
        callback_url: Option<String>,
        reply: oneshot::Sender<Result<(), CancelError>>,
    },
    /// Developer portal work (sign-ups, sessions, approvals, re-sends).
    Portal(PortalCommand),
    /// M-Pesa application changes.
    Mpesa(MpesaCommand),
    /// Test clocks: create, advance, delete.
    Clock(crate::test_clock::ClockCommand),
    /// Nothing: wakes the writer to settle what became due (a moved clock); answered once
    /// that pass is committed.
    Wake(oneshot::Sender<bool>),
    /// Stop: the writer finishes the pass that takes this and returns, closing the store
    /// ([`crate::Platform::shutdown`]).
    Stop,
    /// A callback no settlement produces (an asynchronous M-Pesa query result).
    QueueCallback {
        reference_id: Uuid,
        url: String,
        body: String,
        reply: oneshot::Sender<Result<(), CreateError>>,
    },
}

/// Settings the writer needs.
#[derive(Debug, Clone)]
pub(crate) struct EngineSettings {
    pub settle_delay: Duration,
    pub mpesa_answer: Duration,
    pub delivery_notification_window: Duration,
    pub opening_balance: String,
    pub partner_float: String,
    pub callback_method: CallbackMethod,
    pub max_batch: usize,
    pub wallets_in_memory: usize,
    pub pending_in_memory: usize,
    /// Of those, the most one developer's API users may hold (`engine/open.rs`).
    pub pending_per_developer: usize,
    pub mail_delivery: bool,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub clock: crate::clock::SharedClock,
    /// Where the writer publishes the test clocks for the request handlers.
    pub clocks: crate::test_clock::Clocks,
    /// Set while the store fails (from the first failure to the first success): health
    /// shows it ([`crate::Platform::store_failing`]).
    pub store_failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type Deferred = Box<dyn FnOnce(Commit) + Send>;

/// How a pass's commit ended, for its requests' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Committed,
    /// Rolled back: nothing of the pass is stored.
    NotCommitted,
    /// The commit failed and the store could not be read to tell whether it landed (a
    /// connection to PostgreSQL lost with the `COMMIT` sent): a payment's request is told
    /// so (an internal error: read its status before sending it again), not to retry.
    Unknown,
}

pub(crate) struct Engine {
    journal: Box<dyn Journal>,
    settings: EngineSettings,
    render: CallbackRenderer,
    outbox: crate::outbox::Feed,
    ledger: Ledger,
    owners: HashMap<(String, Currency), AccountId>,
    /// Which wallets are in memory, bounded (`engine/wallets.rs`).
    wallets: wallets::Wallets,
    /// Payments not final yet, at most `settings.pending_in_memory` (new ones are refused
    /// past it; a start loads every one the database holds), and at most half of that of
    /// one developer's API users (`engine/open.rs`).
    pending: open::Open,
    /// New payments were refused for the bound above, and that was logged.
    pending_full: bool,
    /// Developers whose new payments are refused for their share of that bound (logged
    /// once each; at most one entry per developer with open payments).
    pending_shares_full: HashSet<i64>,
    /// Store failures in a row (commits, reloads, starts of a pass: a full disk, a lost
    /// database): the writer pauses before each next pass ([`commit_pause`]) instead of
    /// failing hundreds a second; while there are any, health shows the store failing
    /// (`EngineSettings::store_failing`).
    store_failures: u32,
    /// Pending payments by the real time they are due.
    due: BinaryHeap<Reverse<(i64, Uuid)>>,
    /// Test clocks by the API user they drive, and that API user's payments by the clock
    /// time they are due (`engine/clock.rs`).
    clocks: HashMap<Uuid, crate::test_clock::TestClock>,
    clock_due: HashMap<Uuid, BinaryHeap<Reverse<(i64, Uuid)>>>,
    /// Where the clocks are published for the request handlers.
    published_clocks: crate::test_clock::Clocks,
    next_transfer: u64,
    /// Added to a transfer's id before it is shaped into a transaction id
    /// ([`crate::secrets::transaction_id_offset`]): each installation's ids start elsewhere.
    transaction_id_offset: u64,
    next_account: u64,
    next_outbox: i64,
    portal: portal::PortalState,
    waiters: crate::Waiters,
    subscriptions: crate::Subscriptions,
    /// The in-memory state may differ from the database (a reload failed): reload before
    /// deciding anything again.
    stale: bool,
    /// Commands held for the next pass, which takes them first (a test clock's advance
    /// after a payment of its API user in the same pass, `engine/clock.rs`): at most one
    /// pass's commands (`max_batch`), since the next pass applies them before any other.
    carried: Vec<Command>,
    /// The runtime the requests wait on, when the platform was opened on one: a pass's
    /// answers are handed to it in one task ([`Engine::answer`]). The server opens the
    /// platform on the runtime that serves its requests; were that runtime shut down first,
    /// the answers would be dropped and their callers told the writer is gone.
    runtime: Option<tokio::runtime::Handle>,
}

/// What one pass of the loop accumulates before it commits.
#[derive(Default)]
struct Pass {
    batch: Batch,
    replies: Vec<Deferred>,
    seen_payments: HashSet<Uuid>,
    /// Reference ids of this pass's new payments looked up at once, and those taken.
    looked_up: HashSet<Uuid>,
    taken: std::collections::HashSet<Uuid>,
    seen_users: HashSet<Uuid>,
    newly_due: Vec<(i64, Uuid)>,
    notified: HashMap<Uuid, u32>,
    /// Refunds accepted in this pass, by original payment (minor units).
    refunded: HashMap<Uuid, i64>,
    portal: portal::PortalPass,
    /// M-Pesa applications as this pass leaves them, by developer.
    mpesa_apps: HashMap<i64, crate::mpesa::MpesaApp>,
    /// Payments this pass makes final (counted once it commits).
    finalized: Vec<(PaymentStatus, crate::model::Product)>,
}

impl Pass {
    /// Whether this pass made payment `id` fail (a pre-approval or mandate cancelled): its
    /// commit is not in the journal yet, so a read there still finds it as it was.
    fn failed_in_pass(&self, id: &Uuid) -> bool {
        self.batch
            .payment_updates
            .iter()
            .any(|u| u.reference_id == *id && u.status == PaymentStatus::Failed)
    }
}

/// The reference ids of a pass's new payments, looked up at once as the pass begins.
fn new_references(commands: &[Command]) -> Vec<Uuid> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::CreatePayment(new, _) => Some(new.reference_id),
            _ => None,
        })
        .collect()
}

impl Engine {
    pub(crate) fn new(
        journal: Box<dyn Journal>,
        state: LoadedState,
        settings: EngineSettings,
        render: CallbackRenderer,
        outbox: crate::outbox::Feed,
        waiters: crate::Waiters,
        subscriptions: crate::Subscriptions,
    ) -> Engine {
        let published_clocks = settings.clocks.clone();
        let mut engine = Engine {
            journal,
            settings,
            render,
            outbox,
            ledger: Ledger::new(),
            owners: HashMap::new(),
            wallets: wallets::Wallets::default(),
            pending: open::Open::default(),
            pending_full: false,
            pending_shares_full: HashSet::new(),
            store_failures: 0,
            due: BinaryHeap::new(),
            clocks: HashMap::new(),
            clock_due: HashMap::new(),
            published_clocks,
            next_transfer: 1,
            transaction_id_offset: 0,
            next_account: 1,
            next_outbox: 1,
            portal: portal::PortalState::default(),
            waiters,
            subscriptions,
            stale: false,
            carried: Vec::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        engine.install(state);
        engine
    }

    fn install(&mut self, state: LoadedState) {
        self.ledger = Ledger::new();
        self.owners.clear();
        self.wallets.reset();
        self.pending.clear();
        self.due.clear();
        self.clock_due.clear();
        self.clocks = state
            .test_clocks
            .into_iter()
            .map(|c| (c.api_user, c))
            .collect();
        self.publish_clocks();
        let mut idle_wallets = 0;
        for (account, owner) in state.accounts {
            if matches!(owner, AccountOwner::Wallet(_)) {
                self.wallets.used(account.id);
                idle_wallets +=
                    usize::from(account.debits_pending == 0 && account.credits_pending == 0);
            }
            self.owners
                .insert((owner.key(), account.currency), account.id);
            self.ledger.restore_account(account);
        }
        for t in state.pending_transfers {
            self.ledger.restore_pending(t);
        }
        self.ledger.take_touched();
        // As many idle wallets as were asked for: others may be on disk only.
        if idle_wallets >= self.settings.wallets_in_memory {
            self.wallets.some_on_disk_only();
        }
        self.drop_idle_wallets();
        for mut p in state.pending_payments {
            // Stored before M-Pesa payments had a no-answer deadline (2026-12-07): one
            // waiting for its customer waited for ever, its money held. It gets the
            // deadline from its creation now (long past, mostly: it expires in the first
            // pass). Kept in memory only: its settlement writes the outcome.
            if p.product == Product::Mpesa && p.settle_at_ms.is_none() && p.expires_at_ms.is_none()
            {
                let deadline = self.mpesa_answer_by(p.created_at_ms);
                p.expires_at_ms = Some(deadline);
                p.settle_at_ms = Some(deadline);
            }
            let (at, id) = (p.settle_at_ms, p.reference_id);
            let developer = self.developer_or_unknown(&p.api_user);
            self.pending.insert(p, developer);
            if let Some(at) = at {
                self.schedule(at, id);
            }
        }
        self.next_account = state.max_account_id + 1;
        self.next_transfer = state.max_transfer_id + 1;
        self.transaction_id_offset = state
            .token_secret
            .as_deref()
            .map_or(0, crate::secrets::transaction_id_offset);
        self.next_outbox = state.max_outbox_id + 1;
        // Whatever is pending is read from the database by the dispatcher, in pages.
        self.outbox.sweep();
        self.install_portal();
    }

    /// Takes in what other writers of the same database committed since this one's last
    /// pass (several nodes on PostgreSQL), so that it decides on the database's state.
    fn catch_up(&mut self, changes: Changes) {
        for (account, owner) in changes.accounts {
            if matches!(owner, AccountOwner::Wallet(_)) {
                self.wallets.used(account.id);
            }
            self.owners
                .insert((owner.key(), account.currency), account.id);
            self.next_account = self.next_account.max(account.id.0 + 1);
            self.ledger.restore_account(account);
        }
        for t in changes.transfers {
            self.next_transfer = self.next_transfer.max(t.id.0 + 1);
            if t.state == mkoba_ledger::TransferState::Pending {
                self.ledger.restore_pending(t);
            } else {
                self.ledger.forget_pending(t.id);
            }
        }
        for p in changes.pending_payments {
            let (at, id) = (p.settle_at_ms, p.reference_id);
            let new = !self.pending.contains_key(&id);
            let developer = self.developer_or_unknown(&p.api_user);
            self.pending.insert(p, developer);
            if let Some(at) = at
                && new
            {
                self.schedule(at, id);
            }
        }
        for id in &changes.final_payments {
            self.pending.remove(id);
        }
        self.wake(changes.final_payments.into_iter());
        if !changes.subscription_keys.is_empty() {
            crate::cache_keys(&self.subscriptions, changes.subscription_keys);
        }
        if let Some(ids) = changes.approval_developers {
            self.portal.set_approval_developers(ids);
        }
        if let Some(clocks) = changes.test_clocks {
            self.take_clocks(clocks);
        }
        self.next_outbox = self.next_outbox.max(changes.max_outbox_id + 1);
        if changes.outbox_taken_over > 0 {
            tracing::warn!(
                callbacks = changes.outbox_taken_over,
                from = changes.outbox_taken_from.join(", "),
                "taking over the undelivered callbacks of a node that stopped"
            );
            self.outbox.sweep();
        }
    }

    /// Runs passes until a stop or every sender is gone (then `None`), or until the store
    /// can write no more for good ([`Journal::gone`]: then why).
    pub(crate) fn run(mut self, rx: Receiver<Box<Command>>) -> Option<String> {
        let poll = self.journal.poll_interval();
        loop {
            // After failed commits, the requests that come meanwhile wait (within the
            // writer queue's bound) for one pass after the pause, rather than each failing
            // at once, and nothing is retried faster than the pause.
            if let Some(pause) = commit_pause(self.store_failures) {
                std::thread::sleep(pause);
            }
            let wait = match self.due.peek() {
                Some(Reverse((at, _))) => Duration::from_millis(
                    (*at - self.settings.clock.now_ms()).clamp(0, 1_000) as u64,
                ),
                None => Duration::from_secs(1),
            };
            let wait = poll.map_or(wait, |p| wait.min(p));
            // A payment due now on a test clock (accepted with no delay) settles at once, and
            // commands held over run at once.
            let wait = if self.clock_due_now() || !self.carried.is_empty() {
                Duration::ZERO
            } else {
                wait
            };
            let mut commands = std::mem::take(&mut self.carried);
            match rx.recv_timeout(wait) {
                Ok(c) => commands.push(*c),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
            while commands.len() < self.settings.max_batch {
                match rx.try_recv() {
                    Ok(c) => commands.push(*c),
                    Err(_) => break,
                }
            }
            // A stop ends the loop once the pass with everything before it is committed.
            let stopping = commands.iter().any(|c| matches!(c, Command::Stop));
            commands.retain(|c| !matches!(c, Command::Stop));
            self.pass(commands);
            if stopping {
                return None;
            }
            if let Some(why) = self.journal.gone() {
                tracing::error!(error = %why, "the writer stops for good");
                return Some(why);
            }
        }
    }

    fn pass(&mut self, commands: Vec<Command>) {
        if self.stale {
            match self.journal.load(self.settings.wallets_in_memory) {
                Ok(state) => {
                    self.install(state);
                    self.stale = false;
                    self.store_works();
                }
                Err(e) => self.store_failed("reloading state failed", &e),
            }
        }
        let metrics = self.settings.metrics.clone();
        let started = std::time::Instant::now();
        if !commands.is_empty() {
            metrics.writer_batch.observe(commands.len() as f64);
        }
        // With other writers on the database, take in what they did first (this also keeps
        // them out until this pass commits). Not on a state that failed to reload. The new
        // payments' reference ids are looked up with it.
        let references = new_references(&commands);
        let mut pass = Pass::default();
        let began = !self.stale
            && match self.journal.begin_looking_up(&references) {
                Ok((changes, taken)) => {
                    if let Some(changes) = changes {
                        self.catch_up(changes);
                    }
                    if let Some(taken) = taken {
                        pass.looked_up = references.into_iter().collect();
                        pass.taken = taken;
                    }
                    true
                }
                Err(e) => {
                    self.store_failed(
                        "starting a pass failed; answering its requests with an error",
                        &e,
                    );
                    false
                }
            };
        metrics
            .writer_lock_wait_seconds
            .observe(started.elapsed().as_secs_f64());
        let now = self.settings.clock.now_ms();
        if !began {
            for command in commands {
                self.apply(&mut pass, command, now);
            }
            self.failed(pass);
            return;
        }
        self.look_up_wallets(&commands);
        // Settle what is due first: those payments were committed in earlier passes.
        let mut settled = 0;
        while settled < self.settings.max_batch {
            match self.due.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Reverse((_, id)) = self.due.pop().expect("peeked");
            self.settle_decided(&mut pass, id, now, None);
            settled += 1;
        }
        self.settle_clocks_due(&mut pass, self.settings.max_batch.saturating_sub(settled));
        for command in commands {
            self.apply(&mut pass, command, now);
        }
        pass.batch.accounts = self.ledger.take_touched();
        pass.batch.mpesa_apps = pass.mpesa_apps.drain().map(|(_, app)| app).collect();
        if pass.batch.is_empty() {
            if let Err(e) = self.journal.end() {
                tracing::error!(error = %e, "ending a pass failed");
            }
            for reply in pass.replies {
                reply(Commit::Committed);
            }
            return;
        }
        let committing = std::time::Instant::now();
        let lease = self.outbox.generation();
        let committed = self.journal.commit(&pass.batch);
        metrics
            .writer_commit_seconds
            .observe(committing.elapsed().as_secs_f64());
        metrics
            .writer_pass_seconds
            .observe(started.elapsed().as_secs_f64());
        match committed {
            Ok(()) => {
                self.store_works();
                for (status, product) in pass.finalized.drain(..) {
                    metrics
                        .payments_final
                        .get_or_create(&vec![
                            ("status", status.as_str().to_owned()),
                            ("product", product.as_str().to_owned()),
                        ])
                        .inc();
                }
                if !pass.batch.subscription_keys.is_empty() {
                    crate::cache_keys(&self.subscriptions, pass.batch.subscription_keys.clone());
                }
                // Before the replies: a caller told "advanced" reads the new time.
                if !pass.batch.test_clocks.is_empty() {
                    self.publish_clocks();
                }
                self.answer(pass.replies);
                for (at, id) in pass.newly_due {
                    self.schedule(at, id);
                }
                for item in pass.batch.outbox {
                    self.outbox.offer(item, lease);
                }
                self.wake_waiters(&pass.batch.payment_updates);
                self.drop_idle_wallets();
            }
            Err(e) => {
                metrics.writer_failed_commits.inc();
                self.store_failed(
                    "group commit failed; answering the batch with an error, reloading state and trying again with a growing pause",
                    &e,
                );
                self.failed(pass);
            }
        }
    }

    /// The store failed (a commit, a reload, the start of a pass): counted, so that the
    /// writer pauses longer before each next pass ([`commit_pause`]), and logged as an
    /// error the first time only, so an outage of the store (a full disk, PostgreSQL down)
    /// is one ERROR line and one INFO line when it ends, not a line per try.
    fn store_failed(&mut self, what: &str, e: &StoreError) {
        self.settings
            .store_failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if self.store_failures == 0 {
            tracing::error!(error = %e, "{what}");
        } else {
            tracing::debug!(error = %e, failures = self.store_failures, "{what} (again)");
        }
        self.store_failures = self.store_failures.saturating_add(1);
    }

    /// The store worked (a commit, a reload): after failures, the reads are told and the
    /// recovery logged (nothing at all on the passes in between).
    fn store_works(&mut self) {
        if self.store_failures > 0 {
            self.settings
                .store_failing
                .store(false, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(
                failures = self.store_failures,
                "group commits succeed again"
            );
            self.store_failures = 0;
        }
    }

    /// Answers a committed pass's requests. Each answer wakes the request's task, and woken
    /// from this thread, outside the runtime, nearly every wake was a system call that
    /// unparked a worker (`strace`: a `futex` or an `eventfd` write per answer), on the
    /// thread every request waits for. So a pass's answers go to the runtime as one task,
    /// which wakes their tasks from inside it: one unpark a pass (docs/architecture.md,
    /// "a pass's answers handed to the runtime as one task").
    fn answer(&self, replies: Vec<Deferred>) {
        let many = replies.len() > 1;
        let send = move || {
            replies
                .into_iter()
                .for_each(|reply| reply(Commit::Committed));
        };
        match &self.runtime {
            Some(runtime) if many => drop(runtime.spawn(async move { send() })),
            _ => send(),
        }
    }

    /// Reloads the state a pass whose commit failed may have changed in memory, and
    /// answers its requests. A commit can fail and land all the same (PostgreSQL's
    /// connection lost once the `COMMIT` was sent): the pass is one transaction, so if its
    /// first new payment is in the database now, all of it is, and its requests are
    /// answered as committed; when the store cannot be read to tell, a payment's request is
    /// told the outcome is unknown ([`Commit::Unknown`]) rather than to send it again.
    fn failed(&mut self, pass: Pass) {
        let reloaded = match self.journal.load(self.settings.wallets_in_memory) {
            Ok(state) => {
                self.install(state);
                true
            }
            Err(e) => {
                self.store_failed("reloading state after a failed pass failed", &e);
                self.stale = true;
                false
            }
        };
        let first = pass.batch.new_payments.first().map(|p| p.reference_id);
        let outcome = match first {
            Some(id) if reloaded => match self.journal.payment(&id) {
                Ok(Some(_)) => Commit::Committed,
                Ok(None) => Commit::NotCommitted,
                Err(_) => Commit::Unknown,
            },
            Some(_) => Commit::Unknown,
            None => Commit::NotCommitted,
        };
        match outcome {
            Commit::Committed => {
                tracing::warn!(
                    "the failed group commit landed after all (its answer was lost): answering its requests as committed"
                );
                self.wake_waiters(&pass.batch.payment_updates);
            }
            Commit::Unknown => tracing::warn!(
                "whether the failed group commit landed cannot be read now: its payments are answered with an internal error (their status tells)"
            ),
            Commit::NotCommitted => {}
        }
        for reply in pass.replies {
            reply(outcome);
        }
    }

    fn apply(&mut self, pass: &mut Pass, command: Command, now: i64) {
        match command {
            Command::CreatePayment(new, reply) => {
                let result = self.accept(pass, new, now);
                pass.replies.push(Box::new(move |outcome| {
                    let _ = reply.send(match outcome {
                        Commit::Committed => result,
                        Commit::NotCommitted => Err(CreateError::Unavailable),
                        Commit::Unknown => Err(CreateError::Internal),
                    });
                }));
            }
            Command::CreateApiUser(user, reply) => {
                let result = match self.journal.api_user_exists(&user.id) {
                    _ if pass.seen_users.contains(&user.id) => Err(CreateError::Duplicate),
                    Ok(true) => Err(CreateError::Duplicate),
                    Ok(false) => {
                        pass.seen_users.insert(user.id);
                        pass.batch.api_users.push(user);
                        Ok(())
                    }
                    Err(e) => internal(e),
                };
                defer(pass, reply, result, Err(CreateError::Unavailable));
            }
            Command::AddApiKey(key, reply) => {
                let result = match self.journal.api_user_exists(&key.api_user) {
                    _ if pass.seen_users.contains(&key.api_user) => {
                        pass.batch.api_keys.push(key);
                        Ok(())
                    }
                    Ok(true) => {
                        pass.batch.api_keys.push(key);
                        Ok(())
                    }
                    Ok(false) => Err(CreateError::NotFound),
                    Err(e) => internal(e),
                };
                defer(pass, reply, result, Err(CreateError::Unavailable));
            }
            Command::Notify {
                reference_id,
                api_user,
                reply,
            } => {
                let result = self.notify(pass, reference_id, api_user, now);
                defer(pass, reply, result, Err(NotifyError::Internal));
            }
            Command::Cancel {
                reference_id,
                api_user,
                kind,
                callback_url,
                reply,
            } => {
                let result = self.cancel(pass, reference_id, api_user, kind, callback_url, now);
                defer(pass, reply, result, Err(CancelError::Internal));
            }
            Command::Wake(reply) => defer(pass, reply, true, false),
            // Taken out of every pass by `run`.
            Command::Stop => {}
            Command::Portal(command) => self.apply_portal(pass, command, now),
            Command::Mpesa(command) => self.apply_mpesa(pass, command, now),
            Command::Clock(command) => self.apply_clock(pass, command),
            Command::QueueCallback {
                reference_id,
                url,
                body,
                reply,
            } => {
                pass.batch.outbox.push(OutboxItem {
                    id: self.next_outbox,
                    reference_id,
                    url,
                    method: CallbackMethod::Post,
                    body,
                    attempts: 0,
                    next_attempt_at_ms: now,
                });
                self.next_outbox += 1;
                defer(pass, reply, Ok(()), Err(CreateError::Unavailable));
            }
            Command::PendingCallbacks {
                after_id,
                limit,
                reply,
            } => {
                // Rows of earlier passes only: this pass's rows are offered once committed,
                // and their ids are above every row listed here.
                let rows = self
                    .journal
                    .pending_outbox(after_id, limit)
                    .map_err(crate::logged);
                let _ = reply.send(rows);
            }
            Command::PendingCallback { id, reply } => {
                let row = self.journal.pending_outbox_row(id).map_err(crate::logged);
                let _ = reply.send(row);
            }
            Command::RecordAttempt(attempt, reply) => {
                let state = match (attempt.status_code, attempt.retry_at_ms) {
                    (Some(code), _) if (200..300).contains(&code) => OutboxState::Delivered,
                    (_, Some(_)) => OutboxState::Pending,
                    (_, None) => OutboxState::Failed,
                };
                let mut update = OutboxUpdate {
                    id: attempt.outbox_id,
                    state,
                    attempts: attempt.attempt,
                    next_attempt_at_ms: attempt.retry_at_ms.unwrap_or(attempt.at_ms),
                    first_attempt: None,
                };
                if attempt.attempt == 1 {
                    update.first_attempt = Some(attempt);
                } else {
                    pass.batch.attempts.push(attempt);
                }
                pass.batch.outbox_updates.push(update);
                defer(pass, reply, true, false);
            }
        }
    }

    /// When an M-Pesa customer asked at `from` (the API user's time) has not answered in
    /// time: the synchronous timeout later (`--mpesa-sync-timeout-ms`, as the real gateway
    /// gives up on the prompt after about a minute). Without it such a payment stayed
    /// pending for ever, no result reached an asynchronous result URL, and a C2B's money
    /// stayed held.
    fn mpesa_answer_by(&self, from: i64) -> i64 {
        let answer = i64::try_from(self.settings.mpesa_answer.as_millis()).unwrap_or(i64::MAX);
        from.saturating_add(answer)
    }

    fn accept(&mut self, pass: &mut Pass, new: NewPayment, now: i64) -> Result<(), CreateError> {
        if holds_nul(&new) {
            return Err(CreateError::Refused(refusal::TEXT_WITH_NUL));
        }
        let now = self.time_for(&new.api_user, now);
        if pass.seen_payments.contains(&new.reference_id) {
            return Err(CreateError::Duplicate);
        }
        let exists = if pass.looked_up.contains(&new.reference_id) {
            Ok(pass.taken.contains(&new.reference_id))
        } else {
            self.journal.payment_exists(&new.reference_id)
        };
        match exists {
            Ok(true) => return Err(CreateError::Duplicate),
            Ok(false) => {}
            Err(e) => return internal(e),
        }
        if self.pending.len() >= self.settings.pending_in_memory {
            if !std::mem::replace(&mut self.pending_full, true) {
                tracing::warn!(
                    pending = self.pending.len(),
                    "as many open payments as --max-pending-payments allows: refusing new ones until some are final"
                );
            }
            return Err(CreateError::Unavailable);
        }
        self.pending_full = false;
        let developer = self.developer_of(&new.api_user)?;
        let developer = developer.unwrap_or(open::UNKNOWN_DEVELOPER);
        if self.pending.of_developer(developer) >= self.settings.pending_per_developer {
            if self.pending_shares_full.insert(developer) {
                tracing::warn!(
                    developer,
                    open = self.pending.of_developer(developer),
                    "a developer holds --max-pending-per-developer open payments: refusing its new payments until some are final"
                );
            }
            return Err(CreateError::Unavailable);
        }
        self.pending_shares_full.remove(&developer);
        if let Some(terms) = &new.mandate {
            if !self.mandate_active(pass, terms)? {
                return Err(CreateError::Refused(refusal::MANDATE_INACTIVE));
            }
            if !self.keeps_to_schedule(pass, &new, terms, now)? {
                return Err(CreateError::Refused(refusal::OFF_SCHEDULE));
            }
        }
        let outcome = outcome_of(
            &new.environment,
            new.kind,
            new.product,
            &new.party,
            new.amount,
            new.external_id.as_deref(),
        );
        let settle_at = match outcome {
            Outcome::StayPending => None,
            // The virtual phone: the payer approves or rejects in the portal.
            Outcome::Succeed if self.waits_for_payer(pass, &new, now) => None,
            _ => Some(now + self.settings.settle_delay.as_millis() as i64),
        };
        // A payer who has not acted by the expiry never will: settle then, as EXPIRED.
        // An M-Pesa payment's is the deadline of the customer's prompt, for one that waits
        // for an answer (a number that never answers, the virtual phone); one the scenario
        // settles keeps its settle delay, however long.
        let expiry = if new.product == Product::Mpesa {
            settle_at.is_none().then(|| self.mpesa_answer_by(now))
        } else {
            new.expires_at_ms
        };
        // No later than a test clock's end (9899-12-31T23:59:59Z), which an advance reaches
        // and cannot pass: a payment due after it would never settle.
        let settle_at = match (settle_at, expiry) {
            (Some(at), Some(expiry)) => Some(at.min(expiry)),
            (at, expiry) => at.or(expiry),
        }
        .map(|at| at.min(crate::test_clock::LAST_MS));
        let mut payment = Payment::accepted(new, now, settle_at);
        payment.expires_at_ms = expiry;
        if let Some(original) = payment.refund_of {
            if payment.kind == PaymentKind::MpesaReversal {
                // M-Pesa answers a bad reversal at once instead of failing it later.
                if let Some(reason) = self.reversal_problem(pass, &payment, original)? {
                    return Err(CreateError::Refused(reason));
                }
            } else if let Outcome::Fail(reason) = outcome {
                // A sandbox test key or number that fails the refund decides it, whatever
                // the original (a developer scripts the error cases against any payment);
                // decided now, like a refund that cannot be paid, so that it takes nothing
                // of what may be refunded while it waits to settle.
                payment.reason = Some(reason);
            } else {
                payment.reason = self.refund_problem(pass, &payment, original)?;
            }
        }
        if outcome == Outcome::Succeed && payment.reason.is_none() && payment.kind.moves_money() {
            // Reserve the money now; if it is not there the payment still gets its 202 and
            // fails with NOT_ENOUGH_FUNDS when it is settled.
            match self.reserve(pass, &payment, now) {
                Ok(Some(t)) => payment.transfer_id = Some(t),
                Ok(None) => {}
                Err(e) => return internal(e),
            }
        }
        if let Some(original) = payment.refund_of
            && payment.reason.is_none()
        {
            *pass.refunded.entry(original).or_insert(0) += payment.amount.minor();
        }
        pass.seen_payments.insert(payment.reference_id);
        let id = payment.reference_id;
        let now_in_this_pass =
            settle_at.is_some_and(|at| at <= now) && self.settles_at_once(&payment);
        if let Some(at) = settle_at.filter(|_| !now_in_this_pass) {
            pass.newly_due.push((at, id));
        }
        pass.batch.new_payments.push(payment.clone());
        self.pending.insert(payment, developer);
        if now_in_this_pass {
            self.settle_decided(pass, id, now, None);
        }
        Ok(())
    }

    /// Whether a payment due now is settled in the pass that accepts it, so that its
    /// acceptance and its outcome are one commit ([`Payment::settles_with_acceptance`]).
    /// Its caller sees no pending state either way, and saves a second commit's wait (issue
    /// 17: M-Pesa's synchronous C2B took two passes, each ending in an fsync). A MoMo
    /// request-to-pay, an operation with a result URL (whose result must not overtake its
    /// acknowledgement) and a payment on a test clock are settled in a later pass, as
    /// before.
    fn settles_at_once(&self, payment: &Payment) -> bool {
        payment.settles_with_acceptance() && !self.clocks.contains_key(&payment.api_user)
    }

    /// Why a refund cannot be paid, decided when it is accepted (it then fails at
    /// settlement with that reason): the original must be a successful collection of the
    /// same partner (an API user of the same developer, in the same environment: MTN's
    /// products each have their API user), in the same currency, and refunds never exceed
    /// what it moved.
    fn refund_problem(
        &mut self,
        pass: &mut Pass,
        refund: &Payment,
        original: Uuid,
    ) -> Result<Option<crate::reason::FailureReason>, CreateError> {
        let Some(o) = self.journal.payment(&original)? else {
            return Ok(Some(crate::reason::FailureReason::TransactionNotFound));
        };
        let same_partner = o.api_user == refund.api_user
            || (o.environment == refund.environment && {
                let owner = self.developer_of(&o.api_user)?;
                owner.is_some() && owner == self.developer_of(&refund.api_user)?
            });
        if !same_partner || !o.kind.is_refundable() {
            return Ok(Some(crate::reason::FailureReason::TransactionNotFound));
        }
        if o.status != PaymentStatus::Successful {
            return Ok(Some(crate::reason::FailureReason::NotAllowed));
        }
        if o.currency() != refund.currency() {
            return Ok(Some(crate::reason::FailureReason::InvalidCurrency));
        }
        let committed = self.journal.refunded_total(&original)?;
        let in_batch = pass.refunded.get(&original).copied().unwrap_or(0);
        if committed + in_batch + refund.amount.minor() > o.amount.minor() {
            return Ok(Some(crate::reason::FailureReason::NotAllowed));
        }
        Ok(None)
    }

    /// Reserves the payment's amount (wallet → partner for a collection, partner → wallet
    /// for a payout); `None` when the paying side is short of funds.
    fn reserve(
        &mut self,
        pass: &mut Pass,
        payment: &Payment,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let (debit, credit) = if payment.kind.is_mpesa() {
            self.mpesa_legs(pass, payment, now)?
        } else {
            let currency = payment.currency();
            let wallet = if crate::widget::is_widget_payer(&payment.party) {
                self.widget_payer(pass, payment, now)?
            } else {
                self.wallet(pass, &payment.party.wallet_key(), currency, now)?
            };
            let partner = self.partner(pass, payment, now)?;
            if payment.kind.is_collection() {
                (wallet, partner)
            } else {
                (partner, wallet)
            }
        };
        let id = self.next_transfer;
        match self.ledger.create_transfer(
            TransferId(id),
            debit,
            credit,
            payment.amount.minor(),
            true,
        ) {
            Ok(t) => {
                self.next_transfer += 1;
                pass.batch.transfers.push(TransferRecord {
                    transfer: t,
                    reference_id: Some(payment.reference_id),
                    at_ms: now,
                });
                Ok(Some(id))
            }
            Err(LedgerError::InsufficientFunds(_)) => Ok(None),
            Err(e) => Err(StoreError(format!("ledger refused a reservation: {e}"))),
        }
    }

    fn account(
        &mut self,
        pass: &mut Pass,
        owner: AccountOwner,
        currency: Currency,
        limit: Limit,
    ) -> AccountId {
        let key = (owner.key(), currency);
        if let Some(id) = self.owners.get(&key) {
            return *id;
        }
        let id = AccountId(self.next_account);
        self.next_account += 1;
        self.ledger
            .open_account(id, currency, limit)
            .expect("fresh account id");
        self.owners.insert(key, id);
        pass.batch.new_accounts.push(NewAccount {
            id,
            owner,
            currency,
            limit,
        });
        id
    }

    /// The wallet for a party, opened on first use with the configured opening balance,
    /// minted from the funding account. Every environment funds new wallets: the opening
    /// balance is the emulator's stand-in for the customer's own money (test numbers, not
    /// funding, are what is sandbox-only).
    fn wallet(
        &mut self,
        pass: &mut Pass,
        wallet_key: &str,
        currency: Currency,
        now: i64,
    ) -> Result<AccountId, StoreError> {
        let opening = Some(self.settings.opening_balance.clone());
        let owner = AccountOwner::Wallet(wallet_key.to_owned());
        self.funded(pass, owner, currency, opening, now)
    }

    /// The wallet of a Collection Widget invoice's payer (one per invoice: whoever scans its
    /// QR code), opened with the opening balance or the invoice's amount if that is more:
    /// the sandbox decides a widget payment by its amount alone (MTN: any amount past 79
    /// succeeds), and 100,001 EUR failed `NOT_ENOUGH_FUNDS` on the opening balance.
    fn widget_payer(
        &mut self,
        pass: &mut Pass,
        payment: &Payment,
        now: i64,
    ) -> Result<AccountId, StoreError> {
        let currency = payment.currency();
        let opening = Money::parse_positive(&self.settings.opening_balance, currency)
            .map_or(0, |m| m.minor())
            .max(payment.amount.minor());
        let opening = Money::from_minor(opening, currency).to_decimal_string();
        let owner = AccountOwner::Wallet(payment.party.wallet_key());
        self.funded(pass, owner, currency, Some(opening), now)
    }

    /// The partner's account for the payment's product, opened on first use; a disbursement
    /// or remittance account starts with the configured float.
    fn partner(
        &mut self,
        pass: &mut Pass,
        payment: &Payment,
        now: i64,
    ) -> Result<AccountId, StoreError> {
        let owner = AccountOwner::Partner {
            api_user: payment.api_user,
            product: payment.product,
        };
        let float =
            (payment.product != Product::Collection).then(|| self.settings.partner_float.clone());
        self.funded(pass, owner, payment.currency(), float, now)
    }

    /// An account that receives `opening` (major units) from the funding account when it is
    /// first opened.
    fn funded(
        &mut self,
        pass: &mut Pass,
        owner: AccountOwner,
        currency: Currency,
        opening: Option<String>,
        now: i64,
    ) -> Result<AccountId, StoreError> {
        if let Some(id) = self.known_account(&owner, currency)? {
            return Ok(id);
        }
        let wallet = matches!(owner, AccountOwner::Wallet(_));
        let account = self.account(pass, owner, currency, Limit::NoOverdraft);
        if wallet {
            self.wallets.used(account);
        }
        let opening = opening.and_then(|o| Money::parse_positive(&o, currency).ok());
        if let Some(opening) = opening {
            let funding = self.account(pass, AccountOwner::Funding, currency, Limit::Unbounded);
            let id = self.next_transfer;
            let t = self
                .ledger
                .create_transfer(TransferId(id), funding, account, opening.minor(), false)
                .map_err(|e| StoreError(format!("funding an account failed: {e}")))?;
            self.next_transfer += 1;
            pass.batch.transfers.push(TransferRecord {
                transfer: t,
                reference_id: None,
                at_ms: now,
            });
        }
        Ok(account)
    }

    /// Settles a pending payment: by the payer's decision when `decided` is given (the
    /// virtual phone), otherwise by the scenario rules.
    fn settle_decided(
        &mut self,
        pass: &mut Pass,
        id: Uuid,
        now: i64,
        decided: Option<Result<(), crate::reason::FailureReason>>,
    ) {
        let Some(mut payment) = self.pending.remove(&id) else {
            return;
        };
        let now = self.time_for(&payment.api_user, now);
        let expired = payment.expires_at_ms.is_some_and(|e| now >= e);
        let outcome = match payment.reason.take() {
            Some(decided) => Err(decided),
            None if expired => Err(crate::reason::FailureReason::Expired),
            None if decided.is_some() => decided.unwrap_or(Ok(())),
            None => match outcome_of(
                &payment.environment,
                payment.kind,
                payment.product,
                &payment.party,
                payment.amount,
                payment.external_id.as_deref(),
            ) {
                Outcome::Fail(reason) => Err(reason.to_owned()),
                Outcome::Succeed => Ok(()),
                Outcome::StayPending => {
                    let developer = self.developer_or_unknown(&payment.api_user);
                    self.pending.insert(payment, developer);
                    return;
                }
            },
        };
        let result = match (outcome, payment.transfer_id) {
            (Err(reason), Some(t)) => self.finish(pass, t, false, id, now).and(Err(reason)),
            (Err(reason), None) => Err(reason),
            (Ok(()), Some(t)) => self.finish(pass, t, true, id, now),
            (Ok(()), None) if !payment.kind.moves_money() => Ok(()),
            (Ok(()), None) => {
                // Funds were short when it was accepted (or the reservation was lost in a
                // restart): try once more, then fail.
                match self.reserve(pass, &payment, now) {
                    Ok(Some(t)) => {
                        payment.transfer_id = Some(t);
                        self.finish(pass, t, true, id, now)
                    }
                    Ok(None) => Err(crate::reason::FailureReason::NotEnoughFunds),
                    Err(e) => {
                        tracing::error!(error = %e, transfer.reference_id = %id, "settlement failed");
                        Err(crate::reason::FailureReason::InternalProcessingError)
                    }
                }
            }
        };
        match result {
            Ok(()) => {
                payment.status = PaymentStatus::Successful;
                let shaped = payment.transfer_id.map(|t| t + self.transaction_id_offset);
                payment.financial_transaction_id = if payment.kind.is_mpesa() {
                    shaped.map(crate::mpesa::transaction_id)
                } else {
                    shaped.map(financial_transaction_id)
                };
            }
            Err(reason) => {
                payment.status = PaymentStatus::Failed;
                payment.reason = Some(reason);
            }
        }
        payment.settled_at_ms = Some(now);
        pass.finalized.push((payment.status, payment.product));
        pass.batch.payment_updates.push(update_of(&payment));
        self.emit_callback(pass, &payment);
    }

    /// Queues the callback of a payment that reached a final state, if it asked for one. It
    /// goes out now in the platform's time, even for a payment on a test clock (whose
    /// times are the clock's): the partner waits for it in real time.
    fn emit_callback(&mut self, pass: &mut Pass, payment: &Payment) {
        let id = payment.reference_id;
        if let Some(url) = &payment.callback_url {
            let Some(body) = (self.render)(payment) else {
                // Debug: one line a payment would flood a busy server's log; the portal's
                // pages say why nothing went.
                tracing::debug!(payment.reference_id = %id, "no callback: its URL is one the rules of now refuse");
                return;
            };
            let item = OutboxItem {
                id: self.next_outbox,
                reference_id: id,
                url: url.clone(),
                method: payment
                    .callback_method
                    .unwrap_or(self.settings.callback_method),
                body,
                attempts: 0,
                next_attempt_at_ms: self.settings.clock.now_ms(),
            };
            self.next_outbox += 1;
            pass.batch.outbox.push(item);
        }
    }

    fn finish(
        &mut self,
        pass: &mut Pass,
        transfer: u64,
        post: bool,
        reference_id: Uuid,
        now: i64,
    ) -> Result<(), crate::reason::FailureReason> {
        let result = if post {
            self.ledger.post_pending(TransferId(transfer))
        } else {
            self.ledger.void_pending(TransferId(transfer))
        };
        match result {
            Ok(t) => {
                pass.batch.transfers.push(TransferRecord {
                    transfer: t,
                    reference_id: Some(reference_id),
                    at_ms: now,
                });
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, transfer.reference_id = %reference_id, "pending transfer missing at settlement");
                Err(crate::reason::FailureReason::InternalProcessingError)
            }
        }
    }

    /// Cancels a pending invoice or mandate (releasing any reservation, with a callback), or
    /// an approved pre-approval or mandate: MTN cancels "only that preapproval which is in
    /// approved state" (a pending one waits for its payer). Cancelled payments are FAILED
    /// with `TRANSACTION_CANCELED`.
    fn cancel(
        &mut self,
        pass: &mut Pass,
        reference_id: Uuid,
        api_user: Uuid,
        kind: PaymentKind,
        callback_url: Option<String>,
        now: i64,
    ) -> Result<(), CancelError> {
        let owned = |p: &Payment| p.api_user == api_user && p.kind == kind;
        if let Some(pending) = self.pending.get(&reference_id).filter(|p| owned(p)) {
            if pending.kind == PaymentKind::PreApproval {
                return Err(CancelError::NotCancellable);
            }
            let mut payment = self.pending.remove(&reference_id).expect("checked");
            if let Some(t) = payment.transfer_id {
                self.finish(pass, t, false, reference_id, now)
                    .map_err(|_| CancelError::Internal)?;
            }
            payment.status = PaymentStatus::Failed;
            payment.reason = Some(crate::reason::FailureReason::TransactionCanceled);
            payment.settled_at_ms = Some(now);
            pass.finalized.push((payment.status, payment.product));
            pass.batch.payment_updates.push(update_of(&payment));
            if callback_url.is_some() {
                payment.callback_url = callback_url;
            }
            self.emit_callback(pass, &payment);
            return Ok(());
        }
        let mut payment = self
            .journal
            .payment(&reference_id)?
            .filter(|p| owned(p))
            .ok_or(CancelError::NotFound)?;
        // An expired pre-approval is no longer approved: only an approved one is cancelled
        // (MTN's CancelPreApproval); it was, and its outcome turned FAILED.
        let expired = kind == PaymentKind::PreApproval
            && payment
                .pre_approval_expiry_ms()
                .is_some_and(|e| self.time_for(&api_user, now) >= e);
        if matches!(kind, PaymentKind::PreApproval | PaymentKind::MpesaMandate)
            && payment.status == PaymentStatus::Successful
            && !expired
            && !pass.failed_in_pass(&reference_id)
        {
            payment.status = PaymentStatus::Failed;
            payment.reason = Some(crate::reason::FailureReason::TransactionCanceled);
            pass.batch.payment_updates.push(update_of(&payment));
            return Ok(());
        }
        Err(CancelError::NotCancellable)
    }

    /// Wakes the requests waiting for payments that just became final.
    fn wake_waiters(&self, updates: &[PaymentUpdate]) {
        self.wake(
            updates
                .iter()
                .filter(|u| u.status.is_final())
                .map(|u| u.reference_id),
        );
    }

    /// Wakes the requests waiting for these (final) payments.
    fn wake(&self, ids: impl Iterator<Item = Uuid>) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        if waiters.is_empty() {
            return;
        }
        for id in ids {
            for tx in waiters.remove(&id).unwrap_or_default() {
                let _ = tx.send(());
            }
        }
    }

    fn notify(
        &mut self,
        pass: &mut Pass,
        reference_id: Uuid,
        api_user: Uuid,
        now: i64,
    ) -> Result<(), NotifyError> {
        let payment = match self.pending.get(&reference_id) {
            Some(p) => Some(p.clone()),
            None => self.journal.payment(&reference_id).map_err(|e| {
                tracing::error!(error = %e, "reading a payment for a delivery notification failed");
                NotifyError::Internal
            })?,
        };
        // A request-to-pay's, as its path says: another operation's reference is as unknown
        // here as under `GET /requesttopay/{referenceId}`.
        let Some(mut payment) =
            payment.filter(|p| p.api_user == api_user && p.kind == PaymentKind::RequestToPay)
        else {
            return Err(NotifyError::NotFound);
        };
        if payment.status != PaymentStatus::Successful {
            return Err(NotifyError::NotCompleted);
        }
        // In the API user's time: a test clock moved past the window expires it too.
        let window = self.settings.delivery_notification_window.as_millis() as i64;
        let succeeded = payment.settled_at_ms.unwrap_or(payment.created_at_ms);
        if self.time_for(&api_user, now) - succeeded > window {
            return Err(NotifyError::Expired);
        }
        let sent = pass
            .notified
            .entry(reference_id)
            .or_insert(payment.notifications);
        if *sent >= 1 {
            return Err(NotifyError::TooMany);
        }
        *sent += 1;
        payment.notifications = *sent;
        pass.batch.payment_updates.push(update_of(&payment));
        Ok(())
    }
}

/// Whether a text of a new payment holds a NUL character ([`refusal::TEXT_WITH_NUL`]).
fn holds_nul(p: &NewPayment) -> bool {
    [
        Some(p.environment.as_str()),
        Some(p.party.id.as_str()),
        p.external_id.as_deref(),
        p.payer_message.as_deref(),
        p.payee_note.as_deref(),
        p.callback_url.as_deref(),
        p.details.as_deref(),
        p.short_code.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|text| text.contains('\0'))
}

/// The pause before the next pass after `failures` failed commits in a row: 50 ms,
/// doubling up to a second.
fn commit_pause(failures: u32) -> Option<Duration> {
    (failures > 0).then(|| {
        Duration::from_millis(50u64.saturating_mul(1 << failures.min(6).saturating_sub(1)))
            .min(Duration::from_secs(1))
    })
}

/// Whether a pending payment is its payer's to approve or reject: one the scenario rules
/// let succeed, or a widget invoice whose amount waits for the payer. A test number that
/// fails or stays pending keeps its outcome.
pub(crate) fn payer_decides(p: &Payment) -> bool {
    let outcome = outcome_of(
        &p.environment,
        p.kind,
        p.product,
        &p.party,
        p.amount,
        p.external_id.as_deref(),
    );
    match outcome {
        Outcome::Succeed => true,
        Outcome::StayPending => crate::widget::is_widget_payer(&p.party),
        Outcome::Fail(_) => false,
    }
}

/// What the scenario rules decide for a payment (only the sandbox has test numbers).
fn outcome_of(
    environment: &str,
    kind: PaymentKind,
    product: Product,
    party: &Party,
    amount: Money,
    external_id: Option<&str>,
) -> Outcome {
    if environment == SANDBOX {
        scenario::by_key(kind, external_id)
            .unwrap_or_else(|| scenario::payment(kind, product, party, amount))
    } else {
        Outcome::Succeed
    }
}

fn update_of(p: &Payment) -> PaymentUpdate {
    PaymentUpdate {
        reference_id: p.reference_id,
        status: p.status,
        reason: p.reason,
        financial_transaction_id: p.financial_transaction_id.clone(),
        settled_at_ms: p.settled_at_ms,
        transfer_id: p.transfer_id,
        notifications: p.notifications,
    }
}

fn internal<T, E>(e: StoreError) -> Result<T, E>
where
    E: From<StoreError>,
{
    Err(E::from(e))
}

fn defer<T: Send + 'static>(pass: &mut Pass, reply: oneshot::Sender<T>, result: T, on_failure: T) {
    pass.replies.push(Box::new(move |outcome| {
        let _ = reply.send(if outcome == Commit::Committed {
            result
        } else {
            on_failure
        });
    }));
}

/// A 10-digit numeric id derived from a number (the ledger transfer id plus the
/// installation's offset, below 2³²), scrambled so consecutive transfers do not look
/// consecutive, and unique for numbers below 9·10⁹ (so for the first 4.7·10⁹ transfers).
pub fn financial_transaction_id(transfer_id: u64) -> String {
    const RANGE: u64 = 8_999_999_999;
    const MULTIPLIER: u64 = 2_654_435_761; // coprime with RANGE
    let scrambled =
        (u128::from(transfer_id % RANGE) * u128::from(MULTIPLIER) % u128::from(RANGE)) as u64;
    (1_000_000_000 + scrambled).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request-to-pay of 1 EUR by an API user, with an external id and a payee note.
    pub(super) fn new_payment(api_user: Uuid) -> NewPayment {
        NewPayment {
            reference_id: Uuid::new_v4(),
            kind: PaymentKind::RequestToPay,
            product: Product::Collection,
            api_user,
            environment: "sandbox".to_owned(),
            amount: Money::parse_positive("1", Currency::parse("EUR").unwrap()).unwrap(),
            external_id: Some("order-1".to_owned()),
            party: crate::model::Party {
                id_type: crate::model::PartyIdType::Msisdn,
                id: "256770000001".to_owned(),
            },
            payer_message: None,
            payee_note: Some("note".to_owned()),
            callback_url: None,
            callback_method: None,
            refund_of: None,
            details: None,
            expires_at_ms: None,
            short_code: None,
            mandate: None,
        }
    }

    #[test]
    fn a_nul_in_any_text_of_a_payment_is_found() {
        let p = new_payment(Uuid::new_v4());
        assert!(!holds_nul(&p));
        let with = |f: fn(&mut NewPayment)| {
            let mut p = p.clone();
            f(&mut p);
            holds_nul(&p)
        };
        assert!(with(|p| p.party.id.push('\0')));
        assert!(with(|p| p.external_id = Some("a\0b".to_owned())));
        assert!(with(|p| p.payer_message = Some("\0".to_owned())));
        assert!(with(|p| p.details = Some("{\"x\":\"\0\"}".to_owned())));
        // JSON's escaped form is text, not a NUL.
        assert!(!with(|p| p.details = Some(r#"{"x":"\u0000"}"#.to_owned())));
    }

    #[test]
    fn the_pause_after_failed_commits_doubles_up_to_a_second() {
        let ms = |n| commit_pause(n).map(|d| d.as_millis());
        assert_eq!(ms(0), None);
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7, u32::MAX].map(ms),
            [50, 100, 200, 400, 800, 1000, 1000, 1000].map(Some)
        );
    }

    #[test]
    fn financial_transaction_ids_are_ten_digits_and_distinct() {
        let ids: HashSet<String> = (1..50_000).map(financial_transaction_id).collect();
        assert_eq!(ids.len(), 49_999);
        assert!(
            ids.iter()
                .all(|s| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()))
        );
    }

    #[test]
    fn the_scramble_multiplier_is_coprime_with_the_range() {
        fn gcd(a: u64, b: u64) -> u64 {
            if b == 0 { a } else { gcd(b, a % b) }
        }
        assert_eq!(gcd(2_654_435_761, 8_999_999_999), 1);
    }
}
