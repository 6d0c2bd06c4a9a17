//! Instances and audit history on PostgreSQL (issue 16): two nodes on one database see each
//! other's changes at once and refuse each other's stale writes; `config apply` is in the
//! history on both backends; `storage migrate` moves a data directory into PostgreSQL with
//! the same configuration and secrets.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::{scratch_database, TestEnv};
use serde_json::Value;
use std::time::{Duration, Instant};

const CANARY: &str = "canary-pg-5e1d07";

fn field<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no field {name} in {doc:#}"))
}

/// Asks node B's API until `ready` holds for the instance, at most one second after the
/// change was made on node A.
fn served_within_a_second(
    server: &Server,
    token: &str,
    changed_at: Instant,
    what: &str,
    ready: impl Fn(u16, &Value) -> bool,
) -> Value {
    loop {
        let (status, doc) = server.http("GET", "/api/instances/s", Some(token), None);
        if ready(status, &doc) {
            return doc;
        }
        assert!(
            changed_at.elapsed() < Duration::from_secs(1),
            "{what}: node B still answers {status} {doc:#} one second after node A's change"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_change_through_node_a_cli_is_served_by_node_b_within_a_second_and_revisions_hold_across_nodes()
{
    let a = TestEnv::postgres();
    a.add_plugin("passerelle_sirene");
    a.ok(&["config", "list"]);
    let b = a.node_of();
    let token = admin_token(&b);
    let server = Server::start(&b, &[]);

    a.ok(&["config", "create", "s", "--plugin", "sirene"]);
    let created = Instant::now();
    served_within_a_second(&server, &token, created, "create", |status, _| {
        status == 200
    });
    a.ok(&["config", "set", "s", "timeout_secs", "7"]);
    let set = Instant::now();
    let doc = served_within_a_second(&server, &token, set, "set", |status, doc| {
        status == 200 && field(doc, "timeout_secs")["value"] == 7
    });
    assert_eq!(doc["revision"], 2, "{doc:#}");

    // Node B's API read revision 2; node A's CLI moves it to 3: B's write is refused.
    a.ok(&[
        "config",
        "set",
        "s",
        "timeout_secs",
        "8",
        "--if-revision",
        "2",
    ]);
    let (status, refusal) = server.http(
        "PUT",
        "/api/instances/s/fields/timeout_secs",
        Some(&token),
        Some(r#"{"value": 9, "revision": 2}"#),
    );
    assert_eq!(status, 409, "{refusal:#}");
    assert_eq!(refusal["code"], "stale_revision", "{refusal:#}");
    // And the other way round: B writes revision 4, A's CLI based on 3 is refused.
    let (status, doc) = server.http(
        "PUT",
        "/api/instances/s/fields/timeout_secs",
        Some(&token),
        Some(r#"{"value": 9, "revision": 3}"#),
    );
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["revision"], 4, "{doc:#}");
    let r = a
        .run(&[
            "config",
            "set",
            "s",
            "timeout_secs",
            "10",
            "--if-revision",
            "3",
        ])
        .expect_code(3);
    assert!(
        r.stderr.contains("changed by someone else") && r.stderr.contains("revision 4"),
        "{}",
        r.stderr
    );
    a.ok(&["config", "get", "s", "timeout_secs"])
        .expect_output("9");

    // One history for both nodes: node A's command line and node B's API.
    let (status, history) = server.http("GET", "/api/instances/s/audit", Some(&token), None);
    assert_eq!(status, 200, "{history:#}");
    let actors: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(actors[0], "token:tests", "{history:#}");
    assert!(
        actors[1..].iter().all(|a| a.starts_with("cli:")) && actors.len() == 4,
        "{history:#}"
    );
}

/// `config apply` provisions through the command line; the console's history (the same
/// list as `/api/instances/{id}/audit`) shows it, on both backends.
#[test]
fn config_apply_is_audited_and_shown_in_the_history_on_both_backends() {
    for mut env in [TestEnv::new().embedded(), TestEnv::postgres()] {
        env.add_plugin("passerelle_sirene");
        env.env("SIRENE_KEY_FOR_TEST", CANARY);
        let file = env.root.path().join("provision.toml");
        std::fs::write(
            &file,
            r#"
[instances.s]
plugin = "sirene"
[instances.s.values]
api_key = { env = "SIRENE_KEY_FOR_TEST" }
timeout_secs = 5
"#,
        )
        .unwrap();
        env.ok(&["config", "apply", file.to_str().unwrap()])
            .expect_output("created s");
        let token = admin_token(&env);
        let server = Server::start(&env, &[]);
        let (status, history) = server.http("GET", "/api/instances/s/audit", Some(&token), None);
        let backend = env.backend().name();
        assert_eq!(status, 200, "{backend}: {history:#}");
        let entries = history.as_array().unwrap();
        let find = |action: &str, field: Option<&str>| {
            entries
                .iter()
                .find(|e| e["action"] == action && e["field"].as_str() == field)
                .unwrap_or_else(|| panic!("{backend}: no {action} {field:?} in {history:#}"))
        };
        let created = find("instance.create", None);
        assert!(
            created["actor"].as_str().unwrap().starts_with("cli:"),
            "{created}"
        );
        assert_eq!(find("field.set", Some("timeout_secs"))["new"], "5");
        assert_eq!(find("field.set", Some("api_key"))["new"], "changed");
        assert!(!history.to_string().contains(CANARY), "{history:#}");
        // The secret is stored sealed, in the files or in the database's rows.
        let dump = env.data_dump();
        assert!(
            !dump.contains(CANARY),
            "{backend}: the secret is stored in plain text"
        );
        assert!(
            dump.contains("enc:v1:"),
            "{backend}: no sealed secret in {dump}"
        );
    }
}

/// A populated embedded data directory, migrated, then served from PostgreSQL: the same
/// `config show`, the same sealed secrets (which still open with the key file).
#[test]
fn storage_migrate_then_serving_from_postgres_gives_the_same_configuration_and_secrets() {
    let mut env = TestEnv::with_plugins(&["passerelle_sirene"]).embedded();
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env.ok(&["config", "set", "s", "timeout_secs", "7"]);
    env.run_with_stdin(
        &["config", "set", "s", "api_key", "--stdin"],
        Some(&format!("{CANARY}\n")),
    )
    .expect_code(0);
    env.ok(&["config", "create", "t", "--plugin", "sirene"]);
    let show = env.ok(&["config", "show", "s"]).stdout;
    let list = env.ok(&["config", "list", "--json"]).stdout;
    let sealed = env
        .store()
        .get(&passerelle::ids::InstanceId::new("s").unwrap())
        .unwrap()
        .secrets;
    assert!(sealed.contains_key("api_key"));

    let url = scratch_database();
    let r = env.ok(&["storage", "migrate", "--to", &url]);
    assert!(
        r.stdout
            .contains("instances        2 in the data directory, 2 in PostgreSQL: ok")
            && r.stdout.contains("audit"),
        "{}",
        r.stdout
    );
    // Once is enough: a second copy is refused, saying what to do.
    let again = env
        .run(&["storage", "migrate", "--to", &url])
        .expect_code(3);
    assert!(
        again.stderr.contains("not empty") && again.stderr.contains("--allow-non-empty"),
        "{}",
        again.stderr
    );

    // Serve from PostgreSQL; the instance files are moved away so nothing can read them.
    std::fs::rename(
        env.data.join("instances"),
        env.data.join("instances.migrated"),
    )
    .unwrap();
    env.database = Some(url);
    assert_eq!(env.ok(&["config", "show", "s"]).stdout, show);
    assert_eq!(env.ok(&["config", "list", "--json"]).stdout, list);
    let served = env
        .store()
        .get(&passerelle::ids::InstanceId::new("s").unwrap())
        .unwrap()
        .secrets;
    assert_eq!(served, sealed);
    let key =
        passerelle::secrets::SecretKey::load_or_create(&env.data.join("keys/secret.key")).unwrap();
    assert_eq!(
        key.open("s", "api_key", &served["api_key"]).unwrap(),
        CANARY
    );
    // The history came along: the command line's creation of `s` is in it.
    let history = env.audit().list(Some("s"), 10).unwrap();
    assert!(
        history.iter().any(|e| e.action == "instance.create"),
        "{history:?}"
    );
    let status = env.ok(&["storage", "status", "--json"]).json();
    assert_eq!(status["backend"], "postgres", "{status:#}");
    let counts = status["counts"].as_array().unwrap();
    assert!(
        counts.iter().any(|c| c[0] == "instances" && c[1] == 2),
        "{status:#}"
    );
    assert!(
        status["schema_version"].as_i64().unwrap() >= 2,
        "{status:#}"
    );
}
