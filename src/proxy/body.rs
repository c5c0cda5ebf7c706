//! The proxy's bodies: the response streamed to the client with a bounded copy kept for
//! classification ([`TeeBody`]), the request streamed upstream through a size limit and a stall
//! timeout ([`request_stream`]), and a socket that gives up on a client that stops reading
//! ([`WriteStallGuard`]).

use std::future::Future as _;
use std::io::Read as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How a forwarded response body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Every byte reached the client.
    Complete,
    /// The provider's connection failed mid-body (the client's body breaks off the same way).
    UpstreamFailed(String),
    /// The client went away (or stopped reading) before the body ended.
    ClientGone,
    /// The body went past the proxy's response limit and was cut there.
    TooLarge { limit_bytes: u64 },
}

/// What the tee saw of one response body.
#[derive(Debug)]
pub struct Teed {
    /// The first `cap` bytes at most.
    pub copy: Vec<u8>,
    /// The body was longer than the cap: `copy` is only its start.
    pub over_cap: bool,
    /// Bytes passed to the client.
    pub bytes: u64,
    pub end: BodyEnd,
}

type Completion = Box<dyn FnOnce(Teed) + Send>;

/// A response body passed through frame by frame, unchanged, while the first `cap` bytes are copied
/// aside. When it ends (or is dropped unfinished) the copy goes to the completion, once.
pub struct TeeBody {
    inner: reqwest::Body,
    copy: Vec<u8>,
    cap: usize,
    over_cap: bool,
    bytes: u64,
    limit: u64,
    /// The length the provider declared, when it did: hyper stops polling once that much is
    /// written, so reaching it is the end even if no end-of-stream is ever polled.
    declared: Option<u64>,
    completion: Option<Completion>,
}

impl TeeBody {
    pub fn new(inner: reqwest::Body, cap: usize, limit: u64, completion: Completion) -> Self {
        Self {
            declared: inner.size_hint().exact(),
            inner,
            copy: Vec::new(),
            cap,
            over_cap: false,
            bytes: 0,
            limit,
            completion: Some(completion),
        }
    }

    fn complete(&mut self, end: BodyEnd) {
        if let Some(completion) = self.completion.take() {
            completion(Teed {
                copy: std::mem::take(&mut self.copy),
                over_cap: self.over_cap,
                bytes: self.bytes,
                end,
            });
        }
    }
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.completion.is_none() {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    if this.bytes > this.limit {
                        let limit_bytes = this.limit;
                        this.complete(BodyEnd::TooLarge { limit_bytes });
                        return Poll::Ready(Some(Err(format!(
                            "response body over the proxy's {limit_bytes}-byte limit"
                        )
                        .into())));
                    }
                    if !this.over_cap {
                        let room = this.cap - this.copy.len();
                        if data.len() > room {
                            this.over_cap = true;
                        } else {
                            this.copy.extend_from_slice(data);
                        }
                    }
                }
                if this.inner.is_end_stream() || this.declared == Some(this.bytes) {
                    this.complete(BodyEnd::Complete);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                let detail = crate::probe::http::transport_of(error);
                this.complete(BodyEnd::UpstreamFailed(format!("{detail:?}")));
                Poll::Ready(Some(
                    Err("the provider's connection failed mid-body".into()),
                ))
            }
            None => {
                this.complete(BodyEnd::Complete);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.completion.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TeeBody {
    fn drop(&mut self) {
        let end = if self.declared == Some(self.bytes) {
            BodyEnd::Complete
        } else {
            BodyEnd::ClientGone
        };
        self.complete(end);
    }
}

/// The body as the provider encoded it (`Content-Encoding`), decoded for classification only, up
/// to `cap` bytes (the client still gets the encoded bytes). `None`: an encoding omniscope does not
/// read, or a copy that does not decode.
#[must_use]
pub fn decoded(encoding: Option<&str>, copy: &[u8], cap: usize) -> Option<(Vec<u8>, bool)> {
    let encoding = encoding.map(|text| text.trim().to_ascii_lowercase());
    let reader: Box<dyn std::io::Read + '_> = match encoding.as_deref() {
        None | Some("" | "identity") => return Some((copy.to_vec(), false)),
        Some("gzip" | "x-gzip") => Box::new(flate2::read::GzDecoder::new(copy)),
        Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(copy)),
        Some(_) => return None,
    };
    let mut out = Vec::new();
    // One byte past the cap tells "exactly the cap" from "more".
    let read = reader.take(cap as u64 + 1).read_to_end(&mut out);
    match read {
        Ok(_) if out.len() > cap => {
            out.truncate(cap);
            Some((out, true))
        }
        Ok(_) => Some((out, false)),
        Err(_) => None,
    }
}

