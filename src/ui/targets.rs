//! The targets view: every target (by host, or by URL: `g` switches) × provider, answering
//! "which sites fail, on which provider". Rows of one target sit together, the target with the
//! most failures first; within a target the provider with the best success (then the lowest cost
//! per success) is starred.
//!
//! ```text
//! target              provider    n     API    target status       p50   p90   cost/ok
//! shop.example.com  ★ alterlab    12    100%   83.3%  200×10 403×2  1.2s  2.1s  1.50
//!                     omniscrape  12    91.7%  72.7%  200×8 404×3   0.9s  1.4s  0.0052
//! ```

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{count, dim, ms, percent, short_amount, theme};
use crate::app::{App, TargetGrouping};
use crate::stats::{ProviderStats, TargetStats};

/// One row: a target through one provider.
pub struct TargetRow<'a> {
    pub target: &'a str,
    pub provider: &'a ProviderStats,
    pub stats: &'a TargetStats,
    /// The first row of its target (the target's name is shown there only).
    pub first: bool,
    /// The best provider for this target (by success, then cost per success).
    pub best: bool,
}

/// Every row of the view, in display order. Cheap: no quantile is read here.
#[must_use]
pub fn rows(app: &App) -> Vec<TargetRow<'_>> {
    let mut groups: BTreeMap<&str, Vec<(&ProviderStats, &TargetStats)>> = BTreeMap::new();
    for provider in app.shown_providers() {
        let table = match app.targets_by {
            TargetGrouping::Host => &provider.by_host,
            TargetGrouping::Url => &provider.by_target,
        };
        for (name, stats) in table.iter() {
            groups.entry(name).or_default().push((provider, stats));
        }
    }
    let mut ordered: Vec<(&str, Vec<(&ProviderStats, &TargetStats)>)> =
        groups.into_iter().collect();
    let failures = |rows: &[(&ProviderStats, &TargetStats)]| -> u64 {
        rows.iter()
            .map(|(_, t)| t.layers.attempts - t.layers.succeeded)
            .sum()
    };
    ordered.sort_by(|a, b| failures(&b.1).cmp(&failures(&a.1)).then(a.0.cmp(b.0)));
    let mut rows = Vec::new();
    for (target, members) in ordered {
        let best = best_of(&members);
        for (index, (provider, stats)) in members.into_iter().enumerate() {
            rows.push(TargetRow {
                target,
                provider,
                stats,
                first: index == 0,
                best: best == Some(index),
            });
        }
    }
    rows
}

/// The index of the best provider among a target's rows, when there are several to choose from:
/// the highest success rate, then the lowest cost per success (in each provider's own unit, so
/// compared only between providers of one unit), then the most attempts.
fn best_of(members: &[(&ProviderStats, &TargetStats)]) -> Option<usize> {
    if members.len() < 2 {
        return None;
    }
    let score = |(provider, stats): &(&ProviderStats, &TargetStats)| {
        let cost_usd = stats
            .cost_per_success()
            .zip(provider.billing.unit.usd_per_unit())
            .map(|(cost, rate)| cost * rate);
        (stats.layers.success_rate().unwrap_or(0.0), cost_usd)
    };
    let mut best = 0;
    for index in 1..members.len() {
        let (rate, cost) = score(&members[index]);
        let (best_rate, best_cost) = score(&members[best]);
        let cheaper = matches!((cost, best_cost), (Some(c), Some(b)) if c < b);
        if rate > best_rate + 1e-9 || ((rate - best_rate).abs() <= 1e-9 && cheaper) {
            best = index;
        }
    }
    members[best].1.layers.succeeded.gt(&0).then_some(best)
}

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let by = match app.targets_by {
        TargetGrouping::Host => "host",
        TargetGrouping::Url => "URL",
    };
    let block = Block::bordered().title(Span::styled(
        format!(
            " Targets by {by} × provider · g: by {} ",
            match app.targets_by {
                TargetGrouping::Host => "URL",
                TargetGrouping::Url => "host",
            }
        ),
        Style::new().fg(theme::ACCENT).add_modifier(Modifier::BOLD),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = rows(app);
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("no attempts yet").style(dim()), inner);
        return;
    }
    let with_status = inner.width >= 110;
    let with_latency = inner.width >= 70;
    let visible = usize::from(inner.height.saturating_sub(1)).max(1);
    let selected = app.selection.target.min(rows.len() - 1);
    let first = (selected + 1).saturating_sub(visible);
    let table_rows: Vec<Row<'static>> = rows
        .iter()
        .skip(first)
        .take(visible)
        .map(|row| table_row(row, with_status, with_latency))
        .collect();
    let mut widths = vec![
        Constraint::Min(14),
        Constraint::Length(12),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let mut header = vec!["target", "provider", "n", "API", "target"];
    if with_status {
        widths.push(Constraint::Length(22));
        header.push("status mix");
    }
    if with_latency {
        widths.extend([Constraint::Length(5), Constraint::Length(5)]);
        header.extend(["p50", "p90"]);
    }
    widths.push(Constraint::Length(7));
    header.push("cost/ok");
    let table = Table::new(table_rows, widths)
        .header(
            Row::new(header)
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(selected - first));
    frame.render_stateful_widget(table, inner, &mut state);
}

fn table_row(row: &TargetRow<'_>, with_status: bool, with_latency: bool) -> Row<'static> {
    let stats = row.stats;
    let layers = stats.layers;
    let rate_style = theme::success_rate;
    let name = if row.first {
        row.target.to_owned()
    } else {
        String::new()
    };
    let provider = format!(
        "{}{}",
        if row.best { "★ " } else { "  " },
        row.provider.name
    );
    let mut cells = vec![
        Cell::from(name),
        Cell::from(provider).style(if row.best {
            Style::new().fg(theme::GOOD).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }),
        Cell::from(count(layers.attempts)),
        Cell::from(percent(layers.api_success_rate())).style(rate_style(layers.api_success_rate())),
        Cell::from(percent(layers.target_success_rate()))
            .style(rate_style(layers.target_success_rate())),
    ];
    if with_status {
        let mut mix: Vec<String> = stats
            .statuses()
            .iter()
            .map(|(status, n)| format!("{status}×{}", count(*n)))
            .collect();
        if stats.other_statuses > 0 {
            mix.push(format!("+{}", count(stats.other_statuses)));
        }
        cells.push(Cell::from(fit_words(&mix, 22)));
    }
    if with_latency {
        let (p50, p90) = stats.success_p50_p90().map_or_else(
            || ("—".to_owned(), "—".to_owned()),
            |(p50, p90)| (ms(p50), ms(p90)),
        );
        cells.extend([Cell::from(p50), Cell::from(p90)]);
    }
    cells.push(Cell::from(
        stats
            .cost_per_success()
            .map_or_else(|| "—".to_owned(), short_amount),
    ));
    Row::new(cells)
}

/// As many whole words as fit in `width` cells, then `…`: a status is shown whole or not at all.
fn fit_words(words: &[String], width: usize) -> String {
    let mut line = String::new();
    for (index, word) in words.iter().enumerate() {
        let extra = usize::from(!line.is_empty()) + word.chars().count();
        let more_after = index + 1 < words.len();
        if line.chars().count() + extra + usize::from(more_after) * 2 > width {
            line.push_str(if line.is_empty() { "…" } else { " …" });
            return line;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}
