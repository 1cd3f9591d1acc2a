//! Throttling and load shedding over HTTP (issue 16): the signed pre-session CSRF token,
//! the sign-in, password reset and sign-up limits, the M-Pesa API key failure limit and
//! the bounded Argon2 queue.

use std::time::Duration;

use mkoba_platform::throttle::{Rate, ThrottleLimits};
use serde_json::json;

use crate::helpers::{Http, Resp, TestApp};
use crate::portal::{Browser, csrf_of};

/// `name=value` of the first `Set-Cookie` for `name`.
fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

/// A fresh pre-session token pair: the cookie's value and the form's field.
async fn issued_pair(app: &TestApp) -> (String, String) {
    let r = app.send("GET", "/portal/signin", &[], None).await;
    assert_eq!(r.status, 200);
    let cookie = set_cookie(&r, "mkoba_csrf").expect("a pre-session cookie");
    (cookie, csrf_of(&r.text()))
}

fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('@', "%40")
        .replace(' ', "+")
        .replace('&', "%26")
}

/// `POST /portal/signin` with a hand-made cookie and field.
async fn sign_in_with(
    http: &Http,
    base: &str,
    cookie: &str,
    csrf: &str,
    email: &str,
    password: &str,
) -> Resp {
    http.send(
        "POST",
        &format!("{base}/portal/signin"),
        &[
            ("Cookie", &format!("mkoba_csrf={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&format!(
            "csrf={csrf}&email={}&password={}&next=%2Fportal",
            enc(email),
            enc(password)
        )),
    )
    .await
}

fn retry_after(r: &Resp) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After: {}", r.status, r.text()))
        .parse()
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn only_a_pre_session_token_the_server_signed_is_accepted() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    let (email, password) = (login.email.as_str(), login.password.as_str());
    let http = Http::new();
    let try_pair = |cookie: String, csrf: String| {
        let (http, base) = (http.clone(), app.base.clone());
        async move { sign_in_with(&http, &base, &cookie, &csrf, email, password).await }
    };
    // A pair the client made up, matching as the old double-submit cookie wanted.
    let made_up = "ab".repeat(32);
    let r = try_pair(made_up.clone(), made_up).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("security token"));
    // An issued token with its MAC changed.
    let (issued, _) = issued_pair(&app).await;
    let (body, mac) = issued.split_once('.').unwrap();
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let forged = format!("{body}.{flipped}{}", &mac[1..]);
    assert_eq!(try_pair(forged.clone(), forged).await.status, 403);
    // Another server's token (another secret).
    let other = TestApp::spawn().await;
    let (theirs, _) = issued_pair(&other).await;
    assert_eq!(try_pair(theirs.clone(), theirs).await.status, 403);
    // Ours, expired.
    let expired = app.running.platform.credentials().sign_claims(
        mkoba_portal::PRE_SESSION_PURPOSE,
        &json!({"n": "0123456789abcdef0123456789abcdef", "x": mkoba_platform::clock::system_now_ms() - 1}),
    );
    assert_eq!(try_pair(expired.clone(), expired).await.status, 403);
    // Two tokens we issued, but not a pair.
    let (cookie_a, _) = issued_pair(&app).await;
    let (_, field_b) = issued_pair(&app).await;
    assert_eq!(try_pair(cookie_a, field_b).await.status, 403);
    // The pair a page was given: signed in.
    let (cookie, field) = issued_pair(&app).await;
    assert_eq!(cookie, field);
    let r = try_pair(cookie, field).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(set_cookie(&r, "mkoba_session").is_some());
}

#[tokio::test]
async fn sign_in_past_the_account_limit_is_429_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    // Another account, signed up and signed in from the same address.
    let mut other = Browser::new(&app.base);
    other.sign_up("other@example.com").await;
    let limit = ThrottleLimits::default().sign_in_per_account;
    assert_eq!(limit.to_string(), "10/15m");
    let mut b = Browser::new(&app.base);
    for _ in 0..limit.count {
        let r = b.sign_in(&login.email, "not the password").await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    // The account's tries are spent: the right password is refused too, and so is the
    // e-mail in another case.
    for email in [login.email.clone(), login.email.to_uppercase()] {
        let r = b.sign_in(&email, &login.password).await;
        assert_eq!(r.status, 429, "{}", r.text());
        let wait = retry_after(&r);
        assert!((1..=90).contains(&wait), "one try back within 90 s: {wait}");
        assert!(
            r.text().contains("Too many sign-in attempts"),
            "{}",
            r.text()
        );
        assert!(
            r.header("set-cookie")
                .is_none_or(|c| !c.contains("mkoba_session"))
        );
    }
    // Another account is not affected.
    let mut again = Browser::new(&app.base);
    let r = again.sign_in("other@example.com", "a long password").await;
    assert_eq!(r.status, 303, "{}", r.text());
}

