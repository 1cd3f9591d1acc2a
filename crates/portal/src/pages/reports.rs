//! Reports: volume and value over time by status and by product, success rate, and
//! settlement and callback latency percentiles, each as an SVG chart with a table beside it;
//! filtered by API, operation and API user; every table also as a CSV file
//! (`?…&csv=volume|value-EUR|success|latency`), amounts in each currency's minor units.
//!
//! The numbers come from the store's aggregate queries, with the filters or without. (With
//! a filter, the portal used to read the matching payments, up to 100,000, a page of 500 at
//! a time and each one's callback attempts, and count them itself: over a million payments
//! that took more than two minutes and a read of the APIs' per payment.)

use std::collections::{BTreeMap, HashMap};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::Internal;
use mkoba_platform::model::{PaymentKind, PaymentStatus, Product};

use mkoba_platform::portal::{Latencies, REPORT_MAX, ReportScope, StatsRow, percentile};

use crate::chart::{self, Series};
use crate::html::Html;
use crate::pages::transactions::{
    Csv, active_filters, api_user_choices, check_api_user, decimal, export_refused, figure, group,
    iso, params_without, parse_filters, scope_selects, with_query,
};
use crate::{PortalState, Session, day, document, query_params, w, when};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

fn status_class(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Successful => "c-ok",
        PaymentStatus::Failed => "c-failed",
        PaymentStatus::Pending => "c-pending",
    }
}

fn product_class(p: Product) -> &'static str {
    match p {
        Product::Collection => "c-collection",
        Product::CollectionWidget => "c-widget",
        Product::Disbursement => "c-disbursement",
        Product::Remittance => "c-remittance",
        Product::Mpesa => "c-mpesa",
    }
}

fn product_label(p: Product) -> &'static str {
    match p {
        Product::Collection => "Collection",
        Product::CollectionWidget => "Collection Widget",
        Product::Disbursement => "Disbursement",
        Product::Remittance => "Remittance",
        Product::Mpesa => "M-Pesa",
    }
}

/// A column of the value tables: a product's money, and which way it went. M-Pesa's is two
/// columns (a C2B came in, a B2C went out): summed into one, with a "Total" of in and out
/// together, a C2B reversed in full counted twice as "successful value".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flow {
    product: Product,
    out: bool,
}

/// Every column, money in first.
const FLOWS: [Flow; 6] = [
    Flow {
        product: Product::Collection,
        out: false,
    },
    Flow {
        product: Product::CollectionWidget,
        out: false,
    },
    Flow {
        product: Product::Mpesa,
        out: false,
    },
    Flow {
        product: Product::Disbursement,
        out: true,
    },
    Flow {
        product: Product::Remittance,
        out: true,
    },
    Flow {
        product: Product::Mpesa,
        out: true,
    },
];

impl Flow {
    /// The column of a payment: money out is what the partner paid (a payout, a refund, a
    /// B2C or B2B, a reversal).
    fn of(r: &StatsRow) -> Option<usize> {
        let out = matches!(r.product, Product::Disbursement | Product::Remittance)
            || matches!(
                r.kind,
                PaymentKind::Refund
                    | PaymentKind::MpesaB2c
                    | PaymentKind::MpesaB2b
                    | PaymentKind::MpesaReversal
            );
        FLOWS
            .iter()
            .position(|f| f.product == r.product && f.out == out)
    }

    fn label(self) -> &'static str {
        match (self.product, self.out) {
            (Product::Mpesa, false) => "M-Pesa in",
            (Product::Mpesa, true) => "M-Pesa out",
            (p, _) => product_label(p),
        }
    }

    /// Its CSV column.
    fn key(self) -> &'static str {
        match (self.product, self.out) {
            (Product::Mpesa, false) => "mpesa_in",
            (Product::Mpesa, true) => "mpesa_out",
            (p, _) => p.as_str(),
        }
    }
}

const STATUSES: [PaymentStatus; 3] = [
    PaymentStatus::Successful,
    PaymentStatus::Failed,
    PaymentStatus::Pending,
];

