//! Layered configuration: defaults, then an optional TOML file, then `MKOBA_*` environment
//! variables, then command-line flags (each layer overrides the one before).
//!
//! Flags and environment variables are declared together on [`ServeArgs`] (clap reads the
//! variable when the flag is absent); [`FileConfig`] has the same keys, in snake case, for
//! the TOML file given with `--config` / `MKOBA_CONFIG`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use mkoba_momo::{MomoConfig, ReasonFormat};
use mkoba_platform::PlatformConfig;
use mkoba_platform::model::CallbackMethod;
use mkoba_webhooks::DispatcherConfig;
use serde::Deserialize;

/// Flags of `mkoba serve`; every one can also come from the environment or the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file
    #[arg(long, env = "MKOBA_CONFIG")]
    pub config: Option<PathBuf>,
    /// `sandbox` (a developer's laptop: passwords in the banner, the sandbox mailbox, callbacks to loopback) or `production` (a server others reach: none of those) [default: sandbox]
    #[arg(long, env = "MKOBA_PROFILE")]
    pub profile: Option<String>,
    /// Data directory (SQLite database, M-Pesa key pair) [default: ./mkoba-data]
    #[arg(long, env = "MKOBA_DATA")]
    pub data: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: postgres://user:password@host:port/database (migrate it first with `mkoba migrate`) [default: none, SQLite in --data]
    #[arg(long, env = "MKOBA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// PostgreSQL: this node's name among the nodes sharing the database, recorded with the callbacks it sends; unique per running node [default: a random node-… id per start]
    #[arg(long, env = "MKOBA_NODE_ID")]
    pub node_id: Option<String>,
    /// PostgreSQL: a node not seen for this many seconds (2 to 86400) is gone, and another takes over its undelivered callbacks [default: 10]
    #[arg(long, env = "MKOBA_NODE_LEASE_SECS")]
    pub node_lease_secs: Option<u64>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "MKOBA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve `GET /metrics` (Prometheus) on this address instead of on the main listener [default: on the main listener]
    #[arg(long, env = "MKOBA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// HTTPS on the main listener (and the M-Pesa v1x ports): with --tls-cert and --tls-key, or a certificate from a local CA made in the data directory (`mkoba tls trust`) [default: false]
    #[arg(long, env = "MKOBA_TLS", num_args = 0..=1, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// --tls: the certificate chain (PEM) [default: issued by the local CA]
    #[arg(long, env = "MKOBA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// --tls: the certificate's private key (PEM)
    #[arg(long, env = "MKOBA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// --tls: more host names for the local CA's certificate (besides localhost and the providers' hosts), comma-separated
    #[arg(long, env = "MKOBA_TLS_HOST", value_delimiter = ',')]
    pub tls_host: Option<Vec<String>>,
    /// A plain-HTTP listener beside the HTTPS one [default: none]
    #[arg(long, env = "MKOBA_PLAIN_LISTEN")]
    pub plain_listen: Option<SocketAddr>,
    /// Lifetime of access tokens in seconds [default: 3600]
    #[arg(long, env = "MKOBA_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// How long payments stay PENDING before they settle, in milliseconds [default: 0]
    #[arg(long, env = "MKOBA_SETTLE_DELAY_MS")]
    pub settle_delay_ms: Option<u64>,
    /// How long after a request-to-pay succeeds a delivery notification may be sent, in seconds; later ones are 410 [default: 86400]
    #[arg(long, env = "MKOBA_DELIVERY_NOTIFICATION_WINDOW_SECS")]
    pub delivery_notification_window_secs: Option<u64>,
    /// Opening balance of a sandbox wallet on first use, in major units [default: 100000]
    #[arg(long, env = "MKOBA_OPENING_BALANCE", allow_hyphen_values = true)]
    pub opening_balance: Option<String>,
    /// Opening float of a sandbox partner's disbursement and remittance accounts, in major units [default: 1000000]
    #[arg(long, env = "MKOBA_PARTNER_FLOAT")]
    pub partner_float: Option<String>,
    /// Callback HTTP method where the definitions give none (v1 request-to-pay and transfers), POST or PUT [default: POST]
    #[arg(long, env = "MKOBA_CALLBACK_METHOD")]
    pub callback_method: Option<String>,
    /// Callback retry delays in seconds, comma-separated (empty: one attempt) [default: none]
    #[arg(long, env = "MKOBA_CALLBACK_RETRY_SECS", value_delimiter = ',')]
    pub callback_retry_secs: Option<Vec<u64>>,
    /// Time allowed for one callback attempt in milliseconds [default: 2000]
    #[arg(long, env = "MKOBA_CALLBACK_TIMEOUT_MS")]
    pub callback_timeout_ms: Option<u64>,
    /// Allow callbacks to private and link-local addresses [default: false]
    #[arg(long, env = "MKOBA_CALLBACK_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true")]
    pub callback_allow_private: Option<bool>,
    /// PEM file of certificates trusted for https callbacks besides Mozilla's roots [default: none]
    #[arg(long, env = "MKOBA_CALLBACK_CA_FILE")]
    pub callback_ca_file: Option<PathBuf>,
    /// `reason` in status and callback bodies: string (real sandbox) or object (spec) [default: string]
    #[arg(long, env = "MKOBA_REASON_FORMAT")]
    pub reason_format: Option<String>,
    /// Mark the developer portal's cookies Secure (when it is served over HTTPS) [default: true with --tls and no --plain-listen, else false]
    #[arg(long, env = "MKOBA_PORTAL_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    pub portal_secure_cookies: Option<bool>,
    /// Where people open this server, for the links in the portal's mail (activation, password reset) [default: http://LISTEN, https://LISTEN with --tls]
    #[arg(long, env = "MKOBA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP server for the portal's mail: smtp://user:password@host:587?tls=required (STARTTLS), smtps://user:password@host:465 (TLS), smtp://host:25 (plain, a local relay; a password in an smtp:// URL needs ?tls=required, or ?tls=none to send it in clear on purpose) [default: none; mail is only kept in the portal's mailbox]
    #[arg(long, env = "MKOBA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SmtpUrl>,
    /// Sender of the portal's mail, an address or a name and an address in angle brackets [default: the name Mkoba with the address no-reply@mkoba.local]
    #[arg(long, env = "MKOBA_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Sandbox mailbox: the portal shows the mail of a just-signed-up account to its browser, so the journey works without a mail server [default: true without --smtp-url, false with it or with --profile production]
    #[arg(long, env = "MKOBA_SANDBOX_MAILBOX", num_args = 0..=1, default_missing_value = "true")]
    pub sandbox_mailbox: Option<bool>,
    /// M-Pesa: how long a new session id takes to become live, in milliseconds (the real gateway: up to 30000) [default: 0]
    #[arg(long, env = "MKOBA_MPESA_SESSION_ACTIVATION_MS")]
    pub mpesa_session_activation_ms: Option<u64>,
    /// M-Pesa: how long a synchronous call waits for its transaction before INS-9, in milliseconds [default: 60000]
    #[arg(long, env = "MKOBA_MPESA_SYNC_TIMEOUT_MS")]
    pub mpesa_sync_timeout_ms: Option<u64>,
    /// M-Pesa: accept http:// result URLs on loopback hosts on any port (local development) [default: false]
    #[arg(long, env = "MKOBA_MPESA_INSECURE_RESULT_URLS", num_args = 0..=1, default_missing_value = "true")]
    pub mpesa_insecure_result_urls: Option<bool>,
    /// M-Pesa: the platform's RSA private key (PEM) [default: DATA/mpesa-private-key.pem, created on first start; on PostgreSQL the database's, shared by every node]
    #[arg(long, env = "MKOBA_MPESA_KEY_FILE")]
    pub mpesa_key_file: Option<PathBuf>,
    /// Connection limits, the RSA pool, throttles and the password hashing pool.
    #[command(flatten)]
    pub limits: Box<LimitArgs>,
    /// M-Pesa v1x (Mozambique): also serve each API on its own port as the real gateway does: `on` (C2B 18352, B2C 18345, B2B 18349, reversal 18354, status 18353, customer name 19323), `off`, or a list such as `c2b=18352,status=0` (0: any free port) [default: off; /ipg/v1x/ is always on the main listener]
    #[arg(long, env = "MKOBA_MPESA_V1X_PORTS")]
    pub mpesa_v1x_ports: Option<String>,
}

