//! My Profile (`/portal/profile`): personal details, e-mail (a change is confirmed by a link
//! sent to the new address), password (the current one required; every other session is
//! signed out), the subscription keys per product, the M-Pesa API key and the platform's
//! public key (with a PEM download), and deleting the account.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::accounts::{AccountError, LinkPurpose};
use mkoba_platform::model::{KeySlot, Product};

use super::account::{auth_page, title_case};
use super::journey::{self, PhoneStep};
use super::{confirm, mail};
use crate::html::Html;
use crate::{Form, PortalState, Session, csrf_field, document, query_params, see_other, w, when};

/// Where a "the portal is busy" page leads back to.
const BACK: (&str, &str) = ("/portal/profile", "Back to my profile");

fn notice(done: Option<&String>) -> Option<&'static str> {
    Some(match done.map(String::as_str)? {
        "name" => "Your name was saved.",
        "email-sent" => {
            "We sent a link to the new address: your e-mail changes when it is opened (within 24 hours)."
        }
        "email" => "Your e-mail was changed: sign in with the new one from now on.",
        "password" => "Your password was changed, and every other session was signed out.",
        "phone" => "Your phone number was changed.",
        _ => return None,
    })
}

/// The platform's public key as a PEM document (the base64 DER wrapped at 64 columns).
pub(crate) fn public_key_pem(base64_der: &str) -> String {
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    let chars: Vec<char> = base64_der.chars().collect();
    for line in chars.chunks(64) {
        pem.extend(line);
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

async fn page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    q: &Query<'_>,
) -> Response {
    let d = &session.developer;
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<h1>My profile</h1>");
    if let Some(n) = notice(q.done) {
        w!(h, "<p class=\"notice\" role=\"status\">" {n} "</p>");
    }
    // A refusal is said in the section of the form it is about, beside its field, which
    // is marked invalid and described by it; one about no field, at the top.
    let problem: Option<crate::Problem> = q.problem.map(|(f, e)| (f, e.to_owned()));
    let at = |section: &str| {
        problem
            .as_ref()
            .filter(|(field, _)| section_of(field) == section)
    };
    crate::form_error(&mut h, at(""));
    // Personal details.
    w!(h, "<section class=\"card\" aria-labelledby=\"details\"><h2 id=\"details\">Personal details</h2>"
        "<dl class=\"keys\"><dt>E-mail (sign-in)</dt><dd data-testid=\"profile-email\">" {d.email} "</dd>"
        "<dt>Phone</dt><dd>" {d.phone.as_deref().map(|p| format!("+{p}")).unwrap_or_else(|| "—".to_owned())}
        " <a href=\"/portal/profile/phone\" data-testid=\"change-phone\">Change</a></dd>"
        "<dt>Member since</dt><dd>" {when(d.created_at_ms)} "</dd></dl>"
        [crate::form_error_html(at("details"))]
        "<form method=\"post\" action=\"/portal/profile/name\" class=\"stack\">" [csrf]
        "<label for=\"name\">Name</label>"
        "<input id=\"name\" name=\"name\" autocomplete=\"name\" required maxlength=\"100\" value=\"" {d.name} "\"" [crate::invalid_if(problem.as_ref(), "name")] ">"
        "<button type=\"submit\">Save name</button></form></section>");
    // E-mail.
    w!(h, "<section class=\"card\" aria-labelledby=\"email-h\"><h2 id=\"email-h\">Change e-mail</h2>"
        "<p>Your sign-in name is your e-mail. We send a link to the new address; it changes when the link is opened.</p>"
        [crate::form_error_html(at("email"))]
        "<form method=\"post\" action=\"/portal/profile/email\" class=\"stack\">" [csrf]
        "<label for=\"new_email\">New e-mail</label>"
        "<input id=\"new_email\" name=\"email\" type=\"email\" autocomplete=\"email\" required maxlength=\"254\" value=\"" {q.email} "\"" [crate::invalid_if(problem.as_ref(), "new_email")] ">"
        "<label for=\"email_password\">Current password</label>"
        "<input id=\"email_password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required" [crate::invalid_if(problem.as_ref(), "email_password")] ">"
        "<button type=\"submit\">Send the confirmation link</button></form></section>");
    // Password.
    w!(h, "<section class=\"card\" aria-labelledby=\"password-h\"><h2 id=\"password-h\">Change password</h2>"
        [crate::form_error_html(at("password"))]
        "<form method=\"post\" action=\"/portal/profile/password\" class=\"stack\">" [csrf]
        "<label for=\"current\">Current password</label>"
        "<input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required" [crate::invalid_if(problem.as_ref(), "current")] ">"
        "<label for=\"new_password\">New password <span class=\"hint\">(at least 10 characters)</span></label>"
        "<input id=\"new_password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\"" [crate::invalid_if(problem.as_ref(), "new_password")] ">"
        "<label for=\"new_password2\">New password again</label>"
        "<input id=\"new_password2\" name=\"password2\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\"" [crate::invalid_if(problem.as_ref(), "new_password2")] ">"
        "<button type=\"submit\">Change password</button> <span class=\"hint\">Every other session of yours is signed out.</span></form></section>");
    // Subscription keys per product.
    let keys = state.platform.credentials().subscription_keys(d.id);
    w!(h, "<section class=\"card\" aria-labelledby=\"subs\"><h2 id=\"subs\">Subscription keys</h2>"
        "<p>Per product, a primary and a secondary key, without expiry (header <code>Ocp-Apim-Subscription-Key</code>). <a href=\"/portal\">Subscribe to more products</a> on the overview.</p>");
    if keys.is_empty() {
        h.raw("<p class=\"muted\">No subscriptions yet.</p>");
    } else {
        h.raw("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Product</th><th scope=\"col\">Key</th><th scope=\"col\">Value</th><th scope=\"col\"><span class=\"sr-only\">Action</span></th></tr></thead><tbody>");
        for product in Product::ALL {
            for slot in [KeySlot::Primary, KeySlot::Secondary] {
                let Some(k) = keys.iter().find(|k| k.product == product && k.slot == slot) else {
                    continue;
                };
                w!(h, "<tr><td>" {product.display_name()} "</td><td>" {title_case(slot.as_str())} "</td>"
                    "<td><code class=\"secret\">" {k.key} "</code> <button type=\"button\" class=\"copy\" data-copy=\"" {k.key} "\" aria-label=\"Copy the " {slot.as_str()} " " {product.display_name()} " key\" hidden>Copy</button></td>"
                    "<td><form class=\"inline\" method=\"post\" action=\"/portal/subscriptions/" {product.as_str()} "/" {slot.as_str()} "\">" [csrf]
                    "<button type=\"submit\" class=\"secondary\" aria-label=\"Regenerate the " {slot.as_str()} " " {product.as_str()} " key\">Regenerate</button></form></td></tr>");
            }
        }
        h.raw("</tbody></table></div>");
    }
    h.raw("</section>");
    // M-Pesa.
    let app = state.mpesa_application(d.id).await;
    h.raw("<section class=\"card\" aria-labelledby=\"mpesa-h\"><h2 id=\"mpesa-h\">M-Pesa API key and public key</h2>");
    super::mpesa::api_key(&mut h, app.as_ref());
    w!(h, "<form method=\"post\" action=\"/portal/mpesa/apikey\" class=\"inline\">" [csrf]
        "<input type=\"hidden\" name=\"from\" value=\"profile\">"
        "<button type=\"submit\" class=\"secondary\">Renew API key</button></form> "
        "<a href=\"/portal/mpesa\">Application settings</a>");
    if let Some(a) = app.as_ref().filter(|a| !a.public_key.is_empty()) {
        w!(h, "<label for=\"public-key\">The platform's public key (base64 DER, as clients paste it)</label>"
            "<textarea id=\"public-key\" readonly rows=\"4\" class=\"mono\">" {a.public_key} "</textarea>"
            "<p><button type=\"button\" class=\"copy\" data-copy=\"" {a.public_key} "\" hidden>Copy public key</button> "
            "<a href=\"/portal/profile/mpesa-public-key.pem\" download data-testid=\"pem-download\">Download as PEM</a></p>");
    }
    h.raw("</section>");
    // Go live.
    h.raw(concat!("<section class=\"card\" aria-labelledby=\"golive-h\"><h2 id=\"golive-h\">Go live</h2>",
        "<p>When testing is done, send your account details and a report of your sandbox transactions to the operator's staff; once they approve, production target environments open. <a href=\"/portal/golive\" data-testid=\"golive-link\">Request to go live</a></p></section>"));
    // Mailbox and deletion.
    w!(h, "<section class=\"card\" aria-labelledby=\"mail-h\"><h2 id=\"mail-h\">Mailbox</h2>"
        "<p>Every e-mail and SMS sent to you is in your <a href=\"/portal/mail\">mailbox</a>.</p></section>"
        "<section class=\"card danger-zone\" aria-labelledby=\"delete-h\"><h2 id=\"delete-h\">Delete account</h2>"
        "<p>You can no longer sign in; your API keys are revoked and your subscription and M-Pesa keys stop working at once. Your API users and transactions stay in the ledger's history.</p>"
        [crate::form_error_html(at("delete"))]
        "<form method=\"post\" action=\"/portal/profile/delete\">" [csrf]
        "<button type=\"submit\" class=\"danger\">Delete my account…</button></form></section>");
    (status, document("My profile", Some(session), "profile", h)).into_response()
}

#[derive(Default)]
struct Query<'a> {
    done: Option<&'a String>,
    /// A refusal: the id of the control it is about (`""`: none) and the sentence.
    problem: Option<(&'static str, &'a str)>,
    email: &'a str,
}

