//! Go live (`/portal/golive`, seed 004): when testing is done the developer posts their
//! account details, the markets and products wanted and a transaction report made from
//! their sandbox transactions to the operator's staff, who approve or reject it (the
//! operator's pages are in `operator.rs`). Approval opens the production target
//! environments: MoMo API users for the approved markets, M-Pesa's `openapi` environment.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::accounts::{MailChannel, MailKind, NewMail};
use mkoba_platform::golive::{
    FIELD_MAX, FailedCase, GoLiveError, GoLiveFilter, GoLiveReport, GoLiveRequest, GoLiveState,
    LiveAccess, MPESA, NewGoLive, PRODUCTS, USE_CASE_MAX,
};
use mkoba_platform::model::Product;

use crate::html::Html;
use crate::{
    Form, PortalState, Problem, Session, csrf_field, document, internal_error, query_params,
    see_other, w, when,
};

/// A product's label.
pub(crate) fn product_label(p: &str) -> &str {
    if p == MPESA {
        return "M-Pesa (openapi environment)";
    }
    product_name(p)
}

/// A product's name where a sandbox transaction is meant (the report): M-Pesa is not
/// "(openapi environment)" there.
fn product_name(p: &str) -> &str {
    match Product::parse(p) {
        Some(product) => product.display_name(),
        None => p,
    }
}

/// The production markets of the server (its MoMo target environments but `sandbox`).
fn markets(state: &PortalState) -> impl Iterator<Item = &String> {
    state
        .environments
        .iter()
        .filter(|e| e.as_str() != mkoba_platform::SANDBOX)
}

fn state_badge(h: &mut Html, s: GoLiveState) {
    let class = match s {
        GoLiveState::Pending => "pending",
        GoLiveState::Approved => "ok",
        GoLiveState::Rejected => "failed",
    };
    w!(*h, "<span class=\"badge " {class} "\" data-testid=\"golive-state\">" {s.as_str()} "</span>");
}

/// As the transaction pages show amounts: the currency's decimals, thousands grouped.
fn amount(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => super::transactions::money(Money::from_minor(minor, c)),
        Err(_) => format!("{minor} {currency}"),
    }
}

/// A failed case's id as the client saw it on the wire (and the transaction pages show
/// it): an M-Pesa payment's conversation id has no hyphens.
fn wire_reference(f: &FailedCase) -> String {
    match mkoba_platform::model::PaymentKind::parse(&f.kind) {
        Some(kind) if kind.is_mpesa() => f.reference_id.replace('-', ""),
        _ => f.reference_id.clone(),
    }
}

/// Why a request is refused while the report holds no successful sandbox transaction.
const NOTHING_TESTED: &str = "Your transaction report has no successful sandbox transaction yet: make some in the sandbox (and handle a few failures, such as the sandbox's test numbers) before you ask to go live.";

/// Why a request is refused with this report, if it is: no successful sandbox transaction
/// at all, or none of some product asked for (`d.marked` then lists them, in the form's
/// order).
fn untested(report: &GoLiveReport, d: &mut Draft) -> Option<Problem> {
    if report.operations.iter().all(|o| o.successful == 0) {
        return Some(("", NOTHING_TESTED.to_owned()));
    }
    d.marked = PRODUCTS
        .into_iter()
        .filter(|p| d.products.iter().any(|x| x == p) && !report.tested.iter().any(|t| t == p))
        .map(str::to_owned)
        .collect();
    let names: Vec<&str> = d.marked.iter().map(|p| product_name(p)).collect();
    (!names.is_empty()).then(|| {
        (
            "product",
            format!(
                "Your transaction report has no successful sandbox transaction of {}: test each product you ask for in the sandbox first, or leave it out of this request.",
                names.join(", ")
            ),
        )
    })
}

