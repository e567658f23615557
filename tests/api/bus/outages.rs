//! A broker that goes away delays events, never drops them: they wait in
//! the log, and the publisher publishes them once the broker is back. One
//! outage is a cut network (a proxy between the server and the broker), the
//! other a real restart of RabbitMQ.

use std::sync::{Arc, Mutex};

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;

use super::proxy::BrokerProxy;
use super::{
    BROKER_URL, Listener, PATIENCE, Received, broker_connection, broker_in_use, connected,
    declare_exchange, delete_exchange, exchange_name, first_arrivals, ids, logged_after, published,
    publishing_to, some_changes, until_publishing,
};
use crate::harness::{TestApp, captured_logs, eventually, metric, unique};

const CANNOT_PUBLISH: &str = "cannot publish to the broker";

/// The captured log lines about this exchange's broker outages at `level`.
fn outage_lines(exchange: &str, level: &str) -> usize {
    captured_logs()
        .lines()
        .filter(|line| {
            line.contains(&format!(" {level} "))
                && line.contains(exchange)
                && line.contains(CANNOT_PUBLISH)
        })
        .count()
}

#[tokio::test]
async fn events_committed_while_the_broker_is_unreachable_arrive_once_it_is_back() {
    let _broker = broker_in_use(false).await;
    let exchange = exchange_name();
    let listener = Listener::bind(&exchange).await;
    let proxy = BrokerProxy::start().await;
    let app = TestApp::spawn_with(publishing_to(&proxy.url(), &exchange)).await;
    let start = until_publishing(&app, &exchange).await;
    let admin = app.admin_token().await;
    some_changes(&app, &admin).await;
    let before = logged_after(&app, &start).await;
    listener.until_received(&ids(&before)).await;
    assert!(connected(&app));

    proxy.cut();
    eventually("the publisher sees the broker gone", PATIENCE, || async {
        (!connected(&app)).then_some(())
    })
    .await;
    some_changes(&app, &admin).await;
    let all = logged_after(&app, &start).await;
    assert!(all.len() > before.len());
    // Several attempts to reconnect have failed, and the events committed
    // meanwhile are known to wait.
    eventually("reconnecting fails a few times", PATIENCE, || async {
        let lag = metric(&app, "customer_api_bus_lag_seconds ");
        (outage_lines(&exchange, "DEBUG") >= 2 && lag > 0.0).then_some(())
    })
    .await;
    assert_eq!(
        outage_lines(&exchange, "WARN"),
        1,
        "one warning per outage, not one per attempt"
    );

    proxy.restore();
    let received = listener.until_received(&ids(&all)).await;
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, ids(&all), "nothing lost, in log order");
    println!("{duplicates} published again after the outage");
    eventually("the lag back at 0", PATIENCE, || async {
        (metric(&app, "customer_api_bus_lag_seconds ") == 0.0 && connected(&app)).then_some(())
    })
    .await;
    assert_eq!(outage_lines(&exchange, "WARN"), 1);
    assert!(
        captured_logs().lines().any(|line| line.contains(" INFO ")
            && line.contains(&exchange)
            && line.contains("over")),
        "the end of the outage is logged"
    );
    listener.finish().await;
}

/// Stops RabbitMQ (`rabbitmqctl stop_app`) until `start`, or until dropped
/// (a failing test must not leave the broker down).
struct BrokerStopped {
    started: bool,
}

fn rabbitmqctl(command: &str) {
    let status = std::process::Command::new("rabbitmqctl")
        .arg(command)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run rabbitmqctl {command}: {e}"));
    assert!(status.success(), "rabbitmqctl {command}: {status}");
}

impl BrokerStopped {
    async fn stop() -> Self {
        tokio::task::spawn_blocking(|| rabbitmqctl("stop_app"))
            .await
            .unwrap();
        Self { started: false }
    }

    async fn start(mut self) {
        self.started = true;
        tokio::task::spawn_blocking(|| {
            rabbitmqctl("start_app");
            rabbitmqctl("await_startup");
        })
        .await
        .unwrap();
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        if !self.started {
            rabbitmqctl("start_app");
        }
    }
}

#[tokio::test]
async fn a_broker_restart_delays_events_and_loses_none() {
    let _broker = broker_in_use(true).await;
    let exchange = exchange_name();
    // Durable, with persistent messages: the queue and what it holds
    // outlive the restart, unlike an exclusive one.
    let queue = unique("customer-api-test.bus-queue");
    {
        let connection = broker_connection().await;
        let channel = connection.create_channel().await.unwrap();
        declare_exchange(&channel, &exchange).await;
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let app = TestApp::spawn_with(publishing_to(BROKER_URL, &exchange)).await;
    let start = until_publishing(&app, &exchange).await;
    let admin = app.admin_token().await;
    some_changes(&app, &admin).await;
    let before = logged_after(&app, &start).await;
    eventually("the first events confirmed", PATIENCE, || async {
        (published(&app) >= before.len() as f64).then_some(())
    })
    .await;

    let stopped = BrokerStopped::stop().await;
    eventually("the publisher sees the broker gone", PATIENCE, || async {
        (!connected(&app)).then_some(())
    })
    .await;
    some_changes(&app, &admin).await;
    let all = logged_after(&app, &start).await;
    eventually("the events wait", PATIENCE, || async {
        (metric(&app, "customer_api_bus_lag_seconds ") > 0.0).then_some(())
    })
    .await;
    stopped.start().await;

    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let connection = broker_connection().await;
    let channel = connection.create_channel().await.unwrap();
    let wanted = ids(&all);
    eventually("every event in the durable queue", PATIENCE, || async {
        while let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            received
                .lock()
                .unwrap()
                .push(Received::of(&message.delivery));
        }
        let received = received.lock().unwrap().clone();
        let got: std::collections::HashSet<&str> = received.iter().map(Received::id).collect();
        wanted
            .iter()
            .all(|id| got.contains(id.as_str()))
            .then_some(())
    })
    .await;
    let received = received.lock().unwrap().clone();
    let (order, duplicates) = first_arrivals(&received);
    assert_eq!(order, wanted, "nothing lost, in log order");
    println!(
        "{} events, {duplicates} published again across the restart",
        wanted.len()
    );
    assert!(connected(&app));
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    delete_exchange(&exchange).await;
}
