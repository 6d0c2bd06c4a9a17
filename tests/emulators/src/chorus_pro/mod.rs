//! An emulator of Chorus Pro behind the PISTE gateway, for end-to-end tests of the
//! `chorus-pro` plugin.
//!
//! It reproduces the public contract the plugin must cope with, and refuses what the real
//! service refuses:
//! - `POST /api/oauth/token`: client-credentials grant (form body, `client_id` and
//!   `client_secret` in the form or HTTP Basic, scope `openid`), expiring Bearer tokens;
//!   wrong credentials get `400 {"error":"invalid_client"}`.
//! - every `/cpro/…` call: a valid, unexpired Bearer token (else `401` with
//!   `WWW-Authenticate: Bearer realm="PISTE", error="invalid_token"`), the technical account
//!   in `cpro-account: base64(login:password)` (else `401` with a Chorus refusal body), and a
//!   JSON `Content-Type` on POSTs (else `415`);
//! - a strict per-second quota (PISTE sandbox: 5/s): more than N admitted requests in any
//!   rolling second get `429` with `Retry-After`, and a daily quota; [`ChorusProEmulator`]
//!   records every admitted request so a test can prove a client never exceeded it;
//! - injectable transient failures: [`ChorusProEmulator::fail_next`] makes the next N API
//!   calls answer `503` (without `Retry-After`, so the client's own delay applies);
//! - `GET /cpro/transverses/v1/health-check`, `POST /cpro/structures/v1/rechercher` (the
//!   structures the technical account is attached to; an unknown one gets Chorus's refusal
//!   shape `{"codeRetour": N, "libelle": "…"}` with HTTP 400);
//! - `POST /cpro/factures/v1/deposer/flux`: checks that `fichierFlux` is base64, at most
//!   10 MB, and that its content matches `syntaxeFlux` (Factur-X PDF with an embedded
//!   `factur-x.xml`, UBL `Invoice`, CII `CrossIndustryInvoice`), then answers a
//!   `numeroFluxDepot`;
//! - `POST /cpro/transverses/v1/consulterCRDetaille`: deposit states that progress over
//!   successive consultations (`IN_RECU`, `IN_EN_COURS_TRAITEMENT_CPP`, `IN_TRAITE_SE_CPP`,
//!   then `IN_INTEGRE`, or `IN_REJETE` with each error when the invoice lacks mandatory
//!   elements or the service code / engagement number its recipient requires, or whatever a
//!   test forced with [`ChorusProEmulator::force_outcome`]: `IN_INTEGRE_PARTIEL`,
//!   `IN_INCIDENTE`, `QP_IRRECEVABLE`, `QP_RECEVABLE_AVEC_ERREUR`). Only published states are
//!   ever answered: the emulator invents none;
//! - `POST /cpro/utilisateurs/v1/monCompte/recuperer/rattachements`: the structures the
//!   technical account is attached to (a test detaches one with [`ChorusProEmulator::detach`];
//!   it stays in the directory, so the structure search still finds it);
//! - `POST /cpro/structures/v1/consulter`: a structure's `parametres`
//!   (`codeServiceDoitEtreRenseigne`, `numeroEJDoitEtreRenseigne`), for the recipients
//!   ([`Recipient`]) as well as the supplier;
//! - `POST /cpro/factures/v1/rechercher/fournisseur` (`numeroFluxDepot`): the invoices of an
//!   integrated deposit with their `identifiantFactureCPP` and `statut`, which progresses at
//!   each search along `DEPOSEE`, `MISE_A_DISPOSITION`, `MANDATEE`, `MISE_EN_PAIEMENT` unless
//!   a test sets it ([`ChorusProEmulator::set_invoice_status`], e.g. `SUSPENDUE`);
//! - the health check answers one of the shapes the gateway is known to give
//!   ([`HealthShape`]).
//!
//! The JSON shapes are those of the published clients' samples (see
//! `fixtures/chorus-pro/README.md`); the `codeRetour` numbers and French messages of refusals
//! are illustrative (no capture of them is public), the shapes are not. [`samples`] writes
//! valid test invoices, including real minimal Factur-X PDFs.

use crate::server::{self, RunningServer};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Path of the token endpoint under the emulator's root (as on `*-oauth.piste.gouv.fr`).
pub const TOKEN_PATH: &str = "/api/oauth/token";
pub const HEALTH_CHECK_PATH: &str = "/cpro/transverses/v1/health-check";
pub const STRUCTURES_PATH: &str = "/cpro/structures/v1/rechercher";
pub const DEPOSIT_PATH: &str = "/cpro/factures/v1/deposer/flux";
pub const REPORT_PATH: &str = "/cpro/transverses/v1/consulterCRDetaille";
pub const ATTACHMENTS_PATH: &str = "/cpro/utilisateurs/v1/monCompte/recuperer/rattachements";
pub const STRUCTURE_CONSULT_PATH: &str = "/cpro/structures/v1/consulter";
pub const SUPPLIER_INVOICES_PATH: &str = "/cpro/factures/v1/rechercher/fournisseur";

/// Invoice statuses a deposit's invoices go through, one step per search, when no test sets
/// them.
pub const INVOICE_PATH: &[&str] = &[
    "DEPOSEE",
    "MISE_A_DISPOSITION",
    "MANDATEE",
    "MISE_EN_PAIEMENT",
];
/// Every invoice status (`statutFacture`) a test may set, as published clients list them.
pub const INVOICE_STATUSES: &[&str] = &[
    "DEPOSEE",
    "EN_COURS_ACHEMINEMENT",
    "MISE_A_DISPOSITION",
    "A_RECYCLER",
    "SUSPENDUE",
    "REJETEE",
    "SERVICE_FAIT",
    "MANDATEE",
    "MISE_EN_PAIEMENT",
    "COMPTABILISEE",
    "MISE_A_DISPOSITION_COMPTABLE",
    "COMPLETEE",
    "ABANDONNEE",
    "SUPPRIMEE",
];

/// Largest file accepted in a deposit: 10 MB.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// Syntaxes the emulator checks and integrates.
pub const SYNTAX_FACTURX: &str = "IN_DP_E2_CII_FACTURX";
pub const SYNTAX_UBL: &str = "IN_DP_E1_UBL_INVOICE";
pub const SYNTAX_CII: &str = "IN_DP_E1_CII_16B";

const UBL_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const CII_NS: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";

/// `codeRetour` of the refusals (illustrative numbers, see the module docs).
pub const CODE_UNKNOWN_STRUCTURE: i64 = 20001;
pub const CODE_UNKNOWN_DEPOSIT: i64 = 20002;
pub const CODE_BAD_BASE64: i64 = 20003;
pub const CODE_UNKNOWN_SYNTAX: i64 = 20004;
pub const CODE_SYNTAX_MISMATCH: i64 = 20005;
pub const CODE_TOO_LARGE: i64 = 20006;
pub const CODE_MISSING_FIELD: i64 = 20007;
pub const CODE_BAD_JSON: i64 = 20008;
pub const CODE_ACCOUNT: i64 = 20010;

/// A structure of the Chorus Pro directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// `idStructureCPP`.
    pub id_cpp: u64,
    /// `identifiantStructure`, e.g. a SIRET.
    pub identifier: String,
    /// `typeIdentifiantStructure`, e.g. `SIRET`.
    pub id_type: String,
    pub designation: String,
    /// `ACTIF` or `INACTIF`.
    pub status: String,
}

/// A public recipient of the directory, with what its invoices must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub structure: Structure,
    /// `codeServiceDoitEtreRenseigne`: invoices must name the executing service (BT-10).
    pub service_code_required: bool,
    /// `numeroEJDoitEtreRenseigne`: invoices must carry the engagement number (BT-13).
    pub engagement_required: bool,
}

/// SIRET of a recipient that requires a service code and an engagement number.
pub const STRICT_BUYER_SIRET: &str = "13002526500013";

/// The shape the health check answers in (all healthy but `Failing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthShape {
    /// `{"statusCode": "200"}`, the published sample.
    StringCode,
    /// `{"statusCode": 200}`.
    NumberCode,
    /// Spring's `{"headers": {}, "body": null, "statusCode": "OK", "statusCodeValue": 200}`.
    Spring,
    /// HTTP 200 with `{"statusCode": "503"}`: the service reports itself down.
    Failing,
}

/// SIRET of the default supplier structure.
pub const SUPPLIER_SIRET: &str = "12345678200010";
/// SIRET of the default buyer (a public entity) the sample invoices are addressed to.
pub const BUYER_SIRET: &str = "21920023500014";

/// Credentials, structures and quotas of an emulated PISTE application and technical account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChorusProOptions {
    pub client_id: String,
    pub client_secret: String,
    pub technical_login: String,
    pub technical_password: String,
    /// Structures the technical account is attached to.
    pub structures: Vec<Structure>,
    /// API requests admitted in any rolling second; 0 disables the quota.
    pub per_second: u32,
    /// API requests admitted per UTC day; 0 disables the quota.
    pub per_day: u32,
    /// Lifetime of the tokens granted.
    pub token_lifetime: Duration,
    /// Consultations of a deposit's report that still show it in progress (`IN_RECU`,
    /// `IN_EN_COURS_TRAITEMENT_CPP`, then `IN_TRAITE_SE_CPP`) before the final state shows.
    pub consultations_before_final: u32,
    /// Public structures invoices may be addressed to.
    pub recipients: Vec<Recipient>,
}

