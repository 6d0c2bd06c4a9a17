//! Configuration conventions: the [`Secret`] type and schema generation.
//!
//! A plugin's configuration is a plain Rust struct. [`config_schema`] turns it into a
//! draft-07 JSON Schema that stock form generators render well:
//! - doc comments give `title` (first paragraph) and `description` (the rest);
//! - every subschema is inlined (no `$ref`), so each field can be validated on its own;
//! - `Option<T>` means "not required", never "may be null";
//! - properties get `x-order` from their declaration order, unless they set one;
//! - [`Secret`] fields are `writeOnly` with `format: password`, which is how the host knows to
//!   encrypt them and never show them (and what RJSF renders as a password input; JSON Forms
//!   needs `options.format: "password"` in its UI schema, see `docs/writing-a-plugin.md`);
//! - every property and every labelled choice (`oneOf` of `const` + `title`) has a `type`:
//!   RJSF renders a choice without one as "Unsupported field schema";
//! - integer bounds are `minimum`/`maximum`, never schemars' `uint32`-style formats, which no
//!   stock validator knows;
//! - URL fields (`url`, `*_url`, `*_uri`) carry `format: uri`;
//! - conditional fields written as `dependencies` with one `const`-tagged `oneOf` branch per
//!   value of a switch become `allOf` of `if`/`then`, so that a stock draft-07 validator given
//!   the raw document reaches the host's verdict: an absent switch counts as its `default`
//!   (the host applies defaults, ajv does not), and only the branch that applies reports errors;
//! - the `x-` keywords are declared in a published vocabulary ([`VOCABULARY_ID`],
//!   `schemas/passerelle-vocabulary.json`) that each schema names in `x-vocabulary`, so ajv in
//!   strict mode accepts them once the vocabulary is loaded.

use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Display;
use std::ops::RangeInclusive;

/// A secret value (password, token, client secret). Its `Debug` never shows the value, and it
/// cannot be serialised back: read it with [`Secret::expose`] at the moment of use.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret's value. Do not log it: the host redacts known secrets, but only those.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the secret is empty or only spaces: a field left blank in a form.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "password",
            "writeOnly": true
        })
    }
}

/// Whether a property schema describes a secret.
pub fn is_secret(property: &Value) -> bool {
    property.get("writeOnly") == Some(&Value::Bool(true))
        || property.get("format").and_then(Value::as_str) == Some("password")
}

/// The `$id` of the vocabulary that declares the `x-` keywords of configuration schemas,
/// published as `schemas/passerelle-vocabulary.json`; every schema names it in `x-vocabulary`.
pub const VOCABULARY_ID: &str = "urn:passerelle:form-vocabulary:1";

/// Every `x-` keyword a configuration schema may carry, each declared in the vocabulary:
/// `x-group` (section), `x-order` (position), `x-initial` (value of a new instance) on a
/// property, and `x-vocabulary` at the root.
pub const FORM_KEYWORDS: [&str; 4] = ["x-group", "x-order", "x-initial", "x-vocabulary"];

/// The JSON Schema of a configuration type, following the conventions of this module.
pub fn config_schema<C: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| {
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<C>().to_value();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (index, (name, prop)) in props.iter_mut().enumerate() {
            strip_null(prop);
            split_title(prop);
            if let Some(Value::Array(choices)) = prop.get_mut("oneOf") {
                choices.iter_mut().for_each(split_title);
            }
            type_choices(prop);
            integer_bounds(prop);
            url_format(name, prop);
            if let Some(obj) = prop.as_object_mut() {
                obj.entry("x-order").or_insert(Value::from(index));
            }
        }
    }
    conditionals_as_if_then(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("x-vocabulary".into(), Value::from(VOCABULARY_ID));
    }
    schema
}

