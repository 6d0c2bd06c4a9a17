//! Mindee's API v2, as its client libraries call it (`mindee/mindee-api-python`,
//! `mindee/v2/mindee_http/mindee_api_v2.py`) and as its test data shows it
//! (`mindee/client-lib-test-data`, `v2/`; copies in `fixtures/ocr-mindee/v2/`).
//!
//! - Every route wants the key alone in `Authorization`. No header: 401 `401-008`
//!   "Missing credentials"; anything else than the key, a v1-style `Token <key>` included:
//!   401 `401-001` "Invalid API key" (the real bodies).
//! - `POST /v2/inferences/enqueue` (the Python client's path for extraction; the Node.js
//!   client, `src/v2/http/mindeeApiV2.ts`, posts to `/v2/products/extraction/enqueue` and
//!   reads `/v2/products/extraction/results/{id}`, both served too), multipart with
//!   `model_id` and `file`: a `model_id` that
//!   is not a UUID gets 422 `422-001` with the pointer `#/model_id` (the error of the
//!   real failed-job sample, which the clients' integration tests also get at enqueue); a
//!   well-formed but unknown model gets 404 (the clients' `test_unknown_model_must_throw_error`
//!   expects a 404 with a `404-…` code); a missing file or a type Mindee does not read gets
//!   422 with the pointer `#/file`. Otherwise 202 with the job, `Processing`.
//! - `GET /v2/jobs/{id}`: `Processing` for the configured number of polls, then a 302 to
//!   `GET /v2/inferences/{id}` with the `Processed` job as body, as the clients expect
//!   (`follow_redirects=False`, `result_url`). A document whose structure is broken, or a
//!   job scripted to fail, ends `Failed` with an error (the shape of `job/fail_422.json`).
//! - `GET /v2/inferences/{id}`: the real financial document sample (every field, with
//!   confidences) or the blank one, byte for byte; 404 before the job is processed.
//! - `GET /v2/search/models`: the account's models (the configured model and those of the
//!   real sample), filtered by `name` (contains, case-insensitive) and `model_type`.
//!   Listing bills nothing: it is what the plugin's test routine calls.
//!
//! Problem bodies the test data does not hold (404 model, 422 file, 404 job) are composed
//! in the same RFC 9457 shape (`status`, `detail`, `title`, `code`, `errors`).

use super::{inspect, json_response, lock, Answer, Inspection, Shared, Upload};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Real 401 for a wrong key. See `fixtures/ocr-mindee/README.md`.
pub const ERROR_401_INVALID_API_KEY: &str =
    include_str!("../../fixtures/ocr-mindee/v2/error_401_invalid_api_key.json");
/// Real 401 without a key.
pub const ERROR_401_MISSING_CREDENTIALS: &str =
    include_str!("../../fixtures/ocr-mindee/v2/error_401_missing_credentials.json");
/// Real financial document inference, every field found, with confidences.
pub const FINDOC_COMPLETE: &str =
    include_str!("../../fixtures/ocr-mindee/v2/financial_document_complete_with_coordinates.json");
/// Real financial document inference of a blank page.
pub const FINDOC_BLANK: &str =
    include_str!("../../fixtures/ocr-mindee/v2/financial_document_blank.json");
/// Real answer of `GET /v2/search/models`.
pub const SEARCH_MODELS: &str = include_str!("../../fixtures/ocr-mindee/v2/search_models.json");

/// One job's life.
#[derive(Debug, Clone)]
pub(super) struct Job {
    model_id: String,
    filename: String,
    created_at: String,
    /// Polls left before the job is processed.
    polls_left: u32,
    /// Why it fails, if it does: `(title, detail)`.
    failure: Option<(String, String)>,
    answer: Answer,
    done: bool,
}

/// The v2 part of the emulator's state.
#[derive(Debug, Default)]
pub(super) struct V2State {
    jobs: std::sync::Mutex<HashMap<String, Job>>,
    next: std::sync::atomic::AtomicU64,
    fail_next_job: std::sync::atomic::AtomicBool,
    polls: std::sync::atomic::AtomicUsize,
}

