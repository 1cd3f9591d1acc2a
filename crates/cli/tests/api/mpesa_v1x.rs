//! The Mozambique v1x gateway (seed 004, reference §11): the encrypted API key as the bearer
//! of every call, one port per API, `input_ThirdPartyReference`, the generic code table,
//! and the same ledger as the v2 gateway.

use serde_json::{Value, json};

use crate::helpers::{Sink, TestApp, run_script, wait_for};
use crate::mpesa_support::{code, conversation_of, keys, tpcid, tpr};

const MONEY_KEYS: [&str; 5] = [
    "output_ResponseCode",
    "output_ResponseDesc",
    "output_TransactionID",
    "output_ConversationID",
    "output_ThirdPartyReference",
];

#[tokio::test]
async fn every_api_answers_on_its_own_port_and_on_the_main_listener() {
    let app = TestApp::spawn_v1x().await;
    let v = app.v1x().await;
    let key = v.m.api_key.clone();

    // C2B on its own port, in the documented shape.
    let body = v.c2b("10", "258843330333");
    let r = v
        .send_to(
            &app.v1x_port("c2b"),
            "POST",
            "c2bPayment/singleStage/",
            &key,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(keys(&r), MONEY_KEYS);
    let c2b = r.json();
    assert_eq!(c2b["output_ResponseCode"], "INS-0");
    assert_eq!(c2b["output_ResponseDesc"], "Request processed successfully");
    assert_eq!(
        c2b["output_ThirdPartyReference"],
        body["input_ThirdPartyReference"]
    );
    let tx = c2b["output_TransactionID"].as_str().unwrap().to_owned();
    assert_eq!(tx.len(), 12);

    // Each port serves its own API only, as on the real gateway.
    let r = v
        .send_to(
            &app.v1x_port("b2c"),
            "POST",
            "c2bPayment/singleStage/",
            &key,
            Some(&v.c2b("10", "258843330333")),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"output_error": "Resource not found"}));

    // B2C, B2B (both spellings of the debited party), reversal, status and name, each on
    // its port.
    let b2c = json!({
        "input_TransactionReference": "T12344C", "input_CustomerMSISDN": "258843330333",
        "input_Amount": "5", "input_ThirdPartyReference": tpr(),
        "input_ServiceProviderCode": "171717",
    });
    let r = v
        .send_to(
            &app.v1x_port("b2c"),
            "POST",
            "b2cPayment/",
            &key,
            Some(&b2c),
        )
        .await;
    assert_eq!(
        (r.status, keys(&r)),
        (201, MONEY_KEYS.map(str::to_owned).to_vec())
    );
    for debit in ["input_PrimaryPartyCode", "input_ServiceProviderCode"] {
        let mut b2b = json!({
            "input_TransactionReference": "T12344C", "input_Amount": "7",
            "input_ThirdPartyReference": tpr(), "input_ReceiverPartyCode": "979797",
        });
        b2b[debit] = json!("171717");
        let r = v
            .send_to(
                &app.v1x_port("b2b"),
                "POST",
                "b2bPayment/",
                &key,
                Some(&b2b),
            )
            .await;
        assert_eq!(r.status, 201, "{debit}: {}", r.text());
    }
    let r = v
        .send_to(
            &app.v1x_port("reversal"),
            "PUT",
            "reversal/",
            &key,
            Some(&v.reversal(&tx, Some("4"))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(keys(&r), MONEY_KEYS);

    let r = v
        .send_to(
            &app.v1x_port("status"),
            "GET",
            &format!(
                "queryTransactionStatus/?input_ThirdPartyReference=Q1&input_QueryReference={tx}&input_ServiceProviderCode=171717"
            ),
            &key,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ResponseTransactionStatus",
            "output_ConversationID",
            "output_ThirdPartyReference"
        ]
    );
    assert_eq!(r.json()["output_ResponseTransactionStatus"], "Completed");
    assert_eq!(
        r.json()["output_ConversationID"],
        c2b["output_ConversationID"]
    );

    let r = v
        .send_to(
            &app.v1x_port("name"),
            "GET",
            "queryCustomerName/",
            &key,
            Some(&json!({
                "input_CustomerMSISDN": "258843330333",
                "input_ThirdPartyReference": "N1",
                "input_ServiceProviderCode": "171717",
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let name = r.json();
    assert_eq!(name["output_CustomerMSISDN"], "258843330333");
    for field in ["output_FirstName", "output_SecondName"] {
        let n = name[field].as_str().unwrap();
        assert!(n.len() >= 2 && n.contains('*'), "{field}: {n}");
    }

    // The same APIs on the main listener.
    let paid = v.paid("3", "258853330333").await;
    assert_eq!(paid["output_ResponseCode"], "INS-0");

    // The money is where the ledger says: the C2B's payer paid, the short code holds it.
    let t =
        v.m.transaction(c2b["output_ConversationID"].as_str().unwrap())
            .await;
    assert_eq!(t["status"], "SUCCESSFUL");
    assert_eq!(t["financial_transaction_id"], tx.as_str());
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn documented_failures_answer_the_generic_tables_codes() {
    let app = TestApp::spawn_with(|s| {
        s.mpesa.sync_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let v = app.v1x().await;

    // The sandbox's scenario numbers, in Mozambique's form.
    let r = v
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &v.c2b("10", "258840000008"),
        )
        .await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()), "{}", r.text());
    assert_eq!(r.json()["output_ResponseDesc"], "Insufficient balance");
    let r = v
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &v.c2b("10", "258840000002"),
        )
        .await;
    assert_eq!(code(&r), (408, "INS-9".to_owned()), "{}", r.text());
    let mut b2c = v.c2b("10", "258850000006");
    b2c.as_object_mut()
        .unwrap()
        .remove("input_TransactionReference");
    b2c["input_TransactionReference"] = json!("P1");
    let r = v.call("POST", "b2cPayment/", &b2c).await;
    assert_eq!(code(&r), (422, "INS-2006".to_owned()), "{}", r.text());

    // Each field's rule, with the client's reference echoed.
    let cases: [(&str, Value, u16, &str); 7] = [
        ("input_CustomerMSISDN", json!("841234567"), 400, "INS-2051"),
        (
            "input_CustomerMSISDN",
            json!("255712345678"),
            400,
            "INS-2051",
        ),
        ("input_ServiceProviderCode", json!("17-17"), 400, "INS-13"),
        ("input_Amount", json!("-5"), 400, "INS-15"),
        ("input_Amount", json!("1.234"), 400, "INS-15"),
        (
            "input_TransactionReference",
            json!("two-stage"),
            400,
            "INS-17",
        ),
        ("input_ThirdPartyReference", json!("a-b"), 400, "INS-19"),
    ];
    for (field, value, status, ins) in cases {
        let mut body = v.c2b("10", "258843330333");
        body[field] = value.clone();
        let r = v.call("POST", "c2bPayment/singleStage/", &body).await;
        assert_eq!(
            code(&r),
            (status, ins.to_owned()),
            "{field}={value}: {}",
            r.text()
        );
        assert_eq!(
            r.json()["output_ThirdPartyReference"],
            body["input_ThirdPartyReference"]
        );
        assert_eq!(
            r.json()["output_ConversationID"].as_str().unwrap().len(),
            32
        );
    }
    let r = v
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &json!({"input_ThirdPartyReference": "x1"}),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-20".to_owned()));
    assert_eq!(
        r.json()["output_ResponseDesc"],
        "Not All Parameters Provided. Please try again."
    );
    assert_eq!(r.json()["output_ThirdPartyReference"], "x1");
    let auth = format!("Bearer {}", v.m.bearer(&v.m.api_key));
    let r = app
        .send(
            "POST",
            "/ipg/v1x/c2bPayment/singleStage/",
            &[("Authorization", &auth)],
            Some("[1,2]"),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-21".to_owned()));

    // A reused reference: 409 and nothing moves.
    let body = v.c2b("10", "258843330333");
    assert_eq!(
        v.call("POST", "c2bPayment/singleStage/", &body)
            .await
            .status,
        201
    );
    let r = v.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(code(&r), (409, "INS-10".to_owned()));
    assert_eq!(r.json()["output_TransactionID"], "N/A");
    assert_eq!(keys(&r), MONEY_KEYS);

    // Reversals: unknown, too much, bad initiator fields, someone else's short code.
    let paid = v.paid("10", "258843330333").await;
    let tx = paid["output_TransactionID"].as_str().unwrap();
    let r = v
        .call("PUT", "reversal/", &v.reversal("ZZZ999", None))
        .await;
    assert_eq!(code(&r), (400, "INS-18".to_owned()));
    // Another market's (Tanzania's, on v2) is not found here either, as its status is not
    // (it was `INS-998`, which told that the id exists).
    let tanzania =
        v.m.call(
            "POST",
            "c2bPayment/singleStage/",
            &v.m.c2b("10", "000000000001"),
        )
        .await;
    assert_eq!(tanzania.status, 201, "{}", tanzania.text());
    let other = tanzania.json()["output_TransactionID"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = v.call("PUT", "reversal/", &v.reversal(&other, None)).await;
    assert_eq!(code(&r), (400, "INS-18".to_owned()), "{}", r.text());
    let r = v
        .call("PUT", "reversal/", &v.reversal(tx, Some("11")))
        .await;
    assert_eq!(code(&r), (400, "INS-15".to_owned()));
    let mut bad = v.reversal(tx, None);
    bad["input_InitiatorIdentifier"] = json!("two words");
    let r = v.call("PUT", "reversal/", &bad).await;
    assert_eq!(code(&r), (400, "INS-24".to_owned()));
    let mut bad = v.reversal(tx, None);
    bad["input_SecurityCredential"] = json!("é");
    let r = v.call("PUT", "reversal/", &bad).await;
    assert_eq!(code(&r), (400, "INS-25".to_owned()));
    // An array or an object is no credential, though its JSON text is printable.
    for (field, value, ins) in [
        ("input_SecurityCredential", json!([]), "INS-25"),
        ("input_SecurityCredential", json!(["x"]), "INS-25"),
        ("input_InitiatorIdentifier", json!({}), "INS-24"),
    ] {
        let mut bad = v.reversal(tx, None);
        bad[field] = value;
        let r = v.call("PUT", "reversal/", &bad).await;
        assert_eq!(code(&r), (400, ins.to_owned()), "{field}: {}", r.text());
    }
    let mut other = v.reversal(tx, None);
    other["input_ServiceProviderCode"] = json!("171718");
    let r = v.call("PUT", "reversal/", &other).await;
    assert_eq!(code(&r), (400, "INS-26".to_owned()));
    assert_eq!(r.json()["output_ResponseDesc"], "Not authorized");
    let r = v.call("GET", "reversal/", &v.reversal(tx, None)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json(), json!({"output_error": "Method not allowed"}));
    assert_eq!(r.header("allow"), Some("PUT, POST, OPTIONS"));
    // The gateways' roots answer in M-Pesa's format too, and so do paths of an environment
    // there is none of.
    for root in [
        "/ipg/v1x/",
        "/sandbox/ipg/v2/",
        "/openapi/ipg/v2/",
        "/prod/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
        "/SANDBOX/ipg/v2/vodacomTZN/getSession/",
    ] {
        let r = app.send("GET", root, &[], None).await;
        assert_eq!(r.status, 404, "{root}");
        assert_eq!(
            r.json(),
            json!({"output_error": "Resource not found"}),
            "{root}"
        );
    }

    // An unknown transaction's status.
    let r = v
        .query(
            "queryTransactionStatus/",
            &[
                ("input_ThirdPartyReference", "Q9"),
                ("input_QueryReference", "NOSUCHTHING1"),
                ("input_ServiceProviderCode", "171717"),
            ],
        )
        .await;
    assert_eq!(code(&r), (400, "INS-23".to_owned()));
    assert_eq!(
        r.json()["output_ResponseDesc"],
        "Unknown Status. Contact M-Pesa Support"
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_api_key_is_the_bearer_of_every_call_and_a_renewed_key_stops_at_once() {
    let app = TestApp::spawn().await;
    let v = app.v1x().await;
    let body = v.c2b("10", "258843330333");
    // Refused, with the reference echoed (PaymentsDS's Python client reads it from every
    // answer).
    let refused = |r: &crate::helpers::Resp, body: &Value| {
        let v = r.json();
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(v["output_ResponseCode"], "INS-2");
        assert_eq!(v["output_ResponseDesc"], "Invalid API Key");
        assert_eq!(
            v["output_ThirdPartyReference"],
            body["input_ThirdPartyReference"]
        );
        assert_eq!(v["output_ConversationID"].as_str().unwrap().len(), 32);
    };

    // A wrong key, a v2 session id, garbage and no bearer at all: the same 401.
    let session = v.m.session().await;
    for secret in ["wrongkeywrongkeywrongkeywrongkey", session.as_str()] {
        let r = v
            .send_to(
                &app.base,
                "POST",
                "c2bPayment/singleStage/",
                secret,
                Some(&body),
            )
            .await;
        refused(&r, &body);
    }
    for auth in [None, Some("Bearer AAAA"), Some("Bearer None")] {
        let mut headers = vec![("Origin", "*")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = app
            .send(
                "POST",
                "/ipg/v1x/c2bPayment/singleStage/",
                &headers,
                Some(&body.to_string()),
            )
            .await;
        refused(&r, &body);
    }

    // Origin: the application's rule, as on v2.
    let r = app
        .mpesa_settings(json!({"allowed_origins": ["https://shop.example"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = v.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json(), json!({"output_error": "Origin not allowed"}));
    let mut shop = app.v1x().await;
    shop.m.origin = "https://shop.example".to_owned();
    assert_eq!(
        shop.call("POST", "c2bPayment/singleStage/", &body)
            .await
            .status,
        201
    );
    // A deciding header given twice counts as absent, even with two good copies: the
    // allowed origin twice is 403, the valid key twice is the invalid key's answer.
    let auth = format!("Bearer {}", shop.m.bearer(&shop.m.api_key));
    let twice = |name: &'static str, value: String| {
        let mut headers = vec![
            ("Authorization", auth.clone()),
            ("Origin", "https://shop.example".to_owned()),
            ("Content-Type", "application/json".to_owned()),
        ];
        headers.push((name, value));
        headers
    };
    for (name, value) in [
        ("Origin", "https://shop.example".to_owned()),
        ("Authorization", auth.clone()),
    ] {
        let again = shop.c2b("10", "258843330333");
        let headers = twice(name, value);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .send(
                "POST",
                "/ipg/v1x/c2bPayment/singleStage/",
                &headers,
                Some(&again.to_string()),
            )
            .await;
        if name == "Origin" {
            assert_eq!(r.status, 403, "{}", r.text());
            assert_eq!(r.json(), json!({"output_error": "Origin not allowed"}));
        } else {
            refused(&r, &again);
        }
    }

    // Renewing the key: the old one is refused at once, the new one works.
    let r = app
        .send(
            "POST",
            "/_mkoba/mpesa/apikey",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let new_key = r.json()["api_key"].as_str().unwrap().to_owned();
    let again = shop.c2b("10", "258843330333");
    let r = shop.call("POST", "c2bPayment/singleStage/", &again).await;
    refused(&r, &again);
    let r = shop
        .send_to(
            &app.base,
            "POST",
            "c2bPayment/singleStage/",
            &new_key,
            Some(&shop.c2b("10", "258843330333")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_payment_of_one_gateway_is_queried_and_reversed_through_the_other() {
    let app = TestApp::spawn().await;
    let v = app.v1x().await;
    let mut m = app.mpesa().await;
    m.market = "vodacomMOZ".to_owned();

    // v1x C2B, then v2 (Mozambique market) status by its reference and a partial reversal.
    let body = v.c2b("20", "258843330333");
    let r = v.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let tx = r.json()["output_TransactionID"]
        .as_str()
        .unwrap()
        .to_owned();
    let reference = body["input_ThirdPartyReference"].as_str().unwrap();
    let r = m
        .query(
            "queryTransactionStatus/",
            &json!({
                "input_QueryReference": reference, "input_Country": "MOZ",
                "input_ServiceProviderCode": "171717", "input_ThirdPartyConversationID": tpcid(),
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["output_ResponseTransactionStatus"], "Completed");
    assert_eq!(r.json()["output_OriginalTransactionID"], tx.as_str());
    let r = m
        .call(
            "PUT",
            "reversal/",
            &json!({
                "input_Country": "MOZ", "input_TransactionID": tx,
                "input_ServiceProviderCode": "171717", "input_ThirdPartyConversationID": tpcid(),
                "input_ReversalAmount": "5",
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The v1x reversal of the rest; one more is too much.
    let r = v
        .call("PUT", "reversal/", &v.reversal(&tx, Some("15")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = v
        .call("PUT", "reversal/", &v.reversal(&tx, Some("1")))
        .await;
    assert_eq!(code(&r), (400, "INS-15".to_owned()));

    // The same reference through v2 is a duplicate: one idempotency scope per application.
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &json!({
                "input_Amount": "10", "input_Country": "MOZ", "input_Currency": "MZN",
                "input_CustomerMSISDN": "258843330333", "input_ServiceProviderCode": "171717",
                "input_ThirdPartyConversationID": reference, "input_TransactionReference": "T1",
                "input_PurchasedItemsDesc": "Shoes",
            }),
        )
        .await;
    assert_eq!(code(&r), (409, "INS-10".to_owned()), "{}", r.text());

    // A v2 payment reversed and queried through v1x.
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &json!({
                "input_Amount": "30", "input_Country": "MOZ", "input_Currency": "MZN",
                "input_CustomerMSISDN": "258843330333", "input_ServiceProviderCode": "171717",
                "input_ThirdPartyConversationID": tpcid(), "input_TransactionReference": "T2",
                "input_PurchasedItemsDesc": "Shoes",
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v2_tx = r.json()["output_TransactionID"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = v.call("PUT", "reversal/", &v.reversal(&v2_tx, None)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = v
        .query(
            "queryTransactionStatus/",
            &[
                ("input_ThirdPartyReference", "Q2"),
                ("input_QueryReference", &v2_tx),
                ("input_ServiceProviderCode", "171717"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The status query also takes its fields from a JSON body on the GET.
    let r = v
        .call(
            "GET",
            "queryTransactionStatus/",
            &json!({
                "input_ThirdPartyReference": "Q3", "input_QueryReference": v2_tx,
                "input_ServiceProviderCode": "171717",
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.assert_ledger_balanced().await;
}

/// A customer who declines on the handset (the portal's virtual phone): v1x answers the
/// generic table's `INS-5` "Transaction cancelled by customer", v2 (whose per-API tables
/// have no such code) `INS-6`.
#[tokio::test]
async fn a_customer_who_declines_is_ins_5_on_v1x_and_ins_6_on_v2() {
    let app = TestApp::spawn_with(|s| s.mpesa.insecure_result_urls = true).await;
    let sink = Sink::start(200).await;
    let r = app
        .mpesa_settings(json!({ "result_url": sink.url("/results") }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let login = app.sandbox_login().await;
    let mut phone = crate::portal::Browser::new(&app.base);
    phone.sign_in(&login.email, &login.password).await;
    let r = phone
        .submit("/portal/phone", "/portal/phone/mode", &[("on", "1")])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let v = app.v1x().await;
    let on_v1x = v
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &v.c2b("10", "258843330444"),
        )
        .await;
    assert_eq!(on_v1x.status, 201, "{}", on_v1x.text());
    let m = app.mpesa().await;
    let on_v2 = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("10", "255743330444"),
        )
        .await;
    assert_eq!(on_v2.status, 201, "{}", on_v2.text());
    for (answer, msisdn) in [(&on_v1x, "258843330444"), (&on_v2, "255743330444")] {
        let conversation = conversation_of(answer);
        let id = uuid::Uuid::parse_str(&conversation).unwrap().hyphenated();
        let r = phone
            .submit(
                &format!("/portal/phone?msisdn={msisdn}"),
                &format!("/portal/phone/{id}/reject"),
                &[("msisdn", msisdn)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
    }
    let got = sink.wait_for(2).await;
    let result_of = |answer: &crate::helpers::Resp| {
        let conversation = &answer.json()["output_ConversationID"];
        got.iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
            .find(|b| &b["input_OriginalConversationID"] == conversation)
            .expect("a result for each")
    };
    let declined = result_of(&on_v1x);
    assert_eq!(declined["input_ResultCode"], "INS-5", "{declined}");
    assert_eq!(
        declined["input_ResultDesc"],
        "Transaction cancelled by customer"
    );
    assert_eq!(result_of(&on_v2)["input_ResultCode"], "INS-6");
    // Its status says so too on v1x (`Cancelled`, one of v1x's documented statuses); v2
    // keeps `Failed`. (Read synchronously: no result URL now.)
    let r = app.mpesa_settings(json!({ "result_url": null })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let q = v
        .query(
            "queryTransactionStatus/",
            &[
                ("input_ThirdPartyReference", "Q1"),
                ("input_QueryReference", &conversation_of(&on_v1x)),
                ("input_ServiceProviderCode", "171717"),
            ],
        )
        .await;
    assert_eq!(
        q.json()["output_ResponseTransactionStatus"],
        "Cancelled",
        "{}",
        q.text()
    );
    let q = m
        .query(
            "queryTransactionStatus/",
            &json!({
                "input_QueryReference": conversation_of(&on_v2),
                "input_Country": "TZN",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
            }),
        )
        .await;
    assert_eq!(
        q.json()["output_ResponseTransactionStatus"],
        "Failed",
        "{}",
        q.text()
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn in_asynchronous_mode_results_come_in_the_v1x_shape() {
    let app = TestApp::spawn_with(|s| s.mpesa.insecure_result_urls = true).await;
    let sink = Sink::start(200).await;
    let r = app
        .mpesa_settings(json!({ "result_url": sink.url("/mz/results") }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = app.v1x().await;
    let body = v.c2b("10", "258843330333");
    let r = v.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_ConversationID",
            "output_ThirdPartyReference"
        ],
        "no transaction id in the first answer"
    );
    let conversation = conversation_of(&r);
    let got = sink.wait_for(1).await;
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/mz/results")
    );
    let result: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        result
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .len(),
        5,
        "{result}"
    );
    assert_eq!(
        result["input_OriginalConversationID"],
        conversation.as_str()
    );
    assert_eq!(
        result["input_ThirdPartyReference"],
        body["input_ThirdPartyReference"]
    );
    assert_eq!(result["input_ResultCode"], "0");
    assert_eq!(result["input_ResultDesc"], "Request processed successfully");
    assert_eq!(result["input_TransactionID"].as_str().unwrap().len(), 12);

    // A failure carries its code; the attempt is on the transaction like every callback.
    let r = v
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &v.c2b("10", "258840000008"),
        )
        .await;
    assert_eq!(r.status, 201, "accepted first: {}", r.text());
    let got = sink.wait_for(2).await;
    let failed: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(failed["input_ResultCode"], "INS-2006");
    assert_eq!(failed["input_TransactionID"], "N/A");
    let t = wait_for(|| async {
        let t = v.m.transaction(&conversation).await;
        (!t["callbacks"].as_array().unwrap().is_empty()).then_some(t)
    })
    .await;
    assert_eq!(t["callbacks"][0]["status_code"], 200);
}

#[tokio::test]
async fn a_per_api_port_in_use_is_a_start_up_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = mkoba::Settings::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    settings.mpesa_key_file = Some(crate::helpers::MPESA_TEST_KEY.into());
    settings.mpesa_v1x_ports = mkoba::config::parse_v1x_ports(&format!("status={port}")).unwrap();
    let err = mkoba::start(settings).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&port.to_string()), "{text}");
    assert!(text.contains("status"), "{text}");
}

#[tokio::test]
async fn resource_urls_are_shown_with_address_port_path_and_ssl() {
    let app = TestApp::spawn_v1x().await;
    let r = app
        .send(
            "GET",
            "/_mkoba/mpesa/application",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let urls = r.json()["resource_urls"].as_array().unwrap().clone();
    let c2b = urls
        .iter()
        .find(|u| u["operation_id"] == "v1xC2bSingleStage")
        .unwrap();
    let own = app.v1x_port("c2b");
    assert_eq!(
        format!(
            "http://{}:{}",
            c2b["address"].as_str().unwrap(),
            c2b["port"]
        ),
        own
    );
    assert_eq!(c2b["path"], "/ipg/v1x/c2bPayment/singleStage/");
    assert_eq!(c2b["method"], "POST");
    assert_eq!(c2b["ssl"], false);
    assert!(urls.iter().any(|u| u["operation_id"] == "v2GetSession"));

    // The portal's M-Pesa page shows them, as the seed's "Resource URL" box does.
    let login = app.sandbox_login().await;
    let mut b = crate::portal::Browser::new(&app.base);
    b.sign_in(&login.email, &login.password).await;
    let html = b.get("/portal/mpesa").await.text();
    let port = own.rsplit(':').next().unwrap();
    assert!(html.contains("Resource URLs"), "{html}");
    assert!(
        html.contains(&format!(
            "<code>{port}</code></td><td><code>/ipg/v1x/c2bPayment/singleStage/</code>"
        )),
        "{html}"
    );
}

/// `mkoba credentials --json` lists the resource URLs of a server started with the same
/// listen address and per-API ports.
#[tokio::test]
async fn credentials_name_every_resource_url() {
    let dir = tempfile::tempdir().unwrap();
    // The server's database (`mkoba credentials` reads one; it never makes one).
    let made = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["migrate", "--data"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(made.status.success());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args([
            "credentials",
            "--json",
            "--listen",
            "127.0.0.1:9090",
            "--data",
        ])
        .arg(dir.path())
        .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
        .env("MKOBA_MPESA_V1X_PORTS", "on")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let urls = v["mpesa"]["resource_urls"].as_array().unwrap();
    let by_id = |id: &str| {
        urls.iter()
            .find(|u| u["operation_id"] == id)
            .unwrap()
            .clone()
    };
    for (id, port, method) in [
        ("v1xC2bSingleStage", 18352, "POST"),
        ("v1xB2cPayment", 18345, "POST"),
        ("v1xB2bPayment", 18349, "POST"),
        ("v1xReversal", 18354, "PUT"),
        ("v1xQueryTransactionStatus", 18353, "GET"),
        ("v1xQueryCustomerName", 19323, "GET"),
    ] {
        let u = by_id(id);
        assert_eq!(
            (u["port"].as_u64(), u["method"].as_str()),
            (Some(port), Some(method)),
            "{u}"
        );
        assert_eq!(u["address"], "127.0.0.1");
        assert_eq!(u["ssl"], false);
    }
    assert_eq!(by_id("v2GetSession")["port"], 9090);
    assert_eq!(v["mpesa"]["v1x"]["service_provider_code"], "171717");
}

/// The published PaymentsDS clients for this gateway (PyPI `paymentsds-mpesa`, npm
/// `@paymentsds/mpesa`), unchanged, on the real per-API ports (18352, 18345, …). The only
/// test that binds those ports.
#[tokio::test]
async fn the_paymentsds_clients_run_unchanged_on_the_real_ports() {
    let app = TestApp::spawn_with(|s| {
        s.mpesa_v1x_ports = mkoba::config::parse_v1x_ports("on").unwrap();
    })
    .await;
    let m = app.mpesa().await;
    for script in [
        "tests/compat/paymentsds-python/run.sh",
        "tests/compat/paymentsds-js/run.sh",
    ] {
        let run = run_script(
            script,
            &[
                ("MPESA_HOST", "http://127.0.0.1"),
                ("MPESA_API_KEY", &m.api_key),
                ("MPESA_PUBLIC_KEY", &m.public_key_b64),
            ],
        )
        .await;
        assert!(
            run.success,
            "{script} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        assert!(run.stdout.contains(" passed, 0 failed"), "{}", run.stdout);
    }
    app.assert_ledger_balanced().await;
}
