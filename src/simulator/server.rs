//! The axum routes: one router serving every simulated provider on its profile's own paths.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::dialect::{
    Bill, Dialect, ErrorParts, JobFailure, JobParts, SuccessParts, UsageParts, amount, text_at,
};
use super::fault::{ApiError, Chaos, FaultError, FaultName, Planned};
use super::scenario::{CompiledProvider, MAX_LATENCY};
use super::state::{Account, AccountBook, InFlight, Job, JobEnd, JobPhase, JobStore, to_micro};
use super::{FAULT_HEADER, FAULT_HOST, LATENCY_HEADER, REFUND_HEADER};
use crate::provider::{AuthStyle, EscalationStep, Profile};

/// A chaos stall lasts this long unless the simulator shuts down first.
const STALL: Duration = Duration::from_secs(600);
/// The chaos scenario's oversized body: past the 10 MiB default cap.
pub(super) const HUGE_CONTENT_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;

/// What every provider shares: the seed, the request counter, the clock, the shutdown signal.
#[derive(Debug)]
pub struct Shared {
    pub seed: u64,
    pub seq: AtomicU64,
    pub clock: crate::clock::Clock,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// The per-request random stream: a function of the seed and the request's number only, so
    /// one seed replays the same scenario for the same sequence of requests.
    pub(super) fn next_request(&self) -> (u64, Xoshiro256PlusPlus) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mixed = splitmix(self.seed ^ splitmix(seq));
        (mixed, Xoshiro256PlusPlus::seed_from_u64(mixed))
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One simulated provider.
#[derive(Debug)]
pub struct ProviderSim {
    pub shared: Arc<Shared>,
    pub profile: Profile,
    pub dialect: &'static dyn Dialect,
    pub scenario: CompiledProvider,
    pub accounts: AccountBook,
    pub jobs: JobStore,
    price_micro: i64,
}

impl ProviderSim {
    pub fn new(
        shared: Arc<Shared>,
        profile: Profile,
        dialect: &'static dyn Dialect,
        scenario: CompiledProvider,
    ) -> Self {
        Self {
            shared,
            accounts: AccountBook::new(scenario.settings.balance),
            price_micro: to_micro(scenario.settings.price),
            profile,
            dialect,
            scenario,
            jobs: JobStore::default(),
        }
    }

    /// The drawn latency, or the one `X-Sim-Latency-Ms` asks for.
    fn latency(
        &self,
        rng: &mut Xoshiro256PlusPlus,
        elapsed: Duration,
        headers: &HeaderMap,
    ) -> Duration {
        forced_latency(headers).unwrap_or_else(|| self.scenario.draw_latency(rng, elapsed))
    }

    fn key<'h>(&self, headers: &'h HeaderMap, query: Option<&'h str>) -> Option<&'h str> {
        let name = self.profile.auth.name.as_deref().unwrap_or("X-API-Key");
        match self.profile.auth.style {
            AuthStyle::Header => header_text(headers, name),
            AuthStyle::Bearer => header_text(headers, "authorization")
                .and_then(|value| value.strip_prefix("Bearer ")),
            AuthStyle::Query => query?
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')),
            AuthStyle::Basic => {
                header_text(headers, "authorization").and_then(|value| value.strip_prefix("Basic "))
            }
        }
    }

    /// A failure the profile's escalation rule says this request's change cures.
    fn cured(&self, error: &ApiError, request: &RequestView) -> bool {
        cures(
            &self.profile,
            error,
            &Asked {
                has_mode: &|mode| request.mode.as_deref() == Some(mode),
                tier: request.tier.as_deref(),
                country: request.country.as_deref(),
            },
        )
    }
}

/// What a request asked for that an escalation step may have changed.
pub(super) struct Asked<'a> {
    /// Whether the request asks for this mode (its mode field, or the mode's parameters).
    pub has_mode: &'a dyn Fn(&str) -> bool,
    pub tier: Option<&'a str>,
    pub country: Option<&'a str>,
}

