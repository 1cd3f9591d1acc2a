//! `mkoba bench`: a load generator that drives complete request-to-pay lifecycles against a
//! running Mkoba server and reports throughput, latency and the server's memory.
//!
//! # What is measured
//!
//! One *lifecycle* is what an integrator's backend sees for one payment:
//!
//! 1. `POST /collection/v1_0/requesttopay` (Bearer token, `X-Reference-Id`, `X-Callback-Url`)
//!    answered `202 Accepted`;
//! 2. the server settling the payment on its ledger and delivering the terminal callback
//!    (`POST`/`PUT` with `{"…","status":"SUCCESSFUL"}`) to the URL given in `X-Callback-Url`;
//! 3. optionally (`--poll`), one `GET /collection/v1_0/requesttopay/{referenceId}` that must
//!    answer `SUCCESSFUL`.
//!
//! # How
//!
//! * A callback sink (axum, HTTP/1.1 keep-alive) listens on `127.0.0.1:0`. Every request gets the
//!   callback URL `http://127.0.0.1:{port}/cb/{referenceId}`; the sink answers `200` at once and
//!   records the arrival time of the first callback per reference (lock-free: one atomic slot per
//!   request) and counts SUCCESSFUL / FAILED / other statuses, duplicates and unknown references.
//! * The client side is `mkoba-sdk`, as an integrator would use it: provisioning follows the
//!   sandbox flow (`POST /v1_0/apiuser` with providerCallbackHost `127.0.0.1`,
//!   `POST /v1_0/apiuser/{id}/apikey`), then one `Collection` client whose cached token every
//!   worker shares.
//! * Load: the SDK's pooled hyper client (keep-alive, `TCP_NODELAY`) and a fixed set of
//!   `concurrency` worker tasks that pull request indexes from a shared atomic counter, so at most
//!   `concurrency` requests are in flight. With `--rate` the load is an open loop: request `i`
//!   starts `i / rate` seconds after the first whatever the answers so far (while a worker is
//!   free), so offered load past the server's capacity shows its overload answers (`503`,
//!   counted apart with their latency) instead of slowing the generator down. Each worker keeps its latencies in a preallocated
//!   vector; they are merged at the end. Payers are spread over 10,000 MSISDNs.
//! * After the last `202` the generator waits until every accepted request has had its
//!   callback, or 60 s.
//! * Before the load and after its last callback, the server's `/metrics` (or, where that
//!   is not on the server's address, `GET /_mkoba/health`) gives its current and peak
//!   resident memory, and `/metrics` its CPU time: the report gives the CPU the run cost
//!   the server, in all and per lifecycle.
//!
//! # Report
//!
//! * accept phase: time from the first POST until the last POST's answer; accepted/s.
//! * `settled/s`: distinct references whose callback arrived ÷ wall time (first POST → last
//!   callback). `callbacks/s`: every callback request received (duplicates included) on the same
//!   basis. `lifecycles/s`: accepted requests whose callback arrived ÷ the same wall time — the
//!   headline number.
//! * accept latency (send → response headers) and callback lag (POST sent → callback arrived)
//!   percentiles in milliseconds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mkoba_sdk::Transport;
use mkoba_sdk::momo::{Collection, Config, Provisioning, ReferenceId};
use mkoba_sdk::types::momo::{Party, RequestToPay};
use uuid::Uuid;

/// Benchmark options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Base URL of a running server; several, comma-separated, for nodes sharing one
    /// PostgreSQL database (requests go to them in turn, as a round-robin load balancer would)
    #[arg(
        long,
        env = "MKOBA_URL",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    pub url: Vec<String>,
    /// Collection subscription key (primary); if omitted, read from --data via mkoba credentials
    #[arg(long, env = "MKOBA_BENCH_KEY", hide_env_values = true)]
    pub subscription_key: Option<String>,
    /// An operator's `email:password`, for the server's memory figures where `/metrics`
    /// is not on the server's address (`/_mkoba/health` shows them to operators); if
    /// omitted, the operator created in --data
    #[arg(long, env = "MKOBA_BENCH_OPERATOR", hide_env_values = true)]
    pub operator: Option<String>,
    /// Where the server's `/metrics` is, when it has `--metrics-listen` (its CPU, writer and
    /// memory figures come from there) [default: the first --url]
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// number of request-to-pay lifecycles
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub requests: usize,
    /// concurrent in-flight requests
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// open loop: start requests at this many per second whatever the answers (at most
    /// --concurrency in flight), to see the server past its capacity: the overload answers
    /// (503) are counted apart, with their latency
    #[arg(long)]
    pub rate: Option<f64>,
    /// distinct payers the requests go round (a new wallet for each the server has not met)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub payers: u64,
    /// the first payer's number: runs against one database with different offsets meet new
    /// payers (payer `k` of the run is number `(first + k) % payers`)
    #[arg(long, default_value_t = 0)]
    pub first_payer: u64,
    /// also GET the status of every request once after its callback (off by default)
    #[arg(long)]
    pub poll: bool,
    /// print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// skip the ceiling: by default the same load runs against a bare server built into
    /// the bench that only answers 202, before the run and again after it, and the report
    /// gives both figures and their ratio (a same-run, same-machine yardstick)
    #[arg(long)]
    pub no_ceiling: bool,
}

/// Latency distribution in milliseconds (3 decimals).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// Results of the optional `--poll` phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PollReport {
    /// Status GETs sent (one per accepted request).
    pub requests: usize,
    /// Answers `200` with `"status":"SUCCESSFUL"`.
    pub successful: usize,
    /// Answers `200` with any other status (e.g. still PENDING or FAILED).
    pub other_status: usize,
    /// Non-200 answers and transport errors.
    pub errors: usize,
    /// First few problems (status and body).
    pub first_errors: Vec<String>,
    /// Duration of the poll phase in seconds.
    pub elapsed_s: f64,
    /// Status GETs per second.
    pub per_s: f64,
    /// Latency of the GETs.
    pub latency: Option<Percentiles>,
}

