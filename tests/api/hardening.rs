//! A public server under abuse, faults and load: document limits, deadlines,
//! outages, draining, request ids, metrics and HTTP hygiene.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Proxy, TestApp, error_code};

fn limit_of(body: &Value) -> &str {
    body["errors"][0]["extensions"]["limit"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a limit refusal, got {body}"))
}

#[tokio::test]
async fn alias_floods_and_root_field_floods_are_refused_before_any_work() {
    let app = TestApp::spawn_with(|c| {
        c.max_aliases = 10;
        c.max_root_fields = 5;
    })
    .await;
    let admin = app.admin_token().await;
    let before = app.statements();

    let aliases: String = (0..11)
        .map(|i| format!("a{i}: me {{ permissions }} "))
        .collect();
    let started = Instant::now();
    let body = app
        .gql(Some(&admin), &format!("{{ {aliases} }}"), json!({}))
        .await;
    println!("alias flood refused in {:?}", started.elapsed());
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(limit_of(&body), "ALIASES");

    // Aliases hidden in a fragment count too.
    let fragment: String = (0..11).map(|i| format!("f{i}: username ")).collect();
    let body = app
        .gql(
            Some(&admin),
            &format!("{{ me {{ agent {{ ...A }} }} }} fragment A on Agent {{ {fragment} }}"),
            json!({}),
        )
        .await;
    assert_eq!(limit_of(&body), "ALIASES", "{body}");

    let roots = "{ me { permissions } __typename customers { totalCount } customer(id: \"00000000-0000-0000-0000-000000000000\") { id } accessKeys { totalCount } x: __typename }";
    let body = app.gql(Some(&admin), roots, json!({})).await;
    assert_eq!(limit_of(&body), "ROOT_FIELDS", "{body}");

    assert_eq!(app.statements(), before, "nothing reached the database");
    let fine = app
        .gql(
            Some(&admin),
            "{ a: me { permissions } b: me { permissions } }",
            json!({}),
        )
        .await;
    assert!(fine["errors"].is_null(), "{fine}");
}

#[tokio::test]
async fn depth_complexity_and_batch_refusals_name_their_limit() {
    let app = TestApp::spawn_with(|c| {
        c.max_query_depth = 4;
        c.max_query_complexity = 300;
        c.max_batch_size = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let before = app.statements();
    let deep = app
        .gql(
            Some(&admin),
            "{ customers { edges { node { guestAgent { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(limit_of(&deep), "DEPTH", "{deep}");
    let costly = app
        .gql(
            Some(&admin),
            "{ customers(first: 100) { nodes { id username name detail } } }",
            json!({}),
        )
        .await;
    assert_eq!(limit_of(&costly), "COMPLEXITY", "{costly}");
    assert_eq!(
        app.statements(),
        before,
        "refused before any resolver touched the database"
    );
    let affordable = app
        .gql(
            Some(&admin),
            "{ customers(first: 10) { nodes { id username } } }",
            json!({}),
        )
        .await;
    assert!(affordable["errors"].is_null(), "{affordable}");

    let within = json!([{ "query": "{ __typename }" }, { "query": "{ me { permissions } }" }]);
    let answers: Value = app
        .http()
        .post(app.graphql_url())
        .bearer_auth(&admin)
        .json(&within)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answers.as_array().map(Vec::len), Some(2), "{answers}");
    assert_eq!(
        answers[1]["data"]["me"]["permissions"][0], "PROJECT_SUPER_ADMIN",
        "{answers}"
    );

    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let response = app
        .http()
        .post(app.graphql_url())
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(limit_of(&body), "BATCH", "{body}");
}

#[tokio::test]
async fn oversized_bodies_get_a_graphql_error_whether_announced_or_streamed() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 2048).await;
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(10_000) } })
        .to_string();

    let announced = app
        .http()
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 413);
    let body: Value = announced.json().await.unwrap();
    assert_eq!(limit_of(&body), "BODY_SIZE", "{body}");

    // Without a Content-Length the limit is only met while reading.
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let streamed = app
        .http()
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
    let body: Value = streamed.json().await.unwrap();
    assert_eq!(limit_of(&body), "BODY_SIZE", "{body}");
}

