//! The one error a command ends with. Each layer has its own `thiserror` enum (config, profiles,
//! key bindings, event log, metrics, simulator, engine); this wraps them and knows the exit status
//! each one means (README "Exit status"), so `main` prints an error once and exits with its code.

use std::process::ExitCode;

use crate::app::BindingError;
use crate::config::ConfigError;
use crate::eventlog::LogError;
use crate::eventlog::reader::ReadError;
use crate::metrics::ServeError;
use crate::output_file::OutputError;
use crate::probe::EngineError;
use crate::provider::ProfileError;
use crate::report::Stops;
use crate::simulator::{ScenarioError, SimError};

// Success (0) is `Ok`: a run that completed, whatever it found.
/// Something failed that the user did not get wrong (the runtime, the terminal, a write after
/// the run): Rust's usual failure status.
const EXIT_FAILURE: u8 = 1;
/// A usage, config or key error.
const EXIT_USAGE: u8 = 2;
/// A threshold from the config was broken.
const EXIT_THRESHOLD: u8 = 3;
/// A provider was stopped by an account error (revoked key, credits or quota used up).
const EXIT_ACCOUNT_STOP: u8 = 4;
/// A provider could never be reached (every attempt a transport failure).
const EXIT_UNREACHABLE: u8 = 5;

/// Why a command stopped, in words the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    // Usage errors (exit 2): found before anything is sent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Profiles(#[from] ProfileError),
    /// `[keys]` of the config file named by `origin`.
    #[error("{origin}: {source}")]
    Keys {
        origin: String,
        source: BindingError,
    },
    #[error(transparent)]
    EventLogOpen(#[from] LogError),
    #[error(transparent)]
    Metrics(#[from] ServeError),
    /// The report's path is a directory, its folder takes no new file, a FIFO has no reader.
    #[error("cannot write report file {0}")]
    ReportOpen(OutputError),
    #[error(transparent)]
    EventLogRead(#[from] ReadError),
    /// A log holding several sessions, replayed without `--session N` (or with one it lacks).
    #[error("{}", session_choice(.path, *.asked, .sessions))]
    SessionChoice {
        path: std::path::PathBuf,
        /// The `--session N` given, if any.
        asked: Option<u32>,
        /// When each session of the file started.
        sessions: Vec<chrono::DateTime<chrono::Utc>>,
    },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(
        "{addr} is not a loopback address; the simulator accepts any key, so pass --allow-remote to expose it anyway"
    )]
    RemoteRefused { addr: std::net::SocketAddr },
    /// `omniscope proxy` could not start: a non-loopback address without --allow-remote or an
    /// address that cannot be bound (exit 2); the HTTP client failing to build (exit 1).
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),

    // Failures (exit 1).
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the session stopped unexpectedly: {0}")]
    Panicked(tokio::task::JoinError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Simulator(SimError),
    #[error("the simulator failed: {0}")]
    SimulatorServe(std::io::Error),
    /// The terminal: none to draw on, or it failed while drawing or reading.
    #[error("{0}")]
    Terminal(anyhow::Error),
    #[error("cannot write report file {0}")]
    ReportWrite(OutputError),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },

    /// The run completed and broke a threshold from the config (exit 3): one line each.
    #[error("{}", broken_lines(.0))]
    ThresholdsBroken(Vec<String>),

    /// The run completed and left a provider stopped by its account (exit 4) or never reached
    /// (exit 5); thresholds broken too are said, the stop decides the status (README "Exit status").
    #[error("{}", stop_lines(.stops, .thresholds))]
    Stopped {
        stops: Stops,
        thresholds: Vec<String>,
    },
}

