use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/universign");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

#[test]
fn recorded_requests_parse() {
    let call = parse_call(&fixture("request_transaction.request.xml")).unwrap();
    assert_eq!(call.method, "requester.requestTransaction");
    let [Rpc::Struct(req)] = call.params.as_slice() else {
        panic!("{call:?}")
    };
    assert_eq!(req.get("handwrittenSignatureMode"), Some(&Rpc::Int(1)));
    assert_eq!(req.get("finalDocSent"), Some(&Rpc::Bool(true)));
    let Some(Rpc::Array(docs)) = req.get("documents") else {
        panic!()
    };
    let Rpc::Struct(doc) = &docs[0] else { panic!() };
    let Some(Rpc::Bytes(pdf)) = doc.get("content") else {
        panic!()
    };
    assert!(pdf.starts_with(b"%PDF-1.5"));
    let call = parse_call(&fixture("get_documents.request.xml")).unwrap();
    assert_eq!(call.method, "requester.getDocuments");
    assert_eq!(
        call.params,
        [Rpc::Str("0f7c32e2-b989-4017-87c5-d3e2a08eae52".into())]
    );
}

#[test]
fn the_recorded_request_creates_a_transaction() {
    let state = Shared::new(UniversignOptions::default());
    let call = parse_call(&fixture("request_transaction.request.xml")).unwrap();
    let Rpc::Struct(answer) = dispatch(&state, &call).unwrap() else {
        panic!()
    };
    let Some(Rpc::Str(id)) = answer.get("id") else {
        panic!()
    };
    assert_eq!(id.len(), 36);
    let txs = lock(&state.transactions);
    let tx = &txs[id];
    assert_eq!(tx.signers[0].email, "test@gmail.com");
    assert_eq!(tx.documents[0].name, "original_contract.pdf");
}

#[test]
fn answers_are_written_like_the_recordings() {
    // The recorded answer to requestTransaction, rebuilt member by member.
    let rebuilt = success(&Rpc::Ordered(vec![
        ("id".into(), Rpc::Str("613b6a85-cf56-4705-ba20-93c9d24e813e".into())),
        (
            "url".into(),
            Rpc::Str(
                "https://sign.test.universign.eu/fr/signature/?id=cc1e322b-daaf-4143-adfc-de75c3864bf3"
                    .into(),
            ),
        ),
    ]));
    assert_eq!(
        rebuilt.as_bytes(),
        fixture("request_transaction.response.xml").as_slice()
    );
    let f = fault(73025, "Invalid transaction id: x & y");
    assert!(f.contains("<name>faultCode</name><value><i4>73025</i4></value>"));
    assert!(f.contains("x &amp; y"));
}

