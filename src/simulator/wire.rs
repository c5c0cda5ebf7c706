//! Response bodies in each simulated provider's shape.
//!
//! The simulator stands in for two concrete APIs whose bodies differ in shape, so this is the one
//! place that knows a wire dialect per profile name. Everything else a client reads (paths, header
//! names, codes, statuses, messages, refund rules) comes from the profiles themselves.

use serde_json::{Value, json};

/// The body shapes of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{success, data: {status_code, content, url}, billing: {charged}, metadata, request_id}`;
    /// failures `{success: false, error: message, code?}`; failures are never billed.
    OmniScrape,
    /// `{url, status_code, content, title, billing: {total_credits, tier_used}}`; errors
    /// `{error: CODE, message, request_id, details, billing?}`; rate-limit headers on every answer.
    AlterLab,
}

/// Which dialect the simulator speaks for each built-in profile.
const DIALECTS: &[(&str, Dialect)] = &[
    ("omniscrape", Dialect::OmniScrape),
    ("alterlab", Dialect::AlterLab),
];

/// What a request cost: `refunded` is set when the provider gave the charge back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bill {
    pub charged: f64,
    pub refunded: Option<f64>,
}

impl Bill {
    pub const FREE: Self = Self {
        charged: 0.0,
        refunded: None,
    };

    #[must_use]
    pub fn net(self) -> f64 {
        self.charged - self.refunded.unwrap_or(0.0)
    }
}

pub struct SuccessParts<'a> {
    pub url: &'a str,
    pub target_status: u16,
    pub elapsed_s: f64,
    pub request_id: &'a str,
    pub bill: Bill,
    pub tier_used: &'a str,
    /// Replaces the page body (the chaos scenario's huge body).
    pub content: Option<&'a str>,
}

pub struct ErrorParts<'a> {
    pub code: Option<&'a str>,
    pub message: &'a str,
    pub elapsed_s: f64,
    pub request_id: &'a str,
    /// `None` where the request was turned away before any work (auth, limits, bad input).
    pub bill: Option<Bill>,
    pub details: Value,
}

/// Why a key was turned away.
pub struct AuthFailure {
    pub code: Option<&'static str>,
    pub message: &'static str,
}

const PAGE: &str = "<!doctype html><html><head><title>Example Domain</title></head><body><h1>Example \
Domain</h1><p>This domain is for use in illustrative examples in documents.</p></body></html>";

fn page_for(status: u16) -> (&'static str, &'static str) {
    match status {
        200..=299 => (PAGE, "Example Domain"),
        404 => (
            "<html><head><title>404 Not Found</title></head><body>Not Found</body></html>",
            "404 Not Found",
        ),
        _ => (
            "<html><head><title>Error</title></head><body>The site could not answer.</body></html>",
            "Error",
        ),
    }
}

/// AlterLab always sends a code; for a status row without one (a bare 502), the row's name
/// becomes it: "Bad Gateway: upstream error" gives `BAD_GATEWAY`.
fn code_from_meaning(meaning: &str) -> String {
    let name = meaning.split(':').next().unwrap_or(meaning).trim();
    let code: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if code.is_empty() {
        "ERROR".to_owned()
    } else {
        code
    }
}

/// Credits read best as integers; dollars keep their fraction.
pub fn amount(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        let whole = value as i64;
        json!(whole)
    } else {
        json!(value)
    }
}

impl Dialect {
    #[must_use]
    pub fn for_profile(name: &str) -> Option<Self> {
        DIALECTS
            .iter()
            .find(|(profile, _)| *profile == name)
            .map(|(_, dialect)| *dialect)
    }

