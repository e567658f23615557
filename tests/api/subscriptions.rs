//! Live events over WebSocket (`graphql-transport-ws` at `/graphql`):
//! events committed through any replica reach every subscriber allowed to
//! see them, after the subscription started, each once; credentials come
//! in `connection_init` and a revoked one ends its subscriptions; the
//! connection limits, timeouts and drain close sockets with the protocol's
//! codes.

pub(crate) mod socket;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use socket::{Received, Socket};

use crate::harness::{TestApp, error_code, metric, unique};

const LIVE: &str = "subscription Live($customerId: UUID, $types: [String!]) { customerEvents(customerId: $customerId, types: $types) { id type customerId actorId requestId tmCreate data } }";

const PASSWORD: &str = "live-password-1";

/// A customer and a login of its guest agent (an admin of that customer).
async fn customer_with_admin(app: &TestApp, admin: &str) -> (String, String) {
    let (id, token, _) = customer_with_guest(app, admin).await;
    (id, token)
}

/// Also the guest agent's username.
async fn customer_with_guest(app: &TestApp, admin: &str) -> (String, String, String) {
    let username = unique("live");
    let id = app.create_customer_ok(admin, &username, PASSWORD).await;
    let token = app.token(&username, PASSWORD).await;
    (id, token, username)
}

