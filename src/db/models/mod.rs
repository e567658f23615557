//! Row types and the queries over them. Query functions take the connection
//! first; none of these types is ever shown to a client directly.

pub mod access_key;
pub mod agent;
pub mod customer;
pub mod event;
pub mod event_bus_cursor;
pub mod session;
pub mod webhook_delivery;

use chrono::{DateTime, Utc};
use diesel::dsl;
use diesel::expression::{AppearsOnTable, ValidGrouping, is_aggregate};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{
    AstPass, BoxedSelectStatement, FromClause, Query, QueryFragment, QueryId,
};
use diesel::sql_types::{Bool, Nullable, Timestamptz};
use uuid::Uuid;

use crate::db::schema;

/// A table listed newest first by `(tm_create, id)`, keyset-paged.
pub trait KeysetTable: Table + Default + Send + 'static {
    type Id: Column<Table = Self, SqlType = diesel::sql_types::Uuid> + KeyColumn<Self>;
    type TmCreate: Column<Table = Self, SqlType = Timestamptz> + KeyColumn<Self>;
}

/// A table of the platform's entities: keyset-listed rows keyed by `id`,
/// soft-deleted (`tm_delete` set, the row kept).
pub trait EntityTable: KeysetTable {
    type TmUpdate: Column<Table = Self, SqlType = Nullable<Timestamptz>> + Default;
    type TmDelete: Column<Table = Self, SqlType = Nullable<Timestamptz>> + Default;
}

/// A column of the listing key, as ordering a boxed listing of `T` needs it.
pub trait KeyColumn<T>: AppearsOnTable<T> + QueryFragment<Pg> + Default + Send + 'static {}

impl<T, C> KeyColumn<T> for C where
    C: AppearsOnTable<T> + QueryFragment<Pg> + Default + Send + 'static
{
}

macro_rules! keyset_tables {
    ($($table:ident),+) => {$(
        impl KeysetTable for schema::$table::table {
            type Id = schema::$table::id;
            type TmCreate = schema::$table::tm_create;
        }
    )+};
}

macro_rules! entity_tables {
    ($($table:ident),+) => {$(
        impl EntityTable for schema::$table::table {
            type TmUpdate = schema::$table::tm_update;
            type TmDelete = schema::$table::tm_delete;
        }
    )+};
}

keyset_tables!(customers, agents, access_keys, events);
entity_tables!(customers, agents, access_keys);

/// The rows of `table` that are not soft-deleted.
pub fn live<T: EntityTable>(_table: T) -> dsl::IsNull<T::TmDelete> {
    T::TmDelete::default().is_null()
}

/// The change that soft-deletes a row of `T`: `tm_delete` and `tm_update` set.
pub type DeletedAt<T> = (
    dsl::Eq<<T as EntityTable>::TmDelete, DateTime<Utc>>,
    dsl::Eq<<T as EntityTable>::TmUpdate, DateTime<Utc>>,
);

/// The change that soft-deletes rows of `table` at `at`.
pub fn deleted_at<T: EntityTable>(_table: T, at: DateTime<Utc>) -> DeletedAt<T> {
    (T::TmDelete::default().eq(at), T::TmUpdate::default().eq(at))
}

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

impl PageWindow {
    /// The same window over the listing in the opposite order: what is
    /// after a key there is before it here, and its first end is our last.
    pub fn reversed(self) -> Self {
        Self {
            after: self.before,
            before: self.after,
            from_newest: !self.from_newest,
            limit: self.limit,
        }
    }
}

/// `(table.tm_create, table.id) <op> (key)`. Row-value comparisons let
/// PostgreSQL walk a `(tm_create DESC, id DESC)` index straight from the
/// cursor, so a deep page costs what the first one does.
///
/// Its own fragment rather than a `sql` literal: diesel never caches a
/// statement holding a literal as a prepared statement, so every page after
/// the first was parsed and planned again by PostgreSQL, and cost the
/// server an extra round trip to prepare it.
struct KeysetBound<T: KeysetTable> {
    columns: (T::TmCreate, T::Id),
    op: &'static str,
    key: PageKey,
}

