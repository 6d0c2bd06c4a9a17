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

mod answers;
mod document;
mod predict;
mod samples;
use answers::*;
use document::*;
use predict::*;
pub use samples::*;

use crate::kit::lock;
use crate::kit::pdf::count_pages as count_pdf_pages;
use crate::kit::quota::{Limit, RollingWindow};
use crate::kit::respond::{self, JSON};
use crate::kit::serve::{self as server, RunningServer};
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
use std::sync::{Arc, Mutex};

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
    include_str!("../../fixtures/ocr-mindee/expense_receipts_v5_complete.json");
/// Real v5 (5.0) answer where nothing was found.
pub const V5_EMPTY: &str = include_str!("../../fixtures/ocr-mindee/expense_receipts_v5_empty.json");
/// v4 (4.1) answer reconstructed from Mindee's rendering of the same receipt.
pub const V4_COMPLETE: &str =
    include_str!("../../fixtures/ocr-mindee/expense_receipts_v4_complete_reconstructed.json");
/// Real v4 (4.0) answer where nothing was found.
pub const V4_EMPTY: &str = include_str!("../../fixtures/ocr-mindee/expense_receipts_v4_empty.json");
const ERROR_401_INVALID_TOKEN: &str =
    include_str!("../../fixtures/ocr-mindee/error_401_invalid_token.json");
const ERROR_401_NO_TOKEN: &str =
    include_str!("../../fixtures/ocr-mindee/error_401_from_mindeeapi.json");
const ERROR_429: &str = include_str!("../../fixtures/ocr-mindee/error_429_from_mindeeapi.json");
const ERROR_500: &str = include_str!("../../fixtures/ocr-mindee/error_500_from_mindeeapi.json");
const ERROR_50X_HTML: &str = include_str!("../../fixtures/ocr-mindee/error_50x.html");

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
    window: RollingWindow,
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
            window: RollingWindow::new(),
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

#[cfg(test)]
mod tests;
