//! Integrity under concurrency and hostile input: no access key outlives its
//! customer's deletion, deleting a customer revokes its agents' sessions, the
//! per-customer cap on live access keys holds under concurrent creates, and
//! `webhookUri` is stored exactly as it was validated.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, error_field, send, sql_column, sql_count};

async fn count(client: &tokio_postgres::Client, sql: &str, customer_id: &str) -> i64 {
    sql_count(client, sql, &[&customer_id]).await
}

const LIVE_KEYS: &str =
    "SELECT count(*) FROM access_keys WHERE customer_id = $1::text::uuid AND tm_delete IS NULL";
const SESSIONS: &str = "SELECT count(*) FROM sessions s JOIN agents a ON a.id = s.agent_id
                         WHERE a.customer_id = $1::text::uuid";
const UNREVOKED_SESSIONS: &str =
    "SELECT count(*) FROM sessions s JOIN agents a ON a.id = s.agent_id
                                   WHERE a.customer_id = $1::text::uuid AND s.tm_revoke IS NULL";

/// The race that left live keys on deleted customers: createAccessKey has
/// checked that the customer is live, deleteCustomer then commits, and only
/// then is the key inserted. Forced here: a direct connection holds the
/// customer's row lock; deleteCustomer queues for it first, createAccessKey
/// second; the lock is released. The create must then see the customer
/// deleted and refuse, and the delete must have revoked every session of
/// the customer's agents in its own transaction.
#[tokio::test]
async fn a_key_created_while_its_customer_is_being_deleted_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer_id = app
        .create_customer_ok(&admin, "doomed", "doomed-password")
        .await;
    // Three live sessions: the guest twice, and a second agent once.
    let guest = app.token("doomed", "doomed-password").await;
    app.token("doomed", "doomed-password").await;
    app.seed_agent("doomed", "doomed.second", 32).await;
    app.token("doomed.second", "doomed-password").await;
    // A key made before the delete, which the delete takes with it.
    app.create_access_key_ok(&guest, json!({ "name": "before" }))
        .await;

    let locker = app.db.client().await;
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .query_one(
            "SELECT id FROM customers WHERE id = $1::text::uuid FOR UPDATE",
            &[&customer_id],
        )
        .await
        .unwrap();

    let delete = app.delete_customer(&admin, &customer_id);
    let create = async {
        app.until_statements_wait_on_locks(1).await; // deleteCustomer is queued
        app.create_access_key(&guest, json!({ "name": "racing" }))
            .await
    };
    let release = async {
        app.until_statements_wait_on_locks(2).await; // and createAccessKey behind it
        locker.batch_execute("COMMIT").await.unwrap();
    };
    let (deleted, created, ()) = tokio::join!(delete, create, release);

    let tm_delete = deleted["data"]["deleteCustomer"]["customer"]["tmDelete"]
        .as_str()
        .unwrap_or_else(|| panic!("deleteCustomer failed: {deleted}"));
    assert_eq!(error_code(&created), "NOT_FOUND", "{created}");
    assert!(created["data"].is_null(), "{created}");

    let client = app.db.client().await;
    assert_eq!(count(&client, LIVE_KEYS, &customer_id).await, 0);
    assert_eq!(count(&client, SESSIONS, &customer_id).await, 3);
    assert_eq!(count(&client, UNREVOKED_SESSIONS, &customer_id).await, 0);
    // Revoked in the delete's own transaction: at the very same instant.
    let same_instant = count(
        &client,
        "SELECT count(*) FROM sessions s JOIN agents a ON a.id = s.agent_id
           JOIN customers c ON c.id = a.customer_id
          WHERE c.id = $1::text::uuid AND s.tm_revoke = c.tm_delete",
        &customer_id,
    )
    .await;
    assert_eq!(same_instant, 3, "sessions revoked at {tm_delete}");
}

