//! The Microsoft 365 calendar plugin (Graph) end to end: the real `passerelle` binary and
//! plugin library against the Graph emulator. The test routine (a token, the application
//! permission, the test mailbox's calendar) with good credentials, a wrong secret and an
//! application access policy that leaves the mailbox out; `calendar.sync` creating, updating
//! and deleting, keeping foreign events, changing nothing the second time, surviving the loss
//! of its state without duplicating events, and waiting out throttling with no failed item;
//! and `config create --from` moving an exchange-ews instance to calendar-graph.

use passerelle_e2e::TestEnv;
use passerelle_emulators::graph::{
    GraphEmulator, GraphOptions, StoredEvent, DEFAULT_CLIENT_ID, DEFAULT_TENANT,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CLIENT_SECRET: &str = "canary-graph-secret-5d1e";
const PLUGIN: &str = "passerelle_calendar_graph";
const ERP_ID: &str = "String {4c1d6a3e-8b52-4f0e-9d17-2a6e5b8c9f03} Name PasserelleErpId";

fn emulator() -> GraphEmulator {
    let mut opts = GraphOptions::default();
    opts.apps[0].client_secret = CLIENT_SECRET.into();
    GraphEmulator::start(opts).unwrap()
}

fn set_secret(env: &TestEnv, instance: &str, field: &str, value: &str) {
    env.run_with_stdin(
        &["config", "set", instance, field, "--stdin"],
        Some(&format!("{value}\n")),
    )
    .expect_code(0);
}

/// Instance `x` of calendar-graph on `env`, pointed at the emulator, enabled.
fn configure(env: &TestEnv, emu: &GraphEmulator, secret: &str, settings: &[(&str, &str)]) {
    env.ok(&["config", "create", "x", "--plugin", "calendar-graph"]);
    env.ok(&["config", "set", "x", "tenant_id", DEFAULT_TENANT]);
    env.ok(&["config", "set", "x", "client_id", DEFAULT_CLIENT_ID]);
    set_secret(env, "x", "client_secret", secret);
    env.ok(&["config", "set", "x", "authority_url", &emu.authority_url()]);
    env.ok(&["config", "set", "x", "graph_url", &emu.graph_url()]);
    env.ok(&["config", "set", "x", "test_mailbox", "jane@contoso.com"]);
    for (field, value) in settings {
        env.ok(&["config", "set", "x", field, value]);
    }
    env.ok(&["config", "enable", "x"]);
}

fn host(emu: &GraphEmulator, secret: &str, settings: &[(&str, &str)]) -> TestEnv {
    let env = TestEnv::with_plugins(&[PLUGIN]);
    configure(&env, emu, secret, settings);
    env
}

fn steps(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn test_routine_explains_a_wrong_secret_and_an_access_policy() {
    let emu = emulator();
    let env = host(&emu, CLIENT_SECRET, &[]);
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        steps(&report),
        pairs(&[
            ("get token", "ok"),
            ("check permission", "ok"),
            ("open calendar", "ok")
        ])
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("jane@contoso.com can be synchronised"),
        "{report:#}"
    );
    let request = emu.requests().pop().unwrap();
    assert_eq!(request.path, "/v1.0/users/jane@contoso.com/calendar");
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Bearer "));
    for text in [&run.stdout, &run.stderr, &env.data_dump()] {
        assert!(!text.contains(CLIENT_SECRET), "the client secret leaked");
    }

    // A wrong secret: the identity platform's code, explained, with the field to fix.
    let env = host(&emu, "not-the-secret", &[]);
    let report = env.run(&["test", "x", "--json"]).expect_code(1).json();
    assert_eq!(
        steps(&report),
        pairs(&[
            ("get token", "failed"),
            ("check permission", "skipped"),
            ("open calendar", "skipped")
        ])
    );
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("AADSTS7000215"), "{summary}");
    assert!(summary.contains("not its Secret ID"), "{summary}");

    // An application access policy that leaves the CEO's mailbox out: 403 explained.
    emu.restrict_app(DEFAULT_CLIENT_ID, &["jane@contoso.com"]);
    let env = host(&emu, CLIENT_SECRET, &[("test_mailbox", "ceo@contoso.com")]);
    let report = env.run(&["test", "x", "--json"]).expect_code(1).json();
    assert_eq!(
        steps(&report),
        pairs(&[
            ("get token", "ok"),
            ("check permission", "ok"),
            ("open calendar", "failed")
        ])
    );
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("ErrorAccessDenied"), "{summary}");
    assert!(summary.contains("AppOnly AccessPolicy"), "{summary}");
    assert!(
        summary.contains("Test-ApplicationAccessPolicy -Identity ceo@contoso.com"),
        "{summary}"
    );
    assert_eq!(emu.requests().pop().unwrap().status, 403);
}

