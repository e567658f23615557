//! The listener: accepts connections and serves HTTP/1.1 and HTTP/2 on
//! them, with the protections a public server needs that axum's own
//! `serve` does not offer:
//! - a **header timeout**: the head of every request must arrive within
//!   `HTTP_HEADER_TIMEOUT_MS` of the server starting to wait for it (a
//!   client sending one header line every few seconds is cut off);
//! - a **keep-alive timeout**: a connection with no request in flight and no
//!   traffic for `HTTP_KEEP_ALIVE_TIMEOUT_MS` is closed;
//! - a **connection cap**: at most `HTTP_MAX_CONNECTIONS` are open at once
//!   (fewer if the process's file-descriptor limit is lower), instead of
//!   the process running out of descriptors; a client arriving at the cap
//!   takes the place of the connection idle the longest (`activity`), and
//!   waits in the kernel's accept queue only while every connection is
//!   serving a request;
//! - **draining** on shutdown: no new connections, idle ones closed at once,
//!   requests in flight finish for at most `DRAIN_TIMEOUT_MS`;
//! - a **deep accept queue** (`listen`): a burst of connections waits in the
//!   kernel rather than having its handshakes dropped.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower::ServiceExt;

use super::activity::{Occupants, Tracked};
use crate::app::AppState;
use crate::metrics::Metrics;

/// File descriptors kept back from the connection cap for the database
/// pool, the listener, logs and the like.
const DESCRIPTORS_KEPT_BACK: u64 = 64;

#[derive(Clone, Copy, Debug)]
struct Limits {
    header_timeout: Duration,
    keep_alive_timeout: Duration,
    max_connections: usize,
    drain_timeout: Duration,
}

impl Limits {
    fn of(state: &AppState) -> Self {
        let config = &state.config;
        let configured = config.http_max_connections;
        let max_connections = match descriptor_limit() {
            Some(limit) => {
                let room = limit
                    .saturating_sub(DESCRIPTORS_KEPT_BACK)
                    .saturating_sub(config.db_pool_size as u64)
                    .max(1);
                let room = usize::try_from(room).unwrap_or(usize::MAX);
                if room < configured {
                    tracing::warn!(
                        configured,
                        allowed = room,
                        descriptor_limit = limit,
                        "HTTP_MAX_CONNECTIONS is above what the open-file limit allows: using the lower figure"
                    );
                }
                configured.min(room)
            }
            None => configured,
        };
        Self {
            header_timeout: Duration::from_millis(config.http_header_timeout_ms),
            keep_alive_timeout: Duration::from_millis(config.http_keep_alive_timeout_ms),
            max_connections,
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
        }
    }
}

#[cfg(unix)]
fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<u64> {
    None
}

/// Connections the kernel completes and queues for `serve` to accept (the
/// kernel caps it at `net.core.somaxconn`). `TcpListener::bind` asks for
/// 128: a burst of a few hundred connections (clients reconnecting after a
/// restart, a load balancer's pool) overflowed that before the accept loop
/// caught up, and every handshake dropped cost its client a SYN
/// retransmission, 1 s and then 3 s (measured: 1,000 connections opened at
/// once took 6–7 s to connect, 40 handshakes dropped).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a `LISTEN_BACKLOG` accept queue, bound as
/// `TcpListener::bind` binds (`SO_REUSEADDR`, so that a restarted server
/// can bind while the last one's connections linger in `TIME_WAIT`).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `state`'s routes on `listener` until `shutdown` completes, then
/// drains (see the module's notes) and closes the database pool.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Limits::of(&state);
    let metrics = state.metrics.clone();
    let pool = state.pool.clone();
    let router = super::router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let (cut, cut_off) = watch::channel(false);
    // Every connection task holds a sender; when all are gone, all are closed.
    let (open, mut all_closed) = mpsc::channel::<()>(1);

    let occupants = Arc::new(Occupants::default());

    tokio::pin!(shutdown);
    loop {
        // Below the cap a slot is taken before accepting; at the cap the
        // next client is accepted first (one connection over the cap, at
        // most), so that idle connections are asked to leave only when
        // someone is waiting for their place.
        let free_slot = slots.clone().try_acquire_owned().ok();
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match free_slot {
            Some(slot) => slot,
            None => tokio::select! {
                slot = make_room(&slots, &occupants) => slot,
                () = &mut shutdown => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            limits,
            metrics: metrics.clone(),
            occupants: occupants.clone(),
            stopping: stopping.clone(),
            cut_off: cut_off.clone(),
            scope: Arc::new(ConnectionScope {
                stopping: stopping.clone(),
                _slot: slot,
                _open: open.clone(),
            }),
        };
        tokio::spawn(connection.serve(stream, peer));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    if tokio::time::timeout(limits.drain_timeout, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_timeout_ms = limits.drain_timeout.as_millis() as u64,
            "requests still running at the drain deadline were cut off"
        );
        let _ = cut.send(true);
    }
    pool.close();
    Ok(())
}

