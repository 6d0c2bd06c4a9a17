//! The Chorus Pro plugin end to end: the real `passerelle` binary and plugin library against
//! the Chorus Pro emulator — test routine, deposits of generated Factur-X, UBL and CII files,
//! states that progress, every failed state, invoices followed to payment, the recipient's
//! requirements, the attachment of the technical account, retries after 503, the quota and
//! the environment guard.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.

use base64::Engine as _;
use passerelle_e2e::{step, TestEnv};
use passerelle_emulators::chorus_pro::{
    samples, ChorusProEmulator, ChorusProOptions, DepositOutcome, HealthShape, STRICT_BUYER_SIRET,
    SUPPLIER_SIRET, SYNTAX_CII, SYNTAX_FACTURX, SYNTAX_UBL,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECRET_VAR: &str = "CPRO_CLIENT_SECRET_FOR_TEST";
const PASSWORD_VAR: &str = "CPRO_TECH_PASSWORD_FOR_TEST";

fn emulator(options: ChorusProOptions) -> ChorusProEmulator {
    ChorusProEmulator::start(options).expect("start the Chorus Pro emulator")
}

/// A host with one enabled instance `cpro` pointed at the emulator (sandbox, explicit since
/// the URLs are local), provisioned from a file with its secrets from the environment.
fn setup(emu: &ChorusProEmulator, extra: &str) -> TestEnv {
    let mut env = TestEnv::with_plugins(&["passerelle_chorus_pro"]);
    provision(&mut env, emu, extra);
    env
}

/// Applies the `cpro` instance of [`setup`] to `env` (which has the plugin); returns the
/// provisioning file, to apply it on other nodes too.
pub(crate) fn provision(
    env: &mut TestEnv,
    emu: &ChorusProEmulator,
    extra: &str,
) -> std::path::PathBuf {
    let o = emu.options();
    env.env(SECRET_VAR, &o.client_secret);
    env.env(PASSWORD_VAR, &o.technical_password);
    let file = env.root.path().join("chorus.toml");
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
client_secret = {{ env = "{SECRET_VAR}" }}
technical_login = "{login}"
technical_password = {{ env = "{PASSWORD_VAR}" }}
structure_id = "{SUPPLIER_SIRET}"
retry_delay_secs = 0
{extra}
"#,
            oauth = emu.oauth_url(),
            api = emu.url(),
            client_id = o.client_id,
            login = o.technical_login,
        ),
    )
    .unwrap();
    env.ok(&["config", "apply", file.to_str().unwrap()]);
    file
}

pub(crate) fn submit_input(name: &str, bytes: &[u8]) -> String {
    json!({
        "file_name": name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "dematerialisation_code": "CHORUS_DEMATERIALIZED"
    })
    .to_string()
}

fn submit(env: &TestEnv, name: &str, bytes: &[u8]) -> Value {
    env.ok(&[
        "invoke",
        "einvoice.submit",
        "--input",
        &submit_input(name, bytes),
    ])
    .json()
}

fn status(env: &TestEnv, deposit: &str) -> Value {
    env.ok(&[
        "invoke",
        "einvoice.status",
        "--input",
        &json!({ "deposit_id": deposit }).to_string(),
    ])
    .json()
}

fn set_secret(env: &TestEnv, field: &str, value: &str) {
    env.run_with_stdin(
        &["config", "set", "cpro", field, "--stdin"],
        Some(&format!("{value}\n")),
    )
    .expect_code(0);
}

