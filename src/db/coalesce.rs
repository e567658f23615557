//! Reads of one row by key, from many requests, answered by one statement.
//!
//! Most of what a point read costs PostgreSQL and this process is per
//! statement (a round trip, bind and execute, waking a backend), not per
//! row: under load, `customer(id)` spent as much CPU in PostgreSQL as here.
//! So the reads that arrive while earlier ones are in flight wait for the
//! next statement and share it (`= ANY($1)`); one that arrives when the
//! coalescer is idle goes at once, so an idle server adds no wait.
//!
//! What each request sees does not change: a statement only carries the
//! reads that arrived before it started (each reads a snapshot taken after
//! it arrived, so it sees every write acknowledged before it), and it goes
//! where the most demanding of them must (`Freshness`: a request that wrote
//! is read on the primary, with the others of its statement).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::replicas::Freshness;
use crate::error::{AppError, AppResult, error_chain};

/// Statements of one coalescer in flight at once: enough to keep
/// PostgreSQL's cores busy while the next statement's reads gather.
const RUNNING: usize = 2;

/// Keys per statement, at most: bounds a statement's size and its bind.
const MAX_KEYS: usize = 256;

/// Keys per statement, at least (the first repeated, which costs nothing:
/// an index scan skips repeated keys). PostgreSQL plans a prepared
/// statement for 10 keys when it cannot see its array; a statement of fewer
/// looks cheaper planned anew each time, and PostgreSQL then plans every
/// execution, which was 40% of its CPU per read here (measured). At 10 the
/// two plans cost alike, and it keeps the prepared plan.
const PLANNED_KEYS: usize = 10;

/// One kind of point read: where its coalescer lives, and the statement
/// that reads many keys at once.
pub trait PointRead: Sized + Send + Sync + 'static {
    /// What the statement runs with (the application state).
    type Source: Clone + Send + Sync + 'static;
    type Key: Copy + Eq + Hash + Send + 'static;
    type Row: Clone + Send + 'static;

    fn coalescer(source: &Self::Source) -> &Coalescer<Self>;

    /// The rows of those `keys` that exist, each with its key, read at
    /// least as fresh as `freshness`.
    fn read_many(
        source: &Self::Source,
        freshness: Freshness,
        keys: Vec<Self::Key>,
    ) -> impl Future<Output = AppResult<Vec<(Self::Key, Self::Row)>>> + Send;
}

pub struct Coalescer<R: PointRead> {
    waiting: Mutex<Waiting<R>>,
}

struct Waiting<R: PointRead> {
    reads: Vec<Waiter<R>>,
    /// Statements in flight (tasks draining `reads`).
    running: usize,
}

struct Waiter<R: PointRead> {
    key: R::Key,
    freshness: Freshness,
    /// The trace of the request that asked: a statement's span joins the
    /// trace of its first read (the other reads of it have none of their own).
    trace: Option<opentelemetry::Context>,
    answer: oneshot::Sender<Result<Option<R::Row>, Arc<AppError>>>,
}

impl<R: PointRead> Default for Coalescer<R> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Waiting {
                reads: Vec::new(),
                running: 0,
            }),
        }
    }
}

