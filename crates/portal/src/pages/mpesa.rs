//! The M-Pesa application page: API key (created with the account when it becomes active,
//! shown here and on the Account Profile as seed 004 has it; renewable after a
//! confirmation step that says what stops working), the
//! platform's public key with a copy button, session lifetime, allowed origins and the
//! asynchronous result URL with the developer portal's rules enforced and explained.
//!
//! The data comes from an [`MpesaBackend`](crate::MpesaBackend) that the server provides
//! once the M-Pesa dialect is built in; without one the page explains that M-Pesa is not
//! available yet, and the settings form still checks the rules.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::confirm;
use crate::html::Html;
use crate::{
    Form, MpesaApplication, MpesaSettings, PortalState, Problem, Session, csrf_field, described,
    document, form_error, form_error_html, invalid_if, query_params, see_other, w, when,
};

use mkoba_api_types::mpesa::check_result_url;
use mkoba_platform::widget::check_origin;

/// Checks an M-Pesa application's list of allowed origins: at most
/// [`MAX_ORIGINS`](mkoba_platform::widget::MAX_ORIGINS), as a widget API user's, each by
/// [`check_origin`]; the list with each origin once (as written first, whatever its case).
pub fn check_origins(origins: &[String]) -> Result<Vec<String>, String> {
    use mkoba_platform::widget::MAX_ORIGINS;
    if origins.len() > MAX_ORIGINS {
        return Err(format!(
            "List at most {MAX_ORIGINS} allowed origins (one per line); {} were given. Use * for any page.",
            origins.len()
        ));
    }
    let mut once: Vec<String> = Vec::new();
    for o in origins {
        check_origin(o).map_err(str::to_owned)?;
        if !once.iter().any(|x| x.eq_ignore_ascii_case(o)) {
            once.push(o.clone());
        }
    }
    Ok(once)
}

/// The application's API key as the Account Profile and this page show it (seed 004: "The
/// API Key and Public Key is found within the Accounts Profile page"), with a copy button;
/// a key issued before keys were kept (or one nobody holds) is a line that says to renew.
pub(crate) fn api_key(h: &mut Html, app: Option<&MpesaApplication>) {
    match app.map(|a| (a.api_key.as_deref(), a.api_key_created_at_ms)) {
        Some((Some(key), Some(at))) => {
            w!(*h, "<p>Your application's API key, issued " {when(at)} ":</p>"
                "<p><code class=\"secret big\" data-testid=\"mpesa-api-key\">" {key} "</code> <button type=\"button\" class=\"copy\" data-copy=\"" {key} "\" aria-label=\"Copy the M-Pesa API key\" hidden>Copy</button></p>");
        }
        Some((None, Some(at))) => {
            w!(*h, "<p data-testid=\"mpesa-api-key-unknown\">Your application's API key of " {when(at)} " is not kept: it was issued before the portal kept keys, or it replaced yours when the account was stopped. Renew it to have a key shown here (the old one stops working).</p>");
        }
        _ => {
            h.raw("<p class=\"muted\">No M-Pesa API key yet.</p>");
        }
    }
}

fn rules(h: &mut Html, insecure: bool) {
    h.raw(concat!("<ul class=\"rules\"><li>Only secure HTTP (<code>https://</code>) URLs are allowed.</li>",
        "<li>The port must be given and lie in the range [11000, 19000]; results are not sent to other ports.</li>"));
    if insecure {
        h.raw("<li data-testid=\"insecure-result-urls\">This server is in local-development mode (<code>--mpesa-insecure-result-urls</code>): on a loopback host (<code>localhost</code>, <code>127.0.0.1</code>, <code>[::1]</code>), <code>http://</code> and any port are taken too.</li>");
    }
    h.raw("<li>Leave it empty to switch every API back to synchronous mode; with a URL, the APIs answer asynchronously and post the result there.</li></ul>");
}

