//! login, me, credentials, and bootstrap.

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, error_code};

const ME: &str =
    "{ me { agent { id username permissions } customer { id username } permissions } }";

#[tokio::test]
async fn login_returns_a_token_that_authenticates_me() {
    let app = TestApp::spawn().await;
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let login = &body["data"]["login"];
    assert_eq!(login["agent"]["username"], ADMIN_USERNAME, "{body}");
    assert_eq!(
        login["agent"]["permissions"],
        json!(["PROJECT_SUPER_ADMIN", "CUSTOMER_ADMIN"])
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(login["expiresAt"].as_str().unwrap()).unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!(
        (604_700..=604_800).contains(&ttl),
        "default lifetime is 7 days, got {ttl}s"
    );

    let me = app.gql(login["token"].as_str(), ME, json!({})).await;
    assert_eq!(
        me["data"]["me"]["agent"]["id"], login["agent"]["id"],
        "{me}"
    );
    assert_eq!(me["data"]["me"]["customer"]["username"], ADMIN_USERNAME);
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["PROJECT_SUPER_ADMIN", "CUSTOMER_ADMIN"])
    );
}

#[tokio::test]
async fn login_is_case_insensitive_on_the_username() {
    let app = TestApp::spawn().await;
    let body = app.login("ADMIN", ADMIN_PASSWORD).await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn login_fails_the_same_way_for_wrong_passwords_and_unknown_users() {
    let app = TestApp::spawn().await;
    let wrong_password = app.login(ADMIN_USERNAME, "not-the-password").await;
    let unknown_user = app.login("nobody-here", "not-the-password").await;
    let absurd = app.login(&"x".repeat(10_000), "p").await;
    for body in [&wrong_password, &unknown_user, &absurd] {
        assert_eq!(error_code(body), "UNAUTHENTICATED", "{body}");
        assert!(body["data"].is_null());
    }
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_user["errors"][0]["message"]
    );
}

#[tokio::test]
async fn login_token_lifetime_follows_the_configuration() {
    let app = TestApp::spawn_with(|config| config.token_ttl_seconds = 3600).await;
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["data"]["login"]["expiresAt"].as_str().unwrap())
            .unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn me_needs_a_valid_credential() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    for credential in [None, Some("garbage"), Some(forged.as_str())] {
        let body = app.gql(credential, ME, json!({})).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "{credential:?}: {body}"
        );
    }
    // A header that is not a bearer credential is refused too.
    let response = app
        .http()
        .post(app.graphql_url())
        .header("authorization", format!("Basic {token}"))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn tokens_signed_by_another_server_key_are_rejected() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn().await;
    let foreign = other.admin_token().await;
    let body = app.gql(Some(&foreign), ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn deleted_agents_lose_access_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "gone", "password1").await;
    let token = app.token("gone", "password1").await;
    let db = app.db.client().await;
    db.execute(
        "UPDATE agents SET tm_delete = now() WHERE username = 'gone'",
        &[],
    )
    .await
    .unwrap();
    let body = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn bootstrap_creates_one_super_admin_and_leaves_it_alone_after() {
    let app = TestApp::spawn().await;
    // A second start on the same database, with other credentials, changes nothing.
    let mut config = customer_api::Config::with_database_url(app.db.url());
    config.admin_username = "other-admin".into();
    config.admin_password = Some(customer_api::config::Secret::new("other-password"));
    customer_api::AppState::start(config).await.unwrap();

    let db = app.db.client().await;
    let admins: i64 = db
        .query_one("SELECT count(*) FROM agents WHERE permission & 1 <> 0", &[])
        .await
        .unwrap()
        .get(0);
    let platforms: i64 = db
        .query_one("SELECT count(*) FROM customers WHERE is_platform", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((admins, platforms), (1, 1));
    assert_eq!(
        error_code(&app.login("other-admin", "other-password").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn bootstrap_without_a_password_generates_one_and_logs_it_once() {
    let db = crate::harness::TestDb::create().await;
    let mut config = customer_api::Config::with_database_url(db.url());
    config.admin_username = format!("boot{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    config.admin_password = None;
    crate::harness::init_log_capture();
    customer_api::AppState::start(config.clone()).await.unwrap();
    let logs = crate::harness::captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains("generated password") && l.contains(&config.admin_username))
        .unwrap_or_else(|| panic!("no password line in logs"));
    let password = line
        .split("password=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(password.len() >= 20, "{password}");
}

#[tokio::test]
async fn start_up_purges_sessions_expired_for_over_a_day() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let db = app.db.client().await;
    db.execute(
        "INSERT INTO sessions (id, agent_id, tm_expire) \
         SELECT gen_random_uuid(), id, now() - interval '2 days' FROM agents LIMIT 1",
        &[],
    )
    .await
    .unwrap();
    let _replica = app.replica().await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM sessions WHERE tm_expire < now()").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM sessions").await,
        1,
        "the live session stays"
    );
    let me = app
        .gql(Some(&token), "{ me { permissions } }", json!({}))
        .await;
    assert!(me["errors"].is_null(), "{me}");
}
