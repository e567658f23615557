//! The webhook secret: who reads it (GraphQL `Customer.webhookSecret`, REST
//! `GET /v1.0/customer` only), who rotates it (`rotateWebhookSecret`), and
//! that deliveries are signed with the current one.

use serde_json::{Value, json};

use super::receiver::Receiver;
use super::{
    PASSWORD, assert_delivery_of, customer_events, hooked_customer, signature, spawn,
    until_delivered, until_settled, update_customer, webhook_secret,
};
use crate::harness::{Reply, TestApp, error_code, send, unique};

const ROTATE: &str = "mutation($id: UUID!) { rotateWebhookSecret(input: {customerId: $id}) { webhookSecret customer { id webhookSecret } } }";

async fn rotate(app: &TestApp, token: Option<&str>, customer_id: &str) -> Value {
    app.gql(token, ROTATE, json!({ "id": customer_id })).await
}

/// Rotates and returns the new secret, checking the answer's shape.
async fn rotate_ok(app: &TestApp, token: &str, customer_id: &str) -> String {
    let body = rotate(app, Some(token), customer_id).await;
    assert!(body["errors"].is_null(), "rotateWebhookSecret: {body}");
    let payload = &body["data"]["rotateWebhookSecret"];
    let secret = payload["webhookSecret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert_eq!(payload["customer"]["id"], customer_id, "{body}");
    assert_eq!(
        payload["customer"]["webhookSecret"],
        secret.as_str(),
        "{body}"
    );
    secret
}

/// A customer with its guest admin, an access key, a plain agent and a manager.
struct Customer {
    id: String,
    admin: String,
    key: String,
    agent: String,
    manager: String,
}

async fn customer(app: &TestApp, admin: &str, prefix: &str) -> Customer {
    let username = unique(prefix);
    let id = app.create_customer_ok(admin, &username, PASSWORD).await;
    let guest = app.token(&username, PASSWORD).await;
    let (_, key) = app
        .create_access_key_ok(&guest, json!({ "name": "k" }))
        .await;
    let agent = format!("{username}.agent");
    app.seed_agent(&username, &agent, 16).await;
    let manager = format!("{username}.manager");
    app.seed_agent(&username, &manager, 64).await;
    Customer {
        id,
        admin: guest,
        key,
        agent: app.token(&agent, PASSWORD).await,
        manager: app.token(&manager, PASSWORD).await,
    }
}

async fn rest_get(app: &TestApp, path: &str, token: &str) -> Reply {
    send(
        app.http()
            .get(format!("{}{path}", app.address))
            .bearer_auth(token),
    )
    .await
}

async fn rest_put(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    send(
        app.http()
            .put(format!("{}{path}", app.address))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn rotating_the_secret_signs_later_deliveries_with_the_new_one() {
    let receiver = Receiver::start().await;
    let app = spawn().await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "rotated", &receiver.url("/r"), None).await;
    until_delivered(&receiver, 2).await;
    let first = webhook_secret(&app, &admin, &c.id).await;
    let events = customer_events(&app, &admin, &c.id).await;
    for (request, event) in receiver.requests().iter().zip(&events) {
        assert_delivery_of(request, event, &first, "POST");
    }

    let mut previous = vec![first];
    for (who, token) in [
        ("the customer's admin", &c.admin),
        ("a super admin", &admin),
    ] {
        let rotated = rotate_ok(&app, token, &c.id).await;
        assert!(
            !previous.contains(&rotated),
            "{who}: the new secret is new: {rotated:?}"
        );
        assert_eq!(webhook_secret(&app, &admin, &c.id).await, rotated, "{who}");
        assert_eq!(
            webhook_secret(&app, &c.admin, &c.id).await,
            rotated,
            "{who}"
        );
        // Whatever the rotation itself appended is settled before the next
        // change, whose event must be signed with the new secret only.
        let before = customer_events(&app, &admin, &c.id).await.len();
        until_settled(&app, &c.id, before).await;
        update_customer(&app, &admin, json!({ "id": c.id, "name": unique("n") })).await;
        let events = customer_events(&app, &admin, &c.id).await;
        assert_eq!(events.len(), before + 1);
        until_settled(&app, &c.id, events.len()).await;
        let last = events.last().unwrap();
        let requests: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.event_id() == last["id"].as_str().unwrap())
            .collect();
        assert_eq!(requests.len(), 1, "{who}: {requests:?}");
        assert_delivery_of(&requests[0], last, &rotated, "POST");
        for old in &previous {
            assert_ne!(
                requests[0].header("x-voipbin-signature").unwrap(),
                signature(old, &requests[0].body),
                "{who}: signed with a secret rotated away"
            );
        }
        previous.push(rotated);
    }
}

#[tokio::test]
async fn only_super_admins_and_the_customers_admins_rotate_its_secret() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "rota").await;
    let b = customer(&app, &admin, "rotb").await;
    let secret = webhook_secret(&app, &admin, &a.id).await;

    for (who, token) in [
        ("another customer's admin", &b.admin),
        ("another customer's access key", &b.key),
        ("a plain agent", &a.agent),
        ("a manager", &a.manager),
    ] {
        let body = rotate(&app, Some(token), &a.id).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
        assert!(
            body["data"].is_null() || body["data"]["rotateWebhookSecret"].is_null(),
            "{who}: {body}"
        );
    }
    let body = rotate(&app, None, &a.id).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(
        webhook_secret(&app, &admin, &a.id).await,
        secret,
        "a refused rotation changes nothing"
    );

    let by_admin = rotate_ok(&app, &a.admin, &a.id).await;
    assert_ne!(by_admin, secret);
    let by_super = rotate_ok(&app, &admin, &a.id).await;
    assert_ne!(by_super, by_admin);
    assert_eq!(webhook_secret(&app, &a.admin, &a.id).await, by_super);
    // Only a's secret moved.
    let b_secret = webhook_secret(&app, &admin, &b.id).await;
    assert!(![&secret, &by_admin, &by_super].contains(&&b_secret));
}

