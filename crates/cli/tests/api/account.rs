use std::time::Duration;

use uuid::Uuid;

use crate::helpers::{Partner, TestApp, rtp_body};

#[tokio::test]
async fn balances_are_in_the_environments_currency_only() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = app.get(&p, "/v1_0/account/balance/EUR").await;
    assert_eq!(r.text(), r#"{"availableBalance":"0","currency":"EUR"}"#);
    let r = app.get(&p, "/v1_0/account/balance/UGX").await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (500, Some("INVALID_CURRENCY"))
    );
    let r = app.get(&p, "/v1_0/account/balance/eu").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn account_holder_checks_follow_the_sandbox_scenarios() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let cases = [
        ("msisdn/256774290781", 200, r#"{"result":true}"#),
        ("MSISDN/256774290781", 200, r#"{"result":true}"#),
        ("msisdn/46733123451", 200, r#"{"result":false}"#),
        ("msisdn/46733123450", 404, "RESOURCE_NOT_FOUND"),
        ("msisdn/46733123452", 500, "NOT_ALLOWED"),
        ("msisdn/46733123453", 500, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
        ("msisdn/46733123454", 500, "INTERNAL_PROCESSING_ERROR"),
        ("msisdn/46733123455", 503, "SERVICE_UNAVAILABLE"),
        ("email/someone@example.com", 200, r#"{"result":true}"#),
        ("EMAIL/notactive@email.com", 200, r#"{"result":false}"#),
        (
            "party_code/5cecb5a7-8bd0-4f49-87b1-8eb9ecc7b7bc",
            404,
            "RESOURCE_NOT_FOUND",
        ),
        ("phone/256774290781", 400, "BAD_REQUEST"),
        ("msisdn/not-a-number", 400, "BAD_REQUEST"),
    ];
    for (path, status, needle) in cases {
        let r = app
            .get(&p, &format!("/v1_0/accountholder/{path}/active"))
            .await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.text().contains(needle), "{path}: {}", r.text());
    }
}

#[tokio::test]
async fn basic_user_info_is_the_sandbox_identity() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    // For any number (reference §10.4), the account-holder test numbers whose `/active`
    // answers an error among them.
    for number in ["46733123459", "46733123450", "46733123453", "46733123455"] {
        let r = app
            .get(
                &p,
                &format!("/v1_0/accountholder/msisdn/{number}/basicuserinfo"),
            )
            .await;
        assert_eq!(r.status, 200, "{number}: {}", r.text());
        let v = r.json();
        assert_eq!(v["name"], "Sand Box");
        assert_eq!(v["given_name"], "Sand");
        assert_eq!(v["family_name"], "Box");
        assert!(v["updated_at"].as_i64().unwrap() > 1_700_000_000);
    }
    let r = app
        .get(&p, "/v1_0/accountholder/msisdn/46733123450/active")
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A malformed holder is refused by the path's own name for it.
    for path in [
        "/v1_0/accountholder/msisdn/abc/active",
        "/v1_0/accountholder/msisdn/abc/basicuserinfo",
    ] {
        let r = app.get(&p, path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("accountHolderId \"abc\" is not valid for MSISDN"),
            "{path}: {}",
            r.text()
        );
    }
    // Without a token: the 401 MTN's definitions document here ({"error"}), with the
    // wallet's code and message that every other operation's 401 carries.
    let r = app
        .send(
            "GET",
            "/collection/v1_0/accountholder/msisdn/46733000001/basicuserinfo",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("X-Target-Environment", "sandbox"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["error"].as_str(), v["code"].as_str()),
        (Some("UNAUTHORIZED"), Some("UNAUTHORIZED")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("Authorization")),
        "{v}"
    );
}

async fn notify(
    app: &TestApp,
    p: &Partner,
    reference: Uuid,
    header: Option<&str>,
    body: Option<&str>,
) -> crate::helpers::Resp {
    let bearer = format!("Bearer {}", p.token);
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", app.key("collection")),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
        ("Language", "en"),
    ];
    if let Some(h) = header {
        headers.push(("notificationMessage", h));
    }
    app.send(
        "POST",
        &format!("/collection/v1_0/requesttopay/{reference}/deliverynotification"),
        &headers,
        body,
    )
    .await
}

#[tokio::test]
async fn a_delivery_notification_is_accepted_once_for_a_successful_payment() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let ok = Uuid::new_v4();
    let failed = Uuid::new_v4();
    app.request_to_pay(&p, ok, &rtp_body("1", "256770000005"), &[])
        .await;
    app.request_to_pay(&p, failed, &rtp_body("1", "46733123451"), &[])
        .await;
    app.final_status(&p, ok).await;
    app.final_status(&p, failed).await;

    let r = notify(&app, &p, ok, None, None).await;
    assert_eq!(r.status, 400, "a message is required");
    let long = "x".repeat(161);
    let r = notify(&app, &p, ok, Some(&long), None).await;
    assert_eq!(r.status, 400);
    // Each form given is checked: a valid header does not let an invalid body through,
    // an empty header leaves it to the body, and two texts that differ are refused.
    let long_body = format!(r#"{{"notificationMessage":"{long}"}}"#);
    let r = notify(&app, &p, ok, Some("ok"), Some(&long_body)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = notify(
        &app,
        &p,
        ok,
        Some("one"),
        Some(r#"{"notificationMessage":"two"}"#),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("differs"));
    // The header twice: which copy counts would depend on who reads it.
    let bearer = format!("Bearer {}", p.token);
    let r = app
        .send(
            "POST",
            &format!("/collection/v1_0/requesttopay/{ok}/deliverynotification"),
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", bearer.as_str()),
                ("X-Target-Environment", "sandbox"),
                ("notificationMessage", "one"),
                ("notificationMessage", "one"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("more than once"),
        "{}",
        r.text()
    );
    // An empty header counts as none: the body's message is the one.
    let r = notify(
        &app,
        &p,
        ok,
        Some(""),
        Some(r#"{"notificationMessage":"Your goods are on the way"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let r = notify(&app, &p, ok, Some("again"), None).await;
    assert_eq!(r.status, 429);
    let r = notify(&app, &p, failed, Some("hello"), None).await;
    assert_eq!(r.status, 409);
    let r = notify(&app, &p, Uuid::new_v4(), Some("hello"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "RESOURCE_NOT_FOUND");
    assert_eq!(app.admin_transaction(ok).await["notifications"], 1);

    // Another operation's reference, a successful request-to-withdraw of the same API user,
    // is as unknown here as under `GET /requesttopay/{referenceId}`.
    let withdrawal = Uuid::new_v4();
    let bearer = format!("Bearer {}", p.token);
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttowithdraw",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", &bearer),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &withdrawal.to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(&rtp_body("1", "256770000005")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    crate::helpers::wait_for(|| async {
        let r = app
            .get(&p, &format!("/v1_0/requesttowithdraw/{withdrawal}"))
            .await;
        (r.json()["status"] == "SUCCESSFUL").then_some(())
    })
    .await;
    let r = app
        .get(&p, &format!("/v1_0/requesttopay/{withdrawal}"))
        .await;
    assert_eq!(r.status, 404);
    let r = notify(&app, &p, withdrawal, Some("hello"), None).await;
    assert_eq!(r.status, 404, "{}", r.text());
}

/// The message in the `notificationMessage` header with accents (French-speaking markets),
/// in UTF-8 or as ISO-8859-1 bytes: read as the text it is, not taken for a missing header
/// (it was `400 notificationMessage is required`).
#[tokio::test]
async fn a_delivery_notification_header_may_carry_accents() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let mut sent = Vec::new();
    for message in [
        "Votre colis est arrivé à Abidjan".as_bytes().to_vec(),
        b"Livr\xe9 \xe0 Cotonou".to_vec(),
    ] {
        let reference = Uuid::new_v4();
        app.request_to_pay(&p, reference, &rtp_body("1", "256770000005"), &[])
            .await;
        app.final_status(&p, reference).await;
        let mut request = format!(
            "POST /collection/v1_0/requesttopay/{reference}/deliverynotification HTTP/1.1\r\n\
             Host: {}\r\nOcp-Apim-Subscription-Key: {}\r\nAuthorization: Bearer {}\r\n\
             X-Target-Environment: sandbox\r\nContent-Length: 0\r\nConnection: close\r\n\
             notificationMessage: ",
            app.running.addr,
            app.key("collection"),
            p.token
        )
        .into_bytes();
        request.extend_from_slice(&message);
        request.extend_from_slice(b"\r\n\r\n");
        let mut stream = tokio::net::TcpStream::connect(app.running.addr)
            .await
            .unwrap();
        stream.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        sent.push(reference);
    }
    for reference in sent {
        assert_eq!(app.admin_transaction(reference).await["notifications"], 1);
    }
}

/// MTN documents a 410 for a notification whose opportunity has passed, not how long it
/// lasts: Mkoba's window is a day after the payment succeeded (an operator's flag), in the
/// platform's time, which the test moves.
#[tokio::test]
async fn a_delivery_notification_after_the_window_is_410_and_nothing_is_sent() {
    // Tokens that outlive the days the test moves through.
    let (app, clock) = TestApp::spawn_with_clock(|s| {
        s.platform.token_ttl = Duration::from_secs(7 * 24 * 3600);
    })
    .await;
    let p = app.partner("clinic.com").await;
    let (early, late) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [early, late] {
        app.request_to_pay(&p, id, &rtp_body("1", "256770000005"), &[])
            .await;
        app.final_status(&p, id).await;
    }
    app.advance(&clock, Duration::from_secs(24 * 3600 - 1))
        .await;
    let r = notify(&app, &p, early, Some("Your goods are on the way"), None).await;
    assert_eq!(r.status, 200, "inside the window: {}", r.text());
    app.advance(&clock, Duration::from_secs(2)).await;
    let r = notify(&app, &p, late, Some("Your goods are on the way"), None).await;
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"code": "EXPIRED", "message": "The delivery notification opportunity has expired."})
    );
    assert_eq!(app.admin_transaction(late).await["notifications"], 0);
    // A payment not successful is still 409, whatever its age.
    let failed = Uuid::new_v4();
    app.request_to_pay(&p, failed, &rtp_body("1", "46733123451"), &[])
        .await;
    app.final_status(&p, failed).await;
    app.advance(&clock, Duration::from_secs(2 * 24 * 3600))
        .await;
    assert_eq!(notify(&app, &p, failed, Some("hi"), None).await.status, 409);

    // An operator's shorter window (`--delivery-notification-window-secs 60`).
    let (app, clock) = TestApp::spawn_with_clock(|s| {
        s.platform.delivery_notification_window = Duration::from_secs(60);
    })
    .await;
    let p = app.partner("clinic.com").await;
    let id = Uuid::new_v4();
    app.request_to_pay(&p, id, &rtp_body("1", "256770000005"), &[])
        .await;
    app.final_status(&p, id).await;
    app.advance(&clock, Duration::from_secs(61)).await;
    assert_eq!(notify(&app, &p, id, Some("hi"), None).await.status, 410);
}

#[tokio::test]
async fn unknown_operations_get_the_gateways_404() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/collection/v1_0/nothing"),
        ("DELETE", "/collection/v1_0/requesttopay"),
    ] {
        let r = app
            .send(
                method,
                path,
                &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
                None,
            )
            .await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(
            r.text(),
            r#"{"statusCode":404,"message":"Resource not found"}"#
        );
    }
}

#[tokio::test]
async fn a_panicking_handler_still_answers_the_platforms_500() {
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("a bug");
                }
                "unreachable"
            }),
        )
        .layer(mkoba::guard::Guard::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = crate::helpers::Http::new()
        .send("GET", &format!("http://{addr}/boom"), &[], None)
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["code"], "INTERNAL_PROCESSING_ERROR");
}
