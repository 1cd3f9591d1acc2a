//! A developer account's journey over HTTP: sign-up leaves it inactive until the mailed
//! activation link is opened, then the phone step (a code on the virtual phone) makes it
//! active and shows its M-Pesa API key once; the sandbox mailbox and who may read it;
//! links refused when forged, expired or used; My Profile (name, e-mail change by link,
//! password change ending the other sessions, deletion); forgot-password; the confirmation
//! step of key renewals; and mail through SMTP when configured.

use std::sync::{Arc, Mutex};

use mkoba_platform::accounts::{AccountStatus, LinkPurpose, MailFilter, MailKind, MailState};
use mkoba_platform::clock::system_now_ms as now_ms;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

use crate::helpers::{TestApp, rtp_body, wait_for};
use crate::portal::{Browser, link_in, sms_code};

const PASSWORD: &str = "a long password";

/// Signs up in a fresh browser; returns it and the location of the "check your e-mail" page.
async fn sign_up(app: &TestApp, email: &str) -> (Browser, String) {
    let mut b = Browser::new(&app.base);
    let r = b
        .submit(
            "/portal/signup",
            "/portal/signup",
            &[
                ("name", "Amani"),
                ("email", email),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with("/portal/signup/sent?t="), "{location}");
    (b, location)
}

pub(crate) async fn developer_id(app: &TestApp, email: &str) -> i64 {
    app.running
        .platform
        .portal()
        .account_by_email(email)
        .await
        .unwrap()
        .expect("the account")
        .0
        .id
}

async fn status(app: &TestApp, id: i64) -> AccountStatus {
    app.running
        .platform
        .portal()
        .developer(id)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// What the operator reads in the mailbox table: the newest message of a kind.
async fn last_mail(
    app: &TestApp,
    id: i64,
    kind: MailKind,
) -> Option<mkoba_platform::accounts::Mail> {
    app.running
        .platform
        .portal()
        .mailbox(&MailFilter {
            kind: Some(kind),
            ..MailFilter::of(id)
        })
        .await
        .unwrap()
        .into_iter()
        .next()
}

async fn mails(app: &TestApp, id: i64, kind: MailKind) -> usize {
    app.running
        .platform
        .portal()
        .mailbox(&MailFilter {
            kind: Some(kind),
            ..MailFilter::of(id)
        })
        .await
        .unwrap()
        .len()
}

/// The path of the link in a message's body.
fn link_of(body: &str, prefix: &str) -> String {
    link_in(body, prefix).unwrap_or_else(|| panic!("no {prefix} link in {body}"))
}

/// A getSession with an M-Pesa API key: the status code.
async fn get_session(app: &TestApp, api_key: &str) -> u16 {
    let public =
        mkoba_sdk::mpesa::PublicKey::from_base64(app.running.mpesa_key.public_key_base64())
            .unwrap();
    let bearer = public.bearer(api_key).unwrap();
    app.send(
        "GET",
        "/sandbox/ipg/v2/vodacomTZN/getSession/",
        &[
            ("Origin", "*"),
            ("Authorization", &format!("Bearer {bearer}")),
        ],
        None,
    )
    .await
    .status
}

/// The M-Pesa API key a page shows.
pub(crate) fn shown_key(html: &str) -> String {
    let marker = "data-testid=\"mpesa-api-key\">";
    let at = html.find(marker).expect("the key is shown") + marker.len();
    html[at..at + 32].to_owned()
}

#[tokio::test]
async fn sign_up_is_inactive_until_the_mailed_link_and_the_phone_code() {
    let app = TestApp::spawn().await;
    let (mut b, sent) = sign_up(&app, "Amani@Example.com").await;
    let id = developer_id(&app, "amani@example.com").await;
    assert_eq!(status(&app, id).await, AccountStatus::Pending);
    assert!(!b.cookies.contains_key("mkoba_session"), "no session yet");
    assert_eq!(b.get("/portal").await.status, 303, "not signed in");

    // The "check your e-mail" page links to the sandbox mailbox.
    let page = b.get(&sent).await.text();
    assert!(page.contains("amani@example.com"), "{page}");
    let mailbox_link = link_in(&page, "/portal/mail?t=").expect("the mailbox link");
    // The right password of an inactive account is told to activate it; a wrong one is not.
    let r = b.sign_in("amani@example.com", "not the password").await;
    assert_eq!(r.status, 401);
    let r = b.sign_in("amani@example.com", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("not activated yet"), "{}", r.text());
    assert!(!b.cookies.contains_key("mkoba_session"));

    // The mailbox shows the activation mail: through the cookie, and through the link in
    // another browser; a browser with neither, or with a forged token, sees nothing.
    let mailbox = b.get("/portal/mail").await.text();
    let activate = link_of(&mailbox, "/portal/activate?t=");
    let mut other = Browser::new(&app.base);
    let via_link = other.get(&mailbox_link).await.text();
    assert!(via_link.contains("/portal/activate?t="), "{via_link}");
    let mut stranger = Browser::new(&app.base);
    let nothing = stranger.get("/portal/mail").await.text();
    assert!(!nothing.contains("/portal/activate"), "{nothing}");
    let forged = stranger.get("/portal/mail?t=eyJkIjoxfQ.AAAA").await.text();
    assert!(!forged.contains("/portal/activate"), "{forged}");
    // The activation mail was queued in the sign-up's commit, kept (no mail server).
    let m = last_mail(&app, id, MailKind::Activation).await.unwrap();
    assert_eq!(
        (m.recipient.as_str(), m.state),
        ("amani@example.com", MailState::Kept)
    );

    // A tampered link is refused; the link activates (once: again it says so).
    let last = if activate.ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}{last}", &activate[..activate.len() - 1]);
    assert_eq!(stranger.get(&tampered).await.status, 400);
    assert_eq!(status(&app, id).await, AccountStatus::Pending);
    let r = stranger.get(&activate).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("data-testid=\"activated\""),
        "{}",
        r.text()
    );
    assert_eq!(status(&app, id).await, AccountStatus::Phone);
    let r = stranger.get(&activate).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("activated already"), "{}", r.text());

    // Signing in now leads to the phone step, and every page waits for it.
    let r = b.sign_in("amani@example.com", PASSWORD).await;
    assert_eq!(r.header("location"), Some("/portal/welcome"));
    for page in [
        "/portal",
        "/portal/apiusers",
        "/portal/profile",
        "/portal/mpesa",
    ] {
        let r = b.get(page).await;
        assert_eq!(r.header("location"), Some("/portal/welcome"), "{page}");
    }
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/phone",
            &[("phone", "12ab")],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/phone",
            &[("phone", "+255 712-345 678")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    // Another code only after a pause.
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/phone",
            &[("phone", "+255712345678")],
        )
        .await;
    assert_eq!(r.status, 429);
    let welcome = b.get("/portal/welcome").await.text();
    let code = sms_code(&welcome).expect("the SMS on the virtual phone");
    assert!(welcome.contains("+255712345678"), "{welcome}");
    // The SMS is in the mailbox too.
    let own = b.get("/portal/mail").await.text();
    assert!(
        own.contains(&format!("verification code is {code}")),
        "{own}"
    );
    let sms = last_mail(&app, id, MailKind::PhoneCode).await.unwrap();
    assert_eq!(sms.recipient, "255712345678");

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/code",
            &[("code", wrong)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("4 tries left"), "{}", r.text());
    assert_eq!(status(&app, id).await, AccountStatus::Phone);
    let r = b
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
    let welcome = b.get("/portal/welcome/done").await.text();
    let key = shown_key(&welcome);
    let account = app
        .running
        .platform
        .portal()
        .developer(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.phone.as_deref(), Some("255712345678"));
    assert_eq!(b.get("/portal").await.status, 200);
    // The code is used up.
    let r = b
        .submit(
            "/portal/profile",
            "/portal/welcome/code",
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal"));

    // The M-Pesa application was created at sign-up; its key works, and is found on the
    // Account Profile and the M-Pesa page (seed 004), and on the welcome page again.
    let mpesa = app.running.platform.mpesa().app(id).await.unwrap().unwrap();
    assert!(mpesa.created_at_ms <= mpesa.api_key_created_at_ms);
    assert_eq!(mpesa.api_key.as_deref(), Some(key.as_str()));
    assert_eq!(get_session(&app, &key).await, 200);
    for page in ["/portal/profile", "/portal/mpesa", "/portal/welcome/done"] {
        assert_eq!(shown_key(&b.get(page).await.text()), key, "{page}");
    }

    // The virtual phone page shows the SMS for that number.
    let phone = b.get("/portal/phone?msisdn=255712345678").await.text();
    assert!(
        phone.contains(&format!("verification code is {code}")),
        "{phone}"
    );
    // Another developer reads none of it.
    let mut c = Browser::new(&app.base);
    c.sign_up("chidi@example.com").await;
    for path in [
        "/portal/mail",
        "/portal/mail?to=amani%40example.com",
        "/portal/phone?msisdn=255712345678",
    ] {
        let html = c.get(path).await.text();
        assert!(!html.contains(&code), "{path}: {html}");
        assert!(!html.contains(&activate[1..]), "{path}: {html}");
    }
    let filtered = c.get("/portal/mail?to=amani%40example.com").await.text();
    assert!(filtered.contains("No messages"), "{filtered}");
}

