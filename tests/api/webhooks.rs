//! Webhooks: every event of a customer with a `webhookUri` is sent to it,
//! in event order, as `{"type", "data"}` signed with the customer's webhook
//! secret (`X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256>`), retried with
//! backoff while the receiver fails transiently, given up on a permanent
//! failure, never sent to private addresses unless configured to, and sent
//! once however many replicas share the queue (`webhook_deliveries`).
//!
//! The receiver is a real HTTP server on 127.0.0.1 run by the test
//! (`receiver`), so every test but `ssrf`'s allows private targets.

mod changes;
mod crash;
mod deliveries;
mod failures;
mod receiver;
mod replicas;
mod secrets;
mod shutdown;
mod ssrf;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use customer_api::Config;
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, sql_count, unique};
use receiver::{Received, Receiver};

pub const PASSWORD: &str = "a-long-password";

/// Generous for a loaded machine: deliveries take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Settings for delivering to the test's receiver quickly: delivery on (the
/// harness turns it off for every other test), private targets allowed,
/// short polls and backoff.
pub fn fast(config: &mut Config) {
    config.webhook_delivery = true;
    config.webhook_allow_private_targets = true;
    config.webhook_retry_base_ms = 50;
    config.webhook_retry_max_ms = 400;
    config.webhook_timeout_ms = 2_000;
    config.webhook_poll_interval_ms = 50;
}

pub async fn spawn() -> TestApp {
    TestApp::spawn_with(fast).await
}

const SECRET: &str = "query($id: UUID!) { customer(id: $id) { id webhookSecret } }";

const CUSTOMER_EVENTS: &str = "query($id: UUID!) { events(filter: {customerId: $id}, first: 100) { edges { node { id type customerId data } } } }";

const UPDATE: &str =
    "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { customer { id } } }";

/// A customer made by a super admin, with its guest admin's token.
pub struct Hooked {
    pub id: String,
    pub admin: String,
}

/// Creates a customer whose webhook is `uri` (`method` null: POST).
pub async fn hooked_customer(
    app: &TestApp,
    admin: &str,
    prefix: &str,
    uri: &str,
    method: Option<&str>,
) -> Hooked {
    let username = unique(prefix);
    let body = app
        .create_customer(
            admin,
            json!({
                "username": username, "password": PASSWORD,
                "webhookUri": uri, "webhookMethod": method,
                "lineSecret": "line-secret-value", "lineToken": "line-token-value",
            }),
        )
        .await;
    let id = body["data"]["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCustomer failed: {body}"))
        .to_owned();
    let admin = app.token(&username, PASSWORD).await;
    Hooked { id, admin }
}

pub async fn update_customer(app: &TestApp, token: &str, input: Value) {
    let body = app
        .gql(Some(token), UPDATE, json!({ "input": input }))
        .await;
    assert!(body["errors"].is_null(), "updateCustomer: {body}");
}

/// The customer's webhook secret, as `token` reads it through GraphQL.
pub async fn webhook_secret(app: &TestApp, token: &str, customer_id: &str) -> String {
    let body = app
        .gql(Some(token), SECRET, json!({ "id": customer_id }))
        .await;
    body["data"]["customer"]["webhookSecret"]
        .as_str()
        .unwrap_or_else(|| panic!("read webhookSecret: {body}"))
        .to_owned()
}

