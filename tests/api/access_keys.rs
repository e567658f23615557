//! createAccessKey, accessKeys, deleteAccessKey, and what a request made with
//! an access key (`Authorization: Bearer vb_…`) may do.

mod create;
mod listing;
mod revoking;
mod using;

use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, sql_column};

pub(super) const OWN_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id } }";

pub(super) const LIST: &str = r#"query($customerId: UUID, $first: Int, $after: String, $last: Int, $before: String) {
  accessKeys(customerId: $customerId, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id customerId name tokenPrefix tmExpire tmLastUsed tmDelete } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

pub(super) const LIST_WITH_COUNT: &str = r#"query($customerId: UUID) {
  accessKeys(customerId: $customerId) { nodes { id customerId } totalCount }
}"#;

pub(super) const YEAR: i64 = 31_536_000;

pub(super) fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a DateTime: {value}")),
    )
    .unwrap_or_else(|e| panic!("not RFC 3339: {value}: {e}"))
}

/// `vb_` and 43 URL-safe characters.
pub(super) fn assert_key_format(key: &str) {
    assert!(key.starts_with("vb_"), "{key}");
    assert_eq!(key.len(), 46, "{key}");
    assert!(
        key[3..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{key}"
    );
}

/// Creates a customer and returns its id and a login token of its guest
/// agent (a CUSTOMER_ADMIN); the password is `<username>-password`.
pub(super) async fn customer_with_admin(
    app: &TestApp,
    admin: &str,
    username: &str,
) -> (String, String) {
    let password = format!("{username}-password");
    let id = app.create_customer_ok(admin, username, &password).await;
    let token = app.token(username, &password).await;
    (id, token)
}

pub(super) fn list_ids(body: &Value) -> Vec<String> {
    assert!(body["errors"].is_null(), "unexpected errors: {body}");
    let connection = &body["data"]["accessKeys"];
    let from_nodes: Vec<String> = connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {body}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    if let Some(edges) = connection["edges"].as_array() {
        let from_edges: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(from_edges, from_nodes, "edges and nodes agree: {body}");
    }
    from_nodes
}

/// Live keys of a customer as the database orders them: newest first.
pub(super) async fn live_keys_in_order(
    client: &tokio_postgres::Client,
    customer_id: &str,
) -> Vec<String> {
    sql_column(
        client,
        "SELECT id::text FROM access_keys WHERE customer_id = $1::text::uuid AND tm_delete IS NULL
          ORDER BY tm_create DESC, id DESC",
        &[&customer_id],
    )
    .await
}

/// Fails unless `key` is refused what only a super admin, or an admin of
/// `other` (another customer), may do.
pub(super) async fn assert_confined_to_its_customer(app: &TestApp, key: &str, other: &str) {
    for (what, body) in [
        (
            "reading another customer",
            app.gql(Some(key), OWN_CUSTOMER, json!({ "id": other }))
                .await,
        ),
        (
            "listing customers",
            app.gql(Some(key), "{ customers { nodes { id } } }", json!({}))
                .await,
        ),
        (
            "creating a customer",
            app.create_customer(
                key,
                json!({ "username": "by-key", "password": "password1" }),
            )
            .await,
        ),
        (
            "deleting another customer",
            app.delete_customer(key, other).await,
        ),
        (
            "listing another customer's keys",
            app.gql(Some(key), LIST, json!({ "customerId": other }))
                .await,
        ),
    ] {
        assert_eq!(error_code(&body), "FORBIDDEN", "{what}: {body}");
    }
}
