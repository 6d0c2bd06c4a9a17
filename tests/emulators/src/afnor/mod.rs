//! An emulator of a French approved platform (PA) speaking AFNOR XP Z12-013, for the
//! end-to-end tests of the `einvoice-afnor` plugin.
//!
//! One platform, one client company, reached through:
//! - `POST /token`: OAuth2 client-credentials grant (form or HTTP Basic client
//!   authentication); a wrong client gets `401 {"error":"invalid_client"}`.
//! - the Flow service under `/flow-service`: `GET /v1/healthcheck`, `POST /v1/flows`
//!   (`multipart/form-data` with a JSON `flowInfo` part and a `file` part, answered `202`
//!   with a `FullFlowInfo`), `POST /v1/flows/search` (`SearchFlowParams` → `SearchFlowContent`)
//!   and `GET /v1/flows/{flowId}?docType=Metadata|Original`;
//! - the Directory service under `/directory-service`: `GET /v1/healthcheck`,
//!   `POST /v1/directory-line/search` (strict `siren`/`siret` filters) and
//!   `GET /v1/directory-line/code:{addressingIdentifier}`.
//!
//! It refuses what the standard refuses: no or an expired Bearer token (`401`), a body that
//! is not multipart or lacks `flowInfo`/`file`/`flowSyntax`/`name` (`400`, `Error` with
//! `errorCode`), values outside the standard's enumerations (`400`), a search without
//! `where` (`400`), an unknown flow (`404`). Checks on the content end in the flow's
//! acknowledgement, as the standard describes: `Error` with the reason codes of
//! `AFNOR_ReasonCodeEnum` — `ChecksumMismatch`, `EmptyFlow`, `InvalidSchema`,
//! `FlowTypeError` (content not of the declared syntax), `AlreadyExistingFlow` (same
//! tracking id or same file twice), and unknown or disabled recipients.
//!
//! The lifecycle moves over time: every search for `CustomerInvoiceLC` flows advances each
//! accepted invoice by one status (200 Déposée, 201, 202, 203, 204, 205, 211, then 212
//! Encaissée), each delivered as a CDAR flow to download, or along a script a test sets
//! with [`AfnorEmulator::script`] (e.g. a refusal 210 with its reason). In reality 212 is
//! declared by the seller and 204–211 by the buyer; the emulator plays the buyer and the
//! seller's reconciliation so that one run reaches the end. Supplier invoices to collect
//! are added with [`AfnorEmulator::deliver`]; [`AfnorEmulator::stall_downloads`] makes
//! downloads hang, so a test can kill the host mid-download. Buyer answers (CDAR flows the
//! client submits) are checked — status code 204 to 211, a reason for 207/208/210, an
//! invoice that was delivered — and kept for [`AfnorEmulator::answers`].
//!
//! The JSON shapes are those of the standard's OpenAPI components as published in
//! implementations (see `fixtures/afnor/README.md`); the `errorCode` values other than the
//! published example `MISSING_REQUIRED_FIELD` are illustrative.

use crate::server::{self, RunningServer};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use quick_xml::events::Event;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TOKEN_PATH: &str = "/token";
pub const FLOW_BASE: &str = "/flow-service";
pub const DIRECTORY_BASE: &str = "/directory-service";

/// The client company (SIREN) and the parties of the default directory.
pub const COMPANY_SIREN: &str = "702042755";
pub const COMPANY_NAME: &str = "BOULANGERIE PASCALE";
/// A private customer reachable through an approved platform.
pub const CUSTOMER_SIREN: &str = "987654324";
/// A public entity, reached through the public portal (Chorus Pro).
pub const PUBLIC_SIREN: &str = "219200235";
/// A company whose directory line is disabled.
pub const DISABLED_SIREN: &str = "314159260";
/// A supplier that sends invoices to the client company.
pub const SUPPLIER_SIREN: &str = "123456782";

const CDAR_NS: &str =
    "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100";
const UBL_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const CII_NS: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";

const SYNTAXES: [&str; 5] = ["CII", "UBL", "Factur-X", "CDAR", "FRR"];
const RULES: [&str; 9] = [
    "B2B",
    "B2BInt",
    "B2C",
    "B2G",
    "B2GInt",
    "OutOfScope",
    "B2GOutOfScope",
    "ArchiveOnly",
    "NotApplicable",
];
const FLOW_TYPES: [&str; 13] = [
    "CustomerInvoice",
    "SupplierInvoice",
    "StateInvoice",
    "CustomerInvoiceLC",
    "SupplierInvoiceLC",
    "StateCustomerInvoiceLC",
    "StateSupplierInvoiceLC",
    "AggregatedCustomerTransactionReport",
    "UnitaryCustomerTransactionReport",
    "AggregatedCustomerPaymentReport",
    "UnitaryCustomerPaymentReport",
    "UnitarySupplierTransactionReport",
    "MultiFlowReport",
];

/// The default lifecycle of an accepted invoice.
pub const DEFAULT_PATH: [&str; 8] = ["200", "201", "202", "203", "204", "205", "211", "212"];

/// One line of the emulated directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryLine {
    pub siren: String,
    pub siret: Option<String>,
    pub routing_code: Option<String>,
    pub name: String,
    /// `WK` (approved platform) or `DFH` (public portal).
    pub platform_type: String,
    /// `Enabled`, `Disabled` or `Upcoming`.
    pub status: String,
    /// `Public` or `Private`.
    pub entity_type: String,
}

impl DirectoryLine {
    fn new(siren: &str, name: &str, platform: &str, status: &str, entity: &str) -> Self {
        DirectoryLine {
            siren: siren.to_owned(),
            siret: None,
            routing_code: None,
            name: name.to_owned(),
            platform_type: platform.to_owned(),
            status: status.to_owned(),
            entity_type: entity.to_owned(),
        }
    }

