//! The consent flow over HTTP (OIDC CIBA, reference §2.2): `bc-authorize`, `oauth2/token/`,
//! `oauth2/v1_0/userinfo`, under every product, with the sandbox's Oauth2 test numbers.

use base64::Engine as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Partner, Resp, TestApp};

const CIBA: &str = "urn:openid:params:grant-type:ciba";
const FORM: &str = "application/x-www-form-urlencoded";

fn basic(user: Uuid, key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    format!("Basic {encoded}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn hint_body(msisdn: &str) -> String {
    format!("login_hint=ID:{msisdn}/MSISDN&scope=profile&access_type=offline")
}

/// `POST /{product}/v1_0/bc-authorize` with the product's key, the sandbox environment, a
/// form content type and `authorization` (if any), plus `extra`.
async fn bc_authorize_with(
    app: &TestApp,
    product: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut headers = vec![("Ocp-Apim-Subscription-Key", app.key(product))];
    if let Some(a) = authorization {
        headers.push(("Authorization", a));
    }
    if !extra
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type", FORM));
    }
    if !extra
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-target-environment"))
    {
        headers.push(("X-Target-Environment", "sandbox"));
    }
    headers.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    app.send(
        "POST",
        &format!("/{product}/v1_0/bc-authorize"),
        &headers,
        Some(body),
    )
    .await
}

async fn bc_authorize(app: &TestApp, product: &str, authorization: &str, body: &str) -> Resp {
    bc_authorize_with(app, product, Some(authorization), &[], body).await
}

/// `POST /{product}/oauth2/token/` in the sandbox, with `authorization` (if any).
async fn oauth2_token_with(
    app: &TestApp,
    product: &str,
    path: &str,
    authorization: Option<&str>,
    environment: Option<&str>,
    body: &str,
) -> Resp {
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", app.key(product)),
        ("Content-Type", FORM),
    ];
    if let Some(a) = authorization {
        headers.push(("Authorization", a));
    }
    if let Some(e) = environment {
        headers.push(("X-Target-Environment", e));
    }
    app.send("POST", &format!("/{product}{path}"), &headers, Some(body))
        .await
}

async fn oauth2_token(app: &TestApp, product: &str, p: &Partner, body: &str) -> Resp {
    oauth2_token_with(
        app,
        product,
        "/oauth2/token/",
        Some(&basic(p.user, &p.key)),
        Some("sandbox"),
        body,
    )
    .await
}

async fn ciba_token(app: &TestApp, product: &str, p: &Partner, auth_req_id: &str) -> Resp {
    oauth2_token(
        app,
        product,
        p,
        &format!("grant_type={CIBA}&auth_req_id={auth_req_id}"),
    )
    .await
}

/// The refresh grant with `token`, for the collection product.
async fn refresh_grant(app: &TestApp, p: &Partner, token: &str) -> Resp {
    oauth2_token(
        app,
        "collection",
        p,
        &format!("grant_type=refresh_token&refresh_token={token}"),
    )
    .await
}

/// `GET /{product}/oauth2/v1_0/userinfo` with `authorization` (if any).
async fn userinfo_with(
    app: &TestApp,
    product: &str,
    authorization: Option<&str>,
    environment: Option<&str>,
) -> Resp {
    let mut headers = vec![("Ocp-Apim-Subscription-Key", app.key(product))];
    if let Some(a) = authorization {
        headers.push(("Authorization", a));
    }
    if let Some(e) = environment {
        headers.push(("X-Target-Environment", e));
    }
    app.send(
        "GET",
        &format!("/{product}/oauth2/v1_0/userinfo"),
        &headers,
        None,
    )
    .await
}

async fn userinfo(app: &TestApp, product: &str, token: &str) -> Resp {
    userinfo_with(app, product, Some(&bearer(token)), Some("sandbox")).await
}

