//! The webhook delivery queue (`webhook_deliveries`): rows are queued by a
//! trigger when an event is appended for a customer with a webhook, claimed
//! by a server under a lease, and settled after each attempt.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A delivery claimed for one attempt, with what sending it needs, read
/// as the customer is now (its current URI, method and secret).
#[derive(Debug, QueryableByName)]
pub struct ClaimedDelivery {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub customer_id: Uuid,
    /// This attempt's number, from 1.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Jsonb)]
    pub data: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub webhook_uri: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub webhook_method: Option<String>,
    #[diesel(sql_type = Text)]
    pub webhook_secret: String,
}

/// Claims up to `limit` due deliveries, each the oldest pending one of its
/// customer (so each customer's events go out in order), none leased by
/// another server; leases them for `lease_seconds` and counts the attempt.
/// `SKIP LOCKED` lets servers claim side by side without waiting on each
/// other, and the lease keeps a claimed row from being sent twice at once
/// while its attempt runs outside any transaction.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease_seconds: f64,
) -> QueryResult<Vec<ClaimedDelivery>> {
    diesel::sql_query(
        "UPDATE webhook_deliveries d \
         SET lease_until = now() + make_interval(secs => $2), attempts = d.attempts + 1, \
             last_attempt_at = now(), tm_update = now() \
         FROM events e, customers c \
         WHERE d.event_id IN ( \
             SELECT p.event_id FROM webhook_deliveries p \
             WHERE p.state = 'pending' AND p.next_attempt_at <= now() \
               AND (p.lease_until IS NULL OR p.lease_until < now()) \
               AND NOT EXISTS ( \
                   SELECT 1 FROM webhook_deliveries o \
                   WHERE o.customer_id = p.customer_id AND o.state = 'pending' \
                     AND (o.tm_create, o.event_id) < (p.tm_create, p.event_id)) \
             ORDER BY p.next_attempt_at \
             LIMIT $1 \
             FOR UPDATE SKIP LOCKED) \
           AND e.id = d.event_id AND c.id = d.customer_id \
         RETURNING d.event_id, d.customer_id, d.attempts, e.type AS event_type, e.data, \
                   c.webhook_uri, c.webhook_method, c.webhook_secret",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(lease_seconds)
    .load(conn)
    .await
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    Delivered,
    /// Given up: a permanent refusal, or the last attempt failed.
    Failed,
    /// Tried again at this time.
    RetryAt(DateTime<Utc>),
}

/// Records an attempt's outcome and releases the lease.
pub async fn settle(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    settlement: &Settlement,
    status: Option<i32>,
    error: Option<&str>,
) -> QueryResult<()> {
    let (state, next) = match settlement {
        Settlement::Delivered => ("delivered", None),
        Settlement::Failed => ("failed", None),
        Settlement::RetryAt(at) => ("pending", Some(*at)),
    };
    diesel::sql_query(
        "UPDATE webhook_deliveries \
         SET state = $2, next_attempt_at = coalesce($3, next_attempt_at), lease_until = NULL, \
             last_status = $4, last_error = $5, tm_update = now() \
         WHERE event_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(event_id)
    .bind::<Text, _>(state)
    .bind::<Nullable<Timestamptz>, _>(next)
    .bind::<Nullable<Integer>, _>(status)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await
    .map(drop)
}
