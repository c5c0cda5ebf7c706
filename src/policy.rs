//! The contracts' rules as decisions: retry or not, after how long, escalated or not, pause the
//! provider or not, and whether the billing agrees with the refund rules. Pure: the clock and the
//! random jitter come in as arguments.

use std::time::Duration;

use chrono::{DateTime, Utc};

// The audit is computed where an outcome is classified (the provider layer, below this one);
// named here too, where the decisions that read it live.
pub use crate::outcome::refund_audit;
mod in_flight;

pub use in_flight::InFlightLimit;

use crate::outcome::{Outcome, RequestOptions, Retryable, Transport};
use crate::provider::{EscalationStep, MAX_WAIT, Profile};

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
    if accepted_job(outcome) {
        // The provider accepted the job (and may bill it whatever became of it): sending the
        // scrape again would be a second job and perhaps a second bill. Retried by hand only.
        return Decision::GiveUp {
            reason: format!(
                "{}: an accepted async job is not re-submitted automatically",
                failure_label(outcome)
            ),
            offer: None,
        };
    }

    let attempts_left = outcome.attempt < policy.max_attempts;
    let after = wait_before_retry(policy, outcome, now, jitter_unit);
    let rule = profile.escalation_for(outcome.api_status, outcome.error_code.as_deref());
    let escalation = rule
        // The count includes this failure, so it is at least one even from a default state.
        .filter(|rule| state.consecutive_same_failure.max(1) >= rule.after_consecutive)
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
    } else if outcome.class.retryable == Retryable::Maybe {
        format!(
            "{}: not sent again unchanged (the contract says a retry may or may not help)",
            failure_label(outcome)
        )
    } else {
        format!(
            "{}: not retried (the contract says retrying does not help)",
            failure_label(outcome)
        )
    };
    Decision::GiveUp { reason, offer }
}

/// The provider accepted this attempt as an async job (a 202, or the job it queued).
#[must_use]
pub fn accepted_job(outcome: &Outcome) -> bool {
    outcome.job.is_some() || outcome.api_status == Some(202)
}

/// The back-off for the retry after attempt `attempt` (1 s, 2 s, 4 s, 8 s… capped), stretched to
/// honour Retry-After and, when the window is spent, the rate-limit reset, plus jitter. The jitter
/// comes on top of the provider's wait too: retries that all return at the reset moment stampede
/// (NOTES.md, practices of trusted HTTP clients).
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
    // `jitter` comes from the config: a NaN, negative or huge fraction must not panic mul_f64.
    let fraction = (policy.jitter * jitter_unit.clamp(0.0, 1.0)).clamp(0.0, 1.0);
    let jitter = Duration::try_from_secs_f64(backoff.as_secs_f64() * fraction).unwrap_or_default();
    let Some(hold) = provider_hold(outcome, now).filter(|hold| *hold > backoff) else {
        return backoff.saturating_add(jitter);
    };
    // Still never beyond the longest wait honoured: a capped hour stays an hour.
    hold.saturating_add(jitter).min(hold.max(MAX_WAIT))
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
        // The API delivered; the target failed: say so, not the API's 200.
        (None, Some(status), _) if outcome.target_status.is_some_and(|t| t >= 400) => format!(
            "target {} (API {status})",
            outcome.target_status.unwrap_or_default()
        ),
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
    if let Some(best_mode) = profile
        .request
        .escalation_mode
        .as_ref()
        .or(profile.request.modes.last())
    {
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
            if !request.has_modes() {
                return None;
            }
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
            let tier = next_tier(&request.tiers, options.tier.as_deref())?;
            next.tier = Some(tier.clone());
            // A nested field (`/cost_controls/max_tier`) is named by its own key.
            let path = crate::provider::request_field_path(field);
            let name = path.last().map_or(field.as_str(), String::as_str);
            format!("{name} {tier}")
        }
    };
    Some((next, change))
}

/// The tier above `current` in `tiers` (cheapest first). Unset means the provider's default, taken
/// as the cheapest tier. A tier the list does not name (`"3.7"`) escalates to the first listed tier
/// above it when both read as numbers, and not at all otherwise: an escalation costs more, so it
/// never lands on a tier that is lower, or not known to be higher.
fn next_tier<'t>(tiers: &'t [String], current: Option<&str>) -> Option<&'t String> {
    let Some(current) = current else {
        return tiers.get(1);
    };
    if let Some(index) = tiers.iter().position(|tier| tier == current) {
        return tiers.get(index + 1);
    }
    let level = tier_level(current)?;
    tiers
        .iter()
        .find(|tier| tier_level(tier).is_some_and(|candidate| candidate > level))
}

