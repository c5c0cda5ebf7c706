//! Concurrency: in flight now vs the limit in force (gauge), the user's limit (`set`, the config's
//! `concurrency` or `[`/`]`) and the provider's own figure (`plan`, from its headers) apart, limit
//! hits, and a sparkline of in-flight over time.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Sparkline};

use super::{dim, pane, theme};
use crate::app::{App, Focus};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Concurrency", app, Focus::Concurrency);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let providers: Vec<_> = app.shown_providers().collect();
    let per = (inner.height / u16::try_from(providers.len().max(1)).unwrap_or(1)).max(2);
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for (index, provider) in providers.iter().enumerate() {
        if y + 2 > bottom {
            break;
        }
        let state = &provider.concurrency;
        let live = app.live.get(&provider.name);
        // In force: what the engine applies (adapted to the plan and to refusals).
        let limit = live.and_then(|live| live.concurrency).or(state.limit);
        let configured = live.and_then(|live| live.configured_concurrency);
        let selected = app.focus == Focus::Concurrency && index == app.selection.provider;
        let name_style = if selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        let label = Line::from(vec![
            Span::styled(format!("{} ", provider.name), name_style),
            Span::raw(format!(
                "{}/{}",
                state.in_flight,
                limit.map_or_else(|| "?".to_owned(), |l| l.to_string())
            )),
        ]);
        let ratio = state.fill_ratio(limit);
        let color = theme::gauge(state.pressure(limit), theme::ACCENT);
        frame.render_widget(
            LineGauge::default()
                .ratio(ratio)
                .label(label)
                .filled_style(Style::new().fg(color))
                .unfilled_style(dim()),
            Rect::new(inner.x, y, inner.width, 1),
        );
        let text = format!(
            "{}plan {} · hits {} ",
            configured.map_or_else(String::new, |set| format!("set {set} · ")),
            state
                .advertised
                .map_or_else(|| "?".to_owned(), |plan| plan.to_string()),
            state.limit_hits
        );
        let text_width = u16::try_from(text.chars().count()).unwrap_or(u16::MAX);
        let row = Rect::new(inner.x, y + 1, inner.width, (per - 1).min(bottom - y - 1));
        frame.render_widget(
            Paragraph::new(text),
            Rect::new(row.x, row.y, text_width.min(row.width), 1),
        );
        let spark_width = row.width.saturating_sub(text_width);
        if spark_width > 2 {
            let history: Vec<u64> = provider
                .history
                .seconds(app.now.timestamp(), usize::from(spark_width))
                .map(|bucket| bucket.map_or(0, |b| u64::from(b.max_in_flight)))
                .collect();
            frame.render_widget(
                Sparkline::default()
                    .data(&history)
                    .max(u64::from(limit.unwrap_or(1).max(1)))
                    .style(Style::new().fg(theme::ACCENT)),
                Rect::new(row.x + text_width, row.y, spark_width, row.height),
            );
        }
        y += per;
    }
}
