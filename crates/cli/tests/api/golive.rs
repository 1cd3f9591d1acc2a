//! Going live (seed 004) over HTTP: a developer's go-live request with its transaction
//! report, the operator's review (approve or reject with a comment, the developer told by
//! mail), production target environments refused before approval and allowed after, the
//! M-Pesa `openapi` environment likewise, deactivation, and that a developer reaches none
//! of the operator's pages.

use base64::Engine as _;
use mkoba_sdk::mpesa::PublicKey;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, rtp_body, wait_for};
use crate::portal::{Browser, link_in};

/// The operator created at first start, signed in.
async fn operator(app: &TestApp) -> Browser {
    let login = app
        .running
        .platform
        .portal()
        .operator_login()
        .await
        .unwrap()
        .expect("an operator is created at first start");
    assert_eq!(login.email, "operator@mkoba.local");
    let mut b = Browser::new(&app.base);
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 303, "{}", r.text());
    // The developer pages send an operator to theirs.
    let r = b.get("/portal").await;
    assert_eq!(r.header("location"), Some("/portal/operator"));
    b
}

/// A developer's own API user, key and token, made in the portal.
async fn developer_partner(app: &TestApp, b: &mut Browser) -> (String, String) {
    let subscription = b.subscribe("collection").await;
    let (user, key) = b.create_api_user("127.0.0.1").await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[
                ("Ocp-Apim-Subscription-Key", &subscription),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    (subscription, token)
}

/// The developer's M-Pesa API key, as the page after sign-up shows it.
fn mpesa_api_key(page: &str) -> String {
    let marker = "data-testid=\"mpesa-api-key\">";
    let at = page.find(marker).unwrap() + marker.len();
    page[at..at + 32].to_owned()
}

/// A v1x C2B payment (Mozambique's gateway, whose sandbox and live hosts differ) with
/// the developer's API key, sent to `host`.
async fn mpesa_c2b(app: &TestApp, api_key: &str, host: &str) -> Resp {
    let public_key = app.mpesa().await.public_key_b64;
    let public_key = PublicKey::from_base64(&public_key).unwrap();
    let bearer = format!("Bearer {}", public_key.bearer(api_key).unwrap());
    let body = serde_json::json!({
        "input_TransactionReference": "T12344C", "input_CustomerMSISDN": "258843330333",
        "input_Amount": "5", "input_ThirdPartyReference": Uuid::new_v4().simple().to_string(),
        "input_ServiceProviderCode": "171717",
    });
    app.send(
        "POST",
        "/ipg/v1x/c2bPayment/singleStage/",
        &[
            ("Authorization", &bearer),
            ("Origin", "*"),
            ("Content-Type", "application/json"),
            ("Host", host),
        ],
        Some(&body.to_string()),
    )
    .await
}

/// A request-to-pay, waited for until it is final.
async fn pay(app: &TestApp, subscription: &str, token: &str, msisdn: &str) {
    let reference = Uuid::new_v4().to_string();
    let headers = [
        ("Ocp-Apim-Subscription-Key", subscription),
        ("Authorization", &format!("Bearer {token}")),
        ("X-Target-Environment", "sandbox"),
    ];
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[
                ("Ocp-Apim-Subscription-Key", subscription),
                ("Authorization", &format!("Bearer {token}")),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference),
                ("Content-Type", "application/json"),
            ],
            Some(&rtp_body("25", msisdn)),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let path = format!("/collection/v1_0/requesttopay/{reference}");
    wait_for(|| async {
        let r = app.send("GET", &path, &headers, None).await;
        (r.json()["status"] != "PENDING").then_some(())
    })
    .await;
}

async fn create_market_user(b: &mut Browser, environment: &str) -> Resp {
    b.submit(
        "/portal/apiusers",
        "/portal/apiusers",
        &[("host", "shop.example"), ("environment", environment)],
    )
    .await
}

async fn admin_market_user(app: &TestApp, subscription: &str, environment: &str) -> Resp {
    app.send(
        "POST",
        "/_mkoba/apiusers",
        &[("Ocp-Apim-Subscription-Key", subscription)],
        Some(&format!(
            r#"{{"providerCallbackHost":"shop.example","targetEnvironment":"{environment}"}}"#
        )),
    )
    .await
}

