//! Test harness: a fresh database per test, cloned from a template migrated
//! once, and the real application served over HTTP on port 0.
//!
//! - `db`: the test databases, and direct connections for seeding and
//!   inspecting rows.
//! - `logs`: every log line the application writes, for tests that look for
//!   (or must not find) something in them.
//! - `app`: the application under test, its replicas and what it counts.
//! - `client`: requests to it, and reading their answers.
//! - `proxy`: a TCP proxy that cuts or stalls the way to PostgreSQL.
//! - `wait`: waiting for states reached in the background.

mod app;
mod client;
mod db;
mod logs;
mod proxy;
mod wait;

pub use app::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, as_in_production, metric};
pub use client::{
    ME, Reply, error_code, error_field, error_limit, retry_after, send, session_id, sha256, unique,
};
pub use db::{TestDb, insert_customers, sql_column, sql_count};
pub use logs::{captured_logs, request_log_lines};
pub use proxy::Proxy;
pub use wait::eventually;
