//! Access keys. Rows hold the key's SHA-256 and prefix, never the key.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{PageKey, PageWindow, customer, deleted_at, in_window, live};
use crate::db::schema::{access_keys, customers};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = access_keys, check_for_backend(diesel::pg::Pg))]
pub struct AccessKeyRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub name: String,
    pub detail: String,
    pub token_prefix: String,
    pub tm_expire: DateTime<Utc>,
    pub tm_last_used: Option<DateTime<Utc>>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: Option<DateTime<Utc>>,
    pub tm_delete: Option<DateTime<Utc>>,
}

impl AccessKeyRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            tm_create: self.tm_create,
            id: self.id,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = access_keys)]
pub struct NewAccessKeyRow<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub name: &'a str,
    pub detail: &'a str,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub tm_expire: DateTime<Utc>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewAccessKeyRow<'_>,
) -> QueryResult<AccessKeyRow> {
    diesel::insert_into(access_keys::table)
        .values(new)
        .returning(AccessKeyRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<AccessKeyRow>> {
    access_keys::table
        .find(id)
        .select(AccessKeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The key with this hash, whatever its state, with whether it
/// authenticates (the key live and its customer active). A key that exists
/// may authenticate again later (its customer recovered); one that does
/// not exist never will.
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<(AccessKeyRow, bool)>> {
    access_keys::table
        .inner_join(customers::table)
        .filter(access_keys::token_hash.eq(token_hash))
        .select((
            AccessKeyRow::as_select(),
            live(access_keys::table).and(customer::active()),
        ))
        .first(conn)
        .await
        .optional()
}

/// Marks a live key deleted; returns the row as it is afterwards, or `None`
/// when no such live key exists.
pub async fn mark_deleted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<Option<AccessKeyRow>> {
    diesel::update(access_keys::table.find(id).filter(live(access_keys::table)))
        .set(deleted_at(access_keys::table, at))
        .returning(AccessKeyRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// What renaming a key changes; a `None` field is left as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = access_keys)]
pub struct AccessKeyChanges<'a> {
    pub name: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub tm_update: DateTime<Utc>,
}

/// Applies `changes` to a live key; `None` when no such live key exists.
pub async fn update_live(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &AccessKeyChanges<'_>,
) -> QueryResult<Option<AccessKeyRow>> {
    diesel::update(access_keys::table.find(id).filter(live(access_keys::table)))
        .set(changes)
        .returning(AccessKeyRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn mark_deleted_of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        access_keys::table
            .filter(access_keys::customer_id.eq(customer_id))
            .filter(live(access_keys::table)),
    )
    .set(deleted_at(access_keys::table, at))
    .execute(conn)
    .await
}

pub async fn record_use(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(access_keys::table.find(id))
        .set(access_keys::tm_last_used.eq(at))
        .execute(conn)
        .await
}

/// A customer's live keys inside `window`, in reading order.
pub async fn page(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    window: PageWindow,
) -> QueryResult<Vec<AccessKeyRow>> {
    let listing = access_keys::table
        .filter(access_keys::customer_id.eq(customer_id))
        .filter(live(access_keys::table))
        .select(AccessKeyRow::as_select())
        .into_boxed();
    in_window(listing, &window).load(conn).await
}

pub async fn count_live(conn: &mut AsyncPgConnection, customer_id: Uuid) -> QueryResult<i64> {
    access_keys::table
        .filter(access_keys::customer_id.eq(customer_id))
        .filter(live(access_keys::table))
        .count()
        .get_result(conn)
        .await
}

/// How many keys of a customer still work: not deleted and not expired at
/// `now`. Counted under the customer's row lock to enforce the per-customer cap.
pub async fn count_usable(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<i64> {
    access_keys::table
        .filter(access_keys::customer_id.eq(customer_id))
        .filter(live(access_keys::table))
        .filter(access_keys::tm_expire.gt(now))
        .count()
        .get_result(conn)
        .await
}
