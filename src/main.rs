use std::process::ExitCode;

use clap::Parser;
use omniscope::cli::{Cli, Command};
use omniscope::{paths, provider, providers_cmd, replay, run};

// Every attempt allocates (request, response, outcome, events) from several runtime threads;
// glibc's malloc showed ~15 % of a load run's time, much of it arena lock contention.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => omniscope::dashboard::watch(&cli.watch),
        Some(Command::Watch(args)) => omniscope::dashboard::watch(&args),
        Some(Command::Demo(args)) => omniscope::dashboard::demo(&args),
        Some(Command::Providers(args)) => {
            let profiles = match provider::load_profiles(paths::profiles_dir().as_deref()) {
                Ok(profiles) => profiles,
                Err(error) => {
                    omniscope::say!("omniscope: {error}");
                    return ExitCode::from(2);
                }
            };
            if args.json {
                match providers_cmd::render_json(&profiles) {
                    Ok(json) => {
                        omniscope::stdout::print(&format!("{json}\n"));
                    }
                    Err(error) => {
                        omniscope::say!("omniscope: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                omniscope::stdout::print(&providers_cmd::render_text(&profiles));
            }
            ExitCode::SUCCESS
        }
        Some(Command::Run(args)) => run::main(&args),
        Some(Command::Replay(args)) => replay::main(&args),
        Some(Command::Simulate(args)) => omniscope::simulator::run_command(&args),
    }
}
