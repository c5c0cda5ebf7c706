//! Reading a log, tolerantly: a line that does not parse (a crash's partial last line, a foreign
//! schema, a record type from a newer omniscope, garbage) is counted and remembered, never fatal.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::compact::Decoder;
use super::replay::ReplayItem;
use super::{Line, SCHEMAS_READ};
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

/// Reads the lines of one log in order. Compact lines ([`super::compact`]) repeat an earlier
/// attempt's outcome, so the reader remembers those (a bounded table).
#[derive(Debug, Clone, Default)]
pub struct LineReader {
    decoder: Decoder,
}

impl LineReader {
    /// Parse the next line (without or with its newline).
    pub fn parse(&mut self, bytes: &[u8]) -> ParsedLine {
        if let Some(compact) = self.decoder.compact(bytes) {
            return match compact {
                Ok(fact) => ParsedLine::Fact(fact),
                Err(error) => ParsedLine::Unreadable(error),
            };
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return ParsedLine::Blank;
        }
        match serde_json::from_slice::<Line>(bytes) {
            Ok(line) if SCHEMAS_READ.contains(&line.schema.as_str()) => {
                if let (Some(slot), Fact::Attempt { outcome, .. }) = (line.slot, &line.fact) {
                    self.decoder.fill(slot, outcome);
                }
                ParsedLine::Fact(line.fact)
            }
            Ok(line) => ParsedLine::Unreadable(format!(
                "schema {:?}, expected {}",
                line.schema,
                SCHEMAS_READ.join(" or ")
            )),
            Err(error) => ParsedLine::Unreadable(error.to_string()),
        }
    }
}

/// Parse one line on its own (a compact line, which needs the lines before it, is unreadable).
#[must_use]
pub fn parse_line(bytes: &[u8]) -> ParsedLine {
    LineReader::default().parse(bytes)
}

/// The bytes gzip data starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 256 * 1024;

/// A log file opened for reading: plain NDJSON, or gzip members (see [`super::writer`]) read as
/// the NDJSON they hold.
pub struct LogInput {
    pub lines: Box<dyn BufRead + Send>,
    /// Set when compressed data ended mid-member or was damaged: what came before it is read, the
    /// rest is not (a writer killed mid-write).
    pub cut: Arc<AtomicBool>,
}

impl LogInput {
    /// Whether the compressed data was cut short (known once the input is read to its end).
    #[must_use]
    pub fn was_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }
}

/// Open the log at `path`, plain or compressed (told by its first bytes, not its name).
///
/// # Errors
/// The file cannot be opened or read.
pub fn open(path: &Path) -> std::io::Result<LogInput> {
    let mut input = BufReader::with_capacity(READ_BUFFER, File::open(path)?);
    let cut = Arc::new(AtomicBool::new(false));
    if input.fill_buf()?.starts_with(&GZIP_MAGIC) {
        let decoder = StopAtDamage {
            inner: flate2::bufread::MultiGzDecoder::new(input),
            cut: Arc::clone(&cut),
        };
        return Ok(LogInput {
            lines: Box::new(BufReader::with_capacity(READ_BUFFER, decoder)),
            cut,
        });
    }
    Ok(LogInput {
        lines: Box::new(input),
        cut,
    })
}

/// Ends the decompressed stream where the compressed data stops making sense (a member cut by a
/// crash), remembering that it did, instead of failing the whole read.
struct StopAtDamage<R> {
    inner: R,
    cut: Arc<AtomicBool>,
}

impl<R: Read> Read for StopAtDamage<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cut.load(Ordering::Relaxed) {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.cut.store(true, Ordering::Relaxed);
                    return Ok(0);
                }
                read => return read,
            }
        }
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
    /// Lines read (over every file of a set).
    pub lines: u64,
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
    let mut summary = ReadSummary::default();
    let _: ControlFlow<()> = read_lines(input, &mut summary, &mut |item| {
        if let ReplayItem::Fact(fact) = item {
            each(fact);
        }
        ControlFlow::Continue(())
    })?;
    Ok(summary)
}

