//! Customer queries and mutations; thin wrappers over `service::customers`.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{principal, state};
use super::pagination::{Connection, page_cost, page_request};
use super::types::CustomerView;
use crate::db::models::customer::CustomerRow;
use crate::service::customers::{
    self, CustomerFilter, CustomerOrder, CustomerStatus, CustomerUpdate, NewCustomerInput,
    WebhookMethod,
};

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// Customers as a Relay connection: every live one (frozen ones
    /// included), or those `filter` selects; newest first unless `orderBy`
    /// says otherwise. Super admins only. `first`/`last` default to 20 and
    /// may be at most 100; a cursor is a position, valid under any filter.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    // A GraphQL field's arguments are the resolver's parameters.
    #[allow(clippy::too_many_arguments)]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which customers to list; omitted, every live one.")] filter: Option<
            CustomerFilterInput,
        >,
        #[graphql(desc = "The order of the listing.", default)] order_by: CustomerOrder,
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
        let filter = filter.map(CustomerFilter::from).unwrap_or_default();
        let page = customers::list(state(ctx), principal, &filter, order_by, request).await?;
        Ok(Connection::new(page, filter))
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

/// Which customers `customers` lists; every condition given must hold.
#[derive(InputObject)]
#[graphql(name = "CustomerFilter")]
pub(super) struct CustomerFilterInput {
    /// Case-insensitive substring of the username or the name, at most 255
    /// characters; empty matches every customer.
    search: Option<String>,
    /// Only customers in this state. Omitted: every live customer, frozen
    /// ones included (DELETED lists the deleted ones).
    status: Option<CustomerStatus>,
    /// Only customers created at or after this time.
    created_after: Option<DateTime<Utc>>,
    /// Only customers created before this time.
    created_before: Option<DateTime<Utc>>,
}

impl From<CustomerFilterInput> for CustomerFilter {
    fn from(input: CustomerFilterInput) -> Self {
        Self {
            search: input.search,
            status: input.status,
            created_after: input.created_after,
            created_before: input.created_before,
        }
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

/// Changes to a customer. An absent field is left as it is.
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    /// The customer's id. Omit it to update the caller's own customer (the
    /// customer of the agent or access key making the request).
    id: Option<Uuid>,
    /// Display name, at most 255 characters; null leaves it unchanged.
    name: Option<String>,
    /// Free-form description, at most 4096 characters; null leaves it unchanged.
    detail: Option<String>,
    /// HTTP method of the webhook; null removes it.
    webhook_method: MaybeUndefined<WebhookMethod>,
    /// Empty, or an absolute http(s) URL of at most 1023 characters; null
    /// empties it.
    webhook_uri: MaybeUndefined<String>,
    /// The customer's `tmUpdate` as last read: the update is refused with
    /// CONFLICT if the customer changed since. Null means "never updated".
    /// Omit it to update whatever the customer's state.
    expected_tm_update: MaybeUndefined<DateTime<Utc>>,
}

/// absent → unchanged, null → `cleared`, a value → that value.
fn change<T>(field: MaybeUndefined<T>, cleared: impl FnOnce() -> T) -> Option<T> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(cleared()),
        MaybeUndefined::Value(value) => Some(value),
    }
}

impl From<UpdateCustomerInput> for CustomerUpdate {
    fn from(input: UpdateCustomerInput) -> Self {
        Self {
            name: input.name,
            detail: input.detail,
            webhook_method: change(input.webhook_method.map_value(Some), || None),
            webhook_uri: change(input.webhook_uri, String::new),
            expected_tm_update: change(input.expected_tm_update.map_value(Some), || None),
        }
    }
}

/// The result of `updateCustomer`.
#[derive(SimpleObject)]
pub struct UpdateCustomerPayload {
    /// The customer as updated, with `tmUpdate` set.
    customer: CustomerView,
}

/// A customer's new LINE messaging channel credentials.
#[derive(InputObject)]
pub struct UpdateCustomerLineInfoInput {
    /// The customer's id.
    id: Uuid,
    /// LINE channel secret, at most 1023 characters.
    line_secret: String,
    /// LINE channel access token, at most 1023 characters.
    line_token: String,
}

/// The result of `updateCustomerLineInfo`.
#[derive(SimpleObject)]
pub struct UpdateCustomerLineInfoPayload {
    /// The customer as updated.
    customer: CustomerView,
}

/// A customer's new permission ids.
#[derive(InputObject)]
pub struct UpdateCustomerPermissionIdsInput {
    /// The customer's id.
    id: Uuid,
    /// All of the customer's permission ids (replacing the old ones), at most 64.
    permission_ids: Vec<Uuid>,
}

