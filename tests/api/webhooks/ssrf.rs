//! With `webhook_allow_private_targets` off (the default), a webhook that
//! is, or resolves to, a loopback, private, link-local, CGN, multicast,
//! unspecified or reserved address is never contacted: its deliveries fail
//! for good and say why.

use serde_json::json;

use super::receiver::Receiver;
use super::{PASSWORD, customer_events, fast, until_settled};
use crate::harness::{TestApp, unique};

/// Words a refusal by the guard may use.
const REFUSAL: [&str; 11] = [
    "private",
    "refus",
    "not allowed",
    "disallowed",
    "forbidden",
    "blocked",
    "loopback",
    "reserved",
    "public",
    "ssrf",
    "denied",
];

#[tokio::test]
async fn private_targets_are_never_contacted_by_default() {
    let receiver = Receiver::start().await;
    let receiver6 = Receiver::start_at("[::1]:0").await.ok();
    let app = TestApp::spawn_with(|config| {
        fast(config);
        config.webhook_allow_private_targets = false;
        config.webhook_timeout_ms = 1_000;
    })
    .await;
    assert!(
        !TestApp::spawn()
            .await
            .state
            .config
            .webhook_allow_private_targets,
        "off by default"
    );
    let admin = app.admin_token().await;
    let port = receiver.port;
    let mut targets = vec![
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/hook"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://[::]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("https://127.0.0.1:{port}/"),
        "http://10.0.0.1/".to_owned(),
        "http://172.16.0.1/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://240.0.0.1/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://[fc00::1]/".to_owned(),
        "http://[::ffff:a9fe:a9fe]/".to_owned(),
    ];
    if let Some(receiver6) = &receiver6 {
        targets.push(format!("http://[::1]:{}/", receiver6.port));
        targets.push(format!("http://localhost:{}/", receiver6.port));
    }

    let mut customers = Vec::new();
    for target in &targets {
        let body = app
            .create_customer(
                &admin,
                json!({ "username": unique("ssrf"), "password": PASSWORD, "webhookUri": target }),
            )
            .await;
        let id = body["data"]["createCustomer"]["customer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{target}: a well-formed webhookUri is accepted: {body}"))
            .to_owned();
        customers.push((target, id));
    }
    for (target, id) in &customers {
        let events = customer_events(&app, &admin, id).await;
        let settled = until_settled(&app, id, events.len()).await;
        for row in settled.values() {
            assert_eq!(row.state, "failed", "{target}: {row:?}");
            let error = row.last_error.clone().unwrap_or_default().to_lowercase();
            assert!(
                REFUSAL.iter().any(|word| error.contains(word)),
                "{target}: the error names the refusal: {row:?}"
            );
            assert_eq!(row.last_status, None, "{target}: {row:?}");
        }
    }
    super::linger().await;
    assert!(
        receiver.requests().is_empty(),
        "contacted: {:?}",
        receiver.requests()
    );
    if let Some(receiver6) = &receiver6 {
        assert!(
            receiver6.requests().is_empty(),
            "contacted over IPv6: {:?}",
            receiver6.requests()
        );
    }
}
