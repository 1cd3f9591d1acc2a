//! M-Pesa operations over HTTP: C2B, B2C, B2B, reversals and status queries, with their
//! documented errors, on the real ledger.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::mpesa_support::{code, conversation_of, keys, tpcid};

async fn balance_of(app: &TestApp, owner_wallet: &str) -> i64 {
    let tzs = mkoba_ledger::Currency::parse("TZS").unwrap();
    app.running
        .platform
        .payments()
        .wallet(owner_wallet, tzs)
        .await
        .unwrap()
        .map_or(0, |a| a.posted_balance())
}

#[tokio::test]
async fn c2b_moves_money_from_the_customer_to_the_short_code_and_answers_201() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionID",
            "output_ConversationID",
            "output_ThirdPartyConversationID"
        ]
    );
    let v = r.json();
    assert_eq!(v["output_ResponseCode"], "INS-0");
    assert_eq!(
        v["output_ThirdPartyConversationID"],
        body["input_ThirdPartyConversationID"]
    );
    let tx = v["output_TransactionID"].as_str().unwrap();
    assert_eq!(tx.len(), 12);
    assert!(tx.bytes().all(|b| b.is_ascii_alphanumeric()));
    let conversation = v["output_ConversationID"].as_str().unwrap();
    assert_eq!(conversation.len(), 32);
    // The ledger: 100000 TZS opening balance, less 10.
    assert_eq!(balance_of(&app, "MSISDN:000000000001").await, 9_999_000);
    let t = m.transaction(conversation).await;
    assert_eq!(t["kind"], "c2b");
    assert_eq!(t["status"], "SUCCESSFUL");
    assert_eq!(t["amount_minor"], 1000);
    assert_eq!(t["currency"], "TZS");
    assert_eq!(t["financial_transaction_id"], tx);
    let states: Vec<&str> = t["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["posted"]);
    app.assert_ledger_balanced().await;
}

/// A caller that waits for the outcome gets it from one commit: the payment is accepted
/// and settled in the same pass of the writer, not in two passes each ending in an fsync.
#[tokio::test]
async fn a_synchronous_c2b_is_accepted_and_settled_in_one_commit() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let commits = "mkoba_writer_commit_seconds_count";
    // A first payment, so that whatever the first call of a session writes is behind us.
    m.paid("10", "000000000001").await;
    let before = app.metric(commits).await;
    // Answered 201 with its transaction id: settled, and the money moved.
    m.paid("10", "000000000011").await;
    assert_eq!(app.metric(commits).await - before, 1.0);
    assert_eq!(balance_of(&app, "MSISDN:000000000011").await, 9_999_000);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_duplicate_third_party_conversation_id_answers_ins_10_and_moves_nothing() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let first = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(first.status, 201);
    let again = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(code(&again), (409, "INS-10".to_owned()));
    let v = again.json();
    assert_eq!(v["output_ResponseDesc"], "Duplicate Transaction");
    assert_eq!(v["output_TransactionID"], "N/A");
    assert_eq!(
        v["output_ConversationID"],
        first.json()["output_ConversationID"]
    );
    // The same id on another operation is a duplicate too.
    let mut b2c = m.b2c("5", "000000000001");
    b2c["input_ThirdPartyConversationID"] = body["input_ThirdPartyConversationID"].clone();
    assert_eq!(code(&m.call("POST", "b2cPayment/", &b2c).await).1, "INS-10");
    assert_eq!(balance_of(&app, "MSISDN:000000000001").await, 9_999_000);
}

#[tokio::test]
async fn concurrent_requests_with_one_conversation_id_make_one_payment() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let body = m.c2b("1", "255700000001");
    let calls = (0..20).map(|_| m.send("POST", "c2bPayment/singleStage/", &session, Some(&body)));
    let results = futures_util::future::join_all(calls).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let duplicates = results
        .iter()
        .filter(|r| code(r) == (409, "INS-10".to_owned()))
        .count();
    assert_eq!((created, duplicates), (1, 19));
    assert_eq!(balance_of(&app, "MSISDN:255700000001").await, 9_999_900);
}

