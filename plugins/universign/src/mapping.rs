//! Between the provider-neutral `esign.*` types and Universign's XML-RPC members.
//!
//! Requests are checked here before anything is sent (each refusal names the input field),
//! then written with the member names of Universign's `TransactionRequest`
//! (`firstname`, `emailAddress`, `phoneNum`, `handwrittenSignatureMode`, `chainingMode`…).
//! Options, from Universign's signature guide 8.8 (published with the `CapSens/Universign`
//! client as `spec/fixtures/universign-guide-8.8.pdf`) and that client's members:
//! `certificateType` (simple, advanced, certified) on the request; `identificationType`
//! (none, email, sms) and `successURL`/`cancelURL`/`failURL` on each signer, as the client
//! sends them; `signatureFields` on each document, `DocSignatureField` structs with `page`
//! (from 1, -1 for the last), `x`, `y` (all three mandatory), `signerIndex` (from 0), and
//! optionally `name` (an existing field, whose position then wins) and `label` (mandatory
//! when a signer has several fields on one document).
//! Answers are read by member name, never by position: Universign's member order changed
//! between versions (see the 2015 and 2021 recordings), and members absent from one version
//! (`transactionId`, a signer's `id` or `email`) are optional here.

use crate::pdf_fields::{self, Fields};
use crate::xmlrpc::{Struct, Value};
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;

/// A request that passed the checks, with the documents decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub documents: Vec<(String, Vec<u8>)>,
    pub signers: Vec<SignerRequest>,
    pub params: Struct,
}

