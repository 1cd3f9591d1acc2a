//! Charts drawn on the server as inline SVG: stacked bars, a line and horizontal bars.
//!
//! Colours come from CSS classes (`c-…`) so the stylesheet decides them; every chart has a
//! `<title>` and `<desc>` for screen readers, and the pages put a table with the same
//! numbers beside it.
//!
//! The SVG scales with its box, so on a phone its text shrinks with it: the stylesheet
//! enlarges `.axis` text below 700 px, and the x axis is drawn twice, every label
//! (`.wide`) and a sparser set (`.narrow`) that still fits at the larger size; CSS shows
//! one of them. Axis labels sit above the horizontal bars, so they never run into them.

use crate::html::Html;
use crate::w;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 36.0;

/// One stacked series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// CSS class giving its colour.
    pub class: &'static str,
    pub values: Vec<f64>,
}

fn open(h: &mut Html, id: &str, title: &str, desc: &str) {
    w!(*h, "<svg class=\"chart\" viewBox=\"0 0 640 260\" role=\"img\" aria-labelledby=\"" {id} "-t " {id} "-d\" xmlns=\"http://www.w3.org/2000/svg\">"
        "<title id=\"" {id} "-t\">" {title} "</title><desc id=\"" {id} "-d\">" {desc} "</desc>");
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// A rounded-up axis maximum (1, 2, 2.5, 5 × 10ⁿ).
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * base {
            return m * base;
        }
    }
    10.0 * base
}

fn y_axis(h: &mut Html, max: f64, fmt: &dyn Fn(f64) -> String) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        w!(*h, "<line class=\"grid\" x1=\"" {num(LEFT)} "\" x2=\"" {num(W - RIGHT)} "\" y1=\"" {num(y)} "\" y2=\"" {num(y)} "\"/>"
            "<text class=\"axis\" x=\"" {num(LEFT - 6.0)} "\" y=\"" {num(y + 4.0)} "\" text-anchor=\"end\">" {fmt(v)} "</text>");
    }
}

/// The indexes of the labels drawn when at most `most` fit: every `step`-th from the last
/// one backwards (the current period is always labelled).
fn label_indexes(n: usize, most: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(most.max(1)).max(1);
    let mut v: Vec<usize> = (0..n).rev().step_by(step).collect();
    v.reverse();
    v
}

fn x_labels(h: &mut Html, labels: &[String]) {
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    for (class, most, dy) in [("axis wide", 8, 16.0), ("axis narrow", 4, 24.0)] {
        for i in label_indexes(labels.len(), most) {
            let x = LEFT + slot * (i as f64 + 0.5);
            w!(*h, "<text class=\"" {class} "\" x=\"" {num(x)} "\" y=\"" {num(H - BOTTOM + dy)} "\" text-anchor=\"middle\">" {labels[i]} "</text>");
        }
    }
}

/// Stacked bars: one bar per label, one segment per series. `axis` writes the tick
/// labels (short), `fmt` the exact value of each segment (its tooltip).
pub fn stacked_bars(
    id: &str,
    title: &str,
    desc: &str,
    labels: &[String],
    series: &[Series],
    axis: &dyn Fn(f64) -> String,
    fmt: &dyn Fn(f64) -> String,
) -> Html {
    let mut h = Html::new();
    open(&mut h, id, title, desc);
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().fold(0.0, f64::max));
    y_axis(&mut h, max, axis);
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let bar = (slot * 0.7).max(1.0);
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = TOP + plot_h;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let height = plot_h * v / max;
            base -= height;
            w!(h, "<rect class=\"" {s.class} "\" x=\"" {num(x)} "\" y=\"" {num(base)} "\" width=\"" {num(bar)} "\" height=\"" {num(height)} "\">"
                "<title>" {label} ": " {s.name} " " {fmt(v)} "</title></rect>");
        }
    }
    x_labels(&mut h, labels);
    h.raw("</svg>");
    legend(&mut h, series.iter().map(|s| (s.name.as_str(), s.class)));
    h
}

/// A line of percentages (0–100); `None` leaves a gap.
pub fn percent_line(
    id: &str,
    title: &str,
    desc: &str,
    labels: &[String],
    values: &[Option<f64>],
) -> Html {
    let mut h = Html::new();
    open(&mut h, id, title, desc);
    y_axis(&mut h, 100.0, &|v| format!("{v:.0}%"));
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let point = |i: usize, v: f64| {
        (
            LEFT + slot * (i as f64 + 0.5),
            TOP + plot_h - plot_h * v.clamp(0.0, 100.0) / 100.0,
        )
    };
    let mut run: Vec<(f64, f64)> = Vec::new();
    let flush = |h: &mut Html, run: &mut Vec<(f64, f64)>| {
        if run.len() > 1 {
            let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            w!(*h, "<polyline class=\"c-line\" points=\"" {pts.join(" ")} "\"/>");
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push(point(i, *v)),
            None => flush(&mut h, &mut run),
        }
    }
    flush(&mut h, &mut run);
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            let (x, y) = point(i, *v);
            w!(h, "<circle class=\"c-dot\" cx=\"" {num(x)} "\" cy=\"" {num(y)} "\" r=\"4\"><title>" {labels[i]} ": " {format!("{v:.1}%")} "</title></circle>");
        }
    }
    x_labels(&mut h, labels);
    h.raw("</svg>");
    h
}

