//! Relay cursor connections over the customers' listing order. A cursor is
//! an opaque, URL-safe encoding of the row's `(tm_create, id)` key.

use async_graphql::connection::PageInfo;
use async_graphql::{Context, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike};
use uuid::Uuid;

use super::context::{principal, state};
use super::loaders::GuestAgents;
use super::types::CustomerView;
use crate::db::models::PageKey;
use crate::db::models::customer::CustomerRow;
use crate::error::{AppError, AppResult};
use crate::service::{self, pagination::Page};

const CURSOR_VERSION: &str = "c1";

pub fn encode_cursor(key: PageKey) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{CURSOR_VERSION}:{}:{}",
        key.tm_create.timestamp_micros(),
        key.id
    ))
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

/// An edge in a customer connection.
#[derive(SimpleObject)]
pub struct CustomerEdge {
    /// Opaque cursor of this edge, for `after` or `before`.
    cursor: String,
    /// The customer at the end of the edge.
    node: CustomerView,
}

/// A page of customers, newest first.
pub struct CustomerConnection {
    page: Page<CustomerRow>,
}

impl CustomerConnection {
    pub fn new(page: Page<CustomerRow>) -> Self {
        Self { page }
    }

    /// Loads the guest agents of the whole page in one batch before the nodes
    /// resolve, so that the batch never depends on how quickly they do; each
    /// node's `guestAgent` then reads the loader's cache.
    async fn prefetch_guest_agents(&self, ctx: &Context<'_>) -> Result<()> {
        let ids = self.page.items.iter().map(|row| row.id);
        ctx.data_unchecked::<GuestAgents>().load_many(ids).await?;
        Ok(())
    }
}

#[Object]
impl CustomerConnection {
    /// The customers of this page, with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<CustomerEdge>> {
        if ctx.look_ahead().field("node").field("guestAgent").exists() {
            self.prefetch_guest_agents(ctx).await?;
        }
        Ok(self
            .page
            .items
            .iter()
            .map(|row| CustomerEdge {
                cursor: encode_cursor(row.page_key()),
                node: row.clone().into(),
            })
            .collect())
    }

    /// The customers of this page.
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<CustomerView>> {
        if ctx.look_ahead().field("guestAgent").exists() {
            self.prefetch_guest_agents(ctx).await?;
        }
        Ok(self.page.items.iter().cloned().map(Into::into).collect())
    }

    /// Where this page stands in the whole list.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.page.has_previous_page,
            has_next_page: self.page.has_next_page,
            start_cursor: self
                .page
                .items
                .first()
                .map(|row| encode_cursor(row.page_key())),
            end_cursor: self
                .page
                .items
                .last()
                .map(|row| encode_cursor(row.page_key())),
        }
    }

    /// How many live customers exist in all; costs one more query, made only
    /// when this field is selected.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(service::customers::count(state(ctx), principal(ctx).await?).await?)
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
