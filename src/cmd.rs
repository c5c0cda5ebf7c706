//! The commands, one file each. Each is a function from its parsed arguments to
//! `Result<(), CliError>`; the setup they share (runtime, plan, session outputs, engine, stop
//! signals) lives in [`crate::session`], and `main` prints an error once, with its exit status.

mod error;
pub mod providers;
pub mod proxy;
pub mod replay;
pub mod run;
pub mod simulate;
pub mod watch;

pub use error::CliError;

use crate::cli::{Cli, Command};

/// Run the command the user asked for (the dashboard without one).
///
/// # Errors
/// What stopped the command; [`CliError::exit_code`] is the process's exit status.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        None => watch::watch(&cli.watch),
        Some(Command::Watch(args)) => watch::watch(&args),
        Some(Command::Demo(args)) => watch::demo(&args),
        Some(Command::Providers(args)) => providers::main(&args),
        Some(Command::Run(args)) => run::main(&args),
        Some(Command::Replay(args)) => replay::main(&args),
        Some(Command::Simulate(args)) => simulate::main(&args),
        Some(Command::Proxy(args)) => proxy::main(&args),
    }
}
