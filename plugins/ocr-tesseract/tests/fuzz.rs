//! Fuzzing of what the Tesseract engine prints and of the documents a caller hands in
//! (issue 19): the TSV reader, the receipt extraction that runs on its words (amounts,
//! rates, dates, identifiers) and format sniffing, fed with receipts written as Tesseract 5
//! TSV (`tesseract … tsv`: level 5 rows are words) and file signatures, mutated by the
//! shared generator (`passerelle_plugin_api::testing::fuzz`). No input may panic; the
//! receipt always crosses the JSON boundary. `PASSERELLE_FUZZ_CASES` runs longer (see
//! README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_ocr_tesseract::extract::{self, Options};
use passerelle_ocr_tesseract::{document, tsv};
use passerelle_plugin_api::capabilities::ReceiptDocument;
use passerelle_plugin_api::testing::fuzz;
use passerelle_plugin_api::ErrorKind;

const HEADER: &str =
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext";

/// A receipt as Tesseract prints it: one level-5 row per word, lines numbered in order.
fn as_tsv(lines: &[&str]) -> String {
    let mut out = format!("{HEADER}\n1\t1\t0\t0\t0\t0\t0\t0\t826\t922\t-1\t\n");
    for (l, line) in lines.iter().enumerate() {
        out.push_str(&format!(
            "4\t1\t1\t1\t{}\t0\t40\t{}\t700\t30\t-1\t\n",
            l + 1,
            30 * l
        ));
        for (w, word) in line.split(' ').enumerate() {
            out.push_str(&format!(
                "5\t1\t1\t1\t{}\t{}\t{}\t{}\t{}\t26\t{:.6}\t{word}\n",
                l + 1,
                w + 1,
                40 + 90 * w,
                30 * l,
                12 * word.len(),
                88.5 + (w % 10) as f64
            ));
        }
    }
    out
}

fn receipts() -> Vec<String> {
    vec![
        as_tsv(&[
            "BOULANGERIE DU MARCHE",
            "12 RUE DE LA PAIX 75002 PARIS",
            "SIRET 552 049 447 00006",
            "TVA FR 40 552049447",
            "LE 14/03/2025 A 12:31",
            "2 BAGUETTE 2,40",
            "1 CROISSANT 1,20",
            "TOTAL HT 3,41",
            "TVA 5,5% 0,19",
            "TOTAL TTC 3,60 EUR",
            "CB 3,60",
        ]),
        as_tsv(&[
            "CAFE DE FLORE",
            "Date: 2025-03-14 Time: 09:05",
            "Subtotal 12.50",
            "VAT 20% 2.50",
            "GRAND TOTAL 15.00 €",
            "THANK YOU",
        ]),
    ]
}

#[test]
fn fuzz_tesseract_tsv_and_extraction() {
    let tokens: &[&[u8]] = &[
        b"\t",
        b"\n5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t",
        b"-1",
        b"NaN",
        b"inf",
        b"1e309",
        b"99999999999999999999",
        b"TOTAL",
        b"TTC",
        b"HT",
        b"TVA",
        b"%",
        b",",
        b".",
        b"EUR",
        b"\xE2\x82\xAC",
        b"31/02/2025",
        b"25:99",
        b"SIRET",
        b"FR",
        b"\r",
    ];
    fuzz::text(
        "ocr-tesseract.tsv",
        &receipts(),
        tokens,
        800,
        |text| match tsv::parse(text) {
            Ok(reading) => {
                let options = Options {
                    model: "tesseract 5.3.0 (fra+eng, psm 4)".to_owned(),
                    min_confidence: 0.5,
                    recorded_by: "erp",
                };
                let receipt = extract::receipt(&reading, &options);
                fuzz::assert_crosses_boundary(&receipt);
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Upstream, "{e:?}");
                assert!(e.message.contains("header"), "{e:?}");
            }
        },
    );
}

#[test]
fn fuzz_tesseract_documents_handed_in() {
    let seeds: Vec<Vec<u8>> = vec![
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01".to_vec(),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(),
        b"II*\x00\x08\x00\x00\x00".to_vec(),
        b"%PDF-1.4\n%%EOF".to_vec(),
        b"BM\x00\x00".to_vec(),
    ];
    fuzz::bytes(
        "ocr-tesseract.document",
        &seeds,
        &[b"%PDF-", b"\xFF\xD8\xFF"],
        1000,
        |bytes| {
            let input = ReceiptDocument {
                file_name: Some("recu.jpg".to_owned()),
                content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            };
            match document::prepare(&input) {
                Ok(doc) => assert_eq!(document::detect(bytes), Some(doc.format)),
                Err(e) => assert_eq!(e.field.as_deref(), Some("content_base64"), "{e:?}"),
            }
        },
    );
}