#[tokio::test]
async fn each_invalid_c2b_field_gets_its_documented_code() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let cases: [(&str, Value, u16, &str); 13] = [
        ("input_Amount", json!(null), 400, "INS-20"),
        (
            "input_CustomerMSISDN",
            json!("25570000001"),
            400,
            "INS-2051",
        ),
        (
            "input_CustomerMSISDN",
            json!("+255700000001"),
            400,
            "INS-2051",
        ),
        ("input_ServiceProviderCode", json!("00"), 400, "INS-13"),
        (
            "input_TransactionReference",
            json!("two-stage"),
            400,
            "INS-17",
        ),
        (
            "input_ThirdPartyConversationID",
            json!("x".repeat(41)),
            400,
            "INS-28",
        ),
        (
            "input_PurchasedItemsDesc",
            json!("Handbag, Black shoes"),
            400,
            "INS-30",
        ),
        ("input_Amount", json!("ten"), 400, "INS-15"),
        ("input_Amount", json!("0"), 400, "INS-15"),
        ("input_Amount", json!("1.234"), 400, "INS-15"),
        ("input_Country", json!("GHA"), 400, "INS-998"),
        ("input_Currency", json!("GHS"), 400, "INS-26"),
        ("input_Currency", json!("TZSX"), 400, "INS-26"),
    ];
    for (field, value, status, expected) in cases {
        let mut body = m.c2b("10", "000000000001");
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let r = m
            .send("POST", "c2bPayment/singleStage/", &session, Some(&body))
            .await;
        assert_eq!(
            code(&r),
            (status, expected.to_owned()),
            "{field}={value}: {}",
            r.text()
        );
        // The client's conversation id is echoed when it sent one.
        if field != "input_ThirdPartyConversationID" {
            assert_eq!(
                r.json()["output_ThirdPartyConversationID"],
                body["input_ThirdPartyConversationID"]
            );
        }
    }
    assert_eq!(
        balance_of(&app, "MSISDN:000000000001").await,
        0,
        "nothing was paid"
    );
}

#[tokio::test]
async fn a_customer_without_the_money_gets_insufficient_balance() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    // The sandbox's insufficient-funds number, then a real shortfall.
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("10", "000000000008"),
        )
        .await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()), "{}", r.text());
    assert_eq!(r.json()["output_ResponseDesc"], "Insufficient balance");
    assert!(r.json().get("output_TransactionID").is_none());
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("100001", "255711111111"),
        )
        .await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()));
    assert_eq!(balance_of(&app, "MSISDN:255711111111").await, 10_000_000);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
/// The call ends at the timeout with `INS-9`, and the payment with it: it stayed pending for
/// ever before (see `mpesa_async` for the asynchronous side).
async fn a_customer_who_never_answers_times_out_with_ins_9_and_the_payment_expires() {
    let app = TestApp::spawn_with(|s| s.mpesa.sync_timeout = Duration::from_millis(300)).await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000002");
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(code(&r), (408, "INS-9".to_owned()), "{}", r.text());
    let conversation = conversation_of(&r);
    let q = m.status_of(&conversation).await;
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(q.json()["output_ResponseTransactionStatus"], "Expired");
    // The portal's transaction page says the word the query answers, beside its own.
    let mut b = crate::portal_defects::sandbox_browser(&app).await;
    let page = b
        .get(&format!("/portal/transactions/{conversation}"))
        .await
        .text();
    assert!(
        page.contains(&format!(
            "<title>Transaction {conversation} · Mkoba portal</title>"
        )),
        "{page}"
    );
    let said = crate::helpers::between(&page, "data-testid=\"mpesa-status\"", "</p>");
    assert!(
        said.contains("<code>output_ResponseTransactionStatus</code> <code>Expired</code>"),
        "{said}"
    );
}