/// An `auth_req_id` for `msisdn`, asked with Basic credentials.
async fn auth_req_id(app: &TestApp, product: &str, p: &Partner, msisdn: &str) -> String {
    let r = bc_authorize(app, product, &basic(p.user, &p.key), &hint_body(msisdn)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["auth_req_id"]
        .as_str()
        .expect("auth_req_id")
        .to_owned()
}

/// The token answer of a granted consent for `msisdn`.
async fn consent(app: &TestApp, product: &str, p: &Partner, msisdn: &str) -> Value {
    let id = auth_req_id(app, product, p, msisdn).await;
    let r = ciba_token(app, product, p, &id).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn assert_oauth_error(r: &Resp, error: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"], error, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{v}"
    );
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
}

fn assert_code(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["code"], code, "{}", r.text());
}

fn assert_sandbox_identity(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    let mut v = r.json();
    let updated_at = v["updated_at"].as_i64().expect("updated_at");
    let now = mkoba_platform::clock::system_now_ms() / 1000;
    assert!((now - 5..=now + 5).contains(&updated_at), "{v}");
    v.as_object_mut().unwrap().remove("updated_at");
    assert_eq!(
        v,
        json!({"sub":"0","name":"Sand Box","given_name":"Sand","family_name":"Box","birthdate":"1976-08-13","locale":"sv_SE","gender":"MALE"})
    );
}

/// A partner with a token for `product` instead of collection.
async fn partner_for(app: &TestApp, product: &str) -> Partner {
    let p = app.partner("clinic.com").await;
    let token = app.token(product, p.user, &p.key).await;
    Partner { token, ..p }
}

#[tokio::test]
async fn collection_consent_with_a_bearer_token_gives_the_sandbox_identity() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize(
        &app,
        "collection",
        &bearer(&p.token),
        "login_hint=ID:56733123453/MSISDN&scope=profile&access_type=online",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["interval"], 5, "{v}");
    assert_eq!(v["expires_in"], 300, "{v}");
    let id = v["auth_req_id"].as_str().expect("auth_req_id");
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");

    let r = ciba_token(&app, "collection", &p, id).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["expires_in"], 3600, "{t}");
    assert_eq!(t["scope"], "profile", "{t}");
    assert_eq!(t["refresh_token_expired_in"], 86_400, "{t}");
    assert!(t["refresh_token"].as_str().is_some_and(|s| !s.is_empty()));
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{t}");
    // JWTs as MTN's are (they were two parts with times in ms): a client that decodes one
    // to read `exp` finds seconds.
    for name in ["access_token", "refresh_token"] {
        let token = t[name].as_str().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}: {token}");
        let decode = |part: &str| -> Value {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_eq!(decode(parts[0]), json!({"typ": "JWT", "alg": "R256"}));
        let claims = decode(parts[1]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!(
            (iat - now).abs() < 600,
            "{name}: iat {iat} in seconds, now {now}"
        );
        let lasts = if name == "access_token" { 3600 } else { 86_400 };
        assert!((exp - iat - lasts).abs() <= 1, "{name}: {claims}");
        assert_eq!(claims["cid"], p.user.to_string(), "{claims}");
    }

    let r = userinfo(&app, "collection", t["access_token"].as_str().unwrap()).await;
    assert_sandbox_identity(&r);
}

