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
    print!("{}", summary(&folded));
    if let Some(path) = args.report.as_deref() {
        eprintln!(
            "omniscope: cannot write {}: the omniscope.report.v1 builder (report.rs) is not in this build yet",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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

/// Per-provider counts of the folded log.
#[must_use]
pub fn summary(folded: &Folded) -> String {
    let mut out = String::new();
    for provider in &folded.stats.providers {
        let _ = writeln!(
            out,
            "{}: attempts {}, succeeded {}, failed {}, skipped {}, charged {} {}, paused {}",
            provider.name,
            provider.attempts,
            provider.succeeded,
            provider.failed,
            provider.skipped,
            provider.billing.charged,
            provider.billing.unit.label(),
            provider.paused.as_deref().unwrap_or("no")
        );
    }
    out
}