impl<T: KeysetTable> KeysetBound<T> {
    fn new(op: &'static str, key: PageKey) -> Self {
        Self {
            columns: Default::default(),
            op,
            key,
        }
    }
}

impl<T: KeysetTable> Expression for KeysetBound<T> {
    type SqlType = Bool;
}

impl<T: KeysetTable, QS> AppearsOnTable<QS> for KeysetBound<T>
where
    T::Id: AppearsOnTable<QS>,
    T::TmCreate: AppearsOnTable<QS>,
{
}

impl<T: KeysetTable> ValidGrouping<()> for KeysetBound<T> {
    type IsAggregate = is_aggregate::Never;
}

impl<T: KeysetTable> QueryFragment<Pg> for KeysetBound<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(");
        self.columns.0.walk_ast(out.reborrow())?;
        out.push_sql(", ");
        self.columns.1.walk_ast(out.reborrow())?;
        out.push_sql(") ");
        out.push_sql(self.op);
        out.push_sql(" (");
        out.push_bind_param::<Timestamptz, _>(&self.key.tm_create)?;
        out.push_sql(", ");
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.key.id)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<T: KeysetTable> QueryId for KeysetBound<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// The `window` of a listing of `T`: `listing` (its rows, as the caller
/// filters and selects them) bounded by the window's keys, in the order of
/// reading from the window's chosen end, at most `window.limit` rows.
// Builds the query rather than loading it: an async fn generic over the
// query type trips rustc's higher-ranked `Send` check where it is awaited.
pub(crate) fn in_window<'a, T: KeysetTable, ST>(
    mut listing: BoxedSelectStatement<'a, ST, FromClause<T>, Pg>,
    window: &PageWindow,
) -> LimitWritten<BoxedSelectStatement<'a, ST, FromClause<T>, Pg>> {
    if let Some(key) = window.after {
        listing = listing.filter(KeysetBound::<T>::new("<", key));
    }
    if let Some(key) = window.before {
        listing = listing.filter(KeysetBound::<T>::new(">", key));
    }
    let (tm_create, id) = (T::TmCreate::default(), T::Id::default());
    let listing = if window.from_newest {
        listing.order((tm_create.desc(), id.desc()))
    } else {
        listing.order((tm_create.asc(), id.asc()))
    };
    LimitWritten {
        query: listing,
        limit: window.limit,
    }
}

/// A query with its `LIMIT` written into the SQL rather than bound.
///
/// PostgreSQL prices the generic plan of a prepared statement whose limit
/// is a parameter as if it returned a tenth of the table, so it never
/// keeps that plan and plans every execution again: about 0.1 ms of its
/// CPU for a keyset page, more than executing it. With the number in the
/// text, the prepared statement's plan is reused. A listing then has a
/// prepared statement per page size (at most `MAX_PAGE_SIZE` + 1).
pub(crate) struct LimitWritten<Q> {
    query: Q,
    limit: i64,
}

impl<Q: Query> Query for LimitWritten<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for LimitWritten<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        // An integer, formatted here: nothing from a client reaches the SQL.
        out.push_sql(" LIMIT ");
        out.push_sql(itoa::Buffer::new().format(self.limit));
        Ok(())
    }
}

impl<Q> QueryId for LimitWritten<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::customer::CustomerRow;
    use crate::db::schema::customers;

    #[test]
    fn a_window_writes_its_limit_into_the_sql_and_binds_only_its_keys() {
        let window = PageWindow {
            after: Some(PageKey {
                tm_create: DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
                id: Uuid::nil(),
            }),
            before: None,
            from_newest: true,
            limit: 51,
        };
        let query = in_window(
            customers::table
                .into_boxed()
                .select(CustomerRow::as_select()),
            &window,
        );
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.contains("DESC LIMIT 51 -- binds: ["), "{sql}");
        assert_eq!(sql.matches('$').count(), 2, "the key's two binds: {sql}");
        assert!(
            query.is_safe_to_cache_prepared(&Pg).unwrap(),
            "a page after a cursor is a prepared statement too: {sql}"
        );
    }
}
