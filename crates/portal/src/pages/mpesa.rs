//! The M-Pesa application page: API key (shown once, renewable), the platform's public key
//! with a copy button, session lifetime, allowed origins and the asynchronous result URL
//! with the developer portal's rules enforced and explained.
//!
//! The data comes from an [`MpesaBackend`](crate::MpesaBackend) that the server provides
//! once the M-Pesa dialect is built in; without one the page explains that M-Pesa is not
//! available yet, and the settings form still checks the rules.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::html::Html;
use crate::{
    Form, MpesaApplication, MpesaSettings, PortalState, Session, csrf_field, document,
    internal_error, query_params, see_other, w, when,
};

/// The lowest and highest port M-Pesa sends asynchronous results to.
pub const RESULT_PORTS: (u16, u16) = (11000, 19000);

/// Checks an asynchronous result URL against the portal's rules: `https` only, a host, and
/// an explicit port in [11000, 19000].
pub fn check_result_url(url: &str) -> Result<(), &'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("Only secure HTTP (https://) URLs are allowed.");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("The URL must not carry a user name or password.");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() || host.trim_matches(['[', ']']).is_empty() {
        return Err("The URL needs a host.");
    }
    let Some(port) = port else {
        return Err("Give the port explicitly: it must be between 11000 and 19000.");
    };
    match port.parse::<u16>() {
        Ok(p) if (RESULT_PORTS.0..=RESULT_PORTS.1).contains(&p) => Ok(()),
        _ => Err("The port must be between 11000 and 19000."),
    }
}

/// Checks one allowed origin: `*`, or `scheme://host[:port]` without a path.
pub fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("Origins start with https:// or http://.")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err("An origin is a scheme, a host and an optional port, without a path.");
    }
    Ok(())
}

fn rules(h: &mut Html) {
    h.raw(concat!("<ul class=\"rules\"><li>Only secure HTTP (<code>https://</code>) URLs are allowed.</li>",
        "<li>The port must be given and lie in the range [11000, 19000]; results are not sent to other ports.</li>",
        "<li>Leave it empty to switch every API back to synchronous mode; with a URL, the APIs answer asynchronously and post the result there.</li></ul>"));
}

fn page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    error: Option<&str>,
    new_key: Option<&str>,
    done: Option<&String>,
    draft: Option<(&str, &str)>,
) -> Response {
    let app: Option<MpesaApplication> = state
        .mpesa
        .as_ref()
        .and_then(|m| m.application(session.developer.id));
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<h1>M-Pesa application</h1>"[super::notice(done)]);
    if state.mpesa.is_none() {
        h.raw("<p class=\"notice warn\" role=\"status\">The M-Pesa OpenAPI is not built into this server yet. This page shows your M-Pesa application (API key, public key, session lifetime, allowed origins, result URL) once it is.</p>");
    }
    if let Some(e) = error {
        w!(h, "<p class=\"error\" role=\"alert\">" {e} "</p>");
    }
    let app = app.unwrap_or_default();
    h.raw("<section class=\"card\" aria-labelledby=\"apikey\"><h2 id=\"apikey\">API key</h2>");
    if let Some(key) = new_key {
        w!(h, "<div class=\"reveal\"><p>Your new API key. Copy it now: it is not shown again, and the previous key no longer works.</p>"
            "<p><code class=\"secret big\" data-testid=\"mpesa-api-key\">" {key} "</code> <button type=\"button\" class=\"copy\" data-copy=\"" {key} "\" hidden>Copy</button></p></div>");
    }
    match app.api_key_created_at_ms {
        Some(at) => w!(h, "<p>Current key issued " {when(at)} ". It is stored only as a hash.</p>"),
        None => {
            h.raw("<p class=\"muted\">No API key yet.</p>");
        }
    }
    w!(h, "<form method=\"post\" action=\"/portal/mpesa/apikey\">" [csrf]
        "<button type=\"submit\">Renew API key</button> <span class=\"hint\">Clients encrypt the key with the public key below and send it as the bearer of <code>getSession</code>.</span></form></section>"
        "<section class=\"card\" aria-labelledby=\"pubkey\"><h2 id=\"pubkey\">Public key</h2>");
    if app.public_key.is_empty() {
        h.raw("<p class=\"muted\">Available once M-Pesa is enabled.</p>");
    } else {
        w!(h, "<label for=\"public-key\">The platform's 4096-bit RSA public key (base64 DER)</label>"
            "<textarea id=\"public-key\" readonly rows=\"6\" class=\"mono\">" {app.public_key} "</textarea>"
            "<button type=\"button\" class=\"copy\" data-copy=\"" {app.public_key} "\" hidden>Copy public key</button>");
    }
    w!(
        h,
        "</section><section class=\"card\" aria-labelledby=\"session\"><h2 id=\"session\">Session lifetime</h2><p>"
    );
    if app.session_lifetime_secs > 0 {
        w!(h, "A session id from <code>getSession</code> stays valid for " {app.session_lifetime_secs} " seconds.");
    } else {
        h.raw("Shown once M-Pesa is enabled.");
    }
    let (origins, url) = match draft {
        Some((o, u)) => (o.to_owned(), u.to_owned()),
        None => (
            app.allowed_origins.join("\n"),
            app.result_url.clone().unwrap_or_default(),
        ),
    };
    w!(h, "</p></section>"
        "<section class=\"card\" aria-labelledby=\"settings\"><h2 id=\"settings\">Allowed origins and result URL</h2>"
        "<form method=\"post\" action=\"/portal/mpesa/settings\" class=\"stack\">" [csrf]
        "<label for=\"origins\">Allowed origins <span class=\"hint\">(one per line, e.g. https://shop.example:8443, or *)</span></label>"
        "<textarea id=\"origins\" name=\"origins\" rows=\"3\">" {origins} "</textarea>"
        "<label for=\"result_url\">Asynchronous result URL</label>"
        "<input id=\"result_url\" name=\"result_url\" type=\"url\" placeholder=\"https://shop.example:12000/mpesa/results\" value=\"" {url} "\" aria-describedby=\"url-rules\">"
        "<div id=\"url-rules\">");
    rules(&mut h);
    h.raw("</div><button type=\"submit\">Update</button></form></section>");
    (status, document("M-Pesa", Some(session), "mpesa", h)).into_response()
}

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
        None,
        None,
        q.get("done"),
        None,
    )
}

