//! Latency: p50/p90/p99/max from the HDR histograms, per provider, with a sparkline of the slowest
//! answer per second.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell, Row, Sparkline, Table};

use super::{pane, theme};
use crate::app::{App, Focus};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Latency (ms)", app, Focus::Latency);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let providers: Vec<_> = app.shown_providers().collect();
    let table_height = u16::try_from(providers.len()).unwrap_or(0) + 1;
    let [table_area, spark_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(inner);
    let rows: Vec<Row<'static>> = providers
        .iter()
        .enumerate()
        .map(|(index, provider)| {
            let s = provider.latency_summary();
            let style = if app.focus == Focus::Latency && index == app.selection.provider {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(provider.name.clone()),
                Cell::from(format!("{:.0}", s.p50)),
                Cell::from(format!("{:.0}", s.p90)),
                Cell::from(format!("{:.0}", s.p99)),
                Cell::from(format!("{:.0}", s.max)),
            ])
            .style(style)
        })
        .collect();
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Min(8),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(6),
            ],
        )
        .header(
            Row::new(vec!["", "p50", "p90", "p99", "max"])
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        ),
        table_area,
    );
    if spark_area.height > 0 && spark_area.width > 0 {
        // The slowest answer of each second, all shown providers together.
        let width = usize::from(spark_area.width);
        let mut slowest = vec![0_u64; width];
        for provider in &providers {
            for (slot, bucket) in slowest
                .iter_mut()
                .zip(provider.history.seconds(app.now.timestamp(), width))
            {
                let Some(bucket) = bucket else { continue };
                let ms = u64::try_from(bucket.latency_max.as_millis()).unwrap_or(u64::MAX);
                *slot = (*slot).max(ms);
            }
        }
        frame.render_widget(
            Sparkline::default()
                .data(&slowest)
                .style(Style::new().fg(theme::TRANSPORT)),
            spark_area,
        );
    }
}
