//! The contracts' rules as decisions: retry or not, after how long, escalated or not, pause the
//! provider or not, and whether the billing agrees with the refund rules. Pure: the clock and the
//! random jitter come in as arguments.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outcome::{Outcome, RefundAudit, RequestOptions, Retryable, Transport};
use crate::provider::{EscalationStep, Profile};

/// How hard omniscope retries on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per probe, the first included (the contracts' examples use 3–4).
    pub max_attempts: u32,
    /// First back-off; it doubles per retry: 1 s, 2 s, 4 s, 8 s.
    pub base_delay: Duration,
    /// Longest back-off between two attempts (Retry-After and resets may ask for longer).
    pub max_delay: Duration,
    /// Up to this fraction of the back-off is added at random, so clients that failed together do
    /// not return together.
    pub jitter: f64,
    /// Apply escalations that cost more (AlterLab's js mode and higher tiers) without asking.
    pub automatic_escalation: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            jitter: 0.25,
            automatic_escalation: false,
        }
    }
}

/// What came before the attempt being decided on, within one probe's chain of retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Failures in a row with the same status and code, this one included.
    pub consecutive_same_failure: u32,
    /// How many escalation steps the current options already carry.
    pub escalation_level: usize,
}

/// A changed request that may succeed where the plain one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub options: RequestOptions,
    /// What changed, for the user: "mode js_rendering", "proxy country de", "max tier 3".
    pub change: String,
    /// The level the new options carry (for [`RetryState::escalation_level`]).
    pub level: usize,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// It succeeded: nothing to do.
    Done,
    /// Send it again after `after`, with `options` (escalated when `escalation` says so).
    Retry {
        after: Duration,
        options: RequestOptions,
        escalation: Option<Escalation>,
        reason: String,
    },
    /// Stop retrying this probe. `offer` is an escalation the user may choose to pay for.
    GiveUp {
        reason: String,
        offer: Option<Escalation>,
    },
    /// Every further request to this provider will fail the same way: pause it. The reason starts
    /// with the provider's code, or the HTTP status when there is no code.
    PauseProvider { reason: String },
}

/// Decide what follows `outcome`. `jitter_unit` is a sample from [0, 1); `now` is when the decision
/// is made (for rate-limit resets given as instants).
#[must_use]
pub fn decide(
    profile: &Profile,
    policy: &RetryPolicy,
    outcome: &Outcome,
    state: RetryState,
    now: DateTime<Utc>,
    jitter_unit: f64,
) -> Decision {
    if outcome.succeeded() {
        return Decision::Done;
    }
    if outcome.class.account_stop {
        return Decision::PauseProvider {
            reason: pause_reason(outcome),
        };
    }

    let attempts_left = outcome.attempt < policy.max_attempts;
    let after = wait_before_retry(policy, outcome, now, jitter_unit);
    let rule = profile.escalation_for(outcome.api_status, outcome.error_code.as_deref());
    let escalation = rule
        .filter(|rule| state.consecutive_same_failure >= rule.after_consecutive)
        .and_then(|rule| {
            next_escalation(
                profile,
                &outcome.options,
                &rule.steps,
                state.escalation_level,
            )
        });
    let automatic = rule.is_some_and(|rule| rule.automatic || policy.automatic_escalation);

    if let (true, true, Some(escalation)) = (automatic, attempts_left, &escalation) {
        return Decision::Retry {
            after,
            options: escalation.options.clone(),
            reason: format!(
                "{}: retrying with {}",
                failure_label(outcome),
                escalation.change
            ),
            escalation: Some(escalation.clone()),
        };
    }

    // A plain retry is allowed for what the contract marks retryable, and for an API success whose
    // target answered 429/5xx only when the user asks (it was billed).
    let plain = outcome.class.retryable.allows_plain_retry() && !outcome.api_success;
    if plain && attempts_left {
        return Decision::Retry {
            after,
            options: outcome.options.clone(),
            escalation: None,
            reason: format!(
                "{}: retry {} of {}",
                failure_label(outcome),
                outcome.attempt,
                policy.max_attempts - 1
            ),
        };
    }

    let offer = escalation.or_else(|| {
        matches!(outcome.class.retryable, Retryable::Maybe)
            .then(|| generic_escalation(profile, &outcome.options, state.escalation_level))
            .flatten()
    });
    let reason = if plain {
        format!(
            "{}: gave up after {} attempts",
            failure_label(outcome),
            outcome.attempt
        )
    } else {
        format!(
            "{}: not retryable ({})",
            failure_label(outcome),
            outcome.class.retryable.label()
        )
    };
    Decision::GiveUp { reason, offer }
}

/// The back-off for the retry after attempt `attempt` (1 s, 2 s, 4 s, 8 s… capped), plus jitter,
/// stretched to honour Retry-After and, when the window is spent, the rate-limit reset.
#[must_use]
pub fn wait_before_retry(
    policy: &RetryPolicy,
    outcome: &Outcome,
    now: DateTime<Utc>,
    jitter_unit: f64,
) -> Duration {
    let exponent = outcome.attempt.saturating_sub(1).min(20);
    let backoff = policy
        .base_delay
        .saturating_mul(1 << exponent)
        .min(policy.max_delay);
    let jitter = backoff.mul_f64((policy.jitter * jitter_unit.clamp(0.0, 1.0)).max(0.0));
    let mut wait = backoff + jitter;
    if let Some(hold) = provider_hold(outcome, now) {
        wait = wait.max(hold);
    }
    wait
}

