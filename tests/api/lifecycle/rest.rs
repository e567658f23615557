//! The REST endpoints of the customer lifecycle: the original API's shapes,
//! permissions and the guest agent's password.

use serde_json::json;

use super::{customer, put, rest};
use crate::harness::{TestApp, captured_logs, send, unique};

fn assert_rest_timestamp(value: &serde_json::Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let shape = regex_like(text);
    assert!(shape, "not YYYY-MM-DD HH:MM:SS.ffffff: {text}");
}

fn regex_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 26
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            _ => b.is_ascii_digit(),
        })
}

#[tokio::test]
async fn rest_updates_answer_the_customer_as_get_does() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "rest").await;
    let other = customer(&app, &admin, "resto").await;
    let path = format!("/v1.0/customers/{}", c.id);

    let reply = put(
        &app,
        &path,
        Some(&admin),
        json!({ "name": "R", "detail": "D", "webhook_method": "POST", "webhook_uri": "https://example.com/h" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let got = send(rest(&app, reqwest::Method::GET, &path, Some(&admin))).await;
    assert_eq!(reply.body, got.body, "PUT answers what GET reads");
    let body = &reply.body;
    assert_eq!(body["name"], "R");
    assert_eq!(body["webhook_method"], "POST");
    assert_eq!(body["username"], c.username.as_str());
    assert_rest_timestamp(&body["tm_create"]);
    assert_rest_timestamp(&body["tm_update"]);
    assert_eq!(body["tm_delete"], "9999-01-01 00:00:00.000000");
    assert!(body.get("password").is_none() && body.get("webhookUri").is_none());

    // `""` removes the webhook; null leaves a field alone.
    let reply = put(
        &app,
        &path,
        Some(&c.key),
        json!({ "webhook_method": "", "webhook_uri": "", "name": null }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["webhook_method"], "");
    assert_eq!(reply.body["webhook_uri"], "");
    assert_eq!(reply.body["name"], "R");

    // The caller's own customer.
    let own = send(rest(
        &app,
        reqwest::Method::GET,
        "/v1.0/customer",
        Some(&c.admin),
    ))
    .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(own.body["id"], c.id.as_str());
    let own = put(
        &app,
        "/v1.0/customer",
        Some(&c.key),
        json!({ "detail": "self" }),
    )
    .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(
        (own.body["id"].as_str(), own.body["detail"].as_str()),
        (Some(c.id.as_str()), Some("self"))
    );

    for (what, token, status, code) in [
        ("other admin", Some(other.admin.as_str()), 403, "FORBIDDEN"),
        ("plain agent", Some(c.agent.as_str()), 403, "FORBIDDEN"),
        ("no credential", None, 401, "UNAUTHENTICATED"),
    ] {
        let reply = put(&app, &path, token, json!({ "name": "x" })).await;
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], code, "{what}");
    }
    let reply = put(
        &app,
        "/v1.0/customer",
        Some(&c.agent),
        json!({ "name": "x" }),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);

    // PUT now exists; the methods that do not are still 405 with `Allow`.
    let reply =
        send(rest(&app, reqwest::Method::PATCH, &path, Some(&admin)).json(&json!({}))).await;
    assert_eq!(reply.status, 405, "{:?}", reply.body);
    let allow = reply.headers["allow"].to_str().unwrap();
    assert!(
        ["GET", "PUT", "DELETE"].iter().all(|m| allow.contains(m)) && !allow.contains("PATCH"),
        "{allow}"
    );

    app.delete_customer(&admin, &c.id).await;
    let reply = put(&app, &path, Some(&admin), json!({ "name": "x" })).await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
}

#[tokio::test]
async fn rest_line_info_permission_ids_and_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "subres").await;
    let other = customer(&app, &admin, "subreso").await;
    let base = format!("/v1.0/customers/{}", c.id);
    let secret = unique("line-secret-value");
    let token = unique("line-token-value");

    let reply = put(
        &app,
        &format!("{base}/line_info"),
        Some(&c.admin),
        json!({ "line_secret": secret, "line_token": token }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["line_secret"], secret.as_str());
    assert_eq!(reply.body["line_token"], token.as_str());
    assert_rest_timestamp(&reply.body["tm_update"]);
    let reply = put(
        &app,
        &format!("{base}/line_info"),
        Some(&other.admin),
        json!({ "line_secret": "s", "line_token": "t" }),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);

    let ids = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    ];
    let reply = put(
        &app,
        &format!("{base}/permission_ids"),
        Some(&admin),
        json!({ "permission_ids": [ids[0], ids[1], ids[0]] }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["permission_ids"],
        json!(ids),
        "duplicates dropped, order kept"
    );
    for token in [&c.admin, &c.key] {
        let reply = put(
            &app,
            &format!("{base}/permission_ids"),
            Some(token),
            json!({ "permission_ids": [] }),
        )
        .await;
        assert_eq!(reply.status, 403, "{:?}", reply.body);
    }

    // The password is the guest agent's: its tokens are revoked.
    let password = unique("new-password-value");
    let reply = put(
        &app,
        &format!("{base}/password"),
        Some(&c.key),
        json!({ "password": password }),
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "access keys cannot set passwords: {:?}",
        reply.body
    );
    let reply = put(
        &app,
        &format!("{base}/password"),
        Some(&c.agent),
        json!({ "password": password }),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    let reply = put(
        &app,
        &format!("{base}/password"),
        Some(&admin),
        json!({ "password": "short" }),
    )
    .await;
    assert_eq!(reply.body["error"]["field"], "password", "{:?}", reply.body);
    let reply = put(
        &app,
        &format!("{base}/password"),
        Some(&admin),
        json!({ "password": password }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["id"], c.id.as_str());
    assert!(reply.body.get("password").is_none());
    app.assert_refused(&c.admin, "the guest's old token").await;
    app.assert_login_refused(&c.username, "a-long-password", "old password")
        .await;
    app.assert_login_works(&c.username, &password, "new password")
        .await;
    assert!(
        app.token(&format!("{}.agent", c.username), "a-long-password")
            .await
            .len()
            > 10,
        "other agents keep theirs"
    );

    let logs = captured_logs();
    for secret in [&secret, &token, &password] {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
    }

    // GraphQL reads the same values.
    let body = app
        .gql(
            Some(&admin),
            "query($id: UUID!) { customer(id: $id) { lineSecret permissionIds } }",
            json!({ "id": c.id }),
        )
        .await;
    assert_eq!(
        body["data"]["customer"]["lineSecret"],
        secret.as_str(),
        "{body}"
    );
    assert_eq!(body["data"]["customer"]["permissionIds"], json!(ids));
}
