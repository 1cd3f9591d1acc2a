//! The guides (`/portal/guides`, `/portal/guides/{slug}`), as MTN's portal has them beside
//! the API reference, and seed 004's M-Pesa "Getting Started". Their one source is
//! `docs/guides/*.md` in the repository, compiled in with `include_str!`: the same files
//! read on GitHub and rendered here, so the portal and the docs cannot drift.
//!
//! The renderer handles the Markdown those files use and nothing more: ATX headings,
//! paragraphs, `-`/`*` and `1.` lists (one level, continuation lines indented), fenced code
//! blocks, pipe tables, `>` notes, and inline code, `**strong**`, `*emphasis*` and links.
//! It writes through [`Html`], so every character of the files is escaped text and the
//! markup comes from this file's literals only: raw HTML in a guide shows as text. Links
//! to another guide (`callback.md#…`) become portal links; `http(s)://`, `/portal/…` and
//! `/_mkoba/…` links stay; any other link (the repository's own files) is shown as its
//! text.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::html::Html;
use crate::{PortalState, Session, document, w};

/// A guide: its slug (the file name without `.md`), its group and its Markdown.
pub(crate) struct Guide {
    pub slug: &'static str,
    pub group: &'static str,
    pub markdown: &'static str,
}

macro_rules! guide {
    ($slug:literal, $group:literal) => {
        Guide {
            slug: $slug,
            group: $group,
            markdown: include_str!(concat!("../../../../docs/guides/", $slug, ".md")),
        }
    };
}

/// Every guide, in reading order.
pub(crate) const GUIDES: &[Guide] = &[
    guide!("introduction", "MTN MoMo"),
    guide!("getting-started", "MTN MoMo"),
    guide!("api-user-and-api-key", "MTN MoMo"),
    guide!("use-cases", "MTN MoMo"),
    guide!("sandbox-use-cases", "MTN MoMo"),
    guide!("common-error-codes", "MTN MoMo"),
    guide!("callback", "MTN MoMo"),
    guide!("brand-guidelines", "MTN MoMo"),
    guide!("mpesa-getting-started", "Vodacom M-Pesa"),
    guide!("mpesa-develop-without-library", "Vodacom M-Pesa"),
    guide!("mpesa-response-codes", "Vodacom M-Pesa"),
];

impl Guide {
    /// The first heading's text.
    pub(crate) fn title(&self) -> &'static str {
        self.markdown
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .unwrap_or(self.slug)
            .trim()
    }

    /// The first paragraph after the title.
    fn lead(&self) -> String {
        let mut lines = Vec::new();
        for l in self
            .markdown
            .lines()
            .skip_while(|l| !l.starts_with("# "))
            .skip(1)
        {
            let t = l.trim();
            if t.is_empty() {
                if lines.is_empty() {
                    continue;
                }
                break;
            }
            if t.starts_with('#') || t.starts_with('|') || t.starts_with("```") {
                break;
            }
            lines.push(t);
        }
        lines.join(" ")
    }
}

pub(crate) fn find(slug: &str) -> Option<&'static Guide> {
    GUIDES.iter().find(|g| g.slug == slug)
}

/// `GET /portal/guides`.
pub(crate) async fn index(State(_state): State<PortalState>, session: Session) -> Response {
    let mut h = Html::new();
    h.raw("<link rel=\"stylesheet\" href=\"/portal/assets/docs.css\"><h1>Guides</h1><p class=\"lead\">How to integrate, what the sandbox does with each test number, what each error means and what to do about it. The API reference with sample code is under <a href=\"/portal/docs\">API docs</a>.</p>");
    let mut group = "";
    for g in GUIDES {
        if g.group != group {
            if !group.is_empty() {
                h.raw("</ul>");
            }
            group = g.group;
            w!(h, "<h2>" {group} "</h2><ul class=\"guide-list\">");
        }
        let mut lead = Html::new();
        inline(&mut lead, &g.lead());
        w!(h, "<li><a href=\"/portal/guides/" {g.slug} "\">" {g.title()} "</a><p class=\"hint\">" [lead] "</p></li>");
    }
    h.raw("</ul>");
    document("Guides", Some(&session), "guides", h).into_response()
}

/// The address the guides' commands are written for: `mkoba serve`'s default.
const DEFAULT_BASE: &str = "http://127.0.0.1:8080";