/// The benchmark's findings.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Server base URL (several, comma-separated, when nodes share the load); memory figures
    /// are the first server's.
    pub url: String,
    /// Lifecycles attempted.
    pub requests: usize,
    /// Maximum requests in flight.
    pub concurrency: usize,
    /// Request-to-pay POSTs answered `202`.
    pub accepted: usize,
    /// Request-to-pay POSTs answered otherwise, or failed in transport (the overload
    /// answers included).
    pub errors: usize,
    /// `--rate`: requests started per second, as asked.
    pub rate: Option<f64>,
    /// Requests started per second, as achieved (`requests / accept_elapsed_s`).
    pub offered_per_s: f64,
    /// POSTs answered with the overload answer, `503 SERVICE_UNAVAILABLE`.
    pub refused_overloaded: usize,
    /// Latency of those answers, send → response.
    pub refused_latency: Option<Percentiles>,
    /// First few errors (status and body).
    pub first_errors: Vec<String>,
    /// First POST sent → last POST answered, seconds.
    pub accept_elapsed_s: f64,
    /// `accepted / accept_elapsed_s`.
    pub accepted_per_s: f64,
    /// Distinct references whose callback arrived.
    pub callbacks_settled: usize,
    /// Every callback request the sink received (duplicates and unknown references included).
    pub callbacks_delivered: usize,
    /// Callbacks for a reference that had already had one.
    pub callbacks_duplicate: usize,
    /// Callbacks whose path named no reference of this run.
    pub callbacks_unknown: usize,
    /// First callbacks with `"status":"SUCCESSFUL"`.
    pub callbacks_successful: usize,
    /// First callbacks with `"status":"FAILED"`.
    pub callbacks_failed: usize,
    /// First callbacks with another or unreadable status.
    pub callbacks_other_status: usize,
    /// Accepted requests whose callback arrived (complete lifecycles).
    pub lifecycles_completed: usize,
    /// Accepted requests whose callback did not arrive in time.
    pub callbacks_missing: usize,
    /// First POST sent → last callback arrived, seconds (null if no callback arrived).
    pub wall_s: Option<f64>,
    /// `callbacks_settled / wall_s`.
    pub settled_per_s: Option<f64>,
    /// `callbacks_delivered / wall_s`.
    pub callbacks_delivered_per_s: Option<f64>,
    /// `lifecycles_completed / wall_s`: end-to-end lifecycles per second.
    pub lifecycles_per_s: Option<f64>,
    /// Request-to-pay latency, send → response.
    pub accept_latency: Option<Percentiles>,
    /// POST sent → callback arrived.
    pub callback_lag: Option<Percentiles>,
    /// The `--poll` phase, if run.
    pub poll: Option<PollReport>,
    /// Server resident memory before the run, MiB (null if `/_mkoba/health` failed).
    pub server_rss_before_mib: Option<f64>,
    /// Server resident memory after the run, MiB.
    pub server_rss_after_mib: Option<f64>,
    /// Server peak resident memory (VmHWM), MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// The server's CPU time (user and system) from just before the bench provisions its
    /// API user to after the last callback (and the `--poll` phase), seconds, from `mkoba_cpu_seconds_total` of its
    /// `/metrics`; null where that does not say (an older server, `/metrics` elsewhere).
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` per completed lifecycle, microseconds: beside lifecycles/s, whether a
    /// change made the server's work cheaper or only its waits shorter.
    pub server_cpu_us_per_lifecycle: Option<f64>,
    /// What the server's single writer did over the same span (from its `/metrics`): how
    /// many passes, how full, how long, and how busy it was. Null where `/metrics` does
    /// not say.
    pub writer: Option<WriterReport>,
    /// The same load against a bare server (inside the bench) that only answers 202:
    /// accepted/s, the mean of a run before the load and one after it. Null with
    /// `--no-ceiling`.
    pub ceiling_accepted_per_s: Option<f64>,
    /// The ceiling's run before the load, accepted/s.
    pub ceiling_before_per_s: Option<f64>,
    /// The ceiling's run after the load (the server under test idle by then), accepted/s.
    pub ceiling_after_per_s: Option<f64>,
    /// How far the two ceiling runs differ, as a share of their mean: how much the
    /// machine's own speed moved during the run (shared machines move by tens of per
    /// cent). Past [`CEILING_DRIFT_WARN`] the ratios are reported with a warning.
    pub ceiling_drift: Option<f64>,
    /// `accepted_per_s / ceiling_accepted_per_s`.
    pub accept_ratio: Option<f64>,
    /// `lifecycles_per_s / ceiling_accepted_per_s`: durable, settled, called-back lifecycles
    /// as a share of what the machine's HTTP stack alone answers.
    pub lifecycle_ratio: Option<f64>,
}

impl Report {
    /// What went wrong in the run, for its exit status (`None`: nothing): errors other
    /// than the overload answer (which `--rate` past the server's pace is there to show),
    /// callbacks missing, or no payment accepted at all.
    pub fn failures(&self) -> Option<String> {
        let errors = self.errors - self.refused_overloaded.min(self.errors);
        let mut said = Vec::new();
        if self.accepted == 0 {
            said.push("no request-to-pay was accepted".to_owned());
        }
        if errors > 0 {
            said.push(format!(
                "{errors} request{} failed otherwise than with the overload answer",
                if errors == 1 { "" } else { "s" }
            ));
        }
        if self.callbacks_missing > 0 {
            said.push(format!("{} callbacks missing", self.callbacks_missing));
        }
        (!said.is_empty()).then(|| said.join(", "))
    }

    /// Prints the report for people.
    pub fn print_human(&self) {
        let opt = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v:.1}{unit}"),
            None => "n/a".to_owned(),
        };
        let mib = |v: Option<f64>| match v {
            Some(v) => format!("{v:.1} MiB"),
            None => "n/a".to_owned(),
        };
        println!("mkoba bench — {}", self.url);
        println!();
        println!("  requests              {:>12}", self.requests);
        println!("  concurrency           {:>12}", self.concurrency);
        println!("  accepted (202)        {:>12}", self.accepted);
        println!("  errors                {:>12}", self.errors);
        if let Some(rate) = self.rate {
            println!("  rate asked            {rate:>12.1} /s (open loop)");
        }
        println!("  offered               {:>12.1} /s", self.offered_per_s);
        println!(
            "  refused (503)         {:>12}  (the overload answer; p50 / p99 {} / {} ms)",
            self.refused_overloaded,
            opt(self.refused_latency.as_ref().map(|p| p.p50_ms), ""),
            opt(self.refused_latency.as_ref().map(|p| p.p99_ms), "")
        );
        println!("  accept phase          {:>12.3} s", self.accept_elapsed_s);
        println!("  accepted/s            {:>12.1}", self.accepted_per_s);
        if let Some(c) = self.ceiling_accepted_per_s {
            println!(
                "  ceiling (bare 202)/s  {c:>12.1}  (the same load, a server that only answers 202; before {}, after {})",
                opt(self.ceiling_before_per_s, ""),
                opt(self.ceiling_after_per_s, "")
            );
            if let Some(drift) = self.ceiling_drift.filter(|d| *d > CEILING_DRIFT_WARN) {
                println!(
                    "  warning: the ceiling moved {:.0} % between before and after: the machine's speed changed during the run, so the ratios below are uncertain by about as much",
                    drift * 100.0
                );
            }
            println!(
                "  accepted / ceiling    {:>12}",
                opt(self.accept_ratio.map(|r| r * 100.0), " %")
            );
            println!(
                "  lifecycles / ceiling  {:>12}",
                opt(self.lifecycle_ratio.map(|r| r * 100.0), " %")
            );
        }
        println!();
        println!(
            "  callbacks             {:>12}  (successful {}, failed {}, other {})",
            self.callbacks_settled,
            self.callbacks_successful,
            self.callbacks_failed,
            self.callbacks_other_status
        );
        println!(
            "  callbacks delivered   {:>12}  (duplicates {}, unknown {})",
            self.callbacks_delivered, self.callbacks_duplicate, self.callbacks_unknown
        );
        println!("  callbacks missing     {:>12}", self.callbacks_missing);
        println!(
            "  wall                  {:>12}  (first POST → last callback)",
            self.wall_s
                .map_or_else(|| "n/a".to_owned(), |w| format!("{w:.3} s"))
        );
        println!(
            "  settled/s             {:>12}",
            opt(self.settled_per_s, "")
        );
        println!(
            "  callbacks/s           {:>12}",
            opt(self.callbacks_delivered_per_s, "")
        );
        println!(
            "  lifecycles/s (e2e)    {:>12}  ({} completed)",
            opt(self.lifecycles_per_s, ""),
            self.lifecycles_completed
        );
        println!();
        println!(
            "  {:<22}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "p50", "p90", "p99", "max", "mean"
        );
        let row = |name: &str, p: &Option<Percentiles>| match p {
            Some(p) => println!(
                "  {:<22}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
                name, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.mean_ms
            ),
            None => println!("  {name:<22}{:>10}", "n/a"),
        };
        row("accept (POST→202)", &self.accept_latency);
        row("callback lag", &self.callback_lag);
        if let Some(poll) = &self.poll {
            row("status GET", &poll.latency);
            println!();
            println!(
                "  poll: {} GETs in {:.3} s ({:.1}/s): {} SUCCESSFUL, {} other status, {} errors",
                poll.requests,
                poll.elapsed_s,
                poll.per_s,
                poll.successful,
                poll.other_status,
                poll.errors
            );
            for e in &poll.first_errors {
                println!("    {e}");
            }
        }
        println!();
        println!(
            "  server RSS            before {}, after {}, peak {}",
            mib(self.server_rss_before_mib),
            mib(self.server_rss_after_mib),
            mib(self.server_peak_rss_mib)
        );
        if let Some(cpu) = self.server_cpu_s {
            println!(
                "  server CPU            {cpu:.2} s{}",
                self.server_cpu_us_per_lifecycle
                    .map(|us| format!("  ({us:.0} µs per lifecycle)"))
                    .unwrap_or_default()
            );
        }
        if let Some(w) = &self.writer {
            println!(
                "  writer                {} passes, {:.1} commands a pass, {:.2} ms a pass (commit {:.2} ms), busy {:.0} % of the run",
                w.passes,
                w.commands_per_pass,
                w.pass_ms,
                w.commit_ms,
                w.busy * 100.0
            );
            if let Some(shares) = w.core_shares() {
                println!("                        its thread {shares} of the run");
            }
        }
        if !self.first_errors.is_empty() {
            println!();
            println!("  first errors:");
            for e in &self.first_errors {
                println!("    {e}");
            }
        }
    }
}

/// How many error samples are kept.
const MAX_ERROR_SAMPLES: usize = 5;
/// How long to wait for callbacks after the last accept.
const CALLBACK_GRACE: Duration = Duration::from_secs(60);
/// Per-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// State shared by the workers, the callback sink and the progress printer.
struct Shared {
    /// Time zero: just before the first POST.
    t0: Instant,
    /// The reference id of every request, by index.
    refs: Vec<Uuid>,
    /// Reference id → index.
    index: HashMap<Uuid, u32>,
    /// Microseconds since `t0` + 1 at which each POST was sent (0 = not sent).
    sent_us: Vec<AtomicU64>,
    /// Microseconds since `t0` + 1 at which each first callback arrived (0 = none yet).
    arrived_us: Vec<AtomicU64>,
    accepted: AtomicUsize,
    errors: AtomicUsize,
    cb_total: AtomicUsize,
    cb_unique: AtomicUsize,
    cb_duplicate: AtomicUsize,
    cb_unknown: AtomicUsize,
    cb_successful: AtomicUsize,
    cb_failed: AtomicUsize,
    cb_other: AtomicUsize,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn new(n: usize) -> Self {
        let refs: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let index = refs
            .iter()
            .enumerate()
            .map(|(i, u)| (*u, i as u32))
            .collect();
        Self {
            t0: Instant::now(),
            refs,
            index,
            sent_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            arrived_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            accepted: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            cb_total: AtomicUsize::new(0),
            cb_unique: AtomicUsize::new(0),
            cb_duplicate: AtomicUsize::new(0),
            cb_unknown: AtomicUsize::new(0),
            cb_successful: AtomicUsize::new(0),
            cb_failed: AtomicUsize::new(0),
            cb_other: AtomicUsize::new(0),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    /// Microseconds since `t0`, plus one so that 0 can mean "never".
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64 + 1
    }

    fn record_error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        sample_error(&self.error_samples, what);
    }
}

fn sample_error(samples: &Mutex<Vec<String>>, what: String) {
    if let Ok(mut s) = samples.lock()
        && s.len() < MAX_ERROR_SAMPLES
    {
        s.push(what);
    }
}

/// Runs the benchmark.
/// Where `/metrics` is read from a `--metrics-url`: the address, with or without the
/// `/metrics` path.
pub(crate) fn metrics_base(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/metrics").unwrap_or(url)
}

/// `--metrics-url`, when given, is an `http://` URL: one the figures could not be read
/// from would only leave them out of the report, unsaid.
pub(crate) fn check_metrics_url(url: Option<&str>) -> anyhow::Result<()> {
    if let Some(url) = url
        && !url
            .parse::<http::Uri>()
            .is_ok_and(|u| u.scheme_str() == Some("http") && u.host().is_some())
    {
        crate::usage!(
            "--metrics-url must be an http:// URL of the server's --metrics-listen, such as http://127.0.0.1:9100, got {url:?}"
        );
    }
    Ok(())
}

