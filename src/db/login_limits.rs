//! The login limiter's counts, shared by every server on the database
//! (the policy is `auth::limiter`'s; the counting is `reserve_login_attempt`
//! in the migration `shared_login_limits`).

use std::net::IpAddr;
use std::time::Duration;

use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::auth::limiter::{Plan, RetryAfter};
use crate::error::AppResult;

/// Attempts counted by `reserve`: the row of each bucket, to give back.
#[derive(Debug, Default)]
pub struct Counted(Vec<(String, i64)>);

impl Counted {
    /// The rows that count as failures until the attempt succeeds.
    fn failures(&self) -> Vec<i64> {
        self.0
            .iter()
            .filter(|(bucket, _)| Plan::is_failure_bucket(bucket))
            .map(|(_, id)| *id)
            .collect()
    }
}

/// A refusal, with the buckets that were full.
#[derive(Debug)]
pub struct Refused {
    pub retry_after: RetryAfter,
    pub buckets: Vec<String>,
}

#[derive(diesel::QueryableByName)]
struct Reserved {
    #[diesel(sql_type = Nullable<Array<Text>>)]
    counted_buckets: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    ids: Option<Vec<i64>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    refused_buckets: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Integer>)]
    retry_after_seconds: Option<i32>,
}

/// Counts an attempt in every bucket of `plan`, or refuses it: atomic
/// across servers, so of any number of concurrent attempts at most the
/// limit get through.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    plan: &Plan,
    window: Duration,
) -> AppResult<Result<Counted, Refused>> {
    let (known_username, known_address) = match &plan.own_address {
        Some((username, address)) => (Some(username.as_str()), Some(address.to_string())),
        None => (None, None),
    };
    let reserved: Reserved = diesel::sql_query(
        "SELECT counted_buckets, ids, refused_buckets, retry_after_seconds \
         FROM reserve_login_attempt($1, $2, $3, $4, $5)",
    )
    .bind::<Array<Text>, _>(&plan.buckets)
    .bind::<Array<Nullable<Integer>>, _>(&plan.limits)
    .bind::<Double, _>(window.as_secs_f64())
    .bind::<Nullable<Text>, _>(known_username)
    .bind::<Nullable<Text>, _>(known_address)
    .get_result(conn)
    .await?;
    Ok(match reserved.retry_after_seconds {
        Some(seconds) => Err(Refused {
            retry_after: RetryAfter(u64::try_from(seconds).unwrap_or(1).max(1)),
            buckets: reserved.refused_buckets.unwrap_or_default(),
        }),
        None => Ok(Counted(
            reserved
                .counted_buckets
                .unwrap_or_default()
                .into_iter()
                .zip(reserved.ids.unwrap_or_default())
                .collect(),
        )),
    })
}

/// The attempt succeeded: its failures are given back, and the address is
/// remembered as the username's own (for logins; `remember` is `None` for
/// checks of the current password).
pub async fn succeeded(
    conn: &mut AsyncPgConnection,
    counted: &Counted,
    remember: Option<(&str, IpAddr)>,
) -> AppResult<()> {
    let (username, address) = match remember {
        Some((username, address)) => (Some(username), Some(address.to_string())),
        None => (None, None),
    };
    diesel::sql_query(
        "WITH given_back AS (DELETE FROM login_attempts WHERE id = ANY ($1)) \
         INSERT INTO login_known_addresses (username, address, seen_at) \
         SELECT $2, $3, now() WHERE $2 IS NOT NULL AND $3 IS NOT NULL \
         ON CONFLICT (username, address) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind::<Array<BigInt>, _>(counted.failures())
    .bind::<Nullable<Text>, _>(username)
    .bind::<Nullable<Text>, _>(address)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the addresses not used to log in for 30 days (they no longer
/// lift the per-username limit anyway).
pub async fn forget_old_addresses(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM login_known_addresses WHERE seen_at < now() - interval '30 days'",
    )
    .execute(conn)
    .await?)
}
