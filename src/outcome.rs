//! The outcome model: one attempt of one probe, as omniscope understood it.
//!
//! Every source (live probes, a replayed event log, the simulator's own view) produces this one
//! type; panes, reports, the event log and metrics all read it. It is plain data: building one is
//! the job of [`crate::provider::classify`], deciding what to do next is [`crate::policy`]'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Identifies one attempt inside a session. Retries link to the attempt they retry.
pub type AttemptId = u64;

/// One attempt of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Profile name (`omniscrape`, `alterlab`, …).
    pub provider: String,
    /// Which configured probe this attempt belongs to.
    pub probe_id: u64,
    /// Unique within a session; what retries and the detail view refer to.
    pub attempt_id: AttemptId,
    /// 1 for the first try of a probe, 2 for its first retry, …
    pub attempt: u32,
    /// The attempt this one retries (automatic or manual), if any.
    pub retry_of: Option<AttemptId>,
    pub target_url: String,
    pub options: RequestOptions,
    /// Wall-clock time the request was sent.
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    pub transport: Transport,
    /// The scraping API's own HTTP status (layer one). `None` when no response arrived.
    pub api_status: Option<u16>,
    /// The provider's verdict on the call: its `success` flag where it sends one, otherwise a 2xx
    /// status with no error code.
    pub api_success: bool,
    /// The provider's machine-readable error code (`CONCURRENCY_LIMIT`, `BLOCKED_BY_ANTIBOT`, …).
    pub error_code: Option<String>,
    /// Human-readable message from the provider, or omniscope's description of a transport or
    /// parse failure.
    pub message: Option<String>,
    /// The target site's status (layer two): an API 200 can carry a target 404.
    pub target_status: Option<u16>,
    pub request_id: Option<String>,
    pub rate_limit: RateLimitReading,
    pub concurrency: ConcurrencyReading,
    pub billing: Billing,
    /// What the provider says about its own work on the attempt (OmniScrape's `metadata`).
    #[serde(default, skip_serializing_if = "ProviderWork::is_unsaid")]
    pub provider_work: ProviderWork,
    /// Set when the API accepted the request as an async job (HTTP 202).
    pub job: Option<JobRef>,
    /// Size of the response body as received (capped reads report the bytes read).
    pub body_bytes: u64,
    /// The start of the body, lossily decoded, for the detail view. Bounded in size.
    pub body_excerpt: String,
    /// Response headers, bounded in number and size. Request headers (and so the key) are never
    /// stored here.
    pub headers: Vec<(String, String)>,
    pub class: Classification,
    /// Whose request this was: omniscope's own probe, or the user's scraper through
    /// `omniscope proxy`. Logs written before the field existed replay as probes.
    #[serde(default)]
    pub origin: Origin,
}

/// What a client of `omniscope proxy` did against the provider's contract (the audit of the user's
/// scraper; the rules are the ones omniscope's own probes keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Sent again a request the provider refused and the contract says not to retry (400, 401,
    /// 402, 404…; AlterLab's "maybe" 403/422 unchanged).
    RetriedNonRetryable,
    /// Came back before the provider's `Retry-After` or rate-limit reset.
    EarlyReturn,
    /// Kept sending after an account error (bad key, no balance, quota used up).
    AfterAccountError,
    /// Had more requests in flight than the plan's concurrency.
    OverConcurrency,
}

impl FindingKind {
    /// As the log, the report and the metrics spell it.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::RetriedNonRetryable => "retried_non_retryable",
            Self::EarlyReturn => "early_return",
            Self::AfterAccountError => "after_account_error",
            Self::OverConcurrency => "over_concurrency",
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::RetriedNonRetryable => "retried what the contract says not to retry",
            Self::EarlyReturn => "returned before Retry-After / the rate-limit reset",
            Self::AfterAccountError => "kept sending after an account error",
            Self::OverConcurrency => "exceeded the plan's concurrency",
        }
    }
}

/// Findings per rule, and requests the guard answered, for one provider (the report's `audit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCounts {
    pub retried_non_retryable: u64,
    pub early_return: u64,
    pub after_account_error: u64,
    pub over_concurrency: u64,
    /// Requests `--guard` answered locally instead of forwarding.
    pub guarded: u64,
}

impl FindingCounts {
    pub fn count(&mut self, kind: FindingKind) {
        let counter = match kind {
            FindingKind::RetriedNonRetryable => &mut self.retried_non_retryable,
            FindingKind::EarlyReturn => &mut self.early_return,
            FindingKind::AfterAccountError => &mut self.after_account_error,
            FindingKind::OverConcurrency => &mut self.over_concurrency,
        };
        *counter += 1;
    }

