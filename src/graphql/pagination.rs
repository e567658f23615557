//! Relay cursor connections over keyset listings ordered by `(tm_create, id)`,
//! newest first. A cursor is an opaque, URL-safe encoding of a row's key.

use std::future::Future;

use async_graphql::connection::PageInfo;
use async_graphql::{Context, Lookahead, Object, OutputType, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike};
use uuid::Uuid;

use super::context::{principal, state};
use super::events::EventView;
use super::loaders::GuestAgents;
use super::types::{AccessKeyView, CustomerView};
use super::webhooks::{ListedDelivery, WebhookDeliveryView};
use crate::db::models::PageKey;
use crate::db::models::access_key::AccessKeyRow;
use crate::db::models::customer::CustomerRow;
use crate::db::models::event::EventRow;
use crate::error::{AppError, AppResult};
use crate::service;
use crate::service::customers::CustomerFilter;
use crate::service::events::EventFilter;
use crate::service::pagination::{GRAPHQL_DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
use crate::service::webhooks::DeliveryFilter;

const CURSOR_VERSION: &str = "c1";

pub fn encode_cursor(key: PageKey) -> String {
    let mut cursor = Vec::new();
    write_cursor(key, &mut cursor);
    String::from_utf8(cursor).expect("base64 is ASCII")
}

/// Appends the cursor of `key` to `out`, without allocating: a page writes
/// one per row. Its characters never need escaping in JSON.
pub fn write_cursor(key: PageKey, out: &mut Vec<u8>) {
    let mut micros = itoa::Buffer::new();
    let mut id = Uuid::encode_buffer();
    let parts = [
        CURSOR_VERSION.as_bytes(),
        b":",
        micros.format(key.tm_create.timestamp_micros()).as_bytes(),
        b":",
        key.id.hyphenated().encode_lower(&mut id).as_bytes(),
    ];
    // "c1:", at most 20 digits and a sign, ":", 36 for the id.
    let mut plain = [0u8; 64];
    let mut len = 0;
    for part in parts {
        plain[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let start = out.len();
    out.resize(start + len.div_ceil(3) * 4, 0);
    let written = URL_SAFE_NO_PAD
        .encode_slice(&plain[..len], &mut out[start..])
        .expect("room for the encoding");
    out.truncate(start + written);
}

/// Decodes a cursor given in argument `field`; anything not made by
/// `encode_cursor` is `BAD_USER_INPUT`.
pub fn decode_cursor(field: &'static str, cursor: &str) -> AppResult<PageKey> {
    let invalid = || AppError::bad_input(field, format!("`{field}` is not a valid cursor"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.split(':');
    let (Some(CURSOR_VERSION), Some(micros), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    // Only years PostgreSQL can compare against; no cursor of ours is outside them.
    let tm_create = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(invalid)?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok(PageKey { tm_create, id })
}

/// Relay's page arguments, checked: sizes, and cursors made by us.
pub fn page_request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> AppResult<PageRequest> {
    let after = after.map(|c| decode_cursor("after", &c)).transpose()?;
    let before = before.map(|c| decode_cursor("before", &c)).transpose()?;
    PageRequest::new(first, after, last, before)
}

/// What a list field may cost in complexity: its page size (clamped as the
/// resolver does) times what one node costs.
pub fn page_cost(first: Option<i32>, last: Option<i32>, node_cost: usize) -> usize {
    let size = first.or(last).map_or(GRAPHQL_DEFAULT_PAGE_SIZE, i64::from);
    let size = usize::try_from(size.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1);
    1 + size.saturating_mul(node_cost)
}

/// A row type that can be listed through a connection.
pub trait Listed: Clone + Send + Sync + 'static {
    type View: OutputType + From<Self>;
    /// What the listing was asked for, which `totalCount` counts.
    type Scope: Send + Sync;

    fn page_key(&self) -> PageKey;

    /// Runs before the nodes of a page resolve, with what one node selects:
    /// the place to load a relation for the whole page in one batch.
    fn prefetch(
        _ctx: &Context<'_>,
        _rows: &[Self],
        _node: Lookahead<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// How many rows the whole listing holds.
    fn total_count(
        ctx: &Context<'_>,
        scope: &Self::Scope,
    ) -> impl Future<Output = Result<i64>> + Send;
}

impl Listed for CustomerRow {
    type View = CustomerView;
    type Scope = CustomerFilter;

    fn page_key(&self) -> PageKey {
        CustomerRow::page_key(self)
    }

    /// Loads the guest agents of the whole page in one batch before the
    /// nodes resolve, so that the batch never depends on how quickly they
    /// do; each node's `guestAgent` then reads the loader's cache.
    async fn prefetch(ctx: &Context<'_>, rows: &[Self], node: Lookahead<'_>) -> Result<()> {
        if node.field("guestAgent").exists() {
            let ids = rows.iter().map(|row| row.id);
            ctx.data_unchecked::<GuestAgents>().load_many(ids).await?;
        }
        Ok(())
    }

    async fn total_count(ctx: &Context<'_>, filter: &CustomerFilter) -> Result<i64> {
        Ok(service::customers::count(state(ctx), principal(ctx).await?, filter).await?)
    }
}

impl Listed for AccessKeyRow {
    type View = AccessKeyView;
    /// The customer whose keys these are.
    type Scope = Option<Uuid>;

    fn page_key(&self) -> PageKey {
        AccessKeyRow::page_key(self)
    }

    async fn total_count(ctx: &Context<'_>, customer_id: &Option<Uuid>) -> Result<i64> {
        Ok(service::access_keys::count(state(ctx), principal(ctx).await?, *customer_id).await?)
    }
}

impl Listed for EventRow {
    type View = EventView;
    type Scope = EventFilter;

    fn page_key(&self) -> PageKey {
        EventRow::page_key(self)
    }

    async fn total_count(ctx: &Context<'_>, filter: &EventFilter) -> Result<i64> {
        Ok(service::events::count(state(ctx), principal(ctx).await?, filter).await?)
    }
}

impl Listed for ListedDelivery {
    type View = WebhookDeliveryView;
    type Scope = DeliveryFilter;

    fn page_key(&self) -> PageKey {
        self.row.page_key()
    }

    /// Loads the attempts of the whole page in one statement; the event
    /// comes with the page itself.
    async fn prefetch(ctx: &Context<'_>, rows: &[Self], node: Lookahead<'_>) -> Result<()> {
        if node.field("attempts").exists() {
            ListedDelivery::load_attempts(ctx, rows).await?;
        }
        Ok(())
    }

    async fn total_count(ctx: &Context<'_>, filter: &DeliveryFilter) -> Result<i64> {
        Ok(service::webhooks::count(state(ctx), principal(ctx).await?, filter).await?)
    }
}

/// An edge: a node with its cursor.
pub struct Edge<R: Listed>(R);

#[Object(
    concrete(name = "CustomerEdge", params(CustomerRow)),
    concrete(name = "AccessKeyEdge", params(AccessKeyRow)),
    concrete(name = "EventEdge", params(EventRow)),
    concrete(name = "WebhookDeliveryEdge", params(ListedDelivery))
)]
impl<R: Listed> Edge<R> {
    /// Opaque cursor of this edge, for `after` or `before`.
    async fn cursor(&self) -> String {
        encode_cursor(self.0.page_key())
    }

    /// The node at the end of the edge.
    async fn node(&self) -> R::View {
        self.0.clone().into()
    }
}

/// One page of a listing, newest first, as a Relay connection.
pub struct Connection<R: Listed> {
    page: Page<R>,
    /// What `totalCount` counts within.
    scope: R::Scope,
}

impl<R: Listed> Connection<R> {
    pub fn new(page: Page<R>, scope: R::Scope) -> Self {
        Self { page, scope }
    }
}

#[Object(
    concrete(name = "CustomerConnection", params(CustomerRow)),
    concrete(name = "AccessKeyConnection", params(AccessKeyRow)),
    concrete(name = "EventConnection", params(EventRow)),
    concrete(name = "WebhookDeliveryConnection", params(ListedDelivery))
)]
impl<R: Listed> Connection<R>
where
    Edge<R>: OutputType,
{
    /// The nodes of this page, with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<Edge<R>>> {
        R::prefetch(ctx, &self.page.items, ctx.look_ahead().field("node")).await?;
        Ok(self.page.items.iter().cloned().map(Edge).collect())
    }

    /// The nodes of this page.
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<R::View>> {
        R::prefetch(ctx, &self.page.items, ctx.look_ahead()).await?;
        Ok(self.page.items.iter().cloned().map(Into::into).collect())
    }

    /// Where this page stands in the whole list.
    async fn page_info(&self) -> PageInfo {
        let cursor = |row: &R| encode_cursor(row.page_key());
        PageInfo {
            has_previous_page: self.page.has_previous_page,
            has_next_page: self.page.has_next_page,
            start_cursor: self.page.items.first().map(cursor),
            end_cursor: self.page.items.last().map(cursor),
        }
    }

    /// How many nodes the whole list holds (every page, under the same
    /// filter); costs one more query, made only when this field is selected.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        R::total_count(ctx, &self.scope).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let key = PageKey {
            tm_create: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode_cursor("after", &encode_cursor(key)).unwrap(), key);
    }

    /// Cursors already handed out must keep working: the format is fixed.
    #[test]
    fn cursors_are_the_base64_of_version_micros_and_id() {
        for micros in [
            1_700_000_000_123_456,
            0,
            -62_135_596_800_000_000,
            i64::MAX / 2,
        ] {
            let key = PageKey {
                tm_create: DateTime::from_timestamp_micros(micros).unwrap(),
                id: Uuid::new_v4(),
            };
            let expected = URL_SAFE_NO_PAD.encode(format!("c1:{micros}:{}", key.id));
            assert_eq!(encode_cursor(key), expected);
            let mut appended = b"before".to_vec();
            write_cursor(key, &mut appended);
            assert_eq!(appended, [&b"before"[..], expected.as_bytes()].concat());
        }
    }

    #[test]
    fn foreign_cursors_are_bad_input() {
        for bad in [
            "",
            "!!",
            "YWJj",
            &URL_SAFE_NO_PAD.encode("c1:12:not-a-uuid"),
            &URL_SAFE_NO_PAD.encode("c1:x:y:z"),
        ] {
            let error = decode_cursor("after", bad).unwrap_err();
            assert_eq!(error.field(), Some("after"), "{bad}");
        }
    }
}
