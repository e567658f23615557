//! createAccessKey, accessKeys, deleteAccessKey, and what a request made with
//! an access key (`Authorization: Bearer vb_…`) may do.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TestApp, error_code, error_field, eventually};

const ME: &str = "{ me { agent { id } customer { id } permissions } }";
/// A request that needs a valid credential (of a CUSTOMER_ADMIN or better)
/// but reads neither the agent nor the customer behind it, unlike `me`: so
/// a refusal proves the credential check itself, cache included, refused it.
const PROBE: &str = "{ accessKeys(first: 1) { nodes { id } } }";
const OWN_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id } }";

const LIST: &str = r#"query($customerId: UUID, $first: Int, $after: String, $last: Int, $before: String) {
  accessKeys(customerId: $customerId, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id customerId name tokenPrefix tmExpire tmLastUsed tmDelete } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

const LIST_WITH_COUNT: &str = r#"query($customerId: UUID) {
  accessKeys(customerId: $customerId) { nodes { id customerId } totalCount }
}"#;

const YEAR: i64 = 31_536_000;

fn time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a DateTime: {value}")),
    )
    .unwrap_or_else(|e| panic!("not RFC 3339: {value}: {e}"))
}

/// `vb_` and 43 URL-safe characters.
fn assert_key_format(key: &str) {
    assert!(key.starts_with("vb_"), "{key}");
    assert_eq!(key.len(), 46, "{key}");
    assert!(
        key[3..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{key}"
    );
}

/// Creates a customer and returns its id and a login token of its guest
/// agent (a CUSTOMER_ADMIN); the password is `<username>-password`.
async fn customer_with_admin(app: &TestApp, admin: &str, username: &str) -> (String, String) {
    let password = format!("{username}-password");
    let id = app.create_customer_ok(admin, username, &password).await;
    let token = app.token(username, &password).await;
    (id, token)
}

fn list_ids(body: &Value) -> Vec<String> {
    assert!(body["errors"].is_null(), "unexpected errors: {body}");
    let connection = &body["data"]["accessKeys"];
    let from_nodes: Vec<String> = connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {body}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    if let Some(edges) = connection["edges"].as_array() {
        let from_edges: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(from_edges, from_nodes, "edges and nodes agree: {body}");
    }
    from_nodes
}

/// Live keys of a customer as the database orders them: newest first.
async fn live_keys_in_order(client: &tokio_postgres::Client, customer_id: &str) -> Vec<String> {
    client
        .query(
            "SELECT id::text FROM access_keys WHERE customer_id = $1::text::uuid AND tm_delete IS NULL
              ORDER BY tm_create DESC, id DESC",
            &[&customer_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn create_access_key_returns_the_key_once_with_every_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer_ok(&admin, "keyed", "password1").await;
    let before = Utc::now();
    let body = app
        .create_access_key(
            &admin,
            json!({ "customerId": customer, "name": "ci", "detail": "deploys from CI" }),
        )
        .await;
    let after = Utc::now();
    let payload = &body["data"]["createAccessKey"];
    let key = payload["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no key in {body}"));
    assert_key_format(key);

    let access_key = &payload["accessKey"];
    assert!(access_key["id"].is_string(), "{body}");
    assert_eq!(access_key["customerId"], customer.as_str());
    assert_eq!(access_key["name"], "ci");
    assert_eq!(access_key["detail"], "deploys from CI");
    assert_eq!(access_key["tokenPrefix"], &key[..10]);
    assert!(access_key["tmLastUsed"].is_null(), "{body}");
    assert!(access_key["tmUpdate"].is_null(), "{body}");
    assert!(access_key["tmDelete"].is_null(), "{body}");
    let created = time(&access_key["tmCreate"]);
    assert!(
        created >= before - chrono::Duration::seconds(1)
            && created <= after + chrono::Duration::seconds(1),
        "tmCreate {created} is now"
    );
    let lifetime = time(&access_key["tmExpire"])
        .signed_duration_since(created)
        .num_seconds();
    assert!(
        (YEAR - 5..=YEAR + 5).contains(&lifetime),
        "default lifetime is one year, got {lifetime}s"
    );

    // The key itself is never shown again: the listing carries only the prefix.
    let list = app
        .gql(Some(&admin), LIST, json!({ "customerId": customer }))
        .await;
    assert_eq!(list_ids(&list), vec![access_key["id"].as_str().unwrap()]);
    assert_eq!(
        list["data"]["accessKeys"]["edges"][0]["node"]["tokenPrefix"],
        &key[..10]
    );
    assert!(!list.to_string().contains(key), "key in listing: {list}");
    assert!(
        !list.to_string().contains(&key[10..]),
        "key in listing: {list}"
    );
}

#[tokio::test]
async fn create_access_key_defaults_to_the_callers_own_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, customer_admin) = customer_with_admin(&app, &admin, "selfserve").await;

    let body = app.create_access_key(&customer_admin, json!({})).await;
    assert_eq!(
        body["data"]["createAccessKey"]["accessKey"]["customerId"],
        customer.as_str(),
        "{body}"
    );
    assert_eq!(body["data"]["createAccessKey"]["accessKey"]["name"], "");
    assert_eq!(body["data"]["createAccessKey"]["accessKey"]["detail"], "");
    let body = app
        .create_access_key(&customer_admin, json!({ "customerId": customer }))
        .await;
    assert_eq!(
        body["data"]["createAccessKey"]["accessKey"]["customerId"],
        customer.as_str(),
        "naming its own customer is allowed: {body}"
    );

    let platform = app.own_customer_id(&admin).await;
    let body = app.create_access_key(&admin, json!({})).await;
    assert_eq!(
        body["data"]["createAccessKey"]["accessKey"]["customerId"],
        platform.as_str(),
        "a super admin's key defaults to the platform's customer: {body}"
    );
}

