//! Customers: accounts of the platform.

use chrono::{DateTime, Utc};
use diesel::dsl;
use diesel::expression::{AppearsOnTable, ValidGrouping, is_aggregate};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub use super::PageWindow;
use super::agent::AgentRow;
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
    pub tm_freeze: Option<DateTime<Utc>>,
    pub webhook_secret: String,
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

    pub fn is_frozen(&self) -> bool {
        self.tm_freeze.is_some()
    }
}

/// Customers whose credentials work: neither deleted nor frozen. Every
/// credential lookup joins its customer through this.
pub fn active() -> dsl::And<dsl::IsNull<customers::tm_delete>, dsl::IsNull<customers::tm_freeze>> {
    customers::tm_delete
        .is_null()
        .and(customers::tm_freeze.is_null())
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

/// Customers by id, each with its guest agent, in one statement (their
/// reads share it: `db::coalesce`).
pub async fn find_many_with_guest(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<(CustomerRow, Option<AgentRow>)>> {
    use crate::db::schema::agents;
    customers::table
        .left_join(agents::table.on(agents::customer_id.eq(customers::id).and(agents::is_guest)))
        .filter(customers::id.eq_any(ids))
        .select((CustomerRow::as_select(), Option::<AgentRow>::as_select()))
        .load(conn)
        .await
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

/// Which customers a listing holds.
#[derive(Clone, Debug, Default)]
pub struct CustomerSelection {
    /// Deleted customers rather than live ones.
    pub deleted: bool,
    /// Only frozen (`Some(true)`) or only unfrozen (`Some(false)`) ones.
    pub frozen: Option<bool>,
    /// A `LIKE` pattern matched case-insensitively against username or name.
    pub pattern: Option<String>,
    /// Created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

type Listing<'a> = customers::BoxedQuery<'a, diesel::pg::Pg, customers::SqlType>;

impl CustomerSelection {
    fn apply<'a, ST>(
        &self,
        mut query: customers::BoxedQuery<'a, diesel::pg::Pg, ST>,
    ) -> customers::BoxedQuery<'a, diesel::pg::Pg, ST> {
        query = if self.deleted {
            query.filter(customers::tm_delete.is_not_null())
        } else {
            query.filter(live(customers::table))
        };
        query = match self.frozen {
            Some(true) => query.filter(customers::tm_freeze.is_not_null()),
            Some(false) => query.filter(customers::tm_freeze.is_null()),
            None => query,
        };
        if let Some(pattern) = &self.pattern {
            query = query.filter(MatchesPattern {
                pattern: pattern.clone(),
            });
        }
        if let Some(from) = self.created_from {
            query = query.filter(customers::tm_create.ge(from));
        }
        if let Some(before) = self.created_before {
            query = query.filter(customers::tm_create.lt(before));
        }
        query
    }

    /// Whether this is every live customer, the listing whose size is shared.
    pub fn is_everything_live(&self) -> bool {
        !self.deleted
            && self.frozen.is_none()
            && self.pattern.is_none()
            && self.created_from.is_none()
            && self.created_before.is_none()
    }
}

/// `(username ILIKE $1 OR name ILIKE $2)`, the same pattern twice, in a
/// statement that is planned with its pattern every time.
///
/// A prepared statement's generic plan cannot see how selective the pattern
/// is. After a few searches on one pooled connection, PostgreSQL kept a
/// generic plan that walks the newest-first index and filters each row,
/// which for a rare pattern reads most of the table: at 1,000,000 customers
/// "12345" took 5 s (p50, 3 searches/s) where its own plan takes 1.35 ms.
/// So a statement with a pattern is never cached as a prepared statement:
/// one more round trip (Parse) per search buys a plan made for its pattern.
struct MatchesPattern {
    pattern: String,
}

impl Expression for MatchesPattern {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> AppearsOnTable<QS> for MatchesPattern
where
    customers::username: AppearsOnTable<QS>,
    customers::name: AppearsOnTable<QS>,
{
}

impl ValidGrouping<()> for MatchesPattern {
    type IsAggregate = is_aggregate::Never;
}

impl QueryFragment<Pg> for MatchesPattern {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("(");
        customers::username.walk_ast(out.reborrow())?;
        out.push_sql(" ILIKE ");
        out.push_bind_param::<Text, _>(&self.pattern)?;
        out.push_sql(" OR ");
        customers::name.walk_ast(out.reborrow())?;
        out.push_sql(" ILIKE ");
        out.push_bind_param::<Text, _>(&self.pattern)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryId for MatchesPattern {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// The selected customers inside `window`, in the listing order (newest
/// first) when reading from the newest end, oldest first otherwise.
pub async fn page(
    conn: &mut AsyncPgConnection,
    selection: &CustomerSelection,
    window: PageWindow,
) -> QueryResult<Vec<CustomerRow>> {
    let listing: Listing<'_> = selection.apply(customers::table.into_boxed());
    in_window(listing.select(CustomerRow::as_select()), &window)
        .load(conn)
        .await
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    selection: &CustomerSelection,
) -> QueryResult<i64> {
    selection
        .apply(customers::table.into_boxed())
        .count()
        .get_result(conn)
        .await
}

/// Restores a deleted customer, with the agents and access keys deleted
/// together with it (those deleted at its very `tm_delete`); it stays
/// frozen if it was. Sessions revoked by the deletion stay revoked.
pub async fn restore(
    conn: &mut AsyncPgConnection,
    row: &CustomerRow,
    at: DateTime<Utc>,
) -> QueryResult<CustomerRow> {
    use crate::db::schema::{access_keys, agents};
    let Some(deleted_at) = row.tm_delete else {
        return Ok(row.clone());
    };
    // The customer first: its username's unique index is the likeliest to
    // refuse, and then nothing else is attempted.
    let restored = diesel::update(customers::table.find(row.id))
        .set((
            customers::tm_delete.eq(None::<DateTime<Utc>>),
            customers::tm_update.eq(at),
        ))
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(
        agents::table
            .filter(agents::customer_id.eq(row.id))
            .filter(agents::tm_delete.eq(deleted_at)),
    )
    .set((
        agents::tm_delete.eq(None::<DateTime<Utc>>),
        agents::tm_update.eq(at),
    ))
    .execute(conn)
    .await?;
    diesel::update(
        access_keys::table
            .filter(access_keys::customer_id.eq(row.id))
            .filter(access_keys::tm_delete.eq(deleted_at)),
    )
    .set((
        access_keys::tm_delete.eq(None::<DateTime<Utc>>),
        access_keys::tm_update.eq(at),
    ))
    .execute(conn)
    .await?;
    Ok(restored)
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
    /// `Some(None)` unfreezes.
    pub tm_freeze: Option<Option<DateTime<Utc>>>,
    pub webhook_secret: Option<&'a str>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page_sql_and_caching(selection: &CustomerSelection) -> (String, bool) {
        let window = PageWindow {
            after: None,
            before: None,
            from_newest: true,
            limit: 51,
        };
        let listing: Listing<'_> = selection.apply(customers::table.into_boxed());
        let query = in_window(listing.select(CustomerRow::as_select()), &window);
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        (sql, query.is_safe_to_cache_prepared(&Pg).unwrap())
    }

    #[test]
    fn searches_are_planned_with_their_pattern_and_other_listings_are_prepared() {
        let search = CustomerSelection {
            pattern: Some("%12345%".into()),
            ..Default::default()
        };
        let (sql, cached) = page_sql_and_caching(&search);
        assert!(
            sql.contains(r#"("customers"."username" ILIKE $1 OR "customers"."name" ILIKE $2)"#),
            "{sql}"
        );
        assert!(sql.contains(r#"binds: ["%12345%", "%12345%"]"#), "{sql}");
        assert!(!cached, "a search must not reuse a generic plan: {sql}");
        let count = search.apply(customers::table.into_boxed()).count();
        assert!(!QueryFragment::<Pg>::is_safe_to_cache_prepared(&count, &Pg).unwrap());

        let frozen = CustomerSelection {
            frozen: Some(true),
            created_from: Some(DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap()),
            ..Default::default()
        };
        let (sql, cached) = page_sql_and_caching(&frozen);
        assert!(cached, "a listing without a pattern stays prepared: {sql}");
    }
}
