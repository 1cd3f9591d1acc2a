//! Sign-up (an inactive account and its activation mail), sign-in (an account not yet
//! activated is told so; one at the phone step goes there), sign-out, and the overview:
//! products, subscriptions and their keys (regenerating one asks first).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::accounts::{AccountStatus, LinkPurpose, MAIL_INTERVAL_MS};
use mkoba_platform::model::{KeySlot, Product};
use mkoba_platform::portal::SignUpError;

use super::{confirm, mail};
use crate::html::Html;
use crate::{
    ClientAddr, Form, Onboarding, PortalState, Problem, Session, csrf_field, document, form_encode,
    internal_error, pre_session_ok, pre_session_token, query_params, see_other, w,
};

/// Only portal paths are followed after sign-in (no open redirects), and only those a
/// `Location` header can carry (no control characters), and no `.` or `..` segment (which
/// a browser resolves, `%2e` as a dot too, leaving `/portal`).
fn safe_next(next: Option<&str>) -> String {
    let dotted = |n: &str| {
        let path = n.split(['?', '#']).next().unwrap_or_default();
        path.split('/').any(|segment| {
            let segment = segment.to_ascii_lowercase().replace("%2e", ".");
            segment == "." || segment == ".."
        })
    };
    match next {
        Some(n)
            if (n == "/portal" || n.starts_with("/portal/") || n.starts_with("/portal?"))
                && !n.contains("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && !dotted(n) =>
        {
            n.to_owned()
        }
        _ => "/portal".to_owned(),
    }
}

pub(crate) fn auth_page(
    state: &PortalState,
    headers: &HeaderMap,
    status: StatusCode,
    title: &'static str,
    build: impl FnOnce(&mut Html, &str),
) -> Response {
    let (token, set) = pre_session_token(state, headers);
    let mut main = Html::new();
    main.raw("<div class=\"auth\">");
    build(&mut main, &token);
    main.raw("</div>");
    let mut r = (status, document(title, None, "", main)).into_response();
    if let Some(c) = set {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub(crate) fn sign_in_form(
    h: &mut Html,
    token: &str,
    email: &str,
    next: &str,
    error: Option<&str>,
) {
    w!(*h, "<h1>Sign in</h1>"
        "<p class=\"lead\">The developer portal of this Mkoba server: keys, API users, transactions, reports and the virtual phone.</p>");
    // A refusal is about the pair: both fields are marked, and point at the sentence.
    let mut invalid = Html::new();
    if error.is_some() {
        invalid.raw(" aria-invalid=\"true\" aria-describedby=\"form-error\"");
    }
    if let Some(e) = error {
        w!(*h, "<p class=\"error\" role=\"alert\" id=\"form-error\">" {e} "</p>");
    }
    w!(*h, "<form method=\"post\" action=\"/portal/signin\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {token} "\">"
        "<input type=\"hidden\" name=\"next\" value=\"" {next} "\">"
        "<label for=\"email\">E-mail</label>"
        "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"" {email} "\"" [invalid] ">"
        "<label for=\"password\">Password</label>"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required" [invalid] ">"
        "<button type=\"submit\">Sign in</button></form>"
        "<p><a href=\"/portal/forgot\">Forgot your password?</a></p>"
        "<p>New here? <a href=\"/portal/signup\">Create an account</a>. The sandbox developer's sign-in is printed by <code>mkoba serve</code> and <code>mkoba credentials</code>.</p>");
}

/// Notices the sign-in page shows after a redirect.
fn sign_in_notice(done: Option<&String>) -> Option<&'static str> {
    Some(match done.map(String::as_str) {
        Some("reset") => {
            "Your password was changed and every session signed out. Sign in with the new one."
        }
        Some("activated") => "Your e-mail is confirmed. Sign in to add your phone number.",
        Some("signedout") => "You are signed out.",
        _ => return None,
    })
}

pub(crate) async fn sign_in_page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let next = safe_next(q.get("next").map(|s| s.as_str()));
    let email = q.get("email").cloned().unwrap_or_default();
    auth_page(&state, &headers, StatusCode::OK, "Sign in", |h, t| {
        mail::banner(&state, h);
        if let Some(n) = sign_in_notice(q.get("done")) {
            w!(*h, "<p class=\"notice\" role=\"status\">" {n} "</p>");
        }
        sign_in_form(h, t, &email, &next, None)
    })
}

pub(crate) async fn sign_in(
    State(state): State<PortalState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return crate::csrf_refused();
    }
    let next = safe_next(Some(form.get("next")));
    let email = form.get("email").to_owned();
    const BACK: (&str, &str) = ("/portal/signin", "Back to sign in");
    if let Err(refused) = state.throttle.sign_in(client, &email) {
        tracing::debug!(%client, "portal sign-in throttled");
        mkoba_platform::metrics::Metrics::count(
            &state.platform.metrics().portal_signins,
            "outcome",
            "throttled",
        );
        return crate::throttled(
            refused,
            "sign-in attempts for this account or from this address",
            BACK,
        );
    }
    let checked = state
        .throttle
        .passwords()
        .run(
            state
                .platform
                .portal()
                .sign_in(&email, form.raw("password")),
        )
        .await;
    let developer = match checked {
        Err(_busy) => return crate::busy(BACK),
        Ok(Ok(Some(d))) => d,
        Ok(Ok(None)) => {
            return auth_page(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                "Sign in",
                |h, t| {
                    sign_in_form(
                        h,
                        t,
                        &email,
                        &next,
                        Some("That e-mail and password do not match an account."),
                    )
                },
            );
        }
        // Every reader busy (or the store failing for now): the busy page, not a fault.
        Ok(Err(e)) => return crate::failed(e),
    };
    let account = match state.platform.portal().developer(developer).await {
        Ok(Some(account)) => account,
        Ok(None) => {
            tracing::error!(
                developer.id = developer,
                "a developer whose password matched is not found"
            );
            return internal_error();
        }
        Err(e) => return crate::failed(e),
    };
    match account.status {
        AccountStatus::Active => start_session(&state, developer, &next).await,
        AccountStatus::Phone => start_session(&state, developer, "/portal/welcome").await,
        AccountStatus::Pending => not_activated(&state, &headers, developer, &account.email),
        AccountStatus::Deleted => {
            tracing::error!(
                developer.id = developer,
                "a deleted account's password matched"
            );
            internal_error()
        }
        AccountStatus::Deactivated => auth_page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "Account deactivated",
            |h, _| {
                w!(*h, "<h1>Account deactivated</h1>"
                    "<p class=\"error\" role=\"alert\">The operator of this platform deactivated this account: it cannot sign in and its keys do not work. Ask the operator to reactivate it.</p>");
            },
        ),
    }
}

