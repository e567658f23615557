//! The original API's customer shapes, and their conversions to and from the
//! service layer's.

use std::borrow::Cow;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use strum::VariantArray;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::db::models::customer::CustomerRow;
use crate::error::{AppError, AppResult};
use crate::rest::page_token;
use crate::rest::request::{JsonObject, QueryParams};
use crate::rest::time::Timestamp;
use crate::service::customers::{CustomerStatus, NewCustomerInput, WebhookMethod};
use crate::service::pagination::{MAX_PAGE_SIZE, Page, PageRequest, REST_DEFAULT_PAGE_SIZE};

/// A customer's webhook method as the original API writes it: the method's
/// name, or empty when the customer has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestWebhookMethod(pub Option<WebhookMethod>);

impl RestWebhookMethod {
    /// Every text the API accepts, the empty one first.
    fn names() -> impl Iterator<Item = &'static str> {
        std::iter::once("").chain(WebhookMethod::VARIANTS.iter().map(|m| m.as_str()))
    }

    /// What a request must send, for the error when it sends anything else.
    pub(super) fn expected() -> String {
        let methods: Vec<String> = WebhookMethod::VARIANTS
            .iter()
            .map(|m| format!("\"{}\"", m.as_str()))
            .collect();
        format!("one of {} or \"\"", methods.join(", "))
    }
}

impl Serialize for RestWebhookMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.map_or("", WebhookMethod::as_str))
    }
}

impl<'de> Deserialize<'de> for RestWebhookMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(Self(None));
        }
        text.parse()
            .map(|m| Self(Some(m)))
            .map_err(de::Error::custom)
    }
}

// By hand, because utoipa's derive does not take an empty string as a variant's name.
impl PartialSchema for RestWebhookMethod {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::names()))
            .description(Some(
                "HTTP method of the customer's webhook; empty when it has none.",
            ))
            .into()
    }
}

impl ToSchema for RestWebhookMethod {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WebhookMethod")
    }
}

/// A customer's lifecycle state as REST writes it: lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestCustomerStatus(pub CustomerStatus);

impl Serialize for RestCustomerStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl PartialSchema for RestCustomerStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(CustomerStatus::VARIANTS.iter().map(|s| s.as_str())))
            .description(Some(
                "`active`; `frozen` (its agents and access keys cannot authenticate until it \
                 is recovered); or `deleted`.",
            ))
            .into()
    }
}

impl ToSchema for RestCustomerStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CustomerStatus")
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
    pub webhook_method: RestWebhookMethod,
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
    pub status: RestCustomerStatus,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Self {
            webhook_method: RestWebhookMethod(WebhookMethod::of(&row)),
            status: RestCustomerStatus(CustomerStatus::of(&row)),
            id: row.id,
            username: row.username,
            name: row.name,
            detail: row.detail,
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
    fn webhook_methods_are_the_original_strings() {
        let texts = ["", "GET", "POST", "PUT", "DELETE"];
        let methods =
            std::iter::once(None).chain(WebhookMethod::VARIANTS.iter().copied().map(Some));
        for (method, text) in methods.zip(texts) {
            let method = RestWebhookMethod(method);
            assert_eq!(serde_json::to_value(method).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<RestWebhookMethod>(text.into()).unwrap(),
                method
            );
        }
        let schema = serde_json::to_value(RestWebhookMethod::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(texts));
        assert_eq!(
            RestWebhookMethod::expected(),
            r#"one of "GET", "POST", "PUT", "DELETE" or """#
        );
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