    fn addressing_identifier(&self) -> String {
        match (&self.siret, &self.routing_code) {
            (Some(s), Some(r)) => format!("{s}_{r}"),
            (Some(s), None) => s.clone(),
            _ => self.siren.clone(),
        }
    }
}

/// Credentials and directory of the emulated platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfnorOptions {
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    pub directory: Vec<DirectoryLine>,
}

impl Default for AfnorOptions {
    fn default() -> Self {
        let mut routed = DirectoryLine::new(
            CUSTOMER_SIREN,
            "CLIENT PRIVE SA",
            "WK",
            "Enabled",
            "Private",
        );
        routed.siret = Some("98765432400001".to_owned());
        routed.routing_code = Some("ACHATS".to_owned());
        AfnorOptions {
            client_id: "pa-client-id".to_owned(),
            client_secret: "pa-client-secret".to_owned(),
            token_lifetime: Duration::from_secs(3600),
            directory: vec![
                DirectoryLine::new(COMPANY_SIREN, COMPANY_NAME, "WK", "Enabled", "Private"),
                DirectoryLine::new(
                    CUSTOMER_SIREN,
                    "CLIENT PRIVE SA",
                    "WK",
                    "Enabled",
                    "Private",
                ),
                routed,
                DirectoryLine::new(
                    PUBLIC_SIREN,
                    "COMMUNE DE CLAMART",
                    "DFH",
                    "Enabled",
                    "Public",
                ),
                DirectoryLine::new(DISABLED_SIREN, "ANCIENNE SARL", "WK", "Disabled", "Private"),
                DirectoryLine::new(
                    SUPPLIER_SIREN,
                    "ACME FOURNITURES",
                    "WK",
                    "Enabled",
                    "Private",
                ),
            ],
        }
    }
}

/// A flow as the emulator keeps it.
#[derive(Debug, Clone)]
pub struct EmulatedFlow {
    pub flow_id: String,
    pub tracking_id: Option<String>,
    pub name: String,
    pub syntax: String,
    pub flow_type: String,
    /// `In` (to the client) or `Out` (from the client).
    pub direction: String,
    pub submitted_at: String,
    pub updated_at: String,
    /// `Ok` or `Error` (shown `Pending` until the metadata was read once).
    pub ack: String,
    pub ack_read: bool,
    /// `(reasonCode, reasonMessage)`.
    pub details: Vec<(String, String)>,
    pub content: Vec<u8>,
    pub sha256: String,
    /// Invoice number (outgoing and received invoices, and CDAR references).
    pub invoice_number: Option<String>,
    /// Lifecycle codes already delivered for an outgoing invoice.
    pub delivered: usize,
    pub downloads: usize,
}

/// A buyer answer the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub flow_id: String,
    pub invoice_number: String,
    pub code: String,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
}

/// The statuses (code, reason) an invoice goes through.
type Script = Vec<(String, Option<String>)>;

struct Shared {
    opts: AfnorOptions,
    tokens: Mutex<HashMap<String, Instant>>,
    flows: Mutex<Vec<EmulatedFlow>>,
    scripts: Mutex<HashMap<String, Script>>,
    answers: Mutex<Vec<Answer>>,
    stall: AtomicBool,
    clock: AtomicU64,
    ids: AtomicU64,
    token_requests: AtomicU64,
}

impl Shared {
    /// A strictly increasing instant (ms), so that `updatedAfter` cursors never miss a flow.
    fn tick(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
            .unwrap_or(0);
        let mut prev = self.clock.load(Ordering::SeqCst);
        loop {
            let next = now.max(prev + 1);
            match self
                .clock
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        format!("flw-{n:08}-{:04x}", (self.tick() & 0xffff))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running platform emulator.
pub struct AfnorEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl std::fmt::Debug for AfnorEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfnorEmulator")
            .field("url", &self.server.url())
            .finish()
    }
}

impl AfnorEmulator {
    pub fn start(opts: AfnorOptions) -> std::io::Result<Self> {
        Self::start_on(opts, 0)
    }

    pub fn start_on(opts: AfnorOptions, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Shared {
            opts,
            tokens: Mutex::new(HashMap::new()),
            flows: Mutex::new(Vec::new()),
            scripts: Mutex::new(HashMap::new()),
            answers: Mutex::new(Vec::new()),
            stall: AtomicBool::new(false),
            clock: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
        });
        let server = server::spawn_on(app(state.clone()), port)?;
        Ok(AfnorEmulator { server, state })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }
    pub fn flow_url(&self) -> String {
        format!("{}{FLOW_BASE}", self.url())
    }
    pub fn directory_url(&self) -> String {
        format!("{}{DIRECTORY_BASE}", self.url())
    }
    pub fn options(&self) -> &AfnorOptions {
        &self.state.opts
    }

    /// The statuses (code, reason) an invoice number will go through, instead of
    /// [`DEFAULT_PATH`].
    pub fn script(&self, invoice_number: &str, path: &[(&str, Option<&str>)]) {
        lock(&self.state.scripts).insert(
            invoice_number.to_owned(),
            path.iter()
                .map(|(c, r)| ((*c).to_owned(), r.map(str::to_owned)))
                .collect(),
        );
    }

