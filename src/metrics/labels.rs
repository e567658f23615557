//! The label sets of the server's metrics.

use prometheus_client::encoding::EncodeLabelSet;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    /// The replica's place in `DATABASE_REPLICA_URLS`, from 0.
    pub replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionCloseLabels {
    /// `client` (closed by the client or after its last response), `idle`
    /// (keep-alive timeout), `evicted` (idle, closed at the connection cap
    /// for a new client), `header_timeout` (the request head was too slow),
    /// `shutdown` or `error`.
    pub reason: String,
}
