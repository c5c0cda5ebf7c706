//! The engine: schedules probes, sends attempts through each provider's limits, follows the
//! policy's decisions, polls async jobs and usage, and obeys commands.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Client, Method};
use secrecy::ExposeSecret;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::{self, Received, RequestTemplate};
use super::limits::{Gate, GatePass, Pacer};
use crate::clock::Clock;
use crate::config::{EngineConfig, ProbeSpec, ProviderSettings, Schedule};
use crate::event::{EngineCommand, Event, Fact, Notice, Rate, Scope};
use crate::outcome::{
    AttemptId, Fault, JobRef, LimitKind, Origin, Outcome, RequestOptions, Retryable, Transport,
};
use crate::policy::{self, Decision, InFlightLimit, RetryPolicy, RetryState};
use crate::provider::{self, AttemptMeta, Exchange, JobPoll, Profile, Profiles};
use crate::redact::KeyForms;

/// Failed attempts kept for manual retries.
const RECENT_FAILURES: usize = 1000;
/// Load mode (`every = 0s`) runs this many workers per probe at least; the gate lets only the
/// concurrency limit through, so raising the limit later fills the extra places at once.
const LOAD_WORKERS: u32 = 16;
/// How long requests in the air get once the session ends (`--duration`, a stop) before they are
/// abandoned and counted as such: the duration bounds the run, whatever a stalled provider does.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Poll failures in a row before an async attempt is given up.
const MAX_POLL_ERRORS: u32 = 3;