#[tokio::test]
async fn the_sandbox_developer_is_active_and_existing_flows_still_sign_up() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.header("location"), Some("/portal"));
    assert_eq!(b.get("/portal/profile").await.status, 200);
    // The shared helper walks the journey for the other tests.
    let mut d = Browser::new(&app.base);
    d.sign_up("helper@example.com").await;
    assert_eq!(d.get("/portal").await.status, 200);
}

#[tokio::test]
async fn forged_expired_and_misused_links_are_refused() {
    let app = TestApp::spawn().await;
    let (mut b, _) = sign_up(&app, "links@example.com").await;
    let id = developer_id(&app, "links@example.com").await;
    let p = &app.running.platform;
    let past = now_ms() - 1;
    let later = now_ms() + 60_000;
    // Expired (410), made for another purpose or another subject (400).
    let expired = p
        .portal()
        .link_token(LinkPurpose::Activate, id, "links@example.com", past);
    assert_eq!(
        b.get(&format!("/portal/activate?t={expired}")).await.status,
        410
    );
    let mailbox = p
        .portal()
        .link_token(LinkPurpose::Mailbox, id, "links@example.com", later);
    assert_eq!(
        b.get(&format!("/portal/activate?t={mailbox}")).await.status,
        400
    );
    let other = p
        .portal()
        .link_token(LinkPurpose::Activate, id, "other@example.com", later);
    assert_eq!(
        b.get(&format!("/portal/activate?t={other}")).await.status,
        400
    );
    assert_eq!(b.get("/portal/activate").await.status, 400);
    assert_eq!(status(&app, id).await, AccountStatus::Pending);
    // An expired mailbox token opens nothing.
    let old = p
        .portal()
        .link_token(LinkPurpose::Mailbox, id, "links@example.com", past);
    let html = Browser::new(&app.base)
        .get(&format!("/portal/mail?t={old}"))
        .await
        .text();
    assert!(!html.contains("/portal/activate"), "{html}");
    // Expired reset and e-mail change links.
    let digest = p.portal().password_digest_of(id).await.unwrap().unwrap();
    let reset = p
        .portal()
        .link_token(LinkPurpose::ResetPassword, id, &digest, past);
    assert_eq!(b.get(&format!("/portal/reset?t={reset}")).await.status, 410);
    let change = p.portal().link_token(
        LinkPurpose::ChangeEmail,
        id,
        "links@example.com\nnew@example.com",
        past,
    );
    let r = b
        .get(&format!("/portal/profile/email/confirm?t={change}"))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("expired"), "{}", r.text());
    // The activation mail again: one a minute.
    let sent = b.get("/portal/signin").await;
    assert_eq!(sent.status, 200);
    let r = b.sign_in("links@example.com", PASSWORD).await;
    assert_eq!(r.status, 403);
    let token =
        link_in(&r.text(), "/portal/mail?t=").unwrap()["/portal/mail?t=".len()..].to_owned();
    let r = b
        .submit(
            "/portal/signin",
            "/portal/activate/resend",
            &[("t", &token)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        mails(&app, id, MailKind::Activation).await,
        1,
        "not again within a minute"
    );
}

