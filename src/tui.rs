//! The terminal edge: setup and restore, and the one event loop that owns the screen, for a live
//! session and a replayed log alike.
//!
//! [`run_loop`] is a `tokio::select!` over terminal input (keys, resizes; errors and end of input
//! end the session), a [`Feed`] (the engine's bounded event channel, or a log being replayed;
//! drained up to [`DRAIN_CAP`] items per pass), stop signals (SIGTERM, SIGINT from outside), and a
//! frame tick. It draws only when something changed, at most ~30 times a second, and at least once
//! a second (the session clock and countdowns). It is generic over ratatui's `Backend` and the
//! input stream, so its behaviour is tested on a `TestBackend` with scripted keys. The terminal is
//! restored on quit, Ctrl-C, SIGTERM and panic (ratatui's panic hook).

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::{Event as TermEvent, EventStream};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{App, Cmd, Msg, Playback};
use crate::event::{EngineCommand, Event, Notice};
use crate::eventlog::replay::{ReplayControl, ReplayItem};
use crate::probe::EngineHandle;
use crate::ui;

/// Items folded in per pass before the screen gets a chance to draw.
pub const DRAIN_CAP: usize = 512;
/// Shortest time between two frames (~30 fps).
pub const FRAME: Duration = Duration::from_millis(33);

/// What the dashboard shows: where its items come from, and what its keys' commands do.
pub trait Feed {
    type Item;
    /// The channel items arrive on (bounded: a slow screen slows the source, nothing is lost).
    fn items(&mut self) -> &mut mpsc::Receiver<Self::Item>;
    /// Fold one item into the app.
    fn take(&mut self, item: Self::Item, app: &mut App);
    /// The source has ended.
    fn ended(&mut self, app: &mut App);
    /// Carry out a command a key produced (quitting is the loop's).
    fn command(&mut self, cmd: Cmd, app: &mut App);
    /// The screen's clock at a frame tick; `None` when the items themselves move it (a replay).
    fn now(&self) -> Option<DateTime<Utc>>;
}

/// The live engine: its events in, the keys' commands out to it.
pub struct LiveFeed {
    events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<EngineCommand>,
}

impl LiveFeed {
    #[must_use]
    pub fn new(events: mpsc::Receiver<Event>, commands: mpsc::Sender<EngineCommand>) -> Self {
        Self { events, commands }
    }
}

impl Feed for LiveFeed {
    type Item = Event;

    fn items(&mut self) -> &mut mpsc::Receiver<Event> {
        &mut self.events
    }

    fn take(&mut self, event: Event, app: &mut App) {
        app.update(Msg::from(event));
    }

    fn ended(&mut self, app: &mut App) {
        app.update(Msg::EngineStopped);
    }

    fn command(&mut self, cmd: Cmd, app: &mut App) {
        for command in cmd.into_engine_commands() {
            // Never await here: the engine may itself be waiting for us to take its events.
            if let Err(error) = self.commands.try_send(command) {
                let message = match error {
                    mpsc::error::TrySendError::Full(_) => "the engine is busy; press the key again",
                    mpsc::error::TrySendError::Closed(_) => "the engine has stopped",
                };
                app.update(Msg::Notice(Notice::CommandRejected {
                    message: message.to_owned(),
                }));
                return;
            }
        }
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        Some(Utc::now())
    }
}

/// A recorded session: its facts in with their original timing; the screen's clock is the log's.
/// `p` pauses and resumes the replay, `+`/`-` step its speed (1×, 10×, as fast as possible);
/// commands that would reach a provider are refused, since nothing is sent.
pub struct ReplayFeed {
    items: mpsc::Receiver<ReplayItem>,
    control: ReplayControl,
}

impl ReplayFeed {
    #[must_use]
    pub fn new(items: mpsc::Receiver<ReplayItem>, control: ReplayControl) -> Self {
        Self { items, control }
    }

    /// The playback as the header shows it.
    #[must_use]
    pub fn playback(&self) -> Playback {
        Playback {
            paused: self.control.paused(),
            speed: self.control.speed(),
        }
    }
}

impl Feed for ReplayFeed {
    type Item = ReplayItem;

    fn items(&mut self) -> &mut mpsc::Receiver<ReplayItem> {
        &mut self.items
    }

