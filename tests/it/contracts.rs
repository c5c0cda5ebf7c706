//! Every row of both contract documents (`../shared/contracts/omniscrape-errors.txt`,
//! `alterlab-error-codes.txt`) walked through `classify` and `policy::decide`.
//!
//! The expected values are transcribed from the documents into the tables below, never read back
//! from the profiles: a mistake in a profile makes a row here fail.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use omniscope::outcome::{
    BillingUnit, Fault, LimitKind, Outcome, ProviderWork, RefundAudit, RequestOptions, Retryable,
    Transport,
};
use omniscope::policy::{Decision, RetryPolicy, RetryState, decide};
use omniscope::provider::{
    AttemptMeta, DEFAULT_BODY_CAP, Exchange, JobPoll, MAX_WAIT, Profile, builtin_profiles,
    classify, parse_job_poll, parse_usage,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn profile(name: &str) -> Profile {
    builtin_profiles().get(name).unwrap().clone()
}

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/it/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Call<'a> {
    profile: &'a Profile,
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    attempt: u32,
    options: RequestOptions,
}

impl<'a> Call<'a> {
    fn new(profile: &'a Profile, status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            profile,
            status,
            headers: HeaderMap::new(),
            body: body.into(),
            attempt: 1,
            options: RequestOptions::default(),
        }
    }

    fn json(profile: &'a Profile, status: u16, body: &Value) -> Self {
        Self::new(profile, status, serde_json::to_vec(body).unwrap())
    }

    fn headers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.headers = headers(pairs);
        self
    }

    fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    fn options(mut self, options: RequestOptions) -> Self {
        self.options = options;
        self
    }

    fn outcome(&self) -> Outcome {
        let meta = AttemptMeta {
            probe_id: 7,
            attempt_id: u64::from(self.attempt),
            attempt: self.attempt,
            retry_of: (self.attempt > 1).then(|| u64::from(self.attempt - 1)),
            target_url: "https://example.com/".to_owned(),
            options: self.options.clone(),
            started_at: received_at() - TimeDelta::seconds(2),
        };
        classify(
            self.profile,
            &meta,
            &Exchange {
                transport: &Transport::Ok,
                status: Some(self.status),
                headers: &self.headers,
                body: &self.body,
                received_at: received_at(),
                latency: Duration::from_secs(2),
                body_cap: DEFAULT_BODY_CAP,
            },
        )
    }
}

fn decide_with(
    profile: &Profile,
    outcome: &Outcome,
    policy: &RetryPolicy,
    consecutive: u32,
    level: usize,
    jitter_unit: f64,
) -> Decision {
    decide(
        profile,
        policy,
        outcome,
        RetryState {
            consecutive_same_failure: consecutive,
            escalation_level: level,
        },
        received_at(),
        jitter_unit,
    )
}

fn decide_first(profile: &Profile, outcome: &Outcome) -> Decision {
    decide_with(profile, outcome, &RetryPolicy::default(), 1, 0, 0.0)
}

/// The decision's kind, for the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Done,
    Retry,
    GiveUp,
    Pause,
}

fn kind(decision: &Decision) -> Kind {
    match decision {
        Decision::Done => Kind::Done,
        Decision::Retry { .. } => Kind::Retry,
        Decision::GiveUp { .. } => Kind::GiveUp,
        Decision::PauseProvider { .. } => Kind::Pause,
    }
}

