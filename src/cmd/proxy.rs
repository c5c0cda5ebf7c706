//! `omniscope proxy`: the pass-through, headless. Every proxied exchange folds into the same
//! statistics, event log and metrics a probe run feeds; at Ctrl-C or SIGTERM the summary per
//! provider (with the audit of the client) is printed and the report written.

use chrono::Utc;
use tokio::sync::mpsc;

use crate::cli::ProxyArgs;
use crate::clock::Clock;
use crate::cmd::CliError;
use crate::cmd::run::{end_report, finish_log};
use crate::config::{self, ConfigError, ConfigFile};
use crate::event::{Fact, ProviderEntry};
use crate::output_file::ReportFile;
use crate::probe::EVENT_CHANNEL_CAPACITY;
use crate::provider::{DEFAULT_BODY_CAP, Profiles};
use crate::proxy::{self, Limits, ProxyEvent, ProxySettings, Upstream};
use crate::recorder::Recorder;
use crate::session::{self, Session, Threads};
use crate::stats::SessionStats;

/// Events taken from the channel at once.
const EVENT_BATCH: usize = 256;
/// How long a job the client queued is followed by default before it counts as abandoned.
const DEFAULT_JOB_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Entry point for `omniscope proxy`.
///
/// # Errors
/// A usage or config error, an address that cannot be bound (exit 2); a failure (1).
pub fn main(args: &ProxyArgs) -> Result<(), CliError> {
    let args = args.clone();
    // Workers: the proxy relays many client connections at once, and relaying is CPU work
    // (parse, copy, classify) that one thread would serialise.
    session::block_on(Threads::Workers, async move { serve(&args).await })
}

/// Where the proxy listens, and what it may do: the flags of `omniscope proxy`.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    pub addr: std::net::SocketAddr,
    pub allow_remote: bool,
    pub guard: bool,
}

impl From<&ProxyArgs> for Listen {
    fn from(args: &ProxyArgs) -> Self {
        Self {
            addr: args.listen,
            allow_remote: args.allow_remote,
            guard: args.guard,
        }
    }
}

/// The proxy's settings from the config file: every loaded provider, at the config's endpoint
/// override or the profile's base URL, with the plan's concurrency for the audit. No keys: they
/// come from the client's requests.
///
/// # Errors
/// An endpoint that is not an http(s) URL, a `[providers.X]` for no known provider.
pub fn settings(
    file: &ConfigFile,
    origin: &str,
    profiles: &Profiles,
    listen: Listen,
) -> Result<ProxySettings, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    for name in file.providers.keys() {
        if profiles.get(name).is_none() {
            return Err(invalid(format!(
                "[providers.{name}]: unknown provider (known: {})",
                profiles.names().join(", ")
            )));
        }
    }
    let mut upstreams = Vec::new();
    for profile in profiles.iter() {
        let section = file.providers.get(&profile.name);
        let endpoint = section
            .and_then(|section| section.endpoint.clone())
            .unwrap_or_else(|| profile.base_url.clone());
        let base_url = reqwest::Url::parse(endpoint.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| {
                invalid(format!(
                    "provider {}: endpoint {endpoint:?} must be an http:// or https:// URL",
                    profile.name
                ))
            })?;
        upstreams.push(Upstream {
            concurrency: section
                .and_then(|section| section.concurrency)
                .or_else(|| profile.plan.and_then(|plan| plan.concurrency)),
            profile: profile.clone(),
            base_url,
        });
    }
    let body_cap = file
        .run
        .body_cap_bytes
        .map_or(DEFAULT_BODY_CAP, |cap| {
            usize::try_from(cap).unwrap_or(usize::MAX)
        })
        .max(1);
    Ok(ProxySettings {
        listen: listen.addr,
        allow_remote: listen.allow_remote,
        guard: listen.guard,
        upstreams,
        body_cap,
        job_max_wait: file.run.job_max_wait.unwrap_or(DEFAULT_JOB_MAX_WAIT),
        limits: Limits::default(),
    })
}

