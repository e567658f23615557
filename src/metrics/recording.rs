//! What the rest of the server records: operations, HTTP requests,
//! connections, logins, webhooks, the event bus and the read replicas.

use prometheus_client::metrics::counter::Counter;

use super::*;

impl Metrics {
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
}