    #[must_use]
    pub fn total(&self) -> u64 {
        self.retried_non_retryable
            + self.early_return
            + self.after_account_error
            + self.over_concurrency
    }
}

/// Where an attempt (and every fact about a provider) came from: omniscope's own probes, billed
/// to the monitor, or the user's own traffic seen by `omniscope proxy`, which costs the monitor
/// nothing. Every view, the report and the metrics keep the two apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Probe,
    Proxy,
}

impl Origin {
    pub const ALL: [Self; 2] = [Self::Probe, Self::Proxy];

    /// As the log, the report and the metrics spell it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Probe => "probe",
            Self::Proxy => "proxy",
        }
    }

    #[must_use]
    pub fn is_probe(&self) -> bool {
        *self == Self::Probe
    }
}

impl Outcome {
    /// What a failed attempt failed on; `None` for a success. See [`Cause`].
    #[must_use]
    pub fn cause(&self) -> Option<Cause> {
        if self.succeeded() {
            return None;
        }
        let class = &self.class;
        Some(match &self.transport {
            Transport::BodyOverCap { .. } => Cause::Unreadable,
            Transport::Local { .. } => Cause::Request,
            Transport::Ok => match class.fault {
                _ if class.unreadable => Cause::Unreadable,
                _ if class.limit == Some(LimitKind::Concurrency) => Cause::Concurrency,
                Fault::RateLimit => Cause::RateLimit,
                Fault::Account => Cause::Account,
                Fault::Target => Cause::Target,
                Fault::Network => Cause::Network,
                Fault::Client => Cause::Request,
                // A target status of 400 or more under an API success is the site's, whatever
                // the row said; any other failure with no fault named is the API's.
                Fault::None if self.target_status.is_some_and(|status| status >= 400) => {
                    Cause::Target
                }
                Fault::Provider | Fault::None => Cause::Provider,
            },
            _ => Cause::Network,
        })
    }

    /// The host of the target URL (`shop.example.com`), empty when the URL has none.
    #[must_use]
    pub fn target_host(&self) -> &str {
        url_host(&self.target_url)
    }

    /// The report's definition: the API call succeeded and the target answered below 400.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.api_succeeded() && self.target_status.is_none_or(|status| status < 400)
    }

    /// The first layer on its own: the API call succeeded, whatever the target answered.
    #[must_use]
    pub fn api_succeeded(&self) -> bool {
        self.transport == Transport::Ok
            && self.api_success
            // A 202 only queued the job; the attempt that finished it carries the job and the
            // final status.
            && !(self.job.is_some() && self.api_status == Some(202))
    }

    /// The API layer did its job (the first of the two success rates): the call went through
    /// and brought the target's answer, whatever the target said, or the provider's failure is
    /// the target's (blocked, a login wall). A queued 202 has not done it yet.
    #[must_use]
    pub fn api_served(&self) -> bool {
        self.transport == Transport::Ok
            && !(self.job.is_some() && self.api_status == Some(202))
            && (self.api_success || self.class.fault == Fault::Target)
    }

    /// A 429 from the API, whatever the code.
    #[must_use]
    pub fn throttled(&self) -> bool {
        self.api_status == Some(429)
    }

    /// Replace `secret` wherever the response put it: some APIs echo the key they were sent in
    /// an error message, a header or the body ("invalid key sk_live_…"), and everything here
    /// reaches the screen, the event log and the report. See [`Outcome::redact_forms`].
    pub fn redact(&mut self, secret: &str) {
        self.redact_forms(&KeyForms::new(secret));
    }

    /// Replace the key in every form it takes on the wire ([`KeyForms`]), in every text the
    /// outcome keeps: code, message, ids, the excerpt, header names and values (a key split
    /// across headers sent one after another included).
    pub fn redact_forms(&mut self, key: &KeyForms) {
        if key.is_empty() {
            return;
        }
        for text in [
            &mut self.error_code,
            &mut self.message,
            &mut self.request_id,
        ]
        .into_iter()
        .flatten()
        {
            key.scrub(text);
        }
        // The excerpt and header values are cut at a fixed length: a key that straddled the cut
        // left its start at the end.
        let excerpt_cut = self.body_bytes > self.body_excerpt.len() as u64;
        key.scrub_cut(&mut self.body_excerpt, excerpt_cut);
        let (mut names, mut values): (Vec<&mut String>, Vec<&mut String>) = self
            .headers
            .iter_mut()
            .map(|(name, value)| (name, value))
            .unzip();
        key.scrub_across(&mut names);
        key.scrub_across(&mut values);
        if let Some(job) = &mut self.job {
            key.scrub(&mut job.id);
            key.scrub(&mut job.poll_path);
        }
    }
}

