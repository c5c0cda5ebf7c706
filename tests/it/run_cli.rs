//! `omniscope run` as users run it: the real binary against a loopback server.

use crate::support::binary;
use crate::support::scripted;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use binary::{output, text};
use scripted::{Server, alter_fail, omni_ok};

const SECRET: &str = "sk_test_cli_SECRET_77";

fn command(dir: &Path) -> Command {
    binary::command(dir, SECRET)
}

#[tokio::test]
async fn once_writes_the_v1_report_and_exits_0_without_showing_the_key() {
    let server = Server::new();
    server.queue("/v1/scrape", vec![omni_ok(200)]);
    server.default_reply("/v1/scrape", omni_ok(404));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args([
            "--api-key-env",
            "TEST_SCRAPE_KEY",
            "--once",
            "--timeout",
            "10s",
        ])
        .args([
            "--target",
            "https://a.example/",
            "--target",
            "https://b.example/missing",
        ])
        .arg("--report")
        .arg(&report_path);
    let out = output(run).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("omniscrape") && stdout.contains("success rate 50.0%"),
        "{stdout}"
    );

    let raw = std::fs::read_to_string(&report_path).unwrap();
    let report: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(report["schema"], "omniscope.report.v1");
    assert!(chrono::DateTime::parse_from_rfc3339(report["started_at"].as_str().unwrap()).is_ok());
    assert!(report["duration_s"].as_f64().unwrap() >= 0.0);
    let provider = &report["providers"][0];
    assert_eq!(provider["name"], "omniscrape");
    assert_eq!(provider["attempts"], 2);
    assert_eq!(
        provider["retries"], 0,
        "a target 404 is the target's answer, not retried"
    );
    assert_eq!(provider["succeeded"], 1);
    assert_eq!(provider["failed"], 1);
    assert_eq!(provider["skipped"], 0);
    assert_eq!(provider["api_status"]["200"], 2);
    assert_eq!(provider["target_status"]["404"], 1);
    assert_eq!(provider["target_status"]["200"], 1);
    assert!(provider["error_codes"].is_object());
    for key in ["p50", "p90", "p99", "max"] {
        assert!(provider["latency_ms"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    for key in ["limit", "remaining", "reset_at", "throttled"] {
        assert!(provider["rate_limit"].get(key).is_some(), "{key}");
    }
    assert_eq!(provider["concurrency"]["max_in_flight"], 1);
    assert!(provider["concurrency"].get("limit_hits").is_some());
    assert_eq!(provider["billing"]["unit"], "usd");
    assert!((provider["billing"]["charged"].as_f64().unwrap() - 0.007).abs() < 1e-9);
    assert!(provider["billing"].get("balance").is_some());
    assert_eq!(provider["billing"]["refund_mismatches"], 0);
    assert!(provider["paused"].is_null());

    for shown in [&stdout, &stderr, &raw] {
        assert!(!shown.contains(SECRET), "the key leaked");
    }
    let sent = server.seen_at("/v1/scrape");
    assert_eq!(
        sent[0].body["url"], "https://a.example/",
        "targets in the order given"
    );
    assert_eq!(sent[1].body["url"], "https://b.example/missing");
}

#[tokio::test]
async fn an_account_pause_is_reported_with_its_code_and_skips() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_fail(402, "INSUFFICIENT_CREDITS"));
    server.default_reply("/api/v1/usage", alter_fail(402, "INSUFFICIENT_CREDITS"));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");
    let mut run = command(dir.path());
    run.args(["run", "--provider", "alterlab", "--endpoint", &base])
        .args([
            "--api-key-env",
            "TEST_SCRAPE_KEY",
            "--once",
            "--rate",
            "unlimited",
        ])
        .args(["--concurrency", "1"])
        .args([
            "--target",
            "https://a.example/",
            "--target",
            "https://b.example/",
        ])
        .arg("--report")
        .arg(&report_path);
    let out = output(run).await;
    // A provider stopped by its account is something the user must act on: exit 4, said once.
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("alterlab: stopped by an account error: INSUFFICIENT_CREDITS"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let provider = &report["providers"][0];
    assert!(
        provider["paused"]
            .as_str()
            .unwrap()
            .starts_with("INSUFFICIENT_CREDITS: ")
    );
    assert_eq!(provider["attempts"], 1);
    assert_eq!(provider["skipped"], 1);
    assert_eq!(provider["error_codes"]["INSUFFICIENT_CREDITS"], 1);
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
}

#[tokio::test]
async fn a_broken_threshold_exits_3() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(404));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omniscope.toml");
    std::fs::write(
        &config,
        format!(
            "[thresholds]\nmin_success_rate = 0.9\nmin_api_success_rate = 0.9\n\n[providers.omniscrape]\nendpoint = \"{base}\"\napi_key_env = \"TEST_SCRAPE_KEY\"\n\n[providers.omniscrape.thresholds]\nmin_target_success_rate = 0.5\n\n[[probes]]\nprovider = \"omniscrape\"\ntargets = [\"https://a.example/\"]\n"
        ),
    )
    .unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--once", "--config"]).arg(&config);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("omniscrape: success rate 0.0%"), "{stderr}");
    // The target's 404 is the target failing, not the API: the provider's own threshold on the
    // target layer breaks, the API layer's holds.
    assert!(
        stderr.contains("omniscrape: target success rate 0.0% is below the minimum 50.0%"),
        "{stderr}"
    );
    assert!(!stderr.contains("API success rate"), "{stderr}");
}