#[tokio::test]
async fn the_per_address_sign_in_limit_covers_every_account() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.sign_in_per_address = Rate::new(3, Duration::from_secs(3600));
    })
    .await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    for i in 0..3 {
        let r = b.sign_in(&format!("nobody{i}@example.com"), "x").await;
        assert_eq!(r.status, 401);
    }
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(retry_after(&r) <= 1200);
}

#[tokio::test]
async fn forgot_password_past_its_limit_is_429() {
    let app = TestApp::spawn().await;
    let limit = ThrottleLimits::default().reset_per_account;
    assert_eq!(limit.to_string(), "5/15m");
    let mut b = Browser::new(&app.base);
    for _ in 0..limit.count {
        let r = b
            .submit(
                "/portal/forgot",
                "/portal/forgot",
                &[("email", "someone@example.com")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("Check your e-mail"));
    }
    let r = b
        .submit(
            "/portal/forgot",
            "/portal/forgot",
            &[("email", "Someone@Example.com")],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(retry_after(&r) <= 180);
    assert!(r.text().contains("Too many password reset requests"));
    // Another address's requests still go through (the per-address bucket holds 20).
    let r = b
        .submit(
            "/portal/forgot",
            "/portal/forgot",
            &[("email", "another@example.com")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn sign_ups_and_activation_mails_share_a_per_address_limit() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.sign_up_per_address = Rate::new(1, Duration::from_secs(3600));
    })
    .await;
    let mut b = Browser::new(&app.base);
    let form = |email: &'static str| {
        [
            ("name", "Ada Developer"),
            ("email", email),
            ("password", "a long password"),
            ("password2", "a long password"),
        ]
    };
    let r = b
        .submit("/portal/signup", "/portal/signup", &form("one@example.com"))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = b
        .submit("/portal/signup", "/portal/signup", &form("two@example.com"))
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(retry_after(&r), 3600);
    assert!(r.text().contains("Too many sign-ups"));
}

/// A bearer that is no application's key (a real RSA-4096 ciphertext: each one costs the
/// server a decryption, until its address is blocked).
fn wrong_key(m: &crate::mpesa_support::Mpesa<'_>) -> String {
    format!("Bearer {}", m.bearer("aaaab09uz9f3asdcjyk7els777ihmwv8"))
}

async fn get_session(app: &TestApp, auth: &str) -> Resp {
    app.send(
        "GET",
        "/sandbox/ipg/v2/vodacomTZN/getSession/",
        &[("Authorization", auth), ("Origin", "*")],
        None,
    )
    .await
}

fn ins(r: &Resp) -> String {
    r.json()["output_ResponseCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Past its failure limit an address decrypts only on an idle RSA worker: a right key
/// from the same address (another client on one machine or behind one NAT) still gets its
/// session while the workers are free, and a burst from that address is answered the
/// overload code at once wherever it would have to wait for a turn.
#[tokio::test]
async fn an_address_past_its_key_failure_limit_decrypts_only_on_an_idle_worker() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.mpesa_key_failures_per_address = Rate::new(5, Duration::from_secs(3600));
        s.mpesa.rsa = mkoba_mpesa::rsa::RsaLimits {
            workers: 1,
            queue: 64,
        };
    })
    .await;
    let m = app.mpesa().await;
    // A client whose bearer proved valid before the failures.
    let good = format!("Bearer {}", m.bearer(&m.api_key));
    assert_eq!(get_session(&app, &good).await.status, 200);
    // Five failures fit the bucket; the sixth finds it empty and blocks the address.
    for i in 0..6 {
        let r = get_session(&app, &wrong_key(&m)).await;
        assert_eq!((r.status, ins(&r)), (400, "INS-989".to_owned()), "try {i}");
    }
    // One at a time the worker is idle: a right key newly encrypted gets its session, a
    // wrong one its own answer, on both gateways.
    let fresh = format!("Bearer {}", m.bearer(&m.api_key));
    let r = get_session(&app, &fresh).await;
    assert_eq!(
        (r.status, ins(&r)),
        (200, "INS-0".to_owned()),
        "{}",
        r.text()
    );
    let r = get_session(&app, &wrong_key(&m)).await;
    assert_eq!(
        (r.status, ins(&r)),
        (400, "INS-989".to_owned()),
        "{}",
        r.text()
    );
    let r = app
        .send(
            "POST",
            "/ipg/v1x/c2bPayment/singleStage/",
            &[
                ("Authorization", &wrong_key(&m)),
                ("Origin", "*"),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"input_TransactionReference":"T1","input_CustomerMSISDN":"258843330333","input_Amount":"10","input_ThirdPartyReference":"R1","input_ServiceProviderCode":"171717"}"#),
        )
        .await;
    assert_eq!(
        (r.status, ins(&r)),
        (401, "INS-2".to_owned()),
        "{}",
        r.text()
    );
    // A burst from the blocked address: whoever finds the one worker busy is answered
    // the overload code at once (the queue of 64 would have held them all otherwise).
    let waits = crate::mpesa_support::get_session_burst(&app, &wrong_key(&m), 40).await;
    assert!(!waits.is_empty(), "some of the burst found the worker busy");
    assert!(
        waits.iter().all(|w| (1..=720).contains(w)),
        "one failure back within 720 s: {waits:?}"
    );
    // The bearer that proved valid is answered from memory: its client carries on.
    let r = get_session(&app, &good).await;
    assert_eq!(
        (r.status, ins(&r)),
        (200, "INS-0".to_owned()),
        "{}",
        r.text()
    );
}

