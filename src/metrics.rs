//! Prometheus exposition (prometheus-client): the same facts the event log holds, as counters,
//! a latency histogram and gauges, served at `/metrics` by a small axum server.
//!
//! [`Metrics::observe`] takes one [`Fact`], so the live run, the dashboard and a replay all
//! update metrics from the one stream they already fold into statistics.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::event::Fact;
use crate::outcome::{Cause, MAX_UNKNOWN_CODES, OTHER_CODE, Origin, Outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: String,
}

/// One attempt's labels: `api_status` and `target_status` are the HTTP status or `none`,
/// `error_code` the provider's code or `none`, `result` `succeeded` or `failed`, `origin`
/// `probe` or `proxy`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    pub api_status: String,
    pub target_status: String,
    pub error_code: String,
    pub result: String,
    pub origin: &'static str,
}

/// A provider's traffic of one origin (`probe` or `proxy`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabels {
    pub provider: String,
    pub origin: &'static str,
}

/// Failures by what they failed on (`fault`: a [`Cause`] label).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub provider: String,
    pub fault: String,
    pub origin: &'static str,
}

/// One attempt per target host: `target_host` is a configured target's host, or [`OTHER_HOST`];
/// `fault` is `none` for a success.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub provider: String,
    pub target_host: String,
    pub result: String,
    pub fault: String,
    pub origin: &'static str,
}

/// Target hosts given a label of their own: the configured targets' (or, when the session names
/// none, the first ones seen), at most this many.
pub const MAX_TARGET_HOSTS: usize = 50;
/// The `target_host` label of every other host.
pub const OTHER_HOST: &str = "other";

/// Which target hosts get a label of their own.
#[derive(Debug, Default)]
struct HostLabels {
    kept: HashSet<String>,
    /// The set came from the session's configured targets: no host is added later.
    configured: bool,
}

