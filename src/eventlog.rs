//! The NDJSON event log, schema `omniscope.event.v1`: what a session saw, one JSON object a line.
//!
//! A [`Record`] is what the log holds; [`apply`] folds one into [`SessionStats`] exactly as the live
//! session did, so a replayed log gives the same report. The [`writer`] appends records from a
//! bounded channel and flushes whole lines at least once a second; the [`reader`] is tolerant
//! (unparseable lines are counted, never fatal); [`replay`] re-emits a log with its original timing.

pub mod reader;
pub mod recorder;
pub mod replay;
pub mod writer;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::{BillingUnit, Outcome};
use crate::provider::UsageReading;
use crate::stats::SessionStats;

pub use reader::{ReadLog, read_log, read_path};
pub use recorder::{Recorder, logged_outcome};
pub use writer::{EventLog, LogError};

/// The schema name every line carries; bump only on an incompatible change (adding fields and
/// record types is compatible: readers skip what they do not know).
pub const SCHEMA: &str = "omniscope.event.v1";

/// One line of the log: `{"schema": "omniscope.event.v1", "type": …, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub schema: String,
    #[serde(flatten)]
    pub record: Record,
}

impl Line {
    #[must_use]
    pub fn new(record: Record) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            record,
        }
    }
}

/// [`Line`] borrowed, for writing without a copy.
#[derive(Serialize)]
struct LineRef<'a> {
    schema: &'static str,
    #[serde(flatten)]
    record: &'a Record,
}

/// Something a session saw. Every record carries `at`, the wall-clock instant it happened, which
/// replay uses to reproduce the session's timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line: when the session started, its providers, and its settings (never a key).
    SessionStart {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        started_at: DateTime<Utc>,
        providers: Vec<ProviderEntry>,
        /// The run's settings that are not secret (targets, interval, rate, …), free-form.
        #[serde(default)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
    /// One attempt ended. `in_flight` is the provider's count after it left, when known.
    Attempt {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        outcome: Box<Outcome>,
        #[serde(default)]
        in_flight: Option<u32>,
    },
    /// The provider's requests in the air changed (an attempt was sent).
    InFlight {
        provider: String,
        n: u32,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// A probe was not sent.
    Skipped {
        provider: String,
        reason: String,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
        #[serde(default)]
        probe_id: Option<u64>,
        #[serde(default)]
        target_url: Option<String>,
    },
    /// The provider was paused: an account error (the reason starts with its code or status) or
    /// the user.
    Paused {
        provider: String,
        reason: String,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    Resumed {
        provider: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// A reading of the provider's usage endpoint.
    Usage {
        provider: String,
        reading: UsageReading,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// The concurrency limit the client enforces for this provider (at start, or after a change).
    Limits {
        provider: String,
        concurrency: u32,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        at: DateTime<Utc>,
    },
    /// The last line of a session that ended cleanly; `at` is the instant its report was built.
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

impl Record {
    /// When the record happened.
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
            | Self::SessionEnd { at } => *at,
        }
    }

    /// One NDJSON line, newline included.
    ///
    /// # Errors
    /// Only if serde cannot encode a value (a non-finite float is written as null, so in practice
    /// never).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let mut line = Vec::new();
        self.append_line(&mut line)?;
        // serde_json writes UTF-8 only.
        String::from_utf8(line).map_err(serde::ser::Error::custom)
    }

    /// Append the line (newline included) to `buffer`; on an error `buffer` is as it was, so a
    /// writer never sees half a line. The log's writer reuses one buffer for every record.
    ///
    /// # Errors
    /// As [`Record::to_line`].
    pub fn append_line(&self, buffer: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let start = buffer.len();
        let written = serde_json::to_writer(
            &mut *buffer,
            &LineRef {
                schema: SCHEMA,
                record: self,
            },
        );
        match written {
            Ok(()) => {
                buffer.push(b'\n');
                Ok(())
            }
            Err(error) => {
                buffer.truncate(start);
                Err(error)
            }
        }
    }
}

/// Fold one record into the statistics, exactly as the live session folds the event it came from
/// (the same [`SessionStats`] methods in the same order), so a replay counts what the run counted.
pub fn apply(stats: &mut SessionStats, record: &Record) {
    match record {
        Record::SessionStart {
            started_at,
            providers,
            ..
        } => {
            stats.started_at = *started_at;
            for entry in providers {
                let provider = stats.register(&entry.name, entry.unit);
                if let Some(limit) = entry.concurrency_limit {
                    provider.set_configured_limit(limit);
                }
            }
        }
        Record::Attempt {
            outcome, in_flight, ..
        } => stats.ingest_attempt((**outcome).clone(), *in_flight),
        Record::InFlight { provider, n, at } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.set_in_flight(*n, *at);
            }
        }
        Record::Skipped {
            provider, reason, ..
        } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.record_skipped(reason);
            }
        }
        Record::Paused {
            provider, reason, ..
        } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.paused = Some(reason.clone());
            }
        }
        Record::Resumed { provider, .. } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.paused = None;
            }
        }
        Record::Usage {
            provider,
            reading,
            at,
        } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.record_usage(reading, *at);
            }
        }
        Record::Limits {
            provider,
            concurrency,
            ..
        } => {
            if let Some(provider) = stats.provider_mut(provider) {
                provider.set_configured_limit(*concurrency);
            }
        }
        Record::SessionEnd { .. } => {}
    }
}

/// The default log file of a session started at `started_at`:
/// `<data dir>/logs/session-<UTC timestamp>.ndjson`. `None` when no data dir can be determined.
#[must_use]
pub fn default_path(started_at: DateTime<Utc>) -> Option<PathBuf> {
    crate::paths::data_dir().map(|dir| {
        dir.join("logs").join(format!(
            "session-{}.ndjson",
            started_at.format("%Y%m%dT%H%M%S%.3fZ")
        ))
    })
}

/// Where a session logs, from `--log FILE` / `--no-log`.
#[must_use]
pub fn choose_path(
    log: Option<PathBuf>,
    no_log: bool,
    started_at: DateTime<Utc>,
) -> Option<PathBuf> {
    if no_log {
        return None;
    }
    log.or_else(|| default_path(started_at))
}

#[cfg(test)]
mod tests;
