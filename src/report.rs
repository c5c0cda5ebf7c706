//! The end of a headless run: the readable summary, the JSON report (`omniscope.report.v1`) and
//! the threshold check. All of it reads [`SessionStats`]; nothing here counts on its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ThresholdSet;
use crate::outcome::{Cause, FindingCounts};
use crate::stats::{ByOrigin, LatencySummary, ProviderStats, SessionStats, TargetTable};

/// The report's schema name; bump only on an incompatible change (adding fields is compatible).
pub const SCHEMA: &str = "omniscope.report.v1";

/// `omniscope.report.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// RFC 3339.
    pub started_at: String,
    pub duration_s: f64,
    pub providers: Vec<ProviderReport>,
    /// Records the event log could not take (its reader stopped reading, a write failed): they
    /// were dropped rather than stop the run. 0 without a log.
    #[serde(default)]
    pub event_log_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderReport {
    pub name: String,
    /// Attempts sent, retries included.
    pub attempts: u64,
    pub retries: u64,
    /// The API call succeeded and the target answered below 400.
    pub succeeded: u64,
    pub failed: u64,
    /// Probes not sent (the provider was paused).
    pub skipped: u64,
    /// HTTP status of the API → attempts.
    pub api_status: BTreeMap<String, u64>,
    /// The target site's status → attempts.
    pub target_status: BTreeMap<String, u64>,
    pub error_codes: BTreeMap<String, u64>,
    pub latency_ms: LatencyReport,
    pub rate_limit: RateLimitReport,
    pub concurrency: ConcurrencyReport,
    pub billing: BillingReport,
    /// Why the provider is paused (starting with its code or status), or null.
    pub paused: Option<String>,
    /// Added in v1 without breaking it: succeeded / attempts, null before any attempt.
    pub success_rate: Option<f64>,
    /// The API layer alone: attempts it served (whatever the target answered) / (attempts +
    /// skipped); null before anything was sent or skipped. Added in v1.
    #[serde(default)]
    pub api_success_rate: Option<f64>,
    /// The target layer alone: of the attempts the API served, those the target answered below
    /// 400; null until the API served one. Added in v1.
    #[serde(default)]
    pub target_success_rate: Option<f64>,
    /// Attempts that got no HTTP status, by transport result (timeout, refused, …).
    pub transport_errors: BTreeMap<String, u64>,
    pub skip_reason: Option<String>,
    /// `omniscope proxy` only: the client's requests against the contract (findings per rule and
    /// requests `--guard` answered); absent from probe runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<FindingCounts>,
    /// The same attempts, skips and money split by origin: omniscope's own probes, and the user's
    /// traffic through `omniscope proxy`. Absent in reports written before it existed.
    #[serde(default)]
    pub origin: ByOrigin,
    /// Failed attempts by what they failed on (`provider`, `target`, `rate_limit`,
    /// `concurrency`, `account`, `network`, `unreadable`, `request`), every cause present.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
    /// Latency of the successes alone, and of the failures alone.
    #[serde(default)]
    pub success_latency_ms: LatencyReport,
    #[serde(default)]
    pub failure_latency_ms: LatencyReport,
    /// Net spend / successes, in `billing.unit`; null before a success.
    #[serde(default)]
    pub cost_per_success: Option<f64>,
    /// The same in US dollars, where the unit converts (credits do not): null otherwise.
    #[serde(default)]
    pub cost_per_success_usd: Option<f64>,
    /// Per target host (at most 64, then `other`), in the order first probed.
    #[serde(default)]
    pub targets: Vec<TargetReport>,
    /// Per target URL (host and path; at most 64, then `other`).
    #[serde(default)]
    pub target_urls: Vec<TargetReport>,
}

