//! Fuzzing on stable Rust (feature `testing`): structure-aware mutation of real samples,
//! bounded in time, shared by every plugin and the host.
//!
//! Every parser of untrusted input (a provider's answer, an administrator's file, a plugin's
//! manifest) must refuse bad input with an error, never panic. A harness hands this module
//! real samples (fixtures recorded from the providers, committed schemas, example files) and
//! a check; each case is a sample changed by a few mutations that know the input's shape:
//! JSON values are replaced, removed, retyped or grafted from elsewhere in the tree; bytes
//! (XML, PDF, TSV, TOML) are cut, spliced, duplicated at tag boundaries and sprinkled with the
//! target's dictionary tokens. The choices come from an [`arbitrary::Unstructured`], so the
//! same mutators can be fed by `cargo fuzz` bytes; in tests they are fed by a seeded
//! generator, so a case is reproduced by its seed and number.
//!
//! The number of cases is small by default (CI runs every target in seconds) and set with
//! [`CASES_VAR`] for a longer local run; [`SEED_VAR`] changes the seed. A panic stops the run
//! with the target, seed, case number and the input that caused it, ready to be pasted into a
//! named regression test.

use arbitrary::Unstructured;
use serde_json::{Map, Number, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Environment variable: the number of cases per target (overrides each target's default).
pub const CASES_VAR: &str = "PASSERELLE_FUZZ_CASES";
/// Environment variable: the generator's seed (a decimal number), to explore other cases.
pub const SEED_VAR: &str = "PASSERELLE_FUZZ_SEED";
/// Environment variable: when set, each case's number and input are printed before it runs,
/// so a case that kills the process (a stack overflow cannot be caught) can be found.
pub const TRACE_VAR: &str = "PASSERELLE_FUZZ_TRACE";
/// Environment variable: run only the case of this number (with [`TRACE_VAR`], to see it).
pub const ONLY_VAR: &str = "PASSERELLE_FUZZ_ONLY";

const MAX_INPUT: usize = 256 * 1024;

const DEFAULT_SEED: u64 = 0x5041_5353_4552_454C; // "PASSEREL"

/// What one target's run did.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub cases: u64,
    pub elapsed: Duration,
    /// The slowest single case: a parser that is quadratic on some input shows here.
    pub slowest: Duration,
    /// Which case was the slowest (rerun it alone with the same seed to see its input).
    pub slowest_case: u64,
}

/// A source of choices: the mutators only ask it for numbers and flags.
struct Generator {
    state: u64,
}

impl Generator {
    fn new(seed: u64, case: u64) -> Self {
        Generator {
            state: seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    /// splitmix64: tiny, good enough to pick mutations, reproducible everywhere.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }
}

fn env_number(var: &str) -> Option<u64> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// The number of cases to run for a target whose CI default is `default`.
pub fn cases(default: u64) -> u64 {
    env_number(CASES_VAR).unwrap_or(default)
}

/// Runs `check` on `cases(default_cases)` inputs made by `make` (from the choices it is
/// given), catching panics. Panics with a reproducible report on the first one.
pub fn run<T: std::fmt::Debug>(
    target: &str,
    default_cases: u64,
    mut make: impl FnMut(&mut Unstructured<'_>) -> T,
    mut check: impl FnMut(&T),
) -> Stats {
    let seed = env_number(SEED_VAR).unwrap_or(DEFAULT_SEED);
    let total = cases(default_cases);
    let trace = std::env::var_os(TRACE_VAR).is_some();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut slowest_case = 0;
    let only = env_number(ONLY_VAR);
    for case in 0..total {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        let mut generator = Generator::new(seed, case);
        let choices = generator.bytes(512);
        let mut u = Unstructured::new(&choices);
        let input = make(&mut u);
        if trace {
            eprintln!("fuzz {target}: case {case}: {input:?}");
        }
        let one = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        if one.elapsed() > slowest {
            slowest = one.elapsed();
            slowest_case = case;
        }
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let mut shown = format!("{input:?}");
            if shown.len() > 8000 {
                let mut cut = 8000;
                while !shown.is_char_boundary(cut) {
                    cut -= 1;
                }
                shown.truncate(cut);
                shown.push_str("… (cut)");
            }
            panic!(
                "fuzz target `{target}` panicked on case {case} ({SEED_VAR}={seed}): {message}\ninput: {shown}"
            );
        }
    }
    let stats = Stats {
        cases: total,
        elapsed: started.elapsed(),
        slowest,
        slowest_case,
    };
    let per_second = stats.cases as f64 / stats.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "fuzz {target}: {} cases in {} ms ({per_second:.0}/s), slowest case {} ms (case {})",
        stats.cases,
        stats.elapsed.as_millis(),
        stats.slowest.as_millis(),
        stats.slowest_case,
    );
    stats
}

/// Fuzzes a parser of bytes, starting from `seeds` and using `dictionary` tokens (tags,
/// keywords, numbers the format gives meaning to).
pub fn bytes(
    target: &str,
    seeds: &[Vec<u8>],
    dictionary: &[&[u8]],
    default_cases: u64,
    mut check: impl FnMut(&[u8]),
) -> Stats {
    run(
        target,
        default_cases,
        |u| Bytes(mutate_bytes(u, seeds, dictionary)),
        |input| check(&input.0),
    )
}

/// Fuzzes a parser of text: mutated bytes, read as UTF-8 where they are (lossily otherwise,
/// as a host decoding a provider's answer would).
pub fn text(
    target: &str,
    seeds: &[String],
    dictionary: &[&[u8]],
    default_cases: u64,
    mut check: impl FnMut(&str),
) -> Stats {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.clone().into_bytes()).collect();
    run(
        target,
        default_cases,
        |u| String::from_utf8_lossy(&mutate_bytes(u, &seeds, dictionary)).into_owned(),
        |input| check(input),
    )
}

/// Fuzzes a reader of JSON values (already parsed), with structural mutations of `seeds`.
pub fn json(
    target: &str,
    seeds: &[Value],
    default_cases: u64,
    mut check: impl FnMut(&Value),
) -> Stats {
    run(
        target,
        default_cases,
        |u| mutate_json(u, seeds),
        |input| check(input),
    )
}

/// Fuzzes a reader of JSON bodies: mostly structural mutations serialised, sometimes with
/// byte damage on top (truncation, stray tokens), as a broken proxy or provider would send.
pub fn json_bytes(
    target: &str,
    seeds: &[Value],
    default_cases: u64,
    mut check: impl FnMut(&[u8]),
) -> Stats {
    run(
        target,
        default_cases,
        |u| {
            let value = mutate_json(u, seeds);
            let text = serde_json::to_vec(&value).unwrap_or_default();
            if u.ratio(1, 4).unwrap_or(false) {
                Bytes(mutate_bytes(u, &[text], JSON_TOKENS))
            } else {
                Bytes(text)
            }
        },
        |input| check(&input.0),
    )
}

/// Asserts that a capability's output crosses the plugin boundary (JSON): it is written and
/// read back, and holds no NaN or infinite number, which JSON cannot carry (serde_json writes
/// them as `null`, so an amount would silently vanish on its way to the ERP).
pub fn assert_crosses_boundary<T>(output: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let json = serde_json::to_string(output)
        .unwrap_or_else(|e| panic!("{output:?} cannot be written as JSON: {e}"));
    if let Err(e) = serde_json::from_str::<T>(&json) {
        panic!("{json} does not read back: {e}");
    }
    let shown = format!("{output:?}");
    for before in ["(", ": ", "[", ", "] {
        for number in ["NaN", "inf", "-inf"] {
            assert!(
                !shown.contains(&format!("{before}{number}")),
                "a non-finite number in {shown}"
            );
        }
    }
}

/// Bytes shown as text where they are text, so a crasher can be pasted into a test.
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Tokens that mean something in JSON text.
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
];

