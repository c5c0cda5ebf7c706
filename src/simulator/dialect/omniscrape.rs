//! OmniScrape's wire shapes (`../shared/contracts/omniscrape-errors.txt`, NOTES.md):
//! `{success, data: {status_code, content, url}, billing: {charged}, metadata, request_id}`;
//! failures `{success: false, error: message, code?}`, never billed; jobs under `data`.

use serde_json::{Value, json};

use super::{
    AuthFailure, Bill, Dialect, ErrorParts, JobFailure, JobParts, SuccessParts, UsageParts, amount,
    page_for,
};
use crate::simulator::state::JobPhase;

#[derive(Debug)]
pub struct OmniScrape;

impl Dialect for OmniScrape {
    fn check_key(&self, key: Option<&str>) -> Option<AuthFailure> {
        key.map(str::trim)
            .filter(|key| !key.is_empty())
            .is_none()
            .then_some(AuthFailure {
                code: None,
                message: "API key missing or invalid. Check the X-API-Key header.",
            })
    }

    fn concurrency_code(&self) -> &'static str {
        "CONCURRENCY_LIMIT"
    }

    fn quota_code(&self) -> Option<&'static str> {
        Some("MONTHLY_QUOTA_EXCEEDED")
    }

    fn success(&self, parts: &SuccessParts<'_>) -> Value {
        let (page, _) = page_for(parts.target_status);
        json!({
            "success": true,
            "data": {
                "status_code": parts.target_status,
                "content": parts.content.unwrap_or(page),
                "url": parts.url,
            },
            "billing": { "charged": amount(parts.bill.net()) },
            "metadata": { "elapsed_time": parts.elapsed_s, "solver_used": false },
            "request_id": parts.request_id,
        })
    }

    fn error(&self, parts: &ErrorParts<'_>) -> Value {
        let mut body = json!({
            "success": false,
            "error": parts.message,
            "billing": { "charged": amount(parts.bill.map_or(0.0, Bill::net)) },
            // A failure after work (one that has a bill) went through the solver, as the errors
            // page's example says: "Target returned 403 after solver attempts".
            "metadata": { "elapsed_time": parts.elapsed_s, "solver_used": parts.bill.is_some() },
            "request_id": parts.request_id,
        });
        if let (Some(code), Some(map)) = (parts.code, body.as_object_mut()) {
            map.insert("code".to_owned(), json!(code));
        }
        body
    }

    fn accepted(&self, job_id: &str, poll_path: &str) -> Value {
        json!({
            "success": true,
            "job_id": job_id,
            "status": "queued",
            "poll": poll_path,
        })
    }

    fn job_status(&self, phase: JobPhase, failure: Option<&JobFailure>) -> &'static str {
        match (phase, failure) {
            (JobPhase::Queued, _) => "queued",
            (JobPhase::Processing, _) => "processing",
            (JobPhase::Ended, None) => "completed",
            (JobPhase::Ended, Some(failure)) if failure.timed_out => "timed_out",
            (JobPhase::Ended, Some(_)) => "failed",
        }
    }

    fn job(&self, parts: &JobParts<'_>) -> Value {
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
            if let Some(failure) = parts.failure {
                map.insert("error".to_owned(), json!(failure.message));
            }
        }
        json!({ "success": true, "data": data })
    }

    /// OmniScrape documents no usage endpoint; its profile names none, so this is never served.
    fn usage(&self, parts: &UsageParts<'_>) -> Value {
        json!({ "plan": parts.plan, "charged": amount(parts.used) })
    }
}