async fn update_name(app: &TestApp, token: &str, id: &str, name: &str) {
    let body = app
        .gql(
            Some(token),
            "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { customer { id } } }",
            json!({ "input": { "id": id, "name": name } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// Makes changes with `change` until the socket receives a message (the
/// subscription is live once a change made after it shows up); panics,
/// with the feed's log lines, if none comes within the patience.
async fn first_message<F, Fut>(socket: &mut Socket, mut change: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = std::time::Instant::now();
    loop {
        change().await;
        match socket.receive_within(Duration::from_millis(500)).await {
            Some(Received::Json(message)) if message["type"] == "complete" => continue,
            Some(Received::Json(message)) => return message,
            Some(other) => panic!("{other:?}"),
            None => {}
        }
        if started.elapsed() > socket::PATIENCE {
            let logs: Vec<String> = crate::harness::captured_logs()
                .lines()
                .filter(|line| line.contains("feed") || line.contains("event"))
                .map(str::to_owned)
                .collect();
            panic!(
                "no event reached the subscriber; logs:\n{}",
                logs.join("\n")
            );
        }
    }
}

/// Events of the log, as `events` lists them, oldest first.
async fn logged_ids(app: &TestApp, token: &str, customer_id: &str) -> Vec<String> {
    let body = app
        .gql(
            Some(token),
            "query($filter: EventFilter) { events(filter: $filter, first: 100) { edges { node { id } } } }",
            json!({ "filter": { "customerId": customer_id } }),
        )
        .await;
    let mut ids: Vec<String> = body["data"]["events"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    ids
}

#[tokio::test]
async fn events_committed_through_another_replica_arrive_once_in_order_and_none_from_before() {
    let app = TestApp::spawn().await;
    let other = app.replica().await;
    let admin = app.admin_token().await;
    let (customer_id, _) = customer_with_admin(&app, &admin).await;
    update_name(&app, &admin, &customer_id, "before the subscription").await;

    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .subscribe("1", LIVE, json!({ "customerId": customer_id }))
        .await;
    // The subscription is live once a change made after it shows up.
    let first = first_message(&mut socket, || {
        update_name(&other, &admin, &customer_id, "probe")
    })
    .await;
    assert_eq!(first["type"], "next", "{first}");
    let first = &first["payload"]["data"]["customerEvents"];
    assert_eq!(first["type"], "customer_updated", "{first}");
    assert_eq!(first["customerId"], customer_id);
    assert_eq!(first["data"]["name"], "probe", "{first}");

    // Changes through both replicas, interleaved.
    for round in 0..6 {
        let server = if round % 2 == 0 { &app } else { &other };
        update_name(server, &admin, &customer_id, &format!("round {round}")).await;
    }
    let mut received = vec![first["id"].as_str().unwrap().to_owned()];
    let mut names = Vec::new();
    while names.len() < 6 {
        let payload = socket.next_payload("1").await;
        let event = &payload["data"]["customerEvents"];
        received.push(event["id"].as_str().unwrap().to_owned());
        if event["data"]["name"] != "probe" {
            names.push(event["data"]["name"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..6).map(|round| format!("round {round}")).collect();
    assert_eq!(names, expected);
    // Nothing else comes: no repeat, nothing from before.
    assert!(
        socket
            .receive_within(Duration::from_millis(800))
            .await
            .is_none()
    );
    let unique_ids: HashSet<&String> = received.iter().collect();
    assert_eq!(unique_ids.len(), received.len(), "{received:?}");
    // Exactly the log's events from the first received one on, in its order.
    let logged = logged_ids(&app, &admin, &customer_id).await;
    let start = logged.iter().position(|id| *id == received[0]).unwrap();
    assert!(
        start >= 3,
        "create, guest agent and the update before: {logged:?}"
    );
    assert_eq!(logged[start..], received[..]);
    socket.close().await;
}

#[tokio::test]
async fn customer_admins_follow_only_their_own_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mine, my_admin, guest) = customer_with_guest(&app, &admin).await;
    let (theirs, _) = customer_with_admin(&app, &admin).await;

    let mut socket = Socket::connect(&app, &my_admin).await;
    socket
        .subscribe("other", LIVE, json!({ "customerId": theirs }))
        .await;
    let refused = socket.next_payload("other").await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    socket.subscribe("mine", LIVE, json!({})).await;
    let event = first_message(&mut socket, || async {
        update_name(&app, &admin, &theirs, "not for them").await;
        update_name(&app, &admin, &mine, "for them").await;
    })
    .await;
    let event = &event["payload"]["data"]["customerEvents"];
    assert_eq!(event["customerId"], mine, "{event}");
    // An agent without admin permission may not follow anything.
    let plain_username = unique("plain");
    app.seed_agent(&guest, &plain_username, 0).await;
    let plain = app.token(&plain_username, PASSWORD).await;
    let mut socket = Socket::connect(&app, &plain).await;
    socket.subscribe("1", LIVE, json!({})).await;
    let refused = socket.next_payload("1").await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
}

#[tokio::test]
async fn type_filters_are_applied_and_unknown_types_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .subscribe("bad", LIVE, json!({ "types": ["customer_exploded"] }))
        .await;
    let refused = socket.next_payload("bad").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");

    socket
        .subscribe("created", LIVE, json!({ "types": ["customer_created"] }))
        .await;
    let created = first_message(&mut socket, || async {
        let (id, _) = customer_with_admin(&app, &admin).await;
        update_name(&app, &admin, &id, "an update, filtered out").await;
    })
    .await;
    assert_eq!(
        created["payload"]["data"]["customerEvents"]["type"],
        "customer_created"
    );
    assert!(
        socket
            .receive_within(Duration::from_millis(500))
            .await
            .is_none_or(|m| matches!(&m, Received::Json(j) if j["payload"]["data"]["customerEvents"]["type"] == "customer_created")),
    );
}

#[tokio::test]
async fn a_revoked_credential_ends_its_subscriptions() {
    let app = TestApp::spawn().await;
    let other = app.replica().await;
    let admin = app.admin_token().await;
    let (customer_id, customer_admin) = customer_with_admin(&app, &admin).await;
    let mut socket = Socket::connect(&app, &customer_admin).await;
    socket.subscribe("1", LIVE, json!({})).await;
    loop {
        update_name(&app, &admin, &customer_id, "live").await;
        if let Some(message) = socket.receive_within(Duration::from_millis(500)).await {
            assert!(
                matches!(&message, Received::Json(m) if m["type"] == "next"),
                "{message:?}"
            );
            break;
        }
    }
    // Logged out through the other replica.
    let body = other.logout(&customer_admin).await;
    assert!(body["errors"].is_null(), "{body}");
    // Events of the probing updates may still be on their way; then the end.
    let ended = loop {
        let payload = socket.next_payload("1").await;
        if payload["errors"].is_array() {
            break payload;
        }
    };
    assert_eq!(error_code(&ended), "UNAUTHENTICATED", "{ended}");
    let complete = socket.receive().await;
    assert!(
        matches!(&complete, Received::Json(m) if m["type"] == "complete" && m["id"] == "1"),
        "{complete:?}"
    );
    // And it cannot subscribe again on that connection.
    socket.subscribe("2", LIVE, json!({})).await;
    let refused = socket.next_payload("2").await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
}

#[tokio::test]
async fn connection_init_must_carry_a_valid_credential_in_time() {
    let app = TestApp::spawn_with(|config| config.websocket_init_timeout_ms = 300).await;
    for payload in [
        json!({}),
        json!({ "Authorization": "Bearer not-a-token" }),
        json!({ "Authorization": "Basic YWRtaW46YWRtaW4=" }),
        json!({ "Authorization": 42 }),
        json!(["Bearer x"]),
    ] {
        let mut socket = Socket::open(&app).await;
        socket
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let (code, reason) = socket.closed().await;
        assert_eq!(code, Some(4403), "{payload}: {reason}");
    }
    // Subscribing before the handshake is done ends the connection.
    let mut socket = Socket::open(&app).await;
    socket.subscribe("1", LIVE, json!({})).await;
    assert_eq!(socket.closed().await.0, Some(4401));
    // Saying nothing: closed at the deadline.
    let mut socket = Socket::open(&app).await;
    let (code, _) = socket.closed().await;
    assert_eq!(code, Some(4408));
    // A second connection_init is refused.
    let admin = app.admin_token().await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {admin}") } }))
        .await;
    assert_eq!(socket.closed().await.0, Some(4429));
}

#[tokio::test]
async fn operations_per_connection_and_connections_per_credential_are_capped() {
    let app = TestApp::spawn_with(|config| {
        config.subscription_max_per_connection = 2;
        config.subscription_max_connections_per_credential = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let mut first = Socket::connect(&app, &admin).await;
    first.subscribe("a", LIVE, json!({})).await;
    first.subscribe("b", LIVE, json!({})).await;
    first.subscribe("c", LIVE, json!({})).await;
    let refused = first.next_payload("c").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["limit"], "SUBSCRIPTIONS");
    // Stopping one makes room.
    first.send(json!({ "id": "a", "type": "complete" })).await;
    first.subscribe("d", LIVE, json!({})).await;
    assert!(
        first
            .receive_within(Duration::from_millis(500))
            .await
            .is_none_or(|m| !matches!(&m, Received::Json(j) if j["id"] == "d")),
        "d was refused"
    );

    let second = Socket::connect(&app, &admin).await;
    let mut third = Socket::open(&app).await;
    third
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {admin}") } }))
        .await;
    assert_eq!(third.closed().await.0, Some(4429));
    // Another credential is not held back by this one's connections.
    let (_, customer_admin) = customer_with_admin(&app, &admin).await;
    Socket::connect(&app, &customer_admin).await.close().await;
    // A closed connection frees its place.
    second.close().await;
    crate::harness::eventually("the slot to be freed", Duration::from_secs(10), || {
        let app = &app;
        let admin = admin.clone();
        async move {
            let mut socket = Socket::open(app).await;
            socket
                .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {admin}") } }))
                .await;
            match socket.receive().await {
                Received::Json(message) if message["type"] == "connection_ack" => Some(()),
                _ => None,
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_pinged_then_disconnected() {
    let app = TestApp::spawn_with(|config| config.websocket_ping_interval_ms = 200).await;
    let admin = app.admin_token().await;
    let mut socket = Socket::connect(&app, &admin).await;
    assert_eq!(metric(&app, "customer_api_websocket_connections"), 1.0);
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (code, reason) = socket.closed().await;
    assert_eq!(code, Some(3008), "{reason}");
    crate::harness::eventually("the gauge to drop", Duration::from_secs(5), || async {
        (metric(&app, "customer_api_websocket_connections") == 0.0).then_some(())
    })
    .await;

    // One that answers (the client library does, whenever it reads) stays.
    let mut socket = Socket::connect(&app, &admin).await;
    assert!(
        socket
            .receive_within(Duration::from_millis(1000))
            .await
            .is_none()
    );
    socket
        .subscribe("1", "{ me { agent { username } } }", json!({}))
        .await;
    let me = socket.next_payload("1").await;
    assert_eq!(me["data"]["me"]["agent"]["username"], "admin", "{me}");
}

#[tokio::test]
async fn queries_and_mutations_work_over_the_socket_under_the_same_limits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .subscribe("q", "query { me { agent { username } } }", json!({}))
        .await;
    let me = socket.next_payload("q").await;
    assert_eq!(me["data"]["me"]["agent"]["username"], "admin", "{me}");
    let complete = socket.receive().await;
    assert!(matches!(&complete, Received::Json(m) if m["type"] == "complete"));

    let aliased = format!(
        "subscription {{ customerEvents {{ id {} }} }}",
        "b: __typename ".repeat(200)
    );
    socket.subscribe("aliases", &aliased, json!({})).await;
    let refused = socket.next_payload("aliases").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["limit"], "ALIASES",
        "{refused}"
    );

    // A subscription over plain HTTP is refused with a clear error.
    let body = app.gql(Some(&admin), LIVE, json!({})).await;
    assert!(!body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn hostile_frames_close_the_socket_and_the_server_carries_on() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 64 * 1024).await;
    let admin = app.admin_token().await;
    use tokio_tungstenite::tungstenite::Message;
    let cases: Vec<Message> = vec![
        Message::Text("{not json".into()),
        Message::Text(json!({ "type": "no_such_type" }).to_string().into()),
        Message::Text("x".repeat(128 * 1024).into()),
        Message::Binary(vec![0xff; 16].into()),
        Message::Text("\u{0}\u{feff}\u{202e}".into()),
    ];
    for frame in cases {
        let mut socket = Socket::connect(&app, &admin).await;
        let shown = format!("{:.40?}", frame);
        socket.send_raw(frame).await;
        let (code, reason) = socket.closed().await;
        assert!(
            matches!(code, Some(1002 | 1009) | None),
            "{shown}: {code:?} {reason}"
        );
    }
    // The legacy protocol is spoken too.
    let mut legacy = Socket::open_with(&app, "graphql-ws").await;
    legacy
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {admin}") } }))
        .await;
    let ack = legacy.receive().await;
    assert!(
        matches!(&ack, Received::Json(m) if m["type"] == "connection_ack"),
        "{ack:?}"
    );
    let health = app.get("/healthz").await;
    assert!(health.status().is_success());
}

#[tokio::test]
async fn a_draining_server_closes_its_sockets_as_going_away() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket.subscribe("1", LIVE, json!({})).await;
    let shutdown = tokio::spawn(async move {
        app.shutdown().await.unwrap();
        app
    });
    let (code, _) = socket.closed().await;
    assert_eq!(code, Some(1001));
    // The drain waited for the socket rather than cutting it at the deadline.
    let app = tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap();
    drop(app);
}

/// Values a subscriber sees are the `Event` objects of `events`.
#[tokio::test]
async fn subscribed_events_equal_the_audit_trail() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer_id, _) = customer_with_admin(&app, &admin).await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .subscribe("1", LIVE, json!({ "customerId": customer_id }))
        .await;
    let message = first_message(&mut socket, || {
        update_name(&app, &admin, &customer_id, "same")
    })
    .await;
    let live = message["payload"]["data"]["customerEvents"].clone();
    let body = app
        .gql(
            Some(&admin),
            "query($filter: EventFilter) { events(filter: $filter, first: 100) { edges { node { id type customerId actorId requestId tmCreate data } } } }",
            json!({ "filter": { "customerId": customer_id } }),
        )
        .await;
    let logged = body["data"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["node"]["id"] == live["id"])
        .map(|edge| edge["node"].clone())
        .expect("the event is in the log");
    assert_eq!(logged, live);
}

/// An event whose transaction began first but commits last is neither
/// lost nor reordered: the feed holds back later transactions until the
/// earlier one has ended, then hands out both in transaction order.
#[tokio::test]
async fn a_late_committing_transaction_is_not_passed_over() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer_id, _) = customer_with_admin(&app, &admin).await;
    // The slow transaction's event is another customer's: it holds a lock
    // on its customer that an update of the same one would wait for.
    let (slow_customer_id, _) = customer_with_admin(&app, &admin).await;
    let mut socket = Socket::connect(&app, &admin).await;
    socket
        .subscribe("1", LIVE, json!({ "types": ["customer_updated"] }))
        .await;
    first_message(&mut socket, || {
        update_name(&app, &admin, &customer_id, "live")
    })
    .await;
    let mut sql = app.db.client().await;
    let slow = sql.transaction().await.unwrap();
    slow.execute(
        "INSERT INTO events (id, type, customer_id, tm_create, data) \
         VALUES (gen_random_uuid(), 'customer_updated', $1::text::uuid, now(), '{\"name\": \"slow\"}')",
        &[&slow_customer_id],
    )
    .await
    .unwrap();
    update_name(&app, &admin, &customer_id, "fast").await;
    // The fast change has committed, but an older transaction is open:
    // nothing of it may come (events of the probing updates still may).
    let name = |payload: &Value| payload["data"]["customerEvents"]["data"]["name"].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Some(message) = socket
        .receive_within(deadline - tokio::time::Instant::now())
        .await
    {
        let Received::Json(message) = message else {
            panic!("{message:?}")
        };
        assert_eq!(
            name(&message["payload"]),
            "live",
            "handed out while an earlier transaction could still commit"
        );
    }
    slow.commit().await.unwrap();
    let mut names = Vec::new();
    while names.len() < 2 {
        let payload = socket.next_payload("1").await;
        if name(&payload) != "live" {
            names.push(name(&payload));
        }
    }
    assert_eq!(names, [json!("slow"), json!("fast")]);
}
