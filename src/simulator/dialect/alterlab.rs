//! AlterLab's wire shapes, as its error-code page (`../shared/contracts/alterlab-error-codes.txt`)
//! and its official Python SDK (`alterlab` 2.3.0, `client.py`) show them. tests/sdk/ runs that SDK
//! against the simulator.
//!
//! - Success: `{url, status_code, content, title, headers, cached, credits_used, response_time_ms,
//!   size_bytes, billing: {total_credits, tier_used}}` (the SDK's `scrape()` return value).
//! - Errors: the page's `{error: CODE, message, request_id, details, billing?}`, plus FastAPI's
//!   `detail` (the message), which is what the SDK puts in `AlterLabAPIError.detail`.
//! - Jobs: 202 `{job_id, status}`; `GET /api/v1/jobs/{id}` says `pending`, `running`, `completed`
//!   (the scrape response under `result`) or `failed` (`error`): the only words the SDK's
//!   `wait_for_job` accepts.
//! - Usage: the fields `get_usage()` documents. Estimate: `POST /api/v1/scrape/estimate`.
//! - Requests: the tier comes as `cost_controls.force_tier` or `cost_controls.max_tier` (the SDK) or a
//!   top-level `max_tier` (the REST page); `"sync": false` always queues a job.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::{
    AuthFailure, Dialect, ErrorParts, JobFailure, JobParts, SuccessParts, UsageParts, amount,
    page_for, text_at,
};
use crate::provider::Profile;
use crate::simulator::server::{self, ProviderSim};
use crate::simulator::state::JobPhase;

/// The SDK's `estimate_cost` path.
const ESTIMATE_PATH: &str = "/api/v1/scrape/estimate";

#[derive(Debug)]
pub struct AlterLab;

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

impl Dialect for AlterLab {
    fn check_key(&self, key: Option<&str>) -> Option<AuthFailure> {
        match key.map(str::trim).filter(|key| !key.is_empty()) {
            None => Some(AuthFailure {
                code: Some("MISSING_API_KEY"),
                message: "No API key was provided in the request headers.",
            }),
            Some(key) if key.starts_with("sk_test_") || key.starts_with("sk_live_") => None,
            Some(_) => Some(AuthFailure {
                code: Some("INVALID_API_KEY"),
                message: "The API key provided is invalid, malformed, or has been revoked.",
            }),
        }
    }

    fn sends_limit_headers(&self) -> bool {
        true
    }