/// Checks a signature request and builds the `requester.requestTransaction` parameter.
pub fn prepare(request: &SignatureRequest) -> Result<Prepared, PluginError> {
    if request.documents.is_empty() {
        return Err(invalid("documents", "at least one PDF document is needed"));
    }
    if request.signers.is_empty() {
        return Err(invalid("signers", "at least one signer is needed"));
    }
    let mut documents = Vec::new();
    let mut doc_values = Vec::new();
    for (i, doc) in request.documents.iter().enumerate() {
        let name = doc.name.trim();
        if name.is_empty() {
            return Err(invalid(
                &format!("documents[{i}].name"),
                "each document needs a file name, e.g. quote-2024-0042.pdf",
            ));
        }
        let compact: String = doc
            .content_base64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| {
                invalid(
                    &format!("documents[{i}].content_base64"),
                    &format!("document {name:?} is not valid standard base64 ({e})"),
                )
            })?;
        if !bytes.starts_with(b"%PDF-") {
            return Err(invalid(
                &format!("documents[{i}].content_base64"),
                &format!(
                    "document {name:?} is not a PDF (it does not start with %PDF-): Universign \
                     signs PDF documents only"
                ),
            ));
        }
        let mut member = Struct::new()
            .with("name", name)
            .with("content", Value::Base64(bytes.clone()));
        if !doc.signature_fields.is_empty() {
            member.push(
                "signatureFields",
                placements(
                    i,
                    name,
                    &bytes,
                    &doc.signature_fields,
                    request.signers.len(),
                )?,
            );
        }
        doc_values.push(Value::Struct(member));
        documents.push((name.to_owned(), bytes));
    }
    let mut signers = Vec::new();
    let mut signer_values = Vec::new();
    for (i, s) in request.signers.iter().enumerate() {
        let first = s.first_name.trim();
        let last = s.last_name.trim();
        let email = s.email.trim();
        if first.is_empty() {
            return Err(invalid(
                &format!("signers[{i}].first_name"),
                "the signer's first name is empty",
            ));
        }
        if last.is_empty() {
            return Err(invalid(
                &format!("signers[{i}].last_name"),
                "the signer's last name is empty",
            ));
        }
        if !looks_like_email(email) {
            return Err(invalid(
                &format!("signers[{i}].email"),
                &format!("{email:?} is not an e-mail address (expected name@domain.tld)"),
            ));
        }
        let phone = match s.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(normalise_phone(p).ok_or_else(|| {
                invalid(
                    &format!("signers[{i}].phone"),
                    &format!(
                        "{p:?} is not a phone number in international form, e.g. +33612345678"
                    ),
                )
            })?),
        };
        let mut member = Struct::new()
            .with("firstname", first)
            .with("lastname", last)
            .with("emailAddress", email);
        if let Some(p) = &phone {
            member.push("phoneNum", p.as_str());
        }
        if let Some(identification) = request.identification {
            if identification == SignerIdentification::Sms && phone.is_none() {
                return Err(invalid(
                    &format!("signers[{i}].phone"),
                    "identification by SMS needs the signer's mobile phone in international \
                     form, e.g. +33612345678",
                ));
            }
            member.push(
                "identificationType",
                match identification {
                    SignerIdentification::None => "none",
                    SignerIdentification::Email => "email",
                    SignerIdentification::Sms => "sms",
                },
            );
        }
        for (field, member_name, url) in [
            ("success_url", "successURL", &request.success_url),
            ("cancel_url", "cancelURL", &request.cancel_url),
            ("fail_url", "failURL", &request.fail_url),
        ] {
            if let Some(url) = non_empty(url.as_deref()) {
                if !is_http_url(url) {
                    return Err(invalid(
                        field,
                        &format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
                member.push(member_name, url);
            }
        }
        signer_values.push(Value::Struct(member));
        signers.push(SignerRequest {
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: email.to_owned(),
            phone,
        });
    }
    let mut params = Struct::new()
        .with("documents", doc_values)
        .with("signers", signer_values);
    if let Some(language) = non_empty(request.language.as_deref()) {
        let ok = language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase());
        if !ok {
            return Err(invalid(
                "language",
                &format!("{language:?} is not a two-letter language code, e.g. fr or en"),
            ));
        }
        params.push("language", language);
    }
    if let Some(custom_id) = non_empty(request.custom_id.as_deref()) {
        if custom_id.len() > 128 {
            return Err(invalid(
                "custom_id",
                "the custom id is longer than 128 characters",
            ));
        }
        params.push("customId", custom_id);
    }
    if let Some(description) = non_empty(request.description.as_deref()) {
        params.push("description", description);
    }
    if let Some(mode) = request.handwritten_signature {
        let code = match mode {
            HandwrittenSignature::Disabled => 0,
            HandwrittenSignature::Enabled => 1,
            HandwrittenSignature::TouchDevices => 2,
        };
        params.push("handwrittenSignatureMode", code);
    }
    if let Some(level) = request.certificate_level {
        params.push(
            "certificateType",
            match level {
                CertificateLevel::Simple => "simple",
                CertificateLevel::Advanced => "advanced",
                CertificateLevel::Certified => "certified",
            },
        );
    }
    if let Some(chaining) = request.chaining {
        let mode = match chaining {
            SignerChaining::Email => "email",
            SignerChaining::Web => "web",
            SignerChaining::None => "none",
        };
        params.push("chainingMode", mode);
    }
    Ok(Prepared {
        documents,
        signers,
        params,
    })
}