/// Starting the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no provider profile named {0:?}")]
    UnknownProvider(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// The running engine, as its driver holds it.
#[derive(Debug)]
pub struct EngineHandle {
    commands: mpsc::Sender<EngineCommand>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl EngineHandle {
    /// A sender for commands (cheap to clone; the dashboard keeps one).
    #[must_use]
    pub fn commands(&self) -> mpsc::Sender<EngineCommand> {
        self.commands.clone()
    }

    /// Send one command; `false` when the engine has ended.
    pub async fn send(&self, command: EngineCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Stop at once, without going through the command queue: no new attempts; requests in the
    /// air finish.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Wait for the engine to end (after `--once` work, a shutdown, or `--duration`). The event
    /// channel closes when it has.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// The probe engine.
pub struct Engine;

impl Engine {
    /// Start the engine on the current tokio runtime. Events go to `events`; the engine waits
    /// when it is full, so nothing is lost. The channel closes when the engine ends.
    ///
    /// # Errors
    /// A probe names a provider without a profile, or the HTTP client cannot be built.
    pub fn spawn(
        config: EngineConfig,
        profiles: &Profiles,
        events: mpsc::Sender<Event>,
    ) -> Result<EngineHandle, EngineError> {
        Self::spawn_with_clock(config, profiles, events, Clock::real())
    }

    /// [`Engine::spawn`], reading wall-clock time (attempt and event timestamps, rate-limit
    /// resets) from `clock`: tests share one with their server and run on tokio's paused time.
    ///
    /// # Errors
    /// A probe names a provider without a profile, or the HTTP client cannot be built.
    pub fn spawn_with_clock(
        config: EngineConfig,
        profiles: &Profiles,
        events: mpsc::Sender<Event>,
        clock: Clock,
    ) -> Result<EngineHandle, EngineError> {
        let client = http::build_client(config.connect_timeout, config.timeout)
            .map_err(EngineError::Client)?;
        let mut providers = HashMap::new();
        for settings in &config.providers {
            let profile = profiles
                .get(&settings.name)
                .ok_or_else(|| EngineError::UnknownProvider(settings.name.clone()))?;
            providers.insert(
                settings.name.clone(),
                Arc::new(ProviderRuntime::new(
                    &client,
                    settings.clone(),
                    profile.clone(),
                    config.interval_targets(&settings.name),
                )),
            );
        }
        for probe in &config.probes {
            if !providers.contains_key(&probe.provider) {
                return Err(EngineError::UnknownProvider(probe.provider.clone()));
            }
        }
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            client,
            config,
            providers,
            events,
            clock,
            cancel: cancel.clone(),
            abandon: CancellationToken::new(),
            next_attempt: AtomicU64::new(1),
            failures: Mutex::new(VecDeque::new()),
        });
        let (command_tx, command_rx) = mpsc::channel(64);
        let task = tokio::spawn(run(shared, command_rx));
        Ok(EngineHandle {
            commands: command_tx,
            cancel,
            task,
        })
    }
}

struct Shared {
    client: Client,
    config: EngineConfig,
    providers: HashMap<String, Arc<ProviderRuntime>>,
    events: mpsc::Sender<Event>,
    /// Wall-clock time; tokio's `Instant` times the waits.
    clock: Clock,
    cancel: CancellationToken,
    /// Cancelled [`STOP_GRACE`] after `cancel`: requests still in the air are abandoned.
    abandon: CancellationToken,
    next_attempt: AtomicU64,
    failures: Mutex<VecDeque<Failure>>,
}

/// A failed attempt kept for manual retries.
struct Failure {
    outcome: Outcome,
    escalation_level: usize,
    retried: bool,
}

impl Shared {
    /// Send an event, waiting while the consumer is behind. A consumer that went away stops the
    /// engine: nobody would see what it does.
    async fn emit(&self, event: impl Into<Event>) {
        if self.events.send(event.into()).await.is_err() {
            self.cancel.cancel();
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, VecDeque<Failure>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember_failure(&self, outcome: &Outcome, escalation_level: usize) {
        let mut failures = self.failures();
        if failures.len() == RECENT_FAILURES {
            failures.pop_front();
        }
        failures.push_back(Failure {
            outcome: outcome.clone(),
            escalation_level,
            retried: false,
        });
    }

    fn mark_retried(&self, attempt_id: AttemptId) {
        if let Some(failure) = self
            .failures()
            .iter_mut()
            .find(|failure| failure.outcome.attempt_id == attempt_id)
        {
            failure.retried = true;
        }
    }

    fn policy_for(&self, provider: &ProviderRuntime) -> RetryPolicy {
        RetryPolicy {
            automatic_escalation: self.config.retry.automatic_escalation
                || provider.settings.automatic_escalation,
            ..self.config.retry.clone()
        }
    }
}

struct ProviderRuntime {
    settings: ProviderSettings,
    profile: Profile,
    gate: Arc<Gate>,
    /// What the gate lets through: adapted to the provider's advertised limit and refusals.
    in_flight_limit: Mutex<InFlightLimit>,
    pacer: Pacer,
    /// The probe rate set from the keyboard, which replaces the schedule's `every` (shared among
    /// the provider's interval targets); `None` keeps the config's schedule.
    drive: watch::Sender<Option<Rate>>,
    /// The provider's targets probed on an interval, among which a driven rate is shared.
    interval_targets: usize,
    hold_until: Mutex<Option<Instant>>,
    paused: watch::Sender<Option<String>>,
    /// Requests actually sent and not yet answered. The gate also counts probes waiting for the
    /// pacer or a hold, which are not in flight at the provider.
    sending: AtomicU32,
    /// The scrape request (and the async submit, when the profile has one), prepared once.
    scrape_request: Option<RequestTemplate>,
    submit_request: Option<RequestTemplate>,
    /// The key in every form a provider may echo it in, for redaction (found once).
    key_forms: KeyForms,
}

impl ProviderRuntime {
    fn new(
        client: &Client,
        settings: ProviderSettings,
        profile: Profile,
        interval_targets: usize,
    ) -> Self {
        let template = |path: &str| {
            RequestTemplate::new(
                client,
                profile.endpoints.method.as_http(),
                &profile,
                &settings.base_url,
                path,
                &settings.key,
            )
        };
        let scrape_request = template(&profile.endpoints.scrape);
        let submit_request = profile.endpoints.async_submit.as_deref().and_then(template);
        Self {
            scrape_request,
            submit_request,
            key_forms: KeyForms::new(settings.key.expose_secret()),
            gate: Gate::new(settings.concurrency),
            in_flight_limit: Mutex::new(InFlightLimit::new(settings.concurrency)),
            pacer: Pacer::new(settings.rate.interval()),
            drive: watch::channel(None).0,
            interval_targets,
            hold_until: Mutex::new(None),
            paused: watch::channel(None).0,
            sending: AtomicU32::new(0),
            settings,
            profile,
        }
    }

    fn name(&self) -> &str {
        &self.settings.name
    }

    fn limit(&self) -> std::sync::MutexGuard<'_, InFlightLimit> {
        self.in_flight_limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adapt the in-flight limit to what an answer said (the provider's figure, a concurrency
    /// refusal); the new limit when it changed, applied to the gate.
    fn adapt_in_flight(&self, outcome: &Outcome) -> Option<u32> {
        // No answer (a transport failure) says nothing about the plan's concurrency.
        outcome.api_status?;
        let mut limit = self.limit();
        let before = limit.in_force();
        if let Some(advertised) = outcome.concurrency.limit {
            limit.advertise(advertised);
        }
        if outcome.class.limit == Some(LimitKind::Concurrency) {
            limit.on_refused();
        } else {
            limit.on_answered();
        }
        let after = limit.in_force();
        drop(limit);
        (after != before).then(|| {
            self.gate.set_limit(after);
            after
        })
    }

    /// The user set a new limit (keys): it applies at once, under the provider's figure.
    fn configure_in_flight(&self, configured: u32) {
        let mut limit = self.limit();
        limit.configure(configured);
        self.gate.set_limit(limit.in_force());
    }

    fn rate_in_force(&self) -> Rate {
        self.drive.borrow().unwrap_or(self.settings.rate)
    }

    /// Time between two probes of one interval target: the schedule's `every`, or the driven
    /// rate shared among the provider's interval targets.
    fn probe_period(&self, every: Duration) -> Duration {
        match *self.drive.borrow() {
            None => every,
            Some(Rate::Unlimited) => Duration::ZERO,
            Some(Rate::PerSecond(rate)) => {
                // Exact as f64: target counts far below 2^52.
                Duration::try_from_secs_f64(self.interval_targets.max(1) as f64 / rate)
                    .unwrap_or(every)
            }
        }
    }

    fn paused(&self) -> Option<String> {
        self.paused.borrow().clone()
    }

    /// Pause; `true` when it was running.
    fn pause(&self, reason: &str) -> bool {
        self.paused.send_if_modified(|paused| {
            if paused.is_some() {
                return false;
            }
            *paused = Some(reason.to_owned());
            true
        })
    }

    fn resume(&self) -> bool {
        self.paused
            .send_if_modified(|paused| paused.take().is_some())
    }

    fn held_until(&self) -> Option<Instant> {
        *self
            .hold_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hold the provider for as long as `outcome` asks (Retry-After, a spent rate-limit window),
    /// counted from `now`; the wait, when there is one.
    fn hold_as_asked(&self, outcome: &Outcome, now: DateTime<Utc>) -> Option<Duration> {
        let wait = policy::provider_hold(outcome, now).filter(|wait| !wait.is_zero())?;
        self.hold_for(wait);
        Some(wait)
    }

    fn hold_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut hold = self
            .hold_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *hold = Some(hold.map_or(until, |old| old.max(until)));
    }
}

/// The engine's own task: schedule the work, take commands, end cleanly.
async fn run(shared: Arc<Shared>, mut commands: mpsc::Receiver<EngineCommand>) {
    for provider in shared.providers.values() {
        shared
            .emit(Fact::Limits {
                provider: provider.name().to_owned(),
                concurrency: provider.gate.limit(),
                rate: Some(provider.settings.rate),
                at: shared.clock.now(),
            })
            .await;
    }

    let mut background = JoinSet::new();
    for provider in shared.providers.values() {
        if provider.profile.endpoints.usage.is_some() {
            background.spawn(poll_usage(Arc::clone(&shared), Arc::clone(provider)));
        }
    }
    if let Schedule::Repeat {
        duration: Some(duration),
    } = shared.config.schedule
    {
        let cancel = shared.cancel.clone();
        background.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(duration) => cancel.cancel(),
                () = cancel.cancelled() => {}
            }
        });
    }

    let once = shared.config.schedule == Schedule::Once;
    let mut work = JoinSet::new();
    let mut load_workers: HashMap<u64, u32> = HashMap::new();
    for probe in &shared.config.probes {
        schedule_probe(&shared, probe, once, &mut work, &mut load_workers);
    }

    let mut commands_open = true;
    loop {
        if once && work.is_empty() {
            break;
        }
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            command = commands.recv(), if commands_open => match command {
                Some(command) => {
                    handle_command(&shared, command, &mut work).await;
                    top_up_load_workers(&shared, &mut work, &mut load_workers);
                }
                None => commands_open = false,
            },
            Some(_) = work.join_next(), if !work.is_empty() => {}
        }
    }
    // Stop: new attempts and waits end at once; requests in the air get a short grace to finish,
    // then are abandoned (each still reported, as abandoned), so their outcomes reach the
    // consumer and the stop is bounded whatever the provider does.
    shared.cancel.cancel();
    let grace = tokio::time::sleep(STOP_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            joined = work.join_next() => if joined.is_none() { break },
            () = &mut grace, if !shared.abandon.is_cancelled() => shared.abandon.cancel(),
        }
    }
    while background.join_next().await.is_some() {}
}

