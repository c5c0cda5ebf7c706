use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fixture::{self, at, now};
use super::*;

fn key(code: KeyCode) -> Msg {
    let modifiers = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    Msg::Key(KeyEvent::new(code, modifiers))
}

fn ch(c: char) -> Msg {
    key(KeyCode::Char(c))
}

#[test]
fn the_fixture_folds_every_attempt_into_stats() {
    let app = fixture::app();
    let omni = app.stats.provider("omniscrape").unwrap();
    let alter = app.stats.provider("alterlab").unwrap();
    assert_eq!(omni.attempts, 20);
    assert_eq!(alter.attempts, 18);
    assert_eq!(omni.retries, 1);
    assert_eq!(alter.billing.balance, Some(4_870.0));
    assert_eq!(omni.billing.refund_mismatches, 1, "the charged 502");
    assert_eq!(app.now, now());
}

#[test]
fn quit_by_q_and_by_ctrl_c() {
    let mut app = fixture::app();
    assert_eq!(app.update(ch('q')), Some(Cmd::Quit));
    let mut app = fixture::app();
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.update(ctrl_c), Some(Cmd::Quit));
}

#[test]
fn p_pauses_all_then_resumes_once_the_engine_confirmed() {
    let mut app = fixture::app();
    assert_eq!(app.update(ch('p')), Some(Cmd::Pause(Scope::All)));
    // Nothing is paused until the engine says so: pressing again still asks to pause.
    assert_eq!(app.update(ch('p')), Some(Cmd::Pause(Scope::All)));
    for provider in ["omniscrape", "alterlab"] {
        app.update(Msg::Fact(Fact::Paused {
            origin: crate::outcome::Origin::Probe,
            provider: provider.into(),
            reason: "paused by the user".into(),
            at: now(),
        }));
    }
    assert!(app.stats.providers.iter().all(|p| p.paused.is_some()));
    assert_eq!(app.update(ch('p')), Some(Cmd::Resume(Scope::All)));
}

#[test]
fn shift_p_acts_on_the_selected_provider() {
    let mut app = fixture::app();
    app.focus = Focus::RateLimits;
    app.update(ch('j'));
    assert_eq!(
        app.update(ch('P')),
        Some(Cmd::Pause(Scope::Provider("alterlab".into())))
    );
    app.update(Msg::Fact(Fact::Paused {
        origin: crate::outcome::Origin::Probe,
        provider: "alterlab".into(),
        reason: "INSUFFICIENT_CREDITS: no balance".into(),
        at: now(),
    }));
    assert!(
        app.notice
            .as_ref()
            .unwrap()
            .text
            .contains("INSUFFICIENT_CREDITS")
    );
    assert_eq!(
        app.update(ch('P')),
        Some(Cmd::Resume(Scope::Provider("alterlab".into())))
    );
}

#[test]
fn shift_p_never_guesses_a_provider() {
    let mut app = fixture::app();
    // Status codes sums every provider: no row there is a provider, so nothing is paused.
    app.focus = Focus::StatusCodes;
    assert_eq!(app.update(ch('P')), None);
    let said = &app.notice.as_ref().unwrap().text;
    assert!(said.contains("which provider"), "{said}");
    // The top row of Recent attempts follows the newest attempt: no provider until pinned.
    app.focus = Focus::Recent;
    assert_eq!(app.update(ch('P')), None);
    app.update(ch('j'));
    let pinned = app.selected_attempt().unwrap().provider.clone();
    assert_eq!(
        app.update(ch('P')),
        Some(Cmd::Pause(Scope::Provider(pinned)))
    );
    // The filter names one: P acts on it and says so.
    app.update(ch('f'));
    app.update(ch('f'));
    assert_eq!(
        app.update(ch('P')),
        Some(Cmd::Pause(Scope::Provider("alterlab".into())))
    );
    assert_eq!(app.notice.as_ref().unwrap().text, "pausing alterlab");
}

