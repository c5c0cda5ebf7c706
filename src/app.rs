//! The dashboard's state and its one pure transition: [`App::update`].
//!
//! Keys, ticks of the clock, resizes, facts and notices come in as [`Msg`]; the state changes;
//! commands for the engine go out as [`Cmd`]. No I/O and no clock reads here: the time is whatever
//! the last message said it was, so tests drive it with scripted messages and a fixed clock.

mod keys;

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::KeyEvent;

pub use crate::event::{EngineCommand, Event, Fact, Notice as LiveNotice, Rate, Scope};
pub use keys::{Action, BindingError, KeyBinding, KeyBindings, KeyError};

use crate::outcome::{AttemptId, Origin, Outcome};
use crate::policy;
use crate::provider::Profiles;
use crate::stats::{CodeStats, FailureKind, SessionStats};

/// Width and height below which the dashboard is compact ([`App::compact`]).
pub const COMPACT_BELOW: (u16, u16) = (100, 30);
/// How long a notice stays in the footer.
const NOTICE_SECONDS: i64 = 10;
/// Probe rates `+` and `−` step through, per second: 1/min to 200/s.
const RATE_LADDER: [f64; 14] = [
    1.0 / 60.0,
    2.0 / 60.0,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
];
/// Seconds of history an unlimited provider's observed rate is read over, when `−` needs a
/// value to step down from.
const OBSERVED_RATE_SECONDS: usize = 60;

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

    fn step(self, forward: bool, compact: bool) -> Self {
        let mut focus = self;
        for _ in 0..Self::ORDER.len() {
            let index = Self::ORDER.iter().position(|f| *f == focus).unwrap_or(0);
            let len = Self::ORDER.len();
            let next = if forward {
                (index + 1) % len
            } else {
                (index + len - 1) % len
            };
            focus = Self::ORDER[next];
            if !compact || focus.shown_when_compact() {
                break;
            }
        }
        focus
    }

    /// The panes a compact screen keeps (see [`App::compact`]); the others are on other views.
    #[must_use]
    pub fn shown_when_compact(self) -> bool {
        matches!(self, Self::Errors | Self::Recent)
    }

    /// Panes whose rows are providers, the selected one highlighted: j/k pick the provider
    /// that `P` acts on. (Status codes sums all shown providers: it selects none.)
    fn lists_providers(self) -> bool {
        matches!(
            self,
            Self::RateLimits | Self::Concurrency | Self::Billing | Self::Latency
        )
    }
}

/// What the screen below the health line shows; `v` steps through them, `1`–`4` pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Every pane (compact below 100×30).
    Dashboard,
    /// Targets × providers.
    Targets,
    /// Provider against provider.
    Compare,
    /// Success, error and 429 rates over the last minutes.
    Rates,
}

impl View {
    pub const ORDER: [Self; 4] = [Self::Dashboard, Self::Targets, Self::Compare, Self::Rates];

    #[must_use]
    pub fn next(self) -> Self {
        let index = Self::ORDER.iter().position(|v| *v == self).unwrap_or(0);
        Self::ORDER[(index + 1) % Self::ORDER.len()]
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dashboard => "dashboard",
            Self::Targets => "targets",
            Self::Compare => "compare",
            Self::Rates => "rates",
        }
    }
}

/// How the targets view groups attempts: by host, or by target URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetGrouping {
    Host,
    Url,
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderLive {
    /// The client-side cap on requests (the config's `rate`, or what `+`/`−` set).
    pub rate: Option<Rate>,
    /// What the probe schedule asks for (targets ÷ `every`; unlimited when probing back to
    /// back); `None` when not known (`--once`, a replay).
    pub schedule: Option<Rate>,
    /// The in-flight limit in force (the engine adapts it to the provider's figure and to
    /// concurrency refusals).
    pub concurrency: Option<u32>,
    /// The user's in-flight limit: the config's `concurrency`, or what `[`/`]` set.
    pub configured_concurrency: Option<u32>,
    /// Nothing is sent before this (Retry-After, rate-limit reset), and why.
    pub hold: Option<(DateTime<Utc>, String)>,
    /// The plan's monthly request quota, from the config.
    pub plan_quota: Option<u64>,
    pub usage_error: Option<String>,
}

