//! Dialects written from the profiles themselves, for the providers without a hand-written one
//! (ScraperAPI, ScrapingBee, ZenRows, ScrapFly, Zyte API, Crawlbase, Bright Data): each is served
//! under `/<name>/` followed by its own paths, so `--endpoint http://ADDR/<name>` reaches it.
//!
//! Every fact goes where the profile reads it: the target's status into its header, its JSON
//! pointer or the HTTP status itself; the cost, the concurrency, the provider's own status and the
//! error code likewise. What the providers' official SDKs need beyond the profile's facts
//! (ScrapFly's `config`/`context`/`result` envelope, Zyte's base64 body) is the small per-provider
//! table [`ENVELOPES`]. Any well-formed key is accepted. An outcome is forced per request as for
//! the other dialects: a target URL `https://fault.test/NAME` or the `X-Sim-Fault: NAME` header,
//! where NAME is `success`, `target:NNN`, an error code of the provider's table or a status of it.
//!
//! Scenarios drive these dialects as they drive the hand-written ones: each provider's section
//! (plan, concurrency, requests per minute, burst, monthly quota, balance, price, latency, refund
//! violations, faults and waves) is applied per key; a refusal is the profile's own row (its 429
//! for limits, its 402, or its account row, for an exhausted quota or balance).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rand::RngExt;
use serde_json::{Map, Value, json};

use super::REFUND_HEADER;
use super::fault::{ApiError, Chaos, Planned};
use super::scenario::CompiledProvider;
use super::server::{
    Asked, HUGE_CONTENT_BYTES, Shared, cures, dropped_body, forced_fault, forced_latency,
    garbage_header_values, header_text, stalled_body,
};
use super::state::{Account, AccountBook, InFlight, to_micro};
use crate::outcome::Fault;
use crate::provider::{
    AuthStyle, BodyKind, Field, FieldSource, Placement, Profile, field_pointer_tokens, query_text,
    request_field_path,
};

const PAGE: &str = "<!doctype html><html><head><title>Example Domain</title></head><body><h1>Example Domain</h1></body></html>";
/// [`PAGE`] in base64, as Zyte's `httpResponseBody` carries a page.
const PAGE_BASE64: &str = "PCFkb2N0eXBlIGh0bWw+PGh0bWw+PGhlYWQ+PHRpdGxlPkV4YW1wbGUgRG9tYWluPC90aXRsZT48L2hlYWQ+PGJvZHk+PGgxPkV4YW1wbGUgRG9tYWluPC9oMT48L2JvZHk+PC9odG1sPg==";

/// What an official SDK reads beyond the profile's facts: (provider, added to every JSON answer
/// of the scrape call, added to successful ones). `{url}` is the target.
const ENVELOPES: &[(&str, &str, &str)] = &[
    // scrapfly-sdk 0.12.0 reads config.headers, config.url, result.status/reason/format/duration/
    // log_url on every scrape answer (api_response.py, client.py _handle_response).
    (
        "scrapfly",
        r#"{"config": {"headers": {}, "url": "{url}"}, "context": {},
            "result": {"status": "DONE", "reason": "OK", "format": "text", "content": "",
                       "duration": 0.1, "log_url": "", "request_headers": {}, "response_headers": {}}}"#,
        r#"{"context": {"cost": {"total": 1}}}"#,
    ),
    // zyte-api 0.11.0 returns the JSON as is; the page is base64 in httpResponseBody.
    (
        "zyte",
        "{}",
        r#"{"url": "{url}", "httpResponseBody": "PAGE_BASE64"}"#,
    ),
];

/// One provider served from its profile, with its scenario section and per-key accounts.
#[derive(Debug)]
struct ProfiledSim {
    profile: Profile,
    shared: Arc<Shared>,
    scenario: CompiledProvider,
    accounts: AccountBook,
    price_micro: i64,
}

