//! Flow search, the lifecycle statuses a platform reports (CDAR messages), and flow
//! download.

use super::*;

/// `POST /v1/flows/search`.
pub(super) async fn search(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "the body is not JSON",
        );
    };
    let Some(filters) = params.get("where").and_then(Value::as_object) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "where is required",
        );
    };
    if filters.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "at least one filter is required",
        );
    }
    let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "limit must be between 1 and 100",
        );
    }
    let list = |k: &str| -> Result<Option<Vec<String>>, String> {
        match filters.get(k) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )),
            Some(_) => Err(format!("{k} must be an array")),
        }
    };
    let (types, directions) = match (list("flowType"), list("flowDirection")) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(e), _) | (_, Err(e)) => {
            return error(StatusCode::BAD_REQUEST, "INVALID_FIELD_VALUE", &e)
        }
    };
    if let Some(bad) = types
        .iter()
        .flatten()
        .find(|t| !FLOW_TYPES.contains(&t.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowType {bad:?} is not one of the standard's"),
        );
    }
    if let Some(bad) = directions
        .iter()
        .flatten()
        .find(|d| *d != "In" && *d != "Out")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            &format!("flowDirection {bad:?} is not In or Out"),
        );
    }
    let after = filters
        .get("updatedAfter")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if types.iter().flatten().any(|t| t == "CustomerInvoiceLC") {
        advance_lifecycles(&state);
    }
    let flows = lock(&state.flows);
    let mut results: Vec<&EmulatedFlow> = flows
        .iter()
        .filter(|f| types.as_ref().is_none_or(|t| t.contains(&f.flow_type)))
        .filter(|f| directions.as_ref().is_none_or(|d| d.contains(&f.direction)))
        .filter(|f| {
            after
                .as_ref()
                .is_none_or(|a| f.updated_at.as_str() > a.as_str())
        })
        .collect();
    results.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
    results.truncate(usize::try_from(limit).unwrap_or(100));
    json_ok(
        StatusCode::OK,
        &json!({
            "limit": limit,
            "filters": Value::Object(filters.clone()),
            "results": results.iter().map(|f| metadata(f)).collect::<Vec<_>>(),
        }),
    )
}

/// One more lifecycle status (a CDAR flow coming in) for every accepted invoice not ended.
pub(super) fn advance_lifecycles(state: &Shared) {
    let scripts = lock(&state.scripts).clone();
    let mut flows = lock(&state.flows);
    let mut new = Vec::new();
    for f in flows.iter_mut() {
        if f.flow_type != "CustomerInvoice" || f.direction != "Out" || f.ack != "Ok" {
            continue;
        }
        let Some(number) = f.invoice_number.clone() else {
            continue;
        };
        let path: Vec<(String, Option<String>)> =
            scripts.get(&number).cloned().unwrap_or_else(|| {
                DEFAULT_PATH
                    .iter()
                    .map(|c| ((*c).to_owned(), None))
                    .collect()
            });
        let Some((code, reason)) = path.get(f.delivered).cloned() else {
            continue;
        };
        f.delivered += 1;
        new.push((number, code, reason));
    }
    drop(flows);
    for (number, code, reason) in new {
        let at = state.tick();
        let id = state.next_id();
        let content = cdar(&id, &number, &code, reason.as_deref(), at);
        lock(&state.flows).push(EmulatedFlow {
            flow_id: id.clone(),
            tracking_id: None,
            name: format!("CDAR-{code}-{number}.xml"),
            syntax: "CDAR".to_owned(),
            flow_type: "CustomerInvoiceLC".to_owned(),
            direction: "In".to_owned(),
            submitted_at: rfc3339(at),
            updated_at: rfc3339(at),
            ack: "Ok".to_owned(),
            ack_read: true,
            details: Vec::new(),
            sha256: sha256_hex(&content),
            content,
            invoice_number: Some(number),
            delivered: 0,
            downloads: 0,
        });
    }
}

