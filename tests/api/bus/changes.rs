//! Every event of a customer's life reaches the exchange once, in log
//! order, with its type as routing key and VoIPbin's message shape.

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    BROKER_URL, Listener, PATIENCE, broker_in_use, connected, exchange_name, first_arrivals, ids,
    logged_after, published, publishing_to, until_publishing,
};
use crate::harness::{TestApp, captured_logs, eventually, unique};

const PASSWORD: &str = "a-long-password";

#[tokio::test]
async fn every_event_arrives_in_log_order_with_its_routing_key_body_and_id() {
    let _broker = broker_in_use(false).await;
    let exchange = exchange_name();
    let listener = Listener::bind(&exchange).await;
    let app = TestApp::spawn_with(publishing_to(BROKER_URL, &exchange)).await;
    let start = until_publishing(&app, &exchange).await;
    assert!(
        captured_logs().lines().any(|line| line.contains(" INFO ")
            && line.contains(&exchange)
            && line.contains("first start on this exchange")),
        "the first start is logged at info"
    );

    let admin = app.admin_token().await;
    let username = unique("bus");
    let (id, guest_agent) = app
        .create_customer_with_guest(&admin, &username, PASSWORD)
        .await;
    let mutations = [
        (
            "mutation($id: UUID!) { updateCustomer(input: {id: $id, name: \"renamed\"}) { customer { id } } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: UUID!) { setAgentPassword(input: {agentId: $id, password: \"second-password-2\"}) { agent { id } } }",
            json!({ "id": guest_agent }),
        ),
        (
            "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: UUID!) { recoverCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": id }),
        ),
    ];
    for (mutation, variables) in mutations {
        let body = app.gql(Some(&admin), mutation, variables).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let guest = app.token(&username, "second-password-2").await;
    let (key_id, _) = app
        .create_access_key_ok(&guest, json!({ "name": "k1" }))
        .await;
    let revoked = app.delete_access_key(&guest, &key_id).await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    let deleted = app.delete_customer(&admin, &id).await;
    assert!(deleted["errors"].is_null(), "{deleted}");

    let logged = logged_after(&app, &start).await;
    let kinds: BTreeSet<&str> = logged.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "customer_created",
        "agent_created",
        "customer_updated",
        "agent_updated",
        "customer_frozen",
        "customer_recovered",
        "accesskey_created",
        "accesskey_deleted",
        "customer_deleted",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }

    let received = listener.until_received(&ids(&logged)).await;
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, ids(&logged), "in log order");
    assert_eq!(duplicates, 0, "each once when nothing fails");
    for (message, event) in received.iter().zip(&logged) {
        assert_eq!(message.routing_key, event.kind);
        assert_eq!(message.kind.as_deref(), Some(event.kind.as_str()));
        assert_eq!(message.message_id.as_deref(), Some(event.id.as_str()));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert_eq!(message.delivery_mode, Some(2), "persistent");
        assert_eq!(
            message.timestamp,
            Some(u64::try_from(event.tm_create_seconds).unwrap())
        );
        assert_eq!(
            message.body,
            json!({
                "type": event.kind,
                "publisher": "customer-manager",
                "data_type": "application/json",
                "data": event.data,
            })
        );
        let text = message.body.to_string();
        for secret in ["second-password-2", "password_hash"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    assert!(connected(&app));
    assert!(published(&app) >= logged.len() as f64);
    let last = logged.last().unwrap().id.clone();
    eventually("the cursor stored at the last event", PATIENCE, || async {
        let cursor = super::cursor(&app, &exchange).await.unwrap();
        (cursor.event_id == last).then_some(())
    })
    .await;
    listener.finish().await;
}
