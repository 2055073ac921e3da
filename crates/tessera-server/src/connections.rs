//! Connection admission: a bound on open connections that keeps the server answering
//! when clients open connections and never finish a request.
//!
//! Every accepted connection takes a slot. When all slots are taken, a new
//! connection evicts one that is not running a request: first the oldest that has
//! never had a request handled (a half-sent request, one stuck in its handshake),
//! else the oldest idle one (keep-alive, HTTP/2 without a request in a handler).
//! A connection whose request is in a handler is never evicted (its answer, say a
//! rotated refresh token, must not be lost); only when every slot runs a request is
//! the newcomer closed at once. So a flood of half-sent or idle connections cannot
//! exhaust file descriptors or pin the slots, and a health check or a real client
//! that connects during the flood is still answered. A connection must have its
//! first request handled within the header deadline; hyper's header read timeout
//! and the body deadline (`middleware::guard_input`) bound the rest.

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
    state: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    next: u64,
    /// By admission order (the key), so the first unanswered one is the oldest.
    open: BTreeMap<u64, Arc<Slot>>,
}

#[derive(Default)]
pub(crate) struct Slot {
    /// Requests of this connection in a handler now.
    busy: AtomicUsize,
    /// A request of this connection has reached a handler.
    handled: AtomicBool,
    evicted: AtomicBool,
    waker: AtomicWaker,
}

/// The connection a request came on, in every request's extensions: handlers run
/// under [`ConnectionSlot::busy`], which keeps the connection from eviction.
#[derive(Clone)]
pub struct ConnectionSlot(Arc<Slot>);

impl ConnectionSlot {
    /// Marks a request of this connection as in a handler until the guard drops.
    pub fn busy(&self) -> Busy {
        self.0.handled.store(true, Ordering::Relaxed);
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.0.clone())
    }
}

/// While it lives, its connection runs a request.
pub struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            max: max.max(1),
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
    /// whose request is in a handler.
    fn admit(self: &Arc<ConnectionLimit>) -> Option<Admission> {
        let mut slots = self.lock();
        if slots.open.len() >= self.max {
            let idle = |slot: &Arc<Slot>| slot.busy.load(Ordering::Relaxed) == 0;
            let victim = slots
                .open
                .iter()
                .find(|(_, slot)| idle(slot) && !slot.handled.load(Ordering::Relaxed))
                .or_else(|| slots.open.iter().find(|(_, slot)| idle(slot)))
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

/// Wraps another acceptor (plain or TLS) with admission and a handshake deadline.
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
    type Service = axum::middleware::AddExtension<A::Service, ConnectionSlot>;
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
            let slot = ConnectionSlot(admission.slot.clone());
            Ok((
                Tracked {
                    inner: stream,
                    admission,
                    first_request: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
                },
                tower::Layer::layer(&axum::Extension(slot), service),
            ))
        })
    }
}

/// A connection's stream: fails every read and write once its slot was evicted,
/// and reads once no request reached a handler within the first-request deadline.
pub struct Tracked<S> {
    inner: S,
    admission: Admission,
    first_request: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Tracked<S> {
    fn evicted(&self, cx: &mut Context<'_>) -> bool {
        let slot = &self.admission.slot;
        slot.waker.register(cx.waker());
        slot.evicted.load(Ordering::Relaxed)
    }

    /// Whether the connection sat past its deadline without a request handled.
    fn first_request_late(&mut self, cx: &mut Context<'_>) -> bool {
        if self.admission.slot.handled.load(Ordering::Relaxed) {
            self.first_request = None;
            return false;
        }
        self.first_request
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
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
        if self.first_request_late(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request arrived in time",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
    fn a_full_table_evicts_a_connection_not_running_a_request() {
        let limit = ConnectionLimit::new(3);
        let idle = limit.admit().unwrap();
        let running = limit.admit().unwrap();
        let half_sent = limit.admit().unwrap();
        // `idle` had a request handled and is between requests; `running` is in one.
        drop(ConnectionSlot(idle.slot.clone()).busy());
        let busy = ConnectionSlot(running.slot.clone()).busy();
        // The never-handled connection goes first, though it is the newest.
        let fourth = limit.admit().unwrap();
        assert!(half_sent.slot.evicted.load(Ordering::Relaxed));
        assert!(!idle.slot.evicted.load(Ordering::Relaxed));
        // Then the idle one; never the one in a handler.
        let fifth = limit.admit().unwrap();
        assert!(fourth.slot.evicted.load(Ordering::Relaxed) || idle.slot.evicted.load(Ordering::Relaxed));
        assert!(!running.slot.evicted.load(Ordering::Relaxed));
        assert_eq!(limit.open(), 3);
        // Every slot running a request: the newcomer is refused.
        let _b = ConnectionSlot(fifth.slot.clone()).busy();
        let open: Vec<_> = [&idle, &fourth]
            .into_iter()
            .filter(|a| !a.slot.evicted.load(Ordering::Relaxed))
            .map(|a| ConnectionSlot(a.slot.clone()).busy())
            .collect();
        assert!(limit.admit().is_none());
        drop(open);
        drop(busy);
        assert!(limit.admit().is_some());
    }

    #[test]
    fn the_budget_stays_under_the_open_files_limit() {
        if let Some(files) = open_files_limit() {
            assert!(connection_budget(usize::MAX, 16) < files);
        }
        assert_eq!(connection_budget(10, 16), 10);
    }
}