#[tokio::test]
async fn create_access_key_honours_expire_seconds_within_bounds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for seconds in [86_400_i64, 157_680_000] {
        let body = app
            .create_access_key(&admin, json!({ "expireSeconds": seconds }))
            .await;
        let key = &body["data"]["createAccessKey"]["accessKey"];
        assert!(key.is_object(), "{seconds}: {body}");
        let lifetime = time(&key["tmExpire"])
            .signed_duration_since(time(&key["tmCreate"]))
            .num_seconds();
        assert!(
            (seconds - 5..=seconds + 5).contains(&lifetime),
            "expireSeconds {seconds} gave a lifetime of {lifetime}s"
        );
    }
}

#[tokio::test]
async fn create_access_key_rejects_each_invalid_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, customer_admin) = customer_with_admin(&app, &admin, "validated").await;
    let cases = [
        (json!({ "expireSeconds": 86_399 }), "expireSeconds"),
        (json!({ "expireSeconds": 157_680_001 }), "expireSeconds"),
        (json!({ "expireSeconds": 0 }), "expireSeconds"),
        (json!({ "expireSeconds": -1 }), "expireSeconds"),
        (json!({ "expireSeconds": i32::MIN }), "expireSeconds"),
        (json!({ "name": "n".repeat(256) }), "name"),
        (json!({ "detail": "d".repeat(4097) }), "detail"),
    ];
    for (input, field) in cases {
        for token in [&admin, &customer_admin] {
            let body = app.create_access_key(token, input.clone()).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input} -> {body}");
            assert_eq!(error_field(&body), field, "{input} -> {body}");
            assert!(body["data"].is_null(), "{body}");
        }
    }
    let db = app.db.client().await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM access_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "no invalid request wrote a key");
}

