//! Login sessions: one row per issued login token.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::agent::AgentRow;
use super::{customer, live};
use crate::db::schema::{agents, customers, sessions};

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub tm_expire: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewSession) -> QueryResult<usize> {
    diesel::insert_into(sessions::table)
        .values(new)
        .execute(conn)
        .await
}

/// The agent of a live, unrevoked session, if the agent is live and its
/// customer active; with whether that customer is the platform's and when
/// the session expires. One statement: this runs on every uncached request.
pub async fn find_live(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    agent_id: Uuid,
) -> QueryResult<Option<(AgentRow, bool, DateTime<Utc>)>> {
    sessions::table
        .inner_join(agents::table.inner_join(customers::table))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::agent_id.eq(agent_id))
        .filter(sessions::tm_revoke.is_null())
        .filter(sessions::tm_expire.gt(diesel::dsl::now))
        .filter(live(agents::table))
        .filter(customer::active())
        .select((
            AgentRow::as_select(),
            customers::is_platform,
            sessions::tm_expire,
        ))
        .first(conn)
        .await
        .optional()
}

/// Revokes one session; returns whether it was live.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let revoked = diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::tm_revoke.is_null()),
    )
    .set(sessions::tm_revoke.eq(at))
    .execute(conn)
    .await?;
    Ok(revoked > 0)
}

/// Revokes every live session of an agent except `keep`.
pub async fn revoke_all_of_agent(
    conn: &mut AsyncPgConnection,
    agent_id: Uuid,
    keep: Option<Uuid>,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::agent_id.eq(agent_id))
        .filter(sessions::tm_revoke.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep));
    }
    query.set(sessions::tm_revoke.eq(at)).execute(conn).await
}

/// Revokes every unrevoked session of every agent of a customer (deleted
/// agents included), as deleting the customer does in its transaction.
pub async fn revoke_all_of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    let agents_of_customer = agents::table
        .filter(agents::customer_id.eq(customer_id))
        .select(agents::id);
    diesel::update(sessions::table)
        .filter(sessions::agent_id.eq_any(agents_of_customer))
        .filter(sessions::tm_revoke.is_null())
        .set(sessions::tm_revoke.eq(at))
        .execute(conn)
        .await
}

/// Removes sessions that expired more than a day ago; they can never be used again.
pub async fn delete_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(1);
    diesel::delete(sessions::table.filter(sessions::tm_expire.lt(cutoff)))
        .execute(conn)
        .await
}