impl<R: PointRead> Coalescer<R> {
    /// The row of `key`, if it exists, read at least as fresh as `freshness`.
    pub async fn read(
        source: &R::Source,
        freshness: Freshness,
        key: R::Key,
    ) -> AppResult<Option<R::Row>> {
        let (answer, answered) = oneshot::channel();
        let waiter = Waiter {
            key,
            freshness,
            trace: crate::telemetry::traces::current_trace(),
            answer,
        };
        if R::coalescer(source).enqueue(waiter) {
            tokio::spawn(drain::<R>(source.clone()));
        }
        match answered.await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(error)) => Err(shared_error(error)),
            Err(_) => Err(AppError::internal(
                "a coalesced read ended without an answer",
            )),
        }
    }

    /// Queues a read; `true` if the caller must start a task to drain the queue.
    fn enqueue(&self, waiter: Waiter<R>) -> bool {
        let mut waiting = self.lock();
        waiting.reads.push(waiter);
        if waiting.running < RUNNING {
            waiting.running += 1;
            true
        } else {
            false
        }
    }

    /// The next statement's reads, oldest first; `None` (and one task fewer
    /// running) once nothing waits.
    fn next_batch(&self) -> Option<Vec<Waiter<R>>> {
        let mut waiting = self.lock();
        if waiting.reads.is_empty() {
            waiting.running -= 1;
            return None;
        }
        let count = waiting.reads.len().min(MAX_KEYS);
        Some(waiting.reads.drain(..count).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<R>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs statements until no read waits.
async fn drain<R: PointRead>(source: R::Source) {
    let mut running = Running::<R> {
        source,
        stopped: false,
    };
    while let Some(batch) = R::coalescer(&running.source).next_batch() {
        answer::<R>(&running.source, batch).await;
    }
    running.stopped = true;
}

async fn answer<R: PointRead>(source: &R::Source, batch: Vec<Waiter<R>>) {
    let freshness = batch
        .iter()
        .map(|w| w.freshness)
        .max()
        .unwrap_or(Freshness::Any);
    let mut keys: Vec<R::Key> = Vec::with_capacity(batch.len().max(PLANNED_KEYS));
    for waiter in &batch {
        if !keys.contains(&waiter.key) {
            keys.push(waiter.key);
        }
    }
    if let Some(&first) = keys.first() {
        keys.resize(keys.len().max(PLANNED_KEYS), first);
    }
    let trace = batch.first().and_then(|w| w.trace.clone());
    let read = R::read_many(source, freshness, keys);
    match crate::telemetry::traces::in_trace(trace, read).await {
        Ok(rows) => {
            let rows: HashMap<R::Key, R::Row> = rows.into_iter().collect();
            for waiter in batch {
                let row = rows.get(&waiter.key).cloned();
                // The request may have gone (its client, its deadline).
                let _ = waiter.answer.send(Ok(row));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for waiter in batch {
                let _ = waiter.answer.send(Err(error.clone()));
            }
        }
    }
}

/// Keeps the count of running tasks true if a statement's task ends early
/// (a panic): the reads still queued get a task of their own.
struct Running<R: PointRead> {
    source: R::Source,
    stopped: bool,
}

impl<R: PointRead> Drop for Running<R> {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let coalescer = R::coalescer(&self.source);
        // This task's place passes to a new one if reads still wait.
        let restart = {
            let mut waiting = coalescer.lock();
            if waiting.reads.is_empty() {
                waiting.running -= 1;
            }
            !waiting.reads.is_empty()
        };
        if restart {
            tokio::spawn(drain::<R>(self.source.clone()));
        }
    }
}

/// A failed statement's error, for each read it carried: the same kind
/// (so the same answer to the client), the same cause in the logs.
fn shared_error(error: Arc<AppError>) -> AppError {
    let cause = Box::new(SharedCause(error.clone()));
    match *error {
        AppError::Transient(_) | AppError::Unavailable(_) => AppError::Unavailable(cause),
        _ => AppError::Internal(cause),
    }
}

#[derive(Debug)]
struct SharedCause(Arc<AppError>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&error_chain(&*self.0))
    }
}

impl std::error::Error for SharedCause {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    use tokio::sync::Semaphore;

    /// Rows exist for even keys. Each statement waits for a permit of
    /// `gate`, so the test decides when statements end.
    struct Table {
        coalescer: Coalescer<Reads>,
        statements: Mutex<Vec<(Freshness, Vec<u32>)>>,
        gate: Semaphore,
        failing: AtomicBool,
    }

    struct Reads;

    impl PointRead for Reads {
        type Source = Arc<Table>;
        type Key = u32;
        type Row = String;

        fn coalescer(table: &Arc<Table>) -> &Coalescer<Self> {
            &table.coalescer
        }

