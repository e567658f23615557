//! The platform's access key shapes, and their conversions to and from the
//! service layer's.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::models::access_key::AccessKeyRow;
use crate::error::{AppError, AppResult};
pub use crate::resources::access_key::AccessKey;
use crate::rest::page_token;
use crate::rest::request::{JsonObject, QueryParams};
use crate::service::access_keys::{
    AccessKeyUpdate, IssuedAccessKey, MAX_EXPIRE_SECONDS, MIN_EXPIRE_SECONDS, NewAccessKeyInput,
};
use crate::service::pagination::{MAX_PAGE_SIZE, Page, PageRequest, REST_DEFAULT_PAGE_SIZE};

/// A new access key, with the key itself: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccessKey {
    #[serde(flatten)]
    pub key: AccessKey,
    /// The key, to send as `Authorization: Bearer <token>` or
    /// `?accesskey=<token>`. Shown only this once: store it now.
    #[schema(example = "vb_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")]
    pub token: String,
}

impl From<IssuedAccessKey> for CreatedAccessKey {
    fn from(issued: IssuedAccessKey) -> Self {
        Self {
            key: issued.row.into(),
            token: issued.token,
        }
    }
}

/// One page of access keys, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessKeyList {
    pub result: Vec<AccessKey>,
    /// Pass as `page_token` for the next page: the `tm_create` of this
    /// page's last key, `_` and its id; empty when this page is empty.
    #[schema(example = "2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b")]
    pub next_page_token: String,
}

impl From<Page<AccessKeyRow>> for AccessKeyList {
    fn from(page: Page<AccessKeyRow>) -> Self {
        let next_page_token = page
            .items
            .last()
            .map(|row| page_token::encode(row.page_key()))
            .unwrap_or_default();
        Self {
            result: page.items.into_iter().map(AccessKey::from).collect(),
            next_page_token,
        }
    }
}

fn customer_id_param(query: &QueryParams) -> AppResult<Option<Uuid>> {
    query
        .get("customer_id")
        .map(|text| {
            Uuid::try_parse(text)
                .map_err(|_| AppError::bad_input("customer_id", "`customer_id` must be a UUID"))
        })
        .transpose()
}

/// Whose keys and which page of `GET /v1.0/accesskeys`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAccessKeysQuery {
    /// Whose keys: super admins may name any customer; defaults to the
    /// caller's own.
    customer_id: Option<Uuid>,
    /// How many keys per page.
    #[param(minimum = 1, maximum = 100, default = json!(REST_DEFAULT_PAGE_SIZE))]
    page_size: Option<i32>,
    /// The `next_page_token` of the previous page; absent for the first page.
    #[param(example = "2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b")]
    page_token: Option<String>,
}

impl ListAccessKeysQuery {
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
            customer_id: customer_id_param(query)?,
            page_size,
            page_token: query.get("page_token").map(str::to_owned),
        })
    }

    /// Whose keys, and which page of them.
    pub(super) fn into_parts(self) -> AppResult<(Option<Uuid>, PageRequest)> {
        let after = self
            .page_token
            .as_deref()
            .map(page_token::decode)
            .transpose()?;
        let request = PageRequest::new(
            Some(self.page_size.unwrap_or(REST_DEFAULT_PAGE_SIZE)),
            after,
            None,
            None,
        )?;
        Ok((self.customer_id, request))
    }
}

/// A new access key.
#[derive(Debug, ToSchema)]
pub struct CreateAccessKeyRequest {
    /// Whose key: super admins may name any customer; defaults to the
    /// caller's own.
    customer_id: Option<Uuid>,
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
    /// Lifetime in seconds: at least 86400 (a day), at most 157680000 (five
    /// years); default 31536000 (a year).
    #[schema(minimum = 86400, maximum = 157680000, example = 2592000)]
    expire: Option<i64>,
}

impl CreateAccessKeyRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        let text = "a string";
        Ok(Self {
            customer_id: body.optional("customer_id", "a UUID")?,
            name: body.optional("name", text)?,
            detail: body.optional("detail", text)?,
            expire: body.optional("expire", "a whole number of seconds")?,
        })
    }
}

impl From<CreateAccessKeyRequest> for NewAccessKeyInput {
    fn from(request: CreateAccessKeyRequest) -> Self {
        Self {
            customer_id: request.customer_id,
            name: request.name.unwrap_or_default(),
            detail: request.detail.unwrap_or_default(),
            expire_seconds: request.expire,
        }
    }
}

/// The service names the lifetime as GraphQL does (`expireSeconds`); this
/// API calls it `expire`.
pub(super) fn expire_named_as_in_rest(error: AppError) -> AppError {
    if error.field() == Some("expireSeconds") {
        AppError::bad_input(
            "expire",
            format!("`expire` must be between {MIN_EXPIRE_SECONDS} and {MAX_EXPIRE_SECONDS}"),
        )
    } else {
        error
    }
}

/// A key's new name and detail; a field left out keeps its value.
#[derive(Debug, ToSchema)]
pub struct UpdateAccessKeyRequest {
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
}

impl UpdateAccessKeyRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            name: body.optional("name", "a string")?,
            detail: body.optional("detail", "a string")?,
        })
    }

    pub(super) fn for_key(self, id: Uuid) -> AccessKeyUpdate {
        AccessKeyUpdate {
            id,
            name: self.name,
            detail: self.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_their_bad_fields() {
        for (body, field) in [
            (&br#"{"expire": "soon"}"#[..], "expire"),
            (br#"{"expire": 1.5}"#, "expire"),
            (br#"{"customer_id": "x"}"#, "customer_id"),
            (br#"{"name": 7}"#, "name"),
            (br#"[]"#, "body"),
        ] {
            let error = CreateAccessKeyRequest::parse(body).unwrap_err();
            assert_eq!(
                error.field(),
                Some(field),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let error = UpdateAccessKeyRequest::parse(br#"{"detail": []}"#).unwrap_err();
        assert_eq!(error.field(), Some("detail"));
    }

    #[test]
    fn expire_errors_use_this_apis_name() {
        let error = expire_named_as_in_rest(AppError::bad_input("expireSeconds", "x"));
        assert_eq!(error.field(), Some("expire"));
        let other = expire_named_as_in_rest(AppError::bad_input("name", "x"));
        assert_eq!(other.field(), Some("name"));
    }

    #[test]
    fn list_queries_check_every_parameter() {
        let parse = |raw: &str| {
            ListAccessKeysQuery::parse(&QueryParams::parse(Some(raw)))
                .and_then(ListAccessKeysQuery::into_parts)
        };
        let (customer, request) = parse("").unwrap();
        assert_eq!((customer, request.size), (None, 10));
        for (raw, field) in [
            ("customer_id=nope", "customer_id"),
            ("page_size=0", "page_size"),
            ("page_size=101", "page_size"),
            ("page_token=nope", "page_token"),
        ] {
            assert_eq!(parse(raw).unwrap_err().field(), Some(field), "{raw}");
        }
    }
}
