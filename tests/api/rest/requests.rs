//! What a REST request may carry and how it is refused: statuses and JSON
//! error bodies, credentials in three places, the login limiter's refusals,
//! a stalled database, and lenient bodies.

use serde_json::{Value, json};

use super::{
    admin_rest_token, assert_error, create, delete_customer, get, get_customer, rest_login, send,
    url,
};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, captured_logs, unique};

#[tokio::test]
async fn rest_errors_have_fitting_statuses_and_json_bodies() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let platform_id = app.own_customer_id(&token).await;
    let valid = json!({ "username": "errors1", "password": "errors1-password" });

    // 400, naming the field in snake_case.
    let with = |patch: Value| {
        let mut body = valid.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    for (body, field) in [
        (with(json!({ "username": "x" })), "username"),
        (with(json!({ "password": "short" })), "password"),
        (with(json!({ "name": "n".repeat(256) })), "name"),
        (with(json!({ "detail": 5 })), "detail"),
        (with(json!({ "webhook_method": "FETCH" })), "webhook_method"),
        (
            with(json!({ "webhook_uri": "ftp://example.com" })),
            "webhook_uri",
        ),
        (
            with(json!({ "line_secret": "s".repeat(1024) })),
            "line_secret",
        ),
        (
            with(json!({ "line_token": "t".repeat(1024) })),
            "line_token",
        ),
        (
            with(json!({ "permission_ids": ["not-a-uuid"] })),
            "permission_ids",
        ),
        (
            with(json!({ "permission_ids": vec![uuid::Uuid::new_v4(); 65] })),
            "permission_ids",
        ),
        (json!({ "password": "errors1-password" }), "username"),
        (json!(["not", "an", "object"]), "body"),
    ] {
        let reply = create(&app, &token, &body).await;
        assert_error(&reply, 400, "BAD_USER_INPUT", Some(field));
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("webhookUri") && !message.contains("lineSecret"),
            "{message}"
        );
    }
    let reply = create(&app, &token, &with(json!({ "webhook_uri": "nope" }))).await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`webhook_uri`"),
        "{}",
        reply.body
    );
    let not_json = send(
        app.http()
            .post(url(&app, "/v1.0/customers", &[("token", &token)]))
            .body("{\"username\": "),
    )
    .await;
    assert_error(&not_json, 400, "BAD_USER_INPUT", Some("body"));
    for (params, field) in [
        (vec![("page_size", "0")], "page_size"),
        (vec![("page_size", "101")], "page_size"),
        (vec![("page_size", "ten")], "page_size"),
        (vec![("page_token", "yesterday")], "page_token"),
        (
            vec![("page_token", "2022-02-01 00:00:00.000000_nope")],
            "page_token",
        ),
    ] {
        let mut params = params;
        params.push(("token", &token));
        let reply = get(&app, "/v1.0/customers", &params).await;
        assert_error(&reply, 400, "BAD_USER_INPUT", Some(field));
    }
    let reply = get(&app, "/v1.0/customers/not-a-uuid", &[("token", &token)]).await;
    assert_error(&reply, 400, "BAD_USER_INPUT", Some("id"));

    // 401: no, bad or malformed credentials, and failed logins, all alike.
    for reply in [
        get(&app, "/v1.0/customers", &[]).await,
        get(&app, "/v1.0/customers", &[("token", "not-a-token")]).await,
        get(&app, "/v1.0/customers", &[("accesskey", "vb_not-a-key")]).await,
        send(
            app.http()
                .get(url(&app, "/v1.0/customers", &[]))
                .header("authorization", format!("Basic {token}")),
        )
        .await,
        create(&app, "not-a-token", &valid).await,
    ] {
        assert_error(&reply, 401, "UNAUTHENTICATED", None);
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let wrong_password = rest_login(&app, ADMIN_USERNAME, "wrong-password").await;
    let unknown_user = rest_login(&app, "nobody-here", "wrong-password").await;
    assert_error(&wrong_password, 401, "UNAUTHENTICATED", None);
    assert_error(&unknown_user, 401, "UNAUTHENTICATED", None);
    assert_eq!(
        wrong_password.body, unknown_user.body,
        "one message for both"
    );
    let missing = send(
        app.http()
            .post(url(&app, "/auth/login", &[]))
            .json(&json!({ "username": "admin" })),
    )
    .await;
    assert_error(&missing, 400, "BAD_USER_INPUT", Some("password"));

    // 403: a customer's own admin may not list customers, and nobody may
    // delete the platform's own customer.
    app.create_customer_ok(&token, "someone", "someone-password")
        .await;
    let someone = rest_login(&app, "someone", "someone-password").await;
    let someone = someone.body["token"].as_str().unwrap();
    let reply = get(&app, "/v1.0/customers", &[("token", someone)]).await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = get(
        &app,
        &format!("/v1.0/customers/{platform_id}"),
        &[("token", someone)],
    )
    .await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = delete_customer(&app, &token, &platform_id).await;
    assert_error(&reply, 403, "FORBIDDEN", None);

    // 404: unknown customers and unknown endpoints.
    let unknown = uuid::Uuid::new_v4().to_string();
    let reply = get_customer(&app, &token, &unknown).await;
    assert_error(&reply, 404, "NOT_FOUND", None);
    let reply = delete_customer(&app, &token, &unknown).await;
    assert_error(&reply, 404, "NOT_FOUND", None);
    let reply = get(&app, "/v1.0/agents", &[("token", &token)]).await;
    assert_error(&reply, 404, "NOT_FOUND", None);

    // 405: a method the resource does not have.
    let reply = send(
        app.http()
            .patch(url(
                &app,
                &format!("/v1.0/customers/{platform_id}"),
                &[("token", &token)],
            ))
            .json(&json!({ "name": "renamed" })),
    )
    .await;
    assert_error(&reply, 405, "BAD_USER_INPUT", None);
    let allow = reply.headers["allow"].to_str().unwrap();
    assert!(
        allow.contains("GET")
            && allow.contains("PUT")
            && allow.contains("DELETE")
            && !allow.contains("PATCH"),
        "{allow}"
    );

    // 409: the username is taken, in any case.
    assert_eq!(create(&app, &token, &valid).await.status, 200);
    let reply = create(
        &app,
        &token,
        &json!({ "username": "ERRORS1", "password": "another-password" }),
    )
    .await;
    assert_error(&reply, 409, "CONFLICT", Some("username"));
}

