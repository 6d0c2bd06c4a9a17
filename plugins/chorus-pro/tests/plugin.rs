//! The plugin's entry points (test routine, the `einvoice.*` operations, the follow-up task)
//! run in-process through the real root module against a scripted host: no dlopen, no
//! network. Each test checks what the plugin sent as well as what it answered.

#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use passerelle_chorus_pro::{ChorusPro, Config};
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const OAUTH: &str = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token";
const API: &str = "https://sandbox-api.piste.gouv.fr";
const SECRET: &str = "piste-secret-canary-93f1";
const PASSWORD: &str = "tech-password-canary-5b2e";

fn config() -> Value {
    json!({
        "client_id": "piste-app",
        "client_secret": SECRET,
        "technical_login": "TECH_LOGIN",
        "technical_password": PASSWORD,
        "structure_id": support::SUPPLIER_SIRET,
        "retry_delay_secs": 2,
        "erp_company": "ACME"
    })
}

fn with(changes: Value) -> Value {
    let mut c = config();
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn respond(status: u16, body: Value) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

/// SIRET, idStructureCPP and name of the structures the scripted directory knows.
const DIRECTORY: &[(&str, u64, &str)] = &[
    (support::SUPPLIER_SIRET, 25000101, "ACME FOURNITURES SAS"),
    ("21920023500014", 26000201, "COMMUNE DE CLAMART"),
    (STRICT_BUYER, 26000202, "DRFIP"),
];
/// A recipient requiring a service code and an engagement number.
const STRICT_BUYER: &str = "13002526500013";

/// A host where PISTE grants tokens and Chorus Pro answers like the sandbox.
fn host() -> ScriptedHost {
    let host = ScriptedHost::new();
    let tokens = Arc::new(AtomicUsize::new(0));
    host.on_fn(Method::Post, OAUTH, move |_| {
        let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
        respond(
            200,
            json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
        )
    });
    host.on(
        Method::Get,
        &format!("{API}/cpro/transverses/v1/health-check"),
        200,
        r#"{"statusCode":"200"}"#,
    );
    // The directory: the supplier, a buyer with no requirement and a strict one.
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/structures/v1/rechercher"),
        |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let wanted = body["structure"]["identifiantStructure"].as_str().unwrap_or("");
            let found: Vec<Value> = DIRECTORY
                .iter()
                .filter(|(id, ..)| *id == wanted)
                .map(|(id, cpp, name)| json!({
                    "designationStructure": name, "idStructureCPP": cpp,
                    "identifiantStructure": id, "statut": "ACTIF",
                    "typeIdentifiantStructure": "SIRET"
                }))
                .collect();
            if found.is_empty() {
                return respond(400, json!({"codeRetour": 20001, "libelle": "Aucune structure"}));
            }
            respond(
                200,
                json!({
                    "codeRetour": 0, "libelle": "GCU_MSG_01_000", "listeStructures": found,
                    "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": 10, "total": 1}
                }),
            )
        },
    );
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/structures/v1/consulter"),
        |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let strict = body["idStructureCPP"] == json!(26000202);
            respond(
                200,
                json!({"codeRetour": 0, "parametres": {
                    "codeServiceDoitEtreRenseigne": strict, "numeroEJDoitEtreRenseigne": strict,
                    "gestionNumeroEJOuCodeService": false
                }}),
            )
        },
    );
    host.on(
        Method::Post,
        &format!("{API}/cpro/utilisateurs/v1/monCompte/recuperer/rattachements"),
        200,
        json!({
            "codeRetour": 0, "libelle": "GCU_MSG_01_000",
            "listeStructureRattachement": [{
                "designationStructure": "ACME FOURNITURES SAS", "idStructure": 25000101,
                "identifiantStructure": support::SUPPLIER_SIRET, "statutRattachementStructure": "ACTIF",
                "typeIdentifiantStructure": "SIRET"
            }]
        })
        .to_string(),
    );
    host.on(
        Method::Post,
        &format!("{API}/cpro/factures/v1/rechercher/fournisseur"),
        200,
        r#"{"codeRetour":0,"libelle":"GCU_MSG_01_000","listeFactures":[]}"#,
    );
    let deposits = Arc::new(AtomicUsize::new(0));
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/factures/v1/deposer/flux"),
        move |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let n = deposits.fetch_add(1, Ordering::SeqCst) + 1;
            respond(
                200,
                json!({
                    "codeRetour": 0, "dateDepot": "2027-01-15", "libelle": "GCU_MSG_01_000",
                    "numeroFluxDepot": format!("CPP2027{n:09}"), "syntaxeFlux": body["syntaxeFlux"]
                }),
            )
        },
    );
    host
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn submission(name: &str, bytes: &[u8]) -> InvoiceSubmission {
    InvoiceSubmission {
        file_name: name.to_owned(),
        content_base64: b64(bytes),
        dematerialisation_code: "CHORUS_DEMATERIALIZED".to_owned(),
    }
}

fn submit(
    host: &ScriptedHost,
    config: Value,
    input: &InvoiceSubmission,
) -> Result<Deposit, PluginError> {
    testing::invoke::<ChorusPro, EinvoiceSubmit>(input, config, host)
}

