//! Transactions: a filterable, paginated table of the developer's payments (and its CSV
//! export) and a page per payment with its timeline (request, acceptance, ledger postings
//! between named accounts, settlement, every callback attempt numbered in order) and a
//! button to send its callback again.
//!
//! M-Pesa payments are shown by the id their clients see on the wire: the conversation id,
//! 32 lower-case hex characters (the platform keeps it as a UUID). The search accepts a
//! reference in either form.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_ledger::Money;
use mkoba_platform::Internal;
use mkoba_platform::model::{Payment, PaymentKind, PaymentStatus, Product};
use mkoba_platform::portal::{
    Environments, PageKey, PaymentFilter, PaymentPage, ResendError, SEARCH_MAX,
};
use mkoba_platform::widget::is_widget_payer;
use uuid::Uuid;

use crate::html::Html;
use crate::pages::apiusers::not_found_page;
use crate::{
    Form, PortalState, Session, csrf_field, document, form_encode, parse_day, query_params,
    see_other, w, when,
};

const PAGE_SIZE: u32 = 25;
const DAY_MS: i64 = 86_400_000;
/// The most rows one export holds: the newest this many of those its filters match.
pub(crate) const EXPORT_MAX: u32 = 100_000;
/// Rows an export reads at a time (about 220 KB of CSV): the most one read of the store
/// returns.
pub(crate) const EXPORT_RUN: u32 = mkoba_platform::portal::PAGE_MAX;

pub(crate) fn status_badge(h: &mut Html, status: PaymentStatus) {
    let class = match status {
        PaymentStatus::Successful => "ok",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Pending => "pending",
    };
    w!(*h, "<span class=\"badge " {class} "\">" {status.as_str()} "</span>");
}

// ---------------------------------------------------------------------------------------
// Money, ids and CSV, shared with the reports.

/// The amount with exactly the currency's minor-unit digits and no grouping: `1234.50`
/// (EUR), `1500` (UGX), `0.125` (KWD). For CSV files.
pub(crate) fn decimal(m: Money) -> String {
    let exponent = m.currency().exponent();
    let sign = if m.minor() < 0 { "-" } else { "" };
    let abs = m.minor().unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

/// Digits grouped by three with commas: `1234567` → `1,234,567`.
pub(crate) fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number of minor units as the currency writes it, grouped: `1,234.50` (EUR),
/// `1,500` (UGX).
pub(crate) fn figure(m: Money) -> String {
    let d = decimal(m);
    let (sign, d) = match d.strip_prefix('-') {
        Some(rest) => ("-", rest.to_owned()),
        None => ("", d),
    };
    match d.split_once('.') {
        Some((int, frac)) => format!("{sign}{}.{frac}", group(int)),
        None => format!("{sign}{}", group(&d)),
    }
}

/// `1,234.50 EUR`, `1,500 UGX`: every amount the portal's tables show.
pub(crate) fn money(m: Money) -> String {
    format!("{} {}", figure(m), m.currency().as_str())
}

/// The id a client sees on the wire: the M-Pesa conversation id (32 hex characters) for
/// M-Pesa payments, the MoMo reference id (hyphenated UUID) otherwise.
pub(crate) fn wire_id(p: &Payment) -> String {
    shown(p, p.reference_id)
}

/// A payment id in the form `p`'s own is shown ([`wire_id`]).
fn shown(p: &Payment, id: Uuid) -> String {
    if p.kind.is_mpesa() || p.product == Product::Mpesa {
        id.simple().to_string()
    } else {
        id.to_string()
    }
}

/// A CSV document (RFC 4180: CRLF line ends, fields quoted when they need it). A field
/// that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first) is prefixed with `'`.
#[derive(Debug, Default)]
pub(crate) struct Csv(String);

impl Csv {
    pub(crate) fn new() -> Csv {
        Csv(String::new())
    }

    pub(crate) fn row<S: AsRef<str>>(&mut self, fields: &[S]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let f = f.as_ref();
            let guarded;
            let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_number(f) {
                guarded = format!("'{f}");
                guarded.as_str()
            } else {
                f
            };
            if f.contains([',', '"', '\n', '\r']) {
                self.0.push('"');
                self.0.push_str(&f.replace('"', "\"\""));
                self.0.push('"');
            } else {
                self.0.push_str(f);
            }
        }
        self.0.push_str("\r\n");
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a download named `filename`.
    pub(crate) fn into_response(self, filename: &str) -> Response {
        (download(filename), self.0).into_response()
    }
}

/// The headers of a CSV download named `filename`.
fn download(filename: &str) -> [(header::HeaderName, String); 2] {
    [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ),
    ]
}

fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// `2026-11-22T14:03:07.123Z`: times in CSV files.
pub(crate) fn iso(ms: i64) -> String {
    let precise = crate::when_precise(ms);
    match precise.strip_suffix(" UTC") {
        Some(t) => format!("{}Z", t.replacen(' ', "T", 1)),
        None => precise,
    }
}

/// A plain-text error for a refused export.
pub(crate) fn export_refused(errors: &[String]) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::Extension(crate::OwnText),
        format!("{}\n", errors.join("\n")),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Filters.

/// The filters of the transactions page (and the reports page's API and API-user filters),
/// read from the query string, with what was wrong with them.
#[derive(Debug)]
pub(crate) struct Filters {
    pub(crate) filter: PaymentFilter,
    /// The reference as typed when it is a UUID in another form than the stored one (the
    /// search falls back to it: it may be an external id).
    pub(crate) alt_reference: Option<String>,
    pub(crate) errors: Vec<String>,
    /// Fields with a problem (marked `aria-invalid`).
    pub(crate) invalid: Vec<&'static str>,
    /// For a reversed range, the query with the dates swapped.
    pub(crate) swapped: Option<String>,
}

/// The query parameters of the pager: the page's number, and the position an "Older" link
/// goes on from ([`PaymentFilter::after`]) or a "Newer" one goes back to
/// ([`PaymentFilter::before`]). A link that changes the filters drops them.
const PAGER_PARAMS: [&str; 3] = ["page", "after", "before"];

/// The query parameters that filter, with how the summary names them.
const FILTER_PARAMS: [(&str, &str); 10] = [
    ("product", "API"),
    ("kind", "Operation"),
    ("env", "Environment"),
    ("status", "Status"),
    ("party", "Party"),
    ("ref", "Reference"),
    ("api_user", "API user"),
    ("from", "From"),
    ("to", "To"),
    // Where a search was continued from ("Search the older ones").
    ("older", "Older than"),
];

/// Every product a payment can have, as the filters list them.
pub(crate) fn products() -> Vec<Product> {
    let mut all: Vec<Product> = Product::REPORTED.to_vec();
    all.insert(1, Product::CollectionWidget);
    all
}

