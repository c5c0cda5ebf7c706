//! The log writer: a tokio task that takes records from a bounded channel, encodes them into a
//! buffer of whole lines, and writes full buffers on tokio's blocking pool.
//!
//! Lines reach the file whole: a record is encoded after the last complete line in the buffer (a
//! record that fails to encode is cut off again), and only the buffer's whole contents are
//! written. The buffer is written when it is full, at most [`FLUSH_EVERY`] after its oldest line
//! was encoded, and on close: a SIGKILL loses at most the last second, never leaves half a line.
//!
//! A sink that stops reading (`--log /dev/stdout | sleep 60`, a FIFO whose reader hangs) never
//! holds up the session: a sender waits at most [`STALL_WAIT`] for room, then drops records,
//! counted ([`LogCounts::dropped`]), until the writer takes them again; [`EventLog::close`] gives
//! the writer [`CLOSE_WAIT`] and then leaves it. A FIFO with no reader is an error when the log
//! is created, not an `open` that waits forever.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use flate2::Compression;

use super::compact::Encoder;
use super::rotation::{self, Retention, Rotation};
use crate::event::Fact;
use crate::output_file::{self, Kind, OutputError};

/// Records waiting for the writer; a sender waits when the writer is this far behind.
pub const CHANNEL_CAPACITY: usize = 1024;
/// The longest a sender waits for room before it takes the writer for stalled and drops records
/// (a writer that is merely busy makes room well within it).
pub const STALL_WAIT: Duration = Duration::from_secs(1);
/// The longest [`EventLog::close`] waits for the writer to write what it holds and sync.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The longest a written line stays in memory.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
const BUFFER_BYTES: usize = 64 * 1024;
/// Records taken from the channel at once.
const WRITE_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create the event log folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the event log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the event log {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the event log {path} stopped (an earlier write failed)")]
    Closed { path: PathBuf },
    /// A FIFO without a reader, or a directory.
    #[error("cannot open the event log {0}")]
    Output(#[from] OutputError),
    #[error(
        "the event log {path} stopped taking lines (its reader stopped reading?): gave up after {waited:?}, {dropped} record(s) not written"
    )]
    Stalled {
        path: PathBuf,
        waited: Duration,
        dropped: u64,
    },
}

/// What became of the records given to a log, shared by its senders and its writer.
#[derive(Debug, Default)]
struct Counters {
    /// Records given to [`LogSender::send`] (and [`LogCounts::lost`]).
    offered: AtomicU64,
    /// Lines that reached the file.
    written: AtomicU64,
    /// A sender found no room for [`STALL_WAIT`]: later senders drop at once while it is full.
    stalled: AtomicBool,
}

/// The counts of one log, readable while it runs and after it closed.
#[derive(Debug, Clone, Default)]
pub struct LogCounts(Arc<Counters>);

impl LogCounts {
    /// Lines that reached the file.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }

