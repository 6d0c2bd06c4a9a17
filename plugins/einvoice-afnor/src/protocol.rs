//! The JSON of XP Z12-013 (Flow service and Directory service) as the plugin reads and
//! writes it, and the multipart body of a flow submission.
//!
//! Shapes follow the standard's OpenAPI components as published in implementations of it
//! (the `AFNOR_*` schemas of FactPulse's SDK `api/openapi.yaml`: `FlowInfo`, `Flow`,
//! `SearchFlowParams`, `SearchFlowContent`, `Acknowledgement`, `Error`,
//! `directoryLinePayload…`, `searchDirectoryLine`). Unknown fields are ignored and every
//! optional field has a default, so a platform's extensions do not break the plugin.

use passerelle_plugin_api::multipart::FormBuilder;
use serde::{Deserialize, Serialize};

pub const FLOW_HEALTH: &str = "/v1/healthcheck";
pub const FLOWS: &str = "/v1/flows";
pub const FLOWS_SEARCH: &str = "/v1/flows/search";
pub const DIRECTORY_HEALTH: &str = "/v1/healthcheck";
pub const DIRECTORY_LINE_SEARCH: &str = "/v1/directory-line/search";

/// `GET /v1/flows/{flowId}?docType=…`.
pub fn flow_path(flow_id: &str, doc_type: &str) -> String {
    format!("{FLOWS}/{}?docType={doc_type}", encode_path(flow_id))
}

/// `GET /v1/siren/code-insee:{siren}`.
pub fn siren_path(siren: &str) -> String {
    format!("/v1/siren/code-insee:{siren}")
}

/// `GET /v1/directory-line/code:{addressingIdentifier}`.
pub fn directory_line_path(id: &str) -> String {
    format!("/v1/directory-line/code:{}", encode_path(id))
}

/// Percent-encodes what may not appear in a path segment.
fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `flowInfo` part of `POST /v1/flows` (`FlowInfo`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowInfo<'a> {
    pub tracking_id: &'a str,
    pub name: &'a str,
    pub processing_rule: &'a str,
    pub flow_syntax: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_profile: Option<&'a str>,
    pub sha256: &'a str,
}

/// `FullFlowInfo`: the answer to a submission (HTTP 202).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullFlowInfo {
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub submitted_at: Option<String>,
    #[serde(default)]
    pub tracking_id: Option<String>,
    #[serde(default)]
    pub flow_syntax: Option<String>,
}

/// `AcknowledgementDetail`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AckDetail {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default)]
    pub reason_code: Option<String>,
    #[serde(default)]
    pub reason_message: Option<String>,
}

/// `Acknowledgement`: `Pending`, `Ok` or `Error` with details.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Vec<AckDetail>,
}

/// `Flow`: a flow's metadata (search results, `docType=Metadata`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub tracking_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub flow_syntax: Option<String>,
    #[serde(default)]
    pub flow_type: Option<String>,
    #[serde(default)]
    pub flow_direction: Option<String>,
    #[serde(default)]
    pub submitted_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub acknowledgement: Acknowledgement,
}

/// `SearchFlowParams`.
#[derive(Debug, Clone, Serialize)]
pub struct SearchFlowParams<'a> {
    pub limit: u32,
    #[serde(rename = "where")]
    pub filters: SearchFlowFilters<'a>,
}

/// `SearchFlowFilters` (at least one criterion).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchFlowFilters<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_after: Option<&'a str>,
    pub flow_type: Vec<&'a str>,
    pub flow_direction: Vec<&'a str>,
}

/// `SearchFlowContent`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchFlowContent {
    #[serde(default)]
    pub results: Vec<Flow>,
}

/// `Error`: `errorCode` is required, the rest optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

