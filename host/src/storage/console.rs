//! Console accounts, browser sessions, API tokens and sign-in records in PostgreSQL: the
//! statements behind [`crate::server::auth::Auth`] when the host runs on that backend.
//!
//! [`crate::server::auth`] keeps the rules (argon2id hashes, session lifetime, scopes,
//! throttling) and its SQLite statements; this module holds only the PostgreSQL form of each
//! read and write, so that both backends share every decision. Each function that changes
//! several rows runs in one transaction, as the SQLite code does; the first administrator
//! is created under an advisory lock so that two nodes starting together create one.

use super::{Pg, PgError};
use crate::server::auth::{FailedSignIns, Scope, TokenInfo};

/// Key of the advisory lock taken while the first administrator account is created.
const FIRST_ADMIN_LOCK: i64 = 0x7061_7373_6164_6d6e; // "passadmn"

/// A stored session: (user, CSRF token, expiry in ms).
pub type SessionRow = (String, String, i64);

/// Creates or replaces `user`'s password hash and removes that account's sessions.
pub fn set_password(pg: &Pg, user: &str, hash: &str, now: i64) -> Result<(), PgError> {
    let (user, hash) = (user.to_owned(), hash.to_owned());
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO users (name, password_hash, created_ms, updated_ms) VALUES ($1, $2, $3, $3)
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                 updated_ms = excluded.updated_ms",
            &[&user, &hash, &now],
        )
        .await?;
        tx.execute("DELETE FROM sessions WHERE user_name = $1", &[&user])
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Creates `user` with `hash` when there is no account at all; whether it did.
pub fn create_first_user(pg: &Pg, user: &str, hash: &str, now: i64) -> Result<bool, PgError> {
    let (user, hash) = (user.to_owned(), hash.to_owned());
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FIRST_ADMIN_LOCK])
            .await?;
        let count: i64 = tx
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        if count > 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO users (name, password_hash, created_ms, updated_ms) VALUES ($1, $2, $3, $3)",
            &[&user, &hash, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    })
}

pub fn user_count(pg: &Pg) -> Result<i64, PgError> {
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0))
    })
}

pub fn password_hash(pg: &Pg, user: &str) -> Result<Option<String>, PgError> {
    let user = user.to_owned();
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_opt("SELECT password_hash FROM users WHERE name = $1", &[&user])
            .await?
            .map(|r| r.get(0)))
    })
}

/// Records a failed sign-in against an existing account, forgetting those before `forget_before`.
pub fn record_failure(
    pg: &Pg,
    user: &str,
    address: &str,
    now: i64,
    forget_before: i64,
) -> Result<(), PgError> {
    let (user, address) = (user.to_owned(), address.to_owned());
    pg.run(|pool| async move {
        let client = pool.get().await?;
        client
            .execute(
                "DELETE FROM login_failures WHERE at_ms < $1",
                &[&forget_before],
            )
            .await?;
        client
            .execute(
                "INSERT INTO login_failures (user_name, address, at_ms) VALUES ($1, $2, $3)",
                &[&user, &address, &now],
            )
            .await?;
        Ok(())
    })
}

/// What a successful sign-in stores.
pub struct OpenSession<'a> {
    pub user: &'a str,
    pub address: &'a str,
    pub token_hash: &'a str,
    pub csrf: &'a str,
    pub device_hash: &'a str,
    pub now: i64,
    pub expires: i64,
    pub devices_forgotten_before: i64,
}

/// Stores a session, the browser and the sign-in; returns the failed sign-ins since the
/// account's previous sign-in.
pub fn open_session(pg: &Pg, s: &OpenSession<'_>) -> Result<FailedSignIns, PgError> {
    let (user, address, hash, csrf, device) = (
        s.user.to_owned(),
        s.address.to_owned(),
        s.token_hash.to_owned(),
        s.csrf.to_owned(),
        s.device_hash.to_owned(),
    );
    let (now, expires, forget) = (s.now, s.expires, s.devices_forgotten_before);
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM sessions WHERE expires_ms < $1", &[&now])
            .await?;
        tx.execute(
            "INSERT INTO sessions (token_hash, user_name, csrf, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &user, &csrf, &now, &expires],
        )
        .await?;
        tx.execute("DELETE FROM login_devices WHERE last_ms < $1", &[&forget])
            .await?;
        tx.execute(
            "INSERT INTO login_devices (token_hash, user_name, created_ms, last_ms) VALUES ($1, $2, $3, $3)
             ON CONFLICT (token_hash) DO UPDATE SET last_ms = excluded.last_ms",
            &[&device, &user, &now],
        )
        .await?;
        // Locks the account's row so that two sign-ins at once chain their `previous_ms`.
        let previous: Option<i64> = tx
            .query_opt(
                "SELECT at_ms FROM sign_ins WHERE user_name = $1 FOR UPDATE",
                &[&user],
            )
            .await?
            .map(|r| r.get(0));
        tx.execute(
            "INSERT INTO sign_ins (user_name, at_ms, address, previous_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_name) DO UPDATE SET previous_ms = sign_ins.at_ms,
                 at_ms = excluded.at_ms, address = excluded.address",
            &[&user, &now, &address, &previous],
        )
        .await?;
        let failures = failures_between(&tx, &user, previous.unwrap_or(0), now).await?;
        tx.commit().await?;
        Ok(failures)
    })
}