/// One target's attempts through one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// A host (`targets`) or a URL without its scheme (`target_urls`).
    pub target: String,
    pub attempts: u64,
    /// Attempts the API served (whatever the target answered).
    pub api_served: u64,
    pub succeeded: u64,
    /// The target's status → attempts (the eight most frequent kinds; the rest under `other`).
    pub target_status: BTreeMap<String, u64>,
    /// Failures by cause, non-zero ones only.
    pub faults: BTreeMap<String, u64>,
    /// Success latency, null before a success.
    pub success_p50_ms: Option<f64>,
    pub success_p90_ms: Option<f64>,
    /// Net spend / successes, in the provider's unit.
    pub cost_per_success: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitReport {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// RFC 3339.
    pub reset_at: Option<String>,
    /// 429s received.
    pub throttled: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyReport {
    pub max_in_flight: u32,
    pub limit: Option<u32>,
    pub limit_hits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingReport {
    pub charged: f64,
    pub refunded: f64,
    pub unit: String,
    /// The last balance the usage endpoint gave, where there is one.
    pub balance: Option<f64>,
    pub refund_mismatches: u64,
    pub balance_unit: Option<String>,
    /// Attempts whose charge or refund could not be read as an amount (absurd, not finite): the
    /// spend is unknown by that much, and a `max_spend` threshold counts as broken.
    #[serde(default)]
    pub unreadable: u64,
    /// The plan the usage endpoint names (AlterLab's `subscription_tier`), where there is one.
    #[serde(default)]
    pub plan: Option<String>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The report of a session as it stands at `now`.
#[must_use]
pub fn build(stats: &SessionStats, now: DateTime<Utc>) -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        started_at: rfc3339(stats.started_at),
        duration_s: stats.elapsed(now).as_secs_f64(),
        providers: stats.providers.iter().map(provider_report).collect(),
        event_log_dropped: 0,
    }
}

/// A sum of per-request amounts as the report writes it: binary floating point leaves tails like
/// 0.05250000000000002, so sums are rounded to nine decimals (far below any unit's smallest
/// charge: a millionth of a cent or a dollar).
fn money(sum: f64) -> f64 {
    let rounded = (sum * 1e9).round() / 1e9;
    if rounded.is_finite() { rounded } else { sum }
}

fn provider_report(provider: &ProviderStats) -> ProviderReport {
    let counts = |iter: &mut dyn Iterator<Item = (u16, u64)>| {
        iter.map(|(status, count)| (status.to_string(), count))
            .collect::<BTreeMap<_, _>>()
    };
    let latency = provider.latency_summary();
    ProviderReport {
        name: provider.name.clone(),
        attempts: provider.attempts,
        retries: provider.retries,
        succeeded: provider.succeeded,
        failed: provider.failed,
        skipped: provider.skipped,
        api_status: counts(&mut provider.api_status.iter()),
        target_status: counts(&mut provider.target_status.iter()),
        error_codes: provider
            .error_codes
            .iter()
            .map(|(code, stats)| (code.clone(), stats.count))
            .collect(),
        latency_ms: LatencyReport::from(latency),
        rate_limit: RateLimitReport {
            limit: provider.rate_limit.limit,
            remaining: provider.rate_limit.remaining,
            reset_at: provider.rate_limit.reset_at.map(rfc3339),
            throttled: provider.rate_limit.throttled,
        },
        concurrency: ConcurrencyReport {
            max_in_flight: provider.concurrency.max_in_flight,
            limit: provider.concurrency.limit,
            limit_hits: provider.concurrency.limit_hits,
        },
        billing: BillingReport {
            charged: money(provider.billing.charged),
            refunded: money(provider.billing.refunded),
            unit: provider.billing.unit.label().to_owned(),
            balance: provider.billing.balance,
            refund_mismatches: provider.billing.refund_mismatches,
            unreadable: provider.billing.unreadable,
            balance_unit: provider
                .billing
                .balance_unit
                .map(|unit| unit.label().to_owned()),
            plan: provider.billing.plan.clone(),
        },
        paused: provider.paused.clone(),
        success_rate: provider.success_rate(),
        api_success_rate: provider.api_success_rate(),
        target_success_rate: provider.target_success_rate(),
        transport_errors: provider
            .transport_errors
            .iter()
            .map(|(label, count)| ((*label).to_owned(), *count))
            .collect(),
        skip_reason: provider.last_skip_reason.clone(),
        audit: provider.audit,
        origin: provider.by_origin,
        faults: Cause::all()
            .map(|cause| (cause.label().to_owned(), provider.causes.get(cause)))
            .collect(),
        success_latency_ms: LatencyReport::from(provider.success_latency_summary()),
        failure_latency_ms: LatencyReport::from(provider.failure_latency_summary()),
        cost_per_success: provider.cost_per_success(),
        cost_per_success_usd: provider.cost_per_success_usd(),
        targets: target_reports(&provider.by_host),
        target_urls: target_reports(&provider.by_target),
    }
}

impl From<LatencySummary> for LatencyReport {
    fn from(summary: LatencySummary) -> Self {
        Self {
            p50: summary.p50,
            p90: summary.p90,
            p99: summary.p99,
            max: summary.max,
        }
    }
}

fn target_reports(table: &TargetTable) -> Vec<TargetReport> {
    table
        .iter()
        .map(|(name, target)| {
            let latency = target.success_p50_p90();
            let mut statuses: BTreeMap<String, u64> = target
                .statuses()
                .into_iter()
                .map(|(status, count)| (status.to_string(), count))
                .collect();
            if target.other_statuses > 0 {
                statuses.insert("other".to_owned(), target.other_statuses);
            }
            TargetReport {
                target: name.to_owned(),
                attempts: target.layers.attempts,
                api_served: target.layers.api_served,
                succeeded: target.layers.succeeded,
                target_status: statuses,
                faults: target
                    .causes
                    .iter()
                    .map(|(cause, count)| (cause.label().to_owned(), count))
                    .collect(),
                success_p50_ms: latency.map(|(p50, _)| p50),
                success_p90_ms: latency.map(|(_, p90)| p90),
                cost_per_success: target.cost_per_success(),
            }
        })
        .collect()
}

/// What a completed run found that the user must act on, besides thresholds: one line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stops {
    /// Providers paused by an account or quota error (a revoked key, credits or quota used up).
    pub account: Vec<String>,
    /// Providers that never answered: every attempt a transport failure.
    pub unreachable: Vec<String>,
}

