//! The wallet platform core: what MoMo and M-Pesa have in common.
//!
//! Parties hold wallets, partners request and send payments, payments are accepted and later
//! settled on a double-entry ledger, and the partner is told the outcome by callback. This
//! crate knows nothing of HTTP headers or provider error codes (dialects map to and from
//! it) and nothing of SQL (stores implement [`store::Journal`] and [`store::Reader`]).
//!
//! [`Platform`] is the handle the dialects use. Writes go to the single writer thread
//! (`engine`) and are answered only once committed; reads go to a few reader threads
//! (`reads`) and are answered through a oneshot, so no handler blocks on the store.
//!
//! Its operations are grouped by concern behind small handles: [`Platform::payments`],
//! [`Platform::credentials`], [`Platform::mpesa`] (applications), [`Platform::portal`] and
//! [`Platform::clocks`] (test clocks). `Platform` itself keeps only what they share: start
//! and supervision, the configuration, the clock, the metrics and the queues' depths.

pub mod accounts;
pub mod clock;
mod credentials;
mod engine;
pub mod faults;
pub mod generations;
pub mod golive;
pub mod lease;
pub mod metrics;
pub mod model;
pub mod mpesa;
pub mod outbox;
mod payments;
pub mod portal;
mod reads;
pub mod reason;
pub mod rows;
pub mod scenario;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod test_clock;
pub mod throttle;
pub mod widget;

pub use engine::{financial_transaction_id, refusal};

use foldhash::HashMap;
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::engine::{Command, Engine, EngineSettings};
use crate::model::{ApiUser, CallbackMethod, KeySlot, Payment, Product, SubscriptionKey};
use crate::secrets::TokenSigner;
use crate::store::{Batch, Journal, Reader, StoreError};

/// The target environment of the sandbox.
pub const SANDBOX: &str = "sandbox";

/// The id of the developer account created at first start.
pub const SANDBOX_DEVELOPER: i64 = 1;

/// Renders the callback body of a settled payment (the dialect's status body); `None` when
/// none goes to its URL under the rules of now (an M-Pesa result URL saved under others:
/// `http://` with `--mpesa-insecure-result-urls`, then a restart without it).
pub type CallbackRenderer = Arc<dyn Fn(&Payment) -> Option<String> + Send + Sync>;

/// Platform behaviour that operators tune.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// How long a payment stays PENDING before it is settled.
    pub settle_delay: Duration,
    /// How long an M-Pesa customer has to answer (the server sets the synchronous
    /// timeout): a payment waiting for its customer fails `EXPIRED` (`INS-9`) this long
    /// after it was made, also one an older build stored without a deadline.
    pub mpesa_answer: Duration,
    /// How long after a request-to-pay succeeds its payer may still be sent a delivery
    /// notification (MTN documents the 410 but not the window).
    pub delivery_notification_window: Duration,
    /// Opening balance of a sandbox wallet on first use, in major units.
    pub opening_balance: String,
    /// Opening float of a sandbox partner's disbursement and remittance accounts, in major
    /// units.
    pub partner_float: String,
    /// Method of callbacks of the operations whose definitions name none (v1 request-to-pay
    /// and transfers): POST, as MTN's sandbox sends them today (reference §11; PUT in its
    /// 2018 documentation), PUT by configuration. The others use their definitions' own.
    pub callback_method: CallbackMethod,
    /// Most commands committed in one transaction.
    pub max_batch: usize,
    /// Most requests waiting for the writer at once; past it a request is refused at once
    /// ([`CreateError::Unavailable`]: the dialect's overload answer) instead of queueing.
    pub max_queued: usize,
    /// E-mails are queued for an SMTP sender (else they are only kept in the mailbox).
    pub mail_delivery: bool,
    /// Most callbacks held in memory: offered to the dispatcher and being delivered or
    /// waiting for a retry. Past it they wait in the database (see [`outbox`]).
    pub callbacks_in_memory: usize,
    /// Threads that run store reads for request handlers (off the async threads) [default:
    /// one per core, 2 to 8]; the portal has as many again of its own.
    pub read_threads: usize,
    /// Most reads waiting for a reader thread; past it a read is refused at once
    /// ([`Internal::Busy`]: the dialect's overload answer). The portal's queue is as long.
    pub read_queue: usize,
    /// Most customer wallets the writer keeps in memory; the least recently used idle ones
    /// beyond it are read back from the database when next needed (`engine/wallets.rs`).
    pub wallets_in_memory: usize,
    /// Most payments the writer holds open in memory (pending: awaiting their settle time,
    /// their payer, or never settling, as a test number that stays pending); past it a new
    /// payment is refused with the dialect's overload answer ([`CreateError::Unavailable`])
    /// until some become final.
    pub pending_in_memory: usize,
    /// Of those, the most one developer's API users may hold (`None`: half of
    /// `pending_in_memory`), so that one partner's payments that never end cannot refuse
    /// every partner's.
    pub pending_per_developer: Option<usize>,
    /// Most requests waiting at once for a payment to become final (synchronous M-Pesa
    /// calls, the widget's long-polls): past it [`mpesa`]'s `watch` says no, and the caller
    /// answers its overload form at once.
    pub max_waiting: usize,
    /// Injected faults (tests): reads wait while [`faults::Faults::set_reads_stalled`].
    pub faults: Option<faults::Faults>,
    /// The time every decision reads ([`clock`]).
    pub clock: clock::SharedClock,
}

