//! The wall clock the engine and the simulator read, injected so tests control it.
//!
//! A real clock is a wall-clock origin plus tokio's monotonic time since then. In a release build
//! that is the machine's time; under tokio's paused test time (`start_paused`) it moves only when
//! tokio's time does, so a wall-clock instant (a rate-limit reset, a job timestamp) and a tokio
//! sleep agree, and a test of a 30 s wait takes no 30 s. A manual clock stands still until a test
//! moves it, for code that is driven by hand rather than by tokio's timers (the simulator's rate
//! windows and job lifecycles).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Time since the clock started, plus the wall-clock instant it started at. Clones share it.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    source: Source,
    /// Unix time (ms) at elapsed zero.
    start_unix_ms: u64,
}

#[derive(Debug)]
enum Source {
    /// tokio's clock: the machine's, or the paused test clock.
    Tokio(Instant),
    /// Milliseconds since start, moved only by [`Clock::advance`].
    Manual(AtomicU64),
}

impl Clock {
    /// Follows tokio's monotonic clock from now on (the machine's time outside paused tests).
    #[must_use]
    pub fn real() -> Self {
        Self {
            inner: Arc::new(ClockInner {
                source: Source::Tokio(Instant::now()),
                start_unix_ms: unix_ms_now(),
            }),
        }
    }

    /// Stands still until [`Clock::advance`] moves it; starts at unix time `start_unix_s`.
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
            Source::Tokio(_) => false,
            Source::Manual(ms) => {
                ms.fetch_add(saturating_ms(by), Ordering::Relaxed);
                true
            }
        }
    }

    /// Time since the clock started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        match &self.inner.source {
            Source::Tokio(start) => start.elapsed(),
            Source::Manual(ms) => Duration::from_millis(ms.load(Ordering::Relaxed)),
        }
    }

    /// Unix time in milliseconds at `elapsed`.
    #[must_use]
    pub fn unix_ms_at(&self, elapsed: Duration) -> u64 {
        self.inner
            .start_unix_ms
            .saturating_add(saturating_ms(elapsed))
    }

    /// Unix time in seconds now.
    #[must_use]
    pub fn unix_now_s(&self) -> u64 {
        self.unix_ms_at(self.elapsed()) / 1000
    }

    /// The wall-clock instant now, to the microsecond.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        let start_ms = i64::try_from(self.inner.start_unix_ms).unwrap_or(i64::MAX);
        let start = DateTime::from_timestamp_millis(start_ms).unwrap_or(DateTime::UNIX_EPOCH);
        start + self.elapsed()
    }
}

fn saturating_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, saturating_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_700_000_000);
        assert_eq!(clock.elapsed(), Duration::ZERO);
        assert!(clock.advance(Duration::from_secs(61)));
        assert_eq!(clock.elapsed(), Duration::from_secs(61));
        assert_eq!(clock.unix_now_s(), 1_700_000_061);
        assert_eq!(clock.now().timestamp(), 1_700_000_061);
    }

    #[test]
    fn real_clock_ignores_advance() {
        let clock = Clock::real();
        assert!(!clock.advance(Duration::from_secs(3600)));
        assert!(clock.elapsed() < Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_clock_follows_paused_tokio_time() {
        let clock = Clock::real();
        let before = clock.now();
        tokio::time::sleep(Duration::from_secs(90)).await;
        let moved = clock.now() - before;
        // Paused time moves by exactly what was slept (plus nothing: no real time counts).
        assert_eq!(moved.num_seconds(), 90);
        assert!(clock.now() - before < chrono::TimeDelta::seconds(91));
    }
}
