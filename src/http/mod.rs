//! The HTTP edge: the listener (`server`), the router that puts the API
//! surfaces side by side (GraphQL and GraphiQL from `graphql`, REST from
//! `crate::rest`, the probes), and the layers every request passes: metrics
//! and traces by route (`observe`), request id, CORS, the per-request
//! database connection share, and, per surface, the body limit, the
//! deadline, panic catching and error bodies in that surface's own shape.

mod activity;
mod graphql;
pub mod observe;
mod probes;
mod refusals;
pub mod request_id;
pub mod server;
mod websocket;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;
use request_id::REQUEST_ID;

pub fn router(app: AppState) -> Router {
    let connections_per_request = usize::from(app.config.db_connections_per_request);
    let cors = cors_layer(&app.config.cors_allowed_origins);
    let writes = app.clone();
    let with_metrics = app.config.metrics_listen_addr.is_none();
    // Each surface shapes the refusals of its own guards.
    let graphql = guarded(
        graphql::routes(app.clone()).merge(probes::routes(app.clone(), with_metrics)),
        &app,
    )
    .layer(from_fn(refusals::graphql_refusals));
    let rest =
        guarded(crate::rest::routes(app.clone()), &app).layer(from_fn(crate::rest::refusals));
    // One stack of layers, applied once: each `Router::layer` call boxes
    // every route again, and each box is cloned per request at every level.
    // Listed outermost first: a request passes them top to bottom.
    graphql.merge(rest).layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(app.metrics.clone(), observe::observe))
            .layer(from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    crate::app::with_connection_share(connections_per_request, next.run(request))
                },
            ))
            // Records the writes of a request once it is done (read-your-writes).
            .layer(from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let writes = writes.clone();
                    async move {
                        crate::db::replicas::tracking_writes(&writes, next.run(request)).await
                    }
                },
            ))
            .layer(from_fn(request_id::request_id))
            .layer(cors)
            .layer(from_fn(refusals::close_unless_body_read)),
    )
}

/// The operators' routes, for `METRICS_LISTEN_ADDR`: metrics and probes.
pub fn operations_router(app: AppState) -> Router {
    let metrics = app.metrics.clone();
    probes::routes(app, true).layer(from_fn_with_state(metrics, observe::observe))
}

/// What bounds every request of a surface, innermost first: the body size
/// (at the body itself, since the GraphQL extractor streams it past axum's
/// own limit), the deadline, and a panic, each answered with a bare status
/// that the surface's refusal layer turns into its own error body.
fn guarded<S>(routes: Router<S>, app: &AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // The limit's own layer gives the others a plain body; the rest are
    // listed outermost first.
    routes
        .layer(RequestBodyLimitLayer::new(app.config.max_body_bytes))
        .layer(ServiceBuilder::new().layer(CatchPanicLayer::new()).layer(
            TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_millis(app.config.request_timeout_ms),
            ),
        ))
}

/// Cross-origin access for the configured frontend origins only; none by default.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID.clone(),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([REQUEST_ID.clone(), HeaderName::from_static("traceparent")])
        .max_age(Duration::from_secs(3600))
}