fn api_requests(host: &ScriptedHost) -> Vec<HttpRequest> {
    host.requests()
        .into_iter()
        .filter(|r| r.url.starts_with(API))
        .collect()
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn no_secret_in(text: &str) {
    assert!(!text.contains(SECRET), "client secret leaked: {text}");
    assert!(
        !text.contains(PASSWORD),
        "technical password leaked: {text}"
    );
}

#[test]
fn test_routine_passes_and_sends_both_credentials() {
    let host = host();
    let report = testing::test::<ChorusPro>(config(), &host);
    testing::assert_report_translated::<ChorusPro>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "get token",
            "reach API",
            "check technical account and structure",
            "check attachment"
        ]
    );
    assert!(
        report.summary.contains("sandbox") && report.summary.contains("ACME FOURNITURES SAS"),
        "{}",
        report.summary
    );
    let requests = host.requests();
    let token = &requests[0];
    assert_eq!(token.url, OAUTH);
    let form = String::from_utf8(token.body.clone()).unwrap();
    for part in [
        "grant_type=client_credentials",
        "client_id=piste-app",
        "scope=openid",
        "client_secret=",
    ] {
        assert!(form.contains(part), "{form}");
    }
    let account = b64(format!("TECH_LOGIN:{PASSWORD}").as_bytes());
    for req in api_requests(&host) {
        assert_eq!(header(&req, "Authorization"), Some("Bearer tok-1"));
        assert_eq!(header(&req, "cpro-account"), Some(account.as_str()));
        assert_eq!(
            header(&req, "Content-Type"),
            Some("application/json;charset=utf-8")
        );
        assert!(req.secret_headers.iter().any(|h| h == "cpro-account"));
    }
    let search = &api_requests(&host)[1];
    let body: Value = serde_json::from_slice(&search.body).unwrap();
    assert_eq!(
        body["structure"],
        json!({"identifiantStructure": support::SUPPLIER_SIRET, "typeIdentifiantStructure": "SIRET"})
    );
    no_secret_in(&serde_json::to_string(&report).unwrap());
}

#[test]
fn a_refused_client_secret_is_named_and_stops_the_routine() {
    let host = host();
    host.on(
        Method::Post,
        OAUTH,
        400,
        r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
    );
    let report = testing::test::<ChorusPro>(config(), &host);
    testing::assert_report_translated::<ChorusPro>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].status, Status::Failed);
    assert!(
        report.steps[0]
            .detail
            .starts_with("client_secret: PISTE refused"),
        "{}",
        report.steps[0].detail
    );
    assert!(report.steps[0].detail.contains("invalid_client"));
    assert_eq!(report.steps[1].status, Status::Skipped);
    assert!(api_requests(&host).is_empty());
    no_secret_in(&serde_json::to_string(&report).unwrap());
}

#[test]
fn a_refused_technical_password_is_named() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{API}/cpro/transverses/v1/health-check"),
        401,
        r#"{"codeRetour":20010,"libelle":"identifiant ou mot de passe incorrect"}"#,
    );
    let report = testing::test::<ChorusPro>(config(), &host);
    assert_eq!(report.status, Status::Failed);
    let step = &report.steps[1];
    assert_eq!(
        (step.name.as_str(), step.status),
        ("reach API", Status::Failed)
    );
    assert!(
        step.detail
            .starts_with("technical_password: Chorus Pro refused the technical account TECH_LOGIN"),
        "{}",
        step.detail
    );
    // An account refusal is not a token problem: no token renewal.
    let tokens = host.requests().iter().filter(|r| r.url == OAUTH).count();
    assert_eq!(tokens, 1);
}

#[test]
fn an_unknown_structure_is_named() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{API}/cpro/structures/v1/rechercher"),
        400,
        r#"{"codeRetour":20001,"libelle":"Aucune structure ne correspond aux critères de recherche"}"#,
    );
    let report = testing::test::<ChorusPro>(config(), &host);
    testing::assert_report_translated::<ChorusPro>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    let step = &report.steps[2];
    assert_eq!(step.status, Status::Failed);
    assert!(
        step.detail
            .starts_with("structure_id: Chorus Pro found no structure SIRET 12345678200010")
            && step.detail.contains("code 20001"),
        "{}",
        step.detail
    );
    assert!(report
        .summary
        .starts_with("check technical account and structure: structure_id"));
}

#[test]
fn an_inactive_structure_is_a_warning() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{API}/cpro/structures/v1/rechercher"),
        200,
        json!({"codeRetour": 0, "listeStructures": [{
            "designationStructure": "ACME", "idStructureCPP": 1,
            "identifiantStructure": support::SUPPLIER_SIRET, "statut": "INACTIF",
            "typeIdentifiantStructure": "SIRET"}]})
        .to_string(),
    );
    let report = testing::test::<ChorusPro>(config(), &host);
    assert_eq!(report.status, Status::Warning, "{report:#?}");
    assert!(report.summary.contains("not active"), "{}", report.summary);
}

#[test]
fn a_wrong_configuration_fails_before_any_request() {
    let host = host();
    let report =
        testing::test::<ChorusPro>(with(json!({"api_url": "https://api.piste.gouv.fr"})), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].name, "check configuration");
    assert!(
        report.steps[0].detail.starts_with("api_url: "),
        "{}",
        report.steps[0].detail
    );
    assert!(host.requests().is_empty());
}

