//! Login, logout, passwords, and resolving a credential into a `Principal`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::events::{self, EventType, Resource};
use super::{now_micros, retrying, revoking, validate};
use crate::app::AppState;
use crate::auth::cache::CredentialKey;
use crate::auth::limiter::{Check, normal_username};
use crate::auth::token::{IssuedToken, session_tag};
use crate::auth::{CredentialId, Permission, Principal, access_key};
use crate::db::login_limits::{self, Counted};
use crate::db::models::access_key as access_key_rows;
use crate::db::models::agent::{self, AgentRow};
use crate::db::models::customer::{self, CustomerRow};
use crate::db::models::session::{self, NewSession};
use crate::error::{AppError, AppResult};

/// Usernames and passwords longer than this cannot exist, so they are not
/// worth an argon2 run or a query.
const MAX_LOGIN_FIELD_CHARS: usize = 256;

/// Verifies a username and password and issues a login token. Unknown
/// usernames, and usernames that break the username rule, cost one argon2
/// verification too, and every failure is the same `UNAUTHENTICATED` error.
/// Each attempt is counted by the limiter before the password is hashed;
/// past a limit, attempts are refused without hashing.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client: Option<IpAddr>,
) -> AppResult<(IssuedToken, AgentRow)> {
    let username = normal_username(username);
    let attempt = reserve_attempt(state, Check::Login, username.as_deref(), client).await?;
    let credentials = match &username {
        Some(username) if password.chars().count() <= MAX_LOGIN_FIELD_CHARS => {
            agent::find_credentials(&mut *state.conn().await?, username).await?
        }
        _ => None,
    };
    let verified = match &credentials {
        Some(found) => state.hasher.verify(password, &found.password_hash).await?,
        None => {
            state.hasher.verify_dummy(password).await?;
            false
        }
    };
    let known_agent = credentials.as_ref().map(|found| found.id);
    let Some(credentials) = credentials.filter(|_| verified) else {
        drop(attempt);
        state.metrics.record_login_failure("credentials");
        tracing::info!(client = ?client, "login refused: wrong username or password");
        if let Some(agent_id) = known_agent {
            record_failed_login(state, agent_id).await;
        }
        return Err(AppError::Unauthenticated);
    };

    // The session is stored only if the password verified is still the
    // agent's, and the agent and its customer are still live: the rows are
    // locked until the insert commits, so a concurrent password change or
    // deletion either happens first (and the login fails) or after (and
    // revokes this session with the others).
    let issued = state.tokens.issue(credentials.id)?;
    let agent = retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let current = agent::lock_live_password_hash(conn, credentials.id).await?;
            if current.as_deref() != Some(credentials.password_hash.as_str()) {
                return Err(AppError::Unauthenticated);
            }
            let (agent, _) = agent::find_live(conn, credentials.id)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            session::insert(
                conn,
                &NewSession {
                    id: issued.session_id,
                    agent_id: agent.id,
                    tm_expire: issued.expires_at,
                },
            )
            .await?;
            Ok(agent)
        })
        .await
    })
    .await?;
    attempt.succeeded(state).await;
    tracing::info!(agent_id = %agent.id, session = %session_tag(issued.session_id), "login succeeded");
    Ok((issued, agent))
}

/// Appends `agent_login_failed` for an existing agent whose password check
/// failed: its customer's admins (and webhook) learn of guessing at their
/// agents. Unknown usernames leave no event: they belong to no customer,
/// and would let anyone write to the log. Not a change, so a failure to
/// record it is logged, not answered.
async fn record_failed_login(state: &AppState, agent_id: Uuid) {
    let recorded = async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            if let Some((agent, _)) = agent::find_live(conn, agent_id).await? {
                events::append(
                    conn,
                    None,
                    EventType::AgentLoginFailed,
                    Resource::Agent(&agent),
                )
                .await?;
            }
            Ok(())
        })
        .await
    };
    if let Err(error) = recorded.await {
        tracing::warn!(error = %crate::error::error_chain(&error), "could not record a failed login");
    }
}

/// A password check counted in advance as a failure, in every server's
/// limiter. `succeeded` gives the failure back; dropping it keeps it counted.
#[must_use = "an attempt counts as failed unless marked as succeeded"]
struct Attempt {
    counted: Counted,
    /// For logins: the username and address to remember as its own.
    remember: Option<(String, IpAddr)>,
}

impl Attempt {
    async fn succeeded(self, state: &AppState) {
        let remember = self.remember.as_ref().map(|(u, a)| (u.as_str(), *a));
        let given_back = async {
            login_limits::succeeded(&mut *state.conn().await?, &self.counted, remember).await
        };
        // The check itself succeeded: a failure to record that costs the
        // user a counted failure, not the request.
        if let Err(error) = given_back.await {
            tracing::warn!(error = %crate::error::error_chain(&error), "could not give back a login attempt");
        }
    }
}

