//! The callback dispatcher: sends what the platform's outbox holds and records every attempt.
//!
//! Outbox rows are committed with the state change that caused them; the writer hands them
//! here after the commit (and again at start-up for rows not yet delivered). Each attempt —
//! status code, latency, error — is recorded through the platform, and the outbox row
//! becomes delivered, failed, or pending with the time of its next try. The default policy is
//! MTN's own: one attempt, no retry. A retry schedule is configurable. For a payment on a test
//! clock the retries are due on the clock's time: they go out as the partner advances it.
//!
//! Outbound HTTP is hostile by default: no redirects are followed, every attempt has a
//! timeout, and the target's addresses are checked before connecting — loopback is allowed
//! (this is a local emulator), private and link-local ranges only when configured. Every
//! address form is classified ([`classify`]: IPv4, IPv6, and IPv4 inside IPv6 — mapped,
//! compatible, NAT64, 6to4 — plus Teredo, documentation and benchmarking ranges), and a host
//! name is resolved once, by the connector's own resolver, which refuses the connection
//! unless every address is allowed: the connection goes to exactly the addresses checked,
//! so a name that answers differently on its next lookup (DNS rebinding) gains nothing.
//!
//! `https` targets are verified with rustls against Mozilla's root certificates
//! (`webpki-roots`, compiled in: no system store is read) plus any extra roots the
//! configuration adds (`--callback-ca-file`, for a partner's private CA or a test CA).

use foldhash::{HashMap, HashSet, HashSetExt};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::{
    CaptureConnection, Connected, Connection, HttpConnector, capture_connection,
};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mkoba_platform::Platform;
use mkoba_platform::lease::Lease;
use mkoba_platform::model::{CallbackAttempt, OutboxItem};
use mkoba_platform::outbox::{Next, Outbox, Sweeper};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Time allowed for one attempt, connect to last byte.
    pub timeout: Duration,
    /// Delays before the 2nd, 3rd, … attempt; empty means a single attempt.
    pub retry_schedule: Vec<Duration>,
    /// The `User-Agent` of callbacks (the real platform's is `LWAC Http Client 1.0`).
    pub user_agent: String,
    /// Allow callbacks to loopback addresses.
    pub allow_loopback: bool,
    /// Allow callbacks to private, link-local and other non-public addresses.
    pub allow_private: bool,
    /// Most callbacks in flight at once.
    pub concurrency: usize,
    /// How long a connection to a callback host is kept open unused. Idle connections are
    /// closed when it has passed, whether or not that host is called again. Under the
    /// idle time of common receivers (Node's 5 s), so that Mkoba closes a connection before
    /// its receiver does, and a request seldom goes out on one the receiver is closing.
    pub idle_timeout: Duration,
    /// Certificates trusted for `https` callbacks besides Mozilla's roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// How host names are resolved (the system's resolver unless a test supplies one).
    pub resolver: Resolver,
}

/// A lookup of a host name's addresses.
type Lookup = dyn Fn(&str) -> Vec<IpAddr> + Send + Sync;

/// A host-name lookup: the system's, or one a test supplies.
#[derive(Clone)]
pub struct Resolver(Option<Arc<Lookup>>, Arc<tokio::sync::Semaphore>);

/// The system's lookups (`getaddrinfo`, each on a blocking thread) running at once. A
/// lookup goes on after its attempt has timed out, so without a bound a slow name server
/// would fill the blocking pool that RSA and Argon2 share; past it a lookup waits its
/// turn, within its attempt's time.
const SYSTEM_LOOKUPS: usize = 8;

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver(None, Arc::new(tokio::sync::Semaphore::new(SYSTEM_LOOKUPS)))
    }
}

impl Resolver {
    /// A resolver answering with `lookup` (tests: answers that change between lookups).
    pub fn custom(lookup: impl Fn(&str) -> Vec<IpAddr> + Send + Sync + 'static) -> Resolver {
        Resolver(Some(Arc::new(lookup)), Resolver::default().1)
    }

    /// The host's addresses, looked up on a blocking thread, at most [`SYSTEM_LOOKUPS`] at
    /// once.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let turn = self
            .1
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let (custom, host) = (self.0.clone(), host.to_owned());
        tokio::task::spawn_blocking(move || {
            // Held until the lookup itself ends, however long its caller waits.
            let _turn = turn;
            match custom {
                Some(f) => Ok(f(&host)),
                None => std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 0))
                    .map(|addrs| addrs.map(|a| a.ip()).collect()),
            }
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Resolver(custom)"
        } else {
            "Resolver(system)"
        })
    }
}

impl Default for DispatcherConfig {
    fn default() -> DispatcherConfig {
        DispatcherConfig {
            timeout: Duration::from_secs(2),
            retry_schedule: Vec::new(),
            user_agent: "LWAC Http Client 1.0".to_owned(),
            allow_loopback: true,
            allow_private: false,
            concurrency: 256,
            idle_timeout: Duration::from_secs(4),
            extra_roots: Vec::new(),
            resolver: Resolver::default(),
        }
    }
}

type Http = Client<Stamping<HttpsConnector<HttpConnector<GuardedResolver>>>, Full<Bytes>>;

/// The dispatcher's HTTP clients: one keeping connections for reuse, and one that makes a
/// new connection for each request (for a callback sent again after a kept-alive
/// connection closed under it: another kept-alive one may be closing too).
#[derive(Clone)]
struct HttpClient {
    pooled: Http,
    fresh: Http,
}

/// When a connection was made, in its metadata: a request that fails on a connection made
/// before the request began went out on a kept-alive one.
#[derive(Clone, Copy)]
struct MadeAt(tokio::time::Instant);

/// The connector, stamping each connection it makes with [`MadeAt`].
#[derive(Clone)]
struct Stamping<C>(C);

impl<C> tower_service::Service<http::Uri> for Stamping<C>
where
    C: tower_service::Service<http::Uri>,
    C::Future: Send + 'static,
{
    type Response = Stamped<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Stamped {
                io,
                made_at: MadeAt(tokio::time::Instant::now()),
            })
        })
    }
}

/// A connection and when it was made.
struct Stamped<T> {
    io: T,
    made_at: MadeAt,
}

impl<T: Connection> Connection for Stamped<T> {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.made_at)
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Stamped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Whether the request whose connection `capture` saw went out on a connection made before
/// `began` (a kept-alive one), rather than on one made for it.
fn went_out_kept_alive(capture: &CaptureConnection, began: tokio::time::Instant) -> bool {
    let connected = capture.connection_metadata();
    let Some(connected) = connected.as_ref() else {
        return false;
    };
    let mut extras = http::Extensions::new();
    connected.get_extras(&mut extras);
    extras.get::<MadeAt>().is_some_and(|m| m.0 < began)
}

