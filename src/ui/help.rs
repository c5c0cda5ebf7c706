//! The help overlay: every key, from the bindings in force (a replay's: only those that act on it).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::{Action, App};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let replay = app.playback.is_some();
    let mut lines: Vec<Line<'static>> = Action::all()
        .filter_map(|action| {
            let description = if replay {
                action.replay_description()?
            } else {
                action.description()
            };
            Some(Line::from(vec![
                Span::styled(
                    format!("{:>16}  ", app.bindings.label(action)),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(description),
            ]))
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        "  Keys can be changed in the config file's [keys] table (e.g. quit = [\"q\", \"ctrl-q\"]).",
    ));
    // Every line and the border, or as much as the terminal has.
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = area.centered(
        Constraint::Max(90),
        Constraint::Length(height.min(area.height)),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(if replay {
                " Help · the keys that act on a replay (Esc or ? closes) "
            } else {
                " Help · every key (Esc or ? closes) "
            })),
        popup,
    );
}
