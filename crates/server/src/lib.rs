//! Composition of Mkoba: storage, platform, dialects, workers and the HTTP server.
//!
//! [`start`] binds (port 0 allowed), starts everything and returns a [`Running`] server with
//! its address, so the binary and the tests start the server the same way.

pub mod admin;
pub mod config;
pub mod guard;
pub mod listener;
pub mod mail;
pub mod mpesa_app;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::response::IntoResponse;
use mkoba_momo::error::MomoError;
use mkoba_momo::{MomoState, callback_renderer};
use mkoba_mpesa::PlatformKey;
use mkoba_platform::model::{KeySlot, Product, SubscriptionKey};
use mkoba_platform::throttle::Throttles;
use mkoba_platform::{CallbackRenderer, Platform};

pub use config::{ServeArgs, Settings};

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where `/metrics` is served when it has an address of its own (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// The main listener (and the v1x ports) speak HTTPS (`--tls`).
    pub tls: bool,
    /// The plain-HTTP listener beside an HTTPS one (`--plain-listen`).
    pub plain_addr: Option<SocketAddr>,
    /// The M-Pesa v1x per-API listeners, with the addresses they are bound to.
    pub mpesa_v1x: Vec<(&'static mkoba_mpesa::catalogue::Operation, SocketAddr)>,
    /// The platform handle (tests use it to look inside).
    pub platform: Platform,
    /// The M-Pesa platform key pair.
    pub mpesa_key: Arc<PlatformKey>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// The callback dispatcher and the mail sender: stopped with the server.
    background: Background,
    /// SQLite: the data directory's lock (`mkoba_store_sqlite::lock_data_dir`), released
    /// once the server's writer has stopped.
    _lock: Option<mkoba_store_sqlite::DataLock>,
}

impl Running {
    /// `http://addr`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        // Listening on every address (`0.0.0.0`, `::`), it is reached on this machine at
        // loopback: `http://0.0.0.0:8080` opens nothing in some browsers.
        let mut at = self.addr;
        if at.ip().is_unspecified() {
            at.set_ip(match at.ip() {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("{scheme}://{at}")
    }

    /// Every M-Pesa resource URL of this server (address, port, path, SSL), as the
    /// banner, `mkoba credentials` and the portal show them.
    pub fn mpesa_resource_urls(&self) -> Vec<mkoba_api_types::mpesa::ResourceUrl> {
        let ports: Vec<_> = self.mpesa_v1x.iter().map(|(o, a)| (*o, a.port())).collect();
        mkoba_mpesa::catalogue::resource_urls(self.addr, &ports, self.tls)
    }

    /// Stops accepting connections and waits for the requests in flight (up to the drain
    /// time), stops the callback dispatcher, then the writer once it has committed what it
    /// was sent ([`Platform::shutdown`]). Only then is the data directory's lock released:
    /// nothing of this server writes the database once this returns, so another may start
    /// on it. Callbacks not yet delivered wait in the outbox for the next start.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for server in &mut self.servers {
            let _ = server.await;
        }
        self.background.stop(&self.platform).await;
    }

    /// Waits until the server stops (it stops on Ctrl-C or SIGTERM when started by `serve`).
    pub async fn wait(mut self) {
        for server in &mut self.servers {
            let _ = server.await;
        }
    }
}

/// The platform's tasks besides the listeners: the callback dispatcher (whose end, unless
/// the server is stopping, is a failure the watcher reports) and the mail sender.
#[derive(Debug)]
struct Background {
    /// Ends the dispatcher gracefully: attempts under way finish and are recorded.
    stop_dispatcher: mkoba_webhooks::Stop,
    /// How long an attempt may take ([`mkoba_webhooks::DispatcherConfig::timeout`]).
    attempt_timeout: std::time::Duration,
    dispatcher: Option<tokio::task::AbortHandle>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    mail: Option<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Starts the callback dispatcher and its watcher.
    fn start(platform: &Platform, settings: &Settings) -> Background {
        let (dispatcher, stop_dispatcher) =
            mkoba_webhooks::spawn(platform.clone(), settings.dispatcher.clone());
        let (watched, stopped) = (platform.clone(), stop_dispatcher.clone());
        Background {
            dispatcher: Some(dispatcher.abort_handle()),
            // The dispatcher runs as long as the platform: if it ends (or could not start)
            // while the server is not stopping, the platform is failing.
            watcher: Some(tokio::spawn(async move {
                let _ = dispatcher.await;
                if !stopped.requested() {
                    watched.report_failure("the callback dispatcher stopped");
                }
            })),
            stop_dispatcher,
            attempt_timeout: settings.dispatcher.timeout,
            mail: None,
        }
    }

    /// Stops the tasks and waits for them, then the platform's writer. The dispatcher
    /// first lets the attempts under way finish and record their outcome (so they are not
    /// sent again after the next start), for at most an attempt's timeout and a second.
    async fn stop(&mut self, platform: &Platform) {
        self.stop_dispatcher.stop();
        if let Some(mut w) = self.watcher.take() {
            let within = self.attempt_timeout + std::time::Duration::from_secs(1);
            if tokio::time::timeout(within, &mut w).await.is_err() {
                // Attempts still under way are cut; they go out again after the next start.
                if let Some(d) = self.dispatcher.take() {
                    d.abort();
                }
                let _ = w.await;
            }
        }
        if let Some(m) = self.mail.take() {
            m.abort();
            let _ = m.await;
        }
        platform.shutdown().await;
    }
}

/// The full HTTP application; `throttles` are the server's (shared with its other
/// listeners).
pub fn app(
    platform: Platform,
    settings: &Settings,
    key: Arc<PlatformKey>,
    throttles: &Throttles,
) -> Router {
    let momo = mkoba_momo::router(MomoState::new(platform.clone(), settings.momo.clone()));
    let mpesa = mkoba_mpesa::router(mkoba_mpesa::MpesaState {
        platform: platform.clone(),
        key: key.clone(),
        config: Arc::new(settings.mpesa.clone()),
        key_failures: throttles.mpesa_keys.clone(),
    });
    let backend = mpesa_app::PortalBackend {
        platform: platform.clone(),
        key,
        insecure_result_urls: settings.mpesa.insecure_result_urls,
        callback_targets: (
            settings.dispatcher.allow_loopback,
            settings.dispatcher.allow_private,
        ),
        resource_urls: Arc::new(mkoba_mpesa::catalogue::resource_urls(
            settings.listen,
            &settings.mpesa_v1x_ports,
            settings.tls.is_some(),
        )),
    };
    let api = momo
        .merge(mpesa)
        .nest(
            "/_mkoba",
            admin::router(platform.clone(), throttles.clone())
                .nest("/mpesa", mpesa_app::router(backend.clone())),
        )
        .fallback(unknown_api_path)
        .method_not_allowed_fallback(|| async { MomoError::NotFound.into_response() })
        .layer(axum::middleware::map_response(json_errors));
    // The portal answers HTML, so it sits outside the JSON error rewriting.
    let observed = platform.clone();
    let metrics_here = settings.metrics_listen.is_none();
    let portal = mkoba_portal::router(mkoba_portal::PortalState {
        platform: platform.clone(),
        config: portal_config(settings),
        openapi: Arc::new(vec![
            mkoba_momo::openapi::document(),
            mkoba_mpesa::openapi::document(),
        ]),
        environments: Arc::new(
            mkoba_momo::ENVIRONMENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
        ),
        api: api.clone(),
        mpesa: Some(Arc::new(backend)),
        throttle: throttles.portal.clone(),
    });
    // The demo page beside the widget's script (the sandbox's `/demo.html`, also reached
    // next to the versioned script path): the portal's, which pays with the signed-in
    // developer's API user.
    let demo =
        || axum::routing::get(|| async { axum::response::Redirect::to("/portal/widget/demo") });
    let mut app = api
        .route("/demo.html", demo())
        .route("/v0.1.0/demo.html", demo())
        .route(
            "/portal/",
            // Any method: 308 keeps it, so a POST meets the portal's own 405 page (the
            // router's bare 405 answered it before).
            axum::routing::any(|| async { axum::response::Redirect::permanent("/portal") }),
        )
        .nest("/portal", portal);
    if metrics_here {
        app = app.merge(metrics_router(platform));
    }
    app.layer(guard::Guard::observing(observed))
}

/// `GET /metrics`: the platform's metrics in the text exposition format (on the main
/// listener, or alone on `--metrics-listen`).
pub fn metrics_router(platform: Platform) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(p): axum::extract::State<Platform>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        p.render_metrics(),
                    )
                },
            )
            // Said in words, as `/_mkoba/` does, rather than the router's empty 405.
            .fallback(|| async {
                (
                    axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    [(axum::http::header::ALLOW, "GET, HEAD")],
                    "/metrics takes GET\n",
                )
            }),
        )
        .with_state(platform)
}

