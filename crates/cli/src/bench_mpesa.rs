//! `mkoba bench-mpesa`: M-Pesa C2B throughput against a running server, with a fresh
//! bearer per request (every request costs the server one RSA-4096 decryption) and with one
//! reused bearer (decrypted once, then answered from the bearer cache), next to the number
//! of RSA-4096 PKCS#1 v1.5 decryptions per second this machine can do.
//!
//! The client encrypts with the published public key like any SDK (cheap: the public
//! exponent is small), so the fresh-bearer figure measures the server's decryption cost.
//! Requests are synchronous C2B payments from distinct sandbox customers to short code
//! `000000` (the hot account), each answered once its transaction is final on the ledger.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mkoba_mpesa::PlatformKey;
use mkoba_sdk::mpesa::PublicKey;

use crate::bench::{
    HttpClient, Percentiles, cpu_between, exchange, percentiles, round1, round3, server_figures,
    writer_between,
};

/// Flags of `mkoba bench-mpesa`.
#[derive(Debug, Clone, clap::Args)]
pub struct MpesaBenchArgs {
    /// Base URL of a running server
    #[arg(long, env = "MKOBA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Where the server's `/metrics` is, when it has `--metrics-listen` [default: --url]
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// A subscription key of the developer whose M-Pesa application to use (default: the sandbox developer's, read from --data)
    #[arg(long, env = "MKOBA_BENCH_KEY", hide_env_values = true)]
    pub subscription_key: Option<String>,
    /// C2B payments per mode
    #[arg(long, short = 'n', default_value_t = 2_000)]
    pub requests: usize,
    /// concurrent in-flight requests
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// seconds spent measuring local RSA decryptions (0 skips it; at most an hour)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub rsa_secs: u64,
    /// print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// One C2B run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModeReport {
    /// `fresh-bearer` or `reused-bearer`.
    pub mode: String,
    pub requests: usize,
    pub ok: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub latency: Option<Percentiles>,
    /// The server's CPU time (user and system) during the run, seconds, from its
    /// `/metrics` (`mkoba_cpu_seconds_total`); null where that does not say.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` per payment answered, microseconds.
    pub server_cpu_us_per_payment: Option<f64>,
    /// What the server's writer did during the run (`mkoba bench`'s `writer`).
    pub writer: Option<crate::bench::WriterReport>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MpesaReport {
    /// RSA-4096 PKCS#1 v1.5 decryptions per second on one core.
    pub rsa_decrypts_per_second_one_core: Option<f64>,
    /// The same with every core busy.
    pub rsa_decrypts_per_second_all_cores: Option<f64>,
    pub cores: usize,
    pub modes: Vec<ModeReport>,
}

impl MpesaReport {
    /// What went wrong in the run, for its exit status (`None`: nothing).
    pub fn failures(&self) -> Option<String> {
        let errors: usize = self.modes.iter().map(|m| m.errors).sum();
        (errors > 0).then(|| format!("{errors} C2B payments failed"))
    }