pub(crate) fn parse_filters(developer_id: i64, q: &HashMap<String, String>) -> Filters {
    let mut errors = Vec::new();
    let mut invalid = Vec::new();
    let page: u32 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    let mut choice = |name: &'static str, label: &str, ok: bool| {
        if !ok {
            errors.push(format!(
                "{label} \u{201c}{}\u{201d} is not one of the choices.",
                q.get(name).map_or("", |s| s.as_str())
            ));
            invalid.push(name);
        }
    };
    let product = q.get("product").and_then(|p| Product::parse(p));
    choice(
        "product",
        "API",
        q.get("product").is_none() || product.is_some(),
    );
    let kind = q.get("kind").and_then(|k| PaymentKind::parse(k));
    choice(
        "kind",
        "Operation",
        q.get("kind").is_none() || kind.is_some(),
    );
    let environment = q.get("env").and_then(|e| Environments::parse(e));
    choice(
        "env",
        "Environment",
        q.get("env").is_none() || environment.is_some(),
    );
    let status = q.get("status").and_then(|s| PaymentStatus::parse(s));
    choice(
        "status",
        "Status",
        q.get("status").is_none() || status.is_some(),
    );
    let api_user = q.get("api_user").and_then(|u| Uuid::parse_str(u).ok());
    if q.get("api_user").is_some() && api_user.is_none() {
        errors.push(format!(
            "API user \u{201c}{}\u{201d} is not an API user id (a UUID, as the API users page lists them).",
            q["api_user"]
        ));
        invalid.push("api_user");
    }
    let mut day = |name: &'static str, label: &str| -> Option<i64> {
        let raw = q.get(name)?;
        let parsed = parse_day(raw);
        if parsed.is_none() {
            errors.push(format!(
                "{label} \u{201c}{raw}\u{201d} is not a date: use YYYY-MM-DD, e.g. 2026-11-22."
            ));
            invalid.push(name);
        }
        parsed
    };
    let from_ms = day("from", "From");
    let to_day = day("to", "To");
    let mut swapped = None;
    if let (Some(f), Some(t)) = (from_ms, to_day)
        && f > t
    {
        errors.push(format!(
            "The date range is reversed: From ({}) is after To ({}).",
            q["from"], q["to"]
        ));
        invalid.extend(["from", "to"]);
        let mut swap: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| !PAGER_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "from" => q["to"].clone(),
                    "to" => q["from"].clone(),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        swap.sort();
        swapped = Some(query_string(&swap));
    }
    // Where an "Older" link goes on from, or a "Newer" link goes back to; another value is
    // not a link the portal made.
    let mut position = |name: &str| {
        q.get(name).and_then(|raw| {
            let key = PageKey::parse(raw);
            if key.is_none() {
                errors.push(format!(
                    "The page link's position \u{201c}{raw}\u{201d} is not one the portal made: start again from the newest (Clear, or Filter)."
                ));
            }
            key
        })
    };
    let after = position("after");
    let before = position("before");
    let older_than = position("older");
    let (reference, alt_reference) = match q.get("ref") {
        Some(r) => match Uuid::parse_str(r) {
            Ok(u) if u.to_string() != *r => (Some(u.to_string()), Some(r.clone())),
            _ => (Some(r.clone()), None),
        },
        None => (None, None),
    };
    Filters {
        filter: PaymentFilter {
            developer_id,
            product,
            kind,
            status,
            party: q.get("party").cloned(),
            reference,
            api_user,
            from_ms,
            to_ms: to_day.map(|d| d + DAY_MS),
            environment,
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
            after,
            before,
            until: None,
            older_than,
        },
        alt_reference,
        errors,
        invalid,
        swapped,
    }
}

/// Refuses an API user filter that names no API user of the developer's (as a choice that
/// is not one of the list's: the list shows only the newest, so it is asked by id).
pub(crate) async fn check_api_user(
    state: &PortalState,
    developer_id: i64,
    f: &mut Filters,
) -> Result<(), Internal> {
    let Some(id) = f.filter.api_user else {
        return Ok(());
    };
    let user = state.platform.credentials().api_user(&id).await?;
    if user.is_none_or(|u| u.developer_id != developer_id) {
        f.errors.push(format!(
            "API user \u{201c}{id}\u{201d} is not one of your API users."
        ));
        f.invalid.push("api_user");
    }
    Ok(())
}

/// `a=1&b=2` with form encoding.
pub(crate) fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The query's parameters but `drop`, sorted, for links that keep the other filters.
pub(crate) fn params_without(q: &HashMap<String, String>, drop: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort();
    v
}

/// A path with a query string (none when empty).
pub(crate) fn with_query(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query_string(pairs))
    }
}

/// Most payments a search reads ([`SEARCH_MAX`] unless the configuration says).
fn search_max(state: &PortalState) -> u32 {
    state.config.search_max.unwrap_or(SEARCH_MAX).max(1)
}

/// The payment a reference names by its reference id (either form) or M-Pesa transaction
/// id, found through their indexes however old, when it is the developer's and passes the
/// other filters.
async fn named_by_reference(state: &PortalState, f: &Filters) -> Result<Option<Payment>, Internal> {
    let filter = &f.filter;
    let Some(reference) = &filter.reference else {
        return Ok(None);
    };
    let dev = filter.developer_id;
    let found = match Uuid::parse_str(reference) {
        Ok(id) => state.platform.portal().owned_payment(dev, &id).await?,
        Err(_) => match state
            .platform
            .payments()
            .by_transaction_id(reference)
            .await?
        {
            Some(p) => {
                let owner = state.platform.credentials().api_user(&p.api_user).await?;
                owner.filter(|u| u.developer_id == dev).map(|_| p)
            }
            None => None,
        },
    };
    Ok(found.filter(|p| {
        filter.product.is_none_or(|x| match x {
            // As `WIDGET_PAYMENTS_SQL`.
            Product::CollectionWidget => {
                p.product == Product::Collection
                    && p.kind == PaymentKind::Invoice
                    && is_widget_payer(&p.party)
            }
            x => x == p.product,
        }) && filter.kind.is_none_or(|k| k == p.kind)
            && filter.environment.is_none_or(|e| e.holds(&p.environment))
            && filter.status.is_none_or(|s| s == p.status)
            && filter
                .party
                .as_ref()
                .is_none_or(|x| p.party.id.contains(x.as_str()))
            && filter.api_user.is_none_or(|u| u == p.api_user)
            && filter.from_ms.is_none_or(|t| p.created_at_ms >= t)
            && filter.to_ms.is_none_or(|t| p.created_at_ms < t)
    }))
}

/// One page of payments: a payment a reference names is found through its index; any other
/// search reads the newest [`search_max`] payments of its range (`filter.until` says where
/// it stopped, when there were more); the reference tried in its stored form, then as
/// typed; a page past the end is clamped to the last one. Returns the filter that was used.
async fn fetch(state: &PortalState, f: &Filters) -> Result<(PaymentPage, PaymentFilter), Internal> {
    let mut filter = f.filter.clone();
    filter.until = state
        .platform
        .portal()
        .search_window(&filter, search_max(state))
        .await?;
    let mut page = state.platform.portal().payments_page(&filter).await?;
    if page.total == 0
        && let Some(alt) = &f.alt_reference
    {
        filter.reference = Some(alt.clone());
        page = state.platform.portal().payments_page(&filter).await?;
    }
    // Nothing in the window: the payment the reference names, however old.
    if page.total == 0
        && let Some(p) = named_by_reference(state, f).await?
    {
        filter.until = None;
        let page = PaymentPage {
            payments: vec![p],
            total: 1,
            next: None,
            first: None,
        };
        return Ok((page, filter));
    }
    // Back past the newest (payments made since count from the top): the first page.
    if filter.before.is_some() && page.payments.len() < filter.limit as usize {
        filter.before = None;
        filter.offset = 0;
        page = state.platform.portal().payments_page(&filter).await?;
    }
    if filter.after.is_none()
        && filter.before.is_none()
        && page.total > 0
        && u64::from(filter.offset) >= page.total
    {
        let last = page.total.div_ceil(u64::from(PAGE_SIZE)).max(1) - 1;
        filter.offset = u32::try_from(last * u64::from(PAGE_SIZE)).unwrap_or(0);
        page = state.platform.portal().payments_page(&filter).await?;
    }
    Ok((page, filter))
}

