//! Plugins in several languages.
//!
//! English is written once, in Rust: doc comments give the schema's titles and descriptions,
//! test routines name their steps and write their details. Every other language is a
//! [Fluent](https://projectfluent.org/) file a translator edits without reading Rust,
//! `locales/<lang>.ftl`, embedded in the plugin with `include_str!` through
//! [`crate::Plugin::LOCALES`] and carried to the host in [`crate::Manifest::locales`] (a JSON
//! field with a serde default: the boundary's layout is unchanged and a plugin without
//! catalogs still loads, in English).
//!
//! Translation is a pass over the English output, keyed by *names*, never by position, so it
//! survives any change in how schemas are generated:
//!
//! | English comes from | Fluent message |
//! |---|---|
//! | the configuration's title and description | `config-schema`, `.description` |
//! | field `api_key`: title, description | `api_key`, `.description` |
//! | choice `production` of field `environment` | `environment` `.choice-production` (and `.choice-production-description`) |
//! | test step "get token" | `step-get-token` |
//! | a detail or summary written with [`Text::localized`] | its own id, with its arguments as Fluent variables |
//!
//! A message that is missing falls back to English, never to an error; [`missing_in_schema`]
//! and [`missing_in_report`] list what is missing so that a check can report it.

use crate::report::{Step, TestReport};
use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use unic_langid::LanguageIdentifier;

/// Message id of the configuration schema's own title (its attribute `description` holds the
/// description). Hyphenated so it can never be a field's name.
pub const SCHEMA_MESSAGE: &str = "config-schema";

/// A text of a test report in English, with the Fluent message that translates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    pub english: String,
    pub message: Option<Message>,
}

impl Text {
    /// English `english`, translated by the message `id` (whose variables are given with
    /// [`Text::arg`]).
    pub fn localized(id: &str, english: impl Into<String>) -> Self {
        Text {
            english: english.into(),
            message: Some(Message {
                id: id.to_owned(),
                args: Map::new(),
            }),
        }
    }

    /// Sets the Fluent variable `$name` of the message.
    pub fn arg(mut self, name: &str, value: impl Into<Value>) -> Self {
        if let Some(m) = self.message.as_mut() {
            m.args.insert(name.to_owned(), value.into());
        }
        self
    }
}

impl From<String> for Text {
    fn from(english: String) -> Self {
        Text {
            english,
            message: None,
        }
    }
}

impl From<&str> for Text {
    fn from(english: &str) -> Self {
        Text::from(english.to_owned())
    }
}

impl From<&String> for Text {
    fn from(english: &String) -> Self {
        Text::from(english.clone())
    }
}

/// A Fluent message id and the values of its variables, as a report carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub args: Map<String, Value>,
}

/// Why a catalog cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("{0:?} is not a language tag (expected e.g. `fr` or `fr-CA`)")]
    BadLanguage(String),
    #[error(
        "the `{lang}` catalog is not valid Fluent at line {line}: {reason}; fix locales/{lang}.ftl"
    )]
    Syntax {
        lang: String,
        line: usize,
        reason: String,
    },
    #[error("the `{lang}` catalog defines `{id}` twice; keep one in locales/{lang}.ftl")]
    Duplicate { lang: String, id: String },
}

