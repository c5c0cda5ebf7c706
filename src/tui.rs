//! The terminal edge: setup and restore, and the event loop that owns the screen.
//!
//! `tokio::select!` over crossterm's `EventStream` (keys, resizes; errors and end of input end the
//! session), the engine's bounded event channel (drained up to [`DRAIN_CAP`] per pass), stop
//! signals (SIGTERM, SIGINT from outside), and a frame tick. It draws only when something changed,
//! at most ~30 times a second, and at least once a second (the session clock and countdowns).
//! The terminal is restored on quit, Ctrl-C, SIGTERM and panic (ratatui's panic hook).

use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::app::{App, Cmd, Msg};
use crate::eventlog::replay::{ReplayControl, ReplayItem};
use crate::probe::{EngineCommand, EngineHandle, ProbeEvent};
use crate::ui;

/// Engine events folded in per pass before the screen gets a chance to draw.
pub const DRAIN_CAP: usize = 512;
/// Shortest time between two frames (~30 fps).
const FRAME: Duration = Duration::from_millis(33);

/// Run the dashboard until the user quits, input ends, or a stop signal arrives. The engine is
/// shut down on the way out.
///
/// # Errors
/// The terminal could not be drawn to or read from.
pub async fn run(
    mut app: App,
    engine: EngineHandle,
    mut events: mpsc::Receiver<ProbeEvent>,
) -> anyhow::Result<()> {
    let result = match init_terminal() {
        Ok(mut terminal) => {
            let result = event_loop(&mut terminal, &mut app, &engine, &mut events).await;
            ratatui::restore();
            result
        }
        Err(error) => Err(error),
    };
    engine.shutdown();
    // Requests in the air finish; do not wait on them forever.
    drop(events);
    let _ = tokio::time::timeout(Duration::from_secs(3), engine.join()).await;
    result
}

/// What the live and the replay loops share: terminal input, stop signals, the frame tick, and
/// drawing only when something changed, at most once a frame.
struct Screen {
    input: EventStream,
    stops: mpsc::Receiver<()>,
    ticker: tokio::time::Interval,
    dirty: bool,
    last_draw: Option<Instant>,
}

/// What a terminal event asks of the loop.
enum Input {
    /// Carry on, with a command when a key produced one.
    Continue(Option<Cmd>),
    /// Input ended (the terminal went away): nothing more can be asked of us.
    Ended,
}

impl Screen {
    fn start(terminal: &ratatui::DefaultTerminal, app: &mut App) -> anyhow::Result<Self> {
        let stops = crate::session::stop_signals();
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let size = terminal.size()?;
        app.update(Msg::Resize {
            width: size.width,
            height: size.height,
        });
        Ok(Self {
            input: EventStream::new(),
            stops,
            ticker,
            dirty: true,
            last_draw: None,
        })
    }

    fn draw_if_dirty(
        &mut self,
        terminal: &mut ratatui::DefaultTerminal,
        app: &App,
    ) -> anyhow::Result<()> {
        if self.dirty && self.last_draw.is_none_or(|at| at.elapsed() >= FRAME) {
            terminal.draw(|frame| ui::render(frame, app))?;
            self.last_draw = Some(Instant::now());
            self.dirty = false;
        }
        Ok(())
    }

