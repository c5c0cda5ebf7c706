//! The config file (TOML) and the quick probe from CLI flags, resolved into what the engine runs.
//!
//! Reading is two steps: [`ConfigFile`] is the file as written (serde, unknown fields rejected, so a
//! typo is an error with its line), and [`resolve`] turns it plus the CLI overrides into an
//! [`EngineConfig`] against the loaded profiles, reading each key from its environment variable.

use crate::eventlog::rotation::{LogPolicy, Retention, Rotation};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

pub use crate::event::Rate;
use crate::outcome::RequestOptions;
use crate::policy::RetryPolicy;
use crate::provider::{DEFAULT_BODY_CAP, Profiles};

mod bounds;

pub use bounds::{
    ConcurrencyError, DurationRange, DurationRangeError, MAX_CONCURRENCY, MAX_RATE_PER_SECOND,
    MIN_RATE_PER_SECOND, check_concurrency, parse_probe_interval, parse_request_timeout,
    parse_run_duration,
};

/// File name of the config inside the config dir.
pub const CONFIG_FILE_NAME: &str = "config.toml";
/// Usage endpoints are read no more often than this.
pub const MIN_USAGE_INTERVAL: Duration = Duration::from_secs(30);
/// Job polls are never faster than this (both contracts).
pub const MIN_JOB_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub retry: RetrySection,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Per-provider settings, keyed by profile name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    pub probes: Vec<ProbeSection>,
    /// Dashboard key bindings (`quit = ["q"]`), checked by `app::KeyBindings::with_overrides`.
    #[serde(default)]
    pub keys: toml::Table,
    /// The event log's rotation and retention.
    #[serde(default)]
    pub log: LogSection,
}

/// `[log]`: when the event log starts a new part, and how much of the logs folder is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A part holding this many bytes (compressed) is closed (default 64 MiB).
    #[serde(default, deserialize_with = "bounds::opt_log_rotate_bytes")]
    pub rotate_bytes: Option<u64>,
    /// A part written this long is closed (default 1h).
    #[serde(default, deserialize_with = "bounds::opt_log_rotate_every")]
    pub rotate_every: Option<Duration>,
    /// Logs in the data dir's logs folder last written longer ago are deleted (default 7d).
    #[serde(default, deserialize_with = "bounds::opt_log_keep")]
    pub keep: Option<Duration>,
    /// The logs folder is kept under this many bytes, oldest files deleted first (default 2 GB).
    #[serde(default, deserialize_with = "bounds::opt_log_max_total_bytes")]
    pub max_total_bytes: Option<u64>,
}

impl LogSection {
    /// The settings, defaults filled in.
    #[must_use]
    pub fn policy(&self) -> LogPolicy {
        let (rotation, retention) = (Rotation::default(), Retention::default());
        LogPolicy {
            rotation: Rotation {
                max_bytes: self.rotate_bytes.unwrap_or(rotation.max_bytes),
                max_age: self.rotate_every.unwrap_or(rotation.max_age),
            },
            retention: Retention {
                keep: self.keep.unwrap_or(retention.keep),
                max_total_bytes: self.max_total_bytes.unwrap_or(retention.max_total_bytes),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Time between two probes of one target in repeat mode (`0s`: back to back).
    #[serde(default, deserialize_with = "bounds::opt_probe_interval")]
    pub every: Option<Duration>,
    /// Total timeout of one request.
    #[serde(default, deserialize_with = "bounds::opt_request_timeout")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "bounds::opt_request_timeout")]
    pub connect_timeout: Option<Duration>,
    /// Largest response body read, in bytes (default 10 MiB).
    #[serde(default)]
    pub body_cap_bytes: Option<u64>,
    #[serde(default, deserialize_with = "bounds::opt_job_poll_interval")]
    pub job_poll_interval: Option<Duration>,
    /// Longest wait for an async job before the attempt counts as a timeout.
    #[serde(default, deserialize_with = "bounds::opt_job_max_wait")]
    pub job_max_wait: Option<Duration>,
    #[serde(default, deserialize_with = "bounds::opt_usage_interval")]
    pub usage_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    pub max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "bounds::opt_retry_delay")]
    pub base_delay: Option<Duration>,
    #[serde(default, deserialize_with = "bounds::opt_retry_delay")]
    pub max_delay: Option<Duration>,
    pub jitter: Option<f64>,
    /// Apply escalations that cost more without asking (every provider).
    pub automatic_escalation: Option<bool>,
}

/// Limits that make `omniscope run` exit 3 when broken. `[thresholds]` holds every provider to
/// them; `[providers.NAME.thresholds]` replaces any of them for that provider, in its own unit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Probes that succeeded end to end (the API served the call and the target answered below
    /// 400), 0–1; skipped probes count as failures.
    pub min_success_rate: Option<f64>,
    /// Probes the API layer served, whatever the target answered, 0–1; skipped probes count as
    /// failures.
    pub min_api_success_rate: Option<f64>,
    /// Of the calls the API served, those the target answered below 400, 0–1.
    pub min_target_success_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// Net spend, in the provider's billing unit.
    pub max_spend: Option<f64>,
}