/// One language's messages of one plugin.
pub struct Catalog {
    lang: String,
    bundle: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Parses the Fluent `source` of language `lang`. Errors name the line.
    pub fn parse(lang: &str, source: &str) -> Result<Catalog, CatalogError> {
        let id: LanguageIdentifier = lang
            .parse()
            .map_err(|_| CatalogError::BadLanguage(lang.to_owned()))?;
        let resource = FluentResource::try_new(source.to_owned()).map_err(|(_, errors)| {
            let first = errors.first();
            let at = first.map(|e| e.pos.start).unwrap_or(0);
            CatalogError::Syntax {
                lang: lang.to_owned(),
                line: source.get(..at).unwrap_or(source).lines().count().max(1),
                reason: first.map(ToString::to_string).unwrap_or_default(),
            }
        })?;
        let mut bundle = FluentBundle::new(vec![id]);
        // Unicode isolation marks would end up in JSON schemas and terminals.
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).map_err(|errors| {
            let id = errors
                .iter()
                .find_map(|e| match e {
                    fluent_bundle::FluentError::Overriding { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            CatalogError::Duplicate {
                lang: lang.to_owned(),
                id,
            }
        })?;
        Ok(Catalog {
            lang: lang.to_owned(),
            bundle,
        })
    }

    /// The catalog's language tag.
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// The text of message `id` (or of its attribute `attr`), with `args` as its variables;
    /// `None` when the catalog lacks it or it does not resolve cleanly.
    pub fn text(&self, id: &str, attr: Option<&str>, args: &Map<String, Value>) -> Option<String> {
        let message = self.bundle.get_message(id)?;
        let pattern = match attr {
            Some(a) => message.get_attribute(a)?.value(),
            None => message.value()?,
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            let v = match value {
                Value::String(s) => FluentValue::from(s.clone()),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => FluentValue::from(i),
                    None => FluentValue::from(n.as_f64().unwrap_or_default()),
                },
                other => FluentValue::from(other.to_string()),
            };
            fluent_args.set(name.clone(), v);
        }
        let mut errors = Vec::new();
        let text = self
            .bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors);
        errors.is_empty().then(|| text.into_owned())
    }
}

/// A text the English output has, and where its translation lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Fluent message id.
    pub id: String,
    /// Attribute of the message, e.g. `description`; `None` for the message's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attr: Option<String>,
    pub english: String,
}

impl Entry {
    /// The entry as Fluent: `id`, or `id.attr`.
    pub fn key(&self) -> String {
        match &self.attr {
            Some(a) => format!("{}.{a}", self.id),
            None => self.id.clone(),
        }
    }
}

/// The attribute naming choice `value` of a field: `choice-<value>`, characters Fluent does
/// not allow in names becoming `-`.
pub fn choice_attr(value: &Value) -> String {
    let raw = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let slug: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("choice-{slug}")
}

/// The message id of a test step: `step-` and its English name in lowercase, words joined by
/// `-` ("get token" → `step-get-token`).
pub fn step_id(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("step-{}", words.join("-"))
}

/// Every translatable text of a configuration schema, in document order.
pub fn schema_entries(schema: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut push = |id: &str, attr: Option<String>, english: Option<&Value>| {
        if let Some(english) = english.and_then(Value::as_str) {
            out.push(Entry {
                id: id.to_owned(),
                attr,
                english: english.to_owned(),
            });
        }
    };
    push(SCHEMA_MESSAGE, None, schema.get("title"));
    push(
        SCHEMA_MESSAGE,
        Some("description".into()),
        schema.get("description"),
    );
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (name, prop) in props {
        push(name, None, prop.get("title"));
        push(name, Some("description".into()), prop.get("description"));
        for choice in choices(prop) {
            let Some(value) = choice.get("const") else {
                continue;
            };
            let attr = choice_attr(value);
            push(name, Some(attr.clone()), choice.get("title"));
            push(
                name,
                Some(format!("{attr}-description")),
                choice.get("description"),
            );
        }
    }
    out
}

/// The `{const, title}` alternatives of a property, wherever the generator put them.
fn choices(prop: &Value) -> impl Iterator<Item = &Value> {
    ["oneOf", "anyOf"]
        .into_iter()
        .filter_map(|k| prop.get(k).and_then(Value::as_array))
        .flatten()
        .filter(|c| c.get("const").is_some())
}

