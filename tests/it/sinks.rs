//! Where a run writes (the event log, the report), when it is not a plain file, or not ready:
//! a FIFO without a reader, a reader that stops reading, `/dev/stdout`, `/dev/null`, a directory.
//! Through the real binary. A test that would hang without its fix bounds the process generously
//! and kills it afterwards; it asserts that the process ended, never how fast.

use crate::support::binary::{self, output, signal, text, wait_bounded};
use crate::support::scripted::{Server, omni_ok};

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "sk_test_sinks_SECRET_58";
/// Far longer than any of these runs takes; only a hang reaches it.
const HANG_BOUND: Duration = Duration::from_secs(90);

fn quick_probe(dir: &Path, base: &str) -> Command {
    let mut run = binary::command(dir, SECRET);
    run.args(["run", "--provider", "omniscrape", "--endpoint", base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY"])
        .args(["--target", "https://a.example/"]);
    run
}

fn mkfifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success(), "mkfifo");
    path
}

fn report_at(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_fifo_without_a_reader_is_a_usage_error_not_a_blocked_open() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path(), "sink");
    for flag in ["--log", "--report"] {
        let mut run = quick_probe(dir.path(), &base);
        run.arg("--once").arg(flag).arg(&fifo);
        if flag == "--report" {
            run.arg("--no-log");
        }
        let child = run
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = wait_bounded(child, HANG_BOUND).await;
        let status = status.unwrap_or_else(|| panic!("{flag} FIFO: blocked in open(), killed"));
        assert_eq!(status.code(), Some(2), "{flag} FIFO");
    }
    // The message, from a run that ends at once.
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--once", "--log"]).arg(&fifo);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("sink") && stderr.contains("nothing is reading"),
        "{stderr}"
    );
    assert!(server.seen().is_empty(), "a request was sent");
}

/// A run whose event log is a FIFO that is open but never read: the pipe fills within the
/// first few dozen attempts.
fn stalled_log_run(dir: &Path, base: &str, fifo: &Path, report: &Path) -> Command {
    let mut run = quick_probe(dir, base);
    run.args(["--every", "0s", "--concurrency", "4", "--rate", "unlimited"])
        .arg("--log")
        .arg(fifo)
        .arg("--report")
        .arg(report)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    run
}

/// Holds the FIFO open for reading (and writing, so that opening it does not wait), never reads.
fn reader_that_never_reads(fifo: &Path) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(fifo)
        .unwrap()
}

#[tokio::test]
async fn a_log_reader_that_stops_reading_does_not_stop_probing_or_the_duration() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(404));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path(), "log");
    let _reader = reader_that_never_reads(&fifo);
    let report = dir.path().join("r.json");
    let mut run = stalled_log_run(dir.path(), &base, &fifo, &report);
    run.args(["--duration", "4s"]);
    let child = run.spawn().unwrap();
    let status = wait_bounded(child, HANG_BOUND).await;
    let status = status.expect("the run froze on its stalled log and outlived --duration: killed");
    assert_eq!(status.code(), Some(0));
    let report = report_at(&report);
    // Records the log could not take are attempts made after its reader stopped: probing went
    // on. How many attempts fit in 4 s depends on the machine's load, so no count is asserted.
    let attempts = report["providers"][0]["attempts"].as_u64().unwrap();
    let dropped = report["event_log_dropped"].as_u64().unwrap();
    assert!(
        attempts > 0 && dropped > 0,
        "probing stopped with the log: {report}"
    );
    assert!(
        dropped <= attempts * 2 + 8,
        "a dropped record is one the run made (an attempt, its in-flight count, a few session records): {report}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_and_sigint_still_stop_a_run_whose_log_has_stalled() {
    // The two signals side by side, each with its own server: their runs' waits for a stalled
    // log overlap.
    let stop_with = |name: &'static str| async move {
        let server = Server::new();
        server.default_reply("/v1/scrape", omni_ok(404));
        let base = server.start().await;
        let dir = tempfile::tempdir().unwrap();
        let fifo = mkfifo(dir.path(), "log");
        let _reader = reader_that_never_reads(&fifo);
        let report = dir.path().join("r.json");
        let child = stalled_log_run(dir.path(), &base, &fifo, &report)
            .spawn()
            .unwrap();
        // Well past the point where the pipe is full (bounded: a frozen run never gets there).
        let waited = Instant::now();
        while server.seen().len() < 1000 && waited.elapsed() < HANG_BOUND {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal(&child, name);
        let status = wait_bounded(child, HANG_BOUND).await;
        let status = status.unwrap_or_else(|| panic!("{name} ignored: killed"));
        assert_eq!(status.code(), Some(0), "{name}");
        assert!(
            server.seen().len() >= 1000,
            "{name}: probing stopped with the log"
        );
        assert!(report_at(&report)["event_log_dropped"].as_u64().unwrap() > 0);
    };
    futures::future::join_all(["-TERM", "-INT"].map(stop_with)).await;
}

#[tokio::test]
async fn a_log_on_a_stdout_nobody_reads_does_not_hold_the_run() {
    // `omniscope run … --log /dev/stdout | sleep 60`: the log and the summary share a pipe whose
    // reader never reads. The test holds the pipe's read end and never reads it either.
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(404));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_reader, writer) = std::io::pipe().unwrap();
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--every", "0s", "--concurrency", "4", "--rate", "unlimited"])
        .args(["--log", "/dev/stdout"])
        .stdout(writer)
        .stderr(Stdio::null());
    let child = run.spawn().unwrap();
    drop(run);
    // Probing goes on past what the pipe holds (bounded: a frozen run never gets there); then
    // the run is stopped as a user stops it, and must end although nobody reads its output.
    let waited = Instant::now();
    while server.seen().len() <= 500 && waited.elapsed() < HANG_BOUND {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.seen().len() > 500, "probing stopped with the log");
    signal(&child, "-TERM");
    let status = wait_bounded(child, HANG_BOUND).await;
    let status = status.expect("the run froze on its stdout: killed");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn report_to_dev_stdout_is_the_whole_output_and_dev_null_works() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    // `omniscope run … --report /dev/stdout | jq`: stdout is the report alone.
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--once", "--no-log", "--report", "/dev/stdout"]);
    let out = output(run).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not the report alone: {error}\n{stdout}"));
    assert_eq!(report["schema"], "omniscope.report.v1");
    assert_eq!(report["providers"][0]["attempts"], 1);
    assert!(
        stderr.contains("success rate"),
        "the summary went to stderr: {stderr}"
    );
    // /dev/null for both: no fsync failure (EINVAL), no spurious error.
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--once", "--log", "/dev/null", "--report", "/dev/null"]);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cannot"), "{stderr}");
    assert!(!stderr.contains("stopped"), "{stderr}");
}

#[tokio::test]
async fn an_old_report_survives_a_run_that_fails_at_start_up() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(&report, "{\"old\": true}\n").unwrap();
    let a_directory = dir.path().join("logs-dir");
    std::fs::create_dir(&a_directory).unwrap();
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--once", "--report"])
        .arg(&report)
        .arg("--log")
        .arg(&a_directory);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "{\"old\": true}\n",
        "the old report was destroyed before a new one existed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "a temporary file was left: {leftovers:?}"
    );
    // A run that completes replaces it.
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--once", "--no-log", "--report"]).arg(&report);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report_at(&report)["schema"], "omniscope.report.v1");
}
