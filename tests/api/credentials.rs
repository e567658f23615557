//! The credential lifecycle: logout, password changes, revocation that holds
//! across server processes, the cost of the credential check on a warm
//! cache, the login limiter, and secrets kept out of responses and logs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, Proxy, TestApp, captured_logs, error_code, error_field,
    eventually,
};

const ME: &str = "{ me { agent { id } customer { id } permissions } }";
/// A request that needs a valid credential (of a CUSTOMER_ADMIN or better)
/// but reads neither the agent nor the customer behind it, unlike `me`: so
/// a refusal proves the credential check itself, cache included, refused it.
const PROBE: &str = "{ accessKeys(first: 1) { nodes { id } } }";
const OWN_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id } }";

/// Creates a customer whose guest agent (a CUSTOMER_ADMIN) has `password`;
/// returns the customer id and the agent id.
async fn customer(app: &TestApp, admin: &str, username: &str, password: &str) -> (String, String) {
    let body = app
        .create_customer(admin, json!({ "username": username, "password": password }))
        .await;
    let customer = &body["data"]["createCustomer"]["customer"];
    match (
        customer["id"].as_str(),
        customer["guestAgent"]["id"].as_str(),
    ) {
        (Some(id), Some(agent)) => (id.to_owned(), agent.to_owned()),
        _ => panic!("createCustomer failed: {body}"),
    }
}

async fn assert_works(server: &TestApp, credential: &str, what: &str) {
    let body = server.gql(Some(credential), PROBE, json!({})).await;
    assert!(body["errors"].is_null(), "{what}: {body}");
    assert!(
        body["data"]["accessKeys"]["nodes"].is_array(),
        "{what}: {body}"
    );
}