/// The `dialect` and `operation` labels of a request: the route's template, or for M-Pesa
/// the catalogue's operation id; `unmatched` for what no route serves (so a scan of random
/// paths adds no series).
pub(crate) fn metric_labels(path: &str, matched: Option<&str>) -> (&'static str, String) {
    use mkoba_mpesa::catalogue::find;
    use mkoba_mpesa::wire::Gateway;
    let template = || matched.unwrap_or("unmatched").to_owned();
    let mpesa = |gateway, api: &str| {
        find(gateway, api).map_or("unmatched".to_owned(), |o| o.operation_id.to_owned())
    };
    if path == "/metrics" || path.starts_with("/_mkoba") {
        ("admin", template())
    } else if path.starts_with("/portal") || path.ends_with("/demo.html") {
        ("portal", template())
    } else if path.starts_with("/widget/") || path.starts_with("/collection_widget/") {
        ("widget", template())
    } else if let Some(api) = path.strip_prefix("/ipg/v1x/") {
        ("mpesa", mpesa(Gateway::V1x, api))
    } else if let Some(rest) = path
        .strip_prefix("/sandbox/ipg/v2/")
        .or_else(|| path.strip_prefix("/openapi/ipg/v2/"))
    {
        let api = rest.split_once('/').map_or("", |(_, api)| api);
        ("mpesa", mpesa(Gateway::V2, api))
    } else {
        ("momo", template())
    }
}

