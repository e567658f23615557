//! A customer has one webhook endpoint, whose address it may change: what is
//! still queued goes to the endpoint as it is when sent (a customer moves
//! its endpoint because the old one is gone), and clearing the webhook
//! cancels what is still queued, visibly (`failed`, with the reason).

use serde_json::json;

use super::receiver::{Received, Receiver};
use super::{
    PATIENCE, assert_delivery_of, customer_events, deliveries, fast, hooked_customer, ids, linger,
    until_delivered, until_settled, update_customer, webhook_secret,
};
use crate::harness::{TestApp, eventually};

/// A customer whose webhook is `first`, with its first two events delivered
/// and a third queued while `first` is down (and tried once); returns its
/// id, the admin token and the queued event's id.
async fn one_event_queued_while_down(app: &TestApp, first: &Receiver) -> (String, String, String) {
    let admin = app.admin_token().await;
    let c = hooked_customer(app, &admin, "moved", &first.url("/old"), None).await;
    until_delivered(first, 2).await;
    first.down().await;
    update_customer(app, &admin, json!({ "id": c.id, "name": "while down" })).await;
    let events = customer_events(app, &admin, &c.id).await;
    let queued = events[2]["id"].as_str().unwrap().to_owned();
    eventually("a refused attempt", PATIENCE, || async {
        deliveries(app, &c.id)
            .await
            .remove(&queued)
            .filter(|d| d.attempts >= 1)
            .map(drop)
    })
    .await;
    (c.id, admin, queued)
}

/// Makes `change` to the customer's webhook while no attempt of the queued
/// delivery is claimed or in flight, then brings `first` up again. An
/// attempt claimed before a change is sent as it was claimed (the HTTP
/// request cannot be recalled); the guarantee under test is about what is
/// claimed after it. Holding the delivery's row lock keeps the worker
/// (`FOR UPDATE SKIP LOCKED`) from claiming it meanwhile; a lease still
/// held means an attempt is under way, refused by the closed port, and is
/// waited out.
async fn change_between_attempts(
    app: &TestApp,
    admin: &str,
    queued: &str,
    first: &Receiver,
    change: serde_json::Value,
) {
    let mut client = app.db.client().await;
    let holding = loop {
        let holding = client.transaction().await.unwrap();
        let idle: bool = holding
            .query_one(
                "SELECT lease_until IS NULL OR lease_until < now() FROM webhook_deliveries \
                 WHERE event_id = $1::text::uuid FOR UPDATE",
                &[&queued],
            )
            .await
            .unwrap()
            .get(0);
        if idle {
            break holding;
        }
        holding.rollback().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    update_customer(app, admin, change).await;
    first.up().await;
    holding.rollback().await.unwrap();
}

fn event_ids(requests: &[Received]) -> Vec<String> {
    requests.iter().map(Received::event_id).collect()
}

#[tokio::test]
async fn an_event_queued_before_the_webhook_moves_follows_it_to_the_new_uri() {
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 100;
    })
    .await;
    let (id, admin, queued) = one_event_queued_while_down(&app, &first).await;
    let moved = json!({ "id": id, "webhookUri": second.url("/new") });
    change_between_attempts(&app, &admin, &queued, &first, moved).await;
    let events = customer_events(&app, &admin, &id).await;
    assert_eq!(events.len(), 4);
    let settled = until_settled(&app, &id, events.len()).await;
    linger().await;

    let secret = webhook_secret(&app, &admin, &id).await;
    assert_eq!(
        event_ids(&second.requests()),
        ids(&events[2..]),
        "the queued event and the later ones go to the endpoint's new address, in order"
    );
    assert_eq!(
        event_ids(&first.requests()),
        ids(&events[..2]),
        "nothing more reaches the old address once it has moved"
    );
    assert_delivery_of(&second.requests()[0], &events[2], &secret, "POST");
    assert!(
        settled.values().all(|d| d.state == "delivered"),
        "{settled:?}"
    );
}

#[tokio::test]
async fn clearing_the_webhook_cancels_what_is_still_queued() {
    let first = Receiver::start().await;
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 100;
    })
    .await;
    let (id, admin, queued) = one_event_queued_while_down(&app, &first).await;
    let cleared = json!({ "id": id, "webhookUri": null, "webhookMethod": null });
    change_between_attempts(&app, &admin, &queued, &first, cleared).await;
    let events = customer_events(&app, &admin, &id).await;
    assert_eq!(events.len(), 4, "the clearing change is an event too");
    let settled = until_settled(&app, &id, 3).await;
    linger().await;
    assert_eq!(
        event_ids(&first.requests()),
        ids(&events[..2]),
        "nothing is sent once the webhook is cleared: {settled:?}"
    );
    let cancelled = &settled[&queued];
    assert_eq!(cancelled.state, "failed", "{cancelled:?}");
    assert!(
        cancelled
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no webhook")),
        "{cancelled:?}"
    );
    assert!(
        !settled.contains_key(events[3]["id"].as_str().unwrap()),
        "the clearing change itself is not queued"
    );
}