/// `--url`: the server's base URL, `http://` or `https://` with a host (a usage error
/// otherwise, said before anything is sent).
pub(crate) fn check_url(url: &str) -> anyhow::Result<()> {
    if !url
        .parse::<http::Uri>()
        .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
    {
        crate::usage!(
            "--url must be the server's base URL, such as http://127.0.0.1:8080, got {url:?}"
        );
    }
    Ok(())
}

pub async fn run(args: BenchArgs, subscription_key: String) -> anyhow::Result<Report> {
    for url in &args.url {
        check_url(url)?;
    }
    let n = args.requests;
    if n == 0 {
        crate::usage!("--requests must be at least 1");
    }
    if args.concurrency == 0 {
        crate::usage!("--concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        crate::usage!("--rate must be a positive number of requests a second");
    }
    if n > u32::MAX as usize {
        bail!("--requests is too large");
    }
    check_metrics_url(args.metrics_url.as_deref())?;
    let concurrency = args.concurrency.clamp(1, n);
    let bases: Vec<String> = args
        .url
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let Some(base) = bases.first().cloned() else {
        bail!("--url needs at least one server");
    };

    // The yardstick first, so the server under test is idle meanwhile (and once more at
    // the end).
    let ceiling_before = if args.no_ceiling {
        None
    } else {
        Some(ceiling(n, concurrency).await?)
    };

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1)
        .build(connector);
    let transport = Transport::with_pool(REQUEST_TIMEOUT, concurrency * 2);

    let metrics = args.metrics_url.as_deref().map(crate::bench::metrics_base);
    let before = server_figures(&client, &base, metrics, args.operator.as_deref()).await;
    // The figures of `/metrics` (its CPU series) came, not only the health endpoint's.
    if let Some(url) = metrics
        && before.as_ref().and_then(|f| f.cpu_s).is_none()
    {
        bail!(
            "--metrics-url: nothing answered at {url}/metrics (the server's --metrics-listen address)"
        );
    }
    let before_at = Instant::now();

    // The sink's port must be known before the requests are built; serving starts later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the callback sink")?;
    let sink_port = listener.local_addr()?.port();

    let collections = provision(&transport, &bases, &subscription_key).await?;
    let collection = collections[0].clone();

    // Built just before the first POST: `t0` is the origin of every timestamp.
    let shared = Arc::new(Shared::new(n));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = tokio::spawn(serve_sink(listener, shared.clone(), stop_rx));

    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = tokio::spawn(progress_line(shared.clone(), progress_stop.clone(), n));

    // ---- accept phase -------------------------------------------------------------------
    let ctx = Arc::new(FireCtx {
        collections,
        callback_base: format!("http://127.0.0.1:{sink_port}/cb/"),
        shared: shared.clone(),
        next: AtomicUsize::new(0),
        payers: (args.payers, args.first_payer % args.payers),
        interval: args
            .rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r)),
    });
    let per_worker = n / concurrency + 1;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(fire_worker(ctx.clone(), per_worker)))
        .collect();
    let mut latencies: Vec<u32> = Vec::with_capacity(n);
    let mut accepted_idx: Vec<u32> = Vec::with_capacity(n);
    let mut refused: Vec<u32> = Vec::new();
    for w in workers {
        let (lat, acc, re) = w.await.context("worker panicked")?;
        latencies.extend_from_slice(&lat);
        accepted_idx.extend_from_slice(&acc);
        refused.extend_from_slice(&re);
    }
    let accept_elapsed = shared.t0.elapsed();
    let accepted = shared.accepted.load(Ordering::Relaxed);

    // ---- wait for callbacks -------------------------------------------------------------
    let accept_end = Instant::now();
    let all_settled = || {
        // The sink's counter is cheap; the exact count (which ignores callbacks for requests
        // that were not answered 202) only runs once that counter has reached the target.
        shared.cb_unique.load(Ordering::Relaxed) >= accepted
            && accepted_idx
                .iter()
                .filter(|&&i| shared.arrived_us[i as usize].load(Ordering::Relaxed) != 0)
                .count()
                >= accepted
    };
    while !all_settled() && accept_end.elapsed() < CALLBACK_GRACE {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // ---- optional poll phase ------------------------------------------------------------
    let poll = if args.poll {
        Some(poll_phase(&collection, &shared, &accepted_idx, concurrency).await?)
    } else {
        None
    };

    progress_stop.store(true, Ordering::Relaxed);
    let _ = progress.await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), sink).await;

    let memory = server_figures(&client, &base, metrics, args.operator.as_deref()).await;
    let server_cpu = cpu_between(before, memory);
    let writer = writer_between(before, memory, before_at.elapsed());
    // The yardstick again, now that the server under test is done: the machine's speed
    // may have moved meanwhile, and the mean of both is what the run is compared with.
    let ceiling_after = if ceiling_before.is_some() {
        Some(ceiling(n, concurrency).await?)
    } else {
        None
    };
    let ceiling = ceiling_before
        .zip(ceiling_after)
        .map(|(before, after)| (before + after) / 2.0);

    // ---- report -------------------------------------------------------------------------
    let mut lags: Vec<u32> = Vec::with_capacity(accepted_idx.len());
    let mut last_callback_us = 0u64;
    for &i in &accepted_idx {
        let i = i as usize;
        let arrived = shared.arrived_us[i].load(Ordering::Relaxed);
        if arrived != 0 {
            let sent = shared.sent_us[i].load(Ordering::Relaxed);
            lags.push(arrived.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
        }
    }
    for a in &shared.arrived_us {
        last_callback_us = last_callback_us.max(a.load(Ordering::Relaxed));
    }
    let completed = lags.len();
    let settled = shared.cb_unique.load(Ordering::Relaxed);
    let delivered = shared.cb_total.load(Ordering::Relaxed);
    let wall_s = (last_callback_us > 0).then(|| (last_callback_us - 1) as f64 / 1e6);
    let rate = |count: usize| {
        wall_s
            .filter(|w| *w > 0.0)
            .map(|w| round1(count as f64 / w))
    };
    let accept_s = accept_elapsed.as_secs_f64();
    let first_errors = shared
        .error_samples
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();

    Ok(Report {
        url: bases.join(","),
        requests: n,
        concurrency,
        accepted,
        errors: shared.errors.load(Ordering::Relaxed),
        rate: args.rate,
        offered_per_s: round1(n as f64 / accept_s.max(1e-9)),
        refused_overloaded: refused.len(),
        refused_latency: percentiles(&mut refused),
        first_errors,
        accept_elapsed_s: round3(accept_s),
        accepted_per_s: round1(accepted as f64 / accept_s.max(1e-9)),
        callbacks_settled: settled,
        callbacks_delivered: delivered,
        callbacks_duplicate: shared.cb_duplicate.load(Ordering::Relaxed),
        callbacks_unknown: shared.cb_unknown.load(Ordering::Relaxed),
        callbacks_successful: shared.cb_successful.load(Ordering::Relaxed),
        callbacks_failed: shared.cb_failed.load(Ordering::Relaxed),
        callbacks_other_status: shared.cb_other.load(Ordering::Relaxed),
        lifecycles_completed: completed,
        callbacks_missing: accepted - completed,
        wall_s: wall_s.map(round3),
        settled_per_s: rate(settled),
        callbacks_delivered_per_s: rate(delivered),
        lifecycles_per_s: rate(completed),
        accept_latency: percentiles(&mut latencies),
        callback_lag: percentiles(&mut lags),
        poll,
        server_rss_before_mib: before.and_then(|m| m.rss_kb).map(kb_to_mib),
        server_rss_after_mib: memory.and_then(|m| m.rss_kb).map(kb_to_mib),
        server_peak_rss_mib: memory.and_then(|m| m.peak_kb).map(kb_to_mib),
        server_cpu_s: server_cpu.map(round3),
        server_cpu_us_per_lifecycle: server_cpu
            .filter(|_| completed > 0)
            .map(|cpu| round1(cpu * 1e6 / completed as f64)),
        writer,
        ceiling_accepted_per_s: ceiling.map(round1),
        ceiling_before_per_s: ceiling_before.map(round1),
        ceiling_after_per_s: ceiling_after.map(round1),
        ceiling_drift: ceiling
            .zip(ceiling_before.zip(ceiling_after))
            .filter(|(mean, _)| *mean > 0.0)
            .map(|(mean, (before, after))| round3((after - before).abs() / mean)),
        accept_ratio: ceiling
            .filter(|c| *c > 0.0)
            .map(|c| round3(accepted as f64 / accept_s.max(1e-9) / c)),
        lifecycle_ratio: ceiling
            .filter(|c| *c > 0.0)
            .and_then(|c| rate(completed).map(|l| round3(l / c))),
    })
}

