//! The compact lines of schema v2: an attempt that repeats an earlier one in all but its ids,
//! times, sizes and readings is written as a short line naming that earlier attempt's slot, and an
//! in-flight count as a short line of its own.
//!
//! On a load run nearly every attempt is such a repeat (same provider, probe, target, statuses,
//! billing, classification), and its full line was ~1.1 KB, mostly the same text every time:
//! `{"a":17,"t":…,"s":…,"l":…,"i":…,"b":358}` carries what differs in ~110 bytes, and parses
//! several times faster. The full line of an attempt fills a slot (`"slot": 17` beside its
//! `schema`); a compact line is that slot's outcome with its own varying fields. Slots are few
//! ([`SLOTS`]) and chosen by a hash of what usually stays the same, so both sides keep a bounded
//! table whatever a provider or a proxied scraper sends, and a collision only costs a full line.
//!
//! Nothing is lost: [`Decoder`] gives back the very fact the [`Encoder`] was handed, so a replay
//! folds what the live session folded. The writer starts each file (and each rotated part) with an
//! empty table, so every file reads on its own.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Fact;
use crate::outcome::{ConcurrencyReading, Origin, Outcome, ProviderWork, RateLimitReading};

/// How many template outcomes a log keeps at once.
pub const SLOTS: usize = 256;

/// How a compact attempt line starts: the readers dispatch on it without a general parse.
pub const ATTEMPT_PREFIX: &[u8] = b"{\"a\":";
/// How a compact in-flight line starts.
pub const IN_FLIGHT_PREFIX: &[u8] = b"{\"p\":";

/// A compact attempt: the slot of its template and every field an attempt of the same template
/// may change. Times are Unix nanoseconds, latency nanoseconds: exact, and cheap to read.
#[derive(Debug, Serialize, Deserialize)]
struct CompactAttempt<'a> {
    a: u16,
    /// The fact's `at`.
    t: i64,
    /// `started_at`.
    s: i64,
    /// Latency.
    l: u64,
    /// `attempt_id`.
    i: u64,
    /// `attempt`, when not 1.
    #[serde(default = "first_try", skip_serializing_if = "is_first_try")]
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u64>,
    /// `request_id`.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    q: Option<std::borrow::Cow<'a, str>>,
    /// `body_bytes`.
    b: u64,
    /// The fact's `in_flight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<u32>,
    #[serde(default, skip_serializing_if = "is_default")]
    rl: RateLimitReading,
    #[serde(default, skip_serializing_if = "is_default")]
    cc: ConcurrencyReading,
    /// `provider_work` (what the provider says it spent: it varies from one attempt to the next).
    #[serde(default, skip_serializing_if = "is_default")]
    w: ProviderWork,
}

/// A compact in-flight count.
#[derive(Debug, Serialize, Deserialize)]
struct CompactInFlight<'a> {
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    n: u32,
    t: i64,
    /// Whose requests these are, when not omniscope's probes.
    #[serde(default, skip_serializing_if = "is_default")]
    o: Origin,
}

