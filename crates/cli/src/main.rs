//! The `mkoba` binary: parses arguments and calls the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mkoba::{ServeArgs, Settings, bench};
use mkoba_platform::model::{KeySlot, Product};

/// mimalloc instead of glibc's allocator: over a million payments with a million payers
/// (wallets dropped from memory and new ones made all the time) the server completed a
/// quarter more lifecycles per second (`docs/architecture.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives glibc's `malloc` one arena, unless `MALLOC_ARENA_MAX` says otherwise. Rust's
/// allocations go to mimalloc, but SQLite's go to `malloc`, from the writer's and the
/// readers' threads; with an arena per thread glibc kept what each freed: after a restart
/// on 1.2 million payments, four runs left 131 MiB resident instead of 115
/// (`docs/operations.md` §Memory).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of the allocator; it is called first
        // thing in `main`, before any thread that could allocate exists.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in `mimalloc.h`; the
/// `libmimalloc-sys` crate names no constant for it in the version 3 it builds).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

#[allow(unsafe_code)]
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// How long mimalloc keeps memory it no longer uses before giving it back to the system,
/// milliseconds, unless `MIMALLOC_PURGE_DELAY` says otherwise (its own default is a second).
/// Giving it back at once (0) kept the peak lowest where the writer rebuilds its wallet maps
/// one after the other (`mkoba_ledger::make_room`), but under steady load it gave back and
/// took again the same pages all the time: 0.85 page faults a request-to-pay lifecycle
/// instead of 0.18; with 100 ms the server used 8 % less CPU. A tenth of a second keeps
/// memory that is freed and allocated again within moments, and gives back what stays free
/// (`docs/operations.md` §Memory).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// mimalloc's `allow_thp` option (`mi_option_allow_thp` in `mimalloc.h`), numbered as
/// `purge_delay` above.
const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// Transparent huge pages off for the process, unless `MIMALLOC_ALLOW_THP` says otherwise.
/// mimalloc asks the kernel for huge pages for its memory (`madvise(MADV_HUGEPAGE)`), and
/// a first touch anywhere in one of them makes its whole 2 MiB resident; its purges then
/// give memory back only in such units. The resident size measured that, not what the
/// server used: one CSV export of 100,000 rows on PostgreSQL left 100 MiB of huge pages
/// resident and a peak of 157 MiB, 60 MiB without them; and under load the faults that
/// fill a huge page at once showed in the latency (`docs/operations.md` §Memory).
fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores a number mimalloc reads when it next maps memory;
    // `prctl(PR_SET_THP_DISABLE)` sets a flag of this process's memory, which the kernel
    // reads at each page fault. Neither touches memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        mi_option_set(MI_OPTION_ALLOW_THP, 0);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// A command printing into a pipe whose reader has gone (`mkoba credentials | head -1`)
