//! The account journey outside the signed-in pages: the activation link, the phone step
//! (a number, then the 6-digit code sent to the virtual phone, which makes the account
//! active and shows its M-Pesa API key once), and forgot-password.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mkoba_platform::accounts::{
    AccountError, AccountOutcome, AccountStatus, LinkError, LinkPurpose, MAIL_INTERVAL_MS,
    MailChannel, MailFilter, PHONE_CODE_TTL_MS, normalize_phone,
};

use super::account::{auth_page, sign_in_form};
use super::mail;
use crate::html::Html;
use crate::{
    ClientAddr, Form, Onboarding, PortalState, Session, csrf_field, document, form_encode,
    pre_session_ok, query_params, see_other, w, when,
};

/// What a password reset throttle refusal names.
const RESET_TRIES: &str = "password reset requests for this account or from this address";

fn link_refused(state: &PortalState, headers: &HeaderMap, e: LinkError, what: &str) -> Response {
    let (status, text) = match e {
        LinkError::Expired => (
            StatusCode::GONE,
            "This link has expired. Sign in to have a new one sent, or start again.",
        ),
        LinkError::Invalid => (
            StatusCode::BAD_REQUEST,
            "This link is not valid: it may be cut short, or from another server. Copy the whole link from the message.",
        ),
    };
    let what = what.to_owned();
    auth_page(state, headers, status, "Link refused", move |h, _| {
        w!(*h, "<h1>" {what} "</h1><p class=\"error\" role=\"alert\">" {text} "</p>"
            "<p><a href=\"/portal/signin\">Sign in</a></p>");
    })
}

/// `GET /portal/activate?t=…`: the activation link of the e-mail.
pub(crate) async fn activate(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let token = q.get("t").map(String::as_str).unwrap_or("");
    let claims = match state
        .platform
        .portal()
        .check_link(LinkPurpose::Activate, token)
    {
        Ok(c) => c,
        Err(e) => return link_refused(&state, &headers, e, "Activation refused"),
    };
    let result = state
        .platform
        .portal()
        .activate_email(claims.developer_id, &claims.subject)
        .await;
    let lead = match result {
        Ok(AccountOutcome::Done) => {
            tracing::info!(
                developer.id = claims.developer_id,
                "account e-mail confirmed"
            );
            "Your e-mail is confirmed. Sign in to add your phone number: a code goes to the virtual phone, and then your account is active."
        }
        Ok(AccountOutcome::AlreadyDone) => "This account was activated already. Sign in.",
        Err(e @ (AccountError::Internal | AccountError::Busy)) => return crate::failed(e),
        Err(_) => {
            return link_refused(&state, &headers, LinkError::Invalid, "Activation refused");
        }
    };
    let email = claims.subject;
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Account activated",
        |h, t| {
            w!(*h, "<p class=\"notice\" role=\"status\" data-testid=\"activated\">" {lead} "</p>");
            sign_in_form(h, t, &email, "/portal/welcome", None);
        },
    )
}

/// What a phone code is for: the last step of sign-up, or a new number for an active
/// account (My profile). The pages and forms are the same but for their words and where
/// they post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhoneStep {
    SignUp,
    Change,
}

impl PhoneStep {
    fn send_to(self) -> &'static str {
        match self {
            PhoneStep::SignUp => "/portal/welcome/phone",
            PhoneStep::Change => "/portal/profile/phone",
        }
    }

    fn code_to(self) -> &'static str {
        match self {
            PhoneStep::SignUp => "/portal/welcome/code",
            PhoneStep::Change => "/portal/profile/phone/code",
        }
    }

    fn title(self) -> &'static str {
        match self {
            PhoneStep::SignUp => "Add your phone number",
            PhoneStep::Change => "Change your phone number",
        }
    }

    /// After a code is sent.
    fn page(self) -> &'static str {
        match self {
            PhoneStep::SignUp => "/portal/welcome",
            PhoneStep::Change => "/portal/profile/phone",
        }
    }
}