#[test]
fn malformed_requests_are_fault_73020() {
    let state = Shared::new(UniversignOptions::default());
    let cases = [
        ("<methodCall><methodName>requester.getTransactionInfo</methodName><params><param><value><i4>5</i4></value></param></params></methodCall>", "expects a transaction id string"),
        ("<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct><member><name>documents</name><value><array><data></data></array></value></member></struct></value></param></params></methodCall>", "at least one document"),
        ("<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct><member><name>language</name><value><i4>1</i4></value></member></struct></value></param></params></methodCall>", "member language must be a string"),
    ];
    for (xml, needle) in cases {
        let call = parse_call(xml.as_bytes()).unwrap();
        let (code, message) = dispatch(&state, &call).unwrap_err();
        assert_eq!(code, faults::MALFORMED_REQUEST, "{xml}");
        assert!(message.contains(needle), "{message}");
    }
    for bad in [
        "<methodCall><methodName>x</methodName><params><param><value><i4>x</i4></value></param></params></methodCall>",
        "<methodCall><methodName>x</methodName>",
        "<!DOCTYPE x><methodCall/>",
        "<methodResponse/>",
    ] {
        assert!(parse_call(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn signers_sign_in_turn_and_complete_the_transaction() {
    let state = Shared::new(UniversignOptions::default());
    let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 x");
    let xml = format!(
        "<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct>\
         <member><name>documents</name><value><array><data><value><struct><member><name>name</name><value>q.pdf</value></member>\
         <member><name>content</name><value><base64>{pdf}</base64></value></member></struct></value></data></array></value></member>\
         <member><name>signers</name><value><array><data>\
         <value><struct><member><name>emailAddress</name><value><string>a@example.com</string></value></member></struct></value>\
         <value><struct><member><name>emailAddress</name><value><string>b@example.com</string></value></member></struct></value>\
         </data></array></value></member></struct></value></param></params></methodCall>"
    );
    let Rpc::Struct(answer) = dispatch(&state, &parse_call(xml.as_bytes()).unwrap()).unwrap()
    else {
        panic!()
    };
    let id = answer["id"].as_str().unwrap().to_owned();
    assert!(state
        .signer_action(&id, 1, SignerAction::Sign)
        .unwrap_err()
        .contains("not signer 1's turn"));
    state.signer_action(&id, 0, SignerAction::Sign).unwrap();
    let get_docs = Call {
        method: "requester.getDocuments".into(),
        params: vec![Rpc::Str(id.clone())],
    };
    assert_eq!(
        dispatch(&state, &get_docs).unwrap_err().0,
        faults::NOT_ALLOWED_IN_STATE
    );
    state.signer_action(&id, 1, SignerAction::Sign).unwrap();
    assert_eq!(lock(&state.transactions)[&id].status, TxStatus::Completed);
    let Rpc::Array(docs) = dispatch(&state, &get_docs).unwrap() else {
        panic!()
    };
    let Rpc::Ordered(doc) = &docs[0] else {
        panic!()
    };
    let Rpc::Bytes(signed) = &doc.iter().find(|(k, _)| k == "content").unwrap().1 else {
        panic!()
    };
    assert!(signed.starts_with(b"%PDF-1.4 x\n% Universign emulator: transaction"));
    assert_eq!(
        state.finish(&id, TxStatus::Expired).unwrap_err(),
        format!("transaction {id} is already completed")
    );
}

#[test]
fn dates_are_xmlrpc_shaped() {
    let now = now_xmlrpc();
    assert_eq!(now.len(), 17, "{now}");
    assert!(now.starts_with("20"), "{now}");
    assert_eq!(&now[8..9], "T");
}

/// A two-page PDF with a signature field named `Client`.
const TWO_PAGES: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n3 0 obj << /FT /Sig /T (Client) >> endobj\n%%EOF";

fn field(members: &[(&str, i64)], texts: &[(&str, &str)]) -> String {
    let mut out = String::from("<value><struct>");
    for (k, v) in members {
        out.push_str(&format!(
            "<member><name>{k}</name><value><i4>{v}</i4></value></member>"
        ));
    }
    for (k, v) in texts {
        out.push_str(&format!(
            "<member><name>{k}</name><value><string>{v}</string></value></member>"
        ));
    }
    out.push_str("</struct></value>");
    out
}

fn request_with(fields: &[String], signer_extra: &str, top_extra: &str) -> Call {
    let pdf = base64::engine::general_purpose::STANDARD.encode(TWO_PAGES);
    let xml = format!(
        "<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct>\
         <member><name>documents</name><value><array><data><value><struct>\
         <member><name>name</name><value><string>quote.pdf</string></value></member>\
         <member><name>content</name><value><base64>{pdf}</base64></value></member>\
         <member><name>signatureFields</name><value><array><data>{}</data></array></value></member>\
         </struct></value></data></array></value></member>\
         <member><name>signers</name><value><array><data><value><struct>\
         <member><name>firstname</name><value><string>Jeanne</string></value></member>\
         <member><name>lastname</name><value><string>Martin</string></value></member>\
         <member><name>emailAddress</name><value><string>jeanne@example.com</string></value></member>\
         {signer_extra}</struct></value></data></array></value></member>{top_extra}\
         </struct></value></param></params></methodCall>",
        fields.concat()
    );
    parse_call(xml.as_bytes()).unwrap()
}

fn refused(state: &Shared, call: &Call) -> String {
    let (code, message) = dispatch(state, call).unwrap_err();
    assert_eq!(code, faults::MALFORMED_REQUEST, "{message}");
    message
}

#[test]
fn signature_fields_are_checked_and_placed() {
    let state = Shared::new(UniversignOptions::default());
    let ok = request_with(
        &[
            field(
                &[("page", 2), ("x", 100), ("y", 50), ("signerIndex", 0)],
                &[("label", "a")],
            ),
            field(
                &[("page", 1), ("x", 0), ("y", 0), ("signerIndex", 0)],
                &[("name", "Client"), ("label", "b")],
            ),
            field(
                &[("page", -1), ("x", 9), ("y", 9), ("signerIndex", 0)],
                &[("name", "Nope"), ("label", "c")],
            ),
        ],
        "",
        "",
    );
    let Rpc::Struct(answer) = dispatch(&state, &ok).unwrap() else {
        panic!()
    };
    let Some(Rpc::Str(id)) = answer.get("id") else {
        panic!()
    };
    let view = lock(&state.transactions)[id].view();
    let p = &view.placements[0];
    assert_eq!(
        (p[0].page, p[0].x, p[0].y, p[0].field.clone()),
        (2, 100, 50, None)
    );
    assert_eq!(
        p[1].field.as_deref(),
        Some("Client"),
        "a name the PDF has wins"
    );
    assert_eq!(
        p[2].field, None,
        "an unknown name falls back to the coordinates"
    );
    assert_eq!(view.certificate_type, "simple");

    let cases = [
        (
            field(&[("page", 3), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]),
            "out of the document, which has 2 page(s)",
        ),
        (
            field(&[("page", 0), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]),
            "page 0 is out",
        ),
        (
            field(&[("page", 1), ("x", 1), ("signerIndex", 0)], &[]),
            "signatureFields[0].y is mandatory",
        ),
        (
            field(
                &[("page", 1), ("y", 1), ("signerIndex", 0)],
                &[("name", "Client")],
            ),
            "signatureFields[0].x is mandatory",
        ),
        (
            field(&[("page", 1), ("x", 1), ("y", 1), ("signerIndex", 1)], &[]),
            "signerIndex 1 does not match",
        ),
    ];
    for (f, needle) in cases {
        let message = refused(&state, &request_with(&[f], "", ""));
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let twice = field(&[("page", 1), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]);
    let message = refused(&state, &request_with(&[twice.clone(), twice], "", ""));
    assert!(message.contains("needs a label"), "{message}");
}

#[test]
fn certificate_levels_and_sms_follow_the_account() {
    let state = Shared::new(UniversignOptions::default());
    let certified =
        "<member><name>certificateType</name><value><string>certified</string></value></member>";
    assert!(
        refused(&state, &request_with(&[], "", certified)).contains("not allowed for this account")
    );
    let sms = "<member><name>identificationType</name><value><string>sms</string></value></member>";
    assert!(refused(&state, &request_with(&[], sms, "")).contains("requires the signer's phoneNum"));
    let phone =
        "<member><name>phoneNum</name><value><string>+33612345678</string></value></member>";
    let url = "<member><name>successURL</name><value><string>https://erp.example.com/ok</string></value></member>";
    dispatch(
        &state,
        &request_with(&[], &format!("{sms}{phone}{url}"), ""),
    )
    .unwrap();

    let strict = Shared::new(UniversignOptions {
        certified_allowed: true,
        sms_allowed: false,
        ..UniversignOptions::default()
    });
    assert!(
        refused(&strict, &request_with(&[], &format!("{sms}{phone}"), ""))
            .contains("sms is not allowed")
    );
    let Rpc::Struct(answer) = dispatch(&strict, &request_with(&[], "", certified)).unwrap() else {
        panic!()
    };
    let Some(Rpc::Str(id)) = answer.get("id") else {
        panic!()
    };
    assert_eq!(
        lock(&strict.transactions)[id].view().certificate_type,
        "certified"
    );
    let bad = "<member><name>certificateType</name><value><string>gold</string></value></member>";
    assert!(refused(&strict, &request_with(&[], "", bad))
        .contains("must be simple, certified or advanced"));
}

#[test]
fn only_a_pending_transaction_can_be_canceled() {
    let state = Shared::new(UniversignOptions::default());
    let Rpc::Struct(answer) = dispatch(&state, &request_with(&[], "", "")).unwrap() else {
        panic!()
    };
    let Some(Rpc::Str(id)) = answer.get("id") else {
        panic!()
    };
    let cancel = parse_call(format!("<methodCall><methodName>requester.cancelTransaction</methodName><params><param><value><string>{id}</string></value></param></params></methodCall>").as_bytes()).unwrap();
    dispatch(&state, &cancel).unwrap();
    assert_eq!(lock(&state.transactions)[id].status, TxStatus::Canceled);
    let (code, _) = dispatch(&state, &cancel).unwrap_err();
    assert_eq!(code, faults::NOT_ALLOWED_IN_STATE);
}
