//! An emulator of Mindee's API v1 for expense receipts, and of API v2 (`v2`: enqueue,
//! job polling, inference, model listing), for end-to-end tests of the `ocr-mindee` plugin.
//! Both are served on the same port: v1 under `/v1`, v2 under `/v2` as on
//! `api-v2.mindee.net`.
//!
//! It serves `POST /v1/products/mindee/expense_receipts/{v5,v4}/predict` and refuses what
//! Mindee refuses, in Mindee's order (the one of the Django REST framework it runs on):
//! an unknown product (404), a missing or wrong `Authorization: Token …` (401, real bodies),
//! a plan limit (403), the rate limit of 4 requests per second and 75 per minute (429, real
//! body), then the upload itself, parsed as real `multipart/form-data`: no `document` field
//! or a field that is not a file (400 with the framework's messages), an empty file, a type
//! other than JPEG, PNG, WebP, HEIC, TIFF or PDF, an image whose structure is broken, more
//! than 10 MB or more than 10 PDF pages (400). A readable document gets the real 201 sample
//! of the product version (complete by default, or the "nothing found" one).
//!
//! Outages can be scripted: a gateway answering HTML pages (502/503, the real nginx page)
//! and Mindee's own "Inference failed" (500, real body), for retries.
//!
//! The module also generates test documents: [`sample_jpeg`] is a small baseline JPEG
//! encoder (grayscale, standard tables) so that tests send a real image made on the spot,
//! [`sample_pdf`] writes a PDF of any number of pages, and [`receipt_input`] wraps a file
//! in the JSON input of `ocr.expense_receipt`.

use crate::server::{self, RunningServer};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod v2;
pub use v2::{FINDOC_BLANK, FINDOC_COMPLETE, SEARCH_MODELS};

/// Path of the API under the emulator's root: the plugin's `url` is `{url()}/v1`.
pub const API_PATH: &str = "/v1";
/// Largest document Mindee's synchronous API reads (10 MB, taken as MiB).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Most PDF pages Mindee's synchronous API reads.
pub const MAX_PDF_PAGES: usize = 10;
/// Bodies up to this size reach the handler, so that it can refuse large files itself.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Real v5 (5.2) answer with every field found. See `fixtures/ocr-mindee/README.md`.
pub const V5_COMPLETE: &str =
    include_str!("../fixtures/ocr-mindee/expense_receipts_v5_complete.json");
/// Real v5 (5.0) answer where nothing was found.
pub const V5_EMPTY: &str = include_str!("../fixtures/ocr-mindee/expense_receipts_v5_empty.json");
/// v4 (4.1) answer reconstructed from Mindee's rendering of the same receipt.
pub const V4_COMPLETE: &str =
    include_str!("../fixtures/ocr-mindee/expense_receipts_v4_complete_reconstructed.json");
/// Real v4 (4.0) answer where nothing was found.
pub const V4_EMPTY: &str = include_str!("../fixtures/ocr-mindee/expense_receipts_v4_empty.json");
const ERROR_401_INVALID_TOKEN: &str =
    include_str!("../fixtures/ocr-mindee/error_401_invalid_token.json");
const ERROR_401_NO_TOKEN: &str =
    include_str!("../fixtures/ocr-mindee/error_401_from_mindeeapi.json");
const ERROR_429: &str = include_str!("../fixtures/ocr-mindee/error_429_from_mindeeapi.json");
const ERROR_500: &str = include_str!("../fixtures/ocr-mindee/error_500_from_mindeeapi.json");
const ERROR_50X_HTML: &str = include_str!("../fixtures/ocr-mindee/error_50x.html");

/// Credentials and limits of an emulated Mindee organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MindeeOptions {
    /// Expected as `Authorization: Token <api_key>`.
    pub api_key: String,
    /// Requests allowed in any rolling second; 0 disables the limit.
    pub per_second: u32,
    /// Requests allowed in any rolling minute; 0 disables the limit.
    pub per_minute: u32,
    /// API v2: expected alone in `Authorization`.
    pub v2_api_key: String,
    /// API v2: the account's extraction model (the model ID of the real samples).
    pub v2_model_id: String,
    /// API v2: polls answered `Processing` before a job is processed.
    pub v2_polls_before_done: u32,
}

impl Default for MindeeOptions {
    fn default() -> Self {
        MindeeOptions {
            api_key: "test-mindee-key".to_owned(),
            per_second: 4,
            per_minute: 75,
            v2_api_key: "test-mindee-v2-key".to_owned(),
            v2_model_id: "94340559-b994-45e6-8b5c-be626027f1b2".to_owned(),
            v2_polls_before_done: 1,
        }
    }
}

/// Which sample a readable document gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Every field found ([`V5_COMPLETE`] / [`V4_COMPLETE`]).
    Complete,
    /// Nothing found ([`V5_EMPTY`] / [`V4_EMPTY`]).
    Empty,
}

/// A scripted failure, consumed by the next request it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The gateway answers 502 with its HTML page, before Mindee sees the request.
    BadGateway,
    /// The gateway answers 503 with its HTML page.
    Unavailable,
    /// Mindee accepts the upload, then answers 500 "Inference failed".
    InferenceFailed,
}

/// A document that reached Mindee, as the multipart part described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub product_version: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// `jpeg`, `png`, `webp`, `heic`, `tiff` or `pdf`.
    pub kind: &'static str,
    /// Pages billed.
    pub pages: usize,
}

