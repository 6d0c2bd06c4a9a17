//! Two nodes on one PostgreSQL database, end to end with the real binary: an administrator
//! created with `passerelle admin` on node A signs in on node B; an API token revoked on A is
//! refused by B within a second (B had it cached); two `serve` nodes with one webhook deliver
//! each Universign completion (stored by a third process, the command line) exactly once; `/readyz` leaves the pool when the database goes.

use passerelle_e2e::receiver::Receiver;
use passerelle_e2e::serve::Server;
use passerelle_e2e::TestEnv;
use passerelle_emulators::universign::{BadCredentials, UniversignEmulator, UniversignOptions};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const NODE_A_PASSWORD: &str = "set-on-node-A-Pa55word";

/// Signs in through the console's form on `server`; the session cookie (`name=value`).
fn sign_in(server: &Server, user: &str, password: &str) -> Option<String> {
    // The form's double-submit token: any value, the same in the cookie and the form.
    let form =
        format!("_csrf=e2e-form-token&next=%2Finstances&username={user}&password={password}");
    let (status, head, _) = server.http_with_headers(
        "POST",
        "/login",
        None,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "passerelle_login=e2e-form-token"),
        ],
        Some(&form),
    );
    if status != 303 {
        return None;
    }
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .find(|v| v.starts_with("passerelle_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

#[test]
fn an_admin_set_on_node_a_signs_in_on_node_b_and_a_token_revoked_on_a_is_refused_by_b_at_once() {
    let a = TestEnv::postgres();
    a.run_with_stdin(
        &["admin", "set-password"],
        Some(&format!("{NODE_A_PASSWORD}\n")),
    )
    .expect_code(0);
    let b = a.node_of();
    let server_b = Server::start(&b, &["--log", "info"]);

    // The account created on A (B's start did not create another `admin`).
    assert!(
        sign_in(&server_b, "admin", "serve-e2e-Pa55word").is_none(),
        "B's own bootstrap password must not replace the account set on A"
    );
    let cookie = sign_in(&server_b, "admin", NODE_A_PASSWORD).expect("signed in on B");
    let (status, _, me) =
        server_b.http_with_headers("GET", "/api/session", None, &[("Cookie", &cookie)], None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["actor"], "admin", "{me}");
    assert_eq!(me["kind"], "session", "{me}");

    // A token created on A works on B, and B caches it.
    let token = a
        .ok(&[
            "admin", "token", "create", "--name", "erp", "--scope", "admin",
        ])
        .stdout
        .trim()
        .to_owned();
    for _ in 0..3 {
        let (status, body) = server_b.http("GET", "/api/session", Some(&token), None);
        assert_eq!(status, 200, "{body}");
    }
    // Revoked on A: refused by B within one second.
    a.ok(&["admin", "token", "revoke", "erp"]);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = server_b.http("GET", "/api/session", Some(&token), None);
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts the token revoked on A after {:?} (status {status})",
            revoked_at.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "revocation on A refused by B after {:?}",
        revoked_at.elapsed()
    );
    // `admin token list` on B shows the revocation made on A.
    let list = b.ok(&["admin", "token", "list", "--json"]).json();
    assert!(list[0]["revoked_ms"].is_i64(), "{list}");
    assert!(!server_b.log().contains(NODE_A_PASSWORD));
    assert!(!server_b.log().contains(&token));
}

#[test]
fn two_serve_nodes_deliver_each_universign_completion_exactly_once() {
    const SECRET: &str = "whsec-e2e-cluster-7d1e0c4b";
    const PASSWORD: &str = "canary-universign-pw-cluster";
    let emu = UniversignEmulator::start(UniversignOptions {
        user: "erp@example.com".into(),
        password: PASSWORD.into(),
        bad_credentials: BadCredentials::Fault,
        ..UniversignOptions::default()
    })
    .unwrap();
    let a = TestEnv::postgres();
    a.add_plugin("passerelle_universign");
    a.ok(&["config", "create", "u", "--plugin", "universign"]);
    a.ok(&["config", "set", "u", "url", &emu.url()]);
    a.ok(&["config", "set", "u", "user", "erp@example.com"]);
    a.run_with_stdin(
        &["config", "set", "u", "password", "--stdin"],
        Some(PASSWORD),
    )
    .expect_code(0);
    a.ok(&["config", "set", "u", "enabled", "true"]);
    // The servers' schedulers stay out of it: a command-line task run stores the events, so
    // both nodes' workers discover them in the shared outbox at the same time.
    a.ok(&["config", "set", "u", "poll_interval_secs", "3600"]);
    a.ok(&["config", "set", "u", "poll_start_delay_secs", "3600"]);
    a.ok(&["config", "enable", "u"]);
    let receiver = Receiver::start(&[], 200);
    a.run_with_stdin(
        &[
            "webhooks",
            "add",
            &receiver.url(),
            "--events",
            "esign.completed",
        ],
        Some(&format!("{SECRET}\n")),
    )
    .expect_code(0);
    let b = a.node_of();
    let node_a = Server::start(&a, &["--log", "info"]);
    let node_b = Server::start(&b, &["--log", "info"]);

    // Three transactions signed at once: three events, each one to deliver.
    let mut ids = HashSet::new();
    for n in 0..3 {
        let input = json!({
            "documents": [{"name": format!("DEV-{n}.pdf"), "content_base64": "JVBERi0xLjQKJSVFT0YK"}],
            "signers": [{"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.com"}],
            "custom_id": format!("DEV-{n}"),
        })
        .to_string();
        let tx = a.ok(&["invoke", "esign.request", "--input", &input]).json();
        ids.insert(tx["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        emu.sign_all(id).unwrap();
    }
    a.ok(&["tasks", "run", "u", "poll_signatures"])
        .expect_output("3 completed");
    receiver.wait_accepted("three completions delivered", 3, Duration::from_secs(60));
    // Both workers keep looking at the shared outbox for a while: nothing is sent twice.
    std::thread::sleep(Duration::from_millis(2500));
    let all = receiver.received();
    let delivered: Vec<String> = all
        .iter()
        .map(|r| {
            r.json()["data"]["transaction_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        all.len(),
        3,
        "exactly one delivery per event: {delivered:?}"
    );
    assert_eq!(delivered.iter().cloned().collect::<HashSet<_>>(), ids);
    for r in &all {
        r.verify(SECRET).unwrap();
    }
    let (on_a, on_b) = (
        node_a.log().matches("webhook delivered").count(),
        node_b.log().matches("webhook delivered").count(),
    );
    assert_eq!(on_a + on_b, 3, "{}\n{}", node_a.log(), node_b.log());
    eprintln!("deliveries sent by node A: {on_a}, by node B: {on_b}");
    // The history, read from either node, shows one attempt each.
    let history = b.ok(&["webhooks", "history", "--json"]).json();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 3, "{history:#?}");
    assert!(history
        .iter()
        .all(|h| h["state"] == "delivered" && h["attempts"] == 1));
}

#[test]
fn readyz_leaves_the_pool_when_the_database_is_gone() {
    let env = TestEnv::postgres();
    env.add_plugin("passerelle_universign");
    let server = Server::start(&env, &[]);
    let (status, body) = server.http("GET", "/readyz", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["backend"], "postgres");
    assert_eq!(body["checks"]["storage"], "ok");

    // Drop this node's database (from another scratch database of the test server).
    let url = env.database.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let other =
        passerelle::storage::DatabaseUrl::parse(&passerelle_e2e::scratch_database()).unwrap();
    let admin = passerelle::storage::Pg::connect(&other, &[]).unwrap();
    admin
        .run(move |pool| async move {
            pool.get()
                .await?
                .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await?;
            Ok(())
        })
        .unwrap();
    let (status, body) = server.http("GET", "/readyz", None, None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["storage"], "unreachable");
    assert!(!body.to_string().contains(&url), "{body}");
}
