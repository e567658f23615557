//! What became of each event's delivery: `webhookDeliveries` (with every
//! attempt's status or error, read under the audit trail's rules, one
//! statement per page and one for the page's attempts), `redeliverEvent`,
//! and the delivery metrics.

mod costs;

use serde_json::{Value, json};

use super::receiver::{Answer, Receiver};
use super::{
    PASSWORD, PATIENCE, customer_events, fast, hooked_customer, ids, linger, until_delivered,
    until_settled, update_customer,
};
use crate::harness::{TestApp, captured_logs, error_code, error_field, eventually, unique};

const DELIVERIES: &str = "query($filter: WebhookDeliveryFilter, $first: Int, $after: String) { webhookDeliveries(filter: $filter, first: $first, after: $after) { totalCount edges { cursor node { eventId customerId state attemptCount nextAttemptAt lastStatusCode lastError tmCreate tmUpdate event { id type customerId } attempts { number tmAttempt statusCode error } } } pageInfo { hasNextPage endCursor } } }";

const REDELIVER: &str = "mutation($id: UUID!) { redeliverEvent(input: {eventId: $id}) { delivery { eventId state attemptCount nextAttemptAt tmCreate event { id } attempts { number statusCode } } } }";

async fn page(app: &TestApp, token: &str, filter: Value, first: i32, after: Option<&str>) -> Value {
    app.gql(
        Some(token),
        DELIVERIES,
        json!({ "filter": filter, "first": first, "after": after }),
    )
    .await
}

/// Every delivery `token` may read under `filter`, newest first.
async fn all(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = page(app, token, filter.clone(), 20, after.as_deref()).await;
        assert!(body["errors"].is_null(), "{body}");
        let connection = &body["data"]["webhookDeliveries"];
        for edge in connection["edges"].as_array().unwrap() {
            nodes.push(edge["node"].clone());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
}

fn by_event<'a>(nodes: &'a [Value], event_id: &str) -> &'a Value {
    nodes
        .iter()
        .find(|n| n["eventId"] == event_id)
        .unwrap_or_else(|| panic!("no delivery of {event_id} in {nodes:?}"))
}

fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect()
}

fn numbers(delivery: &Value) -> Vec<i64> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["number"].as_i64().unwrap())
        .collect()
}

async fn username_of(app: &TestApp, token: &str) -> String {
    let body = app
        .gql(Some(token), "{ me { agent { username } } }", json!({}))
        .await;
    body["data"]["me"]["agent"]["username"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn attempts_show_a_failing_then_succeeding_delivery_with_its_status_codes() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::status(500)]);
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "history", &receiver.url("/h"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    until_settled(&app, &c.id, events.len()).await;

    let nodes = all(&app, &c.admin, json!({})).await;
    let expected: Vec<String> = ids(&events).into_iter().rev().collect();
    let listed: Vec<&str> = nodes
        .iter()
        .map(|n| n["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected, "newest first, the customer's own only");

    let first = by_event(&nodes, events[0]["id"].as_str().unwrap());
    assert_eq!(first["state"], "DELIVERED", "{first}");
    assert_eq!(first["attemptCount"], 2, "{first}");
    assert_eq!(statuses(first), [json!(500), json!(200)], "{first}");
    assert_eq!(numbers(first), [1, 2]);
    assert_eq!(
        first["attempts"][0]["error"], "the endpoint answered 500",
        "{first}"
    );
    assert!(first["attempts"][1]["error"].is_null(), "{first}");
    assert!(
        time(&first["attempts"][0]["tmAttempt"]) < time(&first["attempts"][1]["tmAttempt"]),
        "{first}"
    );
    assert_eq!(first["lastStatusCode"], 200);
    assert!(first["lastError"].is_null() && first["nextAttemptAt"].is_null());
    assert_eq!(first["customerId"], c.id.as_str());
    assert_eq!(first["event"]["id"], events[0]["id"]);
    assert_eq!(first["event"]["type"], events[0]["type"]);
    assert_eq!(first["event"]["customerId"], c.id.as_str());
    let second = by_event(&nodes, events[1]["id"].as_str().unwrap());
    assert_eq!(statuses(second), [json!(200)], "{second}");
    assert_eq!(second["attemptCount"], 1);
}

#[tokio::test]
async fn deliveries_page_newest_first_and_filter_by_state_and_event() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::status(404)]);
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "paged", &receiver.url("/p"), None).await;
    for n in 0..5 {
        update_customer(&app, &admin, json!({ "id": c.id, "name": format!("n{n}") })).await;
    }
    let events = customer_events(&app, &admin, &c.id).await;
    assert_eq!(events.len(), 7);
    until_settled(&app, &c.id, events.len()).await;

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = page(
            &app,
            &admin,
            json!({ "customerId": c.id }),
            3,
            after.as_deref(),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
        let connection = &body["data"]["webhookDeliveries"];
        assert_eq!(connection["totalCount"], 7, "{body}");
        for edge in connection["edges"].as_array().unwrap() {
            walked.push(edge["node"]["eventId"].as_str().unwrap().to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    let newest_first: Vec<String> = ids(&events).into_iter().rev().collect();
    assert_eq!(
        walked, newest_first,
        "pages of 3, newest first, no gap or repeat"
    );

    let failed = all(
        &app,
        &admin,
        json!({ "customerId": c.id, "state": "FAILED" }),
    )
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["eventId"], events[0]["id"]);
    assert_eq!(statuses(&failed[0]), [json!(404)]);
    assert_eq!(failed[0]["lastError"], "the endpoint answered 404");
    let delivered = all(
        &app,
        &admin,
        json!({ "customerId": c.id, "state": "DELIVERED" }),
    )
    .await;
    assert_eq!(delivered.len(), 6);
    assert!(delivered.iter().all(|d| d["state"] == "DELIVERED"));
    let pending = all(
        &app,
        &admin,
        json!({ "customerId": c.id, "state": "PENDING" }),
    )
    .await;
    assert!(pending.is_empty(), "{pending:?}");
    let one = all(&app, &admin, json!({ "eventId": events[3]["id"] })).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["eventId"], events[3]["id"]);

    let bad = page(&app, &admin, json!({}), 3, Some("not-a-cursor")).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(error_field(&bad), "after");
}