fn choices_mut(prop: &mut Value) -> impl Iterator<Item = &mut Value> {
    let Some(obj) = prop.as_object_mut() else {
        return Vec::new().into_iter();
    };
    obj.iter_mut()
        .filter(|(k, _)| *k == "oneOf" || *k == "anyOf")
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
        .filter(|c| c.get("const").is_some())
        .collect::<Vec<_>>()
        .into_iter()
}

/// The schema with every text the catalog translates replaced; the others stay English.
pub fn localize_schema(schema: &Value, catalog: &Catalog) -> Value {
    let none = Map::new();
    let tr = |id: &str, attr: Option<&str>, target: &mut Value| {
        if target.is_string() {
            if let Some(text) = catalog.text(id, attr, &none) {
                *target = Value::String(text);
            }
        }
    };
    let mut out = schema.clone();
    if let Some(v) = out.get_mut("title") {
        tr(SCHEMA_MESSAGE, None, v);
    }
    if let Some(v) = out.get_mut("description") {
        tr(SCHEMA_MESSAGE, Some("description"), v);
    }
    if let Some(props) = out.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            if let Some(v) = prop.get_mut("title") {
                tr(name, None, v);
            }
            if let Some(v) = prop.get_mut("description") {
                tr(name, Some("description"), v);
            }
            for choice in choices_mut(prop) {
                let Some(attr) = choice.get("const").map(choice_attr) else {
                    continue;
                };
                if let Some(v) = choice.get_mut("title") {
                    tr(name, Some(&attr), v);
                }
                if let Some(v) = choice.get_mut("description") {
                    tr(name, Some(&format!("{attr}-description")), v);
                }
            }
        }
    }
    out
}

/// The texts of `schema` that `catalog` does not translate.
pub fn missing_in_schema(schema: &Value, catalog: &Catalog) -> Vec<Entry> {
    let none = Map::new();
    schema_entries(schema)
        .into_iter()
        .filter(|e| catalog.text(&e.id, e.attr.as_deref(), &none).is_none())
        .collect()
}

/// Messages of a Fluent `source` named like a field (no `-` in the id) that `schema` does not
/// have: most likely a typo, or a field that was renamed.
pub fn unknown_fields(schema: &Value, source: &str) -> Vec<String> {
    let props = schema.get("properties").and_then(Value::as_object);
    source
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim()))
        .filter(|id| !id.contains('-'))
        .filter(|id| !props.is_some_and(|p| p.contains_key(*id)))
        .map(str::to_owned)
        .collect()
}

/// The texts of a report: its steps' names and the details and summary that name a message.
pub fn report_entries(report: &TestReport) -> Vec<Entry> {
    let mut out = Vec::new();
    for step in &report.steps {
        out.push(Entry {
            id: step_id(&step.name),
            attr: None,
            english: step.name.clone(),
        });
        if let Some(m) = &step.message {
            out.push(Entry {
                id: m.id.clone(),
                attr: None,
                english: step.detail.clone(),
            });
        }
    }
    if let Some(m) = &report.summary_message {
        out.push(Entry {
            id: m.id.clone(),
            attr: None,
            english: report.summary.clone(),
        });
    }
    out
}

/// The texts of `report` that `catalog` does not translate (a message whose variables do not
/// resolve counts as missing).
pub fn missing_in_report(report: &TestReport, catalog: &Catalog) -> Vec<Entry> {
    let none = Map::new();
    let mut missing: Vec<Entry> = Vec::new();
    let mut check = |entry: Entry, args: &Map<String, Value>| {
        if catalog.text(&entry.id, None, args).is_none() && !missing.contains(&entry) {
            missing.push(entry);
        }
    };
    for step in &report.steps {
        check(
            Entry {
                id: step_id(&step.name),
                attr: None,
                english: step.name.clone(),
            },
            &none,
        );
        if let Some(m) = &step.message {
            check(
                Entry {
                    id: m.id.clone(),
                    attr: None,
                    english: step.detail.clone(),
                },
                &m.args,
            );
        }
    }
    if let Some(m) = &report.summary_message {
        check(
            Entry {
                id: m.id.clone(),
                attr: None,
                english: report.summary.clone(),
            },
            &m.args,
        );
    }
    missing
}

