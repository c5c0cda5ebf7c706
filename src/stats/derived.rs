//! Figures derived from the aggregated state: burn rate, time to empty, quota projection, and how
//! close each gauge is to its limit. Computed here once, for the dashboard's panes and the report
//! alike; the panes only format them.

use std::time::Duration;

use super::{BillingState, ConcurrencyState, ProviderStats, RateLimitState};
use crate::outcome::Outcome;

/// The two layers of an attempt counted apart: the API call, then the target behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layers {
    pub attempts: u64,
    /// The API did its job, whatever the target answered ([`Outcome::api_served`]).
    pub api_served: u64,
    /// The API call succeeded and the target answered below 400.
    pub succeeded: u64,
}

// Exact as f64: counts far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Layers {
    pub(super) fn record(&mut self, outcome: &Outcome) {
        self.attempts += 1;
        self.api_served += u64::from(outcome.api_served());
        self.succeeded += u64::from(outcome.succeeded());
    }

    /// Share of attempts the API handled, 0–1; `None` before the first attempt.
    #[must_use]
    pub fn api_success_rate(&self) -> Option<f64> {
        ratio(self.api_served, self.attempts)
    }

    /// Share of the calls the API handled whose target answered below 400, 0–1: how the sites
    /// fare once the API did its part. `None` before the API handled one.
    #[must_use]
    pub fn target_success_rate(&self) -> Option<f64> {
        ratio(self.succeeded, self.api_served)
    }

    /// Share of attempts that succeeded end to end, 0–1.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.succeeded, self.attempts)
    }

    /// `net_spend` per successful scrape; `None` before the first success.
    #[must_use]
    pub fn cost_per_success(&self, net_spend: f64) -> Option<f64> {
        // Exact as f64: counts far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let successes = self.succeeded as f64;
        (self.succeeded > 0).then(|| net_spend / successes)
    }
}

/// Where the failure share went over the last minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// Fewer failures than the minute before.
    Better,
    Steady,
    /// More failures than the minute before.
    Worse,
}

impl Trend {
    /// A failure share that moved by less than this (5 points) is steady.
    const STEADY_BAND: f64 = 0.05;

    /// Compare the failure shares of two windows; `None` without attempts in both.
    #[must_use]
    pub fn between(previous: Option<f64>, last: Option<f64>) -> Option<Self> {
        let (previous, last) = (previous?, last?);
        Some(if last > previous + Self::STEADY_BAND {
            Self::Worse
        } else if last + Self::STEADY_BAND < previous {
            Self::Better
        } else {
            Self::Steady
        })
    }

    #[must_use]
    pub fn arrow(self) -> &'static str {
        match self {
            Self::Better => "↘",
            Self::Steady => "→",
            Self::Worse => "↗",
        }
    }
}

/// How close a gauge is to its limit; the theme gives each a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Normal,
    /// Getting close: worth a look.
    High,
    /// At or near the limit: requests will be refused.
    Critical,
}

/// Progress through a plan's request quota, projected at this session's pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaProjection {
    /// Requests counted against the quota.
    pub used: f64,
    pub quota: u64,
    /// `used / quota`, 0–1.
    pub used_ratio: f64,
    /// Hours until the quota is spent at this session's pace; `None` before there is a pace.
    pub hours_left: Option<f64>,
}

impl QuotaProjection {
    /// Above 90 % used is critical.
    #[must_use]
    pub fn pressure(&self) -> Pressure {
        if self.used_ratio > 0.9 {
            Pressure::Critical
        } else {
            Pressure::Normal
        }
    }
}

fn hours(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() / 3600.0
}

impl BillingState {
    /// Net spend per hour over `elapsed`; `None` before any time has passed.
    #[must_use]
    pub fn burn_per_hour(&self, elapsed: Duration) -> Option<f64> {
        let hours = hours(elapsed);
        (hours > 0.0).then(|| self.net() / hours)
    }

    /// Hours until the balance is spent at [`BillingState::burn_per_hour`]. Only projected when
    /// something is being spent and the burn and the balance count in the same unit.
    #[must_use]
    pub fn hours_to_empty(&self, elapsed: Duration) -> Option<f64> {
        let balance = self.balance?;
        let burn = self
            .burn_per_hour(elapsed)
            .filter(|burn| *burn > 0.0 && self.balance_unit == Some(self.unit))?;
        Some(balance / burn)
    }
}

impl ProviderStats {
    /// Attempts counted per layer.
    #[must_use]
    pub fn layers(&self) -> Layers {
        Layers {
            attempts: self.attempts,
            api_served: self.api_served,
            succeeded: self.succeeded,
        }
    }

