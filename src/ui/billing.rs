//! Billing & quota: charged, refunded, net, balance (from the usage endpoint where there is one),
//! quota used/remaining where the config sets a plan quota, burn rate per hour, projected time to
//! exhaustion, refund mismatches.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};

use super::{amount, dim, pane, theme};
use crate::app::{App, Focus};

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = pane("Billing & quota", app, Focus::Billing);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let elapsed = app.stats.elapsed(app.now);
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for (index, provider) in app.shown_providers().enumerate() {
        if y + 2 > bottom {
            break;
        }
        let billing = &provider.billing;
        let unit = billing.unit.label();
        let selected = app.focus == Focus::Billing && index == app.selection.provider;
        let name_style = if selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        // Narrow panes keep the net and leave charged/refunded to wide ones.
        let detail = if inner.width >= 60 {
            format!(
                " (charged {} − refunded {})",
                amount(billing.charged),
                amount(billing.refunded)
            )
        } else {
            String::new()
        };
        let first = vec![
            Span::styled(format!("{} ", provider.name), name_style),
            Span::raw(format!("net {} {unit}{detail}", amount(billing.net()))),
        ];
        frame.render_widget(
            Paragraph::new(Line::from(first)),
            Rect::new(inner.x, y, inner.width, 1),
        );

        let mut second = vec![Span::raw(format!(
            "  burn {}/h",
            billing
                .burn_per_hour(elapsed)
                .map_or_else(|| "—".to_owned(), amount)
        ))];
        if let Some(balance) = billing.balance {
            let balance_unit = billing.balance_unit.map_or(unit, |u| u.label());
            second.push(Span::raw(format!(
                " · bal {} {balance_unit}",
                amount(balance)
            )));
            // A reading is as old as its last answer: a paused provider's balance is not live.
            if let Some(age) = billing
                .balance_at
                .map(|at| app.now - at)
                .filter(|age| *age >= STALE_READING)
            {
                second.push(Span::styled(format!(" ({} old)", age_label(age)), dim()));
            }
            // Nothing is spent while paused: no projection.
            if provider.paused.is_none()
                && let Some(hours) = billing.hours_to_empty(elapsed)
            {
                second.push(Span::styled(
                    format!(" · empty {}", hours_label(hours)),
                    Style::new().fg(theme::WARN),
                ));
            }
        } else if let Some(error) = app
            .live
            .get(&provider.name)
            .and_then(|l| l.usage_error.as_ref())
        {
            second.push(Span::styled(
                format!(" · usage: {error}"),
                Style::new().fg(theme::BAD),
            ));
        }
        frame.render_widget(
            Paragraph::new(Line::from(second)),
            Rect::new(inner.x, y + 1, inner.width, 1),
        );
        y += 2;
        if billing.refund_mismatches > 0 && y < bottom {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    if inner.width >= 60 {
                        format!(
                            "  ⚠ {} refund mismatch(es): billed against the contract's refund rule",
                            billing.refund_mismatches
                        )
                    } else {
                        format!("  ⚠ {} refund mismatch(es)", billing.refund_mismatches)
                    },
                    theme::alarm(),
                )),
                Rect::new(inner.x, y, inner.width, 1),
            );
            y += 1;
        }

        let quota = app.live.get(&provider.name).and_then(|l| l.plan_quota);
        if let Some(projection) = quota.and_then(|quota| provider.quota_projection(quota, elapsed))
            && y < bottom
        {
            let exhaustion = projection
                .hours_left
                .filter(|_| provider.paused.is_none())
                .map_or_else(|| "—".to_owned(), hours_label);
            let color = theme::gauge(projection.pressure(), theme::QUOTA);
            frame.render_widget(
                LineGauge::default()
                    .ratio(projection.used_ratio)
                    .label(format!(
                        "  quota {:.0}/{} · out {exhaustion}",
                        projection.used, projection.quota
                    ))
                    .filled_style(Style::new().fg(color))
                    .unfilled_style(dim()),
                Rect::new(inner.x, y, inner.width, 1),
            );
            y += 1;
        }
        if inner.height >= 9 {
            y += 1;
        }
    }
}

/// A usage reading this old is marked with its age (usage is read every 30 s at most).
const STALE_READING: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

fn age_label(age: chrono::TimeDelta) -> String {
    let minutes = age.num_minutes();
    if minutes >= 120 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

fn hours_label(hours: f64) -> String {
    if !hours.is_finite() {
        "—".to_owned()
    } else if hours >= 48.0 {
        format!("{:.0}d", hours / 24.0)
    } else if hours >= 1.0 {
        format!("{hours:.1}h")
    } else {
        format!("{:.0}m", hours * 60.0)
    }
}
