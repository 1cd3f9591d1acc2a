//! An accepted request survives SIGKILL: the 202 is only sent once it is on disk.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{Http, Sink, rtp_body, wait_for};

struct Node {
    child: Child,
    base: String,
    key: String,
}

async fn start_node(data: &std::path::Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--settle-delay-ms",
            "1500",
            "--data",
        ])
        .arg(data)
        .env("MKOBA_LOG", "warn")
        .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mkoba starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut key) = (None, None);
    while base.is_none() || key.is_none() {
        let line = lines.next_line().await.unwrap().expect("banner");
        if let Some(rest) = line.trim().strip_prefix("MoMo Open API") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("collection") {
            key = rest.split_whitespace().nth(1).map(str::to_owned);
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node {
        child,
        base: base.unwrap(),
        key: key.unwrap(),
    }
}

#[tokio::test]
async fn an_accepted_request_survives_sigkill_and_settles_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = Http::new();
    let sink = Sink::start(200).await;

    let mut node = start_node(&data).await;
    let user = Uuid::new_v4();
    let r = http
        .send(
            "POST",
            &format!("{}/v1_0/apiuser", node.base),
            &[
                ("Ocp-Apim-Subscription-Key", &node.key),
                ("X-Reference-Id", &user.to_string()),
            ],
            Some(r#"{"providerCallbackHost":"127.0.0.1"}"#),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = http
        .send(
            "POST",
            &format!("{}/v1_0/apiuser/{user}/apikey", node.base),
            &[("Ocp-Apim-Subscription-Key", &node.key)],
            None,
        )
        .await;
    let api_key = r.json()["apiKey"].as_str().unwrap().to_owned();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{api_key}"));
    let r = http
        .send(
            "POST",
            &format!("{}/collection/token/", node.base),
            &[
                ("Ocp-Apim-Subscription-Key", &node.key),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    let bearer = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let reference = Uuid::new_v4();
    let callback = sink.url("/after-crash");
    let r = http
        .send(
            "POST",
            &format!("{}/collection/v1_0/requesttopay", node.base),
            &[
                ("Ocp-Apim-Subscription-Key", &node.key),
                ("Authorization", &bearer),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference.to_string()),
                ("X-Callback-Url", &callback),
            ],
            Some(&rtp_body("42", "256770000042")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // Kill the process the instant the 202 is in: no graceful shutdown, no flush.
    node.child.start_kill().unwrap();
    node.child.wait().await.unwrap();
    assert!(sink.all().is_empty());

    let node = start_node(&data).await;
    let status_url = format!("{}/collection/v1_0/requesttopay/{reference}", node.base);
    let headers = [
        ("Ocp-Apim-Subscription-Key", node.key.as_str()),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
    ];
    // The token issued before the crash is still valid, and the request is there.
    let r = http.send("GET", &status_url, &headers, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = wait_for(|| async {
        let v = http.send("GET", &status_url, &headers, None).await.json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await;
    assert_eq!(v["status"], "SUCCESSFUL");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].path, "/after-crash");
    assert!(got[0].body.contains("SUCCESSFUL"));
    let ledger = http
        .send("GET", &format!("{}/_mkoba/ledger", node.base), &[], None)
        .await
        .json();
    assert_eq!(ledger["balanced"], true, "{ledger}");
    let balance = http
        .send(
            "GET",
            &format!("{}/collection/v1_0/account/balance", node.base),
            &headers,
            None,
        )
        .await
        .json();
    assert_eq!(balance["availableBalance"], "42");
}