/// `GET /portal/guides/{slug}`.
pub(crate) async fn show(
    State(_state): State<PortalState>,
    session: Session,
    headers: axum::http::HeaderMap,
    tls: Option<axum::Extension<mkoba_platform::widget::OverTls>>,
    Path(slug): Path<String>,
) -> Response {
    let Some(g) = find(&slug) else {
        return crate::not_found().await;
    };
    let mut h = Html::new();
    w!(h, "<link rel=\"stylesheet\" href=\"/portal/assets/docs.css\"><nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/portal/guides\">Guides</a> › " {g.group} "</nav>");
    // The guides' commands name the default address; the API pages' samples this server's.
    let here = super::widget::base(&headers, tls.is_some());
    if g.markdown.contains(DEFAULT_BASE) && here != DEFAULT_BASE {
        w!(h, "<p class=\"notice\" role=\"note\" data-testid=\"guide-base\">This server answers at <code>" {here} "</code>: the commands below say <code>" {DEFAULT_BASE} "</code>, the default of <code>mkoba serve</code>, so put <code>" {here} "</code> in their place (the API pages' samples have it already).</p>");
    }
    w!(h, "<article class=\"guide\">" [render(g.markdown)] "</article><nav class=\"guide-nav\" aria-label=\"Guides\"><ul>");
    for other in GUIDES {
        if other.slug == g.slug {
            w!(h, "<li><a href=\"/portal/guides/" {other.slug} "\" aria-current=\"page\">" {other.title()} "</a></li>");
        } else {
            w!(h, "<li><a href=\"/portal/guides/" {other.slug} "\">" {other.title()} "</a></li>");
        }
    }
    h.raw("</ul></nav>");
    document(g.title(), Some(&session), "guides", h).into_response()
}

// ---- Markdown ------------------------------------------------------------------------------

/// A heading's anchor: lower case letters and digits, words joined by `-`.
pub(crate) fn anchor(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == ' ' || c == '-') && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The text of inline Markdown without its markup (for anchors and titles).
fn plain(text: &str) -> String {
    let mut h = Html::new();
    inline(&mut h, text);
    let s = h.into_string();
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

enum Block {
    Paragraph(Vec<String>),
    List { ordered: bool, items: Vec<String> },
    Quote(Vec<String>),
}

fn flush(h: &mut Html, block: &mut Option<Block>) {
    match block.take() {
        None => {}
        Some(Block::Paragraph(lines)) => {
            h.raw("<p>");
            inline(h, &lines.join(" "));
            h.raw("</p>");
        }
        Some(Block::Quote(lines)) => {
            h.raw("<blockquote><p>");
            inline(h, &lines.join(" "));
            h.raw("</p></blockquote>");
        }
        Some(Block::List { ordered, items }) => {
            h.raw(if ordered { "<ol>" } else { "<ul>" });
            for item in items {
                h.raw("<li>");
                inline(h, &item);
                h.raw("</li>");
            }
            h.raw(if ordered { "</ol>" } else { "</ul>" });
        }
    }
}

/// `- item`, `* item` or `12. item`: (ordered, text).
fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line[digits..].starts_with(". ") {
        return Some((true, &line[digits + 2..]));
    }
    None
}

/// The cells of a table row (`| a | b |`); `\|` is a literal bar, and bars inside
/// backticks do not split.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut code = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '`' => {
                code = !code;
                cur.push(c);
            }
            '|' if !code => out.push(std::mem::take(&mut cur).trim().to_owned()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.contains('-') && t.chars().all(|c| "|-: ".contains(c))
}

