//! An OTLP/HTTP trace receiver on 127.0.0.1: it accepts `POST /v1/traces`
//! with protobuf bodies, as collectors do, and keeps what it decoded (and
//! the raw bytes, to search them for what must never be exported). It
//! also answers webhooks at `POST /hook`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// The `traceparent` header of each webhook received (empty if none).
    hook_traceparents: Arc<Mutex<Vec<String>>>,
}

async fn hook(State(received): State<Received>, headers: HeaderMap) -> StatusCode {
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    received.hook_traceparents.lock().unwrap().push(traceparent);
    StatusCode::NO_CONTENT
}

pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub endpoint: String,
    received: Received,
    _server: tokio::task::JoinHandle<()>,
}

async fn traces(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some("application/x-protobuf") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body.clone()) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    received.raw.lock().unwrap().extend_from_slice(&body);
    received.requests.lock().unwrap().push(request);
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Receiver {
    pub async fn start() -> Self {
        let received = Received::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/v1/traces", post(traces))
            // A webhook receiver too, so that deliveries have somewhere to go.
            .route("/hook", post(hook))
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            endpoint,
            received,
            _server: server,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.received
            .requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// The service name of the resource that sent the spans.
    pub fn service_names(&self) -> Vec<String> {
        self.received
            .requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .filter_map(|r| r.resource.as_ref())
            .filter_map(|r| string_attribute(&r.attributes, "service.name"))
            .collect()
    }

    /// The `traceparent` of every webhook received, in order.
    pub fn hook_traceparents(&self) -> Vec<String> {
        self.received.hook_traceparents.lock().unwrap().clone()
    }

    /// Every byte received, to look for what must not be there.
    pub fn raw(&self) -> Vec<u8> {
        self.received.raw.lock().unwrap().clone()
    }
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            _ => None,
        })
}

/// A span's attribute as text (strings and integers).
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    string_attribute(&span.attributes, key)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
