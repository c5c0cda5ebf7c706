//! The sane range of every rate, duration and count a user sets. A value outside it is a usage
//! error (exit 2) naming the flag, or the file and line: it is checked while the flag or the file
//! is parsed, where clap still knows the flag and toml still knows the line.
//!
//! Without these, `--rate 1e-20/s` meant unlimited (its interval overflowed), a `job_max_wait` of
//! 300 billion years overflowed the clock, and `--concurrency 1000000` spawned a million workers.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{DurationError, RateError};

/// Where a duration setting may lie, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
    /// What zero means, when it is allowed and means something ("back to back").
    pub zero_means: Option<&'static str>,
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `--duration`: a run bounded by something a clock can add.
pub const RUN_DURATION: DurationRange = DurationRange {
    min: Duration::from_millis(1),
    max: Duration::from_secs(366 * 24 * 3600),
    zero_means: None,
};
/// `every`: the time between two probes of one target.
pub const PROBE_INTERVAL: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: DAY,
    zero_means: Some("back to back"),
};
/// `timeout`, `connect_timeout`: one request. Zero would fail every request before it is sent.
pub const REQUEST_TIMEOUT: DurationRange = DurationRange {
    min: Duration::from_millis(1),
    max: HOUR,
    zero_means: None,
};
/// `[retry] base_delay`, `max_delay`.
pub const RETRY_DELAY: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: HOUR,
    zero_means: Some("no wait of our own"),
};
/// `job_poll_interval` (raised to the contracts' one second when shorter).
pub const JOB_POLL_INTERVAL: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: HOUR,
    zero_means: Some("as often as the contract allows"),
};
/// `job_max_wait`: zero would give up on every job before its first poll.
pub const JOB_MAX_WAIT: DurationRange = DurationRange {
    min: Duration::from_secs(1),
    max: DAY,
    zero_means: None,
};
/// `usage_interval` (raised to 30 s when shorter).
pub const USAGE_INTERVAL: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: DAY,
    zero_means: Some("as often as allowed"),
};

/// `[log] rotate_every`: a part per second at the most, per year at the least.
pub const LOG_ROTATE_EVERY: DurationRange = DurationRange {
    min: Duration::from_secs(1),
    max: Duration::from_secs(366 * 24 * 3600),
    zero_means: None,
};
/// `[log] keep`: at least an hour of logs, at most ten years.
pub const LOG_KEEP: DurationRange = DurationRange {
    min: HOUR,
    max: Duration::from_secs(10 * 366 * 24 * 3600),
    zero_means: None,
};
/// `[log] rotate_bytes`: the smallest part (a second of a load run is ~100 KB before compression).
pub const MIN_LOG_ROTATE_BYTES: u64 = 64 * 1024;
/// `[log] max_total_bytes`: the smallest logs folder.
pub const MIN_LOG_TOTAL_BYTES: u64 = 1024 * 1024;

/// The slowest client-side rate: one request a day. Anything slower is a typo, and its interval
/// overflowed into "unlimited".
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / (24.0 * 3600.0);
/// The fastest client-side rate that is still a limit; above it, say `unlimited`.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;

/// Requests in flight per provider, at most. Providers' largest published plans allow about a
/// hundred; each place in load mode is a worker task and a connection.
pub const MAX_CONCURRENCY: u32 = 1000;

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        if self.min.is_zero() {
            let zero = self
                .zero_means
                .map(|meaning| format!(" (0s = {meaning})"))
                .unwrap_or_default();
            write!(f, "from 0s{zero} to {}", shown(self.max))
        } else {
            write!(f, "from {} to {}", shown(self.min), shown(self.max))
        }
    }
}

/// A duration setting that cannot be read or lies outside its range.
#[derive(Debug, thiserror::Error)]
pub enum DurationRangeError {
    #[error(transparent)]
    Unreadable(#[from] DurationError),
    #[error("duration {text:?} must be {range}")]
    OutOfRange { text: String, range: DurationRange },
}

impl DurationRange {
    /// Whether `duration` lies in the range.
    #[must_use]
    pub fn contains(self, duration: Duration) -> bool {
        duration >= self.min && duration <= self.max
    }

