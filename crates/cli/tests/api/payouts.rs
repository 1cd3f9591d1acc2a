//! Disbursement, remittance and request-to-withdraw over HTTP, checked against the ledger.

use uuid::Uuid;

use crate::helpers::{Partner, Resp, Sink, TestApp, rtp_body, wait_for};

/// A partner with tokens for every product.
struct Tokens {
    partner: Partner,
    disbursement: String,
    remittance: String,
}

/// A refund body of `amount` EUR of `original`, with `external_id` (a sandbox key, or any
/// other text).
fn refund_body(amount: &str, external_id: &str, original: Uuid) -> String {
    format!(
        r#"{{"amount":"{amount}","currency":"EUR","externalId":"{external_id}","payerMessage":"Sorry","payeeNote":"Refund","referenceIdToRefund":"{original}"}}"#
    )
}

async fn tokens(app: &TestApp, callback_host: &str) -> Tokens {
    let partner = app.partner(callback_host).await;
    let disbursement = app.token("disbursement", partner.user, &partner.key).await;
    let remittance = app.token("remittance", partner.user, &partner.key).await;
    Tokens {
        partner,
        disbursement,
        remittance,
    }
}

impl Tokens {
    fn of(&self, product: &str) -> &str {
        match product {
            "collection" => &self.partner.token,
            "disbursement" => &self.disbursement,
            _ => &self.remittance,
        }
    }
}

