//! The event bus: with `AMQP_URL` set, every event of the log is published
//! to a RabbitMQ topic exchange (routing key = event type), at least once,
//! in log order, by one server at a time (`event_bus_cursors`).
//!
//! Against the real RabbitMQ at 127.0.0.1:5672 (guest/guest). Each test has
//! an exchange of its own and reads what is published through a queue of
//! its own bound to it (`Listener`). One test restarts the broker: every
//! test here holds `broker_in_use` (shared) for as long as it talks to it,
//! and that one holds it exclusively, across processes (a file lock), so
//! that no test sees the broker vanish under it.

mod changes;
mod outages;
mod proxy;
mod replicas;

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use customer_api::Config;
use customer_api::config::Secret;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use serde_json::Value;

use crate::harness::{TestApp, eventually, metric, unique};

pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Generous for a loaded machine: publishing takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A new exchange name, for one test.
pub fn exchange_name() -> String {
    unique("customer-api-test.bus")
}

/// Settings that publish to `exchange` on the broker at `url`.
pub fn publishing_to(url: &str, exchange: &str) -> impl FnOnce(&mut Config) + use<> {
    let (url, exchange) = (url.to_owned(), exchange.to_owned());
    move |config: &mut Config| {
        config.amqp_url = Some(Secret::new(url));
        config.amqp_exchange = exchange;
    }
}

