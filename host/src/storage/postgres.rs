//! The PostgreSQL connection of a host process: a pool, TLS, migrations and notifications.
//!
//! The host's stores are synchronous (they were written for SQLite and files, and are called
//! from the CLI and from request handlers alike), while the PostgreSQL driver is asynchronous.
//! So the pool lives on a small private Tokio runtime, and [`Pg::run`] hands it a query and
//! waits for the answer on a channel. That works from plain threads and from inside the
//! server's runtime alike (unlike a nested `block_on`, which panics there), at the cost of one
//! blocked thread per query in flight, which is what the SQLite stores cost too.
//! [`Pg::run_async`] is the non-blocking form for async callers.
//!
//! Migrations are SQL files under `host/migrations/postgres/`, embedded at build time with
//! refinery and applied at connection under a PostgreSQL advisory lock, so nodes starting
//! together apply them once.
//!
//! Notifications (`LISTEN`/`NOTIFY`) come from one dedicated connection per process
//! ([`Pg::subscribe`]); when that connection drops, subscribers get [`Notice::Resync`] once it
//! is back, because notifications sent meanwhile are lost and caches must be reloaded.

use super::DatabaseUrl;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

refinery::embed_migrations!("migrations/postgres");

/// Connections kept by one process.
const POOL_SIZE: usize = 16;
/// How long a query waits for a free connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Key of the advisory lock held while migrations run (any constant unique to passerelle).
const MIGRATION_LOCK: i64 = 0x7061_7373_6572_656c; // "passerel"

/// Why the PostgreSQL backend failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {url}: {reason}; check that the server is running, that the URL (--database-url or PASSERELLE_DATABASE_URL) is right and that this user may connect")]
    Connect { url: String, reason: String },
    #[error("cannot apply the database migrations to {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("no PostgreSQL connection became free within {0:?}; the database is overloaded or unreachable")]
    Pool(Duration),
    #[error("the PostgreSQL runtime stopped; restart the host")]
    Gone,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The driver's Display hides the server's message behind "db error"; show it.
        match e.as_db_error() {
            Some(db) => PgError::Query(format!("{} ({})", db.message(), db.code().code())),
            None => PgError::Query(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Timeout(_) => PgError::Pool(POOL_WAIT),
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => PgError::Query(other.to_string()),
        }
    }
}

impl PgError {
    /// Whether the server refused the statement with this SQLSTATE (e.g. `23505`, unique
    /// violation; `40001`, serialization failure).
    pub fn is_sqlstate(&self, code: &str) -> bool {
        matches!(self, PgError::Query(m) if m.ends_with(&format!("({code})")))
    }
}

/// What a subscriber to notifications receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `NOTIFY channel, 'payload'` from any node (this one included).
    Message { channel: String, payload: String },
    /// The listening connection was lost and is back: anything may have changed meanwhile.
    Resync,
}

/// A process's connection to PostgreSQL.
pub struct Pg {
    pool: Pool,
    url: DatabaseUrl,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    notices: Mutex<Option<broadcast::Sender<Notice>>>,
    runtime: Runtime,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("url", &self.url).finish()
    }
}

/// The private runtime; shut down without waiting, so that dropping the last handle inside
/// another runtime does not panic.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Runtime {
    fn handle(&self) -> Result<&tokio::runtime::Handle, PgError> {
        self.0.as_ref().map(|rt| rt.handle()).ok_or(PgError::Gone)
    }
}

