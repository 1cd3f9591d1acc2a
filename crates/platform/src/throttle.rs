//! Throttling and load shedding for the doors a stranger can knock on: portal sign-in,
//! password reset and sign-up, the M-Pesa API key check, and Argon2 password hashing.
//!
//! * **Token buckets per key** ([`Rate`], on `governor`'s GCRA keyed limiter): a bucket
//!   holds `count` tries and gets one back every `per / count`, so `10/15m` allows ten at
//!   once and one more every 90 s after that. Keys are a keyed hash (random per process)
//!   of the account's lower-case e-mail or of the client's address (an IPv6 address counts
//!   by its /64, the block one subscriber holds; an IPv4-mapped one as its IPv4 address),
//!   so an entry has a fixed, small size whatever was typed.
//! * **Bounded maps.** A limiter forgets the keys whose bucket is full again
//!   (`retain_recent`) every [`HOUSEKEEPING_CHECKS`] checks and at least every
//!   [`HOUSEKEEPING_INTERVAL`]; it remembers at most [`ThrottleLimits::max_keys`]. Were
//!   that many keys all busy at a housekeeping, the limiter refuses every check until the
//!   next one finds room: a flood can slow everyone down, but never lifts a limit.
//! * **Failures only** ([`KeyFailures`], the M-Pesa API key check): a try that succeeds
//!   costs nothing; a failure takes a token, and a failure that finds the bucket empty
//!   blocks the address until a token is back. A blocked address is answered at once,
//!   before any RSA decryption.
//! * **Password hashing** ([`PasswordPool`]): Argon2 runs on `workers` blocking threads
//!   (19 MiB each), with at most `queue` requests waiting for a turn; past that the work is
//!   refused at once ([`Busy`]) instead of queued. The portal runs each request that
//!   hashes inside [`PasswordPool::run`], which makes this server's pool the one used (a
//!   task-local scope: the platform's password methods keep their signatures) and tells
//!   whether a refusal happened, so the portal can answer 429 rather than an error. Work
//!   outside any scope uses a process-wide pool with the default bounds.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// A limiter forgets idle keys after this many checks…
pub const HOUSEKEEPING_CHECKS: u32 = 1024;
/// …or after this long, whichever comes first.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// A token bucket: `count` tries at once, refilled at `count` per `per` (one every
/// `per / count`). `count == 0` turns the limit off. Written `10/15m`, `20/1m`, `5/1h`,
/// `30/45s` (`20/m` is `20/1m`), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        count: 0,
        per: Duration::from_secs(1),
    };

    pub const fn new(count: u32, per: Duration) -> Rate {
        Rate { count, per }
    }

    pub fn is_off(self) -> bool {
        self.count == 0 || self.per.is_zero()
    }

    /// The time one try takes to come back.
    pub fn interval(self) -> Duration {
        if self.is_off() {
            Duration::ZERO
        } else {
            self.per / self.count
        }
    }

    fn quota(self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.count)?;
        Some(Quota::with_period(self.interval())?.allow_burst(burst))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let s = s.trim();
        if s == "off" || s == "0" {
            return Ok(Rate::OFF);
        }
        let bad = || {
            format!(
                "{s:?} is not a rate: write COUNT/PERIOD such as 10/15m, 20/1m, 5/1h, 30/45s, or off"
            )
        };
        let (count, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            // It meant no limit at all; whoever writes 0/15m more likely means "none
            // allowed", which no limit here is for.
            return Err(format!(
                "{s:?} allows nothing: a limit needs a count of at least 1 (write off for no limit)"
            ));
        }
        let period = period.trim();
        let unit = period.chars().last().ok_or_else(bad)?;
        let number = &period[..period.len() - unit.len_utf8()];
        let n: u64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| bad())?
        };
        let secs = match unit {
            's' => n,
            'm' => n.checked_mul(60).ok_or_else(bad)?,
            'h' => n.checked_mul(3600).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if secs == 0 {
            return Err(bad());
        }
        Ok(Rate::new(count, Duration::from_secs(secs)))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_off() {
            return f.write_str("off");
        }
        let secs = self.per.as_secs();
        if secs.is_multiple_of(3600) {
            write!(f, "{}/{}h", self.count, secs / 3600)
        } else if secs.is_multiple_of(60) {
            write!(f, "{}/{}m", self.count, secs / 60)
        } else {
            write!(f, "{}/{}s", self.count, secs)
        }
    }
}