impl Thresholds {
    /// These thresholds, each one not set taken from `defaults`.
    #[must_use]
    pub fn or(&self, defaults: &Self) -> Self {
        Self {
            min_success_rate: self.min_success_rate.or(defaults.min_success_rate),
            min_api_success_rate: self.min_api_success_rate.or(defaults.min_api_success_rate),
            min_target_success_rate: self
                .min_target_success_rate
                .or(defaults.min_target_success_rate),
            max_p99_ms: self.max_p99_ms.or(defaults.max_p99_ms),
            max_spend: self.max_spend.or(defaults.max_spend),
        }
    }
}

/// The thresholds each provider of a run is held to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdSet {
    /// `[thresholds]`: every provider's, unless its own section sets the key.
    pub defaults: Thresholds,
    /// `[providers.NAME.thresholds]`, as written (unset keys fall back to `defaults`).
    pub by_provider: BTreeMap<String, Thresholds>,
}

impl ThresholdSet {
    /// The same thresholds for every provider.
    #[must_use]
    pub fn uniform(defaults: Thresholds) -> Self {
        Self {
            defaults,
            by_provider: BTreeMap::new(),
        }
    }

    /// What `provider` is held to: its own keys over the defaults.
    #[must_use]
    pub fn for_provider(&self, provider: &str) -> Thresholds {
        self.by_provider
            .get(provider)
            .map_or_else(|| self.defaults.clone(), |own| own.or(&self.defaults))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Base URL override (scheme and host).
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
    /// Requests in flight at once (the plan's limit), 1 to [`MAX_CONCURRENCY`].
    #[serde(default, deserialize_with = "bounds::opt_concurrency")]
    pub concurrency: Option<u32>,
    /// `"5/s"`, `"30/min"`, `"unlimited"`.
    pub rate: Option<Rate>,
    /// Requests the plan includes per month, for the quota gauge.
    pub plan_quota: Option<u64>,
    pub automatic_escalation: Option<bool>,
    /// This provider's thresholds, in its own billing unit, over `[thresholds]`.
    pub thresholds: Option<Thresholds>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    pub provider: String,
    /// Overrides the provider's base URL (same for every probe of that provider).
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
    pub targets: Vec<String>,
    pub mode: Option<String>,
    pub proxy_country: Option<String>,
    pub tier: Option<String>,
    /// Provider-side timeout in seconds, sent where the profile has the field, in the unit the
    /// provider counts (ScrapingBee and ScrapFly: milliseconds).
    pub timeout_s: Option<u32>,
    /// Ask for the provider's async queue: its submit path (OmniScrape's `/v1/scrape/async`), or
    /// its profile's `async_params` (AlterLab's `"sync": false`); the job is then polled.
    #[serde(default, rename = "async")]
    pub use_async: bool,
    #[serde(default, deserialize_with = "bounds::opt_probe_interval")]
    pub every: Option<Duration>,
}

// The rate type is shared (`crate::event::Rate`, in commands and `limits` facts); how text
// becomes one, within the config's bounds, is the config's.
/// A rate that is not `N/s`, `N/min`, `N/h` or `unlimited`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("rate {text:?}: unknown unit {unit:?} (use N/s, N/min, N/h or unlimited)")]
    UnknownUnit { text: String, unit: String },
    #[error("rate {text:?} is not N/s, N/min, N/h or unlimited")]
    NotANumber { text: String },
    #[error("rate {text:?} must be above zero")]
    NotAboveZero { text: String },
    #[error("rate {text:?} is below one request a day, the slowest limit (e.g. 1/h, 30/min, 5/s)")]
    TooSlow { text: String },
    #[error(
        "rate {text:?} is above {}/s; to send without a client-side limit, say \"unlimited\"",
        MAX_RATE_PER_SECOND
    )]
    TooFast { text: String },
}

impl std::str::FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Self::Unlimited);
        }
        let (number, per) = text.split_once('/').unwrap_or((text, "s"));
        let seconds = match per.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => {
                return Err(RateError::UnknownUnit {
                    text: text.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        let count: f64 = number.trim().parse().map_err(|_| RateError::NotANumber {
            text: text.to_owned(),
        })?;
        if !(count.is_finite() && count > 0.0) {
            return Err(RateError::NotAboveZero {
                text: text.to_owned(),
            });
        }
        bounds::check_rate(text, count / seconds).map(Self::PerSecond)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A duration humantime cannot read.
#[derive(Debug, thiserror::Error)]
#[error("duration {text:?}: {source} (examples: 10s, 5m, 1h)")]
pub struct DurationError {
    text: String,
    source: humantime::DurationError,
}

/// `"10s"`, `"5m"`, `"1h 30m"` (humantime).
///
/// # Errors
/// Text humantime cannot read.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|source| DurationError {
        text: text.to_owned(),
        source,
    })
}

/// A config problem: usage, file or key. `omniscope run` exits 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// toml's message carries the line, column and a caret under the problem.
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error(
        "environment variable {} is not set or empty (the API key for provider {provider}); export it, or name another with api_key_env / --api-key-env",
        shown_variable(.var)
    )]
    MissingKey { var: String, provider: String },
}

