//! Reports: volume and value over time by status and by product, success rate, and
//! settlement and callback latency percentiles, each as an SVG chart with a table beside it.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::model::{PaymentStatus, Product};
use mkoba_platform::now_ms;
use mkoba_platform::portal::{StatsRow, percentile};

use crate::chart::{self, Series};
use crate::html::Html;
use crate::{PortalState, Session, day, document, internal_error, query_params, w, when};

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
        Product::Collection | Product::CollectionWidget => "c-collection",
        Product::Disbursement => "c-disbursement",
        Product::Remittance => "c-remittance",
        Product::Mpesa => "c-mpesa",
    }
}

const STATUSES: [PaymentStatus; 3] = [
    PaymentStatus::Successful,
    PaymentStatus::Failed,
    PaymentStatus::Pending,
];

fn pair(h: &mut Html, chart: Html, table: Html) {
    w!(*h, "<div class=\"pair\"><figure>" [chart] "</figure><div class=\"table-wrap\">" [table] "</div></div>");
}

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let days: i64 = match q.get("days").map(|s| s.as_str()) {
        Some("1") => 1,
        Some("30") => 30,
        Some("90") => 90,
        _ => 7,
    };
    let now = now_ms();
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
    let dev = session.developer.id;
    let (Ok(rows), Ok(lat)) = (
        state.platform.payment_stats(dev, from, bucket_ms),
        state.platform.latencies(dev, from),
    ) else {
        return internal_error();
    };
    let idx = |r: &StatsRow| usize::try_from(r.bucket).ok().filter(|i| *i < n as usize);

    let mut h = Html::new();
    h.raw("<h1>Reports</h1><form method=\"get\" action=\"/portal/reports\" class=\"filters\" aria-label=\"Period\"><div><label for=\"days\">Period</label><select id=\"days\" name=\"days\">");
    for (v, l) in [
        (1, "Last 24 hours"),
        (7, "Last 7 days"),
        (30, "Last 30 days"),
        (90, "Last 90 days"),
    ] {
        if v == days {
            w!(h, "<option value=\"" {v} "\" selected>" {l} "</option>");
        } else {
            w!(h, "<option value=\"" {v} "\">" {l} "</option>");
        }
    }
    let total: u64 = rows.iter().map(|r| r.count).sum();
    w!(h, "</select></div><div class=\"actions\"><button type=\"submit\">Show</button></div></form>"
        "<p class=\"muted\">Transactions: " {total} ", since " {when(from)} ", in " {if bucket_ms == HOUR_MS { "hours" } else { "days" }} " (UTC).</p>");

    // 1. Volume by status.
    let mut by_status: Vec<Vec<f64>> = vec![vec![0.0; n as usize]; 3];
    for r in &rows {
        if let (Some(i), Some(s)) = (idx(r), STATUSES.iter().position(|s| *s == r.status)) {
            by_status[s][i] += r.count as f64;
        }
    }
    let series: Vec<Series> = STATUSES
        .iter()
        .zip(&by_status)
        .map(|(s, v)| Series {
            name: s.as_str().to_owned(),
            class: status_class(*s),
            values: v.clone(),
        })
        .collect();
    h.raw("<h2 id=\"volume\">Volume by status</h2>");
    let chart = chart::stacked_bars(
        "volume-chart",
        "Transactions per period by status",
        "Stacked bars: successful, failed and pending transactions per period.",
        &labels,
        &series,
        &|v| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        },
    );
    let mut t = Html::new();
    t.raw("<table><caption>Transactions by status</caption><thead><tr><th scope=\"col\">Period</th><th scope=\"col\" class=\"num\">Successful</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">Pending</th></tr></thead><tbody>");
    for (i, l) in labels.iter().enumerate() {
        if by_status.iter().all(|s| s[i] == 0.0) {
            continue;
        }
        w!(t, "<tr><th scope=\"row\">" {l} "</th><td class=\"num\">" {by_status[0][i]} "</td><td class=\"num\">" {by_status[1][i]} "</td><td class=\"num\">" {by_status[2][i]} "</td></tr>");
    }
    t.raw("</tbody></table>");
    pair(&mut h, chart, t);

    // 2. Value of successful payments by product, per currency (the busiest first).
    let mut currencies: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *currencies.entry(r.currency.clone()).or_default() += r.count;
    }
    let mut currencies: Vec<(String, u64)> = currencies.into_iter().collect();
    currencies.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    h.raw("<h2 id=\"value\">Value by product</h2>");
    if currencies.is_empty() {
        h.raw("<p class=\"muted\">No transactions in this period.</p>");
    }
    for (code, _) in currencies.iter().take(3) {
        let Ok(currency) = Currency::parse(code) else {
            continue;
        };
        let scale = 10f64.powi(currency.exponent() as i32);
        let mut by_product: Vec<Vec<i64>> = vec![vec![0; n as usize]; Product::REPORTED.len()];
        for r in rows
            .iter()
            .filter(|r| &r.currency == code && r.status == PaymentStatus::Successful)
        {
            if let (Some(i), Some(p)) = (
                idx(r),
                Product::REPORTED.iter().position(|p| *p == r.product),
            ) {
                by_product[p][i] = by_product[p][i].saturating_add(r.amount_minor);
            }
        }
        let series: Vec<Series> = Product::REPORTED
            .iter()
            .zip(&by_product)
            .map(|(p, v)| Series {
                name: p.as_str().to_owned(),
                class: product_class(*p),
                values: v.iter().map(|m| *m as f64 / scale).collect(),
            })
            .collect();
        let chart = chart::stacked_bars(
            &format!("value-{code}"),
            &format!("Value of successful transactions in {code} per period by product"),
            "Stacked bars: collection, disbursement, remittance and M-Pesa value per period.",
            &labels,
            &series,
            &|v| format!("{v:.0}"),
        );
        let mut t = Html::new();
        w!(t, "<table><caption>Successful value in " {code} "</caption><thead><tr><th scope=\"col\">Period</th><th scope=\"col\" class=\"num\">Collection</th><th scope=\"col\" class=\"num\">Disbursement</th><th scope=\"col\" class=\"num\">Remittance</th><th scope=\"col\" class=\"num\">M-Pesa</th></tr></thead><tbody>");
        for (i, l) in labels.iter().enumerate() {
            if by_product.iter().all(|p| p[i] == 0) {
                continue;
            }
            w!(t, "<tr><th scope=\"row\">" {l} "</th>");
            for p in &by_product {
                w!(t, "<td class=\"num\">" {Money::from_minor(p[i], currency).to_decimal_string()} "</td>");
            }
            t.raw("</tr>");
        }
        t.raw("</tbody></table>");
        w!(h, "<h3>" {code} "</h3>");
        pair(&mut h, chart, t);
    }

    // 3. Success rate of final payments.
    let rates: Vec<Option<f64>> = (0..n as usize)
        .map(|i| {
            let ok = by_status[0][i];
            let done = ok + by_status[1][i];
            (done > 0.0).then(|| 100.0 * ok / done)
        })
        .collect();
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
    pair(&mut h, chart, t);

    // 4. Latency percentiles.
    h.raw("<h2 id=\"latency\">Latency percentiles</h2>");
    let mut items = Vec::new();
    let mut t = Html::new();
    t.raw("<table><caption>Latency in milliseconds</caption><thead><tr><th scope=\"col\">Measure</th><th scope=\"col\" class=\"num\">Samples</th><th scope=\"col\" class=\"num\">p50</th><th scope=\"col\" class=\"num\">p90</th><th scope=\"col\" class=\"num\">p99</th><th scope=\"col\" class=\"num\">max</th></tr></thead><tbody>");
    for (name, samples, class) in [
        ("Settlement", &lat.settlement_ms, "c-collection"),
        ("Callback", &lat.callback_ms, "c-remittance"),
    ] {
        let ps: Vec<Option<i64>> = [50, 90, 99, 100]
            .iter()
            .map(|p| percentile(samples, *p))
            .collect();
        let cell = |v: Option<i64>| v.map_or("–".to_owned(), |v| v.to_string());
        w!(t, "<tr><th scope=\"row\">" {name} "</th><td class=\"num\">" {samples.len()} "</td><td class=\"num\">" {cell(ps[0])} "</td><td class=\"num\">" {cell(ps[1])} "</td><td class=\"num\">" {cell(ps[2])} "</td><td class=\"num\">" {cell(ps[3])} "</td></tr>");
        for (p, v) in ["p50", "p90", "p99"].iter().zip(&ps) {
            if let Some(v) = v {
                items.push((format!("{name} {p}"), *v as f64, class));
            }
        }
    }
    t.raw("</tbody></table><p class=\"hint\">Settlement: from the 202 to the decision (includes the configured settle delay and time waiting on the virtual phone). Callback: one attempt's round trip.</p>");
    let chart = chart::hbars(
        "latency-chart",
        "Settlement and callback latency percentiles in milliseconds",
        "Horizontal bars: p50, p90 and p99 of settlement and callback latency.",
        &items,
        &|v| format!("{v:.0} ms"),
    );
    pair(&mut h, chart, t);
    document("Reports", Some(&session), "reports", h).into_response()
}