impl ProviderLive {
    /// What drives probing now: the schedule, capped by the rate.
    #[must_use]
    pub fn probe_rate(&self) -> Option<Rate> {
        match (self.rate, self.schedule) {
            (Some(cap), Some(schedule)) => Some(cap.slower(schedule)),
            (one, other) => one.or(other),
        }
    }
}

/// A replayed log's playback, as the header shows it (a replay sends nothing, probes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playback {
    pub paused: bool,
    pub speed: crate::eventlog::replay::Speed,
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
    /// New probe rates, per provider (each stepped from its own).
    SetRates(Vec<(String, Rate)>),
    /// New in-flight limits chosen by the user, per provider.
    SetConcurrency(Vec<(String, u32)>),
    /// A replay's speed one step faster or slower.
    ReplaySpeed {
        faster: bool,
    },
}

impl Cmd {
    /// The engine's commands for this one; none for quitting (the loop shuts the engine down)
    /// or a replay's speed.
    #[must_use]
    pub fn into_engine_commands(self) -> Vec<EngineCommand> {
        vec![match self {
            Self::Quit | Self::ReplaySpeed { .. } => return Vec::new(),
            Self::SetConcurrency(limits) => {
                return limits
                    .into_iter()
                    .map(|(provider, limit)| EngineCommand::SetConcurrency {
                        scope: Scope::Provider(provider),
                        limit,
                    })
                    .collect();
            }
            Self::SetRates(rates) => {
                return rates
                    .into_iter()
                    .map(|(provider, rate)| EngineCommand::SetRate {
                        scope: Scope::Provider(provider),
                        rate,
                    })
                    .collect();
            }
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
        }]
    }
}

/// One row of the failures pane.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow<'a> {
    pub provider: &'a str,
    /// The provider's code, or what the failure was without one (`HTTP 502`, `timeout` …).
    pub label: Cow<'a, str>,
    /// `None` for a structured code.
    pub kind: Option<FailureKind>,
    pub stats: &'a CodeStats,
    /// The provider's API host: where a transport failure failed.
    pub api_host: Option<&'a str>,
}