/// Read the lines of one file (a fresh [`LineReader`]: every file reads on its own), counting
/// into `summary`, until the end or until `each` breaks.
fn read_lines(
    mut input: impl BufRead,
    summary: &mut ReadSummary,
    each: &mut impl FnMut(ReplayItem) -> ControlFlow<()>,
) -> std::io::Result<ControlFlow<()>> {
    let mut lines = LineReader::default();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(ControlFlow::Continue(()));
        }
        summary.lines += 1;
        let complete = buffer.last() == Some(&b'\n');
        let item = match lines.parse(&buffer) {
            ParsedLine::Fact(fact) => {
                summary.records += 1;
                ReplayItem::Fact(fact)
            }
            ParsedLine::Blank => continue,
            ParsedLine::Unreadable(error) => {
                summary.partial_tail = !complete;
                summary.note_unreadable(summary.lines, error.clone());
                ReplayItem::Unreadable {
                    line: summary.lines,
                    error,
                }
            }
        };
        if each(item).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
}

/// What a reader says of compressed data that stops mid-member.
pub const CUT_SHORT: &str = "compressed data cut short (a writer stopped mid-write?)";

/// Read each fact of the log files at `paths`, in order, into `each`.
///
/// # Errors
/// A file cannot be opened or read.
pub fn for_each_fact_in(
    paths: &[PathBuf],
    mut each: impl FnMut(Fact),
) -> Result<ReadSummary, ReadError> {
    for_each_item_in(paths, |item| {
        if let ReplayItem::Fact(fact) = item {
            each(fact);
        }
        ControlFlow::Continue(())
    })
}

/// Read each line of the log files at `paths`, in order, as facts and unreadable lines, until
/// the end or until `each` breaks.
///
/// # Errors
/// A file cannot be opened or read.
pub fn for_each_item_in(
    paths: &[PathBuf],
    mut each: impl FnMut(ReplayItem) -> ControlFlow<()>,
) -> Result<ReadSummary, ReadError> {
    let mut summary = ReadSummary::default();
    for path in paths {
        let wrap = |source| ReadError {
            path: path.clone(),
            source,
        };
        let input = open(path).map_err(wrap)?;
        if read_lines(input.lines, &mut summary, &mut each)
            .map_err(wrap)?
            .is_break()
        {
            break;
        }
        if input.cut.load(Ordering::Relaxed) {
            summary.partial_tail = true;
            summary.lines += 1;
            summary.note_unreadable(summary.lines, CUT_SHORT.to_owned());
            let item = ReplayItem::Unreadable {
                line: summary.lines,
                error: CUT_SHORT.to_owned(),
            };
            if each(item).is_break() {
                break;
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

/// Read the log at `path` (plain or compressed) into memory.
///
/// # Errors
/// The file cannot be opened or read.
pub fn read_path(path: &Path) -> Result<ReadLog, ReadError> {
    let mut facts = Vec::new();
    let summary = for_each_fact_in(&[path.to_owned()], |fact| facts.push(fact))?;
    Ok(ReadLog { facts, summary })
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
    fold_paths(&[path.to_owned()], None)
}

/// [`fold_path`] of one session of the file: the `n`th (from 1) session and its records, up to
/// the next one (see [`Sessions`]). [`Folded::sessions`] still lists every session.
///
/// # Errors
/// The file cannot be opened or read.
pub fn fold_session_path(path: &Path, n: usize) -> Result<Folded, ReadError> {
    fold_paths(&[path.to_owned()], Some(n))
}

/// Fold the files of a rotated set, in order, as one log: every session's facts, or those of
/// session `only` (from 1; see [`Sessions`]).
///
/// # Errors
/// A file cannot be opened or read.
pub fn fold_paths(paths: &[PathBuf], only: Option<usize>) -> Result<Folded, ReadError> {
    let mut folding = Folding::new(only);
    // Reading (decompressing, parsing) on one thread and folding on another: a day of a load run
    // replays in about half the time on two cores.
    let summary = std::thread::scope(|scope| {
        let (batches_tx, batches) = std::sync::mpsc::sync_channel::<Vec<ReplayItem>>(BATCHES_AHEAD);
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(FOLD_BATCH);
            let summary = for_each_item_in(paths, |item| {
                batch.push(item);
                if batch.len() == FOLD_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(FOLD_BATCH));
                    // The folding side only goes away by panicking; it is joined below.
                    let _ = batches_tx.send(full);
                }
                ControlFlow::Continue(())
            });
            let _ = batches_tx.send(batch);
            summary
        });
        for batch in batches {
            for item in batch {
                folding.apply(item);
            }
        }
        reader.join().unwrap_or_else(|_| {
            Err(ReadError {
                path: paths.first().cloned().unwrap_or_default(),
                source: std::io::Error::other("the log reader panicked"),
            })
        })
    })?;
    Ok(folding.finish(summary))
}