/// ends quietly with status 141, as a shell reports a tool that `SIGPIPE` ended, instead of
/// a panic and its backtrace in `println!`. (`SIGPIPE` itself stays ignored, Rust's
/// default: a peer that closed a socket is an error on it, not the end of the process.)
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn prompt_purge() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores a number mimalloc reads when it next purges; any
        // thread may call it at any time.
        #[allow(unsafe_code)]
        unsafe {
            mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

/// Mkoba: a self-hosted mobile-money platform (MTN MoMo Open API and M-Pesa OpenAPI).
#[derive(Debug, Parser)]
#[command(name = "mkoba", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite; no configuration needed)
    Serve(Box<ServeArgs>),
    /// Apply the database migrations this binary needs (PostgreSQL needs this before `serve`)
    Migrate {
        /// Data directory (SQLite)
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// PostgreSQL database URL (postgres://…) instead of SQLite
        #[arg(long, env = "MKOBA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<mkoba::config::DatabaseUrl>,
    },
    /// Copy a data directory (SQLite) whole, while its server runs: the database as of one commit, checked, and the M-Pesa and TLS keys beside it
    Backup {
        /// The server's data directory
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// A new directory for the copy (`mkoba serve --data` starts from it as it is)
        #[arg(long)]
        to: PathBuf,
        /// PostgreSQL keeps everything in its database: back it up with pg_dump
        #[arg(long, env = "MKOBA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<mkoba::config::DatabaseUrl>,
    },
    /// Print the sandbox developer's credentials: MoMo subscription keys, M-Pesa API key and public key, portal sign-ins
    Credentials {
        /// Data directory
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// PostgreSQL database URL of the server's nodes (postgres://…) instead of SQLite in --data
        #[arg(long, env = "MKOBA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<mkoba::config::DatabaseUrl>,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
        /// The M-Pesa private key file, when the server uses one [default: in the data directory]
        #[arg(long, env = "MKOBA_MPESA_KEY_FILE")]
        mpesa_key_file: Option<PathBuf>,
        /// The server's listen address, for the M-Pesa resource URLs
        #[arg(long, env = "MKOBA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The server's M-Pesa v1x per-API ports (as given to serve), for the resource URLs
        #[arg(long, env = "MKOBA_MPESA_V1X_PORTS", default_value = "off")]
        mpesa_v1x_ports: String,
        /// The server serves HTTPS (`serve --tls`), for the resource URLs' scheme
        #[arg(long, env = "MKOBA_TLS", num_args = 0..=1, default_missing_value = "true")]
        tls: Option<bool>,
    },
    /// MoMo client: provision a sandbox API user, get a token, pay, disburse, refund, status, balance
    Momo(mkoba::client_cli::MomoArgs),
    /// M-Pesa client: create a session, pay (C2B), pay out (B2C), reverse, read a status, show the credentials
    Mpesa(mkoba::mpesa_cli::MpesaArgs),
    /// Test clocks: an API user on time of its own; advance it to settle and expire its payments (create, list, advance, delete)
    Clock(mkoba::client_cli::ClockArgs),
    /// Measure M-Pesa C2B throughput with fresh and with reused bearers, and this machine's RSA decryptions per second
    BenchMpesa {
        #[command(flatten)]
        args: mkoba::bench_mpesa::MpesaBenchArgs,
        /// Data directory of the server (subscription key and, for the RSA figure, the private key)
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// The server's M-Pesa private key file, when it uses one
        #[arg(long, env = "MKOBA_MPESA_KEY_FILE")]
        mpesa_key_file: Option<PathBuf>,
    },
    /// Platform administration: operator accounts
    #[command(subcommand)]
    Admin(AdminCommand),
    /// HTTPS: how to trust the local certificate authority of `mkoba serve --tls` and point the providers' host names here
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Drive request-to-pay lifecycles against a running server and report throughput
    Bench {
        #[command(flatten)]
        args: bench::BenchArgs,
        /// Data directory to read the subscription key from when --subscription-key is absent
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Print how to trust the local CA (REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, the system store) and the hosts-file lines
    Trust {
        /// Data directory of the server
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// The server's address, for the port in the examples
        #[arg(long, env = "MKOBA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an operator account: reviews go-live requests, lists and deactivates accounts, reads every mailbox
    CreateOperator {
        /// The operator's e-mail (their sign-in)
        #[arg(long)]
        email: String,
        /// The operator's name
        #[arg(long, default_value = "Platform operator")]
        name: String,
        /// The password (at least 10 characters) [default: a random one, printed]
        #[arg(long, env = "MKOBA_OPERATOR_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Data directory (SQLite)
        #[arg(long, env = "MKOBA_DATA", default_value = "./mkoba-data")]
        data: PathBuf,
        /// PostgreSQL database URL (postgres://…) instead of SQLite
        #[arg(long, env = "MKOBA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<mkoba::config::DatabaseUrl>,
    },
}

fn init_logging() {
    // Empty, or nothing but commas and spaces (a unit file's `Environment=MKOBA_LOG=`), is
    // no filter: info, as when unset (read as given, it turned every line off).
    let given = std::env::var("MKOBA_LOG")
        .ok()
        .filter(|v| v.split(',').any(|d| !d.trim().is_empty()));
    if let Some(words) = given.as_deref().map(unknown_log_levels)
        && !words.is_empty()
    {
        // A bare word that is not a level is read as a target name, which turns every
        // other line off: say so rather than go quiet.
        eprintln!(
            "WARNING: MKOBA_LOG: {} is not a level (error, warn, info, debug, trace, off) and is read as a module name, so other logs are off; write a level, or module=level",
            words.join(", ")
        );
    }
    let filter = match given.as_deref().map(tracing_subscriber::EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        Some(Err(e)) => {
            eprintln!("WARNING: MKOBA_LOG is not a log filter ({e}); logging at info");
            tracing_subscriber::EnvFilter::new("info")
        }
        None => tracing_subscriber::EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The bare words of a `MKOBA_LOG` filter that are not levels (`warning`, `bogus`).
fn unknown_log_levels(filter: &str) -> Vec<String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('=') && !d.contains('['))
        .filter(|d| !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d)))
        .map(str::to_owned)
        .collect()
}

/// Runs the command. An error is for a person: `Error:` with its message and causes, never
/// a backtrace (even with `RUST_BACKTRACE` set), and exit status 2 for a usage error
/// ([`mkoba::Usage`], as the argument parser's own) or 1 for any other.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(exit_status(&e))
        }
    }
}

