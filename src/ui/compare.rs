//! The compare view: provider against provider, one column each, one figure per row, the best
//! value of each row in green, so "which provider should this go to" reads across a line.
//!
//! ```text
//! figure            omniscrape   alterlab
//! success           75.0%        83.3%
//!   API / target    80.0%/93.8%  83.3%/100%
//! ✗ provider        0            0
//! ✗ target          3            2
//! …
//! success p50/p90   1.1s/1.5s    1.2s/1.2s
//! cost / success    0.0070 usd   3.0 microcents
//! …in USD           $0.0070      $0.00000003
//! refunded          0.0%         40.0%
//! throttled (429)   0.0%         16.7%
//! runway            quota 5d     bal 3d
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use super::{count, dim, ms, percent, short_amount, theme};
use crate::app::App;
use crate::outcome::Cause;
use crate::stats::ProviderStats;

/// Width of one provider's column.
const COLUMN: u16 = 13;
/// Width of the figure names.
const LABEL: u16 = 16;

/// Which value of a row is best.
#[derive(Clone, Copy)]
enum Best {
    Highest,
    Lowest,
    None,
}

/// One figure across the providers: its name, each provider's text and (for ranking) number.
struct Figure {
    name: String,
    values: Vec<(String, Option<f64>)>,
    best: Best,
}

fn figures(app: &App, providers: &[&ProviderStats]) -> Vec<Figure> {
    let now = app.now;
    let row =
        |name: &str, best: Best, value: &dyn Fn(&ProviderStats) -> (String, Option<f64>)| Figure {
            name: name.to_owned(),
            values: providers.iter().map(|p| value(p)).collect(),
            best,
        };
    let rate = |rate: Option<f64>| (percent(rate), rate);
    let mut figures = vec![
        row("attempts", Best::None, &|p| (count(p.attempts), None)),
        row("success", Best::Highest, &|p| rate(p.success_rate())),
        row("  API success", Best::Highest, &|p| {
            rate(p.api_success_rate())
        }),
        row("  target success", Best::Highest, &|p| {
            rate(p.target_success_rate())
        }),
    ];
    // Traffic through `omniscope proxy` beside the probes: each origin's success apart.
    if providers.iter().any(|p| p.by_origin.proxy.attempts > 0) {
        figures.extend([
            row("  probes", Best::Highest, &|p| {
                rate(p.by_origin.probe.success_rate())
            }),
            row("  proxied", Best::Highest, &|p| {
                rate(p.by_origin.proxy.success_rate())
            }),
        ]);
    }
    for cause in Cause::all() {
        let name = format!("✗ {}", cause.label());
        figures.push(row(&name, Best::Lowest, &|p| {
            let n = p.causes.get(cause);
            (count(n), Some(share(n, p.attempts)))
        }));
    }
    let latency = |p: &ProviderStats, failures: bool| {
        let summary = if failures {
            p.failure_latency_summary()
        } else {
            p.success_latency_summary()
        };
        if summary.count == 0 {
            ("—".to_owned(), None)
        } else {
            (
                format!("{}/{}", ms(summary.p50), ms(summary.p90)),
                Some(summary.p50),
            )
        }
    };
    figures.extend([
        row("success p50/p90", Best::Lowest, &|p| latency(p, false)),
        row("failure p50/p90", Best::None, &|p| latency(p, true)),
        row("cost / success", Best::None, &|p| {
            (
                p.cost_per_success().map_or_else(
                    || "—".to_owned(),
                    |cost| format!("{} {}", short_amount(cost), unit_short(p)),
                ),
                None,
            )
        }),
        row("  in USD", Best::Lowest, &|p| {
            let usd = p.cost_per_success_usd();
            (usd.map_or_else(|| "—".to_owned(), usd_text), usd)
        }),
        row("refunded", Best::None, &|p| rate(p.refund_ratio())),
        row("throttled (429)", Best::Lowest, &|p| {
            rate(p.throttled_share())
        }),
        row("runway", Best::Highest, &|p| runway(app, p, now)),
    ]);
    figures
}

