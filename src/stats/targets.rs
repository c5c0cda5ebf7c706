//! Per-target statistics of one provider: by host and by target URL (a probe's target), each a
//! bounded table: the first [`MAX_TARGETS`] names get a row of their own, later ones share
//! [`OTHER_TARGET`]'s. A session probes the targets its config names, so the cap only bites on
//! a proxy session or a config with very many targets.

use hdrhistogram::Histogram;

use super::{CauseCounts, Layers};
use crate::outcome::{Outcome, sane_amount};

/// Targets (hosts, URLs) kept by name per provider and table.
pub const MAX_TARGETS: usize = 64;
/// The row the targets beyond [`MAX_TARGETS`] are counted in.
pub const OTHER_TARGET: &str = "other";
/// Distinct target statuses kept per row; more are counted in `other_statuses`.
const STATUSES_PER_TARGET: usize = 8;
/// Success latencies per target in milliseconds, up to ten minutes, two significant figures:
/// a few kilobytes per row, so 8 providers × 2 tables × 65 rows stay a few megabytes.
const TARGET_LATENCY_MAX_MS: u64 = 600_000;

/// One target's attempts through one provider.
#[derive(Debug, Clone)]
pub struct TargetStats {
    pub layers: Layers,
    pub causes: CauseCounts,
    /// The target's statuses (layer two), most seen first once read through [`Self::statuses`].
    statuses: Vec<(u16, u64)>,
    /// Target statuses beyond the kept ones.
    pub other_statuses: u64,
    /// Net spend on this target (charges less refunds), in the provider's unit.
    pub net_spend: f64,
    success_latency_ms: Histogram<u32>,
}

impl Default for TargetStats {
    fn default() -> Self {
        Self {
            layers: Layers::default(),
            causes: CauseCounts::default(),
            statuses: Vec::new(),
            other_statuses: 0,
            net_spend: 0.0,
            success_latency_ms: Histogram::new_with_bounds(1, TARGET_LATENCY_MAX_MS, 2)
                .unwrap_or_else(|_| unreachable!("constant bounds hdrhistogram accepts")),
        }
    }
}

impl TargetStats {
    fn record(&mut self, outcome: &Outcome) {
        self.layers.record(outcome);
        if let Some(cause) = outcome.cause() {
            self.causes.add(cause, 1);
        } else {
            let ms = u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX);
            self.success_latency_ms
                .saturating_record(ms.clamp(1, TARGET_LATENCY_MAX_MS));
        }
        if let Some(status) = outcome.target_status {
            let kept = self.statuses.len();
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some(entry) => entry.1 += 1,
                None if kept < STATUSES_PER_TARGET => self.statuses.push((status, 1)),
                None => self.other_statuses += 1,
            }
        }
        let net = outcome
            .billing
            .charged
            .filter(|c| sane_amount(*c))
            .unwrap_or(0.0)
            - outcome
                .billing
                .refunded
                .filter(|r| sane_amount(*r))
                .unwrap_or(0.0);
        self.net_spend += net;
    }

    /// The target's statuses, most seen first (then by status).
    #[must_use]
    pub fn statuses(&self) -> Vec<(u16, u64)> {
        let mut statuses = self.statuses.clone();
        statuses.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        statuses
    }

    /// p50 and p90 of the successes, in milliseconds; `None` before the first success.
    #[must_use]
    pub fn success_p50_p90(&self) -> Option<(f64, f64)> {
        let histogram = &self.success_latency_ms;
        // Exact as f64: milliseconds far below 2^52.
        (!histogram.is_empty()).then(|| {
            (
                histogram.value_at_quantile(0.5) as f64,
                histogram.value_at_quantile(0.9) as f64,
            )
        })
    }

    /// Net spend per successful scrape, in the provider's unit; `None` before a success.
    #[must_use]
    pub fn cost_per_success(&self) -> Option<f64> {
        self.layers.cost_per_success(self.net_spend)
    }
}

/// Rows by name, bounded (see the module's documentation).
#[derive(Debug, Clone, Default)]
pub struct TargetTable {
    rows: Vec<(String, TargetStats)>,
}

impl TargetTable {
    /// Count `outcome` under `name`, or under [`OTHER_TARGET`] once the table is full.
    pub fn record(&mut self, name: &str, outcome: &Outcome) {
        let index = match self.rows.iter().position(|(kept, _)| kept == name) {
            Some(index) => index,
            None => {
                let kept = self.rows.len()
                    - usize::from(self.rows.iter().any(|(kept, _)| kept == OTHER_TARGET));
                let name = if kept < MAX_TARGETS {
                    name
                } else {
                    OTHER_TARGET
                };
                match self.rows.iter().position(|(kept, _)| kept == name) {
                    Some(index) => index,
                    None => {
                        self.rows.push((name.to_owned(), TargetStats::default()));
                        self.rows.len() - 1
                    }
                }
            }
        };
        self.rows[index].1.record(outcome);
    }

    /// Every row, in the order first seen.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TargetStats)> {
        self.rows.iter().map(|(name, stats)| (name.as_str(), stats))
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<&TargetStats> {
        self.rows
            .iter()
            .find(|(kept, _)| kept == name)
            .map(|(_, stats)| stats)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A target URL as its row names it: without the scheme and credentials, cut to a readable length.
#[must_use]
pub fn target_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{host}/{path}")
        }
        None => rest
            .rsplit_once('@')
            .map_or(rest, |(_, host)| host)
            .to_owned(),
    };
    crate::outcome::bounded(rest, 120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixture::{Attempt, OMNI_TARGET_404, outcome};

    #[test]
    fn a_row_counts_layers_statuses_latency_and_cost() {
        let mut table = TargetTable::default();
        let ok = outcome(&Attempt {
            latency_ms: 400,
            ..Attempt::default()
        });
        let missing = outcome(&Attempt {
            body: OMNI_TARGET_404,
            ..Attempt::default()
        });
        table.record("example.com", &ok);
        table.record("example.com", &ok);
        table.record("example.com", &missing);
        let row = table.get("example.com").unwrap();
        assert_eq!(
            (
                row.layers.attempts,
                row.layers.api_served,
                row.layers.succeeded
            ),
            (3, 3, 2)
        );
        assert_eq!(row.statuses(), vec![(200, 2), (404, 1)]);
        assert_eq!(row.causes.get(crate::outcome::Cause::Target), 1);
        let (p50, p90) = row.success_p50_p90().unwrap();
        assert!(
            (p50 - 400.0).abs() <= 4.0 && (p90 - 400.0).abs() <= 4.0,
            "{p50} {p90}"
        );
        // Three charges of 0.0035 for two successes.
        let cost = row.cost_per_success().unwrap();
        assert!((cost - 0.00525).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn names_beyond_the_cap_share_one_row() {
        let mut table = TargetTable::default();
        let ok = outcome(&Attempt::default());
        for n in 0..MAX_TARGETS + 10 {
            table.record(&format!("host{n}.example"), &ok);
        }
        assert_eq!(table.len(), MAX_TARGETS + 1);
        assert_eq!(table.get(OTHER_TARGET).unwrap().layers.attempts, 10);
        table.record("host0.example", &ok);
        assert_eq!(table.get("host0.example").unwrap().layers.attempts, 2);
    }

    #[test]
    fn target_names_drop_scheme_and_credentials() {
        assert_eq!(
            target_name("https://u:p@shop.example.com/item/42"),
            "shop.example.com/item/42"
        );
        assert_eq!(target_name("https://example.com"), "example.com");
    }
}
