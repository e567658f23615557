//! Agents: the logins of a customer. `AgentRow` never carries the password
//! hash; only `AgentCredentials`, read by login, does.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{customer, deleted_at, live};
use crate::db::schema::{agents, customers};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = agents, check_for_backend(diesel::pg::Pg))]
pub struct AgentRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub username: String,
    pub name: String,
    pub detail: String,
    pub permission: i32,
    pub is_guest: bool,
    pub tm_create: DateTime<Utc>,
    pub tm_update: Option<DateTime<Utc>>,
    pub tm_delete: Option<DateTime<Utc>>,
}

/// What login needs to check a password.
#[derive(Queryable, Selectable)]
#[diesel(table_name = agents, check_for_backend(diesel::pg::Pg))]
pub struct AgentCredentials {
    pub id: Uuid,
    pub password_hash: String,
}

impl fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Insertable)]
#[diesel(table_name = agents)]
pub struct NewAgent<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub detail: &'a str,
    pub permission: i32,
    pub is_guest: bool,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewAgent<'_>) -> QueryResult<AgentRow> {
    diesel::insert_into(agents::table)
        .values(new)
        .returning(AgentRow::as_returning())
        .get_result(conn)
        .await
}

/// The guest agents of the given customers, in one statement.
pub async fn guests_of(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
) -> QueryResult<Vec<AgentRow>> {
    agents::table
        .filter(agents::customer_id.eq_any(customer_ids))
        .filter(agents::is_guest)
        .select(AgentRow::as_select())
        .load(conn)
        .await
}

/// A live agent of an active customer, found by username (case-insensitively),
/// with the password hash to verify.
pub async fn find_credentials(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<AgentCredentials>> {
    agents::table
        .inner_join(customers::table)
        .filter(lower(agents::username).eq(lower(username)))
        .filter(live(agents::table))
        .filter(customer::active())
        .select(AgentCredentials::as_select())
        .first(conn)
        .await
        .optional()
}

/// A live agent of an active customer, with whether that customer is the platform's.
pub async fn find_live(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<(AgentRow, bool)>> {
    agents::table
        .inner_join(customers::table)
        .filter(agents::id.eq(id))
        .filter(live(agents::table))
        .filter(customer::active())
        .select((AgentRow::as_select(), customers::is_platform))
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<AgentRow>> {
    agents::table
        .find(id)
        .select(AgentRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The password hash of a live agent.
pub async fn find_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<String>> {
    agents::table
        .find(id)
        .filter(live(agents::table))
        .select(agents::password_hash)
        .first(conn)
        .await
        .optional()
}

/// The password hash of a live agent of an active customer, with both rows
/// locked (`FOR SHARE`) until the transaction ends: a password change or a
/// deletion waits for the caller's commit, or the caller sees its result.
pub async fn lock_live_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<String>> {
    agents::table
        .inner_join(customers::table)
        .filter(agents::id.eq(id))
        .filter(live(agents::table))
        .filter(customer::active())
        .select(agents::password_hash)
        .for_share()
        .first(conn)
        .await
        .optional()
}

/// Replaces a live agent's password hash; with `expected`, only if the hash
/// is still that one (compare-and-set). `None` when no row matched.
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected: Option<&str>,
    password_hash: &str,
    at: DateTime<Utc>,
) -> QueryResult<Option<AgentRow>> {
    let mut update =
        diesel::update(agents::table.find(id).filter(live(agents::table))).into_boxed();
    if let Some(expected) = expected {
        update = update.filter(agents::password_hash.eq(expected));
    }
    update
        .set((
            agents::password_hash.eq(password_hash),
            agents::tm_update.eq(at),
        ))
        .returning(AgentRow::as_returning())
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
        agents::table
            .filter(agents::customer_id.eq(customer_id))
            .filter(live(agents::table)),
    )
    .set(deleted_at(agents::table, at))
    .execute(conn)
    .await
}

/// Whether any live agent holding `permission_bit` belongs to the live platform customer.
pub async fn platform_agent_with_permission_exists(
    conn: &mut AsyncPgConnection,
    permission_bit: i32,
) -> QueryResult<bool> {
    use diesel::dsl::exists;
    diesel::select(exists(
        agents::table
            .inner_join(customers::table)
            .filter(customers::is_platform)
            .filter(customer::active())
            .filter(live(agents::table))
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("agents.permission & ")
                    .bind::<diesel::sql_types::Int4, _>(permission_bit)
                    .sql(" <> 0"),
            ),
    ))
    .get_result(conn)
    .await
}

define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
