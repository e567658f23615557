//! The live feed behind subscriptions. While anyone on this server is
//! subscribed, one follower task reads the event log in commit order
//! (`event::read_after`: whole transactions, below the oldest one still
//! running) every `POLL_INTERVAL` and fans each event out to the
//! subscribers, so an event committed through any replica reaches the
//! subscribers of every replica. It polls rather than LISTENs: a NOTIFY
//! would make every write commit one at a time (see migration 000015), and
//! a read that finds nothing new is one index probe.
//!
//! Nothing is kept for subscribers that are not there: with no subscriber
//! the follower stops reading and forgets its place, and starts again at
//! the end of the log when one arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::app::AppState;
use crate::auth::CredentialId;
use crate::db::models::event::{self, EventRow, LogPosition};
use crate::error::error_chain;

/// Events a subscriber may be behind before its subscription is ended.
const BUFFERED_EVENTS: usize = 4096;
/// Events read from the log at once.
const READ_BATCH: i64 = 500;
/// How often the follower reads the log while anyone is subscribed.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often an idle follower checks that its server still runs.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// This server's subscribers and what feeds them.
pub struct EventHub {
    events: broadcast::Sender<Arc<EventRow>>,
    /// A subscriber arrived.
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
    let state = state.downgrade();
    tokio::spawn(async move {
        let mut position: Option<LogPosition> = None;
        loop {
            if hub.events.receiver_count() == 0 {
                position = None;
                // Waits for a subscriber, looking now and then whether the
                // server is gone, so that the task ends with it.
                let woken = tokio::time::timeout(IDLE_CHECK, hub.wake.notified()).await;
                if woken.is_err() && state.upgrade().is_none() {
                    return;
                }
                continue;
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
                tokio::time::sleep(POLL_INTERVAL).await;
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