/// 2 for a usage error anywhere in `e`'s chain (an SDK client refusing its configuration,
/// a malformed `--url` say, is one: nothing was sent), else 1.
fn exit_status(e: &anyhow::Error) -> u8 {
    let usage = |c: &(dyn std::error::Error + 'static)| {
        c.is::<mkoba::Usage>()
            || matches!(
                c.downcast_ref::<mkoba_sdk::Error>(),
                Some(mkoba_sdk::Error::Config(_))
            )
    };
    if e.chain().any(usage) { 2 } else { 1 }
}

/// A settings error names the setting by its config-file key (`callback_method must be
/// …`), whether it came from the file, the environment or a flag: name the flag too.
fn name_the_flag(message: &str) -> String {
    let key: String = message
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    let rest = &message[key.len()..];
    // A setting's key: with an underscore, or one of the one-word keys.
    let setting = key.contains('_') || ["profile", "listen", "data", "tls"].contains(&key.as_str());
    if setting && (rest.starts_with(' ') || rest.starts_with(':')) {
        format!(
            "--{}{rest} ({key} in a config file, MKOBA_{})",
            key.replace('_', "-"),
            key.to_ascii_uppercase()
        )
    } else {
        message.to_owned()
    }
}

/// A settings error (a value the parser took but Mkoba cannot): a usage error.
fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(mkoba::Usage(format!("{e:#}")))
}

/// The source of argument `id` where the command line's innermost subcommand has it (a
/// global argument is parsed there, wherever it was typed).
fn source_of(m: &clap::ArgMatches, id: &str) -> Option<clap::parser::ValueSource> {
    m.subcommand()
        .and_then(|(_, sub)| source_of(sub, id))
        .or_else(|| {
            m.ids()
                .any(|i| i.as_str() == id)
                .then(|| m.value_source(id))
                .flatten()
        })
}

fn given_on_command_line(m: &clap::ArgMatches, id: &str) -> bool {
    source_of(m, id) == Some(clap::parser::ValueSource::CommandLine)
}

fn from_environment(m: &clap::ArgMatches, id: &str) -> bool {
    source_of(m, id) == Some(clap::parser::ValueSource::EnvVariable)
}

/// An empty `MKOBA_*` variable counts as unset, as it does for most tools (a compose file's
/// or unit's `MKOBA_SETTLE_DELAY_MS=` would otherwise stop every command with "cannot
/// parse integer from empty string").
fn empty_settings_unset() {
    let empty: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(k, v)| k.as_encoded_bytes().starts_with(b"MKOBA_") && v.is_empty())
        .map(|(k, _)| k)
        .collect();
    for k in empty {
        // SAFETY: called first thing in `main`, before any other thread exists to read the
        // environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::remove_var(k);
        }
    }
}

