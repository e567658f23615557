//! Claims of README.md that no other test checked, each proved end to end:
//! deadlocks and serialization failures (real ones, forced by test-side
//! PostgreSQL sessions) are retried, as often as it says (a failure injected
//! by a trigger, to count the attempts); the credential cache is
//! bypassed while its LISTEN connection is down; behind a trusted proxy the
//! last `X-Forwarded-For` entry is the client; every log line of a request
//! carries its request id; refusals by the login limiter are counted as
//! `limited`; every limit refusal answers 400 under
//! `application/graphql-response+json` and 200 under `application/json`;
//! persisted queries work over GET and a hash must be its document's;
//! environment variables win over `.env`; every migration's `down.sql`
//! undoes exactly what its `up.sql` did; REST bodies ignore unknown fields
//! and read `null` as absent.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, TestDb, captured_logs, error_code, eventually, metric,
};

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("the body of a {status} is not JSON: {text:?}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// A GraphQL POST carrying the request id `request_id`.
fn traced(app: &TestApp, token: &str, request_id: &str, body: Value) -> reqwest::RequestBuilder {
    app.http()
        .post(app.graphql_url())
        .bearer_auth(token)
        .header("x-request-id", request_id)
        .json(&body)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The captured log lines written inside the request with this id.
fn log_lines_of(request_id: &str) -> Vec<String> {
    let marker = format!("request_id={request_id} ");
    captured_logs()
        .lines()
        .filter(|line| line.contains(&marker))
        .map(str::to_owned)
        .collect()
}

/// A connection to the server's `postgres` database, for statements that
/// may not run inside the database they change.
async fn maintenance_client(db: &TestDb) -> tokio_postgres::Client {
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_path("postgres");
    let (client, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn retry_after(body: &Value) -> Option<u64> {
    body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64()
}

const DELETE_CUSTOMER: &str =
    "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id tmDelete } } }";

// ---------------------------------------------------------------------------
// 1. Deadlocks and serialization failures are retried.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_deadlocked_delete_is_retried_and_succeeds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("deadlocked");
    let customer = app
        .create_customer_ok(&admin, &username, "a-long-password")
        .await;
    // A live session, so that the delete has a session row to revoke.
    app.token(&username, "a-long-password").await;

    // `holder` takes the guest agent's row now and asks for the customer's
    // row later. Its deadlock check waits a minute, so the server's
    // transaction, which closes the cycle and checks after a second, is the
    // one PostgreSQL aborts.
    let holder = app.db.client().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '60s'; SET LOCAL statement_timeout = '60s';
             UPDATE agents SET name = name WHERE customer_id = '{customer}'"
        ))
        .await
        .unwrap();
    // `gate` holds the session row, stopping the server's transaction after
    // it has locked the customer and before it reaches the agents.
    let gate = app.db.client().await;
    gate.batch_execute(&format!(
        "BEGIN; UPDATE sessions SET tm_expire = tm_expire
          WHERE agent_id IN (SELECT id FROM agents WHERE customer_id = '{customer}')"
    ))
    .await
    .unwrap();

    let request_id = unique("claims-deadlock");
    let delete = tokio::spawn(send(traced(
        &app,
        &admin,
        &request_id,
        json!({ "query": DELETE_CUSTOMER, "variables": { "id": customer } }),
    )));
    app.until_statements_wait_on_locks(1).await;
    let customer_row = customer.clone();
    let queued = tokio::spawn(async move {
        holder
            .batch_execute(&format!(
                "SELECT 1 FROM customers WHERE id = '{customer_row}' FOR UPDATE"
            ))
            .await
            .map(|()| holder)
    });
    app.until_statements_wait_on_locks(2).await;
    gate.batch_execute("ROLLBACK").await.unwrap();
    let holder = queued
        .await
        .unwrap()
        .expect("the holder gets the customer's row once the server's transaction is aborted");
    holder.batch_execute("ROLLBACK").await.unwrap();

    let reply = delete.await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        reply.body["data"]["deleteCustomer"]["customer"]["tmDelete"].is_string(),
        "the delete succeeded after the deadlock: {}",
        reply.body
    );
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT c.tm_delete IS NOT NULL, bool_and(a.tm_delete IS NOT NULL)
               FROM customers c JOIN agents a ON a.customer_id = c.id
              WHERE c.id = $1::text::uuid GROUP BY c.id",
            &[&customer],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
    let lines = log_lines_of(&request_id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retrying a transaction") && l.contains("deadlock detected")),
        "the retry after the deadlock is logged: {lines:#?}"
    );
}

