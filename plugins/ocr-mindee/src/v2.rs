//! Talking to Mindee's API v2: enqueue a document, poll its job, fetch the inference, and
//! what each HTTP outcome means. Checked against Mindee's own client libraries
//! (`mindee/mindee-api-python`, `mindee/v2/mindee_http/mindee_api_v2.py` and
//! `mindee/v2/client.py`) and their test data (`mindee/client-lib-test-data`, `v2/`).
//!
//! The protocol: the key goes in `Authorization` as is (no `Token ` prefix, which is v1's);
//! `POST /v2/inferences/enqueue` takes a multipart form with `model_id` and the `file`, and
//! answers `{"job": {...}}`; `GET /v2/jobs/{id}` answers the job, `Processing` until it is
//! `Processed` (then with a redirect to its `result_url`, `GET /v2/inferences/{id}`) or
//! `Failed` (with an `error`). The host's HTTP client follows same-origin redirects, so a
//! poll may come back as the inference itself; both shapes are read. Errors are RFC 9457
//! problem documents: `{"status", "title", "detail", "code": "401-001", "errors": [...]}`.
//!
//! Polling follows the clients' defaults (first look after 2 s, then every 1.5 s; a
//! `Retry-After` on the job answer takes precedence, never under the clients' 1 s minimum)
//! and stops before the host's deadline for one call (120 s), naming the job so that a
//! person can find it on app.mindee.com.
//!
//! Retries: the enqueue creates a job that is billed, so it is retried only when Mindee
//! proves nothing was applied (429, 503, no connection); polls and reads are retried like
//! any read.

use crate::client::{html_summary, transport_error};
use crate::config::Config;
use crate::document::{Document, CONTENT_FIELD};
use crate::multipart;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;
use std::time::Duration;

/// The multipart field API v2 reads the file from.
pub const FILE_FIELD: &str = "file";
/// First look at a job (the clients' `initial_delay_sec`).
pub const INITIAL_DELAY: Duration = Duration::from_millis(2000);
/// Between two looks (the clients' `delay_sec`).
pub const POLL_DELAY: Duration = Duration::from_millis(1500);
/// The clients refuse delays under one second.
const MIN_DELAY: Duration = Duration::from_secs(1);
/// How long a reading may take in all: the host gives one call 120 s.
pub const READ_BUDGET: Duration = Duration::from_secs(110);

/// An RFC 9457 problem document, as Mindee's API v2 sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problem {
    pub status: Option<u16>,
    /// `Invalid API key`.
    pub title: Option<String>,
    /// `The provided API key is invalid.`
    pub detail: Option<String>,
    /// `401-001`: the status, then Mindee's number for the case.
    pub code: Option<String>,
    /// `(pointer, detail)` of each invalid input, e.g. `("#/model_id", "…")`.
    pub errors: Vec<(String, String)>,
}