impl Default for PlatformConfig {
    fn default() -> PlatformConfig {
        PlatformConfig {
            token_ttl: Duration::from_secs(3600),
            settle_delay: Duration::ZERO,
            mpesa_answer: Duration::from_secs(60),
            delivery_notification_window: DELIVERY_NOTIFICATION_WINDOW,
            opening_balance: "100000".to_owned(),
            partner_float: "1000000".to_owned(),
            callback_method: CallbackMethod::Post,
            max_batch: 2048,
            max_queued: 32_768,
            mail_delivery: false,
            callbacks_in_memory: 4096,
            // SQLite reads are CPU work: one thread per core (each warms its connection's
            // page cache, so more would cost memory, not speed).
            read_threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8),
            read_queue: 4096,
            wallets_in_memory: 100_000,
            pending_in_memory: 200_000,
            pending_per_developer: None,
            max_waiting: 4096,
            faults: None,
            clock: Arc::new(clock::SystemClock),
        }
    }
}

/// Creating a resource failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("the reference id is already in use")]
    Duplicate,
    #[error("the parent resource does not exist")]
    NotFound,
    /// Refused when it was submitted, for this reason (an M-Pesa reversal; see
    /// [`refusal`]).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// Nothing was stored: the store failed (a full disk, a failing `fsync`, a lost
    /// database) or the writer is gone. The caller may try again; the platform recovers
    /// by itself when the store does.
    #[error("the platform cannot store it now; try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for CreateError {
    fn from(e: StoreError) -> CreateError {
        store_failed(&e);
        CreateError::Unavailable
    }
}

/// Logs a store failure a request met, at most one line a second (with how many were not
/// logged since the last line): while the database is lost every request meets one.
fn store_failed(e: &StoreError) {
    static GATE: throttle::LogGate = throttle::LogGate::new();
    if let Some(unlogged) = GATE.turn() {
        tracing::error!(
            error = %e,
            unlogged,
            "store failed (unlogged: other requests that met a store failure since the last such line)"
        );
    }
}

/// [`PlatformConfig::delivery_notification_window`]'s default: a day.
pub const DELIVERY_NOTIFICATION_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A delivery notification was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("no such payment for this API user")]
    NotFound,
    #[error("the payment is not successfully completed")]
    NotCompleted,
    #[error("a notification was already sent for this payment")]
    TooMany,
    #[error("the payment became successful longer ago than the notification window")]
    Expired,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for NotifyError {
    fn from(e: StoreError) -> NotifyError {
        store_failed(&e);
        NotifyError::Internal
    }
}

/// A cancellation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("no such payment for this API user")]
    NotFound,
    #[error("the payment can no longer be cancelled")]
    NotCancellable,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for CancelError {
    fn from(e: StoreError) -> CancelError {
        store_failed(&e);
        CancelError::Internal
    }
}

/// A read could not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Internal {
    /// The store failed; the cause has been logged.
    #[error("internal error")]
    Failed,
    /// Every reader thread is busy and the read queue is full: the caller gets the
    /// dialect's overload answer and may try again at once ([`PlatformConfig::read_queue`]).
    #[error("too many reads waiting")]
    Busy,
}

fn logged(e: StoreError) -> Internal {
    store_failed(&e);
    Internal::Failed
}

/// The handle dialects, workers and the portal use.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}

