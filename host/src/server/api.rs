//! The JSON API under `/api`: plugins and their schemas, instances with per-field save,
//! enable/disable, tests, the audit history, API tokens, and the capabilities the ERP calls.
//!
//! Every route is declared with its OpenAPI description next to it (`utoipa`), and the
//! router is built from those declarations ([`router`]), so a route cannot exist without
//! being documented. Errors are [`ApiError`]s: JSON with a stable code.

use super::actions;
use super::audit::{Action, AuditEntry, Change};
use super::auth::{Principal, Scope, TokenInfo};
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::instances::{FieldView, InstanceView};
use crate::store::InstanceRecord;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use passerelle_plugin_api::{Status, Step, TestReport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body of a capability call (documents travel base64-encoded).
pub const CAPABILITY_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Most audit entries returned at once.
pub const AUDIT_MAX: u32 = 1000;

// ----- extractors with JSON errors -----

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            // Too large and not JSON keep their own status (413, 415), as documented.
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                r.status(),
                "payload_too_large",
                format!("the request body is too large: {}", r.body_text()),
            )),
            Err(r) if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(ApiError::new(
                r.status(),
                "unsupported_media_type",
                format!(
                    "the request body must be JSON sent with `Content-Type: application/json`: {}",
                    r.body_text()
                ),
            )),
            Err(r) => Err(ApiError::bad_request(format!(
                "the request body is not what this endpoint expects: {}",
                r.body_text()
            ))),
        }
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                r.body_text()
            ))),
        }
    }
}

// ----- documents -----

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

/// An instance; secrets appear as `state: set|unset`, never with a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceDoc {
    pub id: String,
    pub plugin: String,
    pub enabled: bool,
    /// Increases with every change; send it back to refuse stale writes.
    pub revision: u64,
    /// Fields in display order.
    pub fields: Vec<FieldDoc>,
}

/// One field of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldDoc {
    pub name: String,
    pub title: String,
    /// A write-only field: its value is never returned.
    pub secret: bool,
    /// `set` (saved), `default` (the schema's default is in effect) or `unset`.
    pub state: String,
    /// The saved value or the default in effect; never present for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl From<FieldView> for FieldDoc {
    fn from(f: FieldView) -> Self {
        FieldDoc {
            name: f.name,
            title: f.title,
            secret: f.secret,
            state: f.state.to_owned(),
            value: if f.secret { None } else { f.value },
        }
    }
}

impl From<InstanceView> for InstanceDoc {
    fn from(v: InstanceView) -> Self {
        InstanceDoc {
            id: v.id,
            plugin: v.plugin,
            enabled: v.enabled,
            revision: v.revision,
            fields: v.fields.into_iter().map(FieldDoc::from).collect(),
        }
    }
}

/// An instance in the list, with its last test.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceSummary {
    pub id: String,
    pub plugin: String,
    pub enabled: bool,
    pub revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_test: Option<LastTestSummary>,
}

/// Outcome of the last recorded test.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastTestSummary {
    pub at_ms: u64,
    pub status: StatusDoc,
    pub summary: String,
}

/// Status of a test or of one of its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusDoc {
    Ok,
    Skipped,
    Warning,
    Failed,
}

impl From<Status> for StatusDoc {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => StatusDoc::Ok,
            Status::Skipped => StatusDoc::Skipped,
            Status::Warning => StatusDoc::Warning,
            Status::Failed => StatusDoc::Failed,
        }
    }
}

/// The result of a test routine.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestReportDoc {
    pub status: StatusDoc,
    pub summary: String,
    pub steps: Vec<StepDoc>,
}

/// One step of a test routine.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepDoc {
    pub name: String,
    pub status: StatusDoc,
    pub duration_ms: u64,
    pub detail: String,
}

impl From<Step> for StepDoc {
    fn from(s: Step) -> Self {
        StepDoc {
            name: s.name,
            status: s.status.into(),
            duration_ms: s.duration_ms,
            detail: s.detail,
        }
    }
}

impl From<TestReport> for TestReportDoc {
    fn from(r: TestReport) -> Self {
        TestReportDoc {
            status: r.status.into(),
            summary: r.summary,
            steps: r.steps.into_iter().map(StepDoc::from).collect(),
        }
    }
}

/// The last recorded test of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastTest {
    pub at_ms: u64,
    pub report: TestReportDoc,
}

/// A new instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    /// 1 to 64 lowercase letters, digits, `-` or `_`.
    pub id: String,
    /// Id of a loaded plugin.
    pub plugin: String,
}

