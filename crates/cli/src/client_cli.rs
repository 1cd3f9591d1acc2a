//! `mkoba momo …`: client subcommands for a developer at a terminal, built on `mkoba-sdk`.
//! They talk to any MoMo host: a local Mkoba by default, MTN's sandbox with
//! `--url https://sandbox.momodeveloper.mtn.com`.
//!
//! Credentials come from flags, then the environment (`MOMO_API_USER`, `MOMO_API_KEY`,
//! `MOMO_TARGET_ENVIRONMENT`, `MOMO_COLLECTION_SUBSCRIPTION_KEY`, …), then — for
//! subscription keys — a local Mkoba's data directory. Output is for people, or JSON with
//! `--json`; errors say what was wrong and how to fix it (exit status 1). A payment that
//! ends FAILED is not an error of the command: it prints the status and its reason.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use mkoba_platform::model::{KeySlot, Product as ServerProduct};
use mkoba_sdk::momo::{
    Collection, Config, Disbursement, Poll, Product, Provisioning, ReferenceId, Remittance, Status,
    Transaction,
};
use mkoba_sdk::types::momo::{Party, Refund, RequestToPay, Transfer};
use serde_json::{Value, json};

const DEFAULT_URL: &str = "http://127.0.0.1:8080";
const DEFAULT_ENVIRONMENT: &str = "sandbox";
const DEFAULT_DATA: &str = "./mkoba-data";

/// Options every client subcommand takes.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Server and credentials (every subcommand)")]
pub struct ClientArgs {
    /// Base URL of the MoMo API (a local Mkoba, or https://sandbox.momodeveloper.mtn.com)
    #[arg(
        long,
        env = "MKOBA_URL",
        default_value = DEFAULT_URL,
        global = true
    )]
    pub url: String,
    /// The product's subscription key [env: MOMO_<PRODUCT>_SUBSCRIPTION_KEY; default: read
    /// from --data]
    #[arg(long, global = true)]
    pub subscription_key: Option<String>,
    /// API user (a UUID) [default: a new sandbox API user, for pay and disburse]
    #[arg(long, env = "MOMO_API_USER", global = true)]
    pub api_user: Option<String>,
    /// The API user's key
    #[arg(long, env = "MOMO_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// X-Target-Environment
    #[arg(
        long,
        env = "MOMO_TARGET_ENVIRONMENT",
        default_value = DEFAULT_ENVIRONMENT,
        global = true
    )]
    pub environment: String,
    /// Data directory of a local Mkoba, to read subscription keys from
    #[arg(
        long,
        env = "MKOBA_DATA",
        default_value = DEFAULT_DATA,
        global = true
    )]
    pub data: PathBuf,
    /// The PostgreSQL database of the server's nodes, to read subscription keys from instead of --data
    #[arg(
        long,
        env = "MKOBA_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<crate::config::DatabaseUrl>,
    /// Print JSON for scripts
    #[arg(long, global = true)]
    pub json: bool,
    /// How long one request waits for its answer, in seconds (1 to 600)
    #[arg(long, default_value_t = 30, global = true, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,
    /// The subscription keys in --data, when it exists.
    #[arg(skip)]
    local_keys: Option<Vec<mkoba_platform::model::SubscriptionKey>>,
    /// `--data` was typed on the command line: its keys win over the environment's.
    #[arg(skip)]
    data_given: bool,
}

impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClientArgs")
            .field("url", &self.url)
            .field("subscription_key", &redacted(&self.subscription_key))
            .field("api_user", &self.api_user)
            .field("api_key", &redacted(&self.api_key))
            .field("environment", &self.environment)
            .field("data", &self.data)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

/// `mkoba momo …`
#[derive(Debug, clap::Args)]
pub struct MomoArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: MomoCommand,
}

impl MomoArgs {
    /// A `--data` typed on the command line wins over subscription keys left in the
    /// environment (`MOMO_<PRODUCT>_SUBSCRIPTION_KEY`, exported for another server);
    /// `--subscription-key` still wins over both.
    pub fn data_over_environment(&mut self) {
        self.client.data_given = true;
    }
}

#[derive(Debug, clap::Subcommand)]
enum MomoCommand {
    /// Create a sandbox API user and API key (or, on Mkoba, a market's with --environment)
    Provision {
        /// Host that callback URLs must be on (providerCallbackHost)
        #[arg(long, default_value = "localhost")]
        callback_host: String,
    },
    /// Get an access token
    Token {
        /// collection, disbursement or remittance
        #[arg(long, default_value = "collection")]
        product: Product,
    },
    /// Ask a payer to pay (request-to-pay) and watch it settle
    Pay {
        /// Amount in major units ("100", "12.50")
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The payer's MSISDN (no +); 46733123450–64 are the sandbox's test numbers
        #[arg(long)]
        payer: String,
        #[command(flatten)]
        payment: PaymentArgs,
    },
    /// Pay out to a payee (disbursement or remittance transfer, or a deposit) and watch it
    Disburse {
        /// Amount in major units
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The payee's MSISDN (no +)
        #[arg(long)]
        payee: String,
        /// transfer or deposit (disbursement), or remittance (a remittance transfer)
        #[arg(long, default_value = "transfer")]
        kind: PayoutKind,
        #[command(flatten)]
        payment: PaymentArgs,
    },
    /// Refund a request-to-pay (disbursement refund) and watch it
    Refund {
        /// Reference id of the request-to-pay to refund
        original: ReferenceId,
        /// Amount in major units
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[command(flatten)]
        payment: PaymentArgs,
    },
    /// The status of a transaction
    Status {
        /// Its reference id
        reference: ReferenceId,
        /// What it is
        #[arg(long, default_value = "request-to-pay")]
        kind: StatusKind,
        /// Wait until it is final
        #[arg(long)]
        wait: bool,
    },
    /// The partner account's balance
    Balance {
        /// collection, disbursement or remittance
        #[arg(long, default_value = "collection")]
        product: Product,
        /// Only this currency
        #[arg(long)]
        currency: Option<String>,
    },
}

