use std::io::Cursor;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::reader::{fold, read_log};
use super::*;
use crate::event::{ProviderEntry, Rate};
use crate::outcome::{BillingUnit, Origin, Transport};
use crate::provider::{AttemptMeta, Exchange, UsageReading, builtin_profiles, classify};
use crate::stats::SessionStats;

fn at(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + TimeDelta::milliseconds(millis)
}

fn outcome(
    provider: &str,
    status: u16,
    body: &str,
    headers: &[(&str, &str)],
    millis: i64,
    latency: Duration,
) -> Outcome {
    let profiles = builtin_profiles();
    let profile = profiles.get(provider).unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let meta = AttemptMeta {
        attempt: 1,
        attempt_id: u64::try_from(millis).unwrap(),
        started_at: at(millis),
        target_url: "https://example.com/".into(),
        ..AttemptMeta::default()
    };
    classify(
        profile,
        &meta,
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers: &map,
            body: body.as_bytes(),
            received_at: at(millis) + TimeDelta::from_std(latency).unwrap(),
            latency,
            body_cap: 1 << 20,
        },
    )
}

const OMNI_OK: &str =
    r#"{"success":true,"data":{"status_code":200,"content":"x"},"billing":{"charged":0.0035}}"#;
const OMNI_TARGET_404: &str =
    r#"{"success":true,"data":{"status_code":404,"content":""},"billing":{"charged":0.0035}}"#;
const OMNI_CONCURRENCY: &str =
    r#"{"success":false,"error":"Concurrent request limit reached","code":"CONCURRENCY_LIMIT"}"#;
const OMNI_CHARGED_FAILURE: &str =
    r#"{"success":false,"error":"Target returned 403","billing":{"charged":0.0035}}"#;
const ALTER_OK: &str =
    r#"{"url":"u","status_code":200,"content":"c","billing":{"total_credits":1}}"#;
const ALTER_NO_CREDITS: &str =
    r#"{"detail":"Insufficient credits","error_code":"INSUFFICIENT_CREDITS"}"#;

/// A session with every record type, in the order a live run would see them.
pub(crate) fn sample_session() -> Vec<Fact> {
    let mut records = vec![Fact::SessionStart {
        started_at: at(0),
        providers: vec![
            ProviderEntry {
                name: "omniscrape".into(),
                unit: BillingUnit::Usd,
                concurrency_limit: Some(5),
            },
            ProviderEntry {
                name: "alterlab".into(),
                unit: BillingUnit::Credits,
                concurrency_limit: Some(2),
            },
        ],
        settings: serde_json::json!({"every": "10s", "targets": ["https://example.com/"]})
            .as_object()
            .unwrap()
            .clone(),
    }];
    records.push(Fact::Limits {
        provider: "alterlab".into(),
        concurrency: 3,
        rate: Some(Rate::PerSecond(0.5)),
        at: at(1),
    });
    records.push(Fact::Usage {
        origin: Origin::Probe,
        provider: "alterlab".into(),
        reading: UsageReading {
            balance: Some(1234.5),
            unit: BillingUnit::Credits,
            plan: Some("starter".into()),
            used: Some(10.25),
            limit: Some(5000.0),
        },
        at: at(2),
    });
    let omni = [
        (200, OMNI_OK, vec![]),
        (200, OMNI_TARGET_404, vec![]),
        (429, OMNI_CONCURRENCY, vec![("retry-after", "3")]),
        (502, OMNI_CHARGED_FAILURE, vec![]),
    ];
    for (index, (status, body, headers)) in omni.iter().enumerate() {
        let millis = 10 + i64::try_from(index).unwrap() * 137;
        records.push(Fact::InFlight {
            origin: Origin::Probe,
            provider: "omniscrape".into(),
            n: u32::try_from(index).unwrap() + 1,
            at: at(millis),
        });
        // Latencies with odd nanoseconds, to catch any rounding on the way through JSON.
        let latency = Duration::from_nanos(1_234_567 + 987_654_321 * u64::try_from(index).unwrap());
        let mut attempt = outcome("omniscrape", *status, body, headers, millis, latency);
        if index == 3 {
            attempt.retry_of = Some(10);
            attempt.attempt = 2;
        }
        records.push(Fact::Attempt {
            at: at(millis + 5),
            outcome: Box::new(attempt),
            in_flight: Some(u32::try_from(index).unwrap()),
        });
    }
    let headers = [("x-ratelimit-limit", "30"), ("x-ratelimit-remaining", "7")];
    records.push(Fact::Attempt {
        at: at(900),
        outcome: Box::new(outcome(
            "alterlab",
            200,
            ALTER_OK,
            &headers,
            800,
            Duration::from_micros(1500),
        )),
        in_flight: Some(0),
    });
    records.push(Fact::Attempt {
        at: at(1000),
        outcome: Box::new(outcome(
            "alterlab",
            402,
            ALTER_NO_CREDITS,
            &[],
            950,
            Duration::from_nanos(40_000_001),
        )),
        in_flight: None,
    });
    records.push(Fact::Paused {
        origin: Origin::Probe,
        provider: "alterlab".into(),
        reason: "INSUFFICIENT_CREDITS: Insufficient credits".into(),
        at: at(1001),
    });
    for probe_id in 0..3 {
        records.push(Fact::Skipped {
            origin: Origin::Probe,
            provider: "alterlab".into(),
            reason: "paused: INSUFFICIENT_CREDITS".into(),
            at: at(1100 + probe_id),
            probe_id: Some(u64::try_from(probe_id).unwrap()),
            target_url: Some("https://example.com/".into()),
        });
    }
    records.extend(paused_and_resumed_by_the_user());
    records.push(Fact::SessionEnd { at: at(2000) });
    records
}

