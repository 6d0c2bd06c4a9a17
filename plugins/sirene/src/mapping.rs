//! Sirene JSON → [`Company`].
//!
//! The register's answers are read as loose JSON rather than strict structs because their
//! shape varies: keys are present with `null` in some answers and absent in others, 3.11
//! moved most legal-unit fields of `/siren` into dated `periodesUniteLegale`, and partially
//! diffusible units carry the marker `[ND]` ("non diffusible") in place of withheld values.
//! Every field is therefore read through [`text`], which turns absent, `null`, empty and
//! `[ND]` into `None`, so a withheld value can never end up in an ERP as if it were data.

use crate::nomenclature;
use passerelle_plugin_api::prelude::*;
use serde_json::{Map, Value};

/// What INSEE writes instead of a value withheld from a partially diffusible unit.
const WITHHELD: &str = "[ND]";

/// The company described by a `/siret/{siret}` answer.
pub fn from_siret(body: &Value) -> Result<Company, PluginError> {
    let establishment = body
        .get("etablissement")
        .filter(|v| v.is_object())
        .ok_or_else(|| unexpected("it has no \"etablissement\" object"))?;
    from_establishment(establishment)
}

/// The company of one establishment object: the `etablissement` of a `/siret/{siret}` answer
/// or one of the `etablissements` of a search, each with its `uniteLegale` embedded.
pub fn from_establishment(establishment: &Value) -> Result<Company, PluginError> {
    let unit = establishment
        .get("uniteLegale")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    build(&unit, Some(establishment))
}

/// The establishments of a `/siret?q=` answer, in the register's order.
pub fn from_search(body: &Value) -> Result<Vec<Company>, PluginError> {
    body.get("etablissements")
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected("it has no \"etablissements\" list"))?
        .iter()
        .map(from_establishment)
        .collect()
}

