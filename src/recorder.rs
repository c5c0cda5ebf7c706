//! What a live session does with each fact besides folding it into its statistics: append it to
//! the event log and update the metrics. Shared by `run` and the dashboard, so both record alike.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::event::{Event, Fact, ProviderEntry};
use crate::eventlog::writer::LogCounts;
use crate::eventlog::{self, EventLog};
use crate::metrics::Metrics;
use crate::provider::Profiles;

/// The first fact of a session: its providers as registered, and its settings that are not
/// secret (the key's variable name, never the key).
#[must_use]
pub fn session_start(
    started_at: DateTime<Utc>,
    config: &EngineConfig,
    profiles: &Profiles,
) -> Fact {
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
    Fact::SessionStart {
        started_at,
        providers,
        settings: settings.as_object().cloned().unwrap_or_default(),
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

    /// Log and measure one fact. A log that fails is reported once and closed; the session
    /// goes on, and what it would have logged counts as dropped.
    pub async fn record(&mut self, fact: &Fact) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(fact);
        }
        if self.log.is_none()
            && let Some(counts) = &self.log_counts
        {
            counts.lost();
        }
        if let Some(log) = &self.log
            && log.send(eventlog::logged(fact)).await.is_err()
            && let Some(log) = self.log.take()
            && let Err(error) = log.close().await
        {
            crate::note!("event log stopped: {error}");
        }
    }

    /// Record every event's fact before passing the event on to `screen`, and keep recording
    /// after the screen has gone, until `events` ends; then finish the log (see
    /// [`Recorder::finish`]). The dashboard runs this between the engine and its screen.
    pub async fn record_and_forward(
        mut self,
        mut events: mpsc::Receiver<Event>,
        screen: mpsc::Sender<Event>,
        clock: Clock,
    ) -> Option<std::path::PathBuf> {
        let mut screen = Some(screen);
        while let Some(event) = events.recv().await {
            if let Event::Fact(fact) = &event {
                self.record(fact).await;
            }
            if let Some(tx) = &screen
                && tx.send(event).await.is_err()
            {
                screen = None;
            }
        }
        self.finish(clock.now()).await
    }

    /// Write `session_end` and close the log. Returns the log's path, for the user.
    pub async fn finish(mut self, at: DateTime<Utc>) -> Option<std::path::PathBuf> {
        self.record(&Fact::SessionEnd { at }).await;
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