/// How long a later run of an export waits, at most, while the portal's read queue is full:
/// the answer has started, so it can no longer be the busy page, and a cut download is
/// worse than a slower one (it was cut at once before: `curl` exit 18 after 62,000 rows,
/// with reports filling a queue of one).
const RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A later run of an export ([`payments_after`] from `filter.after`), tried again every
/// 20 ms for up to [`RUN_WAIT`] while the read queue is full.
///
/// [`payments_after`]: mkoba_platform::portal::PortalReader::payments_after
async fn next_run(
    state: &PortalState,
    filter: &PaymentFilter,
) -> Result<(Vec<Payment>, Option<PageKey>), Internal> {
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
    let mut waited = std::time::Duration::ZERO;
    loop {
        match state.platform.portal().payments_after(filter).await {
            Err(Internal::Busy) if waited < RUN_WAIT => {
                tokio::time::sleep(PAUSE).await;
                waited += PAUSE;
            }
            done => return done,
        }
    }
}

/// The most rows an export holds ([`EXPORT_MAX`] unless the configuration says).
fn export_max(state: &PortalState) -> u32 {
    state.config.export_max.unwrap_or(EXPORT_MAX).max(1)
}

/// The transactions CSV export: every payment the filters match, newest first, at most
/// [`EXPORT_MAX`] (the reference fallback as on the page), sent as it is read.
///
/// It is read [`EXPORT_RUN`] payments at a time, each run a read of its own on the portal's
/// pool that starts in the index where the last one stopped ([`payments_after`]), so the
/// server holds one run whatever the export holds, the last run costs what the first does,
/// and other portal reads go on between runs. (Read at once, 100,000 rows of a million
/// payments raised the server's peak memory to 161–174 MiB.) The first run is read before the
/// answer starts, so a failed read is still the error page (or the busy page); a later run
/// waits while the read queue is full ([`next_run`]), and a later failure ends the download
/// without its last chunk, which HTTP clients report as an error, and is logged.
///
/// [`payments_after`]: mkoba_platform::portal::PortalReader::payments_after
async fn csv_export(
    state: PortalState,
    f: &Filters,
    slot: mkoba_platform::throttle::Share<i64>,
) -> Response {
    let most = export_max(&state);
    let run = state.config.export_run.unwrap_or(EXPORT_RUN).clamp(1, most);
    let mut filter = PaymentFilter {
        limit: run,
        offset: 0,
        after: None,
        before: None,
        ..f.filter.clone()
    };
    // The same payments as the page's search: the newest of its range.
    filter.until = match state
        .platform
        .portal()
        .search_window(&filter, search_max(&state))
        .await
    {
        Ok(until) => until,
        Err(e) => return crate::failed(e),
    };
    let mut first = state.platform.portal().payments_after(&filter).await;
    if let (Ok((payments, _)), Some(alt)) = (&first, &f.alt_reference)
        && payments.is_empty()
    {
        filter.reference = Some(alt.clone());
        first = state.platform.portal().payments_after(&filter).await;
    }
    let (payments, next) = match first {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    // Nothing in the window: the payment the reference names, however old, as on the page.
    let payments = if payments.is_empty() {
        match named_by_reference(&state, f).await {
            Ok(named) => named.into_iter().collect(),
            Err(e) => return crate::failed(e),
        }
    } else {
        payments
    };
    let mut head = Csv::new();
    head.row(&CSV_HEADER);
    csv_rows(&mut head, &payments);
    let sent = payments.len() as u32;
    // The slot goes with the body: freed when the download ends, however it ends.
    let rest = futures_util::stream::unfold(
        Some((state, filter, next, sent, slot)),
        move |at| async move {
            let (state, mut filter, Some(key), sent, slot) = at? else {
                return None;
            };
            if sent >= most {
                return None;
            }
            filter.limit = run.min(most - sent);
            filter.after = Some(key);
            match next_run(&state, &filter).await {
                Ok((payments, next)) => {
                    let mut csv = Csv::new();
                    csv_rows(&mut csv, &payments);
                    let sent = sent + payments.len() as u32;
                    Some((
                        Ok(Bytes::from(csv.0)),
                        Some((state, filter, next, sent, slot)),
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, rows = sent, "a CSV export stopped: a read failed");
                    Some((Err(std::io::Error::other("a read failed")), None))
                }
            }
        },
    );
    let head = futures_util::stream::once(std::future::ready(Ok(Bytes::from(head.0))));
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(head, rest));
    (download("mkoba-transactions.csv"), body).into_response()
}

/// The API users a developer can filter by: their MoMo API users, then their M-Pesa
/// application's (when it has payments), as (id, label).
pub(crate) async fn api_user_choices(
    state: &PortalState,
    developer_id: i64,
) -> Result<Vec<(Uuid, String)>, Internal> {
    let mut out: Vec<(Uuid, String)> = state
        .platform
        .portal()
        .api_users_of(developer_id)
        .await?
        .into_iter()
        .map(|u| (u.id, format!("{} ({})", u.id, u.target_environment)))
        .collect();
    // The application's API user holds only M-Pesa payments: asked by it, the store finds
    // its newest in its index (a filter by API read every payment's row: 0.2 to 0.7 s at a
    // million).
    if let Some(app) = state.platform.mpesa().app(developer_id).await? {
        let filter = PaymentFilter {
            developer_id,
            api_user: Some(app.api_user),
            limit: 1,
            ..PaymentFilter::default()
        };
        let (made, _) = state.platform.portal().payments_after(&filter).await?;
        if !made.is_empty() {
            out.push((app.api_user, "M-Pesa application".to_owned()));
        }
    }
    Ok(out)
}

fn select(
    h: &mut Html,
    id: &'static str,
    label: &'static str,
    options: &[(String, String)],
    current: Option<&String>,
    invalid: bool,
) {
    w!(*h, "<div><label for=\"" {id} "\">" {label} "</label><select id=\"" {id} "\" name=\"" {id} "\"");
    if invalid {
        h.raw(" aria-invalid=\"true\" aria-describedby=\"filter-error\"");
    }
    h.raw("><option value=\"\">Any</option>");
    for (value, text) in options {
        if current.is_some_and(|c| c == value) {
            w!(*h, "<option value=\"" {value} "\" selected>" {text} "</option>");
        } else {
            w!(*h, "<option value=\"" {value} "\">" {text} "</option>");
        }
    }
    h.raw("</select></div>");
}

fn plain(options: &[&str]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|o| ((*o).to_owned(), (*o).to_owned()))
        .collect()
}