    /// Records that did not reach the file: dropped while the writer could not keep up, lost
    /// with a failed write, or still held by a writer that was left stalled. Final once the log
    /// is closed (while it runs, it also counts lines on their way).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.0
            .offered
            .load(Ordering::Relaxed)
            .saturating_sub(self.written())
    }

    /// A record meant for the log after it stopped: counted as dropped.
    pub fn lost(&self) {
        self.0.offered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running log writer. Send records with [`EventLog::send`]; finish with [`EventLog::close`].
/// Dropped without `close`, the writer still flushes what it has and ends.
#[derive(Debug)]
pub struct EventLog {
    /// The log's own sender: [`EventLog::send`] is [`LogSender::send`].
    sender: LogSender,
    task: JoinHandle<Result<u64, LogError>>,
}

/// A clonable handle for other tasks that log.
#[derive(Debug, Clone)]
pub struct LogSender {
    records: mpsc::Sender<Fact>,
    path: PathBuf,
    counts: LogCounts,
}

impl LogSender {
    /// Queue one record. While the writer is [`CHANNEL_CAPACITY`] records behind, wait for room,
    /// but at most [`STALL_WAIT`]: then the record is dropped and counted, and so is every record
    /// after it until the writer makes room again.
    ///
    /// # Errors
    /// The writer stopped (a write failed; [`EventLog::close`] says why).
    pub async fn send(&self, fact: Fact) -> Result<(), LogError> {
        let counters = &self.counts.0;
        counters.offered.fetch_add(1, Ordering::Relaxed);
        let closed = || LogError::Closed {
            path: self.path.clone(),
        };
        let record = match self.records.try_send(fact) {
            Ok(()) => {
                counters.stalled.store(false, Ordering::Relaxed);
                return Ok(());
            }
            Err(TrySendError::Closed(_)) => return Err(closed()),
            // Dropped: counted by `offered` never becoming `written`.
            Err(TrySendError::Full(_)) if counters.stalled.load(Ordering::Relaxed) => {
                return Ok(());
            }
            Err(TrySendError::Full(record)) => record,
        };
        match tokio::time::timeout(STALL_WAIT, self.records.send(record)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                counters.stalled.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

impl EventLog {
    /// Create (or append to) the log file, creating its folder, and start the writer on the
    /// current tokio runtime. A special file (a FIFO, `/dev/stdout`, `/dev/null`) is written as
    /// it is, never synced; a FIFO must have its reader already.
    ///
    /// # Errors
    /// The folder or the file cannot be created; a FIFO has no reader; the path is a directory.
    pub fn create(path: &Path) -> Result<Self, LogError> {
        Self::create_with(path, None)
    }

    /// [`EventLog::create`], rotating a regular file into parts as `parts` says, and applying its
    /// retention (if any) to the file's folder when the log is created and at every new part.
    ///
    /// # Errors
    /// As [`EventLog::create`].
    pub fn create_with(path: &Path, parts: Option<Parts>) -> Result<Self, LogError> {
        if output_file::kind(path)? == Kind::Special {
            let file = output_file::open_special(path, true)?;
            return Ok(Self::start(file, Kind::Special, path.to_owned(), None));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| LogError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LogError::Open {
                path: path.to_owned(),
                source,
            })?;
        if let (Some(retention), Some(dir)) = (parts.and_then(|p| p.retention), path.parent()) {
            let (dir, current) = (dir.to_owned(), path.to_owned());
            // Old logs go in the background: a full folder never delays the session's start.
            std::thread::spawn(move || rotation::prune(&dir, retention, &current));
        }
        Ok(Self::start(file, Kind::Regular, path.to_owned(), parts))
    }

    fn start(file: File, kind: Kind, path: PathBuf, parts: Option<Parts>) -> Self {
        let (records, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let counts = LogCounts::default();
        let pending = Pending {
            file: Some(file),
            regular: kind == Kind::Regular,
            gzip: compressed(&path),
            encoder: Encoder::default(),
            bytes: Vec::with_capacity(BUFFER_BYTES),
            packed: Vec::new(),
            part: parts.map(|parts| Part::new(parts, path.clone())),
            lines: 0,
            counts: counts.clone(),
        };
        let task = tokio::spawn(write_loop(pending, receiver, path.clone()));
        Self {
            sender: LogSender {
                records,
                path,
                counts,
            },
            task,
        }
    }

    /// The log's counts (written, dropped), which outlive it.
    #[must_use]
    pub fn counts(&self) -> LogCounts {
        self.sender.counts.clone()
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.sender.path
    }

    #[must_use]
    pub fn sender(&self) -> LogSender {
        self.sender.clone()
    }

    /// Queue one record, as [`LogSender::send`]: never held up for long by a writer that stalls.
    ///
    /// # Errors
    /// The writer stopped (a write failed; [`EventLog::close`] says why).
    pub async fn send(&self, fact: Fact) -> Result<(), LogError> {
        self.sender.send(fact).await
    }

    /// Write what is queued, flush, and stop. Returns the number of lines written. Other
    /// [`LogSender`]s must be dropped first, or this waits for them (at most [`CLOSE_WAIT`]).
    ///
    /// # Errors
    /// The first write error, naming the file; a writer still stalled after [`CLOSE_WAIT`] (it
    /// is left behind: the records it holds count as dropped).
    pub async fn close(self) -> Result<u64, LogError> {
        let Self {
            sender:
                LogSender {
                    records,
                    path,
                    counts,
                },
            mut task,
        } = self;
        drop(records);
        match tokio::time::timeout(CLOSE_WAIT, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(LogError::Write {
                path,
                source: std::io::Error::other(join.to_string()),
            }),
            Err(_) => {
                // The write it waits on stays blocked on its thread until the process ends.
                task.abort();
                Err(LogError::Stalled {
                    path,
                    waited: CLOSE_WAIT,
                    dropped: counts.dropped(),
                })
            }
        }
    }
}

async fn write_loop(
    mut pending: Pending,
    mut records: mpsc::Receiver<Fact>,
    path: PathBuf,
) -> Result<u64, LogError> {
    let write_error = |source| LogError::Write {
        path: path.clone(),
        source,
    };
    // When the oldest line not yet written must reach the file.
    let mut flush_by: Option<Instant> = None;
    // Records are taken in batches and encoded here, on the runtime, into `pending`; whole
    // buffers of lines are written on tokio's blocking pool, so a write the kernel stalls (dirty
    // page throttling on a slow disk) never holds up the thread that sends the probes. Only the
    // bytes cross threads: handing the records themselves to another thread to encode cost the
    // probing thread more (cross-thread frees, cache traffic) than the encoding it saved.
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        let received = match flush_by {
            Some(deadline) => tokio::select! {
                received = records.recv_many(&mut batch, WRITE_BATCH) => received,
                () = tokio::time::sleep_until(deadline) => {
                    pending.write_out().await.map_err(write_error)?;
                    flush_by = None;
                    continue;
                }
            },
            None => records.recv_many(&mut batch, WRITE_BATCH).await,
        };
        if received == 0 {
            break;
        }
        for fact in batch.drain(..) {
            pending.start_part(&fact);
            let whole = pending.bytes.len();
            if let Err(error) = pending.encoder.append(&fact, &mut pending.bytes) {
                // Only whole lines reach the file: drop the partial one, keep what came before.
                pending.bytes.truncate(whole);
                pending.write_out().await.map_err(write_error)?;
                return Err(write_error(std::io::Error::other(error)));
            }
            pending.lines += 1;
        }
        let now = Instant::now();
        match flush_by {
            _ if pending.bytes.len() >= BUFFER_BYTES => {
                pending.write_out().await.map_err(write_error)?;
                flush_by = None;
            }
            None => flush_by = Some(now + FLUSH_EVERY),
            // A steady stream never lets the sleep win the select: check the deadline here too.
            Some(deadline) if now >= deadline => {
                pending.write_out().await.map_err(write_error)?;
                flush_by = None;
            }
            Some(_) => {}
        }
    }
    pending.write_out().await.map_err(write_error)?;
    let file = pending
        .file
        .take()
        .ok_or_else(lost_file)
        .map_err(write_error)?;
    // A part opened by the last write and never written to is not left behind, empty.
    let empty_part = pending
        .part
        .as_ref()
        .filter(|part| part.number > 1 && part.bytes == 0)
        .map(|part| rotation::part_path(&part.first, part.number));
    if let Some(empty) = empty_part {
        drop(file);
        let _ = std::fs::remove_file(empty);
        return Ok(pending.counts.written());
    }
    // A FIFO, a terminal or /dev/null cannot be synced (EINVAL), and holds nothing to sync.
    if pending.regular {
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))
            .and_then(|synced| synced)
            .map_err(write_error)?;
    }
    Ok(pending.counts.written())
}

/// Whether the log at `path` is written compressed: its name ends in `.gz`.
#[must_use]
pub fn compressed(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "gz")
}

/// The log file and the whole lines not yet written to it.
struct Pending {
    /// `None` while a write is out on the blocking pool, or after one that did not come back.
    file: Option<File>,
    /// A regular file (synced at the end; written in place when the task is dropped).
    regular: bool,
    /// Every write is one gzip member of the lines it holds (see [`write_chunk`]).
    gzip: bool,
    encoder: Encoder,
    bytes: Vec<u8>,
    /// The compressed member, its allocation kept from one write to the next.
    packed: Vec<u8>,
    /// The part being written, when the log rotates.
    part: Option<Part>,
    /// How many lines `bytes` holds.
    lines: u64,
    counts: LogCounts,
}

/// How a log rotates: [`Rotation`], and the [`Retention`] of its folder, if it is omniscope's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub rotation: Rotation,
    pub retention: Option<Retention>,
}

