use std::time::Duration;

use base64::Engine as _;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_token_has_the_real_platforms_shape() {
    let app = TestApp::spawn().await;
    let user = app.create_user("clinic.com").await;
    let key = app.create_key(user).await;
    let r = app.token_response("collection", user, &key).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["token_type"], "access_token");
    assert_eq!(v["expires_in"], 3600);
    assert!(v["expires_in"].is_u64());
    let token = v["access_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["clientId"], user.to_string());
}

#[tokio::test]
async fn wrong_credentials_get_500_login_failed() {
    let app = TestApp::spawn().await;
    let user = app.create_user("clinic.com").await;
    let key = app.create_key(user).await;
    let expected = r#"{"error":"login_failed"}"#;
    let r = app
        .token_response("collection", user, "0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!((r.status, r.text().as_str()), (500, expected));
    let r = app.token_response("collection", Uuid::new_v4(), &key).await;
    assert_eq!((r.status, r.text().as_str()), (500, expected));
    for auth in ["Basic", "Basic !!!", "Bearer x", &format!("Basic:{key}")] {
        let r = app
            .send(
                "POST",
                "/collection/token/",
                &[
                    ("Ocp-Apim-Subscription-Key", app.key("collection")),
                    ("Authorization", auth),
                ],
                None,
            )
            .await;
        assert_eq!((r.status, r.text().as_str()), (500, expected), "{auth}");
    }
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (500, expected));
}

#[tokio::test]
async fn each_product_needs_its_own_subscription_key() {
    let app = TestApp::spawn().await;
    let user = app.create_user("clinic.com").await;
    let key = app.create_key(user).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("disbursement")),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["statusCode"], 401);
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[
                (
                    "Ocp-Apim-Subscription-Key",
                    &app.keys.secondary["collection"],
                ),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn many_tokens_are_valid_at_once_and_a_foreign_products_token_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app.partner("clinic.com").await;
    let mut tokens = vec![partner.token.clone()];
    for _ in 0..3 {
        tokens.push(app.token("collection", partner.user, &partner.key).await);
    }
    for t in &tokens {
        let mut p = partner.clone();
        p.token = t.clone();
        assert_eq!(app.get(&p, "/v1_0/account/balance").await.status, 200);
    }
    let mut foreign = partner.clone();
    foreign.token = app.token("disbursement", partner.user, &partner.key).await;
    let r = app.get(&foreign, "/v1_0/account/balance").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "UNAUTHORIZED");
    assert!(
        r.text().contains("or one of another product"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401() {
    let (app, clock) = TestApp::spawn_with_clock(|_| {}).await;
    let partner = app.partner("clinic.com").await;
    let r = app
        .token_response("collection", partner.user, &partner.key)
        .await;
    assert_eq!(r.json()["expires_in"], 3600);
    app.advance(&clock, Duration::from_secs(3599)).await;
    assert_eq!(app.get(&partner, "/v1_0/account/balance").await.status, 200);
    app.advance(&clock, Duration::from_secs(1)).await;
    let r = app.get(&partner, "/v1_0/account/balance").await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("expired"), "{}", r.text());
}

#[tokio::test]
async fn missing_or_garbage_bearer_tokens_are_401() {
    let app = TestApp::spawn().await;
    let partner = app.partner("clinic.com").await;
    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer abc.def.ghi"),
        Some("Basic abc"),
    ] {
        let mut headers = vec![
            ("Ocp-Apim-Subscription-Key", app.key("collection")),
            ("X-Target-Environment", "sandbox"),
        ];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = app
            .send("GET", "/collection/v1_0/account/balance", &headers, None)
            .await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.json()["code"], "UNAUTHORIZED");
        if auth == Some("Bearer abc.def.ghi") {
            // Not told it belongs to another product: it belongs to none.
            assert!(
                r.text().contains("not one this platform issued"),
                "{}",
                r.text()
            );
        }
    }
    let _ = partner;
}