impl V2State {
    pub(super) fn fail_next_job(&self) {
        self.fail_next_job.store(true, Ordering::SeqCst);
    }

    pub(super) fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
}

fn problem(status: StatusCode, title: &str, detail: &str, number: u16, errors: Value) -> Response {
    json_response(
        status,
        json!({
            "status": status.as_u16(),
            "detail": detail,
            "title": title,
            "code": format!("{}-{number:03}", status.as_u16()),
            "errors": errors
        })
        .to_string(),
    )
}

/// The key check every v2 route starts with: the refusal, if any.
fn refusal(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => Some(json_response(
            StatusCode::UNAUTHORIZED,
            ERROR_401_MISSING_CREDENTIALS,
        )),
        // The whole header is the key: `Token <key>` (v1's scheme) is not a key.
        Some(key) if key != state.opts.v2_api_key => Some(json_response(
            StatusCode::UNAUTHORIZED,
            ERROR_401_INVALID_API_KEY,
        )),
        Some(_) => None,
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("api-v2.mindee.net");
    format!("http://{host}")
}

fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

fn job_json(origin: &str, id: &str, job: &Job) -> Value {
    let status = match (&job.failure, job.done) {
        (Some(_), true) => "Failed",
        (None, true) => "Processed",
        _ => "Processing",
    };
    let error = match (&job.failure, job.done) {
        (Some((title, detail)), true) => json!({
            "status": 422,
            "detail": detail,
            "title": title,
            "code": "422-002",
            "errors": []
        }),
        _ => Value::Null,
    };
    json!({
        "job": {
            "id": id,
            "model_id": job.model_id,
            "filename": job.filename,
            "alias": null,
            "created_at": job.created_at,
            "completed_at": if job.done { Value::String(now_text()) } else { Value::Null },
            "status": status,
            "polling_url": format!("{origin}/v2/jobs/{id}"),
            "result_url": if job.done && job.failure.is_none() {
                Value::String(format!("{origin}/v2/inferences/{id}"))
            } else {
                Value::Null
            },
            "webhooks": [],
            "error": error
        }
    })
}

/// `POST /v2/inferences/enqueue`.
pub(super) async fn enqueue(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    let invalid = |pointer: &str, detail: &str| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid fields in form",
            "One or more fields failed validation.",
            1,
            json!([{"pointer": pointer, "detail": detail}]),
        )
    };
    let mut model_id = None;
    let mut file = None;
    if let Ok(mut multipart) = multipart {
        loop {
            match multipart.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().map(str::to_owned);
                    let file_name = field.file_name().map(str::to_owned);
                    let content_type = field.content_type().map(str::to_owned);
                    let Ok(bytes) = field.bytes().await else {
                        return invalid("#/file", "the multipart body could not be read");
                    };
                    match name.as_deref() {
                        Some("model_id") => {
                            model_id = Some(String::from_utf8_lossy(&bytes).trim().to_owned())
                        }
                        Some("file") => file = Some((file_name, content_type, bytes.to_vec())),
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(_) => return invalid("#/file", "the multipart body could not be read"),
            }
        }
    }
    let model_id = model_id.unwrap_or_default();
    if !is_uuid(&model_id) {
        return invalid("#/model_id", "model_id must be a valid UUID format");
    }
    if !model_id.eq_ignore_ascii_case(&state.opts.v2_model_id) {
        return problem(
            StatusCode::NOT_FOUND,
            "Model not found",
            &format!("No model {model_id} was found for this organization."),
            3,
            json!([]),
        );
    }
    let Some((Some(file_name), content_type, bytes)) = file else {
        return invalid("#/file", "a file is required");
    };
    if bytes.is_empty() {
        return invalid("#/file", "the file is empty");
    }
    let failure = match inspect(&bytes) {
        Ok(_) => None,
        Err(Inspection::Unsupported) => {
            return invalid(
                "#/file",
                "file type not allowed: accepted types are png, jpg, webp, heic, tiff, pdf",
            )
        }
        Err(Inspection::Broken(why)) => Some((
            "Invalid file".to_owned(),
            format!("The file cannot be read: {why}"),
        )),
    };
    let failure = if state.v2.fail_next_job.swap(false, Ordering::SeqCst) {
        Some((
            "Inference failed".to_owned(),
            "The model could not process the document.".to_owned(),
        ))
    } else {
        failure
    };
    let kind = inspect(&bytes).unwrap_or("unknown");
    let pages = if kind == "pdf" {
        crate::kit::pdf::count_pages(&bytes).max(1)
    } else {
        1
    };
    if failure.is_none() {
        state.predicted_pages.fetch_add(pages, Ordering::SeqCst);
    }
    lock(&state.uploads).push(Upload {
        product_version: "v2".to_owned(),
        file_name: file_name.clone(),
        content_type,
        bytes,
        kind,
        pages,
    });
    let n = state.v2.next.fetch_add(1, Ordering::SeqCst);
    let id = format!("0b5e{n:04x}-7d2a-4c1e-9f00-{:012x}", 0x00c0_ffee_0000 + n);
    let job = Job {
        model_id,
        filename: file_name,
        created_at: now_text(),
        polls_left: state.opts.v2_polls_before_done,
        failure,
        answer: *lock(&state.answer),
        done: false,
    };
    let body = job_json(&origin(&headers), &id, &job);
    lock(&state.v2.jobs).insert(id, job);
    json_response(StatusCode::ACCEPTED, body.to_string())
}

