//! Turning one HTTP exchange into one [`Outcome`]: total over any bytes and any header values.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::field::{Field, Found, Parsed, json_at};
use super::{BodyKind, Profile, ResetFormat, ResponseShape, json_subset};
use crate::outcome::{
    AttemptId, Billing, Classification, ConcurrencyReading, Fault, JobRef, LimitKind,
    MAX_CODE_BYTES, MAX_ID_BYTES, MAX_MESSAGE_BYTES, Origin, Outcome, ProviderWork, REDACTED,
    RateLimitReading, RequestOptions, Retryable, Transport, bounded_str,
};

/// Bytes of body kept for the detail view.
pub const BODY_EXCERPT_BYTES: usize = 512;
/// Response headers kept per outcome, and the longest value kept.
const MAX_HEADERS: usize = 40;
const MAX_HEADER_VALUE: usize = 200;
/// Longest `Retry-After` or rate-limit reset honoured. A provider asking for more than an hour is
/// either broken or has paused the account; omniscope re-checks after an hour instead of trusting it.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
/// Default cap on a response body (NOTES.md: AlterLab's 10 MB content limit).
pub const DEFAULT_BODY_CAP: usize = 10 * 1024 * 1024;

/// Everything known about one attempt before its response is read.
#[derive(Debug, Clone, Default)]
pub struct AttemptMeta {
    pub probe_id: u64,
    pub attempt_id: AttemptId,
    pub attempt: u32,
    pub retry_of: Option<AttemptId>,
    pub target_url: String,
    pub options: RequestOptions,
    pub started_at: DateTime<Utc>,
}

/// One HTTP exchange as the network delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub transport: &'a Transport,
    /// `None` when no response head arrived.
    pub status: Option<u16>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// When the response (or the failure) arrived: the origin for Retry-After and delta resets.
    pub received_at: DateTime<Utc>,
    pub latency: Duration,
    /// Bodies longer than this are not parsed.
    pub body_cap: usize,
}

/// Classify one exchange against a profile. Never panics, whatever the bytes; every text it keeps
/// from the provider is bounded ([`crate::outcome::bounded`]).
#[must_use]
pub fn classify(profile: &Profile, meta: &AttemptMeta, exchange: &Exchange<'_>) -> Outcome {
    let over_cap = exchange.body.len() > exchange.body_cap;
    let transport = if over_cap && *exchange.transport == Transport::Ok {
        Transport::BodyOverCap {
            cap_bytes: exchange.body_cap as u64,
        }
    } else {
        exchange.transport.clone()
    };
    let paths = read_paths(&profile.response);
    // A raw 2xx body is the target's page, whatever it holds: a JSON page's own `code` or
    // `success` must not read as the provider's.
    let raw_page = profile.response.body == BodyKind::Raw
        && exchange
            .status
            .is_some_and(|status| (200..300).contains(&status));
    let json = if over_cap || exchange.body.is_empty() || raw_page {
        None
    } else {
        json_subset::parse(exchange.body, &paths)
    };
    let reader = Reader {
        json: json.as_deref().map(|values| Json::Subset {
            paths: &paths,
            values,
        }),
        headers: exchange.headers,
        status: exchange.status,
    };
    let mut outcome = unjudged_outcome(profile, meta, exchange, transport, &reader);

    if outcome.transport != Transport::Ok {
        judge_transport(profile, exchange.status, &mut outcome);
        return outcome;
    }
    let Some(status) = exchange.status else {
        outcome.message = Some("no HTTP status received".to_owned());
        outcome.class = transport_class(&Transport::Other {
            detail: String::new(),
        });
        return outcome;
    };
    read_answer(profile, &reader, &mut outcome);
    judge_answer(
        profile,
        status,
        json.is_some(),
        exchange.body,
        &reader,
        &mut outcome,
    );
    if status == 202 && outcome.api_success {
        read_job(profile, &reader, &mut outcome);
    }
    judge_target(&mut outcome);
    derive_cost(profile, &mut outcome);
    if !outcome.api_success && profile.billing.failures_free {
        outcome.class.refund_expected = true;
    }
    outcome.billing.audit = crate::outcome::refund_audit(&outcome);
    outcome
}

/// What every exchange yields before its status is judged: the attempt, the wire's headers and
/// excerpt, the limits' readings.
fn unjudged_outcome(
    profile: &Profile,
    meta: &AttemptMeta,
    exchange: &Exchange<'_>,
    transport: Transport,
    reader: &Reader<'_>,
) -> Outcome {
    Outcome {
        provider: profile.name.clone(),
        probe_id: meta.probe_id,
        attempt_id: meta.attempt_id,
        attempt: meta.attempt,
        retry_of: meta.retry_of,
        target_url: meta.target_url.clone(),
        options: meta.options.clone(),
        started_at: meta.started_at,
        latency: exchange.latency,
        transport,
        api_status: exchange.status,
        api_success: false,
        error_code: None,
        message: None,
        target_status: None,
        request_id: reader.bounded_text(&profile.response.request_id, MAX_ID_BYTES),
        rate_limit: read_rate_limit(profile, exchange.headers, exchange.received_at),
        concurrency: read_concurrency(profile, exchange.headers),
        billing: Billing {
            unit: profile.billing.unit,
            ..Billing::default()
        },
        provider_work: ProviderWork::default(),
        job: None,
        body_bytes: exchange.body.len() as u64,
        body_excerpt: excerpt(exchange.body),
        headers: keep_headers(exchange.headers),
        class: Classification::default(),
        // The proxy marks its own exchanges.
        origin: Origin::Probe,
    }
}

