//! The files omniscope writes to, whatever the user names: a regular file, a FIFO, `/dev/stdout`,
//! `/dev/null`.
//!
//! - A regular report is written to a temporary file beside it, synced, then renamed over it: an
//!   old report survives until the new one exists (a run that fails at start-up, or is killed,
//!   leaves it as it was).
//! - A special file (a FIFO, a terminal, `/dev/stdout`, `/dev/null`) is written in place and never
//!   synced (`fsync` on one fails with EINVAL).
//! - A FIFO is opened without waiting for a reader: with none, `open` fails at once (ENXIO) instead
//!   of blocking forever, and the user is told to start the reader first.
//! - A write to a special file whose reader has stopped reading is given up after a deadline.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a write to a FIFO, pipe or terminal may take before its reader counts as gone.
pub const SPECIAL_WRITE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: nothing is reading the FIFO (start its reader first)")]
    NoReader { path: PathBuf },
    #[error("{path} is a directory")]
    Directory { path: PathBuf },
    #[error("{path}: its reader stopped reading (gave up after {waited:?})")]
    Stalled { path: PathBuf, waited: Duration },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl OutputError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What kind of file a path names, for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, or nothing yet (it will be one).
    Regular,
    /// A FIFO, a character device (terminal, `/dev/null`), a socket's path…
    Special,
}

/// The kind of `path` (symbolic links followed).
///
/// # Errors
/// It is a directory, or it cannot be examined.
pub fn kind(path: &Path) -> Result<Kind, OutputError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(OutputError::Directory {
            path: path.to_owned(),
        }),
        Ok(meta) if meta.is_file() => Ok(Kind::Regular),
        Ok(_) => Ok(Kind::Special),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Kind::Regular),
        Err(source) => Err(OutputError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Open a special file for writing without blocking: a FIFO with no reader is an error at once.
/// The file comes back in blocking mode (writes that wait are the caller's to bound).
///
/// # Errors
/// No reader on a FIFO, or the file cannot be opened.
pub fn open_special(path: &Path, append: bool) -> Result<File, OutputError> {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = OpenOptions::new()
            .write(true)
            .append(append)
            .custom_flags(OFlags::NONBLOCK.bits().cast_signed())
            .open(path)
            .map_err(|source| {
                // ENXIO: a FIFO opened for writing, non-blocking, with no reader.
                if source.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                    OutputError::NoReader {
                        path: path.to_owned(),
                    }
                } else {
                    OutputError::Io {
                        path: path.to_owned(),
                        source,
                    }
                }
            })?;
        let flags = rustix::fs::fcntl_getfl(&file)
            .map_err(io::Error::from)
            .map_err(OutputError::io(path))?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
            .map_err(io::Error::from)
            .map_err(OutputError::io(path))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        OpenOptions::new()
            .write(true)
            .append(append)
            .open(path)
            .map_err(OutputError::io(path))
    }
}

/// Write `bytes` to a special file on a thread of its own, giving up after `wait`: a reader that
/// stopped reading holds only that thread, which the process's exit ends.
///
/// # Errors
/// The write failed, or did not finish within `wait`.
pub fn write_special(
    mut file: File,
    path: &Path,
    bytes: Vec<u8>,
    wait: Duration,
) -> Result<(), OutputError> {
    let (done_tx, done) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("omniscope-output".to_owned())
        .spawn(move || {
            let written = file.write_all(&bytes).and_then(|()| file.flush());
            let _ = done_tx.send(written);
        });
    spawned.map_err(OutputError::io(path))?;
    match done.recv_timeout(wait) {
        Ok(written) => written.map_err(OutputError::io(path)),
        Err(_) => Err(OutputError::Stalled {
            path: path.to_owned(),
            waited: wait,
        }),
    }
}

