//! The recipient side of a deposit: which public structure an invoice is addressed to, and
//! whether that structure requires a service code or an engagement number.
//!
//! Chorus Pro checks these only after the deposit, asynchronously, and rejects the flow
//! (`IN_REJETE`) hours later. Asking first costs two requests — the structure search for
//! its `idStructureCPP`, then `structures/v1/consulter` for its `parametres` — so the answer
//! is kept per recipient in the instance state for a day: a batch of invoices to the same
//! buyer costs them once.
//!
//! The references are read from the invoice as EN 16931 places them and Chorus Pro reads
//! them: the buyer's SIRET (BT-47, `cac:PartyLegalEntity/cbc:CompanyID` in UBL,
//! `ram:SpecifiedLegalOrganization/ram:ID` in CII), the service code (BT-10, buyer
//! reference) and the engagement number (BT-13, purchase order reference). An invoice that
//! names no buyer SIRET is left for Chorus Pro to judge.

use crate::client::{Client, Target};
use crate::format;
use crate::protocol::{
    self, StructureConsult, StructureCriteria, StructureDetails, StructureSearch,
    StructureSearchAnswer, StructureSettings,
};
use passerelle_plugin_api::prelude::*;
use quick_xml::events::Event;
use quick_xml::NsReader;
use serde::{Deserialize, Serialize};

/// State key prefix of the recipients' settings.
pub const RECIPIENT_PREFIX: &str = "recipient/";
/// How long a recipient's settings are trusted.
pub const RECIPIENT_TTL_MS: u64 = 24 * 3600 * 1000;

/// What an invoice says about its recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceReferences {
    pub buyer_siret: Option<String>,
    pub service_code: Option<String>,
    pub engagement: Option<String>,
}

/// A recipient's requirements as recorded in the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipientRules {
    pub name: Option<String>,
    pub service_code_required: bool,
    pub engagement_required: bool,
    pub either_required: bool,
    pub fetched_at_ms: u64,
}

/// Reads the recipient's references of an invoice; `None` fields when absent or unreadable.
pub fn references(bytes: &[u8], invoice_format: InvoiceFormat) -> InvoiceReferences {
    let xml = match invoice_format {
        InvoiceFormat::FacturX => match format::embedded_invoice(bytes) {
            Some(xml) => xml,
            None => return InvoiceReferences::default(),
        },
        InvoiceFormat::Ubl | InvoiceFormat::Cii => bytes.to_vec(),
    };
    let mut reader = NsReader::from_reader(xml.as_slice());
    let mut path: Vec<String> = Vec::new();
    let mut refs = InvoiceReferences::default();
    // A malformed document was refused by the format check; stop at any error anyway.
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(ref e) => {
                path.push(AsRef::<str>::as_ref(&e.local_name()).to_owned());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(ref t) => {
                let text: &str = t.as_ref();
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let joined = path.join("/");
                let slot = if joined == "Invoice/BuyerReference"
                    || joined.ends_with("ApplicableHeaderTradeAgreement/BuyerReference")
                {
                    &mut refs.service_code
                } else if joined == "Invoice/OrderReference/ID"
                    || joined.ends_with("BuyerOrderReferencedDocument/IssuerAssignedID")
                {
                    &mut refs.engagement
                } else if (joined.contains("AccountingCustomerParty")
                    && joined.ends_with("PartyLegalEntity/CompanyID"))
                    || (joined.contains("BuyerTradeParty")
                        && joined.ends_with("SpecifiedLegalOrganization/ID"))
                {
                    &mut refs.buyer_siret
                } else {
                    continue;
                };
                slot.get_or_insert_with(|| text.to_owned());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    refs.buyer_siret = refs
        .buyer_siret
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect())
        .filter(|s: &String| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()));
    refs
}

/// Refuses an invoice lacking what its recipient requires, before it is deposited.
pub fn check(
    refs: &InvoiceReferences,
    file_name: &str,
    client: &Client<'_, '_>,
    host: &Host<'_>,
) -> Result<(), PluginError> {
    let Some(siret) = refs.buyer_siret.as_deref() else {
        return Ok(());
    };
    let rules = rules(siret, client, host)?;
    let name = rules
        .name
        .as_deref()
        .map(|n| format!("{n} ({siret})"))
        .unwrap_or_else(|| siret.to_owned());
    let mut missing = Vec::new();
    if rules.service_code_required && refs.service_code.is_none() {
        missing.push(
            "a service code (codeServiceDoitEtreRenseigne; BT-10 buyer reference: \
             cbc:BuyerReference in UBL, ram:BuyerReference in CII)",
        );
    }
    if rules.engagement_required && refs.engagement.is_none() {
        missing.push(
            "an engagement number (numeroEJDoitEtreRenseigne; BT-13 purchase order reference: \
             cac:OrderReference/cbc:ID in UBL, ram:BuyerOrderReferencedDocument in CII)",
        );
    }
    if missing.is_empty()
        && rules.either_required
        && refs.service_code.is_none()
        && refs.engagement.is_none()
    {
        missing.push("a service code or an engagement number (gestionNumeroEJOuCodeService)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(PluginError::invalid_input(format!(
        "the recipient {name} requires {} and {file_name} has none: it was not sent (Chorus \
         Pro would reject it); ask the buyer for the reference and add it to the invoice",
        missing.join(" and ")
    ))
    .with_field("content_base64"))
}