/// The new value of one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetField {
    /// A value valid for the field's schema (secrets as plain strings: they are sealed).
    pub value: Value,
    /// Refuse the change unless the instance is still at this revision.
    #[serde(default)]
    pub revision: Option<u64>,
}

/// Optional stale-write protection of a state change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionBody {
    #[serde(default)]
    pub revision: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionQuery {
    /// Refuse the change unless the instance is still at this revision.
    pub revision: Option<u64>,
}

/// What to test.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Unsaved values to test with, by field name; they are validated but not saved.
    #[serde(default)]
    pub values: Map<String, Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this instance's changes.
    pub instance: Option<String>,
    /// At most this many entries, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many entries, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CapabilityQuery {
    /// Instance to use; by default the one enabled instance serving the operation.
    pub instance: Option<String>,
}

/// An operation and the instances that can serve it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilityDoc {
    /// E.g. `company.lookup`.
    pub operation: String,
    /// Loaded plugins serving it.
    pub plugins: Vec<String>,
    /// Instances of those plugins.
    pub instances: Vec<CapabilityInstance>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilityInstance {
    pub id: String,
    pub plugin: String,
    pub enabled: bool,
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 64 letters, digits, `-`, `_` or `.`; unique among active tokens.
    pub name: String,
    pub scope: Scope,
}

/// A token just created: its value is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    pub info: TokenInfo,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDoc {
    /// As the audit history names the caller.
    pub actor: String,
    /// `session` or `token`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The CSRF token to send in `X-CSRF-Token` with changing requests (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

// ----- router -----

/// The API routes with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    let capabilities = OpenApiRouter::new()
        .routes(routes!(invoke_capability))
        .layer(DefaultBodyLimit::max(CAPABILITY_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(list_plugins))
        .routes(routes!(plugin_schema))
        .routes(routes!(list_instances, create_instance))
        .routes(routes!(get_instance, delete_instance))
        .routes(routes!(set_field, clear_field))
        .routes(routes!(enable_instance))
        .routes(routes!(disable_instance))
        .routes(routes!(run_test, last_test))
        .routes(routes!(instance_audit))
        .routes(routes!(audit))
        .routes(routes!(list_capabilities))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(tasks))
        .routes(routes!(run_task))
        .routes(routes!(trust))
        .merge(super::webhooks_api::router())
        .routes(routes!(super::metrics::scrape))
        .merge(capabilities)
}

fn limit(requested: Option<u32>) -> u32 {
    requested.unwrap_or(100).clamp(1, AUDIT_MAX)
}

fn instance_doc(app: &AppState, record: &InstanceRecord) -> InstanceDoc {
    app.engine.instances().view(record).into()
}

// ----- handlers -----

/// Who is calling (and the session's CSRF token).
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, body = SessionDoc), (status = 401, body = ErrorBody)))]
async fn session(Extension(who): Extension<Principal>) -> Json<SessionDoc> {
    Json(match &who {
        Principal::User { csrf, .. } => SessionDoc {
            actor: who.actor(),
            kind: "session".into(),
            scope: None,
            csrf_token: Some(csrf.clone()),
        },
        Principal::Token { scope, .. } => SessionDoc {
            actor: who.actor(),
            kind: "token".into(),
            scope: Some(*scope),
            csrf_token: None,
        },
    })
}

/// Loaded plugins, and refused files with the reasons.
#[utoipa::path(get, path = "/api/plugins", tag = "plugins",
    responses((status = 200, body = PluginList), (status = 401, body = ErrorBody)))]
async fn list_plugins(State(app): State<AppState>) -> Json<PluginList> {
    let registry: &crate::loader::Registry = &app.engine.registry;
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
async fn plugin_schema(
    State(app): State<AppState>,
    Path(plugin): Path<String>,
    ApiQuery(lang): ApiQuery<crate::i18n::LangQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let lang = match app.engine.registry.get(&plugin) {
        Some(p) => crate::i18n::choose_for_request(p, &lang, &headers)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => crate::i18n::ENGLISH.to_owned(),
    };
    let body = app.schema_json_in(&plugin, &lang).ok_or_else(|| {
        crate::instances::ConfigError::UnknownPlugin {
            plugin: plugin.clone(),
            loaded: app
                .engine
                .registry
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

/// Instances with their state and last test.
#[utoipa::path(get, path = "/api/instances", tag = "instances",
    responses((status = 200, body = Vec<InstanceSummary>), (status = 401, body = ErrorBody)))]
async fn list_instances(
    State(app): State<AppState>,
) -> Result<Json<Vec<InstanceSummary>>, ApiError> {
    let records = app
        .engine
        .store
        .list()
        .map_err(crate::instances::ConfigError::from)?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| InstanceSummary {
                last_test: app
                    .last_test(r.id.as_str())
                    .map(|(at_ms, report)| LastTestSummary {
                        at_ms,
                        status: report.status.into(),
                        summary: report.summary,
                    }),
                id: r.id.to_string(),
                plugin: r.plugin,
                enabled: r.enabled,
                revision: r.revision,
            })
            .collect(),
    ))
}

