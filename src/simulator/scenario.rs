//! Scenarios: what each simulated provider's account, limits, latency and fault mix look like, and
//! how they change over time. Data files in `assets/scenarios/*.toml`, embedded in the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Deserialize;

use super::fault::{FaultError, FaultName, Planned};
use crate::provider::{Profile, Profiles};

/// The built-in scenarios, as (name, TOML text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "healthy",
        include_str!("../../assets/scenarios/healthy.toml"),
    ),
    (
        "rate-limited",
        include_str!("../../assets/scenarios/rate-limited.toml"),
    ),
    (
        "degraded",
        include_str!("../../assets/scenarios/degraded.toml"),
    ),
    (
        "quota-exhausted",
        include_str!("../../assets/scenarios/quota-exhausted.toml"),
    ),
    ("chaos", include_str!("../../assets/scenarios/chaos.toml")),
    ("bench", include_str!("../../assets/scenarios/bench.toml")),
    ("demo", include_str!("../../assets/scenarios/demo.toml")),
];

/// Names of the embedded scenarios.
#[must_use]
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(
        "no scenario named {name:?} and no such file: use one of {known} or a path to a .toml file",
        known = builtin_names().join(", ")
    )]
    Unknown { name: String },
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {origin} is not valid TOML for a scenario: {message}")]
    Parse { origin: String, message: String },
    #[error("scenario {origin}, provider {provider}: {message}")]
    Invalid {
        origin: String,
        provider: String,
        message: String,
    },
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Keyed by profile name. A provider not listed is served healthy, free and unlimited.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderScenario>,
}

/// One provider's account and behaviour in a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderScenario {
    /// Plan name reported by the usage endpoint.
    pub plan: String,
    /// Concurrent requests per key; absent means unlimited.
    pub concurrency: Option<u32>,
    /// Requests per minute per key (fixed one-minute windows); absent means unlimited.
    pub requests_per_minute: Option<u32>,
    /// Requests per second per key on top of the minute limit.
    pub burst_per_second: Option<u32>,
    /// Successful requests per key before 402 `MONTHLY_QUOTA_EXCEEDED`.
    pub monthly_quota: Option<u64>,
    /// Starting balance per key, in the profile's billing unit; absent means bottomless.
    pub balance: Option<f64>,
    /// Cost of one billed request, in the profile's billing unit.
    pub price: f64,
    pub latency: Latency,
    /// Probability that a failure the contract says is free gets charged anyway.
    pub refund_violation: f64,
    /// A sync request whose drawn latency exceeds this becomes a 202 job (providers that answer
    /// slow targets asynchronously).
    pub async_after_ms: Option<u64>,
    /// How long a job stays `queued` before `processing`.
    pub job_queue_ms: u64,
    /// Relative weights of faults (`success`, `target:404`, `BLOCKED_BY_ANTIBOT`, `502`, …).
    pub faults: BTreeMap<String, f64>,
    pub waves: Vec<Wave>,
}

impl Default for ProviderScenario {
    fn default() -> Self {
        Self {
            plan: "simulated".to_owned(),
            concurrency: None,
            requests_per_minute: None,
            burst_per_second: None,
            monthly_quota: None,
            balance: None,
            price: 0.0,
            latency: Latency::default(),
            refund_violation: 0.0,
            async_after_ms: None,
            job_queue_ms: 1000,
            faults: BTreeMap::new(),
            waves: Vec::new(),
        }
    }
}

/// A log-normal latency given by its median and 95th percentile.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    #[serde(default)]
    pub median_ms: u64,
    #[serde(default)]
    pub p95_ms: u64,
}

/// A period during which extra faults join the mix and limits may tighten: active for `active_s`
/// seconds from `from_s`, again every `period_s` seconds when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    #[serde(default)]
    pub from_s: u64,
    pub active_s: u64,
    #[serde(default)]
    pub period_s: Option<u64>,
    #[serde(default)]
    pub faults: BTreeMap<String, f64>,
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Multiplies the drawn latency while active.
    #[serde(default)]
    pub latency_factor: Option<f64>,
}

impl Wave {
    #[must_use]
    pub fn active_at(&self, elapsed: Duration) -> bool {
        let t = elapsed.as_secs();
        if t < self.from_s {
            return false;
        }
        let since = t - self.from_s;
        match self.period_s {
            Some(period) if period > 0 => since % period < self.active_s,
            _ => since < self.active_s,
        }
    }
}

