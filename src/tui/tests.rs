//! The event loop on ratatui's `TestBackend`, with scripted terminal input: quitting, stopping,
//! commands, draining a flood, drawing only when something changed, and the live path folding
//! what its log then replays.

use std::pin::Pin;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures::stream::{self, Stream, StreamExt};
use ratatui::backend::TestBackend;

use super::*;
use crate::app::{KeyBindings, fixture};
use crate::event::{Fact, Scope};
use crate::eventlog::{self, EventLog};
use crate::recorder::Recorder;
use crate::stats::SessionStats;

type Input = Pin<Box<dyn Stream<Item = std::io::Result<TermEvent>>>>;

fn key(c: char) -> std::io::Result<TermEvent> {
    Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

/// These keys, then nothing more (input stays open).
fn keys(keys: &str) -> Input {
    let events: Vec<_> = keys.chars().map(key).collect();
    Box::pin(stream::iter(events).chain(stream::pending()))
}

/// `q` after `after` of (tokio) time.
fn quit_after(after: Duration) -> Input {
    Box::pin(
        stream::once(async move {
            tokio::time::sleep(after).await;
            key('q')
        })
        .chain(stream::pending()),
    )
}

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(100, 30)).unwrap()
}

fn no_stops() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    mpsc::channel(1)
}

/// An engine that says nothing: the feed's sender and the command receiver, kept by the test.
fn live_feed(
    command_capacity: usize,
) -> (LiveFeed, mpsc::Sender<Event>, mpsc::Receiver<EngineCommand>) {
    let (events_tx, events) = mpsc::channel(8);
    let (commands, commands_rx) = mpsc::channel(command_capacity);
    (LiveFeed::new(events, commands), events_tx, commands_rx)
}

fn attempt_fact(id: u64) -> Fact {
    // Built once (a classification against the loaded profiles), copied for every fact.
    static OUTCOME: std::sync::LazyLock<crate::outcome::Outcome> =
        std::sync::LazyLock::new(|| fixture::outcome(&fixture::Attempt::default()));
    let mut outcome = OUTCOME.clone();
    outcome.attempt_id = id;
    Fact::Attempt {
        at: crate::stats::finished_at(&outcome),
        outcome: Box::new(outcome),
        in_flight: Some(0),
    }
}

#[tokio::test]
async fn q_quits_and_draws_first() {
    let mut app = fixture::app();
    let (mut feed, _events, mut commands) = live_feed(4);
    let (_stop, stops) = no_stops();
    let mut terminal = terminal();
    let end = run_loop(&mut terminal, keys("q"), stops, &mut app, &mut feed)
        .await
        .unwrap();
    assert_eq!(end.ending, Ending::Quit);
    assert_eq!(end.frames, 1, "the first frame, then the key ended it");
    assert!(
        commands.try_recv().is_err(),
        "quitting sends the engine nothing"
    );
    let screen = format!("{:?}", terminal.backend().buffer());
    assert!(screen.contains("Recent attempts"), "{screen}");
}

#[tokio::test]
async fn input_that_ends_or_fails_ends_the_loop() {
    let (mut feed, _events, _commands) = live_feed(4);
    let (_stop, stops) = no_stops();
    let ended = run_loop(
        &mut terminal(),
        stream::empty(),
        stops,
        &mut fixture::app(),
        &mut feed,
    )
    .await
    .unwrap();
    assert_eq!(ended.ending, Ending::InputEnded);

    let (_stop, stops) = no_stops();
    let failed = run_loop(
        &mut terminal(),
        stream::iter([Err(std::io::Error::other("tty gone"))]),
        stops,
        &mut fixture::app(),
        &mut feed,
    )
    .await;
    assert!(failed.unwrap_err().to_string().contains("tty gone"));
}

#[tokio::test]
async fn a_stop_signal_ends_the_loop() {
    let (mut feed, _events, _commands) = live_feed(4);
    let (stop, stops) = no_stops();
    stop.send(()).await.unwrap();
    let end = run_loop(
        &mut terminal(),
        keys(""),
        stops,
        &mut fixture::app(),
        &mut feed,
    )
    .await
    .unwrap();
    assert_eq!(end.ending, Ending::Stopped);
}