async fn page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    problem: Option<&Problem>,
    done: Option<&String>,
    draft: Option<(&str, &str, &str)>,
) -> Response {
    let app: Option<MpesaApplication> = state.mpesa_application(session.developer.id).await;
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<h1>M-Pesa application</h1>"[super::notice(done)]);
    if state.mpesa.is_none() {
        h.raw("<p class=\"notice warn\" role=\"status\">The M-Pesa OpenAPI is not built into this server yet. This page shows your M-Pesa application (API key, public key, session lifetime, allowed origins, result URL) once it is.</p>");
    }
    // A refusal is said in the section of the form it is about: renewing the key (field
    // `renew`) or the settings.
    let (renewal, settings) = match problem {
        Some(p) if p.0 == "renew" => (Some(p), None),
        p => (None, p),
    };
    h.raw("<section class=\"card\" aria-labelledby=\"apikey\"><h2 id=\"apikey\">API key</h2>");
    form_error(&mut h, renewal);
    api_key(&mut h, app.as_ref());
    let app = app.unwrap_or_default();
    w!(h, "<form method=\"post\" action=\"/portal/mpesa/apikey\">" [csrf]
        "<button type=\"submit\">Renew API key</button> <span class=\"hint\">Clients encrypt the key with the public key below and send it as the bearer of <code>getSession</code> (v2), or of every call (v1x, Mozambique).</span></form></section>"
        "<section class=\"card\" aria-labelledby=\"pubkey\"><h2 id=\"pubkey\">Public key</h2>");
    if app.public_key.is_empty() {
        h.raw("<p class=\"muted\">Available once M-Pesa is enabled.</p>");
    } else {
        w!(h, "<label for=\"public-key\">The platform's 4096-bit RSA public key (base64 DER)</label>"
            "<textarea id=\"public-key\" readonly rows=\"6\" class=\"mono\">" {app.public_key} "</textarea>"
            "<button type=\"button\" class=\"copy\" data-copy=\"" {app.public_key} "\" hidden>Copy public key</button>");
    }
    h.raw("</section>");
    let (origins, lifetime, url) = match draft {
        Some((o, l, u)) => (o.to_owned(), l.to_owned(), u.to_owned()),
        None => (
            app.allowed_origins.join("\n"),
            app.session_lifetime_secs.to_string(),
            app.result_url.clone().unwrap_or_default(),
        ),
    };
    w!(h, "<section class=\"card\" aria-labelledby=\"settings\"><h2 id=\"settings\">Origins, session lifetime and result URL</h2>"
        [form_error_html(settings)]
        "<form method=\"post\" action=\"/portal/mpesa/settings\" class=\"stack\">" [csrf]
        "<label for=\"origins\">Allowed origins <span class=\"hint\">(one per line, e.g. https://shop.example:8443, or *)</span></label>"
        "<textarea id=\"origins\" name=\"origins\" rows=\"3\"" [invalid_if(settings, "origins")] ">" {origins} "</textarea>"
        "<label for=\"session_lifetime_secs\">Session lifetime <span class=\"hint\">(seconds, 1 to 2592000: how long a session id from <code>getSession</code> stays valid)</span></label>"
        "<input id=\"session_lifetime_secs\" name=\"session_lifetime_secs\" type=\"number\" min=\"1\" max=\"2592000\" value=\"" {lifetime} "\"" [invalid_if(settings, "session_lifetime_secs")] ">"
        "<label for=\"result_url\">Asynchronous result URL</label>"
        "<input id=\"result_url\" name=\"result_url\" type=\"url\" placeholder=\"https://shop.example:12000/mpesa/results\" value=\"" {url} "\"" [described(settings, "result_url", Some("url-rules"))] ">"
        "<div id=\"url-rules\">");
    if let Some(why) = &app.result_url_refused {
        w!(h, "<p class=\"notice warn\" role=\"status\" data-testid=\"result-url-refused\">No result is sent to this URL: " {why} " It was saved under other rules than this server has now; the APIs still answer asynchronously. Change it, or empty it to go back to synchronous mode.</p>");
    }
    rules(&mut h, app.insecure_result_urls);
    h.raw("</div><button type=\"submit\">Update</button></form></section>");
    resource_urls(&mut h, &app.resource_urls);
    super::library::card(&mut h);
    h.raw(concat!(
        "<section class=\"card\" aria-labelledby=\"endpoints\"><h2 id=\"endpoints\">Endpoints and sandbox values</h2>",
        "<p>Base path on this server: <code>/sandbox/ipg/v2/{market}/</code> (test numbers active) or <code>/openapi/ipg/v2/{market}/</code> (only the ledger decides), ",
        "then <code>getSession/</code>, <code>c2bPayment/singleStage/</code>, <code>b2cPayment/</code>, <code>b2bPayment/</code>, <code>reversal/</code>, ",
        "<code>queryTransactionStatus/</code>, <code>queryBeneficiaryName/</code>, <code>directDebitCreation/</code>, <code>directDebitPayment/</code>, ",
        "<code>queryDirectDebit/</code>, <code>directDebitCancel/</code>.</p>",
        "<div class=\"table-wrap\"><table><caption>Markets</caption><thead><tr><th scope=\"col\">Market</th><th scope=\"col\">input_Country</th><th scope=\"col\">input_Currency</th></tr></thead><tbody>",
    ));
    for m in mkoba_api_types::mpesa::Market::ALL {
        h.raw("<tr><td><code>")
            .text(m.path())
            .raw("</code></td><td>")
            .text(m.country())
            .raw("</td><td>")
            .text(m.currency())
            .raw("</td></tr>");
    }
    h.raw(concat!(
        "</tbody></table></div>",
        "<div class=\"table-wrap\"><table><caption>Sandbox customers</caption><thead><tr><th scope=\"col\">MSISDN</th><th scope=\"col\">Outcome</th></tr></thead><tbody>",
        "<tr><td><code>000000000001</code></td><td>succeeds (so does any number not listed here)</td></tr>",
        "<tr><td><code>000000000008</code></td><td>C2B and direct debits: <code>422 INS-2006</code> insufficient balance</td></tr>",
        "<tr><td><code>000000000002</code></td><td>C2B and direct debits: never answers, <code>408 INS-9</code></td></tr>",
        "<tr><td><code>000000000006</code></td><td>B2C: <code>422 INS-2006</code></td></tr>",
        "<tr><td><code>000000000004</code></td><td>B2C: never answers, <code>408 INS-9</code></td></tr>",
        "<tr><td><code>25884</code>/<code>25885</code> + <code>000000N</code></td><td>v1x (Mozambique takes only <code>2588[45]…</code> numbers): as <code>00000000000N</code> above, e.g. <code>258840000008</code> has insufficient balance</td></tr></tbody></table></div>",
        "<p class=\"hint\">v1x: service provider code <code>171717</code> (the real sandbox's), currency MZN, <code>input_ThirdPartyReference</code> instead of <code>input_ThirdPartyConversationID</code>, and the generic response codes (e.g. <code>401 INS-2 Invalid API Key</code>).</p>",
        "<p class=\"hint\">Service provider code <code>000000</code> (and B2B receiver <code>000001</code>) are your application's short codes. With payer approval on (Virtual phone), a C2B waits for the customer there.</p></section>"
    ));
    (status, document("M-Pesa", Some(session), "mpesa", h)).into_response()
}

