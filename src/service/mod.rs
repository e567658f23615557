//! The domain operations, as plain async functions over the application state.
//! They take the acting `Principal` and plain inputs, enforce every rule, and
//! know nothing of GraphQL, so that every API surface shares one implementation.

pub mod access_keys;
pub mod auth;
pub mod bootstrap;
pub mod customers;
pub mod pagination;
mod validate;

use chrono::{DateTime, Utc};

/// Now, at the precision PostgreSQL stores.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
