//! How operations are named in logs and metrics: only names the schema
//! knows, and client-chosen names only when they are plain GraphQL names.

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};

use crate::graphql::ApiSchema;

/// The client's `operationName` as it may appear in a log line: a GraphQL
/// name (letters, digits, `_`) of at most 64 characters, else `"invalid"`.
/// It is what people search logs for, and it is chosen by the client.
pub(super) fn loggable_operation_name(name: Option<&str>) -> Option<&str> {
    let name = name?;
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    Some(if valid { name } else { "invalid" })
}

/// The root fields the schema defines, so that operation labels are made
/// only of names the schema knows and clients cannot blow up the label set.
pub(super) struct RootFields {
    query: Vec<String>,
    mutation: Vec<String>,
    subscription: Vec<String>,
}

impl RootFields {
    pub(super) fn of(schema: &ApiSchema) -> Self {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let mut roots = Self {
            query: Vec::new(),
            mutation: Vec::new(),
            subscription: Vec::new(),
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
                "Subscription" => roots.subscription.extend(names),
                _ => {}
            }
        }
        roots
    }

    /// Labels like `query customers` or `mutation login`.
    pub(super) fn label(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
    ) -> String {
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
            OperationType::Subscription => ("subscription", &self.subscription),
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