/// A running Mindee emulator; stops when dropped.
#[derive(Debug)]
pub struct MindeeEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl MindeeEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: MindeeOptions) -> std::io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: MindeeOptions, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        Ok(MindeeEmulator { server, state })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://127.0.0.1:PORT/v1`, the plugin's connection URL.
    pub fn api_url(&self) -> String {
        format!("{}{API_PATH}", self.url())
    }

    /// The plugin's connection URL for API v2 (`http://127.0.0.1:PORT`).
    pub fn v2_url(&self) -> String {
        self.url()
    }

    /// The next v2 job ends `Failed` with an error instead of an inference.
    pub fn fail_next_v2_job(&self) {
        self.state.v2.fail_next_job();
    }

    /// `GET /v2/jobs/{id}` requests received so far.
    pub fn v2_polls(&self) -> usize {
        self.state.v2.polls()
    }

    /// The options it was started with.
    pub fn options(&self) -> &MindeeOptions {
        &self.state.opts
    }

    /// Every request received so far, whatever its answer.
    pub fn request_count(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Pages predicted so far: what the account would be billed.
    pub fn predicted_pages(&self) -> usize {
        self.state.predicted_pages.load(Ordering::SeqCst)
    }

    /// Documents that reached the prediction, oldest first.
    pub fn uploads(&self) -> Vec<Upload> {
        lock(&self.state.uploads).clone()
    }

    /// Chooses the sample readable documents get (default [`Answer::Complete`]).
    pub fn set_answer(&self, answer: Answer) {
        *lock(&self.state.answer) = answer;
    }

    /// While true, every request gets the gateway's 502 HTML page.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// While true, authenticated requests get 403 `PlanLimitReached`.
    pub fn set_plan_limit_reached(&self, reached: bool) {
        self.state.plan_limit.store(reached, Ordering::SeqCst);
    }

    /// While true, authenticated requests get 429 `TooManyRequests`, as when the rate limit
    /// is spent.
    pub fn set_rate_limited(&self, limited: bool) {
        self.state.rate_limited.store(limited, Ordering::SeqCst);
    }

    /// The next `count` requests the failure applies to fail that way.
    pub fn fail_next(&self, count: usize, failure: Failure) {
        let mut queue = lock(&self.state.failures);
        queue.extend(std::iter::repeat_n(failure, count));
    }
}

/// State shared by the handlers.
#[derive(Debug)]
struct Shared {
    opts: MindeeOptions,
    requests: AtomicUsize,
    predicted_pages: AtomicUsize,
    answer: Mutex<Answer>,
    unavailable: AtomicBool,
    plan_limit: AtomicBool,
    rate_limited: AtomicBool,
    failures: Mutex<VecDeque<Failure>>,
    /// Times of the authenticated requests of the last minute.
    window: Mutex<VecDeque<Instant>>,
    uploads: Mutex<Vec<Upload>>,
    v2: v2::V2State,
}

impl Shared {
    fn new(opts: MindeeOptions) -> Self {
        Shared {
            opts,
            requests: AtomicUsize::new(0),
            predicted_pages: AtomicUsize::new(0),
            answer: Mutex::new(Answer::Complete),
            unavailable: AtomicBool::new(false),
            plan_limit: AtomicBool::new(false),
            rate_limited: AtomicBool::new(false),
            failures: Mutex::new(VecDeque::new()),
            window: Mutex::new(VecDeque::new()),
            uploads: Mutex::new(Vec::new()),
            v2: v2::V2State::default(),
        }
    }

    /// Takes the next scripted failure if `applies` accepts it.
    fn take_failure(&self, applies: impl Fn(Failure) -> bool) -> Option<Failure> {
        let mut queue = lock(&self.failures);
        let next = *queue.front()?;
        applies(next).then(|| queue.pop_front()).flatten()
    }
}

/// A poisoned lock only means another handler panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/products/{owner}/{product}/{version}/predict",
            post(predict),
        )
        .route("/v2/inferences/enqueue", post(v2::enqueue))
        .route("/v2/products/extraction/enqueue", post(v2::enqueue))
        .route("/v2/jobs/{id}", get(v2::get_job))
        .route("/v2/inferences/{id}", get(v2::get_inference))
        .route(
            "/v2/products/extraction/results/{id}",
            get(v2::get_inference),
        )
        .route("/v2/search/models", get(v2::search_models))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), gateway))
        .with_state(state)
}

fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// Mindee's error shape, for errors the sample repository has no body for.
fn api_error(status: StatusCode, path: &str, error: Value) -> Response {
    json_response(
        status,
        json!({
            "api_request": {
                "error": error,
                "resources": [],
                "status": "failure",
                "status_code": status.as_u16(),
                "url": format!("https://api.mindee.net{path}")
            }
        })
        .to_string(),
    )
}

/// A 400 about the `document` field, in Django REST framework's validation shape.
fn document_error(path: &str, message: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        path,
        json!({"details": {"document": [message]}}),
    )
}

fn bad_request(path: &str, message: &str, details: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        path,
        json!({"code": "BadRequest", "message": message, "details": details}),
    )
}

fn gateway_page(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        ERROR_50X_HTML,
    )
        .into_response()
}

/// Outermost layer: counts every request and plays the gateway's outages.
async fn gateway(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return gateway_page(StatusCode::BAD_GATEWAY);
    }
    match state.take_failure(|f| f != Failure::InferenceFailed) {
        Some(Failure::BadGateway) => gateway_page(StatusCode::BAD_GATEWAY),
        Some(Failure::Unavailable) => gateway_page(StatusCode::SERVICE_UNAVAILABLE),
        _ => next.run(request).await,
    }
}

async fn unknown_route(uri: Uri) -> Response {
    if uri.path().starts_with("/v2/") {
        return v2::not_found(uri.path());
    }
    api_error(
        StatusCode::NOT_FOUND,
        uri.path(),
        json!({
            "code": "NotFound",
            "message": "Not found",
            "details": format!("{} does not match any product", uri.path())
        }),
    )
}