impl Problem {
    /// Reads a problem document; `None` when the body is not one.
    pub fn from_value(json: &Value) -> Option<Problem> {
        let text = |key: &str| {
            json.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(300).collect::<String>())
        };
        let problem = Problem {
            status: json
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            title: text("title"),
            detail: text("detail"),
            code: text("code"),
            errors: json
                .get("errors")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|e| {
                            let part = |k: &str| {
                                e.get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            (part("pointer"), part("detail"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        (problem.detail.is_some() || problem.title.is_some()).then_some(problem)
    }

    /// Reads a problem document from a body.
    pub fn from_body(body: &[u8]) -> Option<Problem> {
        Problem::from_value(&serde_json::from_slice(body).ok()?)
    }

    /// `Invalid API key: The provided API key is invalid. [401-001]`, then each invalid
    /// input (`model_id: must be a valid UUID format`).
    pub fn sentence(&self) -> String {
        let mut s = match (&self.title, &self.detail) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (Some(t), None) => t.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        };
        if let Some(code) = &self.code {
            s.push_str(&format!(" [{code}]"));
        }
        for (pointer, detail) in &self.errors {
            let field = pointer.trim_start_matches("#/");
            s.push_str(&format!("; {field}: {detail}"));
        }
        s
    }

    /// Whether an invalid input is the model ID.
    fn about_model_id(&self) -> bool {
        self.errors.iter().any(|(p, _)| p.contains("model_id"))
    }
}

/// What the answer says, for messages: Mindee's problem, or an HTML page's heading.
fn said(response: &HttpResponse) -> String {
    if let Some(problem) = Problem::from_body(&response.body) {
        return format!(": {}", problem.sentence());
    }
    if let Some(heading) = html_summary(&response.body) {
        return format!(", an HTML error page saying \"{heading}\"");
    }
    String::new()
}

/// The error for an API v2 answer that is not a success.
pub fn status_error(
    response: &HttpResponse,
    url: &str,
    model_id: &str,
    attempts: Option<&str>,
) -> PluginError {
    let status = response.status;
    let problem = Problem::from_body(&response.body).unwrap_or_default();
    let said = said(response);
    let tried = attempts.map(|a| format!(" ({a})")).unwrap_or_default();
    match status {
        400 | 413 | 415 => PluginError::invalid_input(format!(
            "Mindee refused the document (HTTP {status}{said}): send a readable JPEG, PNG, \
             WebP, HEIC, TIFF or PDF"
        ))
        .with_field(CONTENT_FIELD),
        401 => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "Mindee refused the API key (HTTP 401{said}): copy an API key from \
                 app.mindee.com (API keys) into the Mindee API key field, without `Token `; \
                 a key of platform.mindee.com works only with API version v1"
            ),
        )
        .with_field("token"),
        402 | 403 => PluginError::new(
            ErrorKind::Forbidden,
            format!(
                "Mindee refuses requests from this account (HTTP {status}{said}): check the \
                 plan and its remaining pages on app.mindee.com"
            ),
        ),
        404 => PluginError::config(
            "model_id",
            format!(
                "Mindee has no model {model_id} for this API key at {url} (HTTP 404{said}): \
                 copy the model ID from app.mindee.com, with a key of the same organisation"
            ),
        ),
        422 if problem.about_model_id() => PluginError::config(
            "model_id",
            format!(
                "Mindee refused the model ID {model_id:?} (HTTP 422{said}): copy the model's \
                 UUID from app.mindee.com"
            ),
        ),
        422 => PluginError::invalid_input(format!(
            "Mindee refused the request (HTTP 422{said}): send a readable JPEG, PNG, WebP, \
             HEIC, TIFF or PDF"
        ))
        .with_field(CONTENT_FIELD),
        429 => {
            let wait = response
                .retry_after_secs()
                .map(|s| format!("retry in {s} s (Retry-After)"))
                .unwrap_or_else(|| "retry in a moment".to_owned());
            PluginError::new(
                ErrorKind::RateLimited,
                format!("Mindee's rate limit is reached (HTTP 429{said}){tried}: {wait}"),
            )
        }
        500..=599 => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Mindee could not take the document now (HTTP {status}{said}){tried}: try \
                 again later"
            ),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("unexpected answer from {url} (HTTP {status}{said}){tried}"),
        ),
    }
}

/// A job as `GET /v2/jobs/{id}` and the enqueue describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// `Processing`, `Processed` or `Failed`.
    pub status: String,
    pub result_url: Option<String>,
    pub error: Option<Problem>,
}

impl Job {
    /// Reads `{"job": {...}}`.
    pub fn from_value(json: &Value) -> Option<Job> {
        let job = json.get("job")?;
        let text = |k: &str| {
            job.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        Some(Job {
            id: text("id")?,
            status: text("status").unwrap_or_default(),
            result_url: text("result_url"),
            error: job.get("error").and_then(Problem::from_value),
        })
    }
}

/// Mindee's API v2 for one instance.
pub struct ClientV2<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
}

