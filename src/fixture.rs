//! A fixed, realistic session for tests: outcomes built by `classify` from the built-in profiles,
//! at a fixed clock. Below every layer that tests with it (outcome, stats, proxy, app, ui);
//! `app::fixture` makes the dashboard of this session.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::outcome::{Outcome, RequestOptions, Transport};
use crate::provider::{AttemptMeta, Exchange, builtin_profiles, classify};

/// The session starts here; attempts are at `start() + second`.
pub fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + second, 0).unwrap()
}

/// The fixed "now" of the snapshots: 15 minutes into the session.
pub fn now() -> DateTime<Utc> {
    at(900)
}

pub struct Attempt<'a> {
    pub provider: &'a str,
    pub id: u64,
    pub second: i64,
    pub status: Option<u16>,
    pub body: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub latency_ms: u64,
    pub retry_of: Option<u64>,
    pub options: RequestOptions,
    pub target: &'a str,
}

impl Default for Attempt<'_> {
    fn default() -> Self {
        Self {
            provider: "omniscrape",
            id: 1,
            second: 0,
            status: Some(200),
            body: OMNI_OK,
            headers: &[],
            latency_ms: 800,
            retry_of: None,
            options: RequestOptions::default(),
            target: "https://example.com/",
        }
    }
}

pub fn outcome(attempt: &Attempt<'_>) -> Outcome {
    let profiles = builtin_profiles();
    let profile = profiles.get(attempt.provider).unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in attempt.headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let meta = AttemptMeta {
        probe_id: 1,
        attempt_id: attempt.id,
        attempt: if attempt.retry_of.is_some() { 2 } else { 1 },
        retry_of: attempt.retry_of,
        target_url: attempt.target.to_owned(),
        options: attempt.options.clone(),
        started_at: at(attempt.second),
    };
    let transport = if attempt.status.is_some() {
        Transport::Ok
    } else {
        Transport::Timeout
    };
    classify(
        profile,
        &meta,
        &Exchange {
            transport: &transport,
            status: attempt.status,
            headers: &map,
            body: attempt.body.as_bytes(),
            received_at: at(attempt.second)
                + chrono::TimeDelta::milliseconds(i64::try_from(attempt.latency_ms).unwrap()),
            latency: Duration::from_millis(attempt.latency_ms),
            body_cap: 1 << 20,
        },
    )
}

pub const OMNI_OK: &str = r#"{"success":true,"data":{"status_code":200,"content":"<html>ok</html>"},"billing":{"charged":0.0035},"request_id":"req_omni_1"}"#;
pub const OMNI_TARGET_404: &str =
    r#"{"success":true,"data":{"status_code":404,"content":""},"billing":{"charged":0.0035}}"#;
pub const OMNI_CONCURRENCY: &str =
    r#"{"success":false,"error":"Concurrent request limit reached","code":"CONCURRENCY_LIMIT"}"#;
pub const OMNI_502: &str = r#"{"success":false,"error":"Could not unlock target"}"#;
pub const OMNI_502_CHARGED: &str =
    r#"{"success":false,"error":"Could not unlock target","billing":{"charged":0.0035}}"#;
pub const ALTER_OK: &str = r#"{"url":"https://example.com/","status_code":200,"content":"<html>ok</html>","billing":{"total_credits":1}}"#;
pub const ALTER_ANTIBOT: &str = r#"{"error":"BLOCKED_BY_ANTIBOT","message":"The target site blocked the request","billing":{"total_credits":3,"refunded":true}}"#;
pub const ALTER_CHALLENGE: &str = r#"{"error":"CHALLENGE_DETECTED","message":"A bot challenge was encountered","billing":{"total_credits":1,"refunded":true}}"#;
pub const ALTER_RATE: &str =
    r#"{"error":"RATE_LIMIT_EXCEEDED","message":"Too many requests, slow down"}"#;

fn alter_headers(remaining: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-ratelimit-limit", "60"),
        ("x-ratelimit-remaining", remaining),
        // 45 s after now(): a live countdown in the snapshots.
        ("x-ratelimit-reset", "1767226545"),
        ("x-concurrency-limit", "3"),
        ("x-concurrency-current", "2"),
        ("x-api-key", "sk_test_must_never_show"),
        ("content-type", "application/json"),
    ]
}

/// The outcomes of the fixed session, oldest first.
pub fn session_outcomes() -> Vec<Outcome> {
    let ok_headers = alter_headers("12");
    let empty_headers = alter_headers("0");
    let mut list = Vec::new();
    let mut id = 0;
    let mut push = |attempt: Attempt<'_>| {
        id += 1;
        list.push(outcome(&Attempt { id, ..attempt }));
    };
    for second in [
        10, 70, 130, 190, 250, 310, 370, 430, 490, 550, 610, 670, 730, 790, 850,
    ] {
        push(Attempt {
            second,
            latency_ms: 600 + u64::try_from(second % 7).unwrap() * 150,
            ..Attempt::default()
        });
        push(Attempt {
            provider: "alterlab",
            second: second + 5,
            body: ALTER_OK,
            headers: &ok_headers,
            latency_ms: 1200 + u64::try_from(second % 5).unwrap() * 300,
            ..Attempt::default()
        });
    }
    push(Attempt {
        second: 860,
        body: OMNI_TARGET_404,
        target: "https://example.com/missing",
        ..Attempt::default()
    });
    push(Attempt {
        second: 865,
        status: Some(429),
        body: OMNI_CONCURRENCY,
        headers: &[("retry-after", "30")],
        latency_ms: 40,
        ..Attempt::default()
    });
    push(Attempt {
        second: 870,
        status: Some(502),
        body: OMNI_502,
        latency_ms: 4200,
        ..Attempt::default()
    });
    push(Attempt {
        second: 876,
        status: Some(502),
        body: OMNI_502_CHARGED,
        latency_ms: 3900,
        retry_of: Some(33),
        ..Attempt::default()
    });
    push(Attempt {
        provider: "alterlab",
        second: 880,
        status: Some(403),
        body: ALTER_ANTIBOT,
        headers: &ok_headers,
        latency_ms: 2500,
        target: "https://shop.example.com/item/42",
        ..Attempt::default()
    });
    push(Attempt {
        provider: "alterlab",
        second: 885,
        status: Some(403),
        body: ALTER_CHALLENGE,
        headers: &ok_headers,
        latency_ms: 2100,
        ..Attempt::default()
    });
    push(Attempt {
        provider: "alterlab",
        second: 890,
        status: Some(429),
        body: ALTER_RATE,
        headers: &[
            ("x-ratelimit-limit", "60"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1767226545"),
            ("retry-after", "20"),
        ],
        latency_ms: 30,
        ..Attempt::default()
    });
    let _ = &empty_headers;
    push(Attempt {
        second: 895,
        status: None,
        body: "",
        latency_ms: 30_000,
        target: "https://slow.example.com/",
        ..Attempt::default()
    });
    list
}
