//! Transactions under contention: deadlocks and serialization failures
//! (real ones, forced by test-side PostgreSQL sessions) are retried, as
//! often as the README says (a failure injected by a trigger counts the
//! attempts); a row can commit after a newer one is listed, by no more than
//! the documented lag; and what bounds that lag.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, request_log_lines, send, sql_count, unique};

const DELETE_CUSTOMER: &str =
    "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id tmDelete } } }";

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

    let request_id = unique("retry-deadlock");
    let delete = tokio::spawn(send(app.traced(
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
    let lines = request_log_lines(&request_id);
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
    let request_id = unique("retry-serialization");
    let delete = tokio::spawn(send(replica.traced(
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
    let lines = request_log_lines(&request_id);
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
            "CREATE SEQUENCE retry_attempts;
             CREATE FUNCTION retry_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.username = '{username}' THEN
                     PERFORM nextval('retry_attempts');
                     RAISE EXCEPTION 'could not serialize access due to concurrent update'
                         USING ERRCODE = 'serialization_failure';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER retry_conflict BEFORE INSERT ON agents
                 FOR EACH ROW EXECUTE FUNCTION retry_conflict();"
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
    let stored = sql_count(
        &db,
        "SELECT count(*) FROM customers WHERE username = $1",
        &[&username],
    )
    .await;
    assert_eq!(stored, 0, "no attempt left anything behind");
    let attempts = sql_count(&db, "SELECT last_value FROM retry_attempts", &[]).await;
    assert_eq!(attempts, 3, "one attempt and two retries");
}

const CREATE_CUSTOMER: &str = "mutation($u: String!) { createCustomer(input: {username: $u, password: \"a-long-password-1\"}) { customer { id tmCreate } } }";
const NEWEST_CUSTOMERS: &str = "query($after: String) { customers(first: 50, after: $after) { nodes { id tmCreate } pageInfo { hasNextPage endCursor } } }";

/// Begins a transaction that inserts a live customer named `username` and
/// holds it: a create of the same name waits at the unique index, inside its
/// own transaction, until this one ends.
async fn hold_username(blocker: &tokio_postgres::Client, username: &str) {
    blocker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO customers (id, username) VALUES (gen_random_uuid(), '{username}')"
        ))
        .await
        .unwrap();
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .unwrap_or_else(|| panic!("a timestamp: {value}"))
        .to_utc()
}

/// A row can commit after a newer one is listed (its `tmCreate` is the start
/// of its transaction); the README tells pollers to re-read newest first
/// down to `max_commit_lag` before the newest row they saw. Here a create is
/// held at a lock while a later one commits and is polled, then let through.
#[tokio::test]
async fn a_newest_first_poller_that_overlaps_by_the_commit_lag_misses_no_row() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let lag = customer_api::db::max_commit_lag(Duration::from_millis(
        app.state.config.db_statement_timeout_ms,
    ));
    let blocker = app.db.client().await;
    hold_username(&blocker, "late-commit").await;
    let late = app.spawn_gql(Some(&admin), CREATE_CUSTOMER, json!({ "u": "late-commit" }));
    app.until_statements_wait_on_locks(1).await;
    let on_time = app
        .create_customer_ok(&admin, "on-time", "a-long-password-1")
        .await;

    let first_poll = app.gql(Some(&admin), NEWEST_CUSTOMERS, json!({})).await;
    let newest = &first_poll["data"]["customers"]["nodes"][0];
    assert_eq!(newest["id"], on_time.as_str(), "{first_poll}");
    let seen_until = timestamp(&newest["tmCreate"]);
    let seen: std::collections::HashSet<String> = first_poll["data"]["customers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["id"].as_str().unwrap().to_owned())
        .collect();

    blocker.batch_execute("ROLLBACK").await.unwrap();
    let late = late.await.unwrap();
    let late = &late["data"]["createCustomer"]["customer"];
    let late_id = late["id"].as_str().unwrap_or_else(|| panic!("{late}"));
    let late_created = timestamp(&late["tmCreate"]);
    assert!(
        late_created < seen_until,
        "the held create is older than the row the poller saw first, so a poller that stops there misses it"
    );
    assert!(
        late_created >= seen_until - lag,
        "and within the documented lag"
    );

    // The second poll, as the README says: newest first, down to the lag.
    let mut found = Vec::new();
    let mut after = Value::Null;
    'pages: loop {
        let page = app
            .gql(Some(&admin), NEWEST_CUSTOMERS, json!({ "after": after }))
            .await;
        let customers = &page["data"]["customers"];
        for node in customers["nodes"].as_array().unwrap() {
            if timestamp(&node["tmCreate"]) < seen_until - lag {
                break 'pages;
            }
            let id = node["id"].as_str().unwrap();
            if !seen.contains(id) {
                found.push(id.to_owned());
            }
        }
        if customers["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = customers["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        found,
        [late_id],
        "the overlapping poll finds exactly the late row"
    );
}

/// What bounds the lag: a statement held longer than `DB_STATEMENT_TIMEOUT_MS`
/// is cancelled and its transaction rolled back, so it never commits late;
/// and pauses inside a transaction are cut the same way.
#[tokio::test]
async fn a_create_held_past_the_statement_timeout_rolls_back_instead_of_committing_late() {
    let app = TestApp::spawn_with(|config| config.db_statement_timeout_ms = 300).await;
    let admin = app.admin_token().await;
    let blocker = app.db.client().await;
    hold_username(&blocker, "held-too-long").await;
    // Not released until the create has answered.
    let body = app
        .gql(
            Some(&admin),
            CREATE_CUSTOMER,
            json!({ "u": "held-too-long" }),
        )
        .await;
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let stored = sql_count(
        &blocker,
        "SELECT count(*) FROM customers WHERE username = 'held-too-long'",
        &[],
    )
    .await;
    assert_eq!(
        stored, 0,
        "the cancelled create left nothing to commit later"
    );

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
    }
    let mut conn = app.state.pool.get().await.unwrap();
    let settings: Vec<Setting> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT current_setting('statement_timeout') AS setting \
             UNION ALL SELECT current_setting('idle_in_transaction_session_timeout')",
        ),
        &mut *conn,
    )
    .await
    .unwrap();
    let settings: Vec<_> = settings.into_iter().map(|s| s.setting).collect();
    assert_eq!(
        settings,
        ["300ms", "300ms"],
        "both bounds on every pooled connection"
    );
}