#[test]
fn each_format_is_deposited_under_its_syntax_and_recorded() {
    let host = host();
    let cases: [(&str, Vec<u8>, &str, InvoiceFormat); 4] = [
        (
            "FA-1.pdf",
            support::factur_x("FA-1"),
            "IN_DP_E2_CII_FACTURX",
            InvoiceFormat::FacturX,
        ),
        (
            "FA-2.xml",
            support::ubl("FA-2"),
            "IN_DP_E1_UBL_INVOICE",
            InvoiceFormat::Ubl,
        ),
        (
            "FA-3.xml",
            support::cii("FA-3"),
            "IN_DP_E1_CII_16B",
            InvoiceFormat::Cii,
        ),
        (
            "FA-4.pdf",
            support::factur_x_with_object_stream("FA-4"),
            "IN_DP_E2_CII_FACTURX",
            InvoiceFormat::FacturX,
        ),
    ];
    for (i, (name, bytes, syntax, format)) in cases.iter().enumerate() {
        let deposit = submit(&host, config(), &submission(name, bytes)).unwrap();
        assert_eq!(deposit.deposit_id, format!("CPP2027{:09}", i + 1));
        assert_eq!(deposit.format, Some(*format));
        assert_eq!(deposit.provider_format.as_deref(), Some(*syntax));
        assert_eq!(deposit.state, DepositState::Pending);
        assert_eq!(deposit.deposited_on.as_deref(), Some("2027-01-15"));
        assert_eq!(deposit.attempts, Some(1));
        assert_eq!(deposit.size_bytes, Some(bytes.len() as u64));
        assert_eq!(deposit.company.as_deref(), Some("ACME"));
        let sent = api_requests(&host).pop().unwrap();
        assert!(sent.url.ends_with("/cpro/factures/v1/deposer/flux"));
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(body["syntaxeFlux"], *syntax);
        assert_eq!(body["nomFichier"], *name);
        assert_eq!(body["avecSignature"], false);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(body["fichierFlux"].as_str().unwrap())
                .unwrap(),
            *bytes
        );
        let state = host.state();
        let recorded: Deposit =
            serde_json::from_value(state[&format!("deposit/{}", deposit.deposit_id)].clone())
                .unwrap();
        assert_eq!(recorded, deposit);
        let sha = deposit.content_sha256.clone().unwrap();
        assert_eq!(state[&format!("content/{sha}")], json!(deposit.deposit_id));
    }
}

#[test]
fn refusals_before_sending_name_the_input() {
    let host = host();
    let refuse = |config: Value, input: InvoiceSubmission, field: &str, needle: &str| {
        let e = submit(&host, config, &input).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
        assert!(e.message.contains(needle), "{}", e.message);
    };
    let ubl = support::ubl("FA-1");
    let mut paper = submission("a.xml", &ubl);
    paper.dematerialisation_code = "PAPER".into();
    refuse(
        config(),
        paper,
        "dematerialisation_code",
        "CHORUS_DEMATERIALIZED",
    );
    let mut accepted = submission("a.xml", &ubl);
    accepted.dematerialisation_code = "EDI".into();
    submit(
        &host,
        with(json!({"accepted_codes": ["CHORUS_DEMATERIALIZED", "EDI"]})),
        &accepted,
    )
    .unwrap();
    let mut garbage = submission("a.xml", &ubl);
    garbage.content_base64 = "***".into();
    refuse(config(), garbage, "content_base64", "not valid base64");
    let mut big = support::ubl("FA-BIG");
    big.extend(std::iter::repeat_n(b' ', 10 * 1024 * 1024));
    refuse(
        config(),
        submission("big.xml", &big),
        "content_base64",
        "more than the 10 MB",
    );
    refuse(
        config(),
        submission("scan.pdf", &support::plain_pdf()),
        "content_base64",
        "PDF without an embedded factur-x.xml",
    );
    refuse(
        config(),
        submission(
            "z.pdf",
            &support::pdf_with_attachment("FA-5", "zugferd-invoice.xml"),
        ),
        "content_base64",
        "PDF without an embedded factur-x.xml",
    );
    refuse(
        config(),
        submission(
            "order.xml",
            b"<Order xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Order-2\"/>",
        ),
        "content_base64",
        "Order-2}Order",
    );
    refuse(config(), submission("", &ubl), "file_name", "empty");
    refuse(
        with(json!({"active": false})),
        submission("a.xml", &support::ubl("FA-6")),
        "active",
        "switched off",
    );
    // One deposit went out: the accepted EDI code.
    let deposits = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("deposer/flux"))
        .count();
    assert_eq!(deposits, 1);
}

#[test]
fn a_file_already_deposited_is_not_sent_twice_unless_rejected() {
    let host = host();
    let ubl = support::ubl("FA-7");
    let first = submit(&host, config(), &submission("FA-7.xml", &ubl)).unwrap();
    let e = submit(&host, config(), &submission("again.xml", &ubl)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message.contains(&first.deposit_id) && e.message.contains("pending"),
        "{}",
        e.message
    );
    // Once Chorus Pro rejected it, the corrected… or same file may go again.
    host.on(
        Method::Post,
        &format!("{API}/cpro/transverses/v1/consulterCRDetaille"),
        200,
        json!({"codeRetour": 0, "etatCourantDepotFlux": "IN_REJETE", "listeErreurTechnique": [
            {"codeErreur": "E1", "libelleErreur": "Destinataire inconnu", "natureErreur": "BLOQUANTE"}]})
        .to_string(),
    );
    testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: first.deposit_id.clone(),
        },
        config(),
        &host,
    )
    .unwrap();
    let second = submit(&host, config(), &submission("again.xml", &ubl)).unwrap();
    assert_ne!(second.deposit_id, first.deposit_id);
}

