//! The virtual phone: a scenario mode in which collections from MSISDN payers wait for the
//! payer instead of settling at once. Pick an MSISDN, see what waits for it, approve or
//! reject; the decision settles through the platform's settlement path (ledger, status,
//! callback exactly as for automatic settlement).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::PaymentKind;
use mkoba_platform::portal::DecideError;
use uuid::Uuid;

use crate::html::Html;
use crate::pages::apiusers::not_found_page;
use crate::pages::money;
use crate::{
    Form, PortalState, Session, csrf_field, document, form_encode, query_params, see_other, w, when,
};

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let waiting = match state
        .platform
        .portal()
        .waiting_payments(session.developer.id)
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let csrf = csrf_field(&session);
    let on = session.developer.approval_mode;
    let mut h = Html::new();
    w!(h, "<h1>Virtual phone</h1>" [super::notice(q.get("done"))]
        "<section class=\"card mode\" aria-labelledby=\"mode\"><h2 id=\"mode\">Payer approval</h2>");
    if on {
        h.raw("<p><span class=\"badge ok\">On</span> New request-to-pay, request-to-withdraw, invoice and pre-approval requests to MSISDN payers, and M-Pesa C2B payments and direct-debit mandates, wait here until the payer approves or rejects them. MTN's and M-Pesa's sandbox test numbers keep their fixed outcomes.</p>");
    } else {
        h.raw("<p><span class=\"badge\">Off</span> Payments settle by the sandbox's rules at once (or after the configured delay). Turn this on to approve or reject them here as the payer would on their phone.</p>");
    }
    w!(h, "<form method=\"post\" action=\"/portal/phone/mode\">" [csrf]
        "<input type=\"hidden\" name=\"on\" value=\"" {if on { "0" } else { "1" }} "\">"
        "<button type=\"submit\">" {if on { "Turn payer approval off" } else { "Turn payer approval on" }} "</button></form></section>");

    w!(h, "<section class=\"card\" aria-labelledby=\"dial\"><h2 id=\"dial\">Dial</h2>"
        "<form method=\"post\" action=\"/portal/phone/dial\" class=\"filters\">" [csrf]
        "<div><label for=\"code\">USSD code <span class=\"hint\">(a Collection Widget shows it, e.g. *165*3*123456789#)</span></label>"
        "<input id=\"code\" name=\"code\" inputmode=\"tel\" autocomplete=\"off\" data-testid=\"dial-code\"></div>"
        "<div class=\"actions\"><button type=\"submit\" data-testid=\"dial-call\">Call</button></div></form></section>");
    let selected = q
        .get("msisdn")
        .cloned()
        .or_else(|| waiting.first().map(|(m, _)| m.clone()));
    let v = selected.clone().unwrap_or_default();
    w!(h, "<form method=\"get\" action=\"/portal/phone\" class=\"filters\" aria-label=\"Pick a phone\">"
        "<div><label for=\"msisdn\">MSISDN</label><input id=\"msisdn\" name=\"msisdn\" inputmode=\"numeric\" value=\"" {v} "\" list=\"waiting-msisdns\"></div>"
        "<datalist id=\"waiting-msisdns\">");
    for (m, _) in &waiting {
        w!(h, "<option value=\"" {m} "\"></option>");
    }
    h.raw("</datalist><div class=\"actions\"><button type=\"submit\">Open phone</button></div></form>");
    if !waiting.is_empty() {
        h.raw("<p>Phones with payments waiting: ");
        for (i, (m, ps)) in waiting.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            w!(h, "<a href=\"/portal/phone?msisdn=" {form_encode(m)} "\">" {m} "</a> (" {ps.len()} ")");
        }
        h.raw("</p>");
    }
    let Some(msisdn) = selected else {
        h.raw("<p class=\"muted\">Nothing is waiting for a payer.</p>");
        return document("Virtual phone", Some(&session), "phone", h).into_response();
    };
    let mine: Vec<_> = waiting
        .iter()
        .find(|(m, _)| *m == msisdn)
        .map(|(_, ps)| ps.clone())
        .unwrap_or_default();
    w!(h, "<div class=\"phone\" data-refresh=\"5\"><div class=\"screen\"><p class=\"carrier\">Mkoba · " {msisdn} "</p>"
        "<p class=\"live\"><label><input type=\"checkbox\" id=\"live\" checked hidden> <span hidden>Live refresh</span></label></p>");
    // Messages to this number (the phone step's codes), the developer's own only.
    let sms = state
        .platform
        .portal()
        .mailbox(&mkoba_platform::accounts::MailFilter {
            recipient: Some(msisdn.trim_start_matches('+').to_owned()),
            channel: Some(mkoba_platform::accounts::MailChannel::Sms),
            limit: 5,
            ..mkoba_platform::accounts::MailFilter::of(session.developer.id)
        })
        .await
        .unwrap_or_default();
    for m in &sms {
        w!(h, "<article class=\"prompt sms\" aria-label=\"SMS\"><p class=\"hint\">SMS · " {when(m.created_at_ms)} "</p><p data-testid=\"sms\">" {m.body} "</p></article>");
    }
    if mine.is_empty() {
        h.raw("<p class=\"muted\">No payment is waiting for this payer.</p>");
    }
    for p in &mine {
        // A mandate moves no money now: the payer allows later debits (it asked to "Pay 0").
        let mandate = matches!(p.kind, PaymentKind::PreApproval | PaymentKind::MpesaMandate);
        let ask = if mandate {
            "Allow later debits from this account".to_owned()
        } else {
            format!("Pay {}", money(p.amount))
        };
        let mut ask_html = Html::new();
        if mandate {
            ask_html.raw("Allow later debits from this account?");
        } else {
            w!(ask_html, "Pay <strong>" {money(p.amount)} "</strong>?");
        }
        w!(h, "<article class=\"prompt\" aria-label=\"" {ask} " (" {p.kind.as_str()} ")\"><p class=\"ask\">" [ask_html] "</p>");
        if let Some(m) = p.payer_message.as_deref().filter(|m| !m.is_empty()) {
            w!(h, "<p>" {m} "</p>");
        }
        // The payee's note is written in the payee's history, not shown to the payer (MTN's
        // definitions: `payerMessage` is the payer's, `payeeNote` the payee's).
        w!(h, "<p class=\"hint\">" {p.kind.as_str()} " · " {when(p.created_at_ms)} "</p>"
            "<div class=\"buttons\"><form method=\"post\" action=\"/portal/phone/" {p.reference_id} "/approve\">" [csrf]
            "<input type=\"hidden\" name=\"msisdn\" value=\"" {msisdn} "\"><button type=\"submit\" class=\"approve\" aria-label=\"Approve: " {ask} "\">Approve</button></form>"
            "<form method=\"post\" action=\"/portal/phone/" {p.reference_id} "/reject\">" [csrf]
            "<input type=\"hidden\" name=\"msisdn\" value=\"" {msisdn} "\"><button type=\"submit\" class=\"danger\" aria-label=\"Reject: " {ask} "\">Reject</button></form></div>"
            "<p class=\"ref\"><a class=\"mono\" href=\"/portal/transactions/" {p.reference_id} "\">" {p.reference_id} "</a></p></article>");
    }
    h.raw("</div></div>");
    document("Virtual phone", Some(&session), "phone", h).into_response()
}