impl Default for ChorusProOptions {
    fn default() -> Self {
        ChorusProOptions {
            client_id: "piste-client-id".to_owned(),
            client_secret: "piste-client-secret".to_owned(),
            technical_login: "TECH_12345678200010@cpro.fr".to_owned(),
            technical_password: "Tech-Passw0rd!".to_owned(),
            structures: vec![Structure {
                id_cpp: 25_000_101,
                identifier: SUPPLIER_SIRET.to_owned(),
                id_type: "SIRET".to_owned(),
                designation: "ACME FOURNITURES SAS".to_owned(),
                status: "ACTIF".to_owned(),
            }],
            per_second: 5,
            per_day: 50_000,
            token_lifetime: Duration::from_secs(3600),
            consultations_before_final: 2,
            recipients: vec![
                Recipient {
                    structure: Structure {
                        id_cpp: 26_000_201,
                        identifier: BUYER_SIRET.to_owned(),
                        id_type: "SIRET".to_owned(),
                        designation: "COMMUNE DE CLAMART".to_owned(),
                        status: "ACTIF".to_owned(),
                    },
                    service_code_required: false,
                    engagement_required: false,
                },
                Recipient {
                    structure: Structure {
                        id_cpp: 26_000_202,
                        identifier: STRICT_BUYER_SIRET.to_owned(),
                        id_type: "SIRET".to_owned(),
                        designation: "DIRECTION REGIONALE DES FINANCES PUBLIQUES".to_owned(),
                        status: "ACTIF".to_owned(),
                    },
                    service_code_required: true,
                    engagement_required: true,
                },
            ],
        }
    }
}

/// Final states a test can force for a deposit (by file name): the published ones only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepositOutcome {
    Integrated,
    PartiallyIntegrated,
    Rejected,
    /// `IN_INCIDENTE`: processing failed on Chorus Pro's side.
    Incident,
    /// `QP_IRRECEVABLE`: the flow is not receivable.
    Irreceivable,
    /// `QP_RECEVABLE_AVEC_ERREUR`: received with errors.
    ReceivableWithError,
}

impl DepositOutcome {
    pub fn code(self) -> &'static str {
        match self {
            DepositOutcome::Integrated => "IN_INTEGRE",
            DepositOutcome::PartiallyIntegrated => "IN_INTEGRE_PARTIEL",
            DepositOutcome::Rejected => "IN_REJETE",
            DepositOutcome::Incident => "IN_INCIDENTE",
            DepositOutcome::Irreceivable => "QP_IRRECEVABLE",
            DepositOutcome::ReceivableWithError => "QP_RECEVABLE_AVEC_ERREUR",
        }
    }

    /// Whether invoices were made of the deposit.
    fn integrated(self) -> bool {
        matches!(
            self,
            DepositOutcome::Integrated | DepositOutcome::PartiallyIntegrated
        )
    }
}

/// A deposit as the emulator registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedDeposit {
    pub number: String,
    pub file_name: String,
    pub syntax: String,
    pub size_bytes: usize,
    /// The invoice number read from the content, when there is one.
    pub invoice_number: Option<String>,
    pub outcome: DepositOutcome,
    pub consultations: u32,
}

/// A running Chorus Pro emulator; stops when dropped.
#[derive(Debug)]
pub struct ChorusProEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl ChorusProEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: ChorusProOptions) -> std::io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: ChorusProOptions, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        Ok(ChorusProEmulator { server, state })
    }

    /// `http://127.0.0.1:PORT`: the plugin's `api_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The plugin's `oauth_url`.
    pub fn oauth_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    pub fn options(&self) -> &ChorusProOptions {
        &self.state.opts
    }

    /// Makes the next `n` API calls (under `/cpro`) answer 503.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Forces the final state of deposits of files with this name.
    pub fn force_outcome(&self, file_name: &str, outcome: DepositOutcome) {
        lock(&self.state.forced).insert(file_name.to_owned(), outcome);
    }

    /// Detaches the technical account from a structure (by identifier): the structure stays
    /// in the directory but is no longer listed in the account's attachments.
    pub fn detach(&self, identifier: &str) {
        lock(&self.state.detached).push(identifier.to_owned());
    }

    /// Makes the health check answer in this shape from now on.
    pub fn set_health_shape(&self, shape: HealthShape) {
        *lock(&self.state.health) = shape;
    }

    /// Sets the status of the invoices numbered `number` (and stops their progress), as the
    /// buyer's processing would; `status` must be a published one ([`INVOICE_STATUSES`]).
    pub fn set_invoice_status(&self, number: &str, status: &str) {
        assert!(
            INVOICE_STATUSES.contains(&status),
            "{status} is not a Chorus Pro invoice status"
        );
        lock(&self.state.invoice_status).insert(number.to_owned(), status.to_owned());
    }

    /// Invoice searches received (`factures/v1/rechercher/fournisseur`).
    pub fn invoice_searches(&self) -> usize {
        self.state.invoice_searches.load(Ordering::SeqCst)
    }

    /// Makes every token granted so far expired.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for expiry in lock(&self.state.tokens).values_mut() {
            *expiry = now;
        }
    }

    /// Every deposit registered, in order.
    pub fn deposits(&self) -> Vec<EmulatedDeposit> {
        lock(&self.state.deposits)
            .iter()
            .map(|d| EmulatedDeposit {
                number: d.number.clone(),
                file_name: d.file_name.clone(),
                syntax: d.syntax.clone(),
                size_bytes: d.size_bytes,
                invoice_number: d.invoice_number.clone(),
                outcome: d.outcome,
                consultations: d.consultations,
            })
            .collect()
    }

    /// Token requests received (granted or not).
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// API requests received under `/cpro`, whatever their answer.
    pub fn api_requests(&self) -> usize {
        self.state.api_requests.load(Ordering::SeqCst)
    }

    /// API requests refused with 429 by the quota.
    pub fn quota_refusals(&self) -> usize {
        self.state.quota_refusals.load(Ordering::SeqCst)
    }

    /// The most API requests admitted within any rolling second so far.
    pub fn max_in_any_second(&self) -> usize {
        let times = lock(&self.state.admitted_log).clone();
        let second = Duration::from_secs(1);
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= second {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// Time from the first to the last admitted API request.
    pub fn admitted_span(&self) -> Duration {
        let times = lock(&self.state.admitted_log);
        match (times.first(), times.last()) {
            (Some(first), Some(last)) => last.duration_since(*first),
            _ => Duration::ZERO,
        }
    }

    /// Times of every admitted API request (what a test measures retry delays with).
    pub fn admitted_times(&self) -> Vec<Instant> {
        lock(&self.state.admitted_log).clone()
    }
}

/// A deposit and what the emulator decided it becomes.
#[derive(Debug)]
struct Deposit {
    number: String,
    login: String,
    file_name: String,
    syntax: String,
    size_bytes: usize,
    invoice_number: Option<String>,
    deposited_secs: u64,
    outcome: DepositOutcome,
    technical_errors: Vec<Value>,
    invoice_errors: Vec<Value>,
    consultations: u32,
    state_changed_secs: u64,
    last_state: String,
    /// `identifiantFactureCPP` of its invoice once integrated.
    invoice_id: u64,
    /// Invoice searches seen since integration (drives the status progression).
    invoice_searches: usize,
}

#[derive(Debug)]
struct Shared {
    opts: ChorusProOptions,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    token_requests: AtomicUsize,
    api_requests: AtomicUsize,
    quota_refusals: AtomicUsize,
    fail_next: AtomicU32,
    /// Admitted requests of the last second, for the quota.
    window: Mutex<VecDeque<Instant>>,
    /// (UTC day, requests admitted that day).
    day: Mutex<(u64, u32)>,
    admitted_log: Mutex<Vec<Instant>>,
    deposits: Mutex<Vec<Deposit>>,
    forced: Mutex<HashMap<String, DepositOutcome>>,
    deposit_seq: AtomicU64,
    detached: Mutex<Vec<String>>,
    health: Mutex<HealthShape>,
    invoice_status: Mutex<HashMap<String, String>>,
    invoice_searches: AtomicUsize,
}

impl Shared {
    fn new(opts: ChorusProOptions) -> Self {
        Shared {
            opts,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            token_requests: AtomicUsize::new(0),
            api_requests: AtomicUsize::new(0),
            quota_refusals: AtomicUsize::new(0),
            fail_next: AtomicU32::new(0),
            window: Mutex::new(VecDeque::new()),
            day: Mutex::new((0, 0)),
            admitted_log: Mutex::new(Vec::new()),
            deposits: Mutex::new(Vec::new()),
            forced: Mutex::new(HashMap::new()),
            deposit_seq: AtomicU64::new(0),
            detached: Mutex::new(Vec::new()),
            health: Mutex::new(HealthShape::StringCode),
            invoice_status: Mutex::new(HashMap::new()),
            invoice_searches: AtomicUsize::new(0),
        }
    }
}

/// A poisoned lock only means another handler panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn app(state: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(HEALTH_CHECK_PATH, get(health_check))
        .route(STRUCTURES_PATH, post(search_structures))
        .route(DEPOSIT_PATH, post(deposit))
        .route(REPORT_PATH, post(report))
        .route(ATTACHMENTS_PATH, post(attachments))
        .route(STRUCTURE_CONSULT_PATH, post(consult_structure))
        .route(SUPPLIER_INVOICES_PATH, post(supplier_invoices))
        // Innermost first: axum runs the last layer added first.
        .route_layer(middleware::from_fn(content_type))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            technical_account,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            injected_failures,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer))
        .route_layer(middleware::from_fn_with_state(state.clone(), quota));
    Router::new()
        .merge(api)
        .route(TOKEN_PATH, post(token))
        .fallback(unknown_route)
        // A 10 MB file is 14 MB of base64 in JSON.
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Chorus Pro's refusal shape.
fn refusal(status: StatusCode, code: i64, label: &str) -> Response {
    json_response(status, &json!({"codeRetour": code, "libelle": label}))
}

