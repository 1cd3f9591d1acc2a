//! Production-like target environments: API users created for an MTN market, with that
//! market's currency and none of the sandbox's test behaviour.

use uuid::Uuid;

use crate::helpers::{Partner, TestApp};

async fn production_partner(app: &TestApp, environment: &str) -> Partner {
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            Some(&format!(
                r#"{{"providerCallbackHost":"shop.ug","targetEnvironment":"{environment}"}}"#
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let user = Uuid::parse_str(v["apiUser"].as_str().unwrap()).unwrap();
    let key = v["apiKey"].as_str().unwrap().to_owned();
    let token = app.token("collection", user, &key).await;
    Partner { user, key, token }
}

async fn rtp(app: &TestApp, p: &Partner, env: &str, body: &str) -> (Uuid, crate::helpers::Resp) {
    let reference = Uuid::new_v4();
    let bearer = format!("Bearer {}", p.token);
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", &bearer),
                ("X-Target-Environment", env),
                ("X-Reference-Id", &reference.to_string()),
            ],
            Some(body),
        )
        .await;
    (reference, r)
}

async fn get(app: &TestApp, p: &Partner, env: &str, path: &str) -> crate::helpers::Resp {
    app.send(
        "GET",
        &format!("/collection{path}"),
        &[
            ("Ocp-Apim-Subscription-Key", app.key("collection")),
            ("Authorization", &format!("Bearer {}", p.token)),
            ("X-Target-Environment", env),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_market_api_user_pays_in_the_markets_currency_without_test_numbers() {
    let app = TestApp::spawn().await;
    let p = production_partner(&app, "mtnuganda").await;
    // 46733123451 is "rejected" only in the sandbox.
    let body = r#"{"amount":"5000","currency":"UGX","externalId":"inv-9","payer":{"partyIdType":"MSISDN","partyId":"46733123451"}}"#;
    let (reference, r) = rtp(&app, &p, "mtnuganda", body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = crate::helpers::wait_for(|| async {
        let v = get(
            &app,
            &p,
            "mtnuganda",
            &format!("/v1_0/requesttopay/{reference}"),
        )
        .await
        .json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(v["currency"], "UGX");
    let r = get(&app, &p, "mtnuganda", "/v1_0/account/balance").await;
    assert_eq!(r.text(), r#"{"availableBalance":"5000","currency":"UGX"}"#);
    let r = get(
        &app,
        &p,
        "mtnuganda",
        "/v1_0/accountholder/msisdn/46733123450/active",
    )
    .await;
    assert_eq!(r.text(), r#"{"result":true}"#);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_market_api_user_is_held_to_its_environment_and_currency() {
    let app = TestApp::spawn().await;
    let p = production_partner(&app, "mtnghana").await;
    let eur = r#"{"amount":"5","currency":"EUR","payer":{"partyIdType":"MSISDN","partyId":"233241234567"}}"#;
    let (_, r) = rtp(&app, &p, "mtnghana", eur).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (500, Some("INVALID_CURRENCY"))
    );
    let ghs = eur.replace("EUR", "GHS");
    let (_, r) = rtp(&app, &p, "sandbox", &ghs).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (500, Some("NOT_ALLOWED_TARGET_ENVIRONMENT"))
    );
    let (_, r) = rtp(&app, &p, "mtnghana", &ghs).await;
    assert_eq!(r.status, 202);
    // The sandbox provisioning API does not manage market users.
    let r = app
        .send(
            "POST",
            &format!("/v1_0/apiuser/{}/apikey", p.user),
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send(
            "GET",
            &format!("/v1_0/apiuser/{}", p.user),
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(
        r.text(),
        r#"{"providerCallbackHost":"shop.ug","targetEnvironment":"mtnghana"}"#
    );
}

#[tokio::test]
async fn creating_market_users_needs_a_key_and_a_known_environment() {
    let app = TestApp::spawn().await;
    let body = Some(r#"{"providerCallbackHost":"shop.ug","targetEnvironment":"mtnmars"}"#);
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            body,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("mtnuganda"), "{}", r.text());
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[],
            Some(r#"{"providerCallbackHost":"a.b","targetEnvironment":"mtnghana"}"#),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// A deposit's status carries its transaction id in a market's environment; MTN's sandbox
/// leaves it out, even once the deposit succeeded (reference §5, §15.2), and so does the
/// sandbox environment (`payouts::deposit_and_withdraw_versions_call_back_with_their_documented_methods`).
#[tokio::test]
async fn a_market_deposit_carries_its_transaction_id() {
    let app = TestApp::spawn().await;
    let p = production_partner(&app, "mtnuganda").await;
    let token = app.token("disbursement", p.user, &p.key).await;
    let reference = Uuid::new_v4();
    let headers = |reference: Option<String>| {
        let mut h = vec![
            (
                "Ocp-Apim-Subscription-Key",
                app.key("disbursement").to_owned(),
            ),
            ("Authorization", format!("Bearer {token}")),
            ("X-Target-Environment", "mtnuganda".to_owned()),
        ];
        h.extend(reference.map(|r| ("X-Reference-Id", r)));
        h
    };
    let body = r#"{"amount":"700","currency":"UGX","externalId":"d-1","payee":{"partyIdType":"MSISDN","partyId":"256772123456"}}"#;
    let sent = headers(Some(reference.to_string()));
    let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = app
        .send("POST", "/disbursement/v1_0/deposit", &sent, Some(body))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let asked = headers(None);
    let asked: Vec<(&str, &str)> = asked.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let v = crate::helpers::wait_for(|| async {
        let v = app
            .send(
                "GET",
                &format!("/disbursement/v1_0/deposit/{reference}"),
                &asked,
                None,
            )
            .await
            .json();
        (v["status"] != "PENDING").then_some(v)
    })
    .await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    assert_eq!(
        v["financialTransactionId"].as_str().map(str::len),
        Some(10),
        "{v}"
    );
}
