//! changePassword and setAgentPassword: who may change whose password, and
//! what a new password must be. (What a change revokes is in
//! `revocation.rs`; changes racing each other are in `races.rs`.)

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, ME, TestApp, error_code, error_field};

/// For agents without CUSTOMER_ADMIN, who may not run `PROBE`: `me` works.
async fn assert_signed_in(server: &TestApp, credential: &str, what: &str) {
    let body = server.gql(Some(credential), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{what}: {body}");
    assert!(
        body["data"]["me"]["agent"]["id"].is_string(),
        "{what}: {body}"
    );
}

async fn admin_id(app: &TestApp) -> String {
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    body["data"]["login"]["agent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_owned()
}

#[tokio::test]
async fn change_password_refuses_a_wrong_current_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "careful", "right-password")
        .await;
    let current = app.token("careful", "right-password").await;
    let other = app.token("careful", "right-password").await;
    let body = app
        .change_password(&current, "wrong-password", "new-password")
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    app.assert_accepted(&other, "nothing was revoked").await;
    app.assert_login_works("careful", "right-password", "the unchanged password")
        .await;
    app.assert_login_refused("careful", "new-password", "the refused password")
        .await;
}

#[tokio::test]
async fn change_password_validates_the_new_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "validating", "first-password")
        .await;
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
    app.assert_login_works("validating", "first-password", "the unchanged password")
        .await;

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
    app.assert_login_works("validating", &longest, "the longest password")
        .await;
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
    app.assert_login_works(ADMIN_USERNAME, ADMIN_PASSWORD, "the unchanged password")
        .await;
}

#[tokio::test]
async fn set_agent_password_by_a_customer_admin_is_limited_to_its_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "alpha", "alpha-password")
        .await;
    let (_, beta_agent) = app
        .create_customer_with_guest(&admin, "beta", "beta-password")
        .await;
    let manager_id = app.seed_agent("alpha", "alpha-manager", 64).await;
    let agent_id = app.seed_agent("alpha", "alpha-agent", 16).await;
    let alpha_admin = app.token("alpha", "alpha-password").await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;
    let admin_id = admin_id(&app).await;

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
    app.assert_login_works("beta", "beta-password", "beta's password")
        .await;
    app.assert_login_works(ADMIN_USERNAME, ADMIN_PASSWORD, "admin's password")
        .await;
    assert_signed_in(&app, &manager, "refused resets revoke nothing").await;

    let body = app
        .set_agent_password(&alpha_admin, &manager_id, "manager-password")
        .await;
    assert_eq!(
        body["data"]["setAgentPassword"]["agent"]["id"],
        manager_id.as_str(),
        "{body}"
    );
    app.assert_refused(&manager, "the manager's old token")
        .await;
    app.assert_login_works("alpha-manager", "manager-password", "the reset")
        .await;
    assert_signed_in(&app, &agent, "another agent's token").await;
    app.assert_accepted(&alpha_admin, "the admin's own token")
        .await;
}

#[tokio::test]
async fn set_agent_password_rejects_unknown_agents_and_invalid_passwords() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, agent_id) = app
        .create_customer_with_guest(&admin, "target", "target-password")
        .await;
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
    app.assert_login_works("target", "target-password", "the unchanged password")
        .await;
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
async fn only_super_admins_set_a_super_admins_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = admin_id(&app).await;
    // Platform agents, all with admin's password: a CUSTOMER_ADMIN of the
    // platform's customer, a second super admin, and a plain agent.
    app.seed_agent(ADMIN_USERNAME, "platform-admin", 32).await;
    let root = app.seed_agent(ADMIN_USERNAME, "root2", 1 | 32).await;
    let plain = app.seed_agent(ADMIN_USERNAME, "platform-agent", 16).await;
    let platform_admin = app.token("platform-admin", ADMIN_PASSWORD).await;

    for target in [&admin_id, &root] {
        let hash = app.password_hash(target).await;
        let body = app
            .set_agent_password(&platform_admin, target, "taken-over-1")
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(app.password_hash(target).await, hash, "unchanged");
    }
    let me = app.gql(Some(&admin), ME, json!({})).await;
    assert_eq!(
        me["data"]["me"]["agent"]["id"], admin_id,
        "admin's session survives: {me}"
    );
    app.assert_login_works(ADMIN_USERNAME, ADMIN_PASSWORD, "admin's password")
        .await;
    app.assert_login_refused(ADMIN_USERNAME, "taken-over-1", "the refused password")
        .await;
    app.assert_login_works("root2", ADMIN_PASSWORD, "root2's password")
        .await;

    // The same admin resets an agent of its customer that is no super admin.
    let body = app
        .set_agent_password(&platform_admin, &plain, "plain-password-1")
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["setAgentPassword"]["agent"]["id"], plain,
        "{body}"
    );
    app.assert_login_works("platform-agent", "plain-password-1", "the reset")
        .await;
    app.assert_login_refused("platform-agent", ADMIN_PASSWORD, "the old one")
        .await;

    // And a super admin may reset a super admin's.
    let body = app
        .set_agent_password(&admin, &root, "root-password-1")
        .await;
    assert!(body["errors"].is_null(), "{body}");
    app.assert_login_works("root2", "root-password-1", "root2's reset")
        .await;
}
