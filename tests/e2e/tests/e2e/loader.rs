//! The loader against deliberately broken libraries: each is refused (or its panics are
//! contained) with a reason that says what to do, and the host keeps working.

use passerelle_e2e::{library_file_name, TestEnv};

const BROKEN: &[&str] = &[
    "fixture_not_a_plugin",
    "fixture_bad_layout",
    "fixture_bad_version",
    "fixture_panic_everywhere",
];

fn refusal<'a>(listing: &'a serde_json::Value, crate_name: &str) -> &'a str {
    let file = library_file_name(crate_name);
    listing["refused"]
        .as_array()
        .expect("refused list")
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(&file)))
        .and_then(|r| r["reason"].as_str())
        .unwrap_or_else(|| panic!("{file} was not refused: {listing:#}"))
}

#[test]
fn broken_plugins_are_refused_with_reasons_and_good_ones_still_load() {
    let mut crates = BROKEN.to_vec();
    crates.push("passerelle_sirene");
    let env = TestEnv::with_plugins(&crates);
    std::fs::write(
        env.plugins.join(library_file_name("garbage")),
        b"this is not a library",
    )
    .unwrap();

    let listing = env.ok(&["plugins", "--json"]).json();
    let loaded: Vec<&str> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(loaded, vec!["sirene"], "{listing:#}");

    let r = refusal(&listing, "fixture_not_a_plugin");
    assert!(r.contains("not a Passerelle plugin"), "{r}");
    let r = refusal(&listing, "fixture_bad_layout");
    assert!(
        r.contains("layout") && r.contains("rebuild it against passerelle-plugin-api 1."),
        "{r}"
    );
    assert!(
        r.lines().count() == 1 && r.len() < 400,
        "layout report must stay in the debug log: {r}"
    );
    let r = refusal(&listing, "fixture_bad_version");
    assert!(
        r.contains("built for plugin API 2.0.0") && r.contains("accepts 1.0.0"),
        "{r}"
    );
    let r = refusal(&listing, "fixture_panic_everywhere");
    assert!(
        r.contains("panicked in manifest") && r.contains("manifest exploded"),
        "{r}"
    );
    let r = refusal(&listing, "garbage");
    assert!(
        r.contains("not a valid") && r.contains("copy it again"),
        "{r}"
    );

    // The human listing says the same.
    env.ok(&["plugins"])
        .expect_output("Refused files:")
        .expect_output("fixture_bad_layout");
}

#[test]
fn layout_report_is_in_the_debug_log_only() {
    let env = TestEnv::with_plugins(&["fixture_bad_layout"]);
    let quiet = env.ok(&["plugins"]);
    let debug = env.ok(&["--log", "debug", "plugins"]);
    assert!(
        debug.stderr.len() > quiet.stderr.len() + 200,
        "{}",
        debug.stderr
    );
    assert!(debug.stderr.contains("layout mismatch"), "{}", debug.stderr);
}

#[test]
fn duplicate_plugin_id_is_refused_naming_the_first_file() {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    let copy = env.plugins.join(library_file_name("zz_sirene_copy"));
    std::fs::copy(
        env.plugins.join(library_file_name("passerelle_sirene")),
        &copy,
    )
    .unwrap();
    let listing = env.ok(&["plugins", "--json"]).json();
    assert_eq!(listing["plugins"].as_array().unwrap().len(), 1);
    let r = refusal(&listing, "zz_sirene_copy");
    assert!(
        r.contains("already provided by") && r.contains("passerelle_sirene"),
        "{r}"
    );
}

#[test]
fn panics_in_calls_are_contained_and_redacted() {
    let env = TestEnv::with_plugins(&["fixture_panic_on_call"]);
    env.ok(&["config", "create", "p", "--plugin", "panic-on-call"]);
    env.run_with_stdin(
        &["config", "set", "p", "token", "--stdin"],
        Some("canary-secret-4242\n"),
    )
    .expect_code(0);
    let run = env.run(&["test", "p", "--json"]).expect_code(1);
    let report = run.json();
    assert_eq!(report["status"], "failed");
    let text = run.all();
    assert!(text.contains("panicked in test"), "{text}");
    assert!(text.contains("boom with token [redacted]"), "{text}");
    assert!(
        !text.contains("canary-secret-4242"),
        "secret leaked: {text}"
    );

    env.ok(&["config", "enable", "p"]);
    let run = env
        .run(&["invoke", "other.echo", "--input", "{\"x\":1}"])
        .expect_code(1);
    assert!(run.stderr.contains("panicked in invoke"), "{}", run.stderr);
    assert!(
        !run.all().contains("canary-secret-4242"),
        "secret leaked: {}",
        run.all()
    );

    // Nothing was lost: the instance is still there and usable.
    env.ok(&["config", "set", "p", "behaviour", "succeed"]);
    env.ok(&["invoke", "other.echo", "--input", "{\"x\":1}"])
        .expect_output("\"x\": 1");
}

#[test]
fn a_hanging_test_routine_is_abandoned_at_the_deadline() {
    let env = TestEnv::with_plugins(&["fixture_panic_on_call"]);
    env.ok(&["config", "create", "h", "--plugin", "panic-on-call"]);
    env.ok(&["config", "set", "h", "behaviour", "hang"]);
    let run = env.run(&["--deadline", "1", "test", "h"]).expect_code(1);
    assert!(
        run.stdout.contains("did not finish within 1 s"),
        "{}",
        run.all()
    );
    assert!(run.elapsed.as_secs() < 20, "took {:?}", run.elapsed);
    // The failure is recorded as the last result.
    env.ok(&["config", "list"])
        .expect_output("last test: failed");
}