/// The `signatureFields` of document `doc`: checked, then written as `DocSignatureField`s.
fn placements(
    doc: usize,
    doc_name: &str,
    pdf: &[u8],
    fields: &[SignatureField],
    signers: usize,
) -> Result<Value, PluginError> {
    let mut values = Vec::new();
    let mut per_signer = std::collections::BTreeMap::<u32, usize>::new();
    for field in fields {
        *per_signer.entry(field.signer).or_default() += 1;
    }
    for (j, f) in fields.iter().enumerate() {
        let at = |member: &str| format!("documents[{doc}].signature_fields[{j}].{member}");
        if f.signer as usize >= signers {
            return Err(invalid(
                &at("signer"),
                &format!(
                    "signer {} does not exist: signers are numbered from 0 and this request has \
                     {signers}",
                    f.signer
                ),
            ));
        }
        let name = non_empty(f.name.as_deref());
        let label = non_empty(f.label.as_deref());
        if per_signer.get(&f.signer).copied().unwrap_or(0) > 1 && label.is_none() {
            return Err(invalid(
                &at("label"),
                "a signer with several fields on one document needs a label for each, printed \
                 on the signing page",
            ));
        }
        let (page, x, y) = match (f.page, f.x, f.y, name) {
            (Some(page), Some(x), Some(y), _) => (page, x, y),
            // A named field: its own position wins; page and coordinates are mandatory in
            // the protocol and only used if the name is unknown, which is checked below.
            (page, None, None, Some(_)) => (page.unwrap_or(1), 0, 0),
            _ => {
                return Err(invalid(
                    &at("page"),
                    "give the page and both coordinates (page, x, y), or the name of a \
                     signature field of the PDF",
                ))
            }
        };
        if page == 0 || page < -1 {
            return Err(invalid(
                &at("page"),
                &format!("page {page} does not exist: pages count from 1, and -1 is the last"),
            ));
        }
        if x < 0 || y < 0 {
            return Err(invalid(
                &at("x"),
                &format!("coordinates ({x}, {y}) must be positive PDF points"),
            ));
        }
        if let Some(name) = name {
            let explicit = f.x.is_some() && f.y.is_some();
            if let Fields::Known(names) = pdf_fields::fields(pdf) {
                if !explicit && !names.iter().any(|n| n == name) {
                    return Err(invalid(
                        &at("name"),
                        &format!(
                            "document {doc_name:?} has no field named {name:?}{}: give an \
                             existing field's name, or a page and coordinates",
                            if names.is_empty() {
                                " (it has no form fields at all)".to_owned()
                            } else {
                                format!("; its fields are {}", names.join(", "))
                            }
                        ),
                    ));
                }
            }
        }
        let mut member = Struct::new()
            .with("page", page)
            .with("x", x)
            .with("y", y)
            .with("signerIndex", i32::try_from(f.signer).unwrap_or(i32::MAX));
        if let Some(name) = name {
            member.push("name", name);
        }
        if let Some(label) = label {
            member.push("label", label);
        }
        values.push(Value::Struct(member));
    }
    Ok(Value::Array(values))
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") && url.len() > 8)
        || (lower.starts_with("http://") && url.len() > 7)
}

/// `requester.requestTransaction`'s answer: `{id, url}`.
pub fn created(value: &Value) -> Result<(String, String), PluginError> {
    let s = expect_struct(value, "requester.requestTransaction")?;
    let id = text(s, "id", "requester.requestTransaction")?;
    let url = text(s, "url", "requester.requestTransaction")?;
    if id.trim().is_empty() {
        return Err(upstream(
            "requester.requestTransaction answered an empty transaction id",
        ));
    }
    Ok((id.to_owned(), url.to_owned()))
}

/// A signer as `requester.getTransactionInfo` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub status: SignerStatus,
    pub url: Option<String>,
    pub action_date: Option<String>,
}

/// What `requester.getTransactionInfo` says about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub status: SignatureStatus,
    pub signers: Vec<SignerInfo>,
    pub custom_id: Option<String>,
    pub description: Option<String>,
}

/// Reads `requester.getTransactionInfo`'s answer.
pub fn transaction_info(value: &Value) -> Result<TransactionInfo, PluginError> {
    const METHOD: &str = "requester.getTransactionInfo";
    let s = expect_struct(value, METHOD)?;
    let status = transaction_status(text(s, "status", METHOD)?)?;
    let mut signers = Vec::new();
    if let Some(list) = s.get("signerInfos") {
        let list = list.as_array().ok_or_else(|| {
            upstream(&format!(
                "{METHOD} answered signerInfos as a {}",
                list.type_name()
            ))
        })?;
        for item in list {
            let signer = expect_struct(item, METHOD)?;
            signers.push(SignerInfo {
                first_name: optional_text(signer, "firstName").unwrap_or_default(),
                last_name: optional_text(signer, "lastName").unwrap_or_default(),
                email: optional_text(signer, "email"),
                status: signer_status(text(signer, "status", METHOD)?)?,
                url: optional_text(signer, "url"),
                action_date: signer
                    .get("actionDate")
                    .and_then(Value::as_datetime)
                    .map(ToString::to_string),
            });
        }
    }
    Ok(TransactionInfo {
        status,
        signers,
        custom_id: optional_text(s, "customId"),
        description: optional_text(s, "description"),
    })
}