/// A failure the profile's escalation rule says the changed request cures: a 502 with
/// `mode: js_rendering`, a challenge with `mode: js`, an antibot block with a higher tier.
pub(super) fn cures(profile: &Profile, error: &ApiError, asked: &Asked<'_>) -> bool {
    let Some(rule) = profile.escalation_for(Some(error.status), error.code.as_deref()) else {
        return false;
    };
    let shape = &profile.request;
    let not_first = |list: &[String], value: Option<&str>| {
        value.is_some_and(|value| list.first().map(String::as_str) != Some(value))
    };
    rule.steps.iter().any(|step| match step {
        EscalationStep::Mode(mode) => (asked.has_mode)(mode),
        EscalationStep::NextTier => not_first(&shape.tiers, asked.tier),
        EscalationStep::NextProxyCountry => not_first(&shape.proxy_countries, asked.country),
    })
}

/// The fields of a scrape body the simulator looks at, named by the profile and the dialect.
struct RequestView {
    url: String,
    mode: Option<String>,
    tier: Option<String>,
    country: Option<String>,
    /// The body asks for a job (AlterLab's `"sync": false`).
    wants_job: bool,
}

fn read_request(
    profile: &Profile,
    dialect: &dyn Dialect,
    body: &[u8],
) -> Result<RequestView, &'static str> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err("the request body must be a JSON object");
    };
    let text = |name: Option<&String>| text_at(&map, name?);
    let url = text(Some(&profile.request.url))
        .filter(|url| !url.trim().is_empty())
        .ok_or("url is required")?;
    Ok(RequestView {
        url,
        mode: text(profile.request.mode.as_ref()),
        tier: dialect.requested_tier(profile, &map),
        country: text(profile.request.proxy_country.as_ref()),
        wants_job: dialect.wants_job(&map),
    })
}

/// The fault a request asks for: the `X-Sim-Fault` header, or a target on the fault host.
pub(super) fn forced_fault(
    headers: &HeaderMap,
    url: &str,
) -> Option<Result<FaultName, FaultError>> {
    if let Some(name) = header_text(headers, FAULT_HEADER) {
        return Some(FaultName::parse(name));
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.host_str() != Some(FAULT_HOST) {
        return None;
    }
    // One slash off: a code may itself start with one (Zyte's `/auth/key-not-found`).
    let path = parsed.path();
    Some(FaultName::parse(path.strip_prefix('/').unwrap_or(path)))
}

/// The latency `X-Sim-Latency-Ms` asks for (capped like a drawn one).
pub(super) fn forced_latency(headers: &HeaderMap) -> Option<Duration> {
    let ms = header_text(headers, LATENCY_HEADER)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ms).min(MAX_LATENCY))
}

pub(super) fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// One answer being built: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
    content_type: &'static str,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::from(serde_json::to_vec(value).unwrap_or_default()),
            content_type: "application/json",
        }
    }

    fn header(mut self, name: &str, value: impl ToString) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value.to_string()),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    fn set_header(mut self, name: &str, value: impl ToString) -> Self {
        if let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) {
            self.headers.retain(|(existing, _)| *existing != parsed);
        }
        self.header(name, value)
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(self.body);
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// Per-request context shared by the answer builders: who asked, when, under which limits.
struct Call<'a> {
    sim: &'a ProviderSim,
    request_id: String,
    elapsed: Duration,
    account: Arc<Account>,
    rpm: Option<u32>,
    concurrency: Option<u32>,
}

impl<'a> Call<'a> {
    /// Number the request, find its account and the limits in force. Also returns the request's
    /// mixed seed and random stream.
    fn begin(sim: &'a ProviderSim, key: Option<&str>) -> (Self, u64, Xoshiro256PlusPlus) {
        let elapsed = sim.shared.clock.elapsed();
        let (mixed, rng) = sim.shared.next_request();
        let (concurrency, rpm) = sim.scenario.limits_at(elapsed);
        let call = Call {
            sim,
            request_id: format!("req_{mixed:016x}"),
            elapsed,
            account: sim.accounts.get(key.unwrap_or_default()),
            rpm,
            concurrency,
        };
        (call, mixed, rng)
    }

    fn error(
        &self,
        status: u16,
        code: Option<&str>,
        message: &str,
        bill: Option<Bill>,
        details: Value,
    ) -> Answer {
        let body = self.sim.dialect.error(&ErrorParts {
            code,
            message,
            elapsed_s: 0.0,
            request_id: &self.request_id,
            bill,
            details,
        });
        Answer::json(status, &body).header("x-request-id", &self.request_id)
    }

    /// A 400 for a request the simulator cannot serve.
    fn bad_request(&self, message: &str) -> Answer {
        self.error(
            400,
            self.sim.dialect.bad_request_code(),
            message,
            None,
            json!({}),
        )
    }