/// OmniScrape paused with `p`, then resumed, in [`sample_session`].
fn paused_and_resumed_by_the_user() -> [Fact; 2] {
    [
        Fact::Paused {
            origin: Origin::Probe,
            provider: "omniscrape".into(),
            reason: "paused by the user".into(),
            at: at(1200),
        },
        Fact::Resumed {
            origin: Origin::Probe,
            provider: "omniscrape".into(),
            reason: Some("resumed by the user".into()),
            at: at(1300),
        },
    ]
}

fn to_ndjson(records: &[Fact]) -> String {
    records.iter().map(|r| to_line(r).unwrap()).collect()
}

#[test]
fn every_record_type_round_trips_as_one_line_with_schema_and_type() {
    for record in sample_session() {
        let line = to_line(&record).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with('\n'));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["schema"], SCHEMA);
        assert!(json["type"].is_string(), "{line}");
        let ParsedLine::Fact(back) = reader::parse_line(line.as_bytes()) else {
            panic!("unreadable: {line}");
        };
        assert_eq!(back, record);
    }
}

/// What the writer encodes, one line after another into one buffer.
fn encoded(records: &[Fact]) -> Vec<u8> {
    let mut encoder = compact::Encoder::default();
    let mut bytes = b"\n".to_vec();
    for record in records {
        let before = bytes.len();
        encoder.append(record, &mut bytes).unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes[before..].iter().filter(|b| **b == b'\n').count(), 1);
    }
    bytes
}

/// A load run's attempts: the same success again and again, a failure now and then.
fn load_run(attempts: u64) -> Vec<Fact> {
    let success = outcome("omniscrape", 200, OMNI_OK, &[], 0, Duration::from_millis(5));
    let failure = outcome(
        "omniscrape",
        200,
        OMNI_TARGET_404,
        &[("x-request-id", "req_f")],
        0,
        Duration::from_millis(5),
    );
    let mut records = vec![sample_session().remove(0)];
    for id in 1..=attempts {
        let millis = i64::try_from(id).unwrap();
        let mut outcome = logged_outcome(if id % 10 == 0 { &failure } else { &success });
        outcome.attempt_id = id;
        outcome.started_at = at(millis);
        outcome.latency = Duration::from_nanos(5_000_000 + id * 7_919);
        outcome.request_id = Some(format!("req_{id:016x}"));
        outcome.body_bytes = 300 + id % 50;
        outcome.retry_of = (id % 10 == 1 && id > 1).then(|| id - 1);
        outcome.attempt = if outcome.retry_of.is_some() { 2 } else { 1 };
        outcome.rate_limit.remaining = (id % 3 == 0).then_some(id);
        outcome.provider_work.elapsed_s = (id % 4 == 0).then(|| 0.25 + id as f64 / 1000.0);
        // Now and then the user's own traffic beside the probes (`watch --proxy`).
        let origin = if id % 7 == 0 {
            Origin::Proxy
        } else {
            Origin::Probe
        };
        outcome.origin = origin;
        records.push(Fact::InFlight {
            provider: "omniscrape".into(),
            n: u32::try_from(id % 64).unwrap(),
            at: at(millis),
            origin,
        });
        records.push(Fact::Attempt {
            at: at(millis + 5),
            outcome: Box::new(outcome),
            in_flight: Some(u32::try_from(id % 63).unwrap()),
        });
    }
    records.push(Fact::SessionEnd {
        at: at(i64::try_from(attempts).unwrap() + 10),
    });
    records
}