#[tokio::test]
async fn keys_send_commands_and_a_full_queue_is_a_warning_not_a_wait() {
    let mut app = fixture::app();
    let (mut feed, _events, mut commands) = live_feed(1);
    let (_stop, stops) = no_stops();
    // `p` asks to pause all; the second `p` finds the queue full (the engine has not taken the
    // first): the loop must not wait on an engine that may be waiting on it.
    run_loop(&mut terminal(), keys("ppq"), stops, &mut app, &mut feed)
        .await
        .unwrap();
    assert_eq!(
        commands.try_recv().unwrap(),
        EngineCommand::Pause(Scope::All)
    );
    assert!(commands.try_recv().is_err());
    let notice = app.notice.unwrap();
    assert!(notice.warning && notice.text.contains("busy"), "{notice:?}");
}

#[tokio::test]
async fn a_flood_of_events_does_not_keep_the_user_from_quitting() {
    let mut app = fixture::app();
    let (mut feed, events, _commands) = live_feed(4);
    // The engine never stops sending; the user presses `q` once the loop has folded a few
    // passes' worth. A loop that drained until the channel was empty would never look at the
    // keys again.
    let (flooding, flooded) = tokio::sync::oneshot::channel();
    let flood = tokio::spawn(async move {
        let mut flooding = Some(flooding);
        for id in 1_000.. {
            if events.send(Event::Fact(attempt_fact(id))).await.is_err() {
                return;
            }
            if id == 1_000 + 2 * DRAIN_CAP as u64 {
                let _ = flooding.take().map(|tx| tx.send(()));
            }
        }
    });
    let input: Input = Box::pin(
        stream::once(async move {
            let _ = flooded.await;
            key('q')
        })
        .chain(stream::pending()),
    );
    let before = app.stats.total_attempts();
    let (_stop, stops) = no_stops();
    let end = run_loop(&mut terminal(), input, stops, &mut app, &mut feed)
        .await
        .unwrap();
    assert_eq!(end.ending, Ending::Quit);
    drop(feed);
    flood.await.unwrap();
    let folded = app.stats.total_attempts() - before;
    assert!(folded >= 2 * DRAIN_CAP as u64 - 8, "{folded} folded");
}

#[tokio::test(start_paused = true)]
async fn an_idle_screen_is_not_redrawn() {
    // A replay waiting on a log that says nothing: no clock of its own, nothing changes.
    let (items_tx, items) = mpsc::channel(8);
    let control = replay_control();
    let mut feed = ReplayFeed::new(items, control);
    let (_stop, stops) = no_stops();
    let end = run_loop(
        &mut terminal(),
        quit_after(Duration::from_secs(5)),
        stops,
        &mut fixture::app(),
        &mut feed,
    )
    .await
    .unwrap();
    assert_eq!(end.ending, Ending::Quit);
    assert_eq!(end.frames, 1, "five idle seconds, no redraw");
    drop(items_tx);
}

#[tokio::test(start_paused = true)]
async fn a_busy_feed_is_drawn_at_most_once_a_frame() {
    let (items_tx, items) = mpsc::channel(8);
    let control = replay_control();
    let mut feed = ReplayFeed::new(items, control);
    let mut app = fixture::app();
    let before = app.stats.total_attempts();
    // A fact every millisecond for 300 ms of (paused) time.
    let source = tokio::spawn(async move {
        for id in 0..300 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            items_tx
                .send(ReplayItem::Fact(attempt_fact(5_000 + id)))
                .await
                .unwrap();
        }
        items_tx
    });
    let (_stop, stops) = no_stops();
    let end = run_loop(
        &mut terminal(),
        quit_after(Duration::from_millis(500)),
        stops,
        &mut app,
        &mut feed,
    )
    .await
    .unwrap();
    drop(source.await.unwrap());
    assert_eq!(app.stats.total_attempts() - before, 300);
    // The first frame, one a frame's time while facts arrive, and the last facts' frame.
    let most = 1 + 300 / u64::try_from(FRAME.as_millis()).unwrap() + 1;
    assert!(
        (5..=most).contains(&end.frames),
        "{} frames for 300 facts over 300 ms",
        end.frames
    );
}

/// A replay control whose source is a log nobody plays (the test feeds the items itself).
fn replay_control() -> ReplayControl {
    let (tx, _rx) = mpsc::channel(1);
    let (control, _task) = crate::eventlog::replay::spawn(
        vec!["/nonexistent/omniscope.ndjson".into()],
        None,
        crate::eventlog::replay::Speed::default(),
        tx,
    );
    control
}

/// Sends `q` once the live feed has ended: the test quits when everything was folded.
struct QuitWhenEnded {
    live: LiveFeed,
    quit: futures::channel::mpsc::UnboundedSender<std::io::Result<TermEvent>>,
}

