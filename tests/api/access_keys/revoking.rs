//! deleteAccessKey: who may revoke a key, and a revoked key refused at once
//! on every server process.

use serde_json::json;

use super::{LIST, OWN_CUSTOMER, customer_with_admin, list_ids};
use crate::harness::{ME, TestApp, error_code};

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

    app.assert_refused(&key, "the deleted key").await;

    let again = app.delete_access_key(&customer_admin, &id).await;
    assert_eq!(
        again["data"]["deleteAccessKey"]["accessKey"], *deleted,
        "deleting again returns it unchanged: {again}"
    );

    let soft = app
        .count(
            "SELECT count(*) FROM access_keys WHERE id = $1::text::uuid AND tm_delete IS NOT NULL",
            &[&id],
        )
        .await;
    assert_eq!(soft, 1, "the row stays, marked deleted");
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
    app.assert_accepted(&keys[0].1, "refused deletes changed nothing")
        .await;

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
    let live = app
        .count(
            "SELECT count(*) FROM access_keys WHERE tm_delete IS NULL",
            &[],
        )
        .await;
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
        server.assert_refused(&first, name).await;
    }
    let body = replica.delete_access_key(&customer_admin, &second_id).await;
    assert!(body["errors"].is_null(), "{body}");
    for (server, name) in [(&app, "app"), (&replica, "replica")] {
        server.assert_refused(&second, name).await;
    }
}