/// The part of a rotating log being written.
struct Part {
    parts: Parts,
    first: PathBuf,
    number: u32,
    bytes: u64,
    opened: Instant,
    /// The session's `session_start`, repeated at the head of every later part.
    session_start: Option<Fact>,
    /// A new part was opened: its first line is the copy of `session_start`.
    fresh: bool,
}

impl Part {
    fn new(parts: Parts, first: PathBuf) -> Self {
        Self {
            parts,
            first,
            number: 1,
            bytes: 0,
            opened: Instant::now(),
            session_start: None,
            fresh: false,
        }
    }

    fn due(&self) -> bool {
        self.bytes >= self.parts.rotation.max_bytes
            || self.opened.elapsed() >= self.parts.rotation.max_age
    }
}

impl Pending {
    /// Before `fact` is encoded: remember the session's start, and begin a new part with it.
    fn start_part(&mut self, fact: &Fact) {
        let Some(part) = self.part.as_mut() else {
            return;
        };
        if part.session_start.is_none()
            && let Fact::SessionStart { .. } = fact
        {
            part.session_start = Some(fact.clone());
        }
        if std::mem::take(&mut part.fresh)
            && let Some(start) = &part.session_start
        {
            // Not a line of the session's own (not counted): a part's header.
            let _ = self.encoder.append(start, &mut self.bytes);
        }
    }