async fn assert_refused(server: &TestApp, credential: &str, what: &str) {
    let body = server.gql(Some(credential), PROBE, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    assert!(body["data"].is_null(), "{what}: {body}");
}

/// For agents without CUSTOMER_ADMIN, who may not run `PROBE`: `me` works.
async fn assert_signed_in(server: &TestApp, credential: &str, what: &str) {
    let body = server.gql(Some(credential), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{what}: {body}");
    assert!(
        body["data"]["me"]["agent"]["id"].is_string(),
        "{what}: {body}"
    );
}

/// The `retryAfterSeconds` of a refused login, which must be an integer > 0.
fn retry_after(body: &Value) -> i64 {
    assert_eq!(error_code(body), "UNAUTHENTICATED", "{body}");
    let seconds = body["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer retryAfterSeconds in {body}"));
    assert!(seconds > 0, "{body}");
    seconds
}

fn logged_in(body: &Value) -> bool {
    body["data"]["login"]["token"].is_string()
}

/// The `tmLastUsed` of an access key, as text.
async fn last_used(server: &TestApp, key_id: &str) -> Option<String> {
    server
        .db
        .client()
        .await
        .query_one(
            "SELECT tm_last_used::text FROM access_keys WHERE id = $1::text::uuid",
            &[&key_id],
        )
        .await
        .unwrap()
        .get(0)
}

/// Statements one `customer(id)` request costs `server`, all told. When the
/// request is the first use of the access key `key_id` by `server`, its
/// `tmLastUsed` write, made in the background after the response, is waited
/// for (by its row) and counted too.
async fn request_cost(
    server: &TestApp,
    credential: &str,
    customer_id: &str,
    first_use_of_key: Option<&str>,
) -> u64 {
    let before = server.statements();
    let body = server
        .gql(Some(credential), OWN_CUSTOMER, json!({ "id": customer_id }))
        .await;
    assert_eq!(body["data"]["customer"]["id"], customer_id, "{body}");
    if let Some(key_id) = first_use_of_key {
        eventually(
            "the tmLastUsed write of a key's first use",
            Duration::from_secs(10),
            || async { last_used(server, key_id).await },
        )
        .await;
    }
    server.statements() - before
}

#[tokio::test]
async fn logout_revokes_only_the_token_used_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "leaver", "leaver-password").await;
    let first = app.token("leaver", "leaver-password").await;
    let second = app.token("leaver", "leaver-password").await;
    let third = app.token("leaver", "leaver-password").await;
    assert_ne!(first, second, "every login issues a token of its own");
    assert_ne!(second, third);
    for server in [&app, &replica] {
        for token in [&first, &second, &third] {
            assert_works(server, token, "before logout").await;
        }
    }

    let body = app.logout(&first).await;
    assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
    assert_refused(&replica, &first, "logged out, on the replica").await;
    assert_refused(&app, &first, "logged out, on the app").await;
    let again = app.logout(&first).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED", "{again}");

    let body = replica.logout(&second).await;
    assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
    assert_refused(&app, &second, "logged out on the replica, on the app").await;
    assert_refused(&replica, &second, "logged out on the replica").await;

    for server in [&app, &replica] {
        assert_works(server, &third, "another token of the same agent").await;
        assert_works(server, &admin, "another agent's token").await;
    }
    let body = app
        .gql(None, "mutation { logout { revoked } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

/// A replica whose credential listener is stalled (its bytes held, the
/// connection left open, so that neither end notices) cannot acknowledge a
/// revocation. By the time the revoking request answers, that replica must
/// have stopped trusting its cache: it asks the database, which says no.
#[tokio::test]
async fn a_replica_whose_listener_stalls_stops_trusting_its_cache_before_a_revocation_answers() {
    use customer_api::auth::cache::LISTENER_APPLICATION_NAME;

    let app = TestApp::spawn().await;
    let proxy = Proxy::start().await;
    let stalled = app.replica_through(&proxy).await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "stalls", "stalls-password").await;
    let token = app.token("stalls", "stalls-password").await;
    let (key_id, key) = app
        .create_access_key_ok(&token, json!({ "name": "stalls" }))
        .await;
    let listening = || stalled.state.credentials.is_listening();

    for (revoked, revoke) in [(&token, "logout"), (&key, "deleteAccessKey")] {
        eventually(
            "the replica's listener (re)connects",
            Duration::from_secs(20),
            || async { listening().then_some(()) },
        )
        .await;
        // Served from the replica's cache from now on.
        assert_works(&stalled, revoked, "before the revocation").await;
        assert_works(&stalled, &admin, "before the revocation").await;
        proxy.stall_application(LISTENER_APPLICATION_NAME);

        let body = match revoke {
            "logout" => app.logout(revoked).await,
            _ => app.delete_access_key(&admin, &key_id).await,
        };
        assert!(body["errors"].is_null(), "{revoke}: {body}");
        assert!(
            !listening(),
            "{revoke} answered while the stalled replica still trusts its cache"
        );
        assert_refused(
            &stalled,
            revoked,
            &format!("revoked by {revoke}, on the stalled replica"),
        )
        .await;
        // The replica still serves every live credential, from the database.
        assert_works(&stalled, &admin, "a live token on the stalled replica").await;
        proxy.unstall();
    }
}

