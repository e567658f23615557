//! Login and the caller's own view.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{principal, state};
use super::types::{AgentPermission, AgentView, CustomerView, permission_names};
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
    permissions: Vec<AgentPermission>,
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
            permissions: permission_names(principal.permission),
        })
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Exchanges an agent's username and password for a login token. Every
    /// failure is the same `UNAUTHENTICATED` error.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<LoginPayload> {
        let (issued, agent) =
            service::auth::login(state(ctx), &input.username, &input.password).await?;
        Ok(LoginPayload {
            token: issued.token,
            expires_at: issued.expires_at,
            agent: agent.into(),
        })
    }
}
