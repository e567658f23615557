//! Read replicas, against a real streaming replica (`cluster`): the reads
//! that tolerate lag are served by it, a writer reads its own writes at
//! once, and a replica that lags or is down is skipped until it recovers.
//!
//! The tests that pause or stop the shared replica run alone
//! (`DISRUPTION`); the others share it.

mod cluster;
mod point_reads;

use std::time::Duration;

use customer_api::Config;
use customer_api::config::Secret;
use serde_json::json;
use tokio::sync::RwLock;

use crate::harness::{TestApp, captured_logs, eventually, metric, send};
use crate::subscriptions::socket;
use cluster::{Pair, connect, pair};

static DISRUPTION: RwLock<()> = RwLock::const_new(());

const PATIENCE: Duration = Duration::from_secs(30);

/// The app on a new database of the pair's primary, reading from its
/// replica, once the replica checks healthy. (`spawn_with` also clones a
/// database on the machine's server, unused here and dropped with the app.)
async fn spawn(pair: &Pair, adjust: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let database = pair.database().await;
    let (primary, replica) = (pair.primary_url(&database), pair.replica_url(&database));
    let app = TestApp::spawn_with(move |config| {
        config.database_url = Secret::new(primary);
        config.database_replica_urls = Some(Secret::new(replica));
        adjust(config);
    })
    .await;
    wait_until_healthy(&app, true).await;
    (app, database)
}

/// The app on a replica that may lag for minutes without being skipped,
/// and whose writers read from the primary as long, with `credentials`
/// admin tokens, each used once before the test pauses replay.
async fn spawn_for_read_your_writes(pair: &Pair, credentials: usize) -> (TestApp, Vec<String>) {
    let (app, _database) = spawn(pair, |config| {
        config.replica_max_lag_ms = 600_000;
        config.read_your_writes_ms = 600_000;
    })
    .await;
    let mut tokens = Vec::with_capacity(credentials);
    for _ in 0..credentials {
        let token = app.admin_token().await;
        app.gql(Some(&token), "{ me { agent { username } } }", json!({}))
            .await;
        tokens.push(token);
    }
    (app, tokens)
}

async fn wait_until_healthy(app: &TestApp, healthy: bool) {
    eventually(
        &format!("the replica checks healthy={healthy}"),
        PATIENCE,
        || async {
            (app.state.replicas.members()[0].is_healthy() == healthy
                && metric(app, "customer_api_db_replica_healthy{replica=\"0\"}")
                    == f64::from(u8::from(healthy)))
            .then_some(())
        },
    )
    .await;
}

fn replica_statements(app: &TestApp) -> u64 {
    app.state.replicas.members()[0].statements.get()
}

/// Usernames listed by `customers(filter: {search})`, with the replica's
/// and the primary's statement counts it cost.
async fn search(app: &TestApp, token: &str, search: &str) -> (Vec<String>, u64, u64) {
    let (replica, primary) = (replica_statements(app), app.statements());
    let body = app
        .gql(
            Some(token),
            "query($s: String) { customers(first: 20, filter: {search: $s}) { totalCount edges { node { username guestAgent { username } } } } }",
            json!({ "s": search }),
        )
        .await;
    let edges = body["data"]["customers"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("customers failed: {body}"));
    let names = edges
        .iter()
        .map(|e| {
            assert_eq!(
                e["node"]["guestAgent"]["username"], e["node"]["username"],
                "every listed customer has its guest agent: {body}"
            );
            e["node"]["username"].as_str().unwrap().to_owned()
        })
        .collect::<Vec<_>>();
    assert_eq!(
        body["data"]["customers"]["totalCount"],
        json!(names.len()),
        "{body}"
    );
    (
        names,
        replica_statements(app) - replica,
        app.statements() - primary,
    )
}