/// Counts a password check in the limiter, or refuses it.
async fn reserve_attempt(
    state: &AppState,
    check: Check,
    username: Option<&str>,
    client: Option<IpAddr>,
) -> AppResult<Attempt> {
    let limiter = &state.login_limiter;
    let plan = limiter.plan(check, username, client);
    let refused = match limiter.refused_before(&plan) {
        Some(retry) => retry,
        None => {
            let reserved =
                login_limits::reserve(&mut *state.conn().await?, &plan, limiter.window()).await?;
            match reserved {
                Ok(counted) => {
                    return Ok(Attempt {
                        counted,
                        remember: plan.own_address,
                    });
                }
                Err(refusal) => {
                    limiter.remember_refusal(&refusal.buckets, refusal.retry_after);
                    refusal.retry_after
                }
            }
        }
    };
    tracing::info!(client = ?client, retry_after = refused.0, "password check refused by the limiter");
    state.metrics.record_login_failure("limited");
    Err(AppError::TooManyFailures {
        retry_after_seconds: refused.0,
    })
}

/// Revokes the login token the request was made with.
pub async fn logout(state: &AppState, principal: &Principal) -> AppResult<bool> {
    let CredentialId::Session {
        session_id,
        agent_id,
    } = principal.credential
    else {
        return Err(AppError::bad_input(
            "authorization",
            "logout ends a login session; delete an access key with deleteAccessKey",
        ));
    };
    let revoked = revoking(state, &format!("sessions:{session_id}"), async {
        let revoked = session::revoke(&mut *state.conn().await?, session_id, now_micros()).await?;
        Ok((revoked, revoked))
    })
    .await?;
    tracing::info!(%agent_id, session = %session_tag(session_id), "logged out");
    Ok(revoked)
}