/// The connector's resolver: resolves a host name once and answers only if every address
/// is one the configuration allows, so the connection goes to the addresses checked.
#[derive(Clone)]
struct GuardedResolver {
    resolver: Resolver,
    allow_loopback: bool,
    allow_private: bool,
}

type Resolved =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolved;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolved {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str();
            let addrs = this.resolver.lookup(host).await?;
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!("{host} has no address")));
            }
            for ip in &addrs {
                if !permitted(*ip, this.allow_loopback, this.allow_private) {
                    return Err(std::io::Error::other(format!(
                        "callbacks to {ip} ({host}) are not allowed by the configuration"
                    )));
                }
            }
            Ok(addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

/// Reads the PEM certificates of `path` (for [`DispatcherConfig::extra_roots`]).
pub fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = path.display();
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the CA file {what}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA file {what} is not PEM certificates: {e}"))?;
    if roots.is_empty() {
        return Err(format!("the CA file {what} holds no certificate"));
    }
    Ok(roots)
}

/// The HTTP(S) client of the dispatcher: rustls (ring) with Mozilla's roots plus the
/// configured ones, HTTP/1.1, no redirects (hyper never follows them).
fn client(config: &DispatcherConfig) -> Result<HttpClient, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &config.extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| format!("an extra root certificate is unusable: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        resolver: config.resolver.clone(),
        allow_loopback: config.allow_loopback,
        allow_private: config.allow_private,
    });
    http.set_connect_timeout(Some(config.timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let connector = Stamping(connector);
    // Without a timer the pool checks a connection's idle time only when its host is called
    // again: connections to hosts never called again (a partner's old callback host, each
    // `mkoba bench` run's sink) stayed, 20 to 30 KB each, 853 after eight bench runs.
    Ok(HttpClient {
        pooled: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(connector.clone()),
        fresh: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector),
    })
}

/// Starts the dispatcher on the current Tokio runtime. It runs until the platform is gone.
///
/// It holds at most [`PlatformConfig::callbacks_in_memory`] callbacks at once for an
/// attempt now, and as many waiting for a retry ([`Places`]); past that it takes no more
/// from the outbox channel, which fills, and the rest wait in the database until a sweep
/// reads them ([`mkoba_platform::outbox`]). A row is never delivered twice at once: the ids held are
/// skipped by sweeps, and offered rows a sweep already covered are skipped too.
///
/// [`PlatformConfig::callbacks_in_memory`]: mkoba_platform::PlatformConfig
///
/// [`Stop::stop`] ends it gracefully: it takes no new row, attempts under way finish
/// (within [`DispatcherConfig::timeout`]) and are recorded, no retry is waited for, and the
/// task returns; what is still pending goes out after the next start.
pub fn spawn(platform: Platform, config: DispatcherConfig) -> (tokio::task::JoinHandle<()>, Stop) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stop = Stop(Arc::new(stop));
    let Some(outbox) = platform.take_outbox() else {
        return (tokio::spawn(async {}), stop);
    };
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the callback dispatcher cannot start");
            return (tokio::spawn(async {}), stop);
        }
    };
    let in_memory = platform.config().callbacks_in_memory.max(1);
    let held = Arc::new(Semaphore::new(in_memory));
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let hosts = Arc::new(Hosts::new(in_memory, config.concurrency.max(1)));
    let dispatcher = Dispatcher {
        sweeper: outbox.sweeper(),
        lease: outbox.lease(),
        platform,
        client,
        config: Arc::new(config),
        limit,
        held,
        waiting: Arc::new(Semaphore::new(in_memory)),
        hosts,
        parked: Arc::default(),
        host_recheck_ms: PARKED_HOST_RECHECK_MS,
        in_flight: HashSet::new(),
        finished: Arc::default(),
        covered: Vec::new(),
        deliveries: tokio::task::JoinSet::new(),
        stopping,
    };
    (tokio::spawn(dispatcher.run(outbox)), stop)
}

/// Ends a dispatcher gracefully ([`spawn`]).
#[derive(Debug, Clone)]
pub struct Stop(Arc<tokio::sync::watch::Sender<bool>>);

impl Stop {
    /// Tells the dispatcher to stop; its task returns once the attempts under way are over.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Stop::stop`] was called.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// Resolves once `stopping` says stop (or its sender is gone).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Rows read per sweep step.
const SWEEP_PAGE: usize = 256;

struct Dispatcher {
    platform: Platform,
    /// This node's lease on its callbacks, with several nodes: a row is sent only while it
    /// is fresh, and one held since an earlier generation is read again first.
    lease: Option<Lease>,
    client: HttpClient,
    config: Arc<DispatcherConfig>,
    /// Attempts in progress at once ([`DispatcherConfig::concurrency`]).
    limit: Arc<Semaphore>,
    /// Callbacks held at once for their next attempt now (a first attempt, or a retry that
    /// is due).
    held: Arc<Semaphore>,
    /// Callbacks held at once waiting for a retry: places apart from `held`, so that
    /// retries waiting never keep new callbacks out. Past them a retry waits in the
    /// database ([`Parked`]).
    waiting: Arc<Semaphore>,
    /// Each callback host's share of the places and of the attempts at once ([`Hosts`]).
    hosts: Arc<Hosts>,
    /// Pending rows left in the database for later: a retry not due yet when the places
    /// for waiting were all taken, or a callback of a host holding its share of the places.
    parked: Arc<Mutex<Option<Parked>>>,
    /// How long a callback of a host at its share waits before it is looked at again.
    host_recheck_ms: i64,
    /// Ids of the rows held now.
    in_flight: HashSet<i64>,
    /// Ids whose delivery ended (outcome committed), not yet taken out of `in_flight`.
    finished: Arc<Mutex<Vec<i64>>>,
    /// Id ranges sweeps have read (first, last): an offered row inside one was pending
    /// when the sweep read it (and is held since) or was final already. Rows are offered in
    /// id order, so a range is forgotten once an offered row is past it.
    covered: Vec<(i64, i64)>,
    sweeper: Sweeper,
    /// The deliveries under way, each on a task of its own; dropped (aborted) with the
    /// dispatcher.
    deliveries: tokio::task::JoinSet<()>,
    /// Turns true when the dispatcher is to stop ([`Stop`]).
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Dispatcher {
    async fn run(mut self, mut outbox: Outbox) {
        let stop = stopped(self.stopping.clone());
        tokio::pin!(stop);
        loop {
            let recheck = self.parked_due();
            let next = tokio::select! {
                next = outbox.next() => next,
                () = &mut stop => break,
                () = sleep_until_ms(&self.platform, recheck), if recheck.is_some() => {
                    let Some(parked) = self.parked.lock().unwrap_or_else(|e| e.into_inner()).take() else {
                        continue;
                    };
                    self.recheck(parked.from).await;
                    continue;
                }
            };
            match next {
                Next::Item { item, lease } => {
                    self.forget_finished();
                    let id = item.id;
                    self.covered.retain(|&(_, last)| last >= id);
                    let swept = self.covered.iter().any(|&(first, _)| first <= id);
                    if !swept && !self.in_flight.contains(&id) {
                        self.hold(item, lease).await;
                    }
                }
                Next::Sweep { from } => {
                    self.sweep(from).await;
                }
                Next::Closed => return,
            }
        }
        // Stopping: the attempts under way end and are recorded; the deliveries waiting
        // (for a retry, a turn) return at once.
        while self.deliveries.join_next().await.is_some() {}
    }

    /// Reads this node's pending rows with ids from `from` on from the database, page by
    /// page, and takes those not held already. A row whose delivery ended before a page is
    /// read is final in that page's read (its outcome was committed first), so it is not
    /// taken again.
    async fn sweep(&mut self, from: i64) -> usize {
        let mut after = from - 1;
        let mut held = 0;
        loop {
            self.forget_finished();
            // Rows read while the lease is fresh are this node's in its generation.
            let generation = match &self.lease {
                None => 0,
                Some(lease) => tokio::select! {
                    biased;
                    () = stopped(self.stopping.clone()) => return held,
                    generation = lease.fresh() => generation,
                },
            };
            let page = match self
                .platform
                .payments()
                .pending_callbacks(after, SWEEP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(_) => {
                    // The store failed; try again a little later.
                    let (sweeper, from) = (self.sweeper.clone(), after + 1);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        sweeper.sweep_from(from);
                    });
                    return held;
                }
            };
            let Some(last) = page.last().map(|i| i.id) else {
                return held;
            };
            // One range per sweep (nothing else runs in between), grown page by page.
            match self.covered.last_mut() {
                Some(range) if after >= from => range.1 = last,
                _ => self.covered.push((from, last)),
            }
            after = last;
            // A retry not due yet is left where it is, to be read again when it is (a
            // payment on a test clock is due on the clock's time: held, as it waits on it).
            let now = self.platform.now_ms();
            let clocks = self.platform.clocks().any();
            for item in page {
                if self.in_flight.contains(&item.id) {
                    continue;
                }
                if item.attempts > 0 && item.next_attempt_at_ms > now && !clocks {
                    park(&self.parked, item.id, item.next_attempt_at_ms);
                    continue;
                }
                if self.hold(item, generation).await {
                    self.platform.metrics().callbacks_swept.inc();
                    held += 1;
                }
            }
        }
    }