/// Every throttle's settings (the server's flags `--signin-limit-account` and the like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Portal sign-in tries per account (lower-case e-mail), right password or not.
    pub sign_in_per_account: Rate,
    /// Portal sign-in tries per client address.
    pub sign_in_per_address: Rate,
    /// Password reset requests (`/portal/forgot`) and submissions (`/portal/reset`), one
    /// bucket per account and one per client address, shared by both forms.
    pub reset_per_account: Rate,
    pub reset_per_address: Rate,
    /// Sign-ups and activation mails sent again, per client address.
    pub sign_up_per_address: Rate,
    /// Failed M-Pesa API key checks (getSession, every v1x call) per client address.
    pub mpesa_key_failures_per_address: Rate,
    /// Argon2 hashes at once.
    pub password_hash_workers: usize,
    /// Requests waiting for an Argon2 turn; past it the portal answers 429 at once.
    pub password_hash_queue: usize,
    /// The most keys one limiter remembers.
    pub max_keys: usize,
}

/// One Argon2 worker per core, at most 16.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 16))
}

/// Requests that may wait for an Argon2 turn, per worker.
pub const HASH_QUEUE_PER_WORKER: usize = 4;

/// The words of a request body the listener stopped reading because the bodies being read
/// on the server held as many bytes as it allows (`listener::ConnectionLimits::body_bytes`):
/// each dialect answers that request with its overload answer.
pub const BODIES_BUSY: &str = "the server is reading as many request bodies as it may";

impl Default for ThrottleLimits {
    fn default() -> ThrottleLimits {
        let workers = default_hash_workers();
        ThrottleLimits {
            sign_in_per_account: Rate::new(10, Duration::from_secs(15 * 60)),
            sign_in_per_address: Rate::new(100, Duration::from_secs(15 * 60)),
            reset_per_account: Rate::new(5, Duration::from_secs(15 * 60)),
            reset_per_address: Rate::new(20, Duration::from_secs(15 * 60)),
            sign_up_per_address: Rate::new(20, Duration::from_secs(3600)),
            mpesa_key_failures_per_address: Rate::new(20, Duration::from_secs(60)),
            password_hash_workers: workers,
            password_hash_queue: workers * HASH_QUEUE_PER_WORKER,
            max_keys: 100_000,
        }
    }
}

impl ThrottleLimits {
    /// Every limit off, the hashing pool as configured: for tests that sign in often.
    pub fn off() -> ThrottleLimits {
        ThrottleLimits {
            sign_in_per_account: Rate::OFF,
            sign_in_per_address: Rate::OFF,
            reset_per_account: Rate::OFF,
            reset_per_address: Rate::OFF,
            sign_up_per_address: Rate::OFF,
            mpesa_key_failures_per_address: Rate::OFF,
            ..ThrottleLimits::default()
        }
    }
}

/// The key of a client address: IPv4 as it is, IPv4-mapped IPv6 as its IPv4 address, any
/// other IPv6 address by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The key of an account: its e-mail, trimmed and in lower case.
fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// When housekeeping last ran, and the checks since.
#[derive(Debug)]
struct Housekeeping {
    checks: u32,
    last: Instant,
}

