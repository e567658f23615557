//! HTTP hygiene of a public server: deadlines, media types, request ids in
//! responses and logs, metrics, CORS, refusals in the shape of the API that
//! was called, and malformed or oversized requests.

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, Reply, TestApp, error_code, request_log_lines, send, unique,
};

const LOGIN: &str =
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }";

/// POSTs `body` to `path` labelled as `content_type`, whatever it holds.
async fn post_as(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    send(
        app.http()
            .post(format!("{}{path}", app.address))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Fails unless `reply` has `status`, and `expected` at the JSON pointer `at`.
fn assert_reply(reply: &Reply, status: u16, at: &str, expected: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(
        reply.body.pointer(at),
        Some(&json!(expected)),
        "{at} of {:?}",
        reply.body
    );
}

#[tokio::test]
async fn requests_past_their_deadline_fail_with_service_unavailable() {
    let app = TestApp::spawn_with(|c| c.request_timeout_ms = 1).await;
    // An argon2 verification alone takes longer than a millisecond.
    let reply = send(app.http().post(app.graphql_url()).json(&json!({
        "query": LOGIN,
        "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD }
    })))
    .await;
    assert_reply(
        &reply,
        503,
        "/errors/0/extensions/code",
        "SERVICE_UNAVAILABLE",
    );
}

#[tokio::test]
async fn post_bodies_must_be_json_or_graphql() {
    let app = TestApp::spawn().await;
    let plain = post_as(&app, "/graphql", "text/plain", "{ __typename }").await;
    assert_reply(&plain, 415, "/errors/0/extensions/code", "BAD_USER_INPUT");

    let with_charset = post_as(
        &app,
        "/graphql",
        "application/json; charset=utf-8",
        json!({ "query": "{ __typename }" }).to_string(),
    )
    .await;
    assert_reply(&with_charset, 200, "/data/__typename", "Query");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_repeat_it() {
    let app = TestApp::spawn().await;
    let response = app
        .http()
        .post(app.graphql_url())
        .json(&json!({ "query": "{ me { permissions } }" }))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        generated.as_str(),
        "{body}"
    );

    let health_with_id = |id: String| {
        app.http()
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", id)
            .send()
    };
    let mine = "trace-abc.123";
    let echoed = health_with_id(mine.to_owned()).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], mine);
    let replaced = health_with_id("x".repeat(500)).await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an unusable id is replaced: {id}"
    );
}

#[tokio::test]
async fn metrics_count_operations_by_outcome_and_failed_logins() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.gql(Some(&admin), "{ me { permissions } }", json!({}))
        .await;
    app.gql(None, "{ me { permissions } }", json!({})).await;
    app.login(ADMIN_USERNAME, "wrong-password").await;
    app.gql(None, "{ nope }", json!({})).await;

    let text = app.get("/metrics").await.text().await.unwrap();
    for expected in [
        r#"customer_api_graphql_operations_total{operation="query me",outcome="ok"} 1"#,
        r#"customer_api_graphql_operations_total{operation="query me",outcome="UNAUTHENTICATED"} 1"#,
        r#"customer_api_graphql_operations_total{operation="mutation login",outcome="UNAUTHENTICATED"} 1"#,
        r#"customer_api_graphql_operations_total{operation="invalid",outcome="BAD_USER_INPUT"} 1"#,
        r#"customer_api_login_failures_total{reason="credentials"} 1"#,
        "customer_api_graphql_operation_duration_seconds_bucket",
        "customer_api_db_pool_connections ",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        !text.contains("nope"),
        "unknown field names never become labels"
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let closed = TestApp::spawn().await;
    let open =
        TestApp::spawn_with(|c| c.cors_allowed_origins = vec!["https://app.example".into()]).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.http()
            .request(reqwest::Method::OPTIONS, app.graphql_url())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let none = preflight(&closed, "https://app.example").await.unwrap();
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, &unique("listed"), "a-long-password")
        .await;
    let username = unique("logged");
    let operations = [
        (
            "createCustomer",
            json!({ "query": "mutation($u: String!) { createCustomer(input: {username: $u, password: \"a-long-password\"}) { customer { id } } }", "variables": { "u": username } }),
        ),
        (
            "login",
            json!({ "query": LOGIN, "variables": { "u": username, "p": "a-long-password" } }),
        ),
        (
            "a page of customers with their guest agents",
            json!({ "query": "{ customers(first: 5) { totalCount edges { node { username guestAgent { username } } } } }" }),
        ),
        (
            "a failed login",
            json!({ "query": LOGIN, "variables": { "u": username, "p": "wrong-password" } }),
        ),
    ];
    // Each statement is logged once (`customer_api::sql` at TRACE, which the
    // test subscriber enables) and counted once: a request's statements and
    // its SQL lines bearing its id must agree.
    let mut missing = Vec::new();
    for (what, body) in operations {
        let request_id = unique("logged-request");
        let before = app.statements();
        let reply = send(app.traced(&admin, &request_id, body)).await;
        assert_eq!(reply.status, 200, "{what}: {:?}", reply.body);
        let statements = app.statements() - before;
        let lines = request_log_lines(&request_id);
        let sql_lines = lines
            .iter()
            .filter(|l| l.contains("customer_api::sql"))
            .count() as u64;
        let operation_lines = lines
            .iter()
            .filter(|l| l.contains("graphql operation"))
            .count();
        println!("{what}: {statements} statements, {sql_lines} SQL lines with its id");
        assert!(statements > 0, "{what} reached the database");
        if sql_lines != statements || operation_lines != 1 {
            missing.push(format!(
                "{what}: {statements} statements but {sql_lines} SQL log lines carry its id, \
                 and {operation_lines} operation lines"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "log lines of a request without its id (work outside the request's span, e.g. in a task it spawned):\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn refusals_outside_handlers_speak_rest_on_rest_paths() {
    let app = TestApp::spawn_with(|c| {
        c.max_body_bytes = 1024;
        c.request_timeout_ms = 1;
    })
    .await;
    let big = post_as(
        &app,
        "/v1.0/customers",
        "application/json",
        json!({ "username": "x".repeat(4000) }).to_string(),
    )
    .await;
    assert_reply(&big, 413, "/error/code", "BAD_USER_INPUT");

    let slow = app.rest_login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_reply(&slow, 503, "/error/code", "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn malformed_parameters_are_refused_without_quoting_them() {
    let app = TestApp::spawn().await;
    for (name, value) in [("variables", "\"hunter2\""), ("extensions", "\"hunter2\"")] {
        let response = app
            .http()
            .get(app.graphql_url())
            .query(&[("query", "{ __typename }"), (name, value)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(!body.to_string().contains("hunter2"), "{body}");
    }
    let posted = post_as(
        &app,
        "/graphql",
        "application/json",
        r#"{"query": "{ __typename }", "variables": "hunter2"}"#,
    )
    .await;
    assert!(
        !posted.body.to_string().contains("hunter2"),
        "{:?}",
        posted.body
    );
}

#[tokio::test]
async fn oversized_bodies_close_the_connection_and_say_so() {
    let app = TestApp::spawn().await;
    for path in ["/graphql", "/v1.0/customers", "/auth/login"] {
        let response = app
            .http()
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(vec![b' '; app.state.config.max_body_bytes + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(response.headers()["connection"], "close", "{path}");
    }
}

#[tokio::test]
async fn rest_looking_paths_that_no_route_serves_answer_in_rest_shape() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1.0",
        "/v1.0/",
        "/v1.0/x",
        "/auth/",
        "/auth/logout",
        "/auth/login/x",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
}