#[tokio::test]
async fn a_serialization_failure_is_retried_and_the_delete_succeeds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app
        .create_customer_ok(&admin, &unique("serialized"), "a-long-password")
        .await;
    let db = app.db.client().await;
    // Under REPEATABLE READ, a transaction that finds its row changed by
    // one committed after its snapshot fails with 40001. The setting
    // reaches only new connections: those of a second server process.
    db.batch_execute(&format!(
        "ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'",
        app.db.name
    ))
    .await
    .unwrap();
    let replica = app.replica().await;

    db.batch_execute(&format!(
        "BEGIN; UPDATE customers SET name = 'renamed meanwhile' WHERE id = '{customer}'"
    ))
    .await
    .unwrap();
    let request_id = unique("claims-serialization");
    let delete = tokio::spawn(send(traced(
        &replica,
        &admin,
        &request_id,
        json!({ "query": DELETE_CUSTOMER, "variables": { "id": customer } }),
    )));
    app.until_statements_wait_on_locks(1).await;
    db.batch_execute("COMMIT").await.unwrap();

    let reply = delete.await.unwrap();
    assert!(
        reply.body["data"]["deleteCustomer"]["customer"]["tmDelete"].is_string(),
        "the delete succeeded after the serialization failure: {}",
        reply.body
    );
    let row = db
        .query_one(
            "SELECT name, tm_delete IS NOT NULL FROM customers WHERE id = $1::text::uuid",
            &[&customer],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, bool>(1)),
        ("renamed meanwhile".to_owned(), true),
        "the retry ran on a fresh snapshot, over the concurrent change"
    );
    let lines = log_lines_of(&request_id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retrying a transaction")
                && l.contains("could not serialize access")),
        "the retry after the serialization failure is logged: {lines:#?}"
    );
}

/// README: "Deadlocks and serialization failures are retried, up to three
/// attempts in all": a transaction that never stops failing runs once and
/// is retried twice, then the client gets a coded `SERVICE_UNAVAILABLE`, and
/// nothing of it is stored.
#[tokio::test]
async fn a_transaction_that_keeps_failing_is_tried_three_times_in_all_then_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("unlucky");
    // The failure comes from the second insert (the guest agent), after the
    // customer row: each attempt must be undone as a whole. A sequence
    // counts the attempts, since it is not rolled back with them.
    app.db
        .client()
        .await
        .batch_execute(&format!(
            "CREATE SEQUENCE claims_attempts;
             CREATE FUNCTION claims_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.username = '{username}' THEN
                     PERFORM nextval('claims_attempts');
                     RAISE EXCEPTION 'could not serialize access due to concurrent update'
                         USING ERRCODE = 'serialization_failure';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER claims_conflict BEFORE INSERT ON agents
                 FOR EACH ROW EXECUTE FUNCTION claims_conflict();"
        ))
        .await
        .unwrap();

    let body = app
        .create_customer(
            &admin,
            json!({ "username": username, "password": "a-long-password" }),
        )
        .await;
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    let db = app.db.client().await;
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM customers WHERE username = $1",
            &[&username],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "no attempt left anything behind");
    let attempts: i64 = db
        .query_one("SELECT last_value FROM claims_attempts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 3, "one attempt and two retries");
}

// ---------------------------------------------------------------------------
// 2. The credential cache is bypassed while its listener is disconnected.
// ---------------------------------------------------------------------------

