//! The event log on real files and processes: a writer killed with SIGKILL leaves only whole,
//! parseable lines; the replay source emits a log in order, pausable.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use omniscope::event::Fact;
use omniscope::eventlog::replay::{ReplayItem, Speed, spawn};
use omniscope::eventlog::{EventLog, read_path};

const CHILD_ENV: &str = "OMNISCOPE_TEST_WRITER_CHILD";

fn record(index: u32) -> Fact {
    Fact::Skipped {
        origin: omniscope::outcome::Origin::Probe,
        provider: "omniscrape".into(),
        // Long lines, so the buffer spills mid-stream too, not only on the timer.
        reason: format!(
            "paused: {}",
            "x".repeat(usize::try_from(index % 700).unwrap())
        ),
        at: Utc.timestamp_opt(1_700_000_000, 0).unwrap() + TimeDelta::milliseconds(index.into()),
        probe_id: Some(index.into()),
        target_url: Some("https://example.com/".into()),
    }
}

/// The child: writes records forever, until killed. Does nothing in a normal test run.
#[tokio::test]
async fn writer_child_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = EventLog::create(path.as_ref()).unwrap();
    for index in 0.. {
        log.send(record(index)).await.unwrap();
        if index % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[test]
fn a_writer_killed_with_sigkill_leaves_only_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.ndjson");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "eventlog_files::writer_child_process",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until several flushes have reached the file.
    let mut waited = 0;
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 300_000 && waited < 600 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush
    child.wait().unwrap();

    let text = std::fs::read(&path).unwrap();
    assert!(
        text.len() >= 300_000,
        "the child wrote {} bytes",
        text.len()
    );
    assert_eq!(text.last(), Some(&b'\n'), "the file ends with a whole line");
    let read = read_path(&path).unwrap();
    assert_eq!(read.summary.unreadable, 0, "{:?}", read.summary.examples);
    for (index, record) in read.facts.iter().enumerate() {
        assert_eq!(
            *record,
            self::record(u32::try_from(index).unwrap()),
            "in order, none lost inside"
        );
    }
}

#[tokio::test]
async fn the_replay_source_pauses_and_emits_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.ndjson");
    let mut text = String::new();
    for index in 0..5 {
        text.push_str(&omniscope::eventlog::to_line(&record(index)).unwrap());
        if index == 2 {
            text.push_str("garbage\n");
        }
    }
    std::fs::write(&path, text).unwrap();

    let (items_tx, mut items) = tokio::sync::mpsc::channel(16);
    let (control, task) = spawn(vec![path], None, Speed::Max, items_tx);
    control.set_paused(true);
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(items.try_recv().is_err(), "nothing while paused");
    control.set_paused(false);
    let mut got = Vec::new();
    while let Some(item) = items.recv().await {
        got.push(item);
    }
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.records, 5);
    assert_eq!(summary.unreadable, 1);
    assert_eq!(got.len(), 6);
    assert!(matches!(got[3], ReplayItem::Unreadable { line: 4, .. }));
    assert_eq!(got[4], ReplayItem::Fact(record(3)));
}

#[test]
fn speeds_parse_and_scale() {
    // As `--speed` parses it: any whole factor (issue 15: `--speed 3` was refused), `Nx`, max.
    let parse = |text: &str| text.parse::<Speed>();
    assert_eq!(parse("10").unwrap(), Speed::Times(10));
    assert_eq!(parse("3").unwrap(), Speed::Times(3));
    assert_eq!(parse("1x").unwrap(), Speed::Times(1));
    assert_eq!(parse("1X").unwrap(), Speed::Times(1));
    assert_eq!(parse("MAX").unwrap(), Speed::Max);
    for wrong in ["0", "-1", "1001", "2.5", "fast", "", "x"] {
        let error = parse(wrong).unwrap_err();
        assert!(error.contains("from 1 to 1000"), "{wrong}: {error}");
    }
    assert_eq!(
        Speed::Times(10).scale(Duration::from_secs(5)),
        Duration::from_millis(500)
    );
    assert_eq!(
        Speed::Times(3).scale(Duration::from_secs(3)),
        Duration::from_secs(1)
    );
    assert_eq!(Speed::Max.scale(Duration::from_secs(5)), Duration::ZERO);
    assert_eq!(Speed::Times(3).label(), "3x");
}

#[test]
fn replay_speed_keys_step_from_any_factor() {
    // `+` from a factor given on the command line goes to the next step, `-` to the one below.
    assert_eq!(Speed::Times(3).faster(), Speed::Times(5));
    assert_eq!(Speed::Times(3).slower(), Speed::Times(2));
    assert_eq!(Speed::Times(1).slower(), Speed::Times(1));
    assert_eq!(Speed::Times(1000).faster(), Speed::Max);
    assert_eq!(Speed::Max.faster(), Speed::Max);
    assert_eq!(Speed::Max.slower(), Speed::Times(1000));
    let mut speed = Speed::default();
    let mut steps = 0;
    while speed != Speed::Max {
        speed = speed.faster();
        steps += 1;
    }
    assert_eq!(steps, 10, "1x to max through every step");
}

/// A log written by omniscope before facts became one type (a `run` against the simulator:
/// attempts, in-flight counts, limits, usage, a pause and skipped probes) replays to the very
/// report that run wrote.
#[test]
fn a_log_from_the_previous_version_replays_to_the_report_its_run_wrote() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/eventlog");
    let log = fixtures.join("v1-before-one-fact-type.ndjson");
    let folded = omniscope::eventlog::reader::fold_path(&log).unwrap();
    assert_eq!(folded.summary.unreadable, 0);
    assert!(folded.ended_cleanly);
    let kinds: std::collections::HashSet<_> = read_path(&log)
        .unwrap()
        .facts
        .iter()
        .map(std::mem::discriminant)
        .collect();
    assert_eq!(
        kinds.len(),
        8,
        "every fact type but resumed is in the fixture"
    );
    let replayed = serde_json::to_value(omniscope::cmd::replay::report_of(&folded)).unwrap();
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("v1-before-one-fact-type.report.json")).unwrap(),
    )
    .unwrap();
    // Reports only ever gain fields: every field that run wrote is there, with its value.
    assert_holds(&replayed, &written, "report");
}

/// `actual` has every field of `expected`, with equal values (objects compared key by key,
/// arrays element by element); fields `expected` does not have are allowed.
fn assert_holds(actual: &serde_json::Value, expected: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                let field = format!("{at}.{key}");
                let got = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("{field} is missing"));
                assert_holds(got, value, &field);
            }
        }
        (Value::Array(actual), Value::Array(expected)) => {
            assert_eq!(actual.len(), expected.len(), "{at}: lengths differ");
            for (index, (got, value)) in actual.iter().zip(expected).enumerate() {
                assert_holds(got, value, &format!("{at}[{index}]"));
            }
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}
