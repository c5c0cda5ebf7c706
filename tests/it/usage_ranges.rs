//! Rates, durations and counts out of a sane range, through the real binary: each is a usage error
//! (exit 2) that names the flag, or the file and line, and nothing is sent.

use crate::support::binary::{self, output, text, wait_bounded};
use crate::support::scripted::{Server, omni_ok};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "sk_test_ranges_SECRET_31";

fn quick_probe(dir: &Path, base: &str) -> Command {
    let mut run = binary::command(dir, SECRET);
    run.args(["run", "--provider", "omniscrape", "--endpoint", base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY"])
        .args(["--target", "https://a.example/"]);
    run
}

#[tokio::test]
async fn out_of_range_flags_are_usage_errors_naming_the_flag() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        // Its interval overflowed, and the rate meant "unlimited".
        ("--rate", "1e-20/s"),
        ("--rate", "1e300/s"),
        ("--concurrency", "1000000"),
        ("--duration", "300000000000y"),
        ("--duration", "0s"),
        ("--every", "300000000000y"),
        ("--timeout", "0s"),
        ("--timeout", "3000y"),
    ] {
        let mut run = quick_probe(dir.path(), &base);
        run.args([flag, value]);
        if flag != "--duration" {
            run.arg("--once");
        }
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(server.seen().is_empty(), "a request was sent");
}

#[tokio::test]
async fn out_of_range_config_values_name_the_file_and_line() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ranges.toml");
    for (setting, line) in [
        // A panic (duration overflow) that still exited 0.
        ("[run]\njob_max_wait = \"300000000000y\"", "line 2"),
        ("[run]\njob_max_wait = \"0s\"", "line 2"),
        ("[run]\nevery = \"10s\"\ntimeout = \"0s\"", "line 3"),
        ("[providers.omniscrape]\nrate = \"1e-20/s\"", "line 2"),
        ("[providers.omniscrape]\nconcurrency = 1000000", "line 2"),
    ] {
        std::fs::write(
            &config,
            format!(
                "{setting}\n\n[[probes]]\nprovider = \"omniscrape\"\nendpoint = \"{base}\"\napi_key_env = \"TEST_SCRAPE_KEY\"\ntargets = [\"https://a.example/\"]\n"
            ),
        )
        .unwrap();
        let mut run = binary::command(dir.path(), SECRET);
        run.args(["run", "--once", "--config"]).arg(&config);
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting}: {stderr}");
        assert!(
            stderr.contains("ranges.toml") && stderr.contains(line),
            "{setting}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(server.seen().is_empty(), "a request was sent");
}

#[tokio::test]
async fn the_largest_concurrency_allowed_still_ends_at_its_duration() {
    // `--concurrency 1000000` used to start a million workers and outlive --duration. At the cap,
    // --duration still ends the run. The bound is generous (a hang is what it catches); the
    // process is killed after it, so a failure cannot leave it running.
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        omni_ok(200).delayed(Duration::from_millis(200)),
    );
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = quick_probe(dir.path(), &base);
    run.args(["--every", "0s", "--rate", "unlimited", "--duration", "2s"])
        .args([
            "--concurrency",
            &omniscope::config::MAX_CONCURRENCY.to_string(),
        ])
        .args(["--no-log", "--timeout", "5s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = run.spawn().unwrap();
    let started = Instant::now();
    let status = wait_bounded(child, Duration::from_secs(90)).await;
    let status = status.expect("the run outlived its --duration by far: killed");
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "ended before its duration"
    );
    assert!(!server.seen().is_empty());
}
