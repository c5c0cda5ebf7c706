//! The simulator over real HTTP on an ephemeral loopback port, checked against the contract
//! documents' literal field names, codes and statuses (`../shared/contracts/`), and against
//! omniscope's own classifier with the real profiles.

use std::time::Duration;

use chrono::Utc;
use omniscope::clock::Clock;
use omniscope::outcome::{LimitKind, RefundAudit, Transport};
use omniscope::provider::{
    AttemptMeta, DEFAULT_BODY_CAP, Exchange, JobPoll, builtin_profiles, classify, parse_job_poll,
    parse_usage,
};
use omniscope::simulator::{RunningSimulator, Scenario, SimConfig, start};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const OMNI: &str = "/v1/scrape";
const ALTER: &str = "/api/v1/scrape";
const OMNI_KEY: &str = "any-key";
const ALTER_KEY: &str = "sk_test_abc";

/// No latency, no limits, every request a success unless forced.
const PLAIN: &str = r#"
name = "plain"
[providers.omniscrape]
price = 0.0035
[providers.alterlab]
price = 2
"#;

async fn sim_with(toml: &str, seed: u64) -> RunningSimulator {
    let scenario = Scenario::from_toml_str(toml, "test").unwrap();
    let config = SimConfig::new(scenario)
        .seed(seed)
        .clock(Clock::manual(1_700_000_000));
    start(config).await.unwrap()
}

async fn sim(toml: &str) -> RunningSimulator {
    sim_with(toml, 1).await
}

/// One client for every test: building one is costly. Each `#[tokio::test]` has its own runtime,
/// so no connection is kept idle across them.
fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        })
        .clone()
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn classify(&self, provider: &str) -> omniscope::outcome::Outcome {
        let profiles = builtin_profiles();
        let profile = profiles.get(provider).unwrap();
        classify(
            profile,
            &AttemptMeta::default(),
            &Exchange {
                transport: &Transport::Ok,
                status: Some(self.status),
                headers: &self.headers,
                body: &self.bytes,
                received_at: Utc::now(),
                latency: Duration::ZERO,
                body_cap: DEFAULT_BODY_CAP,
            },
        )
    }
}

async fn send(
    sim: &RunningSimulator,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let url = format!("{}{path}", sim.base_url());
    let mut request = match &body {
        Some(body) => client().post(url).json(body),
        None => client().get(url),
    };
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap().to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

async fn scrape(sim: &RunningSimulator, path: &str, key: &str, fault: Option<&str>) -> Reply {
    let extra: Vec<(&str, &str)> = fault
        .map(|fault| ("X-Sim-Fault", fault))
        .into_iter()
        .collect();
    send(
        sim,
        path,
        Some(key),
        Some(json!({ "url": "https://example.com/" })),
        &extra,
    )
    .await
}

#[tokio::test]
async fn omniscrape_success_has_the_documented_shape() {
    let sim = sim(PLAIN).await;
    let reply = scrape(&sim, OMNI, OMNI_KEY, None).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["data"]["status_code"], json!(200));
    assert!(body["data"]["content"].as_str().unwrap().contains("<html"));
    assert_eq!(body["data"]["url"], json!("https://example.com/"));
    assert_eq!(body["billing"]["charged"], json!(0.0035));
    assert!(body["metadata"]["elapsed_time"].is_number());
    assert!(body["request_id"].is_string());
    let outcome = reply.classify("omniscrape");
    assert!(outcome.succeeded());
    assert_eq!(outcome.billing.charged, Some(0.0035));
}

#[tokio::test]
async fn alterlab_success_has_the_documented_shape_and_headers() {
    let sim = sim(r#"
name = "limits"
[providers.alterlab]
price = 2
concurrency = 3
requests_per_minute = 30
"#)
    .await;
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    for field in ["url", "status_code", "content", "title"] {
        assert!(!body[field].is_null(), "missing {field}: {body}");
    }
    assert_eq!(body["status_code"], json!(200));
    assert_eq!(body["billing"]["total_credits"], json!(2));
    assert_eq!(body["billing"]["tier_used"], json!("1"));
    assert_eq!(reply.header("X-RateLimit-Limit"), Some("30"));
    assert_eq!(reply.header("X-RateLimit-Remaining"), Some("29"));
    let reset: u64 = reply.header("X-RateLimit-Reset").unwrap().parse().unwrap();
    assert_eq!(reset, 1_700_000_060, "unix time of the window's end");
    assert_eq!(reply.header("X-Concurrency-Limit"), Some("3"));
    assert_eq!(reply.header("X-Concurrency-Current"), Some("1"));
    let outcome = reply.classify("alterlab");
    assert!(outcome.succeeded());
    assert_eq!(outcome.rate_limit.remaining, Some(29));
    assert_eq!(outcome.concurrency.limit, Some(3));
}

#[tokio::test]
async fn keys_are_checked_per_provider() {
    let sim = sim(PLAIN).await;
    let body = Some(json!({ "url": "https://example.com/" }));
    let reply = send(&sim, OMNI, None, body.clone(), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["success"], json!(false));
    assert!(reply.json()["error"].is_string());
    let reply = send(&sim, OMNI, Some("whatever"), body.clone(), &[]).await;
    assert_eq!(reply.status, 200, "OmniScrape accepts any non-empty key");

    let reply = send(&sim, ALTER, None, body.clone(), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], json!("MISSING_API_KEY"));
    let reply = send(&sim, ALTER, Some("pk_live_nope"), body.clone(), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], json!("INVALID_API_KEY"));
    assert!(reply.json()["message"].is_string());
    assert!(reply.classify("alterlab").class.account_stop);
    // The live prefix is accepted too; the bare prefix stands in for a key, so nothing that looks
    // like a real live key is ever committed.
    let reply = send(&sim, ALTER, Some("sk_live_"), body, &[]).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_body_without_url_is_400() {
    let sim = sim(PLAIN).await;
    for (path, key) in [(OMNI, OMNI_KEY), (ALTER, ALTER_KEY)] {
        let reply = send(&sim, path, Some(key), Some(json!({ "mode": "auto" })), &[]).await;
        assert_eq!(reply.status, 400, "{path}");
        assert!(
            !reply
                .classify(if path == OMNI {
                    "omniscrape"
                } else {
                    "alterlab"
                })
                .api_success
        );
    }
    let reply = send(&sim, OMNI, Some(OMNI_KEY), Some(json!({ "url": "" })), &[]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["success"], json!(false));
}