/// Outermost layer of `/cpro`: counts, then applies the strict per-second and daily quotas.
async fn quota(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let now = Instant::now();
    if state.opts.per_second > 0 {
        let second = Duration::from_secs(1);
        let mut window = lock(&state.window);
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= second)
        {
            window.pop_front();
        }
        if window.len() >= state.opts.per_second as usize {
            drop(window);
            state.quota_refusals.fetch_add(1, Ordering::SeqCst);
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({
                    "error": "rate_limited",
                    "error_description": format!(
                        "Quota dépassé : {} requêtes par seconde au plus",
                        state.opts.per_second
                    )
                }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        window.push_back(now);
    }
    if state.opts.per_day > 0 {
        let today = unix_secs() / 86_400;
        let mut day = lock(&state.day);
        if day.0 != today {
            *day = (today, 0);
        }
        if day.1 >= state.opts.per_day {
            drop(day);
            state.quota_refusals.fetch_add(1, Ordering::SeqCst);
            return json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({
                    "error": "rate_limited",
                    "error_description": format!(
                        "Quota journalier dépassé : {} requêtes par jour au plus",
                        state.opts.per_day
                    )
                }),
            );
        }
        day.1 += 1;
    }
    lock(&state.admitted_log).push(now);
    next.run(request).await
}

/// The gateway's Bearer check.
async fn bearer(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_request", "error_description": "Bearer token missing"}),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"PISTE\""),
        );
        return response;
    };
    let valid = lock(&state.tokens)
        .get(token)
        .is_some_and(|expiry| *expiry > Instant::now());
    if valid {
        return next.run(request).await;
    }
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({
            "error": "invalid_token",
            "error_description": "The access token is invalid or has expired"
        }),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"PISTE\", error=\"invalid_token\", error_description=\"The access token is invalid or has expired\"",
        ),
    );
    response
}

/// Transient failures a test asked for.
async fn injected_failures(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let failed = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failed {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "service_unavailable",
                "error_description": "Le service est momentanément indisponible"
            }),
        );
    }
    next.run(request).await
}

/// Chorus Pro's check of the technical account (`cpro-account`).
async fn technical_account(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(raw) = headers.get("cpro-account").and_then(|v| v.to_str().ok()) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            CODE_ACCOUNT,
            "En-tête cpro-account absent : compte technique requis",
        );
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!(
        "{}:{}",
        state.opts.technical_login, state.opts.technical_password
    );
    match decoded {
        Some(account) if account == expected => {
            request
                .extensions_mut()
                .insert(Login(state.opts.technical_login.clone()));
            next.run(request).await
        }
        _ => refusal(
            StatusCode::UNAUTHORIZED,
            CODE_ACCOUNT,
            "Authentification du compte technique impossible : identifiant ou mot de passe incorrect",
        ),
    }
}

/// The technical account of a call, set by [`technical_account`].
#[derive(Debug, Clone)]
struct Login(String);

/// POSTs carry JSON.
async fn content_type(headers: HeaderMap, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let ok = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !ok {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_BAD_JSON,
                "Content-Type attendu : application/json;charset=utf-8",
            );
        }
    }
    next.run(request).await
}

/// `application/x-www-form-urlencoded` decoding.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
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
    let (id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some((id, secret)), _, _) => (Some(id), Some(secret)),
        (None, id, secret) => (id.cloned(), secret.cloned()),
    };
    if id.as_deref() != Some(state.opts.client_id.as_str())
        || secret.as_deref() != Some(state.opts.client_secret.as_str())
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type"}),
        );
    }
    if let Some(scope) = form.get("scope") {
        if scope.split_whitespace().any(|s| s != "openid") {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_scope", "error_description": "Only openid is granted"}),
            );
        }
    }
    let n = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let access_token = format!("cpro-emu-{n:06}-{nanos:08x}");
    lock(&state.tokens).insert(
        access_token.clone(),
        Instant::now() + state.opts.token_lifetime,
    );
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.opts.token_lifetime.as_secs(),
            "scope": "openid"
        }),
    )
}

async fn health_check(State(state): State<Arc<Shared>>) -> Response {
    let body = match *lock(&state.health) {
        HealthShape::StringCode => json!({"statusCode": "200"}),
        HealthShape::NumberCode => json!({"statusCode": 200}),
        HealthShape::Spring => json!({
            "headers": {}, "body": null, "statusCode": "OK", "statusCodeValue": 200
        }),
        HealthShape::Failing => json!({"statusCode": "503"}),
    };
    json_response(StatusCode::OK, &body)
}

/// Every structure of the directory: the account's own, then the public recipients.
fn directory(opts: &ChorusProOptions) -> Vec<&Structure> {
    opts.structures
        .iter()
        .chain(opts.recipients.iter().map(|r| &r.structure))
        .collect()
}

async fn attachments(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    if json_body(&body).is_none() {
        return bad_json();
    }
    let detached = lock(&state.detached).clone();
    let attached: Vec<Value> = state
        .opts
        .structures
        .iter()
        .filter(|s| !detached.contains(&s.identifier))
        .enumerate()
        .map(|(i, s)| {
            json!({
                "designationStructure": s.designation,
                "idRattachementStructure": 90_000 + i,
                "idStructure": s.id_cpp,
                "identifiantStructure": s.identifier,
                "listeServicesRattache": [{
                    "codeService": "FACTURES",
                    "dateDbtService": "2020-01-01T00:00:00Z",
                    "dateFinService": "2099-12-31T00:00:00Z",
                    "estActif": true,
                    "idRattachementService": 91_000 + i,
                    "idService": 70_000 + i,
                    "libelleService": "Service facturation",
                    "statutRattachementService": "ACTIF",
                    "statutService": "ACTIF"
                }],
                "roleUtilisateur": "GESTIONNAIRE",
                "statutRattachementStructure": "ACTIF",
                "statutUtilisateur": "ACTIF",
                "typeIdentifiantStructure": s.id_type
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeStructureRattachement": attached,
            "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": 100, "total": attached.len()}
        }),
    )
}

async fn consult_structure(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let Some(id) = body.get("idStructureCPP").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champ obligatoire : idStructureCPP",
        );
    };
    let recipient = state
        .opts
        .recipients
        .iter()
        .find(|r| r.structure.id_cpp == id);
    let structure = directory(&state.opts).into_iter().find(|s| s.id_cpp == id);
    let Some(structure) = structure else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_STRUCTURE,
            &format!("Aucune structure ne correspond à l'identifiant {id}"),
        );
    };
    let (service, engagement) = recipient.map_or((false, false), |r| {
        (r.service_code_required, r.engagement_required)
    });
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "idStructureCPP": structure.id_cpp,
            "identifiant": {
                "identifiantStructure": structure.identifier,
                "typeIdentifiantStructure": structure.id_type,
                "libelleStructure": structure.designation
            },
            "parametres": {
                "codeServiceDoitEtreRenseigne": service,
                "numeroEJDoitEtreRenseigne": engagement,
                "gestionNumeroEJOuCodeService": false,
                "statutMiseEnPaiementNestPasRemonte": false
            }
        }),
    )
}

async fn supplier_invoices(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    state.invoice_searches.fetch_add(1, Ordering::SeqCst);
    let wanted = body
        .get("numeroFluxDepot")
        .and_then(Value::as_str)
        .map(str::trim);
    let forced = lock(&state.invoice_status).clone();
    let mut deposits = lock(&state.deposits);
    let mut list = Vec::new();
    for d in deposits.iter_mut().filter(|d| d.login == login) {
        if wanted.is_some_and(|w| w != d.number) {
            continue;
        }
        // Invoices exist once the flow shows as integrated.
        let shown = d.consultations > state.opts.consultations_before_final;
        if !(shown && d.outcome.integrated()) {
            continue;
        }
        let number = d
            .invoice_number
            .clone()
            .unwrap_or_else(|| d.file_name.clone());
        let status = match forced.get(&number) {
            Some(status) => status.clone(),
            None => {
                let step = d.invoice_searches.min(INVOICE_PATH.len() - 1);
                d.invoice_searches += 1;
                INVOICE_PATH[step].to_owned()
            }
        };
        list.push(json!({
            "identifiantFactureCPP": d.invoice_id,
            "numeroFacture": number,
            "dateFacture": date(d.deposited_secs),
            "dateDepot": date(d.deposited_secs),
            "identifiantDestinataire": "",
            "identifiantFournisseur": state.opts.structures.first().map(|s| s.identifier.clone()).unwrap_or_default(),
            "numeroFluxDepot": d.number,
            "statut": status,
            "typeFacture": "FACTURE"
        }));
    }
    if wanted.is_some()
        && list.is_empty()
        && !deposits
            .iter()
            .any(|d| Some(d.number.as_str()) == wanted && d.login == login)
    {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_DEPOSIT,
            &format!(
                "Aucun flux déposé ne correspond au numéro {}",
                wanted.unwrap_or_default()
            ),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeFactures": list,
            "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": 10, "total": list.len()}
        }),
    )
}

