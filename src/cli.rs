//! Command-line interface (clap).

use clap::{Parser, Subcommand};

/// A terminal dashboard for the health of web-scraping APIs: status codes, errors, rate limits,
/// concurrency, billing and latency, live.
#[derive(Debug, Parser)]
#[command(name = "omniscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every loaded provider profile: endpoint, auth style, and the error codes it knows.
    Providers(ProvidersArgs),
    /// Replay a recorded event log (omniscope.event.v1): headless, the same report `run` wrote.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    /// Print the profiles as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The event log (NDJSON, omniscope.event.v1).
    pub file: std::path::PathBuf,
    /// No dashboard: fold the log and print the summary (and write --report).
    #[arg(long)]
    pub headless: bool,
    /// Write the JSON report (omniscope.report.v1) of the recorded session to this file.
    #[arg(long, value_name = "FILE.json", requires = "headless")]
    pub report: Option<std::path::PathBuf>,
    /// Playback speed of the interactive replay: 1, 10 or max.
    #[arg(long, default_value = "1")]
    pub speed: crate::eventlog::replay::Speed,
}
