//! Isolation benchmark: the per-call cost of process mode against in-process, for a test
//! routine and capability calls against a loopback emulator, measured through the host's
//! library API (many calls in one process, as `passerelle serve` makes them).
//!
//! Goal: process mode adds < 1 ms per call. Run with
//! `cargo bench -p passerelle-e2e --bench isolation`; `ISOLATION_BENCH_CALLS` sets the calls
//! per measurement (default 500). Prints one line per call kind and mode, then the overhead.

use passerelle::engine::Engine;
use passerelle::ids::InstanceId;
use passerelle::isolation::{IsolationMode, IsolationSettings};
use passerelle::settings::Settings;
use passerelle_e2e::{artifacts, TestEnv};
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

struct Host {
    _env: TestEnv,
    engine: Engine,
}

fn host(mode: IsolationMode, probe: &ProbeEmulator) -> Host {
    let env = TestEnv::with_plugins(&["fixture_service_probe", "fixture_misbehave"]);
    env.ok(&["config", "create", "probe", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "probe", "base_url", &probe.url()]);
    env.ok(&["config", "enable", "probe"]);
    env.ok(&["config", "create", "echo", "--plugin", "misbehave"]);
    env.ok(&["config", "enable", "echo"]);
    let settings = Settings::new(
        env.data.clone(),
        vec![env.plugins.clone()],
        None,
        Duration::from_secs(30),
    )
    .with_isolation(IsolationSettings {
        worker_exe: Some(artifacts().bin.clone()),
        ..IsolationSettings::all(mode)
    });
    let engine = Engine::open(settings).expect("open the host");
    assert!(
        engine.registry.load().refused.is_empty(),
        "{:?}",
        engine.registry.load().refused
    );
    Host { _env: env, engine }
}

#[derive(Clone, Copy)]
enum Kind {
    Test,
    Fetch,
    Echo,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Test => "test routine (1 HTTP callback)",
            Kind::Fetch => "capability other.fetch (1 HTTP callback)",
            Kind::Echo => "capability other.echo (4 callbacks, no network)",
        }
    }
}

async fn one(host: &Host, kind: Kind) {
    let engine = &host.engine;
    match kind {
        Kind::Test => {
            let id = InstanceId::new("probe").expect("id");
            let report = engine.test(&id, &Map::new()).await.expect("test");
            let report = serde_json::to_value(&report).expect("report");
            assert_eq!(report["status"], "ok", "{report}");
        }
        Kind::Fetch => {
            let id = InstanceId::new("probe").expect("id");
            let out = engine
                .invoke(
                    "other.fetch",
                    json!({"path": "/health"}),
                    Some(&id),
                    "bench",
                )
                .await
                .expect("fetch");
            assert_eq!(out["status"], 200, "{out}");
        }
        Kind::Echo => {
            let id = InstanceId::new("echo").expect("id");
            let out: Value = engine
                .invoke("other.echo", json!({"n": 1}), Some(&id), "bench")
                .await
                .expect("echo");
            assert!(out["count"].as_u64().is_some(), "{out}");
        }
    }
}

/// Per-call times in microseconds, sorted, of both hosts; calls alternate between them so
/// that the load of the machine weighs on both alike.
async fn measure(a: &Host, b: &Host, kind: Kind, calls: usize) -> (Vec<f64>, Vec<f64>) {
    for _ in 0..calls / 10 + 5 {
        one(a, kind).await;
        one(b, kind).await;
    }
    let (mut ta, mut tb) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for _ in 0..calls {
        for (host, times) in [(a, &mut ta), (b, &mut tb)] {
            let started = Instant::now();
            one(host, kind).await;
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    (ta, tb)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let calls: usize = std::env::var("ISOLATION_BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let probe = ProbeEmulator::start(ProbeOptions::default()).expect("probe emulator");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let in_process = host(IsolationMode::InProcess, &probe);
    let process = host(IsolationMode::Process, &probe);
    let mut failed = false;
    println!("isolation benchmark: {calls} calls per line, loopback probe emulator");
    for kind in [Kind::Test, Kind::Fetch, Kind::Echo] {
        let (a, b) = runtime.block_on(measure(&in_process, &process, kind, calls));
        for (mode, v) in [("in-process", &a), ("process", &b)] {
            println!(
                "  {:<48} {mode:<10} mean {:>8.1} µs  p50 {:>8.1} µs  p95 {:>8.1} µs",
                kind.label(),
                mean(v),
                pct(v, 0.5),
                pct(v, 0.95)
            );
        }
        let overhead = mean(&b) - mean(&a);
        let overhead_p50 = pct(&b, 0.5) - pct(&a, 0.5);
        println!(
            "  {:<48} process mode adds {overhead:.1} µs per call (mean), {overhead_p50:.1} µs (p50)",
            kind.label()
        );
        if overhead >= 1000.0 {
            failed = true;
        }
    }
    if let Some(p) = process
        .engine
        .registry
        .load()
        .plugins
        .iter()
        .find_map(|p| p.process())
    {
        let stats = p.stats();
        println!(
            "  worker processes started: {} (failures {})",
            stats.started, stats.failures
        );
    }
    if failed {
        eprintln!("isolation benchmark goal missed: process mode must add < 1 ms per call");
        std::process::exit(1);
    }
}
