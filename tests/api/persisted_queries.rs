//! Automatic persisted queries: a document is kept under its SHA-256 hash
//! once it has validated, only under its own hash, and runs by hash over
//! GET too.

use serde_json::json;

use crate::harness::{TestApp, error_code, send, sha256};

#[tokio::test]
async fn persisted_queries_work_over_get_once_registered() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let query = "query($n: Int!) { customers(first: $n) { edges { node { username } } } }";
    let extensions =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(query) } }).to_string();
    let variables = json!({ "n": 1 }).to_string();
    let get = |with_query: bool| {
        let mut params = vec![
            ("variables", variables.as_str()),
            ("extensions", extensions.as_str()),
        ];
        if with_query {
            params.push(("query", query));
        }
        send(
            app.http()
                .get(app.graphql_url())
                .query(&params)
                .bearer_auth(&admin),
        )
    };
    let unknown = get(false).await;
    assert_eq!(
        error_code(&unknown.body),
        "PERSISTED_QUERY_NOT_FOUND",
        "{unknown:?}"
    );
    let registered = get(true).await;
    assert_eq!(registered.status, 200, "{registered:?}");
    let page = &registered.body["data"]["customers"]["edges"];
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{registered:?}");
    let by_hash = get(false).await;
    assert_eq!(by_hash.status, 200, "{by_hash:?}");
    assert_eq!(
        by_hash.body, registered.body,
        "the hash alone runs the same query, with the variables of the query string"
    );
}

#[tokio::test]
async fn a_persisted_query_hash_that_is_not_its_documents_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let post = |query: Option<&str>, hash: &str| {
        let mut body =
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
        if let Some(query) = query {
            body["query"] = json!(query);
        }
        send(
            app.http()
                .post(app.graphql_url())
                .bearer_auth(&admin)
                .json(&body),
        )
    };
    let expected = "{ __typename }";
    let other = "{ me { agent { username } } }";

    // Under a hash nobody has registered yet...
    let refused = post(Some(other), &sha256(expected)).await;
    assert_eq!(error_code(&refused.body), "BAD_USER_INPUT", "{refused:?}");
    assert!(refused.body.get("data").is_none(), "{refused:?}");
    let nothing = post(None, &sha256(expected)).await;
    assert_eq!(
        error_code(&nothing.body),
        "PERSISTED_QUERY_NOT_FOUND",
        "a refused document is not kept under the hash it claimed: {nothing:?}"
    );

    // ...and under one that is registered: it keeps its own document.
    let registered = post(Some(expected), &sha256(expected)).await;
    assert_eq!(
        registered.body["data"]["__typename"], "Query",
        "{registered:?}"
    );
    let refused = post(Some(other), &sha256(expected)).await;
    assert_eq!(error_code(&refused.body), "BAD_USER_INPUT", "{refused:?}");
    let kept = post(None, &sha256(expected)).await;
    assert_eq!(kept.body, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn only_documents_that_validate_are_persisted() {
    let app = TestApp::spawn().await;
    let invalid = "{ me { nope } }";
    let persisted = |query: Option<&str>| {
        let mut body = json!({ "extensions": { "persistedQuery": {
            "version": 1, "sha256Hash": sha256(invalid) } } });
        if let Some(query) = query {
            body["query"] = json!(query);
        }
        let app = &app;
        async move { app.post_graphql(None, &body).await }
    };
    let body = persisted(Some(invalid)).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = persisted(None).await;
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
}
