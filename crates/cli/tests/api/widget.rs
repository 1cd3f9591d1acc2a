//! The Collection Widget over HTTP: the script, the page-side endpoints (bad input, unknown
//! API user, origins, rate limits, long-poll, cancel, QR code), the partner's settings
//! behind the widget's own subscription key, the invoice seen through the Collection v2
//! endpoints with one callback, and the payer's side on the virtual phone.

use mkoba_platform::throttle::Rate;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Partner, Resp, Sink, TestApp, wait_for};
use crate::portal::Browser;

const SHOP: &str = "http://shop.test:9000";

impl TestApp {
    /// `POST /widget/v1_0/invoice` from a page of `origin`.
    async fn widget_invoice(&self, origin: &str, body: &Value) -> Resp {
        self.widget_invoice_raw(origin, &body.to_string()).await
    }

    /// `widget_invoice` of a body as written (JSON a `Value` cannot hold, such as `-0`).
    async fn widget_invoice_raw(&self, origin: &str, body: &str) -> Resp {
        self.send(
            "POST",
            "/widget/v1_0/invoice",
            &[("Origin", origin), ("Content-Type", "application/json")],
            Some(body),
        )
        .await
    }

    /// The partner's widget settings, with a subscription key of `product`.
    async fn widget_settings(&self, product: &str, user: Uuid, body: Option<&Value>) -> Resp {
        let body = body.map(Value::to_string);
        self.send(
            if body.is_some() { "PUT" } else { "GET" },
            &format!("/collection_widget/v1_0/apiuser/{user}/widget"),
            &[
                ("Ocp-Apim-Subscription-Key", self.key(product)),
                ("Content-Type", "application/json"),
            ],
            body.as_deref(),
        )
        .await
    }
}

fn body(user: Uuid, amount: &str) -> Value {
    json!({"apiUserId": user.to_string(), "amount": amount, "currency": "EUR", "externalId": format!("order-{amount}")})
}

/// A sandbox partner whose widget takes any page (no allowed origins set).
async fn widget_partner(app: &TestApp) -> Partner {
    let p: Partner = app.partner("127.0.0.1").await;
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    p
}

fn code(r: &Resp) -> (u16, String) {
    (r.status, r.json()["code"].as_str().unwrap_or("").to_owned())
}

