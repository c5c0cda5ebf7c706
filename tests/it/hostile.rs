//! A hostile provider on loopback (issue 13, the scripted server answering per request): it answers with codes from other status rows,
//! oversized text, a new error code every time, job ids that are paths, absurd amounts and the
//! key echoed in every encoding. omniscope, run as users run it, must not spend more, keep more
//! or show more than it should. Behaviour, not timing: every assertion counts requests, bytes or
//! fields.

use crate::support::binary;
use crate::support::scripted::{Asked, Reply, Server};

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use binary::{output, text};

/// Long enough to be redacted, with a `/` for JSON's `\/` and characters percent-encoding changes.
pub const KEY: &str = "sk_test_h0st1le/K3y+with=odd&chars";

// ---------------------------------------------------------------------------------------------
// Running the real binary against it

fn command(dir: &Path) -> Command {
    binary::command(dir, KEY)
}

/// What one `omniscope run` left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
    report_text: String,
    log_text: String,
}

/// `omniscope run` for one provider against `base`, with `args` added and the report and event
/// log written into `dir`; `config` (TOML) is used when not empty.
async fn run(dir: &Path, provider: &str, base: &str, config: &str, args: &[&str]) -> Run {
    let mut quick = vec!["--provider", provider, "--endpoint", base];
    quick.extend([
        "--api-key-env",
        "TEST_SCRAPE_KEY",
        "--target",
        "https://a.example/",
    ]);
    quick.extend(["--rate", "unlimited"]);
    quick.extend(args);
    run_with(dir, config, &quick).await
}

/// `omniscope run ARGS --timeout 10s` with the report and event log written into `dir`, and
/// `config` (TOML) when not empty.
async fn run_with(dir: &Path, config: &str, args: &[&str]) -> Run {
    let report_path = dir.join("report.json");
    let log_path = dir.join("events.ndjson");
    let mut command = command(dir);
    command
        .args(["run", "--timeout", "10s"])
        .args(args)
        .arg("--report")
        .arg(&report_path)
        .arg("--log")
        .arg(&log_path);
    if !config.is_empty() {
        let config_path = dir.join("omniscope.toml");
        std::fs::write(&config_path, config).unwrap();
        command.arg("--config").arg(&config_path);
    }
    let out = output(command).await;
    let report_text = std::fs::read_to_string(&report_path).unwrap_or_default();
    Run {
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        report: serde_json::from_str(&report_text).unwrap_or(Value::Null),
        report_text,
        log_text: std::fs::read_to_string(&log_path).unwrap_or_default(),
    }
}

impl Run {
    fn provider(&self) -> &Value {
        &self.report["providers"][0]
    }

    /// Every `attempt` record's outcome in the event log (compact lines read as the full outcome
    /// they stand for).
    fn outcomes(&self) -> Vec<Value> {
        omniscope::eventlog::read_log(std::io::Cursor::new(self.log_text.as_bytes()))
            .unwrap()
            .facts
            .into_iter()
            .filter_map(|fact| match fact {
                omniscope::event::Fact::Attempt { outcome, .. } => {
                    Some(serde_json::to_value(&outcome).unwrap())
                }
                _ => None,
            })
            .collect()
    }

