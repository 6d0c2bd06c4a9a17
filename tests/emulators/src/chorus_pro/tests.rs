use super::*;
use crate::kit::bytes::rfind;
use crate::kit::pdf::embedded_file;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One HTTP/1.1 exchange on a fresh connection: status and body.
fn call(
    emu: &ChorusProEmulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(emu.server.addr()).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn token(emu: &ChorusProEmulator) -> String {
    let o = emu.options();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
        o.client_id, o.client_secret
    );
    let (status, _, body) = call(
        emu,
        "POST",
        TOKEN_PATH,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn account(emu: &ChorusProEmulator) -> String {
    let o = emu.options();
    base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", o.technical_login, o.technical_password))
}

fn api(emu: &ChorusProEmulator, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let account = account(emu);
    let (status, _, text) = call(
        emu,
        "POST",
        path,
        &[
            ("Authorization", &bearer),
            ("cpro-account", &account),
            ("Content-Type", "application/json;charset=utf-8"),
        ],
        body.to_string().as_bytes(),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn options() -> ChorusProOptions {
    ChorusProOptions {
        per_second: 0,
        ..ChorusProOptions::default()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn token_endpoint_checks_the_client_and_the_scope() {
    let emu = ChorusProEmulator::start(options()).unwrap();
    let (status, _, body) = call(
        &emu,
        "POST",
        TOKEN_PATH,
        &[],
        b"grant_type=client_credentials&client_id=piste-client-id&client_secret=nope",
    );
    assert_eq!(status, 400);
    assert!(body.contains("invalid_client"), "{body}");
    let (status, _, body) = call(
        &emu,
        "POST",
        TOKEN_PATH,
        &[],
        b"grant_type=client_credentials&client_id=piste-client-id&client_secret=piste-client-secret&scope=admin",
    );
    assert_eq!(status, 400);
    assert!(body.contains("invalid_scope"), "{body}");
    assert!(!token(&emu).is_empty());
    assert_eq!(emu.token_requests(), 3);
}

#[test]
fn every_call_needs_a_live_token_the_account_and_json() {
    let emu = ChorusProEmulator::start(options()).unwrap();
    let t = token(&emu);
    let (status, _, _) = call(&emu, "GET", HEALTH_CHECK_PATH, &[], b"");
    assert_eq!(status, 401);
    let bearer = format!("Bearer {t}");
    let (status, _, body) = call(
        &emu,
        "GET",
        HEALTH_CHECK_PATH,
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 401);
    assert!(body.contains("cpro-account"), "{body}");
    let acct = account(&emu);
    let (status, _, body) = call(
        &emu,
        "GET",
        HEALTH_CHECK_PATH,
        &[("Authorization", &bearer), ("cpro-account", &acct)],
        b"",
    );
    assert_eq!((status, body.as_str()), (200, r#"{"statusCode":"200"}"#));
    let (status, _, _) = call(
        &emu,
        "POST",
        STRUCTURES_PATH,
        &[
            ("Authorization", &bearer),
            ("cpro-account", &acct),
            ("Content-Type", "text/plain"),
        ],
        b"{}",
    );
    assert_eq!(status, 415);
    let wrong = b64(b"TECH:wrong");
    let (status, _, body) = call(
        &emu,
        "GET",
        HEALTH_CHECK_PATH,
        &[("Authorization", &bearer), ("cpro-account", &wrong)],
        b"",
    );
    assert_eq!(status, 401);
    assert!(body.contains("codeRetour"), "{body}");
    emu.expire_tokens();
    let (status, head, _) = call(
        &emu,
        "GET",
        HEALTH_CHECK_PATH,
        &[("Authorization", &bearer), ("cpro-account", &acct)],
        b"",
    );
    assert_eq!(status, 401);
    assert!(
        head.to_lowercase().contains("error=\"invalid_token\""),
        "{head}"
    );
}

#[test]
fn structures_are_found_or_refused_in_chorus_shape() {
    let emu = ChorusProEmulator::start(options()).unwrap();
    let t = token(&emu);
    let (status, body) = api(
        &emu,
        &t,
        STRUCTURES_PATH,
        &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["codeRetour"], 0);
    assert_eq!(body["listeStructures"][0]["idStructureCPP"], 25_000_101);
    assert_eq!(body["parametresRetour"]["total"], 1);
    let (status, body) = api(
        &emu,
        &t,
        STRUCTURES_PATH,
        &json!({"structure": {"identifiantStructure": "99999999999999", "typeIdentifiantStructure": "SIRET"}}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["codeRetour"], CODE_UNKNOWN_STRUCTURE);
    assert!(body["libelle"]
        .as_str()
        .unwrap()
        .contains("Aucune structure"));
}

#[test]
fn deposits_are_checked_against_their_syntax_and_progress() {
    let emu = ChorusProEmulator::start(options()).unwrap();
    let t = token(&emu);
    let deposit = |name: &str, content: &str, syntax: &str| {
        api(
            &emu,
            &t,
            DEPOSIT_PATH,
            &json!({"fichierFlux": content, "nomFichier": name, "syntaxeFlux": syntax, "avecSignature": false}),
        )
    };
    let (status, body) = deposit("a.xml", "%%%", SYNTAX_UBL);
    assert_eq!(
        (status, body["codeRetour"].clone()),
        (400, json!(CODE_BAD_BASE64))
    );
    let ubl = b64(&samples::ubl_invoice("FA-1"));
    let (status, body) = deposit("a.xml", &ubl, SYNTAX_CII);
    assert_eq!(status, 400);
    assert_eq!(body["codeRetour"], CODE_SYNTAX_MISMATCH);
    assert!(
        body["libelle"].as_str().unwrap().contains("racine"),
        "{body}"
    );
    let (status, body) = deposit("a.xml", &ubl, "IN_DP_E9_NOPE");
    assert_eq!(
        (status, body["codeRetour"].clone()),
        (400, json!(CODE_UNKNOWN_SYNTAX))
    );
    let plain = b64(&samples::plain_pdf("FA-2"));
    let (status, body) = deposit("a.pdf", &plain, SYNTAX_FACTURX);
    assert_eq!(status, 400);
    assert!(
        body["libelle"].as_str().unwrap().contains("factur-x.xml"),
        "{body}"
    );
    let big = b64(&vec![b' '; MAX_FILE_BYTES + 1]);
    let (status, body) = deposit("big.xml", &big, SYNTAX_UBL);
    assert_eq!(
        (status, body["codeRetour"].clone()),
        (400, json!(CODE_TOO_LARGE))
    );

    let (status, body) = deposit("FA-1.xml", &ubl, SYNTAX_UBL);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["codeRetour"], 0);
    assert_eq!(body["syntaxeFlux"], SYNTAX_UBL);
    let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
    assert!(number.starts_with("CPP"), "{number}");
    let states: Vec<Value> = (0..4)
        .map(|_| {
            let (status, body) = api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number}));
            assert_eq!(status, 200);
            body["etatCourantDepotFlux"].clone()
        })
        .collect();
    assert_eq!(
        states,
        [
            json!("IN_RECU"),
            json!("IN_TRAITE_SE_CPP"),
            json!("IN_INTEGRE"),
            json!("IN_INTEGRE")
        ]
    );
    let (status, body) = api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": "CPP0"}));
    assert_eq!(
        (status, body["codeRetour"].clone()),
        (400, json!(CODE_UNKNOWN_DEPOSIT))
    );

    let fx = b64(&samples::factur_x_pdf("FA-3"));
    let (status, body) = deposit("FA-3.pdf", &fx, SYNTAX_FACTURX);
    assert_eq!(status, 200, "{body}");
    let cii = b64(&samples::cii_invoice("FA-4"));
    let (status, _) = deposit("FA-4.xml", &cii, SYNTAX_CII);
    assert_eq!(status, 200);
    let deposits = emu.deposits();
    assert_eq!(deposits.len(), 3);
    assert_eq!(deposits[1].invoice_number.as_deref(), Some("FA-3"));
    assert_eq!(deposits[2].invoice_number.as_deref(), Some("FA-4"));
    assert_eq!(deposits[0].consultations, 4);
}

#[test]
fn incomplete_and_forced_invoices_end_with_their_errors() {
    let emu = ChorusProEmulator::start(ChorusProOptions {
        consultations_before_final: 0,
        ..options()
    })
    .unwrap();
    let t = token(&emu);
    let mut numbers = Vec::new();
    emu.force_outcome("partial.xml", DepositOutcome::PartiallyIntegrated);
    for (name, content) in [
        ("bad.xml", samples::incomplete_ubl_invoice("FA-9")),
        ("partial.xml", samples::ubl_invoice("FA-10")),
    ] {
        let (status, body) = api(
            &emu,
            &t,
            DEPOSIT_PATH,
            &json!({"fichierFlux": b64(&content), "nomFichier": name, "syntaxeFlux": SYNTAX_UBL}),
        );
        assert_eq!(status, 200, "{body}");
        numbers.push(body["numeroFluxDepot"].as_str().unwrap().to_owned());
    }
    let (_, rejected) = api(
        &emu,
        &t,
        REPORT_PATH,
        &json!({"numeroFluxDepot": numbers[0]}),
    );
    assert_eq!(rejected["etatCourantDepotFlux"], "IN_REJETE");
    let errors = rejected["listeErreurTechnique"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{rejected}");
    assert!(errors[0]["libelleErreur"]
        .as_str()
        .unwrap()
        .contains("cbc:IssueDate"));
    let (_, partial) = api(
        &emu,
        &t,
        REPORT_PATH,
        &json!({"numeroFluxDepot": numbers[1]}),
    );
    assert_eq!(partial["etatCourantDepotFlux"], "IN_INTEGRE_PARTIEL");
    assert_eq!(partial["listeErreurDP"][0]["numeroDP"], "FA-10");
    assert_eq!(
        partial["listeErreurDP"][0]["identifiantDestinataire"],
        BUYER_SIRET
    );
}

/// Deposits `bytes` (UBL) as `file` and consults its report until the final state shows.
fn deposit_to_the_end(
    emu: &ChorusProEmulator,
    t: &str,
    file: &str,
    bytes: &[u8],
) -> (String, Value) {
    let (status, body) = api(
        emu,
        t,
        DEPOSIT_PATH,
        &json!({"fichierFlux": b64(bytes), "nomFichier": file, "syntaxeFlux": SYNTAX_UBL}),
    );
    assert_eq!(status, 200, "{body}");
    let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
    let mut last = Value::Null;
    for _ in 0..=emu.options().consultations_before_final {
        last = api(emu, t, REPORT_PATH, &json!({"numeroFluxDepot": number})).1;
    }
    (number, last)
}

#[test]
fn every_published_flow_state_and_only_those() {
    let emu = ChorusProEmulator::start(ChorusProOptions {
        consultations_before_final: 3,
        ..options()
    })
    .unwrap();
    let t = token(&emu);
    let (status, body) = api(
        &emu,
        &t,
        DEPOSIT_PATH,
        &json!({"fichierFlux": b64(&samples::ubl_invoice("FS-0")), "nomFichier": "FS-0.xml", "syntaxeFlux": SYNTAX_UBL}),
    );
    assert_eq!(status, 200);
    let number = body["numeroFluxDepot"].as_str().unwrap().to_owned();
    let states: Vec<Value> = (0..4)
        .map(|_| {
            api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number})).1
                ["etatCourantDepotFlux"]
                .clone()
        })
        .collect();
    assert_eq!(
        states,
        [
            json!("IN_RECU"),
            json!("IN_EN_COURS_TRAITEMENT_CPP"),
            json!("IN_TRAITE_SE_CPP"),
            json!("IN_INTEGRE")
        ]
    );
    for (i, outcome) in [
        DepositOutcome::Incident,
        DepositOutcome::Irreceivable,
        DepositOutcome::ReceivableWithError,
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("FS-{}.xml", i + 1);
        emu.force_outcome(&file, outcome);
        let (_, report) = deposit_to_the_end(
            &emu,
            &t,
            &file,
            &samples::ubl_invoice(&format!("FS-{}", i + 1)),
        );
        assert_eq!(report["etatCourantDepotFlux"], outcome.code());
        let errors = report["listeErreurTechnique"].as_array().unwrap().len()
            + report["listeErreurDP"].as_array().unwrap().len();
        assert!(errors > 0, "{report}");
    }
}

#[test]
fn attachments_recipients_and_invoices() {
    let emu = ChorusProEmulator::start(options()).unwrap();
    let t = token(&emu);
    let paging =
        json!({"parametresRecherche": {"nbResultatsParPage": 10, "pageResultatDemandee": 1}});
    let (status, body) = api(&emu, &t, ATTACHMENTS_PATH, &paging);
    assert_eq!(status, 200);
    assert_eq!(
        body["listeStructureRattachement"][0]["identifiantStructure"],
        SUPPLIER_SIRET
    );
    emu.detach(SUPPLIER_SIRET);
    let (_, body) = api(&emu, &t, ATTACHMENTS_PATH, &paging);
    assert_eq!(body["listeStructureRattachement"], json!([]));
    // Detached, the structure is still in the directory.
    let (status, _) = api(
        &emu,
        &t,
        STRUCTURES_PATH,
        &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
    );
    assert_eq!(status, 200);

    let (status, found) = api(
        &emu,
        &t,
        STRUCTURES_PATH,
        &json!({"structure": {"identifiantStructure": STRICT_BUYER_SIRET, "typeIdentifiantStructure": "SIRET"}}),
    );
    assert_eq!(status, 200);
    let id = found["listeStructures"][0]["idStructureCPP"].clone();
    let (_, details) = api(
        &emu,
        &t,
        STRUCTURE_CONSULT_PATH,
        &json!({"idStructureCPP": id, "codeLangue": "fr"}),
    );
    assert_eq!(details["parametres"]["codeServiceDoitEtreRenseigne"], true);
    assert_eq!(details["parametres"]["numeroEJDoitEtreRenseigne"], true);

    // Without the service code and engagement its recipient requires: rejected.
    let (_, report) = deposit_to_the_end(
        &emu,
        &t,
        "S-1.xml",
        &samples::ubl_invoice_to("S-1", STRICT_BUYER_SIRET, None, None),
    );
    assert_eq!(report["etatCourantDepotFlux"], "IN_REJETE");
    assert_eq!(report["listeErreurDP"].as_array().unwrap().len(), 2);
    let (number, report) = deposit_to_the_end(
        &emu,
        &t,
        "S-2.xml",
        &samples::ubl_invoice_to(
            "S-2",
            STRICT_BUYER_SIRET,
            Some("SERV-01"),
            Some("EJ-2025-7"),
        ),
    );
    assert_eq!(report["etatCourantDepotFlux"], "IN_INTEGRE", "{report}");

    let search = json!({"numeroFluxDepot": number});
    let statuses: Vec<Value> = (0..5)
        .map(|_| {
            let (status, body) = api(&emu, &t, SUPPLIER_INVOICES_PATH, &search);
            assert_eq!(status, 200, "{body}");
            assert!(body["listeFactures"][0]["identifiantFactureCPP"].is_u64());
            body["listeFactures"][0]["statut"].clone()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            json!("DEPOSEE"),
            json!("MISE_A_DISPOSITION"),
            json!("MANDATEE"),
            json!("MISE_EN_PAIEMENT"),
            json!("MISE_EN_PAIEMENT")
        ]
    );
    emu.set_invoice_status("S-2", "SUSPENDUE");
    let (_, body) = api(&emu, &t, SUPPLIER_INVOICES_PATH, &search);
    assert_eq!(body["listeFactures"][0]["statut"], "SUSPENDUE");
    let (status, body) = api(
        &emu,
        &t,
        SUPPLIER_INVOICES_PATH,
        &json!({"numeroFluxDepot": "CPP0"}),
    );
    assert_eq!(
        (status, body["codeRetour"].clone()),
        (400, json!(CODE_UNKNOWN_DEPOSIT))
    );

    let bearer = format!("Bearer {t}");
    let account = account(&emu);
    let headers = [
        ("Authorization", bearer.as_str()),
        ("cpro-account", account.as_str()),
    ];
    for (shape, field, value) in [
        (HealthShape::NumberCode, "statusCode", json!(200)),
        (HealthShape::Spring, "statusCodeValue", json!(200)),
        (HealthShape::Failing, "statusCode", json!("503")),
    ] {
        emu.set_health_shape(shape);
        let (status, _, body) = call(&emu, "GET", HEALTH_CHECK_PATH, &headers, b"");
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body[field], value, "{body}");
    }
}

#[test]
fn the_quota_is_strict_and_failures_can_be_injected() {
    let emu = ChorusProEmulator::start(ChorusProOptions {
        per_second: 3,
        ..ChorusProOptions::default()
    })
    .unwrap();
    let t = token(&emu);
    let statuses: Vec<u16> = (0..5)
        .map(|_| api(&emu, &t, STRUCTURES_PATH, &json!({})).0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(emu.quota_refusals(), 2);
    assert_eq!(emu.max_in_any_second(), 3);
    std::thread::sleep(Duration::from_millis(1050));
    emu.fail_next(2);
    let statuses: Vec<u16> = (0..3)
        .map(|_| api(&emu, &t, STRUCTURES_PATH, &json!({})).0)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[test]
fn sample_pdfs_are_well_formed() {
    let pdf = samples::factur_x_pdf("FA-1");
    assert!(pdf.starts_with(b"%PDF-1.7"));
    assert!(names_facturx(&pdf));
    let xml = embedded_file(&pdf).unwrap();
    assert_eq!(xml, samples::cii_invoice("FA-1"));
    // Every cross-reference entry points at its object.
    let tail_at = rfind(&pdf, b"startxref\n").unwrap() + 10;
    let tail = std::str::from_utf8(&pdf[tail_at..]).unwrap();
    let xref_at: usize = tail.lines().next().unwrap().parse().unwrap();
    assert!(pdf[xref_at..].starts_with(b"xref\n0 8\n"));
    let table = std::str::from_utf8(&pdf[xref_at..tail_at]).unwrap();
    let entries: Vec<&str> = table.lines().skip(3).take(7).collect();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.len(), 19, "{entry:?}");
        let offset: usize = entry[..10].parse().unwrap();
        assert!(pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()));
    }
    assert!(!names_facturx(&samples::plain_pdf("x")));
    assert!(!names_facturx(&samples::pdf_with_attachment(
        "x",
        "invoice.xml"
    )));
}

/// Every field of `reference` is in `actual`, nested the same way, with the same type.
fn same_shape(reference: &Value, actual: &Value, path: &str) {
    match (reference, actual) {
        (Value::Object(r), Value::Object(a)) => {
            for (k, v) in r {
                let inner = format!("{path}.{k}");
                let got = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{inner} is missing in {actual}"));
                same_shape(v, got, &inner);
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            if let (Some(r), Some(a)) = (r.first(), a.first()) {
                same_shape(r, a, &format!("{path}[0]"));
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{path}: the reference has {reference}, the emulator {actual}"),
    }
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "token" => include_str!("../../fixtures/chorus-pro/oauth_token.response.json"),
        "health" => {
            include_str!("../../fixtures/chorus-pro/transverses_health-check.response.json")
        }
        "structures" => {
            include_str!("../../fixtures/chorus-pro/structures_rechercher.response.json")
        }
        "deposit" => {
            include_str!("../../fixtures/chorus-pro/factures_deposer_flux.response.json")
        }
        "attachments" => {
            include_str!("../../fixtures/chorus-pro/utilisateurs_rattachements.response.json")
        }
        _ => {
            include_str!("../../fixtures/chorus-pro/transverses_consulterCRDetaille.response.json")
        }
    };
    serde_json::from_str(text).unwrap()
}

#[test]
fn answers_have_the_reference_shapes() {
    let emu = ChorusProEmulator::start(ChorusProOptions {
        consultations_before_final: 0,
        ..options()
    })
    .unwrap();
    let o = emu.options().clone();
    let (_, _, body) = call(
        &emu,
        "POST",
        TOKEN_PATH,
        &[],
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=openid",
            o.client_id, o.client_secret
        )
        .as_bytes(),
    );
    same_shape(
        &fixture("token"),
        &serde_json::from_str(&body).unwrap(),
        "token",
    );
    let t = token(&emu);
    let bearer = format!("Bearer {t}");
    let acct = account(&emu);
    let (_, _, body) = call(
        &emu,
        "GET",
        HEALTH_CHECK_PATH,
        &[("Authorization", &bearer), ("cpro-account", &acct)],
        b"",
    );
    same_shape(
        &fixture("health"),
        &serde_json::from_str(&body).unwrap(),
        "health",
    );
    let (_, body) = api(
        &emu,
        &t,
        STRUCTURES_PATH,
        &json!({"structure": {"identifiantStructure": SUPPLIER_SIRET}}),
    );
    same_shape(&fixture("structures"), &body, "structures");
    let (_, body) = api(
        &emu,
        &t,
        ATTACHMENTS_PATH,
        &json!({"parametresRecherche": {"nbResultatsParPage": 10, "pageResultatDemandee": 1}}),
    );
    same_shape(&fixture("attachments"), &body, "attachments");
    let mut reports = Vec::new();
    for (name, content, outcome) in [
        (
            "p.xml",
            samples::ubl_invoice("FA-1"),
            Some(DepositOutcome::PartiallyIntegrated),
        ),
        ("r.xml", samples::incomplete_ubl_invoice("FA-2"), None),
    ] {
        if let Some(outcome) = outcome {
            emu.force_outcome(name, outcome);
        }
        let (_, body) = api(
            &emu,
            &t,
            DEPOSIT_PATH,
            &json!({"fichierFlux": b64(&content), "nomFichier": name, "syntaxeFlux": SYNTAX_UBL}),
        );
        same_shape(&fixture("deposit"), &body, "deposit");
        let number = body["numeroFluxDepot"].clone();
        let (_, report) = api(&emu, &t, REPORT_PATH, &json!({"numeroFluxDepot": number}));
        reports.push(report);
    }
    // One report lists invoice errors, the other technical ones: between them, every list
    // has an element to compare.
    let mut merged = reports[0].clone();
    merged["listeErreurTechnique"] = reports[1]["listeErreurTechnique"].clone();
    same_shape(&fixture("report"), &merged, "report");
}

#[test]
fn form_decoding() {
    assert_eq!(form::map("v=a+b%26c%3D")["v"], "a b&c=");
    assert_eq!(form::map("v=100%")["v"], "100%");
}
