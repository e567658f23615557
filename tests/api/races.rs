//! Credential races, forced rather than hoped for: a direct connection holds
//! an agent's row (`FOR UPDATE`) while the server's statements queue up
//! behind it, `pg_stat_activity` proves each one is waiting at the lock, and
//! the release lets them through in the order they queued (PostgreSQL
//! grants a row to its waiters first come, first served).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, error_code, session_id, sql_column, sql_count,
};

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

fn login(app: &TestApp, username: &str, password: &str) -> tokio::task::JoinHandle<Value> {
    app.spawn_gql(None, LOGIN, json!({ "u": username, "p": password }))
}

fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> tokio::task::JoinHandle<Value> {
    app.spawn_gql(
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
    app.spawn_gql(
        Some(token),
        SET_PASSWORD,
        json!({ "id": agent_id, "p": password }),
    )
}

/// How long a test waits for the server at most: generous, since other
/// builds and tests may share the machine, and argon2 is slow when starved.
const PATIENCE_MS: u64 = 120_000;

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
    tokio::time::timeout(Duration::from_millis(2 * PATIENCE_MS), request)
        .await
        .expect("the request is answered")
        .expect("the request task does not panic")
}

/// Begins a transaction on a direct connection and locks the row `id` of
/// `table` in it (`FOR UPDATE`). Holding an agent's row stops every login,
/// password change and reset of that agent at its row; holding one of its
/// sessions stops a change after its password update, before it revokes.
async fn hold_row(app: &TestApp, table: &str, id: &str) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client.batch_execute("BEGIN").await.unwrap();
    let locked = client
        .query(
            &format!("SELECT 1 FROM {table} WHERE id = $1::text::uuid FOR UPDATE"),
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(locked.len(), 1, "the row of {table} is locked");
    client
}

/// The agent's sessions: `(all, live)`, live meaning unrevoked and unexpired.
async fn sessions_of(app: &TestApp, agent_id: &str) -> (i64, i64) {
    let db = app.db.client().await;
    let sessions = "FROM sessions WHERE agent_id = $1::text::uuid";
    (
        sql_count(&db, &format!("SELECT count(*) {sessions}"), &[&agent_id]).await,
        sql_count(
            &db,
            &format!("SELECT count(*) {sessions} AND tm_revoke IS NULL AND tm_expire > now()"),
            &[&agent_id],
        )
        .await,
    )
}

/// The ids of the agent's live sessions.
async fn live_session_ids(app: &TestApp, agent_id: &str) -> Vec<String> {
    sql_column(
        &app.db.client().await,
        "SELECT id::text FROM sessions WHERE agent_id = $1::text::uuid \
         AND tm_revoke IS NULL AND tm_expire > now() ORDER BY id",
        &[&agent_id],
    )
    .await
}

fn token_of(body: &Value) -> String {
    body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_owned()
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

    let lock = hold_row(&app, "agents", &agent).await;
    // The reset queues at the row first...
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 1)
        .await;
    // ...then a login whose password check passes (the reset has not
    // committed) queues behind it, about to store its session.
    let login = login(&app, "racer", ADMIN_PASSWORD);
    app.until_statements_wait_on_locks_matching(LOGIN_LOCK, 1)
        .await;
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
    app.assert_login_refused("racer", ADMIN_PASSWORD, "the old password")
        .await;
    app.assert_login_works("racer", "reset-password-1", "the reset password")
        .await;
}

#[tokio::test]
async fn a_login_that_commits_before_a_password_reset_is_revoked_by_it_on_every_replica() {
    let app = TestApp::spawn_with(patient).await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let earlier = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_row(&app, "agents", &agent).await;
    // Holds the reset after its password update, before it revokes sessions
    // and commits, so that the new token can be seen working meanwhile.
    let sessions_lock = hold_row(&app, "sessions", &session_id(&earlier)).await;
    // The login queues at the row first, its password check passed...
    let login = login(&app, "racer", ADMIN_PASSWORD);
    app.until_statements_wait_on_locks_matching(LOGIN_LOCK, 1)
        .await;
    // ...then the reset queues behind it.
    let reset = set_password(&app, &admin, &agent, "reset-password-1");
    app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 1)
        .await;
    lock.batch_execute("ROLLBACK").await.unwrap();

    let login = answer(login).await;
    let token = token_of(&login);
    // The reset has updated the password but has not committed: it waits to
    // revoke the sessions, the new one included.
    app.until_statements_wait_on_locks_matching(SESSIONS_UPDATE, 1)
        .await;
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
    app.assert_login_refused("racer", ADMIN_PASSWORD, "the old password")
        .await;
    replica
        .assert_login_works("racer", "reset-password-1", "the reset password")
        .await;
}

