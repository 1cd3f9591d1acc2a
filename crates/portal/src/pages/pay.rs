//! The payer's side of a Collection Widget invoice on the virtual phone: the page the QR
//! code's link opens (`/portal/phone/invoice/{id}?t=…`), where whoever scanned it approves
//! or rejects the payment, and the virtual phone's dial pad, which finds a pending widget
//! invoice by the USSD code the widget shows (`*165*3*<paymentReference>#`).
//!
//! The link page needs no portal session: the payer is not the developer. It is guarded by
//! the link's token (claims signed by the platform, naming the invoice) and by the
//! pre-session CSRF cookie for its forms. A decision goes through the platform's settlement
//! path like the virtual phone's own approvals: ledger, status, callback.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{Payment, PaymentKind, PaymentStatus};
use mkoba_platform::portal::{DecideError, PaymentFilter};
use mkoba_platform::widget::{WIDGET_LINK_PURPOSE, is_widget_payer, payment_reference};
use serde_json::json;
use uuid::Uuid;

use crate::html::Html;
use crate::pages::money;
use crate::{
    Form, PortalState, Session, csrf_refused, document, form_encode, pre_session_ok,
    pre_session_token, query_params, see_other, w, when,
};

/// The signed token of an invoice's payer link.
pub(crate) fn link_token(state: &PortalState, id: &Uuid) -> String {
    state
        .platform
        .credentials()
        .sign_claims(WIDGET_LINK_PURPOSE, &json!({ "invoice": id.to_string() }))
}

fn gone() -> Response {
    let mut h = Html::new();
    h.raw("<h1>Payment link not valid</h1><p>This link does not open a Collection Widget invoice: it may be mistyped. Scan the QR code again.</p>");
    (StatusCode::NOT_FOUND, document("Pay", None, "", h)).into_response()
}

/// Why a link opens nothing.
enum LinkError {
    /// Not a widget invoice, or not the platform's token for it.
    Gone,
    /// The store's readers busy or failing for now: the busy page.
    Unavailable(mkoba_platform::Internal),
}

impl IntoResponse for LinkError {
    fn into_response(self) -> Response {
        match self {
            LinkError::Gone => gone(),
            LinkError::Unavailable(e) => crate::failed(e),
        }
    }
}

/// The widget invoice a link names, if its token is the platform's for it.
async fn invoice(state: &PortalState, id: &str, token: &str) -> Result<Payment, LinkError> {
    let id = Uuid::parse_str(id).map_err(|_| LinkError::Gone)?;
    if !state.platform.credentials().invoice_link_is(token, &id) {
        return Err(LinkError::Gone);
    }
    match state.platform.payments().get(&id).await {
        Ok(Some(p)) if p.kind == PaymentKind::Invoice && is_widget_payer(&p.party) => Ok(p),
        Ok(_) => Err(LinkError::Gone),
        Err(e) => Err(LinkError::Unavailable(e)),
    }
}

