//! The XML-RPC methods the plugin calls (`requester.requestTransaction`,
//! `requester.getTransactionInfo`, `requester.getDocuments`, …), with Universign's checks
//! and fault codes.

use super::*;

pub(super) type Fault = (i32, String);

pub(super) fn malformed(message: impl Into<String>) -> Fault {
    (faults::MALFORMED_REQUEST, message.into())
}

pub(super) fn dispatch(state: &Shared, call: &Call) -> Result<Rpc, Fault> {
    match call.method.as_str() {
        "requester.requestTransaction" => request_transaction(state, &call.params),
        "requester.getTransactionInfo" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let txs = lock(&state.transactions);
            let tx = txs.get(&id).ok_or_else(|| unknown(&id))?;
            Ok(transaction_info(state, tx))
        }
        "requester.getDocuments" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let txs = lock(&state.transactions);
            let tx = txs.get(&id).ok_or_else(|| unknown(&id))?;
            if tx.status != TxStatus::Completed {
                return Err((
                    faults::NOT_ALLOWED_IN_STATE,
                    format!(
                        "Action not allowed in the current state: transaction {id} is {}",
                        tx.status.as_str()
                    ),
                ));
            }
            Ok(documents(tx))
        }
        "requester.cancelTransaction" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let mut txs = lock(&state.transactions);
            let tx = txs.get_mut(&id).ok_or_else(|| unknown(&id))?;
            if tx.status != TxStatus::Ready {
                return Err((
                    faults::NOT_ALLOWED_IN_STATE,
                    format!(
                        "Action not allowed in the current state: transaction {id} is {}",
                        tx.status.as_str()
                    ),
                ));
            }
            tx.status = TxStatus::Canceled;
            Ok(Rpc::Bool(true))
        }
        other => Err((
            faults::NO_SUCH_METHOD,
            format!("requested method not found: {other}"),
        )),
    }
}

pub(super) fn unknown(id: &str) -> Fault {
    (
        faults::UNKNOWN_TRANSACTION,
        format!("Invalid transaction id: {id}"),
    )
}

pub(super) fn injected(state: &Shared, id: &str) -> Result<(), Fault> {
    match lock(&state.injected).get(id) {
        Some(code) => Err((*code, format!("Injected error on transaction {id}"))),
        None => Ok(()),
    }
}

pub(super) fn one_id(params: &[Rpc], method: &str) -> Result<String, Fault> {
    match params {
        [Rpc::Str(id)] => Ok(id.clone()),
        [other] => Err(malformed(format!(
            "{method} expects a transaction id string, not a {}",
            other.type_name()
        ))),
        _ => Err(malformed(format!(
            "{method} expects 1 parameter, got {}",
            params.len()
        ))),
    }
}

pub(super) const LANGUAGES: &[&str] = &[
    "bg", "ca", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ro",
];

