//! The event log behind the audit trail: every committed change has exactly
//! one event, in its own transaction, with who made it, in which request,
//! and the resource in its REST shape less every secret; `events` pages
//! through it under the readers' rules; old events are pruned.

use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, error_field, unique};

const EVENTS: &str = "query($filter: EventFilter, $first: Int, $after: String) { events(filter: $filter, first: $first, after: $after) { totalCount edges { cursor node { id type customerId actorId requestId tmCreate data } } pageInfo { hasNextPage endCursor } } }";

async fn events(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let body = app
        .gql(
            Some(token),
            EVENTS,
            json!({ "filter": filter, "first": 100 }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

async fn agent_id(app: &TestApp, token: &str) -> String {
    let body = app
        .gql(Some(token), "{ me { agent { id } } }", json!({}))
        .await;
    body["data"]["me"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// No event may carry a secret, whatever its type.
fn assert_no_secrets(events: &[Value], secrets: &[&str]) {
    for event in events {
        let text = event.to_string();
        for field in [
            "line_secret",
            "line_token",
            "webhook_secret",
            "password",
            "token_hash",
            "password_hash",
        ] {
            assert!(event["data"].get(field).is_none(), "{field} in {text}");
        }
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in {text}");
        }
        assert!(!text.contains("$argon2"), "{text}");
    }
}

#[tokio::test]
async fn every_change_appends_one_event_with_its_actor_request_and_resource() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = agent_id(&app, &admin).await;
    let username = unique("evented");

    let created = app
        .gql_with_header(
            Some(&admin),
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id guestAgent { id } } } }",
            json!({ "input": {
                "username": username, "password": "first-password-1", "name": "Evented",
                "lineSecret": "line-secret-value", "lineToken": "line-token-value"
            } }),
            ("x-request-id", "create-request-1"),
        )
        .await;
    let id = created["data"]["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let guest_id = created["data"]["createCustomer"]["customer"]["guestAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let log = events(&app, &admin, json!({ "customerId": id })).await;
    assert_eq!(
        types(&log),
        ["agent_created", "customer_created"],
        "newest first"
    );
    for event in &log {
        assert_eq!(event["customerId"], id.as_str());
        assert_eq!(event["actorId"], admin_id.as_str());
        assert_eq!(event["requestId"], "create-request-1");
    }
    let customer = &log[1]["data"];
    assert_eq!(customer["id"], id.as_str());
    assert_eq!(customer["username"], username.as_str());
    assert_eq!(customer["status"], "active");
    assert_eq!(
        customer["tm_delete"], "9999-01-01 00:00:00.000000",
        "REST shape"
    );
    assert_eq!(log[0]["data"]["id"], guest_id.as_str());
    assert_eq!(log[0]["data"]["username"], username.as_str());

    // Each change below appends exactly one event, the newest.
    let guest = app.token(&username, "first-password-1").await;
    let guest_agent = agent_id(&app, &guest).await;
    let steps: Vec<(&str, Value, &str, &str)> = vec![
        (
            "mutation($id: UUID!) { updateCustomer(input: {id: $id, name: \"Renamed\"}) { customer { id } } }",
            json!({ "id": id }),
            "customer_updated",
            "name",
        ),
        (
            "mutation($id: UUID!) { updateCustomerLineInfo(input: {id: $id, lineSecret: \"new-line-secret\", lineToken: \"new-line-token\"}) { customer { id } } }",
            json!({ "id": id }),
            "customer_updated",
            "",
        ),
        (
            "mutation($id: UUID!) { setAgentPassword(input: {agentId: $id, password: \"second-password-2\"}) { agent { id } } }",
            json!({ "id": guest_agent }),
            "agent_updated",
            "",
        ),
        (
            "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": id }),
            "customer_frozen",
            "",
        ),
        (
            "mutation($id: UUID!) { recoverCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": id }),
            "customer_recovered",
            "",
        ),
    ];
    for (step, (mutation, variables, expected, _)) in steps.iter().enumerate() {
        let request_id = format!("step-{step}");
        let body = app
            .gql_with_header(
                Some(&admin),
                mutation,
                variables.clone(),
                ("x-request-id", &request_id),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let log = events(&app, &admin, json!({ "customerId": id })).await;
        assert_eq!(
            log.len(),
            3 + step,
            "one event per change: {:?}",
            types(&log)
        );
        assert_eq!(log[0]["type"], *expected);
        assert_eq!(log[0]["requestId"], request_id.as_str());
        assert_eq!(log[0]["actorId"], admin_id.as_str());
    }
    let log = events(&app, &admin, json!({ "customerId": id })).await;
    assert_eq!(log[4]["data"]["name"], "Renamed");
    assert_eq!(log[1]["data"]["status"], "frozen");
    assert_eq!(log[0]["data"]["status"], "active");

    // Access keys, made and changed by the customer's own admin.
    let guest = app.token(&username, "second-password-2").await;
    let (key_id, key) = app
        .create_access_key_ok(&guest, json!({ "name": "k1" }))
        .await;
    let renamed = app
        .gql(
            Some(&guest),
            "mutation($id: UUID!) { updateAccessKey(input: {id: $id, name: \"k2\"}) { accessKey { id } } }",
            json!({ "id": key_id }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    app.delete_access_key(&guest, &key_id).await;
    let log = events(&app, &admin, json!({ "customerId": id })).await;
    assert_eq!(
        types(&log)[..3],
        [
            "accesskey_deleted",
            "accesskey_updated",
            "accesskey_created"
        ]
    );
    for event in &log[..3] {
        assert_eq!(event["actorId"], guest_agent.as_str());
        assert_eq!(event["data"]["id"], key_id.as_str());
    }
    assert_eq!(log[1]["data"]["name"], "k2");
    assert_ne!(log[0]["data"]["tm_delete"], "9999-01-01 00:00:00.000000");

    app.delete_customer(&admin, &id).await;
    let log = events(&app, &admin, json!({ "customerId": id })).await;
    assert_eq!(log[0]["type"], "customer_deleted");
    assert_eq!(log[0]["data"]["status"], "deleted");
    assert_no_secrets(
        &log,
        &[
            "first-password-1",
            "second-password-2",
            "line-secret-value",
            "line-token-value",
            "new-line-secret",
            "new-line-token",
            &key,
        ],
    );
}

#[tokio::test]
async fn a_refused_or_rolled_back_change_leaves_no_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("taken");
    let id = app
        .create_customer_ok(&admin, &username, "a-long-password")
        .await;
    let before = events(&app, &admin, json!({})).await.len();

    // The customer row is inserted, then the guest agent's username clashes
    // with an agent's: the whole transaction, event included, rolls back.
    let clash = unique("clash");
    app.seed_agent(&username, &clash, 16).await;
    let body = app
        .create_customer(
            &admin,
            json!({ "username": clash, "password": "a-long-password" }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let stale = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { updateCustomer(input: {id: $id, name: \"x\", expectedTmUpdate: \"2001-01-01T00:00:00Z\"}) { customer { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT", "{stale}");
    let invalid = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { updateCustomer(input: {id: $id, webhookUri: \"ftp://x\"}) { customer { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&invalid), "BAD_USER_INPUT", "{invalid}");
    assert_eq!(events(&app, &admin, json!({})).await.len(), before);

    let db = app.db.client().await;
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE data->>'username' = $1",
            &[&clash],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_audit_trail_is_for_super_admins_and_each_customers_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mine, other) = (unique("mine"), unique("other"));
    let mine_id = app
        .create_customer_ok(&admin, &mine, "a-long-password")
        .await;
    let other_id = app
        .create_customer_ok(&admin, &other, "a-long-password")
        .await;
    let own_admin = app.token(&mine, "a-long-password").await;
    let (_, key) = app
        .create_access_key_ok(&own_admin, json!({ "name": "k" }))
        .await;

    // A customer's admins and keys read their own customer's events only.
    for credential in [&own_admin, &key] {
        let log = events(&app, credential, json!({})).await;
        assert!(!log.is_empty());
        assert!(
            log.iter().all(|e| e["customerId"] == mine_id.as_str()),
            "{log:?}"
        );
        let theirs = app
            .gql(
                Some(credential),
                EVENTS,
                json!({ "filter": { "customerId": other_id } }),
            )
            .await;
        assert_eq!(error_code(&theirs), "FORBIDDEN", "{theirs}");
    }
    // Plain agents and managers read none.
    for (name, permission) in [("agent", 16), ("manager", 64)] {
        let username = format!("{mine}.{name}");
        app.seed_agent(&mine, &username, permission).await;
        let token = app.token(&username, "a-long-password").await;
        let body = app.gql(Some(&token), EVENTS, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{name}: {body}");
    }
    let anonymous = app.gql(None, EVENTS, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    // Super admins read everyone's, and filter.
    let all = events(&app, &admin, json!({})).await;
    assert!(all.iter().any(|e| e["customerId"] == other_id.as_str()));
    let created = events(&app, &admin, json!({ "types": ["customer_created"] })).await;
    assert!(created.iter().all(|e| e["type"] == "customer_created"));
    assert!(created.iter().any(|e| e["customerId"] == mine_id.as_str()));
    let own_admin_id = agent_id(&app, &own_admin).await;
    let by_actor = events(&app, &admin, json!({ "actorId": own_admin_id })).await;
    assert_eq!(types(&by_actor), ["accesskey_created"]);
    let future = events(
        &app,
        &admin,
        json!({ "createdAfter": "2999-01-01T00:00:00Z" }),
    )
    .await;
    assert!(future.is_empty());

    let unknown = app
        .gql(
            Some(&admin),
            EVENTS,
            json!({ "filter": { "types": ["customer_exploded"] } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT", "{unknown}");
    assert_eq!(error_field(&unknown), "types");
}

#[tokio::test]
async fn the_trail_pages_newest_first_without_gaps() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..7 {
        app.create_customer_ok(&admin, &unique(&format!("paged{i}")), "a-long-password")
            .await;
    }
    let everything = events(&app, &admin, json!({})).await;
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = app
            .gql(Some(&admin), EVENTS, json!({ "first": 3, "after": after }))
            .await;
        let connection = &body["data"]["events"];
        assert_eq!(connection["totalCount"], everything.len());
        for edge in connection["edges"].as_array().unwrap() {
            walked.push(edge["node"].clone());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(walked, everything);
    let times: Vec<&str> = everything
        .iter()
        .map(|e| e["tmCreate"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
}

#[tokio::test]
async fn events_past_their_retention_are_pruned() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, &unique("recent"), "a-long-password")
        .await;
    let db = app.db.client().await;
    db.execute(
        "INSERT INTO events (id, type, tm_create, data) \
         SELECT gen_random_uuid(), 'customer_updated', now() - interval '91 days', '{}'::jsonb \
         FROM generate_series(1, 2500)",
        &[],
    )
    .await
    .unwrap();
    let count = async || -> (i64, i64) {
        let row = db
            .query_one(
                "SELECT count(*) FILTER (WHERE tm_create < now() - interval '90 days'), count(*) FROM events",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let (old, total) = count().await;
    assert_eq!(old, 2500);
    // Every server sweeps at start (and every 10 minutes): a new replica does.
    let _replica = app.replica().await;
    let (old, after) = count().await;
    assert_eq!(old, 0, "pruned in batches past the first");
    assert_eq!(after, total - 2500, "recent events kept");
}

/// A wrong password for an existing agent is recorded for its customer
/// (an audit record of guessing, also sent to its webhook); an unknown
/// username, or an attempt the limiter refused, records nothing.
#[tokio::test]
async fn failed_logins_of_existing_agents_are_recorded_and_nothing_else_is() {
    let app = TestApp::spawn_with(|config| config.login_max_failures_per_address = 3).await;
    let admin = app.admin_token().await;
    let username = unique("guessed");
    let customer_id = app
        .create_customer_ok(&admin, &username, "right-password-1")
        .await;
    // Before the failures lock the username out.
    let own = app.token(&username, "right-password-1").await;
    let failed = app.login(&username, "wrong-password-1").await;
    assert_eq!(error_code(&failed), "UNAUTHENTICATED");
    let unknown = app.login(&unique("nobody"), "wrong-password-1").await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    // The third failure from this address is checked; then the limit refuses
    // before any check, and nothing is recorded.
    for _ in 0..3 {
        app.login(&username, "wrong-password-2").await;
    }

    let recorded = events(&app, &admin, json!({ "types": ["agent_login_failed"] })).await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    for event in &recorded {
        assert_eq!(event["customerId"], customer_id);
        assert!(event["actorId"].is_null(), "{event}");
        assert_eq!(event["data"]["username"], username.as_str());
    }
    assert_no_secrets(&recorded, &["wrong-password-1", "wrong-password-2"]);
    // The customer's own admins see it in their trail.
    let theirs = events(&app, &own, json!({ "types": ["agent_login_failed"] })).await;
    assert_eq!(theirs.len(), 2);
}
