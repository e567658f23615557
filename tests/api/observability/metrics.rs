//! Per-route HTTP metrics and `build_info`, read from `/metrics`.

use serde_json::json;

use crate::harness::{TestApp, send};

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_method_and_status() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let customer_id = app.own_customer_id(&token).await;
    let rest = send(
        app.http()
            .get(format!("{}/v1.0/customers/{customer_id}", app.address))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(rest.status, 200, "{:?}", rest.body);
    let stray = format!("/no-such-path-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(app.get(&stray).await.status(), 404);
    let refused = app
        .gql(None, "{ customers(first: 1) { totalCount } }", json!({}))
        .await;
    assert!(refused["errors"].is_array(), "{refused}");

    let text = app.get("/metrics").await.text().await.unwrap();
    let count = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    };
    // Logging in and `me`; the refused query is a 200 too, as GraphQL answers.
    assert!(
        count(r#"customer_api_http_requests_total{route="/graphql",method="POST",status="200"}"#)
            >= 3.0
    );
    assert_eq!(
        count(
            r#"customer_api_http_requests_total{route="/v1.0/customers/{id}",method="GET",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        count(r#"customer_api_http_requests_total{route="unmatched",method="GET",status="404"}"#),
        1.0
    );
    assert!(
        count(
            r#"customer_api_http_request_duration_seconds_count{route="/graphql",method="POST"}"#
        ) >= 3.0
    );
    assert_eq!(
        count(
            r#"customer_api_http_request_duration_seconds_count{route="/v1.0/customers/{id}",method="GET"}"#
        ),
        1.0
    );
    assert!(
        !text.contains(&stray) && !text.contains(&customer_id),
        "paths chosen by clients must not become labels:\n{text}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.lines().any(|line| line
            .starts_with(&format!(r#"customer_api_build_info{{version="{version}""#))
            && line.ends_with(" 1")),
        "no build_info in:\n{text}"
    );
}

#[tokio::test]
async fn responses_carry_no_traceparent_while_traces_are_off() {
    let app = TestApp::spawn().await;
    let reply = send(
        app.http()
            .post(app.graphql_url())
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .json(&json!({ "query": "{ __typename }" })),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("traceparent").is_none());
}
