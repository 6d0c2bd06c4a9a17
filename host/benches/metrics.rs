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

/// CPU time of this process, so that other processes on a busy machine do not count.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Nanoseconds per call (wall time, CPU time) over `calls` calls spread over `threads`
/// threads and 16 instances.
fn ns_per_call(calls: u64, threads: u64) -> (f64, f64) {
    let instances: Vec<String> = (0..16).map(|i| format!("instance-{i}")).collect();
    let cpu = cpu_time();
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
    let per_call = |d: Duration| d.as_nanos() as f64 / calls as f64;
    (per_call(started.elapsed()), per_call(cpu_time() - cpu))
}

fn main() {
    let calls: u64 = std::env::var("METRICS_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Warm up, then measure with no recorder: the facade's no-op plus the label strings.
    println!("ns per call                       wall     CPU");
    ns_per_call(calls / 10, 1);
    let off = ns_per_call(calls, 1);
    println!(
        "no recorder (not instrumented): {:8.1} {:8.1}",
        off.0, off.1
    );
    metrics::handle();
    ns_per_call(calls / 10, 1);
    let on = ns_per_call(calls, 1);
    println!("Prometheus recorder, 1 thread:  {:8.1} {:8.1}", on.0, on.1);
    let on2 = ns_per_call(calls, 2);
    println!(
        "Prometheus recorder, 2 threads: {:8.1} {:8.1}",
        on2.0, on2.1
    );
    println!(
        "cost of instrumentation:        {:8.1} {:8.1}",
        on.0 - off.0,
        on.1 - off.1
    );
    // Histogram samples are folded into buckets every 5 s in `serve`; fold them first so that
    // what follows is the rendering alone.
    metrics::handle().run_upkeep();
    let started = Instant::now();
    let text = metrics::render();
    println!(
        "render /metrics (16 instances): {:8.1} µs, {} bytes",
        started.elapsed().as_nanos() as f64 / 1000.0,
        text.len()
    );
}
