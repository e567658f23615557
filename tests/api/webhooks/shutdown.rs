//! A server that shuts down (SIGTERM, as `TestApp::shutdown` signals it)
//! lets go of its webhook deliveries cleanly: it claims nothing more, what
//! it is sending finishes and is recorded within the drain window, and what
//! it still holds after that is handed back at once, not when the lease
//! runs out, so a rolling restart neither loses nor delays a delivery.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::receiver::{Answer, Receiver};
use super::{
    PATIENCE, assert_in_event_order, customer_events, deliveries, fast, hooked_customer, ids,
    linger, summary, until_settled,
};
use crate::harness::{TestApp, captured_logs, eventually};

/// Whether the delivery is claimed (leased) now.
async fn lease_until_set(app: &TestApp, event_id: &str) -> bool {
    app.count(
        "SELECT count(*) FROM webhook_deliveries WHERE event_id = $1::text::uuid AND lease_until IS NOT NULL",
        &[&event_id],
    )
    .await
        == 1
}

#[tokio::test]
async fn a_delivery_in_flight_at_shutdown_finishes_and_is_recorded_once() {
    let receiver = Receiver::start().await;
    // Answered well within the attempt timeout (2 s), after the shutdown.
    receiver.script([Answer::slow(200, Duration::from_millis(800))]);
    let mut app = TestApp::spawn_with(fast).await;
    let admin = app.admin_token().await;
    let c = hooked_customer(&app, &admin, "drained", &receiver.url("/hook"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    let oldest_first = ids(&events);
    let [first, second] = &oldest_first[..] else {
        panic!("customer_created and agent_created: {events:?}")
    };

    eventually(
        "the first attempt reaches the receiver",
        PATIENCE,
        || async { (receiver.requests().len() == 1).then_some(()) },
    )
    .await;
    assert!(lease_until_set(&app, first).await, "claimed, in flight");
    app.shutdown().await.unwrap();
    assert!(app.state.pool.is_closed(), "the drain is over");

    let settled = eventually("the attempt in flight is recorded", PATIENCE, || async {
        let rows = deliveries(&app, &c.id).await;
        (rows[first].state != "pending").then_some(rows)
    })
    .await;
    let delivered = &settled[first];
    assert_eq!(delivered.state, "delivered", "{delivered:?}");
    assert_eq!(delivered.attempts, 1, "{delivered:?}");
    assert_eq!(delivered.last_status, Some(200), "{delivered:?}");
    let history = app
        .count(
            "SELECT count(*) FROM webhook_attempts WHERE event_id = $1::text::uuid AND status_code = 200",
            &[first],
        )
        .await;
    assert_eq!(history, 1, "the attempt is in the delivery's history");

    linger().await;
    let received: Vec<String> = receiver.requests().iter().map(|r| r.event_id()).collect();
    assert_eq!(
        received,
        std::slice::from_ref(first),
        "sent once; nothing claimed after"
    );
    let waiting = &deliveries(&app, &c.id).await[second];
    assert_eq!(
        (waiting.state.as_str(), waiting.attempts),
        ("pending", 0),
        "the next one is left queued, never claimed: {waiting:?}"
    );
    assert!(!lease_until_set(&app, second).await);
    assert!(
        captured_logs()
            .lines()
            .any(|line| line.contains("webhook worker stopped")
                && line.contains("finished=1 released=0")),
        "one INFO line counts what was finished and released"
    );
}

#[tokio::test]
async fn claims_of_a_server_that_shuts_down_are_taken_over_well_within_the_lease() {
    const CUSTOMERS: usize = 3;
    let receiver = Receiver::start().await;
    // Each customer's first attempt outlasts the stopping server's drain
    // window (300 ms) and would run into its attempt timeout (2 s).
    receiver.script((0..CUSTOMERS).map(|_| Answer::slow(200, Duration::from_secs(3))));
    let mut stopping = TestApp::spawn_with(|config| {
        fast(config);
        config.drain_timeout_ms = 300;
    })
    .await;
    let lease = Duration::from_millis(stopping.state.config.webhook_timeout_ms) * 2
        + Duration::from_secs(5);
    let admin = stopping.admin_token().await;
    let mut customers = Vec::new();
    for _ in 0..CUSTOMERS {
        let c = hooked_customer(&stopping, &admin, "handed", &receiver.url("/h"), None).await;
        let events = customer_events(&stopping, &admin, &c.id).await;
        assert_eq!(events.len(), 2);
        customers.push((c, events));
    }
    eventually(
        "each customer's first attempt is in flight",
        PATIENCE,
        || async { (receiver.requests().len() == CUSTOMERS).then_some(()) },
    )
    .await;
    // Started now, so that only the stopping server's release, not its
    // start-up, separates the two.
    let taking_over = stopping
        .replica_with(|config| config.drain_timeout_ms = 10_000)
        .await;

    let stopped_at = Instant::now();
    stopping.shutdown().await.unwrap();
    for (c, events) in &customers {
        let settled = until_settled(&taking_over, &c.id, events.len()).await;
        assert!(
            settled.values().all(|d| d.state == "delivered"),
            "{settled:?}"
        );
    }
    let taken_over_in = stopped_at.elapsed();
    assert!(
        taken_over_in < lease / 2,
        "taken over in {taken_over_in:?}, not after the lease ({lease:?})"
    );

    linger().await;
    let requests = receiver.requests();
    for (c, events) in &customers {
        let ids = ids(events);
        let mine: Vec<_> = requests
            .iter()
            .filter(|r| ids.contains(&r.event_id()))
            .collect();
        assert_in_event_order(&mine, events);
        let mut answered: HashMap<String, usize> = HashMap::new();
        for request in mine.iter().filter(|r| r.succeeded()) {
            *answered.entry(request.event_id()).or_default() += 1;
        }
        assert!(
            ids.iter().all(|id| answered.get(id) == Some(&1)),
            "each event delivered exactly once: {:?}",
            summary(&mine)
        );
        // The cut-off attempt, then its retry from the other server, then
        // the next event: three requests, the first one counted.
        assert_eq!(mine.len(), 3, "{:?}", summary(&mine));
        let rows = deliveries(&taking_over, &c.id).await;
        assert_eq!(rows[&ids[0]].attempts, 2, "{:?}", rows[&ids[0]]);
        assert_eq!(rows[&ids[1]].attempts, 1, "{:?}", rows[&ids[1]]);
    }
    assert!(
        captured_logs()
            .lines()
            .any(|line| line.contains("webhook worker stopped")
                && line.contains(&format!("finished=0 released={CUSTOMERS}"))),
        "one INFO line counts what was finished and released"
    );
}

/// The binary itself: SIGTERM tells the worker at the start of the drain,
/// and the process exits only once its attempt in flight is recorded.
#[tokio::test]
async fn sigterm_lets_the_binary_finish_its_attempt_before_it_exits() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::slow(200, Duration::from_millis(800))]);
    // This app only makes the customer and reads the log: it sends nothing.
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut server = crate::process::command(&app.db.url(), &[]);
    server
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WEBHOOK_TIMEOUT_MS", "2000")
        .env("WEBHOOK_POLL_INTERVAL_MS", "50");
    let mut process = crate::process::Process::spawn(server);
    process.base_url().await;
    let c = hooked_customer(&app, &admin, "sigterm", &receiver.url("/hook"), None).await;
    let events = customer_events(&app, &admin, &c.id).await;
    let first = ids(&events)[0].clone();
    eventually(
        "the first attempt reaches the receiver",
        PATIENCE,
        || async { (receiver.requests().len() == 1).then_some(()) },
    )
    .await;

    let pid = libc::pid_t::try_from(process.id()).unwrap();
    // SAFETY: kill only sends a signal, to a child this test started and
    // has not yet reaped (so the pid is still its own).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (status, log) = process.finish().await;
    assert!(status.success(), "{status}:\n{log}");
    // Recorded before the process exited: no waiting here.
    let rows = deliveries(&app, &c.id).await;
    assert_eq!(rows[&first].state, "delivered", "{:?}\n{log}", rows[&first]);
    assert!(
        rows.values()
            .all(|d| d.event_id == first || (d.state == "pending" && d.attempts == 0)),
        "nothing else claimed after SIGTERM: {rows:?}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("webhook worker stopped")
                && line.contains("finished=1")
                && line.contains("released=0")),
        "{log}"
    );
    assert_eq!(receiver.requests().len(), 1, "sent once");
}
