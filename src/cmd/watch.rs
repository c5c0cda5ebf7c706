//! The interactive modes: `omniscope` / `omniscope watch` (the dashboard over the configured
//! probes) and `omniscope demo` (the same over the built-in simulator, started in-process).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::{App, KeyBindings, ProviderLive};
use crate::cli::{DemoArgs, OutputArgs, RunArgs};
use crate::cmd::CliError;
use crate::config::{self, EngineConfig, Overrides};
use crate::output_file::ReportFile;
use crate::probe::EVENT_CHANNEL_CAPACITY;
use crate::provider::{self, Profiles};
use crate::report;
use crate::session::{self, Session, Threads};
use crate::simulator::{self, Scenario, SimConfig};
use crate::tui;

/// The variable the demo's config names for both keys; the value is a test key only the
/// in-process simulator ever sees.
const DEMO_KEY_ENV: &str = "OMNISCOPE_DEMO_API_KEY";
const DEMO_KEY: &str = "sk_test_omniscope_demo";

/// Entry point for `omniscope` and `omniscope watch`.
///
/// # Errors
/// A usage, config or key error (exit 2); no terminal, or the terminal failed (exit 1).
pub fn watch(args: &RunArgs) -> Result<(), CliError> {
    let plan = session::plan(args)?;
    let bindings = plan.key_bindings()?;
    let outputs = args.outputs.clone();
    let report = args.report.clone();
    session::block_on(Threads::Workers, async move {
        dashboard(plan.engine, plan.profiles, bindings, outputs, report).await
    })
}

/// Entry point for `omniscope demo`.
///
/// # Errors
/// An unknown scenario or bad `[keys]` (exit 2); no terminal, or the simulator or the terminal
/// failed (exit 1).
pub fn demo(args: &DemoArgs) -> Result<(), CliError> {
    let scenario = Scenario::load(&args.scenario)?;
    let bindings = session::user_key_bindings()?;
    let (seed, outputs, providers) = (args.seed, args.outputs.clone(), args.providers.clone());
    let report = args.report.clone();
    session::block_on(Threads::Workers, async move {
        let sim = simulator::start(SimConfig::new(scenario).seed(seed)).await?;
        let shown = match demo_config(&sim.base_url(), &providers) {
            Ok((engine, profiles)) => dashboard(engine, profiles, bindings, outputs, report).await,
            Err(error) => Err(error.into()),
        };
        sim.shutdown().await;
        shown
    })
}

/// The demo's probing, per provider: a plan quota for the quota gauge where the simulator's
/// demo scenario sets one, and the pace of a small plan.
const DEMO_PACE: &str = "concurrency = 3\nrate = \"3/s\"";
const DEMO_PLAN_QUOTAS: &[(&str, u64)] = &[("omniscrape", 5000)];

/// The chosen providers pointed at the simulator, probing a handful of targets every two seconds.
fn demo_config(
    base_url: &str,
    providers: &[String],
) -> Result<(EngineConfig, Profiles), config::ConfigError> {
    let profiles = provider::builtin_profiles();
    let mut text =
        String::from("[run]\nevery = \"2s\"\ntimeout = \"20s\"\nusage_interval = \"30s\"\n");
    for name in providers {
        let endpoint = simulator::endpoint_for(base_url, name);
        text.push_str(&format!(
            "\n[providers.{name}]\nendpoint = \"{endpoint}\"\napi_key_env = \"{DEMO_KEY_ENV}\"\n{DEMO_PACE}\n"
        ));
        if let Some((_, quota)) = DEMO_PLAN_QUOTAS.iter().find(|(known, _)| known == name) {
            text.push_str(&format!("plan_quota = {quota}\n"));
        }
        text.push_str(&format!(
            "\n[[probes]]\nprovider = \"{name}\"\ntargets = [\"https://example.com/\", \"https://shop.example.com/item/42\", \"https://news.example.com/\"]\n"
        ));
    }
    let file = config::parse(&text).map_err(|error| config::ConfigError::Parse {
        path: "demo".into(),
        message: error.to_string(),
    })?;
    let engine = config::resolve(&file, "demo", &Overrides::default(), &profiles, |var| {
        (var == DEMO_KEY_ENV).then(|| DEMO_KEY.to_owned())
    })?;
    Ok((engine, profiles))
}