/// The session's first log record: the providers and the proxy's non-secret settings.
#[must_use]
pub fn session_start(settings: &ProxySettings, started_at: chrono::DateTime<Utc>) -> Fact {
    let providers = settings
        .upstreams
        .iter()
        .map(|upstream| ProviderEntry {
            name: upstream.profile.name.clone(),
            unit: upstream.profile.billing.unit,
            concurrency_limit: upstream.concurrency,
        })
        .collect();
    let mut described = described(settings);
    described.insert("mode".to_owned(), "proxy".into());
    Fact::SessionStart {
        started_at,
        providers,
        settings: described,
    }
}

/// The proxy's settings that are not secret, for a session's first record (`omniscope proxy`'s,
/// or under `"proxy"` in a dashboard's).
#[must_use]
pub fn described(settings: &ProxySettings) -> serde_json::Map<String, serde_json::Value> {
    let described = serde_json::json!({
        "listen": settings.listen.to_string(),
        "guard": settings.guard,
        "providers": settings.upstreams.iter().map(|upstream| serde_json::json!({
            "name": upstream.profile.name,
            // Credentials in a URL (`http://user:pass@host`) are sent, never written.
            "base_url": crate::redact::without_credentials(upstream.base_url.as_str()),
            "concurrency": upstream.concurrency,
        })).collect::<Vec<_>>(),
    });
    described.as_object().cloned().unwrap_or_default()
}

async fn serve(args: &ProxyArgs) -> Result<(), CliError> {
    let profiles = session::load_profiles()?;
    let (file, path) = config::load(args.config.as_deref())?;
    let origin = path.as_ref().map_or_else(
        || "command line (no config file)".to_owned(),
        |path| format!("config file {}", path.display()),
    );
    let settings = settings(&file, &origin, &profiles, Listen::from(args))?;
    let report_file = args
        .report
        .as_deref()
        .map(ReportFile::create)
        .transpose()
        .map_err(CliError::ReportOpen)?;
    let clock = Clock::real();
    let Session {
        mut stats,
        mut recorder,
        clock,
    } = Session::open(
        session_start(&settings, clock.now()),
        &args.outputs,
        file.log.policy(),
        clock,
    )
    .await?;
    let names: Vec<String> = settings
        .upstreams
        .iter()
        .map(|upstream| upstream.profile.name.clone())
        .collect();
    let (events_tx, mut events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let handle = proxy::serve(settings, events_tx).await?;
    crate::note!(
        "proxy listening on http://{addr}; point your client's base URL at http://{addr}/<provider> ({})",
        names.join(", "),
        addr = handle.local_addr
    );

    let mut stops = session::stop_signals();
    let mut joining: Option<tokio::task::JoinHandle<()>> = None;
    let mut handle = Some(handle);
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        tokio::select! {
            received = events.recv_many(&mut batch, EVENT_BATCH) => {
                if received == 0 {
                    // The proxy finished and dropped its sender.
                    break;
                }
                for event in batch.drain(..) {
                    take(event, &mut stats, &mut recorder).await;
                }
            }
            Some(()) = stops.recv() => {
                let Some(handle) = handle.take() else { break };
                crate::note!("stopping (exchanges in the air finish; signal again to stop now)");
                joining = Some(tokio::spawn(handle.join()));
            }
            _ = async { joining.as_mut()?.await.ok() }, if joining.is_some() => {
                // What the proxy sent before it finished is in the channel: take it, then stop
                // (a client connection still open must not keep the run from ending).
                while let Ok(event) = events.try_recv() {
                    take(event, &mut stats, &mut recorder).await;
                }
                break;
            }
        }
    }
    let ended_at = clock.now();
    let dropped = finish_log(recorder, ended_at).await;
    end_report(&stats, ended_at, dropped, report_file, "proxy")?;
    Ok(())
}

/// One event: told on stderr when the user should see it, recorded, folded.
async fn take(event: ProxyEvent, stats: &mut SessionStats, recorder: &mut Recorder) {
    match &event {
        ProxyEvent::Finding(finding) => crate::note!(
            "{}: the client {}: {}",
            finding.provider,
            finding.kind.label(),
            finding.detail
        ),
        ProxyEvent::Paused { provider, reason } => {
            crate::note!("{provider}: account error: {reason}");
        }
        ProxyEvent::Guarded {
            provider, reason, ..
        } => crate::note!("{provider}: {reason}"),
        _ => {}
    }
    if let Some(fact) = event.into_fact(Utc::now()) {
        recorder.record(&fact).await;
        stats.apply(fact);
    }
}