/// The right password of an account whose activation link was not opened yet: say so, and
/// offer the activation mail again (and, in sandbox mode, the mailbox).
fn not_activated(
    state: &PortalState,
    headers: &HeaderMap,
    developer: i64,
    email: &str,
) -> Response {
    let token = mail::mailbox_token(state, developer, email);
    let mut r = auth_page(
        state,
        headers,
        StatusCode::FORBIDDEN,
        "Activate your account",
        |h, t| {
            w!(*h, "<h1>Activate your account first</h1>"
                "<p class=\"error\" role=\"alert\">This account is not activated yet: open the link in the activation e-mail sent to <strong>" {email} "</strong>.</p>");
            sent_actions(state, h, t, email, &token);
        },
    );
    if state.config.sandbox_mailbox {
        r.headers_mut()
            .append(header::SET_COOKIE, crate::mailbox_cookie(state, &token));
    }
    r
}

/// The mailbox link (sandbox mode) and the "send it again" form.
fn sent_actions(state: &PortalState, h: &mut Html, csrf: &str, email: &str, token: &str) {
    if state.config.sandbox_mailbox {
        w!(*h, "<p>No mail server is configured: the message waits in the <a href=\"/portal/mail?t=" {token} "\" data-testid=\"open-mailbox\">mailbox</a>.</p>");
    }
    w!(*h, "<form method=\"post\" action=\"/portal/activate/resend\" class=\"inline\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {csrf} "\">"
        "<input type=\"hidden\" name=\"t\" value=\"" {token} "\">"
        "<button type=\"submit\" class=\"secondary\">Send the activation e-mail again</button></form>"
        "<p><a href=\"/portal/signin?email=" {form_encode(email)} "\">Sign in</a> once the account is activated.</p>");
}

