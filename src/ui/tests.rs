//! Snapshots of every pane and of the whole screen, from the fixed session at a fixed clock.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use super::*;
use crate::app::{Msg, fixture};

fn draw(width: u16, height: u16, app: &App, draw: impl Fn(&mut Frame<'_>, Rect, &App)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| draw(frame, frame.area(), app))
        .unwrap();
    terminal.backend().to_string()
}

fn screen(width: u16, height: u16, app: &App) -> String {
    draw(width, height, app, |frame, _, app| render(frame, app))
}

#[test]
fn full_screen_100x30() {
    let app = fixture::app();
    let text = screen(100, 30, &app);
    for title in [
        "Status codes",
        "Failures",
        "Rate limits",
        "Concurrency",
        "Billing & quota",
        "Latency",
        "Recent attempts",
    ] {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn full_screen_200x60() {
    let mut app = fixture::app();
    app.update(Msg::Resize {
        width: 200,
        height: 60,
    });
    insta::assert_snapshot!(screen(200, 60, &app));
}

#[test]
fn too_small_terminal_says_so() {
    let app = fixture::app();
    let text = screen(60, 20, &app);
    assert!(text.contains("terminal too small"), "{text}");
    assert!(!text.contains("Recent attempts"));
}

#[test]
fn pane_status_codes() {
    let app = fixture::app();
    let text = draw(60, 12, &app, status::render);
    assert!(text.contains("502"), "{text}");
    assert!(text.contains("no resp"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn pane_errors_with_advice_of_the_selected_code() {
    let mut app = fixture::app();
    app.focus = Focus::Errors;
    let text = draw(60, 12, &app, errors::render);
    assert!(text.contains("CONCURRENCY_LIMIT"), "{text}");
    // Only a charge is "billed": the 404 behind a success was charged, the timeout and the
    // 429 answered with RATE_LIMIT_EXCEEDED were not (nor refundable).
    let row = |name: &str| text.lines().find(|l| l.contains(name)).unwrap_or_default();
    assert!(row("target 404").contains("billed"), "{text}");
    for free in ["timeout", "RATE_LIMIT_EXCEEDED"] {
        assert!(!row(free).contains("billed"), "{free}: {text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn pane_rate_limits() {
    let app = fixture::app();
    let text = draw(50, 8, &app, limits::render);
    assert!(text.contains("0/60"), "{text}");
    assert!(text.contains("in 45s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn pane_concurrency() {
    let app = fixture::app();
    insta::assert_snapshot!(draw(50, 8, &app, concurrency::render));
}

#[test]
fn pane_billing() {
    let app = fixture::app();
    let text = draw(70, 9, &app, billing::render);
    assert!(text.contains("refund mismatch"), "{text}");
    assert!(text.contains("quota"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn pane_latency() {
    let app = fixture::app();
    insta::assert_snapshot!(draw(40, 8, &app, latency::render));
}

#[test]
fn pane_recent_attempts() {
    let app = fixture::app();
    insta::assert_snapshot!(draw(120, 12, &app, recent::render));
}

#[test]
fn detail_redacts_the_key_and_offers_the_escalation() {
    let mut app = fixture::app();
    // #35: AlterLab's antibot block, whose headers carry an X-API-Key echo.
    app.overlay = Overlay::Detail(35);
    let text = screen(120, 40, &app);
    assert!(!text.contains("sk_test_must_never_show"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(text.contains("BLOCKED_BY_ANTIBOT"), "{text}");
    assert!(text.contains("costs more"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn help_lists_every_action() {
    let mut app = fixture::app();
    app.overlay = Overlay::Help;
    let text = screen(100, 30, &app);
    for action in Action::all() {
        assert!(
            text.contains(action.description().split(' ').next().unwrap()),
            "{action:?}:\n{text}"
        );
    }
    insta::assert_snapshot!(text);
}

#[test]
fn help_of_a_replay_offers_only_the_keys_that_act_on_it() {
    let mut app = fixture::app();
    app.overlay = Overlay::Help;
    app.playback = Some(crate::app::Playback {
        paused: false,
        speed: crate::eventlog::replay::Speed::Times(10),
    });
    let text = screen(100, 30, &app);
    assert!(text.contains("act on a replay"), "{text}");
    assert!(text.contains("play faster"), "{text}");
    assert!(text.contains("pause / resume the replay"), "{text}");
    for live_only in [
        Action::Retry,
        Action::RetryEscalated,
        Action::RetryAllFailed,
        Action::PauseProvider,
        Action::ConcurrencyUp,
    ] {
        assert!(
            !text.contains(live_only.description()),
            "{live_only:?}:\n{text}"
        );
    }
    assert!(!text.contains("retry"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_replay_does_not_look_live() {
    let mut app = fixture::app();
    app.playback = Some(crate::app::Playback {
        paused: false,
        speed: crate::eventlog::replay::Speed::Times(10),
    });
    let text = screen(160, 30, &app);
    let header = text.lines().next().unwrap();
    assert!(header.contains("REPLAY 10x"), "{header}");
    assert!(!header.contains("running"), "{header}");
    let footer = text.lines().last().unwrap();
    assert!(
        footer.contains("faster") && footer.contains("pause replay"),
        "{footer}"
    );
    for live_only in ["retry", "escalate", "pause provider", "rate+", "reset"] {
        assert!(!footer.contains(live_only), "{live_only}: {footer}");
    }
    app.playback = Some(crate::app::Playback {
        paused: true,
        speed: crate::eventlog::replay::Speed::Times(10),
    });
    let text = screen(160, 30, &app);
    assert!(text.lines().next().unwrap().contains("REPLAY paused"));
}

#[test]
fn header_shows_pause() {
    let mut app = fixture::app();
    app.update(Msg::Fact(crate::app::Fact::Paused {
        origin: crate::outcome::Origin::Probe,
        provider: "alterlab".into(),
        reason: "INSUFFICIENT_CREDITS: no balance".into(),
        at: app.now,
    }));
    let text = screen(100, 30, &app);
    assert!(
        text.lines().next().unwrap().contains("PAUSED: alterlab"),
        "{text}"
    );
}

#[test]
fn detail_of_a_replayed_success_says_why_headers_and_body_are_missing() {
    let mut app = fixture::app();
    let live = (1..=100)
        .filter_map(|id| app.stats.attempt(id))
        .find(|o| o.succeeded() && !o.headers.is_empty())
        .expect("the fixture has a success with headers")
        .clone();
    let mut replayed = crate::eventlog::logged_outcome(&live);
    replayed.attempt_id = 9_999;
    app.update(Msg::Fact(crate::app::Fact::Attempt {
        at: app.now,
        outcome: Box::new(replayed),
        in_flight: Some(0),
    }));
    app.overlay = Overlay::Detail(9_999);
    let text = screen(120, 40, &app);
    assert!(text.contains("not in the event log"), "{text}");

    app.overlay = Overlay::Detail(live.attempt_id);
    let text = screen(120, 40, &app);
    assert!(!text.contains("not in the event log"), "{text}");
}

#[test]
fn detail_says_what_the_provider_said_of_its_work() {
    let mut app = fixture::app();
    let mut said = (1..=100)
        .filter_map(|id| app.stats.attempt(id))
        .find(|o| o.provider == "omniscrape" && !o.succeeded())
        .expect("the fixture has an OmniScrape failure")
        .clone();
    said.attempt_id = 9_998;
    said.provider_work = crate::outcome::ProviderWork {
        elapsed_s: Some(12.4),
        solver_used: Some(true),
    };
    app.update(Msg::Fact(crate::app::Fact::Attempt {
        at: app.now,
        outcome: Box::new(said),
        in_flight: Some(0),
    }));
    app.overlay = Overlay::Detail(9_998);
    let text = screen(120, 40, &app);
    assert!(
        text.contains("worked 12.4 s · challenge solver used"),
        "{text}"
    );
}

/// The colours, not just the text: every cell's style of the whole screen and of the detail popup
/// (the theme must draw exactly what the hard-coded colours drew).
#[test]
fn styles_of_the_full_screen_and_the_detail() {
    let styled = |app: &App, width: u16, height: u16| {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(frame, app)).unwrap();
        format!("{:?}", terminal.backend().buffer())
    };
    let mut app = fixture::app();
    insta::assert_snapshot!("styles_full_screen_120x40", styled(&app, 120, 40));
    app.overlay = Overlay::Detail(35);
    insta::assert_snapshot!("styles_detail_120x40", styled(&app, 120, 40));
}

#[test]
fn numbers_are_abbreviated_never_cut() {
    assert_eq!(count(812), "812");
    assert_eq!(count(12_345), "12.3k");
    assert_eq!(count(456_789), "457k");
    assert_eq!(count(1_234_567), "1.2M");
    assert_eq!(ms(812.4), "812");
    assert_eq!(ms(2_439.0), "2.4s");
    assert_eq!(ms(30_015.0), "30.0s");
    assert_eq!(ms(120_000.0), "120s");
    assert_eq!(ms(1_020_000.0), "17m");
    assert_eq!(percent(Some(1.0)), "100%");
    assert_eq!(percent(Some(0.9684)), "96.8%");
    assert_eq!(percent(None), "—");
    assert_eq!(short_amount(48_700.0), "48.7k");
    for n in [0, 9_999, 10_000, 99_999, 999_999, u64::MAX] {
        assert!(count(n).chars().count() <= 5, "{n}: {}", count(n));
    }
    for v in [0.0, 999.4, 99_999.0, 5_999_999.0, 1e12] {
        assert!(ms(v).chars().count() <= 6, "{v}: {}", ms(v));
    }
}

#[test]
fn full_screen_80x24_keeps_every_number_whole() {
    let mut app = fixture::app();
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    let text = screen(80, 24, &app);
    // The health line of each provider, with its dominant cause.
    assert!(
        text.contains("omniscrape API 90.0% · target 83.3%"),
        "{text}"
    );
    assert!(text.contains("✗ 5: site 3 · conc 1 · net 1"), "{text}");
    insta::assert_snapshot!(text);
}

fn in_view(view: crate::app::View, width: u16, height: u16) -> (App, String) {
    let mut app = fixture::app();
    app.view = view;
    app.update(Msg::Resize { width, height });
    let text = screen(width, height, &app);
    (app, text)
}

#[test]
fn view_targets_lists_each_target_per_provider() {
    let (_, text) = in_view(crate::app::View::Targets, 120, 30);
    // slow.example.com: one attempt through OmniScrape, a timeout.
    let slow = text
        .lines()
        .find(|line| line.contains("slow.example.com"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        slow.contains("omniscrape") && slow.contains("0.0%"),
        "{slow}"
    );
    // example.com is probed through both: the better one is starred.
    assert!(text.contains("★ alterlab"), "{text}");
    insta::assert_snapshot!(text);
    let (_, narrow) = in_view(crate::app::View::Targets, 80, 24);
    assert!(narrow.contains("slow.example.com"), "{narrow}");
    insta::assert_snapshot!("view_targets_80x24", narrow);
}

#[test]
fn view_targets_by_url() {
    let mut app = fixture::app();
    app.view = crate::app::View::Targets;
    app.targets_by = crate::app::TargetGrouping::Url;
    let text = screen(120, 30, &app);
    assert!(text.contains("example.com/missing"), "{text}");
    assert!(text.contains("shop.example.com/item/42"), "{text}");
}

#[test]
fn view_compare_sets_providers_side_by_side() {
    let (_, text) = in_view(crate::app::View::Compare, 100, 30);
    for figure in [
        "success",
        "✗ concurrency",
        "✗ network",
        "success p50/p90",
        "cost / success",
        "throttled (429)",
        "runway",
    ] {
        assert!(text.contains(figure), "{figure} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
    let (_, narrow) = in_view(crate::app::View::Compare, 80, 24);
    insta::assert_snapshot!("view_compare_80x24", narrow);
}

#[test]
fn view_rates_charts_each_provider() {
    let (_, text) = in_view(crate::app::View::Rates, 100, 30);
    assert!(
        text.contains("omniscrape") && text.contains("alterlab"),
        "{text}"
    );
    assert!(text.contains("-2m") && text.contains("now"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn proxied_traffic_shows_beside_the_probes() {
    let mut app = fixture::app();
    let mut proxied = app.stats.recent.back().unwrap().clone();
    proxied.origin = crate::outcome::Origin::Proxy;
    proxied.attempt_id = 9_000;
    app.update(Msg::Fact(crate::app::Fact::Attempt {
        at: app.now,
        outcome: Box::new(proxied),
        in_flight: None,
    }));
    let text = screen(120, 40, &app);
    assert!(text.contains("proxied 1 0.0%"), "{text}");
    app.view = crate::app::View::Compare;
    let text = screen(120, 40, &app);
    let line = text
        .lines()
        .find(|l| l.contains("  proxied"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("0.0%") && line.contains('—'), "{line}");
}