    /// Parse `text` as a duration and check it.
    ///
    /// # Errors
    /// Text humantime cannot read, or a duration out of the range.
    pub fn parse(self, text: &str) -> Result<Duration, DurationRangeError> {
        let duration = super::parse_duration(text)?;
        if self.contains(duration) {
            Ok(duration)
        } else {
            Err(DurationRangeError::OutOfRange {
                text: text.trim().to_owned(),
                range: self,
            })
        }
    }
}

/// A concurrency out of `1..=MAX_CONCURRENCY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("concurrency must be from 1 to {MAX_CONCURRENCY}, not {0}")]
pub struct ConcurrencyError(pub u32);

/// clap's parser for `--duration`.
///
/// # Errors
/// As [`DurationRange::parse`].
pub fn parse_run_duration(text: &str) -> Result<Duration, DurationRangeError> {
    RUN_DURATION.parse(text)
}

/// clap's parser for `--every`.
///
/// # Errors
/// As [`DurationRange::parse`].
pub fn parse_probe_interval(text: &str) -> Result<Duration, DurationRangeError> {
    PROBE_INTERVAL.parse(text)
}

/// clap's parser for `--timeout`.
///
/// # Errors
/// As [`DurationRange::parse`].
pub fn parse_request_timeout(text: &str) -> Result<Duration, DurationRangeError> {
    REQUEST_TIMEOUT.parse(text)
}

/// Requests per second out of range: too slow to be meant, too fast to be a limit.
pub(super) fn check_rate(text: &str, per_second: f64) -> Result<f64, RateError> {
    if per_second < MIN_RATE_PER_SECOND {
        return Err(RateError::TooSlow {
            text: text.to_owned(),
        });
    }
    if per_second > MAX_RATE_PER_SECOND {
        return Err(RateError::TooFast {
            text: text.to_owned(),
        });
    }
    Ok(per_second)
}

/// A concurrency out of `1..=MAX_CONCURRENCY`.
///
/// # Errors
/// Zero, or above [`MAX_CONCURRENCY`].
pub fn check_concurrency(concurrency: u32) -> Result<u32, ConcurrencyError> {
    if (1..=MAX_CONCURRENCY).contains(&concurrency) {
        Ok(concurrency)
    } else {
        Err(ConcurrencyError(concurrency))
    }
}

/// A serde `deserialize_with` for an optional duration in `RANGE`: an out-of-range value is an
/// error at its line in the file.
macro_rules! opt_duration_in {
    ($($name:ident => $range:expr;)*) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            let text = String::deserialize(deserializer)?;
            $range.parse(&text).map(Some).map_err(serde::de::Error::custom)
        }
    )*};
}

opt_duration_in! {
    opt_probe_interval => PROBE_INTERVAL;
    opt_request_timeout => REQUEST_TIMEOUT;
    opt_retry_delay => RETRY_DELAY;
    opt_job_poll_interval => JOB_POLL_INTERVAL;
    opt_job_max_wait => JOB_MAX_WAIT;
    opt_usage_interval => USAGE_INTERVAL;
    opt_log_rotate_every => LOG_ROTATE_EVERY;
    opt_log_keep => LOG_KEEP;
}

/// A serde `deserialize_with` for an optional byte count of at least `MIN`.
macro_rules! opt_bytes_from {
    ($($name:ident => $min:expr;)*) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<u64>, D::Error> {
            let bytes = u64::deserialize(deserializer)?;
            if bytes < $min {
                return Err(serde::de::Error::custom(format!(
                    "{bytes} bytes is below the least allowed, {}",
                    $min
                )));
            }
            Ok(Some(bytes))
        }
    )*};
}

opt_bytes_from! {
    opt_log_rotate_bytes => MIN_LOG_ROTATE_BYTES;
    opt_log_max_total_bytes => MIN_LOG_TOTAL_BYTES;
}

/// A serde `deserialize_with` for an optional concurrency in `1..=MAX_CONCURRENCY`.
pub(super) fn opt_concurrency<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let concurrency = u32::deserialize(deserializer)?;
    check_concurrency(concurrency)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_say_what_they_allow() {
        let error = JOB_MAX_WAIT.parse("0s").unwrap_err().to_string();
        assert!(error.contains("from 1s to 1day"), "{error}");
        let error = PROBE_INTERVAL.parse("2days").unwrap_err().to_string();
        assert!(error.contains("0s = back to back"), "{error}");
        assert_eq!(PROBE_INTERVAL.parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(RUN_DURATION.parse("10m").unwrap(), Duration::from_secs(600));
    }

    #[test]
    fn a_duration_too_large_for_the_clock_is_an_error_not_a_panic() {
        for text in ["300000000000y", "584542046090y", "18446744073709551615s"] {
            for range in [RUN_DURATION, PROBE_INTERVAL, JOB_MAX_WAIT, REQUEST_TIMEOUT] {
                assert!(range.parse(text).is_err(), "{text}");
            }
        }
    }

    #[test]
    fn concurrency_is_bounded() {
        assert!(check_concurrency(0).is_err());
        assert_eq!(check_concurrency(1), Ok(1));
        assert_eq!(check_concurrency(MAX_CONCURRENCY), Ok(MAX_CONCURRENCY));
        let error = check_concurrency(1_000_000).unwrap_err().to_string();
        assert!(error.contains("1 to 1000"), "{error}");
    }
}