/// A labelled choice without a `type` is "Unsupported field schema" to RJSF: give each choice
/// the type of its `const`, and the field the type its choices share.
fn type_choices(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    let mut types = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(choices)) = obj.get_mut(key) {
            for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
                let Some(ty) = choice.get("const").and_then(json_type) else {
                    continue;
                };
                choice.entry("type").or_insert(Value::from(ty));
                if let Some(t) = choice.get("type").and_then(Value::as_str) {
                    types.push(t.to_owned());
                }
            }
        }
    }
    if let Some(first) = types.first() {
        if !obj.contains_key("type") && types.iter().all(|t| t == first) {
            obj.insert("type".into(), Value::from(first.as_str()));
        }
    }
}

/// The JSON Schema type of a constant.
fn json_type(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(_) => Some("string"),
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        _ => None,
    }
}

/// schemars writes the Rust integer type as a `format` (`uint32`, `int64`, …) that stock
/// validators do not know (ajv in strict mode refuses it); the same limits as `minimum` and
/// `maximum` say it to every tool. Bounds the plugin set stay.
fn integer_bounds(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    let (min, max): (i128, i128) = match obj.get("format").and_then(Value::as_str) {
        Some("uint8") => (0, u8::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        Some("uint64") | Some("uint") => (0, u64::MAX.into()),
        Some("int8") => (i8::MIN.into(), i8::MAX.into()),
        Some("int16") => (i16::MIN.into(), i16::MAX.into()),
        Some("int32") => (i32::MIN.into(), i32::MAX.into()),
        Some("int64") | Some("int") => (i64::MIN.into(), i64::MAX.into()),
        _ => return,
    };
    obj.remove("format");
    let number = |n: i128| {
        i64::try_from(n)
            .map(Value::from)
            .or_else(|_| u64::try_from(n).map(Value::from))
            .unwrap_or(Value::Null)
    };
    obj.entry("minimum").or_insert_with(|| number(min));
    obj.entry("maximum").or_insert_with(|| number(max));
}

/// Whether a field name says it holds a URL.
fn is_url_name(name: &str) -> bool {
    name == "url" || name == "uri" || name.ends_with("_url") || name.ends_with("_uri")
}

/// URL fields get `format: uri` (an absolute URI, RFC 3986), which validators check and some
/// forms render as a URL input. A field whose default is empty (meaning "the provider's
/// address") keeps no format: an empty string is not a URI.
fn url_format(name: &str, prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if !is_url_name(name)
        || obj.get("type").and_then(Value::as_str) != Some("string")
        || obj.contains_key("format")
        || obj.get("default").and_then(Value::as_str) == Some("")
    {
        return;
    }
    obj.insert("format".into(), Value::from("uri"));
}

/// One conditional rule: while the switch `tag` is `value`, the `required` fields must be
/// set and the `shown` fields (required ones included) apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditional {
    pub tag: String,
    pub value: Value,
    pub required: Vec<String>,
    pub shown: Vec<String>,
}

/// The conditional rules of a configuration schema, in either shape: `allOf` of `if`/`then`
/// (what [`config_schema`] writes) or `dependencies` with `const`-tagged `oneOf` branches
/// (what plugins built against plugin API 1.x before it wrote, and what plugin authors write).
pub fn conditionals(root: &Value) -> Vec<Conditional> {
    let mut out = Vec::new();
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let keys = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if let Some(deps) = root.get("dependencies").and_then(Value::as_object) {
        for (tag, dep) in deps {
            let Some(branches) = dep.get("oneOf").and_then(Value::as_array) else {
                continue;
            };
            for branch in branches {
                let Some(value) = branch
                    .get("properties")
                    .and_then(|p| p.get(tag))
                    .and_then(|p| p.get("const"))
                else {
                    continue;
                };
                let required = names(branch.get("required"));
                let mut shown = keys(branch.get("properties"));
                shown.retain(|n| n != tag);
                merge(&mut shown, &required);
                out.push(Conditional {
                    tag: tag.clone(),
                    value: value.clone(),
                    required,
                    shown,
                });
            }
        }
    }
    for rule in root
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(cond) = rule
            .get("if")
            .and_then(|i| i.get("properties"))
            .and_then(Value::as_object)
            .filter(|p| p.len() == 1)
        else {
            continue;
        };
        let Some((tag, value)) = cond
            .iter()
            .next()
            .and_then(|(tag, s)| Some((tag.clone(), s.get("const")?.clone())))
        else {
            continue;
        };
        let then = rule.get("then");
        let required = names(then.and_then(|t| t.get("required")));
        let mut shown = keys(then.and_then(|t| t.get("properties")));
        merge(&mut shown, &required);
        out.push(Conditional {
            tag,
            value,
            required,
            shown,
        });
    }
    out
}

