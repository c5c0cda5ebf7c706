//! The NDJSON event log, schema `omniscope.event.v1`: what a session saw, one [`Fact`] a line.
//!
//! The log holds facts exactly as the session folded them ([`crate::stats::SessionStats::apply`]),
//! so a replayed log gives the same report. The [`writer`] appends facts from a bounded channel
//! and flushes whole lines at least once a second; the [`reader`] is tolerant (unparseable lines
//! are counted, never fatal); [`replay`] re-emits a log with its original timing.

pub mod compact;
pub mod reader;
pub mod replay;
pub mod rotation;
pub mod writer;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Fact;
use crate::outcome::Outcome;

pub use reader::{ReadLog, read_log, read_path};
pub use writer::{EventLog, LogError};

/// The schema this omniscope writes. Version 2 added the compact lines ([`compact`]): a v1
/// reader would skip them, and so miss attempts, hence the new name.
pub const SCHEMA: &str = "omniscope.event.v2";
/// The schemas this omniscope reads: v1 logs (every attempt a full line) replay as they did.
pub const SCHEMAS_READ: [&str; 2] = ["omniscope.event.v1", SCHEMA];

/// One full line of the log: `{"schema": "omniscope.event.v2", "type": …, …}`; an attempt's line
/// may name the compact slot it fills (`"slot": 17`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    #[serde(flatten)]
    pub fact: Fact,
}

impl Line {
    #[must_use]
    pub fn new(fact: Fact) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            slot: None,
            fact,
        }
    }
}

/// [`Line`] borrowed, for writing without a copy.
#[derive(Serialize)]
struct LineRef<'a> {
    schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<u16>,
    #[serde(flatten)]
    fact: &'a Fact,
}

/// One full NDJSON line, newline included (never a compact one: see [`compact::Encoder`]).
///
/// # Errors
/// Only if serde cannot encode a value (a non-finite float is written as null, so in practice
/// never).
pub fn to_line(fact: &Fact) -> Result<String, serde_json::Error> {
    let mut line = Vec::new();
    write_full(fact, None, &mut line)?;
    line.push(b'\n');
    // serde_json writes UTF-8 only.
    String::from_utf8(line).map_err(serde::ser::Error::custom)
}

/// Write the full line of `fact` (no newline), naming the compact slot it fills.
fn write_full(
    fact: &Fact,
    slot: Option<u16>,
    buffer: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    serde_json::to_writer(
        buffer,
        &LineRef {
            schema: SCHEMA,
            slot,
            fact,
        },
    )
}

/// The fact as the log keeps it: a copy, with a succeeded attempt's outcome made lean
/// ([`logged_outcome`]).
#[must_use]
pub fn logged(fact: &Fact) -> Fact {
    match fact {
        Fact::Attempt {
            at,
            outcome,
            in_flight,
        } => Fact::Attempt {
            at: *at,
            outcome: Box::new(logged_outcome(outcome)),
            in_flight: *in_flight,
        },
        other => other.clone(),
    }
}

/// The outcome as the log keeps it. A succeeded attempt is logged without its response headers
/// and body excerpt (both left empty): on a load run they were a third of the log (~0.5 KB of
/// ~1.6 KB per attempt), and nobody inspects a success for them. A failed attempt keeps both:
/// they are what its inspection needs.
#[must_use]
pub fn logged_outcome(outcome: &Outcome) -> Outcome {
    if !outcome.succeeded() {
        return outcome.clone();
    }
    // Spelled out (not `..outcome.clone()`) so the bulky fields are never copied; a new field
    // fails to compile here until it is decided on.
    Outcome {
        provider: outcome.provider.clone(),
        probe_id: outcome.probe_id,
        attempt_id: outcome.attempt_id,
        attempt: outcome.attempt,
        retry_of: outcome.retry_of,
        target_url: outcome.target_url.clone(),
        options: outcome.options.clone(),
        started_at: outcome.started_at,
        latency: outcome.latency,
        transport: outcome.transport.clone(),
        api_status: outcome.api_status,
        api_success: outcome.api_success,
        error_code: outcome.error_code.clone(),
        message: outcome.message.clone(),
        target_status: outcome.target_status,
        request_id: outcome.request_id.clone(),
        rate_limit: outcome.rate_limit.clone(),
        concurrency: outcome.concurrency,
        billing: outcome.billing.clone(),
        provider_work: outcome.provider_work,
        job: outcome.job.clone(),
        body_bytes: outcome.body_bytes,
        body_excerpt: String::new(),
        headers: Vec::new(),
        class: outcome.class.clone(),
        origin: outcome.origin,
    }
}

/// The default log file of a session started at `started_at`:
/// `<data dir>/logs/session-<UTC timestamp>.ndjson.gz` (compressed: `zcat` reads it). `None` when
/// no data dir can be determined.
#[must_use]
pub fn default_path(started_at: DateTime<Utc>) -> Option<PathBuf> {
    crate::paths::data_dir().map(|dir| {
        dir.join("logs").join(format!(
            "session-{}.ndjson.gz",
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
pub(crate) mod tests;