/// What a payment command shares.
#[derive(Debug, Clone, clap::Args)]
struct PaymentArgs {
    /// ISO 4217 currency [default: the target environment's: EUR in the sandbox, UGX for
    /// mtnuganda, …]
    #[arg(long)]
    currency: Option<String>,
    /// Your reference for reconciliation
    #[arg(long)]
    external_id: Option<String>,
    /// Message for both sides' histories, sent as payerMessage and payeeNote (at most 160
    /// characters, no ' or &)
    #[arg(long)]
    message: Option<String>,
    /// X-Callback-Url (its host must be the API user's providerCallbackHost)
    #[arg(long)]
    callback_url: Option<String>,
    /// Use this X-Reference-Id instead of a new one
    #[arg(long)]
    reference: Option<ReferenceId>,
    /// Do not wait for the final status
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PayoutKind {
    Transfer,
    Deposit,
    Remittance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatusKind {
    RequestToPay,
    RequestToWithdraw,
    Invoice,
    PreApproval,
    Payment,
    Transfer,
    Deposit,
    Refund,
    RemittanceTransfer,
    CashTransfer,
}

/// `mkoba clock …`: Mkoba's test clocks (`/_mkoba/test_clocks`), with the same
/// credentials as `mkoba momo` (`--url`, `--subscription-key` or `--data`).
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("api_key", |a| a.hide(true)),
    mut_arg("environment", |a| a.hide(true)),
    mut_arg("api_user", |a| a.help("The API user whose clock it is (a UUID) [env: MOMO_API_USER]").hide_env(true)),
    mut_arg("subscription_key", |a| a.help("A subscription key of the clock's developer: the Collection one [env: MOMO_COLLECTION_SUBSCRIPTION_KEY; default: read from --data]"))
)]
pub struct ClockArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ClockCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClockCommand {
    /// Attach a new test clock to an API user with no payments yet (--api-user)
    Create {
        /// A name for it
        #[arg(long, default_value = "")]
        name: String,
        /// Its starting time, milliseconds since 1970 [default: the server's time]
        #[arg(long)]
        at_ms: Option<i64>,
    },
    /// List your test clocks
    List,
    /// Move a clock forward (--clock ID, or the clock of --api-user) and settle what became due
    Advance {
        /// How far: 90s, 15m, 3h or 2d
        by: String,
        /// The clock [default: the clock of --api-user]
        #[arg(long)]
        clock: Option<String>,
    },
    /// Delete a clock (--clock ID, or the clock of --api-user): its pending payments end as EXPIRED
    Delete {
        /// The clock [default: the clock of --api-user]
        #[arg(long)]
        clock: Option<String>,
    },
}

/// Reads a local server's subscription keys once, off the async threads, when no key was
/// given.
async fn load_local_keys(client: &mut ClientArgs) -> anyhow::Result<()> {
    if client.subscription_key.is_none() {
        let source = crate::DataSource {
            data: client.data.clone(),
            database_url: client.database_url.clone(),
        };
        client.local_keys = tokio::task::spawn_blocking(move || {
            (source.database_url.is_some() || source.data.exists())
                .then(|| crate::server_credentials(&source).map(|c| c.keys))
                .transpose()
        })
        .await
        .context("reading the local subscription keys")??;
    }
    Ok(())
}

