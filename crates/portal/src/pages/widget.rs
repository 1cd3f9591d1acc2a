//! The Collection Widget in the portal: what it is, the snippet to paste into a page
//! (pre-filled with the developer's API user), each API user's allowed origins and widget
//! callback URL, and a live demo (`/demo.html` redirects here) that logs the widget's
//! events as they come.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{ApiUser, Product};
use mkoba_platform::widget::{check_callback_url, check_origins};
use uuid::Uuid;

use crate::html::Html;
use crate::pages::apiusers::not_found_page;
use crate::{
    Form, PortalState, Session, csrf_field, document, form_error_html, invalid_if, query_params,
    see_other, w,
};

/// Where the script is served (MTN's sandbox path).
const SCRIPT: &str = "/v0.1.0/mobile-money-widget-mtn.js";

/// The snippet a merchant pastes, for `user`.
fn snippet(base: &str, user: &ApiUser) -> String {
    let currency = mkoba_platform::widget::environment_currency(&user.target_environment);
    format!(
        "<script src=\"{base}{SCRIPT}\"></script>\n<div class=\"mobile-money-qr-payment\"\n     data-api-user-id=\"{}\"\n     data-amount=\"100\"\n     data-currency=\"{currency}\"\n     data-external-id=\"order-1001\"></div>",
        user.id
    )
}

/// `http://host` (`https://` over TLS) as the browser reached the portal.
pub(crate) fn base(headers: &axum::http::HeaderMap, tls: bool) -> String {
    mkoba_platform::widget::base_url(headers.get(header::HOST).and_then(|v| v.to_str().ok()), tls)
}

/// A refused settings form: its API user, the field the refusal is about (`origins` or
/// `callback_url`), the sentence, and what was typed (shown again).
struct Refused<'a> {
    user: Uuid,
    field: &'static str,
    sentence: String,
    origins: &'a str,
    callback: &'a str,
}

async fn page(
    state: &PortalState,
    session: &Session,
    base: &str,
    refused: Option<Refused<'_>>,
    done: Option<&String>,
) -> Response {
    let users = match state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<h1>Collection Widget</h1>" [super::notice(done)]
        "<p class=\"lead\">MTN's fourth MoMo product: a MoMo pay button for any web page. The payer scans a QR code or dials a USSD code; "
        "each payment is a Collection v2 invoice of your API user (read it with <code>GET /collection/v2_0/invoice/{invoiceId}</code>, get its callback), "
        "and the element tells the page what happened through DOM events: <code>mobile-money-qr-payment-created</code>, <code>-canceled</code>, <code>-successful</code>, <code>-failed</code>. "
        "<a href=\"/portal/widget/demo\">Try the demo</a>.</p>"
        "<section class=\"card\" aria-labelledby=\"sandbox\"><h2 id=\"sandbox\">Sandbox amounts</h2><ul>"
        "<li>1–19: waits for the payer: approve or reject through the QR code's link or the <a href=\"/portal/phone\">virtual phone's</a> dial pad.</li>"
        "<li>20–79: fails.</li><li>Anything else: succeeds (after the settle delay).</li></ul></section>");
    if !state
        .platform
        .credentials()
        .subscribed(session.developer.id, Product::CollectionWidget)
    {
        h.raw("<p class=\"notice warn\" role=\"status\" data-testid=\"widget-unsubscribed\">You are not subscribed to the Collection Widget: pages get <code>403 NOT_ALLOWED</code> for your API users until you <a href=\"/portal\">subscribe to it on the overview</a> (it is a product of its own, with its own keys).</p>");
    }
    // A sandbox API user when there is one, as the demo takes: it takes payments from any
    // page until its allowed origins are set, where a production one refuses them.
    let Some(first) = users
        .iter()
        .find(|u| u.target_environment == "sandbox")
        .or(users.first())
    else {
        h.raw("<p class=\"muted\">Create an <a href=\"/portal/apiusers\">API user</a> first: the widget takes payments for one.</p>");
        return document("Collection Widget", Some(session), "widget", h).into_response();
    };
    w!(h, "<section class=\"card\" aria-labelledby=\"snippet\"><h2 id=\"snippet\">Snippet</h2>"
        "<p>Paste this into your checkout page (for your API user <code>" {first.id} "</code>, " {first.target_environment} "):</p>"
        "<pre class=\"mono\" data-testid=\"widget-snippet\">" {snippet(base, first)} "</pre>"
        "<button type=\"button\" class=\"copy\" data-copy=\"" {snippet(base, first)} "\" hidden>Copy snippet</button>"
        "<p class=\"hint\">Elements added after the page loaded start with <code>mobileMoneyReinitializeWidgets()</code>.</p></section>"
        "<h2>Allowed origins per API user</h2>"
        "<p>Pages that may take widget payments for an API user: <code>scheme://host[:port]</code>, one per line (or <code>*</code>). "
        "Without a list, the sandbox takes any page; production-like environments need one. The callback URL gets each widget invoice's final status "
        "(its host must be the API user's callback host).</p>");
    super::listed_newest(&mut h, users.len());
    for u in &users {
        let settings = state
            .platform
            .portal()
            .widget_settings(&u.id)
            .await
            .ok()
            .flatten();
        let listed = settings.as_ref().and_then(|s| s.allowed_origins.clone());
        // An empty list (set through the settings API) lets no page in: not "no list".
        let none_allowed = listed.as_ref().is_some_and(Vec::is_empty);
        let mut origins = listed.map(|o| o.join("\n")).unwrap_or_default();
        let mut callback = settings.and_then(|s| s.callback_url).unwrap_or_default();
        w!(h, "<section class=\"card\" aria-label=\"API user " {u.id} "\"><h3 class=\"mono\">" {u.id} "</h3>"
            "<p class=\"hint\">" {u.target_environment} " · callback host " {u.provider_callback_host} "</p>");
        if none_allowed {
            h.raw("<p class=\"notice\" data-testid=\"no-origins\">An empty list of allowed origins was set through the API: no page may take widget payments for this API user. Save a list here, or save the box empty for no list.</p>");
        }
        let mut problem = None;
        if let Some(r) = refused.as_ref().filter(|r| r.user == u.id) {
            origins = r.origins.to_owned();
            callback = r.callback.to_owned();
            problem = Some((r.field, r.sentence.clone()));
        }
        let problem = problem.as_ref();
        w!(h, [form_error_html(problem)] "<form method=\"post\" action=\"/portal/widget/" {u.id} "/settings\" class=\"stack\">" [csrf]
            "<label for=\"origins-" {u.id} "\">Allowed origins</label>"
            "<textarea id=\"origins-" {u.id} "\" name=\"origins\" rows=\"3\" placeholder=\"https://shop.example\"" [invalid_if(problem, "origins")] ">" ~{origins} "</textarea>"
            "<label for=\"callback-" {u.id} "\">Callback URL</label>"
            "<input id=\"callback-" {u.id} "\" name=\"callback_url\" type=\"url\" value=\"" ~{callback} "\" placeholder=\"https://" {u.provider_callback_host} "/momo/widget\"" [invalid_if(problem, "callback_url")] ">"
            "<button type=\"submit\">Save</button></form></section>");
    }
    document("Collection Widget", Some(session), "widget", h).into_response()
}

