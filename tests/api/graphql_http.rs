//! Details of GraphQL over HTTP that clients and code generators rely on.

use serde_json::json;

use crate::harness::TestApp;

/// An operation whose every root field is skipped still executed: its data
/// is an empty object (GraphQL spec, "Execution"), not `null`.
#[tokio::test]
async fn an_operation_whose_root_fields_are_all_skipped_answers_empty_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for query in [
        "{ me @skip(if: true) { permissions } }",
        "query($no: Boolean!) { me @include(if: $no) { permissions } __typename @skip(if: true) }",
    ] {
        let body = app.gql(Some(&admin), query, json!({ "no": false })).await;
        assert_eq!(body, json!({ "data": {} }), "{query}");
    }
    let body = app
        .gql(
            Some(&admin),
            "{ me @skip(if: false) { permissions } }",
            json!({}),
        )
        .await;
    assert!(body["data"]["me"]["permissions"].is_array(), "{body}");
}