#[tokio::test]
async fn of_two_concurrent_password_changes_from_one_password_exactly_one_wins() {
    let app = TestApp::spawn_with(patient).await;
    let agent = racer(&app, "racer").await;
    let first = app.token("racer", ADMIN_PASSWORD).await;
    let second = app.token("racer", ADMIN_PASSWORD).await;
    let before = app.password_hash(&agent).await;

    let lock = hold_row(&app, "agents", &agent).await;
    // Both verify the same current password and reach their update.
    let winner = change_password(&app, &first, ADMIN_PASSWORD, "winner-password");
    app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 1)
        .await;
    let loser = change_password(&app, &second, ADMIN_PASSWORD, "loser-password");
    app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 2)
        .await;
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

    assert_ne!(app.password_hash(&agent).await, before);
    assert_eq!(
        live_session_ids(&app, &agent).await,
        vec![session_id(&first)],
        "only the winner's session is live"
    );
    assert_token_works(&app, &first, &agent, "the winner's session").await;
    assert_token_refused(&app, &second, "the loser's session").await;
    app.assert_login_refused("racer", "loser-password", "the loser's password")
        .await;
    app.assert_login_refused("racer", ADMIN_PASSWORD, "the old password")
        .await;
    app.assert_login_works("racer", "winner-password", "the winner's password")
        .await;
}

/// A password change (with the agent's own token) and a reset (by a super
/// admin) of one agent, queued at its row in the order given and then let
/// through. The reset, which needs no password, always succeeds.
struct ChangeAndReset {
    app: TestApp,
    agent: String,
    own: String,
    change: Value,
}

async fn change_and_reset(change_first: bool) -> ChangeAndReset {
    let app = TestApp::spawn_with(patient).await;
    let admin = app.admin_token().await;
    let agent = racer(&app, "racer").await;
    let own = app.token("racer", ADMIN_PASSWORD).await;

    let lock = hold_row(&app, "agents", &agent).await;
    let change = || change_password(&app, &own, ADMIN_PASSWORD, "changed-password");
    let reset = || set_password(&app, &admin, &agent, "reset-password-1");
    let (change, reset) = if change_first {
        let change = change();
        app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 1)
            .await;
        (change, reset())
    } else {
        let reset = reset();
        app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 1)
            .await;
        // The change verifies the password the reset is about to replace.
        (change(), reset)
    };
    app.until_statements_wait_on_locks_matching(PASSWORD_UPDATE, 2)
        .await;
    lock.batch_execute("ROLLBACK").await.unwrap();
    let (change, reset) = (answer(change).await, answer(reset).await);
    assert!(reset["errors"].is_null(), "{reset}");
    assert_eq!(
        reset["data"]["setAgentPassword"]["agent"]["id"], agent,
        "{reset}"
    );
    ChangeAndReset {
        app,
        agent,
        own,
        change,
    }
}

/// The reset's password is the only one, and it revoked every session.
async fn assert_the_reset_stands(race: &ChangeAndReset, what_became_of_the_change: &str) {
    let app = &race.app;
    assert_eq!(
        sessions_of(app, &race.agent).await,
        (1, 0),
        "the reset revoked all"
    );
    assert_token_refused(app, &race.own, "the agent's session").await;
    app.assert_login_refused("racer", "changed-password", what_became_of_the_change)
        .await;
    app.assert_login_refused("racer", ADMIN_PASSWORD, "the old password")
        .await;
    app.assert_login_works("racer", "reset-password-1", "the reset password")
        .await;
}

#[tokio::test]
async fn a_password_reset_after_a_password_change_wins() {
    let race = change_and_reset(true).await;
    let change = &race.change;
    assert!(change["errors"].is_null(), "{change}");
    assert_eq!(
        change["data"]["changePassword"]["agent"]["id"], race.agent,
        "{change}"
    );
    assert_the_reset_stands(&race, "the overwritten change").await;
}

#[tokio::test]
async fn a_password_change_after_a_password_reset_fails_and_the_reset_stands() {
    let race = change_and_reset(false).await;
    let change = &race.change;
    assert_eq!(error_code(change), "UNAUTHENTICATED", "{change}");
    assert!(change["data"].is_null(), "{change}");
    assert_the_reset_stands(&race, "the failed change").await;
}