/// A chart and its table; `wide` puts the table under the chart (tables with many columns).
fn pair(h: &mut Html, chart: Html, table: Html, wide: bool) {
    if wide {
        w!(*h, "<div class=\"pair stacked\"><figure>" [chart] "</figure><div class=\"table-wrap\">" [table] "</div></div>");
    } else {
        w!(*h, "<div class=\"pair\"><figure>" [chart] "</figure><div class=\"table-wrap\">" [table] "</div></div>");
    }
}

/// A short tick label: `950`, `12.5`, `25k`, `1.5M`.
pub(crate) fn compact(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.2}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.2}", v / 1e3)))
    } else {
        trim(format!("{v:.2}"))
    }
}

/// Filters that cannot be applied: what is wrong, and which fields.
struct Refusal {
    errors: Vec<String>,
    invalid: Vec<&'static str>,
}

/// The report's numbers: counts and sums per bucket, and latency samples.
struct Numbers {
    rows: Vec<StatsRow>,
    latencies: Latencies,
    /// When the period held more than [`REPORT_MAX`] payments: the creation time from
    /// which the newest of them are counted.
    since: Option<i64>,
}

/// The numbers of a developer's payments created from `from` until `until` (the period's
/// slots), narrowed by the API, operation, environment and API user filters of `q`: the store's
/// aggregate queries, whatever the filters.
async fn numbers(
    state: &PortalState,
    q: &HashMap<String, String>,
    developer_id: i64,
    (from, until): (i64, i64),
    bucket_ms: i64,
) -> Result<Result<Numbers, Refusal>, Internal> {
    let scope: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "product" | "kind" | "env" | "api_user"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut f = parse_filters(developer_id, &scope);
    check_api_user(state, developer_id, &mut f).await?;
    if !f.errors.is_empty() {
        return Ok(Err(Refusal {
            errors: f.errors,
            invalid: f.invalid,
        }));
    }
    let mut scope = ReportScope {
        developer_id,
        from_ms: from,
        product: f.filter.product,
        kind: f.filter.kind,
        environment: f.filter.environment,
        api_user: f.filter.api_user,
        since_ms: None,
        until_ms: None,
    };
    scope.since_ms = state
        .platform
        .portal()
        .report_start(&scope, report_max(state))
        .await?;
    Ok(Ok(Numbers {
        since: scope.since_ms,
        rows: state
            .platform
            .portal()
            .payment_stats(&scope, bucket_ms)
            .await?,
        // The slots' counts also say how many are dated after the period (the page says
        // so); the latencies are of the period's payments only.
        latencies: state
            .platform
            .portal()
            .latencies(&ReportScope {
                until_ms: Some(until),
                ..scope
            })
            .await?,
    }))
}

/// Most payments a report reads.
pub(crate) fn report_max(state: &PortalState) -> u64 {
    state.config.report_max.unwrap_or(REPORT_MAX).max(1)
}

