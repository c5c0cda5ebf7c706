//! The interactive modes: `omniscope` / `omniscope watch` (the dashboard over the configured
//! probes) and `omniscope demo` (the same over the built-in simulator, started in-process).

use std::process::ExitCode;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::app::{App, KeyBindings};
use crate::cli::{DemoArgs, RunArgs};
use crate::config::{self, EngineConfig, Overrides};
use crate::probe::{EVENT_CHANNEL_CAPACITY, Engine};
use crate::provider::{self, Profiles};
use crate::run::EXIT_USAGE;
use crate::simulator::{self, Scenario, SimConfig};
use crate::stats::SessionStats;
use crate::{run, tui};

/// The variable the demo's config names for both keys; the value is a test key only the
/// in-process simulator ever sees.
const DEMO_KEY_ENV: &str = "OMNISCOPE_DEMO_API_KEY";
const DEMO_KEY: &str = "sk_test_omniscope_demo";

/// Entry point for `omniscope` and `omniscope watch`.
#[must_use]
pub fn watch(args: &RunArgs) -> ExitCode {
    let prepared = match run::prepare(args) {
        Ok(prepared) => prepared,
        Err(message) => {
            crate::say!("omniscope: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let bindings = match config::load(args.config.as_deref()) {
        Ok((file, _)) => KeyBindings::with_overrides(&file.keys),
        Err(error) => {
            crate::say!("omniscope: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let bindings = match bindings {
        Ok(bindings) => bindings,
        Err(error) => {
            crate::say!("omniscope: config: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outputs = run::RecorderOutputs {
        log: args.log.clone(),
        no_log: args.no_log,
        metrics_addr: args.metrics_addr,
    };
    block_on(dashboard(
        prepared.engine,
        prepared.profiles,
        bindings,
        outputs,
    ))
}

/// Entry point for `omniscope demo`.
#[must_use]
pub fn demo(args: &DemoArgs) -> ExitCode {
    let scenario = match Scenario::load(&args.scenario) {
        Ok(scenario) => scenario,
        Err(error) => {
            crate::say!("omniscope: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let sim = match simulator::start(SimConfig::new(scenario).seed(args.seed)).await {
            Ok(sim) => sim,
            Err(error) => {
                crate::say!("omniscope: cannot start the simulator: {error}");
                return ExitCode::FAILURE;
            }
        };
        let prepared = match demo_config(&sim.base_url()) {
            Ok(prepared) => prepared,
            Err(message) => {
                crate::say!("omniscope: demo config: {message}");
                sim.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        let outputs = run::RecorderOutputs {
            log: args.log.clone(),
            no_log: args.no_log,
            metrics_addr: args.metrics_addr,
        };
        let code = dashboard(prepared.0, prepared.1, KeyBindings::default(), outputs).await;
        sim.shutdown().await;
        code
    })
}

/// Both providers pointed at the simulator, probing a handful of targets every two seconds.
fn demo_config(base_url: &str) -> Result<(EngineConfig, Profiles), String> {
    let profiles = provider::builtin_profiles();
    let text = format!(
        r#"
[run]
every = "2s"
timeout = "20s"
usage_interval = "30s"

[providers.omniscrape]
endpoint = "{base_url}"
api_key_env = "{DEMO_KEY_ENV}"
concurrency = 4
rate = "4/s"
plan_quota = 5000

[providers.alterlab]
endpoint = "{base_url}"
api_key_env = "{DEMO_KEY_ENV}"
concurrency = 3
rate = "3/s"

[[probes]]
provider = "omniscrape"
targets = ["https://example.com/", "https://shop.example.com/item/42", "https://news.example.com/"]

[[probes]]
provider = "alterlab"
targets = ["https://example.com/", "https://shop.example.com/item/42", "https://blog.example.com/"]
"#
    );
    let file = config::parse(&text)?;
    let engine = config::resolve(&file, "demo", &Overrides::default(), &profiles, |var| {
        (var == DEMO_KEY_ENV).then(|| DEMO_KEY.to_owned())
    })
    .map_err(|error| error.to_string())?;
    Ok((engine, profiles))
}

async fn dashboard(
    engine: EngineConfig,
    profiles: Profiles,
    bindings: KeyBindings,
    outputs: run::RecorderOutputs,
) -> ExitCode {
    if let Err(error) = tui::require_terminal() {
        crate::say!("omniscope: {error}");
        return ExitCode::FAILURE;
    }
    let now = Utc::now();
    // Opened before the terminal is taken, so a bad log path or metrics address is a plain error.
    let mut recorder = match run::start_recorder_for(&outputs, now, &engine, &profiles).await {
        Ok(recorder) => recorder,
        Err(message) => {
            crate::say!("omniscope: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut stats = SessionStats::new(now);
    for settings in &engine.providers {
        if let Some(profile) = profiles.get(&settings.name) {
            stats
                .register(&settings.name, profile.billing.unit)
                .set_configured_limit(settings.concurrency);
        }
    }
    let mut app = App::new(stats, profiles.clone(), bindings, now);
    for settings in &engine.providers {
        app.configure_provider(
            &settings.name,
            settings.plan_quota,
            Some(settings.rate),
            Some(settings.concurrency),
        );
    }
    let (engine_tx, mut engine_events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let handle = match Engine::spawn(engine, &profiles, engine_tx) {
        Ok(handle) => handle,
        Err(error) => {
            crate::say!("omniscope: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Every event is recorded (log, metrics) before the screen sees it, and keeps being recorded
    // after the screen has closed, until the engine's channel ends.
    let recording = tokio::spawn(async move {
        let mut screen = Some(events_tx);
        while let Some(event) = engine_events.recv().await {
            recorder.event(&event).await;
            if let Some(tx) = &screen
                && tx.send(event).await.is_err()
            {
                screen = None;
            }
        }
        recorder.finish(Utc::now()).await
    });
    let result = tui::run(app, handle, events).await;
    // Requests still in the air after the engine's own grace period are not waited for long.
    let recorded = tokio::time::timeout(std::time::Duration::from_secs(5), recording).await;
    if let Ok(Ok(Some(path))) = recorded {
        crate::say!("omniscope: event log {}", path.display());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            crate::say!("omniscope: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            crate::say!("omniscope: cannot start the async runtime: {error}");
            None
        }
    }
}

fn block_on(future: impl Future<Output = ExitCode>) -> ExitCode {
    runtime().map_or(ExitCode::FAILURE, |runtime| runtime.block_on(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_resolves_both_providers_at_the_simulator() {
        let (engine, _) = demo_config("http://127.0.0.1:9").unwrap();
        let names: Vec<_> = engine.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["omniscrape", "alterlab"]);
        assert!(
            engine
                .providers
                .iter()
                .all(|p| p.base_url == "http://127.0.0.1:9")
        );
        assert_eq!(engine.providers[0].plan_quota, Some(5000));
    }
}