/// Compact lines give back exactly the facts they were written from, and a repeat of an attempt
/// costs a short line.
#[test]
fn the_compact_lines_read_back_as_the_facts_they_were_written_from() {
    for records in [sample_session(), load_run(200)] {
        let read = read_log(Cursor::new(encoded(&records))).unwrap();
        assert_eq!(read.summary.unreadable, 0, "{:?}", read.summary.examples);
        assert_eq!(read.facts, records);
    }
    let records = load_run(1000);
    let bytes = encoded(&records);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let compact = text
        .lines()
        .filter(|line| line.as_bytes().starts_with(compact::ATTEMPT_PREFIX))
        .count();
    assert!(compact >= 990, "{compact} of 1000 attempts compact");
    let per_attempt = bytes.len() / 1000;
    assert!(per_attempt < 250, "{per_attempt} bytes per attempt");
    // A compact line refers to lines before it: alone, it is unreadable, not a wrong fact.
    let line = text.lines().rev().nth(1).unwrap();
    assert!(line.starts_with("{\"a\":"), "{line}");
    assert!(matches!(
        reader::parse_line(line.as_bytes()),
        ParsedLine::Unreadable(_)
    ));
}

#[test]
fn a_v1_line_still_reads() {
    let v1 = to_line(&sample_session().remove(0))
        .unwrap()
        .replace(SCHEMA, "omniscope.event.v1");
    assert!(matches!(
        reader::parse_line(v1.as_bytes()),
        ParsedLine::Fact(Fact::SessionStart { .. })
    ));
}