/// Most API users remembered in memory.
const API_USERS_CACHED: usize = 16_384;

struct Inner {
    /// Commands are boxed: the channel allocates all its slots up front, and a slot the
    /// size of a `Command` made that 11 MiB at the default bounds (a heap profile).
    tx: mpsc::SyncSender<Box<Command>>,
    /// Reads for the APIs (MoMo, M-Pesa, the widget, the admin API).
    reads: reads::ReadPool,
    /// Reads for the developer portal and the operator's pages.
    portal_reads: reads::ReadPool,
    signer: TokenSigner,
    config: PlatformConfig,
    subscriptions: Subscriptions,
    /// API users looked up lately: bounded, since anyone with a subscription key can make
    /// more (a miss is one read).
    api_users: RwLock<generations::Generations<Uuid, ApiUser>>,
    outbox: Mutex<Option<outbox::Outbox>>,
    /// Test clocks by the API user they drive, as the writer last committed them.
    clocks: test_clock::Clocks,
    /// Other nodes write to the same store (PostgreSQL): what this node's writer published
    /// may lag behind them until its next pass.
    shared_store: bool,
    /// Requests waiting for a payment to become final (synchronous M-Pesa calls).
    waiters: Waiters,
    /// Their places: at most `config.max_waiting`, of them at most half a developer's.
    waiting: throttle::Shares<i64>,
    /// Nudges the SMTP sender when mail may have been queued.
    mail_wake: tokio::sync::Notify,
    /// Operator credentials verified lately (admin endpoints), by their MAC.
    operator_credentials: accounts::CredentialCache,
    health: Arc<Health>,
    /// Set by the writer while its commits fail (the first failure to the first success).
    store_failing: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the server begins to stop ([`Platform::stop_waiting`]): requests waiting
    /// for a payment to become final are answered at once with it as it is, and so are
    /// those that start waiting after.
    stopping: std::sync::atomic::AtomicBool,
    /// The writer thread, until [`Platform::shutdown`] has seen it end.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Requests waiting for the writer's answer (bounded by `max_queued`).
    queued: std::sync::atomic::AtomicUsize,
    metrics: Arc<metrics::Metrics>,
}

/// What has stopped that the platform cannot run without (the writer thread, the callback
/// dispatcher): `/_mkoba/health` reports it and the server exits so a supervisor restarts
/// it (everything acknowledged is on disk, so a restart loses nothing).
#[derive(Default)]
struct Health {
    failures: Mutex<Vec<&'static str>>,
    changed: tokio::sync::Notify,
}

impl Health {
    fn fail(&self, what: &'static str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !f.contains(&what) {
            f.push(what);
        }
        drop(f);
        self.changed.notify_waiters();
        tracing::error!(failure = what, "a part the platform needs stopped");
    }
}

/// The subscription keys; shared with the writer, which adds the keys other nodes create or
/// regenerate.
pub(crate) type Subscriptions = Arc<RwLock<KeyCache>>;

/// Every subscription key in memory, found by the key (every API request) and by its
/// developer (the widget's subscription check at every invoice, the portal's pages), so
/// that neither reads every account's keys.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    by_key: HashMap<String, SubscriptionKey>,
    /// Per developer, the key of each product and slot it holds.
    by_developer: HashMap<i64, HashMap<(Product, KeySlot), String>>,
}

impl KeyCache {
    /// The record of a key.
    pub(crate) fn get(&self, key: &str) -> Option<&SubscriptionKey> {
        self.by_key.get(key)
    }

    /// A developer's keys, in no order.
    pub(crate) fn of(&self, developer_id: i64) -> impl Iterator<Item = &SubscriptionKey> {
        self.by_developer
            .get(&developer_id)
            .into_iter()
            .flat_map(|slots| slots.values())
            .filter_map(|key| self.by_key.get(key))
    }

    /// Puts a key in, in place of the key its slot held before.
    fn put(&mut self, k: SubscriptionKey) {
        let slots = self.by_developer.entry(k.developer_id).or_default();
        if let Some(old) = slots.insert((k.product, k.slot), k.key.clone()) {
            self.by_key.remove(&old);
        }
        self.by_key.insert(k.key.clone(), k);
    }
}

impl FromIterator<SubscriptionKey> for KeyCache {
    fn from_iter<I: IntoIterator<Item = SubscriptionKey>>(keys: I) -> KeyCache {
        let mut cache = KeyCache::default();
        keys.into_iter().for_each(|k| cache.put(k));
        cache
    }
}