/// The report in the catalog's language: step names, the details and summary that name a
/// message; English wherever the catalog has no translation. The message ids stay, so the
/// result can be translated again.
pub fn localize_report(report: &TestReport, catalog: &Catalog) -> TestReport {
    let none = Map::new();
    let step_name = |s: &Step| {
        catalog
            .text(&step_id(&s.name), None, &none)
            .unwrap_or_else(|| s.name.clone())
    };
    let detail = |s: &Step| {
        s.message
            .as_ref()
            .and_then(|m| catalog.text(&m.id, None, &m.args))
            .unwrap_or_else(|| s.detail.clone())
    };
    let mut out = report.clone();
    // The summary repeats the first worst step, "name: detail" (see `TestReport::finish`).
    let worst = report.steps.iter().find(|s| {
        s.status == report.status && report.summary == format!("{}: {}", s.name, s.detail)
    });
    out.summary = match (&report.summary_message, worst) {
        (_, Some(step)) => format!("{}: {}", step_name(step), detail(step)),
        (Some(m), None) => catalog
            .text(&m.id, None, &m.args)
            .unwrap_or_else(|| report.summary.clone()),
        (None, None) => report.summary.clone(),
    };
    for (step, localized) in report.steps.iter().zip(out.steps.iter_mut()) {
        localized.name = step_name(step);
        localized.detail = detail(step);
    }
    out
}

/// The best of `available` languages for an HTTP `Accept-Language` value (RFC 9110 §12.5.4):
/// by quality, then order; a range matches a language of the same primary subtag
/// (`fr-CA` → `fr`). `None` when none matches (the caller then uses English).
pub fn negotiate<'a>(accept_language: &str, available: &[&'a str]) -> Option<&'a str> {
    let mut ranges: Vec<(f32, usize, &str)> = accept_language
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!range.is_empty() && q > 0.0).then_some((q, i, range))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.iter().find_map(|(_, _, range)| {
        if *range == "*" {
            return None;
        }
        let primary = range.split('-').next().unwrap_or(range);
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(range))
            .or_else(|| {
                available.iter().find(|a| {
                    a.split('-')
                        .next()
                        .is_some_and(|p| p.eq_ignore_ascii_case(primary))
                })
            })
            .copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, Status};
    use serde_json::json;

    const FR: &str = "\
config-schema = Paramètres
api_key = Clé d'API
    .description = La clé fournie par le service.
environment = Environnement
    .choice-production = Production
    .choice-sandbox = Bac à sable
