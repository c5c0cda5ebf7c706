//! The replay source: a task that reads a log and emits its facts with the original timing,
//! scaled by a speed (1×, 10×, as fast as possible), pausable. The dashboard consumes it as it
//! consumes the live engine's events: each fact goes through [`crate::stats::SessionStats::apply`].

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use std::ops::ControlFlow;

use super::reader::{ReadError, ReadSummary, Sessions, for_each_item_in};
use crate::event::Fact;

/// How fast a log plays back: a whole factor of the recorded timing (`--speed 3` plays three
/// times as fast), or as fast as possible (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// Log time divided by this factor (1 is as recorded).
    Times(u32),
    /// No waiting at all.
    Max,
}

impl Default for Speed {
    fn default() -> Self {
        Self::Times(1)
    }
}

/// The steps `+` and `-` walk through; any factor `--speed` accepts rejoins them at the next one.
const SPEED_STEPS: [u32; 10] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

impl Speed {
    /// The fastest factor `--speed` takes: a day of recording in under 90 s; beyond, use `max`.
    pub const MAX_FACTOR: u32 = 1000;

    /// The factor log time is divided by; `None` for as fast as possible.
    #[must_use]
    pub fn factor(self) -> Option<u32> {
        match self {
            Self::Times(factor) => Some(factor),
            Self::Max => None,
        }
    }

    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Times(factor) => format!("{factor}x"),
            Self::Max => "max".to_owned(),
        }
    }

    /// One step faster (`+` in a replay); the fastest stays.
    #[must_use]
    pub fn faster(self) -> Self {
        match self {
            Self::Times(factor) => SPEED_STEPS
                .into_iter()
                .find(|step| *step > factor)
                .map_or(Self::Max, Self::Times),
            Self::Max => Self::Max,
        }
    }

    /// One step slower (`−` in a replay); real time stays.
    #[must_use]
    pub fn slower(self) -> Self {
        let below = |factor: u32| {
            SPEED_STEPS
                .into_iter()
                .rev()
                .find(|step| *step < factor)
                .unwrap_or(1)
        };
        match self {
            Self::Times(factor) => Self::Times(below(factor)),
            Self::Max => Self::Times(Self::MAX_FACTOR),
        }
    }

    /// Real time to wait for `log_time` of the recording.
    #[must_use]
    pub fn scale(self, log_time: Duration) -> Duration {
        self.factor()
            .map_or(Duration::ZERO, |factor| log_time / factor.max(1))
    }
}

impl std::str::FromStr for Speed {
    type Err = String;

    /// `max`, or a whole factor from 1 to [`Speed::MAX_FACTOR`], written `3` or `3x`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Self::Max);
        }
        let digits = text.strip_suffix(['x', 'X']).unwrap_or(text);
        match digits.parse::<u32>() {
            Ok(factor) if (1..=Self::MAX_FACTOR).contains(&factor) => Ok(Self::Times(factor)),
            _ => Err(format!(
                "`{text}` is no speed: a whole factor of the recorded timing from 1 to {} (e.g. 3 \
                 or 3x), or max",
                Self::MAX_FACTOR
            )),
        }
    }
}

/// The recorded time between two records; never negative (clocks step back, logs get merged).
#[must_use]
pub fn gap(previous: DateTime<Utc>, next: DateTime<Utc>) -> Duration {
    (next - previous).to_std().unwrap_or_default()
}

/// Facts read ahead of the one being waited for.
const READ_AHEAD: usize = 1024;

/// What the replay source emits.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayItem {
    Fact(Fact),
    /// A line that could not be read: its number (from 1) and why. Counted, not fatal.
    Unreadable {
        line: u64,
        error: String,
    },
}

/// Pause and speed of a running replay. Dropping it leaves the replay running as it was.
#[derive(Debug)]
pub struct ReplayControl {
    paused: watch::Sender<bool>,
    speed: watch::Sender<Speed>,
}

impl ReplayControl {
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    #[must_use]
    pub fn paused(&self) -> bool {
        *self.paused.borrow()
    }

    pub fn set_speed(&self, speed: Speed) {
        self.speed.send_replace(speed);
    }

    #[must_use]
    pub fn speed(&self) -> Speed {
        *self.speed.borrow()
    }
}

/// Start replaying the log files at `paths`, read in order as one log, into `items` (bounded: a
/// slow consumer slows the replay):
/// every fact, or those of session `only` (from 1, see [`Sessions`]).
/// The task ends at the end of the log, or when `items` is closed, returning what it read.
#[must_use]
pub fn spawn(
    paths: Vec<PathBuf>,
    only: Option<usize>,
    speed: Speed,
    items: mpsc::Sender<ReplayItem>,
) -> (ReplayControl, JoinHandle<Result<ReadSummary, ReadError>>) {
    let (paused_tx, paused) = watch::channel(false);
    let (speed_tx, speeds) = watch::channel(speed);
    let task =
        tokio::spawn(async move { play(paths, Sessions::new(only), paused, speeds, items).await });
    (
        ReplayControl {
            paused: paused_tx,
            speed: speed_tx,
        },
        task,
    )
}

async fn play(
    paths: Vec<PathBuf>,
    mut sessions: Sessions,
    mut paused: watch::Receiver<bool>,
    mut speeds: watch::Receiver<Speed>,
    items: mpsc::Sender<ReplayItem>,
) -> Result<ReadSummary, ReadError> {
    // Files are read (and decompressed) on a thread of their own; here only the timing is kept.
    let (read_tx, mut read) = mpsc::channel(READ_AHEAD);
    let first = paths.first().cloned().unwrap_or_default();
    let reader = tokio::task::spawn_blocking(move || {
        for_each_item_in(&paths, |item| {
            if read_tx.blocking_send(item).is_err() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
    });
    let mut previous_at: Option<DateTime<Utc>> = None;
    while let Some(item) = read.recv().await {
        let kept = match &item {
            ReplayItem::Fact(fact) => sessions.keep(fact),
            // An unreadable line belongs to the session it sits in.
            ReplayItem::Unreadable { .. } => sessions.keeping(),
        };
        if !kept {
            continue;
        }
        if let ReplayItem::Fact(fact) = &item {
            let at = fact.at();
            let log_time = previous_at.map_or(Duration::ZERO, |previous| gap(previous, at));
            wait(log_time, &mut paused, &mut speeds).await;
            previous_at = Some(previous_at.map_or(at, |previous| previous.max(at)));
        }
        if items.send(item).await.is_err() {
            break;
        }
    }
    // The reader stops at its next line once nobody takes them.
    drop(read);
    reader.await.map_err(|join| ReadError {
        path: first,
        source: std::io::Error::other(join.to_string()),
    })?
}

/// Wait `log_time` of the recording at the current speed, not counting time spent paused; a speed
/// change applies to what is left.
async fn wait(
    mut log_time: Duration,
    paused: &mut watch::Receiver<bool>,
    speeds: &mut watch::Receiver<Speed>,
) {
    loop {
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                // The control is gone and the replay is paused: it stays paused until the
                // consumer drops the channel; its send then ends the task.
                std::future::pending::<()>().await;
            }
        }
        let speed = *speeds.borrow_and_update();
        let real = speed.scale(log_time);
        if real.is_zero() {
            return;
        }
        let started = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(real) => return,
            Ok(()) = paused.changed() => {}
            Ok(()) = speeds.changed() => {}
        }
        let played = started.elapsed();
        log_time = log_time.saturating_sub(played * speed.factor().unwrap_or(1));
    }
}