    fn forget_finished(&mut self) {
        while self.deliveries.try_join_next().is_some() {}
        let done = std::mem::take(&mut *self.finished.lock().unwrap_or_else(|e| e.into_inner()));
        for id in done {
            self.in_flight.remove(&id);
        }
    }

    /// Takes a row, known to be this node's in lease generation `generation`, once a place
    /// is free, and delivers it on its own task.
    async fn hold(&mut self, item: OutboxItem, generation: u64) -> bool {
        let host = host_key(&item.url);
        // A host holding its share of the places waits in the database: its callbacks
        // must not keep everyone else's out.
        let Some(share) = self.hosts.take_place(&host) else {
            park(
                &self.parked,
                item.id,
                self.platform.now_ms() + self.host_recheck_ms,
            );
            return false;
        };
        let Ok(place) = self.held.clone().acquire_owned().await else {
            return false;
        };
        self.in_flight.insert(item.id);
        let lease = self.lease.clone().map(|lease| (lease, generation));
        let places = Places {
            now: Some((place, share)),
            retry: None,
            waiting: self.waiting.clone(),
            parked: self.parked.clone(),
        };
        let (platform, client, config, limit, hosts, finished, sweeper, stopping) = (
            self.platform.clone(),
            self.client.clone(),
            self.config.clone(),
            self.limit.clone(),
            self.hosts.clone(),
            self.finished.clone(),
            self.sweeper.clone(),
            self.stopping.clone(),
        );
        // In the dispatcher's set: stopping the dispatcher stops its deliveries.
        self.deliveries.spawn(async move {
            let id = item.id;
            let turns = Turns {
                all: &limit,
                hosts: &hosts,
                host: &host,
            };
            if !deliver(
                &platform, &client, &config, turns, places, item, lease, stopping,
            )
            .await
            {
                // The outcome was not recorded: the row is still pending; read it again.
                sweeper.sweep_from(id);
            }
            finished.lock().unwrap_or_else(|e| e.into_inner()).push(id);
        });
        true
    }

    /// Reads the rows left in the database again, from `from`. While that takes some (a
    /// busy host's places come free), the next look is soon; while it takes none (a host
    /// that never answers), each waits twice as long as the one before, up to 2 s, so
    /// that a large backlog is not read over and over.
    async fn recheck(&mut self, from: i64) {
        let held = self.sweep(from).await;
        self.host_recheck_ms = if held > 0 {
            PARKED_HOST_RECHECK_MS
        } else {
            (self.host_recheck_ms * 2).min(PARKED_HOST_RECHECK_MAX_MS)
        };
    }

    /// When the rows left in the database are to be read again.
    fn parked_due(&self) -> Option<i64> {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.due_ms)
    }
}

/// The places and turns that keep one receiver from holding up the others' callbacks:
///
/// - a callback's first attempt holds one of the places for callbacks due now (at most
///   [`PlatformConfig::callbacks_in_memory`](mkoba_platform::PlatformConfig)), and at most
///   half of them go to one host ([`Hosts`]); past its share a host's callbacks wait in
///   the database ([`Parked`]);
/// - a callback waiting for a retry moves to a place of another pool of the same size, so
///   retries waiting never keep new callbacks out; past it the retry waits in the database
///   until it is due;
/// - an attempt holds one of [`DispatcherConfig::concurrency`] turns, and at most half of
///   them go to one host, so a receiver that never answers slows only its own callbacks.
struct Places {
    /// The place for an attempt due now, with the host's share of it.
    now: Option<(tokio::sync::OwnedSemaphorePermit, HostPlace)>,
    /// The place of a callback waiting for a retry.
    retry: Option<tokio::sync::OwnedSemaphorePermit>,
    waiting: Arc<Semaphore>,
    parked: Arc<Mutex<Option<Parked>>>,
}

impl Places {
    /// Moves the callback to a place for waiting; `false` when there is none free (it is
    /// then to wait in the database).
    fn wait_for_retry(&mut self) -> bool {
        if self.retry.is_some() {
            return true;
        }
        match self.waiting.clone().try_acquire_owned() {
            Ok(place) => {
                self.retry = Some(place);
                self.now = None;
                true
            }
            Err(_) => false,
        }
    }
}

/// The turns an attempt takes: one of all, and one of its host's.
struct Turns<'a> {
    all: &'a Semaphore,
    hosts: &'a Arc<Hosts>,
    host: &'a Arc<str>,
}

