//! A plugin's configuration schema, and validation against it.
//!
//! The schema is the contract between a plugin and everything that configures it (CLI, API,
//! console). This module answers the questions the host asks of it: which fields exist, which
//! are secrets, is this value valid for this field (each field is saved on its own), and is
//! this whole configuration complete (enabling checks everything, conditional rules included).
//! Validation uses a real JSON Schema (draft-07) validator; messages name the field and never
//! repeat a secret's value.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// A problem with one field, or with the configuration as a whole (`field` empty).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("field `{field}`: ") })]
pub struct FieldError {
    pub field: String,
    /// JSON pointer of the field in the configuration, e.g. `/api_key`.
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            pointer: if field.is_empty() {
                String::new()
            } else {
                format!("/{field}")
            },
            message: message.into(),
        }
    }
}

/// Why a plugin's schema was refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the configuration schema must be a JSON object of `type: object` with `properties`")]
    NotAnObjectSchema,
    #[error("the configuration schema is not valid JSON Schema: {0}")]
    Invalid(String),
    #[error("the schema of field `{field}` is not valid JSON Schema: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("field name {0:?} is not valid: use a Rust identifier (letters, digits and '_', at most 64, not starting with a digit), as serde derives it")]
    BadFieldName(String),
}

/// A compiled configuration schema.
pub struct ConfigSchema {
    root: Value,
    whole: jsonschema::Validator,
    fields: HashMap<String, jsonschema::Validator>,
    order: Vec<String>,
}

impl std::fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSchema")
            .field("fields", &self.order)
            .finish()
    }
}

impl ConfigSchema {
    pub fn new(root: Value) -> Result<Self, SchemaError> {
        let props = root
            .get("properties")
            .and_then(Value::as_object)
            .filter(|_| root.get("type").and_then(Value::as_str) == Some("object"))
            .ok_or(SchemaError::NotAnObjectSchema)?;
        let whole =
            jsonschema::draft7::new(&root).map_err(|e| SchemaError::Invalid(e.to_string()))?;
        let mut fields = HashMap::new();
        let mut order: Vec<(i64, usize, String)> = Vec::new();
        for (index, (name, prop)) in props.iter().enumerate() {
            if !crate::ids::is_field_name(name) {
                return Err(SchemaError::BadFieldName(name.clone()));
            }
            let validator =
                jsonschema::draft7::new(prop).map_err(|e| SchemaError::InvalidField {
                    field: name.clone(),
                    reason: e.to_string(),
                })?;
            fields.insert(name.clone(), validator);
            let rank = prop
                .get("x-order")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            order.push((rank, index, name.clone()));
        }
        order.sort();
        Ok(ConfigSchema {
            root,
            whole,
            fields,
            order: order.into_iter().map(|(_, _, n)| n).collect(),
        })
    }

    /// The schema as the plugin declared it.
    pub fn json(&self) -> &Value {
        &self.root
    }

    /// Field names in display order (`x-order`, then declaration order).
    pub fn field_names(&self) -> &[String] {
        &self.order
    }