#[tokio::test]
async fn rest_login_refusals_are_401_with_retry_after() {
    let app = TestApp::spawn_with(|config| config.login_max_failures = 2).await;
    for _ in 0..2 {
        let reply = rest_login(&app, ADMIN_USERNAME, "wrong-password").await;
        assert_error(&reply, 401, "UNAUTHENTICATED", None);
        assert!(reply.headers.get("retry-after").is_none());
    }
    // Refused now, even with the right password.
    let reply = rest_login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    assert_eq!(reply.body["error"]["retry_after_seconds"], retry);
}

#[tokio::test]
async fn rest_database_stall_is_503_with_nothing_internal() {
    let app = TestApp::spawn_with(|config| config.db_statement_timeout_ms = 500).await;
    let token = admin_rest_token(&app).await;
    // Warm the credential cache, so that the stall hits the listing itself.
    assert_eq!(
        get(&app, "/v1.0/customers", &[("token", &token)])
            .await
            .status,
        200
    );

    let locker = app.db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let reply = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    locker.batch_execute("ROLLBACK").await.unwrap();

    assert_error(&reply, 503, "SERVICE_UNAVAILABLE", None);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("statement") && !message.contains("customers"),
        "{message}"
    );
    assert!(
        captured_logs()
            .lines()
            .any(|line| line.contains("REST request failed") && line.contains("statement timeout")),
        "the cause is logged"
    );
    assert_eq!(
        get(&app, "/v1.0/customers", &[("token", &token)])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn rest_accepts_token_bearer_and_accesskey_credentials() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let platform_id = app.own_customer_id(&token).await;
    let platform_path = format!("/v1.0/customers/{platform_id}");

    let by_query = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    let by_header = send(
        app.http()
            .get(url(&app, "/v1.0/customers", &[]))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(by_query.body, by_header.body);

    // The platform's access key acts as CUSTOMER_ADMIN of the platform's
    // customer: it reads that customer, and is no super admin.
    let (key_id, key) = app.create_access_key_ok(&token, json!({})).await;
    assert!(key.starts_with("vb_"));
    for reply in [
        get(&app, &platform_path, &[("accesskey", &key)]).await,
        get(&app, &platform_path, &[("token", &key)]).await,
        send(
            app.http()
                .get(url(&app, &platform_path, &[]))
                .bearer_auth(&key),
        )
        .await,
    ] {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["id"], platform_id);
    }
    let reply = get(&app, "/v1.0/customers", &[("accesskey", &key)]).await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = create(
        &app,
        &key,
        &json!({ "username": "bykey", "password": "bykey-password" }),
    )
    .await;
    assert_error(&reply, 403, "FORBIDDEN", None);

    // `accesskey` takes access keys only; two different credentials are refused.
    let reply = get(&app, &platform_path, &[("accesskey", &token)]).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
    let reply = get(
        &app,
        &platform_path,
        &[("token", &token), ("accesskey", &key)],
    )
    .await;
    assert_error(&reply, 400, "BAD_USER_INPUT", Some("token"));
    let same_twice = send(
        app.http()
            .get(url(&app, &platform_path, &[("token", &token)]))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(same_twice.status, 200, "{}", same_twice.body);

    // A revoked key stops working on the next request.
    let revoked = app.delete_access_key(&token, &key_id).await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    let reply = get(&app, &platform_path, &[("accesskey", &key)]).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
}

#[tokio::test]
async fn rest_bodies_ignore_unknown_fields_and_read_null_as_absent() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("lenient");
    let claimed_id = uuid::Uuid::new_v4().to_string();
    let created = send(
        app.http()
            .post(url(&app, "/v1.0/customers", &[]))
            .bearer_auth(&admin)
            .json(&json!({
                "username": username,
                "password": "a-long-password",
                "name": null,
                "detail": null,
                "webhook_method": null,
                "webhook_uri": null,
                "line_secret": null,
                "line_token": null,
                "permission_ids": null,
                // Fields the API does not take: ignored, not applied.
                "id": claimed_id,
                "tm_create": "2000-01-01 00:00:00.000000",
                "tm_delete": "2000-01-01 00:00:00.000000",
                "is_platform": true,
                "password_hash": "not-a-hash",
                "surprise": { "nested": [1, null, "two"] },
            })),
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    let customer = &created.body;
    let id = customer["id"].as_str().unwrap();
    assert_ne!(id, claimed_id, "{customer}");
    assert_eq!(customer["username"], username.as_str());
    for (field, absent) in [
        ("name", json!("")),
        ("detail", json!("")),
        ("webhook_method", json!("")),
        ("webhook_uri", json!("")),
        ("line_secret", json!("")),
        ("line_token", json!("")),
        ("permission_ids", json!([])),
        ("tm_delete", json!("9999-01-01 00:00:00.000000")),
    ] {
        assert_eq!(customer[field], absent, "{field}: {customer}");
    }
    assert!(
        !customer["tm_create"].as_str().unwrap().starts_with("2000"),
        "{customer}"
    );
    assert!(customer.get("password").is_none() && customer.get("password_hash").is_none());
    let platforms = app
        .count(
            "SELECT count(*) FROM customers WHERE id = $1::text::uuid AND is_platform",
            &[&id],
        )
        .await;
    assert_eq!(platforms, 0, "is_platform is not taken from the body");

    let login = |body: Value| send(app.http().post(url(&app, "/auth/login", &[])).json(&body));
    let logged_in = login(json!({
        "username": username,
        "password": "a-long-password",
        "remember_me": true,
        "otp": null,
    }))
    .await;
    assert_eq!(logged_in.status, 200, "{logged_in:?}");
    assert!(logged_in.body["token"].is_string(), "{logged_in:?}");
    let null_username = login(json!({ "username": null, "password": "a-long-password" })).await;
    assert_eq!(null_username.status, 400, "{null_username:?}");
    assert_eq!(
        null_username.body["error"]["field"], "username",
        "{null_username:?}"
    );
}