fn schedule_probe(
    shared: &Arc<Shared>,
    probe: &ProbeSpec,
    once: bool,
    work: &mut JoinSet<()>,
    load_workers: &mut HashMap<u64, u32>,
) {
    let Some(provider) = shared.providers.get(&probe.provider) else {
        return;
    };
    if once {
        work.spawn(once_dispatcher(
            Arc::clone(shared),
            Arc::clone(provider),
            probe.clone(),
        ));
    } else if probe.every.is_zero() {
        let workers = provider.gate.limit().max(LOAD_WORKERS);
        spawn_load_workers(shared, provider, probe, 0..workers, work);
        load_workers.insert(probe.id, workers);
    } else {
        for target in &probe.targets {
            work.spawn(interval_worker(
                Arc::clone(shared),
                Arc::clone(provider),
                probe.clone(),
                target.clone(),
            ));
        }
    }
}

fn spawn_load_workers(
    shared: &Arc<Shared>,
    provider: &Arc<ProviderRuntime>,
    probe: &ProbeSpec,
    workers: std::ops::Range<u32>,
    work: &mut JoinSet<()>,
) {
    for worker in workers {
        work.spawn(load_worker(
            Arc::clone(shared),
            Arc::clone(provider),
            probe.clone(),
            worker as usize,
        ));
    }
}

/// After a concurrency change, load mode needs at least as many workers as the new limit.
fn top_up_load_workers(
    shared: &Arc<Shared>,
    work: &mut JoinSet<()>,
    load_workers: &mut HashMap<u64, u32>,
) {
    for probe in &shared.config.probes {
        let (Some(running), Some(provider)) = (
            load_workers.get_mut(&probe.id),
            shared.providers.get(&probe.provider),
        ) else {
            continue;
        };
        let wanted = provider.gate.limit();
        if wanted > *running {
            spawn_load_workers(shared, provider, probe, *running..wanted, work);
            *running = wanted;
        }
    }
}

