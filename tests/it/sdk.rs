//! The providers of issue 17 against `omniscope simulate`'s dialects: omniscope itself (the real
//! binary, `--endpoint http://ADDR/<name>`), and each provider's official Python SDK, unchanged
//! (`tests/sdk/sdk_<name>.py`: a scrape, the account or usage call, a documented error).
//!
//! The SDKs live in a virtualenv: `$OMNISCOPE_SDK_VENV`, or `.venv-sdk` at the crate root, made by
//! `.ci/run` (`pip install -r tests/sdk/requirements.txt`). Without it the SDK test says so and
//! passes, unless `CI` is set: CI must run it.

use std::path::PathBuf;
use std::time::Duration;

use omniscope::simulator::{RunningSimulator, Scenario, SimConfig, start};

use crate::support::binary::{self, output, text};

const KEY: &str = "sim_test_key_0123456789";

/// Every provider answers at once and succeeds unless a fault is forced (the built-in scenarios
/// now draw faults and latency for these dialects too).
async fn simulator() -> RunningSimulator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/providers_scenario.toml");
    let scenario = Scenario::load(path.to_str().unwrap()).unwrap();
    start(SimConfig::new(scenario)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omniscope_probes_every_new_provider_through_its_simulated_dialect() {
    let sim = simulator().await;
    // The providers run side by side: each run waits on the simulator's latencies, not the CPU.
    let probe = |name: &'static str| {
        let sim = &sim;
        async move {
            let dir = tempfile::tempdir().unwrap();
            // ZenRows' 422 is retried: after milliseconds, not the default seconds.
            std::fs::write(
                dir.path().join("config.toml"),
                "[retry]\nbase_delay = \"10ms\"\nmax_delay = \"10ms\"\n",
            )
            .unwrap();
            let report_path = dir.path().join("report.json");
            let endpoint = format!("{}/{name}", sim.base_url());
            let mut run = binary::command(dir.path(), KEY);
            run.args(["run", "--provider", name, "--endpoint", &endpoint])
                .args([
                    "--api-key-env",
                    "TEST_SCRAPE_KEY",
                    "--once",
                    "--timeout",
                    "10s",
                ])
                .args(["--target", "https://example.com/"])
                .args(["--target", "https://fault.test/target:404"])
                .arg("--report")
                .arg(&report_path);
            let out = output(run).await;
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(0), "{name}\n{stdout}\n{stderr}");
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
            let provider = &report["providers"][0];
            assert_eq!(provider["name"], name);
            // Two probes; a retryable failure (ZenRows' 422) is retried on top.
            assert_eq!(
                provider["attempts"].as_u64(),
                provider["retries"].as_u64().map(|retries| retries + 2),
                "{name}: {provider}"
            );
            assert_eq!(provider["succeeded"], 1, "{name}: {provider}");
            if name == "zenrows" {
                // ZenRows sends no target status: a failed target is its 422.
                assert!(
                    provider["api_status"]["422"].as_u64() >= Some(1),
                    "{name}: {provider}"
                );
            } else {
                assert_eq!(provider["target_status"]["404"], 1, "{name}: {provider}");
                assert_eq!(provider["target_status"]["200"], 1, "{name}: {provider}");
            }
            for shown in [&stdout, &stderr] {
                assert!(!shown.contains(KEY), "{name}: the key leaked");
            }
        }
    };
    futures::future::join_all(
        [
            "scraperapi",
            "scrapingbee",
            "zenrows",
            "scrapfly",
            "zyte",
            "crawlbase",
            "brightdata",
        ]
        .map(probe),
    )
    .await;
    sim.shutdown().await;
}

/// The virtualenv's python, or why there is none.
fn venv_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("OMNISCOPE_SDK_VENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk"),
        PathBuf::from,
    );
    let python = venv.join("bin").join("python");
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "no SDK virtualenv at {} (set OMNISCOPE_SDK_VENV, or run .ci/run's pip install)",
            venv.display()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_official_sdk_works_unchanged_against_the_simulator() {
    let python = match venv_python() {
        Ok(python) => python,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {why}");
            return;
        }
        Err(why) => panic!("CI is set but {why}"),
    };
    let sim = simulator().await;
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    for name in [
        "scraperapi",
        "scrapingbee",
        "zenrows",
        "scrapfly",
        "zyte",
        "crawlbase",
    ] {
        let mut script = tokio::process::Command::new(&python);
        script
            .arg(scripts.join(format!("sdk_{name}.py")))
            .arg(sim.base_url())
            .current_dir(&scripts)
            // No stray __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), script.output())
            .await
            .unwrap_or_else(|_| panic!("{name}: the SDK script did not finish in 120 s"))
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let said = text(&out.stdout);
        assert!(said.matches("ok: ").count() >= 3, "{name}: {said}");
    }
    sim.shutdown().await;
}
