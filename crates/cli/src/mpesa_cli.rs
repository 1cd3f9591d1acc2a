//! `mkoba mpesa …`: M-Pesa client subcommands for a developer at a terminal, built on
//! `mkoba-sdk`'s M-Pesa client. They talk to any M-Pesa OpenAPI v2 gateway: a local Mkoba
//! by default, the real one with `--url https://openapi.m-pesa.com`.
//!
//! Credentials come from flags, then the environment (`MPESA_API_KEY`, `MPESA_PUBLIC_KEY`),
//! then a local Mkoba's data directory (`--data`, with `--mpesa-key-file` when the server
//! uses one). Output is for people, or JSON with `--json` (the gateway's `output_*`
//! fields); errors say what was wrong and how to fix it, and exit with status 1. A
//! transaction the gateway refuses (`INS-2006`, insufficient balance, say) is such an
//! error: M-Pesa answers the outcome as the call's result code.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use mkoba_sdk::mpesa::{
    Amount, B2cPayment, C2bPayment, Client, Config, Environment, InsCode, Market, PaymentResponse,
    Request, Reversal, TransactionStatusQuery,
};
use serde_json::json;

/// Options every `mkoba mpesa` subcommand takes.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Server and credentials (every subcommand)")]
pub struct MpesaClientArgs {
    /// Base URL of the M-Pesa OpenAPI (a local Mkoba, or https://openapi.m-pesa.com)
    #[arg(
        long,
        env = "MKOBA_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// sandbox, or openapi (production)
    #[arg(
        long,
        env = "MPESA_ENVIRONMENT",
        default_value = "sandbox",
        global = true
    )]
    pub environment: Environment,
    /// vodacomTZN, vodafoneGHA, vodacomLES, vodacomDRC or vodacomMOZ (or TZN, GHA, …)
    #[arg(
        long,
        env = "MPESA_MARKET",
        default_value = "vodacomTZN",
        global = true
    )]
    pub market: Market,
    /// The application's API key [default: read from --data]
    #[arg(long, env = "MPESA_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// The environment's platform public key, base64 as the portal shows it [default: read
    /// from --data]
    #[arg(long, env = "MPESA_PUBLIC_KEY", hide_env_values = true, global = true)]
    pub public_key: Option<String>,
    /// The Origin header: one of the application's allowed origins
    #[arg(long, env = "MPESA_ORIGIN", default_value = "*", global = true)]
    pub origin: String,
    /// Seconds a call waits for a new session to become live ("Session key not yet
    /// active"; up to 30 on the real gateway), sending it again now and then
    #[arg(
        long,
        env = "MPESA_SESSION_WAIT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub session_wait_secs: u64,
    /// Data directory of a local Mkoba, to read the API key and public key from
    #[arg(
        long,
        env = "MKOBA_DATA",
        default_value = "./mkoba-data",
        global = true
    )]
    pub data: PathBuf,
    /// The PostgreSQL database of the server's nodes, to read the API key and public key from instead of --data
    #[arg(
        long,
        env = "MKOBA_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<crate::config::DatabaseUrl>,
    /// The local Mkoba's M-Pesa private key file, when it uses one [default: in --data]
    #[arg(long, env = "MKOBA_MPESA_KEY_FILE", global = true)]
    pub mpesa_key_file: Option<PathBuf>,
    /// Print JSON for scripts
    #[arg(long, global = true)]
    pub json: bool,
}

impl std::fmt::Debug for MpesaClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpesaClientArgs")
            .field("url", &self.url)
            .field("environment", &self.environment)
            .field("market", &self.market)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key.as_ref().map(|_| "<given>"))
            .field("origin", &self.origin)
            .field("session_wait_secs", &self.session_wait_secs)
            .field("data", &self.data)
            .field("mpesa_key_file", &self.mpesa_key_file)
            .field("json", &self.json)
            .finish()
    }
}

/// `mkoba mpesa …`
#[derive(Debug, clap::Args)]
pub struct MpesaArgs {
    #[command(flatten)]
    client: MpesaClientArgs,
    #[command(subcommand)]
    command: MpesaCommand,
}

