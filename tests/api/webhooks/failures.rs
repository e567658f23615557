//! A receiver that fails: 5xx, 408, 429, timeouts and refused connections
//! are retried with backoff up to `webhook_max_attempts`; other 4xx and
//! redirects fail for good at once; either way the customer's next event
//! goes out after, and nothing is lost or sent twice once delivered.

use std::time::Duration;

use serde_json::json;

use super::receiver::{Answer, Received, Receiver};
use super::{
    PATIENCE, assert_delivery_of, assert_in_event_order, customer_events, deliveries, fast,
    hooked_customer, ids, linger, summary, until_delivered, until_settled, update_customer,
    webhook_secret,
};
use crate::harness::{TestApp, eventually};

/// The requests that name `event_id`, in order of arrival.
fn of<'a>(requests: &'a [Received], event_id: &str) -> Vec<&'a Received> {
    requests
        .iter()
        .filter(|r| r.event_id() == event_id)
        .collect()
}

#[tokio::test]
async fn transient_failures_are_retried_until_each_event_is_delivered_once_in_order() {
    let receiver = Receiver::start().await;
    receiver.script([500, 502, 408, 429, 503].map(Answer::status));
    let app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "flaky", &receiver.url("/f"), None).await;
    for name in ["one", "two"] {
        update_customer(&app, &admin, json!({ "id": c.id, "name": name })).await;
    }
    let events = customer_events(&app, &admin, &c.id).await;
    assert_eq!(events.len(), 4);
    let settled = until_settled(&app, &c.id, events.len()).await;
    linger().await;

    let requests = receiver.requests();
    let all: Vec<&Received> = requests.iter().collect();
    assert_in_event_order(&all, &events);
    assert_eq!(receiver.scripted_left(), 0);
    assert_eq!(
        requests.len(),
        events.len() + 5,
        "one request per failure and one per event: {:?}",
        summary(&all)
    );
    let secret = webhook_secret(&app, &admin, &c.id).await;
    for (i, event) in events.iter().enumerate() {
        let id = event["id"].as_str().unwrap();
        let tries = of(&requests, id);
        let expected = if i == 0 { 6 } else { 1 };
        assert_eq!(tries.len(), expected, "event {i}: {:?}", summary(&tries));
        assert!(tries.last().unwrap().succeeded(), "event {i}");
        assert_eq!(
            tries.iter().filter(|r| r.succeeded()).count(),
            1,
            "event {i} delivered exactly once"
        );
        // Every retry is the same request: same id, body and signature.
        for request in &tries {
            assert_delivery_of(request, event, &secret, "POST");
            assert_eq!(request.body, tries[0].body);
        }
        let row = &settled[id];
        assert_eq!(row.state, "delivered", "event {i}: {row:?}");
        assert_eq!(row.attempts, expected as i64, "event {i}: {row:?}");
        assert_eq!(row.last_status, Some(200), "event {i}: {row:?}");
    }
}

#[tokio::test]
async fn retries_stop_after_the_last_attempt_and_the_queue_moves_on() {
    let receiver = Receiver::start().await;
    receiver.script([500; 4].map(Answer::status));
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 4;
        config.webhook_retry_base_ms = 100;
        config.webhook_retry_max_ms = 300;
    })
    .await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "giveup", &receiver.url("/g"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    let settled = until_settled(&app, &c.id, events.len()).await;
    linger().await;

    let requests = receiver.requests();
    let all: Vec<&Received> = requests.iter().collect();
    assert_in_event_order(&all, &events);
    let first = of(&requests, events[0]["id"].as_str().unwrap());
    assert_eq!(first.len(), 4, "webhook_max_attempts: {:?}", summary(&all));
    assert!(first.iter().all(|r| r.answered == 500));
    // Capped backoff: no gap longer than the cap, plus a poll and slack.
    for pair in first.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap <= Duration::from_millis(300 + 50 + 1_500), "{gap:?}");
    }
    let row = &settled[events[0]["id"].as_str().unwrap()];
    assert_eq!(row.state, "failed", "{row:?}");
    assert_eq!(row.attempts, 4, "{row:?}");
    assert_eq!(row.last_status, Some(500), "{row:?}");
    let second = of(&requests, events[1]["id"].as_str().unwrap());
    assert_eq!(second.len(), 1, "{:?}", summary(&all));
    assert!(second[0].succeeded());
    assert_eq!(
        settled[events[1]["id"].as_str().unwrap()].state,
        "delivered"
    );
}

