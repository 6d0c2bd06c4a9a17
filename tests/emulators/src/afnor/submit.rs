//! Flow submission (`POST /v1/flows`, multipart `flowInfo` + `file`): the checks of
//! XP Z12-013, invoice reading, and answers (CDAR) to received invoices.

use super::*;

/// `POST /v1/flows`.
pub(super) async fn submit(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| {
            rest.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTENT_TYPE",
            "the request must be multipart/form-data with flowInfo and file parts",
        );
    };
    let parts = multipart_parts(&body, &boundary);
    let Some(info) = parts.iter().find(|p| p.name == "flowInfo") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo is required",
        );
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "file is required",
        );
    };
    let Ok(info) = serde_json::from_slice::<Value>(&info.data) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "flowInfo is not JSON",
        );
    };
    let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
    let Some(syntax) = text("flowSyntax") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo.flowSyntax is required",
        );
    };
    let Some(name) = text("name").filter(|n| !n.is_empty() && n.chars().count() <= 255) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "flowInfo.name is required (at most 255 characters)",
        );
    };
    if !SYNTAXES.contains(&syntax.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowSyntax {syntax:?} is not one of {SYNTAXES:?}"),
        );
    }
    if let Some(rule) = text("processingRule") {
        if !RULES.contains(&rule.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_VALUE",
                &format!("processingRule {rule:?} is not one of {RULES:?}"),
            );
        }
    }
    let tracking = text("trackingId");
    if tracking.as_ref().is_some_and(|t| t.chars().count() > 36) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "trackingId is longer than 36 characters",
        );
    }
    let declared_sha = text("sha256");
    if declared_sha.as_ref().is_some_and(|s| {
        s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "sha256 must match ^[a-f0-9]{64}$",
        );
    }

    let content = file.data.clone();
    let sha = sha256_hex(&content);
    let mut details: Vec<(String, String)> = Vec::new();
    let mut number = None;
    let mut answer = None;
    let flow_type;
    if content.is_empty() {
        details.push(("EmptyFlow".into(), "The binary flow is empty".into()));
        flow_type = "CustomerInvoice";
    } else if declared_sha.as_ref().is_some_and(|d| *d != sha) {
        details.push((
            "ChecksumMismatch".into(),
            "Checksum provided is different from computed one".into(),
        ));
        flow_type = "CustomerInvoice";
    } else if syntax == "CDAR" {
        flow_type = "SupplierInvoiceLC";
        match check_answer(&state, &content) {
            Ok(a) => {
                number = Some(a.invoice_number.clone());
                answer = Some(a);
            }
            Err((code, message)) => details.push((code.into(), message)),
        }
    } else {
        flow_type = "CustomerInvoice";
        match check_invoice(&state, &syntax, &content) {
            Ok(facts) => number = facts.number,
            Err((code, message)) => details.push((code.into(), message)),
        }
    }
    let at = state.tick();
    let id = state.next_id();
    let mut flows = lock(&state.flows);
    if details.is_empty() {
        let duplicate = flows.iter().find(|f| {
            f.direction == "Out"
                && f.ack == "Ok"
                && (f.sha256 == sha || (tracking.is_some() && f.tracking_id == tracking))
        });
        if let Some(d) = duplicate {
            details.push((
                "AlreadyExistingFlow".into(),
                format!("The flow has already been sent as {}", d.flow_id),
            ));
        }
    }
    let ack = if details.is_empty() { "Ok" } else { "Error" };
    if let (true, Some(answer)) = (ack == "Ok", answer) {
        lock(&state.answers).push(Answer {
            flow_id: id.clone(),
            ..answer
        });
    }
    flows.push(EmulatedFlow {
        flow_id: id.clone(),
        tracking_id: tracking.clone(),
        name: name.clone(),
        syntax: syntax.clone(),
        flow_type: flow_type.to_owned(),
        direction: "Out".to_owned(),
        submitted_at: rfc3339(at),
        updated_at: rfc3339(at),
        ack: ack.to_owned(),
        ack_read: false,
        details,
        sha256: sha.clone(),
        content,
        invoice_number: number,
        delivered: 0,
        downloads: 0,
    });
    json_ok(
        StatusCode::ACCEPTED,
        &json!({
            "flowId": id,
            "submittedAt": rfc3339(at),
            "trackingId": tracking,
            "name": name,
            "flowSyntax": syntax,
            "processingRule": text("processingRule"),
            "sha256": sha,
        }),
    )
}

