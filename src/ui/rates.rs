//! The rates view: successes, errors and 429s per second for each provider over the last two
//! minutes (5-second steps), one chart per provider, so waves show as waves.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use super::{dim, theme};
use crate::app::App;
use crate::stats::{HISTORY_SECONDS, ProviderStats};

/// Seconds per point.
const STEP: usize = 5;
/// Rows a chart needs to say anything.
const MIN_CHART_HEIGHT: u16 = 6;

/// Per-second rates of one provider, oldest first: (seconds ago, successes, errors, 429s).
#[must_use]
pub fn series(provider: &ProviderStats, now_second: i64) -> [Vec<(f64, f64)>; 3] {
    let mut series: [Vec<(f64, f64)>; 3] = Default::default();
    let seconds: Vec<_> = provider
        .history
        .seconds(now_second, HISTORY_SECONDS)
        .collect();
    let steps = seconds.len() / STEP;
    for (step, chunk) in seconds.chunks(STEP).enumerate() {
        let (mut ok, mut failed, mut throttled) = (0_u32, 0_u32, 0_u32);
        for bucket in chunk.iter().flatten() {
            ok += bucket.succeeded;
            failed += bucket.attempts - bucket.succeeded;
            throttled += bucket.throttled;
        }
        // Seconds ago of the step's end; exact as f64 (at most 120).
        #[allow(clippy::cast_precision_loss)]
        let x = -(((steps - step - 1) * STEP) as f64);
        #[allow(clippy::cast_precision_loss)]
        let per_second = |n: u32| f64::from(n) / STEP as f64;
        series[0].push((x, per_second(ok)));
        series[1].push((x, per_second(failed)));
        series[2].push((x, per_second(throttled)));
    }
    series
}

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(
        " Rates per second, last 2 minutes · ━ success ━ errors ━ 429 ",
        Style::new().fg(theme::ACCENT).add_modifier(Modifier::BOLD),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let providers: Vec<&ProviderStats> = app.shown_providers().collect();
    let fit = usize::from(inner.height / MIN_CHART_HEIGHT).max(1);
    let shown = &providers[..providers.len().min(fit)];
    if shown.is_empty() {
        frame.render_widget(Paragraph::new("no providers").style(dim()), inner);
        return;
    }
    let areas = Layout::vertical(shown.iter().map(|_| Constraint::Fill(1))).split(inner);
    for (provider, area) in shown.iter().zip(areas.iter()) {
        chart(
            frame,
            *area,
            provider,
            app.now.timestamp(),
            providers.len() - shown.len(),
        );
    }
}

fn chart(
    frame: &mut Frame<'_>,
    area: Rect,
    provider: &ProviderStats,
    now_second: i64,
    hidden: usize,
) {
    let [ok, failed, throttled] = series(provider, now_second);
    let top = ok
        .iter()
        .chain(&failed)
        .map(|(_, y)| *y)
        .fold(1.0_f64, f64::max)
        .ceil();
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::GOOD))
            .data(&ok),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::BAD))
            .data(&failed),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::WARN))
            .data(&throttled),
    ];
    let title = if hidden > 0 {
        format!("{} (+{hidden} more: f filters)", provider.name)
    } else {
        provider.name.clone()
    };
    let chart = Chart::new(datasets)
        .block(Block::new().title(Line::from(Span::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD),
        ))))
        .x_axis(
            Axis::default()
                .bounds([-120.0, 0.0])
                .labels(["-2m", "-1m", "now"])
                .style(dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_owned(), format!("{top:.0}/s")])
                .style(dim()),
        );
    frame.render_widget(chart, area);
}
