//! One provider's traffic split by where it came from: omniscope's own probes, or the user's
//! scraper through `omniscope proxy` (see [`Origin`]).

use serde::{Deserialize, Serialize};

use crate::outcome::Origin;

/// One origin's share of a provider's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OriginStats {
    /// Attempts, retries included.
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Probes not sent (a paused provider), or proxied requests `--guard` answered locally.
    pub skipped: u64,
    /// In the provider's billing unit (unreadable amounts left out, as in the totals).
    pub charged: f64,
    pub refunded: f64,
    /// Requests in the air now.
    #[serde(skip)]
    pub in_flight: u32,
}

impl OriginStats {
    /// Share of this origin's attempts that succeeded, 0–1; `None` before its first attempt.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        // Exact as f64: counts far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let rate = (self.attempts > 0).then(|| self.succeeded as f64 / self.attempts as f64);
        rate
    }
}

/// [`OriginStats`] for both origins; their sums are the provider's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ByOrigin {
    pub probe: OriginStats,
    pub proxy: OriginStats,
}

impl ByOrigin {
    #[must_use]
    pub fn get(&self, origin: Origin) -> &OriginStats {
        match origin {
            Origin::Probe => &self.probe,
            Origin::Proxy => &self.proxy,
        }
    }

    pub fn get_mut(&mut self, origin: Origin) -> &mut OriginStats {
        match origin {
            Origin::Probe => &mut self.probe,
            Origin::Proxy => &mut self.proxy,
        }
    }

    /// Requests in the air, both origins.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.probe.in_flight.saturating_add(self.proxy.in_flight)
    }
}
