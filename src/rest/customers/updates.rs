//! The original API's bodies for changing a customer, and their conversions
//! to the service layer's inputs.

use utoipa::ToSchema;
use uuid::Uuid;

use super::types::RestWebhookMethod;
use crate::error::AppResult;
use crate::rest::request::JsonObject;
use crate::service::customers::CustomerUpdate;

const TEXT: &str = "a string";

/// Changes to a customer; an absent or null field is left as it is. Send
/// `webhook_method` `""` and `webhook_uri` `""` to remove the webhook.
#[derive(ToSchema)]
pub struct UpdateCustomerRequest {
    /// Display name, at most 255 characters.
    name: Option<String>,
    /// Free-form description, at most 4096 characters.
    detail: Option<String>,
    webhook_method: Option<RestWebhookMethod>,
    /// Empty, or an absolute http(s) URL of at most 1023 characters.
    webhook_uri: Option<String>,
}

impl UpdateCustomerRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            name: body.optional("name", TEXT)?,
            detail: body.optional("detail", TEXT)?,
            webhook_method: body.optional("webhook_method", &RestWebhookMethod::expected())?,
            webhook_uri: body.optional("webhook_uri", TEXT)?,
        })
    }
}

impl From<UpdateCustomerRequest> for CustomerUpdate {
    fn from(request: UpdateCustomerRequest) -> Self {
        Self {
            name: request.name,
            detail: request.detail,
            webhook_method: request.webhook_method.map(|method| method.0),
            webhook_uri: request.webhook_uri,
            expected_tm_update: None,
        }
    }
}

/// A customer's new LINE messaging channel credentials.
#[derive(ToSchema)]
pub struct UpdateLineInfoRequest {
    /// LINE channel secret, at most 1023 characters.
    pub line_secret: String,
    /// LINE channel access token, at most 1023 characters.
    pub line_token: String,
}

impl UpdateLineInfoRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            line_secret: body.required("line_secret", TEXT)?,
            line_token: body.required("line_token", TEXT)?,
        })
    }
}

/// A customer's permission ids, replacing the old ones.
#[derive(ToSchema)]
pub struct UpdatePermissionIdsRequest {
    /// At most 64 ids; duplicates are dropped.
    pub permission_ids: Vec<Uuid>,
}

impl UpdatePermissionIdsRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            permission_ids: body.required("permission_ids", "a list of UUIDs")?,
        })
    }
}

/// The customer's new password (its guest agent's).
#[derive(ToSchema)]
pub struct UpdatePasswordRequest {
    /// 8–256 characters. Write-only: stored only as an argon2id hash.
    #[schema(write_only)]
    pub password: String,
}

impl UpdatePasswordRequest {
    pub(super) fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            password: body.required("password", TEXT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::customers::WebhookMethod;

    #[test]
    fn updates_leave_absent_and_null_fields_alone_and_empty_clears() {
        let update: CustomerUpdate =
            UpdateCustomerRequest::parse(br#"{"name": "n", "detail": null, "webhook_method": ""}"#)
                .unwrap()
                .into();
        assert_eq!(update.name.as_deref(), Some("n"));
        assert_eq!(update.detail, None);
        assert_eq!(update.webhook_method, Some(None));
        assert_eq!(update.webhook_uri, None);
        let update: CustomerUpdate = UpdateCustomerRequest::parse(br#"{"webhook_method": "PUT"}"#)
            .unwrap()
            .into();
        assert_eq!(update.webhook_method, Some(Some(WebhookMethod::Put)));
        let error = UpdateCustomerRequest::parse(br#"{"webhook_method": "put"}"#)
            .err()
            .unwrap();
        assert_eq!(error.field(), Some("webhook_method"));
        let error = UpdateLineInfoRequest::parse(br#"{"line_secret": "s"}"#)
            .err()
            .unwrap();
        assert_eq!(error.field(), Some("line_token"));
    }
}
