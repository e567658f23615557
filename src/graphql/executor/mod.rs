//! The one way a GraphQL request is executed: persisted-query lookup,
//! parsing, the document limits, execution, error codes, and one log line
//! and one set of metrics per operation.
//!
//! None of this is an async-graphql extension on purpose: with any extension
//! installed, async-graphql wraps the resolution of every single field in
//! the extension chain, which cost about 60% of the instructions of a page
//! of 50 customers. Done here, around execution, it costs once per request.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::{BatchRequest, Request, Response, ServerResult};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::context::RequestAuth;
use super::fast;
use super::limits::DocumentLimits;
use super::{ApiSchema, build_schema};
use crate::app::AppState;
use crate::config::FastPathMode;
use crate::error::AppError;
use crate::metrics::{FastPathOutcome, Metrics};
use crate::telemetry::traces;

mod documents;
mod labels;
mod order;
mod responses;

use documents::{Checked, PARSED_QUERY_BYTES_KEPT, PERSISTED_QUERY_BYTES_KEPT, Prepared};
use labels::{RootFields, loggable_operation_name};
pub use responses::{BatchAnswer, GraphqlResponse, refused_before_execution};
use responses::{failure, finish_errors};

/// Executes requests against the schema; cheap to clone.
#[derive(Clone)]
pub struct GraphqlExecutor(Arc<Inner>);

struct Inner {
    schema: ApiSchema,
    state: AppState,
    max_complexity: usize,
    limits: DocumentLimits,
    /// Persisted documents by SHA-256; only documents that validated.
    persisted: moka::sync::Cache<String, Checked>,
    /// Recently parsed documents by their text; only documents within the limits.
    parsed: moka::sync::Cache<String, Checked>,
    roots: RootFields,
    metrics: Metrics,
    /// Large documents parsed at once, off the runtime's worker threads.
    parsing: Arc<tokio::sync::Semaphore>,
}