/// The seed's "Resource URL" of every API: REST verb, address, port, path, SSL.
fn resource_urls(h: &mut Html, urls: &[mkoba_api_types::mpesa::ResourceUrl]) {
    if urls.is_empty() {
        return;
    }
    h.raw(concat!(
        "<section class=\"card\" aria-labelledby=\"resources\"><h2 id=\"resources\">Resource URLs</h2>",
        "<p>Where each API answers on this server. The v1x gateway (Mozambique) takes the encrypted API key as the bearer of every call; ",
        "the v2 gateway takes it on <code>getSession</code> only, then the encrypted session id. Replace <code>{market}</code> with a market below.</p>",
        "<div class=\"table-wrap\"><table><caption>Resource URLs</caption><thead><tr><th scope=\"col\">Gateway</th><th scope=\"col\">API</th>",
        "<th scope=\"col\">Method</th><th scope=\"col\">Address</th><th scope=\"col\">Port</th><th scope=\"col\">Path</th><th scope=\"col\">SSL</th></tr></thead><tbody>",
    ));
    for u in urls {
        let h = &mut *h;
        w!(*h, "<tr><td>" {u.gateway} "</td><td>" {u.summary} "</td><td><code>" {u.method} "</code></td><td><code>" {u.address}
            "</code></td><td><code>" {u.port} "</code></td><td><code>" {u.path} "</code></td><td>" {if u.ssl { "true" } else { "false" }} "</td></tr>");
    }
    h.raw("</tbody></table></div></section>");
}

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    page(&state, &session, StatusCode::OK, None, q.get("done"), None).await
}

/// What renewing the key changes, for the confirmation page and the notice after it.
async fn issued(state: &PortalState, session: &Session) -> String {
    state
        .mpesa_application(session.developer.id)
        .await
        .and_then(|a| a.api_key_created_at_ms)
        .map_or_else(|| "before".to_owned(), |at| format!("on {}", when(at)))
}