/// Runs a `mkoba clock` command.
pub async fn run_clock(mut args: ClockArgs) -> anyhow::Result<()> {
    check_api_user(&args.client)?;
    load_local_keys(&mut args.client).await?;
    let c = &args.client;
    let clocks = mkoba_sdk::momo::TestClocks::new(subscription_key(c, Product::Collection)?)
        .base_url(&c.url)
        .transport(crate::client_transport(
            &c.data,
            Duration::from_secs(c.timeout_secs),
        )?);
    // The clock a command names: --clock, else the one driving --api-user. Both given (an
    // exported MOMO_API_USER and a --clock) must name the same clock.
    let named = |clock: Option<String>| async {
        if let Some(id) = &clock
            && !(id.len() == 36 && uuid::Uuid::parse_str(id).is_ok())
        {
            crate::usage!(
                "--clock must be a test clock's id (a UUID, as `mkoba clock list` shows), got {id:?}"
            );
        }
        let Some(user) = c.api_user.clone() else {
            return match clock {
                Some(id) => Ok::<_, anyhow::Error>(id),
                None => crate::usage!(
                    "name the clock: --clock <id>, or --api-user <uuid> for the API user's clock"
                ),
            };
        };
        let all = clocks
            .list()
            .await
            .map_err(|e| explain_clock(e, "listing the test clocks"))?;
        if let Some(id) = clock {
            if let Some(k) = all.iter().find(|k| k.id.eq_ignore_ascii_case(&id))
                && !k.api_user.eq_ignore_ascii_case(&user)
            {
                crate::usage!(
                    "--clock {id} is the clock of API user {}, not of --api-user {user} (perhaps from MOMO_API_USER): give one of them",
                    k.api_user
                );
            }
            return Ok(id);
        }
        all.into_iter()
            .find(|k| k.api_user.eq_ignore_ascii_case(&user))
            .map(|k| k.id)
            .with_context(|| format!("API user {user} has no test clock"))
    };
    let show = |k: &mkoba_sdk::momo::TestClock| -> anyhow::Result<()> {
        if c.json {
            print_json(&serde_json::to_value(k)?)
        } else {
            let name = if k.name.is_empty() {
                String::new()
            } else {
                format!("  {:?}", k.name)
            };
            println!(
                "test clock {}{name}  API user {}  now {}",
                k.id, k.api_user, k.now
            );
            Ok(())
        }
    };
    match args.command {
        ClockCommand::Create { name, at_ms } => {
            let Some(user) = c.api_user.clone() else {
                crate::usage!(
                    "--api-user: the API user the clock drives (one with no payments yet)"
                );
            };
            let k = clocks.create(&user, &name, at_ms).await.map_err(|e| {
                let taken = matches!(&e, mkoba_sdk::Error::Api(a) if a.status == 409);
                if taken {
                    anyhow!(
                        "creating the test clock: {e}\n  how to fix: API user {user} has a clock already (one each): move it with `mkoba clock advance --api-user {user} BY` (BY such as 90s, 15m, 2h, 3d), or delete it first"
                    )
                } else {
                    explain_clock(e, "creating the test clock")
                }
            })?;
            show(&k)
        }
        ClockCommand::List => {
            let all = clocks
                .list()
                .await
                .map_err(|e| explain_clock(e, "listing the test clocks"))?;
            if c.json {
                return print_json(&serde_json::to_value(&all)?);
            }
            if all.is_empty() {
                println!("no test clocks");
            }
            all.iter().try_for_each(show)
        }
        ClockCommand::Advance { by, clock } => {
            // The server's own reading of it (`{"by": …}`), told before anything is sent.
            if mkoba_platform::test_clock::parse_span(&by).is_none() {
                crate::usage!(
                    "BY must be a whole number and a unit, s, m, h or d (90s, 15m, 3h, 2d), got {by:?}"
                );
            }
            let id = named(clock).await?;
            let k = clocks
                .advance(&id, &by)
                .await
                .map_err(|e| explain_clock(e, "advancing the test clock"))?;
            show(&k)
        }
        ClockCommand::Delete { clock } => {
            let id = named(clock).await?;
            clocks
                .delete(&id)
                .await
                .map_err(|e| explain_clock(e, "deleting the test clock"))?;
            if c.json {
                print_json(&json!({"deleted": id}))
            } else {
                println!("test clock {id} deleted");
                Ok(())
            }
        }
    }
}

/// Runs a `mkoba momo` command.
pub async fn run(mut args: MomoArgs) -> anyhow::Result<()> {
    check_api_user(&args.client)?;
    load_local_keys(&mut args.client).await?;
    let c = &args.client;
    let done = match args.command {
        MomoCommand::Provision { callback_host } => provision(c, &callback_host).await,
        MomoCommand::Token { product } => token(c, product).await,
        MomoCommand::Pay {
            amount,
            payer,
            payment,
        } => pay(c, amount, payer, payment).await,
        MomoCommand::Disburse {
            amount,
            payee,
            kind,
            payment,
        } => disburse(c, amount, payee, kind, payment).await,
        MomoCommand::Refund {
            original,
            amount,
            payment,
        } => refund(c, original, amount, payment).await,
        MomoCommand::Status {
            reference,
            kind,
            wait,
        } => status(c, reference, kind, wait).await,
        MomoCommand::Balance { product, currency } => balance(c, product, currency).await,
    };
    done.map_err(|e| {
        // A refused key says where it was read, which may be another server's.
        if format!("{e:#}").contains("INVALID_SUBSCRIPTION_KEY") {
            anyhow!("{e:#}\n  the subscription key was {}", key_origin(c))
        } else {
            e
        }
    })
}

/// Where [`subscription_key`] reads the keys from, in words.
fn key_origin(c: &ClientArgs) -> String {
    if c.subscription_key.is_some() {
        return "given with --subscription-key".to_owned();
    }
    let from_env = [
        Product::Collection,
        Product::Disbursement,
        Product::Remittance,
    ]
    .iter()
    .map(|p| format!("MOMO_{}_SUBSCRIPTION_KEY", p.as_str().to_ascii_uppercase()))
    .filter(|var| std::env::var(var).is_ok_and(|k| !k.trim().is_empty()))
    .collect::<Vec<_>>();
    match &c.local_keys {
        Some(_) if c.data_given || from_env.is_empty() => format!(
            "read from the data directory {} (--data / MKOBA_DATA): is it the data of the server at {}?",
            c.data.display(),
            c.url
        ),
        _ => format!(
            "read from {} (the developer portal shows each product's keys)",
            from_env.join(", ")
        ),
    }
}

// ---- credentials ------------------------------------------------------------------------------