#[tokio::test]
async fn probes_skipped_while_paused_count_against_the_success_rate_threshold() {
    // One probe answered well, then the credits ran out: the second is sent and refused, the rest
    // are skipped. 1 success in 2 attempts + 2 skipped is 25 %, not 50 %.
    let server = Server::new();
    server.queue(
        "/api/v1/scrape",
        vec![
            scripted::alter_ok(200),
            alter_fail(402, "INSUFFICIENT_CREDITS"),
        ],
    );
    server.default_reply("/api/v1/usage", alter_fail(402, "INSUFFICIENT_CREDITS"));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omniscope.toml");
    std::fs::write(
        &config,
        format!(
            "[thresholds]\nmin_success_rate = 0.4\n\n[providers.alterlab]\nendpoint = \"{base}\"\napi_key_env = \"TEST_SCRAPE_KEY\"\nconcurrency = 1\n\n[[probes]]\nprovider = \"alterlab\"\ntargets = [\"https://a.example/\", \"https://b.example/\", \"https://c.example/\", \"https://d.example/\"]\n"
        ),
    )
    .unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--once", "--rate", "unlimited", "--config"])
        .arg(&config);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("skipped 2"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("threshold broken: alterlab: success rate 25.0%"),
        "{stderr}"
    );
    // The account stop outranks the threshold.
    assert_eq!(out.status.code(), Some(4), "{stderr}");
}

#[tokio::test]
async fn a_provider_never_reached_exits_5() {
    // A port nothing listens on: every attempt is refused in transport, no answer ever.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    // Refused connections are retried: with short delays, not the default seconds.
    let config = dir.path().join("fast-retry.toml");
    std::fs::write(
        &config,
        "[retry]\nbase_delay = \"10ms\"\nmax_delay = \"10ms\"\n",
    )
    .unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once"])
        .args(["--target", "https://a.example/"])
        .arg("--config")
        .arg(&config);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("omniscrape: never reached"), "{stderr}");
}

#[tokio::test]
async fn config_and_key_errors_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[run]\nevery = \"10s\"\nevrey = \"5s\"\n").unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--once", "--config"]).arg(&config);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad.toml") && stderr.contains("line 3"),
        "{stderr}"
    );

    let mut run = command(dir.path());
    run.args([
        "run",
        "--once",
        "--provider",
        "alterlab",
        "--target",
        "https://a.example/",
    ])
    .args(["--api-key-env", "NOT_SET_ANYWHERE"]);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NOT_SET_ANYWHERE"));

    // One spend limit for providers billing in dollars and in microcents means nothing.
    std::fs::write(
        &config,
        "[thresholds]\nmax_spend = 5\n\n[[probes]]\nprovider = \"omniscrape\"\napi_key_env = \"TEST_SCRAPE_KEY\"\ntargets = [\"https://a.example/\"]\n\n[[probes]]\nprovider = \"alterlab\"\napi_key_env = \"TEST_SCRAPE_KEY\"\ntargets = [\"https://a.example/\"]\n",
    )
    .unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--once", "--config"]).arg(&config);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("max_spend") && stderr.contains("different billing units"),
        "{stderr}"
    );

    let mut run = command(dir.path());
    run.args(["run", "--once", "--duration", "10m"]);
    let out = output(run).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "--once with --duration is a usage error"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_finishes_cleanly_and_still_writes_the_report() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--every", "200ms"])
        .args(["--target", "https://a.example/", "--report"])
        .arg(&report_path);
    let child = run.spawn().unwrap();
    // Let it probe a few times first.
    while server.seen_at("/v1/scrape").len() < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    binary::signal(&child, "-TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert!(report["providers"][0]["attempts"].as_u64().unwrap() >= 2);
    assert!(!text(&out.stdout).contains(SECRET));
}