/// `GET /portal/signup/sent`: after sign-up (post/redirect/get).
pub(crate) async fn sign_up_sent(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let token = q.get("t").cloned().unwrap_or_default();
    let claims = state
        .platform
        .portal()
        .check_link(LinkPurpose::Mailbox, &token)
        .ok();
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Check your e-mail",
        |h, t| {
            h.raw("<h1>Check your e-mail</h1>");
            if q.contains_key("again") {
                h.raw("<p class=\"notice\" role=\"status\">A new activation e-mail is on its way (at most one a minute).</p>");
            }
            match &claims {
                Some(c) if !state.config.sandbox_mailbox && !state.config.mail_goes_out => {
                    w!(*h, "<p class=\"lead\">The account for <strong>" {c.subject} "</strong> is made, but this server sends no e-mail (it has no mail server), so no activation link can reach you.</p>"
                    "<p>Ask the server's operator: accounts are activated by mail, and that needs a mail server (<code>--smtp-url</code>).</p>");
                }
                Some(c) => {
                    w!(*h, "<p class=\"lead\">We sent an activation link to <strong>" {c.subject} "</strong>. The account stays inactive until you open it; the link works for 24 hours.</p>"
                    "<p>Then sign in and add your phone number: a code goes to the virtual phone.</p>");
                    sent_actions(&state, h, t, &c.subject, &token);
                }
                None => {
                    h.raw("<p class=\"lead\">The activation link is in the e-mail we sent. This page's own link has expired: <a href=\"/portal/signin\">sign in</a> to have the e-mail sent again.</p>");
                }
            }
        },
    )
}

/// `POST /portal/activate/resend`: the activation mail again, for the browser holding the
/// sign-up's (or a correct password's) token; at most one a minute.
pub(crate) async fn resend_activation(
    State(state): State<PortalState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return crate::csrf_refused();
    }
    if let Err(refused) = state.throttle.sign_up(client) {
        return crate::throttled(
            refused,
            "sign-ups and activation e-mails from this address",
            ("/portal/signin", "Back to sign in"),
        );
    }
    let token = form.get("t");
    let Ok(claims) = state
        .platform
        .portal()
        .check_link(LinkPurpose::Mailbox, token)
    else {
        return see_other("/portal/signin");
    };
    let found = if claims.developer_id == 0 {
        state
            .platform
            .portal()
            .account_by_email(&claims.subject)
            .await
            .map(|a| a.map(|(account, _)| account))
    } else {
        state.platform.portal().developer(claims.developer_id).await
    };
    let Ok(Some(account)) = found else {
        return see_other("/portal/signin");
    };
    if account.status != AccountStatus::Pending || account.email != claims.subject {
        // With real mail, an account that is not waiting for activation is answered as
        // one that is (nothing is sent): the sign-up page's answer for an address that has
        // an account leads here too, and must not tell.
        if !state.config.sandbox_mailbox {
            return see_other(&format!(
                "/portal/signup/sent?again=1&t={}",
                form_encode(token)
            ));
        }
        return see_other(&format!(
            "/portal/signin?email={}",
            form_encode(&account.email)
        ));
    }
    let m = mail::activation(&state, account.id, &account.email, &account.name);
    if let Err(e) = state
        .platform
        .portal()
        .queue_mail_unless_recent(m, MAIL_INTERVAL_MS)
        .await
    {
        return crate::failed(e);
    }
    see_other(&format!(
        "/portal/signup/sent?again=1&t={}",
        form_encode(token)
    ))
}