/// The variable's name as an error shows it: a name that does not look like one (lower case,
/// dashes, very long) may be the key itself, passed to `--api-key-env` by mistake, and is not
/// echoed.
fn shown_variable(var: &str) -> String {
    let conventional = !var.is_empty()
        && var.len() <= 64
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if conventional {
        var.to_owned()
    } else {
        "(named by api_key_env / --api-key-env; not shown, as it may be a key)".to_owned()
    }
}

/// Read and parse a config file.
///
/// # Errors
/// The file cannot be read, or is not a valid config (the message names the file and line).
pub fn load_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|error| ConfigError::Parse {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

/// Parse config text.
///
/// # Errors
/// toml's error (its text has the line, column and what was expected).
pub fn parse(text: &str) -> Result<ConfigFile, toml::de::Error> {
    toml::from_str(text)
}

/// The config file to use: `--config FILE`, else `config.toml` in the config dir when it exists.
///
/// # Errors
/// A named or found file that cannot be read or parsed.
pub fn load(explicit: Option<&Path>) -> Result<(ConfigFile, Option<PathBuf>), ConfigError> {
    if let Some(path) = explicit {
        return Ok((load_file(path)?, Some(path.to_owned())));
    }
    let Some(path) = crate::paths::config_dir().map(|dir| dir.join(CONFIG_FILE_NAME)) else {
        return Ok((ConfigFile::default(), None));
    };
    if path.is_file() {
        Ok((load_file(&path)?, Some(path)))
    } else {
        Ok((ConfigFile::default(), None))
    }
}

/// A probe given on the command line (`--provider --target …`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
    pub targets: Vec<String>,
    pub once: bool,
    pub duration: Option<Duration>,
    pub every: Option<Duration>,
    pub concurrency: Option<u32>,
    pub rate: Option<Rate>,
    pub timeout: Option<Duration>,
    /// No probes is fine: the session has another source of attempts (`watch --proxy`).
    pub probes_optional: bool,
}

/// When probes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Each target once (with its retries), then stop.
    Once,
    /// Repeat every probe's interval until `duration` (or forever, until shutdown).
    Repeat { duration: Option<Duration> },
}

/// One provider as the engine runs it.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub name: String,
    pub base_url: String,
    /// The variable the key came from (for messages; the key itself is never shown).
    pub api_key_env: String,
    pub key: SecretString,
    pub concurrency: u32,
    pub rate: Rate,
    pub plan_quota: Option<u64>,
    pub automatic_escalation: bool,
}

/// One configured probe: a provider, its targets and request options.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub id: u64,
    pub provider: String,
    pub targets: Vec<String>,
    pub options: RequestOptions,
    /// Time between two runs of one target in repeat mode; zero is back to back.
    pub every: Duration,
}

/// Everything the engine needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub providers: Vec<ProviderSettings>,
    pub probes: Vec<ProbeSpec>,
    pub retry: RetryPolicy,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub body_cap: usize,
    pub job_poll_interval: Duration,
    pub job_max_wait: Duration,
    pub usage_interval: Duration,
    /// The event log's rotation and retention (`[log]`).
    pub log: LogPolicy,
}

impl EngineConfig {
    #[must_use]
    pub fn provider(&self, name: &str) -> Option<&ProviderSettings> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    /// What the probe schedule asks of `provider`: its targets ÷ their `every`, summed; unlimited
    /// when one of its probes runs back to back (`every = 0s`); `None` for `--once` or a provider
    /// without probes. Its `rate` caps this: the slower of the two drives probing.
    #[must_use]
    pub fn schedule_rate(&self, provider: &str) -> Option<Rate> {
        if self.schedule == Schedule::Once {
            return None;
        }
        let mut per_second = None;
        for probe in self
            .probes
            .iter()
            .filter(|probe| probe.provider == provider)
        {
            if probe.every.is_zero() {
                return Some(Rate::Unlimited);
            }
            // Exact as f64: target counts far below 2^52.
            let this = probe.targets.len() as f64 / probe.every.as_secs_f64();
            per_second = Some(per_second.unwrap_or(0.0) + this);
        }
        per_second.map(Rate::PerSecond)
    }

    /// How many of `provider`'s targets are probed on an interval (not back to back): a probe
    /// rate set from the keyboard is shared among them.
    #[must_use]
    pub fn interval_targets(&self, provider: &str) -> usize {
        self.probes
            .iter()
            .filter(|probe| probe.provider == provider && !probe.every.is_zero())
            .map(|probe| probe.targets.len())
            .sum()
    }
}

/// The environment variable a provider's key is read from when nothing names one.
#[must_use]
pub fn default_key_env(provider: &str) -> String {
    format!(
        "{}_API_KEY",
        provider.to_ascii_uppercase().replace('-', "_")
    )
}

