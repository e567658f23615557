//! Access key queries and mutations; thin wrappers over `service::access_keys`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use uuid::Uuid;

use super::context::{principal, state};
use super::pagination::{Connection, page_cost, page_request};
use super::types::AccessKeyView;
use crate::db::models::access_key::AccessKeyRow;
use crate::service::access_keys::{self, AccessKeyUpdate, NewAccessKeyInput};

#[derive(Default)]
pub struct AccessKeyQuery;

#[Object]
impl AccessKeyQuery {
    /// Live access keys of a customer, newest first: the caller's own
    /// customer's, or, for super admins, `customerId`'s. Needs CUSTOMER_ADMIN
    /// (access keys may list too).
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn access_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose keys; defaults to the caller's own customer.")] customer_id: Option<
            Uuid,
        >,
        #[graphql(desc = "Page size, counted from the newest end (default 20, at most 100).")]
        first: Option<i32>,
        #[graphql(desc = "Cursor of the edge after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size, counted from the oldest end (at most 100).")] last: Option<
            i32,
        >,
        #[graphql(desc = "Cursor of the edge before which the page ends.")] before: Option<String>,
    ) -> Result<Connection<AccessKeyRow>> {
        let principal = principal(ctx).await?;
        let request = page_request(first, after, last, before)?;
        let page = access_keys::list(state(ctx), principal, customer_id, request).await?;
        Ok(Connection::new(page, customer_id))
    }

    /// One access key by id, revoked ones included (with `tmDelete` set);
    /// null when there is no such key. Needs CUSTOMER_ADMIN of the key's
    /// customer (access keys may read too), or a super admin.
    async fn access_key(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<AccessKeyView>> {
        let principal = principal(ctx).await?;
        let row = access_keys::get(state(ctx), principal, id).await?;
        Ok(row.map(Into::into))
    }
}

/// A new access key.
#[derive(InputObject)]
pub struct CreateAccessKeyInput {
    /// Whose key; defaults to the caller's own customer (only super admins
    /// may name another).
    customer_id: Option<Uuid>,
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
    /// Lifetime in seconds: at least 86400 (a day), at most 157680000 (five
    /// years); default 31536000 (a year).
    expire_seconds: Option<i64>,
}

/// The result of `createAccessKey`.
#[derive(SimpleObject)]
pub struct CreateAccessKeyPayload {
    /// The new key's details.
    access_key: AccessKeyView,
    /// The key, to send as `Authorization: Bearer <token>`. Shown only this
    /// once: store it now.
    token: String,
}

/// Which access key to revoke.
#[derive(InputObject)]
pub struct DeleteAccessKeyInput {
    /// The key's id.
    id: Uuid,
}

/// The result of `deleteAccessKey`.
#[derive(SimpleObject)]
pub struct DeleteAccessKeyPayload {
    /// The revoked key, with `tmDelete` set.
    access_key: AccessKeyView,
}

/// A key's new name and detail; a field left out keeps its value.
#[derive(InputObject)]
pub struct UpdateAccessKeyInput {
    /// The key's id.
    id: Uuid,
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
}

/// The result of `updateAccessKey`.
#[derive(SimpleObject)]
pub struct UpdateAccessKeyPayload {
    /// The key as it is now, with `tmUpdate` set.
    access_key: AccessKeyView,
}

#[derive(Default)]
pub struct AccessKeyMutation;

#[Object]
impl AccessKeyMutation {
    /// Creates an access key. Super admins, or agents with CUSTOMER_ADMIN for
    /// their own customer; an access key cannot create keys.
    async fn create_access_key(
        &self,
        ctx: &Context<'_>,
        input: CreateAccessKeyInput,
    ) -> Result<CreateAccessKeyPayload> {
        let principal = principal(ctx).await?;
        let issued = access_keys::create(
            state(ctx),
            principal,
            NewAccessKeyInput {
                customer_id: input.customer_id,
                name: input.name.unwrap_or_default(),
                detail: input.detail.unwrap_or_default(),
                expire_seconds: input.expire_seconds,
            },
        )
        .await?;
        Ok(CreateAccessKeyPayload {
            access_key: issued.row.into(),
            token: issued.token,
        })
    }

    /// Renames a live access key (`name`, `detail`) and sets its `tmUpdate`.
    /// Needs CUSTOMER_ADMIN of the key's customer (access keys may rename
    /// too), or a super admin; a revoked key is NOT_FOUND.
    async fn update_access_key(
        &self,
        ctx: &Context<'_>,
        input: UpdateAccessKeyInput,
    ) -> Result<UpdateAccessKeyPayload> {
        let principal = principal(ctx).await?;
        let row = access_keys::update(
            state(ctx),
            principal,
            AccessKeyUpdate {
                id: input.id,
                name: input.name,
                detail: input.detail,
            },
        )
        .await?;
        Ok(UpdateAccessKeyPayload {
            access_key: row.into(),
        })
    }

    /// Revokes an access key at once, on every server. Revoking a revoked
    /// key returns it unchanged.
    async fn delete_access_key(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccessKeyInput,
    ) -> Result<DeleteAccessKeyPayload> {
        let principal = principal(ctx).await?;
        let row = access_keys::delete(state(ctx), principal, input.id).await?;
        Ok(DeleteAccessKeyPayload {
            access_key: row.into(),
        })
    }
}
