//! The dashboard's state and its one pure transition: [`App::update`].
//!
//! Keys, ticks of the clock, resizes, facts and notices come in as [`Msg`]; the state changes;
//! commands for the engine go out as [`Cmd`]. No I/O and no clock reads here: the time is whatever
//! the last message said it was, so tests drive it with scripted messages and a fixed clock.

mod keys;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::KeyEvent;

pub use crate::event::{EngineCommand, Event, Fact, Notice as LiveNotice, Rate, Scope};
pub use keys::{Action, BindingError, KeyBinding, KeyBindings, KeyError};

use crate::outcome::{AttemptId, Origin, Outcome};
use crate::policy;
use crate::provider::Profiles;
use crate::stats::{CodeStats, SessionStats};

/// How long a notice stays in the footer.
const NOTICE_SECONDS: i64 = 10;
/// Probe rates `+` and `−` step through, per second.
const RATE_LADDER: [f64; 12] = [
    0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0,
];

/// The panes that take focus, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Focus {
    StatusCodes,
    Errors,
    RateLimits,
    Concurrency,
    Billing,
    Latency,
    Recent,
}

impl Focus {
    pub const ORDER: [Self; 7] = [
        Self::StatusCodes,
        Self::Errors,
        Self::RateLimits,
        Self::Concurrency,
        Self::Billing,
        Self::Latency,
        Self::Recent,
    ];

    fn step(self, forward: bool) -> Self {
        let index = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let len = Self::ORDER.len();
        let next = if forward {
            (index + 1) % len
        } else {
            (index + len - 1) % len
        };
        Self::ORDER[next]
    }

    /// Panes whose rows are providers: j/k pick the provider that `P` acts on.
    fn lists_providers(self) -> bool {
        matches!(
            self,
            Self::StatusCodes
                | Self::RateLimits
                | Self::Concurrency
                | Self::Billing
                | Self::Latency
        )
    }
}

/// What covers the panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Detail(AttemptId),
}

/// A message in the footer, with when it was posted (it fades after a few seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub at: DateTime<Utc>,
    pub warning: bool,
}

/// What the engine said is in force for a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderLive {
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
    /// Nothing is sent before this (Retry-After, rate-limit reset), and why.
    pub hold: Option<(DateTime<Utc>, String)>,
    /// The plan's monthly request quota, from the config.
    pub plan_quota: Option<u64>,
    pub usage_error: Option<String>,
}

/// Everything coming in.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// The clock moved to `now`.
    Tick(DateTime<Utc>),
    Resize {
        width: u16,
        height: u16,
    },
    /// Something the session saw, live or replayed from its log: folded into the statistics.
    Fact(Fact),
    /// Something only the live screen shows (a hold, a retry given up, a rejected command).
    Notice(LiveNotice),
    /// A line of the replayed log that could not be read.
    ReplayUnreadable,
    /// A note for the footer (replay pause and speed changes).
    Note(String),
    /// The engine ended (after a shutdown, or on its own).
    EngineStopped,
}

impl From<Event> for Msg {
    fn from(event: Event) -> Self {
        match event {
            Event::Fact(fact) => Self::Fact(fact),
            Event::Notice(notice) => Self::Notice(notice),
        }
    }
}

/// Everything going out: commands for the engine, and quitting.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    Pause(Scope),
    Resume(Scope),
    Retry {
        attempt_id: AttemptId,
        escalate: bool,
    },
    RetryAllFailed,
    SetRate {
        scope: Scope,
        rate: Rate,
    },
}

impl Cmd {
    /// The engine's command for this one; `None` for quitting (the loop shuts the engine down).
    #[must_use]
    pub fn into_engine_command(self) -> Option<EngineCommand> {
        Some(match self {
            Self::Quit => return None,
            Self::Pause(scope) => EngineCommand::Pause(scope),
            Self::Resume(scope) => EngineCommand::Resume(scope),
            Self::Retry {
                attempt_id,
                escalate,
            } => EngineCommand::Retry {
                attempt_id,
                escalate,
            },
            Self::RetryAllFailed => EngineCommand::RetryAllFailed,
            Self::SetRate { scope, rate } => EngineCommand::SetRate { scope, rate },
        })
    }
}

