//! The webhook delivery queue (`webhook_deliveries`): rows are queued by a
//! trigger when an event is appended for a customer with a webhook, claimed
//! by a server under a lease, and settled after each attempt.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::event::EventRow;
use super::{PageKey, PageWindow};

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

/// A delivery as `webhookDeliveries` shows it, with its event.
#[derive(Clone, Debug)]
pub struct DeliveryRow {
    pub event_id: Uuid,
    pub customer_id: Uuid,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made in all, redeliveries included.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// Its place in the customer's queue (the event's time, or when it was
    /// last redelivered); the listing's order.
    pub tm_create: DateTime<Utc>,
    pub tm_update: Option<DateTime<Utc>>,
    pub event: EventRow,
}

impl DeliveryRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            tm_create: self.tm_create,
            id: self.event_id,
        }
    }
}

/// The columns `DELIVERY_COLUMNS` selects, flat.
#[derive(QueryableByName)]
struct DeliveryWithEvent {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    customer_id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Integer>)]
    last_status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    tm_create: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    tm_update: Option<DateTime<Utc>>,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    event_customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    event_actor_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    event_request_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    event_tm_create: DateTime<Utc>,
    #[diesel(sql_type = Jsonb)]
    event_data: serde_json::Value,
}

impl From<DeliveryWithEvent> for DeliveryRow {
    fn from(row: DeliveryWithEvent) -> Self {
        Self {
            event_id: row.event_id,
            customer_id: row.customer_id,
            state: row.state,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_status: row.last_status,
            last_error: row.last_error,
            tm_create: row.tm_create,
            tm_update: row.tm_update,
            event: EventRow {
                id: row.event_id,
                type_: row.event_type,
                customer_id: row.event_customer_id,
                actor_id: row.event_actor_id,
                request_id: row.event_request_id,
                tm_create: row.event_tm_create,
                data: row.event_data,
            },
        }
    }
}

/// A delivery `d` joined with its event `e`, as `DeliveryWithEvent` reads it.
const DELIVERY_COLUMNS: &str = "d.event_id, d.customer_id, d.state, \
     d.earlier_attempts + d.attempts AS attempts, d.next_attempt_at, d.last_status, \
     d.last_error, d.tm_create, d.tm_update, e.type AS event_type, \
     e.customer_id AS event_customer_id, e.actor_id AS event_actor_id, \
     e.request_id AS event_request_id, e.tm_create AS event_tm_create, e.data AS event_data";

/// Which deliveries a listing holds; every condition set must hold.
#[derive(Clone, Debug, Default)]
pub struct DeliverySelection {
    pub customer_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub state: Option<&'static str>,
}

/// A statement over `webhook_deliveries d` whose conditions are appended as
/// they apply, each with its own bind parameter.
struct Conditions {
    query: diesel::query_builder::BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery>,
    binds: usize,
}

impl Conditions {
    fn new(head: &str, selection: &DeliverySelection) -> Self {
        let mut this = Self {
            query: diesel::sql_query(format!("{head} WHERE true")).into_boxed(),
            binds: 0,
        };
        if let Some(customer_id) = selection.customer_id {
            let n = this.next();
            this.query = this
                .query
                .sql(format!(" AND d.customer_id = ${n}"))
                .bind::<diesel::sql_types::Uuid, _>(customer_id);
        }
        if let Some(event_id) = selection.event_id {
            let n = this.next();
            this.query = this
                .query
                .sql(format!(" AND d.event_id = ${n}"))
                .bind::<diesel::sql_types::Uuid, _>(event_id);
        }
        if let Some(state) = selection.state {
            let n = this.next();
            this.query = this
                .query
                .sql(format!(" AND d.state = ${n}"))
                .bind::<Text, _>(state);
        }
        this
    }

    fn next(&mut self) -> usize {
        self.binds += 1;
        self.binds
    }

    /// `(d.tm_create, d.event_id) <op> (key)`: a row-value bound that the
    /// listing indexes serve straight from the cursor.
    fn keyset_bound(mut self, op: &str, key: PageKey) -> Self {
        let (a, b) = (self.next(), self.next());
        self.query = self
            .query
            .sql(format!(" AND (d.tm_create, d.event_id) {op} (${a}, ${b})"))
            .bind::<Timestamptz, _>(key.tm_create)
            .bind::<diesel::sql_types::Uuid, _>(key.id);
        self
    }
}

/// The selected deliveries inside `window`, with their events, newest first
/// (by queue time, then event id) when reading from the newest end, oldest
/// first otherwise.
pub async fn page(
    conn: &mut AsyncPgConnection,
    selection: &DeliverySelection,
    window: PageWindow,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut listing = Conditions::new(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
        ),
        selection,
    );
    if let Some(key) = window.after {
        listing = listing.keyset_bound("<", key);
    }
    if let Some(key) = window.before {
        listing = listing.keyset_bound(">", key);
    }
    let order = if window.from_newest { "DESC" } else { "ASC" };
    let limit = listing.next();
    let query = listing
        .query
        .sql(format!(
            " ORDER BY d.tm_create {order}, d.event_id {order} LIMIT ${limit}"
        ))
        .bind::<BigInt, _>(window.limit);
    let rows: Vec<DeliveryWithEvent> = query.load(conn).await?;
    Ok(rows.into_iter().map(DeliveryRow::from).collect())
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    selection: &DeliverySelection,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let counted: Count = Conditions::new(
        "SELECT count(*) AS count FROM webhook_deliveries d",
        selection,
    )
    .query
    .get_result(conn)
    .await?;
    Ok(counted.count)
}

/// One delivery with its event, if there is one for `event_id`.
pub async fn find(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
) -> QueryResult<Option<DeliveryRow>> {
    let selection = DeliverySelection {
        event_id: Some(event_id),
        ..Default::default()
    };
    let rows: Vec<DeliveryWithEvent> = Conditions::new(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
        ),
        &selection,
    )
    .query
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(DeliveryRow::from))
}

/// One attempt of a delivery.
#[derive(Clone, Debug, QueryableByName)]
pub struct AttemptRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Integer)]
    pub number: i32,
    #[diesel(sql_type = Timestamptz)]
    pub tm_attempt: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
}

/// The last `per_delivery` attempts of each of these deliveries, in one
/// statement (one index range read per delivery), in no particular order.
pub async fn attempts_of(
    conn: &mut AsyncPgConnection,
    event_ids: &[Uuid],
    per_delivery: i64,
) -> QueryResult<Vec<AttemptRow>> {
    diesel::sql_query(
        "SELECT a.event_id, a.number, a.tm_attempt, a.status_code, a.error \
         FROM unnest($1::uuid[]) AS d(event_id) \
         CROSS JOIN LATERAL ( \
             SELECT * FROM webhook_attempts w WHERE w.event_id = d.event_id \
             ORDER BY w.number DESC LIMIT $2) a",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(event_ids)
    .bind::<BigInt, _>(per_delivery)
    .load(conn)
    .await
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

/// The customer of an event: `None` when there is no such event,
/// `Some(None)` for an event of no customer.
pub async fn event_customer(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
) -> QueryResult<Option<Option<Uuid>>> {
    use crate::db::schema::events;
    events::table
        .find(event_id)
        .select(events::customer_id)
        .first(conn)
        .await
        .optional()
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