/// Puts keys into the cache, replacing the key each one's slot held before.
pub(crate) fn cache_keys(cache: &Subscriptions, keys: impl IntoIterator<Item = SubscriptionKey>) {
    let mut cache = cache.write().expect("subscriptions lock");
    keys.into_iter().for_each(|k| cache.put(k));
}

/// The products and slots of [`Product::ALL`] for which the sandbox developer has no key.
fn missing_sandbox_keys(keys: &[SubscriptionKey]) -> Vec<(Product, KeySlot)> {
    Product::ALL
        .into_iter()
        .flat_map(|p| [(p, KeySlot::Primary), (p, KeySlot::Secondary)])
        .filter(|(product, slot)| {
            !keys.iter().any(|k| {
                k.developer_id == SANDBOX_DEVELOPER && k.product == *product && k.slot == *slot
            })
        })
        .collect()
}

/// Payment id → senders fired once its final state is committed; shared with the writer.
pub(crate) type Waiters = Arc<Mutex<HashMap<Uuid, Vec<oneshot::Sender<()>>>>>;

impl Platform {
    /// Loads the state, creating on first start the sandbox developer account and the token
    /// secret, and at every start the primary and secondary subscription key of each product
    /// ([`Product::ALL`]) the sandbox developer lacks (so a database made before a product
    /// existed gets its keys on the next start). `wallets`: the idle customer wallets to
    /// load ([`Journal::load`]; none for a command that only reads credentials).
    pub fn bootstrap(
        journal: &mut dyn Journal,
        wallets: usize,
    ) -> Result<store::LoadedState, StoreError> {
        let mut state = journal.load(wallets)?;
        let missing = missing_sandbox_keys(&state.subscription_keys);
        if !missing.is_empty() || state.token_secret.is_none() {
            let mut batch = Batch::default();
            if !missing.is_empty() && journal.max_developer_id()? < SANDBOX_DEVELOPER {
                batch.developers.push(SANDBOX_DEVELOPER);
            }
            // Written only where no key exists yet: of nodes starting at once on one
            // database, the first one's keys stand and the others read them back below.
            batch.missing_keys = missing
                .into_iter()
                .map(|(product, slot)| SubscriptionKey {
                    developer_id: SANDBOX_DEVELOPER,
                    product,
                    slot,
                    key: secrets::random_hex_key(),
                })
                .collect();
            if state.token_secret.is_none() {
                batch.token_secret = Some(secrets::random_secret());
            }
            journal.commit(&batch)?;
            state = journal.load(wallets)?;
        }
        portal::bootstrap_login(journal)?;
        portal::bootstrap_operator(journal)?;
        if journal.mpesa_app(SANDBOX_DEVELOPER)?.is_none() {
            let (mut app, key) = mpesa::MpesaApp::new(SANDBOX_DEVELOPER, clock::system_now_ms());
            app.api_key = Some(key);
            let batch = Batch {
                api_users: vec![app.api_user_row()],
                mpesa_apps: vec![app],
                ..Batch::default()
            };
            journal.commit(&batch)?;
        }
        Ok(state)
    }