impl ApiError {
    /// `CODE: message (details)`, or nothing when the body said nothing.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(c) = self.error_code.as_deref().filter(|c| !c.is_empty()) {
            parts.push(c.to_owned());
        }
        if let Some(m) = self.error_message.as_deref().filter(|m| !m.is_empty()) {
            parts.push(m.to_owned());
        }
        if let Some(d) = self.details.as_deref().filter(|d| !d.is_empty()) {
            parts.push(format!("({d})"));
        }
        (!parts.is_empty()).then(|| parts.join(" ").chars().take(400).collect())
    }
}

/// `searchDirectoryLine` with one strict filter.
pub fn directory_search(field: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "filters": { field: { "op": "strict", "value": value } },
        "limit": 50
    })
}

/// The `routingCode` object of a directory line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingCode {
    #[serde(default)]
    pub routing_identifier: Option<String>,
    #[serde(default)]
    pub routing_code_name: Option<String>,
}

/// The `legalUnit` object of a directory line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalUnit {
    #[serde(default)]
    pub business_name: Option<String>,
    #[serde(default)]
    pub entity_type: Option<String>,
}

/// A directory line (`directoryLinePayload…`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryLine {
    #[serde(default)]
    pub addressing_identifier: Option<String>,
    #[serde(default)]
    pub platform_type: Option<String>,
    #[serde(default)]
    pub directory_line_status: Option<String>,
    #[serde(default)]
    pub siren: Option<String>,
    #[serde(default)]
    pub siret: Option<String>,
    #[serde(default)]
    pub routing_code: Option<RoutingCode>,
    #[serde(default)]
    pub legal_unit: Option<LegalUnit>,
}

/// The answer of `POST /v1/directory-line/search`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DirectoryLines {
    #[serde(default)]
    pub results: Vec<DirectoryLine>,
}

/// A `multipart/form-data` body with a JSON `flowInfo` part and a `file` part.
pub use passerelle_plugin_api::multipart::Form as Multipart;

/// Builds the body of `POST /v1/flows` with plugin-api's [`FormBuilder`] (a boundary that does
/// not occur in the parts, seeded by the file's digest). Quotes and control characters of the
/// file name become `_` first, as before: a name the platform will show.
pub fn flow_multipart(
    flow_info: &[u8],
    file_name: &str,
    file_type: &str,
    file: &[u8],
    sha256: &str,
) -> Multipart {
    let safe_name: String = file_name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    let seed = sha256
        .get(..16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_default();
    FormBuilder::new()
        .typed("flowInfo", "application/json", flow_info)
        .file("file", &safe_name, file_type, file)
        .build(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded() {
        assert_eq!(
            flow_path("a b/c", "Original"),
            "/v1/flows/a%20b%2Fc?docType=Original"
        );
        assert_eq!(
            directory_line_path("70204275500240_ACHATS"),
            "/v1/directory-line/code:70204275500240_ACHATS"
        );
    }

    #[test]
    fn multipart_has_both_parts() {
        let m = flow_multipart(b"{}", "a\".xml", "application/xml", b"<x/>", "ab12");
        let text = String::from_utf8(m.body).unwrap();
        let boundary = m
            .content_type
            .strip_prefix("multipart/form-data; boundary=passerelle-")
            .unwrap();
        assert_eq!(boundary.len(), 16);
        assert!(text.starts_with("--passerelle-"));
        assert!(text.contains("name=\"flowInfo\"\r\nContent-Type: application/json\r\n\r\n{}\r\n"));
        assert!(text.contains("filename=\"a_.xml\""));
        assert!(text.ends_with(&format!("<x/>\r\n--passerelle-{boundary}--\r\n")));
    }

    #[test]
    fn errors_read_well() {
        let e: ApiError = serde_json::from_str(
            r#"{"errorCode":"MISSING_REQUIRED_FIELD","errorMessage":"flowInfo is required"}"#,
        )
        .unwrap();
        assert_eq!(
            e.describe().unwrap(),
            "MISSING_REQUIRED_FIELD flowInfo is required"
        );
    }
}