/// The figures of one operation's row in a page's go-live report: total, successful,
/// failed, pending and the success rate.
fn report_row(html: &str, kind: &str) -> Vec<String> {
    let ops = html
        .split("data-testid=\"golive-operations\"")
        .nth(1)
        .expect("a report");
    let row = ops.split(&format!("<code>{kind}</code>")).nth(1).unwrap();
    row.split("<td class=\"num\">")
        .skip(1)
        .take(5)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect()
}

const REQUEST: &[(&str, &str)] = &[
    ("company", "Ada Clinics Ltd"),
    ("contact", "Ada Developer, +255712345678"),
    ("website", "https://clinic.example"),
    ("use_case", "Patients pay consultations\nfrom their phones."),
    ("market", "mtnuganda"),
    ("product", "collection"),
    ("product", "mpesa"),
];

#[tokio::test]
async fn a_developer_goes_live_once_the_operator_approves() {
    let app = TestApp::spawn().await;
    let mut dev = Browser::new(&app.base);
    let api_key = mpesa_api_key(&dev.sign_up("ada@example.com").await.text());
    let (subscription, token) = developer_partner(&app, &mut dev).await;
    pay(&app, &subscription, &token, "256779999001").await;
    // MTN's sandbox number for a failed payment.
    pay(&app, &subscription, &token, "46733123450").await;

    // Before approval: no production environment, in the portal or the admin API.
    let r = create_market_user(&mut dev, "mtnuganda").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("go-live request"), "{}", r.text());
    assert!(
        crate::helpers::marked_invalid(&r.text(), "environment"),
        "{}",
        r.text()
    );
    assert!(
        !crate::helpers::marked_invalid(&r.text(), "host"),
        "{}",
        r.text()
    );
    let r = dev
        .submit(
            "/portal/apiusers",
            "/portal/apiusers",
            &[
                ("host", "https://clinic.example/cb"),
                ("environment", "sandbox"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        crate::helpers::marked_invalid(&r.text(), "host")
            && r.text()
                .contains("aria-describedby=\"host-hint form-error\""),
        "{}",
        r.text()
    );
    let r = admin_market_user(&app, &subscription, "mtnuganda").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["code"], "NOT_ALLOWED_TARGET_ENVIRONMENT");
    let page = dev.get("/portal/apiusers").await.text();
    assert!(page.contains(
        "<option disabled value=\"mtnuganda\">mtnuganda (after go-live approval)</option>"
    ));

    // The request, with the report made from the sandbox transactions. Each product asked
    // for needs a successful one: M-Pesa has none yet.
    let html = dev.get("/portal/golive").await.text();
    assert!(html.contains("data-testid=\"golive-form\""));
    assert!(html.contains("<code>requesttopay</code>"), "{html}");
    assert!(
        html.contains(
            "data-testid=\"golive-tested\">Tested (a successful sandbox transaction): Collection</p>"
        ),
        "{html}"
    );
    let r = dev
        .submit("/portal/golive", "/portal/golive", REQUEST)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("no successful sandbox transaction of M-Pesa: test each product"),
        "{}",
        r.text()
    );
    // Only the box of the product not tested is marked.
    assert!(
        r.text().contains(
            "value=\"mpesa\" checked aria-invalid=\"true\" aria-describedby=\"form-error\">"
        ) && r.text().contains("value=\"collection\" checked>"),
        "{}",
        r.text()
    );
    assert!(
        !dev.get("/portal/golive")
            .await
            .text()
            .contains("Waiting for review")
    );
    let r = mpesa_c2b(&app, &api_key, "api.sandbox.vm.co.mz").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = dev
        .submit("/portal/golive", "/portal/golive", REQUEST)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/portal/golive?done=sent"));
    let html = dev.get("/portal/golive?done=sent").await.text();
    assert!(html.contains("Waiting for review"), "{html}");
    // The report's operations are per product.
    assert!(
        html.contains("<td>Collection</td><td><code>requesttopay</code>")
            && html.contains("<td>M-Pesa</td><td><code>c2b</code>"),
        "{html}"
    );
    assert!(!html.contains("data-testid=\"golive-form\""));
    assert_eq!(
        report_row(&html, "requesttopay"),
        ["2", "1", "1", "0", "50.0 %"],
        "{html}"
    );
    assert!(
        html.contains("INTERNAL_PROCESSING_ERROR"),
        "the failed case is listed: {html}"
    );
    // Its amount as the transaction pages show amounts.
    assert!(html.contains(">25.00 EUR<"), "{html}");
    // One pending request at a time.
    let r = dev
        .submit("/portal/golive", "/portal/golive", REQUEST)
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("already waits for review"));
    let r = dev
        .post("/portal/golive", &[("csrf", "wrong"), ("company", "Again")])
        .await;
    assert_eq!(r.status, 403);
    let mail = dev.get("/portal/mail").await.text();
    assert!(mail.contains("We received your go-live request"), "{mail}");

    // The operator reviews it.
    let mut op = operator(&app).await;
    let list = op.get("/portal/operator").await.text();
    assert!(list.contains("ada@example.com"), "{list}");
    assert!(list.contains("Ada Clinics Ltd"));
    let link = link_in(&list, "/portal/operator/golive/").expect("a link to the request");
    let html = op.get(&link).await.text();
    assert!(html.contains("Ada Clinics Ltd") && html.contains("mtnuganda"));
    assert!(
        html.contains("INTERNAL_PROCESSING_ERROR"),
        "the operator sees the report"
    );
    let opmail = op.get("/portal/mail").await.text();
    assert!(
        opmail.contains("Go-live request from ada@example.com"),
        "{opmail}"
    );
    // Rejecting needs a reason.
    let r = op
        .submit(&link, &link, &[("decision", "reject"), ("comment", " ")])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = op
        .submit(
            &link,
            &link,
            &[("decision", "approve"), ("comment", "Welcome aboard.")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/portal/operator?done=approved"));
    // Decided once: the page has no form any more, a replayed post is refused.
    let html = op.get(&link).await.text();
    assert!(!html.contains("data-testid=\"decide-form\""));
    let csrf = crate::portal::csrf_of(&op.get("/portal/operator").await.text());
    let r = op
        .post(
            &link,
            &[("csrf", &csrf), ("decision", "reject"), ("comment", "no")],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());

    // The developer is told, and production opens for the approved market only.
    let mail = dev.get("/portal/mail").await.text();
    assert!(mail.contains("Your go-live request was approved"), "{mail}");
    assert!(mail.contains("Welcome aboard."));
    let html = dev.get("/portal/golive").await.text();
    assert!(
        html.contains("data-testid=\"live-access\">mtnuganda, M-Pesa openapi"),
        "{html}"
    );
    assert!(html.contains("data-testid=\"golive-comment\">Welcome aboard."));
    let r = create_market_user(&mut dev, "mtnuganda").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = create_market_user(&mut dev, "mtnghana").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = admin_market_user(&app, &subscription, "mtnuganda").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["currency"], "UGX");
}

