//! The busy session the render benchmark draws, shared with `examples/render_frames.rs` (which
//! runs frames under callgrind): both providers, a thousand attempts of mixed outcomes, rate-limit
//! and concurrency readings, an error mix.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use omniscope::app::{App, KeyBindings, Msg};
use omniscope::event::Fact;
use omniscope::outcome::{Outcome, Transport};
use omniscope::provider::{AttemptMeta, Exchange, Profile, builtin_profiles, classify};
use omniscope::stats::SessionStats;
use reqwest::header::{HeaderMap, HeaderValue};

const OMNI: [(u16, &str); 4] = [
    (
        200,
        r#"{"success":true,"data":{"status_code":200,"content":"ok"},"billing":{"charged":0.0035}}"#,
    ),
    (
        200,
        r#"{"success":true,"data":{"status_code":404,"content":""},"billing":{"charged":0.0035}}"#,
    ),
    (
        429,
        r#"{"success":false,"error":"Concurrent request limit reached","code":"CONCURRENCY_LIMIT"}"#,
    ),
    (
        502,
        r#"{"success":false,"error":"Target returned 403 after solver attempts","billing":{"charged":0}}"#,
    ),
];
const ALTER: [(u16, &str); 4] = [
    (
        200,
        r#"{"url":"u","status_code":200,"content":"c","billing":{"total_credits":1}}"#,
    ),
    (
        403,
        r#"{"error":"BLOCKED_BY_ANTIBOT","message":"blocked","billing":{"total_credits":5,"refunded":5}}"#,
    ),
    (
        429,
        r#"{"error":"RATE_LIMIT_EXCEEDED","message":"slow down"}"#,
    ),
    (
        504,
        r#"{"error":"TIMEOUT","message":"timed out","billing":{"total_credits":1,"refunded":1}}"#,
    ),
];

/// The session at 200×60 after 1,000 attempts.
pub fn busy_app() -> App {
    let profiles = builtin_profiles();
    let start = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    let mut stats = SessionStats::new(start);
    for name in ["omniscrape", "alterlab"] {
        stats.register(name, profiles.get(name).unwrap().billing.unit);
    }
    let mut app = App::new(stats, profiles.clone(), KeyBindings::default(), start);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-ratelimit-limit", "300"),
        ("x-ratelimit-remaining", "120"),
        ("x-ratelimit-reset", "1764000090"),
        ("x-concurrency-limit", "25"),
        ("x-concurrency-current", "7"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for index in 0..1000_u32 {
        let (provider, table) = if index % 2 == 0 {
            ("omniscrape", &OMNI)
        } else {
            ("alterlab", &ALTER)
        };
        let (status, body) = table[(index as usize / 2) % 4];
        let at = start + TimeDelta::milliseconds(i64::from(index) * 90);
        let outcome = answer(
            profiles.get(provider).unwrap(),
            index,
            &format!("https://example.com/page/{index}"),
            at,
            (status, body, &headers),
        );
        fold(&mut app, outcome, index);
    }
    app.update(Msg::Resize {
        width: 200,
        height: 60,
    });
    app
}

/// Providers and targets of the wide session (issue 16's frame budget: 8 × 50 at 200×60).
pub const WIDE_PROVIDERS: usize = 8;
pub const WIDE_TARGETS: usize = 50;

/// A session with [`WIDE_PROVIDERS`] providers (the two built-in profiles under eight names)
/// probing [`WIDE_TARGETS`] hosts each, ten attempts per pair over two minutes, at 200×60.
pub fn wide_app() -> App {
    let profiles = builtin_profiles();
    let start = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    let mut stats = SessionStats::new(start);
    let names: Vec<(String, &str)> = (0..WIDE_PROVIDERS)
        .map(|n| {
            let profile = if n % 2 == 0 { "omniscrape" } else { "alterlab" };
            (format!("{profile}-{n}"), profile)
        })
        .collect();
    for (name, profile) in &names {
        stats.register(name, profiles.get(profile).unwrap().billing.unit);
    }
    let mut app = App::new(stats, profiles.clone(), KeyBindings::default(), start);
    let headers = HeaderMap::new();
    let mut index = 0_u32;
    for round in 0..10_u32 {
        for target in 0..WIDE_TARGETS {
            for (name, profile) in &names {
                let table = if *profile == "omniscrape" {
                    &OMNI
                } else {
                    &ALTER
                };
                let (status, body) = table[(index as usize / 3 + target) % 4];
                let at = start
                    + TimeDelta::milliseconds(
                        i64::from(round) * 12_000 + i64::from(index % 400) * 25,
                    );
                let mut outcome = answer(
                    profiles.get(profile).unwrap(),
                    index,
                    &format!("https://site{target}.example/path/{}", round % 3),
                    at,
                    (status, body, &headers),
                );
                outcome.provider.clone_from(name);
                fold(&mut app, outcome, index);
                index += 1;
            }
        }
    }
    app.update(Msg::Resize {
        width: 200,
        height: 60,
    });
    app
}

/// Attempt `index` to `target_url`, answered `status` with `body` and `headers`, as classified.
fn answer(
    profile: &Profile,
    index: u32,
    target_url: &str,
    at: DateTime<Utc>,
    (status, body, headers): (u16, &str, &HeaderMap),
) -> Outcome {
    let meta = AttemptMeta {
        attempt_id: u64::from(index),
        attempt: 1,
        target_url: target_url.to_owned(),
        started_at: at,
        ..AttemptMeta::default()
    };
    classify(
        profile,
        &meta,
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers,
            body: body.as_bytes(),
            received_at: at,
            latency: Duration::from_millis(80 + u64::from(index % 700)),
            body_cap: 10 << 20,
        },
    )
}

/// The attempt as the dashboard receives it, the clock moved to when it ended.
fn fold(app: &mut App, outcome: Outcome, index: u32) {
    let at = outcome.started_at;
    app.update(Msg::Tick(at));
    app.update(Msg::Fact(Fact::Attempt {
        at,
        outcome: Box::new(outcome),
        in_flight: Some(index % 5),
    }));
}
