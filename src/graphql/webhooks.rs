//! Webhook deliveries: `webhookDeliveries` and `redeliverEvent`, thin
//! wrappers over `service::webhooks`.

use std::sync::{Arc, OnceLock};

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{principal, state};
use super::events::EventView;
use super::pagination::{Connection, page_cost, page_request};
use crate::db::models::webhook_delivery::{AttemptRow, DeliveryRow};
use crate::error::AppError;
use crate::service::pagination::Page;
use crate::service::webhooks::{self, DeliveryFilter, DeliveryState, MAX_ATTEMPTS_SHOWN};

/// A delivery as listed, with a slot for its attempts: a page fills the
/// slots of all its deliveries in one statement before its nodes resolve
/// (`load_attempts`), and a delivery whose slot is empty loads its own.
#[derive(Clone, Debug)]
pub struct ListedDelivery {
    pub row: DeliveryRow,
    attempts: Arc<OnceLock<Vec<AttemptRow>>>,
}

impl From<DeliveryRow> for ListedDelivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            row,
            attempts: Arc::default(),
        }
    }
}

impl ListedDelivery {
    /// Loads the attempts of every delivery of `rows` not loaded yet, in one
    /// statement.
    pub async fn load_attempts(ctx: &Context<'_>, rows: &[Self]) -> Result<()> {
        let missing: Vec<Uuid> = rows
            .iter()
            .filter(|row| row.attempts.get().is_none())
            .map(|row| row.row.event_id)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut loaded = webhooks::attempts_of(state(ctx), &missing).await?;
        for row in rows {
            if let Some(attempts) = loaded.remove(&row.row.event_id) {
                // Set by a concurrent load of the same page: the same rows.
                let _ = row.attempts.set(attempts);
            }
        }
        Ok(())
    }
}

/// One attempt to deliver an event to its customer's webhook.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "WebhookAttempt")]
pub struct WebhookAttemptView {
    /// The attempt's number for this event, from 1; it keeps counting across
    /// `redeliverEvent`. A missing number is an attempt whose server stopped
    /// before recording it (the attempt was made again after its lease).
    pub number: i32,
    /// When the attempt started.
    pub tm_attempt: DateTime<Utc>,
    /// The HTTP status the webhook answered; null when there was no answer
    /// (timeout, refused connection, refused target).
    pub status_code: Option<i32>,
    /// Why the attempt failed, at most 512 characters, never the webhook
    /// URI; null when it was delivered.
    pub error: Option<String>,
}

impl From<&AttemptRow> for WebhookAttemptView {
    fn from(row: &AttemptRow) -> Self {
        Self {
            number: row.number,
            tm_attempt: row.tm_attempt,
            status_code: row.status_code,
            error: row.error.clone(),
        }
    }
}

/// A delivery as GraphQL shows it (`WebhookDelivery`).
pub struct WebhookDeliveryView(ListedDelivery);

impl From<ListedDelivery> for WebhookDeliveryView {
    fn from(listed: ListedDelivery) -> Self {
        Self(listed)
    }
}

/// An event on its way to its customer's webhook: one per event of a
/// customer that had a webhook when the event happened (or that was
/// redelivered), with every attempt made.
#[Object(name = "WebhookDelivery")]
impl WebhookDeliveryView {
    /// The event delivered; sent as `X-VoIPBIN-Event-Id`.
    async fn event_id(&self) -> Uuid {
        self.0.row.event_id
    }

    /// The event delivered, as `events` shows it.
    async fn event(&self) -> EventView {
        self.0.row.event.clone().into()
    }

    /// The customer whose webhook it goes to.
    async fn customer_id(&self) -> Uuid {
        self.0.row.customer_id
    }

    /// PENDING until delivered or given up.
    async fn state(&self) -> Result<DeliveryState> {
        Ok(self
            .0
            .row
            .state
            .parse()
            .map_err(|_| AppError::internal(format!("delivery state {:?}", self.0.row.state)))?)
    }

    /// Attempts made in all, redeliveries included.
    async fn attempt_count(&self) -> i32 {
        self.0.row.attempts
    }

