//! Supervision: when a part the platform cannot run without stops — here the callback
//! dispatcher, which cannot start with an unusable CA certificate — `/_mkoba/health`
//! answers `503` and `mkoba serve` exits non-zero so a supervisor restarts it.

use std::process::Stdio;

use crate::helpers::{TestApp, wait_for};

/// A PEM certificate block whose content is not a certificate.
const BAD_CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

#[tokio::test]
async fn health_says_failing_once_the_dispatcher_stops() {
    let app = TestApp::spawn_with(|s| {
        s.dispatcher.extra_roots = vec![rustls::pki_types::CertificateDer::from(vec![0u8; 3])];
    })
    .await;
    let r = wait_for(|| async {
        let r = app.send("GET", "/_mkoba/health", &[], None).await;
        (r.status == 503).then_some(r)
    })
    .await;
    assert_eq!(r.json(), serde_json::json!({"status": "failing"}));
    let auth = app.operator_auth();
    let r = app
        .send("GET", "/_mkoba/health", &[("Authorization", &auth)], None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["failures"],
        serde_json::json!(["the callback dispatcher stopped"])
    );
}

#[tokio::test]
async fn a_healthy_server_says_ok() {
    let app = TestApp::spawn().await;
    let auth = app.operator_auth();
    let r = app
        .send("GET", "/_mkoba/health", &[("Authorization", &auth)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["failures"], serde_json::json!([]));
}

#[tokio::test]
async fn serve_exits_non_zero_when_the_dispatcher_stops() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("bad-ca.pem");
    std::fs::write(&ca, BAD_CA).unwrap();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--callback-ca-file")
            .arg(&ca)
            .env("MKOBA_LOG", "warn")
            .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("serve exits by itself")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the callback dispatcher stopped; exiting so a supervisor restarts the server"
        ),
        "{stderr}"
    );
}
