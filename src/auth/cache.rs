//! A per-process cache of resolved credentials, kept honest across replicas.
//!
//! Every change to a row a credential depends on fires a PostgreSQL trigger
//! that NOTIFYs `credential_changes`; each process LISTENs on a dedicated
//! connection, drops its whole cache on any notification, and acknowledges
//! it. A process that revokes a credential waits for the acknowledgements of
//! every listener connected to the database before it answers, so the
//! revocation holds on the very next request to any replica. Entries carry
//! the epoch at which their database read started and are only served while
//! that epoch is current, so a read racing with an invalidation never
//! outlives it.
//!
//! The cache is trusted only under a lease: each heartbeat round trip on the
//! listener connection proves that every change committed before it was
//! sent has been heard (PostgreSQL delivers a notification before the answer
//! to any later query on that connection), and extends the lease to
//! `LEASE` after the heartbeat was sent. A listener that is disconnected,
//! or stalled without either side noticing, stops extending it, and the
//! cache is bypassed (every request asks the database) once it runs out.
//! Because `LEASE` is shorter than `REVOCATION_ACK_WAIT`, a revoking request
//! that has not heard back from a replica has waited long enough for that
//! replica to stop trusting its cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Principal;
use super::revocation::REVOCATION_ACK_WAIT;

pub const CHANNEL: &str = "credential_changes";
/// Where each listener acknowledges a change it has applied, as `<listener>|<payload>`.
const ACK_CHANNEL: &str = "credential_change_acks";
/// How listener connections show in `pg_stat_activity`, so that a process
/// making a change can count the listeners it must hear back from.
pub const LISTENER_APPLICATION_NAME: &str = "customer-api credential listener";
const MAX_ENTRIES: u64 = 100_000;
/// A safety net only: invalidation does the real work.
const MAX_AGE: Duration = Duration::from_secs(300);
/// How long one heartbeat lets the cache be trusted, counted from when it was
/// sent. Shorter than `REVOCATION_ACK_WAIT`, with room for clock-rate drift
/// and scheduling between the two processes.
pub const LEASE: Duration = Duration::from_millis(1500);
/// Several heartbeats per lease, so that one slow round trip does not make
/// the cache lapse.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(400);
const _: () = assert!(LEASE.as_millis() < REVOCATION_ACK_WAIT.as_millis());
const _: () = assert!(3 * HEARTBEAT_EVERY.as_millis() <= LEASE.as_millis());

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKey {
    Session(Uuid),
    /// SHA-256 of an access key.
    AccessKey(String),
}

#[derive(Clone, Debug)]
pub struct CachedCredential {
    pub principal: Principal,
    /// When the credential stops working by itself.
    pub expires_at: DateTime<Utc>,
    epoch: u64,
}

/// Stops the listener when dropped.
pub struct ListenerGuard(tokio::task::JoinHandle<()>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
pub struct CredentialCache {
    inner: Arc<Inner>,
}

struct Inner {
    entries: moka::sync::Cache<CredentialKey, CachedCredential>,
    epoch: AtomicU64,
    /// Until when (nanoseconds after `origin`) the cache may be trusted; 0
    /// while no listener is connected.
    trusted_until: AtomicU64,
    origin: Instant,
    /// Payloads of the notifications heard, for callers that wait for their own.
    heard: broadcast::Sender<String>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: moka::sync::Cache::builder()
                    .max_capacity(MAX_ENTRIES)
                    .time_to_live(MAX_AGE)
                    .build(),
                epoch: AtomicU64::new(0),
                trusted_until: AtomicU64::new(0),
                origin: Instant::now(),
                heard: broadcast::channel(1024).0,
            }),
        }
    }
}

