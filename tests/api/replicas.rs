//! Several server processes on one database, as replicas behind a load
//! balancer: the state they must share, they share through PostgreSQL.

use serde_json::Value;

use crate::harness::{TestApp, error_code};

fn refused_for(body: &Value) -> Option<i64> {
    (error_code(body) == "UNAUTHENTICATED")
        .then(|| body["errors"][0]["extensions"]["retryAfterSeconds"].as_i64())
        .flatten()
}

/// The login limits are counted in the database: N replicas do not grant N
/// times the attempts, whichever replica each attempt lands on.
#[tokio::test]
async fn login_limits_hold_across_replicas() {
    let app = TestApp::spawn_with(|config| {
        config.trust_forwarded_for = true;
        config.login_max_failures = 5;
        config.login_max_attempts_per_address = 6;
    })
    .await;
    let replicas = [app.replica().await, app.replica().await];
    let servers = [&app, &replicas[0], &replicas[1]];
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "shared-limit", "the-right-password")
        .await;

    // Per username: five wrong passwords from five addresses, one per
    // replica in turn; then even the right one is refused, everywhere.
    for attempt in 0..5 {
        let server = servers[attempt % 3];
        let body = server
            .login_from(
                &format!("198.51.100.{attempt}"),
                "shared-limit",
                "wrong-password",
            )
            .await;
        assert_eq!(refused_for(&body), None, "attempt {attempt}: {body}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    for server in servers {
        let body = server
            .login_from("198.51.100.99", "shared-limit", "the-right-password")
            .await;
        assert!(refused_for(&body).is_some(), "{body}");
    }

    // Per address, successful or not: six attempts spread over the replicas.
    app.create_customer_ok(&admin, "busy-address", "the-right-password")
        .await;
    for attempt in 0..6 {
        let body = servers[attempt % 3]
            .login_from("203.0.113.50", "busy-address", "the-right-password")
            .await;
        assert!(body["errors"].is_null(), "attempt {attempt}: {body}");
    }
    for server in servers {
        let body = server
            .login_from("203.0.113.50", "busy-address", "the-right-password")
            .await;
        assert!(refused_for(&body).is_some(), "{body}");
    }

    // A server that has heard the address refused refuses it again without
    // asking the database: a flood from one address costs no SQL.
    let before = replicas[1].statements();
    for _ in 0..10 {
        let body = replicas[1]
            .login_from("203.0.113.50", "busy-address", "wrong-password")
            .await;
        assert!(refused_for(&body).is_some(), "{body}");
    }
    assert_eq!(replicas[1].statements(), before, "refused locally");
}

/// The user's own address is shared too: after logging in from it on one
/// replica, a lock-out by others does not apply there on another replica.
#[tokio::test]
async fn a_users_own_address_is_known_to_every_replica() {
    let app = TestApp::spawn_with(|config| {
        config.trust_forwarded_for = true;
        config.login_max_failures = 3;
    })
    .await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "owner", "the-right-password")
        .await;
    let own = "198.51.100.7";
    let body = app.login_from(own, "owner", "the-right-password").await;
    assert!(body["errors"].is_null(), "{body}");
    for attempt in 0..3 {
        let body = replica
            .login_from(&format!("203.0.113.{attempt}"), "owner", "guess")
            .await;
        assert_eq!(refused_for(&body), None, "{body}");
    }
    let body = replica
        .login_from("203.0.113.9", "owner", "the-right-password")
        .await;
    assert!(
        refused_for(&body).is_some(),
        "locked out for others: {body}"
    );
    let body = replica.login_from(own, "owner", "the-right-password").await;
    assert!(
        body["errors"].is_null(),
        "not from the owner's address: {body}"
    );
}