#[tokio::test]
async fn the_operator_rejects_with_a_comment_and_the_developer_asks_again() {
    let app = TestApp::spawn().await;
    let mut dev = Browser::new(&app.base);
    dev.sign_up("bo@example.com").await;
    // Checked like every form: bad input is answered on the page, nothing is stored.
    for (fields, problem, field) in [
        (
            vec![("company", "Bo"), ("contact", "Bo"), ("use_case", "x")],
            "Choose at least one product.",
            "product",
        ),
        (
            vec![
                ("company", "Bo"),
                ("contact", "Bo"),
                ("use_case", "x"),
                ("product", "collection"),
            ],
            "MoMo products need at least one market.",
            "market",
        ),
        (
            vec![
                ("company", "Bo"),
                ("contact", "Bo"),
                ("use_case", "x"),
                ("product", "collection"),
                ("market", "mtnatlantis"),
            ],
            "Choose markets from the list.",
            "market",
        ),
        (
            vec![
                ("company", "Bo"),
                ("contact", "   "),
                ("use_case", "x"),
                ("product", "mpesa"),
            ],
            "Company, contact and use case are required.",
            "contact",
        ),
        (
            vec![
                ("company", "Bo\u{0}"),
                ("contact", "Bo"),
                ("use_case", "x"),
                ("product", "mpesa"),
            ],
            "control characters",
            "company",
        ),
    ] {
        let r = dev
            .submit("/portal/golive", "/portal/golive", &fields)
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(problem), "{problem}: {}", r.text());
        // The controls the error is about point at it, for assistive technology; a
        // contact found wanting is shown as given, not replaced by the default.
        assert!(
            crate::helpers::marked_invalid(&r.text(), field),
            "{field}: {}",
            r.text()
        );
        if field == "contact" {
            assert!(
                r.text().contains("name=\"contact\" required"),
                "{}",
                r.text()
            );
            assert!(r.text().contains("value=\"\" aria-invalid"), "{}", r.text());
        }
    }
    // Markets chosen for M-Pesa alone: those boxes are marked, not the others.
    let r = dev
        .submit(
            "/portal/golive",
            "/portal/golive",
            &[
                ("company", "Bo"),
                ("contact", "Bo"),
                ("use_case", "x"),
                ("product", "mpesa"),
                ("market", "mtnuganda"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("value=\"mtnuganda\" checked aria-invalid=\"true\"")
            && r.text().contains("value=\"mtnghana\">"),
        "{}",
        r.text()
    );
    let request = [
        ("company", "Bo <script>"),
        ("contact", "Bo"),
        ("use_case", "Payouts"),
        ("product", "collection"),
        ("market", "mtnuganda"),
    ];
    // Nothing tested yet (seed 004: "once the development is complete and testing was
    // successful"): refused, the form kept; a failed payment alone is not enough.
    let (subscription, token) = developer_partner(&app, &mut dev).await;
    pay(&app, &subscription, &token, "46733123450").await;
    let r = dev
        .submit("/portal/golive", "/portal/golive", &request)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("Your transaction report has no successful sandbox transaction yet"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("value=\"Bo &lt;script&gt;\""),
        "{}",
        r.text()
    );
    let html = dev.get("/portal/golive").await.text();
    assert!(!html.contains("Waiting for review"), "nothing sent: {html}");
    pay(&app, &subscription, &token, "256779999001").await;
    let r = dev
        .submit("/portal/golive", "/portal/golive", &request)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let mut op = operator(&app).await;
    let list = op.get("/portal/operator").await.text();
    assert!(list.contains("Bo &lt;script&gt;"), "escaped: {list}");
    let link = link_in(&list, "/portal/operator/golive/").unwrap();
    let r = op
        .submit(
            &link,
            &link,
            &[
                ("decision", "reject"),
                ("comment", "Handle a failed payment first."),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let mail = dev.get("/portal/mail").await.text();
    assert!(mail.contains("Your go-live request was rejected"));
    assert!(mail.contains("Handle a failed payment first."));
    let html = dev.get("/portal/golive").await.text();
    assert!(html.contains("data-testid=\"golive-form\""), "asks again");
    assert!(html.contains("data-testid=\"live-access\">None yet"));
    assert!(html.contains(">rejected</span>"));
    let rejected = op.get("/portal/operator?state=rejected").await.text();
    assert!(rejected.contains("bo@example.com"));
    // A state that is none is said so (it was a 404).
    let r = op.get("/portal/operator?state=bogus").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("There is no state bogus"), "{}", r.text());
    assert!(
        op.get("/portal/operator")
            .await
            .text()
            .contains("data-testid=\"no-requests\"")
    );
}

#[tokio::test]
async fn the_mpesa_production_environment_opens_with_approval() {
    let app = TestApp::spawn().await;
    let mut dev = Browser::new(&app.base);
    let api_key = mpesa_api_key(&dev.sign_up("cy@example.com").await.text());
    let public_key = app.mpesa().await.public_key_b64;
    let public_key = PublicKey::from_base64(&public_key).unwrap();
    let get_session = |environment: &'static str| {
        let bearer = format!("Bearer {}", public_key.bearer(&api_key).unwrap());
        let app = &app;
        async move {
            app.send(
                "GET",
                &format!("/{environment}/ipg/v2/vodacomTZN/getSession/"),
                &[("Authorization", &bearer), ("Origin", "*")],
                None,
            )
            .await
        }
    };
    // v1x: the live gateway is another host (api.vm.co.mz).
    let v1x_c2b = |host: &'static str| mpesa_c2b(&app, &api_key, host);
    let r = v1x_c2b("api.sandbox.vm.co.mz").await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The live host, also written fully qualified (a trailing dot was taken for the
    // sandbox before).
    for host in ["api.vm.co.mz", "api.vm.co.mz.", "API.VM.CO.MZ.:443"] {
        let r = v1x_c2b(host).await;
        assert_eq!(r.status, 401, "{host}: {}", r.text());
        assert_eq!(r.json()["output_ResponseCode"], "INS-2");
    }
    let r = get_session("sandbox").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sandbox_session = r.json()["output_SessionID"].as_str().unwrap().to_owned();
    // Production does not know the key, nor the sandbox's session.
    let r = get_session("openapi").await;
    assert_eq!(r.json()["output_ResponseCode"], "INS-989", "{}", r.text());
    let r = app
        .send(
            "GET",
            "/openapi/ipg/v2/vodacomTZN/queryTransactionStatus/?input_QueryReference=000000000000000000001&input_ServiceProviderCode=000000&input_ThirdPartyConversationID=asv02e5958774f7ba228d83d0d689761&input_Country=TZN",
            &[
                (
                    "Authorization",
                    &format!("Bearer {}", public_key.bearer(&sandbox_session).unwrap()),
                ),
                ("Origin", "*"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-6");

    let r = dev
        .submit(
            "/portal/golive",
            "/portal/golive",
            &[
                ("company", "Cy"),
                ("contact", "Cy"),
                ("use_case", "B2C payouts"),
                ("product", "mpesa"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let mut op = operator(&app).await;
    let link = link_in(
        &op.get("/portal/operator").await.text(),
        "/portal/operator/golive/",
    )
    .unwrap();
    let r = op
        .submit(&link, &link, &[("decision", "approve"), ("comment", "")])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = get_session("openapi").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-0");
    let r = v1x_c2b("api.vm.co.mz:443").await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn an_operator_deactivates_and_reactivates_an_account() {
    let app = TestApp::spawn().await;
    let mut dev = Browser::new(&app.base);
    let welcome = dev.sign_up("di@example.com").await.text();
    let mpesa_key = crate::accounts::shown_key(&welcome);
    let subscription = dev.subscribe("collection").await;
    let mut op = operator(&app).await;
    let list = op.get("/portal/operator/accounts?email=di@").await.text();
    assert!(list.contains("di@example.com"), "{list}");
    assert!(!list.contains("sandbox@mkoba.local"), "filtered by e-mail");
    let all = op.get("/portal/operator/accounts").await.text();
    assert!(all.contains("sandbox@mkoba.local") && all.contains("operator@mkoba.local"));
    let id = crate::accounts::developer_id(&app, "di@example.com").await;
    let path = format!("/portal/operator/accounts/{id}");
    // First a confirmation, then the change.
    let r = op
        .submit(
            "/portal/operator/accounts",
            &path,
            &[("action", "deactivate")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data-testid=\"confirm\""));
    let r = op
        .submit(
            "/portal/operator/accounts",
            &path,
            &[("action", "deactivate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    // The developer's session ended, sign-in says why, and the keys stopped working.
    let r = dev.get("/portal").await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/portal/signin"));
    let r = dev.sign_in("di@example.com", "a long password").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("deactivated"));
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", &subscription),
                ("X-Reference-Id", &Uuid::new_v4().to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"providerCallbackHost":"shop.example"}"#),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let list = op.get("/portal/operator/accounts?email=di@").await.text();
    assert!(list.contains("data-testid=\"account-status\">deactivated"));
    // Reactivated: sign-in works again, with new keys.
    let r = op
        .submit(
            "/portal/operator/accounts",
            &path,
            &[("action", "activate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = dev.sign_in("di@example.com", "a long password").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let key = dev.primary_key("collection").await;
    assert_ne!(key, subscription, "the old key stays dead");
    let mail = dev.get("/portal/mail").await.text();
    assert!(mail.contains("Your Mkoba account was deactivated"));
    assert!(mail.contains("Your Mkoba account was reactivated"));
    // The M-Pesa key was replaced by one nobody holds: the profile says to renew it (and
    // the API pages that the key is not there to fill in), until it is renewed.
    let profile = dev.get("/portal/profile").await.text();
    assert!(!profile.contains(&mpesa_key), "{profile}");
    assert!(
        profile.contains("data-testid=\"mpesa-api-key-unknown\""),
        "{profile}"
    );
    let page = dev.get("/portal/docs/v1xC2bSingleStage").await.text();
    assert!(page.contains("renew it on your"), "{page}");
    let r = dev
        .submit(
            "/portal/mpesa",
            "/portal/mpesa/apikey",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let renewed = crate::accounts::shown_key(&dev.get("/portal/profile").await.text());
    assert_ne!(renewed, mpesa_key);
}

#[tokio::test]
async fn developers_reach_none_of_the_operators_pages() {
    let app = TestApp::spawn().await;
    let mut dev = Browser::new(&app.base);
    dev.sign_up("eve@example.com").await;
    let csrf = crate::portal::csrf_of(&dev.get("/portal/profile").await.text());
    for path in [
        "/portal/operator",
        "/portal/operator?state=all",
        "/portal/operator/golive/1",
        "/portal/operator/accounts",
    ] {
        let r = dev.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    for path in ["/portal/operator/golive/1", "/portal/operator/accounts/1"] {
        let r = dev
            .post(
                path,
                &[
                    ("csrf", &csrf),
                    ("decision", "approve"),
                    ("action", "deactivate"),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    // The developer's mailbox is their own, not everyone's.
    let mail = dev.get("/portal/mail").await.text();
    assert!(!mail.contains("sandbox@mkoba.local"));
    // Without a session: sign in first.
    let mut anon = Browser::new(&app.base);
    let r = anon.get("/portal/operator").await;
    assert_eq!(r.status, 303);
    // An operator cannot deactivate an operator (nor themselves).
    let mut op = operator(&app).await;
    let me = crate::accounts::developer_id(&app, "operator@mkoba.local").await;
    let r = op
        .submit(
            "/portal/operator/accounts",
            &format!("/portal/operator/accounts/{me}"),
            &[("action", "deactivate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Nor an account that has not confirmed its e-mail: it cannot sign in, and reactivated
    // it came back past the e-mail check (the security audit of 2026-12-07).
    let mut pending = Browser::new(&app.base);
    let r = pending
        .submit(
            "/portal/signup",
            "/portal/signup",
            &[
                ("name", "Pe"),
                ("email", "pe@example.com"),
                ("password", "a long password"),
                ("password2", "a long password"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let pe = crate::accounts::developer_id(&app, "pe@example.com").await;
    let list = op.get("/portal/operator/accounts?email=pe@").await.text();
    assert!(
        list.contains("data-testid=\"account-status\">pending") && !list.contains(">Deactivate<"),
        "{list}"
    );
    let r = op
        .submit(
            "/portal/operator/accounts?email=pe@",
            &format!("/portal/operator/accounts/{pe}"),
            &[("action", "deactivate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("/portal/operator/accounts?done=unchanged")
    );
    let notice = op
        .get("/portal/operator/accounts?done=unchanged")
        .await
        .text();
    assert!(notice.contains("Nothing was changed"), "{notice}");
    let list = op.get("/portal/operator/accounts?email=pe@").await.text();
    assert!(
        list.contains("data-testid=\"account-status\">pending"),
        "{list}"
    );
}

#[tokio::test]
async fn the_admin_reads_need_an_operator() {
    use base64::Engine as _;
    let app = TestApp::spawn().await;
    // Liveness for anyone, and nothing else.
    let r = app.send("GET", "/_mkoba/health", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    // The ledger and health's details: an operator's Basic credentials.
    let r = app.send("GET", "/_mkoba/ledger", &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"mkoba operator\"")
    );
    let sandbox = app.sandbox_login().await;
    let developer = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", sandbox.email, sandbox.password))
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("operator@mkoba.local:not-the-password")
    );
    for auth in [developer.as_str(), wrong.as_str(), "Basic !!!", "Bearer x"] {
        for path in ["/_mkoba/ledger", "/_mkoba/health"] {
            let r = app
                .send("GET", path, &[("Authorization", auth)], None)
                .await;
            assert_eq!(r.status, 401, "{path} with {auth}: {}", r.text());
            assert!(!r.text().contains("pid"));
        }
    }
    let operator = app.operator_auth();
    let r = app
        .send(
            "GET",
            "/_mkoba/health",
            &[("Authorization", &operator)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["pid"].as_u64().is_some());
    assert!(r.json()["rss_kb"].as_u64().is_some());
    app.assert_ledger_balanced().await;
}

/// `mkoba admin create-operator`, run beside a running server: the new operator signs in
/// and lands on the operator's pages; a taken e-mail is refused; without `--password` one is
/// made and printed.
#[tokio::test]
async fn mkoba_admin_create_operator_adds_an_operator_who_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = crate::crash::start_node_with(&data, &[]).await;
    let create = |extra: &'static [&'static str]| {
        let data = data.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
                .args(["admin", "create-operator", "--data"])
                .arg(&data)
                .args(extra)
                .output()
                .await
                .unwrap()
        }
    };
    let o = create(&[
        "--email",
        "Ops2@Example.org",
        "--password",
        "a long operator password",
    ])
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("created: ops2@example.org"));
    let mut op = Browser::new(&node.base);
    let r = op
        .sign_in("ops2@example.org", "a long operator password")
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = op.get("/portal").await;
    assert_eq!(r.header("location"), Some("/portal/operator"));
    assert_eq!(op.get("/portal/operator").await.status, 200);
    let o = create(&[
        "--email",
        "ops2@example.org",
        "--password",
        "another long password",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
    let o = create(&["--email", "ops3@example.org"]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .expect("a generated password is printed");
    let mut op = Browser::new(&node.base);
    let r = op.sign_in("ops3@example.org", password).await;
    assert_eq!(r.status, 303, "{}", r.text());
    // A mistyped data directory is refused, and nothing is made there.
    let elsewhere = dir.path().join("mistyped");
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "admin",
            "create-operator",
            "--email",
            "ops4@example.org",
            "--data",
        ])
        .arg(&elsewhere)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no Mkoba database in"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!elsewhere.exists());
}

/// A go-live report counts at most the newest transactions (`PortalConfig::report_max`,
/// 100,000 unless a test sets it), with one read: past it the page says from when, and the
/// counts and the failed cases are those of the newest.
#[tokio::test]
async fn a_go_live_report_counts_the_newest_transactions_when_there_are_too_many() {
    let app = TestApp::spawn_with(|s| s.portal.report_max = Some(3)).await;
    let mut dev = Browser::new(&app.base);
    dev.sign_up("ada@example.com").await;
    let (subscription, token) = developer_partner(&app, &mut dev).await;
    // Two failures (MTN's sandbox number for one), then three that succeed.
    for msisdn in [
        "46733123450",
        "46733123450",
        "256779999001",
        "256779999002",
        "256779999003",
    ] {
        pay(&app, &subscription, &token, msisdn).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let html = dev.get("/portal/golive").await.text();
    assert!(html.contains("data-testid=\"golive-newest\""), "{html}");
    assert_eq!(
        report_row(&html, "requesttopay"),
        ["3", "3", "0", "0", "100.0 %"],
        "{html}"
    );
    assert!(html.contains("No failed cases."), "{html}");
    // Three or fewer: all of them, and no notice.
    let app = TestApp::spawn_with(|s| s.portal.report_max = Some(5)).await;
    let mut dev = Browser::new(&app.base);
    dev.sign_up("ada@example.com").await;
    let (subscription, token) = developer_partner(&app, &mut dev).await;
    pay(&app, &subscription, &token, "46733123450").await;
    let html = dev.get("/portal/golive").await.text();
    assert!(!html.contains("golive-newest"), "{html}");
    assert!(html.contains("INTERNAL_PROCESSING_ERROR"), "{html}");
}

/// A sandbox developer an operator deactivated has its keys replaced by ones nobody may
/// hold: `mkoba credentials` printed those replacements (which then worked at the gateway),
/// and its sign-in. It says the account is deactivated and prints none of them.
#[tokio::test]
async fn a_deactivated_sandbox_developers_keys_are_not_printed() {
    let app = TestApp::spawn().await;
    let data = app.data_dir().join("data");
    let credentials = |json: bool| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"));
        c.args(["credentials", "--data"]).arg(&data);
        if json {
            c.arg("--json");
        }
        c.env_remove("MKOBA_DATABASE_URL").env_remove("MKOBA_DATA");
        async move { c.output().await.expect("mkoba credentials runs") }
    };
    let before = String::from_utf8_lossy(&credentials(false).await.stdout).into_owned();
    assert!(before.contains(app.key("collection")), "{before}");
    let mut op = operator(&app).await;
    let r = op
        .submit(
            "/portal/operator/accounts",
            "/portal/operator/accounts/1",
            &[("action", "deactivate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let out = credentials(false).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("the sandbox developer's account is deactivated by an operator"),
        "{text}"
    );
    assert!(!text.contains("sandbox@mkoba.local  password"), "{text}");
    assert!(
        text.contains("collection        primary -  secondary -"),
        "{text}"
    );
    assert!(text.contains("API key withheld"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&credentials(true).await.stdout).unwrap();
    assert_eq!(json["sandbox_developer"], "deactivated", "{json}");
    assert!(
        json["portal"].is_null() && json["mpesa"]["api_key"].is_null(),
        "{json}"
    );
    assert_eq!(json["collection"], serde_json::json!({}), "{json}");
    // The operator's sign-in is still there to reactivate it.
    assert!(json["operator"]["email"].is_string(), "{json}");
}

/// A decision on the request of a deactivated developer is mailed (it was recorded, the
/// operator told "mailed", and no mail went); a deleted developer's request cannot be
/// approved, only closed.
#[tokio::test]
async fn a_decision_reaches_a_deactivated_developer_and_a_deleted_one_gets_no_access() {
    let app = TestApp::spawn().await;
    let mut op = operator(&app).await;
    let request = [
        ("company", "Co"),
        ("contact", "Co"),
        ("use_case", "Payouts"),
        ("product", "collection"),
        ("market", "mtnuganda"),
    ];
    let mut requests = Vec::new();
    for email in ["gone@example.com", "away@example.com"] {
        let mut dev = Browser::new(&app.base);
        dev.sign_up(email).await;
        let (subscription, token) = developer_partner(&app, &mut dev).await;
        pay(&app, &subscription, &token, "256779999001").await;
        let r = dev
            .submit("/portal/golive", "/portal/golive", &request)
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        let id = crate::accounts::developer_id(&app, email).await;
        requests.push((dev, id));
    }
    let list = op.get("/portal/operator").await.text();
    let link = |nth: usize| {
        list.match_indices("/portal/operator/golive/")
            .map(|(at, _)| {
                list[at..]
                    .trim_start_matches("/portal/operator/golive/")
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .nth(nth)
            .unwrap()
    };
    // Newest first: the second developer's, then the first's.
    let (away_request, gone_request) = (link(0), link(1));
    let (mut gone, _) = requests.remove(0);
    let (_, away) = requests.remove(0);
    // The first deletes the account: approving its request is refused; rejecting closes it.
    let r = gone
        .submit(
            "/portal/profile",
            "/portal/profile/delete",
            &[("confirm", "yes"), ("password", "a long password")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data-testid=\"deleted\""));
    let page = format!("/portal/operator/golive/{gone_request}");
    let r = op.submit(&page, &page, &[("decision", "approve")]).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("deleted this account"), "{}", r.text());
    let r = op
        .submit(
            &page,
            &page,
            &[("decision", "reject"), ("comment", "Account deleted")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    // The second is deactivated, approved, reactivated: the decision waits in its mail.
    let account = format!("/portal/operator/accounts/{away}");
    let r = op
        .submit(
            "/portal/operator/accounts",
            &account,
            &[("action", "deactivate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = format!("/portal/operator/golive/{away_request}");
    let r = op.submit(&page, &page, &[("decision", "approve")]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = op
        .submit(
            "/portal/operator/accounts",
            &account,
            &[("action", "activate"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let mut back = Browser::new(&app.base);
    assert_eq!(
        back.sign_in("away@example.com", "a long password")
            .await
            .status,
        303
    );
    let mail = back.get("/portal/mail").await.text();
    assert!(mail.contains("Your go-live request was approved"), "{mail}");
}
