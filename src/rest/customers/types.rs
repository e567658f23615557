//! The original API's customer shapes, and their conversions to and from the
//! service layer's.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::models::customer::CustomerRow;
use crate::error::{AppError, AppResult};
pub use crate::resources::customer::{Customer, RestWebhookMethod};
use crate::rest::page_token;
use crate::rest::request::{JsonObject, QueryParams};
use crate::service::customers::NewCustomerInput;
use crate::service::pagination::{MAX_PAGE_SIZE, Page, PageRequest, REST_DEFAULT_PAGE_SIZE};

/// The caller's own customer: the customer, and for its admins the key that
/// signs its webhook deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnCustomer {
    #[serde(flatten)]
    pub customer: Customer,
    /// The key of `X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the
    /// body>` on webhook deliveries; for the customer's admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
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
    #[param(minimum = 1, maximum = 100, default = json!(REST_DEFAULT_PAGE_SIZE))]
    page_size: Option<i32>,
    /// The `next_page_token` of the previous page; absent for the first page.
    /// A bare timestamp `YYYY-MM-DD HH:MM:SS.ffffff` is accepted too, and
    /// lists the customers created strictly before it (rows sharing that
    /// time are skipped, as in the original API).
    #[param(example = "2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b")]
    page_token: Option<String>,
}

impl ListCustomersQuery {
    pub(super) fn parse(query: &QueryParams) -> AppResult<Self> {
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

    pub(super) fn page_request(self) -> AppResult<PageRequest> {
        let after = self
            .page_token
            .as_deref()
            .map(page_token::decode)
            .transpose()?;
        PageRequest::new(
            Some(self.page_size.unwrap_or(REST_DEFAULT_PAGE_SIZE)),
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
    webhook_method: Option<RestWebhookMethod>,
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
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        let text = "a string";
        Ok(Self {
            username: body.required("username", text)?,
            password: body.required("password", text)?,
            name: body.optional("name", text)?,
            detail: body.optional("detail", text)?,
            webhook_method: body.optional("webhook_method", &RestWebhookMethod::expected())?,
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
            webhook_method: request.webhook_method.and_then(|method| method.0),
            webhook_uri: request.webhook_uri.unwrap_or_default(),
            line_secret: request.line_secret.unwrap_or_default(),
            line_token: request.line_token.unwrap_or_default(),
            permission_ids: request.permission_ids.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_documented_page_size_limit_is_the_enforced_one() {
        let params = ListCustomersQuery::into_params(|| None);
        let schema = serde_json::to_value(&params[0].schema).unwrap();
        assert_eq!(schema["maximum"], MAX_PAGE_SIZE);
        assert_eq!(schema["default"], REST_DEFAULT_PAGE_SIZE);
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
