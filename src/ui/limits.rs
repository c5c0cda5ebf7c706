//! Rate limits, per provider: limit, remaining as a gauge, reset countdown, Retry-After in force,
//! 429s, and when the next request is allowed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};

use super::{countdown, dim, pane, theme};
use crate::app::{App, Focus};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Rate limits", app, Focus::RateLimits);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for (index, provider) in app.shown_providers().enumerate() {
        if y + 2 > bottom {
            break;
        }
        let rate = &provider.rate_limit;
        let selected = app.focus == Focus::RateLimits && index == app.selection.provider;
        let name_style = if selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        let row = Rect::new(inner.x, y, inner.width, 1);
        match (
            rate.limit,
            rate.remaining,
            rate.remaining_ratio(),
            rate.pressure(),
        ) {
            (Some(limit), Some(remaining), Some(ratio), Some(pressure)) => {
                let color = theme::gauge(pressure, theme::GOOD);
                let gauge = LineGauge::default()
                    .ratio(ratio)
                    .label(Line::from(vec![
                        Span::styled(format!("{} ", provider.name), name_style),
                        Span::raw(format!("{remaining}/{limit}")),
                    ]))
                    .filled_style(Style::new().fg(color))
                    .unfilled_style(dim());
                frame.render_widget(gauge, row);
            }
            _ => {
                let line = Line::from(vec![
                    Span::styled(format!("{} ", provider.name), name_style),
                    Span::styled("no rate-limit headers", dim()),
                ]);
                frame.render_widget(Paragraph::new(line), row);
            }
        }
        let retry_after = rate.retry_after_until.filter(|until| *until > app.now);
        let next = app.next_allowed(provider);
        let next_style = if next.is_some() {
            Style::new().fg(theme::WARN)
        } else {
            Style::new().fg(theme::GOOD)
        };
        let mut timing = Line::from(vec![
            Span::raw(format!("  reset {} · ", countdown(rate.reset_at, app.now))),
            Span::styled(format!("next {}", countdown(next, app.now)), next_style),
        ]);
        let mut pressure = Line::from(format!(
            "  Retry-After {} · 429s {}",
            retry_after.map_or_else(|| "—".to_owned(), |at| countdown(Some(at), app.now)),
            rate.throttled
        ));
        // What drives this provider's probing (its schedule, capped by its rate; `+`/`−`), on
        // the first line with room for it whole: never cut.
        if let Some(probing) = app
            .live
            .get(&provider.name)
            .and_then(crate::app::ProviderLive::probe_rate)
            .map(|rate| format!(" · probe {}", rate.short()))
        {
            let room = |line: &Line<'_>| {
                line.width() + probing.chars().count() <= usize::from(inner.width)
            };
            if room(&pressure) {
                pressure.push_span(Span::raw(probing));
            } else if room(&timing) {
                timing.push_span(Span::raw(probing));
            }
        }
        let three_lines = inner.height >= 6 && y + 3 <= bottom;
        if three_lines {
            frame.render_widget(
                Paragraph::new(timing),
                Rect::new(inner.x, y + 1, inner.width, 1),
            );
            frame.render_widget(
                Paragraph::new(pressure),
                Rect::new(inner.x, y + 2, inner.width, 1),
            );
            y += if inner.height >= 10 { 4 } else { 3 };
        } else {
            let mut spans = timing.spans;
            spans.extend(pressure.spans);
            frame.render_widget(
                Paragraph::new(Line::from(spans)),
                Rect::new(inner.x, y + 1, inner.width, 1),
            );
            y += 2;
        }
    }
}
