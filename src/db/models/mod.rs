//! Row types and the queries over them. Query functions take the connection
//! first; none of these types is ever shown to a client directly.

pub mod agent;
pub mod customer;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A position in the customers' listing order: `(tm_create, id)`, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageKey {
    pub tm_create: DateTime<Utc>,
    pub id: Uuid,
}
