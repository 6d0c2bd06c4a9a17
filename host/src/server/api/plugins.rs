//! `/api/plugins`: the loaded plugins, the refused files, and each plugin's configuration
//! schema in the caller's language.

use super::ApiQuery;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// A loaded plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginDoc {
    pub id: String,
    pub name: String,
    pub version: String,
    /// Plugin API version it was built against.
    pub api_version: String,
    /// `ocr`, `company`, `calendar`, `einvoice`, `esign` or `other`.
    pub category: String,
    pub description: String,
    /// Operations served, e.g. `company.lookup`.
    pub capabilities: Vec<String>,
    pub tasks: Vec<TaskDoc>,
    pub quotas: QuotasDoc,
    /// The library file.
    pub path: String,
    /// SHA-256 of the library file, hex.
    pub sha256: String,
    /// The publisher key that signed it; absent for an unsigned plugin (allowed only by
    /// the `allow-unsigned` policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// Time taken to load and check it, in milliseconds.
    pub load_ms: f64,
}

/// A scheduled task a plugin declares.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDoc {
    pub name: String,
    pub description: String,
    pub interval_field: String,
    pub start_delay_field: String,
}

/// Default rate limits of a plugin; absent means unlimited.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotasDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

/// A file that looked like a plugin and was refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalDoc {
    pub path: String,
    /// Why, and what to do.
    pub reason: String,
}

/// Loaded plugins and refused files.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginDoc>,
    pub refused: Vec<RefusalDoc>,
}

/// Loaded plugins, and refused files with the reasons.
#[utoipa::path(get, path = "/api/plugins", tag = "plugins",
    responses((status = 200, body = PluginList), (status = 401, body = ErrorBody)))]
pub(super) async fn list_plugins(State(app): State<AppState>) -> Json<PluginList> {
    let registry = app.engine.registry.load();
    Json(PluginList {
        plugins: registry
            .plugins
            .iter()
            .map(|p| {
                let m = &p.manifest;
                PluginDoc {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    version: m.version.clone(),
                    api_version: m.api_version.clone(),
                    category: m.category.to_string(),
                    description: m.description.clone(),
                    capabilities: m.capabilities.clone(),
                    tasks: m
                        .tasks
                        .iter()
                        .map(|t| TaskDoc {
                            name: t.name.clone(),
                            description: t.description.clone(),
                            interval_field: t.interval_field.clone(),
                            start_delay_field: t.start_delay_field.clone(),
                        })
                        .collect(),
                    quotas: QuotasDoc {
                        per_second: m.quotas.per_second,
                        per_minute: m.quotas.per_minute,
                        per_day: m.quotas.per_day,
                    },
                    path: p.path.display().to_string(),
                    sha256: p.sha256.clone(),
                    signed_by: p.signed_by.clone(),
                    load_ms: p.load_time.as_secs_f64() * 1000.0,
                }
            })
            .collect(),
        refused: registry
            .refused
            .iter()
            .map(|r| RefusalDoc {
                path: r.path.display().to_string(),
                reason: r.reason.clone(),
            })
            .collect(),
    })
}

/// A plugin's configuration schema (JSON Schema draft-07), as the console renders it.
#[utoipa::path(get, path = "/api/plugins/{plugin}/schema", tag = "plugins",
    params(("plugin" = String, Path, description = "Plugin id, e.g. `sirene`"),
        crate::i18n::LangQuery,
        ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses((status = 200, description = "JSON Schema (draft-07), titles and descriptions in the language of `Content-Language`", body = Object),
        (status = 400, description = "`lang` is not a language tag", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn plugin_schema(
    State(app): State<AppState>,
    Path(plugin): Path<String>,
    ApiQuery(lang): ApiQuery<crate::i18n::LangQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let lang = match app.engine.registry.get(&plugin) {
        Some(p) => crate::i18n::choose_for_request(&p, &lang, &headers)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => crate::i18n::ENGLISH.to_owned(),
    };
    let body = app.schema_json_in(&plugin, &lang).ok_or_else(|| {
        crate::instances::ConfigError::UnknownPlugin {
            plugin: plugin.clone(),
            loaded: app
                .engine
                .registry
                .load()
                .plugins
                .iter()
                .map(|p| p.id().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::i18n::language_headers(&lang),
        body,
    )
        .into_response())
}
