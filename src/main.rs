use std::process::ExitCode;

use clap::Parser;
use omniscope::cli::{Cli, Command};
use omniscope::{paths, provider, providers_cmd, replay, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Providers(args) => {
            let profiles = match provider::load_profiles(paths::profiles_dir().as_deref()) {
                Ok(profiles) => profiles,
                Err(error) => {
                    eprintln!("omniscope: {error}");
                    return ExitCode::from(2);
                }
            };
            if args.json {
                match providers_cmd::render_json(&profiles) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("omniscope: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", providers_cmd::render_text(&profiles));
            }
            ExitCode::SUCCESS
        }
        Command::Run(args) => run::main(&args),
        Command::Replay(args) => replay::main(&args),
        Command::Simulate(args) => omniscope::simulator::run_command(&args),
    }
}
