//! The event log: what changed, who changed it, and in which request. Every
//! change appends its event inside its own transaction (`append`), so the log
//! holds exactly the committed changes; the audit trail pages through it.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

use super::pagination::{Page, PageRequest};
use super::{now_micros, validate};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::models::access_key::AccessKeyRow;
use crate::db::models::agent::AgentRow;
use crate::db::models::customer::CustomerRow;
use crate::db::models::event::{self, EventRow, EventSelection};
use crate::error::{AppError, AppResult};
use crate::resources;

/// The platform's event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    CustomerFrozen,
    CustomerRecovered,
    AgentCreated,
    AgentUpdated,
    AgentDeleted,
    /// A login of an existing agent that passed the limiter and failed the
    /// password check: an audit record, not a change.
    AgentLoginFailed,
    AccesskeyCreated,
    AccesskeyUpdated,
    AccesskeyDeleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Fields of the REST shapes that hold secrets: no event carries them.
const SECRET_FIELDS: [&str; 3] = ["line_secret", "line_token", "webhook_secret"];

/// The resource an event is about, as the REST API shows it.
pub enum Resource<'a> {
    Customer(&'a CustomerRow),
    Agent(&'a AgentRow),
    AccessKey(&'a AccessKeyRow),
}

impl Resource<'_> {
    fn customer_id(&self) -> Uuid {
        match self {
            Self::Customer(row) => row.id,
            Self::Agent(row) => row.customer_id,
            Self::AccessKey(row) => row.customer_id,
        }
    }

    /// The resource in its REST shape, less every secret.
    fn data(&self) -> AppResult<serde_json::Value> {
        fn json(shape: impl Serialize) -> AppResult<serde_json::Value> {
            serde_json::to_value(shape).map_err(AppError::internal)
        }
        let mut data = match self {
            Self::Customer(row) => json(resources::customer::Customer::from((*row).clone()))?,
            Self::Agent(row) => json(resources::agent::Agent::from(*row))?,
            Self::AccessKey(row) => json(resources::access_key::AccessKey::from((*row).clone()))?,
        };
        if let Some(fields) = data.as_object_mut() {
            for secret in SECRET_FIELDS {
                fields.remove(secret);
            }
        }
        Ok(data)
    }
}

/// Appends the event of a change, on the change's own connection: call it
/// inside the change's transaction. `actor` is `None` for the server's own
/// changes (bootstrap).
pub(crate) async fn append(
    conn: &mut AsyncPgConnection,
    actor: Option<&Principal>,
    kind: EventType,
    resource: Resource<'_>,
) -> AppResult<()> {
    if let Some(actor) = actor {
        crate::db::replicas::note_write(actor);
    }
    let row = EventRow {
        id: Uuid::now_v7(),
        type_: kind.as_str().to_owned(),
        customer_id: Some(resource.customer_id()),
        actor_id: actor.map(Principal::actor_id),
        request_id: crate::app::current_request_id().map(|id| id.to_string()),
        tm_create: now_micros(),
        data: resource.data()?,
    };
    Ok(event::insert(conn, &row).await?)
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub customer_id: Option<Uuid>,
    /// Any of these types (the platform's names).
    pub types: Option<Vec<String>>,
    pub actor_id: Option<Uuid>,
    /// Created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

pub const MAX_TYPES_IN_FILTER: usize = 32;

impl EventFilter {
    /// Checks the filter, and scopes it to what `principal` may read: super
    /// admins every event, a customer's admins their own customer's.
    pub(crate) fn selection(&self, principal: &Principal) -> AppResult<EventSelection> {
        let customer_id = if principal.is_super_admin() {
            self.customer_id
        } else {
            let own = self.customer_id.unwrap_or(principal.customer_id);
            principal.require_customer_admin(own)?;
            Some(own)
        };
        if let Some(types) = &self.types {
            if types.len() > MAX_TYPES_IN_FILTER {
                return Err(AppError::bad_input(
                    "types",
                    format!("`types` may hold at most {MAX_TYPES_IN_FILTER} entries"),
                ));
            }
            if let Some(unknown) = types.iter().find(|t| t.parse::<EventType>().is_err()) {
                let known: Vec<&str> = EventType::VARIANTS.iter().map(|t| t.as_str()).collect();
                return Err(AppError::bad_input(
                    "types",
                    format!(
                        "`types` holds {:?}, which is not an event type; the types are {}",
                        unknown.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                ));
            }
        }
        validate::time_window(self.created_after, self.created_before)?;
        Ok(EventSelection {
            customer_id,
            types: self.types.clone(),
            actor_id: self.actor_id,
            created_from: self.created_after,
            created_before: self.created_before,
        })
    }
}

/// The audit trail: events matching `filter`, newest first. Super admins
/// read every event; a customer's admins (and its access keys) their own
/// customer's.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &EventFilter,
    request: PageRequest,
) -> AppResult<Page<EventRow>> {
    let selection = filter.selection(principal)?;
    let (selection, window) = (&selection, request.window());
    let rows = state
        .read(Some(principal), |mut conn| async move {
            Ok(event::page(&mut conn, selection, window).await?)
        })
        .await?;
    Ok(Page::from_overfetched(&request, rows))
}

/// How many events match `filter`, under the rules of `list`.
pub async fn count(
    state: &AppState,
    principal: &Principal,
    filter: &EventFilter,
) -> AppResult<i64> {
    let selection = filter.selection(principal)?;
    let selection = &selection;
    state
        .read(Some(principal), |mut conn| async move {
            Ok(event::count(&mut conn, selection).await?)
        })
        .await
}

/// Deletes events older than the retention, in batches, so that pruning a
/// long backlog never holds locks or a connection for long.
pub async fn prune(state: &AppState, retention: chrono::Duration) -> AppResult<usize> {
    const BATCH: i64 = 1_000;
    let before = now_micros() - retention;
    let mut pruned = 0;
    loop {
        let deleted = event::prune(&mut *state.conn().await?, before, BATCH).await?;
        pruned += deleted;
        if deleted < BATCH as usize {
            return Ok(pruned);
        }
    }
}
