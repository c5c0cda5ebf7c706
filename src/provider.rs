//! Provider profiles: what differs between scraping APIs, as data.
//!
//! The built-in profiles live in `assets/providers/*.toml` and are embedded in the binary. Files in
//! the config dir's `providers/` folder add providers, or override fields of a built-in one (tables
//! merge key by key; arrays and values replace). Code interprets profiles; it never branches on a
//! provider's name.

mod check;
mod classify;
mod field;
mod json_subset;
mod load;
mod locate;

use serde::{Deserialize, Serialize};

pub use check::query_text;
pub use classify::{
    AttemptMeta, BODY_EXCERPT_BYTES, DEFAULT_BODY_CAP, Exchange, JobPoll, MAX_WAIT, UsageReading,
    classify, parse_job_poll, parse_retry_after, parse_usage,
};
pub(crate) use field::pointer_tokens as field_pointer_tokens;
pub use field::{Field, FieldError, FieldSource};
pub use load::{Place, ProfileError, Profiles, RuleError, builtin_profiles, load_profiles};

use crate::outcome::{BillingUnit, Fault, Retryable};

/// One scraping API, as omniscope needs to know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Stable identifier used in config, reports and metrics.
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub docs_url: Option<String>,
    /// Scheme and host, without a trailing slash; the config or `--endpoint` may override it.
    pub base_url: String,
    pub endpoints: Endpoints,
    pub auth: Auth,
    pub request: RequestShape,
    pub response: ResponseShape,
    #[serde(default)]
    pub jobs: Option<JobShape>,
    #[serde(default)]
    pub usage: Option<UsageShape>,
    /// The usage call's own auth, when it differs from the scrape call's (ZenRows takes the key as
    /// the `apikey` query parameter for scrapes but as an `X-API-Key` header for its usage endpoint).
    #[serde(default)]
    pub usage_auth: Option<Auth>,
    pub billing: BillingRules,
    #[serde(default)]
    pub rate_limit: RateLimitHeaders,
    #[serde(default)]
    pub concurrency: ConcurrencyHeaders,
    /// Every HTTP status row of the provider's contract.
    #[serde(default)]
    pub statuses: Vec<StatusRule>,
    /// Every structured error code of the provider's contract.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    #[serde(default)]
    pub escalations: Vec<EscalationRule>,
    /// Published plan limits, used when the config names none.
    #[serde(default)]
    pub plan: Option<PlanLimits>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Path of the scrape call.
    pub scrape: String,
    /// The scrape call's method: a POST with a JSON body (OmniScrape), or a GET whose query carries
    /// the target (ScraperAPI, ScrapingBee, ZenRows, ScrapFly, Crawlbase).
    #[serde(default)]
    pub method: ScrapeMethod,
    /// Path that queues an async job, when the provider has a separate one.
    #[serde(default)]
    pub async_submit: Option<String>,
    /// Job status path; `{job_id}` is replaced.
    #[serde(default)]
    pub job_poll: Option<String>,
    /// Usage / balance path (GET), if the provider has one. It may carry a query
    /// (`/account?product=crawling-api`).
    #[serde(default)]
    pub usage: Option<String>,
}

/// The HTTP method of the scrape call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeMethod {
    #[default]
    Post,
    Get,
}

impl ScrapeMethod {
    #[must_use]
    pub fn as_http(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Get => reqwest::Method::GET,
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }
}

/// Where the scrape request carries the target URL and its options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Fields of a JSON body (names may be pointers to nested fields).
    #[default]
    Json,
    /// Query parameters of the URL.
    Query,
}

/// How the API key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    /// A header named `name` carries the key as is (`X-API-Key: sk_…`).
    Header,
    /// A query parameter named `name` (ScraperAPI's `api_key=`).
    Query,
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `Authorization: Basic base64(<key>:)` (Zyte API).
    Basic,
}

impl AuthStyle {
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Query => "query parameter",
            Self::Bearer => "bearer token",
            Self::Basic => "basic auth",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub style: AuthStyle,
    /// Header or query-parameter name; unused for Bearer and Basic.
    #[serde(default)]
    pub name: Option<String>,
}

