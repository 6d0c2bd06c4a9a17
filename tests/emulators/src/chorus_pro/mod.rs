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

mod deposit;
mod gateway;
mod invoice;
pub mod samples;
mod services;
mod state;
mod token;
use state::*;

use deposit::*;
use gateway::*;
use invoice::*;
use services::*;
use token::*;

use crate::kit::quota::{DailyCount, Limit, RollingWindow};
use crate::kit::respond::{self, with_retry_after, JSON_UTF8};
use crate::kit::serve::{self as server, RunningServer};
use crate::kit::{credentials, dates, form, lock};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests;