use crate::redact::KeyForms;
pub use crate::redact::{MIN_REDACTED_SECRET, REDACTED};

/// Longest error code kept from a provider (the contracts' longest is 24 bytes).
pub const MAX_CODE_BYTES: usize = 64;
/// Longest request id, job id or plan name kept (and the longest job id polled).
pub const MAX_ID_BYTES: usize = 128;
/// Longest provider message kept.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The largest amount one attempt (or one balance reading) can plausibly carry, in any unit:
/// beyond it, or not finite, or negative, an amount is unreadable. Sums of sane amounts stay
/// finite, so no total is ever NaN.
pub const MAX_AMOUNT: f64 = 1e12;

/// Whether `value` can be an amount of money: finite, non-negative, at most [`MAX_AMOUNT`].
#[must_use]
pub fn sane_amount(value: f64) -> bool {
    value.is_finite() && (0.0..=MAX_AMOUNT).contains(&value)
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
#[must_use]
pub fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// [`bounded`] from a borrowed text, copying no more than is kept.
#[must_use]
pub fn bounded_str(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut kept = String::with_capacity(cut + '…'.len_utf8());
    kept.push_str(&text[..cut]);
    kept.push('…');
    kept
}

/// The knobs of a scrape request that escalation changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestOptions {
    /// Rendering mode as the provider spells it (`auto`, `js_rendering`, `js`, …).
    pub mode: Option<String>,
    pub proxy_country: Option<String>,
    /// Tier as the provider spells it (AlterLab's `max_tier`).
    pub tier: Option<String>,
    /// Provider-side timeout in seconds, when the request body carries one.
    pub timeout_s: Option<u32>,
    /// Submit through the async endpoint instead of the sync one.
    #[serde(default)]
    pub use_async: bool,
}

/// What happened on the wire, before any HTTP status was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transport {
    /// A complete response arrived.
    Ok,
    /// Connect, read or total timeout.
    Timeout,
    ConnectionRefused,
    /// DNS, reset, or another failure to connect.
    Connect {
        detail: String,
    },
    Tls {
        detail: String,
    },
    /// The body went past the configured cap; reading stopped there.
    BodyOverCap {
        cap_bytes: u64,
    },
    /// The connection dropped while the body was being read.
    BodyIncomplete {
        detail: String,
    },
    /// Anything else reqwest reported.
    Other {
        detail: String,
    },
    /// The request could not be built here (a URL or header omniscope cannot send): nothing
    /// left the machine, and sending it again would fail the same way.
    Local {
        detail: String,
    },
    /// The session ended (`--duration`, a stop) while the request was in the air and its short
    /// grace ran out: it went out and may be billed, but its answer was never read.
    Abandoned,
}

impl Transport {
    /// Short label for panes and reports.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Timeout => "timeout",
            Self::ConnectionRefused => "refused",
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::BodyOverCap { .. } => "body_over_cap",
            Self::BodyIncomplete { .. } => "body_incomplete",
            Self::Other { .. } => "transport",
            Self::Local { .. } => "local",
            Self::Abandoned => "abandoned",
        }
    }
}

/// Rate-limit headers as read from one response. Malformed values are absent, never zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitReading {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When the window resets, as an instant (unix-time and seconds-from-now formats both end here).
    pub reset_at: Option<DateTime<Utc>>,
    /// `Retry-After`, as a duration from when the response was received.
    #[serde(with = "opt_duration_ms", default)]
    pub retry_after: Option<Duration>,
}

/// Concurrency headers where the provider sends them (AlterLab's `X-Concurrency-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyReading {
    pub limit: Option<u32>,
    pub current: Option<u32>,
}

/// What the provider says about its own work on one attempt, where its profile reads it:
/// OmniScrape's `metadata.elapsed_time` and `metadata.solver_used` ("Target returned 403 after
/// solver attempts": a failure the solver could not fix is a stubborn block, not a fluke).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderWork {
    /// How long the provider says it worked, in seconds (beside the latency omniscope measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
    /// Whether the provider ran its challenge solver for this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_used: Option<bool>,
}