/// A new session for `developer`, its cookie set, and a redirect to `next`.
pub(crate) async fn start_session(state: &PortalState, developer: i64, next: &str) -> Response {
    let (id, _csrf) = match state.platform.portal().create_session(developer).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    tracing::info!(developer.id = developer, "portal sign-in");
    let mut r = see_other(next);
    r.headers_mut()
        .append(header::SET_COOKIE, crate::session_cookie(state, &id));
    r
}

fn sign_up_form(h: &mut Html, token: &str, email: &str, name: &str, error: Option<&Problem>) {
    w!(*h, "<h1>Create an account</h1>"
        "<p class=\"lead\">A developer account gets its own subscription keys, API users, M-Pesa application and transactions; nobody else sees them. We e-mail you a link to activate it, then you add your phone number.</p>");
    crate::form_error(h, error);
    // The field the error is about says so to assistive technology, and points at it.
    let mark = |field: &str| crate::invalid_if(error, field);
    w!(*h, "<form method=\"post\" action=\"/portal/signup\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {token} "\">"
        "<label for=\"name\">Name</label>"
        "<input id=\"name\" name=\"name\" autocomplete=\"name\" required maxlength=\"100\" value=\"" {name} "\"");
    h.html(&mark("name"));
    w!(*h, "><label for=\"email\">E-mail</label>"
        "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required maxlength=\"254\" value=\"" {email} "\"");
    h.html(&mark("email"));
    h.raw(concat!("><label for=\"password\">Password <span class=\"hint\">(at least 10 characters)</span></label>",
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\""));
    h.html(&mark("password"));
    h.raw(concat!("><label for=\"password2\">Password again</label>",
        "<input id=\"password2\" name=\"password2\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\""));
    h.html(&mark("password2"));
    h.raw(concat!(
        "><button type=\"submit\">Create account</button></form>",
        "<p>Have an account? <a href=\"/portal/signin\">Sign in</a>.</p>"
    ));
}

pub(crate) async fn sign_up_page(State(state): State<PortalState>, headers: HeaderMap) -> Response {
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Create an account",
        |h, t| {
            mail::banner(&state, h);
            sign_up_form(h, t, "", "", None)
        },
    )
}

/// Why a sign-up form is not acceptable.
fn sign_up_problem(form: &Form) -> Option<Problem> {
    let email = form.get("email");
    let name = form.get("name");
    let password = form.raw("password");
    if name.is_empty() {
        return Some(("name", "Give your name.".to_owned()));
    }
    if name.chars().count() > 100 || name.chars().any(mkoba_platform::portal::hides_text) {
        return Some((
            "name",
            "Give a name of at most 100 characters, without control characters or bytes that are not UTF-8 text.".to_owned(),
        ));
    }
    if !mkoba_platform::portal::plain_email(email) {
        return Some(("email", "Give a valid e-mail address.".to_owned()));
    }
    if let Some(problem) = crate::password_problem(password, false) {
        return Some(("password", problem.to_owned()));
    }
    if password != form.raw("password2") {
        return Some(("password2", "The two passwords differ.".to_owned()));
    }
    None
}

/// The account id a sign-up's page link carries: with the sandbox mailbox, the account's
/// (the link opens its mailbox); with real mail, none (0), since a link's claims can be
/// read, and an older id would tell that the address had an account before this sign-up.
/// "Send again" then finds the account by its address.
fn link_id(state: &PortalState, id: i64) -> i64 {
    if state.config.sandbox_mailbox { id } else { 0 }
}