/// `GET /v2/jobs/{id}`.
pub(super) async fn get_job(
    State(state): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    state.v2.polls.fetch_add(1, Ordering::SeqCst);
    let mut jobs = lock(&state.v2.jobs);
    let Some(job) = jobs.get_mut(&id) else {
        return problem(
            StatusCode::NOT_FOUND,
            "Job not found",
            &format!("No job {id} was found."),
            2,
            json!([]),
        );
    };
    if job.polls_left > 0 {
        job.polls_left -= 1;
    } else {
        job.done = true;
    }
    let origin = origin(&headers);
    let body = job_json(&origin, &id, job).to_string();
    if job.done && job.failure.is_none() {
        let location = format!("{origin}/v2/inferences/{id}");
        let mut response = json_response(StatusCode::FOUND, body);
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    json_response(StatusCode::OK, body)
}

/// `GET /v2/inferences/{id}`.
pub(super) async fn get_inference(
    State(state): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    let jobs = lock(&state.v2.jobs);
    match jobs.get(&id) {
        Some(job) if job.done && job.failure.is_none() => json_response(
            StatusCode::OK,
            match job.answer {
                Answer::Complete => FINDOC_COMPLETE,
                Answer::Empty => FINDOC_BLANK,
            },
        ),
        _ => problem(
            StatusCode::NOT_FOUND,
            "Inference not found",
            &format!("No inference {id} was found."),
            4,
            json!([]),
        ),
    }
}

/// `GET /v2/search/models`.
pub(super) async fn search_models(
    State(state): State<Arc<Shared>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    let sample: Value = serde_json::from_str(SEARCH_MODELS).unwrap_or(Value::Null);
    let mut models = vec![json!({
        "id": state.opts.v2_model_id,
        "name": "Expense Receipts",
        "model_type": "extraction",
        "webhooks": []
    })];
    models.extend(sample["models"].as_array().cloned().unwrap_or_default());
    let total = models.len();
    let name = query.get("name").map(|n| n.to_lowercase());
    let kind = query.get("model_type");
    models.retain(|m| {
        name.as_ref().is_none_or(|n| {
            m["name"]
                .as_str()
                .is_some_and(|s| s.to_lowercase().contains(n.as_str()))
        }) && kind.is_none_or(|k| m["model_type"].as_str() == Some(k.as_str()))
    });
    let filtered = name.is_some() || kind.is_some();
    let body = json!({
        "models": models,
        "pagination": {
            "per_page": 50,
            "page": 1,
            "total_items": models.len(),
            "total_pages": 1,
            "total_items_unfiltered": if filtered { json!(total) } else { Value::Null }
        }
    });
    json_response(StatusCode::OK, body.to_string())
}

/// What a request to an unknown v2 path gets.
pub(super) fn not_found(path: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not Found",
        &format!("{path} does not exist."),
        1,
        json!([]),
    )
    .into_response()
}
