//! The built-in simulator: a real HTTP server (axum) that answers like OmniScrape and AlterLab, as
//! their contracts (`../shared/contracts/`) describe, so omniscope works with no account and no
//! network. `omniscope simulate` serves it; `omniscope demo` and the tests start it in-process.
//!
//! One server speaks for every built-in profile: OmniScrape and AlterLab on their own paths
//! (`/v1/...`, `/api/v1/...`), so their `base_url` can point at it unchanged, and every other
//! provider under `/<name>/` + its own paths ([`endpoint_for`]). A scenario drives all of them.
//! Codes, statuses, messages, header names and refund rules come from the profiles, so the
//! simulator and the client cannot drift apart.
//!
//! # Library use
//! ```no_run
//! # async fn demo() -> Result<(), omniscope::simulator::SimError> {
//! use omniscope::simulator::{Scenario, SimConfig, start};
//! let scenario = Scenario::load("demo")?;
//! let sim = start(SimConfig::new(scenario).seed(7)).await?;
//! println!("{}", sim.base_url()); // http://127.0.0.1:PORT
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Forcing an outcome per request
//! Scenarios draw outcomes at random (seeded). A request can instead ask for one, by fault name:
//! - header `X-Sim-Fault: NAME`, or
//! - a target URL on the host `fault.test`: `{"url": "https://fault.test/NAME"}` (works from a
//!   plain omniscope probe config, which cannot add headers).
//!
//! `NAME` is one of: `success`; `target:NNN` (the API succeeds, the target answered NNN);
//! an error code of that provider's contract (`BLOCKED_BY_ANTIBOT`, `CONCURRENCY_LIMIT`, …); an
//! error status of its contract without a code (`502`, `503`); `async` (AlterLab answers 202 with
//! a job); `chaos:html`, `chaos:truncated`, `chaos:huge`, `chaos:stall`, `chaos:drop`,
//! `chaos:bad_headers`. A name the provider's contract lacks gets a 400 saying so.
//!
//! A failure is cured when the request carries the change the profile's escalation rule names
//! (a 502 with `mode: js_rendering` for OmniScrape; `CHALLENGE_DETECTED` with `mode: js`,
//! `BLOCKED_BY_ANTIBOT` with a `max_tier` above the first for AlterLab): it then succeeds.
//!
//! Also: `X-Sim-Latency-Ms: N` replaces the drawn latency; `X-Sim-Refund: break` makes a failure
//! the contract says is free get charged anyway (the scenario's `refund_violation` does the same
//! at random), so the refund audit has something to find.

mod dialect;
mod fault;
mod profiled;
mod scenario;
mod server;
mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::{Chaos, FaultName};
pub use scenario::{Latency, ProviderScenario, Scenario, ScenarioError, Wave, builtin_names};

use crate::clock::Clock;
use crate::provider::builtin_profiles;
use server::{ProviderSim, Shared};

/// Header that forces a fault by name.
pub const FAULT_HEADER: &str = "x-sim-fault";
/// Target host whose path names the fault: `https://fault.test/BLOCKED_BY_ANTIBOT`.
pub const FAULT_HOST: &str = "fault.test";
/// Header that sets the latency in milliseconds.
pub const LATENCY_HEADER: &str = "x-sim-latency-ms";
/// Header that, set to `break`, charges a failure the contract says is free.
pub const REFUND_HEADER: &str = "x-sim-refund";
/// `omniscope simulate`'s default address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8787);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator setup failed: {0}")]
    Setup(#[from] server::RouteError),
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    pub scenario: Scenario,
    pub seed: u64,
    pub clock: Clock,
}

impl SimConfig {
    /// Loopback, an ephemeral port, seed 0, real time.
    #[must_use]
    pub fn new(scenario: Scenario) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            scenario,
            seed: 0,
            clock: Clock::real(),
        }
    }

    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    #[must_use]
    pub fn listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Use this clock (a [`Clock::manual`] one lets tests move time without sleeping).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// A simulator serving in the background; dropping it stops it too.
