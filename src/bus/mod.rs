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

use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::app::{AppState, WeakAppState};
use crate::config::Secret;
use crate::db::models::event::{self, EventRow, FollowedEvent, LogPosition};
use crate::db::models::event_bus_cursor;
use crate::error::{AppError, AppResult, error_chain};
use crate::metrics::Metrics;

/// Who the platform's consumers see as the publisher (VoIPbin's service name).
pub const PUBLISHER: &str = "customer-manager";
/// The one content type of `data`.
pub const DATA_TYPE: &str = "application/json";
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

/// The body of an event's message, VoIPbin's common event shape:
/// `{"type", "publisher", "data_type", "data"}`.
pub fn message_body(event_type: &str, data: &serde_json::Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Message<'a> {
        r#type: &'a str,
        publisher: &'a str,
        data_type: &'a str,
        data: &'a serde_json::Value,
    }
    serde_json::to_vec(&Message {
        r#type: event_type,
        publisher: PUBLISHER,
        data_type: DATA_TYPE,
        data,
    })
    .expect("a JSON value always serializes")
}

/// Persistent, typed, and identified by the event id so that consumers can
/// drop the duplicates that at-least-once implies.
fn properties(event: &EventRow) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(DATA_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(event.id.to_string().into())
        .with_timestamp(u64::try_from(event.tm_create.timestamp()).unwrap_or(0))
        .with_type(event.type_.as_str().into())
        .with_app_id(PUBLISHER.into())
}

/// `host:port` of an AMQP URL, for logs: never its user or password.
/// `None` when it is not an `amqp://` or `amqps://` URL with a host.
pub fn broker_host(amqp_url: &str) -> Option<String> {
    let url = url::Url::parse(amqp_url).ok()?;
    let default_port = match url.scheme() {
        "amqp" => 5672,
        "amqps" => 5671,
        _ => return None,
    };
    let host = url.host_str().filter(|host| !host.is_empty())?;
    Some(format!("{host}:{}", url.port().unwrap_or(default_port)))
}

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
        db: Mutex::new(Db {
            url: state.config.database_url.clone(),
            conn: None,
        }),
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

/// Logs a trouble at warn once when it starts, at debug while it lasts,
/// and at info when it ends.
struct Outage {
    what: &'static str,
    exchange: String,
    since: Option<Instant>,
}

impl Outage {
    fn new(what: &'static str, exchange: &str) -> Self {
        Self {
            what,
            exchange: exchange.to_owned(),
            since: None,
        }
    }

    fn failed(&mut self, error: &str) {
        let exchange = &self.exchange;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(%exchange, %error, "{}", self.what);
        } else {
            tracing::debug!(%exchange, %error, "{}", self.what);
        }
    }

    fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                exchange = %self.exchange,
                lasted_ms = since.elapsed().as_millis() as u64,
                "{}: over",
                self.what.split(';').next().unwrap_or(self.what)
            );
        }
    }
}

/// A connection to the broker with one confirming channel, on which the
/// exchange is declared.
struct Broker {
    connection: Connection,
    channel: lapin::Channel,
}

impl Broker {
    async fn connect(url: &str, exchange: &str) -> AppResult<Self> {
        let connecting = async {
            let properties = ConnectionProperties::default()
                .with_connection_name(format!("{PUBLISHER} customer-api").into());
            let connection = Connection::connect(url, properties).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .exchange_declare(
                    exchange.into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(Self {
                connection,
                channel,
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(connected) => connected.map_err(AppError::internal),
            Err(_) => Err(AppError::internal("connecting to the broker timed out")),
        }
    }

    fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes `batch` in order and waits until the broker has confirmed
    /// every message of it.
    async fn publish(&self, exchange: &str, batch: &[FollowedEvent]) -> AppResult<()> {
        let publishing = async {
            let mut confirms = Vec::with_capacity(batch.len());
            for followed in batch {
                let event = &followed.event;
                let confirm = self
                    .channel
                    .basic_publish(
                        exchange.into(),
                        event.type_.as_str().into(),
                        BasicPublishOptions::default(),
                        &message_body(&event.type_, &event.data),
                        properties(event),
                    )
                    .await
                    .map_err(AppError::internal)?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                let confirmation = confirm.await.map_err(AppError::internal)?;
                if !confirmation.is_ack() {
                    return Err(AppError::internal(
                        "the broker refused a message (nack); publishing it again",
                    ));
                }
            }
            Ok(())
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, publishing).await {
            Ok(published) => published,
            Err(_) => Err(AppError::internal(
                "the broker did not confirm in time; publishing again",
            )),
        }
    }
}

/// `url` naming this connection in `pg_stat_activity`.
fn with_application_name(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("application_name", APPLICATION_NAME);
            parsed.into()
        }
        Err(_) => url.to_owned(),
    }
}

/// The publisher's own database connection, opened again after any error.
struct Db {
    url: Secret,
    conn: Option<AsyncPgConnection>,
}

impl Db {
    async fn run<T>(
        &mut self,
        query: impl for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<T>>,
    ) -> AppResult<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let url = with_application_name(self.url.expose());
                let opening = AsyncPgConnection::establish(&url);
                let opened = tokio::time::timeout(DB_TIMEOUT, opening)
                    .await
                    .map_err(|_| AppError::internal("connecting to the database timed out"))?
                    .map_err(AppError::internal)?;
                self.conn.insert(opened)
            }
        };
        match tokio::time::timeout(DB_TIMEOUT, query(conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.conn = None;
                Err(error.into())
            }
            Err(_) => {
                // Cut off mid-statement: the connection's state is unknown.
                self.conn = None;
                Err(AppError::internal("a database statement timed out"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_voipbins_event_shape() {
        let data = serde_json::json!({"id": "c1", "name": "acme", "nested": {"a": [1, 2]}});
        let body = message_body("customer_updated", &data);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "type": "customer_updated",
                "publisher": "customer-manager",
                "data_type": "application/json",
                "data": data,
            })
        );
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with(r#"{"type":"customer_updated","publisher":"customer-manager","data_type":"application/json","data":{"#),
            "fields in the documented order: {text}"
        );
    }

    #[test]
    fn logs_name_the_broker_by_host_only() {
        assert_eq!(
            broker_host("amqp://guest:s3cret@rabbit.internal:5673/%2f").as_deref(),
            Some("rabbit.internal:5673")
        );
        assert_eq!(
            broker_host("amqps://user:pw@rabbit.example.com/vhost").as_deref(),
            Some("rabbit.example.com:5671")
        );
        assert_eq!(
            broker_host("amqp://127.0.0.1").as_deref(),
            Some("127.0.0.1:5672")
        );
        assert_eq!(broker_host("http://rabbit:5672"), None);
        assert_eq!(broker_host("not a url"), None);
    }

    #[test]
    fn messages_are_persistent_and_identified_by_the_event() {
        let event = EventRow {
            id: Uuid::new_v4(),
            type_: "agent_created".into(),
            customer_id: None,
            actor_id: None,
            request_id: None,
            tm_create: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            data: serde_json::json!({}),
        };
        let properties = properties(&event);
        assert_eq!(properties.delivery_mode(), &Some(2));
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.as_str()),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(
            properties.kind().as_ref().map(|kind| kind.as_str()),
            Some("agent_created")
        );
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
        assert_eq!(properties.timestamp(), &Some(1_700_000_000));
    }
}