#[tokio::test]
async fn deliveries_are_read_and_redelivered_under_the_audit_trails_rules() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let a = hooked_customer(&app, &admin, "ours", &receiver.url("/a"), None).await;
    let b = hooked_customer(&app, &admin, "theirs", &receiver.url("/b"), None).await;
    let (a_events, b_events) = (
        customer_events(&app, &admin, &a.id).await,
        customer_events(&app, &admin, &b.id).await,
    );
    until_settled(&app, &a.id, a_events.len()).await;
    until_settled(&app, &b.id, b_events.len()).await;
    let b_event = b_events[0]["id"].as_str().unwrap();

    // A customer's admin, and its access key: their own customer's only.
    let (_, key) = app
        .create_access_key_ok(&a.admin, json!({ "name": "k" }))
        .await;
    for token in [&a.admin, &key] {
        let own = all(&app, token, json!({})).await;
        assert_eq!(
            own.len(),
            a_events.len() + 1,
            "the key's creation too: {own:?}"
        );
        assert!(own.iter().all(|d| d["customerId"] == a.id.as_str()));
        let theirs = page(&app, token, json!({ "customerId": b.id }), 5, None).await;
        assert_eq!(
            error_code(&theirs),
            "FORBIDDEN",
            "as `events` answers: {theirs}"
        );
        assert!(
            all(&app, token, json!({ "eventId": b_event }))
                .await
                .is_empty()
        );
        let redelivered = app
            .gql(Some(token), REDELIVER, json!({ "id": b_event }))
            .await;
        assert_eq!(error_code(&redelivered), "NOT_FOUND", "{redelivered}");
        let unknown = app
            .gql(
                Some(token),
                REDELIVER,
                json!({ "id": uuid::Uuid::new_v4() }),
            )
            .await;
        assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");
        assert_eq!(
            unknown["errors"][0]["message"], redelivered["errors"][0]["message"],
            "another customer's event reads as a missing one"
        );
    }

    // Agents that are not admins, and anonymous callers: refused.
    let a_username = username_of(&app, &a.admin).await;
    for (name, permission) in [("agent", 16), ("manager", 64)] {
        let username = unique(name);
        app.seed_agent(&a_username, &username, permission).await;
        let token = app.token(&username, PASSWORD).await;
        let body = page(&app, &token, json!({}), 5, None).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{name}: {body}");
        let own_event = a_events[0]["id"].as_str().unwrap();
        let body = app
            .gql(Some(&token), REDELIVER, json!({ "id": own_event }))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{name}: {body}");
    }
    let body = app.gql(None, DELIVERIES, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let body = app.gql(None, REDELIVER, json!({ "id": b_event })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // Super admins: everyone's.
    let everyone = all(&app, &admin, json!({})).await;
    for id in ids(&a_events).iter().chain(ids(&b_events).iter()) {
        by_event(&everyone, id);
    }
    let sent = a_events.len() + b_events.len() + 1;
    until_delivered(&receiver, sent).await;
    linger().await;
    assert_eq!(
        receiver.requests().len(),
        sent,
        "no refused redelivery was sent"
    );
}

#[tokio::test]
async fn redelivering_a_delivered_event_sends_it_again_and_the_history_grows() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "again", &receiver.url("/r"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    until_settled(&app, &c.id, events.len()).await;
    let event_id = events[0]["id"].as_str().unwrap();
    let before = by_event(&all(&app, &c.admin, json!({})).await, event_id).clone();
    let log_size = customer_events(&app, &admin, &c.id).await.len();

    receiver.script([Answer::status(503)]);
    let body = app
        .gql(Some(&c.admin), REDELIVER, json!({ "id": event_id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let delivery = &body["data"]["redeliverEvent"]["delivery"];
    assert_eq!(delivery["eventId"], event_id);
    assert_eq!(delivery["state"], "PENDING", "{delivery}");
    assert_eq!(delivery["attemptCount"], 1, "attempts so far: {delivery}");
    assert!(delivery["nextAttemptAt"].is_string(), "{delivery}");
    assert!(
        time(&delivery["tmCreate"]) > time(&before["tmCreate"]),
        "at the tail of the queue: {delivery}"
    );

    // Sent again (503, then 200): same id, same body, same signature.
    let requests = until_delivered(&receiver, events.len() + 1).await;
    let sends: Vec<_> = requests
        .iter()
        .filter(|r| r.event_id() == event_id)
        .collect();
    assert_eq!(sends.len(), 3, "{:?}", super::summary(&sends));
    assert!(sends.iter().all(|r| r.body == sends[0].body));
    assert!(
        sends
            .iter()
            .all(|r| r.header("x-voipbin-signature") == sends[0].header("x-voipbin-signature"))
    );

    let after = eventually("the redelivery settled", PATIENCE, || async {
        let nodes = all(&app, &c.admin, json!({ "eventId": event_id })).await;
        (nodes[0]["state"] == "DELIVERED").then(|| nodes[0].clone())
    })
    .await;
    assert_eq!(
        numbers(&after),
        [1, 2, 3],
        "the history keeps counting: {after}"
    );
    assert_eq!(statuses(&after), [json!(200), json!(503), json!(200)]);
    assert_eq!(after["attemptCount"], 3);
    assert_eq!(
        customer_events(&app, &admin, &c.id).await.len(),
        log_size,
        "a redelivery appends no event"
    );
    assert!(
        captured_logs()
            .lines()
            .any(|l| l.contains("webhook redelivery requested") && l.contains(event_id)),
        "the redelivery is logged with its event id"
    );
    linger().await;
    assert_eq!(
        receiver.requests().len(),
        events.len() + 2,
        "nothing else was sent"
    );
}

#[tokio::test]
async fn redelivery_needs_a_webhook_and_creates_a_missing_delivery() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let username = unique("unhooked");
    let id = app.create_customer_ok(&admin, &username, PASSWORD).await;
    let own = app.token(&username, PASSWORD).await;
    let created = customer_events(&app, &admin, &id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        all(&app, &admin, json!({ "customerId": id }))
            .await
            .is_empty()
    );

    for token in [&admin, &own] {
        let body = app
            .gql(Some(token), REDELIVER, json!({ "id": created }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_field(&body), "eventId");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("no webhook"), "{message}");
    }
    assert!(
        all(&app, &admin, json!({ "customerId": id }))
            .await
            .is_empty()
    );

    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": receiver.url("/late") }),
    )
    .await;
    // The change that set the webhook is delivered by itself.
    until_delivered(&receiver, 1).await;
    let body = app
        .gql(Some(&own), REDELIVER, json!({ "id": created }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let delivery = &body["data"]["redeliverEvent"]["delivery"];
    assert_eq!(delivery["state"], "PENDING");
    assert_eq!(delivery["attemptCount"], 0);
    assert_eq!(delivery["attempts"], json!([]));

    let requests = until_delivered(&receiver, 2).await;
    assert_eq!(
        requests[1].event_id(),
        created,
        "sent after what was queued"
    );
    assert_eq!(requests[1].json()["type"], "customer_created");
    let nodes = eventually("the created delivery settled", PATIENCE, || async {
        let nodes = all(&app, &admin, json!({ "customerId": id })).await;
        nodes
            .iter()
            .all(|n| n["state"] == "DELIVERED")
            .then_some(nodes)
    })
    .await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(
        nodes[0]["eventId"],
        created.as_str(),
        "queued last, listed first"
    );
    assert_eq!(statuses(&nodes[0]), [json!(200)]);
}