/// `governor`'s keyed limiter over hashed keys.
type Keyed<C> =
    RateLimiter<u64, DefaultKeyedStateStore<u64>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Token buckets by key, bounded: at most `max_keys` remembered (see the module's notes).
pub struct Limit<C: Clock = DefaultClock> {
    rate: Rate,
    limiter: Option<Keyed<C>>,
    hasher: RandomState,
    max_keys: usize,
    housekeeping: Mutex<Housekeeping>,
    /// Every key busy at the last housekeeping: refuse until the next one.
    full: AtomicBool,
}

impl<C: Clock> std::fmt::Debug for Limit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit")
            .field("rate", &self.rate)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Limit<DefaultClock> {
    pub fn new(rate: Rate, max_keys: usize) -> Limit {
        Limit::with_clock(rate, max_keys, DefaultClock::default())
    }
}

impl<C: Clock> Limit<C> {
    fn with_clock(rate: Rate, max_keys: usize, clock: C) -> Limit<C> {
        Limit {
            rate,
            limiter: rate
                .quota()
                .map(|q| RateLimiter::hashmap_with_clock(q, clock)),
            hasher: RandomState::new(),
            max_keys: max_keys.max(1),
            housekeeping: Mutex::new(Housekeeping {
                checks: 0,
                last: Instant::now(),
            }),
            full: AtomicBool::new(false),
        }
    }

    fn key(&self, key: impl Hash) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether it refuses every key for now (as many busy keys remembered as it may).
    fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Keys remembered now.
    fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// [`Limit::check`], saying in a refusal whether the limit refuses every key for now.
    pub fn check_telling(&self, key: impl Hash) -> Result<(), Refusal> {
        self.check(key).map_err(|wait| Refusal {
            wait,
            flood: self.is_full(),
        })
    }

    /// Takes a try from the key's bucket; `Err` is how long until one is back.
    pub fn check(&self, key: impl Hash) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        self.housekeeping(limiter);
        if self.full.load(Ordering::Relaxed) {
            return Err(self.rate.interval());
        }
        limiter
            .check_key(&self.key(key))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    fn housekeeping(&self, limiter: &Keyed<C>) {
        let mut h = self.housekeeping.lock().expect("housekeeping lock");
        h.checks += 1;
        if h.checks < HOUSEKEEPING_CHECKS && h.last.elapsed() < HOUSEKEEPING_INTERVAL {
            return;
        }
        h.checks = 0;
        h.last = Instant::now();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let full = limiter.len() >= self.max_keys;
        if full && !self.full.load(Ordering::Relaxed) {
            tracing::warn!(
                keys = self.max_keys,
                "a throttle remembers as many busy keys as it may: refusing until some are idle"
            );
        }
        self.full.store(full, Ordering::Relaxed);
    }
}

/// A portal throttle's refusal: how long until a try is back, and whether the limit that
/// refused refuses every key for now, a flood having filled it (the refusal then says
/// nothing about the account or the address refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub wait: Duration,
    pub flood: bool,
}

/// Places shared out by key: at most `total` held at once, and of them at most `each` by
/// one key (a developer's requests waiting for a payment, its CSV exports). A [`Share`]
/// gives its place back when dropped; a key holding none is forgotten, so the map holds
/// only keys with places held.
#[derive(Debug, Clone)]
pub struct Shares<K: Hash + Eq> {
    held: Arc<Mutex<SharesHeld<K>>>,
    total: usize,
    each: usize,
}

#[derive(Debug)]
struct SharesHeld<K> {
    all: usize,
    by_key: HashMap<K, usize>,
}

/// A place of [`Shares`], held until dropped.
#[derive(Debug)]
pub struct Share<K: Hash + Eq> {
    held: Arc<Mutex<SharesHeld<K>>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Shares<K> {
    pub fn new(total: usize, each: usize) -> Shares<K> {
        Shares {
            held: Arc::new(Mutex::new(SharesHeld {
                all: 0,
                by_key: HashMap::new(),
            })),
            total,
            each: each.max(1),
        }
    }

    /// A place for `key`, unless all are held or `key` holds its share.
    pub fn take(&self, key: K) -> Option<Share<K>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mine = held.by_key.get(&key).copied().unwrap_or(0);
        if held.all >= self.total || mine >= self.each {
            return None;
        }
        held.all += 1;
        held.by_key.insert(key.clone(), mine + 1);
        Some(Share {
            held: self.held.clone(),
            key,
        })
    }

    /// How many places are held now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).all
    }
}

impl<K: Hash + Eq> Drop for Share<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.all -= 1;
        if let Some(n) = held.by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.by_key.remove(&self.key);
            }
        }
    }
}

/// The portal's throttles (one per server) and its password hashing pool.
#[derive(Debug)]
pub struct PortalThrottle {
    sign_in_account: Limit,
    sign_in_address: Limit,
    reset_account: Limit,
    reset_address: Limit,
    sign_up_address: Limit,
    passwords: Arc<PasswordPool>,
    /// CSV exports under way, per developer.
    exports: Shares<i64>,
}