/// Why the request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the client's request body is larger than the proxy's {0}-byte limit")]
    TooLarge(u64),
    #[error("the client sent no request body data for {0:?}")]
    Stalled(Duration),
    #[error("the client's request body broke off: {0}")]
    Broken(String),
}

/// The first bytes of the request body, read before forwarding (scrape requests are small JSON:
/// this is usually all of it), and whether the body ended within them.
///
/// # Errors
/// The body stalled, broke off or went past `limit`.
pub async fn read_start(
    body: &mut Incoming,
    want: usize,
    limit: u64,
    stall: Duration,
) -> Result<(Vec<u8>, bool), RequestBodyError> {
    let mut start = Vec::new();
    while start.len() < want {
        let frame = tokio::time::timeout(stall, body.frame())
            .await
            .map_err(|_| RequestBodyError::Stalled(stall))?;
        match frame {
            None => return Ok((start, true)),
            Some(Err(error)) => return Err(RequestBodyError::Broken(error.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    start.extend_from_slice(&data);
                    if start.len() as u64 > limit {
                        return Err(RequestBodyError::TooLarge(limit));
                    }
                }
            }
        }
    }
    Ok((start, body.is_end_stream()))
}

/// The rest of the request body after `start`, as a stream for reqwest: each frame within `stall`,
/// the whole within `limit` (the upstream request fails otherwise, and the provider sees a broken
/// body rather than a truncated one it might accept).
pub fn request_stream(
    start: Vec<u8>,
    rest: Incoming,
    limit: u64,
    stall: Duration,
) -> impl Stream<Item = Result<Bytes, RequestBodyError>> + Send + 'static {
    struct State {
        start: Option<Bytes>,
        rest: Incoming,
        sent: u64,
        failed: bool,
    }
    let state = State {
        sent: start.len() as u64,
        start: Some(Bytes::from(start)),
        rest,
        failed: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        if state.failed {
            return None;
        }
        if let Some(start) = state.start.take() {
            return Some((Ok(start), state));
        }
        let next = loop {
            match tokio::time::timeout(stall, state.rest.frame()).await {
                Err(_) => break Err(RequestBodyError::Stalled(stall)),
                Ok(None) => return None,
                Ok(Some(Err(error))) => break Err(RequestBodyError::Broken(error.to_string())),
                Ok(Some(Ok(frame))) => {
                    // Trailers are not forwarded (reqwest sends none); only data counts.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    state.sent += data.len() as u64;
                    if state.sent > limit {
                        break Err(RequestBodyError::TooLarge(limit));
                    }
                    break Ok(data);
                }
            }
        };
        state.failed = next.is_err();
        Some((next, state))
    })
}

/// A client socket that fails a write the client has not taken for `stall` (a client that
/// stopped reading a response would otherwise hold its connection, and a place, forever). Reads
/// are not timed here: waiting for the next request is hyper's header timeout.
pub struct WriteStallGuard<T> {
    inner: T,
    stall: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallGuard<T> {
    pub fn new(inner: T, stall: Duration) -> Self {
        Self {
            inner,
            stall,
            timer: None,
        }
    }

    /// After the inner write returned `ready`, or pending: arm, check or disarm the stall timer.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.timer = None;
            return poll;
        }
        let stall = self.stall;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn gzip_copies_are_decoded_for_classification_within_the_cap() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(br#"{"error":"INSUFFICIENT_CREDITS"}"#)
            .unwrap();
        let gz = encoder.finish().unwrap();
        let (plain, over) = decoded(Some("gzip"), &gz, 1024).unwrap();
        assert_eq!(plain, br#"{"error":"INSUFFICIENT_CREDITS"}"#);
        assert!(!over);
        let (cut, over) = decoded(Some("GZIP"), &gz, 5).unwrap();
        assert_eq!(cut, b"{\"err");
        assert!(over);
        assert_eq!(decoded(None, b"abc", 10), Some((b"abc".to_vec(), false)));
        assert_eq!(decoded(Some("br"), b"abc", 10), None);
        assert_eq!(decoded(Some("gzip"), b"not gzip", 10), None);
    }
}
