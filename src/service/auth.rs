//! Login and credential resolution.

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::token::IssuedToken;
use crate::db::models::agent::{self, AgentRow};
use crate::db::models::customer::{self, CustomerRow};
use crate::error::{AppError, AppResult};

/// Usernames and passwords longer than this cannot exist, so they are not
/// worth an argon2 run or a query.
const MAX_LOGIN_FIELD_CHARS: usize = 256;

/// Verifies a username and password and issues a login token. Unknown
/// usernames cost one argon2 verification too, and every failure is the same
/// `UNAUTHENTICATED` error.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
) -> AppResult<(IssuedToken, AgentRow)> {
    let plausible = username.len() <= MAX_LOGIN_FIELD_CHARS
        && password.chars().count() <= MAX_LOGIN_FIELD_CHARS
        && !username.contains('\0');
    let credentials = if plausible {
        let mut conn = state.conn().await?;
        agent::find_credentials(&mut conn, username).await?
    } else {
        None
    };
    let Some(credentials) = credentials else {
        state.hasher.verify_dummy(password).await?;
        tracing::info!("login refused");
        return Err(AppError::Unauthenticated);
    };
    if !state
        .hasher
        .verify(password, &credentials.password_hash)
        .await?
    {
        tracing::info!(agent_id = %credentials.id, "login refused");
        return Err(AppError::Unauthenticated);
    }
    // Read again after the slow verification: the agent may have been deleted meanwhile.
    let (agent, _) = agent::find_live(&mut *state.conn().await?, credentials.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let token = state.tokens.issue(agent.id)?;
    tracing::info!(agent_id = %agent.id, "login succeeded");
    Ok((token, agent))
}

/// The principal behind a bearer credential. The agent and its customer are
/// read on every call, so a deleted agent or customer loses access at once.
pub async fn resolve_credential(state: &AppState, bearer: &str) -> AppResult<Principal> {
    let agent_id = state.tokens.verify(bearer)?;
    let (agent, of_platform_customer) = agent::find_live(&mut *state.conn().await?, agent_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok(Principal {
        agent_id: Some(agent.id),
        customer_id: agent.customer_id,
        permission: agent.permission,
        of_platform_customer,
    })
}

/// The caller's own agent (none for an access key) and customer.
pub async fn viewer(
    state: &AppState,
    principal: &Principal,
) -> AppResult<(Option<AgentRow>, CustomerRow)> {
    let mut conn = state.conn().await?;
    let agent = match principal.agent_id {
        Some(id) => Some(
            agent::find_live(&mut conn, id)
                .await?
                .ok_or(AppError::Unauthenticated)?
                .0,
        ),
        None => None,
    };
    let customer = customer::find(&mut conn, principal.customer_id)
        .await?
        .filter(|row| !row.is_deleted())
        .ok_or(AppError::Unauthenticated)?;
    Ok((agent, customer))
}
