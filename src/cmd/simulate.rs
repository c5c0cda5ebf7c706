//! `omniscope simulate`: the built-in simulator, served until Ctrl-C or SIGTERM.

use crate::cli::SimulateArgs;
use crate::cmd::CliError;
use crate::session::{self, Threads};
use crate::simulator::{self, Scenario, SimConfig};

/// Entry point for `omniscope simulate`.
///
/// # Errors
/// A bad scenario or a refused address (exit 2); the server cannot start or fails (exit 1).
pub fn main(args: &SimulateArgs) -> Result<(), CliError> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(CliError::RemoteRefused { addr: args.listen });
    }
    let scenario = Scenario::load(&args.scenario)?;
    let (listen, seed) = (args.listen, args.seed);
    session::block_on(Threads::Workers, async move {
        let name = scenario.name.clone();
        let sim = simulator::start(SimConfig::new(scenario).listen(listen).seed(seed)).await?;
        crate::stdout::print(&format!(
            "{}\n",
            simulator::banner(&sim.base_url(), &name, seed)
        ));
        let mut stops = session::stop_signals();
        sim.serve_until(async move {
            stops.recv().await;
        })
        .await
        .map_err(CliError::SimulatorServe)
    })
}
