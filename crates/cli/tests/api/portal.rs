//! The developer portal over HTTP: sign-up and sign-in, sessions, CSRF refusal, developer
//! isolation, subscriptions, API keys, the virtual phone, callback re-sends, and that no
//! key, password or session id ever reaches the logs.

use std::collections::HashMap;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

use crate::helpers::{Http, Resp, Sink, TestApp, rtp_body, wait_for};

/// A cookie-keeping client that speaks to the portal like a browser without JavaScript.
pub struct Browser {
    base: String,
    http: Http,
    pub(crate) cookies: HashMap<String, String>,
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of the first link in a page that starts with `prefix` (after any origin).
pub fn link_in(html: &str, prefix: &str) -> Option<String> {
    let at = html.find(prefix)?;
    let rest = &html[at..];
    let end = rest.find(['"', '<', ' ', '\n']).unwrap_or(rest.len());
    Some(rest[..end].replace("&amp;", "&"))
}

/// The 6-digit code of the newest SMS on a page.
pub fn sms_code(html: &str) -> Option<String> {
    let at = html.find("verification code is ")? + "verification code is ".len();
    Some(html[at..at + 6].to_owned())
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            http: Http::new(),
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, r: &Resp) {
        for v in r.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let r = self.try_get(path).await.expect("server answered");
        self.keep(&r);
        r
    }

    /// [`Browser::get`] of an answer that may not come whole (a download cut): `None` then.
    pub async fn try_get(&mut self, path: &str) -> Option<Resp> {
        let cookie = self.cookie_header();
        self.http
            .try_send(
                "GET",
                &format!("{}{path}", self.base),
                &[("Cookie", &cookie)],
                None,
            )
            .await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        self.post_encoded(path, &body.join("&")).await
    }

