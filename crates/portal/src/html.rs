//! HTML built so that escaping cannot be forgotten.
//!
//! [`Html::raw`] takes only `&'static str`: markup can come from string literals in this
//! crate and nowhere else. Everything computed at run time (names, ids, URLs, amounts,
//! bodies) goes through [`Html::text`], which escapes `& < > " '` and is therefore safe in
//! element content and in quoted attribute values alike. The [`w!`](crate::w) macro makes
//! this readable: literals are markup, `{expr}` is escaped text, `[expr]` is already-built
//! [`Html`]. No template engine is needed for a dozen pages, and none of this can be
//! bypassed by accident.

use std::fmt::{self, Display, Write as _};

/// A fragment of HTML (or SVG) that is safe to send.
#[derive(Debug, Default, Clone)]
pub struct Html(String);

struct Escaper<'a> {
    out: &'a mut String,
    /// Show the direction controls as `[U+202E]` (text to read) or keep them (a form's
    /// value, sent back as typed).
    show_controls: bool,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&#39;"),
                // The embeddings, overrides and isolates a client put in a field (the APIs
                // take any printable text) reverse the rest of the line around them: "EUR
                // 1000" shown for "1000 EUR", or the page's own sentence turned backwards.
                // Shown as what they are. (The marks U+200E, U+200F and U+061C, common in
                // right-to-left text, reverse nothing and stay.)
                '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' if self.show_controls => {
                    let _ = write!(self.out, "[U+{:04X}]", u32::from(c));
                }
                c => self.out.push(c),
            }
        }
        Ok(())
    }
}

impl Html {
    pub fn new() -> Html {
        Html(String::new())
    }

    /// Markup from a literal.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, text: impl Display) -> &mut Html {
        self.escaped(text, true)
    }

    /// A form field's value (a `<textarea>`'s content), escaped and otherwise as typed:
    /// what the browser sends back is what was there.
    pub fn typed(&mut self, text: impl Display) -> &mut Html {
        self.escaped(text, false)
    }

    fn escaped(&mut self, text: impl Display, show_controls: bool) -> &mut Html {
        let _ = write!(
            Escaper {
                out: &mut self.0,
                show_controls,
            },
            "{text}"
        );
        self
    }

    /// Another fragment.
    pub fn html(&mut self, other: &Html) -> &mut Html {
        self.0.push_str(&other.0);
        self
    }

    /// The finished markup.
    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Escapes text on its own.
pub fn escape(text: &str) -> String {
    let mut h = Html::new();
    h.text(text);
    h.into_string()
}

/// Appends to an [`Html`]: `w!(h, "<p>" {name} "</p>" [fragment])`; `~{value}` is a form
/// field's value ([`Html::typed`]).
#[macro_export]
macro_rules! w {
    ($h:expr, $($rest:tt)*) => {{
        let h: &mut $crate::html::Html = &mut $h;
        $crate::w!(@go h; $($rest)*);
    }};
    (@go $h:ident; ) => {};
    (@go $h:ident; $lit:literal $($rest:tt)*) => {
        $h.raw($lit);
        $crate::w!(@go $h; $($rest)*);
    };
    (@go $h:ident; {$e:expr} $($rest:tt)*) => {
        $h.text(&$e);
        $crate::w!(@go $h; $($rest)*);
    };
    (@go $h:ident; ~{$e:expr} $($rest:tt)*) => {
        $h.typed(&$e);
        $crate::w!(@go $h; $($rest)*);
    };
    (@go $h:ident; [$e:expr] $($rest:tt)*) => {
        $h.html(&$e);
        $crate::w!(@go $h; $($rest)*);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_literals_are_not() {
        let mut h = Html::new();
        let name = "<script>alert(\"x\")</script> & 'y'";
        crate::w!(h, "<p title=\"" {name} "\">" {name} "</p>");
        assert_eq!(
            h.as_str(),
            "<p title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</p>"
        );
    }

    #[test]
    fn direction_controls_are_shown_not_obeyed() {
        let mut h = Html::new();
        crate::w!(h, "<p>" {"Refund 5 EUR \u{202E}0001 RUE\u{2066}"} "</p>");
        assert_eq!(h.as_str(), "<p>Refund 5 EUR [U+202E]0001 RUE[U+2066]</p>");
        // The marks of right-to-left text stay; a form's value is as typed.
        let mut h = Html::new();
        crate::w!(h, "<p>" {"\u{62F}\u{200F} 5"} "</p><textarea>" ~{"a\u{202E}<b"} "</textarea>");
        assert_eq!(
            h.as_str(),
            "<p>\u{62F}\u{200F} 5</p><textarea>a\u{202E}&lt;b</textarea>"
        );
    }

    #[test]
    fn fragments_are_inserted_as_they_are() {
        let mut inner = Html::new();
        crate::w!(inner, "<b>" {1 + 1} "</b>");
        let mut outer = Html::new();
        crate::w!(outer, "<p>" [inner] "</p>");
        assert_eq!(outer.as_str(), "<p><b>2</b></p>");
    }
}
