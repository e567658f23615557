//! Access keys: create (shown once), list, read, rename, revoke.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::events::{self, EventType, Resource};
use super::pagination::{Page, PageRequest};
use super::revoking;
use super::{now_micros, retrying, validate};
use crate::app::AppState;
use crate::auth::{Principal, access_key};
use crate::db::models::access_key::{
    self as rows, AccessKeyChanges, AccessKeyRow, NewAccessKeyRow,
};
use crate::db::models::customer;
use crate::error::{AppError, AppResult};

pub const DEFAULT_EXPIRE_SECONDS: i64 = 365 * 24 * 3600;
pub const MIN_EXPIRE_SECONDS: i64 = 24 * 3600;
pub const MAX_EXPIRE_SECONDS: i64 = 5 * 365 * 24 * 3600;

#[derive(Clone, Debug, Default)]
pub struct NewAccessKeyInput {
    /// Whose key; `None` for the caller's own customer.
    pub customer_id: Option<Uuid>,
    pub name: String,
    pub detail: String,
    pub expire_seconds: Option<i64>,
}

/// A key as issued: the row, and the key itself, which is never shown again.
pub struct IssuedAccessKey {
    pub row: AccessKeyRow,
    pub token: String,
}

impl std::fmt::Debug for IssuedAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessKey")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

/// Creates a key for a customer. Super admins may for any customer, an
/// agent with CUSTOMER_ADMIN for its own; no access key can mint keys. One
/// transaction under the customer's row lock: refused with NOT_FOUND once the
/// customer is deleted, and with CONFLICT when it already has
/// `MAX_ACCESS_KEYS_PER_CUSTOMER` live (not deleted, not expired) keys.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: NewAccessKeyInput,
) -> AppResult<IssuedAccessKey> {
    principal.require_agent()?;
    let customer_id = input.customer_id.unwrap_or(principal.customer_id);
    principal.require_customer_admin(customer_id)?;
    validate::max_chars("name", &input.name, 255)?;
    validate::max_chars("detail", &input.detail, 4096)?;
    let expire_seconds = input.expire_seconds.unwrap_or(DEFAULT_EXPIRE_SECONDS);
    if !(MIN_EXPIRE_SECONDS..=MAX_EXPIRE_SECONDS).contains(&expire_seconds) {
        return Err(AppError::bad_input(
            "expireSeconds",
            format!(
                "`expireSeconds` must be between {MIN_EXPIRE_SECONDS} and {MAX_EXPIRE_SECONDS}"
            ),
        ));
    }
    let tm_expire: DateTime<Utc> = now_micros() + chrono::Duration::seconds(expire_seconds);

    let max_keys = state.config.max_access_keys_per_customer;
    let key = access_key::generate();
    let row = retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            // The same row lock as deleteCustomer takes: a delete either
            // committed before this point (and the customer is seen deleted)
            // or waits until this key is in, and then deletes it too. It also
            // serializes concurrent creates, so the cap below cannot be overshot.
            let customer = customer::find_for_update(conn, customer_id)
                .await?
                .filter(|c| !c.is_deleted())
                .ok_or(AppError::NotFound("customer"))?;
            // As in `customers::apply`: frozen since the caller was let in.
            if customer.is_frozen() && !principal.is_super_admin() {
                return Err(AppError::Unauthenticated);
            }
            let usable = rows::count_usable(conn, customer_id, now_micros()).await?;
            if usable >= i64::from(max_keys) {
                return Err(AppError::Conflict {
                    field: None,
                    message: format!(
                        "this customer already has {max_keys} live access keys, the most allowed; delete one first"
                    )
                    .into(),
                });
            }
            let row = rows::insert(
                conn,
                &NewAccessKeyRow {
                    id: Uuid::now_v7(),
                    customer_id,
                    name: &input.name,
                    detail: &input.detail,
                    token_hash: &key.token_hash,
                    token_prefix: &key.token_prefix,
                    tm_expire,
                },
            )
            .await?;
            let event = EventType::AccesskeyCreated;
            events::append(conn, Some(principal), event, Resource::AccessKey(&row)).await?;
            Ok(row)
        })
        .await
    })
    .await?;
    tracing::info!(access_key_id = %row.id, %customer_id, "created access key");
    Ok(IssuedAccessKey {
        row,
        token: key.token,
    })
}