    /// POSTs a form body encoded by the caller (say, with bytes that are not UTF-8).
    pub async fn post_encoded(&mut self, path: &str, body: &str) -> Resp {
        let cookie = self.cookie_header();
        let r = self
            .http
            .send(
                "POST",
                &format!("{}{path}", self.base),
                &[
                    ("Cookie", &cookie),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                Some(body),
            )
            .await;
        self.keep(&r);
        r
    }

    /// GETs `page` for its CSRF token, then POSTs the form with it.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let r = self.get(page).await;
        assert_eq!(r.status, 200, "{page}: {}", r.text());
        let csrf = csrf_of(&r.text());
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Signs up and goes through the account journey (activation mail, phone step): the
    /// browser ends signed in to an active account.
    pub async fn sign_up(&mut self, email: &str) -> Resp {
        let r = self
            .submit(
                "/portal/signup",
                "/portal/signup",
                &[
                    ("name", "Ada Developer"),
                    ("email", email),
                    ("password", "a long password"),
                    ("password2", "a long password"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        self.activate(email, "a long password").await
    }

    /// The account journey after sign-up: the activation link from the sandbox mailbox,
    /// sign-in, a phone number, the code from the virtual phone. Returns the welcome page
    /// the code's form redirects to, which shows the M-Pesa API key.
    pub async fn activate(&mut self, email: &str, password: &str) -> Resp {
        let mailbox = self.get("/portal/mail").await.text();
        let link = link_in(&mailbox, "/portal/activate?t=").expect("the activation mail");
        let r = self.get(&link).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = self.sign_in(email, password).await;
        assert_eq!(
            r.header("location"),
            Some("/portal/welcome"),
            "{}",
            r.text()
        );
        let r = self
            .submit(
                "/portal/welcome",
                "/portal/welcome/phone",
                &[("phone", "+255 712 345 678")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        let code = sms_code(&self.get("/portal/welcome").await.text()).expect("the SMS");
        let r = self
            .submit(
                "/portal/welcome",
                "/portal/welcome/code",
                &[("code", &code)],
            )
            .await;
        assert_eq!(
            r.header("location"),
            Some("/portal/welcome/done"),
            "{}",
            r.text()
        );
        let r = self.get("/portal/welcome/done").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("data-testid=\"mpesa-api-key\""));
        r
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Resp {
        self.submit(
            "/portal/signin",
            "/portal/signin",
            &[
                ("email", email),
                ("password", password),
                ("next", "/portal"),
            ],
        )
        .await
    }

    /// Subscribes to a product and returns its primary key as the overview shows it.
    pub async fn subscribe(&mut self, product: &str) -> String {
        let r = self
            .submit("/portal", &format!("/portal/subscriptions/{product}"), &[])
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        // The page it returns to names the product subscribed to.
        let to = r.header("location").unwrap().to_owned();
        assert_eq!(to, format!("/portal?done=subscribed-{product}"));
        let page = self.get(&to).await.text();
        assert!(
            page.contains("<p class=\"notice\" role=\"status\">Subscribed to "),
            "{page}"
        );
        self.primary_key(product).await
    }

    pub async fn primary_key(&mut self, product: &str) -> String {
        let html = self.get("/portal").await.text();
        let marker = format!("data-testid=\"key-{product}-primary\">");
        let at = html.find(&marker).expect("the key is shown");
        html[at + marker.len()..at + marker.len() + 32].to_owned()
    }

    /// Creates a sandbox API user in the portal; returns its id and key.
    pub async fn create_api_user(&mut self, host: &str) -> (Uuid, String) {
        let r = self
            .submit(
                "/portal/apiusers",
                "/portal/apiusers",
                &[("host", host), ("environment", "sandbox")],
            )
            .await;
        // Post/redirect/get: the user's page shows the new key once.
        assert_eq!(r.status, 303, "{}", r.text());
        let r = self.get(r.header("location").unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let html = r.text();
        let marker = "data-testid=\"new-api-key\">";
        let at = html.find(marker).expect("the new key is shown once");
        let key = html[at + marker.len()..at + marker.len() + 32].to_owned();
        let id_at = html.find("/portal/apiusers/").unwrap() + "/portal/apiusers/".len();
        let id = Uuid::parse_str(&html[id_at..id_at + 36]).unwrap();
        (id, key)
    }
}

/// A token for a portal-made API user.
async fn token(app: &TestApp, subscription: &str, user: Uuid, key: &str) -> Resp {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    app.send(
        "POST",
        "/collection/token/",
        &[
            ("Ocp-Apim-Subscription-Key", subscription),
            ("Authorization", &format!("Basic {basic}")),
        ],
        None,
    )
    .await
}

async fn request_to_pay(
    app: &TestApp,
    subscription: &str,
    token: &str,
    msisdn: &str,
    callback: Option<&str>,
) -> Uuid {
    let reference = Uuid::new_v4();
    let bearer = format!("Bearer {token}");
    let reference_s = reference.to_string();
    let mut headers = vec![
        ("Ocp-Apim-Subscription-Key", subscription),
        ("Authorization", bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
        ("X-Reference-Id", reference_s.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(c) = callback {
        headers.push(("X-Callback-Url", c));
    }
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &headers,
            Some(&rtp_body("25", msisdn)),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    reference
}

async fn status(
    app: &TestApp,
    subscription: &str,
    token: &str,
    reference: Uuid,
) -> serde_json::Value {
    let r = app
        .send(
            "GET",
            &format!("/collection/v1_0/requesttopay/{reference}"),
            &[
                ("Ocp-Apim-Subscription-Key", subscription),
                ("Authorization", &format!("Bearer {token}")),
                ("X-Target-Environment", "sandbox"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// A signed-up developer with a collection subscription, an API user and a token.
struct Dev {
    browser: Browser,
    key: String,
    user: Uuid,
    api_key: String,
    token: String,
}

async fn developer(app: &TestApp, email: &str) -> Dev {
    let mut browser = Browser::new(&app.base);
    browser.sign_up(email).await;
    let key = browser.subscribe("collection").await;
    let (user, api_key) = browser.create_api_user("127.0.0.1").await;
    let r = token(app, &key, user, &api_key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    Dev {
        browser,
        key,
        user,
        api_key,
        token,
    }
}

#[tokio::test]
async fn pages_need_a_session_and_send_visitors_to_sign_in() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.base);
    for page in [
        "/portal",
        "/portal/apiusers",
        "/portal/mpesa",
        "/portal/transactions",
        "/portal/reports",
        "/portal/phone",
        "/portal/docs",
    ] {
        let r = b.get(page).await;
        assert_eq!(r.status, 303, "{page}");
        let to = r.header("location").unwrap();
        assert!(to.starts_with("/portal/signin?next="), "{page} → {to}");
    }
    let r = b
        .post("/portal/subscriptions/collection", &[("csrf", "x")])
        .await;
    assert_eq!(r.status, 303, "a POST without a session is sent to sign in");
    let r = b.get("/portal/signin").await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_sandbox_developer_signs_in_with_the_printed_credentials_and_signs_out() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    let r = b.sign_in(&login.email, "wrong password").await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("do not match"));
    // The refusal is about the pair: both fields say so, and the e-mail is kept.
    for field in ["email", "password"] {
        assert!(
            crate::helpers::marked_invalid(&r.text(), field),
            "{field}: {}",
            r.text()
        );
    }
    assert!(r.text().contains(&format!("value=\"{}\"", login.email)));
    let r = b
        .sign_in(&login.email.to_uppercase(), &login.password)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "Secure is off for http://127.0.0.1"
    );
    let page = b.get("/portal").await;
    assert_eq!(page.status, 200);
    // The sandbox developer's subscription keys are the ones printed at start.
    assert!(page.text().contains(app.key("collection")));
    let r = b.submit("/portal", "/portal/signout", &[]).await;
    assert_eq!(r.status, 303);
    // The sign-in page says so.
    let to = r.header("location").unwrap().to_owned();
    assert_eq!(to, "/portal/signin?done=signedout");
    assert!(b.get(&to).await.text().contains("You are signed out."));
    assert_eq!(b.get("/portal").await.status, 303, "signed out");
}

#[tokio::test]
async fn the_secure_flag_is_set_when_configured() {
    let app = TestApp::spawn_with(|s| s.portal.secure_cookies = true).await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    // The browser would not send a Secure cookie over http; this client does.
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.base);
    // Before sign-in: no double-submit cookie, or a token that does not match it.
    let r = b
        .post(
            "/portal/signup",
            &[
                ("csrf", "0"),
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("password", "a long password"),
                ("password2", "a long password"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    b.sign_up("ada@example.com").await;
    for (action, fields) in [
        ("/portal/subscriptions/collection", vec![]),
        (
            "/portal/apiusers",
            vec![("host", "127.0.0.1"), ("environment", "sandbox")],
        ),
        ("/portal/phone/mode", vec![("on", "1")]),
        ("/portal/signout", vec![]),
    ] {
        let r = b.post(action, &fields).await;
        assert_eq!(r.status, 403, "{action} without a token");
        let mut with_bad = vec![("csrf", "not-the-token")];
        with_bad.extend(fields.iter().copied());
        let r = b.post(action, &with_bad).await;
        assert_eq!(r.status, 403, "{action} with a wrong token");
    }
    // Nothing happened: no subscription, and the session is still there.
    let page = b.get("/portal").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Not subscribed"));
}

#[tokio::test]
async fn sign_up_refuses_a_taken_email_and_a_short_password() {
    let app = TestApp::spawn().await;
    let mut a = Browser::new(&app.base);
    a.sign_up("Ada@Example.com").await;
    let mut b = Browser::new(&app.base);
    let r = b
        .submit(
            "/portal/signup",
            "/portal/signup",
            &[
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", "a long password"),
                ("password2", "a long password"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("exists already"));
    // The field the error is about is marked, and points at the sentence.
    let marked = " aria-invalid=\"true\" aria-describedby=\"form-error\"";
    assert!(
        r.text()
            .contains(&format!("value=\"ada@example.com\"{marked}")),
        "{}",
        r.text()
    );
    assert!(r.text().contains("id=\"form-error\""));
    let r = b
        .submit(
            "/portal/signup",
            "/portal/signup",
            &[
                ("name", "Bo"),
                ("email", "bo@example.com"),
                ("password", "short"),
                ("password2", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text().matches(marked).count(), 1, "{}", r.text());
    assert!(
        r.text().contains(&format!("minlength=\"10\"{marked}>")),
        "{}",
        r.text()
    );
    // An address that would reorder the sentence showing it (U+202E) is no address, nor one
    // a mail library reads as a name and another address (its mail went there).
    for email in [
        "bo\u{202e}moc.elpmaxe@x.io",
        "x<victim@example.com>",
        "a@b.c,c@d.e",
    ] {
        let r = b
            .submit(
                "/portal/signup",
                "/portal/signup",
                &[
                    ("name", "Bo"),
                    ("email", email),
                    ("password", "a long password"),
                    ("password2", "a long password"),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{email:?}: {}", r.text());
        assert!(
            r.text().contains("Give a valid e-mail address"),
            "{email:?}"
        );
    }
    // Signing in with the new account works, whatever the e-mail's case.
    let mut c = Browser::new(&app.base);
    assert_eq!(
        c.sign_in("ada@example.com", "a long password").await.status,
        303
    );
}

#[tokio::test]
async fn keys_made_in_the_portal_work_and_regenerated_or_revoked_ones_stop_working() {
    let app = TestApp::spawn().await;
    let mut dev = developer(&app, "keys@example.com").await;
    let reference = request_to_pay(&app, &dev.key, &dev.token, "256770000001", None).await;
    let v = wait_for(|| async {
        let v = status(&app, &dev.key, &dev.token, reference).await;
        (v["status"] != "PENDING").then_some(v)
    })
    .await;
    assert_eq!(v["status"], "SUCCESSFUL");

    // Regenerating the primary key (confirmed): the old one is refused by the gateway.
    let r = dev
        .browser
        .submit(
            "/portal",
            "/portal/subscriptions/collection/primary",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    let fresh = dev.browser.primary_key("collection").await;
    assert_ne!(fresh, dev.key);
    assert_eq!(
        status_code(&app, &dev.key, &dev.token, reference).await,
        401
    );
    assert_eq!(status_code(&app, &fresh, &dev.token, reference).await, 200);

    // Revoking the API key: no more tokens with it.
    let page = dev
        .browser
        .get(&format!("/portal/apiusers/{}", dev.user))
        .await
        .text();
    // Its title names it (tabs of several API users are told apart).
    assert!(
        page.contains(&format!(
            "<title>API user {} · Mkoba portal</title>",
            dev.user
        )),
        "{page}"
    );
    // The key is listed by its last characters, to tell it from the user's other keys.
    let ending = &dev.api_key[dev.api_key.len() - 4..];
    assert!(
        page.contains(&format!(
            "#1 <code data-testid=\"key-ending\">…{ending}</code>"
        )),
        "{page}"
    );
    let at = page.find("/keys/").unwrap() + "/keys/".len();
    let key_id: String = page[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    // Revoking asks first: the confirmation page, and nothing revoked yet.
    let revoke = format!("/portal/apiusers/{}/keys/{key_id}/revoke", dev.user);
    let r = dev
        .browser
        .submit(&format!("/portal/apiusers/{}", dev.user), &revoke, &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Revoke this API key?"), "{}", r.text());
    let r = dev
        .browser
        .submit(
            &format!("/portal/apiusers/{}", dev.user),
            &revoke,
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    let page = dev
        .browser
        .get(&format!("/portal/apiusers/{}", dev.user))
        .await
        .text();
    assert!(page.contains("revoked"));
    // A revoked key is not asked about again (a stale page's button).
    let r = dev
        .browser
        .submit(&format!("/portal/apiusers/{}", dev.user), &revoke, &[])
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // MTN answers wrong credentials with 500 {"error":"login_failed"}.
    let r = token(&app, &fresh, dev.user, &dev.api_key).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("login_failed"), "{}", r.text());
}

async fn status_code(app: &TestApp, subscription: &str, token: &str, reference: Uuid) -> u16 {
    app.send(
        "GET",
        &format!("/collection/v1_0/requesttopay/{reference}"),
        &[
            ("Ocp-Apim-Subscription-Key", subscription),
            ("Authorization", &format!("Bearer {token}")),
            ("X-Target-Environment", "sandbox"),
        ],
        None,
    )
    .await
    .status
}

#[tokio::test]
async fn one_developer_never_sees_another_developers_keys_users_or_transactions() {
    let app = TestApp::spawn().await;
    let mut a = developer(&app, "a@example.com").await;
    let mut b = developer(&app, "b@example.com").await;
    let a_payment = request_to_pay(&app, &a.key, &a.token, "256770000002", None).await;

    let a_home = a.browser.get("/portal").await.text();
    let b_home = b.browser.get("/portal").await.text();
    assert!(a_home.contains(&a.key) && !a_home.contains(&b.key));
    assert!(!b_home.contains(&a.key));
    assert!(
        !b_home.contains(app.key("collection")),
        "not the sandbox developer's keys either"
    );

    let a_list = a.browser.get("/portal/transactions").await.text();
    assert!(a_list.contains(&a_payment.to_string()));
    let b_list = b.browser.get("/portal/transactions").await.text();
    assert!(!b_list.contains(&a_payment.to_string()));
    let b_users = b.browser.get("/portal/apiusers").await.text();
    assert!(b_users.contains(&b.user.to_string()) && !b_users.contains(&a.user.to_string()));

    // Direct links to A's things are 404 for B, and B's forms cannot touch them.
    for page in [
        format!("/portal/transactions/{a_payment}"),
        format!("/portal/apiusers/{}", a.user),
    ] {
        assert_eq!(b.browser.get(&page).await.status, 404, "{page}");
    }
    let csrf = csrf_of(&b.browser.get("/portal").await.text());
    let r = b
        .browser
        .post(
            &format!("/portal/apiusers/{}/keys", a.user),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);
    // Nor revoke A's key, nor be asked whether to.
    let a_page = a
        .browser
        .get(&format!("/portal/apiusers/{}", a.user))
        .await
        .text();
    let at = a_page.find("/keys/").unwrap() + "/keys/".len();
    let key_id: String = a_page[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let revoke = format!("/portal/apiusers/{}/keys/{key_id}/revoke", a.user);
    for confirm in ["", "yes"] {
        let r = b
            .browser
            .post(&revoke, &[("csrf", &csrf), ("confirm", confirm)])
            .await;
        assert_eq!(r.status, 404, "{confirm:?}: {}", r.text());
    }
    assert!(
        !a.browser
            .get(&format!("/portal/apiusers/{}", a.user))
            .await
            .text()
            .contains("badge failed\">revoked"),
        "A's key stands"
    );
    let r = b
        .browser
        .post(
            &format!("/portal/transactions/{a_payment}/resend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);
    let r = b
        .browser
        .post(
            &format!("/portal/phone/{a_payment}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);
    // B's try-it box cannot use A's API user.
    let r = b
        .browser
        .post(
            "/portal/docs/try",
            &[
                ("csrf", &csrf),
                ("api_user", &a.user.to_string()),
                ("method", "GET"),
                ("path", "/collection/v1_0/account/balance"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "nothing was sent");
    assert!(r.text().contains("Choose one of your API users"));
    // The reports count only one's own payments.
    let b_reports = b.browser.get("/portal/reports").await.text();
    assert!(b_reports.contains(">Transactions: 0,"), "B has none");
}

#[tokio::test]
async fn the_virtual_phone_holds_payments_until_the_payer_approves_or_rejects() {
    let app = TestApp::spawn_with(|s| s.dispatcher.allow_private = true).await;
    let sink = Sink::start(200).await;
    let mut dev = developer(&app, "phone@example.com").await;
    let r = dev
        .browser
        .submit("/portal/phone", "/portal/phone/mode", &[("on", "1")])
        .await;
    assert_eq!(r.status, 303);
    let callback = sink.url("/cb");
    let approve = request_to_pay(&app, &dev.key, &dev.token, "256771111111", Some(&callback)).await;
    let reject = request_to_pay(&app, &dev.key, &dev.token, "256771111111", Some(&callback)).await;
    // Test numbers keep their documented outcomes.
    let fixed = request_to_pay(&app, &dev.key, &dev.token, "46733123450", None).await;
    // A writer pass after they were accepted has settled whatever was due.
    assert!(app.running.platform.wake().await);
    assert_eq!(
        status(&app, &dev.key, &dev.token, approve).await["status"],
        "PENDING"
    );
    let phone = dev
        .browser
        .get("/portal/phone?msisdn=256771111111")
        .await
        .text();
    assert!(phone.contains(&approve.to_string()) && phone.contains(&reject.to_string()));
    // A pre-approval moves no money now: its prompt asks to allow later debits (it asked
    // the payer to "Pay 0 EUR").
    let mandate = uuid::Uuid::new_v4();
    let bearer = format!("Bearer {}", dev.token);
    let r = app
        .send(
            "POST",
            "/collection/v2_0/preapproval",
            &[
                ("Ocp-Apim-Subscription-Key", dev.key.as_str()),
                ("Authorization", &bearer),
                ("X-Reference-Id", &mandate.to_string()),
                ("X-Target-Environment", "sandbox"),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"payer":{"partyIdType":"MSISDN","partyId":"256771111112"},"payerCurrency":"EUR","payerMessage":"Subscription","validityTime":3600}"#),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let prompt = dev
        .browser
        .get("/portal/phone?msisdn=256771111112")
        .await
        .text();
    assert!(
        prompt.contains("Allow later debits from this account?")
            && !prompt.contains("Pay <strong>"),
        "{prompt}"
    );
    // Each prompt and its buttons say what they are about, the amount as every page writes it.
    assert!(
        phone.contains("aria-label=\"Approve: Pay 25.00 EUR\"")
            && phone
                .contains("<article class=\"prompt\" aria-label=\"Pay 25.00 EUR (requesttopay)\">"),
        "{phone}"
    );
    // The payer reads the payer's message; the payee's note is the payee's own.
    assert!(
        phone.contains("<p>Pay for order</p>") && !phone.contains(" · Order"),
        "{phone}"
    );

    let r = dev
        .browser
        .submit(
            "/portal/phone",
            &format!("/portal/phone/{approve}/approve"),
            &[("msisdn", "256771111111")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = dev
        .browser
        .submit(
            "/portal/phone",
            &format!("/portal/phone/{reject}/reject"),
            &[("msisdn", "256771111111")],
        )
        .await;
    assert_eq!(r.status, 303);
    let ok = status(&app, &dev.key, &dev.token, approve).await;
    assert_eq!(ok["status"], "SUCCESSFUL", "{ok}");
    assert!(ok["financialTransactionId"].is_string());
    let failed = status(&app, &dev.key, &dev.token, reject).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["reason"], "APPROVAL_REJECTED");
    assert_ne!(
        status(&app, &dev.key, &dev.token, fixed).await["status"],
        "PENDING"
    );
    // A number that stays PENDING is no payer's to decide: not on the phone, and an
    // approval sent anyway leaves it pending.
    let stays = request_to_pay(&app, &dev.key, &dev.token, "46733123464", None).await;
    assert!(app.running.platform.wake().await);
    let phone = dev
        .browser
        .get("/portal/phone?msisdn=46733123464")
        .await
        .text();
    assert!(!phone.contains(&stays.to_string()), "{phone}");
    let r = dev
        .browser
        .submit(
            "/portal/phone",
            &format!("/portal/phone/{stays}/approve"),
            &[("msisdn", "46733123464")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(app.running.platform.wake().await);
    assert_eq!(
        status(&app, &dev.key, &dev.token, stays).await["status"],
        "PENDING"
    );
    // Callbacks as for automatic settlement.
    let received = sink.wait_for(2).await;
    assert!(received.iter().any(|r| r.body.contains("SUCCESSFUL")));
    assert!(
        received
            .iter()
            .any(|r| r.body.contains("APPROVAL_REJECTED"))
    );
    // A second decision is refused (the payment is no longer pending), and the phone says so.
    let r = dev
        .browser
        .submit(
            "/portal/phone",
            &format!("/portal/phone/{approve}/reject"),
            &[("msisdn", "256771111111")],
        )
        .await;
    assert_eq!(r.status, 303);
    let back = r.header("location").unwrap().to_owned();
    assert_eq!(back, "/portal/phone?msisdn=256771111111&done=not-waiting");
    let page = dev.browser.get(&back).await.text();
    assert!(page.contains("That payment is no longer waiting"), "{page}");
    assert_eq!(
        status(&app, &dev.key, &dev.token, approve).await["status"],
        "SUCCESSFUL"
    );

    // The timeline shows the postings and the callback; a re-send makes a second attempt.
    let page = dev
        .browser
        .get(&format!("/portal/transactions/{approve}"))
        .await
        .text();
    assert!(
        page.contains("Settlement decision") && page.contains("Callback attempt 1"),
        "{page}"
    );
    let r = dev
        .browser
        .submit(
            &format!("/portal/transactions/{approve}"),
            &format!("/portal/transactions/{approve}/resend"),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    sink.wait_for(3).await;
    let mut attempts = 0;
    for _ in 0..200 {
        let page = dev
            .browser
            .get(&format!("/portal/transactions/{approve}"))
            .await
            .text();
        attempts = page.matches("Callback attempt").count();
        if attempts >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        attempts, 2,
        "the re-sent callback's attempt is on the timeline"
    );
    // Reports and the filterable table see them.
    let rejected = dev
        .browser
        .get("/portal/transactions?status=FAILED&party=2567711")
        .await
        .text();
    assert!(rejected.contains(&reject.to_string()) && !rejected.contains(&approve.to_string()));
    let reports = dev.browser.get("/portal/reports").await.text();
    assert!(reports.contains("<svg class=\"chart\"") && reports.contains("Transactions: 5,"));
    app.assert_ledger_balanced().await;
}

/// With the virtual phone on, a request-to-pay waits for the payer, unless the payer has
/// pre-approved the API user: then it is drawn against the pre-approval and settles without
/// a decision, until the pre-approval's `validityTime` has passed (here on a test clock) or
/// it is cancelled.
#[tokio::test]
async fn a_request_to_pay_is_drawn_against_the_payers_pre_approval_until_it_expires() {
    let app = TestApp::spawn().await;
    let mut dev = developer(&app, "preapproved@example.com").await;
    let r = dev
        .browser
        .submit("/portal/phone", "/portal/phone/mode", &[("on", "1")])
        .await;
    assert_eq!(r.status, 303);
    let admin = |method: &'static str, path: String, body: Option<String>| {
        let (app, key) = (&app, dev.key.clone());
        async move {
            app.send(
                method,
                &format!("/_mkoba/test_clocks{path}"),
                &[
                    ("Ocp-Apim-Subscription-Key", key.as_str()),
                    ("Content-Type", "application/json"),
                ],
                body.as_deref(),
            )
            .await
        }
    };
    let r = admin(
        "POST",
        String::new(),
        Some(format!(r#"{{"apiUser":"{}"}}"#, dev.user)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let clock = r.json()["id"].as_str().unwrap().to_owned();
    let payer = "256771111112";
    let settled = |reference: Uuid, token: String| {
        let (app, key) = (&app, dev.key.clone());
        async move {
            // A writer pass after it was accepted has settled whatever was due.
            assert!(app.running.platform.wake().await);
            status(app, &key, &token, reference).await["status"].clone()
        }
    };

    // No pre-approval: the payer decides.
    let asked = request_to_pay(&app, &dev.key, &dev.token, payer, None).await;
    assert_eq!(settled(asked, dev.token.clone()).await, "PENDING");

    // The payer approves a week's pre-approval on the phone.
    let pre_approval = Uuid::new_v4();
    let r = app
        .send(
            "POST",
            "/collection/v2_0/preapproval",
            &[
                ("Ocp-Apim-Subscription-Key", &dev.key),
                ("Authorization", &format!("Bearer {}", dev.token)),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &pre_approval.to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(&format!(
                r#"{{"payer":{{"partyIdType":"MSISDN","partyId":"{payer}"}},"payerCurrency":"EUR","payerMessage":"Weekly box","validityTime":604800}}"#
            )),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = dev
        .browser
        .submit(
            "/portal/phone",
            &format!("/portal/phone/{pre_approval}/approve"),
            &[("msisdn", payer)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());

    // Drawn against it: successful with no decision, money moved.
    let drawn = request_to_pay(&app, &dev.key, &dev.token, payer, None).await;
    assert_eq!(settled(drawn, dev.token.clone()).await, "SUCCESSFUL");
    let phone = dev
        .browser
        .get(&format!("/portal/phone?msisdn={payer}"))
        .await
        .text();
    assert!(phone.contains(&asked.to_string()) && !phone.contains(&drawn.to_string()));
    // Another payer, without a pre-approval, is still asked.
    let other = request_to_pay(&app, &dev.key, &dev.token, "256771111113", None).await;
    assert_eq!(settled(other, dev.token.clone()).await, "PENDING");

    // A week on, the pre-approval has expired: the payer is asked again.
    let r = admin(
        "POST",
        format!("/{clock}/advance"),
        Some(r#"{"by":"7d"}"#.to_owned()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = token(&app, &dev.key, dev.user, &dev.api_key).await;
    dev.token = r.json()["access_token"].as_str().unwrap().to_owned();
    let late = request_to_pay(&app, &dev.key, &dev.token, payer, None).await;
    assert_eq!(settled(late, dev.token.clone()).await, "PENDING");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_try_it_box_calls_the_api_with_the_developers_credentials() {
    let app = TestApp::spawn().await;
    let mut dev = developer(&app, "try@example.com").await;
    let user = dev.user.to_string();
    let r = dev
        .browser
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[
                ("api_user", &user),
                ("method", "GET"),
                ("path", "/collection/v1_0/account/balance"),
                ("headers", ""),
                ("body", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("data-testid=\"try-status\">200<"), "{html}");
    assert!(html.contains("availableBalance"));
    let r = dev
        .browser
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[("method", "GET"), ("path", "/portal/")],
        )
        .await;
    assert_eq!(r.status, 400, "nothing was sent");
    assert!(r.text().contains("must be an API path"));
    // A product the developer has no subscription to: said so, with where to subscribe,
    // instead of the gateway's raw 401.
    let r = dev
        .browser
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[
                ("api_user", &user),
                ("method", "GET"),
                ("path", "/disbursement/v1_0/account/balance"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("You are not subscribed to Disbursement: subscribe on the overview"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn keys_passwords_and_session_ids_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env("MKOBA_LOG", "debug")
        .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mkoba starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    while base.is_none() {
        let line = lines.next_line().await.unwrap().expect("banner");
        if let Some(rest) = line.trim().strip_prefix("MoMo Open API") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    let base = base.unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });

    let mut b = Browser::new(&base);
    b.sign_up("secret@example.com").await;
    let session = b.cookies["mkoba_session"].clone();
    // The account journey's secrets: the activation link's token and the phone code.
    let mail = b.get("/portal/mail").await.text();
    let activation =
        link_in(&mail, "/portal/activate?t=").unwrap()["/portal/activate?t=".len()..].to_owned();
    let phone_sms = format!("code is {}", sms_code(&mail).unwrap());
    let sub = b.subscribe("collection").await;
    let (user, api_key) = b.create_api_user("127.0.0.1").await;
    let http = Http::new();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{api_key}"));
    let r = http
        .send(
            "POST",
            &format!("{base}/collection/token/?subscription-key={sub}"),
            &[("Authorization", &format!("Basic {basic}"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    // A callback refused with a body: the body is kept for the developer, not logged.
    let sink = Sink::start_answering(500, "partner-says-9f2c").await;
    let reference = Uuid::new_v4().to_string();
    let r = http
        .send(
            "POST",
            &format!("{base}/collection/v1_0/requesttopay"),
            &[
                ("Ocp-Apim-Subscription-Key", &sub),
                ("Authorization", &format!("Bearer {token}")),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference),
                ("X-Callback-Url", &sink.url("/cb")),
                ("Content-Type", "application/json"),
            ],
            Some(&rtp_body("5", "256771234567")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let attempt = wait_for(|| async {
        let t = http
            .send(
                "GET",
                &format!("{base}/_mkoba/transactions/{reference}"),
                &[("Ocp-Apim-Subscription-Key", &sub)],
                None,
            )
            .await
            .json();
        t["callbacks"].get(0).cloned()
    })
    .await;
    assert_eq!(attempt["answer"], "partner-says-9f2c", "{attempt}");
    let csrf = csrf_of(&b.get("/portal/docs").await.text());
    let r = b
        .post(
            "/portal/docs/try",
            &[
                ("csrf", &csrf),
                ("api_user", &user.to_string()),
                ("method", "GET"),
                ("path", "/collection/v1_0/account/balance"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);

    // M-Pesa: a renewed API key, a session and a payment with it.
    let r = http
        .send(
            "POST",
            &format!("{base}/_mkoba/mpesa/apikey"),
            &[("Ocp-Apim-Subscription-Key", &sub)],
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mpesa_key = r.json()["api_key"].as_str().unwrap().to_owned();
    let app = http
        .send(
            "GET",
            &format!("{base}/_mkoba/mpesa/application"),
            &[("Ocp-Apim-Subscription-Key", &sub)],
            None,
        )
        .await
        .json();
    let public =
        mkoba_sdk::mpesa::PublicKey::from_base64(app["public_key"].as_str().unwrap()).unwrap();
    let market = format!("{base}/sandbox/ipg/v2/vodacomTZN");
    let key_bearer = public.bearer(&mpesa_key).unwrap();
    let r = http
        .send(
            "GET",
            &format!("{market}/getSession/"),
            &[
                ("Authorization", &format!("Bearer {key_bearer}")),
                ("Origin", "*"),
            ],
            None,
        )
        .await;
    let mpesa_session = r.json()["output_SessionID"].as_str().unwrap().to_owned();
    let session_bearer = public.bearer(&mpesa_session).unwrap();
    let c2b = serde_json::json!({
        "input_Amount": "10", "input_Country": "TZN", "input_Currency": "TZS",
        "input_CustomerMSISDN": "000000000001", "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": "logcheck1", "input_TransactionReference": "T1",
        "input_PurchasedItemsDesc": "Shoes",
    });
    let r = http
        .send(
            "POST",
            &format!("{market}/c2bPayment/singleStage/"),
            &[
                ("Authorization", &format!("Bearer {session_bearer}")),
                ("Origin", "*"),
            ],
            Some(&c2b.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let log = log.await.unwrap();
    assert!(
        log.contains("portal sign-in") || log.contains("developer account created"),
        "debug log captured: {log}"
    );
    assert!(
        log.contains("callback not delivered") && !log.contains("partner-says-9f2c"),
        "the refused callback is logged without the partner's answer: {log}"
    );
    for (what, secret) in [
        ("password", "a long password"),
        ("session id", session.as_str()),
        ("CSRF token", csrf.as_str()),
        ("subscription key", sub.as_str()),
        ("API key", api_key.as_str()),
        ("access token", token.as_str()),
        ("M-Pesa API key", mpesa_key.as_str()),
        ("M-Pesa session id", mpesa_session.as_str()),
        ("M-Pesa key bearer", key_bearer.as_str()),
        ("M-Pesa session bearer", session_bearer.as_str()),
        ("activation link token", activation.as_str()),
        ("phone code", phone_sms.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} was logged");
    }
}

/// Production answers an M-Pesa application only once it went live: the box says so
/// instead of showing a bare 401 INS-6.
#[tokio::test]
async fn the_try_it_box_says_production_waits_for_go_live() {
    let app = TestApp::spawn().await;
    let mut dev = developer(&app, "mpesa-live@example.com").await;
    let body = r#"{"input_Amount":"10","input_Country":"TZN","input_Currency":"TZS","input_CustomerMSISDN":"000000000001","input_ServiceProviderCode":"000000","input_ThirdPartyConversationID":"portaltry2","input_TransactionReference":"T1","input_PurchasedItemsDesc":"Shoes"}"#;
    let r = dev
        .browser
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[
                ("method", "POST"),
                ("path", "/openapi/ipg/v2/vodacomTZN/c2bPayment/singleStage/"),
                ("headers", ""),
                ("body", body),
            ],
        )
        .await;
    let html = r.text();
    assert!(
        html.contains("once a go-live request for M-Pesa is approved"),
        "{html}"
    );
}

#[tokio::test]
async fn the_try_it_box_signs_mpesa_calls_with_a_fresh_session() {
    let app = TestApp::spawn().await;
    let mut dev = developer(&app, "mpesa-try@example.com").await;
    let body = r#"{"input_Amount":"10","input_Country":"TZN","input_Currency":"TZS","input_CustomerMSISDN":"000000000001","input_ServiceProviderCode":"000000","input_ThirdPartyConversationID":"portaltry1","input_TransactionReference":"T1","input_PurchasedItemsDesc":"Shoes"}"#;
    let fields = [
        ("method", "POST"),
        ("path", "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/"),
        ("headers", ""),
        ("body", body),
    ];
    // The M-Pesa application comes with the account (seed 004); renewing its key asks first.
    let r = dev
        .browser
        .submit(
            "/portal/mpesa",
            "/portal/mpesa/apikey",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal/mpesa?done=renewed"));
    let r = dev.browser.get("/portal/mpesa?done=renewed").await;
    assert!(r.text().contains("data-testid=\"mpesa-api-key\""));
    let r = dev
        .browser
        .submit("/portal/docs", "/portal/docs/try", &fields)
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"try-status\">201<"), "{html}");
    assert!(
        html.contains("INS-0") && html.contains("output_TransactionID"),
        "{html}"
    );
    // getSession goes with the application's API key, encrypted as a client sends it.
    let r = dev
        .browser
        .submit(
            "/portal/docs",
            "/portal/docs/try",
            &[
                ("method", "GET"),
                ("path", "/sandbox/ipg/v2/vodacomTZN/getSession/"),
            ],
        )
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"try-status\">200<"), "{html}");
    assert!(html.contains("output_SessionID"), "{html}");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_docs_page_renders_the_mpesa_document_beside_momo() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.base);
    b.sign_up("mpesa-docs@example.com").await;
    let r = b.get("/portal/docs").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    // MoMo's document is still there.
    assert!(html.contains("Mkoba: MTN MoMo Open API"), "{html}");
    assert!(html.contains("/collection/v1_0/requesttopay"), "{html}");
    // M-Pesa's, C2B with its full path, its parameter table and its codes.
    assert!(html.contains("Mkoba: Vodacom M-Pesa OpenAPI"), "{html}");
    let at = html
        .find("id=\"op-v2C2bSingleStage\"")
        .expect("the v2 C2B operation");
    let c2b = &html[at..at + html[at..].find("</details>").unwrap()];
    assert!(
        c2b.contains("<code>/{env}/ipg/v2/{market}/c2bPayment/singleStage/</code>"),
        "{c2b}"
    );
    assert!(c2b.contains("<th scope=\"col\">Allowed values / pattern</th>"));
    assert!(
        c2b.contains(
            "<tr><td><code>input_CustomerMSISDN</code></td><td>body</td><td>string</td><td>yes</td><td><code>^[0-9]{12,14}$</code></td><td><code>000000000001</code></td>"
        ),
        "{c2b}"
    );
    assert!(c2b.contains("vodacomTZN"), "{c2b}");
    assert!(
        c2b.contains("<code>output_TransactionID</code>"),
        "the success outputs: {c2b}"
    );
    assert!(
        c2b.contains(
            "<tr><td><code>INS-2006</code></td><td>422</td><td>Insufficient balance</td></tr>"
        ),
        "{c2b}"
    );
    // A v1x API shows its port and the generic table's codes.
    let at = html
        .find("id=\"op-v1xC2bSingleStage\"")
        .expect("the v1x C2B operation");
    let v1x = &html[at..at + html[at..].find("</details>").unwrap()];
    assert!(v1x.contains("<code>/ipg/v1x/c2bPayment/singleStage/</code>"));
    assert!(v1x.contains("port 18352"), "{v1x}");
    assert!(
        v1x.contains("<tr><td><code>INS-1</code></td><td>500</td><td>Internal Error</td></tr>"),
        "{v1x}"
    );
    assert!(html.contains("href=\"/_mkoba/mpesa/openapi.json\""));
}

/// One developer's payments that never end hold at most its share of the open payments
/// (`--max-pending-per-developer`): past it its new ones get MTN's overload answer, while
/// another developer's are still taken.
#[tokio::test]
async fn one_developers_open_payments_leave_room_for_the_others() {
    let app = TestApp::spawn_with(|s| {
        s.platform.pending_in_memory = 10;
        s.platform.pending_per_developer = Some(2);
    })
    .await;
    let p = app.partner("127.0.0.1").await;
    // 46733123464 stays PENDING.
    let body = rtp_body("5", "46733123464");
    let pay = |reference| app.request_to_pay(&p, reference, &body, &[]);
    for _ in 0..2 {
        assert_eq!(pay(Uuid::new_v4()).await.status, 202);
    }
    let r = pay(Uuid::new_v4()).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert!(r.header("retry-after").is_some());
    let other = developer(&app, "other@shop.example").await;
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[
                ("Ocp-Apim-Subscription-Key", &other.key),
                ("Authorization", &format!("Bearer {}", other.token)),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &Uuid::new_v4().to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(&rtp_body("5", "46733123464")),
        )
        .await;
    assert_eq!(r.status, 202, "another developer's payment: {}", r.text());
}

/// The portal lists a developer's newest API users, a bounded number, however many it made
/// (clients make one a run; 40,000 made the widget page 35 MB): the pages say so, and the
/// oldest still work through the API.
#[tokio::test]
async fn the_pages_list_the_newest_api_users_up_to_a_bound() {
    let app = TestApp::spawn().await;
    let bound = mkoba_platform::portal::LISTED_API_USERS;
    let mut made = Vec::new();
    for _ in 0..bound + 3 {
        made.push(app.create_user("127.0.0.1").await);
    }
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);
    for page in ["/portal/apiusers", "/portal/widget"] {
        let html = b.get(page).await.text();
        assert!(html.contains("data-testid=\"listed-newest\""), "{page}");
        assert!(
            html.contains(&made[bound + 2].to_string()),
            "{page}: the newest"
        );
        assert!(
            !html.contains(&made[0].to_string()),
            "{page}: not the oldest"
        );
    }
    let html = b.get("/portal/transactions").await.text();
    let options = html.matches("<option value=\"").count();
    assert!(options < bound + 40, "{options} options");
    // The oldest works through the API as ever.
    let key = app.create_key(made[0]).await;
    let token = app.token_response("collection", made[0], &key).await;
    assert_eq!(token.status, 200, "{}", token.text());
}

/// One developer's requests waiting for payments that never end (synchronous M-Pesa calls
/// to a customer who never answers) hold at most half of the places for waiting requests:
/// past that its next is refused `503 INS-16` at once, while another developer's
/// Collection Widget long-poll still waits.
#[tokio::test]
async fn one_developers_waiting_requests_leave_room_for_the_others() {
    use crate::mpesa_support::code;
    let app = TestApp::spawn_with(|s| {
        s.mpesa.sync_timeout = std::time::Duration::from_secs(3);
        s.platform.max_waiting = 4;
    })
    .await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let never = || m.c2b("10", "000000000002");
    let (first, second) = (never(), never());
    let held = futures_util::future::join(
        m.send("POST", "c2bPayment/singleStage/", &session, Some(&first)),
        m.send("POST", "c2bPayment/singleStage/", &session, Some(&second)),
    );
    let meanwhile = async {
        // Both waits have begun once both payments are stored.
        for body in [&first, &second] {
            let reference = body["input_ThirdPartyConversationID"].as_str().unwrap();
            crate::helpers::wait_for(|| async {
                let q = m
                    .query(
                        "queryTransactionStatus/",
                        &serde_json::json!({
                            "input_QueryReference": reference,
                            "input_Country": "TZN",
                            "input_ServiceProviderCode": "000000",
                            "input_ThirdPartyConversationID": crate::mpesa_support::tpcid(),
                        }),
                    )
                    .await;
                (q.status == 200).then_some(())
            })
            .await;
        }
        let r = m
            .send("POST", "c2bPayment/singleStage/", &session, Some(&never()))
            .await;
        assert_eq!(code(&r), (503, "INS-16".to_owned()), "{}", r.text());
        // Another developer's long-poll on a widget invoice waiting for its payer.
        let mut other = developer(&app, "shop@other.example").await;
        // The widget is a product of its own.
        other.browser.subscribe("collection_widget").await;
        let r = app
            .send(
                "POST",
                "/widget/v1_0/invoice",
                &[("Origin", "http://shop.test"), ("Content-Type", "application/json")],
                Some(
                    &serde_json::json!({"apiUserId": other.user.to_string(), "amount": "10", "currency": "EUR", "externalId": "o-1"})
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["invoiceId"].as_str().unwrap().to_owned();
        let r = app
            .send(
                "GET",
                &format!("/widget/v1_0/invoice/{id}?wait=1&known=PENDING"),
                &[("Origin", "http://shop.test")],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "the other developer's wait: {}", r.text());
    };
    let ((a, b), ()) = tokio::join!(held, meanwhile);
    assert_eq!(code(&a).1, "INS-9", "{}", a.text());
    assert_eq!(code(&b).1, "INS-9", "{}", b.text());
}

/// `/portal/` sends every method on to `/portal` (308 keeps it), where a method the
/// overview does not take meets the portal's own page: it was the router's bare 405.
#[tokio::test]
async fn the_portal_with_a_slash_sends_any_method_on() {
    let app = TestApp::spawn().await;
    for method in ["GET", "POST", "OPTIONS"] {
        let r = app.send(method, "/portal/", &[], None).await;
        assert_eq!(r.status, 308, "{method}");
        assert_eq!(r.header("location"), Some("/portal"), "{method}");
    }
    let r = app.send("POST", "/portal", &[], None).await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("Method not allowed"), "{}", r.text());
}