#[tokio::test]
async fn the_phone_code_allows_five_tries() {
    let app = TestApp::spawn().await;
    let (mut b, _) = sign_up(&app, "tries@example.com").await;
    let id = developer_id(&app, "tries@example.com").await;
    let link = link_of(
        &last_mail(&app, id, MailKind::Activation)
            .await
            .unwrap()
            .body,
        "/portal/activate?t=",
    );
    b.get(&link).await;
    b.sign_in("tries@example.com", PASSWORD).await;
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/code",
            &[("code", "123456")],
        )
        .await;
    assert!(
        r.text().contains("Send a code"),
        "no code yet: {}",
        r.text()
    );
    b.submit(
        "/portal/welcome",
        "/portal/welcome/phone",
        &[("phone", "256772000001")],
    )
    .await;
    let code = sms_code(&b.get("/portal/welcome").await.text()).unwrap();
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for left in (0..5).rev() {
        let r = b
            .submit(
                "/portal/welcome",
                "/portal/welcome/code",
                &[("code", wrong)],
            )
            .await;
        assert!(
            r.text().contains(&format!("{left} tries left")),
            "{}",
            r.text()
        );
    }
    // Out of tries: even the right code is refused now.
    let r = b
        .submit(
            "/portal/welcome",
            "/portal/welcome/code",
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("send a new one"), "{}", r.text());
    assert_eq!(status(&app, id).await, AccountStatus::Phone);
}

/// On a page sent back with a refusal: control `id` is marked invalid and described by the
/// sentence, which stands in the section headed `section` (an id), before the control.
fn refused_field(page: &str, id: &str, section: &str) {
    let at = page.find(&format!("id=\"{id}\"")).expect("the field");
    let tag = &page[page[..at].rfind('<').unwrap()..at + page[at..].find('>').unwrap()];
    assert!(
        tag.contains("aria-invalid=\"true\"") && tag.contains("aria-describedby=\"form-error\""),
        "{tag}"
    );
    let error = page.find("id=\"form-error\"").expect("the sentence");
    let heading = page
        .find(&format!("id=\"{section}\""))
        .expect("the section");
    assert!(
        heading < error && error < at,
        "the sentence is in {section}'s section"
    );
}

/// A developer at the end of the journey, with a second browser signed in too.
async fn active(app: &TestApp, email: &str) -> (Browser, i64, String) {
    let mut b = Browser::new(&app.base);
    let r = b.sign_up(email).await;
    let key = shown_key(&r.text());
    (b, developer_id(app, email).await, key)
}

