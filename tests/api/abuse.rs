//! Small documents that used to crash or freeze the server, sent over real
//! HTTP: deep nesting (a stack overflow aborted the process), fragment
//! spreads that expand without bound (a never-ending walk), error floods,
//! and parse errors that quoted passwords. Each is refused with
//! `BAD_USER_INPUT` and `extensions.limit`, and the server keeps answering
//! other clients meanwhile.
//!
//! The time bounds below are liveness checks (before the fix these requests
//! never finished, or killed the process), not performance figures: those
//! are in `bench/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{TestApp, captured_logs, error_code, error_limit, sha256};

/// Long enough for a debug build on a loaded 2-core machine; a request that
/// expands without bound never gets there.
const LIVENESS: Duration = Duration::from_secs(10);

/// Sends `request`; fails the test unless the server answers while alive.
async fn alive(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = tokio::time::timeout(LIVENESS, request.send())
        .await
        .expect("answered while alive")
        .expect("the server is still there");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    alive(app.http().post(app.graphql_url()).json(&body)).await
}

async fn get(app: &TestApp, query: &str) -> (u16, Value) {
    alive(app.http().get(app.graphql_url()).query(&[("query", query)])).await
}

/// The server answers a light request (proves it did not abort or stall).
async fn still_answers(app: &TestApp) {
    let (status, body) = post(app, json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

#[tokio::test]
async fn deep_nesting_anywhere_in_a_document_is_refused_before_parsing() {
    let app = TestApp::spawn().await;
    let list = nested("[", "1", "]", 2_000);
    let object = nested("{a:", "1", "}", 2_000);
    let list_type = nested("[", "Int", "]", 2_000);
    let documents = [
        format!("{{__typename(x:{list})}}"),
        format!("{{__typename(x:{object})}}"),
        format!("query($v: Int = {list}) {{ __typename }}"),
        format!("query($v: {list_type}) {{ __typename }}"),
        format!("{{ __typename @include(if: {list}) }}"),
        format!("query @skip(if: {object}) {{ __typename }}"),
        nested("{ a ", "b", " }", 2_000),
    ];
    for document in &documents {
        let started = Instant::now();
        let (status, body) = get(&app, document).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_limit(&body), "NESTING", "{body}");
        println!(
            "{} bytes refused over GET in {:?}",
            document.len(),
            started.elapsed()
        );

        let (_, body) = post(&app, json!({ "query": document })).await;
        assert_eq!(error_limit(&body), "NESTING", "{body}");
    }

    // In a batch, and when registering a persisted query.
    let (_, body) = post(
        &app,
        json!([{ "query": "{ __typename }" }, { "query": documents[0] }]),
    )
    .await;
    assert_eq!(body[0]["data"]["__typename"], "Query", "{body}");
    assert_eq!(error_limit(&body[1]), "NESTING", "{body}");
    let (_, body) = post(
        &app,
        json!({ "query": documents[0], "extensions": { "persistedQuery": {
            "version": 1, "sha256Hash": sha256(&documents[0]) } } }),
    )
    .await;
    assert_eq!(error_limit(&body), "NESTING", "{body}");
    still_answers(&app).await;
}

#[tokio::test]
async fn brackets_inside_strings_block_strings_and_comments_do_not_count() {
    let app = TestApp::spawn().await;
    let brackets = "[".repeat(5_000);
    let documents = [
        format!("{{ __typename(x: \"{brackets}\") }}"),
        format!("{{ __typename(x: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") }}"),
        format!("{{ __typename # {brackets}\n }}"),
    ];
    for document in documents {
        let (_, body) = post(&app, json!({ "query": document })).await;
        // async-graphql ignores arguments given to `__typename`.
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
    }
    // Nesting within the bound still parses and runs.
    let (_, body) = post(
        &app,
        json!({ "query": format!("query($v: Boolean = true) {{ a: __typename(x: {}) __schema {{ queryType @include(if: $v) {{ name }} }} }} # {}", nested("[", "1", "]", 20), nested("[", "1", "]", 200)) }),
    )
    .await;
    assert_eq!(body["data"]["a"], "Query", "{body}");
}