fn appointment(id: &str, mailbox: &str, day: u32, subject: &str) -> Value {
    json!({
        "id": id,
        "mailbox": mailbox,
        "subject": subject,
        "start": format!("2025-03-{day:02}T09:00:00+01:00"),
        "end": format!("2025-03-{day:02}T10:30:00+01:00"),
        "location": "Site Lyon-Est",
        "body": "Intervention & contrôle <annuel>\nRef SO-1",
    })
}

fn sync(env: &TestEnv, mailboxes: &[&str], appointments: &[Value]) -> Value {
    let input = json!({
        "mailboxes": mailboxes,
        "window": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"},
        "appointments": appointments,
    });
    env.ok(&[
        "invoke",
        "calendar.sync",
        "--input",
        &input.to_string(),
        "--instance",
        "x",
    ])
    .json()
}

/// (created, updated, unchanged, deleted, errors) over every mailbox.
fn totals(output: &Value) -> (u64, u64, u64, u64, usize) {
    let list = output["mailboxes"].as_array().unwrap();
    let sum = |k: &str| list.iter().map(|m| m[k].as_u64().unwrap()).sum::<u64>();
    let errors = list
        .iter()
        .map(|m| m["errors"].as_array().unwrap().len())
        .sum();
    (
        sum("created"),
        sum("updated"),
        sum("unchanged"),
        sum("deleted"),
        errors,
    )
}

fn methods(emu: &GraphEmulator) -> BTreeSet<String> {
    emu.requests().iter().map(|r| r.method.clone()).collect()
}

fn erp_id(event: &StoredEvent) -> Option<&str> {
    event.properties.get(ERP_ID).map(String::as_str)
}

