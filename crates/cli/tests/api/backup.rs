//! `mkoba backup`: a running server's data directory copied under load, and a server
//! started on the copy.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::process::Command;
use uuid::Uuid;

use crate::crash::{Node, partner, request_to_pay, start_node_with};
use crate::helpers::{Http, wait_for};

/// `mkoba backup --data {data} --to {to}`.
async fn backup(data: &std::path::Path, to: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .arg("backup")
        .arg("--data")
        .arg(data)
        .arg("--to")
        .arg(to)
        .env_remove("MKOBA_DATA")
        .env_remove("MKOBA_DATABASE_URL")
        .output()
        .await
        .expect("mkoba runs")
}

/// A server on `data` that reads its M-Pesa key from the data directory's own file.
async fn node_on(data: &std::path::Path) -> Node {
    let key = data.join("mpesa-private-key.pem");
    if !key.exists() {
        std::fs::create_dir_all(data).unwrap();
        std::fs::copy(crate::helpers::MPESA_TEST_KEY, &key).unwrap();
    }
    let key = key.to_str().unwrap().to_owned();
    start_node_with(
        data,
        &["--settle-delay-ms", "100", "--mpesa-key-file", &key],
    )
    .await
}

/// `GET {base}/collection/v1_0/{path}` as the partner.
async fn get(http: &Http, node: &Node, bearer: &str, path: &str) -> crate::helpers::Resp {
    http.send(
        "GET",
        &format!("{}/collection/v1_0/{path}", node.base),
        &[
            ("Ocp-Apim-Subscription-Key", node.key.as_str()),
            ("Authorization", bearer),
            ("X-Target-Environment", "sandbox"),
        ],
        None,
    )
    .await
}

/// The partner's collection balance on `node`, in EUR.
async fn balance(http: &Http, node: &Node, bearer: &str) -> String {
    let r = get(http, node, bearer, "account/balance").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["availableBalance"].as_str().unwrap().to_owned()
}

/// A request-to-pay's status on `node`, or the error's body.
async fn status(http: &Http, node: &Node, bearer: &str, reference: Uuid) -> (u16, String) {
    let r = get(http, node, bearer, &format!("requesttopay/{reference}")).await;
    let status = match r.status {
        200 => r.json()["status"].as_str().unwrap().to_owned(),
        _ => r.text(),
    };
    (r.status, status)
}

#[tokio::test]
async fn a_backup_taken_under_load_is_a_data_directory_that_starts_with_every_payment_of_one_commit()
 {
    let dir = tempfile::tempdir().unwrap();
    let (data, copy) = (dir.path().join("data"), dir.path().join("copy"));
    let http = Http::new();
    let a = Arc::new(node_on(&data).await);
    let bearer = partner(&http, &a, &a).await.bearer;
    let before = Uuid::new_v4();
    let r = request_to_pay(&http, &a, &bearer, before, None).await;
    assert_eq!(r.status, 202, "{}", r.text());

    // Request-to-pays go on, one after the other, while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (http, stop, accepted, bearer, a) = (
            http.clone(),
            stop.clone(),
            accepted.clone(),
            bearer.clone(),
            a.clone(),
        );
        async move {
            while !stop.load(Ordering::SeqCst) {
                let r = request_to_pay(&http, &a, &bearer, Uuid::new_v4(), None).await;
                assert_eq!(r.status, 202, "{}", r.text());
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    wait_for(|| async { (accepted.load(Ordering::SeqCst) >= 5).then_some(()) }).await;
    let out = backup(&data, &copy).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let after = Uuid::new_v4();
    let r = request_to_pay(&http, &a, &bearer, after, None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let total = 2 + accepted.load(Ordering::SeqCst);

    // What the copy holds, as the command says.
    let copied: usize = stdout
        .split(" payments; checked")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no payment count in: {stdout}"));
    assert!(
        (6..total).contains(&copied),
        "{copied} of {total}: {stdout}"
    );
    assert!(stdout.contains("mpesa-private-key.pem"), "{stdout}");
    assert!(
        stdout.contains(&format!("mkoba serve --data {}", copy.display())),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(copy.join("mpesa-private-key.pem")).unwrap(),
        std::fs::read(data.join("mpesa-private-key.pem")).unwrap()
    );
    assert!(!copy.join("serve.lock").exists());

    // Not over a backup, and not of a directory without a database: a clear error.
    let again = backup(&data, &copy).await;
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
    let none = dir.path().join("none");
    let nowhere = backup(&none, &dir.path().join("c")).await;
    assert_eq!(nowhere.status.code(), Some(1));
    let err = String::from_utf8_lossy(&nowhere.stderr);
    assert!(err.contains("no Mkoba database in"), "{err}");

    // A server on the copy, beside the first: the same API user and token, every payment
    // the copy holds settled (those still pending when it was taken too), none after it.
    let b = node_on(&copy).await;
    let settled = format!("{}", 42 * copied);
    let on_b = wait_for(|| async {
        let got = balance(&http, &b, &bearer).await;
        (got == settled).then_some(got)
    })
    .await;
    assert_eq!(on_b, settled);
    assert_eq!(
        status(&http, &b, &bearer, before).await,
        (200, "SUCCESSFUL".to_owned())
    );
    let (code, body) = status(&http, &b, &bearer, after).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("RESOURCE_NOT_FOUND"), "{body}");
    let ledger = b.ledger(&http).await;
    assert_eq!(ledger["balanced"], true, "{ledger}");

    // And the first server went on: everything it accepted settles there.
    let all = format!("{}", 42 * total);
    wait_for(|| async { (balance(&http, &a, &bearer).await == all).then_some(()) }).await;
}

/// The systemd units in `deploy/` call `mkoba` with flags it has: each `--flag` of their
/// `ExecStart=` lines is in the help of the subcommand they run.
/// A directory where `mkoba backup` was stopped before its copy took the name `mkoba.db`
/// holds only `mkoba.db.partial`: a server is not started there (it came up empty, with a
/// new M-Pesa key pair, as if the restore had worked), and no database or key is made.
#[tokio::test]
async fn a_server_is_not_started_on_a_backup_that_did_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nightly");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("mkoba.db.partial"),
        b"SQLite format 3\0 cut short",
    )
    .unwrap();
    let settings = mkoba::Settings::new(
        data.clone(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    let Err(e) = mkoba::start(settings).await else {
        panic!("a server started on an unfinished backup");
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("the copy of a backup that did not finish") && e.contains("remove"),
        "{e}"
    );
    // Only the data directory's lock was taken.
    let mut left: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["mkoba.db.partial", "serve.lock"]);
}

#[tokio::test]
async fn the_systemd_units_use_flags_mkoba_has() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut checked = 0;
    for unit in ["mkoba.service", "mkoba-backup.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
        let words: Vec<&str> = line["ExecStart=".len()..]
            .split(|c: char| c.is_whitespace() || c == '\'')
            .collect();
        let at = words
            .iter()
            .position(|w| *w == "/usr/local/bin/mkoba")
            .unwrap_or_else(|| panic!("{unit} does not run mkoba: {line}"));
        let command = words[at + 1];
        let help = Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args([command, "--help"])
            .output()
            .await
            .unwrap();
        assert!(help.status.success(), "{unit}: mkoba {command}");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in words[at + 2..].iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")),
                "{unit}: mkoba {command} has no {flag}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "two flags in each unit");
}