/// Checks an invoice's content against its declared syntax and its recipient against the
/// directory; `Err((reasonCode, message))`.
pub(super) fn check_invoice(
    state: &Shared,
    syntax: &str,
    content: &[u8],
) -> Result<InvoiceFacts, (&'static str, String)> {
    let Some(facts) = read_invoice(content) else {
        return Err(if content.starts_with(b"%PDF-") || syntax == "Factur-X" {
            (
                "FlowTypeError",
                "The content is not a Factur-X PDF with an embedded CII invoice".to_owned(),
            )
        } else {
            (
                "InvalidSchema",
                "The content is not a well-formed UBL or CII invoice".to_owned(),
            )
        });
    };
    if facts.syntax != syntax {
        return Err((
            "FlowTypeError",
            format!(
                "The flow is declared {syntax} but its content is {}",
                facts.syntax
            ),
        ));
    }
    let Some(recipient) = facts.recipient.clone() else {
        return Err((
            "InvalidSchema",
            "The invoice names no buyer (BT-49 or legal identifier)".to_owned(),
        ));
    };
    let reachable = state.opts.directory.iter().any(|l| {
        l.status == "Enabled"
            && (l.addressing_identifier() == recipient
                || l.siren == recipient
                || l.siret.as_deref() == Some(recipient.as_str()))
    });
    if !reachable {
        return Err((
            "OtherTechnicalError",
            format!("The recipient {recipient} has no enabled line in the directory"),
        ));
    }
    Ok(facts)
}

/// Checks a buyer answer (CDAR).
pub(super) fn check_answer(
    state: &Shared,
    content: &[u8],
) -> Result<Answer, (&'static str, String)> {
    let doc = read_xml(content).ok_or((
        "InvalidSchema",
        "The CDAR message is not well-formed XML".to_owned(),
    ))?;
    if doc.root != "CrossDomainAcknowledgementAndResponse" || doc.ns.as_deref() != Some(CDAR_NS) {
        return Err((
            "FlowTypeError",
            "A CDAR flow must be a CrossDomainAcknowledgementAndResponse".to_owned(),
        ));
    }
    let get = |suffix: &str| {
        doc.values
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
    };
    let number = get("ReferenceReferencedDocument/IssuerAssignedID").ok_or((
        "InvoiceLCRuleError",
        "No referenced invoice (IssuerAssignedID)".to_owned(),
    ))?;
    let code = get("ReferenceReferencedDocument/ProcessConditionCode").ok_or((
        "InvoiceLCStatusError",
        "No status code (ProcessConditionCode)".to_owned(),
    ))?;
    if !["204", "205", "206", "207", "208", "210", "211"].contains(&code.as_str()) {
        return Err((
            "InvoiceLCStatusError",
            format!("Status {code} is not one a buyer may send"),
        ));
    }
    let reason = get("SpecifiedDocumentStatus/Reason");
    let reason_code = get("SpecifiedDocumentStatus/ReasonCode");
    if ["207", "208", "210"].contains(&code.as_str()) && reason.is_none() && reason_code.is_none() {
        return Err((
            "InvoiceLCRuleError",
            format!("Status {code} requires a reason"),
        ));
    }
    let known = lock(&state.flows).iter().any(|f| {
        f.flow_type == "SupplierInvoice" && f.invoice_number.as_deref() == Some(number.as_str())
    });
    if !known {
        return Err((
            "InvoiceLCAccessDenied",
            format!("No invoice {number} was received by this company"),
        ));
    }
    Ok(Answer {
        flow_id: String::new(),
        invoice_number: number,
        code,
        reason,
        reason_code,
    })
}