#[test]
fn record_types_are_named_as_documented() {
    let types: Vec<String> = sample_session()
        .iter()
        .map(|record| {
            serde_json::from_str::<serde_json::Value>(&to_line(record).unwrap()).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in [
        "session_start",
        "limits",
        "usage",
        "in_flight",
        "attempt",
        "paused",
        "skipped",
        "resumed",
        "session_end",
    ] {
        assert!(types.iter().any(|t| t == expected), "no {expected} record");
    }
}

use super::reader::ParsedLine;

/// JSON keeps every fact exactly: the facts read back from their lines fold to the statistics the
/// facts themselves fold to. (That the live dashboard folds what its log then replays is
/// `tui::tests::the_live_dashboard_and_a_replay_of_its_log_fold_the_same_facts_alike`.)
#[test]
fn a_log_read_back_folds_to_the_stats_of_its_facts() {
    let records = sample_session();
    let mut live = SessionStats::new(at(0));
    for record in records.clone() {
        live.apply(record);
    }
    let folded = fold(Cursor::new(to_ndjson(&records))).unwrap();
    assert!(folded.ended_cleanly);
    assert_eq!(folded.ended_at, Some(at(2000)));
    assert_eq!(folded.summary.unreadable, 0);
    let replayed = folded.stats;
    assert_eq!(replayed.started_at, live.started_at);
    assert_eq!(
        replayed.recent, live.recent,
        "outcomes survive JSON exactly"
    );
    assert_eq!(replayed.providers.len(), 2);
    for (replayed, live) in replayed.providers.iter().zip(&live.providers) {
        // Debug covers every field, histogram and per-second ring included.
        assert_eq!(format!("{replayed:?}"), format!("{live:?}"));
    }
    let omni = replayed.provider("omniscrape").unwrap();
    assert_eq!((omni.attempts, omni.succeeded, omni.retries), (4, 1, 1));
    assert_eq!(omni.concurrency.max_in_flight, 4);
    assert!(omni.paused.is_none(), "resumed");
    assert!((omni.billing.charged - 0.0105).abs() < 1e-12);
    let alter = replayed.provider("alterlab").unwrap();
    assert_eq!(alter.skipped, 3);
    assert_eq!(alter.concurrency.limit, Some(2), "config's limit is kept");
    assert_eq!(alter.billing.balance, Some(1234.5));
    assert!(
        alter
            .paused
            .as_deref()
            .unwrap()
            .starts_with("INSUFFICIENT_CREDITS")
    );
}

#[test]
fn unreadable_lines_are_counted_not_fatal() {
    let records = sample_session();
    let mut log = String::new();
    log.push_str(&to_line(&records[0]).unwrap());
    log.push_str("not json at all\n");
    log.push('\n');
    log.push_str(
        r#"{"schema":"omniscope.event.v9","type":"session_end","at":"2023-11-14T22:13:20Z"}"#,
    );
    log.push('\n');
    log.push_str(
        r#"{"schema":"omniscope.event.v1","type":"from_the_future","at":"2023-11-14T22:13:20Z"}"#,
    );
    log.push('\n');
    for record in &records[1..] {
        log.push_str(&to_line(record).unwrap());
    }
    let partial = to_line(&records[4]).unwrap();
    log.push_str(&partial[..partial.len() / 2]);

    let read = read_log(Cursor::new(log.clone())).unwrap();
    assert_eq!(read.facts.len(), records.len());
    assert_eq!(read.summary.unreadable, 4);
    assert!(read.summary.partial_tail);
    assert_eq!(
        read.summary
            .examples
            .iter()
            .map(|u| u.line)
            .collect::<Vec<_>>(),
        vec![2, 4, 5, u64::try_from(records.len()).unwrap() + 5]
    );
    let folded = fold(Cursor::new(log)).unwrap();
    assert_eq!(folded.stats.unreadable_inputs, 4);
    assert_eq!(folded.stats.provider("omniscrape").unwrap().attempts, 4);
}

#[test]
fn a_log_cut_short_ends_at_its_last_record() {
    let records = sample_session();
    let cut = &records[1..records.len() - 1];
    let folded = fold(Cursor::new(to_ndjson(cut))).unwrap();
    assert!(!folded.ended_cleanly);
    assert_eq!(folded.ended_at, Some(at(1300)));
    assert_eq!(folded.stats.started_at, at(1), "starts at its first record");
}

#[test]
fn the_default_file_is_a_session_file_under_the_data_dir() {
    let path = default_path(at(1500)).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "session-20231114T221321.500Z.ndjson.gz"
    );
    assert_eq!(path.parent().unwrap().file_name().unwrap(), "logs");
    assert_eq!(
        choose_path(Some("x.ndjson".into()), false, at(0)),
        Some("x.ndjson".into())
    );
    assert_eq!(choose_path(Some("x.ndjson".into()), true, at(0)), None);
}

#[tokio::test]
async fn the_writer_writes_whole_lines_and_flushes_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/logs/session.ndjson");
    let log = EventLog::create(&path).unwrap();
    let records = sample_session();
    let sender = log.sender();
    for record in &records[..3] {
        sender.send(record.clone()).await.unwrap();
    }
    drop(sender);
    for record in &records[3..] {
        log.send(record.clone()).await.unwrap();
    }
    assert_eq!(
        log.close().await.unwrap(),
        u64::try_from(records.len()).unwrap()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let read = read_path(&path).unwrap();
    assert_eq!(read.facts, records);
    assert_eq!(read.summary.unreadable, 0);
}

#[tokio::test(start_paused = true)]
async fn the_writer_flushes_within_a_second_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.ndjson");
    let log = EventLog::create(&path).unwrap();
    log.send(sample_session().remove(0)).await.unwrap();
    // The paused clock jumps to the flush deadline once every task is idle.
    tokio::time::sleep(FLUSH_EVERY + Duration::from_millis(1)).await;
    // The write itself runs on the blocking pool, in real time: give it up to a few seconds.
    let mut read = read_path(&path).unwrap();
    for _ in 0..500 {
        if !read.facts.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(10));
        read = read_path(&path).unwrap();
    }
    assert_eq!(read.facts.len(), 1, "flushed without close");
    drop(log);
}