pub(crate) async fn sign_up(
    State(state): State<PortalState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return crate::csrf_refused();
    }
    const BACK: (&str, &str) = ("/portal/signup", "Back to sign-up");
    if let Err(refused) = state.throttle.sign_up(client) {
        return crate::throttled(
            refused,
            "sign-ups and activation e-mails from this address",
            BACK,
        );
    }
    let email = form.get("email").to_owned();
    let name = form.get("name").to_owned();
    let refuse = |message: Problem| {
        auth_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "Create an account",
            |h, t| sign_up_form(h, t, &email, &name, Some(&message)),
        )
    };
    if let Some(problem) = sign_up_problem(&form) {
        return refuse(problem);
    }
    let lower = email.to_lowercase();
    let (st, to, who) = (state.clone(), lower.clone(), name.clone());
    let activation = move |id| mail::activation(&st, id, &to, &who);
    let created = state
        .throttle
        .passwords()
        .run(
            state
                .platform
                .portal()
                .sign_up(&email, &name, form.raw("password"), activation),
        )
        .await;
    let Ok(created) = created else {
        return crate::busy(BACK);
    };
    match created {
        Ok(id) => {
            tracing::info!(
                developer.id = id,
                "developer account created, pending activation"
            );
            let token = mail::mailbox_token(&state, link_id(&state, id), &lower);
            let mut r = see_other(&format!("/portal/signup/sent?t={}", form_encode(&token)));
            if state.config.sandbox_mailbox {
                r.headers_mut()
                    .append(header::SET_COOKIE, crate::mailbox_cookie(&state, &token));
            }
            r
        }
        // With real mail (no sandbox mailbox), the answer is a new account's, and only the
        // address's owner is told, by mail: sign-up does not say who has an account here.
        Err(SignUpError::EmailTaken) if !state.config.sandbox_mailbox => {
            match state.platform.portal().account_by_email(&lower).await {
                Ok(Some((account, _))) => {
                    let m = mail::signed_up_again(&state, account.id, &account.name, &lower);
                    if let Err(e) = state
                        .platform
                        .portal()
                        .queue_mail_unless_recent(m, MAIL_INTERVAL_MS)
                        .await
                    {
                        return crate::failed(e);
                    }
                    tracing::info!(
                        developer.id = account.id,
                        "sign-up with an address that has an account; its owner is told"
                    );
                    let token = mail::mailbox_token(&state, link_id(&state, account.id), &lower);
                    see_other(&format!("/portal/signup/sent?t={}", form_encode(&token)))
                }
                Ok(None) => crate::failed(SignUpError::Internal),
                Err(e) => crate::failed(e),
            }
        }
        Err(SignUpError::EmailTaken) => refuse((
            "email",
            "An account with this e-mail exists already; sign in instead.".to_owned(),
        )),
        Err(e @ SignUpError::Internal) => crate::failed(e),
    }
}

pub(crate) async fn sign_out(
    State(state): State<PortalState>,
    Onboarding(session): Onboarding,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    if let Err(e) = state.platform.portal().end_session(&session.id).await {
        return crate::failed(e);
    }
    let mut r = see_other("/portal/signin?done=signedout");
    r.headers_mut()
        .append(header::SET_COOKIE, crate::clear_session_cookie(&state));
    r
}

fn product_blurb(p: Product) -> &'static str {
    match p {
        Product::Collection => {
            "Request payments from customers: request-to-pay, request-to-withdraw, invoices, pre-approvals."
        }
        Product::Disbursement => "Pay customers from your float: transfers, deposits and refunds.",
        Product::Remittance => "Send cross-border transfers and cash transfers.",
        Product::Mpesa => "M-Pesa OpenAPI: C2B, B2C, B2B, reversals, queries, direct debits.",
        Product::CollectionWidget => {
            "Take payments on your web page with a script tag: the payer scans a QR code or dials a USSD code."
        }
    }
}

