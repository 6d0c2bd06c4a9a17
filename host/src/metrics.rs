//! What an operator's Prometheus scrapes at `/metrics`: the host's counters, gauges and
//! latency histograms, in the Prometheus text exposition format (version 0.0.4).
//!
//! Recording goes through the `metrics` facade, so an instrumented site is one call of a
//! function below and needs no registry handed down to it; `metrics-exporter-prometheus`
//! keeps the values and renders them. Until [`handle`] installs the recorder (`serve` does,
//! first thing), recording is a no-op, so one-shot CLI commands pay nothing.
//!
//! Every metric name and label set is defined here, once, so the README's list and the
//! exposition cannot drift apart, and label values stay bounded: instance ids, operation and
//! task names declared by loaded plugins, HTTP status codes and fixed outcome words. Never a
//! URL, an input value or anything a caller chooses freely.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use passerelle_plugin_api::{ErrorKind, HttpErrorKind};
use std::sync::OnceLock;
use std::time::Duration;

/// Capability calls, by `instance`, `operation` and `outcome` (`ok`, a plugin error kind
/// such as `not_found` or `unavailable`, `busy`, `waited_too_long`).
pub const CAPABILITY_CALLS: &str = "passerelle_capability_calls_total";
/// Duration of capability calls (admission wait included), by `instance`, `operation`, `outcome`.
pub const CAPABILITY_CALL_SECONDS: &str = "passerelle_capability_call_duration_seconds";
/// Wait of a capability call for a free slot of its instance (admission), by `instance`.
pub const ADMISSION_WAIT_SECONDS: &str = "passerelle_admission_wait_seconds";
/// Requests plugins sent to their providers that got an answer, by `instance` and `status`.
pub const PROVIDER_HTTP_REQUESTS: &str = "passerelle_provider_http_requests_total";
/// Requests plugins sent that got no answer, by `instance` and `kind` (`connect`, `tls`,
/// `timeout`, `quota`, `invalid_url`, `other`).
pub const PROVIDER_HTTP_FAILURES: &str = "passerelle_provider_http_failures_total";
/// Duration of provider requests, answered or not, by `instance`.
pub const PROVIDER_HTTP_SECONDS: &str = "passerelle_provider_http_request_duration_seconds";
/// Provider requests that waited for the instance's rate limit, by `instance`.
pub const QUOTA_WAITS: &str = "passerelle_quota_waits_total";
/// How long they waited, by `instance`.
pub const QUOTA_WAIT_SECONDS: &str = "passerelle_quota_wait_seconds";
/// Provider requests refused because the daily quota was spent, by `instance`.
pub const QUOTA_EXHAUSTED: &str = "passerelle_quota_daily_exhausted_total";
/// Requests left in today's quota (UTC), by `instance`; only instances with a daily quota.
pub const QUOTA_DAILY_REMAINING: &str = "passerelle_quota_daily_remaining";
/// Scheduled and on-demand task runs, by `instance`, `task` and `outcome` (`ok`, `failed`).
pub const TASK_RUNS: &str = "passerelle_task_runs_total";
/// Duration of task runs, by `instance` and `task`.
pub const TASK_RUN_SECONDS: &str = "passerelle_task_run_duration_seconds";
/// Webhook deliveries, by `outcome` (`delivered`, `retry`, `failed`).
pub const WEBHOOK_DELIVERIES: &str = "passerelle_webhook_deliveries_total";
/// Events waiting in the outbox for delivery.
pub const WEBHOOK_BACKLOG: &str = "passerelle_webhook_backlog";
/// Plugin files refused, by `stage` (`startup`, `hot_reload`).
pub const PLUGIN_LOAD_FAILURES: &str = "passerelle_plugin_load_failures_total";
/// Always 1, with the host's `version` as a label.
pub const BUILD_INFO: &str = "passerelle_build_info";

