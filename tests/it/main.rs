//! The integration tests, one binary: each module below was its own test binary, and each of
//! those linked the whole crate again. Real loopback servers and the real `omniscope` binary.

mod support {
    pub mod binary;
    pub mod scripted;
}

mod alterlab_sdk;
mod classify_props;
mod contracts;
mod e2e_tmux;
mod engine;
mod eventlog_files;
mod hostile;
mod metrics_http;
mod metrics_limits;
mod providers;
mod proxy;
mod replay_cli;
mod run_cli;
mod sdk;
mod simulator;
mod sinks;
mod usage_ranges;
