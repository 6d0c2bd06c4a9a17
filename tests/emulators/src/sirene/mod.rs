//! An emulator of INSEE's API Sirene 3.11, for end-to-end tests of the `sirene` plugin.
//!
//! It serves the portal's API (`/api-sirene/3.11`, API key in `X-INSEE-Api-Key-Integration`);
//! the OAuth2 gateway INSEE closed on 10 September 2025 (`/token`,
//! `/entreprises/sirene/V3.11`) is gone, as on the real host, and an old access token sent as
//! the key is refused with 401 like any wrong key. It reproduces what the plugin must cope
//! with rather than the whole API: the answer shapes (real `/siret` samples, served byte for
//! byte), the multi-criteria search (`GET /siret?q=…` with Sirene's query syntax, 400 on a
//! malformed query, paging by `debut`/`nombre` with the `total` in the header, 404 when
//! nothing matches), refused credentials, unknown and malformed identifiers, a
//! non-diffusible unit, a partially diffusible one (`[ND]` values), the per-minute quota
//! (429 with `Retry-After`, searches included) and a gateway outage (503 with an HTML body).
//!
//! Known identifiers: SIRETs 21920023500014, 13002437500011, 32816124500027,
//! 55204944700006 (samples), 81234567600009 (partially diffusible individual), their SIRENs,
//! and 73282932000074 / 732829320 (non-diffusible). Any other well-formed id is a 404.

mod query;

mod gateway;
mod routes;
use gateway::*;
pub use routes::*;

use crate::kit::quota::{retry_after_secs, Limit, RollingWindow};
use crate::kit::respond::{self, with_retry_after, JSON_UTF8};
use crate::kit::serve::{self as server, RunningServer};
use crate::kit::{dates, lock};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Path of the current portal's API under the emulator's root.
pub const CURRENT_PATH: &str = "/api-sirene/3.11";
/// Header carrying the API key on the current portal.
pub const API_KEY_HEADER: &str = "X-INSEE-Api-Key-Integration";
/// Most results a search page may ask for (`nombre`), as documented by INSEE.
pub const MAX_PAGE: u64 = 1000;
/// Results of a search page when `nombre` is not given.
pub const DEFAULT_PAGE: u64 = 20;

/// SIRET of the synthetic non-diffusible unit (403 on every lookup).
pub const NON_DIFFUSIBLE_SIRET: &str = "73282932000074";
/// SIREN of the synthetic non-diffusible unit.
pub const NON_DIFFUSIBLE_SIREN: &str = "732829320";
/// SIRET of the synthetic partially diffusible individual entrepreneur (`[ND]` values).
pub const PARTIALLY_DIFFUSIBLE_SIRET: &str = "81234567600009";

/// `/siret` answers, served as stored. See `fixtures/sirene/README.md`.
const FIXTURES: &[(&str, &str)] = &[
    (
        "21920023500014",
        include_str!("../../fixtures/sirene/siret_21920023500014.json"),
    ),
    (
        "13002437500011",
        include_str!("../../fixtures/sirene/siret_13002437500011.json"),
    ),
    (
        "32816124500027",
        include_str!("../../fixtures/sirene/siret_32816124500027.json"),
    ),
    (
        "55204944700006",
        include_str!("../../fixtures/sirene/siret_55204944700006.json"),
    ),
    (
        "81234567600009",
        include_str!("../../fixtures/sirene/siret_81234567600009.json"),
    ),
];

/// Fields of `uniteLegale` that API Sirene 3.11 puts in `periodesUniteLegale` rather than at
/// the top level of a `/siren` answer.
const UNIT_PERIOD_FIELDS: &[&str] = &[
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
];

