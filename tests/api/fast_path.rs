//! The fast path (`src/graphql/fast`) answers exactly as async-graphql does.
//!
//! Two servers on one database, one with the fast path on and one with it
//! off, get the same generated requests (`fast_path/documents.rs`); their
//! answers must be the same bytes, with the same status. Every other test
//! runs its own queries both ways too: the harness starts servers with
//! `GRAPHQL_FAST_PATH=verify`, which answers with async-graphql's response
//! and counts every difference, and fails a test whose server counted one.

mod documents;

use customer_api::config::FastPathMode;
use serde_json::json;

use crate::fuzz::values::Rng;
use crate::harness::{TestApp, unique};
use documents::{Case, World};

/// Status and body of one request.
async fn answer(app: &TestApp, case: &Case) -> (u16, String) {
    // Errors carry the request id: the same one for both servers.
    let mut request = app
        .http()
        .post(app.graphql_url())
        .header("x-request-id", "fast-path-case")
        .json(&case.body());
    if let Some(token) = &case.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Customers of every kind the fast path renders: with and without a
/// webhook, LINE settings and permissions, frozen, deleted; and callers of
/// every kind.
async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let mut customer_ids = Vec::new();
    let mut guests = Vec::new();
    for n in 0..6 {
        let username = unique(&format!("fp-{n}"));
        let mut input = json!({ "username": username, "password": "fast-path-password" });
        if n % 2 == 0 {
            input["name"] = json!(format!("Fast path {n} ✓ \"quoted\" \u{1F600}"));
            input["detail"] = json!("line one\nline two\t\u{7f}</script>");
            input["webhookMethod"] = json!("POST");
            input["webhookUri"] = json!("https://hooks.example.com/fp");
            input["lineSecret"] = json!("line-secret");
            input["lineToken"] = json!("line-token");
            input["permissionIds"] = json!([uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]);
        }
        let body = app.create_customer(&admin, input).await;
        let id = body["data"]["createCustomer"]["customer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createCustomer: {body}"))
            .to_owned();
        customer_ids.push(id);
        guests.push(username);
    }
    let frozen = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": customer_ids[1] }),
        )
        .await;
    assert!(frozen["errors"].is_null(), "{frozen}");
    let deleted = app.delete_customer(&admin, &customer_ids[3]).await;
    assert!(deleted["errors"].is_null(), "{deleted}");

    let customer_admin = app.token(&guests[0], "fast-path-password").await;
    let agent_name = unique("fp-agent");
    app.seed_agent(&guests[2], &agent_name, 16).await;
    let agent = app.token(&agent_name, "fast-path-password").await;
    let first_page = app
        .gql(
            Some(&admin),
            "{ customers(first: 3) { edges { cursor } } }",
            json!({}),
        )
        .await;
    let cursors = first_page["data"]["customers"]["edges"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|edge| edge["cursor"].as_str().expect("cursor").to_owned())
        .collect();
    World {
        tokens: vec![
            Some(admin),
            Some(customer_admin),
            Some(agent),
            None,
            Some("not-a-token".to_owned()),
        ],
        token_weights: vec![20, 3, 2, 2, 1],
        customer_ids,
        cursors,
    }
}