    /// The report for a person.
    pub fn print_human(&self) {
        println!("M-Pesa C2B (synchronous, settled on the ledger before each answer)");
        if let (Some(one), Some(all)) = (
            self.rsa_decrypts_per_second_one_core,
            self.rsa_decrypts_per_second_all_cores,
        ) {
            println!(
                "  RSA-4096 decryptions/s on this machine: {one:.0} on one core, {all:.0} on {} cores",
                self.cores
            );
        }
        for m in &self.modes {
            let lat = m.latency.as_ref().map_or(String::new(), |l| {
                format!(
                    "  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                    l.p50_ms, l.p99_ms, l.max_ms
                )
            });
            let cpu = m.server_cpu_us_per_payment.map_or(String::new(), |us| {
                format!("  server CPU {us:.0} µs a payment")
            });
            println!(
                "  {:<14} {:>6} ok  {:>3} errors  {:>6.1} s  {:>8.0} payments/s{lat}{cpu}",
                m.mode, m.ok, m.errors, m.seconds, m.per_second
            );
            if let Some(w) = &m.writer {
                println!(
                    "  {:<14} writer: {:.1} commands a pass, {:.2} ms a pass (commit {:.2} ms), busy {:.0} %{}",
                    "",
                    w.commands_per_pass,
                    w.pass_ms,
                    w.commit_ms,
                    w.busy * 100.0,
                    w.core_shares()
                        .map(|shares| format!(" ({shares})"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

/// Decryptions per second of `key` over `secs` seconds on `threads` threads.
fn rsa_rate(key: &Arc<PlatformKey>, threads: usize, secs: u64) -> anyhow::Result<f64> {
    let block = key.encrypt_block(b"6bc4157dbee34d409118e0978dc6dd17")?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let count = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while Instant::now() < deadline {
                    let _ = key.decrypt_block(&block);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn get_json(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let (status, body) = exchange(client, req).await?;
    let v = serde_json::from_slice(&body)
        .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&body)))?;
    Ok((status, v))
}

/// Runs the benchmark. `key` is the server's private key when it is on this machine (for
/// the local RSA figure).
pub async fn run(
    args: MpesaBenchArgs,
    subscription_key: String,
    key: Option<Arc<PlatformKey>>,
) -> anyhow::Result<MpesaReport> {
    if args.requests == 0 {
        crate::usage!("--requests must be at least 1");
    }
    if args.concurrency == 0 {
        crate::usage!("--concurrency must be at least 1");
    }
    crate::bench::check_url(&args.url)?;
    crate::bench::check_metrics_url(args.metrics_url.as_deref())?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = args.url.trim_end_matches('/').to_owned();
    let req = Request::builder()
        .uri(format!("{base}/_mkoba/mpesa/application"))
        .header("Ocp-Apim-Subscription-Key", &subscription_key)
        .body(Full::new(Bytes::new()))?;
    let (status, app) = get_json(&client, req).await.with_context(|| {
        format!("reading the M-Pesa application at {base} (is the server running at --url?)")
    })?;
    if status != StatusCode::OK {
        bail!("reading the M-Pesa application: HTTP {status} {app}");
    }
    let api_key = app["api_key"]
        .as_str()
        .context("the application's API key was renewed; the benchmark needs the sandbox key")?
        .to_owned();
    let public = PublicKey::from_base64(app["public_key"].as_str().unwrap_or_default())?;
    let session = {
        let req = Request::builder()
            .uri(format!("{base}/sandbox/ipg/v2/vodacomTZN/getSession/"))
            .header(
                "Authorization",
                format!("Bearer {}", public.bearer(&api_key)?),
            )
            .header("Origin", "*")
            .body(Full::new(Bytes::new()))?;
        let (status, v) = get_json(&client, req).await?;
        if status != StatusCode::OK {
            bail!("getSession: HTTP {status} {v}");
        }
        v["output_SessionID"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (one, all) = match (&key, args.rsa_secs) {
        (Some(k), secs) if secs > 0 => {
            eprintln!("  measuring RSA-4096 decryptions for {secs} s on 1 and {cores} threads …");
            let k1 = k.clone();
            let one = tokio::task::spawn_blocking(move || rsa_rate(&k1, 1, secs)).await??;
            let k2 = k.clone();
            let all = tokio::task::spawn_blocking(move || rsa_rate(&k2, cores, secs)).await??;
            (Some(one), Some(all))
        }
        _ => (None, None),
    };

    let mut modes = Vec::new();
    for fresh in [true, false] {
        modes.push(run_mode(&client, &base, &public, &session, fresh, &args).await?);
    }
    Ok(MpesaReport {
        rsa_decrypts_per_second_one_core: one.map(|v| v.round()),
        rsa_decrypts_per_second_all_cores: all.map(|v| v.round()),
        cores,
        modes,
    })
}

async fn run_mode(
    client: &HttpClient,
    base: &str,
    public: &PublicKey,
    session: &str,
    fresh: bool,
    args: &MpesaBenchArgs,
) -> anyhow::Result<ModeReport> {
    let mode = if fresh {
        "fresh-bearer"
    } else {
        "reused-bearer"
    };
    let n = args.requests;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let reused = format!("Bearer {}", public.bearer(session)?);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/");
    let metrics = args.metrics_url.as_deref().map(crate::bench::metrics_base);
    let before = server_figures(client, base, metrics, None).await;
    // The figures of `/metrics` (its CPU series) came, not only the health endpoint's.
    if let Some(url) = metrics
        && before.as_ref().and_then(|f| f.cpu_s).is_none()
    {
        anyhow::bail!(
            "--metrics-url: nothing answered at {url}/metrics (the server's --metrics-listen address)"
        );
    }
    let started = Instant::now();
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!(
                    "  {mode:<14} {d:>6}/{n}  {:>6.1} s  {:>6}/s",
                    started.elapsed().as_secs_f64(),
                    d - last
                );
                let _ = std::io::stderr().flush();
                last = d;
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let client = client.clone();
        let (next, done, url, reused, run_id) = (
            next.clone(),
            done.clone(),
            url.clone(),
            reused.clone(),
            run_id.clone(),
        );
        let public = public.clone();
        let session = session.to_owned();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let auth = if fresh {
                    match public.bearer(&session) {
                        Ok(b) => format!("Bearer {b}"),
                        Err(_) => {
                            errors += 1;
                            continue;
                        }
                    }
                } else {
                    reused.clone()
                };
                let body = format!(
                    r#"{{"input_Amount":"1","input_Country":"TZN","input_Currency":"TZS","input_CustomerMSISDN":"2557{:08}","input_ServiceProviderCode":"000000","input_ThirdPartyConversationID":"{run_id}{i}","input_TransactionReference":"B{i}","input_PurchasedItemsDesc":"Bench"}}"#,
                    i % 100_000_000
                );
                let t = Instant::now();
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(&url)
                    .header("Authorization", auth)
                    .header("Origin", "*")
                    .header("Content-Type", "application/json")
                    .body(Full::new(Bytes::from(body)));
                let ok = match req {
                    Ok(req) => matches!(exchange(&client, req).await, Ok((s, _)) if s == StatusCode::CREATED),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    errors += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        latencies.extend(l);
        errors += e;
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let ok = latencies.len();
    let after = server_figures(client, base, metrics, None).await;
    let server_cpu = cpu_between(before, after);
    let writer = writer_between(before, after, started.elapsed());
    Ok(ModeReport {
        mode: mode.to_owned(),
        requests: n,
        ok,
        errors,
        seconds: (seconds * 100.0).round() / 100.0,
        per_second: (ok as f64 / seconds).round(),
        latency: percentiles(&mut latencies),
        server_cpu_s: server_cpu.map(round3),
        server_cpu_us_per_payment: server_cpu
            .filter(|_| ok > 0)
            .map(|c| round1(c * 1e6 / ok as f64)),
        writer,
    })
}
