use uuid::Uuid;

use crate::helpers::{Headers, TestApp};

#[tokio::test]
async fn creating_an_api_user_answers_201_with_an_empty_body_and_the_user_can_be_read() {
    let app = TestApp::spawn().await;
    let id = Uuid::new_v4();
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("X-Reference-Id", &id.to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"providerCallbackHost":"clinic.com"}"#),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty());
    let r = app
        .send(
            "GET",
            &format!("/v1_0/apiuser/{id}"),
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        r#"{"providerCallbackHost":"clinic.com","targetEnvironment":"sandbox"}"#
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=utf-8")
    );
}

#[tokio::test]
async fn a_reused_reference_id_is_409_resource_already_exist() {
    let app = TestApp::spawn().await;
    let id = app.create_user("clinic.com").await;
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("disbursement")),
                ("X-Reference-Id", &id.to_string()),
            ],
            Some(r#"{"providerCallbackHost":"other.com"}"#),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.text(),
        r#"{"code":"RESOURCE_ALREADY_EXIST","message":"Duplicated reference id. Creation of resource failed."}"#
    );
}

#[tokio::test]
async fn bad_provisioning_input_is_400_with_an_explanation() {
    let app = TestApp::spawn().await;
    let key = ("Ocp-Apim-Subscription-Key", app.key("collection"));
    let id = Uuid::new_v4().to_string();
    let cases: Vec<(Headers, Option<&str>, &str)> = vec![
        (
            vec![key],
            Some(r#"{"providerCallbackHost":"a.com"}"#),
            "X-Reference-Id",
        ),
        (
            vec![key, ("X-Reference-Id", "not-a-uuid")],
            Some(r#"{"providerCallbackHost":"a.com"}"#),
            "UUID",
        ),
        (
            vec![key, ("X-Reference-Id", &id)],
            None,
            "providerCallbackHost",
        ),
        (
            vec![key, ("X-Reference-Id", &id)],
            Some(r#"{"providerCallbackHost":""}"#),
            "providerCallbackHost",
        ),
        (
            vec![key, ("X-Reference-Id", &id)],
            Some(r#"{"providerCallbackHost":null}"#),
            "providerCallbackHost",
        ),
        (
            vec![key, ("X-Reference-Id", &id)],
            Some(r#"{"providerCallbackHost":0}"#),
            "providerCallbackHost must be a string",
        ),
        (
            vec![key, ("X-Reference-Id", &id)],
            Some("{not json"),
            "JSON",
        ),
        (vec![key, ("X-Reference-Id", &id)], Some("[1]"), "object"),
    ];
    for (headers, body, needle) in cases {
        let r = app.send("POST", "/v1_0/apiuser", &headers, body).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
        assert_eq!(r.json()["code"], "BAD_REQUEST");
        assert!(r.text().contains(needle), "{needle}: {}", r.text());
    }
    let r = app
        .send("GET", "/v1_0/apiuser/incorrect_referenceId", &[key], None)
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser/incorrect_referenceId/apikey",
            &[key],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn api_keys_are_32_hex_characters_and_a_second_key_works_beside_the_first() {
    let app = TestApp::spawn().await;
    let user = app.create_user("clinic.com").await;
    let first = app.create_key(user).await;
    let second = app.create_key(user).await;
    for k in [&first, &second] {
        assert_eq!(k.len(), 32);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(first, second);
    app.token("collection", user, &first).await;
    app.token("collection", user, &second).await;
}

/// Some clients make a key before every payment: an API user keeps its newest hundred,
/// so checking a key reads a bounded number of them, and the oldest stops working.
#[tokio::test]
async fn an_api_user_keeps_its_newest_hundred_api_keys() {
    let app = TestApp::spawn().await;
    let user = app.create_user("clinic.com").await;
    let first = app.create_key(user).await;
    let second = app.create_key(user).await;
    let mut last = String::new();
    for _ in 0..99 {
        last = app.create_key(user).await;
    }
    let r = app.token_response("collection", user, &first).await;
    assert_ne!(
        r.status,
        200,
        "the oldest of 101 keys was removed: {}",
        r.text()
    );
    app.token("collection", user, &second).await;
    app.token("collection", user, &last).await;
}

#[tokio::test]
async fn unknown_api_users_are_404_resource_not_found() {
    let app = TestApp::spawn().await;
    let key = ("Ocp-Apim-Subscription-Key", app.key("collection"));
    let id = Uuid::new_v4();
    let expected = r#"{"code":"RESOURCE_NOT_FOUND","message":"Requested resource was not found."}"#;
    let r = app
        .send("POST", &format!("/v1_0/apiuser/{id}/apikey"), &[key], None)
        .await;
    assert_eq!((r.status, r.text().as_str()), (404, expected));
    let r = app
        .send("GET", &format!("/v1_0/apiuser/{id}"), &[key], None)
        .await;
    assert_eq!((r.status, r.text().as_str()), (404, expected));
}

#[tokio::test]
async fn the_gateway_refuses_missing_and_wrong_subscription_keys_with_its_own_envelope() {
    let app = TestApp::spawn().await;
    let id = Uuid::new_v4().to_string();
    let body = Some(r#"{"providerCallbackHost":"a.com"}"#);
    let r = app
        .send("POST", "/v1_0/apiuser", &[("X-Reference-Id", &id)], body)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.text(),
        r#"{"statusCode":401,"message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}"#
    );
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("X-Reference-Id", &id),
                (
                    "Ocp-Apim-Subscription-Key",
                    "0123456789abcdef0123456789abcdef",
                ),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.text(),
        r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#
    );
    // A good key given twice is no key: which copy counted would depend on who read it.
    let good = app.keys.primary["collection"].clone();
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("X-Reference-Id", &id),
                ("Ocp-Apim-Subscription-Key", &good),
                ("Ocp-Apim-Subscription-Key", &good),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("invalid subscription key"),
        "{}",
        r.text()
    );
    // The secondary key and the query-string form are both accepted.
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("X-Reference-Id", &id),
                (
                    "Ocp-Apim-Subscription-Key",
                    &app.keys.secondary["remittance"],
                ),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app
        .send(
            "GET",
            &format!(
                "/v1_0/apiuser/{id}?subscription-key={}",
                app.key("collection")
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn provisioning_lives_at_the_host_root_only() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            "POST",
            "/collection/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("X-Reference-Id", &Uuid::new_v4().to_string()),
            ],
            Some(r#"{"providerCallbackHost":"a.com"}"#),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["statusCode"], 404);
}

/// `providerCallbackHost` is a host name or IP literal, nothing else; `externalId` has a
/// length limit and no control characters: each refusal is MTN's 400 envelope.
#[tokio::test]
async fn callback_hosts_and_external_ids_are_checked() {
    let app = TestApp::spawn().await;
    for host in [
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        "ftp://clinic.com",
        "clinic .com",
    ] {
        let r = app
            .send(
                "POST",
                "/v1_0/apiuser",
                &[
                    ("Ocp-Apim-Subscription-Key", app.key("collection")),
                    ("X-Reference-Id", &Uuid::new_v4().to_string()),
                    ("Content-Type", "application/json"),
                ],
                Some(&serde_json::json!({ "providerCallbackHost": host }).to_string()),
            )
            .await;
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        assert_eq!(r.json()["code"], "BAD_REQUEST", "{host}");
    }
    let p = app.partner("127.0.0.1").await;
    for external in ["x".repeat(257), "order\u{0}1".to_owned()] {
        let body = serde_json::json!({
            "amount": "5", "currency": "EUR", "externalId": external,
            "payer": {"partyIdType": "MSISDN", "partyId": "256770000001"},
        });
        let r = app
            .request_to_pay(&p, Uuid::new_v4(), &body.to_string(), &[])
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("externalId"), "{}", r.text());
    }
}