/// The report's tables: operations with counts and success rates, then the failed cases.
pub(crate) fn report_tables(h: &mut Html, report: &GoLiveReport) {
    if report.operations.is_empty() {
        h.raw("<p class=\"muted\">No sandbox transactions yet: make some (and handle a few failures, such as the sandbox's test numbers) before you ask to go live.</p>");
        return;
    }
    if let Some(since) = report.since_ms {
        w!(*h, "<p class=\"notice\" data-testid=\"golive-newest\">You have more sandbox transactions than a report counts: it counts those made since " {when(since)} ".</p>");
    }
    let total = report.total();
    let plural = if total == 1 { "" } else { "s" };
    w!(*h, "<p>" {total} " sandbox transaction" {plural} ", " {report.failed_total()} " failed · made " {when(report.generated_at_ms)} "</p>");
    if !report.tested.is_empty() {
        let tested: Vec<&str> = report.tested.iter().map(|p| product_name(p)).collect();
        w!(*h, "<p data-testid=\"golive-tested\">Tested (a successful sandbox transaction): " {tested.join(", ")} "</p>");
    }
    w!(
        *h,
        "<div class=\"table-wrap\"><table data-testid=\"golive-operations\"><thead><tr><th scope=\"col\">Product</th><th scope=\"col\">Operation</th><th scope=\"col\" class=\"num\">Total</th><th scope=\"col\" class=\"num\">Successful</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">Pending</th><th scope=\"col\" class=\"num\">Success rate</th></tr></thead><tbody>"
    );
    for o in &report.operations {
        let rate = o
            .success_permille()
            .map_or("—".to_owned(), |p| format!("{}.{} %", p / 10, p % 10));
        let product = o.product.as_deref().map_or("—", product_name);
        w!(*h, "<tr><td>" {product} "</td><td><code>" {o.kind} "</code></td><td class=\"num\">" {o.total} "</td><td class=\"num\">" {o.successful} "</td><td class=\"num\">" {o.failed} "</td><td class=\"num\">" {o.pending} "</td><td class=\"num\">" {rate} "</td></tr>");
    }
    h.raw("</tbody></table></div>");
    if report.failed.is_empty() {
        h.raw("<p class=\"muted\">No failed cases.</p>");
        return;
    }
    w!(*h, "<h3>Failed cases handled <span class=\"count\">" {report.failed.len()} "</span></h3>"
        "<div class=\"table-wrap\"><table data-testid=\"golive-failed\"><thead><tr><th scope=\"col\">Created</th><th scope=\"col\">Operation</th><th scope=\"col\">Reason</th><th scope=\"col\" class=\"num\">Amount</th><th scope=\"col\">Reference</th></tr></thead><tbody>");
    for f in &report.failed {
        w!(*h, "<tr><td>" {when(f.created_at_ms)} "</td><td><code>" {f.kind} "</code></td><td>" {f.reason} "</td><td class=\"num\">" {amount(f.amount_minor, &f.currency)} "</td><td class=\"mono\">" {wire_reference(f)} "</td></tr>");
    }
    h.raw("</tbody></table></div>");
}

/// One request's facts (both the developer's and the operator's page show them).
pub(crate) fn request_facts(h: &mut Html, r: &GoLiveRequest) {
    let markets = if r.markets.is_empty() {
        "—".to_owned()
    } else {
        r.markets.join(", ")
    };
    let products: Vec<&str> = r.products.iter().map(|p| product_label(p)).collect();
    w!(*h, "<dl class=\"facts\"><dt>State</dt><dd>");
    state_badge(h, r.state);
    w!(*h, "</dd><dt>Submitted</dt><dd>" {when(r.created_at_ms)} "</dd>"
        "<dt>Company</dt><dd>" {r.company} "</dd>"
        "<dt>Contact</dt><dd>" {r.contact} "</dd>"
        "<dt>Website</dt><dd>" {if r.website.is_empty() { "—" } else { &r.website }} "</dd>"
        "<dt>Markets</dt><dd data-testid=\"golive-markets\">" {markets} "</dd>"
        "<dt>Products</dt><dd>" {products.join(", ")} "</dd>"
        "<dt>Use case</dt><dd class=\"pre\">" {r.use_case} "</dd>");
    if let Some(at) = r.decided_at_ms {
        w!(*h, "<dt>Decided</dt><dd>" {when(at)} "</dd>");
    }
    if let Some(c) = r.comment.as_deref().filter(|c| !c.is_empty()) {
        w!(*h, "<dt>Operator's comment</dt><dd class=\"pre\" data-testid=\"golive-comment\">" {c} "</dd>");
    }
    h.raw("</dl>");
}

fn access_summary(h: &mut Html, access: &LiveAccess) {
    h.raw("<section class=\"card\" aria-labelledby=\"access-h\"><h2 id=\"access-h\">Production access</h2>");
    if access.all {
        h.raw("<p data-testid=\"live-access\">Every production environment: this is the server's own sandbox developer.</p>");
    } else if access.markets.is_empty() && !access.mpesa {
        h.raw("<p data-testid=\"live-access\">None yet: only <code>sandbox</code>. Production target environments open when the operator approves a request.</p>");
    } else {
        let mut parts: Vec<String> = access.markets.iter().cloned().collect();
        if access.mpesa {
            parts.push("M-Pesa openapi".to_owned());
        }
        w!(*h, "<p data-testid=\"live-access\">" {parts.join(", ")} ". Create production API users on the <a href=\"/portal/apiusers\">API users</a> page.</p>");
    }
    h.raw("</section>");
}