/// The `changement…` flags of a 3.11 unit period.
const UNIT_CHANGE_FLAGS: &[&str] = &[
    "changementEtatAdministratifUniteLegale",
    "changementNomUniteLegale",
    "changementNomUsageUniteLegale",
    "changementDenominationUniteLegale",
    "changementDenominationUsuelleUniteLegale",
    "changementCategorieJuridiqueUniteLegale",
    "changementActivitePrincipaleUniteLegale",
    "changementNicSiegeUniteLegale",
    "changementEconomieSocialeSolidaireUniteLegale",
    "changementSocieteMissionUniteLegale",
    "changementCaractereEmployeurUniteLegale",
];

/// Credentials and quota of an emulated INSEE account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SireneOptions {
    /// Expected in `X-INSEE-Api-Key-Integration` on the current portal.
    pub api_key: String,
    /// API requests allowed in any rolling 60 s; 0 disables the quota.
    pub per_minute: u32,
}

impl Default for SireneOptions {
    fn default() -> Self {
        SireneOptions {
            api_key: "test-key".to_owned(),
            per_minute: 30,
        }
    }
}

/// A running Sirene emulator; stops when dropped.
#[derive(Debug)]
pub struct SireneEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl SireneEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: SireneOptions) -> std::io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: SireneOptions, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        Ok(SireneEmulator { server, state })
    }

    /// Starts over TLS with the given certificate chain and key (DER), for trust tests.
    pub fn start_tls(
        opts: SireneOptions,
        cert_chain: Vec<Vec<u8>>,
        key: Vec<u8>,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_tls(app(state.clone()), cert_chain, key)?;
        Ok(SireneEmulator { server, state })
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Base of the current portal's API, the plugin's `base_url` in API key mode.
    pub fn base_url(&self) -> String {
        format!("{}{CURRENT_PATH}", self.url())
    }

    /// The options it was started with.
    pub fn options(&self) -> &SireneOptions {
        &self.state.opts
    }

    /// Every request received so far, whatever its answer.
    pub fn request_count(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// While true, every request gets a gateway's 503 with an HTML body.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Makes `/informations` report data last published `days` days ago (default 0).
    pub fn set_data_age_days(&self, days: u32) {
        self.state.data_age_days.store(days, Ordering::SeqCst);
    }

    /// Sets the `etatCollection` that `/informations` reports for one collection, e.g.
    /// `("Établissements", "DOWN")`; unknown collections are added.
    pub fn set_collection_state(&self, collection: &str, state: &str) {
        let mut collections = lock(&self.state.collections);
        match collections.iter_mut().find(|(name, _)| name == collection) {
            Some(entry) => entry.1 = state.to_owned(),
            None => collections.push((collection.to_owned(), state.to_owned())),
        }
    }
}

/// State shared by the handlers.
#[derive(Debug)]
struct Shared {
    opts: SireneOptions,
    requests: AtomicUsize,
    unavailable: AtomicBool,
    data_age_days: AtomicU32,
    collections: Mutex<Vec<(String, String)>>,
    /// Times of the API requests admitted in the last 60 s.
    window: RollingWindow,
}

impl Shared {
    fn new(opts: SireneOptions) -> Self {
        Shared {
            opts,
            requests: AtomicUsize::new(0),
            unavailable: AtomicBool::new(false),
            data_age_days: AtomicU32::new(0),
            collections: Mutex::new(
                ["Unités Légales", "Établissements", "Liens de succession"]
                    .iter()
                    .map(|c| ((*c).to_owned(), "UP".to_owned()))
                    .collect(),
            ),
            window: RollingWindow::new(),
        }
    }
}

fn app(state: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/informations", get(informations))
        .route("/siret", get(search))
        .route("/siret/{siret}", get(siret))
        .route("/siren/{siren}", get(siren))
        .route_layer(middleware::from_fn_with_state(state.clone(), quota))
        .route_layer(middleware::from_fn_with_state(state.clone(), api_key_auth));
    Router::new()
        .nest(CURRENT_PATH, api)
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), gateway))
        .with_state(state)
}

#[cfg(test)]
mod tests;
