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