#[tokio::test]
async fn target_errors_arrive_inside_an_api_200() {
    let sim = sim(PLAIN).await;
    for target in [404, 503] {
        let fault = format!("target:{target}");
        let reply = scrape(&sim, OMNI, OMNI_KEY, Some(&fault)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["data"]["status_code"], json!(target));
        assert_eq!(reply.classify("omniscrape").target_status, Some(target));
        let reply = scrape(&sim, ALTER, ALTER_KEY, Some(&fault)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["status_code"], json!(target));
        assert!(!reply.classify("alterlab").succeeded());
    }
}

#[tokio::test]
async fn every_alterlab_scraping_error_has_its_status_and_refund() {
    let sim = sim(PLAIN).await;
    // Straight from alterlab-error-codes.txt: code, status, all "Refunded".
    let table = [
        ("BLOCKED_BY_ANTIBOT", 403),
        ("CHALLENGE_DETECTED", 403),
        ("TIMEOUT", 504),
        ("CONTENT_TOO_LARGE", 413),
        ("UNSUPPORTED_CONTENT_TYPE", 415),
        ("EXTRACTION_FAILED", 422),
        ("REQUIRES_AUTH", 401),
        ("PAYWALL_DETECTED", 402),
        ("NETWORK_ERROR", 503),
    ];
    for (code, status) in table {
        let reply = scrape(&sim, ALTER, ALTER_KEY, Some(code)).await;
        assert_eq!(reply.status, status, "{code}");
        let body = reply.json();
        assert_eq!(body["error"], json!(code));
        assert!(body["message"].is_string());
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
        assert_eq!(body["billing"]["total_credits"], json!(2), "{code}");
        assert_eq!(body["billing"]["refunded"], json!(2), "{code} is refunded");
        let outcome = reply.classify("alterlab");
        assert_eq!(outcome.error_code.as_deref(), Some(code));
        assert_eq!(outcome.billing.audit, RefundAudit::Consistent, "{code}");
    }
}

#[tokio::test]
async fn unlock_failures_succeed_when_escalated() {
    let sim = sim(PLAIN).await;
    let reply = scrape(&sim, OMNI, OMNI_KEY, Some("502")).await;
    assert_eq!(reply.status, 502);
    let body = reply.json();
    assert_eq!(body["success"], json!(false));
    assert!(body["error"].is_string());
    assert_eq!(
        body["billing"]["charged"],
        json!(0),
        "failed requests are not billed"
    );
    let escalated = send(
        &sim,
        OMNI,
        Some(OMNI_KEY),
        Some(json!({ "url": "https://example.com/", "mode": "js_rendering" })),
        &[("X-Sim-Fault", "502")],
    )
    .await;
    assert_eq!(escalated.status, 200);
    assert_eq!(escalated.json()["success"], json!(true));

    let challenge = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/", "mode": "js" })),
        &[("X-Sim-Fault", "CHALLENGE_DETECTED")],
    )
    .await;
    assert_eq!(challenge.status, 200, "mode js cures a challenge");
    let blocked = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/", "max_tier": "4" })),
        &[("X-Sim-Fault", "BLOCKED_BY_ANTIBOT")],
    )
    .await;
    assert_eq!(blocked.status, 200, "a higher tier gets past the block");
    assert_eq!(blocked.json()["billing"]["tier_used"], json!("4"));
    // Where the SDK sends the tier: cost_controls.max_tier, or force_tier before it.
    for (controls, tier) in [
        (json!({ "max_tier": "3.5" }), "3.5"),
        (json!({ "max_tier": "4", "force_tier": "3" }), "3"),
    ] {
        let blocked = send(
            &sim,
            ALTER,
            Some(ALTER_KEY),
            Some(json!({ "url": "https://example.com/", "cost_controls": controls })),
            &[("X-Sim-Fault", "BLOCKED_BY_ANTIBOT")],
        )
        .await;
        assert_eq!(blocked.status, 200, "{controls}");
        assert_eq!(blocked.json()["billing"]["tier_used"], json!(tier));
    }
    let first_tier = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/", "cost_controls": { "max_tier": "1" } })),
        &[("X-Sim-Fault", "BLOCKED_BY_ANTIBOT")],
    )
    .await;
    assert_eq!(first_tier.status, 403, "the first tier is what was blocked");
}