/// The portal's settings, with the public URL of links in mail defaulting to the listen
/// address (a loopback one where it listens on every address), `https://` when that
/// listener speaks TLS (with `http://` the links went to a port that answers only TLS).
pub fn portal_config(settings: &Settings) -> mkoba_portal::PortalConfig {
    let mut config = settings.portal.clone();
    config.mail_goes_out = settings.smtp.is_some();
    if config.public_url.is_empty() {
        let mut at = settings.listen;
        if at.ip().is_unspecified() {
            at.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        config.public_url = format!("{scheme}://{at}");
    }
    config
}

/// Errors produced by the HTTP framework itself (a body over the size limit, say) come as
/// plain text; clients expect the provider's JSON, so they are rewritten into it.
/// A path no API has: M-Pesa's 404 for what looks like an M-Pesa path (an unknown
/// environment such as `/prod/ipg/v2/…`), MTN's gateway 404 for the rest.
async fn unknown_api_path(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().contains("/ipg/") {
        mkoba_mpesa::wire::MpesaError::NotFound.respond(mkoba_mpesa::wire::Gateway::V2, None)
    } else if uri.path().starts_with("/widget/") {
        // The widget's API answers pages of other origins: its 404 too, so that a page's
        // script can read it (the widget's routes add the same).
        let mut r = MomoError::NotFound.into_response();
        r.headers_mut().insert(
            axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            axum::http::HeaderValue::from_static("*"),
        );
        r
    } else {
        MomoError::NotFound.into_response()
    }
}

async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    // The framework's answer's other headers go with the rewritten one: the widget's CORS
    // header, say, without which a page's script cannot read its 413.
    let mut kept = response.headers().clone();
    kept.remove(axum::http::header::CONTENT_TYPE);
    kept.remove(axum::http::header::CONTENT_LENGTH);
    let (code, message) = if status.is_server_error() {
        (
            "INTERNAL_PROCESSING_ERROR",
            "An internal error occurred while processing.".to_owned(),
        )
    } else if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        (
            "BAD_REQUEST",
            format!(
                "the request body is larger than the {} MiB the API takes",
                listener::MAX_BODY_BYTES >> 20
            ),
        )
    } else {
        // The framework's own words say what was wrong ("Failed to buffer the request
        // body: …", "Failed to deserialize query string: …"); short, and never a secret.
        let said = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .ok()
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim()
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty());
        if said
            .as_deref()
            .is_some_and(|s| s.contains(mkoba_platform::throttle::BODIES_BUSY))
        {
            // Not the client's fault: the overload answer, as for any bound reached.
            let mut busy = MomoError::unavailable().into_response();
            for (name, value) in kept.iter() {
                busy.headers_mut().append(name.clone(), value.clone());
            }
            return busy;
        }
        let reason = status.canonical_reason().unwrap_or("bad request");
        // A body that could not be read, in the platform's words rather than the
        // framework's ("Bad Request: Failed to buffer the request body: …").
        let unread = said
            .as_deref()
            .and_then(|s| s.strip_prefix("Failed to buffer the request body: "));
        (
            "BAD_REQUEST",
            match (unread, &said) {
                (Some(why), _) if why.contains("error reading a body from connection") => {
                    "the request body could not be read: it broke off, or its chunked encoding is not valid".to_owned()
                }
                (Some(why), _) => format!("the request body could not be read: {why}"),
                (None, Some(said)) => format!("the request was refused: {reason}: {said}"),
                (None, None) => format!("the request was refused: {reason}"),
            },
        )
    };
    let mut rewritten = mkoba_momo::error::json(
        status,
        &mkoba_api_types::momo::ErrorReason {
            code: code.to_owned(),
            message,
        },
    );
    for (name, value) in kept.iter() {
        rewritten.headers_mut().append(name.clone(), value.clone());
    }
    rewritten
}

