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
    /// Serve the built-in simulator (OmniScrape and AlterLab on one port) until Ctrl-C.
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    /// Print the profiles as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on. Non-loopback addresses need --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: std::net::SocketAddr,
    /// A built-in scenario (healthy, rate-limited, degraded, quota-exhausted, chaos, bench, demo)
    /// or a path to a scenario TOML file.
    #[arg(long, default_value = "healthy")]
    pub scenario: String,
    /// Seed for the scenario's random draws: the same seed replays the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
}
