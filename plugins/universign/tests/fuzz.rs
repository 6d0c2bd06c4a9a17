//! Fuzzing of what Universign sends back (issue 19): the XML-RPC codec and the readers of its
//! answers, fed with Universign's recorded answers mutated by the shared generator
//! (`passerelle_plugin_api::testing::fuzz`). No input may panic; a decoded answer must
//! re-encode to itself; a refusal must say what was expected. `PASSERELLE_FUZZ_CASES` runs
//! longer (see README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use passerelle_plugin_api::testing::fuzz;
use passerelle_universign::mapping;
use passerelle_universign::pdf_fields;
use passerelle_universign::xmlrpc::{self, MethodResponse, XmlRpcError};

fn recorded(kind: &str) -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/emulators/fixtures/universign"
    );
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(kind))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {kind} fixtures in {dir}");
    out.into_iter().map(|(_, bytes)| bytes).collect()
}

const XMLRPC_TOKENS: &[&[u8]] = &[
    b"<value>",
    b"</value>",
    b"<struct>",
    b"</struct>",
    b"<member>",
    b"<name>",
    b"<array>",
    b"<data>",
    b"</data>",
    b"<int>2147483648</int>",
    b"<i4>-2147483649</i4>",
    b"<boolean>2</boolean>",
    b"<double>1e400</double>",
    b"<double>nan</double>",
    b"<base64>=</base64>",
    b"<nil/>",
    b"<dateTime.iso8601>20241301T25:61:61</dateTime.iso8601>",
    b"<fault>",
    b"<params>",
    b"<param>",
    b"<string>",
    b"</string>",
    b"ex:",
];

fn check_refusal(e: &XmlRpcError) {
    let text = e.to_string();
    assert!(!text.trim().is_empty(), "an empty refusal: {e:?}");
}

#[test]
fn fuzz_xmlrpc_decode_response() {
    let mut seeds = recorded(".response.xml");
    seeds.extend(recorded(".request.xml"));
    let tokens: Vec<&[u8]> = XMLRPC_TOKENS
        .iter()
        .chain(fuzz::XML_TOKENS)
        .copied()
        .collect();
    fuzz::bytes(
        "universign.xmlrpc.decode_response",
        &seeds,
        &tokens,
        3000,
        |body| {
            match xmlrpc::decode_response(body) {
                Ok(response) => {
                    // What was read is what is written back, and reads again the same.
                    if let Ok(text) = xmlrpc::encode_response(&response) {
                        let again = xmlrpc::decode_response(text.as_bytes()).unwrap();
                        assert_eq!(again, response, "re-encoded as {text}");
                    }
                    if let MethodResponse::Success(value) = &response {
                        for e in [
                            mapping::created(value).err(),
                            mapping::transaction_info(value).err(),
                            mapping::documents(value).err(),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            // Says who answered what, or which method.
                            assert!(
                                e.message.contains("requester.")
                                    || e.message.contains("Universign"),
                                "{e:?}"
                            );
                        }
                    }
                }
                Err(e) => check_refusal(&e),
            }
        },
    );
}

#[test]
fn fuzz_xmlrpc_decode_call() {
    let seeds = recorded(".request.xml");
    let tokens: Vec<&[u8]> = XMLRPC_TOKENS
        .iter()
        .chain(fuzz::XML_TOKENS)
        .copied()
        .collect();
    fuzz::bytes(
        "universign.xmlrpc.decode_call",
        &seeds,
        &tokens,
        1500,
        |body| match xmlrpc::decode_call(body) {
            Ok(call) => {
                if let Ok(text) = xmlrpc::encode_call(&call) {
                    assert_eq!(xmlrpc::decode_call(text.as_bytes()).unwrap(), call);
                }
            }
            Err(e) => check_refusal(&e),
        },
    );
}

#[test]
fn fuzz_pdf_form_fields() {
    let seeds: Vec<Vec<u8>> = vec![
        b"%PDF-1.4\n1 0 obj\n<< /FT /Sig /T (Signature1) /Rect [0 0 10 10] >>\nendobj\n2 0 obj\n<< /T <FEFF0041> /TU (x) >>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec(),
        b"%PDF-1.5\n3 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Length 9 >>\nstream\n1 0 <<>>\nendstream\nendobj\n%%EOF\n".to_vec(),
        b"%PDF-1.4\n1 0 obj\n<< /T (a\\) b\\\\ \\(c\\051) /Kids [2 0 R] >>\nendobj\n".to_vec(),
    ];
    let tokens: &[&[u8]] = &[
        b"/T",
        b"/T(",
        b"/T<",
        b"(",
        b")",
        b"\\",
        b"<",
        b">",
        b"<FEFF",
        b"/ObjStm",
        b"obj",
        b"endobj",
        b"stream\n",
        b"endstream",
        b"%%EOF",
        b"\\0",
        b"\\777",
    ];
    fuzz::bytes("universign.pdf_fields", &seeds, tokens, 3000, |pdf| {
        if let pdf_fields::Fields::Known(names) = pdf_fields::fields(pdf) {
            assert!(names.len() <= pdf.len(), "more names than bytes");
        }
    });
}