fn deposit_sequence(host: &ScriptedHost, statuses: Vec<u16>) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/factures/v1/deposer/flux"),
        move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(n).copied().unwrap_or(200);
            if status == 200 {
                respond(
                    200,
                    json!({"codeRetour": 0, "numeroFluxDepot": "CPP2027000000042", "dateDepot": "2027-01-15"}),
                )
            } else {
                respond(status, json!({"error": "service_unavailable"}))
            }
        },
    );
    calls
}

#[test]
fn transient_503s_are_retried_with_the_configured_delay() {
    let host = host();
    let calls = deposit_sequence(&host, vec![503, 503]);
    let deposit = submit(
        &host,
        config(),
        &submission("FA-8.xml", &support::ubl("FA-8")),
    )
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(deposit.attempts, Some(3));
    assert_eq!(host.slept_ms(), 2 * 2000);
    assert!(host
        .logs()
        .iter()
        .any(|l| l.contains("attempt 1/3 failed (HTTP 503)")));
    // Delay 0 retries at once.
    let host2 = self::host();
    deposit_sequence(&host2, vec![503]);
    submit(
        &host2,
        with(json!({"retry_delay_secs": 0})),
        &submission("FA-8.xml", &support::ubl("FA-8")),
    )
    .unwrap();
    assert_eq!(host2.slept_ms(), 0);
}

#[test]
fn a_deposit_that_may_have_been_applied_is_not_sent_again() {
    for status in [500, 502, 504] {
        let host = host();
        let calls = deposit_sequence(&host, vec![status]);
        let e = submit(
            &host,
            config(),
            &submission("FA-9.xml", &support::ubl("FA-9")),
        )
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "HTTP {status} was retried");
        assert!(
            e.message.contains("may have been registered"),
            "{}",
            e.message
        );
    }
    let host = host();
    host.fail(
        Method::Post,
        &format!("{API}/cpro/factures/v1/deposer/flux"),
        HttpErrorKind::Timeout,
        "timed out",
    );
    let e = submit(
        &host,
        config(),
        &submission("FA-9.xml", &support::ubl("FA-9")),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(
        e.message.contains("may have been registered"),
        "{}",
        e.message
    );
    let deposits = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("/deposer/flux"))
        .count();
    assert_eq!(deposits, 1);
    // Exhausted retries say how it went.
    let host = self::host();
    deposit_sequence(&host, vec![503, 503, 503]);
    let e = submit(
        &host,
        config(),
        &submission("FA-9.xml", &support::ubl("FA-9")),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.message
            .contains("3 attempts: HTTP 503, HTTP 503, HTTP 503"),
        "{}",
        e.message
    );
}

#[test]
fn an_expired_token_is_renewed_once_and_the_call_sent_again() {
    let host = host();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/factures/v1/deposer/flux"),
        move |req| {
            let auth = header(req, "Authorization").unwrap().to_owned();
            log.lock().unwrap().push(auth.clone());
            if auth == "Bearer tok-1" {
                return Ok(HttpResponse {
                    status: 401,
                    headers: vec![(
                        "WWW-Authenticate".into(),
                        "Bearer realm=\"PISTE\", error=\"invalid_token\"".into(),
                    )],
                    body: Vec::new(),
                });
            }
            respond(
                200,
                json!({"codeRetour": 0, "numeroFluxDepot": "CPP1", "dateDepot": "2027-01-15"}),
            )
        },
    );
    let deposit = submit(
        &host,
        config(),
        &submission("FA-10.xml", &support::ubl("FA-10")),
    )
    .unwrap();
    assert_eq!(deposit.deposit_id, "CPP1");
    assert_eq!(*seen.lock().unwrap(), ["Bearer tok-1", "Bearer tok-2"]);
}

fn report_route(host: &ScriptedHost, bodies: Vec<Value>) {
    let calls = Arc::new(AtomicUsize::new(0));
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/transverses/v1/consulterCRDetaille"),
        move |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            respond(200, bodies[n.min(bodies.len() - 1)].clone())
        },
    );
}

fn report(state: &str) -> Value {
    json!({
        "codeRetour": 0, "libelle": "TRA_MSG_00.000", "codeInterfaceDepotFlux": "X",
        "dateDepotFlux": "2027-01-15T10:00:00Z", "dateHeureEtatCourantFlux": "2027-01-15T10:05:00Z",
        "etatCourantDepotFlux": state, "nomFichier": "FA-11.xml",
        "listeErreurDP": [], "listeErreurTechnique": []
    })
}

