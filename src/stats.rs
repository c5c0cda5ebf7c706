//! Aggregation: every Outcome folded into bounded per-provider statistics.
//!
//! [`SessionStats::apply`] is the one fold of [`Fact`]s, live or replayed. Pure and bounded: counters, fixed-size status tables, HDR histograms and fixed-size rings. Memory
//! does not grow with the number of attempts, however long a session runs. Time comes from the
//! outcomes themselves (or is passed in), never from the clock.

mod causes;
mod derived;
mod origin;
mod ring;
mod status_counts;
mod targets;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hdrhistogram::Histogram;

pub use causes::CauseCounts;
pub use derived::{Layers, Pressure, QuotaProjection, Trend};
pub use origin::{ByOrigin, OriginStats};
pub use ring::{SecondBucket, SecondRing, WindowSummary};
pub use status_counts::{StatusClass, StatusCounts};
pub use targets::{MAX_TARGETS, OTHER_TARGET, TargetStats, TargetTable, target_name};

use crate::event::Fact;
use crate::outcome::{
    BillingUnit, Cause, FindingCounts, LimitKind, MAX_UNKNOWN_CODES, OTHER_CODE, Origin, Outcome,
    Retryable, Transport, sane_amount,
};
use crate::provider::UsageReading;

/// Attempts kept for the "recent attempts" list and the detail view.
pub const DEFAULT_RECENT_CAPACITY: usize = 1000;
/// Seconds of per-second history kept for sparklines and "last minute" figures.
pub const HISTORY_SECONDS: usize = 120;
/// Latencies are recorded in microseconds, up to ten minutes, at three significant figures.
const LATENCY_MAX_US: u64 = 600_000_000;

/// Everything the panes and the report read.
#[derive(Debug, Clone)]
pub struct SessionStats {
    pub started_at: DateTime<Utc>,
    /// One entry per provider, in the order first seen (the config's order when registered up front).
    pub providers: Vec<ProviderStats>,
    /// The most recent attempts of all providers, newest last.
    pub recent: VecDeque<Outcome>,
    recent_capacity: usize,
    /// Event-log lines or other inputs that could not be read (replay reports them).
    pub unreadable_inputs: u64,
}

/// One provider's statistics.
#[derive(Debug, Clone)]
pub struct ProviderStats {
    pub name: String,
    /// Attempts, retries included.
    pub attempts: u64,
    /// Attempts that retried an earlier one (automatically or by hand).
    pub retries: u64,
    /// API call succeeded and the target answered below 400.
    pub succeeded: u64,
    /// The API did its job, whatever the target answered ([`Outcome::api_served`]).
    pub api_served: u64,
    pub failed: u64,
    /// Failures by what they failed on.
    pub causes: CauseCounts,
    /// Probes not sent, with the last reason (a paused provider's remaining probes).
    pub skipped: u64,
    pub last_skip_reason: Option<String>,
    pub api_status: StatusCounts,
    pub target_status: StatusCounts,
    /// Attempts with no complete response, by transport label (`timeout`, `refused`, …).
    pub transport_errors: BTreeMap<&'static str, u64>,
    /// Structured codes the provider sent, with what the contract says about them.
    pub error_codes: BTreeMap<String, CodeStats>,
    /// How many of `error_codes` the profile does not list (bounded by [`MAX_UNKNOWN_CODES`]).
    pub unknown_codes_kept: usize,
    /// Failures that carried no error code, by kind (bounded: statuses and transport labels).
    pub uncoded_failures: BTreeMap<FailureKind, CodeStats>,
    /// The API's host, from the session's settings: where transport failures failed.
    pub api_host: Option<String>,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// Latency of the successes alone, and of the failures alone (a fast 429 is no fast scrape).
    pub success_latency: Histogram<u64>,
    pub failure_latency: Histogram<u64>,
    /// Per target host, and per target URL (bounded: see [`TargetTable`]).
    pub by_host: TargetTable,
    pub by_target: TargetTable,
    pub rate_limit: RateLimitState,
    pub concurrency: ConcurrencyState,
    pub billing: BillingState,
    /// Why the provider is paused; `None` while it runs.
    pub paused: Option<String>,
    /// Per-second history for sparklines and "last minute" figures.
    pub history: SecondRing,
    /// The same traffic split into probes and proxied requests.
    pub by_origin: ByOrigin,
    /// The audit of the user's scraper (`omniscope proxy`): findings per rule and requests the
    /// guard answered. `None` until the session proxies (a probe run has no audit).
    pub audit: Option<FindingCounts>,
}

