//! Live events: `customerEvents`, fed by `feed::EventHub`. Each event is
//! checked against the subscription's selection (the same rules as the
//! `events` audit trail) and the credential is checked again before every
//! event and every few seconds, so a revoked or expired credential ends
//! its subscriptions.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Result, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::context::{bearer, principal, state};
use super::events::EventView;
use crate::app::AppState;
use crate::auth::CredentialId;
use crate::db::models::event::{EventRow, EventSelection};
use crate::error::AppError;
use crate::service::events::EventFilter;

/// How often a quiet subscription checks that its credential still holds.
const CREDENTIAL_CHECK_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Events as they are committed, through any server: the same `Event`
    /// objects as `events` and the webhooks' `data`. Only events committed
    /// after the subscription started, each once, in the log's order. Super
    /// admins may follow every customer (or one, with `customerId`); a
    /// customer's admins (and its admin access keys) only their own. The
    /// subscription ends with `UNAUTHENTICATED` once its credential is
    /// revoked or expires, and with `SERVICE_UNAVAILABLE` if the client
    /// falls thousands of events behind (subscribe again).
    async fn customer_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only this customer's events; customer admins always get only their own."
        )]
        customer_id: Option<Uuid>,
        #[graphql(
            desc = "Only events of these types (at most 32), e.g. `[\"customer_updated\"]`."
        )]
        types: Option<Vec<String>>,
    ) -> Result<impl Stream<Item = Result<EventView>> + use<>> {
        let principal = principal(ctx).await?;
        let filter = EventFilter {
            customer_id,
            types,
            ..Default::default()
        };
        let selection = filter.selection(principal)?;
        // Checked again with the credential, in case its rights have changed.
        let filter = EventFilter {
            customer_id: selection.customer_id,
            types: selection.types.clone(),
            ..Default::default()
        };
        let token = bearer(ctx).ok_or(AppError::Unauthenticated)?.to_owned();
        let state = state(ctx).clone();
        let receiver = state.event_hub.subscribe();
        // Taken after subscribing: an event created from now on commits
        // later, so the feed hands it to this receiver; older ones are dropped.
        let started = Utc::now();
        let live = Live {
            receiver,
            state,
            token,
            credential: principal.credential,
            filter,
            selection,
            started,
            checks: tokio::time::interval_at(
                tokio::time::Instant::now() + CREDENTIAL_CHECK_INTERVAL,
                CREDENTIAL_CHECK_INTERVAL,
            ),
            ended: false,
        };
        Ok(futures_util::stream::unfold(live, Live::next))
    }
}

struct Live {
    receiver: broadcast::Receiver<Arc<EventRow>>,
    state: AppState,
    token: String,
    credential: CredentialId,
    filter: EventFilter,
    selection: EventSelection,
    started: DateTime<Utc>,
    checks: tokio::time::Interval,
    ended: bool,
}

impl Live {
    async fn next(mut self) -> Option<(Result<EventView>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                received = self.receiver.recv() => match received {
                    Ok(event) => {
                        if event.tm_create < self.started || !self.selection.matches(&event) {
                            continue;
                        }
                        if let Err(error) = self.check_credential().await {
                            return self.end_with(error);
                        }
                        return Some((Ok(EventView::from((*event).clone())), self));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "a subscriber fell behind the event feed; ending its subscription");
                        return self.end_with(AppError::Overloaded { retry_after_seconds: 1 });
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.checks.tick() => {
                    if let Err(error) = self.check_credential().await {
                        return self.end_with(error);
                    }
                }
            }
        }
    }

    fn end_with(mut self, error: AppError) -> Option<(Result<EventView>, Self)> {
        self.ended = true;
        Some((Err(error.into()), self))
    }

    /// The credential still names the same caller, who may still read
    /// these events. Warm, this is a cache lookup: every replica drops its
    /// cached credentials on revocation and on changes of rights.
    async fn check_credential(&self) -> Result<(), AppError> {
        match crate::service::auth::resolve_credential(&self.state, &self.token).await {
            Ok(now) if now.credential == self.credential => self.filter.selection(&now).map(drop),
            Ok(_) | Err(AppError::Unauthenticated) => Err(AppError::Unauthenticated),
            // The database is away: not a verdict on the credential.
            Err(_) => Ok(()),
        }
    }
}
