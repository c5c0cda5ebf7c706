//! `omniscope run`: the engine without a screen. Events fold into [`SessionStats`]; at the end the
//! summary is printed, the report written, and the thresholds decide the exit status.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::config::{self, ConfigError, EngineConfig, Overrides, Thresholds};
use crate::eventlog::{EventLog, Record, Recorder};
use crate::probe::{EVENT_CHANNEL_CAPACITY, Engine, ProbeEvent};
use crate::provider::{self, Profiles};
use crate::stats::SessionStats;
use crate::{eventlog, metrics, paths, report};

/// The run completed, whatever it found.
pub const EXIT_OK: u8 = 0;
/// A usage, config or key error.
pub const EXIT_USAGE: u8 = 2;
/// A threshold from the config was broken.
pub const EXIT_THRESHOLD: u8 = 3;

/// Engine events taken from the channel at once.
const EVENT_BATCH: usize = 256;

/// Entry point for `omniscope run`.
#[must_use]
pub fn main(args: &RunArgs) -> ExitCode {
    // One thread runs the whole session. A probe run is I/O-bound, and one core sends tens of
    // thousands of attempts a second, far past any provider's rate limit; the work-stealing
    // scheduler only added cross-thread wake-ups (a futex call and a context switch for nearly every
    // event): about a quarter of the CPU per attempt (README "Performance"). The event log's
    // file writes run on the blocking pool (see `eventlog::writer`). The dashboard keeps two
    // workers: its drawing blocks on the terminal, and probing must go on meanwhile.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            crate::say!("omniscope: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Spawned rather than run in `block_on` directly, so that a panic in the session ends as one
    // error line and exit code 1 instead of unwinding out of `block_on`.
    let args = args.clone();
    runtime.block_on(async move {
        tokio::spawn(async move { run(&args).await })
            .await
            .unwrap_or_else(|error| {
                crate::say!("omniscope: the run stopped unexpectedly: {error}");
                ExitCode::FAILURE
            })
    })
}

/// What a run needs, checked before anything is sent.
pub struct Prepared {
    pub profiles: Profiles,
    pub engine: EngineConfig,
    pub thresholds: Thresholds,
}

/// Load profiles and config, resolve the CLI flags and keys.
///
/// # Errors
/// A message naming the file, line or variable at fault (exit 2).
pub fn prepare(args: &RunArgs) -> Result<Prepared, String> {
    let profiles =
        provider::load_profiles(paths::profiles_dir().as_deref()).map_err(|e| e.to_string())?;
    let (file, path) = config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let origin = path.as_ref().map_or_else(
        || "command line (no config file)".to_owned(),
        |path| format!("config file {}", path.display()),
    );
    let overrides = Overrides {
        provider: args.provider.clone(),
        endpoint: args.endpoint.clone(),
        api_key_env: args.api_key_env.clone(),
        targets: args.targets.clone(),
        once: args.once,
        duration: args.duration,
        every: args.every,
        concurrency: args.concurrency,
        rate: args.rate,
        timeout: args.timeout,
    };
    let engine = config::resolve(&file, &origin, &overrides, &profiles, |var| {
        std::env::var(var).ok()
    })
    .map_err(|error: ConfigError| error.to_string())?;
    Ok(Prepared {
        profiles,
        engine,
        thresholds: file.thresholds,
    })
}

