//! Recent attempts: a scrollable list, newest first (by when each ended, the time it shows);
//! Enter opens one attempt's detail.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{clock, ms, pane, short_amount, theme};
use crate::app::{App, Focus};
use crate::outcome::{Origin, Outcome};
use crate::stats::{StatusClass, finished_at};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Recent attempts", app, Focus::Recent);
    let wide = area.width >= 110;
    // Only the rows that fit are built: the list holds up to a thousand attempts, and formatting
    // every one of them each frame was most of a frame's cost. The window is the one `Table`
    // itself shows with a fresh state (offset 0): rows of height 1 below a one-line header,
    // scrolled just enough to keep the selected row in view, at the bottom.
    let visible = usize::from(block.inner(area).height.saturating_sub(1));
    let shown = app.recent_attempts().count();
    let selected =
        (app.focus == Focus::Recent).then_some(app.selection.recent.min(shown.saturating_sub(1)));
    let first = selected.map_or(0, |s| (s + 1).saturating_sub(visible.max(1)));
    let rows = app
        .recent_attempts()
        .skip(first)
        .take(visible)
        .map(|o| row(app, o, wide))
        .collect();
    let mut state = TableState::default().with_selected(selected.map(|s| s - first));
    frame.render_stateful_widget(table(rows, block, wide), area, &mut state);
}

fn row(app: &App, o: &Outcome, wide: bool) -> Row<'static> {
    let api_class = StatusClass::of(o.api_status);
    let api = o
        .api_status
        .map_or_else(|| o.transport.label().to_owned(), |s| s.to_string());
    let target = o.target_status.map_or_else(String::new, |s| s.to_string());
    // The rows are in the order the answers arrived (the list is appended to as each attempt
    // ends), so the time shown is when it ended: a start time would run out of order wherever a
    // slow attempt ended after a faster one started later.
    let since = (finished_at(o) - app.stats.started_at)
        .to_std()
        .unwrap_or_default();
    let mark = if o.succeeded() { "✓" } else { "✗" };
    let mut cells = vec![
        Cell::from(attempt_label(o)),
        Cell::from(clock(since)),
        Cell::from(o.provider.clone()),
        Cell::from(api).style(Style::new().fg(theme::status_class(api_class))),
        Cell::from(target)
            .style(Style::new().fg(theme::status_class(StatusClass::of(o.target_status)))),
        Cell::from(mark).style(Style::new().fg(if o.succeeded() {
            theme::GOOD
        } else {
            theme::BAD
        })),
        Cell::from(o.error_code.clone().unwrap_or_default()),
        Cell::from(ms(o.latency.as_secs_f64() * 1000.0)),
        Cell::from(short_amount(o.billing.net())),
    ];
    if wide {
        cells.push(Cell::from(
            o.retry_of.map_or_else(String::new, |id| format!("↻#{id}")),
        ));
        cells.push(Cell::from(o.target_url.clone()));
    }
    Row::new(cells)
}

/// `#12` for a probe's attempt; `p12` for the 12th exchange of the user's scraper through the
/// proxy (its ids are numbered apart from the probes', from [`crate::proxy::FIRST_ATTEMPT_ID`]).
fn attempt_label(o: &Outcome) -> String {
    match o.origin {
        Origin::Probe => format!("#{}", o.attempt_id),
        Origin::Proxy => format!(
            "p{}",
            o.attempt_id.saturating_sub(crate::proxy::FIRST_ATTEMPT_ID) + 1
        ),
    }
}

fn table(rows: Vec<Row<'static>>, block: Block<'static>, wide: bool) -> Table<'static> {
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    let mut header = vec![
        "id", "ended", "provider", "api", "target", "", "code", "lat", "net",
    ];
    if wide {
        widths.push(Constraint::Length(5));
        widths.push(Constraint::Min(20));
        header.push("retry");
        header.push("target url");
    }
    Table::new(rows, widths)
        .header(
            Row::new(header)
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::fixture;

    /// Newest first means the last to end first, and the time shown is that end: a slow attempt
    /// that started before a fast one but ended after it sits above it with the later time.
    #[test]
    fn rows_show_when_each_attempt_ended_the_order_they_are_listed_in() {
        let mut app = fixture::app();
        let start = app.stats.started_at + chrono::TimeDelta::seconds(800);
        let attempt = |id: u64, started_after: i64, latency_ms: u64| {
            let mut outcome = crate::fixture::session_outcomes().remove(0);
            outcome.attempt_id = id;
            outcome.started_at = start + chrono::TimeDelta::seconds(started_after);
            outcome.latency = std::time::Duration::from_millis(latency_ms);
            outcome
        };
        // The fast one (started 2 s later, 100 ms) ends first and is folded in first.
        for outcome in [attempt(9_002, 2, 100), attempt(9_001, 0, 5_000)] {
            app.update(crate::app::Msg::Fact(crate::app::Fact::Attempt {
                at: crate::stats::finished_at(&outcome),
                outcome: Box::new(outcome),
                in_flight: None,
            }));
        }
        let mut terminal = Terminal::new(TestBackend::new(120, 6)).unwrap();
        terminal
            .draw(|frame| render(frame, Rect::new(0, 0, 120, 6), &app))
            .unwrap();
        let lines: Vec<String> = terminal
            .backend()
            .buffer()
            .content
            .chunks(120)
            .map(|cells| cells.iter().map(|cell| cell.symbol()).collect())
            .collect();
        let line_of = |id: &str| lines.iter().position(|l| l.contains(id)).unwrap();
        let (slow, fast) = (line_of("#9001"), line_of("#9002"));
        assert!(slow < fast, "{lines:#?}");
        let ended = |secs: u64| clock(std::time::Duration::from_secs(secs));
        assert!(lines[slow].contains(&ended(805)), "{lines:#?}");
        assert!(lines[fast].contains(&ended(802)), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("ended")), "{lines:#?}");
    }

    /// The windowed pane draws exactly what a table of every recent attempt draws, wherever the
    /// selection is and however tall the pane.
    #[test]
    fn building_only_the_visible_rows_draws_what_the_full_table_draws() {
        let mut app = fixture::app();
        let total = app.recent_attempts().count();
        assert!(
            total > 8,
            "the fixture needs more attempts than a short pane shows"
        );
        for (width, height) in [(120, 12), (100, 6), (120, 3), (120, 2), (90, 40)] {
            for focus in [Focus::Recent, Focus::Errors] {
                for selection in [0, 1, 3, 4, 5, total / 2, total - 1, total + 5] {
                    app.focus = focus;
                    app.selection.recent = selection;
                    let area = Rect::new(0, 0, width, height);
                    let mut windowed = Terminal::new(TestBackend::new(width, height)).unwrap();
                    windowed.draw(|frame| render(frame, area, &app)).unwrap();
                    let mut full = Terminal::new(TestBackend::new(width, height)).unwrap();
                    full.draw(|frame| {
                        let wide = area.width >= 110;
                        let rows = app.recent_attempts().map(|o| row(&app, o, wide)).collect();
                        let block = pane("Recent attempts", &app, Focus::Recent);
                        let mut state = TableState::default().with_selected(
                            (app.focus == Focus::Recent).then_some(app.selection.recent),
                        );
                        frame.render_stateful_widget(table(rows, block, wide), area, &mut state);
                    })
                    .unwrap();
                    assert_eq!(
                        windowed.backend().buffer(),
                        full.backend().buffer(),
                        "{width}x{height}, {focus:?}, selection {selection}"
                    );
                }
            }
        }
    }
}