    /// A supplier invoice arriving for the client company; returns its flow id.
    pub fn deliver(&self, file_name: &str, syntax: &str, content: &[u8]) -> String {
        let at = self.state.tick();
        let id = self.state.next_id();
        let number = read_invoice(content).and_then(|f| f.number);
        lock(&self.state.flows).push(EmulatedFlow {
            flow_id: id.clone(),
            tracking_id: None,
            name: file_name.to_owned(),
            syntax: syntax.to_owned(),
            flow_type: "SupplierInvoice".to_owned(),
            direction: "In".to_owned(),
            submitted_at: rfc3339(at),
            updated_at: rfc3339(at),
            ack: "Ok".to_owned(),
            ack_read: true,
            details: Vec::new(),
            sha256: sha256_hex(content),
            content: content.to_vec(),
            invoice_number: number,
            delivered: 0,
            downloads: 0,
        });
        id
    }

    /// While on, downloads of original files hang (up to a minute).
    pub fn stall_downloads(&self, on: bool) {
        self.state.stall.store(on, Ordering::SeqCst);
    }

    /// Every flow, in creation order.
    pub fn flows(&self) -> Vec<EmulatedFlow> {
        lock(&self.state.flows).clone()
    }

    /// The buyer answers received, in order.
    pub fn answers(&self) -> Vec<Answer> {
        lock(&self.state.answers).clone()
    }

    /// How many times the original of `flow_id` was requested.
    pub fn downloads(&self, flow_id: &str) -> usize {
        lock(&self.state.flows)
            .iter()
            .find(|f| f.flow_id == flow_id)
            .map_or(0, |f| f.downloads)
    }

    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Forgets every token granted, as if they expired.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }
}

fn app(state: Arc<Shared>) -> Router {
    let flow = Router::new()
        .route("/v1/healthcheck", get(health))
        .route("/v1/flows", post(submit))
        .route("/v1/flows/search", post(search))
        .route("/v1/flows/{flow_id}", get(download));
    let directory = Router::new()
        .route("/v1/healthcheck", get(health))
        .route("/v1/directory-line/search", post(directory_search))
        .route("/v1/directory-line/{code}", get(directory_line));
    let protected = Router::new()
        .nest(FLOW_BASE, flow)
        .nest(DIRECTORY_BASE, directory)
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route(TOKEN_PATH, post(token))
        .merge(protected)
        .layer(DefaultBodyLimit::max(120 * 1024 * 1024))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errorCode": code, "errorMessage": message}).to_string(),
    )
        .into_response()
}

fn json_ok(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(State(state): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_ok(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type"}),
        );
    }
    if id.as_deref() != Some(state.opts.client_id.as_str())
        || secret.as_deref() != Some(state.opts.client_secret.as_str())
    {
        return json_ok(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    let n = state.ids.fetch_add(1, Ordering::SeqCst);
    let access_token = format!("pa-emu-{n:06}-{:08x}", state.tick() & 0xffff_ffff);
    lock(&state.tokens).insert(
        access_token.clone(),
        Instant::now() + state.opts.token_lifetime,
    );
    json_ok(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.opts.token_lifetime.as_secs(),
        }),
    )
}

async fn authorize(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let valid = token
        .as_deref()
        .and_then(|t| lock(&state.tokens).get(t).copied())
        .is_some_and(|until| until > Instant::now());
    if !valid {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Missing or invalid token",
        );
        if let Ok(v) = "Bearer error=\"invalid_token\"".parse() {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    next.run(request).await
}

async fn health() -> Response {
    json_ok(StatusCode::OK, &json!({"status": "UP"}))
}

/// `POST /v1/flows`.
async fn submit(State(state): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| {
            rest.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTENT_TYPE",
            "the request must be multipart/form-data with flowInfo and file parts",
        );
    };
    let parts = multipart_parts(&body, &boundary);
    let Some(info) = parts.iter().find(|p| p.name == "flowInfo") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo is required",
        );
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "file is required",
        );
    };
    let Ok(info) = serde_json::from_slice::<Value>(&info.data) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "flowInfo is not JSON",
        );
    };
    let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
    let Some(syntax) = text("flowSyntax") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo.flowSyntax is required",
        );
    };
    let Some(name) = text("name").filter(|n| !n.is_empty() && n.chars().count() <= 255) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo.name is required (at most 255 characters)",
        );
    };
    if !SYNTAXES.contains(&syntax.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowSyntax {syntax:?} is not one of {SYNTAXES:?}"),
        );
    }
    if let Some(rule) = text("processingRule") {
        if !RULES.contains(&rule.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_VALUE",
                &format!("processingRule {rule:?} is not one of {RULES:?}"),
            );
        }
    }
    let tracking = text("trackingId");
    if tracking.as_ref().is_some_and(|t| t.chars().count() > 36) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "trackingId is longer than 36 characters",
        );
    }
    let declared_sha = text("sha256");
    if declared_sha.as_ref().is_some_and(|s| {
        s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "sha256 must match ^[a-f0-9]{64}$",
        );
    }

    let content = file.data.clone();
    let sha = sha256_hex(&content);
    let mut details: Vec<(String, String)> = Vec::new();
    let mut number = None;
    let mut answer = None;
    let flow_type;
    if content.is_empty() {
        details.push(("EmptyFlow".into(), "The binary flow is empty".into()));
        flow_type = "CustomerInvoice";
    } else if declared_sha.as_ref().is_some_and(|d| *d != sha) {
        details.push((
            "ChecksumMismatch".into(),
            "Checksum provided is different from computed one".into(),
        ));
        flow_type = "CustomerInvoice";
    } else if syntax == "CDAR" {
        flow_type = "SupplierInvoiceLC";
        match check_answer(&state, &content) {
            Ok(a) => {
                number = Some(a.invoice_number.clone());
                answer = Some(a);
            }
            Err((code, message)) => details.push((code.into(), message)),
        }
    } else {
        flow_type = "CustomerInvoice";
        match check_invoice(&state, &syntax, &content) {
            Ok(facts) => number = facts.number,
            Err((code, message)) => details.push((code.into(), message)),
        }
    }
    let at = state.tick();
    let id = state.next_id();
    let mut flows = lock(&state.flows);
    if details.is_empty() {
        let duplicate = flows.iter().find(|f| {
            f.direction == "Out"
                && f.ack == "Ok"
                && (f.sha256 == sha || (tracking.is_some() && f.tracking_id == tracking))
        });
        if let Some(d) = duplicate {
            details.push((
                "AlreadyExistingFlow".into(),
                format!("The flow has already been sent as {}", d.flow_id),
            ));
        }
    }
    let ack = if details.is_empty() { "Ok" } else { "Error" };
    if let (true, Some(answer)) = (ack == "Ok", answer) {
        lock(&state.answers).push(Answer {
            flow_id: id.clone(),
            ..answer
        });
    }
    flows.push(EmulatedFlow {
        flow_id: id.clone(),
        tracking_id: tracking.clone(),
        name: name.clone(),
        syntax: syntax.clone(),
        flow_type: flow_type.to_owned(),
        direction: "Out".to_owned(),
        submitted_at: rfc3339(at),
        updated_at: rfc3339(at),
        ack: ack.to_owned(),
        ack_read: false,
        details,
        sha256: sha.clone(),
        content,
        invoice_number: number,
        delivered: 0,
        downloads: 0,
    });
    json_ok(
        StatusCode::ACCEPTED,
        &json!({
            "flowId": id,
            "submittedAt": rfc3339(at),
            "trackingId": tracking,
            "name": name,
            "flowSyntax": syntax,
            "processingRule": text("processingRule"),
            "sha256": sha,
        }),
    )
}

