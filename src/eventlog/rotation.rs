//! Rotation and retention: a long session's log is a set of parts, and old logs are pruned.
//!
//! A log file is closed and a new part started once it holds [`Rotation::max_bytes`] or has been
//! written for [`Rotation::max_age`]. Part 1 is the file the session was given; part N is the same
//! name with `.partNNNN` before its `.ndjson` (`session-….ndjson.gz`, `session-….part0002.ndjson.gz`),
//! so the parts sort by name in the order they were written. Every part starts with a copy of the
//! session's `session_start`, which readers take as the same session going on
//! ([`super::reader::Sessions`]): a part reads on its own, and a set of parts reads as one session.
//!
//! Retention keeps the data dir's `logs/` folder within [`Retention::keep`] and
//! [`Retention::max_total_bytes`], oldest files first, never the file being written. Files named
//! with `--log` elsewhere are never pruned: omniscope deletes only what it named itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// When a log starts a new part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// How much of the logs folder is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep: Duration,
    pub max_total_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: Duration::from_secs(7 * 24 * 3600),
            max_total_bytes: 2_000_000_000,
        }
    }
}

/// The log settings of a session: `[log]` in config.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogPolicy {
    pub rotation: Rotation,
    pub retention: Retention,
}

/// The path of part `part` (from 1) of the log whose first part is `first`.
#[must_use]
pub fn part_path(first: &Path, part: u32) -> PathBuf {
    if part <= 1 {
        return first.to_owned();
    }
    let name = first
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = format!(".part{part:04}");
    let named = match name.find(".ndjson") {
        Some(at) => format!("{}{marker}{}", &name[..at], &name[at..]),
        None => format!("{name}{marker}"),
    };
    first.with_file_name(named)
}

/// Whether `name` is a log file omniscope names (and so may prune): `session-…` ending in
/// `.ndjson` or `.ndjson.gz`.
#[must_use]
pub fn is_session_log(name: &str) -> bool {
    name.starts_with("session-") && is_log_name(name)
}

/// Whether `name` ends like a log file: `.ndjson` or `.ndjson.gz`.
#[must_use]
pub fn is_log_name(name: &str) -> bool {
    name.ends_with(".ndjson") || name.ends_with(".ndjson.gz")
}

/// A file of the logs folder, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub modified: SystemTime,
    pub bytes: u64,
}

/// Which files to delete: those last written before `now - keep`, then the oldest others until
/// the folder holds at most `max_total_bytes`; never `current`.
#[must_use]
pub fn to_prune(
    files: &[LogFile],
    now: SystemTime,
    retention: Retention,
    current: &Path,
) -> Vec<PathBuf> {
    let cutoff = now.checked_sub(retention.keep);
    let mut kept: Vec<&LogFile> = Vec::new();
    let mut pruned = Vec::new();
    for file in files {
        let expired = cutoff.is_some_and(|cutoff| file.modified < cutoff);
        if expired && file.path != current {
            pruned.push(file.path.clone());
        } else {
            kept.push(file);
        }
    }
    kept.sort_by_key(|file| file.modified);
    let mut total: u64 = kept.iter().map(|file| file.bytes).sum();
    for file in kept {
        if total <= retention.max_total_bytes {
            break;
        }
        if file.path != current {
            total = total.saturating_sub(file.bytes);
            pruned.push(file.path.clone());
        }
    }
    pruned
}

/// Apply `retention` to the folder `dir`: delete the session logs [`to_prune`] names. Returns how
/// many files were deleted; a file that cannot be read or deleted is left, never an error.
pub fn prune(dir: &Path, retention: Retention, current: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let files: Vec<LogFile> = entries
        .filter_map(Result::ok)
        .filter(|entry| is_session_log(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let metadata = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some(LogFile {
                path: entry.path(),
                modified: metadata.modified().ok()?,
                bytes: metadata.len(),
            })
        })
        .collect();
    to_prune(&files, SystemTime::now(), retention, current)
        .iter()
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// The files of a log set given on the command line, in reading order: a directory stands for
/// its log files (`*.ndjson`, `*.ndjson.gz`) sorted by name, so a session's parts follow each
/// other; a file stands for itself.
///
/// # Errors
/// A directory cannot be listed.
pub fn expand(inputs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(Result::ok)
                .filter(|entry| is_log_name(&entry.file_name().to_string_lossy()))
                .map(|entry| entry.path())
                .filter(|path| path.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sort_after_the_first_in_order() {
        let first = Path::new("/logs/session-20231114T221321.500Z.ndjson.gz");
        let mut parts: Vec<PathBuf> = (1..=12).rev().map(|n| part_path(first, n)).collect();
        parts.sort();
        assert_eq!(parts[0], first);
        assert_eq!(
            parts[1],
            Path::new("/logs/session-20231114T221321.500Z.part0002.ndjson.gz")
        );
        assert_eq!(
            parts,
            (1..=12).map(|n| part_path(first, n)).collect::<Vec<_>>()
        );
        assert_eq!(
            part_path(Path::new("x.log"), 3),
            Path::new("x.log.part0003")
        );
        assert!(is_session_log("session-x.part0002.ndjson.gz"));
        assert!(!is_session_log("notes.ndjson") && !is_session_log("session-x.json"));
    }

    #[test]
    fn retention_prunes_the_expired_then_the_oldest_never_the_current() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 24 * 3600);
        let day = Duration::from_secs(24 * 3600);
        let file = |name: &str, days_ago: u32, bytes: u64| LogFile {
            path: PathBuf::from(name),
            modified: now - day * days_ago,
            bytes,
        };
        let files = [
            file("a", 9, 10),
            file("b", 8, 10),
            file("c", 3, 600),
            file("d", 2, 600),
            file("current", 10, 900),
        ];
        let retention = Retention {
            keep: day * 7,
            max_total_bytes: 2100,
        };
        let current = Path::new("current");
        assert_eq!(
            to_prune(&files, now, retention, current),
            ["a", "b"].map(PathBuf::from)
        );
        let tight = Retention {
            max_total_bytes: 1000,
            ..retention
        };
        // 2100 bytes left after the expired: the current one stays, however old, and the
        // oldest others go until 900 are left.
        assert_eq!(
            to_prune(&files, now, tight, current),
            ["a", "b", "c", "d"].map(PathBuf::from)
        );
    }
}
