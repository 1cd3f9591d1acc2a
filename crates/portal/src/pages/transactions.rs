//! Transactions: a filterable, paginated table of the developer's payments and a page per
//! payment with its timeline (request, 202, settlement and ledger postings, callback
//! attempts) and a button to send its callback again.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{Payment, PaymentKind, PaymentStatus, Product};
use mkoba_platform::portal::{PaymentFilter, ResendError};
use mkoba_platform::widget::is_widget_payer;
use uuid::Uuid;

use crate::html::Html;
use crate::pages::apiusers::not_found_page;
use crate::{
    Form, PortalState, Session, amount, csrf_field, document, form_encode, internal_error,
    parse_day, query_params, see_other, w, when,
};

const PAGE_SIZE: u32 = 25;
const DAY_MS: i64 = 86_400_000;

pub(crate) fn status_badge(h: &mut Html, status: PaymentStatus) {
    let class = match status {
        PaymentStatus::Successful => "ok",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Pending => "pending",
    };
    w!(*h, "<span class=\"badge " {class} "\">" {status.as_str()} "</span>");
}

fn filter_of(developer_id: i64, q: &HashMap<String, String>) -> PaymentFilter {
    let page: u32 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    PaymentFilter {
        developer_id,
        product: q.get("product").and_then(|p| Product::parse(p)),
        kind: q.get("kind").and_then(|k| PaymentKind::parse(k)),
        status: q.get("status").and_then(|s| PaymentStatus::parse(s)),
        party: q.get("party").cloned(),
        reference: q.get("ref").cloned(),
        api_user: q.get("api_user").and_then(|u| Uuid::parse_str(u).ok()),
        from_ms: q.get("from").and_then(|d| parse_day(d)),
        to_ms: q.get("to").and_then(|d| parse_day(d)).map(|d| d + DAY_MS),
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
    }
}

fn select(
    h: &mut Html,
    id: &'static str,
    label: &'static str,
    options: &[&str],
    current: Option<&String>,
) {
    w!(*h, "<div><label for=\"" {id} "\">" {label} "</label><select id=\"" {id} "\" name=\"" {id} "\"><option value=\"\">Any</option>");
    for o in options {
        if current.is_some_and(|c| c == o) {
            w!(*h, "<option selected>" {o} "</option>");
        } else {
            w!(*h, "<option>" {o} "</option>");
        }
    }
    h.raw("</select></div>");
}

fn input(
    h: &mut Html,
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    current: Option<&String>,
) {
    let v = current.map_or("", |s| s.as_str());
    w!(*h, "<div><label for=\"" {id} "\">" {label} "</label><input id=\"" {id} "\" name=\"" {id} "\" type=\"" {kind} "\" value=\"" {v} "\"></div>");
}

/// The rows of a payments table.
pub(crate) fn payment_rows(h: &mut Html, payments: &[Payment]) {
    h.raw("<div class=\"table-wrap\"><table class=\"tx\"><thead><tr><th scope=\"col\">Created</th><th scope=\"col\">Operation</th><th scope=\"col\">Party</th><th scope=\"col\" class=\"num\">Amount</th><th scope=\"col\">Status</th><th scope=\"col\">Reference id</th></tr></thead><tbody>");
    for p in payments {
        w!(*h, "<tr><td>" {when(p.created_at_ms)} "</td><td>" {p.product.as_str()} " · " {p.kind.as_str()});
        if is_widget_payer(&p.party) {
            h.raw(" <span class=\"badge\" title=\"Collection Widget\">widget</span>");
        }
        w!(*h, "</td><td>" {p.party.id} "</td><td class=\"num\">" {amount(p.amount)} "</td><td>");
        status_badge(h, p.status);
        if let (PaymentStatus::Failed, Some(r)) = (p.status, &p.reason) {
            w!(*h, " <span class=\"reason\">" {r} "</span>");
        }
        w!(*h, "</td><td><a class=\"mono\" href=\"/portal/transactions/" {p.reference_id} "\">" {p.reference_id} "</a></td></tr>");
    }
    h.raw("</tbody></table></div>");
}

