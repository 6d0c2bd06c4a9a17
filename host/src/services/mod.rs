//! The services the host gives plugins through the callback object: HTTP, logging, clock,
//! sleep and per-instance state. One instance of each serves every plugin, so that trust,
//! timeouts and redaction are the same for all.

pub mod callbacks;
pub mod http;
pub mod state;

use std::path::Path;

/// Shared services of a running host.
#[derive(Debug)]
pub struct Services {
    pub http: http::HttpService,
    pub state: state::StateDb,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Http(#[from] http::HttpSetupError),
    #[error(transparent)]
    State(#[from] state::StateError),
}

impl Services {
    pub fn open(data_dir: &Path) -> Result<Self, ServiceError> {
        Ok(Services {
            http: http::HttpService::new()?,
            state: state::StateDb::open(&data_dir.join("state.sqlite3"))?,
        })
    }
}