/// Resolve the file and the CLI overrides into an engine config. `origin` names the file for
/// messages; `env` reads an environment variable (injected for tests).
///
/// # Errors
/// Unknown providers, bad URLs, a quick probe without a provider, no probes at all, a missing key.
pub fn resolve(
    file: &ConfigFile,
    origin: &str,
    overrides: &Overrides,
    profiles: &Profiles,
    env: impl Fn(&str) -> Option<String>,
) -> Result<EngineConfig, ConfigError> {
    let blame = Blame { origin };
    let default_every = overrides
        .every
        .or(file.run.every)
        .unwrap_or(Duration::from_secs(60));

    if overrides.provider.is_none()
        && (overrides.endpoint.is_some() || overrides.api_key_env.is_some())
    {
        return Err(Blame::flags(
            "--endpoint and --api-key-env apply to --provider NAME; name the provider",
        ));
    }
    let sections = probe_sections(file, overrides, profiles, &blame)?;
    let (probes, provider_names) = resolve_probes(&sections, profiles, default_every, &blame)?;

    let mut providers = Vec::new();
    for name in provider_names {
        let Some(profile) = profiles.get(&name) else {
            continue;
        };
        let from = ProviderSources {
            file,
            sections: &sections,
            overrides,
            quick: overrides.provider.as_deref() == Some(name.as_str()),
        };
        providers.push(resolve_provider(profile, &from, &env, &blame)?);
    }
    for name in file.providers.keys() {
        if profiles.get(name).is_none() {
            return Err(blame.file(format!(
                "[providers.{name}]: unknown provider (known: {})",
                profiles.names().join(", ")
            )));
        }
    }

    if overrides.once && overrides.duration.is_some() {
        return Err(Blame::flags("--once and --duration exclude each other"));
    }
    let schedule = if overrides.once {
        Schedule::Once
    } else {
        Schedule::Repeat {
            duration: overrides.duration,
        }
    };
    let timeout = overrides
        .timeout
        .or(file.run.timeout)
        .unwrap_or(Duration::from_secs(30));
    let connect_timeout = file.run.connect_timeout.unwrap_or(Duration::from_secs(10));
    // A zero timeout fails every request before it is sent: a usage error, not a run.
    if timeout.is_zero() {
        let message = "the request timeout must be above zero (e.g. 30s)";
        return Err(if overrides.timeout.is_some() {
            Blame::flags(format!("--timeout: {message}"))
        } else {
            blame.file(format!("[run] timeout: {message}"))
        });
    }
    if connect_timeout.is_zero() {
        return Err(blame.file("[run] connect_timeout must be above zero (e.g. 10s)"));
    }
    Ok(EngineConfig {
        providers,
        probes,
        retry: retry_policy(&file.retry),
        schedule,
        timeout,
        connect_timeout,
        body_cap: file
            .run
            .body_cap_bytes
            .map_or(DEFAULT_BODY_CAP, |cap| {
                usize::try_from(cap).unwrap_or(usize::MAX)
            })
            .max(1),
        job_poll_interval: file
            .run
            .job_poll_interval
            .unwrap_or(Duration::from_secs(2))
            .max(MIN_JOB_POLL_INTERVAL),
        job_max_wait: file.run.job_max_wait.unwrap_or(Duration::from_secs(300)),
        usage_interval: file
            .run
            .usage_interval
            .unwrap_or(MIN_USAGE_INTERVAL)
            .max(MIN_USAGE_INTERVAL),
        log: file.log.policy(),
    })
}

/// Who a resolve error is about: the config file (its `origin`) or the command line.
struct Blame<'a> {
    origin: &'a str,
}

impl Blame<'_> {
    fn file(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            message: message.into(),
        }
    }

    fn flags(message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: "command line".to_owned(),
            message: message.into(),
        }
    }
}

/// The probes to run, as sections: the CLI's quick probe replaces the file's when it names targets.
fn probe_sections(
    file: &ConfigFile,
    overrides: &Overrides,
    profiles: &Profiles,
    blame: &Blame<'_>,
) -> Result<Vec<ProbeSection>, ConfigError> {
    let mut sections: Vec<ProbeSection> = Vec::new();
    if overrides.targets.is_empty() {
        if overrides.provider.is_some() && file.probes.is_empty() {
            return Err(Blame::flags("--provider needs at least one --target URL"));
        }
        for probe in &file.probes {
            sections.push(ProbeSection {
                provider: probe.provider.clone(),
                endpoint: probe.endpoint.clone(),
                api_key_env: probe.api_key_env.clone(),
                targets: probe.targets.clone(),
                mode: probe.mode.clone(),
                proxy_country: probe.proxy_country.clone(),
                tier: probe.tier.clone(),
                timeout_s: probe.timeout_s,
                use_async: probe.use_async,
                every: overrides.every.or(probe.every),
            });
        }
    } else {
        let provider = overrides.provider.clone().ok_or_else(|| {
            Blame::flags(format!(
                "--target needs --provider NAME (one of: {})",
                profiles.names().join(", ")
            ))
        })?;
        sections.push(ProbeSection {
            provider,
            targets: overrides.targets.clone(),
            every: overrides.every,
            ..ProbeSection::default()
        });
    }
    if sections.is_empty() && !overrides.probes_optional {
        return Err(blame.file(
            "no probes: add [[probes]] to the config file, or pass --provider NAME --target URL",
        ));
    }
    Ok(sections)
}