fn run() -> anyhow::Result<()> {
    empty_settings_unset();
    one_malloc_arena();
    prompt_purge();
    no_huge_pages();
    quiet_on_closed_pipe();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            let settings = Settings::resolve(&args)
                .map_err(|e| usage(anyhow::anyhow!(name_the_flag(&format!("{e:#}")))))?;
            runtime()?.block_on(serve(settings))
        }
        Command::Migrate { data, database_url } => {
            let created = database_url.is_none() && mkoba::creates_database(&data);
            let version = mkoba::migrate(&data, database_url.as_ref())?;
            match &database_url {
                Some(url) => println!("{url}: schema version {version}"),
                // Said, so that a mistyped --data is seen at once.
                None if created => println!(
                    "{}: no database was there: created a new one, schema version {version}",
                    data.display()
                ),
                None => println!("{}: schema version {version}", data.display()),
            }
            Ok(())
        }
        Command::Backup {
            data,
            to,
            database_url,
        } => {
            // An error is for a person: its message and what to do, no backtrace.
            if let Err(e) = backup(&data, &to, database_url.as_ref()) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Credentials {
            data,
            database_url,
            json,
            mpesa_key_file,
            listen,
            mpesa_v1x_ports,
            tls,
        } => {
            let ports: Vec<_> = mkoba::config::parse_v1x_ports(&mpesa_v1x_ports).map_err(usage)?;
            // Port 0 lets the server take a free one, which only its banner knows.
            if let Some((op, _)) = ports.iter().find(|(_, port)| *port == 0) {
                return Err(usage(anyhow::anyhow!(
                    "--mpesa-v1x-ports: the port of {} is 0, which lets the server take any free port: give the port its banner printed (it prints this command with them)",
                    op.operation_id
                )));
            }
            let source = mkoba::DataSource { data, database_url };
            let creds = mkoba::server_credentials(&source)?;
            let public_key = mkoba::mpesa_public_key(&source, mpesa_key_file.as_deref())?;
            let withdrawn = creds.sandbox_withdrawn.map(|s| match s {
                mkoba_platform::accounts::AccountStatus::Deleted => "deleted",
                _ => "deactivated",
            });
            let (keys, login, operator, mpesa_key) = (
                creds.keys,
                creds.portal,
                creds.operator,
                creds.mpesa_api_key,
            );
            let resources =
                mkoba_mpesa::catalogue::resource_urls(listen, &ports, tls.unwrap_or(false));
            if json {
                let mut out = mkoba::credentials_json(&keys);
                if let Some(l) = &login {
                    out["portal"] = serde_json::json!({"email": l.email, "password": l.password});
                }
                if let Some(o) = &operator {
                    out["operator"] = serde_json::json!({"email": o.email, "password": o.password});
                }
                if let Some(w) = withdrawn {
                    out["sandbox_developer"] = w.into();
                }
                out["mpesa"] = serde_json::json!({
                    "api_key": mpesa_key,
                    "public_key": public_key,
                    "v1x": {
                        "market": "vodacomMOZ",
                        "currency": "MZN",
                        "service_provider_code": mkoba_mpesa::V1X_SANDBOX_SHORT_CODE,
                    },
                    "resource_urls": resources,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                if let Some(w) = withdrawn {
                    println!(
                        "{:<17} the sandbox developer's account is {w} by an operator: its keys and sign-in are not printed (an operator can reactivate a deactivated one in the portal)",
                        "portal"
                    );
                }
                if let Some(l) = &login {
                    println!("{:<17} {}  password {}", "portal", l.email, l.password);
                }
                if let Some(o) = &operator {
                    println!("{:<17} {}  password {}", "operator", o.email, o.password);
                }
                match &mpesa_key {
                    Some(k) => println!("{:<17} API key {k}", "mpesa"),
                    None if withdrawn.is_some() => {
                        println!(
                            "{:<17} API key withheld (the account is not active)",
                            "mpesa"
                        )
                    }
                    None => println!(
                        "{:<17} API key not kept (issued before 2026-12-06): renew it in the portal",
                        "mpesa"
                    ),
                }
                println!("{:<17} public key {public_key}", "mpesa");
                for r in resources.iter().filter(|r| r.gateway == "v1x") {
                    println!("{:<17} {:<6} {}", "mpesa v1x", r.method, r.url());
                }
                for product in Product::ALL {
                    let key = |slot| {
                        keys.iter()
                            .find(|k| k.product == product && k.slot == slot)
                            .map_or("-", |k| k.key.as_str())
                    };
                    println!(
                        "{:<17} primary {}  secondary {}",
                        product.as_str(),
                        key(KeySlot::Primary),
                        key(KeySlot::Secondary)
                    );
                }
            }
            Ok(())
        }
        Command::Tls(TlsCommand::Trust { data, listen }) => {
            anyhow::ensure!(
                mkoba::tls::ca_path(&data).exists(),
                "no local certificate authority in {}: start `mkoba serve --tls` once (it creates one), or point --data at the server's",
                data.display()
            );
            print!("{}", mkoba::tls::trust_instructions(&data, listen.port()));
            Ok(())
        }
        Command::Admin(AdminCommand::CreateOperator {
            email,
            name,
            password,
            data,
            database_url,
        }) => {
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (
                    mkoba_platform::portal::random_token()[..20].to_owned(),
                    true,
                ),
            };
            // A mistake in what was typed is a usage error, told before the database is
            // opened.
            mkoba_platform::portal::check_operator(&email, &name, &password)
                .map_err(|e| usage(anyhow::anyhow!(e)))?;
            let id =
                mkoba::create_operator(&data, database_url.as_ref(), &email, &name, &password)?;
            println!(
                "Operator account {id} created: {}",
                email.trim().to_lowercase()
            );
            if generated {
                println!("Password: {password}");
            }
            println!("Sign in at /portal/signin; the operator's pages are at /portal/operator.");
            Ok(())
        }
        Command::Momo(mut args) => {
            if given_on_command_line(&matches, "data") {
                args.data_over_environment();
            }
            // A client error is for a person: its message and how to fix it, no backtrace.
            if let Err(e) = runtime()?.block_on(mkoba::client_cli::run(args)) {
                eprintln!("error: {e:#}");
                std::process::exit(exit_status(&e).into());
            }
            Ok(())
        }
        Command::Mpesa(mut args) => {
            if given_on_command_line(&matches, "data") {
                args.data_over_environment(|id| from_environment(&matches, id));
            }
            if let Err(e) = runtime()?.block_on(mkoba::mpesa_cli::run(args)) {
                eprintln!("error: {e:#}");
                std::process::exit(exit_status(&e).into());
            }
            Ok(())
        }
        Command::Clock(args) => {
            if let Err(e) = runtime()?.block_on(mkoba::client_cli::run_clock(args)) {
                eprintln!("error: {e:#}");
                std::process::exit(exit_status(&e).into());
            }
            Ok(())
        }
        Command::BenchMpesa {
            args,
            data,
            mpesa_key_file,
        } => {
            let key = collection_key(args.subscription_key.as_deref(), &data)?;
            let file =
                mpesa_key_file.unwrap_or_else(|| data.join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE));
            let private = std::fs::read(&file)
                .ok()
                .and_then(|pem| mkoba_mpesa::PlatformKey::from_pem(&pem).ok())
                .map(std::sync::Arc::new);
            let json = args.json;
            let report = runtime()?.block_on(mkoba::bench_mpesa::run(args, key, private))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                report.print_human();
            }
            // The report is printed either way; a script or CI job sees the failure.
            match report.failures() {
                Some(what) => Err(anyhow::anyhow!("the run did not go through whole: {what}")),
                None => Ok(()),
            }
        }
        Command::Bench { mut args, data } => {
            let key = collection_key(args.subscription_key.as_deref(), &data)?;
            if args.operator.is_none() && data.exists() {
                args.operator = mkoba::operator_login(&data)
                    .ok()
                    .flatten()
                    .map(|l| format!("{}:{}", l.email, l.password));
            }
            let json = args.json;
            let report = runtime()?.block_on(bench::run(args, key))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                report.print_human();
            }
            // The report is printed either way; a script or CI job sees the failure.
            match report.failures() {
                Some(what) => Err(anyhow::anyhow!("the run did not go through whole: {what}")),
                None => Ok(()),
            }
        }
    }
}