#[tokio::test]
async fn a_4xx_fails_for_good_after_one_attempt_and_the_next_event_still_goes_out() {
    for status in [400, 401, 403, 404, 410, 422] {
        let receiver = Receiver::start().await;
        receiver.script([Answer::status(status)]);
        let app = TestApp::spawn_with(fast).await;
        let admin = app.admin_token().await;
        let c = hooked_customer(&app, &admin, "rejected", &receiver.url("/x"), None).await;
        update_customer(&app, &admin, json!({ "id": c.id, "name": "after" })).await;
        let events = customer_events(&app, &admin, &c.id).await;
        assert_eq!(events.len(), 3);
        let settled = until_settled(&app, &c.id, events.len()).await;
        linger().await;

        let requests = receiver.requests();
        let all: Vec<&Received> = requests.iter().collect();
        assert_in_event_order(&all, &events);
        assert_eq!(
            requests.iter().map(Received::event_id).collect::<Vec<_>>(),
            ids(&events),
            "{status}: no retry: {:?}",
            summary(&all)
        );
        let first = &settled[events[0]["id"].as_str().unwrap()];
        assert_eq!(first.state, "failed", "{status}: {first:?}");
        assert_eq!(first.attempts, 1, "{status}: {first:?}");
        assert_eq!(
            first.last_status,
            Some(status as i64),
            "{status}: {first:?}"
        );
        for event in &events[1..] {
            let row = &settled[event["id"].as_str().unwrap()];
            assert_eq!(row.state, "delivered", "{status}: {row:?}");
        }
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_fail_for_good() {
    for status in [301, 302, 307, 308] {
        let receiver = Receiver::start().await;
        receiver.script([Answer::redirect(status, &receiver.url("/elsewhere"))]);
        let app = TestApp::spawn_with(fast).await;
        let admin = app.admin_token().await;
        let c = hooked_customer(&app, &admin, "redirected", &receiver.url("/x"), None).await;
        let events = customer_events(&app, &admin, &c.id).await;
        let settled = until_settled(&app, &c.id, events.len()).await;
        linger().await;

        let requests = receiver.requests();
        let all: Vec<&Received> = requests.iter().collect();
        assert!(
            requests.iter().all(|r| r.path == "/x"),
            "{status}: the redirect was followed: {:?}",
            requests.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        assert_in_event_order(&all, &events);
        let first = &settled[events[0]["id"].as_str().unwrap()];
        assert_eq!(first.state, "failed", "{status}: {first:?}");
        assert_eq!(first.attempts, 1, "{status}: {first:?}");
        assert_eq!(
            of(&requests, events[0]["id"].as_str().unwrap()).len(),
            1,
            "{status}"
        );
        assert_eq!(
            settled[events[1]["id"].as_str().unwrap()].state,
            "delivered",
            "{status}"
        );
    }
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_retried() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::slow(200, Duration::from_secs(3))]);
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_timeout_ms = 300;
    })
    .await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "slow", &receiver.url("/s"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    let settled = until_settled(&app, &c.id, events.len()).await;

    let requests = receiver.requests();
    let all: Vec<&Received> = requests.iter().collect();
    assert_in_event_order(&all, &events);
    let first = of(&requests, events[0]["id"].as_str().unwrap());
    assert_eq!(first.len(), 2, "{:?}", summary(&all));
    assert!(
        first[1].at - first[0].at < Duration::from_millis(2_500),
        "the attempt was given up after webhook_timeout_ms"
    );
    let row = &settled[events[0]["id"].as_str().unwrap()];
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("delivered", 2),
        "{row:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_for_a_while_loses_nothing() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "outage", &receiver.url("/d"), None).await;
    until_delivered(&receiver, 2).await;

    receiver.down().await;
    for name in ["one", "two", "three"] {
        update_customer(&app, &admin, json!({ "id": c.id, "name": name })).await;
    }
    let events = customer_events(&app, &admin, &c.id).await;
    assert_eq!(events.len(), 5);
    // The first event queued while down has been tried, and refused, twice.
    let waiting = events[2]["id"].as_str().unwrap().to_owned();
    let row = eventually("two refused attempts", PATIENCE, || async {
        deliveries(&app, &c.id)
            .await
            .remove(&waiting)
            .filter(|d| d.attempts >= 2)
    })
    .await;
    assert_eq!(row.state, "pending", "{row:?}");
    assert!(row.last_error.is_some(), "the refusal is recorded: {row:?}");
    for later in &events[3..] {
        let row = deliveries(&app, &c.id).await[later["id"].as_str().unwrap()].clone();
        assert_eq!(
            (row.state.as_str(), row.attempts),
            ("pending", 0),
            "not tried before the earlier one: {row:?}"
        );
    }

    receiver.up().await;
    let settled = until_settled(&app, &c.id, events.len()).await;
    linger().await;
    let requests = receiver.requests();
    let all: Vec<&Received> = requests.iter().collect();
    assert_eq!(
        requests.iter().map(Received::event_id).collect::<Vec<_>>(),
        ids(&events),
        "each event once, in order"
    );
    assert_in_event_order(&all, &events);
    let secret = webhook_secret(&app, &admin, &c.id).await;
    for (request, event) in requests.iter().zip(&events) {
        assert_delivery_of(request, event, &secret, "POST");
        let row = &settled[event["id"].as_str().unwrap()];
        assert_eq!(row.state, "delivered", "{row:?}");
    }
    assert!(settled[&waiting].attempts >= 3);
}

