//! Transverse and structure services: health check, the technical account's attachments,
//! structure consultation and search, supplier invoice search.

use super::*;

pub(super) async fn health_check(State(state): State<Arc<Shared>>) -> Response {
    let body = match *lock(&state.health) {
        HealthShape::StringCode => json!({"statusCode": "200"}),
        HealthShape::NumberCode => json!({"statusCode": 200}),
        HealthShape::Spring => json!({
            "headers": {}, "body": null, "statusCode": "OK", "statusCodeValue": 200
        }),
        HealthShape::Failing => json!({"statusCode": "503"}),
    };
    json_response(StatusCode::OK, &body)
}

/// Every structure of the directory: the account's own, then the public recipients.
pub(super) fn directory(opts: &ChorusProOptions) -> Vec<&Structure> {
    opts.structures
        .iter()
        .chain(opts.recipients.iter().map(|r| &r.structure))
        .collect()
}

pub(super) async fn attachments(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    if json_body(&body).is_none() {
        return bad_json();
    }
    let detached = lock(&state.detached).clone();
    let attached: Vec<Value> = state
        .opts
        .structures
        .iter()
        .filter(|s| !detached.contains(&s.identifier))
        .enumerate()
        .map(|(i, s)| {
            json!({
                "designationStructure": s.designation,
                "idRattachementStructure": 90_000 + i,
                "idStructure": s.id_cpp,
                "identifiantStructure": s.identifier,
                "listeServicesRattache": [{
                    "codeService": "FACTURES",
                    "dateDbtService": "2020-01-01T00:00:00Z",
                    "dateFinService": "2099-12-31T00:00:00Z",
                    "estActif": true,
                    "idRattachementService": 91_000 + i,
                    "idService": 70_000 + i,
                    "libelleService": "Service facturation",
                    "statutRattachementService": "ACTIF",
                    "statutService": "ACTIF"
                }],
                "roleUtilisateur": "GESTIONNAIRE",
                "statutRattachementStructure": "ACTIF",
                "statutUtilisateur": "ACTIF",
                "typeIdentifiantStructure": s.id_type
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeStructureRattachement": attached,
            "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": 100, "total": attached.len()}
        }),
    )
}

pub(super) async fn consult_structure(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let Some(id) = body.get("idStructureCPP").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_MISSING_FIELD,
            "Champ obligatoire : idStructureCPP",
        );
    };
    let recipient = state
        .opts
        .recipients
        .iter()
        .find(|r| r.structure.id_cpp == id);
    let structure = directory(&state.opts).into_iter().find(|s| s.id_cpp == id);
    let Some(structure) = structure else {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_STRUCTURE,
            &format!("Aucune structure ne correspond à l'identifiant {id}"),
        );
    };
    let (service, engagement) = recipient.map_or((false, false), |r| {
        (r.service_code_required, r.engagement_required)
    });
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "idStructureCPP": structure.id_cpp,
            "identifiant": {
                "identifiantStructure": structure.identifier,
                "typeIdentifiantStructure": structure.id_type,
                "libelleStructure": structure.designation
            },
            "parametres": {
                "codeServiceDoitEtreRenseigne": service,
                "numeroEJDoitEtreRenseigne": engagement,
                "gestionNumeroEJOuCodeService": false,
                "statutMiseEnPaiementNestPasRemonte": false
            }
        }),
    )
}

pub(super) async fn supplier_invoices(
    State(state): State<Arc<Shared>>,
    axum::Extension(Login(login)): axum::Extension<Login>,
    body: Bytes,
) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    state.invoice_searches.fetch_add(1, Ordering::SeqCst);
    let wanted = body
        .get("numeroFluxDepot")
        .and_then(Value::as_str)
        .map(str::trim);
    let forced = lock(&state.invoice_status).clone();
    let mut deposits = lock(&state.deposits);
    let mut list = Vec::new();
    for d in deposits.iter_mut().filter(|d| d.login == login) {
        if wanted.is_some_and(|w| w != d.number) {
            continue;
        }
        // Invoices exist once the flow shows as integrated.
        let shown = d.consultations > state.opts.consultations_before_final;
        if !(shown && d.outcome.integrated()) {
            continue;
        }
        let number = d
            .invoice_number
            .clone()
            .unwrap_or_else(|| d.file_name.clone());
        let status = match forced.get(&number) {
            Some(status) => status.clone(),
            None => {
                let step = d.invoice_searches.min(INVOICE_PATH.len() - 1);
                d.invoice_searches += 1;
                INVOICE_PATH[step].to_owned()
            }
        };
        list.push(json!({
            "identifiantFactureCPP": d.invoice_id,
            "numeroFacture": number,
            "dateFacture": date(d.deposited_secs),
            "dateDepot": date(d.deposited_secs),
            "identifiantDestinataire": "",
            "identifiantFournisseur": state.opts.structures.first().map(|s| s.identifier.clone()).unwrap_or_default(),
            "numeroFluxDepot": d.number,
            "statut": status,
            "typeFacture": "FACTURE"
        }));
    }
    if wanted.is_some()
        && list.is_empty()
        && !deposits
            .iter()
            .any(|d| Some(d.number.as_str()) == wanted && d.login == login)
    {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_DEPOSIT,
            &format!(
                "Aucun flux déposé ne correspond au numéro {}",
                wanted.unwrap_or_default()
            ),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeFactures": list,
            "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": 10, "total": list.len()}
        }),
    )
}

/// A JSON object body.
pub(super) fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// Chorus's refusal of a body that is not a JSON object.
pub(super) fn bad_json() -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        CODE_BAD_JSON,
        "Le corps de la requête n'est pas un objet JSON valide",
    )
}

pub(super) async fn search_structures(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_json();
    };
    let criteria = body.get("structure").cloned().unwrap_or(Value::Null);
    let identifier = criteria
        .get("identifiantStructure")
        .and_then(Value::as_str)
        .map(str::trim);
    let id_type = criteria
        .get("typeIdentifiantStructure")
        .and_then(Value::as_str)
        .map(str::trim);
    let found: Vec<&Structure> = directory(&state.opts)
        .into_iter()
        .filter(|s| identifier.is_none_or(|i| i == s.identifier))
        .filter(|s| id_type.is_none_or(|t| t == s.id_type))
        .collect();
    if found.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            CODE_UNKNOWN_STRUCTURE,
            "Aucune structure ne correspond aux critères de recherche",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "codeRetour": 0,
            "libelle": "GCU_MSG_01_000",
            "listeStructures": found.iter().map(|s| json!({
                "designationStructure": s.designation,
                "idStructureCPP": s.id_cpp,
                "identifiantStructure": s.identifier,
                "statut": s.status,
                "typeIdentifiantStructure": s.id_type
            })).collect::<Vec<_>>(),
            "parametresRetour": {
                "pageCourante": 1,
                "pages": 1,
                "nbResultatsParPage": 10,
                "total": found.len()
            }
        }),
    )
}