    /// The key's refusal, when the dialect turns it away.
    fn refuse_key(&self, key: Option<&str>) -> Option<Answer> {
        let failure = self.sim.dialect.check_key(key)?;
        Some(self.error(401, failure.code, failure.message, None, json!({})))
    }

    /// Rate-limit and concurrency headers (for the dialects that send them on every answer), and
    /// the answer made a response.
    fn finish(&self, answer: Answer) -> Response {
        self.limit_headers(answer).into_response()
    }

    fn limit_headers(&self, mut answer: Answer) -> Answer {
        if !self.sim.dialect.sends_limit_headers() {
            return answer;
        }
        let profile = &self.sim.profile;
        if let Some(limit) = self.rpm {
            let window = self.elapsed.as_secs() / 60;
            let used = self.account.minute_used(window);
            let reset = self
                .sim
                .shared
                .clock
                .unix_ms_at(Duration::from_secs((window + 1) * 60))
                / 1000;
            if let Some(name) = &profile.rate_limit.limit {
                answer = answer.header(name, limit);
            }
            if let Some(name) = &profile.rate_limit.remaining {
                answer = answer.header(name, limit.saturating_sub(used));
            }
            if let Some(name) = &profile.rate_limit.reset {
                answer = answer.header(name, reset);
            }
        }
        if let Some(limit) = self.concurrency {
            if let Some(name) = &profile.concurrency.limit {
                answer = answer.header(name, limit);
            }
            if let Some(name) = &profile.concurrency.current {
                answer = answer.header(name, self.account.in_flight());
            }
        }
        answer
    }

    /// A 429 whose window is spent: `Retry-After`, `X-RateLimit-Remaining: 0` and the reset all
    /// name the same moment, `retry_after_s` from now, so no hint contradicts another.
    fn window_spent(&self, answer: Answer, retry_after_s: u64) -> Answer {
        let profile = &self.sim.profile;
        let now_ms = self.sim.shared.clock.unix_ms_at(self.elapsed);
        let mut answer = self
            .limit_headers(answer)
            .set_header("retry-after", retry_after_s);
        if !self.sim.dialect.sends_limit_headers() {
            return answer;
        }
        if let Some(name) = &profile.rate_limit.remaining {
            answer = answer.set_header(name, 0);
        }
        if let Some(name) = &profile.rate_limit.reset {
            answer = answer.set_header(name, (now_ms + retry_after_s * 1000).div_ceil(1000));
        }
        answer
    }

    /// Count the request against the rate windows and take an in-flight slot, or the 429 that
    /// refuses it. A per-minute refusal spends the window until the minute ends; a per-second
    /// burst or a concurrency refusal asks for a second's wait and leaves the minute's count as it
    /// is, so the headers agree with `Retry-After`.
    fn admit(&self) -> Result<InFlight, Answer> {
        let elapsed_s = self.elapsed.as_secs();
        if let Some(limit) = self.rpm
            && let Err(used) = self.account.take_minute(elapsed_s / 60, limit)
        {
            let answer = self.rate_refusal(used, limit, "minute");
            let now_ms = self.sim.shared.clock.unix_ms_at(self.elapsed);
            let reset_ms = self
                .sim
                .shared
                .clock
                .unix_ms_at(Duration::from_secs((elapsed_s / 60 + 1) * 60));
            let wait = reset_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
            return Err(self.window_spent(answer, wait));
        }
        if let Some(limit) = self.sim.scenario.settings.burst_per_second
            && let Err(used) = self.account.take_second(elapsed_s, limit)
        {
            let answer = self.rate_refusal(used, limit, "second");
            return Err(self.limit_headers(answer).set_header("retry-after", 1));
        }
        self.account.enter(self.concurrency).map_err(|current| {
            let limit = self.concurrency.unwrap_or(current);
            let message = format!(
                "Concurrent request limit reached for your plan ({current}/{limit}). Retry shortly."
            );
            let answer = self.error(
                429,
                Some(self.sim.dialect.concurrency_code()),
                &message,
                None,
                json!({ "concurrency_limit": limit }),
            );
            self.limit_headers(answer).set_header("retry-after", 1)
        })
    }

    fn rate_refusal(&self, used: u32, limit: u32, window: &str) -> Answer {
        let message = format!("rate limit exceeded: {used}/{limit} requests per {window}");
        self.error(
            429,
            self.sim.dialect.rate_code(),
            &message,
            None,
            json!({ "limit": limit, "window": window }),
        )
    }

