//! Error bodies for the refusals that happen outside the GraphQL handlers
//! (body too large, deadline passed, panic), so that every failure a client
//! sees carries a code. The REST routes install REST's own (`rest::refusals`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request_id::RequestId;
use crate::error::ErrorCode;
use crate::graphql::limits::Limit;

/// The rest of a refused body is never read, so the connection cannot be
/// reused: say so, rather than let the client's next request fail.
pub async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Replaces the bodiless refusals of the layers below (body limit,
/// deadline, caught panic) with a GraphQL error body.
pub async fn graphql_refusals(request: Request, next: Next) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return response;
    }
    let status = response.status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("request handler panicked");
    }
    let (message, code, limit) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "the request body is larger than this server accepts",
            ErrorCode::BadUserInput,
            Some(Limit::BodySize),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "the request did not finish within the server's deadline; try again",
            ErrorCode::ServiceUnavailable,
            None,
        ),
        StatusCode::INTERNAL_SERVER_ERROR => (
            "internal server error",
            ErrorCode::InternalServerError,
            None,
        ),
        _ => return response,
    };
    error_body(status, message, code, limit, id.as_ref())
}

/// A response whose body is a GraphQL error.
pub fn error_body(
    status: StatusCode,
    message: &str,
    code: ErrorCode,
    limit: Option<Limit>,
    request_id: Option<&RequestId>,
) -> Response {
    let mut extensions = serde_json::Map::new();
    extensions.insert("code".into(), code.as_str().into());
    if let Some(limit) = limit {
        extensions.insert("limit".into(), limit.as_str().into());
    }
    if let Some(id) = request_id {
        extensions.insert("requestId".into(), id.0.clone().into());
    }
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": extensions }]
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body.to_string()),
    )
        .into_response()
}