/// A kind of failure the failures pane lists, besides the provider's structured codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// An API status with no code in the body (a bare 502, a 429 without a code).
    ApiStatus(u16),
    /// The target's status behind an API success (404, 503 …).
    TargetStatus(u16),
    /// No complete answer, by transport label (`timeout`, `refused` …).
    Transport(&'static str),
    /// An answer that could not be read.
    Unreadable,
}

impl FailureKind {
    /// The kind of a failed attempt that carries no error code.
    #[must_use]
    pub fn of(outcome: &Outcome) -> Option<Self> {
        let cause = outcome.cause()?;
        if outcome.error_code.is_some() {
            return None;
        }
        Some(match (outcome.api_status, cause) {
            (_, Cause::Unreadable) if outcome.transport == Transport::Ok => Self::Unreadable,
            (None, _) => Self::Transport(outcome.transport.label()),
            (Some(_), Cause::Target) if outcome.api_succeeded() => {
                Self::TargetStatus(outcome.target_status.unwrap_or(0))
            }
            (Some(status), _) => Self::ApiStatus(status),
        })
    }

    /// How the pane names it: `HTTP 502`, `target 404`, `timeout`, `unreadable`.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::ApiStatus(status) => format!("HTTP {status}"),
            Self::TargetStatus(status) => format!("target {status}"),
            Self::Transport(label) => label.to_owned(),
            Self::Unreadable => "unreadable".to_owned(),
        }
    }
}

/// One error code's count and contract facts.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeStats {
    /// What the first failure under this code failed on; `None` when it came with a success.
    pub cause: Option<Cause>,
    pub count: u64,
    pub api_status: Option<u16>,
    pub retryable: Retryable,
    pub refund_expected: bool,
    /// What its attempts were charged, summed (believable amounts only): a row is "billed" only
    /// when this is not zero, whatever the contract says about refunds.
    pub charged: f64,
    pub advice: Option<String>,
    pub meaning: Option<String>,
}

impl CodeStats {
    /// A row with the contract facts of its first attempt and nothing counted yet.
    fn first_of(outcome: &Outcome) -> Self {
        Self {
            cause: outcome.cause(),
            count: 0,
            api_status: outcome.api_status,
            retryable: outcome.class.retryable,
            refund_expected: outcome.class.refund_expected,
            charged: 0.0,
            advice: outcome.class.advice.clone(),
            meaning: outcome.class.meaning.clone(),
        }
    }
}

/// The latest rate-limit readings (headers are hints: absent values keep the previous reading).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitState {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<DateTime<Utc>>,
    /// When the last Retry-After ends.
    pub retry_after_until: Option<DateTime<Utc>>,
    /// 429 answers.
    pub throttled: u64,
}

