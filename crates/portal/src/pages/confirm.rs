//! The confirmation step of a destructive action (renewing the M-Pesa API key, regenerating
//! a subscription key, revoking an API key, deleting the account), without JavaScript: the
//! action's form posts without `confirm=yes` and gets this page, whose form posts the same
//! fields again with it.

use axum::response::{IntoResponse, Response};

use crate::html::Html;
use crate::{Form, Session, csrf_field, document, w};

/// What the confirmation page says and sends.
pub(crate) struct Confirm<'a> {
    pub title: &'a str,
    /// What happens, one sentence each.
    pub consequences: &'a [String],
    /// Where the confirmed form posts.
    pub action: &'a str,
    /// Fields to send again (besides the CSRF token and `confirm=yes`).
    pub fields: &'a [(&'a str, &'a str)],
    pub button: &'a str,
    pub cancel: &'a str,
    pub section: &'a str,
    /// Ask for the account's password on this page (never carried over from a form).
    pub ask_password: bool,
}

/// Whether a form carries the confirmation.
pub(crate) fn confirmed(form: &Form) -> bool {
    form.get("confirm") == "yes"
}

/// The confirmation page.
pub(crate) fn page(session: &Session, c: &Confirm<'_>) -> Response {
    let mut h = Html::new();
    w!(h, "<h1>" {c.title} "</h1><section class=\"card confirm\" aria-labelledby=\"confirm-what\"><h2 id=\"confirm-what\">Please confirm</h2><ul>");
    for line in c.consequences {
        w!(h, "<li>" {line} "</li>");
    }
    w!(h, "</ul><form method=\"post\" action=\"" {c.action} "\" class=\"inline\">" [csrf_field(session)]
        "<input type=\"hidden\" name=\"confirm\" value=\"yes\">");
    for (name, value) in c.fields {
        w!(h, "<input type=\"hidden\" name=\"" {name} "\" value=\"" {value} "\">");
    }
    if c.ask_password {
        h.raw("<label for=\"confirm_password\">Your password</label> <input id=\"confirm_password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required> ");
    }
    w!(h, "<button type=\"submit\" class=\"danger\" data-testid=\"confirm\">" {c.button} "</button></form> "
        "<a href=\"" {c.cancel} "\">Cancel</a></section>");
    document(c.title, Some(session), c.section, h).into_response()
}