async fn post(
    app: &TestApp,
    t: &Tokens,
    product: &str,
    path: &str,
    reference: Uuid,
    body: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let bearer = format!("Bearer {}", t.of(product));
    let reference = reference.to_string();
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", app.key(product)),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
        ("X-Reference-Id", reference.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    app.send("POST", &format!("/{product}{path}"), &headers, Some(body))
        .await
}

async fn get(app: &TestApp, t: &Tokens, product: &str, path: &str) -> Resp {
    let bearer = format!("Bearer {}", t.of(product));
    app.send(
        "GET",
        &format!("/{product}{path}"),
        &[
            ("Ocp-Apim-Subscription-Key", app.key(product)),
            ("Authorization", &bearer),
            ("X-Target-Environment", "sandbox"),
        ],
        None,
    )
    .await
}

async fn final_status(
    app: &TestApp,
    t: &Tokens,
    product: &str,
    kind: &str,
    reference: Uuid,
) -> serde_json::Value {
    wait_for(|| async {
        let r = get(app, t, product, &format!("/v1_0/{kind}/{reference}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await
}

async fn balance(app: &TestApp, t: &Tokens, product: &str) -> String {
    let r = get(app, t, product, "/v1_0/account/balance").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["availableBalance"].as_str().unwrap().to_owned()
}

fn payee_body(amount: &str, msisdn: &str) -> String {
    format!(
        r#"{{"amount":"{amount}","currency":"EUR","externalId":"pay-{msisdn}","payee":{{"partyIdType":"MSISDN","partyId":"{msisdn}"}},"payerMessage":"Salary","payeeNote":"Salary"}}"#
    )
}

async fn wallet_minor(app: &TestApp, msisdn: &str) -> i64 {
    app.running
        .platform
        .payments()
        .wallet(
            &format!("MSISDN:{msisdn}"),
            mkoba_ledger::Currency::parse("EUR").unwrap(),
        )
        .await
        .unwrap()
        .map_or(0, |a| a.available())
}

#[tokio::test]
async fn a_disbursement_transfer_pays_out_of_the_partners_float() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    assert_eq!(
        balance(&app, &t, "disbursement").await,
        "1000000",
        "the float, before the first payout"
    );
    let reference = Uuid::new_v4();
    let r = post(
        &app,
        &t,
        "disbursement",
        "/v1_0/transfer",
        reference,
        &payee_body("250", "256781234567"),
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty());
    // An empty payee object: MTN's generic 500, as the sandbox answers it and MTNG-JAVA's
    // integration tests expect (reference §5); nothing is paid.
    let empty = r#"{"amount":"5","currency":"EUR","externalId":"e","payee":{}}"#;
    let r = post(
        &app,
        &t,
        "disbursement",
        "/v1_0/transfer",
        Uuid::new_v4(),
        empty,
        &[],
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"code":"INTERNAL_PROCESSING_ERROR","message":"An internal error occurred while processing."}"#
    );
    let v = final_status(&app, &t, "disbursement", "transfer", reference).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["payee"]["partyId"], "256781234567");
    assert!(v.get("payer").is_none());
    assert_eq!(v["financialTransactionId"].as_str().unwrap().len(), 10);
    assert_eq!(balance(&app, &t, "disbursement").await, "999750");
    assert_eq!(
        wallet_minor(&app, "256781234567").await,
        (100_000 + 250) * 100
    );
    // The status belongs to the transfer operation only.
    assert_eq!(
        get(
            &app,
            &t,
            "disbursement",
            &format!("/v1_0/deposit/{reference}")
        )
        .await
        .status,
        404
    );
    assert_eq!(
        get(
            &app,
            &t,
            "remittance",
            &format!("/v1_0/transfer/{reference}")
        )
        .await
        .status,
        404
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_transfer_beyond_the_float_fails_with_not_enough_funds() {
    let app = TestApp::spawn_with(|s| s.platform.partner_float = "100".to_owned()).await;
    let t = tokens(&app, "clinic.com").await;
    let big = Uuid::new_v4();
    post(
        &app,
        &t,
        "disbursement",
        "/v1_0/transfer",
        big,
        &payee_body("100.01", "256781111111"),
        &[],
    )
    .await;
    let v = final_status(&app, &t, "disbursement", "transfer", big).await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("FAILED"), Some("NOT_ENOUGH_FUNDS"))
    );
    let ok = Uuid::new_v4();
    post(
        &app,
        &t,
        "disbursement",
        "/v1_0/transfer",
        ok,
        &payee_body("100", "256781111111"),
        &[],
    )
    .await;
    assert_eq!(
        final_status(&app, &t, "disbursement", "transfer", ok).await["status"],
        "SUCCESSFUL"
    );
    assert_eq!(balance(&app, &t, "disbursement").await, "0");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn transfer_test_numbers_follow_the_transfer_column() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    for (product, msisdn, reason) in [
        ("disbursement", "46733123455", "NOT_ENOUGH_FUNDS"),
        ("disbursement", "46733123457", "PAYEE_NOT_FOUND"),
        ("disbursement", "46733123454", "PAYER_DELAYED"),
        ("remittance", "46733123454", "PAYEE_DELAYED"),
        ("remittance", "46733123456", "PAYER_LIMIT_REACHED"),
    ] {
        let reference = Uuid::new_v4();
        assert_eq!(
            post(
                &app,
                &t,
                product,
                "/v1_0/transfer",
                reference,
                &payee_body("1", msisdn),
                &[]
            )
            .await
            .status,
            202
        );
        let v = final_status(&app, &t, product, "transfer", reference).await;
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("FAILED"), Some(reason)),
            "{product} {msisdn}"
        );
    }
    assert_eq!(balance(&app, &t, "disbursement").await, "1000000");
}

