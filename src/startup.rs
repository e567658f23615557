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
    service::auth::purge_expired_sessions(&state).await?;
    Ok(state)
}