/// CSV exports one developer may have under way at once: each reads up to 100,000 rows
/// on the portal's shared reader threads, and 150 at once from one developer held every
/// other developer's pages to 5 s (the bounds audit of 2026-12-06).
pub const EXPORTS_PER_DEVELOPER: usize = 2;

impl PortalThrottle {
    /// A place for one of the developer's CSV exports, held until dropped (when the
    /// download ends); `None` while it has [`EXPORTS_PER_DEVELOPER`] under way.
    pub fn export_slot(&self, developer: i64) -> Option<Share<i64>> {
        self.exports.take(developer)
    }

    pub fn new(limits: &ThrottleLimits) -> PortalThrottle {
        let limit = |rate| Limit::new(rate, limits.max_keys);
        PortalThrottle {
            sign_in_account: limit(limits.sign_in_per_account),
            sign_in_address: limit(limits.sign_in_per_address),
            reset_account: limit(limits.reset_per_account),
            reset_address: limit(limits.reset_per_address),
            sign_up_address: limit(limits.sign_up_per_address),
            passwords: Arc::new(PasswordPool::new(
                limits.password_hash_workers,
                limits.password_hash_queue,
            )),
            exports: Shares::new(usize::MAX, EXPORTS_PER_DEVELOPER),
        }
    }

    /// A sign-in try from `client` for `email`: the address's bucket first (a refused
    /// address takes nothing from the account's), then the account's.
    pub fn sign_in(&self, client: IpAddr, email: &str) -> Result<(), Refusal> {
        self.sign_in_address.check_telling(address_key(client))?;
        self.sign_in_account.check_telling(account_key(email))
    }

    /// A password reset request or submission from `client` (before anything is looked
    /// up).
    pub fn reset_from(&self, client: IpAddr) -> Result<(), Refusal> {
        self.reset_address.check_telling(address_key(client))
    }

    /// A password reset request or submission for the account of `email` (whether or not
    /// one exists, so the answer tells nothing).
    pub fn reset_for(&self, email: &str) -> Result<(), Refusal> {
        self.reset_account.check_telling(account_key(email))
    }

    /// A sign-up, or an activation mail sent again, from `client`.
    pub fn sign_up(&self, client: IpAddr) -> Result<(), Refusal> {
        self.sign_up_address.check_telling(address_key(client))
    }

    /// This server's password hashing pool.
    pub fn passwords(&self) -> &Arc<PasswordPool> {
        &self.passwords
    }
}

/// Every throttle of one server, shared by all its listeners.
#[derive(Debug, Clone)]
pub struct Throttles {
    pub portal: Arc<PortalThrottle>,
    pub mpesa_keys: Arc<KeyFailures>,
    /// Wrong operator credentials on the admin endpoints (HTTP Basic), per address, at the
    /// portal's sign-in rate per address: right ones cost nothing, so a monitoring poll is
    /// never throttled, and a guesser is blocked as at the portal's sign-in form.
    pub operator_credentials: Arc<KeyFailures>,
}

impl Throttles {
    pub fn new(limits: &ThrottleLimits) -> Throttles {
        Throttles {
            portal: Arc::new(PortalThrottle::new(limits)),
            mpesa_keys: Arc::new(KeyFailures::new(limits)),
            operator_credentials: Arc::new(KeyFailures::with_rate(
                limits.sign_in_per_address,
                limits.max_keys,
            )),
        }
    }
}

/// Failed tries per key; a key whose bucket ran dry is blocked until a try is back.
#[derive(Debug)]
struct Failures {
    limit: Limit,
    blocked: Mutex<HashMap<u64, Instant>>,
}

impl Failures {
    fn new(rate: Rate, max_keys: usize) -> Failures {
        Failures {
            limit: Limit::new(rate, max_keys),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self, key: u64) -> Option<Duration> {
        let mut blocked = self.blocked.lock().expect("blocked keys");
        let until = *blocked.get(&key)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            blocked.remove(&key);
            return None;
        }
        Some(left)
    }

    fn failed(&self, key: u64) {
        let Err(wait) = self.limit.check(key) else {
            return;
        };
        let now = Instant::now();
        let mut blocked = self.blocked.lock().expect("blocked keys");
        if blocked.len() >= self.limit.max_keys {
            blocked.retain(|_, until| *until > now);
        }
        // Still full: the RSA pool's own bound answers the rest.
        if blocked.len() < self.limit.max_keys || blocked.contains_key(&key) {
            blocked.insert(key, now + wait.max(Duration::from_millis(1)));
        }
    }
}

