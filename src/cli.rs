//! Command-line interface (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Rate;

/// A terminal dashboard for the health of web-scraping APIs: status codes, errors, rate limits,
/// concurrency, billing and latency, live.
#[derive(Debug, Parser)]
#[command(name = "omniscope", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a subcommand: the dashboard (`watch`), with these probe options.
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every loaded provider profile: endpoint, auth style, and the error codes it knows.
    Providers(ProvidersArgs),
    /// Probe headless: `--once` or for `--duration`, then print a summary per provider and
    /// optionally write a JSON report. Exit 0 when the run completed, 2 on a usage, config or key
    /// error, 3 when a threshold from the config was broken.
    Run(Box<RunArgs>),
    /// Replay a recorded event log (omniscope.event.v2): headless, the same report `run` wrote;
    /// otherwise played back at --speed.
    Replay(ReplayArgs),
    /// Serve the built-in simulator (OmniScrape and AlterLab on their own paths, every other
    /// provider under /<name>/, on one port) until Ctrl-C.
    Simulate(SimulateArgs),
    /// The live dashboard over the configured probes (the default without a subcommand); same
    /// probe options as `run`.
    Watch(Box<WatchArgs>),
    /// The dashboard over the built-in simulator, started in-process on an ephemeral port: four
    /// providers by default (--providers picks), no account, no network.
    Demo(DemoArgs),
    /// A pass-through for your own scraper's traffic: point its base URL at
    /// http://LISTEN/<provider> and every call is forwarded unchanged, classified and audited
    /// against the contract, at no extra cost. Headless until Ctrl-C or SIGTERM, then the summary
    /// per provider and the report.
    Proxy(ProxyArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on. Non-loopback addresses need --allow-remote.
    #[arg(long, default_value = crate::proxy::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Config file (default: config.toml in the config dir, when it exists): providers' endpoint
    /// overrides and plan concurrency, body cap. No keys: they come from the client's requests.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the JSON report (schema omniscope.report.v1) to this file when stopped.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Allow listening on a non-loopback address (the proxy forwards API keys: think twice).
    #[arg(long)]
    pub allow_remote: bool,
    /// While a provider is paused by an account error or held by Retry-After, answer the client
    /// locally (the provider's own status, a JSON body saying why) instead of forwarding.
    #[arg(long)]
    pub guard: bool,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Simulator scenario (a built-in name or a TOML file).
    #[arg(long, default_value = "demo", value_name = "NAME|FILE")]
    pub scenario: String,
    /// Seed for the simulator's draws (same seed, same show).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The providers to show, comma-separated (any built-in profile; each probes its simulated
    /// dialect).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "omniscrape,alterlab,scrapingbee,zenrows",
        value_name = "NAME,…"
    )]
    pub providers: Vec<String>,
    /// Write the JSON report (schema omniscope.report.v1) to this file on quit.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// Where a probing session's records go (`run`, `watch`, `demo`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Event log file (NDJSON, omniscope.event.v2); default: a session file under the data dir.
    #[arg(long, value_name = "FILE", conflicts_with = "no_log")]
    pub log: Option<PathBuf>,
    /// Write no event log.
    #[arg(long)]
    pub no_log: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); off by default.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Serve metrics on a non-loopback --metrics-addr (they name providers, targets and spend).
    #[arg(long, requires = "metrics_addr")]
    pub metrics_allow_remote: bool,
}

#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    /// Print the profiles as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Options shared by every mode that probes (`run`, and later the dashboard).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Config file (default: config.toml in the config dir, when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Provider profile for a quick probe from flags (omniscrape, alterlab, …).
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Base URL override for --provider (scheme and host).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Environment variable holding the API key (default: NAME_API_KEY, e.g. OMNISCRAPE_API_KEY).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Target URL to scrape; repeat for several (replaces the config's probes).
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// Probe each target once (with its retries), then exit. Targets start in the order given,
    /// up to the concurrency limit at a time.
    #[arg(long, conflicts_with = "duration")]
    pub once: bool,
    /// Stop after this long (10m, 1h; at most 366 days); without it, run until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_run_duration)]
    pub duration: Option<Duration>,
    /// Time between two probes of one target (at most 24h); 0s = back to back, keeping
    /// --concurrency in flight.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_probe_interval)]
    pub every: Option<Duration>,
    /// Requests in flight at once, per provider (1 to 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::config::MAX_CONCURRENCY)))]
    pub concurrency: Option<u32>,
    /// Client-side request rate per provider: N/s, N/min, N/h (one a day to 1000000/s) or
    /// unlimited.
    #[arg(long, value_name = "N/s|unlimited")]
    pub rate: Option<Rate>,
    /// Total timeout of one request (above zero, at most 1h).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_request_timeout)]
    pub timeout: Option<Duration>,
    /// Write the JSON report (schema omniscope.report.v1) to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// The dashboard's options: the probes' (as `run`), and the pass-through for the user's own
/// traffic.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub probes: RunArgs,
    /// Also show your own scraper's traffic: serve the pass-through proxy on this address (as
    /// `omniscope proxy --listen`; loopback only) and point the scraper's base URL at
    /// http://ADDR/<provider>. Probes are optional then.
    #[arg(long, value_name = "ADDR")]
    pub proxy: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The event log (NDJSON, omniscope.event.v2, plain or .gz): a file, several files, or a
    /// folder, read in order as one log (a rotated session's parts).
    #[arg(required = true, num_args = 1.., value_name = "FILE|DIR")]
    pub files: Vec<std::path::PathBuf>,
    /// No dashboard: fold the log and print the summary (and write --report).
    #[arg(long)]
    pub headless: bool,
    /// The session to replay, from 1, when the log holds several (`--log FILE` appends; a folder
    /// of logs holds one session per log).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub session: Option<u32>,
    /// Write the JSON report (omniscope.report.v1) of the recorded session to this file.
    #[arg(long, value_name = "FILE.json", requires = "headless")]
    pub report: Option<std::path::PathBuf>,
    /// Playback speed (without --headless): a whole factor of the recorded timing from 1 to 1000
    /// (3 or 3x plays three times as fast), or max.
    #[arg(long, value_name = "N|max", default_value = "1")]
    pub speed: crate::eventlog::replay::Speed,
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