#[tokio::test]
async fn a_password_change_signs_out_every_other_session() {
    let app = TestApp::spawn().await;
    let (mut a, id, _) = active(&app, "pw@example.com").await;
    let mut other = Browser::new(&app.base);
    assert_eq!(other.sign_in("pw@example.com", PASSWORD).await.status, 303);
    assert_eq!(other.get("/portal").await.status, 200);
    let change = |current: &'static str| {
        [
            ("current", current),
            ("password", "the new long password"),
            ("password2", "the new long password"),
        ]
    };
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/password",
            &change("wrong password"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not right"));
    assert_eq!(other.get("/portal").await.status, 200, "nothing changed");
    // One too long is told it is too long (it was told "at least 10 characters").
    let long = "x".repeat(1025);
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/password",
            &[
                ("current", PASSWORD),
                ("password", long.as_str()),
                ("password2", long.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at most 1024 bytes"), "{}", r.text());
    // The field it is about is marked and described by the sentence, in its own section.
    refused_field(&r.text(), "new_password", "password-h");
    let before = a.cookies["mkoba_session"].clone();
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/password",
            &change(PASSWORD),
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal/profile?done=password"));
    assert_eq!(a.get("/portal").await.status, 200, "this browser stays in");
    // Under a new session id: one that leaked before the change is worth nothing.
    let after = a.cookies["mkoba_session"].clone();
    assert_ne!(before, after);
    let mut stolen = Browser::new(&app.base);
    stolen.cookies.insert("mkoba_session".to_owned(), before);
    assert_eq!(stolen.get("/portal").await.status, 303, "the old id ended");
    assert_eq!(
        other.get("/portal").await.status,
        303,
        "the other one ended"
    );
    let mut c = Browser::new(&app.base);
    assert_eq!(c.sign_in("pw@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        c.sign_in("pw@example.com", "the new long password")
            .await
            .status,
        303
    );
    assert!(
        last_mail(&app, id, MailKind::PasswordChanged)
            .await
            .is_some()
    );
    // The name is saved too; one with a character that reorders what follows it is not.
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/name",
            &[("name", "Amani\u{202e}.K")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Nor one whose percent-encoded bytes are not UTF-8 text (read as U+FFFD).
    let page = a.get("/portal/profile").await.text();
    let csrf = crate::portal::csrf_of(&page);
    let r = a
        .post_encoded(
            "/portal/profile/name",
            &format!("csrf={csrf}&name=Amani%FF%FE"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not UTF-8 text"), "{}", r.text());
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/name",
            &[("name", "Amani K.")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(a.get("/portal/profile").await.text().contains("Amani K."));
}

/// The sandbox developer's printed password (the banner's, `mkoba credentials`') is shown
/// while it signs in: once changed in the portal it is no longer printed, nor kept. Its
/// name changing alone keeps it.
#[tokio::test]
async fn the_sandbox_password_is_printed_only_while_it_signs_in() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);
    let r = b
        .submit(
            "/portal/profile",
            "/portal/profile/name",
            &[("name", "Sandbox Shop")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(app.sandbox_login().await.password, login.password);
    let r = b
        .submit(
            "/portal/profile",
            "/portal/profile/password",
            &[
                ("current", login.password.as_str()),
                ("password", "the new long password"),
                ("password2", "the new long password"),
            ],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal/profile?done=password"));
    let printed = app
        .running
        .platform
        .portal()
        .sandbox_login()
        .await
        .expect("reading the sandbox login");
    assert!(
        printed.is_none(),
        "a password that no longer signs in is not printed"
    );
    let mut c = Browser::new(&app.base);
    assert_eq!(
        c.sign_in(&login.email, "the new long password")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_a_link_that_works_once() {
    let app = TestApp::spawn().await;
    let (mut a, id, _) = active(&app, "forgot@example.com").await;
    let mut v = Browser::new(&app.base);
    // The same answer for an unknown address, and no mail.
    let r = v
        .submit(
            "/portal/forgot",
            "/portal/forgot",
            &[("email", "nobody@example.com")],
        )
        .await;
    assert_eq!(r.status, 200);
    let unknown = r.text();
    let r = v
        .submit(
            "/portal/forgot",
            "/portal/forgot",
            &[("email", "Forgot@example.com")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        unknown.replace("nobody@example.com", "x"),
        r.text().replace("forgot@example.com", "x")
    );
    assert_eq!(mails(&app, id, MailKind::PasswordReset).await, 1);
    // Asking again at once sends nothing more.
    v.submit(
        "/portal/forgot",
        "/portal/forgot",
        &[("email", "forgot@example.com")],
    )
    .await;
    assert_eq!(mails(&app, id, MailKind::PasswordReset).await, 1);
    let m = last_mail(&app, id, MailKind::PasswordReset).await.unwrap();
    assert_eq!(m.recipient, "forgot@example.com");
    let link = link_of(&m.body, "/portal/reset?t=");
    let t = link["/portal/reset?t=".len()..].to_owned();
    // The signed-in developer's mailbox shows it (sandbox mode).
    assert!(
        a.get("/portal/mail")
            .await
            .text()
            .contains("/portal/reset?t=")
    );

    assert_eq!(v.get(&link).await.status, 200);
    let r = v
        .submit(
            &link,
            "/portal/reset",
            &[("t", &t), ("password", "short"), ("password2", "short")],
        )
        .await;
    assert_eq!(r.status, 400);
    let fields = [
        ("t", t.as_str()),
        ("password", "a brand new password"),
        ("password2", "a brand new password"),
    ];
    let r = v.submit(&link, "/portal/reset", &fields).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("/portal/signin?done=reset")
    );
    assert_eq!(a.get("/portal").await.status, 303, "every session ended");
    // Once: the link no longer opens, nor posts.
    assert_eq!(v.get(&link).await.status, 410);
    let csrf = crate::portal::csrf_of(&v.get("/portal/forgot").await.text());
    let mut again = vec![("csrf", csrf.as_str())];
    again.extend_from_slice(&fields);
    assert_eq!(v.post("/portal/reset", &again).await.status, 410);
    assert_eq!(v.sign_in("forgot@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        v.sign_in("forgot@example.com", "a brand new password")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn an_email_change_is_confirmed_by_a_link_to_the_new_address() {
    let app = TestApp::spawn().await;
    let (mut a, id, _) = active(&app, "old@example.com").await;
    let mut taken = Browser::new(&app.base);
    taken.sign_up("taken@example.com").await;
    let change =
        |email: &'static str, password: &'static str| [("email", email), ("password", password)];
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/email",
            &change("new@example.com", "wrong"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/email",
            &change("taken@example.com", PASSWORD),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/email",
            &change("New@Example.com", PASSWORD),
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some("/portal/profile?done=email-sent")
    );
    let m = last_mail(&app, id, MailKind::EmailChange).await.unwrap();
    assert_eq!(m.recipient, "new@example.com");
    // Nothing changes until the link is opened.
    assert!(
        a.get("/portal/profile")
            .await
            .text()
            .contains("old@example.com")
    );
    let link = link_of(&m.body, "/portal/profile/email/confirm?t=");
    let mut anywhere = Browser::new(&app.base);
    let r = anywhere.get(&link).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data-testid=\"email-changed\""));
    assert!(
        a.get("/portal/profile")
            .await
            .text()
            .contains("new@example.com")
    );
    let told = last_mail(&app, id, MailKind::EmailChanged).await.unwrap();
    assert_eq!(told.recipient, "old@example.com");
    // Once.
    assert_eq!(anywhere.get(&link).await.status, 400);
    let mut c = Browser::new(&app.base);
    assert_eq!(c.sign_in("old@example.com", PASSWORD).await.status, 401);
    assert_eq!(c.sign_in("new@example.com", PASSWORD).await.status, 303);
}

/// Posts a form of the phone change page (`/portal/profile/phone{action}`).
async fn phone_form(b: &mut Browser, action: &str, field: (&str, &str)) -> crate::helpers::Resp {
    b.submit(
        "/portal/profile/phone",
        &format!("/portal/profile/phone{action}"),
        &[field],
    )
    .await
}

/// Seed 004: "From the My Profile tab, you can update personal details" — the phone number
/// too, confirmed as at sign-up by a code sent to the new number's virtual phone; the old
/// number stays until the code comes back, and the account's e-mail address is told.
#[tokio::test]
async fn a_phone_number_change_is_confirmed_by_a_code_sent_to_the_new_number() {
    let app = TestApp::spawn().await;
    let (mut a, id, _) = active(&app, "phone@example.com").await;
    let profile = a.get("/portal/profile").await.text();
    assert!(
        profile.contains("+255712345678 <a href=\"/portal/profile/phone\" data-testid=\"change-phone\">Change</a>"),
        "{profile}"
    );
    for (phone, said) in [
        ("+255 712 345 678", "That is your number already"),
        ("0712", "Give the number in international form"),
    ] {
        let r = phone_form(&mut a, "", ("phone", phone)).await;
        assert_eq!(r.status, 400, "{phone}");
        assert!(r.text().contains(said), "{phone}: {}", r.text());
    }
    let r = phone_form(&mut a, "", ("phone", "+255 754 000 111")).await;
    assert_eq!(
        r.header("location"),
        Some("/portal/profile/phone"),
        "{}",
        r.text()
    );
    let page = a.get("/portal/profile/phone").await.text();
    assert!(
        page.contains("We sent a 6-digit code to <strong>+255754000111</strong>"),
        "{page}"
    );
    assert!(page.contains("Virtual phone +255754000111"), "{page}");
    let code = sms_code(&page).expect("the SMS");
    // Nothing changes until the code comes back, and a wrong one counts.
    assert!(
        a.get("/portal/profile")
            .await
            .text()
            .contains("+255712345678")
    );
    let wrong = if code == "999999" { "999998" } else { "999999" };
    let r = phone_form(&mut a, "/code", ("code", wrong)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("That is not the code. 4 tries left"),
        "{}",
        r.text()
    );
    // The code's field is marked and points at the sentence, said in the code's section.
    refused_field(&r.text(), "code", "code-h");
    // Asking again at once is refused; the code sent stands.
    let r = phone_form(&mut a, "", ("phone", "+255 754 000 111")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let r = phone_form(&mut a, "/code", ("code", &code)).await;
    assert_eq!(
        r.header("location"),
        Some("/portal/profile?done=phone"),
        "{}",
        r.text()
    );
    let profile = a.get("/portal/profile?done=phone").await.text();
    assert!(
        profile.contains("Your phone number was changed."),
        "{profile}"
    );
    assert!(
        profile.contains("+255754000111") && !profile.contains("+255712345678"),
        "{profile}"
    );
    let told = last_mail(&app, id, MailKind::Notice).await.unwrap();
    assert_eq!(told.recipient, "phone@example.com");
    assert_eq!(told.subject, "Your Mkoba phone number was changed");
    // The code worked once.
    let r = phone_form(&mut a, "/code", ("code", &code)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("Send a code to your phone number first"),
        "{}",
        r.text()
    );
    // The sign-up's phone step stays closed to an active account.
    let r = a
        .submit(
            "/portal/profile",
            "/portal/welcome/phone",
            &[("phone", "+255 754 000 222")],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal"));
    assert_eq!(status(&app, id).await, AccountStatus::Active);
}

#[tokio::test]
async fn the_mpesa_settings_form_marks_the_field_it_refuses_and_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let (mut a, _, _) = active(&app, "settings@example.com").await;
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[
                ("origins", "https://shop.example/path"),
                ("session_lifetime_secs", "60"),
                ("result_url", ""),
            ],
            "origins",
            "https://shop.example/path",
        ),
        (
            &[
                ("origins", ""),
                ("session_lifetime_secs", "60"),
                ("result_url", ""),
            ],
            "origins",
            "at least one allowed origin",
        ),
        (
            &[
                ("origins", "*"),
                ("session_lifetime_secs", "0"),
                ("result_url", ""),
            ],
            "session_lifetime_secs",
            "between 1 and 2592000",
        ),
        (
            &[
                ("origins", "*"),
                ("session_lifetime_secs", "600"),
                ("result_url", "http://shop.example:12000/r"),
            ],
            "result_url",
            "value=\"http://shop.example:12000/r\"",
        ),
    ];
    for (fields, field, shown) in cases {
        let r = a
            .submit("/portal/mpesa", "/portal/mpesa/settings", fields)
            .await;
        assert_eq!(r.status, 400, "{field}: {}", r.text());
        let html = r.text();
        assert!(
            crate::helpers::marked_invalid(&html, field),
            "{field}: {html}"
        );
        for other in ["origins", "session_lifetime_secs", "result_url"] {
            if other != field {
                assert!(
                    !crate::helpers::marked_invalid(&html, other),
                    "{other}: {html}"
                );
            }
        }
        assert!(html.contains(shown), "{field}: {html}");
        // The sentence is in the settings' section, and what was typed is kept.
        let heading = html.find("id=\"settings\"").unwrap();
        let error = html.find("id=\"form-error\"").unwrap();
        assert!(heading < error, "{html}");
        let lifetime = fields[1].1;
        assert!(html.contains(&format!("value=\"{lifetime}\"")), "{html}");
    }
    // The result URL keeps its rules' hint beside the error.
    let r = a
        .submit(
            "/portal/mpesa",
            "/portal/mpesa/settings",
            &[
                ("origins", "*"),
                ("session_lifetime_secs", "600"),
                ("result_url", "ftp://x"),
            ],
        )
        .await;
    assert!(
        r.text()
            .contains("aria-describedby=\"url-rules form-error\""),
        "{}",
        r.text()
    );
    // Nothing was saved.
    let r = a.get("/portal/mpesa").await;
    assert!(!r.text().contains("aria-invalid"), "{}", r.text());
    assert!(r.text().contains("value=\"3600\""), "{}", r.text());
}

#[tokio::test]
async fn renewing_the_mpesa_key_and_regenerating_a_subscription_key_ask_first() {
    let app = TestApp::spawn().await;
    let (mut a, _, first) = active(&app, "confirm@example.com").await;
    // Renewal: the form without the confirmation gets the confirmation page; nothing
    // changes.
    let r = a.submit("/portal/mpesa", "/portal/mpesa/apikey", &[]).await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("Renew your M-Pesa API key?"), "{html}");
    assert!(html.contains("stops working at once"), "{html}");
    assert!(html.contains("name=\"confirm\" value=\"yes\""), "{html}");
    assert_eq!(a.get("/portal/mpesa/apikey").await.status, 200);
    assert!(
        html.contains("<a href=\"/portal/mpesa\">Cancel</a>"),
        "{html}"
    );
    // Asked from My profile, its Cancel goes back there.
    let r = a
        .submit(
            "/portal/profile",
            "/portal/mpesa/apikey",
            &[("from", "profile")],
        )
        .await;
    let html = r.text();
    assert!(
        html.contains("<a href=\"/portal/profile\">Cancel</a>")
            && html.contains("name=\"from\" value=\"profile\""),
        "{html}"
    );
    assert_eq!(get_session(&app, &first).await, 200);
    let r = a
        .submit(
            "/portal/mpesa",
            "/portal/mpesa/apikey",
            &[("confirm", "yes")],
        )
        .await;
    // A redirect to the page that shows the new key: reloading it renews nothing.
    assert_eq!(
        r.header("location"),
        Some("/portal/mpesa?done=renewed"),
        "{}",
        r.text()
    );
    let html = a.get("/portal/mpesa?done=renewed").await.text();
    assert!(
        html.contains("no longer works, and the sessions made with it ended"),
        "{html}"
    );
    let second = shown_key(&html);
    assert_ne!(first, second);
    assert_eq!(
        shown_key(&a.get("/portal/mpesa?done=renewed").await.text()),
        second
    );
    assert_eq!(shown_key(&a.get("/portal/profile").await.text()), second);
    assert_eq!(
        get_session(&app, &first).await,
        400,
        "the old key is refused"
    );
    assert_eq!(get_session(&app, &second).await, 200);

    // Regenerating a subscription key asks first too, and names the key that stopped.
    let old = a.subscribe("collection").await;
    let r = a
        .submit("/portal", "/portal/subscriptions/collection/primary", &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(&format!("…{}", &old[28..])),
        "{}",
        r.text()
    );
    assert_eq!(a.primary_key("collection").await, old, "unchanged");
    let r = a
        .submit(
            "/portal",
            "/portal/subscriptions/collection/primary",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    let overview = a.get(r.header("location").unwrap()).await.text();
    assert!(
        overview.contains(&format!("the key ending …{} no longer works", &old[28..])),
        "{overview}"
    );
    assert_ne!(a.primary_key("collection").await, old);
}

#[tokio::test]
async fn profile_shows_keys_per_product_and_the_public_key_as_pem() {
    let app = TestApp::spawn().await;
    let (mut a, _, _) = active(&app, "profile@example.com").await;
    let key = a.subscribe("disbursement").await;
    let html = a.get("/portal/profile").await.text();
    assert!(html.contains(&key), "{html}");
    assert!(html.contains("issued"), "{html}");
    assert!(html.contains("+255712345678"), "{html}");
    let r = a.get("/portal/profile/mpesa-public-key.pem").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-pem-file"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let pem = r.text();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(body, app.running.mpesa_key.public_key_base64());
    assert!(pem.lines().all(|l| l.len() <= 64));
}

#[tokio::test]
async fn deleting_an_account_stops_its_keys_and_keeps_its_history() {
    let app = TestApp::spawn().await;
    let (mut a, id, mpesa_key) = active(&app, "leaving@example.com").await;
    let sub = a.subscribe("collection").await;
    let (user, api_key) = a.create_api_user("127.0.0.1").await;
    let basic = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{api_key}"));
        format!("Basic {b64}")
    };
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[
                ("Ocp-Apim-Subscription-Key", &sub),
                ("Authorization", &basic),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = r.json()["access_token"].as_str().unwrap().to_owned();
    let reference = Uuid::new_v4();
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[
                ("Ocp-Apim-Subscription-Key", &sub),
                ("Authorization", &format!("Bearer {bearer}")),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference.to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(&rtp_body("25", "256770000001")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for(|| async {
        app.running
            .platform
            .payments()
            .get(&reference)
            .await
            .unwrap()
            .filter(|p| p.status.is_final())
    })
    .await;
    let mut other = Browser::new(&app.base);
    other.sign_in("leaving@example.com", PASSWORD).await;

    // The button asks first, with the password on the confirmation page.
    let r = a
        .submit("/portal/profile", "/portal/profile/delete", &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("cannot be undone") && r.text().contains("name=\"password\""));
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/delete",
            &[("confirm", "yes"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(status(&app, id).await, AccountStatus::Active);
    let r = a
        .submit(
            "/portal/profile",
            "/portal/profile/delete",
            &[("confirm", "yes"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data-testid=\"deleted\""));
    assert_eq!(status(&app, id).await, AccountStatus::Deleted);
    // Signed out everywhere; no sign-in.
    assert_eq!(a.get("/portal").await.status, 303);
    assert_eq!(other.get("/portal").await.status, 303);
    assert_eq!(
        Browser::new(&app.base)
            .sign_in("leaving@example.com", PASSWORD)
            .await
            .status,
        401
    );
    // Its keys stop at once: subscription key, API key, M-Pesa key.
    let r = app
        .send(
            "POST",
            "/collection/token/",
            &[
                ("Ocp-Apim-Subscription-Key", &sub),
                ("Authorization", &basic),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        !app.running
            .platform
            .credentials()
            .verify_api_key(&user, &api_key)
            .await
            .unwrap()
    );
    assert_eq!(get_session(&app, &mpesa_key).await, 400);
    // Its history stays: the API user, the payment, a balanced ledger.
    assert!(
        app.running
            .platform
            .credentials()
            .api_user(&user)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        app.running
            .platform
            .payments()
            .get(&reference)
            .await
            .unwrap()
            .is_some()
    );
    app.assert_ledger_balanced().await;
    // The old address was told, and may sign up again.
    let goodbye = last_mail(&app, id, MailKind::AccountDeleted).await.unwrap();
    assert_eq!(goodbye.recipient, "leaving@example.com");
    let again = sign_up(&app, "leaving@example.com").await;
    assert_ne!(developer_id(&app, "leaving@example.com").await, id);
    drop(again);
}

/// A minimal SMTP server: answers every command, refuses recipients containing "reject",
/// and keeps each message's DATA.
struct FakeSmtp {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl FakeSmtp {
    async fn start() -> FakeSmtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let answer: &[u8] =
                            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                                b"250-fake\r\n250 8BITMIME\r\n"
                            } else if upper.starts_with("RCPT") && upper.contains("REJECT") {
                                b"550 5.1.1 no such user\r\n"
                            } else if upper.starts_with("DATA") {
                                let _ = write.write_all(b"354 go on\r\n").await;
                                let mut data = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    data.push_str(&l);
                                    data.push('\n');
                                }
                                kept.lock().unwrap().push(data);
                                b"250 queued\r\n"
                            } else if upper.starts_with("QUIT") {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            } else {
                                b"250 ok\r\n"
                            };
                        if write.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FakeSmtp { port, messages }
    }
}

#[tokio::test]
async fn mail_goes_out_through_smtp_when_configured_and_the_mailbox_keeps_its_links() {
    let smtp = FakeSmtp::start().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(|s| {
        s.smtp = Some(mkoba::config::SmtpSettings {
            url: mkoba::config::SmtpUrl(url),
            from: "Mkoba <no-reply@mkoba.test>".into(),
        });
        s.platform.mail_delivery = true;
        s.portal.sandbox_mailbox = false;
    })
    .await;
    let (mut b, sent) = sign_up(&app, "smtp@example.com").await;
    let id = developer_id(&app, "smtp@example.com").await;
    // Sent, once, with the activation link.
    let data = wait_for(|| async { smtp.messages.lock().unwrap().first().cloned() }).await;
    // Quoted-printable, as lettre may encode long lines: soft breaks and `=`.
    let data = data.replace("=\n", "").replace("=3D", "=");
    assert!(data.contains("To: smtp@example.com"), "{data}");
    assert!(data.contains("From: Mkoba <no-reply@mkoba.test>"), "{data}");
    let m = wait_for(|| async {
        last_mail(&app, id, MailKind::Activation)
            .await
            .filter(|m| m.state == MailState::Sent)
    })
    .await;
    assert_eq!(m.attempts, 1);
    // No mailbox link, cookie or readable token without the sandbox mailbox.
    let page = b.get(&sent).await.text();
    assert!(!page.contains("/portal/mail?t="), "{page}");
    assert!(!b.cookies.contains_key("mkoba_mailbox"));
    let t = &sent["/portal/signup/sent?t=".len()..];
    let html = b.get(&format!("/portal/mail?t={t}")).await.text();
    assert!(!html.contains("/portal/activate"), "{html}");
    // The link from the e-mail activates the account.
    let link = link_of(&data, "/portal/activate?t=");
    assert_eq!(b.get(&link).await.status, 200);
    assert_eq!(status(&app, id).await, AccountStatus::Phone);
    // Signed in, the developer's own mailbox lists the message but not its link.
    b.sign_in("smtp@example.com", PASSWORD).await;
    let own = b.get("/portal/mail").await.text();
    assert!(
        own.contains("Activate your Mkoba developer account"),
        "{own}"
    );
    assert!(!own.contains("/portal/activate?t="), "{own}");
    assert_eq!(smtp.messages.lock().unwrap().len(), 1, "sent once");

    // A recipient the server refuses for good: failed, not retried.
    let (_, _) = sign_up(&app, "reject@example.com").await;
    let rejected = developer_id(&app, "reject@example.com").await;
    let m = wait_for(|| async {
        last_mail(&app, rejected, MailKind::Activation)
            .await
            .filter(|m| m.state == MailState::Failed)
    })
    .await;
    assert!(m.last_error.unwrap().contains("refused"));
}

/// Without a mail server and without the sandbox mailbox (the production profile's
/// default), the pages say that no activation link can come: they said "we sent" one, and
/// "look in your inbox".
#[tokio::test]
async fn without_a_mail_server_the_pages_do_not_say_mail_was_sent() {
    let app = TestApp::spawn_with(|s| s.portal.sandbox_mailbox = false).await;
    let (mut b, sent) = sign_up(&app, "nomail@example.com").await;
    let page = b.get(&sent).await.text();
    assert!(page.contains("this server sends no e-mail"), "{page}");
    assert!(!page.contains("We sent an activation link"), "{page}");
    let mailbox = b.get("/portal/mail").await.text();
    assert!(mailbox.contains("This server sends no e-mail"), "{mailbox}");
    assert!(!mailbox.contains("look in your inbox"), "{mailbox}");
}

/// On a server with real mail (no sandbox mailbox), signing up with an address that has an
/// account is answered as a new one is, down to the page after it and its "send again"
/// button, and only the address's owner is told, by mail: sign-up does not say who has an
/// account here. (With the sandbox mailbox, it says so: `sign_up_is_inactive_until_…`.)
#[tokio::test]
async fn with_real_mail_sign_up_does_not_tell_that_an_address_has_an_account() {
    let app = TestApp::spawn_with(|s| s.portal.sandbox_mailbox = false).await;
    // The sandbox developer's account: active, with its own password.
    let owner = app.sandbox_login().await;
    let id = developer_id(&app, &owner.email).await;
    let (mut again, taken) = sign_up(&app, &owner.email.to_uppercase()).await;
    let (mut fresh, new) = sign_up(&app, "someone@example.com").await;
    // The two pages differ only in the address.
    let page = |p: String, email: &str| p.replace(email, "ADDRESS");
    let taken_page = page(again.get(&taken).await.text(), &owner.email);
    let new_page = page(fresh.get(&new).await.text(), "someone@example.com");
    let strip = |p: &str| {
        // The forms' tokens differ by nature.
        p.split("value=\"")
            .map(|part| part.split_once('"').map_or(part, |(_, rest)| rest))
            .collect::<String>()
    };
    assert_eq!(strip(&taken_page), strip(&new_page));
    // Nor do their links' claims, which anyone can read: no account id in either (the
    // owner's, older, would tell).
    for sent in [&taken, &new] {
        let t = sent.split("t=").nth(1).unwrap();
        let t = t
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        let claims = app
            .running
            .platform
            .portal()
            .check_link(LinkPurpose::Mailbox, &t)
            .unwrap();
        assert_eq!(claims.developer_id, 0, "{sent}");
    }
    // "Send the activation e-mail again" answers alike too.
    for (b, sent) in [(&mut again, &taken), (&mut fresh, &new)] {
        let t = sent.split("t=").nth(1).unwrap();
        // (This server sends no mail, so its page has no such button; the form is the one
        // a server with a mail server shows, with the sign-up page's token.)
        let r = b
            .submit("/portal/signup", "/portal/activate/resend", &[("t", t)])
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert!(
            r.header("location")
                .unwrap()
                .starts_with("/portal/signup/sent?again=1&t="),
            "{:?}",
            r.header("location")
        );
    }
    // The owner is told.
    let told = last_mail(&app, id, MailKind::Notice).await.unwrap();
    assert_eq!(told.recipient, owner.email);
    assert_eq!(told.subject, "You already have a Mkoba account");
    assert!(told.body.contains("/portal/forgot"), "{}", told.body);
    // And nothing changed: the owner signs in with the old password, the new address
    // waits for its activation.
    let mut c = Browser::new(&app.base);
    assert_eq!(c.sign_in(&owner.email, &owner.password).await.status, 303);
    assert_eq!(status(&app, id).await, AccountStatus::Active);
}
