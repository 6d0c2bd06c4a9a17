//! `/api/trust`: the certificate authorities trusted besides the system's.

use crate::server::error::ApiError;
use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// A certificate authority trusted for provider connections, besides the system's.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertDoc {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 fingerprint.
    pub sha256: String,
    pub is_ca: bool,
}

/// The extra certificate authorities trusted for provider connections (added and removed
/// with `passerelle trust`).
#[utoipa::path(get, path = "/api/trust", tag = "trust",
    responses((status = 200, body = Vec<CertDoc>)))]
pub(super) async fn trust(State(app): State<AppState>) -> Result<Json<Vec<CertDoc>>, ApiError> {
    let list = crate::trust::TrustStore::new(&app.engine.settings.data_dir)
        .list()
        .map_err(ApiError::internal)?;
    Ok(Json(
        list.into_iter()
            .map(|c| CertDoc {
                subject: c.subject,
                issuer: c.issuer,
                not_before: c.not_before,
                not_after: c.not_after,
                sha256: c.sha256,
                is_ca: c.is_ca,
            })
            .collect(),
    ))
}
