//! The Chorus Pro API's JSON, as its published clients send and read it, and what its
//! answers mean in provider-neutral terms.
//!
//! Field names follow the API (`numeroFluxDepot`, `etatCourantDepotFlux`…). Answers are
//! read tolerantly — every field optional, `codeRetour` as a number or a string — because
//! the API leaves out empty fields; what a caller needs and does not get is reported by the
//! client as an upstream error, not a panic.

use passerelle_plugin_api::prelude::*;
use serde_json::Value;

/// Path of the health check.
pub const HEALTH_CHECK: &str = "/cpro/transverses/v1/health-check";
/// Path of the structure search.
pub const STRUCTURES_SEARCH: &str = "/cpro/structures/v1/rechercher";
/// Path of the invoice flow deposit.
pub const DEPOSIT_FLOW: &str = "/cpro/factures/v1/deposer/flux";
/// Path of the detailed flow report.
pub const DETAILED_REPORT: &str = "/cpro/transverses/v1/consulterCRDetaille";
/// Path of the structures the technical account is attached to.
pub const ATTACHMENTS: &str = "/cpro/utilisateurs/v1/monCompte/recuperer/rattachements";
/// Path of a structure's details and settings (service code, engagement number required).
pub const STRUCTURE_CONSULT: &str = "/cpro/structures/v1/consulter";
/// Path of the search of invoices the supplier issued.
pub const SUPPLIER_INVOICES: &str = "/cpro/factures/v1/rechercher/fournisseur";

/// Content type of every call, as the API documentation writes it.
pub const CONTENT_TYPE: &str = "application/json;charset=utf-8";
/// Header carrying base64(`login:password`) of the technical account.
pub const ACCOUNT_HEADER: &str = "cpro-account";

/// Flow states still in progress: received, being processed by Chorus Pro, processed by
/// its exchange service (the older spellings are kept: they are met in the wild).
pub const STATES_IN_PROGRESS: &[&str] = &[
    "IN_DEPOSE",
    "IN_RECU",
    "IN_EN_ATTENTE_TRAITEMENT",
    "IN_EN_COURS_TRAITEMENT",
    "IN_EN_COURS_TRAITEMENT_CPP",
    "IN_TRAITE_SE_CPP",
];
pub const STATE_INTEGRATED: &str = "IN_INTEGRE";
pub const STATE_PARTIALLY_INTEGRATED: &str = "IN_INTEGRE_PARTIEL";
/// Failed flow states: final, reported with their errors; the file may be deposited again.
/// Rejected, incident in processing, not receivable, receivable with errors.
pub const STATES_FAILED: &[&str] = &[
    "IN_REJETE",
    "IN_INCIDENTE",
    "QP_IRRECEVABLE",
    "QP_RECEVABLE_AVEC_ERREUR",
];

/// Invoice statuses (`statut` / `statutFacture`) after which nothing changes any more: paid,
/// rejected, abandoned, deleted, replaced.
pub const INVOICE_SETTLED: &[&str] = &[
    "MISE_EN_PAIEMENT",
    "REJETEE",
    "ABANDONNEE",
    "SUPPRIMEE",
    "REMPLACEE_PAR_A22",
];

/// Body of `POST /cpro/utilisateurs/v1/monCompte/recuperer/rattachements`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentsQuery {
    pub parametres_recherche: Paging,
}

/// Paging of a search (`parametresRecherche`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    pub nb_resultats_par_page: u32,
    pub page_resultat_demandee: u32,
}

/// Answer of the attachments of the technical account.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentsAnswer {
    #[serde(default)]
    pub liste_structure_rattachement: Vec<Attachment>,
}

/// One structure the account is attached to.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(default)]
    pub identifiant_structure: Option<String>,
    #[serde(default)]
    pub designation_structure: Option<String>,
    #[serde(default)]
    pub statut_rattachement_structure: Option<String>,
    #[serde(default)]
    pub role_utilisateur: Option<String>,
}

/// Body of `POST /cpro/structures/v1/consulter`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureConsult<'a> {
    #[serde(rename = "idStructureCPP")]
    pub id_structure_cpp: &'a Value,
    pub code_langue: &'a str,
}