/// What the form had, to show it again with an error.
#[derive(Default)]
struct Draft {
    company: String,
    contact: String,
    website: String,
    use_case: String,
    markets: Vec<String>,
    products: Vec<String>,
    /// The boxes of the error's field to mark, when not all of them: the products asked for
    /// that the report has not tested, the markets chosen for M-Pesa alone.
    marked: Vec<String>,
}

fn form(
    h: &mut Html,
    state: &PortalState,
    session: &Session,
    d: &Draft,
    problem: Option<&Problem>,
) {
    let mark = |field: &str| crate::invalid_if(problem, field);
    let mark_box = |field: &str, value: &str| {
        if d.marked.is_empty() || d.marked.iter().any(|x| x == value) {
            mark(field)
        } else {
            Html::new()
        }
    };
    // The default contact fills a new form, not one whose contact was found wanting.
    let contact = if d.contact.is_empty() && problem.is_none_or(|(f, _)| *f != "contact") {
        match &session.developer.phone {
            Some(p) => format!("{}, +{p}", session.developer.name),
            None => session.developer.name.clone(),
        }
    } else {
        d.contact.clone()
    };
    w!(*h, "<form method=\"post\" action=\"/portal/golive\" class=\"stack\" data-testid=\"golive-form\">" [csrf_field(session)]
        "<label for=\"company\">Company</label>"
        "<input id=\"company\" name=\"company\" required maxlength=\"" {FIELD_MAX} "\" autocomplete=\"organization\" value=\"" {d.company} "\"" [mark("company")] ">"
        "<label for=\"contact\">Contact person and phone</label>"
        "<input id=\"contact\" name=\"contact\" required maxlength=\"" {FIELD_MAX} "\" value=\"" {contact} "\"" [mark("contact")] ">"
        "<label for=\"website\">Website <span class=\"hint\">(optional)</span></label>"
        "<input id=\"website\" name=\"website\" type=\"url\" maxlength=\"" {FIELD_MAX} "\" placeholder=\"https://clinic.example\" value=\"" {d.website} "\"" [mark("website")] ">"
        "<label for=\"use_case\">What you will do with the APIs</label>"
        "<textarea id=\"use_case\" name=\"use_case\" required rows=\"4\" maxlength=\"" {USE_CASE_MAX} "\"" [mark("use_case")] ">" {d.use_case} "</textarea>"
        "<fieldset><legend>MoMo markets</legend><div class=\"checks\">");
    for m in markets(state) {
        let checked = if d.markets.contains(m) {
            " checked"
        } else {
            ""
        };
        w!(*h, "<label><input type=\"checkbox\" name=\"market\" value=\"" {m} "\"" {checked} [mark_box("market", m)] "> " {m} "</label>");
    }
    h.raw("</div></fieldset><fieldset><legend>Products</legend><div class=\"checks\">");
    for p in PRODUCTS {
        let checked = if d.products.iter().any(|x| x == p) {
            " checked"
        } else {
            ""
        };
        w!(*h, "<label><input type=\"checkbox\" name=\"product\" value=\"" {p} "\"" {checked} [mark_box("product", p)] "> " {product_label(p)} "</label>");
    }
    h.raw(concat!("</div></fieldset><p class=\"hint\">Your transaction report (below) is generated from your sandbox transactions when you submit and goes with the request.</p>",
        "<button type=\"submit\">Submit the go-live request</button></form>"));
}