/// Routes for every (profile, scenario section) in `providers`, each under `/<name>`.
pub fn router(providers: Vec<(Profile, CompiledProvider)>, shared: &Arc<Shared>) -> Router {
    let mut app = Router::new();
    for (profile, scenario) in providers {
        let prefix = format!("/{}", profile.name);
        let scrape = format!("{prefix}{}", profile.endpoints.scrape);
        let mut routes = Router::new().route(&scrape, any(scrape_call));
        // ScraperAPI's SDK calls the base URL itself, without the trailing '/'.
        if let Some(bare) = scrape.strip_suffix('/').filter(|bare| !bare.is_empty()) {
            routes = routes.route(bare, any(scrape_call));
        }
        if let Some(usage) = &profile.endpoints.usage {
            let path = usage.split('?').next().unwrap_or(usage);
            routes = routes.route(&format!("{prefix}{path}"), get(usage_call));
        }
        let sim = Arc::new(ProfiledSim {
            shared: Arc::clone(shared),
            accounts: AccountBook::new(scenario.settings.balance),
            price_micro: to_micro(scenario.settings.price),
            scenario,
            profile,
        });
        app = app.merge(routes.with_state(sim));
    }
    app
}

/// One answer being built.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    json: Option<Value>,
    text: Option<String>,
    /// A body that is not the answer's JSON or text (the chaos scenario's broken transfers).
    raw: Option<(Body, &'static str)>,
}

impl Reply {
    fn new(status: u16, json_body: bool) -> Self {
        Self {
            status,
            headers: Vec::new(),
            json: json_body.then(|| Value::Object(Map::new())),
            text: None,
            raw: None,
        }
    }

    /// Put `value` where `field` says: a header, a JSON pointer, or (for a status) the HTTP status.
    fn place(&mut self, field: Option<&Field>, value: &Value) {
        let Some(field) = field else { return };
        match &field.0 {
            FieldSource::Header(name) => self.headers.push((name.clone(), text_of(value))),
            FieldSource::Json(pointer) => {
                let json = self.json.get_or_insert_with(|| Value::Object(Map::new()));
                set_at(json, &field_pointer_tokens(pointer), value.clone());
            }
            FieldSource::Status(only) => {
                if let Some(status) = value.as_u64().and_then(|s| u16::try_from(s).ok())
                    && (only.is_empty() || only.contains(&status))
                {
                    self.status = status;
                }
            }
        }
    }

