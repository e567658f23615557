//! createAccessKey: what it returns and stores, what it refuses, and who
//! may call it.

use std::collections::HashSet;

use chrono::Utc;
use serde_json::json;

use super::{LIST, YEAR, assert_key_format, customer_with_admin, list_ids, time};
use crate::harness::{TestApp, error_code, error_field, sha256, sql_column, sql_count};

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
    let count = app.count("SELECT count(*) FROM access_keys", &[]).await;
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

    let count = app.count("SELECT count(*) FROM access_keys", &[]).await;
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
    let expected = sha256(&key);
    assert_eq!(
        hash.trim_start_matches("\\x").to_lowercase(),
        expected,
        "token_hash is the SHA-256 of the key"
    );
    assert_eq!(prefix, key[..10]);
    let secret = &key[10..];
    assert!(!whole.contains(secret), "key stored in clear: {whole}");

    // Nor is it anywhere else in the database.
    let tables = sql_column(
        &db,
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        &[],
    )
    .await;
    assert!(tables.contains(&"access_keys".to_owned()), "{tables:?}");
    for table in tables {
        let hits = sql_count(
            &db,
            &format!("SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE '%' || $1 || '%'"),
            &[&secret],
        )
        .await;
        assert_eq!(hits, 0, "key found in table {table}");
    }
}