fn input(
    h: &mut Html,
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    current: Option<&String>,
    invalid: bool,
) {
    let v = current.map_or("", |s| s.as_str());
    w!(*h, "<div><label for=\"" {id} "\">" {label} "</label><input id=\"" {id} "\" name=\"" {id} "\" type=\"" {kind} "\" value=\"" {v} "\"");
    if invalid {
        h.raw(" aria-invalid=\"true\" aria-describedby=\"filter-error\"");
    }
    h.raw("></div>");
}

/// The API, operation, environment and API-user selects (the transactions and reports
/// filters).
pub(crate) fn scope_selects(
    h: &mut Html,
    q: &HashMap<String, String>,
    users: &[(Uuid, String)],
    invalid: &[&str],
) {
    let products: Vec<(String, String)> = products()
        .iter()
        .map(|p| (p.as_str().to_owned(), p.display_name().to_owned()))
        .collect();
    let kinds: Vec<&str> = PaymentKind::ALL.iter().map(|k| k.as_str()).collect();
    select(
        h,
        "product",
        "API",
        &products,
        q.get("product"),
        invalid.contains(&"product"),
    );
    select(
        h,
        "kind",
        "Operation",
        &plain(&kinds),
        q.get("kind"),
        invalid.contains(&"kind"),
    );
    select(
        h,
        "env",
        "Environment",
        &Environments::ALL.map(|e| (e.as_str().to_owned(), e.label().to_owned())),
        q.get("env"),
        invalid.contains(&"env"),
    );
    let mut options: Vec<(String, String)> = users
        .iter()
        .map(|(id, label)| (id.to_string(), label.clone()))
        .collect();
    // A filter from a link (an API user's page) stays visible even when it is not listed.
    if let Some(current) = q.get("api_user")
        && !options.iter().any(|(v, _)| v == current)
    {
        options.push((current.clone(), current.clone()));
    }
    select(
        h,
        "api_user",
        "API user",
        &options,
        q.get("api_user"),
        invalid.contains(&"api_user"),
    );
}

/// The active filters, each with a link that removes it, and one that removes them all.
pub(crate) fn active_filters(
    h: &mut Html,
    path: &'static str,
    q: &HashMap<String, String>,
    users: &[(Uuid, String)],
    applies: &[&str],
    keep: &[&str],
) {
    let active: Vec<(&str, &str, &String)> = FILTER_PARAMS
        .iter()
        .filter(|(k, _)| applies.contains(k))
        .filter_map(|(k, label)| q.get(*k).map(|v| (*k, *label, v)))
        .collect();
    if active.is_empty() {
        return;
    }
    h.raw("<div class=\"active-filters\" data-testid=\"active-filters\"><span class=\"muted\">Filtered by</span><ul>");
    for (k, label, v) in &active {
        let shown = if *k == "api_user" {
            users
                .iter()
                .find(|(id, _)| id.to_string() == **v)
                .map_or((*v).clone(), |(_, l)| l.clone())
        } else if *k == "older" {
            PageKey::parse(v).map_or((*v).clone(), |key| iso(key.created_at_ms))
        } else {
            (*v).clone()
        };
        let mut drop = vec![*k];
        drop.extend(PAGER_PARAMS);
        let href = with_query(path, &params_without(q, &drop));
        w!(*h, "<li><span>" {label} ": <strong>" {shown} "</strong></span> <a href=\"" {href} "\" aria-label=\"Remove the filter " {label} "\" title=\"Remove this filter\">×</a></li>");
    }
    let kept: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    w!(*h, "</ul><a class=\"clear\" href=\"" {with_query(path, &kept)} "\">Clear all filters</a></div>");
}

/// A failure's reason as its client saw it: an M-Pesa payment's `INS-*` code (its answer's
/// or result's) before the platform's name of it.
fn reason_text(p: &Payment, reason: mkoba_platform::reason::FailureReason) -> String {
    if !p.kind.is_mpesa() {
        return reason.to_string();
    }
    format!("{} {reason}", reason.mpesa_code(via_v1x(p)))
}

/// Whether an M-Pesa payment came through Mozambique's v1x gateway (its details say so).
fn via_v1x(p: &Payment) -> bool {
    p.details.as_deref().is_some_and(|d| {
        serde_json::from_str::<serde_json::Value>(d).is_ok_and(|v| v["gateway"] == "v1x")
    })
}

/// The rows of a payments table.
pub(crate) fn payment_rows(h: &mut Html, payments: &[Payment]) {
    // Each cell says what it is (`data-label`): on a narrow screen the rows stack, without
    // the header.
    h.raw("<div class=\"table-wrap\"><table class=\"tx\"><thead><tr><th scope=\"col\">Created</th><th scope=\"col\">Operation</th><th scope=\"col\">Environment</th><th scope=\"col\">Party</th><th scope=\"col\" class=\"num\">Amount</th><th scope=\"col\">Status</th><th scope=\"col\">Reference or conversation id</th></tr></thead><tbody>");
    for p in payments {
        w!(*h, "<tr><td data-label=\"Created\">" {when(p.created_at_ms)} "</td><td data-label=\"Operation\">" {p.product.as_str()} " · " {p.kind.as_str()});
        if is_widget_payer(&p.party) {
            h.raw(" <span class=\"badge\" title=\"Collection Widget\">widget</span>");
        }
        w!(*h, "</td><td data-label=\"Environment\" data-testid=\"environment\">" {p.environment} "</td><td data-label=\"Party\">" {p.party.id} "</td><td data-label=\"Amount\" class=\"num\">" {money(p.amount)} "</td><td data-label=\"Status\">");
        status_badge(h, p.status);
        if let (PaymentStatus::Failed, Some(r)) = (p.status, p.reason) {
            w!(*h, " <span class=\"reason\">" {reason_text(p, r)} "</span>");
        }
        let id = wire_id(p);
        w!(*h, "</td><td data-label=\"Id\"><a class=\"mono\" href=\"/portal/transactions/" {id} "\">" {id} "</a></td></tr>");
    }
    h.raw("</tbody></table></div>");
}

/// The CSV export's header line.
pub(crate) const CSV_HEADER: [&str; 16] = [
    "created_at",
    "reference_id",
    "api",
    "operation",
    "status",
    "reason",
    "party_type",
    "party",
    "amount",
    "currency",
    "external_id",
    "financial_transaction_id",
    "api_user",
    "environment",
    "short_code",
    "settled_at",
];

/// The export's rows of `payments`.
fn csv_rows(csv: &mut Csv, payments: &[Payment]) {
    for p in payments {
        csv.row(&[
            iso(p.created_at_ms),
            wire_id(p),
            p.product.as_str().to_owned(),
            p.kind.as_str().to_owned(),
            p.status.as_str().to_owned(),
            p.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            p.party.id_type.as_str().to_owned(),
            p.party.id.clone(),
            decimal(p.amount),
            p.amount.currency().as_str().to_owned(),
            p.external_id.clone().unwrap_or_default(),
            p.financial_transaction_id.clone().unwrap_or_default(),
            p.api_user.to_string(),
            p.environment.clone(),
            p.short_code.clone().unwrap_or_default(),
            p.settled_at_ms.map(iso).unwrap_or_default(),
        ]);
    }
}

