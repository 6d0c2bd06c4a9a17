//! Where the host keeps what it must remember, and the one switch between the two backends.
//!
//! - **Embedded** (the default): files and SQLite databases under the data directory. Nothing
//!   to install; the CLI and `serve` on one machine share them through file locks and SQLite
//!   transactions.
//! - **PostgreSQL** (`--database-url` or `PASSERELLE_DATABASE_URL=postgres://…`): every host
//!   process and node pointing at the same database shares instances, state, quotas, tasks,
//!   accounts and audit history, so hosts can run side by side as a cluster.
//!
//! The backend is chosen once per process ([`Backend::open`]) and handed to each store, which
//! keeps one implementation per backend behind the same methods. What stays on the local disk
//! in both cases: `host.toml`, the secret key (every node needs the same key file to unseal
//! the secrets it reads), the plugin cache and the trusted certificate authorities.

pub mod audit;
pub mod cli;
pub mod console;
pub mod instances;
pub mod migrate;
pub mod outbox;
pub mod postgres;
pub mod quota;
mod sqlite_copy;
pub mod state;

pub use postgres::{Pg, PgError};
use std::sync::Arc;

/// The storage backend of this process.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// Files and SQLite under the data directory.
    #[default]
    Embedded,
    /// A PostgreSQL database shared by every node.
    Postgres(Arc<Pg>),
}

impl Backend {
    /// Connects to PostgreSQL and applies pending migrations when `url` is given, trusting the
    /// data directory's certificate authorities besides the system's for TLS to the server;
    /// embedded otherwise (nothing is read then).
    pub fn open(url: Option<&DatabaseUrl>, data_dir: &std::path::Path) -> Result<Backend, PgError> {
        match url {
            None => Ok(Backend::Embedded),
            Some(url) => {
                let extra_roots = crate::trust::TrustStore::new(data_dir)
                    .ders()
                    .unwrap_or_default();
                Ok(Backend::Postgres(Pg::connect(url, &extra_roots)?))
            }
        }
    }

    /// The PostgreSQL handle, when that is the backend.
    pub fn pg(&self) -> Option<&Arc<Pg>> {
        match self {
            Backend::Embedded => None,
            Backend::Postgres(pg) => Some(pg),
        }
    }

    /// `embedded` or `postgres`, for logs, `/readyz` and the console.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// A PostgreSQL connection URL as the administrator gave it. It may carry a password, so it is
/// only ever shown with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// Why a database URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("the database URL must start with `postgres://` or `postgresql://` (for example `postgres://passerelle@db.example:5432/passerelle`); got `{0}`")]
    Scheme(String),
    #[error("the database URL `{shown}` is not a valid URL ({reason}); write it as `postgres://user@host:5432/database`")]
    Syntax { shown: String, reason: String },
}

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<Self, DatabaseUrlError> {
        let text = text.trim();
        let parsed = url::Url::parse(text).map_err(|e| DatabaseUrlError::Syntax {
            shown: redact_url(text),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(DatabaseUrlError::Scheme(redact_url(text)));
        }
        Ok(DatabaseUrl(text.to_owned()))
    }

    /// Whether the URL itself carries a password (instead of `PGPASSWORD` or a `.pgpass`).
    pub fn has_password(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|u| u.password().is_some())
            || self.0.contains("password=")
    }

    /// The URL with its password hidden, safe to print.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// The URL itself, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Hides the password of a URL, whether in the authority or as a `password=` parameter.
fn redact_url(text: &str) -> String {
    let mut shown = match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        // Not a URL: show the part before any `@`, which is where a password would be.
        Err(_) => match text.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => text.to_owned(),
        },
    };
    if let Some(start) = shown.find("password=") {
        let value_start = start + "password=".len();
        let end = shown[value_start..]
            .find('&')
            .map_or(shown.len(), |i| value_start + i);
        shown.replace_range(value_start..end, "***");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cr3t@db.example:5432/passerelle").unwrap();
        assert!(url.has_password());
        assert_eq!(
            url.redacted(),
            "postgres://app:***@db.example:5432/passerelle"
        );
        assert!(!format!("{url:?} {url}").contains("s3cr3t"));
        let url = DatabaseUrl::parse("postgresql://db/p?user=app&password=s3cr3t&sslmode=require")
            .unwrap();
        assert!(url.has_password());
        assert_eq!(
            url.redacted(),
            "postgresql://db/p?user=app&password=***&sslmode=require"
        );
        let url = DatabaseUrl::parse("postgres://app@db/p").unwrap();
        assert!(!url.has_password());
    }

    #[test]
    fn other_schemes_are_refused_with_the_expected_form() {
        let e = DatabaseUrl::parse("mysql://root:pw@db/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgres://"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        let e = DatabaseUrl::parse("not a url").unwrap_err().to_string();
        assert!(e.contains("postgres://user@host"), "{e}");
    }
}
