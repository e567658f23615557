//! Credential races, forced rather than hoped for: a direct connection holds
//! an agent's row (`FOR UPDATE`) while the server's statements queue up
//! behind it, `pg_stat_activity` proves each one is waiting at the lock, and
//! the release lets them through in the order they queued (PostgreSQL
//! grants a row to its waiters first come, first served). Also: who may set
//! a super admin's password, who may read a customer's LINE secrets, short
//! signing keys and session ids in the logs.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, TestDb, captured_logs, error_code};

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token agent { id } } }";
const CHANGE_PASSWORD: &str = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { agent { id } } }";
const SET_PASSWORD: &str = "mutation($id: UUID!, $p: String!) { setAgentPassword(input: {agentId: $id, password: $p}) { agent { id } } }";
const ME: &str = "{ me { agent { id } } }";

/// The statement of a login storing its session: it locks the agent's row.
const LOGIN_LOCK: &str = "FOR SHARE";
/// The statement of a password change or reset.
const PASSWORD_UPDATE: &str = "UPDATE \"agents\"";
/// The statement revoking an agent's sessions, after its password changed.
const SESSIONS_UPDATE: &str = "UPDATE \"sessions\"";

/// Sends one GraphQL operation from a task of its own, so that the test can
/// go on while the server holds it at a lock.
fn send(
    app: &TestApp,
    token: Option<&str>,
    query: &'static str,
    variables: Value,
) -> tokio::task::JoinHandle<Value> {
    let url = app.graphql_url();
    let token = token.map(str::to_owned);
    tokio::spawn(async move {
        let mut request = reqwest::Client::new()
            .post(url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send GraphQL request");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 200, "{query}: {text}");
        serde_json::from_str(&text).expect("JSON body")
    })
}

fn login(app: &TestApp, username: &str, password: &str) -> tokio::task::JoinHandle<Value> {
    send(app, None, LOGIN, json!({ "u": username, "p": password }))
}

fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> tokio::task::JoinHandle<Value> {
    send(
        app,
        Some(token),
        CHANGE_PASSWORD,
        json!({ "c": current, "n": new }),
    )
}

fn set_password(
    app: &TestApp,
    token: &str,
    agent_id: &str,
    password: &str,
) -> tokio::task::JoinHandle<Value> {
    send(
        app,
        Some(token),
        SET_PASSWORD,
        json!({ "id": agent_id, "p": password }),
    )
}

/// How long a test waits for the server at most: generous, since other
/// builds and tests may share the machine, and argon2 is slow when starved.
const PATIENCE_MS: u64 = 120_000;
const PATIENCE: Duration = Duration::from_millis(PATIENCE_MS);

/// Settings for tests that hold a row lock while the server waits on it:
/// neither the statement timeout nor the request deadline may end the wait
/// before the test releases the lock, however slow the machine is.
fn patient(config: &mut customer_api::Config) {
    config.db_statement_timeout_ms = 3 * PATIENCE_MS;
    config.request_timeout_ms = 3 * PATIENCE_MS;
    // Concurrent password checks of one user count as failures until they succeed.
    config.login_max_failures = 50;
}

/// Awaits a request, with a deadline so that a lost wake-up fails the test.
async fn answer(request: tokio::task::JoinHandle<Value>) -> Value {
    tokio::time::timeout(2 * PATIENCE, request)
        .await
        .expect("the request is answered")
        .expect("the request task does not panic")
}

/// Begins a transaction on a direct connection and locks the agent's row in
/// it (`FOR UPDATE`): every login, password change and reset of that agent
/// then waits at its row until the transaction ends.
async fn hold_agent_row(app: &TestApp, agent_id: &str) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client.batch_execute("BEGIN").await.unwrap();
    let locked = client
        .query(
            "SELECT 1 FROM agents WHERE id = $1::text::uuid FOR UPDATE",
            &[&agent_id],
        )
        .await
        .unwrap();
    assert_eq!(locked.len(), 1, "the agent's row is locked");
    client
}

