//! The log writer: a tokio task that appends records from a bounded channel, encoding and writing
//! them on tokio's blocking pool.
//!
//! Lines reach the file whole: each record is encoded to one line and handed to a `BufWriter` with
//! one `write_all`, and a `BufWriter` only spills its buffer *before* a write that would not fit,
//! so every write to the file ends at a line boundary. The buffer is flushed at most
//! [`FLUSH_EVERY`] after the oldest unflushed line was written, and on close: a SIGKILL loses at
//! most the last second, never leaves half a line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
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
        let task = tokio::spawn(write_loop(
            BufWriter::with_capacity(BUFFER_BYTES, file),
            receiver,
            path.clone(),
        ));
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
    out: BufWriter<File>,
    mut records: mpsc::Receiver<Record>,
    path: PathBuf,
) -> Result<u64, LogError> {
    let write_error = |source| LogError::Write {
        path: path.clone(),
        source,
    };
    let mut lines = 0_u64;
    // When the oldest line not yet flushed must reach the file.
    let mut flush_by: Option<Instant> = None;
    // Records are taken in batches; each batch is encoded and written on tokio's blocking pool,
    // so neither serde's encoding (most of the log's cost) nor a slow disk holds up the runtime
    // thread that sends the probes. Under load that is one wake-up, one hand-off and one timer
    // per batch, and the buffers are reused: no allocation per line.
    let mut output = Some(Output {
        file: out,
        batch: Vec::with_capacity(WRITE_BATCH),
        line: Vec::with_capacity(4096),
    });
    while let Some(current) = output.as_mut() {
        let received = match flush_by {
            Some(deadline) => tokio::select! {
                received = records.recv_many(&mut current.batch, WRITE_BATCH) => received,
                () = tokio::time::sleep_until(deadline) => {
                    // Once a second at most, and at most one buffer's worth: done in place.
                    current.file.flush().map_err(write_error)?;
                    flush_by = None;
                    continue;
                }
            },
            None => records.recv_many(&mut current.batch, WRITE_BATCH).await,
        };
        if received == 0 {
            break;
        }
        let (returned, written) = on_blocking_pool(output.take(), Output::write_batch).await;
        output = returned;
        lines += written.map_err(write_error)?;
        let now = Instant::now();
        match flush_by {
            None => flush_by = Some(now + FLUSH_EVERY),
            // A steady stream never lets the sleep win the select: check the deadline here too.
            Some(deadline) if now >= deadline => {
                if let Some(current) = output.as_mut() {
                    current.file.flush().map_err(write_error)?;
                }
                flush_by = None;
            }
            Some(_) => {}
        }
    }
    let (_, closed) = on_blocking_pool(output, Output::close).await;
    closed.map_err(write_error)?;
    Ok(lines)
}

/// The file and the buffers the writer reuses, handed to the blocking pool and back.
struct Output {
    file: BufWriter<File>,
    batch: Vec<Record>,
    line: Vec<u8>,
}

impl Output {
    /// Encode and write the batch, one `write_all` per line; the number of lines written.
    fn write_batch(&mut self) -> std::io::Result<u64> {
        let mut written = 0;
        for record in self.batch.drain(..) {
            self.line.clear();
            record
                .append_line(&mut self.line)
                .map_err(std::io::Error::other)?;
            self.file.write_all(&self.line)?;
            written += 1;
        }
        Ok(written)
    }

    fn close(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }
}

/// Run `work` on the output on tokio's blocking pool and hand the output back. `None` in, or a
/// blocking task that did not finish (it panicked, or the runtime is shutting down): the output
/// is gone and the error says so.
async fn on_blocking_pool<T: Send + 'static>(
    output: Option<Output>,
    work: fn(&mut Output) -> std::io::Result<T>,
) -> (Option<Output>, std::io::Result<T>) {
    let Some(mut output) = output else {
        return (None, Err(std::io::Error::other("the writer lost its file")));
    };
    let task = tokio::task::spawn_blocking(move || {
        let result = work(&mut output);
        (output, result)
    });
    match task.await {
        Ok((output, result)) => (Some(output), result),
        Err(join) => (None, Err(std::io::Error::other(join.to_string()))),
    }
}