#[tokio::test]
async fn a_remittance_transfer_moves_money_from_the_remittance_account() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    let reference = Uuid::new_v4();
    post(
        &app,
        &t,
        "remittance",
        "/v1_0/transfer",
        reference,
        &payee_body("75.5", "256782222222"),
        &[],
    )
    .await;
    assert_eq!(
        final_status(&app, &t, "remittance", "transfer", reference).await["status"],
        "SUCCESSFUL"
    );
    assert_eq!(balance(&app, &t, "remittance").await, "999924.5");
    assert_eq!(balance(&app, &t, "disbursement").await, "1000000");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn deposit_and_withdraw_versions_call_back_with_their_documented_methods() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(200).await;
    let t = tokens(&app, "127.0.0.1").await;
    let cases = [
        // No method in the definitions: POST, as MTN's sandbox sends them (the platform's
        // default).
        (
            "disbursement",
            "/v1_0/transfer",
            "POST",
            payee_body("5", "256783333333"),
        ),
        (
            "remittance",
            "/v1_0/transfer",
            "POST",
            payee_body("5", "256783333333"),
        ),
        (
            "disbursement",
            "/v1_0/deposit",
            "POST",
            payee_body("5", "256783333333"),
        ),
        (
            "disbursement",
            "/v2_0/deposit",
            "PUT",
            payee_body("5", "256783333333"),
        ),
        (
            "collection",
            "/v1_0/requesttowithdraw",
            "POST",
            rtp_body("5", "256783333334"),
        ),
        (
            "collection",
            "/v2_0/requesttowithdraw",
            "PUT",
            rtp_body("5", "256783333334"),
        ),
    ];
    for (product, path, method, body) in &cases {
        let reference = Uuid::new_v4();
        let url = sink.url(&format!("/cb/{reference}"));
        let r = post(
            &app,
            &t,
            product,
            path,
            reference,
            body,
            &[("X-Callback-Url", &url)],
        )
        .await;
        assert_eq!(r.status, 202, "{path}: {}", r.text());
        let got = sink
            .wait_for(1)
            .await
            .into_iter()
            .find(|c| c.path.ends_with(&reference.to_string()));
        let got = match got {
            Some(g) => g,
            None => {
                wait_for(|| async {
                    sink.all()
                        .into_iter()
                        .find(|c| c.path.ends_with(&reference.to_string()))
                })
                .await
            }
        };
        assert_eq!(&got.method, method, "{path}");
        assert!(
            got.body.contains(r#""status":"SUCCESSFUL""#),
            "{path}: {}",
            got.body
        );
        let kind = path.rsplit('/').next().unwrap();
        let status = get(&app, &t, product, &format!("/v1_0/{kind}/{reference}")).await;
        assert_eq!(status.text(), got.body, "{path}");
        // MTN's sandbox answers a deposit without its transaction id, even once it
        // succeeded (reference §5, §15.2); every other operation carries one.
        assert_eq!(
            got.body.contains(r#""financialTransactionId":""#),
            kind != "deposit",
            "{path}: {}",
            got.body
        );
    }
    // The withdrawals went into the collection account.
    assert_eq!(app.balance(&t.partner).await, "10");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn refunds_pay_back_a_collection_and_never_more_than_it_moved() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    let payer = "256784444444";
    let collection = Uuid::new_v4();
    app.request_to_pay(&t.partner, collection, &rtp_body("100", payer), &[])
        .await;
    assert_eq!(
        app.final_status(&t.partner, collection).await["status"],
        "SUCCESSFUL"
    );
    let after_payment = wallet_minor(&app, payer).await;
    let refund = |amount: &str| refund_body(amount, "refund", collection);
    let first = Uuid::new_v4();
    assert_eq!(
        post(
            &app,
            &t,
            "disbursement",
            "/v2_0/refund",
            first,
            &refund("60"),
            &[]
        )
        .await
        .status,
        202
    );
    let v = final_status(&app, &t, "disbursement", "refund", first).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["payee"]["partyId"], payer);
    let too_much = Uuid::new_v4();
    assert_eq!(
        post(
            &app,
            &t,
            "disbursement",
            "/v1_0/refund",
            too_much,
            &refund("50"),
            &[]
        )
        .await
        .status,
        202
    );
    let v = final_status(&app, &t, "disbursement", "refund", too_much).await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("FAILED"), Some("NOT_ALLOWED"))
    );
    let rest = Uuid::new_v4();
    post(
        &app,
        &t,
        "disbursement",
        "/v1_0/refund",
        rest,
        &refund("40"),
        &[],
    )
    .await;
    assert_eq!(
        final_status(&app, &t, "disbursement", "refund", rest).await["status"],
        "SUCCESSFUL"
    );
    assert_eq!(wallet_minor(&app, payer).await, after_payment + 10_000);
    assert_eq!(balance(&app, &t, "disbursement").await, "999900");

    // Unknown originals are refused at once; a failed collection cannot be refunded.
    let body = refund("1").replace(&collection.to_string(), &Uuid::new_v4().to_string());
    let r = post(
        &app,
        &t,
        "disbursement",
        "/v1_0/refund",
        Uuid::new_v4(),
        &body,
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("RESOURCE_NOT_FOUND"))
    );
    // The body and the currency are checked first, as on every call: a bad amount or
    // another currency is said so, whatever the original.
    for (bad, status, code) in [
        (
            body.replace(r#""amount":"1""#, r#""amount":"abc""#),
            400,
            "BAD_REQUEST",
        ),
        (body.replace("EUR", "USD"), 500, "INVALID_CURRENCY"),
    ] {
        let r = post(
            &app,
            &t,
            "disbursement",
            "/v1_0/refund",
            Uuid::new_v4(),
            &bad,
            &[],
        )
        .await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (status, Some(code)),
            "{bad}: {}",
            r.text()
        );
    }
    let r = post(
        &app,
        &t,
        "disbursement",
        "/v1_0/refund",
        Uuid::new_v4(),
        r#"{"amount":"1","currency":"EUR"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    let failed = Uuid::new_v4();
    app.request_to_pay(&t.partner, failed, &rtp_body("5", "46733123451"), &[])
        .await;
    app.final_status(&t.partner, failed).await;
    let reference = Uuid::new_v4();
    let body = refund("1").replace(&collection.to_string(), &failed.to_string());
    post(
        &app,
        &t,
        "disbursement",
        "/v1_0/refund",
        reference,
        &body,
        &[],
    )
    .await;
    let v = final_status(&app, &t, "disbursement", "refund", reference).await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("FAILED"), Some("NOT_ALLOWED"))
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn concurrent_refunds_cannot_exceed_the_original() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    let collection = Uuid::new_v4();
    app.request_to_pay(&t.partner, collection, &rtp_body("10", "256785555555"), &[])
        .await;
    app.final_status(&t.partner, collection).await;
    let body = format!(r#"{{"amount":"3","currency":"EUR","referenceIdToRefund":"{collection}"}}"#);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, base, token, key, body) = (
            app.http.clone(),
            app.base.clone(),
            t.disbursement.clone(),
            app.key("disbursement").to_owned(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let reference = Uuid::new_v4();
            let r = http
                .send(
                    "POST",
                    &format!("{base}/disbursement/v1_0/refund"),
                    &[
                        ("Ocp-Apim-Subscription-Key", key.as_str()),
                        ("Authorization", &format!("Bearer {token}")),
                        ("X-Target-Environment", "sandbox"),
                        ("X-Reference-Id", &reference.to_string()),
                    ],
                    Some(&body),
                )
                .await;
            assert_eq!(r.status, 202);
            reference
        }));
    }
    let mut successful = 0;
    for task in tasks {
        let reference = task.await.unwrap();
        if final_status(&app, &t, "disbursement", "refund", reference).await["status"]
            == "SUCCESSFUL"
        {
            successful += 1;
        }
    }
    assert_eq!(
        successful, 3,
        "3 × 3 EUR fit into 10 EUR, a fourth does not"
    );
    assert_eq!(balance(&app, &t, "disbursement").await, "999991");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_cash_transfer_keeps_its_payer_identity_and_answers_in_the_definitions_shape() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "127.0.0.1").await;
    let sink = Sink::start(200).await;
    let reference = Uuid::new_v4();
    let body = r#"{"amount":"20","currency":"EUR","payee":{"partyIdType":"MSISDN","partyId":"256786666666"},"externalId":"ct-1","orginatingCountry":"SE","originalAmount":"230","originalCurrency":"SEK","payerMessage":"Family","payeeNote":"From Lund","payerIdentificationType":"PASS","payerIdentificationNumber":"X123","payerFirstName":"Anna","payerSurName":"Berg","payerLanguageCode":"sv","payerMsisdn":"46701234567","payerGender":"F"}"#;
    let r = post(
        &app,
        &t,
        "remittance",
        "/v2_0/cashtransfer",
        reference,
        body,
        &[("X-Callback-Url", &sink.url("/ct"))],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let status = wait_for(|| async {
        let r = get(
            &app,
            &t,
            "remittance",
            &format!("/v2_0/cashtransfer/{reference}"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        (r.json()["status"] != "PENDING").then_some(r)
    })
    .await;
    let text = status.text();
    assert!(
        text.starts_with(r#"{"financialTransactionId":""#) && text.contains(r#""status":"SUCCESSFUL","amount":"20","currency":"EUR","payee":{"partyIdType":"MSISDN","partyId":"256786666666"},"externalId":"ct-1","orginatingCountry":"SE","originalAmount":"230","originalCurrency":"SEK","payerMessage":"Family","payeeNote":"From Lund","payerIdentificationType":"PASS""#),
        "{text}"
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].body, text);
    assert_eq!(balance(&app, &t, "remittance").await, "999980");
    // v1 status paths do not know cash transfers; bad identity types are refused.
    assert_eq!(
        get(
            &app,
            &t,
            "remittance",
            &format!("/v1_0/cashtransfer/{reference}")
        )
        .await
        .status,
        404
    );
    let bad = body.replace(r#""PASS""#, r#""CARD""#);
    let r = post(
        &app,
        &t,
        "remittance",
        "/v2_0/cashtransfer",
        Uuid::new_v4(),
        &bad,
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("payerIdentificationType"), "{}", r.text());
    // The payer's fields are kept and echoed: no control characters, no megabytes, text.
    for (field, value) in [
        ("payerFirstName", serde_json::json!("a\u{0}b")),
        ("payerEmail", serde_json::json!("a@b\nc")),
        ("orginatingCountry", serde_json::json!("x".repeat(300))),
        ("payerMsisdn", serde_json::json!([1])),
        // The word's spelling beside the definition's: which counted was a guess ("NO"
        // was dropped for "SE").
        ("originatingCountry", serde_json::json!("NO")),
        // Contacts as the definition types them, each refusal naming its field.
        ("payerMsisdn", serde_json::json!("1e3")),
        ("payerEmail", serde_json::json!("💸")),
        ("originalCurrency", serde_json::json!("sek")),
        ("originalAmount", serde_json::json!("abc")),
    ] {
        let mut bad: serde_json::Value = serde_json::from_str(body).unwrap();
        bad[field] = value;
        let bad = bad.to_string();
        let r = post(
            &app,
            &t,
            "remittance",
            "/v2_0/cashtransfer",
            Uuid::new_v4(),
            &bad,
            &[],
        )
        .await;
        assert_eq!(r.status, 400, "{field}: {bad}: {}", r.text());
        assert_eq!(r.json()["code"], "BAD_REQUEST");
        assert!(r.text().contains(field), "{}", r.text());
    }
}

#[tokio::test]
async fn refund_and_cash_transfer_scenario_keys_fail_with_their_reasons() {
    let app = TestApp::spawn().await;
    let t = tokens(&app, "clinic.com").await;
    let payer = "256785555555";
    let collection = Uuid::new_v4();
    app.request_to_pay(&t.partner, collection, &rtp_body("100", payer), &[])
        .await;
    assert_eq!(
        app.final_status(&t.partner, collection).await["status"],
        "SUCCESSFUL"
    );
    let float = balance(&app, &t, "disbursement").await;
    let refund = |external_id: &str| refund_body("10", external_id, collection);
    for (key, reason) in [
        ("3", "APPROVAL_REJECTED"),
        ("5", "ONGOING"),
        ("13", "COULD_NOT_PERFORM_TRANSACTION"),
    ] {
        let reference = Uuid::new_v4();
        let r = post(
            &app,
            &t,
            "disbursement",
            "/v1_0/refund",
            reference,
            &refund(key),
            &[],
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let v = final_status(&app, &t, "disbursement", "refund", reference).await;
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("FAILED"), Some(reason)),
            "key {key}: {v}"
        );
    }
    // A key decides whatever the original: a failed one (46733123451), which an ordinary
    // refund may not refund (NOT_ALLOWED), gets the key's reason all the same.
    let failed = Uuid::new_v4();
    app.request_to_pay(&t.partner, failed, &rtp_body("100", "46733123451"), &[])
        .await;
    assert_eq!(
        app.final_status(&t.partner, failed).await["status"],
        "FAILED"
    );
    for (key, reason) in [("3", "APPROVAL_REJECTED"), ("none", "NOT_ALLOWED")] {
        let reference = Uuid::new_v4();
        let body = refund_body("10", key, failed);
        let r = post(
            &app,
            &t,
            "disbursement",
            "/v1_0/refund",
            reference,
            &body,
            &[],
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let v = final_status(&app, &t, "disbursement", "refund", reference).await;
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("FAILED"), Some(reason)),
            "key {key}: {v}"
        );
    }
    // Failed refunds move nothing; a refund with any other externalId still pays back.
    assert_eq!(balance(&app, &t, "disbursement").await, float);
    let reference = Uuid::new_v4();
    post(
        &app,
        &t,
        "disbursement",
        "/v1_0/refund",
        reference,
        &refund("14"),
        &[],
    )
    .await;
    let v = final_status(&app, &t, "disbursement", "refund", reference).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");

    let cash = |external_id: &str| {
        format!(
            r#"{{"amount":"20","currency":"EUR","payee":{{"partyIdType":"MSISDN","partyId":"256786666666"}},"externalId":"{external_id}","orginatingCountry":"SE","originalAmount":"230","originalCurrency":"SEK","payerMessage":"Family","payeeNote":"From Lund","payerIdentificationType":"PASS","payerIdentificationNumber":"X123","payerFirstName":"Anna","payerSurName":"Berg","payerLanguageCode":"sv","payerMsisdn":"46701234567","payerGender":"F"}}"#
        )
    };
    let remittance_float = balance(&app, &t, "remittance").await;
    for (key, reason) in [
        ("5", "PAYEE_NOT_FOUND"),
        ("6", "PAYEE_NOT_ALLOWED_TO_RECEIVE"),
    ] {
        let reference = Uuid::new_v4();
        let r = post(
            &app,
            &t,
            "remittance",
            "/v2_0/cashtransfer",
            reference,
            &cash(key),
            &[],
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let v = wait_for(|| async {
            let r = get(
                &app,
                &t,
                "remittance",
                &format!("/v2_0/cashtransfer/{reference}"),
            )
            .await;
            (r.json()["status"] != "PENDING").then_some(r.json())
        })
        .await;
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("FAILED"), Some(reason)),
            "key {key}: {v}"
        );
    }
    assert_eq!(balance(&app, &t, "remittance").await, remittance_float);
    app.assert_ledger_balanced().await;
}