/// `--once`: start the targets in the order given. Each takes its gate place here, in turn, and
/// its chain runs alongside the others (retries included) up to the concurrency limit.
async fn once_dispatcher(shared: Arc<Shared>, provider: Arc<ProviderRuntime>, probe: ProbeSpec) {
    let mut chains = JoinSet::new();
    for target in &probe.targets {
        let pass = if provider.paused().is_some() {
            None
        } else {
            tokio::select! {
                () = shared.cancel.cancelled() => break,
                (pass, _) = provider.gate.enter() => Some(pass),
            }
        };
        chains.spawn(run_chain(
            Arc::clone(&shared),
            Arc::clone(&provider),
            probe.id,
            target.clone(),
            probe.options.clone(),
            pass,
        ));
    }
    while chains.join_next().await.is_some() {}
}

/// One target, every `probe.every` (or at the rate the keys set, which applies at once: the next
/// probe comes one new period after the last), until cancelled. A chain that overruns its period
/// delays the next one instead of overlapping it.
async fn interval_worker(
    shared: Arc<Shared>,
    provider: Arc<ProviderRuntime>,
    probe: ProbeSpec,
    target: String,
) {
    let mut drive = provider.drive.subscribe();
    let mut next = Instant::now();
    let mut last_start: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
            Ok(()) = drive.changed() => {
                drive.borrow_and_update();
                let period = provider.probe_period(probe.every);
                next = last_start.map_or_else(Instant::now, |start| {
                    (start + period).max(Instant::now())
                });
                continue;
            }
        }
        let started = Instant::now();
        last_start = Some(started);
        run_chain(
            Arc::clone(&shared),
            Arc::clone(&provider),
            probe.id,
            target.clone(),
            probe.options.clone(),
            None,
        )
        .await;
        next = (started + provider.probe_period(probe.every)).max(Instant::now());
    }
}