fn merge(into: &mut Vec<String>, more: &[String]) {
    for name in more {
        if !into.contains(name) {
            into.push(name.clone());
        }
    }
}

/// Rewrites `dependencies` with `const`-tagged `oneOf` branches as `allOf` of `if`/`then`.
/// `dependencies` apply only when the switch is present, so a stock validator accepted `{}`
/// that the host (which applies the switch's default first) refused, and its `oneOf` reported
/// the errors of the branches that do not apply. The branch of the default value applies when
/// the switch is absent (its `if` does not require the switch); the others need it present.
fn conditionals_as_if_then(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let Some(Value::Object(deps)) = obj.get_mut("dependencies") else {
        return;
    };
    let rules = conditionals(&serde_json::json!({ "dependencies": deps }));
    deps.retain(|tag, _| !rules.iter().any(|r| &r.tag == tag));
    if deps.is_empty() {
        obj.remove("dependencies");
    }
    if rules.is_empty() {
        return;
    }
    let defaults: Vec<Option<Value>> = rules
        .iter()
        .map(|r| {
            obj.get("properties")
                .and_then(|p| p.get(&r.tag))
                .and_then(|p| p.get("default"))
                .cloned()
        })
        .collect();
    let all_of = obj
        .entry("allOf")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(all_of) = all_of else {
        return;
    };
    for (rule, default) in rules.into_iter().zip(defaults) {
        if rule.shown.is_empty() {
            continue;
        }
        let mut condition = serde_json::json!({
            "properties": { (rule.tag.clone()): { "const": rule.value } }
        });
        if default.as_ref() != Some(&rule.value) {
            condition["required"] = serde_json::json!([rule.tag]);
        }
        let mut then = serde_json::json!({
            "properties": rule
                .shown
                .iter()
                .map(|n| (n.clone(), serde_json::json!({})))
                .collect::<serde_json::Map<_, _>>()
        });
        if !rule.required.is_empty() {
            then["required"] = serde_json::json!(rule.required);
        }
        all_of.push(serde_json::json!({ "if": condition, "then": then }));
    }
}

/// Doc comments arrive as one `description`; its first paragraph is the field's title and
/// the rest its description. A single paragraph is a title only.
fn split_title(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if obj.contains_key("title") {
        return;
    }
    let Some(doc) = obj
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    match doc.split_once("\n\n") {
        Some((title, rest)) => {
            obj.insert("title".into(), Value::from(unwrap_lines(title)));
            obj.insert("description".into(), Value::from(unwrap_lines(rest)));
        }
        None => {
            obj.insert("title".into(), Value::from(unwrap_lines(&doc)));
            obj.remove("description");
        }
    }
}

