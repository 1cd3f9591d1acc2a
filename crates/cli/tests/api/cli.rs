//! The `mkoba momo …` client subcommands: the built binary against a real server.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::TestApp;

/// Runs `mkoba momo <args>` against `app`, with no credentials from the environment.
async fn momo(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .arg("momo")
        .args(args)
        .args(["--url", &app.base])
        .env_remove("MOMO_API_USER")
        .env_remove("MOMO_API_KEY")
        .env_remove("MOMO_TARGET_ENVIRONMENT")
        .env_remove("MOMO_COLLECTION_SUBSCRIPTION_KEY")
        .env_remove("MOMO_DISBURSEMENT_SUBSCRIPTION_KEY")
        .env_remove("MOMO_REMITTANCE_SUBSCRIPTION_KEY")
        .env_remove("MKOBA_URL")
        .env("MKOBA_DATA", "/nonexistent/mkoba-data")
        .output()
        .await
        .expect("mkoba runs")
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

/// `provision --json` → `(api user, api key)`.
async fn provision(app: &TestApp, host: &str) -> (String, String) {
    let v = json(
        &momo(
            app,
            &[
                "provision",
                "--callback-host",
                host,
                "--subscription-key",
                app.key("collection"),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(v["targetEnvironment"], "sandbox");
    (
        v["apiUser"].as_str().unwrap().to_owned(),
        v["apiKey"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn cli_provisions_pays_and_reads_status_and_balance() {
    let app = TestApp::spawn().await;
    let (user, key) = provision(&app, "127.0.0.1").await;
    let creds = [
        "--api-user",
        &user,
        "--api-key",
        &key,
        "--subscription-key",
        app.key("collection"),
    ];
    let with = |args: &[&'static str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&creds);
        v
    };

    let token = json(&momo(&app, &with(&["token", "--json"])).await);
    assert_eq!(token["expires_in"], 3600);

    let paid = json(
        &momo(
            &app,
            &with(&[
                "pay",
                "--amount",
                "120",
                "--payer",
                "256774290781",
                "--json",
            ]),
        )
        .await,
    );
    assert_eq!(paid["status"], "SUCCESSFUL");
    assert!(paid["financialTransactionId"].is_string());
    let reference = paid["referenceId"].as_str().unwrap().to_owned();

    let mut args = with(&["status", "--json"]);
    args.push(&reference);
    let status = json(&momo(&app, &args).await);
    assert_eq!(status["status"], "SUCCESSFUL");
    assert_eq!(status["amount"], "120");

    let balance = json(&momo(&app, &with(&["balance", "--json"])).await);
    assert_eq!(balance["availableBalance"], "120");
    assert_eq!(balance["currency"], "EUR");

    // For people: one line with the outcome; a payment that ended FAILED is a failed
    // command (exit status 1), as an M-Pesa call answered with another code than INS-0.
    let human = momo(
        &app,
        &with(&["pay", "--amount", "1", "--payer", "46733123451"]),
    )
    .await;
    assert_eq!(human.status.code(), Some(1), "{}", stderr(&human));
    let line = stdout(&human);
    assert!(
        line.contains("FAILED") && line.contains("APPROVAL_REJECTED"),
        "{line}"
    );
    assert!(
        stderr(&human).contains("ended FAILED, reason APPROVAL_REJECTED"),
        "{}",
        stderr(&human)
    );
    let human = momo(&app, &with(&["balance"])).await;
    assert_eq!(stdout(&human).trim(), "collection balance: 120 EUR");
}

#[tokio::test]
async fn cli_disburses_and_refunds_from_the_float() {
    let app = TestApp::spawn().await;
    let (user, key) = provision(&app, "127.0.0.1").await;
    let run = |args: Vec<&str>, product: &'static str| {
        let mut v: Vec<String> = args.into_iter().map(str::to_owned).collect();
        for extra in ["--api-user", &user, "--api-key", &key] {
            v.push(extra.to_owned());
        }
        for extra in ["--subscription-key", app.key(product), "--json"] {
            v.push(extra.to_owned());
        }
        let app = &app;
        async move {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            momo(app, &refs).await
        }
    };
    let before = json(&run(vec!["balance", "--product", "disbursement"], "disbursement").await);
    let sent = json(
        &run(
            vec!["disburse", "--amount", "300", "--payee", "256774290781"],
            "disbursement",
        )
        .await,
    );
    assert_eq!(sent["status"], "SUCCESSFUL");
    assert_eq!(sent["payee"]["partyId"], "256774290781");
    let deposit = json(
        &run(
            vec![
                "disburse",
                "--kind",
                "deposit",
                "--amount",
                "5",
                "--payee",
                "256774290781",
            ],
            "disbursement",
        )
        .await,
    );
    assert_eq!(deposit["status"], "SUCCESSFUL");
    let after = json(&run(vec!["balance", "--product", "disbursement"], "disbursement").await);
    let n = |v: &Value| {
        v["availableBalance"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(n(&before) - n(&after), 305);

    let paid = json(
        &run(
            vec!["pay", "--amount", "40", "--payer", "256774290781"],
            "collection",
        )
        .await,
    );
    let reference = paid["referenceId"].as_str().unwrap().to_owned();
    let refund = json(&run(vec!["refund", &reference, "--amount", "40"], "disbursement").await);
    assert_eq!(refund["status"], "SUCCESSFUL");
    // Nothing remains to refund: the rule is said with the reason.
    let again = run(vec!["refund", &reference, "--amount", "1"], "disbursement").await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("never more than remains"),
        "{}",
        stderr(&again)
    );
    let remit = json(
        &run(
            vec![
                "disburse",
                "--kind",
                "remittance",
                "--amount",
                "9",
                "--payee",
                "256774290781",
            ],
            "remittance",
        )
        .await,
    );
    assert_eq!(remit["status"], "SUCCESSFUL");
}

#[tokio::test]
async fn cli_pay_without_credentials_provisions_a_sandbox_user() {
    let app = TestApp::spawn().await;
    let o = momo(
        &app,
        &[
            "pay",
            "--amount",
            "7",
            "--payer",
            "256774290781",
            "--subscription-key",
            app.key("collection"),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Created sandbox API user"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("SUCCESSFUL"), "{}", stdout(&o));
}

/// Runs the `mkoba momo status …` command between the first backquotes of `printed` as a
/// person pastes it into a shell (`"$MOMO_API_KEY"` expanded to `api_key`, the test's clean
/// environment otherwise), with `--wait`; it must succeed. The command and what it printed.
async fn run_printed_status(printed: &str, api_key: &str) -> (String, String) {
    let command = printed
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {printed}"))
        .replace("\"$MOMO_API_KEY\"", api_key);
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..3], ["mkoba", "momo", "status"], "{command}");
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(&words[1..])
        .arg("--wait")
        .env_remove("MOMO_API_USER")
        .env_remove("MOMO_API_KEY")
        .env_remove("MKOBA_URL")
        .env_remove("MKOBA_DATA")
        .output()
        .await
        .expect("mkoba runs");
    assert!(
        o.status.success(),
        "{command}\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    (command, stdout(&o))
}

/// A payment not waited for (`--no-wait`) prints the command that reads its status, and
/// that command works as printed: the `--kind` of a deposit, a remittance or a refund,
/// and the API user the command made when none was given (before, every such command
/// read a request-to-pay, and without the made API user it could not run at all).
#[tokio::test]
async fn a_payment_not_waited_for_prints_a_status_command_that_works() {
    let app = TestApp::spawn().await;
    // Runs the command between the backticks of `printed`, as a person pastes it (with the
    // test's clean environment).
    let check = |printed: String, api_key: String| {
        let app = &app;
        async move {
            let (command, status) = run_printed_status(&printed, &api_key).await;
            assert!(
                command.contains(&format!("--url {}", app.base)),
                "{command}"
            );
            (command, status)
        }
    };

    // No API user given: the one made is in the command.
    let o = momo(
        &app,
        &[
            "pay",
            "--amount",
            "7",
            "--payer",
            "256774290781",
            "--no-wait",
            "--subscription-key",
            app.key("collection"),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (command, status) = check(stdout(&o), String::new()).await;
    assert!(
        command.contains("--api-user ") && command.contains(" --api-key "),
        "{command}"
    );
    assert!(!stdout(&o).contains("MOMO_API_KEY"), "{}", stdout(&o));
    assert!(!command.contains("--kind"), "{command}");
    assert!(status.contains("SUCCESSFUL"), "{status}");
    let reference = command.split_whitespace().nth(3).unwrap().to_owned();

    let (user, key) = provision(&app, "127.0.0.1").await;
    for (args, product, kind) in [
        (
            vec![
                "disburse",
                "--kind",
                "deposit",
                "--amount",
                "5",
                "--payee",
                "256774290781",
            ],
            "disbursement",
            "deposit",
        ),
        (
            vec!["disburse", "--amount", "5", "--payee", "256774290781"],
            "disbursement",
            "transfer",
        ),
        (
            vec![
                "disburse",
                "--kind",
                "remittance",
                "--amount",
                "5",
                "--payee",
                "256774290781",
            ],
            "remittance",
            "remittance-transfer",
        ),
        (
            vec!["refund", &reference, "--amount", "7"],
            "disbursement",
            "refund",
        ),
    ] {
        let mut args = args;
        args.extend([
            "--no-wait",
            "--api-user",
            &user,
            "--api-key",
            &key,
            "--subscription-key",
            app.key(product),
        ]);
        let o = momo(&app, &args).await;
        assert!(o.status.success(), "{}", stderr(&o));
        // The key given is not printed back: the command reads it from the environment.
        assert!(
            !stdout(&o).contains(&key)
                && stdout(&o).contains(&format!("--api-user {user} --api-key \"$MOMO_API_KEY\"")),
            "{}",
            stdout(&o)
        );
        // Nor is it in the environment here: the line says to set it.
        assert!(
            stdout(&o).ends_with("` (with MOMO_API_KEY set to the API key you gave)\n"),
            "{}",
            stdout(&o)
        );
        let (command, status) = check(stdout(&o), key.clone()).await;
        assert!(command.contains(&format!(" --kind {kind} ")), "{command}");
        assert!(
            command.contains(&format!(" --subscription-key {}", app.key(product))),
            "{command}"
        );
        assert!(status.contains("SUCCESSFUL"), "{kind}: {status}");
    }
}

/// A proxy in front of `backend` that passes every request on and relays its answer, but
/// closes the connection without an answer after passing on a request whose path starts
/// with `drop_after` (after `hold`: an answer that does not come in time): an answer lost
/// after the request was carried out.
async fn losing_proxy(
    backend: std::net::SocketAddr,
    drop_after: &'static str,
    hold: Duration,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    async fn request(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if bytes.len() >= end + 4 + length {
                    return Some(bytes);
                }
            }
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                // One request a connection: the backend closes after answering it.
                let Some(mut req) = request(&mut client).await else {
                    return;
                };
                let line_end = req.windows(2).position(|w| w == b"\r\n").unwrap();
                req.splice(line_end + 2..line_end + 2, *b"Connection: close\r\n");
                let dropped = req.starts_with(format!("POST {drop_after}").as_bytes());
                let mut server = tokio::net::TcpStream::connect(backend).await.unwrap();
                server.write_all(&req).await.unwrap();
                let mut answer = Vec::new();
                server.read_to_end(&mut answer).await.unwrap();
                if dropped {
                    tokio::time::sleep(hold).await;
                } else {
                    let _ = client.write_all(&answer).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A payment whose answer was lost after it was carried out: the error names its reference
/// id and the command that reads it (nothing printed it, and the hint said "is the server
/// running?"), and that command finds the payment.
#[tokio::test]
async fn a_payment_whose_answer_was_lost_is_named_with_the_command_that_finds_it() {
    let app = TestApp::spawn().await;
    let (user, key) = provision(&app, "127.0.0.1").await;
    let backend: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let proxy = losing_proxy(backend, "/collection/v1_0/requesttopay", Duration::ZERO).await;
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["momo", "pay", "--amount", "7", "--payer", "256774290781"])
        .args(["--url", &proxy, "--api-user", &user, "--subscription-key"])
        .arg(app.key("collection"))
        .env("MOMO_API_KEY", &key)
        .env_remove("MOMO_API_USER")
        .env_remove("MKOBA_URL")
        .env("MKOBA_DATA", "/nonexistent/mkoba-data")
        .output()
        .await
        .expect("mkoba runs");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains("the connection broke before the answer")
            && said.contains("the request may have been carried out"),
        "{said}"
    );
    assert!(!said.contains("is the server running"), "{said}");
    assert!(said.contains("--api-key \"$MOMO_API_KEY\"`"), "{said}");
    // The payment is there, under that id.
    let (command, status) = run_printed_status(&said, &key).await;
    assert!(status.contains("SUCCESSFUL"), "{status}");
    let reference = command.split_whitespace().nth(3).unwrap();
    assert!(said.contains(&format!("--reference {reference}")), "{said}");
    // No answer within --timeout-secs: the same, said so.
    let slow = losing_proxy(
        backend,
        "/collection/v1_0/requesttopay",
        Duration::from_secs(5),
    )
    .await;
    // A payment through `url` that waits a second for each answer.
    let pay_within_a_second = |url: String| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mkoba"));
        command
            .args(["momo", "pay", "--amount", "7", "--payer", "256774290781"])
            .args(["--url", &url, "--api-user", &user, "--timeout-secs", "1"])
            .args(["--subscription-key", app.key("collection")])
            .env("MOMO_API_KEY", &key)
            .env("MKOBA_DATA", "/nonexistent/mkoba-data");
        async move { command.output().await.expect("mkoba runs") }
    };
    let o = pay_within_a_second(slow).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(said.contains("no answer within 1000 ms"), "{said}");
    let (_, status) = run_printed_status(&said, &key).await;
    assert!(status.contains("SUCCESSFUL"), "{status}");
    // The token's answer lost: the payment was never sent, and is not said to be there.
    let tokenless = losing_proxy(backend, "/collection/token", Duration::from_secs(5)).await;
    let o = pay_within_a_second(tokenless).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains("/collection/token") && !said.contains("may have been carried out"),
        "{said}"
    );
    // A server that is not there is still told as one.
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["momo", "pay", "--amount", "7", "--payer", "256774290781"])
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--api-user",
            &user,
            "--subscription-key",
        ])
        .arg(app.key("collection"))
        .env("MOMO_API_KEY", &key)
        .env("MKOBA_DATA", "/nonexistent/mkoba-data")
        .output()
        .await
        .expect("mkoba runs");
    assert!(
        stderr(&o).contains("is the server running"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("may have been carried out"),
        "{}",
        stderr(&o)
    );
}

/// `--json` prints what a script needs when the wait runs out too: the reference and its
/// last status on stdout (it printed nothing there), exit status 1.
#[tokio::test]
async fn a_wait_that_runs_out_still_prints_json() {
    let app = TestApp::spawn().await;
    let o = momo(
        &app,
        &[
            "pay",
            "--amount",
            "3",
            // A payer who never answers.
            "--payer",
            "46733123464",
            "--wait-secs",
            "1",
            "--json",
            "--subscription-key",
            app.key("collection"),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(v["status"], "PENDING", "{v}");
    let reference = v["referenceId"].as_str().unwrap();
    assert!(stderr(&o).contains(reference), "{}", stderr(&o));
}

#[tokio::test]
async fn cli_errors_say_what_was_wrong_and_how_to_fix_it() {
    let app = TestApp::spawn().await;
    let (user, key) = provision(&app, "shop.example").await;
    let collection = app.key("collection").to_owned();
    let case = |args: Vec<&'static str>, extra: Vec<String>| {
        let mut v: Vec<String> = args.into_iter().map(str::to_owned).collect();
        v.extend(extra);
        let app = &app;
        async move {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            let o = momo(app, &refs).await;
            assert!(!o.status.success(), "{}", stdout(&o));
            stderr(&o)
        }
    };
    let creds = |k: &str| {
        vec![
            "--api-user".to_owned(),
            user.clone(),
            "--api-key".to_owned(),
            k.to_owned(),
            "--subscription-key".to_owned(),
            collection.clone(),
        ]
    };

    let e = case(
        vec![
            "pay",
            "--amount",
            "1",
            "--payer",
            "256774290781",
            "--callback-url",
            "http://127.0.0.1:9/cb",
        ],
        creds(&key),
    )
    .await;
    assert!(
        e.contains("INVALID_CALLBACK_URL_HOST") && e.contains("providerCallbackHost"),
        "{e}"
    );

    let e = case(vec!["balance", "--environment", "mtnghana"], creds(&key)).await;
    assert!(
        e.contains("NOT_ALLOWED_TARGET_ENVIRONMENT") && e.contains("wrong target environment"),
        "{e}"
    );

    let e = case(vec!["balance"], creds("0123456789abcdef0123456789abcdef")).await;
    assert!(
        e.contains("login_failed") && e.contains("wrong API user or API key"),
        "{e}"
    );

    let mut wrong_key = creds(&key);
    wrong_key[5] = app.key("disbursement").to_owned();
    let e = case(vec!["balance"], wrong_key).await;
    assert!(
        e.contains("wrong subscription key")
            && e.contains("the subscription key was given with --subscription-key"),
        "{e}"
    );
    // Keys read from another server's data directory: the refusal says where they came from.
    let other = TestApp::spawn().await;
    let other_data = other.data_dir().join("data").display().to_string();
    let mut from_other = creds(&key)[..4].to_vec();
    from_other.extend(["--data".to_owned(), other_data.clone()]);
    let e = case(vec!["balance"], from_other).await;
    assert!(
        e.contains("INVALID_SUBSCRIPTION_KEY")
            && e.contains(&format!(
                "the subscription key was read from the data directory {other_data} (--data / MKOBA_DATA): is it the data of the server at {}?",
                app.base
            )),
        "{e}"
    );

    let e = case(vec!["balance"], creds(&key)[..4].to_vec()).await;
    assert!(
        e.contains("no collection subscription key") && e.contains("--subscription-key"),
        "{e}"
    );

    let e = case(vec!["status", "not-a-uuid"], creds(&key)).await;
    assert!(e.contains("not a UUID"), "{e}");
}

#[tokio::test]
async fn bench_drives_lifecycles_through_the_sdk_and_reports_them() {
    let app = TestApp::spawn().await;
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "bench", "--url", &app.base, "-n", "40", "-c", "4", "--poll", "--json",
        ])
        .args(["--subscription-key", app.key("collection")])
        .output()
        .await
        .expect("mkoba bench runs");
    let report = json(&o);
    assert_eq!(report["accepted"], 40, "{report}");
    assert_eq!(report["lifecycles_completed"], 40, "{report}");
    assert_eq!(report["poll"]["successful"], 40, "{report}");
    // The same load against the bench's own bare 202 server first: both figures and
    // their ratio in one report.
    let ceiling = report["ceiling_accepted_per_s"]
        .as_f64()
        .expect("a ceiling");
    let ratio = report["accept_ratio"].as_f64().expect("a ratio");
    let accepted = report["accepted_per_s"].as_f64().unwrap();
    assert!(ceiling > 0.0, "{report}");
    assert!((ratio - accepted / ceiling).abs() < 0.01, "{report}");
    // The ceiling is the mean of a run before the load and one after it, and the report
    // says how far the two lie apart (the machine's speed moving during the run).
    let before = report["ceiling_before_per_s"].as_f64().expect("before");
    let after = report["ceiling_after_per_s"].as_f64().expect("after");
    assert!(before > 0.0 && after > 0.0, "{report}");
    assert!((ceiling - (before + after) / 2.0).abs() < 0.2, "{report}");
    let drift = report["ceiling_drift"].as_f64().expect("drift");
    assert!(
        (drift - (after - before).abs() / ceiling).abs() < 0.002,
        "{report}"
    );
    assert!(report["lifecycle_ratio"].as_f64().is_some(), "{report}");
    // The server's memory, from its `/metrics` (no operator's credentials given).
    let after = report["server_rss_after_mib"].as_f64().expect("RSS after");
    let peak = report["server_peak_rss_mib"].as_f64().expect("peak RSS");
    assert!(after > 1.0 && peak >= after, "{report}");
    // And the CPU the run cost it, in all and per lifecycle (the same figure twice).
    let cpu = report["server_cpu_s"].as_f64().expect("server CPU");
    let per = report["server_cpu_us_per_lifecycle"]
        .as_f64()
        .expect("CPU per lifecycle");
    assert!(cpu >= 0.0, "{report}");
    assert!((per - cpu * 1e6 / 40.0).abs() < 30.0, "{report}");
    // What the single writer did meanwhile, from the server's `/metrics`: at least one
    // pass per request-to-pay batch, each taking at least one command, the commit inside
    // the pass, and a share of the run.
    let writer = &report["writer"];
    let passes = writer["passes"].as_u64().expect("writer passes");
    assert!((1..=200).contains(&passes), "{report}");
    assert!(
        writer["commands_per_pass"].as_f64().unwrap() >= 1.0,
        "{report}"
    );
    let (pass_ms, commit_ms) = (
        writer["pass_ms"].as_f64().unwrap(),
        writer["commit_ms"].as_f64().unwrap(),
    );
    assert!(pass_ms > 0.0 && commit_ms <= pass_ms, "{report}");
    let busy = writer["busy"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= 1.0, "{report}");
    // The writer's thread: its shares of the run on a core and waiting for one (the
    // kernel's figures for that thread, from `/metrics`).
    let share = |name: &str| {
        writer[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {report}"))
    };
    let (on_core, waiting) = (share("on_core"), share("waiting_for_core"));
    assert!(on_core > 0.0 && waiting >= 0.0, "{report}");
    assert!(on_core + waiting <= 1.0, "{report}");
    // Progress goes to stderr: a plain line when stderr is not a terminal.
    assert!(stderr(&o).contains("accepted 40/40"), "{}", stderr(&o));
}

/// A run that did not go through whole prints its report and exits 1, so a script or a CI
/// job sees it (it exited 0 with 168,605 errors of 200,000).
#[tokio::test]
async fn a_bench_run_with_failures_exits_1_after_its_report() {
    // A server that sends no callback to loopback: every one of the bench's is missing.
    let app = TestApp::spawn_with(|s| s.dispatcher.allow_loopback = false).await;
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["bench", "--url", &app.base, "-n", "10", "-c", "2", "--json"])
        .args(["--no-ceiling", "--subscription-key", app.key("collection")])
        .output()
        .await
        .expect("mkoba bench runs");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("the report still");
    assert!(
        stderr(&o).contains("the run did not go through whole:"),
        "{report}\n{}",
        stderr(&o)
    );
    assert!(
        report["errors"].as_u64().unwrap() > 0 || report["callbacks_missing"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[tokio::test]
async fn cli_reads_a_local_servers_keys_from_its_data_directory() {
    let app = TestApp::spawn().await;
    let data = app.data_dir().join("data");
    let data = data.to_str().unwrap();
    let o = momo(
        &app,
        &[
            "pay",
            "--amount",
            "3",
            "--payer",
            "256774290781",
            "--data",
            data,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("SUCCESSFUL"), "{}", stdout(&o));
    let o = momo(
        &app,
        &[
            "disburse",
            "--amount",
            "3",
            "--payee",
            "256774290781",
            "--data",
            data,
        ],
    )
    .await;
    assert!(
        stdout(&o).contains("transfer") && stdout(&o).contains("SUCCESSFUL"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// An amount, payer or message that cannot be right is told before anything is sent: no
/// sandbox API user is made for the command (exit status 2, a usage error).
#[tokio::test]
async fn a_payment_that_cannot_be_right_is_refused_before_an_api_user_is_made() {
    let app = TestApp::spawn().await;
    let data = app.data_dir().join("data");
    let data = data.to_str().unwrap();
    let long = "m".repeat(161);
    let cases: [(&[&str], &str); 13] = [
        (
            &["--amount", "5", "--payer", "1"],
            "--payer must be an MSISDN: 4 to 15 digits",
        ),
        // Both made an API user before the server refused them.
        (
            &[
                "--amount",
                "99999999999999999999",
                "--payer",
                "256774290781",
            ],
            "is too large",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--currency",
                "usd",
            ],
            "--currency must be three upper-case letters",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--callback-url",
                "notaurl",
            ],
            "--callback-url must be an http:// or https:// URL",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--reference",
                "11111111-2222-1333-8444-555555555555",
            ],
            "is a version 1 UUID",
        ),
        (
            &["--amount", "-5", "--payer", "256774290781"],
            "--amount must be a positive",
        ),
        (
            &["--amount", "1.234", "--payer", "256774290781"],
            "--amount 1.234 has more decimals than EUR allows (2)",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--message",
                "a'b",
            ],
            "--message may not contain ' or &",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--api-user",
                "notauuid",
                "--api-key",
                "k",
            ],
            "--api-user must be a UUID",
        ),
        (
            &["--amount", "0", "--payer", "256774290781"],
            "--amount must be a positive",
        ),
        (
            &["--amount", "1e3", "--payer", "256774290781"],
            "--amount must be a positive",
        ),
        (
            &["--amount", "5", "--payer", "+256774290781"],
            "--payer must be an MSISDN",
        ),
        (
            &[
                "--amount",
                "5",
                "--payer",
                "256774290781",
                "--message",
                &long,
            ],
            "--message must be at most 160 characters",
        ),
    ];
    let users = || async {
        app.running
            .platform
            .portal()
            .api_users_of(mkoba_platform::SANDBOX_DEVELOPER)
            .await
            .unwrap()
            .len()
    };
    let before = users().await;
    for (args, says) in cases {
        let mut all = vec!["pay"];
        all.extend(args);
        all.extend(["--data", data]);
        let o = momo(&app, &all).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!stdout(&o).contains("Created"), "{}", stdout(&o));
    }
    assert_eq!(users().await, before, "no API user made");
    // A refund is checked the same way, and credentials half given are a usage error too.
    let original = uuid::Uuid::new_v4().to_string();
    for (args, says) in [
        (
            vec!["refund", &original, "--amount", "-5"],
            "--amount must be a positive",
        ),
        (
            vec!["refund", &original, "--amount", "5", "--message", "a&b"],
            "--message may not contain",
        ),
        (
            vec!["token", "--api-user", &original],
            "--api-user needs --api-key",
        ),
        // An empty key (`MOMO_API_KEY=`) is none given, not one the SDK refuses.
        (
            vec!["token", "--api-user", &original, "--api-key", ""],
            "--api-user needs --api-key",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--data", data]);
        let o = momo(&app, &all).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

/// Runs `mkoba clock <args>` against `app` with its collection key.
async fn clock(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .arg("clock")
        .args(args)
        .args([
            "--url",
            &app.base,
            "--subscription-key",
            app.key("collection"),
        ])
        .env_remove("MOMO_API_USER")
        .env_remove("MKOBA_URL")
        .env("MKOBA_DATA", "/nonexistent/mkoba-data")
        .output()
        .await
        .expect("mkoba runs")
}

#[tokio::test]
async fn cli_creates_advances_and_deletes_a_test_clock() {
    let app =
        TestApp::spawn_with(|s| s.platform.settle_delay = std::time::Duration::from_secs(86_400))
            .await;
    let (user, _) = provision(&app, "localhost").await;
    let made = json(
        &clock(
            &app,
            &[
                "create",
                "--api-user",
                &user,
                "--name",
                "cli",
                "--at-ms",
                "1767225600000",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(made["apiUser"], user.as_str());
    assert_eq!(made["now"], "2026-01-01T00:00:00.000Z");
    // A second one for the same API user says what to do instead.
    let again = clock(&app, &["create", "--api-user", &user]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains(&format!("API user {user} has a clock already")),
        "{}",
        stderr(&again)
    );
    // The server's refusal, without the payment hints of `mkoba momo` ("unknown reference
    // id …"), which are not about clocks, but with where to find the right id.
    let stranger = uuid::Uuid::new_v4().to_string();
    let o = clock(&app, &["create", "--api-user", &stranger]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("reference id"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("how to fix: no API user or test clock of that id belongs to the developer of this subscription key"),
        "{}",
        stderr(&o)
    );
    // Named by its API user, as `mkoba clock advance --api-user … 3d`.
    let moved = json(&clock(&app, &["advance", "--api-user", &user, "3d", "--json"]).await);
    assert_eq!(moved["now"], "2026-01-04T00:00:00.000Z");
    let o = clock(&app, &["list"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("API user {user}  now 2026-01-04T00:00:00.000Z")),
        "{}",
        stdout(&o)
    );
    // A unit the clock does not take: a usage error, told before anything is sent.
    let o = clock(&app, &["advance", "--api-user", &user, "3 weeks"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("90s, 15m, 3h, 2d"), "{}", stderr(&o));
    let o = clock(&app, &["delete", "--clock", made["id"].as_str().unwrap()]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = clock(&app, &["advance", "--api-user", &user, "1d"]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("has no test clock"), "{}", stderr(&o));
}

/// A client command never migrates the server's SQLite database: an older server running
/// on it would then read a schema it does not know (a newer `mkoba credentials` once
/// dropped an index under a running older server). It says what to do instead.
#[tokio::test]
async fn a_client_command_refuses_an_older_database_instead_of_migrating_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mkoba"));
        c.args(args).env_remove("MKOBA_DATA");
        c
    };
    let o = run(&["migrate", "--data", data.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // A directory without a database gets one, and the command says so (a mistyped
    // --data is seen at once); run again, it migrates what is there.
    assert!(
        stdout(&o).contains("no database was there: created a new one"),
        "{}",
        stdout(&o)
    );
    let again = run(&["migrate", "--data", data.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!stdout(&again).contains("created"), "{}", stdout(&again));
    let version = |path: &std::path::Path| -> usize {
        rusqlite::Connection::open(path.join("mkoba.db"))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let current = version(&data);
    assert!(current > 1);
    let set_version = |v: usize| {
        rusqlite::Connection::open(data.join("mkoba.db"))
            .unwrap()
            .pragma_update(None, "user_version", v)
            .unwrap()
    };
    let d = data.to_str().unwrap();
    let refused = async |command: &str| {
        let o = run(&[command, "--data", d]).output().await.unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        stderr(&o)
    };
    // The database as an older binary left it (its schema version one lower).
    set_version(current - 1);
    let e = refused("credentials").await;
    assert!(
        e.contains(&format!(
            "has schema version {} and this mkoba needs {current}",
            current - 1
        )),
        "{e}"
    );
    assert!(e.contains("mkoba migrate --data"), "{e}");
    assert_eq!(version(&data), current - 1, "left as it was");
    // Nor does `mkoba migrate` while a server holds the directory's lock.
    let lock = std::fs::File::options()
        .write(true)
        .open(data.join("serve.lock"))
        .unwrap();
    lock.try_lock().expect("the lock is free");
    let e = refused("migrate").await;
    assert!(
        e.contains("stop the server") && e.contains("another mkoba server is using"),
        "{e}"
    );
    assert_eq!(version(&data), current - 1, "left as it was");
    // Once the lock is free it runs (on the database as it really is: the schema above
    // was only made to look older).
    drop(lock);
    set_version(current);
    let o = run(&["migrate", "--data", d]).output().await.unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(version(&data), current);
}

/// Against a server whose `/metrics` is on its own address (`--metrics-listen`), `mkoba
/// bench --metrics-url` still reports the server's CPU and writer figures; without it, only
/// the health figures (a server's memory) are there.
#[tokio::test]
async fn bench_reads_the_servers_figures_at_its_metrics_address() {
    let app = TestApp::spawn_with(|s| {
        s.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let metrics = format!("http://{}", app.running.metrics_addr.expect("bound"));
    let bench = |extra: Vec<String>| {
        let app = &app;
        async move {
            let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
                .args([
                    "bench",
                    "--url",
                    &app.base,
                    "-n",
                    "20",
                    "-c",
                    "2",
                    "--no-ceiling",
                    "--json",
                ])
                .args(["--subscription-key", app.key("collection")])
                .args(extra)
                .output()
                .await
                .expect("mkoba bench runs");
            json(&o)
        }
    };
    let without = bench(vec![]).await;
    assert!(without["server_cpu_s"].is_null(), "{without}");
    let with = bench(vec!["--metrics-url".to_owned(), metrics.clone()]).await;
    assert_eq!(with["accepted"], 20, "{with}");
    assert!(with["server_cpu_s"].as_f64().is_some(), "{with}");
    assert!(with["writer"]["busy"].as_f64().is_some(), "{with}");
    // Its `/metrics` path may be given too.
    let with = bench(vec![
        "--metrics-url".to_owned(),
        format!("{metrics}/metrics"),
    ])
    .await;
    assert!(with["server_cpu_s"].as_f64().is_some(), "{with}");
    // Where nothing answers, the bench says so before it runs (the figures were left
    // out of its report, unsaid).
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["bench", "--url", &app.base, "-n", "20", "--no-ceiling"])
        .args(["--subscription-key", app.key("collection")])
        .args(["--metrics-url", "http://127.0.0.1:9"])
        .output()
        .await
        .expect("mkoba bench runs");
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("nothing answered at http://127.0.0.1:9/metrics"),
        "{o:?}"
    );
    // Without its scheme, it is a usage error (the figures were left out, unsaid).
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["bench", "--url", &app.base, "-n", "20", "--no-ceiling"])
        .args(["--subscription-key", app.key("collection")])
        .args(["--metrics-url", metrics.trim_start_matches("http://")])
        .output()
        .await
        .expect("mkoba bench runs");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--metrics-url must be an http:// URL"),
        "{stderr}"
    );
}

/// The banner's "Scripts:" line is a command that lists this server's own credentials and
/// resource URLs: run as printed, it names the address and the v1x ports the server is on
/// (not the defaults), and answers with the keys the server uses.
#[tokio::test]
async fn the_banners_scripts_command_lists_the_running_servers_resource_urls() {
    banners_scripts_command(false).await;
}

/// The same over `--tls`: the resource URLs are `https://`, and the scripts command says
/// `--tls` so that `mkoba credentials` prints them so too.
#[tokio::test]
async fn over_tls_the_banner_and_credentials_give_https_resource_urls() {
    banners_scripts_command(true).await;
}

async fn banners_scripts_command(tls: bool) {
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mpesa-v1x-ports",
            "c2b=0",
        ])
        .args(if tls { &["--tls"][..] } else { &[] })
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
        .env_remove("MKOBA_LISTEN")
        .env_remove("MKOBA_MPESA_V1X_PORTS")
        // An empty variable is unset (they stopped it with "a value is required").
        .env("MKOBA_DATABASE_URL", "")
        .env("MKOBA_TLS", "")
        .env("MKOBA_SETTLE_DELAY_MS", "")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mkoba starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut c2b, mut scripts) = (None, None, None);
    while scripts.is_none() {
        let line = lines.next_line().await.unwrap().expect("the banner");
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("MoMo Open API") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("POST") && line.contains("c2bPayment") {
            c2b = line.split_whitespace().last().map(str::to_owned);
        }
        scripts = line.strip_prefix("Scripts: ").map(str::to_owned);
    }
    let (base, c2b, scripts) = (
        base.unwrap(),
        c2b.expect("the v1x C2B URL"),
        scripts.unwrap(),
    );
    let words: Vec<&str> = scripts.split_whitespace().collect();
    assert_eq!(words[..2], ["mkoba", "credentials"], "{scripts}");
    assert_eq!(words.contains(&"--tls"), tls, "{scripts}");
    let scheme = if tls { "https" } else { "http" };
    assert!(c2b.starts_with(&format!("{scheme}://")), "{c2b}");
    // The server keeps its key pair in a key file and publishes its public key here.
    let data = dir.path().join("data");
    let published = std::fs::read_to_string(data.join("mpesa-public-key.txt")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(&words[1..])
        .env_remove("MKOBA_LISTEN")
        .env_remove("MKOBA_MPESA_V1X_PORTS")
        .env_remove("MKOBA_DATA")
        .env_remove("MKOBA_MPESA_KEY_FILE")
        .env("MKOBA_TLS", "")
        .env("MKOBA_DATABASE_URL", "")
        .output()
        .await
        .expect("mkoba credentials runs");
    assert!(out.status.success(), "{scripts}: {}", stderr(&out));
    let creds = json(&out);
    let urls: Vec<String> = creds["mpesa"]["resource_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["ssl"], tls, "{r}");
            format!(
                "{scheme}://{}:{}{}",
                r["address"].as_str().unwrap(),
                r["port"],
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let main_port = base.rsplit(':').next().unwrap().trim_end_matches('/');
    assert!(
        urls.iter()
            .any(|u| u.contains(&format!(":{main_port}/ipg/v1x/b2cPayment/"))),
        "{urls:?} on {base}"
    );
    assert!(urls.contains(&c2b), "{c2b} in {urls:?}");
    // The server's public key, not one made by the command (run without the key file).
    assert_eq!(creds["mpesa"]["public_key"], published.trim());
    assert!(
        !data.join("mpesa-private-key.pem").exists(),
        "no key pair of its own"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("mpesa-public-key.txt")).unwrap(),
        published
    );
    // Before any server started there, it says so instead of making a key.
    let empty = dir.path().join("never-served");
    let out = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["credentials", "--data"])
        .arg(&empty)
        .env_remove("MKOBA_MPESA_KEY_FILE")
        .env_remove("MKOBA_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!empty.join("mpesa-private-key.pem").exists());
}

/// A value the argument parser takes but Mkoba cannot is a usage error (exit status 2, as
/// the parser's own), and no error ends in a backtrace, even with `RUST_BACKTRACE` set.
#[tokio::test]
async fn usage_errors_exit_2_and_no_error_prints_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let missing = dir.path().join("nowhere");
    let missing = missing.to_str().unwrap();
    let user = uuid::Uuid::new_v4().to_string();
    let cases: [(&[&str], i32, &str); 18] = [
        // A negative amount was taken for a flag ("unexpected argument '-5'").
        (
            &["serve", "--data", data, "--opening-balance", "-5"],
            2,
            "--opening-balance \"-5\": amount must be greater than zero",
        ),
        // It printed resource URLs on port 0.
        (
            &[
                "credentials",
                "--data",
                data,
                "--mpesa-v1x-ports",
                "status=0",
            ],
            2,
            "the port of v1xQueryTransactionStatus is 0",
        ),
        // Each said only its file key (`profile`; `tls_cert and tls_key`).
        (
            &["serve", "--data", data, "--profile", "prod"],
            2,
            "--profile must be sandbox or production, got \"prod\" (profile in a config file, MKOBA_PROFILE)",
        ),
        (
            &[
                "serve",
                "--data",
                data,
                "--tls-cert",
                "/nonexistent/cert.pem",
            ],
            2,
            "--tls-key is needed with tls_cert",
        ),
        // Was status 1, as if the database had failed.
        (
            &[
                "admin",
                "create-operator",
                "--email",
                "notanemail",
                "--data",
                data,
            ],
            2,
            "\"notanemail\" is not an e-mail address",
        ),
        // Both were sent, and refused by the server with status 1.
        (
            &[
                "momo",
                "provision",
                "--environment",
                "mtnnowhere",
                "--url",
                "http://127.0.0.1:9",
            ],
            2,
            "--environment must be one of sandbox, mtnuganda",
        ),
        (
            &[
                "momo",
                "provision",
                "--callback-host",
                "bad host!",
                "--url",
                "http://127.0.0.1:9",
            ],
            2,
            "--callback-host must be a host name or address",
        ),
        (
            &["serve", "--data", data, "--callback-method", "DELETE"],
            2,
            "error: --callback-method must be PUT or POST, got \"DELETE\" (callback_method in a config file, MKOBA_CALLBACK_METHOD)",
        ),
        (
            &["serve", "--data", data, "--smtp-url", "notaurl"],
            2,
            "got no scheme",
        ),
        (
            &["bench", "-n", "0", "--subscription-key", "k"],
            2,
            "--requests must be at least 1",
        ),
        (
            &["bench-mpesa", "-c", "0", "--subscription-key", "k"],
            2,
            "--concurrency must be at least 1",
        ),
        (
            &["clock", "delete", "--subscription-key", "k"],
            2,
            "name the clock",
        ),
        (
            &[
                "clock",
                "delete",
                "--subscription-key",
                "k",
                "--clock",
                "../../v1_0/apiuser",
            ],
            2,
            "--clock must be a test clock's id",
        ),
        (
            &[
                "bench-mpesa",
                "--subscription-key",
                "k",
                "--url",
                "127.0.0.1:9",
            ],
            2,
            "--url must be the server's base URL",
        ),
        (
            &["bench", "--subscription-key", "k", "--url", "127.0.0.1:9"],
            2,
            "--url must be the server's base URL",
        ),
        // Credentials missing are usage errors, as half given ones are.
        (
            &[
                "momo",
                "balance",
                "--data",
                missing,
                "--api-user",
                &user,
                "--api-key",
                "k",
                "--url",
                "http://127.0.0.1:9",
            ],
            2,
            "no collection subscription key",
        ),
        (
            &[
                "mpesa",
                "credentials",
                "--data",
                missing,
                "--url",
                "http://127.0.0.1:9",
            ],
            2,
            "no M-Pesa credentials",
        ),
        // Not a usage error: no server there.
        (
            &[
                "bench-mpesa",
                "--subscription-key",
                "k",
                "--url",
                "http://127.0.0.1:9",
            ],
            1,
            "is the server running at --url?",
        ),
    ];
    for (args, status, says) in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env_remove("MKOBA_DATABASE_URL")
            .env_remove("MKOBA_URL")
            .output()
            .await
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(status), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.to_lowercase().contains("backtrace"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// A port in use fails `mkoba serve` before anything is made: no data directory, database
/// or key pair left behind (they were, before the binds came first).
#[tokio::test]
async fn serve_on_a_port_in_use_fails_before_making_anything() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["serve", "--listen", &addr, "--data"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(&format!("binding {addr}")), "{err}");
    assert!(!data.exists(), "nothing was made: {err}");
}

/// What a newcomer gets wrong is said in words: a wrong path in --url (a web page, not its
/// markup), an https:// URL at a plain-HTTP server, a test clock advanced by a unit it does
/// not take, a negative M-Pesa amount; and a market API user pays in its market's currency
/// without --currency.
#[tokio::test]
async fn newcomer_mistakes_are_said_in_words_and_a_market_user_pays_in_its_currency() {
    let app = TestApp::spawn().await;
    let data = app.data_dir().join("data");
    let data = data.to_str().unwrap();
    let (user, key) = provision(&app, "127.0.0.1").await;
    let creds = ["--api-user", &user, "--api-key", &key, "--data", data];
    let mut args = vec!["token"];
    args.extend(creds);
    let portal = format!("{}/portal", app.base);
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .arg("momo")
        .args(&args)
        .args(["--url", &portal])
        .output()
        .await
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("<!doctype"), "{err}");
    assert!(err.contains("not an API answer"), "{err}");
    let https = app.base.replace("http://", "https://");
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .arg("momo")
        .args(&args)
        .args(["--url", &https])
        .output()
        .await
        .unwrap();
    assert!(
        stderr(&o).contains("the server answers plain HTTP: use http://"),
        "{}",
        stderr(&o)
    );
    let o = clock(&app, &["advance", "1y", "--clock", "x"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a whole number and a unit"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["mpesa", "c2b", "--amount", "-3", "--msisdn", "000000000001"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not an M-Pesa amount"),
        "{}",
        stderr(&o)
    );

    // A market user (the sandbox developer may make them): UGX without --currency.
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["momo", "provision", "--json", "--environment", "mtnuganda"])
        .args(["--url", &app.base, "--data", data])
        .env_remove("MOMO_API_USER")
        .env_remove("MOMO_API_KEY")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let market = json(&o);
    assert_eq!(market["currency"], "UGX", "{market}");
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["momo", "pay", "--amount", "1000", "--payer", "256774290781"])
        .args([
            "--url",
            &app.base,
            "--data",
            data,
            "--environment",
            "mtnuganda",
        ])
        .args(["--api-user", market["apiUser"].as_str().unwrap()])
        .args(["--api-key", market["apiKey"].as_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // A sandbox user's provision says its currency too.
    let o = momo(&app, &["provision", "--json", "--data", data]).await;
    assert_eq!(json(&o)["currency"], "EUR", "{}", stdout(&o));
}

/// A command printing into a pipe whose reader has gone (`mkoba credentials | head -1`)
/// ends quietly with status 141, as a tool that `SIGPIPE` ends, not with a panic.
#[tokio::test]
async fn printing_into_a_closed_pipe_ends_quietly() {
    let app = TestApp::spawn().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["credentials", "--data"])
        .arg(app.data_dir().join("data"))
        .env_remove("MKOBA_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before the command prints anything.
    drop(child.stdout.take());
    let o = child.wait_with_output().await.unwrap();
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
