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

/// Serves on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish for at most `DRAIN_TIMEOUT_MS`, and closes
/// the database pool. The listener is passed in so that tests can bind port 0.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain_timeout = std::time::Duration::from_millis(state.config.drain_timeout_ms);
    let pool = state.pool.clone();
    let app = build_router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let (draining_tx, draining) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = draining_tx.send(());
    });
    let deadline = async move {
        if draining.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(
                drain_timeout_ms = drain_timeout.as_millis() as u64,
                "requests still running at the drain deadline were cut off"
            );
            Ok(())
        }
    };
    pool.close();
    result
}