/// Facts handed from the reading thread to the folding one at once.
const FOLD_BATCH: usize = 1024;
/// Batches read ahead of the fold: bounded, so memory stays flat whatever the log's size.
const BATCHES_AHEAD: usize = 8;

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

    /// Note `fact`; whether it belongs to the session kept. A `session_start` of the session under
    /// way (each part of a rotated set starts with a copy of it) continues that session.
    pub fn keep(&mut self, fact: &Fact) -> bool {
        match fact {
            Fact::SessionStart { started_at, .. } if self.started.last() == Some(started_at) => {}
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
    list_sessions_in(&[path.to_owned()])
}

/// When each session of the log files at `paths`, read in order as one log, started.
///
/// # Errors
/// A file cannot be opened or read.
pub fn list_sessions_in(paths: &[PathBuf]) -> Result<Vec<DateTime<Utc>>, ReadError> {
    let mut sessions = Sessions::new(None);
    for_each_fact_in(paths, |fact| {
        sessions.keep(&fact);
    })?;
    Ok(sessions.started)
}

/// Fold every fact of `input`, or those of session `only` (from 1; see [`Sessions`]).
pub(super) fn fold_records(input: impl BufRead, only: Option<usize>) -> std::io::Result<Folded> {
    let mut folding = Folding::new(only);
    let mut summary = ReadSummary::default();
    let _: ControlFlow<()> = read_lines(input, &mut summary, &mut |item| {
        folding.apply(item);
        ControlFlow::Continue(())
    })?;
    Ok(folding.finish(summary))
}

/// A fold under way.
struct Folding {
    stats: Option<SessionStats>,
    ended_at: Option<DateTime<Utc>>,
    ended_cleanly: bool,
    sessions: Sessions,
    /// The records and unreadable lines of the sessions folded (an unreadable line counts in
    /// the session it sits in).
    kept: ReadSummary,
}

impl Folding {
    fn new(only: Option<usize>) -> Self {
        Self {
            stats: None,
            ended_at: None,
            ended_cleanly: false,
            sessions: Sessions::new(only),
            kept: ReadSummary::default(),
        }
    }

    fn apply(&mut self, item: ReplayItem) {
        let fact = match item {
            ReplayItem::Fact(fact) if self.sessions.keep(&fact) => fact,
            ReplayItem::Fact(_) => return,
            ReplayItem::Unreadable { line, error } => {
                if self.sessions.keeping() {
                    self.kept.note_unreadable(line, error);
                }
                return;
            }
        };
        self.kept.records += 1;
        let at = fact.at();
        // A log without its first line (cut, or from another tool) starts at its first fact.
        let stats = self.stats.get_or_insert_with(|| SessionStats::new(at));
        if let Fact::SessionEnd { .. } = fact {
            self.ended_cleanly = true;
            self.ended_at = Some(at);
        } else if !self.ended_cleanly {
            self.ended_at = Some(self.ended_at.map_or(at, |last: DateTime<Utc>| last.max(at)));
        }
        stats.apply(fact);
    }

    fn finish(self, read: ReadSummary) -> Folded {
        let summary = ReadSummary {
            lines: read.lines,
            partial_tail: read.partial_tail && self.kept.unreadable > 0,
            ..self.kept
        };
        let mut stats = self
            .stats
            .unwrap_or_else(|| SessionStats::new(DateTime::<Utc>::UNIX_EPOCH));
        stats.unreadable_inputs += summary.unreadable;
        Folded {
            stats,
            summary,
            ended_at: self.ended_at,
            ended_cleanly: self.ended_cleanly,
            sessions: self.sessions.started,
        }
    }
}
