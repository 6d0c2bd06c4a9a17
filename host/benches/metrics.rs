//! The cost of a metric-instrumented capability call: what `Engine::invoke` adds to every
//! call (a counter and a latency histogram with instance, operation and outcome labels,
//! plus the admission-wait histogram) with the Prometheus recorder installed, against the
//! same calls with no recorder (the facade's no-op), and the time to render `/metrics`.
//!
//! `cargo bench -p passerelle --bench metrics` (or `bench/metrics.sh`); `METRICS_BENCH_CALLS`
//! sets the calls per measurement (default 1 000 000).

use passerelle::metrics::{self, CallOutcome};
use std::time::{Duration, Instant};

/// What one instrumented capability call records.
fn record_one_call(instance: &str, took: Duration) {
    metrics::admission_wait(instance, Duration::ZERO);
    metrics::capability_call(instance, "company.lookup", CallOutcome::Ok, took);
}

/// Nanoseconds per call over `calls` calls spread over `threads` threads and 16 instances.
fn ns_per_call(calls: u64, threads: u64) -> f64 {
    let instances: Vec<String> = (0..16).map(|i| format!("instance-{i}")).collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let instances = &instances;
            s.spawn(move || {
                for i in 0..calls / threads {
                    let instance = &instances[((i + t) % 16) as usize];
                    record_one_call(instance, Duration::from_micros(1500 + i % 1000));
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let calls: u64 = std::env::var("METRICS_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Warm up, then measure with no recorder: the facade's no-op plus the label strings.
    ns_per_call(calls / 10, 1);
    let off = ns_per_call(calls, 1);
    println!("no recorder (not instrumented):   {off:8.1} ns per call");
    metrics::handle();
    ns_per_call(calls / 10, 1);
    let on = ns_per_call(calls, 1);
    println!("Prometheus recorder, 1 thread:    {on:8.1} ns per call");
    let on2 = ns_per_call(calls, 2);
    println!("Prometheus recorder, 2 threads:   {on2:8.1} ns per call (wall time / calls)");
    println!(
        "cost of instrumentation:          {:8.1} ns per call",
        on - off
    );
    let started = Instant::now();
    let text = metrics::render();
    println!(
        "render /metrics (16 instances):   {:8.1} µs, {} bytes",
        started.elapsed().as_nanos() as f64 / 1000.0,
        text.len()
    );
}
