//! Fuzzing of the invoices a caller submits and of what a platform sends back (issue 19):
//! format sniffing (UBL, CII, Factur-X), the CDAR lifecycle messages and identifiers, fed
//! with the test invoices of the Chorus Pro plugin's `support` (the same UBL, CII and
//! Factur-X samples, not a copy) and CDAR messages written by this plugin, mutated by the
//! shared generator (`passerelle_plugin_api::testing::fuzz`). No input may panic or run
//! away; an XML refusal names the byte offset. `PASSERELLE_FUZZ_CASES` runs longer (see
//! README, "Fuzzing").

#![allow(clippy::unwrap_used)]

#[path = "../../chorus-pro/tests/support/mod.rs"]
mod support;

use passerelle_einvoice_afnor::cdar::{self, Answer};
use passerelle_einvoice_afnor::{format, siren};
use passerelle_plugin_api::capabilities::BuyerAnswer;
use passerelle_plugin_api::testing::fuzz;

const TOKENS: &[&[u8]] = &[
    b"%PDF-1.7\n",
    b"stream\n",
    b"stream\r\n",
    b"endstream",
    b"/FlateDecode",
    b"\x78\x9c",
    b"CrossIndustryInvoice",
    b"<ram:ID schemeID=\"0002\">",
    b"</ram:ID>",
    b"<ram:ProcessConditionCode>",
    b"</ram:ProcessConditionCode>",
    b"<ram:IssuerAssignedID>",
    b"<udt:DateTimeString format=\"204\">",
    b"<ram:Reason>",
];

/// A refusal of malformed XML says at which byte (a document without any element has no
/// place to point at).
fn assert_offset(e: &str) {
    if e.contains("well-formed") && !e.contains("no root element") {
        assert!(e.contains("at byte"), "no offset in {e:?}");
    }
}

fn cdar_messages() -> Vec<Vec<u8>> {
    [BuyerAnswer::Approved, BuyerAnswer::Disputed]
        .into_iter()
        .map(|answer| {
            cdar::answer(&Answer {
                message_id: "M-1",
                issued_at: "20260901120000",
                answer,
                invoice_number: "F-9",
                buyer_siren: "552049447",
                seller: "356000000",
                reason_code: Some("AUTRE"),
                reason: Some("Prix faux & <quantité>"),
            })
        })
        .collect()
}

#[test]
fn fuzz_afnor_invoice_files() {
    let seeds = vec![
        support::ubl("F-1"),
        support::cii("F-2"),
        support::factur_x("F-3"),
        support::factur_x_with_object_stream("F-4"),
        support::plain_pdf(),
    ];
    let tokens: Vec<&[u8]> = TOKENS.iter().chain(fuzz::XML_TOKENS).copied().collect();
    fuzz::bytes(
        "einvoice-afnor.invoice_file",
        &seeds,
        &tokens,
        800,
        |bytes| {
            if let Err(e) = format::detect(bytes) {
                assert!(e.starts_with("it") || e.starts_with("the"), "{e}");
                assert_offset(&e);
            }
            let _ = format::embedded_cii(bytes);
        },
    );
}

#[test]
fn fuzz_afnor_lifecycle_messages() {
    let tokens: Vec<&[u8]> = TOKENS.iter().chain(fuzz::XML_TOKENS).copied().collect();
    fuzz::bytes(
        "einvoice-afnor.cdar",
        &cdar_messages(),
        &tokens,
        1500,
        |bytes| match cdar::parse(bytes) {
            Ok(statuses) => {
                for s in statuses {
                    let _ = cdar::state_of(&s.code);
                }
            }
            Err(e) => {
                assert_offset(&e);
            }
        },
    );
}

#[test]
fn fuzz_afnor_identifiers() {
    let seeds: Vec<String> = [
        "552049447",
        "552 049 447 00006",
        "0225:552049447_SERVICE",
        "356000000",
    ]
    .map(String::from)
    .to_vec();
    let tokens: &[&[u8]] = &[b" ", b"0", b"9", b":", b"_", b"\xC2\xA0", b"0225"];
    fuzz::text("einvoice-afnor.identifier", &seeds, tokens, 2000, |text| {
        if let Err(e) = siren::classify(text) {
            assert!(!e.is_empty());
        }
        let _ = format::recipient_identifier(text);
    });
}

/// The platform's JSON answers (XP Z12-013 flows and directory), as the emulator writes them.
#[test]
fn fuzz_afnor_json_answers() {
    use passerelle_einvoice_afnor::protocol::{
        ApiError, DirectoryLines, FullFlowInfo, SearchFlowContent,
    };
    let seeds = vec![
        serde_json::json!({"flowId": "F-1", "submittedAt": "2026-09-01T12:00:00Z", "trackingId": "T-1", "flowSyntax": "CII"}),
        serde_json::json!({"results": [{"flowId": "F-1", "trackingId": "T", "name": "f.xml", "flowSyntax": "CDAR",
            "flowType": "CustomerInvoiceLC", "flowDirection": "In", "submittedAt": "2026-09-01T12:00:00Z",
            "updatedAt": "2026-09-01T12:00:01Z", "acknowledgement": {"status": "Error", "details": [
                {"level": "Error", "item": "f.xml", "reasonCode": "REJ_SEMAN", "reasonMessage": "BT-1"}]}}]}),
        serde_json::json!({"results": [{"addressingIdentifier": "552049447", "platformType": "PDP",
            "directoryLineStatus": "Enabled", "siren": "552049447", "siret": null,
            "routingCode": {"routingIdentifier": "SERVICE", "routingCodeName": "Achats"},
            "legalUnit": {"businessName": "ACME", "entityType": "Private"}}]}),
        serde_json::json!({"errorCode": "400", "errorMessage": "Bad flowInfo", "details": "flowSyntax"}),
    ];
    fuzz::json_bytes("einvoice-afnor.json_answers", &seeds, 1000, |body| {
        let _ = serde_json::from_slice::<FullFlowInfo>(body);
        let _ = serde_json::from_slice::<SearchFlowContent>(body);
        let _ = serde_json::from_slice::<DirectoryLines>(body);
        if let Ok(e) = serde_json::from_slice::<ApiError>(body) {
            if let Some(text) = e.describe() {
                assert!(text.chars().count() <= 400, "{text}");
            }
        }
    });
}
