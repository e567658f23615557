//! The webhook delivery queue (`webhook_deliveries`): rows are queued by a
//! trigger when an event is appended for a customer with a webhook, claimed
//! by a server under a lease, and settled after each attempt.
//!
//! This module holds what the delivery worker does with the queue; what
//! `webhookDeliveries` reads of it is in `history`.

mod history;

pub use history::*;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
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
    /// This attempt's number within the retry budget, from 1.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// This attempt's number in the delivery's history, from 1: it keeps
    /// counting across redeliveries, where `attempts` starts again.
    #[diesel(sql_type = Integer)]
    pub number: i32,
    /// When this attempt started.
    #[diesel(sql_type = Timestamptz)]
    pub tm_attempt: DateTime<Utc>,
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
         RETURNING d.event_id, d.customer_id, d.attempts, d.earlier_attempts + d.attempts AS number, \
                   d.last_attempt_at AS tm_attempt, e.type AS event_type, e.data, \
                   c.webhook_uri, c.webhook_method, c.webhook_secret",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(lease_seconds)
    .load(conn)
    .await
}

/// A claim to hand back: the delivery, the attempt count its claim set,
/// and whether that attempt was started.
#[derive(Clone, Debug)]
pub struct Release {
    pub event_id: Uuid,
    pub attempts: i32,
    pub started: bool,
}

impl Release {
    pub fn of(delivery: &ClaimedDelivery, started: bool) -> Self {
        Self {
            event_id: delivery.event_id,
            attempts: delivery.attempts,
            started,
        }
    }
}

/// Ends these claims of a stopping server at once rather than when their
/// leases run out, in one statement: each delivery stays where it is in its
/// customer's queue (still the head, so order holds) and is due now. An
/// attempt never started is uncounted; one cut off may have reached the
/// endpoint, and stays counted, as a crashed server's does. Only claims
/// still held are touched (pending, leased, same attempt count): one
/// settled meanwhile is left alone. Returns how many were released.
pub async fn release(conn: &mut AsyncPgConnection, claims: &[Release]) -> QueryResult<usize> {
    let ids: Vec<Uuid> = claims.iter().map(|c| c.event_id).collect();
    let attempts: Vec<i32> = claims.iter().map(|c| c.attempts).collect();
    let started: Vec<bool> = claims.iter().map(|c| c.started).collect();
    diesel::sql_query(
        "UPDATE webhook_deliveries d \
         SET lease_until = NULL, next_attempt_at = least(d.next_attempt_at, now()), \
             attempts = d.attempts - CASE WHEN c.started THEN 0 ELSE 1 END, tm_update = now() \
         FROM unnest($1::uuid[], $2::int[], $3::bool[]) AS c(event_id, attempts, started) \
         WHERE d.event_id = c.event_id AND d.state = 'pending' \
           AND d.lease_until IS NOT NULL AND d.attempts = c.attempts",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Array<diesel::sql_types::Bool>, _>(started)
    .execute(conn)
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

/// The longest error text kept for an attempt, in characters: enough for
/// an error chain, and a bound on what one failing endpoint can make us store.
pub const MAX_ERROR_CHARS: usize = 512;

fn bounded(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => &error[..end],
        None => error,
    }
}

/// Records an attempt's outcome, releases the lease, and appends the
/// attempt to the delivery's history, in one statement: the history and the
/// delivery never disagree. `error` is cut to `MAX_ERROR_CHARS`.
pub async fn settle(
    conn: &mut AsyncPgConnection,
    delivery: &ClaimedDelivery,
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
        "WITH settled AS ( \
             UPDATE webhook_deliveries \
             SET state = $2, next_attempt_at = coalesce($3, next_attempt_at), lease_until = NULL, \
                 last_status = $4, last_error = $5, tm_update = now() \
             WHERE event_id = $1 \
             RETURNING event_id) \
         INSERT INTO webhook_attempts (event_id, number, tm_attempt, status_code, error) \
         SELECT event_id, $6, $7, $4, $5 FROM settled \
         ON CONFLICT (event_id, number) DO NOTHING",
    )
    .bind::<diesel::sql_types::Uuid, _>(delivery.event_id)
    .bind::<Text, _>(state)
    .bind::<Nullable<Timestamptz>, _>(next)
    .bind::<Nullable<Integer>, _>(status)
    .bind::<Nullable<Text>, _>(error.map(bounded))
    .bind::<Integer, _>(delivery.number)
    .bind::<Timestamptz, _>(delivery.tm_attempt)
    .execute(conn)
    .await
    .map(drop)
}

/// Queues the event again, for a customer that has a webhook now: a missing
/// delivery is created; a delivered or failed one becomes pending, due now,
/// with a fresh retry budget (its history keeps counting) and at the tail of
/// its customer's queue; a pending one is made due now, its place, budget
/// and lease left as they are, so that the worker's lease rules still keep
/// it from being sent twice at once. `false` when the customer has no
/// webhook (or the event no customer). A webhook cleared while this runs
/// needs no lock here: the attempt finds it gone and fails the delivery,
/// as it does for anything else still queued.
pub async fn redeliver(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Queued {
        #[diesel(sql_type = BigInt)]
        queued: i64,
    }
    let queued: Queued = diesel::sql_query(
        "WITH queued AS ( \
             INSERT INTO webhook_deliveries AS d (event_id, customer_id, tm_create, next_attempt_at) \
             SELECT e.id, c.id, now(), now() \
             FROM events e JOIN customers c ON c.id = e.customer_id \
             WHERE e.id = $1 AND c.webhook_uri <> '' \
             ON CONFLICT (event_id) DO UPDATE SET \
                 state = 'pending', next_attempt_at = now(), tm_update = now(), \
                 tm_create = CASE WHEN d.state = 'pending' THEN d.tm_create ELSE now() END, \
                 earlier_attempts = CASE WHEN d.state = 'pending' THEN d.earlier_attempts \
                                         ELSE d.earlier_attempts + d.attempts END, \
                 attempts = CASE WHEN d.state = 'pending' THEN d.attempts ELSE 0 END \
             RETURNING d.event_id) \
         SELECT count(*) AS queued FROM (SELECT pg_notify('webhook_deliveries', '') FROM queued) n",
    )
    .bind::<diesel::sql_types::Uuid, _>(event_id)
    .get_result(conn)
    .await?;
    Ok(queued.queued > 0)
}

/// What the queue holds now: pending deliveries, and how long the oldest
/// of them has been queued, in seconds (0 when none is).
pub async fn queue_depth(conn: &mut AsyncPgConnection) -> QueryResult<(i64, f64)> {
    #[derive(QueryableByName)]
    struct Depth {
        #[diesel(sql_type = BigInt)]
        pending: i64,
        #[diesel(sql_type = Double)]
        oldest_seconds: f64,
    }
    // Both from the partial index of pending deliveries.
    let depth: Depth = diesel::sql_query(
        "SELECT count(*) AS pending, \
                coalesce(extract(epoch FROM now() - min(tm_create)), 0)::float8 AS oldest_seconds \
         FROM webhook_deliveries WHERE state = 'pending'",
    )
    .get_result(conn)
    .await?;
    Ok((depth.pending, depth.oldest_seconds.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS);
        assert!(long.starts_with(cut));
        let exact = "x".repeat(MAX_ERROR_CHARS);
        assert_eq!(bounded(&exact), exact);
    }
}
