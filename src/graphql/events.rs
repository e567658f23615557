//! The audit trail: `events`, a thin wrapper over `service::events`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{principal, state};
use super::pagination::{Connection, page_cost, page_request};
use crate::db::models::event::EventRow;
use crate::service::events::{self, EventFilter};

/// Something that changed: appended in the same transaction as the change,
/// so every committed change has exactly one event and a rolled-back one none.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Event")]
pub struct EventView {
    /// Unique id; webhooks send it as `X-VoIPBIN-Event-Id`.
    pub id: Uuid,
    /// The platform's event name, e.g. `customer_created`, `accesskey_deleted`.
    #[graphql(name = "type")]
    pub type_: String,
    /// The customer whose resource changed.
    pub customer_id: Option<Uuid>,
    /// The agent or access key that made the change; null for the server's
    /// own changes.
    pub actor_id: Option<Uuid>,
    /// The `X-Request-Id` of the request that made the change.
    pub request_id: Option<String>,
    /// When the change was made.
    pub tm_create: DateTime<Utc>,
    /// The resource as it was after the change, in the REST shape
    /// (snake_case, REST timestamps), less every secret.
    pub data: async_graphql::Json<serde_json::Value>,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            type_: row.type_,
            customer_id: row.customer_id,
            actor_id: row.actor_id,
            request_id: row.request_id,
            tm_create: row.tm_create,
            data: async_graphql::Json(row.data),
        }
    }
}

/// Which events `events` lists; every condition given must hold.
#[derive(InputObject)]
#[graphql(name = "EventFilter")]
pub struct EventFilterInput {
    /// Only this customer's events. Customer admins always see only their
    /// own customer's.
    customer_id: Option<Uuid>,
    /// Only events of these types (at most 32), e.g. `["customer_deleted"]`.
    types: Option<Vec<String>>,
    /// Only changes made by this agent or access key.
    actor_id: Option<Uuid>,
    /// Only events at or after this time.
    created_after: Option<DateTime<Utc>>,
    /// Only events before this time.
    created_before: Option<DateTime<Utc>>,
}

impl From<EventFilterInput> for EventFilter {
    fn from(input: EventFilterInput) -> Self {
        Self {
            customer_id: input.customer_id,
            types: input.types,
            actor_id: input.actor_id,
            created_after: input.created_after,
            created_before: input.created_before,
        }
    }
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// The audit trail, newest first, as a Relay connection: who changed
    /// what, and when. Super admins read every event; a customer's admins
    /// (and its access keys) their own customer's. `first`/`last` default
    /// to 20 and may be at most 100.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to list; omitted, every one the caller may read.")]
        filter: Option<EventFilterInput>,
        #[graphql(desc = "Page size, counted from the newest end (default 20, at most 100).")]
        first: Option<i32>,
        #[graphql(desc = "Cursor of the edge after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size, counted from the oldest end (at most 100).")] last: Option<
            i32,
        >,
        #[graphql(desc = "Cursor of the edge before which the page ends.")] before: Option<String>,
    ) -> Result<Connection<EventRow>> {
        let principal = principal(ctx).await?;
        let request = page_request(first, after, last, before)?;
        let filter = filter.map(EventFilter::from).unwrap_or_default();
        let page = events::list(state(ctx), principal, &filter, request).await?;
        Ok(Connection::new(page, filter))
    }
}
