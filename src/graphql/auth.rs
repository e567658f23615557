//! Login and the caller's own view.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{principal, state};
use super::types::{AgentView, CustomerView};
use crate::auth::Permission;
use crate::extract::ClientAddress;
use crate::service;

/// Credentials of an agent.
#[derive(InputObject)]
pub struct LoginInput {
    /// The agent's username (case-insensitive).
    username: String,
    /// The agent's password.
    password: String,
}

/// A fresh login token.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>`. Shown only this once.
    token: String,
    /// When the token stops working.
    expires_at: DateTime<Utc>,
    /// The agent that logged in.
    agent: AgentView,
}

/// The authenticated caller.
#[derive(SimpleObject)]
pub struct Viewer {
    /// The caller's agent; null when authenticated with an access key.
    agent: Option<AgentView>,
    /// The customer the caller belongs to.
    customer: CustomerView,
    /// The permissions the caller acts with.
    permissions: Vec<Permission>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// Who the request is authenticated as. Needs any valid credential.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let principal = principal(ctx).await?;
        let (agent, customer) = service::auth::viewer(state(ctx), principal).await?;
        Ok(Viewer {
            agent: agent.map(Into::into),
            customer: customer.into(),
            permissions: Permission::from_mask(principal.permission),
        })
    }
}

/// The result of `logout`.
#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// Whether the token was live until now.
    revoked: bool,
}

/// A new password for the caller.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The caller's present password.
    current_password: String,
    /// 8–256 characters.
    new_password: String,
}

/// The result of `changePassword`.
#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// The caller's agent.
    agent: AgentView,
}

/// A new password for an agent.
#[derive(InputObject)]
pub struct SetAgentPasswordInput {
    /// The agent's id.
    agent_id: Uuid,
    /// 8–256 characters.
    password: String,
}

/// The result of `setAgentPassword`.
#[derive(SimpleObject)]
pub struct SetAgentPasswordPayload {
    /// The agent whose password was set.
    agent: AgentView,
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Exchanges an agent's username and password for a login token. Every
    /// failure is the same `UNAUTHENTICATED` error; after repeated failures
    /// for a username or from an address, attempts are refused for a while
    /// and the error carries `extensions.retryAfterSeconds`.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<LoginPayload> {
        let client = ctx.data_opt::<ClientAddress>().and_then(|c| c.0);
        let (issued, agent) =
            service::auth::login(state(ctx), &input.username, &input.password, client).await?;
        Ok(LoginPayload {
            token: issued.token,
            expires_at: issued.expires_at,
            agent: agent.into(),
        })
    }

    /// Revokes the login token this request is made with, on every server.
    async fn logout(&self, ctx: &Context<'_>) -> Result<LogoutPayload> {
        let principal = principal(ctx).await?;
        let revoked = service::auth::logout(state(ctx), principal).await?;
        Ok(LogoutPayload { revoked })
    }

    /// Changes the caller's password. The caller's other login tokens are
    /// revoked; the one making this request keeps working. Agents only.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> Result<ChangePasswordPayload> {
        let principal = principal(ctx).await?;
        let client = ctx.data_opt::<ClientAddress>().and_then(|c| c.0);
        let agent = service::auth::change_password(
            state(ctx),
            principal,
            &input.current_password,
            &input.new_password,
            client,
        )
        .await?;
        Ok(ChangePasswordPayload {
            agent: agent.into(),
        })
    }

    /// Sets an agent's password and revokes all its login tokens. Super
    /// admins, or agents with CUSTOMER_ADMIN of the same customer.
    async fn set_agent_password(
        &self,
        ctx: &Context<'_>,
        input: SetAgentPasswordInput,
    ) -> Result<SetAgentPasswordPayload> {
        let principal = principal(ctx).await?;
        let agent = service::auth::set_agent_password(
            state(ctx),
            principal,
            input.agent_id,
            &input.password,
        )
        .await?;
        Ok(SetAgentPasswordPayload {
            agent: agent.into(),
        })
    }
}