/// After a revoking change has committed, the wait for every replica's
/// acknowledgement can still fail (here: the query counting the listening
/// replicas loses its connection). The change was stored, so the answer says
/// so; the failure is a warning in the log, not an error for the client.
#[tokio::test]
async fn revocations_that_committed_are_reported_even_when_their_acknowledgement_wait_fails() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "acked", "acked-password").await;
    let (to_log_out, to_keep) = (
        app.token("acked", "acked-password").await,
        app.token("acked", "acked-password").await,
    );
    let injector = app.db.client().await;

    for change in ["logout", "changePassword"] {
        // Holding this lock stops the count of listening servers (a query of
        // `pg_stat_activity`), which runs only after the change committed.
        injector
            .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_stat_activity IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let request = async {
            match change {
                "logout" => app.logout(&to_log_out).await,
                _ => {
                    app.change_password(&to_keep, "acked-password", "acked-password-2")
                        .await
                }
            }
        };
        let inject = async {
            let waiting = eventually(
                "the count of listeners waits on the lock",
                Duration::from_secs(30),
                || async {
                    // Only this session may read the view while it holds the lock.
                    injector
                        .query_opt(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                         AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                            &[],
                        )
                        .await
                        .unwrap()
                        .map(|row| row.get::<_, i32>(0))
                },
            )
            .await;
            injector
                .execute("SELECT pg_terminate_backend($1)", &[&waiting])
                .await
                .unwrap();
            injector.batch_execute("COMMIT").await.unwrap();
        };
        let (body, ()) = tokio::join!(request, inject);
        assert!(
            body["errors"].is_null(),
            "{change} committed, so it succeeded: {body}"
        );
        match change {
            "logout" => {
                assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
                assert_refused(&app, &to_log_out, "logged out").await;
            }
            _ => {
                assert!(app.login("acked", "acked-password-2").await["errors"].is_null());
                assert_works(&app, &to_keep, "the token that changed the password").await;
            }
        }
    }
    let logs = captured_logs();
    assert!(
        logs.contains("a revocation was stored but its acknowledgements could not be awaited"),
        "the failed wait is logged"
    );
}

#[tokio::test]
async fn change_password_switches_passwords_and_revokes_other_tokens_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (_, agent_id) = customer(&app, &admin, "changer", "old-password").await;
    let current = app.token("changer", "old-password").await;
    let other = app.token("changer", "old-password").await;
    assert_ne!(current, other);
    for server in [&app, &replica] {
        assert_works(server, &current, "before").await;
        assert_works(server, &other, "before").await;
    }

    let body = app
        .change_password(&current, "old-password", "new-password")
        .await;
    assert_eq!(
        body["data"]["changePassword"]["agent"]["id"],
        agent_id.as_str(),
        "{body}"
    );
    assert_refused(&replica, &other, "other token, replica").await;
    assert_refused(&app, &other, "other token, app").await;
    assert_works(&replica, &current, "the caller's own token, replica").await;
    assert_works(&app, &current, "the caller's own token, app").await;
    assert_works(&replica, &admin, "another agent's token").await;

    let old = app.login("changer", "old-password").await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED", "{old}");
    let new = app.token("changer", "new-password").await;
    assert_works(&replica, &new, "a token from the new password").await;
}

#[tokio::test]
async fn change_password_refuses_a_wrong_current_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "careful", "right-password").await;
    let current = app.token("careful", "right-password").await;
    let other = app.token("careful", "right-password").await;
    let body = app
        .change_password(&current, "wrong-password", "new-password")
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert_works(&app, &other, "nothing was revoked").await;
    assert!(logged_in(&app.login("careful", "right-password").await));
    let new = app.login("careful", "new-password").await;
    assert_eq!(error_code(&new), "UNAUTHENTICATED", "{new}");
}

#[tokio::test]
async fn change_password_validates_the_new_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "validating", "first-password").await;
    let token = app.token("validating", "first-password").await;
    for new in ["1234567".to_owned(), "p".repeat(257)] {
        let body = app.change_password(&token, "first-password", &new).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{} chars: {body}",
            new.len()
        );
        assert_eq!(error_field(&body), "newPassword", "{body}");
    }
    assert!(logged_in(&app.login("validating", "first-password").await));

    let body = app
        .change_password(&token, "first-password", "12345678")
        .await;
    assert!(body["errors"].is_null(), "8 characters are enough: {body}");
    let longest = "q".repeat(256);
    let body = app.change_password(&token, "12345678", &longest).await;
    assert!(
        body["errors"].is_null(),
        "256 characters are allowed: {body}"
    );
    assert!(logged_in(&app.login("validating", &longest).await));
}

