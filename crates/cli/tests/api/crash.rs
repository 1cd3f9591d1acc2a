//! An accepted request survives SIGKILL: the 202 is only sent once it is on disk.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{Http, Sink, rtp_body, wait_for};

/// A `mkoba serve` process.
pub struct Node {
    pub child: Child,
    pub base: String,
    pub key: String,
    /// `Authorization: Basic …` of the operator the banner prints.
    pub operator: String,
}

impl Node {
    /// `GET /_mkoba/ledger` as the operator: the ledger's totals and whether they balance.
    pub async fn ledger(&self, http: &Http) -> serde_json::Value {
        http.send(
            "GET",
            &format!("{}/_mkoba/ledger", self.base),
            &[("Authorization", &self.operator)],
            None,
        )
        .await
        .json()
    }

    /// Sends the process a signal (`STOP`, `CONT`, …).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the node runs").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

async fn start_node(data: &std::path::Path) -> Node {
    start_node_with(data, &[]).await
}

/// Starts `mkoba serve` on a free port with payments settling after 1.5 s (unless `extra`
/// says otherwise) and waits for its banner.
pub async fn start_node_with(data: &std::path::Path, extra: &[&str]) -> Node {
    start(data, extra, None).await
}

/// [`start_node_with`], its log (at `info`) gathered into `log` as it is written.
pub async fn start_node_logged(
    data: &std::path::Path,
    extra: &[&str],
    log: std::sync::Arc<std::sync::Mutex<String>>,
) -> Node {
    start(data, extra, Some(log)).await
}

async fn start(
    data: &std::path::Path,
    extra: &[&str],
    log: Option<std::sync::Arc<std::sync::Mutex<String>>>,
) -> Node {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    if !extra.contains(&"--settle-delay-ms") {
        args.extend(["--settle-delay-ms", "1500"]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(args)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("MKOBA_LOG", if log.is_some() { "info" } else { "warn" })
        .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
        .stdout(Stdio::piped())
        .stderr(if log.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true)
        .spawn()
        .expect("mkoba starts");
    if let Some(log) = log {
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut key, mut operator) = (None, None, None);
    while base.is_none() || key.is_none() {
        let line = lines.next_line().await.unwrap().expect("banner");
        if line.trim().starts_with("Operator")
            && let Some(login) = line.split("(sign in: ").nth(1)
        {
            let login = login.trim_end_matches(')');
            if let Some((email, password)) = login.split_once(" / ") {
                operator = Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"))
                ));
            }
        }
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
        operator: operator.expect("the banner prints the operator's sign-in"),
    }
}

/// An API user's collection credentials.
pub struct Partner {
    /// The subscription key it was made with.
    pub key: String,
    /// `Bearer …`
    pub bearer: String,
    /// `Basic …` of the API user and its key.
    pub basic: String,
}

/// An API user made through `on`, with a collection token issued by `token_from`.
pub async fn partner(http: &Http, on: &Node, token_from: &Node) -> Partner {
    let user = Uuid::new_v4().to_string();
    let r = http
        .send(
            "POST",
            &format!("{}/v1_0/apiuser", on.base),
            &[
                ("Ocp-Apim-Subscription-Key", &on.key),
                ("X-Reference-Id", &user),
            ],
            Some(r#"{"providerCallbackHost":"127.0.0.1"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = http
        .send(
            "POST",
            &format!("{}/v1_0/apiuser/{user}/apikey", on.base),
            &[("Ocp-Apim-Subscription-Key", &on.key)],
            None,
        )
        .await;
    let api_key = r.json()["apiKey"].as_str().unwrap().to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{api_key}"));
    let r = http
        .send(
            "POST",
            &format!("{}/collection/token/", token_from.base),
            &[
                ("Ocp-Apim-Subscription-Key", &token_from.key),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    Partner {
        key: on.key.clone(),
        bearer: format!("Bearer {}", r.json()["access_token"].as_str().unwrap()),
        basic: format!("Basic {basic}"),
    }
}

#[tokio::test]
async fn an_accepted_request_survives_sigkill_and_settles_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = Http::new();
    let sink = Sink::start(200).await;

    let mut node = start_node(&data).await;
    let bearer = partner(&http, &node, &node).await.bearer;
    let reference = Uuid::new_v4();
    let callback = sink.url("/after-crash");
    let r = request_to_pay(&http, &node, &bearer, reference, Some(&callback)).await;
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
    let ledger = node.ledger(&http).await;
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
    // Its reference id waited in memory for its index when the process died; the start put
    // it in, and the writer's filter of the ids taken, read from the index, holds it: used
    // again, it is refused.
    wait_for(|| async {
        let metrics = http
            .send("GET", &format!("{}/metrics", node.base), &[], None)
            .await
            .text();
        metrics
            .lines()
            .any(|l| l == "mkoba_sqlite_refs_filter_ready 1")
            .then_some(())
    })
    .await;
    let again = request_to_pay(&http, &node, &bearer, reference, None).await;
    assert_eq!(again.status, 409, "{}", again.text());
}

/// A request-to-pay of 42 EUR to `node`, with its callback URL when given.
pub async fn request_to_pay(
    http: &Http,
    node: &Node,
    bearer: &str,
    reference: Uuid,
    callback: Option<&str>,
) -> crate::helpers::Resp {
    let reference = reference.to_string();
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", node.key.as_str()),
        ("Authorization", bearer),
        ("X-Target-Environment", "sandbox"),
        ("X-Reference-Id", reference.as_str()),
    ];
    headers.extend(callback.map(|c| ("X-Callback-Url", c)));
    http.send(
        "POST",
        &format!("{}/collection/v1_0/requesttopay", node.base),
        &headers,
        Some(&rtp_body("42", "256770000042")),
    )
    .await
}

#[tokio::test]
async fn an_accepted_asynchronous_mpesa_payment_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = Http::new();
    let sink = Sink::start(200).await;
    let flags = ["--mpesa-insecure-result-urls", "true"];
    let mut node = start_node_with(&data, &flags).await;
    let admin = format!("{}/_mkoba/mpesa/application", node.base);
    let r = http
        .send(
            "PUT",
            &admin,
            &[("Ocp-Apim-Subscription-Key", &node.key)],
            Some(&serde_json::json!({ "result_url": sink.url("/mpesa") }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let app = r.json();
    let public =
        mkoba_sdk::mpesa::PublicKey::from_base64(app["public_key"].as_str().unwrap()).unwrap();
    let market = format!("{}/sandbox/ipg/v2/vodacomTZN", node.base);
    let auth = format!(
        "Bearer {}",
        public.bearer(app["api_key"].as_str().unwrap()).unwrap()
    );
    let r = http
        .send(
            "GET",
            &format!("{market}/getSession/"),
            &[("Authorization", &auth), ("Origin", "*")],
            None,
        )
        .await;
    let session = r.json()["output_SessionID"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", public.bearer(&session).unwrap());
    let tpcid = Uuid::new_v4().simple().to_string();
    let body = serde_json::json!({
        "input_Amount": "42",
        "input_Country": "TZN",
        "input_Currency": "TZS",
        "input_CustomerMSISDN": "255700000042",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid,
        "input_TransactionReference": "T42",
        "input_PurchasedItemsDesc": "Shoes",
    });
    let r = http
        .send(
            "POST",
            &format!("{market}/c2bPayment/singleStage/"),
            &[("Authorization", &bearer), ("Origin", "*")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    node.child.start_kill().unwrap();
    node.child.wait().await.unwrap();
    assert!(sink.all().is_empty());

    // After the restart the session made before the crash still works (sessions are
    // stateless) and the payment settles, with its result posted.
    let node = start_node_with(&data, &flags).await;
    let market = format!("{}/sandbox/ipg/v2/vodacomTZN", node.base);
    let got = sink.wait_for(1).await;
    let result: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(result["input_ResultCode"], "INS-0");
    assert_eq!(result["input_ThirdPartyConversationID"], tpcid.as_str());
    let query = format!(
        "{market}/queryTransactionStatus/?input_QueryReference={tpcid}&input_Country=TZN&input_ServiceProviderCode=000000&input_ThirdPartyConversationID=q1"
    );
    http.send(
        "PUT",
        &format!("{}/_mkoba/mpesa/application", node.base),
        &[("Ocp-Apim-Subscription-Key", &node.key)],
        Some(r#"{"result_url":null}"#),
    )
    .await;
    let r = http
        .send(
            "GET",
            &query,
            &[("Authorization", &bearer), ("Origin", "*")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["output_ResponseTransactionStatus"], "Completed");
    assert_eq!(
        r.json()["output_OriginalTransactionID"],
        result["input_TransactionID"]
    );
    let ledger = node.ledger(&http).await;
    assert_eq!(ledger["balanced"], true, "{ledger}");
}

/// SIGTERM under load: the server stops accepting, finishes what is in flight, exits 0,
/// and every request it answered `202` is there after a restart.
#[tokio::test]
async fn sigterm_under_load_drains_exits_zero_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = Http::new();
    let mut node = start_node_with(&data, &["--settle-delay-ms", "0"]).await;
    let bearer = partner(&http, &node, &node).await.bearer;
    let (base, key) = (node.base.clone(), node.key.clone());
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (base, key, bearer, accepted) =
                (base.clone(), key.clone(), bearer.clone(), accepted.clone());
            tokio::spawn(async move {
                let http = Http::new();
                loop {
                    let reference = Uuid::new_v4();
                    let r = http
                        .try_send(
                            "POST",
                            &format!("{base}/collection/v1_0/requesttopay"),
                            &[
                                ("Ocp-Apim-Subscription-Key", key.as_str()),
                                ("Authorization", bearer.as_str()),
                                ("X-Target-Environment", "sandbox"),
                                ("X-Reference-Id", &reference.to_string()),
                            ],
                            Some(&rtp_body("3", "256770000042")),
                        )
                        .await;
                    match r {
                        Some(r) if r.status == 202 => accepted.lock().unwrap().push(reference),
                        Some(_) => {}
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Let the load run, then ask the server to stop.
    wait_for(|| async { (accepted.lock().unwrap().len() >= 50).then_some(()) }).await;
    let pid = node.child.id().expect("running").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), node.child.wait())
        .await
        .expect("the server stops by itself")
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit");
    for l in load {
        l.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 50);
    eprintln!(
        "{} requests acknowledged before the server stopped",
        accepted.len()
    );

    // Every acknowledged request is there after a restart, and settles.
    let node = start_node_with(&data, &["--settle-delay-ms", "0"]).await;
    let headers = [
        ("Ocp-Apim-Subscription-Key", node.key.as_str()),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
    ];
    for reference in &accepted {
        let url = format!("{}/collection/v1_0/requesttopay/{reference}", node.base);
        let v = wait_for(|| async {
            let r = http.send("GET", &url, &headers, None).await;
            assert_eq!(r.status, 200, "{reference} lost: {}", r.text());
            (r.json()["status"] != "PENDING").then(|| r.json())
        })
        .await;
        assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    }
    let ledger = node.ledger(&http).await;
    assert_eq!(ledger["balanced"], true, "{ledger}");
}

/// SIGHUP (the terminal that started the server closed) stops it as SIGTERM does, drained
/// and logged, exit 0, where the signal's default ended it at once (exit 129, no log line).
#[tokio::test]
async fn sighup_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut node = start_node_logged(&dir.path().join("data"), &[], log.clone()).await;
    node.signal("HUP");
    let status = tokio::time::timeout(Duration::from_secs(30), node.child.wait())
        .await
        .expect("the server stops by itself")
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit");
    // The log's last lines may still be in the pipe when the process has ended.
    let log = wait_for(|| async {
        let log = log.lock().unwrap().clone();
        log.contains("INFO mkoba: stopped").then_some(log)
    })
    .await;
    assert!(log.contains("SIGHUP: stopping"), "{log}");
}

/// A synchronous M-Pesa call waiting for a customer who never answers when the server is
/// asked to stop is answered at once, `408 INS-9` with its payment still pending (to query
/// after the restart), instead of holding the stop for the drain time and then being cut
/// with no answer.
#[tokio::test]
async fn a_synchronous_call_waiting_at_sigterm_is_answered_at_once() {
    use mkoba_sdk::mpesa::PublicKey;
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node_with(&dir.path().join("data"), &[]).await;
    let http = Http::new();
    let app = http
        .send(
            "GET",
            &format!("{}/_mkoba/mpesa/application", node.base),
            &[("Ocp-Apim-Subscription-Key", &node.key)],
            None,
        )
        .await
        .json();
    let key = PublicKey::from_base64(app["public_key"].as_str().unwrap()).unwrap();
    let bearer = format!(
        "Bearer {}",
        key.bearer(app["api_key"].as_str().unwrap()).unwrap()
    );
    let market = format!("{}/sandbox/ipg/v2/vodacomTZN", node.base);
    let r = http
        .send(
            "GET",
            &format!("{market}/getSession/"),
            &[("Authorization", &bearer), ("Origin", "*")],
            None,
        )
        .await;
    let session = r.json()["output_SessionID"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {}", key.bearer(&session).unwrap());
    // A customer who never answers (the sandbox's 000000000002): the call waits.
    let body = serde_json::json!({
        "input_Amount": "10",
        "input_Country": "TZN",
        "input_Currency": "TZS",
        "input_CustomerMSISDN": "000000000002",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": "waiting1",
        "input_TransactionReference": "T1234C",
        "input_PurchasedItemsDesc": "Shoes",
    });
    let call = {
        let (http, url) = (http.clone(), format!("{market}/c2bPayment/singleStage/"));
        tokio::spawn(async move {
            let headers = [("Authorization", auth.as_str()), ("Origin", "*")];
            http.try_send("POST", &url, &headers, Some(&body.to_string()))
                .await
        })
    };
    // Once it is stored and waiting (given half a second), the server is asked to stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.signal("TERM");
    let r = call
        .await
        .unwrap()
        .expect("an answer, not a cut connection");
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-9");
    let exit = tokio::time::timeout(Duration::from_secs(30), node.child.wait())
        .await
        .expect("the server stops by itself")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// A server stopped (SIGSTOP here; a paused VM in life) while its callback's answer was on
/// its way reads the answer when it runs again, however long past the callback's timeout
/// that is: the callback counts as delivered, once, instead of timed out and sent again.
#[tokio::test]
async fn a_server_stopped_while_its_callback_was_answered_counts_it_delivered_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let node = start_node_with(
        dir.path(),
        &[
            "--settle-delay-ms",
            "0",
            "--callback-timeout-ms",
            "1000",
            "--callback-retry-secs",
            "1",
        ],
    )
    .await;
    let http = Http::new();
    let p = partner(&http, &node, &node).await;
    // A receiver that reads each request whole and answers 200; the first answer waits
    // until the test says so.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicUsize::new(0));
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel::<()>();
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<()>();
    let mut first = Some((arrived_tx, answer_rx));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut held = first.take();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    buf.drain(..end + 4 + length);
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some((arrived, answer)) = held.take() {
                        let _ = arrived.send(());
                        let _ = answer.await;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let reference = Uuid::new_v4();
    let r = http
        .send(
            "POST",
            &format!("{}/collection/v1_0/requesttopay", node.base),
            &[
                ("Ocp-Apim-Subscription-Key", &p.key),
                ("Authorization", &p.bearer),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference.to_string()),
                ("X-Callback-Url", &format!("http://127.0.0.1:{port}/cb")),
            ],
            Some(&rtp_body("5", "256771000002")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    tokio::time::timeout(Duration::from_secs(30), arrived_rx)
        .await
        .expect("the callback arrives")
        .unwrap();
    // Stopped with the request sent; the answer reaches its socket meanwhile; resumed
    // well past the 1 s timeout.
    node.signal("STOP");
    answer_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    node.signal("CONT");
    // Time for a retry (due 1 s after a failed attempt) to be sent, had there been one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received.load(Ordering::SeqCst), 1, "sent once");
    let t = http
        .send(
            "GET",
            &format!("{}/_mkoba/transactions/{reference}", node.base),
            &[("Ocp-Apim-Subscription-Key", &node.key)],
            None,
        )
        .await
        .json();
    let attempts = t["callbacks"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{t}");
    assert_eq!(attempts[0]["status_code"], 200, "{t}");
}
