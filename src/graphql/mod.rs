//! The GraphQL API: schema roots split by domain, the views clients see, the
//! dataloaders, cursor pagination, and the one place errors get their codes.

mod access_keys;
mod auth;
mod context;
mod customers;
pub mod errors;
pub mod limits;
mod loaders;
mod observe;
mod pagination;
mod types;

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::{EmptySubscription, MergedObject, Schema};

/// Distinct persisted documents remembered (least recently used go first).
const PERSISTED_QUERIES_KEPT: usize = 1024;

pub use context::{ClientAddress, Credential, per_request_data};

use crate::app::AppState;
use crate::config::Config;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    customers::CustomerQuery,
    access_keys::AccessKeyQuery,
    auth::AuthQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    customers::CustomerMutation,
    access_keys::AccessKeyMutation,
);

pub type ApiSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
}

/// The executable schema, with the limits from `config` applied.
pub fn build_schema(state: AppState, config: &Config) -> ApiSchema {
    // The first extension wraps the others: observation must see the codes
    // that `ErrorCodes` assigns.
    let mut builder = builder()
        .extension(observe::Observe(state.metrics.clone()))
        .extension(errors::ErrorCodes)
        // Automatic persisted queries: clients may send a document's SHA-256
        // instead of the document once the server has seen it.
        .extension(ApolloPersistedQueries::new(LruCacheStorage::new(
            PERSISTED_QUERIES_KEPT,
        )))
        .limit_complexity(config.max_query_complexity)
        .limit_recursive_depth(config.max_query_depth * 4)
        .limit_directives(16)
        .extension(limits::DocumentLimits {
            max_depth: config.max_query_depth,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
            introspection: config.introspection,
        })
        .data(state);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