/// `{ me }` with `token`: the body and the SQL statements it cost.
async fn me_and_its_statements(app: &TestApp, token: &str) -> (Value, u64) {
    let before = app.statements();
    let body = app
        .gql(Some(token), "{ me { agent { username } } }", json!({}))
        .await;
    (body, app.statements() - before)
}

#[tokio::test]
async fn while_the_credential_listener_is_down_every_request_checks_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    me_and_its_statements(&app, &admin).await;
    let (body, warm) = me_and_its_statements(&app, &admin).await;
    assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");

    let db = app.db.client().await;
    // New connections are refused from here on, so the listener cannot
    // reconnect, while the connections already in the pool keep serving.
    maintenance_client(&app.db)
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            app.db.name
        ))
        .await
        .unwrap();
    let terminated = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = $1",
            &[&customer_api::auth::cache::LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap()
        .len();
    assert_eq!(terminated, 1, "one listener connection");
    eventually(
        "the server notices that its listener is gone",
        Duration::from_secs(10),
        || async { (!app.state.credentials.is_listening()).then_some(()) },
    )
    .await;

    for _ in 0..2 {
        let (body, cost) = me_and_its_statements(&app, &admin).await;
        assert_eq!(body["data"]["me"]["agent"]["username"], "admin", "{body}");
        assert_eq!(
            cost,
            warm + 1,
            "every request looks the credential up (warm: {warm} statements)"
        );
    }
    // Revoked behind the server's back: no listener hears of it.
    db.execute(
        "UPDATE sessions SET tm_revoke = now() WHERE tm_revoke IS NULL",
        &[],
    )
    .await
    .unwrap();
    let (body, _) = me_and_its_statements(&app, &admin).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

// ---------------------------------------------------------------------------
// 3. Behind a trusted proxy, the client is the last X-Forwarded-For entry.
// ---------------------------------------------------------------------------

const LOGIN: &str =
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }";

