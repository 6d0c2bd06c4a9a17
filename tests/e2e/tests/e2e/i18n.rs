//! Plugins in French and English through the real binary: the schema and test reports in the
//! language asked for (`--lang`, `?lang=`, `Accept-Language`), the completeness check partners
//! run, and a plugin built against plugin API 1.0 (no translations) still loading, in English.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::TestEnv;
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use serde_json::Value;

const KEY: &str = "sirene-i18n-key-1234";

fn step_names(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sirene_speaks_french_on_the_command_line_and_over_http() {
    let sirene = SireneEmulator::start(SireneOptions {
        api_key: KEY.into(),
        ..SireneOptions::default()
    })
    .unwrap();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "registry", "--plugin", "sirene"]);
    env.ok(&["config", "set", "registry", "base_url", &sirene.base_url()]);
    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some(KEY),
    )
    .expect_code(0);

    // Command line: schema and test report.
    let fr = env.ok(&["schema", "sirene", "--lang", "fr"]).json();
    assert_eq!(fr["properties"]["api_key"]["title"], "Clé d'API");
    assert_eq!(
        fr["properties"]["auth_mode"]["oneOf"][0]["title"],
        "Clé d'API (portail de l'INSEE)"
    );
    let en = env.ok(&["schema", "sirene"]).json();
    assert_eq!(en["properties"]["api_key"]["title"], "API key");
    let de = env.ok(&["schema", "sirene", "--lang", "de"]).json();
    assert_eq!(de, en, "a language the plugin does not ship is English");
    let report = env
        .ok(&["test", "registry", "--json", "--lang", "fr"])
        .json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        step_names(&report),
        [
            "Joindre le service",
            "État du service",
            "Fraîcheur des données"
        ]
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("est en service (UP), données du"),
        "{report:#}"
    );
    let check = env.ok(&["plugin", "translations", "sirene", "--lang", "fr"]);
    assert!(
        check.stdout.contains("20 of 20 schema texts translated"),
        "{}",
        check.stdout
    );

    // HTTP: `?lang=` wins over `Accept-Language`; answers say their language.
    let server = Server::start(&env, &[]);
    let token = admin_token(&env);
    let schema = "/api/plugins/sirene/schema";
    let (status, head, body) = server.http_with_headers(
        "GET",
        schema,
        Some(&token),
        &[("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8")],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-language: fr"), "{head}");
    assert!(head.contains("vary: accept-language"), "{head}");
    assert_eq!(body, fr);
    let (_, head, body) = server.http_with_headers(
        "GET",
        &format!("{schema}?lang=en"),
        Some(&token),
        &[("Accept-Language", "fr")],
        None,
    );
    assert!(head.to_ascii_lowercase().contains("content-language: en"));
    assert_eq!(body, en);
    let (status, _, body) = server.http_with_headers(
        "GET",
        &format!("{schema}?lang=fr%3Bq"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`lang`"),
        "{body}"
    );

    let (status, head, report) = server.http_with_headers(
        "POST",
        "/api/instances/registry/test",
        Some(&token),
        &[("Accept-Language", "fr")],
        None,
    );
    assert_eq!(status, 200, "{report}");
    assert!(head.to_ascii_lowercase().contains("content-language: fr"));
    assert_eq!(step_names(&report)[0], "Joindre le service");
    assert!(
        report["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("a répondu"),
        "{report:#}"
    );
    let (_, _, last) = server.http_with_headers(
        "GET",
        "/api/instances/registry/test?lang=en",
        Some(&token),
        &[("Accept-Language", "fr")],
        None,
    );
    assert_eq!(step_names(&last["report"])[0], "reach service", "{last:#}");
}

/// Issue 15, done when: "a plugin built against the previous plugin API still loads and shows
/// English".
#[test]
fn a_plugin_built_against_api_1_0_still_loads_and_shows_english() {
    let env = TestEnv::with_plugins(&["fixture_api_1_0"]);
    let listing = env.ok(&["plugins", "--json"]).json();
    let plugin = &listing["plugins"][0];
    assert_eq!(plugin["id"], "api-one-zero", "{listing:#}");
    assert_eq!(plugin["api_version"], "1.0.0");
    assert_eq!(plugin["languages"], serde_json::json!(["en"]));
    let schema = env.ok(&["schema", "api-one-zero", "--lang", "fr"]).json();
    assert_eq!(schema["properties"]["greeting"]["title"], "Greeting");
    env.ok(&["config", "create", "old", "--plugin", "api-one-zero"]);
    env.ok(&["config", "set", "old", "greeting", "hello"]);
    let report = env.ok(&["test", "old", "--json", "--lang", "fr"]).json();
    assert_eq!(step_names(&report), ["say hello"]);
    assert_eq!(report["summary"], "all good");
    let r = env
        .run(&["plugin", "translations", "api-one-zero", "--lang", "fr"])
        .expect_code(3);
    assert!(
        r.stderr.contains("has no `fr` translations"),
        "{}",
        r.stderr
    );
}
