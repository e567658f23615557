//! GraphQL's `accessKey` and `updateAccessKey`, agreeing with REST.

use super::*;

const ACCESS_KEY: &str = "query($id: UUID!) { accessKey(id: $id) { id customerId name detail tokenPrefix tmUpdate tmDelete } }";
const UPDATE: &str = "mutation($input: UpdateAccessKeyInput!) { updateAccessKey(input: $input) { accessKey { id name detail tmUpdate tmDelete } } }";

#[tokio::test]
async fn access_key_and_update_access_key_follow_the_rest_rules() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, _, own) = customer_with_admin(&app, &admin).await;
    let (_, _, other) = customer_with_admin(&app, &admin).await;
    let (id, key) = app
        .create_access_key_ok(&own, json!({"name": "g", "detail": "d"}))
        .await;

    let read = app.gql(Some(&key), ACCESS_KEY, json!({"id": id})).await;
    let node = &read["data"]["accessKey"];
    assert_eq!(
        (node["customerId"].as_str(), node["name"].as_str()),
        (Some(customer.as_str()), Some("g"))
    );
    assert!(node["tmUpdate"].is_null(), "{read}");
    let unknown = app
        .gql(Some(&own), ACCESS_KEY, json!({"id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!(unknown, json!({"data": {"accessKey": null}}));

    let renamed = app
        .gql(
            Some(&key),
            UPDATE,
            json!({"input": {"id": id, "name": "renamed"}}),
        )
        .await;
    let node = &renamed["data"]["updateAccessKey"]["accessKey"];
    assert_eq!(
        (node["name"].as_str(), node["detail"].as_str()),
        (Some("renamed"), Some("d")),
        "{renamed}"
    );
    assert!(node["tmUpdate"].is_string());
    // REST sees the same key.
    let rest = call(
        &app,
        Method::GET,
        &format!("/v1.0/accesskeys/{id}"),
        Cred::Bearer(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(rest.body["name"], "renamed");

    let too_long = app
        .gql(
            Some(&own),
            UPDATE,
            json!({"input": {"id": id, "detail": "d".repeat(4097)}}),
        )
        .await;
    assert_eq!(
        (
            crate::harness::error_code(&too_long),
            crate::harness::error_field(&too_long)
        ),
        ("BAD_USER_INPUT", "detail")
    );
    for query in [ACCESS_KEY, UPDATE] {
        let variables = if query == UPDATE {
            json!({"input": {"id": id, "name": "x"}})
        } else {
            json!({"id": id})
        };
        let refused = app.gql(Some(&other), query, variables).await;
        assert_eq!(
            crate::harness::error_code(&refused),
            "FORBIDDEN",
            "{refused}"
        );
    }
    let by_super = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({"input": {"id": id, "detail": "platform"}}),
        )
        .await;
    assert_eq!(
        by_super["data"]["updateAccessKey"]["accessKey"]["detail"], "platform",
        "{by_super}"
    );

    app.delete_access_key(&own, &id).await;
    let gone = app
        .gql(
            Some(&own),
            UPDATE,
            json!({"input": {"id": id, "name": "late"}}),
        )
        .await;
    assert_eq!(crate::harness::error_code(&gone), "NOT_FOUND", "{gone}");
    let read = app.gql(Some(&own), ACCESS_KEY, json!({"id": id})).await;
    assert!(read["data"]["accessKey"]["tmDelete"].is_string(), "{read}");
}
