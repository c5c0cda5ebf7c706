//! What every command that watches providers sets up, in one place:
//!
//! ```text
//!  block_on         the runtime (one thread for `run`, workers for a screen or the simulator)
//!  plan(RunArgs)    profiles + config file + flags + keys from the environment (checked first)
//!  Session::open    event log + metrics opened, `session_start` recorded and folded into stats
//!  sources          the probe engine (Session::spawn_engine); a pass-through proxy would be
//!       |           a second one, on the session's clock
//!       |  Event (a Fact, or a live-only Notice), one bounded channel per source
//!       v
//!  the command's loop (run: fold + log; watch/demo: log, then the screen)  <- stop_signals()
//! ```
//!
//! A session starts from its first fact: [`Session::open`] takes the `session_start` fact,
//! writes it to the log and folds it into the statistics with the same fold a replay uses, so the
//! live session and its replay register the same providers. A new source of facts (issue 18's
//! proxy) builds its own `session_start` fact, opens a session the same way, and sends the same
//! events; nothing here is specific to the engine except [`Session::spawn_engine`] and
//! [`Session::for_engine`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::app::KeyBindings;
use crate::cli::{OutputArgs, RunArgs};
use crate::clock::Clock;
use crate::cmd::CliError;
use crate::config::{self, EngineConfig, Overrides, ThresholdSet};
use crate::event::{Event, Fact};
use crate::eventlog::rotation::LogPolicy;
use crate::eventlog::writer::Parts;
use crate::eventlog::{self, EventLog};
use crate::probe::{EVENT_CHANNEL_CAPACITY, Engine, EngineHandle};
use crate::provider::{self, Profiles};
use crate::proxy::ProxySettings;
use crate::recorder::{self, Recorder};
use crate::stats::SessionStats;
use crate::{metrics, paths};

/// How many threads a command's runtime has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// A headless probe run. It is I/O-bound, and one core sends tens of thousands of attempts
    /// a second, far past any provider's rate limit; the work-stealing scheduler only added
    /// cross-thread wake-ups (a futex call and a context switch for nearly every event): about a
    /// quarter of the CPU per attempt (README "Performance"). The event log's file writes run on
    /// the blocking pool (see `eventlog::writer`).
    One,
    /// The dashboard (its drawing blocks on the terminal, and probing must go on meanwhile), a
    /// replay and the simulator: tokio's worker pool.
    Workers,
}

/// Run a command's future on a new runtime. Spawned rather than run in `block_on` directly, so
/// that a panic in the session ends as one error line and exit status 1 instead of unwinding out
/// of `block_on`.
///
/// # Errors
/// The command's own error; the runtime cannot start; the command panicked.
pub fn block_on<T, F>(threads: Threads, command: F) -> Result<T, CliError>
where
    F: Future<Output = Result<T, CliError>> + Send + 'static,
    T: Send + 'static,
{
    let runtime = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Threads::Workers => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .map_err(CliError::Runtime)?;
    let result = runtime.block_on(async move {
        tokio::spawn(command)
            .await
            .unwrap_or_else(|error| Err(CliError::Panicked(error)))
    });
    // Dropping a runtime waits for every blocking task, and a write to a sink whose reader stopped
    // reading (an event log on a stalled pipe) never ends: the command is over, so leave it.
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    result
}

/// How long the end of a command waits for blocking work still running (log writes).
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a probing command runs, checked before anything is sent.
pub struct Plan {
    pub profiles: Profiles,
    pub engine: EngineConfig,
    /// Each provider's thresholds (`[thresholds]` with `[providers.NAME.thresholds]` over it).
    pub thresholds: ThresholdSet,
    /// The config file's `[keys]`, checked only by the commands that have a screen.
    keys: toml::Table,
    /// The config file, as messages name it.
    origin: String,
    /// `watch --proxy`: the pass-through to serve beside the probes.
    pub proxy: Option<ProxySettings>,
}

impl Plan {
    /// The dashboard's key bindings: the defaults with the config file's `[keys]` over them.
    ///
    /// # Errors
    /// An unknown action, a key that names no key, a key bound to two actions.
    pub fn key_bindings(&self) -> Result<KeyBindings, CliError> {
        bindings(&self.keys, &self.origin)
    }
}

