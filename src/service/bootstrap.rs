//! First start: make sure the platform has a super admin to log in with.

use base64::Engine;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::customers::insert_guest_agent;
use super::events::{self, EventType, Resource};
use super::validate;
use crate::app::AppState;
use crate::auth::Permission;
use crate::db::models::agent::{self, NewAgent};
use crate::db::models::customer::{self, NewCustomer};
use crate::error::{AppError, AppResult};

/// Serialises bootstraps of concurrent replicas (an arbitrary, fixed key).
const BOOTSTRAP_LOCK_KEY: i64 = 0x5645_4950_6269_6e01;

/// When the database has no live super admin, creates the platform's own
/// customer (if missing) and a super admin from `ADMIN_USERNAME` and
/// `ADMIN_PASSWORD`, or with a random password that is logged once.
/// With a live super admin present it changes nothing.
pub async fn ensure_super_admin(state: &AppState) -> AppResult<()> {
    let config = &state.config;
    validate::username(&config.admin_username)
        .map_err(|e| AppError::internal(format!("ADMIN_USERNAME is not a valid username: {e}")))?;
    let (password, generated) = match &config.admin_password {
        Some(secret) => (secret.expose().to_owned(), false),
        None => {
            let bytes: [u8; 18] = rand::random();
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    };
    validate::password(&password)
        .map_err(|e| AppError::internal(format!("ADMIN_PASSWORD is not a valid password: {e}")))?;

    let super_admin = Permission::ProjectSuperAdmin.bit() | Permission::CustomerAdmin.bit();
    // Hashed before the transaction, even when it turns out not to be
    // needed: no transaction of the server pauses for argon2 (see
    // `db::max_commit_lag`).
    let password_hash = state.hasher.hash(&password).await?;
    let mut conn = state.conn().await?;
    let created = conn
        .transaction::<_, AppError, _>(async |conn| {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK_KEY})")).execute(conn).await?;
            if agent::platform_agent_with_permission_exists(conn, Permission::ProjectSuperAdmin.bit()).await? {
                return Ok(None);
            }
            let username = config.admin_username.as_str();
            let agent = match customer::find_live_platform(conn).await? {
                None => {
                    let platform = customer::insert(
                        conn,
                        &NewCustomer {
                            id: Uuid::now_v7(),
                            username,
                            name: "admin",
                            detail: "platform operator account",
                            webhook_method: None,
                            webhook_uri: "",
                            line_secret: "",
                            line_token: "",
                            permission_ids: Vec::new(),
                            is_platform: true,
                        },
                    )
                    .await?;
                    let created = EventType::CustomerCreated;
                    events::append(conn, None, created, Resource::Customer(&platform)).await?;
                    insert_guest_agent(conn, &platform, &password_hash, super_admin).await?
                }
                Some(platform) => {
                    agent::insert(
                        conn,
                        &NewAgent {
                            id: Uuid::now_v7(),
                            customer_id: platform.id,
                            username,
                            password_hash: &password_hash,
                            name: "admin",
                            detail: "",
                            permission: super_admin,
                            is_guest: false,
                        },
                    )
                    .await?
                }
            };
            events::append(conn, None, EventType::AgentCreated, Resource::Agent(&agent)).await?;
            Ok(Some(agent))
        })
        .await
        .map_err(|e| match e {
            AppError::Conflict { .. } => AppError::internal(format!(
                "cannot create the super admin: the username {:?} is taken by a live customer or agent; \
                 set ADMIN_USERNAME to another name",
                config.admin_username
            )),
            other => other,
        })?;

    if let Some(agent) = created {
        if generated {
            // The one place a password is logged: the operator has no other way to learn it.
            tracing::warn!(
                username = %agent.username,
                password = %password,
                "created super admin with a generated password; it is shown only this once"
            );
        } else {
            tracing::info!(username = %agent.username, "created super admin from ADMIN_USERNAME/ADMIN_PASSWORD");
        }
    }
    Ok(())
}