/// Locks one session row from a direct connection: revoking the agent's
/// sessions waits there, after the password update, until it is released.
async fn hold_session_row(app: &TestApp, session_id: &str) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client.batch_execute("BEGIN").await.unwrap();
    let locked = client
        .query(
            "SELECT 1 FROM sessions WHERE id = $1::text::uuid FOR UPDATE",
            &[&session_id],
        )
        .await
        .unwrap();
    assert_eq!(locked.len(), 1, "the session's row is locked");
    client
}

/// Waits until at least `count` statements of the application containing
/// `statement` wait for a lock in this test's database.
async fn until_blocked(app: &TestApp, statement: &str, count: usize) {
    let observer = app.db.client().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let waiting: Vec<String> = observer
            .query(
                "SELECT query FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        if waiting.iter().filter(|q| q.contains(statement)).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} statement(s) with {statement:?} waiting at a lock; waiting: {waiting:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The session id (`jti`) a login token names.
fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
            .expect("JSON claims");
    let jti = claims["jti"].as_str().expect("a jti claim").to_owned();
    uuid::Uuid::parse_str(&jti).expect("the jti is a UUID");
    jti
}

/// The agent's sessions: `(all, live)`, live meaning unrevoked and unexpired.
async fn sessions_of(app: &TestApp, agent_id: &str) -> (i64, i64) {
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE tm_revoke IS NULL AND tm_expire > now()) \
             FROM sessions WHERE agent_id = $1::text::uuid",
            &[&agent_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The ids of the agent's live sessions.
async fn live_session_ids(app: &TestApp, agent_id: &str) -> Vec<String> {
    app.db
        .client()
        .await
        .query(
            "SELECT id::text FROM sessions WHERE agent_id = $1::text::uuid \
             AND tm_revoke IS NULL AND tm_expire > now() ORDER BY id",
            &[&agent_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn password_hash(app: &TestApp, agent_id: &str) -> String {
    app.db
        .client()
        .await
        .query_one(
            "SELECT password_hash FROM agents WHERE id = $1::text::uuid",
            &[&agent_id],
        )
        .await
        .unwrap()
        .get(0)
}

fn token_of(body: &Value) -> String {
    body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_owned()
}

/// Every error of a response body has `code`.
fn assert_only_errors(body: &Value, code: &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors, got {body}"));
    assert!(!errors.is_empty(), "{body}");
    for error in errors {
        assert_eq!(error["extensions"]["code"], code, "{body}");
    }
}

async fn assert_login_works(app: &TestApp, username: &str, password: &str, what: &str) {
    let body = app.login(username, password).await;
    assert!(body["data"]["login"]["token"].is_string(), "{what}: {body}");
}

async fn assert_login_refused(app: &TestApp, username: &str, password: &str, what: &str) {
    let body = app.login(username, password).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    assert!(body["data"].is_null(), "{what}: {body}");
}

async fn assert_token_works(server: &TestApp, token: &str, agent_id: &str, what: &str) {
    let body = server.gql(Some(token), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{what}: {body}");
    assert_eq!(
        body["data"]["me"]["agent"]["id"], agent_id,
        "{what}: {body}"
    );
}

async fn assert_token_refused(server: &TestApp, token: &str, what: &str) {
    let body = server.gql(Some(token), ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    assert!(body["data"].is_null(), "{what}: {body}");
}

/// A platform agent with CUSTOMER_AGENT only, and admin's password.
async fn racer(app: &TestApp, username: &str) -> String {
    app.seed_agent(ADMIN_USERNAME, username, 16).await
}

#[tokio::test]
async fn a_login_blocked_behind_a_password_reset_fails_and_stores_no_session() {
    let app = TestApp::spawn_with(patient).await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let earlier = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_agent_row(&app, &agent).await;
    // The reset queues at the row first...
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    until_blocked(&app, PASSWORD_UPDATE, 1).await;
    // ...then a login whose password check passes (the reset has not
    // committed) queues behind it, about to store its session.
    let login = login(&app, "racer", ADMIN_PASSWORD);
    until_blocked(&app, LOGIN_LOCK, 1).await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let reset = answer(reset).await;
    assert_eq!(
        reset["data"]["setAgentPassword"]["agent"]["id"], agent,
        "{reset}"
    );
    let login = answer(login).await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED", "{login}");
    assert!(login["data"].is_null(), "{login}");

    assert_eq!(
        sessions_of(&app, &agent).await,
        (1, 0),
        "the login stored no session, and the earlier one was revoked"
    );
    assert_token_refused(&app, &earlier, "the token from before the reset").await;
    assert_login_refused(&app, "racer", ADMIN_PASSWORD, "the old password").await;
    assert_login_works(&app, "racer", "reset-password-1", "the reset password").await;
}

#[tokio::test]
async fn a_login_that_commits_before_a_password_reset_is_revoked_by_it_on_every_replica() {
    let app = TestApp::spawn_with(patient).await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let earlier = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_agent_row(&app, &agent).await;
    // Holds the reset after its password update, before it revokes sessions
    // and commits, so that the new token can be seen working meanwhile.
    let sessions_lock = hold_session_row(&app, &jti(&earlier)).await;
    // The login queues at the row first, its password check passed...
    let login = login(&app, "racer", ADMIN_PASSWORD);
    until_blocked(&app, LOGIN_LOCK, 1).await;
    // ...then the reset queues behind it.
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    until_blocked(&app, PASSWORD_UPDATE, 1).await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let login = answer(login).await;
    let token = token_of(&login);
    // The reset has updated the password but has not committed: it waits to
    // revoke the sessions, the new one included.
    until_blocked(&app, SESSIONS_UPDATE, 1).await;
    assert!(!reset.is_finished(), "the reset is still in flight");
    assert_eq!(
        sessions_of(&app, &agent).await,
        (2, 2),
        "the login committed"
    );
    // Both servers now know the new token (and cache it).
    assert_token_works(&app, &token, &agent, "the new token, before the reset").await;
    assert_token_works(&replica, &token, &agent, "the new token on the replica").await;
    sessions_lock.batch_execute("ROLLBACK").await.unwrap();

    let reset = answer(reset).await;
    assert_eq!(
        reset["data"]["setAgentPassword"]["agent"]["id"], agent,
        "{reset}"
    );
    assert_eq!(
        sessions_of(&app, &agent).await,
        (2, 0),
        "no session outlives the reset"
    );
    assert_token_refused(&app, &token, "the login's token after the reset").await;
    assert_token_refused(&replica, &token, "the login's token on the replica").await;
    assert_token_refused(&app, &earlier, "the earlier token").await;
    assert_token_refused(&replica, &earlier, "the earlier token on the replica").await;
    assert_login_refused(&app, "racer", ADMIN_PASSWORD, "the old password").await;
    assert_login_works(&replica, "racer", "reset-password-1", "the reset password").await;
}

#[tokio::test]
async fn of_two_concurrent_password_changes_from_one_password_exactly_one_wins() {
    let app = TestApp::spawn_with(patient).await;
    let agent = racer(&app, "racer").await;
    let first = app.token("racer", ADMIN_PASSWORD).await;
    let second = app.token("racer", ADMIN_PASSWORD).await;
    let before = password_hash(&app, &agent).await;

    let lock = hold_agent_row(&app, &agent).await;
    // Both verify the same current password and reach their update.
    let winner = change_password(&app, &first, ADMIN_PASSWORD, "winner-password");
    until_blocked(&app, PASSWORD_UPDATE, 1).await;
    let loser = change_password(&app, &second, ADMIN_PASSWORD, "loser-password");
    until_blocked(&app, PASSWORD_UPDATE, 2).await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let winner = answer(winner).await;
    let loser = answer(loser).await;
    assert!(winner["errors"].is_null(), "{winner}");
    assert_eq!(
        winner["data"]["changePassword"]["agent"]["id"], agent,
        "{winner}"
    );
    assert_eq!(error_code(&loser), "UNAUTHENTICATED", "{loser}");
    assert!(loser["data"].is_null(), "{loser}");

    assert_ne!(password_hash(&app, &agent).await, before);
    assert_eq!(
        live_session_ids(&app, &agent).await,
        vec![jti(&first)],
        "only the winner's session is live"
    );
    assert_token_works(&app, &first, &agent, "the winner's session").await;
    assert_token_refused(&app, &second, "the loser's session").await;
    assert_login_refused(&app, "racer", "loser-password", "the loser's password").await;
    assert_login_refused(&app, "racer", ADMIN_PASSWORD, "the old password").await;
    assert_login_works(&app, "racer", "winner-password", "the winner's password").await;
}

#[tokio::test]
async fn a_password_reset_after_a_password_change_wins() {
    let app = TestApp::spawn_with(patient).await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let own = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_agent_row(&app, &agent).await;
    let change = change_password(&app, &own, ADMIN_PASSWORD, "changed-password");
    until_blocked(&app, PASSWORD_UPDATE, 1).await;
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    until_blocked(&app, PASSWORD_UPDATE, 2).await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let change = answer(change).await;
    let reset = answer(reset).await;
    assert!(change["errors"].is_null(), "{change}");
    assert_eq!(
        change["data"]["changePassword"]["agent"]["id"], agent,
        "{change}"
    );
    assert!(reset["errors"].is_null(), "{reset}");
    assert_eq!(
        reset["data"]["setAgentPassword"]["agent"]["id"], agent,
        "{reset}"
    );

    assert_eq!(
        sessions_of(&app, &agent).await,
        (1, 0),
        "the reset revoked all"
    );
    assert_token_refused(&app, &own, "the agent's session").await;
    assert_login_refused(&app, "racer", "changed-password", "the overwritten change").await;
    assert_login_refused(&app, "racer", ADMIN_PASSWORD, "the old password").await;
    assert_login_works(&app, "racer", "reset-password-1", "the reset password").await;
}

#[tokio::test]
async fn a_password_change_after_a_password_reset_fails_and_the_reset_stands() {
    let app = TestApp::spawn_with(patient).await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let own = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_agent_row(&app, &agent).await;
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    until_blocked(&app, PASSWORD_UPDATE, 1).await;
    // The change verifies the password the reset is about to replace.
    let change = change_password(&app, &own, ADMIN_PASSWORD, "changed-password");
    until_blocked(&app, PASSWORD_UPDATE, 2).await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let reset = answer(reset).await;
    let change = answer(change).await;
    assert!(reset["errors"].is_null(), "{reset}");
    assert_eq!(
        reset["data"]["setAgentPassword"]["agent"]["id"], agent,
        "{reset}"
    );
    assert_eq!(error_code(&change), "UNAUTHENTICATED", "{change}");
    assert!(change["data"].is_null(), "{change}");

    assert_eq!(
        sessions_of(&app, &agent).await,
        (1, 0),
        "the reset revoked all"
    );
    assert_token_refused(&app, &own, "the agent's session").await;
    assert_login_refused(&app, "racer", "changed-password", "the failed change").await;
    assert_login_refused(&app, "racer", ADMIN_PASSWORD, "the old password").await;
    assert_login_works(&app, "racer", "reset-password-1", "the reset password").await;
}

#[tokio::test]
async fn only_super_admins_set_a_super_admins_password() {
    let app = TestApp::spawn_with(patient).await;
    let admin = app.admin_token().await;
    let admin_id = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await["data"]["login"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Platform agents, all with admin's password: a CUSTOMER_ADMIN of the
    // platform's customer, a second super admin, and a plain agent.
    app.seed_agent(ADMIN_USERNAME, "platform-admin", 32).await;
    let root = app.seed_agent(ADMIN_USERNAME, "root2", 1 | 32).await;
    let plain = app.seed_agent(ADMIN_USERNAME, "platform-agent", 16).await;
    let platform_admin = app.token("platform-admin", ADMIN_PASSWORD).await;
    let admin_hash = password_hash(&app, &admin_id).await;
    let root_hash = password_hash(&app, &root).await;

    for (target, hash) in [(&admin_id, &admin_hash), (&root, &root_hash)] {
        let body = app
            .set_agent_password(&platform_admin, target, "taken-over-1")
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(&password_hash(&app, target).await, hash, "unchanged");
    }
    assert_token_works(&app, &admin, &admin_id, "admin's session survives").await;
    assert_login_works(&app, ADMIN_USERNAME, ADMIN_PASSWORD, "admin's password").await;
    assert_login_refused(&app, ADMIN_USERNAME, "taken-over-1", "the refused password").await;
    assert_login_works(&app, "root2", ADMIN_PASSWORD, "root2's password").await;

    // The same admin resets an agent of its customer that is no super admin.
    let body = app
        .set_agent_password(&platform_admin, &plain, "plain-password-1")
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["setAgentPassword"]["agent"]["id"], plain,
        "{body}"
    );
    assert_login_works(&app, "platform-agent", "plain-password-1", "the reset").await;
    assert_login_refused(&app, "platform-agent", ADMIN_PASSWORD, "the old one").await;

    // And a super admin may reset a super admin's.
    let body = app
        .set_agent_password(&admin, &root, "root-password-1")
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_login_works(&app, "root2", "root-password-1", "root2's reset").await;
}

#[tokio::test]
async fn line_secrets_are_read_by_the_customers_admins_and_managers_only() {
    let app = TestApp::spawn_with(patient).await;
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
    assert_only_errors(&body, "FORBIDDEN");
    let mut refused: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].to_string())
        .collect();
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

    let app = TestApp::spawn_with(patient).await;
    let token = app.admin_token().await;
    let session = jti(&token);
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

/// The rule for work already running when its credential is revoked: each
/// field of a mutation checks the credential again before it runs, so the
/// fields after a revocation are refused; a field that passed its check
/// before the revocation completes.
#[tokio::test]
async fn fields_of_a_mutation_after_a_logout_are_refused() {
    let app = TestApp::spawn_with(|c| {
        c.db_statement_timeout_ms = 360_000;
        c.request_timeout_ms = 360_000;
    })
    .await;
    let admin = app.admin_token().await;
    let blocker = app.db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let fields: String = (0..20)
        .map(|i| {
            format!(
                "c{i}: createCustomer(input: {{username: \"late-{i}\", password: \"a-long-password-1\"}}) {{ customer {{ id }} }} "
            )
        })
        .collect();
    let creating = {
        let client = app.http().clone();
        let url = app.graphql_url();
        let admin = admin.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({ "query": format!("mutation {{ {fields} }}") }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // The first field is held at its insert, past its credential check.
    app.until_statements_wait_on_locks(1).await;
    let logout = app.logout(&admin).await;
    assert_eq!(logout["data"]["logout"]["revoked"], true, "{logout}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let body = creating.await.unwrap();
    let created: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM customers WHERE username LIKE 'late-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    println!("{created} of 20 creates committed after the logout answered");
    assert_eq!(
        created, 1,
        "only the field already running completes: {body}"
    );
    assert!(body["data"]["c0"]["customer"]["id"].is_string(), "{body}");
    let refused = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["extensions"]["code"] == "UNAUTHENTICATED")
        .count();
    assert_eq!(refused, 19, "{body}");
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
    let late = send(
        &app,
        Some(&admin),
        CREATE_CUSTOMER,
        json!({ "u": "late-commit" }),
    );
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
    let body = send(
        &app,
        Some(&admin),
        CREATE_CUSTOMER,
        json!({ "u": "held-too-long" }),
    )
    .await
    .unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let stored: i64 = blocker
        .query_one(
            "SELECT count(*) FROM customers WHERE username = 'held-too-long'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
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
