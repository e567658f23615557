//! `/v1.0/customers`: list, read, create and delete customers, as thin
//! wrappers over `service::customers` that only translate the original API's
//! shapes.

use std::borrow::Cow;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use super::error::{ErrorBody, RestError};
use super::page_token;
use super::request::{JsonObject, QueryParams, authenticate, body};
use super::time::Timestamp;
use crate::app::AppState;
use crate::db::models::customer::CustomerRow;
use crate::error::{AppError, AppResult};
use crate::service::customers::{self, NewCustomerInput, WebhookMethod as DomainWebhookMethod};
use crate::service::pagination::{MAX_PAGE_SIZE, Page, PageRequest};

/// The original API's page size when none is asked for.
const DEFAULT_PAGE_SIZE: i32 = 10;

/// HTTP method of a customer's webhook; empty when it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookMethodJson {
    #[serde(rename = "")]
    None,
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
}

const WEBHOOK_METHODS: [WebhookMethodJson; 5] = [
    WebhookMethodJson::None,
    WebhookMethodJson::Get,
    WebhookMethodJson::Post,
    WebhookMethodJson::Put,
    WebhookMethodJson::Delete,
];

// By hand, because utoipa's derive does not take an empty string as a variant's name.
impl PartialSchema for WebhookMethodJson {
    fn schema() -> RefOr<Schema> {
        let names = WEBHOOK_METHODS.map(|method| {
            serde_json::to_value(method).expect("a unit variant serializes to a string")
        });
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "HTTP method of the customer's webhook; empty when it has none.",
            ))
            .into()
    }
}

impl ToSchema for WebhookMethodJson {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WebhookMethod")
    }
}

impl From<Option<DomainWebhookMethod>> for WebhookMethodJson {
    fn from(method: Option<DomainWebhookMethod>) -> Self {
        match method {
            None => Self::None,
            Some(DomainWebhookMethod::Get) => Self::Get,
            Some(DomainWebhookMethod::Post) => Self::Post,
            Some(DomainWebhookMethod::Put) => Self::Put,
            Some(DomainWebhookMethod::Delete) => Self::Delete,
        }
    }
}

impl From<WebhookMethodJson> for Option<DomainWebhookMethod> {
    fn from(method: WebhookMethodJson) -> Self {
        match method {
            WebhookMethodJson::None => None,
            WebhookMethodJson::Get => Some(DomainWebhookMethod::Get),
            WebhookMethodJson::Post => Some(DomainWebhookMethod::Post),
            WebhookMethodJson::Put => Some(DomainWebhookMethod::Put),
            WebhookMethodJson::Delete => Some(DomainWebhookMethod::Delete),
        }
    }
}

/// A customer: an account of the platform. Never carries a password.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    /// Unique id.
    pub id: Uuid,
    /// Login name of the customer (and of its guest agent).
    #[schema(example = "test1")]
    pub username: String,
    /// Display name.
    pub name: String,
    /// Free-form description.
    pub detail: String,
    pub webhook_method: WebhookMethodJson,
    /// Where events are delivered; empty when the customer has no webhook.
    pub webhook_uri: String,
    /// LINE messaging channel secret.
    pub line_secret: String,
    /// LINE messaging channel access token.
    pub line_token: String,
    /// Ids of the permissions granted to the customer.
    pub permission_ids: Vec<Uuid>,
    /// When the customer was created.
    pub tm_create: Timestamp,
    /// When the customer was last changed.
    pub tm_update: Timestamp,
    /// When the customer was deleted.
    pub tm_delete: Timestamp,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            name: row.name,
            detail: row.detail,
            webhook_method: row
                .webhook_method
                .as_deref()
                .and_then(DomainWebhookMethod::parse)
                .into(),
            webhook_uri: row.webhook_uri,
            line_secret: row.line_secret,
            line_token: row.line_token,
            permission_ids: row.permission_ids.into_iter().flatten().collect(),
            tm_create: Timestamp(Some(row.tm_create)),
            tm_update: Timestamp(row.tm_update),
            tm_delete: Timestamp(row.tm_delete),
        }
    }
}