#[tokio::test]
async fn disbursement_consent_with_basic_credentials_works_end_to_end() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize(
        &app,
        "disbursement",
        &basic(p.user, &p.key),
        "login_hint=ID:256774290781/MSISDN&scope=profile",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    // The token path without its trailing slash is served too.
    let r = oauth2_token_with(
        &app,
        "disbursement",
        "/oauth2/token",
        Some(&basic(p.user, &p.key)),
        Some("sandbox"),
        &format!("grant_type={CIBA}&auth_req_id={id}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_sandbox_identity(&userinfo(&app, "disbursement", &token).await);
}

#[tokio::test]
async fn disbursement_consent_accepts_the_products_bearer_token() {
    let app = TestApp::spawn().await;
    let p = partner_for(&app, "disbursement").await;
    let r = bc_authorize(
        &app,
        "disbursement",
        &bearer(&p.token),
        &hint_body("256774290781"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    let r = ciba_token(&app, "disbursement", &p, &id).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn remittance_consent_accepts_a_json_body() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize_with(
        &app,
        "remittance",
        Some(&basic(p.user, &p.key)),
        &[("Content-Type", "application/json")],
        r#"{"login_hint":"ID:256774290781/MSISDN","scope":"profile","access_type":"offline","consent_valid_in":600}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    let r = app
        .send(
            "POST",
            "/remittance/oauth2/token/",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("remittance")),
                ("Authorization", &basic(p.user, &p.key)),
                ("X-Target-Environment", "sandbox"),
                ("Content-Type", "application/json"),
            ],
            Some(&json!({"grant_type": CIBA, "auth_req_id": id}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["refresh_token_expired_in"], 600);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_sandbox_identity(&userinfo(&app, "remittance", &token).await);
}

#[tokio::test]
async fn form_fields_are_percent_and_plus_decoded() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize(
        &app,
        "collection",
        &bearer(&p.token),
        "login_hint=ID%3A46733123454%2Fmsisdn&scope=profile+all_info&access_type=offline",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    // The auth_req_id itself percent-encoded still works.
    let encoded = id.replace('.', "%2E");
    let r = ciba_token(&app, "collection", &p, &encoded).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "profile all_info");
}

#[tokio::test]
async fn refresh_token_grant_issues_a_new_access_token_for_the_same_consent() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let first = consent(&app, "collection", &p, "256774290781").await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let r = refresh_grant(&app, &p, refresh).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json();
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(second["scope"], "profile");
    assert_ne!(second["access_token"], first["access_token"]);
    let left = second["refresh_token_expired_in"].as_i64().unwrap();
    assert!((86_398..=86_400).contains(&left), "{second}");
    assert_sandbox_identity(
        &userinfo(&app, "collection", second["access_token"].as_str().unwrap()).await,
    );
    // The new refresh token refreshes too.
    let again = second["refresh_token"].as_str().unwrap();
    let r = refresh_grant(&app, &p, again).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// An `auth_req_id` is exchanged for tokens once: a second exchange is `invalid_grant`
/// (it would renew a consent without the account holder), while its refresh token goes on
/// working. The server remembers it across a restart.
#[tokio::test]
async fn an_auth_req_id_is_exchanged_once() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let first = ciba_token(&app, "collection", &p, &id).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let again = ciba_token(&app, "collection", &p, &id).await;
    assert_oauth_error(&again, "invalid_grant");
    assert!(
        again.text().contains("already been exchanged"),
        "{}",
        again.text()
    );
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh_grant(&app, &p, &refresh).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Another one exchanged just before a restart is still used after it.
    let other = auth_req_id(&app, "collection", &p, "256774290781").await;
    assert_eq!(ciba_token(&app, "collection", &p, &other).await.status, 200);
    let app = app.restart(|_| {}).await;
    for id in [&id, &other] {
        let again = ciba_token(&app, "collection", &p, id).await;
        assert_oauth_error(&again, "invalid_grant");
        assert!(
            again.text().contains("already been exchanged"),
            "{}",
            again.text()
        );
    }
    let fresh = auth_req_id(&app, "collection", &p, "256774290781").await;
    assert_eq!(ciba_token(&app, "collection", &p, &fresh).await.status, 200);
}

#[tokio::test]
async fn offline_consent_valid_in_sets_the_refresh_token_lifetime() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize(
        &app,
        "collection",
        &bearer(&p.token),
        "login_hint=ID:256774290781/MSISDN&scope=profile&access_type=offline&consent_valid_in=120",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    let r = ciba_token(&app, "collection", &p, &id).await;
    assert_eq!(r.json()["refresh_token_expired_in"], 120, "{}", r.text());
}

#[tokio::test]
async fn bc_authorize_refuses_missing_or_invalid_credentials() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let other = app.partner("clinic.com").await;
    let disbursement_token = app.token("disbursement", p.user, &p.key).await;
    let oauth2 = consent(&app, "collection", &p, "256774290781").await;
    let oauth2_token = oauth2["access_token"].as_str().unwrap();
    let body = hint_body("256774290781");

    let r = bc_authorize_with(&app, "collection", None, &[], &body).await;
    assert_code(&r, 401, "UNAUTHORIZED");
    let cases = [
        ("wrong key", basic(p.user, &other.key)),
        ("unknown user", basic(Uuid::new_v4(), &p.key)),
        ("garbled basic", "Basic !!!not-base64".to_owned()),
        ("garbage bearer", bearer("abc.def.ghi")),
        ("other product's token", bearer(&disbursement_token)),
        ("oauth2 access token", bearer(oauth2_token)),
        ("unknown scheme", format!("Token {}", p.token)),
    ];
    for (what, authorization) in cases {
        let r = bc_authorize(&app, "collection", &authorization, &body).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let v = r.json();
        assert_eq!(v["code"], "UNAUTHORIZED", "{what}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("Authentication failed. Credentials not valid"),
            "{what}: {v}"
        );
    }
}

#[tokio::test]
async fn bc_authorize_needs_the_subscription_key_of_the_product() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = app
        .send(
            "POST",
            "/disbursement/v1_0/bc-authorize",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", &basic(p.user, &p.key)),
                ("X-Target-Environment", "sandbox"),
            ],
            Some(&hint_body("256774290781")),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["statusCode"], 401);
}

