//! Configuration through the CLI, with the real Sirene plugin: per-field validation, secrets
//! that never show, whole-config checks on enable, stale writes, provisioning, and the
//! committed schema.

use passerelle_e2e::TestEnv;

const CANARY: &str = "canary-key-7f3a9c";

fn sirene_env() -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env
}

#[test]
fn fields_are_validated_one_by_one_and_refusals_name_the_field() {
    let env = sirene_env();
    let r = env
        .run(&["config", "set", "s", "timeout_secs", "500"])
        .expect_code(3);
    assert!(
        r.stderr.contains("timeout_secs") && r.stderr.contains("maximum"),
        "{}",
        r.stderr
    );
    let r = env
        .run(&["config", "set", "s", "timeout_secs", "soon"])
        .expect_code(3);
    assert!(r.stderr.contains("expected an integer"), "{}", r.stderr);
    let r = env
        .run(&["config", "set", "s", "colour", "blue"])
        .expect_code(3);
    assert!(
        r.stderr.contains("no such field") && r.stderr.contains("api_key"),
        "{}",
        r.stderr
    );
    let r = env
        .run(&["config", "set", "s", "auth_mode", "password"])
        .expect_code(3);
    assert!(r.stderr.contains("auth_mode"), "{}", r.stderr);

    env.ok(&["config", "set", "s", "timeout_secs", "20"]);
    env.ok(&["config", "get", "s", "timeout_secs"])
        .expect_output("20");
    // Refused values changed nothing.
    let show = env.ok(&["config", "show", "s", "--json"]).json();
    assert_eq!(show["revision"], 2, "{show:#}");
    env.ok(&["config", "unset", "s", "timeout_secs"]);
    env.ok(&["config", "get", "s", "timeout_secs"])
        .expect_output("10");
}

#[test]
fn secrets_are_sealed_and_only_ever_shown_as_set() {
    // Reads and edits the instance file: embedded backend.
    let env = TestEnv::with_plugins(&["passerelle_sirene"]).embedded();
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env.run_with_stdin(
        &["config", "set", "s", "api_key", "--stdin"],
        Some(&format!("{CANARY}\n")),
    )
    .expect_code(0)
    .expect_output("(secret, set)");
    assert_eq!(
        env.ok(&["config", "get", "s", "api_key"]).stdout.trim(),
        "set"
    );
    let show = env.ok(&["config", "show", "s", "--json"]);
    let field = show.json()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "api_key")
        .cloned()
        .unwrap();
    assert_eq!(field["state"], "set");
    assert!(field.get("value").is_none(), "{field}");
    let toml = std::fs::read_to_string(env.instance_file("s")).unwrap();
    assert!(
        toml.contains("[secrets]") && toml.contains("enc:v1:"),
        "{toml}"
    );
    let everything = format!(
        "{}{}{}",
        env.data_dump(),
        show.all(),
        env.ok(&["--log", "trace", "config", "list", "--json"])
            .all()
    );
    assert!(!everything.contains(CANARY), "the secret leaked");

    // A value sealed for one field does not open as another (bound to instance and field).
    let moved = toml.replace("api_key = ", "client_secret = ");
    std::fs::write(env.instance_file("s"), moved).unwrap();
    env.ok(&["config", "set", "s", "auth_mode", "oauth2"]);
    env.ok(&["config", "set", "s", "client_id", "id"]);
    let r = env.run(&["config", "enable", "s"]).expect_code(3);
    assert!(r.stderr.contains("cannot be decrypted"), "{}", r.stderr);
}

#[test]
fn enabling_checks_the_whole_configuration_and_enabled_instances_stay_valid() {
    let env = sirene_env();
    let r = env.run(&["config", "enable", "s"]).expect_code(3);
    assert!(
        r.stderr.contains("api_key") && r.stderr.contains("required when `auth_mode`"),
        "{}",
        r.stderr
    );
    env.ok(&["config", "set", "s", "auth_mode", "oauth2"]);
    let r = env.run(&["config", "enable", "s"]).expect_code(3);
    assert!(
        r.stderr.contains("auth_mode") && r.stderr.contains("10 September 2025"),
        "{}",
        r.stderr
    );
    env.ok(&["config", "set", "s", "auth_mode", "api_key"]);
    env.run_with_stdin(&["config", "set", "s", "api_key", "--stdin"], Some(CANARY))
        .expect_code(0);
    env.ok(&["config", "enable", "s"]);
    let r = env.run(&["config", "unset", "s", "api_key"]).expect_code(3);
    assert!(r.stderr.contains("disable it first"), "{}", r.stderr);
    assert_eq!(
        env.ok(&["config", "get", "s", "api_key"]).stdout.trim(),
        "set"
    );
    env.ok(&["config", "list"]).expect_output("enabled");
}