/// `GET /portal/phone/invoice/{id}?t=…`.
pub(crate) async fn show(
    State(state): State<PortalState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = query_params(query.as_deref());
    let token = q.get("t").cloned().unwrap_or_default();
    let p = match invoice(&state, &id, &token).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (csrf, cookie) = pre_session_token(&state, &headers);
    let mut h = Html::new();
    w!(
        h,
        "<h1>Pay with MoMo</h1><div class=\"phone\"><div class=\"screen\"><p class=\"carrier\">Mkoba · virtual phone</p>"
    );
    match q.get("done").map(String::as_str) {
        Some("approved") => {
            h.raw("<p class=\"notice\" role=\"status\">You approved the payment.</p>")
        }
        Some("rejected") => {
            h.raw("<p class=\"notice\" role=\"status\">You rejected the payment.</p>")
        }
        _ => &mut h,
    };
    // The question while the invoice waits; once it is closed, what it was.
    let (ask, to) = match p.status {
        PaymentStatus::Pending => ("Pay ", " to Sand Box?"),
        _ => ("Invoice of ", " to Sand Box"),
    };
    w!(h, "<article class=\"prompt\" aria-label=\"Invoice " {p.reference_id} "\"><p class=\"ask\">" {ask} "<strong data-testid=\"phone-amount\">" {money(p.amount)} "</strong>" {to} "</p>"
        "<p class=\"hint\">Payment reference " {payment_reference(&p.reference_id)} " · order " {p.external_id.clone().unwrap_or_default()} "</p>");
    if let Some(at) = p.expires_at_ms {
        w!(h, "<p class=\"hint\">Valid until " {when(at)} "</p>");
    }
    if p.status == PaymentStatus::Pending {
        w!(h, "<div class=\"buttons\"><form method=\"post\" action=\"/portal/phone/invoice/" {p.reference_id} "/approve\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"" {csrf} "\"><input type=\"hidden\" name=\"t\" value=\"" {token} "\">"
            "<button type=\"submit\" class=\"approve\" data-testid=\"phone-approve\">Approve</button></form>"
            "<form method=\"post\" action=\"/portal/phone/invoice/" {p.reference_id} "/reject\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"" {csrf} "\"><input type=\"hidden\" name=\"t\" value=\"" {token} "\">"
            "<button type=\"submit\" class=\"danger\" data-testid=\"phone-reject\">Reject</button></form></div>");
    } else {
        let text = match p.status {
            PaymentStatus::Successful => "Paid.",
            _ => "This invoice is closed: it was rejected, cancelled or it expired.",
        };
        w!(h, "<p data-testid=\"phone-status\" data-status=\"" {p.status.as_str()} "\"><strong>" {text} "</strong></p>");
    }
    h.raw("</article></div></div>");
    let mut r = document("Pay", None, "", h).into_response();
    if let Some(c) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// `POST /portal/phone/invoice/{id}/{approve|reject}`.
pub(crate) async fn decide(
    State(state): State<PortalState>,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !pre_session_ok(&state, &headers, &form) {
        return csrf_refused();
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return gone(),
    };
    let token = form.get("t").to_owned();
    let p = match invoice(&state, &id, &token).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let developer = match state.platform.credentials().api_user(&p.api_user).await {
        Ok(Some(u)) => u.developer_id,
        Ok(None) => return gone(),
        Err(e) => return crate::failed(e),
    };
    let back = format!(
        "/portal/phone/invoice/{}?t={}",
        p.reference_id,
        form_encode(&token)
    );
    match state
        .platform
        .portal()
        .decide_payment(developer, p.reference_id, approve)
        .await
    {
        Ok(()) => see_other(&format!(
            "{back}&done={}",
            if approve { "approved" } else { "rejected" }
        )),
        Err(DecideError::NotPending) => see_other(&back),
        Err(DecideError::NotFound) => gone(),
        Err(e @ DecideError::Internal) => crate::failed(e),
    }
}

/// The payment reference in a USSD code `*165*3*<reference>#` (or the bare reference).
fn reference_in(code: &str) -> Option<String> {
    let code = code.trim();
    let digits = code
        .strip_prefix("*165*3*")
        .and_then(|r| r.strip_suffix('#'))
        .unwrap_or(code);
    (digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_owned())
}

/// `POST /portal/phone/dial`: the virtual phone's dial pad opens the pending widget invoice
/// of one of the developer's API users whose payment reference the code carries.
pub(crate) async fn dial(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return csrf_refused();
    }
    let Some(reference) = reference_in(form.get("code")) else {
        return see_other("/portal/phone?done=dial-unknown");
    };
    let filter = PaymentFilter {
        developer_id: session.developer.id,
        kind: Some(PaymentKind::Invoice),
        status: Some(PaymentStatus::Pending),
        limit: 500,
        ..PaymentFilter::default()
    };
    // The newest 500 waiting invoices, not counted.
    let invoices = match state.platform.portal().payments_after(&filter).await {
        Ok((v, _)) => v,
        Err(e) => return crate::failed(e),
    };
    match invoices
        .iter()
        .find(|p| is_widget_payer(&p.party) && payment_reference(&p.reference_id) == reference)
    {
        Some(p) => see_other(&format!(
            "/portal/phone/invoice/{}?t={}",
            p.reference_id,
            form_encode(&link_token(&state, &p.reference_id))
        )),
        None => see_other("/portal/phone?done=dial-unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dial_pad_reads_the_ussd_code_or_the_bare_reference() {
        assert_eq!(
            reference_in("*165*3*123456789#").as_deref(),
            Some("123456789")
        );
        assert_eq!(reference_in(" 123456789 ").as_deref(), Some("123456789"));
        assert_eq!(reference_in("*165*3*12345#"), None);
        assert_eq!(reference_in("*165#"), None);
    }
}
