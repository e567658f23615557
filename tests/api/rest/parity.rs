//! REST and GraphQL show one customer the same way, whichever created or
//! deleted it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    UNSET, admin_rest_token, create, delete_customer, get, get_customer, tutorial_create_request,
};
use crate::harness::TestApp;

const GRAPHQL_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete status } }";

/// A GraphQL customer written the REST way, field for field.
fn graphql_as_rest(customer: &Value) -> Value {
    let time = |value: &Value| match value.as_str() {
        None => UNSET.to_owned(),
        Some(at) => DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string(),
    };
    json!({
        "id": customer["id"],
        "username": customer["username"],
        "name": customer["name"],
        "detail": customer["detail"],
        "webhook_method": customer["webhookMethod"].as_str().unwrap_or(""),
        "webhook_uri": customer["webhookUri"],
        "line_secret": customer["lineSecret"],
        "line_token": customer["lineToken"],
        "permission_ids": customer["permissionIds"],
        "tm_create": time(&customer["tmCreate"]),
        "tm_update": time(&customer["tmUpdate"]),
        "tm_delete": time(&customer["tmDelete"]),
        "status": customer["status"].as_str().unwrap().to_lowercase(),
    })
}

async fn graphql_customer(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app
        .gql(Some(token), GRAPHQL_CUSTOMER, json!({ "id": id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["customer"].clone()
}

#[tokio::test]
async fn rest_and_graphql_show_the_same_customer() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;

    // Created through REST, read through both.
    let mut request = tutorial_create_request();
    request["permission_ids"] =
        json!(["03796e14-7cb4-11ec-9dba-e72023efd1c6", uuid::Uuid::new_v4()]);
    let created = create(&app, &token, &request).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let rest = get_customer(&app, &token, &id).await;
    let graphql = graphql_customer(&app, &token, &id).await;
    assert_eq!(graphql["webhookMethod"], "POST");
    assert_eq!(graphql_as_rest(&graphql), rest.body);

    // Created through GraphQL without a webhook, read through both.
    let other = app
        .create_customer_ok(&token, "graphql-made", "graphql-made-password")
        .await;
    let rest = get_customer(&app, &token, &other).await;
    assert_eq!(rest.body["webhook_method"], "");
    assert_eq!(rest.body["tm_update"], UNSET);
    let graphql = graphql_customer(&app, &token, &other).await;
    assert!(graphql["webhookMethod"].is_null());
    assert_eq!(graphql_as_rest(&graphql), rest.body);

    // Deleted through REST: GraphQL sees the same deletion time.
    let deleted = delete_customer(&app, &token, &id).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let graphql = graphql_customer(&app, &token, &id).await;
    assert!(graphql["tmDelete"].is_string(), "{graphql}");
    assert_eq!(graphql_as_rest(&graphql), deleted.body);

    // The REST list holds what the GraphQL list holds, in the same order.
    let rest = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    let body = app
        .gql(
            Some(&token),
            "{ customers(first: 10) { nodes { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete status } } }",
            json!({}),
        )
        .await;
    let graphql: Vec<Value> = body["data"]["customers"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(graphql_as_rest)
        .collect();
    assert_eq!(rest.body["result"], json!(graphql));
}
