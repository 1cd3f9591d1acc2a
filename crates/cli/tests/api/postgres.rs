//! The server on PostgreSQL (`--database-url`): `serve` refuses an unmigrated database,
//! `mkoba migrate` migrates it, both APIs move money on it through two nodes sharing the
//! database, and the data outlives the server. (`nodes.rs` kills one of two processes.)

use std::net::SocketAddr;

use mkoba::Settings;
use mkoba::config::DatabaseUrl;
use serde_json::json;
use tokio::process::Command;
use uuid::Uuid;

use crate::helpers::{MPESA_TEST_KEY, TestApp, rtp_body};
use crate::mpesa_support::{conversation_of, tpcid};

/// The throwaway server of the store's own tests (`mkoba_testkit::pg`): one per test
/// binary, a database per test.
use mkoba_testkit::pg;

/// A new empty database (the sync PostgreSQL client must not run on a tokio thread).
pub async fn database() -> DatabaseUrl {
    DatabaseUrl(tokio::task::spawn_blocking(pg::database).await.unwrap())
}

pub async fn migrate(url: &DatabaseUrl) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["migrate", "--database-url", &url.0])
        .output()
        .await
        .expect("mkoba migrate runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn settings(dir: &tempfile::TempDir, url: &DatabaseUrl) -> Settings {
    let mut s = Settings::new(
        dir.path().join("data"),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    s.database_url = Some(url.clone());
    s.mpesa_key_file = Some(MPESA_TEST_KEY.into());
    s
}

/// A node on the database, with no M-Pesa key file: it takes the database's key pair.
fn on_database(s: &mut Settings, url: &DatabaseUrl) {
    s.database_url = Some(url.clone());
    s.mpesa_key_file = None;
}

#[tokio::test]
async fn serve_refuses_an_unmigrated_database_until_mkoba_migrate_runs() {
    let url = database().await;
    let dir = tempfile::tempdir().unwrap();
    let e = mkoba::start(settings(&dir, &url)).await.unwrap_err();
    let message = format!("{e:#}");
    assert!(
        message.contains("schema version 0") && message.contains("mkoba migrate"),
        "{message}"
    );
    let out = migrate(&url).await;
    let version = format!("schema version {}", mkoba_store_postgres::SCHEMA_VERSION);
    assert!(out.contains(&version), "{out}");
    assert!(!out.contains("password"), "{out}");
    let running = mkoba::start(settings(&dir, &url))
        .await
        .expect("starts once migrated");
    running.stop().await;
}

#[tokio::test]
async fn both_apis_move_money_on_postgresql_through_two_nodes() {
    let url = database().await;
    migrate(&url).await;
    let app = TestApp::spawn_with(|s| on_database(s, &url)).await;

    // MoMo: a request-to-pay settles on the ledger.
    let p = app.partner("127.0.0.1").await;
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(&p, reference, &rtp_body("42", "256770000042"), &[])
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        app.final_status(&p, reference).await["status"],
        "SUCCESSFUL"
    );

    // M-Pesa: a synchronous C2B and a duplicate of it.
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let paid = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(paid.status, 201, "{}", paid.text());
    let again = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(again.status, 409, "{}", again.text());
    app.assert_ledger_balanced().await;

    // A second node on the same database serves the same partners, tokens and payments,
    // and what it accepts settles and is seen through the first.
    let second = TestApp::spawn_with(|s| on_database(s, &url)).await;
    assert_eq!(second.keys.primary, app.keys.primary);
    let r = second
        .get(&p, &format!("/v1_0/requesttopay/{reference}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "SUCCESSFUL");
    let on_second = Uuid::new_v4();
    let r = second
        .request_to_pay(&p, on_second, &rtp_body("7", "256770000042"), &[])
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        app.final_status(&p, on_second).await["status"],
        "SUCCESSFUL"
    );
    // The same reference id through the other node is a duplicate.
    let r = app
        .request_to_pay(&p, on_second, &rtp_body("7", "256770000042"), &[])
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    // An M-Pesa session from one node is good on the other.
    let session = m.session().await;
    let there = second.mpesa().await;
    // Without a key file, the nodes' M-Pesa key pair is the database's: one for all.
    assert_eq!(there.public_key_b64, m.public_key_b64);
    let paid_there = there
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("3", "000000000001")),
        )
        .await;
    assert_eq!(paid_there.status, 201, "{}", paid_there.text());
    second.assert_ledger_balanced().await;
    second.stop().await;

    // The data outlives the server: a new one finds the payment.
    let conversation = conversation_of(&paid);
    let first_key = m.public_key_b64.clone();
    app.stop().await;
    let app = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let m = app.mpesa().await;
    assert_eq!(
        m.public_key_b64, first_key,
        "a restarted node keeps the key pair"
    );
    let q = m
        .query(
            "queryTransactionStatus/",
            &json!({
                "input_QueryReference": conversation,
                "input_Country": "TZN",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
            }),
        )
        .await;
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(q.json()["output_ResponseTransactionStatus"], "Completed");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn nodes_starting_at_once_on_a_fresh_database_all_start_with_the_same_keys() {
    let url = database().await;
    migrate(&url).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, c) = tokio::join!(
        mkoba::start(settings(&dirs[0], &url)),
        mkoba::start(settings(&dirs[1], &url)),
        mkoba::start(settings(&dirs[2], &url)),
    );
    let keys = |r: &mkoba::Running| {
        let mut k: Vec<String> = r
            .platform
            .credentials()
            .subscription_keys(mkoba_platform::SANDBOX_DEVELOPER)
            .into_iter()
            .map(|k| k.key)
            .collect();
        k.sort();
        k
    };
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
        keys(&a).len(),
        8,
        "a primary and a secondary key per MoMo product, the Collection Widget's included"
    );
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(keys(&a), keys(&c));
    for r in [a, b, c] {
        r.stop().await;
    }
}

