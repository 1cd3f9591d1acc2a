//! M-Pesa asynchronous mode, direct debits, beneficiary names and the python-pesa client.

use serde_json::{Value, json};

use crate::helpers::{Sink, TestApp, run_script, wait_for};
use crate::mpesa_support::{code, conversation_of, keys, tpcid};

#[tokio::test]
async fn result_urls_follow_the_portals_rules_unless_local_development_relaxes_them() {
    let app = TestApp::spawn().await;
    for (url, why) in [
        ("http://partner.example:12000/results", "https"),
        ("https://partner.example/results", "port"),
        ("https://partner.example:8443/results", "11000"),
        ("http://127.0.0.1:9000/results", "https"),
        // Malformed: each was stored before, and every delivery then failed.
        ("https://shop .example:12000/r", "spaces"),
        ("https://sh<op>.example:12000/r", "spaces"),
        ("https://shop.example:+12000/r", "not a number"),
        ("https://a..b:12000/", "not a host name"),
        // An address the dispatcher may not call: taken before, and every result failed.
        (
            "https://10.1.2.3:12000/results",
            "not allowed by the configuration",
        ),
        (
            "https://[fd00::1]:12000/results",
            "not allowed by the configuration",
        ),
        (
            "https://10.0.0.1.:12000/results",
            "not allowed by the configuration",
        ),
        // Other spellings of 10.0.0.1, which resolvers take.
        ("https://167772161:12000/results", "four decimal numbers"),
        ("https://0x0a000001:12000/results", "four decimal numbers"),
    ] {
        let r = app.mpesa_settings(json!({ "result_url": url })).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert!(r.text().contains(why), "{url}: {}", r.text());
    }
    // The scheme in capitals is https all the same.
    let r = app
        .mpesa_settings(json!({ "result_url": "HTTPS://partner.example:12000/results" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .mpesa_settings(json!({ "result_url": "https://partner.example:12000/results" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["mode"], "asynchronous");
    let r = app.mpesa_settings(json!({ "result_url": null })).await;
    assert_eq!(r.json()["mode"], "synchronous");

    let dev = TestApp::spawn_with(|s| s.mpesa.insecure_result_urls = true).await;
    let r = dev
        .mpesa_settings(json!({ "result_url": "http://127.0.0.1:9000/results" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = dev
        .mpesa_settings(json!({ "result_url": "http://partner.example:12000/results" }))
        .await;
    assert_eq!(r.status, 400, "http only on loopback: {}", r.text());
}

async fn asynchronous_app() -> (TestApp, Sink) {
    asynchronous_app_with(|_| {}).await
}

/// [`asynchronous_app`] with other settings too.
async fn asynchronous_app_with(settings: impl FnOnce(&mut mkoba::Settings)) -> (TestApp, Sink) {
    let app = TestApp::spawn_with(|s| {
        s.mpesa.insecure_result_urls = true;
        settings(s);
    })
    .await;
    let sink = Sink::start(200).await;
    let r = app
        .mpesa_settings(json!({ "result_url": sink.url("/mpesa/results") }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (app, sink)
}

#[tokio::test]
async fn in_asynchronous_mode_the_result_is_posted_to_the_result_url() {
    let (app, sink) = asynchronous_app().await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ConversationID",
            "output_ThirdPartyConversationID"
        ],
        "no transaction id in the first answer"
    );
    let conversation = conversation_of(&r);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/mpesa/results");
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["input_OriginalConversationID"], conversation);
    assert_eq!(v["input_ResultCode"], "INS-0");
    assert_eq!(v["input_ResultDesc"], "Request processed successfully");
    assert_eq!(
        v["input_ThirdPartyConversationID"],
        body["input_ThirdPartyConversationID"]
    );
    let tx = v["input_TransactionID"].as_str().unwrap();
    assert_eq!(tx.len(), 12);
    // The attempt is recorded like every callback.
    let t = wait_for(|| async {
        let t = m.transaction(&conversation).await;
        (!t["callbacks"].as_array().unwrap().is_empty()).then_some(t)
    })
    .await;
    assert_eq!(t["callbacks"][0]["status_code"], 200);
    assert_eq!(t["financial_transaction_id"], tx);
}

#[tokio::test]
async fn an_asynchronous_failure_carries_its_code_in_the_result() {
    let (app, sink) = asynchronous_app().await;
    let m = app.mpesa().await;
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("10", "000000000008"),
        )
        .await;
    assert_eq!(r.status, 201, "accepted first: {}", r.text());
    let got = sink.wait_for(1).await;
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["input_ResultCode"], "INS-2006");
    assert_eq!(v["input_ResultDesc"], "Insufficient balance");
}

/// A customer who never answers fails as `INS-9` once the synchronous timeout has passed,
/// and the result URL hears it: the payment stayed pending for ever before, with no result
/// and, for a C2B, the customer's money held.
#[tokio::test]
async fn an_asynchronous_payment_never_answered_ends_as_ins_9_at_the_timeout() {
    let (app, sink) =
        asynchronous_app_with(|s| s.mpesa.sync_timeout = std::time::Duration::from_millis(500))
            .await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000002");
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "accepted first: {}", r.text());
    let conversation = conversation_of(&r);
    let got = sink.wait_for(1).await;
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["input_OriginalConversationID"], conversation);
    assert_eq!(v["input_ResultCode"], "INS-9");
    assert_eq!(v["input_ResultDesc"], "Request timeout");
    assert_eq!(v["input_TransactionID"], "N/A");
    let t = m.transaction(&conversation).await;
    assert_eq!(t["status"], "FAILED", "{t}");
    app.assert_ledger_balanced().await;
}

/// A payment an older build left waiting for its customer (stored with no deadline and no
/// settle time: it waited for ever, its money held) gets the deadline from its creation
/// when the server starts, and ends `INS-9` with its result.
#[tokio::test]
async fn a_payment_an_older_build_left_waiting_expires_after_a_restart() {
    let (app, sink) =
        asynchronous_app_with(|s| s.mpesa.sync_timeout = std::time::Duration::from_secs(3600))
            .await;
    let m = app.mpesa().await;
    let conversation = m.accepted("10", "000000000002").await;
    let db = app.data_dir().join("data").join("mkoba.db");
    let app = app
        .restart(move |s| {
            // As the older build stored it.
            let c = rusqlite::Connection::open(&db).unwrap();
            let changed = c
                .execute(
                    "UPDATE payments SET expires_at_ms = NULL, settle_at_ms = NULL WHERE status = 'PENDING'",
                    [],
                )
                .unwrap();
            assert_eq!(changed, 1);
            s.mpesa.insecure_result_urls = true;
            s.mpesa.sync_timeout = std::time::Duration::from_millis(500);
        })
        .await;
    let got = sink.wait_for(1).await;
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["input_OriginalConversationID"], conversation);
    assert_eq!(v["input_ResultCode"], "INS-9", "{v}");
    app.assert_ledger_balanced().await;
}

/// A refused mandate's result has no token and no mandate id, as its synchronous answer has
/// none (they named a mandate that was never made: a payment under it was `INS-58`).
#[tokio::test]
async fn a_refused_mandates_result_names_no_mandate() {
    let (app, sink) = asynchronous_app().await;
    let m = app.mpesa().await;
    let mut body = mandate("5555");
    body["input_CustomerMSISDN"] = json!("000000000008");
    let r = m.call("POST", "directDebitCreation/", &body).await;
    assert_eq!(r.status, 201, "accepted first: {}", r.text());
    let got = sink.wait_for(1).await;
    let v: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(v["input_ResultCode"], "INS-2006", "{v}");
    assert_eq!(v["input_TransactionReference"], "5555");
    assert!(v.get("input_MsisdnToken").is_none(), "{v}");
    assert!(v.get("input_MandateID").is_none(), "{v}");
}

/// "Re-send result" on a mandate made and then cancelled sends the creation's result again
/// as it was sent (`INS-0`, its mandate id): it was built from the mandate's status now and
/// posted a failed creation, `INS-6`, to a listener that had recorded a mandate.
#[tokio::test]
async fn a_cancelled_mandates_result_is_re_sent_as_it_was_sent() {
    let (app, sink) = asynchronous_app().await;
    let m = app.mpesa().await;
    let r = m
        .call("POST", "directDebitCreation/", &mandate("6666"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let conversation = conversation_of(&r);
    let created = sink.wait_for(1).await[0].body.clone();
    let v: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(v["input_ResultCode"], "INS-0", "{v}");
    let r = m
        .call("PUT", "directDebitCancel/", &mandate_cancel("6666"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    sink.wait_for(2).await;
    let mut b = crate::portal_defects::sandbox_browser(&app).await;
    let page = format!("/portal/transactions/{conversation}");
    let r = b.submit(&page, &format!("{page}/resend"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let got = sink.wait_for(3).await;
    assert_eq!(got[2].body, created);
}

#[tokio::test]
async fn an_asynchronous_query_answers_at_once_and_posts_the_status() {
    let (app, sink) = asynchronous_app().await;
    let m = app.mpesa().await;
    m.call(
        "POST",
        "c2bPayment/singleStage/",
        &m.c2b("10", "000000000001"),
    )
    .await;
    let result: Value = serde_json::from_str(&sink.wait_for(1).await[0].body).unwrap();
    let tx = result["input_TransactionID"].as_str().unwrap();
    let r = m
        .query(
            "queryTransactionStatus/",
            &json!({
                "input_QueryReference": tx,
                "input_Country": "TZN",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("output_ResponseTransactionStatus").is_none());
    let got = sink.wait_for(2).await;
    let v: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(v["input_ResponseTransactionStatus"], "Completed");
    assert_eq!(v["input_OriginalTransactionID"], tx);
    assert_eq!(
        v["input_OriginalConversationID"],
        r.json()["output_ConversationID"]
    );
}

pub(crate) fn mandate(reference: &str) -> Value {
    json!({
        "input_AgreedTC": "1",
        "input_Country": "TZN",
        "input_CustomerMSISDN": "000000000001",
        "input_EndRangeOfDays": "22",
        "input_ExpiryDate": "20991126",
        "input_FirstPaymentDate": "20990324",
        "input_Frequency": "06",
        "input_ServiceProviderCode": "000000",
        "input_StartRangeOfDays": "01",
        "input_ThirdPartyConversationID": tpcid(),
        "input_ThirdPartyReference": reference,
    })
}

/// The cancellation of the mandate of `reference` (made with [`mandate`]).
fn mandate_cancel(reference: &str) -> Value {
    json!({
        "input_Country": "TZN",
        "input_CustomerMSISDN": "000000000001",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
        "input_ThirdPartyReference": reference,
    })
}

/// A mandate collected on demand: no frequency limit, no range of days.
fn on_demand(reference: &str) -> Value {
    let mut body = mandate(reference);
    body["input_Frequency"] = json!("08");
    let fields = body.as_object_mut().unwrap();
    fields.remove("input_StartRangeOfDays");
    fields.remove("input_EndRangeOfDays");
    body
}

/// A mandate that allows one payment, ever.
pub(crate) fn once_only(reference: &str) -> Value {
    let mut once = mandate(reference);
    once["input_Frequency"] = json!("01");
    let fields = once.as_object_mut().unwrap();
    for field in [
        "input_StartRangeOfDays",
        "input_EndRangeOfDays",
        "input_FirstPaymentDate",
    ] {
        fields.remove(field);
    }
    once
}

pub(crate) fn debit(reference: &str, amount: &str) -> Value {
    json!({
        "input_Amount": amount,
        "input_Country": "TZN",
        "input_Currency": "TZS",
        "input_CustomerMSISDN": "000000000001",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
        "input_ThirdPartyReference": reference,
    })
}

/// The sandbox and production are two systems, and each market its own: a client reference
/// used in one is free in the others (a payment or mandate made with it there, not `INS-10`
/// pointing at a transaction no query here finds), and a mandate collects only where it was
/// given.
#[tokio::test]
async fn client_references_and_mandates_belong_to_their_environment_and_market() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    let mut c2b = m.c2b("10", "255744444444");
    c2b["input_ThirdPartyConversationID"] = json!("order1001");
    let sandbox = m.call("POST", "c2bPayment/singleStage/", &c2b).await;
    assert_eq!(
        code(&sandbox),
        (201, "INS-0".to_owned()),
        "{}",
        sandbox.text()
    );
    let production = m
        .production_call("POST", "c2bPayment/singleStage/", &c2b)
        .await;
    assert_eq!(
        code(&production),
        (201, "INS-0".to_owned()),
        "{}",
        production.text()
    );
    assert_ne!(conversation_of(&sandbox), conversation_of(&production));
    // Again in each: a duplicate of its own payment there.
    let again = m
        .production_call("POST", "c2bPayment/singleStage/", &c2b)
        .await;
    assert_eq!(code(&again), (409, "INS-10".to_owned()), "{}", again.text());
    assert_eq!(conversation_of(&again), conversation_of(&production));
    let again = m.call("POST", "c2bPayment/singleStage/", &c2b).await;
    assert_eq!(code(&again), (409, "INS-10".to_owned()), "{}", again.text());
    assert_eq!(conversation_of(&again), conversation_of(&sandbox));
    // Another market of the sandbox: its own payment, then its own duplicate.
    m.market = "vodafoneGHA".to_owned();
    let mut ghana = c2b.clone();
    ghana["input_Country"] = json!("GHA");
    ghana["input_Currency"] = json!("GHS");
    ghana["input_CustomerMSISDN"] = json!("233244444444");
    let r = m.call("POST", "c2bPayment/singleStage/", &ghana).await;
    assert_eq!(code(&r), (201, "INS-0".to_owned()), "{}", r.text());
    let in_ghana = r.json()["output_TransactionID"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = m.call("POST", "c2bPayment/singleStage/", &ghana).await;
    assert_eq!(code(&again), (409, "INS-10".to_owned()), "{}", again.text());
    assert_eq!(conversation_of(&again), conversation_of(&r));
    // The client's reference finds each place's own payment.
    let query = json!({
        "input_QueryReference": "order1001",
        "input_Country": "GHA",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
    });
    let q = m.query("queryTransactionStatus/", &query).await;
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(q.json()["output_OriginalTransactionID"], in_ghana.as_str());
    m.market = "vodacomTZN".to_owned();
    let mut query = query;
    query["input_Country"] = json!("TZN");
    let q = m
        .production_call("GET", "queryTransactionStatus/", &query)
        .await;
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(
        q.json()["output_ConversationID"],
        conversation_of(&production).as_str()
    );

    // A sandbox mandate collects nothing in production or in another market.
    let r = m
        .call("POST", "directDebitCreation/", &on_demand("7777"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = m
        .production_call("POST", "directDebitPayment/", &debit("7777", "10"))
        .await;
    assert_eq!(code(&r), (400, "INS-58".to_owned()), "{}", r.text());
    m.market = "vodafoneGHA".to_owned();
    let mut ghana_debit = debit("7777", "10");
    ghana_debit["input_Country"] = json!("GHA");
    ghana_debit["input_Currency"] = json!("GHS");
    let r = m.call("POST", "directDebitPayment/", &ghana_debit).await;
    assert_eq!(code(&r), (400, "INS-58".to_owned()), "{}", r.text());
    m.market = "vodacomTZN".to_owned();
    // Production makes a mandate of its own with that reference, and collects under it.
    let r = m
        .production_call("POST", "directDebitCreation/", &on_demand("7777"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = m
        .production_call("POST", "directDebitPayment/", &debit("7777", "10"))
        .await;
    assert_eq!(code(&r), (201, "INS-0".to_owned()), "{}", r.text());
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_direct_debit_mandate_lets_the_business_collect_until_it_is_cancelled() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let r = m
        .call("POST", "directDebitCreation/", &on_demand("3333"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionReference",
            "output_MsisdnToken",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
            "output_MandateID"
        ]
    );
    let v = r.json();
    assert_eq!(v["output_TransactionReference"], "3333");
    let token = v["output_MsisdnToken"].as_str().unwrap().to_owned();
    let mandate_id = v["output_MandateID"].as_str().unwrap().to_owned();
    assert!(token.ends_with("==") && token.len() == 24, "{token}");
    assert!(mandate_id.bytes().all(|b| b.is_ascii_digit()));
    // Before the customer's wallet is first used it holds the opening balance (100,000):
    // more than that is not sufficient.
    let q = m
        .query(
            "queryDirectDebit/",
            &json!({
                "input_QueryBalanceAmount": "True",
                "input_BalanceAmount": "2000000",
                "input_Country": "TZN",
                "input_CustomerMSISDN": "000000000001",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
                "input_ThirdPartyReference": "3333",
                "input_Currency": "TZS",
            }),
        )
        .await;
    assert_eq!(
        q.json()["output_SufficientBalance"],
        "False",
        "{}",
        q.text()
    );
    assert_eq!(
        code(
            &m.call("POST", "directDebitCreation/", &on_demand("3333"))
                .await
        ),
        (409, "INS-10".to_owned())
    );

    // Collect by MSISDN, then by token with the mandate id.
    let r = m
        .call("POST", "directDebitPayment/", &debit("3333", "10"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["output_MsisdnToken"], token.as_str());
    // In the documentation's order (reference §5.8).
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionID",
            "output_MsisdnToken",
            "output_ConversationID",
            "output_ThirdPartyConversationID"
        ]
    );
    let mut by_token = debit("3333", "5");
    by_token
        .as_object_mut()
        .unwrap()
        .remove("input_CustomerMSISDN");
    by_token["input_MsisdnToken"] = json!(token);
    by_token["input_MandateID"] = json!(mandate_id);
    assert_eq!(
        m.call("POST", "directDebitPayment/", &by_token)
            .await
            .status,
        201
    );
    let mut wrong_id = debit("3333", "5");
    wrong_id["input_MandateID"] = json!("1");
    assert_eq!(
        code(&m.call("POST", "directDebitPayment/", &wrong_id).await),
        (400, "INS-52".to_owned())
    );
    let mut wrong_token = debit("3333", "5");
    wrong_token["input_MsisdnToken"] = json!("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(
        code(&m.call("POST", "directDebitPayment/", &wrong_token).await),
        (400, "INS-50".to_owned())
    );
    assert_eq!(
        code(
            &m.call("POST", "directDebitPayment/", &debit("9999", "5"))
                .await
        ),
        (400, "INS-58".to_owned())
    );

    // Query: active, and whether the customer could pay 200 now.
    let q = m
        .query(
            "queryDirectDebit/",
            &json!({
                "input_QueryBalanceAmount": "True",
                "input_BalanceAmount": "200",
                "input_Country": "TZN",
                "input_CustomerMSISDN": "000000000001",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
                "input_ThirdPartyReference": "3333",
                "input_Currency": "TZS",
            }),
        )
        .await;
    assert_eq!(q.status, 200, "{}", q.text());
    // In the documentation's order (reference §5.9).
    assert_eq!(
        keys(&q)[..6],
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_TransactionReference",
            "output_ConversationID",
            "output_ThirdPartyConversationID",
            "output_SufficientBalance"
        ]
    );
    let v = q.json();
    assert_eq!(v["output_MandateStatus"], "Active");
    assert_eq!(v["output_SufficientBalance"], "True");
    assert_eq!(v["output_MandateID"], mandate_id.as_str());
    assert_eq!(v["output_Frequency"], "08");
    assert_eq!(v["output_FirstPaymentDate"], "20990324");
    let q = m
        .query(
            "querydirectDebit/",
            &json!({
                "input_QueryBalanceAmount": "true",
                "input_Country": "TZN",
                "input_CustomerMSISDN": "000000000001",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
                "input_ThirdPartyReference": "3333",
                "input_Currency": "TZS",
            }),
        )
        .await;
    assert_eq!(code(&q), (401, "INS-55".to_owned()));

    // Cancel, then nothing more can be collected.
    let cancel = mandate_cancel("3333");
    let r = m.call("PUT", "directDebitCancel/", &cancel).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["output_TransactionReference"], "3333");
    assert_eq!(
        code(
            &m.call("POST", "directDebitPayment/", &debit("3333", "5"))
                .await
        ),
        (400, "INS-58".to_owned())
    );
    // Cancelled again: it no longer exists, as an unknown reference does not.
    let mut again = cancel.clone();
    again["input_ThirdPartyConversationID"] = json!(tpcid());
    let r = m.call("PUT", "directDebitCancel/", &again).await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    assert_eq!(r.json()["output_ResponseDesc"], "Mandate does not exist");
    let mut unknown = cancel.clone();
    unknown["input_ThirdPartyReference"] = json!("00000000000000000001");
    let r = m.call("PUT", "directDebitCancel/", &unknown).await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    assert_eq!(r.json()["output_ResponseDesc"], "Mandate does not exist");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn mandate_fields_are_checked_by_the_portals_rules() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let cases: [(&str, Value, &str); 7] = [
        ("input_AgreedTC", json!("0"), "INS-36"),
        ("input_AgreedTC", json!("2"), "INS-36"),
        ("input_Frequency", json!("09"), "INS-40"),
        ("input_FirstPaymentDate", json!("20990231"), "INS-39"),
        ("input_StartRangeOfDays", json!("32"), "INS-41"),
        ("input_ExpiryDate", json!("20980101"), "INS-43"),
        ("input_CustomerMSISDN", json!("1"), "INS-2051"),
    ];
    for (field, value, expected) in cases {
        let mut body = mandate(&format!("R{}", &tpcid()[..8]));
        body[field] = value.clone();
        let r = m
            .send("POST", "directDebitCreation/", &session, Some(&body))
            .await;
        assert_eq!(
            code(&r),
            (400, expected.to_owned()),
            "{field}={value}: {}",
            r.text()
        );
    }
    // A daily mandate takes no day range.
    let mut daily = mandate("R1");
    daily["input_Frequency"] = json!("02");
    let r = m
        .send("POST", "directDebitCreation/", &session, Some(&daily))
        .await;
    assert_eq!(code(&r), (400, "INS-41".to_owned()));
}

#[tokio::test]
async fn beneficiary_names_are_served_in_ghana() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    m.market = "vodafoneGHA".to_owned();
    let fields = json!({
        "input_CustomerMSISDN": "000000000001",
        "input_Country": "GHA",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(),
        "input_KYCQueryType": "Name",
    });
    let r = m.query("queryBeneficiaryName/", &fields).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["output_CustomerFirstName"], "Jiazhen");
    assert_eq!(v["output_CustomerLastName"], "Wuu");
    let mut bad = fields.clone();
    bad["input_KYCQueryType"] = json!("Address");
    assert_eq!(
        code(&m.query("queryBeneficiaryName/", &bad).await),
        (400, "INS-32".to_owned())
    );
    m.market = "vodacomTZN".to_owned();
    let mut tz = fields;
    tz["input_Country"] = json!("TZN");
    assert_eq!(
        code(&m.query("queryBeneficiaryName/", &tz).await),
        (400, "INS-997".to_owned())
    );
    // An API not enabled is refused as any other call: a conversation id of its own and
    // the caller's echoed.
    let r = m
        .call(
            "POST",
            "c2bPayment/multiStage/",
            &json!({"input_ThirdPartyConversationID": "ms1"}),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-997".to_owned()), "{}", r.text());
    assert_eq!(r.json()["output_ThirdPartyConversationID"], "ms1");
    assert!(
        r.json()["output_ConversationID"].is_string(),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_python_pesa_client_completes_session_c2b_b2c_reversal_and_status() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let run = run_script(
        "tests/compat/python-pesa/run.sh",
        &[
            ("MPESA_BASE_URL", &app.base),
            ("MPESA_API_KEY", &m.api_key),
            ("MPESA_PUBLIC_KEY", &m.public_key_b64),
        ],
    )
    .await;
    let stdout = run.stdout;
    assert!(
        run.success,
        "python-pesa flow failed:\n{stdout}\n{}",
        run.stderr
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
    app.assert_ledger_balanced().await;
}

/// Each operation's mandatory fields (missing → INS-20) and one bad value per field with its
/// documented code.
#[tokio::test]
async fn every_operation_answers_its_documented_field_codes() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    let session = m.session().await;
    let tx = m.paid("10", "000000000001").await;
    assert_eq!(
        m.call("POST", "directDebitCreation/", &mandate("M1"))
            .await
            .status,
        201
    );
    let b2b = json!({
        "input_Amount": "10", "input_Country": "TZN", "input_Currency": "TZS",
        "input_PrimaryPartyCode": "000000", "input_ReceiverPartyCode": "000001",
        "input_ThirdPartyConversationID": tpcid(), "input_TransactionReference": "T1",
        "input_PurchasedItemsDesc": "Shoes",
    });
    let query = json!({
        "input_QueryReference": tx, "input_Country": "TZN",
        "input_ServiceProviderCode": "000000", "input_ThirdPartyConversationID": tpcid(),
    });
    let dd_query = json!({
        "input_QueryBalanceAmount": "False", "input_Country": "TZN",
        "input_CustomerMSISDN": "000000000001", "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(), "input_ThirdPartyReference": "M1",
        "input_Currency": "TZS",
    });
    let dd_cancel = json!({
        "input_Country": "TZN", "input_CustomerMSISDN": "000000000001",
        "input_ServiceProviderCode": "000000", "input_ThirdPartyConversationID": tpcid(),
        "input_ThirdPartyReference": "M1",
    });
    let cases: Vec<(&str, &str, Value, &str, Value, &str)> = vec![
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_Amount",
            json!("1,5"),
            "INS-15",
        ),
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_TransactionReference",
            json!("a#b"),
            "INS-17",
        ),
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_ThirdPartyConversationID",
            json!("a-b"),
            "INS-28",
        ),
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_PurchasedItemsDesc",
            json!("a.b"),
            "INS-30",
        ),
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_Country",
            json!("LES"),
            "INS-998",
        ),
        (
            "POST",
            "b2bPayment/",
            b2b.clone(),
            "input_Currency",
            json!("LSL"),
            "INS-26",
        ),
        (
            "PUT",
            "reversal/",
            m.reversal(&tx, None),
            "input_ReversalAmount",
            json!("-1"),
            "INS-15",
        ),
        (
            "PUT",
            "reversal/",
            m.reversal(&tx, None),
            "input_ServiceProviderCode",
            json!("0"),
            "INS-13",
        ),
        (
            "PUT",
            "reversal/",
            m.reversal(&tx, None),
            "input_ThirdPartyConversationID",
            json!("a-b"),
            "INS-28",
        ),
        (
            "PUT",
            "reversal/",
            m.reversal(&tx, None),
            "input_Country",
            json!("MOZ"),
            "INS-998",
        ),
        (
            "GET",
            "queryTransactionStatus/",
            query.clone(),
            "input_QueryReference",
            json!("a-b"),
            "INS-21",
        ),
        (
            "GET",
            "queryTransactionStatus/",
            query.clone(),
            "input_ServiceProviderCode",
            json!("0"),
            "INS-13",
        ),
        (
            "GET",
            "queryTransactionStatus/",
            query.clone(),
            "input_ThirdPartyConversationID",
            json!("a-b"),
            "INS-28",
        ),
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_ThirdPartyReference",
            json!("a-b"),
            "INS-19",
        ),
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_MandateID",
            json!("x"),
            "INS-51",
        ),
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_CustomerMSISDN",
            json!("1"),
            "INS-2051",
        ),
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_ThirdPartyReference",
            json!("Nope"),
            "INS-58",
        ),
        // Another short code's mandate, as payment and cancel refuse it.
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_ServiceProviderCode",
            json!("999999"),
            "INS-13",
        ),
        // A balance amount that is no number, even when it is not asked about.
        (
            "GET",
            "queryDirectDebit/",
            dd_query.clone(),
            "input_BalanceAmount",
            json!("abc"),
            "INS-54",
        ),
        (
            "PUT",
            "directDebitCancel/",
            dd_cancel.clone(),
            "input_ThirdPartyReference",
            json!("a-b"),
            "INS-19",
        ),
        (
            "PUT",
            "directDebitCancel/",
            dd_cancel.clone(),
            "input_MandateID",
            json!("x"),
            "INS-51",
        ),
        (
            "POST",
            "directDebitPayment/",
            debit("M1", "5"),
            "input_ThirdPartyReference",
            json!("a-b"),
            "INS-19",
        ),
        (
            "POST",
            "directDebitPayment/",
            debit("M1", "5"),
            "input_MandateID",
            json!("x"),
            "INS-51",
        ),
        (
            "POST",
            "directDebitPayment/",
            debit("M1", "5"),
            "input_Amount",
            json!("0"),
            "INS-15",
        ),
    ];
    for (method, api, body, field, value, expected) in cases {
        let mut bad = body.clone();
        bad[field] = value.clone();
        let r = m.send(method, api, &session, Some(&bad)).await;
        assert_eq!(code(&r).1, expected, "{api} {field}={value}: {}", r.text());
        // Without any one mandatory field: INS-20 (the reversal amount, the mandate id and a
        // balance amount not asked about are optional; Query Direct Debit answers a missing
        // MSISDN and token with INS-57 below).
        let optional = [
            "input_ReversalAmount",
            "input_MandateID",
            "input_CustomerMSISDN",
            "input_BalanceAmount",
        ];
        if !optional.contains(&field) && expected != "INS-58" {
            let mut missing = body.clone();
            missing.as_object_mut().unwrap().remove(field);
            let r = m.send(method, api, &session, Some(&missing)).await;
            assert_eq!(
                code(&r),
                (400, "INS-20".to_owned()),
                "{api} without {field}: {}",
                r.text()
            );
        }
    }
    // Query Direct Debit's own statuses: neither MSISDN nor token, a bad token, a bad amount.
    let mut neither = dd_query.clone();
    neither
        .as_object_mut()
        .unwrap()
        .remove("input_CustomerMSISDN");
    assert_eq!(
        code(
            &m.send("GET", "queryDirectDebit/", &session, Some(&neither))
                .await
        ),
        (500, "INS-57".to_owned())
    );
    let mut token = neither.clone();
    token["input_MsisdnToken"] = json!("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(
        code(
            &m.send("GET", "queryDirectDebit/", &session, Some(&token))
                .await
        ),
        (401, "INS-56".to_owned())
    );
    let mut amount = dd_query.clone();
    amount["input_QueryBalanceAmount"] = json!("True");
    amount["input_BalanceAmount"] = json!("lots");
    assert_eq!(
        code(
            &m.send("GET", "queryDirectDebit/", &session, Some(&amount))
                .await
        ),
        (400, "INS-54".to_owned())
    );
    // Query Beneficiary Name's MSISDN.
    m.market = "vodafoneGHA".to_owned();
    let qbn = json!({
        "input_CustomerMSISDN": "233", "input_Country": "GHA", "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": tpcid(), "input_KycQueryType": "Name",
    });
    assert_eq!(
        code(&m.call("GET", "queryBeneficiaryName/", &qbn).await),
        (400, "INS-2051".to_owned())
    );
}

/// A once-only mandate (`input_Frequency` `01`) pays once even when the business sends its
/// payments at the same moment: the writer checks each against those accepted before it.
/// The customer is debited once.
#[tokio::test]
async fn a_once_only_mandate_pays_once_whatever_arrives_together() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let r = m
        .call("POST", "directDebitCreation/", &once_only("4444"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bodies: Vec<Value> = (0..40).map(|_| debit("4444", "1")).collect();
    let payments = bodies
        .iter()
        .map(|body| m.call("POST", "directDebitPayment/", body));
    let answers = futures_util::future::join_all(payments).await;
    let paid = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        paid,
        1,
        "{:?}",
        answers.iter().map(code).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| code(r) == (401, "INS-6".to_owned())),
        "the others are outside the schedule"
    );
    assert_debited_once(&app).await;
}

