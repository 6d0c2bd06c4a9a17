//! Fuzzing of the invoices a caller deposits and of what Chorus Pro sends back (issue 19):
//! format sniffing (UBL, CII, Factur-X PDFs with or without object streams), reading the
//! embedded invoice and the recipient's references, and the JSON answers (refusals, flow
//! reports, invoice searches), fed with the test invoices of `support` and Chorus Pro's
//! recorded answers (`tests/emulators/fixtures/chorus-pro`) mutated by the shared generator
//! (`passerelle_plugin_api::testing::fuzz`). No input may panic or run away; a refusal says
//! what the file is and what was expected. `PASSERELLE_FUZZ_CASES` runs longer (see README,
//! "Fuzzing").

#![allow(clippy::unwrap_used)]

mod support;

use passerelle_chorus_pro::protocol::{self, DetailedReport, SupplierInvoices};
use passerelle_chorus_pro::{format, recipient};
use passerelle_plugin_api::testing::fuzz;
use serde_json::Value;

/// PDF and invoice tokens: what the sniffers look for.
pub const INVOICE_TOKENS: &[&[u8]] = &[
    b"%PDF-1.7\n",
    b"/EmbeddedFile",
    b"/EmbeddedFiles",
    b"/Type /ObjStm",
    b"/ObjStm",
    b"/FlateDecode",
    b"stream\r\n",
    b"stream\n",
    b"endstream",
    b"obj",
    b"endobj",
    b"factur-x.xml",
    b"<666163747572",
    b"\x00f\x00a\x00c",
    b"/F (factur-x.xml)",
    b"\x78\x9c",
    b"\x78\x9c\x03\x00",
    b"<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\">",
    b"<cbc:BuyerReference>",
    b"<ram:BuyerReference>",
    b"<cac:OrderReference><cbc:ID>",
];

fn invoices() -> Vec<Vec<u8>> {
    vec![
        support::ubl("F-1"),
        support::cii("F-2"),
        support::factur_x("F-3"),
        support::factur_x_with_object_stream("F-4"),
        support::pdf_with_attachment("F-5", "other.xml"),
        support::plain_pdf(),
    ]
}

#[test]
fn fuzz_invoice_files() {
    let tokens: Vec<&[u8]> = INVOICE_TOKENS
        .iter()
        .chain(fuzz::XML_TOKENS)
        .copied()
        .collect();
    fuzz::bytes(
        "chorus-pro.invoice_file",
        &invoices(),
        &tokens,
        800,
        |bytes| {
            match format::detect(bytes) {
                Ok(found) => {
                    let refs = recipient::references(bytes, found);
                    if let Some(siret) = refs.buyer_siret {
                        assert_eq!(siret.len(), 14);
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.starts_with("it is") || text.starts_with("the file"),
                        "{text}"
                    );
                }
            }
            if let Some(xml) = format::embedded_invoice(bytes) {
                assert!(xml.len() <= 16 * 1024 * 1024, "inflated past the limit");
            }
        },
    );
}

fn recorded() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/emulators/fixtures/chorus-pro"
    );
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "Chorus Pro fixtures missing in {dir}");
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn fuzz_chorus_answers() {
    fuzz::json("chorus-pro.answers", &recorded(), 2000, |body| {
        let _ = protocol::return_code(Some(body));
        let _ = protocol::return_code(body.get("codeRetour"));
        let _ = protocol::id_text(body.get("numeroFluxDepot"));
        if let Some(refusal) = protocol::refusal(body) {
            assert!(!format!("{refusal:?}").is_empty());
        }
        if let Ok(report) = serde_json::from_value::<DetailedReport>(body.clone()) {
            for error in protocol::report_errors(&report) {
                assert!(!format!("{error:?}").is_empty());
            }
        }
        if let Ok(found) = serde_json::from_value::<SupplierInvoices>(body.clone()) {
            for invoice in protocol::submitted_invoices(&found) {
                fuzz::assert_crosses_boundary(&invoice);
            }
        }
        if let Some(state) = body.get("etatCourantFlux").and_then(Value::as_str) {
            let _ = protocol::deposit_state(state);
        }
    });
}
