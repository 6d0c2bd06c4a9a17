//! Quota decisions per second on both storage backends: how many admissions the host's
//! shared quota windows make when the quota is not the limit (so the storage is), from one
//! process with 1 and 8 concurrent callers. Embedded: `quota.sqlite3` (one `BEGIN IMMEDIATE`
//! per decision); PostgreSQL: one `passerelle_quota_take` call per decision plus the answer's
//! stamp. Run with `cargo bench -p passerelle-e2e --bench quota_decisions` (PostgreSQL needs
//! `PASSERELLE_TEST_DATABASE_URL`, as for the tests); `QUOTA_DECISIONS` sets the decisions
//! per run (2000 by default). Prints one line per backend and concurrency.

use passerelle::services::quota::QuotaBook;
use passerelle::services::state::StateDb;
use passerelle::storage::{DatabaseUrl, Pg};
use passerelle_plugin_api::Quotas;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let decisions: usize = std::env::var("QUOTA_DECISIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(StateDb::open(&dir.path().join("state.sqlite3")).expect("state"));
    let mut books = vec![(
        "embedded",
        Arc::new(QuotaBook::shared(&dir.path().join("quota.sqlite3")).expect("quota file")),
    )];
    match passerelle::storage::postgres::test_server_url() {
        Some(admin) => {
            let url = passerelle::storage::postgres::create_scratch_database(&admin, "bench")
                .expect("scratch database");
            let pg = Pg::connect(&DatabaseUrl::parse(&url).expect("url"), &[]).expect("connect");
            books.push((
                "postgres",
                Arc::new(QuotaBook::clustered(pg).expect("quota windows")),
            ));
        }
        None => eprintln!("PASSERELLE_TEST_DATABASE_URL is not set: PostgreSQL skipped"),
    }
    // Far above what storage allows: every decision admits.
    let quotas = Quotas {
        per_second: Some(1_000_000),
        per_minute: Some(60_000_000),
        ..Quotas::default()
    };
    for (name, book) in books {
        for callers in [1usize, 8] {
            let started = Instant::now();
            runtime.block_on(async {
                let tasks: Vec<_> = (0..callers)
                    .map(|_| {
                        let (book, state) = (book.clone(), state.clone());
                        tokio::spawn(async move {
                            for _ in 0..decisions / callers {
                                drop(
                                    book.acquire(&state, "bench", quotas)
                                        .await
                                        .expect("admitted"),
                                );
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("caller");
                }
            });
            let secs = started.elapsed().as_secs_f64();
            println!(
                "quota decisions, {name}, {callers} caller(s): {} in {secs:.2} s = {:.0}/s ({:.2} ms each, answer stamp included)",
                decisions / callers * callers,
                (decisions / callers * callers) as f64 / secs,
                secs * 1000.0 / decisions as f64 * callers as f64
            );
        }
    }
}
