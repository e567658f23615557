//! The delivery worker: claims due deliveries, sends each in a task of its
//! own, and on shutdown lets go of them cleanly. A server that stops does
//! not leave its claims to run out (a lease of 2 × `WEBHOOK_TIMEOUT_MS` +
//! 5 s): it stops claiming at once, lets the attempts in flight finish and
//! settle within the drain window, and releases whatever is still claimed
//! in one statement, so that another server takes it up at its next poll.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::app::{AppState, Conn, WeakAppState};
use crate::config::Secret;
use crate::db::models::webhook_delivery::{self, ClaimedDelivery, Release};
use crate::error::{AppError, AppResult, error_chain};
use crate::telemetry::traces;

/// Deliveries one server attempts at once.
const CONCURRENT_DELIVERIES: usize = 32;
/// How soon the worker notices that the pool has closed, for servers whose
/// shutdown it is not told of (`serve` called without `Shutdown::begin`).
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Bounds connecting and each statement once the pool is closed, where no
/// pool setting applies: a stopping server must not hang on the database.
const OWN_DB_TIMEOUT: Duration = Duration::from_secs(5);

/// The worker's side of the server's shutdown: `begin` when the drain
/// starts, `finished` before the process exits.
#[derive(Default)]
pub struct Shutdown {
    stopping: watch::Sender<bool>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Shutdown {
    /// The worker stops claiming, and what it sends finishes alongside the
    /// requests being drained rather than after them.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
    }

    /// Waits until the worker has settled or released everything it
    /// claimed (at most `DRAIN_TIMEOUT_MS` after it learnt of the shutdown,
    /// and a statement). At once when no worker runs.
    pub async fn finished(&self) {
        let worker = self.worker.lock().expect("never poisoned").take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
    }
}

/// Starts the delivery worker; it runs until the server shuts down (see
/// `Shutdown`) or its state is gone.
pub fn spawn_worker(state: &AppState) -> AppResult<()> {
    let worker = Worker {
        client: super::client(state)?,
        poll: Duration::from_millis(state.config.webhook_poll_interval_ms.max(10)),
        // Long enough for the attempt and its settling; a server that dies
        // mid-attempt leaves the delivery to others after this.
        lease: Duration::from_millis(state.config.webhook_timeout_ms) * 2 + Duration::from_secs(5),
        drain: Duration::from_millis(state.config.drain_timeout_ms),
        stopping: state.webhooks.stopping.subscribe(),
        connections: std::sync::Arc::new(Connections {
            url: state.config.database_url.clone(),
            own: tokio::sync::Mutex::new(None),
        }),
        state: state.downgrade(),
    };
    let running = tokio::spawn(worker.run());
    *state.webhooks.worker.lock().expect("never poisoned") = Some(running);
    Ok(())
}

struct Worker {
    state: WeakAppState,
    client: reqwest::Client,
    poll: Duration,
    lease: Duration,
    drain: Duration,
    stopping: watch::Receiver<bool>,
    connections: std::sync::Arc<Connections>,
}

/// The attempts under way, and what each one claimed.
#[derive(Default)]
struct Flights {
    /// Each task answers whether its attempt was settled.
    tasks: JoinSet<bool>,
    claims: HashMap<Id, Release>,
}

impl Flights {
    /// Forgets a task that ended, and its claim unless the server is
    /// stopping and the claim is still held (it is released then; otherwise
    /// its lease runs out). `true` if the task settled its delivery.
    fn ended(&mut self, ended: Result<(Id, bool), JoinError>, stopping: bool) -> bool {
        let (id, settled) = match ended {
            Ok(ended) => ended,
            Err(error) => {
                if error.is_panic() {
                    tracing::error!(error = %error, "a webhook attempt panicked");
                }
                (error.id(), false)
            }
        };
        if settled || !stopping {
            self.claims.remove(&id);
        }
        settled
    }
}

