//! M-Pesa credentials and sessions: the published public key, `getSession`, session
//! lifetime and activation, API key renewal, `Origin`, and the gateway's generic answers.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::helpers::TestApp;
use crate::mpesa_support::{code, keys};

#[tokio::test]
async fn the_public_key_is_published_as_one_line_of_base64_spki_der_of_4096_bits() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    // The same prefix as the portal's sample key: SPKI DER of a 4096-bit RSA key.
    assert!(
        m.public_key_b64
            .starts_with("MIICIjANBgkqhkiG9w0BAQEFAAOCAg8A"),
        "{}",
        m.public_key_b64
    );
    assert!(!m.public_key_b64.contains(['\n', ' ', '-']));
    assert_eq!(m.public_key.bits(), 4096);
    assert_eq!(m.api_key.len(), 32);
    let bearer = m.bearer(&m.api_key);
    assert_eq!(bearer.len(), 684, "512 bytes of ciphertext in base64");
    // The data directory holds the same key for clients to copy.
    let published =
        std::fs::read_to_string(app.data_dir().join("data/mpesa-public-key.txt")).unwrap();
    assert_eq!(published.trim_end(), m.public_key_b64);
}

#[tokio::test]
async fn get_session_returns_a_32_hex_session_usable_at_once() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let r = m.get_session_with(&m.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        keys(&r),
        [
            "output_ResponseCode",
            "output_ResponseDesc",
            "output_SessionID"
        ]
    );
    let v = r.json();
    assert_eq!(v["output_ResponseCode"], "INS-0");
    assert_eq!(v["output_ResponseDesc"], "Request processed successfully");
    let session = v["output_SessionID"].as_str().unwrap();
    assert_eq!(session.len(), 32);
    assert!(
        session
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let paid = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text());
}

#[tokio::test]
async fn a_wrong_key_a_bad_ciphertext_and_no_bearer_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let path = "/sandbox/ipg/v2/vodacomTZN/getSession/";
    let wrong = format!("Bearer {}", m.bearer("aaaab09uz9f3asdcjyk7els777ihmwv8"));
    // 512 bytes that were never PKCS#1 v1.5 padded: implicit rejection makes them decrypt
    // to a random message, answered exactly like a wrong key.
    let mut block = vec![0u8; 512];
    for (i, b) in block.iter_mut().enumerate().skip(1) {
        *b = (i as u8).wrapping_mul(97).wrapping_add(3);
    }
    let garbage = format!(
        "Bearer {}",
        base64::engine::general_purpose::STANDARD.encode(&block)
    );
    let mut answers = Vec::new();
    for auth in [
        Some(wrong.as_str()),
        Some(garbage.as_str()),
        Some("Bearer None"),
        Some("Basic dXNlcjpwYXNz"),
        None,
    ] {
        let mut headers = vec![("Origin", "*")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = app.send("GET", path, &headers, None).await;
        answers.push((r.status, r.text()));
    }
    assert_eq!(
        answers[0].1,
        r#"{"output_ResponseCode":"INS-989","output_ResponseDesc":"Session Creation Failed"}"#
    );
    for a in &answers {
        assert_eq!(a, &answers[0], "every failure looks the same");
    }
    assert_eq!(answers[0].0, 400);
}