#[test]
fn test_routine_names_what_is_wrong() {
    let emu = emulator(ChorusProOptions::default());
    let env = setup(&emu, "");
    let o = emu.options().clone();

    let report = env.ok(&["test", "cpro", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("ACME FOURNITURES SAS"),
        "{report:#}"
    );
    assert_eq!(step(&report, "check attachment")["status"], "ok");
    // Every healthy shape of the health check passes; a real failure fails.
    emu.set_health_shape(HealthShape::Spring);
    let report = env.ok(&["test", "cpro", "--json"]).json();
    assert_eq!(step(&report, "reach API")["status"], "ok", "{report:#}");
    emu.set_health_shape(HealthShape::Failing);
    let report = env.run(&["test", "cpro", "--json"]).expect_code(1).json();
    assert_eq!(step(&report, "reach API")["status"], "failed", "{report:#}");
    emu.set_health_shape(HealthShape::NumberCode);

    set_secret(&env, "client_secret", "not-the-secret");
    let r = env.run(&["test", "cpro", "--json"]).expect_code(1);
    let report = r.json();
    let token = step(&report, "get token");
    assert_eq!(token["status"], "failed");
    assert!(
        token["detail"]
            .as_str()
            .unwrap()
            .starts_with("client_secret: PISTE refused"),
        "{token:#}"
    );
    assert_eq!(step(&report, "reach API")["status"], "skipped");
    set_secret(&env, "client_secret", &o.client_secret);

    set_secret(&env, "technical_password", "not-the-password");
    let report = env.run(&["test", "cpro", "--json"]).expect_code(1).json();
    let reach = step(&report, "reach API");
    assert_eq!(reach["status"], "failed");
    assert!(
        reach["detail"]
            .as_str()
            .unwrap()
            .starts_with("technical_password: Chorus Pro refused the technical account"),
        "{reach:#}"
    );
    set_secret(&env, "technical_password", &o.technical_password);

    env.ok(&["config", "set", "cpro", "structure_id", "99999999999999"]);
    let r = env.run(&["test", "cpro"]).expect_code(1);
    assert!(
        r.stdout
            .contains("structure_id: Chorus Pro found no structure SIRET 99999999999999"),
        "{}",
        r.stdout
    );
    // The structure exists but the technical account is not attached to it.
    env.ok(&["config", "set", "cpro", "structure_id", SUPPLIER_SIRET]);
    emu.detach(SUPPLIER_SIRET);
    let report = env.run(&["test", "cpro", "--json"]).expect_code(1).json();
    assert_eq!(
        step(&report, "check technical account and structure")["status"],
        "ok"
    );
    let attachment = step(&report, "check attachment");
    assert_eq!(attachment["status"], "failed", "{report:#}");
    assert!(
        attachment["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("is not attached to structure {SUPPLIER_SIRET}")),
        "{attachment:#}"
    );
    // The secrets never show, not even in the refusals.
    for text in [r.all(), env.data_dump()] {
        assert!(!text.contains(&o.client_secret));
        assert!(!text.contains(&o.technical_password));
        assert!(!text.contains("not-the-password"));
    }
}

#[test]
fn generated_invoices_of_each_format_are_deposited_and_followed() {
    let emu = emulator(ChorusProOptions {
        per_second: 0,
        ..ChorusProOptions::default()
    });
    let env = setup(&emu, "");
    let files = [
        (
            "FA-2025-001.pdf",
            samples::factur_x_pdf("FA-2025-001"),
            SYNTAX_FACTURX,
            "factur_x",
        ),
        (
            "FA-2025-002.xml",
            samples::ubl_invoice("FA-2025-002"),
            SYNTAX_UBL,
            "ubl",
        ),
        (
            "FA-2025-003.xml",
            samples::cii_invoice("FA-2025-003"),
            SYNTAX_CII,
            "cii",
        ),
    ];
    let mut ids = Vec::new();
    for (name, bytes, syntax, format) in &files {
        let deposit = submit(&env, name, bytes);
        assert_eq!(deposit["state"], "pending", "{deposit:#}");
        assert_eq!(deposit["format"], *format);
        assert_eq!(deposit["provider_format"], *syntax);
        assert_eq!(deposit["attempts"], 1);
        ids.push(deposit["deposit_id"].as_str().unwrap().to_owned());
    }
    let registered = emu.deposits();
    let seen: Vec<(&str, &str, Option<&str>)> = registered
        .iter()
        .map(|d| {
            (
                d.file_name.as_str(),
                d.syntax.as_str(),
                d.invoice_number.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("FA-2025-001.pdf", SYNTAX_FACTURX, Some("FA-2025-001")),
            ("FA-2025-002.xml", SYNTAX_UBL, Some("FA-2025-002")),
            ("FA-2025-003.xml", SYNTAX_CII, Some("FA-2025-003")),
        ]
    );
    // States progress over consultations: received, processed by the exchange service,
    // integrated.
    let states: Vec<(Value, Value)> = (0..3)
        .map(|_| {
            let d = status(&env, &ids[1]);
            (d["state"].clone(), d["provider_state"].clone())
        })
        .collect();
    assert_eq!(
        states,
        [
            (json!("pending"), json!("IN_RECU")),
            (json!("pending"), json!("IN_TRAITE_SE_CPP")),
            (json!("integrated"), json!("IN_INTEGRE")),
        ]
    );
    let list = env.ok(&["invoke", "einvoice.list", "--input", "{}"]).json();
    let listed: Vec<&str> = list["deposits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deposit_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{list:#}");
    }
    let integrated = env
        .ok(&[
            "invoke",
            "einvoice.list",
            "--input",
            r#"{"state":"integrated"}"#,
        ])
        .json();
    assert_eq!(integrated["deposits"].as_array().unwrap().len(), 1);
    assert_eq!(integrated["deposits"][0]["deposit_id"], ids[1].as_str());
}

#[test]
fn rejected_and_partially_integrated_deposits_carry_their_errors() {
    let emu = emulator(ChorusProOptions {
        per_second: 0,
        consultations_before_final: 0,
        ..ChorusProOptions::default()
    });
    let env = setup(&emu, "");
    let rejected = submit(
        &env,
        "FA-BAD.xml",
        &samples::incomplete_ubl_invoice("FA-BAD"),
    );
    let d = status(&env, rejected["deposit_id"].as_str().unwrap());
    assert_eq!(d["state"], "rejected", "{d:#}");
    assert_eq!(d["provider_state"], "IN_REJETE");
    let messages: Vec<&str> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Élément obligatoire absent : cbc:IssueDate",
            "Élément obligatoire absent : cac:AccountingCustomerParty"
        ]
    );
    emu.force_outcome("FA-PART.pdf", DepositOutcome::PartiallyIntegrated);
    let partial = submit(&env, "FA-PART.pdf", &samples::factur_x_pdf("FA-PART"));
    let d = status(&env, partial["deposit_id"].as_str().unwrap());
    assert_eq!(d["state"], "partially_integrated", "{d:#}");
    assert_eq!(d["errors"][0]["invoice"], "FA-PART");
    // A file that is not an invoice never leaves: exit 3, the reason, no deposit.
    let r = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &submit_input("scan.pdf", &samples::plain_pdf("X")),
        ])
        .expect_code(3);
    assert!(
        r.stderr.contains("PDF without an embedded factur-x.xml"),
        "{}",
        r.stderr
    );
    let r = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &json!({
                "file_name": "FA-X.xml",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(samples::ubl_invoice("FA-X")),
                "dematerialisation_code": "PAPER"
            })
            .to_string(),
        ])
        .expect_code(3);
    assert!(r.stderr.contains("PAPER"), "{}", r.stderr);
    assert_eq!(emu.deposits().len(), 2);

    // An invoice lacking the service code and engagement number its recipient requires is
    // refused before it leaves.
    let r = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &submit_input(
                "FA-S.xml",
                &samples::ubl_invoice_to("FA-S", STRICT_BUYER_SIRET, None, None),
            ),
        ])
        .expect_code(3);
    assert!(
        r.stderr.contains("requires a service code") && r.stderr.contains("engagement number"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.deposits().len(), 2);
    let ok = submit(
        &env,
        "FA-S.xml",
        &samples::ubl_invoice_to("FA-S", STRICT_BUYER_SIRET, Some("SERV-01"), Some("EJ-7")),
    );
    assert_eq!(
        status(&env, ok["deposit_id"].as_str().unwrap())["state"],
        "integrated"
    );

    // Every failed state is final, carries its errors, and frees the file.
    for outcome in [
        DepositOutcome::Incident,
        DepositOutcome::Irreceivable,
        DepositOutcome::ReceivableWithError,
    ] {
        let file = format!("FA-{}.xml", outcome.code());
        emu.force_outcome(&file, outcome);
        let bytes = samples::ubl_invoice(&file);
        let first = submit(&env, &file, &bytes);
        let d = status(&env, first["deposit_id"].as_str().unwrap());
        assert_eq!(d["state"], "rejected", "{d:#}");
        assert_eq!(d["provider_state"], outcome.code());
        assert!(!d["errors"].as_array().unwrap().is_empty(), "{d:#}");
        let again = submit(&env, &file, &bytes);
        assert_ne!(again["deposit_id"], first["deposit_id"]);
    }
}

