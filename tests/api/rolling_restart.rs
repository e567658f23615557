//! A rolling restart under load loses nothing: three server processes on
//! one database (a Deployment of 3 replicas) behind a client-side load
//! balancer, replaced one at a time by SIGTERM and a new process while
//! clients create, read, log in and follow events. Every request that was
//! sent is answered, every acknowledged create is stored, and a subscriber
//! on a draining server is told to go (1001) and carries on elsewhere.

mod balancer;
mod load;
mod subscriber;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{TestDb, eventually, sql_count};
use crate::process::{Process, command};
use balancer::Balancer;
use load::Load;
use subscriber::Subscriber;

const REPLICAS: usize = 3;
/// Acknowledged creates the load reaches before the roll begins, so that
/// reads of earlier customers are under way.
const WARMED_UP: usize = 5;

struct Server {
    base: String,
    process: Process,
}

/// Starts a server process with the settings every replica shares (the
/// token key above all, so that a token works on every replica).
fn spawn(database_url: &str, token_secret: &str) -> Process {
    let mut command = command(database_url, &["serve"]);
    command
        .env("TOKEN_SECRET", token_secret)
        // One client address logs in all through the test.
        .env("LOGIN_MAX_ATTEMPTS_PER_ADDRESS", "1000000")
        .env("DB_POOL_SIZE", "8")
        .env("WEBHOOK_DELIVERY", "false");
    Process::spawn(command)
}

/// Waits until `process` listens and answers `/readyz` with 200.
async fn ready(mut process: Process, http: &reqwest::Client) -> Server {
    let base = process.base_url().await;
    eventually(
        &format!("{base} answers /readyz"),
        Duration::from_secs(30),
        || async {
            let response = http.get(format!("{base}/readyz")).send().await.ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;
    Server { base, process }
}

fn sigterm(process: &Process) {
    let pid = libc::pid_t::try_from(process.id()).unwrap();
    // SAFETY: kill only sends a signal, to a child this test started and
    // has not yet reaped (so the pid is still its own).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_nothing() {
    let started = Instant::now();
    let db = TestDb::create().await;
    let url = db.url();
    let secret = format!("rolling-restart-{}", uuid::Uuid::new_v4().simple());
    let http = reqwest::Client::new();

    let processes: Vec<Process> = (0..REPLICAS).map(|_| spawn(&url, &secret)).collect();
    let mut fleet = Vec::new();
    for process in processes {
        fleet.push(ready(process, &http).await);
    }
    let balancer = Arc::new(Balancer::new(
        fleet.iter().map(|server| server.base.clone()).collect(),
    ));

    let credentials =
        json!({ "u": crate::harness::ADMIN_USERNAME, "p": crate::harness::ADMIN_PASSWORD });
    let (_, data) = balancer
        .graphql("admin login", None, load::LOGIN, credentials, None)
        .await
        .expect("the admin logs in");
    let admin = data["login"]["token"].as_str().unwrap().to_owned();
    // The agent the load logs in as: the guest agent of a customer of its own.
    let input = json!({ "input": { "username": "roll-agent", "password": load::PASSWORD } });
    let (_, data) = balancer
        .graphql(
            "create the agent",
            Some(&admin),
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { guestAgent { id } } } }",
            input,
            None,
        )
        .await
        .expect("the agent's customer is created");
    let agent_id = data["createCustomer"]["customer"]["guestAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut subscriber = Subscriber::spawn(&admin);
    subscriber.follow(&fleet[0].base);
    let load = Load::start(&balancer, &admin, "roll-agent", &agent_id);
    eventually("the load is under way", Duration::from_secs(20), || async {
        (load.created() >= WARMED_UP).then_some(())
    })
    .await;
    subscriber.first_event(&fleet[0].base).await;
    println!(
        "three replicas up and under load after {:?}",
        started.elapsed()
    );

    // Oldest first; the subscriber is always on the server about to go.
    for step in 0..REPLICAS {
        let old = fleet.remove(0);
        let roll = Instant::now();
        balancer.retire(&old.base).await;
        sigterm(&old.process);
        let (code, reason, events) = subscriber.closed(&old.base).await;
        assert_eq!(
            code,
            Some(1001),
            "the socket on draining {} closed as going away: {reason}",
            old.base
        );
        // Like a client told 1001, it reconnects at once, to another server.
        subscriber.follow(&fleet[0].base);
        let (status, log) = old.process.finish().await;
        assert!(
            status.success(),
            "{} exited with {status}:\n{log}",
            old.base
        );
        assert!(!log.contains("cut off"), "{}:\n{log}", old.base);
        assert!(!log.contains("ERROR"), "{}:\n{log}", old.base);
        balancer.remove(&old.base);
        let drained = roll.elapsed();

        let replacement = ready(spawn(&url, &secret), &http).await;
        balancer.add(&replacement.base);
        subscriber.first_event(&fleet[0].base).await;
        println!(
            "step {step}: {} drained in {drained:?} ({events} events on its socket), {} in rotation after {:?}",
            old.base,
            replacement.base,
            roll.elapsed()
        );
        fleet.push(replacement);
    }
    // Some load on the replacements alone before it stops.
    let created = load.created();
    eventually(
        "creates go on after the roll",
        Duration::from_secs(20),
        || async { (load.created() >= created + WARMED_UP).then_some(()) },
    )
    .await;
    let finished = load.finish().await;
    let tally = std::mem::take(&mut *balancer.tally());
    println!(
        "load: {:?}; {} answered ({} by a server leaving the rotation), {} connection attempts refused and sent elsewhere",
        finished.done, tally.answered, tally.answered_while_draining, tally.refused_before_sending
    );
    assert!(
        tally.failures.is_empty(),
        "{} request(s) sent and not answered cleanly:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    for kind in [
        "createCustomer",
        "customers",
        "customer(id)",
        "login",
        "me elsewhere",
    ] {
        assert!(
            finished.done.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} went through: {:?}",
            finished.done
        );
    }

    // Exactly the acknowledged creates are stored, each with its guest agent.
    let acknowledged: BTreeSet<(String, String)> = finished.created.iter().cloned().collect();
    assert_eq!(acknowledged.len(), finished.created.len(), "no duplicates");
    let client = db.client().await;
    let stored: BTreeSet<(String, String)> = client
        .query(
            "SELECT c.username, c.id::text FROM customers c \
             WHERE c.username LIKE $1 AND c.tm_delete IS NULL",
            &[&format!("{}%", load::PREFIX)],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(stored, acknowledged);
    let without_guest = sql_count(
        &client,
        "SELECT count(*) FROM customers c WHERE c.username LIKE $1 AND NOT EXISTS \
         (SELECT 1 FROM agents a WHERE a.customer_id = c.id AND a.is_guest AND a.tm_delete IS NULL)",
        &[&format!("{}%", load::PREFIX)],
    )
    .await;
    assert_eq!(without_guest, 0, "no create was left half done");

    for server in fleet {
        sigterm(&server.process);
        let (status, log) = server.process.finish().await;
        assert!(
            status.success(),
            "{} exited with {status}:\n{log}",
            server.base
        );
    }
    println!("rolling restart test took {:?}", started.elapsed());
}
