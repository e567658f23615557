//! An access key as the platform's REST API writes it, and as its events
//! carry it: never the key or its hash.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::time::Timestamp;
use crate::db::models::access_key::AccessKeyRow;

/// An access key: a long-lived credential acting as CUSTOMER_ADMIN of its
/// customer. Never carries the key or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessKey {
    /// Unique id.
    pub id: Uuid,
    /// The customer the key acts for.
    pub customer_id: Uuid,
    /// Display name.
    pub name: String,
    /// Free-form description.
    pub detail: String,
    /// The first characters of the key, to tell keys apart.
    #[schema(example = "vb_AbCdEfG")]
    pub token_prefix: String,
    /// When the key stops working.
    pub tm_expire: Timestamp,
    /// When the key was last used (recorded at most once a minute).
    pub tm_last_used: Timestamp,
    /// When the key was created.
    pub tm_create: Timestamp,
    /// When the key was last changed.
    pub tm_update: Timestamp,
    /// When the key was revoked.
    pub tm_delete: Timestamp,
}

impl From<AccessKeyRow> for AccessKey {
    fn from(row: AccessKeyRow) -> Self {
        Self {
            id: row.id,
            customer_id: row.customer_id,
            name: row.name,
            detail: row.detail,
            token_prefix: row.token_prefix,
            tm_expire: Timestamp(Some(row.tm_expire)),
            tm_last_used: Timestamp(row.tm_last_used),
            tm_create: Timestamp(Some(row.tm_create)),
            tm_update: Timestamp(row.tm_update),
            tm_delete: Timestamp(row.tm_delete),
        }
    }
}
