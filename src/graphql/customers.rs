//! Customer queries and mutations; thin wrappers over `service::customers`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use uuid::Uuid;

use super::context::{principal, state};
use super::pagination::{Connection, page_cost, page_request};
use super::types::CustomerView;
use crate::db::models::customer::CustomerRow;
use crate::service::customers::{self, NewCustomerInput, WebhookMethod};

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// Live customers, newest first, as a Relay connection. Super admins only.
    /// `first`/`last` default to 20 and may be at most 100.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, counted from the newest end (default 20, at most 100).")]
        first: Option<i32>,
        #[graphql(desc = "Cursor of the edge after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size, counted from the oldest end (at most 100).")] last: Option<
            i32,
        >,
        #[graphql(desc = "Cursor of the edge before which the page ends.")] before: Option<String>,
    ) -> Result<Connection<CustomerRow>> {
        let principal = principal(ctx).await?;
        let request = page_request(first, after, last, before)?;
        let page = customers::list(state(ctx), principal, request).await?;
        Ok(Connection::new(page, None))
    }

    /// One customer by id, or null if there is none. Super admins see any
    /// (deleted ones too, with `tmDelete` set); a customer's own admins and
    /// managers see theirs.
    async fn customer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The customer's id.")] id: Uuid,
    ) -> Result<Option<CustomerView>> {
        let principal = principal(ctx).await?;
        Ok(customers::get(state(ctx), principal, id)
            .await?
            .map(Into::into))
    }
}

/// A new customer. A guest agent with the same username and password and
/// CUSTOMER_ADMIN permission is created with it.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// 3–64 characters of letters, digits and `._@+-`; unique among live
    /// customers and agents, case-insensitively.
    username: String,
    /// 8–256 characters. Write-only: it is stored only as an argon2id hash.
    password: String,
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
    /// HTTP method of the webhook.
    webhook_method: Option<WebhookMethod>,
    /// Empty, or an absolute http(s) URL of at most 1023 characters.
    webhook_uri: Option<String>,
    /// LINE channel secret, at most 1023 characters.
    line_secret: Option<String>,
    /// LINE channel access token, at most 1023 characters.
    line_token: Option<String>,
    /// Permission ids, at most 64.
    permission_ids: Option<Vec<Uuid>>,
}

impl From<CreateCustomerInput> for NewCustomerInput {
    fn from(input: CreateCustomerInput) -> Self {
        Self {
            username: input.username,
            password: input.password,
            name: input.name.unwrap_or_default(),
            detail: input.detail.unwrap_or_default(),
            webhook_method: input.webhook_method,
            webhook_uri: input.webhook_uri.unwrap_or_default(),
            line_secret: input.line_secret.unwrap_or_default(),
            line_token: input.line_token.unwrap_or_default(),
            permission_ids: input.permission_ids.unwrap_or_default(),
        }
    }
}

/// The result of `createCustomer`.
#[derive(SimpleObject)]
pub struct CreateCustomerPayload {
    /// The new customer.
    customer: CustomerView,
}

/// Which customer to delete.
#[derive(InputObject)]
pub struct DeleteCustomerInput {
    /// The customer's id.
    id: Uuid,
}

/// The result of `deleteCustomer`.
#[derive(SimpleObject)]
pub struct DeleteCustomerPayload {
    /// The deleted customer, with `tmDelete` set.
    customer: CustomerView,
}

#[derive(Default)]
pub struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Creates a customer and its guest agent, in one transaction. Super admins only.
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> Result<CreateCustomerPayload> {
        let principal = principal(ctx).await?;
        let row = customers::create(state(ctx), principal, input.into()).await?;
        Ok(CreateCustomerPayload {
            customer: row.into(),
        })
    }

    /// Soft-deletes a customer with its agents and access keys; their
    /// credentials stop working at once. Deleting a deleted customer returns
    /// it unchanged. Super admins only; the platform's own customer cannot be deleted.
    async fn delete_customer(
        &self,
        ctx: &Context<'_>,
        input: DeleteCustomerInput,
    ) -> Result<DeleteCustomerPayload> {
        let principal = principal(ctx).await?;
        let row = customers::delete(state(ctx), principal, input.id).await?;
        Ok(DeleteCustomerPayload {
            customer: row.into(),
        })
    }
}