pub(crate) async fn list(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let mut f = parse_filters(session.developer.id, &q);
    if let Err(e) = check_api_user(&state, session.developer.id, &mut f).await {
        return crate::failed(e);
    }
    let export = match q.get("format").map(String::as_str) {
        None | Some("") => false,
        Some("csv") => true,
        Some(other) => {
            f.errors.push(format!(
                "Format “{}” is not one of the choices (csv).",
                other.chars().take(32).collect::<String>()
            ));
            false
        }
    };
    if export {
        if !f.errors.is_empty() {
            return export_refused(&f.errors);
        }
        let Some(slot) = state.throttle.export_slot(session.developer.id) else {
            return crate::too_many(
                "Exports under way",
                &format!(
                    "You have {} CSV exports under way already: wait for one to finish, then download again.",
                    mkoba_platform::throttle::EXPORTS_PER_DEVELOPER
                ),
                std::time::Duration::from_secs(5),
                ("/portal/transactions", "Back to the transactions"),
            );
        };
        return csv_export(state, &f, slot).await;
    }
    let users = match api_user_choices(&state, session.developer.id).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let q_filters: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "format")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let q = q_filters;
    let mut h = Html::new();
    h.raw("<h1>Transactions</h1><form method=\"get\" action=\"/portal/transactions\" class=\"filters\" aria-label=\"Filter transactions\">");
    scope_selects(&mut h, &q, &users, &f.invalid);
    select(
        &mut h,
        "status",
        "Status",
        &plain(&["PENDING", "SUCCESSFUL", "FAILED"]),
        q.get("status"),
        f.invalid.contains(&"status"),
    );
    input(
        &mut h,
        "party",
        "Party (MSISDN, e-mail…)",
        "search",
        q.get("party"),
        false,
    );
    let v = q.get("ref").map_or("", |s| s.as_str());
    w!(h, "<div><label for=\"ref\">Reference or other id</label><input id=\"ref\" name=\"ref\" type=\"search\" value=\"" {v} "\" placeholder=\"reference, conversation, external or transaction id\" title=\"A MoMo reference id, an M-Pesa conversation id (with or without hyphens), an external or third-party conversation id, or a transaction id\"></div>");
    input(
        &mut h,
        "from",
        "From",
        "date",
        q.get("from"),
        f.invalid.contains(&"from"),
    );
    input(
        &mut h,
        "to",
        "To",
        "date",
        q.get("to"),
        f.invalid.contains(&"to"),
    );
    h.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a href=\"/portal/transactions\">Clear</a></div></form>");
    let every: Vec<&str> = FILTER_PARAMS.iter().map(|(k, _)| *k).collect();
    active_filters(&mut h, "/portal/transactions", &q, &users, &every, &[]);
    if !f.errors.is_empty() {
        h.raw("<div class=\"error\" role=\"alert\" id=\"filter-error\" data-testid=\"filter-error\"><p>These filters cannot be applied, so nothing is listed:</p><ul>");
        for e in &f.errors {
            w!(h, "<li>" {e} "</li>");
        }
        h.raw("</ul>");
        if let Some(s) = &f.swapped {
            w!(h, "<p><a href=\"/portal/transactions?" {s} "\">Swap the dates</a></p>");
        }
        h.raw("</div>");
        return (
            StatusCode::BAD_REQUEST,
            document("Transactions", Some(&session), "transactions", h),
        )
            .into_response();
    }
    let (page, filter) = match fetch(&state, &f).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    // An empty page (nothing matches, or nothing older than a position) is 0–0.
    let (first, last) = match page.payments.len() as u64 {
        0 => (0, 0),
        n => (u64::from(filter.offset) + 1, u64::from(filter.offset) + n),
    };
    let base = params_without(&q, &PAGER_PARAMS);
    w!(h, "<div class=\"summary-row\"><p class=\"muted\" aria-live=\"polite\">" {first} "–" {last} " of " {page.total} " transactions</p>");
    if page.total > 0 {
        let mut csv = base.clone();
        csv.push(("format".to_owned(), "csv".to_owned()));
        w!(h, "<a class=\"download\" href=\"" {with_query("/portal/transactions", &csv)} "\" data-testid=\"csv-transactions\">Download CSV");
        let most = export_max(&state);
        if page.total > u64::from(most) {
            w!(h, " (the newest " {group(&most.to_string())} ")");
        }
        h.raw("</a>");
    }
    h.raw("</div>");
    if let Some(until) = &filter.until {
        // Older ones are searched from where this search stopped.
        let mut older = params_without(&q, &["page", "after", "before", "older"]);
        older.push(("older".to_owned(), until.to_param()));
        w!(h, "<p class=\"notice\" data-testid=\"search-window\">These filters searched " {group(&search_max(&state).to_string())} " payments, the newest of the range" {if filter.older_than.is_some() { " from where the last search stopped" } else { "" }} ", back to " {iso(until.created_at_ms)} ". <a href=\"" {with_query("/portal/transactions", &older)} "\">Search the older ones</a></p>");
    }
    let filtered = FILTER_PARAMS.iter().any(|(k, _)| q.contains_key(*k));
    if page.payments.is_empty() {
        if filter.after.is_some() && page.total > 0 {
            w!(h, "<p data-testid=\"empty\">No older transactions. <a href=\"" {with_query("/portal/transactions", &base)} "\">Back to the newest</a></p>");
        } else if filtered {
            h.raw("<p data-testid=\"empty\">No transactions match these filters. <a href=\"/portal/transactions\">Clear the filters</a> to see all of them, or remove one above.</p>");
        } else {
            h.raw("<p data-testid=\"empty\">No transactions yet. Make a payment through the API with your keys and it appears here.</p>");
        }
    } else {
        payment_rows(&mut h, &page.payments);
    }
    // Pagination links keep the filters. "Older" goes on from this page's last payment, so
    // payments made meanwhile (they are newer) push none of this page onto the next.
    let link = |n: u64, position: Option<(&str, &PageKey)>| {
        let mut p = base.clone();
        p.push(("page".to_owned(), n.to_string()));
        if let Some((name, key)) = position {
            p.push((name.to_owned(), key.to_param()));
        }
        with_query("/portal/transactions", &p)
    };
    let current = u64::from(filter.offset / PAGE_SIZE) + 1;
    let pages = page.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    if pages > 1 {
        h.raw("<nav class=\"pager\" aria-label=\"Pages\">");
        if current > 1 {
            // Back to the first page, the newest as they are now; else to the page before
            // this one's first payment.
            let newer = page
                .first
                .as_ref()
                .filter(|_| current > 2)
                .map(|k| ("before", k));
            w!(h, "<a rel=\"prev\" href=\"" {link(current - 1, newer)} "\">← Newer</a>");
        }
        w!(h, "<span>Page " {current} " of " {pages} "</span>");
        if let Some(key) = page.next.as_ref().filter(|_| current < pages) {
            w!(h, "<a rel=\"next\" href=\"" {link(current + 1, Some(("after", key)))} "\">Older →</a>");
        }
        h.raw("</nav>");
    } else {
        w!(h, "<p class=\"pager\"><span>Page " {current} " of " {pages} "</span></p>");
    }
    document("Transactions", Some(&session), "transactions", h).into_response()
}

// ---------------------------------------------------------------------------------------
// One transaction.

fn event(h: &mut Html, at: Option<i64>, title: &str, detail: Html) {
    let at = at.map(crate::when_precise).unwrap_or_default();
    w!(*h, "<li><span class=\"at\">" {at} "</span><strong class=\"ev\">" {title} "</strong><div>" [detail] "</div></li>");
}