#[tokio::test]
async fn change_password_is_forbidden_to_access_keys() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, key) = app.create_access_key_ok(&admin, json!({})).await;
    let body = app
        .change_password(&key, ADMIN_PASSWORD, "new-password")
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app
        .gql(
            None,
            "mutation { changePassword(input: {currentPassword: \"a\", newPassword: \"bbbbbbbb\"}) { agent { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(logged_in(&app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await));
}

#[tokio::test]
async fn set_agent_password_by_a_super_admin_revokes_every_token_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (_, agent_id) = customer(&app, &admin, "forgetful", "lost-password").await;
    let first = app.token("forgetful", "lost-password").await;
    let second = app.token("forgetful", "lost-password").await;
    for server in [&app, &replica] {
        assert_works(server, &first, "before").await;
        assert_works(server, &second, "before").await;
    }

    let body = app
        .set_agent_password(&admin, &agent_id, "reset-password")
        .await;
    assert_eq!(
        body["data"]["setAgentPassword"]["agent"]["id"],
        agent_id.as_str(),
        "{body}"
    );
    for (server, name) in [(&replica, "replica"), (&app, "app")] {
        assert_refused(server, &first, name).await;
        assert_refused(server, &second, name).await;
        assert_works(server, &admin, "the super admin's own token").await;
    }
    let old = app.login("forgetful", "lost-password").await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED", "{old}");
    let new = app.token("forgetful", "reset-password").await;
    assert_works(&replica, &new, "a token from the new password").await;
}

#[tokio::test]
async fn set_agent_password_by_a_customer_admin_is_limited_to_its_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "alpha", "alpha-password").await;
    let (_, beta_agent) = customer(&app, &admin, "beta", "beta-password").await;
    let manager_id = app.seed_agent("alpha", "alpha-manager", 64).await;
    let agent_id = app.seed_agent("alpha", "alpha-agent", 16).await;
    let alpha_admin = app.token("alpha", "alpha-password").await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;
    let admin_id = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await["data"]["login"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (token, target, who) in [
        (
            &alpha_admin,
            &beta_agent,
            "an admin, for another customer's agent",
        ),
        (&alpha_admin, &admin_id, "an admin, for a super admin"),
        (&manager, &agent_id, "a CUSTOMER_MANAGER"),
        (&agent, &manager_id, "a CUSTOMER_AGENT"),
    ] {
        let body = app
            .set_agent_password(token, target, "hijacked-password")
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
    }
    assert!(logged_in(&app.login("beta", "beta-password").await));
    assert!(logged_in(&app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await));
    assert_signed_in(&app, &manager, "refused resets revoke nothing").await;

    let body = app
        .set_agent_password(&alpha_admin, &manager_id, "manager-password")
        .await;
    assert_eq!(
        body["data"]["setAgentPassword"]["agent"]["id"],
        manager_id.as_str(),
        "{body}"
    );
    assert_refused(&app, &manager, "the manager's old token").await;
    assert!(logged_in(
        &app.login("alpha-manager", "manager-password").await
    ));
    assert_signed_in(&app, &agent, "another agent's token").await;
    assert_works(&app, &alpha_admin, "the admin's own token").await;
}

