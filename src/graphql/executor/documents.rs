//! Finding a request's document: persisted-query lookup, the caches of
//! parsed documents (by text and by hash), the document limits, and
//! parsing large documents off the runtime's worker threads.

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, ServerError, ServerResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::GraphqlExecutor;
use super::responses::{failure, parse_error};
use crate::error::AppError;
use crate::graphql::fast::FastSlot;
use crate::graphql::limits::Limit;

/// Estimated memory of the parsed documents kept for persisted-query
/// hashes (least recently used go first).
pub(super) const PERSISTED_QUERY_BYTES_KEPT: u64 = 16 * 1024 * 1024;
/// Estimated memory of the parsed documents kept by text.
pub(super) const PARSED_QUERY_BYTES_KEPT: u64 = 16 * 1024 * 1024;
/// Documents longer than this are parsed on a blocking thread.
pub(super) const PARSE_IN_PLACE_BYTES: usize = 8 * 1024;
/// A document that passed the limits, with the memory it is estimated to
/// hold (its text and its tree), for weighing it in the caches.
#[derive(Clone)]
pub(super) struct Checked {
    pub(super) document: Arc<ExecutableDocument>,
    pub(super) weight: u32,
    /// Parsed from more than `PARSE_IN_PLACE_BYTES`: validating it costs
    /// milliseconds too, so it is also executed off the worker threads.
    pub(super) heavy: bool,
    /// Whether and how the fast path answers this document.
    pub(super) fast: Arc<FastSlot>,
}

/// A request's document, found and checked, ready to execute.
pub(super) struct Prepared {
    pub(super) operation: String,
    pub(super) checked: Checked,
    /// The operation is a subscription (only WebSockets serve those).
    pub(super) subscription: bool,
    /// A document sent with its persisted-query hash, to keep once it validated.
    pub(super) to_persist: Option<(String, Checked)>,
}

impl Prepared {
    /// The request with its document, for async-graphql (a copy of the
    /// cached tree, which async-graphql consumes).
    pub(super) fn for_general_path(&self, mut request: Request) -> Request {
        request.set_parsed_query((*self.checked.document).clone());
        request
    }
}

impl GraphqlExecutor {
    /// Finds the request's document (off the worker threads if it is large).
    pub(super) async fn prepare_request(
        &self,
        mut request: Request,
        read_only: bool,
    ) -> (Request, ServerResult<Prepared>) {
        if request.query.len() > PARSE_IN_PLACE_BYTES {
            self.prepare_off_the_runtime(request, read_only).await
        } else {
            let prepared = self.prepare(&mut request, read_only);
            (request, prepared)
        }
    }

    /// `prepare` for a large document: parsing one costs milliseconds of
    /// CPU, which must not hold up the runtime's worker threads (probes and
    /// light queries wait behind them), so it runs on a blocking thread,
    /// a bounded number at a time. Documents already parsed are served at once.
    async fn prepare_off_the_runtime(
        &self,
        mut request: Request,
        read_only: bool,
    ) -> (Request, ServerResult<Prepared>) {
        if !request.extensions.0.contains_key("persistedQuery")
            && self.0.parsed.contains_key(&request.query)
        {
            let prepared = self.prepare(&mut request, read_only);
            return (request, prepared);
        }
        let Ok(_permit) = self.0.parsing.clone().acquire_owned().await else {
            return (
                request,
                Err(failure(AppError::Unavailable(
                    "the server is shutting down".into(),
                ))),
            );
        };
        let executor = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            let prepared = executor.prepare(&mut request, read_only);
            (request, prepared)
        });
        match job.await {
            Ok(done) => done,
            Err(_) => (
                Request::new(""),
                Err(failure(AppError::internal(
                    "parsing a document on a blocking thread failed",
                ))),
            ),
        }
    }

    /// Finds the document (persisted or parsed, within the limits), and
    /// names the operation for logs and metrics.
    fn prepare(&self, request: &mut Request, read_only: bool) -> ServerResult<Prepared> {
        let (checked, to_persist) = self.document(request)?;
        let document = &checked.document;
        if read_only
            && document
                .operations
                .iter()
                .any(|(_, op)| op.node.ty == OperationType::Mutation)
        {
            return Err(Limit::MutationOverGet.error("mutations must be sent with POST"));
        }
        let operation_type = document
            .operations
            .iter()
            .find(|(name, _)| match request.operation_name.as_deref() {
                Some(wanted) => name.is_some_and(|n| n.as_str() == wanted),
                None => true,
            })
            .map(|(_, op)| op.node.ty);
        let is_mutation = operation_type == Some(OperationType::Mutation);
        if is_mutation {
            request
                .data
                .insert(crate::graphql::context::MutationOperation);
        }
        let operation = self
            .0
            .roots
            .label(document, request.operation_name.as_deref());
        let to_persist = to_persist.map(|hash| (hash, checked.clone()));
        Ok(Prepared {
            operation,
            checked,
            to_persist,
            subscription: operation_type == Some(OperationType::Subscription),
        })
    }

    /// The request's document, and the hash to persist it under once it
    /// has validated. Automatic persisted queries: a client may send only
    /// the SHA-256 of a document the server has already seen.
    fn document(&self, request: &mut Request) -> ServerResult<(Checked, Option<String>)> {
        let Some(persisted) = request.extensions.0.remove("persistedQuery") else {
            return Ok((self.parse(&request.query)?, None));
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
                .map(|checked| (checked, None))
                .ok_or_else(|| ServerError::new("PersistedQueryNotFound", None));
        }
        if format!("{:x}", Sha256::digest(request.query.as_bytes())) != persisted.sha256_hash {
            return Err(ServerError::new(
                "persistedQuery.sha256Hash is not the SHA-256 of the query",
                None,
            ));
        }
        Ok((self.parse(&request.query)?, Some(persisted.sha256_hash)))
    }

    /// Checks a document's text, parses it and checks the result against
    /// the limits; or takes it from the cache of recent ones, which holds
    /// only documents that passed: a frontend sends the same few documents
    /// over and over, and copying a parsed document costs a fraction of
    /// parsing it again.
    fn parse(&self, query: &str) -> ServerResult<Checked> {
        if let Some(checked) = self.0.parsed.get(query) {
            return Ok(checked);
        }
        let tokens = self.0.limits.check_text(query)?;
        let document = async_graphql::parser::parse_query(query).map_err(parse_error)?;
        self.0.limits.check(&document)?;
        let checked = Checked {
            document: Arc::new(document),
            weight: estimated_weight(query.len(), tokens),
            heavy: query.len() > PARSE_IN_PLACE_BYTES,
            fast: Arc::default(),
        };
        self.0.parsed.insert(query.to_owned(), checked.clone());
        Ok(checked)
    }
}

/// Memory a parsed document holds. Measured with a counting allocator: 76
/// to 178 bytes of tree per token (positions, names and vectors for every
/// node; the standard introspection query is the densest seen).
fn estimated_weight(text_len: usize, tokens: usize) -> u32 {
    const PARSED_BYTES_PER_TOKEN: usize = 200;
    let bytes = text_len.saturating_add(tokens.saturating_mul(PARSED_BYTES_PER_TOKEN));
    u32::try_from(bytes).unwrap_or(u32::MAX)
}
