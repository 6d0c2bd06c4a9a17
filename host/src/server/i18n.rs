//! The console's language: which one a request gets, and its texts.
//!
//! The console speaks English and French. Texts live in Fluent files a translator can edit
//! without reading Rust (`host/locales/<lang>/console.ftl`), embedded in the binary so there
//! is nothing to install. A request's language is, in order: `?lang=` (which also sets a
//! cookie, so the choice is remembered), the `passerelle_lang` cookie, the browser's
//! `Accept-Language`, then English.
//!
//! A text missing from the French catalog falls back to English, and one missing from both
//! shows its id: either way the page renders and the server logs the gap once, never panics.
//! The unit tests below are the check that keeps both catalogs complete: every id used in
//! the console's code exists in both, and both have the same ids.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The cookie that remembers the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "passerelle_lang";
/// How long the choice is remembered.
const LANG_COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

const EN_FTL: &str = include_str!("../../locales/en/console.ftl");
const FR_FTL: &str = include_str!("../../locales/fr/console.ftl");

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 tag, as in `<html lang>` and `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language's own name, for the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    /// `fr`, `fr-FR`, `FR-ca`… → French; anything not spoken by the console → `None`.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The best supported language of an `Accept-Language` header (RFC 9110 §12.5.4):
    /// highest weight first, the header's order between equal weights; `q=0` means "not this".
    /// The same negotiation as for plugin texts ([`passerelle_plugin_api::i18n::negotiate`]).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let codes = Lang::ALL.map(Lang::code);
        passerelle_plugin_api::i18n::negotiate(header, &codes).and_then(Lang::from_tag)
    }

    /// Picks the language of a request: the query's choice, the remembered cookie, the
    /// browser's preference, English.
    pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::from_tag)
            .or_else(|| cookie.and_then(Lang::from_tag))
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or_default()
    }

    /// The language of a request from its headers only (no query): for pages answered
    /// outside the console's routes, such as "not found".
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        Lang::negotiate(
            None,
            super::auth::cookie(headers, LANG_COOKIE),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

struct Catalogs {
    en: FluentBundle<FluentResource>,
    fr: FluentBundle<FluentResource>,
}

fn bundle(lang: Lang, source: &str) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Unicode isolation marks around arguments would end up inside attributes and tests.
    bundle.set_use_isolating(false);
    let resource =
        FluentResource::try_new(source.to_owned()).unwrap_or_else(|(partial, errors)| {
            tracing::error!(
                lang = lang.code(),
                ?errors,
                "the console's catalog has syntax errors; the entries that parsed are used"
            );
            partial
        });
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(
            lang = lang.code(),
            ?errors,
            "the console's catalog has duplicate entries"
        );
    }
    bundle
}

fn catalogs() -> &'static Catalogs {
    static CATALOGS: OnceLock<Catalogs> = OnceLock::new();
    CATALOGS.get_or_init(|| Catalogs {
        en: bundle(Lang::En, EN_FTL),
        fr: bundle(Lang::Fr, FR_FTL),
    })
}

/// Logs a gap in a catalog once per language and id; says whether this was the first time.
fn report_missing(lang: Lang, id: &str) -> bool {
    static SEEN: Mutex<Option<HashSet<(Lang, String)>>> = Mutex::new(None);
    let first = match SEEN.lock() {
        Ok(mut seen) => seen
            .get_or_insert_with(HashSet::new)
            .insert((lang, id.to_owned())),
        Err(_) => true,
    };
    if first {
        tracing::warn!(
            lang = lang.code(),
            id,
            "the console has no translation for this text; English is shown instead"
        );
    }
    first
}

fn format(
    bundle: &FluentBundle<FluentResource>,
    id: &str,
    args: Option<&FluentArgs<'_>>,
) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let mut errors = Vec::new();
    let text = bundle
        .format_pattern(pattern, args, &mut errors)
        .into_owned();
    if !errors.is_empty() {
        tracing::warn!(id, ?errors, "a console text could not be fully formatted");
    }
    Some(text)
}

/// Looks `id` up in `lang`, then in English, then gives the id itself.
fn lookup(lang: Lang, id: &str, args: Option<&FluentArgs<'_>>) -> String {
    lookup_in(catalogs(), lang, id, args)
}

fn lookup_in(c: &Catalogs, lang: Lang, id: &str, args: Option<&FluentArgs<'_>>) -> String {
    if lang == Lang::Fr {
        if let Some(text) = format(&c.fr, id, args) {
            return text;
        }
        report_missing(Lang::Fr, id);
    }
    format(&c.en, id, args).unwrap_or_else(|| {
        report_missing(Lang::En, id);
        id.to_owned()
    })
}

fn fluent_args<'a>(args: &[(&'a str, FluentValue<'a>)]) -> FluentArgs<'a> {
    let mut out = FluentArgs::with_capacity(args.len());
    for (k, v) in args {
        out.set(*k, v.clone());
    }
    out
}

/// The texts of one request, in its language. Also knows the page it is on, so the
/// language switcher can link back to it.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    pub lang: Lang,
    /// The path and query of the page (without `lang`), when it can be reloaded with GET.
    here: Option<String>,
}

impl Ui {
    pub fn new(lang: Lang) -> Self {
        Ui { lang, here: None }
    }

    /// Plain text (escape it before writing it into a page).
    pub fn t(&self, id: &str) -> String {
        lookup(self.lang, id, None)
    }

    /// Plain text with arguments (escape it before writing it into a page).
    pub fn ta(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        lookup(self.lang, id, Some(&fluent_args(args)))
    }

    /// Markup: a catalog entry that holds HTML (its id ends in `-html`), with every string
    /// argument escaped here, so only the catalog's own markup reaches the page.
    pub fn html(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let escaped: Vec<(&str, FluentValue<'_>)> = args
            .iter()
            .map(|(k, v)| match v {
                FluentValue::String(s) => (*k, FluentValue::from(super::html::esc(s))),
                other => (*k, other.clone()),
            })
            .collect();
        lookup(self.lang, id, Some(&fluent_args(&escaped)))
    }

    /// Where the switcher's link to `to` goes: this page in that language.
    pub fn switch_href(&self, to: Lang) -> String {
        let here = self.here.as_deref().unwrap_or("/instances");
        let sep = if here.contains('?') { '&' } else { '?' };
        format!("{here}{sep}lang={}", to.code())
    }
}

/// `lang=…` removed from a query string.
fn query_without_lang(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang=") && *p != "lang")
        .collect::<Vec<_>>()
        .join("&")
}

fn query_lang(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("lang="))
        .filter(|v| Lang::from_tag(v).is_some())
}

/// The `Set-Cookie` value that remembers a chosen language. Not a secret and read by the
/// server only, hence `HttpOnly`; `Lax` so a link from elsewhere still opens in the
/// remembered language.
pub fn lang_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax",
        lang.code()
    )
}

/// Middleware of the console's routes: decides the request's [`Ui`] and, when the query
/// chose a language, remembers it in a cookie.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let query = req.uri().query();
    let chosen = query_lang(query).map(str::to_owned);
    let lang = Lang::negotiate(
        chosen.as_deref(),
        super::auth::cookie(req.headers(), LANG_COOKIE),
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let here = (req.method() == Method::GET).then(|| {
        let path = req.uri().path();
        match query.map(query_without_lang).filter(|q| !q.is_empty()) {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        }
    });
    req.extensions_mut().insert(Ui { lang, here });
    let mut response = next.run(req).await;
    if chosen.is_some() {
        if let Ok(v) = HeaderValue::from_str(&lang_cookie(lang)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_syntax::ast::{Entry, Expression, InlineExpression, PatternElement};
    use std::collections::BTreeSet;

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser_then_english() {
        assert_eq!(
            Lang::negotiate(Some("fr"), Some("en"), Some("en")),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(Some("de"), Some("fr"), None), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("fr"), Some("en-GB")), Lang::Fr);
        assert_eq!(
            Lang::negotiate(None, None, Some("fr-CH, fr;q=0.9")),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(None, None, Some("de-DE, ja")), Lang::En);
        assert_eq!(Lang::negotiate(None, None, None), Lang::En);
    }

    #[test]
    fn accept_language_honours_weights_and_refusals() {
        assert_eq!(
            Lang::from_accept_language("en;q=0.5, fr;q=0.8"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("de, en-US;q=0.9, fr;q=0.7"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("fr;q=0, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("*"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn a_text_missing_in_french_falls_back_to_english_once_logged_and_an_unknown_id_shows_itself() {
        let c = Catalogs {
            en: bundle(Lang::En, "hello = Hello\nbye = Bye { $name }\n"),
            fr: bundle(Lang::Fr, "hello = Bonjour\n"),
        };
        assert_eq!(lookup_in(&c, Lang::Fr, "hello", None), "Bonjour");
        let args = fluent_args(&[("name", "Ada".into())]);
        assert_eq!(lookup_in(&c, Lang::Fr, "bye", Some(&args)), "Bye Ada");
        // The gap was reported by the lookup above; a second report is not logged again.
        assert!(!report_missing(Lang::Fr, "bye"));
        assert_eq!(lookup_in(&c, Lang::Fr, "nowhere", None), "nowhere");
        assert_eq!(lookup(Lang::Fr, "no-such-text", None), "no-such-text");
        // A catalog with a syntax error keeps the entries that parsed instead of failing.
        let broken = bundle(Lang::Fr, "ok = Oui\n\n!!! not Fluent\n\nalso-ok = Encore\n");
        assert_eq!(format(&broken, "ok", None).as_deref(), Some("Oui"));
        assert_eq!(format(&broken, "also-ok", None).as_deref(), Some("Encore"));
        assert_eq!(Ui::new(Lang::Fr).t("nav-audit"), "Historique");
        assert_eq!(Ui::new(Lang::En).t("nav-audit"), "Audit history");
    }

    #[test]
    fn html_entries_escape_their_arguments() {
        let ui = Ui::new(Lang::En);
        let out = ui.html(
            "instance-crumbs-html",
            &[("id", FluentValue::from("<b>x</b>"))],
        );
        assert!(out.contains("&lt;b&gt;x&lt;/b&gt;"), "{out}");
        assert!(!out.contains("<b>"), "{out}");
    }

    #[test]
    fn the_switcher_links_back_to_the_same_page() {
        let ui = Ui {
            lang: Lang::En,
            here: Some("/audit?instance=sirene".to_owned()),
        };
        assert_eq!(ui.switch_href(Lang::Fr), "/audit?instance=sirene&lang=fr");
        assert_eq!(
            Ui::new(Lang::Fr).switch_href(Lang::En),
            "/instances?lang=en"
        );
        assert_eq!(query_without_lang("lang=fr&instance=a"), "instance=a");
        assert_eq!(query_lang(Some("x=1&lang=fr")), Some("fr"));
        assert_eq!(query_lang(Some("lang=xx")), None);
    }

    /// Message ids and the variables each uses, from a catalog parsed as a translator's tool
    /// would parse it.
    fn catalog(source: &str, name: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
        let resource = fluent_syntax::parser::parse(source)
            .unwrap_or_else(|(_, errors)| panic!("{name} does not parse: {errors:?}"));
        let mut out = std::collections::BTreeMap::new();
        for entry in resource.body {
            if let Entry::Message(m) = entry {
                let mut vars = BTreeSet::new();
                if let Some(p) = &m.value {
                    collect_vars(&p.elements, &mut vars);
                }
                assert!(
                    out.insert(m.id.name.to_owned(), vars).is_none(),
                    "{name}: {} is defined twice",
                    m.id.name
                );
            }
        }
        out
    }

    fn collect_vars(elements: &[PatternElement<&str>], vars: &mut BTreeSet<String>) {
        for e in elements {
            if let PatternElement::Placeable { expression } = e {
                match expression {
                    Expression::Inline(InlineExpression::VariableReference { id }) => {
                        vars.insert(id.name.to_owned());
                    }
                    Expression::Select { selector, variants } => {
                        if let InlineExpression::VariableReference { id } = selector {
                            vars.insert(id.name.to_owned());
                        }
                        for v in variants {
                            collect_vars(&v.value.elements, vars);
                        }
                    }
                    Expression::Inline(_) => {}
                }
            }
        }
    }

    /// Every `ui.t("…")`, `ui.ta("…"` and `ui.html("…"` in the console's code, the column
    /// headings (`"col-…"`, looked up by `header_cells`) and the script's texts.
    fn ids_used_in_code() -> BTreeSet<String> {
        // Every file of the console's folder, whichever way its pages are split.
        let console = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/console");
        let mut sources: Vec<String> = std::fs::read_dir(&console)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(
            sources.len() >= 2,
            "no console sources in {}",
            console.display()
        );
        sources.extend(
            [
                include_str!("html.rs"),
                include_str!("form.rs"),
                include_str!("mod.rs"),
            ]
            .map(str::to_owned),
        );
        let mut ids = BTreeSet::new();
        for src in &sources {
            for (at, _) in src.match_indices("\"col-") {
                if let Some(end) = src[at + 1..].find('"') {
                    ids.insert(src[at + 1..at + 1 + end].to_owned());
                }
            }
            for call in [".t(", ".ta(", ".html("] {
                for (at, _) in src.match_indices(call) {
                    let rest = src[at + call.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else {
                        continue;
                    };
                    if let Some(end) = rest.find('"') {
                        ids.insert(rest[..end].to_owned());
                    }
                }
            }
        }
        ids.extend(
            super::super::html::SCRIPT_TEXTS
                .iter()
                .map(|(_, id)| (*id).to_owned()),
        );
        ids
    }

    #[test]
    fn every_text_the_console_uses_exists_in_english_and_french_with_the_same_variables() {
        let en = catalog(EN_FTL, "locales/en/console.ftl");
        let fr = catalog(FR_FTL, "locales/fr/console.ftl");
        let used = ids_used_in_code();
        assert!(used.len() > 100, "the scan found only {} ids", used.len());
        let missing_en: Vec<_> = used.iter().filter(|id| !en.contains_key(*id)).collect();
        let missing_fr: Vec<_> = used.iter().filter(|id| !fr.contains_key(*id)).collect();
        assert!(
            missing_en.is_empty() && missing_fr.is_empty(),
            "texts used in code but missing: English {missing_en:?}, French {missing_fr:?}; add them to host/locales/<lang>/console.ftl"
        );
        let only_en: Vec<_> = en.keys().filter(|k| !fr.contains_key(*k)).collect();
        let only_fr: Vec<_> = fr.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(
            only_en.is_empty() && only_fr.is_empty(),
            "the catalogs differ: only in English {only_en:?}, only in French {only_fr:?}"
        );
        for (id, vars) in &en {
            assert_eq!(
                Some(vars),
                fr.get(id),
                "{id}: the French text must use the same variables as the English one"
            );
        }
        let unused: Vec<_> = en.keys().filter(|k| !used.contains(*k)).collect();
        assert!(
            unused.is_empty(),
            "catalog entries no code uses: {unused:?}"
        );
    }
}