#[tokio::test]
async fn the_database_password_never_shows_in_help_or_errors() {
    for args in [&["serve", "--help"][..], &["migrate", "--help"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(args)
            .env(
                "MKOBA_DATABASE_URL",
                "postgres://mkoba:s3cretpw@127.0.0.1:1/none",
            )
            .output()
            .await
            .expect("mkoba runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(all.contains("MKOBA_DATABASE_URL"), "{all}");
        assert!(!all.contains("s3cretpw"), "{all}");
    }
    // A database that cannot be reached: the error names it without the password.
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "migrate",
            "--database-url",
            "postgres://mkoba:s3cretpw@127.0.0.1:1/none",
        ])
        .output()
        .await
        .expect("mkoba runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("s3cretpw"), "{stderr}");
}

/// `mkoba credentials --database-url` prints exactly what the nodes serve, and creates no
/// local data directory; without a database it says so.
#[tokio::test]
async fn credentials_on_postgresql_are_the_nodes_and_nothing_is_created_locally() {
    use base64::Engine as _;
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let node =
        crate::crash::start_node_with(&dir.path().join("node"), &["--database-url", &url.0]).await;
    let work = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["credentials", "--json", "--database-url", &url.0])
        .current_dir(work.path())
        .env_remove("MKOBA_DATA")
        .env("MKOBA_MPESA_KEY_FILE", MPESA_TEST_KEY)
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["collection"]["primary"], node.key.as_str());
    let operator = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            v["operator"]["email"].as_str().unwrap(),
            v["operator"]["password"].as_str().unwrap()
        ))
    );
    assert_eq!(operator, node.operator, "the operator the node printed");
    assert!(v["portal"]["password"].is_string());
    assert!(v["mpesa"]["public_key"].is_string());
    assert!(
        !work.path().join("mkoba-data").exists(),
        "no local data directory was made"
    );

    // The client subcommands read the same keys from the database.
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "momo",
            "provision",
            "--json",
            "--database-url",
            &url.0,
            "--url",
            &node.base,
        ])
        .current_dir(work.path())
        .env_remove("MKOBA_DATA")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["apiKey"].is_string() || v["api_key"].is_string(), "{v}");
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "mpesa",
            "session",
            "--json",
            "--database-url",
            &url.0,
            "--url",
            &node.base,
        ])
        .current_dir(work.path())
        .env_remove("MKOBA_DATA")
        .env("MKOBA_MPESA_KEY_FILE", MPESA_TEST_KEY)
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!work.path().join("mkoba-data").exists());
    // And an operator made beside the node. None of these commands is a node: the one node
    // is the only row of `nodes` (each used to leave a row of its own).
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "admin",
            "create-operator",
            "--email",
            "ops-pg@example.org",
            "--database-url",
            &url.0,
        ])
        .current_dir(work.path())
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conn = url.0.clone();
    let nodes: i64 = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conn, postgres::NoTls).unwrap();
        client
            .query_one("SELECT count(*) FROM nodes", &[])
            .unwrap()
            .get(0)
    })
    .await
    .unwrap();
    assert_eq!(nodes, 1, "only the server's node");

    // No database URL and no data directory: an error that says what to do.
    let o = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["credentials"])
        .current_dir(work.path())
        .env_remove("MKOBA_DATA")
        .env_remove("MKOBA_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("no Mkoba database in ./mkoba-data"),
        "{stderr}"
    );
    assert!(stderr.contains("mkoba serve"), "{stderr}");
    assert!(!work.path().join("mkoba-data").exists());
}

