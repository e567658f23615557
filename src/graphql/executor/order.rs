//! Puts the fields of async-graphql's responses in the order the document
//! selects them, as the GraphQL spec requires ("ordered by the selection
//! set", CollectFields). async-graphql resolves the fields of a query's
//! objects concurrently and writes each as it completes, so a field that
//! waited on the database (`totalCount`, a page) can come after one
//! selected below it, and the same request can be answered in different
//! orders. Clients that compare, cache or snapshot responses, and the fast
//! path's differential test, need one answer.

use std::collections::HashMap;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition,
    Selection, SelectionSet,
};
use async_graphql::{InputType, Name, Value, Variables};
use indexmap::IndexMap;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// Reorders `data`, the result of `operation_name`'s operation in `document`.
pub fn in_document_order(
    data: &mut Value,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) {
    let Some(operation) = operation(document, operation_name) else {
        return;
    };
    let context = Context {
        fragments: &document.fragments,
        variables,
    };
    reorder(data, &[&operation.selection_set.node], &context);
}

struct Context<'a> {
    fragments: &'a Fragments,
    variables: &'a Variables,
}

fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|o| &o.node)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|o| &o.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Orders `value`'s fields (and those of the objects in it) by where the
/// selection sets `sets` first name them; a response key selected more
/// than once takes every selection set it was selected with below it.
fn reorder(value: &mut Value, sets: &[&SelectionSet], context: &Context) {
    match value {
        Value::List(items) => {
            for item in items {
                reorder(item, sets, context);
            }
        }
        Value::Object(fields) => reorder_object(fields, sets, context),
        _ => {}
    }
}

fn reorder_object(fields: &mut IndexMap<Name, Value>, sets: &[&SelectionSet], context: &Context) {
    let mut keys: Vec<(&Name, Vec<&SelectionSet>)> = Vec::new();
    for set in sets {
        collect(set, context, &mut keys, 0);
    }
    let position = |key: &Name| {
        keys.iter()
            .position(|(k, _)| *k == key)
            .unwrap_or(usize::MAX)
    };
    fields.sort_by(|a, _, b, _| position(a).cmp(&position(b)));
    for (key, below) in &keys {
        if let Some(value) = fields.get_mut(*key)
            && !below.is_empty()
        {
            reorder(value, below, context);
        }
    }
}

/// The response keys of `set` in order, fragments expanded in place, each
/// with the selection sets below it; skipped selections left out. Fragment
/// cycles were refused before execution; `depth` is only a guard.
fn collect<'a>(
    set: &'a SelectionSet,
    context: &Context<'a>,
    keys: &mut Vec<(&'a Name, Vec<&'a SelectionSet>)>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for selection in &set.items {
        if skipped(selection.node.directives(), context.variables) {
            continue;
        }
        match &selection.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let below = &field.node.selection_set.node;
                let index = match keys.iter().position(|(k, _)| *k == key) {
                    Some(index) => index,
                    None => {
                        keys.push((key, Vec::new()));
                        keys.len() - 1
                    }
                };
                if !below.items.is_empty() {
                    keys[index].1.push(below);
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = context.fragments.get(&spread.node.fragment_name.node) {
                    collect(&fragment.node.selection_set.node, context, keys, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(&inline.node.selection_set.node, context, keys, depth + 1);
            }
        }
    }
}

/// Whether `@skip`/`@include` removed a selection, decided as async-graphql
/// decides it before executing: from the request's variables only, and a
/// value that is not a boolean reads as `false`.
fn skipped(directives: &[Positioned<Directive>], variables: &Variables) -> bool {
    directives.iter().any(|directive| {
        let include = match directive.node.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return false,
        };
        directive.node.get_argument("if").is_some_and(|condition| {
            let value = condition
                .node
                .clone()
                .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
                .unwrap_or_default();
            include != bool::parse(Some(value)).unwrap_or_default()
        })
    })
}
