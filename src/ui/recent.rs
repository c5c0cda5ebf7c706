//! Recent attempts: a scrollable list, newest first; Enter opens one attempt's detail.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{amount, class_color, clock, pane};
use crate::app::{App, Focus};
use crate::stats::StatusClass;

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Recent attempts", app, Focus::Recent);
    let wide = area.width >= 110;
    let rows: Vec<Row<'static>> = app
        .recent_attempts()
        .map(|o| {
            let api_class = StatusClass::of(o.api_status);
            let api = o
                .api_status
                .map_or_else(|| o.transport.label().to_owned(), |s| s.to_string());
            let target = o.target_status.map_or_else(String::new, |s| s.to_string());
            let since = (o.started_at - app.stats.started_at)
                .to_std()
                .unwrap_or_default();
            let mark = if o.succeeded() { "✓" } else { "✗" };
            let mut cells = vec![
                Cell::from(format!("#{}", o.attempt_id)),
                Cell::from(clock(since)),
                Cell::from(o.provider.clone()),
                Cell::from(api).style(Style::new().fg(class_color(api_class))),
                Cell::from(target)
                    .style(Style::new().fg(class_color(StatusClass::of(o.target_status)))),
                Cell::from(mark).style(Style::new().fg(if o.succeeded() {
                    Color::Green
                } else {
                    Color::Red
                })),
                Cell::from(o.error_code.clone().unwrap_or_default()),
                Cell::from(o.latency.as_millis().to_string()),
                Cell::from(amount(o.billing.net())),
            ];
            if wide {
                cells.push(Cell::from(
                    o.retry_of.map_or_else(String::new, |id| format!("↻#{id}")),
                ));
                cells.push(Cell::from(o.target_url.clone()));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let mut header = vec![
        "id", "time", "provider", "api", "target", "", "code", "ms", "net",
    ];
    if wide {
        widths.push(Constraint::Length(5));
        widths.push(Constraint::Min(20));
        header.push("retry");
        header.push("target url");
    }
    let table = Table::new(rows, widths)
        .header(
            Row::new(header)
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let selected = (app.focus == Focus::Recent).then_some(app.selection.recent);
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