pub(crate) async fn renew_key(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    let Some(backend) = state.mpesa.clone() else {
        return page(
            &state,
            &session,
            StatusCode::CONFLICT,
            Some("M-Pesa is not available on this server yet."),
            None,
            None,
            None,
        );
    };
    match backend.renew_api_key(session.developer.id).await {
        Some(key) => {
            tracing::info!(
                developer.id = session.developer.id,
                "M-Pesa API key renewed"
            );
            page(
                &state,
                &session,
                StatusCode::OK,
                None,
                Some(&key),
                None,
                None,
            )
        }
        None => internal_error(),
    }
}

pub(crate) async fn save_settings(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let origins_text = form.get("origins");
    let url = form.get("result_url");
    let refuse = |msg: &str| {
        page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            Some(msg),
            None,
            None,
            Some((origins_text, url)),
        )
    };
    let origins: Vec<String> = origins_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    for o in &origins {
        if let Err(e) = check_origin(o) {
            return refuse(e);
        }
    }
    if !url.is_empty()
        && let Err(e) = check_result_url(url)
    {
        return refuse(e);
    }
    let Some(backend) = state.mpesa.clone() else {
        return refuse(
            "These settings are valid, but M-Pesa is not available on this server yet, so they were not saved.",
        );
    };
    let settings = MpesaSettings {
        allowed_origins: origins,
        result_url: (!url.is_empty()).then(|| url.to_owned()),
    };
    match backend.save_settings(session.developer.id, settings).await {
        Ok(()) => see_other("/portal/mpesa?done=saved"),
        Err(e) => refuse(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_urls_must_be_https_on_ports_11000_to_19000() {
        assert!(check_result_url("https://shop.example:12000/results").is_ok());
        assert!(check_result_url("https://shop.example:11000").is_ok());
        assert!(check_result_url("https://shop.example:19000/x?y=1").is_ok());
        assert!(check_result_url("http://shop.example:12000/").is_err());
        assert!(check_result_url("https://shop.example/results").is_err());
        assert!(check_result_url("https://shop.example:443/").is_err());
        assert!(check_result_url("https://shop.example:19001/").is_err());
        assert!(check_result_url("https://u:p@shop.example:12000/").is_err());
        assert!(check_result_url("https://:12000/").is_err());
        assert!(check_result_url("https://[::1]:12000/").is_ok());
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert!(check_origin("*").is_ok());
        assert!(check_origin("https://shop.example").is_ok());
        assert!(check_origin("http://127.0.0.1:3000").is_ok());
        assert!(check_origin("shop.example").is_err());
        assert!(check_origin("https://shop.example/path").is_err());
    }
}