#[tokio::test]
async fn set_agent_password_rejects_unknown_agents_and_invalid_passwords() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, agent_id) = customer(&app, &admin, "target", "target-password").await;
    let unknown = app
        .set_agent_password(&admin, &uuid::Uuid::new_v4().to_string(), "valid-password")
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");
    for password in ["1234567".to_owned(), "p".repeat(257)] {
        let body = app.set_agent_password(&admin, &agent_id, &password).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{} chars: {body}",
            password.len()
        );
        assert_eq!(error_field(&body), "password", "{body}");
    }
    assert!(logged_in(&app.login("target", "target-password").await));
    let body = app
        .gql(
            None,
            "mutation($id: UUID!) { setAgentPassword(input: {agentId: $id, password: \"valid-password\"}) { agent { id } } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn delete_customer_revokes_its_tokens_and_keys_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (doomed, _) = customer(&app, &admin, "doomed", "doomed-password").await;
    let (survivor, _) = customer(&app, &admin, "survivor", "survivor-password").await;
    let token = app.token("doomed", "doomed-password").await;
    let (key_id, key) = app.create_access_key_ok(&token, json!({})).await;
    let survivor_token = app.token("survivor", "survivor-password").await;
    let (_, survivor_key) = app
        .create_access_key_ok(&admin, json!({ "customerId": survivor }))
        .await;
    for server in [&app, &replica] {
        for credential in [&token, &key, &survivor_token, &survivor_key] {
            assert_works(server, credential, "before").await;
        }
    }

    let body = app.delete_customer(&admin, &doomed).await;
    assert!(body["errors"].is_null(), "{body}");
    for (server, name) in [(&replica, "replica"), (&app, "app")] {
        assert_refused(server, &token, &format!("agent token, {name}")).await;
        assert_refused(server, &key, &format!("access key, {name}")).await;
        assert_works(server, &survivor_token, "another customer's token").await;
        assert_works(server, &survivor_key, "another customer's key").await;
    }
    let db = app.db.client().await;
    let key_deleted: bool = db
        .query_one(
            "SELECT tm_delete IS NOT NULL FROM access_keys WHERE id = $1::text::uuid",
            &[&key_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(key_deleted, "the customer's keys are soft-deleted with it");
    let login = app.login("doomed", "doomed-password").await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED", "{login}");
}

#[tokio::test]
async fn credential_check_costs_no_statement_on_a_warm_cache() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer_id, _) = customer(&app, &admin, "measured", "measured-password").await;
    let token = app.token("measured", "measured-password").await;
    let (key_id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer_id }))
        .await;
    // A process that has seen neither credential yet: its first request with
    // each is a cold one, whatever login or createAccessKey cached on `app`.
    let replica = app.replica().await;
    // Opening a pooled connection costs a statement too (its SET
    // statement_timeout): open a few first, so that only the credential
    // check and the resolver are counted, even when background work (the
    // tmLastUsed write) needs a second connection.
    let warm_up =
        (0..8).map(|_| replica.gql(Some(&admin), OWN_CUSTOMER, json!({ "id": customer_id })));
    for body in futures_util::future::join_all(warm_up).await {
        assert!(body["errors"].is_null(), "{body}");
    }
    let resolver = request_cost(&replica, &admin, &customer_id, None).await;

    let token_cold = request_cost(&replica, &token, &customer_id, None).await;
    let token_warm = request_cost(&replica, &token, &customer_id, None).await;
    let token_warm_again = request_cost(&replica, &token, &customer_id, None).await;
    assert_eq!(last_used(&replica, &key_id).await, None, "unused so far");
    let key_cold = request_cost(&replica, &key, &customer_id, Some(&key_id)).await;
    let first_use = last_used(&replica, &key_id).await;
    let key_warm = request_cost(&replica, &key, &customer_id, None).await;
    let key_warm_again = request_cost(&replica, &key, &customer_id, None).await;
    // A write the warm uses queued in the background could land after they
    // were counted: the first use of another key queues one after them, and
    // once it has landed, theirs would have too.
    let (fence_id, fence) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer_id }))
        .await;
    request_cost(&replica, &fence, &customer_id, Some(&fence_id)).await;
    assert_eq!(
        last_used(&replica, &key_id).await,
        first_use,
        "warm uses write no tmLastUsed"
    );
    println!(
        "customer(id) statements: resolver alone (warm super admin) {resolver}; \
         login token cold {token_cold}, warm {token_warm}/{token_warm_again}; \
         access key cold {key_cold}, warm {key_warm}/{key_warm_again}"
    );

    assert_eq!(resolver, 1, "customer(id) itself costs one statement");
    assert_eq!(
        (token_warm, token_warm_again),
        (resolver, resolver),
        "a warm login token costs no statement"
    );
    assert_eq!(
        (key_warm, key_warm_again),
        (resolver, resolver),
        "a warm access key costs no statement (and no tmLastUsed write)"
    );
    assert_eq!(
        token_cold,
        resolver + 1,
        "a cold login token costs one statement"
    );
    assert_eq!(
        key_cold,
        resolver + 2,
        "a cold access key costs its lookup and, on its first use, the tmLastUsed write"
    );
}