impl Scenario {
    /// A built-in scenario by name.
    #[must_use]
    pub fn builtin(name: &str) -> Option<Self> {
        let (_, text) = BUILTIN.iter().find(|(builtin, _)| *builtin == name)?;
        Self::from_toml_str(text, name).ok()
    }

    /// A built-in name, or else a path to a scenario file.
    ///
    /// # Errors
    /// Neither a known name nor a readable, valid file.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == name_or_path) {
            return Self::from_toml_str(text, name);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ScenarioError::Unknown {
                name: name_or_path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// # Errors
    /// The text is not TOML or does not describe a scenario.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|error| ScenarioError::Parse {
            origin: origin.to_owned(),
            message: error.to_string(),
        })
    }

    /// Check every provider section against the profiles: known providers, faults their
    /// contracts have, sane numbers.
    ///
    /// # Errors
    /// The first problem found, naming the provider and the field.
    pub fn validate(&self, profiles: &Profiles) -> Result<(), ScenarioError> {
        for (provider, section) in &self.providers {
            let invalid = |message: String| ScenarioError::Invalid {
                origin: self.name.clone(),
                provider: provider.clone(),
                message,
            };
            let profile = profiles.get(provider).ok_or_else(|| {
                invalid(format!(
                    "no provider profile of that name (known: {})",
                    profiles.names().join(", ")
                ))
            })?;
            section
                .compile(profile)
                .map_err(|error| invalid(error.to_string()))?;
        }
        Ok(())
    }
}

/// A provider section with every fault name resolved against the profile.
#[derive(Debug, Clone)]
pub struct CompiledProvider {
    pub settings: ProviderScenario,
    pub faults: Vec<(Planned, f64)>,
    pub waves: Vec<(Wave, Vec<(Planned, f64)>)>,
    /// Log-normal parameters of the latency (ln of the median, sigma).
    pub latency_mu: f64,
    pub latency_sigma: f64,
}

/// Longest latency the simulator will wait out before answering.
pub const MAX_LATENCY: Duration = Duration::from_secs(300);

impl CompiledProvider {
    /// Limits in force at `elapsed` (a wave may tighten them): concurrency, requests per minute.
    #[must_use]
    pub fn limits_at(&self, elapsed: Duration) -> (Option<u32>, Option<u32>) {
        let mut concurrency = self.settings.concurrency;
        let mut rpm = self.settings.requests_per_minute;
        for (wave, _) in &self.waves {
            if wave.active_at(elapsed) {
                concurrency = wave.concurrency.or(concurrency);
                rpm = wave.requests_per_minute.or(rpm);
            }
        }
        (concurrency, rpm)
    }

    /// The outcome drawn for one request at `elapsed`, from the faults and the active waves'.
    pub fn pick(&self, rng: &mut Xoshiro256PlusPlus, elapsed: Duration) -> Planned {
        let active = self
            .waves
            .iter()
            .filter(|(wave, _)| wave.active_at(elapsed))
            .flat_map(|(_, faults)| faults.iter());
        let all = || self.faults.iter().chain(active.clone());
        let total: f64 = all().map(|(_, weight)| weight).sum();
        if total <= 0.0 {
            return Planned::Success { target_status: 200 };
        }
        let mut point = rng.random::<f64>() * total;
        for (planned, weight) in all() {
            if point < *weight {
                return planned.clone();
            }
            point -= weight;
        }
        Planned::Success { target_status: 200 }
    }

    /// A latency drawn at `elapsed`: log-normal, stretched by the active waves.
    pub fn draw_latency(&self, rng: &mut Xoshiro256PlusPlus, elapsed: Duration) -> Duration {
        if !self.latency_mu.is_finite() {
            return Duration::ZERO;
        }
        // Box-Muller: a standard normal from two uniforms.
        let u1 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2 = rng.random::<f64>();
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let factor: f64 = self
            .waves
            .iter()
            .filter(|(wave, _)| wave.active_at(elapsed))
            .filter_map(|(wave, _)| wave.latency_factor)
            .product();
        let ms = (self.latency_mu + self.latency_sigma * normal).exp() * factor;
        Duration::from_secs_f64((ms / 1000.0).clamp(0.0, MAX_LATENCY.as_secs_f64()))
    }
}