    /// Set a header, replacing any of the same name.
    fn set_header(&mut self, name: &str, value: impl ToString) {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_string()));
    }

    fn merge(&mut self, template: &str, url: &str) {
        let text = template
            .replace("{url}", &url.replace('"', "%22"))
            .replace("PAGE_BASE64", PAGE_BASE64);
        let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(&text) else {
            return;
        };
        let json = self.json.get_or_insert_with(|| Value::Object(Map::new()));
        merge_into(json, Value::Object(extra));
    }

    /// The body and its content type.
    fn into_body(self) -> (u16, Vec<(String, String)>, Body, &'static str) {
        let (body, content_type) = match (self.raw, self.json, self.text) {
            (Some((body, content_type)), ..) => (body, content_type),
            (None, Some(json), _) => (
                Body::from(json.to_string()),
                "application/json; charset=utf-8",
            ),
            (None, None, Some(text)) if text.starts_with('<') => {
                (Body::from(text), "text/html; charset=utf-8")
            }
            (None, None, Some(text)) => (Body::from(text), "text/plain; charset=utf-8"),
            (None, None, None) => (Body::empty(), "text/plain; charset=utf-8"),
        };
        (self.status, self.headers, body, content_type)
    }

    fn into_response(self) -> Response {
        let (status, pairs, body, content_type) = self.into_body();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        for (name, value) in &pairs {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        (status, headers, body).into_response()
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Set `value` at `tokens`, making objects on the way (a non-object in the way is replaced).
fn set_at(root: &mut Value, tokens: &[String], value: Value) {
    let Some((last, parents)) = tokens.split_last() else {
        *root = value;
        return;
    };
    let mut node = root;
    for token in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

/// Objects merge key by key; `extra` fills what `base` lacks and never overwrites a fact.
fn merge_into(base: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (base, extra) {
        for (key, value) in extra {
            match base.get_mut(&key) {
                Some(existing) => merge_into(existing, value),
                None => {
                    base.insert(key, value);
                }
            }
        }
    }
}

/// The request's query parameters, decoded.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The key, where `style` and `name` say it travels; `None` when absent or empty.
fn key_of(
    style: AuthStyle,
    name: Option<&str>,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Option<String> {
    let key = match style {
        AuthStyle::Header => name.and_then(|name| header_text(headers, name)),
        AuthStyle::Query => name.and_then(|name| {
            query
                .iter()
                .find(|(param, _)| param == name)
                .map(|(_, value)| value.as_str())
        }),
        AuthStyle::Bearer => {
            header_text(headers, "authorization").and_then(|value| value.strip_prefix("Bearer "))
        }
        AuthStyle::Basic => {
            header_text(headers, "authorization").and_then(|value| value.strip_prefix("Basic "))
        }
    };
    key.map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
}

/// What the scrape request asked for, read where the profile says it travels.
struct Request {
    query: Vec<(String, String)>,
    body: Option<Map<String, Value>>,
}

impl Request {
    /// A request field's text: a query parameter, or a (nested) JSON field; numbers and booleans
    /// as text.
    fn text(&self, profile: &Profile, name: &str) -> Option<String> {
        match profile.request.placement {
            Placement::Query => self
                .query
                .iter()
                .find(|(param, _)| param == name)
                .map(|(_, value)| value.clone()),
            Placement::Json => {
                let path = request_field_path(name);
                let (first, rest) = path.split_first()?;
                let mut value = self.body.as_ref()?.get(first)?;
                for key in rest {
                    value = value.as_object()?.get(key)?;
                }
                match value {
                    Value::String(text) => Some(text.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
                    _ => None,
                }
            }
        }
    }

    /// Whether the request asks for `mode`: all of the mode's parameters, or its mode field.
    fn has_mode(&self, profile: &Profile, mode: &str) -> bool {
        let shape = &profile.request;
        match shape.mode_params.get(mode) {
            Some(params) if !params.is_empty() => params
                .iter()
                .all(|(name, value)| self.text(profile, name) == query_text(value)),
            _ => shape
                .mode
                .as_deref()
                .is_some_and(|field| self.text(profile, field).as_deref() == Some(mode)),
        }
    }
}

impl ProfiledSim {
    fn error_of(&self, code: &str, status: u16) -> Option<ApiError> {
        ApiError::from_code(&self.profile, code, Some(status)).ok()
    }

    /// The answer to too many requests: the code row for the kind (a concurrency cap or a
    /// request rate), else the 429 status row.
    fn limit_error(&self, concurrency: bool) -> ApiError {
        let profile = &self.profile;
        profile
            .errors
            .iter()
            .filter(|rule| rule.status == 429 && rule.fault == Fault::RateLimit)
            .find(|rule| rule.concurrency_limit == concurrency)
            .and_then(|rule| self.error_of(&rule.code, 429))
            .or_else(|| ApiError::from_status(profile, 429).ok())
            .unwrap_or_else(|| ApiError {
                status: 429,
                code: None,
                message: "Too many requests".to_owned(),
                refunded: true,
            })
    }

    /// The answer to a used-up quota or balance: the 402 row, else the first row that stops the
    /// account for something other than the key, else the key's (ScrapingBee answers "invalid
    /// API key or no more credits" with one 401).
    fn exhausted_error(&self) -> ApiError {
        let profile = &self.profile;
        let stops = |key_too: bool| {
            profile
                .statuses
                .iter()
                .filter(|rule| rule.account_stop && rule.status >= 400)
                .find(|rule| key_too || rule.status != 401)
                .and_then(|rule| ApiError::from_status(profile, rule.status).ok())
        };
        ApiError::from_status(profile, 402)
            .ok()
            .or_else(|| stops(false))
            .or_else(|| stops(true))
            .unwrap_or_else(|| ApiError {
                status: 402,
                code: None,
                message: "Payment required".to_owned(),
                refunded: true,
            })
    }

    /// Count the request against the rate windows and take an in-flight slot, or the 429 that
    /// refuses it, with a `Retry-After` naming when to come back.
    fn admit(
        &self,
        account: &Arc<Account>,
        elapsed: Duration,
        seq: u64,
    ) -> Result<InFlight, Reply> {
        let (concurrency, rpm) = self.scenario.limits_at(elapsed);
        let seconds = elapsed.as_secs();
        let refuse = |concurrency: bool, wait: u64| {
            let mut reply = failure(&self.profile, &self.limit_error(concurrency), "", seq, None);
            reply.set_header("retry-after", wait.max(1));
            reply
        };
        if let Some(limit) = rpm
            && account.take_minute(seconds / 60, limit).is_err()
        {
            return Err(refuse(false, 60 - seconds % 60));
        }
        if let Some(limit) = self.scenario.settings.burst_per_second
            && account.take_second(seconds, limit).is_err()
        {
            return Err(refuse(false, 1));
        }
        account.enter(concurrency).map_err(|_| refuse(true, 1))
    }

    /// The refusal of a used-up monthly quota or balance, before any work.
    fn account_refusal(&self, account: &Account, seq: u64) -> Option<Reply> {
        let quota_used_up = self
            .scenario
            .settings
            .monthly_quota
            .is_some_and(|quota| account.successes() >= quota);
        (quota_used_up || !account.can_afford(self.price_micro))
            .then(|| failure(&self.profile, &self.exhausted_error(), "", seq, None))
    }

    /// The concurrency headers the profile names, as the account stands.
    fn concurrency_headers(&self, reply: &mut Reply, account: &Account, elapsed: Duration) {
        let names = &self.profile.concurrency;
        let (limit, _) = self.scenario.limits_at(elapsed);
        let current = account.in_flight();
        // An unlimited account shows an illustrative plan of ten.
        let limit = limit.unwrap_or(10).max(current);
        for (name, value) in [
            (&names.limit, limit),
            (&names.current, current),
            (&names.remaining, limit - current),
        ] {
            if let Some(name) = name {
                reply.set_header(name, value);
            }
        }
    }
}

async fn scrape_call(
    State(sim): State<Arc<ProfiledSim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let profile = &sim.profile;
    let (seq, mut rng) = sim.shared.next_request();
    let request = Request {
        query: query_pairs(query.as_deref()),
        body: match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        },
    };
    let Some(key) = key_of(
        profile.auth.style,
        profile.auth.name.as_deref(),
        &headers,
        &request.query,
    ) else {
        return status_failure(profile, 401, seq).into_response();
    };
    let Some(target) = request
        .text(profile, &profile.request.url)
        .filter(|target| !target.is_empty())
    else {
        return status_failure(profile, 400, seq).into_response();
    };
    let planned = match forced_fault(&headers, &target)
        .map(|name| name.and_then(|name| Planned::resolve(profile, &name)))
    {
        Some(Ok(planned)) => Some(planned),
        Some(Err(error)) => {
            let mut reply = Reply::new(400, false);
            reply.text = Some(format!("omniscope simulator, {}: {error}", profile.name));
            return reply.into_response();
        }
        None => None,
    };
    let elapsed = sim.shared.clock.elapsed();
    let account = sim.accounts.get(&key);
    account.count_request();
    let slot = match sim.admit(&account, elapsed, seq) {
        Ok(slot) => slot,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(refusal) = sim.account_refusal(&account, seq) {
        return refusal.into_response();
    }
    let planned = planned.unwrap_or_else(|| sim.scenario.pick(&mut rng, elapsed));
    let latency =
        forced_latency(&headers).unwrap_or_else(|| sim.scenario.draw_latency(&mut rng, elapsed));
    let break_refund = header_text(&headers, REFUND_HEADER) == Some("break")
        || rng.random::<f64>() < sim.scenario.settings.refund_violation;
    let planned = cured(profile, &request, planned);
    if !latency.is_zero() && planned != Planned::Chaos(Chaos::Stall) {
        tokio::time::sleep(latency).await;
    }
    let mut reply = sim.answer(&account, &planned, &target, seq, break_refund);
    sim.concurrency_headers(&mut reply, &account, elapsed);
    if planned == Planned::Chaos(Chaos::BadHeaders) {
        for (name, value) in garbage_header_values(profile) {
            reply.set_header(name, value);
        }
    }
    drop(slot);
    reply.into_response()
}

/// The planned failure, or a success when the request carries the change the profile's
/// escalation rule names (a mode's parameters, a later tier or country).
fn cured(profile: &Profile, request: &Request, planned: Planned) -> Planned {
    let Planned::ApiError(error) = &planned else {
        return planned;
    };
    let field =
        |name: &Option<String>| name.as_deref().and_then(|name| request.text(profile, name));
    let (tier, country) = (
        field(&profile.request.tier),
        field(&profile.request.proxy_country),
    );
    let asked = Asked {
        has_mode: &|mode| request.has_mode(profile, mode),
        tier: tier.as_deref(),
        country: country.as_deref(),
    };
    if cures(profile, error, &asked) {
        Planned::Success { target_status: 200 }
    } else {
        planned
    }
}

impl ProfiledSim {
    /// The answer for what was planned, charging the account as the contract says.
    fn answer(
        &self,
        account: &Account,
        planned: &Planned,
        target: &str,
        seq: u64,
        break_refund: bool,
    ) -> Reply {
        let profile = &self.profile;
        let price = self.scenario.settings.price;
        let succeed = |target_status: u16, content: Option<String>| {
            if let Some(row) = target_failure_row(profile, target_status) {
                return failure(profile, &self.status_error(row), target, seq, None);
            }
            account.charge(self.price_micro);
            account.count_success();
            success(profile, target, target_status, seq, price, content)
        };
        match planned {
            Planned::Success { target_status } => succeed(*target_status, None),
            Planned::Async => succeed(200, None),
            Planned::ApiError(error) => {
                // A failure the contract says is free is charged only when the scenario breaks
                // the rule, so the refund audit has something to find.
                let charged = (error.refunded && break_refund).then(|| {
                    account.charge(self.price_micro);
                    price
                });
                failure(profile, error, target, seq, charged)
            }
            Planned::Chaos(chaos) => chaos_reply(*chaos, &self.shared).unwrap_or_else(|| {
                let huge = (*chaos == Chaos::Huge).then(|| "x".repeat(HUGE_CONTENT_BYTES));
                succeed(200, huge)
            }),
        }
    }

    fn status_error(&self, status: u16) -> ApiError {
        ApiError::from_status(&self.profile, status).unwrap_or_else(|_| ApiError {
            status,
            code: None,
            message: String::new(),
            refunded: true,
        })
    }
}

/// The chaos scenario's broken answers: HTML where JSON was promised, a body cut in half, a
/// transfer that stalls or drops. `None` for the kinds that are a success with a twist (a huge
/// page, garbage limit headers).
fn chaos_reply(chaos: Chaos, shared: &Shared) -> Option<Reply> {
    let html = "text/html; charset=utf-8";
    let body = match chaos {
        Chaos::Html => (
            Body::from(
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
            ),
            html,
        ),
        Chaos::Truncated => (
            Body::from("{\"result\": {\"status_code\": 2"),
            "application/json",
        ),
        Chaos::Stall => (
            stalled_body(shared.shutdown.clone(), b"<!doctype html><html>"),
            html,
        ),
        Chaos::Drop => (dropped_body(b"<!doctype html><ht"), html),
        Chaos::Huge | Chaos::BadHeaders => return None,
    };
    let mut reply = Reply::new(200, false);
    reply.raw = Some(body);
    Some(reply)
}

/// A provider that cannot say the target's status (ZenRows: "when a request is not successful, it
/// will always return a 422") answers a target error with its status row for target failures.
fn target_failure_row(profile: &Profile, target_status: u16) -> Option<u16> {
    if target_status < 400 || !profile.response.target_status.is_empty() {
        return None;
    }
    profile
        .statuses
        .iter()
        .find(|rule| rule.fault == Fault::Target)
        .map(|rule| rule.status)
}

fn success(
    profile: &Profile,
    target: &str,
    target_status: u16,
    seq: u64,
    price: f64,
    content: Option<String>,
) -> Reply {
    let shape = &profile.response;
    let mut reply = Reply::new(200, shape.body == BodyKind::Json);
    reply.place(shape.target_status.first(), &json!(target_status));
    reply.place(shape.provider_status.first(), &json!(200));
    reply.place(shape.success.first(), &json!(true));
    // Every cost header (ScrapingBee's Spb-Cost and Spb-Auto-Cost), or the first JSON place.
    for field in &shape.charged {
        reply.place(Some(field), &super::dialect::amount(price));
        if matches!(field.0, FieldSource::Json(_)) {
            break;
        }
    }
    // Not into an error object: a success carries none.
    let request_id = shape
        .request_id
        .iter()
        .find(|field| !field.to_string().contains("error"));
    reply.place(request_id, &json!(format!("sim-{seq:016x}")));
    let page = content.unwrap_or_else(|| PAGE.to_owned());
    match shape.body {
        BodyKind::Raw => reply.text = Some(page),
        BodyKind::Json => reply.place(shape.content.first(), &json!(page)),
    }
    if let Some((_, all, on_success)) = ENVELOPES.iter().find(|(name, ..)| *name == profile.name)
        && reply.json.is_some()
    {
        reply.merge(on_success, target);
        reply.merge(all, target);
    }
    reply
}

/// A status row's answer, for a request turned away before any work (a missing key or target).
fn status_failure(profile: &Profile, status: u16, seq: u64) -> Reply {
    let error = ApiError::from_status(profile, status).unwrap_or_else(|_| ApiError {
        status,
        code: None,
        message: StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("refused")
            .to_owned(),
        refunded: true,
    });
    failure(profile, &error, "", seq, None)
}

/// The answer for a row of the profile's tables; `charged` when the failure was billed anyway.
fn failure(
    profile: &Profile,
    error: &ApiError,
    target: &str,
    seq: u64,
    charged: Option<f64>,
) -> Reply {
    let shape = &profile.response;
    let status = error.status;
    // A raw-body provider's failure inside a 2xx says it in headers, not in a JSON body.
    let json_errors = (shape.body == BodyKind::Json || !(200..300).contains(&status))
        && shape
            .error_code
            .iter()
            .chain(&shape.message)
            .any(|field| matches!(field.0, FieldSource::Json(_)));
    let mut reply = Reply::new(status, json_errors);
    // Where a field may go: anywhere in a JSON answer, only headers in a plain one.
    let usable = |fields: &'_ [Field]| -> Option<Field> {
        fields
            .iter()
            .find(|field| json_errors || matches!(field.0, FieldSource::Header(_)))
            .cloned()
    };
    if let Some(code) = error.code.as_deref() {
        if (200..300).contains(&status) && !shape.provider_status.is_empty() {
            // A failure inside a 2xx, named by the provider's own status (Crawlbase's cb_status).
            let inner = code
                .parse::<u16>()
                .map_or_else(|_| json!(code), |n| json!(n));
            reply.place(usable(&shape.provider_status).as_ref(), &inner);
        }
        reply.place(usable(&shape.error_code).as_ref(), &json!(code));
    }
    reply.place(usable(&shape.message).as_ref(), &json!(error.message));
    reply.place(usable(&shape.success).as_ref(), &json!(false));
    reply.place(
        usable(&shape.request_id).as_ref(),
        &json!(format!("sim-{seq:016x}")),
    );
    if let Some(price) = charged {
        reply.place(
            usable(&shape.charged).as_ref(),
            &super::dialect::amount(price),
        );
    }
    if status == 429 || status == 503 {
        reply.set_header("retry-after", 1);
    }
    if reply.json.is_none() {
        reply.text = Some(error.message.clone());
    }
    if let Some((_, all, _)) = ENVELOPES.iter().find(|(name, ..)| *name == profile.name)
        && reply.json.is_some()
    {
        reply.merge(all, target);
    }
    reply
}

/// The usage endpoint: the key's account as the scenario left it. A bottomless account (no
/// `balance` in the scenario) shows an illustrative plan: 5,000 allowed, 1,200 used, 3,800 left.
async fn usage_call(
    State(sim): State<Arc<ProfiledSim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let profile = &sim.profile;
    let (seq, _) = sim.shared.next_request();
    let query = query_pairs(query.as_deref());
    let auth = profile.usage_auth();
    let Some(key) = key_of(auth.style, auth.name.as_deref(), &headers, &query) else {
        return status_failure(profile, 401, seq).into_response();
    };
    let account = sim.accounts.get(&key);
    let settings = &sim.scenario.settings;
    let (limit, used, left) = match (settings.balance, account.balance()) {
        (Some(start), Some(left)) => (start, account.spent(), left),
        _ => (5000.0, 1200.0, 3800.0),
    };
    let mut reply = Reply::new(200, true);
    if let Some(usage) = &profile.usage {
        let amount = super::dialect::amount;
        reply.place(usage.balance.first(), &amount(left));
        reply.place(usage.quota_limit.first(), &amount(limit));
        reply.place(usage.quota_used.first(), &amount(used));
        reply.place(usage.plan.first(), &json!(settings.plan));
    }
    reply.into_response()
}