#[tokio::test]
async fn bc_authorize_checks_the_target_environment() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let body = hint_body("256774290781");
    let auth = bearer(&p.token);
    let r = bc_authorize_with(
        &app,
        "collection",
        Some(&auth),
        &[("X-Target-Environment", "")],
        &body,
    )
    .await;
    assert_code(&r, 400, "BAD_REQUEST");
    let r = bc_authorize_with(
        &app,
        "collection",
        Some(&auth),
        &[("X-Target-Environment", "mtnuganda")],
        &body,
    )
    .await;
    assert_code(&r, 500, "NOT_ALLOWED_TARGET_ENVIRONMENT");
}

#[tokio::test]
async fn bc_authorize_checks_the_callback_host() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let body = hint_body("256774290781");
    let auth = bearer(&p.token);
    let r = bc_authorize_with(
        &app,
        "collection",
        Some(&auth),
        &[("X-Callback-Url", "https://evil.example/cb")],
        &body,
    )
    .await;
    assert_code(&r, 500, "INVALID_CALLBACK_URL_HOST");
    let r = bc_authorize_with(
        &app,
        "collection",
        Some(&auth),
        &[("X-Callback-Url", "https://clinic.com/consent")],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn bc_authorize_refuses_malformed_or_invalid_bodies_with_400() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let auth = bearer(&p.token);
    let cases = [
        (
            "bad escape",
            "login_hint=ID%ZZ46733123454/MSISDN&scope=profile",
        ),
        (
            "truncated escape",
            "login_hint=ID:46733123454/MSISDN&scope=profile%2",
        ),
        ("not utf-8", "login_hint=ID:46733123454/MSISDN&scope=%FF"),
        (
            "repeated field",
            "login_hint=ID:46733123454/MSISDN&scope=a&scope=b",
        ),
        ("broken json", r#"{"login_hint": "#),
        (
            "json array-valued field",
            r#"{"login_hint":["x"],"scope":"profile"}"#,
        ),
        ("empty body", ""),
        ("no login_hint", "scope=profile"),
        ("no scope", "login_hint=ID:46733123454/MSISDN"),
        ("blank scope", "login_hint=ID:46733123454/MSISDN&scope=+"),
        ("bare msisdn", "login_hint=46733123454&scope=profile"),
        ("no id type", "login_hint=ID:46733123454&scope=profile"),
        (
            "unknown id type",
            "login_hint=ID:46733123454/PHONE&scope=profile",
        ),
        (
            "bad msisdn",
            "login_hint=ID:%2B46733123454/MSISDN&scope=profile",
        ),
        (
            "bad scope token",
            "login_hint=ID:46733123454/MSISDN&scope=pro%22file",
        ),
        (
            "bad access type",
            "login_hint=ID:46733123454/MSISDN&scope=profile&access_type=forever",
        ),
        (
            "consent_valid_in online",
            "login_hint=ID:46733123454/MSISDN&scope=profile&access_type=online&consent_valid_in=60",
        ),
        (
            "consent_valid_in not a number",
            "login_hint=ID:46733123454/MSISDN&scope=profile&access_type=offline&consent_valid_in=soon",
        ),
        (
            "consent_valid_in zero",
            "login_hint=ID:46733123454/MSISDN&scope=profile&access_type=offline&consent_valid_in=0",
        ),
        (
            "scope_instruction not base64",
            "login_hint=ID:46733123454/MSISDN&scope=profile&scope_instruction=%21%21",
        ),
    ];
    // Unrecognised parameters are ignored (RFC 6749 §3.1), even a nameless or repeated one.
    let r = bc_authorize(
        &app,
        "collection",
        &auth,
        "=x&y=1&y=2&login_hint=ID:46733123454/MSISDN&scope=profile",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for (what, body) in cases {
        let r = bc_authorize(&app, "collection", &auth, body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json;charset=utf-8"),
            "{what}"
        );
        let v = r.json();
        assert_eq!(v["code"], "BAD_REQUEST", "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // Optional fields in their valid forms are accepted.
    let r = bc_authorize(
        &app,
        "collection",
        &auth,
        "login_hint=ID:46733123454/MSISDN&scope=profile&access_type=offline&consent_valid_in=60&client_notification_token=abc&scope_instruction=eyJhIjoxfQ%3D%3D",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Fields that travel in every token have a length: past it, a 400 that quotes none of
    // the field (a 1 MB scope made tokens too large for a header; a long hint was echoed).
    let long = "x".repeat(100_000);
    for (what, body, says) in [
        (
            "long scope",
            format!("login_hint=ID:46733123454/MSISDN&scope={}", "a".repeat(257)),
            "scope is longer than 256 characters",
        ),
        (
            "long login_hint",
            format!("login_hint=ID:{long}/MSISDN&scope=profile"),
            "login_hint is longer than 270 characters",
        ),
        (
            "long scope_instruction",
            format!("login_hint=ID:46733123454/MSISDN&scope=profile&scope_instruction={long}"),
            "scope_instruction is longer than 4096 characters",
        ),
    ] {
        let r = bc_authorize(&app, "collection", &auth, &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.text().contains(says), "{what}: {}", r.text());
        assert!(r.text().len() < 200, "{what}: the answer quotes the field");
    }
    let scope = ["profile"; 32].join(" ");
    let r = bc_authorize(
        &app,
        "collection",
        &auth,
        &format!("login_hint=ID:46733123454/MSISDN&scope={scope}"),
    )
    .await;
    assert_eq!(r.status, 200, "a 255-character scope: {}", r.text());
}

#[tokio::test]
async fn bc_authorize_answers_404_for_the_not_found_account_holder() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let r = bc_authorize(
        &app,
        "collection",
        &bearer(&p.token),
        &hint_body("46733123450"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"code":"RESOURCE_NOT_FOUND","message":"Requested resource was not found."})
    );
}

#[tokio::test]
async fn consent_scenarios_follow_the_sandbox_test_numbers() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let cases = [
        ("46733123451", "access_denied"),
        ("46733123452", "authorization_pending"),
        ("46733123453", "expired_token"),
        ("46733123455", "invalid_grant"),
        ("46733123456", "invalid_scope"),
        ("46733123457", "invalid_grant"),
        ("46733123458", "access_denied"),
        ("46733123459", "access_denied"),
        ("46733123460", "access_denied"),
        ("46733123461", "access_denied"),
        ("46733123462", "access_denied"),
    ];
    for (msisdn, error) in cases {
        let id = auth_req_id(&app, "collection", &p, msisdn).await;
        let r = ciba_token(&app, "collection", &p, &id).await;
        assert_eq!(r.status, 400, "{msisdn}: {}", r.text());
        assert_eq!(r.json()["error"], error, "{msisdn}: {}", r.text());
        assert_oauth_error(&r, error);
    }
    let r = ciba_token(
        &app,
        "collection",
        &p,
        &auth_req_id(&app, "collection", &p, "46733123458").await,
    )
    .await;
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("NOT_ENOUGH_FUNDS")
    );
    // Numbers outside the Oauth2 column consent at once.
    for msisdn in ["46733123463", "56733123453", "256774290781"] {
        let t = consent(&app, "collection", &p, msisdn).await;
        assert_eq!(t["token_type"], "Bearer", "{msisdn}");
    }
}

#[tokio::test]
async fn consent_pending_answers_authorization_pending_on_every_poll() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let id = auth_req_id(&app, "collection", &p, "46733123452").await;
    for _ in 0..3 {
        let r = ciba_token(&app, "collection", &p, &id).await;
        assert_oauth_error(&r, "authorization_pending");
    }
}

