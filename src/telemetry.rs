//! Logging: human-readable text by default, JSON for log pipelines. Levels
//! come from `RUST_LOG` (default `info`). Text is coloured only when stderr
//! is a terminal (and `NO_COLOR` is unset), so log files and pipes get plain text.
//!
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans also go to an OTLP
//! collector (see `traces`). Without it the subscriber is exactly the
//! logging one, and the span helpers of `traces` hand out disabled spans.

pub mod traces;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// What `init` set up; `shutdown` sends the spans still buffered.
#[must_use = "call shutdown() before exiting, or buffered spans are lost"]
pub struct Telemetry {
    exporter: Option<traces::Exporter>,
}

impl Telemetry {
    /// Exports what is still buffered (bounded by the exporter's timeout).
    pub async fn shutdown(self) {
        if let Some(exporter) = self.exporter {
            exporter.shutdown().await;
        }
    }
}

/// Installs the global subscriber. Must run inside the tokio runtime: the
/// span exporter, when there is one, batches on it.
pub fn init(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let exporter = match traces::Exporter::from_env() {
        Ok(exporter) => exporter,
        Err(error) => {
            init_logging_only(format, filter, ansi);
            tracing::warn!(%error, "traces are not exported");
            return Telemetry { exporter: None };
        }
    };
    let Some(exporter) = exporter else {
        init_logging_only(format, filter, ansi);
        return Telemetry { exporter: None };
    };
    // The logs do not see the spans made for traces only (their fields are
    // for the collector), and the traces see only those spans and warnings.
    let log_filter = filter.and(tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.target() != traces::TARGET
    }));
    let subscriber = tracing_subscriber::registry().with(exporter.layer());
    let base = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second init (e.g. in tests) keeps the first subscriber.
    let installed = match format {
        LogFormat::Text => subscriber.with(base.with_filter(log_filter)).try_init(),
        LogFormat::Json => subscriber
            .with(base.json().flatten_event(true).with_filter(log_filter))
            .try_init(),
    };
    if installed.is_err() {
        return Telemetry { exporter: None };
    }
    traces::enable();
    tracing::info!(endpoint = %exporter.endpoint(), "exporting traces over OTLP");
    Telemetry {
        exporter: Some(exporter),
    }
}

/// The subscriber as it is without traces: nothing more than the logs.
fn init_logging_only(format: LogFormat, filter: EnvFilter, ansi: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
