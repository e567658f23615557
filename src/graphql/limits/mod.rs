//! Limits on what one document may ask for, checked by `GraphqlExecutor`
//! before async-graphql validates or executes anything, so that a refused
//! document costs no resolver work, and every refusal carries
//! `extensions.limit`.
//!
//! Two passes, each linear in the size of the document:
//! - `scan` reads the text before the parser does: bracket nesting (the
//!   parser recurses on nested values and list types without a bound) and
//!   token count.
//! - `DocumentLimits::check` reads the parsed document. Fragments are
//!   summarised once each, in dependency order, and cycles are refused
//!   first: a walk that follows every spread again expands
//!   `fragment F0 { ...F1 ...F1 } … F30` into 2^30 selections, and
//!   async-graphql's own passes (its recursion-depth check and the
//!   complexity visitor) do exactly that, so the expanded size of an
//!   operation is bounded here, before they run.
//!
//! Depth does not count what is inside `__schema` and `__type`: the standard
//! introspection query of GraphiQL, codegen and Postman nests `ofType` nine
//! levels deep, and each level is a trivial lookup. Introspection has bounds
//! of its own instead (depth, and how many list fields nest), since lists
//! inside lists (`types { fields { type { fields …`) multiply the answer.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult};

mod expansion;

use expansion::{Context, Summary, is_introspection_root, summarise_fragments};

use super::scan;
use crate::error::ErrorCode;

/// Deepest path inside `__schema`/`__type`, counted from that field. The
/// standard introspection query reaches 15.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Most introspection list fields on one path: the standard query has
/// `types { fields { args … } }`, three.
pub const MAX_INTROSPECTION_LISTS: usize = 3;
/// Which limit refused a document, as `extensions.limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Depth,
    Complexity,
    Aliases,
    RootFields,
    Introspection,
    IntrospectionDepth,
    Nesting,
    Tokens,
    Selections,
    Batch,
    BodySize,
    /// A mutation in a request that must not change anything (GET).
    MutationOverGet,
    /// More operations at once on one WebSocket than it may run.
    Subscriptions,
}

impl Limit {
    const ALL: [Self; 13] = [
        Self::Depth,
        Self::Complexity,
        Self::Aliases,
        Self::RootFields,
        Self::Introspection,
        Self::IntrospectionDepth,
        Self::Nesting,
        Self::Tokens,
        Self::Selections,
        Self::Batch,
        Self::BodySize,
        Self::MutationOverGet,
        Self::Subscriptions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depth => "DEPTH",
            Self::Complexity => "COMPLEXITY",
            Self::Aliases => "ALIASES",
            Self::RootFields => "ROOT_FIELDS",
            Self::Introspection => "INTROSPECTION",
            Self::IntrospectionDepth => "INTROSPECTION_DEPTH",
            Self::Nesting => "NESTING",
            Self::Tokens => "TOKENS",
            Self::Selections => "SELECTIONS",
            Self::Batch => "BATCH",
            Self::BodySize => "BODY_SIZE",
            Self::MutationOverGet => "MUTATION_OVER_GET",
            Self::Subscriptions => "SUBSCRIPTIONS",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|limit| limit.as_str() == name)
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
    pub max_nesting: usize,
    pub max_tokens: usize,
    pub max_selections: usize,
    pub introspection: bool,
}

impl DocumentLimits {
    /// The checks on the text, before it is parsed; answers the number of tokens.
    pub fn check_text(&self, text: &str) -> ServerResult<usize> {
        let shape = scan::scan(text, self.max_nesting, self.max_tokens);
        if shape.nesting > self.max_nesting {
            return Err(Limit::Nesting.error(format!(
                "the document nests brackets more than {} levels deep",
                self.max_nesting
            )));
        }
        if shape.tokens > self.max_tokens {
            return Err(Limit::Tokens.error(format!(
                "the document has more than {} tokens",
                self.max_tokens
            )));
        }
        Ok(shape.tokens)
    }

    /// The checks on the parsed document, before validation.
    pub fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let fragments = summarise_fragments(document)?;
        let all_sets = || {
            document
                .operations
                .iter()
                .map(|(_, op)| &op.node.selection_set.node)
                .chain(
                    document
                        .fragments
                        .values()
                        .map(|f| &f.node.selection_set.node),
                )
        };