/// The transfer failed: the fault is the network's, but headers that arrived before the body
/// failed still say what the status row says about retrying, refunds and the account.
fn judge_transport(profile: &Profile, status: Option<u16>, outcome: &mut Outcome) {
    outcome.class = transport_class(&outcome.transport);
    outcome.message = Some(transport_message(&outcome.transport));
    if let Some(status) = status {
        let by_status = rule_class(profile, status, None);
        outcome.class.account_stop = by_status.account_stop;
        if !by_status.retryable.allows_plain_retry() {
            outcome.class.retryable = Retryable::No;
        }
    }
}

/// The provider's own words: code, message, the target's status, what it billed.
fn read_answer(profile: &Profile, reader: &Reader<'_>, outcome: &mut Outcome) {
    let shape = &profile.response;
    outcome.error_code = reader
        .bounded_text(&shape.error_code, MAX_CODE_BYTES)
        .filter(|code| !code.is_empty());
    outcome.message = reader.bounded_text(&shape.message, MAX_MESSAGE_BYTES);
    outcome.target_status = reader.status(&shape.target_status);
    let charged = read_amount(reader, &shape.charged);
    outcome.billing.charged = charged.and_then(Amount::sane);
    let refunded = read_refund(reader, &shape.refunded, outcome.billing.charged);
    outcome.billing.refunded = refunded.and_then(Amount::sane);
    outcome.billing.unreadable =
        charged == Some(Amount::Unreadable) || refunded == Some(Amount::Unreadable);
    outcome.provider_work = ProviderWork {
        // A number of seconds, or nothing: a negative or absurd one says nothing.
        elapsed_s: reader.amount(&shape.elapsed_seconds).filter(|seconds| {
            seconds.is_finite() && (0.0..=MAX_WAIT.as_secs_f64()).contains(seconds)
        }),
        solver_used: reader.flag(&shape.solver_used),
    };
}

/// The API's verdict on the call, and the contract's class for its status and code.
fn judge_answer(
    profile: &Profile,
    status: u16,
    parsed_json: bool,
    body: &[u8],
    reader: &Reader<'_>,
    outcome: &mut Outcome,
) {
    let is_2xx = (200..300).contains(&status);
    let body_expected = status != 204;
    // A raw 2xx body is the target's page: nothing to parse, nothing unreadable.
    let raw_page = profile.response.body == BodyKind::Raw && is_2xx;
    let parsed = parsed_json || !body_expected || raw_page;
    // The third layer (Crawlbase's cb_status): a failure inside a 2xx, named by its status when
    // the provider sends no code of its own.
    let provider_failed = reader
        .status(&profile.response.provider_status)
        .filter(|inner| !(200..300).contains(inner));
    if let Some(inner) = provider_failed {
        outcome.error_code = outcome.error_code.take().or(Some(inner.to_string()));
    }
    let flag = reader.flag(&profile.response.success);
    outcome.api_success = parsed
        && is_2xx
        && provider_failed.is_none()
        && flag.unwrap_or(outcome.error_code.is_none());

    outcome.class = rule_class(profile, status, outcome.error_code.as_deref());
    if is_2xx && !parsed {
        // HTML where JSON was promised, a truncated body, or nothing at all: the call may have been
        // billed, so it is not retried blindly.
        outcome.class = unreadable_class(
            "The API answered 2xx with a body omniscope could not read as JSON; inspect the body excerpt.",
        );
        outcome.message = Some(describe_unreadable(body));
    } else if is_2xx && !outcome.api_success {
        // A failure inside a 2xx keeps what its code row says (ScrapFly's BAD_UPSTREAM_RESPONSE is
        // the target's, Bright Data's reject_block is worth a retry); without a row it is the
        // provider's, and not resent blindly.
        let code_rule = outcome
            .error_code
            .as_deref()
            .and_then(|code| profile.error_rule(code, Some(status)));
        match code_rule {
            Some(rule) => outcome.class.refund_expected = rule.refunded,
            None => {
                outcome.class.fault = Fault::Provider;
                outcome.class.retryable = Retryable::No;
            }
        }
        if profile.billing.failures_free {
            outcome.class.refund_expected = true;
        }
    } else if !is_2xx && !parsed_json && outcome.message.is_none() && !body.is_empty() {
        outcome.message = Some(if profile.response.body == BodyKind::Raw {
            // Raw-body APIs answer errors in plain text ("This request exceeds your max_cost…").
            plain_message(body)
        } else {
            describe_unreadable(body)
        });
    }
}

fn unreadable_class(advice: &str) -> Classification {
    Classification {
        fault: Fault::Provider,
        retryable: Retryable::No,
        meaning: Some("unreadable response".to_owned()),
        advice: Some(advice.to_owned()),
        unreadable: true,
        ..Classification::default()
    }
}