impl Stops {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.account.is_empty() && self.unreachable.is_empty()
    }
}

/// The providers a run left stopped by their account, and those it could never reach.
#[must_use]
pub fn stops(report: &Report) -> Stops {
    let mut stops = Stops::default();
    for provider in &report.providers {
        // A headless run pauses a provider only on an account error (no user is there to pause it).
        if let Some(reason) = &provider.paused {
            stops.account.push(format!(
                "{}: stopped by an account error: {reason}",
                provider.name
            ));
        }
        let transport_failures: u64 = provider.transport_errors.values().sum();
        if provider.attempts > 0 && transport_failures == provider.attempts {
            let causes = provider
                .transport_errors
                .iter()
                .map(|(cause, count)| format!("{cause} {count}"))
                .collect::<Vec<_>>()
                .join(", ");
            stops.unreachable.push(format!(
                "{}: never reached: all {} attempts failed in transport ({causes})",
                provider.name, provider.attempts
            ));
        }
    }
    stops
}

/// Every threshold a provider broke, one line each; empty when all hold. Each provider is held to
/// its own thresholds ([`ThresholdSet::for_provider`]).
#[must_use]
pub fn broken_thresholds(report: &Report, thresholds: &ThresholdSet) -> Vec<String> {
    let mut broken = Vec::new();
    for provider in &report.providers {
        let limits = thresholds.for_provider(&provider.name);
        let skipped = if provider.skipped > 0 {
            format!(
                " ({} probes skipped while paused count as failures)",
                provider.skipped
            )
        } else {
            String::new()
        };
        for (what, minimum, rate, note) in [
            (
                "success rate",
                limits.min_success_rate,
                availability(provider),
                skipped.as_str(),
            ),
            (
                "API success rate",
                limits.min_api_success_rate,
                provider.api_success_rate,
                skipped.as_str(),
            ),
            (
                "target success rate",
                limits.min_target_success_rate,
                provider.target_success_rate,
                "",
            ),
        ] {
            if let (Some(minimum), Some(rate)) = (minimum, rate)
                && rate < minimum
            {
                broken.push(format!(
                    "{}: {what} {:.1}% is below the minimum {:.1}%{note}",
                    provider.name,
                    rate * 100.0,
                    minimum * 100.0
                ));
            }
        }
        if let Some(maximum) = limits.max_p99_ms
            && provider.attempts > 0
            && provider.latency_ms.p99 > maximum
        {
            broken.push(format!(
                "{}: p99 latency {:.0} ms is above the maximum {maximum:.0} ms",
                provider.name, provider.latency_ms.p99
            ));
        }
        if let Some(maximum) = limits.max_spend {
            let spend = provider.billing.charged - provider.billing.refunded;
            if spend > maximum {
                broken.push(format!(
                    "{}: spend {} {} is above the maximum {maximum}",
                    provider.name,
                    exact_amount(spend),
                    provider.billing.unit
                ));
            } else if provider.billing.unreadable > 0 {
                // Unknown spend is not spend within the limit.
                broken.push(format!(
                    "{}: spend unknown: {} attempts carried unreadable billing (the maximum is {maximum} {})",
                    provider.name, provider.billing.unreadable, provider.billing.unit
                ));
            }
        }
    }
    broken
}