/// Row selections, one per list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// Index into the recent attempts shown, newest first.
    pub recent: usize,
    pub error: usize,
    /// Index into the providers shown.
    pub provider: usize,
    /// Index into the targets view's rows.
    pub target: usize,
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
    /// Set when the screen shows a replayed log, not a live session.
    pub playback: Option<Playback>,
    pub live: BTreeMap<String, ProviderLive>,
    pub notice: Option<Notice>,
    pub size: (u16, u16),
    pub engine_running: bool,
    pub view: View,
    pub targets_by: TargetGrouping,
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
            playback: None,
            live: BTreeMap::new(),
            notice: None,
            size: (0, 0),
            engine_running: true,
            view: View::Dashboard,
            targets_by: TargetGrouping::Host,
        }
    }

    /// Set what the config says about a provider: its plan quota, client-side limits and the
    /// rate its probe schedule asks for.
    pub fn configure_provider(&mut self, name: &str, configured: ProviderLive) {
        *self.live_mut(name) = configured;
    }

    fn live_mut(&mut self, name: &str) -> &mut ProviderLive {
        self.live.entry(name.to_owned()).or_default()
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
                "#{attempt_id} gave up: {reason}. To retry it with {offer} (costs more): select #{attempt_id} in Recent attempts, then e"
            )),
            LiveNotice::UsageFailed { provider, message } => {
                self.live_mut(&provider).usage_error = Some(message);
            }
            LiveNotice::CommandRejected { message } => self.warn(message),
            LiveNotice::RetriedAll { count: 0 } => {
                self.notify("R: no failed retryable attempt to retry");
            }
            LiveNotice::RetriedAll { count } => self.notify(format!(
                "R: retried {count} failed retryable attempt(s), once each, unchanged"
            )),
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
                self.focus = self.focus.step(action == Action::FocusNext, self.compact());
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
            Action::RateUp | Action::RateDown if self.playback.is_some() => {
                Some(Cmd::ReplaySpeed {
                    faster: action == Action::RateUp,
                })
            }
            Action::RateUp | Action::RateDown => self.step_rates(action == Action::RateUp),
            Action::ConcurrencyUp | Action::ConcurrencyDown if self.playback.is_some() => {
                self.notify("a replay sends nothing: concurrency needs a live session");
                None
            }
            Action::ConcurrencyUp | Action::ConcurrencyDown => {
                self.step_concurrency(action == Action::ConcurrencyUp)
            }
            Action::ViewNext => {
                self.show(self.view.next());
                None
            }
            Action::ViewDashboard => {
                self.show(View::Dashboard);
                None
            }
            Action::ViewTargets => {
                self.show(View::Targets);
                None
            }
            Action::ViewCompare => {
                self.show(View::Compare);
                None
            }
            Action::ViewRates => {
                self.show(View::Rates);
                None
            }
            Action::GroupTargets => {
                self.targets_by = match self.targets_by {
                    TargetGrouping::Host => TargetGrouping::Url,
                    TargetGrouping::Url => TargetGrouping::Host,
                };
                self.selection.target = 0;
                None
            }
        }
    }

    fn show(&mut self, view: View) {
        self.view = view;
        self.notify(format!("view: {} (v next, 1–4 pick)", view.name()));
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
            self.warn(
                "P: which provider? select its row (Tab to Rate limits, Concurrency, Billing or Latency, or j/k in Recent attempts) or show it alone (f)",
            );
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

    /// `+`/`−`: each shown provider's probe rate one step from what drives it now; the engine
    /// applies it at once (it replaces the schedule's `every` and caps every request).
    fn step_rates(&mut self, up: bool) -> Option<Cmd> {
        let now_second = self.now.timestamp();
        let mut changes = Vec::new();
        let mut said = Vec::new();
        for provider in self.shown_providers() {
            let live = self.live.get(&provider.name);
            let current = live
                .and_then(ProviderLive::probe_rate)
                .unwrap_or(Rate::Unlimited);
            let back_to_back = live.and_then(|live| live.schedule) == Some(Rate::Unlimited);
            let seen = provider
                .history
                .summarize(now_second, OBSERVED_RATE_SECONDS)
                .attempts;
            // Exact as f64: counts far below 2^52.
            let observed = seen as f64 / OBSERVED_RATE_SECONDS as f64;
            let name = &provider.name;
            match stepped_rate(current, up, observed, back_to_back) {
                Some(next) => {
                    said.push(format!("{name} {} → {}", current.short(), next.short()));
                    changes.push((name.clone(), next));
                }
                None if up && current == Rate::Unlimited => {
                    said.push(format!("{name} already unlimited"));
                }
                None if up => said.push(format!(
                    "{name} stays {} (the top step; unlimited only for back-to-back probing, every = 0s)",
                    current.short()
                )),
                None => said.push(format!("{name} stays {} (the lowest step)", current.short())),
            }
        }
        for (name, rate) in &changes {
            let live = self.live_mut(name);
            live.rate = Some(*rate);
            // The engine now probes at this rate instead of the schedule's `every`.
            if live
                .schedule
                .is_some_and(|schedule| schedule != Rate::Unlimited)
            {
                live.schedule = Some(*rate);
            }
        }
        if said.is_empty() {
            self.notify("no provider to change");
        } else {
            self.notify(format!("probe rate: {}", said.join(", ")));
        }
        (!changes.is_empty()).then_some(Cmd::SetRates(changes))
    }

    /// `]`/`[`: each shown provider's in-flight limit one up or down from the user's (the
    /// engine still keeps it under the provider's figure and backs off on refusals).
    fn step_concurrency(&mut self, up: bool) -> Option<Cmd> {
        let names: Vec<String> = self.shown_providers().map(|p| p.name.clone()).collect();
        let mut changes = Vec::new();
        let mut said = Vec::new();
        for name in names {
            let live = self.live_mut(&name);
            let current = live
                .configured_concurrency
                .or(live.concurrency)
                .unwrap_or(1);
            let next = if up {
                current
                    .saturating_add(1)
                    .min(crate::config::MAX_CONCURRENCY)
            } else {
                current.saturating_sub(1).max(1)
            };
            if next == current {
                said.push(format!("{name} stays at {current} in flight"));
                continue;
            }
            live.configured_concurrency = Some(next);
            said.push(format!("{name} {current} → {next} in flight"));
            changes.push((name, next));
        }
        if said.is_empty() {
            self.notify("no provider to change");
        } else {
            self.notify(format!("concurrency: {}", said.join(", ")));
        }
        (!changes.is_empty()).then_some(Cmd::SetConcurrency(changes))
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
        if self.view == View::Targets {
            step(&mut self.selection.target);
            return;
        }
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

    /// Below 100×30 the dashboard keeps its most important panes only (the health line, failures,
    /// recent attempts), each wide enough that no number is cut.
    #[must_use]
    pub fn compact(&self) -> bool {
        self.size.0 < COMPACT_BELOW.0 || self.size.1 < COMPACT_BELOW.1
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

    /// Every failure of the shown providers, most frequent first: structured codes, and the
    /// failures that came without one (a bare HTTP status, a target's status, a transport error,
    /// an unreadable answer).
    #[must_use]
    pub fn error_rows(&self) -> Vec<FailureRow<'_>> {
        let mut rows: Vec<FailureRow<'_>> = self
            .shown_providers()
            .flat_map(|p| {
                let codes = p.error_codes.iter().map(move |(code, stats)| FailureRow {
                    provider: p.name.as_str(),
                    label: Cow::Borrowed(code.as_str()),
                    kind: None,
                    stats,
                    api_host: p.api_host.as_deref(),
                });
                let uncoded = p
                    .uncoded_failures
                    .iter()
                    .map(move |(kind, stats)| FailureRow {
                        provider: p.name.as_str(),
                        label: Cow::Owned(kind.label()),
                        kind: Some(*kind),
                        stats,
                        api_host: p.api_host.as_deref(),
                    });
                codes.chain(uncoded)
            })
            .collect();
        rows.sort_by(|a, b| {
            b.stats
                .count
                .cmp(&a.stats.count)
                .then_with(|| a.label.cmp(&b.label))
                .then_with(|| a.provider.cmp(b.provider))
        });
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

    /// The provider `P` acts on: the filter's (or the only one), else the one the focused pane
    /// selects. In Recent attempts the top row follows the newest attempt, whichever provider
    /// sent it, so it names a provider only when the user moved the selection or opened the
    /// attempt: otherwise a second `P` would act on another provider than the first.
    #[must_use]
    pub fn selected_provider(&self) -> Option<String> {
        if let Some(name) = &self.filter {
            return Some(name.clone());
        }
        if let [only] = self.stats.providers.as_slice() {
            return Some(only.name.clone());
        }
        let pinned = self.selection.recent > 0 || matches!(self.overlay, Overlay::Detail(_));
        match self.focus {
            Focus::Recent if pinned => self.selected_attempt().map(|o| o.provider.clone()),
            Focus::Recent => None,
            Focus::Errors => self
                .error_rows()
                .get(self.selection.error)
                .map(|row| row.provider.to_owned()),
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

/// One step of the rate ladder up or down from `current`; `None` when there is none. An
/// unlimited rate steps down from what was `observed` (attempts a second), or from the top step;
/// only a provider probing back to back (`back_to_back`) may go past the top step to unlimited:
/// an interval schedule would otherwise send back to back.
fn stepped_rate(current: Rate, up: bool, observed: f64, back_to_back: bool) -> Option<Rate> {
    let current = match current {
        Rate::Unlimited if up => return None,
        Rate::Unlimited if observed > 0.0 => observed,
        Rate::Unlimited => f64::INFINITY,
        Rate::PerSecond(rate) => rate,
    };
    if up {
        RATE_LADDER
            .iter()
            .find(|step| **step > current * 1.0001)
            .map(|step| Rate::PerSecond(*step))
            .or(back_to_back.then_some(Rate::Unlimited))
    } else {
        RATE_LADDER
            .iter()
            .rev()
            .find(|step| **step < current * 0.9999)
            .map(|step| Rate::PerSecond(*step))
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