/// Callback bodies: each dialect renders its own payments. An M-Pesa result goes only to a
/// URL the result-URL rules of now accept: one saved under others (a payment accepted
/// before a restart without `--mpesa-insecure-result-urls`) gets none.
pub fn renderer(settings: &Settings) -> CallbackRenderer {
    let momo = callback_renderer(&settings.momo);
    let insecure = settings.mpesa.insecure_result_urls;
    Arc::new(move |p| {
        if p.kind.is_mpesa() {
            let allowed = p
                .callback_url
                .as_deref()
                .is_none_or(|url| mkoba_mpesa::check_result_url(url, insecure).is_ok());
            allowed.then(|| mkoba_mpesa::callback::render(p))
        } else {
            momo(p)
        }
    })
}

/// The settings row that holds the M-Pesa private key on PostgreSQL.
const MPESA_KEY_SETTING: &str = "mpesa_private_key";

/// The M-Pesa platform key pair: from `key_file` when given; else, on PostgreSQL, the one
/// in the database (so every node sharing it has the same, seeded from this data
/// directory's key if it has one); else the one in the data directory, created on first
/// start. The public key is written into the data directory in every case.
pub async fn platform_key(
    data: &Path,
    key_file: Option<&Path>,
    database: Option<&config::DatabaseUrl>,
    database_was_there: bool,
) -> anyhow::Result<Arc<PlatformKey>> {
    let dir = data.to_owned();
    let file = key_file.map(Path::to_owned);
    let url = database.cloned();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Owner-only, as the SQLite store makes it: on PostgreSQL it is made here.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let key = tokio::task::spawn_blocking(move || -> anyhow::Result<PlatformKey> {
        match (file, url) {
            (None, Some(url)) => {
                let seed = dir.clone();
                let pem =
                    mkoba_store_postgres::shared_setting(&url.0, MPESA_KEY_SETTING, move || {
                        PlatformKey::existing_or_new_pem(&seed)
                            .map_err(|e| mkoba_platform::store::StoreError(e.to_string()))
                    })
                    .with_context(|| {
                        format!("reading the M-Pesa key pair from {}", url.redacted())
                    })?;
                let key = PlatformKey::from_pem(&pem)?;
                key.publish_in(&dir)?;
                Ok(key)
            }
            (Some(file), _) => Ok(PlatformKey::load_or_create(&dir, Some(&file))?),
            (None, None) => {
                // A database that was there before its key pair (restored without the
                // key file, or a --mpesa-key-file dropped): the new pair is said loudly,
                // since applications that encrypted with the old public key are refused.
                let new = database_was_there
                    && !dir.join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE).exists();
                let key = PlatformKey::load_or_create(&dir, None)?;
                if new {
                    tracing::warn!(
                        data_dir = %dir.display(),
                        "a new M-Pesa key pair was made for a database that was already there: applications that encrypted their API key with the old public key are refused (INS-989) until they take the new one; to keep the old pair, stop the server and restore mpesa-private-key.pem into the data directory, or give --mpesa-key-file"
                    );
                }
                Ok(key)
            }
        }
    })
    .await
    .context("creating the M-Pesa key pair")??;
    Ok(Arc::new(key))
}

/// An opened store: the writer's journal and the handlers' reader.
struct Store {
    journal: Box<dyn mkoba_platform::store::Journal>,
    reader: Arc<dyn mkoba_platform::store::Reader>,
    /// SQLite: the data directory's lock, held until the server stops.
    lock: Option<mkoba_store_sqlite::DataLock>,
}

