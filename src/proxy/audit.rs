//! The audit of the user's scraper against the provider's contract, and the guard: pure decisions
//! over the state of each (provider, account) and one exchange, no clock and no I/O.
//!
//! The seeds' rules for omniscope's own probes, applied to the client: never resend what the
//! contract says not to retry, never come back before `Retry-After` or the rate-limit reset, stop
//! after an account error, stay within the plan's concurrency. [`Audit::admit`] judges a request
//! before it is forwarded (and, with the guard on, may answer it locally instead);
//! [`Audit::finish`] learns from the outcome of each forwarded exchange.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use crate::outcome::{FindingCounts, FindingKind};
use crate::outcome::{Outcome, Retryable};
use crate::policy;

/// Accounts (keys) tracked per provider; the least recently seen idle one makes room.
const MAX_ACCOUNTS: usize = 256;
/// Refused requests remembered per account, to recognise a resend.
const MAX_REFUSED: usize = 64;
/// With the guard on, one request in this long is let through a provider paused by an account
/// error, to see whether the account recovered (a top-up, a new plan).
pub const GUARD_RECHECK: Duration = Duration::from_secs(300);

/// One request that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub provider: String,
    pub kind: FindingKind,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// What the request ran into ("402 INSUFFICIENT_CREDITS", "held 12 s more", "6 in flight, plan 5").
    pub detail: String,
}

/// Why the guard answered a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardAnswer {
    /// The status the provider itself answered (402, 401, 429…).
    pub status: u16,
    /// The provider's error code, when it sent one.
    pub code: Option<String>,
    /// One line for the client and the log.
    pub reason: String,
    /// For a hold: how long is left (sent as `Retry-After`, rounded up to whole seconds).
    pub retry_after: Option<Duration>,
}

/// The verdict on one request before it is forwarded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admission {
    pub findings: Vec<Finding>,
    /// `Some`: answer locally, do not forward (only with the guard on).
    pub guard: Option<GuardAnswer>,
}

/// What one finished exchange changed for its provider and account.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// An account error stopped the account: the reason (its code or status first).
    pub paused: Option<String>,
    /// A success after an account error: the account works again.
    pub resumed: bool,
    /// The provider asked to wait: until when, and why.
    pub hold: Option<(DateTime<Utc>, String)>,
}

#[derive(Debug, Clone)]
struct Hold {
    until: DateTime<Utc>,
    status: u16,
    code: Option<String>,
    reason: String,
}

#[derive(Debug, Clone)]
struct Stop {
    status: u16,
    code: Option<String>,
    reason: String,
    /// With the guard on: the next request let through to see whether the account recovered.
    recheck_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Refused {
    fingerprint: u64,
    label: String,
}

#[derive(Debug, Clone)]
struct Account {
    in_flight: u32,
    hold: Option<Hold>,
    stop: Option<Stop>,
    refused: VecDeque<Refused>,
    last_seen: DateTime<Utc>,
}

impl Account {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            in_flight: 0,
            hold: None,
            stop: None,
            refused: VecDeque::new(),
            last_seen: now,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ProviderAudit {
    concurrency_limit: Option<u32>,
    accounts: HashMap<u64, Account>,
    counts: FindingCounts,
}

impl ProviderAudit {
    fn account(&mut self, id: u64, now: DateTime<Utc>) -> &mut Account {
        if !self.accounts.contains_key(&id) && self.accounts.len() >= MAX_ACCOUNTS {
            let evicted = self
                .accounts
                .iter()
                .min_by_key(|(_, account)| (account.in_flight > 0, account.last_seen))
                .map(|(id, _)| *id);
            if let Some(evicted) = evicted {
                self.accounts.remove(&evicted);
            }
        }
        let account = self.accounts.entry(id).or_insert_with(|| Account::new(now));
        account.last_seen = now;
        account
    }
}

/// The audit's state for every provider the proxy serves.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    guard: bool,
    providers: HashMap<String, ProviderAudit>,
}

impl Audit {
    /// `providers`: each name with the plan's concurrency, when known.
    #[must_use]
    pub fn new(guard: bool, providers: impl IntoIterator<Item = (String, Option<u32>)>) -> Self {
        Self {
            guard,
            providers: providers
                .into_iter()
                .map(|(name, concurrency_limit)| {
                    (
                        name,
                        ProviderAudit {
                            concurrency_limit,
                            ..ProviderAudit::default()
                        },
                    )
                })
                .collect(),
        }
    }