/// A 202's job: its id, and where to poll it. An id that is not a plausible token (a path, a
/// megabyte, control characters) is an unreadable answer: it is never put into a URL.
fn read_job(profile: &Profile, reader: &Reader<'_>, outcome: &mut Outcome) {
    let unreadable = |outcome: &mut Outcome, message: &str| {
        outcome.api_success = false;
        outcome.message = Some(message.to_owned());
        outcome.class = unreadable_class(
            "The API accepted the job but its answer cannot be polled safely; it is not submitted again.",
        );
    };
    let id = match reader.find(&profile.response.job_id, Found::as_text) {
        None => return unreadable(outcome, "202 Accepted without a job id"),
        Some(id) if id.is_empty() => return unreadable(outcome, "202 Accepted without a job id"),
        Some(id) if !plausible_job_id(&id) => {
            return unreadable(
                outcome,
                "202 Accepted with a job id that is not a plausible token (not polled)",
            );
        }
        Some(id) => id,
    };
    let poll_path = reader
        .text(&profile.response.poll_path)
        .filter(|path| plausible_poll_path(path))
        .or_else(|| {
            profile
                .endpoints
                .job_poll
                .as_ref()
                .map(|template| template.replace("{job_id}", &path_segment(&id)))
        })
        .unwrap_or_default();
    outcome.job = Some(JobRef { id, poll_path });
}

/// The target's layer: an API success whose target answered 4xx/5xx is the target's fault.
fn judge_target(outcome: &mut Outcome) {
    if outcome.api_success
        && let Some(target) = outcome.target_status.filter(|status| *status >= 400)
    {
        outcome.class.fault = Fault::Target;
        outcome.class.retryable = if target == 429 || target >= 500 {
            Retryable::Maybe
        } else {
            Retryable::No
        };
        outcome.class.meaning = Some(format!("target site answered {target}"));
    }
}

/// A job id omniscope will put into a poll URL: one short token of visible ASCII that cannot be
/// read as a path (no separator, no dot segment, no escape).
fn plausible_job_id(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len())
        && id != "."
        && id != ".."
        && id.bytes().all(|byte| {
            byte.is_ascii_graphic() && !matches!(byte, b'/' | b'\\' | b'?' | b'#' | b'%')
        })
}

/// A poll path from the provider's answer, used only when it stays a plain path on the same
/// host: visible ASCII, no query or fragment, and no segment that is (or decodes to) a dot
/// segment or a separator. Otherwise the profile's template is used.
fn plausible_poll_path(path: &str) -> bool {
    const MAX_POLL_PATH: usize = 512;
    path.len() <= MAX_POLL_PATH
        && path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'\\' | b'?' | b'#'))
        && path.split('/').skip(1).all(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            decoded != "." && decoded != ".." && !decoded.contains(['/', '\\'])
        })
}

/// Characters left as they are in a path segment: RFC 3986's unreserved set.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one percent-encoded path segment.
fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// The JSON pointers classify reads, as tokens: the body is parsed for these values only (see
/// [`json_subset`]). Every response field classify reads must be listed here: one missing reads as
/// absent.
fn read_paths(shape: &ResponseShape) -> Vec<&[String]> {
    let read = [
        &shape.success,
        &shape.provider_status,
        &shape.error_code,
        &shape.message,
        &shape.target_status,
        &shape.request_id,
        &shape.charged,
        &shape.refunded,
        &shape.job_id,
        &shape.poll_path,
        &shape.elapsed_seconds,
        &shape.solver_used,
    ];
    let mut paths = Vec::with_capacity(read.iter().map(|fields| fields.len()).sum());
    paths.extend(
        read.iter()
            .flat_map(|fields| fields.iter().filter_map(Field::json_tokens)),
    );
    paths
}

/// The cost of a provider that sends none: its per-request price when the call was billed (the
/// API succeeded and the target answered a billed status), else 0. A queued job is billed when it
/// ends, not when it is accepted.
fn derive_cost(profile: &Profile, outcome: &mut Outcome) {
    let rules = &profile.billing;
    let Some(price) = rules.per_request else {
        return;
    };
    if outcome.billing.charged.is_some() || outcome.api_status == Some(202) {
        return;
    }
    let billed_target = outcome.target_status.is_none_or(|status| {
        rules.billed_target_statuses.is_empty() || rules.billed_target_statuses.contains(&status)
    });
    let billed = outcome.api_success && billed_target;
    outcome.billing.charged = Some(if billed { price } else { 0.0 });
}

/// The class a status (and code, when the table knows it) gets from the profile's tables.
fn rule_class(profile: &Profile, status: u16, code: Option<&str>) -> Classification {
    let status_rule = profile.status_rule(status);
    let by_status = status_rule.map_or_else(|| unknown_status_class(status), status_class);
    let Some(code_rule) = code.and_then(|code| profile.error_rule(code, Some(status))) else {
        return with_limit_kind(status, by_status);
    };
    let by_code = Classification {
        fault: code_rule.fault,
        retryable: code_rule.retry,
        refund_expected: code_rule.refunded,
        account_stop: code_rule.account_stop,
        advice: Some(code_rule.advice.clone()),
        meaning: Some(code_rule.meaning.clone()),
        limit: code_rule
            .concurrency_limit
            .then_some(LimitKind::Concurrency),
        known_code: true,
        unreadable: false,
    }
    .with_status_advice(status_rule);
    if code_rule.status == status {
        // The code's own row (AlterLab's REQUIRES_AUTH on a 401 is the target's login wall, not
        // the key): the code decides.
        return with_limit_kind(status, by_code);
    }
    // A code seen under a status its row does not list (CONCURRENCY_LIMIT on a 401, TIMEOUT on a
    // 400): the HTTP status is read first. An account stop the status calls for holds whatever
    // the code says, and so does a status the contract says not to retry.
    if by_status.account_stop {
        return Classification {
            known_code: true,
            ..by_status
        };
    }
    let mut class = by_code;
    class.account_stop |= by_status.account_stop;
    if class.retryable.allows_plain_retry() && !by_status.retryable.allows_plain_retry() {
        class.retryable = by_status.retryable;
    }
    with_limit_kind(status, class)
}

