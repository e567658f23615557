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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::Stream;

use super::{DbPool, PoolSettings, StatementCounter};
use crate::app::{AppState, Conn, WeakAppState};
use crate::auth::{CredentialId, Principal};
use crate::config::{Config, Secret};
use crate::error::{AppError, AppResult, error_chain};
use crate::metrics::Metrics;

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

    /// A healthy replica that may serve `credential`'s reads, taking turns;
    /// `None` sends the read to the primary.
    fn choose(&self, credential: Option<CredentialId>) -> Option<&Replica> {
        if self.members.is_empty() {
            return None;
        }
        let wrote_at = credential.and_then(|c| self.writes.get(&c));
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
        // A request that has written reads its own writes (a mutation's answer).
        let chosen = match wrote_in_this_request() {
            true => None,
            false => self.replicas.choose(principal.map(|p| p.credential)),
        };
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

tokio::task_local! {
    /// The credentials that wrote during the current request.
    static WRITERS: Arc<Mutex<Vec<CredentialId>>>;
}

/// Notes that the current request writes as `principal` (called by every
/// change, in its transaction); recorded when the request ends.
pub fn note_write(principal: &Principal) {
    let _ = WRITERS.try_with(|writers| {
        let mut writers = writers.lock().unwrap_or_else(|e| e.into_inner());
        if !writers.contains(&principal.credential) {
            writers.push(principal.credential);
        }
    });
}

fn wrote_in_this_request() -> bool {
    WRITERS
        .try_with(|writers| !writers.lock().unwrap_or_else(|e| e.into_inner()).is_empty())
        .unwrap_or(false)
}

/// Runs `work` (one request), then records the writes noted during it: only
/// then have their transactions committed, which is what a replica must be
/// checked against.
pub async fn tracking_writes<T>(state: &AppState, work: impl Future<Output = T>) -> T {
    if state.replicas.is_empty() {
        return work.await;
    }
    let writers = Arc::new(Mutex::new(Vec::new()));
    let output = WRITERS.scope(writers.clone(), work).await;
    for credential in writers.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        state.replicas.record_write(credential);
    }
    output
}

/// `tracking_writes` for the operations of a WebSocket, whose answers are
/// streams: the writes noted while producing an answer are recorded once
/// it is out.
pub fn tracking_stream_writes<S>(state: AppState, stream: S) -> impl Stream<Item = S::Item>
where
    S: Stream,
{
    let writers = Arc::new(Mutex::new(Vec::new()));
    let mut stream = Box::pin(stream);
    futures_util::stream::poll_fn(move |cx| {
        let polled = WRITERS.sync_scope(writers.clone(), || stream.as_mut().poll_next(cx));
        if polled.is_ready() {
            for credential in writers.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                state.replicas.record_write(credential);
            }
        }
        polled
    })
}

/// `work`, keeping the current request's write notes wherever it is polled
/// (see `app::within_request`).
pub fn carrying_writes<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let writers = WRITERS.try_with(Clone::clone).ok();
    async move {
        match writers {
            Some(writers) => WRITERS.scope(writers, work).await,
            None => work.await,
        }
    }
}

/// Checks the replicas once now (so that they serve from the start), then
/// every `CHECK_INTERVAL` for as long as the server's state lives.
pub async fn start_checks(state: &AppState) {
    if state.replicas.is_empty() {
        return;
    }
    let mut checker = Checker::new(state);
    checker.round(state).await;
    let weak = state.downgrade();
    tokio::spawn(async move { checker.run(weak).await });
}

/// The health checker's own connections (outside the pools, so that its
/// statements are not counted as served reads) and the primary's recent
/// WAL positions.
struct Checker {
    primary: Probe,
    replicas: Vec<Probe>,
    /// `(when, primary's WAL position then)`, oldest first.
    samples: VecDeque<(Instant, u64)>,
    /// How far back samples are kept: a replica further behind is lagging
    /// anyway.
    horizon: Duration,
}

/// One server the checker talks to, over a connection it keeps.
struct Probe {
    config: Option<tokio_postgres::Config>,
    client: Option<tokio_postgres::Client>,
}

impl Probe {
    fn new(url: &str) -> Self {
        let config = url.parse::<tokio_postgres::Config>().ok().map(|mut c| {
            c.application_name("customer-api replica check")
                .connect_timeout(CHECK_TIMEOUT);
            c
        });
        Self {
            config,
            client: None,
        }
    }

    /// Runs `sql` (one row), connecting first if needed; a failure or a
    /// timeout drops the connection, so that the next round starts afresh.
    async fn query_one(&mut self, sql: &str) -> Result<tokio_postgres::Row, String> {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                let config = self.config.as_ref().ok_or("not a PostgreSQL URL")?;
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| error_chain(&e))?;
                tokio::spawn(connection);
                self.client = Some(client);
            }
            let client = self.client.as_ref().expect("connected above");
            client
                .query_one(sql, &[])
                .await
                .map_err(|e| error_chain(&e))
        })
        .await
        .unwrap_or_else(|_| Err("no answer in time".to_owned()));
        if outcome.is_err() {
            self.client = None;
        }
        outcome
    }
}

/// What one check of a replica found.
enum Finding {
    Unreachable(String),
    NotAStandby,
    Replaying {
        replayed: u64,
        /// PostgreSQL's own estimate from replay timestamps, in seconds.
        timestamp_lag: f64,
    },
}

