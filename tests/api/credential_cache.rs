//! Each server process caches the credentials it has checked: a warm one
//! costs no statement, a change made behind its back (in SQL) still reaches
//! it before the next request, and while it cannot hear of changes it asks
//! the database every time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::as_in_production;
use crate::harness::{TestApp, TestDb, error_code, eventually};

const OWN_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id } }";

/// The `tmLastUsed` of an access key, as text.
async fn last_used(server: &TestApp, key_id: &str) -> Option<String> {
    server
        .db
        .client()
        .await
        .query_one(
            "SELECT tm_last_used::text FROM access_keys WHERE id = $1::text::uuid",
            &[&key_id],
        )
        .await
        .unwrap()
        .get(0)
}

/// Statements one `customer(id)` request costs `server`, all told. When the
/// request is the first use of the access key `key_id` by `server`, its
/// `tmLastUsed` write, made in the background after the response, is waited
/// for (by its row) and counted too.
async fn request_cost(
    server: &TestApp,
    credential: &str,
    customer_id: &str,
    first_use_of_key: Option<&str>,
) -> u64 {
    let before = server.statements();
    let body = server
        .gql(Some(credential), OWN_CUSTOMER, json!({ "id": customer_id }))
        .await;
    assert_eq!(body["data"]["customer"]["id"], customer_id, "{body}");
    if let Some(key_id) = first_use_of_key {
        eventually(
            "the tmLastUsed write of a key's first use",
            Duration::from_secs(10),
            || async { last_used(server, key_id).await },
        )
        .await;
    }
    server.statements() - before
}

#[tokio::test]
async fn credential_check_costs_no_statement_on_a_warm_cache() {
    let app = TestApp::spawn_with(as_in_production).await;
    let admin = app.admin_token().await;
    let customer_id = app
        .create_customer_ok(&admin, "measured", "measured-password")
        .await;
    let token = app.token("measured", "measured-password").await;
    let (key_id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer_id }))
        .await;
    // A process that has seen neither credential yet: its first request with
    // each is a cold one, whatever login or createAccessKey cached on `app`.
    let replica = app.replica().await;
    // Opening a pooled connection costs a statement too (its SET
    // statement_timeout): open a few first, so that only the credential
    // check and the resolver are counted, even when background work (the
    // tmLastUsed write) needs a second connection.
    let warm_up =
        (0..8).map(|_| replica.gql(Some(&admin), OWN_CUSTOMER, json!({ "id": customer_id })));
    for body in futures_util::future::join_all(warm_up).await {
        assert!(body["errors"].is_null(), "{body}");
    }
    let resolver = request_cost(&replica, &admin, &customer_id, None).await;

    let token_cold = request_cost(&replica, &token, &customer_id, None).await;
    let token_warm = request_cost(&replica, &token, &customer_id, None).await;
    let token_warm_again = request_cost(&replica, &token, &customer_id, None).await;
    assert_eq!(last_used(&replica, &key_id).await, None, "unused so far");
    let key_cold = request_cost(&replica, &key, &customer_id, Some(&key_id)).await;
    let first_use = last_used(&replica, &key_id).await;
    let key_warm = request_cost(&replica, &key, &customer_id, None).await;
    let key_warm_again = request_cost(&replica, &key, &customer_id, None).await;
    // A write the warm uses queued in the background could land after they
    // were counted: the first use of another key queues one after them, and
    // once it has landed, theirs would have too.
    let (fence_id, fence) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer_id }))
        .await;
    request_cost(&replica, &fence, &customer_id, Some(&fence_id)).await;
    assert_eq!(
        last_used(&replica, &key_id).await,
        first_use,
        "warm uses write no tmLastUsed"
    );
    println!(
        "customer(id) statements: resolver alone (warm super admin) {resolver}; \
         login token cold {token_cold}, warm {token_warm}/{token_warm_again}; \
         access key cold {key_cold}, warm {key_warm}/{key_warm_again}"
    );

    assert_eq!(resolver, 1, "customer(id) itself costs one statement");
    assert_eq!(
        (token_warm, token_warm_again),
        (resolver, resolver),
        "a warm login token costs no statement"
    );
    assert_eq!(
        (key_warm, key_warm_again),
        (resolver, resolver),
        "a warm access key costs no statement (and no tmLastUsed write)"
    );
    assert_eq!(
        token_cold,
        resolver + 1,
        "a cold login token costs one statement"
    );
    assert_eq!(
        key_cold,
        resolver + 2,
        "a cold access key costs its lookup and, on its first use, the tmLastUsed write"
    );
}

