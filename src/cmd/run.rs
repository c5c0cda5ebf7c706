//! `omniscope run`: the engine without a screen. Events fold into the session's statistics; at
//! the end the summary is printed, the report written, and the thresholds decide the exit status.

use chrono::{DateTime, Utc};

use crate::cli::RunArgs;
use crate::cmd::CliError;
use crate::event::{Event, Fact, Notice};
use crate::output_file::{ReportFile, SPECIAL_WRITE_WAIT};
use crate::recorder::Recorder;
use crate::report;
use crate::session::{self, Session, Threads};
use crate::stats::SessionStats;

/// Engine events taken from the channel at once.
const EVENT_BATCH: usize = 256;

/// Entry point for `omniscope run`.
///
/// # Errors
/// A usage, config or key error (exit 2), a failure (1), a broken threshold (3), a provider
/// stopped by its account (4) or never reached (5).
pub fn main(args: &RunArgs) -> Result<(), CliError> {
    let args = args.clone();
    session::block_on(Threads::One, async move { run(&args).await })
}

async fn run(args: &RunArgs) -> Result<(), CliError> {
    let plan = session::plan(args, None)?;
    // Opened first: a bad path is found before any money is spent. Nothing is replaced yet: an
    // old report stays as it is until the new one has been written.
    let report_file = args
        .report
        .as_deref()
        .map(ReportFile::create)
        .transpose()
        .map_err(CliError::ReportOpen)?;
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
                    if let Event::Fact(fact) = event {
                        recorder.record(&fact).await;
                        stats.apply(fact);
                    }
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
    let dropped = finish_log(recorder, ended_at).await;
    let report = end_report(&stats, ended_at, dropped, report_file, "run")?;
    let broken = report::broken_thresholds(&report, &plan.thresholds);
    let stops = report::stops(&report);
    if !stops.is_empty() {
        Err(CliError::Stopped {
            stops,
            thresholds: broken,
        })
    } else if broken.is_empty() {
        Ok(())
    } else {
        Err(CliError::ThresholdsBroken(broken))
    }
}

/// Ends the session's event log with its `session_end` at `ended_at`, says where it is, and
/// gives the count of records it dropped (the report's `event_log_dropped`).
pub(crate) async fn finish_log(recorder: Recorder, ended_at: DateTime<Utc>) -> u64 {
    let log_counts = recorder.log_counts();
    if let Some(path) = recorder.finish(ended_at).await {
        crate::note!("event log {}", path.display());
    }
    log_counts.map_or(0, |counts| counts.dropped())
}

/// A session's end as every command gives it: the report of `stats` at `ended_at` (with the
/// records the log dropped), the summary printed, the report file written.
///
/// # Errors
/// The report cannot be encoded or written.
pub(crate) fn end_report(
    stats: &SessionStats,
    ended_at: DateTime<Utc>,
    event_log_dropped: u64,
    report_file: Option<ReportFile>,
    command: &str,
) -> Result<report::Report, CliError> {
    let mut report = report::build(stats, ended_at);
    report.event_log_dropped = event_log_dropped;
    print_summary(&report, report_file.as_ref(), command);
    if let Some(file) = report_file {
        write_report(file, &report)?;
    }
    Ok(report)
}

/// The summary on stdout, unless the report itself goes there (`--report /dev/stdout | jq`):
/// then on stderr. Bounded: with `--log /dev/stdout | sleep 60`, stdout is a pipe nobody reads.
pub(crate) fn print_summary(
    report: &report::Report,
    report_file: Option<&ReportFile>,
    command: &str,
) {
    let summary = report::summary(report, command);
    if report_file.is_some_and(ReportFile::is_stdout) {
        crate::say!("{}", summary.trim_end());
    } else {
        let _ = crate::stdout::print_within(summary, SPECIAL_WRITE_WAIT);
    }
}

/// The report as JSON, written whole: a regular file replaced once the new one is complete, a
/// special file (`/dev/stdout`, a FIFO) streamed.
///
/// # Errors
/// The report cannot be encoded or written.
pub fn write_report(file: ReportFile, report: &report::Report) -> Result<(), CliError> {
    let mut json = serde_json::to_vec_pretty(report).map_err(|source| CliError::Encode {
        what: "the report",
        source,
    })?;
    json.push(b'\n');
    file.write(json).map_err(CliError::ReportWrite)
}

/// What a headless user should see while it runs (stderr; stdout carries the summary).
fn narrate(event: &Event) {
    match event {
        Event::Fact(Fact::Paused {
            provider, reason, ..
        }) => {
            crate::note!("{provider} paused: {reason}");
        }
        Event::Notice(Notice::Hold {
            provider,
            until,
            reason,
        }) => crate::note!("{provider} held until {until}: {reason}"),
        Event::Notice(Notice::UsageFailed { provider, message }) => {
            crate::note!("{provider}: {message}");
        }
        Event::Notice(Notice::GaveUp {
            provider,
            reason,
            offer: Some(offer),
            ..
        }) => crate::note!("{provider}: {reason} (an escalated retry may help: {offer})"),
        _ => {}
    }
}
