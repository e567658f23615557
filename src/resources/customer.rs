//! A customer as the platform's REST API writes it, and as its events carry it.

use std::borrow::Cow;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use strum::VariantArray;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::time::Timestamp;
use crate::db::models::customer::CustomerRow;
use crate::service::customers::{CustomerStatus, WebhookMethod};

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
    pub fn expected() -> String {
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
}