    /// Judge a request before it is forwarded. Unless the guard answers it, the request counts as
    /// in flight until [`Audit::finish`].
    pub fn admit(
        &mut self,
        provider: &str,
        account: u64,
        fingerprint: u64,
        now: DateTime<Utc>,
    ) -> Admission {
        let guard_on = self.guard;
        let Some(audit) = self.providers.get_mut(provider) else {
            return Admission::default();
        };
        let limit = audit.concurrency_limit;
        let state = audit.account(account, now);
        let mut admission = Admission::default();
        let mut found = |kind: FindingKind, detail: String| {
            admission.findings.push(Finding {
                provider: provider.to_owned(),
                kind,
                at: now,
                detail,
            });
        };

        if let Some(refused) = state
            .refused
            .iter()
            .find(|refused| refused.fingerprint == fingerprint)
        {
            found(
                FindingKind::RetriedNonRetryable,
                format!("the same request again after {}", refused.label),
            );
        }
        if let Some(stop) = &state.stop {
            found(
                FindingKind::AfterAccountError,
                format!("sent after {}", stop.reason),
            );
        }
        if let Some(hold) = state.hold.as_ref().filter(|hold| now < hold.until) {
            let left = (hold.until - now).to_std().unwrap_or_default();
            found(
                FindingKind::EarlyReturn,
                format!(
                    "{:.1} s before the wait asked by {} was over",
                    left.as_secs_f64(),
                    hold.reason
                ),
            );
        } else {
            state.hold = None;
        }

        if guard_on {
            if let Some(stop) = state.stop.as_mut() {
                if now < stop.recheck_at {
                    admission.guard = Some(GuardAnswer {
                        status: stop.status,
                        code: stop.code.clone(),
                        reason: format!(
                            "not forwarded by omniscope --guard: the account is stopped by {} (one request is let through every {} s to see whether it recovered)",
                            stop.reason,
                            GUARD_RECHECK.as_secs()
                        ),
                        retry_after: None,
                    });
                } else {
                    stop.recheck_at = now + TimeDelta::from_std(GUARD_RECHECK).unwrap_or_default();
                }
            }
            if admission.guard.is_none()
                && let Some(hold) = &state.hold
            {
                let left = (hold.until - now).to_std().unwrap_or_default();
                admission.guard = Some(GuardAnswer {
                    status: hold.status,
                    code: hold.code.clone(),
                    reason: format!(
                        "not forwarded by omniscope --guard: the provider asked to wait ({}) for {:.1} s more",
                        hold.reason,
                        left.as_secs_f64()
                    ),
                    retry_after: Some(left),
                });
            }
        }

        if admission.guard.is_none() {
            state.in_flight += 1;
            if let Some(limit) = limit.filter(|limit| state.in_flight > *limit) {
                let in_flight = state.in_flight;
                found(
                    FindingKind::OverConcurrency,
                    format!("{in_flight} requests in flight, the plan allows {limit}"),
                );
            }
        }
        for finding in &admission.findings {
            audit.counts.count(finding.kind);
        }
        if admission.guard.is_some() {
            audit.counts.guarded += 1;
        }
        admission
    }