/// Load profiles and the config file, resolve the flags and read the keys from the environment.
/// With `proxy` (`watch --proxy ADDR`), the pass-through's settings too, and no probes is not an
/// error: the session has the user's own traffic to show.
///
/// # Errors
/// A usage, config, profile or key error, naming the file and line, the flag or the variable.
pub fn plan(args: &RunArgs, proxy: Option<SocketAddr>) -> Result<Plan, CliError> {
    let profiles = load_profiles()?;
    let (file, path) = config::load(args.config.as_deref())?;
    let origin = origin(path.as_deref());
    let overrides = Overrides {
        provider: args.provider.clone(),
        endpoint: args.endpoint.clone(),
        api_key_env: args.api_key_env.clone(),
        targets: args.targets.clone(),
        once: args.once,
        duration: args.duration,
        every: args.every,
        concurrency: args.concurrency,
        rate: args.rate,
        timeout: args.timeout,
        probes_optional: proxy.is_some(),
    };
    let engine = config::resolve(&file, &origin, &overrides, &profiles, |var| {
        std::env::var(var).ok()
    })?;
    let thresholds = config::resolve_thresholds(&file, &origin, &engine.providers, &profiles)?;
    let proxy = proxy
        .map(|addr| {
            let listen = crate::cmd::proxy::Listen {
                addr,
                allow_remote: false,
                guard: false,
            };
            crate::cmd::proxy::settings(&file, &origin, &profiles, listen)
        })
        .transpose()?;
    Ok(Plan {
        profiles,
        engine,
        thresholds,
        keys: file.keys,
        origin,
        proxy,
    })
}

/// The built-in profiles with the user's overrides from the config dir.
///
/// # Errors
/// A profile file that cannot be read or is not valid.
pub fn load_profiles() -> Result<Profiles, CliError> {
    Ok(provider::load_profiles(paths::profiles_dir().as_deref())?)
}

/// Key bindings for a screen that has no probe config of its own (`demo`, `replay`): the
/// defaults with the `[keys]` of the user's config file (in the config dir), as `watch` uses.
///
/// # Errors
/// The config file cannot be read or parsed, or its `[keys]` are not valid.
pub fn user_key_bindings() -> Result<KeyBindings, CliError> {
    let (file, path) = config::load(None)?;
    bindings(&file.keys, &origin(path.as_deref()))
}

fn bindings(keys: &toml::Table, origin: &str) -> Result<KeyBindings, CliError> {
    KeyBindings::with_overrides(keys).map_err(|source| CliError::Keys {
        origin: origin.to_owned(),
        source,
    })
}

fn origin(path: Option<&Path>) -> String {
    path.map_or_else(
        || "command line (no config file)".to_owned(),
        |path| format!("config file {}", path.display()),
    )
}

/// A session's statistics, where its records go (the event log, the metrics endpoint), and the
/// wall clock its sources and its own timestamps (start, end) read.
pub struct Session {
    pub stats: SessionStats,
    pub recorder: Recorder,
    pub clock: Clock,
}

impl Session {
    /// Open the event log (unless `--no-log`) and serve metrics (with `--metrics-addr`), before
    /// any money is spent, so a bad path or address stops the session early; then record `start`
    /// (a `session_start` record) and fold it into fresh statistics.
    ///
    /// # Errors
    /// The log file cannot be created or the metrics address cannot be bound.
    pub async fn open(
        start: Fact,
        outputs: &OutputArgs,
        policy: LogPolicy,
        clock: Clock,
    ) -> Result<Self, CliError> {
        let started_at = start.at();
        let log = match eventlog::choose_path(outputs.log.clone(), outputs.no_log, started_at) {
            Some(path) => {
                // A file the user named rotates, but only omniscope's own folder is pruned.
                let retention = outputs.log.is_none().then_some(policy.retention);
                let parts = Parts {
                    rotation: policy.rotation,
                    retention,
                };
                Some(EventLog::create_with(&path, Some(parts))?)
            }
            None => None,
        };
        let metrics = match outputs.metrics_addr {
            Some(addr) => {
                let (registry, metrics) = metrics::new_registry();
                let server =
                    metrics::serve(addr, Arc::new(registry), outputs.metrics_allow_remote).await?;
                crate::note!("metrics at http://{}/metrics", server.local_addr);
                // Dropping the handle detaches the server task: it serves until the process ends.
                drop(server);
                Some(metrics)
            }
            None => None,
        };
        let mut recorder = Recorder::new(log, metrics);
        recorder.record(&start).await;
        let mut stats = SessionStats::new(started_at);
        stats.apply(start);
        Ok(Self {
            stats,
            recorder,
            clock,
        })
    }

