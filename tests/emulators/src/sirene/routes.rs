//! The API's resources: `/informations`, `/siret/{siret}`, the `/siret?q=` search,
//! `/siren/{siren}` in the 3.11 shape, and the 404 of unknown routes.

use super::*;

pub(super) async fn informations(State(state): State<Arc<Shared>>) -> Response {
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

pub(super) async fn siret(Path(siret): Path<String>) -> Response {
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
pub(super) fn establishments() -> Vec<Value> {
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
pub(super) fn paging(
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
pub(super) async fn search(Query(params): Query<HashMap<String, String>>) -> Response {
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

pub(super) async fn siren(Path(siren): Path<String>) -> Response {
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

pub(super) async fn unknown_route() -> Response {
    sirene_error(StatusCode::NOT_FOUND, "Ressource non trouvée")
}

/// A `/siren` answer in the 3.11 shape, built from the `uniteLegale` embedded in a `/siret`
/// answer: period fields move into `periodesUniteLegale`, current period first. Units
/// created before 2008 also get an older period (NAF 1993, no activity code) so that
/// readers must pick the current one rather than the first that has a value.
pub(super) fn siren_answer(siret_body: &Value) -> Option<Value> {
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

pub(super) fn is_digits(s: &str, len: usize) -> bool {
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