/// Whether the request may pass the rate limit now; it counts when it does.
fn admit(state: &Shared) -> bool {
    if state.rate_limited.load(Ordering::SeqCst) {
        return false;
    }
    let now = Instant::now();
    let mut window = lock(&state.window);
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    let last_second = window
        .iter()
        .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
        .count();
    let per_second = state.opts.per_second as usize;
    let per_minute = state.opts.per_minute as usize;
    if (per_second > 0 && last_second >= per_second)
        || (per_minute > 0 && window.len() >= per_minute)
    {
        return false;
    }
    window.push_back(now);
    true
}

async fn predict(
    State(state): State<Arc<Shared>>,
    Path((owner, product, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let path = uri.path().to_owned();
    if owner != "mindee"
        || product != "expense_receipts"
        || !matches!(version.as_str(), "v4" | "v5")
    {
        return api_error(
            StatusCode::NOT_FOUND,
            &path,
            json!({
                "code": "NotFound",
                "message": "Product not found",
                "details": format!("No product {owner}/{product} {version}, or no subscription to it")
            }),
        );
    }

    // Django REST framework's TokenAuthentication: only the `Token` scheme is read.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "))
        .map(str::trim);
    match token {
        None => return json_response(StatusCode::UNAUTHORIZED, ERROR_401_NO_TOKEN),
        Some(t) if t != state.opts.api_key => {
            return json_response(StatusCode::UNAUTHORIZED, ERROR_401_INVALID_TOKEN)
        }
        Some(_) => {}
    }
    if state.plan_limit.load(Ordering::SeqCst) {
        return api_error(
            StatusCode::FORBIDDEN,
            &path,
            json!({
                "code": "PlanLimitReached",
                "message": "Plan limit reached",
                "details": "You have reached the maximum number of requests of your plan"
            }),
        );
    }
    if !admit(&state) {
        return json_response(StatusCode::TOO_MANY_REQUESTS, ERROR_429);
    }

    let file = match read_document(multipart).await {
        Ok(file) => file,
        Err(DocumentProblem::Missing) => return document_error(&path, "No file was submitted."),
        Err(DocumentProblem::NotAFile) => {
            return document_error(
                &path,
                "The submitted data was not a file. Check the encoding type on the form.",
            )
        }
        Err(DocumentProblem::Parse(reason)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &path,
                json!({"details": format!("Multipart form parse error - {reason}")}),
            )
        }
    };
    if file.bytes.is_empty() {
        return document_error(&path, "The submitted file is empty.");
    }
    if file.bytes.len() > MAX_BYTES {
        return bad_request(
            &path,
            "File is too big",
            &format!(
                "The file is {} bytes; the maximum is 10 MB for synchronous calls",
                file.bytes.len()
            ),
        );
    }
    let kind = match inspect(&file.bytes) {
        Ok(kind) => kind,
        Err(Inspection::Unsupported) => {
            return bad_request(
                &path,
                "Invalid file type",
                "File type not allowed: accepted types are png, jpg, webp, heic, tiff, pdf",
            )
        }
        Err(Inspection::Broken(why)) => {
            return bad_request(
                &path,
                "Invalid file",
                &format!("The file cannot be read: {why}"),
            )
        }
    };
    let pages = match kind {
        "pdf" => count_pdf_pages(&file.bytes).max(1),
        _ => 1,
    };
    if pages > MAX_PDF_PAGES {
        return bad_request(
            &path,
            "Too many pages",
            &format!(
                "The PDF has {pages} pages; the maximum is {MAX_PDF_PAGES} for synchronous calls"
            ),
        );
    }
    if state
        .take_failure(|f| f == Failure::InferenceFailed)
        .is_some()
    {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, ERROR_500);
    }

    state.predicted_pages.fetch_add(pages, Ordering::SeqCst);
    lock(&state.uploads).push(Upload {
        product_version: version.clone(),
        file_name: file.file_name,
        content_type: file.content_type,
        bytes: file.bytes,
        kind,
        pages,
    });
    let answer = *lock(&state.answer);
    let body = match (version.as_str(), answer) {
        ("v4", Answer::Complete) => V4_COMPLETE,
        ("v4", Answer::Empty) => V4_EMPTY,
        (_, Answer::Complete) => V5_COMPLETE,
        (_, Answer::Empty) => V5_EMPTY,
    };
    json_response(StatusCode::CREATED, body)
}

struct FilePart {
    file_name: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

enum DocumentProblem {
    Missing,
    NotAFile,
    Parse(String),
}

/// Finds the `document` file part; other fields are ignored, as Mindee does.
async fn read_document(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<FilePart, DocumentProblem> {
    // Not a multipart body at all: the form has no `document` field.
    let Ok(mut multipart) = multipart else {
        return Err(DocumentProblem::Missing);
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Err(DocumentProblem::Missing),
            Err(e) => return Err(DocumentProblem::Parse(e.body_text())),
        };
        if field.name() != Some("document") {
            continue;
        }
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            return Err(DocumentProblem::NotAFile);
        };
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| DocumentProblem::Parse(e.body_text()))?;
        return Ok(FilePart {
            file_name,
            content_type,
            bytes: bytes.to_vec(),
        });
    }
}

