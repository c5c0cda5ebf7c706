//! What a probing session (`run`, later `watch` and `demo`) does with each engine event besides
//! folding it into its statistics: append it to the event log and update the metrics.

use chrono::{DateTime, Utc};

use super::writer::LogCounts;
use super::{EventLog, ProviderEntry, Record};
use crate::config::EngineConfig;
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::probe::ProbeEvent;
use crate::provider::Profiles;

impl Record {
    /// The log record of an engine event received at `now`; `None` for events that change no
    /// statistics (retry scheduled, job pending, hold, …: the dashboard shows them live only).
    #[must_use]
    pub fn from_event(event: &ProbeEvent, now: DateTime<Utc>) -> Option<Self> {
        Some(match event {
            ProbeEvent::AttemptStarted {
                provider,
                at,
                in_flight,
                ..
            } => Self::InFlight {
                provider: provider.clone(),
                n: *in_flight,
                at: *at,
            },
            ProbeEvent::Attempt { outcome, in_flight } => Self::Attempt {
                at: now,
                outcome: Box::new(logged_outcome(outcome)),
                in_flight: Some(*in_flight),
            },
            ProbeEvent::Paused { provider, reason } => Self::Paused {
                provider: provider.clone(),
                reason: reason.clone(),
                at: now,
            },
            ProbeEvent::Resumed { provider } => Self::Resumed {
                provider: provider.clone(),
                reason: None,
                at: now,
            },
            ProbeEvent::Skipped {
                provider,
                probe_id,
                target_url,
                reason,
            } => Self::Skipped {
                provider: provider.clone(),
                reason: reason.clone(),
                at: now,
                probe_id: Some(*probe_id),
                target_url: Some(target_url.clone()),
            },
            ProbeEvent::Usage {
                provider,
                reading,
                at,
            } => Self::Usage {
                provider: provider.clone(),
                reading: reading.clone(),
                at: *at,
            },
            ProbeEvent::Limits {
                provider,
                concurrency,
                ..
            } => Self::Limits {
                provider: provider.clone(),
                concurrency: *concurrency,
                at: now,
            },
            ProbeEvent::RetryScheduled { .. }
            | ProbeEvent::GaveUp { .. }
            | ProbeEvent::JobPending { .. }
            | ProbeEvent::Hold { .. }
            | ProbeEvent::UsageFailed { .. }
            | ProbeEvent::CommandRejected { .. } => return None,
        })
    }

    /// The first record of a session: its providers as registered, and its settings that are
    /// not secret (the key's variable name, never the key).
    #[must_use]
    pub fn session_start(
        started_at: DateTime<Utc>,
        config: &EngineConfig,
        profiles: &Profiles,
    ) -> Self {
        let providers = config
            .providers
            .iter()
            .filter_map(|settings| {
                profiles.get(&settings.name).map(|profile| ProviderEntry {
                    name: settings.name.clone(),
                    unit: profile.billing.unit,
                    concurrency_limit: Some(settings.concurrency),
                })
            })
            .collect();
        let settings = serde_json::json!({
            "providers": config.providers.iter().map(|p| serde_json::json!({
                "name": p.name,
                // Credentials in a URL (`http://user:pass@host`) are sent, never written.
                "base_url": crate::redact::without_credentials(&p.base_url),
                "api_key_env": p.api_key_env,
                "concurrency": p.concurrency,
                "rate": p.rate,
            })).collect::<Vec<_>>(),
            "probes": config.probes.iter().map(|p| serde_json::json!({
                "id": p.id,
                "provider": p.provider,
                "targets": p.targets.iter().map(|target| crate::redact::without_credentials(target)).collect::<Vec<_>>(),
                "options": p.options,
                "every_s": p.every.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "timeout_s": config.timeout.as_secs_f64(),
        });
        Self::SessionStart {
            started_at,
            providers,
            settings: settings.as_object().cloned().unwrap_or_default(),
        }
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
        job: outcome.job.clone(),
        body_bytes: outcome.body_bytes,
        body_excerpt: String::new(),
        headers: Vec::new(),
        class: outcome.class.clone(),
    }
}

/// The event log and the metrics of one session, either optional.
#[derive(Debug, Default)]
pub struct Recorder {
    log: Option<EventLog>,
    /// The log's counts, kept after a failed log is closed: what it could not write is dropped.
    log_counts: Option<LogCounts>,
    metrics: Option<Metrics>,
}

impl Recorder {
    #[must_use]
    pub fn new(log: Option<EventLog>, metrics: Option<Metrics>) -> Self {
        let log_counts = log.as_ref().map(EventLog::counts);
        Self {
            log,
            log_counts,
            metrics,
        }
    }

    /// The event log's counts (lines written, records dropped), when there is a log. Final once
    /// [`Recorder::finish`] has returned.
    #[must_use]
    pub fn log_counts(&self) -> Option<LogCounts> {
        self.log_counts.clone()
    }

    /// Log and measure one record. A log that fails is reported once and closed; the session
    /// goes on, and what it would have logged counts as dropped.
    pub async fn record(&mut self, record: Record) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(&record);
        }
        if self.log.is_none()
            && let Some(counts) = &self.log_counts
        {
            counts.lost();
        }
        if let Some(log) = &self.log
            && log.send(record).await.is_err()
            && let Some(log) = self.log.take()
            && let Err(error) = log.close().await
        {
            crate::note!("event log stopped: {error}");
        }
    }

    /// Log the engine event, if it is one the log keeps.
    pub async fn event(&mut self, event: &ProbeEvent) {
        // With neither output on (`--no-log`, no metrics), building the record would copy the
        // outcome for nothing.
        if self.log_counts.is_none() && self.metrics.is_none() {
            return;
        }
        if let Some(record) = Record::from_event(event, Utc::now()) {
            self.record(record).await;
        }
    }

    /// Write `session_end` and close the log. Returns the log's path, for the user.
    pub async fn finish(mut self, at: DateTime<Utc>) -> Option<std::path::PathBuf> {
        self.record(Record::SessionEnd { at }).await;
        let log = self.log.take()?;
        let path = log.path().to_owned();
        match log.close().await {
            Ok(_) => Some(path),
            Err(error) => {
                crate::note!("{error}");
                None
            }
        }
    }
}