/// Failed credential checks per client address, one per server: M-Pesa API keys (shared
/// by the main listener and the v1x ports), and operators' Basic credentials on the admin
/// endpoints.
#[derive(Debug)]
pub struct KeyFailures(Failures);

impl KeyFailures {
    /// M-Pesa API key checks.
    pub fn new(limits: &ThrottleLimits) -> KeyFailures {
        KeyFailures::with_rate(limits.mpesa_key_failures_per_address, limits.max_keys)
    }

    /// Failures of another check, at `rate` per address.
    pub fn with_rate(rate: Rate, max_keys: usize) -> KeyFailures {
        KeyFailures(Failures::new(rate, max_keys))
    }

    /// How long `client` stays blocked, if it is: answer at once, decrypt nothing.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        self.0.limit.limiter.as_ref()?;
        self.0.blocked(self.0.limit.key(address_key(client)))
    }

    /// Counts a failed key check of `client`.
    pub fn failed(&self, client: IpAddr) {
        if self.0.limit.limiter.is_none() {
            return;
        }
        self.0.failed(self.0.limit.key(address_key(client)));
    }
}

/// Password hashing was refused: every worker and waiting place is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the portal is busy hashing passwords")]
pub struct Busy;

/// Why a hashing job did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is busy: every worker and waiting place is taken")]
    Busy,
    #[error("password hashing task failed: {0}")]
    Failed(#[from] tokio::task::JoinError),
}

/// Argon2 on a bounded set of blocking threads with a bounded queue.
#[derive(Debug)]
pub struct PasswordPool {
    turns: Arc<tokio::sync::Semaphore>,
    /// Jobs running or waiting.
    admitted: Arc<AtomicUsize>,
    workers: usize,
    limit: usize,
}

/// A job's place (running or waiting); dropping it frees the place.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Scope {
    pool: Arc<PasswordPool>,
    refused: Arc<AtomicBool>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

impl PasswordPool {
    /// `workers` hashes at once (at least one), `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> PasswordPool {
        let workers = workers.max(1);
        PasswordPool {
            turns: Arc::new(tokio::sync::Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            workers,
            limit: workers.saturating_add(queue),
        }
    }

    /// The pool of work outside any [`PasswordPool::run`] scope.
    fn process_wide() -> Arc<PasswordPool> {
        static POOL: OnceLock<Arc<PasswordPool>> = OnceLock::new();
        POOL.get_or_init(|| {
            let workers = default_hash_workers();
            Arc::new(PasswordPool::new(workers, workers * HASH_QUEUE_PER_WORKER))
        })
        .clone()
    }

