//! The platform's event bus: when `AMQP_URL` is set, every event of the log
//! is published to a RabbitMQ topic exchange (routing key = event type), at
//! least once, in log order, off the request path.
//!
//! - **From the log.** The publisher follows the event log with
//!   `db::models::event::read_after`, polling it every `POLL` (no NOTIFY:
//!   it would make every write commit one at a time).
//! - **At least once.** Publisher confirms are on; a batch's position is
//!   stored (`event_bus_cursors`) only after the broker has confirmed every
//!   message of it. A publisher that dies, or a broker that goes away or
//!   nacks, leaves the cursor where it was, and what follows it is published
//!   again: consumers de-duplicate by `message_id` (the event id).
//! - **One publisher.** The cursor row is a lease: the replica holding it
//!   renews it while it publishes, and publishes only while its lease is
//!   certainly its own (counted from before the renewal was sent); another
//!   replica takes it over once it runs out, or at once when the holder
//!   stops cleanly. The publisher has a database connection of its own, so
//!   it never takes one from requests.
//!
//! It uses `lapin` (AMQP 0-9-1, the client RabbitMQ's Rust users use) on the
//! server's tokio runtime, without its automatic recovery: reconnecting is
//! done here, from the stored cursor, which is what makes it at least once.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::app::{AppState, WeakAppState};
use crate::config::Secret;
use crate::db::models::event::{self, FollowedEvent, LogPosition};
use crate::db::models::event_bus_cursor;
use crate::error::{AppError, AppResult, error_chain};
use crate::metrics::Metrics;

mod broker;
mod database;
mod message;

use broker::{Broker, Outage};
use database::Db;
pub use message::{DATA_TYPE, PUBLISHER, broker_host, message_body};

/// How the publisher's database connection shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "customer-api event bus";

/// Events read, published and confirmed at a time.
const BATCH: i64 = 500;
/// How often the log is read when the last read found nothing.
const POLL: Duration = Duration::from_millis(250);
/// How long a lease lasts without renewal: the longest publishing pauses
/// when its publisher dies without a word (a clean stop hands over at once).
const LEASE: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// Held back from the end of the lease: the renewal's answer and scheduling
/// delays, so that this replica stops before another one may start.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How often a replica that does not publish checks whether it should.
const TAKE_EVERY: Duration = Duration::from_secs(1);
/// A batch not confirmed by then is published again on a new connection.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DB_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const _: () = assert!(RENEW_EVERY.as_millis() * 2 + LEASE_MARGIN.as_millis() <= LEASE.as_millis());

/// Starts the publisher when `AMQP_URL` is set; it runs for as long as the
/// server's state lives. A URL that is not AMQP fails the start-up.
pub fn spawn(state: &AppState) -> AppResult<()> {
    let Some(amqp_url) = state.config.amqp_url.clone() else {
        return Ok(());
    };
    let (Some(broker), Ok(_)) = (
        broker_host(amqp_url.expose()),
        amqp_url.expose().parse::<lapin::uri::AMQPUri>(),
    ) else {
        // Without the value: it holds a password.
        return Err(AppError::internal(
            "AMQP_URL is not an amqp:// or amqps:// URL with a host",
        ));
    };
    let exchange = state.config.amqp_exchange.clone();
    tracing::info!(%broker, %exchange, "event bus: publishing events to RabbitMQ");
    let publisher = Publisher {
        holder: Uuid::new_v4(),
        exchange,
        amqp_url,
        broker,
        metrics: state.metrics.clone(),
        server: state.downgrade(),
        db: Mutex::new(Db::new(state.config.database_url.clone())),
        leased_until: std::sync::Mutex::new(Instant::now()),
    };
    tokio::spawn(async move { publisher.run().await });
    Ok(())
}

struct Publisher {
    /// This process's publisher, as the cursor row names its holder.
    holder: Uuid,
    exchange: String,
    amqp_url: Secret,
    /// `host:port` only.
    broker: String,
    metrics: Metrics,
    server: WeakAppState,
    /// Notified when events commit.
    db: Mutex<Db>,
    /// Until when this replica may publish: the lease as last renewed, less
    /// the margin, counted from before the renewal was sent.
    leased_until: std::sync::Mutex<Instant>,
}