#[test]
fn lines_the_writer_holds_when_the_runtime_shuts_down_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.ndjson");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = runtime.block_on(async {
        let log = EventLog::create(&path).unwrap();
        log.send(sample_session().remove(0)).await.unwrap();
        // The writer takes the record and waits for more, or for its flush deadline.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        log
    });
    // Shut down without `close` and well before the flush deadline: the writer's task is dropped.
    drop(runtime);
    drop(log);
    assert_eq!(read_path(&path).unwrap().facts.len(), 1);
}

use super::writer::FLUSH_EVERY;

proptest! {
    #[test]
    fn latencies_survive_json_to_the_microsecond(nanos in 0_u64..3_600_000_000_000) {
        let mut attempt = outcome("omniscrape", 200, OMNI_OK, &[], 0, Duration::from_millis(1));
        attempt.latency = Duration::from_nanos(nanos);
        let line = to_line(&Fact::Attempt { at: at(0), outcome: Box::new(attempt.clone()), in_flight: None })
            .unwrap();
        let ParsedLine::Fact(Fact::Attempt { outcome: back, .. }) = reader::parse_line(line.as_bytes()) else {
            panic!("unreadable");
        };
        prop_assert_eq!(back.latency.as_micros(), attempt.latency.as_micros());
    }
}

#[test]
fn a_logged_success_drops_headers_and_excerpt_and_a_failure_keeps_them() {
    let headers = [("x-request-id", "req_1"), ("x-ratelimit-remaining", "9")];
    let success = outcome(
        "omniscrape",
        200,
        OMNI_OK,
        &headers,
        1,
        Duration::from_millis(5),
    );
    let failure = outcome(
        "omniscrape",
        200,
        OMNI_TARGET_404,
        &headers,
        2,
        Duration::from_millis(5),
    );
    assert!(success.succeeded() && !failure.succeeded());
    assert!(!success.headers.is_empty() && !success.body_excerpt.is_empty());

    let logged = logged_outcome(&success);
    assert!(logged.headers.is_empty() && logged.body_excerpt.is_empty());
    let bulky = Outcome {
        headers: Vec::new(),
        body_excerpt: String::new(),
        ..success.clone()
    };
    assert_eq!(logged, bulky, "only the headers and the excerpt differ");
    assert_eq!(logged_outcome(&failure), failure);

    // The log's fold of a lean success counts what the live fold of the full one counts.
    let record = |outcome: Outcome| Fact::Attempt {
        at: at(10),
        outcome: Box::new(outcome),
        in_flight: Some(0),
    };
    let mut live = SessionStats::new(at(0));
    live.register("omniscrape", BillingUnit::Usd);
    let mut replayed = live.clone();
    live.apply(record(success.clone()));
    replayed.apply(record(logged));
    assert_eq!(
        crate::report::build(&live, at(20)),
        crate::report::build(&replayed, at(20))
    );
}

#[test]
fn a_logged_failure_never_holds_a_secret_looking_header() {
    // Masked where the headers are kept (provider::classify), so the log has no other copy.
    let headers = [
        ("set-cookie", "session=c00kie-value"),
        ("x-api-key", "sk_live_echoed_back"),
        ("x-ratelimit-remaining", "9"),
    ];
    let failure = outcome(
        "omniscrape",
        200,
        OMNI_TARGET_404,
        &headers,
        1,
        Duration::from_millis(5),
    );
    assert!(
        !failure.succeeded(),
        "a failure keeps its headers in the log"
    );
    let line = to_ndjson(&[Fact::Attempt {
        at: at(10),
        outcome: Box::new(failure),
        in_flight: Some(0),
    }]);
    assert!(!line.contains("c00kie-value"), "{line}");
    assert!(!line.contains("sk_live_echoed_back"), "{line}");
    assert!(line.contains(crate::outcome::REDACTED), "{line}");
    assert!(line.contains("x-ratelimit-remaining"), "{line}");
}

