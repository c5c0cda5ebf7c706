//! Benchmarks of the pure core: classify (responses/s) and ingest (outcomes/s).
//!
//! `cargo bench --bench core`. Targets (issue 7): classify ≥ 500,000/s for 1 KB bodies,
//! ingest ≥ 5,000,000/s.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use omniscope::outcome::Transport;
use omniscope::provider::{AttemptMeta, Exchange, builtin_profiles, classify};
use omniscope::stats::SessionStats;
use reqwest::header::{HeaderMap, HeaderValue};

// The allocator the binary ships with (src/main.rs), so allocation costs here are the ones a run
// pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A body of about `size` bytes in the provider's success shape.
fn body(provider: &str, size: usize) -> Vec<u8> {
    let filler = "<p>scraped content</p>".repeat(size / 22 + 1);
    let filler = &filler[..size.saturating_sub(160).max(1)];
    let json = if provider == "omniscrape" {
        serde_json::json!({
            "success": true,
            "data": {"status_code": 200, "content": filler, "url": "https://example.com/"},
            "billing": {"charged": 0.0035},
            "metadata": {"elapsed_time": 1.2}
        })
    } else {
        serde_json::json!({
            "url": "https://example.com/", "status_code": 200, "content": filler,
            "title": "Example", "billing": {"total_credits": 1, "tier_used": "1"}
        })
    };
    serde_json::to_vec(&json).unwrap()
}

fn headers() -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("x-ratelimit-limit", "300"),
        ("x-ratelimit-remaining", "250"),
        ("x-ratelimit-reset", "1704067200"),
        ("x-concurrency-limit", "25"),
        ("x-concurrency-current", "3"),
        ("content-type", "application/json"),
    ] {
        map.insert(name, HeaderValue::from_static(value));
    }
    map
}

fn bench_classify(c: &mut Criterion) {
    let profiles = builtin_profiles();
    let headers = headers();
    let now = Utc.timestamp_opt(1_704_067_000, 0).unwrap();
    let meta = AttemptMeta {
        attempt: 1,
        target_url: "https://example.com/".into(),
        started_at: now,
        ..AttemptMeta::default()
    };
    let mut group = c.benchmark_group("classify");
    for provider in ["omniscrape", "alterlab"] {
        let profile = profiles.get(provider).unwrap();
        for size in [1024, 100 * 1024] {
            let body = body(provider, size);
            group.throughput(Throughput::Elements(1));
            group.bench_function(format!("{provider}/{}KB", size / 1024), |b| {
                b.iter(|| {
                    let exchange = Exchange {
                        transport: &Transport::Ok,
                        status: Some(200),
                        headers: &headers,
                        body: black_box(&body),
                        received_at: now,
                        latency: Duration::from_millis(120),
                        body_cap: 10 << 20,
                    };
                    black_box(classify(profile, &meta, &exchange))
                });
            });
        }
    }
    // The floor classify stands on: parsing the same bodies into a serde_json::Value and nothing
    // else. The gap between the two is classify's own work.
    for provider in ["omniscrape", "alterlab"] {
        let body = body(provider, 1024);
        group.bench_function(format!("{provider}/1KB json parse only"), |b| {
            b.iter(|| {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                    &body,
                )))
            });
        });
    }
    group.finish();
}

fn bench_ingest(c: &mut Criterion) {
    let profiles = builtin_profiles();
    let headers = headers();
    let now = Utc.timestamp_opt(1_704_067_000, 0).unwrap();
    let mut outcomes = Vec::new();
    for (index, provider) in ["omniscrape", "alterlab"]
        .iter()
        .cycle()
        .take(64)
        .enumerate()
    {
        let profile = profiles.get(provider).unwrap();
        let body = body(provider, 1024);
        let meta = AttemptMeta {
            attempt: 1,
            attempt_id: index as u64,
            target_url: "https://example.com/".into(),
            started_at: now + chrono::TimeDelta::milliseconds(index as i64 * 50),
            ..AttemptMeta::default()
        };
        let status = [200, 200, 429, 502][index % 4];
        outcomes.push(classify(
            profile,
            &meta,
            &Exchange {
                transport: &Transport::Ok,
                status: Some(status),
                headers: &headers,
                body: &body,
                received_at: now,
                latency: Duration::from_millis(40 + index as u64),
                body_cap: 10 << 20,
            },
        ));
    }
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(outcomes.len() as u64));
    group.bench_function("fold 64 outcomes", |b| {
        b.iter_batched_ref(
            || {
                // Providers are registered up front, as `run` and the dashboard do, so the timed
                // part is the fold alone, not the one-off allocation of histograms and tables.
                let mut stats = SessionStats::new(now);
                for outcome in &outcomes[..2] {
                    stats.register(&outcome.provider, outcome.billing.unit);
                }
                stats
            },
            |stats| {
                for outcome in &outcomes {
                    if let Some(provider) = stats.provider_mut(&outcome.provider) {
                        provider.ingest(black_box(outcome));
                    }
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Redacting the key from one classified attempt that does not carry it (the common case, paid
/// on every attempt): every wire form of the key looked for in its texts and headers.
fn bench_redact(c: &mut Criterion) {
    let profiles = builtin_profiles();
    let headers = headers();
    let now = Utc.timestamp_opt(1_704_067_000, 0).unwrap();
    let profile = profiles.get("alterlab").unwrap();
    let body = body("alterlab", 1024);
    let outcome = classify(
        profile,
        &AttemptMeta::default(),
        &Exchange {
            transport: &Transport::Ok,
            status: Some(503),
            headers: &headers,
            body: &body,
            received_at: now,
            latency: Duration::from_millis(120),
            body_cap: 10 << 20,
        },
    );
    let forms = omniscope::redact::KeyForms::new("sk_test_0123456789abcdef/ghij");
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Elements(1));
    group.bench_function("alterlab/1KB outcome without the key", |b| {
        b.iter_batched(
            || outcome.clone(),
            |mut outcome| {
                outcome.redact_forms(black_box(&forms));
                outcome
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_classify, bench_ingest, bench_redact);
criterion_main!(benches);