async fn dashboard(
    engine: EngineConfig,
    profiles: Profiles,
    bindings: KeyBindings,
    outputs: OutputArgs,
    report: Option<PathBuf>,
) -> Result<(), CliError> {
    tui::require_terminal().map_err(CliError::Terminal)?;
    // Opened first, as `run` does: a bad path is found before any money is spent, and an old
    // report stays whole until the new one is written on quit.
    let report_file = report
        .as_deref()
        .map(ReportFile::create)
        .transpose()
        .map_err(CliError::ReportOpen)?;
    // Opened before the terminal is taken, so a bad log path or metrics address is a plain error.
    let session = Session::for_engine(&engine, &profiles, &outputs).await?;
    let (handle, engine_events) = session.spawn_engine(engine.clone(), &profiles)?;
    let Session {
        stats,
        recorder,
        clock,
    } = session;
    let now = stats.started_at;
    let mut app = App::new(stats, profiles.clone(), bindings, now);
    for settings in &engine.providers {
        app.configure_provider(
            &settings.name,
            ProviderLive {
                rate: Some(settings.rate),
                schedule: engine.schedule_rate(&settings.name),
                concurrency: Some(settings.concurrency),
                configured_concurrency: Some(settings.concurrency),
                plan_quota: settings.plan_quota,
                ..ProviderLive::default()
            },
        );
    }
    let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    // Every fact is recorded (log, metrics) before the screen sees it, and keeps being recorded
    // after the screen has closed, until the engine's channel ends.
    let log_counts = recorder.log_counts();
    let recording =
        tokio::spawn(recorder.record_and_forward(engine_events, events_tx, clock.clone()));
    let shown = tui::run(app, handle, events).await;
    let ended_at = clock.now();
    // The log is finished once the engine has ended; after an abandon, only a moment is left
    // for its last lines.
    let wait = match &shown {
        Ok(closed) if closed.abandoned => Duration::from_millis(200),
        _ => Duration::from_secs(5),
    };
    let recorded = tokio::time::timeout(wait, recording).await;
    if let Ok(Ok(Some(path))) = recorded {
        crate::note!("event log {}", path.display());
    }
    let dropped = log_counts.map_or(0, |counts| counts.dropped());
    if dropped > 0 {
        crate::note!("event log: {dropped} record(s) dropped (the log could not keep up)");
    }
    let app = shown.map_err(CliError::Terminal)?.app;
    // The same summary and report a headless `run` gives.
    let mut report = report::build(&app.stats, ended_at);
    report.event_log_dropped = dropped;
    super::run::print_summary(&report, report_file.as_ref(), "watch");
    if let Some(file) = report_file {
        super::run::write_report(file, &report)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_points_each_chosen_provider_at_its_dialect() {
        let chosen: Vec<String> = ["omniscrape", "alterlab", "scrapingbee", "zenrows"]
            .map(str::to_owned)
            .to_vec();
        let (engine, _) = demo_config("http://127.0.0.1:9", &chosen).unwrap();
        let names: Vec<_> = engine.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, chosen);
        let urls: Vec<_> = engine
            .providers
            .iter()
            .map(|p| p.base_url.as_str())
            .collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9",
                "http://127.0.0.1:9",
                "http://127.0.0.1:9/scrapingbee",
                "http://127.0.0.1:9/zenrows"
            ]
        );
        assert_eq!(engine.providers[0].plan_quota, Some(5000));
        assert_eq!(engine.probes.len(), 4, "one probe per provider");
    }

    #[test]
    fn the_default_demo_shows_four_providers_and_an_unknown_one_is_refused() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["omniscope", "demo"]).unwrap();
        let Some(crate::cli::Command::Demo(args)) = cli.command else {
            panic!("demo parses as demo");
        };
        assert!(args.providers.len() >= 4, "{:?}", args.providers);
        assert!(demo_config("http://127.0.0.1:9", &args.providers).is_ok());
        let unknown = demo_config("http://127.0.0.1:9", &["nosuchapi".to_owned()]);
        assert!(unknown.is_err());
    }
}
