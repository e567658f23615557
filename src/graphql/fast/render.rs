//! Writes the response's JSON straight from the rows, field by field as
//! the plan selects them, with the conversions async-graphql's resolvers
//! use and the bytes its serialisation would write: no value tree between
//! the rows and the body. Repeated keys and `@skip`/`@include` are
//! resolved per request by `select`.

use std::collections::HashMap;

use async_graphql::{InputType, Name, ScalarType, Value};
use uuid::Uuid;

use super::plan::{
    AgentField, ConnectionField, CustomerField, EdgeField, PageInfoField, Selection,
};
use super::select::{Below, kept};
use super::{Loaded, Run};
use crate::auth::{Permission, Principal};
use crate::db::models::agent::AgentRow;
use crate::db::models::customer::CustomerRow;
use crate::graphql::pagination::write_cursor;
use crate::service::customers::{CustomerStatus, WebhookMethod};
use crate::service::pagination::Page as Rows;

/// Guest agents by customer id; `None` for a customer without one.
pub type Guests = HashMap<Uuid, Option<AgentRow>>;

/// A page of customers and what its fields need beyond the rows.
pub struct Page<'a> {
    pub rows: Rows<CustomerRow>,
    pub guests: Guests,
    pub total: Option<i64>,
    pub principal: &'a Principal,
}

/// One customer and what its fields need beyond the row.
pub struct OneCustomer<'a> {
    pub row: CustomerRow,
    pub guests: Guests,
    pub principal: &'a Principal,
}

/// About what one customer takes as JSON with most of its fields and its
/// guest agent: the buffer is sized once rather than grown in steps.
const BYTES_PER_CUSTOMER: usize = 900;

/// The JSON being written. Every method returns `None` when the fast path
/// must give up (the general path then answers instead).
pub struct Json<'a> {
    run: &'a Run<'a>,
    out: Vec<u8>,
}

impl<'a> Json<'a> {
    pub fn new(run: &'a Run<'a>, loaded: &[(&Name, Loaded)]) -> Self {
        let customers: usize = loaded
            .iter()
            .map(|(_, data)| match data {
                Loaded::Page(_, page) => page.rows.items.len(),
                Loaded::Customer(..) => 1,
                Loaded::Typename => 0,
            })
            .sum();
        Self {
            run,
            out: Vec::with_capacity(64 + customers * BYTES_PER_CUSTOMER),
        }
    }

    /// The whole response, `{"data":…}`, as async-graphql serialises a
    /// response without errors or extensions: the HTTP body as it is.
    pub fn response(mut self, loaded: &[(&Name, Loaded)]) -> Option<Vec<u8>> {
        self.out.extend_from_slice(b"{\"data\":");
        self.data(loaded)?;
        self.out.push(b'}');
        Some(self.out)
    }

