//! What operators see: HTTP metrics by route template, and OpenTelemetry
//! traces exported over OTLP to a receiver the tests run.
//!
//! - `metrics`: `/metrics` after REST, GraphQL and unmatched requests.
//! - `otlp`: a tiny OTLP/HTTP receiver that decodes the real protobuf.
//! - `traces`: the real binary exporting to it (the SDK's tracer provider
//!   is process-wide, so traces are tested in a process of their own).

mod metrics;
mod otlp;
mod traces;
