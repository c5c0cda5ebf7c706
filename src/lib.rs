//! omniscope: a terminal dashboard for the health of web-scraping APIs.
//!
//! The middle is pure (profiles, classification, policy, statistics, app state, rendering); the
//! edges do I/O (probe engine, terminal, simulator, files). See `../shared/STYLE.md`.
//!
//! Who calls whom at the top:
//!
//! ```text
//!  main ── cli::Cli ──> cmd::dispatch ──> cmd/{run, watch (+demo), replay, providers, simulate}
//!    ^                                        │ each: args in, Result<(), CliError> out
//!    └── CliError: said once, its exit status │
//!                                             v
//!  session: runtime (block_on) · plan (profiles, config, flags, keys) · Session::open (event log,
//!           metrics, session_start folded into stats) · spawn_engine · stop_signals
//! ```

#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod event;
pub mod eventlog;
pub mod metrics;
pub mod outcome;
pub mod output_file;
pub mod paths;
pub mod policy;
pub mod probe;
pub mod provider;
pub mod recorder;
pub mod redact;
pub mod report;
pub mod session;
pub mod simulator;
pub mod stats;
pub mod stdout;
pub mod timestamp;
pub mod tui;
pub mod ui;
