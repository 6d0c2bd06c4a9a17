//! Admission control of capability calls: how many run at once and how many may wait.
//!
//! A plugin call runs on a blocking thread, and a call over its provider's quota waits there
//! for a slot. Without a bound, an ERP token could queue thousands of calls, each holding a
//! thread of tokio's blocking pool, until sign-ins and field saves (which need that pool too)
//! hang. So calls are admitted *before* they take a thread:
//!
//! - at most `running_per_instance` calls of one instance, and `running_total` calls of all
//!   instances, hold a thread at once (the rest of the pool stays free for the console, the
//!   admin API and the scheduler);
//! - the others wait asynchronously (no thread), and a waiter whose client goes away is
//!   dropped with its request future, so it stops waiting at once;
//! - at most `waiting_per_instance` calls of one instance and `waiting_per_caller` calls of
//!   one caller (API token, user, CLI) wait; beyond that a call is refused at once with
//!   [`Busy`] (`429 quota_exhausted` with `Retry-After`), never queued without end.

use passerelle_plugin_api::Quotas;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds, from `[limits]` in host.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Calls of one instance running at once (each holds a thread).
    pub running_per_instance: usize,
    /// Calls of all instances running at once.
    pub running_total: usize,
    /// Calls of one instance waiting to run.
    pub waiting_per_instance: usize,
    /// Calls of one caller (token, user) waiting to run, over all instances.
    pub waiting_per_caller: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            running_per_instance: 8,
            running_total: 64,
            waiting_per_instance: 64,
            waiting_per_caller: 32,
        }
    }
}

impl Limits {
    /// Refuses zero bounds, which would refuse every call.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("running_per_instance", self.running_per_instance),
            ("running_total", self.running_total),
        ] {
            if v == 0 {
                return Err(format!("[limits] {name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A call refused because too many calls already wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}; retry after {retry_after_secs} s")]
pub struct Busy {
    pub instance: String,
    pub reason: String,
    pub retry_after_secs: u64,
}

/// The right to run one call; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct Ticket {
    _instance: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

#[derive(Debug, Default)]
struct Waiting {
    by_instance: HashMap<String, usize>,
    by_caller: HashMap<String, usize>,
}

/// The admission book of one process.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    total: Arc<Semaphore>,
    instances: Mutex<HashMap<String, Arc<Semaphore>>>,
    waiting: Arc<Mutex<Waiting>>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(Limits::default())
    }
}

