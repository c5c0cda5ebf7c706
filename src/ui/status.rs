//! Status codes: the API layer and the target layer side by side, counts and shares for the session
//! and the last minute, coloured by class.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table};

use super::{pane, share, theme};
use crate::app::{App, Focus};
use crate::stats::StatusClass;

/// One layer's rows: status (None = transport errors) → (session, last minute).
type Rows = BTreeMap<Option<u16>, (u64, u64)>;

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Status codes · API | target", app, Focus::StatusCodes);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let now_second = app.now.timestamp();
    let mut api: Rows = BTreeMap::new();
    let mut target: Rows = BTreeMap::new();
    for provider in app.shown_providers() {
        for (status, count) in provider.api_status.iter() {
            api.entry(Some(status)).or_default().0 += count;
        }
        let transport: u64 = provider.transport_errors.values().sum();
        if transport > 0 {
            api.entry(None).or_default().0 += transport;
        }
        for (status, count) in provider.target_status.iter() {
            target.entry(Some(status)).or_default().0 += count;
        }
        let minute = provider.history.summarize(now_second, 60);
        for (status, count) in minute.api_statuses {
            api.entry(Some(status)).or_default().1 += count;
        }
        let minute_transport = minute.api_classes[StatusClass::Transport.index()];
        if minute_transport > 0 {
            api.entry(None).or_default().1 += minute_transport;
        }
        for (status, count) in minute.target_statuses {
            target.entry(Some(status)).or_default().1 += count;
        }
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(layer_table("API", &api), left);
    frame.render_widget(layer_table("target", &target), right);
}

fn layer_table(title: &str, rows: &Rows) -> Table<'static> {
    let session_total: u64 = rows.values().map(|(s, _)| s).sum();
    let minute_total: u64 = rows.values().map(|(_, m)| m).sum();
    let mut lines: Vec<Row<'static>> = rows
        .iter()
        .map(|(status, (session, minute))| {
            let class = StatusClass::of(*status);
            let label = status.map_or_else(|| "no resp".to_owned(), |s| s.to_string());
            Row::new(vec![
                Cell::from(label),
                Cell::from(session.to_string()),
                Cell::from(share(*session, session_total)),
                Cell::from(if *minute > 0 {
                    minute.to_string()
                } else {
                    "·".to_owned()
                }),
            ])
            .style(Style::new().fg(theme::status_class(class)))
        })
        .collect();
    if lines.is_empty() {
        lines.push(Row::new(vec![Cell::from("none yet")]));
    }
    lines.push(
        Row::new(vec![
            Cell::from("total"),
            Cell::from(session_total.to_string()),
            Cell::from(""),
            Cell::from(minute_total.to_string()),
        ])
        .style(Style::new().add_modifier(Modifier::DIM)),
    );
    Table::new(
        lines,
        [
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(4),
        ],
    )
    .header(
        Row::new(vec![
            Line::from(title.to_owned()),
            Line::from("n"),
            Line::from("share"),
            Line::from("1m"),
        ])
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
    )
    .column_spacing(1)
}