/// Checks an invoice's content against its declared syntax and its recipient against the
/// directory; `Err((reasonCode, message))`.
fn check_invoice(
    state: &Shared,
    syntax: &str,
    content: &[u8],
) -> Result<InvoiceFacts, (&'static str, String)> {
    let Some(facts) = read_invoice(content) else {
        return Err(if content.starts_with(b"%PDF-") || syntax == "Factur-X" {
            (
                "FlowTypeError",
                "The content is not a Factur-X PDF with an embedded CII invoice".to_owned(),
            )
        } else {
            (
                "InvalidSchema",
                "The content is not a well-formed UBL or CII invoice".to_owned(),
            )
        });
    };
    if facts.syntax != syntax {
        return Err((
            "FlowTypeError",
            format!(
                "The flow is declared {syntax} but its content is {}",
                facts.syntax
            ),
        ));
    }
    let Some(recipient) = facts.recipient.clone() else {
        return Err((
            "InvalidSchema",
            "The invoice names no buyer (BT-49 or legal identifier)".to_owned(),
        ));
    };
    let reachable = state.opts.directory.iter().any(|l| {
        l.status == "Enabled"
            && (l.addressing_identifier() == recipient
                || l.siren == recipient
                || l.siret.as_deref() == Some(recipient.as_str()))
    });
    if !reachable {
        return Err((
            "OtherTechnicalError",
            format!("The recipient {recipient} has no enabled line in the directory"),
        ));
    }
    Ok(facts)
}

/// Checks a buyer answer (CDAR).
fn check_answer(state: &Shared, content: &[u8]) -> Result<Answer, (&'static str, String)> {
    let doc = read_xml(content).ok_or((
        "InvalidSchema",
        "The CDAR message is not well-formed XML".to_owned(),
    ))?;
    if doc.root != "CrossDomainAcknowledgementAndResponse" || doc.ns.as_deref() != Some(CDAR_NS) {
        return Err((
            "FlowTypeError",
            "A CDAR flow must be a CrossDomainAcknowledgementAndResponse".to_owned(),
        ));
    }
    let get = |suffix: &str| {
        doc.values
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
    };
    let number = get("ReferenceReferencedDocument/IssuerAssignedID").ok_or((
        "InvoiceLCRuleError",
        "No referenced invoice (IssuerAssignedID)".to_owned(),
    ))?;
    let code = get("ReferenceReferencedDocument/ProcessConditionCode").ok_or((
        "InvoiceLCStatusError",
        "No status code (ProcessConditionCode)".to_owned(),
    ))?;
    if !["204", "205", "206", "207", "208", "210", "211"].contains(&code.as_str()) {
        return Err((
            "InvoiceLCStatusError",
            format!("Status {code} is not one a buyer may send"),
        ));
    }
    let reason = get("SpecifiedDocumentStatus/Reason");
    let reason_code = get("SpecifiedDocumentStatus/ReasonCode");
    if ["207", "208", "210"].contains(&code.as_str()) && reason.is_none() && reason_code.is_none() {
        return Err((
            "InvoiceLCRuleError",
            format!("Status {code} requires a reason"),
        ));
    }
    let known = lock(&state.flows).iter().any(|f| {
        f.flow_type == "SupplierInvoice" && f.invoice_number.as_deref() == Some(number.as_str())
    });
    if !known {
        return Err((
            "InvoiceLCAccessDenied",
            format!("No invoice {number} was received by this company"),
        ));
    }
    Ok(Answer {
        flow_id: String::new(),
        invoice_number: number,
        code,
        reason,
        reason_code,
    })
}