#[tokio::test]
async fn requests_past_their_deadline_fail_with_service_unavailable() {
    let app = TestApp::spawn_with(|c| c.request_timeout_ms = 1).await;
    // An argon2 verification alone takes longer than a millisecond.
    let response = app
        .http()
        .post(app.graphql_url())
        .json(&json!({
            "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
            "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
}

#[tokio::test]
async fn post_bodies_must_be_json_or_graphql() {
    let app = TestApp::spawn().await;
    let response = app
        .http()
        .post(app.graphql_url())
        .header("content-type", "text/plain")
        .body("{ __typename }")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let with_charset = app
        .http()
        .post(app.graphql_url())
        .header("content-type", "application/json; charset=utf-8")
        .body(json!({ "query": "{ __typename }" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(with_charset.status(), 200);
    let body: Value = with_charset.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_repeat_it() {
    let app = TestApp::spawn().await;
    let response = app
        .http()
        .post(app.graphql_url())
        .json(&json!({ "query": "{ me { permissions } }" }))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        generated.as_str(),
        "{body}"
    );

    let mine = "trace-abc.123";
    let echoed = app
        .http()
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", mine)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], mine);

    let hostile = "x".repeat(500);
    let replaced = app
        .http()
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", &hostile)
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an unusable id is replaced: {id}"
    );
}

#[tokio::test]
async fn metrics_count_operations_by_outcome_and_failed_logins() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.gql(Some(&admin), "{ me { permissions } }", json!({}))
        .await;
    app.gql(None, "{ me { permissions } }", json!({})).await;
    app.login(ADMIN_USERNAME, "wrong-password").await;
    app.gql(None, "{ nope }", json!({})).await;

    let text = app
        .http()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"customer_api_graphql_operations_total{operation="query me",outcome="ok"} 1"#,
        r#"customer_api_graphql_operations_total{operation="query me",outcome="UNAUTHENTICATED"} 1"#,
        r#"customer_api_graphql_operations_total{operation="mutation login",outcome="UNAUTHENTICATED"} 1"#,
        r#"customer_api_graphql_operations_total{operation="invalid",outcome="BAD_USER_INPUT"} 1"#,
        r#"customer_api_login_failures_total{reason="credentials"} 1"#,
        "customer_api_graphql_operation_duration_seconds_bucket",
        "customer_api_db_pool_connections ",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        !text.contains("nope"),
        "unknown field names never become labels"
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let closed = TestApp::spawn().await;
    let open =
        TestApp::spawn_with(|c| c.cors_allowed_origins = vec!["https://app.example".into()]).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.http()
            .request(reqwest::Method::OPTIONS, app.graphql_url())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let none = preflight(&closed, "https://app.example").await.unwrap();
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_username_race_has_one_winner_across_two_processes() {
    // No statement timeout while the creates wait at the lock for the test.
    let app = TestApp::spawn_with(|c| c.db_statement_timeout_ms = 60_000).await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    // Creates hash their passwords first and could reach the database one
    // by one: a lock on the table holds all ten at their INSERT (reads pass)
    // until every one is there, then lets them go together.
    let gate = app.db.client().await;
    gate.batch_execute("BEGIN; LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let attempts = futures_util::future::join_all((0..10).map(|i| {
        let server = if i % 2 == 0 { &app } else { &replica };
        server.create_customer(&admin, json!({ "username": if i % 3 == 0 { "duel" } else { "DUEL" }, "password": "password1" }))
    }));
    let release = async {
        app.until_statements_wait_on_locks(10).await;
        gate.batch_execute("COMMIT").await.unwrap();
    };
    let (bodies, ()) = tokio::join!(attempts, release);
    let winners = bodies.iter().filter(|b| b["errors"].is_null()).count();
    assert_eq!(winners, 1, "{bodies:?}");
    for body in bodies.iter().filter(|b| !b["errors"].is_null()) {
        assert_eq!(error_code(body), "CONFLICT", "{bodies:?}");
    }
    let db = app.db.client().await;
    let rows: (i64, i64) = db
        .query_one(
            "SELECT (SELECT count(*) FROM customers WHERE lower(username) = 'duel'), \
                    (SELECT count(*) FROM agents WHERE lower(username) = 'duel')",
            &[],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    assert_eq!(
        rows,
        (1, 1),
        "one customer with its guest agent, nothing else"
    );
}

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
    let shutdown = {
        let (stopped, stop) = tokio::sync::oneshot::channel();
        let address = app.address.clone();
        tokio::spawn(async move {
            app.shutdown().await.unwrap();
            let _ = stopped.send(());
            drop(stop);
            address
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
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
    let address = shutdown.await.unwrap();
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
    let db = app.db.client().await;
    db.query_one(
        "SELECT count(*) FROM customers c WHERE NOT EXISTS \
         (SELECT 1 FROM agents a WHERE a.customer_id = c.id AND a.is_guest)",
        &[],
    )
    .await
    .unwrap()
    .get(0)
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
    let ready = |app: &TestApp| app.http().get(format!("{}/readyz", app.address)).send();
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
        assert_eq!(
            ready(&app).await.unwrap().status(),
            503,
            "/readyz reports the outage"
        );
        let during =
            futures_util::future::join_all((0..6).map(|i| create(format!("during{i}")))).await;
        (cut, during)
    };
    let (in_flight, (cut, during)) = tokio::join!(in_flight, outage);
    for outcome in &in_flight {
        assert_eq!(
            error_code(&outcome.body),
            "SERVICE_UNAVAILABLE",
            "{}: {}",
            outcome.username,
            outcome.body
        );
        let after_cut = outcome.answered.duration_since(cut);
        assert!(
            after_cut < Duration::from_secs(3),
            "a create in flight failed fast: {after_cut:?}"
        );
    }
    for outcome in &during {
        assert_eq!(
            error_code(&outcome.body),
            "SERVICE_UNAVAILABLE",
            "{}: {}",
            outcome.username,
            outcome.body
        );
        assert!(
            outcome.took < Duration::from_secs(3),
            "failed fast: {:?}",
            outcome.took
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
    crate::harness::eventually("/readyz back to 200", Duration::from_secs(5), || async {
        (ready(&app).await.unwrap().status() == 200).then_some(())
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

#[tokio::test]
async fn refusals_outside_handlers_speak_rest_on_rest_paths() {
    let app = TestApp::spawn_with(|c| {
        c.max_body_bytes = 1024;
        c.request_timeout_ms = 1;
    })
    .await;
    let big = app
        .http()
        .post(format!("{}/v1.0/customers", app.address))
        .header("content-type", "application/json")
        .body(json!({ "username": "x".repeat(4000) }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{body}");

    let slow = app
        .http()
        .post(format!("{}/auth/login", app.address))
        .json(&json!({ "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 503);
    let body: Value = slow.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
}

/// The introspection query graphql-js (and so GraphiQL, codegen and
/// Postman) sends: its `TypeRef` fragment nests `ofType` nine levels deep.
fn standard_introspection_query() -> String {
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} \
         subscriptionType {{ name }} types {{ ...FullType }} directives {{ name description \
         locations args {{ ...InputValue }} }} }} }} \
         fragment FullType on __Type {{ kind name description \
         fields(includeDeprecated: true) {{ name description args {{ ...InputValue }} \
         type {{ ...TypeRef }} isDeprecated deprecationReason }} \
         inputFields {{ ...InputValue }} interfaces {{ ...TypeRef }} \
         enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }} \
         possibleTypes {{ ...TypeRef }} }} \
         fragment InputValue on __InputValue {{ name description type {{ ...TypeRef }} defaultValue }} \
         fragment TypeRef on __Type {{ {type_ref} }}"
    )
}

#[tokio::test]
async fn the_standard_introspection_query_passes_the_default_limits() {
    let app = TestApp::spawn().await;
    let body = app
        .gql(None, &standard_introspection_query(), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Customer"));
}
