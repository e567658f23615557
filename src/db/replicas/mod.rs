//! Read replicas: a pool per streaming replica (`DATABASE_REPLICA_URLS`),
//! the health check that decides which of them may serve reads, and the
//! routing of the reads that tolerate lag (`AppState::read`).
//!
//! Staleness is measured against the primary itself, not from clocks: every
//! `CHECK_INTERVAL` the checker samples the primary's WAL position
//! (`pg_current_wal_lsn()`), then asks each replica how far it has replayed
//! (`pg_last_wal_replay_lsn()`). A replica that has replayed the position
//! sampled at instant T holds every transaction committed before T, so it is
//! "consistent as of" T, and its lag is now − T. That needs no special case
//! for an idle primary (nothing to replay: consistent as of the latest
//! sample), compares no two machines' clocks, and notices a replica whose
//! WAL receiver has stopped while the primary moves on, which PostgreSQL's
//! replay timestamp alone does not (received = replayed there reads as no
//! lag). The replay-timestamp formula is still used while the primary
//! cannot be sampled.
//!
//! Read-your-writes uses the same instants: a request that wrote as a
//! credential records, once it has finished (so its transactions have
//! committed), when it did; for `READ_YOUR_WRITES_MS` after that, the
//! credential's reads go only to replicas consistent as of a later instant,
//! otherwise to the primary.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{DbPool, PoolSettings, StatementCounter};
use crate::app::{AppState, Conn};
use crate::auth::{CredentialId, Principal};
use crate::config::{Config, Secret};
use crate::error::{AppError, AppResult, error_chain};
use crate::metrics::Metrics;

mod health;
mod writes;

pub use health::start_checks;
use writes::wrote_in_this_request;
pub use writes::{carrying_writes, note_write, tracking_stream_writes, tracking_writes};
/// How fresh a read must be. Ordered from the least to the most demanding,
/// so that a read shared by several requests asks for the greatest of theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Freshness {
    /// Any healthy replica within the lag limit.
    Any,
    /// A replica that has every transaction committed before this instant
    /// (the credential's last write).
    After(Instant),
    /// The primary: the request wrote, or there are no replicas.
    Primary,
}

/// How often each replica's health and lag are measured.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// How long one check of one server may take before it counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest wait for a replica's pooled connection before the read goes to the
/// primary instead: a replica that hangs must cost a read little.
const REPLICA_POOL_TIMEOUT: Duration = Duration::from_secs(1);

/// The replicas of this process, their health, and the credentials that
/// wrote lately. Empty (and free) without `DATABASE_REPLICA_URLS`.
pub struct Replicas {
    members: Vec<Replica>,
    /// Round-robin position among the replicas.
    next: AtomicUsize,
    /// When each credential's last write ended, for `READ_YOUR_WRITES_MS`.
    writes: moka::sync::Cache<CredentialId, Instant>,
    max_lag: Duration,
}

