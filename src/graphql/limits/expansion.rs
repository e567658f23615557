//! What an operation amounts to once its fragment spreads are expanded —
//! depth, introspection depth and lists, selections, root fields — computed
//! without expanding: each fragment is summarised once, dependencies first,
//! and cycles are refused.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult};

use crate::error::ErrorCode;

/// The introspection fields that answer a list.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
];

/// Whether a selection set is read as part of an introspection answer
/// (below `__schema` or `__type`) or as the API's own data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Context {
    Regular,
    Introspection,
}

/// The figures of one selection set with every fragment spread expanded.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Summary {
    /// Deepest path of the API's own fields; an introspection field counts 1.
    pub(super) depth: usize,
    /// Deepest path inside an introspection field, counting that field.
    pub(super) introspection_depth: usize,
    /// Most introspection list fields on one path.
    pub(super) introspection_lists: usize,
    /// Fields, spreads and inline fragments, expanded (saturating).
    pub(super) selections: u64,
    /// Fields at this level, through fragments (saturating).
    pub(super) root_fields: u64,
}

pub(super) type Summaries<'a> = HashMap<(&'a Name, Context), Summary>;

pub(super) fn is_introspection_root(name: &str) -> bool {
    matches!(name, "__schema" | "__type")
}

impl Summary {
    /// Summarises `set`, read in `context`; every fragment it spreads must
    /// already be in `fragments` (unknown fragments count as empty:
    /// validation reports them).
    pub(super) fn of(set: &SelectionSet, context: Context, fragments: &Summaries<'_>) -> Self {
        let mut summary = Self::default();
        for item in &set.items {
            let (inner, units, roots) = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let children = &field.node.selection_set.node;
                    let mut inner = if context == Context::Regular && is_introspection_root(name) {
                        let below = Self::of(children, Context::Introspection, fragments);
                        Self {
                            depth: 1,
                            introspection_depth: 1 + below.depth,
                            introspection_lists: below.introspection_lists,
                            selections: below.selections,
                            root_fields: 0,
                        }
                    } else {
                        let below = Self::of(children, context, fragments);
                        Self {
                            depth: 1 + below.depth,
                            ..below
                        }
                    };
                    if context == Context::Introspection {
                        inner.introspection_lists +=
                            usize::from(INTROSPECTION_LISTS.contains(&name));
                    }
                    (inner, 1, 1)
                }
                Selection::InlineFragment(fragment) => {
                    let inner = Self::of(&fragment.node.selection_set.node, context, fragments);
                    (inner, 1, inner.root_fields)
                }
                Selection::FragmentSpread(spread) => {
                    let inner = fragments
                        .get(&(&spread.node.fragment_name.node, context))
                        .copied()
                        .unwrap_or_default();
                    (inner, 1, inner.root_fields)
                }
            };
            summary.depth = summary.depth.max(inner.depth);
            summary.introspection_depth =
                summary.introspection_depth.max(inner.introspection_depth);
            summary.introspection_lists =
                summary.introspection_lists.max(inner.introspection_lists);
            summary.selections = summary
                .selections
                .saturating_add(units)
                .saturating_add(inner.selections);
            summary.root_fields = summary.root_fields.saturating_add(roots);
        }
        summary
    }
}

/// The fragments a selection set spreads directly (through fields and
/// inline fragments, not through other fragments), with the context each
/// is spread in.
fn spreads<'a>(set: &'a SelectionSet, context: Context, out: &mut Vec<(&'a Name, Context)>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let inner = if is_introspection_root(field.node.name.node.as_str()) {
                    Context::Introspection
                } else {
                    context
                };
                spreads(&field.node.selection_set.node, inner, out);
            }
            Selection::InlineFragment(fragment) => {
                spreads(&fragment.node.selection_set.node, context, out)
            }
            Selection::FragmentSpread(spread) => {
                out.push((&spread.node.fragment_name.node, context))
            }
        }
    }
}

/// Summarises every fragment in every context it is used in, each once,
/// dependencies first, without recursion through spreads (a chain of
/// thousands of fragments must not exhaust the stack). Refuses cycles.
pub(super) fn summarise_fragments(document: &ExecutableDocument) -> ServerResult<Summaries<'_>> {
    enum State<'a> {
        Visiting(Vec<(&'a Name, Context)>),
        Done,
    }
    let mut summaries: Summaries<'_> = HashMap::new();
    let mut states: HashMap<(&Name, Context), State<'_>> = HashMap::new();
    let natural_context = |name: &str| {
        if name.starts_with("__") {
            Context::Introspection
        } else {
            Context::Regular
        }
    };
    let mut roots: Vec<(&Name, Context)> = document
        .fragments
        .iter()
        .map(|(name, f)| (name, natural_context(&f.node.type_condition.node.on.node)))
        .collect();
    for (_, operation) in document.operations.iter() {
        spreads(
            &operation.node.selection_set.node,
            Context::Regular,
            &mut roots,
        );
    }

    for root in roots {
        if states.contains_key(&root) || !document.fragments.contains_key(root.0) {
            continue;
        }
        let mut path = vec![root];
        while let Some(&key) = path.last() {
            let fragment = &document.fragments[key.0];
            let state = states.entry(key).or_insert_with(|| {
                let mut pending = Vec::new();
                spreads(&fragment.node.selection_set.node, key.1, &mut pending);
                State::Visiting(pending)
            });
            let next = match state {
                State::Visiting(pending) => pending.pop(),
                State::Done => None,
            };
            match next {
                Some(dependency) if !document.fragments.contains_key(dependency.0) => {}
                Some(dependency) => match states.get(&dependency) {
                    Some(State::Done) => {}
                    Some(State::Visiting(_)) => {
                        return Err(cycle_error(&path, dependency.0));
                    }
                    None => path.push(dependency),
                },
                None => {
                    let summary = Summary::of(&fragment.node.selection_set.node, key.1, &summaries);
                    summaries.insert(key, summary);
                    states.insert(key, State::Done);
                    path.pop();
                }
            }
        }
    }
    Ok(summaries)
}

fn cycle_error(path: &[(&Name, Context)], again: &Name) -> ServerError {
    let start = path
        .iter()
        .position(|(name, _)| *name == again)
        .unwrap_or(0);
    let mut names: Vec<&str> = path[start..]
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    names.push(again.as_str());
    let mut error = ServerError::new(
        format!(
            "fragment \"{}\" spreads itself ({}); fragments must not form cycles",
            again,
            names.join(" → ")
        ),
        None,
    );
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", ErrorCode::BadUserInput.as_str());
    error
}
