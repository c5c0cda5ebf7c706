//! The log writer: a tokio task that takes records from a bounded channel, encodes them into a
//! buffer of whole lines, and writes full buffers on tokio's blocking pool.
//!
//! Lines reach the file whole: a record is encoded after the last complete line in the buffer (a
//! record that fails to encode is cut off again), and only the buffer's whole contents are
//! written. The buffer is written when it is full, at most [`FLUSH_EVERY`] after its oldest line
//! was encoded, and on close: a SIGKILL loses at most the last second, never leaves half a line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Record;

/// Records waiting for the writer; a sender waits when the writer is this far behind.
pub const CHANNEL_CAPACITY: usize = 1024;
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
    records: mpsc::Sender<Record>,
    path: PathBuf,
}

impl LogSender {
    /// Queue one record, waiting while the writer is [`CHANNEL_CAPACITY`] records behind.
    ///
    /// # Errors
    /// The writer stopped (a write failed; [`EventLog::close`] says why).
    pub async fn send(&self, record: Record) -> Result<(), LogError> {
        self.records
            .send(record)
            .await
            .map_err(|_| LogError::Closed {
                path: self.path.clone(),
            })
    }
}

impl EventLog {
    /// Create (or append to) the log file, creating its folder, and start the writer on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// The folder or the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, LogError> {
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
        Ok(Self::start(file, path.to_owned()))
    }

    fn start(file: File, path: PathBuf) -> Self {
        let (records, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(write_loop(file, receiver, path.clone()));
        Self {
            sender: LogSender { records, path },
            task,
        }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.sender.path
    }

    #[must_use]
    pub fn sender(&self) -> LogSender {
        self.sender.clone()
    }

    /// Queue one record, waiting while the writer is [`CHANNEL_CAPACITY`] records behind.
    ///
    /// # Errors
    /// The writer stopped (a write failed; [`EventLog::close`] says why).
    pub async fn send(&self, record: Record) -> Result<(), LogError> {
        self.sender.send(record).await
    }

    /// Write what is queued, flush, and stop. Returns the number of lines written. Other
    /// [`LogSender`]s must be dropped first, or this waits for them.
    ///
    /// # Errors
    /// The first write error, naming the file.
    pub async fn close(self) -> Result<u64, LogError> {
        let Self {
            sender: LogSender { records, path },
            task,
        } = self;
        drop(records);
        match task.await {
            Ok(result) => result,
            Err(join) => Err(LogError::Write {
                path,
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

async fn write_loop(
    file: File,
    mut records: mpsc::Receiver<Record>,
    path: PathBuf,
) -> Result<u64, LogError> {
    let write_error = |source| LogError::Write {
        path: path.clone(),
        source,
    };
    let mut lines = 0_u64;
    // When the oldest line not yet written must reach the file.
    let mut flush_by: Option<Instant> = None;
    // Records are taken in batches and encoded here, on the runtime, into `pending`; whole
    // buffers of lines are written on tokio's blocking pool, so a write the kernel stalls (dirty
    // page throttling on a slow disk) never holds up the thread that sends the probes. Only the
    // bytes cross threads: handing the records themselves to another thread to encode cost the
    // probing thread more (cross-thread frees, cache traffic) than the encoding it saved.
    let mut file = Some(file);
    let mut pending = Vec::with_capacity(BUFFER_BYTES);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        let received = match flush_by {
            Some(deadline) => tokio::select! {
                received = records.recv_many(&mut batch, WRITE_BATCH) => received,
                () = tokio::time::sleep_until(deadline) => {
                    write_out(&mut file, &mut pending).await.map_err(write_error)?;
                    flush_by = None;
                    continue;
                }
            },
            None => records.recv_many(&mut batch, WRITE_BATCH).await,
        };
        if received == 0 {
            break;
        }
        for record in batch.drain(..) {
            let whole = pending.len();
            if let Err(error) = record.append_line(&mut pending) {
                // Only whole lines reach the file: drop the partial one, keep what came before.
                pending.truncate(whole);
                write_out(&mut file, &mut pending)
                    .await
                    .map_err(write_error)?;
                return Err(write_error(std::io::Error::other(error)));
            }
            lines += 1;
        }
        let now = Instant::now();
        match flush_by {
            _ if pending.len() >= BUFFER_BYTES => {
                write_out(&mut file, &mut pending)
                    .await
                    .map_err(write_error)?;
                flush_by = None;
            }
            None => flush_by = Some(now + FLUSH_EVERY),
            // A steady stream never lets the sleep win the select: check the deadline here too.
            Some(deadline) if now >= deadline => {
                write_out(&mut file, &mut pending)
                    .await
                    .map_err(write_error)?;
                flush_by = None;
            }
            Some(_) => {}
        }
    }
    write_out(&mut file, &mut pending)
        .await
        .map_err(write_error)?;
    let file = file.ok_or_else(lost_file).map_err(write_error)?;
    tokio::task::spawn_blocking(move || file.sync_data())
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|synced| synced)
        .map_err(write_error)?;
    Ok(lines)
}

/// Write `pending` (whole lines) to the file on tokio's blocking pool; `pending` comes back
/// empty, its allocation kept. A blocking task that did not finish (it panicked, or the runtime
/// is shutting down) takes the file with it: later writes say so.
async fn write_out(file: &mut Option<File>, pending: &mut Vec<u8>) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut out = file.take().ok_or_else(lost_file)?;
    let mut chunk = std::mem::take(pending);
    let task = tokio::task::spawn_blocking(move || {
        let written = out.write_all(&chunk);
        chunk.clear();
        (out, chunk, written)
    });
    let (out, chunk, written) = task
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))?;
    *file = Some(out);
    *pending = chunk;
    written
}

fn lost_file() -> std::io::Error {
    std::io::Error::other("the log writer lost its file after a failed write")
}
