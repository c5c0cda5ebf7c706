//! The interactive modes: `omniscope` / `omniscope watch` (the dashboard over the configured
//! probes and, with `--proxy`, the user's own traffic through the pass-through) and `omniscope
//! demo` (the same over the built-in simulator, started in-process).
//!
//! ```text
//!  probe engine ──Event──┐
//!                        ├─▶ (one channel) ─▶ Recorder (log, metrics) ─▶ screen
//!  proxy ──ProxyEvent────┘   into_event: facts marked origin proxy
//! ```

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::{App, KeyBindings, ProviderLive};
use crate::cli::{DemoArgs, OutputArgs, WatchArgs};
use crate::clock::Clock;
use crate::cmd::CliError;
use crate::config::{self, EngineConfig, Overrides};
use crate::event::{Event, Fact};
use crate::output_file::ReportFile;
use crate::probe::EVENT_CHANNEL_CAPACITY;
use crate::provider::{self, Profiles};
use crate::proxy::{self, ProxyEvent, ProxyHandle, ProxySettings};
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
pub fn watch(args: &WatchArgs) -> Result<(), CliError> {
    let plan = session::plan(&args.probes, args.proxy)?;
    let bindings = plan.key_bindings()?;
    let outputs = args.probes.outputs.clone();
    let report = args.probes.report.clone();
    session::block_on(Threads::Workers, async move {
        dashboard(
            plan.engine,
            plan.profiles,
            bindings,
            outputs,
            report,
            plan.proxy,
        )
        .await
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
            Ok((engine, profiles)) => {
                dashboard(engine, profiles, bindings, outputs, report, None).await
            }
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
    proxy: Option<ProxySettings>,
) -> Result<(), CliError> {
    tui::require_terminal().map_err(CliError::Terminal)?;
    // Opened first, as `run` does: a bad path is found before any money is spent, and an old
    // report stays whole until the new one is written on quit.
    let report_file = report
        .as_deref()
        .map(ReportFile::create)
        .transpose()
        .map_err(CliError::ReportOpen)?;
    // Opened before the terminal is taken, so a bad log path, metrics or proxy address is a
    // plain error.
    let clock = Clock::real();
    let start = session_start(clock.now(), &engine, &profiles, proxy.as_ref());
    let session = Session::open(start, &outputs, engine.log, clock).await?;
    let (handle, engine_events) = session.spawn_engine(engine.clone(), &profiles)?;
    let (proxy, engine_events) = match proxy {
        Some(settings) => {
            let (proxy_tx, proxy_events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
            let proxy = proxy::serve(settings, proxy_tx).await?;
            let merged = merge(engine_events, proxy_events, session.clock.clone());
            (Some(proxy), merged)
        }
        None => (None, engine_events),
    };
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
    if let Some(proxy) = proxy {
        // Exchanges in the air finish and are recorded; then the proxy's side of the channel
        // ends, and with the engine's, the recording.
        tokio::spawn(ProxyHandle::join(proxy));
    }
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
    super::run::end_report(&app.stats, ended_at, dropped, report_file, "watch")?;
    Ok(())
}

/// The session's first fact: the engine's, and with `watch --proxy` the proxy's settings under
/// `"proxy"` (which also tells a replay that the session audited proxied traffic).
fn session_start(
    now: chrono::DateTime<chrono::Utc>,
    engine: &EngineConfig,
    profiles: &Profiles,
    proxy: Option<&ProxySettings>,
) -> Fact {
    let mut start = crate::recorder::session_start(now, engine, profiles);
    if let (Some(proxy), Fact::SessionStart { settings, .. }) = (proxy, &mut start) {
        settings.insert(
            "proxy".to_owned(),
            crate::cmd::proxy::described(proxy).into(),
        );
    }
    start
}

/// The engine's events and the proxy's as one stream, which ends when both sources have.
/// The proxy's are stamped on the session's clock as they arrive.
fn merge(
    mut engine: mpsc::Receiver<Event>,
    mut proxy: mpsc::Receiver<ProxyEvent>,
    clock: crate::clock::Clock,
) -> mpsc::Receiver<Event> {
    let (merged_tx, merged) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let from_proxy = merged_tx.clone();
    tokio::spawn(async move {
        while let Some(event) = engine.recv().await {
            if merged_tx.send(event).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(event) = proxy.recv().await {
            if let Some(event) = event.into_event(clock.now())
                && from_proxy.send(event).await.is_err()
            {
                break;
            }
        }
    });
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Msg;
    use crate::outcome::Origin;
    use crate::proxy::{Limits, Upstream};
    use crate::stats::SessionStats;

    /// `watch --proxy` with no probes: the engine's channel ends at once, the proxy's traffic
    /// still reaches the screen, marked as proxied, and the merged stream ends with the proxy.
    #[tokio::test]
    async fn proxied_traffic_reaches_the_dashboard_without_probes() {
        let sim = simulator::start(SimConfig::new(Scenario::load("bench").unwrap()))
            .await
            .unwrap();
        let profiles = provider::builtin_profiles();
        let settings = ProxySettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            allow_remote: false,
            guard: false,
            upstreams: vec![Upstream {
                profile: profiles.get("omniscrape").unwrap().clone(),
                base_url: reqwest::Url::parse(&sim.base_url()).unwrap(),
                concurrency: Some(4),
            }],
            body_cap: 1 << 20,
            job_max_wait: Duration::from_secs(60),
            limits: Limits::default(),
        };
        let (no_probes, engine_events) = mpsc::channel(1);
        drop(no_probes);
        let (proxy_tx, proxy_events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let proxy = proxy::serve(settings, proxy_tx).await.unwrap();
        let mut events = merge(engine_events, proxy_events, crate::clock::Clock::real());

        let answer = reqwest::Client::new()
            .post(format!("http://{}/omniscrape/v1/scrape", proxy.local_addr))
            .header("X-API-Key", "sk_test_watch_proxy_key_0123")
            .json(&serde_json::json!({"url": "https://example.com/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        proxy.join().await;

        let now = chrono::Utc::now();
        let mut app = App::new(
            SessionStats::new(now),
            profiles,
            KeyBindings::default(),
            now,
        );
        while let Some(event) = events.recv().await {
            app.update(Msg::from(event));
        }
        let attempt = app.stats.recent.back().expect("the proxied attempt");
        assert_eq!(attempt.origin, Origin::Proxy);
        assert!(attempt.succeeded());
        let omni = app.stats.provider("omniscrape").unwrap();
        assert_eq!(omni.by_origin.proxy.attempts, 1);
        assert_eq!(omni.by_origin.probe.attempts, 0);

        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        terminal
            .draw(|frame| crate::ui::render(frame, &app))
            .unwrap();
        let screen = terminal.backend().to_string();
        let row = screen
            .lines()
            .find(|line| line.contains("p1 "))
            .unwrap_or_else(|| panic!("no proxied row:\n{screen}"));
        assert!(row.contains("omniscrape") && row.contains("200"), "{row}");
        sim.shutdown().await;
    }

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
