//! The event bus publisher's place in the event log, one row per exchange,
//! doubling as the lease that lets one replica publish at a time.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::event::LogPosition;

/// A lease taken on an exchange's cursor.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    /// Every event up to here has been confirmed by the broker.
    pub position: LogPosition,
    /// The row did not exist: publishing starts at `start`, not from history.
    pub created: bool,
}

#[derive(QueryableByName)]
struct LeaseRow {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Bool)]
    created: bool,
}

fn seconds(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

/// Takes the exchange's cursor for `holder` for `lease` if nobody else holds
/// it, creating it at `start` if there is none yet; `None` while another
/// holder's lease runs.
pub async fn take(
    conn: &mut AsyncPgConnection,
    exchange: &str,
    holder: Uuid,
    lease: Duration,
    start: LogPosition,
) -> QueryResult<Option<Lease>> {
    // `xmax = 0` tells an inserted row from an updated one.
    let row: Option<LeaseRow> = diesel::sql_query(
        "INSERT INTO event_bus_cursors (exchange, txid, event_id, holder, lease_until) \
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
         ON CONFLICT (exchange) DO UPDATE \
           SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until, tm_update = now() \
           WHERE event_bus_cursors.holder = EXCLUDED.holder \
              OR event_bus_cursors.lease_until < now() \
         RETURNING txid, event_id, (xmax = 0) AS created",
    )
    .bind::<Text, _>(exchange)
    .bind::<BigInt, _>(start.txid)
    .bind::<SqlUuid, _>(start.id)
    .bind::<SqlUuid, _>(holder)
    .bind::<Double, _>(seconds(lease))
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| Lease {
        position: LogPosition {
            txid: row.txid,
            id: row.event_id,
        },
        created: row.created,
    }))
}

/// Extends `holder`'s lease by `lease` from now, and moves the cursor to
/// `position` when given (never backwards). False when the lease is no
/// longer `holder`'s: another replica has taken over.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    exchange: &str,
    holder: Uuid,
    lease: Duration,
    position: Option<LogPosition>,
) -> QueryResult<bool> {
    let updated = match position {
        Some(position) => {
            diesel::sql_query(
                "UPDATE event_bus_cursors \
                 SET txid = $3, event_id = $4, \
                     lease_until = now() + make_interval(secs => $5), tm_update = now() \
                 WHERE exchange = $1 AND holder = $2 AND (txid, event_id) <= ($3, $4)",
            )
            .bind::<Text, _>(exchange)
            .bind::<SqlUuid, _>(holder)
            .bind::<BigInt, _>(position.txid)
            .bind::<SqlUuid, _>(position.id)
            .bind::<Double, _>(seconds(lease))
            .execute(conn)
            .await?
        }
        None => {
            diesel::sql_query(
                "UPDATE event_bus_cursors \
                 SET lease_until = now() + make_interval(secs => $3) \
                 WHERE exchange = $1 AND holder = $2",
            )
            .bind::<Text, _>(exchange)
            .bind::<SqlUuid, _>(holder)
            .bind::<Double, _>(seconds(lease))
            .execute(conn)
            .await?
        }
    };
    Ok(updated == 1)
}

/// Gives the lease up, so that another replica need not wait for it to run
/// out; the position stays.
pub async fn release(
    conn: &mut AsyncPgConnection,
    exchange: &str,
    holder: Uuid,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE event_bus_cursors SET lease_until = now() - interval '1 second' \
         WHERE exchange = $1 AND holder = $2",
    )
    .bind::<Text, _>(exchange)
    .bind::<SqlUuid, _>(holder)
    .execute(conn)
    .await
    .map(drop)
}