#[tokio::test]
async fn login_refuses_a_username_after_too_many_failures_until_the_window_passes() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_address = 100;
        c.login_failure_window_seconds = 1;
    })
    .await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "target", "target-password").await;
    for attempt in 0..3 {
        let body = app.login("target", &format!("guess-{attempt}")).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let refused = app.login("target", "target-password").await;
    assert!(
        !logged_in(&refused),
        "even the right password is refused: {refused}"
    );
    let seconds = retry_after(&refused);
    assert!(seconds <= 1, "no longer than the window: {refused}");
    let other = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(logged_in(&other), "other usernames are unaffected: {other}");

    tokio::time::sleep(Duration::from_millis(1_250)).await;
    let body = app.login("target", "target-password").await;
    assert!(logged_in(&body), "allowed again after the window: {body}");
}

#[tokio::test]
async fn login_counts_only_failures_within_the_sliding_window() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_address = 100;
        c.login_failure_window_seconds = 1;
    })
    .await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "patient", "patient-password").await;
    for attempt in 0..2 {
        let body = app.login("patient", &format!("early-{attempt}")).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    tokio::time::sleep(Duration::from_millis(1_250)).await;
    for attempt in 0..2 {
        let body = app.login("patient", &format!("late-{attempt}")).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = app.login("patient", "patient-password").await;
    assert!(
        logged_in(&body),
        "two failures in the window are under the limit of three: {body}"
    );
}

#[tokio::test]
async fn login_refuses_an_address_after_too_many_failures_across_usernames() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 4;
        c.login_failure_window_seconds = 60;
    })
    .await;
    for n in 0..4 {
        let body = app.login(&format!("sprayed-{n}"), "guess").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let refused = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(!logged_in(&refused), "{refused}");
    let seconds = retry_after(&refused);
    assert!(seconds <= 60, "no longer than the window: {refused}");
}

#[tokio::test]
async fn login_ignores_x_forwarded_for_unless_trusted() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 3;
        c.login_failure_window_seconds = 60;
    })
    .await;
    // An attacker cannot dodge the per-address limit by inventing addresses.
    for n in 0..3 {
        let body = app
            .login_from(&format!("192.0.2.{n}"), &format!("rotating-{n}"), "guess")
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let refused = app
        .login_from("192.0.2.200", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert!(!logged_in(&refused), "{refused}");
    retry_after(&refused);
}

#[tokio::test]
async fn login_limits_each_trusted_forwarded_address_separately() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 3;
        c.login_failure_window_seconds = 60;
        c.trust_forwarded_for = true;
    })
    .await;
    for n in 0..3 {
        let body = app
            .login_from("203.0.113.7", &format!("sprayed-{n}"), "guess")
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let refused = app
        .login_from("203.0.113.7", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert!(!logged_in(&refused), "{refused}");
    retry_after(&refused);
    let elsewhere = app
        .login_from("198.51.100.9", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert!(
        logged_in(&elsewhere),
        "another address is not limited: {elsewhere}"
    );
}

#[tokio::test]
async fn login_lockout_spares_an_address_that_logged_in_before() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_address = 100;
        c.login_failure_window_seconds = 60;
        c.trust_forwarded_for = true;
    })
    .await;
    let admin = app.admin_token().await;
    customer(&app, &admin, "victim", "victim-password").await;
    let before = app
        .login_from("198.51.100.9", "victim", "victim-password")
        .await;
    assert!(logged_in(&before), "{before}");

    for n in 0..5 {
        let body = app
            .login_from("203.0.113.7", "victim", &format!("guess-{n}"))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let attacker = app
        .login_from("203.0.113.7", "victim", "victim-password")
        .await;
    assert!(!logged_in(&attacker), "{attacker}");
    retry_after(&attacker);
    let stranger = app
        .login_from("192.0.2.55", "victim", "victim-password")
        .await;
    assert!(
        !logged_in(&stranger),
        "the username is limited for addresses it never logged in from: {stranger}"
    );
    retry_after(&stranger);

    let user = app
        .login_from("198.51.100.9", "victim", "victim-password")
        .await;
    assert!(
        logged_in(&user),
        "the real user's known address is not locked out: {user}"
    );
}

