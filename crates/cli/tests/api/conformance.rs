//! Conformance with MTN's OpenAPI definitions: schemathesis runs every check against the
//! four definitions in `tests/conformance/definitions/` with valid sandbox credentials.
//! Deliberate differences are forgiven only as `tests/conformance/exclusions.toml` lists them.
//! Needs Python 3 with venv; the script installs the pinned schemathesis into a
//! project-local virtual environment.

use crate::helpers::{TestApp, run_script};

#[tokio::test]
async fn schemathesis_finds_no_difference_from_mtns_definitions() {
    let app = TestApp::spawn().await;
    let run = run_script(
        "tests/conformance/run.sh",
        &[
            ("MKOBA_URL", &app.base),
            ("MKOBA_KEY_COLLECTION", app.key("collection")),
            ("MKOBA_KEY_DISBURSEMENT", app.key("disbursement")),
            ("MKOBA_KEY_REMITTANCE", app.key("remittance")),
        ],
    )
    .await;
    assert!(
        run.success,
        "schemathesis found differences:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout
            .contains("conformance: all four definitions passed"),
        "{}",
        run.stdout
    );
    // Thousands of generated requests later, the books still balance.
    app.assert_ledger_balanced().await;
}
