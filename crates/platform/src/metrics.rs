//! The platform's metrics, served in the Prometheus/OpenMetrics text format at
//! `GET /metrics` (`prometheus-client`). Each [`Platform`](crate::Platform) owns one set,
//! so two servers in one process (tests) count apart; the dialects, the dispatcher and
//! the server record into it through [`Platform::metrics`](crate::Platform::metrics).
//!
//! Every label takes values from a fixed set (dialects, route templates, statuses,
//! outcomes), so the number of series stays bounded whatever arrives. The series and a
//! suggested dashboard are listed in `docs/operations.md`.

use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use foldhash::HashMap;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::Product;

/// Labels: name and value pairs.
pub type Labels = Vec<(&'static str, String)>;

/// The `outcome` label of `mkoba_callbacks_total`.
const CALLBACK_OUTCOMES: [&str; 3] = ["delivered", "refused", "error"];

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // 0.1 ms … about 13 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

fn sizes() -> Histogram {
    // 1 … 4096 commands.
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Every series the platform exports.
pub struct Metrics {
    registry: Registry,
    /// `dialect`, `operation` (route template or catalogue id), `status` (`2xx` …).
    pub requests: Family<Labels, Counter>,
    /// Time to answer, by `dialect` (for writes: the time to a durable accept).
    pub request_seconds: Histograms,
    /// Commands the writer took in one pass.
    pub writer_batch: Histogram,
    /// Time to commit one pass.
    pub writer_commit_seconds: Histogram,
    /// Time to begin a pass: on PostgreSQL, waiting for the nodes' pass lock.
    pub writer_lock_wait_seconds: Histogram,
    /// A whole pass, begin to commit.
    pub writer_pass_seconds: Histogram,
    /// Requests waiting for the writer (set when scraped).
    pub writer_queue_depth: Gauge,
    /// The APIs' store reads queued or running (set when scraped).
    pub reads_pending: Gauge,
    /// The portal's store reads queued or running (set when scraped).
    pub portal_reads_pending: Gauge,
    /// The process's resident memory, bytes (set when scraped).
    pub resident_memory: Gauge,
    /// The process's highest resident memory so far, bytes (set when scraped).
    pub resident_memory_peak: Gauge,
    /// The process's CPU time so far, user and system, seconds (brought up to date when
    /// scraped): a benchmark's CPU per lifecycle is its rise over the run.
    pub cpu_seconds: Counter<f64, AtomicU64>,
    /// Held while [`Metrics::count_cpu`] brings the CPU counters up to date, so that two
    /// scrapes at once do not both add the same rise.
    counting_cpu: std::sync::Mutex<()>,
    /// The writer thread's time on a core, seconds (brought up to date when scraped).
    pub writer_cpu_seconds: Counter<f64, AtomicU64>,
    /// The writer thread's time ready to run but waiting for a core, seconds (the kernel's
    /// run queue; brought up to date when scraped).
    pub writer_core_wait_seconds: Counter<f64, AtomicU64>,
    /// Where the kernel counts the writer thread's time (its `/proc/thread-self/schedstat`,
    /// opened on that thread by [`Metrics::writer_thread_started`]).
    writer_schedstat: std::sync::OnceLock<std::fs::File>,
    /// Passes whose commit failed (a full disk, a failing store).
    pub writer_failed_commits: Counter,
    /// Payments that became final, by `status` and `product`.
    pub payments_final: Family<Labels, Counter>,
    /// Callback attempts, by `outcome` (`delivered`, `refused`, `error`) and `attempt`
    /// (`1` … `5`, `6+`).
    pub callbacks: Family<Labels, Counter>,
    /// Callbacks the dispatcher read back from the database (they did not fit in memory,
    /// or were pending at start).
    pub callbacks_swept: Counter,
    /// Idle wallets the writer dropped from memory past `--wallets-in-memory`.
    pub wallets_dropped: Counter,
    /// Wallets read back from the database after they were dropped.
    pub wallets_read_back: Counter,
    /// M-Pesa RSA decryptions, by `result` (`ok`, `invalid`, `overloaded`).
    pub rsa_decryptions: Family<Labels, Counter>,
    /// M-Pesa bearers answered from the cache (`hit`) or decrypted (`miss`).
    pub bearer_cache: Family<Labels, Counter>,
    /// Portal sign-ins, by `outcome` (`ok`, `refused`, `throttled`, `busy`).
    pub portal_signins: Family<Labels, Counter>,
    /// What the store reports of its own work ([`crate::store::Journal::watch`]).
    pub store: StoreMetrics,
    /// The series of [`Metrics::request`] and [`Metrics::callback`] already looked up.
    handles: Handles,
}

/// Series already looked up in their families, by their labels: a family's look-up
/// builds and hashes a vector of owned labels, which for every request and callback was
/// 1 % of a lifecycle's instructions (issue 17, `scripts/instructions.sh`). Bounded as the
/// families are: dialects, status classes, operations (route templates and catalogue
/// ids), callback outcomes and attempt numbers 1 to 6.
#[derive(Default)]
struct Handles {
    /// By dialect and status class (1 to 5), then operation: the counter of `requests`.
    requests: RwLock<HashMap<(&'static str, u16), ByOperation>>,
    /// By dialect: the histogram of `request_seconds`.
    seconds: RwLock<HashMap<&'static str, Histogram>>,
    /// By outcome and attempt (6 for `6+`): the counter of `callbacks`.
    callbacks: RwLock<HashMap<(&'static str, u32), Counter>>,
}

/// A request counter by operation.
type ByOperation = HashMap<Box<str>, Counter>;

/// The series of `key` in `map`, made by `make` the first time.
fn handle<K, Q, M>(map: &RwLock<HashMap<K, M>>, key: &Q, make: impl FnOnce() -> (K, M)) -> M
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    M: Clone,
{
    if let Some(m) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return m.clone();
    }
    let (k, m) = make();
    map.write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(k)
        .or_insert(m)
        .clone()
}

/// Series a store records into itself (SQLite's WAL checkpoints); a store that has none
/// leaves them at zero.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// Frames in SQLite's write-ahead log at the checkpoint thread's last pass.
    pub wal_frames: Gauge,
    /// Checkpoint passes run behind the writer.
    pub checkpoints: Counter,
    /// Times the writer held a commit so the WAL could start over, by `outcome`
    /// (`copied`: everything was copied; `gave_up`: a read kept it from finishing).
    pub wal_drains: Family<Labels, Counter>,
    /// Time the writer held a commit for that.
    pub wal_drain_seconds: Histogram,
    /// Reference ids of new payments waiting in memory for their index.
    pub refs_behind: Gauge,
    /// 1 once the writer's filter of reference ids holds every committed one.
    pub refs_filter_ready: Gauge,
    /// Look-ups of reference ids the writer's filter answered (never taken) without reading
    /// the index.
    pub refs_filter_skips: Counter,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            wal_frames: Gauge::default(),
            checkpoints: Counter::default(),
            wal_drains: Family::default(),
            wal_drain_seconds: latency(),
            refs_behind: Gauge::default(),
            refs_filter_ready: Gauge::default(),
            refs_filter_skips: Counter::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("mkoba");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by dialect, operation and status class",
            requests.clone(),
        );
        let request_seconds = Histograms::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "http_request_seconds",
            "Time to answer a request (a write: to its durable accept), by dialect",
            request_seconds.clone(),
        );
        let writer_batch = sizes();
        registry.register(
            "writer_batch_commands",
            "Commands the single writer took in one pass",
            writer_batch.clone(),
        );
        let writer_commit_seconds = latency();
        registry.register(
            "writer_commit_seconds",
            "Time to commit one pass (durable: fsync or the PostgreSQL commit)",
            writer_commit_seconds.clone(),
        );
        let writer_lock_wait_seconds = latency();
        registry.register(
            "writer_lock_wait_seconds",
            "Time to begin a pass: catching up with other nodes (PostgreSQL: waiting for the nodes' pass lock) and looking up the pass's new reference ids",
            writer_lock_wait_seconds.clone(),
        );
        let writer_pass_seconds = latency();
        registry.register(
            "writer_pass_seconds",
            "One writer pass, begin to commit",
            writer_pass_seconds.clone(),
        );
        let writer_queue_depth = Gauge::default();
        registry.register(
            "writer_queue_depth",
            "Requests waiting for the writer",
            writer_queue_depth.clone(),
        );
        let reads_pending = Gauge::default();
        registry.register(
            "reads_pending",
            "Store reads of the APIs queued or running on their reader threads",
            reads_pending.clone(),
        );
        let portal_reads_pending = Gauge::default();
        registry.register(
            "portal_reads_pending",
            "Store reads of the portal queued or running on its reader threads",
            portal_reads_pending.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register(
            "resident_memory_bytes",
            "The process's resident memory (VmRSS)",
            resident_memory.clone(),
        );
        let resident_memory_peak = Gauge::default();
        registry.register(
            "resident_memory_peak_bytes",
            "The process's highest resident memory since it started (VmHWM)",
            resident_memory_peak.clone(),
        );
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "cpu_seconds",
            "The process's CPU time, user and system (brought up to date when scraped)",
            cpu_seconds.clone(),
        );
        let writer_cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "writer_cpu_seconds",
            "The single writer thread's time on a core (brought up to date when scraped)",
            writer_cpu_seconds.clone(),
        );
        let writer_core_wait_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "writer_core_wait_seconds",
            "The single writer thread's time ready to run but waiting for a core (brought up to date when scraped): near its time on a core, the CPU, not the disk, limits the writer",
            writer_core_wait_seconds.clone(),
        );
        let writer_failed_commits = Counter::default();
        registry.register(
            "writer_failed_commits",
            "Writer passes whose commit failed (full disk, failing store); their requests were answered 503",
            writer_failed_commits.clone(),
        );
        let payments_final = Family::<Labels, Counter>::default();
        registry.register(
            "payments_final",
            "Payments that became final, by status and product",
            payments_final.clone(),
        );
        let callbacks = Family::<Labels, Counter>::default();
        registry.register(
            "callbacks",
            "Callback attempts, by outcome and attempt number",
            callbacks.clone(),
        );
        let callbacks_swept = Counter::default();
        registry.register(
            "callbacks_swept",
            "Callbacks read back from the database (more pending than held in memory, or pending at start)",
            callbacks_swept.clone(),
        );
        let wallets_dropped = Counter::default();
        registry.register(
            "wallets_dropped",
            "Idle wallets the writer dropped from memory past its bound (--wallets-in-memory)",
            wallets_dropped.clone(),
        );
        let wallets_read_back = Counter::default();
        registry.register(
            "wallets_read_back",
            "Wallets read back from the database after they were dropped from memory",
            wallets_read_back.clone(),
        );
        let rsa_decryptions = Family::<Labels, Counter>::default();
        registry.register(
            "mpesa_rsa_decryptions",
            "M-Pesa bearer RSA decryptions, by result",
            rsa_decryptions.clone(),
        );
        let bearer_cache = Family::<Labels, Counter>::default();
        registry.register(
            "mpesa_bearer_cache",
            "M-Pesa bearers answered from the cache (hit) or decrypted (miss)",
            bearer_cache.clone(),
        );
        let portal_signins = Family::<Labels, Counter>::default();
        registry.register(
            "portal_signins",
            "Portal sign-in attempts, by outcome",
            portal_signins.clone(),
        );
        let store = StoreMetrics::default();
        registry.register(
            "sqlite_wal_frames",
            "Frames in SQLite's write-ahead log at the checkpoint thread's last pass",
            store.wal_frames.clone(),
        );
        registry.register(
            "sqlite_checkpoints",
            "SQLite checkpoint passes run behind the writer",
            store.checkpoints.clone(),
        );
        registry.register(
            "sqlite_wal_drains",
            "Times the writer held a commit so SQLite's write-ahead log could start over, by outcome",
            store.wal_drains.clone(),
        );
        registry.register(
            "sqlite_wal_drain_seconds",
            "Time the writer held a commit so SQLite's write-ahead log could start over",
            store.wal_drain_seconds.clone(),
        );
        registry.register(
            "sqlite_refs_behind",
            "Reference ids of new payments waiting in memory for their index",
            store.refs_behind.clone(),
        );
        registry.register(
            "sqlite_refs_filter_ready",
            "1 once the writer's filter of reference ids holds every committed one",
            store.refs_filter_ready.clone(),
        );
        registry.register(
            "sqlite_refs_filter_skips",
            "Look-ups of reference ids the writer's filter answered without reading the index",
            store.refs_filter_skips.clone(),
        );
        // Every series of a known label set starts at 0, so that a dashboard's rate and an
        // alert find it before its first event.
        for status in ["SUCCESSFUL", "FAILED"] {
            for product in [
                Product::Collection,
                Product::Disbursement,
                Product::Remittance,
                Product::Mpesa,
            ] {
                let _ = payments_final.get_or_create(&vec![
                    ("status", status.to_owned()),
                    ("product", product.as_str().to_owned()),
                ]);
            }
        }
        for outcome in CALLBACK_OUTCOMES {
            for attempt in ["1", "2", "3", "4", "5", "6+"] {
                let _ = callbacks.get_or_create(&vec![
                    ("outcome", outcome.to_owned()),
                    ("attempt", attempt.to_owned()),
                ]);
            }
        }
        for (family, name, values) in [
            (
                &rsa_decryptions,
                "result",
                &["ok", "invalid", "overloaded"][..],
            ),
            (&bearer_cache, "result", &["hit", "miss"][..]),
            (
                &portal_signins,
                "outcome",
                &["ok", "refused", "throttled", "busy"][..],
            ),
            (&store.wal_drains, "outcome", &["copied", "gave_up"][..]),
        ] {
            for value in values {
                let _ = family.get_or_create(&label(name, *value));
            }
        }
        Metrics {
            store,
            registry,
            requests,
            request_seconds,
            writer_batch,
            writer_commit_seconds,
            writer_lock_wait_seconds,
            writer_pass_seconds,
            writer_queue_depth,
            reads_pending,
            portal_reads_pending,
            resident_memory,
            resident_memory_peak,
            cpu_seconds,
            counting_cpu: std::sync::Mutex::new(()),
            writer_cpu_seconds,
            writer_core_wait_seconds,
            writer_schedstat: std::sync::OnceLock::new(),
            writer_failed_commits,
            payments_final,
            callbacks,
            callbacks_swept,
            wallets_dropped,
            wallets_read_back,
            rsa_decryptions,
            bearer_cache,
            portal_signins,
            handles: Handles::default(),
        }
    }
}

