//! Configuration conventions: the [`Secret`] type and schema generation.
//!
//! A plugin's configuration is a plain Rust struct. [`config_schema`] turns it into a
//! draft-07 JSON Schema that stock form generators render well:
//! - doc comments give `title` (first paragraph) and `description` (the rest);
//! - every subschema is inlined (no `$ref`), so each field can be validated on its own;
//! - `Option<T>` means "not required", never "may be null";
//! - properties get `x-order` from their declaration order, unless they set one;
//! - [`Secret`] fields are `writeOnly` with `format: password`, which is how the host knows to
//!   encrypt them and never show them.

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

/// The JSON Schema of a configuration type, following the conventions of this module.
pub fn config_schema<C: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| {
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<C>().to_value();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (index, (_, prop)) in props.iter_mut().enumerate() {
            strip_null(prop);
            split_title(prop);
            if let Some(Value::Array(choices)) = prop.get_mut("oneOf") {
                choices.iter_mut().for_each(split_title);
            }
            if let Some(obj) = prop.as_object_mut() {
                obj.entry("x-order").or_insert(Value::from(index));
            }
        }
    }
    schema
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

    #[derive(Deserialize, JsonSchema, Default)]
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