/// The section of the page a control belongs to (`""`: the page as a whole).
fn section_of(field: &str) -> &'static str {
    match field {
        "name" => "details",
        "new_email" | "email_password" => "email",
        "current" | "new_password" | "new_password2" => "password",
        "delete" => "delete",
        _ => "",
    }
}

/// `GET /portal/profile`.
pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    page(
        &state,
        &session,
        StatusCode::OK,
        &Query {
            done: q.get("done"),
            ..Query::default()
        },
    )
    .await
}

/// The page again with `error` about control `field` (its id; `""`: none).
async fn refuse(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    field: &'static str,
    error: &str,
) -> Response {
    page(
        state,
        session,
        status,
        &Query {
            problem: Some((field, error)),
            ..Query::default()
        },
    )
    .await
}

/// `POST /portal/profile/name`.
pub(crate) async fn save_name(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let name = form.get("name");
    if name.is_empty() {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "name",
            "Give your name.",
        )
        .await;
    }
    if name.chars().count() > 100 || name.chars().any(mkoba_platform::portal::hides_text) {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "name",
            "Give a name of at most 100 characters, without control characters or bytes that are not UTF-8 text.",
        )
        .await;
    }
    match state
        .platform
        .portal()
        .set_name(session.developer.id, name)
        .await
    {
        Ok(()) => see_other("/portal/profile?done=name"),
        Err(e) => crate::failed(e),
    }
}