    /// [`Platform::bootstrap`] on a database other nodes may be starting on at the same
    /// moment. Each of its steps creates only what is missing, so a step that failed
    /// because another node created the same row first (a duplicate key) succeeds when
    /// looked at again; nodes started together reach the same step together, so a few
    /// looks may be needed. Each look after the first waits a little longer.
    fn bootstrap_shared(
        journal: &mut dyn Journal,
        wallets: usize,
    ) -> Result<store::LoadedState, StoreError> {
        const LOOKS: u32 = 6;
        let mut look = 1;
        loop {
            match Platform::bootstrap(journal, wallets) {
                Ok(state) => return Ok(state),
                Err(e) if look < LOOKS => {
                    tracing::info!(
                        error = %e,
                        "start-up step failed (another node starting on the same database \
                         may have written the same rows first); looking again"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20 << look));
                    look += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Bootstraps, then starts the writer thread.
    pub fn start(
        mut journal: Box<dyn Journal>,
        reader: Arc<dyn Reader>,
        config: PlatformConfig,
        render: CallbackRenderer,
    ) -> Result<Platform, StoreError> {
        let state = Platform::bootstrap_shared(journal.as_mut(), config.wallets_in_memory)?;
        let secret = state
            .token_secret
            .clone()
            .ok_or_else(|| StoreError("token secret missing after bootstrap".to_owned()))?;
        let subscriptions: Subscriptions = Arc::new(RwLock::new(
            state.subscription_keys.iter().cloned().collect(),
        ));
        let shared_store = journal.lease().is_some();
        let (outbox_feed, outbox) = outbox::channel(config.callbacks_in_memory, journal.lease());
        let metrics = Arc::new(metrics::Metrics::default());
        journal.watch(&metrics.store);
        let clocks = test_clock::Clocks::default();
        let store_failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let settings = EngineSettings {
            store_failing: store_failing.clone(),
            settle_delay: config.settle_delay,
            mpesa_answer: config.mpesa_answer,
            delivery_notification_window: config.delivery_notification_window,
            opening_balance: config.opening_balance.clone(),
            partner_float: config.partner_float.clone(),
            callback_method: config.callback_method,
            max_batch: config.max_batch.max(1),
            wallets_in_memory: config.wallets_in_memory.max(1),
            pending_in_memory: config.pending_in_memory.max(1),
            pending_per_developer: config
                .pending_per_developer
                .unwrap_or(config.pending_in_memory / 2)
                .max(1),
            mail_delivery: config.mail_delivery,
            metrics: metrics.clone(),
            clock: config.clock.clone(),
            clocks: clocks.clone(),
        };
        let waiters = Waiters::default();
        let engine = Engine::new(
            journal,
            state,
            settings,
            render,
            outbox_feed,
            waiters.clone(),
            subscriptions.clone(),
        );
        // Requests wait for the writer only up to `max_queued` ([`Platform::call`]), and the
        // dispatcher has at most one command out per callback it holds, so this bound is
        // never what refuses a command; it makes the bound structural.
        let (tx, rx) = mpsc::sync_channel(config.max_queued + config.callbacks_in_memory + 16);
        let reads = reads::ReadPool::start(
            reads::Serves::Apis,
            reader.clone(),
            config.read_threads,
            config.read_queue,
            config.faults.clone(),
        )?;
        let portal_reads = reads::ReadPool::start(
            reads::Serves::Portal,
            reader,
            config.read_threads,
            config.read_queue,
            config.faults.clone(),
        )?;
        let waiting = throttle::Shares::new(config.max_waiting, config.max_waiting / 2);
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        let writer_metrics = metrics.clone();
        let writer = std::thread::Builder::new()
            .name("mkoba-writer".to_owned())
            .spawn(move || {
                // Marks the writer stopped when the thread dies of a panic (it returns
                // normally on a stop, `Platform::shutdown`, or once every platform handle
                // is gone).
                struct Stopped(Arc<Health>);
                impl Drop for Stopped {
                    fn drop(&mut self) {
                        if std::thread::panicking() {
                            self.0.fail("the writer stopped");
                        }
                    }
                }
                let _stopped = Stopped(writer_health.clone());
                writer_metrics.writer_thread_started();
                if engine.run(rx).is_some() {
                    writer_health.fail("the writer stopped: this node's id was taken over");
                }
            })
            .map_err(|e| StoreError(format!("cannot start the writer thread: {e}")))?;
        Ok(Platform {
            inner: Arc::new(Inner {
                tx,
                reads,
                portal_reads,
                signer: TokenSigner::new(secret),
                config,
                subscriptions,
                api_users: RwLock::new(generations::Generations::new(API_USERS_CACHED)),
                outbox: Mutex::new(Some(outbox)),
                clocks,
                shared_store,
                waiters,
                waiting,
                mail_wake: tokio::sync::Notify::new(),
                operator_credentials: accounts::CredentialCache::default(),
                health,
                store_failing,
                stopping: std::sync::atomic::AtomicBool::new(false),
                writer: Mutex::new(Some(writer)),
                queued: std::sync::atomic::AtomicUsize::new(0),
                metrics,
            }),
        })
    }

    /// Stops the writer: it commits what was sent to it before (and what reached it in the
    /// same pass), then ends and closes its side of the store (the journal and its
    /// connection; the readers stay open while handles to the platform live), and this
    /// returns once it has. Commands sent after get the platform's unavailable answer. For
    /// a server that stops: its listeners first, then this, so that nothing of it writes
    /// the database once it returns (a successor may then start on the same data).
    pub async fn shutdown(&self) {
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(writer) = writer else {
            return;
        };
        // On a thread of its own, not the runtime's blocking pool: a caller that gives up
        // waiting (a bounded stop) must not leave the runtime unable to shut down.
        let tx = self.inner.tx.clone();
        let (ended, has_ended) = oneshot::channel();
        let stopper = std::thread::Builder::new()
            .name("mkoba-stop".to_owned())
            .spawn(move || {
                // Blocks while the queue is full: the writer empties it.
                let _ = tx.send(Box::new(Command::Stop));
                let _ = writer.join();
                let _ = ended.send(());
            });
        if stopper.is_ok() {
            let _ = has_ended.await;
        }
    }

    /// What has stopped that the platform needs (empty while healthy).
    pub fn failures(&self) -> Vec<&'static str> {
        self.inner
            .health
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The server begins to stop: requests waiting for a payment to become final
    /// (synchronous M-Pesa calls) are answered at once with the payment as it is (still
    /// pending: the client's timeout answer, `408 INS-9`, with the payment to query later),
    /// instead of holding the stop for the drain time and then being cut unanswered.
    pub fn stop_waiting(&self) {
        // Under the waiters' lock, so that a watch registered meanwhile sees the flag.
        let mut waiters = self.inner.waiters.lock().unwrap_or_else(|e| e.into_inner());
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for (_, senders) in waiters.drain() {
            for tx in senders {
                let _ = tx.send(());
            }
        }
    }

    /// Whether the store is failing now: the writer's commits (a full disk, a lost
    /// database), until one succeeds, or the last read of either pool (a lost database, a
    /// damaged file), until one succeeds. Requests meanwhile are answered "unavailable";
    /// a failure that passes clears it by itself.
    pub fn store_failing(&self) -> bool {
        self.inner
            .store_failing
            .load(std::sync::atomic::Ordering::SeqCst)
            || self.inner.reads.failing()
            || self.inner.portal_reads.failing()
    }

    /// Records that a part the platform needs stopped (`what` says which).
    pub fn report_failure(&self, what: &'static str) {
        self.inner.health.fail(what);
    }

    /// Waits until something the platform needs has stopped; returns what.
    pub async fn failed(&self) -> Vec<&'static str> {
        loop {
            let changed = self.inner.health.changed.notified();
            let now = self.failures();
            if !now.is_empty() {
                return now;
            }
            changed.await;
        }
    }

    /// Milliseconds since the Unix epoch, by the platform's [`clock`].
    pub fn now_ms(&self) -> i64 {
        self.inner.config.clock.now_ms()
    }

    /// Wakes the writer to settle what became due (after a [`clock::ManualClock`] moved);
    /// returns once that pass is committed (`false` if it failed). A pass settles at most
    /// [`PlatformConfig::max_batch`] due payments; the rest follow in the next passes.
    pub async fn wake(&self) -> bool {
        self.call_reserved(Command::Wake, false).await
    }

    /// The configuration the platform runs with.
    pub fn config(&self) -> &PlatformConfig {
        &self.inner.config
    }

    fn send(&self, command: Command) -> bool {
        self.inner.tx.try_send(Box::new(command)).is_ok()
    }

    /// Like [`Platform::call`], for the dispatcher's commands: not counted against
    /// [`PlatformConfig::max_queued`] (the dispatcher holds at most
    /// [`PlatformConfig::callbacks_in_memory`] callbacks, each with one command out), so
    /// overload of the API never stops callbacks from being recorded.
    async fn call_reserved<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
        on_error: T,
    ) -> T {
        let (reply, rx) = oneshot::channel();
        if !self.send(make(reply)) {
            return on_error;
        }
        rx.await.unwrap_or(on_error)
    }

    /// Sends a request's command to the writer and waits for its answer; `on_error` when
    /// the writer is gone, the pass failed, or [`PlatformConfig::max_queued`] requests wait
    /// already (then at once, so memory and latency stay bounded under overload).
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command, on_error: T) -> T {
        use std::sync::atomic::Ordering;
        /// Counts the request out however its future ends (answered, or dropped).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let queued = &self.inner.queued;
        let waiting = Waiting(queued);
        if queued.fetch_add(1, Ordering::SeqCst) >= self.inner.config.max_queued {
            return on_error;
        }
        let (reply, rx) = oneshot::channel();
        if !self.send(make(reply)) {
            return on_error;
        }
        let answer = rx.await.unwrap_or(on_error);
        drop(waiting);
        answer
    }