#[tokio::test]
async fn the_client_address_is_the_last_forwarded_for_entry() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 3;
        c.login_failure_window_seconds = 60;
        c.trust_forwarded_for = true;
    })
    .await;
    let client = "203.0.113.7";
    // Whatever the client itself wrote comes first; the proxy appends the
    // address it saw.
    for n in 0..3 {
        let body = app
            .login_from(
                &format!("198.51.100.{n}, {client}"),
                &format!("sprayed-{n}"),
                "wrong-password",
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        assert_eq!(retry_after(&body), None, "not yet limited: {body}");
    }
    let limited = app
        .login_from(
            &format!("198.51.100.99, {client}"),
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
        )
        .await;
    assert!(
        retry_after(&limited).is_some(),
        "a new first entry does not escape the limit: {limited}"
    );
    let forged = app
        .login_from(
            &format!("{client}, 198.51.100.50"),
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
        )
        .await;
    assert!(
        forged["data"]["login"]["token"].is_string(),
        "the limited address as a first entry is not the client's: {forged}"
    );

    // Several header lines are one list, in order.
    let login = |first: &str, last: &str| {
        send(
            app.http()
                .post(app.graphql_url())
                .header("x-forwarded-for", first)
                .header("x-forwarded-for", last)
                .json(&json!({ "query": LOGIN, "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD } })),
        )
    };
    let last_line_limited = login("198.51.100.60", client).await;
    assert!(
        retry_after(&last_line_limited.body).is_some(),
        "{:?}",
        last_line_limited
    );
    let first_line_limited = login(client, "198.51.100.61").await;
    assert!(
        first_line_limited.body["data"]["login"]["token"].is_string(),
        "{first_line_limited:?}"
    );

    // REST's login reads the same entry.
    let rest = send(
        app.http()
            .post(format!("{}/auth/login", app.address))
            .header("x-forwarded-for", format!("198.51.100.62, {client}"))
            .json(&json!({ "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(rest.status, 401, "{rest:?}");
    assert!(rest.headers.contains_key("retry-after"), "{rest:?}");
}

// ---------------------------------------------------------------------------
// 4. Every log line of a request carries its request id.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, &unique("listed"), "a-long-password")
        .await;
    let username = unique("logged");
    let operations = [
        (
            "createCustomer",
            json!({ "query": "mutation($u: String!) { createCustomer(input: {username: $u, password: \"a-long-password\"}) { customer { id } } }", "variables": { "u": username } }),
        ),
        (
            "login",
            json!({ "query": LOGIN, "variables": { "u": username, "p": "a-long-password" } }),
        ),
        (
            "a page of customers with their guest agents",
            json!({ "query": "{ customers(first: 5) { totalCount edges { node { username guestAgent { username } } } } }" }),
        ),
        (
            "a failed login",
            json!({ "query": LOGIN, "variables": { "u": username, "p": "wrong-password" } }),
        ),
    ];
    // Each statement is logged once (`customer_api::sql` at TRACE, which the
    // test subscriber enables) and counted once: a request's statements and
    // its SQL lines bearing its id must agree.
    let mut missing = Vec::new();
    for (what, body) in operations {
        let request_id = unique("claims-logs");
        let before = app.statements();
        let reply = send(traced(&app, &admin, &request_id, body)).await;
        assert_eq!(reply.status, 200, "{what}: {:?}", reply.body);
        let statements = app.statements() - before;
        let lines = log_lines_of(&request_id);
        let sql_lines = lines
            .iter()
            .filter(|l| l.contains("customer_api::sql"))
            .count() as u64;
        let operation_lines = lines
            .iter()
            .filter(|l| l.contains("graphql operation"))
            .count();
        println!("{what}: {statements} statements, {sql_lines} SQL lines with its id");
        assert!(statements > 0, "{what} reached the database");
        if sql_lines != statements || operation_lines != 1 {
            missing.push(format!(
                "{what}: {statements} statements but {sql_lines} SQL log lines carry its id, \
                 and {operation_lines} operation lines"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "log lines of a request without its id (work outside the request's span, e.g. in a task it spawned):\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 5. `customer_api_login_failures_total{reason="limited"}` counts refusals.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn each_refusal_by_the_login_limiter_is_counted_as_limited() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 2;
        c.login_failure_window_seconds = 60;
    })
    .await;
    let admin = app.admin_token().await;
    let counts = |app: &TestApp| {
        (
            metric(
                app,
                "customer_api_login_failures_total{reason=\"credentials\"}",
            ),
            metric(app, "customer_api_login_failures_total{reason=\"limited\"}"),
        )
    };
    for n in 0..2 {
        let body = app.login(&format!("nobody-{n}"), "wrong-password").await;
        assert_eq!(retry_after(&body), None, "{body}");
    }
    assert_eq!(counts(&app), (2.0, 0.0));

    // Past the limit, through every door that checks a password.
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(retry_after(&body).is_some(), "{body}");
    let rest = send(
        app.http()
            .post(format!("{}/auth/login", app.address))
            .json(&json!({ "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(rest.status, 401, "{rest:?}");
    let body = app
        .change_password(&admin, ADMIN_PASSWORD, "another-long-password")
        .await;
    assert!(retry_after(&body).is_some(), "{body}");
    let operation =
        json!({ "query": LOGIN, "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD } });
    let batch = send(
        app.http()
            .post(app.graphql_url())
            .json(&json!([operation, operation])),
    )
    .await;
    for answer in batch.body.as_array().expect("a batch answer") {
        assert!(retry_after(answer).is_some(), "{answer}");
    }
    assert_eq!(
        counts(&app),
        (2.0, 5.0),
        "five refusals, none of them hashed"
    );
}

// ---------------------------------------------------------------------------
// 6. Limit refusals: 400 with application/graphql-response+json, else 200.
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// 7. Automatic persisted queries over GET, and hashes that do not match.
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// 8. `.env` is read, and the environment wins over it.
// ---------------------------------------------------------------------------

async fn applied_versions(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn environment_variables_win_over_dotenv() {
    let (in_dotenv, in_environment) = tokio::join!(TestDb::create(), TestDb::create());
    let all = applied_versions(&in_environment).await;
    let dir = std::env::temp_dir().join(unique("customer-api-claims-dotenv"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("DATABASE_URL={}\nLOG_FORMAT=json\n", in_dotenv.url()),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_customer-api"));
    command
        .args(["migrate", "--revert"])
        .current_dir(&dir)
        .env("DATABASE_URL", in_environment.url())
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    assert_eq!(
        applied_versions(&in_environment).await,
        all[..all.len() - 1].to_vec(),
        "the environment's DATABASE_URL was used"
    );
    assert_eq!(
        applied_versions(&in_dotenv).await,
        all,
        ".env's DATABASE_URL was not"
    );
    // A setting only `.env` has still applies.
    let reverted = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "reverted migration");
    assert!(
        reverted.is_some(),
        "LOG_FORMAT=json from .env: logs are JSON lines:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// 9. Every migration's down.sql undoes it exactly.
// ---------------------------------------------------------------------------

/// Everything a migration can create in `public`, one line per object, in
/// a fixed order, without OIDs.
const SCHEMA: &str = "
SELECT line FROM (
    SELECT format('relation %s kind=%s persistence=%s rls=%s acl=%s', c.relname, c.relkind,
                  c.relpersistence, c.relrowsecurity, c.relacl) AS line
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s collation=%s',
                  c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, co.collname)
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_collation co ON co.oid = a.attcollation
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s %s %s deferrable=%s validated=%s', conrelid::regclass, conname,
                  pg_get_constraintdef(oid), condeferrable, convalidated)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT format('function %s', pg_get_functiondef(p.oid))
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('type %s %s %s', t.typname, t.typtype,
                  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                     FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('extension %s %s', extname, extversion) FROM pg_extension WHERE extname <> 'plpgsql'
    UNION ALL
    SELECT format('comment %s: %s', pg_describe_object(classoid, objoid, objsubid), description)
      FROM pg_description WHERE objoid >= 16384
) schema ORDER BY line";

async fn schema_of(db: &tokio_postgres::Client) -> Vec<String> {
    db.query(SCHEMA, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn assert_same_schema(actual: &[String], expected: &[String], what: &str) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|line| !b.contains(line)).cloned().collect()
    };
    assert!(
        actual == expected,
        "{what}: the schema differs\nunexpected: {:#?}\nmissing: {:#?}",
        only(actual, expected),
        only(expected, actual)
    );
}

type MigrationConnection =
    diesel_async::async_connection_wrapper::AsyncConnectionWrapper<diesel_async::AsyncPgConnection>;

/// Runs one step of diesel's (blocking) migration harness on a connection of its own.
async fn migration_step(url: &str, step: fn(&mut MigrationConnection) -> String) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <MigrationConnection as diesel::Connection>::establish(&url)
            .expect("connect for migrations");
        step(&mut conn)
    })
    .await
    .unwrap()
}

fn revert_last(conn: &mut MigrationConnection) -> String {
    use diesel_migrations::MigrationHarness;
    conn.revert_last_migration(customer_api::db::MIGRATIONS)
        .expect("down.sql runs")
        .to_string()
}

fn apply_next(conn: &mut MigrationConnection) -> String {
    use diesel_migrations::MigrationHarness;
    conn.run_next_migration(customer_api::db::MIGRATIONS)
        .expect("up.sql runs")
        .to_string()
}

#[tokio::test]
async fn every_migration_reverts_and_reapplies_to_the_same_schema() {
    let db = TestDb::create().await;
    let client = db.client().await;
    let mut versions = applied_versions(&db).await;
    versions.reverse();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(versions.len(), on_disk, "the database has every migration");

    // Down, newest first: each down.sql changes the schema, and re-applying
    // its up.sql right after gives back exactly the schema before it.
    let mut schemas = vec![schema_of(&client).await];
    for version in &versions {
        let above = schemas.last().unwrap().clone();
        assert_eq!(&migration_step(&db.url(), revert_last).await, version);
        let below = schema_of(&client).await;
        assert_ne!(below, above, "{version}: down.sql changed nothing");
        assert_eq!(&migration_step(&db.url(), apply_next).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            &above,
            &format!("{version} reverted and re-applied"),
        );
        assert_eq!(&migration_step(&db.url(), revert_last).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            &below,
            &format!("{version} reverted twice"),
        );
        schemas.push(below);
    }
    let leftovers: Vec<&String> = schemas
        .last()
        .unwrap()
        .iter()
        .filter(|line| !line.contains("__diesel_schema_migrations"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "with every migration reverted, only diesel's own table is left: {leftovers:#?}"
    );

    // Up again from nothing, oldest first: each step reaches the schema
    // seen at that step on the way down.
    for (version, expected) in versions.iter().rev().zip(schemas.iter().rev().skip(1)) {
        assert_eq!(&migration_step(&db.url(), apply_next).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            expected,
            &format!("{version} applied from scratch"),
        );
    }
}

// ---------------------------------------------------------------------------
// 10. REST bodies: unknown fields are ignored, `null` counts as absent.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rest_bodies_ignore_unknown_fields_and_read_null_as_absent() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("lenient");
    let claimed_id = uuid::Uuid::new_v4().to_string();
    let created = send(
        app.http()
            .post(format!("{}/v1.0/customers", app.address))
            .bearer_auth(&admin)
            .json(&json!({
                "username": username,
                "password": "a-long-password",
                "name": null,
                "detail": null,
                "webhook_method": null,
                "webhook_uri": null,
                "line_secret": null,
                "line_token": null,
                "permission_ids": null,
                // Fields the API does not take: ignored, not applied.
                "id": claimed_id,
                "tm_create": "2000-01-01 00:00:00.000000",
                "tm_delete": "2000-01-01 00:00:00.000000",
                "is_platform": true,
                "password_hash": "not-a-hash",
                "surprise": { "nested": [1, null, "two"] },
            })),
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    let customer = &created.body;
    let id = customer["id"].as_str().unwrap();
    assert_ne!(id, claimed_id, "{customer}");
    assert_eq!(customer["username"], username.as_str());
    for (field, absent) in [
        ("name", json!("")),
        ("detail", json!("")),
        ("webhook_method", json!("")),
        ("webhook_uri", json!("")),
        ("line_secret", json!("")),
        ("line_token", json!("")),
        ("permission_ids", json!([])),
        ("tm_delete", json!("9999-01-01 00:00:00.000000")),
    ] {
        assert_eq!(customer[field], absent, "{field}: {customer}");
    }
    assert!(
        !customer["tm_create"].as_str().unwrap().starts_with("2000"),
        "{customer}"
    );
    assert!(customer.get("password").is_none() && customer.get("password_hash").is_none());
    let is_platform: bool = app
        .db
        .client()
        .await
        .query_one(
            "SELECT is_platform FROM customers WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!is_platform);

    let login = |body: Value| {
        send(
            app.http()
                .post(format!("{}/auth/login", app.address))
                .json(&body),
        )
    };
    let logged_in = login(json!({
        "username": username,
        "password": "a-long-password",
        "remember_me": true,
        "otp": null,
    }))
    .await;
    assert_eq!(logged_in.status, 200, "{logged_in:?}");
    assert!(logged_in.body["token"].is_string(), "{logged_in:?}");
    let null_username = login(json!({ "username": null, "password": "a-long-password" })).await;
    assert_eq!(null_username.status, 400, "{null_username:?}");
    assert_eq!(
        null_username.body["error"]["field"], "username",
        "{null_username:?}"
    );
}
