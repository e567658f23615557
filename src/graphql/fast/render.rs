//! Builds the response's values from rows, field by field as the plan
//! selects them, with the conversions async-graphql's resolvers use.

use std::collections::HashMap;

use async_graphql::{InputType, Name, ScalarType, Value};
use indexmap::IndexMap;
use uuid::Uuid;

use super::Run;
use super::plan::{AgentField, ConnectionField, CustomerField, EdgeField, Entry, PageInfoField};
use crate::auth::{Permission, Principal};
use crate::db::models::agent::AgentRow;
use crate::db::models::customer::CustomerRow;
use crate::graphql::pagination::encode_cursor;
use crate::service::customers::{CustomerStatus, WebhookMethod};
use crate::service::pagination::Page as Rows;

/// Guest agents by customer id; `None` for a customer without one.
pub type Guests = HashMap<Uuid, Option<AgentRow>>;

/// A page of customers and what its fields need beyond the rows.
pub struct Page<'a> {
    pub rows: &'a Rows<CustomerRow>,
    pub guests: &'a Guests,
    pub total: Option<i64>,
    pub principal: &'a Principal,
}

/// What a selection needs loaded before it renders.
#[derive(Default)]
pub struct Needs {
    pub guests: bool,
    pub total_count: bool,
}

impl Needs {
    pub fn of_connection(run: &Run, selection: &[Entry<ConnectionField>]) -> Option<Self> {
        let mut needs = Self::default();
        for entry in selection {
            if run.skipped(&entry.conditions)? {
                continue;
            }
            match &entry.field {
                ConnectionField::TotalCount => needs.total_count = true,
                ConnectionField::Nodes(node) => needs.guests |= Self::of_customer(run, node)?,
                ConnectionField::Edges(edge) => {
                    for entry in edge {
                        if let EdgeField::Node(node) = &entry.field
                            && !run.skipped(&entry.conditions)?
                        {
                            needs.guests |= Self::of_customer(run, node)?;
                        }
                    }
                }
                ConnectionField::Typename | ConnectionField::PageInfo(_) => {}
            }
        }
        Some(needs)
    }

    /// Whether a customer's selection reads its guest agent.
    pub fn of_customer(run: &Run, selection: &[Entry<CustomerField>]) -> Option<bool> {
        for entry in selection {
            if matches!(entry.field, CustomerField::GuestAgent(_))
                && !run.skipped(&entry.conditions)?
            {
                return Some(true);
            }
        }
        Some(false)
    }
}

/// An object of the fields `selection` keeps, each resolved by `resolve`,
/// merged as async-graphql merges repeated response keys.
fn object<F>(
    run: &Run,
    selection: &[Entry<F>],
    mut resolve: impl FnMut(&F) -> Option<Value>,
) -> Option<Value> {
    let mut fields = IndexMap::with_capacity(selection.len());
    for entry in selection {
        if !entry.conditions.is_empty() && run.skipped(&entry.conditions)? {
            continue;
        }
        insert_value(&mut fields, entry.key.clone(), resolve(&entry.field)?);
    }
    // async-graphql answers an object whose every field was skipped with null.
    Some(if fields.is_empty() {
        Value::Null
    } else {
        Value::Object(fields)
    })
}

/// async-graphql's rule for a response key selected more than once: the
/// first value stays; objects (and the objects of lists, by position)
/// merge their fields into it.
pub fn insert_value(fields: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    let Some(existing) = fields.get_mut(&key) else {
        fields.insert(key, value);
        return;
    };
    match (existing, value) {
        (Value::Object(existing), Value::Object(more)) => merge(existing, more),
        (Value::List(existing), Value::List(more)) => {
            for (existing, more) in existing.iter_mut().zip(more) {
                if let (Value::Object(existing), Value::Object(more)) = (existing, more) {
                    merge(existing, more);
                }
            }
        }
        _ => {}
    }
}

fn merge(existing: &mut IndexMap<Name, Value>, more: IndexMap<Name, Value>) {
    for (key, value) in more {
        insert_value(existing, key, value);
    }
}

