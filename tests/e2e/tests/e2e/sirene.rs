//! The Sirene plugin end to end: the real binary and `.so` against the Sirene emulator.

use passerelle_e2e::TestEnv;
use passerelle_emulators::sirene::{
    SireneEmulator, SireneOptions, NON_DIFFUSIBLE_SIRET, PARTIALLY_DIFFUSIBLE_SIRET,
};

const KEY: &str = "sirene-canary-key-1234";

fn configured(emulator: &SireneEmulator) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "registry", "--plugin", "sirene"]);
    env.ok(&[
        "config",
        "set",
        "registry",
        "base_url",
        &emulator.base_url(),
    ]);
    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some(KEY),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "registry"]);
    env
}

fn emulator() -> SireneEmulator {
    SireneEmulator::start(SireneOptions {
        api_key: KEY.into(),
        ..SireneOptions::default()
    })
    .unwrap()
}

#[test]
fn test_routine_ok_then_bad_key_then_service_down() {
    let sirene = emulator();
    let env = configured(&sirene);
    let ok = env.ok(&["test", "registry"]);
    assert!(ok.stdout.contains("Test of registry: ok"), "{}", ok.stdout);
    assert!(
        ok.stdout.contains("reach service") && ok.stdout.contains("data freshness"),
        "{}",
        ok.stdout
    );
    let json = env.ok(&["test", "registry", "--json"]).json();
    assert!(json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["duration_ms"].is_u64()));
    env.ok(&["config", "list"]).expect_output("last test: ok");

    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some("wrong-key-5678"),
    )
    .expect_code(0);
    let bad = env.run(&["test", "registry", "--json"]).expect_code(1);
    let report = bad.json();
    assert_eq!(report["status"], "failed");
    let text = report.to_string();
    assert!(
        text.contains("refused") && text.contains("401"),
        "{report:#}"
    );
    assert!(
        !bad.all().contains("wrong-key-5678") && !bad.all().contains(KEY),
        "key leaked"
    );

    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some(KEY),
    )
    .expect_code(0);
    sirene.set_unavailable(true);
    let down = env
        .run(&["test", "registry", "--json"])
        .expect_code(1)
        .json();
    assert!(down.to_string().contains("503"), "{down:#}");
    let url = sirene.base_url();
    drop(sirene);
    let gone = env
        .run(&["test", "registry", "--json"])
        .expect_code(1)
        .json();
    let text = gone.to_string();
    assert!(
        text.contains("unreachable") || text.contains("cannot reach"),
        "{gone:#}"
    );
    assert!(
        text.contains(&url) || text.contains("127.0.0.1"),
        "{gone:#}"
    );
}

