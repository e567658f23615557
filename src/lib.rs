//! customer-api: a GraphQL API server for managing the customers of a CPaaS
//! platform (VoIPbin), over PostgreSQL.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod http;
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

/// Serves on `listener` until `shutdown` completes, then stops accepting and
/// lets in-flight requests finish. The listener is passed in so that tests
/// can bind port 0.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = build_router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