/// Creates a disabled, empty instance of a plugin.
#[utoipa::path(post, path = "/api/instances", tag = "instances", request_body = CreateInstance,
    responses((status = 201, body = InstanceDoc), (status = 400, body = ErrorBody),
        (status = 404, description = "unknown plugin", body = ErrorBody),
        (status = 409, description = "already exists", body = ErrorBody)))]
async fn create_instance(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateInstance>,
) -> Result<(StatusCode, Json<InstanceDoc>), ApiError> {
    let record = actions::create_instance(&app, who.actor(), &body.id, &body.plugin).await?;
    Ok((StatusCode::CREATED, Json(instance_doc(&app, &record))))
}

/// One instance: its fields, with secrets as set/unset only.
#[utoipa::path(get, path = "/api/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceDoc), (status = 404, body = ErrorBody)))]
async fn get_instance(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = actions::instance_id(&id)?;
    let json = |body: Bytes| {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    // The answer is cached by the file's exact content (see `cache`); on a miss it is made
    // from the very bytes read, so the cached answer always matches its key.
    if let Some(Ok(file)) = app.engine.store.file_of(&id).map(|f| read_small(&f)) {
        let registry: &crate::loader::Registry = &app.engine.registry;
        if let Some(answer) = app.instance_cache.get(id.as_str(), &file, registry) {
            return Ok(json(answer));
        }
        let parsed = std::str::from_utf8(&file)
            .ok()
            .and_then(|text| toml::from_str::<InstanceRecord>(text).ok())
            .filter(|r| r.id == id);
        if let Some((record, plugin)) =
            parsed.and_then(|r| registry.get(&r.plugin).cloned().map(|p| (r, p)))
        {
            let answer = Bytes::from(
                serde_json::to_vec(&instance_doc(&app, &record)).map_err(ApiError::internal)?,
            );
            app.instance_cache
                .put(id.as_str(), Bytes::from(file), &plugin, answer.clone());
            return Ok(json(answer));
        }
    }
    // Missing or unreadable: the store says why.
    let record = app
        .engine
        .store
        .get(&id)
        .map_err(crate::instances::ConfigError::from)?;
    Ok(Json(instance_doc(&app, &record)).into_response())
}

/// Reads a small file without asking its size first (one system call fewer than
/// `std::fs::read`, on the hottest path of the API).
fn read_small(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Deletes an instance, its values and its state.
#[utoipa::path(delete, path = "/api/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id"), RevisionQuery),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody),
        (status = 409, description = "stale revision", body = ErrorBody)))]