/// Held while a test uses the broker: shared by the tests that only
/// publish and read, exclusive for the one that restarts it.
pub struct BrokerInUse(#[allow(dead_code)] std::fs::File);

pub async fn broker_in_use(exclusive: bool) -> BrokerInUse {
    tokio::task::spawn_blocking(move || {
        let path = std::env::temp_dir().join("customer-api-tests-rabbitmq.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .expect("open the broker lock file");
        let operation = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on a descriptor this function owns.
        let locked = unsafe { libc::flock(file.as_raw_fd(), operation) };
        assert_eq!(locked, 0, "flock the broker lock file");
        BrokerInUse(file)
    })
    .await
    .unwrap()
}

pub async fn broker_connection() -> lapin::Connection {
    lapin::Connection::connect(BROKER_URL, lapin::ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ at 127.0.0.1:5672")
}

/// Declares the exchange as the publisher does, so that a queue can be
/// bound to it before the publisher has started.
pub async fn declare_exchange(channel: &lapin::Channel, exchange: &str) {
    channel
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the exchange");
}

pub async fn delete_exchange(exchange: &str) {
    let connection = broker_connection().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete the exchange");
}

/// One message as a consumer receives it.
#[derive(Clone, Debug)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub kind: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    pub timestamp: Option<u64>,
    pub body: Value,
}

impl Received {
    pub fn of(delivery: &lapin::message::Delivery) -> Self {
        let properties = &delivery.properties;
        let text = |value: &Option<lapin::types::ShortString>| {
            value.as_ref().map(|v| v.as_str().to_owned())
        };
        Self {
            routing_key: delivery.routing_key.as_str().to_owned(),
            message_id: text(properties.message_id()),
            kind: text(properties.kind()),
            content_type: text(properties.content_type()),
            delivery_mode: *properties.delivery_mode(),
            timestamp: *properties.timestamp(),
            body: serde_json::from_slice(&delivery.data).expect("a JSON body"),
        }
    }

    pub fn id(&self) -> &str {
        self.message_id.as_deref().expect("every message has an id")
    }
}

/// A consumer of everything published to one exchange, through an
/// exclusive queue of its own (gone with its connection).
pub struct Listener {
    pub exchange: String,
    received: Arc<Mutex<Vec<Received>>>,
    _connection: lapin::Connection,
    consuming: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn bind(exchange: &str) -> Self {
        let connection = broker_connection().await;
        let channel = connection.create_channel().await.unwrap();
        declare_exchange(&channel, exchange).await;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = received.clone();
        let consuming = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                sink.lock().unwrap().push(Received::of(&delivery));
            }
        });
        Self {
            exchange: exchange.to_owned(),
            received,
            _connection: connection,
            consuming,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until every one of `ids` has arrived (at least once).
    pub async fn until_received(&self, ids: &[String]) -> Vec<Received> {
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        eventually(
            &format!("{} events published to {}", ids.len(), self.exchange),
            PATIENCE,
            || async {
                let received = self.received();
                let got: HashSet<&str> = received.iter().map(Received::id).collect();
                wanted.is_subset(&got).then_some(received)
            },
        )
        .await
    }

    pub async fn finish(self) {
        self.consuming.abort();
        delete_exchange(&self.exchange).await;
    }
}

/// A place in the log, as the cursor table stores it.
#[derive(Clone, Debug)]
pub struct Position {
    pub txid: i64,
    pub event_id: String,
}

/// The exchange's cursor, if there is one.
pub async fn cursor(app: &TestApp, exchange: &str) -> Option<Position> {
    app.db
        .client()
        .await
        .query_opt(
            "SELECT txid, event_id::text FROM event_bus_cursors WHERE exchange = $1",
            &[&exchange],
        )
        .await
        .unwrap()
        .map(|row| Position {
            txid: row.get(0),
            event_id: row.get(1),
        })
}

/// Waits until a server publishes to `exchange`: its cursor exists (so
/// every event committed from now on is published) and is leased.
pub async fn until_publishing(app: &TestApp, exchange: &str) -> Position {
    let client = app.db.client().await;
    eventually(
        &format!("a server publishing to {exchange}"),
        PATIENCE,
        || async {
            client
                .query_opt(
                    "SELECT txid, event_id::text FROM event_bus_cursors \
                     WHERE exchange = $1 AND lease_until > now()",
                    &[&exchange],
                )
                .await
                .unwrap()
                .map(|row| Position {
                    txid: row.get(0),
                    event_id: row.get(1),
                })
        },
    )
    .await
}

/// One event of the log.
#[derive(Clone, Debug)]
pub struct Logged {
    pub id: String,
    pub kind: String,
    pub data: Value,
    pub tm_create_seconds: i64,
}

/// The events after `after`, in log order (transaction, then id).
pub async fn logged_after(app: &TestApp, after: &Position) -> Vec<Logged> {
    app.db
        .client()
        .await
        .query(
            "SELECT id::text, type, data::text, floor(extract(epoch FROM tm_create))::bigint FROM events \
             WHERE (txid::text::bigint, id) > ($1, $2::text::uuid) ORDER BY txid, id",
            &[&after.txid, &after.event_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| Logged {
            id: row.get(0),
            kind: row.get(1),
            data: serde_json::from_str(row.get(2)).unwrap(),
            tm_create_seconds: row.get(3),
        })
        .collect()
}

pub fn ids(logged: &[Logged]) -> Vec<String> {
    logged.iter().map(|event| event.id.clone()).collect()
}

/// The ids in the order they first arrived, and how many arrived again.
pub fn first_arrivals(received: &[Received]) -> (Vec<String>, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    for message in received {
        if seen.insert(message.id().to_owned()) {
            order.push(message.id().to_owned());
        }
    }
    (order, received.len() - seen.len())
}

/// Whether a server is publishing to the broker over an open connection.
pub fn connected(app: &TestApp) -> bool {
    metric(app, "customer_api_bus_connected ") == 1.0
}

pub fn published(app: &TestApp) -> f64 {
    metric(app, "customer_api_bus_published_total ")
}

/// A customer, its guest agent renamed… : events of several types, made by
/// a super admin. Returns the customer's id.
pub async fn some_changes(app: &TestApp, admin: &str) -> String {
    let id = app
        .create_customer_ok(admin, &unique("bus"), "a-long-password")
        .await;
    let renamed = app
        .gql(
            Some(admin),
            "mutation($id: UUID!) { updateCustomer(input: {id: $id, name: \"renamed\"}) { customer { id } } }",
            serde_json::json!({ "id": id }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    id
}

#[tokio::test]
async fn without_amqp_url_nothing_connects_and_no_cursor_is_kept() {
    let app = TestApp::spawn().await;
    assert!(app.state.config.amqp_url.is_none(), "off by default");
    let admin = app.admin_token().await;
    some_changes(&app, &admin).await;
    assert_eq!(
        app.count("SELECT count(*) FROM event_bus_cursors", &[])
            .await,
        0
    );
    let listeners = app
        .count(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            &[&customer_api::bus::APPLICATION_NAME],
        )
        .await;
    assert_eq!(listeners, 0, "no database connection for the bus");
    assert_eq!(published(&app), 0.0);
    assert!(!connected(&app));
}