/// `mkoba backup`: the SQLite data directory `data` copied into `to`
/// (`mkoba_store_sqlite::backup`).
fn backup(
    data: &std::path::Path,
    to: &std::path::Path,
    database_url: Option<&mkoba::config::DatabaseUrl>,
) -> anyhow::Result<()> {
    if let Some(url) = database_url {
        anyhow::bail!(
            "{} is PostgreSQL, which keeps everything (the M-Pesa key pair too) in its database: back it up with pg_dump (docs/postgres.md)",
            url.redacted()
        );
    }
    let started = std::time::Instant::now();
    let report = mkoba_store_sqlite::backup(data, to)
        .with_context(|| format!("backing up {}", data.display()))?;
    println!(
        "Backed up {} to {} in {:.1} s: the database ({:.1} MB, schema version {}, {} payments; checked) and {}.",
        data.display(),
        to.display(),
        started.elapsed().as_secs_f64(),
        report.database_bytes as f64 / 1e6,
        report.schema_version,
        report.payments,
        match report.files.len() {
            0 => "no other file".to_owned(),
            _ => listed(&report.files),
        }
    );
    if !report.skipped.is_empty() {
        println!(
            "Not copied (links to directories, or to nothing): {}.",
            listed(&report.skipped)
        );
    }
    if !report
        .files
        .iter()
        .any(|f| f.as_os_str() == mkoba_mpesa::rsa::PRIVATE_KEY_FILE)
    {
        println!(
            "No {} in {}: if the server reads its M-Pesa key from --mpesa-key-file, back that file up too.",
            mkoba_mpesa::rsa::PRIVATE_KEY_FILE,
            data.display()
        );
    }
    println!(
        "Start a server on the copy: mkoba serve --data {}",
        to.display()
    );
    Ok(())
}

