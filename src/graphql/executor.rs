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

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError, ServerResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::errors::assign_code;
use super::limits::{DocumentLimits, Limit};
use super::{ApiSchema, build_schema};
use crate::app::AppState;
use crate::metrics::Metrics;

/// Total size of the persisted documents' texts kept (least recently used go first).
const PERSISTED_QUERY_BYTES_KEPT: u64 = 4 * 1024 * 1024;
/// Total size of the document texts whose parse is kept.
const PARSED_QUERY_BYTES_KEPT: u64 = 4 * 1024 * 1024;

/// Executes requests against the schema; cheap to clone.
#[derive(Clone)]
pub struct GraphqlExecutor(Arc<Inner>);

struct Inner {
    schema: ApiSchema,
    limits: DocumentLimits,
    /// Persisted documents by SHA-256, with the size of their text.
    persisted: moka::sync::Cache<String, (u32, Arc<ExecutableDocument>)>,
    /// Recently parsed documents by their text.
    parsed: moka::sync::Cache<String, Arc<ExecutableDocument>>,
    roots: RootFields,
    metrics: Metrics,
}

impl GraphqlExecutor {
    pub fn new(state: AppState) -> Self {
        let config = &state.config;
        let limits = DocumentLimits {
            max_depth: config.max_query_depth,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
            introspection: config.introspection,
        };
        let metrics = state.metrics.clone();
        let schema = build_schema(state.clone(), config);
        let roots = RootFields::of(&schema);
        Self(Arc::new(Inner {
            schema,
            limits,
            persisted: moka::sync::Cache::builder()
                .weigher(|_: &String, (size, _): &(u32, Arc<ExecutableDocument>)| *size)
                .max_capacity(PERSISTED_QUERY_BYTES_KEPT)
                .build(),
            parsed: moka::sync::Cache::builder()
                // Weighed by the size of the text, so that huge documents
                // cannot make the cache hold much memory.
                .weigher(|query: &String, _| u32::try_from(query.len()).unwrap_or(u32::MAX))
                .max_capacity(PARSED_QUERY_BYTES_KEPT)
                .build(),
            roots,
            metrics,
        }))
    }

    /// Executes one request. `read_only` requests (GET) may not hold a mutation.
    pub async fn execute(&self, mut request: Request, read_only: bool) -> Response {
        let started = Instant::now();
        let (mut response, operation) = match self.prepare(&mut request, read_only) {
            Ok(operation) => (self.0.schema.execute(request).await, operation),
            Err(error) => (Response::from_errors(vec![error]), String::new()),
        };
        for error in &mut response.errors {
            assign_code(error);
        }
        self.observe(&operation, &response, started);
        response
    }

    pub async fn execute_batch(&self, batch: BatchRequest, read_only: bool) -> BatchResponse {
        match batch {
            BatchRequest::Single(request) => {
                BatchResponse::Single(self.execute(request, read_only).await)
            }
            BatchRequest::Batch(requests) => BatchResponse::Batch(
                futures_util::future::join_all(
                    requests.into_iter().map(|r| self.execute(r, read_only)),
                )
                .await,
            ),
        }
    }

    /// Finds the document (persisted or parsed), checks it against the
    /// limits, and names the operation for logs and metrics.
    fn prepare(&self, request: &mut Request, read_only: bool) -> ServerResult<String> {
        let document = self.document(request)?;
        if read_only
            && document
                .operations
                .iter()
                .any(|(_, op)| op.node.ty == OperationType::Mutation)
        {
            return Err(Limit::MutationOverGet.error("mutations must be sent with POST"));
        }
        self.0.limits.check(&document)?;
        let operation = self
            .0
            .roots
            .label(&document, request.operation_name.as_deref());
        request.set_parsed_query(document);
        Ok(operation)
    }

