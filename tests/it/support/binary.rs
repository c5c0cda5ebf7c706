//! The real `omniscope` binary, run as a user would: a clean environment with only PATH, the
//! config and data dirs pointed at the test's own folder, and the key in `TEST_SCRAPE_KEY`.

#![allow(dead_code)] // each test file uses a different part

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Wait for the child to end, at most `bound`; kill it if it has not (then `None`). The bound
/// only catches a hang: callers assert that the process ended, never how fast.
pub fn wait_bounded_blocking(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < bound {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// [`wait_bounded_blocking`] off the async runtime.
pub async fn wait_bounded(mut child: Child, bound: Duration) -> Option<ExitStatus> {
    tokio::task::spawn_blocking(move || wait_bounded_blocking(&mut child, bound))
        .await
        .unwrap()
}

/// Send `signal` (`"-TERM"`, `"-INT"`) to the child, as `kill` does.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal}");
}

/// The text of an event log, plain or compressed (the default session file is gzip), as
/// `zcat -f` shows it.
pub fn log_text(path: &Path) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut omniscope::eventlog::reader::open(path).unwrap().lines,
        &mut text,
    )
    .unwrap();
    text
}
