//! The operation contracts of the plugin API, at the host's boundary.
//!
//! Why here: `passerelle-plugin-api` knows what every operation takes and returns (its
//! [`contracts`] registry, one entry beside each capability type), so the host needs no list
//! of its own to keep in step. This module puts that knowledge to three uses:
//!
//! - **checking an input before any plugin sees it** ([`check_input`]): a call whose input does
//!   not match its operation's schema is refused with the JSON pointer of the first problem
//!   (`/id: this field is required …`), as an `InvalidInput` error the CLI maps to its refusal
//!   exit code and the HTTP API to `422 invalid_value` with `pointer`;
//! - **the OpenAPI description** ([`add_openapi_paths`]): one path per operation,
//!   `POST /api/capabilities/<operation>`, with its request and response schemas, next to the
//!   generic `/api/capabilities/{operation}` that still serves plugins' own operations;
//! - **`passerelle invoke --help`** ([`invoke_help`]): every operation with its input fields.
//!
//! Operations a plugin defines for itself (no contract in the plugin API) are passed through
//! unchecked: the plugin decodes their input itself.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::ValidationError;
use passerelle_plugin_api::{contracts, OperationContract, PluginError};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The generic capability path of the API, which typed paths are derived from.
const GENERIC_PATH: &str = "/api/capabilities/{operation}";

/// One compiled validator per operation contract, built on first use.
fn validators() -> &'static HashMap<&'static str, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        contracts()
            .into_iter()
            .filter_map(|c| {
                let schema = Value::from(c.input_schema());
                match jsonschema::draft202012::new(&schema) {
                    Ok(v) => Some((c.name, v)),
                    Err(e) => {
                        // A plugin-api bug (covered by a test); the plugin still decodes the
                        // input itself, so the call is not left unchecked.
                        tracing::error!(operation = c.name, error = %e, "the input schema of an operation does not compile");
                        None
                    }
                }
            })
            .collect()
    })
}

/// Checks `input` against the input schema of `operation`. `Ok` for a valid input and for an
/// operation without a contract (a plugin's own); otherwise an `InvalidInput` error whose
/// field is the JSON pointer of the first problem (without its leading `/`) and whose message
/// starts with that pointer and says what was expected.
pub fn check_input(operation: &str, input: &Value) -> Result<(), PluginError> {
    let Some(validator) = validators().get(operation) else {
        return Ok(());
    };
    let Some(error) = validator.iter_errors(input).next() else {
        return Ok(());
    };
    let (pointer, what) = describe(&error);
    let shown = if pointer.is_empty() {
        "the input".to_owned()
    } else {
        pointer.clone()
    };
    let message = format!(
        "{shown}: {what}; fix the input of {operation} (its schema: `passerelle invoke --help`, \
         or POST /api/capabilities/{operation} in /api/openapi.json)"
    );
    let mut e = PluginError::invalid_input(message);
    if !pointer.is_empty() {
        e = e.with_field(pointer.trim_start_matches('/'));
    }
    Err(e)
}

/// The pointer a problem concerns and what was expected there, in words. Values are never
/// quoted back (an input may carry personal data or whole documents).
fn describe(error: &ValidationError<'_>) -> (String, String) {
    let at = error.instance_path().as_str().to_owned();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            (
                format!("{at}/{}", escape(name)),
                "this field is required".to_owned(),
            )
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let name = unexpected.first().map(String::as_str).unwrap_or_default();
            (
                format!("{at}/{}", escape(name)),
                "this field is not part of the operation's input (check its spelling)".to_owned(),
            )
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            (at, format!("expected {expected}"))
        }
        ValidationErrorKind::Enum { options } => (at, format!("expected one of {options}")),
        ValidationErrorKind::Constant { expected_value } => {
            (at, format!("expected {expected_value}"))
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            (at, "matches none of the allowed forms".to_owned())
        }
        _ => (at, error.masked().to_string()),
    }
}

