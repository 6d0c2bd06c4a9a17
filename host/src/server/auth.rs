//! Who is calling, and may they.
//!
//! - Administrators sign in with a password, stored as an argon2id hash (PHC string). The
//!   account `admin` is created on first start ([`Auth::ensure_admin`]).
//! - A sign-in opens a browser session: a random token in an `HttpOnly`, `SameSite=Strict`
//!   cookie, stored hashed (SHA-256) with its CSRF token. Every request that changes
//!   something under a session must carry that CSRF token (`X-CSRF-Token` header or `_csrf`
//!   form field); the sign-in form itself is protected by a double-submit cookie.
//! - Failed sign-ins are rate-limited per account and per client address; an attempt in
//!   progress counts as a failure until it succeeds, so parallel guessing gains nothing.
//! - Scripts and the ERP use API tokens, created and revoked by an administrator, stored
//!   hashed, and scoped: `capabilities` calls capabilities only; `admin` does everything an
//!   administrator does. Tokens need no CSRF token: a browser never sends them on its own.
//!
//! Lookups of sessions and tokens are cached in memory so that authenticated reads stay
//! cheap; the cache is dropped whenever another process writes to the console database
//! (e.g. `passerelle admin token revoke` while the server runs), checked on every request.

use super::db::{now_ms, ConsoleDb, DbError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Cookie holding the session token.
pub const SESSION_COOKIE: &str = "passerelle_session";
/// Cookie holding the sign-in form's CSRF token.
pub const LOGIN_COOKIE: &str = "passerelle_login";
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
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Capabilities => "capabilities",
            Scope::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Scope> {
        match s {
            "capabilities" => Some(Scope::Capabilities),
            "admin" => Some(Scope::Admin),
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

/// A session just opened: the cookie value and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// Limits of failed sign-ins within a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_user: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
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
    limiter: Mutex<Limiter>,
}

impl Auth {
    pub fn new(db: Arc<ConsoleDb>, limits: LoginLimits) -> Result<Self, DbError> {
        let version = db.data_version()?;
        Ok(Auth {
            db,
            cache: RwLock::new(Cache::default()),
            seen_version: AtomicI64::new(version),
            limiter: Mutex::new(Limiter::new(limits)),
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
        self.db
            .with(|c| c.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))
    }

    /// Creates the `admin` account when there is no account yet, with `password` (from
    /// `PASSERELLE_ADMIN_PASSWORD`) or a generated one, which is returned to be shown once.
    pub fn ensure_admin(&self, password: Option<&str>) -> Result<AdminBootstrap, AuthError> {
        if self.user_count()? > 0 {
            return Ok(AdminBootstrap::Existing);
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

    /// Checks a sign-in and opens a session. Rate-limited per user and per address.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: &str,
    ) -> Result<NewSession, LoginError> {
        let user = user.trim().to_lowercase();
        let keys = [format!("user:{user}"), format!("address:{address}")];
        self.limiter
            .lock()
            .map_err(|_| LoginError::Internal)?
            .begin(&keys)
            .map_err(|retry_after| LoginError::RateLimited { retry_after })?;
        let stored: Option<String> = self.db.with(|c| {
            c.query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                params![user],
                |r| r.get(0),
            )
            .optional()
        })?;
        let password = password.to_owned();
        let known = stored.is_some();
        // An unknown user costs as much as a wrong password, so timing tells nothing.
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = tokio::task::spawn_blocking(move || Self::verify_password(&hash, &password))
            .await
            .map_err(|_| LoginError::Internal)?;
        if !(ok && known) {
            tracing::warn!(user = %user, %address, "failed sign-in");
            return Err(LoginError::Invalid);
        }
        if let Ok(mut limiter) = self.limiter.lock() {
            limiter.succeeded(&keys);
        }
        let session = NewSession {
            token: random_token(32),
            csrf: random_token(32),
        };
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(0));
        let hash = sha256_hex(&session.token);
        self.db.with(|c| {
            c.execute("DELETE FROM sessions WHERE expires_ms < ?1", params![now])?;
            c.execute(
                "INSERT INTO sessions (token_hash, user, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, user, session.csrf, now, expires],
            )
        })?;
        tracing::info!(user = %user, %address, "signed in");
        Ok(session)
    }

    /// Closes a session.
    pub fn logout(&self, session_hash: &str) -> Result<(), DbError> {
        self.db.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                params![session_hash],
            )
        })?;
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
                let row = self.db.with(|c| {
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
                })?;
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
        let found = self.db.with(|c| {
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
        })?;
        self.clear_cache();
        let mut info = found.ok_or_else(|| AuthError::NoSuchToken(id_or_name.to_owned()))?;
        info.revoked_ms = Some(now);
        Ok(info)
    }

    /// Every token, revoked ones included, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, DbError> {
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
        let row = self.db.with(|c| {
            c.prepare_cached(
                "SELECT id, name, scope, created_ms, created_by FROM api_tokens
                 WHERE token_hash = ?1 AND revoked_ms IS NULL",
            )?
            .query_row(params![hash], token_row)
            .optional()
        })?;
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

/// Failed sign-ins per key (user, address) in a sliding window.
#[derive(Debug)]
struct Limiter {
    limits: LoginLimits,
    failures: HashMap<String, VecDeque<Instant>>,
}

/// Above this many keys, stale entries are swept.
const LIMITER_SWEEP_AT: usize = 10_000;

impl Limiter {
    fn new(limits: LoginLimits) -> Self {
        Limiter {
            limits,
            failures: HashMap::new(),
        }
    }

    fn limit_of(&self, key: &str) -> usize {
        if key.starts_with("user:") {
            self.limits.per_user
        } else {
            self.limits.per_address
        }
    }

    /// Refuses when a key is at its limit; otherwise counts this attempt as a failure until
    /// [`Limiter::succeeded`] says otherwise.
    fn begin(&mut self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let window = self.limits.window;
        if self.failures.len() > LIMITER_SWEEP_AT {
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let mut wait = Duration::ZERO;
        for key in keys {
            let limit = self.limit_of(key);
            if let Some(q) = self.failures.get_mut(key) {
                while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    q.pop_front();
                }
                if q.len() >= limit {
                    if let Some(oldest) = q.front() {
                        wait = wait.max(window.saturating_sub(now.duration_since(*oldest)));
                    }
                }
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for key in keys {
            self.failures.entry(key.clone()).or_default().push_back(now);
        }
        Ok(())
    }

    /// A successful sign-in clears the account's failures and takes back this attempt from
    /// the address's count (other failures from that address stay counted).
    fn succeeded(&mut self, keys: &[String]) {
        for key in keys {
            if key.starts_with("user:") {
                self.failures.remove(key);
            } else if let Some(q) = self.failures.get_mut(key) {
                q.pop_back();
            }
        }
    }
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

/// `Set-Cookie` value of the session cookie (`max_age` 0 deletes it).
pub fn session_cookie(token: &str, max_age: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    )
}

/// `Set-Cookie` value of the sign-in form's CSRF cookie.
pub fn login_cookie(token: &str) -> String {
    format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600")
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
