//! For operators: `/healthz` (the process answers), `/readyz` (the database
//! answers and is migrated) and `/metrics` (Prometheus).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

/// The probes, with `/metrics` too when `with_metrics`.
pub fn routes<S>(app: AppState, with_metrics: bool) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        routes = routes.route("/metrics", get(metrics));
    }
    routes.with_state(app)
}

async fn metrics(State(app): State<AppState>) -> Response {
    let text = app.metrics.render(&app.pool.status());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<AppState>) -> Response {
    let ready = async {
        let mut conn = app.conn().await?;
        crate::db::migrations_applied(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), ready).await {
        Ok(Ok(true)) => (StatusCode::OK, "ready").into_response(),
        Ok(Ok(false)) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending").into_response(),
        Ok(Err(_)) | Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
