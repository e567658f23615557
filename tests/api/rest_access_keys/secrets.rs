//! The key shown once and never again, and revoked everywhere at once.

use super::*;

#[tokio::test]
async fn accesskey_token_is_shown_on_create_only_and_never_logged() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, key) = create_ok(&app, Cred::Bearer(&admin), json!({"name": "once"})).await;
    let hash = crate::harness::sha256(&key);
    let path = format!("/v1.0/accesskeys/{id}");
    let mut answers = Vec::new();
    for (method, path, body) in [
        (Method::GET, path.as_str(), None),
        (Method::GET, "/v1.0/accesskeys", None),
        (
            Method::PUT,
            path.as_str(),
            Some(json!({"detail": "renamed"})),
        ),
        (Method::DELETE, path.as_str(), None),
        (Method::GET, path.as_str(), None),
    ] {
        let reply = call(&app, method, path, Cred::AccessKey(&key), &[], body).await;
        answers.push(reply.body.to_string());
        // The key revokes itself on DELETE; the last read needs another credential.
        if answers.len() == 4 {
            let reply = call(&app, Method::GET, path, Cred::Bearer(&admin), &[], None).await;
            assert_eq!(reply.status, 200);
            answers.push(reply.body.to_string());
        }
    }
    let graphql = app
        .gql(Some(&admin), "query($id: UUID!) { accessKey(id: $id) { id name tokenPrefix } accessKeys { nodes { id tokenPrefix } } }", json!({"id": id}))
        .await;
    answers.push(graphql.to_string());
    for answer in &answers {
        assert!(
            !answer.contains(&key) && !answer.contains(&hash),
            "{answer}"
        );
        assert!(!answer.contains("\"token\""), "{answer}");
    }
    let logs = captured_logs();
    assert!(!logs.contains(&key), "the key is in the logs");
    assert!(!logs.contains(&hash), "the key's hash is in the logs");
}

#[tokio::test]
async fn delete_accesskey_revokes_it_on_another_replica_at_once() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (customer, _, own) = customer_with_admin(&app, &admin).await;
    let (id, key) = create_ok(&app, Cred::Bearer(&own), json!({})).await;
    let probe = format!("/v1.0/customers/{customer}");
    // Warm the replica's credential cache with the key first.
    for _ in 0..2 {
        let reply = call(
            &replica,
            Method::GET,
            &probe,
            Cred::AccessKey(&key),
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/v1.0/accesskeys/{id}"),
        Cred::Bearer(&own),
        &[],
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    for (server, cred) in [
        (&replica, Cred::AccessKey(&key)),
        (&replica, Cred::Bearer(&key)),
        (&app, Cred::Token(&key)),
    ] {
        let reply = call(server, Method::GET, &probe, cred, &[], None).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (401, "UNAUTHENTICATED"),
            "{:?}",
            reply.body
        );
    }
}