#[tokio::test]
async fn the_refund_knob_breaks_the_rule_and_the_audit_sees_it() {
    let sim = sim(PLAIN).await;
    let extra = [
        ("X-Sim-Fault", "BLOCKED_BY_ANTIBOT"),
        ("X-Sim-Refund", "break"),
    ];
    let reply = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/" })),
        &extra,
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["billing"]["total_credits"], json!(2));
    assert!(reply.json()["billing"].get("refunded").is_none());
    assert_eq!(
        reply.classify("alterlab").billing.audit,
        RefundAudit::ChargedButShouldBeFree
    );

    let extra = [("X-Sim-Fault", "502"), ("X-Sim-Refund", "break")];
    let reply = send(
        &sim,
        OMNI,
        Some(OMNI_KEY),
        Some(json!({ "url": "https://example.com/" })),
        &extra,
    )
    .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["billing"]["charged"], json!(0.0035));
    assert_eq!(
        reply.classify("omniscrape").billing.audit,
        RefundAudit::ChargedButShouldBeFree
    );

    // A scenario that always breaks the rule.
    let sim = sim_with(
        r#"
name = "cheat"
[providers.alterlab]
price = 1
refund_violation = 1.0
faults = { TIMEOUT = 1 }
"#,
        3,
    )
    .await;
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 504);
    assert_eq!(
        reply.classify("alterlab").billing.audit,
        RefundAudit::ChargedButShouldBeFree
    );
}

#[tokio::test]
async fn unrefunded_errors_carry_no_refund() {
    let sim = sim(PLAIN).await;
    let reply = scrape(&sim, ALTER, ALTER_KEY, Some("RATE_LIMIT_EXCEEDED")).await;
    assert_eq!(reply.status, 429);
    assert!(reply.json()["billing"]["refunded"].is_null());
    assert!(reply.header("Retry-After").is_some());
    assert_eq!(
        reply.classify("alterlab").billing.audit,
        RefundAudit::Consistent
    );
}

#[tokio::test]
async fn alterlab_rate_limit_trips_and_resets_with_the_window() {
    let sim = sim(r#"
name = "rpm"
[providers.alterlab]
requests_per_minute = 3
"#)
    .await;
    for remaining in ["2", "1", "0"] {
        let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("X-RateLimit-Remaining"), Some(remaining));
    }
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"], json!("RATE_LIMIT_EXCEEDED"));
    assert_eq!(reply.header("X-RateLimit-Remaining"), Some("0"));
    assert_eq!(reply.header("Retry-After"), Some("60"));
    let outcome = reply.classify("alterlab");
    assert_eq!(outcome.class.limit, Some(LimitKind::Rate));
    assert_eq!(
        outcome.rate_limit.retry_after,
        Some(Duration::from_secs(60))
    );
    // Another key has its own budget.
    assert_eq!(scrape(&sim, ALTER, "sk_test_other", None).await.status, 200);
    sim.clock().advance(Duration::from_secs(60));
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 200, "a new minute, a new budget");
    assert_eq!(reply.header("X-RateLimit-Remaining"), Some("2"));
}

#[tokio::test]
async fn alterlab_burst_limit_trips_within_a_second() {
    let sim = sim(r#"
name = "burst"
[providers.alterlab]
requests_per_minute = 100
burst_per_second = 2
"#)
    .await;
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("Retry-After"), Some("1"));
    sim.clock().advance(Duration::from_secs(1));
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
}

