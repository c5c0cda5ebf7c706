//! `/metrics` over real HTTP on loopback: the text parses as Prometheus exposition and shows what
//! the records said.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use omniscope::event::{Fact, ProviderEntry};
use omniscope::metrics::{new_registry, serve};
use omniscope::outcome::{BillingUnit, FindingKind, Origin, Transport};
use omniscope::provider::{AttemptMeta, Exchange, UsageReading, builtin_profiles, classify};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

fn attempt(provider: &str, status: u16, body: &str, headers: &[(&str, &str)]) -> Fact {
    let profiles = builtin_profiles();
    let profile = profiles.get(provider).unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let outcome = classify(
        profile,
        &AttemptMeta {
            attempt: 1,
            started_at: now,
            target_url: "https://example.com/".into(),
            ..AttemptMeta::default()
        },
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers: &map,
            body: body.as_bytes(),
            received_at: now,
            latency: Duration::from_millis(300),
            body_cap: 1 << 20,
        },
    );
    Fact::Attempt {
        at: now,
        outcome: Box::new(outcome),
        in_flight: Some(1),
    }
}

#[test]
fn proxied_traffic_and_audit_findings_have_series_of_their_own() {
    let (registry, metrics) = new_registry();
    let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let records = vec![
        attempt(
            "omniscrape",
            200,
            r#"{"success":true,"data":{"status_code":200,"content":""},"billing":{"charged":0.0035}}"#,
            &[],
        ),
        // The user's own traffic through the proxy, and what its audit found.
        proxied(attempt(
            "omniscrape",
            200,
            r#"{"success":true,"data":{"status_code":200,"content":""},"billing":{"charged":0.0035}}"#,
            &[],
        )),
        Fact::InFlight {
            origin: Origin::Proxy,
            provider: "omniscrape".into(),
            n: 5,
            at: now,
        },
        Fact::Finding {
            provider: "alterlab".into(),
            kind: FindingKind::RetriedNonRetryable,
            detail: "402 INSUFFICIENT_CREDITS".into(),
            at: now,
        },
    ];
    for record in &records {
        metrics.observe(record);
    }
    let text = omniscope::metrics::encode(&registry).unwrap();
    let samples = parse_exposition(&text);
    let get = |series: &str| sample(&samples, &text, series);
    assert_eq!(
        get(
            r#"omniscope_attempts_total{provider="omniscrape",api_status="200",target_status="200",error_code="none",result="succeeded",origin="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"omniscope_attempts_total{provider="omniscrape",api_status="200",target_status="200",error_code="none",result="succeeded",origin="proxy"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"omniscope_charged_total{provider="omniscrape",unit="usd",origin="proxy"}"#),
        0.0035
    );
    assert_eq!(
        get(r#"omniscope_in_flight{provider="omniscrape",origin="proxy"}"#),
        5.0
    );
    assert_eq!(
        get(r#"omniscope_audit_findings_total{provider="alterlab",kind="retried_non_retryable"}"#),
        1.0
    );
}

/// The same attempt, seen by the proxy.
fn proxied(mut fact: Fact) -> Fact {
    if let Fact::Attempt { outcome, .. } = &mut fact {
        outcome.origin = Origin::Proxy;
    }
    fact
}

/// One series' value, or a failure that shows the whole exposition.
fn sample(samples: &BTreeMap<String, f64>, text: &str, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// A strict reader of the Prometheus text format: `# HELP`/`# TYPE`/`# EOF` comments, and
/// `name{label="value",…} number` samples. Panics on anything else.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "unknown", "info"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            value => value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        let labels = series.strip_prefix(name).unwrap_or_default();
        if !labels.is_empty() {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels in {line}"));
            for pair in inner.split("\",") {
                let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(!value.trim_end_matches('"').contains('"'), "{line}");
            }
        }
        assert!(
            types.keys().any(|family| name.starts_with(family.as_str())),
            "sample {name} without a TYPE"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_over_http_parse_and_show_the_records() {
    let (registry, metrics) = new_registry();
    let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let records = vec![
        Fact::SessionStart {
            started_at: now,
            providers: vec![ProviderEntry {
                name: "alterlab".into(),
                unit: BillingUnit::Credits,
                concurrency_limit: None,
            }],
            settings: serde_json::Map::new(),
        },
        attempt(
            "omniscrape",
            200,
            r#"{"success":true,"data":{"status_code":404,"content":""},"billing":{"charged":0.0035}}"#,
            &[],
        ),
        attempt(
            "omniscrape",
            429,
            r#"{"success":false,"error":"Concurrent request limit reached","code":"CONCURRENCY_LIMIT"}"#,
            &[],
        ),
        attempt(
            "alterlab",
            200,
            r#"{"url":"u","status_code":200,"content":"c","billing":{"total_credits":1}}"#,
            &[("x-ratelimit-limit", "30"), ("x-ratelimit-remaining", "7")],
        ),
        Fact::Usage {
            origin: Origin::Probe,
            provider: "alterlab".into(),
            reading: UsageReading {
                balance: Some(250.5),
                unit: BillingUnit::Credits,
                plan: None,
                used: None,
                limit: None,
            },
            at: now,
        },
        Fact::Paused {
            origin: Origin::Probe,
            provider: "alterlab".into(),
            reason: "INSUFFICIENT_CREDITS: none left".into(),
            at: now,
        },
        Fact::InFlight {
            origin: Origin::Probe,
            provider: "omniscrape".into(),
            n: 3,
            at: now,
        },
    ];
    for record in &records {
        metrics.observe(record);
    }
    let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(registry), false)
        .await
        .unwrap();
    let url = format!("http://{}/metrics", server.local_addr);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let samples = parse_exposition(&text);

    let get = |series: &str| sample(&samples, &text, series);
    assert_eq!(
        get(
            r#"omniscope_attempts_total{provider="omniscrape",api_status="200",target_status="404",error_code="none",result="failed",origin="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"omniscope_attempts_total{provider="omniscrape",api_status="429",target_status="none",error_code="CONCURRENCY_LIMIT",result="failed",origin="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"omniscope_attempts_total{provider="alterlab",api_status="200",target_status="200",error_code="none",result="succeeded",origin="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"omniscope_attempt_latency_seconds_count{provider="omniscrape"}"#),
        2.0
    );
    assert_eq!(
        get(r#"omniscope_attempt_latency_seconds_bucket{le="0.32",provider="omniscrape"}"#),
        2.0
    );
    assert_eq!(
        get(r#"omniscope_rate_limit_remaining{provider="alterlab"}"#),
        7.0
    );
    assert_eq!(
        get(r#"omniscope_in_flight{provider="omniscrape",origin="probe"}"#),
        3.0
    );
    assert_eq!(
        get(r#"omniscope_balance{provider="alterlab",unit="credits"}"#),
        250.5
    );
    assert_eq!(get(r#"omniscope_paused{provider="alterlab"}"#), 1.0);
    assert_eq!(
        get(r#"omniscope_charged_total{provider="omniscrape",unit="usd",origin="probe"}"#),
        0.0035
    );
    server.stop();

    // The shipped Grafana dashboard asks only for series this exposition has.
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../assets/grafana/omniscope.json")).unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("omniscope_") {
                let name: String = expr[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                asked += 1;
                assert!(
                    samples
                        .keys()
                        .any(|series| series.starts_with(&format!("{name}{{"))),
                    "the dashboard asks for {name}, which /metrics does not have"
                );
            }
        }
    }
    assert!(asked >= 12);
    assert_eq!(dashboard["templating"]["list"][0]["name"], "provider");
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_or_the_classic_prometheus_text() {
    let (registry, metrics) = new_registry();
    metrics.observe(&attempt(
        "alterlab",
        200,
        r#"{"url":"u","status_code":200,"content":"c","billing":{"total_credits":1}}"#,
        &[],
    ));
    let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(registry), false)
        .await
        .unwrap();
    let url = format!("http://{}/metrics", server.local_addr);
    let client = reqwest::Client::new();
    let fetch = |accept: Option<&'static str>| {
        let mut request = client.get(&url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (content_type, response.text().await.unwrap())
        }
    };

    // What a Prometheus server that reads OpenMetrics sends.
    let (content_type, text) = fetch(Some(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ))
    .await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE omniscope_attempts counter\n"),
        "{text}"
    );

    // The classic parser's request, no Accept at all, and OpenMetrics refused with q=0.
    for accept in [
        Some("text/plain;version=0.0.4"),
        None,
        Some("application/openmetrics-text;q=0, text/plain"),
    ] {
        let (content_type, text) = fetch(accept).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        // The classic format names a counter's TYPE after its samples.
        assert!(
            text.contains("# TYPE omniscope_attempts_total counter\n"),
            "{text}"
        );
        assert!(
            !text.contains("# TYPE omniscope_attempts counter"),
            "{text}"
        );
        let samples = parse_exposition(&text);
        assert_eq!(
            samples[r#"omniscope_attempts_total{provider="alterlab",api_status="200",target_status="200",error_code="none",result="succeeded",origin="probe"}"#],
            1.0
        );
    }
    server.stop();
}