/// The phone step's page.
pub(crate) async fn phone_page(
    state: &PortalState,
    session: &Session,
    step: PhoneStep,
    status: StatusCode,
    // A refusal: the control it is about (`phone` or `code`) and the sentence.
    error: Option<(&'static str, &str)>,
    phone: &str,
) -> Response {
    let code = match state
        .platform
        .portal()
        .phone_code_of(session.developer.id)
        .await
    {
        Ok(c) => c,
        Err(e) => return crate::failed(e),
    };
    let csrf = csrf_field(session);
    let mut h = Html::new();
    let lead = match step {
        PhoneStep::SignUp => "The last step: confirm a phone number with the code we send to it.",
        PhoneStep::Change => {
            "Confirm the new number with the code we send to it: it replaces your current one then."
        }
    };
    w!(h, "<h1>" {step.title()} "</h1>"
        "<p class=\"lead\">" {lead} " In this sandbox the code goes to the <strong>virtual phone</strong> of that number, shown below and in your <a href=\"/portal/mail\">mailbox</a>.</p>");
    if step == PhoneStep::Change
        && let Some(current) = &session.developer.phone
    {
        w!(h, "<p>Your number now: <strong>+" {current} "</strong>. <a href=\"/portal/profile\">Back to my profile</a></p>");
    }
    // Said in the section of the form it is about, which marks its field and points it at
    // the sentence.
    let problem: Option<crate::Problem> = error.map(|(field, text)| (field, text.to_owned()));
    let at = |field: &str| problem.as_ref().filter(|(f, _)| *f == field);
    // A code refused when none is waiting any more (it ran out): said at the top.
    if code.is_none() {
        crate::form_error(&mut h, at("code"));
    }
    let number = code
        .as_ref()
        .map(|c| c.msisdn.clone())
        .unwrap_or_else(|| phone.to_owned());
    w!(h, "<section class=\"card\" aria-labelledby=\"number\"><h2 id=\"number\">1. Your phone number</h2>"
        [crate::form_error_html(at("phone"))]
        "<form method=\"post\" action=\"" {step.send_to()} "\" class=\"stack\">" [csrf]
        "<label for=\"phone\">" {if step == PhoneStep::Change { "New phone number" } else { "Phone number" }} " <span class=\"hint\">(international form, e.g. +255 712 345 678)</span></label>"
        "<input id=\"phone\" name=\"phone\" type=\"tel\" inputmode=\"tel\" autocomplete=\"tel\" required maxlength=\"40\" value=\"" {number} "\"" [crate::invalid_if(problem.as_ref(), "phone")] ">"
        "<button type=\"submit\" class=\"" {if code.is_some() { "secondary" } else { "" }} "\">"
        {if code.is_some() { "Send a new code" } else { "Send the code" }} "</button></form></section>");
    if let Some(c) = &code {
        w!(h, "<section class=\"card\" aria-labelledby=\"code-h\"><h2 id=\"code-h\">2. The code</h2>"
            "<p>We sent a 6-digit code to <strong>+" {c.msisdn} "</strong> at " {when(c.sent_at_ms)} ". It works for " {PHONE_CODE_TTL_MS / 60_000} " minutes.</p>"
            [crate::form_error_html(at("code"))]
            "<form method=\"post\" action=\"" {step.code_to()} "\" class=\"stack\">" [csrf]
            "<label for=\"code\">Code</label>"
            "<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" maxlength=\"6\" required" [crate::invalid_if(problem.as_ref(), "code")] ">"
            "<button type=\"submit\">" {if step == PhoneStep::Change { "Confirm the new number" } else { "Confirm and activate" }} "</button></form></section>");
        let filter = MailFilter {
            recipient: Some(c.msisdn.clone()),
            channel: Some(MailChannel::Sms),
            limit: 3,
            ..MailFilter::of(session.developer.id)
        };
        let sms = state
            .platform
            .portal()
            .mailbox(&filter)
            .await
            .unwrap_or_default();
        w!(h, "<section class=\"card\" aria-labelledby=\"inbox\"><h2 id=\"inbox\">Virtual phone +" {c.msisdn} "</h2>"
            "<div class=\"phone\"><div class=\"screen\"><p class=\"carrier\">Mkoba · " {c.msisdn} "</p>");
        for m in &sms {
            w!(h, "<article class=\"prompt sms\" aria-label=\"SMS\"><p class=\"hint\">" {when(m.created_at_ms)} "</p><p data-testid=\"sms\">" {m.body} "</p></article>");
        }
        h.raw("</div></div></section>");
    }
    let nav = if step == PhoneStep::Change {
        "profile"
    } else {
        ""
    };
    (status, document(step.title(), Some(session), nav, h)).into_response()
}

/// `GET /portal/welcome`: the phone step (an active account goes to the overview).
pub(crate) async fn welcome(
    State(state): State<PortalState>,
    Onboarding(session): Onboarding,
) -> Response {
    if session.developer.status == AccountStatus::Active {
        return see_other("/portal");
    }
    phone_page(
        &state,
        &session,
        PhoneStep::SignUp,
        StatusCode::OK,
        None,
        "",
    )
    .await
}

/// `POST /portal/welcome/phone`: sends a code to the number's virtual phone.
pub(crate) async fn send_code(
    State(state): State<PortalState>,
    Onboarding(session): Onboarding,
    body: Bytes,
) -> Response {
    send_phone_code(&state, &session, PhoneStep::SignUp, &body).await
}

/// Sends a code to the number of the form (the sign-up's, or a new one), or says why not.
pub(crate) async fn send_phone_code(
    state: &PortalState,
    session: &Session,
    step: PhoneStep,
    body: &[u8],
) -> Response {
    let form = Form::parse(body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let typed = form.get("phone");
    let Some(msisdn) = normalize_phone(typed) else {
        return phone_page(
            state,
            session,
            step,
            StatusCode::BAD_REQUEST,
            Some((
                "phone",
                "Give the number in international form: an optional +, the country code and the number, 8 to 15 digits (spaces and dashes are fine).",
            )),
            typed,
        ).await;
    };
    if step == PhoneStep::Change && session.developer.phone.as_deref() == Some(msisdn.as_str()) {
        return phone_page(
            state,
            session,
            step,
            StatusCode::BAD_REQUEST,
            Some(("phone", "That is your number already: give the new one.")),
            typed,
        )
        .await;
    }
    let portal = state.platform.portal();
    let sent = match step {
        PhoneStep::SignUp => {
            portal
                .start_phone_verification(session.developer.id, &msisdn)
                .await
        }
        PhoneStep::Change => {
            portal
                .start_phone_change(session.developer.id, &msisdn)
                .await
        }
    };
    match sent {
        Ok(()) => see_other(step.page()),
        Err(AccountError::TooSoon { wait_ms }) => {
            let text = format!(
                "A code was sent less than a minute ago; wait {} more seconds before asking for another.",
                (wait_ms + 999) / 1000
            );
            phone_page(
                state,
                session,
                step,
                StatusCode::TOO_MANY_REQUESTS,
                Some(("phone", &text)),
                typed,
            )
            .await
        }
        Err(AccountError::WrongState) => see_other("/portal"),
        Err(e) => crate::failed(e),
    }
}

/// `POST /portal/welcome/code`: the right code activates the account and shows its
/// M-Pesa API key, once.
pub(crate) async fn check_code(
    State(state): State<PortalState>,
    Onboarding(session): Onboarding,
    body: Bytes,
) -> Response {
    if let Err(refused) = check_phone_code(&state, &session, PhoneStep::SignUp, &body).await {
        return refused;
    }
    tracing::info!(developer.id = session.developer.id, "account active");
    // After a redirect: reloading the welcome page sends the code again to no one.
    see_other("/portal/welcome/done")
}

/// Checks the form's code (the sign-up's, or a new number's): `Ok` once it was right and
/// the account changed, else the page that says why.
pub(crate) async fn check_phone_code(
    state: &PortalState,
    session: &Session,
    step: PhoneStep,
    body: &[u8],
) -> Result<(), Response> {
    let form = Form::parse(body);
    if !session.check(&form) {
        return Err(crate::csrf_refused());
    }
    let code = form.get("code");
    let refuse = async |text: &str| {
        Err(phone_page(
            state,
            session,
            step,
            StatusCode::BAD_REQUEST,
            Some(("code", text)),
            "",
        )
        .await)
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return refuse("The code is 6 digits.").await;
    }
    let portal = state.platform.portal();
    let d = &session.developer;
    let checked = match step {
        PhoneStep::SignUp => portal.verify_phone(d.id, code).await.map(|_| ()),
        PhoneStep::Change => {
            let notice = super::mail::phone_changed(d.id, &d.name, &d.email);
            portal.change_phone(d.id, code, Some(notice)).await
        }
    };
    match checked {
        Ok(()) => Ok(()),
        Err(AccountError::WrongCode { attempts_left }) => {
            let text = format!(
                "That is not the code. {attempts_left} tries left; then ask for a new code."
            );
            refuse(&text).await
        }
        Err(AccountError::CodeExpired) => {
            refuse("This code has expired or had too many wrong tries: send a new one.").await
        }
        Err(AccountError::NoCode) => refuse("Send a code to your phone number first.").await,
        Err(AccountError::WrongState) => Err(see_other("/portal")),
        Err(e) => Err(crate::failed(e)),
    }
}

/// `GET /portal/welcome/done`: the account is active; its M-Pesa API key, as on the
/// profile, and the next steps.
pub(crate) async fn welcome_done(State(state): State<PortalState>, session: Session) -> Response {
    let app = state.mpesa_application(session.developer.id).await;
    let mut h = Html::new();
    w!(h, "<h1>Welcome, " {session.developer.name} "</h1>"
        "<p class=\"notice\" role=\"status\">Your account is active.</p>"
        "<section class=\"card\" aria-labelledby=\"mpesa-key\"><h2 id=\"mpesa-key\">Your M-Pesa API key</h2>"
        "<p>Your M-Pesa application was created with your account. Its API key is also on <a href=\"/portal/profile\">My profile</a>, where you can renew it.</p>");
    super::mpesa::api_key(&mut h, app.as_ref());
    h.raw(concat!("<p>Clients encrypt it with the platform's public key (on <a href=\"/portal/profile\">My profile</a> and the <a href=\"/portal/mpesa\">M-Pesa</a> page) and send it as the bearer of <code>getSession</code>.</p></section>",
        "<h2>Next steps</h2><ol class=\"steps\">",
        "<li><a href=\"/portal\">Subscribe to a MoMo product</a> to get its subscription keys.</li>",
        "<li><a href=\"/portal/apiusers\">Create an API user and key</a>.</li>",
        "<li>Read the <a href=\"/portal/docs\">API docs</a> and try a call.</li></ol>"));
    document("Welcome", Some(&session), "overview", h).into_response()
}

fn forgot_form(h: &mut Html, token: &str, email: &str) {
    w!(*h, "<h1>Forgot your password?</h1>"
        "<p class=\"lead\">Give your account's e-mail: we send a link to choose a new password. It works for an hour, once.</p>"
        "<form method=\"post\" action=\"/portal/forgot\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {token} "\">"
        "<label for=\"email\">E-mail</label>"
        "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required maxlength=\"254\" value=\"" {email} "\">"
        "<button type=\"submit\">Send the link</button></form>"
        "<p><a href=\"/portal/signin\">Back to sign in</a></p>");
}

/// `GET /portal/forgot`.
pub(crate) async fn forgot_page(State(state): State<PortalState>, headers: HeaderMap) -> Response {
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Forgot your password?",
        |h, t| forgot_form(h, t, ""),
    )
}

/// `POST /portal/forgot`: the same answer whether or not the address has an account (so
/// it tells nobody which addresses do); at most one link a minute per account.
pub(crate) async fn forgot(
    State(state): State<PortalState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return crate::csrf_refused();
    }
    let email = form.get("email").to_lowercase();
    // Counted for any address typed, an account's or not, so the answer tells nothing.
    if let Err(refused) = state
        .throttle
        .reset_from(client)
        .and_then(|()| state.throttle.reset_for(&email))
    {
        return crate::throttled(refused, RESET_TRIES, ("/portal/forgot", "Back"));
    }
    if !email.is_empty() && email.len() <= 254 {
        match state.platform.portal().account_by_email(&email).await {
            Ok(Some((account, digest))) if account.status != AccountStatus::Deleted => {
                let m = mail::password_reset(
                    &state,
                    account.id,
                    &account.name,
                    &account.email,
                    &digest,
                );
                match state
                    .platform
                    .portal()
                    .queue_mail_unless_recent(m, MAIL_INTERVAL_MS)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(developer.id = account.id, "password reset link sent");
                    }
                    Ok(false) => {}
                    Err(e) => return crate::failed(e),
                }
            }
            Ok(_) => {}
            Err(e) => return crate::failed(e),
        }
    }
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Check your e-mail",
        |h, _| {
            w!(*h, "<h1>Check your e-mail</h1>"
            "<p class=\"lead\">If an account uses <strong>" {email} "</strong>, a link to choose a new password is on its way. It works for an hour, once.</p>");
            if state.config.sandbox_mailbox {
                h.raw("<p class=\"hint\">No mail server is configured: the message is kept in the account's mailbox in this server's database, for its operator.</p>");
            }
            h.raw("<p><a href=\"/portal/signin\">Back to sign in</a></p>");
        },
    )
}