        async fn read_many(
            table: &Arc<Table>,
            freshness: Freshness,
            keys: Vec<u32>,
        ) -> AppResult<Vec<(u32, String)>> {
            table.statements().push((freshness, keys.clone()));
            table.gate.acquire().await.expect("open gate").forget();
            if table.failing.load(Ordering::Relaxed) {
                return Err(AppError::Unavailable("the database is down".into()));
            }
            Ok(keys
                .into_iter()
                .filter(|key| key % 2 == 0)
                .map(|key| (key, format!("row {key}")))
                .collect())
        }
    }

    impl Table {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                coalescer: Coalescer::default(),
                statements: Mutex::default(),
                gate: Semaphore::new(0),
                failing: AtomicBool::new(false),
            })
        }

        fn statements(&self) -> std::sync::MutexGuard<'_, Vec<(Freshness, Vec<u32>)>> {
            self.statements.lock().unwrap()
        }

        fn read(
            self: &Arc<Self>,
            freshness: Freshness,
            key: u32,
        ) -> tokio::task::JoinHandle<AppResult<Option<String>>> {
            let table = self.clone();
            tokio::spawn(async move { Coalescer::<Reads>::read(&table, freshness, key).await })
        }

        /// Lets the other tasks run until `done`; fails rather than hangs.
        async fn until(&self, done: impl Fn(&Self) -> bool) {
            for _ in 0..100_000 {
                if done(self) {
                    return;
                }
                tokio::task::yield_now().await;
            }
            panic!("the coalescer never got there");
        }
    }

    fn padded(keys: &[u32]) -> Vec<u32> {
        let mut keys = keys.to_vec();
        keys.resize(PLANNED_KEYS, keys[0]);
        keys
    }

    #[tokio::test]
    async fn reads_arriving_behind_running_statements_share_the_next_one() {
        let table = Table::new();
        // Two statements in flight, one read each (the second read arrives
        // once the first is under way).
        let one = table.read(Freshness::Any, 1);
        table.until(|t| t.statements().len() == 1).await;
        let two = table.read(Freshness::Any, 2);
        table.until(|t| t.statements().len() == 2).await;
        let first = [one, two];

        let wrote_at = Instant::now();
        let queued = [
            table.read(Freshness::Any, 4),
            table.read(Freshness::After(wrote_at), 6),
            table.read(Freshness::Any, 7),
            table.read(Freshness::Any, 4),
        ];
        table.until(|t| t.coalescer.lock().reads.len() == 4).await;
        // Both statements are in flight: the queued reads wait for them.
        assert_eq!(table.statements().len(), 2);
        table.gate.add_permits(3);

        let mut answers = Vec::new();
        for read in first.into_iter().chain(queued) {
            answers.push(read.await.unwrap().unwrap());
        }
        let row = |key: u32| Some(format!("row {key}"));
        assert_eq!(answers, [None, row(2), row(4), row(6), None, row(4)]);

        let mut statements = table.statements().clone();
        statements[..2].sort_by_key(|(_, keys)| keys[0]);
        assert_eq!(
            statements,
            [
                (Freshness::Any, padded(&[1])),
                (Freshness::Any, padded(&[2])),
                // As fresh as its most demanding read; each key once.
                (Freshness::After(wrote_at), padded(&[4, 6, 7])),
            ]
        );
        table.until(|t| t.coalescer.lock().running == 0).await;
    }

    #[tokio::test]
    async fn a_failed_statement_fails_each_of_its_reads_alike_and_the_next_one_runs() {
        let table = Table::new();
        table.failing.store(true, Ordering::Relaxed);
        table.gate.add_permits(100);
        let reads = [
            table.read(Freshness::Primary, 2),
            table.read(Freshness::Any, 4),
        ];
        for read in reads {
            let error = read.await.unwrap().unwrap_err();
            assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
            assert!(error_chain(&error).contains("the database is down"));
        }

        table.failing.store(false, Ordering::Relaxed);
        let read = table.read(Freshness::Any, 8).await.unwrap().unwrap();
        assert_eq!(read.as_deref(), Some("row 8"));
        table.until(|t| t.coalescer.lock().running == 0).await;
    }
}
