//! The `mkoba mpesa …` client subcommands: the built binary against a real server, with
//! credentials from the server's data directory, from flags, or from the environment.

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::{MPESA_TEST_KEY, TestApp};

/// `mkoba mpesa <args>` against `app` (`MKOBA_URL`; `--url` overrides it), its data
/// directory as `MKOBA_DATA`, and no other M-Pesa settings from the test's environment.
fn command(app: &TestApp, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mkoba"));
    c.arg("mpesa")
        .args(args)
        .env_remove("MPESA_API_KEY")
        .env_remove("MPESA_PUBLIC_KEY")
        .env_remove("MPESA_MARKET")
        .env_remove("MPESA_ORIGIN")
        .env_remove("MPESA_ENVIRONMENT")
        .env("MKOBA_URL", &app.base)
        .env("MKOBA_DATA", data_dir(app))
        // The server's key file: never generate a 4096-bit key in a test.
        .env("MKOBA_MPESA_KEY_FILE", MPESA_TEST_KEY);
    c
}

async fn mpesa(app: &TestApp, args: &[&str]) -> Output {
    command(app, args).output().await.expect("mkoba runs")
}

/// Runs `command` with M-Pesa keys in the environment (`MPESA_API_KEY`, `MPESA_PUBLIC_KEY`).
async fn with_keys(mut command: Command, api_key: &str, public_key: &str) -> Output {
    command
        .env("MPESA_API_KEY", api_key)
        .env("MPESA_PUBLIC_KEY", public_key)
        .output()
        .await
        .unwrap()
}

fn data_dir(app: &TestApp) -> String {
    app.data_dir().join("data").display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// A failed run: exit status 1 and what it said.
fn failure(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(o), stderr(o));
    stderr(o)
}