impl<'c, 'h> ClientV2<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        ClientV2 { config, host }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url())
    }

    /// `{url}/v2/inferences/enqueue`.
    pub fn enqueue_url(&self) -> String {
        self.url("/v2/inferences/enqueue")
    }

    /// `{url}/v2/search/models`.
    pub fn search_url(&self) -> String {
        self.url("/v2/search/models")
    }

    fn authorised(&self, request: HttpRequest) -> HttpRequest {
        request
            .secret_header("Authorization", self.config.token())
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms())
    }

    fn send(
        &self,
        request: &HttpRequest,
        idempotency: Idempotency,
    ) -> Result<HttpResponse, PluginError> {
        let retried = self
            .config
            .retry_policy()
            .send(self.host, request, idempotency);
        let tried = (retried.attempts.len() > 1).then(|| retried.describe());
        let response = retried.result.map_err(|e| {
            transport_error(
                e,
                &request.url,
                self.config.timeout.secs(),
                tried.as_deref(),
            )
        })?;
        if response.status >= 400 {
            return Err(status_error(
                &response,
                &request.url,
                self.config.model_id(),
                tried.as_deref(),
            ));
        }
        Ok(response)
    }

    /// Enqueues `document`, polls its job and returns the inference (`{"inference": …}`).
    pub fn read(&self, document: &Document) -> Result<Value, PluginError> {
        let started = self.host.now_unix_ms();
        let form = multipart::form_with_fields(
            &[("model_id", self.config.model_id())],
            FILE_FIELD,
            &document.file_name,
            document.format.media_type(),
            &document.bytes,
            started,
        );
        let request = self
            .authorised(HttpRequest::post(self.enqueue_url()))
            .body(&form.content_type, form.body);
        let answer = self.send(&request, Idempotency::NotIdempotent)?;
        let json: Value = answer.json()?;
        let job = Job::from_value(&json).ok_or_else(|| {
            upstream(format!(
                "Mindee's answer to the enqueue has no `job`: {}",
                excerpt(&answer.body)
            ))
        })?;
        if let Some(error) = &job.error {
            return Err(job_failed(&job, error));
        }
        self.host.log(
            LogLevel::Info,
            format!("Mindee job {} enqueued; polling it", job.id),
        );
        self.poll(
            &job.id,
            started,
            retry_after(&answer).unwrap_or(INITIAL_DELAY),
        )
    }

    fn poll(&self, job_id: &str, started: u64, first_wait: Duration) -> Result<Value, PluginError> {
        let url = self.url(&format!("/v2/jobs/{job_id}"));
        let mut wait = first_wait;
        let mut looks = 0u32;
        loop {
            let elapsed = Duration::from_millis(self.host.now_unix_ms().saturating_sub(started));
            if elapsed + wait > READ_BUDGET {
                return Err(PluginError::new(
                    ErrorKind::Timeout,
                    format!(
                        "Mindee had not finished reading the document after {} s and {looks} \
                         looks at job {job_id}: try again later; the job is visible on \
                         app.mindee.com",
                        elapsed.as_secs()
                    ),
                ));
            }
            self.host.sleep(wait);
            looks += 1;
            let request = self.authorised(HttpRequest::get(&url));
            let response = self.send(&request, Idempotency::Idempotent)?;
            let json: Value = response.json()?;
            if json.get("inference").is_some() {
                return Ok(json);
            }
            let job = Job::from_value(&json).ok_or_else(|| {
                upstream(format!(
                    "Mindee's answer for job {job_id} is neither a job nor an inference: {}",
                    excerpt(&response.body)
                ))
            })?;
            match job.status.as_str() {
                "Failed" => {
                    let error = job.error.clone().unwrap_or_default();
                    return Err(job_failed(&job, &error));
                }
                "Processed" => {
                    let location = job
                        .result_url
                        .clone()
                        .or_else(|| response.header("Location").map(str::to_owned))
                        .unwrap_or_else(|| format!("/v2/inferences/{}", job.id));
                    return self.result(&location);
                }
                _ => {
                    wait = retry_after(&response).unwrap_or(POLL_DELAY);
                }
            }
        }
    }

    /// Reads the inference at `location`, kept on the configured host: the key is never
    /// sent anywhere else, whatever the job says.
    fn result(&self, location: &str) -> Result<Value, PluginError> {
        let path = path_of(location);
        let request = self.authorised(HttpRequest::get(self.url(path)));
        let response = self.send(&request, Idempotency::Idempotent)?;
        let json: Value = response.json()?;
        if json.get("inference").is_none() {
            return Err(upstream(format!(
                "Mindee's answer at {path} is not an inference: {}",
                excerpt(&response.body)
            )));
        }
        Ok(json)
    }

    /// `GET /v2/search/models`: lists the key's models without reading a document, so no
    /// page is billed. Sent once.
    pub fn search_models(&self) -> Result<HttpResponse, HttpError> {
        self.host
            .http(&self.authorised(HttpRequest::get(self.search_url())))
    }
}

/// The path (and query) of a URL, or the value itself when it is already a path.
fn path_of(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response
        .retry_after_secs()
        .map(|s| Duration::from_secs(s).max(MIN_DELAY))
}

