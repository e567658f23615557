//! The objects clients see. Each is built from a database row; none of them
//! can carry a password or its hash.

use async_graphql::{ComplexObject, Context, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::principal;
use super::loaders::GuestAgents;
use crate::auth::Permission;
use crate::db::models::access_key::AccessKeyRow;
use crate::db::models::agent::AgentRow;
use crate::db::models::customer::CustomerRow;
use crate::service::customers::{CustomerStatus, WebhookMethod};

/// A customer: an account of the platform.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Customer", complex)]
pub struct CustomerView {
    /// Unique id.
    pub id: Uuid,
    /// Login name of the customer (and of its guest agent); unique, case-insensitively.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Free-form description.
    pub detail: String,
    /// HTTP method of the webhook; null when the customer has no webhook.
    pub webhook_method: Option<WebhookMethod>,
    /// Where events are delivered; empty when the customer has no webhook.
    pub webhook_uri: String,
    /// Read through the `lineSecret` field, which applies the reader rule.
    #[graphql(skip)]
    pub line_secret: String,
    /// Read through the `lineToken` field, which applies the reader rule.
    #[graphql(skip)]
    pub line_token: String,
    /// Read through the `webhookSecret` field, which applies the admin rule.
    #[graphql(skip)]
    pub webhook_secret: String,
    /// Ids of the permissions granted to the customer.
    pub permission_ids: Vec<Uuid>,
    /// When the customer was created.
    pub tm_create: DateTime<Utc>,
    /// When the customer was last changed; null if never.
    pub tm_update: Option<DateTime<Utc>>,
    /// When the customer was deleted; null while it is live.
    pub tm_delete: Option<DateTime<Utc>>,
    /// When the customer was frozen; null unless it is.
    pub tm_freeze: Option<DateTime<Utc>>,
    /// Where the customer is in its lifecycle, as its timestamps say:
    /// DELETED when `tmDelete` is set, else FROZEN when `tmFreeze` is, else ACTIVE.
    pub status: CustomerStatus,
}

#[ComplexObject]
impl CustomerView {
    /// LINE messaging channel secret. Super admins, and the customer's own
    /// admins and managers, only (like `customer(id:)`): other agents of the
    /// customer see it through `me { customer }` no more than elsewhere.
    async fn line_secret(&self, ctx: &Context<'_>) -> Result<&str> {
        principal(ctx).await?.require_customer_reader(self.id)?;
        Ok(&self.line_secret)
    }

    /// LINE messaging channel access token; read like `lineSecret`.
    async fn line_token(&self, ctx: &Context<'_>) -> Result<&str> {
        principal(ctx).await?.require_customer_reader(self.id)?;
        Ok(&self.line_token)
    }

    /// The key that signs this customer's webhook deliveries
    /// (`X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the body>`). Super
    /// admins and the customer's own admins (and access keys) only;
    /// `rotateWebhookSecret` replaces it.
    async fn webhook_secret(&self, ctx: &Context<'_>) -> Result<&str> {
        principal(ctx).await?.require_customer_admin(self.id)?;
        Ok(&self.webhook_secret)
    }

    /// The admin agent created together with the customer. Loaded in one
    /// batch for a whole page of customers.
    async fn guest_agent(&self, ctx: &Context<'_>) -> Result<Option<AgentView>> {
        let loader = ctx.data_unchecked::<GuestAgents>();
        Ok(loader
            .load_one(self.id)
            .await?
            .flatten()
            .map(AgentView::from))
    }
}

impl From<CustomerRow> for CustomerView {
    fn from(row: CustomerRow) -> Self {
        Self {
            webhook_method: WebhookMethod::of(&row),
            status: CustomerStatus::of(&row),
            id: row.id,
            username: row.username,
            name: row.name,
            detail: row.detail,
            webhook_uri: row.webhook_uri,
            line_secret: row.line_secret,
            line_token: row.line_token,
            webhook_secret: row.webhook_secret,
            permission_ids: row.permission_ids.into_iter().flatten().collect(),
            tm_create: row.tm_create,
            tm_update: row.tm_update,
            tm_delete: row.tm_delete,
            tm_freeze: row.tm_freeze,
        }
    }
}

/// An agent: a person who logs in on behalf of a customer.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Agent")]
pub struct AgentView {
    /// Unique id.
    pub id: Uuid,
    /// The customer the agent belongs to.
    pub customer_id: Uuid,
    /// Login name; unique among live agents, case-insensitively.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Free-form description.
    pub detail: String,
    /// Permissions as a bitmask: PROJECT_SUPER_ADMIN 1, CUSTOMER_AGENT 16,
    /// CUSTOMER_ADMIN 32, CUSTOMER_MANAGER 64.
    pub permission: i32,
    /// The same permissions, by name.
    pub permissions: Vec<Permission>,
    /// When the agent was created.
    pub tm_create: DateTime<Utc>,
    /// When the agent was last changed; null if never.
    pub tm_update: Option<DateTime<Utc>>,
    /// When the agent was deleted; null while it is live.
    pub tm_delete: Option<DateTime<Utc>>,
}

impl From<AgentRow> for AgentView {
    fn from(row: AgentRow) -> Self {
        Self {
            id: row.id,
            customer_id: row.customer_id,
            username: row.username,
            name: row.name,
            detail: row.detail,
            permission: row.permission,
            permissions: Permission::from_mask(row.permission),
            tm_create: row.tm_create,
            tm_update: row.tm_update,
            tm_delete: row.tm_delete,
        }
    }
}

/// A long-lived credential of a customer. The key itself is shown only once,
/// by `createAccessKey`; it is stored only as a SHA-256 hash.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "AccessKey")]
pub struct AccessKeyView {
    /// Unique id.
    pub id: Uuid,
    /// The customer the key acts for (as CUSTOMER_ADMIN).
    pub customer_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free-form description.
    pub detail: String,
    /// The first characters of the key, to tell keys apart.
    pub token_prefix: String,
    /// When the key stops working.
    pub tm_expire: DateTime<Utc>,
    /// When the key was last used (recorded at most once a minute); null if never.
    pub tm_last_used: Option<DateTime<Utc>>,
    /// When the key was created.
    pub tm_create: DateTime<Utc>,
    /// When the key was last changed; null if never.
    pub tm_update: Option<DateTime<Utc>>,
    /// When the key was revoked; null while it is live.
    pub tm_delete: Option<DateTime<Utc>>,
}

impl From<AccessKeyRow> for AccessKeyView {
    fn from(row: AccessKeyRow) -> Self {
        Self {
            id: row.id,
            customer_id: row.customer_id,
            name: row.name,
            detail: row.detail,
            token_prefix: row.token_prefix,
            tm_expire: row.tm_expire,
            tm_last_used: row.tm_last_used,
            tm_create: row.tm_create,
            tm_update: row.tm_update,
            tm_delete: row.tm_delete,
        }
    }
}