impl RateLimitState {
    /// The earliest instant the provider accepts the next request, when it asked for a wait.
    #[must_use]
    pub fn next_allowed(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let reset = self.reset_at.filter(|_| self.remaining == Some(0));
        [self.retry_after_until, reset]
            .into_iter()
            .flatten()
            .max()
            .filter(|at| *at > now)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencyState {
    /// Requests in flight now, as the engine reports it.
    pub in_flight: u32,
    pub max_in_flight: u32,
    /// The plan's limit: from the provider's headers when it sends them, else from the config.
    pub limit: Option<u32>,
    /// The provider's own figure (`X-Concurrency-Limit`), when it sent one.
    pub advertised: Option<u32>,
    /// What the provider last said it counts in flight (`X-Concurrency-Current`).
    pub provider_current: Option<u32>,
    /// 429s that named the concurrency limit.
    pub limit_hits: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BillingState {
    pub unit: BillingUnit,
    pub charged: f64,
    pub refunded: f64,
    /// From the usage endpoint, in `balance_unit`.
    pub balance: Option<f64>,
    pub balance_unit: Option<BillingUnit>,
    pub balance_at: Option<DateTime<Utc>>,
    pub plan: Option<String>,
    /// Usage the provider reports as used this period.
    pub usage_used: Option<f64>,
    /// When `usage_used` was read.
    pub usage_at: Option<DateTime<Utc>>,
    /// The first usage figure this session read, and when: projections use what changed since,
    /// never the account's whole past divided by this session's length.
    pub usage_first: Option<(f64, DateTime<Utc>)>,
    /// Requests the contract bills (answered, and not refunded by its rules): what a plan's
    /// request quota counts when the provider reports no usage. An account figure: `c` keeps it.
    pub billed_requests: u64,
    pub refund_mismatches: u64,
    /// Attempts whose charge or refund was unreadable (absurd, not finite): spend unknown.
    pub unreadable: u64,
}

impl BillingState {
    #[must_use]
    pub fn net(&self) -> f64 {
        self.charged - self.refunded
    }
}

/// p50/p90/p99/max in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub count: u64,
}

impl ProviderStats {
    #[must_use]
    pub fn new(name: &str, unit: BillingUnit) -> Self {
        Self {
            name: name.to_owned(),
            attempts: 0,
            retries: 0,
            succeeded: 0,
            api_served: 0,
            failed: 0,
            causes: CauseCounts::default(),
            skipped: 0,
            last_skip_reason: None,
            api_status: StatusCounts::default(),
            target_status: StatusCounts::default(),
            transport_errors: BTreeMap::new(),
            error_codes: BTreeMap::new(),
            unknown_codes_kept: 0,
            uncoded_failures: BTreeMap::new(),
            api_host: None,
            latency: new_latency_histogram(),
            success_latency: new_latency_histogram(),
            failure_latency: new_latency_histogram(),
            by_host: TargetTable::default(),
            by_target: TargetTable::default(),
            rate_limit: RateLimitState::default(),
            concurrency: ConcurrencyState::default(),
            billing: BillingState {
                unit,
                ..BillingState::default()
            },
            paused: None,
            history: SecondRing::new(HISTORY_SECONDS),
            by_origin: ByOrigin::default(),
            audit: None,
        }
    }

    /// Fold one attempt in.
    pub fn ingest(&mut self, outcome: &Outcome) {
        let finished_at = finished_at(outcome);
        let succeeded = outcome.succeeded();
        self.attempts += 1;
        let share = self.by_origin.get_mut(outcome.origin);
        share.attempts += 1;
        if succeeded {
            share.succeeded += 1;
        } else {
            share.failed += 1;
        }
        if outcome.origin == Origin::Proxy {
            self.audit.get_or_insert_default();
        }
        if outcome.retry_of.is_some() {
            self.retries += 1;
        }
        if succeeded {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        if outcome.api_served() {
            self.api_served += 1;
        }
        if let Some(cause) = outcome.cause() {
            self.causes.add(cause, 1);
        }
        self.by_host.record(outcome.target_host(), outcome);
        self.by_target
            .record(&target_name(&outcome.target_url), outcome);
        match outcome.api_status {
            Some(status) => self.api_status.add(status),
            None => {
                *self
                    .transport_errors
                    .entry(outcome.transport.label())
                    .or_insert(0) += 1
            }
        }
        if let Some(status) = outcome.target_status {
            self.target_status.add(status);
        }
        // Checked again here: a replayed log may come from a build that let 1e308 through, and
        // one such amount would make every total after it infinite or NaN.
        let sane = |amount: Option<f64>| amount.filter(|value| sane_amount(*value));
        let (charged, refunded) = (
            sane(outcome.billing.charged),
            sane(outcome.billing.refunded),
        );
        let failure = match &outcome.error_code {
            Some(code) => Some(self.code_stats(code, outcome)),
            None => FailureKind::of(outcome).map(|kind| {
                self.uncoded_failures
                    .entry(kind)
                    .or_insert_with(|| CodeStats::first_of(outcome))
            }),
        };
        if let Some(stats) = failure {
            stats.count += 1;
            stats.charged += charged.unwrap_or(0.0);
        }
        let micros = u64::try_from(outcome.latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        self.latency.saturating_record(micros);
        if succeeded {
            self.success_latency.saturating_record(micros);
        } else {
            self.failure_latency.saturating_record(micros);
        }

        self.read_rate_limit(outcome, finished_at);
        let concurrency = &mut self.concurrency;
        if let Some(limit) = outcome.concurrency.limit {
            concurrency.limit = Some(limit);
            concurrency.advertised = Some(limit);
        }
        if let Some(current) = outcome.concurrency.current {
            concurrency.provider_current = Some(current);
        }
        if outcome.class.limit == Some(LimitKind::Concurrency) {
            concurrency.limit_hits += 1;
        }

        let billing = &mut self.billing;
        billing.charged += charged.unwrap_or(0.0);
        billing.refunded += refunded.unwrap_or(0.0);
        let share = self.by_origin.get_mut(outcome.origin);
        share.charged += charged.unwrap_or(0.0);
        share.refunded += refunded.unwrap_or(0.0);
        if outcome.billing.unreadable
            || charged != outcome.billing.charged
            || refunded != outcome.billing.refunded
        {
            billing.unreadable += 1;
        }
        if outcome.billing.audit.is_mismatch() {
            billing.refund_mismatches += 1;
        }
        if outcome.api_status.is_some() && !outcome.class.refund_expected {
            billing.billed_requests += 1;
        }

        self.history.bucket_mut(finished_at.timestamp()).record(
            outcome,
            succeeded,
            self.concurrency.in_flight,
        );
    }

    /// The row a code counts under: every code the profile knows by name, unknown ones by name
    /// up to [`MAX_UNKNOWN_CODES`], the rest under [`OTHER_CODE`].
    fn code_stats(&mut self, code: &str, outcome: &Outcome) -> &mut CodeStats {
        if !outcome.class.known_code && !self.error_codes.contains_key(code) {
            if self.unknown_codes_kept >= MAX_UNKNOWN_CODES {
                return self
                    .error_codes
                    .entry(OTHER_CODE.to_owned())
                    .or_insert_with(|| CodeStats {
                        api_status: None,
                        retryable: Retryable::No,
                        refund_expected: false,
                        advice: None,
                        meaning: Some(format!(
                            "codes the profile does not list, beyond the first {MAX_UNKNOWN_CODES}"
                        )),
                        ..CodeStats::first_of(outcome)
                    });
            }
            self.unknown_codes_kept += 1;
        }
        self.error_codes
            .entry(code.to_owned())
            .or_insert_with(|| CodeStats::first_of(outcome))
    }

    fn read_rate_limit(&mut self, outcome: &Outcome, finished_at: DateTime<Utc>) {
        let reading = &outcome.rate_limit;
        let state = &mut self.rate_limit;
        if reading.limit.is_some() {
            state.limit = reading.limit;
        }
        if reading.remaining.is_some() {
            state.remaining = reading.remaining;
        }
        if reading.reset_at.is_some() {
            state.reset_at = reading.reset_at;
        }
        if let Some(wait) = reading.retry_after {
            let until = finished_at + TimeDelta::from_std(wait).unwrap_or_default();
            state.retry_after_until =
                Some(state.retry_after_until.map_or(until, |old| old.max(until)));
        }
        if outcome.throttled() {
            state.throttled += 1;
        }
    }

    /// A probe not sent, or (proxied) a request `--guard` answered locally.
    pub fn record_skipped(&mut self, origin: Origin, reason: &str) {
        self.skipped += 1;
        self.by_origin.get_mut(origin).skipped += 1;
        if origin == Origin::Proxy {
            self.audit.get_or_insert_default().guarded += 1;
        }
        if self.last_skip_reason.as_deref() != Some(reason) {
            self.last_skip_reason = Some(reason.to_owned());
        }
    }

    /// `in_flight`: the origin's own count; the provider's is both origins'.
    pub fn set_in_flight(&mut self, origin: Origin, in_flight: u32, at: DateTime<Utc>) {
        self.by_origin.get_mut(origin).in_flight = in_flight;
        let in_flight = self.by_origin.in_flight();
        self.concurrency.in_flight = in_flight;
        self.concurrency.max_in_flight = self.concurrency.max_in_flight.max(in_flight);
        self.history
            .bucket_mut(at.timestamp())
            .note_in_flight(in_flight);
    }

    /// The plan's concurrency limit from the config, unless the provider's headers said otherwise.
    pub fn set_configured_limit(&mut self, limit: u32) {
        if self.concurrency.limit.is_none() {
            self.concurrency.limit = Some(limit);
        }
    }

    pub fn record_usage(&mut self, usage: &UsageReading, at: DateTime<Utc>) {
        let billing = &mut self.billing;
        if usage.balance.is_some() {
            billing.balance = usage.balance;
            billing.balance_unit = Some(usage.unit);
            billing.balance_at = Some(at);
        }
        if usage.plan.is_some() {
            billing.plan.clone_from(&usage.plan);
        }
        if let Some(used) = usage.used {
            billing.usage_used = Some(used);
            billing.usage_at = Some(at);
            billing.usage_first.get_or_insert((used, at));
        }
    }

    #[must_use]
    pub fn latency_summary(&self) -> LatencySummary {
        latency_summary(&self.latency)
    }

    /// Latency of the successes alone.
    #[must_use]
    pub fn success_latency_summary(&self) -> LatencySummary {
        latency_summary(&self.success_latency)
    }

    /// Latency of the failures alone.
    #[must_use]
    pub fn failure_latency_summary(&self) -> LatencySummary {
        latency_summary(&self.failure_latency)
    }

    /// Share of attempts that succeeded, 0–1; `None` before the first attempt.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        // Exact as f64: counts far below 2^52.
        (self.attempts > 0).then(|| self.succeeded as f64 / self.attempts as f64)
    }

    /// The API layer's success rate, 0–1: attempts it served ([`Outcome::api_served`]) out of
    /// attempts plus probes skipped while paused (a provider that stopped serving is not
    /// available). `None` before anything was sent or skipped.
    #[must_use]
    pub fn api_success_rate(&self) -> Option<f64> {
        let total = self.attempts + self.skipped;
        (total > 0).then(|| self.api_served as f64 / total as f64)
    }

    /// The target layer's success rate, 0–1: of the attempts the API served, those the target
    /// answered below 400. `None` until the API served one.
    #[must_use]
    pub fn target_success_rate(&self) -> Option<f64> {
        (self.api_served > 0).then(|| self.succeeded as f64 / self.api_served as f64)
    }

    /// Counters back to zero; live state (in flight, pause, limits, balance) is kept.
    pub fn reset_counters(&mut self) {
        let fresh = Self::new(&self.name, self.billing.unit);
        let billing = BillingState {
            balance: self.billing.balance,
            balance_unit: self.billing.balance_unit,
            balance_at: self.billing.balance_at,
            plan: self.billing.plan.take(),
            usage_used: self.billing.usage_used,
            usage_at: self.billing.usage_at,
            usage_first: self.billing.usage_first,
            billed_requests: self.billing.billed_requests,
            ..fresh.billing.clone()
        };
        let rate_limit = RateLimitState {
            throttled: 0,
            ..std::mem::take(&mut self.rate_limit)
        };
        let concurrency = ConcurrencyState {
            max_in_flight: self.concurrency.in_flight,
            limit_hits: 0,
            ..std::mem::take(&mut self.concurrency)
        };
        let paused = self.paused.take();
        let mut by_origin = ByOrigin::default();
        for origin in Origin::ALL {
            by_origin.get_mut(origin).in_flight = self.by_origin.get(origin).in_flight;
        }
        let audit = self.audit.map(|_| FindingCounts::default());
        let api_host = self.api_host.take();
        *self = Self {
            api_host,
            rate_limit,
            concurrency,
            billing,
            paused,
            by_origin,
            audit,
            ..fresh
        };
    }
}

impl SessionStats {
    #[must_use]
    pub fn new(started_at: DateTime<Utc>) -> Self {
        Self::with_recent_capacity(started_at, DEFAULT_RECENT_CAPACITY)
    }

    #[must_use]
    pub fn with_recent_capacity(started_at: DateTime<Utc>, recent_capacity: usize) -> Self {
        Self {
            started_at,
            providers: Vec::new(),
            recent: VecDeque::with_capacity(recent_capacity.min(4096)),
            recent_capacity: recent_capacity.max(1),
            unreadable_inputs: 0,
        }
    }

    /// Register a provider up front so it shows (and reports) even before its first attempt.
    pub fn register(&mut self, name: &str, unit: BillingUnit) -> &mut ProviderStats {
        let index = match self.providers.iter().position(|p| p.name == name) {
            Some(index) => index,
            None => {
                self.providers.push(ProviderStats::new(name, unit));
                self.providers.len() - 1
            }
        };
        &mut self.providers[index]
    }

    #[must_use]
    pub fn provider(&self, name: &str) -> Option<&ProviderStats> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn provider_mut(&mut self, name: &str) -> Option<&mut ProviderStats> {
        self.providers.iter_mut().find(|p| p.name == name)
    }

    /// Fold one attempt in, and keep it among the recent ones.
    pub fn ingest(&mut self, outcome: Outcome) {
        self.register(&outcome.provider, outcome.billing.unit)
            .ingest(&outcome);
        if self.recent.len() == self.recent_capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(outcome);
    }

    /// Fold one fact in: the only fold. The headless run, the dashboard and a replayed log all
    /// come here, so they count alike. Taken by value: an attempt's outcome moves into the
    /// recent-attempts ring instead of being copied, once per attempt.
    pub fn apply(&mut self, fact: Fact) {
        match fact {
            Fact::SessionStart {
                started_at,
                providers,
                settings,
            } => {
                self.started_at = started_at;
                let proxied = proxies(&settings);
                for entry in providers {
                    let api_host = api_host_of(&settings, &entry.name);
                    let provider = self.register(&entry.name, entry.unit);
                    if let Some(limit) = entry.concurrency_limit {
                        provider.set_configured_limit(limit);
                    }
                    if api_host.is_some() {
                        provider.api_host = api_host;
                    }
                    if proxied {
                        provider.audit.get_or_insert_default();
                    }
                }
            }
            Fact::Attempt {
                outcome, in_flight, ..
            } => self.ingest_attempt(*outcome, in_flight),
            Fact::InFlight {
                provider,
                n,
                at,
                origin,
            } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.set_in_flight(origin, n, at);
                }
            }
            Fact::Skipped {
                provider,
                reason,
                origin,
                ..
            } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.record_skipped(origin, &reason);
                }
            }
            Fact::Finding { provider, kind, .. } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.audit.get_or_insert_default().count(kind);
                }
            }
            Fact::Paused {
                provider, reason, ..
            } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.paused = Some(reason);
                }
            }
            Fact::Resumed { provider, .. } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.paused = None;
                }
            }
            Fact::Usage {
                provider,
                reading,
                at,
                ..
            } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.record_usage(&reading, at);
                }
            }
            Fact::Limits {
                provider,
                concurrency,
                ..
            } => {
                if let Some(provider) = self.provider_mut(&provider) {
                    provider.set_configured_limit(concurrency);
                }
            }
            Fact::SessionEnd { .. } => {}
        }
    }

    /// Fold an ended attempt in, with the provider's in-flight count after it left (when known),
    /// dated when its answer arrived.
    fn ingest_attempt(&mut self, outcome: Outcome, in_flight: Option<u32>) {
        let finished = finished_at(&outcome);
        let (name, origin) = (outcome.provider.clone(), outcome.origin);
        self.ingest(outcome);
        if let (Some(n), Some(provider)) = (in_flight, self.provider_mut(&name)) {
            provider.set_in_flight(origin, n, finished);
        }
    }

    /// The recent attempt with this id, if still kept.
    #[must_use]
    pub fn attempt(&self, attempt_id: u64) -> Option<&Outcome> {
        self.recent
            .iter()
            .rev()
            .find(|o| o.attempt_id == attempt_id)
    }

    /// Kept attempts that retried `attempt_id`.
    pub fn retries_of(&self, attempt_id: u64) -> impl Iterator<Item = &Outcome> {
        self.recent
            .iter()
            .filter(move |o| o.retry_of == Some(attempt_id))
    }

    /// All providers' latencies merged.
    #[must_use]
    pub fn latency_summary(&self) -> LatencySummary {
        let mut merged = new_latency_histogram();
        for provider in &self.providers {
            // Same bounds and precision, so adding cannot fail.
            let _ = merged.add(&provider.latency);
        }
        latency_summary(&merged)
    }

    #[must_use]
    pub fn total_attempts(&self) -> u64 {
        self.providers.iter().map(|p| p.attempts).sum()
    }

    /// Counters of every provider back to zero; the recent list is emptied.
    pub fn reset_counters(&mut self, now: DateTime<Utc>) {
        for provider in &mut self.providers {
            provider.reset_counters();
        }
        self.recent.clear();
        self.started_at = now;
        self.unreadable_inputs = 0;
    }

    /// How long the session has run at `now`.
    #[must_use]
    pub fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        (now - self.started_at).to_std().unwrap_or_default()
    }
}

