//! The approved-platform plugin end to end: the real `passerelle` binary and plugin library
//! against the XP Z12-013 platform emulator — an invoice followed to cashed, a refusal with
//! its reason, the directory routing, an incoming invoice collected exactly once although
//! the host is killed during its download, and the buyer's answers sent back.

use base64::Engine as _;
use passerelle_e2e::{artifacts, step, TestEnv};
use passerelle_emulators::afnor::{
    samples, AfnorEmulator, AfnorOptions, COMPANY_SIREN, CUSTOMER_SIREN, DISABLED_SIREN,
    PUBLIC_SIREN, SUPPLIER_SIREN,
};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET_VAR: &str = "AFNOR_CLIENT_SECRET_FOR_TEST";

fn emulator() -> AfnorEmulator {
    AfnorEmulator::start(AfnorOptions::default()).expect("start the AFNOR platform emulator")
}

/// A host with one enabled instance `pa` pointed at the emulator.
fn setup(emu: &AfnorEmulator) -> TestEnv {
    let mut env = TestEnv::with_plugins(&["passerelle_einvoice_afnor"]);
    env.env(SECRET_VAR, &emu.options().client_secret);
    let file = env.root.path().join("pa.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[instances.pa]
plugin = "einvoice-afnor"
enabled = true
[instances.pa.values]
siren = "{COMPANY_SIREN}"
flow_url = "{flow}"
directory_url = "{dir}"
token_url = "{token}"
client_id = "{client_id}"
client_secret = {{ env = "{SECRET_VAR}" }}
retry_delay_secs = 0
timeout_secs = 20
"#,
            flow = emu.flow_url(),
            dir = emu.directory_url(),
            token = emu.token_url(),
            client_id = emu.options().client_id,
        ),
    )
    .unwrap();
    env.ok(&["config", "apply", file.to_str().unwrap()]);
    env
}

fn invoke(env: &TestEnv, operation: &str, input: Value) -> Value {
    env.ok(&["invoke", operation, "--input", &input.to_string()])
        .json()
}

fn submit_input(name: &str, bytes: &[u8]) -> Value {
    json!({
        "file_name": name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "dematerialisation_code": "B2B"
    })
}

fn follow(env: &TestEnv) -> String {
    env.ok(&["tasks", "run", "pa", "follow_invoices"]).all()
}