/// A JSON object body.
fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// Chorus's refusal of a body that is not a JSON object.
fn bad_json() -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        CODE_BAD_JSON,
        "Le corps de la requête n'est pas un objet JSON valide",
    )
}

async fn search_structures(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let criteria = body.get("structure").cloned().unwrap_or(Value::Null);
    let identifier = criteria
        .get("identifiantStructure")
        .and_then(Value::as_str)
        .map(str::trim);
    let id_type = criteria
        .get("typeIdentifiantStructure")
        .and_then(Value::as_str)
        .map(str::trim);
    let found: Vec<&Structure> = directory(&state.opts)
        .into_iter()
        .filter(|s| identifier.is_none_or(|i| i == s.identifier))
        .filter(|s| id_type.is_none_or(|t| t == s.id_type))
        .collect();
    if found.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_STRUCTURE,
            "Aucune structure ne correspond aux critères de recherche",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeStructures": found.iter().map(|s| json!({
                "designationStructure": s.designation,
                "idStructureCPP": s.id_cpp,
                "identifiantStructure": s.identifier,
                "statut": s.status,
                "typeIdentifiantStructure": s.id_type
            })).collect::<Vec<_>>(),
            "parametresRetour": {
                "pageCourante": 1,
                "pages": 1,
                "nbResultatsParPage": 10,
                "total": found.len()
            }
        }),
    )
}

async fn deposit(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (Some(content), Some(file_name), Some(syntax)) =
        (text("fichierFlux"), text("nomFichier"), text("syntaxeFlux"))
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champs obligatoires : fichierFlux, nomFichier, syntaxeFlux",
        );
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(content) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_BAD_BASE64,
            "Le champ fichierFlux n'est pas encodé en base64",
        );
    };
    if bytes.len() > MAX_FILE_BYTES {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_TOO_LARGE,
            "La taille du fichier dépasse 10 Mo",
        );
    }
    if ![SYNTAX_FACTURX, SYNTAX_UBL, SYNTAX_CII].contains(&syntax) {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_SYNTAX,
            &format!("Syntaxe de flux inconnue : {syntax}"),
        );
    }
    let invoice = match analyse(&bytes, syntax) {
        Ok(invoice) => invoice,
        Err(reason) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                CODE_SYNTAX_MISMATCH,
                &format!("Le fichier ne correspond pas à la syntaxe {syntax} : {reason}"),
            )
        }
    };
    let forced = lock(&state.forced).get(file_name).copied();
    let (outcome, technical_errors, invoice_errors) =
        decide(forced, &invoice, &state.opts, file_name);
    let now = unix_secs();
    let seq = state.deposit_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let number = format!("CPP{}{seq:09}", &date(now)[..4]);
    lock(&state.deposits).push(Deposit {
        number: number.clone(),
        login,
        file_name: file_name.to_owned(),
        syntax: syntax.to_owned(),
        size_bytes: bytes.len(),
        invoice_number: invoice.number.clone(),
        deposited_secs: now,
        outcome,
        technical_errors,
        invoice_errors,
        consultations: 0,
        state_changed_secs: now,
        last_state: "IN_DEPOSE".to_owned(),
        invoice_id: 8_420_000 + seq,
        invoice_searches: 0,
    });
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "dateDepot": date(now),
            "libelle": "GCU_MSG_01_000",
            "numeroFluxDepot": number,
            "syntaxeFlux": syntax
        }),
    )
}

/// The final state of a deposit, and its errors.
fn decide(
    forced: Option<DepositOutcome>,
    invoice: &Invoice,
    opts: &ChorusProOptions,
    file_name: &str,
) -> (DepositOutcome, Vec<Value>, Vec<Value>) {
    let supplier = opts
        .structures
        .first()
        .map(|s| s.identifier.clone())
        .unwrap_or_default();
    let number = invoice
        .number
        .clone()
        .unwrap_or_else(|| file_name.to_owned());
    let dp_error = |label: &str| {
        json!({
            "identifiantDestinataire": invoice.buyer.clone().unwrap_or_default(),
            "identifiantFournisseur": supplier,
            "libelleErreurDP": label,
            "numeroDP": number
        })
    };
    match forced {
        Some(DepositOutcome::Integrated) => (DepositOutcome::Integrated, vec![], vec![]),
        Some(DepositOutcome::PartiallyIntegrated) => (
            DepositOutcome::PartiallyIntegrated,
            vec![],
            vec![dp_error(
                "Le service exécutant est obligatoire pour ce destinataire",
            )],
        ),
        Some(DepositOutcome::Rejected) => (
            DepositOutcome::Rejected,
            vec![],
            vec![dp_error("Le destinataire est inconnu de Chorus Pro")],
        ),
        Some(outcome @ DepositOutcome::Incident) => (
            outcome,
            vec![json!({
                "codeErreur": "INC_TRAITEMENT",
                "libelleErreur": "Incident lors du traitement du flux",
                "natureErreur": "TECHNIQUE"
            })],
            vec![],
        ),
        Some(outcome @ DepositOutcome::Irreceivable) => (
            outcome,
            vec![json!({
                "codeErreur": "QP_IRRECEVABLE",
                "libelleErreur": "Flux irrecevable : le fichier ne respecte pas le format annoncé",
                "natureErreur": "BLOQUANTE"
            })],
            vec![],
        ),
        Some(outcome @ DepositOutcome::ReceivableWithError) => (
            outcome,
            vec![],
            vec![dp_error(
                "Montant total incohérent avec la somme des lignes",
            )],
        ),
        None if !invoice.missing.is_empty() => (
            DepositOutcome::Rejected,
            invoice
                .missing
                .iter()
                .map(|element| {
                    json!({
                        "codeErreur": "REJ_ELEMENT_ABSENT",
                        "libelleErreur": format!("Élément obligatoire absent : {element}"),
                        "natureErreur": "BLOQUANTE"
                    })
                })
                .collect(),
            vec![],
        ),
        None => {
            let recipient = opts
                .recipients
                .iter()
                .find(|r| invoice.buyer.as_deref() == Some(r.structure.identifier.as_str()));
            let mut errors = Vec::new();
            if recipient.is_some_and(|r| r.service_code_required) && invoice.service.is_none() {
                errors.push(dp_error(
                    "Le code service est obligatoire pour ce destinataire",
                ));
            }
            if recipient.is_some_and(|r| r.engagement_required) && invoice.engagement.is_none() {
                errors.push(dp_error(
                    "Le numéro d'engagement est obligatoire pour ce destinataire",
                ));
            }
            if errors.is_empty() {
                (DepositOutcome::Integrated, vec![], vec![])
            } else {
                (DepositOutcome::Rejected, vec![], errors)
            }
        }
    }
}

async fn report(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let Some(number) = body
        .get("numeroFluxDepot")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champ obligatoire : numeroFluxDepot",
        );
    };
    let mut deposits = lock(&state.deposits);
    let Some(d) = deposits
        .iter_mut()
        .find(|d| d.number == number && d.login == login)
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_DEPOSIT,
            &format!("Aucun flux déposé ne correspond au numéro {number}"),
        );
    };
    d.consultations += 1;
    let before = state.opts.consultations_before_final;
    let current = if d.consultations <= before {
        match d.consultations {
            1 => "IN_RECU",
            n if n == before => "IN_TRAITE_SE_CPP",
            _ => "IN_EN_COURS_TRAITEMENT_CPP",
        }
    } else {
        d.outcome.code()
    };
    if current != d.last_state {
        d.last_state = current.to_owned();
        d.state_changed_secs = unix_secs();
    }
    let final_shown = d.consultations > before;
    json_response(
        StatusCode::OK,
        &json!({
            "codeInterfaceDepotFlux": d.syntax,
            "codeRetour": 0,
            "dateDepotFlux": datetime(d.deposited_secs),
            "dateHeureEtatCourantFlux": datetime(d.state_changed_secs),
            "etatCourantDepotFlux": current,
            "libelle": "TRA_MSG_00.000",
            "nomFichier": d.file_name,
            "listeErreurDP": if final_shown { d.invoice_errors.clone() } else { vec![] },
            "listeErreurTechnique": if final_shown { d.technical_errors.clone() } else { vec![] }
        }),
    )
}

async fn unknown_route() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "error_description": "Unknown resource"}),
    )
}

