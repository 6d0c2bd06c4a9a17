//! The OpenAPI description of the JSON API, served at `/api/openapi.json`.
//!
//! It is built from the same declarations as the router ([`super::api::router`]), so every
//! route is described; a test compares it with the committed copy `host/openapi.json` so
//! that a change of the API shows up in review (regenerate with
//! `PASSERELLE_UPDATE_OPENAPI=1 cargo test -p passerelle openapi`).

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
scope `capabilities` for `/api/capabilities/*` or `admin` for everything; or a browser session \
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
        (name = "trust", description = "Extra certificate authorities trusted for provider connections")
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
    add_auth_responses(&mut doc);
    doc
}

/// Every operation can be refused for authentication (401) or authorisation (403): say so
/// once here rather than on each route.
fn add_auth_responses(doc: &mut Document) {
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
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("401".to_owned())
                .or_insert_with(|| error("`unauthenticated`: no valid session or API token"));
            op.responses.responses.entry("403".to_owned()).or_insert_with(|| {
                error("`forbidden` (the token's scope does not allow it) or `csrf_failed` (a session's changing request without its CSRF token)")
            });
        }
    }
}

/// The document as pretty JSON, as committed in `host/openapi.json`.
pub fn json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the OpenAPI document: {e}\"}}"));
    text.push('\n');
    text
}