/// The no-answer deadline is for a customer's prompt: a payment the scenario settles keeps
/// its settle delay, longer than the synchronous wait or not (every M-Pesa payment failed
/// `Expired` when the delay was the longer).
#[tokio::test]
async fn a_settle_delay_past_the_synchronous_timeout_still_settles() {
    let app = TestApp::spawn_with(|s| {
        s.mpesa.sync_timeout = Duration::from_millis(300);
        s.platform.settle_delay = Duration::from_secs(3);
    })
    .await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(code(&r), (408, "INS-9".to_owned()), "{}", r.text());
    let conversation = conversation_of(&r);
    let status = || async {
        let q = m.status_of(&conversation).await;
        q.json()["output_ResponseTransactionStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let last = crate::helpers::wait_for(|| async {
        let s = status().await;
        (s != "Pending").then_some(s)
    })
    .await;
    assert_eq!(last, "Completed");
}

/// Synchronous calls wait for their outcome; past the bound on waiting requests the next
/// one is answered the overload code at once and nothing of it is stored.
#[tokio::test]
async fn past_the_bound_on_waiting_requests_a_synchronous_call_is_refused_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.mpesa.sync_timeout = Duration::from_secs(2);
        s.platform.max_waiting = 1;
    })
    .await;
    let m = app.mpesa().await;
    let session = m.session().await;
    // A customer who never answers holds the one place for the wait's length.
    let waiting = m.c2b("10", "000000000002");
    let reference = waiting["input_ThirdPartyConversationID"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = m.send("POST", "c2bPayment/singleStage/", &session, Some(&waiting));
    let status = |reference: String| {
        let m = &m;
        async move { m.status_of(&reference).await }
    };
    let meanwhile = async {
        // Its payment is stored once its wait has begun.
        crate::helpers::wait_for(|| async {
            (status(reference.clone()).await.status == 200).then_some(())
        })
        .await;
        let refused = m.c2b("10", "255744444444");
        let r = m
            .send("POST", "c2bPayment/singleStage/", &session, Some(&refused))
            .await;
        assert_eq!(code(&r), (503, "INS-16".to_owned()), "{}", r.text());
        assert!(r.header("retry-after").is_some());
        let q = status(
            refused["input_ThirdPartyConversationID"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
        .await;
        assert_ne!(q.status, 200, "nothing was stored: {}", q.text());
    };
    let (held, ()) = tokio::join!(held, meanwhile);
    assert_eq!(code(&held).1, "INS-9", "{}", held.text());
    // The place is free again.
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "255744444444")),
        )
        .await;
    assert_eq!(code(&r), (201, "INS-0".to_owned()), "{}", r.text());
}