/// Joins the lines of each paragraph: doc comments wrap at 100 columns, forms should not.
fn unwrap_lines(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `Option<T>` comes out of schemars as "T or null"; a form field is either set or absent.
fn strip_null(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = obj.get_mut(key) {
            alts.retain(|a| {
                a.get("type").and_then(Value::as_str) != Some("null")
                    && a.get("const") != Some(&Value::Null)
            });
            if key == "anyOf" && alts.len() == 1 {
                let only = alts.remove(0);
                obj.remove(key);
                if let Value::Object(inner) = only {
                    for (k, v) in inner {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
}

/// Checks a bounded number of a configuration, as a plugin's `validate` does for each such
/// field (the schema's `minimum`/`maximum` say the same to the form; this says it to a value
/// that reached the plugin some other way). `None` when `value` is within `bounds`; otherwise
/// the error names the field, the bounds and the value:
/// "the timeout must be between 5 and 120 seconds, not 300", or "… must be at most 60
/// seconds, not 90" when the bounds start at zero.
///
/// `what` starts the message; `unit` follows the bounds ("seconds", or "" for a count).
pub fn check_range<T>(
    field: &str,
    what: &str,
    value: T,
    bounds: RangeInclusive<T>,
    unit: &str,
) -> Option<crate::PluginError>
where
    T: PartialOrd + Display + Default,
{
    if bounds.contains(&value) {
        return None;
    }
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let (min, max) = bounds.into_inner();
    let message = if min == T::default() {
        format!("{what} must be at most {max}{unit}, not {value}")
    } else {
        format!("{what} must be between {min} and {max}{unit}, not {value}")
    };
    Some(crate::PluginError::config(field, message))
}

/// Whether a configured address is an absolute `http://` or `https://` URL (scheme in any
/// case, surrounding spaces ignored), the check every plugin makes of its base URLs before
/// sending anything: the host's HTTP service refuses other schemes, with a message that does
/// not name the field.
pub fn is_http_url(url: &str) -> bool {
    let url = url.trim();
    ["http://", "https://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && url.len() > scheme.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        /// URL
        ///
        /// Where the service lives.
        #[serde(default = "default_url")]
        url: String,
        /// Token
        ///
        /// The API token.
        token: Option<Secret>,
        /// Mode
        ///
        /// How to authenticate.
        #[serde(default)]
        mode: Mode,
    }

    fn default_url() -> String {
        "https://example.org".into()
    }

    #[derive(Deserialize, serde::Serialize, JsonSchema, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        /// API key
        #[default]
        Key,
        /// OAuth2
        Oauth,
    }

    #[test]
    fn schema_follows_form_conventions() {
        let s = config_schema::<Demo>();
        let props = &s["properties"];
        assert_eq!(props["url"]["title"], "URL");
        assert_eq!(props["url"]["description"], "Where the service lives.");
        assert_eq!(props["url"]["default"], "https://example.org");
        assert_eq!(props["url"]["x-order"], 0);
        assert_eq!(props["token"]["type"], "string");
        assert_eq!(props["token"]["writeOnly"], true);
        assert_eq!(props["token"]["format"], "password");
        assert!(is_secret(&props["token"]));
        assert_eq!(props["mode"]["oneOf"][0]["const"], "key");
        assert_eq!(props["mode"]["oneOf"][0]["title"], "API key");
        assert_eq!(s["additionalProperties"], false);
        assert!(!s.to_string().contains("$ref"));
        let required = s.get("required").cloned().unwrap_or_default();
        assert!(!required.to_string().contains("token"));
    }

    #[derive(Deserialize, JsonSchema)]
    #[schemars(extend("dependencies" = {
        "mode": { "oneOf": [
            { "properties": { "mode": { "const": "key" } }, "required": ["token"] },
            { "properties": { "mode": { "const": "oauth" }, "token_url": {} }, "required": ["client_id"] }
        ] }
    }))]
    #[allow(dead_code)]
    struct Switched {
        /// Mode
        #[serde(default)]
        mode: Mode,
        /// Token
        token: Option<Secret>,
        /// Client id
        client_id: Option<String>,
        /// Token URL
        token_url: Option<String>,
        /// Timeout
        #[serde(default)]
        timeout_secs: u32,
        /// Interval
        #[serde(default)]
        interval: u64,
    }

    #[test]
    fn conditionals_become_if_then_where_the_default_branch_applies_to_an_absent_switch() {
        let s = config_schema::<Switched>();
        assert!(s.get("dependencies").is_none(), "{s:#}");
        let rules = &s["allOf"];
        // Default branch: no `required` on the switch, so `{}` gets it.
        assert_eq!(
            rules[0]["if"],
            serde_json::json!({"properties": {"mode": {"const": "key"}}})
        );
        assert_eq!(rules[0]["then"]["required"], serde_json::json!(["token"]));
        assert_eq!(rules[1]["if"]["required"], serde_json::json!(["mode"]));
        assert_eq!(
            rules[1]["then"]["required"],
            serde_json::json!(["client_id"])
        );
        assert!(rules[1]["then"]["properties"].get("token_url").is_some());
        // Read back the same rules, whichever shape.
        let back = conditionals(&s);
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].tag, "mode");
        assert_eq!(back[1].value, "oauth");
        assert_eq!(back[1].required, vec!["client_id".to_owned()]);
        assert!(back[1].shown.contains(&"token_url".to_owned()));
        assert_eq!(s["x-vocabulary"], VOCABULARY_ID);
    }

    #[test]
    fn choices_urls_and_integers_speak_standard_json_schema() {
        let s = config_schema::<Switched>();
        let props = &s["properties"];
        assert_eq!(props["mode"]["type"], "string");
        assert_eq!(props["mode"]["oneOf"][1]["type"], "string");
        assert_eq!(props["token_url"]["format"], "uri");
        assert!(props["client_id"].get("format").is_none());
        assert!(props["timeout_secs"].get("format").is_none());
        assert_eq!(props["timeout_secs"]["minimum"], 0);
        assert_eq!(props["timeout_secs"]["maximum"], u64::from(u32::MAX));
        assert_eq!(props["interval"]["maximum"], u64::MAX);
        assert!(!s.to_string().contains("uint"), "{s:#}");
    }

    #[test]
    fn every_form_keyword_is_declared_in_the_published_vocabulary() {
        let vocabulary: Value =
            serde_json::from_str(include_str!("../../schemas/passerelle-vocabulary.json")).unwrap();
        assert_eq!(vocabulary["$id"], VOCABULARY_ID);
        for keyword in FORM_KEYWORDS {
            assert!(
                vocabulary["properties"].get(keyword).is_some(),
                "{keyword} is not declared in schemas/passerelle-vocabulary.json"
            );
        }
        let s = config_schema::<Demo>().to_string();
        for used in s.match_indices("\"x-").map(|(i, _)| &s[i + 1..]) {
            let keyword = used.split('"').next().unwrap();
            assert!(FORM_KEYWORDS.contains(&keyword), "undeclared {keyword}");
        }
    }

    #[test]
    fn http_urls_are_recognised_whatever_the_case_of_their_scheme() {
        assert!(is_http_url("https://api.example.org"));
        assert!(is_http_url(" HTTP://localhost:8080 "));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("api.example.org"));
        assert!(!is_http_url("ftp://example.org"));
        assert!(!is_http_url("é"));
        assert!(Secret::new(" \t").is_blank());
        assert!(!Secret::new(" k ").is_blank());
    }

    #[test]
    fn secret_debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("canary")), "Secret(***)");
    }

    #[test]
    fn bounds_are_checked_and_named() {
        assert!(check_range("timeout_secs", "the timeout", 30u64, 5..=120, "seconds").is_none());
        let e = check_range("timeout_secs", "the timeout", 300u64, 5..=120, "seconds").unwrap();
        assert_eq!(e.field.as_deref(), Some("timeout_secs"));
        assert_eq!(
            e.message,
            "the timeout must be between 5 and 120 seconds, not 300"
        );
        let e = check_range("delay", "the delay", 90u32, 0..=60, "seconds").unwrap();
        assert_eq!(e.message, "the delay must be at most 60 seconds, not 90");
        let e = check_range("attempts", "the number of attempts", 0u32, 1..=5, "").unwrap();
        assert_eq!(
            e.message,
            "the number of attempts must be between 1 and 5, not 0"
        );
    }
}
