//! One attempt's detail: request options, API and target status, headers (secrets masked when kept), error
//! and advice, a body excerpt, billing, and its retries.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{amount, dim, theme};
use crate::app::App;
use crate::outcome::{AttemptId, Origin, Outcome};
use crate::stats::StatusClass;

fn field(label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{label:>10}  "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(value.into()),
    ])
}

pub fn render(frame: &mut Frame<'_>, area: Rect, app: &App, id: AttemptId) {
    let popup = area.centered(Constraint::Percentage(86), Constraint::Percentage(86));
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_style(Style::new().fg(theme::ACCENT))
        .title(format!(
            " Attempt #{id} · Esc closes · r retry · e escalate "
        ));
    let Some(outcome) = app.stats.attempt(id) else {
        frame.render_widget(
            Paragraph::new("this attempt is no longer kept (the recent list is bounded)")
                .block(block),
            popup,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(lines(app, outcome))
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}

/// The popup's lines, top to bottom: what was asked, what came back, what it means, what it cost,
/// what followed, and the raw headers and body.
fn lines(app: &App, o: &Outcome) -> Vec<Line<'static>> {
    let mut out = request_lines(o);
    out.push(status_line(o));
    out.extend(provider_work_line(o));
    out.extend(verdict_lines(app, o));
    out.push(billing_line(o));
    out.push(retries_line(app, o));
    out.extend(wire_lines(o));
    out
}

/// The attempt, its target and the options it was sent with.
fn request_lines(o: &Outcome) -> Vec<Line<'static>> {
    let options = &o.options;
    let whose = match o.origin {
        Origin::Probe => format!("probe {}", o.probe_id),
        Origin::Proxy => {
            "your scraper's request, through the proxy (not a probe: no extra cost)".to_owned()
        }
    };
    vec![
        field(
            "attempt",
            format!(
                "{} · {whose} · try {}{}",
                o.provider,
                o.attempt,
                o.retry_of
                    .map_or_else(String::new, |id| format!(" · a retry of #{id}"))
            ),
        ),
        field("target", o.target_url.clone()),
        field(
            "options",
            format!(
                "mode {} · proxy {} · tier {} · timeout {} · {}",
                options.mode.as_deref().unwrap_or("default"),
                options.proxy_country.as_deref().unwrap_or("default"),
                options.tier.as_deref().unwrap_or("default"),
                options
                    .timeout_s
                    .map_or_else(|| "default".to_owned(), |t| format!("{t}s")),
                if options.use_async { "async" } else { "sync" }
            ),
        ),
    ]
}

/// The API's and the target's status, coloured by class, and the fault.
fn status_line(o: &Outcome) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{:>10}  ", "status"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                "API {}",
                o.api_status
                    .map_or_else(|| o.transport.label().to_owned(), |s| s.to_string())
            ),
            Style::new().fg(theme::status_class(StatusClass::of(o.api_status))),
        ),
        Span::raw(" · "),
        Span::styled(
            format!(
                "target {}",
                o.target_status
                    .map_or_else(|| "—".to_owned(), |s| s.to_string())
            ),
            Style::new().fg(theme::status_class(StatusClass::of(o.target_status))),
        ),
        Span::raw(format!(
            " · {} · {} ms · fault {}",
            if o.succeeded() { "succeeded" } else { "failed" },
            o.latency.as_millis(),
            o.class.fault.label()
        )),
    ])
}

/// What the provider says of its own work (OmniScrape's `metadata`), when it says anything.
fn provider_work_line(o: &Outcome) -> Option<Line<'static>> {
    let work = &o.provider_work;
    let mut said = Vec::new();
    if let Some(seconds) = work.elapsed_s {
        said.push(format!("worked {seconds} s"));
    }
    match work.solver_used {
        Some(true) => said.push("challenge solver used".to_owned()),
        Some(false) => said.push("no challenge solver".to_owned()),
        None => {}
    }
    (!said.is_empty()).then(|| field("provider", said.join(" · ")))
}

/// The error, what the contract says it means, the advice, and what a retry would do.
fn verdict_lines(app: &App, o: &Outcome) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if o.error_code.is_some() || o.message.is_some() {
        out.push(field(
            "error",
            format!(
                "{} {}",
                o.error_code.as_deref().unwrap_or(""),
                o.message.as_deref().unwrap_or("")
            )
            .trim()
            .to_owned(),
        ));
    }
    if let Some(meaning) = &o.class.meaning {
        out.push(field("meaning", meaning.clone()));
    }
    if let Some(advice) = &o.class.advice {
        out.push(field("advice", advice.clone()));
    }
    out.push(field(
        "retry",
        format!(
            "contract says {} · {}",
            o.class.retryable.label(),
            app.escalation_of(o).map_or_else(
                || "no escalation offered".to_owned(),
                |change| format!("e retries with {change} (costs more)")
            )
        ),
    ));
    out
}

/// Charged, refunded, net, and a refund billed against the contract.
fn billing_line(o: &Outcome) -> Line<'static> {
    let audit = if o.billing.audit.is_mismatch() {
        Span::styled(
            format!(" · REFUND MISMATCH ({:?})", o.billing.audit),
            theme::alarm(),
        )
    } else {
        Span::raw("")
    };
    Line::from(vec![
        Span::styled(
            format!("{:>10}  ", "billing"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "charged {} · refunded {} · net {} {} · refund expected: {}",
            o.billing.charged.map_or_else(|| "—".to_owned(), amount),
            o.billing.refunded.map_or_else(|| "—".to_owned(), amount),
            amount(o.billing.net()),
            o.billing.unit.label(),
            if o.class.refund_expected { "yes" } else { "no" }
        )),
        audit,
    ])
}

/// The attempts that retried this one (not to be read as what this one retried: the attempt
/// line says that).
fn retries_line(app: &App, o: &Outcome) -> Line<'static> {
    let retries: Vec<String> = app
        .stats
        .retries_of(o.attempt_id)
        .map(|r| {
            format!(
                "#{} {}",
                r.attempt_id,
                r.api_status
                    .map_or_else(|| r.transport.label().to_owned(), |s| s.to_string())
            )
        })
        .collect();
    field(
        "retried by",
        if retries.is_empty() {
            "not retried".to_owned()
        } else {
            retries.join(", ")
        },
    )
}

/// The request id, the kept headers and the start of the body.
fn wire_lines(o: &Outcome) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if let Some(request_id) = &o.request_id {
        out.push(field("request", request_id.clone()));
    }
    out.push(Line::from(Span::styled(
        "   headers",
        Style::new().add_modifier(Modifier::BOLD),
    )));
    if o.headers.is_empty() && o.body_excerpt.is_empty() && o.body_bytes > 0 {
        // A replayed success: the event log keeps neither for succeeded attempts.
        out.push(Line::from(Span::styled(
            "            not in the event log (kept for failed attempts only)",
            dim(),
        )));
    }
    // Secret-looking values were masked when the headers were kept (provider::classify).
    for (name, value) in &o.headers {
        out.push(Line::from(vec![
            Span::styled(format!("            {name}: "), dim()),
            Span::raw(value.clone()),
        ]));
    }
    out.push(field("body", format!("{} bytes; starts:", o.body_bytes)));
    for line in o.body_excerpt.lines().take(6) {
        out.push(Line::from(Span::styled(
            format!("            {line}"),
            dim(),
        )));
    }
    out
}
