//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on
//! a dedicated pool of one thread per core at lowered OS priority: a flood of
//! logins uses the CPU left over, queues there, and cannot starve the async
//! threads that serve everything else.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::OnceCell;

use crate::error::{AppError, AppResult};

/// Niceness of the hashing threads (0 is normal, 19 the lowest priority).
const HASHING_NICENESS: libc::c_int = 10;

#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<rayon::ThreadPool>,
    /// A hash of a random password, verified against when a username is
    /// unknown so that such logins take as long as wrong passwords.
    dummy_hash: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(threads: usize) -> AppResult<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("argon2-{i}"))
            .start_handler(|_| lower_thread_priority())
            .build()
            .map_err(AppError::internal)?;
        Ok(Self {
            pool: Arc::new(pool),
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
        let (done, result) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
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
        let hasher = PasswordHasher::new(2).unwrap();
        let first = hasher.hash("correct horse").await.unwrap();
        let second = hasher.hash("correct horse").await.unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "each hash has its own salt");
        assert!(hasher.verify("correct horse", &first).await.unwrap());
        assert!(!hasher.verify("wrong horse", &first).await.unwrap());
        assert!(!hasher.verify("correct horse", "not a hash").await.unwrap());
    }
}