/// `POST /v1/flows/search`.
async fn search(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "the body is not JSON",
        );
    };
    let Some(filters) = params.get("where").and_then(Value::as_object) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "where is required",
        );
    };
    if filters.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "at least one filter is required",
        );
    }
    let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "limit must be between 1 and 100",
        );
    }
    let list = |k: &str| -> Result<Option<Vec<String>>, String> {
        match filters.get(k) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )),
            Some(_) => Err(format!("{k} must be an array")),
        }
    };
    let (types, directions) = match (list("flowType"), list("flowDirection")) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(e), _) | (_, Err(e)) => {
            return error(StatusCode::BAD_REQUEST, "INVALID_FIELD_VALUE", &e)
        }
    };
    if let Some(bad) = types
        .iter()
        .flatten()
        .find(|t| !FLOW_TYPES.contains(&t.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowType {bad:?} is not one of the standard's"),
        );
    }
    if let Some(bad) = directions
        .iter()
        .flatten()
        .find(|d| *d != "In" && *d != "Out")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowDirection {bad:?} is not In or Out"),
        );
    }
    let after = filters
        .get("updatedAfter")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if types.iter().flatten().any(|t| t == "CustomerInvoiceLC") {
        advance_lifecycles(&state);
    }
    let flows = lock(&state.flows);
    let mut results: Vec<&EmulatedFlow> = flows
        .iter()
        .filter(|f| types.as_ref().is_none_or(|t| t.contains(&f.flow_type)))
        .filter(|f| directions.as_ref().is_none_or(|d| d.contains(&f.direction)))
        .filter(|f| {
            after
                .as_ref()
                .is_none_or(|a| f.updated_at.as_str() > a.as_str())
        })
        .collect();
    results.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
    results.truncate(usize::try_from(limit).unwrap_or(100));
    json_ok(
        StatusCode::OK,
        &json!({
            "limit": limit,
            "filters": Value::Object(filters.clone()),
            "results": results.iter().map(|f| metadata(f)).collect::<Vec<_>>(),
        }),
    )
}

/// One more lifecycle status (a CDAR flow coming in) for every accepted invoice not ended.
fn advance_lifecycles(state: &Shared) {
    let scripts = lock(&state.scripts).clone();
    let mut flows = lock(&state.flows);
    let mut new = Vec::new();
    for f in flows.iter_mut() {
        if f.flow_type != "CustomerInvoice" || f.direction != "Out" || f.ack != "Ok" {
            continue;
        }
        let Some(number) = f.invoice_number.clone() else {
            continue;
        };
        let path: Vec<(String, Option<String>)> =
            scripts.get(&number).cloned().unwrap_or_else(|| {
                DEFAULT_PATH
                    .iter()
                    .map(|c| ((*c).to_owned(), None))
                    .collect()
            });
        let Some((code, reason)) = path.get(f.delivered).cloned() else {
            continue;
        };
        f.delivered += 1;
        new.push((number, code, reason));
    }
    drop(flows);
    for (number, code, reason) in new {
        let at = state.tick();
        let id = state.next_id();
        let content = cdar(&id, &number, &code, reason.as_deref(), at);
        lock(&state.flows).push(EmulatedFlow {
            flow_id: id.clone(),
            tracking_id: None,
            name: format!("CDAR-{code}-{number}.xml"),
            syntax: "CDAR".to_owned(),
            flow_type: "CustomerInvoiceLC".to_owned(),
            direction: "In".to_owned(),
            submitted_at: rfc3339(at),
            updated_at: rfc3339(at),
            ack: "Ok".to_owned(),
            ack_read: true,
            details: Vec::new(),
            sha256: sha256_hex(&content),
            content,
            invoice_number: Some(number),
            delivered: 0,
            downloads: 0,
        });
    }
}

fn label(code: &str) -> &'static str {
    match code {
        "200" => "Déposée",
        "201" => "Émise par la plateforme",
        "202" => "Reçue par la plateforme",
        "203" => "Mise à disposition",
        "204" => "Prise en charge",
        "205" => "Approuvée",
        "206" => "Approuvée partiellement",
        "207" => "En litige",
        "208" => "Suspendue",
        "209" => "Complétée",
        "210" => "Refusée",
        "211" => "Paiement transmis",
        "212" => "Encaissée",
        "213" => "Rejetée",
        _ => "",
    }
}

/// A CDAR lifecycle message about invoice `number`.
fn cdar(id: &str, number: &str, code: &str, reason: Option<&str>, at_ms: u64) -> Vec<u8> {
    let at = edifact(at_ms);
    let status = reason
        .map(|r| {
            format!(
                "<ram:SpecifiedDocumentStatus><ram:ReasonCode>AUTRE</ram:ReasonCode><ram:Reason>{}</ram:Reason></ram:SpecifiedDocumentStatus>",
                escape(r)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{CDAR_NS}" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument><ram:ID>{id}</ram:ID><ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:TypeCode>{type_code}</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>
      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
      <ram:ProcessCondition>{label}</ram:ProcessCondition>{status}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>
"#,
        type_code = if ["200", "201", "202", "203", "213"].contains(&code) { "305" } else { "23" },
        number = escape(number),
        label = label(code),
    )
    .into_bytes()
}

fn metadata(f: &EmulatedFlow) -> Value {
    let mut ack = json!({"status": if f.ack_read || f.direction == "In" { f.ack.as_str() } else { "Pending" }});
    if (f.ack_read || f.direction == "In") && !f.details.is_empty() {
        ack["details"] = f
            .details
            .iter()
            .map(|(code, message)| json!({"level": "Error", "item": f.name, "reasonCode": code, "reasonMessage": message}))
            .collect();
    }
    json!({
        "flowId": f.flow_id,
        "trackingId": f.tracking_id,
        "name": f.name,
        "processingRule": "B2B",
        "processingRuleSource": "Input",
        "flowSyntax": f.syntax,
        "flowType": f.flow_type,
        "flowDirection": f.direction,
        "submittedAt": f.submitted_at,
        "updatedAt": f.updated_at,
        "acknowledgement": ack,
    })
}

/// `GET /v1/flows/{flowId}?docType=…`.
async fn download(
    State(state): State<Arc<Shared>>,
    Path(flow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let doc_type = query
        .get("docType")
        .map(String::as_str)
        .unwrap_or("Metadata");
    if !["Metadata", "Original", "Converted", "ReadableView"].contains(&doc_type) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "docType must be Metadata, Original, Converted or ReadableView",
        );
    }
    let found = {
        let mut flows = lock(&state.flows);
        flows.iter_mut().find(|f| f.flow_id == flow_id).map(|f| {
            let meta = metadata(f);
            if doc_type == "Metadata" && f.direction == "Out" && !f.ack_read {
                f.ack_read = true;
            } else if doc_type == "Original" {
                f.downloads += 1;
            }
            (meta, f.content.clone(), f.syntax.clone())
        })
    };
    let Some((meta, content, syntax)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("no flow {flow_id}"),
        );
    };
    match doc_type {
        "Metadata" => json_ok(StatusCode::OK, &meta),
        "Original" => {
            let deadline = Instant::now() + Duration::from_secs(60);
            while state.stall.load(Ordering::SeqCst) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let media = if syntax == "Factur-X" {
                "application/pdf"
            } else {
                "application/xml"
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, media)], content).into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("flow {flow_id} has no {doc_type} document"),
        ),
    }
}