    /// The sub-schema of one field.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.root.get("properties")?.get(name)
    }

    pub fn is_secret(&self, name: &str) -> bool {
        self.field(name)
            .is_some_and(passerelle_plugin_api::config::is_secret)
    }

    /// Whether a field says where requests go (a URL, host or endpoint): overriding it for a
    /// test must not send the saved secrets to an address nobody saved.
    pub fn is_endpoint(&self, name: &str) -> bool {
        let by_format = self
            .field(name)
            .and_then(|p| p.get("format"))
            .and_then(Value::as_str)
            .is_some_and(|f| matches!(f, "uri" | "url" | "hostname" | "uri-reference"));
        let lower = name.to_ascii_lowercase();
        by_format
            || ["url", "uri", "endpoint", "host", "server", "authority"]
                .iter()
                .any(|suffix| lower.ends_with(suffix))
    }

    /// Names of the secret fields.
    pub fn secret_fields(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .filter(|n| self.is_secret(n))
            .map(String::as_str)
    }

    fn unknown_field(&self, name: &str) -> FieldError {
        FieldError::new(
            name,
            format!(
                "this plugin has no such field; its fields are: {}",
                self.order.join(", ")
            ),
        )
    }

    /// Checks one value against its field's sub-schema.
    pub fn validate_field(&self, name: &str, value: &Value) -> Result<(), FieldError> {
        let validator = self
            .fields
            .get(name)
            .ok_or_else(|| self.unknown_field(name))?;
        let secret = self.is_secret(name);
        if let Some(problem) = self
            .field(name)
            .and_then(|prop| beyond_json_schema(prop, value))
        {
            return Err(FieldError::new(name, problem));
        }
        let messages: Vec<String> = validator
            .iter_errors(value)
            .map(|e| {
                if secret {
                    e.masked().to_string()
                } else {
                    e.to_string()
                }
            })
            .collect();
        if messages.is_empty() {
            Ok(())
        } else {
            Err(FieldError::new(name, messages.join("; ")))
        }
    }

    /// Turns text typed on a command line into a value of the field's type: strings stay
    /// text, numbers, booleans, lists and objects are read as JSON (a list of strings may also
    /// be given comma-separated).
    pub fn parse_cli_value(&self, name: &str, raw: &str) -> Result<Value, FieldError> {
        let prop = self.field(name).ok_or_else(|| self.unknown_field(name))?;
        let ty = field_type(prop);
        let value = match ty.as_deref() {
            Some("string") | None => Value::String(raw.to_owned()),
            Some("array") => match serde_json::from_str::<Value>(raw) {
                Ok(v @ Value::Array(_)) => v,
                _ => Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ),
            },
            Some(other) => serde_json::from_str(raw.trim()).map_err(|_| {
                FieldError::new(
                    name,
                    format!("expected {} {other}, got {raw:?}", article(other)),
                )
            })?,
        };
        Ok(value)
    }

    /// Adds the schema's defaults for every field that has no value.
    pub fn with_defaults(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for name in &self.order {
            if let Some(v) = values.get(name) {
                out.insert(name.clone(), v.clone());
            } else if let Some(d) = self.field(name).and_then(|p| p.get("default")) {
                out.insert(name.clone(), d.clone());
            }
        }
        for (k, v) in values {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        out
    }

    /// The values a new instance starts with: fields whose schema carries `x-initial`.
    /// `default` says what an absent value means (so instances saved before a field existed
    /// keep their behaviour); `x-initial` is what a new instance is given instead, e.g. a
    /// provider's newer API version.
    pub fn initial_values(&self) -> Map<String, Value> {
        self.order
            .iter()
            .filter_map(|name| {
                let initial = self.field(name)?.get("x-initial")?;
                Some((name.clone(), initial.clone()))
            })
            .collect()
    }

    /// Checks a whole configuration (defaults already applied). Every problem is reported, as
    /// a stock validator with `allErrors` does: missing fields (conditional requirements,
    /// `allOf` of `if`/`then` or `dependencies` with a `const`-tagged `oneOf`, get a message
    /// naming their switch), then every other rule, each under the field it concerns.
    pub fn validate_whole(&self, config: &Map<String, Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for name in self.required_fields(config) {
            if !config.contains_key(&name) {
                errors.push(FieldError::new(&name, "this field is required"));
            }
        }
        for e in self.conditional_errors(config) {
            if !errors.iter().any(|seen| seen.field == e.field) {
                errors.push(e);
            }
        }
        let instance = Value::Object(config.clone());
        for e in self.whole.iter_errors(&instance) {
            let pointer = e.instance_path().as_str().to_owned();
            // A `dependencies` branch of an older plugin's schema failing as a whole: its
            // missing fields are named above, with their switch.
            if pointer.is_empty() && e.schema_path().as_str().starts_with("/dependencies/") {
                continue;
            }
            let mut fields: Vec<String> = match e.kind() {
                // Said above, with the switch that requires them.
                jsonschema::error::ValidationErrorKind::Required { .. } => continue,
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
                    if pointer.is_empty() =>
                {
                    unexpected.clone()
                }
                _ => vec![pointer
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()],
            };
            for field in fields.drain(..) {
                // A refusal of the whole configuration (a root `oneOf`, say) prints the whole
                // instance, secrets included: masked like a secret field's.
                let message = if field.is_empty() || self.is_secret(&field) {
                    e.masked().to_string()
                } else if self.field(&field).is_none() && !field.is_empty() {
                    self.unknown_field(&field).message
                } else {
                    e.to_string()
                };
                errors.push(FieldError::new(&field, message));
            }
        }
        errors
    }

    /// Checks a configuration document as given, without saving anything: what `config
    /// apply` and enabling would say of it. Each value is checked against its field (unknown
    /// fields named), then the whole document with the schema's defaults applied, conditional
    /// rules included. A stock draft-07 validator reaches the same verdict on the same raw
    /// document and names the same fields (`tests/forms` checks it).
    pub fn check_document(&self, document: &Map<String, Value>) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = document
            .iter()
            .filter_map(|(name, value)| self.validate_field(name, value).err())
            .collect();
        for e in self.validate_whole(&self.with_defaults(document)) {
            if !errors.iter().any(|seen| seen.field == e.field) {
                errors.push(e);
            }
        }
        errors
    }

    fn required_fields(&self, _config: &Map<String, Value>) -> Vec<String> {
        self.root
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn conditional_errors(&self, config: &Map<String, Value>) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = Vec::new();
        for rule in passerelle_plugin_api::config::conditionals(&self.root) {
            if config.get(&rule.tag) != Some(&rule.value) {
                continue;
            }
            for name in &rule.required {
                if !config.contains_key(name) && !errors.iter().any(|e| &e.field == name) {
                    errors.push(FieldError::new(
                        name,
                        format!(
                            "this field is required when `{}` is {}",
                            rule.tag, rule.value
                        ),
                    ));
                }
            }
        }
        errors
    }
}