impl CliError {
    /// The exit status this error ends the process with.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// [`Self::exit_code`] as a number (an `ExitCode` cannot be compared).
    #[must_use]
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::Profiles(_)
            | Self::Keys { .. }
            | Self::EventLogOpen(_)
            | Self::Metrics(_)
            | Self::ReportOpen(_)
            | Self::EventLogRead(_)
            | Self::SessionChoice { .. }
            | Self::Scenario(_)
            | Self::RemoteRefused { .. } => EXIT_USAGE,
            Self::Proxy(error) => {
                if matches!(error, crate::proxy::ProxyError::Client(_)) {
                    EXIT_FAILURE
                } else {
                    EXIT_USAGE
                }
            }
            Self::Runtime(_)
            | Self::Panicked(_)
            | Self::Engine(_)
            | Self::Simulator(_)
            | Self::SimulatorServe(_)
            | Self::Terminal(_)
            | Self::ReportWrite(_)
            | Self::Encode { .. } => EXIT_FAILURE,
            Self::ThresholdsBroken(_) => EXIT_THRESHOLD,
            Self::Stopped { stops, .. } => {
                if stops.account.is_empty() {
                    EXIT_UNREACHABLE
                } else {
                    EXIT_ACCOUNT_STOP
                }
            }
        }
    }
}

impl From<SimError> for CliError {
    /// A scenario that does not load is the user's to fix (exit 2); a port that cannot be bound
    /// or a setup that fails is not.
    fn from(error: SimError) -> Self {
        match error {
            SimError::Scenario(error) => Self::Scenario(error),
            other => Self::Simulator(other),
        }
    }
}

/// `LOG holds 2 sessions (1: started 2026-11-29T21:00:00.000Z, 2: started …); choose one with
/// --session N`, or `LOG has no session 3: …` for a choice it lacks.
fn session_choice(
    path: &std::path::Path,
    asked: Option<u32>,
    sessions: &[chrono::DateTime<chrono::Utc>],
) -> String {
    let listed = sessions
        .iter()
        .enumerate()
        .map(|(index, at)| {
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            format!("{}: started {at}", index + 1)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let holds = match sessions.len() {
        1 => format!("1 session ({listed})"),
        count => format!("{count} sessions ({listed})"),
    };
    match asked {
        Some(n) => format!("{} has no session {n}: it holds {holds}", path.display()),
        None => format!(
            "{} holds {holds}; choose one with --session N",
            path.display()
        ),
    }
}

/// `threshold broken: …`, one line per threshold (each line after the first repeats the prefix
/// `main` writes before the first).
fn broken_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| format!("threshold broken: {line}"))
        .collect::<Vec<_>>()
        .join("\nomniscope: ")
}

/// The stops, then any broken thresholds, one line each.
fn stop_lines(stops: &Stops, thresholds: &[String]) -> String {
    let mut lines: Vec<String> = stops
        .account
        .iter()
        .chain(&stops.unreachable)
        .cloned()
        .collect();
    if !thresholds.is_empty() {
        lines.push(broken_lines(thresholds));
    }
    lines.join("\nomniscope: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_keeps_its_documented_exit_status() {
        let usage = CliError::RemoteRefused {
            addr: "0.0.0.0:1".parse().unwrap(),
        };
        assert_eq!(usage.exit_status(), 2);
        let failure = CliError::Runtime(std::io::Error::other("no threads"));
        assert_eq!(failure.exit_status(), 1);
        let broken = CliError::ThresholdsBroken(vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(broken.exit_status(), 3);
        assert_eq!(
            broken.to_string(),
            "threshold broken: a\nomniscope: threshold broken: b"
        );
    }

    #[test]
    fn an_account_stop_outranks_an_unreachable_provider_which_outranks_thresholds() {
        let both = CliError::Stopped {
            stops: Stops {
                account: vec!["alterlab: stopped".to_owned()],
                unreachable: vec!["omniscrape: never reached".to_owned()],
            },
            thresholds: vec!["t".to_owned()],
        };
        assert_eq!(both.exit_status(), 4);
        assert_eq!(
            both.to_string(),
            "alterlab: stopped\nomniscope: omniscrape: never reached\nomniscope: threshold broken: t"
        );
        let unreachable = CliError::Stopped {
            stops: Stops {
                account: Vec::new(),
                unreachable: vec!["omniscrape: never reached".to_owned()],
            },
            thresholds: vec!["t".to_owned()],
        };
        assert_eq!(unreachable.exit_status(), 5);
    }
}
