//! A property test of the server's whole attack surface, over real HTTP to
//! the spawned test server.
//!
//! - Documents (`fuzz/documents/`): operations on every root field of
//!   `schema.graphql`, mutations included, with valid and hostile arguments
//!   and odd Unicode, decorated with named and inline fragments, directives,
//!   aliases, comments, block strings, several operations and variables;
//!   and shapes aimed at the limits (deep selections and literals up to
//!   120,000 levels, fragment cycles and exponential fan-out, documents at
//!   MAX_TOKENS and at MAX_BODY_BYTES, aliases and root fields past their
//!   caps, introspection depth, brackets hidden in strings), and garbage.
//! - Principals and transports (`fuzz/requests/`): no credential, a
//!   malformed header, forged tokens, a super admin, a customer admin, a
//!   plain agent, an access key, a revoked token and key; POSTed JSON
//!   (single, batches past MAX_BATCH_SIZE, broken envelopes, wrong media
//!   types, `application/graphql-response+json`), GET (mutations must not
//!   run), persisted queries, and the REST endpoints (the original ones,
//!   a customer's fields, LINE credentials, permission ids and password,
//!   the caller's own customer, access keys) with hostile bodies, query
//!   strings and path ids.
//! - Invariants (`fuzz/checks.rs`, `fuzz/world/`), on every request: an
//!   answer within 10 s, and `/healthz` after every case, on a new
//!   connection and on the case's keep-alive connection (a connection the
//!   server closes must say `Connection: close`; some requests, and all
//!   near the body limit, go over a raw connection of their own to check
//!   that exactly); no 5xx but a 503 with its code; every error with a
//!   contract code, never INTERNAL_SERVER_ERROR; at most 21 errors; no
//!   `data` entry in responses refused before execution; statuses as
//!   GraphQL over HTTP and the REST contract say (413 exactly past
//!   MAX_BODY_BYTES, 405 for mutations over GET, 415, 400 with
//!   `application/graphql-response+json`); from the newer REST endpoints,
//!   only the statuses each documents, only to the credentials and
//!   permissions it names, about the record its path names and no other
//!   customer's; the documented limits refuse
//!   exactly what they should where the fuzzer can tell; a persisted
//!   document that executed is found by its hash; and no response body or
//!   log line carries a password or credential the fuzzer sent, nor an
//!   access key after the reply that issued it.
//!
//! The principals live in `fuzz/world/`; a case that may have broken one
//! (logout, a password change, a deletion) is followed by repairs, so a run
//! is reproducible from its seed. At least 30% of the cases must reach the
//! resolvers; the breakdown is printed. `FUZZ_CASES` sets the number of
//! cases (default 900), `FUZZ_SEED` replays a run, `FUZZ_TRACE=1` prints
//! every case.

mod checks;
mod documents;
mod requests;
pub(crate) mod values;
mod world;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use proptest::test_runner::{Config as RunnerConfig, RngSeed, TestCaseError, TestRunner};

use self::checks::Class;
use self::values::clip;
use self::world::World;
use crate::harness::captured_logs;

/// Below this many cases the share of executed ones is too noisy to check.
const MIN_CASES_FOR_REACH: u32 = 200;
const MIN_EXECUTED_SHARE: f64 = 0.30;
/// How often the captured logs are searched for secrets (each search
/// copies the whole log buffer).
const LOG_CHECK_EVERY: u64 = 20;

#[derive(Default)]
struct Stats {
    cases: u32,
    classes: BTreeMap<Class, u32>,
    by_transport: BTreeMap<&'static str, (u32, u32)>,
    by_family: BTreeMap<&'static str, (u32, u32)>,
    limits: BTreeMap<String, u32>,
    null_data: u32,
}

impl Stats {
    fn record(&mut self, transport: &'static str, family: &'static str, outcome: &world::Outcome) {
        self.cases += 1;
        *self.classes.entry(outcome.class).or_default() += 1;
        let executed = u32::from(outcome.class == Class::Executed);
        for (map, key) in [
            (&mut self.by_transport, transport),
            (&mut self.by_family, family),
        ] {
            let entry = map.entry(key).or_default();
            entry.0 += 1;
            entry.1 += executed;
        }
        self.null_data += outcome.null_data;
        let mut limits = outcome.limits.clone();
        limits.sort();
        limits.dedup();
        for limit in limits {
            *self.limits.entry(limit).or_default() += 1;
        }
    }

    fn share(&self, class: Class) -> f64 {
        f64::from(self.classes.get(&class).copied().unwrap_or(0)) / f64::from(self.cases.max(1))
    }

