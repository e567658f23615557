//! createCustomer, customer(id), deleteCustomer. (What deleting a customer
//! revokes is in `revocation.rs`.)

use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, error_field};

const CUSTOMER_QUERY: &str = "query($id: UUID!) { customer(id: $id) { id username name tmDelete guestAgent { username tmDelete } } }";

#[tokio::test]
async fn create_customer_returns_every_field_and_a_guest_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let permission = "03796e14-7cb4-11ec-9dba-e72023efd1c6";
    let body = app
        .create_customer(
            &admin,
            json!({
                "username": "test1", "password": "ee5f3d14-5ac6-11ed", "name": "test 1", "detail": "test user 1",
                "webhookMethod": "POST", "webhookUri": "https://en7evajwhm11qbt.x.pipedream.net",
                "lineSecret": "ba5f0575d826d5b4a051112a145ef1391", "lineToken": "tsfIiDB/2cGI5sssaIop7S311SS4",
                "permissionIds": [permission],
            }),
        )
        .await;
    let customer = &body["data"]["createCustomer"]["customer"];
    assert_eq!(customer["username"], "test1", "{body}");
    assert_eq!(customer["name"], "test 1");
    assert_eq!(customer["detail"], "test user 1");
    assert_eq!(customer["webhookMethod"], "POST");
    assert_eq!(
        customer["webhookUri"],
        "https://en7evajwhm11qbt.x.pipedream.net"
    );
    assert_eq!(customer["lineSecret"], "ba5f0575d826d5b4a051112a145ef1391");
    assert_eq!(customer["lineToken"], "tsfIiDB/2cGI5sssaIop7S311SS4");
    assert_eq!(customer["permissionIds"], json!([permission]));
    assert!(customer["tmCreate"].as_str().unwrap().ends_with("+00:00"));
    assert!(customer["tmUpdate"].is_null() && customer["tmDelete"].is_null());

    let guest = &customer["guestAgent"];
    assert_eq!(guest["username"], "test1");
    assert_eq!(guest["name"], "guest");
    assert_eq!(guest["permission"], 32);
    assert_eq!(guest["permissions"], json!(["CUSTOMER_ADMIN"]));
    assert_eq!(guest["customerId"], customer["id"]);

    // The new customer can log in at once, as its guest agent.
    let login = app.login("test1", "ee5f3d14-5ac6-11ed").await;
    assert_eq!(
        login["data"]["login"]["agent"]["id"], guest["id"],
        "{login}"
    );
}

#[tokio::test]
async fn create_customer_defaults_optional_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = app
        .create_customer(
            &admin,
            json!({ "username": "minimal", "password": "password1" }),
        )
        .await;
    let customer = &body["data"]["createCustomer"]["customer"];
    assert_eq!(customer["name"], "", "{body}");
    assert_eq!(customer["detail"], "");
    assert!(customer["webhookMethod"].is_null());
    assert_eq!(customer["webhookUri"], "");
    assert_eq!(customer["permissionIds"], json!([]));
}

#[tokio::test]
async fn create_customer_stores_the_password_only_as_an_argon2id_hash() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_customer_ok(&admin, "hashme", "plain-text-password")
        .await;
    let db = app.db.client().await;
    let row = db
        .query_one(
            "SELECT password_hash FROM agents WHERE customer_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let hash: String = row.get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("plain-text-password"));
}

#[tokio::test]
async fn create_customer_rejects_each_invalid_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let long = |n: usize| "x".repeat(n);
    // A valid input with `field` set to `value`.
    let with = |field: &str, value: Value| {
        let mut input = json!({ "username": "okname", "password": "password1" });
        input[field] = value;
        input
    };
    let cases = [
        (with("username", json!("ab")), "username"),
        (with("username", json!(long(65))), "username"),
        (with("username", json!("has space")), "username"),
        (with("username", json!("semi;colon")), "username"),
        (with("password", json!("short")), "password"),
        (with("password", json!(long(257))), "password"),
        (with("name", json!(long(256))), "name"),
        (with("detail", json!(long(4097))), "detail"),
        (with("webhookUri", json!("not a url")), "webhookUri"),
        (
            with("webhookUri", json!("ftp://example.com/x")),
            "webhookUri",
        ),
        (
            with("webhookUri", json!(format!("https://e.com/{}", long(1020)))),
            "webhookUri",
        ),
        (with("lineSecret", json!(long(1024))), "lineSecret"),
        (with("lineToken", json!(long(1024))), "lineToken"),
        (with("name", json!("nul\u{0}byte")), "name"),
        (
            with(
                "permissionIds",
                json!(
                    (0..65)
                        .map(|_| uuid::Uuid::new_v4().to_string())
                        .collect::<Vec<_>>()
                ),
            ),
            "permissionIds",
        ),
    ];
    for (input, field) in cases {
        let body = app.create_customer(&admin, input.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input} -> {body}");
        assert_eq!(error_field(&body), field, "{input} -> {body}");
    }
    // Nothing was written by any of them.
    let count = app.count("SELECT count(*) FROM customers", &[]).await;
    assert_eq!(count, 1, "only the platform customer exists");
}

