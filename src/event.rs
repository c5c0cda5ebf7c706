//! What flows between the layers: the [`Fact`]s a session saw, the live-only [`Notice`]s beside
//! them, and the [`EngineCommand`]s that go back.
//!
//! A fact is the one description of something that happened: the engine (and any later source of
//! outcomes) emits it, the event log writes it as one line, the metrics observe it, and
//! [`crate::stats::SessionStats::apply`] folds it, live or replayed from a log. A notice is what
//! only a live screen or a headless run's narration shows (a retry scheduled, a hold, a rejected
//! command): it changes no statistics and is not logged.
//!
//! This module sits low, beside the outcome model, so that every layer above can name these types
//! without importing the engine, the config or the log.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::{AttemptId, BillingUnit, FindingKind, Origin, Outcome};
use crate::provider::UsageReading;

/// Something a session saw: one line of the event log (`"type": "attempt"`, …). Every fact carries
/// `at`, the wall-clock instant it happened, which replay uses to reproduce the session's timing.
///
/// The serialized shape is the log's schema `omniscope.event.v2`: add fields (with a default) and
/// variants freely, change nothing else. Facts about a provider carry an `origin` (`probe` or
/// `proxy`; an attempt's is in its outcome); absent in older logs, it reads as `probe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fact {
    /// The first fact: when the session started, its providers, and its settings (never a key).
    SessionStart {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        started_at: DateTime<Utc>,
        providers: Vec<ProviderEntry>,
        /// The run's settings that are not secret (targets, interval, rate, …), free-form.
        #[serde(default)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
    /// One attempt ended (an async job's attempt ends when its job does). `in_flight` is the
    /// provider's count after it left, when known.
    Attempt {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        outcome: Box<Outcome>,
        #[serde(default)]
        in_flight: Option<u32>,
    },
    /// An attempt was sent: `n` counts the provider's requests now in the air.
    InFlight {
        provider: String,
        n: u32,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        origin: Origin,
    },
    /// A probe was not sent; the reason says why (the provider is paused, …).
    Skipped {
        provider: String,
        reason: String,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        probe_id: Option<u64>,
        #[serde(default)]
        target_url: Option<String>,
        #[serde(default)]
        origin: Origin,
    },
    /// The provider was paused: an account error (the reason starts with its code or status) or
    /// the user.
    Paused {
        provider: String,
        reason: String,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        origin: Origin,
    },
    /// The pause was lifted.
    Resumed {
        provider: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        origin: Origin,
    },
    /// A reading of the provider's usage endpoint. Not a probe.
    Usage {
        provider: String,
        reading: UsageReading,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        origin: Origin,
    },
    /// The client-side limits in force for this provider (at start, and after a command changed
    /// them). `rate` is absent in logs written before it was recorded.
    Limits {
        provider: String,
        concurrency: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<Rate>,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// The user's scraper broke a rule of the provider's contract (`omniscope proxy`'s audit):
    /// always proxied traffic, so it carries no origin.
    Finding {
        provider: String,
        kind: FindingKind,
        /// What the request ran into ("402 INSUFFICIENT_CREDITS", "held 12 s more", …).
        detail: String,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// The last fact of a session that ended cleanly; `at` is the instant its report was built.
    SessionEnd {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
}

/// A provider as the session registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEntry {
    pub name: String,
    /// The profile's billing unit.
    pub unit: BillingUnit,
    /// The configured concurrency limit, when the session had one.
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
}

/// The hosts of the targets a session's settings name (`probes[].targets[]`), each once, in
/// the order configured; empty when the settings name none (a proxy session).
#[must_use]
pub fn configured_target_hosts(
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let targets = settings
        .get("probes")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|probe| probe.get("targets")?.as_array())
        .flatten()
        .filter_map(serde_json::Value::as_str);
    for target in targets {
        let host = crate::outcome::url_host(target);
        if !host.is_empty() && !hosts.iter().any(|kept| kept == host) {
            hosts.push(host.to_owned());
        }
    }
    hosts
}

impl Fact {
    /// When it happened.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::SessionStart { started_at, .. } => *started_at,
            Self::Attempt { at, .. }
            | Self::InFlight { at, .. }
            | Self::Skipped { at, .. }
            | Self::Paused { at, .. }
            | Self::Resumed { at, .. }
            | Self::Usage { at, .. }
            | Self::Limits { at, .. }
            | Self::Finding { at, .. }
            | Self::SessionEnd { at } => *at,
        }
    }
}

/// Something only a live view shows: it changes no statistics and is not logged.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
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
    /// The provider asked everyone to wait (Retry-After, rate-limit reset): nothing is sent to it
    /// before `until`. Other providers are not held.
    Hold {
        provider: String,
        until: DateTime<Utc>,
        reason: String,
    },
    /// The usage endpoint could not be read (shown, never fatal).
    UsageFailed { provider: String, message: String },
    /// A command could not be carried out (unknown attempt, nothing to escalate, a full queue…).
    CommandRejected { message: String },
    /// `R` sent this many retries (failed, retryable, not retried yet), one each.
    RetriedAll { count: usize },
}

/// What a source of outcomes (the probe engine) sends its consumer, over one bounded channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Fact(Fact),
    Notice(Notice),
}

impl From<Fact> for Event {
    fn from(fact: Fact) -> Self {
        Self::Fact(fact)
    }
}

impl From<Notice> for Event {
    fn from(notice: Notice) -> Self {
        Self::Notice(notice)
    }
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

/// What the driver (the dashboard, a headless run) asks of the engine.
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

/// A client-side request rate: `"5/s"`, `"30/min"`, `"unlimited"` in the config, on the command
/// line, and in the log's `limits` facts. Read from text by `crate::config` (`FromStr`,
/// `Deserialize`), which knows the sane range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Unlimited,
    PerSecond(f64),
}

impl Rate {
    /// The gap between two requests; `None` when unlimited.
    #[must_use]
    pub fn interval(self) -> Option<Duration> {
        match self {
            Self::Unlimited => None,
            Self::PerSecond(rate) => Duration::try_from_secs_f64(1.0 / rate).ok(),
        }
    }

    /// The slower of two rates (unlimited is the fastest).
    #[must_use]
    pub fn slower(self, other: Self) -> Self {
        match (self, other) {
            (Self::Unlimited, rate) | (rate, Self::Unlimited) => rate,
            (Self::PerSecond(a), Self::PerSecond(b)) => Self::PerSecond(a.min(b)),
        }
    }

    /// For people: per minute below one a second (`2/min`), else per second (`2/s`, `0.5/s`
    /// never shows), with at most two decimals. The log and the config keep [`fmt::Display`]'s
    /// exact form.
    #[must_use]
    pub fn short(self) -> String {
        let trim = |value: f64| {
            let text = format!("{value:.2}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        };
        match self {
            Self::Unlimited => "unlimited".to_owned(),
            Self::PerSecond(rate) if rate < 1.0 => format!("{}/min", trim(rate * 60.0)),
            Self::PerSecond(rate) => format!("{}/s", trim(rate)),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::PerSecond(rate) => write!(f, "{rate}/s"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
