//! The event log: one row per change, appended in the change's transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{PageKey, PageWindow, in_window};
use crate::db::schema::events;

#[derive(Clone, Debug, Queryable, QueryableByName, Selectable, Insertable)]
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
    /// Whether `event` is one of the selected events: the listing's
    /// conditions, applied to an event in hand (live subscriptions).
    pub fn matches(&self, event: &EventRow) -> bool {
        self.customer_id
            .is_none_or(|id| event.customer_id == Some(id))
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.contains(&event.type_))
            && self.actor_id.is_none_or(|id| event.actor_id == Some(id))
            && self.created_from.is_none_or(|from| event.tm_create >= from)
            && self
                .created_before
                .is_none_or(|before| event.tm_create < before)
    }

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

/// A place in the log as its followers read it: after every event of
/// earlier transactions, and of this transaction up to `id`. Transaction
/// ids (`xid8`) are carried as `bigint`: they fit for the life of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub txid: i64,
    pub id: Uuid,
}

/// An event as a follower reads it: the row and its place in the log.
#[derive(Debug, QueryableByName)]
pub struct FollowedEvent {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub txid: i64,
    #[diesel(embed)]
    pub event: EventRow,
}

impl FollowedEvent {
    pub fn position(&self) -> LogPosition {
        LogPosition {
            txid: self.txid,
            id: self.event.id,
        }
    }
}

/// Where the log ends for a follower starting now: every transaction below
/// the oldest one still running has ended, so the events after this
/// position are exactly those it has not been able to see yet.
pub async fn log_tail(conn: &mut AsyncPgConnection) -> QueryResult<LogPosition> {
    #[derive(QueryableByName)]
    struct Tail {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        txid: i64,
    }
    let tail: Tail =
        diesel::sql_query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS txid")
            .get_result(conn)
            .await?;
    Ok(LogPosition {
        // Before every event of the oldest running transaction.
        txid: tail.txid,
        id: Uuid::nil(),
    })
}

/// Up to `limit` events after `after`, in log order, and only of
/// transactions that have ended: an event's id and time are taken before
/// its transaction commits, so a follower going by either would pass over
/// events that commit late. Going by transaction, below the oldest one still
/// running, it sees each committed event once, in a fixed order, whatever
/// the commit order.
pub async fn read_after(
    conn: &mut AsyncPgConnection,
    after: LogPosition,
    limit: i64,
) -> QueryResult<Vec<FollowedEvent>> {
    diesel::sql_query(
        "SELECT txid::text::bigint AS txid, id, type AS type_, customer_id, actor_id, \
                request_id, tm_create, data \
         FROM events \
         WHERE txid >= $1::text::xid8 \
           AND (txid > $1::text::xid8 OR id > $2) \
           AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY txid, id \
         LIMIT $3",
    )
    .bind::<diesel::sql_types::BigInt, _>(after.txid)
    .bind::<diesel::sql_types::Uuid, _>(after.id)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}
