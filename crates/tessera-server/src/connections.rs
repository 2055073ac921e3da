//! Connection admission: a bound on open connections that keeps the server answering
//! when clients open connections and never finish a request.
//!
//! Every accepted connection takes a slot. When all slots are taken, a new
//! connection evicts the oldest one with no request in flight (a half-sent request
//! head, a connection that sent nothing or is stuck in its TLS handshake, an idle
//! keep-alive or HTTP/2 connection); if every connection has a request in flight,
//! the oldest one busy past its protection (60 s: a client that never takes its
//! answer, a request stuck in a queue) is closed, else the new one is closed at
//! once. A request is in flight from its complete body (read first by
//! `middleware::guard_input`) until hyper is done with its response body (on
//! HTTP/1 when it is buffered for the socket, on HTTP/2 when it is sent), so a
//! slow or stalled upload does not pin a slot, nor does a stalled download for
//! longer than the protection. So a flood of half-sent
//! requests or of idle connections cannot exhaust file descriptors, and a health check or a real client
//! that connects during the flood is still answered. The first byte of a request
//! must arrive within the header timeout, then hyper's header read timeout and the
//! body deadline (`middleware::guard_input`) bound how long a request may take to
//! arrive.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared by the acceptor and every connection it admitted.
pub struct ConnectionLimit {
    max: usize,
    /// How long a request in flight protects its connection from eviction.
    protection: Duration,

    state: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    next: u64,
    /// By admission order (the key), so the first unanswered one is the oldest.
    open: BTreeMap<u64, Arc<Slot>>,
}

#[derive(Default)]
struct Slot {
    /// Requests whose head arrived and whose response body is not yet sent.
    in_flight: AtomicUsize,
    /// When the count last rose from zero ([`now_millis`]).
    busy_since: std::sync::atomic::AtomicU64,
    evicted: AtomicBool,
    waker: AtomicWaker,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Arc<ConnectionLimit> {
        ConnectionLimit::with_protection(max, Duration::from_secs(60))
    }

    /// A bound where a request in flight protects its connection for at most
    /// `protection`: past it (a client that never takes its answer, a request
    /// stuck in a queue) the connection may be closed for a newcomer like an idle one.
    pub fn with_protection(max: usize, protection: Duration) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            max: max.max(1),
            protection,
            state: Mutex::new(Slots::default()),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a new connection, or `None` when every slot holds a connection
    /// with a request in flight.
    fn admit(self: &Arc<ConnectionLimit>) -> Option<Admission> {
        let mut slots = self.lock();
        if slots.open.len() >= self.max {
            let victim = slots
                .open
                .iter()
                .find(|(_, slot)| slot.in_flight.load(Ordering::Relaxed) == 0)
                .or_else(|| {
                    // No idle connection: the one busy longest, if past its protection.
                    let now = now_millis();
                    let protection = self.protection.as_millis() as u64;
                    slots
                        .open
                        .iter()
                        .map(|(id, slot)| (id, slot.busy_since.load(Ordering::Relaxed)))
                        .filter(|(_, since)| now.saturating_sub(*since) > protection)
                        .min_by_key(|(_, since)| *since)
                        .map(|(id, _)| (id, &slots.open[id]))
                })
                .map(|(id, _)| *id)?;
            if let Some(slot) = slots.open.remove(&victim) {
                slot.evicted.store(true, Ordering::Relaxed);
                slot.waker.wake();
                metrics::counter!("tessera_http_connections_evicted_total").increment(1);
            }
        }
        let id = slots.next;
        slots.next += 1;
        let slot = Arc::new(Slot::default());
        slots.open.insert(id, slot.clone());
        Some(Admission {
            limit: self.clone(),
            id,
            slot,
        })
    }
}

/// A connection's slot, given back when the connection ends.
struct Admission {
    limit: Arc<ConnectionLimit>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.limit.lock().open.remove(&self.id);
    }
}

/// Wraps another acceptor (plain or TLS) with admission, a handshake deadline and,
/// after the handshake, the same deadline for the first byte of a request.
#[derive(Clone)]
pub struct LimitedAcceptor<A> {
    inner: A,
    limit: Arc<ConnectionLimit>,
    handshake_timeout: Duration,
}

impl<A> LimitedAcceptor<A> {
    pub fn new(
        inner: A,
        limit: Arc<ConnectionLimit>,
        handshake_timeout: Duration,
    ) -> LimitedAcceptor<A> {
        LimitedAcceptor {
            inner,
            limit,
            handshake_timeout,
        }
    }
}

impl<A, I, S> axum_server::accept::Accept<I, S> for LimitedAcceptor<A>
where
    A: axum_server::accept::Accept<I, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    A::Stream: Send,
    A::Service: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Tracked<A::Stream>;
    type Service = Counted<A::Service>;
    type Future = Pin<
        Box<dyn std::future::Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>,
    >;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let admission = self.limit.admit();
        let inner = self.inner.clone();
        let handshake_timeout = self.handshake_timeout;
        Box::pin(async move {
            let Some(admission) = admission else {
                metrics::counter!("tessera_http_connections_refused_total").increment(1);
                return Err(io::Error::other("too many open connections"));
            };
            let slot = admission.slot.clone();
            let handshake = inner.accept(stream, service);
            let evicted = std::future::poll_fn(|cx| {
                slot.waker.register(cx.waker());
                if slot.evicted.load(Ordering::Relaxed) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let (stream, service) = tokio::select! {
                result = tokio::time::timeout(handshake_timeout, handshake) => result
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??,
                () = evicted => return Err(io::Error::other("evicted")),
            };
            Ok((
                Tracked {
                    inner: stream,
                    first_byte: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
                    admission,
                },
                Counted {
                    inner: service,
                    slot,
                },
            ))
        })
    }
}