/// Tokens that mean something in XML.
pub const XML_TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"=",
    b"\"",
    b"'",
    b"&amp;",
    b"&lt;",
    b"&#0;",
    b"&#x110000;",
    b"&#xD800;",
    b"&nosuch;",
    b"&",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version=\"1.0\"?>",
    b"<!DOCTYPE a [<!ENTITY e \"x\">]>",
    b"&e;",
    b"xmlns=\"urn:x\"",
    b"xmlns:p=\"\"",
    b"p:",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\0",
];

/// Mutates one of `seeds` (or, without seeds, random bytes) with 1 to 8 byte-level changes.
pub fn mutate_bytes(u: &mut Unstructured<'_>, seeds: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut data = pick(u, seeds).cloned().unwrap_or_default();
    let rounds = u.int_in_range(1..=8u8).unwrap_or(1);
    for _ in 0..rounds {
        let len = data.len();
        let at = index(u, len + 1);
        match u.int_in_range(0..=10u8).unwrap_or(0) {
            0 if len > 0 => {
                let i = index(u, len);
                data[i] ^= 1 << index(u, 8);
            }
            1 if len > 0 => {
                let i = index(u, len);
                data[i] = u.arbitrary().unwrap_or(0);
            }
            2 => {
                if let Some(token) = pick(u, dictionary) {
                    data.splice(at..at, token.iter().copied());
                }
            }
            3 => {
                // Replace a run with a token: a tag name, a number, an entity.
                let end = (at + index(u, 16)).min(len);
                if let Some(token) = pick(u, dictionary) {
                    data.splice(at..end, token.iter().copied());
                }
            }
            4 => {
                let end = (at + index(u, 64)).min(len);
                data.drain(at..end);
            }
            5 => data.truncate(at),
            6 => {
                // Duplicate a run many times: deep nesting, long lists, long names.
                let end = (at + 1 + index(u, 32)).min(len);
                if at < end {
                    let run = data[at..end].to_vec();
                    let times = 1 + index(u, 200);
                    let copies: Vec<u8> = run
                        .iter()
                        .copied()
                        .cycle()
                        .take(run.len() * times)
                        .collect();
                    data.splice(at..at, copies);
                }
            }
            7 => {
                // Splice in a piece of another seed.
                if let Some(other) = pick(u, seeds) {
                    let from = index(u, other.len() + 1);
                    let to = (from + index(u, 256)).min(other.len());
                    data.splice(at..at, other[from..to].iter().copied());
                }
            }
            8 | 9 => structural_bytes(u, &mut data),
            _ => {
                let n = index(u, 16);
                let random: Vec<u8> = (0..n).map(|_| u.arbitrary().unwrap_or(0)).collect();
                data.splice(at..at, random);
            }
        }
        // Large enough for quadratic work to show (256 KiB squared is billions of steps),
        // small enough to keep each case fast in a debug build.
        if data.len() > MAX_INPUT {
            data.truncate(MAX_INPUT);
        }
    }
    data
}