async fn delete_instance(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
) -> Result<StatusCode, ApiError> {
    actions::delete_instance(&app, who.actor(), &id, q.revision).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Saves one field, validated against its own schema. An enabled instance must stay valid.
#[utoipa::path(put, path = "/api/instances/{id}/fields/{field}", tag = "instances",
    request_body = SetField,
    params(("id" = String, Path, description = "Instance id"),
        ("field" = String, Path, description = "Field name")),
    responses((status = 200, body = InstanceDoc),
        (status = 422, description = "`invalid_value` (with `field` and `pointer`) or `invalid_configuration`", body = ErrorBody),
        (status = 409, description = "stale revision", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn set_field(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, field)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetField>,
) -> Result<Json<InstanceDoc>, ApiError> {
    let record =
        actions::set_field(&app, who.actor(), &id, &field, body.value, body.revision).await?;
    Ok(Json(instance_doc(&app, &record)))
}

/// Clears one field (back to its default, if it has one).
#[utoipa::path(delete, path = "/api/instances/{id}/fields/{field}", tag = "instances",
    params(("id" = String, Path, description = "Instance id"),
        ("field" = String, Path, description = "Field name"), RevisionQuery),
    responses((status = 200, body = InstanceDoc), (status = 422, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn clear_field(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, field)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
) -> Result<Json<InstanceDoc>, ApiError> {
    let record = actions::clear_field(&app, who.actor(), &id, &field, q.revision).await?;
    Ok(Json(instance_doc(&app, &record)))
}

fn revision_body(bytes: &Bytes) -> Result<RevisionBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(RevisionBody::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// Enables an instance after checking its whole configuration.
#[utoipa::path(post, path = "/api/instances/{id}/enable", tag = "instances",
    request_body(content = RevisionBody, description = "optional"),
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceDoc),
        (status = 422, description = "`invalid_configuration`, every problem in `errors`", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_instance(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<InstanceDoc>, ApiError> {
    let body = revision_body(&body)?;
    let record = actions::set_enabled(&app, who.actor(), &id, true, body.revision).await?;
    Ok(Json(instance_doc(&app, &record)))
}

/// Disables an instance.
#[utoipa::path(post, path = "/api/instances/{id}/disable", tag = "instances",
    request_body(content = RevisionBody, description = "optional"),
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceDoc), (status = 409, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn disable_instance(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<InstanceDoc>, ApiError> {
    let body = revision_body(&body)?;
    let record = actions::set_enabled(&app, who.actor(), &id, false, body.revision).await?;
    Ok(Json(instance_doc(&app, &record)))
}

/// Runs the instance's test routine with its saved values, or with unsaved `values` laid
/// over them (not saved; the result is then not recorded as the last test).
#[utoipa::path(post, path = "/api/instances/{id}/test", tag = "instances",
    request_body(content = TestRequest, description = "optional"),
    params(("id" = String, Path, description = "Instance id"), crate::i18n::LangQuery,
        ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses((status = 200, description = "the report, whatever its status, in the language of `Content-Language`", body = TestReportDoc),
        (status = 422, description = "an unsaved value is invalid", body = ErrorBody),
        (status = 400, description = "`lang` is not a language tag, or the body is not valid", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn run_test(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(lang): ApiQuery<crate::i18n::LangQuery>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: TestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))?
    };
    let report = actions::test(&app, who.actor(), &id, &request.values).await?;
    let (lang, report) = report_for_request(&app, &id, report, &lang, &headers)?;
    Ok((
        crate::i18n::language_headers(&lang),
        Json(TestReportDoc::from(report)),
    )
        .into_response())
}

/// A test report of instance `id` in the language the request asks for, and that language.
fn report_for_request(
    app: &AppState,
    id: &str,
    report: TestReport,
    lang: &crate::i18n::LangQuery,
    headers: &axum::http::HeaderMap,
) -> Result<(String, TestReport), ApiError> {
    let plugin = actions::instance_id(id)
        .ok()
        .and_then(|id| app.engine.store.get(&id).ok())
        .and_then(|r| app.engine.registry.get(&r.plugin).cloned());
    Ok(match plugin {
        Some(p) => {
            let lang = crate::i18n::choose_for_request(&p, lang, headers)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let report = crate::i18n::report_in(&p, report, &lang);
            (lang, report)
        }
        None => (crate::i18n::ENGLISH.to_owned(), report),
    })
}

/// The last recorded test of an instance.
#[utoipa::path(get, path = "/api/instances/{id}/test", tag = "instances",
    params(("id" = String, Path, description = "Instance id"), crate::i18n::LangQuery,
        ("Accept-Language" = Option<String>, Header, description = "Used when `lang` is absent")),
    responses((status = 200, description = "in the language of `Content-Language`", body = LastTest),
        (status = 400, description = "`lang` is not a language tag", body = ErrorBody),
        (status = 404, description = "`not_found`, or `not_tested` when never tested", body = ErrorBody)))]
async fn last_test(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(lang): ApiQuery<crate::i18n::LangQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = actions::instance_id(&id)?;
    app.engine
        .store
        .get(&id)
        .map_err(crate::instances::ConfigError::from)?;
    let (at_ms, report) = app.last_test(id.as_str()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_tested",
            format!("instance `{id}` has not been tested yet"),
        )
    })?;
    let (lang, report) = report_for_request(&app, id.as_str(), report, &lang, &headers)?;
    Ok((
        crate::i18n::language_headers(&lang),
        Json(LastTest {
            at_ms,
            report: report.into(),
        }),
    )
        .into_response())
}

/// The audit history of one instance, newest first.
#[utoipa::path(get, path = "/api/instances/{id}/audit", tag = "audit",
    params(("id" = String, Path, description = "Instance id"), LimitQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn instance_audit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(app.audit.list(Some(&id), limit(q.limit))?))
}

/// The audit history, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn audit(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(app.audit.list(
        q.instance.as_deref().filter(|s| !s.is_empty()),
        limit(q.limit),
    )?))
}