/// The JSON type of a field: its `type`, or the type of its labelled choices.
fn field_type(prop: &Value) -> Option<String> {
    if let Some(t) = prop.get("type").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    let choices = prop
        .get("oneOf")
        .or_else(|| prop.get("anyOf"))
        .and_then(Value::as_array)?;
    choices.iter().find_map(|c| {
        c.get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| match c.get("const") {
                Some(Value::String(_)) => Some("string".to_owned()),
                Some(Value::Number(_)) => Some("number".to_owned()),
                Some(Value::Bool(_)) => Some("boolean".to_owned()),
                _ => None,
            })
    })
}

fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Whether a property's type is `integer` (alone, or with `null` for optional fields).
fn is_integer(prop: &Value) -> bool {
    match prop.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => field_type(prop).as_deref() == Some("integer"),
    }
}

/// Longest text a field may hold: configuration values are URLs, names, keys and
/// certificates, never documents; a 20 MB value is a mistake or an attack.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// What draft-07 lets through and the host must not: `1.0` for an integer (JSON Schema
/// counts it as one, but a plugin reading `u32` fails later with a message about "1.0"), and
/// text of any length.
fn beyond_json_schema(prop: &Value, value: &Value) -> Option<String> {
    match value {
        Value::Number(n) if is_integer(prop) && !n.is_i64() && !n.is_u64() => Some(format!(
            "expected a whole number (e.g. {}), got {n}; write it without a decimal point",
            n.as_f64().map(|f| f.trunc() as i64).unwrap_or(0)
        )),
        Value::String(s) if s.len() > MAX_TEXT_BYTES => Some(format!(
            "this value is {} bytes long; the most a field takes is {} KiB",
            s.len(),
            MAX_TEXT_BYTES / 1024
        )),
        Value::Array(items) => items
            .iter()
            .find_map(|item| prop.get("items").and_then(|p| beyond_json_schema(p, item))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> ConfigSchema {
        ConfigSchema::new(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "mode": {"title": "Mode", "oneOf": [{"type": "string", "const": "key"}, {"type": "string", "const": "oauth"}], "default": "key"},
                "key": {"title": "Key", "type": "string", "writeOnly": true, "format": "password", "minLength": 8},
                "timeout": {"title": "Timeout", "type": "integer", "minimum": 1, "maximum": 120, "default": 10},
                "codes": {"title": "Codes", "type": "array", "items": {"type": "string"}}
            },
            "dependencies": {"mode": {"oneOf": [
                {"properties": {"mode": {"const": "key"}}, "required": ["key"]},
                {"properties": {"mode": {"const": "oauth"}}}
            ]}}
        }))
        .unwrap()
    }

    #[test]
    fn field_validation_names_the_rule_and_masks_secrets() {
        let s = demo();
        assert!(s.validate_field("timeout", &json!(30)).is_ok());
        let e = s.validate_field("timeout", &json!(500)).unwrap_err();
        assert_eq!(e.field, "timeout");
        assert!(e.message.contains("maximum"), "{e}");
        let e = s.validate_field("key", &json!("short-x")).unwrap_err();
        assert!(!e.message.contains("short-x"), "{e}");
        let e = s.validate_field("nope", &json!(1)).unwrap_err();
        assert!(e.message.contains("timeout"), "{e}");
    }

    #[test]
    fn cli_values_follow_the_field_type() {
        let s = demo();
        assert_eq!(s.parse_cli_value("timeout", "12").unwrap(), json!(12));
        assert!(s.parse_cli_value("timeout", "twelve").is_err());
        assert_eq!(s.parse_cli_value("mode", "oauth").unwrap(), json!("oauth"));
        assert_eq!(
            s.parse_cli_value("codes", "A, B").unwrap(),
            json!(["A", "B"])
        );
        assert_eq!(s.parse_cli_value("codes", "[\"A\"]").unwrap(), json!(["A"]));
    }

    #[test]
    fn new_instances_start_from_x_initial_not_default() {
        let s = ConfigSchema::new(json!({
            "type": "object",
            "properties": {
                "api_version": {"title": "API", "type": "string", "default": "v1", "x-initial": "v2"},
                "timeout": {"title": "Timeout", "type": "integer", "default": 10}
            }
        }))
        .unwrap();
        let initial = s.initial_values();
        assert_eq!(Value::Object(initial), json!({"api_version": "v2"}));
        assert_eq!(s.with_defaults(&Map::new())["api_version"], json!("v1"));
        assert!(demo().initial_values().is_empty());
    }

    #[test]
    fn whole_validation_applies_conditional_requirements() {
        let s = demo();
        let config = s.with_defaults(&Map::new());
        assert_eq!(config["timeout"], json!(10));
        let errors = s.validate_whole(&config);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "key");
        assert!(errors[0].message.contains("required when `mode`"));
        let mut oauth = Map::new();
        oauth.insert("mode".into(), json!("oauth"));
        assert!(s.validate_whole(&s.with_defaults(&oauth)).is_empty());
    }

    /// The shape `config_schema` writes: the default branch applies to an absent switch.
    fn if_then() -> ConfigSchema {
        ConfigSchema::new(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "mode": {"type": "string", "oneOf": [{"type": "string", "const": "key"}, {"type": "string", "const": "oauth"}], "default": "key"},
                "key": {"type": "string", "writeOnly": true, "format": "password"},
                "client_id": {"type": "string"},
                "token_url": {"type": "string", "format": "uri"},
                "timeout": {"type": "integer", "minimum": 1, "maximum": 120, "default": 10}
            },
            "allOf": [
                {"if": {"properties": {"mode": {"const": "key"}}}, "then": {"properties": {"key": {}}, "required": ["key"]}},
                {"if": {"properties": {"mode": {"const": "oauth"}}, "required": ["mode"]}, "then": {"properties": {"client_id": {}}, "required": ["client_id"]}}
            ]
        }))
        .unwrap()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        let mut f: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        f.sort_unstable();
        f
    }

    #[test]
    fn documents_are_checked_with_every_problem_under_its_field() {
        let s = if_then();
        let doc = |v: Value| v.as_object().unwrap().clone();
        // `{}`: the default branch applies, as ajv applies it to the raw document.
        let errors = s.check_document(&Map::new());
        assert_eq!(fields(&errors), ["key"]);
        assert!(errors[0]
            .message
            .contains("required when `mode` is \"key\""));
        assert!(s.check_document(&doc(json!({"key": "k"}))).is_empty());
        // The other branch: only its own field is named, once.
        let errors = s.check_document(&doc(json!({"mode": "oauth"})));
        assert_eq!(fields(&errors), ["client_id"], "{errors:?}");
        // Several problems at once, each under its field; an unknown field named.
        let errors = s.check_document(&doc(
            json!({"timeout": 500, "colour": "blue", "token_url": "not a url"}),
        ));
        assert_eq!(
            fields(&errors),
            ["colour", "key", "timeout", "token_url"],
            "{errors:?}"
        );
        let colour = errors.iter().find(|e| e.field == "colour").unwrap();
        assert!(colour.message.contains("no such field"), "{colour}");
        // A secret of the wrong type is named without its value.
        let errors = s.check_document(&doc(json!({"key": 123456789})));
        assert_eq!(fields(&errors), ["key"]);
        assert!(!errors[0].message.contains("123456789"), "{}", errors[0]);
    }
}