    /// AlterLab documents no code of its own for too many requests in flight, so its one 429
    /// code serves.
    fn concurrency_code(&self) -> &'static str {
        "RATE_LIMIT_EXCEEDED"
    }

    fn rate_code(&self) -> Option<&'static str> {
        Some("RATE_LIMIT_EXCEEDED")
    }

    fn balance_code(&self) -> Option<&'static str> {
        Some("INSUFFICIENT_CREDITS")
    }

    /// The contract lists no code for a malformed body, so `INVALID_REQUEST` (classified by its
    /// 400 status row).
    fn bad_request_code(&self) -> Option<&'static str> {
        Some("INVALID_REQUEST")
    }

    fn not_found_code(&self) -> Option<&'static str> {
        Some("NOT_FOUND")
    }

    fn requested_tier(&self, profile: &Profile, body: &Map<String, Value>) -> Option<String> {
        [
            "/cost_controls/force_tier",
            "/cost_controls/max_tier",
            "max_tier",
        ]
        .iter()
        .find_map(|name| text_at(body, name))
        .or_else(|| {
            profile
                .request
                .tier
                .as_deref()
                .and_then(|name| text_at(body, name))
        })
    }

    fn wants_job(&self, body: &Map<String, Value>) -> bool {
        body.get("sync") == Some(&Value::Bool(false))
    }

    fn success(&self, parts: &SuccessParts<'_>) -> Value {
        let (page, title) = page_for(parts.target_status);
        let content = parts.content.unwrap_or(page);
        let response_time_ms = (parts.elapsed_s * 1000.0).round();
        json!({
            "url": parts.url,
            "status_code": parts.target_status,
            "content": content,
            "title": title,
            "headers": { "content-type": "text/html; charset=utf-8" },
            "cached": false,
            "credits_used": amount(parts.bill.charged),
            "response_time_ms": amount(response_time_ms),
            "size_bytes": content.len(),
            "request_id": parts.request_id,
            "billing": { "total_credits": amount(parts.bill.charged), "tier_used": parts.tier_used },
        })
    }

    fn error(&self, parts: &ErrorParts<'_>) -> Value {
        let code = parts
            .code
            .map_or_else(|| code_from_meaning(parts.message), str::to_owned);
        let mut body = json!({
            "error": code,
            "message": parts.message,
            "detail": parts.message,
            "request_id": parts.request_id,
            "details": parts.details,
        });
        if let (Some(bill), Some(map)) = (parts.bill, body.as_object_mut()) {
            let mut billing = json!({ "total_credits": amount(bill.charged) });
            if let (Some(refunded), Some(billing)) = (bill.refunded, billing.as_object_mut()) {
                billing.insert("refunded".to_owned(), amount(refunded));
            }
            map.insert("billing".to_owned(), billing);
        }
        body
    }

    fn accepted(&self, job_id: &str, _poll_path: &str) -> Value {
        json!({ "job_id": job_id, "status": "pending" })
    }

    fn job_status(&self, phase: JobPhase, failure: Option<&JobFailure>) -> &'static str {
        match (phase, failure) {
            (JobPhase::Queued, _) => "pending",
            (JobPhase::Processing, _) => "running",
            (JobPhase::Ended, None) => "completed",
            (JobPhase::Ended, Some(_)) => "failed",
        }
    }

    fn job(&self, parts: &JobParts<'_>) -> Value {
        let mut body = json!({
            "job_id": parts.job_id,
            "status": parts.status,
            "url": parts.url,
            "created_at": parts.created_at,
            "updated_at": parts.updated_at,
        });
        if let Some(map) = body.as_object_mut() {
            if let Some(result) = parts.result {
                map.insert("result".to_owned(), result.clone());
            }
            if let Some(failure) = parts.failure {
                // The SDK raises "Job failed: {error}": the message reads best there.
                map.insert("error".to_owned(), json!(failure.message));
                map.insert(
                    "error_code".to_owned(),
                    json!(failure.code.as_deref().unwrap_or("ERROR")),
                );
            }
        }
        body
    }

    fn usage(&self, parts: &UsageParts<'_>) -> Value {
        json!({
            "credits_available": parts.balance.map(amount),
            "credits_used": amount(parts.used),
            "credits_limit": parts.starting_balance.map(amount),
            "requests_count": parts.requests,
            "subscription_tier": parts.plan,
            "billing_period_start": parts.period_start,
            "billing_period_end": parts.period_end,
        })
    }

    fn extra_routes(&self) -> Router<Arc<ProviderSim>> {
        Router::new().route(ESTIMATE_PATH, post(estimate))
    }
}

/// `POST /api/v1/scrape/estimate`: what a scrape would cost, without running it. The simulator
/// prices every tier alike, so the most it can cost is one price per tier it may climb through.
async fn estimate(
    State(sim): State<Arc<ProviderSim>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = server::key_refusal(&sim, &headers, uri.query()) {
        return refusal;
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return server::plain_error(&sim, 400, "the request body must be a JSON object");
    };
    let Some(url) = text_at(&request, "url").filter(|url| !url.trim().is_empty()) else {
        return server::plain_error(&sim, 400, "url is required");
    };
    let tiers = &sim.profile.request.tiers;
    let tier = AlterLab
        .requested_tier(&sim.profile, &request)
        .or_else(|| tiers.first().cloned())
        .unwrap_or_else(|| "1".to_owned());
    let first = tiers.first().cloned().unwrap_or_else(|| tier.clone());
    let climb = tiers
        .iter()
        .position(|known| *known == tier)
        .map_or(1, |index| index + 1);
    let price = sim.scenario.settings.price;
    let most = price * climb as f64;
    server::json_answer(
        200,
        &json!({
            "url": url,
            "estimated_tier": first,
            "estimated_credits": amount(price),
            "confidence": "high",
            "max_possible_credits": amount(most),
            "reasoning": format!(
                "omniscope simulator: every tier costs {} here; escalating up to tier {tier} costs at most {}",
                amount(price),
                amount(most)
            ),
        }),
    )
}