/// Changes the caller's own password. Checking the current password counts
/// in the login limiter like a login. The change applies only if the
/// password is still the one verified (two concurrent changes cannot both
/// succeed). Every other login token of the agent is revoked; the one
/// making the request keeps working if it still does.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current_password: &str,
    new_password: &str,
    client: Option<IpAddr>,
) -> AppResult<AgentRow> {
    let CredentialId::Session {
        agent_id,
        session_id,
    } = principal.credential
    else {
        return Err(AppError::Forbidden);
    };
    validate::password(new_password).map_err(|e| e.for_field("newPassword"))?;
    let (username, stored) = {
        let mut conn = state.conn().await?;
        let agent = agent::find(&mut conn, agent_id)
            .await?
            .filter(|a| a.tm_delete.is_none())
            .ok_or(AppError::Unauthenticated)?;
        let stored = agent::find_password_hash(&mut conn, agent_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        (normal_username(&agent.username), stored)
    };
    let attempt =
        reserve_attempt(state, Check::CurrentPassword, username.as_deref(), client).await?;
    if !state.hasher.verify(current_password, &stored).await? {
        drop(attempt);
        state.metrics.record_login_failure("credentials");
        return Err(AppError::Unauthenticated);
    }
    attempt.succeeded(state).await;
    let agent = replace_password(
        state,
        principal,
        agent_id,
        Some(&stored),
        new_password,
        Some(session_id),
    )
    .await?;
    tracing::info!(%agent_id, "password changed");
    Ok(agent)
}

/// Sets an agent's password, as a super admin or an admin of the agent's
/// customer; only super admins may set a super admin's. Every login token
/// of that agent is revoked.
pub async fn set_agent_password(
    state: &AppState,
    principal: &Principal,
    agent_id: Uuid,
    password: &str,
) -> AppResult<AgentRow> {
    principal.require_agent()?;
    let target = agent::find(&mut *state.conn().await?, agent_id)
        .await?
        .filter(|a| a.tm_delete.is_none())
        .ok_or(AppError::NotFound("agent"))?;
    principal.require_customer_admin(target.customer_id)?;
    if target.permission & Permission::ProjectSuperAdmin.bit() != 0 {
        principal.require_super_admin()?;
    }
    validate::password(password)?;
    let agent = replace_password(state, principal, agent_id, None, password, None).await?;
    tracing::info!(%agent_id, by = ?principal.agent_id(), "password set");
    Ok(agent)
}

/// Stores a new password; with `expected`, only if the stored hash is still
/// that one (else `UNAUTHENTICATED`: the password changed meanwhile).
async fn replace_password(
    state: &AppState,
    actor: &Principal,
    agent_id: Uuid,
    expected: Option<&str>,
    password: &str,
    keep_session: Option<Uuid>,
) -> AppResult<AgentRow> {
    let hash = state.hasher.hash(password).await?;
    revoking(state, &format!("agents:{agent_id}"), async {
        retrying(|| async {
            let mut conn = state.conn().await?;
            conn.transaction::<_, AppError, _>(async |conn| {
                let now = now_micros();
                let agent = agent::set_password_hash(conn, agent_id, expected, &hash, now)
                    .await?
                    .ok_or(match expected {
                        Some(_) => AppError::Unauthenticated,
                        None => AppError::NotFound("agent"),
                    })?;
                session::revoke_all_of_agent(conn, agent_id, keep_session, now).await?;
                events::append(
                    conn,
                    Some(actor),
                    EventType::AgentUpdated,
                    Resource::Agent(&agent),
                )
                .await?;
                Ok((agent, true))
            })
            .await
        })
        .await
    })
    .await
}

/// The principal behind a bearer credential: a login token or an access key.
/// Cached per process; a cache miss costs one SQL statement.
pub async fn resolve_credential(state: &AppState, bearer: &str) -> AppResult<Principal> {
    if access_key::is_access_key(bearer) {
        resolve_access_key(state, bearer).await
    } else {
        resolve_token(state, bearer).await
    }
}

async fn resolve_token(state: &AppState, token: &str) -> AppResult<Principal> {
    let claims = state.tokens.verify(token)?;
    let key = CredentialKey::Session(claims.session_id);
    if let Some(cached) = state.credentials.get(&key) {
        if cached.principal.agent_id() == Some(claims.agent_id) {
            return Ok(cached.principal);
        }
    }
    let epoch = state.credentials.epoch();
    let (agent, of_platform_customer, expires_at) = session::find_live(
        &mut *state.conn().await?,
        claims.session_id,
        claims.agent_id,
    )
    .await?
    .ok_or(AppError::Unauthenticated)?;
    let principal = Principal::agent(
        agent.id,
        claims.session_id,
        agent.customer_id,
        agent.permission,
        of_platform_customer,
    );
    state
        .credentials
        .insert(key, principal.clone(), expires_at, epoch);
    Ok(principal)
}

async fn resolve_access_key(state: &AppState, key_text: &str) -> AppResult<Principal> {
    let hash = access_key::hash(key_text);
    let key = CredentialKey::AccessKey(hash.clone());
    let (principal, expires_at) = match state.credentials.get(&key) {
        Some(cached) => (cached.principal, cached.expires_at),
        None => {
            // Made-up keys cost a query each otherwise: remember them briefly.
            if state.unknown_access_keys.contains_key(&hash) {
                return Err(AppError::Unauthenticated);
            }
            let epoch = state.credentials.epoch();
            let found = access_key_rows::find_by_hash(&mut *state.conn().await?, &hash).await?;
            let row = match found {
                Some((row, true)) => row,
                Some((_, false)) => return Err(AppError::Unauthenticated),
                None => {
                    state.unknown_access_keys.insert(hash, ());
                    return Err(AppError::Unauthenticated);
                }
            };
            let principal = Principal::access_key(row.id, row.customer_id);
            state
                .credentials
                .insert(key, principal.clone(), row.tm_expire, epoch);
            (principal, row.tm_expire)
        }
    };
    if expires_at <= Utc::now() {
        return Err(AppError::Unauthenticated);
    }
    if let CredentialId::AccessKey { access_key_id } = principal.credential {
        record_key_use(state, access_key_id);
    }
    Ok(principal)
}

/// Notes that a key was used, writing at most once a minute per key, in the
/// background: the request does not wait for it, nor fail with it.
fn record_key_use(state: &AppState, access_key_id: Uuid) {
    if state.recently_used_keys.contains_key(&access_key_id) {
        return;
    }
    state.recently_used_keys.insert(access_key_id, ());
    let state = state.clone();
    // In the request's span, so that its log lines carry the request id; not
    // in its connection share, since the request does not wait for it.
    let span = tracing::Span::current();
    let write = async move {
        let at: DateTime<Utc> = now_micros();
        let result = async {
            access_key_rows::record_use(&mut *state.conn().await?, access_key_id, at).await?;
            AppResult::Ok(())
        }
        .await;
        if let Err(error) = result {
            // Let a later use try again.
            state.recently_used_keys.invalidate(&access_key_id);
            tracing::debug!(%access_key_id, %error, "could not record access key use");
        }
    };
    tokio::spawn(tracing::Instrument::instrument(write, span));
}

/// The caller's own agent (none for an access key) and customer.
pub async fn viewer(
    state: &AppState,
    principal: &Principal,
) -> AppResult<(Option<AgentRow>, CustomerRow)> {
    let mut conn = state.conn().await?;
    let agent = match principal.agent_id() {
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

/// One row per login piles up; rows expired for a day can never be used
/// again. Likewise the addresses the login limiter remembers.
pub async fn purge_expired_sessions(state: &AppState) -> AppResult<()> {
    let mut conn = state.conn().await?;
    let purged = session::delete_expired(&mut conn).await?;
    if purged > 0 {
        tracing::info!(purged, "removed expired login sessions");
    }
    login_limits::forget_old_addresses(&mut conn).await?;
    Ok(())
}