// Paused time: the slow request's 3 s pass as soon as nothing else is ready.
#[tokio::test(start_paused = true)]
async fn omniscrape_concurrency_limit_is_429_with_retry_after() {
    let sim = sim(r#"
name = "one-slot"
[providers.omniscrape]
concurrency = 1
"#)
    .await;
    let base = sim.base_url();
    let slow = tokio::spawn(async move {
        client()
            .post(format!("{base}{OMNI}"))
            .header("X-API-Key", OMNI_KEY)
            .header("X-Sim-Latency-Ms", "3000")
            .json(&json!({ "url": "https://example.com/" }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    // Keep asking until the slow request holds the slot; then the next one must be refused.
    let mut refused = None;
    for _ in 0..200 {
        let reply = scrape(&sim, OMNI, OMNI_KEY, None).await;
        if reply.status == 429 {
            refused = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = refused.expect("a second request while the slot is taken is refused");
    assert_eq!(reply.json()["code"], json!("CONCURRENCY_LIMIT"));
    assert_eq!(reply.json()["success"], json!(false));
    assert_eq!(reply.header("Retry-After"), Some("1"));
    assert_eq!(
        reply.classify("omniscrape").class.limit,
        Some(LimitKind::Concurrency)
    );
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(
        scrape(&sim, OMNI, OMNI_KEY, None).await.status,
        200,
        "the slot is free again"
    );
}

#[tokio::test]
async fn omniscrape_monthly_quota_runs_out() {
    let sim = sim(r#"
name = "quota"
[providers.omniscrape]
monthly_quota = 2
price = 0.0035
"#)
    .await;
    assert_eq!(scrape(&sim, OMNI, OMNI_KEY, None).await.status, 200);
    // Failures do not count against a quota of successful requests.
    assert_eq!(scrape(&sim, OMNI, OMNI_KEY, Some("502")).await.status, 502);
    assert_eq!(scrape(&sim, OMNI, OMNI_KEY, None).await.status, 200);
    let reply = scrape(&sim, OMNI, OMNI_KEY, None).await;
    assert_eq!(reply.status, 402);
    assert_eq!(reply.json()["code"], json!("MONTHLY_QUOTA_EXCEEDED"));
    assert!(reply.json()["error"].as_str().unwrap().contains("2/2"));
    assert!(reply.classify("omniscrape").class.account_stop);
}

#[tokio::test]
async fn alterlab_balance_drains_to_insufficient_credits() {
    let sim = sim(r#"
name = "balance"
[providers.alterlab]
plan = "Free"
balance = 5
price = 2
"#)
    .await;
    let usage = send(&sim, "/api/v1/usage", Some(ALTER_KEY), None, &[]).await;
    assert_eq!(usage.status, 200);
    // The fields AlterLab's SDK documents for get_usage().
    let body = usage.json();
    assert_eq!(body["subscription_tier"], json!("Free"));
    assert_eq!(body["credits_available"], json!(5));
    assert_eq!(body["credits_used"], json!(0));
    assert_eq!(body["credits_limit"], json!(5));
    assert_eq!(body["requests_count"], json!(0));
    for period in ["billing_period_start", "billing_period_end"] {
        let at = body[period].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "{period}: {at}"
        );
    }
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
    // A refunded failure costs nothing.
    assert_eq!(
        scrape(&sim, ALTER, ALTER_KEY, Some("TIMEOUT")).await.status,
        504
    );
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
    let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(reply.status, 402);
    assert_eq!(reply.json()["error"], json!("INSUFFICIENT_CREDITS"));
    assert_eq!(reply.json()["details"]["available_credits"], json!(1));
    let usage = send(&sim, "/api/v1/usage", Some(ALTER_KEY), None, &[]).await;
    let profiles = builtin_profiles();
    let reading = parse_usage(profiles.get("alterlab").unwrap(), &usage.bytes).unwrap();
    assert_eq!(reading.balance, Some(1.0));
    assert_eq!(reading.used, Some(4.0));
    assert_eq!(reading.plan.as_deref(), Some("Free"));
    assert_eq!(reading.limit, Some(5.0));
    assert_eq!(usage.json()["requests_count"], json!(4));
    assert_eq!(
        send(&sim, "/api/v1/usage", None, None, &[]).await.status,
        401
    );
}

#[tokio::test]
async fn omniscrape_async_job_moves_through_its_lifecycle() {
    let sim = sim(r#"
name = "jobs"
[providers.omniscrape]
job_queue_ms = 1000
price = 0.0035
"#)
    .await;
    let accepted = send(
        &sim,
        "/v1/scrape/async",
        Some(OMNI_KEY),
        Some(json!({ "url": "https://example.com/" })),
        &[("X-Sim-Latency-Ms", "2000")],
    )
    .await;
    assert_eq!(accepted.status, 202);
    let body = accepted.json();
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["status"], json!("queued"));
    let job_id = body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(body["poll"], json!(format!("/v1/jobs/{job_id}")));
    assert_eq!(accepted.classify("omniscrape").job.unwrap().id, job_id);

    let profiles = builtin_profiles();
    let profile = profiles.get("omniscrape").unwrap();
    let poll = format!("/v1/jobs/{job_id}");
    let reply = send(&sim, &poll, Some(OMNI_KEY), None, &[]).await;
    let data = &reply.json()["data"];
    assert_eq!(data["status"], json!("queued"));
    for field in ["job_id", "url", "created_at", "updated_at"] {
        assert!(data[field].is_string(), "{field}");
    }
    sim.clock().advance(Duration::from_millis(1500));
    let reply = send(&sim, &poll, Some(OMNI_KEY), None, &[]).await;
    assert_eq!(
        parse_job_poll(profile, &reply.bytes),
        JobPoll::Pending("processing".to_owned())
    );
    sim.clock().advance(Duration::from_secs(2));
    let reply = send(&sim, &poll, Some(OMNI_KEY), None, &[]).await;
    assert_eq!(
        reply.json()["data"]["result"]["data"]["status_code"],
        json!(200)
    );
    let JobPoll::Completed(result) = parse_job_poll(profile, &reply.bytes) else {
        panic!("expected a completed job: {}", reply.json());
    };
    assert_eq!(result["success"], json!(true));

    // A job whose scrape fails ends `failed` with the reason.
    let accepted = send(
        &sim,
        "/v1/scrape/async",
        Some(OMNI_KEY),
        Some(json!({ "url": "https://fault.test/502" })),
        &[],
    )
    .await;
    let job_id = accepted.json()["job_id"].as_str().unwrap().to_owned();
    sim.clock().advance(Duration::from_secs(5));
    let reply = send(
        &sim,
        &format!("/v1/jobs/{job_id}"),
        Some(OMNI_KEY),
        None,
        &[],
    )
    .await;
    assert!(
        matches!(parse_job_poll(profile, &reply.bytes), JobPoll::Failed { ref status, .. } if status == "failed")
    );

    let missing = send(&sim, "/v1/jobs/nope", Some(OMNI_KEY), None, &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(send(&sim, &poll, None, None, &[]).await.status, 401);
}

#[tokio::test]
async fn alterlab_answers_slow_targets_with_a_job() {
    let sim = sim(r#"
name = "slow"
[providers.alterlab]
price = 1
async_after_ms = 1000
job_queue_ms = 0
"#)
    .await;
    let accepted = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/" })),
        &[("X-Sim-Latency-Ms", "5000")],
    )
    .await;
    assert_eq!(accepted.status, 202);
    let job_id = accepted.json()["job_id"].as_str().unwrap().to_owned();
    let outcome = accepted.classify("alterlab");
    assert_eq!(
        outcome.job.as_ref().unwrap().poll_path,
        format!("/api/v1/jobs/{job_id}")
    );
    let poll = format!("/api/v1/jobs/{job_id}");
    // The SDK's wait_for_job knows pending, running, completed and failed, nothing else.
    assert_eq!(accepted.json()["status"], json!("pending"));
    let reply = send(&sim, &poll, Some(ALTER_KEY), None, &[]).await;
    assert_eq!(reply.json()["status"], json!("running"));
    sim.clock().advance(Duration::from_secs(5));
    let reply = send(&sim, &poll, Some(ALTER_KEY), None, &[]).await;
    let body = reply.json();
    assert_eq!(body["job_id"], json!(job_id));
    assert_eq!(body["status"], json!("completed"));
    assert_eq!(body["result"]["status_code"], json!(200));
    assert_eq!(body["result"]["billing"]["total_credits"], json!(1));

    let forced = scrape(&sim, ALTER, ALTER_KEY, Some("async")).await;
    assert_eq!(forced.status, 202);
    // `"sync": false` always queues, however quick the target.
    let queued = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/", "sync": false })),
        &[("X-Sim-Latency-Ms", "0")],
    )
    .await;
    assert_eq!(queued.status, 202);
    let poll = format!("/api/v1/jobs/{}", queued.json()["job_id"].as_str().unwrap());
    let reply = send(&sim, &poll, Some(ALTER_KEY), None, &[]).await;
    assert_eq!(reply.json()["status"], json!("completed"));
    let quick = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://example.com/", "sync": true })),
        &[("X-Sim-Latency-Ms", "0")],
    )
    .await;
    assert_eq!(quick.status, 200);
    let missing = send(&sim, "/api/v1/jobs/nope", Some(ALTER_KEY), None, &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], json!("NOT_FOUND"));
}

#[tokio::test]
async fn faults_can_be_forced_through_the_target_url() {
    let sim = sim(PLAIN).await;
    let reply = send(
        &sim,
        ALTER,
        Some(ALTER_KEY),
        Some(json!({ "url": "https://fault.test/PAYWALL_DETECTED" })),
        &[],
    )
    .await;
    assert_eq!(reply.status, 402);
    assert_eq!(reply.json()["error"], json!("PAYWALL_DETECTED"));
    let reply = send(
        &sim,
        OMNI,
        Some(OMNI_KEY),
        Some(json!({ "url": "https://fault.test/target:404" })),
        &[],
    )
    .await;
    assert_eq!(reply.json()["data"]["status_code"], json!(404));
    let reply = send(
        &sim,
        OMNI,
        Some(OMNI_KEY),
        Some(json!({ "url": "https://fault.test/MONTHLY_QUOTA_EXCEEDED" })),
        &[],
    )
    .await;
    assert_eq!(reply.status, 402);
    assert_eq!(reply.json()["code"], json!("MONTHLY_QUOTA_EXCEEDED"));
}

#[tokio::test]
async fn faults_outside_a_contract_are_refused_clearly() {
    let sim = sim(PLAIN).await;
    let reply = scrape(&sim, OMNI, OMNI_KEY, Some("BLOCKED_BY_ANTIBOT")).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("BLOCKED_BY_ANTIBOT")
    );
    let reply = scrape(&sim, ALTER, ALTER_KEY, Some("not a fault")).await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn chaos_html_truncated_huge_and_bad_headers() {
    let sim = sim(PLAIN).await;
    let html = scrape(&sim, OMNI, OMNI_KEY, Some("chaos:html")).await;
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.bytes.starts_with(b"<html"));
    assert!(
        html.classify("omniscrape")
            .message
            .unwrap()
            .contains("HTML")
    );

    let truncated = scrape(&sim, ALTER, ALTER_KEY, Some("chaos:truncated")).await;
    assert_eq!(truncated.status, 200);
    assert!(serde_json::from_slice::<Value>(&truncated.bytes).is_err());
    assert!(
        truncated
            .classify("alterlab")
            .message
            .unwrap()
            .contains("truncated")
    );

    let huge = scrape(&sim, OMNI, OMNI_KEY, Some("chaos:huge")).await;
    assert!(huge.bytes.len() > 10 * 1024 * 1024);
    assert!(matches!(
        huge.classify("omniscrape").transport,
        Transport::BodyOverCap { .. }
    ));

    let garbage = scrape(&sim, ALTER, ALTER_KEY, Some("chaos:bad_headers")).await;
    assert_eq!(garbage.status, 200);
    assert_eq!(garbage.header("X-RateLimit-Remaining"), Some("-3"));
    let outcome = garbage.classify("alterlab");
    assert!(outcome.succeeded());
    assert_eq!(
        outcome.rate_limit.remaining, None,
        "garbage is ignored, not read as 0"
    );
    assert_eq!(outcome.rate_limit.limit, None);
    assert_eq!(outcome.concurrency.limit, None);
}

#[tokio::test]
async fn chaos_drop_and_stall_break_the_transfer() {
    let sim = sim(PLAIN).await;
    let url = format!("{}{OMNI}", sim.base_url());
    let dropped = client()
        .post(&url)
        .header("X-API-Key", OMNI_KEY)
        .header("X-Sim-Fault", "chaos:drop")
        .json(&json!({ "url": "https://example.com/" }))
        .send()
        .await;
    // The cut may land before or after the response head is read; either way no body arrives.
    match dropped {
        Ok(response) => assert!(response.bytes().await.is_err(), "the body is cut off"),
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }

    let stalled = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(&url)
        .header("X-API-Key", OMNI_KEY)
        .header("X-Sim-Fault", "chaos:stall")
        .json(&json!({ "url": "https://example.com/" }))
        .send()
        .await;
    let error = match stalled {
        Ok(response) => response.bytes().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(error.is_timeout(), "{error}");
    // Shutting down ends the stalled response instead of waiting ten minutes.
    sim.shutdown().await;
}

#[tokio::test]
async fn waves_come_and_go_with_the_clock() {
    let sim = sim(r#"
name = "wave"
[providers.alterlab]
faults = { success = 1 }
[[providers.alterlab.waves]]
from_s = 60
active_s = 60
faults = { BLOCKED_BY_ANTIBOT = 1000000 }
requests_per_minute = 100
"#)
    .await;
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
    sim.clock().advance(Duration::from_secs(60));
    let during = scrape(&sim, ALTER, ALTER_KEY, None).await;
    assert_eq!(during.status, 403);
    assert_eq!(during.header("X-RateLimit-Limit"), Some("100"));
    sim.clock().advance(Duration::from_secs(60));
    assert_eq!(scrape(&sim, ALTER, ALTER_KEY, None).await.status, 200);
}

#[tokio::test]
async fn the_same_seed_replays_the_same_run() {
    let mix = r#"
name = "mix"
[providers.alterlab]
faults = { success = 5, "target:404" = 2, BLOCKED_BY_ANTIBOT = 2, TIMEOUT = 1 }
"#;
    async fn run(mix: &str, seed: u64) -> Vec<(u16, Value)> {
        let sim = sim_with(mix, seed).await;
        let mut seen = Vec::new();
        for _ in 0..40 {
            let reply = scrape(&sim, ALTER, ALTER_KEY, None).await;
            let body = reply.json();
            seen.push((
                reply.status,
                body.get("status_code")
                    .or(body.get("error"))
                    .cloned()
                    .unwrap_or_default(),
            ));
        }
        seen
    }
    let first = run(mix, 42).await;
    assert_eq!(first, run(mix, 42).await);
    assert_ne!(first, run(mix, 43).await, "another seed, another run");
    let kinds: std::collections::BTreeSet<u16> = first.iter().map(|(status, _)| *status).collect();
    assert!(kinds.len() >= 2, "the mix is mixed: {kinds:?}");
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let sim = sim(PLAIN).await;
    let reply = send(&sim, "/nope", Some(OMNI_KEY), None, &[]).await;
    assert_eq!(reply.status, 404);
    assert!(reply.json().is_object());
}

#[tokio::test]
async fn every_builtin_scenario_starts() {
    for name in omniscope::simulator::builtin_names() {
        let scenario = Scenario::load(name).unwrap();
        let sim = start(SimConfig::new(scenario)).await.unwrap();
        assert!(sim.base_url().starts_with("http://127.0.0.1:"));
        sim.shutdown().await;
    }
}

#[test]
fn the_command_refuses_bad_scenarios_and_remote_addresses() {
    let binary = env!("CARGO_BIN_EXE_omniscope");
    let output = std::process::Command::new(binary)
        .args(["simulate", "--scenario", "no-such-scenario"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-scenario") && stderr.contains("healthy"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "name = \"broken\"\n[providers.alterlab.faults]\nNOT_A_CODE = 1\n",
    )
    .unwrap();
    let output = std::process::Command::new(binary)
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOT_A_CODE"));

    let output = std::process::Command::new(binary)
        .args(["simulate", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-remote"));
}

#[tokio::test]
async fn the_demo_scenario_stages_limits_waves_and_a_draining_balance() {
    let scenario = Scenario::load("demo").unwrap();
    let sim = start(
        SimConfig::new(scenario)
            .seed(9)
            .clock(Clock::manual(1_700_000_000)),
    )
    .await
    .unwrap();
    let no_wait = [("X-Sim-Latency-Ms", "0")];
    let body = Some(json!({ "url": "https://example.com/" }));
    let mut alter_codes = std::collections::BTreeSet::new();
    let mut omni_statuses = std::collections::BTreeSet::new();
    let staged = [
        "RATE_LIMIT_EXCEEDED",
        "BLOCKED_BY_ANTIBOT",
        "INSUFFICIENT_CREDITS",
    ];
    // Ten seconds of simulated time per step, at most about forty minutes in all; it stops once
    // everything the scenario stages has happened.
    for _ in 0..240 {
        for _ in 0..4 {
            let reply = send(&sim, ALTER, Some(ALTER_KEY), body.clone(), &no_wait).await;
            if let Some(code) = reply.json()["error"].as_str() {
                alter_codes.insert(code.to_owned());
            }
            let reply = send(&sim, OMNI, Some(OMNI_KEY), body.clone(), &no_wait).await;
            omni_statuses.insert(reply.status);
        }
        sim.clock().advance(Duration::from_secs(10));
        let all_staged = staged.iter().all(|code| alter_codes.contains(*code))
            && omni_statuses.contains(&200)
            && omni_statuses.contains(&502);
        if all_staged {
            break;
        }
    }
    for code in staged {
        assert!(
            alter_codes.contains(code),
            "{code} never happened: {alter_codes:?}"
        );
    }
    assert!(
        omni_statuses.contains(&200) && omni_statuses.contains(&502),
        "{omni_statuses:?}"
    );
    assert!(
        !alter_codes.contains("ERROR"),
        "every AlterLab error has a code: {alter_codes:?}"
    );
}

#[tokio::test]
async fn alterlab_status_only_faults_still_carry_a_code() {
    let sim = sim(PLAIN).await;
    let reply = scrape(&sim, ALTER, ALTER_KEY, Some("502")).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error"], json!("BAD_GATEWAY"));
    assert_eq!(
        reply.json()["billing"]["refunded"],
        json!(2),
        "5xx is refunded"
    );
    let outcome = reply.classify("alterlab");
    assert!(outcome.class.refund_expected);
    assert_eq!(outcome.billing.audit, RefundAudit::Consistent);
}

#[tokio::test]
async fn every_alterlab_answer_carries_the_limit_headers() {
    // Issue 3: "Every answer carries X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset
    // (unix time), X-Concurrency-Limit, X-Concurrency-Current" — refusals and job polls included.
    let sim = sim(r#"
name = "limits"
[providers.alterlab]
price = 1
concurrency = 3
requests_per_minute = 30
"#)
    .await;
    let body = Some(json!({ "url": "https://example.com/" }));
    let job = scrape(&sim, ALTER, ALTER_KEY, Some("async")).await;
    assert_eq!(job.status, 202);
    let poll = format!("/api/v1/jobs/{}", job.json()["job_id"].as_str().unwrap());
    let replies = [
        ("ok", scrape(&sim, ALTER, ALTER_KEY, None).await),
        ("async", job),
        ("no key", send(&sim, ALTER, None, body.clone(), &[]).await),
        (
            "bad key",
            send(&sim, ALTER, Some("pk_nope"), body, &[]).await,
        ),
        (
            "no url",
            send(&sim, ALTER, Some(ALTER_KEY), Some(json!({})), &[]).await,
        ),
        ("job", send(&sim, &poll, Some(ALTER_KEY), None, &[]).await),
        (
            "no job",
            send(&sim, "/api/v1/jobs/nope", Some(ALTER_KEY), None, &[]).await,
        ),
        ("job no key", send(&sim, &poll, None, None, &[]).await),
        (
            "usage",
            send(&sim, "/api/v1/usage", Some(ALTER_KEY), None, &[]).await,
        ),
        (
            "usage no key",
            send(&sim, "/api/v1/usage", None, None, &[]).await,
        ),
    ];
    for (what, reply) in &replies {
        for name in [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-Concurrency-Limit",
            "X-Concurrency-Current",
        ] {
            let value = reply.header(name);
            assert!(
                value.is_some_and(|v| v.parse::<u64>().is_ok()),
                "{what} (HTTP {}): {name} = {value:?}",
                reply.status
            );
        }
    }
    let reset: u64 = replies[2]
        .1
        .header("X-RateLimit-Reset")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(reset, 1_700_000_060, "unix time of the window's end");
}

#[tokio::test]
async fn a_drawn_alterlab_rate_limit_refusal_reads_as_a_spent_window() {
    let sim = sim(r#"
name = "limits"
[providers.alterlab]
price = 1
requests_per_minute = 30
"#)
    .await;
    let reply = scrape(&sim, ALTER, ALTER_KEY, Some("RATE_LIMIT_EXCEEDED")).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"], json!("RATE_LIMIT_EXCEEDED"));
    assert_eq!(reply.header("X-RateLimit-Remaining"), Some("0"));
    assert!(reply.header("Retry-After").is_some());
}

/// The providers served from their profiles, under `/<name>/` (issue 17's seven).
fn profiled() -> Vec<String> {
    let names: Vec<String> = builtin_profiles()
        .iter()
        .map(|profile| profile.name.clone())
        .filter(|name| !omniscope::simulator::endpoint_for("", name).is_empty())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    names
}

/// A scenario giving each provider served from its profile the same section.
fn profiled_scenario(section: &str) -> String {
    let mut toml = "name = \"profiled\"\n".to_owned();
    for name in profiled() {
        toml.push_str(&format!("[providers.{name}]\n{section}\n"));
    }
    toml
}

/// A scrape sent as omniscope sends it to `profile`'s provider (its method, auth and placement),
/// classified with that profile.
async fn profiled_scrape(
    sim: &RunningSimulator,
    profile: &omniscope::provider::Profile,
) -> omniscope::outcome::Outcome {
    let base = format!("{}/{}", sim.base_url(), profile.name);
    let key = secrecy::SecretString::from("sim_test_key_0123456789");
    let request = omniscope::probe::http::authorized(
        &client(),
        profile.endpoints.method.as_http(),
        profile,
        &base,
        &profile.endpoints.scrape,
        &key,
    );
    let request = omniscope::probe::http::with_target(
        request,
        profile,
        "https://example.com/",
        &omniscope::outcome::RequestOptions::default(),
    );
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    classify(
        profile,
        &AttemptMeta::default(),
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers: &headers,
            body: &bytes,
            received_at: Utc::now(),
            latency: Duration::ZERO,
            body_cap: DEFAULT_BODY_CAP,
        },
    )
}

#[tokio::test]
async fn scenario_limits_and_quotas_reach_the_dialects_written_from_profiles() {
    use omniscope::outcome::Fault;
    // One success a month, three requests a minute: a success, the quota's refusal (the profile's
    // own account row), then the minute's 429.
    let sim = sim(&profiled_scenario(
        "monthly_quota = 1\nrequests_per_minute = 3\nprice = 1",
    ))
    .await;
    let profiles = builtin_profiles();
    for name in &profiled() {
        let profile = profiles.get(name).unwrap();
        let first = profiled_scrape(&sim, profile).await;
        assert!(first.succeeded(), "{name}: {first:?}");
        for _ in 0..2 {
            let refused = profiled_scrape(&sim, profile).await;
            assert!(
                !refused.succeeded() && refused.class.account_stop,
                "{name}: a used-up quota stops the account: {refused:?}"
            );
        }
        let throttled = profiled_scrape(&sim, profile).await;
        assert_eq!(throttled.api_status, Some(429), "{name}: {throttled:?}");
        assert_eq!(throttled.class.fault, Fault::RateLimit, "{name}");
        assert!(
            throttled
                .rate_limit
                .retry_after
                .is_some_and(|wait| wait >= Duration::from_secs(1)),
            "{name}: the minute's refusal says when to come back: {throttled:?}"
        );
    }
}

#[tokio::test]
async fn scenario_faults_and_balances_reach_the_dialects_written_from_profiles() {
    use omniscope::outcome::Fault;
    // Every drawn outcome is a target 404; the balance buys two of them.
    let sim = sim(&profiled_scenario(
        "balance = 2\nprice = 1\nfaults = { \"target:404\" = 1 }",
    ))
    .await;
    let profiles = builtin_profiles();
    for name in &profiled() {
        let drawn = profiled_scrape(&sim, profiles.get(name).unwrap()).await;
        assert_eq!(drawn.class.fault, Fault::Target, "{name}: {drawn:?}");
        assert!(
            // ZenRows cannot say the target's status: its 422 is the target's failure.
            drawn.target_status == Some(404) || drawn.api_status == Some(422),
            "{name}: {drawn:?}"
        );
    }
    // The providers whose target failures are billed drain their balance and are then refused.
    let drained = [
        "scraperapi",
        "scrapingbee",
        "scrapfly",
        "zyte",
        "crawlbase",
        "brightdata",
    ];
    for name in drained {
        let profile = profiles.get(name).unwrap();
        profiled_scrape(&sim, profile).await;
        let refused = profiled_scrape(&sim, profile).await;
        assert!(
            refused.class.account_stop,
            "{name}: an empty balance stops the account: {refused:?}"
        );
    }
}