impl Worker {
    async fn run(mut self) {
        let mut flights = Flights::default();
        let mut unstarted = Vec::new();
        loop {
            if stop_requested(&self.stopping, &self.state) {
                break;
            }
            let claimed = {
                let Some(state) = self.state.upgrade() else {
                    break;
                };
                match self.claim(&state, &flights).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "could not claim webhook deliveries");
                        Vec::new()
                    }
                }
            };
            let count = claimed.len();
            if stop_requested(&self.stopping, &self.state) {
                // Claimed while the shutdown began: handed back unsent.
                unstarted = claimed;
                break;
            }
            for delivery in claimed {
                self.start(&mut flights, delivery);
            }
            let mut ended = flights.tasks.try_join_next_with_id();
            // Full or idle: wait for room, the next poll, or the shutdown.
            if count == 0 && ended.is_none() {
                let stopping = &mut self.stopping;
                ended = tokio::select! {
                    () = tokio::time::sleep(self.poll) => None,
                    // The customer's next delivery may go now, and there is room.
                    Some(ended) = flights.tasks.join_next_with_id() => Some(ended),
                    () = until_stop_requested(stopping, &self.state) => None,
                };
            }
            while let Some(task) = ended {
                flights.ended(task, stop_requested(&self.stopping, &self.state));
                ended = flights.tasks.try_join_next_with_id();
            }
        }
        self.stop(flights, unstarted).await;
    }

    /// Claims what there is room for; empty when there is none.
    async fn claim(&self, state: &AppState, flights: &Flights) -> AppResult<Vec<ClaimedDelivery>> {
        let room = CONCURRENT_DELIVERIES.saturating_sub(flights.tasks.len());
        if room == 0 {
            return Ok(Vec::new());
        }
        let mut conn = state.conn().await?;
        Ok(webhook_delivery::claim(&mut conn, room as i64, self.lease.as_secs_f64()).await?)
    }

    fn start(&self, flights: &mut Flights, delivery: ClaimedDelivery) {
        // Only ever started while the state lives: it was just upgraded.
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let claim = Release::of(&delivery, true);
        let (client, connections) = (self.client.clone(), self.connections.clone());
        let span = traces::webhook_span(&delivery.event_id, delivery.attempts);
        let task = flights.tasks.spawn(
            async move {
                let allow_private = state.config.webhook_allow_private_targets;
                let outcome = super::attempt(&client, allow_private, &delivery).await;
                match super::settle(&state, &connections, &delivery, outcome).await {
                    Ok(()) => true,
                    Err(error) => {
                        // Released if the server stops, else retried after the lease.
                        tracing::warn!(event_id = %delivery.event_id, error = %error_chain(&error), "could not record a webhook attempt");
                        false
                    }
                }
            }
            .instrument(span),
        );
        flights.claims.insert(task.id(), claim);
    }

    /// Lets the attempts in flight finish for at most `DRAIN_TIMEOUT_MS`,
    /// then hands back everything still claimed.
    async fn stop(self, mut flights: Flights, unstarted: Vec<ClaimedDelivery>) {
        let deadline = Instant::now() + self.drain;
        let (mut finished, mut aborted) = (0usize, false);
        loop {
            tokio::select! {
                ended = flights.tasks.join_next_with_id() => match ended {
                    Some(ended) => finished += usize::from(flights.ended(ended, true)),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline), if !aborted => {
                    // Its attempt may have reached the endpoint: sent again
                    // by another server, at least once as ever.
                    flights.tasks.abort_all();
                    aborted = true;
                }
            }
        }
        if aborted {
            // A settling cut off mid-statement leaves the connection unusable.
            *self.connections.own.lock().await = None;
        }
        let mut claims: Vec<Release> = flights.claims.into_values().collect();
        claims.extend(unstarted.iter().map(|d| Release::of(d, false)));
        let released = if claims.is_empty() {
            Ok(0)
        } else {
            self.release(&claims).await
        };
        match released {
            Ok(released) => tracing::info!(
                finished,
                released,
                "webhook worker stopped: attempts in flight finished, the rest handed back to other servers"
            ),
            Err(error) => tracing::warn!(
                finished,
                unreleased = claims.len(),
                error = %error_chain(&error),
                "webhook worker stopped, but could not hand back its claims: they are taken up when their lease runs out"
            ),
        }
    }

    async fn release(&self, claims: &[Release]) -> AppResult<usize> {
        let releasing = async {
            let mut conn = match self.state.upgrade() {
                Some(state) => self.connections.get(&state).await?,
                None => self.connections.own().await?,
            };
            Ok::<_, AppError>(webhook_delivery::release(&mut conn, claims).await?)
        };
        tokio::time::timeout(OWN_DB_TIMEOUT, releasing)
            .await
            .map_err(|_| AppError::internal("releasing webhook claims timed out"))?
    }
}

fn stop_requested(stopping: &watch::Receiver<bool>, state: &WeakAppState) -> bool {
    *stopping.borrow() || state.upgrade().is_none_or(|state| state.pool.is_closed())
}

/// Returns once a shutdown has begun: told (`Shutdown::begin`), or seen in
/// the pool closing, as the event bus sees it.
async fn until_stop_requested(stopping: &mut watch::Receiver<bool>, state: &WeakAppState) {
    while !stop_requested(stopping, state) {
        tokio::select! {
            changed = stopping.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(STOP_CHECK) => {}
        }
    }
}

/// Where the worker's statements go: the pool while it is open; once the
/// drain has closed it, a connection of the worker's own, so that attempts
/// still in flight can be settled and the rest released.
pub(super) struct Connections {
    url: Secret,
    own: tokio::sync::Mutex<Option<AsyncPgConnection>>,
}

pub(super) enum WorkerConn<'a> {
    Pooled(Box<Conn>),
    Own(tokio::sync::MutexGuard<'a, Option<AsyncPgConnection>>),
}

impl Connections {
    pub(super) async fn get(&self, state: &AppState) -> AppResult<WorkerConn<'_>> {
        if !state.pool.is_closed() {
            match state.conn().await {
                Ok(conn) => return Ok(WorkerConn::Pooled(Box::new(conn))),
                // Closed while waiting: the drain just ended.
                Err(_) if state.pool.is_closed() => {}
                Err(error) => return Err(error),
            }
        }
        self.own().await
    }

    async fn own(&self) -> AppResult<WorkerConn<'_>> {
        let mut own = self.own.lock().await;
        if own.is_none() {
            let opening = AsyncPgConnection::establish(self.url.expose());
            let opened = tokio::time::timeout(OWN_DB_TIMEOUT, opening)
                .await
                .map_err(|_| AppError::internal("connecting to the database timed out"))?
                .map_err(AppError::internal)?;
            *own = Some(opened);
        }
        Ok(WorkerConn::Own(own))
    }
}

impl Deref for WorkerConn<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Own(own) => own.as_ref().expect("opened before it is handed out"),
        }
    }
}

impl DerefMut for WorkerConn<'_> {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Own(own) => own.as_mut().expect("opened before it is handed out"),
        }
    }
}
