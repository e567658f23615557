//! OpenTelemetry traces over OTLP, and the spans that make them: the HTTP
//! request (a child of the caller's W3C `traceparent`, which every response
//! returns), the GraphQL operation, each SQL statement, argon2 work and
//! webhook delivery attempts.
//!
//! The exporter is configured by the standard variables, read by the SDK
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`) and here
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`, `OTEL_SDK_DISABLED`,
//! `OTEL_TRACES_EXPORTER`).
//!
//! These spans have a target of their own (`TARGET`): only the trace layer
//! sees them, so log lines look the same with traces on or off. Every
//! helper checks `enabled()` first and hands out `Span::none()` when traces
//! are off, so that nothing (no span, no string) is made for them then.
//!
//! The request's and the operation's spans are never entered as tracing
//! spans: their work runs with their OpenTelemetry context attached instead
//! (`in_span`), which is what makes the statements under them their
//! children. Entered, they would become the current tracing span, which
//! `crate::app::within_request` hands to the tasks a request spawns, and the
//! log lines of those tasks would lose the request's `http` span (the logs
//! do not see trace spans).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use futures_util::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans made for traces only.
pub const TARGET: &str = "customer_api::otel";

/// The service name when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` gives one.
pub const DEFAULT_SERVICE_NAME: &str = "customer-api";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (set once, at start-up).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(super) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The OTLP span exporter and the provider that batches spans for it.
pub struct Exporter {
    provider: SdkTracerProvider,
    endpoint: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Exporter {
    /// The exporter the environment asks for: none without an OTLP
    /// endpoint (or with the SDK or the traces exporter turned off).
    pub fn from_env() -> Result<Option<Self>, String> {
        let endpoint = match (
            env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        let protocol = match protocol.as_str() {
            "http/protobuf" => Protocol::HttpBinary,
            "http/json" => Protocol::HttpJson,
            other => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use http/protobuf or http/json"
                ));
            }
        };
        // The SDK reads the endpoint, headers and timeout variables itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .build()
            .map_err(|e| format!("the OTLP exporter could not be built: {e}"))?;
        let processor =
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .build();
        let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(
            opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        );
        let named = env("OTEL_SERVICE_NAME").is_some()
            || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
        if !named {
            resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build())
            .build();
        Ok(Some(Self {
            provider,
            endpoint: redacted(&endpoint),
        }))
    }

    /// The tracing layer that turns this crate's trace spans (and only
    /// them) into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("customer-api"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(
                tracing_subscriber::filter::filter_fn(|metadata| {
                    metadata.is_span() && metadata.target() == TARGET
                })
                .with_max_level_hint(tracing::Level::INFO),
            )
    }

    /// Where spans go, for the start-up log line (without credentials).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends the spans still buffered. The SDK waits for that on the
    /// calling thread, so it waits on a blocking one.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        });
        if let Ok(Err(error)) = done.await {
            tracing::warn!(%error, "could not send the last spans");
        }
    }
}

/// A URL without its user, password and query, for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// `work` with the span's OpenTelemetry context attached while it runs, so
/// that the spans made in it are the span's children; `work` itself when
/// the span is disabled (traces off).
pub fn in_span<F: Future>(span: &Span, work: F) -> impl Future<Output = F::Output> {
    if span.is_disabled() {
        Either::Right(work)
    } else {
        Either::Left(work.with_context(span.context()))
    }
}

/// `work` with the current OpenTelemetry context attached while it runs,
/// for work handed to another task.
pub fn in_current_trace<F: Future>(work: F) -> impl Future<Output = F::Output> {
    in_trace(current_trace(), work)
}

/// The current trace, to continue elsewhere (`in_trace`); `None` with
/// traces off.
pub fn current_trace() -> Option<opentelemetry::Context> {
    enabled().then(opentelemetry::Context::current)
}