#[tokio::test]
async fn generated_requests_get_the_same_bytes_with_and_without_the_fast_path() {
    let fast = TestApp::spawn_with(|c| c.graphql_fast_path = FastPathMode::On).await;
    let general = fast
        .replica_with(|c| c.graphql_fast_path = FastPathMode::Off)
        .await;
    let world = world(&fast).await;
    let cases: usize = std::env::var("FAST_PATH_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("FAST_PATH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut rng = Rng::new(seed);
    let served_before = fast.state.metrics.fast_path_served();
    for n in 0..cases {
        let case = documents::case(&mut rng, &world);
        let reference = answer(&general, &case).await;
        // The first time, async-graphql runs the document (and so admits
        // it to the fast path); the second time, the fast path may answer.
        for attempt in ["first", "second"] {
            let answered = answer(&fast, &case).await;
            assert_eq!(
                answered, reference,
                "case {n} of seed {seed} (FAST_PATH_SEED={seed} replays it), {attempt} time: {case:#?}"
            );
        }
    }
    let served = fast.state.metrics.fast_path_served() - served_before;
    // The generator also makes invalid and failing requests, which the
    // fast path leaves to async-graphql; it must still have answered many.
    assert!(
        served * 4 >= cases as u64,
        "the fast path answered only {served} of {cases} cases (seed {seed})"
    );
    assert_eq!(fast.state.metrics.fast_path_mismatches(), 0);
}

#[tokio::test]
async fn the_fast_path_answers_a_page_in_two_statements_a_customer_in_one_and_gives_up_on_errors() {
    let app = TestApp::spawn_with(|c| c.graphql_fast_path = FastPathMode::On).await;
    let admin = app.admin_token().await;
    for n in 0..3 {
        app.create_customer_ok(&admin, &unique(&format!("fp2-{n}")), "fast-path-password")
            .await;
    }
    let page = "{ customers(first: 50) { edges { cursor node { id name guestAgent { id username } } } pageInfo { hasNextPage endCursor } } }";
    let warm = app.gql(Some(&admin), page, json!({})).await;
    assert!(warm["errors"].is_null(), "{warm}");
    let served = app.state.metrics.fast_path_served();
    let statements = app.statements();
    let body = app.gql(Some(&admin), page, json!({})).await;
    assert_eq!(body, warm);
    assert_eq!(app.state.metrics.fast_path_served(), served + 1);
    assert_eq!(
        app.statements() - statements,
        2,
        "the page and its guest agents"
    );

    // One customer with its guest agent: one statement (a join), where
    // async-graphql's resolver and loader send two.
    let id = body["data"]["customers"]["edges"][0]["node"]["id"].clone();
    let one = "query($id: UUID!) { customer(id: $id) { id name guestAgent { id username } } }";
    let warm = app.gql(Some(&admin), one, json!({ "id": id })).await;
    assert!(
        warm["data"]["customer"]["guestAgent"]["id"].is_string(),
        "{warm}"
    );
    let statements = app.statements();
    let again = app.gql(Some(&admin), one, json!({ "id": id })).await;
    assert_eq!(again, warm);
    assert_eq!(app.state.metrics.fast_path_served(), served + 2);
    assert_eq!(app.statements() - statements, 1, "customer and guest agent");

    // Errors are async-graphql's to report, with their codes and paths.
    let refused = app.gql(None, page, json!({})).await;
    assert_eq!(app.state.metrics.fast_path_served(), served + 2);
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(refused["errors"][0]["path"], json!(["customers"]));
}

/// Over the WebSocket, the fast path's written answer is read back into
/// async-graphql's response for the protocol: the same payload as over HTTP.
#[tokio::test]
async fn the_fast_path_answers_over_the_websocket_as_over_http() {
    use crate::subscriptions::socket::Socket;

    let app = TestApp::spawn_with(|c| c.graphql_fast_path = FastPathMode::On).await;
    let admin = app.admin_token().await;
    let name = "Socket \"quoted\" ✓ \u{1F600}";
    let created = app
        .create_customer(
            &admin,
            json!({ "username": unique("fp-ws"), "password": "fast-path-password", "name": name }),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let page = "{ customers(first: 5) { totalCount edges { cursor node { id name tmCreate permissionIds status guestAgent { id permissions } } } pageInfo { hasNextPage endCursor } } }";
    let over_http = app.gql(Some(&admin), page, json!({})).await;
    assert_eq!(
        over_http["data"]["customers"]["edges"][0]["node"]["name"],
        name
    );
    let served = app.state.metrics.fast_path_served();

    let mut socket = Socket::connect(&app, &admin).await;
    socket.subscribe("page", page, json!({})).await;
    let over_socket = socket.next_payload("page").await;
    assert_eq!(app.state.metrics.fast_path_served(), served + 1);
    assert_eq!(over_socket, over_http);
}