/// `--log FILE` appends: a second session in the file is told apart, never summed into the first.
#[test]
fn each_session_of_an_appended_log_folds_alone() {
    let first = sample_session();
    let second_attempt = outcome(
        "omniscrape",
        200,
        r#"{"success":true,"status_code":200,"content":"<html></html>","request_id":"r","cost":0.001}"#,
        &[],
        5001,
        Duration::from_millis(5),
    );
    let second = vec![
        Fact::SessionStart {
            started_at: at(5000),
            providers: Vec::new(),
            settings: serde_json::Map::new(),
        },
        Fact::Attempt {
            at: at(5001),
            outcome: Box::new(second_attempt),
            in_flight: Some(0),
        },
        Fact::SessionEnd { at: at(6000) },
    ];
    // An unreadable line belongs to the session it sits in.
    let first_text = to_ndjson(&first) + "garbage\n";
    let both = first_text.clone() + &to_ndjson(&second);

    let whole = fold(Cursor::new(both.clone())).unwrap();
    assert_eq!(whole.sessions, [at(0), at(5000)]);

    let only_first = super::reader::fold_records(Cursor::new(both.clone()), Some(1)).unwrap();
    let alone = fold(Cursor::new(first_text)).unwrap();
    assert_eq!(only_first.summary.unreadable, 1);
    assert_eq!(
        format!("{:?}", only_first.stats),
        format!("{:?}", alone.stats),
        "the first session folds as if it were alone in the file"
    );
    assert_eq!(only_first.ended_at, Some(at(2000)));

    let only_second = super::reader::fold_records(Cursor::new(both), Some(2)).unwrap();
    assert_eq!(only_second.stats.started_at, at(5000));
    assert_eq!(only_second.ended_at, Some(at(6000)));
    assert_eq!(
        only_second.stats.provider("omniscrape").unwrap().attempts,
        1
    );
    assert!(only_second.stats.provider("alterlab").is_none());
    assert_eq!(only_second.summary.unreadable, 0, "session 1's bad line");
    assert_eq!(only_second.stats.unreadable_inputs, 0);
    assert_eq!(
        only_second.sessions.len(),
        2,
        "every session is still listed"
    );
}

/// A log cut at its head (no `session_start`) followed by a new session is two sessions, the
/// first starting at its first fact.
#[test]
fn facts_before_the_first_session_start_are_a_session_of_their_own() {
    let records = sample_session();
    let mut sessions = super::reader::Sessions::new(Some(1));
    let kept: Vec<bool> = records[1..]
        .iter()
        .chain(&records[..1])
        .map(|fact| sessions.keep(fact))
        .collect();
    assert_eq!(sessions.started, [records[1].at(), at(0)]);
    assert!(kept[..kept.len() - 1].iter().all(|kept| *kept));
    assert_eq!(
        kept.last(),
        Some(&false),
        "the new session is not the one kept"
    );
}

/// A log named `*.gz` is written as gzip members that read back as the facts, cost under 150 bytes
/// per attempt on a load run, and a member cut by a crash ends the read at the member before it.
#[tokio::test]
async fn a_compressed_log_reads_back_small_and_a_cut_member_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.ndjson.gz");
    let records = load_run(5000);
    let log = EventLog::create(&path).unwrap();
    for (index, record) in records.iter().enumerate() {
        log.send(record.clone()).await.unwrap();
        if index == 4000 {
            // Everything so far becomes whole members: the rest is a member of its own.
            tokio::time::sleep(FLUSH_EVERY + Duration::from_millis(50)).await;
        }
    }
    log.close().await.unwrap();
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(&raw[..2], &[0x1f, 0x8b], "gzip");
    assert!(
        raw.len() < 5000 * 150,
        "{} bytes per attempt",
        raw.len() / 5000
    );
    let read = read_path(&path).unwrap();
    assert_eq!(read.summary.unreadable, 0, "{:?}", read.summary.examples);
    assert_eq!(read.facts, records);

    // Cut inside the last member: every whole member still reads, and the cut is said.
    std::fs::write(&path, &raw[..raw.len() - 100]).unwrap();
    let read = read_path(&path).unwrap();
    assert!(read.summary.partial_tail);
    // The half line the cut member gave, if it ended mid-line, and the cut itself.
    let examples = &read.summary.examples;
    assert!((1..=2).contains(&read.summary.unreadable), "{examples:?}");
    assert_eq!(examples.last().unwrap().error, reader::CUT_SHORT);
    assert!(read.facts.len() > 4000 && read.facts.len() < records.len());
    assert_eq!(
        read.facts[..],
        records[..read.facts.len()],
        "a prefix, in order"
    );
}

