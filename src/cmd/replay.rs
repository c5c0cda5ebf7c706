//! `omniscope replay FILE`: a recorded event log, folded again.
//!
//! Headless, the log is folded into [`crate::stats::SessionStats`] with the same function the live
//! session used ([`crate::stats::SessionStats::apply`]), so the report counts what the run counted. The
//! interactive replay feeds the dashboard from [`crate::eventlog::replay::spawn`].

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::ReplayArgs;
use crate::cmd::CliError;
use crate::event::Fact;
use crate::eventlog;
use crate::eventlog::reader::{Folded, ReadError, fold_paths, list_sessions_in};
use crate::eventlog::replay::ReplayItem;
use crate::eventlog::rotation;
use crate::output_file::ReportFile;
use crate::report::{self, Report};
use crate::session::{self, Threads};
use crate::stats::SessionStats;

/// Entry point for `omniscope replay`.
///
/// # Errors
/// The log cannot be read, the profiles or `[keys]` are not valid (exit 2); the terminal or a
/// report write failed (exit 1).
pub fn main(args: &ReplayArgs) -> Result<(), CliError> {
    if !args.headless {
        let only = chosen_session(args)?;
        // On a terminal the dashboard plays the log; piped, it plays as text lines.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return play_on_dashboard(args, only);
        }
        return play_as_text(args, only);
    }
    // Prepared first, as `run` does: nothing replaces an old report before the new one exists.
    let report_file = args
        .report
        .as_deref()
        .map(ReportFile::create)
        .transpose()
        .map_err(CliError::ReportOpen)?;
    let paths = log_files(args)?;
    let folded = fold_paths(&paths, args.session.map(|n| n as usize))?;
    check_session_choice(args, &folded.sessions)?;
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{}", read_notes(shown(args), &folded));
    }
    let report = report_of(&folded);
    super::run::print_summary(&report, report_file.as_ref(), "replay");
    if let Some(file) = report_file {
        super::run::write_report(file, &report)?;
    }
    Ok(())
}

/// The session of the file to play (`None`: the whole file, which then holds at most one).
/// Found before playing: a choice refused after minutes of playback would waste them.
/// A FIFO or a device cannot be read twice: it plays as it comes, `--session N` still choosing.
fn chosen_session(args: &ReplayArgs) -> Result<Option<usize>, CliError> {
    let paths = log_files(args)?;
    if paths.iter().all(|path| path.is_file()) {
        let sessions = list_sessions_in(&paths)?;
        check_session_choice(args, &sessions)?;
    }
    Ok(args.session.map(|n| n as usize))
}

/// The files to read, in order: each folder given stands for its logs, sorted by name (a rotated
/// session's parts follow each other; see [`crate::eventlog::rotation`]).
fn log_files(args: &ReplayArgs) -> Result<Vec<std::path::PathBuf>, CliError> {
    rotation::expand(&args.files).map_err(|source| {
        ReadError {
            path: shown(args).to_owned(),
            source,
        }
        .into()
    })
}

/// The log as messages name it: the first file or folder given.
fn shown(args: &ReplayArgs) -> &Path {
    args.files
        .first()
        .map_or(Path::new("-"), |path| path.as_path())
}

/// `--log FILE` appends: two sessions played as one would sum their counts and take the duration
/// of one of them, without a word. A file with several sessions needs `--session N`, and N must be
/// one of them.
fn check_session_choice(
    args: &ReplayArgs,
    sessions: &[chrono::DateTime<chrono::Utc>],
) -> Result<(), CliError> {
    // Nothing to replay is not an empty session of 1970 that exits 0.
    if sessions.is_empty() {
        return Err(ReadError {
            path: shown(args).to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "it holds no session (empty, or not an omniscope event log)",
            ),
        }
        .into());
    }
    let fits = match args.session {
        None => sessions.len() <= 1,
        Some(n) => (n as usize) <= sessions.len().max(1),
    };
    if fits {
        return Ok(());
    }
    Err(CliError::SessionChoice {
        path: shown(args).to_owned(),
        asked: args.session,
        sessions: sessions.to_vec(),
    })
}

