//! Collection v2: invoices, pre-approvals and `CreatePayments` over HTTP.

use uuid::Uuid;

use crate::helpers::{Partner, Resp, Sink, TestApp, wait_for};

async fn call(
    app: &TestApp,
    p: &Partner,
    method: &str,
    path: &str,
    reference: Option<Uuid>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Resp {
    let bearer = format!("Bearer {}", p.token);
    let reference = reference.map(|r| r.to_string());
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", app.key("collection")),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
        ("Content-Type", "application/json"),
    ];
    if let Some(r) = &reference {
        headers.push(("X-Reference-Id", r.as_str()));
    }
    headers.extend_from_slice(extra);
    app.send(method, &format!("/collection{path}"), &headers, body)
        .await
}

async fn settled(app: &TestApp, p: &Partner, path: &str) -> serde_json::Value {
    wait_for(|| async {
        let r = call(app, p, "GET", path, None, None, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await
}

fn invoice_body(amount: &str, payer: &str) -> String {
    format!(
        r#"{{"externalId":"inv-1","amount":"{amount}","currency":"EUR","validityDuration":"3600","intendedPayer":{{"partyIdType":"MSISDN","partyId":"{payer}"}},"payee":{{"partyIdType":"MSISDN","partyId":"256700000001"}},"description":"Invoice one"}}"#
    )
}

/// `POST /collection/v2_0/invoice` of `amount` EUR for `payer`.
async fn create_invoice(
    app: &TestApp,
    p: &Partner,
    reference: Uuid,
    amount: &str,
    payer: &str,
    extra: &[(&str, &str)],
) -> Resp {
    call(
        app,
        p,
        "POST",
        "/v2_0/invoice",
        Some(reference),
        Some(&invoice_body(amount, payer)),
        extra,
    )
    .await
}

#[tokio::test]
async fn an_invoice_is_paid_by_its_intended_payer() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let sink = Sink::start(200).await;
    let reference = Uuid::new_v4();
    let r = create_invoice(
        &app,
        &p,
        reference,
        "30",
        "256790000001",
        &[("X-Callback-Url", &sink.url("/inv"))],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = settled(&app, &p, &format!("/v2_0/invoice/{reference}")).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["referenceId"], reference.to_string());
    assert_eq!(v["intendedPayer"]["partyId"], "256790000001");
    assert_eq!(v["description"], "Invoice one");
    assert!(v["expiryDateTime"].as_str().unwrap().contains('T'));
    assert!(v.get("errorReason").is_none());
    assert_eq!(app.balance(&p).await, "30");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].method, "PUT");
    assert!(got[0].body.contains(r#""status":"SUCCESSFUL""#));
    // A paid invoice can no longer be cancelled.
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{reference}"),
        Some(Uuid::new_v4()),
        Some(r#"{"externalId":"inv-1"}"#),
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (500, Some("NOT_ALLOWED"))
    );
    app.assert_ledger_balanced().await;
}

/// Open payments are bounded: past `--max-pending-payments` a new one is refused with
/// MTN's overload answer and nothing is stored; once one is final, payments are taken again.
#[tokio::test]
async fn past_the_bound_on_open_payments_a_new_one_is_refused_until_one_is_final() {
    let app = TestApp::spawn_with(|s| {
        s.platform.settle_delay = std::time::Duration::from_secs(30);
        s.platform.pending_in_memory = 3;
        // One developer may hold them all here (its share is tested in `portal`).
        s.platform.pending_per_developer = Some(3);
    })
    .await;
    let p = app.partner("clinic.com").await;
    let invoice = |reference| create_invoice(&app, &p, reference, "40", "256790000002", &[]);
    let open: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for &reference in &open {
        assert_eq!(invoice(reference).await.status, 202);
    }
    let refused = Uuid::new_v4();
    let r = invoice(refused).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert!(r.header("retry-after").is_some());
    let get = |reference: Uuid| {
        let (app, p) = (&app, &p);
        async move {
            call(
                app,
                p,
                "GET",
                &format!("/v2_0/invoice/{reference}"),
                None,
                None,
                &[],
            )
            .await
        }
    };
    assert_eq!(get(refused).await.status, 404, "nothing was stored");
    // One is cancelled (final): the next is taken.
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{}", open[0]),
        Some(Uuid::new_v4()),
        Some(r#"{"externalId":"inv-1"}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(invoice(refused).await.status, 202);
    assert_eq!(get(refused).await.json()["status"], "PENDING");
    app.assert_ledger_balanced().await;
}

/// An app whose payments wait (a settle delay of 30 s) and call back to loopback, a sink,
/// and an invoice made with `created` headers and cancelled with `X-Callback-Url` at the
/// sink's `/cancelled`; its reference.
async fn cancelled_invoice(created: &[(&str, &str)]) -> (TestApp, Sink, Uuid) {
    let app = TestApp::spawn_with(|s| {
        s.platform.settle_delay = std::time::Duration::from_secs(30);
        s.dispatcher.allow_private = true;
    })
    .await;
    let sink = Sink::start(200).await;
    let p = app.partner("127.0.0.1").await;
    let reference = Uuid::new_v4();
    let created: Vec<(&str, String)> = created
        .iter()
        .map(|(k, v)| (*k, v.replace("SINK", &sink.url(""))))
        .collect();
    let created: Vec<(&str, &str)> = created.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = create_invoice(&app, &p, reference, "40", "256790000002", &created).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{reference}"),
        Some(Uuid::new_v4()),
        Some(r#"{"externalId":"inv-1"}"#),
        &[("X-Callback-Url", &sink.url("/cancelled"))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (app, sink, reference)
}

/// The cancelling request's own `X-Callback-Url` is where the cancellation's callback goes
/// (MTN's CancelInvoice: "Callback URL to send callback to once the invoice is completed").
#[tokio::test]
async fn a_cancelled_invoice_calls_back_the_cancelling_requests_url() {
    let (app, sink, reference) = cancelled_invoice(&[("X-Callback-Url", "SINK/created")]).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].path, "/cancelled");
    assert!(
        got[0].body.contains("TRANSACTION_CANCELED"),
        "{}",
        got[0].body
    );
    assert_eq!(app.final_callbacks(reference).await.len(), 1);
    // The portal sends it again where it went, not to the creating request's URL.
    let mut b = crate::portal_defects::sandbox_browser(&app).await;
    let page = format!("/portal/transactions/{reference}");
    let r = b.submit(&page, &format!("{page}/resend"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].path, "/cancelled");
    assert_eq!(got[1].body, got[0].body);
}

#[tokio::test]
async fn a_pending_invoice_can_be_cancelled_and_its_reservation_is_released() {
    let app =
        TestApp::spawn_with(|s| s.platform.settle_delay = std::time::Duration::from_secs(30)).await;
    let p = app.partner("clinic.com").await;
    let reference = Uuid::new_v4();
    create_invoice(&app, &p, reference, "40", "256790000002", &[]).await;
    let v = call(
        &app,
        &p,
        "GET",
        &format!("/v2_0/invoice/{reference}"),
        None,
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(v["status"], "PENDING");
    assert_eq!(v["paymentReference"].as_str().unwrap().len(), 9);
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{reference}"),
        Some(Uuid::new_v4()),
        Some(r#"{"externalId":"inv-1"}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"externalId":"inv-1"}"#);
    let v = call(
        &app,
        &p,
        "GET",
        &format!("/v2_0/invoice/{reference}"),
        None,
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["errorReason"]["code"], "TRANSACTION_CANCELED");
    let wallet = app
        .running
        .platform
        .payments()
        .wallet(
            "MSISDN:256790000002",
            mkoba_ledger::Currency::parse("EUR").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        wallet.available(),
        100_000 * 100,
        "the reservation was released"
    );
    // Cancelled once: a second cancel is refused as for any invoice no longer pending.
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{reference}"),
        Some(Uuid::new_v4()),
        Some(r#"{"externalId":"inv-1"}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["code"], "NOT_ALLOWED", "{}", r.text());
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{}", Uuid::new_v4()),
        Some(Uuid::new_v4()),
        Some("{}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{reference}"),
        None,
        Some("{}"),
        &[],
    )
    .await;
    assert_eq!(
        r.status, 400,
        "the cancellation needs its own X-Reference-Id"
    );
    // Without a body (or an externalId in it) the answer echoes the invoice's own, not null.
    let other = Uuid::new_v4();
    create_invoice(&app, &p, other, "5", "256790000002", &[]).await;
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v2_0/invoice/{other}"),
        Some(Uuid::new_v4()),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"externalId":"inv-1"}"#);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn invoice_test_payers_and_bad_input() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let reference = Uuid::new_v4();
    create_invoice(&app, &p, reference, "1", "46733123452", &[]).await;
    let v = settled(&app, &p, &format!("/v2_0/invoice/{reference}")).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["errorReason"]["code"], "EXPIRED");
    for bad in [
        invoice_body("1", "256790000003").replace(
            r#""validityDuration":"3600""#,
            r#""validityDuration":"soon""#,
        ),
        invoice_body("x", "256790000003"),
        r#"{"amount":"1","currency":"EUR"}"#.to_owned(),
    ] {
        let r = call(
            &app,
            &p,
            "POST",
            "/v2_0/invoice",
            Some(Uuid::new_v4()),
            Some(&bad),
            &[],
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = create_invoice(&app, &p, reference, "1", "256790000003", &[]).await;
    assert_eq!(r.status, 409);
}

fn pre_approval(payer: &str) -> String {
    format!(
        r#"{{"payer":{{"partyIdType":"MSISDN","partyId":"{payer}"}},"payerCurrency":"EUR","payerMessage":"Monthly plan","validityTime":86400}}"#
    )
}

/// A pre-approval of `payer` asked for (202): its reference id.
async fn ask_pre_approval(app: &TestApp, p: &Partner, payer: &str) -> Uuid {
    let reference = Uuid::new_v4();
    let body = pre_approval(payer);
    let r = call(
        app,
        p,
        "POST",
        "/v2_0/preapproval",
        Some(reference),
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    reference
}

#[tokio::test]
async fn a_pre_approval_is_approved_listed_and_cancelled_without_moving_money() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let reference = ask_pre_approval(&app, &p, "256791111111").await;
    let v = settled(&app, &p, &format!("/v2_0/preapproval/{reference}")).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["payerCurrency"], "EUR");
    assert!(v["expirationDateTime"].is_string());
    let r = call(
        &app,
        &p,
        "GET",
        "/v1_0/preapprovals/msisdn/256791111111",
        None,
        None,
        &[],
    )
    .await;
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["preApprovalId"], reference.to_string());
    assert_eq!(list[0]["status"], "APPROVED");
    assert_eq!(list[0]["message"], "Monthly plan");
    assert_eq!(app.balance(&p).await, "0");
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v1_0/preapproval/{reference}"),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &app,
        &p,
        "GET",
        "/v1_0/preapprovals/msisdn/256791111111",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(r.text(), "[]");
    let v = call(
        &app,
        &p,
        "GET",
        &format!("/v2_0/preapproval/{reference}"),
        None,
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(v["reason"]["code"], "TRANSACTION_CANCELED");
    let r = call(
        &app,
        &p,
        "DELETE",
        &format!("/v1_0/preapproval/{reference}"),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 500);
    let r = call(
        &app,
        &p,
        "GET",
        "/v1_0/preapprovals/msisdn/46733123469",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(r.text(), "[]");
}

/// MTN cancels "only that preapproval which is in approved state": a pending one waits for
/// its payer (`500 NOT_ALLOWED`, as for a rejected one). A holder named by `alias` or `id`
/// (the definitions' other types) has the sandbox's identity and no pre-approvals; an
/// unknown type is a 400.
#[tokio::test]
async fn a_pending_pre_approval_is_not_cancelled_and_holders_go_by_alias_or_id() {
    let app =
        TestApp::spawn_with(|s| s.platform.settle_delay = std::time::Duration::from_secs(86_400))
            .await;
    let p = app.partner("clinic.com").await;
    let reference = ask_pre_approval(&app, &p, "256791111112").await;
    let path = format!("/v1_0/preapproval/{reference}");
    let r = call(&app, &p, "DELETE", &path, None, None, &[]).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["code"], "NOT_ALLOWED", "{}", r.text());
    let path = format!("/v2_0/preapproval/{reference}");
    let v = call(&app, &p, "GET", &path, None, None, &[]).await.json();
    assert_eq!(v["status"], "PENDING", "{v}");

    for path in [
        "/v1_0/preapprovals/alias/shop-7",
        "/v1_0/preapprovals/ID/123",
    ] {
        let r = call(&app, &p, "GET", path, None, None, &[]).await;
        assert_eq!((r.status, r.text()), (200, "[]".to_owned()), "{path}");
    }
    for path in [
        "/v1_0/accountholder/Alias/shop-7/basicuserinfo",
        "/v1_0/accountholder/ID/123/basicuserinfo",
    ] {
        let r = call(&app, &p, "GET", path, None, None, &[]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["name"], "Sand Box", "{path}");
    }
    for path in [
        "/v1_0/preapprovals/nickname/x",
        "/v1_0/accountholder/nickname/x/basicuserinfo",
    ] {
        let r = call(&app, &p, "GET", path, None, None, &[]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.json()["code"], "BAD_REQUEST", "{path}");
    }
}

#[tokio::test]
async fn a_rejected_pre_approval_fails_with_its_reason() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let reference = ask_pre_approval(&app, &p, "46733123451").await;
    let v = settled(&app, &p, &format!("/v2_0/preapproval/{reference}")).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["reason"]["code"], "APPROVAL_REJECTED");
    assert!(v["reason"]["message"].is_string());
}

fn v2_payment(amount: &str, customer: &str) -> String {
    format!(
        r#"{{"externalTransactionId":"bill-7","money":{{"amount":"{amount}","currency":"EUR"}},"customerReference":"{customer}","serviceProviderUserName":"power-co","receiverMessage":"Meter 42","senderNote":"Power","maxNumberOfRetries":1,"includeSenderCharges":false}}"#
    )
}

#[tokio::test]
async fn v2_payments_follow_the_amount_scenarios() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let ok = Uuid::new_v4();
    let r = call(
        &app,
        &p,
        "POST",
        "/v2_0/payment",
        Some(ok),
        Some(&v2_payment("1000", "256792222222")),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = settled(&app, &p, &format!("/v2_0/payment/{ok}")).await;
    assert_eq!(v["status"], "SUCCESSFUL");
    assert_eq!(v["referenceId"], ok.to_string());
    assert_eq!(v["financialTransactionId"].as_str().unwrap().len(), 10);
    let failed = Uuid::new_v4();
    call(
        &app,
        &p,
        "POST",
        "/v2_0/payment",
        Some(failed),
        Some(&v2_payment("2000", "256792222222")),
        &[],
    )
    .await;
    let v = settled(&app, &p, &format!("/v2_0/payment/{failed}")).await;
    assert_eq!(
        (v["status"].as_str(), v["reason"]["code"].as_str()),
        (Some("FAILED"), Some("INTERNAL_PROCESSING_ERROR"))
    );
    let pending = Uuid::new_v4();
    call(
        &app,
        &p,
        "POST",
        "/v2_0/payment",
        Some(pending),
        Some(&v2_payment("5000", "256792222222")),
        &[],
    )
    .await;
    // A writer pass after it was accepted has settled whatever was due: it stays pending.
    assert!(app.running.platform.wake().await);
    let v = call(
        &app,
        &p,
        "GET",
        &format!("/v2_0/payment/{pending}"),
        None,
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(v["status"], "PENDING");
    assert_eq!(app.balance(&p).await, "1000");
    let r = call(
        &app,
        &p,
        "POST",
        "/v2_0/payment",
        Some(Uuid::new_v4()),
        Some(&v2_payment("1", "meter-42")),
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("customerReference"), "{}", r.text());
    // The definition's own example, with the `+` of the international form.
    let plus = Uuid::new_v4();
    let r = call(
        &app,
        &p,
        "POST",
        "/v2_0/payment",
        Some(plus),
        Some(&v2_payment("1", "+46070911111")),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = settled(&app, &p, &format!("/v2_0/payment/{plus}")).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    // What is kept of the payment must be of its type, and short text.
    for (field, value) in [
        ("maxNumberOfRetries", serde_json::json!({"a": [1]})),
        ("maxNumberOfRetries", serde_json::json!(-1)),
        ("includeSenderCharges", serde_json::json!("yes")),
        ("productId", serde_json::json!([1, 2])),
        ("couponId", serde_json::json!("x".repeat(300))),
        ("externalTransactionId", serde_json::json!("bill\u{0}7")),
    ] {
        let mut body: serde_json::Value =
            serde_json::from_str(&v2_payment("1", "256792222222")).unwrap();
        body[field] = value;
        let r = call(
            &app,
            &p,
            "POST",
            "/v2_0/payment",
            Some(Uuid::new_v4()),
            Some(&body.to_string()),
            &[],
        )
        .await;
        assert_eq!(r.status, 400, "{field}: {}", r.text());
        assert!(r.text().contains(field), "{}", r.text());
    }
    // The status of a v2 payment is not a request-to-pay.
    assert_eq!(
        call(
            &app,
            &p,
            "GET",
            &format!("/v1_0/requesttopay/{ok}"),
            None,
            None,
            &[]
        )
        .await
        .status,
        404
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn an_invoice_not_paid_within_its_validity_expires() {
    let app =
        TestApp::spawn_with(|s| s.platform.settle_delay = std::time::Duration::from_secs(30)).await;
    let p = app.partner("clinic.com").await;
    let reference = Uuid::new_v4();
    let body = invoice_body("10", "256790000009")
        .replace(r#""validityDuration":"3600""#, r#""validityDuration":"1""#);
    let r = call(
        &app,
        &p,
        "POST",
        "/v2_0/invoice",
        Some(reference),
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = call(
        &app,
        &p,
        "GET",
        &format!("/v2_0/invoice/{reference}"),
        None,
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(v["status"], "PENDING");
    let v = settled(&app, &p, &format!("/v2_0/invoice/{reference}")).await;
    assert_eq!(
        (v["status"].as_str(), v["errorReason"]["code"].as_str()),
        (Some("FAILED"), Some("EXPIRED")),
        "{v}"
    );
    let wallet = app
        .running
        .platform
        .payments()
        .wallet(
            "MSISDN:256790000009",
            mkoba_ledger::Currency::parse("EUR").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        wallet.available(),
        100_000 * 100,
        "the reservation was released"
    );
    assert_eq!(app.balance(&p).await, "0");
    app.assert_ledger_balanced().await;
}

/// A validity that cannot be a date (an invoice's `validityDuration`, a pre-approval's
/// `validityTime`) is a 400, not a handler's panic, an expiry in 1970 or a mandate that
/// never expires; nothing is stored.
#[tokio::test]
async fn validities_beyond_a_hundred_years_are_refused() {
    let app = TestApp::spawn().await;
    let p = app.partner("127.0.0.1").await;
    let post = |path: &'static str, reference: Uuid, body: String| {
        let (app, p) = (&app, &p);
        async move { call(app, p, "POST", path, Some(reference), Some(&body), &[]).await }
    };
    let invoice = |validity: &str| {
        invoice_body("30", "256790000001").replace(
            r#""validityDuration":"3600""#,
            &format!(r#""validityDuration":"{validity}""#),
        )
    };
    for too_long in ["9223372036854775807", "9223372036854775", "315360000000"] {
        let reference = Uuid::new_v4();
        let r = post("/v2_0/invoice", reference, invoice(too_long)).await;
        assert_eq!(r.status, 400, "{too_long}: {}", r.text());
        assert_eq!(r.json()["code"], "BAD_REQUEST");
        let path = format!("/v2_0/invoice/{reference}");
        let r = call(&app, &p, "GET", &path, None, None, &[]).await;
        assert_eq!(r.status, 404, "{too_long} was stored");
        let body = format!(
            r#"{{"payer":{{"partyIdType":"MSISDN","partyId":"256790000003"}},"payerCurrency":"EUR","validityTime":{too_long}}}"#
        );
        let r = post("/v2_0/preapproval", Uuid::new_v4(), body).await;
        assert_eq!(r.status, 400, "{too_long}: {}", r.text());
    }
    // A hundred years is still taken.
    let r = post("/v2_0/invoice", Uuid::new_v4(), invoice("3153600000")).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// An invoice created without a callback URL and cancelled with one: its page offers the
/// re-send, which goes where the cancellation's callback went (the re-audit found no button,
/// and a re-send that did nothing).
#[tokio::test]
async fn a_callback_only_the_cancel_asked_for_can_be_sent_again() {
    let (app, sink, reference) = cancelled_invoice(&[]).await;
    sink.wait_for(1).await;
    let mut b = crate::portal_defects::sandbox_browser(&app).await;
    let page = format!("/portal/transactions/{reference}");
    let html = b.get(&page).await.text();
    assert!(html.contains("Re-send callback"), "{html}");
    let r = b.submit(&page, &format!("{page}/resend"), &[]).await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=resent").as_str())
    );
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].path, "/cancelled");
}