    /// Names of the profiles the simulator can speak for.
    #[must_use]
    pub fn known_profiles() -> Vec<&'static str> {
        DIALECTS.iter().map(|(name, _)| *name).collect()
    }

    /// `None` when the key is accepted.
    #[must_use]
    pub fn check_key(self, key: Option<&str>) -> Option<AuthFailure> {
        let key = key.map(str::trim).filter(|key| !key.is_empty());
        match (self, key) {
            (Self::OmniScrape, None) => Some(AuthFailure {
                code: None,
                message: "API key missing or invalid. Check the X-API-Key header.",
            }),
            (Self::OmniScrape, Some(_)) => None,
            (Self::AlterLab, None) => Some(AuthFailure {
                code: Some("MISSING_API_KEY"),
                message: "No API key was provided in the request headers.",
            }),
            (Self::AlterLab, Some(key))
                if key.starts_with("sk_test_") || key.starts_with("sk_live_") =>
            {
                None
            }
            (Self::AlterLab, Some(_)) => Some(AuthFailure {
                code: Some("INVALID_API_KEY"),
                message: "The API key provided is invalid, malformed, or has been revoked.",
            }),
        }
    }

    /// Whether every answer carries the rate-limit and concurrency headers.
    #[must_use]
    pub fn sends_limit_headers(self) -> bool {
        self == Self::AlterLab
    }

    /// The code of a 429 for too many requests in flight. AlterLab documents no code of its own
    /// for it, so its one 429 code serves.
    #[must_use]
    pub fn concurrency_code(self) -> &'static str {
        match self {
            Self::OmniScrape => "CONCURRENCY_LIMIT",
            Self::AlterLab => "RATE_LIMIT_EXCEEDED",
        }
    }

    /// The code of a 429 for too many requests per minute (OmniScrape has no such limit).
    #[must_use]
    pub fn rate_code(self) -> Option<&'static str> {
        match self {
            Self::OmniScrape => None,
            Self::AlterLab => Some("RATE_LIMIT_EXCEEDED"),
        }
    }

    /// The code of a 402 for a used-up monthly quota (AlterLab bills a balance instead).
    #[must_use]
    pub fn quota_code(self) -> Option<&'static str> {
        match self {
            Self::OmniScrape => Some("MONTHLY_QUOTA_EXCEEDED"),
            Self::AlterLab => None,
        }
    }

    /// The code of a 402 for an empty balance (OmniScrape's 402 "balance exhausted" has none).
    #[must_use]
    pub fn balance_code(self) -> Option<&'static str> {
        match self {
            Self::OmniScrape => None,
            Self::AlterLab => Some("INSUFFICIENT_CREDITS"),
        }
    }

    /// The code of a 400 for a body without `url`: AlterLab always sends a code; its contract
    /// lists none for this, so `INVALID_REQUEST` (classified by its 400 status row).
    #[must_use]
    pub fn bad_request_code(self) -> Option<&'static str> {
        match self {
            Self::OmniScrape => None,
            Self::AlterLab => Some("INVALID_REQUEST"),
        }
    }

    #[must_use]
    pub fn not_found_code(self) -> Option<&'static str> {
        match self {
            Self::OmniScrape => None,
            Self::AlterLab => Some("NOT_FOUND"),
        }
    }

    #[must_use]
    pub fn success(self, parts: &SuccessParts<'_>) -> Value {
        let (page, title) = page_for(parts.target_status);
        let content = parts.content.unwrap_or(page);
        match self {
            Self::OmniScrape => json!({
                "success": true,
                "data": {
                    "status_code": parts.target_status,
                    "content": content,
                    "url": parts.url,
                },
                "billing": { "charged": amount(parts.bill.net()) },
                "metadata": { "elapsed_time": parts.elapsed_s },
                "request_id": parts.request_id,
            }),
            Self::AlterLab => json!({
                "url": parts.url,
                "status_code": parts.target_status,
                "content": content,
                "title": title,
                "billing": { "total_credits": amount(parts.bill.charged), "tier_used": parts.tier_used },
            }),
        }
    }

    #[must_use]
    pub fn error(self, parts: &ErrorParts<'_>) -> Value {
        match self {
            Self::OmniScrape => {
                let mut body = json!({
                    "success": false,
                    "error": parts.message,
                    "billing": { "charged": amount(parts.bill.map_or(0.0, Bill::net)) },
                    "metadata": { "elapsed_time": parts.elapsed_s },
                    "request_id": parts.request_id,
                });
                if let (Some(code), Some(map)) = (parts.code, body.as_object_mut()) {
                    map.insert("code".to_owned(), json!(code));
                }
                body
            }
            Self::AlterLab => {
                let code = parts
                    .code
                    .map_or_else(|| code_from_meaning(parts.message), str::to_owned);
                let mut body = json!({
                    "error": code,
                    "message": parts.message,
                    "request_id": parts.request_id,
                    "details": parts.details,
                });
                if let (Some(bill), Some(map)) = (parts.bill, body.as_object_mut()) {
                    let mut billing = json!({ "total_credits": amount(bill.charged) });
                    if let (Some(refunded), Some(billing)) =
                        (bill.refunded, billing.as_object_mut())
                    {
                        billing.insert("refunded".to_owned(), amount(refunded));
                    }
                    map.insert("billing".to_owned(), billing);
                }
                body
            }
        }
    }

    /// The 202 answer for a queued job.
    #[must_use]
    pub fn accepted(self, job_id: &str, poll_path: &str) -> Value {
        match self {
            Self::OmniScrape => json!({
                "success": true,
                "job_id": job_id,
                "status": "queued",
                "poll": poll_path,
            }),
            Self::AlterLab => json!({ "job_id": job_id, "status": "queued" }),
        }
    }

    /// A job-poll answer. `result` is the finished scrape response; `failure` the (code, message)
    /// of a job that ended without one.
    #[must_use]
    pub fn job(self, parts: &JobParts<'_>) -> Value {
        match self {
            Self::OmniScrape => {
                let mut data = json!({
                    "job_id": parts.job_id,
                    "status": parts.status,
                    "url": parts.url,
                    "created_at": parts.created_at,
                    "updated_at": parts.updated_at,
                });
                if let Some(map) = data.as_object_mut() {
                    if let Some(result) = parts.result {
                        map.insert("result".to_owned(), result.clone());
                    }
                    if let Some((_, message)) = parts.failure {
                        map.insert("error".to_owned(), json!(message));
                    }
                }
                json!({ "success": true, "data": data })
            }
            Self::AlterLab => {
                let mut body =
                    json!({ "job_id": parts.job_id, "status": parts.status, "url": parts.url });
                if let Some(map) = body.as_object_mut() {
                    if let Some(result) = parts.result {
                        map.insert("result".to_owned(), result.clone());
                    }
                    if let Some((code, message)) = parts.failure {
                        map.insert("error".to_owned(), json!(code.unwrap_or("ERROR")));
                        map.insert("message".to_owned(), json!(message));
                    }
                }
                body
            }
        }
    }

    /// The usage endpoint's answer (fields as the AlterLab profile maps them).
    #[must_use]
    pub fn usage(self, plan: &str, balance: Option<f64>, used: f64) -> Value {
        json!({
            "plan": plan,
            "balance_credits": balance.map(amount),
            "credits_used": amount(used),
        })
    }
}

pub struct JobParts<'a> {
    pub job_id: &'a str,
    pub status: &'a str,
    pub url: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub result: Option<&'a Value>,
    pub failure: Option<(Option<&'a str>, &'a str)>,
}