// ---- provisioning ---------------------------------------------------------------------------

/// Creates a sandbox API user and key (on the first server) and, per server, a collection
/// client holding its first token.
async fn provision(
    transport: &Transport,
    bases: &[String],
    subscription_key: &str,
) -> anyhow::Result<Vec<Collection>> {
    let base = &bases[0];
    let explain = |doing: &str, e: mkoba_sdk::Error| match e.hint() {
        Some(hint) => anyhow::anyhow!("{doing}: {e} ({hint})"),
        None => anyhow::anyhow!("{doing}: {e}"),
    };
    let user = Provisioning::new(subscription_key)
        .base_url(base)
        .transport(transport.clone())
        .provision("127.0.0.1")
        .await
        .map_err(|e| {
            // A server that answered (a wrong key, say) is told by its answer; only
            // one that was not reached raises the question.
            let doing = if matches!(
                e,
                mkoba_sdk::Error::Transport { .. } | mkoba_sdk::Error::Timeout { .. }
            ) {
                "creating a sandbox API user (is the server running at --url?)"
            } else {
                "creating a sandbox API user"
            };
            explain(doing, e)
        })?;
    let mut collections = Vec::new();
    for base in bases {
        let collection = Collection::new(
            Config::new(subscription_key)
                .base_url(base)
                .api_user(&user.api_user, &user.api_key)
                .transport(transport.clone()),
        )?;
        collection
            .access_token()
            .await
            .map_err(|e| explain(&format!("getting a collection token from {base}"), e))?;
        collections.push(collection);
    }
    Ok(collections)
}