fn first_try() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if hands a reference
fn is_first_try(n: &u32) -> bool {
    *n == 1
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The slot of an outcome: a hash of the fields that usually stay the same for one probe's target
/// (so a success and a failure of the same target keep a slot each).
fn slot_of(outcome: &Outcome) -> u16 {
    let mut hasher = std::hash::DefaultHasher::new();
    outcome.provider.hash(&mut hasher);
    outcome.probe_id.hash(&mut hasher);
    outcome.target_url.hash(&mut hasher);
    outcome.api_status.hash(&mut hasher);
    outcome.target_status.hash(&mut hasher);
    outcome.error_code.hash(&mut hasher);
    outcome.origin.hash(&mut hasher);
    // SLOTS fits in u16, so the remainder does.
    u16::try_from(hasher.finish() % SLOTS as u64).unwrap_or(0)
}

/// Whether `outcome` is `template` in all the fields a compact line does not carry. Spelled out so
/// that a new field of [`Outcome`] fails to compile here until it is decided on.
fn repeats(template: &Outcome, outcome: &Outcome) -> bool {
    let Outcome {
        provider,
        probe_id,
        attempt_id: _,
        attempt: _,
        retry_of: _,
        target_url,
        options,
        started_at: _,
        latency: _,
        transport,
        api_status,
        api_success,
        error_code,
        message,
        target_status,
        request_id: _,
        rate_limit: _,
        concurrency: _,
        billing,
        provider_work: _,
        job,
        body_bytes: _,
        body_excerpt,
        headers,
        class,
        origin,
    } = outcome;
    *provider == template.provider
        && *probe_id == template.probe_id
        && *target_url == template.target_url
        && *options == template.options
        && *transport == template.transport
        && *api_status == template.api_status
        && *api_success == template.api_success
        && *error_code == template.error_code
        && *message == template.message
        && *target_status == template.target_status
        && *billing == template.billing
        && *job == template.job
        && *body_excerpt == template.body_excerpt
        && *headers == template.headers
        && *class == template.class
        && *origin == template.origin
}

fn nanos(at: DateTime<Utc>) -> Option<i64> {
    at.timestamp_nanos_opt()
}

fn latency_nanos(latency: Duration) -> Option<u64> {
    u64::try_from(latency.as_nanos()).ok()
}

/// The outcome each slot holds: [`SLOTS`] of them, all empty at first.
#[derive(Debug, Clone)]
struct Templates(Vec<Option<Outcome>>);

impl Default for Templates {
    fn default() -> Self {
        Self(vec![None; SLOTS])
    }
}

/// The writer's side: the outcomes the slots hold in the file being written.
#[derive(Debug, Default)]
pub struct Encoder {
    templates: Templates,
}

impl Encoder {
    /// Forget every template: the next file starts afresh, and reads on its own.
    pub fn reset(&mut self) {
        self.templates.0.iter_mut().for_each(|slot| *slot = None);
    }

    /// Append the line of `fact` (newline included) to `buffer`; on an error `buffer` is as it
    /// was, so a writer never sees half a line.
    ///
    /// # Errors
    /// Only if serde cannot encode a value (in practice never).
    pub fn append(&mut self, fact: &Fact, buffer: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let start = buffer.len();
        let written = self.append_unchecked(fact, buffer);
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

    fn append_unchecked(
        &mut self,
        fact: &Fact,
        buffer: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        match fact {
            Fact::Attempt {
                at,
                outcome,
                in_flight,
            } => self.append_attempt(*at, outcome, *in_flight, buffer),
            Fact::InFlight {
                provider,
                n,
                at,
                origin,
            } => match nanos(*at) {
                Some(t) => serde_json::to_writer(
                    buffer,
                    &CompactInFlight {
                        p: provider.as_str().into(),
                        n: *n,
                        t,
                        o: *origin,
                    },
                ),
                None => super::write_full(fact, None, buffer),
            },
            other => super::write_full(other, None, buffer),
        }
    }

    fn append_attempt(
        &mut self,
        at: DateTime<Utc>,
        outcome: &Outcome,
        in_flight: Option<u32>,
        buffer: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        let slot = slot_of(outcome);
        let index = usize::from(slot);
        let times = (
            nanos(at),
            nanos(outcome.started_at),
            latency_nanos(outcome.latency),
        );
        if let (Some(template), (Some(t), Some(s), Some(l))) = (&self.templates.0[index], times)
            && repeats(template, outcome)
        {
            return serde_json::to_writer(
                buffer,
                &CompactAttempt {
                    a: slot,
                    t,
                    s,
                    l,
                    i: outcome.attempt_id,
                    n: outcome.attempt,
                    r: outcome.retry_of,
                    q: outcome.request_id.as_deref().map(Into::into),
                    b: outcome.body_bytes,
                    f: in_flight,
                    rl: outcome.rate_limit.clone(),
                    cc: outcome.concurrency,
                    w: outcome.provider_work,
                },
            );
        }
        let fact = Fact::Attempt {
            at,
            outcome: Box::new(outcome.clone()),
            in_flight,
        };
        super::write_full(&fact, Some(slot), buffer)?;
        let Fact::Attempt { outcome, .. } = fact else {
            unreachable!("built as an attempt just above")
        };
        self.templates.0[index] = Some(*outcome);
        Ok(())
    }
}

/// The reader's side: the outcomes the slots hold at the point of the log being read.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    templates: Templates,
}

/// Why a line could not be read.
pub type LineError = String;

impl Decoder {
    /// A full attempt line filled `slot` with its outcome.
    pub fn fill(&mut self, slot: u16, outcome: &Outcome) {
        if let Some(template) = self.templates.0.get_mut(usize::from(slot)) {
            *template = Some(outcome.clone());
        }
    }

    /// Read a compact line, if `bytes` is one; `None` for any other line.
    #[must_use]
    pub fn compact(&self, bytes: &[u8]) -> Option<Result<Fact, LineError>> {
        if bytes.starts_with(ATTEMPT_PREFIX) {
            Some(self.attempt(bytes))
        } else if bytes.starts_with(IN_FLIGHT_PREFIX) {
            Some(in_flight(bytes))
        } else {
            None
        }
    }

    fn attempt(&self, bytes: &[u8]) -> Result<Fact, LineError> {
        let line: CompactAttempt =
            serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        let template = self
            .templates
            .0
            .get(usize::from(line.a))
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("compact attempt of slot {}, never filled", line.a))?;
        let mut outcome = template.clone();
        outcome.attempt_id = line.i;
        outcome.attempt = line.n;
        outcome.retry_of = line.r;
        outcome.started_at = DateTime::from_timestamp_nanos(line.s);
        outcome.latency = Duration::from_nanos(line.l);
        outcome.request_id = line.q.map(std::borrow::Cow::into_owned);
        outcome.body_bytes = line.b;
        outcome.rate_limit = line.rl;
        outcome.concurrency = line.cc;
        outcome.provider_work = line.w;
        Ok(Fact::Attempt {
            at: DateTime::from_timestamp_nanos(line.t),
            outcome: Box::new(outcome),
            in_flight: line.f,
        })
    }
}

fn in_flight(bytes: &[u8]) -> Result<Fact, LineError> {
    let line: CompactInFlight = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    Ok(Fact::InFlight {
        provider: line.p.into_owned(),
        n: line.n,
        at: DateTime::from_timestamp_nanos(line.t),
        origin: line.o,
    })
}
