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

/// A JSON answer with INSEE's content type.
fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    respond::json_text(status, JSON_UTF8, body)
}

/// Sirene's error shape: `{"header":{"statut":N,"message":"…"}}`.
fn sirene_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({"header": {"statut": status.as_u16(), "message": message}}).to_string(),
    )
}

/// Outermost layer: counts every request and plays the outage.
async fn gateway(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
             <body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n\
             <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response();
    }
    next.run(request).await
}

async fn api_key_auth(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        None => sirene_error(
            StatusCode::UNAUTHORIZED,
            "Missing API key: send it in the X-INSEE-Api-Key-Integration header",
        ),
        Some(key) if key != state.opts.api_key => {
            sirene_error(StatusCode::UNAUTHORIZED, "Invalid API key")
        }
        Some(_) => next.run(request).await,
    }
}

/// The per-minute quota over a rolling window; refused requests do not count.
async fn quota(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let limit = state.opts.per_minute as usize;
    if limit > 0 {
        if let Err(wait) = state.window.admit(&[Limit::per_minute(limit)]) {
            return with_retry_after(
                sirene_error(StatusCode::TOO_MANY_REQUESTS, "Trop de requêtes"),
                retry_after_secs(wait),
            );
        }
    }
    next.run(request).await
}

async fn informations(State(state): State<Arc<Shared>>) -> Response {
    let now = dates::unix_secs();
    let published =
        now.saturating_sub(u64::from(state.data_age_days.load(Ordering::SeqCst)) * 86_400);
    // Nightly publication: processed a few hours before being made available.
    let available = format_datetime(published.saturating_sub(3600));
    let processed = format_datetime(published.saturating_sub(5 * 3600));
    let bulk = format_datetime(published.saturating_sub(30 * 86_400));
    let collections = lock(&state.collections).clone();
    json_response(
        StatusCode::OK,
        json!({
            "header": {"statut": 200, "message": "OK"},
            "etatService": "UP",
            "etatsDesServices": collections
                .iter()
                .map(|(c, s)| json!({"Collection": c, "etatCollection": s}))
                .collect::<Vec<_>>(),
            "versionService": "3.11.4",
            "journalDesModifications": "https://www.sirene.fr/static-resources/documentation/v_sommaire_311.htm",
            "datesDernieresMisesAJourDesDonnees": collections
                .iter()
                .map(|(c, _)| json!({
                    "collection": c,
                    "dateDerniereMiseADisposition": available,
                    "dateDernierTraitementMaximum": processed,
                    "dateDernierTraitementDeMasse": bulk
                }))
                .collect::<Vec<_>>()
        })
        .to_string(),
    )
}

async fn siret(Path(siret): Path<String>) -> Response {
    if !is_digits(&siret, 14) {
        return sirene_error(
            StatusCode::BAD_REQUEST,
            "Le paramètre siret n'est pas valide",
        );
    }
    if siret == NON_DIFFUSIBLE_SIRET || siret.starts_with(NON_DIFFUSIBLE_SIREN) {
        return sirene_error(StatusCode::FORBIDDEN, "Unité légale non diffusable");
    }
    match FIXTURES.iter().find(|(id, _)| *id == siret) {
        Some((_, body)) => json_response(StatusCode::OK, *body),
        None => sirene_error(
            StatusCode::NOT_FOUND,
            &format!("Aucun élément trouvé pour le siret {siret}"),
        ),
    }
}

/// Every establishment the emulator knows, as `/siret?q=` lists them: the `etablissement`
/// of each sample, in SIRET order.
fn establishments() -> Vec<Value> {
    let mut all: Vec<Value> = FIXTURES
        .iter()
        .filter_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .filter_map(|body| body.get("etablissement").cloned())
        .collect();
    all.sort_by(|a, b| a["siret"].as_str().cmp(&b["siret"].as_str()));
    all
}

/// A paging parameter: absent is the default, anything but a number in range is refused
/// with the message of the 400 to answer.
fn paging(
    params: &HashMap<String, String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, String> {
    match params.get(name).map(|v| v.trim()) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!(
                "Le paramètre {name} doit être un entier compris entre 0 et {max}"
            )),
        },
    }
}

/// `GET /siret?q=…&nombre=…&debut=…`: the multi-criteria search.
async fn search(Query(params): Query<HashMap<String, String>>) -> Response {
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return sirene_error(
            StatusCode::BAD_REQUEST,
            "Le paramètre q est obligatoire pour une recherche multicritères",
        );
    };
    let parsed = match query::parse(q) {
        Ok(parsed) => parsed,
        Err(message) => return sirene_error(StatusCode::BAD_REQUEST, &message),
    };
    let nombre = match paging(&params, "nombre", DEFAULT_PAGE, MAX_PAGE) {
        Ok(n) if n > 0 => n,
        Ok(_) => DEFAULT_PAGE,
        Err(message) => return sirene_error(StatusCode::BAD_REQUEST, &message),
    };
    let debut = match paging(&params, "debut", 0, u64::MAX) {
        Ok(n) => n,
        Err(message) => return sirene_error(StatusCode::BAD_REQUEST, &message),
    };
    let found: Vec<Value> = establishments()
        .into_iter()
        .filter(|e| query::matches(&parsed, e))
        .collect();
    let total = found.len() as u64;
    let page: Vec<Value> = found
        .into_iter()
        .skip(usize::try_from(debut).unwrap_or(usize::MAX))
        .take(usize::try_from(nombre).unwrap_or(usize::MAX))
        .collect();
    if page.is_empty() {
        return sirene_error(
            StatusCode::NOT_FOUND,
            &format!("Aucun élément trouvé pour q={q}"),
        );
    }
    json_response(
        StatusCode::OK,
        json!({
            "header": {
                "statut": 200,
                "message": "OK",
                "total": total,
                "debut": debut,
                "nombre": page.len()
            },
            "etablissements": page
        })
        .to_string(),
    )
}