impl ProviderWork {
    /// Nothing was said: not written to the log.
    #[must_use]
    pub fn is_unsaid(&self) -> bool {
        self.elapsed_s.is_none() && self.solver_used.is_none()
    }
}

/// What the provider says this attempt cost, in the profile's unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub charged: Option<f64>,
    /// The refunded amount, where the provider states one (a `refunded: true` flag with a known
    /// charge counts as the whole charge).
    pub refunded: Option<f64>,
    pub unit: BillingUnit,
    /// What the contract's refund rules say about this attempt's billing.
    pub audit: RefundAudit,
    /// The provider sent a charge or refund no bill can be (negative, not finite, absurdly
    /// large): the amount is unknown, never counted as a number.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
}

impl Billing {
    /// Charged minus refunded; unknown parts count as zero.
    #[must_use]
    pub fn net(&self) -> f64 {
        self.charged.unwrap_or(0.0) - self.refunded.unwrap_or(0.0)
    }
}

/// The currency a profile counts in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingUnit {
    /// US dollars (OmniScrape's `billing.charged`).
    Usd,
    /// Provider credits (AlterLab).
    #[default]
    Credits,
    /// Millionths of a cent (AlterLab's account endpoints).
    Microcents,
    /// Millionths of a US dollar (Zyte's Stats API `cost_microusd_*`).
    MicroUsd,
}

impl BillingUnit {
    /// US dollars per unit, where the unit converts (credits are priced by plan: they do not).
    #[must_use]
    pub fn usd_per_unit(self) -> Option<f64> {
        match self {
            Self::Usd => Some(1.0),
            Self::MicroUsd => Some(1e-6),
            Self::Microcents => Some(1e-8),
            Self::Credits => None,
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Usd => "usd",
            Self::Credits => "credits",
            Self::Microcents => "microcents",
            Self::MicroUsd => "micro_usd",
        }
    }
}

/// The refund audit's verdict for one attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundAudit {
    /// Billing agrees with the contract, or there was nothing to check.
    #[default]
    Consistent,
    /// The contract says this failure is free or refunded, but a net charge remains.
    ChargedButShouldBeFree,
    /// The contract says this failure is not refunded, yet a refund was reported.
    RefundedButShouldNotBe,
}

impl RefundAudit {
    #[must_use]
    pub fn is_mismatch(self) -> bool {
        self != Self::Consistent
    }
}

/// Whether the billing of an attempt agrees with the contract's refund rules.
#[must_use]
pub fn refund_audit(outcome: &Outcome) -> RefundAudit {
    const EPSILON: f64 = 1e-9;
    let refunded = outcome.billing.refunded.unwrap_or(0.0);
    let failed = !outcome.api_success;
    if failed && outcome.class.refund_expected && outcome.billing.net() > EPSILON {
        RefundAudit::ChargedButShouldBeFree
    } else if refunded > EPSILON && !(failed && outcome.class.refund_expected) {
        RefundAudit::RefundedButShouldNotBe
    } else {
        RefundAudit::Consistent
    }
}

/// An async job the API queued (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub id: String,
    /// Path to poll, from the response when it gives one, else from the profile's template.
    pub poll_path: String,
}

/// Whose fault an attempt's failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Nothing failed.
    None,
    /// The request was wrong: fix the configuration or the body.
    Client,
    /// The key, the balance, the quota or the subscription.
    Account,
    /// A rate or concurrency limit.
    RateLimit,
    /// The scraping API itself.
    Provider,
    /// The target site (blocked, down, 404, paywall…).
    Target,
    /// The network between omniscope and the API.
    Network,
}

impl Fault {
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Client => "client",
            Self::Account => "account",
            Self::RateLimit => "rate_limit",
            Self::Provider => "provider",
            Self::Target => "target",
            Self::Network => "network",
        }
    }
}

/// What a failure is put down to on the health line, in the failures pane, the report and
/// `/metrics`: the [`Fault`] of the classification, refined where the user acts differently (a
/// concurrency limit is not a rate limit, an answer that could not be read is not an API error).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The scraping API failed (5xx, an error code of its own, a job that never finished).
    Provider,
    /// The target site refused or failed (blocked, 404, 5xx behind a 200).
    Target,
    /// Requests per window.
    RateLimit,
    /// Requests in flight at once.
    Concurrency,
    /// The key, the balance, the quota, the plan.
    Account,
    /// No complete answer: timeout, refused, reset, TLS.
    Network,
    /// An answer omniscope could not read (HTML for JSON, a body over the cap, no job id).
    Unreadable,
    /// The request itself was wrong (fix the configuration or the profile).
    Request,
}

