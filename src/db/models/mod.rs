//! Row types and the queries over them. Query functions take the connection
//! first; none of these types is ever shown to a client directly.

pub mod access_key;
pub mod agent;
pub mod customer;
pub mod session;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Timestamptz};
use uuid::Uuid;

/// A position in a listing ordered by `(tm_create, id)`, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageKey {
    pub tm_create: DateTime<Utc>,
    pub id: Uuid,
}

/// Which slice of a keyset listing to read.
#[derive(Clone, Copy, Debug)]
pub struct PageWindow {
    /// Only rows strictly after this key (older).
    pub after: Option<PageKey>,
    /// Only rows strictly before this key (newer).
    pub before: Option<PageKey>,
    /// Read from the newest end (`true`) or the oldest end (`false`).
    pub from_newest: bool,
    pub limit: i64,
}

/// `(table.tm_create, table.id) <op> (key)`. Row-value comparisons let
/// PostgreSQL walk a `(tm_create DESC, id DESC)` index straight from the
/// cursor, so a deep page costs what the first one does.
fn keyset_bound<QS>(
    table: &'static str,
    op: &'static str,
    key: PageKey,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    Box::new(
        sql::<Bool>(&format!("({table}.tm_create, {table}.id) {op} ("))
            .bind::<Timestamptz, _>(key.tm_create)
            .sql(", ")
            .bind::<diesel::sql_types::Uuid, _>(key.id)
            .sql(")"),
    )
}

/// The filters that restrict a listing of `table` to `window`.
pub(crate) fn keyset_bounds<QS>(
    table: &'static str,
    window: &PageWindow,
) -> Vec<Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>>> {
    let after = window.after.map(|key| keyset_bound(table, "<", key));
    let before = window.before.map(|key| keyset_bound(table, ">", key));
    after.into_iter().chain(before).collect()
}