fn job_failed(job: &Job, error: &Problem) -> PluginError {
    let sentence = error.sentence();
    let said = if sentence.is_empty() {
        "no reason given".to_owned()
    } else {
        sentence
    };
    let message = format!(
        "Mindee could not read the document (job {}: {said})",
        job.id
    );
    match error.status {
        Some(422) if error.about_model_id() => PluginError::config(
            "model_id",
            format!("{message}: copy the model's UUID from app.mindee.com"),
        ),
        Some(400..=499) => PluginError::invalid_input(format!(
            "{message}: send a readable JPEG, PNG, WebP, HEIC, TIFF or PDF of the receipt"
        ))
        .with_field(CONTENT_FIELD),
        _ => PluginError::new(
            ErrorKind::Unavailable,
            format!("{message}: try again later"),
        ),
    }
}

fn upstream(message: String) -> PluginError {
    PluginError::new(ErrorKind::Upstream, message)
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVALID_KEY: &str = include_str!(
        "../../../tests/emulators/fixtures/ocr-mindee/v2/error_401_invalid_api_key.json"
    );
    const MISSING: &str = include_str!(
        "../../../tests/emulators/fixtures/ocr-mindee/v2/error_401_missing_credentials.json"
    );
    const FAIL_422: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/v2/job_fail_422.json");
    const PROCESSING: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/v2/job_ok_processing.json");
    const PROCESSED: &str = include_str!(
        "../../../tests/emulators/fixtures/ocr-mindee/v2/job_ok_processed_webhooks_ok.json"
    );

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn real_problem_documents_are_read() {
        let p = Problem::from_body(INVALID_KEY.as_bytes()).unwrap();
        assert_eq!(p.status, Some(401));
        assert_eq!(
            p.sentence(),
            "Invalid API key: The provided API key is invalid. [401-001]"
        );
        let p = Problem::from_body(MISSING.as_bytes()).unwrap();
        assert_eq!(p.code.as_deref(), Some("401-008"));
        let e = status_error(&response(401, INVALID_KEY), "u", "m", None);
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.field.as_deref(), Some("token"));
        assert!(e.message.contains("without `Token `"), "{}", e.message);
        assert!(e.message.contains("[401-001]"), "{}", e.message);
        assert!(Problem::from_body(b"<html></html>").is_none());
    }

    #[test]
    fn real_jobs_are_read() {
        let job = Job::from_value(&serde_json::from_str(PROCESSING).unwrap()).unwrap();
        assert_eq!(job.status, "Processing");
        assert_eq!(job.result_url, None);
        assert_eq!(job.error, None);
        let job = Job::from_value(&serde_json::from_str(PROCESSED).unwrap()).unwrap();
        assert_eq!(job.status, "Processed");
        assert_eq!(
            path_of(job.result_url.as_deref().unwrap()),
            "/v2/inferences/12345678-1234-1234-1234-123456789ABC"
        );
        let job = Job::from_value(&serde_json::from_str(FAIL_422).unwrap()).unwrap();
        assert_eq!(job.status, "Failed");
        let error = job.error.clone().unwrap();
        assert_eq!(error.status, Some(422));
        let e = job_failed(&job, &error);
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.field.as_deref(), Some("model_id"));
        assert!(
            e.message
                .contains("model_id: model_id must be a valid UUID format"),
            "{}",
            e.message
        );
    }

    #[test]
    fn statuses_name_the_field_to_fix() {
        let unknown = r#"{"status":404,"title":"Not Found","detail":"Model not found.","code":"404-003","errors":[]}"#;
        let e = status_error(
            &response(404, unknown),
            "u",
            "fc405e37-4ba4-4d03-aeba-533a8d1f0f21",
            None,
        );
        assert_eq!(e.field.as_deref(), Some("model_id"));
        assert!(e.message.contains("fc405e37"), "{}", e.message);
        let e = status_error(&response(503, "<html><h1>Down</h1></html>"), "u", "m", None);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("\"Down\""));
        assert_eq!(
            path_of("https://x.test/v2/inferences/1?a=b"),
            "/v2/inferences/1?a=b"
        );
        assert_eq!(path_of("/v2/inferences/1"), "/v2/inferences/1");
        assert_eq!(path_of("https://x.test"), "/");
    }
}