    fn on_input(
        &mut self,
        terminal: &mut ratatui::DefaultTerminal,
        app: &mut App,
        event: Option<std::io::Result<Event>>,
    ) -> anyhow::Result<Input> {
        match event {
            Some(Ok(Event::Key(key))) => {
                self.dirty = true;
                Ok(Input::Continue(app.update(Msg::Key(key))))
            }
            Some(Ok(Event::Resize(width, height))) => {
                app.update(Msg::Resize { width, height });
                // The next draw repaints everything at the new size.
                terminal.autoresize()?;
                self.dirty = true;
                Ok(Input::Continue(None))
            }
            Some(Ok(_)) => Ok(Input::Continue(None)),
            Some(Err(error)) => Err(anyhow::anyhow!("reading the terminal failed: {error}")),
            None => Ok(Input::Ended),
        }
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    engine: &EngineHandle,
    events: &mut mpsc::Receiver<ProbeEvent>,
) -> anyhow::Result<()> {
    let commands = engine.commands();
    let mut screen = Screen::start(terminal, app)?;
    app.update(Msg::Tick(Utc::now()));
    let mut engine_open = true;

    loop {
        screen.draw_if_dirty(terminal, app)?;
        let mut outgoing = None;
        tokio::select! {
            maybe = screen.input.next() => match screen.on_input(terminal, app, maybe)? {
                Input::Continue(cmd) => outgoing = cmd,
                Input::Ended => return Ok(()),
            },
            event = events.recv(), if engine_open => match event {
                Some(event) => {
                    app.update(Msg::Probe(Box::new(event)));
                    for _ in 0..DRAIN_CAP {
                        match events.try_recv() {
                            Ok(event) => { app.update(Msg::Probe(Box::new(event))); }
                            Err(_) => break,
                        }
                    }
                    screen.dirty = true;
                }
                None => {
                    engine_open = false;
                    app.update(Msg::EngineStopped);
                    screen.dirty = true;
                }
            },
            _ = screen.stops.recv() => return Ok(()),
            _ = screen.ticker.tick() => {
                let now = Utc::now();
                // A new second: the session clock (and any countdown) moved.
                if now.timestamp() != app.now.timestamp() {
                    screen.dirty = true;
                }
                app.update(Msg::Tick(now));
            }
        }
        match outgoing {
            Some(Cmd::Quit) => return Ok(()),
            Some(cmd) => {
                if let Some(command) = cmd.into_engine_command() {
                    send(&commands, command, app);
                }
            }
            None => {}
        }
    }
}

/// Replay a recorded session on the dashboard. The screen's clock is the log's: it moves with the
/// records. `p` pauses and resumes the replay, `+`/`-` step its speed (1×, 10×, as fast as
/// possible); commands that would reach a provider are refused, since nothing is sent.
///
/// # Errors
/// The terminal could not be drawn to or read from.
pub async fn run_replay(
    mut app: App,
    mut items: mpsc::Receiver<ReplayItem>,
    control: ReplayControl,
) -> anyhow::Result<()> {
    let mut terminal = init_terminal()?;
    let result = replay_loop(&mut terminal, &mut app, &mut items, &control).await;
    ratatui::restore();
    result
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

async fn replay_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    items: &mut mpsc::Receiver<ReplayItem>,
    control: &ReplayControl,
) -> anyhow::Result<()> {
    let mut screen = Screen::start(terminal, app)?;
    let mut log_open = true;
    loop {
        screen.draw_if_dirty(terminal, app)?;
        let mut outgoing = None;
        tokio::select! {
            maybe = screen.input.next() => match screen.on_input(terminal, app, maybe)? {
                Input::Continue(cmd) => outgoing = cmd,
                Input::Ended => return Ok(()),
            },
            item = items.recv(), if log_open => {
                let mut next = item;
                for _ in 0..DRAIN_CAP {
                    match next {
                        Some(ReplayItem::Record(record)) => {
                            let at = record.at();
                            app.update(Msg::Replayed(Box::new(record)));
                            if at > app.now {
                                app.update(Msg::Tick(at));
                            }
                        }
                        Some(ReplayItem::Unreadable { .. }) => {
                            app.update(Msg::ReplayUnreadable);
                        }
                        None => {
                            log_open = false;
                            app.update(Msg::Note("end of the log: q quits".to_owned()));
                            break;
                        }
                    }
                    match items.try_recv() {
                        Ok(item) => next = Some(item),
                        Err(_) => break,
                    }
                }
                screen.dirty = true;
            },
            _ = screen.stops.recv() => return Ok(()),
            _ = screen.ticker.tick() => {}
        }
        let note = match outgoing {
            Some(Cmd::Quit) => return Ok(()),
            Some(Cmd::Pause(_) | Cmd::Resume(_)) => {
                control.set_paused(!control.paused());
                Some(
                    if control.paused() {
                        "replay paused"
                    } else {
                        "replay resumed"
                    }
                    .to_owned(),
                )
            }
            Some(Cmd::SetRate { .. }) => {
                control.set_speed(control.speed().next());
                Some(format!("replay speed {}", control.speed().label()))
            }
            Some(_) => Some("a replay sends nothing: retries need a live session".to_owned()),
            None => None,
        };
        if let Some(note) = note {
            app.update(Msg::Note(note));
            screen.dirty = true;
        }
    }
}

/// Never await here: the engine may itself be waiting for us to take its events.
fn send(commands: &mpsc::Sender<EngineCommand>, command: EngineCommand, app: &mut App) {
    if let Err(error) = commands.try_send(command) {
        let message = match error {
            mpsc::error::TrySendError::Full(_) => "the engine is busy; press the key again",
            mpsc::error::TrySendError::Closed(_) => "the engine has stopped",
        };
        app.update(Msg::Probe(Box::new(ProbeEvent::CommandRejected {
            message: message.to_owned(),
        })));
    }
}