fn status_class(rule: &super::StatusRule) -> Classification {
    Classification {
        fault: rule.fault,
        retryable: rule.retry,
        refund_expected: rule.refunded,
        account_stop: rule.account_stop,
        advice: rule.advice.clone(),
        meaning: Some(rule.meaning.clone()),
        limit: None,
        known_code: false,
        unreadable: false,
    }
}

fn with_limit_kind(status: u16, mut class: Classification) -> Classification {
    if status == 429 && class.limit.is_none() && class.fault == Fault::RateLimit {
        class.limit = Some(LimitKind::Rate);
    }
    class
}

impl Classification {
    fn with_status_advice(mut self, status_rule: Option<&super::StatusRule>) -> Self {
        if self.advice.as_deref().is_none_or(str::is_empty) {
            self.advice = status_rule.and_then(|rule| rule.advice.clone());
        }
        self
    }
}

/// A status the contract does not list. The contracts are silent, so omniscope spends nothing on it:
/// no automatic retry, and the fault goes to whichever side the status class names.
fn unknown_status_class(status: u16) -> Classification {
    let (fault, meaning) = match status {
        200..=299 => (Fault::None, "success"),
        // HTTP's own meaning of these two is the key or the account: every further request would
        // fail (and perhaps bill) the same way, so even a profile without their rows stops.
        401 | 402 => (Fault::Account, "the key or the account was refused"),
        300..=399 => (
            Fault::Provider,
            "unexpected redirect (redirects are not followed)",
        ),
        400..=499 => (Fault::Client, "client error not listed in the contract"),
        _ => (Fault::Provider, "server error not listed in the contract"),
    };
    Classification {
        fault,
        retryable: if fault == Fault::None {
            Retryable::NotApplicable
        } else {
            Retryable::No
        },
        account_stop: fault == Fault::Account,
        meaning: Some(format!("HTTP {status}: {meaning}")),
        ..Classification::default()
    }
}

fn transport_class(transport: &Transport) -> Classification {
    let (retryable, advice) = match transport {
        Transport::Ok => (Retryable::NotApplicable, ""),
        Transport::Timeout => (
            Retryable::Yes,
            "No answer in time: raise --timeout, or use the async endpoint for slow targets.",
        ),
        Transport::ConnectionRefused | Transport::Connect { .. } => (
            Retryable::Yes,
            "Check the endpoint URL and the network; retried with back-off.",
        ),
        Transport::Tls { .. } => (
            Retryable::No,
            "TLS failed: check the endpoint's scheme and certificate.",
        ),
        Transport::BodyOverCap { .. } => (
            Retryable::No,
            "The body is larger than the cap: raise body_cap in the config if that is expected.",
        ),
        Transport::BodyIncomplete { .. } | Transport::Other { .. } => (
            Retryable::Yes,
            "The connection failed mid-response; retried with back-off.",
        ),
        Transport::Local { .. } => (
            Retryable::No,
            "omniscope could not build the request (nothing was sent): check the endpoint and the profile.",
        ),
        Transport::Abandoned => (
            Retryable::No,
            "The session ended before the answer came: the request may still be billed.",
        ),
    };
    Classification {
        fault: if matches!(transport, Transport::Local { .. }) {
            Fault::Client
        } else {
            Fault::Network
        },
        retryable,
        advice: Some(advice.to_owned()),
        meaning: Some(transport.label().to_owned()),
        ..Classification::default()
    }
}

fn transport_message(transport: &Transport) -> String {
    match transport {
        Transport::Ok => "ok".to_owned(),
        Transport::Timeout => "timed out".to_owned(),
        Transport::ConnectionRefused => "connection refused".to_owned(),
        Transport::Connect { detail } => format!("connect failed: {detail}"),
        Transport::Tls { detail } => format!("TLS failed: {detail}"),
        Transport::BodyOverCap { cap_bytes } => {
            format!("body larger than the {cap_bytes}-byte cap")
        }
        Transport::BodyIncomplete { detail } => format!("body incomplete: {detail}"),
        Transport::Other { detail } => format!("transport error: {detail}"),
        Transport::Local { detail } => format!("request not sent: {detail}"),
        Transport::Abandoned => "abandoned: the session ended before the answer came".to_owned(),
    }
}

/// Longest plain-text error message kept.
const MAX_PLAIN_MESSAGE: usize = 200;

/// The first line of a plain-text error body, cut on a char boundary.
fn plain_message(body: &[u8]) -> String {
    let text = lossy_text(&body[..body.len().min(MAX_PLAIN_MESSAGE * 4)]);
    let line = text.trim().lines().next().unwrap_or_default().trim();
    let mut cut = line.len().min(MAX_PLAIN_MESSAGE);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line[..cut].to_owned()
}

