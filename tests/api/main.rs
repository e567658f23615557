//! Integration tests: the real application over HTTP, on a real PostgreSQL.

mod harness;

mod abuse;
mod access_keys;
mod amplification;
mod auth;
mod brute_force;
mod connections;
mod credential_cache;
mod customers;
mod events;
mod faults;
mod fuzz;
mod graphql_http;
mod hardening;
mod integrity;
mod lifecycle;
mod limits;
mod login_limiter;
mod migrations;
mod operator;
mod pagination;
mod passwords;
mod persisted_queries;
mod process;
mod races;
mod replicas;
mod rest;
mod rest_access_keys;
mod revocation;
mod schema;
mod security;
mod startup;
mod transactions;
mod webhooks;