/// How long the provider asked everyone to stay away after this response: Retry-After, or the
/// rate-limit reset when the response was a 429 or the window reads empty. `None` when it asked
/// nothing. The engine holds the whole provider (not just this probe) for this long.
#[must_use]
pub fn provider_hold(outcome: &Outcome, now: DateTime<Utc>) -> Option<Duration> {
    let reading = &outcome.rate_limit;
    let until_reset = reading
        .reset_at
        .filter(|_| outcome.throttled() || reading.remaining == Some(0))
        .map(|reset| (reset - now).to_std().unwrap_or(Duration::ZERO));
    match (reading.retry_after, until_reset) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or_default().max(b.unwrap_or_default())),
    }
}

/// The pause reason: the provider's code (or the HTTP status) first, then the message.
#[must_use]
pub fn pause_reason(outcome: &Outcome) -> String {
    let head = failure_label(outcome);
    let detail = outcome
        .message
        .as_deref()
        .or(outcome.class.meaning.as_deref())
        .unwrap_or("account error");
    format!("{head}: {detail}")
}

fn failure_label(outcome: &Outcome) -> String {
    match (&outcome.error_code, outcome.api_status, &outcome.transport) {
        (Some(code), _, _) => code.clone(),
        (None, _, transport) if *transport != Transport::Ok => transport.label().to_owned(),
        (None, Some(status), _) => status.to_string(),
        (None, None, _) => "no response".to_owned(),
    }
}

/// The escalation the user can ask for on a failed attempt (the dashboard's `e` key): the
/// profile's rule for this failure if it has one, else a generic ladder (a rendering mode, another
/// proxy country, a higher tier).
#[must_use]
pub fn offered_escalation(
    profile: &Profile,
    outcome: &Outcome,
    level: usize,
) -> Option<Escalation> {
    profile
        .escalation_for(outcome.api_status, outcome.error_code.as_deref())
        .and_then(|rule| next_escalation(profile, &outcome.options, &rule.steps, level))
        .or_else(|| generic_escalation(profile, &outcome.options, level))
}

fn generic_escalation(
    profile: &Profile,
    options: &RequestOptions,
    level: usize,
) -> Option<Escalation> {
    let mut steps = Vec::new();
    if let Some(best_mode) = profile.request.modes.last() {
        steps.push(EscalationStep::Mode(best_mode.clone()));
    }
    steps.push(EscalationStep::NextProxyCountry);
    steps.push(EscalationStep::NextTier);
    next_escalation(profile, options, &steps, level)
}

/// The first step from `level` on that changes something this provider supports.
fn next_escalation(
    profile: &Profile,
    options: &RequestOptions,
    steps: &[EscalationStep],
    level: usize,
) -> Option<Escalation> {
    steps
        .iter()
        .enumerate()
        .skip(level)
        .find_map(|(index, step)| {
            apply_step(profile, options, step).map(|(options, change)| Escalation {
                options,
                change,
                level: index + 1,
            })
        })
}

/// One step applied to the options; `None` when the provider has no such option or it is already
/// at its highest.
#[must_use]
pub fn apply_step(
    profile: &Profile,
    options: &RequestOptions,
    step: &EscalationStep,
) -> Option<(RequestOptions, String)> {
    let request = &profile.request;
    let mut next = options.clone();
    let change = match step {
        EscalationStep::Mode(mode) => {
            request.mode.as_ref()?;
            if options.mode.as_deref() == Some(mode.as_str()) {
                return None;
            }
            next.mode = Some(mode.clone());
            format!("mode {mode}")
        }
        EscalationStep::NextProxyCountry => {
            request.proxy_country.as_ref()?;
            let countries = &request.proxy_countries;
            let current = options.proxy_country.as_ref().and_then(|country| {
                countries
                    .iter()
                    .position(|c| c.eq_ignore_ascii_case(country))
            });
            let country = match current {
                Some(index) => countries.get((index + 1) % countries.len())?,
                None => countries.first()?,
            };
            if options.proxy_country.as_deref() == Some(country.as_str()) {
                return None;
            }
            next.proxy_country = Some(country.clone());
            format!("proxy country {country}")
        }
        EscalationStep::NextTier => {
            let field = request.tier.as_ref()?;
            let tiers = &request.tiers;
            // Unset means the provider's default, taken as the cheapest tier.
            let current = options
                .tier
                .as_ref()
                .and_then(|tier| tiers.iter().position(|t| t == tier))
                .unwrap_or(0);
            let tier = tiers.get(current + 1)?;
            next.tier = Some(tier.clone());
            format!("{field} {tier}")
        }
    };
    Some((next, change))
}

/// Whether the billing of an attempt agrees with the contract's refund rules.
#[must_use]
pub fn refund_audit(outcome: &Outcome) -> RefundAudit {
    const EPSILON: f64 = 1e-9;
    let refunded = outcome.billing.refunded.unwrap_or(0.0);
    let failed = !outcome.api_success;
    if failed && outcome.class.refund_expected && outcome.billing.net() > EPSILON {
        RefundAudit::ChargedButShouldBeFree
    } else if refunded > EPSILON && !(failed && outcome.class.refund_expected) {
        RefundAudit::RefundedButShouldNotBe
    } else {
        RefundAudit::Consistent
    }
}