    /// Learn from the outcome of a forwarded exchange ([`Audit::admit`] let it through).
    pub fn finish(
        &mut self,
        provider: &str,
        account: u64,
        fingerprint: u64,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Changes {
        let Some(audit) = self.providers.get_mut(provider) else {
            return Changes::default();
        };
        let state = audit.account(account, now);
        state.in_flight = state.in_flight.saturating_sub(1);
        let mut changes = Changes::default();
        let status = outcome.api_status.unwrap_or(0);
        let label = match &outcome.error_code {
            Some(code) => format!("{status} {code}"),
            None => status.to_string(),
        };

        if outcome.api_success {
            if state.stop.take().is_some() {
                changes.resumed = true;
            }
            state
                .refused
                .retain(|refused| refused.fingerprint != fingerprint);
        } else if outcome.class.account_stop && state.stop.is_none() {
            let reason = policy::pause_reason(outcome);
            changes.paused = Some(reason.clone());
            state.stop = Some(Stop {
                status,
                code: outcome.error_code.clone(),
                reason,
                recheck_at: now + TimeDelta::from_std(GUARD_RECHECK).unwrap_or_default(),
            });
        }

        let refused = status >= 400
            && !outcome.api_success
            && matches!(outcome.class.retryable, Retryable::No | Retryable::Maybe);
        if refused && !state.refused.iter().any(|r| r.fingerprint == fingerprint) {
            if state.refused.len() >= MAX_REFUSED {
                state.refused.pop_front();
            }
            state.refused.push_back(Refused {
                fingerprint,
                label: label.clone(),
            });
        }

        if let Some(wait) = policy::provider_hold(outcome, now).filter(|wait| !wait.is_zero()) {
            let until = now + TimeDelta::from_std(wait).unwrap_or_default();
            if state.hold.as_ref().is_none_or(|hold| hold.until < until) {
                let asked = if outcome.rate_limit.retry_after.is_some() {
                    "Retry-After"
                } else {
                    "rate-limit reset"
                };
                let reason = format!("{label}: {asked}");
                state.hold = Some(Hold {
                    until,
                    status,
                    code: outcome.error_code.clone(),
                    reason: reason.clone(),
                });
                changes.hold = Some((until, reason));
            }
        }
        changes
    }

    /// Findings so far, per provider (sorted by name).
    #[must_use]
    pub fn counts(&self) -> Vec<(String, FindingCounts)> {
        let mut counts: Vec<(String, FindingCounts)> = self
            .providers
            .iter()
            .map(|(name, audit)| (name.clone(), audit.counts))
            .collect();
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        counts
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::fixture::{Attempt, outcome};
    use crate::outcome::{Classification, Fault};

    const ACCOUNT: u64 = 7;
    const REQUEST: u64 = 42;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        start() + TimeDelta::seconds(seconds)
    }

    fn audit(guard: bool) -> Audit {
        Audit::new(guard, [("alterlab".to_owned(), Some(2))])
    }

    fn refused(status: u16, code: &str, retryable: Retryable, account_stop: bool) -> Outcome {
        let mut refused = outcome(&Attempt::default());
        refused.provider = "alterlab".to_owned();
        refused.api_status = Some(status);
        refused.api_success = false;
        refused.error_code = Some(code.to_owned());
        refused.message = Some("no".to_owned());
        refused.class = Classification {
            fault: if account_stop {
                Fault::Account
            } else {
                Fault::Client
            },
            retryable,
            account_stop,
            ..Classification::default()
        };
        refused
    }

    fn succeeded() -> Outcome {
        let mut ok = outcome(&Attempt::default());
        ok.provider = "alterlab".to_owned();
        ok.api_status = Some(200);
        ok.api_success = true;
        ok.class = Classification::default();
        ok
    }

    fn kinds(admission: &Admission) -> Vec<FindingKind> {
        admission
            .findings
            .iter()
            .map(|finding| finding.kind)
            .collect()
    }

    #[test]
    fn a_client_that_resends_a_402_is_flagged_for_the_retry_and_the_account_error() {
        let mut audit = audit(false);
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, REQUEST, at(0))).is_empty());
        let changes = audit.finish(
            "alterlab",
            ACCOUNT,
            REQUEST,
            &refused(402, "INSUFFICIENT_CREDITS", Retryable::No, true),
            at(1),
        );
        assert!(
            changes
                .paused
                .as_deref()
                .unwrap()
                .starts_with("INSUFFICIENT_CREDITS")
        );
        let again = audit.admit("alterlab", ACCOUNT, REQUEST, at(2));
        assert_eq!(
            kinds(&again),
            [
                FindingKind::RetriedNonRetryable,
                FindingKind::AfterAccountError
            ]
        );
        assert!(
            again.findings[0]
                .detail
                .contains("402 INSUFFICIENT_CREDITS")
        );
        assert_eq!(again.guard, None, "without --guard everything is forwarded");
        // Another request of the same account is only sent after the account error.
        let other = audit.admit("alterlab", ACCOUNT, REQUEST + 1, at(3));
        assert_eq!(kinds(&other), [FindingKind::AfterAccountError]);
        // Another account of the same provider is not stopped.
        assert!(kinds(&audit.admit("alterlab", ACCOUNT + 1, REQUEST, at(3))).is_empty());
        let counts = audit.counts();
        assert_eq!(counts[0].1.retried_non_retryable, 1);
        assert_eq!(counts[0].1.after_account_error, 2);
    }

    #[test]
    fn a_400_resent_unchanged_is_flagged_and_a_changed_request_is_not() {
        let mut audit = audit(false);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        let changes = audit.finish(
            "alterlab",
            ACCOUNT,
            REQUEST,
            &refused(400, "EXCEEDS_COST_LIMIT", Retryable::No, false),
            at(0),
        );
        assert_eq!(changes, Changes::default());
        assert_eq!(
            kinds(&audit.admit("alterlab", ACCOUNT, REQUEST, at(1))),
            [FindingKind::RetriedNonRetryable]
        );
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, REQUEST + 1, at(1))).is_empty());
    }

    #[test]
    fn a_retryable_failure_may_be_resent() {
        let mut audit = audit(false);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        audit.finish(
            "alterlab",
            ACCOUNT,
            REQUEST,
            &refused(502, "BAD_GATEWAY", Retryable::Yes, false),
            at(0),
        );
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, REQUEST, at(1))).is_empty());
    }

    #[test]
    fn returning_before_retry_after_is_flagged_and_after_it_is_not() {
        let mut audit = audit(false);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        let mut throttled = refused(429, "RATE_LIMIT_EXCEEDED", Retryable::AfterDelay, false);
        throttled.rate_limit.retry_after = Some(Duration::from_secs(10));
        let changes = audit.finish("alterlab", ACCOUNT, REQUEST, &throttled, at(0));
        assert_eq!(changes.hold.as_ref().map(|hold| hold.0), Some(at(10)));
        let early = audit.admit("alterlab", ACCOUNT, REQUEST, at(4));
        assert_eq!(kinds(&early), [FindingKind::EarlyReturn]);
        assert!(
            early.findings[0].detail.contains("6.0 s"),
            "{}",
            early.findings[0].detail
        );
        audit.finish("alterlab", ACCOUNT, REQUEST, &succeeded(), at(4));
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, REQUEST, at(10))).is_empty());
    }

    #[test]
    fn a_spent_rate_limit_window_holds_until_its_reset() {
        let mut audit = audit(false);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        let mut spent = succeeded();
        spent.rate_limit.remaining = Some(0);
        spent.rate_limit.reset_at = Some(at(30));
        audit.finish("alterlab", ACCOUNT, REQUEST, &spent, at(0));
        assert_eq!(
            kinds(&audit.admit("alterlab", ACCOUNT, REQUEST + 1, at(29))),
            [FindingKind::EarlyReturn]
        );
    }

    #[test]
    fn more_in_flight_than_the_plan_allows_is_flagged() {
        let mut audit = audit(false);
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, 1, at(0))).is_empty());
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, 2, at(0))).is_empty());
        let third = audit.admit("alterlab", ACCOUNT, 3, at(0));
        assert_eq!(kinds(&third), [FindingKind::OverConcurrency]);
        assert_eq!(
            third.findings[0].detail,
            "3 requests in flight, the plan allows 2"
        );
        audit.finish("alterlab", ACCOUNT, 1, &succeeded(), at(1));
        audit.finish("alterlab", ACCOUNT, 2, &succeeded(), at(1));
        assert!(kinds(&audit.admit("alterlab", ACCOUNT, 4, at(1))).is_empty());
    }

    #[test]
    fn the_guard_answers_for_a_stopped_account_and_lets_a_recheck_through() {
        let mut audit = audit(true);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        audit.finish(
            "alterlab",
            ACCOUNT,
            REQUEST,
            &refused(401, "INVALID_API_KEY", Retryable::No, true),
            at(0),
        );
        let guarded = audit.admit("alterlab", ACCOUNT, REQUEST + 1, at(1));
        let answer = guarded.guard.expect("guarded");
        assert_eq!(answer.status, 401);
        assert_eq!(answer.code.as_deref(), Some("INVALID_API_KEY"));
        assert!(
            answer.reason.contains("INVALID_API_KEY"),
            "{}",
            answer.reason
        );
        // After the recheck interval one request goes through, then the guard answers again.
        let recheck = at(1) + TimeDelta::from_std(GUARD_RECHECK).unwrap();
        assert_eq!(
            audit.admit("alterlab", ACCOUNT, REQUEST + 2, recheck).guard,
            None
        );
        assert!(
            audit
                .admit(
                    "alterlab",
                    ACCOUNT,
                    REQUEST + 3,
                    recheck + TimeDelta::seconds(1)
                )
                .guard
                .is_some()
        );
        // The recheck succeeded: the account works again.
        let changes = audit.finish("alterlab", ACCOUNT, REQUEST + 2, &succeeded(), recheck);
        assert!(changes.resumed);
        assert_eq!(
            audit.admit("alterlab", ACCOUNT, REQUEST + 4, recheck).guard,
            None
        );
        assert_eq!(audit.counts()[0].1.guarded, 2);
    }

    #[test]
    fn the_guard_answers_a_hold_with_the_time_left() {
        let mut audit = audit(true);
        audit.admit("alterlab", ACCOUNT, REQUEST, at(0));
        let mut throttled = refused(429, "RATE_LIMIT_EXCEEDED", Retryable::AfterDelay, false);
        throttled.rate_limit.retry_after = Some(Duration::from_secs(10));
        audit.finish("alterlab", ACCOUNT, REQUEST, &throttled, at(0));
        let answer = audit
            .admit("alterlab", ACCOUNT, REQUEST, at(3))
            .guard
            .unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            audit.admit("alterlab", ACCOUNT, REQUEST, at(10)).guard,
            None
        );
    }

    #[test]
    fn accounts_are_bounded() {
        let mut audit = audit(false);
        for account in 0..(MAX_ACCOUNTS as u64 * 2) {
            audit.admit("alterlab", account, REQUEST, at(0));
            audit.finish("alterlab", account, REQUEST, &succeeded(), at(0));
        }
        assert!(audit.providers["alterlab"].accounts.len() <= MAX_ACCOUNTS);
        assert_eq!(
            audit.admit("nobody", ACCOUNT, REQUEST, at(0)),
            Admission::default()
        );
    }
}