fn describe_unreadable(body: &[u8]) -> String {
    let start = body
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .map_or(&[][..], |at| &body[at..]);
    if start.is_empty() {
        "empty body where JSON was expected".to_owned()
    } else if start.first() == Some(&b'<') {
        "HTML (or XML) where JSON was expected".to_owned()
    } else if start
        .first()
        .is_some_and(|byte| *byte == b'{' || *byte == b'[')
    {
        "truncated or malformed JSON".to_owned()
    } else {
        "body is not JSON".to_owned()
    }
}

/// A parsed body: whole, or only the values at some pointers.
#[derive(Clone, Copy)]
enum Json<'a> {
    Whole(&'a Value),
    /// `values[i]` is what the whole body holds at `paths[i]`.
    Subset {
        paths: &'a [&'a [String]],
        values: &'a [Option<Value>],
    },
}

impl<'a> Json<'a> {
    fn at(self, tokens: &[String]) -> Option<&'a Value> {
        match self {
            Json::Whole(value) => json_at(value, tokens),
            Json::Subset { paths, values } => {
                // The paths were taken from the same fields, so the tokens are the same slice.
                let index = paths
                    .iter()
                    .position(|path| std::ptr::eq(*path, tokens))
                    .or_else(|| paths.iter().position(|path| *path == tokens))?;
                values.get(index)?.as_ref()
            }
        }
    }
}

/// Reads profile fields out of one response.
struct Reader<'a> {
    json: Option<Json<'a>>,
    headers: &'a HeaderMap,
    status: Option<u16>,
}

impl<'a> Reader<'a> {
    fn first(&self, fields: &[Field]) -> Option<Found<'a>> {
        fields.iter().find_map(|field| match field.parsed() {
            Parsed::Json(tokens) => self
                .json?
                .at(tokens)
                .filter(|value| !value.is_null())
                .map(Found::Json),
            Parsed::Header(name) => self
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(Found::Text),
            Parsed::Status(only) => self
                .status
                .filter(|status| only.is_empty() || only.contains(status))
                .map(Found::Status),
        })
    }

    /// The first field that reads as the wanted type; a wrong type falls through to the next.
    fn find<T>(&self, fields: &[Field], read: impl Fn(Found<'a>) -> Option<T>) -> Option<T> {
        fields
            .iter()
            .find_map(|field| self.first(std::slice::from_ref(field)).and_then(&read))
    }

    fn text(&self, fields: &[Field]) -> Option<String> {
        self.find(fields, Found::as_text)
    }

    /// [`Reader::text`], cut to at most `max` bytes: a provider's text is kept, never without bound.
    fn bounded_text(&self, fields: &[Field], max: usize) -> Option<String> {
        self.find(fields, |found| found.as_bounded_text(max))
    }

    fn status(&self, fields: &[Field]) -> Option<u16> {
        self.find(fields, Found::as_status)
    }

    fn amount(&self, fields: &[Field]) -> Option<f64> {
        self.find(fields, Found::as_amount)
    }

    fn flag(&self, fields: &[Field]) -> Option<bool> {
        self.find(fields, Found::as_bool)
    }
}

/// An amount as the provider wrote it: a sane one, or a number no bill can be (negative, not
/// finite, beyond [`crate::outcome::MAX_AMOUNT`]), which is recorded as unreadable billing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Amount {
    Sane(f64),
    Unreadable,
}

impl Amount {
    fn of(value: f64) -> Self {
        if crate::outcome::sane_amount(value) {
            Self::Sane(value)
        } else {
            Self::Unreadable
        }
    }

    fn sane(self) -> Option<f64> {
        match self {
            Self::Sane(value) => Some(value),
            Self::Unreadable => None,
        }
    }
}

fn read_amount(reader: &Reader<'_>, fields: &[Field]) -> Option<Amount> {
    reader.find(fields, |found| found.as_number().map(Amount::of))
}

/// `billing.refunded` as an amount, or `true` meaning the whole charge.
fn read_refund(reader: &Reader<'_>, fields: &[Field], charged: Option<f64>) -> Option<Amount> {
    reader.find(fields, |found| {
        found.as_bool().map_or_else(
            || found.as_number().map(Amount::of),
            |refunded| {
                Some(Amount::Sane(if refunded {
                    charged.unwrap_or(0.0)
                } else {
                    0.0
                }))
            },
        )
    })
}

fn header_text<'h>(headers: &'h HeaderMap, name: Option<&String>) -> Option<&'h str> {
    header_value(headers, name?)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Responses with more headers than this are searched by hash.
const SCANNED_HEADERS: usize = 16;