/// Many unforced races of createAccessKey against deleteCustomer: whoever
/// wins, no live key is ever left on a deleted customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_and_deletes_never_leave_a_live_key_on_a_deleted_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            app.create_customer_ok(&admin, &format!("race{i}"), "race-password")
                .await,
        );
    }
    let barrier = tokio::sync::Barrier::new(ids.len() * 4);
    let mut requests = Vec::new();
    for id in &ids {
        for n in 0..4 {
            let (app, admin, barrier) = (&app, &admin, &barrier);
            requests.push(async move {
                barrier.wait().await;
                if n == 1 {
                    let body = app.delete_customer(admin, id).await;
                    assert!(
                        body["data"]["deleteCustomer"]["customer"]["tmDelete"].is_string(),
                        "{body}"
                    );
                } else {
                    let body = app
                        .create_access_key(admin, json!({ "customerId": id }))
                        .await;
                    if body["errors"].is_array() {
                        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
                    }
                }
            });
        }
    }
    join_all(requests).await;
    let client = app.db.client().await;
    for id in &ids {
        assert_eq!(count(&client, LIVE_KEYS, id).await, 0, "customer {id}");
    }
}

/// `MAX_ACCESS_KEYS_PER_CUSTOMER` caps a customer's live keys, even against
/// concurrent creates; deleted and expired keys do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_access_keys_per_customer_are_capped_even_under_concurrency() {
    let app = TestApp::spawn_with(|c| c.max_access_keys_per_customer = 3).await;
    let admin = app.admin_token().await;
    let customer_id = app
        .create_customer_ok(&admin, "capped", "capped-password")
        .await;
    let token = app.token("capped", "capped-password").await;

    let bodies = join_all((0..12).map(|i| {
        let token = &token;
        let app = &app;
        async move {
            app.create_access_key(token, json!({ "name": format!("k{i}") }))
                .await
        }
    }))
    .await;
    let mut created = Vec::new();
    for body in &bodies {
        match body["data"]["createAccessKey"]["accessKey"]["id"].as_str() {
            Some(id) => created.push(id.to_owned()),
            None => {
                assert_eq!(error_code(body), "CONFLICT", "{body}");
                let message = body["errors"][0]["message"].as_str().unwrap();
                assert!(
                    message.contains("already has 3 live access keys")
                        && message.contains("delete one first"),
                    "{message}"
                );
            }
        }
    }
    assert_eq!(created.len(), 3, "{bodies:?}");
    let client = app.db.client().await;
    assert_eq!(count(&client, LIVE_KEYS, &customer_id).await, 3);

    // Another customer has a cap of its own.
    let other = app
        .create_customer_ok(&admin, "uncapped", "uncapped-password")
        .await;
    app.create_access_key_ok(&admin, json!({ "customerId": other }))
        .await;

    // Deleting one makes room for exactly one.
    let deleted = app.delete_access_key(&token, &created[0]).await;
    assert!(
        deleted["data"]["deleteAccessKey"]["accessKey"]["tmDelete"].is_string(),
        "{deleted}"
    );
    app.create_access_key_ok(&token, json!({ "name": "replacement" }))
        .await;
    let refused = app.create_access_key(&token, json!({})).await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    // A super admin is held to the same cap.
    let refused = app
        .create_access_key(&admin, json!({ "customerId": customer_id }))
        .await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");

    // An expired key no longer counts.
    client
        .execute(
            "UPDATE access_keys SET tm_expire = now() - interval '1 second' WHERE id = $1::text::uuid",
            &[&created[1]],
        )
        .await
        .unwrap();
    app.create_access_key_ok(&token, json!({ "name": "after expiry" }))
        .await;
    let refused = app.create_access_key(&token, json!({})).await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
}

/// Inputs the `url` crate would silently rewrite (strip, drop, re-case or
/// escape) before checking, or that carry credentials or another scheme.
const HOSTILE_WEBHOOK_URIS: &[&str] = &[
    "http://example.com/a\r\nX-Injected: 1",
    "  \thttp://example.com/",
    "http://example.com/ ",
    "http://example.com/a\tb",
    "http://exam\tple.com/",
    "http://example.com/\n",
    "http://user@host/",
    "http://user:pass@example.com/",
    "javascript:alert(1)",
    "HTTP://EXAMPLE.COM/",
    "http://example.com/a b",
    "http://example.com/a/../b",
    "http://example.com\\hook",
];

