//! Forms that stock generators render right (issue 15), end to end: `tests/forms/check.mjs`
//! renders every committed schema with RJSF 6 and JSON Forms 3 and compares ajv's verdicts on
//! the corpus (`tests/forms/corpus/<plugin>/`) with those of the real `passerelle config
//! check` over the real plugin libraries; and the partner's one command, `passerelle schema
//! <id> | node tests/forms/check.mjs -`.
//!
//! Nothing is skipped: without Node.js or the script's `node_modules`, the test fails and says
//! which install step of `.ci/run` to run.

use passerelle_e2e::{artifacts, run_to_end, Run, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Every plugin with a committed schema.
const PLUGINS: [&str; 8] = [
    "passerelle_calendar_graph",
    "passerelle_chorus_pro",
    "passerelle_einvoice_afnor",
    "passerelle_exchange_ews",
    "passerelle_ocr_mindee",
    "passerelle_ocr_tesseract",
    "passerelle_sirene",
    "passerelle_universign",
];

fn forms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../forms")
}

/// Fails with the install step to run when Node.js or the script's packages are missing.
fn check_prerequisites() {
    let hint = "run the install step of .ci/run: `apt-get install -y nodejs npm` (Node.js >= 20) and `npm ci --prefix tests/forms`";
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("Node.js is needed for the forms test but `node` cannot run ({e}); {hint}")
        });
    assert!(node.status.success(), "`node --version` failed; {hint}");
    for package in ["@rjsf/core", "@jsonforms/vanilla-renderers", "ajv", "jsdom"] {
        assert!(
            forms_dir()
                .join("node_modules")
                .join(package)
                .join("package.json")
                .exists(),
            "tests/forms has no node_modules/{package}; {hint}"
        );
    }
}

fn node(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new("node");
    cmd.arg(forms_dir().join("check.mjs"))
        .args(args)
        .current_dir(forms_dir());
    let line = format!("node tests/forms/check.mjs {}", args.join(" "));
    run_to_end(cmd, line.clone(), stdin, SCRIPT_TIMEOUT)
        .unwrap_or_else(|| panic!("`{line}` did not finish within {SCRIPT_TIMEOUT:?}"))
}

#[test]
fn committed_schemas_render_in_rjsf_and_json_forms_and_ajv_agrees_with_the_host() {
    check_prerequisites();
    let env = TestEnv::with_plugins(&PLUGINS);
    let bin = artifacts().bin.display().to_string();
    let dir = env.plugins.display().to_string();
    let run = node(&["--host", &bin, "--plugin-dir", &dir], None);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let summary = run.stdout.lines().next().unwrap_or_default().to_owned();
    eprintln!("{summary} (node took {:?})", run.elapsed);
    // Every plugin's corpus was compared with the host, and every field rendered twice.
    for plugin in PLUGINS {
        let id = plugin.trim_start_matches("passerelle_").replace('_', "-");
        assert!(
            summary.contains(&format!("{id} ")),
            "{id} missing: {summary}"
        );
    }
    // 97 properties, in English and in French (schemas/fr), by both renderers.
    assert!(
        summary.contains("16 schema(s), 388 controls checked"),
        "{summary}"
    );
    assert!(run.stdout.contains("all conform"), "{}", run.all());
}

#[test]
fn a_partner_checks_a_schema_from_passerelle_schema_and_config_check_names_the_fields() {
    check_prerequisites();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    let schema = env.ok(&["schema", "sirene"]).stdout;
    let run = node(&["-"], Some(&schema));
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("16 controls checked"), "{}", run.all());

    // A choice as plugins wrote them before (no `type`): the check fails and says why.
    let mut old: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let auth_mode = old["properties"]["auth_mode"].as_object_mut().unwrap();
    assert!(auth_mode.remove("type").is_some(), "{schema}");
    for choice in auth_mode["oneOf"].as_array_mut().unwrap() {
        choice.as_object_mut().unwrap().remove("type");
    }
    let old = old.to_string();
    let run = node(&["-"], Some(&old));
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("Unsupported field schema"),
        "{}",
        run.all()
    );

    // The host's verdict on a document, without saving it.
    let doc = env.root.path().join("sirene.json");
    std::fs::write(
        &doc,
        r#"{"auth_mode": "api_key", "timeout_secs": 500, "colour": "blue"}"#,
    )
    .unwrap();
    let path = doc.display().to_string();
    let out = env
        .run(&["config", "check", "sirene", &path])
        .expect_code(3);
    assert!(out.stdout.contains("3 problem(s)"), "{}", out.all());
    assert!(
        out.stdout
            .contains("required when `auth_mode` is \"api_key\""),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("field `colour`: this plugin has no such field"),
        "{}",
        out.all()
    );
    let verdicts = env
        .run(&["config", "check", "sirene", &path, "--json"])
        .expect_code(3)
        .json();
    let mut fields: Vec<&str> = verdicts[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["api_key", "colour", "timeout_secs"]);
    assert_eq!(verdicts[0]["valid"], false);
    env.ok(&["config", "list"]).expect_output("No instances");

    std::fs::write(&doc, "[1, 2]").unwrap();
    env.run(&["config", "check", "sirene", &path])
        .expect_code(3)
        .expect_output("expected a JSON object of field names to values");
    std::fs::write(&doc, r#"{"api_key": "example-insee-key"}"#).unwrap();
    env.ok(&["config", "check", "sirene", &path])
        .expect_output("valid for plugin sirene");
}
