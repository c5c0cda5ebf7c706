//! `omniscope proxy`: a pass-through that watches the user's own scraper traffic, at no extra
//! cost, and audits that scraper against the provider's contract.
//!
//! ```text
//!  scraper ──/<provider>/rest──▶ server ──route──▶ audit.admit ──▶ reqwest ──▶ provider base URL
//!     ▲                           │ (refused: local answer)  │ (--guard: local answer)      │
//!     └──────── response, streamed unchanged ◀── TeeBody ◀────────────────────────────────┘
//!                                                   │ copy ≤ body cap, on end:
//!                          classify ─▶ redact ─▶ jobs (join polls) ─▶ audit.finish ─▶ ProxyEvent
//! ```
//!
//! The edges: [`server`] (sockets, hyper, reqwest) and [`body`] (streaming). The middle is pure:
//! [`route`] (what may be forwarded, and where), [`request`] (what a request says), [`audit`]
//! (the client against the contract, and the guard) and [`jobs`] (an async job's 202 and polls
//! joined into one outcome). Classification is the probes' own [`crate::provider::classify`].

pub mod audit;
mod body;
pub mod jobs;
pub mod request;
pub mod route;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use audit::{Finding, FindingCounts, FindingKind};
pub use server::{ProxyHandle, serve};

use crate::event::{Event, Fact, Notice};
use crate::outcome::{Origin, Outcome};
use crate::provider::{Profile, UsageReading};

/// Where `omniscope proxy` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8899";
/// Proxied attempts are numbered from here, apart from the probes' attempts in the same session.
pub const FIRST_ATTEMPT_ID: u64 = 1 << 48;

/// The bounds that keep one client (or many) from holding the proxy: connections, time and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Exchanges forwarded or being recorded at once; more wait for a place.
    pub max_exchanges: usize,
    /// A request head (and the wait for the next one on a kept-alive connection) within this.
    pub header_timeout: Duration,
    /// No request body data for this long fails the request; so does a client not reading a
    /// response for this long.
    pub stall_timeout: Duration,
    /// Request bodies larger than this are refused (413) or cut (the upstream request fails).
    pub max_request_body: u64,
    /// Response bodies are streamed whatever their size up to this, far above any page a
    /// scraping API returns (their documented maximum is 50 MB).
    pub max_response_body: u64,
    pub upstream_connect_timeout: Duration,
    /// Longest silence from the provider (before its head, or between two body chunks). Scrapes
    /// legitimately take minutes (Zyte's server-side timeout is 200 s).
    pub upstream_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_exchanges: 4096,
            header_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            max_request_body: 32 * 1024 * 1024,
            max_response_body: 1024 * 1024 * 1024,
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_read_timeout: Duration::from_secs(300),
        }
    }
}

/// One provider the proxy forwards to.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub profile: Profile,
    /// The configured base URL (the profile's, or the config's endpoint override).
    pub base_url: reqwest::Url,
    /// The plan's concurrency, for the audit; `None`: not audited.
    pub concurrency: Option<u32>,
}

/// Everything the proxy needs, resolved.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    /// Listening on a non-loopback address was asked for explicitly.
    pub allow_remote: bool,
    /// Answer locally while a provider is paused or held, instead of forwarding.
    pub guard: bool,
    pub upstreams: Vec<Upstream>,
    /// Bytes of each response kept to classify it.
    pub body_cap: usize,
    /// A job the client has not polled to its end for this long is reported abandoned.
    pub job_max_wait: Duration,
    pub limits: Limits,
}

/// The proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "refusing to listen on {0}: it is not a loopback address, and a proxy that forwards API keys should not be open to the network (pass --allow-remote to do it anyway)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("no providers to forward to")]
    NoProviders,
}

/// What the proxy saw. Exchanges end as the same [`Outcome`] a probe's attempt does.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyEvent {
    /// A request was forwarded; `in_flight` counts the provider's proxied requests in the air.
    Forwarded {
        provider: String,
        attempt_id: u64,
        target_url: String,
        at: DateTime<Utc>,
        in_flight: u32,
    },
    /// An attempt ended: a scrape's exchange, or an async job joined from its 202 and polls.
    Attempt {
        outcome: Box<Outcome>,
        in_flight: u32,
    },
    JobPending {
        provider: String,
        attempt_id: u64,
        job_id: String,
        status: String,
    },
    /// A reading of the usage endpoint the client called.
    Usage {
        provider: String,
        reading: UsageReading,
        at: DateTime<Utc>,
    },
    /// The client broke a rule of the contract.
    Finding(Finding),
    /// `--guard` answered a request locally.
    Guarded {
        provider: String,
        target_url: String,
        status: u16,
        reason: String,
    },
    /// An account error stopped (one of) the provider's accounts.
    Paused {
        provider: String,
        reason: String,
    },
    Resumed {
        provider: String,
    },
    /// The provider asked to wait until `until`.
    Hold {
        provider: String,
        until: DateTime<Utc>,
        reason: String,
    },
}

impl ProxyEvent {
    /// The event a dashboard takes (`watch --proxy`): the fact it is, or, for job progress and
    /// holds, the live-only notice a probe's would be.
    #[must_use]
    pub fn into_event(self, now: DateTime<Utc>) -> Option<Event> {
        match self {
            Self::JobPending {
                provider,
                attempt_id,
                job_id,
                status,
            } => Some(Event::Notice(Notice::JobPending {
                provider,
                attempt_id,
                job_id,
                status,
            })),
            Self::Hold {
                provider,
                until,
                reason,
            } => Some(Event::Notice(Notice::Hold {
                provider,
                until,
                reason,
            })),
            other => other.into_fact(now).map(Event::Fact),
        }
    }

    /// The fact this event is, in the one fact type the statistics, the event log and the metrics
    /// read (stamped `now` where the event carries no time of its own), marked as proxied
    /// traffic. Job progress and holds are not facts of the session's statistics: they are told,
    /// not folded.
    #[must_use]
    pub fn into_fact(self, now: DateTime<Utc>) -> Option<Fact> {
        let origin = Origin::Proxy;
        Some(match self {
            Self::Forwarded {
                provider,
                at,
                in_flight,
                ..
            } => Fact::InFlight {
                provider,
                n: in_flight,
                at,
                origin,
            },
            Self::Attempt {
                mut outcome,
                in_flight,
            } => {
                outcome.origin = origin;
                Fact::Attempt {
                    at: now,
                    outcome,
                    in_flight: Some(in_flight),
                }
            }
            Self::Usage {
                provider,
                reading,
                at,
            } => Fact::Usage {
                provider,
                reading,
                at,
                origin,
            },
            Self::Finding(Finding {
                provider,
                kind,
                at,
                detail,
            }) => Fact::Finding {
                provider,
                kind,
                detail,
                at,
            },
            Self::Guarded {
                provider,
                target_url,
                reason,
                ..
            } => Fact::Skipped {
                provider,
                reason,
                at: now,
                probe_id: None,
                target_url: Some(target_url),
                origin,
            },
            Self::Paused { provider, reason } => Fact::Paused {
                provider,
                reason,
                at: now,
                origin,
            },
            Self::Resumed { provider } => Fact::Resumed {
                provider,
                reason: None,
                at: now,
                origin,
            },
            Self::JobPending { .. } | Self::Hold { .. } => return None,
        })
    }
}