/// The flags of `mkoba serve` that bound work: connections, M-Pesa RSA, throttles,
/// password hashing (boxed in [`ServeArgs`] to keep it small).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitArgs {
    /// Time a client has to send a request's header, and an idle kept-alive connection lives, in milliseconds [default: 10000]
    #[arg(long, env = "MKOBA_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Open connections allowed from one client address (an IPv6 one by its /64); more are closed at once [default: 256]
    #[arg(long, env = "MKOBA_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// Open connections allowed on each listener from all clients; more are closed at once (keep it below the open-file limit) [default: 10000]
    #[arg(long, env = "MKOBA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// M-Pesa: RSA decryptions of bearers at once [default: one per core, at most 8]
    #[arg(long, env = "MKOBA_MPESA_RSA_WORKERS")]
    pub mpesa_rsa_workers: Option<usize>,
    /// M-Pesa: bearers waiting for a decryption; past that the answer is INS-16 at once [default: 64]
    #[arg(long, env = "MKOBA_MPESA_RSA_QUEUE")]
    pub mpesa_rsa_queue: Option<usize>,
    /// Portal sign-in tries per account (right password or not), as COUNT/PERIOD: COUNT at once, one more every PERIOD/COUNT (10/15m: ten, then one every 90 s), or off; past it 429 with Retry-After [default: 10/15m]
    #[arg(long, env = "MKOBA_SIGNIN_LIMIT_ACCOUNT")]
    pub signin_limit_account: Option<String>,
    /// Portal sign-in tries per client address (an IPv6 address counts by its /64), COUNT/PERIOD or off [default: 100/15m]
    #[arg(long, env = "MKOBA_SIGNIN_LIMIT_ADDRESS")]
    pub signin_limit_address: Option<String>,
    /// Password reset requests and submissions per account, COUNT/PERIOD or off [default: 5/15m]
    #[arg(long, env = "MKOBA_RESET_LIMIT_ACCOUNT")]
    pub reset_limit_account: Option<String>,
    /// Password reset requests and submissions per client address, COUNT/PERIOD or off [default: 20/15m]
    #[arg(long, env = "MKOBA_RESET_LIMIT_ADDRESS")]
    pub reset_limit_address: Option<String>,
    /// Portal sign-ups and activation e-mails sent again per client address, COUNT/PERIOD or off [default: 20/1h]
    #[arg(long, env = "MKOBA_SIGNUP_LIMIT_ADDRESS")]
    pub signup_limit_address: Option<String>,
    /// M-Pesa: failed API key checks (getSession, v1x calls) per client address, COUNT/PERIOD or off; past it decrypted only on an idle RSA worker, else 503 INS-16 at once [default: 20/1m]
    #[arg(long, env = "MKOBA_MPESA_KEY_FAILURE_LIMIT")]
    pub mpesa_key_failure_limit: Option<String>,
    /// Portal: Argon2 password hashes at once (19 MiB each) [default: one per core, at most 16]
    #[arg(long, env = "MKOBA_PASSWORD_HASH_WORKERS")]
    pub password_hash_workers: Option<usize>,
    /// Portal: requests waiting for a password hash; past that 429 "the portal is busy" at once [default: 4 per worker]
    #[arg(long, env = "MKOBA_PASSWORD_HASH_QUEUE")]
    pub password_hash_queue: Option<usize>,
    /// Requests waiting for the writer at once; past that a write is answered with the dialect's overload answer at once (MoMo 503 SERVICE_UNAVAILABLE, M-Pesa INS-16) [default: 32768]
    #[arg(long, env = "MKOBA_WRITER_QUEUE")]
    pub writer_queue: Option<usize>,
    /// Store reads waiting for a reader thread (one per core, 2 to 8); past that a request is answered with the dialect's overload answer at once [default: 4096]
    #[arg(long, env = "MKOBA_READ_QUEUE")]
    pub read_queue: Option<usize>,
    /// Callbacks held in memory for an attempt now (at most half of them one host's), and as many again waiting for a retry; past that they wait in the database until the dispatcher has room or the retry is due [default: 4096]
    #[arg(long, env = "MKOBA_CALLBACKS_IN_MEMORY")]
    pub callbacks_in_memory: Option<usize>,
    /// Customer wallets the writer holds in memory; past that the least recently used idle ones are dropped and read back from the database when next needed [default: 100000]
    #[arg(long, env = "MKOBA_WALLETS_IN_MEMORY")]
    pub wallets_in_memory: Option<usize>,
    /// Payments held open (pending) at once; past that a new payment is refused with the dialect's overload answer (MoMo 503 SERVICE_UNAVAILABLE, M-Pesa INS-16) until some are final [default: 200000]
    #[arg(long, env = "MKOBA_MAX_PENDING_PAYMENTS")]
    pub max_pending_payments: Option<usize>,
    /// Of those, the most one developer's API users may hold, so that one partner's payments that never end cannot refuse everyone's [default: half of --max-pending-payments]
    #[arg(long, env = "MKOBA_MAX_PENDING_PER_DEVELOPER")]
    pub max_pending_per_developer: Option<usize>,
    /// SQLite: the write-ahead log's size in MiB past which the writer lets the checkpoint thread copy everything so the file starts over [default: 64]
    #[arg(long, env = "MKOBA_SQLITE_WAL_MIB")]
    pub sqlite_wal_mib: Option<u64>,
    /// SQLite: about how many new payments' reference ids wait in memory before the writer moves them into their index, a slice of the key space at a time; more write fewer pages per payment in a large database, and a start indexes up to twice as many [default: 65536]
    #[arg(long, env = "MKOBA_SQLITE_REFS_BEHIND")]
    pub sqlite_refs_behind: Option<usize>,
}

