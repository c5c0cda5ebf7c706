//! What flows between the engine and whoever drives it (the headless run, the dashboard).
//!
//! Events go out over a bounded channel the engine awaits on: a slow consumer slows the engine,
//! it never loses an event. Commands come in over another channel.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Rate;
use crate::outcome::{AttemptId, Outcome};
use crate::provider::UsageReading;

/// Something the engine did or saw. Serializable, for the event log (`"type": "attempt"`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProbeEvent {
    /// An attempt was sent; `in_flight` counts this provider's requests now in the air.
    AttemptStarted {
        provider: String,
        probe_id: u64,
        attempt_id: AttemptId,
        target_url: String,
        at: DateTime<Utc>,
        in_flight: u32,
    },
    /// One attempt ended (an async job's attempt ends when its job does). `in_flight` is the count
    /// after it left.
    Attempt {
        outcome: Box<Outcome>,
        in_flight: u32,
    },
    /// An automatic retry of `attempt_id` will be sent after `after`.
    RetryScheduled {
        provider: String,
        attempt_id: AttemptId,
        after: Duration,
        /// What changed when the retry is escalated ("mode js_rendering").
        escalation: Option<String>,
        reason: String,
    },
    /// The probe stopped retrying `attempt_id`; `offer` names an escalation the user may pay for.
    GaveUp {
        provider: String,
        attempt_id: AttemptId,
        reason: String,
        offer: Option<String>,
    },
    /// An async job was queued by `attempt_id`, or polled and still pending. Polls are not probes.
    JobPending {
        provider: String,
        attempt_id: AttemptId,
        job_id: String,
        status: String,
    },
    /// The provider is paused: an account error (reason starts with its code or status) or the user.
    Paused {
        provider: String,
        reason: String,
    },
    Resumed {
        provider: String,
    },
    /// A probe was not sent; the reason says why (the provider is paused, no escalation left…).
    Skipped {
        provider: String,
        probe_id: u64,
        target_url: String,
        reason: String,
    },
    /// The provider asked everyone to wait (Retry-After, rate-limit reset): nothing is sent to it
    /// before `until`. Other providers are not held.
    Hold {
        provider: String,
        until: DateTime<Utc>,
        reason: String,
    },
    /// A reading of the provider's usage endpoint. Not a probe.
    Usage {
        provider: String,
        reading: UsageReading,
        at: DateTime<Utc>,
    },
    /// The usage endpoint could not be read (shown, never fatal).
    UsageFailed {
        provider: String,
        message: String,
    },
    /// The client-side limits now in force (at start, and after a command changed them).
    Limits {
        provider: String,
        concurrency: u32,
        rate: Rate,
    },
    /// A command could not be carried out (unknown attempt, nothing to escalate…).
    CommandRejected {
        message: String,
    },
}

/// Which providers a command applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    All,
    Provider(String),
}

impl Scope {
    #[must_use]
    pub fn includes(&self, provider: &str) -> bool {
        match self {
            Self::All => true,
            Self::Provider(name) => name == provider,
        }
    }
}

/// What the driver asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineCommand {
    /// Stop sending to these providers; their probes are reported as skipped until resumed.
    Pause(Scope),
    /// Resume (this also lifts a pause an account error caused).
    Resume(Scope),
    /// Send attempt `attempt_id` again: one new attempt linked to it, with the same options, or
    /// escalated (`policy::offered_escalation`; it costs more).
    Retry {
        attempt_id: AttemptId,
        escalate: bool,
    },
    /// Retry (once each, unchanged) every recent failed attempt the contract marks retryable and
    /// nobody retried yet.
    RetryAllFailed,
    SetRate {
        scope: Scope,
        rate: Rate,
    },
    SetConcurrency {
        scope: Scope,
        limit: u32,
    },
    /// Stop: no new attempts; requests in the air finish; then the engine ends.
    Shutdown,
}

impl ProbeEvent {
    /// Fold this event into the session's statistics (pure; the headless run and the dashboard
    /// both use it, so they count alike). Taken by value: an attempt's outcome moves into the
    /// recent-attempts ring instead of being copied, once per attempt.
    pub fn apply_to(self, stats: &mut crate::stats::SessionStats) {
        match self {
            Self::AttemptStarted {
                provider,
                at,
                in_flight,
                ..
            } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.set_in_flight(in_flight, at);
                }
            }
            Self::Attempt { outcome, in_flight } => {
                stats.ingest_attempt(*outcome, Some(in_flight));
            }
            Self::Paused { provider, reason } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.paused = Some(reason);
                }
            }
            Self::Resumed { provider } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.paused = None;
                }
            }
            Self::Skipped {
                provider, reason, ..
            } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.record_skipped(&reason);
                }
            }
            Self::Usage {
                provider,
                reading,
                at,
            } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.record_usage(&reading, at);
                }
            }
            Self::Limits {
                provider,
                concurrency,
                ..
            } => {
                if let Some(stats) = stats.provider_mut(&provider) {
                    stats.set_configured_limit(concurrency);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_lines() {
        let events = vec![
            ProbeEvent::Limits {
                provider: "alterlab".into(),
                concurrency: 3,
                rate: Rate::PerSecond(0.5),
            },
            ProbeEvent::Paused {
                provider: "alterlab".into(),
                reason: "INSUFFICIENT_CREDITS: no balance".into(),
            },
            ProbeEvent::RetryScheduled {
                provider: "omniscrape".into(),
                attempt_id: 7,
                after: Duration::from_millis(1500),
                escalation: Some("mode js_rendering".into()),
                reason: "502: retry 1 of 3".into(),
            },
        ];
        for event in events {
            let line = serde_json::to_string(&event).unwrap();
            assert!(!line.contains('\n'));
            let back: ProbeEvent = serde_json::from_str(&line).unwrap();
            assert_eq!(back, event, "{line}");
        }
    }
}