/// The dashboard over the recorded session, fed by the replay source at `--speed`, with the
/// user's key bindings.
fn play_on_dashboard(args: &ReplayArgs, only: Option<usize>) -> Result<(), CliError> {
    let paths = log_files(args)?;
    if let Some(unreadable) = paths.iter().find(|path| !path.is_file()) {
        return Err(ReadError {
            path: unreadable.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a readable file"),
        }
        .into());
    }
    if paths.is_empty() {
        return Err(ReadError {
            path: shown(args).to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no log files there"),
        }
        .into());
    }
    let profiles = session::load_profiles()?;
    let bindings = session::user_key_bindings()?;
    let speed = args.speed;
    session::block_on(Threads::Workers, async move {
        let (items_tx, items) = tokio::sync::mpsc::channel(256);
        let (control, task) = eventlog::replay::spawn(paths, only, speed, items_tx);
        // The log's own clock drives the screen: it starts at the session's start record.
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let app = crate::app::App::new(SessionStats::new(epoch), profiles, bindings, epoch);
        let shown = crate::tui::run_replay(app, items, control).await;
        task.abort();
        shown.map_err(CliError::Terminal)
    })
}

/// Piped (not a terminal), a replay without `--headless` plays the log at `--speed` on stdout, one
/// line per attempt and pause, then prints the summary.
fn play_as_text(args: &ReplayArgs, only: Option<usize>) -> Result<(), CliError> {
    let (paths, file, speed) = (log_files(args)?, shown(args).to_owned(), args.speed);
    session::block_on(Threads::Workers, async move {
        let (items_tx, mut items) = tokio::sync::mpsc::channel(256);
        let (_control, task) = eventlog::replay::spawn(paths, only, speed, items_tx);
        let mut stats: Option<SessionStats> = None;
        let mut ended_at = None;
        while let Some(item) = items.recv().await {
            match item {
                ReplayItem::Fact(fact) => {
                    if let Some(line) = describe(&fact)
                        && !crate::stdout::print(&format!("{line}\n"))
                    {
                        // The reader has gone (`replay LOG | head`): stop playing, at the
                        // recorded pace, to nobody. The source may be waiting out a long gap.
                        task.abort();
                        return Ok(());
                    }
                    let at = fact.at();
                    stats
                        .get_or_insert_with(|| SessionStats::new(at))
                        .apply(fact);
                    ended_at = Some(at);
                }
                ReplayItem::Unreadable { line, error } => {
                    crate::note!("{}: line {line} unreadable: {error}", file.display());
                }
            }
        }
        task.await.map_err(CliError::Panicked)??;
        if let Some(stats) = stats {
            let now = ended_at.unwrap_or(stats.started_at);
            crate::stdout::print(&report::summary(&report::build(&stats, now), "replay"));
        }
        Ok(())
    })
}

fn describe(fact: &Fact) -> Option<String> {
    let time = fact.at().format("%H:%M:%S%.3f");
    match fact {
        Fact::Attempt { outcome, .. } => Some(format!(
            "{time} {} #{} {} api {} target {} {}{:.0} ms",
            outcome.provider,
            outcome.attempt_id,
            if outcome.succeeded() { "ok  " } else { "FAIL" },
            outcome
                .api_status
                .map_or_else(|| outcome.transport.label().to_owned(), |s| s.to_string()),
            outcome
                .target_status
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            outcome
                .error_code
                .as_deref()
                .map(|c| format!("{c} "))
                .unwrap_or_default(),
            outcome.latency.as_secs_f64() * 1000.0,
        )),
        Fact::Paused {
            provider, reason, ..
        } => Some(format!("{time} {provider} paused: {reason}")),
        Fact::Resumed { provider, .. } => Some(format!("{time} {provider} resumed")),
        _ => None,
    }
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