/// `headers.get(name)`. A response carries a handful of headers and classify looks up about seven
/// names: comparing names costs less than `get(&str)`'s validating, lowercasing and hashing `name`
/// each time. Same answer: the first value under the name, `None` for a name no header can have.
fn header_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h HeaderValue> {
    if headers.len() > SCANNED_HEADERS {
        return headers.get(name);
    }
    headers
        .iter()
        .find(|(stored, _)| stored.as_str().eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// A non-negative integer; anything else (negative, fractional, garbage) is ignored.
fn header_count(headers: &HeaderMap, name: Option<&String>) -> Option<u64> {
    let text = header_text(headers, name)?;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn read_rate_limit(
    profile: &Profile,
    headers: &HeaderMap,
    received_at: DateTime<Utc>,
) -> RateLimitReading {
    let names = &profile.rate_limit;
    let reset_at = header_count(headers, names.reset.as_ref()).and_then(|value| {
        let reset = match names.reset_format {
            // A number beyond chrono's range is absurd, not garbage: it is capped below.
            ResetFormat::Unix => i64::try_from(value)
                .ok()
                .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ResetFormat::DeltaSeconds => {
                received_at + TimeDelta::seconds(i64::try_from(value.min(MAX_WAIT.as_secs())).ok()?)
            }
        };
        // A reset in the past has already happened; one absurdly far ahead is capped.
        let latest = received_at + TimeDelta::from_std(MAX_WAIT).ok()?;
        Some(reset.clamp(received_at, latest))
    });
    RateLimitReading {
        limit: header_count(headers, names.limit.as_ref()),
        remaining: header_count(headers, names.remaining.as_ref()),
        reset_at,
        retry_after: header_text(headers, names.retry_after.as_ref())
            .and_then(|text| parse_retry_after(text, received_at)),
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3). A past date is zero; values
/// beyond [`MAX_WAIT`] are capped; anything unreadable is ignored. Fractional seconds (`2.5`),
/// which RFC 9110 does not allow but AlterLab's SDK sends to `float()` and honours, are rounded up:
/// waiting a little longer than asked is safe, returning early is not.
#[must_use]
pub fn parse_retry_after(text: &str, received_at: DateTime<Utc>) -> Option<Duration> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !whole.is_empty() && digits(whole) && digits(fraction) && text.len() != whole.len() + 1 {
        let seconds = whole.parse::<u64>().unwrap_or(u64::MAX);
        let round_up = fraction.bytes().any(|byte| byte != b'0');
        let seconds = seconds.saturating_add(u64::from(round_up));
        return Some(Duration::from_secs(seconds).min(MAX_WAIT));
    }
    let date: DateTime<Utc> = httpdate::parse_http_date(text).ok()?.into();
    let wait = (date - received_at).to_std().unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_WAIT))
}

fn read_concurrency(profile: &Profile, headers: &HeaderMap) -> ConcurrencyReading {
    let names = &profile.concurrency;
    let to_u32 = |value: u64| u32::try_from(value).ok();
    let remaining = header_count(headers, names.remaining.as_ref()).and_then(to_u32);
    let read_current = header_count(headers, names.current.as_ref()).and_then(to_u32);
    // ScrapFly sends the slots in use and the slots free, but no limit: their sum is the limit.
    let limit = header_count(headers, names.limit.as_ref())
        .and_then(to_u32)
        .or_else(|| read_current?.checked_add(remaining?));
    let current = read_current.or_else(|| limit?.checked_sub(remaining?));
    ConcurrencyReading { limit, current }
}

fn excerpt(body: &[u8]) -> String {
    let end = body.len().min(BODY_EXCERPT_BYTES);
    lossy_text(&body[..end])
}

/// `String::from_utf8_lossy`, with the common valid case taking `from_utf8`'s faster check.
fn lossy_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Header names whose values are never kept: keys, tokens, cookies. (Header names arrive
/// lower-case from `http`.)
fn is_secret(name: &str) -> bool {
    ["key", "auth", "token", "cookie", "secret", "password"]
        .iter()
        .any(|word| name.contains(word))
}

/// The response headers an outcome keeps: bounded in number and length, secret-looking values
/// masked here, so neither the dashboard nor the event log ever holds them.
fn keep_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut kept = Vec::with_capacity(headers.len().min(MAX_HEADERS));
    kept.extend(headers.iter().take(MAX_HEADERS).map(|(name, value)| {
        if is_secret(name.as_str()) {
            return (name.as_str().to_owned(), REDACTED.to_owned());
        }
        let mut text = lossy_text(value.as_bytes());
        if text.len() > MAX_HEADER_VALUE {
            let mut cut = MAX_HEADER_VALUE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        // A name is as much the provider's text as a value (one was seen carrying the key).
        (bounded_str(name.as_str(), MAX_HEADER_VALUE), text)
    }));
    kept
}

/// Where an async job stands, read from one poll response.
#[derive(Debug, Clone, PartialEq)]
pub enum JobPoll {
    /// Still queued or running (carries the provider's status word).
    Pending(String),
    /// Finished: the scrape response to classify like a sync one.
    Completed(Value),
    /// Ended without a result (`failed`, `timed_out`…), with the provider's status and reason.
    Failed {
        status: String,
        reason: Option<String>,
    },
    /// The poll response could not be read.
    Unreadable(String),
}

/// Read one job-poll response body.
#[must_use]
pub fn parse_job_poll(profile: &Profile, body: &[u8]) -> JobPoll {
    let Some(shape) = &profile.jobs else {
        return JobPoll::Unreadable(format!("profile {} has no [jobs] section", profile.name));
    };
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return JobPoll::Unreadable(describe_unreadable(body));
    };
    let empty = HeaderMap::new();
    let reader = Reader {
        json: Some(Json::Whole(&json)),
        headers: &empty,
        status: None,
    };
    let Some(status) = reader.bounded_text(&shape.status, MAX_CODE_BYTES) else {
        return JobPoll::Unreadable("job response has no status".to_owned());
    };
    let matches = |list: &[String]| list.iter().any(|word| word.eq_ignore_ascii_case(&status));
    if matches(&shape.completed) {
        return match reader.first(&shape.result) {
            Some(Found::Json(result)) => JobPoll::Completed(result.clone()),
            _ if shape.result.is_empty() => JobPoll::Completed(json.clone()),
            _ => JobPoll::Unreadable("completed job without a result".to_owned()),
        };
    }
    if matches(&shape.failed) {
        return JobPoll::Failed {
            reason: reader.bounded_text(&shape.error, MAX_MESSAGE_BYTES),
            status,
        };
    }
    if matches(&shape.pending) {
        return JobPoll::Pending(status);
    }
    JobPoll::Unreadable(format!("unknown job status {status:?}"))
}

/// What a usage endpoint says about the account.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageReading {
    pub balance: Option<f64>,
    pub unit: crate::outcome::BillingUnit,
    pub plan: Option<String>,
    pub used: Option<f64>,
    /// The period's allowance, where the endpoint says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
}