    /// The platform's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The metrics in the text exposition format, with the queue depth as of now.
    pub fn render_metrics(&self) -> String {
        self.inner
            .metrics
            .writer_queue_depth
            .set(self.queued() as i64);
        self.inner
            .metrics
            .reads_pending
            .set(self.reads_pending() as i64);
        self.inner
            .metrics
            .portal_reads_pending
            .set(self.portal_reads_pending() as i64);
        let (rss, peak) = metrics::memory_kib();
        let bytes = |kib: Option<u64>| kib.map_or(0, |k| (k * 1024) as i64);
        self.inner.metrics.resident_memory.set(bytes(rss));
        self.inner.metrics.resident_memory_peak.set(bytes(peak));
        self.inner.metrics.count_cpu();
        self.inner.metrics.render()
    }

    /// The APIs' store reads queued or running now ([`PlatformConfig::read_queue`] bounds
    /// them).
    pub fn reads_pending(&self) -> usize {
        self.inner.reads.pending()
    }

    /// The portal's store reads queued or running now (threads and a queue of their own, as
    /// many as the APIs').
    pub fn portal_reads_pending(&self) -> usize {
        self.inner.portal_reads.pending()
    }

    /// Requests waiting for the writer now.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The callbacks to send; the dispatcher takes them once.
    pub fn take_outbox(&self) -> Option<outbox::Outbox> {
        self.inner.outbox.lock().expect("outbox lock").take()
    }
}