/// Each section checked against its provider's profile, and the providers they name, in order of
/// first mention.
fn resolve_probes(
    sections: &[ProbeSection],
    profiles: &Profiles,
    default_every: Duration,
    blame: &Blame<'_>,
) -> Result<(Vec<ProbeSpec>, Vec<String>), ConfigError> {
    let mut probes = Vec::new();
    let mut provider_names: Vec<String> = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let number = index + 1;
        let profile = profiles.get(&section.provider).ok_or_else(|| {
            blame.file(format!(
                "probe {number}: unknown provider {:?} (known: {})",
                section.provider,
                profiles.names().join(", ")
            ))
        })?;
        if section.targets.is_empty() {
            return Err(blame.file(format!("probe {number} has no targets")));
        }
        if let Some(target) = section
            .targets
            .iter()
            .find(|target| reqwest::Url::parse(target).is_err())
        {
            return Err(blame.file(format!("probe {number}: target {target:?} is not a URL")));
        }
        let options = RequestOptions {
            mode: section
                .mode
                .clone()
                .or_else(|| profile.request.default_mode.clone()),
            proxy_country: section.proxy_country.clone(),
            tier: section.tier.clone(),
            timeout_s: section.timeout_s,
            use_async: section.use_async,
        };
        if options.proxy_country.is_some() && profile.request.proxy_country.is_none() {
            return Err(blame.file(format!(
                "probe {number}: provider {} has no proxy country option",
                profile.name
            )));
        }
        if options.tier.is_some() && profile.request.tier.is_none() {
            return Err(blame.file(format!(
                "probe {number}: provider {} has no tier option",
                profile.name
            )));
        }
        probes.push(ProbeSpec {
            id: number as u64,
            provider: profile.name.clone(),
            targets: section.targets.clone(),
            options,
            every: section.every.unwrap_or(default_every),
        });
        if !provider_names.contains(&profile.name) {
            provider_names.push(profile.name.clone());
        }
    }
    Ok((probes, provider_names))
}

/// Where one provider's settings may come from, most specific first: the quick probe's flags
/// (`quick`: this is the `--provider`), its probes, its `[providers.NAME]` section, its profile.
struct ProviderSources<'a> {
    file: &'a ConfigFile,
    sections: &'a [ProbeSection],
    overrides: &'a Overrides,
    quick: bool,
}

impl ProviderSources<'_> {
    fn in_probes(&self, name: &str, pick: fn(&ProbeSection) -> Option<&String>) -> Option<String> {
        self.sections
            .iter()
            .filter(|probe| probe.provider == name)
            .find_map(|probe| pick(probe).cloned())
    }

    fn flag(&self, pick: fn(&Overrides) -> &Option<String>) -> Option<String> {
        pick(self.overrides).clone().filter(|_| self.quick)
    }
}

/// One provider's settings: endpoint, key (read from its variable), concurrency, rate.
fn resolve_provider(
    profile: &crate::provider::Profile,
    from: &ProviderSources<'_>,
    env: &impl Fn(&str) -> Option<String>,
    blame: &Blame<'_>,
) -> Result<ProviderSettings, ConfigError> {
    let name = &profile.name;
    let section = from.file.providers.get(name);
    let endpoint = from
        .flag(|o| &o.endpoint)
        .or_else(|| from.in_probes(name, |probe| probe.endpoint.as_ref()))
        .or_else(|| section.and_then(|s| s.endpoint.clone()))
        .unwrap_or_else(|| profile.base_url.clone());
    let base_url = endpoint.trim_end_matches('/').to_owned();
    if reqwest::Url::parse(&base_url).is_err()
        || !(base_url.starts_with("http://") || base_url.starts_with("https://"))
    {
        let shown = crate::redact::without_credentials(&endpoint);
        return Err(blame.file(format!(
            "provider {name}: endpoint {shown:?} must be an http:// or https:// URL"
        )));
    }
    let api_key_env = from
        .flag(|o| &o.api_key_env)
        .or_else(|| from.in_probes(name, |probe| probe.api_key_env.as_ref()))
        .or_else(|| section.and_then(|s| s.api_key_env.clone()))
        .unwrap_or_else(|| default_key_env(name));
    let key = env(&api_key_env)
        .filter(|key| !key.trim().is_empty())
        .ok_or_else(|| ConfigError::MissingKey {
            var: api_key_env.clone(),
            provider: name.clone(),
        })?;
    if reqwest::header::HeaderValue::from_str(key.trim()).is_err() {
        return Err(ConfigError::Invalid {
            origin: format!("environment variable {api_key_env}"),
            message: "the API key contains characters an HTTP header cannot carry".to_owned(),
        });
    }
    let concurrency = from
        .overrides
        .concurrency
        .or_else(|| section.and_then(|s| s.concurrency))
        .or_else(|| profile.plan.and_then(|plan| plan.concurrency))
        .unwrap_or(1);
    if let Err(message) = check_concurrency(concurrency) {
        return Err(if from.overrides.concurrency.is_some() {
            Blame::flags(format!("--concurrency: {message}"))
        } else {
            blame.file(format!("provider {name}: {message}"))
        });
    }
    let rate = from
        .overrides
        .rate
        .or_else(|| section.and_then(|s| s.rate))
        .or_else(|| {
            profile
                .plan
                .and_then(|plan| plan.requests_per_minute)
                .map(|rpm| Rate::PerSecond(f64::from(rpm) / 60.0))
        })
        .unwrap_or(Rate::Unlimited);
    Ok(ProviderSettings {
        name: name.clone(),
        base_url,
        api_key_env,
        key: SecretString::from(key.trim().to_owned()),
        concurrency,
        rate,
        plan_quota: section.and_then(|s| s.plan_quota),
        automatic_escalation: section
            .and_then(|s| s.automatic_escalation)
            .or(from.file.retry.automatic_escalation)
            .unwrap_or(false),
    })
}