#[test]
fn a_stale_revision_is_refused() {
    let env = sirene_env();
    env.ok(&[
        "config",
        "set",
        "s",
        "timeout_secs",
        "11",
        "--if-revision",
        "1",
    ]);
    let r = env
        .run(&[
            "config",
            "set",
            "s",
            "timeout_secs",
            "12",
            "--if-revision",
            "1",
        ])
        .expect_code(3);
    assert!(r.stderr.contains("changed by someone else"), "{}", r.stderr);
    env.ok(&["config", "get", "s", "timeout_secs"])
        .expect_output("11");
}

#[test]
fn unknown_instance_and_plugin_give_exit_code_4_and_the_next_step() {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    let r = env.run(&["config", "show", "nope"]).expect_code(4);
    assert!(r.stderr.contains("config create nope"), "{}", r.stderr);
    let r = env
        .run(&["config", "create", "x", "--plugin", "mindee"])
        .expect_code(4);
    assert!(r.stderr.contains("loaded: sirene"), "{}", r.stderr);
    env.run(&["config", "create", "Bad/Id", "--plugin", "sirene"])
        .expect_code(3);
}

#[test]
fn provisioning_file_with_secrets_from_the_environment() {
    let mut env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.env("SIRENE_KEY_FOR_TEST", CANARY);
    let file = env.root.path().join("provision.toml");
    std::fs::write(
        &file,
        r#"
[instances.registry]
plugin = "sirene"
enabled = true
[instances.registry.values]
base_url = "http://127.0.0.1:9/api-sirene/3.11"
api_key = { env = "SIRENE_KEY_FOR_TEST" }
timeout_secs = 5
"#,
    )
    .unwrap();
    env.ok(&["config", "apply", file.to_str().unwrap()])
        .expect_output("created registry");
    let show = env.ok(&["config", "show", "registry", "--json"]).json();
    assert_eq!(show["enabled"], true);
    assert!(!env.data_dump().contains(CANARY));
    // A bad file changes nothing.
    std::fs::write(
        &file,
        "[instances.registry]\nplugin = \"sirene\"\n[instances.registry.values]\ntimeout_secs = 0\n",
    )
    .unwrap();
    let r = env
        .run(&["config", "apply", file.to_str().unwrap()])
        .expect_code(3);
    assert!(r.stderr.contains("timeout_secs"), "{}", r.stderr);
    env.ok(&["config", "get", "registry", "timeout_secs"])
        .expect_output("5");
}

/// The committed `schemas/<id>.schema.json` of every bundled plugin is what the plugin
/// prints, and every committed schema belongs to a bundled plugin.
#[test]
fn the_committed_schemas_are_the_plugins() {
    let bundled = [
        ("passerelle_sirene", "sirene"),
        ("passerelle_ocr_mindee", "ocr-mindee"),
        ("passerelle_ocr_tesseract", "ocr-tesseract"),
        ("passerelle_chorus_pro", "chorus-pro"),
        ("passerelle_einvoice_afnor", "einvoice-afnor"),
        ("passerelle_universign", "universign"),
        ("passerelle_exchange_ews", "exchange-ews"),
        ("passerelle_calendar_graph", "calendar-graph"),
    ];
    let crates: Vec<&str> = bundled.iter().map(|(c, _)| *c).collect();
    let env = TestEnv::with_plugins(&crates);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut stale = Vec::new();
    for (_, id) in bundled {
        // English at the top, each other language in its own folder (`schemas/fr/`).
        for (lang, folder) in [("en", dir.clone()), ("fr", dir.join("fr"))] {
            let printed = env.ok(&["schema", id, "--lang", lang]).json();
            let path = folder.join(format!("{id}.schema.json"));
            let committed: Option<serde_json::Value> = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if committed.as_ref() != Some(&printed) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas: {stale:?}; regenerate each with \
         `passerelle --plugin-dir target/debug schema <id> [--lang fr] > schemas/[fr/]<id>.schema.json` (as .ci/run does)"
    );
    // Schemas only: passerelle-vocabulary.json is the x- keywords' vocabulary, not a plugin's.
    for folder in [dir.clone(), dir.join("fr")] {
        let files = std::fs::read_dir(&folder)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".schema.json"))
            })
            .count();
        assert_eq!(
            files,
            bundled.len(),
            "a schema in {} has no bundled plugin",
            folder.display()
        );
    }
}