impl MpesaArgs {
    /// A `--data` typed on the command line wins over keys left in the environment
    /// (`MPESA_API_KEY`, `MPESA_PUBLIC_KEY`, exported for another server) where the
    /// directory holds that key (with none there, the environment's is used); `from_env`
    /// says which arguments came from there. Keys given as flags still win.
    pub fn data_over_environment(&mut self, from_env: impl Fn(&str) -> bool) {
        let c = &mut self.client;
        let elsewhere = c.database_url.is_some();
        let has_api_key = elsewhere || !crate::creates_database(&c.data);
        let has_public_key = elsewhere
            || c.mpesa_key_file.is_some()
            || c.data.join(mkoba_mpesa::rsa::PUBLIC_KEY_FILE).exists()
            || c.data.join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE).exists();
        for (id, key, there) in [
            ("api_key", &mut c.api_key, has_api_key),
            ("public_key", &mut c.public_key, has_public_key),
        ] {
            if there && key.is_some() && from_env(id) {
                *key = None;
            }
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum MpesaCommand {
    /// Create a session (getSession) and print its id
    Session,
    /// A customer pays a business (C2B single stage; synchronous unless the application has a result URL)
    C2b {
        #[command(flatten)]
        payment: PaymentArgs,
    },
    /// The business pays a customer (B2C)
    B2c {
        #[command(flatten)]
        payment: PaymentArgs,
    },
    /// Reverse a transaction: all of it, or --amount of it
    Reversal {
        /// The transaction id (output_TransactionID) of the payment to reverse
        transaction_id: String,
        /// Reverse only this much, in major units ("4", "2.50")
        #[arg(long, allow_hyphen_values = true, value_parser = amount)]
        amount: Option<Amount>,
        /// input_ServiceProviderCode of the payment
        #[arg(long, default_value = "000000")]
        service_provider_code: String,
        /// input_ThirdPartyConversationID [default: a new one]
        #[arg(long)]
        conversation_id: Option<String>,
    },
    /// The status of a transaction, by its transaction id, conversation id or your ThirdPartyConversationID
    Status {
        /// The transaction id, conversation id or ThirdPartyConversationID
        reference: String,
        /// input_ServiceProviderCode
        #[arg(long, default_value = "000000")]
        service_provider_code: String,
    },
    /// Print the API key and public key these commands use (from flags, environment or --data)
    Credentials {
        /// Print one `export MPESA_API_KEY=… MPESA_PUBLIC_KEY=…` line for the shell
        #[arg(long)]
        export: bool,
    },
}

/// `--amount`: its own words for a value that is not one (a negative one included, which
/// the parser would otherwise take for an option).
fn amount(text: &str) -> Result<Amount, String> {
    Amount::parse(text).map_err(|e| match e {
        mkoba_sdk::Error::Config(message) => message,
        other => other.to_string(),
    })
}

/// What the payment commands share.
#[derive(Debug, Clone, clap::Args)]
struct PaymentArgs {
    /// Amount in major units ("10", "10.50"), at most two decimals
    #[arg(long, allow_hyphen_values = true, value_parser = amount)]
    amount: Amount,
    /// The customer's MSISDN: 12 to 14 digits with the country code, no + (the sandbox's
    /// test number is 000000000001; 000000000008 has no money)
    #[arg(long)]
    msisdn: String,
    /// input_ServiceProviderCode: the business (the sandbox's is 000000)
    #[arg(long, default_value = "000000")]
    service_provider_code: String,
    /// input_TransactionReference: 1 to 20 letters, digits or spaces
    #[arg(long, default_value = "mkoba cli")]
    reference: String,
    /// The description: letters, digits, spaces, _ and + only
    #[arg(long, default_value = "Payment")]
    description: String,
    /// input_ThirdPartyConversationID [default: a new one]
    #[arg(long)]
    conversation_id: Option<String>,
}

/// Runs a `mkoba mpesa` command.
pub async fn run(args: MpesaArgs) -> anyhow::Result<()> {
    let c = &args.client;
    let creds = credentials(c).await?;
    match args.command {
        MpesaCommand::Credentials { export } => print_credentials(c, &creds, export),
        MpesaCommand::Session => session(c, &client(c, &creds)?).await,
        MpesaCommand::C2b { payment } => pay(c, &client(c, &creds)?, Direction::C2b, payment).await,
        MpesaCommand::B2c { payment } => pay(c, &client(c, &creds)?, Direction::B2c, payment).await,
        MpesaCommand::Reversal {
            transaction_id,
            amount,
            service_provider_code,
            conversation_id,
        } => {
            let r = Reversal {
                transaction_id,
                service_provider_code,
                amount,
            };
            reverse(c, &client(c, &creds)?, r, conversation_id).await
        }
        MpesaCommand::Status {
            reference,
            service_provider_code,
        } => status(c, &client(c, &creds)?, reference, service_provider_code).await,
    }
}

// ---- credentials ------------------------------------------------------------------------------

/// The API key and public key, and where they came from.
struct Credentials {
    api_key: String,
    public_key: String,
    source: String,
}

/// Flags and environment first; what is missing from the local data directory.
async fn credentials(c: &MpesaClientArgs) -> anyhow::Result<Credentials> {
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let (api_key, public_key) = (given(&c.api_key), given(&c.public_key));
    if let (Some(api_key), Some(public_key)) = (&api_key, &public_key) {
        return Ok(Credentials {
            api_key: api_key.clone(),
            public_key: public_key.clone(),
            source: "flags or environment".to_owned(),
        });
    }
    if let Some(url) = &c.database_url {
        let source = crate::DataSource {
            data: c.data.clone(),
            database_url: Some(url.clone()),
        };
        let key_file = c.mpesa_key_file.clone();
        let (creds, public) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                crate::server_credentials(&source)?,
                crate::mpesa_public_key(&source, key_file.as_deref())?,
            ))
        })
        .await
        .context("reading the M-Pesa credentials")??;
        let api_key = api_key.or(creds.mpesa_api_key).ok_or_else(|| {
            anyhow!(
                "the sandbox application's API key was renewed, and a renewed key is shown only once \
                 (on the portal's M-Pesa page): pass --api-key or set MPESA_API_KEY"
            )
        })?;
        return Ok(Credentials {
            api_key,
            public_key: public_key.unwrap_or(public),
            source: format!("the database {}", url.redacted()),
        });
    }
    if !c.data.is_dir() {
        crate::usage!(
            "no M-Pesa credentials: pass --api-key and --public-key (or set MPESA_API_KEY and MPESA_PUBLIC_KEY; \
             the portal's M-Pesa page shows both), or --data with the data directory of a local Mkoba ({} does not exist)",
            c.data.display()
        );
    }
    // The server publishes its public key in its data directory at every start (whether it
    // keeps its key pair there or in a key file); never make one here, which would not be
    // the server's.
    if c.mpesa_key_file.is_none()
        && !c.data.join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE).exists()
        && !c.data.join(mkoba_mpesa::rsa::PUBLIC_KEY_FILE).exists()
    {
        crate::usage!(
            "{} holds no M-Pesa key ({}): if the server runs with --mpesa-key-file, pass the same file with \
             --mpesa-key-file or MKOBA_MPESA_KEY_FILE; or pass --public-key (MPESA_PUBLIC_KEY)",
            c.data.display(),
            mkoba_mpesa::rsa::PRIVATE_KEY_FILE
        );
    }
    let data = c.data.clone();
    let key_file = c.mpesa_key_file.clone();
    let (local_key, local_public) =
        tokio::task::spawn_blocking(move || crate::mpesa_credentials(&data, key_file.as_deref()))
            .await
            .context("reading the local M-Pesa credentials")?
            .with_context(|| format!("reading the M-Pesa credentials in {}", c.data.display()))?;
    let source = match (&api_key, &public_key) {
        (Some(_), _) => format!(
            "--api-key or MPESA_API_KEY, and {} for the public key",
            c.data.display()
        ),
        (None, Some(_)) => format!(
            "{} for the API key, and --public-key or MPESA_PUBLIC_KEY",
            c.data.display()
        ),
        (None, None) => c.data.display().to_string(),
    };
    let api_key = match api_key {
        Some(k) => k,
        None => local_key.ok_or_else(|| {
            anyhow!(
                "the API key of the sandbox application in {} was renewed, and a renewed key is shown only once \
                 (on the portal's M-Pesa page): pass --api-key or set MPESA_API_KEY",
                c.data.display()
            )
        })?,
    };
    Ok(Credentials {
        api_key,
        public_key: public_key.unwrap_or(local_public),
        source,
    })
}

