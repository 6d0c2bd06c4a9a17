//! The directory service (annuaire): searching lines and reading one by routing code.

use super::*;

pub(super) fn line_json(l: &DirectoryLine) -> Value {
    json!({
        "addressingIdentifier": l.addressing_identifier(),
        "platformType": l.platform_type,
        "directoryLineStatus": l.status,
        "siren": l.siren,
        "siret": l.siret,
        "routingCode": l.routing_code.as_ref().map(|r| json!({"routingIdentifier": r, "routingIdentifierType": "0224"})),
        "legalUnit": {"siren": l.siren, "businessName": l.name, "entityType": l.entity_type, "administrativeStatus": "A"},
    })
}

/// `POST /v1/directory-line/search`.
pub(super) async fn directory_search(State(state): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_FORMAT",
            "the body is not JSON",
        );
    };
    let Some(filters) = params
        .get("filters")
        .and_then(Value::as_object)
        .filter(|f| !f.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "filters is required",
        );
    };
    let mut lines: Vec<&DirectoryLine> = state.opts.directory.iter().collect();
    for (field, filter) in filters {
        let op = filter.get("op").and_then(Value::as_str).unwrap_or("strict");
        let Some(value) = filter.get("value").and_then(Value::as_str) else {
            return error(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD",
                &format!("filters.{field}.value is required"),
            );
        };
        let get = |l: &DirectoryLine| -> Option<String> {
            match field.as_str() {
                "siren" => Some(l.siren.clone()),
                "siret" => l.siret.clone(),
                "routingIdentifier" => l.routing_code.clone(),
                "addressingIdentifier" => Some(l.addressing_identifier()),
                _ => None,
            }
        };
        if ![
            "siren",
            "siret",
            "routingIdentifier",
            "addressingIdentifier",
            "addressingSuffix",
        ]
        .contains(&field.as_str())
        {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_VALUE",
                &format!("{field} is not a directory line field"),
            );
        }
        if (field == "siren" && (value.len() != 9 || !value.bytes().all(|b| b.is_ascii_digit())))
            || (field == "siret"
                && (value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit())))
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_FIELD_VALUE",
                &format!("{field} {value:?} does not match its pattern"),
            );
        }
        lines.retain(|l| match (op, get(l)) {
            ("strict", Some(v)) => v == value,
            ("contains", Some(v)) => v.contains(value),
            _ => false,
        });
    }
    if lines.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    json_ok(
        StatusCode::OK,
        &json!({
            "totalNumberOfResults": lines.len(),
            "results": lines.iter().map(|l| line_json(l)).collect::<Vec<_>>(),
        }),
    )
}

/// `GET /v1/directory-line/code:{addressingIdentifier}`.
pub(super) async fn directory_line(
    State(state): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Response {
    let Some(id) = code.strip_prefix("code:") else {
        return error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            "use /v1/directory-line/code:{addressingIdentifier}",
        );
    };
    match state
        .opts
        .directory
        .iter()
        .find(|l| l.addressing_identifier() == id)
    {
        Some(l) => json_ok(StatusCode::OK, &line_json(l)),
        None => error(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            &format!("no directory line {id}"),
        ),
    }
}