/// The TOML file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub profile: Option<String>,
    pub data: Option<PathBuf>,
    pub database_url: Option<DatabaseUrl>,
    pub node_id: Option<String>,
    pub node_lease_secs: Option<u64>,
    pub listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub tls: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_host: Option<Vec<String>>,
    pub plain_listen: Option<SocketAddr>,
    pub token_ttl_secs: Option<u64>,
    pub settle_delay_ms: Option<u64>,
    pub delivery_notification_window_secs: Option<u64>,
    pub opening_balance: Option<String>,
    pub partner_float: Option<String>,
    pub callback_method: Option<String>,
    pub callback_retry_secs: Option<Vec<u64>>,
    pub callback_timeout_ms: Option<u64>,
    pub callback_allow_private: Option<bool>,
    pub callback_ca_file: Option<PathBuf>,
    pub reason_format: Option<String>,
    pub portal_secure_cookies: Option<bool>,
    pub public_url: Option<String>,
    pub smtp_url: Option<SmtpUrl>,
    pub mail_from: Option<String>,
    pub sandbox_mailbox: Option<bool>,
    pub mpesa_session_activation_ms: Option<u64>,
    pub mpesa_sync_timeout_ms: Option<u64>,
    pub mpesa_insecure_result_urls: Option<bool>,
    pub mpesa_key_file: Option<PathBuf>,
    pub mpesa_v1x_ports: Option<String>,
    pub mpesa_rsa_workers: Option<usize>,
    pub mpesa_rsa_queue: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub max_connections_per_client: Option<usize>,
    pub max_connections: Option<usize>,
    pub signin_limit_account: Option<String>,
    pub signin_limit_address: Option<String>,
    pub reset_limit_account: Option<String>,
    pub reset_limit_address: Option<String>,
    pub signup_limit_address: Option<String>,
    pub mpesa_key_failure_limit: Option<String>,
    pub password_hash_workers: Option<usize>,
    pub password_hash_queue: Option<usize>,
    pub writer_queue: Option<usize>,
    pub read_queue: Option<usize>,
    pub callbacks_in_memory: Option<usize>,
    pub wallets_in_memory: Option<usize>,
    pub max_pending_payments: Option<usize>,
    pub max_pending_per_developer: Option<usize>,
    pub sqlite_wal_mib: Option<u64>,
    pub sqlite_refs_behind: Option<usize>,
}

/// A database URL; its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// Whether it names a PostgreSQL database: a `postgres://` or `postgresql://` URL, or
    /// libpq's keyword form (`host=… user=… dbname=…`), which `mkoba migrate` took and
    /// `serve` refused until 2026-12-07.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://")
            || self.0.starts_with("postgresql://")
            || (!self.0.contains("://")
                && self
                    .0
                    .split_whitespace()
                    .next()
                    .is_some_and(|word| word.contains('=')))
    }

    /// The URL without user name and password, for messages: also a password given as a
    /// query parameter (`?password=…`, libpq's `sslpassword`) is masked.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            // libpq's keywords: where it goes (host, port, database) and nothing else, so
            // that no part of a password (quoted, with spaces) can show.
            let shown: Vec<&str> = self
                .0
                .split_whitespace()
                .filter(|w| {
                    w.split_once('=').is_some_and(|(k, v)| {
                        matches!(k, "host" | "hostaddr" | "port" | "dbname")
                            && !v.starts_with(['\'', '"'])
                    })
                })
                .collect();
            return if shown.is_empty() {
                "<database URL>".to_owned()
            } else {
                format!("<database {}>", shown.join(" "))
            };
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let mut url = match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => format!("{scheme}://{rest}"),
        };
        if let Some(query) = query {
            url.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    url.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                        url.push_str(name);
                        url.push_str("=…");
                    }
                    _ => url.push_str(pair),
                }
            }
        }
        url
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<DatabaseUrl, String> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An SMTP server URL; its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SmtpUrl(pub String);