/// Long-polls the invoice until it is no longer PENDING.
async fn outcome(app: &TestApp, id: &str) -> Value {
    wait_for(|| async {
        let r = app
            .send(
                "GET",
                &format!("/widget/v1_0/invoice/{id}?wait=1&known=PENDING"),
                &[("Origin", SHOP)],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await
}

#[tokio::test]
async fn the_script_and_the_demo_page_are_served() {
    let app = TestApp::spawn().await;
    let r = app
        .send("GET", "/v0.1.0/mobile-money-widget-mtn.js", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        r.text().contains("mobileMoneyReinitializeWidgets"),
        "the script"
    );
    assert!(r.body.len() < 30 * 1024, "{} bytes", r.body.len());
    // The demo page, at the root as on the sandbox and beside the versioned script.
    for path in ["/demo.html", "/v0.1.0/demo.html"] {
        let r = app.send("GET", path, &[], None).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/portal/widget/demo"), "{path}");
    }
}

#[tokio::test]
async fn widget_amounts_decide_and_the_invoice_is_a_collection_v2_invoice_with_one_callback() {
    let app = TestApp::spawn().await;
    let p: Partner = app.partner("127.0.0.1").await;
    let sink = Sink::start(200).await;
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": null, "callbackUrl": sink.url("/widget")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before: f64 = app.balance(&p).await.parse().unwrap();

    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    // As every MoMo JSON answer (its refusals too).
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    let created = r.json();
    for field in [
        "invoiceId",
        "externalId",
        "referenceId",
        "paymentReference",
        "payeeFirstName",
        "payeeLastName",
        "amount",
        "currency",
        "status",
        "expiryDateTime",
        "qrCodeUrl",
        "qrLink",
        "ussdCode",
    ] {
        assert!(created[field].is_string(), "{field}: {created}");
    }
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["payee"]["partyIdType"], "PARTY_CODE");
    let id = created["invoiceId"].as_str().unwrap().to_owned();
    assert_eq!(
        created["ussdCode"],
        format!("*165*3*{}#", created["paymentReference"].as_str().unwrap())
    );
    assert_eq!(outcome(&app, &id).await["status"], "SUCCESSFUL");

    // The partner reads it as a Collection v2 invoice, and the money is in its account.
    let r = app.get(&p, &format!("/v2_0/invoice/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "SUCCESSFUL");
    assert_eq!(r.json()["externalId"], "order-100");
    let after: f64 = app.balance(&p).await.parse().unwrap();
    assert_eq!(after - before, 100.0);

    // One callback, with the invoice's body.
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0].method, "PUT",
        "an invoice's, as the Collection API's"
    );
    let cb: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(cb["invoiceId"], id.as_str());
    assert_eq!(cb["status"], "SUCCESSFUL");
    let rows = app.final_callbacks(Uuid::parse_str(&id).unwrap()).await;
    assert_eq!(rows.len(), 1, "exactly one callback");
    assert_eq!(sink.all().len(), 1, "exactly one callback");

    // Past the wallets' opening balance (100,000) it succeeds too: the payer is whoever
    // scans the code, and MTN's sandbox decides a widget payment by its amount alone.
    let r = app.widget_invoice(SHOP, &body(p.user, "250000.50")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let big = r.json()["invoiceId"].as_str().unwrap().to_owned();
    assert_eq!(outcome(&app, &big).await["status"], "SUCCESSFUL");
    let after_big: f64 = app.balance(&p).await.parse().unwrap();
    assert_eq!(after_big - after, 250_000.5);
    sink.wait_for(2).await;
    app.assert_ledger_balanced().await;

    // 50 fails, 10 waits for the payer.
    let r = app.widget_invoice(SHOP, &body(p.user, "50")).await;
    let failed = r.json()["invoiceId"].as_str().unwrap().to_owned();
    assert_eq!(outcome(&app, &failed).await["status"], "FAILED");
    let r = app.widget_invoice(SHOP, &body(p.user, "10")).await;
    let waiting = r.json()["invoiceId"].as_str().unwrap().to_owned();
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{waiting}?wait=1&known=PENDING"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(
        r.json()["status"],
        "PENDING",
        "still waiting after the long-poll"
    );

    // The page cancels it.
    let r = app
        .send(
            "DELETE",
            &format!("/widget/v1_0/invoice/{waiting}"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "FAILED");
    let r = app
        .send(
            "DELETE",
            &format!("/widget/v1_0/invoice/{waiting}"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(code(&r), (409, "NOT_ALLOWED".to_owned()));
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn bad_input_and_unknown_api_users_are_refused_in_mtns_envelope() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let cases: [(Value, u16, &str); 10] = [
        (json!({}), 400, "BAD_REQUEST"),
        (
            json!({"apiUserId": "nope", "amount": "1", "currency": "EUR", "externalId": "x"}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.to_string(), "amount": "-1", "currency": "EUR", "externalId": "x"}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.to_string(), "amount": "abc", "currency": "EUR", "externalId": "x"}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.to_string(), "amount": "1", "currency": "EUR"}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.to_string(), "amount": "1", "currency": "EUR", "externalId": "x".repeat(65)}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.to_string(), "amount": "1", "currency": "UGX", "externalId": "x"}),
            500,
            "INVALID_CURRENCY",
        ),
        (
            json!({"apiUserId": Uuid::new_v4().to_string(), "amount": "1", "currency": "EUR", "externalId": "x"}),
            404,
            "RESOURCE_NOT_FOUND",
        ),
        // The script's pattern: the hyphenated form only.
        (
            json!({"apiUserId": p.user.simple().to_string(), "amount": "1", "currency": "EUR", "externalId": "x"}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"apiUserId": p.user.urn().to_string(), "amount": "1", "currency": "EUR", "externalId": "x"}),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (b, status, c) in cases {
        let r = app.widget_invoice(SHOP, &b).await;
        assert_eq!(code(&r), (status, c.to_owned()), "{b}: {}", r.text());
        assert!(r.json()["message"].is_string());
    }
    // A refusal says what is wrong: a member of the wrong type is no missing one, and a
    // negative amount is a number that must be positive.
    for (amount, says) in [
        (json!(true), "amount must be a string"),
        (json!("-5"), "amount must be greater than zero"),
        (json!(-5.5), "amount must be greater than zero"),
    ] {
        let b = json!({"apiUserId": p.user.to_string(), "amount": amount, "currency": "EUR", "externalId": "x"});
        let r = app.widget_invoice(SHOP, &b).await;
        assert_eq!(code(&r).0, 400, "{b}: {}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().starts_with(says),
            "{b}: {}",
            r.text()
        );
    }
    // A number is kept as it was written, -0 included (not the float's "-0.0").
    let raw = format!(
        r#"{{"apiUserId":"{}","amount":"1","currency":"EUR","externalId":-0}}"#,
        p.user
    );
    let r = app.widget_invoice_raw(SHOP, &raw).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["externalId"], "-0", "{}", r.text());
    // An invoice id, and the settings path's API user id, only in the hyphenated form.
    let invoice = Uuid::parse_str(r.json()["invoiceId"].as_str().unwrap()).unwrap();
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{}", invoice.simple()),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{invoice}"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .send(
            "GET",
            &format!("/collection_widget/v1_0/apiuser/{}/widget", p.user.simple()),
            &[("Ocp-Apim-Subscription-Key", app.key("collection_widget"))],
            None,
        )
        .await;
    assert_eq!(code(&r).0, 400, "{}", r.text());
    let r = app
        .send(
            "POST",
            "/widget/v1_0/invoice",
            &[("Origin", SHOP)],
            Some("{not json"),
        )
        .await;
    assert_eq!(code(&r).0, 400);
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{}", Uuid::new_v4()),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(code(&r), (404, "RESOURCE_NOT_FOUND".to_owned()));
    // A request-to-pay invoice id is no widget invoice.
    let r = app
        .send("GET", "/widget/v1_0/invoice/not-a-uuid/qr.svg", &[], None)
        .await;
    assert_eq!(r.status, 404);
    // The browser's preflight.
    let r = app
        .send(
            "OPTIONS",
            "/widget/v1_0/invoice",
            &[("Origin", SHOP), ("Access-Control-Request-Method", "POST")],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    // A path the widget's API does not have: its 404 is readable by a page's script too.
    let r = app
        .send("GET", "/widget/v1_0/nothing", &[("Origin", SHOP)], None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn origins_are_the_partners_to_set_with_the_widget_key() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;

    // The gateway: a Collections key is not a Collection Widget key, nor the other way.
    let r = app
        .widget_settings(
            "collection",
            p.user,
            Some(&json!({"allowedOrigins": [SHOP]})),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("subscription key"), "{}", r.text());
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[("Ocp-Apim-Subscription-Key", app.key("collection_widget"))],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // Without a list the sandbox takes any page; with one, only those listed.
    assert_eq!(
        app.widget_invoice("http://elsewhere.test", &body(p.user, "100"))
            .await
            .status,
        201
    );
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": [format!("{SHOP}/")]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["allowedOrigins"], json!([SHOP]));
    let r = app.widget_settings("collection_widget", p.user, None).await;
    assert_eq!(r.json()["allowedOrigins"], json!([SHOP]));
    let r = app
        .widget_invoice("http://elsewhere.test", &body(p.user, "100"))
        .await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("elsewhere.test")
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://elsewhere.test")
    );
    assert_eq!(
        app.widget_invoice(SHOP, &body(p.user, "100")).await.status,
        201
    );
    // An origin that could never match a page is refused, not stored: a browser leaves the
    // default port out (so it is left out here too), and an empty entry is no origin.
    for bad in [
        json!([""]),
        json!(["https://a.example:"]),
        json!(["https://a.example:99999"]),
        json!(["https://:"]),
    ] {
        let r = app
            .widget_settings(
                "collection_widget",
                p.user,
                Some(&json!({"allowedOrigins": bad})),
            )
            .await;
        assert_eq!(code(&r).0, 400, "{bad}: {}", r.text());
    }
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": ["http://shop.test:80", SHOP]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["allowedOrigins"],
        json!(["http://shop.test", SHOP])
    );
    assert_eq!(
        app.widget_invoice("http://shop.test", &body(p.user, "100"))
            .await
            .status,
        201
    );
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": [SHOP]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A member left out keeps its value: changing the callback URL alone does not open
    // the widget to every page. `null` clears it.
    let cb = "http://127.0.0.1:9/widget";
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"callbackUrl": cb})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"allowedOrigins": [SHOP], "callbackUrl": cb})
    );
    let r = app
        .widget_invoice("http://elsewhere.test", &body(p.user, "100"))
        .await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));
    let r = app
        .widget_settings("collection_widget", p.user, Some(&json!({})))
        .await;
    assert_eq!(
        r.json(),
        json!({"allowedOrigins": [SHOP], "callbackUrl": cb})
    );
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"callbackUrl": null})),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"allowedOrigins": [SHOP], "callbackUrl": null})
    );
    // An empty list lets no page in, and the portal says so (it showed an empty box, next
    // to "Without a list, the sandbox takes any page").
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": []})),
        )
        .await;
    assert_eq!(r.json()["allowedOrigins"], json!([]), "{}", r.text());
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));
    let mut b = crate::portal_defects::sandbox_browser(&app).await;
    let html = b.get("/portal/widget").await.text();
    assert!(html.contains("data-testid=\"no-origins\""), "{html}");
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": [SHOP]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!b.get("/portal/widget").await.text().contains("no-origins"));
    // The portal's form refuses a bad list with 400 (as its other forms do) and says why.
    let r = b
        .submit(
            "/portal/widget",
            &format!("/portal/widget/{}/settings", p.user),
            &[("origins", "not an origin"), ("callback_url", "")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("role=\"alert\""), "{}", r.text());
    // Beside the field it is about, which keeps what was typed.
    let html = r.text();
    assert!(crate::helpers::marked_invalid(&html, "origins"), "{html}");
    assert!(
        !crate::helpers::marked_invalid(&html, "callback_url"),
        "{html}"
    );
    assert!(html.contains(">not an origin</textarea>"), "{html}");
    let r = b
        .submit(
            "/portal/widget",
            &format!("/portal/widget/{}/settings", p.user),
            &[
                ("origins", SHOP),
                ("callback_url", "http://elsewhere.test/cb"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let html = r.text();
    assert!(
        crate::helpers::marked_invalid(&html, "callback_url"),
        "{html}"
    );
    assert!(!crate::helpers::marked_invalid(&html, "origins"), "{html}");
    assert!(
        html.contains("value=\"http://elsewhere.test/cb\""),
        "{html}"
    );

    // Bad settings are refused; another developer's API user is not found.
    for bad in [
        json!({"allowedOrigins": ["shop.test"]}),
        json!({"allowedOrigins": "x"}),
        json!({"callbackUrl": "http://evil.test/cb"}),
    ] {
        let r = app
            .widget_settings("collection_widget", p.user, Some(&bad))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // A refusal names the field sent, not a header this call has none of; a URL off the
    // API user's callback host is the partner's mistake (a request to pay answers 500).
    for (url, said) in [
        ("javascript:alert(1)", "callbackUrl must be an absolute"),
        (
            "http://evil.test/cb",
            "callbackUrl's host must be the API user's providerCallbackHost, 127.0.0.1",
        ),
    ] {
        let r = app
            .widget_settings(
                "collection_widget",
                p.user,
                Some(&json!({"callbackUrl": url})),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().starts_with(said),
            "{}",
            r.text()
        );
    }
    let r = app
        .widget_settings("collection_widget", Uuid::new_v4(), None)
        .await;
    assert_eq!(r.status, 404);

    // A production-like API user needs a list.
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"providerCallbackHost":"shop.test","targetEnvironment":"mtnuganda"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let market_user: Uuid = r.json()["apiUser"]
        .as_str()
        .or(r.json()["id"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    let mut b = body(market_user, "100");
    b["currency"] = json!("UGX");
    let r = app.widget_invoice(SHOP, &b).await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()), "{}", r.text());
}

/// A request without `Origin` is a page of the server's own origin: browsers send none on
/// a same-origin `GET`, so a widget on the portal's demo (or a shop behind the same host)
/// was told its paid invoice had failed `403` at its first status read whenever a list was
/// set, even `*` or the server's own origin.
#[tokio::test]
async fn a_request_without_origin_is_a_page_of_the_servers_own_origin() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let own = app.base.clone();
    let allow = |origins: Value| {
        let app = &app;
        async move {
            let r = app
                .widget_settings(
                    "collection_widget",
                    p.user,
                    Some(&json!({ "allowedOrigins": origins })),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    // A status read without `Origin`, with the `Host` a proxy would pass on.
    let read = |id: String, host: Option<&'static str>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = host.map(|h| ("Host", h)).into_iter().collect();
            app.send("GET", &format!("/widget/v1_0/invoice/{id}"), &headers, None)
                .await
        }
    };
    let made = |r: Resp| {
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["invoiceId"].as_str().unwrap().to_owned()
    };
    for (allowed, served) in [
        (json!(["*"]), true),
        (json!([own]), true),
        (json!([SHOP]), false),
    ] {
        allow(allowed.clone()).await;
        let r = app.widget_invoice(&own, &body(p.user, "100")).await;
        if !served {
            assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));
            continue;
        }
        let r = read(made(r), None).await;
        assert_eq!(r.status, 200, "{allowed}: {}", r.text());
    }
    // Behind a proxy that ends TLS the page is https:// and the request came in plain: the
    // host it reached is what counts.
    allow(json!(["https://pay.example"])).await;
    let id = made(
        app.widget_invoice("https://pay.example", &body(p.user, "100"))
            .await,
    );
    let r = read(id.clone(), Some("pay.example")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = read(id, Some("elsewhere.example")).await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));

    // Not listed: refused, and the refusal says whose origin it took.
    allow(json!(["*"])).await;
    let id = made(app.widget_invoice(SHOP, &body(p.user, "100")).await);
    allow(json!([SHOP])).await;
    let r = read(id, None).await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()));
    assert!(
        r.text().contains("no Origin header: this server's own"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_widget_is_rate_limited_per_api_user_and_per_client() {
    let app = TestApp::spawn_with(|s| {
        // Two invoices at once per API user, six requests per client, then one a minute.
        s.momo.widget.per_api_user = Rate::new(2, std::time::Duration::from_secs(120));
        s.momo.widget.per_client = Rate::new(6, std::time::Duration::from_secs(360));
    })
    .await;
    let p = app.partner("127.0.0.1").await;
    for _ in 0..2 {
        assert_eq!(
            app.widget_invoice(SHOP, &body(p.user, "100")).await.status,
            201
        );
    }
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(code(&r), (429, "TOO_MANY_REQUESTS".to_owned()));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Another API user still may, until this client's own budget runs out.
    let q = app.partner("127.0.0.1").await;
    assert_eq!(
        app.widget_invoice(SHOP, &body(q.user, "100")).await.status,
        201
    );
    let mut last = 0;
    for _ in 0..4 {
        last = app
            .send(
                "GET",
                &format!("/widget/v1_0/invoice/{}", Uuid::new_v4()),
                &[("Origin", SHOP)],
                None,
            )
            .await
            .status;
    }
    assert_eq!(last, 429, "the client's budget is spent");
}

/// `POST /widget/v1_0/invoice` from a client at `from` (a loopback address of its own):
/// the answer's status.
async fn invoice_from(app: &TestApp, from: [u8; 4], body: &Value) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(app.running.addr).await.unwrap();
    let body = body.to_string();
    stream
        .write_all(
            format!(
                "POST /widget/v1_0/invoice HTTP/1.1\r\nHost: mkoba\r\nOrigin: {SHOP}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"))
}

/// One client cannot spend a partner's whole invoice budget: its own share of a partner's
/// invoices runs out first, and the partner's other shoppers still pay.
#[tokio::test]
async fn one_client_cannot_lock_a_partners_shoppers_out() {
    let app = TestApp::spawn_with(|s| {
        s.momo.widget.per_api_user = Rate::new(4, std::time::Duration::from_secs(120));
        s.momo.widget.per_client_invoices = Rate::new(2, std::time::Duration::from_secs(120));
    })
    .await;
    let p = app.partner("127.0.0.1").await;
    let attacker = [127, 0, 0, 2];
    for _ in 0..2 {
        assert_eq!(
            invoice_from(&app, attacker, &body(p.user, "100")).await,
            201
        );
    }
    for _ in 0..10 {
        assert_eq!(
            invoice_from(&app, attacker, &body(p.user, "100")).await,
            429
        );
    }
    // A shopper elsewhere pays: the partner's budget was not spent by the refusals.
    let shopper = [127, 0, 0, 3];
    assert_eq!(invoice_from(&app, shopper, &body(p.user, "100")).await, 201);
}

/// A request without `Host` (HTTP/1.0 has none) gets a payer link to the address it reached,
/// port included (it was `http://127.0.0.1`, port 80, where nothing listens).
#[tokio::test]
async fn the_payer_link_of_a_request_without_host_names_the_address_reached() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let body = body(p.user, "10").to_string();
    let request = format!(
        "POST /widget/v1_0/invoice HTTP/1.0\r\nOrigin: {SHOP}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.running.addr)
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 201"), "{answer}");
    let link = format!(
        "\"qrLink\":\"http://{}/portal/phone/invoice/",
        app.running.addr
    );
    assert!(answer.contains(&link), "{link} in {answer}");
}

#[tokio::test]
async fn the_payer_approves_or_rejects_through_the_qr_link_and_the_dial_pad() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let mut phone = Browser::new(&app.base);
    let open = |v: &Value| {
        let link = v["qrLink"].as_str().unwrap();
        link.strip_prefix(&app.base).unwrap().to_owned()
    };

    // Approve through the QR code's link: no portal session needed.
    let created = app.widget_invoice(SHOP, &body(p.user, "10")).await.json();
    let id = created["invoiceId"].as_str().unwrap().to_owned();
    let r = app
        .send("GET", created["qrCodeUrl"].as_str().unwrap(), &[], None)
        .await;
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    assert!(r.text().starts_with("<svg"));
    // Opened on its own, nothing in it may run or load.
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'self'")
    );
    // The QR code needs the invoice's signed token, as its answers give it: an `<img>` sends
    // no Origin for the allowed origins to check, and the code holds the payer link.
    let bare = format!("/widget/v1_0/invoice/{id}/qr.svg");
    assert_eq!(app.send("GET", &bare, &[], None).await.status, 404);
    let other = app.widget_invoice(SHOP, &body(p.user, "10")).await.json();
    let others_token = other["qrCodeUrl"]
        .as_str()
        .unwrap()
        .split("?t=")
        .nth(1)
        .unwrap();
    let r = app
        .send("GET", &format!("{bare}?t={others_token}"), &[], None)
        .await;
    assert_eq!(r.status, 404);
    let page = open(&created);
    let token = page.split("t=").nth(1).unwrap().to_owned();
    let html = phone.get(&page).await.text();
    assert!(html.contains("data-testid=\"phone-approve\""), "{html}");
    let r = phone
        .submit(
            &page,
            &format!("/portal/phone/invoice/{id}/approve"),
            &[("t", &token)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(outcome(&app, &id).await["status"], "SUCCESSFUL");

    // Reject another.
    let created = app.widget_invoice(SHOP, &body(p.user, "10")).await.json();
    let id = created["invoiceId"].as_str().unwrap().to_owned();
    let page = open(&created);
    let token = page.split("t=").nth(1).unwrap().to_owned();
    phone
        .submit(
            &page,
            &format!("/portal/phone/invoice/{id}/reject"),
            &[("t", &token)],
        )
        .await;
    let v = outcome(&app, &id).await;
    assert_eq!(v["status"], "FAILED");

    // A forged token opens nothing.
    let r = phone
        .get(&format!("/portal/phone/invoice/{id}?t=forged.token"))
        .await;
    assert_eq!(r.status, 404);

    // The dial pad of the signed-in developer finds an invoice by its USSD code.
    let created = app.widget_invoice(SHOP, &body(p.user, "10")).await.json();
    let login = app.sandbox_login().await;
    let mut dev = Browser::new(&app.base);
    dev.sign_in(&login.email, &login.password).await;
    let r = dev
        .submit(
            "/portal/phone",
            "/portal/phone/dial",
            &[("code", created["ussdCode"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 303);
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with(&format!(
            "/portal/phone/invoice/{}?t=",
            created["invoiceId"].as_str().unwrap()
        )),
        "{location}"
    );
    let r = dev
        .submit(
            "/portal/phone",
            "/portal/phone/dial",
            &[("code", "*165*3*000000000#")],
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some("/portal/phone?done=dial-unknown")
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_request_to_pay_of_7000_is_not_allowed_to_reach_the_payee() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("7000", "256770000001"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202);
    let v = app.final_status(&p, reference).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["reason"], "PAYEE_NOT_ALLOWED_TO_RECEIVE");
}

/// The widget's query parameters are read as its answers are: a bad one is a 400 in
/// MoMo's envelope saying what was wrong, with the CORS header, so the script can read it.
#[tokio::test]
async fn bad_query_parameters_are_refused_in_the_widgets_answers() {
    let app = TestApp::spawn().await;
    let p: Partner = app.partner("127.0.0.1").await;
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["invoiceId"].as_str().unwrap().to_owned();
    for (query, says) in [
        ("wait=abc&known=PENDING", "wait must be a whole number"),
        ("wait=-1", "wait must be a whole number"),
        ("wait=1.5", "wait must be a whole number"),
        ("wait=", "wait must be a whole number"),
        ("wait=1&wait=2", "gives wait twice"),
        ("known=PENDING&known=FAILED", "gives known twice"),
        ("wait=%ZZ", "percent-encoded"),
    ] {
        let r = app
            .send(
                "GET",
                &format!("/widget/v1_0/invoice/{id}?{query}"),
                &[("Origin", SHOP)],
                None,
            )
            .await;
        assert_eq!(
            code(&r),
            (400, "BAD_REQUEST".to_owned()),
            "{query}: {}",
            r.text()
        );
        assert!(
            r.json()["message"].as_str().unwrap().contains(says),
            "{query}: {}",
            r.text()
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(SHOP),
            "{query}"
        );
    }
    // Numbers past the longest wait are the longest wait; unknown parameters are ignored.
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{id}?wait=99999999999999999999999&known=FAILED&x=1"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A body over the limit: MoMo's 413, still with the CORS header.
    let big = "x".repeat(3 * 1024 * 1024);
    let r = app
        .send(
            "POST",
            "/widget/v1_0/invoice",
            &[("Origin", SHOP), ("Content-Type", "application/json")],
            Some(&big),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "BAD_REQUEST", "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{id}/qr.svg?t=a&t=b"),
            &[],
            None,
        )
        .await;
    assert_eq!(code(&r), (400, "BAD_REQUEST".to_owned()), "{}", r.text());
    assert!(r.text().contains("gives t twice"), "{}", r.text());
}

/// A widget invoice's page in the portal says what the widget's endpoint answered (201 with
/// the invoice), not the 202 of the APIs.
#[tokio::test]
async fn a_widget_invoices_timeline_says_201_created() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let r = app.widget_invoice(SHOP, &body(p.user, "10")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["invoiceId"].as_str().unwrap().to_owned();
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);
    let html = b.get(&format!("/portal/transactions/{id}")).await.text();
    assert!(html.contains("201 Created"), "{html}");
    assert!(!html.contains("202 Accepted"), "{html}");
}

/// The portal's "Collection Widget" API, in the transactions' filter and in the reports,
/// picks the widget's invoices (stored as the Collection API's invoices) and nothing else;
/// before, it matched nothing.
#[tokio::test]
async fn the_portals_collection_widget_filter_finds_the_widgets_invoices() {
    let app = TestApp::spawn().await;
    let p = widget_partner(&app).await;
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let invoice = r.json()["invoiceId"].as_str().unwrap().to_owned();
    let other = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            other,
            &crate::helpers::rtp_body("5", "256770000042"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);

    let html = b
        .get("/portal/transactions?product=collection_widget")
        .await
        .text();
    assert!(html.contains(&invoice), "the widget's invoice: {html}");
    assert!(!html.contains(&other.to_string()), "not a request-to-pay");
    let html = b
        .get("/portal/transactions?product=collection")
        .await
        .text();
    assert!(html.contains(&invoice) && html.contains(&other.to_string()));
    let html = b
        .get("/portal/reports?product=collection_widget")
        .await
        .text();
    assert!(html.contains("Transactions: 1,"), "{html}");
    let html = b.get("/portal/reports?product=collection").await.text();
    assert!(html.contains("Transactions: 2,"), "{html}");
}

/// The widget takes no key, so an account's replaced keys do not stop it: an API user of a
/// deactivated (or deleted) account is unknown to it, and again known once the account is
/// active again.
#[tokio::test]
async fn a_deactivated_accounts_api_users_make_no_widget_invoices() {
    let app = TestApp::spawn().await;
    let p = widget_partner(&app).await;
    let r = app.widget_invoice(SHOP, &body(p.user, "10")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let earlier = r.json()["invoiceId"].as_str().unwrap().to_owned();
    let qr = r.json()["qrCodeUrl"].as_str().unwrap().to_owned();
    assert_eq!(app.send("GET", &qr, &[], None).await.status, 200);
    let accounts = app.running.platform.portal();
    let developer = mkoba_platform::SANDBOX_DEVELOPER;
    accounts
        .set_account_active(developer, false, None)
        .await
        .unwrap();
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(
        code(&r),
        (404, "RESOURCE_NOT_FOUND".to_owned()),
        "{}",
        r.text()
    );
    let r = app
        .send(
            "GET",
            &format!("/widget/v1_0/invoice/{earlier}"),
            &[("Origin", SHOP)],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Nor its QR code, which an <img> loads without an Origin.
    assert_eq!(app.send("GET", &qr, &[], None).await.status, 404);
    accounts
        .set_account_active(developer, true, None)
        .await
        .unwrap();
    let r = app.widget_invoice(SHOP, &body(p.user, "100")).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A refusal quotes what was sent, but not all of it: a megabyte id is answered in a few
/// hundred bytes that still name the field and the rule.
#[tokio::test]
async fn a_refusal_quotes_a_huge_value_in_part() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(1_000_000);
    let r = app
        .widget_invoice(
            SHOP,
            &json!({"apiUserId": huge, "amount": "100", "currency": "EUR", "externalId": "o-1"}),
        )
        .await;
    assert_eq!(code(&r), (400, "BAD_REQUEST".to_owned()));
    assert!(r.body.len() < 1_000, "{} bytes", r.body.len());
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("apiUserId must be a UUID v4") && message.contains('…'),
        "{message}"
    );
}

/// The widget is a product of its own: a developer subscribed to Collection alone takes no
/// widget payments (403 `NOT_ALLOWED`, saying why), and the portal's widget page says so,
/// until the developer subscribes to the Collection Widget.
#[tokio::test]
async fn a_developer_takes_widget_payments_once_subscribed_to_the_widget() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.base);
    b.sign_up("shop@example.com").await;
    let collection = b.subscribe("collection").await;
    let user = Uuid::new_v4();
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", collection.as_str()),
                ("X-Reference-Id", &user.to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"providerCallbackHost":"shop.test"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app.widget_invoice(SHOP, &body(user, "100")).await;
    assert_eq!(code(&r), (403, "NOT_ALLOWED".to_owned()), "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not subscribed to the Collection Widget"),
        "{}",
        r.text()
    );
    let page = b.get("/portal/widget").await.text();
    assert!(
        page.contains("data-testid=\"widget-unsubscribed\""),
        "{page}"
    );
    b.subscribe("collection_widget").await;
    let r = app.widget_invoice(SHOP, &body(user, "100")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let page = b.get("/portal/widget").await.text();
    assert!(
        !page.contains("data-testid=\"widget-unsubscribed\""),
        "{page}"
    );
}

/// The portal's Send Request box sends its call as a request to this server: a widget
/// invoice made there is one of the server's own origin (it was `http://127.0.0.1`, without
/// the port, and refused once the allowed origins named the server's address).
#[tokio::test]
async fn the_portals_send_request_box_is_a_page_of_the_servers_own_origin() {
    let app = TestApp::spawn().await;
    let p = widget_partner(&app).await;
    let r = app
        .widget_settings(
            "collection_widget",
            p.user,
            Some(&json!({"allowedOrigins": [app.base.clone()]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);
    let body = json!({"apiUserId": p.user.to_string(), "amount": "100", "currency": "EUR", "externalId": "try"})
        .to_string();
    let r = b
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[
                ("method", "POST"),
                ("path", "/widget/v1_0/invoice"),
                ("headers", ""),
                ("body", &body),
            ],
        )
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"try-status\">201<"), "{html}");
}