#[test]
fn tab_cycles_focus_both_ways() {
    let mut app = fixture::app();
    assert_eq!(app.focus, Focus::Recent);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::StatusCodes);
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus, Focus::Latency);
}

#[test]
fn selection_moves_and_stays_in_bounds() {
    let mut app = fixture::app();
    app.update(key(KeyCode::Up));
    assert_eq!(app.selection.recent, 0);
    app.update(ch('j'));
    app.update(key(KeyCode::Down));
    assert_eq!(app.selection.recent, 2);
    for _ in 0..100 {
        app.update(ch('j'));
    }
    assert_eq!(app.selection.recent, 37, "38 attempts, newest first");
    app.focus = Focus::Errors;
    for _ in 0..10 {
        app.update(ch('j'));
    }
    assert_eq!(app.selection.error, app.error_rows().len() - 1);
}

#[test]
fn enter_opens_the_selected_attempt_and_esc_closes_it() {
    let mut app = fixture::app();
    app.update(ch('j'));
    let expected = app.recent_attempts().nth(1).unwrap().attempt_id;
    app.update(key(KeyCode::Enter));
    assert_eq!(app.overlay, Overlay::Detail(expected));
    // j/k do nothing under an overlay.
    app.update(ch('j'));
    assert_eq!(app.selection.recent, 1);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn new_attempts_keep_a_scrolled_selection_on_its_row() {
    let mut app = fixture::app();
    app.update(ch('j'));
    app.update(ch('j'));
    let selected = app.selected_attempt().unwrap().attempt_id;
    let mut fresh = fixture::outcome(&fixture::Attempt {
        id: 100,
        second: 899,
        ..fixture::Attempt::default()
    });
    fresh.attempt_id = 100;
    app.update(Msg::Fact(Fact::Attempt {
        at: crate::stats::finished_at(&fresh),
        outcome: Box::new(fresh),
        in_flight: Some(0),
    }));
    assert_eq!(app.selected_attempt().unwrap().attempt_id, selected);
}

#[test]
fn r_retries_the_selected_attempt_and_e_names_the_escalation() {
    let mut app = fixture::app();
    // Newest first: #38 timeout, #37 alterlab 429, #36 challenge, #35 antibot, #34 omni 502 retry.
    for _ in 0..4 {
        app.update(ch('j'));
    }
    let selected = app.selected_attempt().unwrap();
    assert_eq!(selected.api_status, Some(502));
    let id = selected.attempt_id;
    assert_eq!(
        app.update(ch('r')),
        Some(Cmd::Retry {
            attempt_id: id,
            escalate: false
        })
    );
    assert_eq!(
        app.update(ch('e')),
        Some(Cmd::Retry {
            attempt_id: id,
            escalate: true
        })
    );
    let notice = app.notice.clone().unwrap();
    assert!(notice.text.contains("mode js_rendering"), "{}", notice.text);
    assert!(notice.text.contains("costs more"), "{}", notice.text);
}

#[test]
fn r_without_a_selected_attempt_sends_nothing() {
    let mut app = fixture::app();
    app.focus = Focus::Billing;
    assert_eq!(app.update(ch('r')), None);
    assert!(app.notice.unwrap().text.contains("no attempt selected"));
}

#[test]
fn shift_r_retries_all_failed() {
    let mut app = fixture::app();
    assert_eq!(app.update(ch('R')), Some(Cmd::RetryAllFailed));
    // The engine says how many it sent.
    app.update(Msg::Notice(LiveNotice::RetriedAll { count: 3 }));
    assert!(app.notice.as_ref().unwrap().text.contains("retried 3"));
    app.update(Msg::Notice(LiveNotice::RetriedAll { count: 0 }));
    assert!(
        app.notice
            .as_ref()
            .unwrap()
            .text
            .contains("no failed retryable")
    );
}

#[test]
fn f_cycles_the_filter_through_every_provider_and_back() {
    let mut app = fixture::app();
    app.update(ch('f'));
    assert_eq!(app.filter.as_deref(), Some("omniscrape"));
    assert!(app.recent_attempts().all(|o| o.provider == "omniscrape"));
    app.update(ch('f'));
    assert_eq!(app.filter.as_deref(), Some("alterlab"));
    app.update(ch('f'));
    assert_eq!(app.filter, None);
}

#[test]
fn plus_and_minus_step_each_provider_from_what_drives_it_now() {
    let mut app = fixture::app();
    // omniscrape: its schedule (0.5/s) under its 1/s cap drives it; alterlab: its 1/s rate.
    assert_eq!(
        app.live["omniscrape"].probe_rate(),
        Some(Rate::PerSecond(0.5))
    );
    assert_eq!(
        app.update(ch('+')),
        Some(Cmd::SetRates(vec![
            ("omniscrape".into(), Rate::PerSecond(1.0)),
            ("alterlab".into(), Rate::PerSecond(2.0)),
        ]))
    );
    // Shown at once, per provider: the new rate replaces the schedule, it does not only cap it.
    assert_eq!(
        app.live["omniscrape"].probe_rate(),
        Some(Rate::PerSecond(1.0))
    );
    let said = &app.notice.as_ref().unwrap().text;
    assert!(said.contains("omniscrape 30/min → 1/s"), "{said}");
    assert!(said.contains("alterlab 1/s → 2/s"), "{said}");
    app.update(ch('f'));
    assert_eq!(
        app.update(ch('-')),
        Some(Cmd::SetRates(vec![(
            "omniscrape".into(),
            Rate::PerSecond(0.5)
        )])),
        "the filter's provider only"
    );
    assert_eq!(
        app.live["alterlab"].probe_rate(),
        Some(Rate::PerSecond(2.0))
    );
}

#[test]
fn unlimited_and_the_ends_of_the_ladder_stay_sane() {
    let mut app = fixture::app();
    app.update(ch('f'));
    // Probing back to back without a cap: `+` changes nothing, `−` steps down from the rate
    // seen in the last minute (the fixture's few attempts: at most 0.1/s), not from a guess.
    let omniscrape = app.live.get_mut("omniscrape").unwrap();
    omniscrape.rate = Some(Rate::Unlimited);
    omniscrape.schedule = Some(Rate::Unlimited);
    assert_eq!(app.update(ch('+')), None);
    assert!(
        app.notice
            .as_ref()
            .unwrap()
            .text
            .contains("already unlimited")
    );
    assert_eq!(
        app.update(ch('-')),
        Some(Cmd::SetRates(vec![(
            "omniscrape".into(),
            Rate::PerSecond(0.05)
        )]))
    );
    // Back to back, the top step goes on to unlimited; an interval schedule stays at the top.
    app.live.get_mut("omniscrape").unwrap().rate = Some(Rate::PerSecond(200.0));
    assert_eq!(
        app.update(ch('+')),
        Some(Cmd::SetRates(vec![("omniscrape".into(), Rate::Unlimited)]))
    );
    let omniscrape = app.live.get_mut("omniscrape").unwrap();
    omniscrape.rate = Some(Rate::PerSecond(200.0));
    omniscrape.schedule = Some(Rate::PerSecond(200.0));
    assert_eq!(app.update(ch('+')), None);
    assert!(app.notice.as_ref().unwrap().text.contains("top step"));
    let omniscrape = app.live.get_mut("omniscrape").unwrap();
    omniscrape.rate = Some(Rate::PerSecond(1.0 / 60.0));
    assert_eq!(app.update(ch('-')), None);
    assert!(app.notice.as_ref().unwrap().text.contains("lowest step"));
    // Down from unlimited starts from the rate actually seen, or the top step when none was.
    assert_eq!(
        stepped_rate(Rate::Unlimited, false, 3.2, true),
        Some(Rate::PerSecond(2.0))
    );
    assert_eq!(
        stepped_rate(Rate::Unlimited, false, 0.0, true),
        Some(Rate::PerSecond(200.0))
    );
}

#[test]
fn brackets_step_the_user_s_in_flight_limit_per_provider() {
    let mut app = fixture::app();
    // omniscrape: set 5; alterlab: none set, 3 in force.
    assert_eq!(
        app.update(ch(']')),
        Some(Cmd::SetConcurrency(vec![
            ("omniscrape".into(), 6),
            ("alterlab".into(), 4),
        ]))
    );
    app.update(ch('f'));
    for _ in 0..5 {
        app.update(ch('['));
    }
    assert_eq!(app.live["omniscrape"].configured_concurrency, Some(1));
    assert_eq!(app.update(ch('[')), None, "never below one");
    assert!(app.notice.as_ref().unwrap().text.contains("stays at 1"));
    assert_eq!(
        Cmd::SetConcurrency(vec![("alterlab".into(), 2)]).into_engine_commands(),
        [EngineCommand::SetConcurrency {
            scope: Scope::Provider("alterlab".into()),
            limit: 2
        }]
    );
}

#[test]
fn in_a_replay_plus_and_minus_change_its_speed_and_probe_nothing() {
    let mut app = fixture::app();
    app.playback = Some(Playback {
        paused: false,
        speed: crate::eventlog::replay::Speed::Times(1),
    });
    assert_eq!(app.update(ch('+')), Some(Cmd::ReplaySpeed { faster: true }));
    assert_eq!(
        app.update(ch('-')),
        Some(Cmd::ReplaySpeed { faster: false })
    );
    assert!(
        Cmd::ReplaySpeed { faster: true }
            .into_engine_commands()
            .is_empty()
    );
}

#[test]
fn c_resets_counters_but_keeps_the_providers() {
    let mut app = fixture::app();
    let elapsed = app.stats.elapsed(app.now);
    let quota_used = |app: &App| {
        app.stats
            .provider("omniscrape")
            .unwrap()
            .quota_projection(10_000, elapsed)
            .unwrap()
            .used
    };
    let before = quota_used(&app);
    assert!(before > 0.0);
    assert_eq!(app.update(ch('c')), None);
    assert_eq!(quota_used(&app), before, "an account figure: c keeps it");
    assert_eq!(app.stats.total_attempts(), 0);
    assert_eq!(app.stats.providers.len(), 2);
    assert_eq!(app.stats.started_at, now());
    assert_eq!(
        app.stats.provider("alterlab").unwrap().billing.balance,
        Some(4_870.0)
    );
}

#[test]
fn help_toggles_and_hides_behind_esc() {
    let mut app = fixture::app();
    app.update(ch('?'));
    assert_eq!(app.overlay, Overlay::Help);
    app.update(ch('?'));
    assert_eq!(app.overlay, Overlay::None);
    app.update(ch('?'));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn notices_fade_with_the_clock_not_the_wall() {
    let mut app = fixture::app();
    app.update(ch('R'));
    assert!(app.notice.is_some());
    app.update(Msg::Tick(now() + TimeDelta::seconds(5)));
    assert!(app.notice.is_some());
    app.update(Msg::Tick(now() + TimeDelta::seconds(10)));
    assert!(app.notice.is_none());
}

#[test]
fn engine_events_set_limits_holds_and_rejections() {
    let mut app = fixture::app();
    app.update(Msg::Fact(Fact::Limits {
        provider: "alterlab".into(),
        concurrency: 7,
        rate: Some(Rate::PerSecond(0.5)),
        at: now(),
    }));
    assert_eq!(app.live["alterlab"].rate, Some(Rate::PerSecond(0.5)));
    assert_eq!(app.live["alterlab"].concurrency, Some(7));
    let until = now() + TimeDelta::seconds(90);
    app.update(Msg::Notice(LiveNotice::Hold {
        provider: "omniscrape".into(),
        until,
        reason: "Retry-After".into(),
    }));
    let omni = app.stats.provider("omniscrape").unwrap();
    assert_eq!(app.next_allowed(omni), Some(until));
    app.update(Msg::Notice(LiveNotice::CommandRejected {
        message: "attempt 999 is no longer kept".into(),
    }));
    assert!(app.notice.as_ref().unwrap().warning);
    app.update(Msg::EngineStopped);
    assert!(!app.engine_running);
    let _ = at(0);
}

#[test]
fn unbound_keys_do_nothing() {
    let mut app = fixture::app();
    let before = app.focus;
    assert_eq!(app.update(ch('z')), None);
    assert_eq!(app.focus, before);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn commands_map_onto_the_engine_and_quit_stays_local() {
    assert_eq!(Cmd::Quit.into_engine_commands(), []);
    assert_eq!(
        Cmd::Retry {
            attempt_id: 4,
            escalate: true
        }
        .into_engine_commands(),
        [EngineCommand::Retry {
            attempt_id: 4,
            escalate: true
        }]
    );
    assert_eq!(
        Cmd::Pause(Scope::All).into_engine_commands(),
        [EngineCommand::Pause(Scope::All)]
    );
    assert_eq!(
        Cmd::SetRates(vec![
            ("omniscrape".into(), Rate::PerSecond(1.0)),
            ("alterlab".into(), Rate::Unlimited),
        ])
        .into_engine_commands(),
        [
            EngineCommand::SetRate {
                scope: Scope::Provider("omniscrape".into()),
                rate: Rate::PerSecond(1.0)
            },
            EngineCommand::SetRate {
                scope: Scope::Provider("alterlab".into()),
                rate: Rate::Unlimited
            }
        ]
    );
}

#[test]
fn replayed_records_fold_like_live_events_and_bad_lines_are_counted() {
    let live = fixture::app();
    let mut replayed = App::new(
        SessionStats::new(live.stats.started_at),
        live.profiles.clone(),
        KeyBindings::default(),
        live.stats.started_at,
    );
    for outcome in fixture::session_outcomes() {
        let at = crate::stats::finished_at(&outcome);
        replayed.update(Msg::Fact(Fact::Attempt {
            at,
            outcome: Box::new(outcome),
            in_flight: None,
        }));
    }
    replayed.update(Msg::ReplayUnreadable);
    for name in ["omniscrape", "alterlab"] {
        let (a, b) = (
            live.stats.provider(name).unwrap(),
            replayed.stats.provider(name).unwrap(),
        );
        assert_eq!(
            (a.attempts, a.succeeded, a.retries),
            (b.attempts, b.succeeded, b.retries)
        );
        assert_eq!(a.api_status, b.api_status);
        assert_eq!(a.billing.refund_mismatches, b.billing.refund_mismatches);
    }
    assert_eq!(replayed.stats.unreadable_inputs, 1);
}

#[test]
fn views_switch_by_key_and_the_targets_view_has_its_own_selection() {
    let mut app = fixture::app();
    assert_eq!(app.view, View::Dashboard);
    assert_eq!(app.update(ch('2')), None);
    assert_eq!(app.view, View::Targets);
    app.update(ch('j'));
    app.update(ch('j'));
    assert_eq!(app.selection.target, 2);
    assert_eq!(
        app.selection.recent, 0,
        "the dashboard's rows stay where they were"
    );
    app.update(ch('g'));
    assert_eq!(app.targets_by, TargetGrouping::Url);
    assert_eq!(app.selection.target, 0);
    app.update(ch('v'));
    assert_eq!(app.view, View::Compare);
    app.update(ch('v'));
    assert_eq!(app.view, View::Rates);
    app.update(ch('v'));
    assert_eq!(app.view, View::Dashboard);
    app.update(ch('3'));
    assert_eq!(app.view, View::Compare);
    assert!(app.notice.as_ref().unwrap().text.contains("compare"));
    app.update(ch('1'));
    assert_eq!(app.view, View::Dashboard);
}

#[test]
fn a_compact_screen_tabs_only_between_the_panes_it_shows() {
    let mut app = fixture::app();
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    assert!(app.compact());
    assert_eq!(app.focus, Focus::Recent);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Errors);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Recent);
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    app.update(key(KeyCode::Tab));
    assert_eq!(
        app.focus,
        Focus::StatusCodes,
        "every pane again when there is room"
    );
}