#[tokio::test]
async fn consent_expired_refresh_token_grants_once_but_cannot_be_refreshed() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let t = consent(&app, "collection", &p, "46733123454").await;
    assert_eq!(t["refresh_token_expired_in"], 0, "{t}");
    assert_sandbox_identity(
        &userinfo(&app, "collection", t["access_token"].as_str().unwrap()).await,
    );
    let refresh = t["refresh_token"].as_str().unwrap();
    let r = refresh_grant(&app, &p, refresh).await;
    assert_oauth_error(&r, "invalid_grant");
}

#[tokio::test]
async fn outside_the_sandbox_test_numbers_consent_at_once() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            Some(r#"{"providerCallbackHost":"shop.ug","targetEnvironment":"mtnuganda"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let user = Uuid::parse_str(v["apiUser"].as_str().unwrap()).unwrap();
    let key = v["apiKey"].as_str().unwrap().to_owned();
    for msisdn in ["46733123450", "46733123451"] {
        let r = bc_authorize_with(
            &app,
            "collection",
            Some(&basic(user, &key)),
            &[("X-Target-Environment", "mtnuganda")],
            &hint_body(msisdn),
        )
        .await;
        assert_eq!(r.status, 200, "{msisdn}: {}", r.text());
        let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
        let r = oauth2_token_with(
            &app,
            "collection",
            "/oauth2/token/",
            Some(&basic(user, &key)),
            Some("mtnuganda"),
            &format!("grant_type={CIBA}&auth_req_id={id}"),
        )
        .await;
        assert_eq!(r.status, 200, "{msisdn}: {}", r.text());
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let r = userinfo_with(&app, "collection", Some(&bearer(&token)), Some("mtnuganda")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // The sandbox header is refused for a market user.
        let r = userinfo_with(&app, "collection", Some(&bearer(&token)), Some("sandbox")).await;
        assert_code(&r, 500, "NOT_ALLOWED_TARGET_ENVIRONMENT");
    }
}

#[tokio::test]
async fn oauth2_token_refuses_bad_credentials_with_login_failed() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let other = app.partner("clinic.com").await;
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let body = format!("grant_type={CIBA}&auth_req_id={id}");
    let cases = [
        ("none", None),
        ("wrong key", Some(basic(p.user, &other.key))),
        ("unknown user", Some(basic(Uuid::new_v4(), &p.key))),
        ("bearer access token", Some(bearer(&p.token))),
        ("garbled basic", Some("Basic:abc".to_owned())),
    ];
    for (what, authorization) in cases {
        let r = oauth2_token_with(
            &app,
            "collection",
            "/oauth2/token/",
            authorization.as_deref(),
            Some("sandbox"),
            &body,
        )
        .await;
        assert_eq!(r.status, 500, "{what}: {}", r.text());
        assert_eq!(r.json(), json!({"error":"login_failed"}), "{what}");
    }
}