/// A ceiling drift past which the report warns that the machine's speed moved too much
/// during the run for its ratios to be read closely.
pub const CEILING_DRIFT_WARN: f64 = 0.10;

/// The ceiling: the same accept load (`n` request-to-pays, `concurrency` in flight, the
/// same SDK client and workers) against a bare server inside the bench that answers the
/// provisioning and token calls and then only `202` — no validation, no storage, no
/// callback. Returns its accepted/s.
async fn ceiling(n: usize, concurrency: usize) -> anyhow::Result<f64> {
    use axum::routing::post;
    let bare = axum::Router::new()
        .route("/v1_0/apiuser", post(|| async { StatusCode::CREATED }))
        .route(
            "/v1_0/apiuser/{id}/apikey",
            post(|| async {
                (
                    StatusCode::CREATED,
                    [(http::header::CONTENT_TYPE, "application/json")],
                    r#"{"apiKey":"00000000000000000000000000000000"}"#,
                )
            }),
        )
        .route(
            "/collection/token/",
            post(|| async {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    r#"{"access_token":"bare","token_type":"access_token","expires_in":3600}"#,
                )
            }),
        )
        .route(
            "/collection/v1_0/requesttopay",
            post(|| async { StatusCode::ACCEPTED }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the ceiling's bare server")?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = crate::listener::serve(
        listener,
        bare,
        stop_rx,
        crate::listener::ConnectionLimits {
            per_client: usize::MAX,
            total: usize::MAX,
            ..crate::listener::ConnectionLimits::default()
        },
    );
    let transport = Transport::with_pool(REQUEST_TIMEOUT, concurrency * 2);
    let collections = provision(&transport, std::slice::from_ref(&base), "bare").await?;
    let shared = Arc::new(Shared::new(n));
    let ctx = Arc::new(FireCtx {
        collections,
        callback_base: "http://127.0.0.1:9/cb/".to_owned(),
        shared: shared.clone(),
        next: AtomicUsize::new(0),
        payers: (10_000, 0),
        // The yardstick is closed loop: as fast as the bare server answers.
        interval: None,
    });
    let per_worker = n / concurrency + 1;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(fire_worker(ctx.clone(), per_worker)))
        .collect();
    for w in workers {
        w.await.context("worker panicked")?;
    }
    let elapsed = shared.t0.elapsed().as_secs_f64();
    let accepted = shared.accepted.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    anyhow::ensure!(accepted == n, "the bare server accepted {accepted} of {n}");
    Ok(accepted as f64 / elapsed.max(1e-9))
}