/// Reads `requester.getDocuments`'s answer: file names and bytes, in order.
pub fn documents(value: &Value) -> Result<Vec<(String, Vec<u8>)>, PluginError> {
    const METHOD: &str = "requester.getDocuments";
    let list = value.as_array().ok_or_else(|| {
        upstream(&format!(
            "{METHOD} answered a {} instead of an array",
            value.type_name()
        ))
    })?;
    if list.is_empty() {
        return Err(upstream(&format!("{METHOD} answered no documents")));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let doc = expect_struct(item, METHOD)?;
            let name = optional_text(doc, "fileName")
                .or_else(|| optional_text(doc, "name"))
                .unwrap_or_else(|| format!("document-{}.pdf", i + 1));
            let content = doc
                .get("content")
                .and_then(Value::as_bytes)
                .ok_or_else(|| {
                    upstream(&format!(
                        "{METHOD} answered document {name:?} without base64 content"
                    ))
                })?;
            Ok((name, content.to_vec()))
        })
        .collect()
}

fn transaction_status(s: &str) -> Result<SignatureStatus, PluginError> {
    Ok(match s {
        "ready" => SignatureStatus::Ready,
        "completed" => SignatureStatus::Completed,
        "expired" => SignatureStatus::Expired,
        "canceled" | "cancelled" => SignatureStatus::Canceled,
        "failed" => SignatureStatus::Failed,
        other => {
            return Err(upstream(&format!(
                "Universign answered an unknown transaction status {other:?} (known: ready, \
                 expired, completed, canceled, failed)"
            )))
        }
    })
}

fn signer_status(s: &str) -> Result<SignerStatus, PluginError> {
    Ok(match s {
        "waiting" => SignerStatus::Waiting,
        "ready" => SignerStatus::Ready,
        "accessed" => SignerStatus::Accessed,
        "code-sent" => SignerStatus::CodeSent,
        "signed" => SignerStatus::Signed,
        "pending-id-docs" => SignerStatus::PendingIdDocs,
        "pending-validation" => SignerStatus::PendingValidation,
        "canceled" | "cancelled" => SignerStatus::Canceled,
        "failed" => SignerStatus::Failed,
        other => {
            return Err(upstream(&format!(
                "Universign answered an unknown signer status {other:?}"
            )))
        }
    })
}

fn expect_struct<'v>(value: &'v Value, method: &str) -> Result<&'v Struct, PluginError> {
    value.as_struct().ok_or_else(|| {
        upstream(&format!(
            "{method} answered a {} instead of a struct",
            value.type_name()
        ))
    })
}

fn text<'v>(s: &'v Struct, member: &str, method: &str) -> Result<&'v str, PluginError> {
    match s.get(member) {
        Some(Value::String(t)) => Ok(t),
        Some(other) => Err(upstream(&format!(
            "{method} answered member {member} as a {} instead of a string",
            other.type_name()
        ))),
        None => Err(upstream(&format!(
            "{method} answered without member {member}"
        ))),
    }
}

fn optional_text(s: &Struct, member: &str) -> Option<String> {
    s.get(member)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

/// `+33 6 12 34 56 78` → `+33612345678`; `None` when it is not an international number.
fn normalise_phone(p: &str) -> Option<String> {
    let compact: String = p
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    (8..=15)
        .contains(&digits.len())
        .then_some(())
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|_| compact.clone())
}

fn invalid(field: &str, message: &str) -> PluginError {
    PluginError::invalid_input(message.to_owned()).with_field(field)
}

