//! Errors: the providers' structured codes with counts, retryable / refunded marks, and the
//! contract's advice for the selected code.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{dim, pane, theme};
use crate::app::{App, Focus};
use crate::outcome::Retryable;

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Errors", app, Focus::Errors);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let rows = app.error_rows();
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("no error codes yet").style(dim()), inner);
        return;
    }
    let advice_height = if inner.height >= 12 { 4 } else { 2 };
    let [list, advice] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(advice_height)]).areas(inner);
    // The provider column only where the code keeps room for its full name.
    let wide = inner.width >= 62;
    let table_rows: Vec<Row<'static>> = rows
        .iter()
        .map(|(provider, code, stats)| {
            let retry = match stats.retryable {
                Retryable::Yes | Retryable::AfterDelay => {
                    Span::styled("retry", Style::new().fg(theme::GOOD))
                }
                Retryable::Maybe => Span::styled("maybe", Style::new().fg(theme::WARN)),
                _ => Span::styled("no", Style::new().fg(theme::BAD)),
            };
            let refund = if stats.refund_expected {
                Span::styled("refund", Style::new().fg(theme::GOOD))
            } else {
                Span::styled("billed", dim())
            };
            let mut cells = vec![
                Cell::from((*code).to_owned()),
                Cell::from(stats.api_status.map_or_else(String::new, |s| s.to_string())),
            ];
            if wide {
                cells.push(Cell::from((*provider).to_owned()));
            }
            cells.extend([
                Cell::from(stats.count.to_string()),
                Cell::from(retry),
                Cell::from(refund),
            ]);
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Min(12), Constraint::Length(3)];
    let mut header = vec!["code", "api"];
    if wide {
        widths.push(Constraint::Length(10));
        header.push("provider");
    }
    widths.extend([
        Constraint::Length(4),
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

    if let Some((_, code, stats)) = rows.get(app.selection.error) {
        let advice_text = stats
            .advice
            .as_deref()
            .or(stats.meaning.as_deref())
            .unwrap_or("the contract gives no advice for this code");
        let line = Line::from(vec![
            Span::styled(
                format!("{code}: "),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(advice_text.to_owned()),
        ]);
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), advice);
    }
}