/// Paths as a comma-separated list.
fn listed(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The given subscription key, or the sandbox developer's primary collection key.
fn collection_key(given: Option<&str>, data: &std::path::Path) -> anyhow::Result<String> {
    match given {
        Some(k) => Ok(k.to_owned()),
        None => mkoba::credentials(data)?
            .into_iter()
            .find(|k| k.product == Product::Collection && k.slot == KeySlot::Primary)
            .map(|k| k.key)
            .context("no collection subscription key found"),
    }
}

/// The `mkoba credentials` command that lists this server's credentials and resource URLs:
/// the flags it needs to agree with the running server (its address, the v1x ports as
/// bound, the database, the key file), the database URL by its variable, never its text.
fn credentials_command(
    data: &std::path::Path,
    postgres: bool,
    key_file: Option<&std::path::Path>,
    running: &mkoba::Running,
) -> String {
    let quoted = |p: &std::path::Path| {
        let p = p.display().to_string();
        if p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c))
        {
            p
        } else {
            format!("'{}'", p.replace('\'', r"'\''"))
        }
    };
    let mut command = format!("mkoba credentials --data {}", quoted(data));
    if postgres {
        // The URL holds a password, never printed: the variable when that is where it came
        // from, else a place for it (the variable's name alone failed, unset).
        if std::env::var_os("MKOBA_DATABASE_URL").is_some() {
            command.push_str(" --database-url \"$MKOBA_DATABASE_URL\"");
        } else {
            command.push_str(" --database-url '<the database URL>'");
        }
    }
    if let Some(file) = key_file {
        command.push_str(&format!(" --mpesa-key-file {}", quoted(file)));
    }
    if running.addr.to_string() != "127.0.0.1:8080" {
        command.push_str(&format!(" --listen {}", running.addr));
    }
    if running.tls {
        command.push_str(" --tls");
    }
    if !running.mpesa_v1x.is_empty() {
        let ports: Vec<String> = running
            .mpesa_v1x
            .iter()
            .map(|(op, addr)| format!("{}={}", op.api.port_key(), addr.port()))
            .collect();
        command.push_str(&format!(" --mpesa-v1x-ports {}", ports.join(",")));
    }
    command
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Raises the soft limit on open files to the hard one (as Go's runtime does for its
/// servers), and warns when `--max-connections` does not fit under it: past the limit,
/// accepting fails (logged once a second) where the listener's own bound would close a new
/// connection cleanly.
fn open_file_limit(max_connections: usize) {
    // Files besides the connections: the database and its WAL, readers, the callback
    // client's connections, PostgreSQL's, the logs.
    const OTHER_FILES: u64 = 512;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the `rlimit` struct we pass, nothing
    // else.
    #[allow(unsafe_code)]
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let wanted = max_connections as u64 + OTHER_FILES;
    if soft < wanted {
        eprintln!(
            "WARNING: the open-file limit is {soft}, below --max-connections {max_connections} and about {OTHER_FILES} other files: past it new connections fail to be accepted. Raise the limit (ulimit -n, LimitNOFILE= in a systemd unit) or lower --max-connections (docs/operations.md)."
        );
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut stop_signals = StopSignals::new();
    open_file_limit(settings.connections.total);
    let data = settings.data.clone();
    let database = match &settings.database_url {
        Some(url) => format!(
            "{url} (PostgreSQL, node {}; other nodes may share it)",
            settings.node.id
        ),
        None => format!("{} (SQLite)", data.display()),
    };
    let mail = match &settings.smtp {
        Some(smtp) => format!("sent through {} and kept in the mailbox", smtp.url),
        None => "no mail server: the portal's mail is kept here".to_owned(),
    };
    let exposed = !settings.listen.ip().is_loopback();
    let production = settings.production;
    let tls_files = settings.tls.as_ref().is_some_and(|t| t.cert.is_some());
    if production && settings.smtp.is_none() {
        eprintln!(
            "WARNING: --profile production without --smtp-url: activation and password-reset mail is only kept in the database, so new accounts cannot be activated (docs/security.md)."
        );
    }
    if production && settings.portal.public_url.is_empty() {
        eprintln!(
            "WARNING: --profile production without --public-url: links in mail (activation, password reset) point at this listener's own address ({}), which your users may not reach; give the address they open (docs/operations.md).",
            mkoba::portal_config(&settings).public_url
        );
    }
    if production && settings.metrics_listen.is_none() {
        eprintln!(
            "WARNING: --profile production without --metrics-listen: /metrics is served, without authentication, on the APIs' address; give it a private one (--metrics-listen 127.0.0.1:9100), or keep /metrics out at your proxy (docs/operations.md)."
        );
    }
    let (postgres, key_file) = (
        settings.database_url.is_some(),
        settings.mpesa_key_file.clone(),
    );
    let running = mkoba::start(settings).await?;
    let scripts = credentials_command(&data, postgres, key_file.as_deref(), &running);
    if exposed && !production {
        // The sandbox's defaults are for a laptop; say what they open to the network.
        eprintln!(
            "WARNING: listening on {} (not loopback) with the sandbox's defaults: the banner prints the sandbox developer's and the operator's passwords and keys, anyone who reaches the port can sign up, and callbacks may go to loopback addresses. Keep it on a trusted network, or listen on 127.0.0.1 behind a proxy (docs/security.md).",
            running.addr
        );
    }
    // A sandbox developer an operator deactivated: its keys (replaced by ones nobody may
    // hold) and sign-in are not printed.
    let withdrawn = matches!(
        running.platform.portal().developer(mkoba_platform::SANDBOX_DEVELOPER).await,
        Ok(Some(a)) if a.status.withdrawn()
    );
    let keys = if withdrawn {
        Vec::new()
    } else {
        running
            .platform
            .credentials()
            .subscription_keys(mkoba_platform::SANDBOX_DEVELOPER)
    };
    let base = running.base_url();
    let key = |product, slot| {
        if production {
            return "(mkoba credentials)".to_owned();
        }
        keys.iter()
            .find(|k| k.product == product && k.slot == slot)
            .map_or("-", |k| k.key.as_str())
            .to_owned()
    };
    println!("Mkoba {} is running.", env!("CARGO_PKG_VERSION"));
    println!();
    println!("  MoMo Open API   {base}   (target environment: sandbox, currency: EUR)");
    println!(
        "  M-Pesa OpenAPI  {base}/sandbox/ipg/v2/{{market}}/   (markets: vodacomTZN, vodafoneGHA, vodacomLES, vodacomDRC, vodacomMOZ)"
    );
    println!("  Admin API       {base}/_mkoba/health");
    // The production profile prints no password (`mkoba credentials` on the server's
    // machine still shows them).
    let shown = |password: &str| {
        if production {
            "see `mkoba credentials` on this machine".to_owned()
        } else {
            password.to_owned()
        }
    };
    // The printed password goes once it is changed in the portal.
    match running.platform.portal().sandbox_login().await {
        _ if withdrawn => println!(
            "  Portal          {base}/portal/   (the sandbox developer's account is deactivated by an operator: sign up, or sign in with your own)"
        ),
        Ok(Some(login)) => println!(
            "  Portal          {base}/portal/   (sign in: {} / {})",
            login.email,
            shown(&login.password)
        ),
        _ => println!("  Portal          {base}/portal/   (sign in with the password set there)"),
    }
    if let Ok(Some(login)) = running.platform.portal().operator_login().await {
        println!(
            "  Operator        {base}/portal/operator   (sign in: {} / {})",
            login.email,
            shown(&login.password)
        );
    }
    // The sandbox mailbox shows a new account's mail to its browser; production shows it
    // to no one (it goes through --smtp-url, or stays in the database).
    if !production {
        println!("  Mailbox         {base}/portal/mail   ({mail})");
    }
    println!("  Data            {database}");
    if running.tls {
        match &tls_files {
            true => println!("  HTTPS           certificate from --tls-cert"),
            false => println!(
                "  HTTPS           certificate from the local CA {}   (trust it, and point the providers' host names here: mkoba tls trust)",
                mkoba::tls::ca_path(&data).display()
            ),
        }
    }
    if let Some(plain) = running.plain_addr {
        println!("  Plain HTTP      http://{plain}");
    }
    println!();
    if withdrawn {
        println!(
            "Sandbox subscription keys: none to print (the sandbox developer's account is deactivated)"
        );
    } else {
        println!("Sandbox subscription keys (header Ocp-Apim-Subscription-Key):");
        for product in Product::ALL {
            println!(
                "  {:<17} primary {}   secondary {}",
                product.as_str(),
                key(product, KeySlot::Primary),
                key(product, KeySlot::Secondary)
            );
        }
    }
    println!();
    // In production the key is not printed: the samples read it from $KEY.
    let collection = if production {
        "$KEY".to_owned()
    } else {
        key(Product::Collection, KeySlot::Primary)
    };
    if production {
        println!("  KEY=…   # a collection subscription key (mkoba credentials)");
    }
    println!(
        "Create an API user and key (as on MTN's sandbox), then a token (the README's quick start goes on to a payment):"
    );
    println!("  USER=$(cat /proc/sys/kernel/random/uuid)");
    println!(
        "  curl -si -X POST {base}/v1_0/apiuser -H \"Ocp-Apim-Subscription-Key: {collection}\" \\\n       -H \"X-Reference-Id: $USER\" -H 'Content-Type: application/json' -d '{{\"providerCallbackHost\":\"127.0.0.1\"}}'"
    );
    println!(
        "  curl -X POST {base}/v1_0/apiuser/$USER/apikey -H \"Ocp-Apim-Subscription-Key: {collection}\"   # {{\"apiKey\":\"…\"}}"
    );
    println!(
        "  curl -X POST {base}/collection/token/ -u \"$USER:<apiKey>\" -H \"Ocp-Apim-Subscription-Key: {collection}\""
    );
    if let Ok(Some(app)) = running
        .platform
        .mpesa()
        .app(mkoba_platform::SANDBOX_DEVELOPER)
        .await
    {
        println!();
        println!(
            "M-Pesa (encrypt the API key, then the session id, with the public key: RSA PKCS#1 v1.5, base64):"
        );
        match app.api_key {
            Some(_) if production => println!("  API key     (mkoba credentials)"),
            Some(k) => println!("  API key     {k}"),
            None => println!("  API key     renew it in the portal (My Profile)"),
        }
        println!(
            "  Public key  {}",
            data.join(mkoba_mpesa::rsa::PUBLIC_KEY_FILE).display()
        );
        println!(
            "  getSession  curl {base}/sandbox/ipg/v2/vodacomTZN/getSession/ -H 'Origin: *' -H \"Authorization: Bearer $BEARER\""
        );
        println!();
        println!(
            "M-Pesa v1x, Mozambique (the encrypted API key is the bearer of every call; short code {}, MZN, numbers 2588[45]xxxxxxx):",
            mkoba_mpesa::V1X_SANDBOX_SHORT_CODE
        );
        for r in running
            .mpesa_resource_urls()
            .iter()
            .filter(|r| r.gateway == "v1x")
        {
            println!(
                "  {:<6} {:<26} {}",
                r.method,
                r.path.trim_start_matches("/ipg/v1x/"),
                r.url()
            );
        }
        if running.mpesa_v1x.is_empty() {
            println!(
                "  (--mpesa-v1x-ports on serves each API on its own port as well: C2B :18352, B2C :18345, B2B :18349, reversal :18354, status :18353, name :19323)"
            );
        }
    }
    println!();
    println!("Scripts: {scripts} --json");
    println!();
    let platform = running.platform.clone();
    tokio::select! {
        signal = stop_signals.recv() => {
            tracing::info!("{signal}: stopping");
            platform.stop_waiting();
        }
        failures = platform.failed() => {
            // Exit non-zero so a supervisor (systemd, Kubernetes) restarts the server;
            // everything acknowledged is on disk.
            anyhow::bail!("{}; exiting so a supervisor restarts the server", failures.join(", "));
        }
    }
    // Graceful: stop accepting, let requests in flight finish (bounded by the drain
    // time), then the writer commits what it was sent and stops — every acknowledged write
    // was committed before its answer went out, and callbacks not yet delivered wait in the
    // outbox for the next start. The data directory's lock goes last.
    tracing::info!("shutting down: draining requests in flight");
    // Bounded: a writer stuck on an unreachable database must not keep the process up.
    // Exiting then loses nothing acknowledged, and the lock goes with the process.
    if tokio::time::timeout(STOP_WITHIN, running.stop())
        .await
        .is_err()
    {
        tracing::error!(
            seconds = STOP_WITHIN.as_secs(),
            "the server did not stop in time; exiting now (everything acknowledged is on disk)"
        );
        // At once: the data directory's lock must go with the process and its writer,
        // not before them (dropping the half-stopped server would release it).
        std::process::exit(1);
    }
    tracing::info!("stopped");
    drop(platform);
    Ok(())
}

/// How long a graceful stop may take: requests in flight (at most 10 s), then the writer's
/// last pass.
const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The signals that stop the server gracefully: SIGINT (Ctrl-C), SIGTERM, and SIGHUP (the
/// terminal that started the server closed; its default would end the process at once,
/// with no drain and no log line). Made before the server starts, so that none arriving
/// while it starts takes its default action.
struct StopSignals {
    #[cfg(unix)]
    signals: Vec<(tokio::signal::unix::Signal, &'static str)>,
}

impl StopSignals {
    fn new() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [
                (SignalKind::interrupt(), "SIGINT"),
                (SignalKind::terminate(), "SIGTERM"),
                (SignalKind::hangup(), "SIGHUP"),
            ]
            .into_iter()
            .filter_map(|(kind, name)| signal(kind).ok().map(|s| (s, name)))
            .collect();
            StopSignals { signals }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Waits for one; returns its name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            if self.signals.is_empty() {
                std::future::pending::<()>().await;
            }
            let waits = self.signals.iter_mut().map(|(s, name)| {
                Box::pin(async move {
                    s.recv().await;
                    *name
                })
            });
            futures_util::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn a_log_filter_word_that_is_not_a_level_is_named() {
        use super::unknown_log_levels as unknown;
        assert!(unknown("info").is_empty());
        assert!(unknown("WARN,mkoba_webhooks=debug,hyper[x]=off").is_empty());
        assert_eq!(unknown("warning"), ["warning"]);
        assert_eq!(unknown("debug, bogus"), ["bogus"]);
    }

    /// Option 15 is `purge_delay` in the mimalloc this binary links: unless the environment
    /// set it, it starts at that version's default, one second (`options.c`), and takes the
    /// value set. A mimalloc whose options are numbered otherwise fails here.
    #[test]
    fn the_purge_delay_set_is_mimallocs_purge_delay() {
        #[allow(unsafe_code)]
        // SAFETY: reading and setting an option are plain calls with no preconditions.
        let (before, after) = unsafe {
            let before = super::mi_option_get(super::MI_OPTION_PURGE_DELAY);
            super::prompt_purge();
            (before, super::mi_option_get(super::MI_OPTION_PURGE_DELAY))
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!((before, after), (1000, super::PURGE_DELAY_MS));
        }
    }

    /// Option 43 is `allow_thp` (on by default), and the process's own flag turns huge
    /// pages off: a mimalloc whose options are numbered otherwise fails here.
    #[test]
    fn huge_pages_are_turned_off() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: reading and setting an option and the process's flag are plain calls.
        let (before, after, flag) = unsafe {
            let before = super::mi_option_get(super::MI_OPTION_ALLOW_THP);
            super::no_huge_pages();
            let after = super::mi_option_get(super::MI_OPTION_ALLOW_THP);
            (
                before,
                after,
                libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
            )
        };
        assert_eq!((before, after, flag), (1, 0, 1));
    }
}
