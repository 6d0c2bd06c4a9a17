//! Who is calling, and may they.
//!
//! - Administrators sign in with a password, stored as an argon2id hash (PHC string). The
//!   account `admin` is created on first start ([`Auth::ensure_admin`]).
//! - A sign-in opens a browser session: a random token in an `HttpOnly`, `SameSite=Strict`
//!   cookie, stored hashed (SHA-256) with its CSRF token. Every request that changes
//!   something under a session must carry that CSRF token (`X-CSRF-Token` header or `_csrf`
//!   form field); the sign-in form itself is protected by a double-submit cookie.
//! - Failed sign-ins slow down the address and the account they come from, with a doubling
//!   wait, and never lock the account ([`super::throttle`]). A browser that signed in before
//!   keeps a device cookie and is throttled on its own, so others' failures never slow the
//!   administrator's usual browser. Failures against an existing account are recorded, and
//!   the console tells the administrator how many there were, and from where, since the
//!   previous sign-in.
//! - Cookies are `Secure` when the server is reached over HTTPS (see [`super::WebOptions`]).
//! - Scripts and the ERP use API tokens, created and revoked by an administrator, stored
//!   hashed, and scoped: `capabilities` calls capabilities only; `admin` does everything an
//!   administrator does; `metrics` reads `/metrics` only. Tokens need no CSRF token: a browser never sends them on its own.
//!
//! Lookups of sessions and tokens are cached in memory so that authenticated reads stay
//! cheap; the cache is dropped whenever another process writes to the console database
//! (e.g. `passerelle admin token revoke` while the server runs), checked on every request.
//! On the PostgreSQL backend the same rules run on shared tables
//! ([`crate::storage::console`]) and every node's cache is dropped by a notification when a
//! session ends or a token is revoked anywhere ([`ConsoleDb::announce_change`]).

use super::db::{now_ms, ConsoleDb, DbError};
pub use super::throttle::LoginLimits;
use super::throttle::{Key, Throttle};
use crate::storage::console as pg_console;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Cookie holding the session token.
pub const SESSION_COOKIE: &str = "passerelle_session";
/// Cookie holding the sign-in form's CSRF token.
pub const LOGIN_COOKIE: &str = "passerelle_login";
/// Cookie marking a browser in which an account signed in before (see [`super::throttle`]).
pub const DEVICE_COOKIE: &str = "passerelle_device";
/// How long a browser stays known after its last sign-in.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long failed sign-ins are kept to be reported.
const FAILURES_KEPT: Duration = Duration::from_secs(90 * 24 * 3600);
/// Header carrying the session's CSRF token on changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The administrator account created on first start.
pub const ADMIN_USER: &str = "admin";

/// What an API token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Call capabilities (`/api/capabilities/...`): what the ERP needs.
    Capabilities,
    /// Everything an administrator can do, capabilities included.
    Admin,
    /// Read the metrics (`/metrics`) and nothing else: what a Prometheus server is given.
    Metrics,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Capabilities => "capabilities",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Scope> {
        match s {
            "capabilities" => Some(Scope::Capabilities),
            "admin" => Some(Scope::Admin),
            "metrics" => Some(Scope::Metrics),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An administrator signed in through the browser.
    User {
        name: String,
        session_hash: String,
        csrf: String,
    },
    /// A script or the ERP, with an API token.
    Token {
        id: String,
        name: String,
        scope: Scope,
    },
}

impl Principal {
    /// How the audit history names this caller: `admin`, `token:erp`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { name, .. } => name.clone(),
            Principal::Token { name, .. } => format!("token:{name}"),
        }
    }

    pub fn allows(&self, needed: Scope) -> bool {
        match self {
            Principal::User { .. } => true,
            Principal::Token { scope, .. } => *scope == Scope::Admin || *scope == needed,
        }
    }

    /// The CSRF token of a browser session.
    pub fn csrf(&self) -> Option<&str> {
        match self {
            Principal::User { csrf, .. } => Some(csrf),
            Principal::Token { .. } => None,
        }
    }
}