/// Operations served by the loaded plugins, with the instances able to serve them.
#[utoipa::path(get, path = "/api/capabilities", tag = "capabilities",
    responses((status = 200, body = Vec<CapabilityDoc>)))]
async fn list_capabilities(
    State(app): State<AppState>,
) -> Result<Json<Vec<CapabilityDoc>>, ApiError> {
    let records = app
        .engine
        .store
        .list()
        .map_err(crate::instances::ConfigError::from)?;
    let mut operations: Vec<String> = app
        .engine
        .registry
        .plugins
        .iter()
        .flat_map(|p| p.manifest.capabilities.iter().cloned())
        .collect();
    operations.sort();
    operations.dedup();
    Ok(Json(
        operations
            .into_iter()
            .map(|op| {
                let plugins: Vec<String> = app
                    .engine
                    .registry
                    .serving(&op)
                    .map(|p| p.id().to_owned())
                    .collect();
                let instances = records
                    .iter()
                    .filter(|r| plugins.contains(&r.plugin))
                    .map(|r| CapabilityInstance {
                        id: r.id.to_string(),
                        plugin: r.plugin.clone(),
                        enabled: r.enabled,
                    })
                    .collect();
                CapabilityDoc {
                    operation: op,
                    plugins,
                    instances,
                }
            })
            .collect(),
    ))
}

/// Calls a capability operation (what the ERP does). The body is the operation's input;
/// the answer is its output. Needs a token of scope `capabilities` or `admin`.
///
/// A caller that waits less than the host's 120 s says so with `Prefer: wait=<seconds>`
/// (RFC 7240): a call whose provider quota frees up later fails at once with
/// `429 quota_exhausted` and `Retry-After`.
#[utoipa::path(post, path = "/api/capabilities/{operation}", tag = "capabilities",
    params(("operation" = String, Path, description = "E.g. `company.lookup`"), CapabilityQuery,
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>` (RFC 7240): how long the caller waits; a call whose provider quota frees up later fails at once with 429 `quota_exhausted` and `Retry-After`")),
    request_body(content = Object, description = "The operation's input, e.g. `{\"id\": \"21920023500014\"}` for company.lookup"),
    responses((status = 200, description = "The operation's output", body = Object),
        (status = 404, description = "`no_provider`, `not_found`, `unsupported_operation`", body = ErrorBody),
        (status = 409, description = "`instance_disabled`, `ambiguous_provider`, `invalid_configuration`", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the input is wrong", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn invoke_capability(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(operation): Path<String>,
    ApiQuery(q): ApiQuery<CapabilityQuery>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let deadline =
        crate::services::quota::preferred_wait(&headers).unwrap_or(crate::engine::CALL_DEADLINE);
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the input is not valid JSON: {e}")))?
    };
    let instance = q
        .instance
        .as_deref()
        .map(actions::instance_id)
        .transpose()?;
    let out = app
        .engine
        .invoke_within(&operation, input, instance.as_ref(), &who.actor(), deadline)
        .await?;
    Ok(Json(out))
}

/// API tokens (never their values).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>)))]
async fn list_tokens(State(app): State<AppState>) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(app.auth.list_tokens()?))
}

/// Creates an API token; its value is in this answer only.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "`invalid_value`: the name is not valid", body = ErrorBody)))]
async fn create_token(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let actor = who.actor();
    let (info, token) = app
        .auth
        .create_token(&body.name, body.scope, &actor)
        .map_err(auth_error)?;
    app.audit.record_or_log(Change {
        actor: &actor,
        instance: None,
        field: None,
        action: Action::CreateToken,
        old: None,
        new: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
    });
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// Revokes an API token, by id or name.
#[utoipa::path(delete, path = "/api/tokens/{token}", tag = "tokens",
    params(("token" = String, Path, description = "Token id or name")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(token): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    let info = app.auth.revoke_token(&token).map_err(auth_error)?;
    app.audit.record_or_log(Change {
        actor: &who.actor(),
        instance: None,
        field: None,
        action: Action::RevokeToken,
        old: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
        new: None,
    });
    Ok(Json(info))
}

/// A scheduled task of an instance, with its last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledTaskDoc {
    pub instance: String,
    pub task: String,
    pub description: String,
    /// Tasks run only for enabled instances.
    pub enabled: bool,
    pub interval_s: u64,
    pub start_delay_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<TaskRunDoc>,
}