    /// The request's fields and the outcome it gets: forced by name, or drawn from the scenario.
    fn plan(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        rng: &mut Xoshiro256PlusPlus,
    ) -> Result<(RequestView, Planned), Answer> {
        let sim = self.sim;
        let request =
            read_request(&sim.profile, sim.dialect, body).map_err(|m| self.bad_request(m))?;
        let planned = match forced_fault(headers, &request.url) {
            Some(Ok(name)) => Planned::resolve(&sim.profile, &name)
                .map_err(|message| self.bad_request(&format!("omniscope simulator: {message}")))?,
            Some(Err(message)) => {
                return Err(self.bad_request(&format!("omniscope simulator: {message}")));
            }
            None => sim.scenario.pick(rng, self.elapsed),
        };
        Ok((request, planned))
    }

    /// The 402 for a used-up quota or balance, before any work.
    fn account_refusal(&self) -> Option<Answer> {
        let sim = self.sim;
        let settings = &sim.scenario.settings;
        if let Some(quota) = settings.monthly_quota {
            let used = self.account.successes();
            if used >= quota {
                let message =
                    format!("monthly quota exceeded: {used}/{quota} requests used this month");
                return Some(self.error(
                    402,
                    sim.dialect.quota_code(),
                    &message,
                    None,
                    json!({ "quota": quota, "used": used }),
                ));
            }
        }
        if !self.account.can_afford(sim.price_micro) {
            let available = self.account.balance().unwrap_or(0.0);
            return Some(self.error(
                402,
                sim.dialect.balance_code(),
                "Your account has insufficient balance for this request",
                None,
                json!({ "required_credits": amount(settings.price), "available_credits": amount(available) }),
            ));
        }
        None
    }