fn line_json(l: &DirectoryLine) -> Value {
    json!({
        "addressingIdentifier": l.addressing_identifier(),
        "platformType": l.platform_type,
        "directoryLineStatus": l.status,
        "siren": l.siren,
        "siret": l.siret,
        "routingCode": l.routing_code.as_ref().map(|r| json!({"routingIdentifier": r, "routingIdentifierType": "0224"})),
        "legalUnit": {"siren": l.siren, "businessName": l.name, "entityType": l.entity_type, "administrativeStatus": "A"},
    })
}

/// `POST /v1/directory-line/search`.
async fn directory_search(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "the body is not JSON",
        );
    };
    let Some(filters) = params
        .get("filters")
        .and_then(Value::as_object)
        .filter(|f| !f.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "filters is required",
        );
    };
    let mut lines: Vec<&DirectoryLine> = state.opts.directory.iter().collect();
    for (field, filter) in filters {
        let op = filter.get("op").and_then(Value::as_str).unwrap_or("strict");
        let Some(value) = filter.get("value").and_then(Value::as_str) else {
            return error(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD",
                &format!("filters.{field}.value is required"),
            );
        };
        let get = |l: &DirectoryLine| -> Option<String> {
            match field.as_str() {
                "siren" => Some(l.siren.clone()),
                "siret" => l.siret.clone(),
                "routingIdentifier" => l.routing_code.clone(),
                "addressingIdentifier" => Some(l.addressing_identifier()),
                _ => None,
            }
        };
        if ![
            "siren",
            "siret",
            "routingIdentifier",
            "addressingIdentifier",
            "addressingSuffix",
        ]
        .contains(&field.as_str())
        {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_VALUE",
                &format!("{field} is not a directory line field"),
            );
        }
        if (field == "siren" && (value.len() != 9 || !value.bytes().all(|b| b.is_ascii_digit())))
            || (field == "siret"
                && (value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit())))
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_FIELD_VALUE",
                &format!("{field} {value:?} does not match its pattern"),
            );
        }
        lines.retain(|l| match (op, get(l)) {
            ("strict", Some(v)) => v == value,
            ("contains", Some(v)) => v.contains(value),
            _ => false,
        });
    }
    if lines.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    json_ok(
        StatusCode::OK,
        &json!({
            "totalNumberOfResults": lines.len(),
            "results": lines.iter().map(|l| line_json(l)).collect::<Vec<_>>(),
        }),
    )
}

/// `GET /v1/directory-line/code:{addressingIdentifier}`.
async fn directory_line(State(state): State<Arc<Shared>>, Path(code): Path<String>) -> Response {
    let Some(id) = code.strip_prefix("code:") else {
        return error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            "use /v1/directory-line/code:{addressingIdentifier}",
        );
    };
    match state
        .opts
        .directory
        .iter()
        .find(|l| l.addressing_identifier() == id)
    {
        Some(l) => json_ok(StatusCode::OK, &line_json(l)),
        None => error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("no directory line {id}"),
        ),
    }
}

struct Part {
    name: String,
    data: Vec<u8>,
}

/// Splits a `multipart/form-data` body into its named parts.
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let Some(first) = find(rest, delimiter.as_bytes()) else {
        return parts;
    };
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(rest2) = rest.strip_prefix(b"\r\n") else {
            break;
        };
        let Some(head_end) = find(rest2, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest2[..head_end]).into_owned();
        let data_start = &rest2[head_end + 4..];
        let closing = format!("\r\n{delimiter}");
        let Some(end) = find(data_start, closing.as_bytes()) else {
            break;
        };
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| l.split(';').find_map(|p| p.trim().strip_prefix("name=")))
            .map(|n| n.trim_matches('"').to_owned())
            .unwrap_or_default();
        parts.push(Part {
            name,
            data: data_start[..end].to_vec(),
        });
        rest = &data_start[end + closing.len()..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An XML document's root, its namespace, and its text values by path of local names.
struct Xml {
    root: String,
    ns: Option<String>,
    values: Vec<(String, String)>,
}

fn read_xml(bytes: &[u8]) -> Option<Xml> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut stack: Vec<String> = Vec::new();
    let mut xml = Xml {
        root: String::new(),
        ns: None,
        values: Vec::new(),
    };
    let mut buf = Vec::new();
    let local = |n: &str| n.rsplit(':').next().unwrap_or(n).to_owned();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                let qname = e.name();
                let full: &str = qname.as_ref();
                if stack.is_empty() {
                    xml.root = local(full);
                    let prefix = full.split_once(':').map(|(p, _)| p.to_owned());
                    for a in e.attributes().flatten() {
                        let key: &str = a.key.as_ref();
                        let declared = if key == "xmlns" {
                            Some(None)
                        } else {
                            key.strip_prefix("xmlns:").map(|p| Some(p.to_owned()))
                        };
                        if declared == Some(prefix.clone()) {
                            xml.ns = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .ok()
                                .map(|v| v.into_owned());
                        }
                    }
                }
                stack.push(local(full));
            }
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_owned();
                if !text.is_empty() {
                    xml.values.push((stack.join("/"), text));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    (!xml.root.is_empty() && stack.is_empty()).then_some(xml)
}

