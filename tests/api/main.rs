//! Integration tests: the real application over HTTP, on a real PostgreSQL.

mod harness;

mod auth;
mod customers;
mod pagination;
mod schema;
mod security;