/// The host of `provider`'s `base_url` in a session's settings (`providers[].base_url`).
fn api_host_of(
    settings: &serde_json::Map<String, serde_json::Value>,
    provider: &str,
) -> Option<String> {
    settings
        .get("providers")?
        .as_array()?
        .iter()
        .find(|entry| entry.get("name").and_then(serde_json::Value::as_str) == Some(provider))?
        .get("base_url")?
        .as_str()
        .map(crate::outcome::url_host)
        .filter(|host| !host.is_empty())
        .map(str::to_owned)
}

fn new_latency_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, LATENCY_MAX_US, 3) {
        Ok(histogram) => histogram,
        // The bounds are constants that hdrhistogram accepts; this arm is unreachable.
        Err(_) => {
            Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
        }
    }
}

fn latency_summary(histogram: &Histogram<u64>) -> LatencySummary {
    if histogram.is_empty() {
        return LatencySummary::default();
    }
    // Exact as f64: microseconds well below 2^52.
    let ms = |micros: u64| micros as f64 / 1000.0;
    LatencySummary {
        p50: ms(histogram.value_at_quantile(0.50)),
        p90: ms(histogram.value_at_quantile(0.90)),
        p99: ms(histogram.value_at_quantile(0.99)),
        max: ms(histogram.max()),
        count: histogram.len(),
    }
}