    /// The request's document. Automatic persisted queries: a client may send
    /// only the SHA-256 of a document the server has already seen.
    fn document(&self, request: &mut Request) -> ServerResult<ExecutableDocument> {
        let Some(persisted) = request.extensions.0.remove("persistedQuery") else {
            return self.parse(&request.query);
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PersistedQuery {
            version: i32,
            sha256_hash: String,
        }
        let persisted: PersistedQuery = async_graphql::from_value(persisted)
            .map_err(|_| ServerError::new("the persistedQuery extension is malformed", None))?;
        if persisted.version != 1 {
            return Err(ServerError::new(
                "only version 1 of the persistedQuery extension is supported",
                None,
            ));
        }
        if request.query.is_empty() {
            return self
                .0
                .persisted
                .get(&persisted.sha256_hash)
                .map(|(_, document)| (*document).clone())
                .ok_or_else(|| ServerError::new("PersistedQueryNotFound", None));
        }
        if format!("{:x}", Sha256::digest(request.query.as_bytes())) != persisted.sha256_hash {
            return Err(ServerError::new(
                "persistedQuery.sha256Hash is not the SHA-256 of the query",
                None,
            ));
        }
        let document = self.parse(&request.query)?;
        let size = u32::try_from(request.query.len()).unwrap_or(u32::MAX);
        self.0
            .persisted
            .insert(persisted.sha256_hash, (size, Arc::new(document.clone())));
        Ok(document)
    }

    /// Parses a document, or copies it from the cache of recent ones: a
    /// frontend sends the same few documents over and over, and copying a
    /// parsed document costs a fraction of parsing it again.
    fn parse(&self, query: &str) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.0.parsed.get(query) {
            return Ok((*document).clone());
        }
        let document = async_graphql::parser::parse_query(query)?;
        self.0
            .parsed
            .insert(query.to_owned(), Arc::new(document.clone()));
        Ok(document)
    }

    fn observe(&self, operation: &str, response: &Response, started: Instant) {
        let elapsed = started.elapsed();
        // Refused before execution (unparsable, over a limit, or invalid).
        let refused = response.data == async_graphql::Value::Null
            && response.is_err()
            && response.errors.iter().all(|e| e.path.is_empty());
        let operation = if refused || operation.is_empty() {
            "invalid"
        } else {
            operation
        };
        let outcome = response
            .errors
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
            outcome,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            errors = response.errors.len(),
            "graphql operation"
        );
    }
}

/// The root fields the schema defines, so that operation labels are made
/// only of names the schema knows and clients cannot blow up the label set.
struct RootFields {
    query: Vec<String>,
    mutation: Vec<String>,
}

impl RootFields {
    fn of(schema: &ApiSchema) -> Self {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let mut roots = Self {
            query: Vec::new(),
            mutation: Vec::new(),
        };
        let Ok(document) = async_graphql::parser::parse_schema(schema.sdl()) else {
            return roots;
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let TypeKind::Object(object) = &ty.node.kind else {
                continue;
            };
            let names = object.fields.iter().map(|f| f.node.name.node.to_string());
            match ty.node.name.node.as_str() {
                "Query" => roots.query.extend(names),
                "Mutation" => roots.mutation.extend(names),
                _ => {}
            }
        }
        roots
    }

    /// Labels like `query customers` or `mutation login`.
    fn label(&self, document: &ExecutableDocument, operation_name: Option<&str>) -> String {
        let operation = match operation_name {
            Some(name) => document
                .operations
                .iter()
                .find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
            None => document.operations.iter().next(),
        };
        let Some((_, operation)) = operation else {
            return String::new();
        };
        let (kind, known) = match operation.node.ty {
            OperationType::Query => ("query", &self.query),
            OperationType::Mutation => ("mutation", &self.mutation),
            OperationType::Subscription => ("subscription", &self.mutation),
        };
        let mut fields: Vec<&str> = operation
            .node
            .selection_set
            .node
            .items
            .iter()
            .filter_map(|item| match &item.node {
                Selection::Field(field) => Some(field.node.name.node.as_str()),
                _ => None,
            })
            .filter(|name| name.starts_with("__") || known.iter().any(|k| k == name))
            .collect();
        fields.sort_unstable();
        fields.dedup();
        if fields.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind} {}", fields.join("+"))
        }
    }
}
