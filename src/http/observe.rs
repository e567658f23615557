//! What every request leaves for operators: its count and latency by route
//! template, method and status, and, with traces on, its span (a child of
//! the caller's `traceparent`, returned in the response).

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;
use crate::telemetry::traces;

/// The route label of requests that matched no route: their paths are the
/// client's to choose, so they must not become labels.
pub const UNMATCHED: &str = "unmatched";

/// The trace id of the request, for its log lines (see `request_id`).
#[derive(Clone, Debug)]
pub struct TraceId(pub String);

pub async fn observe(State(metrics): State<Metrics>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |path| intern(path.as_str()));
    let method = method_label(request.method());
    let traced = traces::server_span(request.method(), route, request.headers());
    let mut response = match &traced {
        Some((span, trace_id)) => {
            request.extensions_mut().insert(TraceId(trace_id.clone()));
            traces::in_span(span, next.run(request)).await
        }
        None => next.run(request).await,
    };
    let status = response.status().as_u16();
    if let Some((span, _)) = &traced {
        traces::finish_server_span(span, status, response.headers_mut());
    }
    metrics.record_http_request(route, method, status, started.elapsed().as_secs_f64());
    response
}

/// Route templates as `'static` labels, so that counting a request
/// allocates nothing. They come from the router alone, a few dozen.
fn intern(route: &str) -> &'static str {
    static ROUTES: RwLock<Option<HashSet<&'static str>>> = RwLock::new(None);
    if let Some(known) = ROUTES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|routes| routes.get(route).copied())
    {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    let routes = routes.get_or_insert_with(HashSet::new);
    if let Some(known) = routes.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

/// The method as a label: the standard ones, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_interned_once() {
        let a = intern("/v1.0/customers/{id}");
        let b = intern(&String::from("/v1.0/customers/{id}"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