pub(crate) async fn list(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let filter = filter_of(session.developer.id, &q);
    let Ok(page) = state.platform.payments_page(&filter) else {
        return internal_error();
    };
    let mut h = Html::new();
    h.raw("<h1>Transactions</h1><form method=\"get\" action=\"/portal/transactions\" class=\"filters\" aria-label=\"Filter transactions\">");
    let products: Vec<&str> = Product::REPORTED.iter().map(|p| p.as_str()).collect();
    let kinds: Vec<&str> = PaymentKind::ALL.iter().map(|k| k.as_str()).collect();
    select(&mut h, "product", "Product", &products, q.get("product"));
    select(&mut h, "kind", "Operation", &kinds, q.get("kind"));
    select(
        &mut h,
        "status",
        "Status",
        &["PENDING", "SUCCESSFUL", "FAILED"],
        q.get("status"),
    );
    input(
        &mut h,
        "party",
        "Party (MSISDN, e-mail…)",
        "search",
        q.get("party"),
    );
    input(
        &mut h,
        "ref",
        "Reference, external or transaction id",
        "search",
        q.get("ref"),
    );
    input(&mut h, "from", "From", "date", q.get("from"));
    input(&mut h, "to", "To", "date", q.get("to"));
    if let Some(u) = q.get("api_user") {
        w!(h, "<input type=\"hidden\" name=\"api_user\" value=\"" {u} "\">");
    }
    h.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a href=\"/portal/transactions\">Clear</a></div></form>");
    let first = if page.total == 0 {
        0
    } else {
        u64::from(filter.offset) + 1
    };
    let last = u64::from(filter.offset) + page.payments.len() as u64;
    w!(h, "<p class=\"muted\" aria-live=\"polite\">" {first} "–" {last} " of " {page.total} " transactions</p>");
    if page.payments.is_empty() {
        h.raw("<p>No transactions match. Make a payment through the API with your keys and it appears here.</p>");
    } else {
        payment_rows(&mut h, &page.payments);
    }
    // Pagination links keep the filters.
    let mut base: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "page")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    base.sort();
    let link = |n: u32| {
        let mut s = String::from("/portal/transactions?");
        for (k, v) in &base {
            s.push_str(&format!("{}={}&", form_encode(k), form_encode(v)));
        }
        s.push_str(&format!("page={n}"));
        s
    };
    let current = filter.offset / PAGE_SIZE + 1;
    let pages = page.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    h.raw("<nav class=\"pager\" aria-label=\"Pages\">");
    if current > 1 {
        w!(h, "<a rel=\"prev\" href=\"" {link(current - 1)} "\">← Newer</a>");
    }
    w!(h, "<span>Page " {current} " of " {pages} "</span>");
    if u64::from(current) < pages {
        w!(h, "<a rel=\"next\" href=\"" {link(current + 1)} "\">Older →</a>");
    }
    h.raw("</nav>");
    document("Transactions", Some(&session), "transactions", h).into_response()
}

