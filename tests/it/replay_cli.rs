//! The real binary: `run --log` then `replay --headless --report` gives the report `run` wrote;
//! a run killed with SIGKILL leaves a log whose every line parses; the key is never in the log.

use crate::support::binary;
use crate::support::scripted;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use binary::{output, text};
use omniscope::eventlog::read_path;
use scripted::{Server, alter_fail, alter_ok, omni_fail, omni_ok};

const SECRET: &str = "sk_test_eventlog_SECRET_31";

fn command(dir: &Path) -> Command {
    binary::command(dir, SECRET)
}

#[tokio::test]
async fn a_replayed_log_writes_the_report_run_wrote() {
    let server = Server::new();
    server.queue(
        "/v1/scrape",
        vec![omni_ok(200), omni_fail(502, None), omni_ok(404)],
    );
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let (live, log, replayed) = (
        dir.path().join("live.json"),
        dir.path().join("session.ndjson"),
        dir.path().join("replayed.json"),
    );
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once"])
        .args([
            "--target",
            "https://a.example/",
            "--target",
            "https://b.example/",
        ])
        .args(["--target", "https://c.example/"])
        .arg("--report")
        .arg(&live)
        .arg("--log")
        .arg(&log);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let raw_log = std::fs::read_to_string(&log).unwrap();
    assert!(!raw_log.contains(SECRET), "the key is never in the log");
    let read = read_path(&log).unwrap();
    assert_eq!(read.summary.unreadable, 0);
    assert!(read.facts.len() >= 5, "{raw_log}");

    let mut replay = command(dir.path());
    replay
        .args(["replay", "--headless", "--report"])
        .arg(&replayed)
        .arg(&log);
    let out = output(replay).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let live: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&live).unwrap()).unwrap();
    let replayed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&replayed).unwrap()).unwrap();
    assert!(live["providers"][0]["attempts"].as_u64().unwrap() >= 3);
    assert_eq!(replayed, live, "same counts, same billing, same duration");

    // Played from its folder: the folder's log files, read in order as one log (its reports are
    // not logs and are left out).
    let mut play = command(dir.path());
    play.args(["replay", "--speed", "max"]).arg(dir.path());
    let out = output(play).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("omniscrape #"))
            .count(),
        usize::try_from(live["providers"][0]["attempts"].as_u64().unwrap()).unwrap(),
        "{stdout}"
    );
    assert!(stdout.contains("api 502"), "{stdout}");
}