#[derive(Debug)]
pub struct RunningSimulator {
    addr: SocketAddr,
    clock: Clock,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSimulator {
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: every built-in profile's `base_url` can be set to this.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stop accepting, end stalled responses, and wait (up to 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    /// Serve until `signal` completes, then shut down.
    ///
    /// # Errors
    /// The server failed while serving.
    pub async fn serve_until(mut self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        tokio::select! {
            result = &mut task => return result.unwrap_or_else(|error| Err(std::io::Error::other(error))),
            () = signal => {}
        }
        let _ = self.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(result) => result.unwrap_or_else(|error| Err(std::io::Error::other(error))),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Validate the scenario, bind, and serve in a background task.
///
/// # Errors
/// An invalid scenario, or the address cannot be bound.
pub async fn start(config: SimConfig) -> Result<RunningSimulator, SimError> {
    let profiles = builtin_profiles();
    config.scenario.validate(&profiles)?;
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        seed: config.seed,
        seq: AtomicU64::new(0),
        clock: config.clock.clone(),
        shutdown: stopped.clone(),
    });
    let mut providers = Vec::new();
    let mut profiled = Vec::new();
    for profile in profiles.iter() {
        let section = config
            .scenario
            .providers
            .get(&profile.name)
            .cloned()
            .unwrap_or_default();
        let compiled = section
            .compile(profile)
            .map_err(|error| ScenarioError::Invalid {
                origin: config.scenario.name.clone(),
                provider: profile.name.clone(),
                message: error.to_string(),
            })?;
        match dialect::for_profile(&profile.name) {
            Some(dialect) => providers.push(Arc::new(ProviderSim::new(
                Arc::clone(&shared),
                profile.clone(),
                dialect,
                compiled,
            ))),
            // The providers without a hand-written dialect are served as their profiles
            // describe them, each under /<name>/, driven by the same scenario.
            None => profiled.push((profile.clone(), compiled)),
        }
    }
    let router = server::router(&providers)?.merge(profiled::router(profiled, &shared));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        // Small JSON answers: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
    });
    let mut stopped = stopped;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(RunningSimulator {
        addr,
        clock: config.clock,
        stop,
        task: Some(task),
    })
}

/// The base URL that reaches `provider`'s dialect on a simulator serving at `base_url`: the
/// server itself for the hand-written dialects (on the profile's own paths), `/<name>` below it
/// for the ones written from profiles.
#[must_use]
pub fn endpoint_for(base_url: &str, provider: &str) -> String {
    if dialect::for_profile(provider).is_some() {
        base_url.to_owned()
    } else {
        format!("{base_url}/{provider}")
    }
}

/// What `omniscope simulate` prints when it starts: where each provider is served and how to
/// point omniscope at it.
#[must_use]
pub fn banner(base_url: &str, scenario: &str, seed: u64) -> String {
    let profiles = builtin_profiles();
    let mut text =
        format!("omniscope simulator: scenario {scenario}, seed {seed}, serving on {base_url}\n");
    for name in dialect::known_profiles() {
        if let Some(profile) = profiles.get(name) {
            text.push_str(&format!(
                "  {:<11} POST {base_url}{}\n",
                profile.display_name, profile.endpoints.scrape
            ));
        }
    }
    // The dialects written from the profiles, each under /<name>/ (--endpoint {base_url}/<name>).
    for profile in profiles
        .iter()
        .filter(|profile| dialect::for_profile(&profile.name).is_none())
    {
        text.push_str(&format!(
            "  {:<11} {:<4} {base_url}/{}{}\n",
            profile.name,
            profile.endpoints.method.label(),
            profile.name,
            profile.endpoints.scrape
        ));
    }
    text.push_str(&format!(
        "Point omniscope at it: set endpoint = \"{base_url}\" under [providers.<name>] in the \
         config (or pass --endpoint {base_url}). OmniScrape takes any non-empty X-API-Key; AlterLab \
         keys must start sk_test_ or sk_live_.\n"
    ));
    text.push_str("Force an outcome per request with header X-Sim-Fault: NAME or url https://fault.test/NAME. Ctrl-C stops.");
    text
}

#[cfg(test)]
mod banner_tests {
    use super::banner;

    #[test]
    fn the_banner_names_the_config_key_the_config_accepts() {
        let text = banner("http://127.0.0.1:8787", "healthy", 7);
        // `endpoint` is the key `[providers.NAME]` takes; `base_url` is refused there.
        assert!(
            text.contains("endpoint = \"http://127.0.0.1:8787\" under [providers.<name>]"),
            "{text}"
        );
        assert!(!text.contains("base_url"), "{text}");
    }
}