/// `work` in `trace` (from `current_trace`), for work done for a request by
/// another task.
pub fn in_trace<F: Future>(
    trace: Option<opentelemetry::Context>,
    work: F,
) -> impl Future<Output = F::Output> {
    match trace {
        Some(trace) => Either::Left(work.with_context(trace)),
        None => Either::Right(work),
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` says nothing.
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The HTTP request's span, named by its route template, a child of the
/// caller's span when the request carries a valid `traceparent`; with the
/// trace id, for the request's log lines.
pub fn server_span(method: &Method, route: &str, headers: &HeaderMap) -> Option<(Span, String)> {
    if !enabled() {
        return None;
    }
    let name = format!("{method} {route}");
    let span = tracing::info_span!(
        target: TARGET,
        "http",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // Only fails if the span already started, which it cannot have.
    let _ = span.set_parent(parent);
    span.set_attribute("http.request.method", method.as_str().to_owned());
    span.set_attribute("http.route", route.to_owned());
    let trace_id = span.context().span().span_context().trace_id().to_string();
    Some((span, trace_id))
}

/// Records the response's status on the request's span and returns the
/// span's own `traceparent` (and `tracestate`) in the response headers.
pub fn finish_server_span(span: &Span, status: u16, headers: &mut HeaderMap) {
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeadersMut(headers));
}

/// The span of one GraphQL operation, named by its label (`query
/// customers`, `mutation login`; `invalid` for refused documents), with the
/// client's `operationName` as already made loggable.
pub fn graphql_span(label: &str, operation_name: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let label = if label.is_empty() { "invalid" } else { label };
    let span = tracing::info_span!(
        target: TARGET,
        "graphql",
        otel.name = label,
        otel.status_code = Empty,
    );
    let kind = match label.split(' ').next() {
        Some("query") => Some("query"),
        Some("mutation") => Some("mutation"),
        Some("subscription") => Some("subscription"),
        _ => None,
    };
    if let Some(kind) = kind {
        span.set_attribute("graphql.operation.type", kind);
    }
    if let Some(name) = operation_name {
        span.set_attribute("graphql.operation.name", name.to_owned());
    }
    span
}

/// Records the operation's outcome (`ok` or the first error's code).
pub fn finish_graphql_span(span: &Span, outcome: &str) {
    if span.is_disabled() {
        return;
    }
    span.set_attribute("customer_api.outcome", outcome.to_owned());
    if outcome == "INTERNAL_SERVER_ERROR" || outcome == "SERVICE_UNAVAILABLE" {
        span.record("otel.status_code", "error");
    }
}

/// The span of one SQL statement: its text as diesel prepares it, with
/// `$1` placeholders; bind values (password hashes among them) never.
/// Only inside a trace: the background pollers' statements, a few every
/// second on every server, would each be a trace of one span.
pub fn sql_span(sql: &str) -> Span {
    if !enabled() || !opentelemetry::Context::map_current(|cx| cx.has_active_span()) {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "db",
        otel.name = sql_operation(sql),
        otel.kind = "client",
        otel.status_code = Empty,
    );
    span.set_attribute("db.system.name", "postgresql");
    span.set_attribute("db.query.text", sql.to_owned());
    span
}

/// The statement's first keyword, as the span's name: a name must stay
/// low in variety, and the text is an attribute of its own.
fn sql_operation(sql: &str) -> &'static str {
    let keyword = sql.split_whitespace().next().unwrap_or_default();
    [
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SET",
        "SAVEPOINT",
        "RELEASE",
        "LISTEN",
        "UNLISTEN",
        "NOTIFY",
        "LOCK",
        "CREATE",
        "DROP",
        "ALTER",
    ]
    .into_iter()
    .find(|k| k.eq_ignore_ascii_case(keyword))
    .unwrap_or("SQL")
}

/// Marks a statement's span as failed.
pub fn sql_failed(span: &Span) {
    span.record("otel.status_code", "error");
}

/// The span of argon2 work (`hash` or `verify`), waiting for a hashing
/// thread included.
pub fn argon2_span(operation: &'static str) -> Span {
    if !enabled() {
        return Span::none();
    }
    let name = if operation == "hash" {
        "argon2 hash"
    } else {
        "argon2 verify"
    };
    tracing::info_span!(target: TARGET, "argon2", otel.name = name)
}

/// Adds the current span's `traceparent` (and `tracestate`) to an outgoing
/// request, so that the receiver's own trace continues this one; nothing
/// when traces are off.
pub fn inject_current(headers: &mut HeaderMap) {
    if enabled() {
        TraceContextPropagator::new()
            .inject_context(&Span::current().context(), &mut HeadersMut(headers));
    }
}

/// The span of one webhook delivery attempt: a trace of its own, with the
/// event id and the attempt's number; never the URI (it may carry the
/// customer's own token).
pub fn webhook_span(event_id: &uuid::Uuid, attempt: i32) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "webhook",
        otel.name = "webhook delivery",
        otel.kind = "client",
        otel.status_code = Empty,
    );
    span.set_attribute("customer_api.event_id", event_id.to_string());
    span.set_attribute("customer_api.webhook.attempt", i64::from(attempt));
    span
}

/// Records an attempt's outcome: the endpoint's status code, if it
/// answered, and whether it was `delivered`, will be retried or failed.
pub fn finish_webhook_span(span: &Span, status: Option<u16>, outcome: &'static str) {
    if !enabled() || span.is_disabled() {
        return;
    }
    if let Some(status) = status {
        span.set_attribute("http.response.status_code", i64::from(status));
    }
    span.set_attribute("customer_api.webhook.outcome", outcome);
    if outcome != "delivered" {
        span.record("otel.status_code", "error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_spans_are_named_by_the_statements_keyword() {
        assert_eq!(sql_operation("SELECT 1"), "SELECT");
        assert_eq!(sql_operation("  insert into x values ($1)"), "INSERT");
        assert_eq!(sql_operation("VACUUM"), "SQL");
        assert_eq!(sql_operation(""), "SQL");
    }

    #[test]
    fn endpoints_are_logged_without_credentials() {
        assert_eq!(
            redacted("https://user:secret@collector:4318/v1/traces?token=abc"),
            "https://collector:4318/v1/traces"
        );
    }

    #[test]
    fn helpers_make_no_spans_while_traces_are_off() {
        assert!(!enabled());
        assert!(sql_span("SELECT 1").is_disabled());
        assert!(graphql_span("query customers", Some("Q")).is_disabled());
        assert!(argon2_span("hash").is_disabled());
        assert!(server_span(&Method::GET, "/graphql", &HeaderMap::new()).is_none());
    }
}