/// SQLite in the data directory (migrated on open), or PostgreSQL at the database URL,
/// which must already be migrated (`mkoba migrate`); any number of nodes may share it.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let Some(url) = settings.database_url.clone() else {
        // Off the runtime's threads: it may wait a moment for another server's lock.
        let (data, options) = (settings.data.clone(), settings.sqlite);
        return tokio::task::spawn_blocking(move || {
            let lock = mkoba_store_sqlite::lock_data_dir(&data)?;
            let (journal, reader) = mkoba_store_sqlite::open_with(&data, options)
                .with_context(|| format!("opening the database in {}", data.display()))?;
            Ok(Store {
                journal: Box::new(journal),
                reader: Arc::new(reader),
                lock: Some(lock),
            })
        })
        .await
        .context("opening the database")?;
    };
    let node = settings.node.clone();
    tokio::task::spawn_blocking(move || {
        let shown = url.redacted();
        let version = mkoba_store_postgres::schema_version(&url.0)
            .with_context(|| format!("reading the schema version of {shown}"))?;
        let needed = mkoba_store_postgres::SCHEMA_VERSION;
        anyhow::ensure!(
            version >= needed,
            "the database {shown} has schema version {version}, this binary needs {needed}: run `mkoba migrate --database-url …` first"
        );
        let (journal, reader) = mkoba_store_postgres::open_as(&url.0, node)
            .with_context(|| format!("opening {shown}"))?;
        Ok(Store {
            journal: Box::new(journal),
            reader: Arc::new(reader),
            lock: None,
        })
    })
    .await
    .context("opening the database")?
}

/// Applies the migrations the database lacks (PostgreSQL at `url`, else SQLite in `data`)
/// and returns the schema version.
///
/// On SQLite a data directory without a database gets a new one, which
/// [`creates_database`] tells beforehand (the command says so: a mistyped `--data` is then
/// seen at once).
pub fn migrate(data: &Path, url: Option<&config::DatabaseUrl>) -> anyhow::Result<usize> {
    match url {
        Some(url) => mkoba_store_postgres::migrate(&url.0)
            .with_context(|| format!("migrating {}", url.redacted())),
        None => {
            // Never under a running server (of any version that takes the lock): it would
            // go on with a schema it does not know.
            let _lock = mkoba_store_sqlite::lock_data_dir(data).context(
                "mkoba migrate needs the data directory to itself: stop the server, migrate, then start the new one",
            )?;
            mkoba_store_sqlite::open(data)
                .with_context(|| format!("opening the database in {}", data.display()))?;
            Ok(mkoba_store_sqlite::SCHEMA_VERSION)
        }
    }
}

/// Whether [`migrate`] of `data` (SQLite) would create the database rather than migrate one.
pub fn creates_database(data: &Path) -> bool {
    !data.join(mkoba_store_sqlite::DB_FILE).exists()
}