#[tokio::test]
async fn a_failing_endpoint_holds_back_only_its_own_customer() {
    let (failing, healthy) = (Receiver::start().await, Receiver::start().await);
    failing.script([500; 1000].map(Answer::status));
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let stuck = hooked_customer(&app, &admin, "stuck", &failing.url("/a"), None).await;
    let fine = hooked_customer(&app, &admin, "fine", &healthy.url("/b"), None).await;
    update_customer(&app, &admin, json!({ "id": fine.id, "name": "x" })).await;
    let events = customer_events(&app, &admin, &fine.id).await;
    until_settled(&app, &fine.id, events.len()).await;
    assert_eq!(
        healthy
            .requests()
            .iter()
            .map(Received::event_id)
            .collect::<Vec<_>>(),
        ids(&events)
    );
    // Meanwhile the failing one is retried, its later events held back.
    let stuck_events = customer_events(&app, &admin, &stuck.id).await;
    let rows = deliveries(&app, &stuck.id).await;
    assert_eq!(
        rows[stuck_events[0]["id"].as_str().unwrap()].state,
        "pending"
    );
    assert_eq!(
        rows[stuck_events[1]["id"].as_str().unwrap()].attempts,
        0,
        "{rows:?}"
    );
    assert!(
        failing
            .requests()
            .iter()
            .all(|r| r.event_id() == stuck_events[0]["id"].as_str().unwrap())
    );
}

/// A webhook URI may carry the customer's own token in its query: a failed
/// attempt's error, stored and logged, must not repeat it.
#[tokio::test]
async fn a_failed_attempt_records_no_part_of_the_uri() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_max_attempts = 100;
    })
    .await;
    let admin = app.admin_token().await;
    receiver.down().await;
    let uri = receiver.url("/hook?token=customers-own-secret-in-query");
    let c = hooked_customer(&app, &admin, "quiet", &uri, None).await;
    let row = eventually("a refused attempt", PATIENCE, || async {
        deliveries(&app, &c.id)
            .await
            .into_values()
            .find(|d| d.attempts >= 1 && d.last_error.is_some())
    })
    .await;
    let error = row.last_error.unwrap();
    assert!(!error.contains("customers-own-secret-in-query"), "{error}");
    assert!(
        !crate::harness::captured_logs().contains("customers-own-secret-in-query"),
        "the URI's token reached the logs"
    );
}
