//! `GET /metrics`: the host's metrics ([`crate::metrics`]) for Prometheus to scrape.
//!
//! Open to API tokens of scope `metrics` (what a Prometheus server is given), `admin`
//! tokens and signed-in administrators, never anonymously: label values name instances,
//! and the counters tell an outsider how the ERP uses its providers.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The metrics in the Prometheus text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200,
        description = "Prometheus text exposition format 0.0.4: capability calls, provider HTTP requests, quota waits and daily budget, task runs, webhook deliveries, plugin load failures",
        content_type = "text/plain", body = String)))]
pub async fn scrape() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        crate::metrics::render(),
    )
        .into_response()
}