impl CredentialCache {
    /// The current epoch; pass it to `insert` after reading the database.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    pub fn get(&self, key: &CredentialKey) -> Option<CachedCredential> {
        if !self.is_listening() {
            return None;
        }
        self.inner
            .entries
            .get(key)
            .filter(|entry| entry.epoch == self.epoch())
    }

    pub fn insert(
        &self,
        key: CredentialKey,
        principal: Principal,
        expires_at: DateTime<Utc>,
        read_epoch: u64,
    ) {
        if self.is_listening() && read_epoch == self.epoch() {
            let entry = CachedCredential {
                principal,
                expires_at,
                epoch: read_epoch,
            };
            self.inner.entries.insert(key, entry);
        }
    }

    /// Forgets everything cached so far.
    pub fn invalidate_all(&self) {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        self.inner.entries.invalidate_all();
    }

    /// Whether the listener has proved, within its lease, that it hears
    /// every change: only then is the cache served from.
    pub fn is_listening(&self) -> bool {
        self.nanos_since_origin(Instant::now()) < self.inner.trusted_until.load(Ordering::SeqCst)
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.origin).as_nanos())
            .unwrap_or(u64::MAX)
    }

    /// Trusts the cache until `LEASE` after `proved_at`, the moment a round
    /// trip that the listener has since completed was sent.
    fn extend_lease(&self, proved_at: Instant) {
        let until = self.nanos_since_origin(proved_at + LEASE).max(1);
        self.inner.trusted_until.fetch_max(until, Ordering::SeqCst);
    }

    fn end_lease(&self) {
        self.inner.trusted_until.store(0, Ordering::SeqCst);
        // Whatever was cached may have changed unheard while not listening.
        self.invalidate_all();
    }

    /// Waits (at most `limit`) for the listener to connect, so that a server
    /// starts serving with its cache working.
    pub async fn wait_until_listening(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_listening() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Subscribe before a change, then `wait_for_acks` after its commit.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.heard.subscribe()
    }

    /// Waits (at most `limit`) until `listeners` listeners, this process's
    /// included, have acknowledged dropping their caches for the change
    /// announced as `payload`. Returns whether they all did.
    pub async fn wait_for_acks(
        &self,
        mut acks: broadcast::Receiver<String>,
        payload: &str,
        listeners: usize,
        limit: Duration,
    ) -> bool {
        let mut acknowledged = std::collections::HashSet::new();
        tokio::time::timeout(limit, async {
            while acknowledged.len() < listeners {
                match acks.recv().await {
                    Ok(ack) => {
                        if let Some((listener, heard)) = ack.split_once('|') {
                            if heard == payload {
                                acknowledged.insert(listener.to_owned());
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// Runs the listener, reconnecting with backoff whenever its connection
    /// fails, until the returned guard is dropped.
    pub fn spawn_listener(&self, database_url: String) -> ListenerGuard {
        let cache = self.clone();
        ListenerGuard(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match cache.listen(&database_url).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(error) => {
                        tracing::warn!(%error, "credential change listener disconnected");
                    }
                }
                cache.end_lease();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }))
    }

    async fn listen(&self, database_url: &str) -> Result<(), tokio_postgres::Error> {
        let mut config: tokio_postgres::Config = database_url.parse()?;
        config.application_name(LISTENER_APPLICATION_NAME);
        let connecting = tokio::time::timeout(LEASE, config.connect(tokio_postgres::NoTls));
        let Ok(connected) = connecting.await else {
            return Ok(());
        };
        let (client, mut connection) = connected?;
        let (notes_tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
        // Notifications are queued here in the order the connection received
        // them, before the answer to any later query is handed to `client`.
        let pump = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                        let note = (note.channel().to_owned(), note.payload().to_owned());
                        if notes_tx.send(note).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        });
        let listener_id = Uuid::new_v4();
        let result = async {
            let sent = Instant::now();
            client
                .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {ACK_CHANNEL}"))
                .await?;
            // Entries read before the LISTEN took effect may have missed a change.
            self.invalidate_all();
            self.extend_lease(sent);
            tracing::debug!(%listener_id, "listening for credential changes");
            let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            heartbeat.tick().await;
            loop {
                tokio::select! {
                    note = notes.recv() => match note {
                        Some(note) => self.heard(&client, listener_id, note).await?,
                        None => return Ok(()),
                    },
                    _ = heartbeat.tick() => {
                        let sent = Instant::now();
                        match tokio::time::timeout(LEASE, client.simple_query("SELECT 1")).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => return Err(error),
                            // Stalled: the lease runs out by itself; reconnect.
                            Err(_) => return Ok(()),
                        }
                        // Everything committed before `sent` has been queued
                        // by now: apply it before vouching for the cache.
                        while let Ok(note) = notes.try_recv() {
                            self.heard(&client, listener_id, note).await?;
                        }
                        self.extend_lease(sent);
                    }
                }
            }
        }
        .await;
        pump.abort();
        result
    }

    async fn heard(
        &self,
        client: &tokio_postgres::Client,
        listener_id: Uuid,
        (channel, payload): (String, String),
    ) -> Result<(), tokio_postgres::Error> {
        if channel == CHANNEL {
            self.invalidate_all();
            // Tell whoever made the change that this process has forgotten.
            let ack = format!("{listener_id}|{payload}");
            client
                .execute("SELECT pg_notify($1, $2)", &[&ACK_CHANNEL, &ack])
                .await?;
        } else {
            let _ = self.inner.heard.send(payload);
        }
        Ok(())
    }
}
