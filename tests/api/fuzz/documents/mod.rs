//! GraphQL documents. Most are operations built from the schema's own root
//! fields, arguments and output types, decorated the way real and hostile
//! clients write them: named fragments (spread more than once), inline
//! fragments with and without type conditions, `@include`/`@skip` with
//! literals and variables, unknown directives, aliases, comments, block
//! strings, several named operations, variables with defaults and list
//! types. The other families aim at the limits: deep selections (braces,
//! inline fragments, fragment chains), deep literals (up to 120,000 levels),
//! fragment cycles and exponential fan-out, documents at MAX_TOKENS and at
//! MAX_BODY_BYTES, aliases and root fields around their caps, introspection
//! depth, brackets hidden in strings and comments, and plain garbage.
//! Where the outcome is determined by the documented limits, the document
//! carries an `Expect`.
//!
//! The parts: `schema` (the schema as far as the fuzzer needs it),
//! `inputs` (values for input positions, shared with the REST bodies),
//! `operations` (operations built from the schema), `shapes` (depth and
//! fragment graphs), `limits` (documents around the size and breadth
//! caps), `hostile` (garbage and secret probes). This file holds what a
//! document is and what the cases draw from.

mod hostile;
mod inputs;
mod limits;
mod operations;
mod schema;
mod shapes;

use proptest::prelude::*;
use serde_json::Value;

pub use self::inputs::Values;
pub use self::limits::pad_unit;
pub use self::schema::{Ids, In};
use super::values::{clip, scan};

// The server's defaults (README, "Configuration"); the fuzzed server runs with them.
pub const MAX_BODY_BYTES: usize = 262_144;
pub(super) const MAX_QUERY_DEPTH: usize = 12;
pub(super) const MAX_NESTING: usize = 32;
pub(super) const MAX_TOKENS: usize = 10_000;
pub(super) const MAX_SELECTIONS: u64 = 2_000;
pub(super) const MAX_ALIASES: usize = 30;
pub(super) const MAX_ROOT_FIELDS: usize = 20;
pub(super) const MAX_INTROSPECTION_DEPTH: usize = 20;
pub(super) const MAX_INTROSPECTION_LISTS: usize = 3;

/// What the documented limits say must happen to a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Any,
    /// Refused before execution by one of these limits.
    Limit(Vec<&'static str>),
    /// Not refused by any of these limits.
    NotLimit(Vec<&'static str>),
    /// Refused before execution (a fragment cycle, an unknown fragment).
    Refused,
    /// Refused before execution with this code.
    RefusedWith(&'static str),
}

#[derive(Clone)]
pub struct Doc {
    pub family: &'static str,
    pub text: String,
    pub variables: Option<Value>,
    pub operation_name: Option<String>,
    /// Any operation in it is a mutation (GET must then never execute it).
    pub mutation: bool,
    pub expect: Expect,
    /// Fill `⟪pad⟫` so that a POSTed body is MAX_BODY_BYTES plus this.
    pub pad: Option<i64>,
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doc")
            .field("family", &self.family)
            .field("text", &clip(&self.text, 3000))
            .field(
                "variables",
                &self.variables.as_ref().map(|v| clip(&v.to_string(), 3000)),
            )
            .field("operation_name", &self.operation_name)
            .field("mutation", &self.mutation)
            .field("expect", &self.expect)
            .field("pad", &self.pad)
            .finish()
    }
}

impl Doc {
    pub(super) fn plain(family: &'static str, text: String, expect: Expect) -> Self {
        Self {
            family,
            text,
            variables: None,
            operation_name: None,
            mutation: false,
            expect,
            pad: None,
        }
    }
}

/// The expectation for a document that should be refused by its text alone,
/// as the replica of the server's scan sees it, else `otherwise`.
pub(super) fn text_limits(text: &str, otherwise: Expect) -> Expect {
    let (nesting, tokens) = scan(text);
    let mut hit = Vec::new();
    if nesting > MAX_NESTING {
        hit.push("NESTING");
    }
    if tokens > MAX_TOKENS {
        hit.push("TOKENS");
    }
    if hit.is_empty() {
        otherwise
    } else {
        Expect::Limit(hit)
    }
}

/// Any document.
pub fn document() -> BoxedStrategy<Doc> {
    prop_oneof![
        70 => operations::operations(),
        6 => shapes::deep_selection(),
        7 => shapes::deep_literal(),
        8 => shapes::fragment_graph(),
        2 => limits::token_limit(),
        2 => limits::body_near_limit(),
        5 => limits::breadth(),
        3 => limits::introspection(),
        3 => limits::hidden_brackets(),
        6 => hostile::garbage(),
        2 => hostile::secret_probe(),
    ]
    .boxed()
}

/// A document for a batch or a GET: no huge ones.
pub fn small_document() -> BoxedStrategy<Doc> {
    prop_oneof![
        8 => operations::operations(),
        1 => shapes::fragment_graph(),
        1 => hostile::garbage(),
        1 => limits::breadth(),
    ]
    .boxed()
}