/// The two documents of the report, and generated ones up to the body limit.
fn expanding_documents() -> Vec<(&'static str, String)> {
    let mut doubling = String::from("query { ...F0 }");
    for i in 0..30 {
        doubling.push_str(&format!(
            " fragment F{i} on Query {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    doubling.push_str(" fragment F30 on Query { __typename }");

    // As many fragments as fit in 250 KB, each spreading the next five times.
    let mut wide = String::from("query { ...G0 }");
    let mut i = 0;
    while wide.len() < 250_000 {
        wide.push_str(&format!(
            " fragment G{i} on Query {{ ...G{n} ...G{n} ...G{n} ...G{n} ...G{n} }}",
            n = i + 1
        ));
        i += 1;
    }
    wide.push_str(&format!(" fragment G{i} on Query {{ __typename }}"));

    // A cycle hidden at the end of a long chain.
    let mut chain = String::from("query { ...H0 }");
    for i in 0..5_000 {
        chain.push_str(&format!(" fragment H{i} on Query {{ ...H{} }}", i + 1));
    }
    chain.push_str(" fragment H5000 on Query { ...H0 }");

    vec![
        (
            "cycle",
            "query { ...A } fragment A on Query { ...A ...A ...A }".into(),
        ),
        ("doubling", doubling),
        ("wide", wide),
        ("chain-cycle", chain),
    ]
}

#[tokio::test]
async fn fragment_spreads_that_expand_without_bound_are_refused_while_others_are_served() {
    // Tokens are allowed up to the body limit here, so that the expansion
    // bound itself is what meets the generated documents.
    let app = TestApp::spawn_with(|c| c.max_tokens = 1_000_000).await;
    let admin = app.admin_token().await;
    for (name, document) in expanding_documents() {
        // Two at once, as in the report, and a light query beside them.
        let started = Instant::now();
        let (a, b, light) = tokio::join!(
            post(&app, json!({ "query": document })),
            post(&app, json!({ "query": document })),
            async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let started = Instant::now();
                let body = app
                    .gql(Some(&admin), "{ me { permissions } }", json!({}))
                    .await;
                (body, started.elapsed())
            }
        );
        println!(
            "{name} ({} bytes): refused twice in {:?}; a concurrent `me` took {:?}",
            document.len(),
            started.elapsed(),
            light.1
        );
        for (_, body) in [a, b] {
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            if name.contains("cycle") {
                assert!(message.contains("cycles"), "{name}: {body}");
            } else {
                assert_eq!(error_limit(&body), "SELECTIONS", "{name}: {body}");
            }
        }
        assert_eq!(
            light.0["data"]["me"]["permissions"][0], "PROJECT_SUPER_ADMIN",
            "{name}: {}",
            light.0
        );
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn fragments_within_the_bounds_still_work() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "fragmented", "a-long-password-1")
        .await;
    let body = app
        .gql(
            Some(&admin),
            "query Page { customers(first: 5) { ...Conn } } \
             fragment Conn on CustomerConnection { nodes { ...C } pageInfo { hasNextPage } } \
             fragment C on Customer { id ...Names guestAgent { ... on Agent { username } } } \
             fragment Names on Customer { username name }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["customers"]["nodes"][0]["guestAgent"]["username"], "fragmented",
        "{body}"
    );
}

#[tokio::test]
async fn introspection_nesting_is_bounded() {
    let app = TestApp::spawn().await;
    let nest = |levels: usize, wrap: fn(String) -> String| {
        (0..levels).fold(String::from("name"), |inner, _| wrap(inner))
    };
    for document in [
        format!(
            "{{ __type(name: \"Customer\") {{ {} }} }}",
            nest(28, |inner| format!("ofType {{ {inner} }}"))
        ),
        format!(
            "{{ __schema {{ types {{ {} }} }} }}",
            nest(6, |inner| format!("fields {{ type {{ {inner} }} }}"))
        ),
    ] {
        let (_, body) = post(&app, json!({ "query": document })).await;
        assert_eq!(error_limit(&body), "INTROSPECTION_DEPTH", "{body}");
    }

    // What tools send keeps working: a type's own fields, with their types.
    let (_, body) = post(
        &app,
        json!({ "query": "{ __type(name: \"Customer\") { fields { name type { kind ofType { name } } } } }" }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn token_floods_are_refused_before_validation_and_errors_are_capped() {
    let app = TestApp::spawn().await;
    // The reported flood: 260 KB of duplicate arguments, one error each.
    let flood = format!("{{me({})}}", "a:1 ".repeat(65_000));
    let (status, body) = post(&app, json!({ "query": flood })).await;
    assert_eq!(status, 200);
    assert_eq!(error_limit(&body), "TOKENS", "{body}");

    // Within the token bound, the errors of one document are capped.
    let within = format!("{{me({})}}", "a:1 ".repeat(2_000));
    let response = app
        .http()
        .post(app.graphql_url())
        .json(&json!({ "query": within }))
        .send()
        .await
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let errors = body["errors"].as_array().unwrap();
    println!(
        "{} duplicate arguments: {} errors, {} bytes",
        2_000,
        errors.len(),
        bytes.len()
    );
    assert_eq!(errors.len(), 21, "{body}");
    assert!(
        errors[20]["message"]
            .as_str()
            .unwrap()
            .contains("more errors were left out"),
        "{body}"
    );
    assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "BAD_USER_INPUT")
    );
}

#[tokio::test]
async fn parse_errors_give_position_and_reason_without_quoting_the_document() {
    let app = TestApp::spawn().await;
    let document = "mutation{login(input:{username:\"admin\",password:\"hunter2-typo\"}){token}";
    for (_, body) in [
        post(&app, json!({ "query": document })).await,
        get(&app, document).await,
    ] {
        let text = body.to_string();
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(!text.contains("hunter2"), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("syntax error")
        );
        assert!(
            body["errors"][0]["locations"][0]["column"]
                .as_u64()
                .is_some(),
            "{body}"
        );
    }
    let logs = captured_logs();
    assert!(
        !logs.contains("hunter2-typo"),
        "the logs quote the document"
    );
}

#[tokio::test]
async fn documents_refused_before_execution_carry_no_data_entry() {
    let app = TestApp::spawn().await;
    for accept in ["application/json", "application/graphql-response+json"] {
        for document in [
            "{ nope }",
            "{ me ",
            "query { ...A } fragment A on Query { ...A }",
        ] {
            let response = app
                .http()
                .post(app.graphql_url())
                .header("accept", accept)
                .json(&json!({ "query": document }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert!(body.get("data").is_none(), "{accept} {document}: {body}");
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            let expected = if accept == "application/json" {
                200
            } else {
                400
            };
            assert_eq!(status, expected, "{accept} {document}");
        }
    }
    // Execution errors keep their data entry (null here, as `me` is non-null).
    let (_, body) = post(&app, json!({ "query": "{ me { permissions } }" })).await;
    assert!(body.get("data").is_some(), "{body}");
}

#[tokio::test]
async fn operation_log_lines_name_the_client_operation_safely() {
    let app = TestApp::spawn().await;
    let (_, body) = post(
        &app,
        json!({ "query": "query ListThings { __typename } query Other { __typename }", "operationName": "ListThings" }),
    )
    .await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let hostile = "Evil\nFAKE LOG LINE operation=\"mutation login\"";
    let _ = post(
        &app,
        json!({ "query": "query Q { __typename }", "operationName": hostile }),
    )
    .await;
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains("graphql operation")
            && l.contains("operation_name=\"ListThings\"")
            && l.contains("operation=\"query __typename\"")),
        "no operation line names ListThings"
    );
    assert!(
        !logs.contains("FAKE LOG LINE"),
        "the client's name reached the log as is"
    );
    assert!(logs.contains("operation_name=\"invalid\""));
}