impl GraphqlExecutor {
    pub fn new(state: AppState) -> Self {
        let config = &state.config;
        let limits = DocumentLimits {
            max_depth: config.max_query_depth,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
            max_nesting: usize::from(config.max_nesting),
            max_tokens: config.max_tokens,
            max_selections: config.max_selections,
            introspection: config.introspection,
        };
        let metrics = state.metrics.clone();
        let schema = build_schema(state.clone(), config);
        let roots = RootFields::of(&schema);
        let max_complexity = config.max_query_complexity;
        Self(Arc::new(Inner {
            schema,
            state: state.clone(),
            max_complexity,
            limits,
            persisted: moka::sync::Cache::builder()
                .weigher(|_: &String, checked: &Checked| checked.weight)
                .max_capacity(PERSISTED_QUERY_BYTES_KEPT)
                .build(),
            parsed: moka::sync::Cache::builder()
                .weigher(|_: &String, checked: &Checked| checked.weight)
                .max_capacity(PARSED_QUERY_BYTES_KEPT)
                .build(),
            roots,
            metrics,
            // One core fewer than the machine has (at least one): large
            // documents never take every core from probes and light queries.
            parsing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, |cores| usize::from(cores).saturating_sub(1))
                    .max(1),
            )),
        }))
    }

    /// Executes one request. `read_only` requests (GET) may not hold a mutation.
    pub async fn execute(&self, request: Request, read_only: bool) -> GraphqlResponse {
        let started = Instant::now();
        let operation_name =
            loggable_operation_name(request.operation_name.as_deref()).map(str::to_owned);
        let (request, prepared) = self.prepare_request(request, read_only).await;
        self.run(request, prepared, started, operation_name.as_deref())
            .await
    }

    /// Executes one operation sent over a WebSocket: a subscription as the
    /// stream of its events, any other operation as a stream of its one
    /// response. The same limits, caches and error codes as over HTTP.
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        let executor = self.clone();
        futures_util::stream::once(async move {
            let started = Instant::now();
            let operation_name =
                loggable_operation_name(request.operation_name.as_deref()).map(str::to_owned);
            let (request, prepared) = executor.prepare_request(request, false).await;
            match prepared {
                Ok(prepared) if prepared.subscription => {
                    let request = prepared.for_general_path(request);
                    executor.subscribe(request, prepared.operation, operation_name)
                }
                prepared => {
                    let response = executor
                        .run(request, prepared, started, operation_name.as_deref())
                        .await
                        .into_response();
                    futures_util::stream::once(std::future::ready(response)).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }

    fn subscribe(
        &self,
        request: Request,
        operation: String,
        operation_name: Option<String>,
    ) -> BoxStream<'static, Response> {
        tracing::info!(operation, operation_name, "graphql subscription started");
        let watch = SubscriptionWatch {
            operation,
            operation_name,
            started: Instant::now(),
            events: 0,
        };
        self.0
            .schema
            .execute_stream(request)
            .scan(watch, |watch, mut response| {
                watch.events += 1;
                finish_errors(&mut response);
                std::future::ready(Some(response))
            })
            .boxed()
    }

    async fn run(
        &self,
        request: Request,
        prepared: ServerResult<Prepared>,
        started: Instant,
        operation_name: Option<&str>,
    ) -> GraphqlResponse {
        let span = traces::graphql_span(
            prepared.as_ref().map_or("", |p| p.operation.as_str()),
            operation_name,
        );
        let (mut response, operation) = match prepared {
            Ok(prepared) => {
                let response =
                    traces::in_span(&span, self.execute_prepared(request, &prepared)).await;
                let Prepared {
                    operation,
                    to_persist,
                    ..
                } = prepared;
                if let Some((hash, checked)) = to_persist
                    && !response.refused_before_execution()
                {
                    self.0.persisted.insert(hash, checked);
                }
                (response, operation)
            }
            Err(error) => (
                GraphqlResponse::General(Response::from_errors(vec![error])),
                String::new(),
            ),
        };
        if let GraphqlResponse::General(response) = &mut response {
            finish_errors(response);
        }
        let outcome = self.observe(&operation, operation_name, &response, started);
        traces::finish_graphql_span(&span, &outcome);
        response
    }

    /// The fast path when it can answer, else async-graphql; a document
    /// that async-graphql ran without refusing becomes eligible for the
    /// fast path.
    async fn execute_prepared(&self, request: Request, prepared: &Prepared) -> GraphqlResponse {
        let checked = &prepared.checked;
        let mode = self.0.state.config.graphql_fast_path;
        let fast = match mode {
            FastPathMode::Off => None,
            FastPathMode::On | FastPathMode::Verify => {
                fast::execute(
                    &checked.fast,
                    &checked.document,
                    self.0.max_complexity,
                    &request,
                    &self.0.state,
                )
                .await
            }
        };
        let metrics = &self.0.metrics;
        let fast = match fast {
            Some(fast) if mode == FastPathMode::On => {
                metrics.record_fast_path(FastPathOutcome::Served);
                return GraphqlResponse::Written(fast);
            }
            Some(fast) => Some(fast),
            None => {
                metrics.record_fast_path(FastPathOutcome::General);
                None
            }
        };
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        // Under `verify`, what the fast path needs to answer again.
        let again = fast.as_ref().map(|_| {
            let mut again = Request::new(String::new()).variables(variables.clone());
            again.operation_name = operation_name.clone();
            match request
                .data
                .get(&std::any::TypeId::of::<Arc<RequestAuth>>())
            {
                Some(auth) => match auth.downcast_ref::<Arc<RequestAuth>>() {
                    Some(auth) => again.data(auth.clone()),
                    None => again,
                },
                None => again,
            }
        });
        let request = prepared.for_general_path(request);
        let mut response = if checked.heavy {
            self.execute_off_the_runtime(request).await
        } else {
            self.0.schema.execute(request).await
        };
        order::in_document_order(
            &mut response.data,
            &checked.document,
            operation_name.as_deref(),
            &variables,
        );
        if !refused_before_execution(&response) {
            checked.fast.mark_validated();
        }
        if let (Some(fast), Some(again)) = (fast, again) {
            let general = serde_json::to_vec(&response).ok();
            // The data may have changed between the two answers (another
            // operation of a batch, another client): the fast path then
            // answers again, after async-graphql, on the data it read.
            let same = general.as_ref() == Some(&fast)
                || general
                    == fast::execute(
                        &checked.fast,
                        &checked.document,
                        self.0.max_complexity,
                        &again,
                        &self.0.state,
                    )
                    .await;
            if same {
                metrics.record_fast_path(FastPathOutcome::Served);
            } else {
                metrics.record_fast_path(FastPathOutcome::Mismatch);
                // The operation only: the responses may hold secrets.
                tracing::error!(
                    operation = prepared.operation,
                    "the fast path answered differently from async-graphql"
                );
            }
        }
        GraphqlResponse::General(response)
    }

    pub async fn execute_batch(&self, batch: BatchRequest, read_only: bool) -> BatchAnswer {
        match batch {
            BatchRequest::Single(request) => {
                BatchAnswer::Single(self.execute(request, read_only).await)
            }
            BatchRequest::Batch(requests) => BatchAnswer::Batch(
                futures_util::future::join_all(
                    requests.into_iter().map(|r| self.execute(r, read_only)),
                )
                .await,
            ),
        }
    }

    /// Executes a large document (async-graphql validates it first, which
    /// costs milliseconds of CPU) on a blocking thread, as many at a time as
    /// large documents are parsed, so that the worker threads keep serving
    /// probes and light queries. Its database work still runs on the
    /// runtime's I/O, in the request's span and connection share.
    async fn execute_off_the_runtime(&self, request: Request) -> Response {
        let Ok(_permit) = self.0.parsing.clone().acquire_owned().await else {
            return Response::from_errors(vec![failure(AppError::Unavailable(
                "the server is shutting down".into(),
            ))]);
        };
        let schema = self.0.schema.clone();
        let work = crate::app::within_request(async move { schema.execute(request).await });
        let runtime = tokio::runtime::Handle::current();
        match tokio::task::spawn_blocking(move || runtime.block_on(work)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![failure(AppError::internal(
                "executing a document on a blocking thread failed",
            ))]),
        }
    }

    fn observe(
        &self,
        operation: &str,
        operation_name: Option<&str>,
        response: &GraphqlResponse,
        started: Instant,
    ) -> String {
        let elapsed = started.elapsed();
        let operation = if response.refused_before_execution() || operation.is_empty() {
            "invalid"
        } else {
            operation
        };
        let outcome = response
            .errors()
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|ext| ext.get("code"))
            .map_or_else(
                || "ok".to_owned(),
                |code| code.to_string().trim_matches('"').to_owned(),
            );
        self.0
            .metrics
            .record_operation(operation, &outcome, elapsed.as_secs_f64());
        // Variables are never logged: they carry passwords.
        tracing::info!(
            operation,
            operation_name,
            outcome,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            errors = response.errors().len(),
            "graphql operation"
        );
        outcome
    }
}

/// Logs the end of a subscription, however it ends (completed, stopped by
/// the client, or its connection closed).
struct SubscriptionWatch {
    operation: String,
    operation_name: Option<String>,
    started: Instant,
    events: u64,
}

impl Drop for SubscriptionWatch {
    fn drop(&mut self) {
        tracing::info!(
            operation = self.operation,
            operation_name = self.operation_name,
            events = self.events,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "graphql subscription ended"
        );
    }
}