    fn take(&mut self, item: ReplayItem, app: &mut App) {
        match item {
            ReplayItem::Fact(fact) => {
                let at = fact.at();
                app.update(Msg::Fact(fact));
                if at > app.now {
                    app.update(Msg::Tick(at));
                }
            }
            ReplayItem::Unreadable { .. } => {
                app.update(Msg::ReplayUnreadable);
            }
        }
    }

    fn ended(&mut self, app: &mut App) {
        app.update(Msg::Note("end of the log: q quits".to_owned()));
    }

    fn command(&mut self, cmd: Cmd, app: &mut App) {
        let note = match cmd {
            Cmd::Quit => return,
            Cmd::Pause(_) | Cmd::Resume(_) => {
                self.control.set_paused(!self.control.paused());
                if self.control.paused() {
                    "replay paused"
                } else {
                    "replay resumed"
                }
                .to_owned()
            }
            Cmd::ReplaySpeed { faster } => {
                let speed = self.control.speed();
                self.control.set_speed(if faster {
                    speed.faster()
                } else {
                    speed.slower()
                });
                format!("replay speed {}", self.control.speed().label())
            }
            Cmd::SetRates(_) | Cmd::SetConcurrency(_) => return,
            Cmd::Retry { .. } | Cmd::RetryAllFailed => {
                "a replay sends nothing: retries need a live session".to_owned()
            }
        };
        app.update(Msg::Note(note));
        app.playback = Some(self.playback());
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The user quit.
    Quit,
    /// Terminal input ended (the terminal went away): nothing more can be asked of us.
    InputEnded,
    /// A stop signal arrived.
    Stopped,
}

/// How a loop went: why it ended, and how many frames it drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopEnd {
    pub ending: Ending,
    pub frames: u64,
}

/// How long requests still in the air get after the dashboard closes.
pub const QUIT_GRACE: Duration = Duration::from_secs(3);

/// Run the dashboard over the live engine until the user quits, input ends, or a stop signal
/// arrives. The engine is shut down on the way out; the app comes back with what it saw, for
/// the summary and the report.
///
/// # Errors
/// The terminal could not be drawn to or read from.
pub async fn run(
    mut app: App,
    engine: EngineHandle,
    events: mpsc::Receiver<Event>,
) -> anyhow::Result<Closed> {
    let mut feed = LiveFeed::new(events, engine.commands());
    let result = on_terminal(&mut app, &mut feed).await;
    engine.shutdown();
    let LiveFeed { mut events, .. } = feed;
    let abandoned = !finish_in_flight(&mut app, &mut events, engine).await;
    result.map(|()| Closed { app, abandoned })
}

/// A live dashboard that has closed.
pub struct Closed {
    /// Everything it saw, including the answers that arrived after the screen closed.
    pub app: App,
    /// Requests still in the air were abandoned (the grace ran out, or a second Ctrl-C): do not
    /// wait for anything else either.
    pub abandoned: bool,
}

/// After the screen has closed: say what is awaited, fold in the answers still arriving for
/// [`QUIT_GRACE`] at most, and stop at once on a second Ctrl-C (or SIGTERM). What is abandoned
/// is not counted. `true` when everything in the air came back.
async fn finish_in_flight(
    app: &mut App,
    events: &mut mpsc::Receiver<Event>,
    engine: EngineHandle,
) -> bool {
    let in_flight: u32 = app
        .stats
        .providers
        .iter()
        .map(|provider| provider.concurrency.in_flight)
        .sum();
    if in_flight > 0 {
        crate::note!(
            "waiting up to {} s for {in_flight} request(s) still in the air (Ctrl-C: stop now, without them)",
            QUIT_GRACE.as_secs()
        );
    }
    let mut stops = crate::session::stop_signals();
    let drain = async {
        while let Some(event) = events.recv().await {
            app.update(Msg::from(event));
        }
        engine.join().await;
    };
    tokio::select! {
        finished = tokio::time::timeout(QUIT_GRACE, drain) => {
            if finished.is_err() {
                crate::note!("stopped waiting: requests still in the air were abandoned");
            }
            finished.is_ok()
        },
        Some(()) = stops.recv() => {
            crate::note!("stopped at once: requests still in the air were abandoned");
            false
        }
    }
}

/// Replay a recorded session on the dashboard (see [`ReplayFeed`]).
///
/// # Errors
/// The terminal could not be drawn to or read from.
pub async fn run_replay(
    mut app: App,
    items: mpsc::Receiver<ReplayItem>,
    control: ReplayControl,
) -> anyhow::Result<()> {
    let mut feed = ReplayFeed::new(items, control);
    app.playback = Some(feed.playback());
    on_terminal(&mut app, &mut feed).await
}

