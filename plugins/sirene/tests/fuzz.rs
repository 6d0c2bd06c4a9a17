//! Fuzzing of what API Sirene sends back and of the identifiers and queries an ERP sends
//! (issue 19): the `/siret` mapping (lookups and searches), `/informations`, SIRET/SIREN
//! parsing and search requests, fed with INSEE's recorded answers
//! (`tests/emulators/fixtures/sirene`) mutated by the shared generator
//! (`passerelle_plugin_api::testing::fuzz`). No input may panic; a refused identifier or
//! query names its field. `PASSERELLE_FUZZ_CASES` runs longer (see README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use passerelle_plugin_api::capabilities::CompanySearchQuery;
use passerelle_plugin_api::testing::fuzz;
use passerelle_sirene::siret::CompanyId;
use passerelle_sirene::{mapping, search, status};
use serde_json::{json, Value};

fn recorded() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/emulators/fixtures/sirene"
    );
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "Sirene fixtures missing in {dir}");
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn fuzz_sirene_lookups_and_searches() {
    let lookups = recorded();
    // A search answer is the same establishments in a list, with a cursor.
    let search = json!({
        "header": {"statut": 200, "message": "OK", "total": 2, "debut": 0, "nombre": 2,
                   "curseur": "*", "curseurSuivant": "AoE"},
        "etablissements": lookups.iter().filter_map(|l| l.get("etablissement").cloned()).collect::<Vec<_>>(),
    });
    let mut seeds = lookups.clone();
    seeds.push(search);
    fuzz::json("sirene.mapping", &seeds, 2000, |body| {
        match mapping::from_siret(body) {
            Ok(company) => fuzz::assert_crosses_boundary(&company),
            Err(e) => assert!(!e.message.is_empty()),
        }
        match mapping::from_search(body) {
            Ok(companies) => companies.iter().for_each(fuzz::assert_crosses_boundary),
            Err(e) => assert!(!e.message.is_empty()),
        }
    });
}

#[test]
fn fuzz_sirene_informations() {
    let seeds = vec![json!({
        "header": {"statut": 200, "message": "OK"},
        "etatService": "UP",
        "etatsDesServices": [{"Collection": "Unités Légales", "etatCollection": "UP"},
                             {"Collection": "Établissements", "etatCollection": "DOWN"}],
        "versionService": "3.11.4",
        "datesDernieresMisesAJourDesDonnees": [
            {"collection": "Unités Légales", "dateDerniereMiseADisposition": "2025-01-31T08:23:05.000",
             "dateDernierTraitementMaximum": "2025-01-30T23:10:13.000"},
            {"Collection": "Établissements", "dateDerniereMiseADisposition": "2025-01-31T08:23:05"}]
    })];
    fuzz::json("sirene.informations", &seeds, 1500, |info| {
        if let Err(e) = status::service_state(info) {
            assert!(e.contains("/informations") || e.contains("etat"), "{e}");
        }
        let _ = status::freshness(info, 1_800_000_000_000);
        let _ = status::freshness(info, 0);
        let _ = status::freshness(info, u64::MAX);
    });
}

#[test]
fn fuzz_company_identifiers() {
    let seeds: Vec<String> = [
        "552 049 447 00006",
        "55204944700006",
        "552049447",
        "356000000",
    ]
    .map(String::from)
    .to_vec();
    let tokens: &[&[u8]] = &[b" ", b"\xC2\xA0", b"0", b"9", b"-", b"\xEF\xBC\x91"];
    fuzz::text(
        "sirene.siret",
        &seeds,
        tokens,
        2000,
        |input| match CompanyId::parse(input) {
            Ok(id) => assert!(matches!(id.as_str().len(), 9 | 14), "{id:?}"),
            Err(e) => assert_eq!(e.field.as_deref(), Some("id"), "{e:?}"),
        },
    );
}

#[test]
fn fuzz_search_queries() {
    let seeds = vec![
        json!({"name": "Michelin", "postal_code": "63000", "city": "Clermont-Ferrand",
               "active_only": true, "per_page": 20, "page": "AoE"}),
        json!({"name": "la poste"}),
    ];
    fuzz::json("sirene.search_request", &seeds, 1500, |value| {
        let Ok(query) = serde_json::from_value::<CompanySearchQuery>(value.clone()) else {
            return;
        };
        match search::request(&query) {
            Ok(request) => {
                let path = request.path();
                assert!(!path.contains(['\r', '\n', ' ', '#']), "{path:?}");
            }
            Err(e) => assert!(e.field.is_some(), "{e:?}"),
        }
    });
}