#[tokio::test]
async fn the_dashboard_without_a_terminal_is_a_clear_error_not_a_panic() {
    // cron, CI or a pipe: no controlling terminal (a new session via `setsid`), stdin not a tty.
    // `timeout` bounds the test should a terminal be found after all.
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new("timeout");
    demo.args(["60", "setsid", "--wait", binary::BIN, "demo"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OMNISCOPE_CONFIG_DIR", dir.path())
        .env("OMNISCOPE_DATA_DIR", dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let done = output(demo).await;
    let stderr = text(&done.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs a terminal"), "{stderr}");
    assert!(stderr.contains("omniscope run"), "{stderr}");
    // Checked before anything else: no escape codes in the captured output, no event log.
    assert!(
        !text(&done.stdout).contains('\u{1b}'),
        "{:?}",
        text(&done.stdout)
    );
    assert!(
        !dir.path().join("logs").exists(),
        "an event log was written"
    );
}

#[tokio::test]
async fn demo_refuses_the_users_conflicting_keys_like_watch_does() {
    // The user's config (in the config dir) binds `p` twice: refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[keys]\nquit = \"p\"\n").unwrap();
    let mut demo = command(dir.path());
    demo.arg("demo");
    let out = output(demo).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config.toml") && stderr.contains("[keys]") && stderr.contains("pause_all"),
        "{stderr}"
    );
}

#[tokio::test]
async fn watch_refuses_conflicting_keys_before_it_needs_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keys.toml");
    std::fs::write(
        &config,
        "[keys]\nquit = \"p\"\n\n[[probes]]\nprovider = \"omniscrape\"\napi_key_env = \"TEST_SCRAPE_KEY\"\ntargets = [\"https://a.example/\"]\n",
    )
    .unwrap();
    let mut watch = command(dir.path());
    watch.args(["watch", "--config"]).arg(&config);
    let out = output(watch).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("keys.toml") && stderr.contains("pause_all"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");
}

#[tokio::test]
async fn a_report_path_that_cannot_be_written_exits_2_before_anything_is_sent() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once"])
        .args(["--target", "https://a.example/", "--report"])
        .arg(dir.path().join("no-such-dir").join("r.json"));
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write report file") && stderr.contains("no-such-dir"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");
    assert!(server.seen_at("/v1/scrape").is_empty(), "nothing was sent");
}

#[test]
fn an_error_to_a_closed_stderr_is_still_an_exit_code_not_a_panic() {
    // `omniscope run … 2>&1 | head -1`: the reader has gone before the error is written.
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = binary::command(dir.path(), "")
        .args([
            "run",
            "--provider",
            "omniscrape",
            "--target",
            "https://example.com/",
            "--api-key-env",
            "NO_SUCH_KEY_VARIABLE",
            "--once",
        ])
        .stderr(writer)
        .status()
        .unwrap();
    // Missing key: a usage error (2), where a panicking `eprintln!` exited 101.
    assert_eq!(status.code(), Some(2));
}

/// The simulator's AlterLab prices, the profile's unit and the report agree: a scrape of the
/// built-in `healthy` scenario costs 20,000 microcents ($0.0002), reported as 20,000 microcents.
#[tokio::test]
async fn alterlab_against_the_simulator_reports_its_charge_in_microcents() {
    use omniscope::simulator::{Latency, Scenario, SimConfig, start};
    let mut scenario = Scenario::load("healthy").unwrap();
    let alterlab = scenario.providers.get_mut("alterlab").unwrap();
    // Its prices as they are; only the wait and the draw are taken out.
    alterlab.latency = Latency::default();
    alterlab.faults = [("success".to_owned(), 1.0)].into();
    let (price, balance) = (alterlab.price, alterlab.balance.unwrap());
    assert_eq!(
        price, 20_000.0,
        "the healthy scenario's price, in microcents"
    );
    let sim = start(SimConfig::new(scenario)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut run = command(dir.path());
    run.args([
        "run",
        "--provider",
        "alterlab",
        "--endpoint",
        &sim.base_url(),
    ])
    .args([
        "--api-key-env",
        "TEST_SCRAPE_KEY",
        "--once",
        "--timeout",
        "10s",
    ])
    .args(["--target", "https://example.com/", "--report"])
    .arg(&report_path);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let billing = &report["providers"][0]["billing"];
    assert_eq!(billing["unit"], "microcents", "{billing}");
    assert_eq!(billing["charged"], price, "{billing}");
    assert_eq!(billing["balance_unit"], "microcents", "{billing}");
    let reported = billing["balance"].as_f64().unwrap();
    assert!(
        reported == balance || reported == balance - price,
        "the balance as the simulator keeps it: {billing}"
    );
    sim.shutdown().await;
}
