//! Fuzzing of what Mindee sends back and of the documents a caller hands in (issue 19): the
//! V1 and V2 receipt mappings, V2 jobs and problem details, and format sniffing, fed with
//! Mindee's published sample answers (`tests/emulators/fixtures/ocr-mindee`) and file
//! signatures mutated by the shared generator (`passerelle_plugin_api::testing::fuzz`).
//! No input may panic; an answer that cannot be read is an upstream error that says what is
//! missing. `PASSERELLE_FUZZ_CASES` runs longer (see README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_ocr_mindee::{document, mapping, v2, v2_mapping};
use passerelle_plugin_api::capabilities::ReceiptDocument;
use passerelle_plugin_api::testing::fuzz;
use passerelle_plugin_api::ErrorKind;
use serde_json::Value;

fn published(sub: &str) -> Vec<Value> {
    let dir = format!(
        "{}/../../tests/emulators/fixtures/ocr-mindee{sub}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "Mindee fixtures missing in {dir}");
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn fuzz_mindee_v1_receipts() {
    fuzz::json(
        "ocr-mindee.v1.mapping",
        &published(""),
        1500,
        |body| match mapping::expense_receipt(body, "mindee") {
            Ok(receipt) => fuzz::assert_crosses_boundary(&receipt),
            Err(e) => assert!(!e.message.is_empty(), "{e:?}"),
        },
    );
}

#[test]
fn fuzz_mindee_v2_answers() {
    fuzz::json("ocr-mindee.v2.mapping", &published("/v2"), 1500, |body| {
        match v2_mapping::expense_receipt(body, "mindee") {
            Ok(receipt) => fuzz::assert_crosses_boundary(&receipt),
            Err(e) => assert!(!e.message.is_empty(), "{e:?}"),
        }
        let _ = v2::Job::from_value(body);
        if let Some(problem) = v2::Problem::from_value(body) {
            assert!(!problem.sentence().is_empty());
        }
    });
}

#[test]
fn fuzz_mindee_problem_bodies() {
    let mut seeds = published("/v2");
    seeds.extend(published(""));
    fuzz::json_bytes("ocr-mindee.v2.problem", &seeds, 1000, |body| {
        if let Some(problem) = v2::Problem::from_body(body) {
            let _ = problem.sentence();
        }
    });
}

#[test]
fn fuzz_documents_handed_in() {
    let seeds: Vec<Vec<u8>> = vec![
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n%%EOF\n".to_vec(),
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9".to_vec(),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00".to_vec(),
        b"RIFF\x24\x00\x00\x00WEBPVP8 ".to_vec(),
        b"II*\x00\x08\x00\x00\x00".to_vec(),
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec(),
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf".to_vec(),
        b"GIF89a".to_vec(),
    ];
    let tokens: &[&[u8]] = &[
        b"/Type",
        b"/Pages",
        b"/Page",
        b"/Count 99999999999999999999",
        b"/Count -1",
        b"ftyp",
        b"heic",
        b"\xFF\xFF\xFF\xFF",
        b"\x00\x00\x00\x00",
    ];
    let names = [
        "ticket.png",
        "../../etc/passwd",
        "a\"b\r\n.pdf",
        ".hidden",
        "",
        "é.JPG",
    ];
    fuzz::bytes("ocr-mindee.document", &seeds, tokens, 2000, |bytes| {
        let name = names[bytes.len() % names.len()];
        let input = ReceiptDocument {
            file_name: Some(name.to_owned()),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        };
        match document::prepare(&input) {
            Ok(doc) => {
                assert_eq!(document::detect(bytes), Some(doc.format));
                assert!(
                    !doc.file_name.contains(['"', '\r', '\n', '/']),
                    "{:?}",
                    doc.file_name
                );
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::InvalidInput, "{e:?}");
                assert_eq!(e.field.as_deref(), Some("content_base64"), "{e:?}");
            }
        }
        let _ = document::pdf_page_count(bytes);
    });
}
