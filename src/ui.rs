//! Rendering: `render(frame, &App)` draws the whole screen from the state, and nothing else. Pure:
//! no clock reads, no I/O; each pane is one file under `ui/` with `render(frame, area, &App)`.
//!
//! Screen layout (100×30 shown; at 200×60 the rows grow and panes show more rows and wider bars):
//!
//! ```text
//! ┌ header: omniscope · session 00:15:00 · filter all · running / PAUSED / REPLAY 10x ─────────┐
//! ┌ Status codes (API | target) ──────────────┐┌ Errors ───────────────────────────────────────┐
//! │ API status  n  share  1m │ target  n  …    ││ code  provider  n  retry  refund               │
//! │ …                        │                 ││ advice of the selected code                    │
//! └───────────────────────────────────────────┘└───────────────────────────────────────────────┘
//! ┌ Rate limits ──────────┐┌ Concurrency ──────────┐┌ Billing & quota ──────────────────────────┐
//! │ per provider: gauge,  ││ in flight / limit     ││ charged refunded net balance, quota gauge, │
//! │ reset, Retry-After…   ││ gauge, sparkline      ││ burn/h, exhaustion, mismatches             │
//! └───────────────────────┘└───────────────────────┘└────────────────────────────────────────────┘
//! ┌ Latency ──────────────┐┌ Recent attempts ─────────────────────────────────────────────────────┐
//! │ p50 p90 p99 max       ││ #id  time  provider  api  target  code  latency  cost                │
//! │ sparkline             ││ …  (Enter: detail popup)                                             │
//! └───────────────────────┘└──────────────────────────────────────────────────────────────────────┘
//!  footer: notice · key hints
//! ```
//! Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] a "terminal too small" note replaces the panes.

mod billing;
mod compare;
mod concurrency;
mod detail;
mod errors;
mod health;
mod help;
mod latency;
mod limits;
mod rates;
mod recent;
mod status;
mod targets;
mod theme;

use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};

use crate::app::{Action, App, Focus, Overlay, View};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Draw the whole screen.
pub fn render(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, header, app);
    render_footer(frame, footer, app);
    let [health_area, body] =
        Layout::vertical([Constraint::Length(health::height(app)), Constraint::Min(0)]).areas(body);
    health::render(frame, health_area, app);
    match app.view {
        View::Dashboard if app.compact() => render_compact(frame, body, app),
        View::Dashboard => render_panes(frame, body, app),
        View::Targets => targets::render(frame, body, app),
        View::Compare => compare::render(frame, body, app),
        View::Rates => rates::render(frame, body, app),
    }

    match app.overlay {
        Overlay::None => {}
        Overlay::Help => help::render(frame, area, app),
        Overlay::Detail(id) => detail::render(frame, area, app, id),
    }
}

/// The compact dashboard: failures over recent attempts, full width.
fn render_compact(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let [failures_area, recent_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(5)]).areas(body);
    errors::render(frame, failures_area, app);
    recent::render(frame, recent_area, app);
}

/// Every pane, from 100×30 up.
fn render_panes(frame: &mut Frame<'_>, body: Rect, app: &App) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Percentage(32),
        Constraint::Percentage(28),
        Constraint::Min(8),
    ])
    .areas(body);
    let [status_area, errors_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [limits_area, concurrency_area, billing_area] = Layout::horizontal([
        Constraint::Percentage(33),
        Constraint::Percentage(30),
        Constraint::Percentage(37),
    ])
    .areas(middle);
    let [latency_area, recent_area] =
        Layout::horizontal([Constraint::Percentage(32), Constraint::Percentage(68)]).areas(bottom);

    status::render(frame, status_area, app);
    errors::render(frame, errors_area, app);
    limits::render(frame, limits_area, app);
    concurrency::render(frame, concurrency_area, app);
    billing::render(frame, billing_area, app);
    latency::render(frame, latency_area, app);
    recent::render(frame, recent_area, app);
}