/// The subscription key of `product`: flag, then `MOMO_<PRODUCT>_SUBSCRIPTION_KEY`, then the
/// local data directory.
fn subscription_key(c: &ClientArgs, product: Product) -> anyhow::Result<String> {
    if let Some(k) = &c.subscription_key {
        return Ok(k.clone());
    }
    let var = format!(
        "MOMO_{}_SUBSCRIPTION_KEY",
        product.as_str().to_ascii_uppercase()
    );
    if let Ok(k) = std::env::var(&var)
        && !k.trim().is_empty()
        && !(c.data_given && c.local_keys.is_some())
    {
        return Ok(k);
    }
    let Some(local) = &c.local_keys else {
        crate::usage!(
            "no {product} subscription key: pass --subscription-key or set {var} (the product's primary key from the developer portal), \
             or --data with the data directory of a local Mkoba ({} does not exist)",
            c.data.display()
        );
    };
    let server_product = match product {
        Product::Collection => ServerProduct::Collection,
        Product::Disbursement => ServerProduct::Disbursement,
        Product::Remittance => ServerProduct::Remittance,
    };
    local
        .iter()
        .find(|k| k.product == server_product && k.slot == KeySlot::Primary)
        .map(|k| k.key.clone())
        .with_context(|| format!("no {product} key in {}", c.data.display()))
}

fn provisioning(c: &ClientArgs) -> anyhow::Result<Provisioning> {
    Ok(Provisioning::new(subscription_key(c, Product::Collection)?)
        .base_url(&c.url)
        .transport(crate::client_transport(
            &c.data,
            Duration::from_secs(c.timeout_secs),
        )?))
}

/// `--api-user` (or `MOMO_API_USER`), when given, is a UUID: told before anything is sent.
fn check_api_user(c: &ClientArgs) -> anyhow::Result<()> {
    if let Some(u) = c.api_user.as_ref().filter(|u| !u.trim().is_empty())
        && uuid::Uuid::parse_str(u).is_err()
    {
        crate::usage!("--api-user must be a UUID (the API user's X-Reference-Id), got {u:?}");
    }
    if !mkoba_momo::ENVIRONMENTS.contains(&c.environment.as_str()) {
        crate::usage!(
            "--environment must be one of {}, got {:?}",
            mkoba_momo::ENVIRONMENTS.join(", "),
            c.environment
        );
    }
    Ok(())
}

/// The API user and key: given, or (sandbox only, when `allow_new`) a new one.
async fn api_user(
    c: &ClientArgs,
    callback_url: Option<&str>,
    allow_new: bool,
) -> anyhow::Result<(String, String)> {
    // An empty value (`MOMO_API_KEY=`) is none given.
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    match (&given(&c.api_user), &given(&c.api_key)) {
        (Some(u), Some(k)) => return Ok((u.clone(), k.clone())),
        (Some(_), None) => crate::usage!("--api-user needs --api-key (or MOMO_API_KEY)"),
        (None, Some(_)) => crate::usage!("--api-key needs --api-user (or MOMO_API_USER)"),
        (None, None) => {}
    }
    if !allow_new || c.environment != "sandbox" {
        crate::usage!(
            "no API user: pass --api-user and --api-key (or set MOMO_API_USER and MOMO_API_KEY); \
             `mkoba momo provision` creates a sandbox one"
        );
    }
    let host = callback_url
        .and_then(host_of)
        .unwrap_or_else(|| "localhost".to_owned());
    let user = provisioning(c)?
        .provision(&host)
        .await
        .map_err(|e| explain(e, "creating a sandbox API user"))?;
    eprintln!(
        "Created sandbox API user {} (callback host {host}); reuse it with --api-user {} --api-key {}",
        user.api_user, user.api_user, user.api_key
    );
    Ok((user.api_user, user.api_key))
}

/// The host of a URL (`http://h:1/p` → `h`).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?.to_owned()
    } else {
        authority.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then_some(host)
}

fn config(
    c: &ClientArgs,
    product: Product,
    user: &(String, String),
    callback: Option<&str>,
) -> anyhow::Result<Config> {
    let mut config = Config::new(subscription_key(c, product)?)
        .base_url(&c.url)
        .transport(crate::client_transport(
            &c.data,
            Duration::from_secs(c.timeout_secs),
        )?)
        .target_environment(&c.environment)
        .api_user(&user.0, &user.1);
    if let Some(url) = callback {
        config = config.callback_url(url);
    }
    Ok(config)
}

/// A test-clock call's error: how to reach the server when it was not reached, else the
/// server's own message (the payment hints of [`explain`] are not about clocks).
fn explain_clock(e: mkoba_sdk::Error, doing: &str) -> anyhow::Error {
    match e {
        mkoba_sdk::Error::Api(ref a) if a.status == 404 => anyhow!(
            "{doing}: {e}\n  how to fix: no API user or test clock of that id belongs to the developer of this subscription key: `mkoba clock list` shows the clocks, the portal's API users page the API users"
        ),
        mkoba_sdk::Error::Api(_) => anyhow!("{doing}: {e}"),
        e => explain(e, doing),
    }
}