fn event(h: &mut Html, at: Option<i64>, title: &str, detail: Html) {
    let at = at.map(crate::when_precise).unwrap_or_default();
    w!(*h, "<li><span class=\"at\">" {at} "</span><strong>" {title} "</strong><div>" [detail] "</div></li>");
}

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found_page(&session);
    };
    let p = match state.platform.owned_payment(session.developer.id, &id) {
        Ok(Some(p)) => p,
        Ok(None) => return not_found_page(&session),
        Err(_) => return internal_error(),
    };
    let (Ok(transfers), Ok(times), Ok(attempts), Ok(outbox)) = (
        state.platform.transfers_for(&id),
        state.platform.transfer_times(&id),
        state.platform.callback_attempts(&id),
        state.platform.outbox_of(&id),
    ) else {
        return internal_error();
    };
    let mut h = Html::new();
    w!(h, "<p class=\"crumbs\"><a href=\"/portal/transactions\">Transactions</a> /</p>"
        "<h1>" {p.product.as_str()} " · " {p.kind.as_str()} " " );
    if is_widget_payer(&p.party) {
        h.raw("<span class=\"badge\" title=\"A Collection Widget payment\">widget</span> ");
    }
    status_badge(&mut h, p.status);
    w!(h, "</h1>" [super::notice(q.get("done"))]
        "<dl class=\"facts\"><dt>Reference id</dt><dd class=\"mono\">" {p.reference_id} "</dd>"
        "<dt>Amount</dt><dd>" {amount(p.amount)} "</dd>"
        "<dt>Party</dt><dd>" {p.party.id_type.as_str()} " " {p.party.id} "</dd>"
        "<dt>API user</dt><dd><a class=\"mono\" href=\"/portal/apiusers/" {p.api_user} "\">" {p.api_user} "</a> (" {p.environment} ")</dd>");
    if let Some(e) = &p.external_id {
        w!(h, "<dt>External id</dt><dd>" {e} "</dd>");
    }
    if let Some(f) = &p.financial_transaction_id {
        w!(h, "<dt>Financial transaction id</dt><dd>" {f} "</dd>");
    }
    if let Some(m) = &p.payer_message {
        w!(h, "<dt>Payer message</dt><dd>" {m} "</dd>");
    }
    if let Some(n) = &p.payee_note {
        w!(h, "<dt>Payee note</dt><dd>" {n} "</dd>");
    }
    if let Some(u) = &p.callback_url {
        w!(h, "<dt>Callback URL</dt><dd class=\"mono\">" {u} "</dd>");
    }
    h.raw("</dl><h2>Timeline</h2><ol class=\"timeline\">");
    let mut d = Html::new();
    w!(d, "<code>" {p.kind.as_str()} "</code> for " {amount(p.amount)} " with " {p.party.id} ", validated and committed to disk.");
    event(&mut h, Some(p.created_at_ms), "Request received", d);
    let mut d = Html::new();
    if p.kind.is_mpesa() {
        let mode = if p.callback_url.is_some() {
            "Asynchronous mode: the API answered <code>201 INS-0</code> without a transaction id once the payment was durable, and the result goes to the result URL."
        } else {
            "Synchronous mode: the payment was durable, <code>PENDING</code>, and the call stayed open until the settlement below (or its time limit)."
        };
        d.raw(mode);
        event(&mut h, Some(p.created_at_ms), "Accepted", d);
    } else {
        d.raw("The API answered <code>202 Accepted</code> once the payment was durable; its status was <code>PENDING</code>.");
        event(&mut h, Some(p.created_at_ms), "202 Accepted", d);
    }
    for (t, (_, created, updated)) in transfers.iter().zip(times.iter()) {
        let mut d = Html::new();
        let money = amount(mkoba_ledger::Money::from_minor(t.amount, t.currency));
        if updated != created || t.state.as_str() == "pending" {
            w!(d, "Transfer #" {t.id.0} " reserves " {money} " from account " {t.debit.0} " for account " {t.credit.0} " (two-phase: pending).");
            event(&mut h, Some(*created), "Ledger: funds reserved", d);
        } else {
            w!(d, "Transfer #" {t.id.0} " moves " {money} " from account " {t.debit.0} " to account " {t.credit.0} ": <code>" {t.state.as_str()} "</code>.");
            event(&mut h, Some(*created), "Ledger: posting", d);
        }
        if updated != created {
            let mut d = Html::new();
            w!(d, "Transfer #" {t.id.0} " is now <code>" {t.state.as_str()} "</code> (" {if t.state.as_str() == "posted" { "the money moved" } else { "the reservation was released" }} ").");
            event(&mut h, Some(*updated), "Ledger: settlement posting", d);
        }
    }
    match (p.status, p.settled_at_ms) {
        (PaymentStatus::Pending, _) => {
            let mut d = Html::new();
            match p.settle_at_ms {
                Some(at) => w!(d, "Due to be decided at " {when(at)} "."),
                None => {
                    d.raw("Waiting for the payer (virtual phone) or for ever (a sandbox number that stays pending).");
                }
            }
            event(&mut h, None, "Waiting for settlement", d);
        }
        (status, at) => {
            let mut d = Html::new();
            w!(d, "Status <code>" {status.as_str()} "</code>");
            if let Some(r) = &p.reason {
                w!(d, ", reason <code>" {r} "</code>");
            }
            if let Some(f) = &p.financial_transaction_id {
                w!(d, ", financial transaction id " {f});
            }
            d.raw(".");
            event(&mut h, at, "Settlement decision", d);
        }
    }
    for a in &attempts {
        let mut d = Html::new();
        w!(d, "<code>" {a.method.as_str()} " " {a.url} "</code> → ");
        match (a.status_code, &a.error) {
            (Some(code), _) => w!(d, "<strong>" {code} "</strong>"),
            (None, Some(e)) => w!(d, "<strong>no answer</strong>: " {e}),
            (None, None) => w!(d, "<strong>no answer</strong>"),
        }
        w!(d, " in " {a.latency_ms} " ms");
        if let Some(r) = a.retry_at_ms {
            w!(d, "; next try at " {when(r)});
        }
        if let Some(o) = outbox.iter().find(|o| o.id == a.outbox_id) {
            w!(d, "<details><summary>Body</summary><pre>" {o.body} "</pre></details>");
        }
        event(
            &mut h,
            Some(a.at_ms),
            &format!("Callback attempt {}", a.attempt),
            d,
        );
    }
    for o in outbox
        .iter()
        .filter(|o| o.state == "pending" && o.attempts == 0)
    {
        let mut d = Html::new();
        w!(d, "<code>" {o.method} " " {o.url} "</code> is queued.<details><summary>Body</summary><pre>" {o.body} "</pre></details>");
        event(&mut h, None, "Callback queued", d);
    }
    h.raw("</ol>");
    if p.callback_url.is_some() && p.status.is_final() {
        w!(h, "<form method=\"post\" action=\"/portal/transactions/" {p.reference_id} "/resend\">" [csrf_field(&session)]
            "<button type=\"submit\">Re-send callback</button> <span class=\"hint\">Sends the current status body to the callback URL again.</span></form>");
    }
    w!(h, "<p class=\"hint\">Partners poll with <code>GET /" {p.product.as_str()} "/…/" {p.reference_id} "</code>; the status above is what they get.</p>");
    document("Transaction", Some(&session), "transactions", h).into_response()
}

pub(crate) async fn resend(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found_page(&session);
    };
    match state
        .platform
        .resend_callback(session.developer.id, id)
        .await
    {
        Ok(()) => see_other(&format!("/portal/transactions/{id}?done=resent")),
        Err(ResendError::NotFound) => not_found_page(&session),
        Err(ResendError::NoCallbackUrl | ResendError::NotFinal) => {
            see_other(&format!("/portal/transactions/{id}"))
        }
        Err(ResendError::Internal) => internal_error(),
    }
}