/// A provider section of a scenario that cannot be run against its profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error("{what} must be a non-negative number, not {value}")]
    Negative { what: String, value: f64 },
    #[error("refund_violation is a probability (0..1), not {0}")]
    RefundViolation(f64),
    #[error("latency.p95_ms must be at least latency.median_ms")]
    LatencyOrder,
    #[error(transparent)]
    Fault(#[from] FaultError),
}

impl ProviderScenario {
    /// # Errors
    /// A fault name the contract does not have, or a negative or non-finite number.
    pub fn compile(&self, profile: &Profile) -> Result<CompiledProvider, CompileError> {
        let check = |what: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(CompileError::Negative {
                    what: what.to_owned(),
                    value,
                })
            }
        };
        check("price", self.price)?;
        if let Some(balance) = self.balance {
            check("balance", balance)?;
        }
        if !(0.0..=1.0).contains(&self.refund_violation) {
            return Err(CompileError::RefundViolation(self.refund_violation));
        }
        if self.latency.p95_ms != 0 && self.latency.p95_ms < self.latency.median_ms {
            return Err(CompileError::LatencyOrder);
        }
        let resolve = |table: &BTreeMap<String, f64>| -> Result<Vec<(Planned, f64)>, CompileError> {
            table
                .iter()
                .map(|(name, weight)| {
                    check(&format!("the weight of {name}"), *weight)?;
                    let fault = FaultName::parse(name)?;
                    Ok((Planned::resolve(profile, &fault)?, *weight))
                })
                .collect()
        };
        let waves = self
            .waves
            .iter()
            .map(|wave| {
                if let Some(factor) = wave.latency_factor {
                    check("latency_factor", factor)?;
                }
                Ok((wave.clone(), resolve(&wave.faults)?))
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        let median = self.latency.median_ms as f64;
        let p95 = self.latency.p95_ms.max(self.latency.median_ms) as f64;
        let (latency_mu, latency_sigma) = if median > 0.0 {
            // The 95th percentile of a standard normal is 1.645 sigma above the mean.
            (median.ln(), (p95 / median).ln() / 1.645)
        } else {
            (f64::NEG_INFINITY, 0.0)
        };
        Ok(CompiledProvider {
            settings: self.clone(),
            faults: resolve(&self.faults)?,
            waves,
            latency_mu,
            latency_sigma,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::builtin_profiles;

    #[test]
    fn every_builtin_scenario_parses_and_validates() {
        let profiles = builtin_profiles();
        for (name, text) in BUILTIN {
            let scenario = Scenario::from_toml_str(text, name).unwrap();
            assert_eq!(scenario.name, *name);
            scenario.validate(&profiles).unwrap();
        }
    }

    #[test]
    fn every_builtin_scenario_drives_every_provider() {
        let profiles = builtin_profiles();
        for (name, text) in BUILTIN {
            let scenario = Scenario::from_toml_str(text, name).unwrap();
            for profile in profiles.iter() {
                assert!(
                    scenario.providers.contains_key(&profile.name),
                    "scenario {name} leaves {} unconfigured",
                    profile.name
                );
            }
        }
    }

    #[test]
    fn unknown_names_and_bad_files_are_clear_errors() {
        let error = Scenario::load("no-such-scenario").unwrap_err();
        assert!(error.to_string().contains("healthy"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = 3").unwrap();
        let error = Scenario::load(path.to_str().unwrap()).unwrap_err();
        assert!(matches!(error, ScenarioError::Parse { .. }), "{error}");
    }

    #[test]
    fn faults_outside_the_contract_are_rejected() {
        let scenario = Scenario::from_toml_str(
            "name = \"x\"\n[providers.omniscrape.faults]\nBLOCKED_BY_ANTIBOT = 1.0\n",
            "inline",
        )
        .unwrap();
        let error = scenario.validate(&builtin_profiles()).unwrap_err();
        assert!(error.to_string().contains("BLOCKED_BY_ANTIBOT"), "{error}");
    }

    #[test]
    fn waves_come_and_go() {
        let wave = Wave {
            from_s: 60,
            active_s: 30,
            period_s: Some(120),
            faults: BTreeMap::new(),
            concurrency: None,
            requests_per_minute: None,
            latency_factor: None,
        };
        let at = |s| wave.active_at(Duration::from_secs(s));
        assert!(!at(59));
        assert!(at(60));
        assert!(at(89));
        assert!(!at(90));
        assert!(at(180));
        let once = Wave {
            period_s: None,
            ..wave
        };
        assert!(!once.active_at(Duration::from_secs(180)));
    }
}