async fn page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    done: Option<&String>,
    error: Option<&Problem>,
    draft: &Draft,
) -> Response {
    let id = session.developer.id;
    let requests = match state
        .platform
        .portal()
        .go_live_requests(&GoLiveFilter {
            developer_id: Some(id),
            state: None,
            limit: 50,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return crate::failed(e),
    };
    let access = match state.platform.portal().live_access(id).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    h.raw("<h1>Go live</h1>");
    if done.map(String::as_str) == Some("sent") {
        h.raw("<p class=\"notice\" role=\"status\">Your go-live request was sent to the operator's staff. You will be told by mail when they decide.</p>");
    }
    crate::form_error(&mut h, error);
    h.raw("<p class=\"lead\">When your integration works in the sandbox, send your account details and a report of your sandbox transactions to the operator's staff. They verify it; once they approve, you can create API users for the approved markets' production environments (and use M-Pesa's <code>openapi</code> environment).</p>");
    access_summary(&mut h, &access);
    let pending = requests.iter().find(|r| r.state == GoLiveState::Pending);
    match pending {
        Some(r) => {
            h.raw("<section class=\"card\" aria-labelledby=\"pending-h\"><h2 id=\"pending-h\">Waiting for review</h2>");
            request_facts(&mut h, r);
            h.raw("<h3>Transaction report sent</h3>");
            report_tables(&mut h, &r.report());
            h.raw("</section>");
        }
        None => {
            let report = match state
                .platform
                .portal()
                .go_live_report(id, super::reports::report_max(state))
                .await
            {
                Ok(v) => v,
                Err(e) => return crate::failed(e),
            };
            h.raw("<section class=\"card\" aria-labelledby=\"new-h\"><h2 id=\"new-h\">Request to go live</h2>");
            form(&mut h, state, session, draft, error);
            h.raw("<h3>Your transaction report</h3>");
            report_tables(&mut h, &report);
            h.raw("</section>");
        }
    }
    let decided: Vec<&GoLiveRequest> = requests
        .iter()
        .filter(|r| r.state != GoLiveState::Pending)
        .collect();
    if !decided.is_empty() {
        w!(h, "<h2>Earlier requests <span class=\"count\">" {decided.len()} "</span></h2>");
        for r in decided {
            h.raw("<section class=\"card\">");
            request_facts(&mut h, r);
            h.raw("</section>");
        }
    }
    (status, document("Go live", Some(session), "golive", h)).into_response()
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
        q.get("done"),
        None,
        &Draft::default(),
    )
    .await
}

/// Free text as a request takes it: trimmed, no control characters (line breaks only in
/// the use case), at most `max` characters.
fn text(value: &str, max: usize, multiline: bool) -> Result<String, ()> {
    let v = value.trim();
    let bad = v.chars().any(|c| {
        mkoba_platform::portal::hides_text(c)
            && !(multiline && (c == '\n' || c == '\r' || c == '\t'))
    });
    if bad || v.chars().count() > max {
        return Err(());
    }
    Ok(v.replace("\r\n", "\n"))
}

/// Every value of a repeated form field (`market=a&market=b`).
fn all_values(body: &[u8], name: &str) -> Vec<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut out: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The form as submitted, cleaned, and what is wrong with it (if anything).
fn check(state: &PortalState, form: &Form, body: &[u8]) -> (Draft, Option<Problem>) {
    let mut d = Draft {
        company: form.get("company").to_owned(),
        contact: form.get("contact").to_owned(),
        website: form.get("website").to_owned(),
        use_case: form.get("use_case").to_owned(),
        markets: all_values(body, "market"),
        products: all_values(body, "product"),
        marked: Vec::new(),
    };
    let problem = (|| {
        let company = text(&d.company, FIELD_MAX, false).map_err(|_| {
            (
                "company",
                "The company name is too long or has control characters.",
            )
        })?;
        let contact = text(&d.contact, FIELD_MAX, false).map_err(|_| {
            (
                "contact",
                "The contact is too long or has control characters.",
            )
        })?;
        let website = text(&d.website, FIELD_MAX, false).map_err(|_| {
            (
                "website",
                "The website is too long or has control characters.",
            )
        })?;
        let use_case = text(&d.use_case, USE_CASE_MAX, true).map_err(|_| {
            (
                "use_case",
                "The use case is too long or has control characters.",
            )
        })?;
        let required = [
            ("company", &company),
            ("contact", &contact),
            ("use_case", &use_case),
        ];
        if let Some((field, _)) = required.iter().find(|(_, v)| v.is_empty()) {
            return Err((*field, "Company, contact and use case are required."));
        }
        let web = website.starts_with("https://") || website.starts_with("http://");
        if !(website.is_empty() || web) {
            return Err(("website", "The website must be an http(s) address."));
        }
        if d.markets.iter().any(|m| !markets(state).any(|x| x == m)) {
            return Err(("market", "Choose markets from the list."));
        }
        if d.products.iter().any(|p| !PRODUCTS.contains(&p.as_str())) {
            return Err(("product", "Choose products from the list."));
        }
        if d.products.is_empty() {
            return Err(("product", "Choose at least one product."));
        }
        let momo = d.products.iter().any(|p| p != MPESA);
        if momo && d.markets.is_empty() {
            return Err(("market", "MoMo products need at least one market."));
        }
        Ok((company, contact, website, use_case))
    })();
    match problem {
        // Markets chosen for M-Pesa alone: those boxes are the ones to clear.
        Ok(_) if !d.markets.is_empty() && d.products.iter().all(|p| p == MPESA) => {
            d.marked = d.markets.clone();
            let sentence = "Markets are for MoMo products: choose one, or clear the markets.";
            (d, Some(("market", sentence.to_owned())))
        }
        Ok((company, contact, website, use_case)) => {
            d.company = company;
            d.contact = contact;
            d.website = website;
            d.use_case = use_case;
            (d, None)
        }
        Err((field, sentence)) => (d, Some((field, sentence.to_owned()))),
    }
}