#[tokio::test]
async fn oauth2_token_and_userinfo_require_x_target_environment() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let r = oauth2_token_with(
        &app,
        "collection",
        "/oauth2/token/",
        Some(&basic(p.user, &p.key)),
        None,
        &format!("grant_type={CIBA}&auth_req_id={id}"),
    )
    .await;
    assert_code(&r, 400, "BAD_REQUEST");
    let r = oauth2_token_with(
        &app,
        "collection",
        "/oauth2/token/",
        Some(&basic(p.user, &p.key)),
        Some("mtnghana"),
        &format!("grant_type={CIBA}&auth_req_id={id}"),
    )
    .await;
    assert_code(&r, 500, "NOT_ALLOWED_TARGET_ENVIRONMENT");

    let t = consent(&app, "collection", &p, "256774290781").await;
    let token = t["access_token"].as_str().unwrap();
    let r = userinfo_with(&app, "collection", Some(&bearer(token)), None).await;
    assert_code(&r, 400, "BAD_REQUEST");
}

#[tokio::test]
async fn oauth2_token_refuses_malformed_bodies_and_unknown_grants() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let cases = [
        ("empty body", "".to_owned(), "invalid_request"),
        (
            "no grant_type",
            "auth_req_id=x".to_owned(),
            "invalid_request",
        ),
        (
            "client credentials",
            "grant_type=client_credentials".to_owned(),
            "unsupported_grant_type",
        ),
        (
            "authorization code",
            "grant_type=authorization_code&code=x".to_owned(),
            "unsupported_grant_type",
        ),
        (
            "ciba without id",
            format!("grant_type={CIBA}"),
            "invalid_request",
        ),
        (
            "refresh without token",
            "grant_type=refresh_token".to_owned(),
            "invalid_request",
        ),
        ("bad escape", "grant_type=%G1".to_owned(), "invalid_request"),
        (
            "repeated field",
            format!("grant_type={CIBA}&grant_type=refresh_token"),
            "invalid_request",
        ),
        (
            "broken json",
            r#"{"grant_type":"#.to_owned(),
            "invalid_request",
        ),
    ];
    for (what, body, error) in cases {
        let r = oauth2_token(&app, "collection", &p, &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], error, "{what}: {}", r.text());
        assert_oauth_error(&r, error);
    }
}