/// `GET /portal/widget`.
pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    headers: axum::http::HeaderMap,
    tls: Option<axum::Extension<mkoba_platform::widget::OverTls>>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let base = base(&headers, tls.is_some());
    page(&state, &session, &base, None, q.get("done")).await
}

/// `POST /portal/widget/{apiUser}/settings`.
pub(crate) async fn save(
    State(state): State<PortalState>,
    session: Session,
    headers: axum::http::HeaderMap,
    tls: Option<axum::Extension<mkoba_platform::widget::OverTls>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let base = base(&headers, tls.is_some());
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found_page(&session);
    };
    let user = match state
        .platform
        .portal()
        .owned_api_user(session.developer.id, &id)
        .await
    {
        Ok(Some(u)) => u,
        Ok(None) => return not_found_page(&session),
        Err(e) => return crate::failed(e),
    };
    let refusal = |field: &'static str, sentence: String| {
        Some(Refused {
            user: id,
            field,
            sentence,
            origins: form.get("origins"),
            callback: form.get("callback_url"),
        })
    };
    let lines: Vec<String> = form
        .get("origins")
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let origins = match check_origins(&lines) {
        Ok(o) if o.is_empty() => None,
        Ok(o) => Some(o),
        Err(e) => return refused(page(&state, &session, &base, refusal("origins", e), None).await),
    };
    let callback = match form.get("callback_url").trim() {
        "" => None,
        url => match check_callback_url(url, &user.provider_callback_host) {
            Ok(u) => Some(u),
            Err(e) => {
                let r = refusal("callback_url", e);
                return refused(page(&state, &session, &base, r, None).await);
            }
        },
    };
    match state
        .platform
        .portal()
        .set_widget_settings(id, origins, callback)
        .await
    {
        Ok(()) => see_other("/portal/widget?done=saved"),
        Err(e) => crate::failed(e),
    }
}

/// The settings page again with what was wrong, answered 400 as the portal's other forms
/// answer a refusal.
fn refused(mut page: Response) -> Response {
    *page.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    page
}

/// `GET /portal/widget/demo` (and `/demo.html`): the element for the developer's first API
/// user, with its events logged on the page.
pub(crate) async fn demo(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let users = match state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    h.raw("<h1>Collection Widget demo</h1>");
    // A sandbox API user when there is one: it takes payments from any page until its
    // allowed origins are set, where a production one refuses them.
    let Some(user) = users
        .iter()
        .find(|u| u.target_environment == "sandbox")
        .or(users.first())
    else {
        h.raw("<p class=\"muted\">Create an <a href=\"/portal/apiusers\">API user</a> first: the widget takes payments for one.</p>");
        return document("Widget demo", Some(&session), "widget", h).into_response();
    };
    let amount = q
        .get("amount")
        .filter(|a| a.len() <= 12 && a.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .cloned()
        .unwrap_or_else(|| "100".to_owned());
    let currency = mkoba_platform::widget::environment_currency(&user.target_environment);
    w!(h, "<p>The widget of <a href=\"/portal/widget\">your API user</a> <code>" {user.id} "</code>, as on a merchant's page. "
        "Amounts: <a href=\"?amount=10\">10</a> waits for the payer, <a href=\"?amount=50\">50</a> fails, <a href=\"?amount=100\">100</a> succeeds.</p>"
        "<div class=\"card\"><div class=\"mobile-money-qr-payment\" data-api-user-id=\"" {user.id} "\" data-amount=\"" {amount} "\" data-currency=\"" {currency} "\" data-external-id=\"demo-" {amount} "\"></div></div>"
        "<h2>Events</h2><ol id=\"widget-events\" class=\"mono\" data-testid=\"widget-events\"></ol>"
        "<script src=\"" {SCRIPT} "\"></script><script src=\"/portal/assets/widget-demo.js\"></script>");
    let mut r = document("Widget demo", Some(&session), "widget", h).into_response();
    // The widget draws itself with a style element of its own and calls the widget API.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}
