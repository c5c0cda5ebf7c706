//! `omniscope replay FILE`: a recorded event log, folded again.
//!
//! Headless, the log is folded into [`crate::stats::SessionStats`] with the same function the live
//! session used ([`crate::eventlog::apply`]), so the report counts what the run counted. The
//! interactive replay feeds the dashboard from [`crate::eventlog::replay::spawn`].

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::ReplayArgs;
use crate::eventlog::reader::{Folded, fold_path};
use crate::report::{self, Report};

/// Entry point for `omniscope replay`.
#[must_use]
pub fn main(args: &ReplayArgs) -> ExitCode {
    if !args.headless {
        eprintln!(
            "omniscope: the interactive replay needs the dashboard, which this build does not have yet; \
             use --headless (with --report FILE.json for the JSON report)"
        );
        return ExitCode::from(2);
    }
    let folded = match fold_path(&args.file) {
        Ok(folded) => folded,
        Err(error) => {
            eprintln!("omniscope: {error}");
            return ExitCode::from(2);
        }
    };
    eprint!("{}", read_notes(&args.file, &folded));
    let report = report_of(&folded);
    print!("{}", report::summary(&report));
    if let Some(path) = args.report.as_deref()
        && let Err(message) = write_report(path, &report)
    {
        eprintln!("omniscope: {message}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The `omniscope.report.v1` report of a folded log: the one `run` wrote, built from the same
/// statistics at the same instant (the log's `session_end`, or its last record).
#[must_use]
pub fn report_of(folded: &Folded) -> Report {
    report::build(
        &folded.stats,
        folded.ended_at.unwrap_or(folded.stats.started_at),
    )
}

fn write_report(path: &Path, report: &Report) -> Result<(), String> {
    let mut json = serde_json::to_string_pretty(report)
        .map_err(|error| format!("cannot encode the report: {error}"))?;
    json.push('\n');
    std::fs::write(path, json)
        .map_err(|error| format!("cannot write report file {}: {error}", path.display()))
}

/// What the user should know about the log itself: unreadable lines, a session cut short.
#[must_use]
pub fn read_notes(path: &Path, folded: &Folded) -> String {
    let mut out = String::new();
    let summary = &folded.summary;
    if summary.unreadable > 0 {
        let _ = writeln!(
            out,
            "omniscope: {}: {} unreadable line(s) skipped{}",
            path.display(),
            summary.unreadable,
            if summary.partial_tail {
                " (the last one is a partial line: the session was stopped while writing)"
            } else {
                ""
            }
        );
        for example in &summary.examples {
            let _ = writeln!(out, "  line {}: {}", example.line, example.error);
        }
    }
    if !folded.ended_cleanly && summary.records > 0 {
        let _ = writeln!(
            out,
            "omniscope: {}: no session_end line (the session did not end cleanly); it ends at its last record",
            path.display()
        );
    }
    out
}
