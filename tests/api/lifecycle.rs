//! Changing a customer after it is created: `updateCustomer`,
//! `updateCustomerLineInfo`, `updateCustomerPermissionIds` and the REST
//! endpoints over the same service functions (`PUT /v1.0/customers/{id}`,
//! `…/line_info`, `…/permission_ids`, `…/password`, `GET`/`PUT /v1.0/customer`;
//! tested in `rest`).

mod filter;
mod freeze;
mod freeze_rest;
mod rest;

use serde_json::{Value, json};

use crate::harness::{Reply, TestApp, error_code, error_field, send, unique};

const UPDATE: &str = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { customer { id name detail webhookMethod webhookUri tmUpdate tmDelete } } }";
const LINE_INFO: &str = "mutation($input: UpdateCustomerLineInfoInput!) { updateCustomerLineInfo(input: $input) { customer { id lineSecret lineToken tmUpdate } } }";
const PERMISSION_IDS: &str = "mutation($input: UpdateCustomerPermissionIdsInput!) { updateCustomerPermissionIds(input: $input) { customer { id permissionIds tmUpdate } } }";

/// A customer with its guest admin's token, an access key, a plain agent's
/// token and a manager's token.
struct Customer {
    id: String,
    username: String,
    admin: String,
    key: String,
    agent: String,
    manager: String,
}

async fn customer(app: &TestApp, admin: &str, prefix: &str) -> Customer {
    let username = unique(prefix);
    let password = "a-long-password";
    let id = app.create_customer_ok(admin, &username, password).await;
    let guest = app.token(&username, password).await;
    let (_, key) = app
        .create_access_key_ok(&guest, json!({ "name": "k" }))
        .await;
    let agent_name = format!("{username}.agent");
    app.seed_agent(&username, &agent_name, 16).await;
    let manager_name = format!("{username}.manager");
    app.seed_agent(&username, &manager_name, 64).await;
    Customer {
        id,
        admin: guest,
        key,
        agent: app.token(&agent_name, password).await,
        manager: app.token(&manager_name, password).await,
        username,
    }
}

async fn update(app: &TestApp, token: Option<&str>, input: Value) -> Value {
    app.gql(token, UPDATE, json!({ "input": input })).await
}

fn updated(body: &Value) -> &Value {
    let customer = &body["data"]["updateCustomer"]["customer"];
    assert!(customer.is_object(), "{body}");
    customer
}

fn rest(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = app.http().request(method, format!("{}{path}", app.address));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn put(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> Reply {
    send(rest(app, reqwest::Method::PUT, path, token).json(&body)).await
}

#[tokio::test]
async fn update_customer_changes_only_the_given_fields_and_null_clears_the_webhook() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "upd").await;

    let body = update(
        &app,
        Some(&admin),
        json!({ "id": c.id, "name": "New name", "webhookMethod": "PUT", "webhookUri": "https://example.com/hook" }),
    )
    .await;
    let first = updated(&body);
    assert_eq!(first["name"], "New name");
    assert_eq!(first["detail"], "");
    assert_eq!(first["webhookMethod"], "PUT");
    assert_eq!(first["webhookUri"], "https://example.com/hook");
    assert!(first["tmUpdate"].is_string(), "{body}");

    let body = update(&app, Some(&admin), json!({ "id": c.id, "detail": "d" })).await;
    let second = updated(&body);
    assert_eq!(second["name"], "New name", "absent fields are left alone");
    assert_eq!(second["webhookMethod"], "PUT");
    assert_eq!(second["detail"], "d");
    assert!(second["tmUpdate"].as_str() > first["tmUpdate"].as_str());

    let body = update(
        &app,
        Some(&admin),
        json!({ "id": c.id, "name": null, "webhookMethod": null, "webhookUri": null }),
    )
    .await;
    let cleared = updated(&body);
    assert_eq!(cleared["name"], "New name", "a null name is left alone");
    assert_eq!(cleared["webhookMethod"], Value::Null);
    assert_eq!(cleared["webhookUri"], "");
}

