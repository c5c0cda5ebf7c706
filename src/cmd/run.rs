//! `omniscope run`: the engine without a screen. Events fold into the session's statistics; at
//! the end the summary is printed, the report written, and the thresholds decide the exit status.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use crate::cli::RunArgs;
use crate::cmd::CliError;
use crate::probe::ProbeEvent;
use crate::report;
use crate::session::{self, Session, Threads};

/// Engine events taken from the channel at once.
const EVENT_BATCH: usize = 256;

/// Entry point for `omniscope run`.
///
/// # Errors
/// A usage, config or key error (exit 2), a failure (1), a broken threshold (3).
pub fn main(args: &RunArgs) -> Result<(), CliError> {
    let args = args.clone();
    session::block_on(Threads::One, async move { run(&args).await })
}

async fn run(args: &RunArgs) -> Result<(), CliError> {
    let plan = session::plan(args)?;
    // Opened first: a bad path is found before any money is spent.
    let mut report_file = args.report.as_deref().map(open_report).transpose()?;
    let session = Session::for_engine(&plan.engine, &plan.profiles, &args.outputs).await?;
    let (handle, mut events) = session.spawn_engine(plan.engine, &plan.profiles)?;
    let Session {
        mut stats,
        mut recorder,
        clock,
    } = session;

    let mut stops = session::stop_signals();
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
                    crate::note!("stopping (requests in the air finish; signal again to stop now)");
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
    let ended_at = clock.now();
    if let Some(path) = recorder.finish(ended_at).await {
        crate::note!("event log {}", path.display());
    }
    let report = report::build(&stats, ended_at);
    crate::stdout::print(&report::summary(&report));
    if let (Some(file), Some(path)) = (report_file.as_mut(), args.report.as_deref()) {
        write_report(file, path, &report)?;
    }
    let broken = report::broken_thresholds(&report, &plan.thresholds);
    if broken.is_empty() {
        Ok(())
    } else {
        Err(CliError::ThresholdsBroken(broken))
    }
}

fn open_report(path: &Path) -> Result<File, CliError> {
    File::create(path).map_err(|source| CliError::ReportOpen {
        path: path.to_owned(),
        source,
    })
}

fn write_report(file: &mut File, path: &Path, report: &report::Report) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(report).map_err(|source| CliError::Encode {
        what: "the report",
        source,
    })?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|source| CliError::ReportWrite {
            path: path.to_owned(),
            source,
        })
}

/// What a headless user should see while it runs (stderr; stdout carries the summary).
fn narrate(event: &ProbeEvent) {
    match event {
        ProbeEvent::Paused { provider, reason } => {
            crate::note!("{provider} paused: {reason}");
        }
        ProbeEvent::Hold {
            provider,
            until,
            reason,
        } => crate::note!("{provider} held until {until}: {reason}"),
        ProbeEvent::UsageFailed { provider, message } => {
            crate::note!("{provider}: {message}");
        }
        ProbeEvent::GaveUp {
            provider,
            reason,
            offer: Some(offer),
            ..
        } => crate::note!("{provider}: {reason} (an escalated retry may help: {offer})"),
        _ => {}
    }
}