/// A tier's place as a number (`"3.5"`), when it reads as one.
fn tier_level(tier: &str) -> Option<f64> {
    tier.trim()
        .parse::<f64>()
        .ok()
        .filter(|level| level.is_finite())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::outcome::{Billing, Classification, Fault, Origin, RateLimitReading, RefundAudit};
    use crate::provider::builtin_profiles;

    fn profile(name: &str) -> Profile {
        builtin_profiles().get(name).unwrap().clone()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn failed(status: u16, code: Option<&str>, retryable: Retryable, attempt: u32) -> Outcome {
        Outcome {
            origin: Origin::Probe,
            provider: "test".to_owned(),
            probe_id: 1,
            attempt_id: 1,
            attempt,
            retry_of: None,
            target_url: "https://example.com/".to_owned(),
            options: RequestOptions::default(),
            started_at: now(),
            latency: Duration::ZERO,
            transport: Transport::Ok,
            api_status: Some(status),
            api_success: false,
            error_code: code.map(str::to_owned),
            message: None,
            target_status: None,
            request_id: None,
            rate_limit: RateLimitReading::default(),
            concurrency: crate::outcome::ConcurrencyReading::default(),
            billing: Billing::default(),
            provider_work: crate::outcome::ProviderWork::default(),
            job: None,
            body_bytes: 0,
            body_excerpt: String::new(),
            headers: Vec::new(),
            class: Classification {
                fault: Fault::Provider,
                retryable,
                ..Classification::default()
            },
        }
    }

    fn options(mode: Option<&str>, country: Option<&str>, tier: Option<&str>) -> RequestOptions {
        RequestOptions {
            mode: mode.map(str::to_owned),
            proxy_country: country.map(str::to_owned),
            tier: tier.map(str::to_owned),
            ..RequestOptions::default()
        }
    }

    #[test]
    fn apply_step_mode() {
        let omni = profile("omniscrape");
        let step = EscalationStep::Mode("js_rendering".to_owned());
        let (next, change) = apply_step(&omni, &options(Some("auto"), None, None), &step).unwrap();
        assert_eq!(next.mode.as_deref(), Some("js_rendering"));
        assert_eq!(change, "mode js_rendering");
        assert_eq!(
            apply_step(&omni, &options(Some("js_rendering"), None, None), &step),
            None,
            "already there"
        );
        let mut no_mode = omni.clone();
        no_mode.request.mode = None;
        assert_eq!(
            apply_step(&no_mode, &RequestOptions::default(), &step),
            None
        );
    }

    #[test]
    fn apply_step_walks_the_proxy_country_list_and_wraps() {
        let omni = profile("omniscrape");
        let countries = omni.request.proxy_countries.clone();
        assert!(countries.len() >= 2);
        let step = EscalationStep::NextProxyCountry;
        let country = |current: Option<&str>| {
            apply_step(&omni, &options(None, current, None), &step)
                .map(|(next, _)| next.proxy_country.unwrap())
        };
        assert_eq!(country(None).as_deref(), Some(countries[0].as_str()));
        for pair in countries.windows(2) {
            assert_eq!(country(Some(&pair[0])).as_deref(), Some(pair[1].as_str()));
        }
        let last = countries.last().unwrap();
        assert_eq!(country(Some(last)).as_deref(), Some(countries[0].as_str()));
        let upper = countries[0].to_uppercase();
        assert_eq!(
            country(Some(&upper)).as_deref(),
            Some(countries[1].as_str())
        );
        assert_eq!(country(Some("zz")).as_deref(), Some(countries[0].as_str()));

        let mut single = omni.clone();
        single.request.proxy_countries = vec!["us".to_owned()];
        assert_eq!(
            apply_step(&single, &options(None, Some("us"), None), &step),
            None,
            "one country: nowhere to go"
        );
        single.request.proxy_countries.clear();
        assert_eq!(apply_step(&single, &RequestOptions::default(), &step), None);
        // AlterLab has no proxy-country field.
        assert_eq!(
            apply_step(&profile("alterlab"), &RequestOptions::default(), &step),
            None
        );
    }

    #[test]
    fn apply_step_climbs_the_tier_list_and_stops_at_the_top() {
        let alter = profile("alterlab");
        let step = EscalationStep::NextTier;
        let tier = |current: Option<&str>| {
            apply_step(&alter, &options(None, None, current), &step)
                .map(|(next, change)| (next.tier.unwrap(), change))
        };
        assert_eq!(tier(None), Some(("2".to_owned(), "max_tier 2".to_owned())));
        assert_eq!(tier(Some("1")).unwrap().0, "2");
        assert_eq!(tier(Some("3")).unwrap().0, "3.5");
        assert_eq!(tier(Some("3.5")).unwrap().0, "4");
        assert_eq!(tier(Some("4")), None);
        // A tier the profile does not list climbs to the next listed one above it, never down.
        assert_eq!(tier(Some("3.7")).unwrap().0, "4");
        assert_eq!(tier(Some("2.5")).unwrap().0, "3");
        assert_eq!(tier(Some("0")).unwrap().0, "1");
        assert_eq!(tier(Some("5")), None, "above the top: nowhere to go");
        assert_eq!(
            tier(Some("premium")),
            None,
            "not known to be lower or higher"
        );
        assert_eq!(tier(Some("NaN")), None);
        // OmniScrape has no tier.
        assert_eq!(
            apply_step(&profile("omniscrape"), &RequestOptions::default(), &step),
            None
        );
    }

    #[test]
    fn next_escalation_skips_steps_that_change_nothing() {
        let omni = profile("omniscrape");
        let steps = [
            EscalationStep::Mode("js_rendering".to_owned()),
            EscalationStep::NextTier,
            EscalationStep::NextProxyCountry,
        ];
        let current = options(Some("js_rendering"), Some("us"), None);
        let escalation = next_escalation(&omni, &current, &steps, 0).unwrap();
        assert_eq!(escalation.level, 3);
        assert_eq!(escalation.options.proxy_country.as_deref(), Some("gb"));
        assert_eq!(next_escalation(&omni, &current, &steps, 3), None);
    }

    #[test]
    fn backoff_doubles_caps_and_survives_odd_jitter() {
        let policy = RetryPolicy::default();
        let wait = |attempt, jitter_unit| {
            wait_before_retry(
                &policy,
                &failed(500, None, Retryable::Yes, attempt),
                now(),
                jitter_unit,
            )
        };
        assert_eq!(wait(0, 0.0), Duration::from_secs(1));
        assert_eq!(wait(1, 0.0), Duration::from_secs(1));
        assert_eq!(wait(4, 0.0), Duration::from_secs(8));
        assert_eq!(wait(10, 0.0), Duration::from_secs(60), "max_delay caps");
        assert_eq!(wait(u32::MAX, 0.0), Duration::from_secs(60));
        assert_eq!(wait(2, 1.0), Duration::from_millis(2500));
        assert_eq!(wait(2, f64::NAN), Duration::from_secs(2));
        assert_eq!(wait(2, -3.0), Duration::from_secs(2));

        for jitter in [f64::INFINITY, f64::NAN, -1.0, 1e300] {
            let odd = RetryPolicy {
                jitter,
                max_delay: Duration::MAX,
                ..RetryPolicy::default()
            };
            let outcome = failed(500, None, Retryable::Yes, 30);
            let wait = wait_before_retry(&odd, &outcome, now(), 0.9);
            assert!(wait >= Duration::from_secs(1 << 20), "{jitter}: {wait:?}");
        }
    }

    #[test]
    fn jitter_comes_on_top_of_a_retry_after() {
        // Retries that all come back at the moment the provider named would stampede it.
        let policy = RetryPolicy::default();
        let mut outcome = failed(429, None, Retryable::AfterDelay, 1);
        outcome.rate_limit.retry_after = Some(Duration::from_secs(30));
        let low = wait_before_retry(&policy, &outcome, now(), 0.0);
        assert_eq!(low, Duration::from_secs(30), "never before Retry-After");
        let high = wait_before_retry(&policy, &outcome, now(), 0.999);
        assert!(high > Duration::from_secs(30), "{high:?}");
        assert!(
            high <= Duration::from_millis(30_250),
            "a quarter of the back-off: {high:?}"
        );
    }

    #[test]
    fn provider_hold_reads_the_reset_only_when_the_window_is_spent() {
        let mut outcome = failed(500, None, Retryable::Yes, 1);
        outcome.rate_limit.reset_at = Some(now() + chrono::TimeDelta::seconds(30));
        outcome.rate_limit.remaining = Some(5);
        assert_eq!(provider_hold(&outcome, now()), None);
        outcome.rate_limit.remaining = Some(0);
        assert_eq!(
            provider_hold(&outcome, now()),
            Some(Duration::from_secs(30))
        );
        outcome.rate_limit.remaining = Some(5);
        outcome.api_status = Some(429);
        assert_eq!(
            provider_hold(&outcome, now()),
            Some(Duration::from_secs(30))
        );
        // A reset already past is zero; a Retry-After alone counts.
        outcome.rate_limit.reset_at = Some(now() - chrono::TimeDelta::seconds(30));
        assert_eq!(provider_hold(&outcome, now()), Some(Duration::ZERO));
        outcome.rate_limit.reset_at = None;
        outcome.rate_limit.retry_after = Some(Duration::from_secs(7));
        assert_eq!(provider_hold(&outcome, now()), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_default_retry_state_still_counts_the_failure_itself() {
        let alter = profile("alterlab");
        let outcome = failed(403, Some("BLOCKED_BY_ANTIBOT"), Retryable::Maybe, 1);
        let decision = decide(
            &alter,
            &RetryPolicy::default(),
            &outcome,
            RetryState::default(),
            now(),
            0.0,
        );
        match decision {
            Decision::GiveUp {
                offer: Some(offer), ..
            } => assert_eq!(
                offer.options.tier.as_deref(),
                Some("2"),
                "the code's own rule"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_target_failure_is_named_as_the_target_s_not_the_api_s_200() {
        // Issue 15: a target 503 read "gave up: 200: not retryable (maybe)".
        let mut outcome = failed(200, None, Retryable::Maybe, 1);
        outcome.api_success = true;
        outcome.target_status = Some(503);
        let decision = decide(
            &profile("alterlab"),
            &RetryPolicy::default(),
            &outcome,
            RetryState::default(),
            now(),
            0.0,
        );
        let Decision::GiveUp { reason, .. } = decision else {
            panic!("{decision:?}");
        };
        assert_eq!(
            reason,
            "target 503 (API 200): not sent again unchanged (the contract says a retry may or may not help)"
        );
    }

    #[test]
    fn refund_audit_cases() {
        let mut outcome = failed(502, None, Retryable::Yes, 1);
        outcome.class.refund_expected = true;
        assert_eq!(
            refund_audit(&outcome),
            RefundAudit::Consistent,
            "nothing billed"
        );
        outcome.billing.charged = Some(0.0035);
        assert_eq!(refund_audit(&outcome), RefundAudit::ChargedButShouldBeFree);
        outcome.billing.refunded = Some(0.0035);
        assert_eq!(refund_audit(&outcome), RefundAudit::Consistent);
        outcome.billing.refunded = Some(0.001);
        assert_eq!(
            refund_audit(&outcome),
            RefundAudit::ChargedButShouldBeFree,
            "partial"
        );

        outcome.class.refund_expected = false;
        outcome.billing.refunded = None;
        assert_eq!(
            refund_audit(&outcome),
            RefundAudit::Consistent,
            "billed, as the contract says"
        );
        outcome.billing.refunded = Some(1.0);
        assert_eq!(refund_audit(&outcome), RefundAudit::RefundedButShouldNotBe);

        // A success with a refund is odd too.
        outcome.api_success = true;
        outcome.class.refund_expected = true;
        assert_eq!(refund_audit(&outcome), RefundAudit::RefundedButShouldNotBe);
    }

    #[test]
    fn pause_reason_starts_with_the_code_or_the_status() {
        let mut outcome = failed(402, Some("INSUFFICIENT_CREDITS"), Retryable::No, 1);
        outcome.message = Some("no money".to_owned());
        assert_eq!(pause_reason(&outcome), "INSUFFICIENT_CREDITS: no money");
        outcome.error_code = None;
        assert_eq!(pause_reason(&outcome), "402: no money");
    }
}