fn build(unit: &Value, establishment: Option<&Value>) -> Result<Company, PluginError> {
    let est = establishment.map(|e| Value::Object(flatten(e, "periodesEtablissement")));
    let est = est.as_ref();
    let siren = est
        .and_then(|e| text(e, "siren"))
        .or_else(|| text(unit, "siren"))
        .ok_or_else(|| unexpected("it names no SIREN"))?;

    let unit_open = raw(unit, "etatAdministratifUniteLegale") != Some("C");
    let active = match est {
        Some(e) => unit_open && raw(e, "etatAdministratifEtablissement") == Some("A"),
        None => unit_open,
    };
    let fully_public = raw(unit, "statutDiffusionUniteLegale").is_none_or(|s| s == "O")
        && est
            .and_then(|e| raw(e, "statutDiffusionEtablissement"))
            .is_none_or(|s| s == "O");

    let trade_name = est
        .and_then(|e| text(e, "enseigne1Etablissement"))
        .or_else(|| est.and_then(|e| text(e, "denominationUsuelleEtablissement")))
        .or_else(|| text(unit, "sigleUniteLegale"))
        .or_else(|| text(unit, "denominationUsuelle1UniteLegale"));

    // The establishment's activity with its own nomenclature, else the unit's.
    let (activity_code, activity_nomenclature) =
        match est.and_then(|e| text(e, "activitePrincipaleEtablissement")) {
            Some(code) => (
                Some(code),
                est.and_then(|e| text(e, "nomenclatureActivitePrincipaleEtablissement")),
            ),
            None => (
                text(unit, "activitePrincipaleUniteLegale"),
                text(unit, "nomenclatureActivitePrincipaleUniteLegale"),
            ),
        };
    let activity_label = activity_code
        .as_deref()
        .and_then(|c| nomenclature::activity_label(c, activity_nomenclature.as_deref()))
        .map(str::to_owned);
    let legal_category = text(unit, "categorieJuridiqueUniteLegale");
    let legal_category_label = legal_category
        .as_deref()
        .and_then(nomenclature::legal_category_label)
        .map(str::to_owned);

    let mut company = Company {
        siren,
        siret: est.and_then(|e| text(e, "siret")),
        legal_name: legal_name(unit),
        trade_name,
        activity_code,
        activity_label,
        legal_category,
        legal_category_label,
        active,
        head_office: est
            .and_then(|e| e.get("etablissementSiege"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        fully_public,
        ..Company::default()
    };
    if let Some(address) = est.and_then(|e| e.get("adresseEtablissement")) {
        fill_address(&mut company, address);
    }
    Ok(company)
}

/// The company name, or for an individual entrepreneur "First name Last name" using the
/// names they go by (usual first name, married name) when registered.
pub fn legal_name(unit: &Value) -> Option<String> {
    if let Some(name) = text(unit, "denominationUniteLegale") {
        return Some(name);
    }
    let first = text(unit, "prenomUsuelUniteLegale").or_else(|| text(unit, "prenom1UniteLegale"));
    let last = text(unit, "nomUsageUniteLegale").or_else(|| text(unit, "nomUniteLegale"));
    let name = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

fn fill_address(company: &mut Company, address: &Value) {
    let street = [
        text(address, "numeroVoieEtablissement"),
        text(address, "indiceRepetitionEtablissement").map(|i| expand(&i, REPETITION_INDEXES)),
        text(address, "typeVoieEtablissement").map(|t| expand(&t, STREET_TYPES)),
        text(address, "libelleVoieEtablissement"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    company.address_lines = [
        text(address, "complementAdresseEtablissement"),
        (!street.is_empty()).then_some(street),
        text(address, "distributionSpecialeEtablissement"),
    ]
    .into_iter()
    .flatten()
    .collect();
    company.postal_code = text(address, "codePostalEtablissement");
    company.city = text(address, "libelleCommuneEtablissement")
        .or_else(|| text(address, "libelleCommuneEtrangerEtablissement"));
    // A French address has no country field; a withheld one must not be guessed.
    company.country = match raw(address, "libellePaysEtrangerEtablissement") {
        None => Some("FRANCE".to_owned()),
        Some(_) => text(address, "libellePaysEtrangerEtablissement"),
    };
}

/// INSEE's street type codes (`typeVoie`), spelled like the street names: upper case, no
/// accents. Unknown codes are kept as they are.
const STREET_TYPES: &[(&str, &str)] = &[
    ("ALL", "ALLEE"),
    ("AV", "AVENUE"),
    ("BD", "BOULEVARD"),
    ("CAR", "CARREFOUR"),
    ("CHE", "CHEMIN"),
    ("CHS", "CHAUSSEE"),
    ("CITE", "CITE"),
    ("COR", "CORNICHE"),
    ("CRS", "COURS"),
    ("DOM", "DOMAINE"),
    ("DSC", "DESCENTE"),
    ("ECA", "ECART"),
    ("ESP", "ESPLANADE"),
    ("FG", "FAUBOURG"),
    ("GR", "GRANDE RUE"),
    ("HAM", "HAMEAU"),
    ("HLE", "HALLE"),
    ("IMP", "IMPASSE"),
    ("LD", "LIEU DIT"),
    ("LOT", "LOTISSEMENT"),
    ("MAR", "MARCHE"),
    ("MTE", "MONTEE"),
    ("PAS", "PASSAGE"),
    ("PL", "PLACE"),
    ("PLN", "PLAINE"),
    ("PLT", "PLATEAU"),
    ("PRO", "PROMENADE"),
    ("PRV", "PARVIS"),
    // INSEE's list has both: QUA is a district (quartier), QUAI a quay.
    ("QUA", "QUARTIER"),
    ("QUAI", "QUAI"),
    ("RES", "RESIDENCE"),
    ("RLE", "RUELLE"),
    ("ROC", "ROCADE"),
    ("RPT", "ROND POINT"),
    ("RTE", "ROUTE"),
    ("RUE", "RUE"),
    ("SEN", "SENTIER"),
    ("SQ", "SQUARE"),
    ("TPL", "TERRE PLEIN"),
    ("TRA", "TRAVERSE"),
    ("VLA", "VILLA"),
    ("VLGE", "VILLAGE"),
];

/// INSEE's `indiceRepetition` codes: "1 B RUE X" is written "1 BIS RUE X".
const REPETITION_INDEXES: &[(&str, &str)] = &[
    ("B", "BIS"),
    ("T", "TER"),
    ("Q", "QUATER"),
    ("C", "QUINQUIES"),
];

fn expand(code: &str, table: &[(&str, &str)]) -> String {
    table
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map_or_else(|| code.to_owned(), |(_, word)| (*word).to_owned())
}

/// A field's value as text; absent, `null`, blank and withheld (`[ND]`) values are `None`.
pub fn text(obj: &Value, key: &str) -> Option<String> {
    let s = match obj.get(key)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s != WITHHELD).then_some(s)
}

/// A field's raw string, `[ND]` included, for flags where "withheld" is itself information.
fn raw<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// The object's own fields overlaid with those of its current period (the one with no end
/// date, else the first listed, which INSEE sorts newest first). A period's `null` does not
/// erase a value the object itself carries.
fn flatten(obj: &Value, periods_key: &str) -> Map<String, Value> {
    let mut out = obj.as_object().cloned().unwrap_or_default();
    let periods = obj
        .get(periods_key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let current = periods
        .iter()
        .find(|p| p.get("dateFin").is_some_and(Value::is_null))
        .or_else(|| periods.first());
    if let Some(Value::Object(period)) = current {
        for (key, value) in period {
            if !value.is_null() || out.get(key).is_none_or(Value::is_null) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

fn unexpected(what: &str) -> PluginError {
    PluginError::new(
        ErrorKind::Upstream,
        format!("the Sirene answer is not in the expected shape: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! fixture {
        ($name:literal) => {
            serde_json::from_str::<Value>(include_str!(concat!(
                "../../../tests/emulators/fixtures/sirene/",
                $name
            )))
            .unwrap()
        };
    }

    #[test]
    fn commune_de_clamart() {
        let c = from_siret(&fixture!("siret_21920023500014.json")).unwrap();
        assert_eq!(
            c,
            Company {
                siren: "219200235".into(),
                siret: Some("21920023500014".into()),
                legal_name: Some("COMMUNE DE CLAMART".into()),
                trade_name: Some("MAIRIE".into()),
                address_lines: vec!["1 PLACE MAURICE GUNSBOURG".into()],
                postal_code: Some("92140".into()),
                city: Some("CLAMART".into()),
                country: Some("FRANCE".into()),
                activity_code: Some("84.11Z".into()),
                activity_label: Some("Administration publique générale".into()),
                legal_category: Some("7210".into()),
                legal_category_label: Some("Commune et commune nouvelle".into()),
                active: true,
                head_office: true,
                fully_public: true,
            }
        );
    }

    #[test]
    fn closed_unit_with_absent_keys() {
        let c = from_siret(&fixture!("siret_13002437500011.json")).unwrap();
        assert_eq!(c.siren, "130024375");
        assert_eq!(c.siret.as_deref(), Some("13002437500011"));
        assert!(c
            .legal_name
            .as_deref()
            .unwrap()
            .starts_with("SECRETARIAT D'ETAT"));
        assert_eq!(c.trade_name, None);
        assert_eq!(c.address_lines, vec!["110 RUE DE GRENELLE".to_owned()]);
        assert_eq!(c.postal_code.as_deref(), Some("75007"));
        assert_eq!(c.city.as_deref(), Some("PARIS 7"));
        assert_eq!(c.activity_code.as_deref(), Some("84.11Z"));
        assert_eq!(c.legal_category.as_deref(), Some("7113"));
        assert!(!c.active, "closed unit and establishment");
        assert!(c.head_office);
        assert!(c.fully_public);
    }

    #[test]
    fn private_company_uses_its_acronym_as_trade_name() {
        let c = from_siret(&fixture!("siret_32816124500027.json")).unwrap();
        assert_eq!(c.legal_name.as_deref(), Some("MGDIS"));
        assert_eq!(c.trade_name.as_deref(), Some("MGDIS"));
        assert_eq!(c.address_lines, vec!["ALLEE NICOLAS LE BLANC".to_owned()]);
        assert_eq!(c.postal_code.as_deref(), Some("56000"));
        assert_eq!(c.city.as_deref(), Some("VANNES"));
        assert_eq!(c.activity_code.as_deref(), Some("58.29C"));
        assert_eq!(c.legal_category.as_deref(), Some("5710"));
        assert!(c.active);
    }

    #[test]
    fn accented_demo_record() {
        let c = from_siret(&fixture!("siret_55204944700006.json")).unwrap();
        assert_eq!(c.siren, "552049447");
        assert_eq!(c.siret.as_deref(), Some("55204944700006"));
        assert_eq!(
            c.legal_name.as_deref(),
            Some("Établissement public industriel et commercial de démonstration")
        );
        assert_eq!(c.legal_category.as_deref(), Some("4120"));
        assert!(c.head_office);
        assert!(c.active);
    }

    #[test]
    fn partially_diffusible_individual() {
        let c = from_siret(&fixture!("siret_81234567600009.json")).unwrap();
        assert_eq!(c.siren, "812345676");
        assert_eq!(c.legal_name.as_deref(), Some("MARIE DUPONT"));
        assert_eq!(c.trade_name, None);
        assert!(c.address_lines.is_empty(), "{:?}", c.address_lines);
        assert_eq!(c.postal_code.as_deref(), Some("69003"));
        assert_eq!(c.city.as_deref(), Some("LYON 3EME"));
        assert_eq!(c.country.as_deref(), Some("FRANCE"));
        assert!(!c.fully_public);
        assert!(c.active);
    }

    #[test]
    fn individual_name_prefers_usual_names() {
        let unit = json!({
            "denominationUniteLegale": null,
            "prenom1UniteLegale": "JEAN",
            "prenomUsuelUniteLegale": "JEANNOT",
            "nomUniteLegale": "MARTIN",
            "nomUsageUniteLegale": "DURAND"
        });
        assert_eq!(legal_name(&unit).as_deref(), Some("JEANNOT DURAND"));
        let unit = json!({"prenom1UniteLegale": "JEAN", "nomUniteLegale": "MARTIN"});
        assert_eq!(legal_name(&unit).as_deref(), Some("JEAN MARTIN"));
        let unit = json!({"nomUniteLegale": "MARTIN"});
        assert_eq!(legal_name(&unit).as_deref(), Some("MARTIN"));
        assert_eq!(legal_name(&json!({})), None);
    }

    #[test]
    fn withheld_values_become_none() {
        let unit = json!({
            "prenomUsuelUniteLegale": "[ND]",
            "prenom1UniteLegale": "JEAN",
            "nomUsageUniteLegale": "[ND]",
            "nomUniteLegale": "MARTIN",
            "sigleUniteLegale": "[ND]"
        });
        assert_eq!(legal_name(&unit).as_deref(), Some("JEAN MARTIN"));
        assert_eq!(text(&unit, "sigleUniteLegale"), None);
        let address =
            json!({"libellePaysEtrangerEtablissement": "[ND]", "codePostalEtablissement": "[ND]"});
        let mut c = Company::default();
        fill_address(&mut c, &address);
        assert_eq!(c.country, None);
        assert_eq!(c.postal_code, None);
    }

    #[test]
    fn street_line_expands_codes_and_keeps_unknown_ones() {
        let address = json!({
            "complementAdresseEtablissement": "BATIMENT A",
            "numeroVoieEtablissement": "12",
            "indiceRepetitionEtablissement": "B",
            "typeVoieEtablissement": "BD",
            "libelleVoieEtablissement": "DES CAPUCINES",
            "distributionSpecialeEtablissement": "BP 42",
            "codePostalEtablissement": "75009",
            "libelleCommuneEtablissement": "PARIS 9",
        });
        let mut c = Company::default();
        fill_address(&mut c, &address);
        assert_eq!(
            c.address_lines,
            vec!["BATIMENT A", "12 BIS BOULEVARD DES CAPUCINES", "BP 42"]
        );
        assert_eq!(expand("XYZ", STREET_TYPES), "XYZ");
        assert_eq!(expand("QUAI", STREET_TYPES), "QUAI");
        assert_eq!(expand("av", STREET_TYPES), "AVENUE");
    }

    #[test]
    fn foreign_address() {
        let address = json!({
            "numeroVoieEtablissement": "5",
            "libelleVoieEtablissement": "KOENIGSALLEE",
            "libelleCommuneEtablissement": null,
            "libelleCommuneEtrangerEtablissement": "DUSSELDORF",
            "codePaysEtrangerEtablissement": "99109",
            "libellePaysEtrangerEtablissement": "ALLEMAGNE",
        });
        let mut c = Company::default();
        fill_address(&mut c, &address);
        assert_eq!(c.city.as_deref(), Some("DUSSELDORF"));
        assert_eq!(c.country.as_deref(), Some("ALLEMAGNE"));
    }

    #[test]
    fn search_answers_list_their_establishments() {
        let one = fixture!("siret_32816124500027.json");
        let body = json!({
            "header": {"statut": 200, "message": "OK", "total": 1, "debut": 0, "nombre": 1},
            "etablissements": [one["etablissement"].clone()]
        });
        let found = from_search(&body).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].siret.as_deref(), Some("32816124500027"));
        assert_eq!(found[0], from_siret(&one).unwrap());
        assert_eq!(
            found[0].legal_category_label.as_deref(),
            Some("SAS, société par actions simplifiée")
        );
        assert!(from_search(&json!({"header": {}})).is_err());
    }

    #[test]
    fn unexpected_bodies_are_upstream_errors() {
        let err = from_siret(&json!({"header": {"statut": 200}})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Upstream);
        assert!(err.message.contains("etablissement"));
    }
}