impl Auth {
    /// One line for `omniscope providers`.
    #[must_use]
    pub fn describe(&self) -> String {
        match (&self.style, &self.name) {
            (AuthStyle::Header, Some(name)) => format!("header {name}"),
            (AuthStyle::Query, Some(name)) => format!("query parameter {name}"),
            (style, _) => style.label().to_owned(),
        }
    }
}

/// Where the scrape request's JSON body carries each option. A missing name means the provider has
/// no such option, and escalations that need it are skipped. A name is a top-level key (`"mode"`),
/// or a JSON pointer for a nested one (`"/cost_controls/max_tier"`, where AlterLab's SDK sends it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestShape {
    pub url: String,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub proxy_country: Option<String>,
    #[serde(default)]
    pub tier: Option<String>,
    /// Field for the provider-side timeout, which counts in `timeout_unit`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// What the timeout field counts: seconds (AlterLab), or milliseconds (ScrapingBee, ScrapFly).
    #[serde(default)]
    pub timeout_unit: TimeoutUnit,
    /// Parameters that ask for the provider's async queue, for a provider without a separate
    /// submit path (AlterLab's `sync = false`: "always use the async queue", a 202 with a job id).
    /// Sent when a probe asks for `async`.
    #[serde(default)]
    pub async_params: toml::Table,
    #[serde(default)]
    pub default_mode: Option<String>,
    /// Known modes, cheapest first.
    #[serde(default)]
    pub modes: Vec<String>,
    /// The mode an escalation not named by the contract switches to; the last of `modes` when
    /// unset (AlterLab lists `pdf` and `ocr` after `js`, which are other content, not a stronger
    /// scrape).
    #[serde(default)]
    pub escalation_mode: Option<String>,
    /// Proxy countries to rotate through when escalating.
    #[serde(default)]
    pub proxy_countries: Vec<String>,
    /// Tiers, cheapest first.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Where the target and the options travel: a JSON body (default) or the query string.
    #[serde(default)]
    pub placement: Placement,
    /// Parameters sent with every scrape, as typed values (Bright Data's `zone` and `format`).
    #[serde(default)]
    pub params: toml::Table,
    /// A mode as a set of parameters in the provider's own terms: `render = { render = "true" }`
    /// for ScraperAPI, `browser = { browserHtml = true }` for Zyte. A mode named here is sent as
    /// its parameters instead of as `mode = NAME`, so such profiles need no `mode` field.
    #[serde(default)]
    pub mode_params: std::collections::BTreeMap<String, toml::Table>,
}

impl RequestShape {
    /// Whether a request can say which mode it wants, as a field or as a set of parameters.
    #[must_use]
    pub fn has_modes(&self) -> bool {
        self.mode.is_some() || !self.mode_params.is_empty()
    }
}

/// What a provider's timeout field counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutUnit {
    #[default]
    Seconds,
    Milliseconds,
}

impl TimeoutUnit {
    /// The field's value for a timeout of `seconds`.
    #[must_use]
    pub fn count(self, seconds: u32) -> u64 {
        match self {
            Self::Seconds => u64::from(seconds),
            Self::Milliseconds => u64::from(seconds) * 1000,
        }
    }

    /// Whole seconds (rounded up) for a value of the field.
    #[must_use]
    pub fn seconds(self, value: u64) -> u32 {
        let seconds = match self {
            Self::Seconds => value,
            Self::Milliseconds => value.div_ceil(1000),
        };
        u32::try_from(seconds).unwrap_or(u32::MAX)
    }
}

/// What the scrape response's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    /// A JSON envelope; a 2xx that is not JSON is unreadable.
    #[default]
    Json,
    /// The target's own page (ScraperAPI, ScrapingBee, ZenRows, Crawlbase, Bright Data): a 2xx body
    /// is not parsed as an envelope, though error bodies are read as JSON when they are JSON.
    Raw,
}

/// The keys leading to a request field in the body: a JSON pointer's tokens, or the name itself.
#[must_use]
pub fn request_field_path(name: &str) -> Vec<String> {
    if name.starts_with('/') {
        field::pointer_tokens(name)
    } else {
        vec![name.to_owned()]
    }
}