#[tokio::test]
async fn create_customer_accepts_the_limits_exactly() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = app
        .create_customer(
            &admin,
            json!({
                "username": "u".repeat(64), "password": "p".repeat(256), "name": "n".repeat(255),
                "detail": "d".repeat(4096), "webhookUri": format!("https://e.com/{}", "a".repeat(1023 - 14)),
                "lineSecret": "s".repeat(1023), "lineToken": "t".repeat(1023),
                "permissionIds": (0..64).map(|_| uuid::Uuid::new_v4().to_string()).collect::<Vec<_>>(),
            }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn create_customer_conflicts_on_a_taken_username_in_any_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "Taken.Name", "password1")
        .await;
    for username in ["Taken.Name", "taken.name", "TAKEN.NAME", "admin", "ADMIN"] {
        let body = app
            .create_customer(
                &admin,
                json!({ "username": username, "password": "password1" }),
            )
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{username}: {body}");
        assert_eq!(error_field(&body), "username");
    }
}

/// Each create hashes its password first, so unchecked they could reach
/// the database one after the other. A lock on the table (inserts wait for
/// it, reads do not) holds every one of them at its INSERT, sent through
/// two server processes, until all twelve are there; then they all go at
/// once.
#[tokio::test]
async fn create_customer_race_for_one_username_has_one_winner_across_processes() {
    let app = TestApp::spawn_with(|c| {
        // Room for all twelve at the database at once, and no statement
        // timeout while they wait there for the test.
        c.db_pool_size = 16;
        c.db_statement_timeout_ms = 60_000;
    })
    .await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let gate = app.db.client().await;
    gate.batch_execute("BEGIN; LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let attempts = futures_util::future::join_all((0..12).map(|i| {
        let server = if i % 2 == 0 { &app } else { &replica };
        let username = if i % 3 == 0 { "racer" } else { "RACER" };
        server.create_customer(
            &admin,
            json!({ "username": username, "password": "password1" }),
        )
    }));
    let release = async {
        app.until_statements_wait_on_locks(12).await;
        gate.batch_execute("COMMIT").await.unwrap();
    };
    let (bodies, ()) = tokio::join!(attempts, release);
    let winners = bodies.iter().filter(|b| b["errors"].is_null()).count();
    let conflicts = bodies
        .iter()
        .filter(|b| !b["errors"].is_null() && error_code(b) == "CONFLICT")
        .count();
    assert_eq!((winners, conflicts), (1, 11), "{bodies:?}");
    let rows = (
        app.count(
            "SELECT count(*) FROM customers WHERE lower(username) = 'racer'",
            &[],
        )
        .await,
        app.count(
            "SELECT count(*) FROM agents WHERE lower(username) = 'racer'",
            &[],
        )
        .await,
    );
    assert_eq!(
        rows,
        (1, 1),
        "one customer with its guest agent, nothing else"
    );
}

#[tokio::test]
async fn create_customer_frees_the_username_of_a_deleted_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app.create_customer_ok(&admin, "reused", "password1").await;
    app.delete_customer(&admin, &first).await;
    let second = app.create_customer_ok(&admin, "reused", "password2").await;
    assert_ne!(first, second);
}

