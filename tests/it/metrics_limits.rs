//! The `/metrics` listener under a crowd: connections are bounded, idle ones are closed, and a
//! non-loopback address needs `--metrics-allow-remote`. Through the real binary where it is a CLI
//! behaviour; bounds on waits are generous and only catch hangs.

use crate::support::binary::{self, output, signal, text, wait_bounded};
use crate::support::scripted::{Server, omni_ok};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omniscope::metrics::{MAX_CONNECTIONS, ServeError, new_registry, serve};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const SECRET: &str = "sk_test_metrics_SECRET_64";
const HANG_BOUND: Duration = Duration::from_secs(90);

// Paused time: the server's header-read timeout passes as soon as nothing else is ready.
#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_not_kept_forever() {
    let (registry, _metrics) = new_registry();
    let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(registry), false)
        .await
        .unwrap();
    let mut idle = TcpStream::connect(server.local_addr).await.unwrap();
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(HANG_BOUND, idle.read(&mut byte)).await;
    match read {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(_)) => panic!("the server sent something to a connection that asked nothing"),
        Err(_) => panic!("an idle connection was kept open past {HANG_BOUND:?}"),
    }
    server.stop();
}

#[tokio::test]
async fn a_non_loopback_address_needs_the_opt_in() {
    let (registry, _metrics) = new_registry();
    let refused = serve("0.0.0.0:0".parse().unwrap(), Arc::new(registry), false).await;
    assert!(
        matches!(refused, Err(ServeError::Remote { .. })),
        "{refused:?}"
    );

    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = binary::command(dir.path(), SECRET);
    run.args(["run", "--provider", "omniscrape", "--endpoint", &base])
        .args(["--api-key-env", "TEST_SCRAPE_KEY", "--once", "--no-log"])
        .args(["--target", "https://a.example/"])
        .args(["--metrics-addr", "0.0.0.0:0"]);
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-allow-remote"), "{stderr}");
    assert!(server.seen().is_empty(), "a request was sent");
}

/// `omniscope run …` with at most `fds` descriptors, its stderr piped.
fn run_with_fd_limit(dir: &Path, fds: u32, args: &[&str]) -> Child {
    let mut run = Command::new("sh");
    run.arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
        .arg(binary::BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OMNISCOPE_CONFIG_DIR", dir)
        .env("OMNISCOPE_DATA_DIR", dir)
        .env("TEST_SCRAPE_KEY", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    run.spawn().unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_crowd_of_idle_connections_takes_no_descriptors_the_probes_need() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let report_arg = report.to_string_lossy().into_owned();
    let mut child = run_with_fd_limit(
        dir.path(),
        256,
        &[
            "run",
            "--provider",
            "omniscrape",
            "--endpoint",
            &base,
            "--api-key-env",
            "TEST_SCRAPE_KEY",
            "--target",
            "https://a.example/",
            "--every",
            "0s",
            "--concurrency",
            "4",
            "--rate",
            "200/s",
            "--no-log",
            "--metrics-addr",
            "127.0.0.1:0",
            "--report",
            &report_arg,
        ],
    );
    let pid = child.id();
    // The address it bound: "omniscope: metrics at http://127.0.0.1:PORT/metrics".
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("metrics at http://").nth(1) {
                let _ = addr_tx.send(rest.trim_end_matches("/metrics").to_owned());
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(HANG_BOUND))
        .await
        .unwrap()
        .expect("the run did not say its metrics address");

    // 1,100 connections that never send a byte: more than the run's 256 descriptors.
    let mut crowd = Vec::new();
    for _ in 0..1100 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await
        {
            crowd.push(stream);
        }
    }
    assert!(
        crowd.len() > 256,
        "only {} connections were made",
        crowd.len()
    );
    let held = open_descriptors(pid);
    assert!(
        held < 100 + MAX_CONNECTIONS,
        "{held} descriptors open with the crowd connected"
    );
    // The endpoint still answers a real scrape (once the idle connections holding its places
    // have been closed).
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut scraped = false;
    while !scraped && started.elapsed() < HANG_BOUND {
        scraped = client
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
    }
    assert!(scraped, "/metrics never answered during the crowd");

    // It probed all along; SIGTERM ends it as a user would, and it reports.
    signal(&child, "-TERM");
    let status = wait_bounded(child, HANG_BOUND)
        .await
        .expect("the run did not end: killed");
    drop(crowd);
    assert_eq!(status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let provider = &report["providers"][0];
    assert!(provider["attempts"].as_u64().unwrap() > 0);
    assert_eq!(
        provider["failed"], 0,
        "probes failed while the crowd was connected (out of descriptors?): {provider}"
    );
}