/// [`run_loop`] on the real terminal, with the process's stop signals; the terminal is restored
/// however the loop ends.
async fn on_terminal(app: &mut App, feed: &mut impl Feed) -> anyhow::Result<()> {
    let mut terminal = init_terminal()?;
    let stops = crate::session::stop_signals();
    let result = run_loop(&mut terminal, EventStream::new(), stops, app, feed).await;
    ratatui::restore();
    result.map(|_| ())
}

/// The event loop: see the module's documentation.
///
/// # Errors
/// The terminal could not be drawn to or read from.
pub async fn run_loop<B, F>(
    terminal: &mut Terminal<B>,
    mut input: impl Stream<Item = std::io::Result<TermEvent>> + Unpin,
    mut stops: mpsc::Receiver<()>,
    app: &mut App,
    feed: &mut F,
) -> anyhow::Result<LoopEnd>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    F: Feed,
{
    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = terminal.size()?;
    app.update(Msg::Resize {
        width: size.width,
        height: size.height,
    });
    if let Some(now) = feed.now() {
        app.update(Msg::Tick(now));
    }
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut frames = 0_u64;
    let mut feed_open = true;
    let mut batch = Vec::with_capacity(DRAIN_CAP);
    let ending = loop {
        if dirty && last_draw.is_none_or(|at| at.elapsed() >= FRAME) {
            terminal.draw(|frame| ui::render(frame, app))?;
            last_draw = Some(Instant::now());
            frames += 1;
            dirty = false;
        }
        let mut outgoing = None;
        tokio::select! {
            event = input.next() => match event {
                Some(Ok(TermEvent::Key(key))) => {
                    outgoing = app.update(Msg::Key(key));
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(width, height))) => {
                    app.update(Msg::Resize { width, height });
                    // The next draw repaints everything at the new size.
                    terminal.autoresize()?;
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => anyhow::bail!("reading the terminal failed: {error}"),
                None => break Ending::InputEnded,
            },
            // One pass takes what is waiting, up to the cap, then the screen may draw.
            received = feed.items().recv_many(&mut batch, DRAIN_CAP), if feed_open => {
                if received == 0 {
                    feed_open = false;
                    feed.ended(app);
                } else {
                    for item in batch.drain(..) {
                        feed.take(item, app);
                    }
                }
                dirty = true;
            },
            _ = stops.recv() => break Ending::Stopped,
            _ = ticker.tick() => {
                if let Some(now) = feed.now() {
                    // A new second: the session clock (and any countdown) moved.
                    if now.timestamp() != app.now.timestamp() {
                        dirty = true;
                    }
                    app.update(Msg::Tick(now));
                }
            }
        }
        match outgoing {
            Some(Cmd::Quit) => break Ending::Quit,
            Some(cmd) => {
                feed.command(cmd, app);
                dirty = true;
            }
            None => {}
        }
    };
    Ok(LoopEnd { ending, frames })
}

/// Whether there is a terminal to draw on and read keys from: stdout must be one (the screen is
/// drawn there), and keys come from stdin or, as crossterm does, from `/dev/tty`. Checked before
/// a dashboard does anything else, so that cron or CI gets a plain error with no event log
/// written, no request sent, and no escape codes in its captured output.
///
/// # Errors
/// No terminal: the message says what to use instead.
pub fn require_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let keys = std::io::stdin().is_terminal() || std::fs::File::open("/dev/tty").is_ok();
    if std::io::stdout().is_terminal() && keys {
        return Ok(());
    }
    Err(no_terminal("standard output or input is not a terminal"))
}

fn no_terminal(why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "the dashboard needs a terminal ({why}); for a headless session use `omniscope run` (or `omniscope replay FILE --headless`)"
    )
}

/// Raw mode, the alternate screen, and a panic hook that restores the terminal
/// (`ratatui::try_init`). Without a terminal (a pipe, cron, CI) this is an error that says what
/// to use instead, not `ratatui::init`'s panic.
fn init_terminal() -> anyhow::Result<ratatui::DefaultTerminal> {
    ratatui::try_init().map_err(|error| {
        // Raw mode is the one thing switched on before the alternate screen: only it is undone
        // (`ratatui::restore` would also write "leave alternate screen" to an output that never
        // entered it).
        let _ = crossterm::terminal::disable_raw_mode();
        no_terminal(error)
    })
}

#[cfg(test)]
mod tests;