/// The process's resident memory and its highest so far, KiB (`VmRSS`, `VmHWM` of
/// `/proc/self/status`); `None` where the system does not say.
pub fn memory_kib() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The process's CPU time so far, user and system, in seconds (`utime` and `stime` of
/// `/proc/self/stat`, in the kernel's fixed 100 ticks a second); `None` where the system
/// does not say.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, which may hold spaces) come the state (field
    // 3) and the rest; `utime` and `stime` are fields 14 and 15.
    let mut rest = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let ticks = rest.next()?.parse::<u64>().ok()? + rest.next()?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The calling thread's `schedstat` file, opened. A handle on a thread's `/proc` file stays
/// bound to that thread: once it has ended, reads fail, so a thread id the kernel hands out
/// again is never followed. `None` where the system has no such file.
fn own_schedstat() -> Option<std::fs::File> {
    let file = std::fs::File::open("/proc/thread-self/schedstat").ok()?;
    thread_times(&file).map(|_| file)
}

/// A thread's time on a core and its time ready to run but waiting for one, seconds: the
/// first two fields of its `schedstat` (nanoseconds), read from the start of the file.
fn thread_times(schedstat: &std::fs::File) -> Option<(f64, f64)> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = [0u8; 128];
    let n = schedstat.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (on_core, waiting) = (fields.next()??, fields.next()??);
    Some((on_core as f64 / 1e9, waiting as f64 / 1e9))
}