#[tokio::test]
async fn the_default_log_is_a_session_file_and_no_log_writes_none() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_fail(402, "INSUFFICIENT_CREDITS"));
    server.default_reply("/api/v1/usage", alter_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--provider", "alterlab", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once"])
        .args([
            "--target",
            "https://a.example/",
            "--target",
            "https://b.example/",
        ]);
    let out = output(run).await;
    // The credits ran out (alterlab paused): exit 4, and the log is still written.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1);
    let name = logs[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("session-") && name.ends_with(".ndjson.gz"),
        "{name}"
    );
    let raw = binary::log_text(&logs[0]);
    assert!(!raw.contains(SECRET));
    assert!(raw.contains(r#""type":"paused""#), "{raw}");
    assert!(raw.contains(r#""type":"skipped""#), "{raw}");

    let quiet = tempfile::tempdir().unwrap();
    let mut run = command(quiet.path());
    run.args(["run", "--provider", "alterlab", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once", "--no-log"])
        .args(["--target", "https://a.example/"]);
    let out = output(run).await;
    // Paused by the same account error: exit 4 (README "Exit status").
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(!quiet.path().join("logs").exists());
}

#[tokio::test]
async fn a_run_killed_with_sigkill_leaves_a_log_whose_every_line_parses() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    // Compressed, as the default session file is: every write is a whole gzip member.
    let log = dir.path().join("killed.ndjson.gz");
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--every", "0s"])
        .args([
            "--concurrency",
            "4",
            "--rate",
            "unlimited",
            "--duration",
            "10m",
        ])
        .args(["--target", "https://a.example/"])
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = run.spawn().unwrap();
    // Wait (bounded) until a few flushes reached the file, then kill without warning.
    let mut waited = 0;
    while std::fs::metadata(&log).map_or(0, |m| m.len()) < 20_000 && waited < 600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let raw = std::fs::read(&log).unwrap();
    assert!(raw.len() >= 20_000, "the run logged {} bytes", raw.len());
    assert!(
        binary::log_text(&log).ends_with('\n'),
        "no half line at the end"
    );
    let read = read_path(&log).unwrap();
    assert_eq!(read.summary.unreadable, 0, "{:?}", read.summary.examples);
    assert!(!read.summary.partial_tail, "no member cut");
    assert!(read.facts.len() > 10);
    let mut replay = command(dir.path());
    replay.args(["replay", "--headless"]).arg(&log);
    let out = output(replay).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no session_end"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn run_serves_metrics_at_the_address_it_is_given() {
    use std::io::{BufRead, BufReader};

    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--every", "1s"])
        .args(["--duration", "10m", "--no-log"])
        .args(["--target", "https://a.example/"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null());
    let mut child = run.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_once("metrics at ")
                    .map(|(_, url)| url.trim().to_owned())
            })
    })
    .await
    .unwrap()
    .expect("the run names its metrics address");
    let mut body = String::new();
    for _ in 0..200 {
        body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if body.contains("omniscope_attempts_total{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        body.contains(r#"omniscope_attempts_total{provider="omniscrape",api_status="200",target_status="200",error_code="none",result="succeeded",origin="probe"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"omniscope_paused{provider="omniscrape"} 0"#),
        "{body}"
    );
    assert!(!body.contains(SECRET));
}

#[tokio::test]
async fn a_log_that_cannot_be_read_is_a_usage_error_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ndjson");
    let mut replay = command(dir.path());
    replay.args(["replay", "--headless"]).arg(&missing);
    let out = output(replay).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.ndjson"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");

    // An empty log is no session of 1970 that exits 0.
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let mut replay = command(dir.path());
    replay.args(["replay", "--headless"]).arg(&empty);
    let out = output(replay).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds no session"), "{stderr}");
    assert!(!text(&out.stdout).contains("1970"));
}

#[test]
fn a_closed_stdout_ends_the_output_quietly_not_in_a_panic() {
    // `omniscope providers | head -1`: the reader has gone. Rust ignores SIGPIPE, so a `print!`
    // there panics. The pipe's read end is closed before the child writes a byte.
    let dir = tempfile::tempdir().unwrap();
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/fixtures/eventlog/v1-before-one-fact-type.ndjson"
    );
    for args in [
        &["providers", "--json"][..],
        &["providers"][..],
        &["replay", log, "--headless"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = binary::command(dir.path(), "unused");
        command.args(args).stdout(writer);
        let done = command.output().unwrap();
        let stderr = binary::text(&done.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(done.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn a_text_replay_stops_when_its_reader_has_gone() {
    // `omniscope replay LOG | head`: the replay plays at the recorded pace (here an hour between
    // lines), so once the reader has gone it must stop, not play on to nobody.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.ndjson");
    let line = |kind: &str, at: &str| {
        format!(
            r#"{{"schema":"omniscope.event.v1","type":"{kind}","provider":"omniscrape","reason":"user","at":"{at}"}}"#
        )
    };
    let text = [
        line("paused", "2026-01-01T10:00:00Z"),
        line("resumed", "2026-01-01T11:00:00Z"),
        line("paused", "2026-01-01T12:00:00Z"),
    ]
    .join("\n");
    std::fs::write(&log, text + "\n").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = binary::command(dir.path(), "unused")
        .args(["replay", log.to_str().unwrap()])
        .stdout(writer)
        .spawn()
        .unwrap();
    // Bounded wait: a replay that played on would need two hours.
    let status = binary::wait_bounded_blocking(&mut child, std::time::Duration::from_secs(60));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "still playing");
}

#[tokio::test]
async fn a_log_with_two_sessions_is_not_folded_as_one() {
    // `--log FILE` appends: two runs into one file.
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("two.ndjson");
    for target in ["https://a.example/", "https://b.example/"] {
        let mut run = command(dir.path());
        run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
            .args([
                "--api-key-env",
                "TEST_SCRAPE_KEY",
                "--once",
                "--target",
                target,
            ])
            .arg("--log")
            .arg(&log);
        let out = output(run).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let replay = |extra: &[&str]| {
        let mut replay = command(dir.path());
        replay.arg("replay").arg(&log).arg("--headless").args(extra);
        replay
    };
    let out = output(replay(&[])).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 sessions") && stderr.contains("--session N"),
        "{stderr}"
    );
    let report = dir.path().join("second.json");
    let report_arg = report.to_string_lossy().into_owned();
    let out = output(replay(&["--session", "2", "--report", &report_arg])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let folded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        folded["providers"][0]["attempts"], 1,
        "only the second run: {folded}"
    );
    let out = output(replay(&["--session", "3"])).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no session 3"), "{stderr}");

    // Played (piped: one line per attempt, as the dashboard would show them), the same rule.
    let play = |extra: &[&str]| {
        let mut play = command(dir.path());
        play.arg("replay")
            .arg(&log)
            .args(["--speed", "max"])
            .args(extra);
        play
    };
    let out = output(play(&[])).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 sessions") && stderr.contains("--session N"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing played: {}",
        text(&out.stdout)
    );
    let out = output(play(&["--session", "2"])).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let attempts = stdout
        .lines()
        .filter(|line| line.contains("omniscrape #") && line.contains(" ok "))
        .count();
    assert_eq!(attempts, 1, "only the second run's attempt: {stdout}");
}
