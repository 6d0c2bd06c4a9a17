//! `/api/instances`: instances with per-field save (each field validated on its own),
//! enable/disable (the whole configuration checked), delete, and the test routine with saved
//! or unsaved values.

use super::{ApiJson, ApiQuery};
use crate::instances::{FieldView, InstanceView};
use crate::server::actions;
use crate::server::auth::Principal;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use crate::store::InstanceRecord;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use passerelle_plugin_api::{Status, Step, TestReport};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

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

pub(super) fn instance_doc(app: &AppState, record: &InstanceRecord) -> InstanceDoc {
    app.engine.instances().view(record).into()
}

/// Instances with their state and last test.
#[utoipa::path(get, path = "/api/instances", tag = "instances",
    responses((status = 200, body = Vec<InstanceSummary>), (status = 401, body = ErrorBody)))]
pub(super) async fn list_instances(
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
pub(super) async fn create_instance(
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
pub(super) async fn get_instance(
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
        let registry = app.engine.registry.load();
        if let Some(answer) = app.instance_cache.get(id.as_str(), &file, &registry) {
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
pub(super) fn read_small(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
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
pub(super) async fn delete_instance(
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
pub(super) async fn set_field(
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
pub(super) async fn clear_field(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, field)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
) -> Result<Json<InstanceDoc>, ApiError> {
    let record = actions::clear_field(&app, who.actor(), &id, &field, q.revision).await?;
    Ok(Json(instance_doc(&app, &record)))
}

pub(super) fn revision_body(bytes: &Bytes) -> Result<RevisionBody, ApiError> {
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
pub(super) async fn enable_instance(
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
pub(super) async fn disable_instance(
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
pub(super) async fn run_test(
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
pub(super) fn report_for_request(
    app: &AppState,
    id: &str,
    report: TestReport,
    lang: &crate::i18n::LangQuery,
    headers: &axum::http::HeaderMap,
) -> Result<(String, TestReport), ApiError> {
    let plugin = actions::instance_id(id)
        .ok()
        .and_then(|id| app.engine.store.get(&id).ok())
        .and_then(|r| app.engine.registry.get(&r.plugin));
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
pub(super) async fn last_test(
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
            crate::failure::ErrorCode::NotTested,
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
