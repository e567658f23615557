//! Customers: accounts of the platform.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub use super::PageWindow;
use super::{PageKey, deleted_at, in_window, live};
use crate::db::schema::customers;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = customers, check_for_backend(diesel::pg::Pg))]
pub struct CustomerRow {
    pub id: Uuid,
    pub username: String,
    pub name: String,
    pub detail: String,
    pub webhook_method: Option<String>,
    pub webhook_uri: String,
    pub line_secret: String,
    pub line_token: String,
    pub permission_ids: Vec<Option<Uuid>>,
    pub is_platform: bool,
    pub tm_create: DateTime<Utc>,
    pub tm_update: Option<DateTime<Utc>>,
    pub tm_delete: Option<DateTime<Utc>>,
}

impl CustomerRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            tm_create: self.tm_create,
            id: self.id,
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.tm_delete.is_some()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = customers)]
pub struct NewCustomer<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub name: &'a str,
    pub detail: &'a str,
    pub webhook_method: Option<&'a str>,
    pub webhook_uri: &'a str,
    pub line_secret: &'a str,
    pub line_token: &'a str,
    pub permission_ids: Vec<Option<Uuid>>,
    pub is_platform: bool,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewCustomer<'_>,
) -> QueryResult<CustomerRow> {
    diesel::insert_into(customers::table)
        .values(new)
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<CustomerRow>> {
    customers::table
        .find(id)
        .select(CustomerRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the row (`FOR UPDATE`) so that the changes that must see the
/// customer as it is (deleting it, creating one of its access keys) run one
/// after the other: a key is never added to a customer being deleted.
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<CustomerRow>> {
    customers::table
        .find(id)
        .select(CustomerRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn mark_deleted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<CustomerRow> {
    diesel::update(customers::table.find(id))
        .set(deleted_at(customers::table, at))
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_live_platform(conn: &mut AsyncPgConnection) -> QueryResult<Option<CustomerRow>> {
    customers::table
        .filter(customers::is_platform)
        .filter(live(customers::table))
        .select(CustomerRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Live customers inside `window`, in the listing order (newest first) when
/// reading from the newest end, oldest first otherwise.
pub async fn page(
    conn: &mut AsyncPgConnection,
    window: PageWindow,
) -> QueryResult<Vec<CustomerRow>> {
    let listing = customers::table
        .filter(live(customers::table))
        .select(CustomerRow::as_select())
        .into_boxed();
    in_window(listing, &window).load(conn).await
}

pub async fn count_live(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    customers::table
        .filter(live(customers::table))
        .count()
        .get_result(conn)
        .await
}

/// The columns an update may change; `None` leaves a column as it is.
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = customers)]
pub struct CustomerChanges<'a> {
    pub name: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// `Some(None)` clears the method.
    pub webhook_method: Option<Option<&'a str>>,
    pub webhook_uri: Option<&'a str>,
    pub line_secret: Option<&'a str>,
    pub line_token: Option<&'a str>,
    pub permission_ids: Option<Vec<Option<Uuid>>>,
    pub tm_update: Option<DateTime<Utc>>,
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &CustomerChanges<'_>,
) -> QueryResult<CustomerRow> {
    diesel::update(customers::table.find(id))
        .set(changes)
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .await
}