impl SmtpUrl {
    /// The URL without user name and password, for messages.
    pub fn redacted(&self) -> String {
        DatabaseUrl(self.0.clone()).redacted()
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<SmtpUrl, String> {
        Ok(SmtpUrl(s.to_owned()))
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpUrl({})", self.redacted())
    }
}

impl std::fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where the portal's mail goes besides the mailbox.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub url: SmtpUrl,
    /// `Name <address>` or an address.
    pub from: String,
}

/// The sender when none is configured.
pub const DEFAULT_MAIL_FROM: &str = "Mkoba <no-reply@mkoba.local>";

/// Everything the server runs with, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    /// PostgreSQL instead of SQLite in `data`.
    pub database_url: Option<DatabaseUrl>,
    /// SQLite's tuning (the WAL's size).
    pub sqlite: mkoba_store_sqlite::SqliteOptions,
    /// On PostgreSQL, who this node is to the others sharing the database.
    pub node: mkoba_store_postgres::NodeOptions,
    pub listen: SocketAddr,
    /// `/metrics` on its own address instead of the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// HTTPS on the main listener and the v1x ports.
    pub tls: Option<crate::tls::TlsSettings>,
    /// A plain-HTTP listener beside an HTTPS one.
    pub plain_listen: Option<SocketAddr>,
    pub platform: PlatformConfig,
    pub momo: MomoConfig,
    pub dispatcher: DispatcherConfig,
    pub portal: mkoba_portal::PortalConfig,
    pub mpesa: mkoba_mpesa::MpesaConfig,
    /// The M-Pesa private key file; `None` keeps it in the data directory.
    pub mpesa_key_file: Option<PathBuf>,
    /// The M-Pesa v1x APIs served on a port of their own (0: any free port), besides
    /// `/ipg/v1x/` on the main listener.
    pub mpesa_v1x_ports: Vec<(&'static mkoba_mpesa::catalogue::Operation, u16)>,
    /// SMTP for the portal's mail; `None` keeps it in the mailbox only.
    pub smtp: Option<SmtpSettings>,
    /// Limits of every HTTP connection.
    pub connections: crate::listener::ConnectionLimits,
    /// Sign-in, password reset, sign-up and M-Pesa key failure limits; password hashing.
    pub throttle: mkoba_platform::throttle::ThrottleLimits,
    /// `--profile production`: no passwords in the banner, no sandbox mailbox, no
    /// callbacks to loopback.
    pub production: bool,
    /// Fault injection (tests): the journal's commits fail while the switch is on, as on a
    /// full disk.
    pub faults: Option<mkoba_platform::faults::Faults>,
}

impl Settings {
    /// Defaults with the given data directory and listen address (tests use port 0).
    pub fn new(data: impl Into<PathBuf>, listen: SocketAddr) -> Settings {
        Settings {
            data: data.into(),
            database_url: None,
            sqlite: mkoba_store_sqlite::SqliteOptions::default(),
            node: mkoba_store_postgres::NodeOptions::default(),
            listen,
            metrics_listen: None,
            tls: None,
            plain_listen: None,
            platform: PlatformConfig::default(),
            momo: MomoConfig::default(),
            dispatcher: DispatcherConfig::default(),
            portal: mkoba_portal::PortalConfig {
                sandbox_mailbox: true,
                ..mkoba_portal::PortalConfig::default()
            },
            mpesa: mkoba_mpesa::MpesaConfig::default(),
            mpesa_key_file: None,
            connections: crate::listener::ConnectionLimits::default(),
            throttle: mkoba_platform::throttle::ThrottleLimits::default(),
            mpesa_v1x_ports: Vec::new(),
            smtp: None,
            production: false,
            faults: None,
        }
    }