pub(super) fn label(code: &str) -> &'static str {
    match code {
        "200" => "Déposée",
        "201" => "Émise par la plateforme",
        "202" => "Reçue par la plateforme",
        "203" => "Mise à disposition",
        "204" => "Prise en charge",
        "205" => "Approuvée",
        "206" => "Approuvée partiellement",
        "207" => "En litige",
        "208" => "Suspendue",
        "209" => "Complétée",
        "210" => "Refusée",
        "211" => "Paiement transmis",
        "212" => "Encaissée",
        "213" => "Rejetée",
        _ => "",
    }
}

/// A CDAR lifecycle message about invoice `number`.
pub(super) fn cdar(
    id: &str,
    number: &str,
    code: &str,
    reason: Option<&str>,
    at_ms: u64,
) -> Vec<u8> {
    let at = edifact(at_ms);
    let status = reason
        .map(|r| {
            format!(
                "<ram:SpecifiedDocumentStatus><ram:ReasonCode>AUTRE</ram:ReasonCode><ram:Reason>{}</ram:Reason></ram:SpecifiedDocumentStatus>",
                escape(r)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{CDAR_NS}" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument><ram:ID>{id}</ram:ID><ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:TypeCode>{type_code}</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>
      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
      <ram:ProcessCondition>{label}</ram:ProcessCondition>{status}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>
"#,
        type_code = if ["200", "201", "202", "203", "213"].contains(&code) { "305" } else { "23" },
        number = escape(number),
        label = label(code),
    )
    .into_bytes()
}

pub(super) fn metadata(f: &EmulatedFlow) -> Value {
    let mut ack = json!({"status": if f.ack_read || f.direction == "In" { f.ack.as_str() } else { "Pending" }});
    if (f.ack_read || f.direction == "In") && !f.details.is_empty() {
        ack["details"] = f
            .details
            .iter()
            .map(|(code, message)| json!({"level": "Error", "item": f.name, "reasonCode": code, "reasonMessage": message}))
            .collect();
    }
    json!({
        "flowId": f.flow_id,
        "trackingId": f.tracking_id,
        "name": f.name,
        "processingRule": "B2B",
        "processingRuleSource": "Input",
        "flowSyntax": f.syntax,
        "flowType": f.flow_type,
        "flowDirection": f.direction,
        "submittedAt": f.submitted_at,
        "updatedAt": f.updated_at,
        "acknowledgement": ack,
    })
}

/// `GET /v1/flows/{flowId}?docType=…`.
pub(super) async fn download(
    State(state): State<Arc<Shared>>,
    Path(flow_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let doc_type = query
        .get("docType")
        .map(String::as_str)
        .unwrap_or("Metadata");
    if !["Metadata", "Original", "Converted", "ReadableView"].contains(&doc_type) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD_VALUE",
            "docType must be Metadata, Original, Converted or ReadableView",
        );
    }
    let found = {
        let mut flows = lock(&state.flows);
        flows.iter_mut().find(|f| f.flow_id == flow_id).map(|f| {
            let meta = metadata(f);
            if doc_type == "Metadata" && f.direction == "Out" && !f.ack_read {
                f.ack_read = true;
            } else if doc_type == "Original" {
                f.downloads += 1;
            }
            (meta, f.content.clone(), f.syntax.clone())
        })
    };
    let Some((meta, content, syntax)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("no flow {flow_id}"),
        );
    };
    match doc_type {
        "Metadata" => json_ok(StatusCode::OK, &meta),
        "Original" => {
            let deadline = Instant::now() + Duration::from_secs(60);
            while state.stall.load(Ordering::SeqCst) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let media = if syntax == "Factur-X" {
                "application/pdf"
            } else {
                "application/xml"
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, media)], content).into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("flow {flow_id} has no {doc_type} document"),
        ),
    }
}
