//! customer-api: a GraphQL API server for managing the customers of a CPaaS
//! platform (VoIPbin), over PostgreSQL.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
#[cfg(unix)]
pub mod devdb;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod middleware;
pub mod rest;
pub mod server;
pub mod service;
pub mod telemetry;

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
    server::serve(listener, state, shutdown).await
}