/// An SDK error, with how to fix it.
fn explain(e: mkoba_sdk::Error, doing: &str) -> anyhow::Error {
    if let mkoba_sdk::Error::Config(_) = e {
        // Refused before anything was sent: a usage error (exit status 2).
        return anyhow::Error::new(crate::Usage(format!("{doing}: {e}")));
    }
    if let mkoba_sdk::Error::Transport { message, .. } = &e
        && message.contains("certificate")
    {
        return anyhow!(
            "{doing}: {e}\n  how to fix: the server's certificate is not trusted: for `mkoba serve --tls`, give --data of the server (its local CA, tls/ca.pem, is trusted) or set SSL_CERT_FILE to its CA"
        );
    }
    if let mkoba_sdk::Error::Transport { message, .. } = &e
        && crate::plain_http_answered_tls(message)
    {
        return anyhow!(
            "{doing}: {e}\n  how to fix: --url says https:// but the server answers plain HTTP: use http:// (or start it with `mkoba serve --tls`)"
        );
    }
    if let mkoba_sdk::Error::Transport { message, .. } = &e
        && crate::tls_answered_plain_http(message)
    {
        return anyhow!("{doing}: {e}\n  how to fix: {}", crate::USE_HTTPS);
    }
    if let mkoba_sdk::Error::Transport { .. } = e {
        return anyhow!(
            "{doing}: {e}\n  how to fix: is the server running (`mkoba serve`)? Point at it with --url or MKOBA_URL"
        );
    }
    match e.hint() {
        Some(hint) => anyhow!("{doing}: {e}\n  how to fix: {hint}"),
        None => anyhow!("{doing}: {e}"),
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

// ---- commands ---------------------------------------------------------------------------------

async fn provision(c: &ClientArgs, callback_host: &str) -> anyhow::Result<()> {
    // The server's rule, told before anything is sent.
    if mkoba_momo::validate::callback_host(callback_host).is_err() {
        crate::usage!(
            "--callback-host must be a host name or address (the host of your callback URLs), got {callback_host:?}"
        );
    }
    let p = provisioning(c)?;
    let (user, key, env, currency) = if c.environment == "sandbox" {
        let u = p
            .provision(callback_host)
            .await
            .map_err(|e| explain(e, "creating a sandbox API user"))?;
        (
            u.api_user,
            u.api_key,
            u.target_environment,
            "EUR".to_owned(),
        )
    } else {
        let u = p
            .create_market_user(callback_host, &c.environment)
            .await
            .map_err(|e| explain(e, "creating a market API user"))?;
        (u.api_user, u.api_key, u.target_environment, u.currency)
    };
    if c.json {
        return print_json(&json!({
            "apiUser": user,
            "apiKey": key,
            "providerCallbackHost": callback_host,
            "targetEnvironment": env,
            "currency": currency,
        }));
    }
    println!("API user      {user}");
    println!("API key       {key}");
    println!("callback host {callback_host}");
    println!("environment   {env} ({currency})");
    println!();
    println!("export MOMO_API_USER={user} MOMO_API_KEY={key} MOMO_TARGET_ENVIRONMENT={env}");
    Ok(())
}

async fn token(c: &ClientArgs, product: Product) -> anyhow::Result<()> {
    let user = api_user(c, None, false).await?;
    let config = config(c, product, &user, None)?;
    let doing = format!("getting a {product} token");
    let t = match product {
        Product::Collection => Collection::new(config)?.create_access_token().await,
        Product::Disbursement => Disbursement::new(config)?.create_access_token().await,
        Product::Remittance => Remittance::new(config)?.create_access_token().await,
    }
    .map_err(|e| explain(e, &doing))?;
    if c.json {
        return print_json(&serde_json::to_value(&t)?);
    }
    println!("{}", t.access_token);
    eprintln!(
        "{product} token, type {}, valid {} s",
        t.token_type, t.expires_in
    );
    Ok(())
}

/// Prints a status body (human: one line; JSON: the body).
fn report<T: Transaction + serde::Serialize>(
    c: &ClientArgs,
    what: &str,
    reference: &ReferenceId,
    result: &T,
) -> anyhow::Result<()> {
    if c.json {
        let mut v = serde_json::to_value(result)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("referenceId".to_owned(), reference.to_string().into());
        }
        return print_json(&v);
    }
    let mut line = format!("{what} {reference}: {}", result.status());
    if let Some(id) = result.financial_transaction_id() {
        line.push_str(&format!(" (financialTransactionId {id})"));
    }
    if let Some(reason) = result.reason() {
        line.push_str(&format!(" reason {reason}"));
    }
    println!("{line}");
    Ok(())
}

/// [`report`] for an operation that waited for its outcome: a payment that ended FAILED
/// is a failed command (exit status 1, with the reason), as an M-Pesa call answered with
/// any code but `INS-0` is.
/// A wait that ended in an error: with `--json`, a wait that ran out still prints the
/// reference and its last status on stdout (a script read nothing there, the reference
/// only in the error's text), then the error as [`explain`] words it.
fn wait_error(
    c: &ClientArgs,
    reference: &ReferenceId,
    e: mkoba_sdk::Error,
    doing: &str,
) -> anyhow::Error {
    if c.json
        && let mkoba_sdk::Error::StillPending { status, .. } = &e
        && let Err(printing) =
            print_json(&json!({"referenceId": reference.to_string(), "status": status}))
    {
        return printing;
    }
    explain(e, doing)
}

fn finished<T: Transaction + serde::Serialize>(
    c: &ClientArgs,
    what: &str,
    reference: &ReferenceId,
    result: &T,
) -> anyhow::Result<()> {
    report(c, what, reference, result)?;
    if matches!(result.status(), Status::Failed) {
        match result.reason() {
            // The refund rules, which a newcomer cannot guess from the code alone.
            Some(reason) if what == "refund" && reason.to_string() == "NOT_ALLOWED" => bail!(
                "{what} {reference} ended FAILED, reason {reason}\n  how to fix: a refund is of a payment that succeeded, in its currency, and never more than remains of it after earlier refunds"
            ),
            Some(reason) => bail!("{what} {reference} ended FAILED, reason {reason}"),
            None => bail!("{what} {reference} ended FAILED"),
        }
    }
    Ok(())
}

/// Prints an accepted reference (when not waiting), with the command that reads its status
/// as it stands: the `--kind` of what is not a request-to-pay, what was given on the
/// command line that the status needs too (`--url`, `--environment`, `--data`,
/// `--subscription-key`), and the API user (a status is read with the token of the API
/// user that made the transaction) with its key when this command made it.
fn accepted(
    c: &ClientArgs,
    what: &str,
    kind: StatusKind,
    reference: &ReferenceId,
    user: &(String, String),
) -> anyhow::Result<()> {
    if c.json {
        return print_json(&json!({"referenceId": reference.to_string(), "status": "PENDING"}));
    }
    let check = status_command(c, kind, reference, user);
    println!("{what} {reference}: accepted (202); check with {check}");
    Ok(())
}

/// A creation whose answer was lost (none in time, or the connection broke after the
/// request went out) may have been accepted: the error says its reference id and the
/// command that reads it, which nothing else printed. One that never connected, or whose
/// token request (sent first) went unanswered, is [`explain`]ed as before.
fn unanswered(
    c: &ClientArgs,
    e: mkoba_sdk::Error,
    doing: &str,
    (what, kind): (&str, StatusKind),
    reference: &ReferenceId,
    user: &(String, String),
) -> anyhow::Error {
    let (url, why) = match &e {
        mkoba_sdk::Error::Timeout { url, after } => {
            (url, format!("no answer within {} ms", after.as_millis()))
        }
        // hyper's "(Connect)": refused, no such host, TLS: the request never left.
        mkoba_sdk::Error::Transport { url, message } if !message.contains("(Connect)") => (
            url,
            format!("the connection broke before the answer: {message}"),
        ),
        _ => return explain(e, doing),
    };
    // The SDK asks for a token before the operation: if that is what went unanswered, the
    // operation itself was never sent.
    if e.on_credential_request() {
        return explain(e, doing);
    }
    let check = status_command(c, kind, reference, user);
    anyhow!(
        "{doing}: {url}: {why}\n  how to fix: the request may have been carried out: {what} {reference} may exist. Check with {check} before sending it again, and send it again only with --reference {reference} (a 409 then means the first was accepted); --timeout-secs waits longer for an answer"
    )
}

/// The `mkoba momo status` command that reads `reference`, in backquotes: the `--kind` of what is not a
/// request-to-pay, what was given on the command line that the status needs too (`--url`,
/// `--environment`, `--data`, `--subscription-key`), and the API user with its key when
/// this command made it (a key given is named by `MOMO_API_KEY`, not repeated).
fn status_command(
    c: &ClientArgs,
    kind: StatusKind,
    reference: &ReferenceId,
    user: &(String, String),
) -> String {
    let mut check = format!("mkoba momo status {reference}");
    if kind != StatusKind::RequestToPay
        && let Some(kind) = clap::ValueEnum::to_possible_value(&kind)
    {
        check.push_str(&format!(" --kind {}", kind.get_name()));
    }
    for (flag, value, default) in [
        ("--url", c.url.clone(), DEFAULT_URL),
        ("--environment", c.environment.clone(), DEFAULT_ENVIRONMENT),
        ("--data", c.data.display().to_string(), DEFAULT_DATA),
    ] {
        if value != default {
            check.push_str(&format!(" {flag} {}", shell_word(&value)));
        }
    }
    if let Some(key) = &c.subscription_key {
        check.push_str(&format!(" --subscription-key {}", shell_word(key)));
    }
    // The key this command made is shown, as when it was made; one given is not repeated.
    let made = c.api_user.as_deref().is_none_or(|u| u.trim().is_empty());
    let key = if made {
        user.1.clone()
    } else {
        "\"$MOMO_API_KEY\"".to_owned()
    };
    check.push_str(&format!(" --api-user {} --api-key {key}", user.0));
    // A key given with --api-key is not in the variable the command names.
    let given = !made && std::env::var_os("MOMO_API_KEY").is_none_or(|k| k.is_empty());
    let note = if given {
        " (with MOMO_API_KEY set to the API key you gave)"
    } else {
        ""
    };
    format!("`{check}`{note}")
}

/// `value` as one word of a shell command: as it is when it is plain, else in single quotes.
fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

fn poll(p: &PaymentArgs) -> Poll {
    Poll::timeout(Duration::from_secs(p.wait_secs))
}

fn waiting(c: &ClientArgs, what: &str, reference: &ReferenceId) {
    if !c.json {
        eprintln!("{what} {reference}: accepted, PENDING; waiting for the final status…");
    }
}

impl PaymentArgs {
    /// `--currency`, else the target environment's (EUR in the sandbox).
    fn currency(&self, c: &ClientArgs) -> String {
        self.currency
            .clone()
            .unwrap_or_else(|| mkoba_momo::environment_currency(&c.environment).to_owned())
    }
}

/// What can be told wrong before anything is sent (and before a sandbox API user is made
/// for the command): an amount that is not a positive decimal or has more decimals than
/// its currency, a party that is not an MSISDN's digits, a message longer than the 160
/// characters MTN takes or with the `'` or `&` it refuses.
fn check_payment(
    amount: &str,
    currency: &str,
    party: Option<(&str, &str)>,
    p: &PaymentArgs,
) -> anyhow::Result<()> {
    let message = p.message.as_deref();
    let decimal = |a: &str| {
        let (int, frac) = a.split_once('.').unwrap_or((a, "0"));
        !int.is_empty()
            && !frac.is_empty()
            && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            && a.bytes().any(|b| (b'1'..=b'9').contains(&b))
    };
    if !decimal(amount) {
        crate::usage!(
            "--amount must be a positive amount in major units, such as 100 or 12.50, got {amount:?}"
        );
    }
    // Told here, before an API user is made for a payment the server would refuse.
    let Ok(c) = mkoba_ledger::Currency::parse(currency) else {
        crate::usage!("--currency must be three upper-case letters, such as EUR, got {currency:?}");
    };
    let decimals = amount.split_once('.').map_or(0, |(_, f)| f.len());
    if decimals > c.exponent() as usize {
        crate::usage!(
            "--amount {amount} has more decimals than {currency} allows ({})",
            c.exponent()
        );
    }
    if let Err(e) = mkoba_ledger::Money::parse_positive(amount, c) {
        crate::usage!("--amount {amount}: {e}");
    }
    if let Some((flag, id)) = party
        && !((4..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()))
    {
        crate::usage!(
            "{flag} must be an MSISDN: 4 to 15 digits, with the country code and no +, got {id:?}"
        );
    }
    if let Some(url) = &p.callback_url {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) || host_of(url).is_none() {
            crate::usage!(
                "--callback-url must be an http:// or https:// URL with a host, got {url:?}"
            );
        }
    }
    if let Some(why) = p.reference.as_ref().and_then(|r| r.check_random().err()) {
        crate::usage!("--reference: {why}");
    }
    if let Some(m) = message.filter(|m| m.chars().count() > 160) {
        crate::usage!(
            "--message must be at most 160 characters, got {}",
            m.chars().count()
        );
    }
    if message.is_some_and(|m| m.contains(['\'', '&'])) {
        crate::usage!("--message may not contain ' or & (MTN refuses them)");
    }
    Ok(())
}