async fn is_mpesa_app(state: &PortalState, p: &Payment) -> bool {
    p.kind.is_mpesa()
        || state
            .platform
            .credentials()
            .api_user(&p.api_user)
            .await
            .ok()
            .flatten()
            .is_some_and(|u| u.target_environment == mkoba_platform::mpesa::APP_ENVIRONMENT)
}

/// Who owns the ledger accounts a payment's transfers move money between, by account id;
/// and, for M-Pesa, by leg (debit, credit) for the short codes the portal cannot look up.
struct AccountNames {
    by_id: HashMap<u64, String>,
    legs: Option<(String, String)>,
}

impl AccountNames {
    async fn of(state: &PortalState, p: &Payment) -> Result<AccountNames, Internal> {
        let currency = p.amount.currency();
        let mut by_id = HashMap::new();
        let wallet = |party: &mkoba_platform::model::Party| {
            format!("the wallet of {} {}", party.id_type.as_str(), party.id)
        };
        if let Some(a) = state
            .platform
            .payments()
            .wallet(&p.party.wallet_key(), currency)
            .await?
        {
            by_id.insert(a.id.0, wallet(&p.party));
        }
        if !p.kind.is_mpesa() {
            if let Some(a) = state
                .platform
                .payments()
                .partner_account(p.api_user, p.product, currency)
                .await?
            {
                by_id.insert(
                    a.id.0,
                    format!(
                        "the partner's {} account of API user {}",
                        p.product.as_str(),
                        p.api_user
                    ),
                );
            }
            return Ok(AccountNames { by_id, legs: None });
        }
        let code = |c: &str| format!("short code {c} of your M-Pesa application");
        let legs_of = |p: &Payment| -> Option<(String, String)> {
            let own = code(p.short_code.as_deref().unwrap_or("?"));
            match p.kind {
                PaymentKind::MpesaC2b | PaymentKind::MpesaDirectDebit => {
                    Some((wallet(&p.party), own))
                }
                PaymentKind::MpesaB2c => Some((own, wallet(&p.party))),
                PaymentKind::MpesaB2b => Some((own, code(&p.party.id))),
                _ => None,
            }
        };
        let legs = if p.kind == PaymentKind::MpesaReversal {
            let original = match p.refund_of {
                Some(o) => state.platform.payments().get(&o).await?,
                None => None,
            };
            if let Some(o) = &original
                && let Some(a) = state
                    .platform
                    .payments()
                    .wallet(&o.party.wallet_key(), currency)
                    .await?
            {
                by_id.insert(a.id.0, wallet(&o.party));
            }
            original.as_ref().and_then(legs_of).map(|(d, c)| (c, d))
        } else {
            legs_of(p)
        };
        Ok(AccountNames { by_id, legs })
    }

    fn name(&self, id: u64, debit: bool) -> String {
        if let Some(n) = self.by_id.get(&id) {
            return n.clone();
        }
        match &self.legs {
            Some((d, _)) if debit => d.clone(),
            Some((_, c)) => c.clone(),
            None => format!("ledger account {id}"),
        }
    }
}

