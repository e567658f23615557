//! How long one argon2id hash and one verification take with the server's
//! own parameters and hashing pool, one at a time: the unit of work of
//! login (W4) and createCustomer (W5); then how many the pool completes a
//! second with a thread per core, all busy. Cores sharing caches and memory
//! bandwidth (or a host's physical core) hash slower together than alone,
//! so the second figure, not cores / time, is the ceiling of W4 and W5.
//!
//! Run alone: `cargo bench --bench argon2`.

use std::time::{Duration, Instant};

use customer_api::auth::PasswordHasher;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// How many `job`s complete a second, run in batches of half of what the
/// hashing pool queues at once (32 a thread), six batches.
async fn per_second<F, Fut>(cores: usize, job: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (batch, batches) = (16 * cores, 6);
    let started = Instant::now();
    for _ in 0..batches {
        futures_util::future::join_all((0..batch).map(|_| job())).await;
    }
    (batch * batches) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let hasher = PasswordHasher::new(1, Default::default()).expect("a hashing pool");
    let rounds = 25;
    let (hash, verify) = runtime.block_on(async {
        let stored = hasher.hash("bench-password").await.expect("hash");
        let mut hashes = Vec::new();
        let mut verifies = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            hasher.hash("bench-password").await.expect("hash");
            hashes.push(started.elapsed());
            let started = Instant::now();
            assert!(
                hasher
                    .verify("bench-password", &stored)
                    .await
                    .expect("verify")
            );
            verifies.push(started.elapsed());
        }
        (median(hashes), median(verifies))
    });
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = PasswordHasher::new(cores, Default::default()).expect("a hashing pool");
    let (hashes_per_s, verifies_per_s) = runtime.block_on(async {
        let stored = pool.hash("bench-password").await.expect("hash");
        let hashes = per_second(cores, || async {
            pool.hash("bench-password").await.expect("hash");
        });
        let hashes_per_s = hashes.await;
        let verifies = per_second(cores, || async {
            assert!(
                pool.verify("bench-password", &stored)
                    .await
                    .expect("verify")
            );
        });
        (hashes_per_s, verifies.await)
    });
    println!(
        "argon2id hash_ms={:.2} verify_ms={:.2} rounds={rounds} cores={cores} \
         pool_hashes_per_s={hashes_per_s:.1} pool_verifies_per_s={verifies_per_s:.1}",
        hash.as_secs_f64() * 1000.0,
        verify.as_secs_f64() * 1000.0
    );
}