/// Renders a guide.
pub(crate) fn render(markdown: &str) -> Html {
    let mut h = Html::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut block: Option<Block> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_end();
        // Fenced code.
        if let Some(lang) = t.trim_start().strip_prefix("```") {
            flush(&mut h, &mut block);
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            let text = code.join("\n");
            let lang = lang.trim();
            w!(h, "<div class=\"code-block\"><button type=\"button\" class=\"copy\" data-copy=\"" {text} "\" aria-label=\"Copy this code\" hidden>Copy</button><pre");
            if !lang.is_empty() {
                w!(h, " data-lang=\"" {lang} "\"");
            }
            w!(h, "><code>" {text} "</code></pre></div>");
            i += 1;
            continue;
        }
        if t.trim().is_empty() {
            flush(&mut h, &mut block);
            i += 1;
            continue;
        }
        // Headings.
        let hashes = t.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            flush(&mut h, &mut block);
            let text = t[hashes..].trim();
            let id = anchor(&plain(text));
            let (open, close) = match hashes {
                1 => ("<h1", "</h1>"),
                2 => ("<h2", "</h2>"),
                3 => ("<h3", "</h3>"),
                4 => ("<h4", "</h4>"),
                5 => ("<h5", "</h5>"),
                _ => ("<h6", "</h6>"),
            };
            h.raw(open);
            w!(h, " id=\"" {id} "\">");
            inline(&mut h, text);
            h.raw(close);
            i += 1;
            continue;
        }
        // Tables: a header row, a separator, rows.
        if t.trim_start().starts_with('|') && i + 1 < lines.len() && is_separator(lines[i + 1]) {
            flush(&mut h, &mut block);
            h.raw("<div class=\"table-wrap\"><table><thead><tr>");
            for c in cells(t) {
                h.raw("<th scope=\"col\">");
                inline(&mut h, &c);
                h.raw("</th>");
            }
            h.raw("</tr></thead><tbody>");
            i += 2;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                h.raw("<tr>");
                for c in cells(lines[i]) {
                    h.raw("<td>");
                    inline(&mut h, &c);
                    h.raw("</td>");
                }
                h.raw("</tr>");
                i += 1;
            }
            h.raw("</tbody></table></div>");
            continue;
        }
        // Notes.
        if let Some(rest) = t.trim_start().strip_prefix('>') {
            let rest = rest.trim().to_owned();
            match &mut block {
                Some(Block::Quote(lines)) => lines.push(rest),
                _ => {
                    flush(&mut h, &mut block);
                    block = Some(Block::Quote(vec![rest]));
                }
            }
            i += 1;
            continue;
        }
        // Lists.
        if let Some((ordered, text)) = list_item(t) {
            match &mut block {
                Some(Block::List { ordered: o, items }) if *o == ordered => {
                    items.push(text.trim().to_owned());
                }
                _ => {
                    flush(&mut h, &mut block);
                    block = Some(Block::List {
                        ordered,
                        items: vec![text.trim().to_owned()],
                    });
                }
            }
            i += 1;
            continue;
        }
        // A continuation of a list item, or paragraph text.
        match &mut block {
            Some(Block::List { items, .. }) if line.starts_with("  ") => {
                if let Some(last) = items.last_mut() {
                    last.push(' ');
                    last.push_str(t.trim());
                }
            }
            Some(Block::Paragraph(lines)) => lines.push(t.trim().to_owned()),
            _ => {
                flush(&mut h, &mut block);
                block = Some(Block::Paragraph(vec![t.trim().to_owned()]));
            }
        }
        i += 1;
    }
    flush(&mut h, &mut block);
    h
}

/// Where a link in a guide goes in the portal, if anywhere.
fn link_target(url: &str) -> Option<String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Some(url.to_owned());
    }
    if url.starts_with("/portal") || url.starts_with("/_mkoba/") {
        return Some(url.to_owned());
    }
    if let Some(anchor) = url.strip_prefix('#') {
        return Some(format!("#{anchor}"));
    }
    let (file, anchor) = url.split_once('#').unwrap_or((url, ""));
    let slug = file
        .strip_prefix("./")
        .unwrap_or(file)
        .strip_suffix(".md")?;
    find(slug)?;
    Some(if anchor.is_empty() {
        format!("/portal/guides/{slug}")
    } else {
        format!("/portal/guides/{slug}#{anchor}")
    })
}

