//! The OpenAPI description of the JSON API, served at `/api/openapi.json`.
//!
//! It is built from the same declarations as the router ([`super::api::router`]), so every
//! route is described; what every route shares is added here once: the patterns of ids and
//! field names (the host's own rules, [`crate::ids`]), and the answers the middleware gives
//! (`400`, `401`, `403`, `404`, `413`, `415`). Schemathesis checks the document against the
//! running server in CI (`tests/schemathesis/run.sh`); a test compares it with the committed copy `host/openapi.json` so
//! that a change of the API shows up in review (regenerate with
//! `PASSERELLE_UPDATE_OPENAPI=1 cargo test -p passerelle openapi`).

use crate::ids::{FIELD_NAME_PATTERN, ID_PATTERN};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, SecurityRequirement,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Passerelle",
        description = "HTTP API of Passerelle: plugins, instance configuration (one field at a time), \
tests, audit history, API tokens, and the capabilities an ERP calls.\n\n\
Authentication: an API token (`Authorization: Bearer <token>`, created with `passerelle admin token create`), \
scope `capabilities` for `/api/capabilities/*`, `metrics` for `/metrics`, or `admin` for everything; or a browser session \
(cookie `passerelle_session`), which must send its CSRF token in `X-CSRF-Token` on every changing request.\n\n\
Errors are JSON `{code, message, field?, pointer?, errors?}` with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "session", description = "Who is calling"),
        (name = "plugins", description = "Loaded plugins and their configuration schemas"),
        (name = "instances", description = "Configured instances: per-field save, enable, test"),
        (name = "audit", description = "Who changed what, when"),
        (name = "capabilities", description = "Operations the ERP calls, served by the enabled instance"),
        (name = "tokens", description = "API tokens"),
        (name = "tasks", description = "Scheduled tasks of the plugins"),
        (name = "trust", description = "Extra certificate authorities trusted for provider connections"),
        (name = "events", description = "Events for the ERP: webhooks, delivery history, replay, event stream"),
        (name = "metrics", description = "Prometheus metrics (token scope `metrics`)")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "Browser session; changing requests also need the X-CSRF-Token header",
            ))),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("token", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The OpenAPI document of the API.
pub fn document() -> Document {
    let (_, mut doc) =
        utoipa_axum::router::OpenApiRouter::<super::AppState>::with_openapi(ApiDoc::openapi())
            .merge(super::api::router())
            .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    add_patterns(&mut doc);
    add_common_responses(&mut doc);
    doc
}

/// Token ids and names (see [`super::auth`]).
const TOKEN_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// The pattern of a path or query parameter, by its name.
fn parameter_pattern(name: &str) -> Option<&'static str> {
    match name {
        "id" | "instance" | "plugin" => Some(ID_PATTERN),
        "field" => Some(FIELD_NAME_PATTERN),
        "token" => Some(TOKEN_PATTERN),
        _ => None,
    }
}

fn string_with_pattern(pattern: &str, description: Option<String>) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .max_length(Some(64))
            .description(description)
            .build(),
    ))
}

/// Ids and field names in paths, queries and bodies carry the host's own rules, so clients
/// (and schemathesis) know them before being refused.
fn add_patterns(doc: &mut Document) {
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            for param in op.parameters.iter_mut().flatten() {
                if !matches!(param.parameter_in, ParameterIn::Path | ParameterIn::Query) {
                    continue;
                }
                if let Some(pattern) = parameter_pattern(&param.name) {
                    param.schema = Some(string_with_pattern(pattern, None));
                }
            }
        }
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, property, pattern) in [
        ("CreateInstance", "id", ID_PATTERN),
        ("CreateInstance", "plugin", ID_PATTERN),
        ("CreateToken", "name", TOKEN_PATTERN),
    ] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) {
            if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(property) {
                p.pattern = Some(pattern.to_owned());
                p.max_length = Some(64);
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// Answers that come from the middleware and the extractors rather than from a handler,
/// said once here rather than on each route: every operation can be refused for
/// authentication (401) or authorisation (403); one with parameters or a body for a bad
/// value (400); one with a path parameter for a missing resource (404); one with a body for
/// its size (413) or type (415).
fn add_common_responses(doc: &mut Document) {
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            let has_body = op.request_body.is_some();
            let params = op.parameters.as_deref().unwrap_or_default();
            let has_path_param = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let responses = &mut op.responses.responses;
            if has_body || !params.is_empty() {
                responses.entry("400".to_owned()).or_insert_with(|| {
                    error("`invalid_request` (a parameter or the body cannot be read) or `invalid_id`")
                });
            }
            if has_path_param {
                responses
                    .entry("404".to_owned())
                    .or_insert_with(|| error("`not_found`: no such resource"));
            }
            if has_body {
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| error("`payload_too_large`: the body is too large"));
                responses.entry("415".to_owned()).or_insert_with(|| {
                    error("`unsupported_media_type`: the body must be sent as `application/json`")
                });
            }
            op.responses
                .responses
                .entry("401".to_owned())
                .or_insert_with(|| error("`unauthenticated`: no valid session or API token"));
            op.responses.responses.entry("403".to_owned()).or_insert_with(|| {
                error("`forbidden` (the token's scope does not allow it), or for a session's changing request `origin_mismatch` (not sent from this server's pages) or `csrf_failed` (without its CSRF token)")
            });
        }
    }
}

/// The document as pretty JSON, as committed in `host/openapi.json`, with one typed path per
/// operation of the plugin API ([`crate::operations`]).
pub fn json() -> String {
    let mut text = serde_json::to_value(document())
        .map(|mut doc| {
            crate::operations::add_openapi_paths(&mut doc);
            doc
        })
        .and_then(|doc| serde_json::to_string_pretty(&doc))
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the OpenAPI document: {e}\"}}"));
    text.push('\n');
    text
}
