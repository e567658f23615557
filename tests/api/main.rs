//! Integration tests: the real application over HTTP, on a real PostgreSQL.

mod harness;

mod abuse;
mod access_keys;
mod amplification;
mod auth;
mod brute_force;
mod claims;
mod connections;
mod credentials;
mod customers;
mod fuzz;
mod graphql_http;
mod hardening;
mod integrity;
mod operator;
mod pagination;
mod process;
mod races;
mod replicas;
mod rest;
mod schema;
mod security;
mod startup;
