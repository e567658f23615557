//! The live feed behind subscriptions. While anyone on this server is
//! subscribed, one follower task reads the event log in commit order
//! (`event::read_after`: whole transactions, below the oldest one still
//! running) and fans each event out to the subscribers. It is woken by the
//! `events` NOTIFY that every appending transaction sends at commit, so an
//! event committed through any replica reaches the subscribers of every
//! replica; it also polls, because a long transaction ending can make
//! earlier commits readable without a notification of its own.
//!
//! Nothing is kept for subscribers that are not there: with no subscriber
//! the follower stops reading and forgets its place, and starts again at
//! the end of the log when one arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, broadcast};

use crate::app::AppState;
use crate::auth::CredentialId;
use crate::db::models::event::{self, EventRow, LogPosition};
use crate::error::error_chain;

/// Events a subscriber may be behind before its subscription is ended.
const BUFFERED_EVENTS: usize = 4096;
/// Events read from the log at once.
const READ_BATCH: i64 = 500;
/// How often the follower reads without a notification.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Shows in `pg_stat_activity`.
const LISTENER_APPLICATION_NAME: &str = "customer-api event listener";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// This server's subscribers and what feeds them.
pub struct EventHub {
    events: broadcast::Sender<Arc<EventRow>>,
    /// A subscriber arrived, or events were appended.
    wake: Arc<Notify>,
    /// Open subscription connections by credential, for the per-credential cap.
    connections: Mutex<HashMap<CredentialId, usize>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            events: broadcast::channel(BUFFERED_EVENTS).0,
            wake: Arc::new(Notify::new()),
            connections: Mutex::default(),
        }
    }
}

impl EventHub {
    /// Every event committed from now on (and possibly a few from just
    /// before: subscribers drop those by time).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRow>> {
        let receiver = self.events.subscribe();
        self.wake.notify_one();
        receiver
    }

    /// Counts a connection of `credential`, unless it already has `max` open.
    pub fn open_connection(
        self: &Arc<Self>,
        credential: CredentialId,
        max: usize,
    ) -> Option<ConnectionSlot> {
        let mut connections = self.connections.lock().expect("never poisoned");
        let open = connections.entry(credential).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(ConnectionSlot {
            hub: self.clone(),
            credential,
        })
    }
}

/// One open subscription connection, counted against its credential's cap
/// until dropped.
pub struct ConnectionSlot {
    hub: Arc<EventHub>,
    credential: CredentialId,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self.hub.connections.lock().expect("never poisoned");
        if let Some(open) = connections.get_mut(&self.credential) {
            *open -= 1;
            if *open == 0 {
                connections.remove(&self.credential);
            }
        }
    }
}

/// Runs the follower for as long as the server's state lives.
pub fn spawn_follower(state: &AppState) {
    let hub = state.event_hub.clone();
    let database_url = state.config.database_url.expose().to_owned();
    let state = state.downgrade();
    tokio::spawn(async move {
        let mut position: Option<LogPosition> = None;
        let mut listener: Option<AbortOnDrop> = None;
        loop {
            if hub.events.receiver_count() == 0 {
                position = None;
                listener = None;
                hub.wake.notified().await;
                continue;
            }
            if listener.is_none() {
                listener = Some(spawn_events_listener(
                    database_url.clone(),
                    LISTENER_APPLICATION_NAME,
                    hub.wake.clone(),
                ));
            }
            let Some(state) = state.upgrade() else { return };
            let full = match read(&state, &hub, &mut position).await {
                Ok(read) => read == READ_BATCH as usize,
                Err(error) => {
                    tracing::warn!(error = %error, "could not read the event log for subscribers");
                    false
                }
            };
            drop(state);
            if !full {
                tokio::select! {
                    () = hub.wake.notified() => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
    });
}

/// Reads the next events after `position` (from the end of the log if
/// there is none yet) and sends them to the subscribers; returns how many.
async fn read(
    state: &AppState,
    hub: &EventHub,
    position: &mut Option<LogPosition>,
) -> Result<usize, String> {
    let mut conn = state.conn().await.map_err(|e| error_chain(&e))?;
    let after = match *position {
        Some(after) => after,
        None => {
            let tail = event::log_tail(&mut conn)
                .await
                .map_err(|e| error_chain(&e))?;
            *position = Some(tail);
            tail
        }
    };
    let events = event::read_after(&mut conn, after, READ_BATCH)
        .await
        .map_err(|e| error_chain(&e))?;
    let count = events.len();
    for followed in events {
        *position = Some(followed.position());
        // No receiver left is not an error: the next round notices.
        let _ = hub.events.send(Arc::new(followed.event));
    }
    Ok(count)
}

/// Stops the task when dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes `wake` on every `events` notification (and once whenever the
/// LISTEN takes effect, for what committed before it), reconnecting with
/// backoff, until dropped. Only a wake-up: readers of the log poll as well.
pub(crate) fn spawn_events_listener(
    database_url: String,
    application_name: &'static str,
    wake: Arc<Notify>,
) -> AbortOnDrop {
    spawn_wake_up_listener(database_url, "events", application_name, wake)
}

/// Wakes `wake` on every notification on `channel`, as `spawn_events_listener`.
pub(crate) fn spawn_wake_up_listener(
    database_url: String,
    channel: &'static str,
    application_name: &'static str,
    wake: Arc<Notify>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            match listen(&database_url, channel, application_name, &wake).await {
                Ok(()) => backoff = MIN_BACKOFF,
                Err(error) => {
                    tracing::debug!(%error, application_name, "events listener disconnected")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }))
}

async fn listen(
    database_url: &str,
    channel: &str,
    application_name: &str,
    wake: &Notify,
) -> Result<(), tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = database_url.parse()?;
    config.application_name(application_name);
    let Ok(connected) =
        tokio::time::timeout(CONNECT_TIMEOUT, config.connect(tokio_postgres::NoTls)).await
    else {
        return Ok(());
    };
    let (client, mut connection) = connected?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {channel}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    let mut listened = false;
    loop {
        tokio::select! {
            done = &mut listening, if !listened => {
                done?;
                listened = true;
                wake.notify_one();
            }
            message = messages.next() => match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}