pub(super) fn request_transaction(state: &Shared, params: &[Rpc]) -> Result<Rpc, Fault> {
    let [Rpc::Struct(req)] = params else {
        return Err(malformed(format!(
            "requester.requestTransaction expects 1 struct parameter, got {}",
            params.len()
        )));
    };
    // Members the service knows, with the type it requires.
    for (name, value) in req {
        let expected = match name.as_str() {
            "documents" | "signers" => "array",
            "finalDocSent"
            | "finalDocRequesterSent"
            | "finalDocObserverSent"
            | "mustContactFirstSigner" => "boolean",
            "handwrittenSignatureMode" => "int",
            _ => "string",
        };
        let known = [
            "documents",
            "signers",
            "finalDocSent",
            "finalDocRequesterSent",
            "finalDocObserverSent",
            "mustContactFirstSigner",
            "handwrittenSignatureMode",
            "language",
            "chainingMode",
            "customId",
            "description",
            "profile",
            "certificateType",
            "identificationType",
            "successURL",
            "cancelURL",
            "failURL",
            "invitationMessage",
        ];
        if known.contains(&name.as_str()) && value.type_name() != expected {
            return Err(malformed(format!(
                "member {name} must be a {expected}, not a {}",
                value.type_name()
            )));
        }
    }
    let documents = match req.get("documents") {
        Some(Rpc::Array(items)) if !items.is_empty() => items,
        _ => return Err(malformed("documents: at least one document is required")),
    };
    let mut docs = Vec::new();
    for (i, item) in documents.iter().enumerate() {
        let Rpc::Struct(d) = item else {
            return Err(malformed(format!("documents[{i}] must be a struct")));
        };
        let content = match d.get("content") {
            Some(Rpc::Bytes(b)) => b.clone(),
            Some(other) => {
                return Err(malformed(format!(
                    "documents[{i}].content must be base64, not a {}",
                    other.type_name()
                )))
            }
            None => return Err(malformed(format!("documents[{i}].content is missing"))),
        };
        if !content.starts_with(b"%PDF-") {
            return Err((
                faults::PDF_SIGNING,
                format!("Error on document {i}: the content is not a PDF document"),
            ));
        }
        let name = d
            .get("fileName")
            .or_else(|| d.get("name"))
            .and_then(Rpc::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("document{i}.pdf"));
        docs.push((name, content, d.get("signatureFields")));
    }
    let signers = match req.get("signers") {
        Some(Rpc::Array(items)) if !items.is_empty() => items,
        _ => return Err(malformed("signers: at least one signer is required")),
    };
    let docs = docs
        .into_iter()
        .enumerate()
        .map(|(i, (name, content, fields))| {
            let placements = match fields {
                None => Vec::new(),
                Some(fields) => placements(i, &content, fields, signers.len())?,
            };
            Ok(Document {
                name,
                content,
                placements,
            })
        })
        .collect::<Result<Vec<_>, Fault>>()?;
    let certificate_type = match req.get("certificateType").and_then(Rpc::as_str) {
        None => "simple".to_owned(),
        Some(t @ "simple") => t.to_owned(),
        Some(t @ ("certified" | "advanced")) if state.opts.certified_allowed => t.to_owned(),
        Some(t @ ("certified" | "advanced")) => {
            return Err(malformed(format!(
                "certificateType {t} is not allowed for this account: its profile offers \
                 simple signatures only"
            )))
        }
        Some(other) => {
            return Err(malformed(format!(
                "certificateType must be simple, certified or advanced, not {other}"
            )))
        }
    };
    let mut people = Vec::new();
    for (i, item) in signers.iter().enumerate() {
        let Rpc::Struct(s) = item else {
            return Err(malformed(format!("signers[{i}] must be a struct")));
        };
        let text = |member: &str| -> Result<Option<String>, Fault> {
            match s.get(member) {
                None => Ok(None),
                Some(Rpc::Str(t)) => Ok(Some(t.clone())),
                Some(other) => Err(malformed(format!(
                    "signers[{i}].{member} must be a string, not a {}",
                    other.type_name()
                ))),
            }
        };
        let email = text("emailAddress")?
            .ok_or_else(|| malformed(format!("signers[{i}].emailAddress is missing")))?;
        let valid_email = email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'));
        if !valid_email {
            return Err(malformed(format!(
                "signers[{i}].emailAddress is not a valid e-mail address: {email}"
            )));
        }
        if let Some(phone) = text("phoneNum")? {
            let digits = phone.strip_prefix('+').unwrap_or("");
            if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed(format!(
                    "signers[{i}].phoneNum must be an international number (+33…): {phone}"
                )));
            }
        }
        let identification = text("identificationType")?.unwrap_or_else(|| "none".to_owned());
        match identification.as_str() {
            "none" | "email" => {}
            "sms" if text("phoneNum")?.is_none() => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType sms requires the signer's phoneNum"
                )))
            }
            "sms" if !state.opts.sms_allowed => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType sms is not allowed for this account"
                )))
            }
            "sms" => {}
            other => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType must be none, email or sms, not {other}"
                )))
            }
        }
        for member in ["successURL", "cancelURL", "failURL"] {
            if let Some(url) = text(member)? {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(malformed(format!(
                        "signers[{i}].{member} is not a valid URL: {url}"
                    )));
                }
            }
        }
        people.push(Signer {
            id: state.new_id(),
            first_name: text("firstname")?.unwrap_or_default(),
            last_name: text("lastname")?.unwrap_or_default(),
            email,
            status: if i == 0 { "ready" } else { "waiting" },
            action_date: None,
            identification,
            success_url: text("successURL")?,
        });
    }
    if let Some(Rpc::Int(mode)) = req.get("handwrittenSignatureMode") {
        if !(0..=2).contains(mode) {
            return Err(malformed(format!(
                "handwrittenSignatureMode must be 0, 1 or 2, not {mode}"
            )));
        }
    }
    if let Some(Rpc::Str(mode)) = req.get("chainingMode") {
        if !["none", "email", "web"].contains(&mode.as_str()) {
            return Err(malformed(format!(
                "chainingMode must be none, email or web, not {mode}"
            )));
        }
    }
    if let Some(Rpc::Str(lang)) = req.get("language") {
        if !LANGUAGES.contains(&lang.as_str()) {
            return Err(malformed(format!("unsupported language {lang}")));
        }
    }
    let id = state.new_id();
    let first_url = state.signing_url(&people[0].id);
    let tx = Transaction {
        serial: state.serial.fetch_add(1, Ordering::SeqCst),
        id: id.clone(),
        custom_id: req.get("customId").and_then(Rpc::as_str).map(str::to_owned),
        description: req
            .get("description")
            .and_then(Rpc::as_str)
            .map(str::to_owned),
        status: TxStatus::Ready,
        created: now_xmlrpc(),
        current_signer: 0,
        signers: people,
        documents: docs,
        certificate_type,
    };
    lock(&state.transactions).insert(id.clone(), tx);
    Ok(Rpc::Struct(BTreeMap::from([
        ("id".to_owned(), Rpc::Str(id)),
        ("url".to_owned(), Rpc::Str(first_url)),
    ])))
}