#[test]
fn sync_creates_updates_deletes_and_keeps_foreign_events() {
    let emu = emulator();
    emu.set_latency_ms(30);
    let env = host(
        &emu,
        CLIENT_SECRET,
        &[
            ("max_concurrency", "2"),
            ("time_zone", "Romance Standard Time"),
        ],
    );
    let boxes = ["jane@contoso.com", "bob@contoso.com", "user01@contoso.com"];
    let mut appointments = vec![
        appointment("A1", boxes[0], 3, "Visite"),
        appointment("A2", boxes[0], 4, "Audit"),
        appointment("A3", boxes[0], 5, "Formation"),
        appointment("B1", boxes[1], 6, "Chantier"),
        appointment("C1", boxes[2], 7, "Réunion"),
        json!({
            "id": "A-leave", "mailbox": boxes[0], "subject": "Congés",
            "start": "2025-03-10T00:00:00+01:00", "end": "2025-03-12T00:00:00+01:00"
        }),
    ];
    // Something Jane put in Outlook herself: read back, never touched.
    let dentist = emu.add_event(boxes[0], "Dentist", 1_741_248_000, 1_741_251_600);

    let first = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&first), (6, 0, 0, 0, 0), "{first:#}");
    assert!(emu.max_concurrent() <= 2, "max_concurrency 2 was exceeded");
    assert_eq!(
        emu.max_concurrent_per_mailbox(),
        1,
        "one request at a time per mailbox"
    );
    let jane = &first["mailboxes"][0];
    assert_eq!(jane["events"].as_array().unwrap().len(), 1, "{first:#}");
    assert_eq!(jane["events"][0]["id"], dentist.as_str());
    assert_eq!(jane["events"][0]["start"], "2025-03-06T08:00:00Z");
    let stored = emu.events(boxes[0]);
    let visit = stored.iter().find(|e| e.subject == "Visite").unwrap();
    assert_eq!(erp_id(visit), Some("A1"));
    assert!(!visit.is_reminder_on);
    assert_eq!(visit.start, 1_740_988_800); // 2025-03-03T08:00:00Z
    assert_eq!(visit.start_zone, "UTC");
    assert_eq!(visit.location, "Site Lyon-Est");
    assert_eq!(visit.body, "Intervention & contrôle <annuel>\nRef SO-1");
    let leave = stored.iter().find(|e| e.subject == "Congés").unwrap();
    assert!(leave.is_all_day);
    assert_eq!(leave.start_zone, "Romance Standard Time");
    assert_eq!(leave.end - leave.start, 2 * 86_400);
    // The dentist's event kept its reminder, its subject and no ERP id.
    let kept = stored.iter().find(|e| e.id == dentist).unwrap();
    assert_eq!((kept.subject.as_str(), erp_id(kept)), ("Dentist", None));

    // The same input again: nothing written, one calendar view per mailbox.
    emu.clear_requests();
    let second = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&second), (0, 0, 6, 0, 0), "{second:#}");
    assert_eq!(methods(&emu), BTreeSet::from(["GET".to_owned()]));
    assert_eq!(emu.requests().len(), 3);

    // The ERP changes A1, drops A2 and adds A4; in Outlook, Bob moves B1 and Jane deletes A3.
    appointments[0]["subject"] = json!("Visite (reportée)");
    appointments.remove(1);
    appointments.push(appointment("A4", boxes[0], 20, "Nouveau"));
    let b1 = emu.events(boxes[1])[0].id.clone();
    emu.edit_event(&b1, |e| {
        e.start += 3600;
        e.end += 3600;
    })
    .unwrap();
    let a3 = emu
        .events(boxes[0])
        .into_iter()
        .find(|e| e.subject == "Formation")
        .unwrap();
    assert!(emu.remove_event(&a3.id));
    let third = sync(&env, &boxes, &appointments);
    let jane = &third["mailboxes"][0];
    assert_eq!(
        (&jane["created"], &jane["updated"], &jane["deleted"]),
        (&json!(2), &json!(1), &json!(1)),
        "A4 and the deleted A3 created, A1 updated, A2 deleted: {third:#}"
    );
    assert_eq!(
        third["mailboxes"][1]["updated"], 1,
        "B1 moved back: {third:#}"
    );
    let subjects: Vec<String> = emu
        .events(boxes[0])
        .into_iter()
        .map(|e| e.subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "Visite (reportée)",
            "Formation",
            "Dentist",
            "Congés",
            "Nouveau"
        ]
    );
    assert_eq!(emu.events(boxes[1])[0].start, 1_741_248_000);
    let fourth = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&fourth), (0, 0, 6, 0, 0), "{fourth:#}");
}