async fn run(args: &RunArgs) -> ExitCode {
    let prepared = match prepare(args) {
        Ok(prepared) => prepared,
        Err(message) => {
            crate::say!("omniscope: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Open the report file first: a bad path is found before any money is spent.
    let mut report_file = match args.report.as_deref().map(open_report).transpose() {
        Ok(file) => file,
        Err(message) => {
            crate::say!("omniscope: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };

    let mut stats = SessionStats::new(Utc::now());
    for settings in &prepared.engine.providers {
        if let Some(profile) = prepared.profiles.get(&settings.name) {
            stats
                .register(&settings.name, profile.billing.unit)
                .set_configured_limit(settings.concurrency);
        }
    }
    let mut recorder = match start_recorder(args, &stats, &prepared).await {
        Ok(recorder) => recorder,
        Err(message) => {
            crate::say!("omniscope: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (events_tx, mut events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let handle = match Engine::spawn(prepared.engine, &prepared.profiles, events_tx) {
        Ok(handle) => handle,
        Err(error) => {
            crate::say!("omniscope: {error}");
            return ExitCode::FAILURE;
        }
    };

    let (stop_tx, mut stops) = mpsc::channel(4);
    tokio::spawn(forward_stop_signals(stop_tx));
    let mut stop_requests = 0;
    // Taken in batches: under load one wake-up and one select per batch, not per event.
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        tokio::select! {
            received = events.recv_many(&mut batch, EVENT_BATCH) => {
                if received == 0 {
                    break;
                }
                for event in batch.drain(..) {
                    narrate(&event);
                    recorder.event(&event).await;
                    event.apply_to(&mut stats);
                }
            }
            Some(()) = stops.recv() => {
                stop_requests += 1;
                handle.shutdown();
                if stop_requests == 1 {
                    crate::say!("omniscope: stopping (requests in the air finish; signal again to stop now)");
                } else {
                    break;
                }
            }
        }
    }
    if stop_requests < 2 {
        handle.join().await;
    }

    // One instant for the report and the log's session_end: a replay then reports the same duration.
    let ended_at = Utc::now();
    if let Some(path) = recorder.finish(ended_at).await {
        crate::say!("omniscope: event log {}", path.display());
    }
    let report = report::build(&stats, ended_at);
    crate::stdout::print(&report::summary(&report));
    if let (Some(file), Some(path)) = (report_file.as_mut(), args.report.as_deref())
        && let Err(message) = write_report(file, path, &report)
    {
        crate::say!("omniscope: {message}");
        return ExitCode::FAILURE;
    }
    let broken = report::broken_thresholds(&report, &prepared.thresholds);
    if broken.is_empty() {
        ExitCode::from(EXIT_OK)
    } else {
        for line in &broken {
            crate::say!("omniscope: threshold broken: {line}");
        }
        ExitCode::from(EXIT_THRESHOLD)
    }
}

/// The event log (unless `--no-log`) and the metrics server (with `--metrics-addr`), both
/// started before any money is spent, so a bad path or address stops the run early.
async fn start_recorder(
    args: &RunArgs,
    stats: &SessionStats,
    prepared: &Prepared,
) -> Result<Recorder, String> {
    let outputs = RecorderOutputs {
        log: args.log.clone(),
        no_log: args.no_log,
        metrics_addr: args.metrics_addr,
    };
    start_recorder_for(
        &outputs,
        stats.started_at,
        &prepared.engine,
        &prepared.profiles,
    )
    .await
}

/// Where a session's records go: the event log and the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct RecorderOutputs {
    pub log: Option<std::path::PathBuf>,
    pub no_log: bool,
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Open the event log (unless `no_log`) and serve metrics (when an address is given), and record
/// the session's start. Shared by `run` and the dashboard so both record alike.
///
/// # Errors
/// The log file cannot be created or the metrics address cannot be bound; the message says which.
pub async fn start_recorder_for(
    outputs: &RecorderOutputs,
    started_at: chrono::DateTime<Utc>,
    engine: &crate::config::EngineConfig,
    profiles: &crate::provider::Profiles,
) -> Result<Recorder, String> {
    let log = match eventlog::choose_path(outputs.log.clone(), outputs.no_log, started_at) {
        Some(path) => Some(EventLog::create(&path).map_err(|error| error.to_string())?),
        None => None,
    };
    let metrics = match outputs.metrics_addr {
        Some(addr) => {
            let (registry, metrics) = metrics::new_registry();
            let server = metrics::serve(addr, Arc::new(registry))
                .await
                .map_err(|error| error.to_string())?;
            crate::say!("omniscope: metrics at http://{}/metrics", server.local_addr);
            // Dropping the handle detaches the server task: it serves until the process ends.
            drop(server);
            Some(metrics)
        }
        None => None,
    };
    let mut recorder = Recorder::new(log, metrics);
    recorder
        .record(Record::session_start(started_at, engine, profiles))
        .await;
    Ok(recorder)
}

fn open_report(path: &Path) -> Result<File, String> {
    File::create(path)
        .map_err(|error| format!("cannot write report file {}: {error}", path.display()))
}

fn write_report(file: &mut File, path: &Path, report: &report::Report) -> Result<(), String> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|error| format!("cannot encode the report: {error}"))?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write report file {}: {error}", path.display()))
}

/// What a headless user should see while it runs (stderr; stdout carries the summary).
fn narrate(event: &ProbeEvent) {
    match event {
        ProbeEvent::Paused { provider, reason } => {
            crate::say!("omniscope: {provider} paused: {reason}");
        }
        ProbeEvent::Hold {
            provider,
            until,
            reason,
        } => crate::say!("omniscope: {provider} held until {until}: {reason}"),
        ProbeEvent::UsageFailed { provider, message } => {
            crate::say!("omniscope: {provider}: {message}");
        }
        ProbeEvent::GaveUp {
            provider,
            reason,
            offer: Some(offer),
            ..
        } => crate::say!("omniscope: {provider}: {reason} (an escalated retry may help: {offer})"),
        _ => {}
    }
}

/// Ctrl-C, or SIGTERM on Unix, each forwarded as one stop request. Installed once, so a signal
/// between two loop passes is not lost.
pub(crate) async fn forward_stop_signals(stops: mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        loop {
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                result = tokio::signal::ctrl_c() => if result.is_err() { return },
                () = terminated => {}
            }
            if stops.send(()).await.is_err() {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    {
        while tokio::signal::ctrl_c().await.is_ok() {
            if stops.send(()).await.is_err() {
                return;
            }
        }
    }
}