/// The sample session with the user's own traffic beside the probes, as `watch --proxy` logs it:
/// a proxied request in the air, a proxied attempt, an audit finding, a request the guard answered.
fn session_with_proxied_traffic() -> Vec<Fact> {
    let mut records = sample_session();
    let end = records.pop().unwrap();
    records.push(Fact::InFlight {
        origin: Origin::Proxy,
        provider: "omniscrape".into(),
        n: 7,
        at: at(1400),
    });
    let mut proxied = outcome(
        "omniscrape",
        200,
        OMNI_OK,
        &[],
        1400,
        Duration::from_millis(3),
    );
    proxied.origin = Origin::Proxy;
    proxied.attempt_id = crate::proxy::FIRST_ATTEMPT_ID;
    records.push(Fact::Attempt {
        at: at(1403),
        outcome: Box::new(proxied),
        in_flight: Some(6),
    });
    records.push(Fact::Finding {
        provider: "alterlab".into(),
        kind: crate::outcome::FindingKind::RetriedNonRetryable,
        detail: "402 INSUFFICIENT_CREDITS".into(),
        at: at(1500),
    });
    records.push(Fact::Skipped {
        origin: Origin::Proxy,
        provider: "alterlab".into(),
        reason: "guard: paused after 402".into(),
        at: at(1600),
        probe_id: None,
        target_url: Some("https://example.com/".into()),
    });
    records.push(end);
    records
}