impl HostLabels {
    fn label(&mut self, host: &str) -> String {
        if self.kept.contains(host)
            || (!self.configured
                && self.kept.len() < MAX_TARGET_HOSTS
                && self.kept.insert(host.to_owned()))
        {
            host.to_owned()
        } else {
            OTHER_HOST.to_owned()
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnitLabels {
    pub provider: String,
    pub unit: String,
}

/// Money of one origin, in the provider's unit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    pub provider: String,
    pub unit: String,
    pub origin: &'static str,
}

/// One rule of the contract the user's scraper broke (`omniscope proxy`'s audit).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub provider: String,
    pub kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// Every metric omniscope exposes, registered in one [`Registry`].
#[derive(Debug, Clone)]
pub struct Metrics {
    pub attempts: Family<AttemptLabels, Counter>,
    pub skipped: Family<OriginLabels, Counter>,
    pub latency: Family<ProviderLabel, Histogram>,
    pub rate_limit_remaining: Family<ProviderLabel, Gauge>,
    pub rate_limit_limit: Family<ProviderLabel, Gauge>,
    pub in_flight: Family<OriginLabels, Gauge>,
    pub balance: Family<UnitLabels, FloatGauge>,
    pub paused: Family<ProviderLabel, Gauge>,
    pub charged: Family<SpendLabels, FloatCounter>,
    pub refunded: Family<SpendLabels, FloatCounter>,
    pub findings: Family<FindingLabels, Counter>,
    pub failures: Family<FaultLabels, Counter>,
    pub target_attempts: Family<TargetLabels, Counter>,
    target_hosts: Arc<Mutex<HostLabels>>,
    /// Per provider, the unknown error codes given a label of their own (at most
    /// [`MAX_UNKNOWN_CODES`]; later ones are labelled [`OTHER_CODE`]), so a provider that sends
    /// a new code every time cannot grow the series without bound.
    unknown_codes: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

fn latency_histogram() -> Histogram {
    // 5 ms to ~80 s, doubling: scrapes range from a cached hit to a slow JS render.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Metrics {
    /// Create the metrics and register them (prefix `omniscope_`) in `registry`.
    #[must_use]
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            attempts: Family::default(),
            skipped: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rate_limit_remaining: Family::default(),
            rate_limit_limit: Family::default(),
            in_flight: Family::default(),
            balance: Family::default(),
            paused: Family::default(),
            charged: Family::default(),
            refunded: Family::default(),
            findings: Family::default(),
            failures: Family::default(),
            target_attempts: Family::default(),
            target_hosts: Arc::default(),
            unknown_codes: Arc::default(),
        };
        let registry = registry.sub_registry_with_prefix("omniscope");
        registry.register(
            "attempts",
            "Attempts (retries included) by provider, API status, target status, error code, result and origin (probe, proxy)",
            metrics.attempts.clone(),
        );
        registry.register(
            "skipped",
            "Probes not sent (provider paused), proxied requests answered by --guard",
            metrics.skipped.clone(),
        );
        registry.register(
            "attempt_latency_seconds",
            "Latency of one attempt",
            metrics.latency.clone(),
        );
        registry.register(
            "rate_limit_remaining",
            "Requests left in the provider's rate-limit window (last reading)",
            metrics.rate_limit_remaining.clone(),
        );
        registry.register(
            "rate_limit_limit",
            "Requests allowed per rate-limit window (last reading)",
            metrics.rate_limit_limit.clone(),
        );
        registry.register(
            "in_flight",
            "Requests to the provider in the air, by origin",
            metrics.in_flight.clone(),
        );
        registry.register(
            "balance",
            "Account balance from the provider's usage endpoint",
            metrics.balance.clone(),
        );
        registry.register(
            "paused",
            "1 while the provider is paused",
            metrics.paused.clone(),
        );
        registry.register(
            "charged",
            "Amount charged, in the provider's unit",
            metrics.charged.clone(),
        );
        registry.register(
            "refunded",
            "Amount refunded, in the provider's unit",
            metrics.refunded.clone(),
        );
        registry.register(
            "audit_findings",
            "Requests of the proxied scraper that broke a rule of the provider's contract, by rule",
            metrics.findings.clone(),
        );
        registry.register(
            "failures",
            "Failed attempts by what they failed on (provider, target, rate_limit, concurrency, account, network, unreadable, request)",
            metrics.failures.clone(),
        );
        registry.register(
            "target_attempts",
            "Attempts by target host (configured targets' hosts, the rest as other), result and fault",
            metrics.target_attempts.clone(),
        );
        metrics
    }

    /// The `error_code` label for `code`: itself when the profile knows it or it is among the
    /// first [`MAX_UNKNOWN_CODES`] unknown ones of its provider, else [`OTHER_CODE`].
    fn code_label(&self, outcome: &Outcome, code: &str) -> String {
        if outcome.class.known_code {
            return code.to_owned();
        }
        let mut unknown = self
            .unknown_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let kept = unknown.entry(outcome.provider.clone()).or_default();
        if kept.contains(code) || (kept.len() < MAX_UNKNOWN_CODES && kept.insert(code.to_owned())) {
            code.to_owned()
        } else {
            OTHER_CODE.to_owned()
        }
    }

    /// Update the metrics from one fact.
    pub fn observe(&self, fact: &Fact) {
        match fact {
            Fact::SessionStart {
                providers,
                settings,
                ..
            } => {
                let configured = crate::event::configured_target_hosts(settings);
                if !configured.is_empty() {
                    let mut hosts = self
                        .target_hosts
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    hosts.configured = true;
                    hosts.kept = configured.into_iter().take(MAX_TARGET_HOSTS).collect();
                }
                for entry in providers {
                    let label = provider_label(&entry.name);
                    // Make every provider visible from the start, at zero.
                    self.paused.get_or_create(&label).set(0);
                    let probes = origin_labels(&entry.name, Origin::Probe);
                    self.in_flight.get_or_create(&probes).set(0);
                    let _ = self.skipped.get_or_create(&probes);
                }
            }
            Fact::Attempt {
                outcome, in_flight, ..
            } => {
                let status =
                    |s: Option<u16>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
                let labels = AttemptLabels {
                    provider: outcome.provider.clone(),
                    api_status: status(outcome.api_status),
                    target_status: status(outcome.target_status),
                    error_code: outcome
                        .error_code
                        .as_deref()
                        .map_or_else(|| "none".to_owned(), |code| self.code_label(outcome, code)),
                    result: if outcome.succeeded() {
                        "succeeded"
                    } else {
                        "failed"
                    }
                    .to_owned(),
                    origin: outcome.origin.label(),
                };
                self.attempts.get_or_create(&labels).inc();
                self.observe_fault_and_target(outcome);
                let label = provider_label(&outcome.provider);
                self.latency
                    .get_or_create(&label)
                    .observe(outcome.latency.as_secs_f64());
                if let Some(remaining) = outcome.rate_limit.remaining {
                    self.rate_limit_remaining
                        .get_or_create(&label)
                        .set(saturating_i64(remaining));
                }
                if let Some(limit) = outcome.rate_limit.limit {
                    self.rate_limit_limit
                        .get_or_create(&label)
                        .set(saturating_i64(limit));
                }
                if let Some(n) = in_flight {
                    self.in_flight
                        .get_or_create(&origin_labels(&outcome.provider, outcome.origin))
                        .set(i64::from(*n));
                }
                let unit = SpendLabels {
                    provider: outcome.provider.clone(),
                    unit: outcome.billing.unit.label().to_owned(),
                    origin: outcome.origin.label(),
                };
                // Both series exist from the first attempt, so "refunded 0" shows as such.
                let charged = outcome
                    .billing
                    .charged
                    .filter(|c| *c > 0.0 && crate::outcome::sane_amount(*c));
                self.charged
                    .get_or_create(&unit)
                    .inc_by(charged.unwrap_or(0.0));
                let refunded = outcome
                    .billing
                    .refunded
                    .filter(|r| *r > 0.0 && crate::outcome::sane_amount(*r));
                self.refunded
                    .get_or_create(&unit)
                    .inc_by(refunded.unwrap_or(0.0));
            }
            Fact::InFlight {
                provider,
                n,
                origin,
                ..
            } => {
                self.in_flight
                    .get_or_create(&origin_labels(provider, *origin))
                    .set(i64::from(*n));
            }
            Fact::Skipped {
                provider, origin, ..
            } => {
                self.skipped
                    .get_or_create(&origin_labels(provider, *origin))
                    .inc();
            }
            Fact::Finding { provider, kind, .. } => {
                self.findings
                    .get_or_create(&FindingLabels {
                        provider: provider.clone(),
                        kind: kind.key(),
                    })
                    .inc();
            }
            Fact::Paused { provider, .. } => {
                self.paused.get_or_create(&provider_label(provider)).set(1);
            }
            Fact::Resumed { provider, .. } => {
                self.paused.get_or_create(&provider_label(provider)).set(0);
            }
            Fact::Usage {
                provider, reading, ..
            } => {
                if let Some(balance) = reading.balance.filter(|b| b.is_finite()) {
                    self.balance
                        .get_or_create(&UnitLabels {
                            provider: provider.clone(),
                            unit: reading.unit.label().to_owned(),
                        })
                        .set(balance);
                }
            }
            Fact::Limits { .. } | Fact::SessionEnd { .. } => {}
        }
    }
}

impl Metrics {
    /// The failure's fault, and the attempt under its target host.
    fn observe_fault_and_target(&self, outcome: &Outcome) {
        let cause = outcome.cause();
        let fault = cause.map_or("none", Cause::label).to_owned();
        if cause.is_some() {
            self.failures
                .get_or_create(&FaultLabels {
                    provider: outcome.provider.clone(),
                    fault: fault.clone(),
                    origin: outcome.origin.label(),
                })
                .inc();
        }
        let target_host = self
            .target_hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .label(outcome.target_host());
        self.target_attempts
            .get_or_create(&TargetLabels {
                provider: outcome.provider.clone(),
                target_host,
                result: if cause.is_none() {
                    "succeeded"
                } else {
                    "failed"
                }
                .to_owned(),
                fault,
                origin: outcome.origin.label(),
            })
            .inc();
    }
}

fn provider_label(provider: &str) -> ProviderLabel {
    ProviderLabel {
        provider: provider.to_owned(),
    }
}

fn origin_labels(provider: &str, origin: Origin) -> OriginLabels {
    OriginLabels {
        provider: provider.to_owned(),
        origin: origin.label(),
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A new registry with omniscope's metrics in it.
#[must_use]
pub fn new_registry() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    (registry, metrics)
}

/// The registry in the Prometheus text format.
///
/// # Errors
/// Only if encoding fails (a formatter error).
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// A running `/metrics` server.
#[derive(Debug)]
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Stop serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "--metrics-addr {addr} is not a loopback address; metrics name your providers, targets and spend, so pass --metrics-allow-remote to serve them beyond this machine"
    )]
    Remote { addr: SocketAddr },
}

