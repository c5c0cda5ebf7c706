//! Wire dialects: how each simulated provider shapes its bodies and what its API says beyond the
//! profile.
//!
//! Paths, header names, codes, statuses, messages and refund rules come from the profiles. What a
//! profile cannot say (the shape of a body, which code a concurrency refusal carries, the words a
//! job's status is spelled with, an endpoint only one API has) is a [`Dialect`]: one file per
//! provider under `dialect/`, registered in [`DIALECTS`]. A new provider's dialect is a new file and
//! one line there.

mod alterlab;
mod omniscrape;

use axum::Router;
use serde_json::{Map, Value, json};

use super::server::ProviderSim;
use super::state::JobPhase;
use crate::provider::{Profile, request_field_path};

/// Which dialect the simulator speaks for each built-in profile.
const DIALECTS: &[(&str, &'static dyn Dialect)] = &[
    ("omniscrape", &omniscrape::OmniScrape),
    ("alterlab", &alterlab::AlterLab),
];

/// The dialect for a profile name, if the simulator speaks for it.
#[must_use]
pub fn for_profile(name: &str) -> Option<&'static dyn Dialect> {
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

/// One provider's wire shapes.
pub trait Dialect: Send + Sync + std::fmt::Debug {
    /// `None` when the key is accepted.
    fn check_key(&self, key: Option<&str>) -> Option<AuthFailure>;

    /// Whether every answer carries the rate-limit and concurrency headers.
    fn sends_limit_headers(&self) -> bool {
        false
    }

    /// The code of a 429 for too many requests in flight.
    fn concurrency_code(&self) -> &'static str;

    /// The code of a 429 for too many requests per window (`None`: the provider has no such limit).
    fn rate_code(&self) -> Option<&'static str> {
        None
    }

    /// The code of a 402 for a used-up monthly quota.
    fn quota_code(&self) -> Option<&'static str> {
        None
    }

    /// The code of a 402 for an empty balance.
    fn balance_code(&self) -> Option<&'static str> {
        None
    }

    /// The code of a 400 for a body the simulator cannot read.
    fn bad_request_code(&self) -> Option<&'static str> {
        None
    }

    /// The code of a 404 for an unknown job.
    fn not_found_code(&self) -> Option<&'static str> {
        None
    }

    /// The tier a request asks for. By default the profile's request field.
    fn requested_tier(&self, profile: &Profile, body: &Map<String, Value>) -> Option<String> {
        profile
            .request
            .tier
            .as_deref()
            .and_then(|name| text_at(body, name))
    }

    /// The request asks to be queued as a job even when the target is quick.
    fn wants_job(&self, _body: &Map<String, Value>) -> bool {
        false
    }

    /// A successful scrape response.
    fn success(&self, parts: &SuccessParts<'_>) -> Value;

    /// An error response.
    fn error(&self, parts: &ErrorParts<'_>) -> Value;

    /// The 202 answer for a queued job.
    fn accepted(&self, job_id: &str, poll_path: &str) -> Value;

    /// The word a job's status is spelled with.
    fn job_status(&self, phase: JobPhase, failure: Option<&JobFailure>) -> &'static str;

    /// A job-poll answer.
    fn job(&self, parts: &JobParts<'_>) -> Value;

    /// The usage endpoint's answer.
    fn usage(&self, parts: &UsageParts<'_>) -> Value;

    /// Routes only this provider has (AlterLab's cost estimate), beside the profile's endpoints.
    fn extra_routes(&self) -> Router<std::sync::Arc<ProviderSim>> {
        Router::new()
    }
}

/// A request field's text, at a profile name (a key, or a pointer to a nested key). Numbers count
/// as text (`"max_tier": 4`).
#[must_use]
pub fn text_at(body: &Map<String, Value>, name: &str) -> Option<String> {
    let path = request_field_path(name);
    let (first, rest) = path.split_first()?;
    let mut value = body.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

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

/// How a job that ended without a result failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// The scrape ran out of time (a provider may spell that status apart).
    pub timed_out: bool,
    pub code: Option<String>,
    pub message: String,
}

pub struct JobParts<'a> {
    pub job_id: &'a str,
    pub status: &'a str,
    pub url: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    /// The finished scrape response.
    pub result: Option<&'a Value>,
    pub failure: Option<&'a JobFailure>,
}

pub struct UsageParts<'a> {
    pub plan: &'a str,
    /// `None` when the account is bottomless.
    pub balance: Option<f64>,
    pub starting_balance: Option<f64>,
    pub used: f64,
    pub requests: u64,
    pub period_start: &'a str,
    pub period_end: &'a str,
}

const PAGE: &str = "<!doctype html><html><head><title>Example Domain</title></head><body><h1>Example \
Domain</h1><p>This domain is for use in illustrative examples in documents.</p></body></html>";

/// The target's page and title for a status.
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

/// Credits read best as integers; dollars keep their fraction.
pub fn amount(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        let whole = value as i64;
        json!(whole)
    } else {
        json!(value)
    }
}
