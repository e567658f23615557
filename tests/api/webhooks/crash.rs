//! A server killed (SIGKILL) in the middle of an attempt loses nothing: the
//! delivery stays queued under its lease, and another server sends it once
//! the lease has run out. Real processes of the binary, as operators run it.

use std::time::Duration;

use super::receiver::{Answer, Receiver};
use super::{PATIENCE, customer_events, deliveries, hooked_customer, ids, until_settled};
use crate::harness::{TestApp, eventually};
use crate::process::{Process, command};

/// A server process on the app's database that delivers to 127.0.0.1, with
/// a short attempt timeout (so a short lease: 2 × 2 s + 5 s).
async fn delivering_process(app: &TestApp) -> Process {
    let mut server = command(&app.db.url(), &[]);
    server
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WEBHOOK_TIMEOUT_MS", "2000")
        .env("WEBHOOK_POLL_INTERVAL_MS", "50")
        .env("WEBHOOK_RETRY_BASE_MS", "50");
    let mut process = Process::spawn(server);
    process.base_url().await;
    process
}

#[tokio::test]
async fn a_delivery_whose_server_is_killed_mid_attempt_is_sent_by_another() {
    let receiver = Receiver::start().await;
    // The first attempt is held open far longer than the test runs.
    receiver.script([Answer::slow(200, Duration::from_secs(300))]);
    // This app only makes the customer and reads the log: it sends nothing.
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = delivering_process(&app).await;
    let c = hooked_customer(&app, &admin, "killed", &receiver.url("/hook"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    assert_eq!(events.len(), 2);

    eventually(
        "the first attempt reaches the receiver",
        PATIENCE,
        || async { (!receiver.requests().is_empty()).then_some(()) },
    )
    .await;
    drop(first); // SIGKILL, mid-attempt
    let queued = deliveries(&app, &c.id).await;
    assert!(
        queued.values().all(|d| d.state == "pending"),
        "nothing settled by the killed server: {queued:?}"
    );

    let _second = delivering_process(&app).await;
    let settled = until_settled(&app, &c.id, 2).await;
    assert!(
        settled.values().all(|d| d.state == "delivered"),
        "{settled:?}"
    );
    let received: Vec<String> = receiver.requests().iter().map(|r| r.event_id()).collect();
    let oldest_first = ids(&events);
    assert_eq!(
        received,
        [
            oldest_first[0].clone(),
            oldest_first[0].clone(),
            oldest_first[1].clone()
        ],
        "the interrupted event again (same id), then the next, in order"
    );
    let bodies: Vec<String> = receiver.requests().iter().map(|r| r.text()).collect();
    assert_eq!(bodies[0], bodies[1], "a retry sends the same body");
}
