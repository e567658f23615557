//! The event log: one row per change, appended in the change's transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{PageKey, PageWindow, in_window};
use crate::db::schema::events;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    pub id: Uuid,
    pub type_: String,
    pub customer_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub tm_create: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl EventRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            tm_create: self.tm_create,
            id: self.id,
        }
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, event: &EventRow) -> QueryResult<()> {
    diesel::insert_into(events::table)
        .values(event)
        .execute(conn)
        .await
        .map(drop)
}

/// Which events a listing holds; every condition set must hold.
#[derive(Clone, Debug, Default)]
pub struct EventSelection {
    pub customer_id: Option<Uuid>,
    pub types: Option<Vec<String>>,
    pub actor_id: Option<Uuid>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl EventSelection {
    fn apply<'a, ST>(
        &self,
        mut query: events::BoxedQuery<'a, diesel::pg::Pg, ST>,
    ) -> events::BoxedQuery<'a, diesel::pg::Pg, ST> {
        if let Some(customer_id) = self.customer_id {
            query = query.filter(events::customer_id.eq(customer_id));
        }
        if let Some(types) = &self.types {
            query = query.filter(events::type_.eq_any(types.clone()));
        }
        if let Some(actor_id) = self.actor_id {
            query = query.filter(events::actor_id.eq(actor_id));
        }
        if let Some(from) = self.created_from {
            query = query.filter(events::tm_create.ge(from));
        }
        if let Some(before) = self.created_before {
            query = query.filter(events::tm_create.lt(before));
        }
        query
    }
}

/// The selected events inside `window`, newest first when reading from the
/// newest end, oldest first otherwise.
pub async fn page(
    conn: &mut AsyncPgConnection,
    selection: &EventSelection,
    window: PageWindow,
) -> QueryResult<Vec<EventRow>> {
    let listing = selection.apply(events::table.into_boxed());
    in_window(listing.select(EventRow::as_select()), &window)
        .load(conn)
        .await
}

pub async fn count(conn: &mut AsyncPgConnection, selection: &EventSelection) -> QueryResult<i64> {
    selection
        .apply(events::table.into_boxed())
        .count()
        .get_result(conn)
        .await
}

/// Deletes up to `batch` events created before `before`; returns how many.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM events WHERE id IN \
         (SELECT id FROM events WHERE tm_create < $1 ORDER BY tm_create LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}
