//! Request ids: every request gets one, every log line of the request and
//! every error body carries it, and the response returns it.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

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
        // Only with traces on (see `observe`): joins log lines to the trace.
        trace_id = request
            .extensions()
            .get::<super::observe::TraceId>()
            .map(|id| id.0.as_str()),
    );
    let mut response =
        crate::app::with_request_id(id.into(), next.run(request).instrument(span)).await;
    response.headers_mut().insert(REQUEST_ID.clone(), value);
    response
}