/// An API token as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_ms: i64,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("user names are 1 to 64 lowercase letters, digits, '-', '_' or '.'")]
    BadUserName,
    #[error("token names are 1 to 64 letters, digits, '-', '_' or '.'")]
    BadTokenName,
    #[error("an active token named `{0}` exists already; revoke it first (`passerelle admin token revoke {0}`) or choose another name")]
    TokenExists(String),
    #[error("there is no active token with id or name `{0}`; list them with `passerelle admin token list`")]
    NoSuchToken(String),
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong user name or password")]
    Invalid,
    #[error("too many failed sign-ins; try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("internal error while checking the password")]
    Internal,
}

/// A session just opened: the cookie value, its CSRF token, and the browser's device cookie.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    /// Value of the device cookie to (re)set.
    pub device: String,
    /// Failed attempts against the account since its previous sign-in.
    pub failures: FailedSignIns,
}

/// Failed sign-ins against an account between two of its sign-ins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedSignIns {
    pub count: u64,
    /// Distinct client addresses, most recent first (at most [`FailedSignIns::MAX_ADDRESSES`]).
    pub addresses: Vec<String>,
}

impl FailedSignIns {
    pub const MAX_ADDRESSES: usize = 10;
}

#[derive(Debug, Default)]
struct Cache {
    sessions: HashMap<String, CachedSession>,
    tokens: HashMap<String, Principal>,
}

#[derive(Debug, Clone)]
struct CachedSession {
    user: String,
    csrf: String,
    expires_ms: i64,
}

/// Authentication of one console database.
#[derive(Debug)]
pub struct Auth {
    db: Arc<ConsoleDb>,
    cache: RwLock<Cache>,
    seen_version: AtomicI64,
    throttle: Mutex<Throttle>,
}

impl Auth {
    pub fn new(db: Arc<ConsoleDb>, limits: LoginLimits) -> Result<Self, DbError> {
        let version = db.data_version()?;
        Ok(Auth {
            db,
            cache: RwLock::new(Cache::default()),
            seen_version: AtomicI64::new(version),
            throttle: Mutex::new(Throttle::new(limits)),
        })
    }

    fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.sessions.clear();
            c.tokens.clear();
        }
    }

    /// Drops the caches when another process wrote to the database.
    fn refresh(&self) -> Result<(), DbError> {
        let version = self.db.data_version()?;
        if self.seen_version.swap(version, Ordering::AcqRel) != version {
            self.clear_cache();
        }
        Ok(())
    }

    // ----- passwords -----

    /// Hashes a password with argon2id and a random salt (slow on purpose: call it off the
    /// async threads).
    pub fn hash_password(password: &str) -> Result<String, AuthError> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// Whether `password` matches a stored hash; a malformed hash never matches.
    pub fn verify_password(hash: &str, password: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// Creates or replaces an administrator's password, and closes that account's sessions.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), AuthError> {
        check_user_name(user)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AuthError::WeakPassword);
        }
        let hash = Self::hash_password(password)?;
        let now = now_ms();
        if let Some(pg) = self.db.pg() {
            pg_console::set_password(pg, user, &hash, now).map_err(DbError::from)?;
            self.db.announce_change()?;
            self.clear_cache();
            return Ok(());
        }
        self.db.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO users (name, password_hash, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, updated_ms = excluded.updated_ms",
                params![user, hash, now],
            )?;
            tx.execute("DELETE FROM sessions WHERE user = ?1", params![user])?;
            tx.commit()
        })?;
        self.clear_cache();
        Ok(())
    }

    pub fn user_count(&self) -> Result<i64, DbError> {
        if let Some(pg) = self.db.pg() {
            return Ok(pg_console::user_count(pg)?);
        }
        self.db
            .with(|c| c.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))
    }

    /// Creates the `admin` account when there is no account yet, with `password` (from
    /// `PASSERELLE_ADMIN_PASSWORD`) or a generated one, which is returned to be shown once.
    pub fn ensure_admin(&self, password: Option<&str>) -> Result<AdminBootstrap, AuthError> {
        if self.user_count()? > 0 {
            return Ok(AdminBootstrap::Existing);
        }
        if let Some(pg) = self.db.pg() {
            // Nodes starting together: the first to take the lock creates the account.
            let generated = password.is_none().then(|| random_token(18));
            let chosen = password.or(generated.as_deref()).unwrap_or_default();
            if chosen.chars().count() < MIN_PASSWORD_CHARS {
                return Err(AuthError::WeakPassword);
            }
            let hash = Self::hash_password(chosen)?;
            if !pg_console::create_first_user(pg, ADMIN_USER, &hash, now_ms())
                .map_err(DbError::from)?
            {
                return Ok(AdminBootstrap::Existing);
            }
            return Ok(match generated {
                Some(g) => AdminBootstrap::Generated(g),
                None => AdminBootstrap::FromEnvironment,
            });
        }
        match password {
            Some(p) => {
                self.set_password(ADMIN_USER, p)?;
                Ok(AdminBootstrap::FromEnvironment)
            }
            None => {
                let generated = random_token(18);
                self.set_password(ADMIN_USER, &generated)?;
                Ok(AdminBootstrap::Generated(generated))
            }
        }
    }

    // ----- sessions -----

    /// Checks a sign-in and opens a session. Throttled per address and account, or per
    /// browser when `device` (the device cookie) shows that this account signed in from it
    /// before.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: &str,
        device: Option<&str>,
    ) -> Result<NewSession, LoginError> {
        let user = user.trim().to_lowercase();
        let known_device = match device {
            Some(d) => self.known_device(&user, d)?,
            None => None,
        };
        let keys = match &known_device {
            Some(hash) => vec![Key::Device(hash.clone())],
            None => vec![Key::Address(address_key(address)), Key::User(user.clone())],
        };
        if let Err(retry_after) = self
            .throttle
            .lock()
            .map_err(|_| LoginError::Internal)?
            .begin(&keys, Instant::now())
        {
            tracing::warn!(user = %user, %address, retry_after_s = retry_after.as_secs().max(1), "sign-in refused: too many failures, back-off in progress");
            return Err(LoginError::RateLimited { retry_after });
        }
        let stored: Option<String> = match self.db.pg() {
            Some(pg) => pg_console::password_hash(pg, &user).map_err(DbError::from)?,
            None => self.db.with(|c| {
                c.query_row(
                    "SELECT password_hash FROM users WHERE name = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .optional()
            })?,
        };
        let password = password.to_owned();
        let known = stored.is_some();
        // An unknown user costs as much as a wrong password, so timing tells nothing.
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = tokio::task::spawn_blocking(move || Self::verify_password(&hash, &password))
            .await
            .map_err(|_| LoginError::Internal)?;
        let now = now_ms();
        if !(ok && known) {
            tracing::warn!(user = %user, %address, "failed sign-in");
            if let (true, Some(pg)) = (known, self.db.pg()) {
                pg_console::record_failure(
                    pg,
                    &user,
                    address,
                    now,
                    now.saturating_sub(millis(FAILURES_KEPT)),
                )
                .map_err(DbError::from)?;
            } else if known {
                self.db.with(|c| {
                    c.execute(
                        "DELETE FROM login_failures WHERE at_ms < ?1",
                        params![now.saturating_sub(millis(FAILURES_KEPT))],
                    )?;
                    c.execute(
                        "INSERT INTO login_failures (user, address, at_ms) VALUES (?1, ?2, ?3)",
                        params![user, address, now],
                    )
                })?;
            }
            return Err(LoginError::Invalid);
        }
        if let Ok(mut throttle) = self.throttle.lock() {
            throttle.succeeded(&keys);
        }
        let device = match (known_device, device) {
            (Some(_), Some(d)) => d.to_owned(),
            _ => random_token(32),
        };
        let session = NewSession {
            token: random_token(32),
            csrf: random_token(32),
            device,
            failures: FailedSignIns::default(),
        };
        let expires = now.saturating_add(millis(SESSION_LIFETIME));
        let hash = sha256_hex(&session.token);
        let device_hash = sha256_hex(&session.device);
        let failures = if let Some(pg) = self.db.pg() {
            pg_console::open_session(
                pg,
                &pg_console::OpenSession {
                    user: &user,
                    address,
                    token_hash: &hash,
                    csrf: &session.csrf,
                    device_hash: &device_hash,
                    now,
                    expires,
                    devices_forgotten_before: now.saturating_sub(millis(DEVICE_LIFETIME)),
                },
            )
            .map_err(DbError::from)?
        } else {
            self.db.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM sessions WHERE expires_ms < ?1", params![now])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, user, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, user, session.csrf, now, expires],
            )?;
            tx.execute(
                "DELETE FROM login_devices WHERE last_ms < ?1",
                params![now.saturating_sub(millis(DEVICE_LIFETIME))],
            )?;
            tx.execute(
                "INSERT INTO login_devices (token_hash, user, created_ms, last_ms) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (token_hash) DO UPDATE SET last_ms = excluded.last_ms",
                params![device_hash, user, now],
            )?;
            let previous: Option<i64> = tx
                .query_row(
                    "SELECT at_ms FROM sign_ins WHERE user = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO sign_ins (user, at_ms, address, previous_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user) DO UPDATE SET previous_ms = sign_ins.at_ms,
                     at_ms = excluded.at_ms, address = excluded.address",
                params![user, now, address, previous],
            )?;
            let failures = failures_between(&tx, &user, previous.unwrap_or(0), now)?;
            tx.commit()?;
            Ok(failures)
        })?
        };
        if failures.count > 0 {
            tracing::warn!(user = %user, %address, failed = failures.count, from = %failures.addresses.join(", "), "signed in; there were failed sign-ins since the previous sign-in");
        } else {
            tracing::info!(user = %user, %address, "signed in");
        }
        Ok(NewSession {
            failures,
            ..session
        })
    }

    /// The hash of the device cookie when `user` signed in from that browser before.
    fn known_device(&self, user: &str, device: &str) -> Result<Option<String>, DbError> {
        let hash = sha256_hex(device);
        let since = now_ms().saturating_sub(millis(DEVICE_LIFETIME));
        if let Some(pg) = self.db.pg() {
            let found = pg_console::device_user(pg, &hash, since)?;
            return Ok(found.filter(|u| u == user).map(|_| hash));
        }
        let found: Option<String> = self.db.with(|c| {
            c.query_row(
                "SELECT user FROM login_devices WHERE token_hash = ?1 AND last_ms >= ?2",
                params![hash, since],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(found.filter(|u| u == user).map(|_| hash))
    }

    /// Failed sign-ins against `user` between its previous sign-in and its latest one: what
    /// the console shows after a sign-in.
    pub fn failures_before_last_sign_in(&self, user: &str) -> Result<FailedSignIns, DbError> {
        if let Some(pg) = self.db.pg() {
            return Ok(pg_console::failures_before_last_sign_in(pg, user)?);
        }
        self.db.with(|c| {
            let row: Option<(i64, Option<i64>)> = c
                .query_row(
                    "SELECT at_ms, previous_ms FROM sign_ins WHERE user = ?1",
                    params![user],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match row {
                Some((at, previous)) => failures_between(c, user, previous.unwrap_or(0), at),
                None => Ok(FailedSignIns::default()),
            }
        })
    }

    /// Closes a session.
    pub fn logout(&self, session_hash: &str) -> Result<(), DbError> {
        if let Some(pg) = self.db.pg() {
            pg_console::delete_session(pg, session_hash)?;
            self.db.announce_change()?;
        } else {
            self.db.with(|c| {
                c.execute(
                    "DELETE FROM sessions WHERE token_hash = ?1",
                    params![session_hash],
                )
            })?;
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.sessions.remove(session_hash);
        }
        Ok(())
    }

    fn resolve_session(&self, token: &str) -> Result<Option<Principal>, DbError> {
        let hash = sha256_hex(token);
        let now = now_ms();
        let cached = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.sessions.get(&hash).cloned());
        let session = match cached {
            Some(s) => Some(s),
            None => {
                let row = if let Some(pg) = self.db.pg() {
                    pg_console::session(pg, &hash)?.map(|(user, csrf, expires_ms)| CachedSession {
                        user,
                        csrf,
                        expires_ms,
                    })
                } else {
                    self.db.with(|c| {
                        c.prepare_cached(
                            "SELECT user, csrf, expires_ms FROM sessions WHERE token_hash = ?1",
                        )?
                        .query_row(params![hash], |r| {
                            Ok(CachedSession {
                                user: r.get(0)?,
                                csrf: r.get(1)?,
                                expires_ms: r.get(2)?,
                            })
                        })
                        .optional()
                    })?
                };
                if let (Some(s), Ok(mut cache)) = (&row, self.cache.write()) {
                    cache.sessions.insert(hash.clone(), s.clone());
                }
                row
            }
        };
        Ok(session
            .filter(|s| s.expires_ms > now)
            .map(|s| Principal::User {
                name: s.user,
                session_hash: hash,
                csrf: s.csrf,
            }))
    }

    // ----- API tokens -----

    /// Creates a token; returns its description and its value, which is shown only now.
    pub fn create_token(
        &self,
        name: &str,
        scope: Scope,
        created_by: &str,
    ) -> Result<(TokenInfo, String), AuthError> {
        check_token_name(name)?;
        let id = hex(&random_bytes(6));
        let secret = format!("pst_{id}_{}", random_token(32));
        let info = TokenInfo {
            id: id.clone(),
            name: name.to_owned(),
            scope,
            created_ms: now_ms(),
            created_by: created_by.to_owned(),
            revoked_ms: None,
        };
        if let Some(pg) = self.db.pg() {
            return match pg_console::insert_token(pg, &info, &sha256_hex(&secret))
                .map_err(DbError::from)?
            {
                true => Ok((info, secret)),
                false => Err(AuthError::TokenExists(name.to_owned())),
            };
        }
        let inserted = self.db.with(|c| {
            c.execute(
                "INSERT INTO api_tokens (id, name, scope, token_hash, created_ms, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, name, scope.as_str(), sha256_hex(&secret), info.created_ms, created_by],
            )
        });
        match inserted {
            Ok(_) => Ok((info, secret)),
            Err(DbError::Sqlite {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            }) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(AuthError::TokenExists(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes the active token with this id or name.
    pub fn revoke_token(&self, id_or_name: &str) -> Result<TokenInfo, AuthError> {
        let now = now_ms();
        let found = if let Some(pg) = self.db.pg() {
            let found = pg_console::revoke_token(pg, id_or_name, now).map_err(DbError::from)?;
            if found.is_some() {
                self.db.announce_change()?;
            }
            found
        } else {
            self.db.with(|c| {
                let tx = c.transaction()?;
                let row = tx
                    .query_row(
                        "SELECT id, name, scope, created_ms, created_by FROM api_tokens
                     WHERE (id = ?1 OR name = ?1) AND revoked_ms IS NULL",
                        params![id_or_name],
                        token_row,
                    )
                    .optional()?;
                if let Some(t) = &row {
                    tx.execute(
                        "UPDATE api_tokens SET revoked_ms = ?1 WHERE id = ?2",
                        params![now, t.id],
                    )?;
                }
                tx.commit()?;
                Ok(row)
            })?
        };
        self.clear_cache();
        let mut info = found.ok_or_else(|| AuthError::NoSuchToken(id_or_name.to_owned()))?;
        info.revoked_ms = Some(now);
        Ok(info)
    }

    /// Every token, revoked ones included, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, DbError> {
        if let Some(pg) = self.db.pg() {
            return Ok(pg_console::list_tokens(pg)?);
        }
        self.db.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, scope, created_ms, created_by, revoked_ms FROM api_tokens ORDER BY created_ms, id",
            )?;
            let rows = stmt.query_map([], |r| {
                let mut t = token_row(r)?;
                t.revoked_ms = r.get(5)?;
                Ok(t)
            })?;
            rows.collect()
        })
    }

    fn resolve_token(&self, token: &str) -> Result<Option<Principal>, DbError> {
        let hash = sha256_hex(token);
        if let Some(p) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.tokens.get(&hash).cloned())
        {
            return Ok(Some(p));
        }
        let row = match self.db.pg() {
            Some(pg) => pg_console::active_token(pg, &hash)?,
            None => self.db.with(|c| {
                c.prepare_cached(
                    "SELECT id, name, scope, created_ms, created_by FROM api_tokens
                 WHERE token_hash = ?1 AND revoked_ms IS NULL",
                )?
                .query_row(params![hash], token_row)
                .optional()
            })?,
        };
        let principal = row.map(|t| Principal::Token {
            id: t.id,
            name: t.name,
            scope: t.scope,
        });
        if let (Some(p), Ok(mut cache)) = (&principal, self.cache.write()) {
            cache.tokens.insert(hash, p.clone());
        }
        Ok(principal)
    }

    // ----- requests -----

    /// The caller of a request: an `Authorization: Bearer` token, else the session cookie.
    /// A bearer token that is not valid is refused even if a cookie is present.
    pub fn resolve(&self, headers: &HeaderMap) -> Result<Option<Principal>, DbError> {
        self.refresh()?;
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let Some(token) = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
            else {
                return Ok(None);
            };
            return self.resolve_token(token);
        }
        match cookie(headers, SESSION_COOKIE) {
            Some(token) => self.resolve_session(token),
            None => Ok(None),
        }
    }
}

