//! Prometheus metrics, served at `/metrics`: HTTP requests by route
//! template, method and status, and their latency; GraphQL operations by
//! operation and outcome, their latency; the build (`build_info`);
//! database pool gauges, failed logins, and the webhook queue (attempts by
//! outcome, its depth and the age of its oldest pending delivery); the read
//! replicas' health, lag and statements.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `query customers`, `mutation login`, … or `invalid` for documents
    /// that did not parse or validate: only names the schema knows, so the
    /// label set stays small.
    pub operation: String,
    /// `ok`, or the first error's `extensions.code`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginFailureLabels {
    /// `credentials` (wrong username or password) or `limited` (refused by the limiter).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookOutcomeLabels {
    /// `delivered`, `retry` (failed, tried again later) or `failed` (given up).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    /// The route template (`/v1.0/customers/{id}`), or `unmatched`.
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub route: &'static str,
    pub method: &'static str,
}

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

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
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

/// `customer_api_graphql_fast_path_total{outcome}`: operations the fast
/// path answered (`served`), left to async-graphql (`general`), or, under
/// `GRAPHQL_FAST_PATH=verify`, answered differently (`mismatch`).
#[derive(Clone)]
struct FastPathCounters {
    served: Counter,
    general: Counter,
    mismatch: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FastPathLabels {
    outcome: String,
}

impl FastPathCounters {
    fn register(registry: &mut Registry) -> Self {
        let family = Family::<FastPathLabels, Counter>::default();
        let counter = |outcome: &str| {
            family
                .get_or_create(&FastPathLabels {
                    outcome: outcome.to_owned(),
                })
                .clone()
        };
        let counters = Self {
            served: counter("served"),
            general: counter("general"),
            mismatch: counter("mismatch"),
        };
        registry.register(
            "graphql_fast_path",
            "GraphQL operations by how they were answered",
            family,
        );
        counters
    }
}

/// How one operation was answered, for `Metrics::record_fast_path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPathOutcome {
    Served,
    General,
    Mismatch,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    /// The replica's place in `DATABASE_REPLICA_URLS`, from 0.
    pub replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionCloseLabels {
    /// `client` (closed by the client or after its last response), `idle`
    /// (keep-alive timeout), `header_timeout` (the request head was too
    /// slow), `shutdown` or `error`.
    pub reason: String,
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
        Self {
            fast_path,
            http_requests,
            http_request_duration,
            registry: Arc::new(registry),
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
        }
    }
}

impl Metrics {
    pub fn record_fast_path(&self, outcome: FastPathOutcome) {
        match outcome {
            FastPathOutcome::Served => &self.fast_path.served,
            FastPathOutcome::General => &self.fast_path.general,
            FastPathOutcome::Mismatch => &self.fast_path.mismatch,
        }
        .inc();
    }

    /// Operations answered differently by the two paths so far (`verify`).
    pub fn fast_path_mismatches(&self) -> u64 {
        self.fast_path.mismatch.get()
    }

    /// Operations the fast path has answered so far.
    pub fn fast_path_served(&self) -> u64 {
        self.fast_path.served.get()
    }

    pub fn record_operation(&self, operation: &str, outcome: &str, seconds: f64) {
        let labels = OperationLabels {
            operation: operation.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Counts one HTTP request and its time to the response's head.
    pub fn record_http_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        self.http_requests
            .get_or_create(&HttpRequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.http_request_duration
            .get_or_create(&HttpRouteLabels { route, method })
            .observe(seconds);
    }

    /// The counter the password hasher increments for every argon2 run.
    pub fn password_hashes(&self) -> Counter {
        self.password_hashes.clone()
    }

    pub fn websocket_opened(&self) {
        self.websocket_connections.inc();
    }

    pub fn websocket_closed(&self) {
        self.websocket_connections.dec();
    }

    pub fn connection_opened(&self) {
        self.http_connections.inc();
    }

    pub fn connection_closed(&self, reason: &str) {
        self.http_connections.dec();
        self.http_connections_closed
            .get_or_create(&ConnectionCloseLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn record_login_failure(&self, reason: &str) {
        self.login_failures
            .get_or_create(&LoginFailureLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a settled webhook attempt: `delivered`, `retry` or `failed`.
    pub fn record_webhook_delivery(&self, outcome: &'static str) {
        debug_assert!(WEBHOOK_OUTCOMES.contains(&outcome), "{outcome}");
        self.webhook_deliveries
            .get_or_create(&WebhookOutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The webhook queue as last measured: pending deliveries, and how long
    /// the oldest of them has been queued.
    pub fn set_webhook_queue(&self, pending: i64, oldest_pending_seconds: f64) {
        self.webhook_queue_depth.set(pending);
        self.webhook_oldest_pending_seconds
            .set(oldest_pending_seconds);
    }

    /// Counts events the broker has confirmed.
    pub fn record_bus_published(&self, events: u64) {
        self.bus_published.inc_by(events);
    }

    pub fn set_bus_lag_seconds(&self, seconds: f64) {
        self.bus_lag_seconds.set(seconds);
    }

    pub fn set_bus_connected(&self, connected: bool) {
        self.bus_connected.set(i64::from(connected));
    }

    /// A replica's health as last checked; `lag_seconds` is left as it was
    /// when unknown (unreachable).
    pub fn set_replica_health(&self, replica: usize, healthy: bool, lag_seconds: Option<f64>) {
        let labels = ReplicaLabels {
            replica: replica.to_string(),
        };
        self.replica_healthy
            .get_or_create(&labels)
            .set(i64::from(healthy));
        let lag = self.replica_lag_seconds.get_or_create(&labels);
        if let Some(seconds) = lag_seconds {
            lag.set(seconds);
        }
    }

    /// The statement counter of a replica's pool.
    pub fn replica_statements(&self, replica: usize) -> StatementCounter {
        StatementCounter(
            self.replica_statements
                .get_or_create(&ReplicaLabels {
                    replica: replica.to_string(),
                })
                .clone(),
        )
    }

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
