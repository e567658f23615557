//! Faults in the server's surroundings: shutdown with requests in flight,
//! and PostgreSQL going away and coming back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Proxy, TestApp, error_code, eventually};

/// Locks the admin agent's row from another connection: logins of admin then
/// wait inside their session transaction until the lock is released, which
/// proves them in flight for as long as the test wants.
async fn hold_admin_row(app: &TestApp) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client
        .batch_execute("BEGIN; SELECT 1 FROM agents WHERE username = 'admin' FOR UPDATE")
        .await
        .unwrap();
    client
}

fn admin_login(url: String) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({
                "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
                "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD }
            }))
            .send()
            .await
    })
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_refuses_new_ones() {
    // Concurrent attempts count against the per-username limit until they succeed.
    let mut app = TestApp::spawn_with(|c| c.login_max_failures = 100).await;
    let lock = hold_admin_row(&app).await;
    let in_flight: Vec<_> = (0..6).map(|_| admin_login(app.graphql_url())).collect();
    app.until_statements_wait_on_locks(6).await;
    // Shutdown begins while all six are provably in flight; they finish
    // once the lock is released.
    let address = app.address.clone();
    let shutdown = tokio::spawn(async move { app.shutdown().await.unwrap() });
    let host = address.trim_start_matches("http://").to_owned();
    eventually(
        "shutdown closes the listener",
        Duration::from_secs(10),
        || async {
            tokio::net::TcpStream::connect(&host)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    lock.batch_execute("ROLLBACK").await.unwrap();
    for request in in_flight {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request is answered");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["data"]["login"]["token"].is_string(), "{body}");
    }
    shutdown.await.unwrap();
    let after = reqwest::Client::new()
        .get(format!("{address}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "no longer accepting");
}

#[tokio::test]
async fn shutdown_cuts_off_requests_that_outlive_the_drain_timeout() {
    let mut app = TestApp::spawn_with(|c| {
        c.drain_timeout_ms = 50;
        c.login_max_failures = 100;
    })
    .await;
    let lock = hold_admin_row(&app).await;
    let stuck: Vec<_> = (0..8).map(|_| admin_login(app.graphql_url())).collect();
    app.until_statements_wait_on_locks(8).await;
    let started = Instant::now();
    app.shutdown().await.unwrap();
    let took = started.elapsed();
    println!("shutdown with 8 requests held at a lock took {took:?}");
    // The requests never got their lock: the drain deadline ended them,
    // and their connections were closed.
    for request in stuck {
        let outcome = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("the cut-off connection ends the client's wait")
            .unwrap();
        assert!(outcome.is_err(), "cut off, not answered: {outcome:?}");
    }
    drop(lock);
}

/// Counts customers that exist without their guest agent: a half-written create.
async fn half_written(app: &TestApp) -> i64 {
    app.count(
        "SELECT count(*) FROM customers c WHERE NOT EXISTS \
         (SELECT 1 FROM agents a WHERE a.customer_id = c.id AND a.is_guest)",
        &[],
    )
    .await
}

/// What became of one createCustomer call.
struct Outcome {
    username: String,
    body: Value,
    took: Duration,
    answered: Instant,
}

/// The rows a create of `username` left: customers, agents, and guest agents
/// of that customer.
async fn rows_of(db: &tokio_postgres::Client, username: &str) -> (i64, i64, i64) {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM customers WHERE lower(username) = lower($1)), \
                    (SELECT count(*) FROM agents WHERE lower(username) = lower($1)), \
                    (SELECT count(*) FROM agents a JOIN customers c ON c.id = a.customer_id \
                      WHERE a.username = $1 AND c.username = $1 AND a.is_guest \
                        AND a.tm_delete IS NULL AND c.tm_delete IS NULL)",
            &[&username],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Several creates at a time before, during and after an outage. Those in
/// flight when it starts are held at a lock before their INSERT, so they
/// provably have not committed: a refused create must then have left
/// nothing. (A commit cut off after PostgreSQL received it cannot be told
/// apart from one that never arrived; no test can pin that down.)
#[tokio::test]
async fn a_database_outage_fails_fast_loses_nothing_and_heals_by_itself() {
    let proxy = Proxy::start().await;
    let app = TestApp::spawn_through(&proxy, |c| {
        c.db_pool_timeout_ms = 500;
        // The creates held at the lock wait for the test, not for the clock.
        c.db_statement_timeout_ms = 60_000;
    })
    .await;
    let admin = app.admin_token().await;
    let ready = || app.get("/readyz");
    let create = |username: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let asked = Instant::now();
            let body = app
                .create_customer(
                    admin,
                    json!({ "username": username, "password": "password1" }),
                )
                .await;
            Outcome {
                username,
                body,
                took: asked.elapsed(),
                answered: Instant::now(),
            }
        }
    };
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();

    for outcome in
        futures_util::future::join_all((0..4).map(|i| create(format!("before{i}")))).await
    {
        assert!(outcome.body["errors"].is_null(), "{}", outcome.body);
        acknowledged.push(outcome.username);
    }

    // The gate is a direct connection: it outlives the outage.
    let gate = app.db.client().await;
    gate.batch_execute("BEGIN; LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight = futures_util::future::join_all((0..4).map(|i| create(format!("inflight{i}"))));
    let outage = async {
        app.until_statements_wait_on_locks(4).await;
        proxy.cut();
        let cut = Instant::now();
        assert_eq!(ready().await.status(), 503, "/readyz reports the outage");
        let during =
            futures_util::future::join_all((0..6).map(|i| create(format!("during{i}")))).await;
        (cut, during)
    };
    let (in_flight, (cut, during)) = tokio::join!(in_flight, outage);
    // Held at the cut (counted from it) or sent during the outage: refused,
    // and soon.
    let waits = in_flight
        .iter()
        .map(|o| (o, o.answered.duration_since(cut)))
        .chain(during.iter().map(|o| (o, o.took)));
    for (outcome, waited) in waits {
        assert_eq!(
            error_code(&outcome.body),
            "SERVICE_UNAVAILABLE",
            "{}: {}",
            outcome.username,
            outcome.body
        );
        assert!(
            waited < Duration::from_secs(3),
            "{} failed fast: {waited:?}",
            outcome.username
        );
    }
    refused.extend(in_flight.into_iter().chain(during).map(|o| o.username));

    gate.batch_execute("ROLLBACK").await.unwrap();
    proxy.restore();
    let restored = Instant::now();
    // Rounds of concurrent creates until one goes through whole; pooled
    // connections broken by the outage may refuse a few on the way. (Rounds
    // include argon2 runs, slow on a loaded machine: the deadline is on when
    // a failing round started, not on how long it took.)
    let mut round = 0;
    loop {
        let round_started = restored.elapsed();
        let outcomes =
            futures_util::future::join_all((0..4).map(|i| create(format!("after{round}x{i}"))))
                .await;
        let mut whole = true;
        for outcome in outcomes {
            if outcome.body["errors"].is_null() {
                acknowledged.push(outcome.username);
            } else {
                assert_eq!(
                    error_code(&outcome.body),
                    "SERVICE_UNAVAILABLE",
                    "{}",
                    outcome.body
                );
                refused.push(outcome.username);
                whole = false;
            }
        }
        if whole {
            break;
        }
        assert!(
            round_started < Duration::from_secs(5),
            "a round begun {round_started:?} after the database's return still had refusals"
        );
        round += 1;
    }
    let recovered_after = restored.elapsed();
    eventually("/readyz back to 200", Duration::from_secs(5), || async {
        (ready().await.status() == 200).then_some(())
    })
    .await;
    println!(
        "outage: {} acknowledged, {} refused; a whole round succeeded {recovered_after:?} after the database came back",
        acknowledged.len(),
        refused.len(),
    );

    let db = app.db.client().await;
    for username in &acknowledged {
        assert_eq!(
            rows_of(&db, username).await,
            (1, 1, 1),
            "acknowledged {username} was kept, with its guest agent"
        );
    }
    for username in &refused {
        assert_eq!(
            rows_of(&db, username).await,
            (0, 0, 0),
            "refused {username} left nothing"
        );
    }
    assert_eq!(half_written(&app).await, 0, "no create was left half done");
}