/// Content type of the exposition, as Prometheus expects it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets between scrapes, so that
/// memory stays bounded however rarely Prometheus scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Buckets for calls and requests: from a local emulator (ms) to a slow provider (minutes).
const CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Buckets for quota and admission waits: from a millisecond to a minute.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0,
];
/// Buckets for task runs: up to the task deadline (30 min).
const TASK_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// The rendering side of the process-wide recorder, installing it on first use.
///
/// When another recorder is already installed (only in tests that install their own), the
/// handle renders a recorder of its own that nothing records into.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder is already installed; /metrics shows nothing");
        }
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded at scrape time only");
        }
        handle
    })
}

/// The exporter's configuration: histograms (not summaries) with the buckets above, so that
/// Prometheus can aggregate them across instances and hosts.
pub fn builder() -> PrometheusBuilder {
    let mut b = PrometheusBuilder::new();
    for (name, buckets) in [
        (CAPABILITY_CALL_SECONDS, CALL_BUCKETS),
        (PROVIDER_HTTP_SECONDS, CALL_BUCKETS),
        (ADMISSION_WAIT_SECONDS, WAIT_BUCKETS),
        (QUOTA_WAIT_SECONDS, WAIT_BUCKETS),
        (TASK_RUN_SECONDS, TASK_BUCKETS),
    ] {
        // Only an empty bucket list is refused, and these are constants.
        b = match b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
    }
    b
}

/// The exposition of every metric recorded so far.
pub fn render() -> String {
    handle().render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        CAPABILITY_CALLS,
        "Capability calls by instance, operation and outcome"
    );
    describe_histogram!(
        CAPABILITY_CALL_SECONDS,
        Unit::Seconds,
        "Duration of capability calls, admission wait included"
    );
    describe_histogram!(
        ADMISSION_WAIT_SECONDS,
        Unit::Seconds,
        "Wait of capability calls for a free slot of their instance"
    );
    describe_counter!(
        PROVIDER_HTTP_REQUESTS,
        "Provider HTTP requests answered, by instance and status"
    );
    describe_counter!(
        PROVIDER_HTTP_FAILURES,
        "Provider HTTP requests without an answer, by instance and kind"
    );
    describe_histogram!(
        PROVIDER_HTTP_SECONDS,
        Unit::Seconds,
        "Duration of provider HTTP requests"
    );
    describe_counter!(
        QUOTA_WAITS,
        "Provider requests that waited for the rate limit"
    );
    describe_histogram!(
        QUOTA_WAIT_SECONDS,
        Unit::Seconds,
        "Time provider requests waited for the rate limit"
    );
    describe_counter!(
        QUOTA_EXHAUSTED,
        "Provider requests refused because the daily quota was spent"
    );
    describe_gauge!(
        QUOTA_DAILY_REMAINING,
        "Requests left in today's (UTC) daily quota"
    );
    describe_counter!(TASK_RUNS, "Task runs by instance, task and outcome");
    describe_histogram!(TASK_RUN_SECONDS, Unit::Seconds, "Duration of task runs");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts by outcome");
    describe_gauge!(WEBHOOK_BACKLOG, "Events waiting in the outbox for delivery");
    describe_counter!(PLUGIN_LOAD_FAILURES, "Plugin files refused, by stage");
    describe_gauge!(BUILD_INFO, "Passerelle version; always 1");
}

/// How a capability call ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// The plugin (or the host on its behalf: deadline, panic) returned this error kind.
    Error(ErrorKind),
    /// Refused at once: too many calls already waited.
    Busy,
    /// Gave up waiting for a free slot.
    WaitedTooLong,
    /// The instance's configuration could not be used.
    Config,
}

impl CallOutcome {
    /// The outcome of a call's result.
    pub fn of<T>(result: &Result<T, crate::runner::RunError>) -> Self {
        use crate::runner::RunError;
        match result {
            Ok(_) => CallOutcome::Ok,
            Err(RunError::Plugin(e)) => CallOutcome::Error(e.kind),
            Err(RunError::Busy(_)) => CallOutcome::Busy,
            Err(RunError::WaitedTooLong { .. }) => CallOutcome::WaitedTooLong,
            Err(RunError::Config(_) | RunError::Disabled(_)) => CallOutcome::Config,
            Err(RunError::NoProvider(_) | RunError::Ambiguous { .. }) => {
                CallOutcome::Error(ErrorKind::Unsupported)
            }
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Error(kind) => error_kind_label(kind),
            CallOutcome::Busy => "busy",
            CallOutcome::WaitedTooLong => "waited_too_long",
            CallOutcome::Config => "config",
        }
    }
}

