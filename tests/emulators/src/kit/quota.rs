//! Provider rate limits: a rolling window of admitted requests checked against one or more
//! limits ("4 per second and 75 per minute"), and a count per UTC day. Refused requests are
//! not counted, as on the real gateways, so a client that backs off gets through again.

use super::{dates, lock};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `max` requests in any span of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: usize,
    pub per: Duration,
}

impl Limit {
    /// At most `max` requests a second.
    pub fn per_second(max: usize) -> Limit {
        Limit {
            max,
            per: Duration::from_secs(1),
        }
    }

    /// At most `max` requests a minute.
    pub fn per_minute(max: usize) -> Limit {
        Limit {
            max,
            per: Duration::from_secs(60),
        }
    }
}

/// The instants of the requests admitted lately.
#[derive(Debug, Default)]
pub struct RollingWindow {
    admitted: Mutex<VecDeque<Instant>>,
}

impl RollingWindow {
    pub fn new() -> RollingWindow {
        RollingWindow::default()
    }

    /// Admits a request now if every limit allows it, and counts it. Otherwise returns how
    /// long until the first limit that refuses it frees a place (a `max` of 0 refuses all).
    pub fn admit(&self, limits: &[Limit]) -> Result<(), Duration> {
        let now = Instant::now();
        let longest = limits.iter().map(|l| l.per).max().unwrap_or_default();
        let mut admitted = lock(&self.admitted);
        while admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= longest)
        {
            admitted.pop_front();
        }
        for limit in limits {
            let recent = admitted
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t) < limit.per)
                .count();
            if recent >= limit.max {
                let wait = admitted
                    .len()
                    .checked_sub(recent)
                    .and_then(|oldest| admitted.get(oldest))
                    .map(|t| limit.per.saturating_sub(now.duration_since(*t)))
                    .unwrap_or(limit.per);
                return Err(wait);
            }
        }
        admitted.push_back(now);
        Ok(())
    }
}

/// Whole seconds to announce in `Retry-After` for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Requests admitted during the current UTC day.
#[derive(Debug, Default)]
pub struct DailyCount {
    /// (day number since the epoch, requests admitted that day).
    day: Mutex<(u64, u64)>,
}

impl DailyCount {
    pub fn new() -> DailyCount {
        DailyCount::default()
    }

    /// Admits and counts a request if fewer than `max` were admitted today (UTC).
    pub fn admit(&self, max: u64) -> bool {
        let today = dates::unix_secs() / 86_400;
        let mut day = lock(&self.day);
        if day.0 != today {
            *day = (today, 0);
        }
        if day.1 >= max {
            return false;
        }
        day.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_applies_and_refusals_are_not_counted() {
        let window = RollingWindow::new();
        let limits = [Limit::per_second(2), Limit::per_minute(3)];
        assert!(window.admit(&limits).is_ok());
        assert!(window.admit(&limits).is_ok());
        let wait = window.admit(&limits).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        std::thread::sleep(Duration::from_millis(1_050));
        assert!(window.admit(&limits).is_ok());
        // The minute is now full: the wait is the minute's, not the second's.
        let wait = window.admit(&limits).unwrap_err();
        assert!(wait > Duration::from_secs(57), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 59);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let window = RollingWindow::new();
        assert_eq!(
            window.admit(&[Limit::per_second(0)]),
            Err(Duration::from_secs(1))
        );
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn the_daily_count_stops_at_its_maximum() {
        let day = DailyCount::new();
        assert!(day.admit(2));
        assert!(day.admit(2));
        assert!(!day.admit(2));
    }
}
