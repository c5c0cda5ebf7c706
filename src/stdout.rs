//! Standard output when its reader may have gone (`omniscope providers | head -1`): `print!`
//! panics on a closed pipe, and Rust ignores SIGPIPE, so every write there would end in a panic.

use std::io::{ErrorKind, Write};

/// Write `text` to stdout. A closed pipe is quietly the end of the output (the reader has what it
/// wanted); any other failure (a full disk behind a redirect) is said on stderr. Never panics.
/// `false` once the reader has gone, so that a caller producing more can stop.
pub fn print(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(error) if error.kind() == ErrorKind::BrokenPipe => false,
        Err(error) => {
            crate::note!("cannot write to standard output: {error}");
            true
        }
    }
}

/// [`print`], given up after `wait`: a reader that stopped reading (`omniscope run … | sleep 60`)
/// must not hold the process at its end. The write goes on a thread of its own, which the
/// process's exit ends if it is still blocked. `false` when the reader has gone or stalled.
#[must_use]
pub fn print_within(text: String, wait: std::time::Duration) -> bool {
    let (done_tx, done) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("omniscope-stdout".to_owned())
        .spawn(move || {
            let _ = done_tx.send(print(&text));
        });
    if spawned.is_err() {
        return false;
    }
    done.recv_timeout(wait).unwrap_or_else(|_| {
        crate::note!("standard output is not being read: gave up writing to it after {wait:?}");
        false
    })
}

/// `eprintln!` that cannot panic: `eprintln!` panics when stderr is a closed pipe
/// (`omniscope run … 2>&1 | head -1`), and a message nobody can read is not worth a crash.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line for the user on stderr, after the program's name: `note!("event log {}", path)` writes
/// `omniscope: event log …`. Cannot panic (see [`say!`]).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "omniscope: {}", format_args!($($arg)*));
    }};
}