pub(crate) async fn overview(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let keys = state
        .platform
        .credentials()
        .subscription_keys(session.developer.id);
    let csrf = csrf_field(&session);
    let mut h = Html::new();
    w!(h, "<h1>Welcome, " {session.developer.name} "</h1>");
    match regenerated_notice(&q) {
        Some(n) => w!(h, "<p class=\"notice\" role=\"status\">" {n} "</p>"),
        None => {
            h.html(&super::notice(q.get("done")));
        }
    }
    if q.contains_key("welcome") {
        h.raw("<p class=\"notice\" role=\"status\">Your account is ready. Subscribe to a product below to get its keys, then create an API user.</p>");
    }
    h.raw(concat!("<p class=\"lead\">Subscription keys go in the <code>Ocp-Apim-Subscription-Key</code> header of every call; each product has a primary and a secondary key, both valid, so you can rotate one while the other is in use.</p>",
        "<h2>Products and subscriptions</h2><div class=\"cards\">"));
    for product in Product::ALL {
        let mine: Vec<_> = keys.iter().filter(|k| k.product == product).collect();
        w!(h, "<section class=\"card\" aria-labelledby=\"p-" {product.as_str()} "\"><h3 id=\"p-" {product.as_str()} "\">" {product.display_name()} "</h3>"
            "<p>" {product_blurb(product)} "</p>");
        if mine.is_empty() {
            w!(h, "<p class=\"muted\">Not subscribed.</p>"
                "<form method=\"post\" action=\"/portal/subscriptions/" {product.as_str()} "\">" [csrf]
                "<button type=\"submit\">Subscribe to " {product.display_name()} "</button></form>");
        } else {
            h.raw("<dl class=\"keys\">");
            for slot in [KeySlot::Primary, KeySlot::Secondary] {
                if let Some(k) = mine.iter().find(|k| k.slot == slot) {
                    w!(h, "<dt>" {title_case(slot.as_str())} " key</dt><dd><code class=\"secret\" data-testid=\"key-" {product.as_str()} "-" {slot.as_str()} "\">" {k.key} "</code> "
                        "<button type=\"button\" class=\"copy\" data-copy=\"" {k.key} "\" aria-label=\"Copy the " {slot.as_str()} " " {product.display_name()} " key\" hidden>Copy</button>"
                        "<form class=\"inline\" method=\"post\" action=\"/portal/subscriptions/" {product.as_str()} "/" {slot.as_str()} "\">" [csrf]
                        "<button type=\"submit\" class=\"secondary\" aria-label=\"Regenerate the " {slot.as_str()} " " {product.as_str()} " key\">Regenerate</button></form></dd>");
                }
            }
            h.raw("</dl>");
        }
        h.raw("</section>");
    }
    h.raw(concat!("</div><h2>Next steps</h2><ol class=\"steps\">",
        "<li><a href=\"/portal/apiusers\">Create an API user and key</a> (or use the sandbox provisioning API: users made there appear in the portal too).</li>",
        "<li>Get a token with <code>POST /collection/token/</code> and Basic <code>apiUser:apiKey</code>, then call the API: the <a href=\"/portal/docs\">API docs</a> have a try-it box.</li>",
        "<li>Watch <a href=\"/portal/transactions\">transactions</a> and <a href=\"/portal/reports\">reports</a>; approve payments on the <a href=\"/portal/phone\">virtual phone</a>.</li></ol>"));
    document("Overview", Some(&session), "overview", h).into_response()
}

pub(crate) fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub(crate) async fn subscribe(
    State(state): State<PortalState>,
    session: Session,
    Path(product): Path<String>,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    let Some(product) = Product::parse(&product) else {
        return crate::not_found().await;
    };
    match state
        .platform
        .portal()
        .renew_subscription_keys(session.developer.id, product, None)
        .await
    {
        Ok(()) => see_other(&format!("/portal?done=subscribed-{}", product.as_str())),
        Err(e) => crate::failed(e),
    }
}