/// A registered waiter; unregisters on drop (admitted, refused or cancelled).
struct WaiterGuard {
    waiting: Arc<Mutex<Waiting>>,
    instance: String,
    caller: String,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        let mut w = lock(&self.waiting);
        decrement(&mut w.by_instance, &self.instance);
        decrement(&mut w.by_caller, &self.caller);
    }
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long until `waiting` calls ahead have gone through at the quota's pace.
fn retry_after(waiting: usize, quotas: Quotas) -> u64 {
    let waiting = waiting.max(1) as u64;
    let secs = match (quotas.per_second, quotas.per_minute) {
        (Some(n), _) if n > 0 => waiting.div_ceil(u64::from(n)),
        (_, Some(n)) if n > 0 => (waiting * 60).div_ceil(u64::from(n)),
        _ => 1,
    };
    secs.clamp(1, 3600)
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            total: Arc::new(Semaphore::new(limits.running_total.max(1))),
            instances: Mutex::new(HashMap::new()),
            waiting: Arc::new(Mutex::new(Waiting::default())),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn semaphore(&self, instance: &str) -> Arc<Semaphore> {
        lock(&self.instances)
            .entry(instance.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.running_per_instance.max(1))))
            .clone()
    }

    /// Calls of `instance` and of `caller` waiting now (for tests and metrics).
    pub fn waiting(&self, instance: &str, caller: &str) -> (usize, usize) {
        let w = lock(&self.waiting);
        (
            w.by_instance.get(instance).copied().unwrap_or(0),
            w.by_caller.get(caller).copied().unwrap_or(0),
        )
    }

    /// Admits a call of `instance` by `caller`: at once when a slot is free, after an
    /// asynchronous wait otherwise, or refused when too many already wait. Dropping the
    /// returned future (the client went away) withdraws the call.
    pub async fn admit(
        &self,
        instance: &str,
        caller: &str,
        quotas: Quotas,
    ) -> Result<Ticket, Busy> {
        let semaphore = self.semaphore(instance);
        if let (Ok(i), Ok(t)) = (
            semaphore.clone().try_acquire_owned(),
            self.total.clone().try_acquire_owned(),
        ) {
            return Ok(Ticket {
                _instance: i,
                _total: t,
            });
        }
        let _guard = {
            let mut w = lock(&self.waiting);
            let by_instance = w.by_instance.get(instance).copied().unwrap_or(0);
            let by_caller = w.by_caller.get(caller).copied().unwrap_or(0);
            let refuse = |reason: String| Busy {
                instance: instance.to_owned(),
                reason,
                retry_after_secs: retry_after(by_instance, quotas),
            };
            if by_instance >= self.limits.waiting_per_instance {
                return Err(refuse(format!(
                    "instance `{instance}` already has {by_instance} calls waiting for its provider quota (the most allowed)"
                )));
            }
            if by_caller >= self.limits.waiting_per_caller {
                return Err(refuse(format!(
                    "{caller} already has {by_caller} calls waiting (the most allowed per caller)"
                )));
            }
            *w.by_instance.entry(instance.to_owned()).or_default() += 1;
            *w.by_caller.entry(caller.to_owned()).or_default() += 1;
            WaiterGuard {
                waiting: self.waiting.clone(),
                instance: instance.to_owned(),
                caller: caller.to_owned(),
            }
        };
        // The semaphores are never closed, so acquiring only fails if they were: treat
        // that as a refusal rather than a panic.
        let closed = || Busy {
            instance: instance.to_owned(),
            reason: "the host is shutting down".to_owned(),
            retry_after_secs: 1,
        };
        let i = semaphore.acquire_owned().await.map_err(|_| closed())?;
        let t = self
            .total
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        Ok(Ticket {
            _instance: i,
            _total: t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn small() -> Admission {
        Admission::new(Limits {
            running_per_instance: 1,
            running_total: 10,
            waiting_per_instance: 2,
            waiting_per_caller: 10,
        })
    }

    #[tokio::test]
    async fn beyond_the_waiting_bound_a_call_is_refused_at_once_with_retry_after() {
        let a = Arc::new(small());
        let quotas = Quotas {
            per_second: Some(1),
            ..Quotas::default()
        };
        let running = a.admit("i", "t", quotas).await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let a = a.clone();
            waiters.push(tokio::spawn(async move { a.admit("i", "t", quotas).await }));
        }
        while a.waiting("i", "t").0 < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let busy = a.admit("i", "t", quotas).await.unwrap_err();
        assert_eq!(busy.retry_after_secs, 2);
        assert!(busy.reason.contains("instance `i`"), "{}", busy.reason);
        drop(running);
        for w in waiters {
            drop(w.await.unwrap().unwrap());
        }
        assert_eq!(a.waiting("i", "t"), (0, 0));
    }

    #[tokio::test]
    async fn a_withdrawn_waiter_frees_its_place() {
        let a = Arc::new(small());
        let _running = a.admit("i", "t", Quotas::default()).await.unwrap();
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.admit("i", "t", Quotas::default()).await })
        };
        while a.waiting("i", "t").0 < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(a.waiting("i", "t"), (0, 0));
    }

    #[tokio::test]
    async fn one_caller_cannot_take_every_waiting_place() {
        let a = Arc::new(Admission::new(Limits {
            running_per_instance: 1,
            running_total: 10,
            waiting_per_instance: 10,
            waiting_per_caller: 1,
        }));
        let _running = a.admit("i", "erp", Quotas::default()).await.unwrap();
        let a2 = a.clone();
        let _w = tokio::spawn(async move { a2.admit("i", "erp", Quotas::default()).await });
        while a.waiting("i", "erp").1 < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(a.admit("j", "erp", Quotas::default()).await.is_ok());
        let a3 = a.clone();
        let refused = tokio::spawn(async move { a3.admit("i", "erp", Quotas::default()).await });
        assert!(refused.await.unwrap().is_err());
    }
}
