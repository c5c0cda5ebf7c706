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
//! Scenario fault mixes do not drive these dialects yet: unforced requests succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use super::{FAULT_HEADER, FAULT_HOST};
use crate::provider::{
    AuthStyle, BodyKind, Field, FieldSource, Placement, Profile, field_pointer_tokens,
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

/// Requests answered so far, for request ids.
#[derive(Debug)]
struct ProfiledSim {
    profile: Profile,
    seq: AtomicU64,
}

/// Routes for every profile in `profiles`, each under `/<name>`.
pub fn router<'p>(profiles: impl Iterator<Item = &'p Profile>) -> Router {
    let mut app = Router::new();
    for profile in profiles {
        let sim = Arc::new(ProfiledSim {
            profile: profile.clone(),
            seq: AtomicU64::new(0),
        });
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
}

impl Reply {
    fn new(status: u16, json_body: bool) -> Self {
        Self {
            status,
            headers: Vec::new(),
            json: json_body.then(|| Value::Object(Map::new())),
            text: None,
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

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let (content_type, body) = match (self.json, self.text) {
            (Some(json), _) => ("application/json; charset=utf-8", json.to_string()),
            (None, Some(text)) if text.starts_with('<') => ("text/html; charset=utf-8", text),
            (None, Some(text)) => ("text/plain; charset=utf-8", text),
            (None, None) => ("text/plain; charset=utf-8", String::new()),
        };
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
fn key_present(
    style: AuthStyle,
    name: Option<&str>,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let key = match style {
        AuthStyle::Header => name.and_then(header),
        AuthStyle::Query => name.and_then(|name| {
            query
                .iter()
                .find(|(param, _)| param == name)
                .map(|(_, value)| value.as_str())
        }),
        AuthStyle::Bearer => {
            header("authorization").and_then(|value| value.strip_prefix("Bearer "))
        }
        AuthStyle::Basic => header("authorization").and_then(|value| value.strip_prefix("Basic ")),
    };
    key.is_some_and(|key| !key.trim().is_empty())
}

async fn scrape_call(
    State(sim): State<Arc<ProfiledSim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let profile = &sim.profile;
    let seq = sim.seq.fetch_add(1, Ordering::Relaxed);
    let query = query_pairs(query.as_deref());
    let url_field = profile.request.url.trim_start_matches('/');
    let target = match profile.request.placement {
        Placement::Query => query
            .iter()
            .find(|(name, _)| *name == profile.request.url)
            .map(|(_, value)| value.clone()),
        Placement::Json => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| {
                json.get(url_field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
    };
    if !key_present(
        profile.auth.style,
        profile.auth.name.as_deref(),
        &headers,
        &query,
    ) {
        return failure(profile, "401", "", seq).into_response();
    }
    let Some(target) = target.filter(|target| !target.is_empty()) else {
        return failure(profile, "400", "", seq).into_response();
    };
    let forced = headers
        .get(FAULT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let rest = target
                .strip_prefix("https://")
                .or_else(|| target.strip_prefix("http://"))?;
            rest.strip_prefix(FAULT_HOST)?
                .strip_prefix('/')
                .map(str::to_owned)
        });
    let reply = match forced.as_deref() {
        None | Some("success") => success(profile, &target, 200, seq),
        Some(name) => match name.strip_prefix("target:").map(str::parse::<u16>) {
            Some(Ok(status)) if (100..1000).contains(&status) => {
                match target_failure_row(profile, status) {
                    Some(row) => failure(profile, &row.to_string(), &target, seq),
                    None => success(profile, &target, status, seq),
                }
            }
            _ => failure(profile, name, &target, seq),
        },
    };
    reply.into_response()
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
        .find(|rule| rule.fault == crate::outcome::Fault::Target)
        .map(|rule| rule.status)
}

fn success(profile: &Profile, target: &str, target_status: u16, seq: u64) -> Reply {
    let shape = &profile.response;
    let mut reply = Reply::new(200, shape.body == BodyKind::Json);
    reply.place(shape.target_status.first(), &json!(target_status));
    reply.place(shape.provider_status.first(), &json!(200));
    reply.place(shape.success.first(), &json!(true));
    // Every cost header (ScrapingBee's Spb-Cost and Spb-Auto-Cost), or the first JSON place.
    for field in &shape.charged {
        reply.place(Some(field), &json!(1));
        if matches!(field.0, FieldSource::Json(_)) {
            break;
        }
    }
    // Not into an error object: a success carries none.
    let request_id = shape
        .request_id
        .iter()
        .find(|field| !field.to_string().contains("error"));
    reply.place(request_id, &json!(format!("sim-{seq}")));
    let concurrency = &profile.concurrency;
    for (name, value) in [
        (&concurrency.limit, "10"),
        (&concurrency.current, "1"),
        (&concurrency.remaining, "9"),
    ] {
        if let Some(name) = name {
            reply.headers.push((name.clone(), value.to_owned()));
        }
    }
    match shape.body {
        BodyKind::Raw => reply.text = Some(PAGE.to_owned()),
        BodyKind::Json => reply.place(shape.content.first(), &json!(PAGE)),
    }
    if let Some((_, all, on_success)) = ENVELOPES.iter().find(|(name, ..)| *name == profile.name)
        && reply.json.is_some()
    {
        reply.merge(on_success, target);
        reply.merge(all, target);
    }
    reply
}

/// The answer for a code of the profile's table, or a status of it (`"429"`).
fn failure(profile: &Profile, name: &str, target: &str, seq: u64) -> Reply {
    let shape = &profile.response;
    let code_rule = profile.errors.iter().find(|rule| rule.code == name);
    let status_rule = name
        .parse::<u16>()
        .ok()
        .and_then(|status| profile.status_rule(status));
    let (status, code, meaning) = match (code_rule, status_rule) {
        (Some(rule), _) => (rule.status, Some(rule.code.as_str()), rule.meaning.as_str()),
        (None, Some(rule)) => (rule.status, None, rule.meaning.as_str()),
        (None, None) => {
            let mut reply = Reply::new(400, false);
            reply.text = Some(format!(
                "the omniscope simulator knows no fault {name:?} for {}",
                profile.name
            ));
            return reply;
        }
    };
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
    if let Some(code) = code {
        if (200..300).contains(&status) && !shape.provider_status.is_empty() {
            // A failure inside a 2xx, named by the provider's own status (Crawlbase's cb_status).
            let inner = code
                .parse::<u16>()
                .map_or_else(|_| json!(code), |n| json!(n));
            reply.place(usable(&shape.provider_status).as_ref(), &inner);
        }
        reply.place(usable(&shape.error_code).as_ref(), &json!(code));
    }
    reply.place(usable(&shape.message).as_ref(), &json!(meaning));
    reply.place(usable(&shape.success).as_ref(), &json!(false));
    reply.place(
        usable(&shape.request_id).as_ref(),
        &json!(format!("sim-{seq}")),
    );
    if status == 429 || status == 503 {
        reply
            .headers
            .push(("retry-after".to_owned(), "1".to_owned()));
    }
    if reply.json.is_none() {
        reply.text = Some(meaning.to_owned());
    }
    if let Some((_, all, _)) = ENVELOPES.iter().find(|(name, ..)| *name == profile.name)
        && reply.json.is_some()
    {
        reply.merge(all, target);
    }
    reply
}

async fn usage_call(
    State(sim): State<Arc<ProfiledSim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let profile = &sim.profile;
    let query = query_pairs(query.as_deref());
    let auth = profile.usage_auth();
    if !key_present(auth.style, auth.name.as_deref(), &headers, &query) {
        return failure(profile, "401", "", 0).into_response();
    }
    let mut reply = Reply::new(200, true);
    if let Some(usage) = &profile.usage {
        reply.place(usage.balance.first(), &json!(3800));
        reply.place(usage.quota_limit.first(), &json!(5000));
        reply.place(usage.quota_used.first(), &json!(1200));
        reply.place(usage.plan.first(), &json!("Simulated"));
    }
    reply.into_response()
}
