//! The portal's API pages and guides in headless Chromium (Debian's `chromium`, driven by
//! the pinned `playwright-core`): sample code with the developer's keys and its copy
//! button, the Send Request box on an M-Pesa page, a v1x page with its port, the guides,
//! every page at phone width. Screenshots go to `artifacts/docs/`. The script installs
//! chromium and playwright-core when they are missing.

use crate::helpers::TestApp;

#[tokio::test]
async fn the_api_pages_and_guides_work_in_a_real_browser() {
    let app = TestApp::spawn_v1x().await;
    let login = app.sandbox_login().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/run.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg("docs")
        .env("PORTAL_BASE_URL", &app.base)
        .env("PORTAL_EMAIL", &login.email)
        .env("PORTAL_PASSWORD", &login.password)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docs browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}
