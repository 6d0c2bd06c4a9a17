//! Which language to answer in, and the plugin texts in that language.
//!
//! A plugin carries its translations as Fluent catalogs in its manifest
//! (`Manifest::locales`, plugin API 1.1); English, from the plugin's doc comments and test
//! routine, needs none. This module is the host's one place for:
//! - negotiation: an explicit `lang` (the API's `?lang=`, the CLI's `--lang`) wins over the
//!   browser's `Accept-Language`; a language the plugin does not ship is answered in English,
//!   never refused (the answer says which language it is in);
//! - translation of a schema and of a test report (by name, with English wherever a message is
//!   missing: see `passerelle_plugin_api::i18n`);
//! - the cache of localized schemas and form models, built once per loaded plugin and language
//!   ([`LocalizedViews`], used by `AppState::schema_json_in` / `form_model_in`);
//! - the completeness check partners run: [`check`] (`passerelle plugin translations`).
//!
//! A catalog that does not parse is logged and ignored (English is shown): a translator's typo
//! must not take a plugin down.

use crate::plugin::LoadedPlugin;
use crate::schema::ConfigSchema;
use crate::server::{form::FormModel, PluginViews};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use passerelle_plugin_api::i18n::{self as api, Catalog, CatalogError, Entry};
use passerelle_plugin_api::TestReport;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The language of every text written in Rust (doc comments, test routines).
pub const ENGLISH: &str = "en";

/// Why a language request is refused.
#[derive(Debug, thiserror::Error)]
pub enum LangError {
    #[error("`lang` {0:?} is not a language tag: expected e.g. `fr` or `en`")]
    BadTag(String),
}

/// The languages `plugin` can be shown in: English first, then its catalogs.
pub fn languages(plugin: &LoadedPlugin) -> Vec<&str> {
    std::iter::once(ENGLISH)
        .chain(plugin.manifest.locales.keys().map(String::as_str))
        .collect()
}

/// The language to show `plugin` in: `explicit` (`?lang=`, `--lang`) if given, else the best
/// of `accept_language`; English when the plugin ships none of them.
pub fn choose(
    plugin: &LoadedPlugin,
    explicit: Option<&str>,
    accept_language: Option<&str>,
) -> Result<String, LangError> {
    choose_among(&languages(plugin), explicit, accept_language)
}

/// [`choose`] among the `available` languages.
pub fn choose_among(
    available: &[&str],
    explicit: Option<&str>,
    accept_language: Option<&str>,
) -> Result<String, LangError> {
    if let Some(tag) = explicit.map(str::trim).filter(|t| !t.is_empty()) {
        let well_formed = tag.len() <= 35
            && tag.split('-').all(|p| {
                !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !well_formed {
            return Err(LangError::BadTag(tag.to_owned()));
        }
        return Ok(api::negotiate(tag, available).unwrap_or(ENGLISH).to_owned());
    }
    Ok(accept_language
        .and_then(|h| api::negotiate(h, available))
        .unwrap_or(ENGLISH)
        .to_owned())
}

/// `?lang=` of the API's localized answers.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// Language of titles, descriptions and test reports, e.g. `fr`; wins over
    /// `Accept-Language`. A language the plugin does not ship is answered in English;
    /// `Content-Language` says which one the answer is in.
    pub lang: Option<String>,
}

/// [`choose`] for an HTTP request: its `?lang=`, then its `Accept-Language`.
pub fn choose_for_request(
    plugin: &LoadedPlugin,
    query: &LangQuery,
    headers: &HeaderMap,
) -> Result<String, LangError> {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    choose(plugin, query.lang.as_deref(), accept)
}

/// The headers of an answer in `lang` that depends on `Accept-Language`.
pub fn language_headers(lang: &str) -> [(HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_LANGUAGE,
            HeaderValue::from_str(lang).unwrap_or(HeaderValue::from_static(ENGLISH)),
        ),
        (header::VARY, HeaderValue::from_static("Accept-Language")),
    ]
}

/// The catalog of `plugin` for `lang`; `None` for English, a language it does not ship, or a
/// catalog that does not parse (logged).
pub fn catalog(plugin: &LoadedPlugin, lang: &str) -> Option<Catalog> {
    let source = plugin.manifest.locales.get(lang)?;
    match Catalog::parse(lang, source) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(plugin = %plugin.manifest.id, error = %e, "translations ignored, English shown");
            None
        }
    }
}

/// The plugin's configuration schema in `lang`.
pub fn schema_in(plugin: &LoadedPlugin, lang: &str) -> Value {
    match catalog(plugin, lang) {
        Some(c) => api::localize_schema(plugin.schema.json(), &c),
        None => plugin.schema.json().clone(),
    }
}

/// A test report of `plugin` in `lang`.
pub fn report_in(plugin: &LoadedPlugin, report: TestReport, lang: &str) -> TestReport {
    match catalog(plugin, lang) {
        Some(c) => api::localize_report(&report, &c),
        None => report,
    }
}