/// A connection's stream: fails every read and write once the slot was evicted,
/// and reads when no byte arrived before the deadline (a connection that sends
/// nothing never reaches hyper's header timeout).
pub struct Tracked<S> {
    inner: S,
    /// Until the first byte is read.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    admission: Admission,
}

impl<S> Tracked<S> {
    fn evicted(&self, cx: &mut Context<'_>) -> bool {
        let slot = &self.admission.slot;
        slot.waker.register(cx.waker());
        slot.evicted.load(Ordering::Relaxed)
    }
}

fn evicted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to admit another connection",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Some(deadline) = &mut this.first_byte {
            match read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => this.first_byte = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request arrived in time",
                    )));
                }
                _ => {}
            }
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: puts the connection's [`ConnectionSlot`] into each of
/// its requests, so the request counts as in flight once it has fully arrived
/// (`middleware::guard_input` reads the body first): a request whose body is
/// still trickling in stays evictable, one in a handler does not.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    slot: Arc<Slot>,
}

/// The connection a request came on (in the request's extensions).
#[derive(Clone)]
pub struct ConnectionSlot(Arc<Slot>);

impl ConnectionSlot {
    /// Counts a request in flight on its connection until the returned response
    /// body is sent or dropped.
    pub fn in_flight(&self, response: axum::response::Response) -> axum::response::Response {
        let in_flight = InFlight::new(self.0.clone());
        response.map(|body| {
            axum::body::Body::new(CountedBody {
                inner: body,
                _in_flight: in_flight,
            })
        })
    }

    /// Counts a request in flight while the returned guard lives (the handler runs).
    pub fn handling(&self) -> impl Drop + Send + use<> {
        InFlight::new(self.0.clone())
    }
}

/// One request in flight on a slot, for as long as it lives.
struct InFlight(Arc<Slot>);

impl InFlight {
    fn new(slot: Arc<Slot>) -> InFlight {
        if slot.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            slot.busy_since.store(now_millis(), Ordering::Relaxed);
        }
        InFlight(slot)
    }
}

/// Milliseconds on a monotonic clock that starts with the process.
fn now_millis() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request
            .extensions_mut()
            .insert(ConnectionSlot(self.slot.clone()));
        self.inner.call(request)
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
struct CountedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for CountedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The soft limit on open files of this process, where the system tells it.
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many connections to admit: the configured bound, lowered so that the
/// connections, the database pool and the files the server opens stay under the
/// process's open-files limit.
pub fn connection_budget(configured: usize, database_connections: u32) -> usize {
    let reserve = 64 + database_connections as usize;
    match open_files_limit() {
        Some(files) => configured.min(files.saturating_sub(reserve).max(16)),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_connection_with_no_request_in_flight() {
        let limit = ConnectionLimit::new(2);
        let first = limit.admit().unwrap();
        let second = limit.admit().unwrap();
        let first_busy = InFlight::new(first.slot.clone());
        let third = limit.admit().unwrap();
        assert!(!first.slot.evicted.load(Ordering::Relaxed));
        assert!(second.slot.evicted.load(Ordering::Relaxed));
        assert_eq!(limit.open(), 2);
        // Every open connection has a request in flight: the newcomer is refused.
        let third_busy = InFlight::new(third.slot.clone());
        assert!(limit.admit().is_none());
        // A connection whose request is done is idle again, so evictable.
        drop(third_busy);
        let fourth = limit.admit().unwrap();
        assert!(third.slot.evicted.load(Ordering::Relaxed));
        assert!(!first.slot.evicted.load(Ordering::Relaxed));
        // Slots are given back when connections end.
        drop((second, third));
        assert_eq!(limit.open(), 2);
        drop((first_busy, first));
        assert_eq!(limit.open(), 1);
        let fifth = limit.admit().unwrap();
        assert!(!fourth.slot.evicted.load(Ordering::Relaxed));
        assert_eq!(limit.open(), 2);
        drop(fifth);
    }

    #[test]
    fn a_request_busy_past_its_protection_no_longer_pins_its_connection() {
        let limit = ConnectionLimit::with_protection(1, Duration::ZERO);
        let first = limit.admit().unwrap();
        let busy = InFlight::new(first.slot.clone());
        std::thread::sleep(Duration::from_millis(5));
        let second = limit.admit().unwrap();
        assert!(first.slot.evicted.load(Ordering::Relaxed));
        drop((busy, first, second));
        let protected = ConnectionLimit::with_protection(1, Duration::from_secs(3600));
        let held = protected.admit().unwrap();
        let _busy = InFlight::new(held.slot.clone());
        assert!(protected.admit().is_none());
    }

    #[test]
    fn the_budget_stays_under_the_open_files_limit() {
        if let Some(files) = open_files_limit() {
            assert!(connection_budget(usize::MAX, 16) < files);
        }
        assert_eq!(connection_budget(10, 16), 10);
    }
}