    /// Do the scrape's work on paper: the latency, whether an escalation cured the failure, what
    /// is charged, and the body it ends with (now or as a job's result).
    fn work(
        &self,
        request: &RequestView,
        planned: Planned,
        headers: &HeaderMap,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Work {
        let sim = self.sim;
        let settings = &sim.scenario.settings;
        let latency = sim.latency(rng, self.elapsed, headers);
        let violation_roll = rng.random::<f64>();
        let break_refund = header_text(headers, REFUND_HEADER) == Some("break")
            || violation_roll < settings.refund_violation;
        let planned = match planned {
            Planned::ApiError(error) if sim.cured(&error, request) => {
                Planned::Success { target_status: 200 }
            }
            other => other,
        };
        let can_queue = sim.profile.endpoints.async_submit.is_none()
            && sim.profile.endpoints.job_poll.is_some();
        let defers = can_queue
            && (planned == Planned::Async
                || request.wants_job
                || settings
                    .async_after_ms
                    .is_some_and(|after| latency > Duration::from_millis(after)));
        let tier_used = request
            .tier
            .clone()
            .or_else(|| sim.profile.request.tiers.first().cloned())
            .unwrap_or_else(|| "1".to_owned());
        let elapsed_s = (latency.as_secs_f64() * 1000.0).round() / 1000.0;
        let outcome = match &planned {
            Planned::Success { .. } | Planned::Async | Planned::Chaos(_) => {
                let target_status = match planned {
                    Planned::Success { target_status } => target_status,
                    _ => 200,
                };
                self.account.charge(sim.price_micro);
                self.account.count_success();
                Ok(sim.dialect.success(&SuccessParts {
                    url: &request.url,
                    target_status,
                    elapsed_s,
                    request_id: &self.request_id,
                    bill: Bill {
                        charged: settings.price,
                        refunded: None,
                    },
                    tier_used: &tier_used,
                    content: None,
                }))
            }
            Planned::ApiError(error) => {
                Err((error.clone(), self.failure_bill(error, break_refund)))
            }
        };
        Work {
            planned,
            latency,
            defers,
            tier_used,
            outcome,
        }
    }

    /// What a failure costs: a refunded one is charged and given back (or, when the scenario
    /// breaks the refund rule, charged and kept); one the contract does not refund is free here.
    fn failure_bill(&self, error: &ApiError, break_refund: bool) -> Option<Bill> {
        let price = self.sim.scenario.settings.price;
        if !error.refunded {
            return None;
        }
        if break_refund {
            self.account.charge(self.sim.price_micro);
            return Some(Bill {
                charged: price,
                refunded: None,
            });
        }
        Some(Bill {
            charged: price,
            refunded: Some(price),
        })
    }

    /// Store the work as a job and answer 202 with its id.
    fn queue_job(&self, mixed: u64, request: RequestView, work: Work) -> Answer {
        let sim = self.sim;
        let job_id = format!("job_{:016x}", splitmix(mixed));
        let end = match work.outcome {
            Ok(result) => JobEnd::Completed(result),
            Err((error, _)) => JobEnd::Failed(JobFailure {
                timed_out: error.status == 504 || error.code.as_deref() == Some("TIMEOUT"),
                code: error.code,
                message: error.message,
            }),
        };
        sim.jobs.insert(
            job_id.clone(),
            Job {
                url: request.url,
                created: self.elapsed,
                queued_for: Duration::from_millis(sim.scenario.settings.job_queue_ms),
                works_for: work.latency,
                end,
            },
        );
        let poll = sim
            .profile
            .endpoints
            .job_poll
            .as_deref()
            .unwrap_or_default()
            .replace("{job_id}", &job_id);
        Answer::json(202, &sim.dialect.accepted(&job_id, &poll))
            .header("x-request-id", &self.request_id)
    }

    /// Wait out the latency, then answer with the work's body.
    async fn answer_now(&self, request: &RequestView, work: Work) -> Answer {
        let sim = self.sim;
        if !work.latency.is_zero() && !matches!(work.planned, Planned::Chaos(Chaos::Stall)) {
            tokio::time::sleep(work.latency).await;
        }
        let answer = match (work.outcome, &work.planned) {
            (Ok(_), Planned::Chaos(chaos)) => {
                chaos_answer(self, *chaos, &request.url, &work.tier_used)
            }
            (Ok(body), _) => Answer::json(200, &body).header("x-request-id", &self.request_id),
            (Err((error, bill)), _) => {
                let answer = self.error(
                    error.status,
                    error.code.as_deref(),
                    &error.message,
                    bill,
                    json!({ "url": request.url }),
                );
                if error.status == 429 && error.code.as_deref() == sim.dialect.rate_code() {
                    // A drawn or forced rate-limit refusal reads like a real one: the window is
                    // spent for the second it asks to wait.
                    return self.window_spent(answer, 1);
                }
                if error.status == 429 {
                    return self.limit_headers(answer).set_header("retry-after", 1);
                }
                answer
            }
        };
        let answer = self.limit_headers(answer);
        if matches!(work.planned, Planned::Chaos(Chaos::BadHeaders)) {
            return garbage_headers(&sim.profile, answer);
        }
        answer
    }
}

/// A scrape's work, decided before any waiting.
struct Work {
    planned: Planned,
    latency: Duration,
    /// Answered as a job (202) instead of a body.
    defers: bool,
    tier_used: String,
    /// The scrape response, or the failure and what it cost.
    outcome: Result<Value, (ApiError, Option<Bill>)>,
}

/// A JSON response (for a dialect's own routes).
pub fn json_answer(status: u16, value: &Value) -> Response {
    Answer::json(status, value).into_response()
}

/// The 401 for a key the dialect refuses, with the provider's limit headers; `None` when accepted.
pub fn key_refusal(
    sim: &ProviderSim,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<Response> {
    let key = sim.key(headers, query);
    let (call, _, _) = Call::begin(sim, key);
    call.refuse_key(key).map(|answer| call.finish(answer))
}

/// A 400 in the provider's error shape (for a dialect's own routes).
pub fn plain_error(sim: &ProviderSim, status: u16, message: &str) -> Response {
    let (call, _, _) = Call::begin(sim, None);
    let answer = call.error(
        status,
        sim.dialect.bad_request_code(),
        message,
        None,
        json!({}),
    );
    call.finish(answer)
}

/// Two simulated providers claim one path, or a path is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: path {path:?} is invalid or already served")]
pub struct RouteError {
    pub provider: String,
    pub path: String,
}

/// Build the router for every simulated provider.
///
/// # Errors
/// Two providers claim the same path.
pub fn router(providers: &[Arc<ProviderSim>]) -> Result<Router, RouteError> {
    let mut seen: Vec<String> = Vec::new();
    let mut app = Router::new();
    for sim in providers {
        let endpoints = &sim.profile.endpoints;
        let mut paths = vec![endpoints.scrape.clone()];
        paths.extend(endpoints.async_submit.iter().cloned());
        paths.extend(endpoints.job_poll.iter().cloned());
        paths.extend(endpoints.usage.iter().cloned());
        for path in &paths {
            if !path.starts_with('/') || seen.contains(path) {
                return Err(RouteError {
                    provider: sim.profile.name.clone(),
                    path: path.clone(),
                });
            }
            seen.push(path.clone());
        }
        let mut routes = Router::new().route(&endpoints.scrape, post(scrape_sync));
        if let Some(path) = &endpoints.async_submit {
            routes = routes.route(path, post(scrape_async));
        }
        if let Some(path) = &endpoints.job_poll {
            routes = routes.route(path, get(job_poll));
        }
        if let Some(path) = &endpoints.usage {
            routes = routes.route(path, get(usage));
        }
        routes = routes.merge(sim.dialect.extra_routes());
        app = app.merge(routes.with_state(Arc::clone(sim)));
    }
    Ok(app.fallback(not_found))
}

async fn not_found() -> Response {
    Answer::json(
        404,
        &json!({ "error": "NOT_FOUND", "message": "no such route on the omniscope simulator" }),
    )
    .into_response()
}

async fn scrape_sync(
    State(sim): State<Arc<ProviderSim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    scrape(&sim, uri.query(), &headers, &body, false).await
}

async fn scrape_async(
    State(sim): State<Arc<ProviderSim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    scrape(&sim, uri.query(), &headers, &body, true).await
}

/// One scrape: the key, the limits, the request, the account, then the answer, now or as a job.
async fn scrape(
    sim: &ProviderSim,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    submit_async: bool,
) -> Response {
    let key = sim.key(headers, query);
    let (call, mixed, mut rng) = Call::begin(sim, key);
    if let Some(refusal) = call.refuse_key(key) {
        // "Every answer carries" the limit headers, a refused key's included.
        return call.finish(refusal);
    }
    call.account.count_request();
    let slot = match call.admit() {
        Ok(slot) => slot,
        Err(refusal) => return refusal.into_response(),
    };
    let (request, planned) = match call.plan(headers, body, &mut rng) {
        Ok(plan) => plan,
        Err(refusal) => return call.finish(refusal),
    };
    if let Some(refusal) = call.account_refusal() {
        return call.finish(refusal);
    }
    let work = call.work(&request, planned, headers, &mut rng);
    if submit_async || work.defers {
        drop(slot);
        let accepted = call.queue_job(mixed, request, work);
        return call.finish(accepted);
    }
    let answer = call.answer_now(&request, work).await;
    drop(slot);
    answer.into_response()
}

/// The chaos scenario's unreadable values for each limit header the profile names.
pub(super) fn garbage_header_values(profile: &Profile) -> Vec<(&str, &'static str)> {
    [
        (profile.rate_limit.limit.as_deref(), "lots"),
        (profile.rate_limit.remaining.as_deref(), "-3"),
        (profile.rate_limit.reset.as_deref(), "tomorrow-ish"),
        (profile.rate_limit.retry_after.as_deref(), "soon"),
        (
            profile.concurrency.limit.as_deref(),
            "99999999999999999999999",
        ),
        (profile.concurrency.current.as_deref(), "1.5"),
        (profile.concurrency.remaining.as_deref(), "many"),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name?, value)))
    .collect()
}