    /// The response's `data`: each root key kept, with what was read for it.
    fn data(&mut self, loaded: &[(&Name, Loaded)]) -> Option<()> {
        self.out.push(b'{');
        for (index, (key, data)) in loaded.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            self.key(key);
            match data {
                Loaded::Typename => self.str("Query")?,
                Loaded::Page(selections, page) => self.connection(selections.as_slice(), page)?,
                Loaded::Customer(_, None) => self.null(),
                Loaded::Customer(selections, Some(one)) => {
                    self.customer(selections.as_slice(), &one.row, &one.guests, one.principal)?;
                }
            }
        }
        self.out.push(b'}');
        Some(())
    }

    /// An object of the fields its selections keep, each key written by
    /// `field` from the fields selected under it (one, unless repeated).
    fn object<F>(
        &mut self,
        selections: &[&Selection<F>],
        mut field: impl FnMut(&mut Self, &[&F]) -> Option<()>,
    ) -> Option<()> {
        if let [selection] = selections
            && selection.plain
            && !selection.entries.is_empty()
        {
            self.out.push(b'{');
            for (index, entry) in selection.entries.iter().enumerate() {
                if index > 0 {
                    self.out.push(b',');
                }
                self.key(&entry.key);
                field(self, &[&entry.field])?;
            }
            self.out.push(b'}');
            return Some(());
        }
        let Some(keys) = kept(self.run, selections)? else {
            self.null();
            return Some(());
        };
        self.out.push(b'{');
        for (index, (key, fields)) in keys.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            self.key(key);
            field(self, fields)?;
        }
        self.out.push(b'}');
        Some(())
    }

    fn list<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut item: impl FnMut(&mut Self, T) -> Option<()>,
    ) -> Option<()> {
        self.out.push(b'[');
        for (index, value) in items.into_iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            item(self, value)?;
        }
        self.out.push(b']');
        Some(())
    }

    /// A response key: a GraphQL name, which never needs escaping.
    fn key(&mut self, key: &Name) {
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Anything serde writes (strings escaped as serde_json escapes them,
    /// which is how async-graphql's values reach the wire).
    fn serde(&mut self, value: &(impl serde::Serialize + ?Sized)) -> Option<()> {
        serde_json::to_writer(&mut self.out, value).ok()
    }

    /// A value as the resolver's conversion gives it.
    fn value(&mut self, value: &Value) -> Option<()> {
        self.serde(value)
    }

    fn str(&mut self, text: &str) -> Option<()> {
        write_str(&mut self.out, text);
        Some(())
    }

    fn cursor(&mut self, row: &CustomerRow) -> Option<()> {
        self.out.push(b'"');
        write_cursor(row.page_key(), &mut self.out);
        self.out.push(b'"');
        Some(())
    }

    fn uuid(&mut self, id: &Uuid) {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.out.push(b'"');
        self.out
            .extend_from_slice(id.hyphenated().encode_lower(&mut text).as_bytes());
        self.out.push(b'"');
    }

    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    fn scalar(&mut self, value: &impl ScalarType) -> Option<()> {
        self.value(&value.to_value())
    }

    fn optional_scalar(&mut self, value: Option<&impl ScalarType>) -> Option<()> {
        match value {
            Some(value) => self.scalar(value),
            None => {
                self.null();
                Some(())
            }
        }
    }

    fn connection(
        &mut self,
        selections: &[&Selection<ConnectionField>],
        page: &Page,
    ) -> Option<()> {
        let rows = &page.rows.items;
        self.object(selections, |json, fields| match fields[0] {
            ConnectionField::Typename => json.str("CustomerConnection"),
            ConnectionField::TotalCount => json.serde(&page.total?),
            ConnectionField::Edges(_) => {
                let edges = Below::of(fields, |f| match f {
                    ConnectionField::Edges(edge) => Some(edge),
                    _ => None,
                })?;
                json.list(rows, |json, row| {
                    json.object(edges.as_slice(), |json, fields| match fields[0] {
                        EdgeField::Typename => json.str("CustomerEdge"),
                        EdgeField::Cursor => json.cursor(row),
                        EdgeField::Node(_) => {
                            let node = Below::of(fields, |f| match f {
                                EdgeField::Node(node) => Some(node),
                                _ => None,
                            })?;
                            json.customer(node.as_slice(), row, &page.guests, page.principal)
                        }
                    })
                })
            }
            ConnectionField::Nodes(_) => {
                let node = Below::of(fields, |f| match f {
                    ConnectionField::Nodes(node) => Some(node),
                    _ => None,
                })?;
                json.list(rows, |json, row| {
                    json.customer(node.as_slice(), row, &page.guests, page.principal)
                })
            }
            ConnectionField::PageInfo(_) => {
                let info = Below::of(fields, |f| match f {
                    ConnectionField::PageInfo(info) => Some(info),
                    _ => None,
                })?;
                let cursor = |json: &mut Self, row: Option<&CustomerRow>| match row {
                    Some(row) => json.cursor(row),
                    None => {
                        json.null();
                        Some(())
                    }
                };
                json.object(info.as_slice(), |json, fields| match fields[0] {
                    PageInfoField::Typename => json.str("PageInfo"),
                    PageInfoField::HasPreviousPage => json.serde(&page.rows.has_previous_page),
                    PageInfoField::HasNextPage => json.serde(&page.rows.has_next_page),
                    PageInfoField::StartCursor => cursor(json, rows.first()),
                    PageInfoField::EndCursor => cursor(json, rows.last()),
                })
            }
        })
    }

    fn customer(
        &mut self,
        selections: &[&Selection<CustomerField>],
        row: &CustomerRow,
        guests: &Guests,
        principal: &Principal,
    ) -> Option<()> {
        self.object(selections, |json, fields| {
            match fields[0] {
                CustomerField::Typename => json.str("Customer")?,
                CustomerField::Id => json.uuid(&row.id),
                CustomerField::Username => json.str(&row.username)?,
                CustomerField::Name => json.str(&row.name)?,
                CustomerField::Detail => json.str(&row.detail)?,
                CustomerField::WebhookMethod => match WebhookMethod::of(row) {
                    Some(method) => json.value(&method.to_value())?,
                    None => json.null(),
                },
                CustomerField::WebhookUri => json.str(&row.webhook_uri)?,
                CustomerField::PermissionIds => {
                    json.list(row.permission_ids.iter().flatten(), |json, id| {
                        json.uuid(id);
                        Some(())
                    })?
                }
                CustomerField::TmCreate => json.scalar(&row.tm_create)?,
                CustomerField::TmUpdate => json.optional_scalar(row.tm_update.as_ref())?,
                CustomerField::TmDelete => json.optional_scalar(row.tm_delete.as_ref())?,
                CustomerField::TmFreeze => json.optional_scalar(row.tm_freeze.as_ref())?,
                CustomerField::Status => json.value(&CustomerStatus::of(row).to_value())?,
                CustomerField::LineSecret => {
                    principal.require_customer_reader(row.id).ok()?;
                    json.str(&row.line_secret)?;
                }
                CustomerField::LineToken => {
                    principal.require_customer_reader(row.id).ok()?;
                    json.str(&row.line_token)?;
                }
                CustomerField::WebhookSecret => {
                    principal.require_customer_admin(row.id).ok()?;
                    json.str(&row.webhook_secret)?;
                }
                CustomerField::GuestAgent(_) => match guests.get(&row.id)? {
                    Some(agent) => {
                        let below = Below::of(fields, |f| match f {
                            CustomerField::GuestAgent(agent) => Some(agent),
                            _ => None,
                        })?;
                        json.agent(below.as_slice(), agent)?;
                    }
                    None => json.null(),
                },
            }
            Some(())
        })
    }

    fn agent(&mut self, selections: &[&Selection<AgentField>], row: &AgentRow) -> Option<()> {
        self.object(selections, |json, fields| {
            match fields[0] {
                AgentField::Typename => json.str("Agent")?,
                AgentField::Id => json.uuid(&row.id),
                AgentField::CustomerId => json.uuid(&row.customer_id),
                AgentField::Username => json.str(&row.username)?,
                AgentField::Name => json.str(&row.name)?,
                AgentField::Detail => json.str(&row.detail)?,
                AgentField::Permission => json.serde(&row.permission)?,
                AgentField::Permissions => json
                    .list(Permission::from_mask(row.permission).iter(), |json, p| {
                        json.value(&p.to_value())
                    })?,
                AgentField::TmCreate => json.scalar(&row.tm_create)?,
                AgentField::TmUpdate => json.optional_scalar(row.tm_update.as_ref())?,
                AgentField::TmDelete => json.optional_scalar(row.tm_delete.as_ref())?,
            }
            Some(())
        })
    }
}

/// A JSON string as serde_json writes it. Most text needs no escaping:
/// that is checked 16 bytes at a time (a loop the compiler vectorises)
/// and copied as it is; anything else is left to serde_json.
fn write_str(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes control characters, `"` and `\`, nothing else.
    let plain = text.as_bytes().chunks(16).all(|chunk| {
        !chunk.iter().fold(false, |escape, &byte| {
            escape | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
        })
    });
    if plain {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::write_str;

    fn written(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "plain",
            "quote \" inside",
            "back\\slash",
            "line\nbreak\ttab\u{1}\u{1f}",
            "\u{7f} DEL and \u{80} and ✓ and \u{1F600}",
            "</script>",
            "exactly sixteen!",
            "seventeen bytes!\"",
        ] {
            assert_eq!(written(text), serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(text in any::<String>()) {
            prop_assert_eq!(written(&text), serde_json::to_vec(&text).unwrap());
        }

        #[test]
        fn ascii_with_control_characters_is_written_as_serde_json_writes_it(
            text in "[\\x00-\\x7f]{0,64}"
        ) {
            prop_assert_eq!(written(&text), serde_json::to_vec(&text).unwrap());
        }
    }
}