#[test]
fn status_maps_every_state_with_its_errors_and_records_it() {
    let host = host();
    let deposit = submit(
        &host,
        config(),
        &submission("FA-11.xml", &support::ubl("FA-11")),
    )
    .unwrap();
    let mut partial = report("IN_INTEGRE_PARTIEL");
    partial["listeErreurDP"] = json!([{"identifiantDestinataire": "21920023500014",
        "identifiantFournisseur": "12345678200010", "libelleErreurDP": "Service exécutant obligatoire",
        "numeroDP": "FA-11"}]);
    let mut rejected = report("IN_REJETE");
    rejected["listeErreurTechnique"] = json!([
        {"codeErreur": "E1", "libelleErreur": "Élément absent : cbc:IssueDate", "natureErreur": "BLOQUANTE"},
        {"codeErreur": "E2", "libelleErreur": "Élément absent : cac:AccountingCustomerParty", "natureErreur": "BLOQUANTE"}
    ]);
    report_route(&host, vec![report("IN_RECU"), partial, rejected]);
    let query = DepositRef {
        deposit_id: deposit.deposit_id.clone(),
    };
    let status = |host: &ScriptedHost, query: &DepositRef| {
        testing::invoke::<ChorusPro, EinvoiceStatus>(query, config(), host).unwrap()
    };
    let d = status(&host, &query);
    assert_eq!(
        (d.state, d.provider_state.as_deref()),
        (DepositState::Pending, Some("IN_RECU"))
    );
    assert_eq!(d.file_name, "FA-11.xml");
    assert_eq!(d.format, Some(InvoiceFormat::Ubl));
    let sent: Value = serde_json::from_slice(&api_requests(&host).pop().unwrap().body).unwrap();
    assert_eq!(
        sent,
        json!({"numeroFluxDepot": deposit.deposit_id, "syntaxeFlux": "IN_DP_E1_UBL_INVOICE"})
    );
    let d = status(&host, &query);
    assert_eq!(d.state, DepositState::PartiallyIntegrated);
    assert_eq!(d.state_changed_at.as_deref(), Some("2027-01-15T10:05:00Z"));
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].invoice.as_deref(), Some("FA-11"));
    assert_eq!(d.errors[0].recipient.as_deref(), Some("21920023500014"));
    // An integrated flow does not change: its invoices are asked for, not its report.
    let reports_before = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("consulterCRDetaille"))
        .count();
    let again = status(&host, &query);
    assert_eq!(again.state, DepositState::PartiallyIntegrated);
    let reports_after = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("consulterCRDetaille"))
        .count();
    assert_eq!(reports_after, reports_before);
    let recorded: Deposit =
        serde_json::from_value(host.state()[&format!("deposit/{}", deposit.deposit_id)].clone())
            .unwrap();
    assert_eq!(recorded, again);

    let second = submit(
        &host,
        config(),
        &submission("FA-12.xml", &support::ubl("FA-12")),
    )
    .unwrap();
    let query = DepositRef {
        deposit_id: second.deposit_id.clone(),
    };
    let d = status(&host, &query);
    assert_eq!(d.state, DepositState::Rejected);
    let messages: Vec<&str> = d.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Élément absent : cbc:IssueDate",
            "Élément absent : cac:AccountingCustomerParty"
        ]
    );
    assert_eq!(d.errors[1].code.as_deref(), Some("E2"));
    let deposit = second;
    let recorded: Deposit =
        serde_json::from_value(host.state()[&format!("deposit/{}", deposit.deposit_id)].clone())
            .unwrap();
    assert_eq!(recorded, d);
    assert!(host
        .logs()
        .iter()
        .any(|l| l.contains("is now rejected (IN_REJETE) with 2 error(s)")));
}

#[test]
fn an_unknown_deposit_is_not_found_and_a_foreign_one_is_recorded() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{API}/cpro/transverses/v1/consulterCRDetaille"),
        400,
        r#"{"codeRetour":20002,"libelle":"Aucun flux déposé ne correspond au numéro CPP0"}"#,
    );
    let e = testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: "CPP0".into(),
        },
        config(),
        &host,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains("CPP0") && e.message.contains("code 20002"),
        "{}",
        e.message
    );
    report_route(&host, vec![report("IN_INTEGRE")]);
    let d = testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: "CPP77".into(),
        },
        config(),
        &host,
    )
    .unwrap();
    assert_eq!(
        (d.state, d.file_name.as_str()),
        (DepositState::Integrated, "FA-11.xml")
    );
    assert_eq!(d.deposited_on.as_deref(), Some("2027-01-15T10:00:00Z"));
    assert!(host.state().contains_key("deposit/CPP77"));
    let e = testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: "../x".into(),
        },
        config(),
        &host,
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("deposit_id"));
}

#[test]
fn list_shows_recorded_deposits_newest_first() {
    let host = host();
    for n in 1..=3 {
        submit(
            &host,
            config(),
            &submission(&format!("L-{n}.xml"), &support::ubl(&format!("L-{n}"))),
        )
        .unwrap();
        host.set_now_ms(1_800_000_000_000 + n * 1000);
    }
    report_route(&host, vec![report("IN_INTEGRE")]);
    testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: "CPP2027000000002".into(),
        },
        config(),
        &host,
    )
    .unwrap();
    let all =
        testing::invoke::<ChorusPro, EinvoiceList>(&DepositFilter::default(), config(), &host)
            .unwrap();
    let names: Vec<&str> = all.deposits.iter().map(|d| d.file_name.as_str()).collect();
    assert_eq!(names, ["L-3.xml", "L-2.xml", "L-1.xml"]);
    let pending = testing::invoke::<ChorusPro, EinvoiceList>(
        &DepositFilter {
            state: Some(DepositState::Pending),
            limit: Some(1),
        },
        config(),
        &host,
    )
    .unwrap();
    let names: Vec<&str> = pending
        .deposits
        .iter()
        .map(|d| d.file_name.as_str())
        .collect();
    assert_eq!(names, ["L-3.xml"]);
}

