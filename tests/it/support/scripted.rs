//! A scripted provider on loopback: each path answers from its queue of replies, then from its
//! answering function (a reply made per request: a hostile provider's), then its default; every
//! request is recorded for the test to inspect.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use omniscope::clock::Clock;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Appended in order: the same name may come twice.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::raw(status, body.to_string())
    }

    /// A body labelled JSON, as given byte for byte (numbers serde_json would refuse to write,
    /// such as 1e308; or no JSON at all).
    pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// One more header (the same name again adds a second one), any bytes.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the server was asked: the request count on this path so far (from 0), and the request.
pub struct Asked<'a> {
    pub n: u64,
    pub headers: &'a HeaderMap,
}

/// An answer made for each request (see [`Server::on`]).
type Answer = Arc<dyn Fn(&Asked<'_>) -> Reply + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub at: tokio::time::Instant,
    /// Wall-clock arrival, for comparing with a provider's reset instant.
    pub wall: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
struct Script {
    queues: HashMap<String, Vec<Reply>>,
    answers: HashMap<String, Answer>,
    defaults: HashMap<String, Reply>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct Server {
    script: Arc<Mutex<Script>>,
    /// Stamps `Seen::wall`; hand it to the engine so both read the same wall-clock time (under
    /// tokio's paused time too).
    clock: Clock,
}

impl Server {
    pub fn new() -> Self {
        Self {
            script: Arc::default(),
            clock: Clock::real(),
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Replies for `path`, in order; after them, the default.
    pub fn queue(&self, path: &str, replies: Vec<Reply>) -> &Self {
        self.script
            .lock()
            .unwrap()
            .queues
            .insert(path.to_owned(), replies);
        self
    }

    pub fn default_reply(&self, path: &str, reply: Reply) -> &Self {
        self.script
            .lock()
            .unwrap()
            .defaults
            .insert(path.to_owned(), reply);
        self
    }

    /// Answer every request to `path` with `answer` (after its queue, if any): a reply that
    /// depends on the request, or on how many came before it.
    pub fn on(
        &self,
        path: &str,
        answer: impl Fn(&Asked<'_>) -> Reply + Send + Sync + 'static,
    ) -> &Self {
        self.script
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), Arc::new(answer));
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Requests to `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.seen_at(path).len()
    }

    /// Serve on 127.0.0.1 (ephemeral port); returns the base URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }
}

async fn handle(
    State(server): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let reply = {
        let mut script = server.script.lock().unwrap();
        let n = script.seen.iter().filter(|seen| seen.path == path).count() as u64;
        let queued = script.queues.get_mut(&path).and_then(|queue| {
            if queue.is_empty() {
                None
            } else {
                Some(queue.remove(0))
            }
        });
        let reply = queued
            .or_else(|| {
                let answer = script.answers.get(&path)?;
                Some(answer(&Asked {
                    n,
                    headers: &headers,
                }))
            })
            .or_else(|| script.defaults.get(&path).cloned());
        script.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            at: tokio::time::Instant::now(),
            wall: server.clock.now(),
        });
        reply
    };
    let Some(reply) = reply else {
        return (StatusCode::NOT_FOUND, "no script for this path").into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().append(
            HeaderName::from_bytes(&name).unwrap(),
            HeaderValue::from_bytes(&value).unwrap(),
        );
    }
    response
}

pub fn omni_ok(target_status: u16) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "success": true,
            "data": {"status_code": target_status, "content": "<html>ok</html>"},
            "billing": {"charged": 0.0035},
            "metadata": {"elapsed_time": 0.1, "request_id": "req_1"}
        }),
    )
}

pub fn omni_fail(status: u16, code: Option<&str>) -> Reply {
    let mut body = serde_json::json!({"success": false, "error": format!("failed with {status}")});
    if let Some(code) = code {
        body["code"] = serde_json::Value::String(code.to_owned());
    }
    Reply::json(status, body)
}

pub fn alter_ok(target_status: u16) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "url": "https://example.com/",
            "status_code": target_status,
            "content": "<html>ok</html>",
            "billing": {"total_credits": 1, "tier_used": "1"}
        }),
    )
}

pub fn alter_fail(status: u16, code: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"error": code, "message": format!("{code} happened"), "request_id": "req_x"}),
    )
}