/// Inline Markdown: code, strong, emphasis, links; `\` escapes the next character.
pub(crate) fn inline(h: &mut Html, text: &str) {
    let mut plain_run = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let flush_text = |h: &mut Html, run: &mut String| {
        if !run.is_empty() {
            h.text(&*run);
            run.clear();
        }
    };
    let find = |from: usize, pat: &[char]| -> Option<usize> {
        (from..chars.len().saturating_sub(pat.len() - 1)).find(|&j| chars[j..j + pat.len()] == *pat)
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                plain_run.push(chars[i + 1]);
                i += 2;
            }
            '`' => match find(i + 1, &['`']) {
                Some(end) => {
                    flush_text(h, &mut plain_run);
                    let code: String = chars[i + 1..end].iter().collect();
                    w!(*h, "<code>" {code} "</code>");
                    i = end + 1;
                }
                None => {
                    plain_run.push(c);
                    i += 1;
                }
            },
            '*' if i + 1 < chars.len() && chars[i + 1] == '*' => match find(i + 2, &['*', '*']) {
                Some(end) if end > i + 2 => {
                    flush_text(h, &mut plain_run);
                    let inner: String = chars[i + 2..end].iter().collect();
                    h.raw("<strong>");
                    inline(h, &inner);
                    h.raw("</strong>");
                    i = end + 2;
                }
                _ => {
                    plain_run.push_str("**");
                    i += 2;
                }
            },
            '*' if i + 1 < chars.len() && !chars[i + 1].is_whitespace() => {
                match find(i + 1, &['*']) {
                    Some(end) if end > i + 1 && !chars[end - 1].is_whitespace() => {
                        flush_text(h, &mut plain_run);
                        let inner: String = chars[i + 1..end].iter().collect();
                        h.raw("<em>");
                        inline(h, &inner);
                        h.raw("</em>");
                        i = end + 1;
                    }
                    _ => {
                        plain_run.push(c);
                        i += 1;
                    }
                }
            }
            '[' => {
                let close = find(i + 1, &[']', '(']);
                let end = close.and_then(|k| find(k + 2, &[')']).map(|e| (k, e)));
                match end {
                    Some((k, e)) => {
                        flush_text(h, &mut plain_run);
                        let label: String = chars[i + 1..k].iter().collect();
                        let url: String = chars[k + 2..e].iter().collect();
                        match link_target(url.trim()) {
                            Some(target) => {
                                w!(*h, "<a href=\"" {target} "\">");
                                inline(h, &label);
                                h.raw("</a>");
                            }
                            None => inline(h, &label),
                        }
                        i = e + 1;
                    }
                    None => {
                        plain_run.push(c);
                        i += 1;
                    }
                }
            }
            c => {
                plain_run.push(c);
                i += 1;
            }
        }
    }
    flush_text(h, &mut plain_run);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_escaped_html() {
        let md = "# Title <b>\n\nSome **bold** and `code <x>` and *em*, a [link](callback.md#retries) and a [file](../momo.md).\n\n- one\n  more\n- two\n\n1. first\n2. second\n\n| a | b |\n|---|---|\n| `x|y` | \\| z |\n\n```sh\necho '<script>'\n```\n\n> A note.\n\n<script>alert(1)</script>\n";
        let html = render(md).into_string();
        assert!(
            html.contains("<h1 id=\"title-b\">Title &lt;b&gt;</h1>"),
            "{html}"
        );
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>code &lt;x&gt;</code>"), "{html}");
        assert!(html.contains("<em>em</em>"), "{html}");
        assert!(
            html.contains("<a href=\"/portal/guides/callback#retries\">link</a>"),
            "{html}"
        );
        assert!(html.contains(" and a file."), "{html}");
        assert!(
            html.contains("<ul><li>one more</li><li>two</li></ul>"),
            "{html}"
        );
        assert!(
            html.contains("<ol><li>first</li><li>second</li></ol>"),
            "{html}"
        );
        assert!(
            html.contains("<td><code>x|y</code></td><td>| z</td>"),
            "{html}"
        );
        assert!(html.contains("echo &#39;&lt;script&gt;&#39;"), "{html}");
        assert!(
            html.contains("<blockquote><p>A note.</p></blockquote>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn javascript_links_are_not_links() {
        let mut h = Html::new();
        inline(&mut h, "[x](javascript:alert(1))");
        assert!(!h.as_str().contains("href"), "{}", h.as_str());
    }

    #[test]
    fn every_guide_renders_without_markdown_left_over() {
        for g in GUIDES {
            let full = render(g.markdown).into_string();
            // Code blocks show their text as it is; everything else must be markup.
            let mut html = String::new();
            let mut rest = full.as_str();
            while let Some(at) = rest.find("<div class=\"code-block\">") {
                html.push_str(&rest[..at]);
                let end = rest[at..]
                    .find("</pre></div>")
                    .map_or(rest.len(), |e| at + e + 12);
                rest = &rest[end..];
            }
            html.push_str(rest);
            assert!(html.contains("<h1 id="), "{}: no title", g.slug);
            assert!(html.contains("<h2 id="), "{}: no sections", g.slug);
            for raw in ["**", "```", "](", "|---", "\n#"] {
                assert!(!html.contains(raw), "{}: {raw:?} left in {html}", g.slug);
            }
            // Every link to another guide resolves.
            for piece in g.markdown.split("](").skip(1) {
                let url = &piece[..piece.find(')').unwrap_or(0)];
                if url.ends_with(".md") || url.contains(".md#") {
                    let file = url.split('#').next().unwrap_or("");
                    if !file.starts_with("..") {
                        assert!(link_target(url).is_some(), "{}: broken link {url}", g.slug);
                    }
                }
            }
        }
    }
}