/// Horizontal bars, one per item: (label, value, class).
pub fn hbars(
    id: &str,
    title: &str,
    desc: &str,
    items: &[(String, f64, &'static str)],
    fmt: &dyn Fn(f64) -> String,
) -> Html {
    let mut h = Html::new();
    // Each item: its label on a line of its own, then the bar with its value after it.
    let row = 50.0;
    let height = TOP + row * items.len().max(1) as f64;
    w!(h, "<svg class=\"chart\" viewBox=\"0 0 640 " {num(height)} "\" role=\"img\" aria-labelledby=\"" {id} "-t " {id} "-d\" xmlns=\"http://www.w3.org/2000/svg\">"
        "<title id=\"" {id} "-t\">" {title} "</title><desc id=\"" {id} "-d\">" {desc} "</desc>");
    let left = 8.0;
    let value_w = 130.0;
    let max = nice_max(items.iter().map(|i| i.1).fold(0.0, f64::max));
    let span = W - left - value_w - RIGHT;
    for (i, (label, v, class)) in items.iter().enumerate() {
        let y = TOP + row * i as f64;
        let width = (span * v / max).max(if *v > 0.0 { 1.0 } else { 0.0 });
        w!(h, "<text class=\"axis\" x=\"" {num(left)} "\" y=\"" {num(y + 12.0)} "\">" {label} "</text>"
            "<rect class=\"" {class} "\" x=\"" {num(left)} "\" y=\"" {num(y + 20.0)} "\" width=\"" {num(width)} "\" height=\"16\"><title>" {label} ": " {fmt(*v)} "</title></rect>"
            "<text class=\"axis\" x=\"" {num(left + width + 6.0)} "\" y=\"" {num(y + 33.0)} "\">" {fmt(*v)} "</text>");
    }
    h.raw("</svg>");
    h
}

fn legend<'a>(h: &mut Html, items: impl Iterator<Item = (&'a str, &'static str)>) {
    h.raw("<ul class=\"legend\">");
    for (name, class) in items {
        w!(*h, "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect class=\"" {class} "\" width=\"12\" height=\"12\"/></svg> " {name} "</li>");
    }
    h.raw("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(240.0), 250.0);
        assert_eq!(nice_max(3000.0), 5000.0);
    }

    #[test]
    fn stacked_bars_draw_one_rect_per_nonzero_segment_and_escape_labels() {
        let labels = vec!["<a>".to_owned(), "b".to_owned()];
        let series = vec![
            Series {
                name: "ok".into(),
                class: "c-ok",
                values: vec![1.0, 0.0],
            },
            Series {
                name: "failed".into(),
                class: "c-failed",
                values: vec![2.0, 3.0],
            },
        ];
        let h = stacked_bars("x", "T", "D", &labels, &series, &|v| format!("{v}"), &|v| {
            format!("{v}")
        });
        let s = h.as_str();
        assert_eq!(s.matches("<rect class=\"c-").count(), 3 + 2, "{s}");
        assert!(s.contains("&lt;a&gt;"));
        assert!(!s.contains("<a>"));
    }

    #[test]
    fn the_last_period_is_always_labelled_and_few_labels_fit_a_phone() {
        assert_eq!(label_indexes(7, 8), vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(label_indexes(7, 4), vec![0, 2, 4, 6]);
        assert_eq!(label_indexes(24, 4), vec![5, 11, 17, 23]);
        assert_eq!(label_indexes(90, 8), vec![5, 17, 29, 41, 53, 65, 77, 89]);
        assert_eq!(label_indexes(0, 4), Vec::<usize>::new());
        let labels: Vec<String> = (0..24).map(|i| format!("{i:02}:00")).collect();
        let h = percent_line("p", "T", "D", &labels, &[None; 24]);
        assert_eq!(h.as_str().matches("class=\"axis narrow\"").count(), 4);
        assert_eq!(h.as_str().matches("class=\"axis wide\"").count(), 8);
    }

    #[test]
    fn a_line_skips_gaps() {
        let labels: Vec<String> = (0..4).map(|i| i.to_string()).collect();
        let h = percent_line(
            "l",
            "T",
            "D",
            &labels,
            &[Some(50.0), Some(100.0), None, Some(0.0)],
        );
        assert_eq!(h.as_str().matches("<polyline").count(), 1);
        assert_eq!(h.as_str().matches("<circle").count(), 3);
    }
}