/// The `[retry]` section over the defaults.
fn retry_policy(section: &RetrySection) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    RetryPolicy {
        max_attempts: section.max_attempts.unwrap_or(defaults.max_attempts).max(1),
        base_delay: section.base_delay.unwrap_or(defaults.base_delay),
        max_delay: section.max_delay.unwrap_or(defaults.max_delay),
        jitter: section.jitter.unwrap_or(defaults.jitter).clamp(0.0, 1.0),
        automatic_escalation: section.automatic_escalation.unwrap_or(false),
    }
}

/// The thresholds of a run over `providers`, checked: fractions from 0 to 1, limits of at least 0,
/// and no spend limit shared by providers that bill in different units (5 would mean $5 for
/// one and 5 credits for another).
///
/// # Errors
/// A value out of range (naming its section), or a `[thresholds] max_spend` that would apply to
/// providers with different billing units.
pub fn resolve_thresholds(
    file: &ConfigFile,
    origin: &str,
    providers: &[ProviderSettings],
    profiles: &Profiles,
) -> Result<ThresholdSet, ConfigError> {
    let blame = Blame { origin };
    check_thresholds(&file.thresholds, "[thresholds]", &blame)?;
    let mut by_provider = BTreeMap::new();
    for (name, section) in &file.providers {
        if let Some(own) = &section.thresholds {
            check_thresholds(own, &format!("[providers.{name}.thresholds]"), &blame)?;
            by_provider.insert(name.clone(), own.clone());
        }
    }
    let set = ThresholdSet {
        defaults: file.thresholds.clone(),
        by_provider,
    };
    if let Some(maximum) = file.thresholds.max_spend {
        let sharing: Vec<(String, &'static str)> = providers
            .iter()
            .filter(|provider| {
                set.by_provider
                    .get(&provider.name)
                    .is_none_or(|own| own.max_spend.is_none())
            })
            .filter_map(|provider| {
                let profile = profiles.get(&provider.name)?;
                Some((provider.name.clone(), profile.billing.unit.label()))
            })
            .collect();
        if sharing.iter().any(|(_, unit)| *unit != sharing[0].1) {
            let units = sharing
                .iter()
                .map(|(name, unit)| format!("{name} bills in {unit}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(blame.file(format!(
                "[thresholds] max_spend = {maximum} would apply to providers with different billing units ({units}); set max_spend under [providers.NAME.thresholds] for each, in its own unit"
            )));
        }
    }
    Ok(set)
}

