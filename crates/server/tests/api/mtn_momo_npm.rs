//! The published npm client `mtn-momo` 2.x completes its flow against the server.
//! Needs Node.js and npm (the test command installs them); the script installs the package.

use crate::helpers::TestApp;

#[tokio::test]
async fn the_mtn_momo_npm_client_completes_its_flow() {
    let app = TestApp::spawn().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/compat/mtn-momo/run.sh"
    );
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .env("MOMO_BASE_URL", &app.base)
        .env("MOMO_COLLECTION_KEY", app.key("collection"))
        .env("MOMO_CALLBACK_HOST", "127.0.0.1")
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mtn-momo flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}
