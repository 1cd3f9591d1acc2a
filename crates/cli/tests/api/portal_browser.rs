//! The developer portal in headless Chromium (Debian's `chromium`, driven by the pinned
//! `playwright-core`): sign up, keys, a payment through the API, the transactions table and
//! a chart, the virtual phone. Screenshots of each page go to `artifacts/portal/`.
//! The script installs chromium and playwright-core when they are missing.

use crate::helpers::TestApp;

#[tokio::test]
async fn the_portal_works_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/run.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg("portal")
        .env("PORTAL_BASE_URL", &app.base)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "portal browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}
