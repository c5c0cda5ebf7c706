use std::process::ExitCode;

use clap::Parser;
use omniscope::cli::Cli;

// Every attempt allocates (request, response, outcome, events) from several runtime threads;
// glibc's malloc showed ~15 % of a load run's time, much of it arena lock contention.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match omniscope::cmd::dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            omniscope::note!("{error}");
            error.exit_code()
        }
    }
}
