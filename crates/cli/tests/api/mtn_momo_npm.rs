//! The published npm client `mtn-momo` 2.x completes its flow against the server.
//! Needs Node.js and npm (the test command installs them); the script installs the package.

use crate::helpers::{TestApp, run_script};

#[tokio::test]
async fn the_mtn_momo_npm_client_completes_its_flow() {
    let app = TestApp::spawn().await;
    let run = run_script(
        "tests/compat/mtn-momo/run.sh",
        &[
            ("MOMO_BASE_URL", &app.base),
            ("MOMO_COLLECTION_KEY", app.key("collection")),
            ("MOMO_CALLBACK_HOST", "127.0.0.1"),
        ],
    )
    .await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(run.success, "mtn-momo flow failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}
