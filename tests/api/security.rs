//! Secrets stay secret, and the HTTP surface behaves as GraphQL over HTTP says.

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, ME, TestApp, TestDb, captured_logs, error_code, send,
    session_id, unique,
};

/// Every secret a client hands the server (passwords, wrong and over-long
/// ones too, login tokens, access keys) and every password hash, through
/// GraphQL and REST alike: only the response that issues a token or a key
/// carries it, and none reaches the logs.
#[tokio::test]
async fn responses_and_logs_never_carry_keys_tokens_passwords_or_hashes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (first, second, third, wrong) =
        (unique("pw1"), unique("pw2"), unique("pw3"), unique("wrong"));
    let (rest_password, bogus) = (unique("pw-rest"), unique("bogus-token"));
    let too_long = |password: &str| format!("{password}{}", "x".repeat(300));

    let mut bodies: Vec<Value> = Vec::new();
    let created = app
        .create_customer(
            &admin,
            json!({ "username": "secretive", "password": first }),
        )
        .await;
    let agent_id = created["data"]["createCustomer"]["customer"]["guestAgent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCustomer failed: {created}"))
        .to_owned();
    bodies.push(created);
    bodies.push(
        app.create_customer(
            &admin,
            json!({ "username": "echo", "password": too_long(&first) }),
        )
        .await,
    );
    bodies.push(app.login("secretive", &wrong).await);
    bodies.push(app.login("no-such-user", &wrong).await);
    let token = app.token("secretive", &first).await;
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
            json!({}),
        )
        .await,
    );

    let issued = app
        .create_access_key(&token, json!({ "name": "secret" }))
        .await;
    let (key, key_id) = match (
        issued["data"]["createAccessKey"]["token"].as_str(),
        issued["data"]["createAccessKey"]["accessKey"]["id"].as_str(),
    ) {
        (Some(key), Some(id)) => (key.to_owned(), id.to_owned()),
        _ => panic!("createAccessKey failed: {issued}"),
    };
    let text = issued.to_string();
    for secret in [&token, &admin, &first] {
        assert!(
            !text.contains(secret.as_str()),
            "another secret in createAccessKey: {text}"
        );
    }
    assert!(!text.contains("$argon2"));

    // The REST layer's doors, with credentials in the query string too.
    let rest_token = app.rest_login(ADMIN_USERNAME, ADMIN_PASSWORD).await.body["token"]
        .as_str()
        .expect("a REST login token")
        .to_owned();
    let customers = format!("{}/v1.0/customers", app.address);
    let rest_create = |body: Value| {
        send(
            app.http()
                .post(&customers)
                .bearer_auth(&rest_token)
                .json(&body),
        )
    };
    let list_with = |param: &'static str, credential: &str| {
        send(app.http().get(&customers).query(&[(param, credential)]))
    };
    for (reply, status, error) in [
        (
            rest_create(json!({ "username": "secretive-rest", "password": rest_password })).await,
            200,
            None,
        ),
        (
            rest_create(json!({ "username": "secretive-rest-2", "password": 42 })).await,
            400,
            Some(("BAD_USER_INPUT", json!("password"))),
        ),
        (
            app.rest_login("secretive-rest", &format!("{rest_password}-wrong"))
                .await,
            401,
            Some(("UNAUTHENTICATED", Value::Null)),
        ),
        (
            list_with("accesskey", &key).await,
            403,
            Some(("FORBIDDEN", Value::Null)),
        ),
        (
            list_with("token", &bogus).await,
            401,
            Some(("UNAUTHENTICATED", Value::Null)),
        ),
    ] {
        assert_eq!(reply.status, status, "{:?}", reply.body);
        if let Some((code, field)) = error {
            assert_eq!(reply.body["error"]["code"], code, "{:?}", reply.body);
            assert_eq!(reply.body["error"]["field"], field, "{:?}", reply.body);
        }
        bodies.push(reply.body);
    }

    bodies.push(app.gql(Some(&key), ME, json!({})).await);
    let list = "{ accessKeys { nodes { id name detail tokenPrefix tmExpire tmLastUsed } } }";
    bodies.push(app.gql(Some(&key), list, json!({})).await);
    bodies.push(app.gql(Some(&token), list, json!({})).await);
    bodies.push(app.change_password(&token, &wrong, &second).await);
    bodies.push(
        app.change_password(&token, &first, &too_long(&second))
            .await,
    );
    bodies.push(app.change_password(&token, &first, &second).await);
    bodies.push(
        app.set_agent_password(&admin, &agent_id, &too_long(&third))
            .await,
    );
    bodies.push(app.set_agent_password(&admin, &agent_id, &third).await);
    let later = app.token("secretive", &third).await;
    bodies.push(app.gql(Some(&later), ME, json!({})).await);
    bodies.push(app.logout(&later).await);
    bodies.push(app.gql(Some(&later), ME, json!({})).await);
    bodies.push(app.delete_access_key(&admin, &key_id).await);
    bodies.push(app.gql(Some(&key), ME, json!({})).await);

    // An access key's first ten characters are its listed prefix.
    let secrets = [
        ("access key", key[10..].to_owned()),
        ("login token", token.clone()),
        ("later login token", later.clone()),
        ("admin token", admin.clone()),
        ("REST login token", rest_token.clone()),
        ("made-up token", bogus.clone()),
        ("first password", first.clone()),
        ("second password", second.clone()),
        ("third password", third.clone()),
        ("wrong password", wrong.clone()),
        ("REST password", rest_password.clone()),
        ("password hash", "$argon2".to_owned()),
    ];
    for body in &bodies {
        let text = body.to_string();
        assert!(
            !text.contains("argon2"),
            "hashing named in response: {text}"
        );
        for (what, secret) in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} in response: {text}"
            );
        }
    }
    let logs = captured_logs();
    assert!(logs.contains("created customer"), "logs are being captured");
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "{what} in logs");
    }
}

