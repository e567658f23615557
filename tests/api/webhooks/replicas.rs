//! Replicas share the queue: each event is sent once, whichever replica
//! appended it and however many poll the queue.

use std::collections::HashMap;

use serde_json::json;

use super::receiver::{Received, Receiver};
use super::{
    assert_in_event_order, customer_events, hooked_customer, linger, spawn, summary, until_settled,
    update_customer,
};

#[tokio::test]
async fn replicas_sharing_the_database_send_each_event_once() {
    let receiver = Receiver::start().await;
    let app = spawn().await;
    let replicas = [app.replica().await, app.replica().await];
    let servers = [&app, &replicas[0], &replicas[1]];
    let admin = app.admin_token().await;

    let mut customers = Vec::new();
    for i in 0..6 {
        let server = servers[i % 3];
        let c = hooked_customer(server, &admin, "shared", &receiver.url("/r"), None).await;
        for step in 0..3 {
            update_customer(
                servers[(i + step + 1) % 3],
                &admin,
                json!({ "id": c.id, "name": format!("n{step}") }),
            )
            .await;
        }
        customers.push(c);
    }
    let mut all_events = Vec::new();
    for c in &customers {
        let events = customer_events(&app, &admin, &c.id).await;
        assert_eq!(events.len(), 5);
        until_settled(&app, &c.id, events.len()).await;
        all_events.push(events);
    }
    linger().await;

    let requests = receiver.requests();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        *seen.entry(request.event_id()).or_default() += 1;
    }
    let total: usize = all_events.iter().map(Vec::len).sum();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(seen.len(), total, "every event sent");
    assert_eq!(requests.len(), total);
    for events in &all_events {
        let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        let mine: Vec<&Received> = requests
            .iter()
            .filter(|r| ids.contains(&r.event_id().as_str()))
            .collect();
        assert_eq!(mine.len(), events.len(), "{:?}", summary(&mine));
        assert_in_event_order(&mine, events);
    }
}
