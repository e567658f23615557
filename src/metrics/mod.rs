//! Prometheus metrics, served at `/metrics`: HTTP requests by route
//! template, method and status, and their latency; GraphQL operations by
//! operation and outcome, their latency; the build (`build_info`);
//! database pool gauges, failed logins, and the webhook queue (attempts by
//! outcome, its depth and the age of its oldest pending delivery); the read
//! replicas' health, lag and statements.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod fast_path;
mod labels;
mod recording;

use fast_path::FastPathCounters;
pub use fast_path::FastPathOutcome;
pub use labels::*;

/// The build's labels: its version, and the commit when the build was
/// given one (`GIT_COMMIT` at compile time, e.g. by a container build).
fn build_info_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("version", env!("CARGO_PKG_VERSION"))];
    if let Some(commit) = option_env!("GIT_COMMIT").filter(|c| !c.is_empty()) {
        labels.push(("commit", commit));
    }
    labels
}

/// The outcomes a webhook attempt is counted under.
const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retry", "failed"];

/// Cheap to clone (one reference count): every HTTP request takes a copy.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

impl std::ops::Deref for Metrics {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.0
    }
}

pub struct Families {
    registry: Registry,
    http_requests: Family<HttpRequestLabels, Counter>,
    http_request_duration: Family<HttpRouteLabels, Histogram>,
    requests: Family<OperationLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    login_failures: Family<LoginFailureLabels, Counter>,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
    http_connections: Gauge,
    password_hashes: Counter,
    http_connections_closed: Family<ConnectionCloseLabels, Counter>,
    websocket_connections: Gauge,
    webhook_deliveries: Family<WebhookOutcomeLabels, Counter>,
    webhook_queue_depth: Gauge,
    webhook_oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    bus_published: Counter,
    bus_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    bus_connected: Gauge,
    replica_healthy: Family<ReplicaLabels, Gauge>,
    replica_lag_seconds: Family<ReplicaLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    replica_statements: Family<ReplicaLabels, Counter>,
    fast_path: FastPathCounters,
}

impl Metrics {
    pub fn new(statements: &StatementCounter) -> Self {
        let mut registry = Registry::with_prefix("customer_api");
        let requests = Family::<OperationLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to ~16 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 15,
            ))
        });
        let login_failures = Family::<LoginFailureLabels, Counter>::default();
        let (pool_size, pool_available, pool_waiting) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "graphql_operations",
            "GraphQL operations served",
            requests.clone(),
        );
        registry.register(
            "graphql_operation_duration_seconds",
            "Time to serve a GraphQL operation",
            latency.clone(),
        );
        registry.register("login_failures", "Refused logins", login_failures.clone());
        registry.register(
            "db_statements",
            "SQL statements sent to the database",
            statements.as_metric(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Database connections ready for use",
            pool_available.clone(),
        );
        registry.register(
            "db_pool_waiting_requests",
            "Requests waiting for a database connection",
            pool_waiting.clone(),
        );
        let password_hashes = Counter::default();
        registry.register(
            "password_hashes",
            "argon2id hashes and verifications computed",
            password_hashes.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "Open client connections",
            http_connections.clone(),
        );
        let http_connections_closed = Family::<ConnectionCloseLabels, Counter>::default();
        registry.register(
            "http_connections_closed",
            "Client connections closed, by reason",
            http_connections_closed.clone(),
        );
        let webhook_deliveries = Family::<WebhookOutcomeLabels, Counter>::default();
        // Every outcome from the start, so that a rate over it has a zero to
        // start from rather than a series that appears with its first attempt.
        for outcome in WEBHOOK_OUTCOMES {
            drop(webhook_deliveries.get_or_create(&WebhookOutcomeLabels {
                outcome: outcome.to_owned(),
            }));
        }
        registry.register(
            "webhook_deliveries",
            "Webhook attempts settled by this server, by outcome",
            webhook_deliveries.clone(),
        );
        let webhook_queue_depth = Gauge::default();
        registry.register(
            "webhook_queue_depth",
            "Pending webhook deliveries (all servers), measured at scrape time",
            webhook_queue_depth.clone(),
        );
        let webhook_oldest_pending_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "webhook_oldest_pending_seconds",
            "How long the oldest pending webhook delivery has been queued, measured at scrape time",
            webhook_oldest_pending_seconds.clone(),
        );
        let bus_published = Counter::default();
        registry.register(
            "bus_published",
            "Events this server published to RabbitMQ and the broker confirmed",
            bus_published.clone(),
        );
        let bus_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "bus_lag_seconds",
            "Age of the oldest event not yet confirmed by RabbitMQ, on the publishing server (0 when none waits)",
            bus_lag_seconds.clone(),
        );
        let bus_connected = Gauge::default();
        registry.register(
            "bus_connected",
            "1 while this server publishes to RabbitMQ over an open connection",
            bus_connected.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open GraphQL WebSocket connections (subscriptions)",
            websocket_connections.clone(),
        );
        let replica_healthy = Family::<ReplicaLabels, Gauge>::default();
        registry.register(
            "db_replica_healthy",
            "1 while a read replica serves reads (reachable, and within REPLICA_MAX_LAG_MS)",
            replica_healthy.clone(),
        );
        let replica_lag_seconds =
            Family::<ReplicaLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "db_replica_lag_seconds",
            "How far a read replica was behind the primary at its last check",
            replica_lag_seconds.clone(),
        );
        let replica_statements = Family::<ReplicaLabels, Counter>::default();
        registry.register(
            "db_replica_statements",
            "SQL statements sent to a read replica",
            replica_statements.clone(),
        );
        let http_requests = Family::<HttpRequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route template, method and status",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<HttpRouteLabels, Histogram>::new_with_constructor(|| {
                // 1 ms to ~16 s.
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    0.001, 2.0, 15,
                ))
            });
        registry.register(
            "http_request_duration_seconds",
            "Time to the response's head, by route template and method",
            http_request_duration.clone(),
        );
        let build_info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build_info.get_or_create(&build_info_labels()).set(1);
        registry.register("build_info", "The running build (always 1)", build_info);
        let fast_path = FastPathCounters::register(&mut registry);
        Self(Arc::new(Families {
            fast_path,
            http_requests,
            http_request_duration,
            registry,
            replica_healthy,
            replica_lag_seconds,
            replica_statements,
            websocket_connections,
            bus_published,
            bus_lag_seconds,
            bus_connected,
            webhook_deliveries,
            webhook_queue_depth,
            webhook_oldest_pending_seconds,
            http_connections,
            password_hashes,
            http_connections_closed,
            requests,
            latency,
            login_failures,
            pool_size,
            pool_available,
            pool_waiting,
        }))
    }
}

impl Metrics {
    /// The text exposition, with the pool gauges read at this moment.
    pub fn render(&self, pool: &deadpool::Status) -> String {
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_size.set(to_i64(pool.size));
        self.pool_available.set(to_i64(pool.available));
        self.pool_waiting.set(to_i64(pool.waiting));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Counts the SQL statements sent over every connection of one pool; it is
/// also exported as the `customer_api_db_statements_total` metric.
#[derive(Clone, Debug, Default)]
pub struct StatementCounter(prometheus_client::metrics::counter::Counter);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    pub fn as_metric(&self) -> prometheus_client::metrics::counter::Counter {
        self.0.clone()
    }

    pub fn increment(&self) {
        self.0.inc();
    }
}
