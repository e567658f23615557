//! How long one argon2id hash and one verification take with the server's
//! own parameters and hashing pool, one at a time: the unit of work of
//! login (W4) and createCustomer (W5). `bench/run.sh` turns it into their
//! throughput ceiling, cores / time.
//!
//! Run alone: `cargo bench --bench argon2`.

use std::time::{Duration, Instant};

use customer_api::auth::PasswordHasher;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
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
    println!(
        "argon2id hash_ms={:.2} verify_ms={:.2} rounds={rounds}",
        hash.as_secs_f64() * 1000.0,
        verify.as_secs_f64() * 1000.0
    );
}
