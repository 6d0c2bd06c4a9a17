//! The console's own database, `<data-dir>/console.sqlite3`: administrator accounts,
//! browser sessions, API tokens, the audit history, and failed and successful sign-ins with
//! the browsers they came from.
//!
//! It is separate from the plugins' state database so that the host's security records are
//! never reachable through a plugin's state calls, and so that it can be backed up or wiped
//! on its own. Each module owns its tables' SQL ([`super::auth`], [`super::audit`]); this one
//! opens the file, creates the tables and serialises access.
//!
//! Several processes use the file at once (the server, and `passerelle admin` revoking a
//! token): [`ConsoleDb::data_version`] tells the server that another process wrote, so its
//! in-memory caches never outlive a revocation.
//!
//! On the PostgreSQL backend ([`ConsoleDb::open_on`]) accounts, sessions, tokens and sign-in
//! records live in the shared database instead ([`crate::storage::console`]), and
//! [`ConsoleDb::data_version`] counts the notifications on [`CHANGED_CHANNEL`] that every
//! node sends when it ends a session or revokes a token, so a revocation on one node reaches
//! the caches of every other one within the notification's latency (milliseconds). The audit
//! history stays in this file's `audit` table until the audit store moves.

use crate::storage::postgres::Notice;
use crate::storage::{Backend, Pg, PgError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// File name of the console database inside the data directory.
pub const FILE_NAME: &str = "console.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("console database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the console database lock was poisoned by a crash; restart the host")]
    Poisoned,
    #[error("console accounts in PostgreSQL: {0}")]
    Pg(#[from] PgError),
}

/// Notification channel on which a node says it ended sessions or revoked tokens.
pub const CHANGED_CHANNEL: &str = "passerelle_console";

#[derive(Debug)]
pub struct ConsoleDb {
    path: PathBuf,
    conn: Mutex<Connection>,
    shared: Option<Shared>,
}

/// The PostgreSQL side: the database and this process's view of its change notifications.
#[derive(Debug)]
struct Shared {
    pg: Arc<Pg>,
    notices: Mutex<broadcast::Receiver<Notice>>,
    version: AtomicI64,
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_active_name
    ON api_tokens (name) WHERE revoked_ms IS NULL;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    instance TEXT,
    field TEXT,
    action TEXT NOT NULL,
    old TEXT,
    new TEXT);
CREATE INDEX IF NOT EXISTS audit_by_instance ON audit (instance, id);
CREATE TABLE IF NOT EXISTS login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    address TEXT NOT NULL,
    at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_by_user ON login_failures (user, at_ms);
CREATE TABLE IF NOT EXISTS sign_ins (
    user TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    address TEXT NOT NULL,
    previous_ms INTEGER);
CREATE TABLE IF NOT EXISTS login_devices (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL);
";

impl ConsoleDb {
    /// Opens (and creates if needed) the console database of a data directory.
    pub fn open_in(data_dir: &Path) -> Result<Self, DbError> {
        Self::open(&data_dir.join(FILE_NAME))
    }

    pub fn open(path: &Path) -> Result<Self, DbError> {
        let err = |source| DbError::Sqlite {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = crate::datadir::create_private_dir_all(dir);
        }
        // Password and token hashes: readable by the owner only.
        crate::store::prepare_private_database(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(ConsoleDb {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            shared: None,
        })
    }

    /// Opens the console database of the process's backend: `console.sqlite3` of the data
    /// directory (embedded), or the shared PostgreSQL tables (the file then keeps the audit
    /// history only).
    pub fn open_on(data_dir: &Path, backend: &Backend) -> Result<Self, DbError> {
        let mut db = Self::open_in(data_dir)?;
        if let Some(pg) = backend.pg() {
            let notices = pg.subscribe(&[CHANGED_CHANNEL])?;
            db.shared = Some(Shared {
                pg: pg.clone(),
                notices: Mutex::new(notices),
                version: AtomicI64::new(0),
            });
        }
        Ok(db)
    }

    /// The PostgreSQL database holding accounts, sessions and tokens, on that backend.
    pub fn pg(&self) -> Option<&Arc<Pg>> {
        self.shared.as_ref().map(|s| &s.pg)
    }

    /// Tells every node (this one included) that sessions or tokens were removed, so that
    /// their caches drop them. Nothing to do on the embedded backend, where
    /// [`Self::data_version`] sees every commit.
    pub fn announce_change(&self) -> Result<(), DbError> {
        if let Some(pg) = self.pg() {
            pg.notify(CHANGED_CHANNEL, "")?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection, mapping SQLite errors to [`DbError`].
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn.lock().map_err(|_| DbError::Poisoned)?;
        f(&mut conn).map_err(|source| DbError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// A number that changes whenever another connection (another process) commits.
    /// On PostgreSQL: changes with every change notification, and when the notification
    /// connection was lost (notifications may have been missed).
    pub fn data_version(&self) -> Result<i64, DbError> {
        if let Some(shared) = &self.shared {
            let mut notices = shared.notices.lock().map_err(|_| DbError::Poisoned)?;
            let mut seen = 0;
            loop {
                match notices.try_recv() {
                    Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => seen += 1,
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => {
                        // The listener is gone: trust no cache.
                        seen += 1;
                        break;
                    }
                }
            }
            return Ok(shared.version.fetch_add(seen, Ordering::AcqRel) + seen);
        }
        self.with(|c| {
            c.prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    crate::services::state::now_ms()
}