    /// Net spend per successful scrape, in the provider's unit; `None` before a success.
    #[must_use]
    pub fn cost_per_success(&self) -> Option<f64> {
        self.layers().cost_per_success(self.billing.net())
    }

    /// [`Self::cost_per_success`] in US dollars, where the provider's unit converts.
    #[must_use]
    pub fn cost_per_success_usd(&self) -> Option<f64> {
        Some(self.cost_per_success()? * self.billing.unit.usd_per_unit()?)
    }

    /// Share of the amount charged that came back as refunds, 0–1; `None` before a charge.
    #[must_use]
    pub fn refund_ratio(&self) -> Option<f64> {
        let billing = &self.billing;
        (billing.charged > 0.0).then(|| (billing.refunded / billing.charged).clamp(0.0, 1.0))
    }

    /// Share of attempts answered 429, 0–1.
    #[must_use]
    pub fn throttled_share(&self) -> Option<f64> {
        ratio(self.rate_limit.throttled, self.attempts)
    }

    /// Where the failure share went: the last minute against the minute before it.
    #[must_use]
    pub fn failure_trend(&self, now_second: i64) -> Option<Trend> {
        let failure_share = |end: i64| {
            let window = self.history.summarize(end, 60);
            ratio(window.attempts - window.succeeded, window.attempts)
        };
        Trend::between(failure_share(now_second - 60), failure_share(now_second))
    }

    /// Progress through a plan quota of `quota` requests after `elapsed`: the usage endpoint's
    /// figure when the provider has one, else the requests this session the contract bills
    /// (refunded failures are not counted). The pace is what changed during this session: the
    /// usage figures' difference over the time between them, or the billed requests over
    /// `elapsed`. `None` for a zero quota.
    #[must_use]
    pub fn quota_projection(&self, quota: u64, elapsed: Duration) -> Option<QuotaProjection> {
        if quota == 0 {
            return None;
        }
        let billing = &self.billing;
        // Exact as f64: counts far below 2^52.
        let (billed, quota_f) = (billing.billed_requests as f64, quota as f64);
        let (used, per_hour) = match (billing.usage_used, billing.usage_first, billing.usage_at) {
            (Some(used), Some((first, first_at)), Some(at)) => {
                let between = hours((at - first_at).to_std().unwrap_or_default());
                (used, (between > 0.0).then(|| (used - first) / between))
            }
            (Some(used), ..) => (used, None),
            (None, ..) => {
                let hours = hours(elapsed);
                (billed, (hours > 0.0).then(|| billed / hours))
            }
        };
        let left = (quota_f - used).max(0.0);
        Some(QuotaProjection {
            used,
            quota,
            used_ratio: (used / quota_f).clamp(0.0, 1.0),
            hours_left: per_hour.filter(|rate| *rate > 0.0).map(|rate| left / rate),
        })
    }
}

impl RateLimitState {
    /// The share of the rate-limit window left, 0–1, when the provider sent both figures.
    #[must_use]
    pub fn remaining_ratio(&self) -> Option<f64> {
        let limit = self.limit.filter(|limit| *limit > 0)?;
        let remaining = self.remaining?;
        // Exact as f64: header counts far below 2^52.
        Some((remaining as f64 / limit as f64).clamp(0.0, 1.0))
    }

    /// Under 10 % of the window left is critical, under 30 % high.
    #[must_use]
    pub fn pressure(&self) -> Option<Pressure> {
        self.remaining_ratio().map(|ratio| {
            if ratio < 0.1 {
                Pressure::Critical
            } else if ratio < 0.3 {
                Pressure::High
            } else {
                Pressure::Normal
            }
        })
    }
}

impl ConcurrencyState {
    /// The limit in force: the provider's own figure when it sent one, else `configured`.
    #[must_use]
    pub fn limit_or(&self, configured: Option<u32>) -> Option<u32> {
        self.limit.or(configured)
    }

    /// Requests in flight as a share of `limit`, 0–1 (0 without a limit).
    #[must_use]
    pub fn fill_ratio(&self, limit: Option<u32>) -> f64 {
        limit.filter(|limit| *limit > 0).map_or(0.0, |limit| {
            (f64::from(self.in_flight) / f64::from(limit)).clamp(0.0, 1.0)
        })
    }

