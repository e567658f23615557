//! customer-api: a GraphQL API server for managing the customers of a CPaaS
//! platform (VoIPbin), over PostgreSQL.
//!
//! The map, from the edge inward (each module uses only those below it):
//! - `http`: listener, router, layers, GraphQL over HTTP, probes;
//! - `graphql`, `rest`, `graphiql`: the API surfaces; `extract`: what they
//!   read from a request;
//! - `service`: the domain operations both surfaces call;
//! - `auth`, `db`: credentials and the revocation protocol; persistence;
//! - `error`, `config`, `metrics`, `telemetry`: the foundations.
//!
//! `startup` runs the start-up steps in order; `app` is the shared state.

pub mod app;
pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod feed;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod resources;
pub mod rest;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod webhooks;

use std::future::Future;

use tokio::net::TcpListener;

pub use app::AppState;
pub use config::Config;

/// The application's routes, ready to serve.
pub fn build_router(state: AppState) -> axum::Router {
    http::router(state)
}

/// Serves the operators' routes (`/metrics`, `/healthz`, `/readyz`) on
/// `listener`, for `METRICS_LISTEN_ADDR`, until the process ends.
pub async fn serve_operations(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, http::operations_router(state)).await
}

/// Serves on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish for at most `DRAIN_TIMEOUT_MS`, and closes
/// the database pool. The listener is passed in so that tests can bind port 0.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::server::serve(listener, state, shutdown).await
}
