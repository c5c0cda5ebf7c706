//! Latency: the successes' p50/p90/p99/max and the failures' apart (a fast 429 is no fast scrape),
//! from the HDR histograms, per provider, with a sparkline of the slowest answer per second.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Sparkline, Table};

use super::{dim, ms, pane, theme};
use crate::stats::LatencySummary;

/// One latency column: its title, which attempts, which figure.
struct Column {
    title: &'static str,
    failures: bool,
    value: fn(&LatencySummary) -> f64,
}

const P50: Column = Column {
    title: "p50",
    failures: false,
    value: |s| s.p50,
};
const P90: Column = Column {
    title: "p90",
    failures: false,
    value: |s| s.p90,
};
const P99: Column = Column {
    title: "p99",
    failures: false,
    value: |s| s.p99,
};
const MAX: Column = Column {
    title: "max",
    failures: false,
    value: |s| s.max,
};
const FAIL_P50: Column = Column {
    title: "✗p50",
    failures: true,
    value: |s| s.p50,
};
const FAIL_P90: Column = Column {
    title: "✗p90",
    failures: true,
    value: |s| s.p90,
};
use crate::app::{App, Focus};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Latency · successes | ✗ failures", app, Focus::Latency);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let providers: Vec<_> = app.shown_providers().collect();
    let table_height = u16::try_from(providers.len()).unwrap_or(0) + 1;
    let [table_area, spark_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(inner);
    // Columns by priority: the successes' p50 and p90 and the failures' p50 always; more as the
    // pane widens. Every figure fits five cells (`ui::ms`), so none is cut.
    let columns: &[Column] = match inner.width {
        46.. => &[P50, P90, P99, MAX, FAIL_P50, FAIL_P90],
        34..=45 => &[P50, P90, P99, FAIL_P50],
        _ => &[P50, P90, FAIL_P50],
    };
    let rows: Vec<Row<'static>> = providers
        .iter()
        .enumerate()
        .map(|(index, provider)| {
            let ok = provider.success_latency_summary();
            let failed = provider.failure_latency_summary();
            let style = if app.focus == Focus::Latency && index == app.selection.provider {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            let mut cells = vec![Cell::from(provider.name.clone())];
            cells.extend(columns.iter().map(|column| {
                let summary = if column.failures { &failed } else { &ok };
                if summary.count == 0 {
                    Cell::from(Span::styled("—", dim()))
                } else {
                    let text = ms((column.value)(summary));
                    if column.failures {
                        Cell::from(Span::styled(text, Style::new().fg(theme::BAD)))
                    } else {
                        Cell::from(text)
                    }
                }
            }));
            Row::new(cells).style(style)
        })
        .collect();
    let mut widths = vec![Constraint::Min(5)];
    widths.extend(columns.iter().map(|_| Constraint::Length(5)));
    let mut header = vec![""];
    header.extend(columns.iter().map(|column| column.title));
    frame.render_widget(
        Table::new(rows, widths).header(
            Row::new(header)
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