/// Creates an operator account (active at once) in the server's database: SQLite in
/// `data`, or PostgreSQL at `url`. Safe while the server runs (the writer reads accounts
/// from the database, and SQLite's lock orders the two writers).
pub fn create_operator(
    data: &Path,
    url: Option<&config::DatabaseUrl>,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<i64> {
    let mut journal: Box<dyn mkoba_platform::store::Journal> = match url {
        Some(url) => Box::new(
            mkoba_store_postgres::open_for_command(&url.0)
                .with_context(|| format!("opening {}", url.redacted()))?
                .0,
        ),
        None => {
            // An operator in a database no server uses could never sign in.
            DataSource::sqlite(data).require_sqlite()?;
            Box::new(
                mkoba_store_sqlite::open_beside_server(data)
                    .with_context(|| format!("opening the database in {}", data.display()))?
                    .0,
            )
        }
    };
    Platform::bootstrap(journal.as_mut(), 0).context("reading the database")?;
    mkoba_platform::portal::add_operator(journal.as_mut(), email, name, password)
        .context("creating the operator")
}

/// Binds the listeners, opens the store, starts the platform, the callback dispatcher and
/// the HTTP server. The binds come first: a port in use fails the start before anything is
/// created (a data directory, a database, a key pair).
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let bound = bind(&settings).await?;
    // Before the store makes one: a key pair made for a database that was already there
    // is said loudly (`platform_key`).
    let database_was_there =
        settings.database_url.is_none() && settings.data.join(mkoba_store_sqlite::DB_FILE).exists();
    let mut store = open_store(&settings).await?;
    if let Some(faults) = &settings.faults {
        store.journal = Box::new(mkoba_platform::faults::FaultyJournal::new(
            store.journal,
            faults.clone(),
        ));
    }
    let key = platform_key(
        &settings.data,
        settings.mpesa_key_file.as_deref(),
        settings.database_url.as_ref(),
        database_was_there,
    )
    .await?;
    let key = match Arc::try_unwrap(key) {
        Ok(k) => Arc::new(k.with_limits(settings.mpesa.rsa)),
        Err(shared) => shared,
    };
    let mut config = settings.platform.clone();
    config.faults = settings.faults.clone();
    config.mpesa_answer = settings.mpesa.sync_timeout;
    let lock = store.lock;
    let platform = Platform::start(store.journal, store.reader, config, renderer(&settings))
        .context("starting the platform")?;
    let mut background = Background::start(&platform, &settings);
    if let Some(smtp) = &settings.smtp {
        match mail::spawn(platform.clone(), smtp) {
            Ok(sender) => background.mail = Some(sender),
            Err(e) => {
                background.stop(&platform).await;
                return Err(e);
            }
        }
    }
    match listen(&settings, bound, &platform, &key).await {
        Ok(l) => Ok(Running {
            addr: l.addr,
            metrics_addr: l.metrics_addr,
            tls: l.tls,
            plain_addr: l.plain_addr,
            mpesa_v1x: l.mpesa_v1x,
            platform,
            mpesa_key: key,
            shutdown: Some(l.shutdown),
            servers: l.servers,
            background,
            _lock: lock,
        }),
        Err(e) => {
            // Nothing of this start may go on writing once the lock is released.
            background.stop(&platform).await;
            Err(e)
        }
    }
}

/// A listener on `at`, if there is one; `what` names it in the error.
async fn bind_if(
    at: Option<SocketAddr>,
    what: &str,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(at) = at else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("binding the {what} {at}"))?;
    Ok(Some(l))
}