    /// After a write: when the part is full or old, sync it and open the next one (pruning the
    /// folder, when it has a retention), on the blocking pool.
    async fn rotate_if_due(&mut self, written: u64) -> std::io::Result<()> {
        let Some(part) = self.part.as_mut() else {
            return Ok(());
        };
        part.bytes += written;
        if !part.due() {
            return Ok(());
        }
        let old = self.file.take().ok_or_else(lost_file)?;
        let next = rotation::part_path(&part.first, part.number + 1);
        let retention = part.parts.retention;
        let opened = tokio::task::spawn_blocking(move || {
            old.sync_data()?;
            drop(old);
            let file = OpenOptions::new().create(true).append(true).open(&next)?;
            if let (Some(retention), Some(dir)) = (retention, next.parent()) {
                rotation::prune(dir, retention, &next);
            }
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))??;
        self.file = Some(opened);
        part.number += 1;
        part.bytes = 0;
        part.opened = Instant::now();
        part.fresh = true;
        // The new part reads on its own: its compact lines refer to its own lines only.
        self.encoder.reset();
        Ok(())
    }

    /// Write the lines on tokio's blocking pool; `bytes` comes back empty, its allocation kept. A
    /// blocking task that did not finish (it panicked, or the runtime is shutting down) takes the
    /// file with it: later writes say so.
    async fn write_out(&mut self) -> std::io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let mut file = self.file.take().ok_or_else(lost_file)?;
        let mut chunk = std::mem::take(&mut self.bytes);
        let mut packed = std::mem::take(&mut self.packed);
        let gzip = self.gzip;
        // Compressed there too: the probing thread pays for neither.
        let task = tokio::task::spawn_blocking(move || {
            let written = write_chunk(&mut file, &chunk, gzip, &mut packed);
            chunk.clear();
            (file, chunk, packed, written)
        });
        let (file, chunk, packed, written) = task
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))?;
        self.file = Some(file);
        self.bytes = chunk;
        self.packed = packed;
        let written = written?;
        self.counts
            .0
            .written
            .fetch_add(std::mem::take(&mut self.lines), Ordering::Relaxed);
        self.rotate_if_due(written).await
    }
}

/// The writer's task dropped with lines still here (cancelled when the runtime shut down before
/// the log was closed): they are written now, in place, as a dropped `BufWriter` would. Not to a
/// special file: a reader that stopped reading would hold the runtime's shutdown forever.
impl Drop for Pending {
    fn drop(&mut self) {
        if self.regular
            && let Some(file) = self.file.as_mut()
            && !self.bytes.is_empty()
            && write_chunk(file, &self.bytes, self.gzip, &mut self.packed).is_ok()
        {
            self.counts
                .0
                .written
                .fetch_add(self.lines, Ordering::Relaxed);
        }
    }
}

/// Write whole lines with one `write`: as they are, or as one complete gzip member, so that a
/// crash between two writes leaves a file every reader (and `zcat`) reads to its last write.
/// Each member stands alone: a second of a load run is ~100 KB of lines, plenty for deflate to
/// find the repeats in. Returns the bytes written.
fn write_chunk(
    file: &mut File,
    chunk: &[u8],
    gzip: bool,
    packed: &mut Vec<u8>,
) -> std::io::Result<u64> {
    if !gzip {
        file.write_all(chunk)?;
        return Ok(chunk.len() as u64);
    }
    packed.clear();
    let mut member = flate2::write::GzEncoder::new(std::mem::take(packed), Compression::fast());
    member.write_all(chunk)?;
    *packed = member.finish()?;
    file.write_all(packed)?;
    Ok(packed.len() as u64)
}

fn lost_file() -> std::io::Error {
    std::io::Error::other("the log writer lost its file after a failed write")
}