/// Cuts, drops or repeats whole markup spans: from one `<` (or `{`/line start) to another,
/// so elements lose their ends, move, or nest where they should not.
fn structural_bytes(u: &mut Unstructured<'_>, data: &mut Vec<u8>) {
    let marks: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'<' | b'{' | b'[' | b'\n' | b'\t'))
        .map(|(i, _)| i)
        .collect();
    if marks.len() < 2 {
        return;
    }
    let a = marks[index(u, marks.len())];
    let b = marks[index(u, marks.len())];
    let (from, to) = (a.min(b), a.max(b));
    match index(u, 3) {
        0 => {
            data.drain(from..to);
        }
        1 => {
            let span = data[from..to].to_vec();
            let times = 1 + index(u, 50);
            for _ in 0..times {
                data.splice(to..to, span.iter().copied());
            }
        }
        _ => {
            // Move the span elsewhere.
            let span: Vec<u8> = data.drain(from..to).collect();
            let at = index(u, data.len() + 1);
            data.splice(at..at, span);
        }
    }
}

/// Mutates one of `seeds` with 1 to 6 structural changes (see the module documentation).
pub fn mutate_json(u: &mut Unstructured<'_>, seeds: &[Value]) -> Value {
    let mut value = pick(u, seeds).cloned().unwrap_or(Value::Null);
    let rounds = u.int_in_range(1..=6u8).unwrap_or(1);
    for _ in 0..rounds {
        let op = u.int_in_range(0..=9u8).unwrap_or(0);
        let graft = if op == 4 {
            pick(u, seeds).map(|s| random_node(u, s).clone())
        } else {
            None
        };
        let node = random_node_mut(u, &mut value);
        match op {
            0 => match node {
                Value::Object(map) if !map.is_empty() => {
                    let i = index(u, map.len());
                    if let Some(key) = map.keys().nth(i).cloned() {
                        map.remove(&key);
                    }
                }
                Value::Array(items) if !items.is_empty() => {
                    items.remove(index(u, items.len()));
                }
                _ => *node = Value::Null,
            },
            1..=3 => *node = interesting(u),
            4 => {
                if let Some(g) = graft {
                    *node = g;
                }
            }
            5 => retype(node),
            6 => {
                if let Value::Array(items) = node {
                    if let Some(first) = items.first().cloned() {
                        // Long lists, but at most about 64 KiB more per round: multi-megabyte
                        // documents only measure the JSON parser of a debug build.
                        let size = serde_json::to_vec(&first).map_or(1, |v| v.len().max(1));
                        let times = (1 + index(u, 300)).min((64 * 1024 / size).max(1));
                        items.extend(std::iter::repeat_n(first, times));
                    }
                }
            }
            7 => {
                if let Value::Object(map) = node {
                    // A key the reader does not know, or a known key in other case.
                    let key = map.keys().next().cloned().unwrap_or_default();
                    let renamed = if u.ratio(1, 2).unwrap_or(false) {
                        key.to_uppercase()
                    } else {
                        format!("{key}_x")
                    };
                    let moved = map.remove(&key).unwrap_or(Value::Null);
                    map.insert(renamed, moved);
                }
            }
            8 => {
                let depth = 1 + index(u, 120);
                let mut nested = std::mem::take(node);
                for i in 0..depth {
                    nested = if i % 2 == 0 {
                        Value::Array(vec![nested])
                    } else {
                        let mut m = Map::new();
                        m.insert("value".into(), nested);
                        Value::Object(m)
                    };
                }
                *node = nested;
            }
            _ => {
                if let Value::String(s) = node {
                    mutate_string(u, s);
                } else {
                    *node = interesting(u);
                }
            }
        }
    }
    value
}

