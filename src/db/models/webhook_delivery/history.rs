//! What `webhookDeliveries` reads of the delivery queue: pages of
//! deliveries with their events, their attempts, and counts.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::models::event::EventRow;
use crate::db::models::{PageKey, PageWindow};
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