/// The result of `updateCustomerPermissionIds`.
#[derive(SimpleObject)]
pub struct UpdateCustomerPermissionIdsPayload {
    /// The customer as updated.
    customer: CustomerView,
}

/// Which customer to freeze.
#[derive(InputObject)]
pub struct FreezeCustomerInput {
    /// The customer's id.
    id: Uuid,
}

/// The result of `freezeCustomer`.
#[derive(SimpleObject)]
pub struct FreezeCustomerPayload {
    /// The customer, `status` FROZEN and `tmFreeze` set.
    customer: CustomerView,
}

/// Which customer to recover.
#[derive(InputObject)]
pub struct RecoverCustomerInput {
    /// The customer's id.
    id: Uuid,
}

/// The result of `recoverCustomer`.
#[derive(SimpleObject)]
pub struct RecoverCustomerPayload {
    /// The customer, `status` ACTIVE.
    customer: CustomerView,
}

/// Whose webhook secret to replace.
#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    /// The customer's id.
    customer_id: Uuid,
}

/// The result of `rotateWebhookSecret`.
#[derive(SimpleObject)]
pub struct RotateWebhookSecretPayload {
    /// The new secret; deliveries from now on are signed with it.
    webhook_secret: String,
    /// The customer.
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

    /// Changes a customer's name, detail or webhook, in one transaction;
    /// sets `tmUpdate`. Super admins update any customer; a customer's own
    /// admins (and its access keys) theirs. A deleted customer is NOT_FOUND;
    /// a stale `expectedTmUpdate` is CONFLICT.
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerInput,
    ) -> Result<UpdateCustomerPayload> {
        let principal = principal(ctx).await?;
        let id = input.id;
        let row = customers::update(state(ctx), principal, id, input.into()).await?;
        Ok(UpdateCustomerPayload {
            customer: row.into(),
        })
    }

    /// Replaces a customer's LINE channel secret and token. Super admins,
    /// and the customer's own admins.
    async fn update_customer_line_info(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerLineInfoInput,
    ) -> Result<UpdateCustomerLineInfoPayload> {
        let principal = principal(ctx).await?;
        let row = customers::update_line_info(
            state(ctx),
            principal,
            input.id,
            &input.line_secret,
            &input.line_token,
        )
        .await?;
        Ok(UpdateCustomerLineInfoPayload {
            customer: row.into(),
        })
    }

    /// Replaces a customer's permission ids (duplicates dropped). Super admins only.
    async fn update_customer_permission_ids(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerPermissionIdsInput,
    ) -> Result<UpdateCustomerPermissionIdsPayload> {
        let principal = principal(ctx).await?;
        let row = customers::update_permission_ids(
            state(ctx),
            principal,
            input.id,
            &input.permission_ids,
        )
        .await?;
        Ok(UpdateCustomerPermissionIdsPayload {
            customer: row.into(),
        })
    }

    /// Freezes a customer: its agents and access keys get UNAUTHENTICATED
    /// from their next request on, on every server, and nothing is deleted;
    /// `recoverCustomer` undoes it. Freezing a frozen customer returns it
    /// unchanged; a deleted one is NOT_FOUND. Super admins only; the
    /// platform's own customer cannot be frozen.
    async fn freeze_customer(
        &self,
        ctx: &Context<'_>,
        input: FreezeCustomerInput,
    ) -> Result<FreezeCustomerPayload> {
        let principal = principal(ctx).await?;
        let row = customers::freeze(state(ctx), principal, input.id).await?;
        Ok(FreezeCustomerPayload {
            customer: row.into(),
        })
    }

    /// Recovers a customer: unfreezes it, and restores it if it was deleted
    /// within the retention window (`CUSTOMER_RESTORE_DAYS`, 30 days by
    /// default), with the agents and access keys deleted with it (their
    /// login tokens stay revoked). CONFLICT if deleted longer ago, or if its
    /// username or one of its agents' has been taken since. Recovering an
    /// active customer returns it unchanged. Super admins only.
    async fn recover_customer(
        &self,
        ctx: &Context<'_>,
        input: RecoverCustomerInput,
    ) -> Result<RecoverCustomerPayload> {
        let principal = principal(ctx).await?;
        let row = customers::recover(state(ctx), principal, input.id).await?;
        Ok(RecoverCustomerPayload {
            customer: row.into(),
        })
    }

    /// Replaces a customer's webhook secret and answers the new one; every
    /// delivery from then on is signed with it. Super admins, and the
    /// customer's own admins.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> Result<RotateWebhookSecretPayload> {
        let principal = principal(ctx).await?;
        let row =
            customers::rotate_webhook_secret(state(ctx), principal, input.customer_id).await?;
        Ok(RotateWebhookSecretPayload {
            webhook_secret: row.webhook_secret.clone(),
            customer: row.into(),
        })
    }
}
