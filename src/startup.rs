//! Start-up, in order: create the database if it is missing, apply the
//! migrations, assemble the application state, make sure a super admin
//! exists, and clear out expired login sessions. Replicas starting together
//! take turns from the migrations to the bootstrap (`db::StartupLock`), so
//! each step is done once.

use crate::app::AppState;
use crate::config::Config;
use crate::db;
use crate::error::AppResult;
use crate::service;

pub async fn start(config: Config) -> AppResult<AppState> {
    let url = config.database_url.expose().to_owned();
    db::create_database_if_missing(&url).await?;
    let turn = db::StartupLock::acquire(&url).await?;
    db::run_migrations(&url).await?;
    let state = AppState::new(config).await?;
    service::bootstrap::ensure_super_admin(&state).await?;
    turn.release().await;
    housekeeping(&state).await?;
    spawn_housekeeping(&state);
    db::replicas::start_checks(&state).await;
    crate::feed::spawn_follower(&state);
    if state.config.webhook_delivery {
        crate::webhooks::spawn_worker(&state)?;
    }
    crate::bus::spawn(&state)?;
    Ok(state)
}

/// How often each server sweeps what has outlived its use.
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes expired login sessions and events past their retention. Every
/// replica runs it; the deletes are idempotent and batched.
async fn housekeeping(state: &AppState) -> AppResult<()> {
    service::auth::purge_expired_sessions(state).await?;
    let retention = chrono::Duration::days(i64::from(state.config.event_retention_days));
    let pruned = service::events::prune(state, retention).await?;
    if pruned > 0 {
        tracing::info!(pruned, "removed events past their retention");
    }
    Ok(())
}

/// Runs `housekeeping` every `HOUSEKEEPING_INTERVAL` for as long as the
/// server's state lives.
fn spawn_housekeeping(state: &AppState) {
    let state = state.downgrade();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            if let Err(error) = housekeeping(&state).await {
                tracing::warn!(error = %crate::error::error_chain(&error), "housekeeping failed; retrying later");
            }
        }
    });
}