fn garbage_headers(profile: &Profile, mut answer: Answer) -> Answer {
    for (name, value) in garbage_header_values(profile) {
        answer = answer.set_header(name, value);
    }
    answer
}

/// A body that sends `first`, then nothing until shutdown or the stall limit.
pub(super) fn stalled_body(mut shutdown: watch::Receiver<bool>, first: &'static [u8]) -> Body {
    let first =
        futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from_static(first)) });
    let stall = futures::stream::once(async move {
        tokio::select! {
            () = tokio::time::sleep(STALL) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
        Ok::<_, std::io::Error>(Bytes::new())
    });
    Body::from_stream(futures::StreamExt::chain(first, stall))
}

/// A body that sends `first`, then cuts the connection.
pub(super) fn dropped_body(first: &'static [u8]) -> Body {
    let first =
        futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from_static(first)) });
    let cut = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated drop",
        ))
    });
    Body::from_stream(futures::StreamExt::chain(first, cut))
}

fn chaos_answer(call: &Call<'_>, chaos: Chaos, url: &str, tier_used: &str) -> Answer {
    let sim = call.sim;
    let success = |content: Option<&str>| {
        sim.dialect.success(&SuccessParts {
            url,
            target_status: 200,
            elapsed_s: 0.0,
            request_id: &call.request_id,
            bill: Bill::FREE,
            tier_used,
            content,
        })
    };
    match chaos {
        Chaos::Html => Answer {
            status: 200,
            headers: Vec::new(),
            body: Body::from(
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
            ),
            content_type: "text/html; charset=utf-8",
        },
        Chaos::Truncated => {
            let full = serde_json::to_vec(&success(None)).unwrap_or_default();
            let half = full.len() / 2;
            Answer {
                status: 200,
                headers: Vec::new(),
                body: Body::from(full[..half].to_vec()),
                content_type: "application/json",
            }
        }
        Chaos::Huge => {
            let content = "x".repeat(HUGE_CONTENT_BYTES);
            Answer::json(200, &success(Some(&content)))
        }
        Chaos::BadHeaders => Answer::json(200, &success(None)),
        Chaos::Stall => Answer {
            status: 200,
            headers: Vec::new(),
            body: stalled_body(sim.shared.shutdown.clone(), b"{\"success\":"),
            content_type: "application/json",
        },
        Chaos::Drop => Answer {
            status: 200,
            headers: Vec::new(),
            body: dropped_body(b"{\"success\":true,\"da"),
            content_type: "application/json",
        },
    }
}

