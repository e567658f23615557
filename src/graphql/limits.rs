//! Limits on what one document may ask for, checked by `GraphqlExecutor`
//! right after parsing so that a refused document costs no resolver work.
//! async-graphql checks complexity itself (see `build_schema`); this checks
//! depth, aliases, root fields and introspection, and tags every refusal
//! with `extensions.limit`.
//!
//! Depth is ours rather than async-graphql's because introspection must not
//! count: the standard introspection query of GraphiQL, codegen and Postman
//! nests `ofType` nine levels deep, and each level is a trivial lookup.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult};

use crate::error::ErrorCode;

/// Which limit refused a document, as `extensions.limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Depth,
    Complexity,
    Aliases,
    RootFields,
    Introspection,
    Batch,
    BodySize,
    /// A mutation in a request that must not change anything (GET).
    MutationOverGet,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depth => "DEPTH",
            Self::Complexity => "COMPLEXITY",
            Self::Aliases => "ALIASES",
            Self::RootFields => "ROOT_FIELDS",
            Self::Introspection => "INTROSPECTION",
            Self::Batch => "BATCH",
            Self::BodySize => "BODY_SIZE",
            Self::MutationOverGet => "MUTATION_OVER_GET",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Depth,
            Self::Complexity,
            Self::Aliases,
            Self::RootFields,
            Self::Introspection,
            Self::Batch,
            Self::BodySize,
            Self::MutationOverGet,
        ]
        .into_iter()
        .find(|limit| limit.as_str() == name)
    }

    /// The refusal as a GraphQL error: `BAD_USER_INPUT`, tagged with the limit.
    pub fn error(self, message: impl Into<String>) -> ServerError {
        let mut error = ServerError::new(message, None);
        tag(&mut error, self);
        error
    }

    /// async-graphql's own refusals, recognised by their fixed messages.
    pub fn of_validation_message(message: &str) -> Option<Self> {
        match message {
            "Query is too complex." => Some(Self::Complexity),
            _ => None,
        }
    }
}

pub fn tag(error: &mut ServerError, limit: Limit) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", ErrorCode::BadUserInput.as_str());
    extensions.set("limit", limit.as_str());
}

#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    pub max_depth: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub introspection: bool,
}

impl DocumentLimits {
    pub fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let operations: Vec<&SelectionSet> = document
            .operations
            .iter()
            .map(|(_, op)| &op.node.selection_set.node)
            .collect();
        let fragments: Vec<&SelectionSet> = document
            .fragments
            .values()
            .map(|f| &f.node.selection_set.node)
            .collect();
        let all = || operations.iter().chain(fragments.iter()).copied();

        if !self.introspection && all().any(asks_for_introspection) {
            return Err(Limit::Introspection.error("introspection is disabled on this server"));
        }
        for operation in &operations {
            let depth = depth(operation, document, 0);
            if depth > self.max_depth {
                return Err(Limit::Depth.error(format!(
                    "the query nests {depth} levels deep; at most {} are allowed",
                    self.max_depth
                )));
            }
        }
        let aliases: usize = all().map(count_aliases).sum();
        if aliases > self.max_aliases {
            return Err(Limit::Aliases.error(format!(
                "the document uses {aliases} aliases; at most {} are allowed",
                self.max_aliases
            )));
        }
        for operation in &operations {
            let roots = count_root_fields(operation, document, 0);
            if roots > self.max_root_fields {
                return Err(Limit::RootFields.error(format!(
                    "an operation selects {roots} root fields; at most {} are allowed",
                    self.max_root_fields
                )));
            }
        }
        Ok(())
    }
}

fn asks_for_introspection(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            matches!(field.node.name.node.as_str(), "__schema" | "__type")
                || asks_for_introspection(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => {
            asks_for_introspection(&fragment.node.selection_set.node)
        }
        Selection::FragmentSpread(_) => false,
    })
}

/// How deep a selection set nests, through fragments, not counting what is
/// inside `__schema` and `__type`. Fragment cycles are rejected later by
/// validation; the bound on fragment hops keeps this finite until then.
fn depth(set: &SelectionSet, document: &ExecutableDocument, fragment_hops: usize) -> usize {
    if fragment_hops > 32 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                if matches!(field.node.name.node.as_str(), "__schema" | "__type") {
                    1
                } else {
                    1 + depth(&field.node.selection_set.node, document, fragment_hops)
                }
            }
            Selection::InlineFragment(fragment) => {
                depth(&fragment.node.selection_set.node, document, fragment_hops)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    depth(&f.node.selection_set.node, document, fragment_hops + 1)
                }),
        })
        .max()
        .unwrap_or(0)
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some())
                    + count_aliases(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => count_aliases(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Root fields of an operation, counting through fragments spread at the
/// root (with a bound on nesting, since cyclic fragments are only rejected
/// later, by validation).
fn count_root_fields(set: &SelectionSet, document: &ExecutableDocument, nesting: usize) -> usize {
    if nesting > 8 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                count_root_fields(&fragment.node.selection_set.node, document, nesting + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    count_root_fields(&f.node.selection_set.node, document, nesting + 1)
                }),
        })
        .sum()
}