fn reset_form(h: &mut Html, csrf: &str, t: &str, error: Option<&str>) {
    h.raw("<h1>Choose a new password</h1>");
    if let Some(e) = error {
        w!(*h, "<p class=\"error\" role=\"alert\">" {e} "</p>");
    }
    w!(*h, "<form method=\"post\" action=\"/portal/reset\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {csrf} "\">"
        "<input type=\"hidden\" name=\"t\" value=\"" {t} "\">"
        "<label for=\"password\">New password <span class=\"hint\">(at least 10 characters)</span></label>"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">"
        "<label for=\"password2\">New password again</label>"
        "<input id=\"password2\" name=\"password2\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">"
        "<button type=\"submit\">Set the password</button></form>"
        "<p class=\"hint\">Every session of the account is signed out.</p>");
}

const RESET_USED: &str =
    "This link was used already, or the password changed since it was sent. Ask for a new one.";

/// `GET /portal/reset?t=…`: the form of a live reset link.
pub(crate) async fn reset_page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let t = q.get("t").cloned().unwrap_or_default();
    let claims = match state
        .platform
        .portal()
        .check_link(LinkPurpose::ResetPassword, &t)
    {
        Ok(c) => c,
        Err(e) => return link_refused(&state, &headers, e, "Password reset refused"),
    };
    match state
        .platform
        .portal()
        .password_digest_of(claims.developer_id)
        .await
    {
        Ok(Some(d)) if d == claims.subject => {}
        Ok(_) => return used(&state, &headers),
        Err(e) => return crate::failed(e),
    }
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Choose a new password",
        |h, c| reset_form(h, c, &t, None),
    )
}