fn render_too_small(frame: &mut Frame<'_>, area: Rect) {
    let text = vec![
        Line::from(Span::styled(
            "terminal too small",
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(format!(
            "{}×{} here; omniscope needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::from("enlarge the window, or press q to quit"),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn render_header(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let elapsed = app.stats.elapsed(app.now);
    let paused: Vec<&str> = app
        .shown_providers()
        .filter(|p| p.paused.is_some())
        .map(|p| p.name.as_str())
        .collect();
    let state = if let Some(playback) = app.playback {
        // A replay probes nothing: never "running", whatever the recorded providers did.
        let text = if playback.paused {
            " REPLAY paused ".to_owned()
        } else {
            format!(" REPLAY {} ", playback.speed.label())
        };
        Span::styled(text, theme::badge(theme::ACCENT))
    } else if !app.engine_running {
        Span::styled(" engine stopped ", theme::badge(theme::BAD))
    } else if paused.is_empty() {
        Span::styled(" running ", theme::badge(theme::GOOD))
    } else {
        Span::styled(
            format!(" PAUSED: {} ", paused.join(", ")),
            theme::badge(theme::WARN),
        )
    };
    let line = Line::from(vec![
        Span::styled(" omniscope ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("· session {} ", clock(elapsed))),
        Span::raw(format!(
            "· filter {} ",
            app.filter.as_deref().unwrap_or("all")
        )),
        Span::raw(format!("· {} attempts ", app.stats.total_attempts())),
        state,
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn render_footer(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut spans = Vec::new();
    if let Some(notice) = &app.notice {
        let style = if notice.warning {
            Style::new().fg(theme::WARN).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(theme::ACCENT)
        };
        spans.push(Span::styled(format!(" {} ", notice.text), style));
        spans.push(Span::raw("│"));
    }
    let hints = [
        (Action::Quit, "quit"),
        (Action::ViewNext, "view"),
        (Action::PauseAll, "pause"),
        (Action::PauseProvider, "pause provider"),
        (Action::Retry, "retry"),
        (Action::RetryEscalated, "escalate"),
        (Action::RetryAllFailed, "retry failed"),
        (Action::FocusNext, "focus"),
        (Action::Open, "detail"),
        (Action::CycleFilter, "filter"),
        (Action::RateUp, "rate+"),
        (Action::RateDown, "rate-"),
        (Action::ResetCounters, "reset"),
        (Action::Help, "help"),
    ];
    // A replay sends nothing: only the keys that act on it are advertised.
    let replay_keys = [
        Action::Quit,
        Action::PauseAll,
        Action::FocusNext,
        Action::Open,
        Action::CycleFilter,
        Action::RateUp,
        Action::RateDown,
        Action::Help,
    ];
    for (action, label) in hints {
        if app.playback.is_some() && !replay_keys.contains(&action) {
            continue;
        }
        let label = match (app.playback.is_some(), action) {
            (true, Action::PauseAll) => "pause replay",
            (true, Action::RateUp) => "faster",
            (true, Action::RateDown) => "slower",
            _ => label,
        };
        let keys = app.bindings.label(action);
        let key = keys.split('/').next().unwrap_or_default().to_owned();
        spans.push(Span::styled(
            format!(" {key}"),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(
            format!(" {label}"),
            Style::new().fg(theme::HINT),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A pane's frame: its title, highlighted when it has focus.
fn pane(title: &str, app: &App, focus: Focus) -> Block<'static> {
    let focused = app.focus == focus && app.overlay == Overlay::None;
    let (style, border) = if focused {
        (Style::new().fg(theme::ACCENT), BorderType::Thick)
    } else {
        (Style::new(), BorderType::Plain)
    };
    Block::bordered()
        .border_type(border)
        .border_style(style)
        .title(Span::styled(
            format!(" {title} "),
            style.add_modifier(Modifier::BOLD),
        ))
}

/// `hh:mm:ss`.
fn clock(duration: Duration) -> String {
    let secs = duration.as_secs();
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A countdown to `at`: "in 45s", "in 3m05s", "now".
fn countdown(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at.map(|at| (at - now).num_seconds()) {
        None => "—".to_owned(),
        Some(secs) if secs <= 0 => "now".to_owned(),
        Some(secs) if secs < 60 => format!("in {secs}s"),
        Some(secs) if secs < 3600 => format!("in {}m{:02}s", secs / 60, secs % 60),
        Some(secs) => format!("in {}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// A share as a percentage with one decimal.
// Exact as f64: counts far below 2^52.
fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / total as f64)
    }
}

/// An amount with precision suited to its size (USD cents, credits).
fn amount(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

/// A count that never needs more than five cells: `812`, `9999`, `12.3k`, `456k`, `1.2M`.
// Exact as f64 for display: a rounding of the last shown digit at most.
#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> String {
    if n < 10_000 {
        return n.to_string();
    }
    for (scale, suffix) in [(1e3, 'k'), (1e6, 'M'), (1e9, 'G'), (1e12, 'T'), (1e15, 'P')] {
        let value = n as f64 / scale;
        if value < 99.95 {
            return format!("{value:.1}{suffix}");
        }
        if value < 999.5 {
            return format!("{value:.0}{suffix}");
        }
    }
    format!("{:.1}E", n as f64 / 1e18)
}

/// Milliseconds in at most five cells: `812`, `2.4s`, `30.0s`, `120s`, `17m`, `3.0h`.
fn ms(value: f64) -> String {
    let value = value.max(0.0);
    if value < 1_000.0 {
        format!("{value:.0}")
    } else if value < 100_000.0 {
        format!("{:.1}s", value / 1e3)
    } else if value < 1_000_000.0 {
        format!("{:.0}s", value / 1e3)
    } else if value < 6_000_000.0 {
        format!("{:.0}m", value / 6e4)
    } else if value < 36_000_000.0 {
        format!("{:.1}h", value / 3.6e6)
    } else {
        format!("{:.0}h", (value / 3.6e6).min(99_999.0))
    }
}

/// A share 0–1 as a percentage in at most six cells (`100%`, `96.8%`, `—`).
fn percent(rate: Option<f64>) -> String {
    match rate {
        None => "—".to_owned(),
        Some(rate) if rate >= 0.9995 => "100%".to_owned(),
        Some(rate) => format!("{:.1}%", rate * 100.0),
    }
}

/// An amount in at most seven cells, whatever its size (`0.0035`, `15.00`, `4870`, `12.3k`).
fn short_amount(value: f64) -> String {
    if value.abs() >= 10_000.0 {
        // Exact enough for display: whole units.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = value.abs().round() as u64;
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(whole))
    } else {
        amount(value)
    }
}

fn dim() -> Style {
    Style::new().fg(theme::MUTED)
}

#[cfg(test)]
mod tests;