/// Connections served at once; one more is closed as soon as it is accepted, so a crowd of idle
/// connections cannot take the descriptors the probes need.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection that has not sent a whole request head within this is closed: a request that
/// trickles in, or a keep-alive connection left idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one connection is kept, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serve `/metrics` on `addr` on the current tokio runtime. A non-loopback address needs
/// `allow_remote` (`--metrics-allow-remote`): the metrics say which providers and targets are
/// probed and what they cost.
///
/// # Errors
/// A non-loopback address without `allow_remote`; the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    allow_remote: bool,
) -> Result<MetricsServer, ServeError> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(ServeError::Remote { addr });
    }
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let task = tokio::spawn(accept_loop(listener, registry));
    Ok(MetricsServer { local_addr, task })
}

/// Accept a connection only when a place is free, and serve each with a header-read timeout and
/// a lifetime.
async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, or a connection reset before it was taken: the condition may
            // pass, and a tight loop would not help it.
            Err(_) => {
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        // Past the cap, a connection is closed at once rather than left waiting: a crowd is
        // turned away in moments, and a scraper retries at its next interval.
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let openmetrics = accepts_openmetrics(request.headers());
                let response = respond(
                    &registry,
                    request.method(),
                    request.uri().path(),
                    openmetrics,
                );
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(place);
        });
    }
}

