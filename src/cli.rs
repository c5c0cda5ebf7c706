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
}

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    /// Print the profiles as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}
