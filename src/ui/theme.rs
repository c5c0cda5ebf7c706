//! Every colour the dashboard draws with, named by what it means, in one place: change a colour
//! here and every pane follows. Gauges take their colour from the [`Pressure`] the statistics
//! compute, never from thresholds of their own.

use ratatui::style::{Color, Modifier, Style};

use crate::stats::{Pressure, StatusClass};

/// Good news: a success, a retryable code, a refund, room left, nothing to wait for.
pub const GOOD: Color = Color::Green;
/// Worth a look: a wait in force, a "maybe", a paused provider.
pub const WARN: Color = Color::Yellow;
/// Bad news: a failure, a limit reached, money billed against the contract.
pub const BAD: Color = Color::Red;
/// The focused pane, popups, informational notices, the concurrency gauge.
pub const ACCENT: Color = Color::Cyan;
/// Secondary text.
pub const MUTED: Color = Color::DarkGray;
/// The labels of the footer's key hints.
pub const HINT: Color = Color::Gray;
/// Transport failures (no HTTP status) and latency.
pub const TRANSPORT: Color = Color::Magenta;
/// The quota gauge while the quota is far.
pub const QUOTA: Color = Color::Blue;

/// Colour of a status class.
#[must_use]
pub fn status_class(class: StatusClass) -> Color {
    match class {
        StatusClass::Success => GOOD,
        StatusClass::Redirect => ACCENT,
        StatusClass::ClientError => WARN,
        StatusClass::ServerError => BAD,
        StatusClass::Transport => TRANSPORT,
    }
}

/// A success share's colour: below 80 % bad, below 95 % worth a look; muted without a share.
#[must_use]
pub fn success_rate(rate: Option<f64>) -> Style {
    match rate {
        Some(rate) if rate < 0.8 => Style::new().fg(BAD),
        Some(rate) if rate < 0.95 => Style::new().fg(WARN),
        Some(_) => Style::new().fg(GOOD),
        None => Style::new().fg(MUTED),
    }
}

/// A gauge's fill: `normal` until the pressure rises.
#[must_use]
pub fn gauge(pressure: Pressure, normal: Color) -> Color {
    match pressure {
        Pressure::Normal => normal,
        Pressure::High => WARN,
        Pressure::Critical => BAD,
    }
}

/// A badge in the header: dark text on `color`.
#[must_use]
pub fn badge(color: Color) -> Style {
    Style::new().fg(Color::Black).bg(color)
}

/// What must not be missed (a refund billed against the contract).
#[must_use]
pub fn alarm() -> Style {
    Style::new().fg(BAD).add_modifier(Modifier::BOLD)
}
