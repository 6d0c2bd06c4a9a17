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

mod auth;
mod content;
mod directory;
mod lifecycle;
pub mod samples;
mod submit;
use auth::*;
use content::*;
use directory::*;
use lifecycle::*;
use submit::*;

use crate::kit::respond::{self, JSON};
use crate::kit::xml::escape_text as escape;
use crate::kit::{credentials, dates, form, lock};
use crate::server::{self, RunningServer};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let now = u64::try_from(dates::unix_nanos() / 1_000_000).unwrap_or(0);
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

#[cfg(test)]
mod tests;