#[test]
fn the_follow_up_task_records_final_states() {
    let emu = emulator(ChorusProOptions {
        per_second: 0,
        consultations_before_final: 1,
        ..ChorusProOptions::default()
    });
    let env = setup(&emu, "");
    submit(&env, "FA-T1.xml", &samples::ubl_invoice("FA-T1"));
    submit(&env, "FA-T2.xml", &samples::incomplete_ubl_invoice("FA-T2"));
    env.ok(&["tasks", "run", "cpro", "follow_deposits"])
        .expect_output("checked 2 of 2 deposit(s) in progress: 0 integrated, 0 partially integrated, 0 rejected, 2 still in progress");
    env.ok(&["tasks", "run", "cpro", "follow_deposits"])
        .expect_output("checked 2 of 2 deposit(s) in progress: 1 integrated, 0 partially integrated, 1 rejected, 0 still in progress");
    // The integrated flow's invoice is followed, one search a run (the first in the run that
    // saw it integrated), until it is in payment.
    let listed = env
        .ok(&[
            "invoke",
            "einvoice.list",
            "--input",
            r#"{"state":"integrated"}"#,
        ])
        .json();
    assert_eq!(listed["deposits"][0]["invoices"][0]["status"], "DEPOSEE");
    for expected in ["MISE_A_DISPOSITION", "MANDATEE"] {
        env.ok(&["tasks", "run", "cpro", "follow_deposits"])
            .expect_output("1 invoice(s) followed: 0 in payment");
        let listed = env
            .ok(&[
                "invoke",
                "einvoice.list",
                "--input",
                r#"{"state":"integrated"}"#,
            ])
            .json();
        assert_eq!(listed["deposits"][0]["invoices"][0]["status"], expected);
    }
    env.ok(&["tasks", "run", "cpro", "follow_deposits"])
        .expect_output("1 invoice(s) followed: 1 in payment");
    let paid = env
        .ok(&[
            "invoke",
            "einvoice.list",
            "--input",
            r#"{"state":"integrated"}"#,
        ])
        .json();
    let invoice = &paid["deposits"][0]["invoices"][0];
    assert_eq!(invoice["status"], "MISE_EN_PAIEMENT", "{paid:#}");
    assert_eq!(invoice["settled"], true);
    assert_eq!(invoice["number"], "FA-T1");
    assert!(invoice["invoice_id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    env.ok(&["tasks", "run", "cpro", "follow_deposits"])
        .expect_output("no deposit in progress");
    assert_eq!(emu.invoice_searches(), 4);
    let rejected = env
        .ok(&[
            "invoke",
            "einvoice.list",
            "--input",
            r#"{"state":"rejected"}"#,
        ])
        .json();
    assert_eq!(rejected["deposits"][0]["file_name"], "FA-T2.xml");
    assert_eq!(
        rejected["deposits"][0]["errors"].as_array().unwrap().len(),
        2
    );
    // Two rounds of two consultations, nothing more.
    assert_eq!(
        emu.deposits().iter().map(|d| d.consultations).sum::<u32>(),
        4
    );
}

#[test]
fn transient_503s_are_retried_with_the_configured_delay() {
    let emu = emulator(ChorusProOptions {
        per_second: 0,
        ..ChorusProOptions::default()
    });
    let env = setup(&emu, "");
    env.ok(&["config", "set", "cpro", "retry_delay_secs", "1"]);
    // A first invoice to the same buyer: its rules are looked up once and kept, so that the
    // failures below hit the deposit itself.
    submit(&env, "FA-R0.xml", &samples::ubl_invoice("FA-R0"));
    let before = emu.admitted_times().len();
    emu.fail_next(2);
    let started = Instant::now();
    let deposit = submit(&env, "FA-R1.xml", &samples::ubl_invoice("FA-R1"));
    assert_eq!(deposit["attempts"], 3, "{deposit:#}");
    let times = emu.admitted_times()[before..].to_vec();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(1000) && gap < Duration::from_millis(3000),
            "{gap:?} between attempts, expected the configured 1 s"
        );
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(emu.deposits().len(), 2);

    // With 0 s the retries follow at once; out of attempts, the error says how it went.
    env.ok(&["config", "set", "cpro", "retry_delay_secs", "0"]);
    env.ok(&["config", "set", "cpro", "attempts", "2"]);
    emu.fail_next(2);
    let r = env
        .run(&[
            "invoke",
            "einvoice.submit",
            "--input",
            &submit_input("FA-R2.xml", &samples::ubl_invoice("FA-R2")),
        ])
        .expect_code(1);
    assert!(
        r.stderr.contains("2 attempts: HTTP 503, HTTP 503"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.deposits().len(), 2);
}

/// A batch of deposits through `passerelle invoice submit` (one process) never exceeds the
/// sandbox's 5 requests per second at the emulator, which refuses the sixth in any rolling
/// second. `CHORUS_BATCH` sets the size (500 by default: at least 100 s at 5/s).
#[test]
fn a_batch_never_exceeds_the_sandbox_quota() {
    let emu = emulator(ChorusProOptions::default());
    let env = setup(&emu, "");
    let count: usize = std::env::var("CHORUS_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = env.root.path().join("batch");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<String> = (0..count)
        .map(|n| {
            let path = dir.join(format!("B-{n:04}.xml"));
            std::fs::write(&path, samples::ubl_invoice(&format!("B-{n:04}"))).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect();
    let mut args = vec!["invoice", "submit"];
    args.extend(files.iter().map(String::as_str));
    let started = Instant::now();
    let run = env.ok(&args);
    let elapsed = started.elapsed();
    assert!(
        run.stdout.contains(&format!("[{count}/{count}]")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("{count} deposited, 0 refused, 0 failed")),
        "{}",
        run.stdout
    );
    eprintln!(
        "{count} deposits in {elapsed:?}: {:.2}/s, at most {} in one second, {} refused by the quota",
        count as f64 / elapsed.as_secs_f64(),
        emu.max_in_any_second(),
        emu.quota_refusals()
    );
    assert_eq!(emu.deposits().len(), count);
    assert_eq!(emu.quota_refusals(), 0, "the emulator refused requests");
    assert!(emu.max_in_any_second() <= 5);
    let listed = env.ok(&["invoice", "list", "--json"]).json();
    assert!(
        !listed["deposits"].as_array().unwrap().is_empty(),
        "{listed}"
    );
}

#[test]
fn the_environment_guard_names_the_field() {
    let emu = emulator(ChorusProOptions::default());
    let env = setup(&emu, "");
    // PISTE URLs of two environments: enabling is refused on the API URL.
    env.ok(&["config", "disable", "cpro"]);
    env.ok(&[
        "config",
        "set",
        "cpro",
        "oauth_url",
        "https://sandbox-oauth.piste.gouv.fr/api/oauth/token",
    ]);
    env.ok(&[
        "config",
        "set",
        "cpro",
        "api_url",
        "https://api.piste.gouv.fr",
    ]);
    env.ok(&["config", "unset", "cpro", "environment"]);
    let r = env.run(&["config", "enable", "cpro"]).expect_code(3);
    assert!(
        r.stderr.contains("api_url") && r.stderr.contains("production environment"),
        "{}",
        r.stderr
    );
    env.ok(&[
        "config",
        "set",
        "cpro",
        "api_url",
        "https://sandbox-api.piste.gouv.fr",
    ]);
    env.ok(&["config", "enable", "cpro"]);
    // An enabled instance must stay valid: the same mistakes are refused at save time.
    let r = env
        .run(&[
            "config",
            "set",
            "cpro",
            "api_url",
            "https://api.piste.gouv.fr/",
        ])
        .expect_code(3);
    assert!(r.stderr.contains("api_url"), "{}", r.stderr);
    let r = env
        .run(&["config", "set", "cpro", "environment", "production"])
        .expect_code(3);
    assert!(
        r.stderr.contains("environment") && r.stderr.contains("PISTE sandbox gateway"),
        "{}",
        r.stderr
    );
    // Other URLs need the environment said.
    env.ok(&["config", "disable", "cpro"]);
    env.ok(&["config", "set", "cpro", "oauth_url", &emu.oauth_url()]);
    env.ok(&["config", "set", "cpro", "api_url", &emu.url()]);
    let r = env.run(&["config", "enable", "cpro"]).expect_code(3);
    assert!(
        r.stderr.contains("environment") && r.stderr.contains("not on the PISTE gateway"),
        "{}",
        r.stderr
    );
    env.ok(&["config", "set", "cpro", "environment", "sandbox"]);
    env.ok(&["config", "enable", "cpro"]);
    env.ok(&["test", "cpro"]);
}

#[test]
fn a_production_instance_may_not_reuse_the_sandbox_credentials() {
    let emu = emulator(ChorusProOptions::default());
    let env = setup(&emu, "");
    let o = emu.options();
    // A production instance made by copying the sandbox one, changing only the environment.
    env.ok(&["config", "create", "prod", "--plugin", "chorus-pro"]);
    for (field, value) in [
        ("oauth_url", "https://oauth.piste.gouv.fr/api/oauth/token"),
        ("api_url", "https://api.piste.gouv.fr"),
        ("client_id", o.client_id.as_str()),
        ("client_secret", o.client_secret.as_str()),
        ("technical_login", o.technical_login.as_str()),
        ("technical_password", o.technical_password.as_str()),
        ("structure_id", SUPPLIER_SIRET),
    ] {
        env.run_with_stdin(&["config", "set", "prod", field, "--stdin"], Some(value))
            .expect_code(0);
    }
    let r = env.run(&["config", "enable", "prod"]).expect_code(3);
    for field in ["client_id", "client_secret"] {
        assert!(
            r.stderr.contains(&format!("field `{field}`")),
            "{field}: {}",
            r.stderr
        );
    }
    assert!(
        r.stderr.contains("instance `cpro`, a sandbox instance"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(&o.client_secret),
        "secret shown: {}",
        r.stderr
    );
    // Its own PISTE application: accepted.
    env.ok(&["config", "set", "prod", "client_id", "production-client"]);
    env.run_with_stdin(
        &["config", "set", "prod", "client_secret", "--stdin"],
        Some("production-secret"),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "prod"]);
}