/// Defines the per-concern handles and the platform's accessor for each. A handle is a view
/// of the platform for one concern (`platform.payments().create(…)`); it derefs to the
/// platform for what the concerns share: the writer, the reads, the clock.
macro_rules! handles {
    ($($(#[$doc:meta])* $name:ident => $accessor:ident;)*) => {
        impl Platform {
            $(
                $(#[$doc])*
                pub fn $accessor(&self) -> $name<'_> {
                    $name(self)
                }
            )*
        }
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name<'a>(&'a Platform);

            impl std::ops::Deref for $name<'_> {
                type Target = Platform;
                fn deref(&self) -> &Platform {
                    self.0
                }
            }
        )*
    };
}

handles! {
    /// Payments (`payments.rs`): accepting, reading, cancelling and settling them, their
    /// callbacks and their ledger postings; M-Pesa's waits and result callbacks
    /// (`mpesa.rs`).
    Payments => payments;
    /// Credentials (`credentials.rs`): subscription keys, API users and keys, access tokens
    /// and signed claims.
    Credentials => credentials;
    /// M-Pesa applications (`mpesa.rs`): their API keys, settings and sessions.
    MpesaApps => mpesa;
    /// The developer portal (`portal.rs`, `accounts.rs`, `golive.rs`): accounts, sessions,
    /// mail, listings and reports, the virtual phone, go-live requests.
    Portal => portal;
    /// Test clocks (`test_clock.rs`): a partner's own time.
    TestClocks => clocks;
}

#[cfg(test)]
mod key_cache_tests {
    use super::*;

    fn key(developer_id: i64, product: Product, slot: KeySlot, key: &str) -> SubscriptionKey {
        SubscriptionKey {
            developer_id,
            product,
            slot,
            key: key.to_owned(),
        }
    }

    #[test]
    fn a_new_key_replaces_its_slots_old_one_and_each_developer_sees_its_own() {
        let mut cache: KeyCache = [
            key(1, Product::Collection, KeySlot::Primary, "a"),
            key(1, Product::Collection, KeySlot::Secondary, "b"),
            key(2, Product::Disbursement, KeySlot::Primary, "c"),
        ]
        .into_iter()
        .collect();
        cache.put(key(1, Product::Collection, KeySlot::Primary, "a2"));
        assert!(cache.get("a").is_none(), "the replaced key is gone");
        assert_eq!(cache.get("a2").map(|k| k.developer_id), Some(1));
        let mut mine: Vec<&str> = cache.of(1).map(|k| k.key.as_str()).collect();
        mine.sort_unstable();
        assert_eq!(mine, ["a2", "b"]);
        assert_eq!(cache.of(2).count(), 1);
        assert_eq!(cache.of(3).count(), 0);
        // The same key put again stays.
        cache.put(key(2, Product::Disbursement, KeySlot::Primary, "c"));
        assert!(cache.get("c").is_some());
    }
}