fn client(c: &MpesaClientArgs, creds: &Credentials) -> anyhow::Result<Client> {
    let config = Config::new(c.market, &creds.api_key, &creds.public_key)
        .base_url(&c.url)
        .transport(crate::client_transport(
            &c.data,
            mkoba_sdk::mpesa::DEFAULT_TIMEOUT,
        )?)
        .environment(c.environment)
        .origin(&c.origin)
        .activation_wait(std::time::Duration::from_secs(c.session_wait_secs));
    Client::new(config).map_err(|e| explain(c, e, "configuring the M-Pesa client"))
}

fn print_credentials(c: &MpesaClientArgs, creds: &Credentials, export: bool) -> anyhow::Result<()> {
    if export {
        println!(
            "export MPESA_API_KEY='{}' MPESA_PUBLIC_KEY='{}'",
            creds.api_key, creds.public_key
        );
        return Ok(());
    }
    if c.json {
        return print_json(&json!({
            "api_key": creds.api_key,
            "public_key": creds.public_key,
            "source": creds.source,
        }));
    }
    println!("API key     {}", creds.api_key);
    println!("public key  {}", creds.public_key);
    println!("from        {}", creds.source);
    Ok(())
}

// ---- errors and output ------------------------------------------------------------------------

/// An SDK error, with how to fix it in terms of this command's flags.
fn explain(c: &MpesaClientArgs, e: mkoba_sdk::Error, doing: &str) -> anyhow::Error {
    explain_with(c, e, doing, None)
}