/// What [`Auth::ensure_admin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// An account existed already: nothing changed.
    Existing,
    /// `admin` was created with the password from the environment.
    FromEnvironment,
    /// `admin` was created with this generated password (show it once).
    Generated(String),
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scope: String = r.get(2)?;
    Ok(TokenInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        scope: Scope::parse(&scope).unwrap_or(Scope::Capabilities),
        created_ms: r.get(3)?,
        created_by: r.get(4)?,
        revoked_ms: None,
    })
}

fn check_user_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadUserName)
    }
}

fn check_token_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadTokenName)
    }
}

/// A hash to verify against when the user does not exist.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| Auth::hash_password(&random_token(16)).unwrap_or_default())
}

/// The address an attempt is counted against: an IPv6 client usually holds a whole /64, so
/// its addresses count as one.
fn address_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => address.to_owned(),
    }
}

/// Failed sign-ins against `user` with `after < at_ms <= until`.
fn failures_between(
    c: &rusqlite::Connection,
    user: &str,
    after: i64,
    until: i64,
) -> rusqlite::Result<FailedSignIns> {
    let count: i64 = c.query_row(
        "SELECT count(*) FROM login_failures WHERE user = ?1 AND at_ms > ?2 AND at_ms <= ?3",
        params![user, after, until],
        |r| r.get(0),
    )?;
    let mut stmt = c.prepare(
        "SELECT address FROM login_failures WHERE user = ?1 AND at_ms > ?2 AND at_ms <= ?3
         GROUP BY address ORDER BY max(at_ms) DESC LIMIT ?4",
    )?;
    let addresses = stmt
        .query_map(
            params![user, after, until, FailedSignIns::MAX_ADDRESSES as i64],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(FailedSignIns {
        count: u64::try_from(count).unwrap_or(0),
        addresses,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ----- small helpers -----

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// `n` random bytes as URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(n))
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, and `Secure` when the server is
/// reached over HTTPS (`max_age` 0 deletes the cookie).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value of the session cookie (`max_age` 0 deletes it).
pub fn session_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    set_cookie(SESSION_COOKIE, token, "/", max_age, secure)
}

/// `Set-Cookie` value of the sign-in form's CSRF cookie (`max_age` 0 deletes it).
pub fn login_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    set_cookie(LOGIN_COOKIE, token, "/login", max_age, secure)
}

/// `Set-Cookie` value of the device cookie, sent to the sign-in form only.
pub fn device_cookie(token: &str, secure: bool) -> String {
    set_cookie(DEVICE_COOKIE, token, "/login", DEVICE_LIFETIME, secure)
}

/// Decodes `application/x-www-form-urlencoded` text into pairs.
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'+' => Some((b' ', 1)),
            b'%' => bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map(|b| (b, 3)),
            _ => None,
        };
        let (byte, len) = decoded.unwrap_or((bytes[i], 1));
        out.push(byte);
        i += len;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Backend;

    const PASSWORD: &str = "a long enough password";

    /// Two processes (or nodes) on one console database: the embedded file, then a
    /// PostgreSQL database when the test server is there. Each rule is written once.
    fn on_both_backends(test: impl Fn(&Auth, &Auth)) {
        let dir = tempfile::tempdir().unwrap();
        let open = |backend: &Backend, sub: &str| {
            // On PostgreSQL each node has its own data directory, as in a cluster.
            let data = dir.path().join(sub);
            let db = ConsoleDb::open_on(&data, backend).unwrap();
            Auth::new(Arc::new(db), LoginLimits::default()).unwrap()
        };
        let embedded = Backend::Embedded;
        test(&open(&embedded, "same"), &open(&embedded, "same"));
        if let Some(pg) = crate::storage::postgres::scratch_for_tests("auth") {
            let pg = Backend::Postgres(pg);
            test(&open(&pg, "node-a"), &open(&pg, "node-b"));
        }
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    fn session_cookie_header(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}={token}").parse().unwrap(),
        );
        h
    }

    /// `resolve` on `node` until `check` holds, for at most a second.
    fn within_a_second(
        node: &Auth,
        headers: &HeaderMap,
        check: impl Fn(&Option<Principal>) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let got = node.resolve(headers).unwrap();
            if check(&got) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "still {got:?} after a second"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn accounts_and_sign_ins_follow_the_same_rules_on_both_backends() {
        on_both_backends(|a, b| {
            let AdminBootstrap::Generated(generated) = a.ensure_admin(None).unwrap() else {
                panic!("the first start creates `admin` with a generated password");
            };
            // The other node starting next keeps that account.
            assert_eq!(
                b.ensure_admin(Some(PASSWORD)).unwrap(),
                AdminBootstrap::Existing
            );
            assert!(matches!(
                a.set_password("admin", "short"),
                Err(AuthError::WeakPassword)
            ));
            assert!(matches!(
                a.set_password("Admin!", PASSWORD),
                Err(AuthError::BadUserName)
            ));
            // Signs in on the other node with the password set on the first.
            let wrong = block_on(b.login("admin", "not the password!", "192.0.2.7", None));
            assert!(matches!(wrong, Err(LoginError::Invalid)));
            let unknown = block_on(b.login("nobody", PASSWORD, "192.0.2.7", None));
            assert!(matches!(unknown, Err(LoginError::Invalid)));
            let session = block_on(b.login(" ADMIN ", &generated, "192.0.2.8", None)).unwrap();
            // The failure against the existing account is reported, not the unknown one.
            assert_eq!(session.failures.count, 1);
            assert_eq!(session.failures.addresses, ["192.0.2.7"]);
            assert_eq!(
                a.failures_before_last_sign_in("admin").unwrap(),
                session.failures
            );
            // The session opened on B is valid on A, and its CSRF token comes along.
            let headers = session_cookie_header(&session.token);
            match a.resolve(&headers).unwrap() {
                Some(Principal::User { name, csrf, .. }) => {
                    assert_eq!(name, "admin");
                    assert_eq!(csrf, session.csrf);
                }
                other => panic!("{other:?}"),
            }
            assert!(a
                .resolve(&session_cookie_header("forged"))
                .unwrap()
                .is_none());
            // The browser is known now: a second sign-in keeps its device cookie.
            let again =
                block_on(a.login("admin", &generated, "192.0.2.9", Some(&session.device))).unwrap();
            assert_eq!(again.device, session.device);
            assert_eq!(again.failures.count, 0);
            // Signing out on B ends the session on A (which had cached it).
            let Some(Principal::User { session_hash, .. }) = b.resolve(&headers).unwrap() else {
                panic!("signed in");
            };
            b.logout(&session_hash).unwrap();
            within_a_second(a, &headers, Option::is_none);
            // A new password on A closes the sessions opened on B.
            let on_b = block_on(b.login("admin", &generated, "192.0.2.8", None)).unwrap();
            let on_b = session_cookie_header(&on_b.token);
            assert!(a.resolve(&on_b).unwrap().is_some());
            a.set_password("admin", PASSWORD).unwrap();
            within_a_second(b, &on_b, Option::is_none);
            assert!(block_on(b.login("admin", PASSWORD, "192.0.2.8", None)).is_ok());
            assert_eq!(a.user_count().unwrap(), 1);
        });
    }

    #[test]
    fn tokens_keep_their_scope_and_a_revocation_reaches_the_other_node_within_a_second() {
        on_both_backends(|a, b| {
            let (info, erp) = a.create_token("erp", Scope::Capabilities, "admin").unwrap();
            assert!(erp.starts_with(&format!("pst_{}_", info.id)));
            assert!(matches!(
                b.create_token("erp", Scope::Admin, "admin"),
                Err(AuthError::TokenExists(n)) if n == "erp"
            ));
            assert!(matches!(
                b.create_token("no spaces", Scope::Admin, "x"),
                Err(AuthError::BadTokenName)
            ));
            // Listed by creation time: one millisecond apart at least.
            std::thread::sleep(Duration::from_millis(2));
            let (_, metrics) = b.create_token("prom", Scope::Metrics, "admin").unwrap();
            // B resolves (and caches) the token created on A.
            let principal = b.resolve(&bearer(&erp)).unwrap().unwrap();
            assert!(principal.allows(Scope::Capabilities));
            assert!(!principal.allows(Scope::Admin));
            assert_eq!(principal.actor(), "token:erp");
            let m = a.resolve(&bearer(&metrics)).unwrap().unwrap();
            assert!(m.allows(Scope::Metrics) && !m.allows(Scope::Capabilities));
            assert!(b.resolve(&bearer("pst_0_forged")).unwrap().is_none());
            // Revoked on A by name: B refuses it within a second, despite its cache.
            let revoked = a.revoke_token("erp").unwrap();
            assert_eq!(revoked.id, info.id);
            assert!(revoked.revoked_ms.is_some());
            within_a_second(b, &bearer(&erp), Option::is_none);
            assert!(matches!(
                a.revoke_token("erp"),
                Err(AuthError::NoSuchToken(_))
            ));
            // The name is free again; the list keeps the revoked one, oldest first.
            std::thread::sleep(Duration::from_millis(2));
            let (again, _) = b.create_token("erp", Scope::Admin, "admin").unwrap();
            let list = a.list_tokens().unwrap();
            let names: Vec<_> = list
                .iter()
                .map(|t| (t.name.as_str(), t.scope, t.revoked_ms.is_some()))
                .collect();
            assert_eq!(
                names,
                [
                    ("erp", Scope::Capabilities, true),
                    ("prom", Scope::Metrics, false),
                    ("erp", Scope::Admin, false)
                ]
            );
            // By id too.
            assert_eq!(b.revoke_token(&again.id).unwrap().name, "erp");
            within_a_second(a, &bearer(&metrics), Option::is_some);
        });
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64_prefix() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("unknown"), "unknown");
    }
}