/// The account that signed in from the browser with this device hash since `since`.
pub fn device_user(pg: &Pg, device_hash: &str, since: i64) -> Result<Option<String>, PgError> {
    let hash = device_hash.to_owned();
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_opt(
                "SELECT user_name FROM login_devices WHERE token_hash = $1 AND last_ms >= $2",
                &[&hash, &since],
            )
            .await?
            .map(|r| r.get(0)))
    })
}

/// Failed sign-ins against `user` between its previous sign-in and its latest one.
pub fn failures_before_last_sign_in(pg: &Pg, user: &str) -> Result<FailedSignIns, PgError> {
    let user = user.to_owned();
    pg.run(|pool| async move {
        let client = pool.get().await?;
        let row = client
            .query_opt(
                "SELECT at_ms, previous_ms FROM sign_ins WHERE user_name = $1",
                &[&user],
            )
            .await?;
        match row {
            Some(r) => {
                let (at, previous): (i64, Option<i64>) = (r.get(0), r.get(1));
                failures_between(&client, &user, previous.unwrap_or(0), at).await
            }
            None => Ok(FailedSignIns::default()),
        }
    })
}

async fn failures_between(
    c: &impl deadpool_postgres::GenericClient,
    user: &str,
    after: i64,
    until: i64,
) -> Result<FailedSignIns, PgError> {
    let count: i64 = c
        .query_one(
            "SELECT count(*) FROM login_failures WHERE user_name = $1 AND at_ms > $2 AND at_ms <= $3",
            &[&user, &after, &until],
        )
        .await?
        .get(0);
    let limit = FailedSignIns::MAX_ADDRESSES as i64;
    let addresses = c
        .query(
            "SELECT address FROM login_failures WHERE user_name = $1 AND at_ms > $2 AND at_ms <= $3
             GROUP BY address ORDER BY max(at_ms) DESC LIMIT $4",
            &[&user, &after, &until, &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(FailedSignIns {
        count: u64::try_from(count).unwrap_or(0),
        addresses,
    })
}

pub fn delete_session(pg: &Pg, token_hash: &str) -> Result<(), PgError> {
    let hash = token_hash.to_owned();
    pg.run(|pool| async move {
        pool.get()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&hash])
            .await?;
        Ok(())
    })
}

pub fn session(pg: &Pg, token_hash: &str) -> Result<Option<SessionRow>, PgError> {
    let hash = token_hash.to_owned();
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_opt(
                "SELECT user_name, csrf, expires_ms FROM sessions WHERE token_hash = $1",
                &[&hash],
            )
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    })
}

/// Stores a token; `Ok(false)` when an active token has that name already.
pub fn insert_token(pg: &Pg, info: &TokenInfo, token_hash: &str) -> Result<bool, PgError> {
    let (info, hash) = (info.clone(), token_hash.to_owned());
    pg.run(|pool| async move {
        let inserted = pool
            .get()
            .await?
            .execute(
                "INSERT INTO api_tokens (id, name, scope, token_hash, created_ms, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &info.id,
                    &info.name,
                    &info.scope.as_str(),
                    &hash,
                    &info.created_ms,
                    &info.created_by,
                ],
            )
            .await;
        match inserted.map_err(PgError::from) {
            Ok(_) => Ok(true),
            Err(e) if e.is_sqlstate("23505") => Ok(false),
            Err(e) => Err(e),
        }
    })
}

/// Revokes the active token with this id or name at `now`; the token as it was.
pub fn revoke_token(pg: &Pg, id_or_name: &str, now: i64) -> Result<Option<TokenInfo>, PgError> {
    let key = id_or_name.to_owned();
    pg.run(|pool| async move {
        let row = pool
            .get()
            .await?
            .query_opt(
                "UPDATE api_tokens SET revoked_ms = $2
                 WHERE id = (SELECT id FROM api_tokens
                             WHERE (id = $1 OR name = $1) AND revoked_ms IS NULL
                             ORDER BY (id = $1) DESC LIMIT 1 FOR UPDATE)
                 RETURNING id, name, scope, created_ms, created_by",
                &[&key, &now],
            )
            .await?;
        Ok(row.map(|r| token_row(&r)))
    })
}

