//! Small helpers for the server-rendered pages: escaping and the page frame.
//!
//! Pages are built as strings; every piece of text that did not come from this module goes
//! through [`esc`] (text) or [`attr`] (attribute values). The frame links one stylesheet and
//! one script from `/assets`, and the Content-Security-Policy forbids anything inline.

use std::fmt::Write as _;

/// Escapes text for HTML content.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a double-quoted attribute value.
pub fn attr(s: &str) -> String {
    esc(s)
}

/// `2026-11-28 12:58:53 UTC` from milliseconds since the epoch.
pub fn time(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The navigation's current section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Instances,
    Plugins,
    Audit,
    None,
}

/// Who the page is for: the signed-in user and the session's CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(title: &str, viewer: Option<Viewer<'_>>, section: Section, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — Passerelle</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><span class=\"brand\">Passerelle</span>",
        esc(title)
    );
    if let Some(v) = viewer {
        out.push_str("<nav aria-label=\"Main\"><ul>");
        for (s, href, label) in [
            (Section::Instances, "/instances", "Instances"),
            (Section::Plugins, "/plugins", "Plugins"),
            (Section::Audit, "/audit", "Audit history"),
        ] {
            let _ = write!(
                out,
                "<li><a href=\"{href}\"{}>{label}</a></li>",
                if s == section {
                    " aria-current=\"page\""
                } else {
                    ""
                }
            );
        }
        let _ = write!(
            out,
            "</ul></nav><form method=\"post\" action=\"/logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
             <span class=\"user\">Signed in as {}</span> <button type=\"submit\" class=\"secondary\">Sign out</button></form>",
            attr(v.csrf),
            esc(v.user)
        );
    }
    let _ = write!(
        out,
        "</header><main id=\"main\">{body}</main></body></html>"
    );
    out
}
