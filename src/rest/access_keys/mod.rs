//! `/v1.0/accesskeys`: list, create, read, rename and revoke access keys, as
//! thin wrappers over `service::access_keys` that only translate the
//! platform's shapes (`types`).

mod types;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use self::types::{
    AccessKey, AccessKeyList, CreateAccessKeyRequest, CreatedAccessKey, ListAccessKeysQuery,
    UpdateAccessKeyRequest, expire_named_as_in_rest,
};
use super::error::{CredentialRefused, ErrorBody, RestError, ServerFailures};
use super::request::{Caller, body, path_id};
use crate::app::AppState;
use crate::error::AppError;
use crate::service::access_keys;

/// Lists a customer's live (not revoked) keys, newest first: the caller's
/// own customer's, or, for super admins, `customer_id`'s. Needs
/// CUSTOMER_ADMIN; access keys may list.
///
/// Paging works as for customers: pass `next_page_token` as `page_token`
/// until `result` is empty.
#[utoipa::path(
    get,
    path = "/v1.0/accesskeys",
    tag = "accesskeys",
    operation_id = "listAccessKeys",
    params(ListAccessKeysQuery),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "One page of access keys.", body = AccessKeyList),
        (status = 400, description = "Bad `customer_id`, `page_size` or `page_token`.", body = ErrorBody),
        (status = 403, description = "Not an admin of this customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AccessKeyList>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let (customer_id, request) = ListAccessKeysQuery::parse(&caller.query)?.into_parts()?;
    let page = access_keys::list(&state, &principal, customer_id, request).await?;
    Ok(Json(page.into()))
}

/// Creates an access key and returns it with `token`, the key itself, shown
/// only this once. Super admins (for any customer, via `customer_id`), or
/// agents with CUSTOMER_ADMIN for their own customer; an access key cannot
/// create keys. A customer holds at most `MAX_ACCESS_KEYS_PER_CUSTOMER`
/// (100 by default) live keys.
#[utoipa::path(
    post,
    path = "/v1.0/accesskeys",
    tag = "accesskeys",
    operation_id = "createAccessKey",
    request_body = CreateAccessKeyRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The new key, with `token`; sent with `Cache-Control: no-store`.", body = CreatedAccessKey),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not an admin of this customer, or an access key.", body = ErrorBody),
        (status = 404, description = "No such live customer.", body = ErrorBody),
        (status = 409, description = "The customer already has the most live keys allowed.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let principal = caller.authenticate(&state).await?;
    let input = CreateAccessKeyRequest::parse(&body(request)?)?;
    let issued = access_keys::create(&state, &principal, input.into())
        .await
        .map_err(expire_named_as_in_rest)?;
    // The key is a credential: no cache on the way may keep it.
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, Json(CreatedAccessKey::from(issued))).into_response())
}

/// Reads one access key, revoked ones too (with `tm_delete` set). Needs
/// CUSTOMER_ADMIN of the key's customer (access keys may read), or a super admin.
#[utoipa::path(
    get,
    path = "/v1.0/accesskeys/{id}",
    tag = "accesskeys",
    operation_id = "getAccessKey",
    params(("id" = Uuid, Path, description = "The key's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The key, without the key itself.", body = AccessKey),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not an admin of the key's customer.", body = ErrorBody),
        (status = 404, description = "No such key.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AccessKey>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = access_keys::get(&state, &principal, id)
        .await?
        .ok_or(AppError::NotFound("access key"))?;
    Ok(Json(row.into()))
}

/// Renames a live access key (`name`, `detail`; a field left out keeps its
/// value) and sets its `tm_update`. Needs CUSTOMER_ADMIN of the key's
/// customer (access keys may rename), or a super admin.
#[utoipa::path(
    put,
    path = "/v1.0/accesskeys/{id}",
    tag = "accesskeys",
    operation_id = "updateAccessKey",
    params(("id" = Uuid, Path, description = "The key's id.")),
    request_body = UpdateAccessKeyRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The key as it is now.", body = AccessKey),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not an admin of the key's customer.", body = ErrorBody),
        (status = 404, description = "No such live key.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<AccessKey>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let input = UpdateAccessKeyRequest::parse(&body(request)?)?.for_key(id);
    let row = access_keys::update(&state, &principal, input).await?;
    Ok(Json(row.into()))
}

/// Revokes an access key: it stops working at once, on every server.
/// Revoking a revoked key returns it unchanged. Needs CUSTOMER_ADMIN of the
/// key's customer (access keys may revoke, themselves included), or a super admin.
#[utoipa::path(
    delete,
    path = "/v1.0/accesskeys/{id}",
    tag = "accesskeys",
    operation_id = "deleteAccessKey",
    params(("id" = Uuid, Path, description = "The key's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The revoked key, with `tm_delete` set.", body = AccessKey),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not an admin of the key's customer.", body = ErrorBody),
        (status = 404, description = "No such key.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AccessKey>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = access_keys::delete(&state, &principal, id).await?;
    Ok(Json(row.into()))
}
