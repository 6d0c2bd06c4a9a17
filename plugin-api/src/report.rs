//! The result of a test routine: an overall status, a summary, and the steps that led to it
//! ("get token", "reach API", "check structure"), each timed.
//!
//! Names and details are English; a detail or summary built from a [`Text::localized`] also
//! carries its Fluent message, which the host translates (see [`crate::i18n`]). Step names are
//! translated by their `step-…` id, with no code.

use crate::i18n::{Message, Text};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Outcome of a step or of a whole report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Skipped,
    Warning,
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Warning => "warning",
            Status::Failed => "failed",
        })
    }
}

/// One step of a test routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(default)]
    pub detail: String,
    /// The Fluent message translating `detail` (added in plugin API 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

impl Step {
    /// A step named `name` with its detail in English and, if given, as a message.
    pub fn new(name: &str, status: Status, duration_ms: u64, detail: impl Into<Text>) -> Self {
        let detail = detail.into();
        Step {
            name: name.to_owned(),
            status,
            duration_ms,
            detail: detail.english,
            message: detail.message,
        }
    }
}

/// What a passing step found: a value for the next step, a detail for the reader, and
/// whether it deserves a warning.
#[derive(Debug)]
pub struct Check<T> {
    value: T,
    detail: Text,
    warning: bool,
}

impl<T> Check<T> {
    pub fn ok(value: T, detail: impl Into<Text>) -> Self {
        Check {
            value,
            detail: detail.into(),
            warning: false,
        }
    }

    pub fn warning(value: T, detail: impl Into<Text>) -> Self {
        Check {
            value,
            detail: detail.into(),
            warning: true,
        }
    }
}

/// The report of a test routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub status: Status,
    pub summary: String,
    pub steps: Vec<Step>,
    /// The Fluent message translating a summary of success (added in plugin API 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_message: Option<Message>,
}

impl Default for TestReport {
    fn default() -> Self {
        Self::new()
    }
}

impl TestReport {
    pub fn new() -> Self {
        TestReport {
            status: Status::Ok,
            summary: String::new(),
            steps: Vec::new(),
            summary_message: None,
        }
    }

    /// Runs and times one step. Returns the step's value, or `None` when it failed, so that
    /// the routine can stop with `let Some(x) = report.step(..) else { return report.finish(..) }`.
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<Check<T>, String>,
    ) -> Option<T> {
        self.step_localized(name, || f().map_err(Text::from))
    }

    /// Like [`TestReport::step`], for a step whose failure is a translated [`Text`].
    pub fn step_localized<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<Check<T>, Text>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = f();
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, detail, value) = match result {
            Ok(check) if check.warning => (Status::Warning, check.detail, Some(check.value)),
            Ok(check) => (Status::Ok, check.detail, Some(check.value)),
            Err(detail) => (Status::Failed, detail, None),
        };
        self.push(Step::new(name, status, duration_ms, detail));
        value
    }

    /// Records a step that was not run, and why.
    pub fn skip(&mut self, name: &str, reason: impl Into<Text>) {
        self.push(Step::new(name, Status::Skipped, 0, reason));
    }

    /// Records an already-measured step.
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Computes the overall status and the summary. The summary is `success` when every step
    /// passed, otherwise it names the first failed (or warned) step and its detail.
    pub fn finish(mut self, success: impl Into<Text>) -> Self {
        self.status = self
            .steps
            .iter()
            .map(|s| s.status)
            .filter(|s| *s != Status::Skipped)
            .max()
            .unwrap_or(Status::Ok);
        self.summary = match self.steps.iter().find(|s| s.status == self.status) {
            Some(step) if self.status != Status::Ok => format!("{}: {}", step.name, step.detail),
            _ => {
                let success = success.into();
                self.summary_message = success.message;
                success.english
            }
        };
        self
    }

    /// A report made of one failed step, e.g. when the configuration cannot be read.
    pub fn failed(step: &str, detail: impl Into<Text>) -> Self {
        let mut report = TestReport::new();
        report.push(Step::new(step, Status::Failed, 0, detail));
        report.finish("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_takes_the_worst_step_and_names_it() {
        let mut r = TestReport::new();
        assert_eq!(r.step("a", || Ok(Check::ok(1, "fine"))), Some(1));
        assert_eq!(r.step("b", || Ok(Check::warning(2, "slow"))), Some(2));
        assert_eq!(r.step::<()>("c", || Err("down".into())), None);
        r.skip("d", "c failed");
        let r = r.finish("all good");
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.summary, "c: down");
        let mut ok = TestReport::new();
        ok.step("a", || Ok(Check::ok((), "")));
        assert_eq!(ok.finish("all good").summary, "all good");
    }
}
