//! `/v1.0/customers` and `/v1.0/customer`: list, read, create, update and
//! delete customers, as thin wrappers over `service::customers` that only
//! translate the original API's shapes (`types`, `updates`).

mod types;
mod updates;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};

use self::types::{CreateCustomerRequest, Customer, CustomerList, ListCustomersQuery, OwnCustomer};
use self::updates::{
    UpdateCustomerRequest, UpdateLineInfoRequest, UpdatePasswordRequest, UpdatePermissionIdsRequest,
};
use super::error::{CredentialRefused, ErrorBody, RestError, ServerFailures};
use super::request::{Caller, body, path_id};
use crate::app::AppState;
use crate::error::AppError;
use crate::service::customers;

/// Lists live customers, newest first. Super admins only.
///
/// Paging never skips nor repeats a customer, even among customers created
/// at the same microsecond: `next_page_token` is
/// `YYYY-MM-DD HH:MM:SS.ffffff_<id>`, the `tm_create` of the page's last
/// customer and then its id. Keep requesting with the last
/// `next_page_token` until `result` is empty (its `next_page_token` is then
/// empty too). A bare timestamp as `page_token`, as the original API issued,
/// still means "created strictly before".
#[utoipa::path(
    get,
    path = "/v1.0/customers",
    tag = "customers",
    operation_id = "listCustomers",
    params(ListCustomersQuery),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "One page of customers.", body = CustomerList),
        (status = 400, description = "Bad `page_size` or `page_token`.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CustomerList>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let request = ListCustomersQuery::parse(&caller.query)?.page_request()?;
    let page = customers::list(
        &state,
        &principal,
        &Default::default(),
        Default::default(),
        request,
    )
    .await?;
    Ok(Json(page.into()))
}

/// Reads one customer. Super admins read any, deleted ones too (with
/// `tm_delete` set); a customer's own admins and managers read theirs.
#[utoipa::path(
    get,
    path = "/v1.0/customers/{id}",
    tag = "customers",
    operation_id = "getCustomer",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer.", body = Customer),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not allowed to read this customer.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = customers::get(&state, &principal, id)
        .await?
        .ok_or(AppError::NotFound("customer"))?;
    Ok(Json(row.into()))
}

/// Creates a customer and its guest agent, in one transaction. Super admins only.
#[utoipa::path(
    post,
    path = "/v1.0/customers",
    tag = "customers",
    operation_id = "createCustomer",
    request_body = CreateCustomerRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The new customer.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        (status = 409, description = "The username is taken.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let input = CreateCustomerRequest::parse(&body(request)?)?;
    let row = customers::create(&state, &principal, input.into()).await?;
    Ok(Json(row.into()))
}

/// Soft-deletes a customer with its agents and access keys; their
/// credentials stop working at once. Deleting a deleted customer returns it
/// unchanged. Super admins only; the platform's own customer cannot be deleted.
#[utoipa::path(
    delete,
    path = "/v1.0/customers/{id}",
    tag = "customers",
    operation_id = "deleteCustomer",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The deleted customer, with `tm_delete` set.", body = Customer),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not a super admin, or the platform's own customer.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = customers::delete(&state, &principal, id).await?;
    Ok(Json(row.into()))
}

/// Freezes a customer: its agents and access keys get 401 on their next
/// request, on every server, and nothing is deleted. Freezing a frozen
/// customer returns it unchanged. Super admins only; the platform's own
/// customer cannot be frozen.
#[utoipa::path(
    post,
    path = "/v1.0/customers/{id}/freeze",
    tag = "customers",
    operation_id = "freezeCustomer",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The frozen customer, `status` `frozen`.", body = Customer),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not a super admin, or the platform's own customer.", body = ErrorBody),
        (status = 404, description = "No such customer, or a deleted one.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn freeze(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = customers::freeze(&state, &principal, id).await?;
    Ok(Json(row.into()))
}

/// Recovers a customer: unfreezes it, and restores it if it was deleted
/// within the retention window (`CUSTOMER_RESTORE_DAYS`), with the agents
/// and access keys deleted with it. Recovering an active customer returns
/// it unchanged. Super admins only.
#[utoipa::path(
    post,
    path = "/v1.0/customers/{id}/recover",
    tag = "customers",
    operation_id = "recoverCustomer",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer, `status` `active`.", body = Customer),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 409, description = "Deleted too long ago, or its username (or an agent's) is taken since.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let row = customers::recover(&state, &principal, id).await?;
    Ok(Json(row.into()))
}