#[tokio::test]
async fn create_customer_needs_a_super_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "tenant", "password1").await;
    let tenant = app.token("tenant", "password1").await;

    let body = app
        .create_customer(
            &tenant,
            json!({ "username": "sneaky", "password": "password1" }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app.gql(None, "mutation { createCustomer(input: {username: \"anon\", password: \"password1\"}) { customer { id } } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn customer_is_visible_to_super_admins_and_its_own_admins_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mine = app.create_customer_ok(&admin, "mine", "password1").await;
    let theirs = app.create_customer_ok(&admin, "theirs", "password1").await;
    let own_admin = app.token("mine", "password1").await;

    let body = app
        .gql(Some(&own_admin), CUSTOMER_QUERY, json!({ "id": mine }))
        .await;
    assert_eq!(body["data"]["customer"]["username"], "mine", "{body}");
    assert_eq!(body["data"]["customer"]["guestAgent"]["username"], "mine");

    let body = app
        .gql(Some(&own_admin), CUSTOMER_QUERY, json!({ "id": theirs }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let body = app
        .gql(Some(&admin), CUSTOMER_QUERY, json!({ "id": theirs }))
        .await;
    assert_eq!(body["data"]["customer"]["username"], "theirs", "{body}");

    let body = app.gql(None, CUSTOMER_QUERY, json!({ "id": mine })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn customer_reader_rules_follow_the_permission_bits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_customer_ok(&admin, "bits", "password1").await;
    // One token throughout, its principal cached by its first use: a change
    // made in SQL must reach the cache before the next request.
    let token = app.token("bits", "password1").await;
    let body = app
        .gql(Some(&token), CUSTOMER_QUERY, json!({ "id": id }))
        .await;
    assert_eq!(body["data"]["customer"]["id"], id.as_str(), "{body}");
    for (permission, allowed) in [(16, false), (64, true), (32, true), (1, false)] {
        let changed = app
            .change_credentials_in_sql(
                "agents",
                "UPDATE agents SET permission = $1 WHERE lower(username) = 'bits' RETURNING id::text",
                &[&permission],
            )
            .await;
        assert_eq!(changed.len(), 1);
        let body = app
            .gql(Some(&token), CUSTOMER_QUERY, json!({ "id": id }))
            .await;
        if allowed {
            assert_eq!(
                body["data"]["customer"]["id"],
                id.as_str(),
                "permission {permission}: {body}"
            );
        } else {
            assert_eq!(
                error_code(&body),
                "FORBIDDEN",
                "permission {permission}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn customer_with_an_unknown_id_is_null_and_a_malformed_id_is_bad_input() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = app
        .gql(
            Some(&admin),
            CUSTOMER_QUERY,
            json!({ "id": uuid::Uuid::new_v4() }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["customer"].is_null());

    let body = app
        .gql(Some(&admin), CUSTOMER_QUERY, json!({ "id": "not-a-uuid" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn delete_customer_soft_deletes_it_with_its_agents() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_customer_ok(&admin, "doomed", "password1").await;

    let body = app.delete_customer(&admin, &id).await;
    let deleted = &body["data"]["deleteCustomer"]["customer"];
    assert_eq!(deleted["id"], id.as_str(), "{body}");
    assert!(deleted["tmDelete"].is_string());
    assert_eq!(deleted["tmUpdate"], deleted["tmDelete"]);

    // Still readable by a super admin, with tmDelete set and its agent deleted too.
    let body = app
        .gql(Some(&admin), CUSTOMER_QUERY, json!({ "id": id }))
        .await;
    assert_eq!(
        body["data"]["customer"]["tmDelete"], deleted["tmDelete"],
        "{body}"
    );
    assert_eq!(
        body["data"]["customer"]["guestAgent"]["tmDelete"],
        deleted["tmDelete"]
    );

    // Nothing was removed from the database.
    let live_agents = app
        .count(
            "SELECT count(*) FROM agents WHERE customer_id = $1::text::uuid AND tm_delete IS NULL",
            &[&id],
        )
        .await;
    let rows = app
        .count(
            "SELECT count(*) FROM customers WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    assert_eq!((live_agents, rows), (0, 1));
}

#[tokio::test]
async fn delete_customer_is_idempotent() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_customer_ok(&admin, "twice", "password1").await;
    let first = app.delete_customer(&admin, &id).await;
    let second = app.delete_customer(&admin, &id).await;
    assert!(second["errors"].is_null(), "{second}");
    assert_eq!(
        first["data"], second["data"],
        "the second delete returns it unchanged"
    );
}

#[tokio::test]
async fn delete_customer_refuses_unknown_ids_the_platform_and_non_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let body = app
        .delete_customer(&admin, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let platform = app.own_customer_id(&admin).await;
    let body = app.delete_customer(&admin, &platform).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let id = app
        .create_customer_ok(&admin, "selfdelete", "password1")
        .await;
    let tenant = app.token("selfdelete", "password1").await;
    let body = app.delete_customer(&tenant, &id).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app.delete_customer(&admin, &id).await;
    assert!(
        body["errors"].is_null(),
        "still deletable by the admin: {body}"
    );
}