/// Checks document `doc`'s `signatureFields` (`DocSignatureField[]`) and says where each
/// signature goes.
pub(super) fn placements(
    doc: usize,
    pdf: &[u8],
    fields: &Rpc,
    signers: usize,
) -> Result<Vec<Placement>, Fault> {
    let Rpc::Array(items) = fields else {
        return Err(malformed(format!(
            "documents[{doc}].signatureFields must be an array, not a {}",
            fields.type_name()
        )));
    };
    let pages = crate::kit::pdf::count_pages(pdf).max(1);
    let mut out: Vec<Placement> = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let at = format!("documents[{doc}].signatureFields[{j}]");
        let Rpc::Struct(f) = item else {
            return Err(malformed(format!("{at} must be a struct")));
        };
        let int = |member: &str| match f.get(member) {
            Some(Rpc::Int(v)) => Ok(*v),
            Some(other) => Err(malformed(format!(
                "{at}.{member} must be an int, not a {}",
                other.type_name()
            ))),
            None => Err(malformed(format!("{at}.{member} is mandatory"))),
        };
        let (page, x, y, signer_index) = (int("page")?, int("x")?, int("y")?, int("signerIndex")?);
        if page == 0 || page < -1 || page > i64::try_from(pages).unwrap_or(i64::MAX) {
            return Err(malformed(format!(
                "{at}.page {page} is out of the document, which has {pages} page(s)"
            )));
        }
        if signer_index < 0 || signer_index as usize >= signers {
            return Err(malformed(format!(
                "{at}.signerIndex {signer_index} does not match any of the {signers} signer(s)"
            )));
        }
        let text = |member: &str| f.get(member).and_then(Rpc::as_str).map(str::to_owned);
        let field = text("name").filter(|name| {
            let literal = format!("/T ({name})");
            let tight = format!("/T({name})");
            crate::kit::bytes::contains(pdf, literal.as_bytes())
                || crate::kit::bytes::contains(pdf, tight.as_bytes())
        });
        out.push(Placement {
            signer_index,
            page,
            x,
            y,
            field,
            label: text("label"),
        });
    }
    for p in &out {
        let several = out
            .iter()
            .filter(|q| q.signer_index == p.signer_index)
            .count()
            > 1;
        if several && p.label.is_none() {
            return Err(malformed(format!(
                "documents[{doc}].signatureFields: signer {} has several fields, each needs a \
                 label",
                p.signer_index
            )));
        }
    }
    Ok(out)
}