pub(crate) async fn set_mode(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let on = form.get("on") == "1";
    match state
        .platform
        .portal()
        .set_approval_mode(session.developer.id, on)
        .await
    {
        Ok(()) => see_other(if on {
            "/portal/phone?done=mode-on"
        } else {
            "/portal/phone?done=mode-off"
        }),
        Err(e) => crate::failed(e),
    }
}

pub(crate) async fn decide(
    State(state): State<PortalState>,
    session: Session,
    Path((id, decision)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return not_found_page(&session),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found_page(&session);
    };
    let back = format!(
        "/portal/phone?msisdn={}&done={}",
        form_encode(form.get("msisdn")),
        if approve { "approved" } else { "rejected" }
    );
    match state
        .platform
        .portal()
        .decide_payment(session.developer.id, id, approve)
        .await
    {
        Ok(()) => see_other(&back),
        Err(DecideError::NotFound) => not_found_page(&session),
        // Decided, cancelled or expired meanwhile (another tab, the partner, the clock): the
        // phone says so (the click did nothing; it went to the transaction without a word).
        Err(DecideError::NotPending) => see_other(&format!(
            "/portal/phone?msisdn={}&done=not-waiting",
            form_encode(form.get("msisdn"))
        )),
        Err(e @ DecideError::Internal) => crate::failed(e),
    }
}
