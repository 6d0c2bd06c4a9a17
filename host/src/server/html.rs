//! Small helpers for the server-rendered pages: escaping and the page frame.
//!
//! Pages are built as strings; every piece of text that did not come from this module goes
//! through [`esc`] (text) or [`attr`] (attribute values). The frame links one stylesheet and
//! one script from `/assets`, and the Content-Security-Policy forbids anything inline.
//! The frame is written in the request's language ([`Ui`]): `<html lang>`, navigation,
//! the language switcher, and the texts the script shows.

use super::i18n::{Lang, Ui};
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
    Webhooks,
    None,
}

/// Who the page is for: the signed-in user and the session's CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
}

/// Texts the console's script shows, as (data attribute, catalog id): written on `<body>`
/// in the page's language so the script needs no catalog of its own. `%s` in a text is
/// where the script puts its value.
pub const SCRIPT_TEXTS: &[(&str, &str)] = &[
    ("saving", "js-saving"),
    ("clearing", "js-clearing"),
    ("saved", "js-saved"),
    ("cleared", "js-cleared"),
    ("answered", "js-server-answered"),
    ("unreachable", "js-unreachable"),
    ("testing", "js-testing"),
    ("testingUnsaved", "js-testing-unsaved"),
    ("secretSet", "field-secret-placeholder-set"),
    ("secretUnset", "field-secret-placeholder-unset"),
    ("sessionEnded", "js-session-ended"),
    ("formExpired", "js-form-expired"),
];

/// A whole page in English, for callers outside the console's routes.
pub fn page(title: &str, viewer: Option<Viewer<'_>>, section: Section, body: &str) -> String {
    page_in(&Ui::default(), title, viewer, section, body)
}

/// A whole page in the language of `ui`, with the language switcher in its header.
pub fn page_in(
    ui: &Ui,
    title: &str,
    viewer: Option<Viewer<'_>>,
    section: Section,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 3072);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — Passerelle</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head><body",
        ui.lang.code(),
        esc(title)
    );
    for (key, id) in SCRIPT_TEXTS {
        let text = ui.ta(
            id,
            &[
                ("status", "%s".into()),
                ("error", "%s".into()),
                ("count", "%s".into()),
            ],
        );
        let _ = write!(out, " data-t-{}=\"{}\"", kebab(key), attr(&text));
    }
    let _ = write!(
        out,
        "><a class=\"skip\" href=\"#main\">{}</a>\
         <header class=\"top\"><span class=\"brand\">Passerelle</span>",
        esc(&ui.t("skip-to-content"))
    );
    if let Some(v) = viewer {
        let _ = write!(out, "<nav aria-label=\"{}\"><ul>", attr(&ui.t("nav-label")));
        for (s, href, label) in [
            (Section::Instances, "/instances", ui.t("nav-instances")),
            (Section::Plugins, "/plugins", ui.t("nav-plugins")),
            (Section::Audit, "/audit", ui.t("nav-audit")),
            (Section::Webhooks, "/webhooks", ui.t("nav-webhooks")),
        ] {
            let _ = write!(
                out,
                "<li><a href=\"{href}\"{}>{}</a></li>",
                if s == section {
                    " aria-current=\"page\""
                } else {
                    ""
                },
                esc(&label)
            );
        }
        let _ = write!(
            out,
            "</ul></nav><form method=\"post\" action=\"/logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
             <span class=\"user\">{}</span> <button type=\"submit\" class=\"secondary\">{}</button></form>",
            attr(v.csrf),
            esc(&ui.ta("signed-in-as", &[("user", v.user.into())])),
            esc(&ui.t("sign-out"))
        );
    }
    let _ = write!(
        out,
        "<nav class=\"lang\" aria-label=\"{}\"><ul>",
        attr(&ui.t("language-label"))
    );
    for l in Lang::ALL {
        let _ = write!(
            out,
            "<li><a href=\"{}\" lang=\"{}\" hreflang=\"{}\"{}>{}</a></li>",
            attr(&ui.switch_href(l)),
            l.code(),
            l.code(),
            if l == ui.lang {
                " aria-current=\"true\""
            } else {
                ""
            },
            esc(l.native_name())
        );
    }
    let _ = write!(
        out,
        "</ul></nav></header><main id=\"main\">{body}</main></body></html>"
    );
    out
}

/// `testingUnsaved` → `testing-unsaved`, as `dataset` maps it back.
fn kebab(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
