//! DataLoaders, created per request: each batches one relation into a single
//! `WHERE key = ANY($1)` query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use uuid::Uuid;

use super::context::RequestAuth;
use crate::app::AppState;
use crate::db::models::agent::{self, AgentRow};
use crate::error::AppError;

/// The per-request guest agent loader. It caches, so that a page can load all
/// its guest agents in one batch up front and each node then reads the cache.
pub type GuestAgents = DataLoader<GuestAgentLoader, HashMapCache>;

/// Guest agents by customer id.
pub struct GuestAgentLoader {
    state: AppState,
    /// Whose request it is: guest agents are read where the customers they
    /// belong to were (a replica, unless the caller wrote lately).
    auth: Arc<RequestAuth>,
}

impl GuestAgentLoader {
    pub fn new(state: AppState, auth: Arc<RequestAuth>) -> Self {
        Self { state, auth }
    }
}

impl Loader<Uuid> for GuestAgentLoader {
    /// `None` for a customer without a guest agent, so that the absence is
    /// cached too and never asked for again.
    type Value = Option<AgentRow>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        customer_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Option<AgentRow>>, Self::Error> {
        let rows = self
            .state
            .read(self.auth.resolved(), |mut conn| async move {
                Ok(agent::guests_of(&mut conn, customer_ids).await?)
            })
            .await?;
        let mut found: HashMap<Uuid, Option<AgentRow>> =
            customer_ids.iter().map(|id| (*id, None)).collect();
        for row in rows {
            found.insert(row.customer_id, Some(row));
        }
        Ok(found)
    }
}