/// What the emulator reads from an invoice.
#[derive(Debug, Clone)]
struct InvoiceFacts {
    syntax: &'static str,
    number: Option<String>,
    recipient: Option<String>,
}

fn read_invoice(content: &[u8]) -> Option<InvoiceFacts> {
    let (syntax, xml) = if content.starts_with(b"%PDF-") {
        ("Factur-X", read_xml(&embedded_xml(content)?)?)
    } else {
        let xml = read_xml(content)?;
        let syntax = match (xml.root.as_str(), xml.ns.as_deref()) {
            ("Invoice", Some(UBL_NS)) => "UBL",
            ("CrossIndustryInvoice", Some(CII_NS)) => "CII",
            _ => return None,
        };
        (syntax, xml)
    };
    let get = |suffix: &str| {
        xml.values
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
    };
    let (number, recipient) = if syntax == "UBL" {
        (
            get("Invoice/ID"),
            get("AccountingCustomerParty/Party/EndpointID")
                .or_else(|| get("AccountingCustomerParty/Party/PartyLegalEntity/CompanyID")),
        )
    } else {
        if xml.root != "CrossIndustryInvoice" {
            return None;
        }
        (
            get("ExchangedDocument/ID"),
            get("BuyerTradeParty/URIUniversalCommunication/URIID")
                .or_else(|| get("BuyerTradeParty/SpecifiedLegalOrganization/ID")),
        )
    };
    Some(InvoiceFacts {
        syntax,
        number,
        recipient,
    })
}