/// Delivers one callback, retrying on the schedule; `false` when an outcome could not be
/// recorded. A turn is held only during an attempt, never while waiting for the next one,
/// and places and turns are shared out by host ([`Places`]), so a slow or failing receiver
/// holds up nobody else's callbacks.
///
/// With several nodes, `lease` is this node's and the generation the row is known to be
/// this node's in: each attempt waits for the lease to be fresh, and a row held since an
/// earlier generation is read again, and dropped when another node took it over
/// ([`mkoba_platform::lease`]).
#[allow(clippy::too_many_arguments)]
async fn deliver(
    platform: &Platform,
    client: &HttpClient,
    config: &DispatcherConfig,
    turns: Turns<'_>,
    mut places: Places,
    mut item: OutboxItem,
    mut lease: Option<(Lease, u64)>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> bool {
    // A stop ends the waits (the row stays pending for the next start), not an attempt.
    let stop = stopped(stopping);
    tokio::pin!(stop);
    let mut clocked = clock_of(platform, &item).await;
    // The time of the payment's API user: its test clock's, if it has one.
    let now = |clocked: Option<Uuid>| {
        clocked.map_or_else(|| platform.now_ms(), |u| platform.clocks().now_for(&u))
    };
    loop {
        // A first attempt goes out now; retries are due on the API user's time.
        let on_clock = clocked.as_ref().filter(|_| item.attempts > 0);
        tokio::select! {
            biased;
            () = &mut stop => return true,
            () = platform.clocks().wait_until(on_clock, item.next_attempt_at_ms) => {}
        }
        // A deleted clock has returned its API user to real time.
        clocked = clocked.filter(|u| platform.clocks().of(u).is_some());
        let host_turn = tokio::select! {
            biased;
            () = &mut stop => return true,
            turn = turns.hosts.turn(turns.host) => turn,
        };
        let Some(host_turn) = host_turn else {
            return true;
        };
        let turn = tokio::select! {
            biased;
            () = &mut stop => return true,
            turn = turns.all.acquire() => turn,
        };
        let Ok(turn) = turn else {
            return true;
        };
        if let Some((lease, known)) = &mut lease {
            let generation = tokio::select! {
                biased;
                () = &mut stop => return true,
                generation = lease.fresh() => generation,
            };
            if generation != *known {
                drop(turn);
                drop(host_turn);
                // Read while the lease is fresh in `generation`: what it says holds until
                // the lease lapses again.
                match platform.payments().pending_callback(item.id).await {
                    Ok(Some(row)) => {
                        (item, *known) = (row, generation);
                        continue;
                    }
                    Ok(None) => {
                        tracing::warn!(
                            transfer.reference_id = %item.reference_id,
                            "not sending a callback: another node took it over while this node's heartbeat lapsed, or it is final"
                        );
                        return true;
                    }
                    Err(_) => return false,
                }
            }
        }
        // On a test clock a retry is made at the time it was due, however far the clock was
        // advanced past it, and its own retry counts from there: a schedule that fits in
        // one advance is walked through in that advance (one attempt per advance before).
        let at_ms = match clocked {
            Some(_) if item.attempts > 0 => item.next_attempt_at_ms.min(now(clocked)),
            _ => now(clocked),
        };
        let started = Instant::now();
        // Boxed: the client's request future is most of a delivery's size, and a delivery
        // is moved whole into its task when spawned and written over when it ends.
        let result = Box::pin(attempt(client, config, &item)).await;
        let timed_out = matches!(&result, Err(e) if e.starts_with(NO_ANSWER));
        host_turn.answered(!timed_out);
        drop(turn);
        drop(host_turn);
        let latency_ms = started.elapsed().as_millis() as i64;
        item.attempts += 1;
        // `error`: why no answer came, or what an answer that refused the callback said.
        let (status_code, error) = match result {
            Ok((code, answer)) => (Some(code), answer),
            Err(e) => (None, Some(e)),
        };
        let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
        platform.metrics().callback(
            match (delivered, status_code) {
                (true, _) => "delivered",
                (false, Some(_)) => "refused",
                (false, None) => "error",
            },
            item.attempts,
        );
        let retry_at_ms = if delivered {
            None
        } else {
            config
                .retry_schedule
                .get(item.attempts as usize - 1)
                .map(|d| match clocked {
                    Some(_) => at_ms + d.as_millis() as i64,
                    None => now(clocked) + d.as_millis() as i64,
                })
        };
        // Why no answer came; not what an answer said (a partner's text, kept with the
        // attempt for its developer, is not for the operator's log).
        let no_answer = if status_code.is_none() {
            error.as_deref().unwrap_or("")
        } else {
            ""
        };
        if delivered {
            tracing::debug!(transfer.reference_id = %item.reference_id, status = status_code, latency_ms, "callback delivered");
        } else if let Some(unlogged) = FAILURE_LOG.turn() {
            // Every attempt is recorded with the payment; the log gets at most one line a
            // second, so a receiver failing thousands of callbacks cannot fill the disk.
            tracing::info!(
                transfer.reference_id = %item.reference_id,
                status = status_code,
                error = no_answer,
                attempt = item.attempts,
                retry = retry_at_ms.is_some(),
                unlogged,
                "callback not delivered: no answer, a refusal by the partner, or a target the configuration does not allow (unlogged: other attempts not delivered since the last such line)"
            );
        } else {
            tracing::debug!(transfer.reference_id = %item.reference_id, status = status_code, error = no_answer, attempt = item.attempts, "callback not delivered");
        }
        let attempt = CallbackAttempt {
            outbox_id: item.id,
            reference_id: item.reference_id,
            attempt: item.attempts,
            at_ms,
            url: item.url.clone(),
            method: item.method,
            status_code,
            latency_ms,
            error,
            retry_at_ms,
        };
        // The attempt was made: record it, however long the store takes to accept writes
        // again (a full disk), holding the row meanwhile. Dropping it to be read back would
        // send the callback again on every failed commit.
        let mut wait = RECORD_RETRY_FIRST;
        let mut warned = false;
        while !platform.payments().record_attempt(attempt.clone()).await {
            if !std::mem::replace(&mut warned, true) {
                tracing::warn!(transfer.reference_id = %item.reference_id, "the callback attempt could not be recorded; trying again, without sending it again");
            }
            tokio::select! {
                biased;
                // Stopping: the row stays pending; the next start sends it again.
                () = &mut stop => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RECORD_RETRY_MAX);
        }
        match retry_at_ms {
            // On a test clock the retry is due on the clock's time, which only the held
            // callback watches: it keeps its place.
            Some(at) if clocked.is_some() || places.wait_for_retry() => {
                item.next_attempt_at_ms = at;
            }
            Some(at) => {
                // Recorded as pending until `at`: read again from the database then.
                park(&places.parked, item.id, at);
                return true;
            }
            None => return true,
        }
    }
}

/// At most one log line a second for callbacks not accepted, counting the others.
static FAILURE_LOG: mkoba_platform::throttle::LogGate = mkoba_platform::throttle::LogGate::new();

/// Pending rows left in the database to be read again: from the lowest id, once the
/// earliest of them is due.
#[derive(Debug, Clone, Copy)]
struct Parked {
    from: i64,
    due_ms: i64,
}

/// How long a callback of a host holding its share of the places waits in the database
/// before it is looked at again: at first, and at most ([`Dispatcher::recheck`]).
const PARKED_HOST_RECHECK_MS: i64 = 20;
const PARKED_HOST_RECHECK_MAX_MS: i64 = 2_000;

/// Leaves pending row `id` in the database, to be read again at `due_ms`.
fn park(parked: &Mutex<Option<Parked>>, id: i64, due_ms: i64) {
    let mut parked = parked.lock().unwrap_or_else(|e| e.into_inner());
    *parked = Some(match *parked {
        None => Parked { from: id, due_ms },
        Some(p) => Parked {
            from: p.from.min(id),
            due_ms: p.due_ms.min(due_ms),
        },
    });
}

/// Sleeps until `at_ms` on the platform's time (at once when it has passed).
async fn sleep_until_ms(platform: &Platform, at_ms: Option<i64>) {
    let wait = at_ms.map_or(0, |at| at - platform.now_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

/// A callback URL's host and port, as its places and turns are shared out by (without any
/// user name in the URL, which would make one host many). Read from the text, as the URL
/// was checked when its payment was accepted: parsed as a URI, it was a tenth of a
/// callback's work in the dispatcher.
fn host_key(url: &str) -> Arc<str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_ascii_lowercase().into()
}

/// Each callback host's use of the places and the turns ([`Places`]).
struct Hosts {
    places_each: usize,
    turns_each: usize,
    map: Mutex<HashMap<Arc<str>, HostUse>>,
}

struct HostUse {
    places: usize,
    turns: Arc<Semaphore>,
    /// No attempt answered yet, or its last one got no answer in time: its attempts also
    /// take one of [`SLOW_HOST_TURNS`] turns, until one is answered. Half of all turns for
    /// any one host let two hanging receivers hold every turn, and every other partner's
    /// callbacks waited for their timeouts; a host now earns its half by answering (in
    /// milliseconds, for a receiver that works).
    slow: Arc<std::sync::atomic::AtomicBool>,
    slow_turns: Arc<Semaphore>,
}

/// At most this many attempts at once to a host whose last attempt got no answer in time.
const SLOW_HOST_TURNS: usize = 4;

impl Hosts {
    /// Half of `in_memory` places and of `concurrency` turns for any one host.
    fn new(in_memory: usize, concurrency: usize) -> Hosts {
        Hosts {
            places_each: (in_memory / 2).max(1),
            turns_each: (concurrency / 2).max(1),
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, HostUse>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry<'m>(
        &self,
        map: &'m mut HashMap<Arc<str>, HostUse>,
        host: &Arc<str>,
    ) -> &'m mut HostUse {
        map.entry(host.clone()).or_insert_with(|| HostUse {
            places: 0,
            turns: Arc::new(Semaphore::new(self.turns_each)),
            slow: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            slow_turns: Arc::new(Semaphore::new(SLOW_HOST_TURNS.min(self.turns_each))),
        })
    }

    /// One of the host's places, unless it holds its share already.
    fn take_place(self: &Arc<Self>, host: &Arc<str>) -> Option<HostPlace> {
        let mut map = self.lock();
        let used = self.entry(&mut map, host);
        if used.places >= self.places_each {
            return None;
        }
        used.places += 1;
        Some(HostPlace {
            hosts: self.clone(),
            host: host.clone(),
        })
    }

    /// Waits for one of the host's turns (`None` only if its semaphore was closed): one of
    /// its slow turns first while it is slow.
    async fn turn(self: &Arc<Self>, host: &Arc<str>) -> Option<HostTurn> {
        let (turns, flag, slow) = {
            let mut map = self.lock();
            let used = self.entry(&mut map, host);
            let slow = used.slow.load(std::sync::atomic::Ordering::Relaxed);
            (
                used.turns.clone(),
                used.slow.clone(),
                slow.then(|| used.slow_turns.clone()),
            )
        };
        let slow = match slow {
            Some(s) => Some(s.acquire_owned().await.ok()?),
            None => None,
        };
        let permit = turns.acquire_owned().await.ok()?;
        Some(HostTurn {
            hosts: self.clone(),
            host: host.clone(),
            permit: Some(permit),
            slow,
            flag,
        })
    }

    /// Forgets a host nothing holds a place or a turn of.
    fn forget_if_unused(&self, host: &str) {
        let mut map = self.lock();
        if map.get(host).is_some_and(|u| {
            u.places == 0
                && Arc::strong_count(&u.turns) == 1
                && Arc::strong_count(&u.slow_turns) == 1
        }) {
            map.remove(host);
        }
    }
}

/// A host's place, given back when dropped.
struct HostPlace {
    hosts: Arc<Hosts>,
    host: Arc<str>,
}

impl Drop for HostPlace {
    fn drop(&mut self) {
        if let Some(used) = self.hosts.lock().get_mut(&self.host) {
            used.places = used.places.saturating_sub(1);
        }
        self.hosts.forget_if_unused(&self.host);
    }
}

/// A host's turn, given back when dropped.
struct HostTurn {
    hosts: Arc<Hosts>,
    host: Arc<str>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    slow: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The host's [`HostUse::slow`], set without the map's lock.
    flag: Arc<std::sync::atomic::AtomicBool>,
}

impl HostTurn {
    /// What the attempt showed of its host: `answered` (any HTTP answer, or a quick
    /// failure), or no answer in time.
    fn answered(&self, answered: bool) {
        self.flag
            .store(!answered, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for HostTurn {
    fn drop(&mut self) {
        drop(self.permit.take());
        drop(self.slow.take());
        self.hosts.forget_if_unused(&self.host);
    }
}

/// The API user whose test clock a callback's payment runs on, if it has one: its retries
/// are then spread over the clock's time, and go out as the clock is advanced.
async fn clock_of(platform: &Platform, item: &OutboxItem) -> Option<Uuid> {
    if !platform.clocks().any() {
        return None;
    }
    let payment = platform
        .payments()
        .get(&item.reference_id)
        .await
        .ok()
        .flatten()?;
    platform
        .clocks()
        .of(&payment.api_user)
        .map(|_| payment.api_user)
}

/// How long a delivery waits before recording its attempt again when the store refused it,
/// doubling up to [`RECORD_RETRY_MAX`].
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// The most of a callback answer's body read: its status is what counts.
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// How much of the body of an answer that refused a callback (not 2xx) is kept with the
/// attempt, and how many characters of it are shown ([`answer_excerpt`]): the start of a
/// receiver's error message, which is what its developer looks for when callbacks fail.
const ANSWER_KEPT: usize = 1024;
const ANSWER_SHOWN: usize = 300;

/// One attempt: the answer's status, with the start of its body when it refused the
/// callback ([`answer_excerpt`]); `Err` with why there was no answer.
async fn attempt(
    client: &HttpClient,
    config: &DispatcherConfig,
    item: &OutboxItem,
) -> Result<(u16, Option<String>), String> {
    let uri: http::Uri = item
        .url
        .parse()
        .map_err(|e| format!("invalid callback URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("callback URL must be http or https".to_owned());
    }
    let host = uri.host().ok_or("callback URL has no host")?.to_owned();
    check_target(&host, config)?;
    let (uri, basic) = without_userinfo(uri)?;
    let body = Bytes::from(item.body.clone());
    let request = || {
        let mut builder = http::Request::builder()
            .method(item.method.as_str())
            .uri(uri.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header(http::header::USER_AGENT, config.user_agent.as_str());
        if let Some(basic) = &basic {
            builder = builder.header(http::header::AUTHORIZATION, basic);
        }
        builder
            .body(Full::new(body.clone()))
            .map_err(|e| format!("cannot build the request: {e}"))
    };
    // The answer's status once its head is in (0: not yet). A 2xx whose body then trickles
    // past the time limit was delivered: it counted as no answer, and went out again.
    let head = std::sync::atomic::AtomicU16::new(0);
    let exchange = async {
        let began = tokio::time::Instant::now();
        let mut first = request()?;
        let capture = capture_connection(&mut first);
        let response = match client.pooled.request(first).await {
            // A kept-alive connection closed before any answer: most likely one the receiver
            // closed as idle just as this request went out on it (Node closes idle
            // connections after 5 s), which it never read. Once more, on a new connection
            // (another kept-alive one may be closing as well). A connection made for the
            // request and closed unanswered is the receiver's answer: the attempt failed.
            Err(e) if closed_before_answer(&e) && went_out_kept_alive(&capture, began) => {
                client.fresh.request(request()?).await
            }
            other => other,
        }
        .map_err(|e| {
            let chain = error_chain(&e);
            // What the partner's developer reads in the portal: say what to do.
            if chain.contains("invalid peer certificate") {
                format!(
                    "{chain} (the receiver's certificate is not trusted: the server trusts Mozilla's roots and the CAs --callback-ca-file names)"
                )
            } else {
                chain
            }
        })?;
        let status = response.status().as_u16();
        head.store(status, std::sync::atomic::Ordering::Relaxed);
        let refused = !response.status().is_success();
        // Read the body so that the connection can be reused, keeping the start of a
        // refusal's; an answer longer than a partner's acknowledgement needs is not read
        // on, and its connection is dropped, so no receiver can keep an attempt busy or
        // fill memory.
        let mut body = response.into_body();
        let (mut read, mut kept) = (0, Vec::new());
        while read <= MAX_ANSWER_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    let data = frame.data_ref().map_or(&[][..], |d| &d[..]);
                    if refused && kept.len() < ANSWER_KEPT {
                        let room = ANSWER_KEPT - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    read += data.len();
                }
                _ => break,
            }
        }
        let answer = answer_excerpt(&kept, read > kept.len());
        Ok::<_, String>((status, answer))
    };
    let deadline = tokio::time::Instant::now() + config.timeout;
    tokio::pin!(exchange);
    let answer = match tokio::time::timeout_at(deadline, &mut exchange).await {
        Ok(r) => return r,
        // Woken long after the deadline: this process was not running (stopped, a paused
        // VM), and the answer may be waiting in the socket. Read it before calling the
        // attempt timed out, which would send a delivered callback again.
        Err(_) if deadline.elapsed() > STALL => {
            tokio::time::timeout(STALL_GRACE, &mut exchange).await
        }
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|_| match head.load(std::sync::atomic::Ordering::Relaxed) {
        // Answered, and its body not read to the end in time: the status is what counts
        // (the connection is dropped, not reused).
        0 => Err(format!(
            "{NO_ANSWER} within {} ms",
            config.timeout.as_millis()
        )),
        status => Ok((status, None)),
    })
}

/// The start of an attempt's error when no answer came in time.
const NO_ANSWER: &str = "no answer";

/// What is kept of the body of an answer that refused a callback: the start of its text
/// (bytes that are not UTF-8 replaced, control and bidirectional formatting characters as
/// spaces, runs of white space as one), at most [`ANSWER_SHOWN`] characters, with `…`
/// where it was cut (`more`: the body went on past `body`); `None` for a body with
/// nothing to show.
fn answer_excerpt(body: &[u8], more: bool) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    // A character cut in two where the kept part ends is not the receiver's.
    let text = if more {
        text.trim_end_matches('\u{fffd}')
    } else {
        &text
    };
    // Control characters, and those that reorder the text after them (U+202E), are breaks
    // between words: the answer is shown in pages and JSON as plain text.
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || mkoba_platform::portal::hides_text(c))
        .filter(|w| !w.is_empty())
        .collect();
    let text = words.join(" ");
    if text.is_empty() {
        return None;
    }
    let mut shown: String = text.chars().take(ANSWER_SHOWN).collect();
    if more || shown.len() < text.len() {
        shown.push('…');
    }
    Some(shown)
}

/// A callback URL's user name and password (`http://user:pass@host/…`, percent-encoded as
/// in any URL) go out as HTTP Basic authentication, as curl and browsers send them, and
/// the URI the client is given has none: its connection pool names connections by the
/// URI's authority, and its trace lines print that name (a password in the log).
fn without_userinfo(uri: http::Uri) -> Result<(http::Uri, Option<http::HeaderValue>), String> {
    use base64::Engine as _;
    let Some((userinfo, host)) = uri
        .authority()
        .and_then(|a| a.as_str().rsplit_once('@'))
        .map(|(u, h)| (u.to_owned(), h.to_owned()))
    else {
        return Ok((uri, None));
    };
    let mut credentials: Vec<u8> = percent_encoding::percent_decode_str(&userinfo).collect();
    if !userinfo.contains(':') {
        credentials.push(b':');
    }
    let mut basic = http::HeaderValue::try_from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    ))
    .map_err(|_| "invalid callback URL: its user name or password".to_owned())?;
    basic.set_sensitive(true);
    let mut parts = uri.into_parts();
    parts.authority = Some(
        host.parse()
            .map_err(|_| "invalid callback URL: its host".to_owned())?,
    );
    let uri =
        http::Uri::from_parts(parts).map_err(|_| "invalid callback URL: its host".to_owned())?;
    Ok((uri, Some(basic)))
}

/// How late past an attempt's deadline its timer may fire before the lateness counts as
/// this process having been stopped rather than the receiver being slow.
const STALL: Duration = Duration::from_millis(500);
/// How long an attempt whose timer fired that late still waits for its answer.
const STALL_GRACE: Duration = Duration::from_millis(500);

/// Whether a request failed because its connection closed (or was reset) before any answer
/// came, after it was sent.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || s.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                )
            })
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Refuses an IP-literal target outside what the configuration allows (a host name is
/// checked by the connector's resolver, on the one lookup the connection uses).
fn check_target(host: &str, config: &DispatcherConfig) -> Result<(), String> {
    check_target_with(host, config.allow_loopback, config.allow_private)
}

/// [`check_target`] with the two settings it reads: for a URL given ahead of its callbacks
/// (an M-Pesa result URL), refused when it is set rather than on every delivery.
pub fn check_target_with(
    host: &str,
    allow_loopback: bool,
    allow_private: bool,
) -> Result<(), String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    // `localhost` and the names under it are loopback whatever a resolver says (RFC 6761):
    // judged now, as `127.0.0.1` is, not only once a delivery resolves them.
    let local = host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.eq_ignore_ascii_case("localhost"));
    if local && !allow_loopback {
        return Err(format!(
            "callbacks to {host} (loopback) are not allowed by the configuration"
        ));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if !permitted(ip, allow_loopback, allow_private) => Err(format!(
            "callbacks to {ip} are not allowed by the configuration"
        )),
        Ok(_) => Ok(()),
        // `10.1`, `167772161`, `0x0a000001`, `012.0.0.1`: no name (a top-level label is
        // never all digits), and resolvers read each as some IPv4 address, which the rule
        // above could not judge.
        Err(_) if numeric_ipv4_form(host) => Err(format!(
            "{host} is an IPv4 address in a form resolvers read differently: write it as four decimal numbers (a.b.c.d)"
        )),
        Err(_) => Ok(()),
    }
}