step-get-token = Obtenir un jeton
token-ok = Jeton valable { $seconds } secondes
";

    fn schema() -> Value {
        json!({
            "title": "Config",
            "description": "Settings.",
            "type": "object",
            "properties": {
                "api_key": {"type": "string", "title": "API key", "description": "The key."},
                "environment": {"type": "string", "title": "Environment", "oneOf": [
                    {"const": "sandbox", "title": "Sandbox"},
                    {"const": "production", "title": "Production"}
                ]},
                "timeout": {"type": "integer", "title": "Timeout"}
            }
        })
    }

    #[test]
    fn schema_is_translated_by_name_and_falls_back_to_english() {
        let fr = Catalog::parse("fr", FR).unwrap();
        let s = localize_schema(&schema(), &fr);
        assert_eq!(s["title"], "Paramètres");
        assert_eq!(s["description"], "Settings.");
        assert_eq!(s["properties"]["api_key"]["title"], "Clé d'API");
        assert_eq!(
            s["properties"]["api_key"]["description"],
            "La clé fournie par le service."
        );
        assert_eq!(
            s["properties"]["environment"]["oneOf"][0]["title"],
            "Bac à sable"
        );
        assert_eq!(s["properties"]["timeout"]["title"], "Timeout");
        let missing: Vec<String> = missing_in_schema(&schema(), &fr)
            .iter()
            .map(Entry::key)
            .collect();
        assert_eq!(missing, ["config-schema.description", "timeout"]);
    }

    #[test]
    fn choices_are_found_by_value_not_position() {
        let fr = Catalog::parse("fr", FR).unwrap();
        let mut reordered = schema();
        reordered["properties"]["environment"] = json!({"type": "string", "title": "Environment",
            "anyOf": [{"const": "production", "title": "Production"},
                      {"const": "sandbox", "title": "Sandbox"}]});
        let s = localize_schema(&reordered, &fr);
        assert_eq!(
            s["properties"]["environment"]["anyOf"][1]["title"],
            "Bac à sable"
        );
    }

    #[test]
    fn reports_are_translated_with_arguments() {
        let fr = Catalog::parse("fr", FR).unwrap();
        let mut r = TestReport::new();
        r.step("get token", || {
            Ok(Check::ok(
                (),
                Text::localized("token-ok", "token valid for 3600 seconds").arg("seconds", 3600),
            ))
        });
        r.step::<()>("reach API", || Err("down".into()));
        let r = r.finish("all good");
        let l = localize_report(&r, &fr);
        assert_eq!(l.steps[0].name, "Obtenir un jeton");
        assert_eq!(l.steps[0].detail, "Jeton valable 3600 secondes");
        assert_eq!(l.steps[1].name, "reach API");
        assert_eq!(l.status, Status::Failed);
        assert_eq!(l.summary, "reach API: down");
        let missing: Vec<String> = missing_in_report(&r, &fr).iter().map(Entry::key).collect();
        assert_eq!(missing, ["step-reach-api"]);
    }

    #[test]
    fn a_message_with_a_missing_variable_falls_back_to_english() {
        let fr = Catalog::parse("fr", FR).unwrap();
        let mut r = TestReport::new();
        r.step("get token", || {
            Ok(Check::ok((), Text::localized("token-ok", "token valid")))
        });
        let l = localize_report(&r.finish("ok"), &fr);
        assert_eq!(l.steps[0].detail, "token valid");
    }

    #[test]
    fn bad_catalogs_name_the_line() {
        let e = Catalog::parse("fr", "a = b\nnot fluent\n").unwrap_err();
        assert!(matches!(e, CatalogError::Syntax { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("locales/fr.ftl"));
        assert!(matches!(
            Catalog::parse("fr", "a = b\na = c\n").unwrap_err(),
            CatalogError::Duplicate { ref id, .. } if id == "a"
        ));
        assert!(matches!(
            Catalog::parse("not a tag!", "").unwrap_err(),
            CatalogError::BadLanguage(_)
        ));
    }

    #[test]
    fn ids_are_derived_from_names() {
        assert_eq!(step_id("get token"), "step-get-token");
        assert_eq!(step_id("reach EWS"), "step-reach-ews");
        assert_eq!(step_id("self-check"), "step-self-check");
        assert_eq!(
            choice_attr(&json!("Exchange2010_SP1")),
            "choice-Exchange2010_SP1"
        );
        assert_eq!(choice_attr(&json!(3)), "choice-3");
    }

    #[test]
    fn accept_language_is_negotiated() {
        let avail = ["en", "fr"];
        assert_eq!(negotiate("fr-FR,fr;q=0.9,en;q=0.8", &avail), Some("fr"));
        assert_eq!(negotiate("de, en;q=0.5, fr;q=0.7", &avail), Some("fr"));
        assert_eq!(negotiate("de", &avail), None);
        assert_eq!(negotiate("fr;q=0, en", &avail), Some("en"));
        assert_eq!(negotiate("*", &avail), None);
        assert_eq!(negotiate("", &avail), None);
    }
}