    /// Resolves the layers.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        macro_rules! pick {
            ($field:ident) => {
                args.$field.clone().or(file.$field.clone())
            };
        }
        macro_rules! pick_limit {
            ($field:ident) => {
                args.limits.$field.clone().or(file.$field.clone())
            };
        }
        let mut s = Settings::new(
            pick!(data).unwrap_or_else(|| PathBuf::from("./mkoba-data")),
            pick!(listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        );
        if let Some(v) = pick!(token_ttl_secs) {
            anyhow::ensure!(v > 0, "token_ttl_secs must be positive");
            s.platform.token_ttl = span("token_ttl_secs", v, 1000)?;
        }
        if let Some(v) = pick!(settle_delay_ms) {
            s.platform.settle_delay = span("settle_delay_ms", v, 1)?;
        }
        if let Some(v) = pick!(delivery_notification_window_secs) {
            s.platform.delivery_notification_window =
                span("delivery_notification_window_secs", v, 1000)?;
        }
        if let Some(v) = pick!(opening_balance) {
            let eur = mkoba_ledger::Currency::parse("EUR").expect("valid code");
            mkoba_ledger::Money::parse_positive(&v, eur)
                .with_context(|| format!("opening_balance {v:?}"))?;
            s.platform.opening_balance = v;
        }
        if let Some(v) = pick!(partner_float) {
            let eur = mkoba_ledger::Currency::parse("EUR").expect("valid code");
            mkoba_ledger::Money::parse_positive(&v, eur)
                .with_context(|| format!("partner_float {v:?}"))?;
            s.platform.partner_float = v;
        }
        if let Some(v) = pick!(callback_method) {
            s.platform.callback_method = CallbackMethod::parse(&v)
                .with_context(|| format!("callback_method must be PUT or POST, got {v:?}"))?;
        }
        if let Some(v) = pick!(callback_retry_secs) {
            s.dispatcher.retry_schedule = v
                .into_iter()
                .map(|v| span("callback_retry_secs", v, 1000))
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = pick!(callback_timeout_ms) {
            s.dispatcher.timeout = span("callback_timeout_ms", v.max(1), 1)?;
        }
        s.metrics_listen = pick!(metrics_listen);
        let (cert, key) = (pick!(tls_cert), pick!(tls_key));
        if pick!(tls).unwrap_or(false) || cert.is_some() || key.is_some() {
            // Named by the one that is missing (the flag-naming turns the first word into
            // its flag, file key and variable).
            anyhow::ensure!(
                cert.is_some() || key.is_none(),
                "tls_cert is needed with tls_key (or neither: the local CA issues the certificate)"
            );
            anyhow::ensure!(
                key.is_some() || cert.is_none(),
                "tls_key is needed with tls_cert (or neither: the local CA issues the certificate)"
            );
            s.tls = Some(crate::tls::TlsSettings {
                cert,
                key,
                hosts: pick!(tls_host).unwrap_or_default(),
            });
        }
        s.plain_listen = pick!(plain_listen);
        s.production = match pick!(profile).as_deref() {
            None | Some("sandbox") => false,
            Some("production") => true,
            Some(other) => anyhow::bail!("profile must be sandbox or production, got {other:?}"),
        };
        // A server others reach sends no callback to its own machine.
        s.dispatcher.allow_loopback = !s.production;
        if let Some(v) = pick!(callback_allow_private) {
            s.dispatcher.allow_private = v;
        }
        if let Some(v) = pick!(callback_ca_file) {
            s.dispatcher.extra_roots =
                mkoba_webhooks::load_roots(&v).map_err(|e| anyhow::anyhow!(e))?;
        }
        if let Some(v) = pick!(reason_format) {
            s.momo.reason_format = match v.as_str() {
                "string" => ReasonFormat::String,
                "object" => ReasonFormat::Object,
                _ => anyhow::bail!("reason_format must be string or object, got {v:?}"),
            };
        }
        // Over HTTPS alone, cookies are Secure unless told otherwise; beside a plain
        // listener they are not (a browser on the plain one would lose its sign-in).
        s.portal.secure_cookies =
            pick!(portal_secure_cookies).unwrap_or(s.tls.is_some() && s.plain_listen.is_none());
        if let Some(v) = pick!(public_url) {
            let v = v.trim().trim_end_matches('/').to_owned();
            anyhow::ensure!(
                (v.starts_with("http://") || v.starts_with("https://"))
                    && !v.contains(['?', '#', ' ']),
                "public_url must be an http:// or https:// address without query, got {v:?}"
            );
            s.portal.public_url = v;
        }
        // Empty is unset (`MKOBA_SMTP_URL=` in a compose file or a unit).
        if let Some(url) = pick!(smtp_url).filter(|u| !u.0.trim().is_empty()) {
            anyhow::ensure!(
                url.0.starts_with("smtp://") || url.0.starts_with("smtps://"),
                "smtp_url must start with smtp:// or smtps://, got {}",
                // Only the scheme: the rest may hold a password.
                match url.0.split_once("://") {
                    Some((scheme, _)) => format!("{scheme}://…"),
                    None => "no scheme".to_owned(),
                }
            );
            let from = pick!(mail_from).unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned());
            crate::mail::check_settings(&url, &from)?;
            s.smtp = Some(SmtpSettings { url, from });
        }
        s.portal.sandbox_mailbox =
            pick!(sandbox_mailbox).unwrap_or(s.smtp.is_none() && !s.production);
        s.platform.mail_delivery = s.smtp.is_some();
        if let Some(v) = pick!(mpesa_session_activation_ms) {
            s.mpesa.session_activation = span("mpesa_session_activation_ms", v, 1)?;
        }
        if let Some(v) = pick!(mpesa_sync_timeout_ms) {
            s.mpesa.sync_timeout = span("mpesa_sync_timeout_ms", v.max(1), 1)?;
        }
        if let Some(v) = pick!(mpesa_insecure_result_urls) {
            s.mpesa.insecure_result_urls = v;
        }
        s.mpesa_key_file = pick!(mpesa_key_file);
        if let Some(v) = pick_limit!(header_read_timeout_ms) {
            anyhow::ensure!(v > 0, "header_read_timeout_ms must be positive");
            s.connections.header_read = span("header_read_timeout_ms", v, 1)?;
        }
        if let Some(v) = pick_limit!(max_connections_per_client) {
            anyhow::ensure!(v > 0, "max_connections_per_client must be positive");
            s.connections.per_client = v;
        }
        if let Some(v) = pick_limit!(max_connections) {
            anyhow::ensure!(v > 0, "max_connections must be positive");
            s.connections.total = v;
        }
        if let Some(v) = pick_limit!(mpesa_rsa_workers) {
            anyhow::ensure!(v > 0, "mpesa_rsa_workers must be positive");
            s.mpesa.rsa.workers = v;
        }
        if let Some(v) = pick_limit!(mpesa_rsa_queue) {
            s.mpesa.rsa.queue = v;
        }
        if let Some(v) = pick!(mpesa_v1x_ports) {
            s.mpesa_v1x_ports = parse_v1x_ports(&v)?;
        }
        let rate = |name: &str, v: String| {
            v.parse::<mkoba_platform::throttle::Rate>()
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))
        };
        let t = &mut s.throttle;
        if let Some(v) = pick_limit!(signin_limit_account) {
            t.sign_in_per_account = rate("signin_limit_account", v)?;
        }
        if let Some(v) = pick_limit!(signin_limit_address) {
            t.sign_in_per_address = rate("signin_limit_address", v)?;
        }
        if let Some(v) = pick_limit!(reset_limit_account) {
            t.reset_per_account = rate("reset_limit_account", v)?;
        }
        if let Some(v) = pick_limit!(reset_limit_address) {
            t.reset_per_address = rate("reset_limit_address", v)?;
        }
        if let Some(v) = pick_limit!(signup_limit_address) {
            t.sign_up_per_address = rate("signup_limit_address", v)?;
        }
        if let Some(v) = pick_limit!(mpesa_key_failure_limit) {
            t.mpesa_key_failures_per_address = rate("mpesa_key_failure_limit", v)?;
        }
        if let Some(v) = pick_limit!(password_hash_workers) {
            anyhow::ensure!(v > 0, "password_hash_workers must be positive");
            t.password_hash_workers = v;
            t.password_hash_queue = v * mkoba_platform::throttle::HASH_QUEUE_PER_WORKER;
        }
        if let Some(v) = pick_limit!(password_hash_queue) {
            t.password_hash_queue = v;
        }
        if let Some(v) = pick_limit!(writer_queue) {
            anyhow::ensure!(v > 0, "writer_queue must be positive");
            s.platform.max_queued = v;
        }
        if let Some(v) = pick_limit!(read_queue) {
            anyhow::ensure!(v > 0, "read_queue must be positive");
            s.platform.read_queue = v;
        }
        if let Some(v) = pick_limit!(callbacks_in_memory) {
            anyhow::ensure!(v > 0, "callbacks_in_memory must be positive");
            s.platform.callbacks_in_memory = v;
        }
        if let Some(v) = pick_limit!(wallets_in_memory) {
            anyhow::ensure!(v > 0, "wallets_in_memory must be positive");
            s.platform.wallets_in_memory = v;
        }
        if let Some(v) = pick_limit!(max_pending_payments) {
            anyhow::ensure!(v > 0, "max_pending_payments must be positive");
            s.platform.pending_in_memory = v;
        }
        if let Some(v) = pick_limit!(max_pending_per_developer) {
            anyhow::ensure!(v > 0, "max_pending_per_developer must be positive");
            s.platform.pending_per_developer = Some(v);
        }
        if let Some(v) = pick_limit!(sqlite_wal_mib) {
            anyhow::ensure!(
                (1..=1 << 20).contains(&v),
                "sqlite_wal_mib must be between 1 and 1048576"
            );
            s.sqlite.wal_limit_bytes = v << 20;
        }
        if let Some(v) = pick_limit!(sqlite_refs_behind) {
            anyhow::ensure!(
                (1..=1 << 24).contains(&v),
                "sqlite_refs_behind must be between 1 and 16777216"
            );
            s.sqlite.refs_behind = v;
        }
        // Empty is unset: SQLite, as without it.
        if let Some(url) = pick!(database_url).filter(|u| !u.0.trim().is_empty()) {
            anyhow::ensure!(
                url.is_postgres(),
                "database_url must be a PostgreSQL connection string, postgres://… or postgresql://… or libpq's keywords (host=… user=… dbname=…); leave it unset for SQLite in the data directory. Got {url}"
            );
            s.database_url = Some(url);
        }
        if let Some(id) = pick!(node_id) {
            // Printed in banners and logs and compared exactly: `x ` beside `x` would be
            // another node.
            let shown: String = id.chars().take(40).collect();
            let more = if shown.len() < id.len() { "…" } else { "" };
            anyhow::ensure!(
                (1..=100).contains(&id.chars().count())
                    && id.trim() == id
                    && !id.chars().any(char::is_control),
                "node_id must be 1 to 100 characters, without spaces at either end or control characters, got {shown:?}{more}"
            );
            s.node.id = id;
        }
        if let Some(v) = pick!(node_lease_secs) {
            anyhow::ensure!(
                (2..=86_400).contains(&v),
                "node_lease_secs must be from 2 (a node beats four times a lease, at most every second) to 86400, got {v}"
            );
            s.node.lease = Duration::from_secs(v);
        }
        Ok(s)
    }
}