/// Row selections, one per list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// Index into the recent attempts shown, newest first.
    pub recent: usize,
    pub error: usize,
    /// Index into the providers shown.
    pub provider: usize,
}

/// The dashboard's whole state.
#[derive(Debug, Clone)]
pub struct App {
    pub stats: SessionStats,
    pub profiles: Profiles,
    pub bindings: KeyBindings,
    pub now: DateTime<Utc>,
    pub focus: Focus,
    pub selection: Selection,
    /// Show one provider only; `None` shows all.
    pub filter: Option<String>,
    pub overlay: Overlay,
    /// The probe rate `+`/`−` adjust (what the engine last confirmed, or asked for).
    pub rate: Rate,
    pub live: BTreeMap<String, ProviderLive>,
    pub notice: Option<Notice>,
    pub size: (u16, u16),
    pub engine_running: bool,
}

impl App {
    #[must_use]
    pub fn new(
        stats: SessionStats,
        profiles: Profiles,
        bindings: KeyBindings,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            stats,
            profiles,
            bindings,
            now,
            focus: Focus::Recent,
            selection: Selection::default(),
            filter: None,
            overlay: Overlay::None,
            rate: Rate::Unlimited,
            live: BTreeMap::new(),
            notice: None,
            size: (0, 0),
            engine_running: true,
        }
    }

    /// Set what the config says about a provider: its plan quota and client-side limits.
    pub fn configure_provider(
        &mut self,
        name: &str,
        plan_quota: Option<u64>,
        rate: Option<Rate>,
        concurrency: Option<u32>,
    ) {
        let live = self.live_mut(name);
        live.plan_quota = plan_quota;
        live.rate = rate;
        live.concurrency = concurrency;
        if let Some(rate) = rate {
            self.rate = rate;
        }
    }

    fn live_mut(&mut self, name: &str) -> &mut ProviderLive {
        self.live
            .entry(name.to_owned())
            .or_insert_with(|| ProviderLive {
                rate: None,
                concurrency: None,
                hold: None,
                plan_quota: None,
                usage_error: None,
            })
    }

    /// The one transition. Pure: everything it knows comes in `msg`.
    pub fn update(&mut self, msg: Msg) -> Option<Cmd> {
        match msg {
            Msg::Key(event) => self.on_key(&event),
            Msg::Tick(now) => {
                self.now = now;
                if self
                    .notice
                    .as_ref()
                    .is_some_and(|n| now - n.at >= TimeDelta::seconds(NOTICE_SECONDS))
                {
                    self.notice = None;
                }
                None
            }
            Msg::Resize { width, height } => {
                self.size = (width, height);
                None
            }
            Msg::Fact(fact) => {
                self.on_fact(fact);
                None
            }
            Msg::Notice(notice) => {
                self.on_notice(notice);
                None
            }
            Msg::ReplayUnreadable => {
                self.stats.unreadable_inputs += 1;
                None
            }
            Msg::Note(text) => {
                self.notify(text);
                None
            }
            Msg::EngineStopped => {
                self.engine_running = false;
                None
            }
        }
    }

    fn notify(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            at: self.now,
            warning: false,
        });
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            at: self.now,
            warning: true,
        });
    }

    fn on_fact(&mut self, fact: Fact) {
        match &fact {
            Fact::Attempt { outcome, .. } => {
                // Keep the selected row on the same attempt while new ones arrive on top.
                let shown = self.selection.recent > 0 && self.passes_filter(&outcome.provider);
                self.stats.apply(fact);
                if shown {
                    self.selection.recent += 1;
                }
                self.clamp_selection();
                return;
            }
            Fact::Limits {
                provider,
                concurrency,
                rate,
                ..
            } => {
                let (concurrency, rate) = (*concurrency, *rate);
                let live = self.live_mut(provider);
                live.concurrency = Some(concurrency);
                if let Some(rate) = rate {
                    live.rate = Some(rate);
                    self.rate = rate;
                }
            }
            Fact::Paused {
                provider,
                reason,
                origin,
                ..
            } => self.warn(format!("{provider} paused{}: {reason}", seen_by(*origin))),
            Fact::Resumed {
                provider, origin, ..
            } => self.notify(format!("{provider} resumed{}", seen_by(*origin))),
            Fact::Finding {
                provider,
                kind,
                detail,
                ..
            } => self.warn(format!(
                "{provider}: your scraper {}: {detail}",
                kind.label()
            )),
            Fact::Usage { provider, .. } => self.live_mut(provider).usage_error = None,
            Fact::SessionStart { .. }
            | Fact::InFlight { .. }
            | Fact::Skipped { .. }
            | Fact::SessionEnd { .. } => {}
        }
        // Only an attempt adds rows to a list: the selections need no clamping here.
        self.stats.apply(fact);
    }

    fn on_notice(&mut self, notice: LiveNotice) {
        match notice {
            LiveNotice::Hold {
                provider,
                until,
                reason,
            } => self.live_mut(&provider).hold = Some((until, reason)),
            LiveNotice::GaveUp {
                attempt_id,
                reason,
                offer: Some(offer),
                ..
            } => self.warn(format!(
                "#{attempt_id} gave up: {reason}. e retries it with {offer} (costs more)"
            )),
            LiveNotice::UsageFailed { provider, message } => {
                self.live_mut(&provider).usage_error = Some(message);
            }
            LiveNotice::CommandRejected { message } => self.warn(message),
            LiveNotice::GaveUp { offer: None, .. }
            | LiveNotice::RetryScheduled { .. }
            | LiveNotice::JobPending { .. } => {}
        }
    }

    fn on_key(&mut self, event: &KeyEvent) -> Option<Cmd> {
        let action = self.bindings.action_for(event)?;
        // With an overlay open, only closing it, quitting, and acting on the shown attempt work.
        if self.overlay != Overlay::None
            && !matches!(
                action,
                Action::Quit
                    | Action::Close
                    | Action::Help
                    | Action::Retry
                    | Action::RetryEscalated
                    | Action::PauseAll
            )
        {
            return None;
        }
        match action {
            Action::Quit => Some(Cmd::Quit),
            Action::Help => {
                self.overlay = if self.overlay == Overlay::Help {
                    Overlay::None
                } else {
                    Overlay::Help
                };
                None
            }
            Action::Close => {
                self.overlay = Overlay::None;
                None
            }
            Action::FocusNext | Action::FocusPrev => {
                self.focus = self.focus.step(action == Action::FocusNext);
                None
            }
            Action::Down | Action::Up => {
                self.move_selection(action == Action::Down);
                None
            }
            Action::Open => {
                if let Some(id) = self.selected_attempt().map(|o| o.attempt_id) {
                    self.overlay = Overlay::Detail(id);
                } else {
                    self.notify("no attempt selected: Tab to Recent attempts, then j/k");
                }
                None
            }
            Action::CycleFilter => {
                self.cycle_filter();
                None
            }
            Action::ResetCounters => {
                self.stats.reset_counters(self.now);
                self.selection = Selection::default();
                self.overlay = Overlay::None;
                self.notify("counters reset");
                None
            }
            Action::PauseAll => Some(self.pause_all()),
            Action::PauseProvider => self.pause_selected_provider(),
            Action::Retry => self.retry(false),
            Action::RetryEscalated => self.retry(true),
            Action::RetryAllFailed => {
                self.notify("retrying every failed retryable attempt (once each, unchanged)");
                Some(Cmd::RetryAllFailed)
            }
            Action::RateUp | Action::RateDown => Some(self.step_rate(action == Action::RateUp)),
        }
    }

    fn pause_all(&mut self) -> Cmd {
        let all_paused = !self.stats.providers.is_empty()
            && self.stats.providers.iter().all(|p| p.paused.is_some());
        if all_paused {
            self.notify("resuming all providers");
            Cmd::Resume(Scope::All)
        } else {
            self.notify("pausing all providers");
            Cmd::Pause(Scope::All)
        }
    }

    fn pause_selected_provider(&mut self) -> Option<Cmd> {
        let Some(name) = self.selected_provider() else {
            self.notify("no provider selected");
            return None;
        };
        let paused = self
            .stats
            .provider(&name)
            .is_some_and(|p| p.paused.is_some());
        if paused {
            self.notify(format!("resuming {name}"));
            Some(Cmd::Resume(Scope::Provider(name)))
        } else {
            self.notify(format!("pausing {name}"));
            Some(Cmd::Pause(Scope::Provider(name)))
        }
    }

    fn retry(&mut self, escalate: bool) -> Option<Cmd> {
        let Some(outcome) = self.selected_attempt() else {
            self.notify("no attempt selected: Tab to Recent attempts, then j/k");
            return None;
        };
        let attempt_id = outcome.attempt_id;
        if !escalate {
            self.notify(format!(
                "retrying #{attempt_id} as it was (one new attempt)"
            ));
            return Some(Cmd::Retry {
                attempt_id,
                escalate,
            });
        }
        match self.escalation_of(outcome) {
            Some(change) => {
                self.warn(format!(
                    "retrying #{attempt_id} escalated: {change} (costs more per request)"
                ));
                Some(Cmd::Retry {
                    attempt_id,
                    escalate,
                })
            }
            None => {
                self.warn(format!(
                    "#{attempt_id}: no escalation left for this provider"
                ));
                None
            }
        }
    }

    /// What `e` would change for this attempt ("mode js_rendering"), per the Core's policy.
    #[must_use]
    pub fn escalation_of(&self, outcome: &Outcome) -> Option<String> {
        let profile = self.profiles.get(&outcome.provider)?;
        policy::offered_escalation(profile, outcome, 0).map(|escalation| escalation.change)
    }

    fn step_rate(&mut self, up: bool) -> Cmd {
        let next = match (self.rate, up) {
            (Rate::Unlimited, true) => Rate::Unlimited,
            (Rate::Unlimited, false) => Rate::PerSecond(RATE_LADDER[RATE_LADDER.len() - 1]),
            (Rate::PerSecond(current), true) => RATE_LADDER
                .iter()
                .find(|step| **step > current * 1.0001)
                .map_or(Rate::Unlimited, |step| Rate::PerSecond(*step)),
            (Rate::PerSecond(current), false) => RATE_LADDER
                .iter()
                .rev()
                .find(|step| **step < current * 0.9999)
                .map_or(Rate::PerSecond(RATE_LADDER[0]), |step| {
                    Rate::PerSecond(*step)
                }),
        };
        self.rate = next;
        let scope = self.filter.clone().map_or(Scope::All, Scope::Provider);
        let whom = self.filter.as_deref().unwrap_or("all providers");
        self.notify(format!("probe rate {next} for {whom}"));
        Cmd::SetRate { scope, rate: next }
    }

    fn cycle_filter(&mut self) {
        let names: Vec<String> = self
            .stats
            .providers
            .iter()
            .map(|p| p.name.clone())
            .collect();
        self.filter = match &self.filter {
            None => names.first().cloned(),
            Some(current) => names
                .iter()
                .position(|name| name == current)
                .and_then(|index| names.get(index + 1).cloned()),
        };
        self.selection = Selection::default();
        self.notify(format!(
            "showing {}",
            self.filter.as_deref().unwrap_or("all providers")
        ));
    }

    fn move_selection(&mut self, down: bool) {
        let step = |value: &mut usize| {
            *value = if down {
                value.saturating_add(1)
            } else {
                value.saturating_sub(1)
            };
        };
        match self.focus {
            Focus::Recent => step(&mut self.selection.recent),
            Focus::Errors => step(&mut self.selection.error),
            _ => step(&mut self.selection.provider),
        }
        self.clamp_selection();
    }

    fn clamp_selection(&mut self) {
        let recent = self.recent_attempts().count();
        let errors = self.error_rows().len();
        let providers = self.shown_providers().count();
        let clamp = |value: &mut usize, len: usize| *value = (*value).min(len.saturating_sub(1));
        clamp(&mut self.selection.recent, recent);
        clamp(&mut self.selection.error, errors);
        clamp(&mut self.selection.provider, providers);
    }

    #[must_use]
    pub fn passes_filter(&self, provider: &str) -> bool {
        self.filter.as_deref().is_none_or(|name| name == provider)
    }

    /// The providers the panes show (all, or the filtered one).
    pub fn shown_providers(&self) -> impl Iterator<Item = &crate::stats::ProviderStats> {
        self.stats
            .providers
            .iter()
            .filter(|p| self.passes_filter(&p.name))
    }

    /// Recent attempts that pass the filter, newest first.
    pub fn recent_attempts(&self) -> impl Iterator<Item = &Outcome> {
        self.stats
            .recent
            .iter()
            .rev()
            .filter(|o| self.passes_filter(&o.provider))
    }

    /// Error codes of the shown providers, most frequent first: (provider, code, stats).
    #[must_use]
    pub fn error_rows(&self) -> Vec<(&str, &str, &CodeStats)> {
        let mut rows: Vec<_> = self
            .shown_providers()
            .flat_map(|p| {
                p.error_codes
                    .iter()
                    .map(move |(code, stats)| (p.name.as_str(), code.as_str(), stats))
            })
            .collect();
        rows.sort_by(|a, b| b.2.count.cmp(&a.2.count).then(a.1.cmp(b.1)));
        rows
    }

    /// The attempt `r`, `e` and Enter act on: the one in the detail view, else the selected row
    /// of Recent attempts when that pane has focus.
    #[must_use]
    pub fn selected_attempt(&self) -> Option<&Outcome> {
        match self.overlay {
            Overlay::Detail(id) => self.stats.attempt(id),
            _ if self.focus == Focus::Recent => self.recent_attempts().nth(self.selection.recent),
            _ => None,
        }
    }

    /// The provider `P` acts on: the filter's, else the one the focused pane selects.
    #[must_use]
    pub fn selected_provider(&self) -> Option<String> {
        if let Some(name) = &self.filter {
            return Some(name.clone());
        }
        match self.focus {
            Focus::Recent => self.selected_attempt().map(|o| o.provider.clone()),
            Focus::Errors => self
                .error_rows()
                .get(self.selection.error)
                .map(|row| row.0.to_owned()),
            focus if focus.lists_providers() => self
                .shown_providers()
                .nth(self.selection.provider)
                .map(|p| p.name.clone()),
            _ => None,
        }
    }

    /// The earliest instant the provider may be sent to: its own headers, or the engine's hold.
    #[must_use]
    pub fn next_allowed(&self, provider: &crate::stats::ProviderStats) -> Option<DateTime<Utc>> {
        let hold = self
            .live
            .get(&provider.name)
            .and_then(|live| live.hold.as_ref())
            .map(|(until, _)| *until)
            .filter(|until| *until > self.now);
        provider.rate_limit.next_allowed(self.now).max(hold)
    }
}

#[cfg(test)]
mod tests;

/// " (proxied traffic)" for what the proxy saw of the user's scraper; nothing for a probe.
fn seen_by(origin: Origin) -> &'static str {
    match origin {
        Origin::Probe => "",
        Origin::Proxy => " (proxied traffic)",
    }
}

#[cfg(test)]
pub(crate) mod fixture;