/// [`explain`], with one more line after the hint.
fn explain_with(
    c: &MpesaClientArgs,
    e: mkoba_sdk::Error,
    doing: &str,
    last: Option<String>,
) -> anyhow::Error {
    // With --json, the gateway's answer is printed as a success's is (the error still
    // goes to stderr, and the status is 1).
    if c.json
        && let Some(m) = e.mpesa().filter(|m| m.code.is_some())
    {
        // In the gateway's order (a map printed them sorted).
        #[derive(serde::Serialize)]
        struct Answer<'a> {
            #[serde(
                rename = "output_ResponseCode",
                skip_serializing_if = "Option::is_none"
            )]
            code: Option<&'a str>,
            #[serde(rename = "output_ResponseDesc")]
            desc: &'a str,
            #[serde(
                rename = "output_TransactionID",
                skip_serializing_if = "Option::is_none"
            )]
            transaction: Option<&'a str>,
            #[serde(
                rename = "output_ConversationID",
                skip_serializing_if = "Option::is_none"
            )]
            conversation: Option<&'a str>,
            #[serde(
                rename = "output_ThirdPartyConversationID",
                skip_serializing_if = "Option::is_none"
            )]
            third_party: Option<&'a str>,
        }
        let _ = print_json(&Answer {
            code: m.code.as_ref().map(InsCode::as_str),
            desc: &m.message,
            transaction: m.transaction_id.as_deref(),
            conversation: m.conversation_id.as_deref(),
            third_party: m.third_party_conversation_id.as_deref(),
        });
    }
    let mpesa = e.mpesa();
    let hint = if let mkoba_sdk::Error::Transport { message, .. } = &e
        && message.contains("certificate")
    {
        Some("the server's certificate is not trusted: for `mkoba serve --tls`, give --data of the server (its local CA, tls/ca.pem, is trusted) or set SSL_CERT_FILE to its CA".to_owned())
    } else if let mkoba_sdk::Error::Transport { message, .. } = &e
        && crate::plain_http_answered_tls(message)
    {
        Some("--url says https:// but the server answers plain HTTP: use http:// (or start it with `mkoba serve --tls`)".to_owned())
    } else if let mkoba_sdk::Error::Transport { message, .. } = &e
        && crate::tls_answered_plain_http(message)
    {
        Some(crate::USE_HTTPS.to_owned())
    } else if let mkoba_sdk::Error::Transport { .. } = e {
        Some(format!(
            "is the server running (`mkoba serve`)? Point at it with --url or MKOBA_URL (now {})",
            c.url
        ))
    } else if let mkoba_sdk::Error::Config(message) = &e {
        Some(if message.contains("public key") {
            "check --public-key / MPESA_PUBLIC_KEY: the platform key of the environment, base64 exactly as the portal shows it (`mkoba mpesa credentials` prints a local server's)".to_owned()
        } else if message.contains("API key") {
            "pass --api-key or set MPESA_API_KEY (the portal's M-Pesa page shows it)".to_owned()
        } else if message.contains("base URL") {
            format!("check --url / MKOBA_URL (now {})", c.url)
        } else if message.contains("origin") {
            "check --origin / MPESA_ORIGIN".to_owned()
        } else {
            "check the values given on the command line".to_owned()
        })
    } else if e.ins_code() == Some(&InsCode::SessionCreationFailed) {
        Some(format!(
            "the API key or the public key is wrong: check --api-key / MPESA_API_KEY (the portal's M-Pesa page; \
             a renewed key replaces the old one) and --public-key / MPESA_PUBLIC_KEY (the platform key of the {} \
             environment; `mkoba mpesa credentials` prints a local server's)",
            c.environment
        ))
    } else if mpesa.is_some_and(|m| m.is_origin_refusal()) {
        Some(format!(
            "the application does not allow Origin {:?}: pass --origin (or MPESA_ORIGIN) with one of its allowed \
             origins, or add this one on the portal's M-Pesa page",
            c.origin
        ))
    } else if let Some(m) = mpesa.filter(|m| m.is_session_refusal()) {
        let text = m.message.to_ascii_lowercase();
        Some(if text.contains("not yet active") {
            format!(
                "the new session did not become live within --session-wait-secs {} (new sessions take up to 30 s on the real gateway): wait longer with a larger --session-wait-secs",
                c.session_wait_secs
            )
        } else if text.contains("expired") {
            "the session expired as soon as it was made: the application's session lifetime is very short; raise it on the portal's M-Pesa page".to_owned()
        } else {
            "the session was refused: the API key may just have been renewed (check --api-key), or the public key is another environment's".to_owned()
        })
    } else {
        e.hint()
    };
    let mut text = format!("{doing}: {e}");
    if let Some(hint) = hint {
        text.push_str(&format!("\n  how to fix: {hint}"));
    }
    if let Some(last) = last {
        text.push_str(&format!("\n  {last}"));
    }
    if let mkoba_sdk::Error::Config(_) = e {
        // Refused before anything was sent: a usage error (exit status 2).
        return anyhow::Error::new(crate::Usage(text));
    }
    anyhow!(text)
}

