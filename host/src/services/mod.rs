//! The services the host gives plugins through the callback object: HTTP, logging, clock,
//! sleep and per-instance state. One instance of each serves every plugin, so that trust,
//! timeouts and redaction are the same for all.

pub mod admission;
pub mod callbacks;
pub mod http;
pub mod ntlm;
pub mod oauth2;
pub mod quota;
pub mod shared_window;
pub mod state;

use std::path::Path;

/// Shared services of a running host.
#[derive(Debug)]
pub struct Services {
    pub http: http::HttpService,
    pub state: state::StateDb,
    pub tokens: oauth2::TokenCache,
    pub quotas: quota::QuotaBook,
    /// Bounds on capability calls running and waiting.
    pub admission: admission::Admission,
    /// Instances with abandoned in-process calls still running.
    pub degraded: crate::isolation::DegradedBook,
    /// The event outbox (`events.sqlite3`): what plugins and the host tell the ERP.
    pub events: crate::events::Outbox,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Http(#[from] http::HttpSetupError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Events(#[from] crate::events::outbox::OutboxError),
}

impl Services {
    pub fn open(data_dir: &Path) -> Result<Self, ServiceError> {
        Self::open_with(data_dir, admission::Limits::default())
    }

    pub fn open_with(data_dir: &Path, limits: admission::Limits) -> Result<Self, ServiceError> {
        Self::open_on(data_dir, limits, &crate::storage::Backend::Embedded)
    }

    /// The services of a host on `backend`: with PostgreSQL, plugin state, task leases, daily
    /// counts, shared tokens and quota windows are those of every node of the database.
    pub fn open_on(
        data_dir: &Path,
        limits: admission::Limits,
        backend: &crate::storage::Backend,
    ) -> Result<Self, ServiceError> {
        let quotas = match backend.pg() {
            Some(pg) => quota::QuotaBook::clustered(pg.clone()).map_err(state::StateError::from)?,
            None => quota::QuotaBook::shared(&data_dir.join("quota.sqlite3")).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "provider quotas are counted for this process only");
                quota::QuotaBook::default()
            }),
        };
        Ok(Services {
            admission: admission::Admission::new(limits),
            http: http::HttpService::new(crate::trust::TrustStore::new(data_dir))?,
            state: state::StateDb::open_on(&data_dir.join("state.sqlite3"), backend)?,
            tokens: oauth2::TokenCache::default(),
            quotas,
            degraded: crate::isolation::DegradedBook::default(),
            events: crate::events::Outbox::open(&data_dir.join(crate::events::outbox::FILE_NAME))?,
        })
    }
}