/// The admin endpoints' HTTP Basic credentials are the operator's sign-in: wrong ones
/// count against the address like the sign-in form's, right ones cost nothing (a
/// monitoring poll is never throttled), and a blocked address is answered 429 at once.
#[tokio::test]
async fn wrong_operator_credentials_past_the_address_limit_are_answered_429_at_once() {
    use base64::Engine as _;

    let app = TestApp::spawn_with(|s| {
        s.throttle.sign_in_per_address = Rate::new(3, Duration::from_secs(3600));
    })
    .await;
    let right = app.operator_auth();
    let ledger = |auth: String| {
        let app = &app;
        async move {
            app.send("GET", "/_mkoba/ledger", &[("Authorization", &auth)], None)
                .await
        }
    };
    for _ in 0..10 {
        assert_eq!(ledger(right.clone()).await.status, 200);
    }
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("operator@example.com:guess")
    );
    // Three failures fit the bucket; the fourth finds it empty and blocks the address.
    for i in 0..4 {
        let r = ledger(wrong.clone()).await;
        assert_eq!(r.status, 401, "try {i}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
    }
    for auth in [wrong, right] {
        let r = ledger(auth).await;
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(r.json()["code"], "TOO_MANY_REQUESTS", "{}", r.text());
        let wait = retry_after(&r);
        assert!((1..=1200).contains(&wait), "{wait}");
    }
    // Counted where the password-guessing alert looks (they were not).
    assert_eq!(
        app.metric("mkoba_portal_signins_total{outcome=\"throttled\"}")
            .await,
        2.0
    );
    // The public liveness answer needs no credentials and is not refused.
    let r = app.send("GET", "/_mkoba/health", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `VmRSS` of this process (the server runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_flood_past_the_hashing_queue_is_answered_429_and_memory_stays_bounded() {
    let app = TestApp::spawn_with(|s| {
        s.throttle = ThrottleLimits {
            password_hash_workers: 1,
            password_hash_queue: 1,
            ..ThrottleLimits::off()
        };
    })
    .await;
    let login = app.sandbox_login().await;
    let (cookie, csrf) = issued_pair(&app).await;
    // One sign-in first, so that what one costs is in the baseline.
    let http = Http::new();
    let r = sign_in_with(&http, &app.base, &cookie, &csrf, &login.email, "wrong").await;
    assert_eq!(r.status, 401);
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let (http, base) = (http.clone(), app.base.clone());
            let (cookie, csrf, email) = (cookie.clone(), csrf.clone(), login.email.clone());
            tokio::spawn(async move {
                sign_in_with(&http, &base, &cookie, &csrf, &email, &format!("wrong {i}")).await
            })
        })
        .collect();
    let (mut refused, mut busy) = (0, 0);
    for h in flood {
        let r = h.await.unwrap();
        match r.status {
            401 => refused += 1,
            429 => {
                busy += 1;
                assert!(r.text().contains("The portal is busy"), "{}", r.text());
                assert_eq!(retry_after(&r), 5);
            }
            s => panic!("{s}: {}", r.text()),
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let grown_mib = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before)
        / 1024;
    assert!(
        busy > 0,
        "past one worker and one waiting, sign-ins are refused at once"
    );
    assert!(
        refused > 0,
        "the ones admitted were checked: {refused} wrong passwords"
    );
    eprintln!("peak RSS grew by {grown_mib} MiB during the flood");
    assert!(grown_mib < 300, "RSS grew by {grown_mib} MiB");
    // The flood is over: the pool is free again.
    let r = sign_in_with(
        &http,
        &app.base,
        &cookie,
        &csrf,
        &login.email,
        &login.password,
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
}