#[tokio::test]
async fn b2c_pays_a_customer_from_the_short_code() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let r = m
        .call("POST", "b2cPayment/", &m.b2c("250", "255722222222"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-0");
    assert_eq!(balance_of(&app, "MSISDN:255722222222").await, 10_025_000);
    // The alias some SDKs use, and the B2C description's own code.
    let r = m
        .call(
            "POST",
            "b2cPayment/singleStage/",
            &m.b2c("1", "255722222222"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut bad = m.b2c("1", "255722222222");
    bad["input_PaymentItemsDesc"] = json!("salary-payment");
    assert_eq!(
        code(&m.call("POST", "b2cPayment/", &bad).await),
        (400, "INS-31".to_owned())
    );
    let r = m
        .call("POST", "b2cPayment/", &m.b2c("1", "000000000006"))
        .await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()));
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn b2c_beyond_the_float_is_refused_for_insufficient_balance() {
    let app = TestApp::spawn_with(|s| s.platform.partner_float = "100".to_owned()).await;
    let m = app.mpesa().await;
    let r = m
        .call("POST", "b2cPayment/", &m.b2c("101", "255733333333"))
        .await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()));
    let r = m
        .call("POST", "b2cPayment/", &m.b2c("100", "255733333333"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn b2b_moves_money_between_short_codes() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let body = json!({
        "input_Amount": "10",
        "input_Country": "TZN",
        "input_Currency": "TZS",
        "input_PrimaryPartyCode": "000000",
        "input_ReceiverPartyCode": "000001",
        "input_ThirdPartyConversationID": tpcid(),
        "input_TransactionReference": "T12344C",
        "input_PurchasedItemsDesc": "Shoes",
    });
    let r = m.call("POST", "b2bPayment/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t = m
        .transaction(r.json()["output_ConversationID"].as_str().unwrap())
        .await;
    assert_eq!(t["kind"], "b2b");
    assert_eq!(t["party"]["id"], "000001");
    let mut bad = body.clone();
    bad["input_ReceiverPartyCode"] = json!("0-1");
    bad["input_ThirdPartyConversationID"] = json!(tpcid());
    assert_eq!(
        code(&m.call("POST", "b2bPayment/", &bad).await),
        (400, "INS-13".to_owned())
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_reversal_returns_the_money_and_never_more_than_remains() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let tx = m.paid("100", "255744444444").await;
    assert_eq!(balance_of(&app, "MSISDN:255744444444").await, 9_990_000);
    let r = m
        .call("PUT", "reversal/", &m.reversal(&tx, Some("25")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionID",
            "output_ConversationID",
            "output_ThirdPartyConversationID"
        ]
    );
    assert_ne!(r.json()["output_TransactionID"], tx);
    assert_eq!(balance_of(&app, "MSISDN:255744444444").await, 9_992_500);
    // 75 remain: 80 is too much, 75 is fine, then nothing is left.
    let r = m
        .call("PUT", "reversal/", &m.reversal(&tx, Some("80")))
        .await;
    assert_eq!(code(&r), (400, "INS-15".to_owned()));
    let r = m
        .call("POST", "reversal/", &m.reversal(&tx, Some("75")))
        .await;
    assert_eq!(r.status, 201, "reversal by POST too: {}", r.text());
    let r = m
        .call("PUT", "reversal/", &m.reversal(&tx, Some("1")))
        .await;
    assert_eq!(code(&r), (400, "INS-15".to_owned()));
    assert_eq!(balance_of(&app, "MSISDN:255744444444").await, 10_000_000);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_full_reversal_without_an_amount_and_the_reversal_errors() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let tx = m.paid("40", "255755555555").await;
    let r = m.call("PUT", "reversal/", &m.reversal(&tx, None)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(balance_of(&app, "MSISDN:255755555555").await, 10_000_000);
    // Unknown or malformed transaction ids, a reversal of a reversal, another short code.
    let reversal_tx = r.json()["output_TransactionID"]
        .as_str()
        .unwrap()
        .to_owned();
    for (id, expected) in [
        ("0000000000001", "INS-18"),
        ("bad-id", "INS-18"),
        (reversal_tx.as_str(), "INS-18"),
    ] {
        let r = m.call("PUT", "reversal/", &m.reversal(id, None)).await;
        assert_eq!(code(&r), (400, expected.to_owned()), "{id}: {}", r.text());
    }
    let other = m.paid("5", "255755555555").await;
    let mut body = m.reversal(&other, None);
    body["input_ServiceProviderCode"] = json!("999999");
    assert_eq!(
        code(&m.call("PUT", "reversal/", &body).await),
        (400, "INS-35".to_owned())
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn concurrent_partial_reversals_never_exceed_the_original() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let tx = m.paid("100", "255766666666").await;
    let session = m.session().await;
    let bodies: Vec<Value> = (0..14).map(|_| m.reversal(&tx, Some("10"))).collect();
    let calls = bodies
        .iter()
        .map(|b| m.send("PUT", "reversal/", &session, Some(b)));
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    let refused = results
        .iter()
        .filter(|r| code(r) == (400, "INS-15".to_owned()))
        .count();
    assert_eq!((ok, refused), (10, 4));
    assert_eq!(balance_of(&app, "MSISDN:255766666666").await, 10_000_000);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_status_of_a_transaction_by_any_of_its_three_ids() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let paid = m
        .call("POST", "c2bPayment/singleStage/", &body)
        .await
        .json();
    let tx = paid["output_TransactionID"].as_str().unwrap();
    let conversation = paid["output_ConversationID"].as_str().unwrap();
    let own = body["input_ThirdPartyConversationID"].as_str().unwrap();
    for reference in [tx, conversation, own] {
        let query_tpcid = tpcid();
        let fields = json!({
            "input_QueryReference": reference,
            "input_Country": "TZN",
            "input_ServiceProviderCode": "000000",
            "input_ThirdPartyConversationID": query_tpcid,
        });
        // Query string (official SDKs) and a JSON body on the GET (python-pesa, node-pesa).
        for r in [
            m.query("queryTransactionStatus/", &fields).await,
            m.call("GET", "queryTransactionStatus/", &fields).await,
        ] {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(
                keys(&r),
                [
                    "output_ResponseCode",
                    "output_ResponseDesc",
                    "output_ResponseTransactionStatus",
                    "output_ConversationID",
                    "output_ThirdPartyConversationID",
                    "output_OriginalTransactionID",
                    "output_Reversed"
                ]
            );
            let v = r.json();
            assert_eq!(v["output_ResponseTransactionStatus"], "Completed");
            assert_eq!(v["output_OriginalTransactionID"], tx);
            assert_eq!(v["output_ConversationID"], conversation);
            assert_eq!(v["output_ThirdPartyConversationID"], query_tpcid);
            assert_eq!(v["output_Reversed"], "False");
        }
    }
    m.call("PUT", "reversal/", &m.reversal(tx, Some("1"))).await;
    let fields = json!({
        "input_QueryReference": tx,
        "input_Country": "TZN",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
    });
    assert_eq!(
        m.query("queryTransactionStatus/", &fields).await.json()["output_Reversed"],
        "True"
    );
    let mut unknown = fields.clone();
    unknown["input_QueryReference"] = json!("000000000000000000001");
    let r = m.query("queryTransactionStatus/", &unknown).await;
    assert_eq!(code(&r), (400, "INS-23".to_owned()));
    let mut missing = fields;
    missing.as_object_mut().unwrap().remove("input_Country");
    assert_eq!(
        code(&m.query("queryTransactionStatus/", &missing).await),
        (400, "INS-20".to_owned())
    );
}

#[tokio::test]
async fn clients_quirks_are_tolerated() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    // Numbers for amounts, unknown extra fields, no trailing slash, odd path case.
    let mut body = m.c2b("10", "000000000001");
    body["input_Amount"] = json!(10.5);
    body["input_SomethingFromAnotherCall"] = json!("ignored");
    body["extra"] = json!({"nested": true});
    let r = m
        .send("POST", "C2BPAYMENT/singlestage", &session, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t = m
        .transaction(r.json()["output_ConversationID"].as_str().unwrap())
        .await;
    assert_eq!(t["amount_minor"], 1050);
    // A query string on a POST works too.
    let mut fields = m.c2b("1", "000000000001");
    let tp = fields["input_ThirdPartyConversationID"]
        .as_str()
        .unwrap()
        .to_owned();
    fields
        .as_object_mut()
        .unwrap()
        .remove("input_ThirdPartyConversationID");
    let r = m
        .send(
            "POST",
            &format!("c2bPayment/singleStage/?input_ThirdPartyConversationID={tp}"),
            &session,
            Some(&fields),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn the_production_environment_has_no_test_numbers() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    // A sandbox session is not one of the production gateway (two systems, as the real
    // ones are).
    let sandbox = format!("Bearer {}", m.bearer(&m.session().await));
    let r = app
        .send(
            "POST",
            "/openapi/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[("Authorization", &sandbox), ("Origin", "*")],
            Some(&m.c2b("10", "000000000008").to_string()),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    let session = m.production_session().await;
    let auth = format!("Bearer {}", m.bearer(&session));
    let r = app
        .send(
            "POST",
            "/openapi/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[("Authorization", &auth), ("Origin", "*")],
            Some(&m.c2b("10", "000000000008").to_string()),
        )
        .await;
    assert_eq!(
        r.status,
        201,
        "only the ledger decides outside the sandbox: {}",
        r.text()
    );
}

#[tokio::test]
async fn markets_carry_their_own_country_and_currency() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    for (market, country, currency) in [
        ("vodafoneGHA", "GHA", "GHS"),
        ("vodacomLES", "LES", "LSL"),
        ("vodacomDRC", "DRC", "USD"),
        ("vodacomMOZ", "MOZ", "MZN"),
    ] {
        m.market = market.to_owned();
        let mut body = m.c2b("10", "000000000001");
        body["input_Country"] = json!(country);
        body["input_Currency"] = json!(currency);
        let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
        assert_eq!(r.status, 201, "{market}: {}", r.text());
        let t = m
            .transaction(r.json()["output_ConversationID"].as_str().unwrap())
            .await;
        assert_eq!(t["currency"], currency);
    }
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn bench_mpesa_reports_both_bearer_modes() {
    let app = TestApp::spawn().await;
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "bench-mpesa",
            "--url",
            &app.base,
            "-n",
            "12",
            "-c",
            "3",
            "--rsa-secs",
            "0",
            "--json",
        ])
        .args(["--subscription-key", app.key("collection")])
        .output()
        .await
        .expect("mkoba bench-mpesa runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let modes = report["modes"].as_array().unwrap();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(names, ["fresh-bearer", "reused-bearer"]);
    for m in modes {
        assert_eq!(m["ok"], 12, "{m}");
        assert_eq!(m["errors"], 0, "{m}");
        // What each mode cost the server, from its `/metrics`.
        let cpu = m["server_cpu_s"].as_f64().expect("server CPU");
        let per = m["server_cpu_us_per_payment"]
            .as_f64()
            .expect("per payment");
        assert!(cpu >= 0.0 && (per - cpu * 1e6 / 12.0).abs() < 50.0, "{m}");
        // And what its writer did: each synchronous C2B is one command, accepted and
        // settled in one pass.
        let passes = m["writer"]["passes"].as_u64().expect("writer passes");
        assert!((1..=12).contains(&passes), "{m}");
        assert!(
            m["writer"]["commands_per_pass"].as_f64().unwrap() >= 1.0,
            "{m}"
        );
        let on_core = m["writer"]["on_core"].as_f64().expect("writer on a core");
        assert!(on_core > 0.0 && on_core <= 1.0, "{m}");
    }
    app.assert_ledger_balanced().await;
}

/// Amounts sent as JSON numbers keep the digits the client wrote: an exponent or a third
/// decimal is `INS-15`, as it is in a string, instead of being rounded into an amount. A
/// field given twice (in any case) is `INS-21`, whichever copy comes first, and the answer
/// echoes the client's reference unless it is the field given twice. Nothing moves.
#[tokio::test]
async fn number_amounts_keep_their_digits_and_a_field_given_twice_is_refused() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let auth = format!("Bearer {}", m.bearer(&m.session().await));
    let fields = |amount: &str| {
        format!(
            r#""input_Amount":{amount},"input_Country":"TZN","input_Currency":"TZS","input_CustomerMSISDN":"000000000001","input_ServiceProviderCode":"000000","input_ThirdPartyConversationID":"{}","input_TransactionReference":"T1","input_PurchasedItemsDesc":"Shoes""#,
            tpcid()
        )
    };
    let cases = [
        (format!("{{{}}}", fields("1e3")), "INS-15"),
        (format!("{{{}}}", fields("10.009999999999999999")), "INS-15"),
        (format!("{{{}}}", fields("0.1e1")), "INS-15"),
        (
            format!(r#"{{"INPUT_AMOUNT":"1000",{}}}"#, fields(r#""1""#)),
            "INS-21",
        ),
        (
            format!(r#"{{{},"input_Amount":"1000"}}"#, fields(r#""1""#)),
            "INS-21",
        ),
    ];
    for (body, expected) in &cases {
        let r = app
            .send(
                "POST",
                "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
                &[("Authorization", &auth), ("Origin", "*")],
                Some(body),
            )
            .await;
        assert_eq!(
            code(&r),
            (400, (*expected).to_owned()),
            "{body}: {}",
            r.text()
        );
        // The client's reference, given once, is echoed as in every other refusal.
        let sent: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(
            r.json()["output_ThirdPartyConversationID"],
            sent["input_ThirdPartyConversationID"],
            "{body}: {}",
            r.text()
        );
    }
    // A reference given twice is not echoed: its copies disagree on what was sent.
    let body = format!(
        r#"{{{},"input_ThirdPartyConversationID":"other"}}"#,
        fields(r#""1""#)
    );
    let r = app
        .send(
            "POST",
            "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[("Authorization", &auth), ("Origin", "*")],
            Some(&body),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-21".to_owned()), "{}", r.text());
    let first = body
        .split("input_ThirdPartyConversationID\":\"")
        .nth(1)
        .unwrap();
    let first = &first[..first.find('"').unwrap()];
    assert!(
        !r.text().contains("other") && !r.text().contains(first),
        "{}",
        r.text()
    );
    assert_eq!(
        balance_of(&app, "MSISDN:000000000001").await,
        0,
        "no wallet yet"
    );
    // A plain number is an amount, as before.
    let r = app
        .send(
            "POST",
            "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[("Authorization", &auth), ("Origin", "*")],
            Some(&format!("{{{}}}", fields("10.50"))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The test wallet opened with 100,000.00 and paid 10.50 of it.
    assert_eq!(
        balance_of(&app, "MSISDN:000000000001").await,
        10_000_000 - 1050
    );
}

/// The sandbox and production are two systems and each market its own: a sandbox payment is
/// not found, and cannot be reversed, through production, nor queried from another market.
/// An empty reversal amount is no amount (`INS-15`), not a request for all of it.
#[tokio::test]
async fn a_payment_is_found_only_in_its_own_environment_and_market() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    let tx = m.paid("100", "255755555555").await;
    let session = m.production_session().await;
    let auth = format!("Bearer {}", m.bearer(&session));
    let r = app
        .send(
            "PUT",
            "/openapi/ipg/v2/vodacomTZN/reversal/",
            &[("Authorization", &auth), ("Origin", "*")],
            Some(&m.reversal(&tx, Some("40")).to_string()),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-18".to_owned()), "{}", r.text());
    let query = json!({
        "input_QueryReference": tx,
        "input_Country": "TZN",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
    });
    let r = app
        .send(
            "GET",
            "/openapi/ipg/v2/vodacomTZN/queryTransactionStatus/",
            &[("Authorization", &auth), ("Origin", "*")],
            Some(&query.to_string()),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-23".to_owned()), "{}", r.text());
    let mut elsewhere = query.clone();
    elsewhere["input_Country"] = json!("GHA");
    m.market = "vodafoneGHA".to_owned();
    let r = m.query("queryTransactionStatus/", &elsewhere).await;
    assert_eq!(code(&r), (400, "INS-23".to_owned()), "{}", r.text());
    m.market = "vodacomTZN".to_owned();
    // In its own environment and market it is found, and an empty amount reverses nothing.
    let r = m.query("queryTransactionStatus/", &query).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = m.call("PUT", "reversal/", &m.reversal(&tx, Some(""))).await;
    assert_eq!(code(&r), (400, "INS-15".to_owned()), "{}", r.text());
    assert_eq!(
        balance_of(&app, "MSISDN:255755555555").await,
        10_000_000 - 10_000
    );
    app.assert_ledger_balanced().await;
}