    /// When the next attempt is due (it may wait longer for the customer's
    /// earlier deliveries); null unless PENDING.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.row.state == DeliveryState::Pending.as_str()).then_some(self.0.row.next_attempt_at)
    }

    /// The HTTP status of the last attempt; null before the first attempt
    /// or when the last one had no answer.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.row.last_status
    }

    /// Why the last attempt failed; null when it did not.
    async fn last_error(&self) -> Option<&str> {
        self.0.row.last_error.as_deref()
    }

    /// Its place in the customer's queue, which the listing is ordered by:
    /// when the event happened, or when it was last redelivered (a
    /// redelivered event goes after what was already queued).
    async fn tm_create(&self) -> DateTime<Utc> {
        self.0.row.tm_create
    }

    /// When the delivery last changed (an attempt started or settled, or a
    /// redelivery); null if never.
    async fn tm_update(&self) -> Option<DateTime<Utc>> {
        self.0.row.tm_update
    }

    /// The attempts, oldest first: the latest 50 at most. Each page loads
    /// the attempts of all its deliveries at once; select this on pages of
    /// a few dozen deliveries (it counts as a list of 50 towards the
    /// query's complexity).
    #[graphql(complexity = "MAX_ATTEMPTS_SHOWN as usize * child_complexity")]
    async fn attempts(&self, ctx: &Context<'_>) -> Result<Vec<WebhookAttemptView>> {
        if self.0.attempts.get().is_none() {
            ListedDelivery::load_attempts(ctx, std::slice::from_ref(&self.0)).await?;
        }
        Ok(self
            .0
            .attempts
            .get()
            .map(|attempts| attempts.iter().map(Into::into).collect())
            .unwrap_or_default())
    }
}

/// Which deliveries `webhookDeliveries` lists; every condition given must hold.
#[derive(InputObject)]
#[graphql(name = "WebhookDeliveryFilter")]
pub struct WebhookDeliveryFilterInput {
    /// Only this customer's deliveries. Customer admins always see only
    /// their own customer's.
    customer_id: Option<Uuid>,
    /// Only the delivery of this event.
    event_id: Option<Uuid>,
    /// Only deliveries in this state.
    state: Option<DeliveryState>,
}

impl From<WebhookDeliveryFilterInput> for DeliveryFilter {
    fn from(input: WebhookDeliveryFilterInput) -> Self {
        Self {
            customer_id: input.customer_id,
            event_id: input.event_id,
            state: input.state,
        }
    }
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Webhook deliveries, newest first (by their place in the queue, then
    /// event id), as a Relay connection, each with its event and attempts.
    /// Readable by whoever may read the event: super admins every delivery,
    /// a customer's admins (and its access keys) their own customer's.
    /// `first`/`last` default to 20 and may be at most 100.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which deliveries to list; omitted, every one the caller may read.")]
        filter: Option<WebhookDeliveryFilterInput>,
        #[graphql(desc = "Page size, counted from the newest end (default 20, at most 100).")]
        first: Option<i32>,
        #[graphql(desc = "Cursor of the edge after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size, counted from the oldest end (at most 100).")] last: Option<
            i32,
        >,
        #[graphql(desc = "Cursor of the edge before which the page ends.")] before: Option<String>,
    ) -> Result<Connection<ListedDelivery>> {
        let principal = principal(ctx).await?;
        let request = page_request(first, after, last, before)?;
        let filter = filter.map(DeliveryFilter::from).unwrap_or_default();
        let page = webhooks::list(state(ctx), principal, &filter, request).await?;
        let page = Page {
            items: page.items.into_iter().map(ListedDelivery::from).collect(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        };
        Ok(Connection::new(page, filter))
    }
}

/// Which event to deliver again.
#[derive(InputObject)]
pub struct RedeliverEventInput {
    /// The event's id (`Event.id`, the `X-VoIPBIN-Event-Id` it was sent with).
    event_id: Uuid,
}

/// The result of `redeliverEvent`.
#[derive(SimpleObject)]
pub struct RedeliverEventPayload {
    /// The event's delivery as it is now: PENDING and due.
    delivery: WebhookDeliveryView,
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Sends an event to its customer's webhook again, to the address, with
    /// the method and signed with the secret the customer has now, with the
    /// same `X-VoIPBIN-Event-Id`. Whoever may read the event may (super
    /// admins; the customer's admins and access keys); any other event id
    /// is NOT_FOUND, existing or not. The customer must have a webhook now,
    /// or it is BAD_USER_INPUT (`eventId`). A delivered or failed delivery
    /// becomes PENDING again, due now, with a fresh retry budget (attempt
    /// numbers keep counting), and goes to the tail of the customer's queue:
    /// it is sent after what is already queued. A PENDING one is made due
    /// now and keeps its place and budget; if an attempt is under way, it
    /// is not sent twice at once, and that attempt's outcome stands. An
    /// event that never had a delivery (its customer had no webhook then)
    /// gets one. Nothing is added to the event log.
    async fn redeliver_event(
        &self,
        ctx: &Context<'_>,
        input: RedeliverEventInput,
    ) -> Result<RedeliverEventPayload> {
        let principal = principal(ctx).await?;
        let row = webhooks::redeliver(state(ctx), principal, input.event_id).await?;
        Ok(RedeliverEventPayload {
            delivery: WebhookDeliveryView(row.into()),
        })
    }
}