/// Why leading ended.
enum Led {
    /// The server is gone.
    Stopped,
    /// The lease is no longer certainly this replica's.
    LeaseLost,
}

impl Publisher {
    /// Whether the server still runs: its state lives and it has not shut
    /// down (which closes the pool), so that a stopping server hands over
    /// at once even while something still holds its state.
    fn alive(&self) -> bool {
        self.server
            .upgrade()
            .is_some_and(|state| !state.pool.is_closed())
    }

    fn leased(&self) -> bool {
        Instant::now() < *self.leased_until.lock().expect("never poisoned")
    }

    fn lease_renewed(&self, sent: Instant) {
        *self.leased_until.lock().expect("never poisoned") = sent + LEASE - LEASE_MARGIN;
    }

    fn lease_ended(&self) {
        *self.leased_until.lock().expect("never poisoned") = Instant::now();
    }

    /// Sleeps for `duration`, or less if the server stops meanwhile.
    async fn pause(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while self.alive() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(250))).await;
        }
    }

    async fn run(self) {
        let mut database = Outage::new(
            "event bus: the database is unreachable; retrying",
            &self.exchange,
        );
        while self.alive() {
            let sent = Instant::now();
            let taken = {
                let (exchange, holder) = (self.exchange.clone(), self.holder);
                self.db
                    .lock()
                    .await
                    .run(move |conn| {
                        Box::pin(async move {
                            let start = event::log_tail(conn).await?;
                            event_bus_cursor::take(conn, &exchange, holder, LEASE, start).await
                        })
                    })
                    .await
            };
            match taken {
                Ok(Some(lease)) => {
                    database.ended();
                    self.lease_renewed(sent);
                    if lease.created {
                        tracing::info!(
                            exchange = %self.exchange,
                            txid = lease.position.txid,
                            "event bus: first start on this exchange: publishing from the end of \
                             the event log, not its history"
                        );
                    }
                    tracing::info!(
                        exchange = %self.exchange,
                        holder = %self.holder,
                        "event bus: this server publishes (it holds the lease)"
                    );
                    let led = self.lead(lease.position).await;
                    self.lease_ended();
                    self.metrics.set_bus_connected(false);
                    self.metrics.set_bus_lag_seconds(0.0);
                    if let Led::Stopped = led {
                        break;
                    }
                }
                Ok(None) => database.ended(),
                Err(error) => database.failed(&error_chain(&error)),
            }
            self.pause(TAKE_EVERY).await;
        }
        // A clean stop hands over at once rather than when the lease runs out.
        let (exchange, holder) = (self.exchange.clone(), self.holder);
        let released = self
            .db
            .lock()
            .await
            .run(move |conn| {
                Box::pin(async move { event_bus_cursor::release(conn, &exchange, holder).await })
            })
            .await;
        if let Err(error) = released {
            tracing::debug!(error = %error_chain(&error), "event bus: could not release the lease");
        }
    }

    /// Publishes from `position` while the lease is this replica's.
    async fn lead(&self, position: LogPosition) -> Led {
        tokio::select! {
            () = self.keep_lease() => Led::LeaseLost,
            led = self.publish_from(position) => led,
        }
    }

    /// Renews the lease every `RENEW_EVERY`; returns once it is lost.
    async fn keep_lease(&self) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let sent = Instant::now();
            match self.renew(None).await {
                Ok(true) => self.lease_renewed(sent),
                Ok(false) => {
                    tracing::info!(exchange = %self.exchange, "event bus: another server has taken over publishing");
                    return;
                }
                Err(error) => {
                    tracing::debug!(error = %error_chain(&error), "event bus: could not renew the lease");
                }
            }
            if !self.leased() {
                tracing::warn!(
                    exchange = %self.exchange,
                    "event bus: the lease could not be renewed in time; publishing stops until \
                     it is taken again"
                );
                return;
            }
        }
    }

    /// Extends the lease, and moves the cursor to `position` if given.
    async fn renew(&self, position: Option<LogPosition>) -> AppResult<bool> {
        let (exchange, holder) = (self.exchange.clone(), self.holder);
        self.db
            .lock()
            .await
            .run(move |conn| {
                Box::pin(async move {
                    event_bus_cursor::renew(conn, &exchange, holder, LEASE, position).await
                })
            })
            .await
    }

    async fn read(&self, after: LogPosition, limit: i64) -> AppResult<Vec<FollowedEvent>> {
        self.db
            .lock()
            .await
            .run(move |conn| Box::pin(event::read_after(conn, after, limit)))
            .await
    }

    /// The age of the oldest event not yet confirmed, or 0 when none is
    /// waiting (or it cannot be told).
    fn record_lag(&self, oldest_waiting: Option<&FollowedEvent>) {
        let lag = oldest_waiting.map_or(0.0, |followed| {
            (chrono::Utc::now() - followed.event.tm_create)
                .to_std()
                .map_or(0.0, |age| age.as_secs_f64())
        });
        self.metrics.set_bus_lag_seconds(lag);
    }

    async fn publish_from(&self, mut position: LogPosition) -> Led {
        let mut broker: Option<Broker> = None;
        let mut outage = Outage::new(
            "event bus: cannot publish to the broker; events wait in the log and are published \
             once it is back",
            &self.exchange,
        );
        let mut database = Outage::new(
            "event bus: the database is unreachable; retrying",
            &self.exchange,
        );
        let mut backoff = MIN_BACKOFF;
        loop {
            if !self.alive() {
                return Led::Stopped;
            }
            if !self.leased() {
                return Led::LeaseLost;
            }
            if broker.as_ref().is_some_and(|b| !b.is_connected()) {
                outage.failed("the connection to the broker closed");
                broker = None;
                self.metrics.set_bus_connected(false);
            }
            if broker.is_none() {
                match Broker::connect(self.amqp_url.expose(), &self.exchange).await {
                    Ok(connected) => {
                        broker = Some(connected);
                        self.metrics.set_bus_connected(true);
                        outage.ended();
                        tracing::debug!(broker = %self.broker, "event bus: connected");
                    }
                    Err(error) => {
                        outage.failed(&format!("{} ({})", error_chain(&error), self.broker));
                        self.metrics.set_bus_connected(false);
                        // Cheap enough while waiting: one indexed row.
                        if let Ok(oldest) = self.read(position, 1).await {
                            self.record_lag(oldest.first());
                        }
                        self.pause(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let Some(connected) = broker.as_ref() else {
                continue;
            };
            let batch = match self.read(position, BATCH).await {
                Ok(batch) => {
                    database.ended();
                    batch
                }
                Err(error) => {
                    database.failed(&error_chain(&error));
                    self.pause(POLL).await;
                    continue;
                }
            };
            self.record_lag(batch.first());
            let Some(last) = batch.last().map(FollowedEvent::position) else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            if !self.leased() {
                return Led::LeaseLost;
            }
            if let Err(error) = connected.publish(&self.exchange, &batch).await {
                outage.failed(&error_chain(&error));
                broker = None;
                self.metrics.set_bus_connected(false);
                self.pause(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = MIN_BACKOFF;
            self.metrics.record_bus_published(batch.len() as u64);
            // Confirmed: from here on this replica goes on after `last`
            // whether or not the cursor could be stored (if not, whoever
            // comes next publishes these again).
            position = last;
            let sent = Instant::now();
            match self.renew(Some(position)).await {
                Ok(true) => self.lease_renewed(sent),
                Ok(false) => {
                    tracing::info!(exchange = %self.exchange, "event bus: another server has taken over publishing");
                    return Led::LeaseLost;
                }
                Err(error) => database.failed(&error_chain(&error)),
            }
            if batch.len() < BATCH as usize {
                self.record_lag(None);
            }
        }
    }
}