/// The customer's events, oldest first, as a super admin reads them.
pub async fn customer_events(app: &TestApp, admin: &str, customer_id: &str) -> Vec<Value> {
    let body = app
        .gql(Some(admin), CUSTOMER_EVENTS, json!({ "id": customer_id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let mut events: Vec<Value> = body["data"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    events.reverse();
    events
}

pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// One row of `webhook_deliveries`.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event_id: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// The customer's rows of `webhook_deliveries`, by event id.
pub async fn deliveries(app: &TestApp, customer_id: &str) -> HashMap<String, Delivery> {
    let client = app.db.client().await;
    client
        .query(
            "SELECT event_id::text, state::text, attempts::bigint, last_status::bigint, last_error::text \
             FROM webhook_deliveries WHERE customer_id = $1::text::uuid",
            &[&customer_id],
        )
        .await
        .unwrap_or_else(|e| panic!("read webhook_deliveries: {e}"))
        .iter()
        .map(|row| {
            let delivery = Delivery {
                event_id: row.get(0),
                state: row.get(1),
                attempts: row.get(2),
                last_status: row.get(3),
                last_error: row.get(4),
            };
            (delivery.event_id.clone(), delivery)
        })
        .collect()
}

/// Waits until the customer has `count` deliveries, none of them pending.
pub async fn until_settled(
    app: &TestApp,
    customer_id: &str,
    count: usize,
) -> HashMap<String, Delivery> {
    eventually(
        &format!("{count} settled deliveries of {customer_id}"),
        PATIENCE,
        || async {
            let rows = deliveries(app, customer_id).await;
            (rows.len() == count && rows.values().all(|d| d.state != "pending")).then_some(rows)
        },
    )
    .await
}

/// Waits until the receiver has answered `count` requests with a 2xx.
pub async fn until_delivered(receiver: &Receiver, count: usize) -> Vec<Received> {
    eventually(
        &format!("{count} successful requests at the receiver"),
        PATIENCE,
        || async {
            let requests = receiver.requests();
            (requests.iter().filter(|r| r.succeeded()).count() >= count).then_some(requests)
        },
    )
    .await
}

/// Gives a wrongly repeated or late delivery the time to show up: several
/// poll intervals and retry delays.
pub async fn linger() {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// `sha256=<lower-case hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), body);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The fields no delivered body may carry.
const SECRET_FIELDS: [&str; 8] = [
    "line_secret",
    "line_token",
    "webhook_secret",
    "password",
    "password_hash",
    "token",
    "token_hash",
    "secret",
];

/// Fails unless `request` is the delivery of `event`: method, headers,
/// body `{"type", "data"}` and a signature made with `secret`.
pub fn assert_delivery_of(request: &Received, event: &Value, secret: &str, method: &str) {
    let what = format!("delivery of {} {}", event["type"], event["id"]);
    assert_eq!(request.method, method, "{what}");
    let content_type = request.header("content-type").unwrap_or_default();
    assert_eq!(
        content_type
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_ascii_lowercase(),
        "application/json",
        "{what}: Content-Type {content_type:?}"
    );
    assert_eq!(request.header_count("x-voipbin-event-id"), 1, "{what}");
    assert_eq!(
        request.event_id(),
        event["id"].as_str().unwrap(),
        "{what}: X-VoIPBIN-Event-Id"
    );
    let body = request.json();
    assert_eq!(
        body,
        json!({ "type": event["type"], "data": event["data"] }),
        "{what}: the body is exactly {{type, data}}"
    );
    assert_eq!(request.header_count("x-voipbin-signature"), 1, "{what}");
    assert_eq!(
        request.header("x-voipbin-signature").unwrap(),
        signature(secret, &request.body),
        "{what}: the signature is the HMAC of the exact body with {secret:?}"
    );
    if let Some(data) = body["data"].as_object() {
        for field in SECRET_FIELDS {
            assert!(!data.contains_key(field), "{what}: {field} in {body}");
        }
    }
    assert!(!request.text().contains("$argon2"), "{what}");
}

/// Fails unless the requests (of one customer, in order of arrival) go in
/// event order: the event of each request is never earlier than that of the
/// one before (a later event is not sent before an earlier one is settled,
/// nor an earlier one after), and an event is not sent again once answered
/// with a 2xx. Every request must name one of `events`.
pub fn assert_in_event_order(requests: &[&Received], events: &[Value]) {
    let position: HashMap<String, usize> = ids(events)
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut last = 0;
    let mut succeeded = HashSet::new();
    for (n, request) in requests.iter().enumerate() {
        let id = request.event_id();
        let at = *position
            .get(&id)
            .unwrap_or_else(|| panic!("request {n} names no event of the customer: {id:?}"));
        assert!(
            at >= last,
            "request {n} sends event {at} ({}) after event {last}: {:?}",
            events[at]["type"],
            summary(requests)
        );
        assert!(
            !succeeded.contains(&id),
            "request {n} sends event {at} again after it was delivered: {:?}",
            summary(requests)
        );
        if request.succeeded() {
            succeeded.insert(id);
        }
        last = at;
    }
}

/// `(event id, answer)` of each request, for failure messages.
pub fn summary(requests: &[&Received]) -> Vec<(String, u16)> {
    requests
        .iter()
        .map(|r| (r.event_id(), r.answered))
        .collect()
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let hex = |mac: [u8; 32]| -> String { mac.iter().map(|b| format!("{b:02x}")).collect() };
    assert_eq!(
        hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hex(hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[tokio::test]
async fn every_event_reaches_the_webhook_signed_in_order_without_secrets() {
    let receiver = Receiver::start().await;
    let app = spawn().await;
    let admin = app.admin_token().await;
    let quiet = app
        .create_customer_ok(&admin, &unique("quiet"), PASSWORD)
        .await;
    let c = hooked_customer(&app, &admin, "hooked", &receiver.url("/hooks/one"), None).await;
    // customer_created and agent_created (the guest agent).
    until_delivered(&receiver, 2).await;

    update_customer(&app, &admin, json!({ "id": c.id, "name": "Renamed" })).await;
    let (key_id, key) = app
        .create_access_key_ok(&c.admin, json!({ "name": "k1" }))
        .await;
    until_delivered(&receiver, 4).await;

    // From now on PUT, this change's own event included.
    update_customer(
        &app,
        &c.admin,
        json!({ "id": c.id, "webhookMethod": "PUT" }),
    )
    .await;
    let renamed = app
        .gql(
            Some(&c.admin),
            "mutation($id: UUID!) { updateAccessKey(input: {id: $id, name: \"k2\"}) { accessKey { id } } }",
            json!({ "id": key_id }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    until_delivered(&receiver, 6).await;

    let events = customer_events(&app, &admin, &c.id).await;
    assert_eq!(
        types(&events),
        [
            "customer_created",
            "agent_created",
            "customer_updated",
            "accesskey_created",
            "customer_updated",
            "accesskey_updated"
        ]
    );
    let secret = webhook_secret(&app, &admin, &c.id).await;
    assert_eq!(webhook_secret(&app, &c.admin, &c.id).await, secret);
    let settled = until_settled(&app, &c.id, events.len()).await;
    linger().await;

    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        events.len(),
        "one request per event: {:?}",
        summary(&requests.iter().collect::<Vec<_>>())
    );
    assert_in_event_order(&requests.iter().collect::<Vec<_>>(), &events);
    for (i, (request, event)) in requests.iter().zip(&events).enumerate() {
        let method = if i < 4 { "POST" } else { "PUT" };
        assert_delivery_of(request, event, &secret, method);
        assert_eq!(request.path, "/hooks/one");
        for value in [
            PASSWORD,
            "line-secret-value",
            "line-token-value",
            &key,
            &secret,
            &c.admin,
        ] {
            assert!(
                !request.text().contains(value),
                "a secret in {}",
                request.text()
            );
        }
        let row = &settled[event["id"].as_str().unwrap()];
        assert_eq!(row.state, "delivered", "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        assert_eq!(row.last_status, Some(200), "{row:?}");
    }

    // A customer without a webhook has nothing queued.
    let queued = sql_count(
        &app.db.client().await,
        "SELECT count(*) FROM webhook_deliveries WHERE customer_id = $1::text::uuid",
        &[&quiet],
    )
    .await;
    assert_eq!(queued, 0);
}

/// Whether an event is sent depends on the customer's `webhookUri` when the
/// event is appended: the change that sets it is sent, the one that clears
/// it is not; every event type goes out, the deletion included.
#[tokio::test]
async fn the_webhook_applies_from_the_event_of_the_change_that_sets_it() {
    let receiver = Receiver::start().await;
    let app = spawn().await;
    let admin = app.admin_token().await;
    let username = unique("later");
    let id = app.create_customer_ok(&admin, &username, PASSWORD).await;
    let guest = app.token(&username, PASSWORD).await;
    let guest_id = app
        .gql(Some(&guest), "{ me { agent { id } } }", json!({}))
        .await["data"]["me"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": receiver.url("/h"), "webhookMethod": "POST" }),
    )
    .await;
    for mutation in [
        "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
        "mutation($id: UUID!) { recoverCustomer(input: {id: $id}) { customer { id } } }",
    ] {
        let body = app.gql(Some(&admin), mutation, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = app
        .set_agent_password(&admin, &guest_id, "another-long-password")
        .await;
    assert!(body["errors"].is_null(), "{body}");
    until_delivered(&receiver, 4).await;

    // Cleared: this change and the next are not sent.
    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": null, "webhookMethod": null }),
    )
    .await;
    update_customer(&app, &admin, json!({ "id": id, "name": "unsent" })).await;
    // Set again, then the customer is deleted.
    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": receiver.url("/h") }),
    )
    .await;
    let deleted = app.delete_customer(&admin, &id).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    until_delivered(&receiver, 6).await;

    let events = customer_events(&app, &admin, &id).await;
    assert_eq!(
        types(&events),
        [
            "customer_created",
            "agent_created",
            "customer_updated",
            "customer_frozen",
            "customer_recovered",
            "agent_updated",
            "customer_updated",
            "customer_updated",
            "customer_updated",
            "customer_deleted",
        ]
    );
    let sent: Vec<Value> = [2, 3, 4, 5, 8, 9]
        .into_iter()
        .map(|i| events[i].clone())
        .collect();
    until_settled(&app, &id, sent.len()).await;
    linger().await;
    let requests = receiver.requests();
    assert_eq!(
        requests.iter().map(Received::event_id).collect::<Vec<_>>(),
        ids(&sent),
        "{:?}",
        types(&sent)
    );
    // A deleted customer's secret is still readable by a super admin, who
    // checks the last signature with it.
    let secret = webhook_secret(&app, &admin, &id).await;
    for (request, event) in requests.iter().zip(&sent) {
        assert_delivery_of(request, event, &secret, "POST");
        assert!(!request.text().contains("another-long-password"));
    }
    assert_eq!(requests[5].json()["data"]["status"], "deleted");
}