#[tokio::test]
async fn oauth2_token_refuses_unknown_tampered_or_foreign_auth_req_ids() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let other = app.partner("clinic.com").await;
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let mut tampered = id.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refresh = consent(&app, "collection", &p, "256774290781").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let unknown = Uuid::new_v4().to_string();
    for (what, candidate) in [
        ("unknown", unknown.as_str()),
        ("tampered", tampered.as_str()),
        ("a refresh token", refresh.as_str()),
        ("the normal access token", p.token.as_str()),
    ] {
        let r = ciba_token(&app, "collection", &p, candidate).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_oauth_error(&r, "invalid_grant");
    }
    // Another API user of the same developer.
    let r = ciba_token(&app, "collection", &other, &id).await;
    assert_oauth_error(&r, "invalid_grant");
    // The same API user on another product.
    let r = ciba_token(&app, "disbursement", &p, &id).await;
    assert_oauth_error(&r, "invalid_grant");
    // Still good for its owner.
    let r = ciba_token(&app, "collection", &p, &id).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn refresh_grant_refuses_unknown_or_foreign_refresh_tokens() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let other = app.partner("clinic.com").await;
    let t = consent(&app, "collection", &p, "256774290781").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let access = t["access_token"].as_str().unwrap();
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let body = |token: &str| format!("grant_type=refresh_token&refresh_token={token}");
    for (what, token) in [
        ("unknown", Uuid::new_v4().to_string()),
        ("an auth_req_id", id.clone()),
        ("an oauth2 access token", access.to_owned()),
    ] {
        let r = oauth2_token(&app, "collection", &p, &body(&token)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_oauth_error(&r, "invalid_grant");
    }
    let r = oauth2_token(&app, "collection", &other, &body(refresh)).await;
    assert_oauth_error(&r, "invalid_grant");
    let r = oauth2_token(&app, "remittance", &p, &body(refresh)).await;
    assert_oauth_error(&r, "invalid_grant");
}