#[tokio::test]
async fn who_may_update_which_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "perma").await;
    let b = customer(&app, &admin, "permb").await;

    for (what, token, allowed) in [
        ("super admin", Some(admin.as_str()), true),
        ("own admin", Some(a.admin.as_str()), true),
        ("own access key", Some(a.key.as_str()), true),
        ("other customer's admin", Some(b.admin.as_str()), false),
        ("other customer's key", Some(b.key.as_str()), false),
        ("plain agent", Some(a.agent.as_str()), false),
        ("manager", Some(a.manager.as_str()), false),
    ] {
        let body = update(&app, token, json!({ "id": a.id, "detail": what })).await;
        let line = app
            .gql(
                token,
                LINE_INFO,
                json!({ "input": { "id": a.id, "lineSecret": "s", "lineToken": "t" } }),
            )
            .await;
        let ids = app
            .gql(
                token,
                PERMISSION_IDS,
                json!({ "input": { "id": a.id, "permissionIds": [] } }),
            )
            .await;
        if allowed {
            assert_eq!(updated(&body)["detail"], what);
            assert!(line["errors"].is_null(), "{what}: {line}");
        } else {
            assert_eq!(error_code(&body), "FORBIDDEN", "{what}: {body}");
            assert_eq!(error_code(&line), "FORBIDDEN", "{what}: {line}");
        }
        // Permission ids are the platform's to grant.
        if what == "super admin" {
            assert!(ids["errors"].is_null(), "{what}: {ids}");
        } else {
            assert_eq!(error_code(&ids), "FORBIDDEN", "{what}: {ids}");
        }
    }
    for (query, input) in [
        (UPDATE, json!({ "id": a.id })),
        (
            LINE_INFO,
            json!({ "id": a.id, "lineSecret": "s", "lineToken": "t" }),
        ),
        (PERMISSION_IDS, json!({ "id": a.id, "permissionIds": [] })),
    ] {
        let body = app.gql(None, query, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    // Without an id: the caller's own customer.
    for (what, token) in [("admin", &a.admin), ("key", &a.key)] {
        let body = update(&app, Some(token), json!({ "name": what })).await;
        assert_eq!(updated(&body)["id"], a.id.as_str());
        assert_eq!(updated(&body)["name"], what);
    }
    let body = update(&app, Some(&a.agent), json!({ "name": "x" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test]
async fn updates_validate_like_create_and_name_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "valid").await;
    for (input, field) in [
        (json!({ "name": "n".repeat(256) }), "name"),
        (json!({ "detail": "d".repeat(4097) }), "detail"),
        (json!({ "webhookUri": "ftp://example.com/" }), "webhookUri"),
        (
            json!({ "webhookUri": " https://example.com/" }),
            "webhookUri",
        ),
    ] {
        let mut input = input;
        input["id"] = json!(c.id);
        let body = update(&app, Some(&admin), input.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(error_field(&body), field, "{body}");
    }
    let ok = update(
        &app,
        Some(&admin),
        json!({ "id": c.id, "name": "n".repeat(255) }),
    )
    .await;
    updated(&ok);

    let body = app
        .gql(
            Some(&admin),
            LINE_INFO,
            json!({ "input": { "id": c.id, "lineSecret": "s".repeat(1024), "lineToken": "t" } }),
        )
        .await;
    assert_eq!(error_field(&body), "lineSecret", "{body}");
    let many: Vec<String> = (0..65).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let body = app
        .gql(
            Some(&admin),
            PERMISSION_IDS,
            json!({ "input": { "id": c.id, "permissionIds": many } }),
        )
        .await;
    assert_eq!(error_field(&body), "permissionIds", "{body}");

    let reply = put(
        &app,
        &format!("/v1.0/customers/{}", c.id),
        Some(&admin),
        json!({ "webhook_uri": "nope" }),
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["field"], "webhook_uri");
    let reply = put(
        &app,
        &format!("/v1.0/customers/{}/line_info", c.id),
        Some(&admin),
        json!({ "line_secret": "s" }),
    )
    .await;
    assert_eq!(
        reply.body["error"]["field"], "line_token",
        "{:?}",
        reply.body
    );

    let missing = uuid::Uuid::new_v4().to_string();
    let body = update(&app, Some(&admin), json!({ "id": missing, "name": "x" })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn a_stale_expected_tm_update_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "occ").await;

    // Never updated: null is the version to expect.
    let body = update(
        &app,
        Some(&admin),
        json!({ "id": c.id, "name": "one", "expectedTmUpdate": null }),
    )
    .await;
    let v1 = updated(&body)["tmUpdate"].clone();
    let body = update(
        &app,
        Some(&c.admin),
        json!({ "id": c.id, "name": "two", "expectedTmUpdate": v1 }),
    )
    .await;
    let v2 = updated(&body)["tmUpdate"].clone();
    assert_ne!(v1, v2);

    for stale in [v1.clone(), Value::Null] {
        let body = update(
            &app,
            Some(&admin),
            json!({ "id": c.id, "name": "lost", "expectedTmUpdate": stale }),
        )
        .await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
        assert_eq!(error_field(&body), "expectedTmUpdate", "{body}");
    }
    let body = app
        .gql(
            Some(&admin),
            "query($id: UUID!) { customer(id: $id) { name tmUpdate } }",
            json!({ "id": c.id }),
        )
        .await;
    assert_eq!(body["data"]["customer"]["name"], "two", "{body}");
    assert_eq!(body["data"]["customer"]["tmUpdate"], v2);
}

#[tokio::test]
async fn an_update_queued_behind_a_delete_answers_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "race").await;

    // A delete in progress: it holds the customer's row lock.
    let mut client = app.db.client().await;
    let deleting = client.transaction().await.unwrap();
    deleting
        .execute(
            "UPDATE customers SET tm_delete = now(), tm_update = now() WHERE id = $1::text::uuid",
            &[&c.id],
        )
        .await
        .unwrap();
    let pending = app.spawn_gql(
        Some(&admin),
        UPDATE,
        json!({ "input": { "id": c.id, "name": "too late" } }),
    );
    app.until_statements_wait_on_locks(1).await;
    deleting.commit().await.unwrap();

    let body = pending.await.unwrap();
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let name: String = client
        .query_one(
            "SELECT name FROM customers WHERE id = $1::text::uuid",
            &[&c.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "", "the deleted customer was not written to");
}

/// Profile edits do not touch what a credential depends on, so they must not
/// make every server drop its credential cache; a delete must. Notifications
/// arrive in commit order: if the edits had notified, theirs would come
/// before the delete's.
#[tokio::test]
async fn profile_edits_leave_every_credential_cache_alone_and_a_delete_does_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let edited = app
        .create_customer_ok(&admin, &unique("edited"), "a-long-password")
        .await;
    let deleted = app
        .create_customer_ok(&admin, &unique("deleted"), "a-long-password")
        .await;
    let (_listening, mut notes) = app.db.listener(&["credential_changes"]).await;

    let body = update(
        &app,
        Some(&admin),
        json!({ "id": edited, "name": "renamed" }),
    )
    .await;
    updated(&body);
    let body = app
        .gql(
            Some(&admin),
            LINE_INFO,
            json!({ "input": { "id": edited, "lineSecret": "s", "lineToken": "t" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(
            Some(&admin),
            PERMISSION_IDS,
            json!({ "input": { "id": edited, "permissionIds": [] } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app.delete_customer(&admin, &deleted).await;
    assert!(body["errors"].is_null(), "{body}");

    // Everything heard up to the delete's own notification (its guest
    // agent's come with it).
    let mut heard = Vec::new();
    while let Some((_, payload)) = notes.recv().await {
        let done = payload == format!("customers:{deleted}");
        heard.push(payload);
        if done {
            break;
        }
    }
    assert!(
        !heard.contains(&format!("customers:{edited}")),
        "profile edits notified: {heard:?}"
    );
}
