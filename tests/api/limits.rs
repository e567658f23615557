//! Bounds on what one request may ask: aliases, root fields, depth,
//! complexity, batch size and body size. Each refusal names its limit,
//! comes before any database work, and answers 400 to clients that accept
//! `application/graphql-response+json` (200 otherwise, as GraphQL over
//! HTTP says); the introspection query tools send stays within them.

use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, error_limit, send};

#[tokio::test]
async fn alias_floods_and_root_field_floods_are_refused_before_any_work() {
    let app = TestApp::spawn_with(|c| {
        c.max_aliases = 10;
        c.max_root_fields = 5;
    })
    .await;
    let admin = app.admin_token().await;
    let before = app.statements();

    let aliases: String = (0..11)
        .map(|i| format!("a{i}: me {{ permissions }} "))
        .collect();
    let started = Instant::now();
    let body = app
        .gql(Some(&admin), &format!("{{ {aliases} }}"), json!({}))
        .await;
    println!("alias flood refused in {:?}", started.elapsed());
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_limit(&body), "ALIASES");

    // Aliases hidden in a fragment count too.
    let fragment: String = (0..11).map(|i| format!("f{i}: username ")).collect();
    let body = app
        .gql(
            Some(&admin),
            &format!("{{ me {{ agent {{ ...A }} }} }} fragment A on Agent {{ {fragment} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_limit(&body), "ALIASES", "{body}");

    let roots = "{ me { permissions } __typename customers { totalCount } customer(id: \"00000000-0000-0000-0000-000000000000\") { id } accessKeys { totalCount } x: __typename }";
    let body = app.gql(Some(&admin), roots, json!({})).await;
    assert_eq!(error_limit(&body), "ROOT_FIELDS", "{body}");

    assert_eq!(app.statements(), before, "nothing reached the database");
    let fine = app
        .gql(
            Some(&admin),
            "{ a: me { permissions } b: me { permissions } }",
            json!({}),
        )
        .await;
    assert!(fine["errors"].is_null(), "{fine}");
}

#[tokio::test]
async fn depth_complexity_and_batch_refusals_name_their_limit() {
    let app = TestApp::spawn_with(|c| {
        c.max_query_depth = 4;
        c.max_query_complexity = 300;
        c.max_batch_size = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let before = app.statements();
    let deep = app
        .gql(
            Some(&admin),
            "{ customers { edges { node { guestAgent { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_limit(&deep), "DEPTH", "{deep}");
    let costly = app
        .gql(
            Some(&admin),
            "{ customers(first: 100) { nodes { id username name detail } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_limit(&costly), "COMPLEXITY", "{costly}");
    assert_eq!(
        app.statements(),
        before,
        "refused before any resolver touched the database"
    );
    let affordable = app
        .gql(
            Some(&admin),
            "{ customers(first: 10) { nodes { id username } } }",
            json!({}),
        )
        .await;
    assert!(affordable["errors"].is_null(), "{affordable}");

    let within = json!([{ "query": "{ __typename }" }, { "query": "{ me { permissions } }" }]);
    let answers = app.post_graphql(Some(&admin), &within).await;
    assert_eq!(answers.as_array().map(Vec::len), Some(2), "{answers}");
    assert_eq!(
        answers[1]["data"]["me"]["permissions"][0], "PROJECT_SUPER_ADMIN",
        "{answers}"
    );

    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let refused = send(app.http().post(app.graphql_url()).json(&batch)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(error_limit(&refused.body), "BATCH", "{:?}", refused.body);
}

#[tokio::test]
async fn oversized_bodies_get_a_graphql_error_whether_announced_or_streamed() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 2048).await;
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(10_000) } })
        .to_string();
    // Without a Content-Length the limit is only met while reading.
    let chunks = futures_util::stream::iter(
        big.clone()
            .into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    for (how, body) in [
        ("announced", reqwest::Body::from(big)),
        ("streamed", reqwest::Body::wrap_stream(chunks)),
    ] {
        let response = app
            .http()
            .post(app.graphql_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{how}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_limit(&body), "BODY_SIZE", "{how}: {body}");
    }
}

async fn status_and_body(app: &TestApp, accept: &str, body: Vec<u8>) -> (u16, Value) {
    let reply = send(
        app.http()
            .post(app.graphql_url())
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body),
    )
    .await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn limit_refusals_answer_400_with_graphql_response_json_and_200_with_json() {
    let (tight, closed) = tokio::join!(
        TestApp::spawn_with(|c| {
            c.max_query_depth = 2;
            c.max_query_complexity = 50;
            c.max_aliases = 2;
            c.max_nesting = 8;
            c.max_tokens = 60;
            c.max_selections = 20;
            c.max_batch_size = 2;
            c.max_body_bytes = 2048;
        }),
        TestApp::spawn_with(|c| {
            c.introspection = false;
            c.max_root_fields = 2;
        }),
    );
    let document = |query: &str| serde_json::to_vec(&json!({ "query": query })).unwrap();
    let cases: Vec<(&TestApp, &str, Vec<u8>, u16, u16)> = vec![
        (
            &tight,
            "DEPTH",
            document("{ me { agent { username } } }"),
            200,
            400,
        ),
        (
            &tight,
            "COMPLEXITY",
            document("{ customers(first: 100) { totalCount } }"),
            200,
            400,
        ),
        (
            &tight,
            "ALIASES",
            document("{ a: __typename b: __typename c: __typename }"),
            200,
            400,
        ),
        (
            &closed,
            "ROOT_FIELDS",
            document("{ __typename me { permissions } customers(first: 1) { totalCount } }"),
            200,
            400,
        ),
        (
            &closed,
            "INTROSPECTION",
            document("{ __schema { queryType { name } } }"),
            200,
            400,
        ),
        (
            &tight,
            "INTROSPECTION_DEPTH",
            document(
                "{ __schema { types { fields { args { type { possibleTypes { name } } } } } } }",
            ),
            200,
            400,
        ),
        (
            &tight,
            "NESTING",
            document("{ __typename(x: [[[[[[[[1]]]]]]]]) }"),
            200,
            400,
        ),
        (
            &tight,
            "TOKENS",
            document(&format!("{{ {} }}", "__typename ".repeat(70))),
            200,
            400,
        ),
        (
            &tight,
            "SELECTIONS",
            document(
                "{ ...A ...A } fragment A on Query { ...B ...B } fragment B on Query { ...C ...C } \
                 fragment C on Query { __typename __typename __typename }",
            ),
            200,
            400,
        ),
        (
            &tight,
            "BATCH",
            serde_json::to_vec(&json!([
                { "query": "{ __typename }" },
                { "query": "{ __typename }" },
                { "query": "{ __typename }" }
            ]))
            .unwrap(),
            400,
            400,
        ),
        (
            &tight,
            "BODY_SIZE",
            document(&format!("{{ __typename }} # {}", "x".repeat(4096))),
            413,
            413,
        ),
    ];
    let statements = (tight.statements(), closed.statements());
    let mut wrong = Vec::new();
    for (app, limit, body, with_json, with_graphql_response) in cases {
        for (accept, expected) in [
            ("application/json", with_json),
            ("application/graphql-response+json", with_graphql_response),
        ] {
            let (status, answer) = status_and_body(app, accept, body.clone()).await;
            let refused = answer["errors"][0]["extensions"]["limit"].as_str();
            let code = answer["errors"][0]["extensions"]["code"].as_str();
            if refused != Some(limit) || code != Some("BAD_USER_INPUT") || status != expected {
                wrong.push(format!(
                    "{limit} with {accept}: expected {expected}, got {status} {answer}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        (tight.statements(), closed.statements()),
        statements,
        "refusals do no database work"
    );
}

/// The introspection query graphql-js (and so GraphiQL, codegen and
/// Postman) sends: its `TypeRef` fragment nests `ofType` nine levels deep.
fn standard_introspection_query() -> String {
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} \
         subscriptionType {{ name }} types {{ ...FullType }} directives {{ name description \
         locations args {{ ...InputValue }} }} }} }} \
         fragment FullType on __Type {{ kind name description \
         fields(includeDeprecated: true) {{ name description args {{ ...InputValue }} \
         type {{ ...TypeRef }} isDeprecated deprecationReason }} \
         inputFields {{ ...InputValue }} interfaces {{ ...TypeRef }} \
         enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }} \
         possibleTypes {{ ...TypeRef }} }} \
         fragment InputValue on __InputValue {{ name description type {{ ...TypeRef }} defaultValue }} \
         fragment TypeRef on __Type {{ {type_ref} }}"
    )
}

#[tokio::test]
async fn the_standard_introspection_query_passes_the_default_limits() {
    let app = TestApp::spawn().await;
    let body = app
        .gql(None, &standard_introspection_query(), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Customer"));
}