async fn pay(c: &ClientArgs, amount: String, payer: String, p: PaymentArgs) -> anyhow::Result<()> {
    check_payment(&amount, &p.currency(c), Some(("--payer", &payer)), &p)?;
    let user = api_user(c, p.callback_url.as_deref(), true).await?;
    let collection = Collection::new(config(
        c,
        Product::Collection,
        &user,
        p.callback_url.as_deref(),
    )?)?;
    let body = RequestToPay {
        amount,
        currency: p.currency(c),
        external_id: p.external_id.clone(),
        payer: Party::msisdn(payer),
        payer_message: p.message.clone(),
        payee_note: p.message.clone(),
    };
    let mut create = collection.request_to_pay(&body);
    if let Some(r) = p.reference {
        create = create.reference_id(r);
    }
    let id = *create.id();
    let kind = ("request-to-pay", StatusKind::RequestToPay);
    let reference = create
        .await
        .map_err(|e| unanswered(c, e, "requesting the payment", kind, &id, &user))?;
    if p.no_wait {
        return accepted(
            c,
            "request-to-pay",
            StatusKind::RequestToPay,
            &reference,
            &user,
        );
    }
    waiting(c, "request-to-pay", &reference);
    let result = collection
        .wait_for_request_to_pay(&reference, poll(&p))
        .await
        .map_err(|e| wait_error(c, &reference, e, "waiting for the payment"))?;
    finished(c, "request-to-pay", &reference, &result)
}

