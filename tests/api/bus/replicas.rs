//! One server publishes at a time: two servers on one database publish each
//! event once, and when the publishing one stops, or is killed, the other
//! goes on from the stored cursor without losing anything.

use super::{
    BROKER_URL, Listener, broker_in_use, connected, exchange_name, first_arrivals, ids,
    logged_after, published, publishing_to, some_changes, until_publishing,
};
use crate::harness::TestApp;
use crate::process::{Process, command};

#[tokio::test]
async fn two_servers_never_both_publish_and_the_other_takes_over_when_one_stops() {
    let _broker = broker_in_use(false).await;
    let exchange = exchange_name();
    let listener = Listener::bind(&exchange).await;
    let mut first = TestApp::spawn_with(publishing_to(BROKER_URL, &exchange)).await;
    let start = until_publishing(&first, &exchange).await;
    let second = first.replica().await;
    let admin = first.admin_token().await;
    some_changes(&first, &admin).await;
    some_changes(&second, &admin).await;
    let logged = logged_after(&first, &start).await;
    let received = listener.until_received(&ids(&logged)).await;
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, ids(&logged));
    assert_eq!(duplicates, 0, "each event once: {received:?}");
    assert!(published(&first) >= logged.len() as f64);
    assert_eq!(published(&second), 0.0, "the second server waits");
    assert!(!connected(&second));

    // A clean stop hands the lease over at once.
    first.shutdown().await.unwrap();
    drop(first);
    some_changes(&second, &admin).await;
    let all = logged_after(&second, &start).await;
    let received = listener.until_received(&ids(&all)).await;
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, ids(&all), "nothing lost, in log order");
    assert_eq!(duplicates, 0, "a clean handover publishes nothing twice");
    assert!(published(&second) > 0.0);
    listener.finish().await;
}

/// The binary publishing to `exchange` on `app`'s database.
async fn publishing_process(app: &TestApp, exchange: &str) -> Process {
    let mut server = command(&app.db.url(), &[]);
    server
        .env("AMQP_URL", BROKER_URL)
        .env("AMQP_EXCHANGE", exchange)
        .env("WEBHOOK_DELIVERY", "false");
    let mut process = Process::spawn(server);
    process.base_url().await;
    process
}

#[tokio::test]
async fn a_publisher_killed_with_sigkill_loses_nothing() {
    let _broker = broker_in_use(false).await;
    let exchange = exchange_name();
    let listener = Listener::bind(&exchange).await;
    // This server makes the changes; it publishes nothing.
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let killed = publishing_process(&app, &exchange).await;
    let start = until_publishing(&app, &exchange).await;
    some_changes(&app, &admin).await;
    listener
        .until_received(&ids(&logged_after(&app, &start).await))
        .await;

    // Killed right after these commit: before, while or after publishing them.
    some_changes(&app, &admin).await;
    drop(killed);
    some_changes(&app, &admin).await;
    let all = logged_after(&app, &start).await;

    // The next one takes over once the dead one's lease has run out.
    let _next = publishing_process(&app, &exchange).await;
    let received = listener.until_received(&ids(&all)).await;
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, ids(&all), "nothing lost, in log order");
    println!(
        "{} events, {duplicates} published again after the kill",
        all.len()
    );
    listener.finish().await;
}
