//! Reading a log, tolerantly: a line that does not parse (a crash's partial last line, a foreign
//! schema, a record type from a newer omniscope, garbage) is counted and remembered, never fatal.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Line, SCHEMA};
use crate::event::Fact;
use crate::stats::SessionStats;

/// How many unreadable lines are kept with their error, for the message to the user.
pub const UNREADABLE_KEPT: usize = 10;

/// What one line of a log is.
#[derive(Debug)]
pub enum ParsedLine {
    Fact(Fact),
    /// Only whitespace: not counted.
    Blank,
    Unreadable(String),
}

/// Parse one line (without or with its newline).
#[must_use]
pub fn parse_line(bytes: &[u8]) -> ParsedLine {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return ParsedLine::Blank;
    }
    match serde_json::from_slice::<Line>(bytes) {
        Ok(line) if line.schema == SCHEMA => ParsedLine::Fact(line.fact),
        Ok(line) => ParsedLine::Unreadable(format!("schema {:?}, expected {SCHEMA}", line.schema)),
        Err(error) => ParsedLine::Unreadable(error.to_string()),
    }
}

/// An unparseable line: its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub line: u64,
    pub error: String,
}

/// Counts of a read, and the first few unreadable lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub records: u64,
    pub unreadable: u64,
    /// The first [`UNREADABLE_KEPT`] unreadable lines.
    pub examples: Vec<Unreadable>,
    /// The last line had no newline: the writer was stopped mid-session.
    pub partial_tail: bool,
}

impl ReadSummary {
    fn note_unreadable(&mut self, line: u64, error: String) {
        self.unreadable += 1;
        if self.examples.len() < UNREADABLE_KEPT {
            self.examples.push(Unreadable { line, error });
        }
    }
}

/// Every fact of a log, in order, and what could not be read.
#[derive(Debug, Clone, Default)]
pub struct ReadLog {
    pub facts: Vec<Fact>,
    pub summary: ReadSummary,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the event log {path}: {source}")]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Read each line of `input`, handing every fact to `each`.
///
/// # Errors
/// Only an I/O error of `input` itself; bad lines are counted in the summary.
pub fn for_each_fact(
    input: impl BufRead,
    mut each: impl FnMut(Fact),
) -> std::io::Result<ReadSummary> {
    for_each_kept(input, |line| {
        if let ParsedLine::Fact(fact) = line {
            each(fact);
        }
        true
    })
}

/// Read each line of `input`, handing each fact and each unreadable line to `each`, which says
/// whether the line is one the reader keeps: only those are counted in the summary.
fn for_each_kept(
    mut input: impl BufRead,
    mut each: impl FnMut(ParsedLine) -> bool,
) -> std::io::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let mut buffer = Vec::new();
    let mut number = 0_u64;
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        number += 1;
        let complete = buffer.last() == Some(&b'\n');
        match parse_line(&buffer) {
            ParsedLine::Fact(fact) => {
                if each(ParsedLine::Fact(fact)) {
                    summary.records += 1;
                }
            }
            ParsedLine::Blank => {}
            ParsedLine::Unreadable(error) => {
                if each(ParsedLine::Unreadable(error.clone())) {
                    summary.partial_tail = !complete;
                    summary.note_unreadable(number, error);
                }
            }
        }
    }
    Ok(summary)
}

/// Read a whole log into memory.
///
/// # Errors
/// Only an I/O error of `input`.
pub fn read_log(input: impl BufRead) -> std::io::Result<ReadLog> {
    let mut facts = Vec::new();
    let summary = for_each_fact(input, |fact| facts.push(fact))?;
    Ok(ReadLog { facts, summary })
}

/// Read the log at `path` into memory.
///
/// # Errors
/// The file cannot be opened or read.
pub fn read_path(path: &Path) -> Result<ReadLog, ReadError> {
    read_with(path, read_log)
}