/// The debits' test wallet opened with 100,000.00 and paid 1.00 of it, once; the ledger
/// balances.
pub(crate) async fn assert_debited_once(app: &TestApp) {
    let tzs = mkoba_ledger::Currency::parse("TZS").unwrap();
    let wallet = app
        .running
        .platform
        .payments()
        .wallet("MSISDN:000000000001", tzs)
        .await
        .unwrap()
        .expect("used once");
    assert_eq!(wallet.posted_balance(), 10_000_000 - 100, "debited once");
    app.assert_ledger_balanced().await;
}

/// Without loopback callbacks (the production profile), a `localhost` result URL is
/// refused when it is saved, as `127.0.0.1` is: it was saved, then never sent to (the
/// security audit of 2026-12-07).
#[tokio::test]
async fn a_localhost_result_url_is_refused_where_loopback_is() {
    let app = TestApp::spawn_with(|s| {
        s.dispatcher.allow_loopback = false;
        s.mpesa.insecure_result_urls = true;
    })
    .await;
    for url in [
        "http://127.0.0.1:9/r",
        "http://localhost:9/r",
        "https://shop.localhost:12000/r",
    ] {
        let r = app.mpesa_settings(json!({ "result_url": url })).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert!(r.text().contains("not allowed"), "{url}: {}", r.text());
    }
}

