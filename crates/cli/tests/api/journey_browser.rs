//! The developer account journey in headless Chromium (Debian's `chromium`, driven by the
//! pinned `playwright-core`), at 1280 px and at 390 px: sign-up, the activation mail in the
//! sandbox mailbox, the phone step, My Profile (name, password, e-mail change, M-Pesa key
//! renewal, PEM download, subscription key regeneration), forgot-password, the go-live
//! request and the operator's approval, and deletion.
//! Screenshots of every page go to `artifacts/journey/`. The script installs chromium and
//! playwright-core when they are missing.

use crate::helpers::TestApp;

#[tokio::test]
async fn the_account_journey_works_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/run.sh");
    let operator = app
        .running
        .platform
        .portal()
        .operator_login()
        .await
        .unwrap()
        .unwrap();
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg("journey")
        .env("PORTAL_BASE_URL", &app.base)
        .env("OPERATOR_EMAIL", &operator.email)
        .env("OPERATOR_PASSWORD", &operator.password)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "journey browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}