/// Read a usage-endpoint body. `None` when the profile has no usage endpoint or the body is not JSON.
#[must_use]
pub fn parse_usage(profile: &Profile, body: &[u8]) -> Option<UsageReading> {
    let shape = profile.usage.as_ref()?;
    let json = serde_json::from_slice::<Value>(body).ok()?;
    let empty = HeaderMap::new();
    let reader = Reader {
        json: Some(Json::Whole(&json)),
        headers: &empty,
        status: None,
    };
    let used = reader.amount(&shape.quota_used);
    // No balance field: what is left of the period's allowance (never below zero).
    let derived = || Some((reader.amount(&shape.quota_limit)? - used?).max(0.0));
    Some(UsageReading {
        balance: reader.amount(&shape.balance).or_else(derived),
        unit: shape.balance_unit,
        plan: reader.bounded_text(&shape.plan, MAX_ID_BYTES),
        used,
        limit: reader.amount(&shape.quota_limit),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use reqwest::header::HeaderName;

    use super::*;
    use crate::provider::builtin_profiles;

    fn received_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn retry_after_as_seconds() {
        let at = received_at();
        assert_eq!(parse_retry_after("120", at), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7 ", at), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("0", at), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", at), Some(MAX_WAIT), "capped");
        assert_eq!(
            parse_retry_after("99999999999999999999999", at),
            Some(MAX_WAIT),
            "overflowing digits are absurd, not garbage"
        );
        // Fractional seconds (AlterLab's SDK honours them) are rounded up, never down.
        assert_eq!(parse_retry_after("2.5", at), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("1.5", at), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.001", at), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("4.000", at), Some(Duration::from_secs(4)));
        assert_eq!(
            parse_retry_after(" 7.25 ", at),
            Some(Duration::from_secs(8))
        );
        assert_eq!(parse_retry_after("86400.5", at), Some(MAX_WAIT), "capped");
        for garbage in [
            "", "-1", "-1.5", "+3", "soon", "3s", "0x10", "1.", ".5", "1.5.0", "1,5", "1e3", "1. 5",
        ] {
            assert_eq!(parse_retry_after(garbage, at), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let at = received_at();
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:01:30 GMT", at),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:59:00 GMT", at),
            Some(Duration::ZERO),
            "a past date is zero"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", at),
            Some(MAX_WAIT)
        );
        // The obsolete formats RFC 9110 still asks recipients to accept.
        assert_eq!(
            parse_retry_after("Monday, 23-Nov-26 12:00:10 GMT", at),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Mon Nov 23 12:00:20 2026", at),
            Some(Duration::from_secs(20))
        );
        assert_eq!(parse_retry_after("Mon, 32 Nov 2026 12:00:00 GMT", at), None);
    }

    #[test]
    fn counts_are_plain_non_negative_integers_or_nothing() {
        let name = "x-ratelimit-limit".to_owned();
        let count =
            |value: &[u8]| header_count(&headers(&[("x-ratelimit-limit", value)]), Some(&name));
        assert_eq!(count(b"30"), Some(30));
        assert_eq!(count(b" 30\t"), Some(30));
        assert_eq!(count(b"0"), Some(0));
        for garbage in [
            &b"-1"[..],
            b"",
            b"1e3",
            b"3.0",
            b"thirty",
            b"18446744073709551616",
            b"\xff",
        ] {
            assert_eq!(count(garbage), None, "{}", String::from_utf8_lossy(garbage));
        }
        assert_eq!(header_count(&HeaderMap::new(), Some(&name)), None);
        assert_eq!(
            header_count(&headers(&[("x-ratelimit-limit", b"3")]), None),
            None
        );
    }

    #[test]
    fn header_lookup_agrees_with_get_by_name() {
        let small = headers(&[
            ("x-ratelimit-limit", b"1"),
            ("retry-after", b"2"),
            ("x-ratelimit-limit", b"3"),
        ]);
        let mut large = small.clone();
        for index in 0..SCANNED_HEADERS {
            large.append(
                HeaderName::from_bytes(format!("x-h{index}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        for map in [&small, &large] {
            for name in [
                "x-ratelimit-limit",
                "X-RateLimit-Limit",
                "Retry-After",
                "x-h3",
                "missing",
                "",
                "bad name",
                "x-ratelimit-limit ",
                "é",
            ] {
                assert_eq!(header_value(map, name), map.get(name), "{name:?}");
            }
        }
    }

    #[test]
    fn reset_as_unix_time_or_seconds_from_now() {
        let mut profile = builtin_profiles().get("alterlab").unwrap().clone();
        let at = received_at();
        let unix = (at.timestamp() + 60).to_string();
        let reading = read_rate_limit(
            &profile,
            &headers(&[("x-ratelimit-reset", unix.as_bytes())]),
            at,
        );
        assert_eq!(reading.reset_at, Some(at + TimeDelta::seconds(60)));
        let reading = read_rate_limit(
            &profile,
            &headers(&[("x-ratelimit-reset", b"1704067200")]),
            at,
        );
        assert_eq!(reading.reset_at, Some(at), "a past reset has happened");
        let reading = read_rate_limit(
            &profile,
            &headers(&[("x-ratelimit-reset", b"99999999999999")]),
            at,
        );
        assert_eq!(
            reading.reset_at,
            Some(at + TimeDelta::seconds(3600)),
            "capped"
        );

        profile.rate_limit.reset_format = ResetFormat::DeltaSeconds;
        let reading = read_rate_limit(&profile, &headers(&[("x-ratelimit-reset", b"30")]), at);
        assert_eq!(reading.reset_at, Some(at + TimeDelta::seconds(30)));
        let reading = read_rate_limit(
            &profile,
            &headers(&[("x-ratelimit-reset", b"18446744073709551615")]),
            at,
        );
        assert_eq!(reading.reset_at, Some(at + TimeDelta::seconds(3600)));
        let reading = read_rate_limit(&profile, &headers(&[("x-ratelimit-reset", b"-30")]), at);
        assert_eq!(reading.reset_at, None);
    }

    #[test]
    fn concurrency_from_current_or_from_remaining() {
        let mut profile = builtin_profiles().get("alterlab").unwrap().clone();
        let reading = read_concurrency(
            &profile,
            &headers(&[
                ("x-concurrency-limit", b"3"),
                ("x-concurrency-current", b"2"),
            ]),
        );
        assert_eq!(
            reading,
            ConcurrencyReading {
                limit: Some(3),
                current: Some(2)
            }
        );
        let reading = read_concurrency(
            &profile,
            &headers(&[("x-concurrency-limit", b"4294967296")]),
        );
        assert_eq!(reading.limit, None, "beyond u32 is garbage");

        // ZenRows-style: the free slots instead of the used ones.
        profile.concurrency.current = None;
        profile.concurrency.remaining = Some("concurrency-remaining".to_owned());
        let reading = read_concurrency(
            &profile,
            &headers(&[
                ("x-concurrency-limit", b"10"),
                ("concurrency-remaining", b"3"),
            ]),
        );
        assert_eq!(reading.current, Some(7));
        let reading = read_concurrency(
            &profile,
            &headers(&[
                ("x-concurrency-limit", b"10"),
                ("concurrency-remaining", b"12"),
            ]),
        );
        assert_eq!(reading.current, None, "more free than the limit is garbage");
    }

    #[test]
    fn kept_headers_are_bounded_and_cut_on_a_char_boundary() {
        let long = "é".repeat(150); // 300 bytes
        let mut map = headers(&[("x-long", long.as_bytes())]);
        for index in 0..60 {
            map.append(
                HeaderName::from_bytes(format!("x-h{index}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        let kept = keep_headers(&map);
        assert_eq!(kept.len(), MAX_HEADERS);
        let (_, value) = kept.iter().find(|(name, _)| name == "x-long").unwrap();
        assert!(value.ends_with('…'));
        assert!(value.len() <= MAX_HEADER_VALUE + '…'.len_utf8());
    }

    #[test]
    fn secret_looking_headers_are_masked_when_kept() {
        let map = headers(&[
            ("set-cookie", b"session=s3cr3t-cookie"),
            ("x-api-key", b"sk_live_echoed"),
            ("www-authenticate", b"Bearer realm=\"t0ken\""),
            ("x-ratelimit-remaining", b"7"),
        ]);
        let kept = keep_headers(&map);
        let value = |wanted: &str| {
            kept.iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value("set-cookie"), Some(REDACTED));
        assert_eq!(value("x-api-key"), Some(REDACTED));
        assert_eq!(value("www-authenticate"), Some(REDACTED));
        assert_eq!(value("x-ratelimit-remaining"), Some("7"));
    }

    #[test]
    fn unreadable_bodies_are_described() {
        assert_eq!(
            describe_unreadable(b""),
            "empty body where JSON was expected"
        );
        assert_eq!(
            describe_unreadable(b" \n"),
            "empty body where JSON was expected"
        );
        assert_eq!(
            describe_unreadable(b"\n<!DOCTYPE html>"),
            "HTML (or XML) where JSON was expected"
        );
        assert_eq!(
            describe_unreadable(b"{\"a\":"),
            "truncated or malformed JSON"
        );
        assert_eq!(describe_unreadable(b"Bad Gateway"), "body is not JSON");
    }

    #[test]
    fn excerpt_is_bounded_and_lossy() {
        let body = vec![0xffu8; 4 * BODY_EXCERPT_BYTES];
        let text = excerpt(&body);
        assert_eq!(text.chars().count(), BODY_EXCERPT_BYTES);
        assert!(text.chars().all(|c| c == char::REPLACEMENT_CHARACTER));
        assert_eq!(excerpt(b"short"), "short");
    }
}