/// Whether a host that is no IP address as written is one of the other IPv4 spellings
/// `inet_aton` takes: its last label all digits, or hexadecimal with `0x`.
fn numeric_ipv4_form(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// What an address is to the callback policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// This machine (`127.0.0.0/8`, `::1`, and IPv4 loopback inside IPv6).
    Loopback,
    /// Private, link-local, shared, multicast, reserved, documentation, benchmarking,
    /// unspecified and the IPv6 transition forms that hide where a packet goes (Teredo).
    NonPublic,
    Public,
}

/// Classifies an address, looking through the IPv6 forms that carry an IPv4 address
/// (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if a == 127 {
        return AddressClass::Loopback;
    }
    let non_public = a == 0                                 // "this network", 0.0.0.0
        || a == 10
        || (a == 100 && (b & 0xc0) == 64)                   // shared (CGNAT) 100.64/10
        || (a == 169 && b == 254)                           // link-local
        || (a == 172 && (b & 0xf0) == 16)
        || (a == 192 && b == 0 && c == 0)                   // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                   // TEST-NET-1
        || (a == 192 && b == 168)
        || (a == 198 && (b & 0xfe) == 18)                   // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100)                // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)                 // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    if non_public {
        AddressClass::NonPublic
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip == Ipv6Addr::LOCALHOST {
        return AddressClass::Loopback;
    }
    if ip.is_unspecified() {
        return AddressClass::NonPublic;
    }
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated, never public).
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0; 6] {
        return match classify_v4(embedded(s[6], s[7])) {
            AddressClass::Loopback => AddressClass::Loopback,
            _ => AddressClass::NonPublic,
        };
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the IPv4 address it carries; the
    // local-use prefix 64:ff9b:1::/48 is private.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return AddressClass::NonPublic;
    }
    // 6to4 2002:a.b.c.d::/48 reaches the IPv4 address in bits 16–48.
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    let non_public = (s[0] & 0xff00) == 0xff00              // multicast
        || (s[0] & 0xfe00) == 0xfc00                        // unique local
        || (s[0] & 0xffc0) == 0xfe80                        // link-local
        || (s[0] & 0xffc0) == 0xfec0                        // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0)                    // Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0xdb8)                // documentation
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)       // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x10)      // ORCHID 2001:10::/28
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x20)      // ORCHIDv2 2001:20::/28
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]); // discard-only 100::/64
    if non_public {
        AddressClass::NonPublic
    } else {
        AddressClass::Public
    }
}