fn check_thresholds(
    thresholds: &Thresholds,
    section: &str,
    blame: &Blame<'_>,
) -> Result<(), ConfigError> {
    for (name, value) in [
        ("min_success_rate", thresholds.min_success_rate),
        ("min_api_success_rate", thresholds.min_api_success_rate),
        (
            "min_target_success_rate",
            thresholds.min_target_success_rate,
        ),
    ] {
        if let Some(rate) = value.filter(|rate| !(0.0..=1.0).contains(rate)) {
            return Err(blame.file(format!(
                "{section} {name} is a fraction from 0 to 1 (0.9 = 90 %), not {rate}"
            )));
        }
    }
    for (name, value) in [
        ("max_p99_ms", thresholds.max_p99_ms),
        ("max_spend", thresholds.max_spend),
    ] {
        if let Some(value) = value.filter(|value| !(value.is_finite() && *value >= 0.0)) {
            return Err(blame.file(format!(
                "{section} {name} must be a number of at least 0, not {value}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::provider::builtin_profiles;

    fn env_with_key(var: &str) -> Option<String> {
        (var == "OMNISCRAPE_API_KEY").then(|| "sk_test_123".to_owned())
    }

    #[test]
    fn the_example_config_parses() {
        let file = parse(include_str!("../assets/config.example.toml")).unwrap();
        assert!(!file.probes.is_empty());
        assert!(file.thresholds.min_success_rate.is_some());
        let profiles = builtin_profiles();
        let config = resolve(&file, "example", &Overrides::default(), &profiles, |_| {
            Some("sk_test_k".to_owned())
        })
        .unwrap();
        let thresholds = resolve_thresholds(&file, "example", &config.providers, &profiles)
            .expect("the example's spend limits are per provider, in each one's unit");
        assert!(thresholds.for_provider("alterlab").max_spend.is_some());
    }

    #[test]
    fn a_typo_names_the_line() {
        let error = parse("[run]\nevery = \"10s\"\ntimeuot = \"5s\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
        let error = parse("[run]\nevery = \"ten seconds\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn rates_parse() {
        assert_eq!("unlimited".parse::<Rate>(), Ok(Rate::Unlimited));
        assert_eq!("5/s".parse::<Rate>(), Ok(Rate::PerSecond(5.0)));
        assert_eq!("30/min".parse::<Rate>(), Ok(Rate::PerSecond(0.5)));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn a_quick_probe_from_flags_resolves() {
        let overrides = Overrides {
            provider: Some("omniscrape".to_owned()),
            endpoint: Some("http://127.0.0.1:9/".to_owned()),
            targets: vec!["https://example.com/".to_owned()],
            once: true,
            ..Overrides::default()
        };
        let config = resolve(
            &ConfigFile::default(),
            "(no file)",
            &overrides,
            &builtin_profiles(),
            env_with_key,
        )
        .unwrap();
        assert_eq!(config.probes.len(), 1);
        assert_eq!(config.schedule, Schedule::Once);
        let provider = &config.providers[0];
        assert_eq!(provider.base_url, "http://127.0.0.1:9");
        assert_eq!(provider.key.expose_secret(), "sk_test_123");
        assert!(!format!("{config:?}").contains("sk_test_123"));
    }

    #[test]
    fn a_zero_timeout_is_a_usage_error() {
        let quick = Overrides {
            provider: Some("omniscrape".to_owned()),
            targets: vec!["https://example.com/".to_owned()],
            once: true,
            ..Overrides::default()
        };
        let resolve_with = |file: &ConfigFile, overrides: &Overrides| {
            resolve(
                file,
                "test.toml",
                overrides,
                &builtin_profiles(),
                env_with_key,
            )
        };
        let flag = Overrides {
            timeout: Some(Duration::ZERO),
            ..quick.clone()
        };
        let error = resolve_with(&ConfigFile::default(), &flag).unwrap_err();
        assert!(error.to_string().contains("--timeout"), "{error}");
        // In a file, a zero timeout is refused while parsing, where the line is still known.
        for text in [
            "[run]\ntimeout = \"0s\"\n",
            "[run]\nconnect_timeout = \"0s\"\n",
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                error.to_string().contains("line 2") && error.to_string().contains("timeout"),
                "{error}"
            );
        }
        let fine = Overrides {
            timeout: Some(Duration::from_millis(1)),
            ..quick
        };
        assert!(resolve_with(&ConfigFile::default(), &fine).is_ok());
    }

    #[test]
    fn thresholds_out_of_range_are_usage_errors() {
        let quick = Overrides {
            provider: Some("omniscrape".to_owned()),
            targets: vec!["https://example.com/".to_owned()],
            once: true,
            ..Overrides::default()
        };
        let check = |text: &str| {
            let file = parse(text).unwrap();
            let profiles = builtin_profiles();
            let config = resolve(&file, "test.toml", &quick, &profiles, env_with_key)?;
            resolve_thresholds(&file, "test.toml", &config.providers, &profiles)
        };
        for (text, section) in [
            ("[thresholds]\nmin_success_rate = 90\n", "[thresholds]"),
            ("[thresholds]\nmin_success_rate = -0.1\n", "[thresholds]"),
            ("[thresholds]\nmin_api_success_rate = 2\n", "[thresholds]"),
            (
                "[thresholds]\nmin_target_success_rate = nan\n",
                "[thresholds]",
            ),
            ("[thresholds]\nmax_p99_ms = -1\n", "[thresholds]"),
            ("[thresholds]\nmax_spend = nan\n", "[thresholds]"),
            (
                "[providers.omniscrape.thresholds]\nmax_spend = -1\n",
                "[providers.omniscrape.thresholds] max_spend",
            ),
        ] {
            let error = check(text).unwrap_err().to_string();
            assert!(error.contains(section), "{text}: {error}");
        }
        assert!(
            check("[thresholds]\nmin_success_rate = 0.9\nmax_p99_ms = 0\nmax_spend = 5\n").is_ok()
        );
    }

    fn two_providers(text: &str) -> Result<ThresholdSet, ConfigError> {
        let probes = "[[probes]]\nprovider = \"omniscrape\"\ntargets = [\"https://a.example/\"]\n\n[[probes]]\nprovider = \"alterlab\"\ntargets = [\"https://a.example/\"]\n";
        let file = parse(&format!("{text}\n{probes}")).unwrap();
        let profiles = builtin_profiles();
        let config = resolve(&file, "two.toml", &Overrides::default(), &profiles, |_| {
            Some("sk_test_k".to_owned())
        })?;
        resolve_thresholds(&file, "two.toml", &config.providers, &profiles)
    }

    #[test]
    fn a_provider_s_own_thresholds_replace_the_defaults_key_by_key() {
        let set = two_providers(
            "[thresholds]\nmin_success_rate = 0.9\nmax_p99_ms = 5000\n\n[providers.alterlab.thresholds]\nmax_p99_ms = 30000\nmax_spend = 2000000\n\n[providers.omniscrape.thresholds]\nmax_spend = 0.5\n",
        )
        .unwrap();
        let alterlab = set.for_provider("alterlab");
        assert_eq!(alterlab.min_success_rate, Some(0.9), "from [thresholds]");
        assert_eq!(alterlab.max_p99_ms, Some(30_000.0), "its own");
        assert_eq!(alterlab.max_spend, Some(2_000_000.0));
        let omniscrape = set.for_provider("omniscrape");
        assert_eq!(omniscrape.max_p99_ms, Some(5000.0));
        assert_eq!(omniscrape.max_spend, Some(0.5));
    }

    #[test]
    fn one_spend_limit_for_providers_billing_in_different_units_is_refused() {
        let error = two_providers("[thresholds]\nmax_spend = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("two.toml")
                && error.contains("omniscrape bills in usd")
                && error.contains("alterlab bills in microcents")
                && error.contains("[providers.NAME.thresholds]"),
            "{error}"
        );
        // Once one of them has its own, the default applies to the other alone: fine.
        let set = two_providers(
            "[thresholds]\nmax_spend = 5\n\n[providers.alterlab.thresholds]\nmax_spend = 100000\n",
        )
        .unwrap();
        assert_eq!(set.for_provider("omniscrape").max_spend, Some(5.0));
        assert_eq!(set.for_provider("alterlab").max_spend, Some(100_000.0));
        assert!(
            parse("[providers.alterlab.thresholds]\nmax_spned = 1\n").is_err(),
            "a typo in a provider's thresholds is an error too"
        );
    }

    #[test]
    fn out_of_range_durations_rates_and_counts_name_their_line() {
        for (text, line) in [
            ("[run]\njob_max_wait = \"300000000000y\"\n", "line 2"),
            ("[run]\njob_max_wait = \"0s\"\n", "line 2"),
            (
                "[run]\nevery = \"10s\"\nusage_interval = \"3000y\"\n",
                "line 3",
            ),
            ("[retry]\nmax_delay = \"1000000h\"\n", "line 2"),
            ("[providers.alterlab]\nrate = \"1e-20/s\"\n", "line 2"),
            ("[providers.alterlab]\nrate = \"1e300/s\"\n", "line 2"),
            ("[providers.alterlab]\nconcurrency = 1000000\n", "line 2"),
            ("[providers.alterlab]\nconcurrency = 0\n", "line 2"),
            (
                "[[probes]]\nprovider = \"alterlab\"\ntargets = []\nevery = \"400days\"\n",
                "line 4",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.to_string().contains(line), "{text}: {error}");
        }
        assert!(parse("[run]\nevery = \"0s\"\njob_max_wait = \"1h\"\n").is_ok());
        assert!(parse("[providers.alterlab]\nrate = \"1/h\"\nconcurrency = 1000\n").is_ok());
    }

    #[test]
    fn a_rate_never_silently_means_unlimited() {
        for text in ["1e-20/s", "0.5/day", "0.001/h", "1e-300/min"] {
            assert!(text.parse::<Rate>().is_err(), "{text}");
        }
        for text in ["1/h", "1000000/s", "0.1/s"] {
            let rate: Rate = text.parse().unwrap();
            assert!(rate.interval().is_some(), "{text}");
        }
    }

    #[test]
    fn usage_and_job_polls_are_never_faster_than_the_contracts_allow() {
        let file = parse("[run]\nusage_interval = \"1s\"\njob_poll_interval = \"10ms\"\n").unwrap();
        let overrides = Overrides {
            provider: Some("alterlab".to_owned()),
            targets: vec!["https://example.com/".to_owned()],
            ..Overrides::default()
        };
        let config = resolve(&file, "f", &overrides, &builtin_profiles(), |_| {
            Some("k".to_owned())
        })
        .unwrap();
        assert_eq!(config.usage_interval, MIN_USAGE_INTERVAL);
        assert_eq!(config.job_poll_interval, MIN_JOB_POLL_INTERVAL);
        assert_eq!(
            config.providers[0].rate,
            Rate::PerSecond(0.5),
            "AlterLab's published 30 rpm when the config names no rate"
        );
        assert_eq!(config.providers[0].concurrency, 3);
    }

    #[test]
    fn a_missing_key_names_the_variable() {
        let overrides = Overrides {
            provider: Some("alterlab".to_owned()),
            api_key_env: Some("MY_ALTERLAB_KEY".to_owned()),
            targets: vec!["https://example.com/".to_owned()],
            ..Overrides::default()
        };
        let error = resolve(
            &ConfigFile::default(),
            "(no file)",
            &overrides,
            &builtin_profiles(),
            |_| None,
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::MissingKey { .. }));
        assert!(error.to_string().contains("MY_ALTERLAB_KEY"), "{error}");
    }

    #[test]
    fn a_key_passed_as_the_variable_name_is_not_echoed() {
        let missing = |var: &str| {
            ConfigError::MissingKey {
                var: var.to_owned(),
                provider: "omniscrape".to_owned(),
            }
            .to_string()
        };
        assert!(missing("OMNISCRAPE_API_KEY").contains("variable OMNISCRAPE_API_KEY is not set"));
        let key = "sk_test_a1b2c3d4e5f6g7h8";
        let shown = missing(key);
        assert!(!shown.contains(key), "{shown}");
        assert!(shown.contains("not shown"), "{shown}");
    }

    #[test]
    fn an_unknown_provider_is_named() {
        let file =
            parse("[[probes]]\nprovider = \"nope\"\ntargets = [\"https://a.example/\"]\n").unwrap();
        let error = resolve(
            &file,
            "cfg.toml",
            &Overrides::default(),
            &builtin_profiles(),
            env_with_key,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("cfg.toml") && error.contains("nope"),
            "{error}"
        );
    }
}