/// The snake_case name of an error kind, as plugins and the API spell it.
fn error_kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Config => "config",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Upstream => "upstream",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Panic => "panic",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Internal => "internal",
    }
}

/// One capability call served (or refused) for an instance.
pub fn capability_call(instance: &str, operation: &str, outcome: CallOutcome, took: Duration) {
    let labels = [
        ("instance", instance.to_owned()),
        ("operation", operation.to_owned()),
        ("outcome", outcome.label().to_owned()),
    ];
    counter!(CAPABILITY_CALLS, &labels).increment(1);
    histogram!(CAPABILITY_CALL_SECONDS, &labels).record(took.as_secs_f64());
}

/// A capability call got its slot after waiting `waited`.
pub fn admission_wait(instance: &str, waited: Duration) {
    histogram!(ADMISSION_WAIT_SECONDS, "instance" => instance.to_owned())
        .record(waited.as_secs_f64());
}

/// A provider request answered with `status`.
pub fn provider_response(instance: &str, status: u16, took: Duration) {
    counter!(PROVIDER_HTTP_REQUESTS, "instance" => instance.to_owned(), "status" => status.to_string())
        .increment(1);
    histogram!(PROVIDER_HTTP_SECONDS, "instance" => instance.to_owned()).record(took.as_secs_f64());
}

/// A provider request that got no answer.
pub fn provider_failure(instance: &str, kind: HttpErrorKind, took: Duration) {
    let kind = match kind {
        HttpErrorKind::InvalidUrl => "invalid_url",
        HttpErrorKind::Connect => "connect",
        HttpErrorKind::Tls => "tls",
        HttpErrorKind::Timeout => "timeout",
        HttpErrorKind::Quota => "quota",
        HttpErrorKind::Other => "other",
    };
    counter!(PROVIDER_HTTP_FAILURES, "instance" => instance.to_owned(), "kind" => kind)
        .increment(1);
    histogram!(PROVIDER_HTTP_SECONDS, "instance" => instance.to_owned()).record(took.as_secs_f64());
}

/// A provider request waited `waited` for the instance's rate limit.
pub fn quota_wait(instance: &str, waited: Duration) {
    counter!(QUOTA_WAITS, "instance" => instance.to_owned()).increment(1);
    histogram!(QUOTA_WAIT_SECONDS, "instance" => instance.to_owned()).record(waited.as_secs_f64());
}

/// What is left of an instance's daily quota after the latest request (or refusal).
pub fn quota_daily_remaining(instance: &str, remaining: u64) {
    // Daily quotas are u32, so the value is exact in an f64.
    gauge!(QUOTA_DAILY_REMAINING, "instance" => instance.to_owned()).set(remaining as f64);
}

/// A provider request refused because the daily quota was spent.
pub fn quota_exhausted(instance: &str) {
    counter!(QUOTA_EXHAUSTED, "instance" => instance.to_owned()).increment(1);
    quota_daily_remaining(instance, 0);
}

/// A task run that ended.
pub fn task_run(instance: &str, task: &str, ok: bool, took: Duration) {
    counter!(TASK_RUNS,
        "instance" => instance.to_owned(),
        "task" => task.to_owned(),
        "outcome" => if ok { "ok" } else { "failed" })
    .increment(1);
    histogram!(TASK_RUN_SECONDS, "instance" => instance.to_owned(), "task" => task.to_owned())
        .record(took.as_secs_f64());
}

/// How one webhook delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver acknowledged it (2xx).
    Delivered,
    /// It failed and will be tried again later.
    Retry,
    /// It failed for good (retries exhausted).
    Failed,
}

