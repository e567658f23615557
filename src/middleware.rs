//! HTTP middleware: request ids and the request span, and error bodies for
//! the refusals that happen outside the handlers (body too large, deadline
//! passed, panic), so that every failure a client sees carries a code.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::ErrorCode;
use crate::graphql::limits::Limit;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request: the client's `X-Request-Id` when it is a sane
/// token (so traces can be joined across services), otherwise a new UUID.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Gives every request an id, runs it inside a span that carries the id (so
/// every log line of the request has it), and returns the id in the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(REQUEST_ID.clone(), value.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID.clone(), value);
    response
}

/// Replaces the bodiless refusals of the layers below (body limit,
/// deadline, caught panic) with an error body in the shape the client
/// speaks: REST's on REST paths, GraphQL's everywhere else.
pub async fn shaped_refusals(request: Request, next: Next) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    let rest = crate::rest::is_rest_path(request.uri().path());
    let mut response = shaped(next.run(request).await, rest, id);
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body is never read, so the connection cannot be
        // reused: say so, rather than let the client's next request fail.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn shaped(response: Response, rest: bool, id: Option<RequestId>) -> Response {
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
    if rest {
        return crate::rest::refusal(status).unwrap_or(response);
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