/// A "Download CSV" link for one table.
fn csv_link(h: &mut Html, q: &HashMap<String, String>, table: &str, label: &str) {
    let mut p = params_without(q, &["csv"]);
    p.push(("csv".to_owned(), table.to_owned()));
    p.sort();
    w!(*h, "<p class=\"table-actions\"><a class=\"download\" href=\"" {with_query("/portal/reports", &p)} "\" data-testid=\"csv-" {table} "\">Download CSV<span class=\"sr-only\"> of " {label} "</span></a></p>");
}

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let days: i64 = match q.get("days").map(|s| s.as_str()) {
        Some("1") => 1,
        None | Some("" | "7") => 7,
        Some("30") => 30,
        Some("90") => 90,
        // Refused like the other filters, not silently read as the default.
        Some(other) => {
            let refusal = Refusal {
                errors: vec![format!(
                    "Period “{other}” is not one of the choices: 1, 7, 30 or 90 days."
                )],
                invalid: vec!["days"],
            };
            if q.contains_key("csv") {
                return export_refused(&refusal.errors);
            }
            return refused_page(&state, &session, &q, 7, &refusal).await;
        }
    };
    let now = state.platform.now_ms();
    let (bucket_ms, n) = if days == 1 {
        (HOUR_MS, 24)
    } else {
        (DAY_MS, days)
    };
    // Buckets end with the current one.
    let from = (now / bucket_ms - (n - 1)) * bucket_ms;
    let label = |i: i64| {
        let at = from + i * bucket_ms;
        if bucket_ms == HOUR_MS {
            when(at).get(11..16).unwrap_or_default().to_owned()
        } else {
            day(at).get(5..).unwrap_or_default().to_owned()
        }
    };
    let labels: Vec<String> = (0..n).map(label).collect();
    let starts: Vec<String> = (0..n).map(|i| iso(from + i * bucket_ms)).collect();
    let dev = session.developer.id;
    let csv = q.get("csv").cloned();
    let data = match numbers(&state, &q, dev, (from, from + n * bucket_ms), bucket_ms).await {
        Ok(Ok(d)) => d,
        Ok(Err(r)) if csv.is_some() => return export_refused(&r.errors),
        Ok(Err(r)) => return refused_page(&state, &session, &q, days, &r).await,
        Err(e) => return crate::failed(e),
    };
    let Numbers {
        rows,
        latencies: lat,
        since,
    } = data;
    let idx = |r: &StatsRow| usize::try_from(r.bucket).ok().filter(|i| *i < n as usize);

    // Volume by status.
    let mut by_status: Vec<Vec<u64>> = vec![vec![0; n as usize]; 3];
    for r in &rows {
        if let (Some(i), Some(s)) = (idx(r), STATUSES.iter().position(|s| *s == r.status)) {
            by_status[s][i] += r.count;
        }
    }
    // Value of successful payments by product, per currency (the busiest first), of the
    // payments in the period's slots: one made on a test clock ahead of real time is in
    // none of them, and counted apart.
    let mut currencies: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows.iter().filter(|r| idx(r).is_some()) {
        *currencies.entry(r.currency.clone()).or_default() += r.count;
    }
    let mut currencies: Vec<(String, u64)> = currencies.into_iter().collect();
    currencies.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let value_of = |currency: &str| -> Vec<Vec<i64>> {
        let mut by_flow = vec![vec![0i64; n as usize]; FLOWS.len()];
        for r in rows
            .iter()
            .filter(|r| r.currency == currency && r.status == PaymentStatus::Successful)
        {
            if let (Some(i), Some(f)) = (idx(r), Flow::of(r)) {
                by_flow[f][i] = by_flow[f][i].saturating_add(r.amount_minor);
            }
        }
        by_flow
    };
    // Money in and out of the columns used, per period (`None`: no column of that way).
    let totals = |by_flow: &[Vec<i64>], used: &[usize], i: usize| -> [Option<i64>; 2] {
        [false, true].map(|out| {
            let mut of_way = used.iter().filter(|f| FLOWS[**f].out == out).peekable();
            of_way.peek()?;
            Some(of_way.fold(0i64, |t, f| t.saturating_add(by_flow[*f][i])))
        })
    };
    // Success rate of final payments.
    let rates: Vec<Option<f64>> = (0..n as usize)
        .map(|i| {
            let ok = by_status[0][i] as f64;
            let done = ok + by_status[1][i] as f64;
            (done > 0.0).then(|| 100.0 * ok / done)
        })
        .collect();
    let measures = [
        ("Settlement", &lat.settlement_ms, "c-collection"),
        ("Callback", &lat.callback_ms, "c-remittance"),
    ];
    let pct = |samples: &[i64]| -> Vec<Option<i64>> {
        [50, 90, 99, 100]
            .iter()
            .map(|p| percentile(samples, *p))
            .collect()
    };

    if let Some(table) = csv {
        let mut out = Csv::new();
        let name = match table.as_str() {
            "volume" => {
                out.row(&["period_start", "successful", "failed", "pending"]);
                for (i, s) in starts.iter().enumerate() {
                    out.row(&[
                        s.clone(),
                        by_status[0][i].to_string(),
                        by_status[1][i].to_string(),
                        by_status[2][i].to_string(),
                    ]);
                }
                "mkoba-volume.csv".to_owned()
            }
            "success" => {
                out.row(&[
                    "period_start",
                    "settled",
                    "successful",
                    "success_rate_percent",
                ]);
                for (i, s) in starts.iter().enumerate() {
                    out.row(&[
                        s.clone(),
                        (by_status[0][i] + by_status[1][i]).to_string(),
                        by_status[0][i].to_string(),
                        rates[i].map(|r| format!("{r:.1}")).unwrap_or_default(),
                    ]);
                }
                "mkoba-success-rate.csv".to_owned()
            }
            "latency" => {
                out.row(&["measure", "samples", "p50_ms", "p90_ms", "p99_ms", "max_ms"]);
                for (name, samples, _) in measures {
                    let ps = pct(samples);
                    let cell = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
                    out.row(&[
                        name.to_lowercase(),
                        samples.len().to_string(),
                        cell(ps[0]),
                        cell(ps[1]),
                        cell(ps[2]),
                        cell(ps[3]),
                    ]);
                }
                "mkoba-latency.csv".to_owned()
            }
            other => {
                let code = other.strip_prefix("value-").unwrap_or_default();
                let Ok(currency) = Currency::parse(code) else {
                    return export_refused(&[format!(
                        "There is no report table {other:?}: use volume, value-<currency>, success or latency."
                    )]);
                };
                // The page's value tables are those of the period's currencies.
                if !currencies.iter().any(|(c, _)| c == currency.as_str()) {
                    let choices: Vec<&str> = currencies.iter().map(|(c, _)| c.as_str()).collect();
                    return export_refused(&[format!(
                        "There is no value table in {currency} for this period: {}.",
                        if choices.is_empty() {
                            "it has no transactions".to_owned()
                        } else {
                            format!("its currencies are {}", choices.join(", "))
                        }
                    )]);
                }
                let by_flow = value_of(currency.as_str());
                // As on the page: a column for each flow that moved money in it, then the
                // money in and the money out (never one total of both).
                let used: Vec<usize> = (0..FLOWS.len())
                    .filter(|f| by_flow[*f].iter().any(|v| *v != 0))
                    .collect();
                let mut header = vec!["period_start".to_owned()];
                header.extend(used.iter().map(|f| FLOWS[*f].key().to_owned()));
                header.extend(["in", "out", "currency"].map(str::to_owned));
                out.row(&header);
                for (i, s) in starts.iter().enumerate() {
                    let mut row = vec![s.clone()];
                    for f in &used {
                        row.push(decimal(Money::from_minor(by_flow[*f][i], currency)));
                    }
                    for total in totals(&by_flow, &used, i) {
                        row.push(decimal(Money::from_minor(total.unwrap_or(0), currency)));
                    }
                    row.push(currency.as_str().to_owned());
                    out.row(&row);
                }
                format!("mkoba-value-{}.csv", currency.as_str())
            }
        };
        return out.into_response(&name);
    }

    let users = match api_user_choices(&state, dev).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    filter_form(&mut h, &q, days, &users, &[]);
    let (total, ahead) = rows.iter().fold((0u64, 0u64), |(inside, ahead), r| {
        if idx(r).is_some() {
            (inside + r.count, ahead)
        } else {
            (inside, ahead + r.count)
        }
    });
    w!(h, "<p class=\"muted\">Transactions: " {total} ", since " {when(from)} ", in " {if bucket_ms == HOUR_MS { "hours" } else { "days" }} " (UTC).");
    let mut tx = params_without(&q, &["days", "csv"]);
    tx.push(("from".to_owned(), day(from)));
    // To today: not the payments dated after now (on a clock ahead), which the report
    // leaves out (the link listed them too, more than the count above).
    tx.push(("to".to_owned(), day(now)));
    tx.sort();
    // The transactions page filters by whole days: the last 24 hours' link shows the
    // hours before them on their first day too, and says so.
    let link = if bucket_ms == HOUR_MS {
        format!("See the transactions of {} to {}", day(from), day(now))
    } else {
        "See these transactions".to_owned()
    };
    w!(h, " <a href=\"" {with_query("/portal/transactions", &tx)} "\">" {link} "</a></p>");
    if ahead > 0 {
        w!(h, "<p class=\"notice\" data-testid=\"report-ahead\">" {ahead} " more " {if ahead == 1 { "is" } else { "are" }} " dated after now (made on a test clock ahead of real time): no period of these reports holds " {if ahead == 1 { "it" } else { "them" }} ". The transactions page lists " {if ahead == 1 { "it" } else { "them" }} " without a date filter.</p>");
    }
    if let Some(since) = since {
        let most = group(&report_max(&state).to_string());
        w!(h, "<p class=\"notice warn\" data-testid=\"report-newest\">The period holds more than " {most} " transactions: these reports count those created since " {when(since)} ", the newest " {most} ". Choose a shorter period to see all of them.</p>");
    }

    // 1. Volume by status.
    let series: Vec<Series> = STATUSES
        .iter()
        .zip(&by_status)
        .map(|(s, v)| Series {
            name: s.as_str().to_owned(),
            class: status_class(*s),
            values: v.iter().map(|c| *c as f64).collect(),
        })
        .collect();
    h.raw("<h2 id=\"volume\">Volume by status</h2>");
    let count_axis = |v: f64| {
        if v.fract() == 0.0 {
            compact(v)
        } else {
            String::new()
        }
    };
    let chart = chart::stacked_bars(
        "volume-chart",
        "Transactions per period by status",
        "Stacked bars: successful, failed and pending transactions per period.",
        &labels,
        &series,
        &count_axis,
        &|v| format!("{v:.0}"),
    );
    let mut t = Html::new();
    t.raw("<table><caption>Transactions by status</caption><thead><tr><th scope=\"col\">Period</th><th scope=\"col\" class=\"num\">Successful</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">Pending</th></tr></thead><tbody>");
    for (i, l) in labels.iter().enumerate() {
        if by_status.iter().all(|s| s[i] == 0) {
            continue;
        }
        w!(t, "<tr><th scope=\"row\">" {l} "</th><td class=\"num\">" {by_status[0][i]} "</td><td class=\"num\">" {by_status[1][i]} "</td><td class=\"num\">" {by_status[2][i]} "</td></tr>");
    }
    t.raw("</tbody></table>");
    csv_link(&mut t, &q, "volume", "transactions by status");
    pair(&mut h, chart, t, false);

    // 2. Value of successful payments by product, per currency.
    h.raw("<h2 id=\"value\">Value by product</h2>");
    if currencies.is_empty() {
        h.raw("<p class=\"muted\">No transactions in this period.</p>");
    } else {
        h.raw("<p class=\"hint\">Money in (collections, widget invoices, M-Pesa C2B and direct debits) and money out (disbursements, remittances, refunds, M-Pesa B2C, B2B and reversals) are counted apart: a payment refunded or reversed is in both.");
        // The sandbox's play money and production's real money, summed, would say neither.
        if !q.contains_key("env") {
            h.raw(" <strong data-testid=\"environments-together\">Sandbox and production are counted together here</strong>: choose an environment above to see each apart.");
        }
        h.raw("</p>");
    }
    for (code, _) in &currencies {
        let Ok(currency) = Currency::parse(code) else {
            continue;
        };
        let by_flow = value_of(code);
        // Only the flows that moved money in this currency get a column (and a series).
        let used: Vec<usize> = (0..FLOWS.len())
            .filter(|f| by_flow[*f].iter().any(|v| *v != 0))
            .collect();
        let scale = 10f64.powi(currency.exponent() as i32);
        let series: Vec<Series> = used
            .iter()
            .map(|f| Series {
                name: FLOWS[*f].label().to_owned(),
                class: product_class(FLOWS[*f].product),
                values: by_flow[*f].iter().map(|m| *m as f64 / scale).collect(),
            })
            .collect();
        let exact = move |v: f64| {
            format!(
                "{} {}",
                figure(Money::from_minor((v * scale).round() as i64, currency)),
                currency.as_str()
            )
        };
        let chart = chart::stacked_bars(
            &format!("value-{code}"),
            &format!("Value of successful transactions in {code} per period by product"),
            "Stacked bars: the value of successful transactions per period, one colour per product.",
            &labels,
            &series,
            &compact,
            &exact,
        );
        let mut t = Html::new();
        w!(t, "<table class=\"value\"><caption>Successful value in " {code} "</caption><thead><tr><th scope=\"col\">Period</th>");
        for f in &used {
            w!(t, "<th scope=\"col\" class=\"num\">" {FLOWS[*f].label()} "</th>");
        }
        // Money in and money out, each when more than one column is of that way: never
        // one total of both.
        let ways =
            [false, true].map(|out| used.iter().filter(|f| FLOWS[**f].out == out).count() > 1);
        for (shown, name) in ways.iter().zip(["In", "Out"]) {
            if *shown {
                w!(t, "<th scope=\"col\" class=\"num\">" {name} "</th>");
            }
        }
        t.raw("</tr></thead><tbody>");
        for (i, l) in labels.iter().enumerate() {
            if used.iter().all(|f| by_flow[*f][i] == 0) {
                continue;
            }
            w!(t, "<tr><th scope=\"row\">" {l} "</th>");
            for f in &used {
                w!(t, "<td class=\"num\">" {figure(Money::from_minor(by_flow[*f][i], currency))} "</td>");
            }
            for (total, shown) in totals(&by_flow, &used, i).iter().zip(ways) {
                if shown {
                    w!(t, "<td class=\"num\">" {figure(Money::from_minor(total.unwrap_or(0), currency))} "</td>");
                }
            }
            t.raw("</tr>");
        }
        if used.is_empty() {
            w!(t, "<tr><td>No successful transactions in " {code} ".</td></tr>");
        }
        t.raw("</tbody></table>");
        csv_link(
            &mut t,
            &q,
            &format!("value-{code}"),
            &format!("the value in {code}"),
        );
        w!(h, "<h3>" {code} " <span class=\"hint\">(" {currency.exponent()} " decimal" {if currency.exponent() == 1 { "" } else { "s" }} ")</span></h3>");
        pair(&mut h, chart, t, used.len() > 2);
    }

    // 3. Success rate.
    h.raw("<h2 id=\"success\">Success rate</h2>");
    let chart = chart::percent_line(
        "success-chart",
        "Share of settled transactions that succeeded, per period",
        "Line: successful divided by successful plus failed, in percent.",
        &labels,
        &rates,
    );
    let mut t = Html::new();
    t.raw("<table><caption>Success rate</caption><thead><tr><th scope=\"col\">Period</th><th scope=\"col\" class=\"num\">Settled</th><th scope=\"col\" class=\"num\">Succeeded</th></tr></thead><tbody>");
    for (i, l) in labels.iter().enumerate() {
        if let Some(r) = rates[i] {
            w!(t, "<tr><th scope=\"row\">" {l} "</th><td class=\"num\">" {by_status[0][i] + by_status[1][i]} "</td><td class=\"num\">" {format!("{r:.1}%")} "</td></tr>");
        }
    }
    t.raw("</tbody></table>");
    csv_link(&mut t, &q, "success", "the success rate");
    pair(&mut h, chart, t, false);

    // 4. Latency percentiles.
    h.raw("<h2 id=\"latency\">Latency percentiles</h2>");
    let mut items = Vec::new();
    let mut t = Html::new();
    t.raw("<table><caption>Latency in milliseconds</caption><thead><tr><th scope=\"col\">Measure</th><th scope=\"col\" class=\"num\">Samples</th><th scope=\"col\" class=\"num\">p50</th><th scope=\"col\" class=\"num\">p90</th><th scope=\"col\" class=\"num\">p99</th><th scope=\"col\" class=\"num\">max</th></tr></thead><tbody>");
    for (name, samples, class) in measures {
        let ps = pct(samples);
        let cell = |v: Option<i64>| v.map_or("–".to_owned(), |v| v.to_string());
        w!(t, "<tr><th scope=\"row\">" {name} "</th><td class=\"num\">" {samples.len()} "</td><td class=\"num\">" {cell(ps[0])} "</td><td class=\"num\">" {cell(ps[1])} "</td><td class=\"num\">" {cell(ps[2])} "</td><td class=\"num\">" {cell(ps[3])} "</td></tr>");
        for (p, v) in ["p50", "p90", "p99"].iter().zip(&ps) {
            if let Some(v) = v {
                items.push((format!("{name} {p}"), *v as f64, class));
            }
        }
    }
    t.raw("</tbody></table>");
    csv_link(&mut t, &q, "latency", "the latency percentiles");
    t.raw("<p class=\"hint\">Settlement: from the payment's acceptance (MoMo's 202; an M-Pesa request's arrival) to the decision (includes the configured settle delay and time waiting on the virtual phone). Callback: one attempt's round trip, for the attempts a listener answered (one refused before any answer, a refused connection or a host that is not allowed, took no round trip and is not a sample; its transaction's page lists it).</p>");
    let chart = chart::hbars(
        "latency-chart",
        "Settlement and callback latency percentiles in milliseconds",
        "Horizontal bars: p50, p90 and p99 of settlement and callback latency.",
        &items,
        &|v| format!("{v:.0} ms"),
    );
    pair(&mut h, chart, t, false);
    document("Reports", Some(&session), "reports", h).into_response()
}