    fn everything(&self) -> [&str; 4] {
        [
            &self.stdout,
            &self.stderr,
            &self.report_text,
            &self.log_text,
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Money

#[tokio::test]
async fn a_401_or_402_with_another_rows_code_stops_the_provider_in_a_load_run() {
    // Issue 13, item 1: before, these never paused and tens of thousands of requests followed.
    let cases = [
        (
            "omniscrape",
            "/v1/scrape",
            401,
            json!({"success": false, "error": "x", "code": "CONCURRENCY_LIMIT"}),
        ),
        (
            "alterlab",
            "/api/v1/scrape",
            401,
            json!({"error": "NETWORK_ERROR", "message": "m"}),
        ),
        (
            "alterlab",
            "/api/v1/scrape",
            402,
            json!({"error": "BRAND_NEW_CODE", "message": "m"}),
        ),
    ];
    // The cases run side by side: each waits out its --duration, and none needs the others.
    let check = |(provider, path, status, body): (&'static str, &'static str, u16, Value)| async move {
        let server = Server::new();
        server
            .on(path, move |_| Reply::json(status, body.clone()))
            .on("/api/v1/usage", |_| {
                Reply::json(200, json!({"balance_credits": 5}))
            });
        let base = server.start().await;
        let dir = tempfile::tempdir().unwrap();
        let concurrency = 4;
        let run = run(
            dir.path(),
            provider,
            &base,
            "",
            &["--every", "0s", "--concurrency", "4", "--duration", "2s"],
        )
        .await;
        // The provider is stopped by an account error: exit 4 (README "Exit status").
        assert_eq!(run.code, Some(4), "{}", run.stderr);
        let sent = server.count(path);
        // Only those already in the air when the first answer came back.
        assert!(
            (1..=concurrency).contains(&sent),
            "{provider} {status}: {sent} scrapes sent after an account stop"
        );
        assert!(
            run.provider()["paused"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{provider} {status}: {}",
            run.provider()
        );
    };
    futures::future::join_all(cases.into_iter().map(check)).await;
}

#[tokio::test]
async fn alterlabs_target_login_wall_and_paywall_still_do_not_pause() {
    for (status, code) in [(401, "REQUIRES_AUTH"), (402, "PAYWALL_DETECTED")] {
        let server = Server::new();
        server
            .on("/api/v1/scrape", move |_| {
                Reply::json(status, json!({"error": code, "message": "m", "billing": {"total_credits": 1, "refunded": true}}))
            })
            .on("/api/v1/usage", |_| Reply::json(200, json!({"balance_credits": 5})));
        let base = server.start().await;
        let dir = tempfile::tempdir().unwrap();
        let run = run(dir.path(), "alterlab", &base, "", &["--once"]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.provider()["paused"].is_null(),
            "{code}: {}",
            run.provider()
        );
        assert_eq!(server.count("/api/v1/scrape"), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn hostile_job_ids_are_never_polled_and_the_job_is_never_submitted_again() {
    // Issue 13, items 2 and 10: a job id that is a path, a megabyte, or has control characters.
    let long = "j".repeat(100_000);
    for id in [
        "../../x",
        "..",
        "a/b",
        "a?b=1",
        "%2e%2e",
        "tab\there",
        long.as_str(),
        "",
    ] {
        let body = json!({"success": true, "job_id": id, "status": "queued"});
        let server = Server::new();
        server
            .on("/v1/scrape/async", move |_| Reply::json(202, body.clone()))
            .on("/v1/scrape", |_| {
                Reply::json(500, json!({"success": false}))
            });
        let base = server.start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[providers.omniscrape]\nendpoint = \"{base}\"\napi_key_env = \"TEST_SCRAPE_KEY\"\n\n[[probes]]\nprovider = \"omniscrape\"\ntargets = [\"https://a.example/\"]\nasync = true\n"
        );
        let run = run_with(dir.path(), &config, &["--once"]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let seen = server.seen();
        let shown: String = id.chars().take(20).collect();
        assert_eq!(
            seen.iter().filter(|seen| seen.method == "POST").count(),
            1,
            "{shown:?}: {seen:?}"
        );
        assert!(
            seen.iter().all(|seen| seen.method == "POST"),
            "{shown:?}: polled {seen:?}"
        );
        let outcomes = run.outcomes();
        assert_eq!(outcomes.len(), 1, "{shown:?}");
        assert_eq!(outcomes[0]["api_success"], false, "{shown:?}");
        assert_eq!(outcomes[0]["class"]["retryable"], "no", "{shown:?}");
    }
}

#[tokio::test]
async fn a_job_id_with_odd_but_harmless_characters_is_polled_as_one_encoded_segment() {
    let server = Server::new();
    server
        .on("/api/v1/scrape", |_| Reply::json(202, json!({"job_id": "job:1~a.b", "status": "queued"})))
        .on("/api/v1/jobs/job%3A1~a.b", |_| {
            Reply::json(200, json!({"status": "completed", "result": {"status_code": 200, "content": "ok", "billing": {"total_credits": 1}}}))
        })
        .on("/api/v1/usage", |_| Reply::json(200, json!({"balance_credits": 5})));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = "[run]\njob_poll_interval = \"1s\"\n";
    let run = run(dir.path(), "alterlab", &base, config, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        server.count("/api/v1/jobs/job%3A1~a.b"),
        1,
        "{:?}",
        server.seen()
    );
    assert_eq!(run.provider()["succeeded"], 1, "{}", run.provider());
}

#[tokio::test]
async fn absurd_amounts_are_unreadable_billing_never_null_or_nan_and_max_spend_trips() {
    // Issue 13, item 4: 1e308 made `charged` null in the report and the spend NaN.
    // The amounts run side by side: each waits out its --duration, and none needs the others.
    let check = |amount: &'static str| async move {
        let body = format!(
            r#"{{"success":true,"data":{{"status_code":200,"content":"x"}},"billing":{{"charged":{amount}}}}}"#
        );
        let server = Server::new();
        server.on("/v1/scrape", move |_| Reply::raw(200, body.clone()));
        let base = server.start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = "[thresholds]\nmax_spend = 1\n";
        let run = run(
            dir.path(),
            "omniscrape",
            &base,
            config,
            &["--every", "0s", "--concurrency", "2", "--duration", "1s"],
        )
        .await;
        assert_eq!(
            run.code,
            Some(3),
            "{amount}: {}\n{}",
            run.stdout,
            run.stderr
        );
        assert!(run.stderr.contains("spend"), "{amount}: {}", run.stderr);
        let billing = &run.provider()["billing"];
        let charged = billing["charged"].as_f64();
        assert!(charged.is_some_and(f64::is_finite), "{amount}: {billing}");
        assert!(
            billing["unreadable"].as_u64().unwrap() >= 1,
            "{amount}: {billing}"
        );
        assert!(!run.report_text.contains("NaN") && !run.report_text.contains("null,\"refunded\""));
    };
    futures::future::join_all(["1e308", "-5", "1e13", "\"NaN\"", "\"inf\""].map(check)).await;
}

// ---------------------------------------------------------------------------------------------
// Bounded memory and output

#[tokio::test]
async fn megabyte_messages_codes_and_ids_are_kept_bounded() {
    // Issue 13, item 5: 1 MB messages drove RSS to gigabytes.
    let big = "m".repeat(1 << 20);
    let body = json!({"error": big.clone(), "message": big.clone(), "request_id": big.clone()});
    let server = Server::new();
    server
        .on("/api/v1/scrape", move |_| Reply::json(503, body.clone()))
        .on("/api/v1/usage", move |_| {
            Reply::json(
                200,
                json!({"balance_credits": 5, "plan": "p".repeat(1 << 20)}),
            )
        });
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = run(
        dir.path(),
        "alterlab",
        &base,
        "[retry]\nbase_delay = \"10ms\"\nmax_delay = \"10ms\"\n",
        &["--once"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let outcomes = run.outcomes();
    assert!(!outcomes.is_empty());
    for outcome in &outcomes {
        for field in ["error_code", "message", "request_id"] {
            let kept = outcome[field].as_str().unwrap_or("");
            assert!(kept.len() <= 1024, "{field}: {} bytes kept", kept.len());
        }
    }
    for line in run.log_text.lines() {
        assert!(line.len() < 16 * 1024, "a log line of {} bytes", line.len());
    }
    assert!(
        run.report_text.len() < 16 * 1024,
        "{} bytes of report",
        run.report_text.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The key

#[tokio::test]
async fn the_key_echoed_in_any_encoding_reaches_no_output() {
    // Issue 13, item 9: each of these reached the event log.
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    let echo = |asked: &Asked<'_>| {
        let key = asked
            .headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let escaped = serde_json::to_string(&key).unwrap().replace('/', "\\/");
        let body = format!(
            r#"{{"error":"BAD_THING","message":"bad key {}","request_id":{escaped}}}"#,
            &escaped[1..escaped.len() - 1]
        );
        let encoded = utf8_percent_encode(&key, NON_ALPHANUMERIC).to_string();
        let (head, tail) = key.split_at(key.len() / 2);
        Reply::raw(400, body)
            .header("x-echo-url", format!("https://api/?api_key={encoded}"))
            .header(
                "x-echo-basic",
                format!("Basic {}", STANDARD.encode(format!("{key}:"))),
            )
            .header(
                "x-echo-user",
                format!("Basic {}", STANDARD.encode(format!("user:{key}"))),
            )
            .header(format!("x-{}", encoded.to_ascii_lowercase()), "1")
            .header("x-split", head)
            .header("x-split", tail)
    };
    let server = Server::new();
    server
        .on("/api/v1/scrape", echo)
        .on("/api/v1/usage", |asked| {
            let key = asked
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Reply::json(
                200,
                json!({"balance_credits": 5, "plan": format!("plan-for-{key}")}),
            )
        });
    let base = server.start().await;
    // Credentials in the endpoint are sent, never written.
    let with_credentials = base.replace("http://", "http://someone:hunter2pass@");
    let dir = tempfile::tempdir().unwrap();
    let run = run(dir.path(), "alterlab", &with_credentials, "", &["--once"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(server.count("/api/v1/scrape"), 1);
    assert!(
        run.log_text.contains("\"type\":\"usage\""),
        "no usage reading: {}",
        run.log_text
    );
    assert!(
        run.log_text.contains("[redacted]"),
        "nothing was echoed: {}",
        run.log_text
    );
    let forms = omniscope::redact::KeyForms::new(KEY);
    for (index, shown) in run.everything().into_iter().enumerate() {
        assert!(
            !forms.found_in(shown),
            "output {index} holds the key: {shown}"
        );
        assert!(
            !shown.contains("h0st1le"),
            "output {index} holds part of the key: {shown}"
        );
        assert!(
            !shown.contains("hunter2pass"),
            "output {index} holds the endpoint's password"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Endless codes

#[tokio::test]
async fn a_new_error_code_every_time_keeps_the_report_bounded() {
    // Issue 13, item 6: a new code on every response grew the report to 19 MB in 30 s.
    let server = Server::new();
    server
        .on("/api/v1/scrape", |asked| {
            Reply::json(
                400,
                json!({"error": format!("CODE_{}", asked.n), "message": "m"}),
            )
        })
        .on("/api/v1/usage", |_| {
            Reply::json(200, json!({"balance_credits": 5}))
        });
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = run(
        dir.path(),
        "alterlab",
        &base,
        "",
        &["--every", "0s", "--concurrency", "4", "--duration", "2s"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let provider = run.provider();
    let attempts = provider["attempts"].as_u64().unwrap();
    let max_unknown = omniscope::outcome::MAX_UNKNOWN_CODES as u64;
    assert!(
        attempts > max_unknown + 10,
        "only {attempts} attempts: too few to tell"
    );
    let codes = provider["error_codes"].as_object().unwrap();
    assert_eq!(codes.len() as u64, max_unknown + 1, "{codes:?}");
    let counted: u64 = codes.values().map(|count| count.as_u64().unwrap()).sum();
    assert_eq!(
        counted, attempts,
        "every attempt is counted, by name or as other"
    );
    assert_eq!(codes["other"].as_u64().unwrap(), attempts - max_unknown);
}

#[test]
fn a_new_error_code_every_time_keeps_the_metric_series_bounded_and_known_codes_named() {
    use omniscope::event::Fact;
    use omniscope::metrics::Metrics;
    use omniscope::provider::{AttemptMeta, Exchange, builtin_profiles, classify};

    let alter = builtin_profiles().get("alterlab").unwrap().clone();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let empty = reqwest::header::HeaderMap::new();
    let observe = |code: &str| {
        let body = json!({"error": code, "message": "m"}).to_string();
        let outcome = classify(
            &alter,
            &AttemptMeta::default(),
            &Exchange {
                transport: &omniscope::outcome::Transport::Ok,
                status: Some(400),
                headers: &empty,
                body: body.as_bytes(),
                received_at: chrono::Utc::now(),
                latency: std::time::Duration::from_millis(5),
                body_cap: 1 << 20,
            },
        );
        metrics.observe(&Fact::Attempt {
            at: chrono::Utc::now(),
            outcome: Box::new(outcome),
            in_flight: None,
        });
    };
    for n in 0..500 {
        observe(&format!("CODE_{n}"));
    }
    // A code the profile knows still gets its own series after the unknown ones ran out.
    observe("EXCEEDS_COST_LIMIT");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let series: std::collections::HashSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("omniscope_attempts_total"))
        .filter_map(|line| line.split("error_code=\"").nth(1)?.split('"').next())
        .collect();
    let max_unknown = omniscope::outcome::MAX_UNKNOWN_CODES;
    assert_eq!(series.len(), max_unknown + 2, "{series:?}");
    assert!(series.contains("other") && series.contains("EXCEEDS_COST_LIMIT"));
}

// ---------------------------------------------------------------------------------------------
// The engine's decisions, for any sequence of answers

mod engine_props {
    use super::{Reply, Server};

    use std::time::Duration;

    use omniscope::config::{self, Overrides};
    use omniscope::event::{Event, Fact};
    use omniscope::probe::Engine;
    use omniscope::provider::builtin_profiles;
    use proptest::prelude::*;
    use serde_json::json;
    use tokio::sync::mpsc;

    /// One answer of AlterLab's scrape endpoint: the kinds that spend, stop, hold or queue.
    fn any_answer() -> impl Strategy<Value = Reply> {
        prop::sample::select(vec![
            Reply::json(
                200,
                json!({"status_code": 200, "content": "ok", "billing": {"total_credits": 1}}),
            ),
            Reply::json(503, json!({"error": "NETWORK_ERROR", "message": "m"})),
            Reply::json(500, json!({"error": "UNHEARD_OF", "message": "m"})),
            Reply::json(429, json!({"error": "RATE_LIMIT_EXCEEDED", "message": "m"}))
                .header("retry-after", "0"),
            Reply::json(401, json!({"error": "NETWORK_ERROR", "message": "m"})),
            Reply::json(402, json!({"error": "BRAND_NEW", "message": "m"})),
            Reply::json(401, json!({"error": "REQUIRES_AUTH", "message": "m"})),
            Reply::json(202, json!({"job_id": "job-1", "status": "queued"})),
            Reply::json(202, json!({"job_id": "../../admin", "status": "queued"})),
            Reply::raw(200, "<html>not json</html>"),
        ])
    }

    fn run_engine(script: Vec<Reply>, concurrency: u32) -> (Server, Vec<Event>) {
        // Paused time: the run's 1.5 s, the retry delays and the job polls pass whenever nothing
        // else is ready, so a case costs its requests, not its duration. The answers after the
        // script take 50 ms (of that time): tokio waits on them, and the clock moves.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let fallback = Reply::json(200, json!({"status_code": 200, "content": "ok"}))
                .delayed(Duration::from_millis(50));
            let server = Server::new();
            server
                .on("/api/v1/scrape", move |asked| {
                    usize::try_from(asked.n)
                        .ok()
                        .and_then(|n| script.get(n))
                        .cloned()
                        .unwrap_or_else(|| fallback.clone())
                })
                .on("/api/v1/jobs/job-1", |_| {
                    Reply::json(503, json!({"error": "NETWORK_ERROR", "message": "m"}))
                })
                .on("/api/v1/usage", |_| Reply::json(200, json!({"balance_credits": 5})));
            let base = server.start().await;
            let toml = format!(
                "[retry]\nbase_delay = \"5ms\"\nmax_delay = \"20ms\"\njitter = 0.0\n[run]\nevery = \"0s\"\njob_poll_interval = \"1s\"\n[providers.alterlab]\nrate = \"unlimited\"\nconcurrency = {concurrency}\n"
            );
            let overrides = Overrides {
                provider: Some("alterlab".to_owned()),
                endpoint: Some(base),
                targets: vec!["https://a.example/".to_owned()],
                duration: Some(Duration::from_millis(1500)),
                ..Overrides::default()
            };
            let file = config::parse(&toml).unwrap();
            let config = config::resolve(&file, "test", &overrides, &builtin_profiles(), |_| {
                Some("sk_test_engine_props_key".to_owned())
            })
            .unwrap();
            let (tx, mut rx) = mpsc::channel(64);
            let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
            let mut events = Vec::new();
            while let Some(event) = rx.recv().await {
                events.push(event);
            }
            handle.join().await;
            (server, events)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        #[test]
        fn no_request_follows_an_account_stop_and_no_accepted_job_is_sent_twice(
            script in prop::collection::vec(any_answer(), 1..12),
            concurrency in 1u32..4,
        ) {
            let (server, events) = run_engine(script, concurrency);
            // After the pause, only requests that were already past the gate may start: at most
            // the other places of the concurrency limit.
            if let Some(paused_at) = events.iter().position(|event| matches!(event, Event::Fact(Fact::Paused { .. }))) {
                let started_after = events[paused_at..]
                    .iter()
                    .filter(|event| matches!(event, Event::Fact(Fact::InFlight { .. })))
                    .count();
                prop_assert!(
                    started_after < concurrency as usize,
                    "{} attempts started after the pause (concurrency {})", started_after, concurrency
                );
            }
            let outcomes: Vec<_> = events
                .iter()
                .filter_map(|event| match event {
                    Event::Fact(Fact::Attempt { outcome, .. }) => Some(outcome),
                    _ => None,
                })
                .collect();
            for accepted in outcomes.iter().filter(|outcome| outcome.api_status == Some(202) || outcome.job.is_some()) {
                let resent = outcomes.iter().filter(|outcome| outcome.retry_of == Some(accepted.attempt_id)).count();
                prop_assert_eq!(resent, 0, "the accepted job {} was submitted again", accepted.attempt_id);
            }
            // The hostile job id is never polled; nothing but the scrape, the usage and the one
            // plausible job's path is ever asked for.
            for seen in server.seen() {
                prop_assert!(
                    ["/api/v1/scrape", "/api/v1/usage", "/api/v1/jobs/job-1"].contains(&seen.path.as_str()),
                    "asked for {}", seen.path
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// A user's override with a wrong type, or an invalid header name, stops every command before
/// anything is sent (exit 2), naming the user's file and line, not the built-in profile.
#[tokio::test]
async fn a_bad_profile_override_names_the_users_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).unwrap();
    let file = providers.join("omniscrape.toml");
    for (override_text, line, about) in [
        (
            "# mine\n[request]\nmode = 5\n",
            3,
            "request.mode: invalid type",
        ),
        (
            "[auth]\nname = \"X API Key\"\n",
            2,
            "auth.name = \"X API Key\"",
        ),
    ] {
        std::fs::write(&file, override_text).unwrap();
        let mut providers_command = command(dir.path());
        providers_command.arg("providers");
        let out = output(providers_command).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let place = format!("{}, line {line}", file.display());
        assert!(stderr.contains(&place), "{place} in {stderr}");
        assert!(stderr.contains(about), "{about} in {stderr}");
        assert!(!stderr.contains("built-in"), "{stderr}");
    }
}
