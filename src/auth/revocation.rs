//! The revocation protocol: how a change that revokes a credential (logout,
//! a password change, a deleted key or customer) holds on every server
//! before its caller hears of success.
//!
//! 1. Subscribe to acknowledgements, then commit the change; a trigger
//!    NOTIFYs every server's credential listener (`auth::cache`).
//! 2. Drop this server's own cache at once.
//! 3. Count the listeners connected to the database, and wait until each has
//!    acknowledged dropping its cache, for at most `REVOCATION_ACK_WAIT`.
//! 4. A listener that did not answer in time has stopped trusting its cache
//!    by then anyway: its lease (`auth::cache::LEASE`) is shorter than the
//!    wait, and only a heartbeat that hears every earlier change renews it.
//!
//! Once the change has committed, nothing fails the request: a failed count
//! or a late acknowledgement is logged, and the leases are waited out.

use std::time::Duration;

use super::cache::CredentialCache;
use crate::error::AppResult;

/// How long a revoking change waits for every listening server to
/// acknowledge that it has dropped the revoked credential.
pub const REVOCATION_ACK_WAIT: Duration = Duration::from_secs(2);

/// Runs `change` (it returns whether it revoked anything), then makes the
/// revocation hold on every server as described above. `count_listeners`
/// counts the credential listeners connected to the database.
pub async fn revoke_everywhere<T>(
    cache: &CredentialCache,
    payload: &str,
    change: impl Future<Output = AppResult<(T, bool)>>,
    count_listeners: impl AsyncFnOnce() -> AppResult<usize>,
) -> AppResult<T> {
    let acks = cache.subscribe();
    let (result, revoked) = change.await?;
    if !revoked {
        return Ok(result);
    }
    cache.invalidate_all();
    match count_listeners().await {
        Ok(0) => {}
        Ok(listeners) => {
            if !cache
                .wait_for_acks(acks, payload, listeners, REVOCATION_ACK_WAIT)
                .await
            {
                tracing::warn!(
                    payload,
                    listeners,
                    "not every server acknowledged a revocation in time"
                );
            }
        }
        Err(error) => {
            tracing::warn!(
                payload,
                error = %crate::error::error_chain(&error),
                "a revocation was stored but its acknowledgements could not be awaited"
            );
            tokio::time::sleep(REVOCATION_ACK_WAIT).await;
        }
    }
    Ok(result)
}
