//! Secrets stay secret, and the HTTP surface behaves as GraphQL over HTTP says.

use serde_json::{Value, json};

use crate::harness::{TestApp, captured_logs, error_code};

#[tokio::test]
async fn responses_and_logs_never_carry_passwords_hashes_or_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());

    let mut bodies: Vec<Value> = Vec::new();
    bodies.push(
        app.create_customer(
            &admin,
            json!({ "username": "secretive", "password": password }),
        )
        .await,
    );
    bodies.push(app.login("secretive", &wrong).await);
    bodies.push(app.login("no-such-user", &wrong).await);
    let login = app.login("secretive", &password).await;
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    bodies.push(
        app.gql(
            Some(&token),
            "{ me { agent { id username name detail permission } customer { id } } }",
            json!({}),
        )
        .await,
    );
    bodies.push(
        app.gql(
            Some(&admin),
            "{ customers(first: 100) { nodes { id username lineSecret lineToken guestAgent { id username } } } }",
            json!({})
        )
        .await,
    );
    // A password that fails validation must not be echoed back in the error.
    bodies.push(
        app.create_customer(
            &admin,
            json!({ "username": "echo", "password": format!("{password}{}", "x".repeat(300)) }),
        )
        .await,
    );

    for body in &bodies {
        let text = body.to_string();
        assert!(!text.contains(&password), "password in response: {text}");
        assert!(
            !text.contains(&wrong),
            "attempted password in response: {text}"
        );
        assert!(!text.contains("$argon2"), "hash in response: {text}");
    }

    let logs = captured_logs();
    assert!(logs.contains("created customer"), "logs are being captured");
    assert!(!logs.contains(&password), "password in logs");
    assert!(!logs.contains(&wrong), "attempted password in logs");
    assert!(!logs.contains("$argon2"), "hash in logs");
    assert!(!logs.contains(&token), "token in logs");
    assert!(!logs.contains(&admin), "admin token in logs");
}

#[tokio::test]
async fn no_output_type_exposes_a_password_field() {
    let app = TestApp::spawn().await;
    let body = app
        .gql(
            None,
            "{ __schema { types { name kind fields { name } } } }",
            json!({}),
        )
        .await;
    let types = body["data"]["__schema"]["types"]
        .as_array()
        .expect("introspection works");
    // Mutation fields are operations (changePassword), not values returned.
    for ty in types
        .iter()
        .filter(|t| t["kind"] == "OBJECT" && t["name"] != "Mutation")
    {
        for field in ty["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap().to_lowercase();
            assert!(
                !name.contains("password") && !name.contains("hash"),
                "{}.{name}",
                ty["name"]
            );
        }
    }
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let query = app
        .http()
        .get(app.graphql_url())
        .query(&[("query", "{ me { agent { username } } }")])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let body: Value = query.json().await.unwrap();
    assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");

    let mutation = "mutation { createCustomer(input: {username: \"viaget\", password: \"password1\"}) { customer { id } } }";
    let response = app
        .http()
        .get(app.graphql_url())
        .query(&[("query", mutation)])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let db = app.db.client().await;
    let created: i64 = db
        .query_one(
            "SELECT count(*) FROM customers WHERE username = 'viaget'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0);
}

#[tokio::test]
async fn browsers_get_graphiql() {
    let app = TestApp::spawn().await;
    let response = app
        .http()
        .get(app.graphql_url())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn graphql_response_media_type_uses_status_codes_for_request_errors() {
    let app = TestApp::spawn().await;
    let send = |query: &'static str| {
        app.http()
            .post(app.graphql_url())
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
    };
    let ok = send("mutation { login(input: {username: \"x\", password: \"y\"}) { token } }")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "field errors still answer 200");
    assert_eq!(
        ok.headers()["content-type"],
        "application/graphql-response+json"
    );

    let unparsable = send("{ me {").await.unwrap();
    assert_eq!(unparsable.status(), 400);
    let body: Value = unparsable.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let invalid = send("{ noSuchField }").await.unwrap();
    assert_eq!(invalid.status(), 400);

    // Plain application/json clients get 200 and the errors in the body.
    let plain = app.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(error_code(&plain), "BAD_USER_INPUT", "{plain}");
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let app = TestApp::spawn_with(|config| config.introspection = false).await;
    let body = app
        .gql(None, "{ __schema { types { name } } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("introspection"),
        "{body}"
    );
    let nested = app
        .gql(
            None,
            "query { ...F } fragment F on Query { __type(name: \"Customer\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&nested), "BAD_USER_INPUT", "{nested}");
    let typename = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(typename["data"]["__typename"], "Query", "{typename}");
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn().await;
    let health = app
        .http()
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .http()
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readiness_fails_while_migrations_are_missing() {
    let app = TestApp::spawn().await;
    let db = app.db.client().await;
    db.execute("DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)", &[])
        .await
        .unwrap();
    let ready = app
        .http()
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}
