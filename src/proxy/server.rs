//! The proxy's network edge: the listener, one hyper connection per client, the forwarding of
//! each request with reqwest, and the recording of each exchange when its body ends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue,
    RETRY_AFTER,
};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::audit::{Audit, Changes, GuardAnswer};
use super::body::{self, BodyEnd, TeeBody, Teed, WriteStallGuard};
use super::jobs::{JobStep, Jobs, PollRead};
use super::request::{self, Endpoint};
use super::route::{self, Refusal};
use super::{FIRST_ATTEMPT_ID, Limits, ProxyError, ProxyEvent, ProxySettings, Upstream};
use crate::outcome::Transport;
use crate::provider::{self, AttemptMeta, AuthStyle, Exchange, FieldSource, JobPoll, Profile};
use crate::redact::KeyForms;

/// Request-body bytes read before forwarding: enough for any scrape request's JSON, so the audit
/// can recognise a resent request and the outcome can name its target.
const REQUEST_START: usize = 64 * 1024;
/// How long connections get to finish their exchange once the proxy is stopping.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The running proxy.
pub struct ProxyHandle {
    pub local_addr: SocketAddr,
    stop: CancellationToken,
    accept: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// Stop accepting; exchanges in the air finish (within a grace period).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// After [`ProxyHandle::shutdown`]: wait for the connections to close and every exchange to be
    /// recorded, then report the jobs the client left pending. The event sender is dropped last,
    /// so the consumer sees the channel close. (The audit's findings went out as events, and are
    /// counted where every other fact is.)
    pub async fn join(self) {
        self.stop.cancel();
        let _ = self.accept.await;
        let shared = self.shared;
        let all_connections =
            u32::try_from(shared.settings.limits.max_connections).unwrap_or(u32::MAX);
        let all_exchanges = u32::try_from(shared.settings.limits.max_exchanges).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), async {
            let _connections = shared.connections.acquire_many(all_connections).await;
            let _exchanges = shared.exchanges.acquire_many(all_exchanges).await;
        })
        .await;
        let left = shared.jobs().drain(Utc::now());
        for outcome in left {
            let in_flight = shared.in_flight_of(&outcome.provider);
            let _ = shared
                .events
                .send(ProxyEvent::Attempt {
                    outcome: Box::new(outcome),
                    in_flight,
                })
                .await;
        }
    }
}

struct Shared {
    settings: ProxySettings,
    names: Vec<String>,
    client: reqwest::Client,
    audit: Mutex<Audit>,
    jobs: Mutex<Jobs>,
    in_flight: Vec<AtomicU32>,
    next_attempt: AtomicU64,
    events: mpsc::Sender<ProxyEvent>,
    connections: Arc<Semaphore>,
    exchanges: Arc<Semaphore>,
}

impl Shared {
    fn audit(&self) -> std::sync::MutexGuard<'_, Audit> {
        self.audit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_flight_of(&self, provider: &str) -> u32 {
        self.names
            .iter()
            .position(|name| name == provider)
            .map_or(0, |index| self.in_flight[index].load(Ordering::Relaxed))
    }

    /// Hand events to the consumer without making the client wait: straight into the channel when
    /// it has room, else from a task that holds the exchange's place until they are taken (places
    /// are bounded, so a stuck consumer slows new requests down instead of growing memory).
    fn emit(&self, events: Vec<ProxyEvent>, place: Option<OwnedSemaphorePermit>) {
        let mut events = events.into_iter();
        for event in events.by_ref() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => {
                    let sender = self.events.clone();
                    let rest: Vec<ProxyEvent> = std::iter::once(event).chain(events).collect();
                    tokio::spawn(async move {
                        for event in rest {
                            if sender.send(event).await.is_err() {
                                break;
                            }
                        }
                        drop(place);
                    });
                    return;
                }
            }
        }
    }
}