/// One label.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

impl Metrics {
    /// Brings `cpu_seconds` up to the process's CPU time now, and the writer's counters to
    /// its thread's.
    pub fn count_cpu(&self) {
        // Each counter rises to the kernel's figure, never falls.
        let bring_up = |counter: &Counter<f64, AtomicU64>, now: f64| {
            let counted = counter.get();
            if now > counted {
                counter.inc_by(now - counted);
            }
        };
        let _one_at_a_time = self.counting_cpu.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(now) = cpu_seconds() {
            bring_up(&self.cpu_seconds, now);
        }
        // The writer's own times, while its thread runs (an ended one's file reads nothing,
        // and the counters keep their last figures).
        if let Some((on_core, waiting)) = self.writer_schedstat.get().and_then(thread_times) {
            bring_up(&self.writer_cpu_seconds, on_core);
            bring_up(&self.writer_core_wait_seconds, waiting);
        }
    }

    /// Called on the writer's thread as it starts: [`Metrics::count_cpu`] then counts that
    /// thread's time on a core and its waits for one. Where the kernel does not say (no
    /// `/proc/thread-self/schedstat`), both counters stay at 0.
    pub fn writer_thread_started(&self) {
        match own_schedstat() {
            Some(file) => {
                let _ = self.writer_schedstat.set(file);
            }
            None => tracing::debug!("no schedstat for the writer thread; its CPU is not counted"),
        }
    }