#[test]
fn proxied_traffic_is_logged_with_its_origin_and_folds_apart_from_the_probes() {
    let records = session_with_proxied_traffic();
    let log = to_ndjson(&records);
    for line in log.lines() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        let origin = match json["type"].as_str().unwrap() {
            "attempt" => &json["outcome"]["origin"],
            "in_flight" | "skipped" | "paused" | "resumed" | "usage" => &json["origin"],
            _ => continue,
        };
        assert!(origin == "probe" || origin == "proxy", "{line}");
    }
    assert!(log.contains(r#""type":"finding""#), "{log}");
    let folded = fold(Cursor::new(log)).unwrap();
    let mut live = SessionStats::new(at(0));
    for record in records {
        live.apply(record);
    }
    for (replayed, live) in folded.stats.providers.iter().zip(&live.providers) {
        assert_eq!(format!("{replayed:?}"), format!("{live:?}"));
    }
    let omni = folded.stats.provider("omniscrape").unwrap();
    assert_eq!(omni.attempts, 5);
    assert_eq!(
        (omni.by_origin.probe.attempts, omni.by_origin.proxy.attempts),
        (4, 1)
    );
    assert_eq!(omni.by_origin.proxy.succeeded, 1);
    assert!((omni.by_origin.probe.charged - 0.0105).abs() < 1e-12);
    assert!((omni.by_origin.proxy.charged - 0.0035).abs() < 1e-12);
    // The probes' last count (3) and the proxy's (7, then 6) are two counts of one provider.
    assert_eq!(
        (
            omni.by_origin.probe.in_flight,
            omni.by_origin.proxy.in_flight
        ),
        (3, 6)
    );
    assert_eq!(omni.concurrency.in_flight, 9);
    assert_eq!(omni.concurrency.max_in_flight, 10);
    assert_eq!(omni.audit, Some(crate::outcome::FindingCounts::default()));
    let alter = folded.stats.provider("alterlab").unwrap();
    assert_eq!(
        (alter.by_origin.probe.skipped, alter.by_origin.proxy.skipped),
        (3, 1)
    );
    let audit = alter.audit.unwrap();
    assert_eq!((audit.retried_non_retryable, audit.guarded), (1, 1));
    assert_eq!(audit.total(), 1);
}

#[test]
fn a_log_written_before_origins_replays_as_probes() {
    let records = sample_session();
    let old_log: String = to_ndjson(&records)
        .replace(r#","origin":"probe""#, "")
        .replace(r#""origin":"probe","#, "");
    assert!(!old_log.contains("origin"), "{old_log}");
    let read = read_log(Cursor::new(old_log)).unwrap();
    assert_eq!(read.summary.unreadable, 0);
    assert_eq!(read.facts, records, "every fact reads back, as a probe's");
    let folded = fold(Cursor::new(to_ndjson(&records))).unwrap();
    let omni = folded.stats.provider("omniscrape").unwrap();
    assert_eq!(omni.by_origin.probe.attempts, omni.attempts);
    assert_eq!(omni.by_origin.proxy, crate::stats::OriginStats::default());
    assert_eq!(omni.audit, None, "a probe session has no audit");
}

/// Each part of a rotated set starts with a copy of its session's `session_start`: read in order,
/// the parts are one session, folded as if the copies were not there.
#[test]
fn a_repeated_session_start_continues_its_session() {
    let records = sample_session();
    let mut parts = records.clone();
    parts.insert(5, records[0].clone());
    let folded = fold(Cursor::new(to_ndjson(&parts))).unwrap();
    assert_eq!(folded.sessions, [at(0)]);
    let alone = fold(Cursor::new(to_ndjson(&records))).unwrap();
    assert_eq!(format!("{:?}", folded.stats), format!("{:?}", alone.stats));
}

/// A log that rotates writes parts that sort in order, each starting with the session's start;
/// the folder of parts folds as the one session the facts make, and retention prunes the folder.
#[tokio::test]
async fn a_rotated_log_is_a_set_of_parts_that_reads_as_one_session() {
    use super::rotation::{self, Retention, Rotation};
    use super::writer::Parts;
    let dir = tempfile::tempdir().unwrap();
    // An old log of another session, for retention to prune.
    let old = dir.path().join("session-20000101T000000.000Z.ndjson.gz");
    std::fs::write(&old, b"").unwrap();
    let old_file = std::fs::File::options().write(true).open(&old).unwrap();
    old_file
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    let path = dir.path().join("session-20231114T221320.000Z.ndjson.gz");
    let parts = Parts {
        // Every write closes its part.
        rotation: Rotation {
            max_bytes: 1,
            max_age: Duration::from_secs(3600),
        },
        retention: Some(Retention::default()),
    };
    let records = load_run(300);
    let log = EventLog::create_with(&path, Some(parts)).unwrap();
    for (index, record) in records.iter().enumerate() {
        log.send(record.clone()).await.unwrap();
        if index % 100 == 50 {
            tokio::time::sleep(FLUSH_EVERY + Duration::from_millis(20)).await;
        }
    }
    assert_eq!(log.close().await.unwrap(), records.len() as u64);
    assert!(!old.exists(), "the expired log was pruned");

    let files = rotation::expand(&[dir.path().to_owned()]).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files[0], path);
    for (number, file) in files.iter().enumerate() {
        assert_eq!(
            *file,
            rotation::part_path(&path, u32::try_from(number + 1).unwrap())
        );
        let part = read_path(file).unwrap();
        assert_eq!(part.summary.unreadable, 0, "a part reads on its own");
        assert!(matches!(part.facts[0], Fact::SessionStart { .. }));
    }
    let folded = reader::fold_paths(&files, None).unwrap();
    assert_eq!(folded.sessions.len(), 1);
    assert!(folded.ended_cleanly);
    let alone = fold(Cursor::new(to_ndjson(&records))).unwrap();
    assert_eq!(format!("{:?}", folded.stats), format!("{:?}", alone.stats));
}