/// A property name as a JSON pointer token (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Adds one `POST /api/capabilities/<operation>` path per operation contract to the OpenAPI
/// document `doc` (as JSON), with the operation's input as request body and its output as
/// the `200` answer; the schemas go to `components/schemas`, under their Rust type names.
/// Parameters and error answers are those of the generic path, which stays for plugins' own
/// operations. The typed paths follow the generic one, in operation order.
pub fn add_openapi_paths(doc: &mut Value) {
    let Some(generic) = doc
        .pointer(&format!("/paths/{}", escape(GENERIC_PATH)))
        .and_then(|item| item.get("post"))
        .cloned()
    else {
        tracing::error!("the OpenAPI document has no {GENERIC_PATH}: no typed capability paths");
        return;
    };
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = SchemaGenerator::new(settings);
    let mut typed = Vec::new();
    for c in contracts() {
        let input = Value::from(c.input_in(&mut generator));
        let output = Value::from(c.output_in(&mut generator));
        typed.push((c, typed_operation(&generic, c, input, output)));
    }
    let definitions = generator.take_definitions(true);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in definitions {
            if schemas.contains_key(&name) {
                tracing::error!(schema = %name, "an operation type has the name of an API schema; the API's is kept");
                continue;
            }
            schemas.insert(name, schema);
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let after = paths
        .keys()
        .position(|k| k == GENERIC_PATH)
        .map_or(paths.len(), |i| i + 1);
    for (index, (c, operation)) in (after..).zip(typed) {
        paths.shift_insert(
            index,
            format!("/api/capabilities/{}", c.name),
            json!({ "post": operation }),
        );
    }
}

/// The generic capability operation made specific to contract `c`.
fn typed_operation(generic: &Value, c: &OperationContract, input: Value, output: Value) -> Value {
    let mut op = generic.clone();
    if let Some(fields) = op.as_object_mut() {
        describe_typed(fields, c, input);
    }
    if let Some(ok) = op.pointer_mut("/responses/200") {
        *ok = json!({
            "description": format!("The output of {}", c.name),
            "content": {"application/json": {"schema": output}}
        });
    }
    if let Some(Value::String(d)) = op.pointer_mut("/responses/422/description") {
        d.push_str(" (with the `pointer` of the problem when the host checked it)");
    }
    op
}

/// Summary, description, id, parameters and request body of contract `c`'s operation.
fn describe_typed(fields: &mut Map<String, Value>, c: &OperationContract, input: Value) {
    fields.insert("summary".into(), Value::from(format!("{}.", c.summary)));
    fields.insert(
        "description".into(),
        Value::from(format!(
            "Operation `{}` ({}), answered by the enabled instance that serves it (or \
             `?instance=`). The input is checked against its schema before any plugin sees it: \
             a mismatch is `422 invalid_value` with the `pointer` of the problem. Needs a token \
             of scope `capabilities` or `admin`; `Prefer: wait=<seconds>` as on \
             `/api/capabilities/{{operation}}`.",
            c.name, c.category
        )),
    );
    fields.insert(
        "operationId".into(),
        Value::from(format!("invoke_{}", c.name.replace('.', "_"))),
    );
    if let Some(params) = fields.get_mut("parameters").and_then(Value::as_array_mut) {
        params.retain(|p| p["in"] != "path");
    }
    fields.insert(
        "requestBody".into(),
        json!({
            "description": format!("The input of {}", c.name),
            "content": {"application/json": {"schema": input}},
            "required": true
        }),
    );
}

/// The operations and their input fields, for `passerelle invoke --help`.
pub fn invoke_help() -> String {
    let mut out = String::from(
        "Operations of the plugin API (the input is checked against its schema before any \
         plugin sees it; `*` marks a required field; full schemas in GET /api/openapi.json):\n",
    );
    for c in contracts() {
        out.push_str(&format!(
            "\n  {}  ({})\n      {}\n",
            c.name, c.category, c.summary
        ));
        let schema = Value::from(c.input_schema());
        for line in field_lines(&schema) {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out.push_str(
        "\nExample: passerelle invoke company.lookup --input '{\"id\":\"21920023500014\"}'\n",
    );
    out
}

/// `name*: type — description` for each top-level field of a root input schema.
fn field_lines(schema: &Value) -> Vec<String> {
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if properties.is_empty() {
        return vec![format!("input: {}", type_name(schema))];
    }
    properties
        .iter()
        .map(|(name, p)| {
            let star = if required.contains(&name.as_str()) {
                "*"
            } else {
                ""
            };
            // The first paragraph of the doc comment, its lines joined.
            let description = p["description"]
                .as_str()
                .and_then(|d| d.split("\n\n").next())
                .map(|d| format!(" — {}", d.split_whitespace().collect::<Vec<_>>().join(" ")))
                .unwrap_or_default();
            format!("{name}{star}: {}{description}", type_name(p))
        })
        .collect()
}

/// A short name for a schema's type: `string`, `integer or null`, `array of Appointment`…
fn type_name(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    if let Some(values) = schema["enum"].as_array() {
        let names: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", names.join(", "));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(parts) = schema[key].as_array() {
            let names: Vec<String> = parts
                .iter()
                .map(|p| match &p["const"] {
                    Value::Null => type_name(p),
                    v => v.to_string(),
                })
                .collect();
            return names.join(" or ");
        }
    }
    match &schema["type"] {
        Value::String(t) if t == "array" => format!("array of {}", type_name(&schema["items"])),
        Value::String(t) => t.clone(),
        Value::Array(ts) => {
            let names: Vec<String> = ts
                .iter()
                .map(|t| match t.as_str() {
                    Some("array") => format!("array of {}", type_name(&schema["items"])),
                    Some(t) => t.to_owned(),
                    None => t.to_string(),
                })
                .collect();
            names.join(" or ")
        }
        _ => "any".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_plugin_api::capabilities::{CalendarSync, CompanyLookup, CompanySearch};
    use passerelle_plugin_api::{contract, ErrorKind, Operation};

    #[test]
    fn every_contract_compiles_to_a_validator() {
        assert_eq!(validators().len(), contracts().len());
        assert!(contracts().len() >= 15);
        assert!(contract(CompanyLookup::NAME).is_some());
        assert!(contract("misbehave.echo").is_none());
    }

    #[test]
    fn a_valid_input_and_a_plugins_own_operation_pass() {
        check_input(CompanyLookup::NAME, &json!({"id": "21920023500014"})).unwrap();
        check_input(
            CompanySearch::NAME,
            &json!({"name": "mairie", "per_page": 5}),
        )
        .unwrap();
        check_input("misbehave.echo", &json!(["anything"])).unwrap();
    }

    #[test]
    fn a_missing_field_is_named_by_its_pointer() {
        let e = check_input(CompanyLookup::NAME, &json!({})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("id"));
        assert!(
            e.message.starts_with("/id: this field is required"),
            "{}",
            e.message
        );
        assert!(e.message.contains("company.lookup"), "{}", e.message);
    }

    #[test]
    fn a_wrong_type_says_what_was_expected_without_quoting_the_value() {
        let e = check_input(CompanyLookup::NAME, &json!({"id": 21920023500014_u64})).unwrap_err();
        assert!(
            e.message.starts_with("/id: expected string"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("21920023500014"), "{}", e.message);
        let e =
            check_input(CompanySearch::NAME, &json!({"name": "x", "per_page": -1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("per_page"));
        let e = check_input(CompanyLookup::NAME, &json!("21920023500014")).unwrap_err();
        assert_eq!(e.field, None);
        assert!(
            e.message.starts_with("the input: expected object"),
            "{}",
            e.message
        );
    }

    #[test]
    fn nested_problems_and_unknown_fields_have_their_full_pointer() {
        // calendar.sync's types refuse unknown fields (`deny_unknown_fields`).
        let mut input = json!({
            "mailboxes": ["a@example.com"],
            "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
            "appointments": [],
        });
        check_input(CalendarSync::NAME, &input).unwrap();
        input["window"]["stat"] = json!("typo");
        let e = check_input(CalendarSync::NAME, &input).unwrap_err();
        assert!(
            e.message
                .starts_with("/window/stat: this field is not part"),
            "{}",
            e.message
        );
        assert_eq!(e.field.as_deref(), Some("window/stat"));
    }

    #[test]
    fn openapi_gets_one_typed_path_per_operation() {
        let mut doc = json!({
            "paths": {
                "/api/other": {},
                GENERIC_PATH: {"post": {
                    "parameters": [{"name": "operation", "in": "path"}, {"name": "instance", "in": "query"}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"200": {"description": "any"}, "422": {"description": "bad"}}
                }},
                "/api/last": {}
            },
            "components": {"schemas": {"ErrorBody": {"type": "object"}}}
        });
        add_openapi_paths(&mut doc);
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths[1], GENERIC_PATH);
        assert_eq!(paths[2], "/api/capabilities/calendar.sync");
        assert_eq!(paths.last().unwrap().as_str(), "/api/last");
        assert_eq!(paths.len(), 3 + contracts().len());
        let lookup = &doc["paths"]["/api/capabilities/company.lookup"]["post"];
        assert_eq!(
            lookup["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CompanyQuery"
        );
        assert_eq!(
            lookup["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Company"
        );
        assert_eq!(lookup["parameters"].as_array().unwrap().len(), 1);
        assert_eq!(lookup["operationId"], "invoke_company_lookup");
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["CompanyQuery"]["required"], json!(["id"]));
        assert!(schemas["ErrorBody"].is_object());
    }

    /// A standalone schema of the plugin API as it reads inside the OpenAPI document: its
    /// definitions under `components/schemas`, no `$schema`, no root `title`.
    fn as_component(schema: schemars::Schema) -> (Value, Map<String, Value>) {
        let text = Value::from(schema)
            .to_string()
            .replace("\"#/$defs/", "\"#/components/schemas/");
        let mut root: Value = serde_json::from_str(&text).unwrap();
        let object = root.as_object_mut().unwrap();
        object.remove("$schema");
        object.remove("title");
        let defs = match object.remove("$defs") {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        (root, defs)
    }

    #[test]
    fn the_served_openapi_bodies_are_the_plugin_api_types() {
        let doc: Value = serde_json::from_str(&crate::server::openapi::json()).unwrap();
        let components = doc["components"]["schemas"].as_object().unwrap();
        let resolve = |schema: &Value| -> Value {
            let mut found = match schema["$ref"].as_str() {
                Some(r) => components[r.trim_start_matches("#/components/schemas/")].clone(),
                None => schema.clone(),
            };
            if let Some(o) = found.as_object_mut() {
                o.remove("title");
            }
            found
        };
        for c in contracts() {
            let op = &doc["paths"][format!("/api/capabilities/{}", c.name)]["post"];
            for (body, schema) in [
                (&op["requestBody"], c.input_schema()),
                (&op["responses"]["200"], c.output_schema()),
            ] {
                let served = &body["content"]["application/json"]["schema"];
                let (expected, defs) = as_component(schema);
                assert_eq!(resolve(served), expected, "{} body", c.name);
                for (name, def) in defs {
                    let mut served = components[&name].clone();
                    let mut def = def;
                    for v in [&mut served, &mut def] {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("title");
                        }
                    }
                    assert_eq!(served, def, "{} uses {name}", c.name);
                }
            }
        }
        // The generic path stays, for plugins' own operations.
        assert!(doc["paths"]["/api/capabilities/{operation}"]["post"].is_object());
    }

    #[test]
    fn invoke_help_lists_operations_and_their_fields() {
        let help = invoke_help();
        for c in contracts() {
            assert!(
                help.contains(&format!("\n  {}  (", c.name)),
                "{} missing",
                c.name
            );
        }
        assert!(help.contains("id*: string — A SIRET or a SIREN"), "{help}");
        assert!(help.contains("per_page: integer or null"), "{help}");
    }
}