pub fn connection(run: &Run, selection: &[Entry<ConnectionField>], page: &Page) -> Option<Value> {
    let rows = &page.rows.items;
    object(run, selection, |field| match field {
        ConnectionField::Typename => Some(typename("CustomerConnection")),
        ConnectionField::TotalCount => Some(Value::from(page.total?)),
        ConnectionField::Edges(edge) => rows
            .iter()
            .map(|row| {
                object(run, edge, |field| match field {
                    EdgeField::Typename => Some(typename("CustomerEdge")),
                    EdgeField::Cursor => Some(Value::String(encode_cursor(row.page_key()))),
                    EdgeField::Node(node) => customer(run, node, row, page.guests, page.principal),
                })
            })
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        ConnectionField::Nodes(node) => rows
            .iter()
            .map(|row| customer(run, node, row, page.guests, page.principal))
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        ConnectionField::PageInfo(info) => {
            let cursor = |row: Option<&CustomerRow>| {
                row.map_or(Value::Null, |row| {
                    Value::String(encode_cursor(row.page_key()))
                })
            };
            object(run, info, |field| {
                Some(match field {
                    PageInfoField::Typename => typename("PageInfo"),
                    PageInfoField::HasPreviousPage => Value::Boolean(page.rows.has_previous_page),
                    PageInfoField::HasNextPage => Value::Boolean(page.rows.has_next_page),
                    PageInfoField::StartCursor => cursor(rows.first()),
                    PageInfoField::EndCursor => cursor(rows.last()),
                })
            })
        }
    })
}

pub fn customer(
    run: &Run,
    selection: &[Entry<CustomerField>],
    row: &CustomerRow,
    guests: &Guests,
    principal: &Principal,
) -> Option<Value> {
    object(run, selection, |field| {
        Some(match field {
            CustomerField::Typename => typename("Customer"),
            CustomerField::Id => ScalarType::to_value(&row.id),
            CustomerField::Username => Value::String(row.username.clone()),
            CustomerField::Name => Value::String(row.name.clone()),
            CustomerField::Detail => Value::String(row.detail.clone()),
            CustomerField::WebhookMethod => {
                optional(WebhookMethod::of(row).as_ref(), InputType::to_value)
            }
            CustomerField::WebhookUri => Value::String(row.webhook_uri.clone()),
            CustomerField::PermissionIds => Value::List(
                row.permission_ids
                    .iter()
                    .flatten()
                    .map(ScalarType::to_value)
                    .collect(),
            ),
            CustomerField::TmCreate => ScalarType::to_value(&row.tm_create),
            CustomerField::TmUpdate => optional(row.tm_update.as_ref(), ScalarType::to_value),
            CustomerField::TmDelete => optional(row.tm_delete.as_ref(), ScalarType::to_value),
            CustomerField::TmFreeze => optional(row.tm_freeze.as_ref(), ScalarType::to_value),
            CustomerField::Status => InputType::to_value(&CustomerStatus::of(row)),
            CustomerField::LineSecret => {
                principal.require_customer_reader(row.id).ok()?;
                Value::String(row.line_secret.clone())
            }
            CustomerField::LineToken => {
                principal.require_customer_reader(row.id).ok()?;
                Value::String(row.line_token.clone())
            }
            CustomerField::WebhookSecret => {
                principal.require_customer_admin(row.id).ok()?;
                Value::String(row.webhook_secret.clone())
            }
            CustomerField::GuestAgent(selection) => match guests.get(&row.id)? {
                Some(agent) => self::agent(run, selection, agent)?,
                None => Value::Null,
            },
        })
    })
}

fn agent(run: &Run, selection: &[Entry<AgentField>], row: &AgentRow) -> Option<Value> {
    object(run, selection, |field| {
        Some(match field {
            AgentField::Typename => typename("Agent"),
            AgentField::Id => ScalarType::to_value(&row.id),
            AgentField::CustomerId => ScalarType::to_value(&row.customer_id),
            AgentField::Username => Value::String(row.username.clone()),
            AgentField::Name => Value::String(row.name.clone()),
            AgentField::Detail => Value::String(row.detail.clone()),
            AgentField::Permission => Value::from(row.permission),
            AgentField::Permissions => Value::List(
                Permission::from_mask(row.permission)
                    .iter()
                    .map(InputType::to_value)
                    .collect(),
            ),
            AgentField::TmCreate => ScalarType::to_value(&row.tm_create),
            AgentField::TmUpdate => optional(row.tm_update.as_ref(), ScalarType::to_value),
            AgentField::TmDelete => optional(row.tm_delete.as_ref(), ScalarType::to_value),
        })
    })
}

fn typename(name: &str) -> Value {
    Value::String(name.to_owned())
}

fn optional<T>(value: Option<&T>, convert: impl FnOnce(&T) -> Value) -> Value {
    value.map_or(Value::Null, convert)
}