/// Share of probes that succeeded, for `min_success_rate`: a probe skipped while the provider
/// was paused (quota used up, key revoked) is a probe that did not succeed, so it counts against
/// availability. `None` before anything was sent or skipped.
#[must_use]
pub fn availability(provider: &ProviderReport) -> Option<f64> {
    let total = provider.attempts + provider.skipped;
    // Exact as f64: counts far below 2^52.
    (total > 0).then(|| provider.succeeded as f64 / total as f64)
}

/// The readable end-of-session summary, one block per provider, headed by the command that
/// produced it (`run`, `watch`, `replay`, …).
#[must_use]
pub fn summary(report: &Report, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "omniscope {command}: started {}, {:.1} s",
        report.started_at, report.duration_s
    );
    for provider in &report.providers {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", provider.name);
        let percent = |rate: Option<f64>| {
            rate.map_or_else(|| "n/a".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
        };
        let _ = writeln!(
            out,
            "  attempts    {} ({} retries), succeeded {}, failed {}, skipped {}, success rate {} (API {}, target {})",
            provider.attempts,
            provider.retries,
            provider.succeeded,
            provider.failed,
            provider.skipped,
            percent(provider.success_rate),
            percent(provider.api_success_rate),
            percent(provider.target_success_rate)
        );
        let _ = writeln!(out, "  API status  {}", join_counts(&provider.api_status));
        let _ = writeln!(
            out,
            "  target      {}",
            join_counts(&provider.target_status)
        );
        if !provider.transport_errors.is_empty() {
            let _ = writeln!(
                out,
                "  transport   {}",
                join_counts(&provider.transport_errors)
            );
        }
        let _ = writeln!(out, "  errors      {}", join_counts(&provider.error_codes));
        write_health(&mut out, provider);
        let latency = &provider.latency_ms;
        let _ = writeln!(
            out,
            "  latency     p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            latency.p50, latency.p90, latency.p99, latency.max
        );
        let (ok, failed) = (&provider.success_latency_ms, &provider.failure_latency_ms);
        let _ = writeln!(
            out,
            "  successes   p50 {:.0} ms, p90 {:.0} ms; failures p50 {:.0} ms, p90 {:.0} ms",
            ok.p50, ok.p90, failed.p50, failed.p90
        );
        let limits = &provider.rate_limit;
        let _ = writeln!(
            out,
            "  rate limit  limit {}, remaining {}, reset {}, 429s {}",
            show(limits.limit),
            show(limits.remaining),
            limits.reset_at.as_deref().unwrap_or("-"),
            limits.throttled
        );
        let concurrency = &provider.concurrency;
        let _ = writeln!(
            out,
            "  concurrency max in flight {}, limit {}, limit hits {}",
            concurrency.max_in_flight,
            show(concurrency.limit),
            concurrency.limit_hits
        );
        let billing = &provider.billing;
        let balance = billing.balance.map_or_else(
            || "-".to_owned(),
            |balance| {
                format!(
                    "{} {}",
                    exact_amount(balance),
                    billing.balance_unit.as_deref().unwrap_or(&billing.unit)
                )
            },
        );
        let plan = billing
            .plan
            .as_deref()
            .map_or_else(String::new, |plan| format!(", plan {plan}"));
        let _ = writeln!(
            out,
            "  billing     charged {} {unit}, refunded {} {unit}, balance {balance}{plan}, refund mismatches {}",
            exact_amount(billing.charged),
            exact_amount(billing.refunded),
            billing.refund_mismatches,
            unit = billing.unit
        );
        let _ = writeln!(
            out,
            "  paused      {}",
            provider.paused.as_deref().unwrap_or("no")
        );
        let proxied = &provider.origin.proxy;
        if proxied.attempts > 0 || proxied.skipped > 0 {
            let probes = &provider.origin.probe;
            let _ = writeln!(
                out,
                "  origin      probes {} ({} succeeded, charged {} {unit}), proxied {} ({} succeeded, charged {} {unit}, {} answered by the guard)",
                probes.attempts,
                probes.succeeded,
                exact_amount(probes.charged),
                proxied.attempts,
                proxied.succeeded,
                exact_amount(proxied.charged),
                proxied.skipped,
                unit = billing.unit
            );
        }
        if let Some(audit) = &provider.audit {
            let _ = writeln!(
                out,
                "  audit       retried non-retryable {}, returned early {}, sent after an account error {}, over concurrency {}, guarded {}",
                audit.retried_non_retryable,
                audit.early_return,
                audit.after_account_error,
                audit.over_concurrency,
                audit.guarded
            );
        }
    }
    if report.event_log_dropped > 0 {
        let _ = writeln!(
            out,
            "\nevent log: {} record(s) dropped (the log could not keep up, or its reader stopped reading)",
            report.event_log_dropped
        );
    }
    out
}

