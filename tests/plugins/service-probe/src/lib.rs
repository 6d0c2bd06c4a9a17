//! A plugin that exercises every host service, so the host's end-to-end tests cover them
//! independently of any provider: HTTP through the host, quotas declared from config, the
//! retry helper, OAuth2 client credentials, per-instance state and a scheduled task.

use passerelle_plugin_api::prelude::*;
use std::time::Duration;

pub struct ServiceProbe;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL
    ///
    /// Where the probe emulator listens.
    pub base_url: String,
    /// Client id
    ///
    /// OAuth2 client id at `{base_url}/token`.
    #[serde(default)]
    pub client_id: String,
    /// Client secret
    ///
    /// OAuth2 client secret.
    pub client_secret: Option<Secret>,
    /// Attempts
    ///
    /// Attempts of a call before giving up.
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 10))]
    pub attempts: u32,
    /// Delay (ms)
    ///
    /// Wait between attempts.
    #[serde(default)]
    pub delay_ms: u64,
    /// Requests per second
    ///
    /// Quota declared to the host.
    pub per_second: Option<u32>,
    /// Requests per day
    ///
    /// Daily quota declared to the host.
    pub per_day: Option<u32>,
    /// Tick interval (s)
    ///
    /// Interval of the `tick` task.
    #[serde(default = "one")]
    pub tick_interval: u64,
    /// Tick start delay (s)
    ///
    /// Delay of the first `tick` after the host starts.
    #[serde(default)]
    pub tick_delay: u64,
    /// Panicking ticks
    ///
    /// Every second tick panics (to check the schedule goes on).
    #[serde(default)]
    pub tick_panics: bool,
}

fn three() -> u32 {
    3
}

fn one() -> u64 {
    1
}

/// `other.fetch`: GET a path with the retry policy.
pub struct Fetch;

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct FetchInput {
    pub path: String,
    #[serde(default = "yes")]
    pub idempotent: bool,
}

fn yes() -> bool {
    true
}

impl Operation for Fetch {
    const NAME: &'static str = "other.fetch";
    type Input = FetchInput;
    type Output = serde_json::Value;
}

/// `other.burst`: many GETs of a path from several threads, through the host's quotas.
pub struct Burst;

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct BurstInput {
    pub path: String,
    pub count: u32,
    #[serde(default = "one_u32")]
    pub threads: u32,
}

fn one_u32() -> u32 {
    1
}

impl Operation for Burst {
    const NAME: &'static str = "other.burst";
    type Input = BurstInput;
    type Output = serde_json::Value;
}

/// `other.protected`: GET `/protected` with an OAuth2 token.
pub struct Protected;

impl Operation for Protected {
    const NAME: &'static str = "other.protected";
    type Input = serde_json::Value;
    type Output = serde_json::Value;
}

fn policy(c: &Config) -> RetryPolicy {
    RetryPolicy::new(c.attempts, Duration::from_millis(c.delay_ms))
}

fn oauth(c: &Config) -> OAuth2Client {
    let secret = c.client_secret.as_ref().map(Secret::expose).unwrap_or("");
    OAuth2Client::new(&format!("{}/token", c.base_url), &c.client_id, secret)
}

impl Plugin for ServiceProbe {
    type Config = Config;

    fn manifest() -> Manifest {
        let mut m = Manifest::new("service-probe", "Service probe", "0.1.0", Category::Other);
        m.tasks = vec![TaskDecl {
            name: "tick".into(),
            description: "Counts its runs in state".into(),
            interval_field: "tick_interval".into(),
            start_delay_field: "tick_delay".into(),
        }];
        m
    }

    fn quotas(c: &Config) -> Quotas {
        Quotas {
            per_second: c.per_second,
            per_minute: None,
            per_day: c.per_day,
        }
    }

    fn test(c: &Config, host: &Host<'_>) -> TestReport {
        let mut report = TestReport::new();
        let url = format!("{}/health", c.base_url);
        report.step("reach service", || {
            let retried = policy(c).send(host, &HttpRequest::get(&url), Idempotency::Idempotent);
            let detail = retried.describe();
            match retried.result {
                Ok(r) if r.is_success() => Ok(Check::ok((), detail)),
                Ok(r) => Err(format!("HTTP {} after {detail}", r.status)),
                Err(e) => Err(format!("{e} after {detail}")),
            }
        });
        if c.client_secret.is_some() {
            report.step("get token", || {
                oauth(c)
                    .token(host)
                    .map(|_| Check::ok((), "token obtained"))
                    .map_err(|e| e.message)
            });
        }
        report.finish("probe reachable")
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<Fetch>(|input, c, host| {
            let idem = if input.idempotent {
                Idempotency::Idempotent
            } else {
                Idempotency::NotIdempotent
            };
            let url = format!("{}{}", c.base_url, input.path);
            let retried = policy(c).send(host, &HttpRequest::get(url), idem);
            Ok(serde_json::json!({
                "status": retried.result.as_ref().map(|r| r.status).ok(),
                "error": retried.result.as_ref().err().map(|e| e.message.clone()),
                "attempts": retried.attempts,
            }))
        })
        .serve::<Burst>(|input, c, host| {
            let url = format!("{}{}", c.base_url, input.path);
            let per_thread = input.count / input.threads.max(1);
            let started = host.now_unix_ms();
            let results: Vec<(u32, u32, u32)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..input.threads.max(1))
                    .map(|_| {
                        s.spawn(|| {
                            let (mut ok, mut rejected, mut failed) = (0, 0, 0);
                            for _ in 0..per_thread {
                                match host.http(&HttpRequest::get(&url)) {
                                    Ok(r) if r.status == 429 => rejected += 1,
                                    Ok(r) if r.is_success() => ok += 1,
                                    _ => failed += 1,
                                }
                            }
                            (ok, rejected, failed)
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            let elapsed = host.now_unix_ms().saturating_sub(started);
            let sum = |f: fn(&(u32, u32, u32)) -> u32| results.iter().map(f).sum::<u32>();
            Ok(serde_json::json!({
                "ok": sum(|r| r.0),
                "rejected": sum(|r| r.1),
                "failed": sum(|r| r.2),
                "elapsed_ms": elapsed,
            }))
        })
        .serve::<Protected>(|_, c, host| {
            let r = oauth(c).send(host, &HttpRequest::get(format!("{}/protected", c.base_url)))?;
            Ok(serde_json::json!({"status": r.status, "body": r.json::<serde_json::Value>().ok()}))
        });
    }

    fn run_task(task: &str, c: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
        if task != "tick" {
            return Err(PluginError::new(
                ErrorKind::Unsupported,
                format!("no task {task}"),
            ));
        }
        let n: u64 = host.state_get("ticks")?.unwrap_or(0) + 1;
        host.state_put("ticks", &n)?;
        if c.tick_panics && n.is_multiple_of(2) {
            panic!("tick {n} panicked on purpose");
        }
        Ok(TaskOutcome::new(format!("tick {n}")))
    }
}

export_plugin!(ServiceProbe);
