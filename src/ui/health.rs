//! The health line: one line per provider, always on screen, answering "are my scrapes
//! succeeding, and if not, whose fault is it?".
//!
//! ```text
//! omniscrape  API 94.7% · target 96.8% · 1m ↗ worse · ✗ 5: site 2 · conc 1 · net 1 · api 1
//! alterlab    API 88.0% · target 100%  · 1m → steady · ✗ 3: site 2 · rate 1
//! ```
//!
//! The dominant cause is drawn as an alarm. Parts are dropped from the right when the line is
//! narrow (the smallest causes first); no number is ever cut.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{count, dim, percent, theme};
use crate::app::App;
use crate::stats::{ProviderStats, Trend};

/// Lines the health pane needs: one per shown provider.
#[must_use]
pub fn height(app: &App) -> u16 {
    u16::try_from(app.shown_providers().count()).unwrap_or(u16::MAX)
}

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let name_width = app
        .shown_providers()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line<'static>> = app
        .shown_providers()
        .take(usize::from(area.height))
        .map(|provider| line(provider, app, name_width, usize::from(area.width)))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// One provider's line, at most `width` cells.
fn line(provider: &ProviderStats, app: &App, name_width: usize, width: usize) -> Line<'static> {
    let wide = width >= 110;
    let rate_style = theme::success_rate;
    let mut spans = vec![
        Span::styled(
            format!("{:<name_width$} ", provider.name),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw("API "),
        Span::styled(
            format!("{:<5}", percent(provider.api_success_rate())),
            rate_style(provider.api_success_rate()),
        ),
        Span::raw(" · target "),
        Span::styled(
            format!("{:<5}", percent(provider.target_success_rate())),
            rate_style(provider.target_success_rate()),
        ),
    ];
    let mut used: usize = spans.iter().map(Span::width).sum();
    let mut push = |spans: &mut Vec<Span<'static>>, parts: Vec<Span<'static>>| {
        let needed: usize = parts.iter().map(Span::width).sum();
        if used + needed > width {
            return false;
        }
        used += needed;
        spans.extend(parts);
        true
    };
    if let Some(trend) = provider.failure_trend(app.now.timestamp()) {
        let (word, style) = match trend {
            Trend::Better => ("better", Style::new().fg(theme::GOOD)),
            Trend::Steady => ("steady", dim()),
            Trend::Worse => ("worse", Style::new().fg(theme::BAD)),
        };
        let text = if wide {
            format!("1m {} {word}", trend.arrow())
        } else {
            format!("1m {}", trend.arrow())
        };
        push(
            &mut spans,
            vec![Span::raw(" · "), Span::styled(text, style)],
        );
    }
    let proxied = provider.by_origin.proxy;
    if proxied.attempts > 0 {
        push(
            &mut spans,
            vec![Span::styled(
                format!(
                    " · proxied {} {}",
                    count(proxied.attempts),
                    percent(proxied.success_rate())
                ),
                Style::new().fg(theme::ACCENT),
            )],
        );
    }
    let failures = provider.causes.total();
    if failures == 0 {
        push(&mut spans, vec![Span::styled(" · no failures", dim())]);
        return Line::from(spans);
    }
    if !push(
        &mut spans,
        vec![Span::styled(
            format!(" · ✗ {}", count(failures)),
            Style::new().fg(theme::BAD),
        )],
    ) {
        return Line::from(spans);
    }
    let dominant = provider.causes.dominant();
    let mut causes: Vec<_> = provider.causes.iter().collect();
    causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut first = true;
    for (cause, n) in causes {
        let name = if wide { cause.label() } else { cause.short() };
        let style = if Some(cause) == dominant {
            theme::alarm()
        } else {
            Style::new().fg(theme::WARN)
        };
        let separator = if first { ": " } else { " · " };
        if !push(
            &mut spans,
            vec![
                Span::raw(separator),
                Span::styled(format!("{name} {}", count(n)), style),
            ],
        ) {
            break;
        }
        first = false;
    }
    Line::from(spans)
}