/// A NUL cannot be stored in PostgreSQL, and the writer commits many clients' requests at
/// once: an e-mail payer holding one made every request of its pass fail with 503. It is
/// refused (400) before the writer now, the valid requests sent with it are all taken, and
/// a NUL in a portal sign-in's e-mail is a refused sign-in, not a 500.
#[tokio::test]
async fn a_nul_in_one_request_fails_neither_it_with_a_500_nor_anyone_elses_on_postgresql() {
    let url = database().await;
    migrate(&url).await;
    let app = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let p = app.partner("127.0.0.1").await;
    let poison = r#"{"amount":"10","currency":"EUR","externalId":"1","payer":{"partyIdType":"EMAIL","partyId":"x\u0000@b.co"},"payerMessage":"m","payeeNote":"n"}"#;
    for _ in 0..3 {
        let valid: Vec<_> = (0..20)
            .map(|i| {
                let (app, p) = (&app, &p);
                async move {
                    app.request_to_pay(
                        p,
                        Uuid::new_v4(),
                        &rtp_body("5", &format!("2567700001{i:02}")),
                        &[],
                    )
                    .await
                }
            })
            .collect();
        let bad = app.request_to_pay(&p, Uuid::new_v4(), poison, &[]);
        let (bad, valid) = tokio::join!(bad, futures_util::future::join_all(valid));
        assert_eq!(bad.status, 400, "{}", bad.text());
        assert!(bad.text().contains("partyId"), "{}", bad.text());
        for r in valid {
            assert_eq!(r.status, 202, "{}", r.text());
        }
    }
    let mut b = crate::portal::Browser::new(&app.base);
    let r = b.sign_in("a\u{0}b@x.co", "a long password").await;
    assert_eq!(r.status, 401, "{}", r.text());
    app.assert_ledger_balanced().await;
}

/// Three `mkoba serve` processes started together on a fresh database, without a key
/// file: one makes the M-Pesa key pair while the others wait for it, so all three then
/// create the sandbox developer's rows (keys, sign-in, operator, M-Pesa application) at
/// the same moment. All three start and print the same credentials and public key. The
/// banner's `Scripts:` line names the database URL's variable where it came from, and a
/// place for it where the URL was a flag (the variable's name alone failed, unset).
#[tokio::test]
async fn processes_starting_together_on_a_fresh_database_all_start_alike() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let url = database().await;
    migrate(&url).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mkoba"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path());
        if i == 2 {
            command
                .env_remove("MKOBA_DATABASE_URL")
                .arg("--database-url")
                .arg(&url.0);
        } else {
            command.env("MKOBA_DATABASE_URL", &url.0);
        }
        let child = command
            .env("MKOBA_LOG", "warn")
            .env_remove("MKOBA_MPESA_KEY_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mkoba starts");
        children.push(child);
    }
    let mut credentials = Vec::new();
    let mut scripts = Vec::new();
    for (child, dir) in children.iter_mut().zip(&dirs) {
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        // Until the banner's last line, or the end of its output if it stopped.
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("Scripts:") {
                scripts.push(line);
                break;
            }
            banner.push(line);
        }
        let Some(base) = banner.iter().find_map(|l| {
            l.trim()
                .strip_prefix("MoMo Open API")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        }) else {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .await
                .unwrap();
            panic!("a node did not start: {err}");
        };
        // The credentials, wherever the node listens and whatever its data directory.
        let mine: Vec<String> = banner
            .iter()
            .filter(|l| {
                let l = l.trim();
                l.contains("sign in:") || l.contains(" primary ") || l.starts_with("API key")
            })
            .map(|l| l.replace(&base, "BASE"))
            .collect();
        let public = std::fs::read_to_string(dir.path().join("mpesa-public-key.txt")).unwrap();
        credentials.push((mine, public));
    }
    assert_eq!(
        credentials[0].0.len(),
        7,
        "two sign-ins, four products' keys, the M-Pesa API key: {:?}",
        credentials[0].0
    );
    assert_eq!(credentials[0], credentials[1]);
    assert_eq!(credentials[0], credentials[2]);
    assert!(
        scripts[0].contains(r#"--database-url "$MKOBA_DATABASE_URL""#),
        "{scripts:?}"
    );
    assert!(
        scripts[2].contains("--database-url '<the database URL>'"),
        "{scripts:?}"
    );
    assert!(!scripts.iter().any(|s| s.contains(&url.0)), "{scripts:?}");
}

