//! A plugin that misbehaves on request, so the host's isolation can be tested against the
//! real failure modes of native code: a segfault, an abort, an infinite loop, an allocation
//! that grows until memory runs out, a panic, and a panic on a thread while another thread
//! is inside a host callback.
//!
//! The behaviour comes from the configuration (for `test`) or from the input of
//! `other.misbehave` (overriding the configuration), so one instance can crash in one call
//! and answer the next. `other.echo` is the healthy call: it goes through the host's log,
//! clock and state services, so a test can check that callbacks still work after a crash.
//! Every call also writes to stdout and stderr (with the configured token), which must
//! neither break the worker's protocol nor leak the token into the host's log.

use passerelle_plugin_api::prelude::*;
use std::time::Duration;

pub struct Misbehave;

/// What the plugin does when called.
#[derive(Serialize, Deserialize, JsonSchema, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Succeed
    #[default]
    Succeed,
    /// Segfault (write through a null pointer)
    Segfault,
    /// Abort the process
    Abort,
    /// Spin forever
    Loop,
    /// Allocate and touch memory in 16 MB chunks until `alloc_mb`
    Allocate,
    /// Panic
    Panic,
    /// Panic on a thread while another thread waits in a host callback
    PanicInCallback,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Behaviour
    ///
    /// What to do when called.
    #[serde(default)]
    pub behaviour: Behaviour,
    /// Allocation (MB)
    ///
    /// How much memory the `allocate` behaviour touches before giving up.
    #[serde(default = "default_alloc_mb")]
    pub alloc_mb: u64,
    /// Token
    ///
    /// A secret the plugin writes to stderr and puts in its panic messages on purpose.
    pub token: Option<Secret>,
}

fn default_alloc_mb() -> u64 {
    8192
}

/// Input of `other.misbehave`.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct MisbehaveInput {
    /// Overrides the configured behaviour.
    pub behaviour: Option<Behaviour>,
}

/// `other.misbehave`: does what the input (or the configuration) says.
pub struct MisbehaveOp;

impl Operation for MisbehaveOp {
    const NAME: &'static str = "other.misbehave";
    type Input = MisbehaveInput;
    type Output = serde_json::Value;
}

/// `other.echo`: returns its input with a counter kept in state and the host's clock.
pub struct Echo;

impl Operation for Echo {
    const NAME: &'static str = "other.echo";
    type Input = serde_json::Value;
    type Output = serde_json::Value;
}

fn token(config: &Config) -> &str {
    config.token.as_ref().map(Secret::expose).unwrap_or("none")
}

const CHUNK: usize = 16 << 20;

/// Does `behaviour`; returns only when it is one that returns.
fn misbehave(
    behaviour: Behaviour,
    config: &Config,
    host: &Host<'_>,
) -> Result<String, PluginError> {
    let token = token(config);
    // Noise on both standard streams: stdout must not reach the worker protocol, stderr
    // reaches the host's log redacted.
    println!("misbehave: about to {behaviour:?}");
    eprintln!("misbehave: about to {behaviour:?} holding token {token}");
    // The same secret as it travels in a form body and in JSON: encoded, it must be masked too.
    let form: String = token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    eprintln!(
        "misbehave: client_secret={form} json={}",
        serde_json::json!({ "t": token })
    );
    host.log(
        LogLevel::Info,
        format!("about to {behaviour:?} with token {token}"),
    );
    match behaviour {
        Behaviour::Succeed => Ok("behaved".to_owned()),
        Behaviour::Segfault => {
            let target = std::hint::black_box(std::ptr::null_mut::<u64>());
            // SAFETY: not safe at all; this is the point of the fixture.
            unsafe { target.write_volatile(0xdead) };
            Ok("survived a null write".to_owned())
        }
        Behaviour::Abort => std::process::abort(),
        Behaviour::Loop => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Behaviour::Allocate => {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            let wanted = usize::try_from(config.alloc_mb).unwrap_or(usize::MAX) / 16;
            for _ in 0..wanted {
                // `vec!` of a non-zero byte really touches every page.
                chunks.push(std::hint::black_box(vec![1u8; CHUNK]));
            }
            Ok(format!("allocated {} MB", chunks.len() * 16))
        }
        Behaviour::Panic => panic!("misbehave panicked holding token {token}"),
        Behaviour::PanicInCallback => {
            std::thread::scope(|s| {
                // One thread sits in a host callback…
                s.spawn(|| host.sleep(Duration::from_millis(300)));
                // …while another uses the host, gets an answer and panics on it.
                s.spawn(|| {
                    let _ = host.state_put("before-panic", &true);
                    let bad: Result<serde_json::Value, PluginError> =
                        host.call("state.put", &"not an object");
                    let unknown: Result<serde_json::Value, PluginError> =
                        host.call("no.such.service", &serde_json::Value::Null);
                    panic!(
                        "misbehave panicked in a callback path ({} / {}) holding token {token}",
                        bad.err().map(|e| e.message).unwrap_or_default(),
                        unknown.err().map(|e| e.message).unwrap_or_default()
                    );
                });
            });
            Ok("unreachable: the scope re-raises the panic".to_owned())
        }
    }
}

impl Plugin for Misbehave {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("misbehave", "Misbehaving fixture", "0.1.0", Category::Other)
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        let mut report = TestReport::new();
        report.step("behave", || {
            misbehave(config.behaviour, config, host)
                .map(|detail| Check::ok((), detail))
                .map_err(|e| e.message)
        });
        report.finish("fine")
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<MisbehaveOp>(|input, config, host| {
            let behaviour = input.behaviour.unwrap_or(config.behaviour);
            misbehave(behaviour, config, host).map(|detail| serde_json::json!({ "detail": detail }))
        })
        .serve::<Echo>(|input, _config, host| {
            println!("misbehave: echo");
            let count: u64 = host.state_get("echo-count")?.unwrap_or(0) + 1;
            host.state_put("echo-count", &count)?;
            host.log(LogLevel::Debug, format!("echo #{count}"));
            Ok(serde_json::json!({
                "echo": input,
                "count": count,
                "now_ms": host.now_unix_ms(),
                "pid": std::process::id(),
            }))
        });
    }
}

export_plugin!(Misbehave);
