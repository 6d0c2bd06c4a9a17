//! Invoice deposit (`deposerFluxFacture`), its processing outcome, and the detailed
//! report (`consulterCRDetaille`).

use super::*;

pub(super) async fn deposit(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (Some(content), Some(file_name), Some(syntax)) =
        (text("fichierFlux"), text("nomFichier"), text("syntaxeFlux"))
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champs obligatoires : fichierFlux, nomFichier, syntaxeFlux",
        );
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(content) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_BAD_BASE64,
            "Le champ fichierFlux n'est pas encodé en base64",
        );
    };
    if bytes.len() > MAX_FILE_BYTES {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_TOO_LARGE,
            "La taille du fichier dépasse 10 Mo",
        );
    }
    if ![SYNTAX_FACTURX, SYNTAX_UBL, SYNTAX_CII].contains(&syntax) {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_SYNTAX,
            &format!("Syntaxe de flux inconnue : {syntax}"),
        );
    }
    let invoice = match analyse(&bytes, syntax) {
        Ok(invoice) => invoice,
        Err(reason) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                CODE_SYNTAX_MISMATCH,
                &format!("Le fichier ne correspond pas à la syntaxe {syntax} : {reason}"),
            )
        }
    };
    let forced = lock(&state.forced).get(file_name).copied();
    let (outcome, technical_errors, invoice_errors) =
        decide(forced, &invoice, &state.opts, file_name);
    let now = dates::unix_secs();
    let seq = state.deposit_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let number = format!("CPP{}{seq:09}", &date(now)[..4]);
    lock(&state.deposits).push(Deposit {
        number: number.clone(),
        login,
        file_name: file_name.to_owned(),
        syntax: syntax.to_owned(),
        size_bytes: bytes.len(),
        invoice_number: invoice.number.clone(),
        deposited_secs: now,
        outcome,
        technical_errors,
        invoice_errors,
        consultations: 0,
        state_changed_secs: now,
        last_state: "IN_DEPOSE".to_owned(),
        invoice_id: 8_420_000 + seq,
        invoice_searches: 0,
    });
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "dateDepot": date(now),
            "libelle": "GCU_MSG_01_000",
            "numeroFluxDepot": number,
            "syntaxeFlux": syntax
        }),
    )
}

/// The final state of a deposit, and its errors.
pub(super) fn decide(
    forced: Option<DepositOutcome>,
    invoice: &Invoice,
    opts: &ChorusProOptions,
    file_name: &str,
) -> (DepositOutcome, Vec<Value>, Vec<Value>) {
    let supplier = opts
        .structures
        .first()
        .map(|s| s.identifier.clone())
        .unwrap_or_default();
    let number = invoice
        .number
        .clone()
        .unwrap_or_else(|| file_name.to_owned());
    let dp_error = |label: &str| {
        json!({
            "identifiantDestinataire": invoice.buyer.clone().unwrap_or_default(),
            "identifiantFournisseur": supplier,
            "libelleErreurDP": label,
            "numeroDP": number
        })
    };
    match forced {
        Some(DepositOutcome::Integrated) => (DepositOutcome::Integrated, vec![], vec![]),
        Some(DepositOutcome::PartiallyIntegrated) => (
            DepositOutcome::PartiallyIntegrated,
            vec![],
            vec![dp_error(
                "Le service exécutant est obligatoire pour ce destinataire",
            )],
        ),
        Some(DepositOutcome::Rejected) => (
            DepositOutcome::Rejected,
            vec![],
            vec![dp_error("Le destinataire est inconnu de Chorus Pro")],
        ),
        Some(outcome @ DepositOutcome::Incident) => (
            outcome,
            vec![json!({
                "codeErreur": "INC_TRAITEMENT",
                "libelleErreur": "Incident lors du traitement du flux",
                "natureErreur": "TECHNIQUE"
            })],
            vec![],
        ),
        Some(outcome @ DepositOutcome::Irreceivable) => (
            outcome,
            vec![json!({
                "codeErreur": "QP_IRRECEVABLE",
                "libelleErreur": "Flux irrecevable : le fichier ne respecte pas le format annoncé",
                "natureErreur": "BLOQUANTE"
            })],
            vec![],
        ),
        Some(outcome @ DepositOutcome::ReceivableWithError) => (
            outcome,
            vec![],
            vec![dp_error(
                "Montant total incohérent avec la somme des lignes",
            )],
        ),
        None if !invoice.missing.is_empty() => (
            DepositOutcome::Rejected,
            invoice
                .missing
                .iter()
                .map(|element| {
                    json!({
                        "codeErreur": "REJ_ELEMENT_ABSENT",
                        "libelleErreur": format!("Élément obligatoire absent : {element}"),
                        "natureErreur": "BLOQUANTE"
                    })
                })
                .collect(),
            vec![],
        ),
        None => {
            let recipient = opts
                .recipients
                .iter()
                .find(|r| invoice.buyer.as_deref() == Some(r.structure.identifier.as_str()));
            let mut errors = Vec::new();
            if recipient.is_some_and(|r| r.service_code_required) && invoice.service.is_none() {
                errors.push(dp_error(
                    "Le code service est obligatoire pour ce destinataire",
                ));
            }
            if recipient.is_some_and(|r| r.engagement_required) && invoice.engagement.is_none() {
                errors.push(dp_error(
                    "Le numéro d'engagement est obligatoire pour ce destinataire",
                ));
            }
            if errors.is_empty() {
                (DepositOutcome::Integrated, vec![], vec![])
            } else {
                (DepositOutcome::Rejected, vec![], errors)
            }
        }
    }
}

pub(super) async fn report(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let Some(number) = body
        .get("numeroFluxDepot")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champ obligatoire : numeroFluxDepot",
        );
    };
    let mut deposits = lock(&state.deposits);
    let Some(d) = deposits
        .iter_mut()
        .find(|d| d.number == number && d.login == login)
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_DEPOSIT,
            &format!("Aucun flux déposé ne correspond au numéro {number}"),
        );
    };
    d.consultations += 1;
    let before = state.opts.consultations_before_final;
    let current = if d.consultations <= before {
        match d.consultations {
            1 => "IN_RECU",
            n if n == before => "IN_TRAITE_SE_CPP",
            _ => "IN_EN_COURS_TRAITEMENT_CPP",
        }
    } else {
        d.outcome.code()
    };
    if current != d.last_state {
        d.last_state = current.to_owned();
        d.state_changed_secs = dates::unix_secs();
    }
    let final_shown = d.consultations > before;
    json_response(
        StatusCode::OK,
        &json!({
            "codeInterfaceDepotFlux": d.syntax,
            "codeRetour": 0,
            "dateDepotFlux": datetime(d.deposited_secs),
            "dateHeureEtatCourantFlux": datetime(d.state_changed_secs),
            "etatCourantDepotFlux": current,
            "libelle": "TRA_MSG_00.000",
            "nomFichier": d.file_name,
            "listeErreurDP": if final_shown { d.invoice_errors.clone() } else { vec![] },
            "listeErreurTechnique": if final_shown { d.technical_errors.clone() } else { vec![] }
        }),
    )
}

pub(super) async fn unknown_route() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "error_description": "Unknown resource"}),
    )
}