/// Localized schemas and form models, built once per loaded plugin and language.
#[derive(Debug, Default)]
pub struct LocalizedViews(RwLock<HashMap<(usize, String), Arc<PluginViews>>>);

impl LocalizedViews {
    /// The views of `plugin` (whose cache key is `key`) in `lang`, which is not English.
    pub fn get(&self, key: usize, plugin: &LoadedPlugin, lang: &str) -> Arc<PluginViews> {
        let k = (key, lang.to_owned());
        if let Some(v) = self.0.read().ok().and_then(|m| m.get(&k).cloned()) {
            return v;
        }
        let json = schema_in(plugin, lang);
        let form = match ConfigSchema::new(json.clone()) {
            Ok(schema) => FormModel::new(&schema),
            // Translation only replaces strings; should the result not compile, the form
            // stays English rather than failing.
            Err(_) => FormModel::new(&plugin.schema),
        };
        let views = Arc::new(PluginViews {
            schema: Bytes::from(serde_json::to_vec_pretty(&json).unwrap_or_default()),
            form: Arc::new(form),
        });
        if let Ok(mut m) = self.0.write() {
            m.insert(k, views.clone());
        }
        views
    }
}

/// How complete one language of a plugin is.
#[derive(Debug, serde::Serialize)]
pub struct Completeness {
    pub plugin: String,
    pub lang: String,
    /// Texts of the schema (titles, descriptions, choices).
    pub texts: usize,
    /// Messages the catalog defines (test steps and details included).
    pub messages: usize,
    /// Texts shown in English for want of a translation.
    pub missing: Vec<Entry>,
    /// Catalog messages named like a field the schema does not have.
    pub unknown_fields: Vec<String>,
}

/// Why a completeness check cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("plugin `{plugin}` has no `{lang}` translations (it ships: {available}); add locales/{lang}.ftl and list it in Plugin::LOCALES")]
    NoCatalog {
        plugin: String,
        lang: String,
        available: String,
    },
    #[error("plugin `{plugin}`: {source}")]
    Catalog {
        plugin: String,
        source: CatalogError,
    },
}

/// Checks the `lang` catalog of `plugin` against its schema. Test-step names and messages
/// only appear when a test runs, so they are counted, not checked, here (plugins check them in
/// their own tests with `testing::assert_report_translated`).
pub fn check(plugin: &LoadedPlugin, lang: &str) -> Result<Completeness, CheckError> {
    let id = plugin.manifest.id.clone();
    let source = plugin
        .manifest
        .locales
        .get(lang)
        .ok_or_else(|| CheckError::NoCatalog {
            plugin: id.clone(),
            lang: lang.to_owned(),
            available: languages(plugin).join(", "),
        })?;
    let catalog = Catalog::parse(lang, source).map_err(|source| CheckError::Catalog {
        plugin: id.clone(),
        source,
    })?;
    let schema = plugin.schema.json();
    Ok(Completeness {
        plugin: id,
        lang: lang.to_owned(),
        texts: api::schema_entries(schema).len(),
        messages: source
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()) && l.contains('='))
            .count(),
        missing: api::missing_in_schema(schema, &catalog),
        unknown_fields: api::unknown_fields(schema, source),
    })
}

/// The missing texts as Fluent a translator completes: each message with its English text.
pub fn template(missing: &[Entry]) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for e in missing {
        let text = e.english.replace('\n', " ");
        match &e.attr {
            None => {
                out.push_str(&format!("{} = {text}\n", e.id));
                current = Some(&e.id);
            }
            Some(attr) => {
                if current != Some(e.id.as_str()) {
                    out.push_str(&format!("# add under `{}`:\n", e.id));
                    current = Some(&e.id);
                }
                out.push_str(&format!("    .{attr} = {text}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_language_wins_and_unknown_ones_fall_back_to_english() {
        let avail = ["en", "fr"];
        let c = |e, a| choose_among(&avail, e, a).unwrap();
        assert_eq!(c(Some("fr"), Some("en")), "fr");
        assert_eq!(c(Some("en"), Some("fr")), "en");
        assert_eq!(c(None, Some("fr-FR,fr;q=0.9")), "fr");
        assert_eq!(c(Some("de"), Some("fr")), "en");
        assert_eq!(c(None, None), "en");
        assert_eq!(c(Some(""), Some("fr")), "fr");
        let e = choose_among(&avail, Some("fr;drop"), None).unwrap_err();
        assert!(e.to_string().contains("`lang`"));
    }

    #[test]
    fn template_groups_attributes_under_their_message() {
        let e = |id: &str, attr: Option<&str>, english: &str| Entry {
            id: id.into(),
            attr: attr.map(Into::into),
            english: english.into(),
        };
        let t = template(&[
            e("api_key", None, "API key"),
            e("api_key", Some("description"), "The key."),
            e("timeout", Some("description"), "How long\nto wait."),
        ]);
        assert_eq!(
            t,
            "api_key = API key\n    .description = The key.\n# add under `timeout`:\n    .description = How long to wait.\n"
        );
    }
}