fn used(state: &PortalState, headers: &HeaderMap) -> Response {
    auth_page(
        state,
        headers,
        StatusCode::GONE,
        "Password reset refused",
        |h, _| {
            w!(*h, "<h1>Password reset refused</h1><p class=\"error\" role=\"alert\">" {RESET_USED} "</p>"
            "<p><a href=\"/portal/forgot\">Send a new link</a></p>");
        },
    )
}

/// `POST /portal/reset`.
pub(crate) async fn reset(
    State(state): State<PortalState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return crate::csrf_refused();
    }
    const BACK: (&str, &str) = ("/portal/signin", "Back to sign in");
    if let Err(refused) = state.throttle.reset_from(client) {
        return crate::throttled(refused, RESET_TRIES, BACK);
    }
    let t = form.get("t").to_owned();
    let claims = match state
        .platform
        .portal()
        .check_link(LinkPurpose::ResetPassword, &t)
    {
        Ok(c) => c,
        Err(e) => return link_refused(&state, &headers, e, "Password reset refused"),
    };
    let password = form.raw("password");
    let problem = if let Some(problem) = crate::password_problem(password, false) {
        Some(problem)
    } else if password != form.raw("password2") {
        Some("The two passwords differ.")
    } else {
        None
    };
    if let Some(p) = problem {
        return auth_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "Choose a new password",
            |h, c| reset_form(h, c, &t, Some(p)),
        );
    }
    let Ok(Some(account)) = state.platform.portal().developer(claims.developer_id).await else {
        return used(&state, &headers);
    };
    if let Err(refused) = state.throttle.reset_for(&account.email) {
        return crate::throttled(refused, RESET_TRIES, BACK);
    }
    let notice = mail::password_changed(account.id, &account.name, &account.email);
    let done = state
        .throttle
        .passwords()
        .run(state.platform.portal().reset_password(
            account.id,
            &claims.subject,
            password,
            Some(notice),
        ))
        .await;
    let Ok(done) = done else {
        return crate::busy(BACK);
    };
    match done {
        Ok(()) => {
            tracing::info!(developer.id = account.id, "password reset");
            see_other(&format!(
                "/portal/signin?done=reset&email={}",
                form_encode(&account.email)
            ))
        }
        Err(e @ (AccountError::Internal | AccountError::Busy)) => crate::failed(e),
        Err(_) => used(&state, &headers),
    }
}
