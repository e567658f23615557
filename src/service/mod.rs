//! The domain operations, as plain async functions over the application state.
//! They take the acting `Principal` and plain inputs, enforce every rule, and
//! know nothing of GraphQL, so that every API surface shares one implementation.
//! A domain enum (`customers::WebhookMethod`) is defined here once and carries
//! the derives the surfaces show it with, rather than being copied into each.

pub mod access_keys;
pub mod auth;
pub mod bootstrap;
pub mod customers;
pub mod events;
pub mod pagination;
mod validate;
pub mod webhooks;

use chrono::{DateTime, Utc};

/// Now, at the precision PostgreSQL stores.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Runs `attempt` (a whole transaction) again when PostgreSQL reports a
/// deadlock or serialization failure, up to three times in all, with a
/// short, growing, jittered pause between attempts.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> crate::error::AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::AppResult<T>>,
{
    const ATTEMPTS: u32 = 3;
    let mut failures = 0;
    loop {
        match attempt().await {
            Err(crate::error::AppError::Transient(error)) if failures + 1 < ATTEMPTS => {
                failures += 1;
                tracing::debug!(%error, failures, "retrying a transaction");
                let pause = 10 * u64::from(failures) + rand::random::<u64>() % 10;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

/// Runs a change that may revoke credentials (it returns whether it did),
/// and answers only once the revocation holds on every server (see
/// `auth::revocation`).
pub(crate) async fn revoking<T>(
    state: &crate::app::AppState,
    payload: &str,
    change: impl std::future::Future<Output = crate::error::AppResult<(T, bool)>>,
) -> crate::error::AppResult<T> {
    crate::auth::revocation::revoke_everywhere(&state.credentials, payload, change, async || {
        crate::db::listening_servers(&mut *state.conn().await?).await
    })
    .await
}
