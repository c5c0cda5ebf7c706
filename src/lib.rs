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
//!
//! Who sends what to whom while a session runs:
//!
//! ```text
//!  providers (HTTP) <-- probe::Engine --Event::Fact / Event::Notice--> (bounded mpsc)
//!                        ^                         |
//!         EngineCommand  |                         v
//!   (try_send, never     |   run:   Recorder::record(&fact) -> eventlog writer, metrics
//!    awaited)            |          SessionStats::apply(fact)     (the one fold)
//!                        |   watch: Recorder::record_and_forward -> tui::run_loop (LiveFeed)
//!                        |            -> App::update(Msg::Fact | Msg::Notice) -> stats.apply
//!                        +--- Cmd <-- App::update(Msg::Key) <-- terminal keys
//!   replay: eventlog::replay (a log, its timing) --ReplayItem--> tui::run_loop (ReplayFeed)
//!           replay --headless: eventlog::reader::fold -> SessionStats::apply
//! ```
//!
//! Layers, lowest first; a module imports only from its own layer or below:
//!
//! 1. `timestamp`, `paths`, `stdout`, `clock`, `redact`, `output_file`: leaf helpers
//! 2. `outcome` (the outcome model, refund audit), `provider` (profiles, classification)
//! 3. `policy` (retry and escalation decisions), `event` (Fact, Notice, EngineCommand, Rate)
//! 4. `config`, `stats` (the one fold), `report`, `metrics`, `eventlog` (writer, reader, replay)
//! 5. `probe` (the engine), `app` (state, update), `ui` (panes), `simulator`
//! 6. `tui` (the event loop), `recorder` (log + metrics of a live session)
//! 7. `session`, `cmd`, `cli`, `main`: setup and commands

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
pub mod proxy;
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

/// A fixed session for the tests of every layer (test builds only).
#[cfg(test)]
pub(crate) mod fixture;