/// The agent is deleted behind the server's back (in SQL) while its
/// credential sits in the server's cache; `customer(id)` reads neither the
/// agent nor the session, so only the credential check can refuse it.
#[tokio::test]
async fn deleted_agents_lose_access_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer_id = app.create_customer_ok(&admin, "gone", "password1").await;
    let token = app.token("gone", "password1").await;
    request_cost(&app, &token, &customer_id, None).await;
    // The super admin's credential is warm too: its cost is the resolver's alone.
    request_cost(&app, &admin, &customer_id, None).await;
    let resolver = request_cost(&app, &admin, &customer_id, None).await;
    let warm = request_cost(&app, &token, &customer_id, None).await;
    assert_eq!(
        warm, resolver,
        "the agent's credential is served from the cache (no statement of its own)"
    );

    let deleted = app
        .change_credentials_in_sql(
            "agents",
            "UPDATE agents SET tm_delete = now() WHERE username = 'gone' RETURNING id::text",
            &[],
        )
        .await;
    assert_eq!(deleted.len(), 1);
    let body = app
        .gql(Some(&token), OWN_CUSTOMER, json!({ "id": customer_id }))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn a_batch_with_a_made_up_access_key_costs_one_lookup() {
    let app = TestApp::spawn().await;
    let key = format!("vb_{}", "x".repeat(43));
    let batch: Vec<Value> = (0..10)
        .map(|_| json!({ "query": "{ me { permissions } }" }))
        .collect();
    let batch = json!(batch);
    let before = app.statements();
    let body = app.post_graphql(Some(&key), &batch).await;
    assert_eq!(body.as_array().unwrap().len(), 10);
    for answer in body.as_array().unwrap() {
        assert_eq!(error_code(answer), "UNAUTHENTICATED", "{answer}");
    }
    let first = app.statements() - before;
    let before = app.statements();
    app.post_graphql(Some(&key), &batch).await;
    let again = app.statements() - before;
    println!("made-up key: {first} statements for the first batch of 10, {again} for the next");
    assert_eq!(first, 1, "one lookup for the whole batch");
    assert_eq!(again, 0, "a key found unknown is remembered");
}

/// `{ me }` with `token`: the body and the SQL statements it cost.
async fn me_and_its_statements(app: &TestApp, token: &str) -> (Value, u64) {
    let before = app.statements();
    let body = app
        .gql(Some(token), "{ me { agent { username } } }", json!({}))
        .await;
    (body, app.statements() - before)
}

/// A connection to the server's `postgres` database, for statements that
/// may not run inside the database they change.
async fn maintenance_client(db: &TestDb) -> tokio_postgres::Client {
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_path("postgres");
    let (client, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn while_the_credential_listener_is_down_every_request_checks_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    me_and_its_statements(&app, &admin).await;
    let (body, warm) = me_and_its_statements(&app, &admin).await;
    assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");

    let db = app.db.client().await;
    // New connections are refused from here on, so the listener cannot
    // reconnect, while the connections already in the pool keep serving.
    maintenance_client(&app.db)
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            app.db.name
        ))
        .await
        .unwrap();
    let terminated = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = $1",
            &[&customer_api::auth::cache::LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap()
        .len();
    assert_eq!(terminated, 1, "one listener connection");
    eventually(
        "the server notices that its listener is gone",
        Duration::from_secs(10),
        || async { (!app.state.credentials.is_listening()).then_some(()) },
    )
    .await;

    for _ in 0..2 {
        let (body, cost) = me_and_its_statements(&app, &admin).await;
        assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");
        assert_eq!(
            cost,
            warm + 1,
            "every request looks the credential up (warm: {warm} statements)"
        );
    }
    // Revoked behind the server's back: no listener hears of it.
    db.execute(
        "UPDATE sessions SET tm_revoke = now() WHERE tm_revoke IS NULL",
        &[],
    )
    .await
    .unwrap();
    let (body, _) = me_and_its_statements(&app, &admin).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}