/// `--mpesa-v1x-ports`: `on` (every API on the real gateway's port), `off`, or
/// `api=port` pairs, the APIs named `c2b`, `b2c`, `b2b`, `reversal`, `status`, `name`.
pub fn parse_v1x_ports(
    value: &str,
) -> anyhow::Result<Vec<(&'static mkoba_mpesa::catalogue::Operation, u16)>> {
    use mkoba_mpesa::catalogue;
    let value = value.trim();
    match value {
        "on" | "true" => {
            return Ok(catalogue::v1x()
                .map(|o| (o, o.port.expect("every v1x API has a port")))
                .collect());
        }
        "off" | "false" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let names = || {
        catalogue::v1x()
            .map(|o| o.api.port_key())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<(&'static catalogue::Operation, u16)> = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, port) = pair.split_once('=').with_context(|| {
            format!("mpesa_v1x_ports: {pair:?} is not api=port (or use on / off)")
        })?;
        let op = catalogue::v1x()
            .find(|o| o.api.port_key() == name.trim())
            .with_context(|| {
                format!(
                    "mpesa_v1x_ports: unknown API {:?}; the APIs are {}",
                    name.trim(),
                    names()
                )
            })?;
        let port: u16 = port
            .trim()
            .parse()
            .with_context(|| format!("mpesa_v1x_ports: {pair:?}: the port must be 0 to 65535"))?;
        anyhow::ensure!(
            !out.iter().any(|(o, _)| std::ptr::eq(*o, op)),
            "mpesa_v1x_ports: {} is given twice",
            name.trim()
        );
        out.push((op, port));
    }
    Ok(out)
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing configuration file {}", path.display()))
}