/// Whether a session's settings (its first fact) say it proxies the user's traffic: `omniscope
/// proxy`, or a dashboard started with `--proxy`. Such a session audits every provider.
#[must_use]
pub fn proxies(settings: &serde_json::Map<String, serde_json::Value>) -> bool {
    settings.get("mode").and_then(serde_json::Value::as_str) == Some("proxy")
        || settings.contains_key("proxy")
}

/// When an attempt's answer arrived.
#[must_use]
pub fn finished_at(outcome: &Outcome) -> DateTime<Utc> {
    outcome.started_at + TimeDelta::from_std(outcome.latency).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;
    use crate::provider::{AttemptMeta, Exchange, builtin_profiles, classify};

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
    }

    fn outcome(
        provider: &str,
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
        second: i64,
    ) -> Outcome {
        let profiles = builtin_profiles();
        let profile = profiles.get(provider).unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let meta = AttemptMeta {
            attempt: 1,
            started_at: at(second),
            target_url: "https://example.com/".into(),
            ..AttemptMeta::default()
        };
        classify(
            profile,
            &meta,
            &Exchange {
                transport: &Transport::Ok,
                status: Some(status),
                headers: &map,
                body: body.as_bytes(),
                received_at: at(second),
                latency: Duration::from_millis(250),
                body_cap: 1 << 20,
            },
        )
    }

    const OMNI_OK: &str =
        r#"{"success":true,"data":{"status_code":200,"content":"x"},"billing":{"charged":0.0035}}"#;
    const OMNI_TARGET_404: &str =
        r#"{"success":true,"data":{"status_code":404,"content":""},"billing":{"charged":0.0035}}"#;
    const OMNI_CONCURRENCY: &str = r#"{"success":false,"error":"Concurrent request limit reached","code":"CONCURRENCY_LIMIT"}"#;

    #[test]
    fn counts_both_layers_codes_and_billing() {
        let mut stats = SessionStats::new(at(0));
        stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], 1));
        stats.ingest(outcome("omniscrape", 200, OMNI_TARGET_404, &[], 2));
        stats.ingest(outcome(
            "omniscrape",
            429,
            OMNI_CONCURRENCY,
            &[("retry-after", "3")],
            3,
        ));

        let omni = stats.provider("omniscrape").unwrap();
        assert_eq!((omni.attempts, omni.succeeded, omni.failed), (3, 1, 2));
        // The two layers apart: the API served the 200 and the target's 404, not the 429; the
        // target answered one of the two it was asked.
        assert_eq!(omni.api_served, 2);
        // The quota counts what the contract bills: not the refunded 429.
        assert_eq!(omni.billing.billed_requests, 2);
        assert_eq!(omni.api_success_rate(), Some(2.0 / 3.0));
        assert_eq!(omni.target_success_rate(), Some(0.5));
        assert_eq!(omni.api_status.get(200), 2);
        assert_eq!(omni.api_status.get(429), 1);
        assert_eq!(omni.target_status.get(404), 1);
        assert_eq!(omni.error_codes["CONCURRENCY_LIMIT"].count, 1);
        assert_eq!(omni.rate_limit.throttled, 1);
        assert_eq!(omni.concurrency.limit_hits, 1);
        assert!((omni.billing.charged - 0.007).abs() < 1e-12);
        assert_eq!(omni.billing.refund_mismatches, 0);
        let until = omni.rate_limit.retry_after_until.unwrap();
        assert_eq!(
            until,
            at(3) + TimeDelta::milliseconds(250) + TimeDelta::seconds(3)
        );
        assert_eq!(omni.latency_summary().count, 3);
    }

    #[test]
    fn failures_split_by_cause_layer_and_latency_and_cost_per_success() {
        let mut stats = SessionStats::new(at(0));
        stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], 1));
        stats.ingest(outcome("omniscrape", 200, OMNI_TARGET_404, &[], 2));
        let mut fast_429 = outcome("omniscrape", 429, OMNI_CONCURRENCY, &[], 3);
        fast_429.latency = Duration::from_millis(2);
        stats.ingest(fast_429);
        let omni = stats.provider("omniscrape").unwrap();
        assert_eq!(omni.causes.get(Cause::Target), 1);
        assert_eq!(omni.causes.get(Cause::Concurrency), 1);
        assert_eq!(omni.causes.dominant(), Some(Cause::Target));
        let layers = omni.layers();
        assert_eq!(layers.api_success_rate(), Some(2.0 / 3.0));
        assert_eq!(layers.target_success_rate(), Some(0.5));
        // The fast 429 is not among the successes' latency.
        assert_eq!(omni.success_latency_summary().count, 1);
        assert!((omni.success_latency_summary().p50 - 250.0).abs() < 1.0);
        assert!(omni.failure_latency_summary().p50 < 250.0);
        // Two charges of 0.0035 (the success and the target's 404), one success; dollars already.
        let cost = omni.cost_per_success().unwrap();
        assert!((cost - 0.007).abs() < 1e-12, "{cost}");
        assert_eq!(omni.cost_per_success_usd(), Some(cost));
        assert_eq!(omni.throttled_share(), Some(1.0 / 3.0));
        assert_eq!(omni.by_host.get("example.com").unwrap().layers.attempts, 3);
        assert_eq!(omni.by_target.len(), 1);
        let minute = omni.history.summarize(at(3).timestamp(), 60);
        assert_eq!(minute.causes.total(), 2);
    }

    #[test]
    fn the_trend_compares_the_last_minute_with_the_one_before() {
        let mut stats = SessionStats::new(at(0));
        for second in [10, 20, 30] {
            stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], second));
        }
        stats.ingest(outcome("omniscrape", 429, OMNI_CONCURRENCY, &[], 70));
        stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], 80));
        let omni = stats.provider("omniscrape").unwrap();
        assert_eq!(omni.failure_trend(at(100).timestamp()), Some(Trend::Worse));
        assert_eq!(
            omni.failure_trend(at(50).timestamp()),
            None,
            "no minute before"
        );
        // Credits do not convert to dollars.
        let mut alter = ProviderStats::new("alterlab", BillingUnit::Credits);
        alter.succeeded = 1;
        alter.billing.charged = 3.0;
        assert_eq!(alter.cost_per_success(), Some(3.0));
        assert_eq!(alter.cost_per_success_usd(), None);
        alter.billing.refunded = 1.5;
        assert_eq!(alter.refund_ratio(), Some(0.5));
    }

    #[test]
    fn a_charged_failure_is_a_refund_mismatch() {
        let mut stats = SessionStats::new(at(0));
        let body =
            r#"{"success":false,"error":"Target returned 403","billing":{"charged":0.0035}}"#;
        stats.ingest(outcome("omniscrape", 502, body, &[], 1));
        assert_eq!(
            stats
                .provider("omniscrape")
                .unwrap()
                .billing
                .refund_mismatches,
            1
        );
    }

    #[test]
    fn headers_are_hints_and_absent_ones_keep_the_last_reading() {
        let mut stats = SessionStats::new(at(0));
        let headers = [("x-ratelimit-limit", "30"), ("x-ratelimit-remaining", "7")];
        let ok = r#"{"url":"u","status_code":200,"content":"c","billing":{"total_credits":1}}"#;
        stats.ingest(outcome("alterlab", 200, ok, &headers, 1));
        stats.ingest(outcome(
            "alterlab",
            200,
            ok,
            &[("x-ratelimit-remaining", "-1")],
            2,
        ));
        let alter = stats.provider("alterlab").unwrap();
        assert_eq!(alter.rate_limit.limit, Some(30));
        assert_eq!(
            alter.rate_limit.remaining,
            Some(7),
            "a garbage value does not overwrite"
        );
    }

    #[test]
    fn recent_attempts_are_bounded() {
        let mut stats = SessionStats::with_recent_capacity(at(0), 5);
        for second in 0..20 {
            let mut attempt = outcome("omniscrape", 200, OMNI_OK, &[], second);
            attempt.attempt_id = u64::try_from(second).unwrap();
            stats.ingest(attempt);
        }
        assert_eq!(stats.recent.len(), 5);
        assert_eq!(stats.recent.front().unwrap().attempt_id, 15);
        assert!(stats.attempt(3).is_none());
        assert!(stats.attempt(19).is_some());
        assert_eq!(stats.provider("omniscrape").unwrap().attempts, 20);
    }

    #[test]
    fn the_last_minute_forgets_older_seconds() {
        let mut stats = SessionStats::new(at(0));
        stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], 0));
        stats.ingest(outcome("omniscrape", 429, OMNI_CONCURRENCY, &[], 100));
        let omni = stats.provider("omniscrape").unwrap();
        let minute = omni.history.summarize(at(100).timestamp(), 60);
        assert_eq!(minute.attempts, 1);
        assert_eq!(minute.api_statuses, vec![(429, 1)]);
        assert_eq!(minute.throttled, 1);
        let longer = omni.history.summarize(at(100).timestamp(), 120);
        assert_eq!(longer.attempts, 2);
    }

    #[test]
    fn reset_zeroes_counters_but_keeps_live_state() {
        let mut stats = SessionStats::new(at(0));
        stats.ingest(outcome("omniscrape", 200, OMNI_OK, &[], 1));
        let omni = stats.provider_mut("omniscrape").unwrap();
        omni.paused = Some("MONTHLY_QUOTA_EXCEEDED: used up".into());
        omni.set_in_flight(Origin::Probe, 2, at(1));
        stats.reset_counters(at(5));
        let omni = stats.provider("omniscrape").unwrap();
        assert_eq!(omni.attempts, 0);
        assert_eq!(omni.api_status.total(), 0);
        assert!(omni.paused.is_some());
        assert_eq!(omni.concurrency.in_flight, 2);
        assert!(stats.recent.is_empty());
    }

    #[test]
    fn status_counts_ignore_non_http_values() {
        let mut counts = StatusCounts::default();
        counts.add(42);
        counts.add(1000);
        counts.add(503);
        assert_eq!(counts.total(), 1);
        assert_eq!(counts.iter().collect::<Vec<_>>(), vec![(503, 1)]);
        assert_eq!(counts.class_total(StatusClass::ServerError), 1);
    }
}