/// Changes a customer's name, detail or webhook; an absent or null field is
/// left as it is. Sets `tm_update`. Super admins update any customer; a
/// customer's own admins (and its access keys) theirs.
#[utoipa::path(
    put,
    path = "/v1.0/customers/{id}",
    tag = "customers",
    operation_id = "updateCustomer",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = UpdateCustomerRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer as updated.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not allowed to update this customer.", body = ErrorBody),
        (status = 404, description = "No such live customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let input = UpdateCustomerRequest::parse(&body(request)?)?;
    let row = customers::update(&state, &principal, Some(id), input.into()).await?;
    Ok(Json(row.into()))
}

/// Reads the caller's own customer (that of its agent or access key).
/// Admins and managers of the customer.
#[utoipa::path(
    get,
    path = "/v1.0/customer",
    tag = "customers",
    operation_id = "getOwnCustomer",
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The caller's customer; with `webhook_secret` for its admins.", body = OwnCustomer),
        (status = 403, description = "Not an admin or manager of the customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn get_own(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OwnCustomer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let row = customers::get(&state, &principal, principal.customer_id)
        .await?
        .ok_or(AppError::NotFound("customer"))?;
    let is_admin = principal.require_customer_admin(row.id).is_ok();
    let webhook_secret = is_admin.then(|| row.webhook_secret.clone());
    Ok(Json(OwnCustomer {
        customer: row.into(),
        webhook_secret,
    }))
}

/// Changes the caller's own customer, as `PUT /v1.0/customers/{id}` does.
#[utoipa::path(
    put,
    path = "/v1.0/customer",
    tag = "customers",
    operation_id = "updateOwnCustomer",
    request_body = UpdateCustomerRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer as updated.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not an admin of the customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update_own(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let input = UpdateCustomerRequest::parse(&body(request)?)?;
    let row = customers::update(&state, &principal, None, input.into()).await?;
    Ok(Json(row.into()))
}

/// Replaces a customer's LINE channel secret and token. Super admins, and
/// the customer's own admins.
#[utoipa::path(
    put,
    path = "/v1.0/customers/{id}/line_info",
    tag = "customers",
    operation_id = "updateCustomerLineInfo",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = UpdateLineInfoRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer as updated.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not allowed to update this customer.", body = ErrorBody),
        (status = 404, description = "No such live customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update_line_info(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let input = UpdateLineInfoRequest::parse(&body(request)?)?;
    let row = customers::update_line_info(
        &state,
        &principal,
        id,
        &input.line_secret,
        &input.line_token,
    )
    .await?;
    Ok(Json(row.into()))
}

/// Replaces a customer's permission ids. Super admins only.
#[utoipa::path(
    put,
    path = "/v1.0/customers/{id}/permission_ids",
    tag = "customers",
    operation_id = "updateCustomerPermissionIds",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = UpdatePermissionIdsRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer as updated.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        (status = 404, description = "No such live customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update_permission_ids(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let input = UpdatePermissionIdsRequest::parse(&body(request)?)?;
    let row =
        customers::update_permission_ids(&state, &principal, id, &input.permission_ids).await?;
    Ok(Json(row.into()))
}

/// Sets the customer's password, that of its guest agent, and revokes every
/// login token of that agent. Super admins, and the customer's own admin
/// agents (not access keys), as for setting any agent's password.
#[utoipa::path(
    put,
    path = "/v1.0/customers/{id}/password",
    tag = "customers",
    operation_id = "updateCustomerPassword",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = UpdatePasswordRequest,
    security(("bearer" = []), ("token" = []), ("accesskey" = [])),
    responses(
        (status = 200, description = "The customer.", body = Customer),
        (status = 400, description = "Invalid input; `field` names the field.", body = ErrorBody),
        (status = 403, description = "Not allowed to set this customer's password.", body = ErrorBody),
        (status = 404, description = "No such live customer.", body = ErrorBody),
        CredentialRefused,
        ServerFailures,
    )
)]
pub(super) async fn update_password(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let principal = caller.authenticate(&state).await?;
    let id = path_id(path)?;
    let input = UpdatePasswordRequest::parse(&body(request)?)?;
    let row = customers::set_password(&state, &principal, id, &input.password).await?;
    Ok(Json(row.into()))
}