async fn disburse(
    c: &ClientArgs,
    amount: String,
    payee: String,
    kind: PayoutKind,
    p: PaymentArgs,
) -> anyhow::Result<()> {
    check_payment(&amount, &p.currency(c), Some(("--payee", &payee)), &p)?;
    let user = api_user(c, p.callback_url.as_deref(), true).await?;
    let body = Transfer {
        amount,
        currency: p.currency(c),
        external_id: p.external_id.clone(),
        payee: Party::msisdn(payee),
        payer_message: p.message.clone(),
        payee_note: p.message.clone(),
    };
    let cb = p.callback_url.as_deref();
    let (what, reference, result) = if kind == PayoutKind::Remittance {
        let r = Remittance::new(config(c, Product::Remittance, &user, cb)?)?;
        let mut create = r.transfer(&body);
        if let Some(id) = p.reference {
            create = create.reference_id(id);
        }
        let id = *create.id();
        let kind = ("remittance transfer", StatusKind::RemittanceTransfer);
        let reference = create
            .await
            .map_err(|e| unanswered(c, e, "sending the transfer", kind, &id, &user))?;
        if p.no_wait {
            return accepted(
                c,
                "remittance transfer",
                StatusKind::RemittanceTransfer,
                &reference,
                &user,
            );
        }
        waiting(c, "remittance transfer", &reference);
        let result = r.wait_for_transfer(&reference, poll(&p)).await;
        ("remittance transfer", reference, result)
    } else {
        let d = Disbursement::new(config(c, Product::Disbursement, &user, cb)?)?;
        let mut create = if kind == PayoutKind::Deposit {
            d.deposit_v2(&body)
        } else {
            d.transfer(&body)
        };
        if let Some(id) = p.reference {
            create = create.reference_id(id);
        }
        let (what, status_kind) = if kind == PayoutKind::Deposit {
            ("deposit", StatusKind::Deposit)
        } else {
            ("transfer", StatusKind::Transfer)
        };
        let id = *create.id();
        let doing = format!("sending the {what}");
        let reference = create
            .await
            .map_err(|e| unanswered(c, e, &doing, (what, status_kind), &id, &user))?;
        if p.no_wait {
            return accepted(c, what, status_kind, &reference, &user);
        }
        waiting(c, what, &reference);
        let result = if kind == PayoutKind::Deposit {
            d.wait_for_deposit(&reference, poll(&p)).await
        } else {
            d.wait_for_transfer(&reference, poll(&p)).await
        };
        (what, reference, result)
    };
    let result =
        result.map_err(|e| wait_error(c, &reference, e, &format!("waiting for the {what}")))?;
    finished(c, what, &reference, &result)
}