/// Whether an outbox row carries the payment's own result (its callback, first sent or
/// re-sent) rather than the answer to an asynchronous M-Pesa query about it.
fn is_status_callback(p: &Payment, body: &str) -> bool {
    if !p.kind.is_mpesa() {
        return true;
    }
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("input_OriginalConversationID")
                .and_then(|c| c.as_str())
                .map(|c| c == p.reference_id.simple().to_string())
        })
        .unwrap_or(false)
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
    let p = match state
        .platform
        .portal()
        .owned_payment(session.developer.id, &id)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return not_found_page(&session),
        Err(e) => return crate::failed(e),
    };
    let read = async {
        Ok::<_, mkoba_platform::Internal>((
            state.platform.payments().transfers_for(&id).await?,
            state.platform.portal().transfer_times(&id).await?,
            state.platform.payments().callback_attempts(&id).await?,
            state.platform.portal().outbox_of(&id).await?,
            AccountNames::of(&state, &p).await?,
            state.platform.payments().refunds_of(&id).await?,
        ))
    };
    let (transfers, times, attempts, outbox, names, refunds) = match read.await {
        Ok(read) => read,
        Err(e) => return crate::failed(e),
    };
    let mpesa = is_mpesa_app(&state, &p).await;
    let shown_id = wire_id(&p);
    let mut h = Html::new();
    w!(h, "<p class=\"crumbs\"><a href=\"/portal/transactions\">Transactions</a> /</p>"
        "<h1>" {p.product.as_str()} " · " {p.kind.as_str()} " " );
    if is_widget_payer(&p.party) {
        h.raw("<span class=\"badge\" title=\"A Collection Widget payment\">widget</span> ");
    }
    status_badge(&mut h, p.status);
    w!(h, "</h1>" [super::notice(q.get("done"))] "<dl class=\"facts\">");
    if p.kind.is_mpesa() {
        w!(h, "<dt>Conversation id</dt><dd class=\"mono\" data-testid=\"wire-id\">" {shown_id} "</dd>");
    } else {
        w!(h, "<dt>Reference id</dt><dd class=\"mono\" data-testid=\"wire-id\">" {shown_id} "</dd>");
    }
    w!(h, "<dt>Amount</dt><dd>" {money(p.amount)} "</dd>"
        "<dt>Party</dt><dd>" {p.party.id_type.as_str()} " " {p.party.id} "</dd>");
    if mpesa {
        w!(h, "<dt>Application</dt><dd><a href=\"/portal/mpesa\">Your M-Pesa application</a> (" {p.environment} ")</dd>");
    } else {
        w!(h, "<dt>API user</dt><dd><a class=\"mono\" href=\"/portal/apiusers/" {p.api_user} "\">" {p.api_user} "</a> (" {p.environment} ")</dd>");
    }
    if let Some(c) = &p.short_code {
        w!(h, "<dt>Short code</dt><dd>" {c} "</dd>");
    }
    if let Some(c) = state.platform.clocks().of(&p.api_user) {
        w!(h, "<dt>Test clock</dt><dd data-testid=\"test-clock\"><a href=\"/portal/clocks\">" {if c.name.is_empty() { "a test clock" } else { &c.name }} "</a>: its times are the clock's (now " {crate::when(c.now_ms)} ")</dd>");
    }
    let v1x = via_v1x(&p);
    if let Some(e) = &p.external_id {
        let label = match (p.kind.is_mpesa(), v1x) {
            (true, true) => "Third-party reference",
            (true, false) => "Third-party conversation id",
            _ => "External id",
        };
        w!(h, "<dt>" {label} "</dt><dd class=\"mono\">" {e} "</dd>");
    }
    if let Some(f) = &p.financial_transaction_id {
        let label = if p.kind.is_mpesa() {
            "Transaction id"
        } else {
            "Financial transaction id"
        };
        w!(h, "<dt>" {label} "</dt><dd class=\"mono\">" {f} "</dd>");
    }
    if let Some(o) = p.refund_of {
        let label = if p.kind.is_mpesa() {
            "Reverses"
        } else {
            "Refunds"
        };
        let o = shown(&p, o);
        w!(h, "<dt>" {label} "</dt><dd><a class=\"mono\" href=\"/portal/transactions/" {o} "\">" {o} "</a></dd>");
    }
    // The other way: what reversed or refunded this one, each with its amount and outcome.
    if !refunds.is_empty() {
        let label = if p.kind.is_mpesa() {
            "Reversed by"
        } else {
            "Refunded by"
        };
        w!(h, "<dt>" {label} "</dt><dd><ul class=\"plain\" data-testid=\"refunds\">");
        for r in &refunds {
            let id = shown(r, r.reference_id);
            w!(h, "<li><a class=\"mono\" href=\"/portal/transactions/" {id} "\">" {id} "</a> " {money(r.amount)} " · ");
            status_badge(&mut h, r.status);
            h.raw("</li>");
        }
        if refunds.len() as u32 >= mkoba_platform::store::REFUNDS_SHOWN {
            w!(h, "<li class=\"muted\">The first " {mkoba_platform::store::REFUNDS_SHOWN} " are shown.</li>");
        }
        h.raw("</ul></dd>");
    }
    let (message, note) = if p.kind.is_mpesa() {
        ("Description", "Transaction reference")
    } else {
        ("Payer message", "Payee note")
    };
    if let Some(m) = &p.payer_message {
        w!(h, "<dt>" {message} "</dt><dd>" {m} "</dd>");
    }
    if let Some(n) = &p.payee_note {
        w!(h, "<dt>" {note} "</dt><dd>" {n} "</dd>");
    }
    if let Some(u) = &p.callback_url {
        let label = if mpesa { "Result URL" } else { "Callback URL" };
        let refused = p
            .kind
            .is_mpesa()
            .then(|| state.mpesa_result_url_refused(u))
            .flatten();
        let u = mkoba_platform::model::shown_url(u);
        w!(h, "<dt>" {label} "</dt><dd class=\"mono\">" {u} "</dd>");
        if let Some(why) = refused {
            w!(h, "<dd class=\"notice warn\" data-testid=\"result-url-refused\">No result is sent to it: " {why} " It was saved under other rules than this server has now; change it on the <a href=\"/portal/mpesa\">M-Pesa page</a>.</dd>");
        }
    }
    h.raw("</dl><h2>Timeline</h2><ol class=\"timeline\" data-testid=\"timeline\">");
    let mut d = Html::new();
    w!(d, "<code>" {p.kind.as_str()} "</code> for " {money(p.amount)} " with " {p.party.id} ", validated and committed to disk.");
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
    } else if mkoba_platform::widget::is_widget_payer(&p.party) {
        // The Collection Widget's page-side endpoint creates its invoices.
        d.raw("The widget's endpoint answered <code>201 Created</code> with the invoice once it was durable; its status was <code>PENDING</code>.");
        event(&mut h, Some(p.created_at_ms), "201 Created", d);
    } else {
        d.raw("The API answered <code>202 Accepted</code> once the payment was durable; its status was <code>PENDING</code>.");
        event(&mut h, Some(p.created_at_ms), "202 Accepted", d);
    }
    // Only a payment settled with its acceptance had its transfer written once, posted; any
    // other was reserved in one commit and posted or released in a later one, though both
    // may fall in the same millisecond (and on a frozen test clock always do).
    let in_one_commit =
        p.settles_with_acceptance() && state.platform.clocks().of(&p.api_user).is_none();
    for (t, (_, created, updated)) in transfers.iter().zip(times.iter()) {
        let mut d = Html::new();
        let amount = money(Money::from_minor(t.amount, t.currency));
        let from = names.name(t.debit.0, true);
        let to = names.name(t.credit.0, false);
        let pending = t.state.as_str() == "pending";
        let two_phase = pending || updated != created || !in_one_commit;
        if two_phase {
            w!(d, "Transfer #" {t.id.0} " reserves " {amount} " from " {from} " for " {to} " (two-phase: pending).");
            event(&mut h, Some(*created), "Ledger: funds reserved", d);
        } else {
            w!(d, "Transfer #" {t.id.0} " moves " {amount} " from " {from} " to " {to} ": <code>" {t.state.as_str()} "</code>.");
            event(&mut h, Some(*created), "Ledger: posting", d);
        }
        if two_phase && !pending {
            let mut d = Html::new();
            let what = if t.state.as_str() == "posted" {
                "the money moved"
            } else {
                "the reservation was released"
            };
            w!(d, "Transfer #" {t.id.0} " is now <code>" {t.state.as_str()} "</code> (" {what} ").");
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
            if let Some(r) = p.reason {
                w!(d, ", reason <code>" {reason_text(&p, r)} "</code>");
            }
            if let Some(f) = &p.financial_transaction_id {
                let label = if p.kind.is_mpesa() {
                    ", transaction id "
                } else {
                    ", financial transaction id "
                };
                w!(d, {label} {f});
            }
            d.raw(".");
            event(&mut h, at, "Settlement decision", d);
        }
    }
    // The payment's own callbacks: the first outbox row is the one settlement queued, every
    // later one a manual re-send. Attempts are numbered in the order they were made.
    let mut own: Vec<i64> = outbox
        .iter()
        .filter(|o| is_status_callback(&p, &o.body))
        .map(|o| o.id)
        .collect();
    own.sort_unstable();
    let resend_no = |outbox_id: i64| own.iter().position(|o| *o == outbox_id);
    let mut ordered: Vec<_> = attempts.iter().collect();
    ordered.sort_by_key(|a| (a.at_ms, a.outbox_id, a.attempt));
    let (mut n_callback, mut n_query) = (0u32, 0u32);
    for a in ordered {
        let mut d = Html::new();
        let url = mkoba_platform::model::shown_url(&a.url);
        w!(d, "<span class=\"call\"><code>" {a.method.as_str()} " " {url} "</code> → ");
        match (a.status_code, &a.error) {
            (Some(code), _) => w!(d, "<b>" {code} "</b>"),
            (None, Some(e)) => w!(d, "<b>no answer</b> (" {e} ")"),
            (None, None) => w!(d, "<b>no answer</b>"),
        }
        w!(d, " in " {a.latency_ms} " ms</span>");
        // An answer that refused the callback: the start of what the receiver said.
        if let (Some(_), Some(answer)) = (a.status_code, &a.error) {
            w!(d, "<details open><summary>Its answer</summary><pre>" {answer} "</pre></details>");
        }
        if let Some(r) = a.retry_at_ms {
            w!(d, " <span class=\"hint\">Next try at " {when(r)} ".</span>");
        }
        if let Some(o) = outbox.iter().find(|o| o.id == a.outbox_id) {
            w!(d, "<details><summary>Body</summary><pre>" {o.body} "</pre></details>");
        }
        let title = match resend_no(a.outbox_id) {
            Some(k) => {
                n_callback += 1;
                let mut t = format!("Callback attempt {n_callback}");
                if k > 0 {
                    t.push_str(&format!(" · manual re-send {k}"));
                }
                if a.attempt > 1 {
                    t.push_str(&format!(" (retry {})", a.attempt - 1));
                }
                t
            }
            None => {
                n_query += 1;
                format!("Query result sent ({n_query})")
            }
        };
        event(&mut h, Some(a.at_ms), &title, d);
    }
    for o in outbox
        .iter()
        .filter(|o| o.state == "pending" && o.attempts == 0)
    {
        let mut d = Html::new();
        let url = mkoba_platform::model::shown_url(&o.url);
        w!(d, "<span class=\"call\"><code>" {o.method} " " {url} "</code> is queued.</span><details><summary>Body</summary><pre>" {o.body} "</pre></details>");
        let title = match resend_no(o.id) {
            Some(0) => "Callback queued".to_owned(),
            Some(k) => format!("Manual re-send {k} queued"),
            None => "Query result queued".to_owned(),
        };
        event(&mut h, None, &title, d);
    }
    h.raw("</ol>");
    // A callback URL of its own, or one its last callback went to (a cancel's).
    if (p.callback_url.is_some() || !own.is_empty()) && p.status.is_final() {
        let what = if mpesa { "result" } else { "callback" };
        w!(h, "<form method=\"post\" action=\"/portal/transactions/" {shown_id} "/resend\">" [csrf_field(&session)]
            "<button type=\"submit\">Re-send " {what} "</button> <span class=\"hint\">Sends the current status body to the " {what} " URL again.</span></form>");
    }
    if p.kind.is_mpesa() {
        let said = mkoba_platform::mpesa::status_text(&p, via_v1x(&p));
        w!(h, "<p class=\"hint\" data-testid=\"mpesa-status\">Clients query it with <code>queryTransactionStatus</code> and <code>input_QueryReference</code> " {shown_id} " (or the transaction id); they get <code>output_ResponseTransactionStatus</code> <code>" {said} "</code> (in synchronous mode; with a result URL, the status comes in the result).</p>");
    } else {
        w!(h, "<p class=\"hint\">Partners poll with <code>GET /" {p.product.as_str()} "/…/" {p.reference_id} "</code>; the status above is what they get.</p>");
    }
    // Named by its id: tabs and history entries of several transactions tell them apart.
    let title = format!("Transaction {shown_id}");
    document(&title, Some(&session), "transactions", h).into_response()
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
    let p = match state
        .platform
        .portal()
        .owned_payment(session.developer.id, &id)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return not_found_page(&session),
        Err(e) => return crate::failed(e),
    };
    let back = format!("/portal/transactions/{}", wire_id(&p));
    // Again where its last callback went, not where an M-Pesa query's result did.
    let last = match state.platform.portal().outbox_of(&id).await {
        Ok(rows) => rows.into_iter().rfind(|o| is_status_callback(&p, &o.body)),
        Err(e) => return crate::failed(e),
    };
    // Not to an M-Pesa result URL the rules of now refuse (saved under others).
    let target = last
        .as_ref()
        .map(|o| o.url.as_str())
        .or(p.callback_url.as_deref());
    if p.kind.is_mpesa()
        && let Some(url) = target
        && let Some(why) = state.mpesa_result_url_refused(url)
    {
        let mut h = Html::new();
        w!(h, "<h1>Not re-sent</h1><p class=\"error\" role=\"alert\">No result is sent to " {mkoba_platform::model::shown_url(url)} ": " {why} " It was saved under other rules than this server has now; change it on the <a href=\"/portal/mpesa\">M-Pesa page</a>.</p>"
            "<p><a href=\"" {back} "\">Back to the transaction</a></p>");
        return (
            StatusCode::BAD_REQUEST,
            document("Not re-sent", Some(&session), "transactions", h),
        )
            .into_response();
    }
    // An M-Pesa result goes again as it was sent: the result of the request that made the
    // payment, which a later change does not rewrite (a mandate made and then cancelled
    // was re-sent as a failed creation, `INS-6`, built from its status now).
    if let Some(o) = last
        .as_ref()
        .filter(|_| p.kind.is_mpesa() && p.status.is_final())
    {
        return match state
            .platform
            .payments()
            .queue_callback(id, o.url.clone(), o.body.clone())
            .await
        {
            Ok(()) => see_other(&format!("{back}?done=resent")),
            Err(e) => crate::failed(e),
        };
    }
    let last_url = last.map(|o| o.url);
    match state
        .platform
        .portal()
        .resend_callback(session.developer.id, id, last_url)
        .await
    {
        Ok(()) => see_other(&format!("{back}?done=resent")),
        Err(ResendError::NotFound) => not_found_page(&session),
        Err(ResendError::NoCallbackUrl | ResendError::NotFinal) => see_other(&back),
        Err(e @ ResendError::Internal) => crate::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkoba_ledger::Currency;

    fn m(minor: i64, c: &str) -> Money {
        Money::from_minor(minor, Currency::parse(c).unwrap())
    }

    #[test]
    fn amounts_have_the_currency_s_minor_digits() {
        assert_eq!(decimal(m(123_450, "EUR")), "1234.50");
        assert_eq!(decimal(m(100, "EUR")), "1.00");
        assert_eq!(decimal(m(5, "EUR")), "0.05");
        assert_eq!(decimal(m(1500, "UGX")), "1500");
        assert_eq!(decimal(m(125, "KWD")), "0.125");
        assert_eq!(money(m(123_456_789, "EUR")), "1,234,567.89 EUR");
        assert_eq!(money(m(1_000_000, "UGX")), "1,000,000 UGX");
        assert_eq!(money(m(999, "UGX")), "999 UGX");
        assert_eq!(money(m(-150_000, "TZS")), "-1,500.00 TZS");
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let mut c = Csv::new();
        c.row(&[
            "a",
            "b,c",
            "say \"hi\"",
            "=SUM(A1)",
            "-5",
            "line\nbreak",
            "@x",
        ]);
        assert_eq!(
            c.as_str(),
            "a,\"b,c\",\"say \"\"hi\"\"\",'=SUM(A1),-5,\"line\nbreak\",'@x\r\n"
        );
    }

    #[test]
    fn iso_times() {
        assert_eq!(
            iso(parse_day("2026-11-22").unwrap() + 3_723_004),
            "2026-11-22T01:02:03.004Z"
        );
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_reversed_or_invalid_range_is_an_error() {
        let f = parse_filters(1, &q(&[("from", "2026-12-10"), ("to", "2026-12-01")]));
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert!(f.errors[0].contains("reversed"));
        assert_eq!(f.swapped.as_deref(), Some("from=2026-12-01&to=2026-12-10"));
        let f = parse_filters(1, &q(&[("from", "10/12/2026")]));
        assert_eq!(f.invalid, vec!["from"]);
        let f = parse_filters(1, &q(&[("from", "2026-12-01"), ("to", "2026-12-01")]));
        assert!(f.errors.is_empty());
        assert_eq!(f.filter.to_ms.unwrap() - f.filter.from_ms.unwrap(), DAY_MS);
    }

    #[test]
    fn a_reference_in_wire_form_is_searched_in_stored_form_too() {
        let id = Uuid::new_v4();
        let f = parse_filters(1, &q(&[("ref", &id.simple().to_string())]));
        assert_eq!(f.filter.reference, Some(id.to_string()));
        assert_eq!(f.alt_reference, Some(id.simple().to_string()));
        let f = parse_filters(1, &q(&[("ref", &id.to_string())]));
        assert_eq!(f.filter.reference, Some(id.to_string()));
        assert_eq!(f.alt_reference, None);
        let f = parse_filters(1, &q(&[("ref", "order-1")]));
        assert_eq!(f.filter.reference.as_deref(), Some("order-1"));
    }
}