/// The summary's fault breakdown, layer rates, cost per success and per-target lines.
fn write_health(out: &mut String, provider: &ProviderReport) {
    let faults: BTreeMap<&str, u64> = provider
        .faults
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(cause, count)| (cause.as_str(), *count))
        .collect();
    let _ = writeln!(out, "  faults      {}", join_counts(&faults));
    let percent = |rate: Option<f64>| {
        rate.map_or_else(|| "n/a".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
    };
    let cost = provider.cost_per_success.map_or_else(
        || "-".to_owned(),
        |cost| {
            let usd = provider
                .cost_per_success_usd
                .filter(|_| provider.billing.unit != "usd")
                .map_or_else(String::new, |usd| format!(" (${})", exact_amount(usd)));
            format!("{} {}{usd}", exact_amount(cost), provider.billing.unit)
        },
    );
    let _ = writeln!(out, "  cost        per success {cost}");
    for target in &provider.targets {
        let success = (target.attempts > 0).then(|| {
            // Exact as f64: counts far below 2^52.
            #[allow(clippy::cast_precision_loss)]
            let rate = target.succeeded as f64 / target.attempts as f64;
            rate
        });
        let latency = target
            .success_p50_ms
            .zip(target.success_p90_ms)
            .map_or_else(String::new, |(p50, p90)| {
                format!(", success p50 {p50:.0} ms p90 {p90:.0} ms")
            });
        let faults = if target.faults.is_empty() {
            "no failures".to_owned()
        } else {
            format!("failures {}", join_counts(&target.faults))
        };
        let _ = writeln!(
            out,
            "  target      {}: {} attempts, {} succeeded{latency}; {faults}",
            target.target,
            target.attempts,
            percent(success),
        );
    }
}