/// Where each response field lives. Every entry is a list of sources tried in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseShape {
    /// A JSON envelope (default) or the target's raw page.
    #[serde(default)]
    pub body: BodyKind,
    /// The provider's success flag. Empty: success is a 2xx status with no error code.
    #[serde(default)]
    pub success: Vec<Field>,
    /// A third layer: the provider's own status inside a 2xx (Crawlbase's `cb_status`, formerly
    /// `pc_status`). Anything but 2xx means the call failed; with no error code read, the status
    /// itself becomes the code (`"525"`), so `[[errors]]` rows classify it.
    #[serde(default)]
    pub provider_status: Vec<Field>,
    #[serde(default)]
    pub error_code: Vec<Field>,
    #[serde(default)]
    pub message: Vec<Field>,
    #[serde(default)]
    pub target_status: Vec<Field>,
    #[serde(default)]
    pub content: Vec<Field>,
    #[serde(default)]
    pub request_id: Vec<Field>,
    #[serde(default)]
    pub charged: Vec<Field>,
    #[serde(default)]
    pub refunded: Vec<Field>,
    #[serde(default)]
    pub job_id: Vec<Field>,
    #[serde(default)]
    pub poll_path: Vec<Field>,
    /// How long the provider says it worked on the call, in seconds.
    #[serde(default)]
    pub elapsed_seconds: Vec<Field>,
    /// Whether the provider ran its challenge solver (OmniScrape's `metadata.solver_used`).
    #[serde(default)]
    pub solver_used: Vec<Field>,
}

/// How a job-status response reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobShape {
    pub status: Vec<Field>,
    /// Where the finished job's scrape response sits; it is classified like a sync response.
    #[serde(default)]
    pub result: Vec<Field>,
    #[serde(default)]
    pub error: Vec<Field>,
    pub pending: Vec<String>,
    pub completed: Vec<String>,
    pub failed: Vec<String>,
}

/// How the usage endpoint's answer reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageShape {
    /// The remaining balance. Empty: derived as `quota_limit` − `quota_used` (ScraperAPI's
    /// `requestLimit` − `requestCount`, ScrapingBee's `max_api_credit` − `used_api_credit`).
    #[serde(default)]
    pub balance: Vec<Field>,
    pub balance_unit: BillingUnit,
    #[serde(default)]
    pub plan: Vec<Field>,
    #[serde(default)]
    pub quota_used: Vec<Field>,
    /// The period's allowance, in `balance_unit` (AlterLab's `credits_limit`).
    #[serde(default)]
    pub quota_limit: Vec<Field>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingRules {
    pub unit: BillingUnit,
    /// The contract says a failed request is never billed (OmniScrape). When false, refunds follow
    /// the status and code tables' `refunded` column.
    #[serde(default)]
    pub failures_free: bool,
    /// What one request costs when the provider sends no cost with it (Crawlbase bills requests
    /// and says nothing per request): a billed attempt is counted at this price, an unbilled one
    /// at 0. Unset: no cost is derived.
    #[serde(default)]
    pub per_request: Option<f64>,
    /// For a derived cost: the target statuses a successful call is billed for (Crawlbase: 200,
    /// 201, 204, 301, 302, 404, 410; a target's 403 is not billed). Empty: every one.
    #[serde(default)]
    pub billed_target_statuses: Vec<u16>,
}

/// Response-header names for rate limits. Absent names are not read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitHeaders {
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub remaining: Option<String>,
    #[serde(default)]
    pub reset: Option<String>,
    #[serde(default)]
    pub reset_format: ResetFormat,
    #[serde(default)]
    pub retry_after: Option<String>,
}

/// How a rate-limit reset header counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetFormat {
    /// Unix time in seconds (`1704067200`).
    #[default]
    Unix,
    /// Seconds from the response.
    DeltaSeconds,
}

/// Response-header names for concurrency. `remaining` serves providers that send the free slots
/// instead of the used ones (ZenRows' `Concurrency-Remaining`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyHeaders {
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub remaining: Option<String>,
}

