//! An agent in the platform's REST shape, as events carry it: never its
//! password or hash.

use serde::Serialize;
use uuid::Uuid;

use super::time::Timestamp;
use crate::db::models::agent::AgentRow;

#[derive(Debug, Serialize)]
pub struct Agent {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub username: String,
    pub name: String,
    pub detail: String,
    /// Permissions as the platform's bitmask.
    pub permission: i32,
    pub tm_create: Timestamp,
    pub tm_update: Timestamp,
    pub tm_delete: Timestamp,
}

impl From<&AgentRow> for Agent {
    fn from(row: &AgentRow) -> Self {
        Self {
            id: row.id,
            customer_id: row.customer_id,
            username: row.username.clone(),
            name: row.name.clone(),
            detail: row.detail.clone(),
            permission: row.permission,
            tm_create: Timestamp(Some(row.tm_create)),
            tm_update: Timestamp(row.tm_update),
            tm_delete: Timestamp(row.tm_delete),
        }
    }
}