fn codes(deposit: &Value) -> Vec<String> {
    deposit["lifecycle"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["provider_code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_invoice_is_followed_from_deposit_to_cashed() {
    let emu = emulator();
    let env = setup(&emu);

    let report = env.ok(&["test", "pa", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        step(&report, "find the company in the directory")["status"],
        "ok"
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("BOULANGERIE PASCALE"),
        "{report:#}"
    );

    let deposit = invoke(
        &env,
        "einvoice.submit",
        submit_input("FA-2026-001.xml", &samples::outgoing("FA-2026-001")),
    );
    let id = deposit["deposit_id"].as_str().unwrap().to_owned();
    assert_eq!(deposit["state"], "pending", "{deposit:#}");
    assert_eq!(deposit["provider_format"], "UBL");
    let flow = emu.flows().into_iter().find(|f| f.flow_id == id).unwrap();
    assert_eq!(flow.syntax, "UBL");
    assert_eq!(flow.ack, "Ok", "{:?}", flow.details);

    // The same file again is refused before it reaches the platform.
    let again = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &submit_input("FA-2026-001.xml", &samples::outgoing("FA-2026-001")).to_string(),
        ])
        .expect_code(3);
    assert!(
        again.all().contains("already sent as flow"),
        "{}",
        again.all()
    );
    assert_eq!(
        emu.flows().iter().filter(|f| f.direction == "Out").count(),
        1
    );

    // Each run reads one more status; the lifecycle ends at 212 Encaissée.
    let mut last = Value::Null;
    for _ in 0..12 {
        follow(&env);
        last = invoke(&env, "einvoice.status", json!({"deposit_id": id}));
        if last["lifecycle"]
            .as_array()
            .and_then(|l| l.last())
            .is_some_and(|e| e["state"] == "cashed")
        {
            break;
        }
    }
    assert_eq!(last["state"], "integrated", "{last:#}");
    assert_eq!(
        codes(&last),
        ["200", "201", "202", "203", "204", "205", "211", "212"],
        "{last:#}"
    );
    let end = last["lifecycle"].as_array().unwrap().last().unwrap();
    assert_eq!(end["state"], "cashed");
    assert_eq!(end["label"], "Encaissée");
    // Later runs record nothing twice.
    let summary = follow(&env);
    assert!(
        summary.contains("0 lifecycle status(es) recorded"),
        "{summary}"
    );
    let listed = invoke(&env, "einvoice.list", json!({}));
    assert_eq!(codes(&listed["deposits"][0]).len(), 8, "{listed:#}");
}

#[test]
fn a_refused_invoice_keeps_its_reason() {
    let emu = emulator();
    let env = setup(&emu);
    emu.script(
        "FA-2026-002",
        &[
            ("200", None),
            ("202", None),
            ("204", None),
            ("210", Some("Montant erroné : commande 4711 à 100 EUR")),
        ],
    );
    let deposit = invoke(
        &env,
        "einvoice.submit",
        submit_input(
            "FA-2026-002.pdf",
            &samples::factur_x("FA-2026-002", COMPANY_SIREN, CUSTOMER_SIREN),
        ),
    );
    assert_eq!(deposit["format"], "factur_x", "{deposit:#}");
    let id = deposit["deposit_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        follow(&env);
    }
    let status = invoke(&env, "einvoice.status", json!({"deposit_id": id}));
    assert_eq!(codes(&status), ["200", "202", "204", "210"], "{status:#}");
    let refused = status["lifecycle"].as_array().unwrap().last().unwrap();
    assert_eq!(refused["state"], "refused");
    assert_eq!(
        refused["reason"],
        "Montant erroné : commande 4711 à 100 EUR"
    );
    assert_eq!(refused["reason_code"], "AUTRE");
    let summary = follow(&env);
    assert!(
        summary.contains("0 invoice(s) in progress, 1 ended"),
        "{summary}"
    );
}

#[test]
fn the_directory_routes_and_refuses_unreachable_recipients() {
    let emu = emulator();
    let env = setup(&emu);

    let customer = invoke(&env, "directory.lookup", json!({"id": CUSTOMER_SIREN}));
    assert_eq!(customer["reachable"], true, "{customer:#}");
    assert_eq!(customer["entries"][0]["platform"], "approved_platform");
    let routed = invoke(
        &env,
        "directory.lookup",
        json!({"id": "98765432400001_ACHATS"}),
    );
    assert_eq!(routed["entries"][0]["routing_code"], "ACHATS", "{routed:#}");
    let public = invoke(&env, "directory.lookup", json!({"id": PUBLIC_SIREN}));
    assert_eq!(
        public["entries"][0]["platform"], "public_portal",
        "{public:#}"
    );
    assert_eq!(public["entries"][0]["public_entity"], true);
    let unknown = invoke(&env, "directory.lookup", json!({"id": "552100554"}));
    assert_eq!(unknown["reachable"], false);
    assert_eq!(unknown["entries"], json!([]));
    let bad = env
        .run(&[
            "invoke",
            "directory.lookup",
            "--input",
            r#"{"id":"702042756"}"#,
        ])
        .expect_code(3);
    assert!(bad.all().contains("Luhn"), "{}", bad.all());

    for (buyer, expected) in [
        (PUBLIC_SIREN, "Chorus Pro"),
        (DISABLED_SIREN, "cannot receive invoices now"),
        ("552100554", "does not know"),
    ] {
        let input = submit_input(
            "FA.xml",
            &samples::ubl(&format!("FA-{buyer}"), COMPANY_SIREN, buyer),
        );
        let r = env
            .run(&["invoke", "einvoice.submit", "--input", &input.to_string()])
            .expect_code(3);
        assert!(r.all().contains(expected), "{buyer}: {}", r.all());
        assert!(
            r.all().contains("was not sent") || r.all().contains("it was not"),
            "{}",
            r.all()
        );
    }
    assert!(emu.flows().is_empty(), "nothing may reach the Flow service");
}

/// Starts a collection (`einvoice.inbox` with `collect`, the code the `collect_invoices` task
/// runs) without waiting for it. Not `tasks run`: a killed `tasks run` keeps the task's lease
/// for the host's task deadline (30 min), so the next run would be refused.
fn spawn_collect(env: &TestEnv, secret: &str) -> std::process::Child {
    let mut cmd = Command::new(&artifacts().bin);
    env.storage_env(&mut cmd);
    cmd.arg("--data-dir")
        .arg(&env.data)
        .arg("--plugin-dir")
        .arg(&env.plugins)
        .args(["invoke", "einvoice.inbox", "--input", r#"{"collect":true}"#])
        .env_remove("PASSERELLE_SECRET_KEY")
        .env_remove("PASSERELLE_DATA_DIR")
        .env_remove("PASSERELLE_PLUGIN_DIRS")
        // The test's plugin files are unsigned (TestEnv does the same for its commands).
        .env("PASSERELLE_PLUGIN_POLICY", "allow-unsigned")
        .env(SECRET_VAR, secret)
        .current_dir(env.root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn passerelle")
}

#[test]
fn an_incoming_invoice_is_collected_once_even_when_the_host_is_killed_mid_download() {
    let emu = emulator();
    let env = setup(&emu);
    let original = samples::incoming("ACME-77");
    let flow = emu.deliver("ACME-77.xml", "CII", &original);

    emu.stall_downloads(true);
    let mut child = spawn_collect(&env, &emu.options().client_secret);
    let deadline = Instant::now() + Duration::from_secs(60);
    while emu.downloads(&flow) == 0 {
        assert!(
            Instant::now() < deadline,
            "the collection never started the download"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill passerelle");
    child.wait().expect("reap passerelle");
    emu.stall_downloads(false);

    let inbox = invoke(&env, "einvoice.inbox", json!({}));
    assert_eq!(
        inbox["invoices"],
        json!([]),
        "nothing is stored by a killed run: {inbox:#}"
    );

    let first = env.ok(&["tasks", "run", "pa", "collect_invoices"]).all();
    assert!(first.contains("1 new invoice(s) received"), "{first}");
    let second = env.ok(&["tasks", "run", "pa", "collect_invoices"]).all();
    assert!(second.contains("0 new invoice(s) received"), "{second}");
    assert_eq!(
        emu.downloads(&flow),
        2,
        "downloaded again once after the kill, then never"
    );

    let inbox = invoke(&env, "einvoice.inbox", json!({"collect": true}));
    let invoices = inbox["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{inbox:#}");
    let invoice = &invoices[0];
    assert_eq!(invoice["invoice_id"], flow.as_str());
    assert_eq!(invoice["invoice_number"], "ACME-77");
    assert_eq!(invoice["supplier"], SUPPLIER_SIREN);
    assert_eq!(invoice["format"], "cii");

    let fetched = invoke(&env, "einvoice.fetch", json!({"invoice_id": flow}));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(fetched["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, original);
    assert_eq!(
        fetched["invoice"]["content_sha256"],
        invoice["content_sha256"]
    );
}

#[test]
fn the_buyers_answers_go_back_through_the_flow_service() {
    let emu = emulator();
    let env = setup(&emu);
    let flow = emu.deliver(
        "ACME-78.xml",
        "UBL",
        &samples::ubl("ACME-78", SUPPLIER_SIREN, COMPANY_SIREN),
    );
    let inbox = invoke(
        &env,
        "einvoice.inbox",
        json!({"collect": true, "unanswered": true}),
    );
    assert_eq!(inbox["invoices"].as_array().unwrap().len(), 1, "{inbox:#}");

    let no_reason = env
        .run(&[
            "invoke",
            "einvoice.respond",
            "--input",
            &json!({"invoice_id": flow, "answer": "disputed"}).to_string(),
        ])
        .expect_code(3);
    assert!(no_reason.all().contains("reason"), "{}", no_reason.all());
    assert!(emu.answers().is_empty());

    let approved = invoke(
        &env,
        "einvoice.respond",
        json!({"invoice_id": flow, "answer": "approved"}),
    );
    assert_eq!(approved["event"]["provider_code"], "205", "{approved:#}");
    let paid = invoke(
        &env,
        "einvoice.respond",
        json!({"invoice_id": flow, "answer": "payment_transmitted"}),
    );
    assert_eq!(paid["event"]["state"], "payment_transmitted");
    let answers = emu.answers();
    assert_eq!(
        answers
            .iter()
            .map(|a| (a.invoice_number.as_str(), a.code.as_str()))
            .collect::<Vec<_>>(),
        [("ACME-78", "205"), ("ACME-78", "211")]
    );
    assert_eq!(
        answers[0].flow_id,
        approved["response_id"].as_str().unwrap()
    );
    let late = env
        .run(&[
            "invoke",
            "einvoice.respond",
            "--input",
            &json!({"invoice_id": flow, "answer": "refused", "reason": "trop tard"}).to_string(),
        ])
        .expect_code(3);
    assert!(late.all().contains("no further answer"), "{}", late.all());

    // A refusal carries its reason to the supplier.
    let other = emu.deliver(
        "ACME-79.xml",
        "UBL",
        &samples::ubl("ACME-79", SUPPLIER_SIREN, COMPANY_SIREN),
    );
    invoke(&env, "einvoice.inbox", json!({"collect": true}));
    invoke(
        &env,
        "einvoice.respond",
        json!({"invoice_id": other, "answer": "refused", "reason": "Commande inconnue", "reason_code": "DEST_ERR"}),
    );
    let refusal = emu.answers().into_iter().last().unwrap();
    assert_eq!(refusal.code, "210");
    assert_eq!(refusal.reason.as_deref(), Some("Commande inconnue"));
    assert_eq!(refusal.reason_code.as_deref(), Some("DEST_ERR"));
    let answered = invoke(&env, "einvoice.inbox", json!({"unanswered": true}));
    assert_eq!(answered["invoices"], json!([]), "{answered:#}");
}

/// Chorus Pro and the approved platform side by side: the directory entry of each buyer
/// decides the instance — the public portal through `chorus-pro`, a company through `pa`.
#[test]
fn public_buyers_go_through_chorus_pro_and_companies_through_the_platform() {
    use passerelle_emulators::chorus_pro::{self, ChorusProEmulator, ChorusProOptions};
    let pa = emulator();
    let cpro = ChorusProEmulator::start(ChorusProOptions::default()).unwrap();
    let mut env = setup(&pa);
    env.add_plugin("passerelle_chorus_pro");
    env.env("CPRO_SECRET_FOR_AFNOR_TEST", &cpro.options().client_secret);
    env.env(
        "CPRO_PASSWORD_FOR_AFNOR_TEST",
        &cpro.options().technical_password,
    );
    let file = env.root.path().join("cpro.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[instances.cpro]
plugin = "chorus-pro"
enabled = true
[instances.cpro.values]
oauth_url = "{oauth}"
api_url = "{api}"
environment = "sandbox"
client_id = "{client_id}"
client_secret = {{ env = "CPRO_SECRET_FOR_AFNOR_TEST" }}
technical_login = "{login}"
technical_password = {{ env = "CPRO_PASSWORD_FOR_AFNOR_TEST" }}
structure_id = "{siret}"
retry_delay_secs = 0
"#,
            oauth = cpro.oauth_url(),
            api = cpro.url(),
            client_id = cpro.options().client_id,
            login = cpro.options().technical_login,
            siret = chorus_pro::SUPPLIER_SIRET,
        ),
    )
    .unwrap();
    env.ok(&["config", "apply", file.to_str().unwrap()]);

    // Two providers serve einvoice.submit: the caller must choose.
    let ambiguous = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &submit_input("x.xml", &samples::outgoing("X")).to_string(),
        ])
        .expect_code(3);
    assert!(
        ambiguous.all().contains("cpro") && ambiguous.all().contains("pa"),
        "{}",
        ambiguous.all()
    );

    let invoices = [
        (
            PUBLIC_SIREN,
            "FA-PUB-1.xml",
            chorus_pro::samples::ubl_invoice("FA-PUB-1"),
        ),
        (
            CUSTOMER_SIREN,
            "FA-PRIV-1.xml",
            samples::outgoing("FA-PRIV-1"),
        ),
    ];
    for (buyer, name, bytes) in invoices {
        let entry = invoke(&env, "directory.lookup", json!({"id": buyer}));
        let instance = if entry["entries"][0]["platform"] == "public_portal" {
            "cpro"
        } else {
            "pa"
        };
        let mut input = submit_input(name, &bytes);
        input["dematerialisation_code"] = json!("CHORUS_DEMATERIALIZED");
        let out = env
            .ok(&[
                "invoke",
                "einvoice.submit",
                "--instance",
                instance,
                "--input",
                &input.to_string(),
            ])
            .json();
        assert!(
            out["deposit_id"].as_str().is_some_and(|d| !d.is_empty()),
            "{out:#}"
        );
    }
    assert_eq!(
        cpro.deposits().len(),
        1,
        "the public invoice went to Chorus Pro"
    );
    assert_eq!(
        pa.flows().iter().filter(|f| f.direction == "Out").count(),
        1,
        "the private one to the platform"
    );
}