/// The settings of a structure that matter to a supplier.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureSettings {
    #[serde(default)]
    pub code_service_doit_etre_renseigne: Option<bool>,
    #[serde(default, rename = "numeroEJDoitEtreRenseigne")]
    pub numero_ej_doit_etre_renseigne: Option<bool>,
    #[serde(default, rename = "gestionNumeroEJOuCodeService")]
    pub gestion_numero_ej_ou_code_service: Option<bool>,
}

/// Answer of `structures/v1/consulter` (only what is read).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureDetails {
    #[serde(default)]
    pub parametres: Option<StructureSettings>,
}

/// Body of `POST /cpro/factures/v1/rechercher/fournisseur`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierInvoiceSearch<'a> {
    pub numero_flux_depot: &'a str,
}

/// Answer of the supplier's invoice search.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierInvoices {
    #[serde(default)]
    pub liste_factures: Vec<SupplierInvoice>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierInvoice {
    #[serde(default, rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: Option<Value>,
    #[serde(default)]
    pub numero_facture: Option<String>,
    #[serde(default)]
    pub statut: Option<String>,
    #[serde(default)]
    pub statut_facture: Option<String>,
}

/// Body of `POST /cpro/structures/v1/rechercher`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureSearch<'a> {
    pub restreindre_structures_privees: bool,
    pub structure: StructureCriteria<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureCriteria<'a> {
    pub identifiant_structure: &'a str,
    pub type_identifiant_structure: &'a str,
}

/// Answer of the structure search.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureSearchAnswer {
    #[serde(default)]
    pub code_retour: Option<Value>,
    #[serde(default)]
    pub libelle: Option<String>,
    #[serde(default)]
    pub liste_structures: Vec<FoundStructure>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundStructure {
    #[serde(default)]
    pub designation_structure: Option<String>,
    #[serde(default, rename = "idStructureCPP")]
    pub id_structure_cpp: Option<Value>,
    #[serde(default)]
    pub identifiant_structure: Option<String>,
    #[serde(default)]
    pub statut: Option<String>,
    #[serde(default)]
    pub type_identifiant_structure: Option<String>,
}

/// Body of `POST /cpro/factures/v1/deposer/flux`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowDeposit<'a> {
    pub fichier_flux: &'a str,
    pub nom_fichier: &'a str,
    pub syntaxe_flux: &'a str,
    pub avec_signature: bool,
}

/// Answer of the deposit.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowDepositAnswer {
    #[serde(default)]
    pub code_retour: Option<Value>,
    #[serde(default)]
    pub libelle: Option<String>,
    #[serde(default)]
    pub numero_flux_depot: Option<String>,
    #[serde(default)]
    pub date_depot: Option<String>,
    #[serde(default)]
    pub syntaxe_flux: Option<String>,
}

/// Body of `POST /cpro/transverses/v1/consulterCRDetaille`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportQuery<'a> {
    pub numero_flux_depot: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntaxe_flux: Option<&'a str>,
}

/// The detailed flow report (compte rendu détaillé).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedReport {
    #[serde(default)]
    pub code_retour: Option<Value>,
    #[serde(default)]
    pub libelle: Option<String>,
    #[serde(default)]
    pub code_interface_depot_flux: Option<String>,
    #[serde(default)]
    pub date_depot_flux: Option<String>,
    #[serde(default)]
    pub date_heure_etat_courant_flux: Option<String>,
    #[serde(default)]
    pub etat_courant_depot_flux: Option<String>,
    #[serde(default)]
    pub nom_fichier: Option<String>,
    #[serde(default, rename = "listeErreurDP")]
    pub liste_erreur_dp: Vec<PaymentRequestError>,
    #[serde(default)]
    pub liste_erreur_technique: Vec<TechnicalError>,
}

/// An error about one payment request (invoice) of a flow.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequestError {
    #[serde(default)]
    pub identifiant_destinataire: Option<String>,
    #[serde(default)]
    pub identifiant_fournisseur: Option<String>,
    #[serde(default, rename = "libelleErreurDP")]
    pub libelle_erreur_dp: Option<String>,
    #[serde(default, rename = "numeroDP")]
    pub numero_dp: Option<String>,
}