/// What the emulator reads from an invoice.
#[derive(Debug, Default)]
struct Invoice {
    number: Option<String>,
    buyer: Option<String>,
    /// BT-10, the buyer reference Chorus Pro reads as the service code.
    service: Option<String>,
    /// BT-13, the purchase order reference Chorus Pro reads as the engagement number.
    engagement: Option<String>,
    /// Mandatory elements that are absent.
    missing: Vec<&'static str>,
}

/// Checks that the content is of the declared syntax and reads the invoice.
fn analyse(bytes: &[u8], syntax: &str) -> Result<Invoice, String> {
    let xml = if syntax == SYNTAX_FACTURX {
        if !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
        {
            return Err("le fichier n'est pas un PDF".into());
        }
        if !names_facturx(bytes) {
            return Err("le PDF n'embarque pas de fichier factur-x.xml".into());
        }
        embedded_file(bytes).ok_or("le fichier factur-x.xml embarqué est illisible")?
    } else {
        bytes.to_vec()
    };
    let expected = match syntax {
        SYNTAX_UBL => (UBL_NS, "Invoice"),
        _ => (CII_NS, "CrossIndustryInvoice"),
    };
    read_invoice(&xml, expected)
}

/// Reads the root, the invoice number, the buyer and the mandatory elements of an invoice.
fn read_invoice(xml: &[u8], expected: (&str, &str)) -> Result<Invoice, String> {
    let mut reader = NsReader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut invoice = Invoice::default();
    let ubl = expected.1 == "Invoice";
    loop {
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(read) => read,
            Err(e) => return Err(format!("XML mal formé ({e})")),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = AsRef::<str>::as_ref(&e.local_name()).to_owned();
                if path.is_empty() {
                    let ns = match resolved {
                        ResolveResult::Bound(ns) => AsRef::<str>::as_ref(&ns).to_owned(),
                        _ => String::new(),
                    };
                    if (ns.as_str(), local.as_str()) != expected {
                        return Err(format!(
                            "élément racine {{{ns}}}{local}, attendu {{{}}}{}",
                            expected.0, expected.1
                        ));
                    }
                }
                if matches!(event, Event::Start(_)) {
                    path.push(local);
                    seen.push(path.join("/"));
                } else {
                    let mut p = path.clone();
                    p.push(local);
                    seen.push(p.join("/"));
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(ref t) => {
                let text: &str = t.as_ref();
                let text = text.trim();
                let joined = path.join("/");
                if ubl && joined == "Invoice/ID" {
                    invoice.number = Some(text.to_owned());
                }
                if !ubl && joined == "CrossIndustryInvoice/ExchangedDocument/ID" {
                    invoice.number = Some(text.to_owned());
                }
                if !text.is_empty()
                    && (joined == "Invoice/BuyerReference"
                        || joined.ends_with("ApplicableHeaderTradeAgreement/BuyerReference"))
                {
                    invoice.service = Some(text.to_owned());
                }
                if !text.is_empty()
                    && (joined == "Invoice/OrderReference/ID"
                        || joined.ends_with("BuyerOrderReferencedDocument/IssuerAssignedID"))
                {
                    invoice.engagement = Some(text.to_owned());
                }
                if (joined.contains("AccountingCustomerParty") && joined.ends_with("CompanyID"))
                    || (joined.contains("BuyerTradeParty")
                        && joined.ends_with("SpecifiedLegalOrganization/ID"))
                {
                    invoice.buyer = Some(text.to_owned());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if path.is_empty() && seen.is_empty() {
        return Err("document XML vide".into());
    }
    let required: &[(&str, &'static str)] = if ubl {
        &[
            ("Invoice/ID", "cbc:ID"),
            ("Invoice/IssueDate", "cbc:IssueDate"),
            (
                "Invoice/AccountingSupplierParty",
                "cac:AccountingSupplierParty",
            ),
            (
                "Invoice/AccountingCustomerParty",
                "cac:AccountingCustomerParty",
            ),
        ]
    } else {
        &[
            (
                "CrossIndustryInvoice/ExchangedDocument/ID",
                "rsm:ExchangedDocument/ram:ID",
            ),
            ("SellerTradeParty", "ram:SellerTradeParty"),
            ("BuyerTradeParty", "ram:BuyerTradeParty"),
        ]
    };
    for (suffix, name) in required {
        let present = seen
            .iter()
            .any(|p| p == suffix || p.ends_with(&format!("/{suffix}")));
        if !present {
            invoice.missing.push(name);
        }
    }
    Ok(invoice)
}

/// Whether the PDF names `factur-x.xml` as an embedded file, in the clear or in a
/// compressed object stream.
fn names_facturx(pdf: &[u8]) -> bool {
    let name: &[u8] = b"factur-x.xml";
    let utf16: Vec<u8> = name.iter().flat_map(|b| [0u8, *b]).collect();
    let hit = |data: &[u8]| {
        find(data, name).is_some()
            || find(data, &utf16).is_some()
            || find_ignore_case(data, b"6661637475722d782e786d6c").is_some()
    };
    if find(pdf, b"/EmbeddedFile").is_none() {
        return false;
    }
    hit(pdf) || streams(pdf, b"/ObjStm").iter().any(|s| hit(s))
}

/// The content of the embedded file stream (`/Type /EmbeddedFile`), inflated if needed.
fn embedded_file(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    while let Some(i) = find(&pdf[from..], b"/EmbeddedFile") {
        let at = from + i;
        from = at + 13;
        // `/EmbeddedFiles` is the name tree, not the stream.
        if pdf.get(at + 13) == Some(&b's') {
            continue;
        }
        if let Some(content) = stream_after(pdf, at) {
            return Some(content);
        }
    }
    None
}

/// The decoded content of every stream whose dictionary holds `marker`.
fn streams(pdf: &[u8], marker: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&pdf[from..], marker) {
        let at = from + i;
        from = at + marker.len();
        if let Some(content) = stream_after(pdf, at) {
            out.push(content);
        }
    }
    out
}

/// The stream whose dictionary contains position `at`, decoded (FlateDecode or none).
fn stream_after(pdf: &[u8], at: usize) -> Option<Vec<u8>> {
    let keyword = at + find(&pdf[at..], b"stream")?;
    let dict_start = rfind(&pdf[..at], b"obj").unwrap_or(0);
    let dict = &pdf[dict_start..keyword];
    let mut start = keyword + 6;
    if pdf.get(start) == Some(&b'\r') {
        start += 1;
    }
    if pdf.get(start) == Some(&b'\n') {
        start += 1;
    }
    let end = start + find(&pdf[start..], b"endstream")?;
    let data = &pdf[start..end];
    if find(dict, b"/FlateDecode").is_some() {
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, 64 * 1024 * 1024).ok()
    } else {
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        let data = data.strip_suffix(b"\r").unwrap_or(data);
        Some(data.to_vec())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC).
fn date(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(unix_secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn datetime(unix_secs: u64) -> String {
    let rem = unix_secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(unix_secs),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Test invoices: a UBL and a CII invoice following EN 16931's core, and real minimal
/// Factur-X PDFs (PDF 1.7 with the CII XML as an embedded, FlateDecode-compressed file,
/// referenced from the catalog's `/EmbeddedFiles` name tree and `/AF`, with a valid
/// cross-reference table).
pub mod samples {
    use super::{BUYER_SIRET, SUPPLIER_SIRET};

    /// A UBL 2.1 invoice numbered `number`.
    pub fn ubl_invoice(number: &str) -> Vec<u8> {
        ubl(number, true)
    }

    /// A UBL invoice without its issue date and buyer: Chorus Pro rejects it after deposit.
    pub fn incomplete_ubl_invoice(number: &str) -> Vec<u8> {
        ubl(number, false)
    }

    /// A UBL invoice to `buyer`, with the service code (BT-10, `cbc:BuyerReference`) and
    /// engagement number (BT-13, `cac:OrderReference/cbc:ID`) given.
    pub fn ubl_invoice_to(
        number: &str,
        buyer: &str,
        service: Option<&str>,
        engagement: Option<&str>,
    ) -> Vec<u8> {
        let text = String::from_utf8(ubl(number, true)).unwrap_or_default();
        let mut references = String::new();
        if let Some(service) = service {
            references.push_str(&format!(
                "  <cbc:BuyerReference>{}</cbc:BuyerReference>\n",
                escape(service)
            ));
        }
        if let Some(engagement) = engagement {
            references.push_str(&format!(
                "  <cac:OrderReference><cbc:ID>{}</cbc:ID></cac:OrderReference>\n",
                escape(engagement)
            ));
        }
        text.replace(BUYER_SIRET, buyer)
            .replace(
                "  <cac:AccountingSupplierParty>",
                &format!("{references}  <cac:AccountingSupplierParty>"),
            )
            .into_bytes()
    }

    fn ubl(number: &str, complete: bool) -> Vec<u8> {
        let number = escape(number);
        let issue = if complete {
            "  <cbc:IssueDate>2025-03-14</cbc:IssueDate>\n"
        } else {
            ""
        };
        let customer = if complete {
            format!(
                r#"  <cac:AccountingCustomerParty>
    <cac:Party>
      <cac:PartyIdentification><cbc:ID schemeID="0009">{BUYER_SIRET}</cbc:ID></cac:PartyIdentification>
      <cac:PartyLegalEntity>
        <cbc:RegistrationName>COMMUNE DE CLAMART</cbc:RegistrationName>
        <cbc:CompanyID schemeID="0009">{BUYER_SIRET}</cbc:CompanyID>
      </cac:PartyLegalEntity>
    </cac:Party>
  </cac:AccountingCustomerParty>
"#
            )
        } else {
            String::new()
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
{issue}  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty>
    <cac:Party>
      <cac:PartyIdentification><cbc:ID schemeID="0009">{SUPPLIER_SIRET}</cbc:ID></cac:PartyIdentification>
      <cac:PartyLegalEntity>
        <cbc:RegistrationName>ACME FOURNITURES SAS</cbc:RegistrationName>
        <cbc:CompanyID schemeID="0009">{SUPPLIER_SIRET}</cbc:CompanyID>
      </cac:PartyLegalEntity>
    </cac:Party>
  </cac:AccountingSupplierParty>
{customer}  <cac:TaxTotal>
    <cbc:TaxAmount currencyID="EUR">20.00</cbc:TaxAmount>
  </cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">120.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
    <cbc:ID>1</cbc:ID>
    <cbc:InvoicedQuantity unitCode="C62">1</cbc:InvoicedQuantity>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Fournitures de bureau</cbc:Name></cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="EUR">100.00</cbc:PriceAmount></cac:Price>
  </cac:InvoiceLine>
</Invoice>
"#
        )
        .into_bytes()
    }

    /// A UN/CEFACT CII D16B invoice numbered `number` (what Factur-X embeds).
    pub fn cii_invoice(number: &str) -> Vec<u8> {
        let number = escape(number);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter>
      <ram:ID>urn:cen.eu:en16931:2017</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{number}</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20250314</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>ACME FOURNITURES SAS</ram:Name>
        <ram:SpecifiedLegalOrganization><ram:ID schemeID="0009">{SUPPLIER_SIRET}</ram:ID></ram:SpecifiedLegalOrganization>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty>
        <ram:Name>COMMUNE DE CLAMART</ram:Name>
        <ram:SpecifiedLegalOrganization><ram:ID schemeID="0009">{BUYER_SIRET}</ram:ID></ram:SpecifiedLegalOrganization>
      </ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>100.00</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>120.00</ram:GrandTotalAmount>
        <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#
        )
        .into_bytes()
    }

    /// A Factur-X PDF whose embedded `factur-x.xml` is [`cii_invoice`]`(number)`.
    pub fn factur_x_pdf(number: &str) -> Vec<u8> {
        pdf(number, Some(("factur-x.xml", &cii_invoice(number))))
    }

    /// A PDF that embeds a file with another name (not Factur-X).
    pub fn pdf_with_attachment(number: &str, attachment_name: &str) -> Vec<u8> {
        pdf(number, Some((attachment_name, &cii_invoice(number))))
    }

    /// A PDF without any embedded file.
    pub fn plain_pdf(number: &str) -> Vec<u8> {
        pdf(number, None)
    }

    fn pdf(number: &str, attachment: Option<(&str, &[u8])>) -> Vec<u8> {
        let text = format!(
            "BT /F1 14 Tf 72 770 Td (Facture {}) Tj ET",
            number.replace(['(', ')', '\\'], "")
        );
        let mut objects: Vec<Vec<u8>> = Vec::new();
        let catalog = match attachment {
            Some((name, _)) => format!(
                "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [({name}) 5 0 R] >> >> /AF [5 0 R] >>"
            ),
            None => "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        };
        objects.push(catalog.into_bytes());
        objects.push(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec());
        objects.push(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 7 0 R >> >> >>"
                .to_vec(),
        );
        objects.push(stream(b"", text.as_bytes()));
        if let Some((name, content)) = attachment {
            objects.push(
                format!(
                    "<< /Type /Filespec /F ({name}) /UF ({name}) /AFRelationship /Data /Desc (Invoice) /EF << /F 6 0 R /UF 6 0 R >> >>"
                )
                .into_bytes(),
            );
            let compressed = miniz_oxide::deflate::compress_to_vec_zlib(content, 6);
            objects.push(stream(
                format!(
                    "/Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Params << /Size {} >> ",
                    content.len()
                )
                .as_bytes(),
                &compressed,
            ));
        } else {
            objects.push(b"null".to_vec());
            objects.push(b"null".to_vec());
        }
        objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
        assemble(&objects)
    }

    /// `<< extra /Length n >>\nstream\n…\nendstream`.
    fn stream(extra: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = b"<< ".to_vec();
        out.extend_from_slice(extra);
        out.extend_from_slice(format!("/Length {} >>\nstream\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\nendstream");
        out
    }

    /// Numbers the objects from 1, writes the cross-reference table and the trailer.
    pub fn assemble(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
        out.extend_from_slice(b"0000000000 65535 f \n");
        for offset in offsets {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One HTTP/1.1 exchange on a fresh connection: status and body.
    fn call(
        emu: &ChorusProEmulator,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
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
        let status = head[9..12].parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    fn token(emu: &ChorusProEmulator) -> String {
        let o = emu.options();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
            o.client_id, o.client_secret
        );
        let (status, _, body) = call(
            emu,
            "POST",
            TOKEN_PATH,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    fn account(emu: &ChorusProEmulator) -> String {
        let o = emu.options();
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", o.technical_login, o.technical_password))
    }

    fn api(emu: &ChorusProEmulator, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let account = account(emu);
        let (status, _, text) = call(
            emu,
            "POST",
            path,
            &[
                ("Authorization", &bearer),
                ("cpro-account", &account),
                ("Content-Type", "application/json;charset=utf-8"),
            ],
            body.to_string().as_bytes(),
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn options() -> ChorusProOptions {
        ChorusProOptions {
            per_second: 0,
            ..ChorusProOptions::default()
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn token_endpoint_checks_the_client_and_the_scope() {
        let emu = ChorusProEmulator::start(options()).unwrap();
        let (status, _, body) = call(
            &emu,
            "POST",
            TOKEN_PATH,
            &[],
            b"grant_type=client_credentials&client_id=piste-client-id&client_secret=nope",
        );
        assert_eq!(status, 400);
        assert!(body.contains("invalid_client"), "{body}");
        let (status, _, body) = call(
            &emu,
            "POST",
            TOKEN_PATH,
            &[],
            b"grant_type=client_credentials&client_id=piste-client-id&client_secret=piste-client-secret&scope=admin",
        );
        assert_eq!(status, 400);
        assert!(body.contains("invalid_scope"), "{body}");
        assert!(!token(&emu).is_empty());
        assert_eq!(emu.token_requests(), 3);
    }

    #[test]
    fn every_call_needs_a_live_token_the_account_and_json() {
        let emu = ChorusProEmulator::start(options()).unwrap();
        let t = token(&emu);
        let (status, _, _) = call(&emu, "GET", HEALTH_CHECK_PATH, &[], b"");
        assert_eq!(status, 401);
        let bearer = format!("Bearer {t}");
        let (status, _, body) = call(
            &emu,
            "GET",
            HEALTH_CHECK_PATH,
            &[("Authorization", &bearer)],
            b"",
        );
        assert_eq!(status, 401);
        assert!(body.contains("cpro-account"), "{body}");
        let acct = account(&emu);
        let (status, _, body) = call(
            &emu,
            "GET",
            HEALTH_CHECK_PATH,
            &[("Authorization", &bearer), ("cpro-account", &acct)],
            b"",
        );
        assert_eq!((status, body.as_str()), (200, r#"{"statusCode":"200"}"#));
        let (status, _, _) = call(
            &emu,
            "POST",
            STRUCTURES_PATH,
            &[
                ("Authorization", &bearer),
                ("cpro-account", &acct),
                ("Content-Type", "text/plain"),
            ],
            b"{}",
        );
        assert_eq!(status, 415);
        let wrong = b64(b"TECH:wrong");
        let (status, _, body) = call(
            &emu,
            "GET",
            HEALTH_CHECK_PATH,
            &[("Authorization", &bearer), ("cpro-account", &wrong)],
            b"",
        );
        assert_eq!(status, 401);
        assert!(body.contains("codeRetour"), "{body}");
        emu.expire_tokens();
        let (status, head, _) = call(
            &emu,
            "GET",
            HEALTH_CHECK_PATH,
            &[("Authorization", &bearer), ("cpro-account", &acct)],
            b"",
        );
        assert_eq!(status, 401);
        assert!(
            head.to_lowercase().contains("error=\"invalid_token\""),
            "{head}"
        );
    }

    #[test]
    fn structures_are_found_or_refused_in_chorus_shape() {
        let emu = ChorusProEmulator::start(options()).unwrap();
        let t = token(&emu);
        let (status, body) = api(
            &emu,
            &t,
            STRUCTURES_PATH,
            &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
        );
        assert_eq!(status, 200);
        assert_eq!(body["codeRetour"], 0);
        assert_eq!(body["listeStructures"][0]["idStructureCPP"], 25_000_101);
        assert_eq!(body["parametresRetour"]["total"], 1);
        let (status, body) = api(
            &emu,
            &t,
            STRUCTURES_PATH,
            &json!({"structure": {"identifiantStructure": "99999999999999", "typeIdentifiantStructure": "SIRET"}}),
        );
        assert_eq!(status, 400);
        assert_eq!(body["codeRetour"], CODE_UNKNOWN_STRUCTURE);
        assert!(body["libelle"]
            .as_str()
            .unwrap()
            .contains("Aucune structure"));
    }

    #[test]
    fn deposits_are_checked_against_their_syntax_and_progress() {
        let emu = ChorusProEmulator::start(options()).unwrap();
        let t = token(&emu);
        let deposit = |name: &str, content: &str, syntax: &str| {
            api(
                &emu,
                &t,
                DEPOSIT_PATH,
                &json!({"fichierFlux": content, "nomFichier": name, "syntaxeFlux": syntax, "avecSignature": false}),
            )
        };
        let (status, body) = deposit("a.xml", "%%%", SYNTAX_UBL);
        assert_eq!(
            (status, body["codeRetour"].clone()),
            (400, json!(CODE_BAD_BASE64))
        );
        let ubl = b64(&samples::ubl_invoice("FA-1"));
        let (status, body) = deposit("a.xml", &ubl, SYNTAX_CII);
        assert_eq!(status, 400);
        assert_eq!(body["codeRetour"], CODE_SYNTAX_MISMATCH);
        assert!(
            body["libelle"].as_str().unwrap().contains("racine"),
            "{body}"
        );
        let (status, body) = deposit("a.xml", &ubl, "IN_DP_E9_NOPE");
        assert_eq!(
            (status, body["codeRetour"].clone()),
            (400, json!(CODE_UNKNOWN_SYNTAX))
        );
        let plain = b64(&samples::plain_pdf("FA-2"));
        let (status, body) = deposit("a.pdf", &plain, SYNTAX_FACTURX);
        assert_eq!(status, 400);
        assert!(
            body["libelle"].as_str().unwrap().contains("factur-x.xml"),
            "{body}"
        );
        let big = b64(&vec![b' '; MAX_FILE_BYTES + 1]);
        let (status, body) = deposit("big.xml", &big, SYNTAX_UBL);
        assert_eq!(
            (status, body["codeRetour"].clone()),
            (400, json!(CODE_TOO_LARGE))
        );

        let (status, body) = deposit("FA-1.xml", &ubl, SYNTAX_UBL);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["codeRetour"], 0);
        assert_eq!(body["syntaxeFlux"], SYNTAX_UBL);
        let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
        assert!(number.starts_with("CPP"), "{number}");
        let states: Vec<Value> = (0..4)
            .map(|_| {
                let (status, body) =
                    api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number}));
                assert_eq!(status, 200);
                body["etatCourantDepotFlux"].clone()
            })
            .collect();
        assert_eq!(
            states,
            [
                json!("IN_RECU"),
                json!("IN_TRAITE_SE_CPP"),
                json!("IN_INTEGRE"),
                json!("IN_INTEGRE")
            ]
        );
        let (status, body) = api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": "CPP0"}));
        assert_eq!(
            (status, body["codeRetour"].clone()),
            (400, json!(CODE_UNKNOWN_DEPOSIT))
        );

        let fx = b64(&samples::factur_x_pdf("FA-3"));
        let (status, body) = deposit("FA-3.pdf", &fx, SYNTAX_FACTURX);
        assert_eq!(status, 200, "{body}");
        let cii = b64(&samples::cii_invoice("FA-4"));
        let (status, _) = deposit("FA-4.xml", &cii, SYNTAX_CII);
        assert_eq!(status, 200);
        let deposits = emu.deposits();
        assert_eq!(deposits.len(), 3);
        assert_eq!(deposits[1].invoice_number.as_deref(), Some("FA-3"));
        assert_eq!(deposits[2].invoice_number.as_deref(), Some("FA-4"));
        assert_eq!(deposits[0].consultations, 4);
    }

    #[test]
    fn incomplete_and_forced_invoices_end_with_their_errors() {
        let emu = ChorusProEmulator::start(ChorusProOptions {
            consultations_before_final: 0,
            ..options()
        })
        .unwrap();
        let t = token(&emu);
        let mut numbers = Vec::new();
        emu.force_outcome("partial.xml", DepositOutcome::PartiallyIntegrated);
        for (name, content) in [
            ("bad.xml", samples::incomplete_ubl_invoice("FA-9")),
            ("partial.xml", samples::ubl_invoice("FA-10")),
        ] {
            let (status, body) = api(
                &emu,
                &t,
                DEPOSIT_PATH,
                &json!({"fichierFlux": b64(&content), "nomFichier": name, "syntaxeFlux": SYNTAX_UBL}),
            );
            assert_eq!(status, 200, "{body}");
            numbers.push(body["numeroFluxDepot"].as_str().unwrap().to_owned());
        }
        let (_, rejected) = api(
            &emu,
            &t,
            REPORT_PATH,
            &json!({"numeroFluxDepot": numbers[0]}),
        );
        assert_eq!(rejected["etatCourantDepotFlux"], "IN_REJETE");
        let errors = rejected["listeErreurTechnique"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{rejected}");
        assert!(errors[0]["libelleErreur"]
            .as_str()
            .unwrap()
            .contains("cbc:IssueDate"));
        let (_, partial) = api(
            &emu,
            &t,
            REPORT_PATH,
            &json!({"numeroFluxDepot": numbers[1]}),
        );
        assert_eq!(partial["etatCourantDepotFlux"], "IN_INTEGRE_PARTIEL");
        assert_eq!(partial["listeErreurDP"][0]["numeroDP"], "FA-10");
        assert_eq!(
            partial["listeErreurDP"][0]["identifiantDestinataire"],
            BUYER_SIRET
        );
    }

    /// Deposits `bytes` (UBL) as `file` and consults its report until the final state shows.
    fn deposit_to_the_end(
        emu: &ChorusProEmulator,
        t: &str,
        file: &str,
        bytes: &[u8],
    ) -> (String, Value) {
        let (status, body) = api(
            emu,
            t,
            DEPOSIT_PATH,
            &json!({"fichierFlux": b64(bytes), "nomFichier": file, "syntaxeFlux": SYNTAX_UBL}),
        );
        assert_eq!(status, 200, "{body}");
        let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
        let mut last = Value::Null;
        for _ in 0..=emu.options().consultations_before_final {
            last = api(emu, t, REPORT_PATH, &json!({"numeroFluxDepot": number})).1;
        }
        (number, last)
    }

    #[test]
    fn every_published_flow_state_and_only_those() {
        let emu = ChorusProEmulator::start(ChorusProOptions {
            consultations_before_final: 3,
            ..options()
        })
        .unwrap();
        let t = token(&emu);
        let (status, body) = api(
            &emu,
            &t,
            DEPOSIT_PATH,
            &json!({"fichierFlux": b64(&samples::ubl_invoice("FS-0")), "nomFichier": "FS-0.xml", "syntaxeFlux": SYNTAX_UBL}),
        );
        assert_eq!(status, 200);
        let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
        let states: Vec<Value> = (0..4)
            .map(|_| {
                api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number})).1
                    ["etatCourantDepotFlux"]
                    .clone()
            })
            .collect();
        assert_eq!(
            states,
            [
                json!("IN_RECU"),
                json!("IN_EN_COURS_TRAITEMENT_CPP"),
                json!("IN_TRAITE_SE_CPP"),
                json!("IN_INTEGRE")
            ]
        );
        for (i, outcome) in [
            DepositOutcome::Incident,
            DepositOutcome::Irreceivable,
            DepositOutcome::ReceivableWithError,
        ]
        .into_iter()
        .enumerate()
        {
            let file = format!("FS-{}.xml", i + 1);
            emu.force_outcome(&file, outcome);
            let (_, report) = deposit_to_the_end(
                &emu,
                &t,
                &file,
                &samples::ubl_invoice(&format!("FS-{}", i + 1)),
            );
            assert_eq!(report["etatCourantDepotFlux"], outcome.code());
            let errors = report["listeErreurTechnique"].as_array().unwrap().len()
                + report["listeErreurDP"].as_array().unwrap().len();
            assert!(errors > 0, "{report}");
        }
    }

    #[test]
    fn attachments_recipients_and_invoices() {
        let emu = ChorusProEmulator::start(options()).unwrap();
        let t = token(&emu);
        let paging =
            json!({"parametresRecherche": {"nbResultatsParPage": 10, "pageResultatDemandee": 1}});
        let (status, body) = api(&emu, &t, ATTACHMENTS_PATH, &paging);
        assert_eq!(status, 200);
        assert_eq!(
            body["listeStructureRattachement"][0]["identifiantStructure"],
            SUPPLIER_SIRET
        );
        emu.detach(SUPPLIER_SIRET);
        let (_, body) = api(&emu, &t, ATTACHMENTS_PATH, &paging);
        assert_eq!(body["listeStructureRattachement"], json!([]));
        // Detached, the structure is still in the directory.
        let (status, _) = api(
            &emu,
            &t,
            STRUCTURES_PATH,
            &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
        );
        assert_eq!(status, 200);

        let (status, found) = api(
            &emu,
            &t,
            STRUCTURES_PATH,
            &json!({"structure": {"identifiantStructure": STRICT_BUYER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
        );
        assert_eq!(status, 200);
        let id = found["listeStructures"][0]["idStructureCPP"].clone();
        let (_, details) = api(
            &emu,
            &t,
            STRUCTURE_CONSULT_PATH,
            &json!({"idStructureCPP": id, "codeLangue": "fr"}),
        );
        assert_eq!(details["parametres"]["codeServiceDoitEtreRenseigne"], true);
        assert_eq!(details["parametres"]["numeroEJDoitEtreRenseigne"], true);

        // Without the service code and engagement its recipient requires: rejected.
        let (_, report) = deposit_to_the_end(
            &emu,
            &t,
            "S-1.xml",
            &samples::ubl_invoice_to("S-1", STRICT_BUYER_SIRET, None, None),
        );
        assert_eq!(report["etatCourantDepotFlux"], "IN_REJETE");
        assert_eq!(report["listeErreurDP"].as_array().unwrap().len(), 2);
        let (number, report) = deposit_to_the_end(
            &emu,
            &t,
            "S-2.xml",
            &samples::ubl_invoice_to(
                "S-2",
                STRICT_BUYER_SIRET,
                Some("SERV-01"),
                Some("EJ-2025-7"),
            ),
        );
        assert_eq!(report["etatCourantDepotFlux"], "IN_INTEGRE", "{report}");

        let search = json!({"numeroFluxDepot": number});
        let statuses: Vec<Value> = (0..5)
            .map(|_| {
                let (status, body) = api(&emu, &t, SUPPLIER_INVOICES_PATH, &search);
                assert_eq!(status, 200, "{body}");
                assert!(body["listeFactures"][0]["identifiantFactureCPP"].is_u64());
                body["listeFactures"][0]["statut"].clone()
            })
            .collect();
        assert_eq!(
            statuses,
            [
                json!("DEPOSEE"),
                json!("MISE_A_DISPOSITION"),
                json!("MANDATEE"),
                json!("MISE_EN_PAIEMENT"),
                json!("MISE_EN_PAIEMENT")
            ]
        );
        emu.set_invoice_status("S-2", "SUSPENDUE");
        let (_, body) = api(&emu, &t, SUPPLIER_INVOICES_PATH, &search);
        assert_eq!(body["listeFactures"][0]["statut"], "SUSPENDUE");
        let (status, body) = api(
            &emu,
            &t,
            SUPPLIER_INVOICES_PATH,
            &json!({"numeroFluxDepot": "CPP0"}),
        );
        assert_eq!(
            (status, body["codeRetour"].clone()),
            (400, json!(CODE_UNKNOWN_DEPOSIT))
        );

        let bearer = format!("Bearer {t}");
        let account = account(&emu);
        let headers = [
            ("Authorization", bearer.as_str()),
            ("cpro-account", account.as_str()),
        ];
        for (shape, field, value) in [
            (HealthShape::NumberCode, "statusCode", json!(200)),
            (HealthShape::Spring, "statusCodeValue", json!(200)),
            (HealthShape::Failing, "statusCode", json!("503")),
        ] {
            emu.set_health_shape(shape);
            let (status, _, body) = call(&emu, "GET", HEALTH_CHECK_PATH, &headers, b"");
            assert_eq!(status, 200);
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body[field], value, "{body}");
        }
    }

    #[test]
    fn the_quota_is_strict_and_failures_can_be_injected() {
        let emu = ChorusProEmulator::start(ChorusProOptions {
            per_second: 3,
            ..ChorusProOptions::default()
        })
        .unwrap();
        let t = token(&emu);
        let statuses: Vec<u16> = (0..5)
            .map(|_| api(&emu, &t, STRUCTURES_PATH, &json!({})).0)
            .collect();
        assert_eq!(statuses, [200, 200, 200, 429, 429]);
        assert_eq!(emu.quota_refusals(), 2);
        assert_eq!(emu.max_in_any_second(), 3);
        std::thread::sleep(Duration::from_millis(1050));
        emu.fail_next(2);
        let statuses: Vec<u16> = (0..3)
            .map(|_| api(&emu, &t, STRUCTURES_PATH, &json!({})).0)
            .collect();
        assert_eq!(statuses, [503, 503, 200]);
    }

    #[test]
    fn sample_pdfs_are_well_formed() {
        let pdf = samples::factur_x_pdf("FA-1");
        assert!(pdf.starts_with(b"%PDF-1.7"));
        assert!(names_facturx(&pdf));
        let xml = embedded_file(&pdf).unwrap();
        assert_eq!(xml, samples::cii_invoice("FA-1"));
        // Every cross-reference entry points at its object.
        let tail_at = rfind(&pdf, b"startxref\n").unwrap() + 10;
        let tail = std::str::from_utf8(&pdf[tail_at..]).unwrap();
        let xref_at: usize = tail.lines().next().unwrap().parse().unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref\n0 8\n"));
        let table = std::str::from_utf8(&pdf[xref_at..tail_at]).unwrap();
        let entries: Vec<&str> = table.lines().skip(3).take(7).collect();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry.len(), 19, "{entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()));
        }
        assert!(!names_facturx(&samples::plain_pdf("x")));
        assert!(!names_facturx(&samples::pdf_with_attachment(
            "x",
            "invoice.xml"
        )));
    }

    /// Every field of `reference` is in `actual`, nested the same way, with the same type.
    fn same_shape(reference: &Value, actual: &Value, path: &str) {
        match (reference, actual) {
            (Value::Object(r), Value::Object(a)) => {
                for (k, v) in r {
                    let inner = format!("{path}.{k}");
                    let got = a
                        .get(k)
                        .unwrap_or_else(|| panic!("{inner} is missing in {actual}"));
                    same_shape(v, got, &inner);
                }
            }
            (Value::Array(r), Value::Array(a)) => {
                if let (Some(r), Some(a)) = (r.first(), a.first()) {
                    same_shape(r, a, &format!("{path}[0]"));
                }
            }
            (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Null, Value::Null) => {}
            _ => panic!("{path}: the reference has {reference}, the emulator {actual}"),
        }
    }

    fn fixture(name: &str) -> Value {
        let text = match name {
            "token" => include_str!("../../fixtures/chorus-pro/oauth_token.response.json"),
            "health" => {
                include_str!("../../fixtures/chorus-pro/transverses_health-check.response.json")
            }
            "structures" => {
                include_str!("../../fixtures/chorus-pro/structures_rechercher.response.json")
            }
            "deposit" => {
                include_str!("../../fixtures/chorus-pro/factures_deposer_flux.response.json")
            }
            "attachments" => {
                include_str!("../../fixtures/chorus-pro/utilisateurs_rattachements.response.json")
            }
            _ => {
                include_str!(
                    "../../fixtures/chorus-pro/transverses_consulterCRDetaille.response.json"
                )
            }
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn answers_have_the_reference_shapes() {
        let emu = ChorusProEmulator::start(ChorusProOptions {
            consultations_before_final: 0,
            ..options()
        })
        .unwrap();
        let o = emu.options().clone();
        let (_, _, body) = call(
            &emu,
            "POST",
            TOKEN_PATH,
            &[],
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
                o.client_id, o.client_secret
            )
            .as_bytes(),
        );
        same_shape(
            &fixture("token"),
            &serde_json::from_str(&body).unwrap(),
            "token",
        );
        let t = token(&emu);
        let bearer = format!("Bearer {t}");
        let acct = account(&emu);
        let (_, _, body) = call(
            &emu,
            "GET",
            HEALTH_CHECK_PATH,
            &[("Authorization", &bearer), ("cpro-account", &acct)],
            b"",
        );
        same_shape(
            &fixture("health"),
            &serde_json::from_str(&body).unwrap(),
            "health",
        );
        let (_, body) = api(
            &emu,
            &t,
            STRUCTURES_PATH,
            &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET}}),
        );
        same_shape(&fixture("structures"), &body, "structures");
        let (_, body) = api(
            &emu,
            &t,
            ATTACHMENTS_PATH,
            &json!({"parametresRecherche": {"nbResultatsParPage": 10, "pageResultatDemandee": 1}}),
        );
        same_shape(&fixture("attachments"), &body, "attachments");
        let mut reports = Vec::new();
        for (name, content, outcome) in [
            (
                "p.xml",
                samples::ubl_invoice("FA-1"),
                Some(DepositOutcome::PartiallyIntegrated),
            ),
            ("r.xml", samples::incomplete_ubl_invoice("FA-2"), None),
        ] {
            if let Some(outcome) = outcome {
                emu.force_outcome(name, outcome);
            }
            let (_, body) = api(
                &emu,
                &t,
                DEPOSIT_PATH,
                &json!({"fichierFlux": b64(&content), "nomFichier": name, "syntaxeFlux": SYNTAX_UBL}),
            );
            same_shape(&fixture("deposit"), &body, "deposit");
            let number = body["numeroFluxDepot"].clone();
            let (_, report) = api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number}));
            reports.push(report);
        }
        // One report lists invoice errors, the other technical ones: between them, every list
        // has an element to compare.
        let mut merged = reports[0].clone();
        merged["listeErreurTechnique"] = reports[1]["listeErreurTechnique"].clone();
        same_shape(&fixture("report"), &merged, "report");
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%26c%3D"), "a b&c=");
        assert_eq!(form_decode("100%"), "100%");
    }
}