/// A test clock made through one node is seen, moved and deleted through another at once,
/// before that node's writer has had any reason to run a pass of its own.
#[tokio::test]
async fn a_test_clock_made_on_one_node_is_found_at_once_on_another() {
    let url = database().await;
    migrate(&url).await;
    let first = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let second = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let clocks = |app: &TestApp, method: &str, path: &str, body: Option<String>| {
        let key = app.key("collection").to_owned();
        let url = format!("{}/_mkoba/test_clocks{path}", app.base);
        let http = crate::helpers::Http::new();
        let method = method.to_owned();
        async move {
            http.send(
                &method,
                &url,
                &[
                    ("Ocp-Apim-Subscription-Key", &key),
                    ("Content-Type", "application/json"),
                ],
                body.as_deref(),
            )
            .await
        }
    };
    for round in 0..3 {
        let p = first.partner("127.0.0.1").await;
        let r = clocks(
            &first,
            "POST",
            "",
            Some(
                json!({"apiUser": p.user.to_string(), "frozenTimeMs": 1_800_000_000_000i64})
                    .to_string(),
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let r = clocks(&second, "GET", &format!("/{id}"), None).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        let listed = clocks(&second, "GET", "", None).await.json();
        assert_eq!(
            listed["testClocks"].as_array().unwrap().len(),
            1,
            "{listed}"
        );
        let r = clocks(
            &second,
            "POST",
            &format!("/{id}/advance"),
            Some(json!({"by": "1d"}).to_string()),
        )
        .await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(r.json()["nowMs"], 1_800_086_400_000i64, "{}", r.text());
        let r = clocks(&first, "GET", &format!("/{id}"), None).await;
        assert_eq!(r.json()["nowMs"], 1_800_086_400_000i64, "{}", r.text());
        let r = clocks(&second, "DELETE", &format!("/{id}"), None).await;
        assert_eq!(r.status, 204, "round {round}: {}", r.text());
    }
    // A token issued on a clock behind real time, through the node that made the clock, is
    // taken at once by the other: it looked expired there by real time until that node
    // took the clock in (401 "access token expired" for about 100 ms).
    for round in 0..5 {
        let mut p = first.partner("127.0.0.1").await;
        let behind = first.running.platform.now_ms() - 7_200_000;
        let r = clocks(
            &first,
            "POST",
            "",
            Some(json!({"apiUser": p.user.to_string(), "frozenTimeMs": behind}).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        p.token = first.token("collection", p.user, &p.key).await;
        let r = second
            .get(&p, &format!("/v1_0/requesttopay/{}", Uuid::new_v4()))
            .await;
        assert_eq!(r.status, 404, "round {round}: {}", r.text());
    }
    // An id no node knows is still 404, on either.
    let unknown = Uuid::new_v4();
    for app in [&first, &second] {
        let r = clocks(app, "GET", &format!("/{unknown}"), None).await;
        assert_eq!(r.status, 404, "{}", r.text());
        let r = clocks(
            app,
            "POST",
            &format!("/{unknown}/advance"),
            Some(json!({"by": "1d"}).to_string()),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.text());
    }
}

/// Payments under a once-only direct-debit mandate sent to two nodes at the same moment:
/// each node's writer checks the mandate's schedule in its pass, after taking in what the
/// other node committed, so one payment passes across both and the customer is debited
/// once.
#[tokio::test]
async fn a_once_only_mandate_pays_once_across_two_nodes() {
    use crate::mpesa_async::{assert_debited_once, debit, once_only};
    use crate::mpesa_support::code;
    let url = database().await;
    migrate(&url).await;
    let app = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let second = TestApp::spawn_with(|s| on_database(s, &url)).await;
    let here = app.mpesa().await;
    let there = second.mpesa().await;
    let session = here.session().await;
    let r = here
        .send(
            "POST",
            "directDebitCreation/",
            &session,
            Some(&once_only("4545")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bodies: Vec<_> = (0..40).map(|_| debit("4545", "1")).collect();
    let payments = bodies.iter().enumerate().map(|(i, body)| {
        let node = if i % 2 == 0 { &here } else { &there };
        node.send("POST", "directDebitPayment/", &session, Some(body))
    });
    let answers = futures_util::future::join_all(payments).await;
    let codes: Vec<_> = answers.iter().map(code).collect();
    assert_eq!(
        answers.iter().filter(|r| r.status == 201).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| c.0 == 201 || *c == (401, "INS-6".to_owned())),
        "the others are outside the schedule: {codes:?}"
    );
    assert_debited_once(&second).await;
    second.stop().await;
    app.stop().await;
}

/// A lost database is met by every request: the log says so at most once a second, with a
/// count of the others, instead of a line per request (an auditor's ten seconds of
/// PostgreSQL down wrote about 50,000 lines), and the requests are answered the dialect's
/// 503; once the database is back, they are answered again.
#[tokio::test]
async fn a_lost_database_is_logged_once_a_second_not_once_a_request() {
    let url = database().await;
    migrate(&url).await;
    let name = url.0.rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let node = crate::crash::start_node_logged(
        &dir.path().join("node"),
        &["--database-url", &url.0],
        log.clone(),
    )
    .await;
    let http = crate::helpers::Http::new();
    let read = || {
        let (http, base, key) = (http.clone(), node.base.clone(), node.key.clone());
        async move {
            http.send(
                "GET",
                &format!("{base}/_mkoba/transactions/{}", Uuid::new_v4()),
                &[("Ocp-Apim-Subscription-Key", &key)],
                None,
            )
            .await
        }
    };
    assert_eq!(read().await.status, 404);
    // The database stops taking connections, and the node's are cut.
    let admin = |sql: String| tokio::task::spawn_blocking(move || pg::server().admin(&sql));
    admin(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut refused = 0;
    for _ in 0..200 {
        let r = read().await;
        if r.status == 503 {
            assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE", "{}", r.text());
            assert!(r.header("retry-after").is_some());
            refused += 1;
        } else {
            assert_eq!(r.status, 404, "{}", r.text());
        }
    }
    // Long enough for several heartbeats (one a second) to fail.
    tokio::time::sleep(std::time::Duration::from_secs(4).saturating_sub(started.elapsed())).await;
    let seconds = started.elapsed().as_secs();
    admin(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    assert!(refused >= 100, "{refused} of 200 met the lost database");
    // (The log's lines may trail the answers in the pipe.)
    let lines = crate::helpers::wait_for(|| async {
        let n = log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains("store failed"))
            .count() as u64;
        (n > 0).then_some(n)
    })
    .await;
    assert!(
        (1..=seconds + 2).contains(&lines),
        "{lines} lines in {seconds} s for {refused} failures"
    );
    assert!(log.lock().unwrap().contains("unlogged="), "with a count");
    // Back: the node answers again, and says its heartbeat works again, having logged its
    // failure once, not once a beat.
    crate::helpers::wait_for(|| async { (read().await.status == 404).then_some(()) }).await;
    crate::helpers::wait_for(|| async {
        log.lock()
            .unwrap()
            .contains("writing this node's heartbeat works again")
            .then_some(())
    })
    .await;
    let beats = log
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains("heartbeat failed") || l.contains("heartbeat still fails"))
        .count();
    assert_eq!(beats, 1, "{}", log.lock().unwrap());
}

/// A node id is one running process's: a second process started with it is refused with a
/// message that says so (two processes beating for one id looked like one node to the
/// others, and the callbacks of the one that stopped were never taken over), and once the
/// first has stopped the id starts again (a restart waits a few beats at most).
#[tokio::test]
async fn a_second_process_with_a_running_nodes_id_is_refused() {
    let url = database().await;
    migrate(&url).await;
    let named = |dir: &tempfile::TempDir, id: &str| {
        let mut s = settings(dir, &url);
        s.node.id = id.to_owned();
        s
    };
    let (one, two, three) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = mkoba::start(named(&one, "clinic-a")).await.expect("starts");
    let e = mkoba::start(named(&two, "clinic-a")).await.unwrap_err();
    let message = format!("{e:#}");
    assert!(
        message.contains("node id \"clinic-a\" is in use")
            && message.contains("give every node its own --node-id"),
        "{message}"
    );
    // Another id starts beside it.
    let other = mkoba::start(named(&three, "clinic-b"))
        .await
        .expect("another id starts");
    other.stop().await;
    first.stop().await;
    let again = mkoba::start(named(&two, "clinic-a"))
        .await
        .expect("the id starts again once its process stopped");
    again.stop().await;
}
