//! Stand-ins for the probe engine's message types (`crate::probe::ProbeEvent`, `Scope`,
//! `crate::config::Rate`) until the engine lands on main: same shapes, so switching is a change of
//! `use` lines in `app.rs` and the deletion of this file.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outcome::{AttemptId, Outcome};
use crate::provider::UsageReading;

/// A client-side request rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Unlimited,
    PerSecond(f64),
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::PerSecond(rate) => write!(f, "{rate}/s"),
        }
    }
}

/// Which providers a command applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Provider(String),
}

/// Something the engine did or saw.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeEvent {
    AttemptStarted {
        provider: String,
        probe_id: u64,
        attempt_id: AttemptId,
        target_url: String,
        at: DateTime<Utc>,
        in_flight: u32,
    },
    Attempt {
        outcome: Box<Outcome>,
        in_flight: u32,
    },
    RetryScheduled {
        provider: String,
        attempt_id: AttemptId,
        after: Duration,
        escalation: Option<String>,
        reason: String,
    },
    GaveUp {
        provider: String,
        attempt_id: AttemptId,
        reason: String,
        offer: Option<String>,
    },
    JobPending {
        provider: String,
        attempt_id: AttemptId,
        job_id: String,
        status: String,
    },
    Paused {
        provider: String,
        reason: String,
    },
    Resumed {
        provider: String,
    },
    Skipped {
        provider: String,
        probe_id: u64,
        target_url: String,
        reason: String,
    },
    Hold {
        provider: String,
        until: DateTime<Utc>,
        reason: String,
    },
    Usage {
        provider: String,
        reading: UsageReading,
        at: DateTime<Utc>,
    },
    UsageFailed {
        provider: String,
        message: String,
    },
    Limits {
        provider: String,
        concurrency: u32,
        rate: Rate,
    },
    CommandRejected {
        message: String,
    },
}

impl ProbeEvent {
    /// Fold this event into the session's statistics (the engine's own version replaces this).
    pub fn apply_to(&self, stats: &mut crate::stats::SessionStats) {
        match self {
            Self::AttemptStarted {
                provider,
                at,
                in_flight,
                ..
            } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.set_in_flight(*in_flight, *at);
                }
            }
            Self::Attempt { outcome, in_flight } => {
                let at = crate::stats::finished_at(outcome);
                let provider = outcome.provider.clone();
                stats.ingest((**outcome).clone());
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.set_in_flight(*in_flight, at);
                }
            }
            Self::Paused { provider, reason } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.paused = Some(reason.clone());
                }
            }
            Self::Resumed { provider } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.paused = None;
                }
            }
            Self::Skipped {
                provider, reason, ..
            } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.record_skipped(reason);
                }
            }
            Self::Usage {
                provider,
                reading,
                at,
            } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.record_usage(reading, *at);
                }
            }
            Self::Limits {
                provider,
                concurrency,
                ..
            } => {
                if let Some(stats) = stats.provider_mut(provider) {
                    stats.set_configured_limit(*concurrency);
                }
            }
            Self::RetryScheduled { .. }
            | Self::GaveUp { .. }
            | Self::JobPending { .. }
            | Self::Hold { .. }
            | Self::UsageFailed { .. }
            | Self::CommandRejected { .. } => {}
        }
    }
}
