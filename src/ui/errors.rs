//! Failures: every failure explained, not only the providers' structured codes: a bare HTTP
//! status, a target's status behind an API success, a transport error (which kind, against which
//! host), an unreadable answer. Each row has its count, its fault, retryable and refunded marks;
//! the contract's advice for the selected row sits below.
//!
//! Columns give way from the right of the priority list when the pane is narrow: provider, then
//! API status; the failure's name, fault, count, retry and refund marks always stay.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{count, dim, pane, theme};
use crate::app::{App, FailureRow, Focus};
use crate::outcome::Retryable;
use crate::stats::FailureKind;

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Failures", app, Focus::Errors);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let rows = app.error_rows();
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("no failures yet").style(dim()), inner);
        return;
    }
    let advice_height = if inner.height >= 12 { 4 } else { 2 };
    let [list, advice] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(advice_height)]).areas(inner);
    let with_provider = inner.width >= 70;
    let with_api = inner.width >= 50;
    let wide_fault = inner.width >= 60;
    let table_rows: Vec<Row<'static>> = rows
        .iter()
        .map(|row| table_row(row, with_provider, with_api, wide_fault))
        .collect();
    let mut widths = vec![
        Constraint::Min(12),
        Constraint::Length(if wide_fault { 11 } else { 5 }),
    ];
    let mut header = vec!["failure", "fault"];
    if with_api {
        widths.push(Constraint::Length(3));
        header.push("api");
    }
    if with_provider {
        widths.push(Constraint::Length(10));
        header.push("provider");
    }
    widths.extend([
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
    ]);
    header.extend(["n", "retry", "refund"]);
    let table = Table::new(table_rows, widths)
        .header(
            Row::new(header)
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(app.selection.error));
    frame.render_stateful_widget(table, list, &mut state);

    if let Some(row) = rows.get(app.selection.error) {
        frame.render_widget(
            Paragraph::new(advice_line(row)).wrap(Wrap { trim: true }),
            advice,
        );
    }
}

fn table_row(
    row: &FailureRow<'_>,
    with_provider: bool,
    with_api: bool,
    wide_fault: bool,
) -> Row<'static> {
    let stats = row.stats;
    let retry = match stats.retryable {
        Retryable::Yes | Retryable::AfterDelay => {
            Span::styled("retry", Style::new().fg(theme::GOOD))
        }
        Retryable::Maybe => Span::styled("maybe", Style::new().fg(theme::WARN)),
        _ => Span::styled("no", Style::new().fg(theme::BAD)),
    };
    let refund = if stats.refund_expected {
        Span::styled("refund", Style::new().fg(theme::GOOD))
    } else if stats.charged > 0.0 {
        Span::styled("billed", dim())
    } else {
        // Nothing refunded because nothing was charged (an unbilled 429, a timeout): not "billed".
        Span::styled("—", dim())
    };
    let fault = stats.cause.map_or("—", |cause| {
        if wide_fault {
            cause.label()
        } else {
            cause.short()
        }
    });
    let label_style = match row.kind {
        Some(FailureKind::Transport(_)) => Style::new().fg(theme::TRANSPORT),
        _ => Style::new(),
    };
    let mut cells = vec![
        Cell::from(Span::styled(row.label.to_string(), label_style)),
        Cell::from(fault.to_owned()),
    ];
    if with_api {
        cells.push(Cell::from(
            stats.api_status.map_or_else(String::new, |s| s.to_string()),
        ));
    }
    if with_provider {
        cells.push(Cell::from(row.provider.to_owned()));
    }
    cells.extend([
        Cell::from(count(stats.count)),
        Cell::from(retry),
        Cell::from(refund),
    ]);
    Row::new(cells)
}

/// The selected row: what it is, whose, where, and the contract's advice.
fn advice_line(row: &FailureRow<'_>) -> Line<'static> {
    let stats = row.stats;
    let whom = match (row.kind, row.api_host) {
        (Some(FailureKind::Transport(_)), Some(host)) => format!("{} → {host}", row.provider),
        _ => row.provider.to_owned(),
    };
    let fault = stats.cause.map_or("", |cause| cause.label());
    let advice_text = stats
        .advice
        .as_deref()
        .or(stats.meaning.as_deref())
        .unwrap_or("the contract gives no advice for this failure");
    Line::from(vec![
        Span::styled(
            format!("{} ({whom}, {fault}): ", row.label),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(advice_text.to_owned()),
    ])
}