/// `getTransactionInfo`'s answer, members in the order of the 2021 recording.
pub(super) fn transaction_info(state: &Shared, tx: &Transaction) -> Rpc {
    let empty_certificate = || {
        Rpc::Ordered(vec![
            ("serial".into(), Rpc::Str(String::new())),
            ("subject".into(), Rpc::Str(String::new())),
            ("issuer".into(), Rpc::Str(String::new())),
        ])
    };
    let signers = tx
        .signers
        .iter()
        .map(|s| {
            let mut members = vec![
                ("firstName".to_owned(), Rpc::Str(s.first_name.clone())),
                ("lastName".to_owned(), Rpc::Str(s.last_name.clone())),
                ("id".to_owned(), Rpc::Str(s.id.clone())),
                ("certificateInfo".to_owned(), empty_certificate()),
            ];
            if let Some(date) = &s.action_date {
                members.push(("actionDate".to_owned(), Rpc::Date(date.clone())));
            }
            members.push(("url".to_owned(), Rpc::Str(state.signing_url(&s.id))));
            members.push(("status".to_owned(), Rpc::Str(s.status.to_owned())));
            Rpc::Ordered(members)
        })
        .collect();
    let mut members = vec![
        ("signerInfos".to_owned(), Rpc::Array(signers)),
        (
            "currentSigner".to_owned(),
            Rpc::Int(tx.current_signer.min(tx.signers.len().saturating_sub(1)) as i64),
        ),
        ("eachField".to_owned(), Rpc::Bool(false)),
        ("creationDate".to_owned(), Rpc::Date(tx.created.clone())),
        (
            "signerCertificates".to_owned(),
            Rpc::Array(tx.signers.iter().map(|_| empty_certificate()).collect()),
        ),
        (
            "initiatorInfo".to_owned(),
            Rpc::Ordered(vec![
                ("firstName".into(), Rpc::Str("ERP".into())),
                ("lastName".into(), Rpc::Str("Passerelle".into())),
                ("email".into(), Rpc::Str(state.opts.user.clone())),
            ]),
        ),
        ("transactionId".to_owned(), Rpc::Str(tx.id.clone())),
    ];
    if let Some(custom) = &tx.custom_id {
        members.push(("customId".to_owned(), Rpc::Str(custom.clone())));
    }
    if let Some(description) = &tx.description {
        members.push(("description".to_owned(), Rpc::Str(description.clone())));
    }
    members.push(("status".to_owned(), Rpc::Str(tx.status.as_str().to_owned())));
    Rpc::Ordered(members)
}

/// `getDocuments`' answer, members in the order of the recording.
pub(super) fn documents(tx: &Transaction) -> Rpc {
    Rpc::Array(
        tx.documents
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let signed = tx.signed(d);
                Rpc::Ordered(vec![
                    (
                        "metaData".into(),
                        Rpc::Ordered(vec![
                            ("pages".into(), Rpc::Int(1)),
                            ("size".into(), Rpc::Int(signed.len() as i64)),
                        ]),
                    ),
                    ("fileName".into(), Rpc::Str(d.name.clone())),
                    ("documentType".into(), Rpc::Str("pdf".into())),
                    ("name".into(), Rpc::Str(d.name.clone())),
                    ("id".into(), Rpc::Int(1_918_700 + i as i64)),
                    ("content".into(), Rpc::Bytes(signed)),
                ])
            })
            .collect(),
    )
}