#[tokio::test]
async fn create_access_key_accepts_the_limits_exactly() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = app
        .create_access_key(
            &admin,
            json!({ "name": "n".repeat(255), "detail": "d".repeat(4096), "expireSeconds": 86_400 }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let key = &body["data"]["createAccessKey"]["accessKey"];
    assert_eq!(key["name"].as_str().map(str::len), Some(255));
    assert_eq!(key["detail"].as_str().map(str::len), Some(4096));
}

#[tokio::test]
async fn create_access_key_issues_distinct_random_keys() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut keys = HashSet::new();
    let mut prefixes = HashSet::new();
    for n in 0..8 {
        let body = app
            .create_access_key(&admin, json!({ "name": format!("key {n}") }))
            .await;
        let key = body["data"]["createAccessKey"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned();
        assert_key_format(&key);
        prefixes.insert(
            body["data"]["createAccessKey"]["accessKey"]["tokenPrefix"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        keys.insert(key);
    }
    assert_eq!(keys.len(), 8, "every key is new");
    assert_eq!(prefixes.len(), 8, "prefixes tell keys apart");
}

#[tokio::test]
async fn create_access_key_is_forbidden_beyond_the_callers_own_admin_rights() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alpha, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (beta, _) = customer_with_admin(&app, &admin, "beta").await;
    app.seed_agent("alpha", "alpha-manager", 64).await;
    app.seed_agent("alpha", "alpha-agent", 16).await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;
    let (_, alpha_key) = app
        .create_access_key_ok(&alpha_admin, json!({ "name": "alpha key" }))
        .await;
    let (_, platform_key) = app
        .create_access_key_ok(&admin, json!({ "name": "platform key" }))
        .await;

    let cases = [
        (
            &alpha_admin,
            json!({ "customerId": beta }),
            "another customer",
        ),
        (&manager, json!({}), "a CUSTOMER_MANAGER"),
        (&agent, json!({}), "a CUSTOMER_AGENT"),
        (&alpha_key, json!({}), "an access key"),
        (
            &alpha_key,
            json!({ "customerId": alpha }),
            "an access key, own customer",
        ),
        (&platform_key, json!({}), "a key of the platform customer"),
        (
            &platform_key,
            json!({ "customerId": beta }),
            "a key of the platform customer, for another",
        ),
    ];
    for (token, input, who) in cases {
        let body = app.create_access_key(token, input.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
        assert!(body["data"].is_null(), "{who}: {body}");
    }
    let body = app
        .gql(
            None,
            "mutation { createAccessKey(input: {}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    let db = app.db.client().await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM access_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2, "only the two allowed keys exist");
}

#[tokio::test]
async fn create_access_key_is_not_found_for_unknown_or_deleted_customers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let gone = app.create_customer_ok(&admin, "gone", "password1").await;
    let deleted = app.delete_customer(&admin, &gone).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    for customer in [uuid::Uuid::new_v4().to_string(), gone] {
        let body = app
            .create_access_key(&admin, json!({ "customerId": customer }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{customer}: {body}");
    }
}

#[tokio::test]
async fn access_keys_are_stored_only_as_a_sha256_hash_and_a_prefix() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, key) = app
        .create_access_key_ok(&admin, json!({ "name": "stored" }))
        .await;
    let db = app.db.client().await;
    let row = db
        .query_one(
            "SELECT row_to_json(k)::text, token_hash::text, token_prefix FROM access_keys k WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let (whole, hash, prefix): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let expected = format!("{:x}", Sha256::digest(key.as_bytes()));
    assert_eq!(
        hash.trim_start_matches("\\x").to_lowercase(),
        expected,
        "token_hash is the SHA-256 of the key"
    );
    assert_eq!(prefix, key[..10]);
    let secret = &key[10..];
    assert!(!whole.contains(secret), "key stored in clear: {whole}");

    // Nor is it anywhere else in the database.
    let tables: Vec<String> = db
        .query(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tables.contains(&"access_keys".to_owned()), "{tables:?}");
    for table in tables {
        let hits: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE '%' || $1 || '%'"),
                &[&secret],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(hits, 0, "key found in table {table}");
    }
}

#[tokio::test]
async fn access_key_acts_as_customer_admin_of_its_own_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (holder, _) = customer_with_admin(&app, &admin, "keyholder").await;
    let neighbour = app
        .create_customer_ok(&admin, "neighbour", "password1")
        .await;
    let (key_id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": holder }))
        .await;

    let me = app.gql(Some(&key), ME, json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
    assert!(
        me["data"]["me"]["agent"].is_null(),
        "no agent for a key: {me}"
    );
    assert_eq!(me["data"]["me"]["customer"]["id"], holder.as_str());
    assert_eq!(me["data"]["me"]["permissions"], json!(["CUSTOMER_ADMIN"]));

    let own = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": holder }))
        .await;
    assert_eq!(own["data"]["customer"]["id"], holder.as_str(), "{own}");
    let listed = app.gql(Some(&key), LIST, json!({})).await;
    assert_eq!(list_ids(&listed), vec![key_id]);

    let other = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": neighbour }))
        .await;
    assert_eq!(error_code(&other), "FORBIDDEN", "{other}");
    let customers = app
        .gql(Some(&key), "{ customers { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error_code(&customers), "FORBIDDEN", "{customers}");
    let create = app
        .create_customer(
            &key,
            json!({ "username": "by-key", "password": "password1" }),
        )
        .await;
    assert_eq!(error_code(&create), "FORBIDDEN", "{create}");
    let delete = app.delete_customer(&key, &neighbour).await;
    assert_eq!(error_code(&delete), "FORBIDDEN", "{delete}");
    let listed = app
        .gql(Some(&key), LIST, json!({ "customerId": neighbour }))
        .await;
    assert_eq!(error_code(&listed), "FORBIDDEN", "{listed}");
}

#[tokio::test]
async fn access_key_of_the_platform_customer_is_not_a_super_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let platform = app.own_customer_id(&admin).await;
    let other = app
        .create_customer_ok(&admin, "bystander", "password1")
        .await;
    let (_, key) = app.create_access_key_ok(&admin, json!({})).await;

    let me = app.gql(Some(&key), ME, json!({})).await;
    assert_eq!(
        me["data"]["me"]["customer"]["id"],
        platform.as_str(),
        "{me}"
    );
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["CUSTOMER_ADMIN"]),
        "never PROJECT_SUPER_ADMIN: {me}"
    );
    let customers = app
        .gql(Some(&key), "{ customers { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error_code(&customers), "FORBIDDEN", "{customers}");
    let create = app
        .create_customer(
            &key,
            json!({ "username": "by-key", "password": "password1" }),
        )
        .await;
    assert_eq!(error_code(&create), "FORBIDDEN", "{create}");
    let read = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": other }))
        .await;
    assert_eq!(error_code(&read), "FORBIDDEN", "{read}");
    let delete = app.delete_customer(&key, &other).await;
    assert_eq!(error_code(&delete), "FORBIDDEN", "{delete}");
    let listed = app
        .gql(Some(&key), LIST, json!({ "customerId": other }))
        .await;
    assert_eq!(error_code(&listed), "FORBIDDEN", "{listed}");
}

#[tokio::test]
async fn access_key_expired_is_unauthenticated_but_still_listed() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (customer, _) = customer_with_admin(&app, &admin, "expiring").await;
    let (id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    let db = app.db.client().await;
    db.execute(
        "UPDATE access_keys SET tm_expire = now() - interval '1 second' WHERE id = $1::text::uuid",
        &[&id],
    )
    .await
    .unwrap();
    for (server, name) in [(&app, "app"), (&replica, "replica")] {
        let body = server.gql(Some(&key), PROBE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
    }
    let listed = app
        .gql(Some(&admin), LIST, json!({ "customerId": customer }))
        .await;
    assert_eq!(list_ids(&listed), vec![id], "expired keys are still listed");
}

/// An operator's direct SQL change reaches warm caches through the trigger's
/// NOTIFY, which is asynchronous: it must land within moments, not at once.
/// Each server acknowledges it once its cache is dropped; from then on the
/// very next request is refused. (Changes made through the API wait for
/// every replica's acknowledgement: see
/// `delete_access_key_is_refused_at_once_on_every_replica`.)
#[tokio::test]
async fn access_key_expired_by_sql_stops_working_on_warm_caches_promptly() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (customer, _) = customer_with_admin(&app, &admin, "expiring").await;
    let (id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    for server in [&app, &replica] {
        let body = server.gql(Some(&key), PROBE, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // Waits (at most 5 s) for both servers' acknowledgements.
    let expired = app
        .change_credentials_in_sql(
            "access_keys",
            "UPDATE access_keys SET tm_expire = now() - interval '1 second' \
             WHERE id = $1::text::uuid RETURNING id::text",
            &[&id],
        )
        .await;
    assert_eq!(expired, vec![id]);
    for (server, name) in [(&app, "app"), (&replica, "replica")] {
        let body = server.gql(Some(&key), PROBE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
    }
}

#[tokio::test]
async fn access_key_use_sets_tm_last_used_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, _) = customer_with_admin(&app, &admin, "lastused").await;
    let (id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    let db = app.db.client().await;
    let last_used = |id: String| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT tm_last_used::text, tm_last_used > now() - interval '10 seconds' FROM access_keys WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .map(|row| (row.get::<_, Option<String>>(0), row.get::<_, Option<bool>>(1)))
            .unwrap()
        }
    };
    assert_eq!(last_used(id.clone()).await, (None, None), "unused so far");

    let body = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": customer }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // The write happens in the background, possibly after the response.
    let first = eventually(
        "the first use sets tm_last_used",
        std::time::Duration::from_secs(10),
        || async {
            let found = last_used(id.clone()).await;
            found.0.is_some().then_some(found)
        },
    )
    .await;
    assert_eq!(first.1, Some(true), "tm_last_used is now: {first:?}");

    for _ in 0..3 {
        let body = app.gql(Some(&key), ME, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // A write those uses queued in the background could land after their
    // responses. The first use of another key queues one after them: once
    // it has landed, theirs would have too.
    let (fence_id, fence) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    let body = app.gql(Some(&fence), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    eventually(
        "the other key's first use sets its tm_last_used",
        std::time::Duration::from_secs(10),
        || async { last_used(fence_id.clone()).await.0 },
    )
    .await;
    assert_eq!(
        last_used(id.clone()).await,
        first,
        "uses within the minute write nothing"
    );

    let listed = app
        .gql(Some(&admin), LIST, json!({ "customerId": customer }))
        .await;
    let shown = listed["data"]["accessKeys"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["node"]["id"] == id.as_str())
        .map(|edge| edge["node"]["tmLastUsed"].clone())
        .unwrap_or_else(|| panic!("{id} listed: {listed}"));
    assert!(shown.is_string(), "tmLastUsed is exposed: {listed}");
}

#[tokio::test]
async fn access_keys_lists_the_live_keys_of_the_callers_customer_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alpha, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (beta, beta_admin) = customer_with_admin(&app, &admin, "beta").await;
    let mut alpha_keys = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..4 {
        let (id, key) = app
            .create_access_key_ok(&alpha_admin, json!({ "name": format!("alpha {n}") }))
            .await;
        alpha_keys.push(id);
        secrets.push(key);
    }
    let (beta_key, _) = app.create_access_key_ok(&beta_admin, json!({})).await;
    let deleted = app.delete_access_key(&alpha_admin, &alpha_keys[1]).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    let db = app.db.client().await;
    db.execute(
        "UPDATE access_keys SET tm_expire = now() - interval '1 day' WHERE id = $1::text::uuid",
        &[&alpha_keys[2]],
    )
    .await
    .unwrap();

    let expected = vec![
        alpha_keys[3].clone(),
        alpha_keys[2].clone(),
        alpha_keys[0].clone(),
    ];
    assert_eq!(live_keys_in_order(&db, &alpha).await, expected);

    let as_admin = app.gql(Some(&alpha_admin), LIST, json!({})).await;
    assert_eq!(list_ids(&as_admin), expected, "newest first, live only");
    for edge in as_admin["data"]["accessKeys"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["customerId"], alpha.as_str());
        assert!(edge["node"]["tmDelete"].is_null());
    }
    let own_id = app
        .gql(Some(&alpha_admin), LIST, json!({ "customerId": alpha }))
        .await;
    assert_eq!(list_ids(&own_id), expected, "naming its own customer");
    let as_key = app.gql(Some(&secrets[0]), LIST, json!({})).await;
    assert_eq!(
        list_ids(&as_key),
        expected,
        "a key of the customer lists too"
    );
    let as_super = app
        .gql(Some(&admin), LIST, json!({ "customerId": alpha }))
        .await;
    assert_eq!(
        list_ids(&as_super),
        expected,
        "super admins list any customer's"
    );
    let beta_list = app.gql(Some(&beta_admin), LIST, json!({})).await;
    assert_eq!(list_ids(&beta_list), vec![beta_key.clone()]);
    let beta_by_super = app
        .gql(Some(&admin), LIST, json!({ "customerId": beta }))
        .await;
    assert_eq!(list_ids(&beta_by_super), vec![beta_key]);
    let platform = app.gql(Some(&admin), LIST_WITH_COUNT, json!({})).await;
    assert_eq!(
        list_ids(&platform),
        Vec::<String>::new(),
        "without customerId a super admin lists the platform's own keys"
    );
    assert_eq!(platform["data"]["accessKeys"]["totalCount"], 0);

    let counted = app
        .gql(Some(&alpha_admin), LIST_WITH_COUNT, json!({}))
        .await;
    assert_eq!(counted["data"]["accessKeys"]["totalCount"], 3, "{counted}");

    for body in [&as_admin, &own_id, &as_key, &as_super] {
        let text = body.to_string();
        for secret in &secrets {
            assert!(!text.contains(&secret[10..]), "key in a listing: {text}");
        }
    }
}

#[tokio::test]
async fn access_keys_pages_with_keyset_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, customer_admin) = customer_with_admin(&app, &admin, "paged").await;
    let db = app.db.client().await;
    // 25 keys, three sharing each timestamp so the id tie-break decides.
    db.execute(
        "INSERT INTO access_keys (id, customer_id, name, token_hash, token_prefix, tm_expire, tm_create)
         SELECT gen_random_uuid(), $1::text::uuid, 'seed ' || n,
                md5(random()::text) || md5(random()::text), 'vb_seeded',
                now() + interval '1 day',
                timestamptz '2024-01-01 00:00:00+00' + (n / 3) * interval '1 second'
           FROM generate_series(1, 25) AS n",
        &[&customer],
    )
    .await
    .unwrap();
    for n in 0..2 {
        app.create_access_key_ok(&customer_admin, json!({ "name": format!("api {n}") }))
            .await;
    }
    let expected = live_keys_in_order(&db, &customer).await;
    assert_eq!(expected.len(), 27);

    let default = app.gql(Some(&customer_admin), LIST, json!({})).await;
    assert_eq!(
        list_ids(&default),
        expected[..20],
        "default page: the 20 newest"
    );
    assert_eq!(
        default["data"]["accessKeys"]["pageInfo"]["hasNextPage"],
        true
    );

    // Forward in pages of 4, with a key created between two fetches.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = app
            .gql(
                Some(&customer_admin),
                LIST,
                json!({ "first": 4, "after": after }),
            )
            .await;
        let ids = list_ids(&body);
        let info = &body["data"]["accessKeys"]["pageInfo"];
        let edges = body["data"]["accessKeys"]["edges"].as_array().unwrap();
        assert_eq!(info["endCursor"], edges.last().unwrap()["cursor"], "{body}");
        seen.extend(ids);
        pages += 1;
        if pages == 1 {
            app.create_access_key_ok(&customer_admin, json!({ "name": "late" }))
                .await;
        }
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen, expected, "no key skipped or repeated going forward");

    // Backward in pages of 5, from the oldest end.
    let expected = live_keys_in_order(&db, &customer).await;
    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let body = app
            .gql(
                Some(&customer_admin),
                LIST,
                json!({ "last": 5, "before": before }),
            )
            .await;
        let mut ids = list_ids(&body);
        ids.extend(seen);
        seen = ids;
        let info = &body["data"]["accessKeys"]["pageInfo"];
        if info["hasPreviousPage"] != true {
            break;
        }
        before = info["startCursor"].as_str().map(str::to_owned);
        assert!(seen.len() <= expected.len(), "paging does not end");
    }
    assert_eq!(seen, expected, "backward gives the same order");
}

#[tokio::test]
async fn access_keys_bounds_page_sizes_and_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, customer_admin) = customer_with_admin(&app, &admin, "bounded").await;
    app.create_access_key_ok(&customer_admin, json!({})).await;
    let full = app
        .gql(Some(&customer_admin), LIST, json!({ "first": 100 }))
        .await;
    assert_eq!(list_ids(&full).len(), 1);
    let full = app
        .gql(Some(&customer_admin), LIST, json!({ "last": 100 }))
        .await;
    assert_eq!(list_ids(&full).len(), 1);
    for (variables, field) in [
        (json!({ "first": 101 }), Some("first")),
        (json!({ "first": -1 }), Some("first")),
        (json!({ "last": 101 }), Some("last")),
        (json!({ "last": -1 }), Some("last")),
        (json!({ "first": 1, "last": 1 }), None),
        (json!({ "after": "not-a-cursor" }), Some("after")),
        (json!({ "before": "bm90LWEtY3Vyc29y" }), Some("before")),
    ] {
        let body = app
            .gql(Some(&customer_admin), LIST, variables.clone())
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
        if let Some(field) = field {
            assert_eq!(error_field(&body), field, "{variables}: {body}");
        }
        assert!(body["data"].is_null(), "{variables}: {body}");
    }
}