impl Pg {
    /// Connects (checking that the server answers) and applies pending migrations.
    /// `extra_roots` are DER certificates trusted besides the system's (the host's trust
    /// store), for servers with a private certificate authority (`sslmode=verify-full`…).
    pub fn connect(url: &DatabaseUrl, extra_roots: &[Vec<u8>]) -> Result<Arc<Pg>, PgError> {
        let shown = url.redacted();
        let connect_error = |reason: String| PgError::Connect {
            url: shown.clone(),
            reason,
        };
        let config: tokio_postgres::Config = url
            .expose()
            .parse()
            .map_err(|e: tokio_postgres::Error| connect_error(e.to_string()))?;
        let mut config = config;
        if config.get_password().is_none() {
            // As libpq does: a password kept out of the URL.
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        let tls = tls_connector(extra_roots).map_err(connect_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("passerelle-pg")
            .enable_all()
            .build()
            .map_err(|e| connect_error(e.to_string()))?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| connect_error(e.to_string()))?;
        let pg = Arc::new(Pg {
            pool,
            url: url.clone(),
            config,
            tls,
            notices: Mutex::new(None),
            runtime: Runtime(Some(runtime)),
        });
        pg.ping().map_err(|e| connect_error(e.to_string()))?;
        pg.run(|pool| async move {
            let mut client = pool.get().await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let result = migrations::runner()
                .run_async(&mut **client)
                .await
                .map(|_| ());
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await?;
            result.map_err(|e| PgError::Query(e.to_string()))
        })
        .map_err(|e| PgError::Migrate {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok(pg)
    }

    /// The URL, password hidden.
    pub fn url(&self) -> String {
        self.url.redacted()
    }

    /// Runs `work` on the pool and waits for it: the synchronous entry for stores.
    pub fn run<T, F, Fut>(&self, work: F) -> Result<T, PgError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
        T: Send + 'static,
    {
        let future = work(self.pool.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.handle()?.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| PgError::Gone)?
    }

    /// Runs `work` on the pool without blocking the caller's runtime.
    pub async fn run_async<T, F, Fut>(&self, work: F) -> Result<T, PgError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
        T: Send + 'static,
    {
        let future = work(self.pool.clone());
        self.runtime
            .handle()?
            .spawn(future)
            .await
            .map_err(|_| PgError::Gone)?
    }

    /// Whether the server answers now (for `/readyz`).
    pub fn ping(&self) -> Result<(), PgError> {
        self.run(|pool| async move {
            pool.get().await?.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    /// Sends `NOTIFY channel, payload` (delivered to every node's subscribers, after commit
    /// when sent inside a transaction: use `SELECT pg_notify($1, $2)` there instead).
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), PgError> {
        let (channel, payload) = (channel.to_owned(), payload.to_owned());
        self.run(|pool| async move {
            pool.get()
                .await?
                .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .await?;
            Ok(())
        })
    }

    /// Receives the notifications of `channels` (each a plain lowercase identifier). The first
    /// call starts this process's listening connection; later calls add channels to it.
    pub fn subscribe(
        self: &Arc<Self>,
        channels: &[&str],
    ) -> Result<broadcast::Receiver<Notice>, PgError> {
        let mut guard = self.notices.lock().map_err(|_| PgError::Gone)?;
        let sender = match guard.as_ref() {
            Some(sender) => sender.clone(),
            None => {
                let (sender, _) = broadcast::channel(1024);
                *guard = Some(sender.clone());
                sender
            }
        };
        let receiver = sender.subscribe();
        let channels: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        for channel in &channels {
            if !channel
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(PgError::Query(format!(
                    "`{channel}` is not a valid notification channel (lowercase letters, digits, `_`)"
                )));
            }
        }
        let pg = Arc::clone(self);
        self.runtime
            .handle()?
            .spawn(async move { pg.listen_forever(channels, sender).await });
        Ok(receiver)
    }

    /// One listening connection for `channels`, reconnected with a [`Notice::Resync`] after
    /// each loss, until every receiver is gone.
    async fn listen_forever(
        self: Arc<Self>,
        channels: Vec<String>,
        sender: broadcast::Sender<Notice>,
    ) {
        use futures_util::StreamExt;
        let mut first = true;
        loop {
            if sender.receiver_count() == 0 {
                return;
            }
            let config = self.config.clone();
            match config.connect(self.tls.clone()).await {
                Ok((client, mut connection)) => {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    let stream =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    let forward = tokio::spawn(async move {
                        let mut stream = std::pin::pin!(stream);
                        while let Some(message) = stream.next().await {
                            match message {
                                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                    let _ = tx.send(Notice::Message {
                                        channel: n.channel().to_owned(),
                                        payload: n.payload().to_owned(),
                                    });
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    });
                    let listen: String = channels.iter().map(|c| format!("LISTEN {c};")).collect();
                    if client.batch_execute(&listen).await.is_ok() {
                        if !first {
                            let _ = sender.send(Notice::Resync);
                        }
                        first = false;
                        while let Some(notice) = rx.recv().await {
                            if sender.send(notice).is_err() {
                                return;
                            }
                        }
                    }
                    forward.abort();
                    tracing::warn!(url = %self.url, "the PostgreSQL notification connection was lost; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %PgError::from(e), "cannot open the PostgreSQL notification connection; retrying");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// TLS for `sslmode=prefer|require|verify-*`: the system's roots and the host's trust store.
fn tls_connector(
    extra_roots: &[Vec<u8>],
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for der in extra_roots {
        let _ = roots.add(rustls_pki_types::CertificateDer::from(der.clone()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Creates an empty database beside the one `admin_url` names and returns its URL: each test
/// gets its own database on the shared test server (`PASSERELLE_TEST_DATABASE_URL`).
pub fn create_scratch_database(admin_url: &str, prefix: &str) -> Result<String, PgError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
    .to_ascii_lowercase()
    .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), "_");
    let mut url = url::Url::parse(admin_url).map_err(|e| PgError::Query(e.to_string()))?;
    let admin = admin_url.to_owned();
    let create = format!("CREATE DATABASE \"{name}\"");
    // A thread of its own: callers may be inside a runtime already.
    std::thread::spawn(move || -> Result<(), PgError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::Query(e.to_string()))?;
        rt.block_on(async move {
            let (client, connection) =
                tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(&create).await?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| PgError::Gone)??;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// The test server's URL, when the environment names one.
pub fn test_server_url() -> Option<String> {
    std::env::var("PASSERELLE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A connected, migrated, empty database for a unit test, or `None` (with a line on stderr)
/// on a machine without the test server. CI always has one: there, its absence fails.
#[cfg(test)]
pub(crate) fn scratch_for_tests(prefix: &str) -> Option<Arc<Pg>> {
    let Some(admin) = test_server_url() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set PASSERELLE_TEST_DATABASE_URL (.ci/run starts PostgreSQL)"
        );
        eprintln!("PASSERELLE_TEST_DATABASE_URL is not set: this PostgreSQL test did nothing");
        return None;
    };
    let url = create_scratch_database(&admin, prefix).expect("create a test database");
    Some(Pg::connect(&DatabaseUrl::parse(&url).expect("test url"), &[]).expect("connect"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> Option<Arc<Pg>> {
        scratch_for_tests("pg_unit")
    }

    #[test]
    fn migrations_apply_once_and_queries_run_from_threads_and_runtimes() {
        let Some(pg) = scratch() else { return };
        // Connecting again re-runs nothing.
        let again = Pg::connect(&DatabaseUrl::parse(&pg.url.0).unwrap(), &[]).unwrap();
        again.ping().unwrap();
        let count: i64 = pg
            .run(|pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_one("SELECT count(*) FROM refinery_schema_history", &[])
                    .await?;
                Ok(row.get(0))
            })
            .unwrap();
        assert!(count >= 1);
        // From inside another runtime, blocking and not.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pg2 = pg.clone();
        rt.block_on(async move {
            pg2.ping().unwrap();
            pg2.run_async(|pool| async move {
                pool.get().await?.simple_query("SELECT 1").await?;
                Ok(())
            })
            .await
            .unwrap();
        });
        drop(rt);
    }

    #[test]
    fn notifications_reach_subscribers() {
        let Some(pg) = scratch() else { return };
        let mut rx = pg.subscribe(&["unit_test"]).unwrap();
        // The LISTEN is asynchronous: notify until one arrives.
        let got = (0..50).find_map(|_| {
            pg.notify("unit_test", "hello").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            rx.try_recv().ok()
        });
        assert_eq!(
            got,
            Some(Notice::Message {
                channel: "unit_test".into(),
                payload: "hello".into()
            })
        );
    }

    #[test]
    fn server_errors_name_the_sqlstate() {
        let Some(pg) = scratch() else { return };
        let e = pg
            .run(|pool| async move {
                pool.get()
                    .await?
                    .execute("SELECT * FROM no_such_table", &[])
                    .await?;
                Ok(())
            })
            .unwrap_err();
        assert!(e.is_sqlstate("42P01"), "{e}");
        assert!(e.to_string().contains("no_such_table"), "{e}");
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error_without_the_password() {
        let url =
            DatabaseUrl::parse("postgres://app:s3cr3t@127.0.0.1:1/x?connect_timeout=2").unwrap();
        let e = Pg::connect(&url, &[]).unwrap_err().to_string();
        assert!(e.contains("cannot connect to PostgreSQL"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