/// Pretty JSON; a struct keeps its field order (the gateway's `output_*` order).
fn print_json<T: serde::Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Sends a transaction request; on failure says which ThirdPartyConversationID it had, and
/// when the outcome is unknown how to look it up. The session comes first, on its own: a
/// refused API key or an unreachable server is then "creating a session", where nothing
/// was sent, not a transaction whose outcome is unknown.
async fn transact<'a, T: serde::de::DeserializeOwned + Send + 'a>(
    c: &MpesaClientArgs,
    client: &Client,
    request: Request<'a, T>,
    conversation_id: Option<String>,
    doing: &str,
) -> anyhow::Result<T> {
    client
        .session_id()
        .await
        .map_err(|e| explain(c, e, "creating a session"))?;
    let request = match conversation_id {
        Some(id) => request.third_party_conversation_id(id),
        None => request,
    };
    let id = request.id().to_owned();
    request.await.map_err(|e| {
        let unknown = matches!(
            e,
            mkoba_sdk::Error::Transport { .. } | mkoba_sdk::Error::Timeout { .. }
        );
        let last = if unknown {
            format!(
                "ThirdPartyConversationID {id}: the outcome is not known yet; check with `mkoba mpesa status {id}`"
            )
        } else if e.ins_code() == Some(&InsCode::RequestTimeout) {
            // The gateway gave up on the customer's prompt: the payment expired then (on
            // Mkoba and, as far as integrators report, on the real gateway), unless the
            // server stopped meanwhile, which answers the same and leaves it pending.
            format!(
                "ThirdPartyConversationID {id}: no answer in time (the customer gave none, or the server stopped meanwhile): `mkoba mpesa status {id}` says whether the payment expired or is still pending"
            )
        } else {
            format!("ThirdPartyConversationID {id}")
        };
        explain_with(c, e, doing, Some(last))
    })
}