/// One run of a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRunDoc {
    pub started_ms: i64,
    pub duration_ms: i64,
    pub ok: bool,
    pub summary: String,
    /// When the scheduler plans the next run, if a server runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_ms: Option<i64>,
}

impl From<crate::services::state::TaskRun> for TaskRunDoc {
    fn from(r: crate::services::state::TaskRun) -> Self {
        TaskRunDoc {
            started_ms: r.started_ms,
            duration_ms: r.duration_ms,
            ok: r.ok,
            summary: r.summary,
            next_ms: r.next_ms,
        }
    }
}

/// Scheduled tasks of every instance, with their timing and last run.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks",
    responses((status = 200, body = Vec<ScheduledTaskDoc>)))]
async fn tasks(State(app): State<AppState>) -> Result<Json<Vec<ScheduledTaskDoc>>, ApiError> {
    let engine = &app.engine;
    let registry: &crate::loader::Registry = &engine.registry;
    let mut rows = Vec::new();
    for record in engine
        .store
        .list()
        .map_err(crate::instances::ConfigError::from)?
    {
        let Some(plugin) = registry.get(&record.plugin) else {
            continue;
        };
        let config = engine.instances().effective_config(plugin, &record).ok();
        for task in &plugin.manifest.tasks {
            let (interval, delay) = config
                .as_ref()
                .map(|c| crate::scheduler::timing(c, &task.interval_field, &task.start_delay_field))
                .unwrap_or_default();
            let last_run = engine
                .services
                .state
                .last_task_run(record.id.as_str(), &task.name)
                .map_err(ApiError::internal)?
                .map(TaskRunDoc::from);
            rows.push(ScheduledTaskDoc {
                instance: record.id.to_string(),
                task: task.name.clone(),
                description: task.description.clone(),
                enabled: record.enabled,
                interval_s: interval.as_secs(),
                start_delay_s: delay.as_secs(),
                last_run,
            });
        }
    }
    Ok(Json(rows))
}

/// Runs one task of an instance now (unless a run is in progress) and returns the run.
#[utoipa::path(post, path = "/api/instances/{id}/tasks/{task}/run", tag = "tasks",
    params(("id" = String, Path, description = "Instance id"),
        ("task" = String, Path, description = "Task name, as the plugin declares it")),
    responses((status = 200, description = "the run, failed or not", body = TaskRunDoc),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_task(
    State(app): State<AppState>,
    Path((id, task)): Path<(String, String)>,
) -> Result<Json<TaskRunDoc>, ApiError> {
    let id = actions::instance_id(&id)?;
    let run = app.engine.run_task(&id, &task, None).await?;
    Ok(Json(run.into()))
}

/// A certificate authority trusted for provider connections, besides the system's.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertDoc {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 fingerprint.
    pub sha256: String,
    pub is_ca: bool,
}

/// The extra certificate authorities trusted for provider connections (added and removed
/// with `passerelle trust`).
#[utoipa::path(get, path = "/api/trust", tag = "trust",
    responses((status = 200, body = Vec<CertDoc>)))]
async fn trust(State(app): State<AppState>) -> Result<Json<Vec<CertDoc>>, ApiError> {
    let list = crate::trust::TrustStore::new(&app.engine.settings.data_dir)
        .list()
        .map_err(ApiError::internal)?;
    Ok(Json(
        list.into_iter()
            .map(|c| CertDoc {
                subject: c.subject,
                issuer: c.issuer,
                not_before: c.not_before,
                not_after: c.not_after,
                sha256: c.sha256,
                is_ca: c.is_ca,
            })
            .collect(),
    ))
}

pub fn auth_error(e: super::auth::AuthError) -> ApiError {
    use super::auth::AuthError;
    match e {
        AuthError::Db(db) => ApiError::internal(db),
        AuthError::Hash(h) => ApiError::internal(h),
        AuthError::TokenExists(_) => {
            ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
        }
        AuthError::NoSuchToken(_) => ApiError::not_found(e.to_string()),
        AuthError::WeakPassword | AuthError::BadUserName | AuthError::BadTokenName => {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                e.to_string(),
            )
        }
    }
}
