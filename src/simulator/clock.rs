//! The simulator's clock: real time for `omniscope simulate`, a hand-advanced one for tests, so
//! waves, rate windows and job lifecycles can be checked without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time since the simulator started, plus the wall-clock instant it started at.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    source: Source,
    /// Unix time (ms) at elapsed zero: the origin of `X-RateLimit-Reset` and job timestamps.
    start_unix_ms: u64,
}

#[derive(Debug)]
enum Source {
    Real(Instant),
    /// Milliseconds since start, moved only by [`SimClock::advance`].
    Manual(AtomicU64),
}

impl SimClock {
    /// Follows the machine's monotonic clock from now on.
    #[must_use]
    pub fn real() -> Self {
        Self {
            inner: Arc::new(ClockInner {
                source: Source::Real(Instant::now()),
                start_unix_ms: unix_ms_now(),
            }),
        }
    }

    /// Stands still until [`SimClock::advance`] moves it; starts at unix time `start_unix_s`.
    #[must_use]
    pub fn manual(start_unix_s: u64) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                source: Source::Manual(AtomicU64::new(0)),
                start_unix_ms: start_unix_s.saturating_mul(1000),
            }),
        }
    }

    /// Moves a manual clock forward; a real clock ignores it (and says so by returning false).
    pub fn advance(&self, by: Duration) -> bool {
        match &self.inner.source {
            Source::Real(_) => false,
            Source::Manual(ms) => {
                let by_ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                ms.fetch_add(by_ms, Ordering::Relaxed);
                true
            }
        }
    }

    /// Time since the simulator started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        match &self.inner.source {
            Source::Real(start) => start.elapsed(),
            Source::Manual(ms) => Duration::from_millis(ms.load(Ordering::Relaxed)),
        }
    }

    /// Unix time in milliseconds at `elapsed`.
    #[must_use]
    pub fn unix_ms_at(&self, elapsed: Duration) -> u64 {
        self.inner
            .start_unix_ms
            .saturating_add(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    /// Unix time in seconds now.
    #[must_use]
    pub fn unix_now_s(&self) -> u64 {
        self.unix_ms_at(self.elapsed()) / 1000
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = SimClock::manual(1_700_000_000);
        assert_eq!(clock.elapsed(), Duration::ZERO);
        assert!(clock.advance(Duration::from_secs(61)));
        assert_eq!(clock.elapsed(), Duration::from_secs(61));
        assert_eq!(clock.unix_now_s(), 1_700_000_061);
    }

    #[test]
    fn real_clock_ignores_advance() {
        let clock = SimClock::real();
        assert!(!clock.advance(Duration::from_secs(3600)));
        assert!(clock.elapsed() < Duration::from_secs(3600));
    }
}