/// A result URL is checked again on every call, not only when it was saved: one saved
/// under other rules (`http://` with `--mpesa-insecure-result-urls`, then a restart
/// without) keeps the APIs asynchronous, as the URL's presence says, but no result goes to
/// it (seed 004: results "will not be sent" outside the rules), and the M-Pesa page and the
/// settings say why.
#[tokio::test]
async fn a_result_url_saved_under_other_rules_is_not_sent_to() {
    // Accepted before the restart and settled after it: its result is not sent either.
    let (app, sink) = asynchronous_app_with(|s| {
        s.platform.settle_delay = std::time::Duration::from_millis(1500);
    })
    .await;
    let m = app.mpesa().await;
    let before = m.accepted("7", "000000000001").await;
    let url = sink.url("/dev/results");
    async fn save(dev: &mut crate::portal::Browser, url: &str) -> crate::helpers::Resp {
        let fields = [
            ("origins", "*"),
            ("session_lifetime_secs", "3600"),
            ("result_url", url),
        ];
        dev.submit("/portal/mpesa", "/portal/mpesa/settings", &fields)
            .await
    }
    let mut dev = crate::portal::Browser::new(&app.base);
    dev.sign_up("mpesa-dev@example.com").await;
    let r = save(&mut dev, &url).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = dev.get("/portal/mpesa").await.text();
    assert!(!page.contains("result-url-refused"), "{page}");
    // The page's rules say what local-development mode takes.
    assert!(
        page.contains("data-testid=\"insecure-result-urls\""),
        "{page}"
    );

    let app = app.restart(|s| s.mpesa.insecure_result_urls = false).await;
    let r = app.mpesa_settings(json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = r.json();
    assert_eq!(settings["mode"], "asynchronous", "{settings}");
    assert!(
        settings["result_url_refused"]
            .as_str()
            .is_some_and(|why| why.contains("https")),
        "{settings}"
    );
    // Saved again now, it is refused, saying how a server for local development takes it.
    let mut dev = crate::portal::Browser::new(&app.base);
    let r = dev
        .sign_in("mpesa-dev@example.com", "a long password")
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = save(&mut dev, &url).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("a server started with --mpesa-insecure-result-urls takes http://"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("insecure-result-urls\""), "{}", r.text());
    let m = app.mpesa().await;
    let r = m.pay_c2b("10", "000000000001").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.json().get("output_TransactionID").is_none(),
        "{}",
        r.text()
    );
    let made = conversation_of(&r);
    let settled = |id: String| {
        let m = &m;
        wait_for(move || {
            let id = id.clone();
            async move {
                let t = m.transaction(&id).await;
                (t["status"] != "PENDING").then_some(t)
            }
        })
    };
    let t = settled(made.clone()).await;
    assert_eq!(t["status"], "SUCCESSFUL", "{t}");
    // The payment keeps where its result would go (its page says why none went).
    assert_eq!(t["callback_url"], sink.url("/mpesa/results"), "{t}");
    assert!(t["callbacks"].as_array().unwrap().is_empty(), "{t}");
    let t = settled(before).await;
    assert_eq!(t["status"], "SUCCESSFUL", "{t}");
    assert!(t["callbacks"].as_array().unwrap().is_empty(), "{t}");
    let mut owner = crate::portal_defects::sandbox_browser(&app).await;
    let page = owner
        .get(&format!("/portal/transactions/{made}"))
        .await
        .text();
    assert!(
        page.contains("data-testid=\"result-url-refused\""),
        "{page}"
    );
    assert!(page.contains("Asynchronous"), "{page}");
    // Re-sending it is refused, saying why.
    let r = owner
        .submit(
            &format!("/portal/transactions/{made}"),
            &format!("/portal/transactions/{made}/resend"),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Not re-sent"), "{}", r.text());

    let mut dev = crate::portal::Browser::new(&app.base);
    dev.sign_in("mpesa-dev@example.com", "a long password")
        .await;
    let page = dev.get("/portal/mpesa").await.text();
    assert!(
        page.contains("data-testid=\"result-url-refused\""),
        "{page}"
    );
    assert!(page.contains("No result is sent to this URL"), "{page}");
    // Sent again as it is, it is refused under the rules of now; emptied, the APIs are
    // synchronous again.
    let r = save(&mut dev, &url).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Only secure HTTP"), "{}", r.text());
    let r = save(&mut dev, "").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = dev.get("/portal/mpesa").await.text();
    assert!(!page.contains("result-url-refused"), "{page}");
    // Long past both settlements, nothing went.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.all().is_empty(), "{:?}", sink.all());
}
