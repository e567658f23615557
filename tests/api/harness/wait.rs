//! Waiting for states reached in the background, by polling what proves
//! them rather than by sleeping for a guessed while.

use std::time::Duration;

use super::app::TestApp;
use super::db::sql_column;

/// Polls `probe` every 10 ms until it answers `Some`, failing the test with
/// `what` if that takes longer than `limit`: for states reached in the
/// background, with a deadline generous enough for a loaded machine.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Long enough for argon2 on a starved machine: these waits hold requests
/// that hash a password before they reach their lock.
const LOCK_PATIENCE: Duration = Duration::from_secs(120);

impl TestApp {
    /// Waits until `count` statements on this app's database wait for a
    /// lock: the requests that sent them are provably in flight.
    pub async fn until_statements_wait_on_locks(&self, count: usize) {
        self.until_statements_wait_on_locks_matching("", count)
            .await
    }

    /// Like `until_statements_wait_on_locks`, counting only the statements
    /// whose text contains `statement`.
    pub async fn until_statements_wait_on_locks_matching(&self, statement: &str, count: usize) {
        let observer = self.db.client().await;
        eventually(
            &format!("{count} statement(s) containing {statement:?} waiting on locks"),
            LOCK_PATIENCE,
            || async {
                let waiting = sql_column(
                    &observer,
                    "SELECT query FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await;
                let matching = waiting.iter().filter(|q| q.contains(statement)).count();
                (matching >= count).then_some(())
            },
        )
        .await
    }
}