impl Checker {
    fn new(state: &AppState) -> Self {
        let horizon = Duration::from_millis(
            state
                .config
                .replica_max_lag_ms
                .max(state.config.read_your_writes_ms),
        ) + CHECK_INTERVAL * 4;
        Self {
            primary: Probe::new(state.config.database_url.expose()),
            replicas: state
                .replicas
                .members()
                .iter()
                .map(|r| Probe::new(r.url.expose()))
                .collect(),
            samples: VecDeque::new(),
            horizon,
        }
    }

    async fn run(mut self, state: WeakAppState) {
        let mut ticks = tokio::time::interval(CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            self.round(&state).await;
        }
    }

    /// Samples the primary, then checks every replica against that sample.
    async fn round(&mut self, state: &AppState) {
        let sampled_at = Instant::now();
        // The text form (`16/B374D848`) converts without depending on numeric types.
        match self
            .primary
            .query_one("SELECT pg_current_wal_lsn()::text")
            .await
        {
            Ok(row) => {
                if let Some(lsn) = parse_lsn(row.get(0)) {
                    self.samples.push_back((sampled_at, lsn));
                }
            }
            Err(error) => {
                tracing::debug!(%error, "cannot sample the primary's WAL position")
            }
        }
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| at.elapsed() > self.horizon)
        {
            self.samples.pop_front();
        }
        let findings =
            futures_util::future::join_all(self.replicas.iter_mut().map(check_replica)).await;
        for (replica, finding) in state.replicas.members().iter().zip(findings) {
            self.apply(state, replica, finding, sampled_at);
        }
    }

    fn apply(&self, state: &AppState, replica: &Replica, finding: Finding, sampled_at: Instant) {
        let max_lag = state.replicas.max_lag;
        let (healthy, lag, consistent_as_of, reason) = match finding {
            Finding::Unreachable(error) => (false, None, None, error),
            Finding::NotAStandby => (
                false,
                None,
                None,
                "not a standby (pg_is_in_recovery() is false)".to_owned(),
            ),
            Finding::Replaying {
                replayed,
                timestamp_lag,
            } => {
                let fresh = self.samples.back().is_some_and(|(at, _)| *at == sampled_at);
                let (lag, consistent_as_of) = if fresh {
                    match self.samples.iter().rev().find(|(_, lsn)| *lsn <= replayed) {
                        Some((at, _)) => (at.elapsed().as_secs_f64(), Some(*at)),
                        // Behind every sample kept: at least as old as the oldest.
                        None => (
                            self.samples
                                .front()
                                .map_or(f64::INFINITY, |(at, _)| at.elapsed().as_secs_f64()),
                            None,
                        ),
                    }
                } else {
                    (timestamp_lag, None)
                };
                let healthy = lag <= max_lag.as_secs_f64();
                let reason = format!("{lag:.3} s behind the primary");
                (healthy, Some(lag), consistent_as_of, reason)
            }
        };
        let was = {
            let mut status = replica.status.lock().unwrap_or_else(|e| e.into_inner());
            let was = status.healthy;
            status.healthy = Some(healthy);
            if consistent_as_of.is_some() {
                status.consistent_as_of = consistent_as_of;
            }
            was
        };
        state
            .metrics
            .set_replica_health(replica.index, healthy, lag.filter(|l| l.is_finite()));
        match (was, healthy) {
            (Some(true), true) | (Some(false), false) => {}
            (_, true) => tracing::info!(
                replica = replica.index,
                server = %replica.name,
                lag_seconds = lag.unwrap_or_default(),
                "read replica in use"
            ),
            (_, false) => tracing::warn!(
                replica = replica.index,
                server = %replica.name,
                reason = %reason,
                max_lag_ms = max_lag.as_millis() as u64,
                "read replica skipped: reads go to the primary (or other replicas) until it recovers"
            ),
        }
    }
}

async fn check_replica(probe: &mut Probe) -> Finding {
    // The replay timestamp is the primary's commit time of the last replayed
    // transaction: on a caught-up replica of an idle primary it is old, hence
    // the comparison of received and replayed positions.
    let sql = "SELECT pg_is_in_recovery(), \
                      COALESCE(pg_last_wal_replay_lsn()::text, ''), \
                      COALESCE(CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                           ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END, 0)::float8";
    match probe.query_one(sql).await {
        Err(error) => Finding::Unreachable(error),
        Ok(row) if !row.get::<_, bool>(0) => Finding::NotAStandby,
        Ok(row) => match parse_lsn(row.get(1)) {
            Some(replayed) => Finding::Replaying {
                replayed,
                timestamp_lag: row.get::<_, f64>(2).max(0.0),
            },
            None => Finding::Unreachable("no WAL replayed yet".to_owned()),
        },
    }
}

/// A `pg_lsn` in its text form (`16/B374D848`) as a byte position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some((high << 32) | low)
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
    fn lsns_parse_as_byte_positions() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn(""), None);
        assert_eq!(parse_lsn("zz/1"), None);
    }

    #[test]
    fn replicas_are_named_without_their_password() {
        let name = describe("postgres://reader:hunter2@db-2.internal:5433/customer_api");
        assert_eq!(name, "db-2.internal:5433/customer_api");
        assert!(!name.contains("hunter2"));
    }
}