/// Sends a request and reads the whole answer.
pub(crate) async fn exchange(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, client.request(req))
        .await
        .context("timed out")??;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

// ---- accept phase ---------------------------------------------------------------------------

struct FireCtx {
    /// One client per server; request `i` goes to server `i % len`.
    collections: Vec<Collection>,
    /// `http://127.0.0.1:{port}/cb/`
    callback_base: String,
    shared: Arc<Shared>,
    next: AtomicUsize,
    /// `--payers` and `--first-payer`.
    payers: (u64, u64),
    /// `--rate`: request `i` starts `i × interval` after `t0`.
    interval: Option<Duration>,
}

/// The MSISDN of payer number `k` of `payers`: an injective map onto eight digits (9,973 is
/// prime to 10^8), so the payers are distinct and spread out.
fn payer_msisdn(k: u64, payers: u64) -> String {
    format!("2567{:08}", (k % payers) * 9_973 % 100_000_000)
}

/// Pulls indexes until all requests are sent; returns (latencies µs, accepted indexes).
/// What one worker saw: accept latencies (µs), the indexes accepted, and the latencies of
/// the overload answers.
type Fired = (Vec<u32>, Vec<u32>, Vec<u32>);

async fn fire_worker(ctx: Arc<FireCtx>, capacity: usize) -> Fired {
    let shared = &ctx.shared;
    let n = shared.refs.len();
    let mut latencies = Vec::with_capacity(capacity);
    let mut accepted = Vec::with_capacity(capacity);
    let mut refused = Vec::new();
    let mut callback = String::with_capacity(ctx.callback_base.len() + 36);
    loop {
        let i = ctx.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let reference = shared.refs[i];
        callback.clear();
        let _ = write!(callback, "{}{}", ctx.callback_base, reference.hyphenated());
        let body = RequestToPay {
            amount: "1".to_owned(),
            currency: "EUR".to_owned(),
            external_id: Some(format!("bench-{i}")),
            payer: Party::msisdn(payer_msisdn(ctx.payers.1 + i as u64, ctx.payers.0)),
            payer_message: Some("bench".to_owned()),
            payee_note: Some("bench".to_owned()),
        };
        if let Some(interval) = ctx.interval {
            tokio::time::sleep_until((shared.t0 + interval.mul_f64(i as f64)).into()).await;
        }
        let start = Instant::now();
        shared.sent_us[i].store(shared.now_us(), Ordering::Relaxed);
        let result = ctx.collections[i % ctx.collections.len()]
            .request_to_pay(&body)
            .reference_id(ReferenceId::from(reference))
            .callback_url(callback.as_str())
            .await;
        let latency = start.elapsed();
        match result {
            Ok(_) => {
                latencies.push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
                accepted.push(i as u32);
                shared.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if e.api().is_some_and(|a| a.status == 503) {
                    refused.push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
                }
                shared.record_error(format!("request {i}: {e}"));
            }
        }
    }
    (latencies, accepted, refused)
}

// ---- callback sink --------------------------------------------------------------------------

async fn serve_sink(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let app = axum::Router::new()
        .route(
            "/cb/{reference}",
            axum::routing::post(callback).put(callback),
        )
        .with_state(shared);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!("callback sink stopped: {e}");
    }
}

#[derive(serde::Deserialize)]
struct CallbackBody<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