/// Whether the configuration lets callbacks reach `ip`.
fn permitted(ip: IpAddr, allow_loopback: bool, allow_private: bool) -> bool {
    match classify(ip) {
        AddressClass::Loopback => allow_loopback,
        AddressClass::NonPublic => allow_private,
        AddressClass::Public => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_urls_userinfo_becomes_basic_authentication() {
        let (uri, basic) = without_userinfo("http://shop.example/cb?x=1".parse().unwrap()).unwrap();
        assert_eq!(uri, "http://shop.example/cb?x=1");
        assert!(basic.is_none());
        // A user name alone has an empty password, as curl sends it.
        let (uri, basic) = without_userinfo("https://u@[::1]:9/x".parse().unwrap()).unwrap();
        assert_eq!(uri, "https://[::1]:9/x");
        assert_eq!(basic.unwrap(), "Basic dTo=");
        let (uri, basic) = without_userinfo("http://a%20b:c@h.io:80/".parse().unwrap()).unwrap();
        assert_eq!(uri, "http://h.io:80/");
        let basic = basic.unwrap();
        assert!(basic.is_sensitive());
        assert_eq!(basic, "Basic YSBiOmM=");
    }

    /// What is kept of a refusal's body is text a page can show: bounded, on one line.
    #[test]
    fn a_refusals_answer_is_kept_as_one_bounded_line() {
        assert_eq!(
            answer_excerpt(b"{\"error\":\n\t\"db down\"}\r\n", false).as_deref(),
            Some(r#"{"error": "db down"}"#)
        );
        assert_eq!(answer_excerpt(b"", false), None);
        assert_eq!(answer_excerpt(b" \r\n\0 ", true), None);
        let long = "x".repeat(ANSWER_KEPT);
        let shown = answer_excerpt(long.as_bytes(), true).unwrap();
        assert_eq!(shown.chars().count(), ANSWER_SHOWN + 1);
        assert!(shown.ends_with('…'));
        // Cut inside a character where the kept part ends: no replacement character shown.
        let cut = &"é".as_bytes()[..1];
        assert_eq!(
            answer_excerpt(&[b"ok ", cut].concat(), true).as_deref(),
            Some("ok…")
        );
        assert_eq!(
            answer_excerpt(b"a\xffb", false).as_deref(),
            Some("a\u{fffd}b")
        );
        assert_eq!(
            answer_excerpt("abc\u{202e}dcba\u{2066}x".as_bytes(), false).as_deref(),
            Some("abc dcba x")
        );
    }

    /// A host's share is the host's whatever the URL says about a user: one host is one
    /// key.
    #[test]
    fn a_callback_host_is_one_key_whatever_user_its_url_names() {
        let key = host_key("http://Shop.example:8080/cb");
        assert_eq!(&*key, "shop.example:8080");
        assert_eq!(host_key("http://a:b@shop.example:8080/other"), key);
        assert_eq!(host_key("http://c@SHOP.example:8080/"), key);
        assert_eq!(&*host_key("http://shop.example/cb"), "shop.example");
        assert_eq!(&*host_key("http://[::1]:9/cb"), "[::1]:9");
    }

    /// A name server that never answers: lookups whose callers gave up still hold their
    /// turns, so at most [`SYSTEM_LOOKUPS`] blocking threads are ever taken by them.
    #[tokio::test]
    async fn lookups_that_hang_take_at_most_their_share_of_blocking_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let resolver = {
            let (running, peak, release) = (running.clone(), peak.clone(), release.clone());
            Resolver::custom(move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let (lock, freed) = &*release;
                let mut go = lock.lock().unwrap();
                while !*go {
                    go = freed.wait(go).unwrap();
                }
                running.fetch_sub(1, Ordering::SeqCst);
                vec![IpAddr::from([127, 0, 0, 1])]
            })
        };
        // Forty callers each give up after a moment, as an attempt does at its timeout.
        for _ in 0..40 {
            let gave_up =
                tokio::time::timeout(Duration::from_millis(5), resolver.lookup("slow.example"))
                    .await;
            assert!(gave_up.is_err());
        }
        while running.load(Ordering::SeqCst) < SYSTEM_LOOKUPS {
            tokio::task::yield_now().await;
        }
        assert_eq!(peak.load(Ordering::SeqCst), SYSTEM_LOOKUPS);
        // Once the name server answers, lookups run again.
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        let found = resolver.lookup("slow.example").await.unwrap();
        assert_eq!(found, vec![IpAddr::from([127, 0, 0, 1])]);
        assert!(peak.load(Ordering::SeqCst) <= SYSTEM_LOOKUPS);
    }

    #[test]
    fn every_address_form_is_classified() {
        use AddressClass::{Loopback, NonPublic, Public};
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.8.9.10", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("10.0.0.1", NonPublic),
            ("172.16.0.1", NonPublic),
            ("192.168.1.1", NonPublic),
            ("100.64.0.1", NonPublic),
            ("169.254.169.254", NonPublic),
            ("0.0.0.0", NonPublic),
            ("0.1.2.3", NonPublic),
            ("192.0.0.8", NonPublic),
            ("192.0.2.1", NonPublic),
            ("198.18.0.1", NonPublic),
            ("198.51.100.1", NonPublic),
            ("203.0.113.1", NonPublic),
            ("224.0.0.1", NonPublic),
            ("240.0.0.1", NonPublic),
            ("255.255.255.255", NonPublic),
            ("::", NonPublic),
            ("::ffff:10.0.0.1", NonPublic),
            ("::ffff:169.254.169.254", NonPublic),
            ("::ffff:0.0.0.0", NonPublic),
            ("::10.0.0.1", NonPublic),
            ("::8.8.8.8", NonPublic),
            ("64:ff9b::10.0.0.1", NonPublic),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b:1::1", NonPublic),
            ("2002:0a00:0001::1", NonPublic),
            ("2002:7f00:0001::1", Loopback),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", NonPublic),
            ("2001:db8::1", NonPublic),
            ("2001:2::1", NonPublic),
            ("2001:20::1", NonPublic),
            ("100::1", NonPublic),
            ("fc00::1", NonPublic),
            ("fd12:3456::1", NonPublic),
            ("fe80::1", NonPublic),
            ("fec0::1", NonPublic),
            ("ff02::1", NonPublic),
            ("8.8.8.8", Public),
            ("93.184.216.34", Public),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::808:808", Public),
            ("2002:0808:0808::1", Public),
            ("2606:4700::1111", Public),
        ];
        for (text, class) in cases {
            assert_eq!(classify(text.parse().unwrap()), class, "{text}");
        }
    }

    #[test]
    fn other_spellings_of_an_ipv4_address_are_refused() {
        for host in ["167772161", "10.1", "0x0a000001", "012.0.0.1", "1.2.3.0X1f"] {
            assert!(check_target_with(host, true, true).is_err(), "{host}");
        }
        // A trailing dot is the same address.
        assert!(check_target_with("10.0.0.1.", true, false).is_err());
        // `localhost` names are loopback (RFC 6761), refused with it.
        for host in ["localhost", "LOCALHOST.", "shop.localhost"] {
            assert!(check_target_with(host, false, false).is_err(), "{host}");
            assert_eq!(check_target_with(host, true, false), Ok(()), "{host}");
        }
        assert_eq!(
            check_target_with("localhost.shop.example", false, false),
            Ok(())
        );
        for host in ["shop.example", "127.0.0.1", "[::1]", "a1.b2", "x.0xyz"] {
            assert_eq!(check_target_with(host, true, true), Ok(()), "{host}");
        }
    }

    #[test]
    fn loopback_is_allowed_and_private_ranges_are_not_by_default() {
        let c = DispatcherConfig::default();
        let ok = |ip: &str, c: &DispatcherConfig| {
            permitted(ip.parse().unwrap(), c.allow_loopback, c.allow_private)
        };
        assert!(ok("127.0.0.1", &c));
        assert!(ok("::1", &c));
        assert!(!ok("10.0.0.1", &c));
        assert!(!ok("169.254.169.254", &c));
        assert!(!ok("fe80::1", &c));
        assert!(!ok("::ffff:10.0.0.1", &c));
        let open = DispatcherConfig {
            allow_private: true,
            ..DispatcherConfig::default()
        };
        assert!(ok("10.0.0.1", &open));
        let closed = DispatcherConfig {
            allow_loopback: false,
            ..DispatcherConfig::default()
        };
        assert!(!ok("127.0.0.1", &closed));
        assert!(!ok("::ffff:127.0.0.1", &closed));
    }
}

/// Property tests of the address classes.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn an_ipv4_address_has_one_class_in_every_ipv6_form(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            let class = classify(IpAddr::V4(v4));
            prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), class);
            let [a, b, c, d] = v4.octets();
            let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0,
                u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            prop_assert_eq!(classify(IpAddr::V6(nat64)), class);
            let six_to_four = Ipv6Addr::new(0x2002, u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]), 0, 0, 0, 0, 1);
            prop_assert_eq!(classify(IpAddr::V6(six_to_four)), class);
            // IPv4-compatible is never public.
            let compatible = Ipv6Addr::new(0, 0, 0, 0, 0, 0,
                u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            if !compatible.is_unspecified() && compatible != Ipv6Addr::LOCALHOST {
                prop_assert_ne!(classify(IpAddr::V6(compatible)), AddressClass::Public);
            }
        }

        #[test]
        fn any_ipv6_address_has_a_class(bits in any::<u128>()) {
            let _ = classify(IpAddr::V6(Ipv6Addr::from(bits)));
        }
    }
}