/// Every token, revoked ones included, oldest first.
pub fn list_tokens(pg: &Pg) -> Result<Vec<TokenInfo>, PgError> {
    pg.run(|pool| async move {
        let rows = pool
            .get()
            .await?
            .query(
                "SELECT id, name, scope, created_ms, created_by, revoked_ms FROM api_tokens
                 ORDER BY created_ms, id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                revoked_ms: r.get(5),
                ..token_row(r)
            })
            .collect())
    })
}

/// The active token with this hash.
pub fn active_token(pg: &Pg, token_hash: &str) -> Result<Option<TokenInfo>, PgError> {
    let hash = token_hash.to_owned();
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_opt(
                "SELECT id, name, scope, created_ms, created_by FROM api_tokens
                 WHERE token_hash = $1 AND revoked_ms IS NULL",
                &[&hash],
            )
            .await?
            .map(|r| token_row(&r)))
    })
}

fn token_row(r: &tokio_postgres::Row) -> TokenInfo {
    let scope: String = r.get(2);
    TokenInfo {
        id: r.get(0),
        name: r.get(1),
        scope: Scope::parse(&scope).unwrap_or(Scope::Capabilities),
        created_ms: r.get(3),
        created_by: r.get(4),
        revoked_ms: None,
    }
}

/// Copies the accounts, sessions, tokens and sign-in records of an embedded data directory's
/// `console.sqlite3` into PostgreSQL (rows already there are kept): for `passerelle storage
/// migrate`. Per table: (name, rows in the source, rows in PostgreSQL after the copy).
pub fn copy_embedded_to_pg(
    data_dir: &std::path::Path,
    pg: &Pg,
) -> Result<Vec<(String, u64, u64)>, PgError> {
    use super::sqlite_copy::{copy_tables, Conflict, Table};
    copy_tables(
        &data_dir.join(crate::server::db::FILE_NAME),
        pg,
        &[
            Table {
                name: "users",
                from: "name, password_hash, created_ms, updated_ms",
                to: "name, password_hash, created_ms, updated_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "sessions",
                from: "token_hash, user, csrf, created_ms, expires_ms",
                to: "token_hash, user_name, csrf, created_ms, expires_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "api_tokens",
                from: "id, name, scope, token_hash, created_ms, created_by, revoked_ms",
                to: "id, name, scope, token_hash, created_ms, created_by, revoked_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "login_failures",
                from: "user, address, at_ms",
                to: "user_name, address, at_ms",
                conflict: Conflict::OnlyIntoEmpty,
            },
            Table {
                name: "sign_ins",
                from: "user, at_ms, address, previous_ms",
                to: "user_name, at_ms, address, previous_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "login_devices",
                from: "token_hash, user, created_ms, last_ms",
                to: "token_hash, user_name, created_ms, last_ms",
                conflict: Conflict::Keep,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{Auth, LoginLimits};
    use crate::server::db::ConsoleDb;
    use crate::storage::Backend;
    use std::sync::Arc;

    #[test]
    fn an_embedded_console_database_is_copied_once_and_its_tokens_work_on_postgres() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("console_copy") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let embedded = Auth::new(
            Arc::new(ConsoleDb::open_in(dir.path()).unwrap()),
            LoginLimits::default(),
        )
        .unwrap();
        embedded
            .set_password("admin", "a long enough password")
            .unwrap();
        let (_, token) = embedded
            .create_token("erp", Scope::Capabilities, "admin")
            .unwrap();
        embedded.create_token("old", Scope::Admin, "admin").unwrap();
        embedded.revoke_token("old").unwrap();
        let first = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        let again = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        for report in [&first, &again] {
            for (table, source, copied) in report {
                assert_eq!(source, copied, "{table}: {report:?}");
            }
        }
        assert_eq!(first[0], ("users".to_owned(), 1, 1));
        assert_eq!(first[2], ("api_tokens".to_owned(), 2, 2));
        // The copied token and password serve on PostgreSQL; the revoked token stays revoked.
        let other = tempfile::tempdir().unwrap();
        let on_pg = Auth::new(
            Arc::new(ConsoleDb::open_on(other.path(), &Backend::Postgres(pg)).unwrap()),
            LoginLimits::default(),
        )
        .unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert!(on_pg.resolve(&headers).unwrap().is_some());
        let listed = on_pg.list_tokens().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed
            .iter()
            .any(|t| t.name == "old" && t.revoked_ms.is_some()));
        assert_eq!(on_pg.user_count().unwrap(), 1);
    }
}
