//! The portal's pages, one module per area.

mod account;
mod apipage;
mod apiusers;
mod clocks;
pub(crate) mod confirm;
mod docs;
mod golive;
mod guides;
mod journey;
mod library;
mod mail;
pub(crate) mod mpesa;
mod operator;
mod pay;
mod phone;
mod profile;
mod reports;
mod samples;
mod transactions;

pub(crate) use transactions::money;
mod widget;

use axum::Router;
use axum::routing::{get, post};

use crate::PortalState;

pub(crate) fn routes() -> Router<PortalState> {
    Router::new()
        .route("/", get(account::overview))
        .route("/signin", get(account::sign_in_page).post(account::sign_in))
        .route("/signup", get(account::sign_up_page).post(account::sign_up))
        .route("/signout", post(account::sign_out))
        .route("/signup/sent", get(account::sign_up_sent))
        .route("/activate", get(journey::activate))
        .route("/activate/resend", post(account::resend_activation))
        .route("/welcome", get(journey::welcome))
        .route("/welcome/phone", post(journey::send_code))
        .route("/welcome/code", post(journey::check_code))
        .route("/welcome/done", get(journey::welcome_done))
        .route("/forgot", get(journey::forgot_page).post(journey::forgot))
        .route("/reset", get(journey::reset_page).post(journey::reset))
        .route("/mail", get(mail::show))
        .route("/profile", get(profile::show))
        .route("/profile/name", post(profile::save_name))
        .route("/profile/email", post(profile::request_email_change))
        .route("/profile/email/confirm", get(profile::confirm_email_change))
        .route("/profile/password", post(profile::change_password))
        .route(
            "/profile/phone",
            get(profile::phone).post(profile::send_phone_code),
        )
        .route("/profile/phone/code", post(profile::change_phone))
        .route("/profile/delete", post(profile::delete))
        .route("/profile/mpesa-public-key.pem", get(profile::public_key))
        .route("/subscriptions/{product}", post(account::subscribe))
        .route(
            "/subscriptions/{product}/{slot}",
            post(account::regenerate_key),
        )
        .route("/apiusers", get(apiusers::list).post(apiusers::create))
        .route("/apiusers/{id}", get(apiusers::show))
        .route("/apiusers/{id}/keys", post(apiusers::create_key))
        .route(
            "/apiusers/{id}/keys/{key_id}/revoke",
            post(apiusers::revoke_key),
        )
        .route("/library/{file}", get(library::download))
        .route("/mpesa", get(mpesa::show))
        .route(
            "/mpesa/apikey",
            get(mpesa::renew_key_page).post(mpesa::renew_key),
        )
        .route("/mpesa/settings", post(mpesa::save_settings))
        .route("/transactions", get(transactions::list))
        .route("/transactions/{id}", get(transactions::show))
        .route("/transactions/{id}/resend", post(transactions::resend))
        .route("/reports", get(reports::show))
        .route("/phone", get(phone::show))
        .route("/phone/mode", post(phone::set_mode))
        .route("/phone/dial", post(pay::dial))
        .route("/phone/invoice/{id}", get(pay::show))
        .route("/phone/invoice/{id}/{decision}", post(pay::decide))
        .route("/phone/{id}/{decision}", post(phone::decide))
        .route("/clocks", get(clocks::show).post(clocks::create))
        .route("/clocks/{id}/advance", post(clocks::advance))
        .route("/clocks/{id}/delete", post(clocks::delete))
        .route("/widget", get(widget::show))
        .route("/widget/demo", get(widget::demo))
        .route("/widget/{id}/settings", post(widget::save))
        .route("/docs", get(docs::show))
        .route("/docs/try", post(docs::try_it))
        .route("/docs/{id}", get(apipage::show).post(apipage::send))
        .route("/golive", get(golive::show).post(golive::submit))
        .route("/operator", get(operator::requests))
        .route(
            "/operator/golive/{id}",
            get(operator::request).post(operator::decide),
        )
        .route("/operator/accounts", get(operator::accounts))
        .route("/operator/accounts/{id}", post(operator::set_active))
        .route("/guides", get(guides::index))
        .route("/guides/{slug}", get(guides::show))
}

/// A short notice shown after a redirect (`?done=…`), from a fixed list.
pub(crate) fn notice(done: Option<&String>) -> crate::html::Html {
    // A subscription says to which product (the keys of several are on the page).
    if let Some(product) = done
        .and_then(|d| d.strip_prefix("subscribed-"))
        .and_then(mkoba_platform::model::Product::parse)
    {
        let mut h = crate::html::Html::new();
        crate::w!(h, "<p class=\"notice\" role=\"status\">Subscribed to " {product.display_name()} ": its primary and secondary keys are below.</p>");
        return h;
    }
    let text = match done.map(|s| s.as_str()) {
        Some("subscribed") => "Subscribed: your primary and secondary keys are below.",
        Some("regenerated") => "The key was regenerated; the old one no longer works.",
        Some("revoked") => "The API key was revoked.",
        Some("resent") => "The callback was queued again; its attempt appears below shortly.",
        Some("approved") => {
            "Approved: the payment settles now, SUCCESSFUL unless the payer cannot pay it (its transaction page says how it ended)."
        }
        Some("not-waiting") => {
            "That payment is no longer waiting: it was decided, cancelled or expired meanwhile, and your click changed nothing (its transaction page says how it ended)."
        }
        Some("rejected") => "Rejected: the payment fails with APPROVAL_REJECTED.",
        Some("mode-on") => {
            "Virtual phone on: new collections from MSISDN payers wait here for approval."
        }
        Some("mode-off") => "Virtual phone off: payments settle by the sandbox's rules again.",
        Some("saved") => "Settings saved.",
        Some("renewed") => {
            "API key renewed: the key before it no longer works, and the sessions made with it ended. The new key is below and on your profile."
        }
        Some("dial-unknown") => {
            "No pending Collection Widget invoice has that code: dial the code the widget shows (*165*3*…#)."
        }
        _ => return crate::html::Html::new(),
    };
    let mut h = crate::html::Html::new();
    crate::w!(h, "<p class=\"notice\" role=\"status\">" {text} "</p>");
    h
}

/// Says that only the newest API users are listed, when the list reached the bound
/// ([`mkoba_platform::portal::LISTED_API_USERS`]).
pub(crate) fn listed_newest(h: &mut crate::html::Html, listed: usize) {
    let bound = mkoba_platform::portal::LISTED_API_USERS;
    if listed >= bound {
        crate::w!(*h, "<p class=\"hint\" data-testid=\"listed-newest\">Your " {bound} " newest API users are listed here; the older ones work as before through the APIs.</p>");
    }
}
