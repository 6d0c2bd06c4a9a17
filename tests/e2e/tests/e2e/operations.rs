//! Typed operations at the boundary, end to end: the real `passerelle` binary checks a
//! capability input against its plugin-API contract before the Sirene plugin (and its
//! emulator) sees it, names the JSON pointer of the problem on the command line and over
//! HTTP, and `passerelle serve` publishes one typed OpenAPI path per operation.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::TestEnv;
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};

const KEY: &str = "sirene-ops-key-5678";

#[test]
fn a_bad_input_is_refused_by_the_host_with_its_pointer_and_openapi_is_typed() {
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
    env.ok(&["config", "enable", "registry"]);
    let before = sirene.request_count();

    // Command line: a misspelt field is refused (exit 3) with the pointer of the missing one,
    // in the host's words (the plugin's decoding error names no pointer).
    env.run(&[
        "invoke",
        "company.lookup",
        "--input",
        r#"{"siret": "21920023500014"}"#,
    ])
    .expect_code(3)
    .expect_output("/id: this field is required");
    // `invoke --help` lists the operations with their inputs.
    let help = env.ok(&["invoke", "--help"]);
    assert!(
        help.stdout.contains("company.lookup") && help.stdout.contains("id*: string"),
        "{}",
        help.stdout
    );

    let token = admin_token(&env);
    let server = Server::start(&env, &["--log", "info"]);
    let lookup = "/api/capabilities/company.lookup";
    // HTTP: a wrong type is 422 `invalid_value` with field and pointer; the value itself is
    // not echoed back.
    let (code, body) = server.http(
        "POST",
        lookup,
        Some(&token),
        Some(r#"{"id": 21920023500014}"#),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("invalid_value")),
        "{body}"
    );
    assert_eq!(body["pointer"], "/id", "{body}");
    assert_eq!(body["field"], "id", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("/id: expected string"), "{message}");
    assert!(!message.contains("21920023500014"), "{message}");
    // Nothing reached the provider for either refusal.
    assert_eq!(sirene.request_count(), before);
    // A good input goes through to the plugin and its emulator.
    let (code, company) = server.http(
        "POST",
        lookup,
        Some(&token),
        Some(r#"{"id": "21920023500014"}"#),
    );
    assert_eq!(code, 200, "{company}");
    assert_eq!(company["legal_name"], "COMMUNE DE CLAMART");
    assert!(sirene.request_count() > before);

    // The served OpenAPI: one typed path per operation, bodies from the plugin-API types.
    let (code, doc) = server.http("GET", "/api/openapi.json", Some(&token), None);
    assert_eq!(code, 200);
    let op = &doc["paths"][lookup]["post"];
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CompanyQuery"
    );
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Company"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["CompanyQuery"]["required"][0], "id");
    assert_eq!(schemas["Company"]["properties"]["siren"]["type"], "string");
    for operation in [
        "company.search",
        "einvoice.submit",
        "esign.request",
        "calendar.sync",
    ] {
        let body = &doc["paths"][format!("/api/capabilities/{operation}")]["post"]["requestBody"];
        assert!(
            body["content"]["application/json"]["schema"]["$ref"].is_string(),
            "{operation}: {body}"
        );
    }
    drop(server);
}

/// Issue 17, done when: "a plugin built against API 1.0 still loads". Its manifest lists the
/// operation by hand and its own `invoke` decodes it (no `Plugin::operations`): it still
/// answers, and the host checks its input against the same contract.
#[test]
fn a_plugin_built_against_api_1_0_still_serves_its_operation() {
    let env = TestEnv::with_plugins(&["fixture_api_1_0"]);
    env.ok(&["config", "create", "old", "--plugin", "api-one-zero"]);
    env.ok(&["config", "set", "old", "greeting", "Ancienne maison"]);
    env.ok(&["config", "enable", "old"]);
    let listing = env.ok(&["plugins", "--json"]).json();
    assert_eq!(listing["plugins"][0]["api_version"], "1.0.0", "{listing:#}");
    let company = env
        .ok(&[
            "invoke",
            "company.lookup",
            "--input",
            r#"{"id": "123456789"}"#,
        ])
        .json();
    assert_eq!(company["siren"], "123456789", "{company:#}");
    assert_eq!(company["legal_name"], "Ancienne maison", "{company:#}");
    env.run(&["invoke", "company.lookup", "--input", "{}"])
        .expect_code(3)
        .expect_output("/id: this field is required");
}