/// A time span setting of `value` units of `unit_ms` milliseconds, at most ten years.
/// Spans are added to the platform's times (a token's expiry, a settlement, a retry): one
/// past that, up to `u64::MAX`, wrapped round or ran past the calendar (a token expired in
/// 1970, a settle delay that settled at once, a retry before its attempt).
fn span(name: &str, value: u64, unit_ms: u64) -> anyhow::Result<Duration> {
    const MAX_MS: u64 = 3_660 * 86_400 * 1000;
    let max = MAX_MS / unit_ms;
    anyhow::ensure!(
        value <= max,
        "{name} must be at most {max} (ten years), got {value}"
    );
    Ok(Duration::from_millis(value * unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mkoba.toml");
        std::fs::write(
            &path,
            "settle_delay_ms = 250\ntoken_ttl_secs = 60\nreason_format = \"object\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            token_ttl_secs: Some(5),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.platform.settle_delay, Duration::from_millis(250));
        assert_eq!(s.platform.token_ttl, Duration::from_secs(5));
        assert_eq!(s.momo.reason_format, ReasonFormat::Object);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data, PathBuf::from("./mkoba-data"));
    }

    #[test]
    fn database_urls_never_show_their_password() {
        let url: DatabaseUrl = "postgres://mkoba:s3cret@db.example:5432/mkoba"
            .parse()
            .unwrap();
        assert!(url.is_postgres());
        assert_eq!(url.to_string(), "postgres://…@db.example:5432/mkoba");
        let url: DatabaseUrl =
            "postgres://db.example/mkoba?user=app&password=hunter2&sslmode=require&sslpassword=x%40y"
                .parse()
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://db.example/mkoba?user=app&password=…&sslmode=require&sslpassword=…"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!format!("{url:?}").contains("s3cret"));
        let args = ServeArgs {
            database_url: Some("mysql://x".parse().unwrap()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).is_err());
        // libpq's keyword form, as `mkoba migrate` takes it.
        let keywords = "host=127.0.0.1 port=5432 user=mkoba password=hunter2 dbname=mkoba";
        let args = ServeArgs {
            database_url: Some(keywords.parse().unwrap()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).expect("the keyword form is a PostgreSQL URL");
        let url = s.database_url.expect("kept");
        assert_eq!(
            url.to_string(),
            "<database host=127.0.0.1 port=5432 dbname=mkoba>"
        );
        let quoted: DatabaseUrl = "host=db password='a b c' dbname=x".parse().unwrap();
        assert_eq!(quoted.to_string(), "<database host=db dbname=x>");
        // Empty, as `MKOBA_DATABASE_URL=` gives it, is unset: SQLite.
        let args = ServeArgs {
            database_url: Some("".parse().unwrap()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).unwrap().database_url.is_none());
        for not_postgres in ["mysql://x", "./data", ""] {
            let url: Result<DatabaseUrl, _> = not_postgres.parse();
            assert!(url.is_ok_and(|u| !u.is_postgres()), "{not_postgres:?}");
        }
    }

    #[test]
    fn node_ids_are_plain_and_short() {
        let id = |id: &str| {
            Settings::resolve(&ServeArgs {
                node_id: Some(id.to_owned()),
                ..ServeArgs::default()
            })
            .map(|s| s.node.id)
            .map_err(|e| e.to_string())
        };
        assert_eq!(id("clinic-a").unwrap(), "clinic-a");
        // A hundred characters, not bytes.
        assert!(id(&"é".repeat(100)).is_ok());
        for bad in ["", " ", "x ", " x", "a\tb", "a\nb"] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
        // A long one is refused without being printed whole.
        let e = id(&"x".repeat(5_000)).unwrap_err();
        assert!(e.contains("1 to 100 characters") && e.len() < 300, "{e}");
    }

    #[test]
    fn v1x_ports_are_on_off_or_a_list() {
        let on = parse_v1x_ports("on").unwrap();
        assert_eq!(on.len(), 6);
        assert!(
            on.iter()
                .any(|(o, p)| o.api.port_key() == "c2b" && *p == 18352)
        );
        assert!(parse_v1x_ports("off").unwrap().is_empty());
        let some = parse_v1x_ports("c2b=0, name=19999").unwrap();
        assert_eq!(some.len(), 2);
        assert_eq!(some[1].1, 19999);
        for bad in ["c2b", "x=1", "c2b=70000", "c2b=1,c2b=2"] {
            assert!(parse_v1x_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn portal_cookies_and_mail_links_follow_https() {
        let secure = |args: ServeArgs| Settings::resolve(&args).unwrap().portal.secure_cookies;
        assert!(!secure(ServeArgs::default()));
        assert!(secure(ServeArgs {
            tls: Some(true),
            ..ServeArgs::default()
        }));
        // Beside a plain listener a browser there would lose its sign-in.
        assert!(!secure(ServeArgs {
            tls: Some(true),
            plain_listen: Some("127.0.0.1:8081".parse().unwrap()),
            ..ServeArgs::default()
        }));
        assert!(!secure(ServeArgs {
            tls: Some(true),
            portal_secure_cookies: Some(false),
            ..ServeArgs::default()
        }));
        assert!(secure(ServeArgs {
            portal_secure_cookies: Some(true),
            ..ServeArgs::default()
        }));
        // Links in mail go where the main listener speaks: https:// with --tls (they went
        // to http:// on a port that answers only TLS).
        let public =
            |args: ServeArgs| crate::portal_config(&Settings::resolve(&args).unwrap()).public_url;
        assert_eq!(public(ServeArgs::default()), "http://127.0.0.1:8080");
        assert_eq!(
            public(ServeArgs {
                tls: Some(true),
                ..ServeArgs::default()
            }),
            "https://127.0.0.1:8080"
        );
    }

    #[test]
    fn the_production_profile_turns_the_sandbox_defaults_off() {
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert!(!s.production && s.portal.sandbox_mailbox && s.dispatcher.allow_loopback);
        let args = ServeArgs {
            profile: Some("production".into()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert!(s.production);
        assert!(!s.portal.sandbox_mailbox, "no sandbox mailbox");
        assert!(!s.dispatcher.allow_loopback, "no callbacks to loopback");
        let args = ServeArgs {
            profile: Some("staging".into()),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&args).unwrap_err().to_string();
        assert!(e.contains("profile must be sandbox or production"), "{e}");
    }

    #[test]
    fn smtp_urls_never_show_their_password_and_turn_the_sandbox_mailbox_off() {
        let args = ServeArgs {
            smtp_url: Some(
                "smtp://mailer:pa55@mail.example:587?tls=required"
                    .parse()
                    .unwrap(),
            ),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        let smtp = s.smtp.as_ref().unwrap();
        assert!(!format!("{smtp:?}").contains("pa55"));
        assert_eq!(
            smtp.url.to_string(),
            "smtp://…@mail.example:587?tls=required"
        );
        assert_eq!(smtp.from, DEFAULT_MAIL_FROM);
        assert!(!s.portal.sandbox_mailbox);
        assert!(s.platform.mail_delivery);
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert!(s.smtp.is_none() && s.portal.sandbox_mailbox && !s.platform.mail_delivery);
        // A password is not sent in clear unless the URL says so.
        for (url, sent) in [
            ("smtp://mailer:pa55@mail.example:587", None),
            (
                "smtp://mailer:pa55@127.0.0.1:25?tls=none",
                Some("smtp://mailer:pa55@127.0.0.1:25"),
            ),
            ("smtp://127.0.0.1:25", Some("smtp://127.0.0.1:25")),
            (
                "smtp://127.0.0.1:25/ehlo?tls=none&x=1",
                Some("smtp://127.0.0.1:25/ehlo?x=1"),
            ),
        ] {
            let args = ServeArgs {
                smtp_url: Some(url.parse().unwrap()),
                ..ServeArgs::default()
            };
            match (Settings::resolve(&args), sent) {
                (Err(e), None) => {
                    let e = format!("{e:#}");
                    assert!(e.contains("unencrypted") && !e.contains("pa55"), "{e}");
                }
                (Ok(s), Some(sent)) => {
                    assert_eq!(
                        crate::mail::transport_url(&s.smtp.unwrap().url).unwrap(),
                        sent
                    );
                }
                (r, _) => panic!("{url}: {:?}", r.map(|_| ())),
            }
        }
        for bad in [
            "http://mail.example",
            "smtp://mail.example:587?tls=sometimes",
        ] {
            let args = ServeArgs {
                smtp_url: Some(bad.parse().unwrap()),
                ..ServeArgs::default()
            };
            assert!(Settings::resolve(&args).is_err(), "{bad}");
        }
        let args = ServeArgs {
            public_url: Some("ftp://x".into()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).is_err());
    }

    #[test]
    fn throttle_limits_come_from_flags_and_the_file() {
        use mkoba_platform::throttle::{Rate, ThrottleLimits};
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(s.throttle, ThrottleLimits::default());
        assert_eq!(s.throttle.sign_in_per_account.to_string(), "10/15m");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mkoba.toml");
        std::fs::write(
            &path,
            "signin_limit_account = \"3/1m\"\nmpesa_key_failure_limit = \"off\"\npassword_hash_workers = 2\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            limits: Box::new(LimitArgs {
                signup_limit_address: Some("5/1h".into()),
                password_hash_queue: Some(1),
                ..LimitArgs::default()
            }),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        let t = &s.throttle;
        assert_eq!(t.sign_in_per_account, Rate::new(3, Duration::from_secs(60)));
        assert!(t.mpesa_key_failures_per_address.is_off());
        assert_eq!(
            t.sign_up_per_address,
            Rate::new(5, Duration::from_secs(3600))
        );
        assert_eq!((t.password_hash_workers, t.password_hash_queue), (2, 1));
        for bad in [
            LimitArgs {
                signin_limit_address: Some("lots".into()),
                ..LimitArgs::default()
            },
            LimitArgs {
                password_hash_workers: Some(0),
                ..LimitArgs::default()
            },
        ] {
            let bad = ServeArgs {
                limits: Box::new(bad),
                ..ServeArgs::default()
            };
            assert!(Settings::resolve(&bad).is_err());
        }
    }

    /// The bounds on connections and open payments, as an operator gives them: flags on the
    /// command line (parsed as `mkoba serve` parses them), or keys of the file.
    #[test]
    fn the_connection_and_pending_payment_bounds_come_from_flags_and_the_file() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(
            (s.connections.total, s.platform.pending_in_memory),
            (10_000, 200_000)
        );
        let parsed = <Serve as clap::Parser>::try_parse_from([
            "serve",
            "--max-connections",
            "9",
            "--max-pending-payments",
            "7",
        ])
        .unwrap();
        let s = Settings::resolve(&parsed.args).unwrap();
        assert_eq!((s.connections.total, s.platform.pending_in_memory), (9, 7));
        // A developer's share: half of the bound unless given.
        assert_eq!(s.platform.pending_per_developer, None);
        let parsed =
            <Serve as clap::Parser>::try_parse_from(["serve", "--max-pending-per-developer", "5"])
                .unwrap();
        let s = Settings::resolve(&parsed.args).unwrap();
        assert_eq!(s.platform.pending_per_developer, Some(5));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mkoba.toml");
        std::fs::write(&path, "max_connections = 3\nmax_pending_payments = 4\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!((s.connections.total, s.platform.pending_in_memory), (3, 4));
        let zero =
            <Serve as clap::Parser>::try_parse_from(["serve", "--max-connections", "0"]).unwrap();
        assert!(Settings::resolve(&zero.args).is_err());
    }

    #[test]
    fn a_switch_given_without_a_value_is_on() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let parsed = <Serve as clap::Parser>::try_parse_from([
            "serve",
            "--mpesa-insecure-result-urls",
            "--callback-allow-private",
            "--portal-secure-cookies",
            "--sandbox-mailbox",
            "false",
            "--listen",
            "127.0.0.1:9",
        ])
        .unwrap();
        let a = &parsed.args;
        assert_eq!(
            (
                a.mpesa_insecure_result_urls,
                a.callback_allow_private,
                a.portal_secure_cookies,
                a.sandbox_mailbox,
            ),
            (Some(true), Some(true), Some(true), Some(false))
        );
        let s = Settings::resolve(a).unwrap();
        assert!(s.mpesa.insecure_result_urls);
    }

    #[test]
    fn the_delivery_notification_window_is_a_day_unless_given() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(
            s.platform.delivery_notification_window,
            Duration::from_secs(86_400)
        );
        let parsed = <Serve as clap::Parser>::try_parse_from([
            "serve",
            "--delivery-notification-window-secs",
            "60",
        ])
        .unwrap();
        let s = Settings::resolve(&parsed.args).unwrap();
        assert_eq!(
            s.platform.delivery_notification_window,
            Duration::from_secs(60)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mkoba.toml");
        std::fs::write(&path, "delivery_notification_window_secs = 600\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(
            s.platform.delivery_notification_window,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mkoba.toml");
        std::fs::write(&path, "settle_delay = 5\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).is_err());
        let args = ServeArgs {
            callback_method: Some("GET".into()),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).is_err());
    }
}