/// A recipient's rules, from the state when fresh, else from Chorus Pro.
fn rules(
    siret: &str,
    client: &Client<'_, '_>,
    host: &Host<'_>,
) -> Result<RecipientRules, PluginError> {
    let key = format!("{RECIPIENT_PREFIX}{siret}");
    let now = host.now_unix_ms();
    if let Some(known) = host.state_get::<RecipientRules>(&key)? {
        if now.saturating_sub(known.fetched_at_ms) < RECIPIENT_TTL_MS {
            return Ok(known);
        }
    }
    let target = Target::Recipient { siret };
    let body = serde_json::to_vec(&StructureSearch {
        restreindre_structures_privees: false,
        structure: StructureCriteria {
            identifiant_structure: siret,
            type_identifiant_structure: "SIRET",
        },
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the structure search: {e}")))?;
    let answer = client.call(
        Method::Post,
        protocol::STRUCTURES_SEARCH,
        body,
        target,
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let found: StructureSearchAnswer = serde_json::from_value(answer.body).map_err(|e| {
        PluginError::new(
            ErrorKind::Upstream,
            format!("the search of recipient {siret} has an unexpected shape ({e})"),
        )
    })?;
    let Some(structure) = found
        .liste_structures
        .iter()
        .find(|s| s.identifiant_structure.as_deref().map(str::trim) == Some(siret))
    else {
        return Err(PluginError::invalid_input(format!(
            "Chorus Pro knows no recipient structure with SIRET {siret}: the invoice was not \
             sent; check the buyer's SIRET in the invoice"
        ))
        .with_field("content_base64"));
    };
    let Some(id) = structure.id_structure_cpp.as_ref() else {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!("Chorus Pro found recipient {siret} without its idStructureCPP"),
        ));
    };
    let body = serde_json::to_vec(&StructureConsult {
        id_structure_cpp: id,
        code_langue: "fr",
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the structure query: {e}")))?;
    let answer = client.call(
        Method::Post,
        protocol::STRUCTURE_CONSULT,
        body,
        target,
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let details: StructureDetails = serde_json::from_value(answer.body).map_err(|e| {
        PluginError::new(
            ErrorKind::Upstream,
            format!("the details of recipient {siret} have an unexpected shape ({e})"),
        )
    })?;
    let settings: StructureSettings = details.parametres.unwrap_or_default();
    let rules = RecipientRules {
        name: structure.designation_structure.clone(),
        service_code_required: settings.code_service_doit_etre_renseigne == Some(true),
        engagement_required: settings.numero_ej_doit_etre_renseigne == Some(true),
        either_required: settings.gestion_numero_ej_ou_code_service == Some(true),
        fetched_at_ms: now,
    };
    if let Err(e) = host.state_put(&key, &rules) {
        host.log(
            LogLevel::Warn,
            format!(
                "cannot remember the rules of recipient {siret} ({})",
                e.message
            ),
        );
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_from_ubl_and_cii() {
        let ubl = br#"<?xml version="1.0"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>F-1</cbc:ID><cbc:BuyerReference>SERV-01</cbc:BuyerReference>
  <cac:OrderReference><cbc:ID>EJ-7</cbc:ID></cac:OrderReference>
  <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity>
    <cbc:CompanyID>12345678200010</cbc:CompanyID></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity>
    <cbc:CompanyID schemeID="0009">130 025 265 00013</cbc:CompanyID></cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
</Invoice>"#;
        assert_eq!(
            references(ubl, InvoiceFormat::Ubl),
            InvoiceReferences {
                buyer_siret: Some("13002526500013".into()),
                service_code: Some("SERV-01".into()),
                engagement: Some("EJ-7".into()),
            }
        );
        let cii = br#"<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
  <rsm:SupplyChainTradeTransaction><ram:ApplicableHeaderTradeAgreement>
    <ram:BuyerReference>S2</ram:BuyerReference>
    <ram:SellerTradeParty><ram:SpecifiedLegalOrganization><ram:ID>12345678200010</ram:ID></ram:SpecifiedLegalOrganization></ram:SellerTradeParty>
    <ram:BuyerTradeParty><ram:SpecifiedLegalOrganization><ram:ID>21920023500014</ram:ID></ram:SpecifiedLegalOrganization></ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement></rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>"#;
        let refs = references(cii, InvoiceFormat::Cii);
        assert_eq!(refs.buyer_siret.as_deref(), Some("21920023500014"));
        assert_eq!(refs.service_code.as_deref(), Some("S2"));
        assert_eq!(refs.engagement, None);
    }
}