const GOOD_WEBHOOK_URIS: &[&str] = &[
    "https://example.com/hook?x=1",
    "http://10.0.0.1:8080/x?y=1&z=%20",
    // The seed tutorial's form: no path at all.
    "https://en7evajwhm11qbt.x.pipedream.net",
];

#[tokio::test]
async fn webhook_uris_are_stored_exactly_as_validated_over_graphql() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (i, uri) in HOSTILE_WEBHOOK_URIS.iter().enumerate() {
        let username = format!("hostile{i}");
        let body = app
            .create_customer(
                &admin,
                json!({ "username": username, "password": "hostile-password", "webhookUri": uri }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{uri:?}: {body}");
        assert_eq!(error_field(&body), "webhookUri", "{uri:?}: {body}");
        assert!(body["data"].is_null(), "{uri:?}: {body}");
    }
    assert_eq!(hostile_customers(&app).await, 0);

    for (i, uri) in GOOD_WEBHOOK_URIS.iter().enumerate() {
        let body = app
            .create_customer(
                &admin,
                json!({ "username": format!("hooked{i}"), "password": "hooked-password",
                        "webhookMethod": "POST", "webhookUri": uri }),
            )
            .await;
        let customer = &body["data"]["createCustomer"]["customer"];
        assert_eq!(customer["webhookUri"], *uri, "{body}");
        let id = customer["id"].as_str().unwrap();
        let read = app
            .gql(
                Some(&admin),
                "query($id: UUID!) { customer(id: $id) { webhookUri } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(read["data"]["customer"]["webhookUri"], *uri, "{read}");
    }
}

async fn rest_create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let reply = send(
        app.http()
            .post(format!("{}/v1.0/customers", app.address))
            .bearer_auth(token)
            .json(&body),
    )
    .await;
    (reply.status, reply.body)
}

/// Customers stored from the hostile URIs, which must all have been refused.
async fn hostile_customers(app: &TestApp) -> i64 {
    app.count(
        "SELECT count(*) FROM customers WHERE username LIKE 'hostile%'",
        &[],
    )
    .await
}

#[tokio::test]
async fn webhook_uris_are_stored_exactly_as_validated_over_rest() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (i, uri) in HOSTILE_WEBHOOK_URIS.iter().enumerate() {
        let (status, body) = rest_create(
            &app,
            &admin,
            json!({ "username": format!("hostile{i}"), "password": "hostile-password", "webhook_uri": uri }),
        )
        .await;
        assert_eq!(status, 400, "{uri:?}: {body}");
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{uri:?}: {body}");
        assert_eq!(body["error"]["field"], "webhook_uri", "{uri:?}: {body}");
    }
    for (i, uri) in GOOD_WEBHOOK_URIS.iter().enumerate() {
        let (status, body) = rest_create(
            &app,
            &admin,
            json!({ "username": format!("hooked{i}"), "password": "hooked-password",
                    "webhook_method": "POST", "webhook_uri": uri }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["webhook_uri"], *uri, "{body}");
    }
    let stored = sql_column(
        &app.db.client().await,
        "SELECT webhook_uri FROM customers WHERE username LIKE 'hooked%' ORDER BY username",
        &[],
    )
    .await;
    assert_eq!(stored, GOOD_WEBHOOK_URIS);
    assert_eq!(hostile_customers(&app).await, 0);
}

#[tokio::test]
async fn timestamps_outside_what_every_surface_can_read_back_are_refused_by_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_customer_ok(&admin, "dated", "a-long-password-1")
        .await;
    let client = app.db.client().await;
    for (column, value) in [
        ("tm_create", "10000-01-01 00:00:00+00"),
        ("tm_update", "9999-06-01 00:00:00+00"),
        ("tm_delete", "0100-01-01 00:00:00+00"),
    ] {
        let refused = client
            .execute(
                &format!("UPDATE customers SET {column} = $1::text::timestamptz WHERE id = $2::text::uuid"),
                &[&value, &id],
            )
            .await;
        let error = refused.expect_err(&format!("{column} = {value} was stored"));
        assert!(
            error.to_string().contains("in_range") || format!("{error:?}").contains("in_range"),
            "{error:?}"
        );
    }
    // The row still reads back, and so do its cursors.
    let body = app
        .gql(
            Some(&admin),
            "{ customers(first: 5) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}