fn rfc3339(clock: &crate::clock::Clock, at: Duration) -> String {
    let ms = i64::try_from(clock.unix_ms_at(at)).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn job_poll(
    State(sim): State<Arc<ProviderSim>>,
    Path(job_id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let key = sim.key(&headers, uri.query());
    let (call, _, _) = Call::begin(&sim, key);
    if let Some(refusal) = call.refuse_key(key) {
        return call.finish(refusal);
    }
    let Some(job) = sim.jobs.get(&job_id) else {
        let message = format!("job {job_id} not found (jobs are kept for a limited time)");
        let answer = call.error(404, sim.dialect.not_found_code(), &message, None, json!({}));
        return call.finish(answer);
    };
    let (phase, since) = job.phase_at(call.elapsed);
    let created_at = rfc3339(&sim.shared.clock, job.created);
    let updated_at = rfc3339(&sim.shared.clock, since);
    let (result, failure) = match (phase, &job.end) {
        (JobPhase::Ended, JobEnd::Completed(result)) => (Some(result), None),
        (JobPhase::Ended, JobEnd::Failed(failure)) => (None, Some(failure)),
        _ => (None, None),
    };
    let body = sim.dialect.job(&JobParts {
        job_id: &job_id,
        status: sim.dialect.job_status(phase, failure),
        url: &job.url,
        created_at: &created_at,
        updated_at: &updated_at,
        result,
        failure,
    });
    call.finish(Answer::json(200, &body).header("x-request-id", &call.request_id))
}

async fn usage(
    State(sim): State<Arc<ProviderSim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let key = sim.key(&headers, uri.query());
    let (call, _, _) = Call::begin(&sim, key);
    if let Some(refusal) = call.refuse_key(key) {
        return call.finish(refusal);
    }
    let (period_start, period_end) = billing_period(&sim.shared.clock, call.elapsed);
    let settings = &sim.scenario.settings;
    let body = sim.dialect.usage(&UsageParts {
        plan: &settings.plan,
        balance: call.account.balance(),
        starting_balance: settings.balance,
        used: call.account.spent(),
        requests: call.account.requests(),
        period_start: &period_start,
        period_end: &period_end,
    });
    call.finish(Answer::json(200, &body).header("x-request-id", &call.request_id))
}

/// The calendar month (UTC) around `at`, as RFC 3339 instants.
fn billing_period(clock: &crate::clock::Clock, at: Duration) -> (String, String) {
    let ms = i64::try_from(clock.unix_ms_at(at)).unwrap_or(i64::MAX);
    let now = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let start = now
        .date_naive()
        .with_day(1)
        .unwrap_or_else(|| now.date_naive());
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(start);
    let midnight = |date: chrono::NaiveDate| {
        date.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    (midnight(start), midnight(end))
}
