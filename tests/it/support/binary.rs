//! The real `omniscope` binary, run as a user would: a clean environment with only PATH, the
//! config and data dirs pointed at the test's own folder, and the key in `TEST_SCRAPE_KEY`.

#![allow(dead_code)] // each test file uses a different part

use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_omniscope");

pub fn command(dir: &Path, key: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OMNISCOPE_CONFIG_DIR", dir)
        .env("OMNISCOPE_DATA_DIR", dir)
        .env("TEST_SCRAPE_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Run to completion off the async runtime (the scripted server shares it).
pub async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
