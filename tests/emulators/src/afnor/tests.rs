#![allow(clippy::unwrap_used)]
use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One HTTP/1.1 exchange on a fresh connection: status and body.
fn call(
    emu: &AfnorEmulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
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
    (head[9..12].parse().unwrap(), body.to_owned())
}

fn token(emu: &AfnorEmulator) -> String {
    let o = emu.options().clone();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        o.client_id, o.client_secret
    );
    let (status, body) = call(
        emu,
        "POST",
        TOKEN_PATH,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    format!("Bearer {}", v["access_token"].as_str().unwrap())
}

fn submit(emu: &AfnorEmulator, auth: &str, info: &Value, file: &[u8]) -> (u16, Value) {
    let mut body = b"--b\r\nContent-Disposition: form-data; name=\"flowInfo\"\r\nContent-Type: application/json\r\n\r\n".to_vec();
    body.extend_from_slice(info.to_string().as_bytes());
    body.extend_from_slice(
        b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n",
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let (status, text) = call(
        emu,
        "POST",
        "/flow-service/v1/flows",
        &[
            ("Authorization", auth),
            ("Content-Type", "multipart/form-data; boundary=b"),
        ],
        &body,
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ack(emu: &AfnorEmulator, auth: &str, id: &str) -> Value {
    let path = format!("/flow-service/v1/flows/{id}?docType=Metadata");
    call(emu, "GET", &path, &[("Authorization", auth)], b"");
    let (status, body) = call(emu, "GET", &path, &[("Authorization", auth)], b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["acknowledgement"].clone()
}

#[test]
fn refuses_what_the_standard_refuses() {
    let emu = AfnorEmulator::start(AfnorOptions::default()).unwrap();
    let (status, body) = call(
        &emu,
        "POST",
        TOKEN_PATH,
        &[],
        b"grant_type=client_credentials&client_id=x&client_secret=y",
    );
    assert_eq!(status, 401, "{body}");
    let invoice = samples::outgoing("F-1");
    let info = json!({"name": "F-1.xml", "flowSyntax": "UBL", "processingRule": "B2B", "sha256": sha256_hex(&invoice)});
    assert_eq!(submit(&emu, "Bearer nope", &info, &invoice).0, 401);
    let auth = token(&emu);
    let (status, body) = submit(&emu, &auth, &json!({"name": "F-1.xml"}), &invoice);
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (400, Some("MISSING_REQUIRED_FIELD"))
    );
    let (status, _) = submit(
        &emu,
        &auth,
        &json!({"name": "F-1.xml", "flowSyntax": "PDF"}),
        &invoice,
    );
    assert_eq!(status, 400);
    let (status, body) = call(
        &emu,
        "POST",
        "/flow-service/v1/flows/search",
        &[("Authorization", &auth)],
        b"{\"limit\":10}",
    );
    assert_eq!(status, 400, "{body}");

    let (status, first) = submit(&emu, &auth, &info, &invoice);
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        ack(&emu, &auth, first["flowId"].as_str().unwrap())["status"],
        "Ok"
    );
    for (info, file, reason) in [
        (info.clone(), invoice.clone(), "AlreadyExistingFlow"),
        (
            json!({"name": "F-2.xml", "flowSyntax": "CII"}),
            samples::outgoing("F-2"),
            "FlowTypeError",
        ),
        (
            json!({"name": "F-3.xml", "flowSyntax": "UBL", "sha256": "0".repeat(64)}),
            samples::outgoing("F-3"),
            "ChecksumMismatch",
        ),
        (
            json!({"name": "F-4.xml", "flowSyntax": "UBL"}),
            samples::ubl("F-4", COMPANY_SIREN, "552100554"),
            "OtherTechnicalError",
        ),
        (
            json!({"name": "F-5.xml", "flowSyntax": "UBL"}),
            b"<Invoice".to_vec(),
            "InvalidSchema",
        ),
    ] {
        let (status, answer) = submit(&emu, &auth, &info, &file);
        assert_eq!(status, 202, "{answer}");
        let ack = ack(&emu, &auth, answer["flowId"].as_str().unwrap());
        assert_eq!(ack["status"], "Error", "{reason}: {ack}");
        assert_eq!(ack["details"][0]["reasonCode"], reason, "{ack}");
    }
}

#[test]
fn the_lifecycle_moves_one_status_per_search() {
    let emu = AfnorEmulator::start(AfnorOptions::default()).unwrap();
    let auth = token(&emu);
    let invoice = samples::factur_x("F-9", COMPANY_SIREN, CUSTOMER_SIREN);
    let (status, body) = submit(
        &emu,
        &auth,
        &json!({"name": "F-9.pdf", "flowSyntax": "Factur-X"}),
        &invoice,
    );
    assert_eq!(status, 202, "{body}");
    let search = br#"{"where":{"flowType":["CustomerInvoiceLC"],"flowDirection":["In"]}}"#;
    for expected in 1..=DEFAULT_PATH.len() + 2 {
        let (status, body) = call(
            &emu,
            "POST",
            "/flow-service/v1/flows/search",
            &[("Authorization", &auth)],
            search,
        );
        assert_eq!(status, 200);
        let results: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            results["results"].as_array().unwrap().len(),
            expected.min(DEFAULT_PATH.len())
        );
    }
    let last = emu.flows().into_iter().last().unwrap();
    assert!(String::from_utf8(last.content)
        .unwrap()
        .contains("<ram:ProcessConditionCode>212</ram:ProcessConditionCode>"));
}
