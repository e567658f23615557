//! Revoking credentials (logout, password changes and resets, deleting a
//! customer) holds on every server process from the moment the revoking
//! request answers, even when a replica cannot hear of it.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Proxy, TestApp, captured_logs, error_code, eventually, sql_count};

#[tokio::test]
async fn logout_revokes_only_the_token_used_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "leaver", "leaver-password")
        .await;
    let first = app.token("leaver", "leaver-password").await;
    let second = app.token("leaver", "leaver-password").await;
    let third = app.token("leaver", "leaver-password").await;
    assert_ne!(first, second, "every login issues a token of its own");
    assert_ne!(second, third);
    for server in [&app, &replica] {
        for token in [&first, &second, &third] {
            server.assert_accepted(token, "before logout").await;
        }
    }

    let body = app.logout(&first).await;
    assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
    replica
        .assert_refused(&first, "logged out, on the replica")
        .await;
    app.assert_refused(&first, "logged out, on the app").await;
    let again = app.logout(&first).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED", "{again}");

    let body = replica.logout(&second).await;
    assert_eq!(body["data"]["logout"]["revoked"], true, "{body}");
    app.assert_refused(&second, "logged out on the replica, on the app")
        .await;
    replica
        .assert_refused(&second, "logged out on the replica")
        .await;

    for server in [&app, &replica] {
        server
            .assert_accepted(&third, "another token of the same agent")
            .await;
        server
            .assert_accepted(&admin, "another agent's token")
            .await;
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
    app.create_customer_ok(&admin, "stalls", "stalls-password")
        .await;
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
        stalled
            .assert_accepted(revoked, "before the revocation")
            .await;
        stalled
            .assert_accepted(&admin, "before the revocation")
            .await;
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
        stalled
            .assert_refused(
                revoked,
                &format!("revoked by {revoke}, on the stalled replica"),
            )
            .await;
        // The replica still serves every live credential, from the database.
        stalled
            .assert_accepted(&admin, "a live token on the stalled replica")
            .await;
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
    app.create_customer_ok(&admin, "acked", "acked-password")
        .await;
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
                app.assert_refused(&to_log_out, "logged out").await;
            }
            _ => {
                app.assert_login_works("acked", "acked-password-2", "the new password")
                    .await;
                app.assert_accepted(&to_keep, "the token that changed the password")
                    .await;
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
    let (_, agent_id) = app
        .create_customer_with_guest(&admin, "changer", "old-password")
        .await;
    let current = app.token("changer", "old-password").await;
    let other = app.token("changer", "old-password").await;
    assert_ne!(current, other);
    for server in [&app, &replica] {
        server.assert_accepted(&current, "before").await;
        server.assert_accepted(&other, "before").await;
    }

    let body = app
        .change_password(&current, "old-password", "new-password")
        .await;
    assert_eq!(
        body["data"]["changePassword"]["agent"]["id"],
        agent_id.as_str(),
        "{body}"
    );
    replica.assert_refused(&other, "other token, replica").await;
    app.assert_refused(&other, "other token, app").await;
    replica
        .assert_accepted(&current, "the caller's own token, replica")
        .await;
    app.assert_accepted(&current, "the caller's own token, app")
        .await;
    replica
        .assert_accepted(&admin, "another agent's token")
        .await;

    app.assert_login_refused("changer", "old-password", "the old password")
        .await;
    let new = app.token("changer", "new-password").await;
    replica
        .assert_accepted(&new, "a token from the new password")
        .await;
}

#[tokio::test]
async fn set_agent_password_by_a_super_admin_revokes_every_token_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let (_, agent_id) = app
        .create_customer_with_guest(&admin, "forgetful", "lost-password")
        .await;
    let first = app.token("forgetful", "lost-password").await;
    let second = app.token("forgetful", "lost-password").await;
    for server in [&app, &replica] {
        server.assert_accepted(&first, "before").await;
        server.assert_accepted(&second, "before").await;
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
        server.assert_refused(&first, name).await;
        server.assert_refused(&second, name).await;
        server
            .assert_accepted(&admin, "the super admin's own token")
            .await;
    }
    app.assert_login_refused("forgetful", "lost-password", "the old password")
        .await;
    let new = app.token("forgetful", "reset-password").await;
    replica
        .assert_accepted(&new, "a token from the new password")
        .await;
}

/// The token is issued by the replica and the customer deleted through it:
/// the other process must refuse at its very next request.
#[tokio::test]
async fn delete_customer_revokes_its_tokens_and_keys_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let doomed = app
        .create_customer_ok(&admin, "doomed", "doomed-password")
        .await;
    let survivor = app
        .create_customer_ok(&admin, "survivor", "survivor-password")
        .await;
    let token = replica.token("doomed", "doomed-password").await;
    let (key_id, key) = app.create_access_key_ok(&token, json!({})).await;
    let survivor_token = app.token("survivor", "survivor-password").await;
    let (_, survivor_key) = app
        .create_access_key_ok(&admin, json!({ "customerId": survivor }))
        .await;
    for server in [&app, &replica] {
        for credential in [&token, &key, &survivor_token, &survivor_key] {
            server.assert_accepted(credential, "before").await;
        }
    }

    let body = replica.delete_customer(&admin, &doomed).await;
    assert!(body["errors"].is_null(), "{body}");
    for (server, name) in [(&app, "app"), (&replica, "replica")] {
        server
            .assert_refused(&token, &format!("agent token, {name}"))
            .await;
        server
            .assert_refused(&key, &format!("access key, {name}"))
            .await;
        server
            .assert_accepted(&survivor_token, "another customer's token")
            .await;
        server
            .assert_accepted(&survivor_key, "another customer's key")
            .await;
    }
    let soft_deleted = app
        .count(
            "SELECT count(*) FROM access_keys WHERE id = $1::text::uuid AND tm_delete IS NOT NULL",
            &[&key_id],
        )
        .await;
    assert_eq!(
        soft_deleted, 1,
        "the customer's keys are soft-deleted with it"
    );
    app.assert_login_refused("doomed", "doomed-password", "a deleted agent")
        .await;
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
    let creating = app.spawn_gql(Some(&admin), &format!("mutation {{ {fields} }}"), json!({}));
    // The first field is held at its insert, past its credential check.
    app.until_statements_wait_on_locks(1).await;
    let logout = app.logout(&admin).await;
    assert_eq!(logout["data"]["logout"]["revoked"], true, "{logout}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let body = creating.await.unwrap();
    let created = sql_count(
        &blocker,
        "SELECT count(*) FROM customers WHERE username LIKE 'late-%'",
        &[],
    )
    .await;
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
