//! Which of a plan's fields one request keeps, and how a response key
//! selected more than once comes together, by async-graphql's rules.
//!
//! async-graphql resolves every occurrence of a key and merges the values:
//! objects (and the objects of lists, by position) take the fields of the
//! other occurrences, recursively. So the value of a key is its first
//! field's, read once, with the selections of all its occurrences one after
//! the other, as the spec's CollectFields has it.
//!
//! One case is the engine's own: an object whose fields were all skipped
//! is null, and a null merged with an object stays whichever came first —
//! in the order the occurrences finished resolving, which depends on the
//! database. A key selected more than once where one occurrence keeps no
//! field is left to the general path; a key selected once that keeps none
//! is null.

use async_graphql::Name;

use super::Run;
use super::plan::{ConnectionField, CustomerField, EdgeField, Selection};

/// The keys one object keeps for this request, in document order, each
/// with every field selected under it; `None` when it keeps no field
/// (async-graphql answers null for it).
pub type Kept<'s, F> = Option<Vec<(&'s Name, Vec<&'s F>)>>;

/// What an object with these selections keeps; `None` (give up) for a
/// condition the fast path does not decide, or an occurrence of a repeated
/// key that keeps nothing.
pub fn kept<'s, F>(run: &Run, selections: &[&'s Selection<F>]) -> Option<Kept<'s, F>> {
    let mut keys: Vec<(&Name, Vec<&F>)> = Vec::new();
    for selection in selections {
        let mut kept_any = false;
        for entry in &selection.entries {
            if !entry.conditions.is_empty() && run.skipped(&entry.conditions)? {
                continue;
            }
            kept_any = true;
            match keys.iter_mut().find(|(key, _)| *key == &entry.key) {
                Some((_, fields)) => fields.push(&entry.field),
                None => keys.push((&entry.key, vec![&entry.field])),
            }
        }
        if !kept_any {
            return match selections.len() {
                1 => Some(None),
                _ => None,
            };
        }
    }
    Some(Some(keys))
}

/// The selections below a key's fields, one per occurrence; without an
/// allocation for the usual single one.
pub enum Below<'s, C> {
    One(&'s Selection<C>),
    Many(Vec<&'s Selection<C>>),
}

impl<'s, C> Below<'s, C> {
    /// `pick` gives a field's selection; the plan puts only one kind of
    /// field under a key, so it never refuses one but the first.
    pub fn of<F>(
        fields: &[&'s F],
        pick: impl Fn(&'s F) -> Option<&'s Selection<C>>,
    ) -> Option<Self> {
        match fields {
            [field] => pick(field).map(Self::One),
            fields => fields
                .iter()
                .map(|f| pick(f))
                .collect::<Option<_>>()
                .map(Self::Many),
        }
    }

    pub fn as_slice(&self) -> &[&'s Selection<C>] {
        match self {
            Self::One(selection) => std::slice::from_ref(selection),
            Self::Many(selections) => selections,
        }
    }
}

/// What a page's selection needs read before it is written. Fields that
/// are not kept may still count (a later occurrence of a key whose first
/// keeps nothing): that costs a read, never a wrong answer.
#[derive(Default)]
pub struct Needs {
    pub guests: bool,
    pub total_count: bool,
}

impl Needs {
    pub fn of_connection(run: &Run, selections: &[&Selection<ConnectionField>]) -> Option<Self> {
        let mut needs = Self::default();
        for entry in selections.iter().flat_map(|s| &s.entries) {
            if run.skipped(&entry.conditions)? {
                continue;
            }
            match &entry.field {
                ConnectionField::TotalCount => needs.total_count = true,
                ConnectionField::Nodes(node) => needs.guests |= Self::of_customer(run, &[node])?,
                ConnectionField::Edges(edge) => {
                    for entry in &edge.entries {
                        if let EdgeField::Node(node) = &entry.field
                            && !run.skipped(&entry.conditions)?
                        {
                            needs.guests |= Self::of_customer(run, &[node])?;
                        }
                    }
                }
                ConnectionField::Typename | ConnectionField::PageInfo(_) => {}
            }
        }
        Some(needs)
    }

    /// Whether a customer's selections read its guest agent.
    pub fn of_customer(run: &Run, selections: &[&Selection<CustomerField>]) -> Option<bool> {
        for entry in selections.iter().flat_map(|s| &s.entries) {
            if matches!(entry.field, CustomerField::GuestAgent(_))
                && !run.skipped(&entry.conditions)?
            {
                return Some(true);
            }
        }
        Some(false)
    }
}