enum Inspection {
    Unsupported,
    Broken(&'static str),
}

/// The kind of an accepted file, after checking that its structure holds together.
fn inspect(bytes: &[u8]) -> Result<&'static str, Inspection> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return check_jpeg(bytes)
            .map(|_| "jpeg")
            .map_err(Inspection::Broken);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let ihdr_ok = bytes.len() >= 33
            && &bytes[8..16] == b"\0\0\0\x0dIHDR"
            && bytes[16..20] != [0; 4]
            && bytes[20..24] != [0; 4];
        return if ihdr_ok {
            Ok("png")
        } else {
            Err(Inspection::Broken("PNG without a valid IHDR chunk"))
        };
    }
    if bytes.len() >= 16 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return if matches!(&bytes[12..16], b"VP8 " | b"VP8L" | b"VP8X") {
            Ok("webp")
        } else {
            Err(Inspection::Broken("WebP without a VP8 chunk"))
        };
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Ok("tiff");
    }
    if bytes.starts_with(b"%PDF-") {
        return if contains(bytes, b"%%EOF") {
            Ok("pdf")
        } else {
            Err(Inspection::Broken("PDF without %%EOF (truncated?)"))
        };
    }
    if bytes.len() >= 16 && &bytes[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let end = size.clamp(16, bytes.len());
        let heic = std::iter::once(&bytes[8..12])
            .chain(bytes[16..end].chunks_exact(4))
            .any(|b| {
                matches!(
                    b,
                    b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs"
                )
            });
        if heic {
            return Ok("heic");
        }
    }
    Err(Inspection::Unsupported)
}

/// Walks a JPEG's markers up to its scan: frame header with sane dimensions, quantisation
/// and Huffman tables before the scan, and an end-of-image marker after it.
fn check_jpeg(b: &[u8]) -> Result<(u16, u16), &'static str> {
    let (mut frame, mut dqt, mut dht) = (None, false, false);
    let mut i = 2;
    loop {
        if i >= b.len() || b[i] != 0xFF {
            return Err("JPEG marker expected");
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let marker = *b.get(i).ok_or("JPEG truncated")?;
        i += 1;
        match marker {
            0xD9 => return Err("JPEG ends before any image data"),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([
            *b.get(i).ok_or("JPEG truncated")?,
            *b.get(i + 1).ok_or("JPEG truncated")?,
        ]));
        if len < 2 || i + len > b.len() {
            return Err("JPEG segment runs past the end of the file");
        }
        let seg = &b[i + 2..i + len];
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err("JPEG frame header too short");
                }
                let height = u16::from_be_bytes([seg[1], seg[2]]);
                let width = u16::from_be_bytes([seg[3], seg[4]]);
                let components = usize::from(seg[5]);
                if width == 0 || height == 0 || !matches!(components, 1 | 3 | 4) {
                    return Err("JPEG frame header with no size or an odd number of components");
                }
                if seg.len() != 6 + 3 * components {
                    return Err("JPEG frame header of the wrong length");
                }
                frame = Some((width, height));
            }
            0xC4 => dht = true,
            0xDB => dqt = true,
            0xDA => {
                let Some(size) = frame else {
                    return Err("JPEG scan before its frame header");
                };
                if !dqt || !dht {
                    return Err("JPEG scan without quantisation or Huffman tables");
                }
                if !contains(&b[i + len..], &[0xFF, 0xD9]) {
                    return Err("JPEG without an end-of-image marker (truncated?)");
                }
                return Ok(size);
            }
            _ => {}
        }
        i += len;
    }
}