/// What [`listen`] started.
struct Listening {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    tls: bool,
    plain_addr: Option<SocketAddr>,
    mpesa_v1x: Vec<(&'static mkoba_mpesa::catalogue::Operation, SocketAddr)>,
    shutdown: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// Every listener of `settings`, bound.
struct Bound {
    main: tokio::net::TcpListener,
    v1x: Vec<(
        &'static mkoba_mpesa::catalogue::Operation,
        tokio::net::TcpListener,
    )>,
    plain: Option<tokio::net::TcpListener>,
    metrics: Option<tokio::net::TcpListener>,
}

/// Binds every listener of `settings`; a port in use is an error that names it.
async fn bind(settings: &Settings) -> anyhow::Result<Bound> {
    let main = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    // The v1x per-API ports, on the main listener's address; a port in use is an error
    // that names it and its API.
    let mut v1x = Vec::new();
    for (op, port) in &settings.mpesa_v1x_ports {
        let at = SocketAddr::new(settings.listen.ip(), *port);
        let l = tokio::net::TcpListener::bind(at).await.with_context(|| {
            format!(
                "binding port {port} for the M-Pesa v1x {} API ({}); free the port, or choose another with --mpesa-v1x-ports {}=PORT, or turn the per-API ports off",
                op.api.port_key(),
                op.path,
                op.api.port_key()
            )
        })?;
        v1x.push((*op, l));
    }
    Ok(Bound {
        main,
        v1x,
        plain: bind_if(settings.plain_listen, "plain-HTTP address").await?,
        metrics: bind_if(settings.metrics_listen, "metrics address").await?,
    })
}

/// Serves the APIs, the portal and the metrics on the listeners [`bind`] bound.
async fn listen(
    settings: &Settings,
    bound: Bound,
    platform: &Platform,
    key: &Arc<PlatformKey>,
) -> anyhow::Result<Listening> {
    let Bound {
        main: listener,
        v1x,
        plain,
        metrics,
    } = bound;
    let addr = listener.local_addr()?;
    let mut bound = Vec::new();
    for (op, l) in &v1x {
        bound.push((*op, l.local_addr()?));
    }
    let mut resolved = settings.clone();
    resolved.listen = addr;
    resolved.mpesa_v1x_ports = bound.iter().map(|(o, a)| (*o, a.port())).collect();
    let throttles = Throttles::new(&settings.throttle);
    let app = app(platform.clone(), &resolved, key.clone(), &throttles);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let limits = settings.connections;
    let tls = match &settings.tls {
        Some(t) => Some(tls::server_config(&settings.data, t)?),
        None => None,
    };
    let mut plain_addr = None;
    let mut servers = Vec::new();
    if let Some(l) = plain {
        plain_addr = Some(l.local_addr()?);
        servers.push(listener::serve(l, app.clone(), rx.clone(), limits));
    }
    servers.push(listener::serve_tls(
        listener,
        app,
        rx.clone(),
        limits,
        tls.clone(),
    ));
    let state = mkoba_mpesa::MpesaState {
        platform: platform.clone(),
        key: key.clone(),
        config: Arc::new(settings.mpesa.clone()),
        key_failures: throttles.mpesa_keys.clone(),
    };
    for (op, l) in v1x {
        let router = mkoba_mpesa::v1x_port_router(state.clone(), op)
            .layer(guard::Guard::observing(platform.clone()));
        servers.push(listener::serve_tls(
            l,
            router,
            rx.clone(),
            limits,
            tls.clone(),
        ));
    }
    // `--metrics-listen`: `/metrics` on its own address (and then not on the main one).
    let mut metrics_addr = None;
    if let Some(l) = metrics {
        metrics_addr = Some(l.local_addr()?);
        servers.push(listener::serve(
            l,
            metrics_router(platform.clone()),
            rx.clone(),
            limits,
        ));
    }
    Ok(Listening {
        addr,
        metrics_addr,
        tls: tls.is_some(),
        plain_addr,
        mpesa_v1x: bound,
        shutdown: tx,
        servers,
    })
}

/// Where a server keeps its data: SQLite in a data directory, or PostgreSQL.
#[derive(Debug, Clone)]
pub struct DataSource {
    pub data: std::path::PathBuf,
    pub database_url: Option<config::DatabaseUrl>,
}

impl DataSource {
    /// SQLite in `data`.
    pub fn sqlite(data: &Path) -> DataSource {
        DataSource {
            data: data.to_owned(),
            database_url: None,
        }
    }

    /// An error that says what to do when the data directory holds no database.
    fn require_sqlite(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.data.join(mkoba_store_sqlite::DB_FILE).exists(),
            "no Mkoba database in {}: start the server with `mkoba serve` (it creates one there), or point --data (or --database-url for PostgreSQL) at the server's",
            self.data.display()
        );
        Ok(())
    }

    /// The server's database as it is: never created here (a client command that made a
    /// fresh one would print keys no server knows). PostgreSQL must be migrated.
    fn open(
        &self,
    ) -> anyhow::Result<(
        Box<dyn mkoba_platform::store::Journal>,
        Box<dyn mkoba_platform::store::Reader>,
    )> {
        if let Some(url) = &self.database_url {
            let shown = url.redacted();
            let version = mkoba_store_postgres::schema_version(&url.0)
                .with_context(|| format!("reading the schema version of {shown}"))?;
            anyhow::ensure!(
                version >= mkoba_store_postgres::SCHEMA_VERSION,
                "the database {shown} has schema version {version}: run `mkoba migrate --database-url …` and start a node first"
            );
            let (journal, reader) = mkoba_store_postgres::open_for_command(&url.0)
                .with_context(|| format!("opening {shown}"))?;
            return Ok((Box::new(journal), Box::new(reader)));
        }
        self.require_sqlite()?;
        let (journal, reader) = mkoba_store_sqlite::open_beside_server(&self.data)
            .with_context(|| format!("opening the database in {}", self.data.display()))?;
        Ok((Box::new(journal), Box::new(reader)))
    }
}

/// What `mkoba credentials` prints: exactly what the server (every node of it) serves.
#[derive(Debug, Clone)]
pub struct ServerCredentials {
    /// The sandbox developer's subscription keys, per product, primary first.
    pub keys: Vec<SubscriptionKey>,
    /// The sandbox developer's portal sign-in (while its password is the printed one).
    pub portal: Option<mkoba_platform::portal::SandboxLogin>,
    /// The operator created at first start.
    pub operator: Option<mkoba_platform::portal::SandboxLogin>,
    /// The sandbox developer's current M-Pesa API key (`None` when it is not kept).
    pub mpesa_api_key: Option<String>,
    /// The sandbox developer's account is deactivated (or deleted) by an operator: its
    /// keys and sign-in are withheld (they were replaced by ones nobody may hold, and
    /// printing those would hand them out again).
    pub sandbox_withdrawn: Option<mkoba_platform::accounts::AccountStatus>,
}

/// Reads the server's credentials from its database (SQLite or PostgreSQL).
pub fn server_credentials(source: &DataSource) -> anyhow::Result<ServerCredentials> {
    let (mut journal, reader) = source.open()?;
    let mut state = Platform::bootstrap(journal.as_mut(), 0).context("reading credentials")?;
    state
        .subscription_keys
        .retain(|k| k.developer_id == mkoba_platform::SANDBOX_DEVELOPER);
    state
        .subscription_keys
        .sort_by_key(|k| (k.product, k.slot == KeySlot::Secondary));
    let app = journal
        .mpesa_app(mkoba_platform::SANDBOX_DEVELOPER)
        .context("reading the M-Pesa application")?;
    let sandbox_withdrawn = journal
        .account(mkoba_platform::SANDBOX_DEVELOPER)
        .context("reading the sandbox developer's account")?
        .map(|a| a.status)
        .filter(|s| s.withdrawn());
    let shown = sandbox_withdrawn.is_none();
    Ok(ServerCredentials {
        keys: if shown {
            state.subscription_keys
        } else {
            Vec::new()
        },
        portal: if shown {
            reader
                .sandbox_login()
                .context("reading the portal sign-in")?
        } else {
            None
        },
        operator: reader
            .operator_login()
            .context("reading the operator's sign-in")?,
        mpesa_api_key: app.and_then(|a| a.api_key).filter(|_| shown),
        sandbox_withdrawn,
    })
}

/// The sandbox developer's subscription keys in the data directory's database.
pub fn credentials(data: &Path) -> anyhow::Result<Vec<SubscriptionKey>> {
    Ok(server_credentials(&DataSource::sqlite(data))?.keys)
}

/// The sandbox developer's portal sign-in.
pub fn portal_login(data: &Path) -> anyhow::Result<Option<mkoba_platform::portal::SandboxLogin>> {
    Ok(server_credentials(&DataSource::sqlite(data))?.portal)
}

/// The operator created at first start and its password (while unchanged).
pub fn operator_login(data: &Path) -> anyhow::Result<Option<mkoba_platform::portal::SandboxLogin>> {
    Ok(server_credentials(&DataSource::sqlite(data))?.operator)
}

/// The server's M-Pesa public key (base64 DER): the key file's, the data directory's, or
/// on PostgreSQL the database's (never created here).
pub fn mpesa_public_key(source: &DataSource, key_file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(file) = key_file {
        let pem = std::fs::read(file)
            .with_context(|| format!("reading the M-Pesa key file {}", file.display()))?;
        return Ok(PlatformKey::from_pem(&pem)?.public_key_base64().to_owned());
    }
    if let Some(url) = &source.database_url {
        let pem = mkoba_store_postgres::shared_setting(&url.0, MPESA_KEY_SETTING, || {
            Err(mkoba_platform::store::StoreError(
                "no M-Pesa key pair in the database yet: start a node first".to_owned(),
            ))
        })
        .with_context(|| format!("reading the M-Pesa key pair from {}", url.redacted()))?;
        return Ok(PlatformKey::from_pem(&pem)?.public_key_base64().to_owned());
    }
    source.require_sqlite()?;
    // What the server serves, never a key of our own: a key made here would not be the
    // server's (it may keep its key in a `--mpesa-key-file`).
    PlatformKey::published_in(&source.data)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no M-Pesa key in {} yet: start the server there first (`mkoba serve --data {}`), or give its --mpesa-key-file",
            source.data.display(),
            source.data.display()
        )
    })
}

/// The sandbox developer's M-Pesa credentials: `(api key while not renewed, public key)`.
pub fn mpesa_credentials(
    data: &Path,
    key_file: Option<&Path>,
) -> anyhow::Result<(Option<String>, String)> {
    let source = DataSource::sqlite(data);
    let api_key = server_credentials(&source)?.mpesa_api_key;
    Ok((api_key, mpesa_public_key(&source, key_file)?))
}

/// `{"collection":{"primary":"…","secondary":"…"},…}`.
pub fn credentials_json(keys: &[SubscriptionKey]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for product in Product::ALL {
        let mut slots = serde_json::Map::new();
        for k in keys.iter().filter(|k| k.product == product) {
            slots.insert(k.slot.as_str().to_owned(), k.key.clone().into());
        }
        out.insert(product.as_str().to_owned(), slots.into());
    }
    out.into()
}
