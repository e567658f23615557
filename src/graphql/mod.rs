//! The GraphQL API: schema roots split by domain, the views clients see, the
//! dataloaders, cursor pagination, and the one place errors get their codes.

mod access_keys;
mod auth;
mod context;
mod customers;
pub mod errors;
mod events;
mod executor;
mod fast;
pub mod limits;
mod loaders;
mod pagination;
mod scan;
mod subscriptions;
mod types;
mod webhooks;

use async_graphql::{MergedObject, Schema};

pub use context::{RequestAuth, per_request_data};
pub use executor::{BatchAnswer, GraphqlExecutor, GraphqlResponse, refused_before_execution};

use crate::app::AppState;
use crate::config::Config;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    customers::CustomerQuery,
    access_keys::AccessKeyQuery,
    events::EventQuery,
    webhooks::WebhookQuery,
    auth::AuthQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    customers::CustomerMutation,
    access_keys::AccessKeyMutation,
    webhooks::WebhookMutation,
);

pub use subscriptions::SubscriptionRoot;

pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
}

/// The executable schema, with async-graphql's own limits applied (the
/// rest are checked by `GraphqlExecutor`, which is how requests run).
pub fn build_schema(state: AppState, config: &Config) -> ApiSchema {
    let mut builder = builder()
        .limit_complexity(config.max_query_complexity)
        .limit_recursive_depth(config.max_query_depth * 4)
        .limit_directives(16)
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