// ---- commands ---------------------------------------------------------------------------------

async fn session(c: &MpesaClientArgs, client: &Client) -> anyhow::Result<()> {
    let id = client
        .create_session()
        .await
        .map_err(|e| explain(c, e, "creating a session"))?;
    if c.json {
        return print_json(&json!({
            "session_id": id,
            "market": client.market().path(),
            "environment": client.environment().as_str(),
            "url": c.url,
        }));
    }
    println!("{id}");
    eprintln!(
        "session of {}; it lasts the application's session lifetime",
        client.describe()
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    C2b,
    B2c,
}

async fn pay(
    c: &MpesaClientArgs,
    client: &Client,
    direction: Direction,
    p: PaymentArgs,
) -> anyhow::Result<()> {
    let currency = client.market().currency();
    let (what, request) = match direction {
        Direction::C2b => (
            format!("C2B {} {currency} from {}", p.amount, p.msisdn),
            client.c2b(&C2bPayment {
                amount: p.amount,
                customer_msisdn: p.msisdn.clone(),
                service_provider_code: p.service_provider_code.clone(),
                transaction_reference: p.reference.clone(),
                purchased_items_desc: p.description.clone(),
            }),
        ),
        Direction::B2c => (
            format!("B2C {} {currency} to {}", p.amount, p.msisdn),
            client.b2c(&B2cPayment {
                amount: p.amount,
                customer_msisdn: p.msisdn.clone(),
                service_provider_code: p.service_provider_code.clone(),
                transaction_reference: p.reference.clone(),
                payment_items_desc: p.description.clone(),
            }),
        ),
    };
    let doing = format!("{what} failed");
    let paid = transact(c, client, request, p.conversation_id, &doing).await?;
    report_payment(c, &what, &paid)
}

/// Prints a payment's answer (human: the outcome and its ids; JSON: the `output_*` body).
fn report_payment(c: &MpesaClientArgs, what: &str, paid: &PaymentResponse) -> anyhow::Result<()> {
    if c.json {
        return print_json(paid);
    }
    println!("{what}: {} {}", paid.response_code, paid.response_desc);
    match &paid.transaction_id {
        Some(tx) => println!("  transaction      {tx}"),
        None => println!(
            "  accepted: the application is asynchronous, the result goes to its result URL"
        ),
    }
    println!("  conversation     {}", paid.conversation_id);
    println!("  your id          {}", paid.third_party_conversation_id);
    Ok(())
}

async fn reverse(
    c: &MpesaClientArgs,
    client: &Client,
    r: Reversal,
    conversation_id: Option<String>,
) -> anyhow::Result<()> {
    let what = match r.amount {
        Some(a) => format!(
            "reversal of {a} {} of {}",
            client.market().currency(),
            r.transaction_id
        ),
        None => format!("reversal of {}", r.transaction_id),
    };
    let doing = format!("the {what} failed");
    let reversed = transact(c, client, client.reversal(&r), conversation_id, &doing).await?;
    report_payment(c, &what, &reversed)
}

async fn status(
    c: &MpesaClientArgs,
    client: &Client,
    reference: String,
    service_provider_code: String,
) -> anyhow::Result<()> {
    let query = TransactionStatusQuery {
        query_reference: reference.clone(),
        service_provider_code,
    };
    let s = client
        .query_transaction_status(&query)
        .await
        .map_err(|e| explain(c, e, &format!("reading the status of {reference}")))?;
    if c.json {
        return print_json(&s);
    }
    match &s.transaction_status {
        Some(status) => {
            let reversed = match s.is_reversed() {
                Some(true) => ", reversed",
                _ => "",
            };
            println!("{reference}: {status}{reversed}");
            if let Some(tx) = &s.original_transaction_id {
                println!("  transaction      {tx}");
            }
        }
        None => println!(
            "{reference}: asked; the application is asynchronous, the status goes to its result URL"
        ),
    }
    Ok(())
}