/// Whose keys a caller may list: its own customer's, or (super admins) any.
fn listed_customer(principal: &Principal, customer_id: Option<Uuid>) -> AppResult<Uuid> {
    let customer_id = customer_id.unwrap_or(principal.customer_id);
    principal.require_customer_admin(customer_id)?;
    Ok(customer_id)
}

/// A customer's live keys, newest first.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    customer_id: Option<Uuid>,
    request: PageRequest,
) -> AppResult<Page<AccessKeyRow>> {
    let customer_id = listed_customer(principal, customer_id)?;
    let window = request.window();
    let rows = state
        .read(Some(principal), |mut conn| async move {
            Ok(rows::page(&mut conn, customer_id, window).await?)
        })
        .await?;
    Ok(Page::from_overfetched(&request, rows))
}

pub async fn count(
    state: &AppState,
    principal: &Principal,
    customer_id: Option<Uuid>,
) -> AppResult<i64> {
    let customer_id = listed_customer(principal, customer_id)?;
    state
        .read(Some(principal), |mut conn| async move {
            Ok(rows::count_live(&mut conn, customer_id).await?)
        })
        .await
}

/// A key's new name and detail; `None` leaves one as it is.
#[derive(Clone, Debug)]
pub struct AccessKeyUpdate {
    pub id: Uuid,
    pub name: Option<String>,
    pub detail: Option<String>,
}

/// One key, revoked ones included (with `tm_delete` set), as `deleteAccessKey`
/// returns them. `None` for an unknown id; another customer's key is
/// FORBIDDEN to all but super admins, the same answer `delete` gives.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> AppResult<Option<AccessKeyRow>> {
    let found = state
        .read(Some(principal), |mut conn| async move {
            Ok(rows::find(&mut conn, id).await?)
        })
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    principal.require_customer_admin(row.customer_id)?;
    Ok(Some(row))
}

/// Renames a live key and sets its `tm_update`. Access keys may rename keys
/// (they are their customer's admins); a revoked key is NOT_FOUND, since
/// nothing can use it any more.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    input: AccessKeyUpdate,
) -> AppResult<AccessKeyRow> {
    if let Some(name) = &input.name {
        validate::max_chars("name", name, 255)?;
    }
    if let Some(detail) = &input.detail {
        validate::max_chars("detail", detail, 4096)?;
    }
    let mut conn = state.conn().await?;
    let existing = rows::find(&mut conn, input.id)
        .await?
        .ok_or(AppError::NotFound("access key"))?;
    principal.require_customer_admin(existing.customer_id)?;
    let changes = AccessKeyChanges {
        name: input.name.as_deref(),
        detail: input.detail.as_deref(),
        tm_update: now_micros(),
    };
    // The live filter in the UPDATE, not the read above, decides: a key
    // revoked in between is not renamed.
    let row = conn
        .transaction::<_, AppError, _>(async |conn| {
            let row = rows::update_live(conn, input.id, &changes)
                .await?
                .ok_or(AppError::NotFound("access key"))?;
            let event = EventType::AccesskeyUpdated;
            events::append(conn, Some(principal), event, Resource::AccessKey(&row)).await?;
            Ok(row)
        })
        .await?;
    tracing::info!(access_key_id = %row.id, "updated access key");
    Ok(row)
}

/// Revokes a key; revoking a revoked key returns it unchanged.
pub async fn delete(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<AccessKeyRow> {
    let existing = rows::find(&mut *state.conn().await?, id)
        .await?
        .ok_or(AppError::NotFound("access key"))?;
    principal.require_customer_admin(existing.customer_id)?;
    if existing.tm_delete.is_some() {
        return Ok(existing);
    }
    let deleted = revoking(state, &format!("access_keys:{id}"), async {
        let mut conn = state.conn().await?;
        let deleted = conn
            .transaction::<_, AppError, _>(async |conn| {
                let deleted = rows::mark_deleted(conn, id, now_micros()).await?;
                if let Some(row) = &deleted {
                    let event = EventType::AccesskeyDeleted;
                    events::append(conn, Some(principal), event, Resource::AccessKey(row)).await?;
                }
                Ok(deleted)
            })
            .await?;
        let revoked = deleted.is_some();
        Ok((deleted, revoked))
    })
    .await?;
    match deleted {
        Some(row) => {
            tracing::info!(access_key_id = %id, "deleted access key");
            Ok(row)
        }
        // Deleted by someone else in the meantime.
        None => rows::find(&mut *state.conn().await?, id)
            .await?
            .ok_or(AppError::NotFound("access key")),
    }
}