#[tokio::test]
async fn access_keys_is_forbidden_to_other_customers_and_lesser_agents() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (beta, beta_admin) = customer_with_admin(&app, &admin, "beta").await;
    app.create_access_key_ok(&beta_admin, json!({})).await;
    let (_, alpha_key) = app.create_access_key_ok(&alpha_admin, json!({})).await;
    app.seed_agent("alpha", "alpha-manager", 64).await;
    app.seed_agent("alpha", "alpha-agent", 16).await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;

    for (token, variables, who) in [
        (
            &alpha_admin,
            json!({ "customerId": beta }),
            "another customer's admin",
        ),
        (
            &alpha_key,
            json!({ "customerId": beta }),
            "another customer's key",
        ),
        (&manager, json!({}), "a CUSTOMER_MANAGER"),
        (&agent, json!({}), "a CUSTOMER_AGENT"),
    ] {
        let body = app.gql(Some(token), LIST, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
        assert!(body["data"].is_null(), "{who}: {body}");
    }
    let body = app.gql(None, LIST, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn delete_access_key_revokes_it_idempotently() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, customer_admin) = customer_with_admin(&app, &admin, "revoker").await;
    let (id, key) = app
        .create_access_key_ok(&customer_admin, json!({ "name": "short-lived" }))
        .await;
    let me = app.gql(Some(&key), ME, json!({})).await;
    assert!(me["errors"].is_null(), "{me}");

    let first = app.delete_access_key(&customer_admin, &id).await;
    let deleted = &first["data"]["deleteAccessKey"]["accessKey"];
    assert_eq!(deleted["id"], id.as_str(), "{first}");
    assert_eq!(deleted["customerId"], customer.as_str());
    assert_eq!(deleted["name"], "short-lived");
    assert!(deleted["tmDelete"].is_string(), "{first}");

    let body = app.gql(Some(&key), PROBE, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    let again = app.delete_access_key(&customer_admin, &id).await;
    assert_eq!(
        again["data"]["deleteAccessKey"]["accessKey"], *deleted,
        "deleting again returns it unchanged: {again}"
    );

    let db = app.db.client().await;
    let soft: bool = db
        .query_one(
            "SELECT tm_delete IS NOT NULL FROM access_keys WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(soft, "the row stays, marked deleted");
    let listed = app.gql(Some(&customer_admin), LIST, json!({})).await;
    assert!(list_ids(&listed).is_empty(), "{listed}");
}

#[tokio::test]
async fn delete_access_key_checks_who_may_revoke() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (_, beta_admin) = customer_with_admin(&app, &admin, "beta").await;
    app.seed_agent("alpha", "alpha-manager", 64).await;
    app.seed_agent("alpha", "alpha-agent", 16).await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;
    let mut keys = Vec::new();
    for _ in 0..4 {
        keys.push(app.create_access_key_ok(&alpha_admin, json!({})).await);
    }
    let (_, beta_key) = app.create_access_key_ok(&beta_admin, json!({})).await;

    for (token, who) in [
        (&beta_admin, "another customer's admin"),
        (&beta_key, "another customer's key"),
        (&manager, "a CUSTOMER_MANAGER"),
        (&agent, "a CUSTOMER_AGENT"),
    ] {
        let body = app.delete_access_key(token, &keys[0].0).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
    }
    let still = app.gql(Some(&keys[0].1), PROBE, json!({})).await;
    assert!(
        still["errors"].is_null(),
        "refused deletes changed nothing: {still}"
    );

    let unknown = app
        .delete_access_key(&alpha_admin, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");

    for (token, target, who) in [
        (&keys[1].1, &keys[2].0, "a key of the same customer"),
        (&admin, &keys[3].0, "a super admin"),
        (&alpha_admin, &keys[0].0, "the customer's admin"),
    ] {
        let body = app.delete_access_key(token, target).await;
        assert!(
            body["data"]["deleteAccessKey"]["accessKey"]["tmDelete"].is_string(),
            "{who}: {body}"
        );
    }
    let body = app.delete_access_key(&keys[1].1, &keys[1].0).await;
    assert!(
        body["data"]["deleteAccessKey"]["accessKey"]["tmDelete"].is_string(),
        "a key may revoke itself: {body}"
    );
    let db = app.db.client().await;
    let live: i64 = db
        .query_one(
            "SELECT count(*) FROM access_keys WHERE tm_delete IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1, "only beta's key is left");
}

#[tokio::test]
async fn delete_access_key_is_refused_at_once_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (customer, customer_admin) = customer_with_admin(&app, &admin, "replicated").await;
    let (first_id, first) = app
        .create_access_key_ok(&customer_admin, json!({ "name": "first" }))
        .await;
    let (second_id, second) = app
        .create_access_key_ok(&customer_admin, json!({ "name": "second" }))
        .await;
    // Warm both processes' caches with both keys.
    for server in [&app, &replica] {
        for key in [&first, &second] {
            let body = server
                .gql(Some(key), OWN_CUSTOMER, json!({ "id": customer }))
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
    }

    // Revoked on one process, refused on the other at the very next request.
    let body = app.delete_access_key(&customer_admin, &first_id).await;
    assert!(body["errors"].is_null(), "{body}");
    for (server, name) in [(&replica, "replica"), (&app, "app")] {
        let body = server.gql(Some(&first), PROBE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
    }
    let body = replica.delete_access_key(&customer_admin, &second_id).await;
    assert!(body["errors"].is_null(), "{body}");
    for (server, name) in [(&app, "app"), (&replica, "replica")] {
        let body = server.gql(Some(&second), PROBE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
    }
}