/// Back to back over the probe's targets (load mode); the gate keeps the concurrency limit in
/// flight. While the provider is paused it waits for the resume instead of spinning on skips.
async fn load_worker(
    shared: Arc<Shared>,
    provider: Arc<ProviderRuntime>,
    probe: ProbeSpec,
    offset: usize,
) {
    let mut paused = provider.paused.subscribe();
    let mut index = offset;
    while !shared.cancel.is_cancelled() {
        let Some(target) = probe.targets.get(index % probe.targets.len().max(1)) else {
            return;
        };
        index += 1;
        let ended = run_chain(
            Arc::clone(&shared),
            Arc::clone(&provider),
            probe.id,
            target.clone(),
            probe.options.clone(),
            None,
        )
        .await;
        if ended == ChainEnd::Skipped {
            tokio::select! {
                () = shared.cancel.cancelled() => return,
                _ = paused.wait_for(Option::is_none) => {}
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChainEnd {
    Done,
    Skipped,
    Cancelled,
}

/// One probe of one target, with its automatic retries.
async fn run_chain(
    shared: Arc<Shared>,
    provider: Arc<ProviderRuntime>,
    probe_id: u64,
    target: String,
    options: RequestOptions,
    mut first_pass: Option<GatePass>,
) -> ChainEnd {
    let policy = shared.policy_for(&provider);
    let mut plan = Plan {
        probe_id,
        target,
        options,
        attempt: 1,
        retry_of: None,
        escalation_level: 0,
    };
    let mut state = RetryState::default();
    let mut last_failure: Option<(Option<u16>, Option<String>, &'static str)> = None;
    loop {
        let finished = match run_attempt(&shared, &provider, &plan, first_pass.take()).await {
            Sent::Outcome(finished) => finished,
            Sent::Skipped => return ChainEnd::Skipped,
            Sent::Cancelled => return ChainEnd::Cancelled,
        };
        let outcome = &finished.outcome;
        let failure = (
            outcome.api_status,
            outcome.error_code.clone(),
            outcome.transport.label(),
        );
        state.consecutive_same_failure = if last_failure.as_ref() == Some(&failure) {
            state.consecutive_same_failure + 1
        } else {
            1
        };
        last_failure = Some(failure);
        state.escalation_level = plan.escalation_level;
        let decision = policy::decide(
            &provider.profile,
            &policy,
            outcome,
            state,
            shared.clock.now(),
            rand::random::<f64>(),
        );
        let (attempt_id, attempt) = (outcome.attempt_id, outcome.attempt);
        // Decided: the outcome can be handed over now, before what the decision adds.
        report(&shared, &provider, finished).await;
        match decision {
            Decision::Done => return ChainEnd::Done,
            Decision::Retry {
                after,
                options,
                escalation,
                reason,
            } => {
                shared.mark_retried(attempt_id);
                shared
                    .emit(Notice::RetryScheduled {
                        provider: provider.name().to_owned(),
                        attempt_id,
                        after,
                        escalation: escalation.as_ref().map(|e| e.change.clone()),
                        reason,
                    })
                    .await;
                tokio::select! {
                    () = shared.cancel.cancelled() => return ChainEnd::Cancelled,
                    () = tokio::time::sleep(after) => {}
                }
                plan = Plan {
                    options,
                    attempt: attempt + 1,
                    retry_of: Some(attempt_id),
                    escalation_level: escalation.map_or(plan.escalation_level, |e| e.level),
                    ..plan
                };
            }
            Decision::GiveUp { reason, offer } => {
                shared
                    .emit(Notice::GaveUp {
                        provider: provider.name().to_owned(),
                        attempt_id,
                        reason,
                        offer: offer.map(|offer| offer.change),
                    })
                    .await;
                return ChainEnd::Done;
            }
            Decision::PauseProvider { reason } => {
                pause_provider(&shared, &provider, &reason).await;
                return ChainEnd::Done;
            }
        }
    }
}

async fn pause_provider(shared: &Shared, provider: &ProviderRuntime, reason: &str) {
    if provider.pause(reason) {
        shared
            .emit(Fact::Paused {
                origin: Origin::Probe,
                provider: provider.name().to_owned(),
                reason: reason.to_owned(),
                at: shared.clock.now(),
            })
            .await;
    }
}

/// What to send.
#[derive(Debug, Clone)]
struct Plan {
    probe_id: u64,
    target: String,
    options: RequestOptions,
    attempt: u32,
    retry_of: Option<AttemptId>,
    escalation_level: usize,
}

enum Sent {
    Outcome(Finished),
    Skipped,
    Cancelled,
}

enum Turn {
    Go(GatePass),
    Skip(String),
    Cancelled,
}

/// Wait until this provider may be sent a request: a place in the gate, no hold, the pacer's
/// slot, and not paused. A pause that comes while waiting (an account error on the attempt ahead)
/// skips at once, rather than after a gate place, a hold or a pacing slot the skip does not need.
async fn take_turn(shared: &Shared, provider: &ProviderRuntime, place: Option<GatePass>) -> Turn {
    let mut paused = provider.paused.subscribe();
    if let Some(reason) = provider.paused() {
        return Turn::Skip(reason);
    }
    let pass = tokio::select! {
        () = shared.cancel.cancelled() => return Turn::Cancelled,
        _ = paused.wait_for(Option::is_some) => None,
        pass = clear_to_send(provider, place) => Some(pass),
    };
    // Checked last, right before sending. (Paused and resumed again while waiting: the place
    // given up is not taken again, this turn is skipped.)
    match (provider.paused(), pass) {
        (None, Some(pass)) => Turn::Go(pass),
        (reason, _) => Turn::Skip(reason.unwrap_or_else(|| "paused while waiting".to_owned())),
    }
}

/// A place in the gate (unless `place` is one), then no hold and the pacer's slot.
async fn clear_to_send(provider: &ProviderRuntime, place: Option<GatePass>) -> GatePass {
    let pass = match place {
        Some(pass) => pass,
        None => provider.gate.enter().await.0,
    };
    loop {
        while let Some(until) = provider
            .held_until()
            .filter(|until| *until > Instant::now())
        {
            tokio::time::sleep_until(until).await;
        }
        provider.pacer.wait_turn().await;
        // A hold may have begun while waiting for the slot.
        if provider
            .held_until()
            .is_none_or(|until| until <= Instant::now())
        {
            return pass;
        }
    }
}

/// Send one attempt (and follow its async job), report it, and apply what it says about the
/// provider (hold, remembered failure).
async fn run_attempt(
    shared: &Shared,
    provider: &ProviderRuntime,
    plan: &Plan,
    place: Option<GatePass>,
) -> Sent {
    let pass = match take_turn(shared, provider, place).await {
        Turn::Go(pass) => pass,
        Turn::Skip(reason) => {
            shared
                .emit(Fact::Skipped {
                    origin: Origin::Probe,
                    provider: provider.name().to_owned(),
                    reason,
                    at: shared.clock.now(),
                    probe_id: Some(plan.probe_id),
                    target_url: Some(plan.target.clone()),
                })
                .await;
            return Sent::Skipped;
        }
        Turn::Cancelled => return Sent::Cancelled,
    };
    let meta = AttemptMeta {
        probe_id: plan.probe_id,
        attempt_id: shared.next_attempt.fetch_add(1, Ordering::Relaxed),
        attempt: plan.attempt,
        retry_of: plan.retry_of,
        target_url: plan.target.clone(),
        options: plan.options.clone(),
        started_at: shared.clock.now(),
    };
    shared
        .emit(Fact::InFlight {
            origin: Origin::Probe,
            provider: provider.name().to_owned(),
            n: provider.sending.fetch_add(1, Ordering::Relaxed) + 1,
            at: meta.started_at,
        })
        .await;

    // The clock starts when the request leaves, not while a slow consumer held the event.
    let meta = AttemptMeta {
        started_at: shared.clock.now(),
        ..meta
    };
    let started = Instant::now();
    let profile = &provider.profile;
    let (path, template) = match (&profile.endpoints.async_submit, plan.options.use_async) {
        (Some(path), true) => (path.as_str(), &provider.submit_request),
        _ => (profile.endpoints.scrape.as_str(), &provider.scrape_request),
    };
    let request = template
        .as_ref()
        .and_then(|template| template.builder(&shared.client))
        .unwrap_or_else(|| {
            http::authorized(
                &shared.client,
                profile.endpoints.method.as_http(),
                profile,
                &provider.settings.base_url,
                path,
                &provider.settings.key,
            )
        });
    let request = http::with_target(request, profile, &plan.target, &plan.options);
    let received = tokio::select! {
        received = http::send(request, shared.config.body_cap) => received,
        () = shared.abandon.cancelled() => http::Received::abandoned(),
    };
    let mut outcome = classify(shared, profile, &meta, &received, started);
    // Before anything reads it: the job's events, a pause reason, a hold, the log and the report
    // copy its text.
    outcome.redact_forms(&provider.key_forms);
    if outcome.api_status == Some(202) && outcome.job.is_some() {
        // The gate place is kept while the job runs: the provider is still working for us.
        outcome = follow_job(shared, provider, &meta, outcome, started).await;
        outcome.redact_forms(&provider.key_forms);
    }

    let now = shared.clock.now();
    // Set before leaving the gate, so the next request in line already sees it.
    let hold = provider.hold_as_asked(&outcome, now);
    // An account error stops the provider before its gate place is freed, so no request queued
    // behind this one goes out.
    let paused_now = (outcome.class.account_stop && !outcome.succeeded())
        .then(|| policy::pause_reason(&outcome))
        .filter(|reason| provider.pause(reason));
    // Counted out before the gate place is freed: the attempt that takes the place counts itself
    // in after, so the in-flight count never reads one above the concurrency cap.
    let in_flight = provider
        .sending
        .fetch_sub(1, Ordering::Relaxed)
        .saturating_sub(1);
    let _ = pass.leave();
    if !outcome.succeeded() {
        shared.remember_failure(&outcome, plan.escalation_level);
    }
    let hold = hold.map(|wait| Hold {
        until: now + TimeDelta::from_std(wait).unwrap_or_default(),
        reason: hold_reason(&outcome),
    });
    Sent::Outcome(Finished {
        outcome: Box::new(outcome),
        in_flight,
        paused_now,
        hold,
    })
}

/// An attempt that came back, with what it did to its provider, not yet reported: the chain
/// decides on it first and then hands the outcome over without copying it.
struct Finished {
    outcome: Box<Outcome>,
    in_flight: u32,
    paused_now: Option<String>,
    hold: Option<Hold>,
}

struct Hold {
    until: DateTime<Utc>,
    reason: String,
}

/// Report a finished attempt: its outcome, then the pause or hold it caused.
async fn report(shared: &Shared, provider: &ProviderRuntime, finished: Finished) {
    let Finished {
        outcome,
        in_flight,
        paused_now,
        hold,
    } = finished;
    let adapted = provider.adapt_in_flight(&outcome);
    shared
        .emit(Fact::Attempt {
            at: shared.clock.now(),
            outcome,
            in_flight: Some(in_flight),
        })
        .await;
    if let Some(concurrency) = adapted {
        shared
            .emit(Fact::Limits {
                provider: provider.name().to_owned(),
                concurrency,
                rate: Some(provider.rate_in_force()),
                at: shared.clock.now(),
            })
            .await;
    }
    if let Some(reason) = paused_now {
        shared
            .emit(Fact::Paused {
                origin: Origin::Probe,
                provider: provider.name().to_owned(),
                reason,
                at: shared.clock.now(),
            })
            .await;
    }
    if let Some(Hold { until, reason }) = hold {
        shared
            .emit(Notice::Hold {
                provider: provider.name().to_owned(),
                until,
                reason,
            })
            .await;
    }
}

fn hold_reason(outcome: &Outcome) -> String {
    let head = outcome
        .error_code
        .clone()
        .or_else(|| outcome.api_status.map(|status| status.to_string()))
        .unwrap_or_default();
    if outcome.rate_limit.retry_after.is_some() {
        format!("{head}: Retry-After")
    } else {
        format!("{head}: rate-limit window spent until reset")
    }
}

fn classify(
    shared: &Shared,
    profile: &Profile,
    meta: &AttemptMeta,
    received: &Received,
    started: Instant,
) -> Outcome {
    provider::classify(
        profile,
        meta,
        &Exchange {
            transport: &received.transport,
            status: received.status,
            headers: &received.headers,
            body: &received.body,
            received_at: shared.clock.now(),
            latency: started.elapsed(),
            body_cap: shared.config.body_cap,
        },
    )
}

/// Poll an async job until it ends (never faster than once a second). The attempt's outcome is
/// the finished job's scrape response, classified like a sync one, with the job kept and the
/// latency counted from the submission. The job is never submitted again from here: one that
/// does not end within `job_max_wait` is reported as such, and only the user retries it.
async fn follow_job(
    shared: &Shared,
    provider: &ProviderRuntime,
    meta: &AttemptMeta,
    queued: Outcome,
    started: Instant,
) -> Outcome {
    let Some(job) = queued.job.clone() else {
        return queued;
    };
    let profile = &provider.profile;
    emit_job_pending(shared, provider, meta, &job.id, "queued".to_owned()).await;
    let deadline = started + shared.config.job_max_wait;
    let mut errors = 0;
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => {
                return job_failed(queued, started, "stopped while the job was still pending; it may still finish at the provider");
            }
            () = tokio::time::sleep(shared.config.job_poll_interval) => {}
        }
        if Instant::now() >= deadline {
            let mut outcome = job_failed(
                queued,
                started,
                &format!(
                    "job not finished after {}; it may still finish at the provider (not submitted again: retry by hand)",
                    humantime::format_duration(shared.config.job_max_wait)
                ),
            );
            outcome.transport = Transport::Timeout;
            return outcome;
        }
        let request = http::authorized(
            &shared.client,
            Method::GET,
            profile,
            &provider.settings.base_url,
            &job.poll_path,
            &provider.settings.key,
        );
        let received = http::send(request, shared.config.body_cap).await;
        let ok = received.transport == Transport::Ok
            && received
                .status
                .is_some_and(|status| (200..300).contains(&status));
        if !ok {
            errors += 1;
            if let Some(outcome) =
                poll_failed(shared, provider, meta, &received, started, errors, &job).await
            {
                return outcome;
            }
            continue;
        }
        errors = 0;
        match provider::parse_job_poll(profile, &received.body) {
            JobPoll::Pending(status) => {
                emit_job_pending(shared, provider, meta, &job.id, status).await;
            }
            JobPoll::Completed(result) => {
                let body = serde_json::to_vec(&result).unwrap_or_default();
                let finished = Received {
                    transport: Transport::Ok,
                    status: received.status,
                    headers: received.headers,
                    body,
                };
                let mut outcome = classify(shared, profile, meta, &finished, started);
                outcome.job = Some(job);
                return outcome;
            }
            JobPoll::Failed { status, reason } => {
                let detail = match reason {
                    Some(reason) => format!("job {status}: {reason}"),
                    None => format!("job {status}"),
                };
                return job_failed(queued, started, &detail);
            }
            JobPoll::Unreadable(detail) => {
                return job_failed(queued, started, &format!("job poll unreadable: {detail}"));
            }
        }
    }
}

async fn emit_job_pending(
    shared: &Shared,
    provider: &ProviderRuntime,
    meta: &AttemptMeta,
    job_id: &str,
    mut status: String,
) {
    provider.key_forms.scrub(&mut status);
    shared
        .emit(Notice::JobPending {
            provider: provider.name().to_owned(),
            attempt_id: meta.attempt_id,
            job_id: job_id.to_owned(),
            status,
        })
        .await;
}

/// A poll that failed: the attempt's outcome when the job is given up, `None` to poll again
/// (after any wait the provider asked for).
async fn poll_failed(
    shared: &Shared,
    provider: &ProviderRuntime,
    meta: &AttemptMeta,
    received: &Received,
    started: Instant,
    errors: u32,
    job: &JobRef,
) -> Option<Outcome> {
    // The poll's own failure says the most (an expired key, a 404 job, a dead link).
    let mut outcome = classify(shared, &provider.profile, meta, received, started);
    // What the contract says not to retry (400, 401, 402, 404…) is not polled again either: only
    // a transient failure earns another poll.
    let transient = outcome.class.retryable.allows_plain_retry() && !outcome.class.account_stop;
    if errors >= MAX_POLL_ERRORS || !transient {
        outcome.job = Some(job.clone());
        let times = if transient {
            format!(" {errors} times")
        } else {
            String::new()
        };
        outcome.message = Some(format!(
            "job poll failed{times}: {}",
            outcome.message.unwrap_or_default()
        ));
        outcome.api_success = false;
        return Some(outcome);
    }
    // A 429 (or 503 with Retry-After) on a poll is honoured like one on a scrape: the provider is
    // held and the next poll waits for it, on top of the poll interval.
    if let Some(wait) = provider.hold_as_asked(&outcome, shared.clock.now()) {
        tokio::select! {
            () = shared.cancel.cancelled() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    None
}

/// An accepted job that ended without a result. Not retried automatically (the policy never
/// re-submits an accepted job): the provider may have billed it, and may still finish it.
fn job_failed(mut outcome: Outcome, started: Instant, message: &str) -> Outcome {
    outcome.api_success = false;
    outcome.latency = started.elapsed();
    outcome.message = Some(message.to_owned());
    outcome.class.fault = Fault::Provider;
    outcome.class.retryable = Retryable::No;
    outcome.class.meaning = Some("async job did not complete".to_owned());
    outcome
}

/// Read the usage endpoint at start, then every `usage_interval` (at least 30 s). Not a probe.
async fn poll_usage(shared: Arc<Shared>, provider: Arc<ProviderRuntime>) {
    let Some(path) = provider.profile.endpoints.usage.clone() else {
        return;
    };
    loop {
        if let Some(until) = provider
            .held_until()
            .filter(|until| *until > Instant::now())
        {
            tokio::select! {
                () = shared.cancel.cancelled() => return,
                () = tokio::time::sleep_until(until) => {}
            }
        }
        // A paused provider is sent nothing, its usage endpoint included, until it is resumed.
        if provider.paused().is_some() {
            let mut paused = provider.paused.subscribe();
            tokio::select! {
                () = shared.cancel.cancelled() => return,
                _ = paused.wait_for(Option::is_none) => continue,
            }
        }
        let request = http::authorized_as(
            &shared.client,
            Method::GET,
            provider.profile.usage_auth(),
            &provider.settings.base_url,
            &path,
            &provider.settings.key,
        );
        let received = http::send(request, shared.config.body_cap).await;
        let event: Event = match (&received.transport, received.status) {
            (Transport::Ok, Some(status)) if (200..300).contains(&status) => {
                match provider::parse_usage(&provider.profile, &received.body) {
                    Some(mut reading) => {
                        if let Some(plan) = &mut reading.plan {
                            provider.key_forms.scrub(plan);
                        }
                        Fact::Usage {
                            origin: Origin::Probe,
                            provider: provider.name().to_owned(),
                            reading,
                            at: shared.clock.now(),
                        }
                        .into()
                    }
                    None => Notice::UsageFailed {
                        provider: provider.name().to_owned(),
                        message: "usage response is not the JSON the profile describes".to_owned(),
                    }
                    .into(),
                }
            }
            (Transport::Ok, Some(status)) => Notice::UsageFailed {
                provider: provider.name().to_owned(),
                message: format!("usage endpoint answered HTTP {status}"),
            }
            .into(),
            (transport, _) => Notice::UsageFailed {
                provider: provider.name().to_owned(),
                message: format!("usage endpoint: {}", transport.label()),
            }
            .into(),
        };
        shared.emit(event).await;
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(shared.config.usage_interval) => {}
        }
    }
}

async fn handle_command(shared: &Arc<Shared>, command: EngineCommand, work: &mut JoinSet<()>) {
    let in_scope = |scope: &Scope| -> Vec<Arc<ProviderRuntime>> {
        let mut chosen: Vec<_> = shared
            .providers
            .values()
            .filter(|provider| scope.includes(provider.name()))
            .cloned()
            .collect();
        chosen.sort_by(|a, b| a.name().cmp(b.name()));
        chosen
    };
    match command {
        EngineCommand::Pause(scope) => {
            for provider in in_scope(&scope) {
                pause_provider(shared, &provider, "paused by the user").await;
            }
        }
        EngineCommand::Resume(scope) => {
            for provider in in_scope(&scope) {
                if provider.resume() {
                    shared
                        .emit(Fact::Resumed {
                            origin: Origin::Probe,
                            provider: provider.name().to_owned(),
                            reason: None,
                            at: shared.clock.now(),
                        })
                        .await;
                }
            }
        }
        EngineCommand::SetRate { scope, rate } => {
            for provider in in_scope(&scope) {
                // The rate both drives the interval probes and caps every request.
                provider.pacer.set_interval(rate.interval());
                provider.drive.send_replace(Some(rate));
                shared
                    .emit(Fact::Limits {
                        provider: provider.name().to_owned(),
                        concurrency: provider.gate.limit(),
                        rate: Some(rate),
                        at: shared.clock.now(),
                    })
                    .await;
            }
        }
        EngineCommand::SetConcurrency { scope, limit } => {
            for provider in in_scope(&scope) {
                provider.configure_in_flight(limit);
                let rate = provider.rate_in_force();
                shared
                    .emit(Fact::Limits {
                        provider: provider.name().to_owned(),
                        concurrency: provider.gate.limit(),
                        rate: Some(rate),
                        at: shared.clock.now(),
                    })
                    .await;
            }
        }
        EngineCommand::Retry {
            attempt_id,
            escalate,
        } => {
            let found = shared
                .failures()
                .iter()
                .find(|failure| failure.outcome.attempt_id == attempt_id)
                .map(|failure| (failure.outcome.clone(), failure.escalation_level));
            let Some((outcome, level)) = found else {
                shared
                    .emit(Notice::CommandRejected {
                        message: format!("attempt {attempt_id} is not a recent failed attempt"),
                    })
                    .await;
                return;
            };
            manual_retry(shared, outcome, level, escalate, work).await;
        }
        EngineCommand::RetryAllFailed => {
            let chosen: Vec<(Outcome, usize)> = shared
                .failures()
                .iter()
                .filter(|failure| {
                    !failure.retried && failure.outcome.class.retryable.allows_plain_retry()
                })
                .map(|failure| (failure.outcome.clone(), failure.escalation_level))
                .collect();
            let count = chosen.len();
            for (outcome, level) in chosen {
                manual_retry(shared, outcome, level, false, work).await;
            }
            shared.emit(Notice::RetriedAll { count }).await;
        }
        EngineCommand::Shutdown => shared.cancel.cancel(),
    }
}

/// One new attempt linked to `original`, unchanged or escalated. No automatic retries follow it;
/// an account error still pauses the provider.
async fn manual_retry(
    shared: &Arc<Shared>,
    original: Outcome,
    level: usize,
    escalate: bool,
    work: &mut JoinSet<()>,
) {
    let Some(provider) = shared.providers.get(&original.provider).cloned() else {
        return;
    };
    let (options, escalation_level) = if escalate {
        match policy::offered_escalation(&provider.profile, &original, level) {
            Some(escalation) => (escalation.options, escalation.level),
            None => {
                shared
                    .emit(Notice::CommandRejected {
                        message: format!(
                            "attempt {}: no escalation left for {}",
                            original.attempt_id, original.provider
                        ),
                    })
                    .await;
                return;
            }
        }
    } else {
        (original.options.clone(), level)
    };
    shared.mark_retried(original.attempt_id);
    let plan = Plan {
        probe_id: original.probe_id,
        target: original.target_url.clone(),
        options,
        attempt: original.attempt + 1,
        retry_of: Some(original.attempt_id),
        escalation_level,
    };
    let shared = Arc::clone(shared);
    work.spawn(async move {
        // An account error pauses the provider inside run_attempt; nothing else follows.
        if let Sent::Outcome(finished) = run_attempt(&shared, &provider, &plan, None).await {
            report(&shared, &provider, finished).await;
        }
    });
}