#[test]
fn the_follow_up_task_checks_pending_deposits_only() {
    let host = host();
    for n in 1..=3 {
        submit(
            &host,
            config(),
            &submission(&format!("F-{n}.xml"), &support::ubl(&format!("F-{n}"))),
        )
        .unwrap();
    }
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host);
    // No report route yet: every consultation fails on its own, the run goes on.
    let outcome = outcome.unwrap();
    assert!(
        outcome.summary.contains("3 could not be checked"),
        "{}",
        outcome.summary
    );
    let mut rejected = report("IN_REJETE");
    rejected["listeErreurTechnique"] = json!([{"libelleErreur": "x"}]);
    report_route(
        &host,
        vec![
            report("IN_INTEGRE"),
            rejected,
            report("IN_EN_COURS_TRAITEMENT"),
            report("IN_INTEGRE"),
        ],
    );
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert_eq!(
        outcome.summary,
        "checked 3 of 3 deposit(s) in progress: 1 integrated, 0 partially integrated, 1 rejected, 1 still in progress"
    );
    // The last one is integrated now; the integrated ones' invoices are followed until paid.
    let before = api_requests(&host).len();
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert!(
        outcome.summary.starts_with("checked 2 of 2"),
        "{}",
        outcome.summary
    );
    // One report (the pending one) and one invoice search per integrated deposit.
    assert_eq!(api_requests(&host).len(), before + 3);
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/factures/v1/rechercher/fournisseur"),
        |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let flow = body["numeroFluxDepot"].as_str().unwrap().to_owned();
            respond(
                200,
                json!({"codeRetour": 0, "listeFactures": [{
                    "identifiantFactureCPP": 8420001, "numeroFacture": flow,
                    "statut": "MISE_EN_PAIEMENT"
                }]}),
            )
        },
    );
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert!(
        outcome
            .summary
            .ends_with("; 2 invoice(s) followed: 2 in payment, 0 rejected or suspended"),
        "{}",
        outcome.summary
    );
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert_eq!(outcome.summary, "no deposit in progress");
    let e = testing::run_task::<ChorusPro>("nope", config(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn the_follow_up_stops_when_the_credentials_are_refused() {
    let host = host();
    for n in 1..=2 {
        submit(
            &host,
            config(),
            &submission(&format!("G-{n}.xml"), &support::ubl(&format!("G-{n}"))),
        )
        .unwrap();
    }
    host.on(
        Method::Post,
        &format!("{API}/cpro/transverses/v1/consulterCRDetaille"),
        401,
        r#"{"codeRetour":20010,"libelle":"mot de passe incorrect"}"#,
    );
    let e = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("technical_password"));
    assert!(
        e.message.starts_with("follow-up stopped at deposit"),
        "{}",
        e.message
    );
    let reports = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("consulterCRDetaille"))
        .count();
    assert_eq!(reports, 1);
}

#[test]
fn manifest_quotas_and_validation() {
    let m = testing::manifest::<ChorusPro>().expect("the exported manifest");
    assert_eq!(m.id, "chorus-pro");
    assert_eq!(m.category, Category::Einvoice);
    assert_eq!(
        m.capabilities,
        ["einvoice.submit", "einvoice.status", "einvoice.list"]
    );
    assert!(m.check().is_ok());
    assert_eq!(m.tasks[0].name, "follow_deposits");
    assert_eq!(m.tasks[0].interval_field, "follow_interval_secs");
    assert_eq!(m.tasks[0].start_delay_field, "follow_start_delay_secs");
    let schema = testing::schema::<ChorusPro>();
    assert!(schema["properties"]["follow_interval_secs"].is_object());
    assert!(schema["properties"]["follow_start_delay_secs"].is_object());
    let parse = |v: Value| -> Config { serde_json::from_value(v).unwrap() };
    assert_eq!(ChorusPro::quotas(&parse(config())).per_second, Some(5));
    assert_eq!(ChorusPro::quotas(&parse(config())).per_day, Some(50_000));
    let production = parse(with(json!({
        "oauth_url": "https://oauth.piste.gouv.fr/api/oauth/token",
        "api_url": "https://api.piste.gouv.fr"
    })));
    assert_eq!(ChorusPro::quotas(&production).per_second, Some(20));
    assert_eq!(ChorusPro::quotas(&production).per_day, Some(1_000_000));
    let local = parse(with(json!({
        "oauth_url": "http://127.0.0.1:9/api/oauth/token",
        "api_url": "http://127.0.0.1:9",
        "environment": "production"
    })));
    assert_eq!(ChorusPro::quotas(&local).per_second, Some(20));
    let mixed = parse(with(json!({"api_url": "https://api.piste.gouv.fr"})));
    let errors = ChorusPro::validate(&mixed);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_deref(), Some("api_url"));
}

