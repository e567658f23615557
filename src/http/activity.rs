//! What each open connection is doing: when bytes last moved and how many
//! requests it is serving (for the keep-alive timeout), and the register of
//! open connections that the accept loop asks to make room at the cap.
//!
//! At the cap, an idle connection is worth less than a client waiting to
//! connect: without this, 1,100 connections that each sent one request and
//! then nothing kept every new client waiting in the accept queue for the
//! whole keep-alive timeout (measured: 5.0 s). So a client that arrives at
//! the cap takes the place of the connection idle the longest, as nginx
//! reuses its keep-alive connections when it runs out; only connections
//! serving a request are worth waiting for.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// When a connection last moved bytes, and how many requests it is serving.
pub(super) struct Activity {
    started: Instant,
    last_io_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Set when the accept loop has asked this connection to close.
    asked_to_leave: AtomicBool,
    leave: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            asked_to_leave: AtomicBool::new(false),
            leave: Notify::new(),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io_ms.store(now, Ordering::Relaxed);
    }

    fn last_io(&self) -> Instant {
        self.started + Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed))
    }

    pub(super) fn idle_deadline(&self, timeout: Duration) -> Instant {
        self.last_io() + timeout
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    pub(super) fn is_idle_for(&self, timeout: Duration) -> bool {
        self.is_idle() && self.last_io().elapsed() >= timeout
    }

    pub(super) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Completes when the accept loop asks this connection to make room.
    pub(super) async fn asked_to_leave(&self) {
        self.leave.notified().await;
    }

    /// Whether to close after being asked: not while it serves a request
    /// (one may have arrived since it was picked); then it may be picked again.
    pub(super) fn agrees_to_leave(&self) -> bool {
        let idle = self.is_idle();
        if !idle {
            self.asked_to_leave.store(false, Ordering::Relaxed);
        }
        idle
    }
}

/// Counts a request as in flight until its response has been produced.
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The open connections served by hyper (not those upgraded to a
/// WebSocket, which leave it), each with its activity.
#[derive(Default)]
pub(super) struct Occupants {
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

impl Occupants {
    /// Registers a new connection for as long as the returned seat lives.
    pub(super) fn seat(self: &Arc<Self>) -> Seat {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        self.lock().insert(id, activity.clone());
        Seat {
            occupants: self.clone(),
            id,
            activity,
        }
    }

    /// Asks the connection idle the longest (no request in flight, oldest
    /// last byte), if any, to close; none is asked twice.
    pub(super) fn ask_the_longest_idle_to_leave(&self) {
        let open = self.lock();
        let longest_idle = open
            .values()
            .filter(|a| a.is_idle() && !a.asked_to_leave.load(Ordering::Relaxed))
            .min_by_key(|a| a.last_io());
        if let Some(activity) = longest_idle {
            activity.asked_to_leave.store(true, Ordering::Relaxed);
            activity.leave.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's place in `Occupants`, left when dropped.
pub(super) struct Seat {
    occupants: Arc<Occupants>,
    id: u64,
    pub(super) activity: Arc<Activity>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.occupants.lock().remove(&self.id);
    }
}

/// A stream that records when bytes last moved either way.
pub(super) struct Tracked {
    pub(super) inner: TcpStream,
    pub(super) activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
