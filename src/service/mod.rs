//! The domain operations, as plain async functions over the application state.
//! They take the acting `Principal` and plain inputs, enforce every rule, and
//! know nothing of GraphQL, so that every API surface shares one implementation.

pub mod auth;
pub mod bootstrap;
pub mod customers;
pub mod pagination;
mod validate;
