//! Shared application state: configuration, database pool, hasher, token
//! signer, credential cache and login limiter.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::cache::{CredentialCache, ListenerGuard};
use crate::auth::limiter::{LimiterSettings, LoginLimiter};
use crate::auth::{PasswordHasher, TokenSigner};
use crate::config::{Config, Secret};
use crate::db::{self, DbConn, DbPool, PoolSettings, StatementCounter};
use crate::error::AppError;
use crate::error::AppResult;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub pool: DbPool,
    pub hasher: PasswordHasher,
    pub tokens: TokenSigner,
    pub credentials: CredentialCache,
    pub login_limiter: LoginLimiter,
    /// Access keys whose `tm_last_used` this process wrote in the last minute.
    pub recently_used_keys: moka::sync::Cache<uuid::Uuid, ()>,
    /// Hashes of access keys recently looked up and not found (a key is a
    /// random 256-bit secret: one that was unknown cannot appear later).
    pub unknown_access_keys: moka::sync::Cache<String, ()>,
    /// Concurrent reads of customers by id, sharing statements.
    pub customer_reads: crate::db::coalesce::Coalescer<crate::service::customers::CustomerById>,
    /// The number of live customers, shared by concurrent `totalCount`s.
    pub customer_count: crate::db::shared_count::SharedCount,
    /// SQL statements sent by this process, for tests and benchmarks.
    pub statements: StatementCounter,
    pub metrics: Metrics,
    /// Subscribers on this server, fed from the event log.
    pub event_hub: Arc<crate::feed::EventHub>,
    /// Lets the webhook worker hand back its claims on shutdown.
    pub webhooks: crate::webhooks::Shutdown,
    /// Read replicas, their health, and who wrote lately (`db::replicas`).
    pub replicas: crate::db::replicas::Replicas,
    _listener: ListenerGuard,
}

/// A handle on the state that does not keep it alive, for background tasks
/// that must end with the server.
pub struct WeakAppState(std::sync::Weak<AppInner>);

impl WeakAppState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl AppState {
    pub fn downgrade(&self) -> WeakAppState {
        WeakAppState(Arc::downgrade(&self.0))
    }
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state over a migrated database: builds the pool and the
    /// signers, and starts listening for credential changes (waiting a
    /// little for the listener, so that the cache works from the start).
    /// `startup::start` is what runs it, in its place among the start-up steps.
    pub async fn new(config: Config) -> AppResult<Self> {
        let url = config.database_url.expose().to_owned();
        let timeout = Duration::from_millis(config.db_pool_timeout_ms);
        let statements = StatementCounter::default();
        let metrics = Metrics::new(&statements);
        let pool = db::build_pool(
            &url,
            &PoolSettings {
                max_size: config.db_pool_size,
                timeout,
                statement_timeout: Duration::from_millis(config.db_statement_timeout_ms),
            },
            statements.clone(),
        )?;

        let mut secrets = config.token_secrets();
        if secrets.is_empty() {
            tracing::warn!(
                "TOKEN_SECRET is not set: signing tokens with a random key, so they end with this \
                 process and are not accepted by other replicas"
            );
            let bytes: [u8; 32] = rand::random();
            secrets.push(Secret::new(
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            ));
        }
        let tokens = TokenSigner::new(&secrets, config.token_ttl_seconds)?;
        let replicas = crate::db::replicas::Replicas::new(&config, &metrics)?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let login_limiter = LoginLimiter::new(LimiterSettings::of(&config));
        let credentials = CredentialCache::default();
        let listener = credentials.spawn_listener(url);
        if !credentials.wait_until_listening(timeout).await {
            tracing::warn!(
                "not yet listening for credential changes: checking every credential in the database until then"
            );
        }
        Ok(Self(Arc::new(AppInner {
            config,
            pool,
            hasher: PasswordHasher::new(cores, metrics.password_hashes())?,
            tokens,
            credentials,
            login_limiter,
            recently_used_keys: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(crate::auth::access_key::KEY_USE_RECORD_INTERVAL)
                .build(),
            unknown_access_keys: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            customer_reads: Default::default(),
            customer_count: Default::default(),
            statements,
            metrics,
            event_hub: Default::default(),
            webhooks: Default::default(),
            replicas,
            _listener: listener,
        })))
    }

    /// A pooled connection. Inside `with_connection_share` (every HTTP
    /// request), at most that many connections are held at once by the
    /// request: a batch of aliased fields waits for its own connections to
    /// come back instead of taking the whole pool from other clients.
    pub async fn conn(&self) -> AppResult<Conn> {
        self.conn_from(&self.pool).await
    }

    /// A connection from `pool` (the primary's, or a read replica's) under
    /// the same per-request share as `conn()`.
    pub(crate) async fn conn_from(&self, pool: &DbPool) -> AppResult<Conn> {
        let share = REQUEST_CONNECTIONS.try_with(Clone::clone).ok();
        let permit = match share {
            Some(share) => Some(
                share
                    .acquire_owned()
                    .await
                    .map_err(|_| AppError::internal("connection share closed"))?,
            ),
            None => None,
        };
        Ok(Conn {
            inner: pool.get().await?,
            _permit: permit,
        })
    }
}

tokio::task_local! {
    static REQUEST_CONNECTIONS: Arc<tokio::sync::Semaphore>;
    static REQUEST_ID: Arc<str>;
}

/// Runs `work` (one HTTP request) knowing its request id, which the events
/// it appends record.
pub async fn with_request_id<T>(id: Arc<str>, work: impl Future<Output = T>) -> T {
    REQUEST_ID.scope(id, work).await
}

/// The id of the HTTP request being served, if any.
pub fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `work` (one HTTP request) with a share of at most `connections`
/// database connections held at once.
pub async fn with_connection_share<T>(connections: usize, work: impl Future<Output = T>) -> T {
    REQUEST_CONNECTIONS
        .scope(
            Arc::new(tokio::sync::Semaphore::new(connections.max(1))),
            work,
        )
        .await
}

/// Spawns `work` as a task of the current request: it keeps the request's
/// span (so that its log lines carry the request id) and counts against the
/// request's connection share, like the request's own work. For work that a
/// request hands to another task, such as a DataLoader's batch.
pub fn spawn_for_request<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(within_request(work))
}

/// `work`, made to run in the current request's span and trace, connection
/// share and request id wherever it is polled (another task, or a blocking
/// thread).
pub fn within_request<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let work = tracing::Instrument::instrument(work, tracing::Span::current());
    let work = crate::telemetry::traces::in_current_trace(work);
    let work = crate::db::replicas::carrying_writes(work);
    let share = REQUEST_CONNECTIONS.try_with(Clone::clone).ok();
    let id = current_request_id();
    async move {
        let work = async move {
            match id {
                Some(id) => REQUEST_ID.scope(id, work).await,
                None => work.await,
            }
        };
        match share {
            Some(share) => REQUEST_CONNECTIONS.scope(share, work).await,
            None => work.await,
        }
    }
}

/// A pooled connection, counted against its request's share while held.
pub struct Conn {
    inner: DbConn,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for Conn {
    type Target = diesel_async::AsyncPgConnection;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}