/// An error about the flow as a whole.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TechnicalError {
    #[serde(default)]
    pub code_erreur: Option<String>,
    #[serde(default)]
    pub libelle_erreur: Option<String>,
    #[serde(default)]
    pub nature_erreur: Option<String>,
}

/// A business refusal: `{"codeRetour": N, "libelle": "…"}`, with HTTP 400 or even 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub label: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.label.is_empty() {
            write!(f, "code {}", self.code)
        } else {
            write!(f, "code {}: {}", self.code, self.label)
        }
    }
}

/// `codeRetour` as a number, whether the API wrote it as a number or a string.
pub fn return_code(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The refusal an answer carries, if its `codeRetour` is not 0.
pub fn refusal(body: &Value) -> Option<Refusal> {
    let code = return_code(body.get("codeRetour"))?;
    (code != 0).then(|| Refusal {
        code,
        label: body
            .get("libelle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    })
}

/// The neutral state of a Chorus Pro flow state. A state none of the lists names is
/// `Unknown`, never `Pending`: a new state must be looked at, not waited for.
pub fn deposit_state(code: &str) -> DepositState {
    let code = code.trim();
    match code {
        STATE_INTEGRATED => DepositState::Integrated,
        STATE_PARTIALLY_INTEGRATED => DepositState::PartiallyIntegrated,
        _ if STATES_FAILED.contains(&code) => DepositState::Rejected,
        _ if STATES_IN_PROGRESS.contains(&code) => DepositState::Pending,
        _ => DepositState::Unknown,
    }
}

/// A Chorus Pro id (number or string) as text.
pub fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// The invoices of a supplier search, in neutral terms.
pub fn submitted_invoices(found: &SupplierInvoices) -> Vec<SubmittedInvoice> {
    found
        .liste_factures
        .iter()
        .filter_map(|f| {
            let invoice_id = id_text(f.identifiant_facture_cpp.as_ref())?;
            let status = f
                .statut
                .as_deref()
                .or(f.statut_facture.as_deref())
                .map(str::trim)
                .unwrap_or_default()
                .to_owned();
            Some(SubmittedInvoice {
                invoice_id,
                number: f.numero_facture.clone(),
                settled: INVOICE_SETTLED.contains(&status.as_str()),
                status,
            })
        })
        .collect()
}

/// Every error of a report: the flow's technical errors, then each payment request's.
pub fn report_errors(report: &DetailedReport) -> Vec<DepositError> {
    let blank = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let technical = report.liste_erreur_technique.iter().map(|e| DepositError {
        code: blank(&e.code_erreur),
        message: blank(&e.libelle_erreur).unwrap_or_else(|| "(no message)".to_owned()),
        nature: blank(&e.nature_erreur),
        ..DepositError::default()
    });
    let per_invoice = report.liste_erreur_dp.iter().map(|e| DepositError {
        message: blank(&e.libelle_erreur_dp).unwrap_or_else(|| "(no message)".to_owned()),
        invoice: blank(&e.numero_dp),
        supplier: blank(&e.identifiant_fournisseur),
        recipient: blank(&e.identifiant_destinataire),
        ..DepositError::default()
    });
    technical.chain(per_invoice).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_map_to_the_neutral_ones() {
        assert_eq!(deposit_state("IN_INTEGRE"), DepositState::Integrated);
        assert_eq!(
            deposit_state("IN_INTEGRE_PARTIEL"),
            DepositState::PartiallyIntegrated
        );
        for failed in [
            "IN_REJETE",
            "IN_INCIDENTE",
            "QP_IRRECEVABLE",
            "QP_RECEVABLE_AVEC_ERREUR",
        ] {
            assert_eq!(deposit_state(failed), DepositState::Rejected, "{failed}");
        }
        for pending in [
            "IN_RECU",
            "IN_EN_COURS_TRAITEMENT_CPP",
            "IN_TRAITE_SE_CPP",
            " IN_EN_COURS_TRAITEMENT ",
        ] {
            assert_eq!(deposit_state(pending), DepositState::Pending, "{pending}");
        }
        for unknown in ["IN_NOUVEL_ETAT", "", "in_recu"] {
            assert_eq!(deposit_state(unknown), DepositState::Unknown, "{unknown:?}");
        }
    }

    #[test]
    fn supplier_invoices_read_with_their_status() {
        let found: SupplierInvoices = serde_json::from_value(json!({
            "codeRetour": 0,
            "listeFactures": [
                {"identifiantFactureCPP": 987654, "numeroFacture": "F-1", "statut": "MISE_A_DISPOSITION"},
                {"identifiantFactureCPP": "987655", "numeroFacture": "F-2", "statut": "MISE_EN_PAIEMENT"},
                {"numeroFacture": "no id"}
            ]
        }))
        .unwrap();
        let invoices = submitted_invoices(&found);
        assert_eq!(invoices.len(), 2);
        assert_eq!(invoices[0].invoice_id, "987654");
        assert!(!invoices[0].settled);
        assert_eq!(invoices[1].status, "MISE_EN_PAIEMENT");
        assert!(invoices[1].settled);
    }

    #[test]
    fn refusals_come_from_a_non_zero_return_code() {
        assert_eq!(refusal(&json!({"codeRetour": 0, "libelle": "ok"})), None);
        assert_eq!(refusal(&json!({"libelle": "no code"})), None);
        let r = refusal(&json!({"codeRetour": "20001", "libelle": " Flux inconnu "})).unwrap();
        assert_eq!(r.code, 20001);
        assert_eq!(r.to_string(), "code 20001: Flux inconnu");
        assert_eq!(
            refusal(&json!({"codeRetour": 3})).unwrap().to_string(),
            "code 3"
        );
    }

    #[test]
    fn the_reference_report_reads_and_lists_every_error() {
        // The shape of the published client's sample (placeholder values).
        let report: DetailedReport = serde_json::from_str(
            r#"{
                "codeInterfaceDepotFlux": "cidf", "codeRetour": 0,
                "dateDepotFlux": "2023-01-01T00:00:00Z",
                "dateHeureEtatCourantFlux": "2023-01-01T00:00:00Z",
                "etatCourantDepotFlux": "ecdf", "libelle": "l", "nomFichier": "nf",
                "listeErreurDP": [{"identifiantDestinataire": "id", "identifiantFournisseur": "if",
                                   "libelleErreurDP": "l", "numeroDP": "n"}],
                "listeErreurTechnique": [{"codeErreur": "c", "libelleErreur": "l", "natureErreur": "n"}]
            }"#,
        )
        .unwrap();
        let errors = report_errors(&report);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].code.as_deref(), Some("c"));
        assert_eq!(errors[0].nature.as_deref(), Some("n"));
        assert_eq!(errors[1].invoice.as_deref(), Some("n"));
        assert_eq!(errors[1].recipient.as_deref(), Some("id"));
        assert_eq!(errors[1].supplier.as_deref(), Some("if"));
    }

    #[test]
    fn request_bodies_use_the_api_names() {
        let body = serde_json::to_value(FlowDeposit {
            fichier_flux: "QUJD",
            nom_fichier: "a.xml",
            syntaxe_flux: "IN_DP_E1_UBL_INVOICE",
            avec_signature: false,
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"fichierFlux": "QUJD", "nomFichier": "a.xml",
                   "syntaxeFlux": "IN_DP_E1_UBL_INVOICE", "avecSignature": false})
        );
        let body = serde_json::to_value(ReportQuery {
            numero_flux_depot: "CPP1",
            syntaxe_flux: None,
        })
        .unwrap();
        assert_eq!(body, json!({"numeroFluxDepot": "CPP1"}));
        let body = serde_json::to_value(StructureSearch {
            restreindre_structures_privees: false,
            structure: StructureCriteria {
                identifiant_structure: "12345678200010",
                type_identifiant_structure: "SIRET",
            },
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"restreindreStructuresPrivees": false, "structure": {
                "identifiantStructure": "12345678200010", "typeIdentifiantStructure": "SIRET"}})
        );
    }
}
