//! One log line and one set of metrics per GraphQL operation: which
//! operation (named by the schema fields it selects, so clients cannot blow
//! up the label set), how it ended, and how long it took. Variables are
//! never logged: they carry passwords.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};

use crate::metrics::Metrics;

pub struct Observe(pub Metrics);

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObservedRequest {
            metrics: self.0.clone(),
            operations: Mutex::default(),
            selected: Mutex::default(),
        })
    }
}

/// An operation of the document, as `(name, label)`.
type Summary = (Option<String>, String);

struct ObservedRequest {
    metrics: Metrics,
    operations: Mutex<Vec<Summary>>,
    selected: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for ObservedRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let start = Instant::now();
        let response = next.run(ctx).await;
        let elapsed = start.elapsed();
        let operation = lock(&self.selected)
            .clone()
            .unwrap_or_else(|| "invalid".to_owned());
        let outcome = response
            .errors
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|ext| ext.get("code"))
            .map_or_else(
                || "ok".to_owned(),
                |code| code.to_string().trim_matches('"').to_owned(),
            );
        self.metrics
            .record_operation(&operation, &outcome, elapsed.as_secs_f64());
        tracing::info!(
            operation,
            outcome,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            errors = response.errors.len(),
            "graphql operation"
        );
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *lock(&self.operations) = summarize(ctx, &document);
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let label = {
            let operations = lock(&self.operations);
            match operation_name {
                Some(name) => operations
                    .iter()
                    .find(|(n, _)| n.as_deref() == Some(name))
                    .map(|(_, label)| label.clone()),
                None if operations.len() == 1 => Some(operations[0].1.clone()),
                None => None,
            }
        };
        *lock(&self.selected) = label;
        next.run(ctx, operation_name).await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Labels like `query customers` or `mutation login`, made only of root
/// field names the schema defines.
fn summarize(ctx: &ExtensionContext<'_>, document: &ExecutableDocument) -> Vec<Summary> {
    let registry = &ctx.schema_env.registry;
    document
        .operations
        .iter()
        .map(|(name, operation)| {
            let (kind, root) = match operation.node.ty {
                OperationType::Query => ("query", Some(registry.query_type.as_str())),
                OperationType::Mutation => ("mutation", registry.mutation_type.as_deref()),
                OperationType::Subscription => {
                    ("subscription", registry.subscription_type.as_deref())
                }
            };
            let root = root.and_then(|name| registry.types.get(name));
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
                .filter(|field| {
                    field.starts_with("__")
                        || root.is_some_and(|t| t.field_by_name(field).is_some())
                })
                .collect();
            fields.sort_unstable();
            fields.dedup();
            let label = if fields.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind} {}", fields.join("+"))
            };
            (name.map(|n| n.to_string()), label)
        })
        .collect()
}
