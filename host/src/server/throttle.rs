//! Sign-in throttling: back-off per client address, per account and per known browser, never
//! a lock-out.
//!
//! Locking an account after a few failures hands anyone the power to keep the administrator
//! out by failing on purpose. Instead:
//! - each client address gets a few free failures, then must wait before its next attempt,
//!   the wait doubling with each further failure up to a ceiling: guessing from one address is
//!   slowed to a crawl, and only that address is slowed;
//! - each account gets more free failures from browsers it never signed in from, then the
//!   same doubling wait with a short ceiling: guessing from many addresses is slowed too, yet
//!   the account opens again within that ceiling;
//! - a browser in which the account signed in before carries a device cookie
//!   ([`super::auth`]) and is throttled on its own only (OWASP's "device cookies"): whatever
//!   others do, the administrator's usual browser is never slowed by them.
//!
//! An attempt in progress counts as a failure until it succeeds, so parallel guesses gain
//! nothing. Counters are forgotten after a quiet period. Time is passed in, so the rules are
//! tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Who an attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The client address.
    Address(String),
    /// The account, for attempts from browsers it never signed in from.
    User(String),
    /// A browser the account signed in from before (hash of its device cookie).
    Device(String),
}

/// Free failures, first wait and ceilings of the back-off.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures from one address before it has to wait.
    pub free_per_address: u32,
    /// Failures against one account from unknown browsers before they have to wait.
    pub free_per_user: u32,
    /// Failures from one known browser before it has to wait.
    pub free_per_device: u32,
    /// The first wait; it doubles with each further failure.
    pub first_delay: Duration,
    /// Longest wait of an address or a known browser.
    pub max_address_delay: Duration,
    /// Longest wait of an account: short, because the account's owner shares it.
    pub max_user_delay: Duration,
    /// A counter without a failure for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for LoginLimits {
    /// From one address: 5 free guesses, then 1 s, 2 s, 4 s, ... up to 15 min. Against one
    /// account from anywhere: 20 free guesses, then at most one every 30 s (under 3,000 a
    /// day, against passwords of 12 characters or more).
    fn default() -> Self {
        LoginLimits {
            free_per_address: 5,
            free_per_user: 20,
            free_per_device: 5,
            first_delay: Duration::from_secs(1),
            max_address_delay: Duration::from_secs(15 * 60),
            max_user_delay: Duration::from_secs(30),
            forget_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Failure counters by [`Key`].
#[derive(Debug)]
pub struct Throttle {
    limits: LoginLimits,
    entries: HashMap<Key, Entry>,
}

/// Above this many counters, forgotten ones are swept.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    pub fn new(limits: LoginLimits) -> Self {
        Throttle {
            limits,
            entries: HashMap::new(),
        }
    }

    fn free_and_ceiling(&self, key: &Key) -> (u32, Duration) {
        let l = &self.limits;
        match key {
            Key::Address(_) => (l.free_per_address, l.max_address_delay),
            Key::User(_) => (l.free_per_user, l.max_user_delay),
            Key::Device(_) => (l.free_per_device, l.max_address_delay),
        }
    }

    /// The wait after `failures` failures of `key` (zero while they are free).
    fn delay(&self, key: &Key, failures: u32) -> Duration {
        let (free, ceiling) = self.free_and_ceiling(key);
        if failures < free {
            return Duration::ZERO;
        }
        let doublings = (failures - free).min(30);
        self.limits
            .first_delay
            .saturating_mul(1u32 << doublings)
            .min(ceiling)
    }

    /// Refuses with the time left to wait when one of `keys` has to wait; otherwise counts
    /// this attempt as a failure of every key until [`Throttle::succeeded`] says otherwise.
    pub fn begin(&mut self, keys: &[Key], now: Instant) -> Result<(), Duration> {
        let forget = self.limits.forget_after;
        if self.entries.len() > SWEEP_AT {
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.last) < forget);
        }
        let mut wait = Duration::ZERO;
        for key in keys {
            let Some(e) = self.entries.get(key).copied() else {
                continue;
            };
            if now.saturating_duration_since(e.last) >= forget {
                self.entries.remove(key);
                continue;
            }
            let ready = e.last + self.delay(key, e.failures);
            wait = wait.max(ready.saturating_duration_since(now));
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for key in keys {
            let e = self.entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last: now,
            });
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
        Ok(())
    }

    /// A successful sign-in clears the counters of its keys.
    pub fn succeeded(&mut self, keys: &[Key]) {
        for key in keys {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            free_per_address: 3,
            free_per_user: 5,
            free_per_device: 2,
            first_delay: Duration::from_secs(1),
            max_address_delay: Duration::from_secs(60),
            max_user_delay: Duration::from_secs(4),
            forget_after: Duration::from_secs(600),
        }
    }

    fn addr(a: &str) -> Key {
        Key::Address(a.to_owned())
    }

    #[test]
    fn an_address_backs_off_exponentially_up_to_its_ceiling() {
        let mut t = Throttle::new(limits());
        let start = Instant::now();
        let keys = [addr("a")];
        for _ in 0..3 {
            t.begin(&keys, start).unwrap();
        }
        // Fourth attempt at once: wait 1 s.
        assert_eq!(t.begin(&keys, start), Err(Duration::from_secs(1)));
        let mut now = start + Duration::from_secs(1);
        let mut waits = Vec::new();
        for _ in 0..8 {
            t.begin(&keys, now).unwrap();
            let wait = t.begin(&keys, now).unwrap_err();
            waits.push(wait.as_secs());
            now += wait;
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        // Another address is not slowed at all.
        t.begin(&[addr("b")], now).unwrap();
    }

    #[test]
    fn many_addresses_slow_the_account_but_never_for_longer_than_its_ceiling() {
        let mut t = Throttle::new(limits());
        let now = Instant::now();
        let user = Key::User("admin".to_owned());
        for i in 0..5 {
            t.begin(&[addr(&format!("10.0.0.{i}")), user.clone()], now)
                .unwrap();
        }
        // A new address is held back by the account's counter.
        let wait = t.begin(&[addr("10.0.1.1"), user.clone()], now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // However many failures, the account's wait stays at its ceiling.
        let mut now = now;
        for i in 0..50 {
            now += Duration::from_secs(4);
            t.begin(&[addr(&format!("10.1.0.{i}")), user.clone()], now)
                .unwrap();
        }
        let wait = t.begin(&[addr("10.2.0.1"), user.clone()], now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(4));
        // A known browser is not held back by either.
        t.begin(&[Key::Device("d".to_owned())], now).unwrap();
    }

    #[test]
    fn success_clears_and_quiet_forgets() {
        let mut t = Throttle::new(limits());
        let now = Instant::now();
        let keys = [addr("a")];
        for _ in 0..3 {
            t.begin(&keys, now).unwrap();
        }
        assert!(t.begin(&keys, now).is_err());
        t.succeeded(&keys);
        t.begin(&keys, now).unwrap();
        for _ in 0..2 {
            t.begin(&keys, now).unwrap();
        }
        assert!(t.begin(&keys, now).is_err());
        t.begin(&keys, now + Duration::from_secs(600)).unwrap();
    }

    #[test]
    fn parallel_attempts_count_before_they_finish() {
        let mut t = Throttle::new(limits());
        let now = Instant::now();
        let keys = [Key::Device("d".to_owned())];
        // Two attempts in flight use the free ones; a third is refused at once.
        t.begin(&keys, now).unwrap();
        t.begin(&keys, now).unwrap();
        assert!(t.begin(&keys, now).is_err());
    }
}