#[test]
fn the_health_check_accepts_every_healthy_shape_and_only_those() {
    for (body, healthy) in [
        (r#"{"statusCode":"200"}"#, true),
        (r#"{"statusCode":200}"#, true),
        (
            r#"{"headers":{},"body":null,"statusCode":"OK","statusCodeValue":200}"#,
            true,
        ),
        (r#"{"statusCode":"503"}"#, false),
        (r#"{"statusCode":"OK","statusCodeValue":500}"#, false),
        (r#"{}"#, false),
    ] {
        let host = host();
        host.on(
            Method::Get,
            &format!("{API}/cpro/transverses/v1/health-check"),
            200,
            body,
        );
        let report = testing::test::<ChorusPro>(config(), &host);
        let step = report.steps.iter().find(|s| s.name == "reach API").unwrap();
        assert_eq!(
            step.status == Status::Ok,
            healthy,
            "{body}: {}",
            step.detail
        );
        assert_eq!(report.status == Status::Ok, healthy, "{body}");
    }
}

#[test]
fn a_technical_account_not_attached_fails_the_test_routine() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{API}/cpro/utilisateurs/v1/monCompte/recuperer/rattachements"),
        200,
        json!({"codeRetour": 0, "listeStructureRattachement": [{
            "identifiantStructure": "99999999900019", "statutRattachementStructure": "ACTIF"
        }]})
        .to_string(),
    );
    let report = testing::test::<ChorusPro>(config(), &host);
    assert_eq!(report.status, Status::Failed);
    let step = report.steps.last().unwrap();
    assert_eq!(
        (step.name.as_str(), step.status),
        ("check attachment", Status::Failed)
    );
    assert!(
        step.detail
            .contains("is not attached to structure 12345678200010")
            && step.detail.contains("only 99999999900019"),
        "{}",
        step.detail
    );
    let sent = api_requests(&host);
    let body: Value = serde_json::from_slice(&sent.last().unwrap().body).unwrap();
    assert_eq!(body["parametresRecherche"]["pageResultatDemandee"], 1);
}

/// A UBL invoice to the strict recipient, with the references given.
fn ubl_to_strict(number: &str, service: Option<&str>, engagement: Option<&str>) -> Vec<u8> {
    let mut references = String::new();
    if let Some(s) = service {
        references.push_str(&format!("<cbc:BuyerReference>{s}</cbc:BuyerReference>"));
    }
    if let Some(e) = engagement {
        references.push_str(&format!(
            "<cac:OrderReference><cbc:ID>{e}</cbc:ID></cac:OrderReference>"
        ));
    }
    String::from_utf8(support::ubl(number))
        .unwrap()
        .replace("21920023500014", STRICT_BUYER)
        .replace(
            "  <cac:AccountingSupplierParty>",
            &format!("  {references}\n  <cac:AccountingSupplierParty>"),
        )
        .into_bytes()
}

#[test]
fn an_invoice_lacking_what_its_recipient_requires_is_refused_before_deposit() {
    let host = host();
    let e = submit(
        &host,
        config(),
        &submission("S-1.xml", &ubl_to_strict("S-1", None, Some("EJ-1"))),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(e.field.as_deref(), Some("content_base64"));
    assert!(
        e.message
            .contains("DRFIP (13002526500013) requires a service code")
            && !e.message.contains("engagement number (")
            && e.message.contains("it was not sent"),
        "{}",
        e.message
    );
    let deposits = |host: &ScriptedHost| {
        api_requests(host)
            .iter()
            .filter(|r| r.url.ends_with("/deposer/flux"))
            .count()
    };
    assert_eq!(deposits(&host), 0);
    let consult: Value = serde_json::from_slice(
        &api_requests(&host)
            .iter()
            .find(|r| r.url.ends_with("/structures/v1/consulter"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        consult,
        json!({"idStructureCPP": 26000202, "codeLangue": "fr"})
    );
    let e = submit(
        &host,
        config(),
        &submission("S-2.xml", &ubl_to_strict("S-2", Some("SERV-1"), None)),
    )
    .unwrap_err();
    assert!(e.message.contains("an engagement number"), "{}", e.message);
    // With both, it is deposited; the recipient's rules were asked for once.
    submit(
        &host,
        config(),
        &submission(
            "S-3.xml",
            &ubl_to_strict("S-3", Some("SERV-1"), Some("EJ-1")),
        ),
    )
    .unwrap();
    assert_eq!(deposits(&host), 1);
    let lookups = api_requests(&host)
        .iter()
        .filter(|r| r.url.ends_with("/structures/v1/consulter"))
        .count();
    assert_eq!(lookups, 1);
}

#[test]
fn every_failed_flow_state_is_final_with_its_errors_and_frees_the_file() {
    for state in [
        "IN_REJETE",
        "IN_INCIDENTE",
        "QP_IRRECEVABLE",
        "QP_RECEVABLE_AVEC_ERREUR",
    ] {
        let host = host();
        let file = submission("R-1.xml", &support::ubl("R-1"));
        let deposit = submit(&host, config(), &file).unwrap();
        let mut failed = report(state);
        failed["listeErreurTechnique"] = json!([{"codeErreur": "X1", "libelleErreur": format!("échec {state}"), "natureErreur": "BLOQUANTE"}]);
        report_route(&host, vec![failed]);
        let d = testing::invoke::<ChorusPro, EinvoiceStatus>(
            &DepositRef {
                deposit_id: deposit.deposit_id.clone(),
            },
            config(),
            &host,
        )
        .unwrap();
        assert_eq!(d.state, DepositState::Rejected, "{state}");
        assert!(d.state.is_final());
        assert_eq!(d.provider_state.as_deref(), Some(state));
        assert_eq!(d.errors[0].message, format!("échec {state}"));
        // Not followed any more, and the same file may be deposited again.
        let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
        assert_eq!(outcome.summary, "no deposit in progress", "{state}");
        let again = submit(&host, config(), &file).unwrap();
        assert_ne!(again.deposit_id, deposit.deposit_id);
    }
}

#[test]
fn an_unknown_flow_state_is_reported_as_such_not_as_pending() {
    let host = host();
    let deposit = submit(
        &host,
        config(),
        &submission("U-1.xml", &support::ubl("U-1")),
    )
    .unwrap();
    report_route(
        &host,
        vec![report("IN_ETAT_INEDIT"), report("IN_ETAT_INEDIT")],
    );
    let d = testing::invoke::<ChorusPro, EinvoiceStatus>(
        &DepositRef {
            deposit_id: deposit.deposit_id.clone(),
        },
        config(),
        &host,
    )
    .unwrap();
    assert_eq!(
        (d.state, d.provider_state.as_deref()),
        (DepositState::Unknown, Some("IN_ETAT_INEDIT"))
    );
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert!(
        outcome.summary.contains(&format!(
            "1 in a state this plugin does not know ({}: IN_ETAT_INEDIT)",
            deposit.deposit_id
        )),
        "{}",
        outcome.summary
    );
    assert!(
        !outcome.summary.contains("1 still in progress"),
        "{}",
        outcome.summary
    );
}

#[test]
fn an_integrated_invoice_is_followed_to_payment() {
    let host = host();
    let deposit = submit(
        &host,
        config(),
        &submission("P-1.xml", &support::ubl("P-1")),
    )
    .unwrap();
    report_route(&host, vec![report("IN_INTEGRE")]);
    let statuses = Arc::new(Mutex::new(vec![
        "MISE_EN_PAIEMENT",
        "MANDATEE",
        "SUSPENDUE",
        "MISE_A_DISPOSITION",
        "DEPOSEE",
    ]));
    host.on_fn(
        Method::Post,
        &format!("{API}/cpro/factures/v1/rechercher/fournisseur"),
        move |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let status = {
                let mut s = statuses.lock().unwrap();
                if s.len() > 1 {
                    s.pop().unwrap()
                } else {
                    s[0]
                }
            };
            respond(
                200,
                json!({"codeRetour": 0, "listeFactures": [{
                    "identifiantFactureCPP": 8420001, "numeroFacture": "P-1",
                    "numeroFluxDepot": body["numeroFluxDepot"], "statut": status
                }]}),
            )
        },
    );
    let query = DepositRef {
        deposit_id: deposit.deposit_id.clone(),
    };
    let mut seen = Vec::new();
    for _ in 0..5 {
        let d = testing::invoke::<ChorusPro, EinvoiceStatus>(&query, config(), &host).unwrap();
        assert_eq!(d.state, DepositState::Integrated);
        assert_eq!(d.invoices.len(), 1);
        assert_eq!(d.invoices[0].invoice_id, "8420001");
        assert_eq!(d.invoices[0].number.as_deref(), Some("P-1"));
        seen.push((d.invoices[0].status.clone(), d.invoices[0].settled));
    }
    assert_eq!(
        seen,
        [
            ("DEPOSEE".to_owned(), false),
            ("MISE_A_DISPOSITION".to_owned(), false),
            ("SUSPENDUE".to_owned(), false),
            ("MANDATEE".to_owned(), false),
            ("MISE_EN_PAIEMENT".to_owned(), true),
        ]
    );
    let sent: Value = serde_json::from_slice(&api_requests(&host).pop().unwrap().body).unwrap();
    assert_eq!(sent, json!({"numeroFluxDepot": deposit.deposit_id}));
    assert!(host.logs().iter().any(
        |l| l.contains("invoice P-1 (identifiantFactureCPP 8420001)")
            && l.contains("is now SUSPENDUE")
    ));
    // The ERP is told each change once: the deposit integrated, then each invoice status.
    let told: Vec<(String, Option<String>, String, String)> = host
        .events()
        .into_iter()
        .map(|e| {
            assert_eq!(e.kind, "einvoice.status_changed");
            let d: passerelle_plugin_api::events::EinvoiceStatusChanged =
                serde_json::from_value(e.data).unwrap();
            assert_eq!(d.deposit_id, deposit.deposit_id);
            (d.previous_status, d.invoice, d.status, e.key.unwrap())
        })
        .collect();
    let statuses: Vec<_> = told.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "integrated",
            "DEPOSEE",
            "MISE_A_DISPOSITION",
            "SUSPENDUE",
            "MANDATEE",
            "MISE_EN_PAIEMENT"
        ]
    );
    assert_eq!(told[2].0, "DEPOSEE");
    assert_eq!(told[2].1.as_deref(), Some("P-1"));
    // Paid: the follow-up has nothing left to ask.
    let outcome = testing::run_task::<ChorusPro>("follow_deposits", config(), &host).unwrap();
    assert_eq!(outcome.summary, "no deposit in progress");
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<ChorusPro>("fr");
}
