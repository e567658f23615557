//! For operators: `/healthz` (the process answers), `/readyz` (the database
//! answers and is migrated) and `/metrics` (Prometheus).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::db::models::webhook_delivery;
use crate::error::{AppError, error_chain};

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

/// The longest a scrape waits for the webhook queue's measurement.
const QUEUE_MEASUREMENT_TIMEOUT: Duration = Duration::from_secs(1);

async fn metrics(State(app): State<AppState>) -> Response {
    measure_webhook_queue(&app).await;
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

/// Measures the webhook queue for this scrape (one query over the partial
/// index of pending deliveries). A slow or unreachable database must not
/// stall the scrape, which is how operators would see that very trouble:
/// past the timeout, or on an error, the gauges keep their last values.
async fn measure_webhook_queue(app: &AppState) {
    let measured = tokio::time::timeout(QUEUE_MEASUREMENT_TIMEOUT, async {
        let mut conn = app.conn().await?;
        Ok::<_, AppError>(webhook_delivery::queue_depth(&mut conn).await?)
    })
    .await;
    match measured {
        Ok(Ok((pending, oldest_seconds))) => app.metrics.set_webhook_queue(pending, oldest_seconds),
        Ok(Err(error)) => tracing::warn!(
            error = %error_chain(&error),
            "could not measure the webhook queue; its gauges keep their last values"
        ),
        Err(_) => tracing::warn!(
            timeout_ms = QUEUE_MEASUREMENT_TIMEOUT.as_millis() as u64,
            "measuring the webhook queue timed out; its gauges keep their last values"
        ),
    }
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
