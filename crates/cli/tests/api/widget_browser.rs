//! The Collection Widget in headless Chromium (Debian's `chromium`, the pinned
//! `playwright-core`): a merchant page on another origin embeds the script from the server;
//! amounts 10, 50 and 100 give their events, the payer approves and rejects through the QR
//! code's link, a late element starts with `mobileMoneyReinitializeWidgets()`, a page not on
//! the API user's list is refused, a page whose clock runs ahead still learns its invoice
//! was paid, and an element taken off the page and put back, or copied, pays again. Screenshots go to `artifacts/widget/`.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_widget_works_in_a_real_browser_on_a_merchants_page() {
    // One shopper (this browser) makes a dozen invoices here in a few seconds, more than a
    // client's share of a partner's invoices allows (`widget::one_client_cannot_lock_…`).
    let app = TestApp::spawn_with(|s| {
        s.momo.widget.per_client_invoices =
            mkoba_platform::throttle::Rate::new(50, std::time::Duration::from_secs(1));
    })
    .await;
    // Any page may use this one (the sandbox, no list set)…
    let open = app.partner("127.0.0.1").await;
    // …and this one only a page that is not the merchant's.
    let refused = app.partner("127.0.0.1").await;
    let r = app
        .send(
            "PUT",
            &format!("/collection_widget/v1_0/apiuser/{}/widget", refused.user),
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection_widget")),
                ("Content-Type", "application/json"),
            ],
            Some(&json!({"allowedOrigins": ["https://another-shop.example"]}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before: f64 = app.balance(&open).await.parse().unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/run.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg("widget")
        .env("MKOBA_BASE_URL", &app.base)
        .env("API_USER", open.user.to_string())
        .env("REFUSED_API_USER", refused.user.to_string())
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "widget browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // The payment of 100 is a successful Collection v2 invoice, and the partner's collection
    // account grew by at least it (the flow also pays through the phone).
    let paid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("invoice-100 "))
        .expect("the flow names the invoice of 100");
    let r = app
        .get(&open, &format!("/v2_0/invoice/{}", paid.trim()))
        .await;
    assert_eq!(r.json()["status"], "SUCCESSFUL", "{}", r.text());
    let after: f64 = app.balance(&open).await.parse().unwrap();
    assert!(after - before >= 100.0, "{before} → {after}");
    app.assert_ledger_balanced().await;
}