pub struct Replica {
    /// Its place in `DATABASE_REPLICA_URLS`, the `replica` label of its metrics.
    pub index: usize,
    /// Host, port and database, for logs: never the URL (it may hold a password).
    pub name: String,
    url: Secret,
    pub pool: DbPool,
    /// Statements sent over this replica's pool.
    pub statements: StatementCounter,
    status: Mutex<Status>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Status {
    /// `None` until the first check has answered.
    healthy: Option<bool>,
    /// Every transaction committed on the primary before this instant has
    /// been replayed here.
    consistent_as_of: Option<Instant>,
}

impl Replicas {
    pub fn new(config: &Config, metrics: &Metrics) -> AppResult<Self> {
        let settings = PoolSettings {
            max_size: config.db_pool_size,
            timeout: Duration::from_millis(config.db_pool_timeout_ms).min(REPLICA_POOL_TIMEOUT),
            statement_timeout: Duration::from_millis(config.db_statement_timeout_ms),
        };
        let members = config
            .replica_urls()
            .into_iter()
            .enumerate()
            .map(|(index, url)| {
                let statements = metrics.replica_statements(index);
                let pool = super::build_pool(url.expose(), &settings, statements.clone())?;
                metrics.set_replica_health(index, false, None);
                Ok(Replica {
                    index,
                    name: describe(url.expose()),
                    url,
                    pool,
                    statements,
                    status: Mutex::default(),
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Self {
            members,
            next: AtomicUsize::new(0),
            writes: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_millis(config.read_your_writes_ms))
                .build(),
            max_lag: Duration::from_millis(config.replica_max_lag_ms),
        })
    }

    pub fn members(&self) -> &[Replica] {
        &self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How fresh a read as `credential` must be, asked from within the
    /// request (its own writes are a task-local of it).
    pub fn freshness(&self, credential: Option<CredentialId>) -> Freshness {
        if self.members.is_empty() || wrote_in_this_request() {
            return Freshness::Primary;
        }
        match credential.and_then(|c| self.writes.get(&c)) {
            Some(wrote_at) => Freshness::After(wrote_at),
            None => Freshness::Any,
        }
    }

    /// A healthy replica that serves reads as fresh as `freshness`, taking
    /// turns; `None` sends the read to the primary.
    fn choose(&self, freshness: Freshness) -> Option<&Replica> {
        let wrote_at = match freshness {
            Freshness::Primary => return None,
            Freshness::After(wrote_at) => Some(wrote_at),
            Freshness::Any => None,
        };
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.members[(start + i) % count])
            .find(|replica| replica.serves(wrote_at))
    }

    /// Records that `credential` has just finished writing.
    fn record_write(&self, credential: CredentialId) {
        self.writes.insert(credential, Instant::now());
    }
}

impl Replica {
    fn status(&self) -> Status {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the last check found it usable.
    pub fn is_healthy(&self) -> bool {
        self.status().healthy == Some(true)
    }

    /// Whether it may serve a read of a credential that last wrote at `wrote_at`.
    fn serves(&self, wrote_at: Option<Instant>) -> bool {
        let status = self.status();
        status.healthy == Some(true)
            && wrote_at.is_none_or(|wrote| status.consistent_as_of.is_some_and(|t| t > wrote))
    }

    /// Takes it out of use until the next check finds it well: a read on it
    /// just failed at the connection level.
    fn mark_failed(&self, state: &AppState, error: &AppError) {
        let was = {
            let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
            status.healthy.replace(false)
        };
        if was == Some(true) {
            state.metrics.set_replica_health(self.index, false, None);
            tracing::warn!(
                replica = self.index,
                server = %self.name,
                error = %error_chain(error),
                "read replica failed a read; reading from the primary until it checks healthy again"
            );
        }
    }
}

impl AppState {
    /// Runs a read that tolerates replication lag: on a healthy replica that
    /// has `principal`'s latest writes, else on the primary. A read that
    /// fails on the replica is run again on the primary (the replica may
    /// have died since its last check, or cancelled the query to replay).
    /// Connections count against the request's share, as `conn()`'s do.
    /// `query` gets the connection to use (and gives it back by ending).
    pub async fn read<T, F, Fut>(&self, principal: Option<&Principal>, query: F) -> AppResult<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        let freshness = self.replicas.freshness(principal.map(|p| p.credential));
        self.read_as_fresh_as(freshness, query).await
    }

    /// `read` with the freshness already decided (`Replicas::freshness`),
    /// for a read made on behalf of several requests at once.
    pub async fn read_as_fresh_as<T, F, Fut>(&self, freshness: Freshness, query: F) -> AppResult<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        let chosen = self.replicas.choose(freshness);
        if let Some(replica) = chosen {
            // A replica that hangs (its host gone, a network partition)
            // enforces no statement_timeout: bound the wait here too.
            let patience =
                Duration::from_millis(self.config.db_statement_timeout_ms) + CHECK_TIMEOUT;
            let attempt = async {
                let conn = self.conn_from(&replica.pool).await?;
                query(conn).await
            };
            let answer = tokio::time::timeout(patience, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(AppError::Unavailable(
                        "the read replica did not answer in time".into(),
                    ))
                });
            match answer {
                Ok(value) => return Ok(value),
                Err(error @ AppError::Unavailable(_)) => replica.mark_failed(self, &error),
                Err(error @ (AppError::Transient(_) | AppError::Internal(_))) => {
                    tracing::debug!(
                        replica = replica.index,
                        error = %error_chain(&error),
                        "read failed on a replica; running it on the primary"
                    );
                }
                Err(other) => return Err(other),
            }
        }
        query(self.conn().await?).await
    }
}

/// `host:port/database` of a URL, for logs.
fn describe(url: &str) -> String {
    use tokio_postgres::config::Host;
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "(unparsable URL)".to_owned();
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".to_owned(),
    };
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{database}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_named_without_their_password() {
        let name = describe("postgres://reader:hunter2@db-2.internal:5433/customer_api");
        assert_eq!(name, "db-2.internal:5433/customer_api");
        assert!(!name.contains("hunter2"));
    }
}
