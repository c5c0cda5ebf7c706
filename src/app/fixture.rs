//! The fixed session of [`crate::fixture`] as the dashboard sees it, for tests and snapshots.

pub use crate::fixture::*;

use super::{App, Fact, KeyBindings, ProviderLive, Rate};
use crate::outcome::Origin;
use crate::provider::{UsageReading, builtin_profiles};
use crate::stats::SessionStats;

/// The fixed session as the dashboard sees it at [`now`].
pub fn app() -> App {
    let profiles = builtin_profiles();
    let mut stats = SessionStats::new(at(0));
    for name in ["omniscrape", "alterlab"] {
        let unit = profiles.get(name).unwrap().billing.unit;
        stats.register(name, unit);
    }
    let mut app = App::new(stats, profiles, KeyBindings::default(), at(0));
    app.configure_provider(
        "omniscrape",
        ProviderLive {
            rate: Some(Rate::PerSecond(1.0)),
            schedule: Some(Rate::PerSecond(0.5)),
            concurrency: Some(5),
            configured_concurrency: Some(5),
            plan_quota: Some(10_000),
            ..ProviderLive::default()
        },
    );
    app.configure_provider(
        "alterlab",
        ProviderLive {
            rate: Some(Rate::PerSecond(1.0)),
            concurrency: Some(3),
            ..ProviderLive::default()
        },
    );
    for (index, outcome) in session_outcomes().into_iter().enumerate() {
        let second = (outcome.started_at - at(0)).num_seconds();
        app.update(super::Msg::Tick(at(second)));
        app.update(super::Msg::Fact(Fact::InFlight {
            origin: Origin::Probe,
            provider: outcome.provider.clone(),
            n: u32::try_from(index % 4).unwrap() + 1,
            at: outcome.started_at,
        }));
        app.update(super::Msg::Fact(Fact::Attempt {
            at: crate::stats::finished_at(&outcome),
            outcome: Box::new(outcome),
            in_flight: Some(u32::try_from(index % 3).unwrap()),
        }));
    }
    app.update(super::Msg::Fact(Fact::Usage {
        origin: Origin::Probe,
        provider: "alterlab".into(),
        reading: UsageReading {
            balance: Some(4_870.0),
            unit: crate::outcome::BillingUnit::Microcents,
            plan: Some("starter".into()),
            used: Some(130.0),
            limit: None,
        },
        at: at(600),
    }));
    app.update(super::Msg::Resize {
        width: 100,
        height: 30,
    });
    app.update(super::Msg::Tick(now()));
    app.notice = None;
    app
}