/// `GET /portal/profile/phone`: a new phone number, confirmed with a code sent to it.
pub(crate) async fn phone(State(state): State<PortalState>, session: Session) -> Response {
    journey::phone_page(
        &state,
        &session,
        PhoneStep::Change,
        StatusCode::OK,
        None,
        "",
    )
    .await
}

/// `POST /portal/profile/phone`: sends a code to the new number's virtual phone.
pub(crate) async fn send_phone_code(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    journey::send_phone_code(&state, &session, PhoneStep::Change, &body).await
}

/// `POST /portal/profile/phone/code`: the right code makes the new number the account's
/// (and the account's e-mail address is told).
pub(crate) async fn change_phone(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    match journey::check_phone_code(&state, &session, PhoneStep::Change, &body).await {
        Ok(()) => {
            tracing::info!(developer.id = session.developer.id, "phone number changed");
            see_other("/portal/profile?done=phone")
        }
        Err(refused) => refused,
    }
}

/// `POST /portal/profile/email`: checks the password, then mails a link to the new address.
pub(crate) async fn request_email_change(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let to = form.get("email").to_lowercase();
    let d = &session.developer;
    if !mkoba_platform::portal::plain_email(&to) {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "new_email",
            "Give a valid e-mail address.",
        )
        .await;
    }
    if to == d.email {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "new_email",
            "That is your e-mail already.",
        )
        .await;
    }
    let checked = state
        .throttle
        .passwords()
        .run(
            state
                .platform
                .portal()
                .check_password(d.id, form.raw("password")),
        )
        .await;
    let Ok(checked) = checked else {
        return crate::busy(BACK);
    };
    match checked {
        Ok(Some(_)) => {}
        Ok(None) => {
            return refuse(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                "email_password",
                "The current password is not right.",
            )
            .await;
        }
        Err(e) => return crate::failed(e),
    }
    match state.platform.portal().account_by_email(&to).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return refuse(
                &state,
                &session,
                StatusCode::CONFLICT,
                "new_email",
                "Another account uses that e-mail.",
            )
            .await;
        }
        Err(e) => return crate::failed(e),
    }
    let m = mail::email_change(&state, d.id, &d.name, &d.email, &to);
    match state.platform.portal().queue_mail(m).await {
        Ok(()) => see_other("/portal/profile?done=email-sent"),
        Err(e) => crate::failed(e),
    }
}

