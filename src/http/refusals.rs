//! Error bodies for the refusals that happen outside the GraphQL handlers
//! (body too large, deadline passed, panic), so that every failure a client
//! sees carries a code. The REST routes install REST's own (`rest::refusals`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request_id::RequestId;
use crate::error::ErrorCode;
use crate::graphql::limits::Limit;

/// A request body that notes when it has been read to its end.
struct WatchedBody {
    inner: Body,
    read_to_end: Arc<AtomicBool>,
}

impl http_body::Body for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.read_to_end.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response sent before its request's body was read (a refusal that did
/// not need the body: unknown path, wrong method, too large) leaves the rest
/// of the body on the connection, so hyper cannot reuse it and drops it after
/// the response. Say so with `Connection: close`, whichever handler refused,
/// rather than let the client's next request on the connection fail.
pub async fn close_unless_body_read(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if http_body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read_to_end = Arc::new(AtomicBool::new(false));
    let body = Body::new(WatchedBody {
        inner: body,
        read_to_end: read_to_end.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !read_to_end.load(Ordering::Relaxed) {
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