fn children(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    }
}

/// A node reached by a random walk from the root: cheap (no list of every node), and it
/// reaches leaves as often as containers.
fn random_node<'a>(u: &mut Unstructured<'_>, value: &'a Value) -> &'a Value {
    let len = children(value);
    if len == 0 || u.ratio(1u8, 5).unwrap_or(true) {
        return value;
    }
    let i = index(u, len);
    let child = match value {
        Value::Object(map) => map.values().nth(i),
        Value::Array(items) => items.get(i),
        _ => None,
    };
    match child {
        Some(child) => random_node(u, child),
        None => value,
    }
}

fn random_node_mut<'a>(u: &mut Unstructured<'_>, value: &'a mut Value) -> &'a mut Value {
    let len = children(value);
    if len == 0 || u.ratio(1u8, 5).unwrap_or(true) {
        return value;
    }
    let i = index(u, len);
    match value {
        Value::Object(map) => match map.values_mut().nth(i) {
            Some(child) => random_node_mut(u, child),
            None => unreachable_child(),
        },
        Value::Array(items) => match items.get_mut(i) {
            Some(child) => random_node_mut(u, child),
            None => unreachable_child(),
        },
        _ => unreachable_child(),
    }
}

/// A node outside the tree, for the walk's impossible branches (the index is always within
/// the container it was drawn for); changing it changes nothing.
fn unreachable_child() -> &'static mut Value {
    Box::leak(Box::new(Value::Null))
}

/// The same meaning in another JSON type: `"12"` for `12`, `1` for `true`, `[x]` for `x`.
fn retype(node: &mut Value) {
    *node = match std::mem::take(node) {
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Array(vec![Value::String(s)])),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::from(u8::from(b)),
        Value::Null => Value::String(String::new()),
        Value::Array(mut items) => items.pop().unwrap_or(Value::Null),
        Value::Object(map) => Value::Array(map.into_iter().map(|(_, v)| v).collect()),
    };
}