/// The confirmation of a renewal asked from `from` (`profile`: My profile's button, whose
/// Cancel goes back there; else the M-Pesa page).
async fn confirm_renewal(state: &PortalState, session: &Session, from: &str) -> Response {
    let issued = issued(state, session).await;
    let (fields, cancel): (&[(&str, &str)], &str) = if from == "profile" {
        (&[("from", "profile")], "/portal/profile")
    } else {
        (&[], "/portal/mpesa")
    };
    confirm::page(
        session,
        &confirm::Confirm {
            title: "Renew your M-Pesa API key?",
            consequences: &[
                format!(
                    "The API key issued {issued} stops working at once: getSession with it is refused (INS-989), and so is every v1x call that carries it (INS-2)."
                ),
                "Every session id made with it ends: calls with those sessions are refused too."
                    .to_owned(),
                "The new key is shown on the M-Pesa page and your profile: put it in your applications."
                    .to_owned(),
            ],
            action: "/portal/mpesa/apikey",
            fields,
            button: "Renew the API key",
            cancel,
            section: "mpesa",
            ask_password: false,
        },
    )
}

/// `GET /portal/mpesa/apikey`: the confirmation step.
pub(crate) async fn renew_key_page(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let from = query_params(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v)
        .unwrap_or_default();
    confirm_renewal(&state, &session, &from).await
}

pub(crate) async fn renew_key(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    if !confirm::confirmed(&form) {
        return confirm_renewal(&state, &session, form.get("from")).await;
    }
    let Some(backend) = state.mpesa.clone() else {
        return page(
            &state,
            &session,
            StatusCode::CONFLICT,
            Some(&(
                "renew",
                "M-Pesa is not available on this server yet.".to_owned(),
            )),
            None,
            None,
        )
        .await;
    };
    match backend.renew_api_key(session.developer.id).await {
        Ok(_) => {
            tracing::info!(
                developer.id = session.developer.id,
                "M-Pesa API key renewed"
            );
            // After a redirect: reloading the page shows the key, and renews nothing.
            see_other("/portal/mpesa?done=renewed")
        }
        // A full disk, a lost database: the busy page, nothing changed.
        Err(e) => crate::failed(e),
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
    let lifetime = form.get("session_lifetime_secs").trim();
    let refuse = async |field: &'static str, msg: String| {
        page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            Some(&(field, msg)),
            None,
            Some((origins_text, lifetime, url)),
        )
        .await
    };
    let origins: Vec<String> = origins_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let origins = match check_origins(&origins) {
        Ok(once) => once,
        Err(e) => return refuse("origins", e).await,
    };
    // With M-Pesa built in, the server checks the URL (it knows whether local development
    // relaxes the rules); without it, the portal's rules apply.
    if state.mpesa.is_none()
        && !url.is_empty()
        && let Err(e) = check_result_url(url, false)
    {
        return refuse("result_url", e).await;
    }
    let session_lifetime_secs = match lifetime {
        "" => None,
        v => match v.parse::<u64>() {
            Ok(n) if (1..=30 * 86_400).contains(&n) => Some(n),
            _ => {
                return refuse(
                    "session_lifetime_secs",
                    "The session lifetime is a number of seconds between 1 and 2592000 (30 days)."
                        .to_owned(),
                )
                .await;
            }
        },
    };
    let Some(backend) = state.mpesa.clone() else {
        return refuse(
            "",
            "These settings are valid, but M-Pesa is not available on this server yet, so they were not saved.".to_owned(),
        ).await;
    };
    let settings = MpesaSettings {
        allowed_origins: origins,
        result_url: (!url.is_empty()).then(|| url.to_owned()),
        session_lifetime_secs,
    };
    match backend.save_settings(session.developer.id, settings).await {
        Ok(()) => see_other("/portal/mpesa?done=saved"),
        Err((field, e)) => refuse(field, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_urls_must_be_https_on_ports_11000_to_19000() {
        assert!(check_result_url("https://shop.example:11000", false).is_ok());
        assert!(check_result_url("https://shop.example:19000/x?y=1", false).is_ok());
        assert!(check_result_url("https://shop.example:19001/", false).is_err());
        assert!(check_result_url("https://:12000/", false).is_err());
        assert!(check_result_url("https://[::1]:12000/", false).is_ok());
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert!(check_origin("*").is_ok());
        assert!(check_origin("https://shop.example").is_ok());
        assert!(check_origin("http://127.0.0.1:3000").is_ok());
        assert!(check_origin("127.0.0.1").is_ok());
        assert!(check_origin("http://[::1]:8080").is_ok());
        assert!(check_origin("shop-1.example:443").is_ok());
        for bad in [
            "a b",
            "https://shop.example/path",
            "\u{1}",
            "\u{fffd}(",
            "<script>",
            "a\"b",
            "::::",
            "https://",
            "shop.example:0",
            "shop.example:65536",
            "shop.example:80:80",
            "[::1",
            "[zz]",
            "-shop.example",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?}");
        }
    }
}