impl Cause {
    /// How many causes there are (the size of per-cause tables).
    pub const COUNT: usize = 8;

    /// Every cause, in the order panes and reports list them.
    pub fn all() -> impl Iterator<Item = Self> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    /// The name in reports and metric labels.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Target => "target",
            Self::RateLimit => "rate_limit",
            Self::Concurrency => "concurrency",
            Self::Account => "account",
            Self::Network => "network",
            Self::Unreadable => "unreadable",
            Self::Request => "request",
        }
    }

    /// A short name for narrow panes.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Self::Provider => "api",
            Self::Target => "site",
            Self::RateLimit => "rate",
            Self::Concurrency => "conc",
            Self::Account => "acct",
            Self::Network => "net",
            Self::Unreadable => "read",
            Self::Request => "req",
        }
    }

    /// Its place in per-cause tables.
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The host of `url` without scheme, credentials or port; empty when there is none.
#[must_use]
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

/// Whether the contract says the same request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retryable {
    /// Sending it again will fail the same way.
    No,
    /// Retry with back-off.
    Yes,
    /// Retry, but only after the delay the provider names (Retry-After, rate-limit reset).
    AfterDelay,
    /// The same request will probably fail again; a changed one (escalated) might not.
    Maybe,
    /// Not a failure.
    NotApplicable,
}

impl Retryable {
    /// Whether an automatic retry of the unchanged request is allowed.
    #[must_use]
    pub fn allows_plain_retry(self) -> bool {
        matches!(self, Self::Yes | Self::AfterDelay)
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Yes => "yes",
            Self::AfterDelay => "after delay",
            Self::Maybe => "maybe",
            Self::NotApplicable => "n/a",
        }
    }
}

/// The classification: whose fault, retry or not, refund or not, stop the provider or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub fault: Fault,
    pub retryable: Retryable,
    /// The contract says a charge for this attempt is refunded (or never made).
    pub refund_expected: bool,
    /// Every further request to this provider will fail the same way: pause it.
    pub account_stop: bool,
    /// The contract's one line of advice, when it gives one.
    pub advice: Option<String>,
    /// What the contract's table calls this status or code.
    pub meaning: Option<String>,
    /// Which limit a 429 hit, when the attempt hit one.
    pub limit: Option<LimitKind>,
    /// The error code is one the profile's table lists. Counts keep every known code by name but
    /// only a bounded number of unknown ones (a provider can send a new code every time).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub known_code: bool,
    /// The answer could not be read (HTML where JSON was promised, a 202 without a usable job
    /// id): a failure of its own kind on the health line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
}

/// The two kinds of limit a plan sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Requests per window (`X-RateLimit-*`).
    Rate,
    /// Requests in flight at once.
    Concurrency,
}

impl Default for Classification {
    fn default() -> Self {
        Self {
            fault: Fault::None,
            retryable: Retryable::NotApplicable,
            refund_expected: false,
            account_stop: false,
            advice: None,
            meaning: None,
            limit: None,
            known_code: false,
            unreadable: false,
        }
    }
}

/// Unknown error codes kept by name, per provider, in statistics, reports and metric labels;
/// further ones are counted under [`OTHER_CODE`].
pub const MAX_UNKNOWN_CODES: usize = 32;
/// The name the unknown codes beyond [`MAX_UNKNOWN_CODES`] are counted under.
pub const OTHER_CODE: &str = "other";

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    // A reference, not a copy: serde's `with` hands one over.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(deserializer)?;
        Ok(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default())
    }
}

mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    // `&Option`, not `Option<&>`: serde's `with` hands one over.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&(duration.as_secs_f64() * 1000.0)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let ms = Option::<f64>::deserialize(deserializer)?;
        Ok(ms.map(|ms| Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Attempt, outcome};

    const KEY: &str = "sk_test_0123456789abcdef";

    #[test]
    fn hosts_come_without_scheme_credentials_port_or_path() {
        assert_eq!(
            url_host("https://shop.example.com/item/42?x=1"),
            "shop.example.com"
        );
        assert_eq!(url_host("http://user:pw@127.0.0.1:8080/a"), "127.0.0.1");
        assert_eq!(url_host("https://[::1]:443/"), "[::1]");
        assert_eq!(url_host("example.org"), "example.org");
        assert_eq!(url_host(""), "");
    }

    #[test]
    fn every_failure_has_one_cause_and_a_success_none() {
        use crate::app::fixture::{
            ALTER_ANTIBOT, ALTER_RATE, OMNI_502, OMNI_CONCURRENCY, OMNI_TARGET_404,
        };
        let cause = |attempt: Attempt<'_>| outcome(&attempt).cause();
        assert_eq!(cause(Attempt::default()), None);
        let target = Attempt {
            body: OMNI_TARGET_404,
            ..Attempt::default()
        };
        assert_eq!(cause(target), Some(Cause::Target));
        let concurrency = Attempt {
            status: Some(429),
            body: OMNI_CONCURRENCY,
            ..Attempt::default()
        };
        assert_eq!(cause(concurrency), Some(Cause::Concurrency));
        let rate = Attempt {
            provider: "alterlab",
            status: Some(429),
            body: ALTER_RATE,
            ..Attempt::default()
        };
        assert_eq!(cause(rate), Some(Cause::RateLimit));
        let antibot = Attempt {
            provider: "alterlab",
            status: Some(403),
            body: ALTER_ANTIBOT,
            ..Attempt::default()
        };
        assert_eq!(cause(antibot), Some(Cause::Target));
        // OmniScrape's contract puts its 502 on the target ("could not unlock").
        let unlock = Attempt {
            status: Some(502),
            body: OMNI_502,
            ..Attempt::default()
        };
        assert_eq!(cause(unlock), Some(Cause::Target));
        let api = Attempt {
            status: Some(500),
            body: r#"{"success":false,"error":"internal"}"#,
            ..Attempt::default()
        };
        assert_eq!(cause(api), Some(Cause::Provider));
        let timeout = Attempt {
            status: None,
            body: "",
            ..Attempt::default()
        };
        assert_eq!(cause(timeout), Some(Cause::Network));
        let html = Attempt {
            body: "<html>not json</html>",
            ..Attempt::default()
        };
        assert_eq!(cause(html), Some(Cause::Unreadable));
        let revoked = Attempt {
            status: Some(401),
            body: r#"{"success":false,"error":"bad key","code":"INVALID_API_KEY"}"#,
            ..Attempt::default()
        };
        assert_eq!(cause(revoked), Some(Cause::Account));
        assert_eq!(Cause::all().count(), Cause::COUNT);
        assert!(Cause::all().enumerate().all(|(i, c)| c.index() == i));
    }

    #[test]
    fn bounded_texts_are_cut_on_a_char_boundary_and_marked() {
        assert_eq!(bounded("short".to_owned(), 64), "short");
        let long = "é".repeat(100); // 200 bytes
        for max in [4, 5, 64, 65, 199] {
            let kept = bounded(long.clone(), max);
            assert!(kept.len() <= max, "{max}: {} bytes", kept.len());
            assert!(kept.ends_with('…'), "{max}");
            assert_eq!(kept, bounded_str(&long, max), "{max}");
        }
        assert_eq!(bounded(long.clone(), 200), long);
    }

    #[test]
    fn amounts_beyond_sanity_are_not_amounts() {
        for sane in [0.0, 0.0035, 5.0, MAX_AMOUNT] {
            assert!(sane_amount(sane), "{sane}");
        }
        for absurd in [-0.01, 1e13, 1e308, f64::INFINITY, f64::NAN] {
            assert!(!sane_amount(absurd), "{absurd}");
        }
    }

    #[test]
    fn a_key_cut_off_at_the_end_of_the_excerpt_or_a_header_is_redacted_too() {
        let mut cut = outcome(&Attempt::default());
        cut.body_excerpt = format!("{{\"error\":\"bad key {}", &KEY[..12]);
        cut.redact(KEY);
        assert_eq!(
            cut.body_excerpt,
            format!("{{\"error\":\"bad key {REDACTED}")
        );

        // A start too short to be the key's by more than chance stays as it is.
        let mut short = outcome(&Attempt::default());
        short.body_excerpt = "token sk_te".to_owned();
        short.redact(KEY);
        assert_eq!(short.body_excerpt, "token sk_te");

        let mut header = outcome(&Attempt::default());
        header.headers = vec![("x-debug".to_owned(), format!("key={}", &KEY[..9]))];
        header.redact(KEY);
        assert_eq!(header.headers[0].1, format!("key={REDACTED}"));

        let mut whole = outcome(&Attempt::default());
        whole.body_excerpt = format!("a {KEY} b");
        whole.redact(KEY);
        assert_eq!(whole.body_excerpt, format!("a {REDACTED} b"));
    }
}