/// The CII a PDF embeds (inflated when compressed).
fn embedded_xml(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut rest = pdf;
    while let Some(start) = find(rest, b"stream\n") {
        let body = &rest[start + 7..];
        let end = find(body, b"\nendstream")?;
        let data = &body[..end];
        if let Ok(inflated) = miniz_oxide::inflate::decompress_to_vec_zlib(data) {
            if find(&inflated, b"CrossIndustryInvoice").is_some() {
                return Some(inflated);
            }
        }
        if find(data, b"CrossIndustryInvoice").is_some() {
            return Some(data.to_vec());
        }
        rest = &body[end..];
    }
    None
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn edifact(ms: u64) -> String {
    rfc3339(ms)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect()
}

/// Invoices of the reform: the buyer is addressed by its electronic address (BT-49, scheme
/// 0225) and its SIREN (scheme 0002), as XP Z12-012 asks.
pub mod samples {
    use super::{COMPANY_SIREN, CUSTOMER_SIREN, SUPPLIER_SIREN};

    /// A UBL invoice from `seller` to `buyer` (SIRENs or addressing identifiers).
    pub fn ubl(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
        let number = super::escape(number);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>2026-09-01</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cbc:EndpointID schemeID="0225">{seller}</cbc:EndpointID>
    <cac:PartyLegalEntity><cbc:RegistrationName>VENDEUR</cbc:RegistrationName><cbc:CompanyID schemeID="0002">{seller}</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cbc:EndpointID schemeID="0225">{buyer}</cbc:EndpointID>
    <cac:PartyLegalEntity><cbc:RegistrationName>ACHETEUR</cbc:RegistrationName><cbc:CompanyID schemeID="0002">{buyer}</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"#
        )
        .into_bytes()
    }

    /// A CII invoice from `seller` to `buyer`.
    pub fn cii(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
        let number = super::escape(number);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument><ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime><udt:DateTimeString format="102">20260901</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty><ram:Name>VENDEUR</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">{seller}</ram:ID></ram:SpecifiedLegalOrganization></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>ACHETEUR</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">{buyer}</ram:ID></ram:SpecifiedLegalOrganization><ram:URIUniversalCommunication><ram:URIID schemeID="0225">{buyer}</ram:URIID></ram:URIUniversalCommunication></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode></ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#
        )
        .into_bytes()
    }

    /// A Factur-X PDF embedding [`cii`].
    pub fn factur_x(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
        let xml = cii(number, seller, buyer);
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&xml, 6);
        let mut stream = format!(
            "<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length {} >>\nstream\n",
            compressed.len()
        )
        .into_bytes();
        stream.extend_from_slice(&compressed);
        stream.extend_from_slice(b"\nendstream");
        crate::chorus_pro::samples::assemble(&[
            b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(factur-x.xml) 4 0 R] >> >> >>".to_vec(),
            b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec(),
            stream,
            b"<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /AFRelationship /Data /EF << /F 3 0 R >> >>".to_vec(),
        ])
    }

    /// An invoice the client company sends to its private customer.
    pub fn outgoing(number: &str) -> Vec<u8> {
        ubl(number, COMPANY_SIREN, CUSTOMER_SIREN)
    }

    /// An invoice the supplier sends to the client company.
    pub fn incoming(number: &str) -> Vec<u8> {
        cii(number, SUPPLIER_SIREN, COMPANY_SIREN)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One HTTP/1.1 exchange on a fresh connection: status and body.
    fn call(
        emu: &AfnorEmulator,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(emu.server.addr()).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head[9..12].parse().unwrap(), body.to_owned())
    }

    fn token(emu: &AfnorEmulator) -> String {
        let o = emu.options().clone();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            o.client_id, o.client_secret
        );
        let (status, body) = call(
            emu,
            "POST",
            TOKEN_PATH,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        format!("Bearer {}", v["access_token"].as_str().unwrap())
    }

    fn submit(emu: &AfnorEmulator, auth: &str, info: &Value, file: &[u8]) -> (u16, Value) {
        let mut body = b"--b\r\nContent-Disposition: form-data; name=\"flowInfo\"\r\nContent-Type: application/json\r\n\r\n".to_vec();
        body.extend_from_slice(info.to_string().as_bytes());
        body.extend_from_slice(
            b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--b--\r\n");
        let (status, text) = call(
            emu,
            "POST",
            "/flow-service/v1/flows",
            &[
                ("Authorization", auth),
                ("Content-Type", "multipart/form-data; boundary=b"),
            ],
            &body,
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ack(emu: &AfnorEmulator, auth: &str, id: &str) -> Value {
        let path = format!("/flow-service/v1/flows/{id}?docType=Metadata");
        call(emu, "GET", &path, &[("Authorization", auth)], b"");
        let (status, body) = call(emu, "GET", &path, &[("Authorization", auth)], b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["acknowledgement"].clone()
    }

    #[test]
    fn refuses_what_the_standard_refuses() {
        let emu = AfnorEmulator::start(AfnorOptions::default()).unwrap();
        let (status, body) = call(
            &emu,
            "POST",
            TOKEN_PATH,
            &[],
            b"grant_type=client_credentials&client_id=x&client_secret=y",
        );
        assert_eq!(status, 401, "{body}");
        let invoice = samples::outgoing("F-1");
        let info = json!({"name": "F-1.xml", "flowSyntax": "UBL", "processingRule": "B2B", "sha256": sha256_hex(&invoice)});
        assert_eq!(submit(&emu, "Bearer nope", &info, &invoice).0, 401);
        let auth = token(&emu);
        let (status, body) = submit(&emu, &auth, &json!({"name": "F-1.xml"}), &invoice);
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (400, Some("MISSING_REQUIRED_FIELD"))
        );
        let (status, _) = submit(
            &emu,
            &auth,
            &json!({"name": "F-1.xml", "flowSyntax": "PDF"}),
            &invoice,
        );
        assert_eq!(status, 400);
        let (status, body) = call(
            &emu,
            "POST",
            "/flow-service/v1/flows/search",
            &[("Authorization", &auth)],
            b"{\"limit\":10}",
        );
        assert_eq!(status, 400, "{body}");

        let (status, first) = submit(&emu, &auth, &info, &invoice);
        assert_eq!(status, 202, "{first}");
        assert_eq!(
            ack(&emu, &auth, first["flowId"].as_str().unwrap())["status"],
            "Ok"
        );
        for (info, file, reason) in [
            (info.clone(), invoice.clone(), "AlreadyExistingFlow"),
            (
                json!({"name": "F-2.xml", "flowSyntax": "CII"}),
                samples::outgoing("F-2"),
                "FlowTypeError",
            ),
            (
                json!({"name": "F-3.xml", "flowSyntax": "UBL", "sha256": "0".repeat(64)}),
                samples::outgoing("F-3"),
                "ChecksumMismatch",
            ),
            (
                json!({"name": "F-4.xml", "flowSyntax": "UBL"}),
                samples::ubl("F-4", COMPANY_SIREN, "552100554"),
                "OtherTechnicalError",
            ),
            (
                json!({"name": "F-5.xml", "flowSyntax": "UBL"}),
                b"<Invoice".to_vec(),
                "InvalidSchema",
            ),
        ] {
            let (status, answer) = submit(&emu, &auth, &info, &file);
            assert_eq!(status, 202, "{answer}");
            let ack = ack(&emu, &auth, answer["flowId"].as_str().unwrap());
            assert_eq!(ack["status"], "Error", "{reason}: {ack}");
            assert_eq!(ack["details"][0]["reasonCode"], reason, "{ack}");
        }
    }

    #[test]
    fn the_lifecycle_moves_one_status_per_search() {
        let emu = AfnorEmulator::start(AfnorOptions::default()).unwrap();
        let auth = token(&emu);
        let invoice = samples::factur_x("F-9", COMPANY_SIREN, CUSTOMER_SIREN);
        let (status, body) = submit(
            &emu,
            &auth,
            &json!({"name": "F-9.pdf", "flowSyntax": "Factur-X"}),
            &invoice,
        );
        assert_eq!(status, 202, "{body}");
        let search = br#"{"where":{"flowType":["CustomerInvoiceLC"],"flowDirection":["In"]}}"#;
        for expected in 1..=DEFAULT_PATH.len() + 2 {
            let (status, body) = call(
                &emu,
                "POST",
                "/flow-service/v1/flows/search",
                &[("Authorization", &auth)],
                search,
            );
            assert_eq!(status, 200);
            let results: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                results["results"].as_array().unwrap().len(),
                expected.min(DEFAULT_PATH.len())
            );
        }
        let last = emu.flows().into_iter().last().unwrap();
        assert!(String::from_utf8(last.content)
            .unwrap()
            .contains("<ram:ProcessConditionCode>212</ram:ProcessConditionCode>"));
    }
}