async fn callback(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    uri: Uri,
    body: Bytes,
) -> StatusCode {
    let now = shared.now_us();
    shared.cb_total.fetch_add(1, Ordering::Relaxed);
    let index = uri
        .path()
        .strip_prefix("/cb/")
        .and_then(|r| Uuid::try_parse(r).ok())
        .and_then(|u| shared.index.get(&u).copied());
    let Some(i) = index else {
        shared.cb_unknown.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    if shared.arrived_us[i as usize]
        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        shared.cb_duplicate.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
    let counter = match serde_json::from_slice::<CallbackBody<'_>>(&body) {
        Ok(CallbackBody { status: Some(s) }) if s == "SUCCESSFUL" => &shared.cb_successful,
        Ok(CallbackBody { status: Some(s) }) if s == "FAILED" => &shared.cb_failed,
        _ => &shared.cb_other,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    shared.cb_unique.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

// ---- poll phase -----------------------------------------------------------------------------

async fn poll_phase(
    collection: &Collection,
    shared: &Arc<Shared>,
    accepted_idx: &[u32],
    concurrency: usize,
) -> anyhow::Result<PollReport> {
    struct PollCtx {
        collection: Collection,
        shared: Arc<Shared>,
        todo: Vec<u32>,
        next: AtomicUsize,
        successful: AtomicUsize,
        other: AtomicUsize,
        errors: AtomicUsize,
        samples: Mutex<Vec<String>>,
    }
    async fn worker(ctx: Arc<PollCtx>, capacity: usize) -> Vec<u32> {
        let mut latencies = Vec::with_capacity(capacity);
        loop {
            let k = ctx.next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = ctx.todo.get(k) else { break };
            let reference = ReferenceId::from(ctx.shared.refs[i as usize]);
            let start = Instant::now();
            match ctx.collection.get_request_to_pay_status(&reference).await {
                Ok(status) => {
                    latencies.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    if status.status == "SUCCESSFUL" {
                        ctx.successful.fetch_add(1, Ordering::Relaxed);
                    } else {
                        ctx.other.fetch_add(1, Ordering::Relaxed);
                        sample_error(&ctx.samples, format!("GET {i}: 200 {}", status.status));
                    }
                }
                Err(e) => {
                    ctx.errors.fetch_add(1, Ordering::Relaxed);
                    sample_error(&ctx.samples, format!("GET {i}: {e}"));
                }
            }
        }
        latencies
    }

    let ctx = Arc::new(PollCtx {
        collection: collection.clone(),
        shared: shared.clone(),
        todo: accepted_idx.to_vec(),
        next: AtomicUsize::new(0),
        successful: AtomicUsize::new(0),
        other: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        samples: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let workers = concurrency.clamp(1, accepted_idx.len().max(1));
    let per_worker = accepted_idx.len() / workers + 1;
    let handles: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(ctx.clone(), per_worker)))
        .collect();
    let mut latencies = Vec::with_capacity(accepted_idx.len());
    for h in handles {
        latencies.extend_from_slice(&h.await.context("poll worker panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let first_errors = ctx.samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(PollReport {
        requests: accepted_idx.len(),
        successful: ctx.successful.load(Ordering::Relaxed),
        other_status: ctx.other.load(Ordering::Relaxed),
        errors: ctx.errors.load(Ordering::Relaxed),
        first_errors,
        elapsed_s: round3(elapsed),
        per_s: round1(accepted_idx.len() as f64 / elapsed.max(1e-9)),
        latency: percentiles(&mut latencies),
    })
}

// ---- progress, memory, statistics -----------------------------------------------------------

/// Shows progress on stderr until told to stop: on a terminal one line rewritten every
/// 250 ms (a bar of completed lifecycles, accepted and completed counts, the live rate of
/// completions); otherwise (a log file, CI) one plain line every 2 s.
async fn progress_line(shared: Arc<Shared>, stop: Arc<AtomicBool>, n: usize) {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let period = if terminal {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(2)
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_cb = 0usize;
    let mut last_at = Instant::now();
    let mut first = true;
    loop {
        tick.tick().await;
        let done = stop.load(Ordering::Relaxed);
        if !(first || done || last_at.elapsed() >= period) {
            continue;
        }
        first = false;
        let accepted = shared.accepted.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let cbs = shared.cb_unique.load(Ordering::Relaxed);
        let now = Instant::now();
        let dt = now.duration_since(last_at).as_secs_f64().max(1e-6);
        let live = cbs.saturating_sub(last_cb) as f64 / dt;
        last_cb = cbs;
        last_at = now;
        let line = progress_text(
            shared.t0.elapsed().as_secs_f64(),
            accepted,
            cbs,
            errors,
            n,
            live,
        );
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
        if done && terminal {
            let _ = writeln!(err);
        }
        let _ = err.flush();
        if done {
            break;
        }
    }
}

/// `  [########------------]  40%  1.5s  accepted 9000/20000  done 8000  errors 0  5333/s`
fn progress_text(
    elapsed_s: f64,
    accepted: usize,
    completed: usize,
    errors: usize,
    n: usize,
    rate: f64,
) -> String {
    const WIDTH: usize = 24;
    let fraction = (completed as f64 / n.max(1) as f64).clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "  [{}{}] {:>3.0}%  {elapsed_s:>6.1}s  accepted {accepted}/{n}  completed {completed}  errors {errors}  {rate:>7.0}/s",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0
    )
}

/// What the server says of itself: from `GET /metrics`, or where that does not say, from
/// `GET /_mkoba/health` (an operator's view, without the CPU time or the writer's figures).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerFigures {
    pub(crate) rss_kb: Option<u64>,
    pub(crate) peak_kb: Option<u64>,
    pub(crate) cpu_s: Option<f64>,
    pub(crate) writer: Option<WriterTotals>,
}

/// The writer's counters since the server started (`mkoba_writer_*` of `/metrics`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterTotals {
    /// Passes that committed.
    passes: f64,
    /// Their time, seconds.
    pass_s: f64,
    /// The commits' part of it, seconds.
    commit_s: f64,
    /// Commands the passes took.
    commands: f64,
    /// The writer thread's time on a core, and its time waiting for one, seconds; `None`
    /// where the server does not say (an older one); 0 on a system without `schedstat`.
    on_core_s: Option<f64>,
    core_wait_s: Option<f64>,
}

/// What the writer did between two readings, over `elapsed`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WriterReport {
    /// Passes committed.
    pub passes: u64,
    /// Commands a pass on average (a request-to-pay is one; so is each callback attempt
    /// recorded, and each portal or M-Pesa change).
    pub commands_per_pass: f64,
    /// A pass's mean time, milliseconds: taking in other nodes' commits, applying its
    /// commands and settlements, committing.
    pub pass_ms: f64,
    /// The commit's part of it, milliseconds.
    pub commit_ms: f64,
    /// Share of the time between the readings the writer spent in passes (near 1: the
    /// single writer is the limit).
    pub busy: f64,
    /// Share of that time the writer's thread was on a core. Null where the server does
    /// not say.
    pub on_core: Option<f64>,
    /// Share of that time the writer's thread was ready to run but waiting for a core:
    /// near `on_core`, the CPU (shared with whatever else runs on the machine), not the
    /// disk, limits the writer. Null where the server does not say.
    pub waiting_for_core: Option<f64>,
}