async fn refund(
    c: &ClientArgs,
    original: ReferenceId,
    amount: String,
    p: PaymentArgs,
) -> anyhow::Result<()> {
    check_payment(&amount, &p.currency(c), None, &p)?;
    let user = api_user(c, p.callback_url.as_deref(), false).await?;
    let d = Disbursement::new(config(
        c,
        Product::Disbursement,
        &user,
        p.callback_url.as_deref(),
    )?)?;
    let body = Refund {
        amount,
        currency: p.currency(c),
        external_id: p.external_id.clone(),
        payer_message: p.message.clone(),
        payee_note: p.message.clone(),
        reference_id_to_refund: original.to_string(),
    };
    let mut create = d.refund_v2(&body);
    if let Some(id) = p.reference {
        create = create.reference_id(id);
    }
    let id = *create.id();
    let kind = ("refund", StatusKind::Refund);
    let reference = create
        .await
        .map_err(|e| unanswered(c, e, "sending the refund", kind, &id, &user))?;
    if p.no_wait {
        return accepted(c, "refund", StatusKind::Refund, &reference, &user);
    }
    waiting(c, "refund", &reference);
    let result = d
        .wait_for_refund(&reference, poll(&p))
        .await
        .map_err(|e| wait_error(c, &reference, e, "waiting for the refund"))?;
    finished(c, "refund", &reference, &result)
}

async fn status(
    c: &ClientArgs,
    reference: ReferenceId,
    kind: StatusKind,
    wait: bool,
) -> anyhow::Result<()> {
    use StatusKind as K;
    let user = api_user(c, None, false).await?;
    let poll = Poll::default();
    let doing = "reading the status";
    macro_rules! show {
        ($client:expr, $get:ident, $wait:ident, $what:literal) => {{
            let client = $client;
            let result = if wait {
                client.$wait(&reference, poll).await
            } else {
                client.$get(&reference).await
            }
            .map_err(|e| {
                // Each operation has its own resource: a transfer's id is unknown as a
                // request-to-pay (the default --kind).
                let unknown = matches!(&e, mkoba_sdk::Error::Api(a) if a.status == 404);
                let e = wait_error(c, &reference, e, doing);
                if unknown {
                    anyhow!(
                        "{e:#}\n  (read as {} {}: for another operation pass its --kind: request-to-pay, transfer, deposit, refund, remittance-transfer, …)",
                        if $what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" },
                        $what
                    )
                } else {
                    e
                }
            })?;
            report(c, $what, &reference, &result)
        }};
    }
    let collection = || -> anyhow::Result<Collection> {
        Ok(Collection::new(config(
            c,
            Product::Collection,
            &user,
            None,
        )?)?)
    };
    let disbursement = || -> anyhow::Result<Disbursement> {
        Ok(Disbursement::new(config(
            c,
            Product::Disbursement,
            &user,
            None,
        )?)?)
    };
    let remittance = || -> anyhow::Result<Remittance> {
        Ok(Remittance::new(config(
            c,
            Product::Remittance,
            &user,
            None,
        )?)?)
    };
    match kind {
        K::RequestToPay => show!(
            collection()?,
            get_request_to_pay_status,
            wait_for_request_to_pay,
            "request-to-pay"
        ),
        K::RequestToWithdraw => show!(
            collection()?,
            get_request_to_withdraw_status,
            wait_for_request_to_withdraw,
            "request-to-withdraw"
        ),
        K::Invoice => show!(
            collection()?,
            get_invoice_status,
            wait_for_invoice,
            "invoice"
        ),
        K::PreApproval => show!(
            collection()?,
            get_pre_approval_status,
            wait_for_pre_approval,
            "pre-approval"
        ),
        K::Payment => show!(
            collection()?,
            get_payment_status,
            wait_for_payment,
            "payment"
        ),
        K::Transfer => show!(
            disbursement()?,
            get_transfer_status,
            wait_for_transfer,
            "transfer"
        ),
        K::Deposit => show!(
            disbursement()?,
            get_deposit_status,
            wait_for_deposit,
            "deposit"
        ),
        K::Refund => show!(
            disbursement()?,
            get_refund_status,
            wait_for_refund,
            "refund"
        ),
        K::RemittanceTransfer => show!(
            remittance()?,
            get_transfer_status,
            wait_for_transfer,
            "remittance transfer"
        ),
        K::CashTransfer => show!(
            remittance()?,
            get_cash_transfer_status,
            wait_for_cash_transfer,
            "cash transfer"
        ),
    }
}

async fn balance(c: &ClientArgs, product: Product, currency: Option<String>) -> anyhow::Result<()> {
    let user = api_user(c, None, false).await?;
    let config = config(c, product, &user, None)?;
    macro_rules! get {
        ($client:expr) => {{
            let client = $client;
            match &currency {
                Some(cur) => client.get_account_balance_in_currency(cur).await,
                None => client.get_account_balance().await,
            }
        }};
    }
    let b = match product {
        Product::Collection => get!(Collection::new(config)?),
        Product::Disbursement => get!(Disbursement::new(config)?),
        Product::Remittance => get!(Remittance::new(config)?),
    }
    .map_err(|e| explain(e, &format!("reading the {product} balance")))?;
    if c.json {
        return print_json(&serde_json::to_value(&b)?);
    }
    println!("{product} balance: {} {}", b.available_balance, b.currency);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_reads_callback_urls() {
        assert_eq!(
            host_of("http://127.0.0.1:9000/cb").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host_of("https://shop.example/momo?x=1").as_deref(),
            Some("shop.example")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
    }
}
