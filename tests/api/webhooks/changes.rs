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
/// id and the admin token.
async fn one_event_queued_while_down(app: &TestApp, first: &Receiver) -> (String, String) {
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
    (c.id, admin)
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
    let (id, admin) = one_event_queued_while_down(&app, &first).await;
    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": second.url("/new") }),
    )
    .await;
    first.up().await;
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
    let (id, admin) = one_event_queued_while_down(&app, &first).await;
    update_customer(
        &app,
        &admin,
        json!({ "id": id, "webhookUri": null, "webhookMethod": null }),
    )
    .await;
    first.up().await;
    let events = customer_events(&app, &admin, &id).await;
    assert_eq!(events.len(), 4, "the clearing change is an event too");
    let settled = until_settled(&app, &id, 3).await;
    linger().await;
    assert_eq!(
        event_ids(&first.requests()),
        ids(&events[..2]),
        "nothing is sent once the webhook is cleared: {settled:?}"
    );
    let queued = events[2]["id"].as_str().unwrap();
    let cancelled = &settled[queued];
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