impl WriterReport {
    /// "on a core N %, waiting for one M %", where the server says.
    pub(crate) fn core_shares(&self) -> Option<String> {
        let (on, waiting) = (self.on_core?, self.waiting_for_core?);
        Some(format!(
            "on a core {:.0} %, waiting for one {:.0} %",
            on * 100.0,
            waiting * 100.0
        ))
    }
}

/// The writer's work between two readings of its [`ServerFigures`] taken `elapsed` apart;
/// `None` where either does not say or nothing was committed.
pub(crate) fn writer_between(
    before: Option<ServerFigures>,
    after: Option<ServerFigures>,
    elapsed: Duration,
) -> Option<WriterReport> {
    let (b, a) = (before?.writer?, after?.writer?);
    let passes = a.passes - b.passes;
    if passes < 1.0 {
        return None;
    }
    let pass_s = (a.pass_s - b.pass_s).max(0.0);
    let run_s = elapsed.as_secs_f64().max(1e-9);
    // A writer that committed passes has been on a core: a server whose counter stayed at
    // 0 does not know (no `schedstat` on its system), and says nothing of either share.
    let known = a.on_core_s.is_some_and(|on| on > 0.0);
    let share = |b: Option<f64>, a: Option<f64>| {
        known.then_some(())?;
        Some(round4(((a? - b?).max(0.0) / run_s).min(1.0)))
    };
    Some(WriterReport {
        passes: passes as u64,
        commands_per_pass: round1((a.commands - b.commands).max(0.0) / passes),
        pass_ms: round3(pass_s * 1e3 / passes),
        commit_ms: round3((a.commit_s - b.commit_s).max(0.0) * 1e3 / passes),
        busy: round3((pass_s / run_s).min(1.0)),
        on_core: share(b.on_core_s, a.on_core_s),
        waiting_for_core: share(b.core_wait_s, a.core_wait_s),
    })
}

/// The server's CPU time between two readings of its [`ServerFigures`], seconds; `None`
/// where either does not say.
pub(crate) fn cpu_between(
    before: Option<ServerFigures>,
    after: Option<ServerFigures>,
) -> Option<f64> {
    match (before?.cpu_s?, after?.cpu_s?) {
        (b, a) if a >= b => Some(a - b),
        _ => None,
    }
}

/// The server's [`ServerFigures`]; `None` if neither endpoint answers. `/metrics` is read
/// at `metrics` when given (a server with `--metrics-listen`), else at `base`.
///
/// `/metrics` first because it costs the server nothing: the operator's credentials are an
/// Argon2 verification (19 MiB for a moment), which would land in the very peak measured.
pub(crate) async fn server_figures(
    client: &HttpClient,
    base: &str,
    metrics: Option<&str>,
    operator: Option<&str>,
) -> Option<ServerFigures> {
    use base64::Engine as _;
    let get = |path: &str, basic: Option<String>| {
        let at = if path == "/metrics" {
            metrics.unwrap_or(base)
        } else {
            base
        };
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("{at}{path}"));
        if let Some(basic) = basic {
            req = req.header("authorization", format!("Basic {basic}"));
        }
        req.body(Full::new(Bytes::new())).ok()
    };
    if let Some(req) = get("/metrics", None)
        && let Ok((StatusCode::OK, body)) = exchange(client, req).await
    {
        let text = String::from_utf8_lossy(&body);
        let value = |series: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
        };
        let kib = |series: &str| value(series).map(|bytes| bytes as u64 / 1024);
        let rss = kib("mkoba_resident_memory_bytes");
        if rss.is_some() {
            let writer = (|| {
                Some(WriterTotals {
                    passes: value("mkoba_writer_pass_seconds_count")?,
                    pass_s: value("mkoba_writer_pass_seconds_sum")?,
                    commit_s: value("mkoba_writer_commit_seconds_sum")?,
                    commands: value("mkoba_writer_batch_commands_sum")?,
                    on_core_s: value("mkoba_writer_cpu_seconds_total"),
                    core_wait_s: value("mkoba_writer_core_wait_seconds_total"),
                })
            })();
            return Some(ServerFigures {
                rss_kb: rss,
                peak_kb: kib("mkoba_resident_memory_peak_bytes"),
                cpu_s: value("mkoba_cpu_seconds_total"),
                writer,
            });
        }
    }
    let basic = operator.map(|o| base64::engine::general_purpose::STANDARD.encode(o));
    let (status, body) = exchange(client, get("/_mkoba/health", basic)?).await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some(ServerFigures {
        rss_kb: v["rss_kb"].as_u64(),
        peak_kb: v["peak_rss_kb"].as_u64(),
        cpu_s: None,
        writer: None,
    })
}

fn kb_to_mib(kb: u64) -> f64 {
    round1(kb as f64 / 1024.0)
}

pub(crate) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Nearest-rank percentiles of microsecond samples, in milliseconds.
pub(crate) fn percentiles(us: &mut [u32]) -> Option<Percentiles> {
    if us.is_empty() {
        return None;
    }
    us.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len());
        f64::from(us[rank - 1]) / 1000.0
    };
    let sum: u64 = us.iter().map(|&v| u64::from(v)).sum();
    Some(Percentiles {
        samples: us.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        mean_ms: round3(sum as f64 / us.len() as f64 / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_with_completed_lifecycles() {
        let line = progress_text(1.5, 9_000, 10_000, 0, 20_000, 5_333.0);
        assert!(line.contains("[############------------]  50%"), "{line}");
        assert!(
            line.contains("accepted 9000/20000") && line.contains("5333/s"),
            "{line}"
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        let p = percentiles(&mut v).expect("samples");
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p90_ms, 90.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }

    #[test]
    fn payers_are_distinct_eight_digit_msisdns_and_wrap_round() {
        let million: std::collections::HashSet<String> =
            (0..1_000_000).map(|k| payer_msisdn(k, 1_000_000)).collect();
        assert_eq!(million.len(), 1_000_000);
        assert!(
            million
                .iter()
                .all(|m| m.len() == 12 && m.starts_with("2567"))
        );
        assert_eq!(payer_msisdn(10_000, 10_000), payer_msisdn(0, 10_000));
        assert_ne!(payer_msisdn(10_000, 20_000), payer_msisdn(0, 20_000));
    }
}