#[tokio::test]
async fn an_expired_auth_req_id_or_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let past = mkoba_platform::clock::system_now_ms() - 1000;
    let claims = json!({
        "usr": p.user.to_string(), "prd": "collection", "idt": "MSISDN", "id": "256774290781",
        "scp": "profile", "off": false, "cvi": 86_400, "iat": past - 300_000, "exp": past,
        "jti": Uuid::new_v4().to_string(),
    });
    let id = app
        .running
        .platform
        .credentials()
        .sign_claims("ciba-auth-req", &claims);
    let r = ciba_token(&app, "collection", &p, &id).await;
    assert_oauth_error(&r, "expired_token");
    let refresh = app
        .running
        .platform
        .credentials()
        .sign_claims("oauth2-refresh", &claims);
    let r = refresh_grant(&app, &p, &refresh).await;
    assert_oauth_error(&r, "invalid_grant");
}

#[tokio::test]
async fn userinfo_refuses_anything_but_a_valid_oauth2_access_token_of_the_product() {
    let app = TestApp::spawn().await;
    let p = app.partner("clinic.com").await;
    let t = consent(&app, "collection", &p, "256774290781").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let id = auth_req_id(&app, "collection", &p, "256774290781").await;
    let expired = app.running.platform.credentials().sign_claims(
        "oauth2-access",
        &json!({
            "usr": p.user.to_string(), "prd": "collection", "idt": "MSISDN",
            "id": "256774290781", "scp": "profile", "exp": mkoba_platform::clock::system_now_ms() - 1,
        }),
    );
    let mut tampered = access.to_owned().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let r = userinfo_with(&app, "collection", None, Some("sandbox")).await;
    assert_code(&r, 401, "UNAUTHORIZED");
    for (what, authorization) in [
        ("the normal access token", bearer(&p.token)),
        ("a refresh token", bearer(refresh)),
        ("an auth_req_id", bearer(&id)),
        ("an expired oauth2 token", bearer(&expired)),
        ("a tampered oauth2 token", bearer(&tampered)),
        ("basic credentials", basic(p.user, &p.key)),
    ] {
        let r = userinfo_with(&app, "collection", Some(&authorization), Some("sandbox")).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["code"], "UNAUTHORIZED", "{what}: {}", r.text());
    }
    // An oauth2 token of collection on disbursement.
    let r = userinfo(&app, "disbursement", access).await;
    assert_code(&r, 401, "UNAUTHORIZED");
    // And the oauth2 token is no access token for the product's other operations.
    let r = app
        .send(
            "GET",
            "/collection/v1_0/account/balance",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", &bearer(access)),
                ("X-Target-Environment", "sandbox"),
            ],
            None,
        )
        .await;
    assert_code(&r, 401, "UNAUTHORIZED");
    // Still good where it belongs.
    assert_sandbox_identity(&userinfo(&app, "collection", access).await);
}