/// "The primary Collection key ending 1a2b was regenerated…", from the redirect's query.
fn regenerated_notice(q: &std::collections::HashMap<String, String>) -> Option<String> {
    if q.get("done").map(String::as_str) != Some("regenerated") {
        return None;
    }
    let product = Product::parse(q.get("product")?)?;
    let slot = KeySlot::parse(q.get("slot")?)?;
    let old = q.get("old")?;
    if old.len() != 4 || !old.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "The {} {} key was regenerated: the key ending …{old} no longer works (calls with it are refused at once). The new key is below; the {} key did not change.",
        slot.as_str(),
        product.display_name(),
        match slot {
            KeySlot::Primary => "secondary",
            KeySlot::Secondary => "primary",
        }
    ))
}

pub(crate) async fn regenerate_key(
    State(state): State<PortalState>,
    session: Session,
    Path((product, slot)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let (Some(product), Some(slot)) = (Product::parse(&product), KeySlot::parse(&slot)) else {
        return crate::not_found().await;
    };
    let Some(old) = state
        .platform
        .credentials()
        .subscription_keys(session.developer.id)
        .into_iter()
        .find(|k| k.product == product && k.slot == slot)
    else {
        return crate::not_found().await;
    };
    let ending: String = old
        .key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if !confirm::confirmed(&form) {
        let action = format!(
            "/portal/subscriptions/{}/{}",
            product.as_str(),
            slot.as_str()
        );
        let title = format!(
            "Regenerate the {} {} key?",
            slot.as_str(),
            product.display_name()
        );
        return confirm::page(
            &session,
            &confirm::Confirm {
                title: &title,
                consequences: &[
                    format!("A new {} key replaces the key ending …{ending}.", slot.as_str()),
                    "The old key stops working at once: every call with it is refused with 401, including calls your applications are making now.".to_owned(),
                    "The other key of the product keeps working, so you can switch your applications to it first.".to_owned(),
                ],
                action: &action,
                fields: &[],
                button: "Regenerate the key",
                cancel: "/portal",
                section: "overview",
                ask_password: false,
            },
        );
    }
    match state
        .platform
        .portal()
        .renew_subscription_keys(session.developer.id, product, Some(slot))
        .await
    {
        Ok(()) => see_other(&format!(
            "/portal?done=regenerated&product={}&slot={}&old={ending}",
            product.as_str(),
            slot.as_str()
        )),
        Err(e) => crate::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_portal_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/portal/reports")), "/portal/reports");
        assert_eq!(safe_next(Some("https://evil.example/")), "/portal");
        assert_eq!(safe_next(Some("//evil.example/portal/")), "/portal");
        assert_eq!(safe_next(Some("/portal//evil.example")), "/portal");
        assert_eq!(safe_next(None), "/portal");
        // Dot segments would leave the portal once the browser resolves them.
        for dotted in [
            "/portal/../../evil",
            "/portal/%2E%2e/x",
            "/portal/./..",
            "/portal/..",
        ] {
            assert_eq!(safe_next(Some(dotted)), "/portal", "{dotted}");
        }
        assert_eq!(safe_next(Some("/portal/a.b?x=..")), "/portal/a.b?x=..");
        // A header cannot carry a line break: such a `next` would leave no Location at all.
        assert_eq!(safe_next(Some("/portal/x\r\nSet-Cookie: a=b")), "/portal");
    }

    #[test]
    fn sign_up_forms_are_checked() {
        let ok = Form::parse(
            b"name=Ada&email=ada%40example.com&password=0123456789&password2=0123456789",
        );
        assert_eq!(sign_up_problem(&ok), None);
        let short = Form::parse(b"name=Ada&email=ada%40example.com&password=short&password2=short");
        assert!(sign_up_problem(&short).is_some());
        let bad_email = Form::parse(b"name=Ada&email=ada&password=0123456789&password2=0123456789");
        assert!(sign_up_problem(&bad_email).is_some());
        let differ =
            Form::parse(b"name=Ada&email=a%40b.c&password=0123456789&password2=0123456789x");
        assert!(sign_up_problem(&differ).is_some());
    }
}