#[test]
fn company_lookup_found_not_found_bad_checksum_and_non_diffusible() {
    let sirene = emulator();
    let env = configured(&sirene);
    let found = env.ok(&["company", "21920023500014", "--json"]).json();
    assert_eq!(found["siren"], "219200235");
    assert_eq!(found["siret"], "21920023500014");
    assert_eq!(found["legal_name"], "COMMUNE DE CLAMART");
    assert_eq!(found["postal_code"], "92140");
    assert_eq!(found["city"], "CLAMART");
    assert_eq!(found["activity_code"], "84.11Z");
    assert_eq!(found["active"], true);
    assert_eq!(found["head_office"], true);
    assert_eq!(found["activity_label"], "Administration publique générale");
    assert_eq!(found["legal_category_label"], "Commune et commune nouvelle");
    // A SIREN costs one request: the head office found by the multi-criteria search.
    let before = sirene.request_count();
    env.ok(&["company", "219 200 235"])
        .expect_output("COMMUNE DE CLAMART");
    assert_eq!(sirene.request_count(), before + 1);
    let closed = env.ok(&["company", "13002437500011", "--json"]).json();
    assert_eq!(closed["active"], false);

    let before = sirene.request_count();
    let r = env.run(&["company", "21920023500015"]).expect_code(3);
    assert!(
        r.stderr.contains("check digit") || r.stderr.contains("Luhn"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sirene.request_count(),
        before,
        "an invalid SIRET must not reach the API"
    );

    let r = env.run(&["company", "21920023500022"]).expect_code(4);
    assert!(r.stderr.contains("21920023500022"), "{}", r.stderr);

    let r = env.run(&["company", NON_DIFFUSIBLE_SIRET]).expect_code(1);
    assert!(r.stderr.contains("diffusible"), "{}", r.stderr);
    let partial = env
        .ok(&["company", PARTIALLY_DIFFUSIBLE_SIRET, "--json"])
        .json();
    assert_eq!(partial["fully_public"], false);

    // The same through the generic capability call the ERP uses.
    let out = env
        .ok(&[
            "invoke",
            "company.lookup",
            "--input",
            r#"{"id":"32816124500027"}"#,
        ])
        .json();
    assert_eq!(out["siren"], "328161245");
}

#[test]
fn lookup_refuses_a_disabled_instance_and_a_missing_provider() {
    let sirene = emulator();
    let env = configured(&sirene);
    env.ok(&["config", "disable", "registry"]);
    let r = env
        .run(&["company", "21920023500014", "--instance", "registry"])
        .expect_code(3);
    assert!(r.stderr.contains("config enable registry"), "{}", r.stderr);
    let r = env.run(&["company", "21920023500014"]).expect_code(4);
    assert!(
        r.stderr
            .contains("no enabled instance serves company.lookup"),
        "{}",
        r.stderr
    );
}

#[test]
fn company_search_pages_end_to_end_and_refuses_bad_input() {
    let sirene = emulator();
    let env = configured(&sirene);
    let search = |page: Option<&str>| {
        let mut input = serde_json::json!({"name": "de", "postal_code": "92140", "per_page": 1});
        if let Some(page) = page {
            input["page"] = page.into();
        }
        env.ok(&["invoke", "company.search", "--input", &input.to_string()])
            .json()
    };
    let first = search(None);
    assert_eq!(first["total"], 2, "{first:#}");
    assert_eq!(first["companies"][0]["siret"], "21920023500014");
    assert_eq!(
        first["companies"][0]["activity_label"],
        "Administration publique générale"
    );
    let next = first["next_page"].as_str().unwrap().to_owned();
    let second = search(Some(&next));
    assert_eq!(second["companies"][0]["siret"], "55204944700006");
    assert!(second["next_page"].is_null(), "{second:#}");

    let before = sirene.request_count();
    let r = env
        .run(&[
            "invoke",
            "company.search",
            "--input",
            r#"{"name":"ACME","postal_code":"750"}"#,
        ])
        .expect_code(3);
    assert!(r.stderr.contains("postal_code"), "{}", r.stderr);
    assert_eq!(sirene.request_count(), before, "bad input reached INSEE");
}

#[test]
fn a_saved_oauth2_instance_and_an_old_token_are_explained() {
    let sirene = emulator();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "legacy", "--plugin", "sirene"]);
    env.ok(&["config", "set", "legacy", "auth_mode", "oauth2"]);
    env.ok(&["config", "set", "legacy", "client_id", "old-consumer-key"]);
    env.run_with_stdin(
        &["config", "set", "legacy", "client_secret", "--stdin"],
        Some("old-consumer-secret"),
    )
    .expect_code(0);
    let report = env.run(&["test", "legacy", "--json"]).expect_code(1).json();
    let text = report.to_string();
    assert!(text.contains("closed its OAuth2 gateway"), "{report:#}");
    assert!(text.contains("portail-api.insee.fr"), "{report:#}");
    assert!(!text.contains("old-consumer-secret"), "{report:#}");
    assert_eq!(sirene.request_count(), 0);

    // The old gateway's access token pasted as the key: the emulator answers 401, as INSEE.
    let env = configured(&sirene);
    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some("Bearer 214c0e62-bc3c-4fd6-959f-67e5400bdd41"),
    )
    .expect_code(0);
    let r = env.run(&["company", "21920023500014"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    assert!(r.stderr.contains("Jeton"), "{}", r.stderr);
    assert!(
        r.stderr.contains("looks like an access token"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("214c0e62"), "token leaked");
}