    /// The text exposition (OpenMetrics 1.0, which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts an answered request and its time.
    pub fn request(&self, dialect: &'static str, operation: &str, status: u16, took: Duration) {
        let class = (status / 100).clamp(1, 5);
        let by_operation = {
            let requests = self.handles.requests.read();
            let requests = requests.unwrap_or_else(|e| e.into_inner());
            requests
                .get(&(dialect, class))
                .and_then(|o| o.get(operation))
                .cloned()
        };
        let counter = by_operation.unwrap_or_else(|| {
            let counter = self
                .requests
                .get_or_create(&vec![
                    ("dialect", dialect.to_owned()),
                    ("operation", operation.to_owned()),
                    ("status", format!("{class}xx")),
                ])
                .clone();
            let mut requests = self.handles.requests.write();
            let requests = requests.as_mut().unwrap_or_else(|e| e.get_mut());
            requests
                .entry((dialect, class))
                .or_default()
                .entry(operation.into())
                .or_insert(counter)
                .clone()
        });
        counter.inc();
        handle(&self.handles.seconds, &dialect, || {
            let h = self
                .request_seconds
                .get_or_create(&label("dialect", dialect));
            (dialect, h.clone())
        })
        .observe(took.as_secs_f64());
    }

    /// Counts one callback attempt.
    pub fn callback(&self, outcome: &'static str, attempt: u32) {
        debug_assert!(CALLBACK_OUTCOMES.contains(&outcome));
        let attempt = attempt.min(6);
        handle(&self.handles.callbacks, &(outcome, attempt), || {
            let label = if attempt == 6 {
                "6+".to_owned()
            } else {
                attempt.to_string()
            };
            let c = self
                .callbacks
                .get_or_create(&vec![("outcome", outcome.to_owned()), ("attempt", label)]);
            ((outcome, attempt), c.clone())
        })
        .inc();
    }

