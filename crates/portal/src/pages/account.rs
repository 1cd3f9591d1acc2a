//! Sign-up, sign-in, sign-out, and the overview: products, subscriptions and their keys.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{KeySlot, Product};
use mkoba_platform::portal::SignUpError;

use crate::html::Html;
use crate::{
    Form, PortalState, Session, csrf_field, document, internal_error, pre_session_ok,
    pre_session_token, query_params, see_other, w,
};

/// Only portal paths are followed after sign-in (no open redirects).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/portal" || n.starts_with("/portal/") || n.starts_with("/portal?"))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => "/portal".to_owned(),
    }
}

fn auth_page(
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

fn sign_in_form(h: &mut Html, token: &str, email: &str, next: &str, error: Option<&str>) {
    w!(*h, "<h1>Sign in</h1>"
        "<p class=\"lead\">The developer portal of this Mkoba server: keys, API users, transactions, reports and the virtual phone.</p>");
    if let Some(e) = error {
        w!(*h, "<p class=\"error\" role=\"alert\">" {e} "</p>");
    }
    w!(*h, "<form method=\"post\" action=\"/portal/signin\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {token} "\">"
        "<input type=\"hidden\" name=\"next\" value=\"" {next} "\">"
        "<label for=\"email\">E-mail</label>"
        "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"" {email} "\">"
        "<label for=\"password\">Password</label>"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
        "<button type=\"submit\">Sign in</button></form>"
        "<p>New here? <a href=\"/portal/signup\">Create an account</a>. The sandbox developer's sign-in is printed by <code>mkoba serve</code> and <code>mkoba credentials</code>.</p>");
}

pub(crate) async fn sign_in_page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let next = safe_next(q.get("next").map(|s| s.as_str()));
    auth_page(&state, &headers, StatusCode::OK, "Sign in", |h, t| {
        sign_in_form(h, t, "", &next, None)
    })
}

pub(crate) async fn sign_in(
    State(state): State<PortalState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&headers, &form) {
        return crate::csrf_refused();
    }
    let next = safe_next(Some(form.get("next")));
    let email = form.get("email").to_owned();
    let developer = match state.platform.sign_in(&email, form.raw("password")).await {
        Ok(Some(d)) => d,
        Ok(None) => {
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
        Err(_) => return internal_error(),
    };
    start_session(&state, developer, &next).await
}

async fn start_session(state: &PortalState, developer: i64, next: &str) -> Response {
    let Ok((id, _csrf)) = state.platform.create_session(developer).await else {
        return internal_error();
    };
    tracing::info!(developer.id = developer, "portal sign-in");
    let mut r = see_other(next);
    r.headers_mut()
        .append(header::SET_COOKIE, crate::session_cookie(state, &id));
    r
}

fn sign_up_form(h: &mut Html, token: &str, email: &str, name: &str, error: Option<&str>) {
    w!(*h, "<h1>Create an account</h1>"
        "<p class=\"lead\">A developer account gets its own subscription keys, API users and transactions; nobody else sees them.</p>");
    if let Some(e) = error {
        w!(*h, "<p class=\"error\" role=\"alert\">" {e} "</p>");
    }
    w!(*h, "<form method=\"post\" action=\"/portal/signup\" class=\"stack\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" {token} "\">"
        "<label for=\"name\">Name</label>"
        "<input id=\"name\" name=\"name\" autocomplete=\"name\" required maxlength=\"100\" value=\"" {name} "\">"
        "<label for=\"email\">E-mail</label>"
        "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required maxlength=\"254\" value=\"" {email} "\">"
        "<label for=\"password\">Password <span class=\"hint\">(at least 10 characters)</span></label>"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">"
        "<label for=\"password2\">Password again</label>"
        "<input id=\"password2\" name=\"password2\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">"
        "<button type=\"submit\">Create account</button></form>"
        "<p>Have an account? <a href=\"/portal/signin\">Sign in</a>.</p>");
}

pub(crate) async fn sign_up_page(State(state): State<PortalState>, headers: HeaderMap) -> Response {
    auth_page(
        &state,
        &headers,
        StatusCode::OK,
        "Create an account",
        |h, t| sign_up_form(h, t, "", "", None),
    )
}

/// Why a sign-up form is not acceptable.
fn sign_up_problem(form: &Form) -> Option<&'static str> {
    let email = form.get("email");
    let name = form.get("name");
    let password = form.raw("password");
    let at = email.find('@');
    if name.is_empty() || name.chars().count() > 100 {
        return Some("Give a name of at most 100 characters.");
    }
    if email.len() > 254 || at.is_none_or(|i| i == 0 || i + 1 >= email.len()) {
        return Some("Give a valid e-mail address.");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("Give a valid e-mail address.");
    }
    if password.chars().count() < 10 || password.len() > 1024 {
        return Some("Choose a password of at least 10 characters.");
    }
    if password != form.raw("password2") {
        return Some("The two passwords differ.");
    }
    None
}

pub(crate) async fn sign_up(
    State(state): State<PortalState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&headers, &form) {
        return crate::csrf_refused();
    }
    let email = form.get("email").to_owned();
    let name = form.get("name").to_owned();
    let refuse = |message: &'static str| {
        auth_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "Create an account",
            |h, t| sign_up_form(h, t, &email, &name, Some(message)),
        )
    };
    if let Some(problem) = sign_up_problem(&form) {
        return refuse(problem);
    }
    match state
        .platform
        .sign_up(&email, &name, form.raw("password"))
        .await
    {
        Ok(id) => {
            tracing::info!(developer.id = id, "developer account created");
            start_session(&state, id, "/portal?welcome=1").await
        }
        Err(SignUpError::EmailTaken) => {
            refuse("An account with this e-mail exists already; sign in instead.")
        }
        Err(SignUpError::Internal) => internal_error(),
    }
}

pub(crate) async fn sign_out(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    if state.platform.end_session(&session.id).await.is_err() {
        return internal_error();
    }
    let mut r = see_other("/portal/signin");
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
    let keys = state.platform.subscription_keys(session.developer.id);
    let csrf = csrf_field(&session);
    let mut h = Html::new();
    w!(h, "<h1>Welcome, " {session.developer.name} "</h1>" [super::notice(q.get("done"))]);
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
                        "<button type=\"button\" class=\"copy\" data-copy=\"" {k.key} "\" hidden>Copy</button>"
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
        .renew_subscription_keys(session.developer.id, product, None)
        .await
    {
        Ok(()) => see_other("/portal?done=subscribed"),
        Err(_) => internal_error(),
    }
}

pub(crate) async fn regenerate_key(
    State(state): State<PortalState>,
    session: Session,
    Path((product, slot)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    let (Some(product), Some(slot)) = (Product::parse(&product), KeySlot::parse(&slot)) else {
        return crate::not_found().await;
    };
    let subscribed = state
        .platform
        .subscription_keys(session.developer.id)
        .iter()
        .any(|k| k.product == product);
    if !subscribed {
        return crate::not_found().await;
    }
    match state
        .platform
        .renew_subscription_keys(session.developer.id, product, Some(slot))
        .await
    {
        Ok(()) => see_other("/portal?done=regenerated"),
        Err(_) => internal_error(),
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