#[tokio::test]
async fn the_secret_is_read_by_super_admins_and_the_customers_admins_only() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "seca").await;
    let b = customer(&app, &admin, "secb").await;
    let secret = webhook_secret(&app, &admin, &a.id).await;
    assert!(secret.len() >= 16, "a guessable secret: {secret:?}");
    assert_ne!(webhook_secret(&app, &admin, &b.id).await, secret);

    // GraphQL.
    for (who, token) in [("its admin", &a.admin), ("its access key", &a.key)] {
        assert_eq!(webhook_secret(&app, token, &a.id).await, secret, "{who}");
        let body = app
            .gql(
                Some(token),
                "{ me { customer { id webhookSecret } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            body["data"]["me"]["customer"]["webhookSecret"], secret,
            "{who}: {body}"
        );
    }
    let listed = app
        .gql(
            Some(&admin),
            "{ customers(first: 100) { nodes { id webhookSecret } } }",
            json!({}),
        )
        .await;
    assert!(listed["errors"].is_null(), "{listed}");
    assert!(
        listed["data"]["customers"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == a.id.as_str() && n["webhookSecret"] == secret.as_str()),
        "{listed}"
    );
    for (who, token, query) in [
        (
            "its manager",
            &a.manager,
            "query($id: UUID!) { customer(id: $id) { id webhookSecret } }",
        ),
        (
            "its manager",
            &a.manager,
            "{ me { customer { id webhookSecret } } }",
        ),
        (
            "its plain agent",
            &a.agent,
            "{ me { customer { id webhookSecret } } }",
        ),
        (
            "another customer's admin",
            &b.admin,
            "query($id: UUID!) { customer(id: $id) { id webhookSecret } }",
        ),
        (
            "another customer's access key",
            &b.key,
            "query($id: UUID!) { customer(id: $id) { id webhookSecret } }",
        ),
    ] {
        let body = app.gql(Some(token), query, json!({ "id": a.id })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {query}: {body}");
        assert!(
            !body.to_string().contains(&secret),
            "{who}: the secret leaks: {body}"
        );
    }
    // The manager still reads the rest of the customer.
    let body = app
        .gql(
            Some(&a.manager),
            "query($id: UUID!) { customer(id: $id) { id name } }",
            json!({ "id": a.id }),
        )
        .await;
    assert_eq!(body["data"]["customer"]["id"], a.id.as_str(), "{body}");

    // REST: only the caller's own customer, read with GET, shows it.
    for (who, token) in [("its admin", &a.admin), ("its access key", &a.key)] {
        let own = rest_get(&app, "/v1.0/customer", token).await;
        assert_eq!(own.status, 200, "{who}: {:?}", own.body);
        assert_eq!(own.body["id"], a.id.as_str());
        assert_eq!(own.body["webhook_secret"], secret.as_str(), "{who}");
    }
    let path = format!("/v1.0/customers/{}", a.id);
    let mut answers = vec![
        (
            "GET by id, super admin",
            rest_get(&app, &path, &admin).await,
        ),
        (
            "GET by id, its admin",
            rest_get(&app, &path, &a.admin).await,
        ),
        ("GET by id, its key", rest_get(&app, &path, &a.key).await),
        ("list", rest_get(&app, "/v1.0/customers", &admin).await),
        (
            "PUT by id",
            rest_put(&app, &path, &a.admin, json!({ "detail": "d1" })).await,
        ),
        (
            "PUT own",
            rest_put(&app, "/v1.0/customer", &a.admin, json!({ "detail": "d2" })).await,
        ),
    ];
    let created = send(
        app.http()
            .post(format!("{}/v1.0/customers", app.address))
            .bearer_auth(&admin)
            .json(&json!({ "username": unique("restmade"), "password": PASSWORD })),
    )
    .await;
    answers.push(("POST", created));
    for (what, reply) in &answers {
        assert!(
            (200..300).contains(&reply.status),
            "{what}: {} {:?}",
            reply.status,
            reply.body
        );
        let text = reply.body.to_string();
        assert!(
            !text.contains("webhook_secret") && !text.contains(&secret),
            "{what}: {text}"
        );
    }
}

/// `GET /v1.0/customer` is open to the customer's managers too; the secret
/// in it is not (as in GraphQL, where a manager's `webhookSecret` is
/// FORBIDDEN).
#[tokio::test]
async fn a_manager_reading_its_own_customer_over_rest_gets_no_secret() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "secm").await;
    let secret = webhook_secret(&app, &admin, &a.id).await;
    let own = rest_get(&app, "/v1.0/customer", &a.manager).await;
    let text = own.body.to_string();
    assert!(
        !text.contains(&secret),
        "a manager reads the webhook secret over REST ({}): {text}",
        own.status
    );
}
