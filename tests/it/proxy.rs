//! `omniscope proxy` against scripted loopback providers: what is forwarded and what is refused,
//! streaming, job joining, the audit and the guard, and the key kept out of everything written.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use omniscope::provider::builtin_profiles;
use omniscope::proxy::{self, FindingKind, Limits, ProxyEvent, ProxySettings, Upstream};
use tokio::sync::mpsc;

use crate::support::binary;
use crate::support::scripted::{Reply, Server, alter_fail, alter_ok};

const KEY: &str = "sk_test_proxy_secret_0123456789";

/// A proxy on an ephemeral loopback port with every built-in provider sent to `base_url`.
async fn start_proxy(
    base_url: &str,
    guard: bool,
    body_cap: usize,
) -> (proxy::ProxyHandle, mpsc::Receiver<ProxyEvent>) {
    let upstreams = builtin_profiles()
        .iter()
        .map(|profile| Upstream {
            profile: profile.clone(),
            base_url: reqwest::Url::parse(base_url).unwrap(),
            concurrency: Some(2),
        })
        .collect();
    let settings = ProxySettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_remote: false,
        guard,
        upstreams,
        body_cap,
        job_max_wait: Duration::from_secs(3600),
        limits: Limits::default(),
    };
    let (tx, rx) = mpsc::channel(1024);
    let handle = proxy::serve(settings, tx).await.unwrap();
    (handle, rx)
}

/// Every event the proxy sent until it stopped.
async fn stop(
    handle: proxy::ProxyHandle,
    mut events: mpsc::Receiver<ProxyEvent>,
) -> Vec<ProxyEvent> {
    handle.join().await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    seen
}