#[test]
fn sync_survives_lost_state_and_waits_out_throttling() {
    let emu = emulator();
    // It deletes the embedded backend's state.sqlite3: embedded on every test pass.
    let env = TestEnv::with_plugins(&[PLUGIN]).embedded();
    configure(&env, &emu, CLIENT_SECRET, &[]);
    let boxes = ["jane@contoso.com", "bob@contoso.com"];
    // More events in Jane's calendar than one calendar view page (100): paging must hold.
    let mut appointments: Vec<Value> = (0..103)
        .map(|i| {
            appointment(
                &format!("SO-{i}"),
                boxes[usize::from(i >= 101)],
                1 + (i % 28) as u32,
                &format!("Visite {i}"),
            )
        })
        .collect();
    let first = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&first), (103, 0, 0, 0, 0), "{first:#}");
    assert_eq!(emu.events(boxes[0]).len(), 101);

    // A new host on the same mailboxes: no state, the events tell which appointment they
    // are, nothing is created twice.
    let fresh = host(&emu, CLIENT_SECRET, &[]);
    emu.clear_requests();
    let again = sync(&fresh, &boxes, &appointments);
    assert_eq!(totals(&again), (0, 0, 103, 0, 0), "{again:#}");
    assert_eq!(methods(&emu), BTreeSet::from(["GET".to_owned()]));
    assert!(
        emu.requests().iter().any(|r| r.param("$skip").is_some()),
        "the calendar view was paged"
    );
    assert_eq!(emu.events(boxes[0]).len() + emu.events(boxes[1]).len(), 103);
    // The plugin state of the first host deleted: the same.
    std::fs::remove_file(env.data.join("state.sqlite3")).unwrap();
    for extra in ["state.sqlite3-wal", "state.sqlite3-shm"] {
        let _ = std::fs::remove_file(env.data.join(extra));
    }
    assert_eq!(totals(&sync(&env, &boxes, &appointments)).0, 0);

    // Throttled: every 429 is waited out (Retry-After: 1) and nothing fails. One mailbox at
    // a time, so that the waits add up and can be timed.
    appointments[0]["subject"] = json!("Visite 0 (modifiée)");
    appointments.push(appointment("SO-new", boxes[1], 2, "Nouvelle"));
    fresh.ok(&["config", "set", "x", "max_concurrency", "1"]);
    emu.inject_throttling(3, 1);
    let started = std::time::Instant::now();
    let throttled = sync(&fresh, &boxes, &appointments);
    let elapsed = started.elapsed();
    assert_eq!(totals(&throttled), (1, 1, 102, 0, 0), "{throttled:#}");
    assert_eq!(emu.throttled(), 3);
    assert!(
        elapsed.as_secs_f64() >= 3.0,
        "Retry-After was not obeyed: {elapsed:?}"
    );
    eprintln!("sync of 104 appointments through 3 throttled answers: {elapsed:?}");
    assert_eq!(emu.events(boxes[0]).len() + emu.events(boxes[1]).len(), 104);
}

#[test]
fn config_create_from_carries_an_exchange_instance_over() {
    let emu = emulator();
    // Reads the instance file: embedded backend.
    let env = TestEnv::with_plugins(&[PLUGIN, "passerelle_exchange_ews"]).embedded();
    env.ok(&["config", "create", "ews", "--plugin", "exchange-ews"]);
    env.ok(&["config", "set", "ews", "use_oauth", "true"]);
    env.ok(&["config", "set", "ews", "tenant_id", DEFAULT_TENANT]);
    env.ok(&["config", "set", "ews", "client_id", DEFAULT_CLIENT_ID]);
    set_secret(&env, "ews", "client_secret", CLIENT_SECRET);
    env.ok(&[
        "config",
        "set",
        "ews",
        "authority_url",
        &emu.authority_url(),
    ]);
    env.ok(&["config", "set", "ews", "test_mailbox", "jane@contoso.com"]);

    let run = env.ok(&[
        "config",
        "create",
        "outlook",
        "--plugin",
        "calendar-graph",
        "--from",
        "ews",
    ]);
    for field in [
        "tenant_id",
        "client_id",
        "client_secret",
        "authority_url",
        "test_mailbox",
    ] {
        assert!(
            run.stdout.contains(field),
            "{field} not carried: {}",
            run.stdout
        );
    }
    assert!(!run.all().contains(CLIENT_SECRET));
    let show = env.ok(&["config", "show", "outlook", "--json"]).json();
    let field = |name: &str| {
        show["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("client_secret")["state"], "set");
    assert_eq!(field("tenant_id")["value"], DEFAULT_TENANT);
    assert_eq!(show["enabled"], false);
    let stored = std::fs::read_to_string(env.instance_file("outlook")).unwrap();
    assert!(
        !stored.contains(CLIENT_SECRET),
        "the secret is sealed again"
    );

    // Only the Graph URL is left to set; the carried secret opens a token.
    env.ok(&["config", "set", "outlook", "graph_url", &emu.graph_url()]);
    env.ok(&["config", "enable", "outlook"]);
    let report = env
        .run(&["test", "outlook", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(report["status"], "ok", "{report:#}");

    // An unknown source is named.
    let refused = env.run(&[
        "config",
        "create",
        "other",
        "--plugin",
        "calendar-graph",
        "--from",
        "nope",
    ]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.all().contains("nope"), "{}", refused.all());
}