    /// Every place taken is critical: the next request waits or is refused.
    #[must_use]
    pub fn pressure(&self, limit: Option<u32>) -> Pressure {
        if self.fill_ratio(limit) >= 1.0 {
            Pressure::Critical
        } else {
            Pressure::Normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::BillingUnit;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn burn_and_time_to_empty_need_time_a_spend_and_one_unit() {
        let mut billing = BillingState {
            unit: BillingUnit::Credits,
            charged: 12.0,
            refunded: 2.0,
            balance: Some(40.0),
            balance_unit: Some(BillingUnit::Credits),
            ..BillingState::default()
        };
        assert_eq!(billing.burn_per_hour(Duration::ZERO), None);
        assert_eq!(billing.burn_per_hour(HOUR * 2), Some(5.0));
        assert_eq!(billing.hours_to_empty(HOUR * 2), Some(8.0));
        billing.balance_unit = Some(BillingUnit::Usd);
        assert_eq!(billing.hours_to_empty(HOUR * 2), None, "units differ");
        billing.balance_unit = Some(BillingUnit::Credits);
        billing.refunded = 12.0;
        assert_eq!(billing.hours_to_empty(HOUR), None, "nothing spent");
        billing.balance = None;
        assert_eq!(billing.hours_to_empty(HOUR), None);
    }

    #[test]
    fn the_quota_projection_prefers_the_providers_usage_figure() {
        let mut provider = ProviderStats::new("p", BillingUnit::Credits);
        // 60 attempts, 10 of them refunded failures: the quota counts the 50 billed.
        provider.attempts = 60;
        provider.billing.billed_requests = 50;
        assert_eq!(provider.quota_projection(0, HOUR), None);
        let projection = provider.quota_projection(100, HOUR).unwrap();
        assert_eq!(projection.used, 50.0);
        assert_eq!(projection.used_ratio, 0.5);
        assert_eq!(projection.hours_left, Some(1.0));
        assert_eq!(projection.pressure(), Pressure::Normal);
        provider.billing.usage_used = Some(95.0);
        let projection = provider.quota_projection(100, HOUR).unwrap();
        assert_eq!(projection.used, 95.0);
        assert_eq!(projection.pressure(), Pressure::Critical);
        assert_eq!(
            projection.hours_left, None,
            "one reading: no pace (not the account's past over this session's length)"
        );
        // Two readings an hour apart, 80 then 95: 15 an hour, 5 left.
        let start = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        provider.billing.usage_first = Some((80.0, start));
        provider.billing.usage_at = Some(start + chrono::TimeDelta::hours(1));
        let projection = provider.quota_projection(100, HOUR).unwrap();
        assert_eq!(projection.hours_left, Some(5.0 / 15.0));
        provider.billing.usage_used = Some(150.0);
        let over = provider.quota_projection(100, HOUR).unwrap();
        assert_eq!((over.used_ratio, over.hours_left), (1.0, Some(0.0)));
        provider.billing.usage_used = None;
        assert_eq!(
            provider
                .quota_projection(100, Duration::ZERO)
                .unwrap()
                .hours_left,
            None
        );
    }

    #[test]
    fn rate_limit_pressure_follows_the_share_left() {
        let state = |limit, remaining| RateLimitState {
            limit,
            remaining,
            ..RateLimitState::default()
        };
        assert_eq!(state(None, Some(3)).pressure(), None);
        assert_eq!(state(Some(0), Some(0)).pressure(), None);
        assert_eq!(state(Some(100), Some(50)).remaining_ratio(), Some(0.5));
        assert_eq!(
            state(Some(100), Some(50)).pressure(),
            Some(Pressure::Normal)
        );
        assert_eq!(state(Some(100), Some(29)).pressure(), Some(Pressure::High));
        assert_eq!(
            state(Some(100), Some(9)).pressure(),
            Some(Pressure::Critical)
        );
        assert_eq!(state(Some(10), Some(20)).remaining_ratio(), Some(1.0));
    }

    #[test]
    fn concurrency_is_critical_when_every_place_is_taken() {
        let state = ConcurrencyState {
            in_flight: 3,
            limit: None,
            ..ConcurrencyState::default()
        };
        assert_eq!(state.limit_or(Some(4)), Some(4));
        assert_eq!(state.fill_ratio(None), 0.0);
        assert_eq!(state.fill_ratio(Some(4)), 0.75);
        assert_eq!(state.pressure(Some(4)), Pressure::Normal);
        assert_eq!(state.pressure(Some(3)), Pressure::Critical);
        let reported = ConcurrencyState {
            limit: Some(3),
            ..state
        };
        assert_eq!(reported.limit_or(Some(10)), Some(3));
    }
}