/// Bind and start serving. Loopback only unless `allow_remote`.
///
/// # Errors
/// A non-loopback address without `allow_remote`, an address that cannot be bound, no providers.
pub async fn serve(
    settings: ProxySettings,
    events: mpsc::Sender<ProxyEvent>,
) -> Result<ProxyHandle, ProxyError> {
    if !settings.listen.ip().is_loopback() && !settings.allow_remote {
        return Err(ProxyError::NotLoopback(settings.listen));
    }
    if settings.upstreams.is_empty() {
        return Err(ProxyError::NoProviders);
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ProxyError::Bind {
            addr: settings.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ProxyError::Bind {
        addr: settings.listen,
        source,
    })?;
    // Redirects are the client's to follow (they reach it unchanged); no user agent of ours (the
    // client's goes through); no total timeout (a legitimate page may take minutes to stream), but
    // a read timeout for a provider gone silent.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.limits.upstream_connect_timeout)
        .read_timeout(settings.limits.upstream_read_timeout)
        .retry(reqwest::retry::never())
        .build()
        .map_err(|error| ProxyError::Client(error.to_string()))?;
    let audit = Audit::new(
        settings.guard,
        settings
            .upstreams
            .iter()
            .map(|upstream| (upstream.profile.name.clone(), upstream.concurrency)),
    );
    let shared = Arc::new(Shared {
        names: settings
            .upstreams
            .iter()
            .map(|u| u.profile.name.clone())
            .collect(),
        in_flight: settings
            .upstreams
            .iter()
            .map(|_| AtomicU32::new(0))
            .collect(),
        connections: Arc::new(Semaphore::new(settings.limits.max_connections)),
        exchanges: Arc::new(Semaphore::new(settings.limits.max_exchanges)),
        settings,
        client,
        audit: Mutex::new(audit),
        jobs: Mutex::new(Jobs::default()),
        next_attempt: AtomicU64::new(FIRST_ATTEMPT_ID),
        events,
    });
    let stop = CancellationToken::new();
    let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop.clone()));
    Ok(ProxyHandle {
        local_addr,
        stop,
        accept,
        shared,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        // A place first: past the bound, clients wait in the kernel's accept queue.
        let place = tokio::select! {
            () = stop.cancelled() => return,
            place = Arc::clone(&shared.connections).acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        tokio::spawn(async move {
            let limits = shared.settings.limits;
            let io = TokioIo::new(WriteStallGuard::new(stream, limits.stall_timeout));
            let service = {
                let shared = Arc::clone(&shared);
                service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                })
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service);
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(STOP_GRACE, connection).await;
                }
            }
            drop(place);
        });
    }
}

/// A response body: the provider's, teed, or one the proxy wrote itself.
pub enum ProxyBody {
    Forwarded(TeeBody),
    Local(Full<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Forwarded(body) => Pin::new(body).poll_frame(cx),
            Self::Local(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Forwarded(body) => body.is_end_stream(),
            Self::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Forwarded(body) => body.size_hint(),
            Self::Local(body) => body.size_hint(),
        }
    }
}

/// An answer the proxy gives itself: a status, a JSON body, extra headers.
struct LocalAnswer {
    status: StatusCode,
    body: Value,
    retry_after: Option<Duration>,
}

impl LocalAnswer {
    fn refused(refusal: &Refusal) -> Self {
        Self {
            status: refusal.status(),
            body: serde_json::json!({ "error": refusal.code(), "message": refusal.to_string() }),
            retry_after: None,
        }
    }

    /// The client's request body could not be read whole: too large, stalled or broken.
    fn request_body(error: &body::RequestBodyError) -> Self {
        let status = match error {
            body::RequestBodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            body::RequestBodyError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            body::RequestBodyError::Broken(_) => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            body: serde_json::json!({ "error": "OMNISCOPE_PROXY_REQUEST_BODY", "message": error.to_string() }),
            retry_after: None,
        }
    }