/// How long the accept loop waits for the connection it asked to leave
/// before asking another (the first may have received a request meanwhile,
/// or every connection may be serving one).
const MAKE_ROOM_RETRY: Duration = Duration::from_millis(20);

/// A slot under the cap, once the connection idle the longest has closed
/// or any connection has ended.
async fn make_room(slots: &Arc<Semaphore>, occupants: &Occupants) -> OwnedSemaphorePermit {
    loop {
        // A connection may have closed on its own while the client was accepted.
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return slot;
        }
        occupants.ask_the_longest_idle_to_leave();
        if let Ok(slot) = tokio::time::timeout(MAKE_ROOM_RETRY, slots.clone().acquire_owned()).await
        {
            return slot.expect("the semaphore is never closed");
        }
    }
}

/// What a connection holds while it is open: its place under the
/// connection cap and in the drain. A connection upgraded to a WebSocket
/// leaves hyper, so the socket's task keeps this until it closes.
pub struct ConnectionScope {
    /// Set when the server starts draining.
    pub stopping: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    _open: mpsc::Sender<()>,
}

struct Connection {
    scope: Arc<ConnectionScope>,
    router: axum::Router,
    limits: Limits,
    metrics: Metrics,
    occupants: Arc<Occupants>,
    stopping: watch::Receiver<bool>,
    /// Set when the drain deadline has passed: close whatever is left.
    cut_off: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, peer: SocketAddr) {
        self.metrics.connection_opened();
        let seat = self.occupants.seat();
        let activity = seat.activity.clone();
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let router = self.router.clone();
        let in_flight = activity.clone();
        let scope = self.scope.clone();
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(scope.clone());
            let request_guard = in_flight.begin_request();
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await;
                drop(request_guard);
                response
            }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let connection =
            builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
        tokio::pin!(connection);

        let mut reason = "client";
        let mut closing = false;
        loop {
            let idle_check = activity.idle_deadline(self.limits.keep_alive_timeout);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        reason = if is_header_timeout(&*error) { "header_timeout" } else { "error" };
                        tracing::debug!(%error, reason, "connection ended");
                    }
                    break;
                }
                _ = self.cut_off.changed() => {
                    reason = "shutdown";
                    break;
                }
                changed = self.stopping.changed(), if !closing => {
                    if changed.is_err() || *self.stopping.borrow() {
                        reason = "shutdown";
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = activity.asked_to_leave(), if !closing => {
                    if activity.agrees_to_leave() {
                        reason = "evicted";
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(idle_check.into()), if !closing => {
                    if activity.is_idle_for(self.limits.keep_alive_timeout) {
                        reason = "idle";
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        self.metrics.connection_closed(reason);
    }
}

fn is_header_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_timeout()
        {
            return true;
        }
        cause = error.source();
    }
    false
}
