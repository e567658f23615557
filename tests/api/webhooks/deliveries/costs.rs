//! What deliveries count and cost: the delivery metrics (attempts by
//! outcome, queue depth and age measured at scrape time) over `/metrics`,
//! and the SQL statements of a page of `webhookDeliveries`.

use std::time::Duration;

use serde_json::json;

use super::{numbers, page};
use crate::harness::{TestApp, eventually};
use crate::webhooks::receiver::{Answer, Receiver};
use crate::webhooks::{PATIENCE, fast, hooked_customer, until_settled, update_customer};

/// `DELIVERIES` without `totalCount`, which costs a statement of its own.
const DELIVERIES_PAGE: &str = "query($filter: WebhookDeliveryFilter, $first: Int, $after: String) { webhookDeliveries(filter: $filter, first: $first, after: $after) { edges { cursor node { eventId state attemptCount lastStatusCode event { id type data } attempts { number tmAttempt statusCode error } } } pageInfo { hasNextPage endCursor } } }";

fn outcome_line(outcome: &str) -> String {
    format!("customer_api_webhook_deliveries_total{{outcome=\"{outcome}\"}}")
}

/// The value of the metric line of `/metrics` that starts with `line_start`.
fn value(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_outcomes_and_measure_the_queue() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::status(500), Answer::status(410)]);
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 1_000;
    })
    .await;
    let admin = app.admin_token().await;
    let scrape = || async { app.get("/metrics").await.text().await.unwrap() };
    let text = scrape().await;
    for outcome in ["delivered", "retry", "failed"] {
        assert_eq!(
            value(&text, &outcome_line(outcome)),
            Some(0.0),
            "{outcome} from the start:\n{text}"
        );
    }
    assert_eq!(
        value(&text, "customer_api_webhook_queue_depth "),
        Some(0.0),
        "{text}"
    );

    let c = hooked_customer(&app, &admin, "metered", &receiver.url("/m"), None).await;
    until_settled(&app, &c.id, 2).await;
    // Counted just after the settling statement returns.
    let counted = [("delivered", 1.0), ("retry", 1.0), ("failed", 1.0)];
    let text = eventually("the three outcomes counted", PATIENCE, || async {
        let text = scrape().await;
        counted
            .iter()
            .all(|(outcome, count)| value(&text, &outcome_line(outcome)) == Some(*count))
            .then_some(text)
    })
    .await;
    assert_eq!(value(&text, "customer_api_webhook_queue_depth "), Some(0.0));
    assert_eq!(
        value(&text, "customer_api_webhook_oldest_pending_seconds "),
        Some(0.0)
    );

    // The receiver goes away: what is queued stays pending, and ages.
    receiver.down().await;
    update_customer(&app, &admin, json!({ "id": c.id, "name": "queued" })).await;
    update_customer(&app, &admin, json!({ "id": c.id, "name": "queued too" })).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let text = scrape().await;
    assert_eq!(
        value(&text, "customer_api_webhook_queue_depth "),
        Some(2.0),
        "{text}"
    );
    let oldest = value(&text, "customer_api_webhook_oldest_pending_seconds ").unwrap();
    assert!((1.0..60.0).contains(&oldest), "{oldest}");
    let retries = value(&text, &outcome_line("retry"));
    assert!(
        retries.unwrap() >= 2.0,
        "refused connections are retried: {retries:?}"
    );

    receiver.up().await;
    until_settled(&app, &c.id, 4).await;
    let text = eventually("the queued two delivered", PATIENCE, || async {
        let text = scrape().await;
        (value(&text, &outcome_line("delivered")) == Some(3.0)).then_some(text)
    })
    .await;
    assert_eq!(
        value(&text, "customer_api_webhook_queue_depth "),
        Some(0.0),
        "{text}"
    );
}

/// A page of deliveries with their events and attempts costs two
/// statements whatever its size or depth: the page (events joined) and one
/// batch of attempts.
#[tokio::test]
async fn a_page_of_deliveries_costs_two_statements_whatever_its_size() {
    // Delivery off: the worker's polls would be counted too.
    let app = TestApp::spawn_with(|config| config.max_query_complexity = 1_000_000).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "costly", "https://hooks.example.com/h", None).await;
    let client = app.db.client().await;
    for sql in [
        "INSERT INTO events (id, type, customer_id, tm_create, data) \
         SELECT gen_random_uuid(), 'customer_updated', $1::text::uuid, \
                now() - make_interval(secs => g), '{}'::jsonb \
         FROM generate_series(1, 150) g",
        "INSERT INTO webhook_deliveries (event_id, customer_id, tm_create) \
         SELECT id, customer_id, tm_create FROM events WHERE customer_id = $1::text::uuid \
         ON CONFLICT DO NOTHING",
        "INSERT INTO webhook_attempts (event_id, number, tm_attempt, status_code, error) \
         SELECT d.event_id, n, d.tm_create + make_interval(secs => n), \
                CASE WHEN n < 3 THEN 500 ELSE 200 END, \
                CASE WHEN n < 3 THEN 'the endpoint answered 500' END \
         FROM webhook_deliveries d, generate_series(1, 3) n WHERE d.customer_id = $1::text::uuid",
        "UPDATE webhook_deliveries SET state = 'delivered', attempts = 3, last_status = 200 \
         WHERE customer_id = $1::text::uuid",
    ] {
        client.execute(sql, &[&c.id]).await.unwrap();
    }
    let filter = json!({ "customerId": c.id });
    // Opens the pool's connections (opening one costs a statement of its own).
    for _ in 0..2 {
        futures_util::future::join_all((0..4).map(|_| page(&app, &admin, filter.clone(), 5, None)))
            .await;
    }
    let deep = page(&app, &admin, filter.clone(), 60, None).await;
    let deep = deep["data"]["webhookDeliveries"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();

    let shapes = [
        (5, None),
        (50, None),
        (100, None),
        (50, Some(deep.as_str())),
    ];
    let mut costs = Vec::new();
    for (size, after) in shapes.iter().cycle().take(shapes.len() * 3).copied() {
        let start = app.statements();
        let body = app
            .gql(
                Some(&admin),
                DELIVERIES_PAGE,
                json!({ "filter": filter, "first": size, "after": after }),
            )
            .await;
        let cost = app.statements() - start;
        assert!(body["errors"].is_null(), "{body}");
        let edges = body["data"]["webhookDeliveries"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), size as usize);
        for edge in edges {
            let node = &edge["node"];
            assert_eq!(numbers(node), [1, 2, 3], "{node}");
            assert_eq!(node["event"]["id"], node["eventId"]);
        }
        costs.push((size, after.is_some(), cost));
    }
    println!("statements per page of deliveries (size, deep, statements): {costs:?}");
    assert!(
        costs.iter().all(|(_, _, cost)| *cost == 2),
        "1 page query (events joined) + 1 batch of attempts, whatever the size (the credential check is served from the warm cache): {costs:?}"
    );
}