/// `GET /portal/profile/email/confirm?t=…`: the link of the new address's mail.
pub(crate) async fn confirm_email_change(
    State(state): State<PortalState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let t = q.get("t").map(String::as_str).unwrap_or("");
    let outcome = match state
        .platform
        .portal()
        .check_link(LinkPurpose::ChangeEmail, t)
    {
        Ok(claims) => match claims.subject.split_once('\n') {
            Some((from, to)) => {
                let name = state
                    .platform
                    .portal()
                    .developer(claims.developer_id)
                    .await
                    .ok()
                    .flatten()
                    .map(|d| d.name)
                    .unwrap_or_default();
                let notice = mail::email_changed(claims.developer_id, &name, from, to);
                match state
                    .platform
                    .portal()
                    .change_email(claims.developer_id, from, to, Some(notice))
                    .await
                {
                    Ok(()) => Ok(to.to_owned()),
                    Err(AccountError::EmailTaken) => {
                        Err("Another account took that e-mail in the meantime.")
                    }
                    Err(e @ (AccountError::Internal | AccountError::Busy)) => {
                        return crate::failed(e);
                    }
                    Err(_) => Err(
                        "This link was used already, or the account's e-mail changed since it was sent.",
                    ),
                }
            }
            None => Err("This link is not valid."),
        },
        Err(mkoba_platform::accounts::LinkError::Expired) => {
            Err("This link has expired: ask for the change again on your profile.")
        }
        Err(_) => Err("This link is not valid: copy the whole link from the message."),
    };
    match outcome {
        Ok(to) => auth_page(
            &state,
            &headers,
            StatusCode::OK,
            "E-mail changed",
            |h, t| {
                w!(*h, "<p class=\"notice\" role=\"status\" data-testid=\"email-changed\">Your e-mail is now <strong>" {to} "</strong>. Sign in with it from now on.</p>");
                super::account::sign_in_form(h, t, &to, "/portal/profile?done=email", None);
            },
        ),
        Err(text) => auth_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "E-mail not changed",
            |h, _| {
                w!(*h, "<h1>E-mail not changed</h1><p class=\"error\" role=\"alert\">" {text} "</p><p><a href=\"/portal/profile\">My profile</a></p>");
            },
        ),
    }
}

