//! Freezing a customer, and bringing it back (unfrozen, or restored after
//! a deletion).

use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::changes::next_tm_update;
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::models::customer::{self, CustomerChanges, CustomerRow};
use crate::error::{AppError, AppResult};
use crate::service::events::{self, EventType, Resource};
use crate::service::{now_micros, retrying, revoking};

/// Freezes a customer: its agents and access keys stop authenticating, on
/// every server, before this answers; nothing is deleted, and its login
/// tokens work again once it is recovered (if they have not expired). Takes
/// the customer's row lock, so an update racing the freeze either lands
/// first or sees the customer frozen. Freezing a frozen customer returns
/// it unchanged; a deleted one is NOT_FOUND. Super admins only; the
/// platform's own customer cannot be frozen.
pub async fn freeze(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    let (row, newly_frozen) = revoking(state, &format!("customers:{id}"), async {
        let (row, newly_frozen) = retrying(|| async {
            let mut conn = state.conn().await?;
            conn.transaction::<_, AppError, _>(async |conn| {
                let row = customer::find_for_update(conn, id)
                    .await?
                    .filter(|row| !row.is_deleted())
                    .ok_or(AppError::NotFound("customer"))?;
                if row.is_platform {
                    return Err(AppError::Forbidden);
                }
                if row.is_frozen() {
                    return Ok((row, false));
                }
                let tm_update = next_tm_update(row.tm_update);
                let changes = CustomerChanges {
                    tm_freeze: Some(Some(tm_update)),
                    tm_update: Some(tm_update),
                    ..Default::default()
                };
                let row = customer::update(conn, id, &changes).await?;
                let event = EventType::CustomerFrozen;
                events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
                Ok((row, true))
            })
            .await
        })
        .await?;
        Ok(((row, newly_frozen), newly_frozen))
    })
    .await?;
    if newly_frozen {
        tracing::info!(customer_id = %id, "froze customer");
    }
    Ok(row)
}

/// Brings a customer back: unfreezes it, and restores it if it was deleted
/// within `CUSTOMER_RESTORE_DAYS`, with the agents and access keys deleted
/// together with it (their login sessions stay revoked). A restore whose
/// username, or one of whose agents' usernames, has been taken since is
/// CONFLICT, and changes nothing. Recovering an active customer returns it
/// unchanged. Super admins only.
pub async fn recover(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    let retention = chrono::Duration::days(i64::from(state.config.customer_restore_days));
    let (row, restored, changed) = retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let mut row = customer::find_for_update(conn, id)
                .await?
                .ok_or(AppError::NotFound("customer"))?;
            let restored = row.is_deleted();
            let changed = restored || row.is_frozen();
            if let Some(deleted_at) = row.tm_delete {
                if deleted_at + retention < now_micros() {
                    return Err(AppError::Conflict {
                        field: None,
                        message: format!(
                            "the customer was deleted more than {} days ago and can no longer \
                             be restored",
                            retention.num_days()
                        )
                        .into(),
                    });
                }
                row = customer::restore(conn, &row, next_tm_update(row.tm_update))
                    .await
                    .map_err(|error| match AppError::from(error) {
                        AppError::Conflict { field, .. } => AppError::Conflict {
                            field,
                            message: "the customer's username, or one of its agents', is now \
                                      taken by a live customer or agent"
                                .into(),
                        },
                        other => other,
                    })?;
            }
            if row.is_frozen() {
                let changes = CustomerChanges {
                    tm_freeze: Some(None),
                    tm_update: Some(next_tm_update(row.tm_update)),
                    ..Default::default()
                };
                row = customer::update(conn, id, &changes).await?;
            }
            if changed {
                let event = EventType::CustomerRecovered;
                events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
            }
            Ok((row, restored, changed))
        })
        .await
    })
    .await?;
    if restored {
        state.customer_count.invalidate();
    }
    if changed {
        tracing::info!(customer_id = %id, restored, "recovered customer");
    }
    Ok(row)
}
