//! Webhook deliveries as their readers see them: the queue with each
//! delivery's attempts (`list`), and redelivering an event by hand
//! (`redeliver`). Who may see a delivery is who may read its event: the
//! audit trail's rule (`EventFilter::selection`), not a second one.

use std::collections::HashMap;

use async_graphql::Enum;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

use super::events::EventFilter;
use super::pagination::{Page, PageRequest};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::models::webhook_delivery::{self, AttemptRow, DeliveryRow, DeliverySelection};
use crate::error::{AppError, AppResult};

/// The most attempts shown per delivery: the latest ones. A delivery
/// retried for days keeps every attempt in the database, but a page of
/// deliveries must stay bounded.
pub const MAX_ATTEMPTS_SHOWN: i64 = 50;

/// Where a delivery stands.
// The one definition: GraphQL shows it as it is, the database holds the
// strum names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum, EnumString, IntoStaticStr, VariantArray)]
#[graphql(name = "WebhookDeliveryState")]
#[strum(serialize_all = "lowercase")]
pub enum DeliveryState {
    /// Queued: waiting for its turn, for its next attempt, or being sent.
    Pending,
    /// The webhook answered 2xx.
    Delivered,
    /// Given up: a permanent refusal, the last attempt failed, or the
    /// customer's webhook was cleared while it was queued.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which deliveries to list; every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub customer_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub state: Option<DeliveryState>,
}

impl DeliveryFilter {
    /// Scoped to what `principal` may read, as the audit trail is.
    fn selection(&self, principal: &Principal) -> AppResult<DeliverySelection> {
        let events = EventFilter {
            customer_id: self.customer_id,
            ..Default::default()
        }
        .selection(principal)?;
        Ok(DeliverySelection {
            customer_id: events.customer_id,
            event_id: self.event_id,
            state: self.state.map(DeliveryState::as_str),
        })
    }
}

/// Deliveries matching `filter`, newest first (by their place in the queue,
/// then event id), each with its event. Super admins read every delivery; a
/// customer's admins (and its access keys) their own customer's.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &DeliveryFilter,
    request: PageRequest,
) -> AppResult<Page<DeliveryRow>> {
    let selection = filter.selection(principal)?;
    let (selection, window) = (&selection, request.window());
    let rows = state
        .read(Some(principal), |mut conn| async move {
            Ok(webhook_delivery::page(&mut conn, selection, window).await?)
        })
        .await?;
    Ok(Page::from_overfetched(&request, rows))
}

/// How many deliveries match `filter`, under the rules of `list`.
pub async fn count(
    state: &AppState,
    principal: &Principal,
    filter: &DeliveryFilter,
) -> AppResult<i64> {
    let selection = filter.selection(principal)?;
    let selection = &selection;
    state
        .read(Some(principal), |mut conn| async move {
            Ok(webhook_delivery::count(&mut conn, selection).await?)
        })
        .await
}

/// The latest `MAX_ATTEMPTS_SHOWN` attempts of each of these deliveries,
/// oldest first, in one statement. Only for deliveries the caller was
/// allowed to list or redeliver: it checks nothing itself.
pub async fn attempts_of(
    state: &AppState,
    event_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<AttemptRow>>> {
    let rows =
        webhook_delivery::attempts_of(&mut *state.conn().await?, event_ids, MAX_ATTEMPTS_SHOWN)
            .await?;
    let mut attempts: HashMap<Uuid, Vec<AttemptRow>> =
        event_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        attempts.entry(row.event_id).or_default().push(row);
    }
    for list in attempts.values_mut() {
        list.sort_by_key(|attempt| attempt.number);
    }
    Ok(attempts)
}

/// Sends an event to its customer's webhook again (see
/// `webhook_delivery::redeliver` for what becomes of its delivery), and
/// answers the delivery as it now is.
///
/// The event must be one the caller may read in the audit trail; any other
/// is `NOT_FOUND`, whether or not it exists, so that nobody learns of other
/// customers' events. A caller who may read no events at all is refused as
/// `events` refuses them. The customer must have a webhook now
/// (`BAD_USER_INPUT` on `eventId` otherwise). Nothing is appended to the
/// event log: no resource changed.
pub async fn redeliver(
    state: &AppState,
    principal: &Principal,
    event_id: Uuid,
) -> AppResult<DeliveryRow> {
    EventFilter::default().selection(principal)?;
    // It appends no event, which is where other changes note their writer.
    crate::db::replicas::note_write(principal);
    let mut conn = state.conn().await?;
    let not_found = || AppError::NotFound("event");
    let customer_id = webhook_delivery::event_customer(&mut conn, event_id)
        .await?
        .ok_or_else(not_found)?;
    let readable = EventFilter {
        customer_id,
        ..Default::default()
    }
    .selection(principal)
    .is_ok_and(|scope| scope.customer_id == customer_id);
    if !readable {
        return Err(not_found());
    }
    if customer_id.is_none() {
        return Err(AppError::bad_input(
            "eventId",
            "the event belongs to no customer, so there is no webhook to deliver it to",
        ));
    }
    if !webhook_delivery::redeliver(&mut conn, event_id).await? {
        return Err(AppError::bad_input(
            "eventId",
            "the event's customer has no webhook: set its `webhookUri`, then redeliver",
        ));
    }
    let actor_id = principal.actor_id();
    tracing::info!(%actor_id, %event_id, "webhook redelivery requested");
    // Gone only if the event was pruned meanwhile.
    webhook_delivery::find(&mut conn, event_id)
        .await?
        .ok_or_else(not_found)
}