#[tokio::test]
async fn responses_and_logs_never_carry_keys_tokens_or_passwords() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unique = || uuid::Uuid::new_v4().simple().to_string();
    let (first, second, third, wrong) = (
        format!("pw1-{}", unique()),
        format!("pw2-{}", unique()),
        format!("pw3-{}", unique()),
        format!("wrong-{}", unique()),
    );

    let mut bodies: Vec<Value> = Vec::new();
    let created = app
        .create_customer(
            &admin,
            json!({ "username": "secretive", "password": first }),
        )
        .await;
    let agent_id = created["data"]["createCustomer"]["customer"]["guestAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    bodies.push(created);
    bodies.push(app.login("secretive", &wrong).await);
    let token = app.token("secretive", &first).await;

    let issued = app
        .create_access_key(&token, json!({ "name": "secret" }))
        .await;
    let key = issued["data"]["createAccessKey"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{issued}"))
        .to_owned();
    let key_id = issued["data"]["createAccessKey"]["accessKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The one response that carries the key carries no other secret.
    let text = issued.to_string();
    for secret in [&token, &admin, &first] {
        assert!(
            !text.contains(secret.as_str()),
            "secret in createAccessKey: {text}"
        );
    }
    assert!(!text.contains("$argon2"));

    bodies.push(app.gql(Some(&key), ME, json!({})).await);
    let list = "{ accessKeys { nodes { id name detail tokenPrefix tmExpire tmLastUsed } } }";
    bodies.push(app.gql(Some(&key), list, json!({})).await);
    bodies.push(app.gql(Some(&token), list, json!({})).await);
    bodies.push(app.change_password(&token, &wrong, &second).await);
    bodies.push(
        app.change_password(&token, &first, &format!("{second}{}", "x".repeat(300)))
            .await,
    );
    bodies.push(app.change_password(&token, &first, &second).await);
    bodies.push(
        app.set_agent_password(&admin, &agent_id, &format!("{third}{}", "x".repeat(300)))
            .await,
    );
    bodies.push(app.set_agent_password(&admin, &agent_id, &third).await);
    let later = app.token("secretive", &third).await;
    bodies.push(app.gql(Some(&later), ME, json!({})).await);
    bodies.push(app.logout(&later).await);
    bodies.push(app.gql(Some(&later), ME, json!({})).await);
    bodies.push(app.delete_access_key(&admin, &key_id).await);
    bodies.push(app.gql(Some(&key), ME, json!({})).await);

    let secrets = [
        ("access key", key[10..].to_owned()),
        ("login token", token.clone()),
        ("later login token", later.clone()),
        ("admin token", admin.clone()),
        ("first password", first.clone()),
        ("second password", second.clone()),
        ("third password", third.clone()),
        ("wrong password", wrong.clone()),
        ("password hash", "$argon2".to_owned()),
    ];
    for body in &bodies {
        let text = body.to_string();
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