/// One webhook delivery attempt ended (for the events outbox).
pub fn webhook_delivery(outcome: DeliveryOutcome) {
    let outcome = match outcome {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Retry => "retry",
        DeliveryOutcome::Failed => "failed",
    };
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// How many deliveries wait in the outbox now (for the events outbox).
pub fn webhook_backlog(pending: u64) {
    gauge!(WEBHOOK_BACKLOG).set(pending as f64);
}

/// Where a plugin file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// When the host started.
    Startup,
    /// Dropped into the plugin directory of a running server.
    HotReload,
}

/// A plugin file was refused.
pub fn plugin_load_failure(stage: LoadStage) {
    let stage = match stage {
        LoadStage::Startup => "startup",
        LoadStage::HotReload => "hot_reload",
    };
    counter!(PLUGIN_LOAD_FAILURES, "stage" => stage).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders what `record` records, with a recorder of this test's own.
    fn rendered(record: impl FnOnce()) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, record);
        handle.render()
    }

    #[test]
    fn capability_calls_count_by_instance_operation_and_outcome_with_buckets() {
        let text = rendered(|| {
            capability_call(
                "s",
                "company.lookup",
                CallOutcome::Ok,
                Duration::from_millis(20),
            );
            capability_call(
                "s",
                "company.lookup",
                CallOutcome::Ok,
                Duration::from_millis(30),
            );
            capability_call(
                "s",
                "company.lookup",
                CallOutcome::Error(ErrorKind::NotFound),
                Duration::from_millis(3),
            );
        });
        assert!(
            text.contains(r#"passerelle_capability_calls_total{instance="s",operation="company.lookup",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"passerelle_capability_calls_total{instance="s",operation="company.lookup",outcome="not_found"} 1"#),
            "{text}"
        );
        // A histogram with our buckets, not a summary: 20 ms and 30 ms are both <= 50 ms.
        assert!(
            text.contains(r#"passerelle_capability_call_duration_seconds_bucket{instance="s",operation="company.lookup",outcome="ok",le="0.05"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"passerelle_capability_call_duration_seconds_bucket{instance="s",operation="company.lookup",outcome="ok",le="0.01"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn every_error_kind_has_its_api_spelling() {
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::Config,
            ErrorKind::NotFound,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::RateLimited,
            ErrorKind::Unavailable,
            ErrorKind::Upstream,
            ErrorKind::Unsupported,
            ErrorKind::Panic,
            ErrorKind::Timeout,
            ErrorKind::Internal,
        ] {
            let serde = serde_json::to_value(kind).expect("kind serialises");
            assert_eq!(Some(error_kind_label(kind)), serde.as_str(), "{kind:?}");
        }
    }

    #[test]
    fn quota_provider_task_webhook_and_loader_metrics_render() {
        let text = rendered(|| {
            provider_response("p", 503, Duration::from_millis(1));
            provider_failure("p", HttpErrorKind::Connect, Duration::from_millis(1));
            quota_wait("p", Duration::from_millis(400));
            quota_daily_remaining("p", 7);
            quota_exhausted("q");
            task_run("p", "tick", false, Duration::from_millis(5));
            webhook_delivery(DeliveryOutcome::Retry);
            webhook_backlog(3);
            plugin_load_failure(LoadStage::HotReload);
        });
        for line in [
            r#"passerelle_provider_http_requests_total{instance="p",status="503"} 1"#,
            r#"passerelle_provider_http_failures_total{instance="p",kind="connect"} 1"#,
            r#"passerelle_provider_http_request_duration_seconds_count{instance="p"} 2"#,
            r#"passerelle_quota_waits_total{instance="p"} 1"#,
            r#"passerelle_quota_wait_seconds_bucket{instance="p",le="0.5"} 1"#,
            r#"passerelle_quota_daily_remaining{instance="p"} 7"#,
            r#"passerelle_quota_daily_remaining{instance="q"} 0"#,
            r#"passerelle_quota_daily_exhausted_total{instance="q"} 1"#,
            r#"passerelle_task_runs_total{instance="p",task="tick",outcome="failed"} 1"#,
            r#"passerelle_webhook_deliveries_total{outcome="retry"} 1"#,
            "passerelle_webhook_backlog 3",
            r#"passerelle_plugin_load_failures_total{stage="hot_reload"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
    }
}
