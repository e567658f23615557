//! The health check: each replica's reachability and lag, measured against
//! sampled primary WAL positions (see the parent module).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{CHECK_INTERVAL, CHECK_TIMEOUT, Replica};
use crate::app::{AppState, WeakAppState};
use crate::error::error_chain;

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
}