// Exact as f64: counts far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn unit_short(provider: &ProviderStats) -> &'static str {
    match provider.billing.unit {
        crate::outcome::BillingUnit::Usd => "$",
        crate::outcome::BillingUnit::Credits => "cr",
        crate::outcome::BillingUnit::Microcents => "µ¢",
        crate::outcome::BillingUnit::MicroUsd => "µ$",
    }
}

/// Dollars with enough digits to tell providers apart, in at most nine cells.
fn usd_text(usd: f64) -> String {
    if usd >= 0.01 {
        format!("${usd:.3}")
    } else if usd >= 0.000_1 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.1e}")
    }
}

/// Hours until the balance (or, without one, the plan's quota) runs out at this session's pace.
fn runway(
    app: &App,
    provider: &ProviderStats,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, Option<f64>) {
    let elapsed = app.stats.elapsed(now);
    let hours = provider
        .billing
        .hours_to_empty(elapsed)
        .map(|h| ("bal", h))
        .or_else(|| {
            let quota = app.live.get(&provider.name)?.plan_quota?;
            let projection = provider.quota_projection(quota, elapsed)?;
            projection.hours_left.map(|h| ("quota", h))
        });
    match hours {
        None => ("—".to_owned(), None),
        Some((source, hours)) => (format!("{source} {}", hours_text(hours)), Some(hours)),
    }
}

fn hours_text(hours: f64) -> String {
    if hours < 1.0 {
        format!("{:.0}m", hours * 60.0)
    } else if hours < 48.0 {
        format!("{hours:.0}h")
    } else if hours < 24.0 * 999.0 {
        format!("{:.0}d", hours / 24.0)
    } else {
        ">999d".to_owned()
    }
}

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(
        " Compare providers · best of each row in green ",
        Style::new().fg(theme::ACCENT).add_modifier(Modifier::BOLD),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let all: Vec<&ProviderStats> = app.shown_providers().collect();
    if all.is_empty() {
        frame.render_widget(Paragraph::new("no providers").style(dim()), inner);
        return;
    }
    let fit = usize::from(inner.width.saturating_sub(LABEL) / (COLUMN + 1)).max(1);
    let providers = &all[..all.len().min(fit)];
    let hidden = all.len() - providers.len();
    let mut figures = figures(app, providers);
    // Too many rows for the pane: causes no provider failed on go first, then the attempts row.
    let room = usize::from(inner.height.saturating_sub(1));
    if figures.len() > room {
        figures.retain(|figure| {
            !(figure.name.starts_with('✗') && figure.values.iter().all(|(text, _)| text == "0"))
        });
    }
    if figures.len() > room {
        figures.retain(|figure| figure.name != "attempts");
    }
    let rows: Vec<Row<'static>> = figures
        .into_iter()
        .map(|figure| {
            let best = best_index(&figure);
            let mut cells = vec![Cell::from(figure.name)];
            for (index, (text, _)) in figure.values.into_iter().enumerate() {
                let style = if Some(index) == best {
                    Style::new().fg(theme::GOOD).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                cells.push(Cell::from(text).style(style));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(LABEL)];
    widths.extend(providers.iter().map(|_| Constraint::Length(COLUMN)));
    let mut header: Vec<String> = vec![if hidden > 0 {
        format!("+{hidden} more: f")
    } else {
        String::new()
    }];
    header.extend(providers.iter().map(|p| p.name.clone()));
    frame.render_widget(
        Table::new(rows, widths).header(
            Row::new(header)
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        ),
        inner,
    );
}

/// The best value's column, when the row ranks and more than one provider has a value.
fn best_index(figure: &Figure) -> Option<usize> {
    let values: Vec<(usize, f64)> = figure
        .values
        .iter()
        .enumerate()
        .filter_map(|(index, (_, value))| value.map(|value| (index, value)))
        .collect();
    if values.len() < 2 {
        return None;
    }
    let pick = match figure.best {
        Best::None => return None,
        Best::Highest => values.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        Best::Lowest => values.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
    }?;
    // A tie is no winner.
    let tied = values
        .iter()
        .filter(|(_, v)| (v - pick.1).abs() < 1e-12)
        .count();
    (tied == 1).then_some(pick.0)
}