    fn upstream_failed(transport: &Transport) -> Self {
        let status = if *transport == Transport::Timeout {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        Self {
            status,
            body: serde_json::json!({
                "error": "OMNISCOPE_PROXY_UPSTREAM_FAILED",
                "message": format!("omniscope proxy could not reach the provider: {}", transport.label()),
            }),
            retry_after: None,
        }
    }

    /// The guard's answer, in the provider's own error shape (its code and message fields), so the
    /// client's SDK reads it as the provider's refusal it stands for.
    fn guarded(profile: &Profile, answer: &GuardAnswer) -> Self {
        let mut body = Value::Object(Map::new());
        let first_pointer = |fields: &[provider::Field]| {
            fields.iter().find_map(|field| match &field.0 {
                FieldSource::Json(pointer) if !pointer.is_empty() => Some(pointer.clone()),
                _ => None,
            })
        };
        let code = answer
            .code
            .clone()
            .unwrap_or_else(|| "OMNISCOPE_GUARD".to_owned());
        if let Some(pointer) = first_pointer(&profile.response.success) {
            put(&mut body, &pointer, Value::Bool(false));
        }
        if let Some(pointer) = first_pointer(&profile.response.error_code) {
            put(&mut body, &pointer, Value::String(code));
        }
        if let Some(pointer) = first_pointer(&profile.response.message) {
            put(&mut body, &pointer, Value::String(answer.reason.clone()));
        }
        put(
            &mut body,
            "/omniscope_guard",
            Value::String(answer.reason.clone()),
        );
        Self {
            status: StatusCode::from_u16(answer.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            body,
            retry_after: answer.retry_after,
        }
    }

    fn into_response(self, guard: bool) -> Response<ProxyBody> {
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = Response::new(ProxyBody::Local(Full::new(Bytes::from(bytes))));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "x-omniscope-proxy",
            HeaderValue::from_static(if guard { "guarded" } else { "refused" }),
        );
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: coming back on time never means coming back early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Set `value` at an RFC 6901 pointer, creating objects on the way (a token that is not an object
/// member is left alone).
fn put(root: &mut Value, pointer: &str, value: Value) {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = tokens.split_last() else {
        return;
    };
    let mut at = root;
    for token in path {
        let Value::Object(map) = at else { return };
        at = map
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = at {
        map.insert(last.clone(), value);
    }
}

async fn handle(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<ProxyBody> {
    match forward(shared, request).await {
        Ok(response) => response,
        Err((answer, guard)) => answer.into_response(guard),
    }
}

/// What the recording of one exchange needs once its body has ended.
struct Pending {
    upstream: usize,
    endpoint: Endpoint,
    account: u64,
    fingerprint: u64,
    meta: AttemptMeta,
    status: Option<u16>,
    headers: HeaderMap,
    /// Held only until the exchange is classified, to redact what the provider echoed of it.
    key: Option<SecretString>,
    started: Instant,
    counted: bool,
}

async fn forward(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, (LocalAnswer, bool)> {
    let refuse = |refusal: Refusal| (LocalAnswer::refused(&refusal), false);
    let (parts, mut incoming) = request.into_parts();
    let route = route::route(&parts.method, &parts.uri, &shared.names).map_err(refuse)?;
    let index = shared
        .names
        .iter()
        .position(|name| name == route.provider)
        .ok_or_else(|| refuse(Refusal::LeavesBaseUrl))?;
    let upstream: &Upstream = &shared.settings.upstreams[index];
    let profile = &upstream.profile;
    if route::wants_upgrade(&parts.headers) {
        return Err(refuse(Refusal::Upgrade));
    }
    let limits = shared.settings.limits;
    if declared_length(&parts.headers).is_some_and(|length| length > limits.max_request_body) {
        return Err(refuse(Refusal::RequestTooLarge {
            limit_bytes: limits.max_request_body,
        }));
    }
    let url = route::upstream_url(&upstream.base_url, &route.rest).map_err(refuse)?;

    // A place for this exchange until it is recorded: bounds the work (and memory) in the air.
    let place = Arc::clone(&shared.exchanges)
        .acquire_owned()
        .await
        .map_err(|_| refuse(Refusal::LeavesBaseUrl))?;
    let (start, ended) = body::read_start(
        &mut incoming,
        REQUEST_START,
        limits.max_request_body,
        limits.stall_timeout,
    )
    .await
    .map_err(|error| (LocalAnswer::request_body(&error), false))?;

    let path = route.rest.split('?').next().unwrap_or_default();
    let query = parts.uri.query();
    let endpoint = request::endpoint(profile, path);
    let key = request::client_key(profile, &parts.headers, query);
    let account = request::account_of(key.as_ref());
    let fingerprint = request::fingerprint(&parts.method, &route.rest, &start);
    let (target_url, options) = match endpoint {
        Endpoint::Scrape => request::scrape_request(
            profile,
            &start,
            query,
            profile.endpoints.async_submit.as_deref() == Some(path),
        ),
        _ => (String::new(), crate::outcome::RequestOptions::default()),
    };

    let now = Utc::now();
    let mut events = admit(shared, profile, account, fingerprint, &target_url, now)?;

    let counted = endpoint == Endpoint::Scrape;
    let attempt_id = shared.next_attempt.fetch_add(1, Ordering::Relaxed);
    if counted {
        let in_flight = shared.in_flight[index].fetch_add(1, Ordering::Relaxed) + 1;
        events.push(ProxyEvent::Forwarded {
            provider: route.provider.to_owned(),
            attempt_id,
            target_url: target_url.clone(),
            at: now,
            in_flight,
        });
    }
    shared.emit(events, None);

    let mut headers = parts.headers;
    route::strip_hop_by_hop(&mut headers, true);
    mark_key_sensitive(&mut headers, profile);
    let body = upstream_body(start, ended, incoming, limits);
    let mut pending = Pending {
        upstream: index,
        endpoint,
        account,
        fingerprint,
        meta: proxied_meta(attempt_id, target_url, options),
        status: None,
        headers: HeaderMap::new(),
        key,
        started: Instant::now(),
        counted,
    };
    let sent = shared
        .client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            let transport = crate::probe::http::transport_of(error);
            let answer = LocalAnswer::upstream_failed(&transport);
            record(shared, pending, nothing_received(), Some(transport), place);
            return Err((answer, false));
        }
    };
    pending.status = Some(response.status().as_u16());
    pending.headers = response.headers().clone();
    let response: Response<reqwest::Body> = response.into();
    let (mut head, upstream_body) = response.into_parts();
    route::strip_hop_by_hop(&mut head.headers, false);
    let shared_for_end = Arc::clone(shared);
    let tee = TeeBody::new(
        upstream_body,
        shared.settings.body_cap,
        limits.max_response_body,
        Box::new(move |teed| record(&shared_for_end, pending, teed, None, place)),
    );
    Ok(Response::from_parts(head, ProxyBody::Forwarded(tee)))
}

/// The request body for the provider: what was read already, then (when the client has not
/// finished sending) the rest, streamed within the limits.
fn upstream_body(start: Vec<u8>, ended: bool, rest: Incoming, limits: Limits) -> reqwest::Body {
    if ended {
        reqwest::Body::from(start)
    } else {
        reqwest::Body::wrap_stream(body::request_stream(
            start,
            rest,
            limits.max_request_body,
            limits.stall_timeout,
        ))
    }
}

/// A forwarded request is one first attempt, as far as the fold of outcomes is concerned.
fn proxied_meta(
    attempt_id: u64,
    target_url: String,
    options: crate::outcome::RequestOptions,
) -> AttemptMeta {
    AttemptMeta {
        probe_id: 0,
        attempt_id,
        attempt: 1,
        retry_of: None,
        target_url,
        options,
        started_at: Utc::now(),
    }
}

/// What came back of a request that never reached the provider: nothing.
fn nothing_received() -> Teed {
    Teed {
        copy: Vec::new(),
        over_cap: false,
        bytes: 0,
        end: BodyEnd::UpstreamFailed(String::new()),
    }
}

/// A request's declared `Content-Length`, when it has a readable one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
}

/// The audit's judgement of a request before it is forwarded: its findings, as events still to
/// emit; or, when the guard answers it, the local answer (the events emitted).
fn admit(
    shared: &Shared,
    profile: &Profile,
    account: u64,
    fingerprint: u64,
    target_url: &str,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<ProxyEvent>, (LocalAnswer, bool)> {
    let admission = shared
        .audit()
        .admit(&profile.name, account, fingerprint, now);
    let mut events: Vec<ProxyEvent> = admission
        .findings
        .into_iter()
        .map(ProxyEvent::Finding)
        .collect();
    let Some(answer) = admission.guard else {
        return Ok(events);
    };
    events.push(ProxyEvent::Guarded {
        provider: profile.name.clone(),
        target_url: target_url.to_owned(),
        status: answer.status,
        reason: answer.reason.clone(),
    });
    shared.emit(events, None);
    Err((LocalAnswer::guarded(profile, &answer), true))
}

/// The key's header (and `Authorization`) marked sensitive, so no Debug output of the request
/// shows it.
fn mark_key_sensitive(headers: &mut HeaderMap, profile: &Profile) {
    let key_header = (profile.auth.style == AuthStyle::Header)
        .then_some(profile.auth.name.as_deref())
        .flatten();
    for (name, value) in headers {
        if *name == AUTHORIZATION
            || key_header.is_some_and(|key| name.as_str().eq_ignore_ascii_case(key))
        {
            value.set_sensitive(true);
        }
    }
}

/// Classify one finished exchange, join it to its job, teach the audit, and emit what came of it.
fn record(
    shared: &Shared,
    pending: Pending,
    teed: Teed,
    failed_before_head: Option<Transport>,
    place: OwnedSemaphorePermit,
) {
    let upstream = &shared.settings.upstreams[pending.upstream];
    let profile = &upstream.profile;
    let cap = shared.settings.body_cap;
    let now = Utc::now();
    // Every wire form of the key (JSON-escaped, percent-encoded, base64…), computed once for
    // everything this exchange reports; dropped with it.
    let key = pending
        .key
        .as_ref()
        .map(|key| KeyForms::new(key.expose_secret()))
        .unwrap_or_default();
    let (mut outcome, body) =
        classify_exchange(profile, &pending, &teed, failed_before_head, cap, now);
    outcome.redact_forms(&key);
    let provider = profile.name.clone();

    let mut events = Vec::new();
    let changes = shared.audit().finish(
        &provider,
        pending.account,
        pending.fingerprint,
        &outcome,
        now,
    );
    let in_flight = if pending.counted {
        shared.in_flight[pending.upstream]
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1)
    } else {
        shared.in_flight[pending.upstream].load(Ordering::Relaxed)
    };
    let max_age = TimeDelta::from_std(shared.settings.job_max_wait).unwrap_or(TimeDelta::hours(1));
    match &pending.endpoint {
        Endpoint::Scrape if outcome.api_status == Some(202) && outcome.job.is_some() => {
            let job_id = outcome
                .job
                .as_ref()
                .map(|job| job.id.clone())
                .unwrap_or_default();
            events.push(ProxyEvent::JobPending {
                provider: provider.clone(),
                attempt_id: outcome.attempt_id,
                job_id,
                status: "queued".to_owned(),
            });
            let evicted = shared.jobs().submit(outcome, now, max_age);
            events.extend(evicted.into_iter().map(|outcome| ProxyEvent::Attempt {
                outcome: Box::new(outcome),
                in_flight,
            }));
        }
        Endpoint::Scrape => events.push(ProxyEvent::Attempt {
            outcome: Box::new(outcome),
            in_flight,
        }),
        Endpoint::JobPoll { job_id } => {
            let answered = outcome.transport == Transport::Ok
                && outcome
                    .api_status
                    .is_some_and(|status| (200..300).contains(&status));
            let read = if answered {
                read_job_poll(profile, &pending, &body, now, cap, &key)
            } else {
                PollRead::PollFailed(Box::new(outcome))
            };
            let mut step = shared.jobs().poll(&provider, job_id, read, now);
            if let JobStep::Ended(ended) = &mut step {
                ended.redact_forms(&key);
            }
            events.push(match step {
                JobStep::Pending {
                    mut job_id,
                    mut status,
                } => {
                    key.scrub(&mut job_id);
                    key.scrub(&mut status);
                    ProxyEvent::JobPending {
                        provider: provider.clone(),
                        attempt_id: pending.meta.attempt_id,
                        job_id,
                        status,
                    }
                }
                JobStep::Ended(outcome) => ProxyEvent::Attempt { outcome, in_flight },
            });
        }
        Endpoint::Usage => {
            if let Some(mut reading) = (outcome.transport == Transport::Ok
                && outcome
                    .api_status
                    .is_some_and(|status| (200..300).contains(&status)))
            .then(|| provider::parse_usage(profile, &body))
            .flatten()
            {
                if let Some(plan) = reading.plan.as_mut() {
                    key.scrub(plan);
                }
                events.push(ProxyEvent::Usage {
                    provider: provider.clone(),
                    reading,
                    at: now,
                });
            }
        }
        Endpoint::Other => {}
    }
    push_changes(&mut events, provider, changes);
    shared.emit(events, Some(place));
}

/// The exchange classified as the provider meant it (the body decoded, within the cap), and
/// that body. Not yet redacted.
fn classify_exchange(
    profile: &Profile,
    pending: &Pending,
    teed: &Teed,
    failed_before_head: Option<Transport>,
    cap: usize,
    now: chrono::DateTime<Utc>,
) -> (crate::outcome::Outcome, Vec<u8>) {
    let transport = failed_before_head.unwrap_or_else(|| body_transport(&teed.end));
    // The copy as the provider meant it: decoded when it came compressed. Over the cap, or in an
    // encoding omniscope does not read, the status and headers are still classified.
    let encoding = pending
        .headers
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok());
    let (body, over_cap) = if teed.over_cap {
        (Vec::new(), true)
    } else {
        body::decoded(encoding, &teed.copy, cap).unwrap_or_default()
    };
    let transport = if over_cap && transport == Transport::Ok {
        Transport::BodyOverCap {
            cap_bytes: cap as u64,
        }
    } else {
        transport
    };
    let mut outcome = provider::classify(
        profile,
        &pending.meta,
        &Exchange {
            transport: &transport,
            status: pending.status,
            headers: &pending.headers,
            body: &body,
            received_at: now,
            latency: pending.started.elapsed(),
            body_cap: cap,
        },
    );
    outcome.body_bytes = teed.bytes;
    (outcome, body)
}

/// How the exchange ended, once the whole body has passed (or not).
fn body_transport(end: &BodyEnd) -> Transport {
    match end {
        BodyEnd::Complete => Transport::Ok,
        BodyEnd::UpstreamFailed(detail) => Transport::BodyIncomplete {
            detail: detail.clone(),
        },
        BodyEnd::ClientGone => Transport::BodyIncomplete {
            detail: "the client closed the connection before the body ended".to_owned(),
        },
        BodyEnd::TooLarge { limit_bytes } => Transport::BodyOverCap {
            cap_bytes: *limit_bytes,
        },
    }
}

/// What an answered job poll says: still pending, completed (its result classified as the
/// attempt's outcome, redacted), or failed.
fn read_job_poll(
    profile: &Profile,
    pending: &Pending,
    body: &[u8],
    now: chrono::DateTime<Utc>,
    cap: usize,
    key: &KeyForms,
) -> PollRead {
    match provider::parse_job_poll(profile, body) {
        JobPoll::Pending(status) => PollRead::Pending(status),
        JobPoll::Completed(result) => {
            let result_body = serde_json::to_vec(&result).unwrap_or_default();
            let mut finished = provider::classify(
                profile,
                &pending.meta,
                &Exchange {
                    transport: &Transport::Ok,
                    status: pending.status,
                    headers: &pending.headers,
                    body: &result_body,
                    received_at: now,
                    latency: pending.started.elapsed(),
                    body_cap: cap,
                },
            );
            finished.redact_forms(key);
            PollRead::Completed(Box::new(finished))
        }
        JobPoll::Failed { status, reason } => PollRead::Failed(match reason {
            Some(reason) => format!("job {status}: {reason}"),
            None => format!("job {status}"),
        }),
        JobPoll::Unreadable(detail) => PollRead::Failed(format!("job poll unreadable: {detail}")),
    }
}

/// The audit's verdict on the provider after this exchange, as events.
fn push_changes(events: &mut Vec<ProxyEvent>, provider: String, changes: Changes) {
    if let Some(reason) = changes.paused {
        events.push(ProxyEvent::Paused {
            provider: provider.clone(),
            reason,
        });
    }
    if changes.resumed {
        events.push(ProxyEvent::Resumed {
            provider: provider.clone(),
        });
    }
    if let Some((until, reason)) = changes.hold {
        events.push(ProxyEvent::Hold {
            provider,
            until,
            reason,
        });
    }
}
