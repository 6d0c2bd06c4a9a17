//! Start-up benchmark (issue 16): what verifying already-installed plugins costs at each start.
//!
//! 200 distinct, signed copies of a real plugin library go through the loader's checks
//! (permissions, SHA-256, signature, inspection, cache copy) twice: cold (nothing known, every
//! file read and hashed) and warm (the index of verified files knows them: `verified.rs`).
//! Mapping the library is not included: it is the same with or without the index.
//!
//! Goal: warm ≤ 0.5 ms per plugin. Run with `cargo bench -p passerelle-e2e --bench startup`
//! (release build of the host library). Prints one line per pass.

use passerelle::loader::{check_file, LoadOptions};
use passerelle::signing::{keygen, parse_public_key, sign, Policy, PolicyMode};
use passerelle::verified::{VerifiedFiles, SETTLE};
use std::time::Instant;

const PLUGINS: usize = 200;

fn main() {
    let source = passerelle_e2e::plugin_library("passerelle_sirene");
    let bytes = std::fs::read(&source).expect("built plugin");
    let work = tempfile::tempdir().expect("temporary directory");
    let (key, public) = keygen(work.path(), "bench").expect("key pair");
    let plugins = work.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugin directory");
    let mut files = Vec::new();
    for i in 0..PLUGINS {
        // Distinct content per file, as 200 different plugins would have.
        let mut content = bytes.clone();
        content.extend_from_slice(format!("\0bench-copy-{i}").as_bytes());
        let file = plugins.join(format!("libplugin_{i}.so"));
        std::fs::write(&file, &content).expect("copy");
        sign(&file, &content, &format!("p{i}"), "1.0.0", &key).expect("sign");
        files.push(file);
    }
    let options = LoadOptions {
        policy: Some(Policy {
            mode: PolicyMode::Strict,
            trusted: vec![parse_public_key(&public).expect("public key")],
            allow_unsigned: Vec::new(),
        }),
        cache_dir: Some(work.path().join("plugin-cache")),
        ..LoadOptions::default_unchecked()
    };
    let cache = work.path().join("plugin-cache");
    // Files just written are "racy" and never remembered: let them settle, as installed
    // plugins have.
    std::thread::sleep(SETTLE + std::time::Duration::from_millis(100));
    let pass = |name: &str| {
        let verified = VerifiedFiles::open(&cache);
        let started = Instant::now();
        for file in &files {
            check_file(file, &options, Some(&verified)).expect("verified");
        }
        let elapsed = started.elapsed();
        verified.save();
        let per = elapsed.as_secs_f64() * 1000.0 / PLUGINS as f64;
        println!(
            "startup/{name}: {PLUGINS} plugins of {:.1} MB in {:.1} ms, {per:.3} ms per plugin",
            bytes.len() as f64 / 1e6,
            elapsed.as_secs_f64() * 1000.0
        );
        per
    };
    // First start: hashes sources, writes the cache copies (just written: racy).
    pass("first start (copies written)");
    std::thread::sleep(SETTLE + std::time::Duration::from_millis(100));
    // Second start: re-hashes the copies once, remembers them.
    let cold = pass("cold (index empty for copies)");
    let warm = pass("warm (index of verified files)");
    println!(
        "startup: warm is {:.1}x faster than cold; goal ≤ 0.5 ms per plugin: {}",
        cold / warm,
        if warm <= 0.5 { "met" } else { "MISSED" }
    );
}