/// One page of customers, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    pub result: Vec<Customer>,
    /// Pass as `page_token` for the next page. It starts with the
    /// `tm_create` of the last customer of this page, followed by `_` and its
    /// id; empty when this page is empty, i.e. past the last page.
    #[schema(example = "2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b")]
    pub next_page_token: String,
}

impl From<Page<CustomerRow>> for CustomerList {
    fn from(page: Page<CustomerRow>) -> Self {
        let next_page_token = page
            .items
            .last()
            .map(|row| page_token::encode(row.page_key()))
            .unwrap_or_default();
        Self {
            result: page.items.into_iter().map(Customer::from).collect(),
            next_page_token,
        }
    }
}

/// Paging of `GET /v1.0/customers`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// How many customers per page.
    #[param(minimum = 1, maximum = 100, default = 10)]
    page_size: Option<i32>,
    /// The `next_page_token` of the previous page; absent for the first page.
    /// A bare timestamp `YYYY-MM-DD HH:MM:SS.ffffff` is accepted too, and
    /// lists the customers created strictly before it (rows sharing that
    /// time are skipped, as in the original API).
    #[param(example = "2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b")]
    page_token: Option<String>,
}

impl ListCustomersQuery {
    fn parse(query: &QueryParams) -> AppResult<Self> {
        let page_size = query
            .get("page_size")
            .map(|text| {
                text.parse::<i32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(&i64::from(*n)))
                    .ok_or_else(|| {
                        AppError::bad_input(
                            "page_size",
                            format!("`page_size` must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            page_size,
            page_token: query.get("page_token").map(str::to_owned),
        })
    }

    fn page_request(self) -> AppResult<PageRequest> {
        let after = self
            .page_token
            .as_deref()
            .map(page_token::decode)
            .transpose()?;
        PageRequest::new(
            Some(self.page_size.unwrap_or(DEFAULT_PAGE_SIZE)),
            after,
            None,
            None,
        )
    }
}

/// A new customer. A guest agent with the same username and password and
/// CUSTOMER_ADMIN permission is created with it, so it can log in at once.
#[derive(ToSchema)]
pub struct CreateCustomerRequest {
    /// 3–64 characters of letters, digits and `._@+-`; unique among live
    /// customers and agents, case-insensitively.
    #[schema(example = "test1")]
    username: String,
    /// 8–256 characters. Write-only: stored only as an argon2id hash, never returned.
    #[schema(write_only)]
    password: String,
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
    webhook_method: Option<WebhookMethodJson>,
    /// Empty, or an absolute http(s) URL of at most 1023 characters.
    webhook_uri: Option<String>,
    /// LINE channel secret, at most 1023 characters.
    line_secret: Option<String>,
    /// LINE channel access token, at most 1023 characters.
    line_token: Option<String>,
    /// Permission ids, at most 64.
    permission_ids: Option<Vec<Uuid>>,
}

impl CreateCustomerRequest {
    fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        let text = "a string";
        Ok(Self {
            username: body.required("username", text)?,
            password: body.required("password", text)?,
            name: body.optional("name", text)?,
            detail: body.optional("detail", text)?,
            webhook_method: body.optional(
                "webhook_method",
                "one of \"GET\", \"POST\", \"PUT\", \"DELETE\" or \"\"",
            )?,
            webhook_uri: body.optional("webhook_uri", text)?,
            line_secret: body.optional("line_secret", text)?,
            line_token: body.optional("line_token", text)?,
            permission_ids: body.optional("permission_ids", "a list of UUIDs")?,
        })
    }
}

impl From<CreateCustomerRequest> for NewCustomerInput {
    fn from(request: CreateCustomerRequest) -> Self {
        Self {
            username: request.username,
            password: request.password,
            name: request.name.unwrap_or_default(),
            detail: request.detail.unwrap_or_default(),
            webhook_method: request.webhook_method.and_then(Into::into),
            webhook_uri: request.webhook_uri.unwrap_or_default(),
            line_secret: request.line_secret.unwrap_or_default(),
            line_token: request.line_token.unwrap_or_default(),
            permission_ids: request.permission_ids.unwrap_or_default(),
        }
    }
}

fn customer_id(path: Result<Path<String>, PathRejection>) -> AppResult<Uuid> {
    path.ok()
        .and_then(|Path(id)| Uuid::try_parse(&id).ok())
        .ok_or_else(|| AppError::bad_input("id", "`id` must be a UUID"))
}

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
        (status = 401, description = "No valid credential.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        (status = 500, description = "Internal error; nothing internal is shown.", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry.", body = ErrorBody),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<CustomerList>, RestError> {
    let query = QueryParams::parse(raw.as_deref());
    let principal = authenticate(&state, &headers, &query).await?;
    let request = ListCustomersQuery::parse(&query)?.page_request()?;
    let page = customers::list(&state, &principal, request).await?;
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
        (status = 401, description = "No valid credential.", body = ErrorBody),
        (status = 403, description = "Not allowed to read this customer.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 500, description = "Internal error; nothing internal is shown.", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry.", body = ErrorBody),
    )
)]
pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let query = QueryParams::parse(raw.as_deref());
    let principal = authenticate(&state, &headers, &query).await?;
    let id = customer_id(path)?;
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
        (status = 401, description = "No valid credential.", body = ErrorBody),
        (status = 403, description = "Not a super admin.", body = ErrorBody),
        (status = 409, description = "The username is taken.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "Internal error; nothing internal is shown.", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry.", body = ErrorBody),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Customer>, RestError> {
    let query = QueryParams::parse(raw.as_deref());
    let principal = authenticate(&state, &headers, &query).await?;
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
        (status = 401, description = "No valid credential.", body = ErrorBody),
        (status = 403, description = "Not a super admin, or the platform's own customer.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 500, description = "Internal error; nothing internal is shown.", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry.", body = ErrorBody),
    )
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer>, RestError> {
    let query = QueryParams::parse(raw.as_deref());
    let principal = authenticate(&state, &headers, &query).await?;
    let id = customer_id(path)?;
    let row = customers::delete(&state, &principal, id).await?;
    Ok(Json(row.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_methods_are_the_original_strings() {
        let texts = ["", "GET", "POST", "PUT", "DELETE"];
        for (method, text) in WEBHOOK_METHODS.into_iter().zip(texts) {
            assert_eq!(serde_json::to_value(method).unwrap(), text);
            let domain: Option<DomainWebhookMethod> = method.into();
            assert_eq!(domain.map_or("", DomainWebhookMethod::as_str), text);
            assert_eq!(WebhookMethodJson::from(domain), method);
        }
        let schema = serde_json::to_value(WebhookMethodJson::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(texts));
    }

    #[test]
    fn create_requests_default_like_the_graphql_input() {
        let input: NewCustomerInput = CreateCustomerRequest::parse(
            br#"{"username": "abc", "password": "p", "name": null, "webhook_method": ""}"#,
        )
        .unwrap()
        .into();
        assert_eq!(input.username, "abc");
        assert_eq!(input.name, "");
        assert_eq!(input.webhook_method, None);
        assert!(input.permission_ids.is_empty());

        for (body, field) in [
            (&br#"{"password": "p"}"#[..], "username"),
            (br#"{"username": "abc"}"#, "password"),
            (
                br#"{"username": "abc", "password": "p", "webhook_method": "post"}"#,
                "webhook_method",
            ),
            (
                br#"{"username": "abc", "password": "p", "permission_ids": ["x"]}"#,
                "permission_ids",
            ),
            (br#"{"username": 7, "password": "p"}"#, "username"),
        ] {
            let error = CreateCustomerRequest::parse(body).err().unwrap();
            assert_eq!(
                error.field(),
                Some(field),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn page_sizes_default_to_ten_and_stay_within_bounds() {
        let request = |raw: &str| {
            ListCustomersQuery::parse(&QueryParams::parse(Some(raw)))
                .and_then(ListCustomersQuery::page_request)
        };
        assert_eq!(request("").unwrap().size, 10);
        assert_eq!(request("page_size=1").unwrap().size, 1);
        assert_eq!(request("page_size=100").unwrap().size, 100);
        for bad in [
            "page_size=0",
            "page_size=101",
            "page_size=-1",
            "page_size=ten",
        ] {
            assert_eq!(
                request(bad).unwrap_err().field(),
                Some("page_size"),
                "{bad}"
            );
        }
        assert_eq!(
            request("page_token=nope").unwrap_err().field(),
            Some("page_token")
        );
    }
}