impl Feed for QuitWhenEnded {
    type Item = Event;

    fn items(&mut self) -> &mut mpsc::Receiver<Event> {
        self.live.items()
    }

    fn take(&mut self, item: Event, app: &mut App) {
        self.live.take(item, app);
    }

    fn ended(&mut self, app: &mut App) {
        self.live.ended(app);
        let _ = self.quit.unbounded_send(key('q'));
    }

    fn command(&mut self, cmd: Cmd, app: &mut App) {
        self.live.command(cmd, app);
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        self.live.now()
    }
}

/// The same facts, two ways: live, from the engine's channel through the recorder (which writes
/// the log) and the dashboard's loop into its statistics; then from the written file through the
/// replay's fold. The statistics agree in every field, histograms and per-second rings included.
#[tokio::test]
async fn the_live_dashboard_and_a_replay_of_its_log_fold_the_same_facts_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.ndjson");
    let facts = eventlog::tests::sample_session();
    assert!(matches!(facts.last(), Some(Fact::SessionEnd { .. })));
    // The recorder writes the session's end itself when the engine's channel closes.
    let facts = facts[..facts.len() - 1].to_vec();
    let started_at = facts[0].at();

    let (engine_tx, engine_rx) = mpsc::channel(4);
    let (screen_tx, screen_rx) = mpsc::channel(4);
    let recorder = Recorder::new(Some(EventLog::create(&path).unwrap()), None);
    let recording = tokio::spawn(recorder.record_and_forward(
        engine_rx,
        screen_tx,
        crate::clock::Clock::real(),
    ));
    let engine = {
        let facts = facts.clone();
        tokio::spawn(async move {
            for (index, fact) in facts.into_iter().enumerate() {
                // Live-only notices between the facts change no statistics.
                let notice = Notice::RetryScheduled {
                    provider: "omniscrape".into(),
                    attempt_id: 1,
                    after: Duration::from_secs(1),
                    escalation: None,
                    reason: format!("notice {index}"),
                };
                engine_tx.send(Event::Notice(notice)).await.unwrap();
                engine_tx.send(Event::Fact(fact)).await.unwrap();
            }
        })
    };

    let mut app = App::new(
        SessionStats::new(started_at),
        crate::provider::builtin_profiles(),
        KeyBindings::default(),
        started_at,
    );
    let (quit, input) = futures::channel::mpsc::unbounded();
    let (commands, _commands_rx) = mpsc::channel(4);
    let mut feed = QuitWhenEnded {
        live: LiveFeed::new(screen_rx, commands),
        quit,
    };
    let (_stop, stops) = no_stops();
    let end = run_loop(&mut terminal(), input, stops, &mut app, &mut feed)
        .await
        .unwrap();
    assert_eq!(end.ending, Ending::Quit);
    engine.await.unwrap();
    assert_eq!(recording.await.unwrap().as_deref(), Some(path.as_path()));

    let folded = eventlog::reader::fold_path(&path).unwrap();
    assert!(folded.ended_cleanly);
    assert_eq!(folded.summary.unreadable, 0);
    assert_eq!(
        folded.summary.records,
        u64::try_from(facts.len()).unwrap() + 1
    );
    let (live, replayed) = (&app.stats, &folded.stats);
    assert_eq!(replayed.started_at, live.started_at);
    assert_eq!(replayed.providers.len(), 2);
    assert_eq!(replayed.providers.len(), live.providers.len());
    for (replayed, live) in replayed.providers.iter().zip(&live.providers) {
        // Debug covers every field, histogram and per-second ring included.
        assert_eq!(format!("{replayed:?}"), format!("{live:?}"));
    }
    // The log keeps a success lean (no headers, no excerpt); everything else survives exactly.
    let lean: Vec<_> = live.recent.iter().map(eventlog::logged_outcome).collect();
    assert_eq!(replayed.recent.iter().cloned().collect::<Vec<_>>(), lean);
    let at = folded.ended_at.unwrap();
    assert_eq!(
        crate::report::build(replayed, at),
        crate::report::build(live, at)
    );
    let omni = replayed.provider("omniscrape").unwrap();
    assert_eq!((omni.attempts, omni.succeeded, omni.retries), (4, 1, 1));
    let alter = replayed.provider("alterlab").unwrap();
    assert_eq!(alter.skipped, 3);
    assert_eq!(alter.billing.balance, Some(1234.5));
    assert!(alter.paused.is_some());
}