/// Whether `file` is this process's standard output (`--report /dev/stdout`), so that nothing else
/// is printed into it.
#[must_use]
pub fn is_stdout(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let Ok(stdout) = io::stdout().as_fd().try_clone_to_owned() else {
            return false;
        };
        match (File::from(stdout).metadata(), file.metadata()) {
            (Ok(stdout), Ok(file)) => stdout.dev() == file.dev() && stdout.ino() == file.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

/// A report file, opened (or its temporary file created) before the run spends anything, so that
/// a bad path stops it early; written once, at the end.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    target: Target,
}

#[derive(Debug)]
enum Target {
    /// Written to `temp`, then renamed to `destination` (the path, symbolic links resolved, so a
    /// link keeps pointing at the report).
    Replace {
        temp: tempfile::NamedTempFile,
        destination: PathBuf,
    },
    Stream(File),
}

impl ReportFile {
    /// Prepare to write the report at `path`. Nothing existing is touched yet.
    ///
    /// # Errors
    /// The path is a directory, its folder cannot take a new file, or a FIFO has no reader.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let target = match kind(path)? {
            Kind::Special => Target::Stream(open_special(path, false)?),
            Kind::Regular => {
                let destination = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
                let folder = destination
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let name = destination
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".tmp")
                    .tempfile_in(folder)
                    .map_err(OutputError::io(path))?;
                Target::Replace { temp, destination }
            }
        };
        Ok(Self {
            path: path.to_owned(),
            target,
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the report goes to this process's standard output.
    #[must_use]
    pub fn is_stdout(&self) -> bool {
        match &self.target {
            Target::Stream(file) => is_stdout(file),
            Target::Replace { .. } => false,
        }
    }

    /// Write `bytes` as the whole report: a regular file is replaced only once the new one is
    /// complete and synced; a special file is streamed, giving up after [`SPECIAL_WRITE_WAIT`].
    ///
    /// # Errors
    /// The write, sync or rename failed; the reader of a special file stopped reading.
    pub fn write(self, bytes: Vec<u8>) -> Result<(), OutputError> {
        let path = self.path;
        match self.target {
            Target::Stream(file) => write_special(file, &path, bytes, SPECIAL_WRITE_WAIT),
            Target::Replace {
                mut temp,
                destination,
            } => {
                temp.write_all(&bytes)
                    .and_then(|()| temp.as_file().sync_all())
                    .map_err(OutputError::io(&path))?;
                keep_permissions(temp.as_file(), &destination);
                temp.persist(&destination)
                    .map_err(|error| OutputError::Io {
                        path: path.clone(),
                        source: error.error,
                    })?;
                Ok(())
            }
        }
    }
}

/// A temporary file is created readable by its owner only; the report gets the old report's
/// permissions, or a new file's usual ones.
fn keep_permissions(temp: &File, destination: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let permissions = std::fs::metadata(destination).map_or_else(
            |_| std::fs::Permissions::from_mode(0o644),
            |meta| meta.permissions(),
        );
        let _ = temp.set_permissions(permissions);
    }
    #[cfg(not(unix))]
    {
        let _ = (temp, destination);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_report_survives_until_the_new_one_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        let report = ReportFile::create(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        drop(report);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "old",
            "a report never written leaves the old one"
        );
        let names = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names(), 1, "the temporary file is removed");
        ReportFile::create(&path)
            .unwrap()
            .write(b"new".to_vec())
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(), 1);
    }

    #[test]
    fn special_files_are_written_in_place_without_sync() {
        let report = ReportFile::create(Path::new("/dev/null")).unwrap();
        assert!(matches!(report.target, Target::Stream(_)));
        report.write(b"{}\n".to_vec()).unwrap();
    }

    #[test]
    fn a_directory_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let error = ReportFile::create(dir.path()).unwrap_err();
        assert!(matches!(error, OutputError::Directory { .. }), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_reader_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let error = ReportFile::create(&fifo).unwrap_err();
        assert!(matches!(error, OutputError::NoReader { .. }), "{error}");
        // With a reader that does not read, a write is given up, not waited on forever.
        let _reader = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let file = open_special(&fifo, false).unwrap();
        let error = write_special(file, &fifo, vec![b'x'; 1 << 20], Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(error, OutputError::Stalled { .. }), "{error}");
    }
}