/// Page objects (`/Type /Page`, not `/Pages`) in a PDF. Also used by the Universign
/// emulator to check signature field pages.
pub(crate) fn count_pdf_pages(pdf: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while let Some(p) = find(&pdf[at..], b"/Type") {
        let mut i = at + p + 5;
        while i < pdf.len() && pdf[i].is_ascii_whitespace() {
            i += 1;
        }
        if pdf[i..].starts_with(b"/Page") && !pdf.get(i + 5).is_some_and(u8::is_ascii_alphanumeric)
        {
            count += 1;
        }
        at = i.max(at + p + 1);
    }
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The JSON input of `ocr.expense_receipt` for a file: `{"file_name", "content_base64"}`.
pub fn receipt_input(file_name: &str, bytes: &[u8]) -> Value {
    json!({
        "file_name": file_name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

/// A PDF with `pages` blank A4 pages, in the classic uncompressed layout.
pub fn sample_pdf(pages: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |out: &mut Vec<u8>, text: String| {
        offsets.push(out.len());
        out.extend_from_slice(text.as_bytes());
    };
    object(
        &mut out,
        "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".into(),
    );
    let kids: Vec<String> = (0..pages).map(|n| format!("{} 0 R", n + 3)).collect();
    object(
        &mut out,
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {pages} >>\nendobj\n",
            kids.join(" ")
        ),
    );
    for n in 0..pages {
        object(
            &mut out,
            format!(
                "{} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>\nendobj\n",
                n + 3
            ),
        );
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for o in &offsets {
        table.push_str(&format!("{o:010} 00000 n \n"));
    }
    out.extend_from_slice(table.as_bytes());
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A baseline JPEG (grayscale, quality 50, the standard tables of ITU-T T.81 Annex K) of
/// `width` × `height` pixels showing a receipt: white paper with dark lines of "text".
pub fn sample_jpeg(width: u16, height: u16) -> Vec<u8> {
    let w = usize::from(width.max(1));
    let pixel = |x: usize, y: usize| -> u8 {
        let line = y % 12;
        let margin = x > w / 10 && x < w - w / 10;
        let ink = line < 5 && margin && !(x / 3 + y / 12).is_multiple_of(4);
        if ink {
            30
        } else {
            235
        }
    };
    jpeg::encode_gray(width.max(1), height.max(1), pixel)
}

/// A small baseline JPEG encoder, for test documents only.
mod jpeg {
    /// Luminance quantisation table of Annex K.1 (quality 50), natural order.
    const QUANT: [u8; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];

    /// Natural index of each zig-zag position.
    const ZIGZAG: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// Luminance DC Huffman table of Annex K.3: code counts per length, then symbols.
    const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    /// Luminance AC Huffman table of Annex K.3.
    const AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    pub(super) const AC_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];

    /// Code and length of each symbol (Annex C).
    fn codes(bits: &[u8; 16], values: &[u8]) -> [(u16, u8); 256] {
        let mut table = [(0u16, 0u8); 256];
        let mut code: u16 = 0;
        let mut k = 0;
        for (len, count) in bits.iter().enumerate() {
            for _ in 0..*count {
                table[usize::from(values[k])] = (code, len as u8 + 1);
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        table
    }

    struct BitWriter {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }

    impl BitWriter {
        fn put(&mut self, bits: u16, len: u8) {
            for i in (0..len).rev() {
                self.acc = (self.acc << 1) | u32::from((bits >> i) & 1);
                self.n += 1;
                if self.n == 8 {
                    let byte = self.acc as u8;
                    self.out.push(byte);
                    if byte == 0xFF {
                        // Byte stuffing: 0xFF in entropy-coded data is followed by 0x00.
                        self.out.push(0);
                    }
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }

        /// Pads the last byte with 1 bits, as T.81 F.1.2.3 asks.
        fn finish(mut self) -> Vec<u8> {
            while self.n != 0 {
                self.put(1, 1);
            }
            self.out
        }
    }

    /// Category (bit length) and the bits of a coefficient (F.1.2.1).
    fn magnitude(v: i32) -> (u8, u16) {
        let a = v.unsigned_abs();
        let size = (32 - a.leading_zeros()) as u8;
        let bits = if v < 0 { v - 1 } else { v };
        (size, (bits as u32 & ((1u32 << size) - 1)) as u16)
    }

    fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Encodes a grayscale image given by `pixel(x, y)`.
    pub fn encode_gray(width: u16, height: u16, pixel: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let (w, h) = (usize::from(width), usize::from(height));
        let mut out = vec![0xFF, 0xD8];
        segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let mut dqt = vec![0u8];
        dqt.extend(ZIGZAG.iter().map(|&i| QUANT[i]));
        segment(&mut out, 0xDB, &dqt);
        let mut sof = vec![8];
        sof.extend_from_slice(&height.to_be_bytes());
        sof.extend_from_slice(&width.to_be_bytes());
        sof.extend_from_slice(&[1, 1, 0x11, 0]);
        segment(&mut out, 0xC0, &sof);
        for (class, bits, values) in [
            (0x00u8, &DC_BITS, &DC_VALUES[..]),
            (0x10, &AC_BITS, &AC_VALUES[..]),
        ] {
            let mut dht = vec![class];
            dht.extend_from_slice(bits);
            dht.extend_from_slice(values);
            segment(&mut out, 0xC4, &dht);
        }
        segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);

        let dc_codes = codes(&DC_BITS, &DC_VALUES);
        let ac_codes = codes(&AC_BITS, &AC_VALUES);
        let mut writer = BitWriter {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        let mut previous_dc = 0;
        for by in (0..h).step_by(8) {
            for bx in (0..w).step_by(8) {
                // Level-shifted samples, edges replicated past the image.
                let mut block = [0f64; 64];
                for (i, s) in block.iter_mut().enumerate() {
                    let x = (bx + i % 8).min(w - 1);
                    let y = (by + i / 8).min(h - 1);
                    *s = f64::from(pixel(x, y)) - 128.0;
                }
                let mut coefficients = [0i32; 64];
                for v in 0..8 {
                    for u in 0..8 {
                        let mut sum = 0.0;
                        for y in 0..8 {
                            for x in 0..8 {
                                sum += block[y * 8 + x]
                                    * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI)
                                        / 16.0)
                                        .cos()
                                    * (((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI)
                                        / 16.0)
                                        .cos();
                            }
                        }
                        let cu = if u == 0 {
                            std::f64::consts::FRAC_1_SQRT_2
                        } else {
                            1.0
                        };
                        let cv = if v == 0 {
                            std::f64::consts::FRAC_1_SQRT_2
                        } else {
                            1.0
                        };
                        let f = 0.25 * cu * cv * sum;
                        coefficients[v * 8 + u] = (f / f64::from(QUANT[v * 8 + u])).round() as i32;
                    }
                }
                let dc = coefficients[0];
                let (size, bits) = magnitude(dc - previous_dc);
                previous_dc = dc;
                let (code, len) = dc_codes[usize::from(size)];
                writer.put(code, len);
                writer.put(bits, size);
                let mut run = 0;
                for &natural in &ZIGZAG[1..] {
                    let c = coefficients[natural];
                    if c == 0 {
                        run += 1;
                        continue;
                    }
                    while run > 15 {
                        let (code, len) = ac_codes[0xF0];
                        writer.put(code, len);
                        run -= 16;
                    }
                    let (size, bits) = magnitude(c);
                    let (code, len) = ac_codes[usize::from((run << 4) as u8 | size)];
                    writer.put(code, len);
                    writer.put(bits, size);
                    run = 0;
                }
                if run > 0 {
                    let (code, len) = ac_codes[0x00];
                    writer.put(code, len);
                }
            }
        }
        out.extend(writer.finish());
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    const KEY: &str = "test-mindee-key";

    struct Reply {
        status: u16,
        head: String,
        body: Vec<u8>,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
            })
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// One HTTP/1.1 POST on a fresh connection (std only, `Connection: close`).
    fn send(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        exchange("POST", url, headers, body)
    }

    fn exchange(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let rest = url.strip_prefix("http://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = find(&raw, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head[9..12].parse().unwrap();
        let mut body = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Reply { status, head, body }
    }

    fn dechunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = find(body, b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                return out;
            }
            let start = line_end + 2;
            out.extend_from_slice(&body[start..start + size]);
            body = &body[start + size + 2..];
        }
    }

    /// A multipart form with one part; `file_name` `None` makes it a plain field.
    fn form(field: &str, file_name: Option<&str>, content: &[u8]) -> (String, Vec<u8>) {
        let boundary = "emulator-test-boundary";
        let disposition = match file_name {
            Some(name) => format!("form-data; name=\"{field}\"; filename=\"{name}\""),
            None => format!("form-data; name=\"{field}\""),
        };
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    fn predict_url(emu: &MindeeEmulator, version: &str) -> String {
        format!(
            "{}/products/mindee/expense_receipts/{version}/predict",
            emu.api_url()
        )
    }

    fn upload(
        emu: &MindeeEmulator,
        version: &str,
        field: &str,
        name: Option<&str>,
        content: &[u8],
    ) -> Reply {
        let (content_type, body) = form(field, name, content);
        let auth = format!("Token {KEY}");
        send(
            &predict_url(emu, version),
            &[("Authorization", &auth), ("Content-Type", &content_type)],
            &body,
        )
    }

    fn start() -> MindeeEmulator {
        MindeeEmulator::start(MindeeOptions {
            per_second: 0,
            per_minute: 0,
            ..MindeeOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn the_token_is_checked_after_the_route() {
        let emu = start();
        let url = predict_url(&emu, "v5");
        let none = send(&url, &[], b"");
        assert_eq!(none.status, 401);
        assert_eq!(
            none.json()["api_request"]["error"]["details"],
            "No token provided"
        );
        let bearer = send(&url, &[("Authorization", &format!("Bearer {KEY}"))], b"");
        assert_eq!(
            bearer.json()["api_request"]["error"]["details"],
            "No token provided"
        );
        let wrong = send(&url, &[("Authorization", "Token nope")], b"");
        assert_eq!(wrong.status, 401);
        assert_eq!(
            wrong.json()["api_request"]["error"]["details"],
            "Invalid token provided"
        );
        // An unknown product is a 404 whatever the token.
        let v3 = send(&predict_url(&emu, "v3"), &[], b"");
        assert_eq!(v3.status, 404);
        assert_eq!(v3.json()["api_request"]["error"]["code"], "NotFound");
        let elsewhere = send(&format!("{}/v2/whatever", emu.url()), &[], b"");
        assert_eq!(elsewhere.status, 404);
        assert_eq!(emu.request_count(), 5);
        assert_eq!(emu.predicted_pages(), 0);
    }

    #[test]
    fn the_document_field_must_hold_a_file() {
        let emu = start();
        let auth = format!("Token {KEY}");
        let url = predict_url(&emu, "v5");
        let empty = send(
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "multipart/form-data; boundary=xyz"),
            ],
            b"--xyz--\r\n",
        );
        assert_eq!(empty.status, 400, "{}", empty.text());
        assert_eq!(
            empty.json()["api_request"]["error"]["details"]["document"][0],
            "No file was submitted."
        );
        let image = sample_jpeg(16, 16);
        let wrong_name = upload(&emu, "v5", "file", Some("r.jpg"), &image);
        assert_eq!(wrong_name.status, 400);
        assert_eq!(
            wrong_name.json()["api_request"]["error"]["details"]["document"][0],
            "No file was submitted."
        );
        let not_a_file = upload(&emu, "v5", "document", None, &image);
        assert_eq!(not_a_file.status, 400);
        assert!(
            not_a_file.json()["api_request"]["error"]["details"]["document"][0]
                .as_str()
                .unwrap()
                .starts_with("The submitted data was not a file")
        );
        let json_body = send(
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            b"{\"doc\": \"x\"}",
        );
        assert_eq!(json_body.status, 400);
        let empty_file = upload(&emu, "v5", "document", Some("r.jpg"), b"");
        assert_eq!(
            empty_file.json()["api_request"]["error"]["details"]["document"][0],
            "The submitted file is empty."
        );
        assert_eq!(emu.predicted_pages(), 0);
        assert!(emu.uploads().is_empty());
    }

    #[test]
    fn content_is_checked_like_mindee() {
        let emu = start();
        let text = upload(&emu, "v5", "document", Some("r.jpg"), b"Total 12.50 EUR");
        assert_eq!(text.status, 400);
        assert_eq!(
            text.json()["api_request"]["error"]["message"],
            "Invalid file type"
        );
        let broken = upload(
            &emu,
            "v5",
            "document",
            Some("r.jpg"),
            b"\xFF\xD8\xFF\xE0\0\x10JFIF",
        );
        assert_eq!(broken.status, 400);
        assert_eq!(
            broken.json()["api_request"]["error"]["message"],
            "Invalid file"
        );
        let mut big = sample_jpeg(8, 8);
        big.resize(MAX_BYTES + 1, 0);
        let big = upload(&emu, "v5", "document", Some("r.jpg"), &big);
        assert_eq!(big.status, 400);
        assert_eq!(
            big.json()["api_request"]["error"]["message"],
            "File is too big"
        );
        let long = upload(&emu, "v5", "document", Some("r.pdf"), &sample_pdf(11));
        assert_eq!(
            long.json()["api_request"]["error"]["message"],
            "Too many pages"
        );
        assert_eq!(emu.predicted_pages(), 0);
        let pdf = upload(&emu, "v5", "document", Some("r.pdf"), &sample_pdf(3));
        assert_eq!(pdf.status, 201);
        assert_eq!(emu.predicted_pages(), 3);
    }

    #[test]
    fn readable_documents_get_the_real_samples() {
        let emu = start();
        let image = sample_jpeg(64, 48);
        let v5 = upload(&emu, "v5", "document", Some("ticket.jpg"), &image);
        assert_eq!(v5.status, 201);
        assert_eq!(v5.body, V5_COMPLETE.as_bytes());
        let v4 = upload(&emu, "v4", "document", Some("ticket.jpg"), &image);
        assert_eq!(v4.body, V4_COMPLETE.as_bytes());
        emu.set_answer(super::Answer::Empty);
        assert_eq!(
            upload(&emu, "v5", "document", Some("t.jpg"), &image).body,
            V5_EMPTY.as_bytes()
        );
        assert_eq!(
            upload(&emu, "v4", "document", Some("t.jpg"), &image).body,
            V4_EMPTY.as_bytes()
        );
        let uploads = emu.uploads();
        assert_eq!(uploads.len(), 4);
        assert_eq!(uploads[0].file_name, "ticket.jpg");
        assert_eq!(
            uploads[0].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(uploads[0].bytes, image);
        assert_eq!(uploads[0].kind, "jpeg");
        assert_eq!(uploads[1].product_version, "v4");
        assert_eq!(emu.predicted_pages(), 4);
    }

    #[test]
    fn plan_and_rate_limits() {
        let emu = MindeeEmulator::start(MindeeOptions::default()).unwrap();
        let image = sample_jpeg(8, 8);
        emu.set_plan_limit_reached(true);
        let plan = upload(&emu, "v5", "document", Some("t.jpg"), &image);
        assert_eq!(plan.status, 403);
        assert_eq!(
            plan.json()["api_request"]["error"]["code"],
            "PlanLimitReached"
        );
        emu.set_plan_limit_reached(false);
        emu.set_rate_limited(true);
        let limited = upload(&emu, "v5", "document", Some("t.jpg"), &image);
        assert_eq!(limited.status, 429);
        assert_eq!(
            limited.json()["api_request"]["error"]["code"],
            "TooManyRequests"
        );
        emu.set_rate_limited(false);
        // 4 requests per second: the fifth within the second is refused.
        let statuses: Vec<u16> = (0..5)
            .map(|_| upload(&emu, "v5", "document", Some("t.jpg"), &image).status)
            .collect();
        assert_eq!(statuses, [201, 201, 201, 201, 429]);
    }

    #[test]
    fn outages_are_scripted() {
        let emu = start();
        let image = sample_jpeg(8, 8);
        emu.fail_next(1, Failure::BadGateway);
        emu.fail_next(1, Failure::InferenceFailed);
        let gateway = upload(&emu, "v5", "document", Some("t.jpg"), &image);
        assert_eq!(gateway.status, 502);
        assert!(gateway.text().contains("<h1>An error occurred.</h1>"));
        // A refused upload does not use up the inference failure.
        assert_eq!(
            upload(&emu, "v5", "document", Some("t.txt"), b"text").status,
            400
        );
        let failed = upload(&emu, "v5", "document", Some("t.jpg"), &image);
        assert_eq!(failed.status, 500);
        assert_eq!(
            failed.json()["api_request"]["error"]["message"],
            "Inference failed"
        );
        assert_eq!(
            upload(&emu, "v5", "document", Some("t.jpg"), &image).status,
            201
        );
        emu.set_unavailable(true);
        assert_eq!(
            upload(&emu, "v5", "document", Some("t.jpg"), &image).status,
            502
        );
        assert_eq!(emu.predicted_pages(), 1);
    }

    #[test]
    fn generated_jpegs_are_well_formed() {
        assert_eq!(jpeg::AC_VALUES.len(), 162);
        let image = sample_jpeg(120, 90);
        assert!(image.starts_with(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(image.ends_with(&[0xFF, 0xD9]));
        assert_eq!(check_jpeg(&image), Ok((120, 90)));
        assert!(matches!(inspect(&image), Ok("jpeg")));
        // Odd sizes need edge replication; a 1×1 image is still a JPEG.
        assert_eq!(check_jpeg(&sample_jpeg(13, 7)), Ok((13, 7)));
        assert_eq!(check_jpeg(&sample_jpeg(1, 1)), Ok((1, 1)));
    }

    #[test]
    fn broken_jpegs_are_refused() {
        let image = sample_jpeg(32, 32);
        let truncated = &image[..image.len() - 2];
        assert!(check_jpeg(truncated).is_err());
        assert!(check_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
        assert!(check_jpeg(b"\xFF\xD8\xFF\xE0garbage").is_err());
        assert!(matches!(
            inspect(b"\xFF\xD8\xFF\xE0garbage"),
            Err(Inspection::Broken(_))
        ));
    }

    #[test]
    fn other_kinds_are_recognised() {
        assert!(matches!(inspect(&sample_pdf(2)), Ok("pdf")));
        assert_eq!(count_pdf_pages(&sample_pdf(11)), 11);
        assert!(matches!(inspect(b"II*\0rest"), Ok("tiff")));
        assert!(matches!(
            inspect(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"),
            Ok("heic")
        ));
        assert!(matches!(
            inspect(b"GIF89a......"),
            Err(Inspection::Unsupported)
        ));
        assert!(matches!(
            inspect(b"hello world"),
            Err(Inspection::Unsupported)
        ));
    }

    // ---- API v2 ---------------------------------------------------------------------

    const V2_KEY: &str = "test-mindee-v2-key";
    const MODEL: &str = "94340559-b994-45e6-8b5c-be626027f1b2";

    fn v2_form(model_id: Option<&str>, file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
        let boundary = "emulator-v2-boundary";
        let mut body = Vec::new();
        if let Some(m) = model_id {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\n{m}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    fn enqueue(
        emu: &MindeeEmulator,
        auth: Option<&str>,
        model_id: Option<&str>,
        file: Option<(&str, &[u8])>,
    ) -> Reply {
        let (content_type, body) = v2_form(model_id, file);
        let mut headers = vec![("Content-Type", content_type.as_str())];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        send(
            &format!("{}/v2/inferences/enqueue", emu.v2_url()),
            &headers,
            &body,
        )
    }

    fn v2_get(emu: &MindeeEmulator, path: &str, auth: &str) -> Reply {
        exchange(
            "GET",
            &format!("{}{path}", emu.v2_url()),
            &[("Authorization", auth)],
            b"",
        )
    }

    #[test]
    fn v2_refuses_a_v1_header_and_a_missing_key_with_the_real_bodies() {
        let emu = start();
        let jpeg = sample_jpeg(8, 8);
        let r = enqueue(
            &emu,
            Some(&format!("Token {V2_KEY}")),
            Some(MODEL),
            Some(("r.jpg", &jpeg)),
        );
        assert_eq!(r.status, 401);
        assert_eq!(r.text(), v2::ERROR_401_INVALID_API_KEY);
        let r = enqueue(&emu, None, Some(MODEL), Some(("r.jpg", &jpeg)));
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["code"], "401-008");
        let r = v2_get(&emu, "/v2/search/models", KEY);
        assert_eq!(r.status, 401, "a v1 key is not a v2 key");
        assert!(emu.uploads().is_empty());
    }

    #[test]
    fn v2_refuses_bad_and_unknown_models_and_files() {
        let emu = start();
        let jpeg = sample_jpeg(8, 8);
        let r = enqueue(
            &emu,
            Some(V2_KEY),
            Some("INVALID MODEL ID"),
            Some(("r.jpg", &jpeg)),
        );
        assert_eq!(r.status, 422);
        assert_eq!(r.json()["errors"][0]["pointer"], "#/model_id");
        assert_eq!(r.json()["code"], "422-001");
        let r = enqueue(&emu, Some(V2_KEY), None, Some(("r.jpg", &jpeg)));
        assert_eq!(r.status, 422);
        let r = enqueue(
            &emu,
            Some(V2_KEY),
            Some("fc405e37-4ba4-4d03-aeba-533a8d1f0f21"),
            Some(("r.jpg", &jpeg)),
        );
        assert_eq!(r.status, 404);
        assert!(r.json()["code"].as_str().unwrap().starts_with("404-"));
        let r = enqueue(&emu, Some(V2_KEY), Some(MODEL), None);
        assert_eq!(r.status, 422);
        assert_eq!(r.json()["errors"][0]["pointer"], "#/file");
        let r = enqueue(
            &emu,
            Some(V2_KEY),
            Some(MODEL),
            Some(("r.gif", b"GIF89a\x01\0")),
        );
        assert_eq!(r.status, 422);
        assert!(emu.uploads().is_empty());
    }

    #[test]
    fn v2_job_lifecycle_processing_then_redirect_to_the_inference() {
        let emu = start();
        let tiff = b"II*\0\x08\0\0\0";
        let r = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("scan.tif", tiff)));
        assert_eq!(r.status, 202, "{}", r.text());
        let job = r.json()["job"].clone();
        assert_eq!(job["status"], "Processing");
        assert_eq!(job["model_id"], MODEL);
        assert_eq!(job["filename"], "scan.tif");
        let id = job["id"].as_str().unwrap().to_owned();
        assert_eq!(job["polling_url"], format!("{}/v2/jobs/{id}", emu.v2_url()));
        assert_eq!(emu.uploads()[0].kind, "tiff");

        let r = v2_get(&emu, &format!("/v2/inferences/{id}"), V2_KEY);
        assert_eq!(r.status, 404, "no inference before the job is processed");
        let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["job"]["status"], "Processing");
        let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        assert_eq!(r.status, 302);
        let result_url = format!("{}/v2/inferences/{id}", emu.v2_url());
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains(&format!("location: {result_url}").to_ascii_lowercase()),
            "{}",
            r.head
        );
        assert_eq!(r.json()["job"]["status"], "Processed");
        assert_eq!(r.json()["job"]["result_url"], result_url);
        let r = v2_get(&emu, &format!("/v2/inferences/{id}"), V2_KEY);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), FINDOC_COMPLETE);
        // The Node.js client's path for the same extraction.
        let r = v2_get(
            &emu,
            &format!("/v2/products/extraction/results/{id}"),
            V2_KEY,
        );
        assert_eq!(r.text(), FINDOC_COMPLETE);
        let r = v2_get(
            &emu,
            &format!("/v2/inferences/{id}"),
            &format!("Token {V2_KEY}"),
        );
        assert_eq!(r.status, 401);
        assert_eq!(v2_get(&emu, "/v2/jobs/nope", V2_KEY).status, 404);
        assert_eq!(emu.v2_polls(), 3);
    }

    #[test]
    fn v2_failed_jobs_carry_their_error() {
        let emu = start();
        emu.fail_next_v2_job();
        let jpeg = sample_jpeg(8, 8);
        let id = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("r.jpg", &jpeg))).json()["job"]
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
        v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        assert_eq!(r.status, 200);
        let job = &r.json()["job"];
        assert_eq!(job["status"], "Failed");
        assert_eq!(job["result_url"], Value::Null);
        assert_eq!(job["error"]["status"], 422);
        assert_eq!(job["error"]["title"], "Inference failed");
        // A broken image fails its job too, with the reason.
        let broken = &jpeg[..jpeg.len() / 2];
        let id = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("r.jpg", broken))).json()["job"]
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
        v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
        assert!(r.json()["job"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("JPEG"));
    }

    #[test]
    fn v2_lists_models_without_billing() {
        let emu = start();
        let r = v2_get(&emu, "/v2/search/models", V2_KEY);
        assert_eq!(r.status, 200);
        let models = r.json()["models"].as_array().unwrap().clone();
        assert_eq!(models[0]["id"], MODEL);
        assert_eq!(models.len(), 6);
        let r = v2_get(&emu, "/v2/search/models?model_type=split", V2_KEY);
        assert_eq!(r.json()["models"].as_array().unwrap().len(), 1);
        assert_eq!(r.json()["pagination"]["total_items_unfiltered"], 6);
        let r = v2_get(&emu, "/v2/search/models?name=expense", V2_KEY);
        assert_eq!(r.json()["models"][0]["id"], MODEL);
        assert_eq!(emu.predicted_pages(), 0);
        assert_eq!(v2_get(&emu, "/v2/nothing", V2_KEY).status, 404);
    }
}
