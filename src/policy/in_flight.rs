//! How many requests a provider gets in flight at once: additive increase, multiplicative decrease
//! (TCP's congestion control) between one and the lower of two limits, the user's and the
//! provider's.
//!
//! A plan's concurrency limit is a hard refusal (`CONCURRENCY_LIMIT`, a 429 that may still be
//! billed as a request): keeping four in flight against a one-slot plan makes most attempts
//! refusals. So the limit in force halves on every concurrency refusal and climbs back by one
//! place per limit's worth of answers that were not refused, never above what the user set
//! (`concurrency`, or the keys) nor above what the provider advertises (`X-Concurrency-Limit`).

/// The in-flight limit of one provider. Pure: the engine tells it what happened and applies
/// [`InFlightLimit::in_force`] to its gate.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlightLimit {
    /// The user's limit: the config's `concurrency`, or what the keys set.
    configured: u32,
    /// What the provider says the plan allows, when it says so.
    advertised: Option<u32>,
    /// The AIMD window: at least 1, at most [`InFlightLimit::ceiling`].
    window: f64,
}

impl InFlightLimit {
    /// Start at the user's limit (a provider's own figure lowers it as soon as it is read).
    #[must_use]
    pub fn new(configured: u32) -> Self {
        let configured = configured.max(1);
        Self {
            configured,
            advertised: None,
            window: f64::from(configured),
        }
    }

    /// The most ever allowed in flight: the user's limit, lowered to the provider's.
    #[must_use]
    pub fn ceiling(&self) -> u32 {
        self.advertised
            .map_or(self.configured, |advertised| {
                advertised.min(self.configured)
            })
            .max(1)
    }

    /// The limit in force now.
    #[must_use]
    pub fn in_force(&self) -> u32 {
        // The window stays within 1..=ceiling (u32 values), so the cast neither wraps nor cuts.
        let places = self.window.floor() as u32;
        places.clamp(1, self.ceiling())
    }

    #[must_use]
    pub fn configured(&self) -> u32 {
        self.configured
    }

    #[must_use]
    pub fn advertised(&self) -> Option<u32> {
        self.advertised
    }

    /// A request refused for concurrency: back off, halving the limit (at least one).
    pub fn on_refused(&mut self) {
        self.window = (self.window.min(f64::from(self.ceiling())) / 2.0).max(1.0);
    }

    /// An answer that was not a concurrency refusal: probe up slowly, one place per limit's
    /// worth of such answers.
    pub fn on_answered(&mut self) {
        self.window = (self.window + 1.0 / self.window.max(1.0)).min(f64::from(self.ceiling()));
    }

    /// The provider's figure (`X-Concurrency-Limit`); zero is no figure.
    pub fn advertise(&mut self, limit: u32) {
        if limit > 0 {
            self.advertised = Some(limit);
            self.window = self.window.min(f64::from(self.ceiling()));
        }
    }

    /// The user chose a limit: start from it (the provider's figure still caps it).
    pub fn configure(&mut self, limit: u32) {
        self.configured = limit.max(1);
        self.window = f64::from(self.ceiling());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_halve_the_limit_and_answers_climb_back_slowly() {
        let mut limit = InFlightLimit::new(8);
        assert_eq!(limit.in_force(), 8);
        limit.on_refused();
        assert_eq!(limit.in_force(), 4);
        limit.on_refused();
        limit.on_refused();
        limit.on_refused();
        assert_eq!(limit.in_force(), 1, "never below one");
        // From 1: one answer adds a place; from 2 it takes more than two (2.5, 2.9, 3.2).
        limit.on_answered();
        assert_eq!(limit.in_force(), 2);
        limit.on_answered();
        limit.on_answered();
        assert_eq!(
            limit.in_force(),
            2,
            "about one place per limit's worth of answers"
        );
        limit.on_answered();
        assert_eq!(limit.in_force(), 3);
        for _ in 0..100 {
            limit.on_answered();
        }
        assert_eq!(limit.in_force(), 8, "never above the user's limit");
    }

    #[test]
    fn the_provider_s_advertised_limit_caps_the_user_s() {
        // Issue 15: four kept in flight against a one-slot plan.
        let mut limit = InFlightLimit::new(4);
        limit.advertise(1);
        assert_eq!((limit.in_force(), limit.ceiling()), (1, 1));
        for _ in 0..10 {
            limit.on_answered();
        }
        assert_eq!(limit.in_force(), 1);
        assert_eq!((limit.configured(), limit.advertised()), (4, Some(1)));
        limit.advertise(0);
        assert_eq!(limit.advertised(), Some(1), "zero is no figure");
        // A bigger plan lets it climb to the user's limit, not beyond.
        limit.advertise(10);
        for _ in 0..20 {
            limit.on_answered();
        }
        assert_eq!(limit.in_force(), 4);
        // The user's new limit applies at once, under the provider's.
        limit.configure(20);
        assert_eq!(limit.in_force(), 10);
        limit.configure(0);
        assert_eq!(limit.in_force(), 1);
    }
}