/// One HTTP status row of a contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRule {
    pub status: u16,
    pub meaning: String,
    #[serde(default)]
    pub advice: Option<String>,
    pub retry: Retryable,
    pub fault: Fault,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub account_stop: bool,
}

/// One structured error code of a contract. A code row overrides its status row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    pub code: String,
    pub status: u16,
    pub meaning: String,
    pub advice: String,
    pub retry: Retryable,
    pub fault: Fault,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub account_stop: bool,
    /// This code reports a concurrency cap rather than a request rate (OmniScrape's
    /// `CONCURRENCY_LIMIT`).
    #[serde(default)]
    pub concurrency_limit: bool,
}

/// A change to the request that may succeed where the plain one failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EscalationStep {
    /// Switch to this mode (`mode=js_rendering`).
    Mode(String),
    /// Move to the next proxy country in the profile's list (`proxy_country=next`).
    NextProxyCountry,
    /// Move to the next, more expensive tier (`tier=next`).
    NextTier,
}

/// An escalation step the profile format does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown escalation step {0:?}: expected \"mode=NAME\", \"proxy_country=next\" or \"tier=next\""
)]
pub struct UnknownStep(String);

impl TryFrom<String> for EscalationStep {
    type Error = UnknownStep;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.split_once('=') {
            Some(("mode", mode)) if !mode.is_empty() => Ok(Self::Mode(mode.to_owned())),
            Some(("proxy_country", "next")) => Ok(Self::NextProxyCountry),
            Some(("tier", "next")) => Ok(Self::NextTier),
            _ => Err(UnknownStep(text)),
        }
    }
}

impl From<EscalationStep> for String {
    fn from(step: EscalationStep) -> Self {
        match step {
            EscalationStep::Mode(mode) => format!("mode={mode}"),
            EscalationStep::NextProxyCountry => "proxy_country=next".to_owned(),
            EscalationStep::NextTier => "tier=next".to_owned(),
        }
    }
}

/// When a failure calls for an escalated retry, and which changes to make, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub code: Option<String>,
    /// How many failures in a row of this kind before escalating (a "stubborn" 502 is two).
    #[serde(default = "one")]
    pub after_consecutive: u32,
    pub steps: Vec<EscalationStep>,
    /// The contract prescribes it: escalate within the automatic retries. Otherwise it is offered.
    #[serde(default)]
    pub automatic: bool,
}

fn one() -> u32 {
    1
}

/// Plan limits the provider publishes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
}

impl Profile {
    /// How the usage call carries the key: its own `[usage_auth]`, else the scrape call's.
    #[must_use]
    pub fn usage_auth(&self) -> &Auth {
        self.usage_auth.as_ref().unwrap_or(&self.auth)
    }

    /// The code row for `code`, preferring the one listed under `status` (a code can appear under
    /// two statuses: AlterLab's `SESSION_EXPIRED` is 401 for tokens and 410 for cookies).
    #[must_use]
    pub fn error_rule(&self, code: &str, status: Option<u16>) -> Option<&ErrorRule> {
        let mut matching = self.errors.iter().filter(|rule| rule.code == code);
        let first = matching.next()?;
        if status.is_none_or(|status| first.status == status) {
            return Some(first);
        }
        matching
            .find(|rule| Some(rule.status) == status)
            .or(Some(first))
    }

    #[must_use]
    pub fn status_rule(&self, status: u16) -> Option<&StatusRule> {
        self.statuses.iter().find(|rule| rule.status == status)
    }

    /// The escalation rule matching a failure, code rules first.
    #[must_use]
    pub fn escalation_for(
        &self,
        status: Option<u16>,
        code: Option<&str>,
    ) -> Option<&EscalationRule> {
        let by_code = code.and_then(|code| {
            self.escalations
                .iter()
                .find(|rule| rule.code.as_deref() == Some(code))
        });
        by_code.or_else(|| {
            self.escalations
                .iter()
                .find(|rule| rule.code.is_none() && rule.status.is_some() && rule.status == status)
        })
    }
}