/// Open the log at `path` and hand it to `read`, naming the file in an error.
fn read_with<T>(
    path: &Path,
    read: impl FnOnce(BufReader<File>) -> std::io::Result<T>,
) -> Result<T, ReadError> {
    let wrap = |source| ReadError {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(wrap)?;
    read(BufReader::new(file)).map_err(wrap)
}

/// A log folded into statistics.
#[derive(Debug, Clone)]
pub struct Folded {
    pub stats: SessionStats,
    pub summary: ReadSummary,
    /// When the session ended: its `session_end`, else its last record (a killed session).
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether the log has its `session_end` line.
    pub ended_cleanly: bool,
    /// When each session in the file started (`--log FILE` appends, so a file can hold
    /// several): one `session_start` each.
    pub sessions: Vec<DateTime<Utc>>,
}

/// Stream the log at `path` through [`SessionStats::apply`]: the statistics the live session had at its end.
/// Unreadable lines are counted in `stats.unreadable_inputs`.
///
/// # Errors
/// The file cannot be opened or read.
pub fn fold_path(path: &Path) -> Result<Folded, ReadError> {
    read_with(path, fold)
}

/// [`fold_path`] of one session of the file: the `n`th (from 1) `session_start` and the records
/// after it, up to the next one. [`Folded::sessions`] still lists every session.
///
/// # Errors
/// The file cannot be opened or read.
pub fn fold_session_path(path: &Path, n: usize) -> Result<Folded, ReadError> {
    read_with(path, |input| fold_records(input, Some(n)))
}

/// [`fold_path`] over any reader.
///
/// # Errors
/// Only an I/O error of `input`.
pub fn fold(input: impl BufRead) -> std::io::Result<Folded> {
    fold_records(input, None)
}

/// Which session of a file each fact belongs to, as a file is read in order. `--log FILE` appends,
/// so a file can hold several sessions, each opened by its `session_start`; facts before the first
/// one (a log cut at its head) are a session of their own, started at its first fact.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    /// When each session seen so far started.
    pub started: Vec<DateTime<Utc>>,
    /// The session (from 1) whose facts are kept; every fact when `None`.
    only: Option<usize>,
}

impl Sessions {
    #[must_use]
    pub fn new(only: Option<usize>) -> Self {
        Self {
            started: Vec::new(),
            only,
        }
    }

    /// Note `fact`; whether it belongs to the session kept.
    pub fn keep(&mut self, fact: &Fact) -> bool {
        match fact {
            Fact::SessionStart { started_at, .. } => self.started.push(*started_at),
            _ if self.started.is_empty() => self.started.push(fact.at()),
            _ => {}
        }
        self.keeping()
    }

    /// Whether a line read now, one that is not a fact (an unreadable line), belongs to the
    /// session kept: the session it sits in, the first before any fact.
    #[must_use]
    pub fn keeping(&self) -> bool {
        self.only.is_none_or(|n| n == self.started.len().max(1))
    }
}

/// When each session of the log at `path` started (see [`Sessions`]).
///
/// # Errors
/// The file cannot be opened or read.
pub fn list_sessions(path: &Path) -> Result<Vec<DateTime<Utc>>, ReadError> {
    read_with(path, |input| {
        let mut sessions = Sessions::new(None);
        for_each_fact(input, |fact| {
            sessions.keep(&fact);
        })?;
        Ok(sessions.started)
    })
}

/// Fold every fact, or those of session `only` (from 1; see [`Sessions`]).
pub(super) fn fold_records(input: impl BufRead, only: Option<usize>) -> std::io::Result<Folded> {
    let mut stats: Option<SessionStats> = None;
    let mut ended_at = None;
    let mut ended_cleanly = false;
    let mut sessions = Sessions::new(only);
    let summary = for_each_kept(input, |line| {
        let fact = match line {
            ParsedLine::Fact(fact) if sessions.keep(&fact) => fact,
            ParsedLine::Fact(_) | ParsedLine::Blank => return false,
            // Counted only in the session it sits in.
            ParsedLine::Unreadable(_) => return sessions.keeping(),
        };
        let at = fact.at();
        // A log without its first line (cut, or from another tool) starts at its first fact.
        let stats = stats.get_or_insert_with(|| SessionStats::new(at));
        if let Fact::SessionEnd { .. } = fact {
            ended_cleanly = true;
            ended_at = Some(at);
        } else if !ended_cleanly {
            ended_at = Some(ended_at.map_or(at, |last: DateTime<Utc>| last.max(at)));
        }
        stats.apply(fact);
        true
    })?;
    let mut stats = stats.unwrap_or_else(|| SessionStats::new(DateTime::<Utc>::UNIX_EPOCH));
    stats.unreadable_inputs += summary.unreadable;
    Ok(Folded {
        stats,
        summary,
        ended_at,
        ended_cleanly,
        sessions: sessions.started,
    })
}
