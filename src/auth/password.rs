//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on
//! a dedicated pool of one thread per core at lowered OS priority: a flood of
//! logins uses the CPU left over, queues there, and cannot starve the async
//! threads that serve everything else. The queue is bounded (beyond it,
//! `SERVICE_UNAVAILABLE` with a retry hint), and a job whose caller has gone
//! (the client hung up) is skipped rather than hashed for nobody.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use crate::error::{AppError, AppResult};

/// Niceness of the hashing threads (0 is normal, 19 the lowest priority).
const HASHING_NICENESS: libc::c_int = 10;

/// Hashing jobs queued or running per hashing thread, at most. An argon2id
/// run takes tens of milliseconds, so a full queue is a wait of a few seconds.
const QUEUED_PER_THREAD: usize = 32;

#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<rayon::ThreadPool>,
    queue: Arc<tokio::sync::Semaphore>,
    /// argon2 runs actually computed, exported as a metric.
    computed: prometheus_client::metrics::counter::Counter,
    /// A hash of a random password, verified against when a username is
    /// unknown so that such logins take as long as wrong passwords.
    dummy_hash: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(
        threads: usize,
        computed: prometheus_client::metrics::counter::Counter,
    ) -> AppResult<Self> {
        Self::with_queue(threads, threads.max(1) * QUEUED_PER_THREAD, computed)
    }

    pub fn with_queue(
        threads: usize,
        max_queued: usize,
        computed: prometheus_client::metrics::counter::Counter,
    ) -> AppResult<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("argon2-{i}"))
            .start_handler(|_| lower_thread_priority())
            .build()
            .map_err(AppError::internal)?;
        Ok(Self {
            pool: Arc::new(pool),
            queue: Arc::new(tokio::sync::Semaphore::new(max_queued.max(1))),
            computed,
            dummy_hash: Arc::default(),
        })
    }

    /// OWASP's recommended argon2id parameters (19 MiB, 2 passes), the crate defaults.
    fn argon2() -> Argon2<'static> {
        Argon2::default()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let slot = self
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::Overloaded {
                retry_after_seconds: 1,
            })?;
        let (done, result) = tokio::sync::oneshot::channel();
        let computed = self.computed.clone();
        self.pool.spawn(move || {
            let _slot = slot;
            // The caller's future was dropped (its client hung up).
            if done.is_closed() {
                return;
            }
            computed.inc();
            let _ = done.send(work());
        });
        result.await.map_err(AppError::internal)
    }

    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| AppError::internal(e.to_string()))
        })
        .instrument(crate::telemetry::traces::argon2_span("hash"))
        .await?
    }

    /// Whether `password` matches `hash`; a malformed hash counts as a mismatch.
    pub async fn verify(&self, password: &str, hash: &str) -> AppResult<bool> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Self::argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .instrument(crate::telemetry::traces::argon2_span("verify"))
        .await
    }

    /// Spends the time of one verification without any account behind it.
    pub async fn verify_dummy(&self, password: &str) -> AppResult<()> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let random: [u8; 16] = rand::random();
                self.hash(&format!("{random:x?}")).await
            })
            .await?
            .clone();
        self.verify(password, &hash).await.map(drop)
    }
}

fn lower_thread_priority() {
    // On Linux, PRIO_PROCESS with a thread id sets that one thread's niceness.
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICENESS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let hasher = PasswordHasher::new(2, Default::default()).unwrap();
        let first = hasher.hash("correct horse").await.unwrap();
        let second = hasher.hash("correct horse").await.unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "each hash has its own salt");
        assert!(hasher.verify("correct horse", &first).await.unwrap());
        assert!(!hasher.verify("wrong horse", &first).await.unwrap());
        assert!(!hasher.verify("correct horse", "not a hash").await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_abandoned_jobs_are_skipped() {
        let computed = prometheus_client::metrics::counter::Counter::default();
        let hasher = PasswordHasher::with_queue(1, 3, computed.clone()).unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert_eq!(computed.get(), 1);
        // A job hands its slot back just after its answer: wait for it.
        while hasher.queue.available_permits() < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // The one hashing thread is held, so that no queued job can finish
        // (and hand its slot back) while the queue is being filled: the
        // test once spun forever when a job finished first under load.
        let (release, held) = std::sync::mpsc::channel::<()>();
        hasher.pool.spawn(move || {
            let _ = held.recv();
        });
        let jobs: Vec<_> = (0..3)
            .map(|_| {
                let (hasher, hash) = (hasher.clone(), hash.clone());
                tokio::spawn(async move { hasher.verify("correct horse", &hash).await })
            })
            .collect();
        while hasher.queue.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify("correct horse", &hash).await;
        assert!(matches!(refused, Err(AppError::Overloaded { .. })));
        // Callers that give up: the jobs not yet started are not computed.
        for job in jobs {
            job.abort();
            let joined = job.await;
            assert!(matches!(&joined, Err(e) if e.is_cancelled()), "{joined:?}");
        }
        release.send(()).unwrap();
        while hasher.queue.available_permits() < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(computed.get() < 4, "computed {}", computed.get());
    }
}