#[tokio::test]
async fn cli_reads_local_credentials_then_pays_reverses_and_reads_the_status() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;

    let creds = json(&mpesa(&app, &["credentials", "--json"]).await);
    assert_eq!(creds["api_key"], m.api_key.as_str());
    assert_eq!(creds["public_key"], m.public_key_b64.as_str());
    let export = mpesa(&app, &["credentials", "--export"]).await;
    assert_eq!(
        stdout(&export).trim(),
        format!(
            "export MPESA_API_KEY='{}' MPESA_PUBLIC_KEY='{}'",
            m.api_key, m.public_key_b64
        )
    );

    let session = json(&mpesa(&app, &["session", "--json"]).await);
    assert_eq!(session["session_id"].as_str().unwrap().len(), 32);
    assert_eq!(session["market"], "vodacomTZN");
    assert_eq!(session["environment"], "sandbox");

    let paid = json(
        &mpesa(
            &app,
            &[
                "c2b",
                "--amount",
                "10",
                "--msisdn",
                "000000000001",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(paid["output_ResponseCode"], "INS-0");
    let tx = paid["output_TransactionID"].as_str().unwrap().to_owned();
    assert_eq!(tx.len(), 12);
    assert_eq!(
        paid["output_ThirdPartyConversationID"]
            .as_str()
            .unwrap()
            .len(),
        32
    );
    let t = m
        .transaction(paid["output_ConversationID"].as_str().unwrap())
        .await;
    assert_eq!(t["amount_minor"], 1000);

    let status = json(&mpesa(&app, &["status", &tx, "--json"]).await);
    assert_eq!(status["output_ResponseTransactionStatus"], "Completed");
    assert_eq!(status["output_Reversed"], "False");
    let reversed = json(&mpesa(&app, &["reversal", &tx, "--amount", "4", "--json"]).await);
    assert_eq!(reversed["output_ResponseCode"], "INS-0");
    assert_ne!(reversed["output_TransactionID"], tx.as_str());

    // For people: the outcome and its ids.
    let human = mpesa(&app, &["status", &tx]).await;
    assert!(human.status.success(), "{}", stderr(&human));
    assert!(
        stdout(&human).starts_with(&format!("{tx}: Completed, reversed")),
        "{}",
        stdout(&human)
    );
    let human = mpesa(
        &app,
        &[
            "b2c",
            "--amount",
            "5.5",
            "--msisdn",
            "000000000001",
            "--conversation-id",
            "payout 7",
        ],
    )
    .await;
    assert!(human.status.success(), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(
        text.starts_with("B2C 5.50 TZS to 000000000001: INS-0 Request processed successfully"),
        "{text}"
    );
    assert!(text.contains("transaction") && text.contains("your id          payout 7"));
    let human = mpesa(&app, &["session"]).await;
    assert_eq!(stdout(&human).trim().len(), 32);
    assert!(stderr(&human).contains("vodacomTZN"), "{}", stderr(&human));
}

#[tokio::test]
async fn cli_takes_credentials_from_flags_or_the_environment_instead() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let paid = command(
        &app,
        &[
            "c2b",
            "--amount",
            "1",
            "--msisdn",
            "000000000001",
            "--api-key",
            &m.api_key,
            "--public-key",
            &m.public_key_b64,
            "--json",
        ],
    )
    .env("MKOBA_DATA", "/nonexistent/mkoba-data")
    .output()
    .await
    .unwrap();
    assert_eq!(json(&paid)["output_ResponseCode"], "INS-0");
    let mut session = command(&app, &["session", "--json"]);
    session.env("MKOBA_DATA", "/nonexistent/mkoba-data");
    let session = with_keys(session, &m.api_key, &m.public_key_b64).await;
    assert!(json(&session)["session_id"].is_string());
    let creds = with_keys(
        command(&app, &["credentials", "--json"]),
        &m.api_key,
        &m.public_key_b64,
    )
    .await;
    assert_eq!(json(&creds)["source"], "flags or environment");
    // Keys exported for another server lose to a --data typed on the command line (they
    // won, and every call failed INS-989), before the subcommand or after it.
    for args in [
        ["credentials", "--json", "--data", &data_dir(&app)],
        ["--data", &data_dir(&app), "credentials", "--json"],
    ] {
        let creds = with_keys(
            command(&app, &args),
            "another-servers-key",
            "another-servers-public-key",
        )
        .await;
        let creds = json(&creds);
        assert_eq!(creds["api_key"], m.api_key.as_str(), "{creds}");
        assert_eq!(creds["public_key"], m.public_key_b64.as_str(), "{creds}");
    }
    // A typed --data that holds no keys leaves the environment's in use.
    let empty = tempfile::tempdir().unwrap();
    let mut creds = command(&app, &["credentials", "--json", "--data"]);
    creds.arg(empty.path()).env_remove("MKOBA_MPESA_KEY_FILE");
    let creds = with_keys(creds, &m.api_key, &m.public_key_b64).await;
    assert_eq!(json(&creds)["source"], "flags or environment");

    // Neither: say where credentials come from (a usage error, exit status 2, as
    // credentials half given are).
    let none = command(&app, &["session"])
        .env("MKOBA_DATA", "/nonexistent/mkoba-data")
        .output()
        .await
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    let text = stderr(&none);
    assert!(
        text.contains("MPESA_API_KEY") && text.contains("--data"),
        "{text}"
    );
    // The server keeps its key pair in a key file: without it, the public key the server
    // published in its data directory serves, and no key is made.
    let published = command(&app, &["session", "--json"])
        .env_remove("MKOBA_MPESA_KEY_FILE")
        .output()
        .await
        .unwrap();
    assert!(json(&published)["session_id"].is_string());
    assert!(
        !app.data_dir()
            .join("data")
            .join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE)
            .exists()
    );
    // A data directory with neither: never a new key, but the flag to pass.
    std::fs::remove_file(
        app.data_dir()
            .join("data")
            .join(mkoba_mpesa::rsa::PUBLIC_KEY_FILE),
    )
    .unwrap();
    let no_key = command(&app, &["session"])
        .env_remove("MKOBA_MPESA_KEY_FILE")
        .output()
        .await
        .unwrap();
    // A usage error (exit status 2): the credentials are missing, not refused.
    assert_eq!(no_key.status.code(), Some(2), "{}", stderr(&no_key));
    let text = stderr(&no_key);
    assert!(text.contains("--mpesa-key-file"), "{text}");
    assert!(
        !app.data_dir()
            .join("data")
            .join(mkoba_mpesa::rsa::PRIVATE_KEY_FILE)
            .exists()
    );
}

#[tokio::test]
async fn cli_errors_say_what_was_wrong_and_how_to_fix_it() {
    let app = TestApp::spawn().await;

    let wrong = mpesa(
        &app,
        &["session", "--api-key", "aaaab09uz9f3asdcjyk7els777ihmwv8"],
    )
    .await;
    let text = failure(&wrong);
    assert!(text.contains("INS-989"), "{text}");
    assert!(
        text.contains("how to fix") && text.contains("--api-key") && text.contains("--public-key"),
        "{text}"
    );
    // The same key on a payment: the session is what failed, and nothing was sent, so no
    // "outcome not known" and no conversation id to look up.
    let wrong = mpesa(
        &app,
        &[
            "c2b",
            "--amount",
            "1",
            "--msisdn",
            "000000000001",
            "--api-key",
            "aaaab09uz9f3asdcjyk7els777ihmwv8",
        ],
    )
    .await;
    let text = failure(&wrong);
    assert!(
        text.contains("creating a session: HTTP 400 INS-989"),
        "{text}"
    );
    assert!(!text.contains("not known"), "{text}");
    assert!(!text.contains("ThirdPartyConversationID"), "{text}");

    // The gateway's base URL as the start banner shows it (`…/sandbox/ipg/v2/{market}/`),
    // given as the server's: the client adds the path again, and the 404 says so.
    let base = format!("{}/sandbox/ipg/v2/vodacomTZN", app.base);
    let text = failure(&mpesa(&app, &["session", "--url", &base]).await);
    assert!(
        text.contains("HTTP 404")
            && text.contains("how to fix: no such API at this base URL")
            && text.contains("with no path"),
        "{text}"
    );
    // An amount over the gateway's bound: the hint names the bound.
    let text = failure(
        &mpesa(
            &app,
            &[
                "c2b",
                "--amount",
                "10000000000.01",
                "--msisdn",
                "000000000001",
            ],
        )
        .await,
    );
    assert!(
        text.contains("INS-15")
            && text.contains("no more than the gateway takes (Mkoba: 10000000000.00)"),
        "{text}"
    );

    let pay = |msisdn: &'static str, id: &'static str| {
        let app = &app;
        async move {
            mpesa(
                app,
                &[
                    "c2b",
                    "--amount",
                    "10",
                    "--msisdn",
                    msisdn,
                    "--conversation-id",
                    id,
                ],
            )
            .await
        }
    };
    assert!(pay("000000000001", "dup1").await.status.success());
    let text = failure(&pay("000000000001", "dup1").await);
    assert!(
        text.contains("INS-10") && text.contains("Duplicate Transaction"),
        "{text}"
    );
    assert!(text.contains("ThirdPartyConversationID dup1"), "{text}");
    let text = failure(&pay("25570000001", "bad1").await);
    assert!(
        text.contains("INS-2051") && text.contains("12 to 14 digits"),
        "{text}"
    );
    let text = failure(&pay("000000000008", "poor1").await);
    assert!(
        text.contains("HTTP 422 INS-2006: Insufficient balance"),
        "{text}"
    );
    // With --json the gateway's answer is on stdout all the same (it printed nothing).
    let poor = mpesa(
        &app,
        &[
            "c2b",
            "--amount",
            "10",
            "--msisdn",
            "000000000008",
            "--conversation-id",
            "poor2",
            "--json",
        ],
    )
    .await;
    failure(&poor);
    let v: Value = serde_json::from_slice(&poor.stdout).expect("JSON on stdout");
    assert_eq!(v["output_ResponseCode"], "INS-2006", "{v}");
    assert_eq!(v["output_ThirdPartyConversationID"], "poor2", "{v}");
    assert_eq!(
        v["output_ConversationID"].as_str().map(str::len),
        Some(32),
        "{v}"
    );
    // In the gateway's order, as a success's (they came sorted by name).
    let text = stdout(&poor);
    let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"));
    assert!(
        at("output_ResponseCode") < at("output_ResponseDesc")
            && at("output_ResponseDesc") < at("output_ConversationID")
            && at("output_ConversationID") < at("output_ThirdPartyConversationID"),
        "{text}"
    );
    // So does a status query refused.
    let unknown = mpesa(&app, &["status", "NOPE", "--json"]).await;
    failure(&unknown);
    let v: Value = serde_json::from_slice(&unknown.stdout).expect("JSON on stdout");
    assert_eq!(v["output_ResponseCode"], "INS-23", "{v}");

    // Amounts are checked before anything is sent (a usage error: status 2).
    let bad = mpesa(
        &app,
        &["c2b", "--amount", "1.234", "--msisdn", "000000000001"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("two decimals"), "{}", stderr(&bad));
    // So is a conversation id the SDK refuses (it exited 1, "failed", as if sent), and a
    // malformed --url.
    let bad = pay("000000000001", "a_b!").await;
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("a_b!"), "{}", stderr(&bad));
    for url in ["127.0.0.1:9", "http://127.0.0.1:65536", "http://:9"] {
        let bad = command(&app, &["session"])
            .args(["--url", url])
            .output()
            .await
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{url}: {}", stderr(&bad));
        assert!(stderr(&bad).contains("--url"), "{url}: {}", stderr(&bad));
    }

    // Nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let down = command(&app, &["session"])
        .args(["--url", &closed])
        .output()
        .await
        .unwrap();
    let text = failure(&down);
    assert!(
        text.contains("mkoba serve") && text.contains("--url"),
        "{text}"
    );

    // An origin the application does not allow.
    let r = app
        .mpesa_settings(json!({"allowed_origins": ["https://shop.example"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = failure(&mpesa(&app, &["session"]).await);
    assert!(
        text.contains("Origin not allowed") && text.contains("--origin"),
        "{text}"
    );
    let ok = mpesa(&app, &["session", "--origin", "https://shop.example"]).await;
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[tokio::test]
async fn cli_waits_for_a_new_session_and_explains_one_that_stays_unlive_and_an_unanswered_payment()
{
    // A new session works after 1.5 s: the call is sent again with it until it does (the
    // real gateway's "up to 30 seconds"), where each run used to fail at once.
    let app = TestApp::spawn_with(|s| {
        s.mpesa.session_activation = Duration::from_millis(1500);
    })
    .await;
    let out = mpesa(&app, &["c2b", "--amount", "1", "--msisdn", "000000000001"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // One that stays unlive past --session-wait-secs: said so, with what to do.
    let app = TestApp::spawn_with(|s| {
        s.mpesa.session_activation = Duration::from_secs(60);
    })
    .await;
    let text = failure(
        &mpesa(
            &app,
            &[
                "c2b",
                "--amount",
                "1",
                "--msisdn",
                "000000000001",
                "--session-wait-secs",
                "1",
            ],
        )
        .await,
    );
    assert!(text.contains("Session key not yet active"), "{text}");
    assert!(text.contains("--session-wait-secs 1"), "{text}");

    let app = TestApp::spawn_with(|s| s.mpesa.sync_timeout = Duration::from_millis(300)).await;
    let text = failure(
        &mpesa(
            &app,
            &[
                "c2b",
                "--amount",
                "1",
                "--msisdn",
                "000000000002",
                "--conversation-id",
                "slow1",
            ],
        )
        .await,
    );
    assert!(text.contains("INS-9"), "{text}");
    assert!(
        text.contains("no answer in time (the customer gave none"),
        "{text}"
    );
    assert!(text.contains("mkoba mpesa status slow1"), "{text}");
    // The payment ended with the call (it stayed pending before).
    let status = json(&mpesa(&app, &["status", "slow1", "--json"]).await);
    assert_eq!(status["output_ResponseTransactionStatus"], "Expired");
}