fn upstream(message: &str) -> PluginError {
    PluginError::new(ErrorKind::Upstream, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmlrpc::{decode_response, MethodResponse};

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n";

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/emulators/fixtures/universign/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        match decode_response(&std::fs::read(path).unwrap()).unwrap() {
            MethodResponse::Success(v) => v,
            MethodResponse::Fault(f) => panic!("{f:?}"),
        }
    }

    fn request() -> SignatureRequest {
        SignatureRequest {
            documents: vec![DocumentToSign {
                name: "quote.pdf".into(),
                content_base64: base64::engine::general_purpose::STANDARD.encode(PDF),
                ..DocumentToSign::default()
            }],
            signers: vec![SignerRequest {
                first_name: "Jeanne".into(),
                last_name: "Martin".into(),
                email: "jeanne@example.com".into(),
                phone: Some("+33 6 12 34 56 78".into()),
            }],
            language: Some("fr".into()),
            custom_id: Some("DEV-2024-0042".into()),
            description: Some("Devis 2024-0042".into()),
            handwritten_signature: Some(HandwrittenSignature::Enabled),
            chaining: Some(SignerChaining::Email),
            ..SignatureRequest::default()
        }
    }

    #[test]
    fn requests_use_universign_member_names() {
        let p = prepare(&request()).unwrap();
        let s = &p.params;
        let doc = s.get("documents").unwrap().as_array().unwrap()[0]
            .as_struct()
            .unwrap();
        assert_eq!(doc.get("name"), Some(&Value::from("quote.pdf")));
        assert_eq!(doc.get("content"), Some(&Value::Base64(PDF.to_vec())));
        let signer = s.get("signers").unwrap().as_array().unwrap()[0]
            .as_struct()
            .unwrap();
        assert_eq!(signer.get("firstname"), Some(&Value::from("Jeanne")));
        assert_eq!(signer.get("lastname"), Some(&Value::from("Martin")));
        assert_eq!(
            signer.get("emailAddress"),
            Some(&Value::from("jeanne@example.com"))
        );
        assert_eq!(signer.get("phoneNum"), Some(&Value::from("+33612345678")));
        assert_eq!(s.get("language"), Some(&Value::from("fr")));
        assert_eq!(s.get("customId"), Some(&Value::from("DEV-2024-0042")));
        assert_eq!(s.get("description"), Some(&Value::from("Devis 2024-0042")));
        assert_eq!(s.get("handwrittenSignatureMode"), Some(&Value::Int(1)));
        assert_eq!(s.get("chainingMode"), Some(&Value::from("email")));
        assert_eq!(p.signers[0].phone.as_deref(), Some("+33612345678"));

        let mut bare = request();
        bare.language = None;
        bare.custom_id = Some("  ".into());
        bare.description = None;
        bare.handwritten_signature = None;
        bare.chaining = None;
        bare.signers[0].phone = None;
        let p = prepare(&bare).unwrap();
        let names: Vec<&str> = p.params.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["documents", "signers"]);
    }

    #[test]
    fn bad_requests_name_the_field() {
        type Change = Box<dyn Fn(&mut SignatureRequest)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                Box::new(|r| r.documents.clear()),
                "documents",
                "at least one PDF",
            ),
            (
                Box::new(|r| r.signers.clear()),
                "signers",
                "at least one signer",
            ),
            (
                Box::new(|r| r.documents[0].name = " ".into()),
                "documents[0].name",
                "file name",
            ),
            (
                Box::new(|r| r.documents[0].content_base64 = "@@@".into()),
                "documents[0].content_base64",
                "base64",
            ),
            (
                Box::new(|r| r.documents[0].content_base64 = "aGVsbG8=".into()),
                "documents[0].content_base64",
                "not a PDF",
            ),
            (
                Box::new(|r| r.signers[0].first_name = "".into()),
                "signers[0].first_name",
                "first name",
            ),
            (
                Box::new(|r| r.signers[0].last_name = "".into()),
                "signers[0].last_name",
                "last name",
            ),
            (
                Box::new(|r| r.signers[0].email = "jeanne.example.com".into()),
                "signers[0].email",
                "not an e-mail",
            ),
            (
                Box::new(|r| r.signers[0].phone = Some("0612345678".into())),
                "signers[0].phone",
                "international",
            ),
            (
                Box::new(|r| r.language = Some("french".into())),
                "language",
                "two-letter",
            ),
            (
                Box::new(|r| r.custom_id = Some("x".repeat(129))),
                "custom_id",
                "128",
            ),
        ];
        for (change, field, needle) in cases {
            let mut r = request();
            change(&mut r);
            let e = prepare(&r).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput);
            assert_eq!(e.field.as_deref(), Some(field));
            assert!(e.message.contains(needle), "{field}: {}", e.message);
        }
    }

    #[test]
    fn recorded_answers_read_whatever_the_member_order() {
        let (id, url) = created(&sample("request_transaction.response.xml")).unwrap();
        assert_eq!(id, "613b6a85-cf56-4705-ba20-93c9d24e813e");
        assert!(url.starts_with("https://sign.test.universign.eu/fr/signature/?id="));

        let ready = transaction_info(&sample("get_transaction_info_ready.response.xml")).unwrap();
        assert_eq!(ready.status, SignatureStatus::Ready);
        assert_eq!(ready.signers[0].status, SignerStatus::Accessed);
        assert_eq!(
            ready.signers[0].action_date.as_deref(),
            Some("2018-09-25T16:16:12")
        );

        for name in [
            "get_transaction_info_completed.response.xml",
            "get_transaction_info_completed_2015.response.xml",
        ] {
            let done = transaction_info(&sample(name)).unwrap();
            assert_eq!(done.status, SignatureStatus::Completed, "{name}");
            assert_eq!(done.signers.len(), 1);
            assert_eq!(done.signers[0].status, SignerStatus::Signed);
            assert!(done.signers[0]
                .url
                .as_deref()
                .unwrap()
                .contains("/signature/?id="));
            assert_eq!(done.signers[0].email, None);
        }
        let old =
            transaction_info(&sample("get_transaction_info_completed_2015.response.xml")).unwrap();
        assert_eq!(old.signers[0].first_name, "Mathis");
        assert_eq!(old.signers[0].last_name, "Girard");

        let docs = documents(&sample("get_documents.response.xml")).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].0, "shareholder_declaration.pdf");
        assert!(docs[0].1.starts_with(b"%PDF-1.7"));
    }

    #[test]
    fn surprising_answers_are_upstream_errors() {
        let e =
            transaction_info(&Value::Struct(Struct::new().with("status", "archived"))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(e.message.contains("\"archived\""));
        let e = transaction_info(&Value::Int(1)).unwrap_err();
        assert!(
            e.message.contains("answered a int instead of a struct"),
            "{}",
            e.message
        );
        let e = documents(&Value::Array(vec![])).unwrap_err();
        assert!(e.message.contains("no documents"));
        let e = created(&Value::Struct(Struct::new().with("id", 5).with("url", "u"))).unwrap_err();
        assert!(e.message.contains("member id as a int"), "{}", e.message);
    }

    #[test]
    fn phones_and_emails() {
        assert_eq!(normalise_phone("+33 (0)6"), None);
        assert_eq!(
            normalise_phone("+33.6.12.34.56.78").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(normalise_phone("+1234567"), None);
        assert!(looks_like_email("a.b+c@example.co.uk"));
        assert!(!looks_like_email("Jeanne <j@example.com>"));
        assert!(!looks_like_email("j@localhost"));
    }

    fn member<'v>(s: &'v Struct, name: &str) -> &'v Value {
        s.get(name).unwrap_or_else(|| panic!("no member {name}"))
    }

    #[test]
    fn options_become_universign_members() {
        let mut r = request();
        r.certificate_level = Some(CertificateLevel::Certified);
        r.identification = Some(SignerIdentification::Sms);
        r.success_url = Some("https://erp.example.com/signed".into());
        r.cancel_url = Some("https://erp.example.com/canceled".into());
        r.fail_url = Some("https://erp.example.com/failed".into());
        let p = prepare(&r).unwrap();
        assert_eq!(
            member(&p.params, "certificateType").as_str(),
            Some("certified")
        );
        let signer = member(&p.params, "signers").as_array().unwrap()[0]
            .as_struct()
            .unwrap()
            .clone();
        assert_eq!(member(&signer, "identificationType").as_str(), Some("sms"));
        assert_eq!(
            member(&signer, "successURL").as_str(),
            Some("https://erp.example.com/signed")
        );
        assert_eq!(
            member(&signer, "cancelURL").as_str(),
            Some("https://erp.example.com/canceled")
        );
        assert_eq!(
            member(&signer, "failURL").as_str(),
            Some("https://erp.example.com/failed")
        );

        r.signers[0].phone = None;
        let e = prepare(&r).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("signers[0].phone"));
        r.identification = Some(SignerIdentification::Email);
        r.fail_url = Some("javascript:alert(1)".into());
        assert_eq!(prepare(&r).unwrap_err().field.as_deref(), Some("fail_url"));
        // Absent options send nothing: Universign's defaults apply.
        let p = prepare(&request()).unwrap();
        assert!(p.params.get("certificateType").is_none());
    }

    fn placed(fields: Vec<SignatureField>, pdf: &[u8]) -> Result<Vec<Struct>, PluginError> {
        let mut r = request();
        r.documents[0].content_base64 = base64::engine::general_purpose::STANDARD.encode(pdf);
        r.documents[0].signature_fields = fields;
        let p = prepare(&r)?;
        let doc = member(&p.params, "documents").as_array().unwrap()[0]
            .as_struct()
            .unwrap()
            .clone();
        Ok(member(&doc, "signatureFields")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_struct().unwrap().clone())
            .collect())
    }

    #[test]
    fn signature_fields_by_coordinates_or_by_name() {
        let at = SignatureField {
            page: Some(-1),
            x: Some(350),
            y: Some(80),
            ..SignatureField::default()
        };
        let f = placed(vec![at.clone()], PDF).unwrap();
        assert_eq!(member(&f[0], "page").as_i32(), Some(-1));
        assert_eq!(member(&f[0], "x").as_i32(), Some(350));
        assert_eq!(member(&f[0], "y").as_i32(), Some(80));
        assert_eq!(member(&f[0], "signerIndex").as_i32(), Some(0));
        assert!(f[0].get("name").is_none());

        let form = b"%PDF-1.7\n4 0 obj << /FT /Sig /T (Client) >> endobj\n%%EOF";
        let named = SignatureField {
            name: Some("Client".into()),
            ..SignatureField::default()
        };
        let f = placed(vec![named.clone()], form).unwrap();
        assert_eq!(member(&f[0], "name").as_str(), Some("Client"));
        assert_eq!(member(&f[0], "page").as_i32(), Some(1), "mandatory member");
        let e = placed(
            vec![SignatureField {
                name: Some("Seller".into()),
                ..SignatureField::default()
            }],
            form,
        )
        .unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("documents[0].signature_fields[0].name")
        );
        assert!(e.message.contains("its fields are Client"), "{}", e.message);
        let e = placed(vec![named], PDF).unwrap_err();
        assert!(e.message.contains("no form fields at all"), "{}", e.message);

        for (bad, field) in [
            (
                SignatureField {
                    page: Some(1),
                    x: Some(10),
                    ..SignatureField::default()
                },
                "page",
            ),
            (
                SignatureField {
                    page: Some(0),
                    x: Some(1),
                    y: Some(1),
                    ..SignatureField::default()
                },
                "page",
            ),
            (
                SignatureField {
                    page: Some(1),
                    x: Some(-5),
                    y: Some(1),
                    ..SignatureField::default()
                },
                "x",
            ),
            (
                SignatureField {
                    signer: 3,
                    ..at.clone()
                },
                "signer",
            ),
        ] {
            let e = placed(vec![bad], PDF).unwrap_err();
            assert_eq!(
                e.field.as_deref(),
                Some(format!("documents[0].signature_fields[0].{field}").as_str())
            );
        }
        let e = placed(vec![at.clone(), at], PDF).unwrap_err();
        assert!(e.field.unwrap().ends_with(".label"));
    }
}