        if !self.introspection && all_sets().any(asks_for_introspection) {
            return Err(Limit::Introspection.error("introspection is disabled on this server"));
        }
        let aliases: usize = all_sets().map(count_aliases).sum();
        if aliases > self.max_aliases {
            return Err(Limit::Aliases.error(format!(
                "the document uses {aliases} aliases; at most {} are allowed",
                self.max_aliases
            )));
        }
        for (_, operation) in document.operations.iter() {
            let summary = Summary::of(
                &operation.node.selection_set.node,
                Context::Regular,
                &fragments,
            );
            self.check_summary(&summary, Context::Regular)?;
            if summary.root_fields > self.max_root_fields as u64 {
                return Err(Limit::RootFields.error(format!(
                    "an operation selects {} root fields; at most {} are allowed",
                    summary.root_fields, self.max_root_fields
                )));
            }
        }
        // Fragments no operation uses are bounded too: validation walks them.
        for ((_, context), summary) in &fragments {
            self.check_summary(summary, *context)?;
        }
        Ok(())
    }

    /// The bounds that hold for an operation and for each of its parts.
    fn check_summary(&self, summary: &Summary, context: Context) -> ServerResult<()> {
        // Read inside introspection, a part's depth is introspection depth.
        let (depth, introspection_depth) = match context {
            Context::Regular => (summary.depth, summary.introspection_depth),
            Context::Introspection => (0, summary.depth),
        };
        if summary.selections > self.max_selections as u64 {
            return Err(Limit::Selections.error(format!(
                "an operation expands to {} selections once its fragments are spread; at most {} are allowed",
                summary.selections, self.max_selections
            )));
        }
        if depth > self.max_depth {
            return Err(Limit::Depth.error(format!(
                "the query nests {depth} levels deep; at most {} are allowed",
                self.max_depth
            )));
        }
        if introspection_depth > MAX_INTROSPECTION_DEPTH {
            return Err(Limit::IntrospectionDepth.error(format!(
                "the introspection query nests {introspection_depth} levels deep; at most {MAX_INTROSPECTION_DEPTH} are allowed"
            )));
        }
        if summary.introspection_lists > MAX_INTROSPECTION_LISTS {
            return Err(Limit::IntrospectionDepth.error(format!(
                "the introspection query nests {} list fields in one another; at most {MAX_INTROSPECTION_LISTS} are allowed",
                summary.introspection_lists
            )));
        }
        Ok(())
    }
}

fn asks_for_introspection(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            is_introspection_root(field.node.name.node.as_str())
                || asks_for_introspection(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => {
            asks_for_introspection(&fragment.node.selection_set.node)
        }
        Selection::FragmentSpread(_) => false,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_depth: 12,
        max_aliases: 30,
        max_root_fields: 20,
        max_nesting: 32,
        max_tokens: 10_000,
        max_selections: 2_000,
        introspection: true,
    };

    fn refusal(query: &str) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        LIMITS.check(&document).err().map(|e| {
            e.extensions
                .and_then(|ext| ext.get("limit").map(|v| v.to_string()))
                .unwrap_or(e.message)
        })
    }

    #[test]
    fn cycles_are_refused_whatever_their_length() {
        for query in [
            "query { ...A } fragment A on Query { ...A ...A ...A }",
            "{ ...A } fragment A on Query { a { ...B } } fragment B on T { ...C } fragment C on T { ...A }",
            "{ a } fragment U on Query { ...U }",
        ] {
            let refusal = refusal(query).expect("refused");
            assert!(refusal.contains("cycles"), "{query}: {refusal}");
        }
    }

    #[test]
    fn exponential_expansion_is_measured_without_expanding() {
        let mut query = String::from("query { ...F0 }");
        for i in 0..30 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        query.push_str(" fragment F30 on Query { __typename }");
        assert_eq!(refusal(&query).as_deref(), Some("\"SELECTIONS\""));
    }

    #[test]
    fn long_fragment_chains_do_not_recurse() {
        let n = 50_000;
        let mut query = String::from("{ me { ...F0 } }");
        for i in 0..n {
            query.push_str(&format!(" fragment F{i} on Me {{ ...F{} }}", i + 1));
        }
        query.push_str(&format!(" fragment F{n} on Me {{ permissions }}"));
        assert_eq!(refusal(&query).as_deref(), Some("\"SELECTIONS\""));
    }

    #[test]
    fn figures_through_fragments_match_the_inlined_document() {
        let query =
            "{ a { ...X } } fragment X on T { b { c { d } } ...Y } fragment Y on T { e: f }";
        let document = async_graphql::parser::parse_query(query).unwrap();
        let fragments = summarise_fragments(&document).unwrap();
        let (_, op) = document.operations.iter().next().unwrap();
        let summary = Summary::of(&op.node.selection_set.node, Context::Regular, &fragments);
        assert_eq!(summary.depth, 4);
        assert_eq!(summary.root_fields, 1);
        // a, ...X, b, c, d, ...Y, f
        assert_eq!(summary.selections, 7);
    }

    #[test]
    fn introspection_is_bounded_on_its_own() {
        let mut of_type = String::from("name");
        for _ in 0..40 {
            of_type = format!("ofType {{ {of_type} }}");
        }
        let deep = format!("{{ __type(name: \"Customer\") {{ {of_type} }} }}");
        assert_eq!(refusal(&deep).as_deref(), Some("\"INTROSPECTION_DEPTH\""));
        let lists =
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert_eq!(refusal(lists).as_deref(), Some("\"INTROSPECTION_DEPTH\""));
        let through_fragment = "{ __schema { types { ...T } } } fragment T on __Type { fields { type { fields { type { fields { name } } } } } }";
        assert_eq!(
            refusal(through_fragment).as_deref(),
            Some("\"INTROSPECTION_DEPTH\"")
        );
        assert_eq!(
            refusal("{ __schema { types { fields { args { name } } } } }"),
            None
        );
    }
}