async fn siren(Path(siren): Path<String>) -> Response {
    if !is_digits(&siren, 9) {
        return sirene_error(
            StatusCode::BAD_REQUEST,
            "Le paramètre siren n'est pas valide",
        );
    }
    if siren == NON_DIFFUSIBLE_SIREN {
        return sirene_error(StatusCode::FORBIDDEN, "Unité légale non diffusable");
    }
    let unit = FIXTURES
        .iter()
        .filter(|(id, _)| id.starts_with(&siren))
        .find_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .and_then(|body| siren_answer(&body));
    match unit {
        Some(answer) => json_response(StatusCode::OK, answer.to_string()),
        None => sirene_error(
            StatusCode::NOT_FOUND,
            &format!("Aucun élément trouvé pour le siren {siren}"),
        ),
    }
}

async fn unknown_route() -> Response {
    sirene_error(StatusCode::NOT_FOUND, "Ressource non trouvée")
}

/// A `/siren` answer in the 3.11 shape, built from the `uniteLegale` embedded in a `/siret`
/// answer: period fields move into `periodesUniteLegale`, current period first. Units
/// created before 2008 also get an older period (NAF 1993, no activity code) so that
/// readers must pick the current one rather than the first that has a value.
fn siren_answer(siret_body: &Value) -> Option<Value> {
    let establishment = siret_body.get("etablissement")?;
    let embedded = establishment.get("uniteLegale")?.as_object()?;
    let mut unit = Map::new();
    unit.insert("siren".into(), establishment.get("siren")?.clone());
    let mut current = Map::new();
    current.insert("dateFin".into(), Value::Null);
    for (key, value) in embedded {
        if UNIT_PERIOD_FIELDS.contains(&key.as_str()) {
            current.insert(key.clone(), value.clone());
        } else {
            unit.insert(key.clone(), value.clone());
        }
    }
    for flag in UNIT_CHANGE_FLAGS {
        current.insert((*flag).to_owned(), Value::Bool(false));
    }
    let created = embedded
        .get("dateCreationUniteLegale")
        .or_else(|| establishment.get("dateCreationEtablissement"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut periods = Vec::new();
    match created.as_deref() {
        Some(date) if date < "2008-01-01" => {
            current.insert("dateDebut".into(), json!("2008-01-01"));
            current.insert(
                "changementActivitePrincipaleUniteLegale".into(),
                json!(true),
            );
            let mut older = current.clone();
            older.insert("dateFin".into(), json!("2007-12-31"));
            older.insert("dateDebut".into(), json!(date));
            older.insert("activitePrincipaleUniteLegale".into(), Value::Null);
            older.insert(
                "nomenclatureActivitePrincipaleUniteLegale".into(),
                json!("NAF1993"),
            );
            older.insert(
                "changementActivitePrincipaleUniteLegale".into(),
                json!(false),
            );
            periods.push(Value::Object(current));
            periods.push(Value::Object(older));
        }
        other => {
            current.insert("dateDebut".into(), json!(other));
            periods.push(Value::Object(current));
        }
    }
    unit.insert("nombrePeriodesUniteLegale".into(), json!(periods.len()));
    unit.insert("periodesUniteLegale".into(), Value::Array(periods));
    Some(json!({
        "header": {"statut": 200, "message": "ok"},
        "uniteLegale": unit
    }))
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SS.000` (UTC) of a Unix time, as INSEE writes its dates.
pub fn format_datetime(unix_secs: u64) -> String {
    let t = dates::from_unix(i64::try_from(unix_secs).unwrap_or(i64::MAX));
    dates::format(
        t,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_like_insee() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00.000");
        assert_eq!(format_datetime(1_795_822_984), "2026-11-27T23:43:04.000");
        assert_eq!(format_datetime(1_709_208_000), "2024-02-29T12:00:00.000");
    }

    #[test]
    fn fixtures_are_json_with_their_own_siret() {
        for (siret, body) in FIXTURES {
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["etablissement"]["siret"], *siret);
            assert_eq!(v["header"]["statut"], 200);
        }
    }

    #[test]
    fn siren_answers_move_period_fields_into_periods() {
        let body: Value = serde_json::from_str(FIXTURES[0].1).unwrap();
        let answer = siren_answer(&body).unwrap();
        let unit = &answer["uniteLegale"];
        assert_eq!(unit["siren"], "219200235");
        assert_eq!(unit["statutDiffusionUniteLegale"], "O");
        assert!(unit.get("denominationUniteLegale").is_none());
        let periods = unit["periodesUniteLegale"].as_array().unwrap();
        assert_eq!(periods.len(), 2);
        assert_eq!(periods[0]["dateFin"], Value::Null);
        assert_eq!(periods[0]["denominationUniteLegale"], "COMMUNE DE CLAMART");
        assert_eq!(periods[0]["nicSiegeUniteLegale"], "00014");
        assert_eq!(periods[0]["changementNicSiegeUniteLegale"], false);
        assert_eq!(periods[1]["dateFin"], "2007-12-31");
        assert_eq!(periods[1]["activitePrincipaleUniteLegale"], Value::Null);

        // Created in 2018: one period only.
        let body: Value = serde_json::from_str(FIXTURES[1].1).unwrap();
        let answer = siren_answer(&body).unwrap();
        let periods = answer["uniteLegale"]["periodesUniteLegale"]
            .as_array()
            .unwrap();
        assert_eq!(periods.len(), 1);
        assert_eq!(periods[0]["dateDebut"], "2018-10-17");
        assert_eq!(periods[0]["etatAdministratifUniteLegale"], "C");
    }
}