#[tokio::test]
async fn calls_without_a_valid_session_are_refused_with_401() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let body = m.c2b("10", "000000000001");
    // The API key is not a session.
    let r = m
        .send("POST", "c2bPayment/singleStage/", &m.api_key, Some(&body))
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    assert_eq!(r.json()["output_ResponseDesc"], "Invalid Session ID");
    // Like every error body, it carries a conversation id and echoes the client's.
    assert_eq!(
        r.json()["output_ThirdPartyConversationID"],
        body["input_ThirdPartyConversationID"],
        "{}",
        r.text()
    );
    assert_eq!(
        r.json()["output_ConversationID"].as_str().map(str::len),
        Some(32),
        "{}",
        r.text()
    );
    // A body that cannot be read has nothing to echo, but its refusal still carries a
    // conversation id.
    let r = app
        .send(
            "POST",
            "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[
                ("Authorization", &format!("Bearer {}", m.api_key)),
                ("Origin", "*"),
                ("Content-Type", "application/json"),
            ],
            Some("{not json"),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    assert_eq!(
        r.json()["output_ConversationID"].as_str().map(str::len),
        Some(32),
        "{}",
        r.text()
    );
    assert!(r.json().get("output_ThirdPartyConversationID").is_none());
    // A forged session of the right shape.
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            "0000000100000001ffffffffffffffff",
            Some(&body),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    // No bearer at all, and python-pesa's `Bearer None` after a failed session.
    for auth in [None, Some("Bearer None")] {
        let mut headers = vec![("Origin", "*")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = app
            .send(
                "POST",
                "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
                &headers,
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    }
    // A valid session's bearer given twice counts as none: a proxy or a log reading the
    // other copy would see another caller than the gateway's.
    let bearer = format!("Bearer {}", m.bearer(&m.session().await));
    let r = app
        .send(
            "POST",
            "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[
                ("Origin", "*"),
                ("Authorization", &bearer),
                ("Authorization", &bearer),
            ],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_session_expires_after_the_applications_lifetime() {
    let (app, clock) = TestApp::spawn_with_clock(|_| {}).await;
    let r = app
        .mpesa_settings(json!({"session_lifetime_secs": 600}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = app.mpesa().await;
    let session = m.session().await;
    app.advance(&clock, Duration::from_secs(599)).await;
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(code(&r).1, "INS-0", "{}", r.text());
    app.advance(&clock, Duration::from_secs(2)).await;
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    assert_eq!(r.json()["output_ResponseDesc"], "Session key expired");
    // A new session works again.
    let r = m.pay_c2b("10", "000000000001").await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A session keeps the lifetime it was issued with: a longer one set after it expired does
/// not bring it back (it would have moved money), and a session issued under the new
/// lifetime works.
#[tokio::test]
async fn a_longer_lifetime_set_later_does_not_bring_an_expired_session_back() {
    let (app, clock) = TestApp::spawn_with_clock(|_| {}).await;
    let r = app
        .mpesa_settings(json!({"session_lifetime_secs": 60}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = app.mpesa().await;
    let session = m.session().await;
    app.advance(&clock, Duration::from_secs(120)).await;
    let pay = m.c2b("10", "000000000001");
    let r = m
        .send("POST", "c2bPayment/singleStage/", &session, Some(&pay))
        .await;
    assert_eq!(r.json()["output_ResponseDesc"], "Session key expired");
    let r = app
        .mpesa_settings(json!({"session_lifetime_secs": 86_400}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = m
        .send("POST", "c2bPayment/singleStage/", &session, Some(&pay))
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()), "{}", r.text());
    let r = m.call("POST", "c2bPayment/singleStage/", &pay).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_configured_activation_delay_keeps_a_new_session_unusable() {
    let app = TestApp::spawn_with(|s| s.mpesa.session_activation = Duration::from_secs(30)).await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    assert_eq!(
        r.json()["output_ResponseDesc"],
        "Session key not yet active"
    );
}

#[tokio::test]
async fn a_renewed_api_key_replaces_the_old_one_and_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let old_session = m.session().await;
    let r = app
        .send(
            "POST",
            "/_mkoba/mpesa/apikey",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let new_key = r.json()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, m.api_key);
    assert_eq!(
        code(&m.get_session_with(&m.api_key).await),
        (400, "INS-989".to_owned())
    );
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &old_session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(code(&r), (401, "INS-6".to_owned()));
    let r = m.get_session_with(&new_key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The application shows the renewed key (seed 004: the API key is on the profile),
    // which no cache on the way may keep.
    let r = app
        .send(
            "GET",
            "/_mkoba/mpesa/application",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["api_key"], new_key.as_str(), "{v}");
}

#[tokio::test]
async fn the_origin_must_be_one_the_application_allows() {
    let app = TestApp::spawn().await;
    // Every call's Origin is looked up in the list: it is bounded.
    let many: Vec<String> = (0..21).map(|i| format!("https://a{i}.example")).collect();
    let r = app.mpesa_settings(json!({ "allowed_origins": many })).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("at most 20 allowed origins"),
        "{}",
        r.text()
    );
    // Each origin once, whatever its case.
    let r = app
        .mpesa_settings(json!({"allowed_origins": ["https://shop.example", "127.0.0.1", "https://SHOP.example"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["allowed_origins"],
        json!(["https://shop.example", "127.0.0.1"])
    );
    let mut m = app.mpesa().await;
    let refused = m.get_session_with(&m.api_key).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.text(), r#"{"output_error":"Origin not allowed"}"#);
    m.origin = "https://shop.example".to_owned();
    let session = m.session().await;
    m.origin = "127.0.0.1".to_owned();
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    m.origin = "https://other.example".to_owned();
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn every_answer_is_json_without_quotes_in_header_values() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let mut responses = vec![
        m.get_session_with("nope").await,
        m.send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await,
        m.send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&json!({})),
        )
        .await,
        m.send("GET", "c2bPayment/singleStage/", &session, None)
            .await,
        m.send("POST", "noSuchApi/", &session, None).await,
        m.send("POST", "c2bPayment/singleStage/", &session, None)
            .await,
    ];
    responses.push(
        app.send(
            "POST",
            "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            &[
                ("Authorization", "Bearer x"),
                ("Content-Type", "application/json"),
            ],
            Some("{not json"),
        )
        .await,
    );
    for r in &responses {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|v| v.is_object()),
            "{} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        for (name, value) in &r.headers {
            let v = value.to_str().unwrap_or("");
            assert!(!v.contains(['"', '\'']), "{name}: {v}");
        }
    }
    assert_eq!(responses[3].status, 405);
    assert_eq!(responses[4].status, 404);
    assert_eq!(code(&responses[5]), (400, "INS-20".to_owned()));
}

/// HEAD is served wherever GET is (the GET's answer without its body), and said so in
/// `Allow`; an operation without GET refuses it.
#[tokio::test]
async fn head_goes_wherever_get_does() {
    let app = TestApp::spawn().await;
    let m = app.mpesa().await;
    let session = m.session().await;
    // getSession's bearer is the API key.
    let r = m.send("HEAD", "getSession/", &m.api_key, None).await;
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = m
        .send("HEAD", "c2bPayment/singleStage/", &session, None)
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    let r = m
        .send("PUT", "queryTransactionStatus/", &session, None)
        .await;
    assert_eq!(r.status, 405);
    assert!(
        r.header("allow")
            .is_some_and(|a| a.starts_with("GET, HEAD")),
        "{:?}",
        r.header("allow")
    );
}

/// A browser's preflight is answered with what lets it send the call: the method, and the
/// headers it asked for (an `Authorization` and a JSON body), on both gateways.
#[tokio::test]
async fn a_browsers_preflight_lets_the_call_through() {
    let app = TestApp::spawn().await;
    for path in ["/sandbox/ipg/v2/vodacomTZN/reversal/", "/ipg/v1x/reversal/"] {
        let r = app
            .send(
                "OPTIONS",
                path,
                &[
                    ("Origin", "https://shop.example"),
                    ("Access-Control-Request-Method", "PUT"),
                    (
                        "Access-Control-Request-Headers",
                        "authorization, content-type",
                    ),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), "{}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(
            r.header("access-control-allow-methods")
                .is_some_and(|m| m.contains("PUT") && m.contains("POST") && m.contains("GET")),
            "{path}: {:?}",
            r.headers
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("authorization, content-type"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_unknown_market_is_invalid() {
    let app = TestApp::spawn().await;
    let mut m = app.mpesa().await;
    let session = m.session().await;
    m.market = "vodafoneEGY".to_owned();
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(code(&r), (400, "INS-998".to_owned()));
}

/// A burst of garbage bearers (well-formed 512-byte ciphertexts, each a real decryption)
/// never takes the server: past the RSA workers and their queue the answer is `503 INS-16`
/// at once, the health check answers throughout, and a client whose bearer proved valid
/// before is answered from the cache (garbage is never cached, so it cannot flush it).
#[tokio::test]
async fn a_burst_of_garbage_bearers_is_bounded_and_answered_ins_16() {
    let app = TestApp::spawn_with(|s| {
        s.mpesa.rsa = mkoba_mpesa::rsa::RsaLimits {
            workers: 1,
            queue: 2,
        };
    })
    .await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let good = m.bearer(&session);
    // One call proves the bearer valid: it is remembered from now on.
    let c2b = m.c2b("10", "000000000001");
    let auth = format!("Bearer {good}");
    let send = |auth: String, body: String| {
        let http = app.http.clone();
        let url = format!(
            "{}/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/",
            app.base
        );
        async move {
            http.send(
                "POST",
                &url,
                &[("Authorization", &auth), ("Origin", "*")],
                Some(&body),
            )
            .await
        }
    };
    assert_eq!(send(auth.clone(), c2b.to_string()).await.status, 201);
    let garbage: Vec<_> = (0..60)
        .map(|_| {
            let mut block = vec![0u8; 512];
            for b in block.iter_mut().skip(1) {
                *b = rand::random();
            }
            let auth = format!(
                "Bearer {}",
                base64::engine::general_purpose::STANDARD.encode(&block)
            );
            tokio::spawn(send(auth, c2b.to_string()))
        })
        .collect();
    let health = app.send("GET", "/_mkoba/health", &[], None).await;
    assert_eq!(health.status, 200);
    let again = send(auth.clone(), m.c2b("10", "000000000001").to_string()).await;
    assert_eq!(again.status, 201, "the cached bearer: {}", again.text());
    let mut overloaded = 0;
    for h in garbage {
        let r = h.await.unwrap();
        match r.status {
            401 => assert_eq!(r.json()["output_ResponseDesc"], "Invalid Session ID"),
            503 => {
                assert_eq!(r.json()["output_ResponseCode"], "INS-16");
                overloaded += 1;
            }
            s => panic!("{s}: {}", r.text()),
        }
    }
    assert!(overloaded > 0, "the queue was exceeded");
}