fn mutate_string(u: &mut Unstructured<'_>, s: &mut String) {
    const PIECES: &[&str] = &[
        "",
        "\0",
        "\u{202e}",
        "é",
        "🦀",
        "\r\n",
        "%",
        "%00",
        "..",
        "/",
        "\\",
        "'",
        "\"",
        "<",
        "&",
        "-1",
        "0",
        "99999999999999999999",
        "1e309",
        "NaN",
        "2024-02-30",
        "2024-13-01T25:61:61Z",
        "T",
        "Z",
        "+14:00",
        " ",
        "\t",
    ];
    match index(u, 4) {
        0 => s.clear(),
        1 => {
            let times = 1 + index(u, 200);
            *s = s.repeat(times.min((1 << 16) / s.len().max(1)).max(1));
        }
        2 => {
            let cut = index(u, s.len() + 1);
            let mut at = cut;
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.truncate(at);
        }
        _ => {
            let piece = pick(u, PIECES).copied().unwrap_or_default();
            let mut at = index(u, s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, piece);
        }
    }
}

/// A value a reader may not expect: boundaries of every number type, empty and huge
/// strings, the wrong container.
fn interesting(u: &mut Unstructured<'_>) -> Value {
    match index(u, 20) {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary().unwrap_or(false)),
        2 => Value::from(0),
        3 => Value::from(-1),
        4 => Value::from(i64::MAX),
        5 => Value::from(i64::MIN),
        6 => Value::from(u64::MAX),
        7 => Value::from(f64::MAX),
        8 => Value::from(-0.5),
        9 => Value::from(1e-300),
        10 => Value::from(""),
        11 => Value::from("x".repeat(1 + index(u, 70_000))),
        12 => Value::Array(Vec::new()),
        13 => Value::Object(Map::new()),
        14 => Value::from(u.arbitrary::<String>().unwrap_or_default()),
        15 => Value::from(u.arbitrary::<i64>().unwrap_or_default()),
        16 => Value::from(u.arbitrary::<f64>().unwrap_or_default()),
        17 => Value::from(i64::from(u32::MAX) + 1),
        18 => Value::from("0000-00-00T00:00:00"),
        _ => Value::from("\u{0}\u{202e}é🦀"),
    }
}

fn index(u: &mut Unstructured<'_>, len: usize) -> usize {
    if len <= 1 {
        0
    } else {
        u.choose_index(len).unwrap_or(0)
    }
}

fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(index(u, items.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_case_is_reproduced_by_its_seed_and_number() {
        let make = |case| {
            let choices = Generator::new(7, case).bytes(512);
            mutate_json(&mut Unstructured::new(&choices), &[json!({"a": [1, "b"]})])
        };
        assert_eq!(make(3), make(3));
        assert!((0..20).any(|c| make(c) != make(0)));
    }

    #[test]
    fn mutations_change_the_samples_in_many_ways() {
        let seed = json!({"siret": "12345678900011", "lines": [{"amount": 1.5}], "ok": true});
        let mut seen = std::collections::BTreeSet::new();
        for case in 0..300 {
            let choices = Generator::new(1, case).bytes(512);
            seen.insert(
                mutate_json(
                    &mut Unstructured::new(&choices),
                    std::slice::from_ref(&seed),
                )
                .to_string(),
            );
        }
        assert!(seen.len() > 200, "only {} distinct inputs", seen.len());
        let xml = b"<a><b>1</b><c x=\"y\">t</c></a>".to_vec();
        let mut seen = std::collections::BTreeSet::new();
        for case in 0..300 {
            let choices = Generator::new(1, case).bytes(512);
            seen.insert(mutate_bytes(
                &mut Unstructured::new(&choices),
                std::slice::from_ref(&xml),
                XML_TOKENS,
            ));
        }
        assert!(seen.len() > 200, "only {} distinct inputs", seen.len());
    }

    #[test]
    fn a_panic_is_reported_with_the_target_seed_and_input() {
        let outcome = catch_unwind(|| {
            bytes("demo", &[b"abc".to_vec()], &[], 50, |input| {
                assert!(input.len() < 4, "too long");
            })
        });
        let panic = outcome.expect_err("some mutation makes the input longer");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("fuzz target `demo` panicked on case"),
            "{message}"
        );
        assert!(
            message.contains(SEED_VAR) && message.contains("input: b\""),
            "{message}"
        );
    }
}