/// A money or credit sum for the text summary (unlike the dashboard's `ui::amount`, which rounds to
/// fit a pane): summing per-request charges in binary floating point leaves
/// tails like 0.11900000000000008, so the text shows at most six decimals (the JSON keeps the sum).
fn exact_amount(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn join_counts<K: std::fmt::Display>(counts: &BTreeMap<K, u64>) -> String {
    if counts.is_empty() {
        return "-".to_owned();
    }
    counts
        .iter()
        .map(|(key, count)| format!("{key}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

#[cfg(test)]
mod tests {

    #[test]
    fn report_sums_drop_float_tails() {
        assert_eq!(money(0.052_500_000_000_000_02), 0.0525);
        assert_eq!(money(0.1 + 0.2), 0.3);
        assert_eq!(money(123_456_789.000_000_001), 123_456_789.0);
        assert_eq!(money(1e-12), 0.0);
    }

    #[test]
    fn summary_amounts_drop_float_tails_but_keep_real_digits() {
        assert_eq!(exact_amount(0.119_000_000_000_000_08), "0.119");
        assert_eq!(exact_amount(0.0035), "0.0035");
        assert_eq!(exact_amount(10.0), "10");
        assert_eq!(exact_amount(0.0), "0");
        assert_eq!(exact_amount(-0.000_000_1), "0");
        assert_eq!(exact_amount(99_998.5), "99998.5");
    }
    use chrono::TimeZone;

    use super::*;
    use crate::outcome::BillingUnit;

    fn report_of(name: &str, unit: BillingUnit, adjust: impl Fn(&mut ProviderReport)) -> Report {
        let start = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut stats = SessionStats::new(start);
        stats.register(name, unit);
        let mut report = build(&stats, start);
        adjust(&mut report.providers[0]);
        report
    }

    #[test]
    fn api_and_target_success_rates_have_their_own_thresholds() {
        // The API served all 10 calls; the target answered 4 of them with a 404.
        let report = report_of("omniscrape", BillingUnit::Usd, |provider| {
            provider.attempts = 10;
            provider.succeeded = 6;
            provider.api_success_rate = Some(1.0);
            provider.target_success_rate = Some(0.6);
        });
        let api_only = ThresholdSet::uniform(crate::config::Thresholds {
            min_api_success_rate: Some(0.99),
            ..Default::default()
        });
        assert!(broken_thresholds(&report, &api_only).is_empty());
        let target = ThresholdSet::uniform(crate::config::Thresholds {
            min_target_success_rate: Some(0.9),
            ..Default::default()
        });
        assert_eq!(
            broken_thresholds(&report, &target),
            ["omniscrape: target success rate 60.0% is below the minimum 90.0%"]
        );
    }

    #[test]
    fn each_provider_is_held_to_its_own_spend_limit_in_its_unit() {
        let report = report_of("alterlab", BillingUnit::Microcents, |provider| {
            provider.billing.charged = 50_000.000_000_000_01;
        });
        let mut set = ThresholdSet::uniform(crate::config::Thresholds {
            max_spend: Some(5.0),
            ..Default::default()
        });
        assert_eq!(
            broken_thresholds(&report, &set),
            ["alterlab: spend 50000 microcents is above the maximum 5"]
        );
        set.by_provider.insert(
            "alterlab".to_owned(),
            crate::config::Thresholds {
                max_spend: Some(100_000.0),
                ..Default::default()
            },
        );
        assert!(broken_thresholds(&report, &set).is_empty());
    }

    #[test]
    fn the_report_breaks_failures_down_by_fault_target_and_layer() {
        let app = crate::app::fixture::app();
        let report = build(&app.stats, crate::app::fixture::now());
        let omni = &report.providers[0];
        assert_eq!(omni.name, "omniscrape");
        // Every failure is under one fault, none under no heading.
        assert_eq!(omni.faults.values().sum::<u64>(), omni.failed);
        assert_eq!(omni.faults.len(), Cause::COUNT);
        assert_eq!(omni.faults["network"], 1);
        assert_eq!(omni.faults["concurrency"], 1);
        assert!(
            omni.success_latency_ms.p50 > 500.0,
            "{:?}",
            omni.success_latency_ms
        );
        // The 30 s timeout is among the failures only.
        assert!(omni.success_latency_ms.max < 2_000.0);
        assert!(omni.failure_latency_ms.max > 29_000.0);
        assert!(omni.cost_per_success.unwrap() > 0.0035);
        assert_eq!(omni.cost_per_success, omni.cost_per_success_usd);
        let slow = omni
            .targets
            .iter()
            .find(|t| t.target == "slow.example.com")
            .unwrap();
        assert_eq!((slow.attempts, slow.succeeded), (1, 0));
        assert_eq!(slow.faults["network"], 1);
        assert!(
            omni.target_urls
                .iter()
                .any(|t| t.target == "example.com/missing")
        );
        let alter = &report.providers[1];
        assert_eq!(alter.faults.values().sum::<u64>(), alter.failed);
        // AlterLab bills in microcents: a hundred-millionth of a dollar each.
        let alter_cost = alter.cost_per_success.unwrap();
        assert!((alter.cost_per_success_usd.unwrap() - alter_cost * 1e-8).abs() < 1e-15);
        let text = summary(&report, "run");
        assert!(text.contains("  faults      concurrency: 1,"), "{text}");
        assert!(
            text.contains(
                "target      slow.example.com: 1 attempts, 0.0% succeeded; failures network: 1"
            ),
            "{text}"
        );
        // The new fields read back as they were written.
        let json = serde_json::to_value(&report).unwrap();
        let back: Report = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(back.providers[0].targets, omni.targets);
    }

    #[test]
    fn an_empty_session_reports_every_field() {
        let start = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut stats = SessionStats::new(start);
        stats.register("omniscrape", BillingUnit::Usd);
        let report = build(&stats, start + chrono::TimeDelta::seconds(3));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["schema"], SCHEMA);
        assert_eq!(json["duration_s"], 3.0);
        let provider = &json["providers"][0];
        for field in [
            "name",
            "attempts",
            "retries",
            "succeeded",
            "failed",
            "skipped",
            "api_status",
            "target_status",
            "error_codes",
            "latency_ms",
            "rate_limit",
            "concurrency",
            "billing",
            "paused",
            "faults",
            "api_success_rate",
            "target_success_rate",
            "success_latency_ms",
            "failure_latency_ms",
            "cost_per_success",
            "cost_per_success_usd",
            "targets",
            "target_urls",
        ] {
            assert!(provider.get(field).is_some(), "missing {field}");
        }
        assert!(provider["paused"].is_null());
        assert_eq!(provider["billing"]["unit"], "usd");
        let text = summary(&report, "replay");
        assert!(text.starts_with("omniscope replay: started"), "{text}");
        assert!(text.contains("omniscrape"));
        assert!(
            broken_thresholds(
                &report,
                &ThresholdSet::uniform(crate::config::Thresholds {
                    min_success_rate: Some(0.9),
                    min_api_success_rate: Some(0.9),
                    min_target_success_rate: Some(0.9),
                    max_p99_ms: Some(1.0),
                    max_spend: Some(0.0),
                })
            )
            .is_empty(),
            "no attempts break nothing"
        );
    }
}