#[tokio::test]
async fn line_secrets_are_read_by_the_customers_admins_and_managers_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let secret = format!("line-secret-{}", uuid::Uuid::new_v4().simple());
    let line_token = format!("line-token-{}", uuid::Uuid::new_v4().simple());
    let body = app
        .create_customer(
            &admin,
            json!({
                "username": "linecust", "password": "line-password-1",
                "lineSecret": secret, "lineToken": line_token,
            }),
        )
        .await;
    let customer_id = body["data"]["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCustomer failed: {body}"))
        .to_owned();
    app.seed_agent("linecust", "linecust-agent", 16).await;
    app.seed_agent("linecust", "linecust-manager", 64).await;
    let agent = app.token("linecust-agent", "line-password-1").await;

    let body = app
        .gql(
            Some(&agent),
            "{ me { customer { lineSecret lineToken } } }",
            json!({}),
        )
        .await;
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors, got {body}"));
    for error in errors {
        assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{body}");
    }
    let mut refused: Vec<String> = errors.iter().map(|e| e["path"].to_string()).collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            r#"["me","customer","lineSecret"]"#,
            r#"["me","customer","lineToken"]"#
        ],
        "{body}"
    );
    let text = body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&line_token),
        "{text}"
    );

    let body = app
        .gql(Some(&agent), "{ me { customer { id name } } }", json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["me"]["customer"]["id"], customer_id, "{body}");

    for reader in ["linecust", "linecust-manager"] {
        let token = app.token(reader, "line-password-1").await;
        let body = app
            .gql(
                Some(&token),
                "{ me { customer { lineSecret lineToken } } }",
                json!({}),
            )
            .await;
        assert!(body["errors"].is_null(), "{reader}: {body}");
        assert_eq!(
            body["data"]["me"]["customer"]["lineSecret"],
            secret.as_str()
        );
        assert_eq!(
            body["data"]["me"]["customer"]["lineToken"],
            line_token.as_str()
        );
    }
}

#[tokio::test]
async fn short_signing_keys_are_refused_and_logs_never_name_a_session() {
    let db = TestDb::create().await;
    for (key, shown) in [
        ("short-key", vec!["short-key"]),
        (
            "a-signing-key-that-is-long-enough-0123456789,short-key",
            vec!["short-key", "a-signing-key-that-is-long-enough-0123456789"],
        ),
    ] {
        let mut config = customer_api::Config::with_database_url(db.url());
        config.admin_username = ADMIN_USERNAME.into();
        config.admin_password = Some(customer_api::config::Secret::new(ADMIN_PASSWORD));
        config.token_secret = Some(customer_api::config::Secret::new(key));
        let message = match customer_api::startup::start(config).await {
            Ok(_) => panic!("started with the signing key {key:?}"),
            Err(error) => error.to_string(),
        };
        assert!(message.contains("32 bytes"), "{message}");
        for secret in shown {
            assert!(!message.contains(secret), "{message}");
        }
    }

    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let session = session_id(&token);
    let body = app.logout(&token).await;
    assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
    let tag = customer_api::auth::token::session_tag(uuid::Uuid::parse_str(&session).unwrap());
    assert_eq!(tag.len(), 12);
    assert!(tag.chars().all(|c| c.is_ascii_hexdigit()), "{tag}");

    let logs = captured_logs();
    let simple = session.replace('-', "");
    assert!(!logs.contains(&session), "the session id is logged");
    assert!(!logs.contains(&simple), "the session id is logged");
    assert!(!logs.contains(&token), "the token is logged");
    for part in token.split('.').skip(1) {
        assert!(!logs.contains(part), "part of the token is logged");
    }
    let tagged: Vec<&str> = logs.lines().filter(|l| l.contains(&tag)).collect();
    assert!(
        tagged.iter().any(|l| l.contains("login succeeded"))
            && tagged.iter().any(|l| l.contains("logged out")),
        "login and logout are logged with the session's tag: {tagged:#?}"
    );
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
    let get = |query: &str| {
        app.http()
            .get(app.graphql_url())
            .query(&[("query", query)])
            .bearer_auth(&admin)
            .send()
    };
    let query = get("{ me { agent { username } } }").await.unwrap();
    assert_eq!(query.status(), 200);
    let body: Value = query.json().await.unwrap();
    assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");

    let response = get("mutation { createCustomer(input: {username: \"viaget\", password: \"password1\"}) { customer { id } } }")
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let created = app
        .count(
            "SELECT count(*) FROM customers WHERE username = 'viaget'",
            &[],
        )
        .await;
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
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(app.get(probe).await.status(), 200, "{probe}");
    }
}

#[tokio::test]
async fn readiness_fails_while_migrations_are_missing() {
    let app = TestApp::spawn().await;
    let db = app.db.client().await;
    db.execute("DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)", &[])
        .await
        .unwrap();
    assert_eq!(app.get("/readyz").await.status(), 503);
}