fn filter_form(
    h: &mut Html,
    q: &HashMap<String, String>,
    days: i64,
    users: &[(uuid::Uuid, String)],
    invalid: &[&str],
) {
    h.raw("<h1>Reports</h1><form method=\"get\" action=\"/portal/reports\" class=\"filters\" aria-label=\"Period and filters\"><div><label for=\"days\">Period</label><select id=\"days\" name=\"days\">");
    for (v, l) in [
        (1, "Last 24 hours"),
        (7, "Last 7 days"),
        (30, "Last 30 days"),
        (90, "Last 90 days"),
    ] {
        if v == days {
            w!(*h, "<option value=\"" {v} "\" selected>" {l} "</option>");
        } else {
            w!(*h, "<option value=\"" {v} "\">" {l} "</option>");
        }
    }
    h.raw("</select></div>");
    scope_selects(h, q, users, invalid);
    h.raw("<div class=\"actions\"><button type=\"submit\">Show</button> <a href=\"/portal/reports\">Clear</a></div></form>");
    active_filters(
        h,
        "/portal/reports",
        q,
        users,
        &["product", "kind", "env", "api_user"],
        &["days"],
    );
}

async fn refused_page(
    state: &PortalState,
    session: &Session,
    q: &HashMap<String, String>,
    days: i64,
    refusal: &Refusal,
) -> Response {
    let users = match api_user_choices(state, session.developer.id).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    filter_form(&mut h, q, days, &users, &refusal.invalid);
    h.raw("<div class=\"error\" role=\"alert\" data-testid=\"filter-error\"><p>These filters cannot be applied:</p><ul>");
    for e in &refusal.errors {
        w!(h, "<li>" {e} "</li>");
    }
    h.raw("</ul></div>");
    (
        axum::http::StatusCode::BAD_REQUEST,
        document("Reports", Some(session), "reports", h),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(12.5), "12.5");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(2500.0), "2500");
        assert_eq!(compact(25_000.0), "25k");
        assert_eq!(compact(12_500.0), "12.5k");
        assert_eq!(compact(1_500_000.0), "1.5M");
        assert_eq!(compact(2_500_000_000.0), "2.5G");
    }
}