fn retry_after(decision: &Decision) -> Duration {
    match decision {
        Decision::Retry { after, .. } => *after,
        other => panic!("expected a retry, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// OmniScrape: the errors page

/// One row of the errors page's status table, with omniscope's reading of it.
struct StatusRow {
    status: u16,
    /// The "What to do" column, verbatim.
    advice: &'static str,
    fault: Fault,
    retryable: Retryable,
    account_stop: bool,
    decision: Kind,
}

/// "Status codes" table of omniscrape-errors.txt. Every failure row is free ("Failed core unlock
/// requests are not billed"), so refund_expected is true for all of them.
const OMNI_STATUSES: &[StatusRow] = &[
    StatusRow {
        status: 400,
        advice: "A parameter is missing or invalid. Fix the body.",
        fault: Fault::Client,
        retryable: Retryable::No,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    StatusRow {
        status: 401,
        advice: "API key missing or invalid. Check the X-API-Key header.",
        fault: Fault::Account,
        retryable: Retryable::No,
        account_stop: true,
        decision: Kind::Pause,
    },
    StatusRow {
        status: 402,
        advice: "Balance exhausted, monthly quota used up, or direct proxy locked on trial. Check the code field.",
        fault: Fault::Account,
        retryable: Retryable::No,
        account_stop: true,
        decision: Kind::Pause,
    },
    StatusRow {
        status: 429,
        advice: "You hit a rate limit. Back off and retry.",
        fault: Fault::RateLimit,
        retryable: Retryable::AfterDelay,
        account_stop: false,
        decision: Kind::Retry,
    },
    StatusRow {
        status: 500,
        advice: "Transient on our side. Retry with backoff.",
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        account_stop: false,
        decision: Kind::Retry,
    },
    StatusRow {
        status: 502,
        advice: "We could not unlock the target. Try js_rendering or a different proxy country.",
        fault: Fault::Target,
        retryable: Retryable::Yes,
        account_stop: false,
        decision: Kind::Retry,
    },
    StatusRow {
        status: 503,
        advice: "Maintenance or overload. Retry shortly.",
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        account_stop: false,
        decision: Kind::Retry,
    },
];

struct CodeRow {
    code: &'static str,
    status: u16,
    fault: Fault,
    retryable: Retryable,
    refunded: bool,
    account_stop: bool,
    /// A phrase the advice must carry (the contract's solution, verbatim where it has one).
    advice: &'static str,
    decision: Kind,
}

/// "Structured error codes" table of omniscrape-errors.txt.
const OMNI_CODES: &[CodeRow] = &[
    CodeRow {
        code: "CONCURRENCY_LIMIT",
        status: 429,
        fault: Fault::RateLimit,
        retryable: Retryable::AfterDelay,
        refunded: true,
        account_stop: false,
        advice: "Lower concurrency or upgrade.",
        decision: Kind::Retry,
    },
    CodeRow {
        code: "MONTHLY_QUOTA_EXCEEDED",
        status: 402,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: true,
        account_stop: true,
        advice: "Upgrade or wait for the reset.",
        decision: Kind::Pause,
    },
    CodeRow {
        code: "PROXY_LOCKED",
        status: 402,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: true,
        account_stop: true,
        advice: "activate PAYG ($5 minimum top-up)",
        decision: Kind::Pause,
    },
];

#[test]
fn omniscrape_profile_lists_exactly_the_contract_rows() {
    let omni = profile("omniscrape");
    let mut statuses: Vec<u16> = omni.statuses.iter().map(|rule| rule.status).collect();
    statuses.sort_unstable();
    // 200 from the status table, 202 from the async-jobs page (NOTES.md).
    let mut expected: Vec<u16> = OMNI_STATUSES.iter().map(|row| row.status).collect();
    expected.extend([200, 202]);
    expected.sort_unstable();
    assert_eq!(statuses, expected);

    let mut codes: Vec<(String, u16)> = omni
        .errors
        .iter()
        .map(|rule| (rule.code.clone(), rule.status))
        .collect();
    codes.sort();
    let mut expected: Vec<(String, u16)> = OMNI_CODES
        .iter()
        .map(|row| (row.code.to_owned(), row.status))
        .collect();
    expected.sort();
    assert_eq!(codes, expected);
}

#[test]
fn omniscrape_every_status_row() {
    let omni = profile("omniscrape");
    for row in OMNI_STATUSES {
        let body = json!({"success": false, "error": format!("HTTP {} from the API", row.status)});
        let outcome = Call::json(&omni, row.status, &body).outcome();
        let at = format!("omniscrape status {}", row.status);
        assert_eq!(outcome.api_status, Some(row.status), "{at}");
        assert!(!outcome.api_success, "{at}");
        assert!(!outcome.succeeded(), "{at}");
        assert_eq!(outcome.error_code, None, "{at}");
        assert_eq!(
            outcome.message.as_deref(),
            Some(format!("HTTP {} from the API", row.status).as_str()),
            "{at}"
        );
        assert_eq!(outcome.class.fault, row.fault, "{at}");
        assert_eq!(outcome.class.retryable, row.retryable, "{at}");
        assert!(outcome.class.refund_expected, "{at}: failures are free");
        assert_eq!(outcome.class.account_stop, row.account_stop, "{at}");
        assert_eq!(outcome.class.advice.as_deref(), Some(row.advice), "{at}");
        assert_eq!(outcome.billing.unit, BillingUnit::Usd, "{at}");
        assert_eq!(outcome.billing.audit, RefundAudit::Consistent, "{at}");
        let decision = decide_first(&omni, &outcome);
        assert_eq!(kind(&decision), row.decision, "{at}: {decision:?}");
        if row.decision == Kind::Retry {
            assert_eq!(retry_after(&decision), Duration::from_secs(1), "{at}");
        }
        if let Decision::PauseProvider { reason } = &decision {
            assert!(
                reason.starts_with(&row.status.to_string()),
                "{at}: {reason}"
            );
        }
    }
}

#[test]
fn omniscrape_every_structured_code() {
    let omni = profile("omniscrape");
    for row in OMNI_CODES {
        let message = format!("{} explained", row.code);
        let body = json!({"success": false, "error": message, "code": row.code});
        let outcome = Call::json(&omni, row.status, &body)
            .headers(&[("Retry-After", "3")])
            .outcome();
        let at = format!("omniscrape {}", row.code);
        assert_eq!(outcome.error_code.as_deref(), Some(row.code), "{at}");
        assert_eq!(outcome.message.as_deref(), Some(message.as_str()), "{at}");
        assert_eq!(outcome.class.fault, row.fault, "{at}");
        assert_eq!(outcome.class.retryable, row.retryable, "{at}");
        assert_eq!(outcome.class.refund_expected, row.refunded, "{at}");
        assert_eq!(outcome.class.account_stop, row.account_stop, "{at}");
        let advice = outcome.class.advice.clone().unwrap_or_default();
        assert!(
            advice.to_lowercase().contains(&row.advice.to_lowercase()),
            "{at}: {advice}"
        );
        let decision = decide_first(&omni, &outcome);
        assert_eq!(kind(&decision), row.decision, "{at}: {decision:?}");
        match &decision {
            Decision::Retry { after, .. } => {
                assert_eq!(*after, Duration::from_secs(3), "{at}: Retry-After wins")
            }
            Decision::PauseProvider { reason } => {
                assert!(reason.starts_with(row.code), "{at}: {reason}")
            }
            _ => {}
        }
    }
}

#[test]
fn omniscrape_concurrency_limit_is_a_concurrency_limit() {
    let omni = profile("omniscrape");
    let outcome = Call::new(&omni, 429, fixture("omniscrape/concurrency_limit.json"))
        .headers(&[("Retry-After", "2")])
        .outcome();
    assert_eq!(outcome.class.limit, Some(LimitKind::Concurrency));
    assert!(outcome.throttled());
    assert_eq!(outcome.rate_limit.retry_after, Some(Duration::from_secs(2)));
    assert_eq!(
        outcome.message.as_deref(),
        Some("Concurrent request limit reached for your plan. Retry shortly.")
    );
}

#[test]
fn omniscrape_fixtures_for_quota_and_proxy_lock_pause_the_provider() {
    let omni = profile("omniscrape");
    for (file, code) in [
        ("omniscrape/monthly_quota.json", "MONTHLY_QUOTA_EXCEEDED"),
        ("omniscrape/proxy_locked.json", "PROXY_LOCKED"),
    ] {
        let outcome = Call::new(&omni, 402, fixture(file)).outcome();
        assert_eq!(outcome.error_code.as_deref(), Some(code));
        match decide_first(&omni, &outcome) {
            Decision::PauseProvider { reason } => assert!(reason.starts_with(code), "{reason}"),
            other => panic!("{file}: {other:?}"),
        }
    }
    let outcome = Call::new(&omni, 401, fixture("omniscrape/unauthorized.json")).outcome();
    assert!(matches!(
        decide_first(&omni, &outcome),
        Decision::PauseProvider { .. }
    ));
}

#[test]
fn omniscrape_success_reads_both_layers_and_the_charge() {
    let omni = profile("omniscrape");
    let outcome = Call::new(&omni, 200, fixture("omniscrape/success.json")).outcome();
    assert!(outcome.api_success);
    assert_eq!(outcome.target_status, Some(200));
    assert!(outcome.succeeded());
    assert_eq!(outcome.class.fault, Fault::None);
    assert_eq!(outcome.billing.charged, Some(0.0035));
    assert_eq!(outcome.billing.unit, BillingUnit::Usd);
    assert_eq!(outcome.request_id.as_deref(), Some("os_7f3a9c21"));
    assert_eq!(outcome.billing.audit, RefundAudit::Consistent);
    assert_eq!(decide_first(&omni, &outcome), Decision::Done);
}

/// The errors page's own example body, every field of it read: the message, and the metadata's
/// elapsed time and solver flag (the page gives no status for it; an unlock failure's 502 here).
#[test]
fn omniscrape_the_errors_page_example_is_read_whole() {
    let omni = profile("omniscrape");
    let failed = Call::new(&omni, 502, fixture("omniscrape/failure_403.json")).outcome();
    assert!(!failed.api_success);
    assert_eq!(
        failed.message.as_deref(),
        Some("Target returned 403 after solver attempts")
    );
    assert_eq!(
        failed.provider_work,
        ProviderWork {
            elapsed_s: Some(12.4),
            solver_used: Some(true),
        }
    );
    let ok = Call::new(&omni, 200, fixture("omniscrape/success.json")).outcome();
    assert_eq!(ok.provider_work.elapsed_s, Some(1.82));
    assert_eq!(ok.provider_work.solver_used, Some(false));
    // Absurd or unreadable metadata says nothing.
    let body = br#"{"success": false, "error": "x", "metadata": {"elapsed_time": -3, "solver_used": "maybe"}}"#;
    let odd = Call::new(&omni, 502, body.to_vec()).outcome();
    assert_eq!(odd.provider_work, ProviderWork::default());
}

// ---------------------------------------------------------------------------------------------
// AlterLab: the error-codes reference

/// "HTTP Status Codes" table of alterlab-error-codes.txt, with the refund policy applied: site
/// blocks (403), timeouts, extraction failures (422), unsupported types (415), size (413, whose
/// code CONTENT_TOO_LARGE is "Refunded") and 5xx are refunded; keys, rate limits and parameters
/// are not.
struct AlterStatusRow {
    status: u16,
    fault: Fault,
    retryable: Retryable,
    refunded: bool,
    account_stop: bool,
    decision: Kind,
}

const ALTER_STATUSES: &[AlterStatusRow] = &[
    AlterStatusRow {
        status: 400,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 401,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        decision: Kind::Pause,
    },
    AlterStatusRow {
        status: 402,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        decision: Kind::Pause,
    },
    AlterStatusRow {
        status: 403,
        fault: Fault::Target,
        retryable: Retryable::Maybe,
        refunded: true,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 404,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 409,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 413,
        fault: Fault::Target,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 415,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 422,
        fault: Fault::Target,
        retryable: Retryable::Maybe,
        refunded: true,
        account_stop: false,
        decision: Kind::GiveUp,
    },
    AlterStatusRow {
        status: 429,
        fault: Fault::RateLimit,
        retryable: Retryable::AfterDelay,
        refunded: false,
        account_stop: false,
        decision: Kind::Retry,
    },
    AlterStatusRow {
        status: 500,
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        decision: Kind::Retry,
    },
    AlterStatusRow {
        status: 502,
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        decision: Kind::Retry,
    },
    AlterStatusRow {
        status: 503,
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        decision: Kind::Retry,
    },
    AlterStatusRow {
        status: 504,
        fault: Fault::Provider,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        decision: Kind::Retry,
    },
];

/// Every code of alterlab-error-codes.txt. `advice` is the page's "Solution", verbatim.
const ALTER_CODES: &[CodeRow] = &[
    // Scraping errors: all "Refunded".
    CodeRow {
        code: "BLOCKED_BY_ANTIBOT",
        status: 403,
        fault: Fault::Target,
        retryable: Retryable::Maybe,
        refunded: true,
        account_stop: false,
        advice: "Try using max_tier: \"4\" to enable CAPTCHA solving, or contact support for sites with advanced protection.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "CHALLENGE_DETECTED",
        status: 403,
        fault: Fault::Target,
        retryable: Retryable::Maybe,
        refunded: true,
        account_stop: false,
        advice: "Enable JavaScript rendering with mode: \"js\" or increase max tier.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "TIMEOUT",
        status: 504,
        fault: Fault::Target,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        advice: "Increase timeout parameter or use async mode with polling.",
        decision: Kind::Retry,
    },
    CodeRow {
        code: "CONTENT_TOO_LARGE",
        status: 413,
        fault: Fault::Target,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        advice: "Target a specific section of the page or use a different scraping strategy.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "UNSUPPORTED_CONTENT_TYPE",
        status: 415,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        advice: "Use the appropriate mode - pdf for PDFs, ocr for images.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "EXTRACTION_FAILED",
        status: 422,
        fault: Fault::Target,
        retryable: Retryable::Maybe,
        refunded: true,
        account_stop: false,
        advice: "Check if the URL returns valid HTML/content. Try a different extraction mode.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "REQUIRES_AUTH",
        status: 401,
        fault: Fault::Target,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        advice: "This URL is behind a login wall and cannot be scraped without credentials.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "PAYWALL_DETECTED",
        status: 402,
        fault: Fault::Target,
        retryable: Retryable::No,
        refunded: true,
        account_stop: false,
        advice: "Content requires paid subscription. Cannot be accessed via scraping.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "NETWORK_ERROR",
        status: 503,
        fault: Fault::Target,
        retryable: Retryable::Yes,
        refunded: true,
        account_stop: false,
        advice: "Verify the URL is valid and the site is online. Retry after a brief delay.",
        decision: Kind::Retry,
    },
    // Authentication errors: not refunded ("Invalid API key"); the key is dead for every request.
    CodeRow {
        code: "INVALID_API_KEY",
        status: 401,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        advice: "Check that your API key starts with sk_live_ or sk_test_ and is active in your dashboard.",
        decision: Kind::Pause,
    },
    CodeRow {
        code: "MISSING_API_KEY",
        status: 401,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        advice: "Include the X-API-Key header with your API key.",
        decision: Kind::Pause,
    },
    CodeRow {
        code: "SESSION_EXPIRED",
        status: 401,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        advice: "Log in again to get a fresh session token.",
        decision: Kind::Pause,
    },
    // Session errors (BYOS).
    CodeRow {
        code: "SESSION_NOT_FOUND",
        status: 404,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Verify the UUID. Use GET /sessions to list your valid sessions.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "SESSION_EXPIRED",
        status: 410,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Log in to the target site again and call POST /sessions/:id/refresh with fresh cookies.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "SESSION_DOMAIN_MISMATCH",
        status: 400,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Create a separate session for each target domain.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "SESSION_INACTIVE",
        status: 410,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Create a new session with fresh cookies.",
        decision: Kind::GiveUp,
    },
    // A 429 about a count of stored sessions: waiting frees none, so it is not retried.
    CodeRow {
        code: "SESSION_LIMIT_REACHED",
        status: 429,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Delete unused or expired sessions. Use GET /sessions?status=expired to find candidates for cleanup.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "SESSION_COOKIES_CONFLICT",
        status: 400,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Use either session_id (for stored sessions) or cookies (for inline one-off use), not both.",
        decision: Kind::GiveUp,
    },
    // Billing errors.
    CodeRow {
        code: "INSUFFICIENT_CREDITS",
        status: 402,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        advice: "Check your balance with GET /api/v1/usage and upgrade your plan or add funds.",
        decision: Kind::Pause,
    },
    CodeRow {
        code: "EXCEEDS_COST_LIMIT",
        status: 400,
        fault: Fault::Client,
        retryable: Retryable::No,
        refunded: false,
        account_stop: false,
        advice: "Increase max_credits or use a simpler scraping mode.",
        decision: Kind::GiveUp,
    },
    CodeRow {
        code: "SUBSCRIPTION_INACTIVE",
        status: 402,
        fault: Fault::Account,
        retryable: Retryable::No,
        refunded: false,
        account_stop: true,
        advice: "Check your billing status in the dashboard and update payment method if needed.",
        decision: Kind::Pause,
    },
    // Rate limit errors: not refunded ("Rate limit exceeded").
    CodeRow {
        code: "RATE_LIMIT_EXCEEDED",
        status: 429,
        fault: Fault::RateLimit,
        retryable: Retryable::AfterDelay,
        refunded: false,
        account_stop: false,
        advice: "Check the X-RateLimit-Reset header for when to retry.",
        decision: Kind::Retry,
    },
];

#[test]
fn alterlab_profile_lists_exactly_the_contract_rows() {
    let alter = profile("alterlab");
    let mut statuses: Vec<u16> = alter.statuses.iter().map(|rule| rule.status).collect();
    statuses.sort_unstable();
    let mut expected: Vec<u16> = ALTER_STATUSES.iter().map(|row| row.status).collect();
    expected.extend([200, 202, 204]);
    expected.sort_unstable();
    assert_eq!(statuses, expected);

    let mut codes: Vec<(String, u16)> = alter
        .errors
        .iter()
        .map(|rule| (rule.code.clone(), rule.status))
        .collect();
    codes.sort();
    let mut expected: Vec<(String, u16)> = ALTER_CODES
        .iter()
        .map(|row| (row.code.to_owned(), row.status))
        .collect();
    expected.sort();
    assert_eq!(codes, expected);
}

#[test]
fn alterlab_every_status_row_without_a_code() {
    let alter = profile("alterlab");
    for row in ALTER_STATUSES {
        // An error body whose code the profile does not know: the status row decides.
        let mut body = json!({
            "error": "SOMETHING_NEW",
            "message": format!("HTTP {}", row.status),
            "request_id": format!("req_{}", row.status),
            "details": {},
        });
        if row.refunded {
            body["billing"] = json!({"total_credits": 2, "refunded": true});
        }
        let outcome = Call::json(&alter, row.status, &body).outcome();
        let at = format!("alterlab status {}", row.status);
        assert!(!outcome.api_success, "{at}");
        assert_eq!(outcome.error_code.as_deref(), Some("SOMETHING_NEW"), "{at}");
        assert_eq!(
            outcome.request_id.as_deref(),
            Some(format!("req_{}", row.status).as_str()),
            "{at}"
        );
        assert_eq!(outcome.class.fault, row.fault, "{at}");
        assert_eq!(outcome.class.retryable, row.retryable, "{at}");
        assert_eq!(outcome.class.refund_expected, row.refunded, "{at}");
        assert_eq!(outcome.class.account_stop, row.account_stop, "{at}");
        assert_eq!(outcome.billing.unit, BillingUnit::Microcents, "{at}");
        assert_eq!(outcome.billing.audit, RefundAudit::Consistent, "{at}");
        if row.refunded {
            assert_eq!(outcome.billing.net(), 0.0, "{at}");
        }
        let decision = decide_first(&alter, &outcome);
        assert_eq!(kind(&decision), row.decision, "{at}: {decision:?}");
        if row.decision == Kind::Retry {
            assert_eq!(retry_after(&decision), Duration::from_secs(1), "{at}");
        }
    }
}

#[test]
fn alterlab_every_code() {
    let alter = profile("alterlab");
    for row in ALTER_CODES {
        let message = format!("{} explained", row.code);
        let mut body = json!({
            "error": row.code,
            "message": message,
            "request_id": "req_550e8400-e29b-41d4-a716-446655440000",
            "details": {},
        });
        if row.refunded {
            body["billing"] = json!({"total_credits": 3, "refunded": 3});
        }
        let outcome = Call::json(&alter, row.status, &body).outcome();
        let at = format!("alterlab {} ({})", row.code, row.status);
        assert_eq!(outcome.error_code.as_deref(), Some(row.code), "{at}");
        assert_eq!(outcome.message.as_deref(), Some(message.as_str()), "{at}");
        assert_eq!(
            outcome.request_id.as_deref(),
            Some("req_550e8400-e29b-41d4-a716-446655440000")
        );
        assert_eq!(outcome.class.fault, row.fault, "{at}");
        assert_eq!(outcome.class.retryable, row.retryable, "{at}");
        assert_eq!(outcome.class.refund_expected, row.refunded, "{at}");
        assert_eq!(outcome.class.account_stop, row.account_stop, "{at}");
        assert_eq!(outcome.class.advice.as_deref(), Some(row.advice), "{at}");
        assert_eq!(outcome.billing.audit, RefundAudit::Consistent, "{at}");
        let decision = decide_first(&alter, &outcome);
        assert_eq!(kind(&decision), row.decision, "{at}: {decision:?}");
        if let Decision::PauseProvider { reason } = &decision {
            assert!(reason.starts_with(row.code), "{at}: {reason}");
        }
    }
}

#[test]
fn alterlab_target_side_401_and_402_are_refunded_and_do_not_pause() {
    let alter = profile("alterlab");
    for (code, status) in [("REQUIRES_AUTH", 401), ("PAYWALL_DETECTED", 402)] {
        let body = json!({"error": code, "message": "m", "request_id": "r", "details": {},
                          "billing": {"total_credits": 1, "refunded": true}});
        let outcome = Call::json(&alter, status, &body).outcome();
        assert!(!outcome.class.account_stop, "{code}");
        assert_eq!(outcome.class.fault, Fault::Target, "{code}");
        let decision = decide_first(&alter, &outcome);
        assert!(
            matches!(decision, Decision::GiveUp { .. }),
            "{code}: {decision:?}"
        );
    }
    // The same statuses with an account code do pause.
    for (code, status) in [("INVALID_API_KEY", 401), ("INSUFFICIENT_CREDITS", 402)] {
        let body = json!({"error": code, "message": "m", "request_id": "r", "details": {}});
        let outcome = Call::json(&alter, status, &body).outcome();
        assert!(matches!(
            decide_first(&alter, &outcome),
            Decision::PauseProvider { .. }
        ));
    }
}

#[test]
fn a_401_or_402_carrying_another_rows_code_or_an_unknown_one_is_an_account_stop() {
    // Issue 13, item 1: the status's account stop holds whatever code the body carries, unless
    // the code is one of that status's own rows (AlterLab's target-side REQUIRES_AUTH 401 and
    // PAYWALL_DETECTED 402, tested above).
    let omni = profile("omniscrape");
    let alter = profile("alterlab");
    let cases: [(&Profile, u16, Value); 8] = [
        (
            &omni,
            401,
            json!({"success": false, "error": "x", "code": "CONCURRENCY_LIMIT"}),
        ),
        (
            &omni,
            402,
            json!({"success": false, "error": "x", "code": "CONCURRENCY_LIMIT"}),
        ),
        (
            &omni,
            401,
            json!({"success": false, "error": "x", "code": "NEVER_HEARD_OF_IT"}),
        ),
        (
            &alter,
            401,
            json!({"error": "NETWORK_ERROR", "message": "m"}),
        ),
        (
            &alter,
            402,
            json!({"error": "RATE_LIMIT_EXCEEDED", "message": "m"}),
        ),
        (
            &alter,
            402,
            json!({"error": "REQUIRES_AUTH", "message": "m"}),
        ),
        (
            &alter,
            401,
            json!({"error": "PAYWALL_DETECTED", "message": "m"}),
        ),
        (
            &alter,
            401,
            json!({"error": "SOMETHING_NEW", "message": "m"}),
        ),
    ];
    for (profile, status, body) in cases {
        let outcome = Call::json(profile, status, &body).outcome();
        let name = &profile.name;
        assert!(outcome.class.account_stop, "{name} {status} {body}");
        assert_eq!(
            outcome.class.fault,
            Fault::Account,
            "{name} {status} {body}"
        );
        assert!(
            !outcome.class.retryable.allows_plain_retry(),
            "{name} {status} {body}"
        );
        assert!(
            matches!(
                decide_first(profile, &outcome),
                Decision::PauseProvider { .. }
            ),
            "{name} {status} {body}"
        );
    }
}

#[test]
fn a_401_or_402_stops_even_for_a_profile_without_their_rows() {
    let mut bare = profile("alterlab");
    bare.statuses
        .retain(|rule| rule.status != 401 && rule.status != 402);
    for status in [401, 402] {
        let outcome = Call::json(&bare, status, &json!({"error": "WHO_KNOWS"})).outcome();
        assert!(outcome.class.account_stop, "{status}");
        assert!(matches!(
            decide_first(&bare, &outcome),
            Decision::PauseProvider { .. }
        ));
    }
}

#[test]
fn an_accepted_job_is_never_resubmitted_automatically() {
    // Issue 13, item 2: whatever the job's outcome says about retrying (a poll that failed with
    // a 503 three times, a result the provider marks retryable), the scrape is not sent again.
    let alter = profile("alterlab");
    let mut outcome = Call::json(
        &alter,
        503,
        &json!({"error": "NETWORK_ERROR", "message": "m"}),
    )
    .outcome();
    assert!(outcome.class.retryable.allows_plain_retry());
    assert!(matches!(
        decide_first(&alter, &outcome),
        Decision::Retry { .. }
    ));
    outcome.job = Some(omniscope::outcome::JobRef {
        id: "job-1".to_owned(),
        poll_path: "/api/v1/jobs/job-1".to_owned(),
    });
    let decision = decide_first(&alter, &outcome);
    assert!(matches!(decision, Decision::GiveUp { .. }), "{decision:?}");

    let mut queued = Call::json(&alter, 202, &json!({"job_id": "job-2"})).outcome();
    queued.class.retryable = Retryable::Yes;
    queued.api_success = false;
    queued.job = None;
    let decision = decide_first(&alter, &queued);
    assert!(matches!(decision, Decision::GiveUp { .. }), "{decision:?}");
}

#[test]
fn alterlab_contract_example_body() {
    let alter = profile("alterlab");
    let outcome = Call::new(&alter, 402, fixture("alterlab/insufficient_credits.json")).outcome();
    assert_eq!(outcome.error_code.as_deref(), Some("INSUFFICIENT_CREDITS"));
    assert_eq!(
        outcome.message.as_deref(),
        Some("Your account has insufficient balance for this request")
    );
    assert_eq!(
        outcome.request_id.as_deref(),
        Some("req_550e8400-e29b-41d4-a716-446655440000")
    );
    match decide_first(&alter, &outcome) {
        Decision::PauseProvider { reason } => {
            assert!(reason.starts_with("INSUFFICIENT_CREDITS"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn alterlab_success_reads_credits_and_headers() {
    let alter = profile("alterlab");
    let outcome = Call::new(&alter, 200, fixture("alterlab/success.json"))
        .headers(&[
            ("X-RateLimit-Limit", "30"),
            ("X-RateLimit-Remaining", "29"),
            ("X-RateLimit-Reset", "1795435260"),
            ("X-Concurrency-Limit", "3"),
            ("X-Concurrency-Current", "1"),
            ("X-Request-Id", "req_header"),
        ])
        .outcome();
    assert!(outcome.succeeded());
    assert_eq!(outcome.target_status, Some(200));
    assert_eq!(outcome.billing.charged, Some(1.0));
    assert_eq!(outcome.billing.unit, BillingUnit::Microcents);
    assert_eq!(outcome.rate_limit.limit, Some(30));
    assert_eq!(outcome.rate_limit.remaining, Some(29));
    // 1795435260 is 2026-11-23T12:01:00Z.
    assert_eq!(
        outcome.rate_limit.reset_at,
        Some(received_at() + TimeDelta::seconds(60))
    );
    assert_eq!(outcome.concurrency.limit, Some(3));
    assert_eq!(outcome.concurrency.current, Some(1));
    assert_eq!(outcome.request_id.as_deref(), Some("req_header"));
    assert_eq!(decide_first(&alter, &outcome), Decision::Done);
}

// ---------------------------------------------------------------------------------------------
// Back-off, Retry-After, rate-limit resets, attempts

#[test]
fn backoff_doubles_with_at_most_a_quarter_of_jitter() {
    let policy = RetryPolicy::default();
    for profile in [profile("omniscrape"), profile("alterlab")] {
        let statuses: &[u16] = if profile.name == "alterlab" {
            &[429, 500, 502, 503, 504]
        } else {
            &[429, 500, 502, 503]
        };
        for &status in statuses {
            for (attempt, base) in [(1, 1), (2, 2), (3, 4)] {
                let outcome = Call::json(&profile, status, &json!({"success": false}))
                    .attempt(attempt)
                    .outcome();
                let base = Duration::from_secs(base);
                // The 502 escalation is a retry too; a fresh failure kind avoids it here.
                let low = decide_with(&profile, &outcome, &policy, 1, 0, 0.0);
                assert_eq!(
                    retry_after(&low),
                    base,
                    "{} {status} #{attempt}",
                    profile.name
                );
                let high = retry_after(&decide_with(&profile, &outcome, &policy, 1, 0, 0.999));
                assert!(
                    high > base,
                    "{} {status} #{attempt}: {high:?}",
                    profile.name
                );
                assert!(
                    high <= base.mul_f64(1.25),
                    "{} {status} #{attempt}: {high:?}",
                    profile.name
                );
            }
        }
    }
}

#[test]
fn at_most_four_attempts() {
    let omni = profile("omniscrape");
    let outcome = Call::json(&omni, 500, &json!({"success": false, "error": "boom"}))
        .attempt(4)
        .outcome();
    match decide_first(&omni, &outcome) {
        Decision::GiveUp { reason, .. } => assert!(reason.contains("4 attempts"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let outcome = Call::json(&omni, 500, &json!({"success": false}))
        .attempt(3)
        .outcome();
    assert!(matches!(
        decide_first(&omni, &outcome),
        Decision::Retry { .. }
    ));
}

#[test]
fn never_retried_statuses() {
    for profile in [profile("omniscrape"), profile("alterlab")] {
        for status in [400, 401, 402, 404, 409, 413, 415] {
            let outcome = Call::json(&profile, status, &json!({"success": false, "error": "x"}))
                .headers(&[("Retry-After", "1")])
                .outcome();
            let decision = decide_first(&profile, &outcome);
            assert!(
                !matches!(decision, Decision::Retry { .. }),
                "{} {status}: {decision:?}",
                profile.name
            );
        }
    }
}

fn omni_429(retry_after: &str, attempt: u32) -> (Profile, Outcome) {
    let omni = profile("omniscrape");
    let outcome = Call::new(&omni, 429, fixture("omniscrape/concurrency_limit.json"))
        .headers(&[("Retry-After", retry_after)])
        .attempt(attempt)
        .outcome();
    (omni, outcome)
}

#[test]
fn retry_after_in_seconds_and_as_a_date() {
    let (omni, outcome) = omni_429("30", 1);
    assert_eq!(
        retry_after(&decide_first(&omni, &outcome)),
        Duration::from_secs(30)
    );

    let date = httpdate::fmt_http_date((received_at() + TimeDelta::seconds(90)).into());
    let (omni, outcome) = omni_429(&date, 1);
    assert_eq!(
        retry_after(&decide_first(&omni, &outcome)),
        Duration::from_secs(90)
    );

    // A past date is zero: the back-off stands.
    let past = httpdate::fmt_http_date((received_at() - TimeDelta::seconds(90)).into());
    let (omni, outcome) = omni_429(&past, 2);
    assert_eq!(outcome.rate_limit.retry_after, Some(Duration::ZERO));
    assert_eq!(
        retry_after(&decide_first(&omni, &outcome)),
        Duration::from_secs(2)
    );

    // Absurd values are capped.
    let (omni, outcome) = omni_429("99999999999", 1);
    assert_eq!(outcome.rate_limit.retry_after, Some(MAX_WAIT));
    assert_eq!(retry_after(&decide_first(&omni, &outcome)), MAX_WAIT);

    // Shorter than the back-off: the back-off stands.
    let (omni, outcome) = omni_429("1", 3);
    assert_eq!(
        retry_after(&decide_first(&omni, &outcome)),
        Duration::from_secs(4)
    );

    // Garbage is ignored, not zero.
    let (omni, outcome) = omni_429("soon", 1);
    assert_eq!(outcome.rate_limit.retry_after, None);
    assert_eq!(
        retry_after(&decide_first(&omni, &outcome)),
        Duration::from_secs(1)
    );
}

#[test]
fn rate_limit_reset_is_honoured_when_longer() {
    let alter = profile("alterlab");
    let reset = (received_at() + TimeDelta::seconds(45))
        .timestamp()
        .to_string();
    let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited.json"))
        .headers(&[
            ("X-RateLimit-Limit", "30"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", &reset),
        ])
        .outcome();
    assert_eq!(outcome.class.limit, Some(LimitKind::Rate));
    assert_eq!(outcome.rate_limit.remaining, Some(0));
    assert_eq!(
        retry_after(&decide_first(&alter, &outcome)),
        Duration::from_secs(45)
    );

    // Retry-After longer than the reset: the longer one.
    let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited.json"))
        .headers(&[("X-RateLimit-Reset", &reset), ("Retry-After", "50")])
        .outcome();
    assert_eq!(
        retry_after(&decide_first(&alter, &outcome)),
        Duration::from_secs(50)
    );

    // A reset already past does not stretch the back-off.
    let past = (received_at() - TimeDelta::seconds(45))
        .timestamp()
        .to_string();
    let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited.json"))
        .headers(&[("X-RateLimit-Reset", &past)])
        .attempt(2)
        .outcome();
    assert_eq!(outcome.rate_limit.reset_at, Some(received_at()));
    assert_eq!(
        retry_after(&decide_first(&alter, &outcome)),
        Duration::from_secs(2)
    );

    // A negative or non-numeric reset is ignored.
    for garbage in ["-5", "tomorrow", "1.5e9"] {
        let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited.json"))
            .headers(&[
                ("X-RateLimit-Reset", garbage),
                ("X-RateLimit-Remaining", "-1"),
            ])
            .outcome();
        assert_eq!(outcome.rate_limit.reset_at, None, "{garbage}");
        assert_eq!(outcome.rate_limit.remaining, None, "{garbage}");
    }
}

// ---------------------------------------------------------------------------------------------
// Escalation

#[test]
fn omniscrape_persistent_502_escalates_to_js_then_another_country() {
    let omni = profile("omniscrape");
    let policy = RetryPolicy::default();
    let body = json!({"success": false, "error": "We could not unlock the target."});
    let base = RequestOptions {
        mode: Some("auto".to_owned()),
        proxy_country: Some("us".to_owned()),
        ..RequestOptions::default()
    };

    // Attempt 1: a first 502 is a plain retry.
    let first = Call::json(&omni, 502, &body)
        .options(base.clone())
        .outcome();
    match decide_with(&omni, &first, &policy, 1, 0, 0.0) {
        Decision::Retry {
            options,
            escalation,
            after,
            ..
        } => {
            assert_eq!(options, base);
            assert_eq!(escalation, None);
            assert_eq!(after, Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }

    // Attempt 2: the 502 persists: js_rendering, automatically.
    let second = Call::json(&omni, 502, &body)
        .options(base.clone())
        .attempt(2)
        .outcome();
    let level = match decide_with(&omni, &second, &policy, 2, 0, 0.0) {
        Decision::Retry {
            options,
            escalation: Some(escalation),
            after,
            ..
        } => {
            assert_eq!(options.mode.as_deref(), Some("js_rendering"));
            assert_eq!(options.proxy_country.as_deref(), Some("us"));
            assert_eq!(after, Duration::from_secs(2));
            escalation.level
        }
        other => panic!("{other:?}"),
    };

    // Attempt 3, already in js_rendering: another proxy country.
    let js = RequestOptions {
        mode: Some("js_rendering".to_owned()),
        ..base.clone()
    };
    let third = Call::json(&omni, 502, &body)
        .options(js.clone())
        .attempt(3)
        .outcome();
    match decide_with(&omni, &third, &policy, 3, level, 0.0) {
        Decision::Retry {
            options,
            escalation: Some(_),
            ..
        } => {
            assert_eq!(options.mode.as_deref(), Some("js_rendering"));
            let country = options.proxy_country.unwrap();
            assert_ne!(country, "us");
        }
        other => panic!("{other:?}"),
    }

    // Attempt 4: out of attempts.
    let fourth = Call::json(&omni, 502, &body)
        .options(js)
        .attempt(4)
        .outcome();
    assert!(matches!(
        decide_with(&omni, &fourth, &policy, 4, 2, 0.0),
        Decision::GiveUp { .. }
    ));
}

#[test]
fn alterlab_challenge_and_block_escalations_are_offered_not_automatic() {
    let alter = profile("alterlab");
    let cases = [
        ("alterlab/challenge.json", "mode", "js"),
        ("alterlab/blocked_refunded.json", "tier", "2"),
    ];
    for (file, field, value) in cases {
        let outcome = Call::new(&alter, 403, fixture(file)).outcome();
        let read = |options: &RequestOptions| match field {
            "mode" => options.mode.clone(),
            _ => options.tier.clone(),
        };
        match decide_first(&alter, &outcome) {
            Decision::GiveUp {
                offer: Some(offer), ..
            } => assert_eq!(read(&offer.options).as_deref(), Some(value), "{file}"),
            other => panic!("{file}: {other:?}"),
        }
        let automatic = RetryPolicy {
            automatic_escalation: true,
            ..RetryPolicy::default()
        };
        match decide_with(&alter, &outcome, &automatic, 1, 0, 0.0) {
            Decision::Retry {
                options,
                escalation: Some(_),
                ..
            } => assert_eq!(read(&options).as_deref(), Some(value), "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn alterlab_block_offers_the_next_tier_after_the_current_one() {
    let alter = profile("alterlab");
    // The SDK's tiers: 1, 2, 3, 3.5, 4. A tier the profile does not list climbs, never drops.
    for (current, offered) in [("3", "3.5"), ("3.5", "4"), ("3.7", "4"), ("1", "2")] {
        let outcome = Call::new(&alter, 403, fixture("alterlab/blocked_refunded.json"))
            .options(RequestOptions {
                tier: Some(current.to_owned()),
                ..RequestOptions::default()
            })
            .outcome();
        match decide_first(&alter, &outcome) {
            Decision::GiveUp {
                offer: Some(offer), ..
            } => assert_eq!(offer.options.tier.as_deref(), Some(offered), "{current}"),
            other => panic!("{current}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Two layers of status

#[test]
fn api_200_with_target_404_is_not_a_success() {
    for (name, file) in [
        ("omniscrape", "omniscrape/target_404.json"),
        ("alterlab", "alterlab/target_404.json"),
    ] {
        let profile = profile(name);
        let outcome = Call::new(&profile, 200, fixture(file)).outcome();
        assert_eq!(outcome.api_status, Some(200), "{name}");
        assert!(outcome.api_success, "{name}");
        assert_eq!(outcome.target_status, Some(404), "{name}");
        assert!(!outcome.succeeded(), "{name}");
        assert_eq!(outcome.class.fault, Fault::Target, "{name}");
        assert_eq!(outcome.class.retryable, Retryable::No, "{name}");
        // The API did its job and billed it: no refund is due.
        assert_eq!(outcome.billing.audit, RefundAudit::Consistent, "{name}");
        assert!(
            matches!(decide_first(&profile, &outcome), Decision::GiveUp { .. }),
            "{name}"
        );
    }
}

#[test]
fn api_200_with_target_503_is_not_retried_automatically() {
    let omni = profile("omniscrape");
    let body = json!({"success": true, "data": {"status_code": 503, "content": ""},
                      "billing": {"charged": 0.0035}});
    let outcome = Call::json(&omni, 200, &body).outcome();
    assert_eq!(outcome.class.fault, Fault::Target);
    assert_eq!(outcome.class.retryable, Retryable::Maybe);
    assert!(matches!(
        decide_first(&omni, &outcome),
        Decision::GiveUp { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Refund audit

#[test]
fn refund_audit() {
    let omni = profile("omniscrape");
    let alter = profile("alterlab");

    // OmniScrape: a failure that was charged.
    let outcome = Call::new(&omni, 502, fixture("omniscrape/failure_charged.json")).outcome();
    assert_eq!(outcome.billing.charged, Some(0.0035));
    assert_eq!(outcome.billing.audit, RefundAudit::ChargedButShouldBeFree);
    // OmniScrape: a failure billed 0, and a success billed.
    let body = json!({"success": false, "error": "x", "billing": {"charged": 0.0}});
    assert_eq!(
        Call::json(&omni, 502, &body).outcome().billing.audit,
        RefundAudit::Consistent
    );
    let outcome = Call::new(&omni, 200, fixture("omniscrape/success.json")).outcome();
    assert_eq!(outcome.billing.audit, RefundAudit::Consistent);

    // AlterLab: a refunded code, refunded; and the same code charged without a refund.
    let outcome = Call::new(&alter, 403, fixture("alterlab/blocked_refunded.json")).outcome();
    assert_eq!(outcome.billing.charged, Some(5.0));
    assert_eq!(outcome.billing.refunded, Some(5.0));
    assert_eq!(outcome.billing.audit, RefundAudit::Consistent);
    let outcome = Call::new(&alter, 403, fixture("alterlab/blocked_not_refunded.json")).outcome();
    assert_eq!(outcome.billing.audit, RefundAudit::ChargedButShouldBeFree);
    assert!(outcome.billing.audit.is_mismatch());

    // AlterLab: a non-refunded code with a refund; and without one.
    let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited_refunded.json")).outcome();
    assert_eq!(outcome.billing.audit, RefundAudit::RefundedButShouldNotBe);
    let outcome = Call::new(&alter, 429, fixture("alterlab/rate_limited.json")).outcome();
    assert_eq!(outcome.billing.audit, RefundAudit::Consistent);
    let body = json!({"error": "INVALID_API_KEY", "message": "m", "billing": {"total_credits": 1}});
    assert_eq!(
        Call::json(&alter, 401, &body).outcome().billing.audit,
        RefundAudit::Consistent
    );
    // A 5xx is refunded by the policy ("Server errors (5xx)").
    let body = json!({"error": "INTERNAL", "message": "m", "billing": {"total_credits": 2}});
    assert_eq!(
        Call::json(&alter, 500, &body).outcome().billing.audit,
        RefundAudit::ChargedButShouldBeFree
    );
}

// ---------------------------------------------------------------------------------------------
// Unreadable bodies

#[test]
fn html_and_truncated_bodies() {
    let omni = profile("omniscrape");
    let alter = profile("alterlab");

    let outcome = Call::new(&omni, 502, fixture("omniscrape/gateway_502.html")).outcome();
    assert_eq!(outcome.class.retryable, Retryable::Yes);
    assert!(outcome.message.unwrap().contains("HTML"));
    assert!(outcome.body_excerpt.contains("502 Bad Gateway"));

    let outcome = Call::new(&alter, 520, fixture("alterlab/cloudflare_520.html")).outcome();
    assert_eq!(outcome.class.fault, Fault::Provider);
    assert_eq!(
        outcome.class.retryable,
        Retryable::No,
        "520 is not in the contract"
    );
    assert!(outcome.message.unwrap().contains("HTML"));

    // A truncated 200 may have been billed: not retried blindly.
    let outcome = Call::new(&omni, 200, fixture("omniscrape/truncated.json")).outcome();
    assert!(!outcome.api_success);
    assert!(!outcome.succeeded());
    assert_eq!(outcome.class.fault, Fault::Provider);
    assert_eq!(
        outcome.message.as_deref(),
        Some("truncated or malformed JSON")
    );
    assert!(matches!(
        decide_first(&omni, &outcome),
        Decision::GiveUp { .. }
    ));

    // A truncated 504 still follows its status row.
    let outcome = Call::new(&alter, 504, fixture("alterlab/truncated.json")).outcome();
    assert_eq!(outcome.error_code, None);
    assert_eq!(outcome.class.retryable, Retryable::Yes);
    assert_eq!(
        outcome.message.as_deref(),
        Some("truncated or malformed JSON")
    );
}

#[test]
fn body_over_the_cap_is_not_parsed() {
    let omni = profile("omniscrape");
    let body = fixture("omniscrape/success.json");
    let meta = AttemptMeta::default();
    let empty = HeaderMap::new();
    let outcome = classify(
        &omni,
        &meta,
        &Exchange {
            transport: &Transport::Ok,
            status: Some(200),
            headers: &empty,
            body: &body,
            received_at: received_at(),
            latency: Duration::ZERO,
            body_cap: 64,
        },
    );
    assert_eq!(outcome.transport, Transport::BodyOverCap { cap_bytes: 64 });
    assert!(!outcome.api_success);
    assert_eq!(outcome.target_status, None);
    assert_eq!(outcome.billing.charged, None);
    assert_eq!(outcome.class.fault, Fault::Network);
}

// ---------------------------------------------------------------------------------------------
// Async jobs and usage

#[test]
fn async_submit_202_carries_the_job() {
    let omni = profile("omniscrape");
    let outcome = Call::new(&omni, 202, fixture("omniscrape/async_202.json")).outcome();
    let job = outcome.job.clone().unwrap();
    assert_eq!(job.id, "job_5e1c8a");
    assert_eq!(job.poll_path, "/v1/jobs/job_5e1c8a");
    assert!(outcome.api_success);
    assert!(!outcome.succeeded(), "a queued job is not a result yet");
    // Resubmitting would queue (and bill) a second job.
    assert!(!matches!(
        decide_first(&omni, &outcome),
        Decision::Retry { .. }
    ));

    let alter = profile("alterlab");
    let outcome = Call::new(&alter, 202, fixture("alterlab/job_202.json")).outcome();
    let job = outcome.job.unwrap();
    assert_eq!(job.id, "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b");
    assert_eq!(
        job.poll_path, "/api/v1/jobs/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
        "from the profile's template"
    );

    // A 202 without a job id is a provider failure.
    let outcome = Call::json(&alter, 202, &json!({"status": "queued"})).outcome();
    assert!(outcome.job.is_none());
    assert!(!outcome.api_success);
    assert_eq!(outcome.class.fault, Fault::Provider);
}

#[test]
fn job_polls_for_every_status() {
    let omni = profile("omniscrape");
    let alter = profile("alterlab");
    assert_eq!(
        parse_job_poll(&omni, &fixture("omniscrape/job_queued.json")),
        JobPoll::Pending("queued".to_owned())
    );
    assert_eq!(
        parse_job_poll(&omni, &fixture("omniscrape/job_processing.json")),
        JobPoll::Pending("processing".to_owned())
    );
    assert_eq!(
        parse_job_poll(&omni, &fixture("omniscrape/job_failed.json")),
        JobPoll::Failed {
            status: "failed".to_owned(),
            reason: Some("Target returned 403 after solver attempts".to_owned()),
        }
    );
    assert_eq!(
        parse_job_poll(&omni, &fixture("omniscrape/job_timed_out.json")),
        JobPoll::Failed {
            status: "timed_out".to_owned(),
            reason: None,
        }
    );
    match parse_job_poll(&omni, &fixture("omniscrape/job_completed.json")) {
        JobPoll::Completed(result) => {
            // The result classifies like a sync response.
            let body = serde_json::to_vec(&result).unwrap();
            let outcome = Call::new(&omni, 200, body).outcome();
            assert!(outcome.succeeded());
            assert_eq!(outcome.billing.charged, Some(0.0035));
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(
        parse_job_poll(&alter, &fixture("alterlab/job_pending.json")),
        JobPoll::Pending("pending".to_owned())
    );
    assert_eq!(
        parse_job_poll(&alter, &fixture("alterlab/job_processing.json")),
        JobPoll::Pending("processing".to_owned())
    );
    assert!(matches!(
        parse_job_poll(&alter, &fixture("alterlab/job_failed.json")),
        JobPoll::Failed { status, reason: Some(_) } if status == "failed"
    ));
    match parse_job_poll(&alter, &fixture("alterlab/job_completed.json")) {
        JobPoll::Completed(result) => assert_eq!(result["billing"]["total_credits"], 3),
        other => panic!("{other:?}"),
    }

    // Unreadable polls.
    for body in [
        &b"<html>gateway</html>"[..],
        b"{\"success\":true,\"data\":{\"status\":",
        b"{\"data\":{\"status\":\"exploded\"}}",
        b"{\"data\":{\"status\":\"completed\"}}",
        b"{}",
        b"",
    ] {
        assert!(
            matches!(parse_job_poll(&omni, body), JobPoll::Unreadable(_)),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn usage_body() {
    let alter = profile("alterlab");
    let usage = parse_usage(&alter, &fixture("alterlab/usage.json")).unwrap();
    assert_eq!(usage.balance, Some(48210.0));
    assert_eq!(usage.unit, BillingUnit::Microcents);
    assert_eq!(usage.plan.as_deref(), Some("growth"));
    assert_eq!(usage.used, Some(1790.0));

    assert_eq!(parse_usage(&alter, b"<html>"), None);
    let wrong = parse_usage(&alter, br#"{"balance_credits":"lots","plan":7}"#).unwrap();
    assert_eq!(wrong.balance, None);
    // OmniScrape documents no usage endpoint.
    assert_eq!(
        parse_usage(&profile("omniscrape"), &fixture("alterlab/usage.json")),
        None
    );
}

#[test]
fn a_code_under_a_status_it_is_not_listed_for_never_loosens_a_no_retry_status() {
    let alter = profile("alterlab");
    // TIMEOUT is listed under 504 (retryable); under a 400 the contract says never retry.
    for status in [400, 401, 402, 404, 409, 413, 415] {
        let body = json!({"error": "TIMEOUT", "message": "m", "request_id": "r", "details": {}});
        let outcome = Call::json(&alter, status, &body).outcome();
        let decision = decide_first(&alter, &outcome);
        assert!(
            !matches!(decision, Decision::Retry { .. }),
            "{status}: {decision:?}"
        );
    }
    // Under its own status it is retried.
    let body = json!({"error": "TIMEOUT", "message": "m", "request_id": "r", "details": {}});
    let outcome = Call::json(&alter, 504, &body).outcome();
    assert!(matches!(
        decide_first(&alter, &outcome),
        Decision::Retry { .. }
    ));
}

#[test]
fn wrong_json_types_read_as_absent() {
    let omni = profile("omniscrape");
    let alter = profile("alterlab");
    let wrong = [
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!("abc"),
        json!(-1),
    ];
    for value in &wrong {
        let body = json!({"success": true, "data": {"status_code": value, "content": value},
                          "billing": {"charged": value}, "request_id": value});
        let outcome = Call::json(&omni, 200, &body).outcome();
        assert_eq!(outcome.target_status, None, "{value}");
        assert_eq!(outcome.billing.charged, None, "{value}");
        if !(value.is_number() || value.is_string()) {
            assert_eq!(outcome.request_id, None, "{value}");
        }

        let body = json!({"error": value, "message": value, "status_code": value,
                          "billing": {"total_credits": value, "refunded": value}});
        let outcome = Call::json(&alter, 403, &body).outcome();
        if !(value.is_number() || value.is_string()) {
            assert_eq!(outcome.error_code, None, "{value}");
        }
        assert_eq!(outcome.billing.charged, None, "{value}");
        assert_eq!(
            outcome.class.fault,
            Fault::Target,
            "{value}: the status row decides"
        );
    }
    // A job id of the wrong type is no job.
    let outcome = Call::json(&alter, 202, &json!({"job_id": {"id": 1}})).outcome();
    assert_eq!(outcome.job, None);
    assert!(!outcome.api_success);
}

#[test]
fn transport_failures() {
    let omni = profile("omniscrape");
    let empty = HeaderMap::new();
    let run = |transport: Transport, status: Option<u16>| {
        classify(
            &omni,
            &AttemptMeta {
                attempt: 1,
                ..AttemptMeta::default()
            },
            &Exchange {
                transport: &transport,
                status,
                headers: &empty,
                body: b"{\"success\":true}",
                received_at: received_at(),
                latency: Duration::from_secs(30),
                body_cap: DEFAULT_BODY_CAP,
            },
        )
    };
    let timeout = run(Transport::Timeout, None);
    assert_eq!(timeout.class.fault, Fault::Network);
    assert!(!timeout.api_success);
    assert!(matches!(
        decide_first(&omni, &timeout),
        Decision::Retry { .. }
    ));
    let tls = run(
        Transport::Tls {
            detail: "bad certificate".to_owned(),
        },
        None,
    );
    assert!(matches!(decide_first(&omni, &tls), Decision::GiveUp { .. }));
    // The head said 401, then the body broke: still an account stop.
    let broken = run(
        Transport::BodyIncomplete {
            detail: "reset".to_owned(),
        },
        Some(401),
    );
    assert!(broken.class.account_stop);
    assert!(matches!(
        decide_first(&omni, &broken),
        Decision::PauseProvider { .. }
    ));
    // The head said 400: a broken body does not make it retryable.
    let broken = run(
        Transport::BodyIncomplete {
            detail: "reset".to_owned(),
        },
        Some(400),
    );
    assert_eq!(broken.class.retryable, Retryable::No);
}