/// `POST /portal/profile/password`.
pub(crate) async fn change_password(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let new = form.raw("password");
    if let Some(problem) = crate::password_problem(new, true) {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "new_password",
            problem,
        )
        .await;
    }
    if new != form.raw("password2") {
        return refuse(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "new_password2",
            "The two new passwords differ.",
        )
        .await;
    }
    let d = &session.developer;
    let notice = mail::password_changed(d.id, &d.name, &d.email);
    let changed = state
        .throttle
        .passwords()
        .run(state.platform.portal().change_password(
            d.id,
            form.raw("current"),
            new,
            // Every session ends, this one too: it goes on under a new id below, so an id
            // that leaked before the change (the reason for many a change) is worth nothing.
            None,
            Some(notice),
        ))
        .await;
    let Ok(changed) = changed else {
        return crate::busy(BACK);
    };
    match changed {
        Ok(()) => {
            tracing::info!(
                developer.id = d.id,
                "password changed; every session ended, this one renewed"
            );
            super::account::start_session(&state, d.id, "/portal/profile?done=password").await
        }
        Err(AccountError::WrongPassword) => {
            refuse(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                "current",
                "The current password is not right.",
            )
            .await
        }
        Err(AccountError::Stale) => {
            refuse(
                &state,
                &session,
                StatusCode::CONFLICT,
                "current",
                "Your password changed in the meantime; try again.",
            )
            .await
        }
        Err(e) => crate::failed(e),
    }
}

/// `POST /portal/profile/delete`: asks first, then checks the password and deletes.
pub(crate) async fn delete(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let password = form.raw("password");
    if !confirm::confirmed(&form) {
        return confirm::page(
            &session,
            &confirm::Confirm {
                title: "Delete your account?",
                consequences: &[
                    "You can no longer sign in, and every session of yours ends.".to_owned(),
                    "Every API key of your API users is revoked; your subscription keys and M-Pesa API key stop working at once.".to_owned(),
                    "Your API users and transactions stay in the ledger's history; your name, e-mail and phone are removed from the account.".to_owned(),
                    "This cannot be undone.".to_owned(),
                ],
                action: "/portal/profile/delete",
                fields: &[],
                button: "Delete my account",
                cancel: "/portal/profile",
                section: "profile",
                ask_password: true,
            },
        );
    }
    let d = &session.developer;
    let goodbye = mail::account_deleted(d.id, &d.name, &d.email);
    let deleted = state
        .throttle
        .passwords()
        .run(
            state
                .platform
                .portal()
                .delete_account(d.id, password, Some(goodbye)),
        )
        .await;
    let Ok(deleted) = deleted else {
        return crate::busy(BACK);
    };
    match deleted {
        Ok(()) => {
            tracing::info!(developer.id = d.id, "account deleted");
            let mut h = Html::new();
            h.raw("<h1>Account deleted</h1><p class=\"notice\" role=\"status\" data-testid=\"deleted\">Your account was deleted and you are signed out. Its keys no longer work; its transactions stay in the ledger's history.</p><p><a href=\"/portal/signup\">Create an account</a></p>");
            let mut r = document("Account deleted", None, "", h).into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, crate::clear_session_cookie(&state));
            r
        }
        Err(AccountError::WrongPassword) => {
            refuse(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                "delete",
                "The password is not right: the account was not deleted.",
            )
            .await
        }
        Err(e) => crate::failed(e),
    }
}

/// `GET /portal/profile/mpesa-public-key.pem`.
pub(crate) async fn public_key(State(state): State<PortalState>, session: Session) -> Response {
    let Some(app) = state
        .mpesa_application(session.developer.id)
        .await
        .filter(|a| !a.public_key.is_empty())
    else {
        return crate::not_found().await;
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mkoba-mpesa-public-key.pem\"",
            ),
        ],
        public_key_pem(&app.public_key),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_wraps_the_key_at_64_columns() {
        let b64 = "A".repeat(130);
        let pem = public_key_pem(&b64);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 2);
        assert_eq!(lines[4], "-----END PUBLIC KEY-----");
    }
}