/// `POST /portal/golive`.
pub(crate) async fn submit(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let (mut d, problem) = check(&state, &form, &body);
    if problem.is_some() {
        return page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            None,
            problem.as_ref(),
            &d,
        )
        .await;
    }
    let developer = session.developer.clone();
    let report = match state
        .platform
        .portal()
        .go_live_report(developer.id, super::reports::report_max(&state))
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    // Seed 004: details and reports go to the operator "once the development is complete
    // and testing was successful"; a report without one successful payment is not that,
    // nor is one without a successful payment of each product asked for.
    if let Some(problem) = untested(&report, &mut d) {
        return page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            None,
            Some(&problem),
            &d,
        )
        .await;
    }
    let report_json = match serde_json::to_string(&report) {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "the go-live report cannot be written as JSON");
            return internal_error();
        }
    };
    let request = NewGoLive {
        developer_id: developer.id,
        company: d.company.clone(),
        contact: d.contact.clone(),
        website: d.website.clone(),
        use_case: d.use_case.clone(),
        markets: d.markets.clone(),
        products: d.products.clone(),
        report_json,
    };
    let review = state.config.link("/portal/operator");
    let mine = state.config.link("/portal/golive");
    let summary = format!(
        "Company: {}\nMarkets: {}\nProducts: {}\nSandbox transactions: {} ({} failed)",
        d.company,
        if d.markets.is_empty() {
            "—".to_owned()
        } else {
            d.markets.join(", ")
        },
        d.products.join(", "),
        report.total(),
        report.failed_total()
    );
    let mail = Box::new(move |operators: &[(i64, String)]| {
        let mut out = vec![NewMail {
            developer_id: developer.id,
            channel: MailChannel::Email,
            kind: MailKind::GoLive,
            recipient: developer.email.clone(),
            subject: "We received your go-live request".to_owned(),
            body: format!(
                "Hello {},\n\nYour request to go live was sent to the operator's staff:\n\n{summary}\n\nThey verify your details and transaction report, then approve or reject it; you will be told by mail. Follow it here:\n\n{mine}\n",
                developer.name
            ),
        }];
        for (id, email) in operators {
            out.push(NewMail {
                developer_id: *id,
                channel: MailChannel::Email,
                kind: MailKind::GoLive,
                recipient: email.clone(),
                subject: format!("Go-live request from {}", developer.email),
                body: format!(
                    "A go-live request waits for review.\n\nDeveloper: {} <{}>\n{summary}\n\nReview it here:\n\n{review}\n",
                    developer.name, developer.email
                ),
            });
        }
        out
    });
    match state.platform.portal().request_go_live(request, mail).await {
        Ok(()) => {
            tracing::info!(
                developer.id = session.developer.id,
                "go-live request submitted"
            );
            see_other("/portal/golive?done=sent")
        }
        Err(GoLiveError::AlreadyPending) => {
            page(
                &state,
                &session,
                StatusCode::CONFLICT,
                None,
                Some(&(
                    "",
                    "A request of yours already waits for review.".to_owned(),
                )),
                &d,
            )
            .await
        }
        Err(GoLiveError::NotActive) => {
            page(
                &state,
                &session,
                StatusCode::FORBIDDEN,
                None,
                Some(&("", "Only an active account can ask to go live.".to_owned())),
                &d,
            )
            .await
        }
        Err(e) => crate::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_refuses_control_characters_and_long_values() {
        assert_eq!(text("  Acme  ", 10, false), Ok("Acme".to_owned()));
        assert!(text("a\u{0}b", 10, false).is_err());
        assert!(text("a\nb", 10, false).is_err());
        assert_eq!(text("a\r\nb", 10, true), Ok("a\nb".to_owned()));
        assert!(text(&"x".repeat(11), 10, false).is_err());
    }

    #[test]
    fn repeated_fields_are_all_read_once() {
        let body = b"market=mtnghana&product=collection&market=mtnuganda&market=mtnghana";
        assert_eq!(all_values(body, "market"), ["mtnghana", "mtnuganda"]);
        assert_eq!(all_values(body, "product"), ["collection"]);
    }
}
