//! Quota benchmark: sustained throughput through the host's per-instance quota against a
//! strict provider that refuses any request beyond N in a rolling second.
//!
//! Goal: throughput >= 97 % of N with zero rejections. Run with
//! `cargo bench -p passerelle-e2e --bench quota` (or `bench/quota.sh`). Prints one line per N.

use passerelle_e2e::TestEnv;
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let requests_per_n: u32 = std::env::var("QUOTA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut failed = false;
    for n in [5u32, 20, 50] {
        let probe = ProbeEmulator::start(ProbeOptions {
            strict_per_second: n as usize,
            ..ProbeOptions::default()
        })
        .expect("probe emulator");
        let env = TestEnv::with_plugins(&["fixture_service_probe"]);
        env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
        env.ok(&["config", "set", "p", "base_url", &probe.url()]);
        env.ok(&["config", "set", "p", "per_second", &n.to_string()]);
        env.ok(&["config", "enable", "p"]);
        // Threads that divide N, so that every window is filled exactly.
        let threads = if n % 4 == 0 { 4 } else { 5 };
        let count = n * requests_per_n;
        let input = format!(r#"{{"path":"/strict","count":{count},"threads":{threads}}}"#);
        let out = env.ok(&["invoke", "other.burst", "--input", &input]).json();
        let elapsed_ms = out["elapsed_ms"].as_u64().unwrap_or(1).max(1) as f64;
        let rejected = out["rejected"].as_u64().unwrap_or(u64::MAX);
        let count = u32::try_from(out["ok"].as_u64().unwrap_or(0)).unwrap_or(0);
        let (accepted, refused) = probe.strict_counts();
        // The first N go out at once; the sustained rate is over the rest.
        let sustained = f64::from(count - n) / (elapsed_ms / 1000.0);
        let ratio = sustained / f64::from(n);
        println!(
            "quota N={n}/s: {count} requests in {:.2} s, sustained {sustained:.2} req/s = {:.1} % of N, rejected by plugin view {rejected}, emulator accepted {accepted} refused {refused}",
            elapsed_ms / 1000.0,
            ratio * 100.0
        );
        if refused > 0 || ratio < 0.97 {
            failed = true;
        }
    }
    if failed {
        eprintln!("quota benchmark goal missed: need >= 97 % of N and zero rejections");
        std::process::exit(1);
    }
}