    /// Jobs running or waiting now.
    pub fn in_use(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Hashes at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn admit(&self) -> Option<Place> {
        let mut n = self.admitted.load(Ordering::Acquire);
        loop {
            if n >= self.limit {
                return None;
            }
            match self
                .admitted
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Place(self.admitted.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// Runs `work` (which may hash passwords through the platform) with this pool as the
    /// one its hashing uses; `Err(Busy)` when a hash inside it was refused (then `work`'s
    /// own result, an internal error, is dropped).
    pub async fn run<F: Future>(self: &Arc<Self>, work: F) -> Result<F::Output, Busy> {
        let refused = Arc::new(AtomicBool::new(false));
        let scope = Scope {
            pool: self.clone(),
            refused: refused.clone(),
        };
        let out = SCOPE.scope(scope, work).await;
        if refused.load(Ordering::Acquire) {
            Err(Busy)
        } else {
            Ok(out)
        }
    }
}

/// Runs an Argon2 hash or verification on a blocking thread of the current pool (see
/// [`PasswordPool::run`]): a worker's turn is held until the job ends, even when the
/// request that asked for it is gone, so memory stays at `workers` × 19 MiB.
pub(crate) async fn hash_job<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let (pool, refused) = SCOPE
        .try_with(|s| (s.pool.clone(), Some(s.refused.clone())))
        .unwrap_or_else(|_| (PasswordPool::process_wide(), None));
    let Some(place) = pool.admit() else {
        if let Some(r) = refused {
            r.store(true, Ordering::Release);
        }
        return Err(HashError::Busy);
    };
    let turn = pool
        .turns
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _held = (place, turn);
        f()
    })
    .await
    .map_err(HashError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn shares_bound_each_key_and_all_together() {
        let shares = Shares::new(3, 2);
        let a = [shares.take("a"), shares.take("a"), shares.take("a")];
        assert_eq!(a.iter().filter(|s| s.is_some()).count(), 2, "a key's share");
        let b = shares.take("b").expect("another key's");
        assert!(shares.take("c").is_none(), "all are held");
        drop(b);
        assert!(shares.take("c").is_some(), "a place came free");
        drop(a);
        assert_eq!(shares.held(), 0);
        assert!(
            shares.held.lock().unwrap().by_key.is_empty(),
            "keys holding none forgotten"
        );
    }

    #[test]
    fn a_developer_has_two_exports_under_way_at_most_and_others_are_not_held() {
        let t = PortalThrottle::new(&ThrottleLimits::default());
        let first = t.export_slot(7).expect("one");
        let second = t.export_slot(7).expect("two");
        assert!(t.export_slot(7).is_none(), "a third waits");
        let other = t.export_slot(8).expect("another developer's");
        drop(first);
        let again = t.export_slot(7).expect("a place came free");
        drop((second, again, other));
        assert_eq!(t.exports.held(), 0, "nothing left behind");
    }

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "10/15m".parse().unwrap();
        assert_eq!(r, Rate::new(10, Duration::from_secs(900)));
        assert_eq!(r.interval(), Duration::from_secs(90));
        assert_eq!(r.to_string(), "10/15m");
        assert_eq!("20/m".parse::<Rate>().unwrap().to_string(), "20/1m");
        assert_eq!("5/1h".parse::<Rate>().unwrap().to_string(), "5/1h");
        assert_eq!("30/45s".parse::<Rate>().unwrap().to_string(), "30/45s");
        assert_eq!("off".parse::<Rate>().unwrap(), Rate::OFF);
        assert!("0".parse::<Rate>().unwrap().is_off());
        assert_eq!(Rate::OFF.to_string(), "off");
        for bad in [
            "10", "10/", "x/1m", "10/1d", "10/0m", "-1/1m", "10/m5", "0/15m",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_count_then_refills_one_per_interval() {
        let clock = FakeRelativeClock::default();
        let limit = Limit::with_clock(Rate::new(3, Duration::from_secs(30)), 100, clock.clone());
        for _ in 0..3 {
            assert!(limit.check("a").is_ok());
        }
        let wait = limit.check("a").unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another key has its own bucket.
        assert!(limit.check("b").is_ok());
        clock.advance(Duration::from_secs(10));
        assert!(limit.check("a").is_ok());
        assert!(limit.check("a").is_err());
    }

    #[test]
    fn an_off_rate_never_refuses() {
        let limit = Limit::new(Rate::OFF, 1);
        for _ in 0..1000 {
            assert!(limit.check("a").is_ok());
        }
        assert_eq!(limit.len(), 0);
    }

    #[test]
    fn idle_keys_are_forgotten_and_the_map_is_bounded() {
        let clock = FakeRelativeClock::default();
        let max = 50;
        let limit = Limit::with_clock(Rate::new(2, Duration::from_secs(2)), max, clock.clone());
        for i in 0..HOUSEKEEPING_CHECKS * 3 {
            let _ = limit.check(i);
            assert!(
                limit.len() <= max + HOUSEKEEPING_CHECKS as usize,
                "at most one housekeeping period over the bound"
            );
        }
        // Full: every check is refused until idle keys can be forgotten.
        assert!(limit.full.load(Ordering::Relaxed));
        assert!(limit.check("new").is_err());
        clock.advance(Duration::from_secs(3));
        for _ in 0..HOUSEKEEPING_CHECKS {
            let _ = limit.check("again");
        }
        assert!(limit.len() <= 2, "{} keys", limit.len());
        assert!(!limit.full.load(Ordering::Relaxed));
        assert!(limit.check("new").is_ok());
    }

    /// A flood of new addresses fills the sign-up limit: the throttle says so, so that the
    /// page refusing a stranger does not blame their address.
    #[test]
    fn a_limit_filled_by_a_flood_is_told() {
        let limits = ThrottleLimits {
            max_keys: 10,
            ..ThrottleLimits::default()
        };
        let t = PortalThrottle::new(&limits);
        for i in 0..=HOUSEKEEPING_CHECKS {
            let _ = t.sign_up(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        let refused = t.sign_up("192.0.2.1".parse().unwrap()).unwrap_err();
        assert!(refused.flood);
        // Another limit's refusal blames its own key: it is not the one flooded.
        let here: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..10 {
            let _ = t.sign_in(here, "ada@example.com");
        }
        let refused = t.sign_in(here, "ada@example.com").unwrap_err();
        assert!(!refused.flood);
    }

    #[test]
    fn addresses_count_by_subscriber() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn sign_in_counts_the_address_before_the_account() {
        let limits = ThrottleLimits {
            sign_in_per_account: Rate::new(2, Duration::from_secs(3600)),
            sign_in_per_address: Rate::new(3, Duration::from_secs(3600)),
            ..ThrottleLimits::default()
        };
        let t = PortalThrottle::new(&limits);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.sign_in(here, "Ada@Example.com").is_ok());
        assert!(t.sign_in(here, " ada@example.com ").is_ok());
        // The account is spent, whatever the case of the e-mail and the address.
        assert!(t.sign_in(there, "ADA@example.com").is_err());
        assert!(t.sign_in(here, "bob@example.com").is_ok());
        // The address is spent: another account from it is refused too.
        assert!(t.sign_in(here, "eve@example.com").is_err());
    }

    #[test]
    fn only_failures_count_and_a_spent_address_is_blocked() {
        let limits = ThrottleLimits {
            mpesa_key_failures_per_address: Rate::new(3, Duration::from_secs(60)),
            ..ThrottleLimits::default()
        };
        let f = KeyFailures::new(&limits);
        let ip: IpAddr = "198.51.100.4".parse().unwrap();
        let other: IpAddr = "198.51.100.5".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(f.blocked(ip), None);
            f.failed(ip);
        }
        let left = f.blocked(ip).expect("blocked after the bucket ran dry");
        assert!(left <= Duration::from_secs(20), "{left:?}");
        assert_eq!(f.blocked(other), None);
        let off = KeyFailures::new(&ThrottleLimits::off());
        for _ in 0..100 {
            off.failed(ip);
        }
        assert_eq!(off.blocked(ip), None);
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once_and_says_so() {
        let pool = Arc::new(PasswordPool::new(1, 1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // One running, one waiting.
        let mut jobs = Vec::new();
        for _ in 0..2 {
            let (pool, hold) = (pool.clone(), hold.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(hash_job(move || {
                    let _ = hold.lock().unwrap().recv();
                }))
                .await
            }));
        }
        while pool.in_use() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(hash_job(|| 1)).await;
        assert!(matches!(refused, Err(Busy)));
        release.send(()).unwrap();
        release.send(()).unwrap();
        for j in jobs {
            assert!(matches!(j.await.unwrap(), Ok(Ok(()))));
        }
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.run(hash_job(|| 7)).await.map(|r| r.ok()), Ok(Some(7)));
        // Outside any scope the process-wide pool is used.
        assert_eq!(hash_job(|| 8).await.ok(), Some(8));
    }
}

/// At most one log line a second for one kind of repeated failure, counting the others: a
/// failure met by every request (a lost database, a full file table) must not write a line
/// per request, which would fill the disk at the request rate.
#[derive(Debug)]
pub struct LogGate {
    last_second: std::sync::atomic::AtomicI64,
    unlogged: std::sync::atomic::AtomicU64,
}

impl LogGate {
    pub const fn new() -> LogGate {
        LogGate {
            last_second: std::sync::atomic::AtomicI64::new(i64::MIN),
            unlogged: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(failures not logged since the last line)` when this one is to be logged.
    pub fn turn(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let last = self.last_second.load(Ordering::Relaxed);
        if last != second
            && self
                .last_second
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.unlogged.swap(0, Ordering::Relaxed))
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for LogGate {
    fn default() -> LogGate {
        LogGate::new()
    }
}