/// Waits until the replica itself holds a row matching `sql` (a count).
async fn replicated(pair: &Pair, database: &str, sql: &str) {
    let replica = connect(&pair.replica_url(database)).await;
    eventually("the row reaches the replica", PATIENCE, || async {
        let count: i64 = replica.query_one(sql, &[]).await.unwrap().get(0);
        (count > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn reads_that_tolerate_lag_are_served_by_the_replica() {
    let pair = pair().await;
    let _shared = DISRUPTION.read().await;
    let (app, database) = spawn(pair, |_| {}).await;
    let writer = app.admin_token().await;
    let reader = app.admin_token().await;
    let customer = app
        .create_customer_ok(&writer, "rr-served", "a-long-password")
        .await;
    let (key_id, _) = app
        .create_access_key_ok(&writer, json!({ "name": "rr" }))
        .await;
    replicated(
        pair,
        &database,
        &format!("SELECT count(*) FROM access_keys WHERE id = '{key_id}'"),
    )
    .await;
    // The reader's credential is resolved (and cached) on the primary once.
    app.gql(Some(&reader), "{ me { agent { username } } }", json!({}))
        .await;

    let (names, on_replica, on_primary) = search(&app, &reader, "rr-served").await;
    assert_eq!(names, ["rr-served"]);
    assert!(
        on_replica >= 3,
        "page, count and guest agents on the replica: {on_replica}"
    );
    assert_eq!(on_primary, 0, "nothing of the listing on the primary");

    let reads = [
        (
            "customer",
            json!({ "query": "query($id: UUID!) { customer(id: $id) { username } }", "variables": { "id": customer } }),
        ),
        (
            "accessKeys",
            json!({ "query": "{ accessKeys(first: 5) { totalCount edges { node { id } } } }" }),
        ),
        (
            "events",
            json!({ "query": "{ events(first: 5) { totalCount edges { node { type } } } }" }),
        ),
    ];
    for (what, body) in reads {
        let before = (replica_statements(&app), app.statements());
        let answer = app.post_graphql(Some(&reader), &body).await;
        assert!(answer.get("errors").is_none(), "{what}: {answer}");
        assert!(
            replica_statements(&app) > before.0,
            "{what} is served by the replica"
        );
        assert_eq!(app.statements(), before.1, "{what}: nothing on the primary");
    }
    assert_eq!(
        app.post_graphql(
            Some(&reader),
            &json!({ "query": "{ events(first: 5) { edges { node { type } } } }" })
        )
        .await["data"]["events"]["edges"][0]["node"]["type"],
        "accesskey_created"
    );

    for path in [
        "/v1.0/customers?page_size=5".to_owned(),
        format!("/v1.0/customers/{customer}"),
        "/v1.0/accesskeys".to_owned(),
        format!("/v1.0/accesskeys/{key_id}"),
    ] {
        let before = (replica_statements(&app), app.statements());
        let reply = send(
            app.http()
                .get(format!("{}{path}", app.address))
                .bearer_auth(&reader),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        assert!(
            replica_statements(&app) > before.0,
            "GET {path} is served by the replica"
        );
        assert_eq!(
            app.statements(),
            before.1,
            "GET {path}: nothing on the primary"
        );
    }
    assert!(
        metric(&app, "customer_api_db_replica_lag_seconds{replica=\"0\"}") < 5.0,
        "a caught-up replica reports little lag"
    );
}

/// A credential that has just written reads from the primary until the
/// replica has replayed its write; another credential meanwhile reads the
/// replica as it is.
#[tokio::test]
async fn a_writer_reads_its_own_writes_at_once() {
    let pair = pair().await;
    let _alone = DISRUPTION.write().await;
    let (app, tokens) = spawn_for_read_your_writes(pair, 2).await;
    let [writer, other] = &tokens[..] else {
        unreachable!()
    };
    let paused = pair.pause_replay();

    app.create_customer_ok(writer, "rr-ryw-graphql", "a-long-password")
        .await;
    let (names, on_replica, _) = search(&app, writer, "rr-ryw").await;
    assert_eq!(names, ["rr-ryw-graphql"], "the writer sees its write");
    assert_eq!(
        on_replica, 0,
        "the writer's read is not served by the stale replica"
    );

    let (names, on_replica, _) = search(&app, other, "rr-ryw").await;
    assert!(
        names.is_empty(),
        "the replica has not replayed it: {names:?}"
    );
    assert!(on_replica > 0, "another credential reads the replica");

    let created = send(
        app.http()
            .post(format!("{}/v1.0/customers", app.address))
            .bearer_auth(other)
            .json(&json!({ "username": "rr-ryw-rest", "password": "a-long-password" })),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let listed = send(
        app.http()
            .get(format!("{}/v1.0/customers?page_size=10", app.address))
            .bearer_auth(other),
    )
    .await;
    let usernames: Vec<&str> = listed.body["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["username"].as_str())
        .collect();
    assert!(
        usernames.contains(&"rr-ryw-rest") && usernames.contains(&"rr-ryw-graphql"),
        "a REST write is read back by its writer: {usernames:?}"
    );

    // Over a WebSocket: the mutation's own answer (its guest agent, loaded
    // after the insert) and the next operation on the socket see the write.
    let socket_writer = app.admin_token().await;
    let mut socket = socket::Socket::connect(&app, &socket_writer).await;
    socket
        .subscribe(
            "create",
            "mutation { createCustomer(input: {username: \"rr-ryw-ws\", password: \"a-long-password\"}) { customer { guestAgent { username } } } }",
            json!({}),
        )
        .await;
    let created = socket.next_payload("create").await;
    assert_eq!(
        created["data"]["createCustomer"]["customer"]["guestAgent"]["username"], "rr-ryw-ws",
        "{created}"
    );
    let complete = socket.receive().await;
    assert!(
        matches!(&complete, socket::Received::Json(m) if m["type"] == "complete"),
        "{complete:?}"
    );
    socket
        .subscribe(
            "list",
            "{ customers(filter: {search: \"rr-ryw-ws\"}) { edges { node { username } } } }",
            json!({}),
        )
        .await;
    let listed = socket.next_payload("list").await;
    assert_eq!(
        listed["data"]["customers"]["edges"][0]["node"]["username"], "rr-ryw-ws",
        "{listed}"
    );

    drop(paused);
    // Once the replica has replayed the writes, it serves the writer again,
    // well before READ_YOUR_WRITES_MS has run out.
    eventually("the writer reads the replica again", PATIENCE, || async {
        let (names, on_replica, _) = search(&app, writer, "rr-ryw").await;
        (on_replica > 0 && names.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_replica_that_lags_is_skipped_until_it_catches_up() {
    let pair = pair().await;
    let _alone = DISRUPTION.write().await;
    let (app, database) = spawn(pair, |config| config.replica_max_lag_ms = 1_000).await;
    let reader = app.admin_token().await;
    app.gql(Some(&reader), "{ me { agent { username } } }", json!({}))
        .await;
    let writer = app.admin_token().await;
    let paused = pair.pause_replay();
    app.create_customer_ok(&writer, "rr-lagging", "a-long-password")
        .await;

    wait_until_healthy(&app, false).await;
    assert!(metric(&app, "customer_api_db_replica_lag_seconds{replica=\"0\"}") > 1.0);
    assert!(
        captured_logs()
            .lines()
            .any(|l| l.contains("read replica skipped")
                && l.contains(&database)
                && l.contains("behind the primary")),
        "a warning says the replica is skipped for its lag"
    );
    let (names, on_replica, _) = search(&app, &reader, "rr-lagging").await;
    assert_eq!(names, ["rr-lagging"], "read from the primary");
    assert_eq!(on_replica, 0);

    drop(paused);
    wait_until_healthy(&app, true).await;
    let back = captured_logs()
        .lines()
        .filter(|l| l.contains("read replica in use") && l.contains(&database))
        .count();
    assert_eq!(back, 2, "logged when first used and when back");
    let (names, on_replica, _) = search(&app, &reader, "rr-lagging").await;
    assert_eq!(names, ["rr-lagging"]);
    assert!(on_replica > 0, "served by the replica again");
}

#[tokio::test]
async fn a_stopped_replica_is_skipped_and_used_again_once_back() {
    let pair = pair().await;
    let _alone = DISRUPTION.write().await;
    let (app, database) = spawn(pair, |_| {}).await;
    let writer = app.admin_token().await;
    let reader = app.admin_token().await;
    app.create_customer_ok(&writer, "rr-outage", "a-long-password")
        .await;
    replicated(
        pair,
        &database,
        "SELECT count(*) FROM customers WHERE username = 'rr-outage'",
    )
    .await;
    // Leaves a pooled connection to the replica, which the stop cuts.
    let (_, on_replica, _) = search(&app, &reader, "rr-outage").await;
    assert!(on_replica > 0);

    tokio::task::spawn_blocking(|| pair.stop_replica())
        .await
        .unwrap();
    // Before the checker has noticed: the read fails over to the primary.
    let (names, _, _) = search(&app, &reader, "rr-outage").await;
    assert_eq!(names, ["rr-outage"]);
    wait_until_healthy(&app, false).await;
    let (names, on_replica, _) = search(&app, &reader, "rr-outage").await;
    assert_eq!(names, ["rr-outage"], "reads go on, from the primary");
    assert_eq!(on_replica, 0);
    assert!(
        captured_logs()
            .lines()
            .any(|l| l.contains("read replica") && l.contains(&database) && l.contains("WARN")),
        "the outage is logged"
    );

    tokio::task::spawn_blocking(|| pair.start_replica())
        .await
        .unwrap();
    wait_until_healthy(&app, true).await;
    let (names, on_replica, _) = search(&app, &reader, "rr-outage").await;
    assert_eq!(names, ["rr-outage"]);
    assert!(on_replica > 0, "served by the replica again");
}

/// The deployment the issue describes: three servers on one primary and one
/// streaming replica. A credential issued by one works on the others, a
/// customer created through one is listed by another (from the replica),
/// a logout through one is refused by the others at once, and the login
/// limiter counts failures made through any of them.
#[tokio::test]
async fn three_servers_on_a_primary_and_a_replica_work_as_one() {
    let pair = pair().await;
    let _shared = DISRUPTION.read().await;
    let (a, _) = spawn(pair, |config| config.login_max_failures = 3).await;
    let b = a.replica().await;
    let c = a.replica().await;
    wait_until_healthy(&b, true).await;
    wait_until_healthy(&c, true).await;

    let admin = a.admin_token().await;
    let username = crate::harness::unique("three");
    let customer = b
        .create_customer_ok(&admin, &username, "three-password-1")
        .await;
    // Listed by the third server, from its replica, once replayed there.
    let before = replica_statements(&c);
    eventually("the new customer listed by c", PATIENCE, || async {
        let (names, _, _) = search(&c, &admin, &username).await;
        (names == [username.clone()]).then_some(())
    })
    .await;
    assert!(replica_statements(&c) > before, "c listed from its replica");

    // The new customer's admin logs in on c and is known on a and b.
    let guest = c.token(&username, "three-password-1").await;
    for server in [&a, &b, &c] {
        server
            .assert_accepted(&guest, "a token from another server")
            .await;
    }
    let own = a.own_customer_id(&guest).await;
    assert_eq!(own, customer);
    // Logged out through b: refused everywhere at once.
    let body = b.logout(&guest).await;
    assert!(body["errors"].is_null(), "{body}");
    for server in [&a, &b, &c] {
        server
            .assert_refused(&guest, "a token logged out on b")
            .await;
    }

    // Failures through different servers add up (limit 3 per username).
    let target = crate::harness::unique("limited");
    a.create_customer_ok(&admin, &target, "limited-password-1")
        .await;
    for server in [&a, &b, &c] {
        let body = server.login(&target, "wrong-password-1").await;
        assert_eq!(
            crate::harness::error_code(&body),
            "UNAUTHENTICATED",
            "{body}"
        );
        assert!(crate::harness::retry_after(&body).is_none(), "{body}");
    }
    for server in [&a, &b, &c] {
        let body = server.login(&target, "limited-password-1").await;
        assert!(
            crate::harness::retry_after(&body).is_some(),
            "the right password is refused while the username is locked: {body}"
        );
    }
}