    /// A session of the probe engine: its `session_start` names the configured providers and the
    /// run's settings.
    ///
    /// # Errors
    /// As [`Session::open`].
    pub async fn for_engine(
        engine: &EngineConfig,
        profiles: &Profiles,
        outputs: &OutputArgs,
    ) -> Result<Self, CliError> {
        let clock = Clock::real();
        let start = recorder::session_start(clock.now(), engine, profiles);
        Self::open(start, outputs, engine.log, clock).await
    }

    /// Start the probe engine as a source of facts, on the session's clock: its events arrive
    /// on the returned channel, which ends when the engine has stopped.
    ///
    /// # Errors
    /// The HTTP client cannot be built, or a probe names a provider without a profile.
    pub fn spawn_engine(
        &self,
        config: EngineConfig,
        profiles: &Profiles,
    ) -> Result<(EngineHandle, mpsc::Receiver<Event>), CliError> {
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let handle = Engine::spawn_with_clock(config, profiles, events_tx, self.clock.clone())?;
        Ok((handle, events))
    }
}

/// Ctrl-C, or SIGTERM on Unix, each arriving as one stop request on the returned channel.
/// Installed once, so a signal between two passes of a loop is not lost; the first stops
/// cleanly, a second may stop at once.
#[must_use]
pub fn stop_signals() -> mpsc::Receiver<()> {
    let (stops_tx, stops) = mpsc::channel(4);
    tokio::spawn(forward_stop_signals(stops_tx));
    stops
}

async fn forward_stop_signals(stops: mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        loop {
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                result = tokio::signal::ctrl_c() => if result.is_err() { return },
                () = terminated => {}
            }
            if stops.send(()).await.is_err() {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    {
        while tokio::signal::ctrl_c().await.is_ok() {
            if stops.send(()).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::builtin_profiles;

    fn two_providers() -> EngineConfig {
        let file = config::parse(
            "[providers.alterlab]\nconcurrency = 7\n\n[[probes]]\nprovider = \"omniscrape\"\ntargets = [\"https://a.example/\"]\n\n[[probes]]\nprovider = \"alterlab\"\ntargets = [\"https://b.example/\"]\n",
        )
        .unwrap();
        config::resolve(
            &file,
            "test",
            &Overrides::default(),
            &builtin_profiles(),
            |_| Some("sk_test_session".to_owned()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_session_starts_from_its_logged_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.ndjson");
        let outputs = OutputArgs {
            log: Some(path.clone()),
            ..OutputArgs::default()
        };
        let engine = two_providers();
        let session = Session::for_engine(&engine, &builtin_profiles(), &outputs)
            .await
            .unwrap();
        let names: Vec<_> = session.stats.providers.iter().map(|p| &p.name).collect();
        assert_eq!(names, ["omniscrape", "alterlab"]);
        let alterlab = session.stats.provider("alterlab").unwrap();
        assert_eq!(alterlab.concurrency.limit, Some(7));
        let started_at = session.stats.started_at;
        assert_eq!(
            session.recorder.finish(started_at).await.as_deref(),
            Some(path.as_path())
        );

        // The log's first record, folded as a replay folds it, gives the same registration.
        let read = eventlog::read_path(&path).unwrap();
        let mut replayed = SessionStats::new(chrono::DateTime::UNIX_EPOCH);
        replayed.apply(read.facts[0].clone());
        assert_eq!(replayed.started_at, started_at);
        let replayed_names: Vec<_> = replayed.providers.iter().map(|p| &p.name).collect();
        assert_eq!(replayed_names, names);
        assert_eq!(
            replayed.provider("alterlab").unwrap().concurrency.limit,
            Some(7)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sk_test_session"), "the key is never logged");
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_created_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let outputs = OutputArgs {
            log: Some(blocker.join("under-a-file.ndjson")),
            ..OutputArgs::default()
        };
        let error = Session::for_engine(&two_providers(), &builtin_profiles(), &outputs)
            .await
            .err()
            .unwrap();
        assert_eq!(error.exit_status(), 2, "{error}");
    }

    async fn a_buggy_command() -> Result<(), CliError> {
        panic!("a bug in the command")
    }

    #[test]
    fn a_command_that_panics_ends_in_an_error_with_status_1() {
        for threads in [Threads::One, Threads::Workers] {
            let error = block_on(threads, a_buggy_command()).unwrap_err();
            assert!(matches!(error, CliError::Panicked(_)), "{error}");
            assert_eq!(error.exit_status(), 1);
        }
        assert_eq!(block_on(Threads::One, async { Ok(5) }).unwrap(), 5);
    }
}