const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Whether the scraper's `Accept` asks for OpenMetrics (a media range
/// `application/openmetrics-text` not refused with `q=0`). Prometheus servers ask for it when they
/// can read it; anything else (`text/plain;version=0.0.4`, no header, curl) gets the classic text.
fn accepts_openmetrics(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            media.eq_ignore_ascii_case("application/openmetrics-text")
                && !parts.any(|param| {
                    param.split_once('=').is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("q")
                            && value.trim().parse::<f64>().is_ok_and(|q| q <= 0.0)
                    })
                })
        })
}

/// OpenMetrics text rewritten as the classic Prometheus text format (0.0.4), which the classic
/// parser reads: no `# EOF` or `# UNIT` lines, no exemplars, a counter's `# HELP`/`# TYPE` named
/// as its `_total` samples, an info metric a gauge named `_info`, `unknown` as `untyped`.
#[must_use]
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut suffixes: HashMap<&str, &str> = HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            match kind.trim() {
                "counter" => {
                    suffixes.insert(name, "_total");
                }
                "info" => {
                    suffixes.insert(name, "_info");
                }
                _ => {}
            }
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# TYPE ")
            .map(|rest| ("# TYPE ", rest))
            .or_else(|| line.strip_prefix("# HELP ").map(|rest| ("# HELP ", rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = suffixes.get(name).copied().unwrap_or("");
            let tail = match (prefix, tail.trim()) {
                ("# TYPE ", "info") => "gauge",
                ("# TYPE ", "unknown") => "untyped",
                _ => tail,
            };
            out.push_str(prefix);
            out.push_str(name);
            out.push_str(suffix);
            out.push(' ');
            out.push_str(tail);
        } else if line.starts_with('#') {
            out.push_str(line);
        } else {
            // A sample, without its exemplar (` # {…} value`).
            out.push_str(line.split_once(" # ").map_or(line, |(sample, _)| sample));
        }
        out.push('\n');
    }
    out
}

fn respond(registry: &Registry, method: &Method, path: &str, openmetrics: bool) -> Response<Body> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Body::from(text));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if path != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    match encode(registry) {
        Ok(text) => {
            let (text, content_type) = if openmetrics {
                (
                    text,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                (
                    to_prometheus_text(&text),
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            };
            let mut response = Response::new(Body::from(text));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixture::{self, Attempt, OMNI_CONCURRENCY, outcome};

    fn attempt(outcome: Outcome) -> Fact {
        Fact::Attempt {
            at: fixture::now(),
            outcome: Box::new(outcome),
            in_flight: None,
        }
    }

    fn start(targets: &[&str]) -> Fact {
        let settings = serde_json::json!({ "probes": [{ "id": 1, "targets": targets }] });
        Fact::SessionStart {
            started_at: fixture::at(0),
            providers: Vec::new(),
            settings: settings.as_object().cloned().unwrap(),
        }
    }

    #[test]
    fn failures_carry_their_fault_and_target_hosts_stay_bounded() {
        let (registry, metrics) = new_registry();
        metrics.observe(&start(&[
            "https://shop.example.com/a",
            "https://shop.example.com/b",
        ]));
        metrics.observe(&attempt(outcome(&Attempt {
            target: "https://shop.example.com/a",
            ..Attempt::default()
        })));
        metrics.observe(&attempt(outcome(&Attempt {
            status: Some(429),
            body: OMNI_CONCURRENCY,
            target: "https://elsewhere.example/",
            ..Attempt::default()
        })));
        let text = encode(&registry).unwrap();
        for series in [
            r#"omniscope_failures_total{provider="omniscrape",fault="concurrency",origin="probe"} 1"#,
            r#"omniscope_target_attempts_total{provider="omniscrape",target_host="shop.example.com",result="succeeded",fault="none",origin="probe"} 1"#,
            // Not a configured target: no label of its own.
            r#"omniscope_target_attempts_total{provider="omniscrape",target_host="other",result="failed",fault="concurrency",origin="probe"} 1"#,
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
        assert!(!text.contains("elsewhere.example"), "{text}");

        // Without configured targets (a proxy session), the first hosts seen, up to the cap.
        let (registry, metrics) = new_registry();
        for n in 0..MAX_TARGET_HOSTS + 5 {
            let target = format!("https://host{n}.example/");
            metrics.observe(&attempt(outcome(&Attempt {
                target: &target,
                ..Attempt::default()
            })));
        }
        let text = encode(&registry).unwrap();
        let hosts = text
            .lines()
            .filter(|line| line.starts_with("omniscope_target_attempts_total{"))
            .count();
        assert_eq!(hosts, MAX_TARGET_HOSTS + 1, "{text}");
        assert!(
            text.contains(
                r#"target_host="other",result="succeeded",fault="none",origin="probe"} 5"#
            ),
            "{text}"
        );
    }
}