/// A refund whose failure is decided when it is accepted (more than remains, or a sandbox
/// key) takes nothing of what may be refunded while it waits to settle: the refund after
/// it that fits is paid (it was refused `NOT_ALLOWED` for the settle delay).
#[tokio::test]
async fn a_refund_bound_to_fail_takes_nothing_while_it_waits() {
    let app = TestApp::spawn_with(|s| {
        s.platform.settle_delay = std::time::Duration::from_millis(1500);
    })
    .await;
    let t = tokens(&app, "clinic.com").await;
    let collection = Uuid::new_v4();
    app.request_to_pay(
        &t.partner,
        collection,
        &rtp_body("100", "256785555556"),
        &[],
    )
    .await;
    assert_eq!(
        app.final_status(&t.partner, collection).await["status"],
        "SUCCESSFUL"
    );
    let refund = |amount: &str, external_id: &str| refund_body(amount, external_id, collection);
    let mut sent = Vec::new();
    for (amount, external_id) in [("60", "a"), ("60", "b"), ("40", "3"), ("40", "c")] {
        let reference = Uuid::new_v4();
        let r = post(
            &app,
            &t,
            "disbursement",
            "/v1_0/refund",
            reference,
            &refund(amount, external_id),
            &[],
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        sent.push(reference);
    }
    let mut outcomes = Vec::new();
    for reference in sent {
        let v = final_status(&app, &t, "disbursement", "refund", reference).await;
        outcomes.push((
            v["status"].as_str().unwrap().to_owned(),
            v["reason"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let outcome = |s: &str, r: &str| (s.to_owned(), r.to_owned());
    assert_eq!(
        outcomes,
        [
            outcome("SUCCESSFUL", ""),
            outcome("FAILED", "NOT_ALLOWED"),
            outcome("FAILED", "APPROVAL_REJECTED"),
            outcome("SUCCESSFUL", ""),
        ]
    );
    app.assert_ledger_balanced().await;
}

/// A payout has no payer to ask: the virtual phone's approve and reject do not decide one
/// (a "reject" failed a pending transfer `APPROVAL_REJECTED`, an "approve" settled it
/// before its time).
#[tokio::test]
async fn the_virtual_phone_does_not_decide_payouts() {
    let app = TestApp::spawn_with(|s| {
        s.platform.settle_delay = std::time::Duration::from_millis(1500);
    })
    .await;
    let t = tokens(&app, "clinic.com").await;
    let mut phone = crate::portal_defects::sandbox_browser(&app).await;
    let mut transfers = Vec::new();
    for decision in ["reject", "approve"] {
        let reference = Uuid::new_v4();
        let r = post(
            &app,
            &t,
            "disbursement",
            "/v1_0/transfer",
            reference,
            r#"{"amount":"10","currency":"EUR","externalId":"t","payee":{"partyIdType":"MSISDN","partyId":"256786666667"},"payerMessage":"Pay","payeeNote":"Pay"}"#,
            &[],
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let r = phone
            .submit(
                "/portal/phone",
                &format!("/portal/phone/{reference}/{decision}"),
                &[],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        let r = get(
            &app,
            &t,
            "disbursement",
            &format!("/v1_0/transfer/{reference}"),
        )
        .await;
        assert_eq!(r.json()["status"], "PENDING", "{decision}: {}", r.text());
        transfers.push(reference);
    }
    for reference in transfers {
        let v = final_status(&app, &t, "disbursement", "transfer", reference).await;
        assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    }
    app.assert_ledger_balanced().await;
}

/// MTN's products each have their API user, so a partner refunds a collection through its
/// disbursement API user: any API user of the same developer, in the same environment, may
/// refund it. Another developer's, or one of a production market, gets 404 as for an
/// unknown original.
#[tokio::test]
async fn a_refund_may_come_from_another_api_user_of_the_same_partner() {
    let app = TestApp::spawn().await;
    let collector = app.partner("clinic.com").await;
    let payer = "256784444555";
    let collection = Uuid::new_v4();
    app.request_to_pay(&collector, collection, &rtp_body("100", payer), &[])
        .await;
    assert_eq!(
        app.final_status(&collector, collection).await["status"],
        "SUCCESSFUL"
    );
    let after_payment = wallet_minor(&app, payer).await;
    let refund = refund_body("30", "r", collection);
    // The partner's disbursement API user, another than the collection's.
    let payouts = tokens(&app, "clinic.com").await;
    assert_ne!(payouts.partner.user, collector.user);
    let id = Uuid::new_v4();
    let r = post(
        &app,
        &payouts,
        "disbursement",
        "/v1_0/refund",
        id,
        &refund,
        &[],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = final_status(&app, &payouts, "disbursement", "refund", id).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["payee"]["partyId"], payer);
    assert_eq!(wallet_minor(&app, payer).await, after_payment + 3_000);

    // Another developer's API user, with its own disbursement subscription.
    let mut other = crate::portal::Browser::new(&app.base);
    other.sign_up("other@shop.example").await;
    let key = other.subscribe("disbursement").await;
    let (user, api_key) = other.create_api_user("clinic.com").await;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{user}:{api_key}"),
    );
    let r = app
        .send(
            "POST",
            "/disbursement/token/",
            &[
                ("Ocp-Apim-Subscription-Key", &key),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let r = app
        .send(
            "POST",
            "/disbursement/v1_0/refund",
            &[
                ("Ocp-Apim-Subscription-Key", &key),
                ("Authorization", &bearer),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &Uuid::new_v4().to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(&refund),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("RESOURCE_NOT_FOUND")),
        "{}",
        r.text()
    );
    assert_eq!(wallet_minor(&app, payer).await, after_payment + 3_000);
    app.assert_ledger_balanced().await;
}