    /// Counts one outcome of a one-label family.
    pub fn count(family: &Family<Labels, Counter>, name: &'static str, value: &'static str) {
        family.get_or_create(&label(name, value)).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_counts() {
        let m = Metrics::default();
        m.request(
            "momo",
            "/collection/v1_0/requesttopay",
            202,
            Duration::from_millis(3),
        );
        m.request(
            "momo",
            "/collection/v1_0/requesttopay",
            202,
            Duration::from_millis(5),
        );
        m.callback("delivered", 1);
        m.callback("refused", 9);
        Metrics::count(&m.rsa_decryptions, "result", "ok");
        let text = m.render();
        assert!(text.contains(
            "mkoba_http_requests_total{dialect=\"momo\",operation=\"/collection/v1_0/requesttopay\",status=\"2xx\"} 2\n"
        ), "{text}");
        assert!(
            text.contains("mkoba_http_request_seconds_count{dialect=\"momo\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("mkoba_callbacks_total{outcome=\"refused\",attempt=\"6+\"} 1\n"));
        assert!(text.contains("mkoba_mpesa_rsa_decryptions_total{result=\"ok\"} 1\n"));
        assert!(text.contains("# TYPE mkoba_writer_queue_depth gauge\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_writer_counters_follow_the_thread_that_said_it_is_the_writer() {
        let m = std::sync::Arc::new(Metrics::default());
        m.count_cpu();
        assert_eq!(m.writer_cpu_seconds.get(), 0.0, "no writer thread yet");
        let writer = m.clone();
        let spun = std::thread::spawn(move || {
            writer.writer_thread_started();
            let file = writer.writer_schedstat.get().expect("Linux says");
            let (start, _) = thread_times(file).expect("readable");
            // Work until the kernel has counted another 30 ms of this thread's time.
            let waited = std::time::Instant::now();
            let mut x = 0u64;
            while thread_times(file).expect("readable").0 < start + 0.03 {
                for i in 0..100_000u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
                assert!(waited.elapsed() < Duration::from_secs(60), "never counted");
            }
            std::hint::black_box(x);
            writer.count_cpu();
            writer.writer_cpu_seconds.get()
        })
        .join()
        .expect("joined");
        assert!(spun >= 0.03, "{spun}");
        // The thread has ended: its file reads nothing once the kernel has let it go, and
        // the counter keeps its figure (at most what the thread ran after the last count).
        let file = m.writer_schedstat.get().expect("kept");
        let gone = std::time::Instant::now();
        while thread_times(file).is_some() {
            assert!(gone.elapsed() < Duration::from_secs(60), "still readable");
            std::thread::yield_now();
        }
        // Another thread, which may get the same id, is not followed.
        let busy = std::thread::spawn(|| {
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while started.elapsed() < Duration::from_millis(100) {
                x = x.wrapping_add(1);
            }
            std::hint::black_box(x);
        });
        busy.join().expect("joined");
        let before = m.writer_cpu_seconds.get();
        m.count_cpu();
        assert_eq!(m.writer_cpu_seconds.get(), before);
        assert!(
            before >= spun && before < spun + 0.01,
            "{before} against {spun}"
        );
        let text = m.render();
        assert!(text.contains(&format!("mkoba_writer_cpu_seconds_total {before}")));
        assert!(text.contains("# TYPE mkoba_writer_core_wait_seconds counter\n"));
    }

    #[test]
    fn the_cpu_counter_follows_the_process_and_only_rises() {
        let m = Metrics::default();
        m.count_cpu();
        let first = m.cpu_seconds.get();
        let start = cpu_seconds().expect("Linux says");
        assert!(first >= start - 0.011, "{first} against {start}");
        // Work until the kernel has counted another 30 ms of this process's CPU.
        let waited = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_seconds().unwrap() < start + 0.03 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "CPU time never rose"
            );
        }
        std::hint::black_box(x);
        m.count_cpu();
        let second = m.cpu_seconds.get();
        assert!(second >= start + 0.03, "{second} against {start}");
        assert!(
            m.render()
                .contains(&format!("mkoba_cpu_seconds_total {second}"))
        );
    }
}