    fn report(&self) -> String {
        let count = |class| self.classes.get(&class).copied().unwrap_or(0);
        let table = |map: &BTreeMap<&str, (u32, u32)>| {
            map.iter()
                .map(|(k, (n, e))| format!("{k} {e}/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "executed {} ({:.0}%), refused by limits {}, invalid {}, refused by transport {}\n  \
             executed/cases by transport: {}\n  executed/cases by family: {}\n  limits hit: {:?}\n  \
             `{{\"data\": null}}` without errors (every root field skipped; the spec says `{{}}`): {}",
            count(Class::Executed),
            100.0 * self.share(Class::Executed),
            count(Class::Limit),
            count(Class::Invalid),
            count(Class::Transport),
            table(&self.by_transport),
            table(&self.by_family),
            self.limits,
            self.null_data,
        )
    }
}

/// Searches the log lines written since the last search for secrets.
struct LogWatch {
    offset: usize,
}

impl LogWatch {
    fn check(&mut self, secrets: &[String]) -> Result<(), String> {
        let logs = captured_logs();
        let new = logs.get(self.offset..).unwrap_or(&logs);
        for line in new.lines() {
            if let Some(secret) = secrets.iter().find(|s| line.contains(s.as_str())) {
                return Err(format!(
                    "a log line carries a secret the fuzzer sent ({}…): {}",
                    &secret[..secret.len().min(12)],
                    clip(line, 1500)
                ));
            }
        }
        self.offset = logs.len();
        Ok(())
    }
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn arbitrary_requests_never_panic_or_fail_internally() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let world = RefCell::new(runtime.block_on(World::new()));
    let cases: u32 = env("FUZZ_CASES").unwrap_or(900);
    let seed: u64 = env("FUZZ_SEED").unwrap_or_else(|| {
        let n = uuid::Uuid::new_v4().as_u128();
        (n as u64) ^ ((n >> 64) as u64)
    });
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    println!(
        "fuzz: seed {seed}, {cases} cases (FUZZ_SEED={seed} FUZZ_CASES={cases} replays them; FUZZ_TRACE=1 prints each)"
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 256,
        max_shrink_time: 60_000,
        ..RunnerConfig::default()
    });
    let stats = RefCell::new(Stats::default());
    let logs = RefCell::new(LogWatch { offset: 0 });
    let counter = Cell::new(0u64);
    // The figures count the cases up to the first failure, not the shrinking.
    let failed = Cell::new(false);
    let result = runner.run(&requests::case(), |case| {
        let n = counter.get();
        counter.set(n + 1);
        if trace {
            println!("fuzz case {n}: {case:?}");
        }
        let mut world = world.borrow_mut();
        let (outcome, health) = runtime.block_on(async {
            let outcome = world.run(&case, n).await;
            let health = world.healthz().await;
            if case.may_destroy() {
                world.heal().await;
            }
            (outcome, health)
        });
        let fail = |message: String| {
            TestCaseError::fail(format!(
                "case {n} ({} as {:?}, {}): {message}",
                case.transport(),
                case.who.role,
                case.family()
            ))
        };
        let checked = (|| {
            health.map_err(fail)?;
            let outcome = outcome.map_err(fail)?;
            if n % LOG_CHECK_EVERY == LOG_CHECK_EVERY - 1 {
                logs.borrow_mut().check(&world.secrets).map_err(|e| {
                    fail(format!(
                        "{e}\n  (the line's request id names the case: fuzz-<case>-<step>)"
                    ))
                })?;
            }
            Ok(outcome)
        })();
        match checked {
            Ok(outcome) if !failed.get() => {
                stats
                    .borrow_mut()
                    .record(case.transport(), case.family(), &outcome);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(error) => {
                failed.set(true);
                Err(error)
            }
        }
    });
    let world = world.into_inner();
    let final_logs = logs.borrow_mut().check(&world.secrets);
    let stats = stats.into_inner();
    println!(
        "fuzz: {} cases, {} requests in {:.1?} (seed {seed}); principals rebuilt {} times\n  {}",
        stats.cases,
        world.requests,
        started.elapsed(),
        world.rebuilt,
        stats.report()
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    if let Err(leak) = final_logs {
        panic!("{leak}");
    }
    assert!(
        captured_logs().contains("request_id=fuzz-"),
        "the server's log lines of the fuzzed requests were not captured"
    );
    if stats.cases >= MIN_CASES_FOR_REACH {
        assert!(
            stats.share(Class::Executed) >= MIN_EXECUTED_SHARE,
            "only {:.0}% of the cases reached the resolvers (at least {:.0}% must)",
            100.0 * stats.share(Class::Executed),
            100.0 * MIN_EXECUTED_SHARE
        );
    }
}