/// One raw HTTP/1.1 exchange (the test controls the request line and headers exactly).
async fn raw(addr: std::net::SocketAddr, request: String) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn open_proxy_attempts_are_refused_and_send_nothing() {
    let provider = Server::new();
    provider.default_reply("/api/v1/scrape", alter_ok(200));
    let provider_url = provider.start().await;
    let elsewhere = Server::new();
    elsewhere.default_reply("/api/v1/scrape", alter_ok(200));
    let elsewhere_url = elsewhere.start().await;
    let elsewhere_host = elsewhere_url.trim_start_matches("http://").to_owned();
    let (handle, events) = start_proxy(&provider_url, false, 1 << 20).await;
    let addr = handle.local_addr;

    let absolute = raw(
        addr,
        format!("POST {elsewhere_url}/api/v1/scrape HTTP/1.1\r\nHost: {elsewhere_host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
    )
    .await;
    assert!(absolute.starts_with("HTTP/1.1 400"), "{absolute}");
    assert!(
        absolute.contains("OMNISCOPE_PROXY_ABSOLUTE_FORM_REFUSED"),
        "{absolute}"
    );

    let connect = raw(
        addr,
        format!("CONNECT {elsewhere_host} HTTP/1.1\r\nHost: {elsewhere_host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(connect.starts_with("HTTP/1.1 405"), "{connect}");

    let unknown = raw(
        addr,
        format!(
            "GET /{elsewhere_host}/api/v1/scrape HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");

    // A Host header naming another host changes nothing: the request goes to the configured
    // base URL, with that base URL's host.
    let other_host = raw(
        addr,
        format!("POST /alterlab/api/v1/scrape HTTP/1.1\r\nHost: {elsewhere_host}\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
    )
    .await;
    assert!(other_host.starts_with("HTTP/1.1 200"), "{other_host}");

    assert!(elsewhere.seen().is_empty(), "nothing reached another host");
    let seen = provider.seen();
    assert_eq!(seen.len(), 1, "only the origin-form request was forwarded");
    assert_eq!(
        seen[0].headers.get("host").and_then(|v| v.to_str().ok()),
        Some(provider_url.trim_start_matches("http://"))
    );
    assert_eq!(
        seen[0]
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(KEY),
        "the key goes to the provider"
    );
    let events = stop(handle, events).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ProxyEvent::Attempt { .. }))
            .count(),
        1
    );
}

#[tokio::test]
async fn the_audit_flags_a_client_that_retries_a_402_and_the_guard_answers_for_the_provider() {
    let provider = Server::new();
    provider.default_reply("/api/v1/scrape", alter_fail(402, "INSUFFICIENT_CREDITS"));
    let provider_url = provider.start().await;
    let (handle, events) = start_proxy(&provider_url, true, 1 << 20).await;
    let url = format!("http://{}/alterlab/api/v1/scrape", handle.local_addr);
    let client = client();
    let send = || {
        client
            .post(&url)
            .header("x-api-key", KEY)
            .json(&serde_json::json!({"url": "https://example.com/"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 402);
    let first_body = first.text().await.unwrap();
    assert!(first_body.contains("INSUFFICIENT_CREDITS"));
    // The retry the contract forbids: with --guard it is answered locally, in the provider's
    // error shape, and never paid for.
    let second = send().await.unwrap();
    assert_eq!(second.status(), 402);
    assert_eq!(
        second
            .headers()
            .get("x-omniscope-proxy")
            .and_then(|v| v.to_str().ok()),
        Some("guarded")
    );
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"], "INSUFFICIENT_CREDITS");
    assert!(body["message"].as_str().unwrap().contains("--guard"));
    assert_eq!(
        provider.seen().len(),
        1,
        "the guarded retry was not forwarded"
    );

    let events = stop(handle, events).await;
    let findings: Vec<FindingKind> = events
        .iter()
        .filter_map(|event| match event {
            ProxyEvent::Finding(finding) => Some(finding.kind),
            _ => None,
        })
        .collect();
    assert!(
        findings.contains(&FindingKind::RetriedNonRetryable),
        "{findings:?}"
    );
    assert!(
        findings.contains(&FindingKind::AfterAccountError),
        "{findings:?}"
    );
    assert!(events.iter().any(|e| matches!(e, ProxyEvent::Paused { reason, .. } if reason.starts_with("INSUFFICIENT_CREDITS"))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProxyEvent::Guarded { status: 402, .. }))
    );
}

#[tokio::test]
async fn without_the_guard_the_retry_is_forwarded_and_flagged() {
    let provider = Server::new();
    provider.default_reply(
        "/v1/scrape",
        crate::support::scripted::omni_fail(402, Some("MONTHLY_QUOTA_EXCEEDED")),
    );
    let provider_url = provider.start().await;
    let (handle, events) = start_proxy(&provider_url, false, 1 << 20).await;
    let url = format!("http://{}/omniscrape/v1/scrape", handle.local_addr);
    for _ in 0..2 {
        let answer = client()
            .post(&url)
            .header("x-api-key", KEY)
            .json(&serde_json::json!({"url": "https://example.com/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 402);
    }
    assert_eq!(
        provider.seen().len(),
        2,
        "the proxy itself never stops a request without --guard"
    );
    let events = stop(handle, events).await;
    assert!(events.iter().any(|e| matches!(e, ProxyEvent::Finding(f) if f.kind == FindingKind::RetriedNonRetryable && f.detail.contains("402 MONTHLY_QUOTA_EXCEEDED"))));
}

#[tokio::test]
async fn a_large_body_streams_through_intact_and_is_classified_within_the_cap() {
    let page: String = (0..5_000_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let provider = Server::new();
    provider.default_reply(
        "/api/v1/scrape",
        Reply {
            status: 200,
            headers: vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
            body: page.clone().into_bytes(),
            delay: Duration::ZERO,
        },
    );
    let provider_url = provider.start().await;
    let (handle, events) = start_proxy(&provider_url, false, 64 * 1024).await;
    let answer = client()
        .post(format!(
            "http://{}/alterlab/api/v1/scrape",
            handle.local_addr
        ))
        .header("x-api-key", KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let received = answer.bytes().await.unwrap();
    assert_eq!(received.len(), page.len());
    assert!(
        received == page.as_bytes(),
        "every byte as the provider sent it"
    );
    let events = stop(handle, events).await;
    let outcome = events
        .iter()
        .find_map(|event| match event {
            ProxyEvent::Attempt { outcome, .. } => Some(outcome),
            _ => None,
        })
        .expect("the exchange is recorded");
    assert_eq!(outcome.body_bytes, page.len() as u64);
    assert_eq!(outcome.api_status, Some(200));
    assert!(outcome.body_excerpt.len() <= omniscope::provider::BODY_EXCERPT_BYTES);
}

#[tokio::test]
async fn an_async_jobs_202_and_polls_join_into_one_outcome() {
    let provider = Server::new();
    provider.default_reply(
        "/api/v1/scrape",
        Reply::json(
            202,
            serde_json::json!({"job_id": "job_7", "status": "queued"}),
        ),
    );
    provider.queue(
        "/api/v1/jobs/job_7",
        vec![
            Reply::json(200, serde_json::json!({"status": "processing"})),
            Reply::json(200, serde_json::json!({"status": "completed", "result": {
                "url": "https://slow.example/", "status_code": 200, "content": "<html>done</html>",
                "billing": {"total_credits": 3, "tier_used": "2"}
            }})),
        ],
    );
    let provider_url = provider.start().await;
    let (handle, events) = start_proxy(&provider_url, false, 1 << 20).await;
    let base = format!("http://{}/alterlab", handle.local_addr);
    let client = client();
    let queued = client
        .post(format!("{base}/api/v1/scrape"))
        .header("x-api-key", KEY)
        .json(&serde_json::json!({"url": "https://slow.example/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    for expected in ["processing", "completed"] {
        let poll: serde_json::Value = client
            .get(format!("{base}/api/v1/jobs/job_7"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(poll["status"], expected);
    }
    let events = stop(handle, events).await;
    let attempts: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            ProxyEvent::Attempt { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(attempts.len(), 1, "one job, one attempt: {events:?}");
    let job = attempts[0];
    assert!(job.succeeded());
    assert_eq!(job.job.as_ref().map(|job| job.id.as_str()), Some("job_7"));
    assert_eq!(job.target_url, "https://slow.example/");
    assert_eq!(job.billing.charged, Some(3.0));
    let started = events.iter().find_map(|event| match event {
        ProxyEvent::Forwarded { attempt_id, .. } => Some(*attempt_id),
        _ => None,
    });
    assert_eq!(started, Some(job.attempt_id), "the attempt is the 202's");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProxyEvent::JobPending { status, .. } if status == "processing"))
    );
}

#[tokio::test]
async fn the_binary_proxies_until_sigterm_and_keeps_the_key_out_of_the_log_and_report() {
    let provider = Server::new();
    // A provider that echoes the key it was sent, in the body and a header.
    provider.default_reply(
        "/api/v1/scrape",
        Reply::json(
            401,
            serde_json::json!({"error": "INVALID_API_KEY", "message": format!("invalid key {KEY}")}),
        )
        .header("x-debug-key", KEY),
    );
    let provider_url = provider.start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[providers.alterlab]\nendpoint = \"{provider_url}\"\nconcurrency = 3\n"),
    )
    .unwrap();
    let log = dir.path().join("proxy.ndjson");
    let report = dir.path().join("report.json");
    let mut command = binary::command(dir.path(), "unused");
    command
        .args(["proxy", "--listen", "127.0.0.1:0", "--log"])
        .arg(&log)
        .arg("--report")
        .arg(&report);
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // The first line names the address it listens on.
    let (addr, stderr) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while stderr.read(&mut byte).unwrap_or(0) == 1 {
            seen.push(byte[0]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on http://".len()..];
                if let Some(end) = rest.find(';') {
                    return (rest[..end].to_owned(), stderr);
                }
            }
        }
        panic!("no listening line: {}", String::from_utf8_lossy(&seen));
    })
    .await
    .unwrap();
    let url = format!("http://{addr}/alterlab/api/v1/scrape");
    for _ in 0..2 {
        let answer = client()
            .post(&url)
            .header("x-api-key", KEY)
            .json(&serde_json::json!({"url": "https://example.com/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        // The client gets the provider's answer unchanged, key and all: it is the client's.
        assert!(answer.text().await.unwrap().contains(KEY));
    }
    binary::signal(&child, "-TERM");
    let output = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let mut stderr = stderr;
        let _ = stderr.read_to_string(&mut rest);
        (child.wait_with_output().unwrap(), rest)
    })
    .await
    .unwrap();
    let (output, stderr_text) = output;
    assert!(output.status.success(), "{stderr_text}");
    let stdout = binary::text(&output.stdout);
    let log_text = std::fs::read_to_string(&log).unwrap();
    let report_text = std::fs::read_to_string(&report).unwrap();
    for (name, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr_text),
        ("log", &log_text),
        ("report", &report_text),
    ] {
        assert!(!text.contains(KEY), "the key reached the {name}: {text}");
        assert!(
            !text.contains(&KEY[..20]),
            "part of the key reached the {name}"
        );
    }
    assert!(log_text.contains("[redacted]"), "{log_text}");
    let report: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    let alterlab = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alterlab")
        .unwrap();
    assert_eq!(alterlab["attempts"], 2);
    assert_eq!(alterlab["api_status"]["401"], 2);
    assert_eq!(alterlab["error_codes"]["INVALID_API_KEY"], 2);
    assert_eq!(alterlab["audit"]["retried_non_retryable"], 1);
    assert_eq!(alterlab["audit"]["after_account_error"], 1);
    assert!(
        alterlab["paused"]
            .as_str()
            .unwrap()
            .starts_with("INVALID_API_KEY")
    );
    assert!(stdout.contains("audit"), "{stdout}");
}
