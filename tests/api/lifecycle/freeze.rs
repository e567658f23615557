//! `freezeCustomer` and `recoverCustomer` over GraphQL: what a freeze does to
//! a customer's credentials on every replica, what it leaves alone, what a
//! recovery brings back (a soft-deleted customer too, within
//! `CUSTOMER_RESTORE_DAYS`), who may do either, and races with updates and
//! deletes.

use serde_json::{Value, json};

use super::{Customer, UPDATE, customer, update, updated};
use crate::harness::{ME, TestApp, error_code, unique};

const FIELDS: &str = "id username name detail status tmFreeze tmUpdate tmDelete";

fn freeze_query() -> String {
    format!(
        "mutation($id: UUID!) {{ freezeCustomer(input: {{id: $id}}) {{ customer {{ {FIELDS} }} }} }}"
    )
}

fn recover_query() -> String {
    format!(
        "mutation($id: UUID!) {{ recoverCustomer(input: {{id: $id}}) {{ customer {{ {FIELDS} }} }} }}"
    )
}

async fn freeze(app: &TestApp, token: Option<&str>, id: &str) -> Value {
    app.gql(token, &freeze_query(), json!({ "id": id })).await
}

async fn recover(app: &TestApp, token: Option<&str>, id: &str) -> Value {
    app.gql(token, &recover_query(), json!({ "id": id })).await
}

fn frozen(body: &Value) -> &Value {
    let customer = &body["data"]["freezeCustomer"]["customer"];
    assert!(customer.is_object(), "freezeCustomer failed: {body}");
    customer
}

fn recovered(body: &Value) -> &Value {
    let customer = &body["data"]["recoverCustomer"]["customer"];
    assert!(customer.is_object(), "recoverCustomer failed: {body}");
    customer
}

/// The customer as a super admin reads it.
async fn read(app: &TestApp, admin: &str, id: &str) -> Value {
    let body = app
        .gql(
            Some(admin),
            &format!("query($id: UUID!) {{ customer(id: $id) {{ {FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert!(body["data"]["customer"].is_object(), "{body}");
    body["data"]["customer"].clone()
}

/// `me` works for any agent (plain agents and managers included).
async fn assert_me_works(app: &TestApp, token: &str, what: &str) {
    let body = app.gql(Some(token), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{what}: {body}");
    assert!(
        body["data"]["me"]["customer"]["id"].is_string(),
        "{what}: {body}"
    );
}

async fn assert_me_refused(app: &TestApp, token: &str, what: &str) {
    let body = app.gql(Some(token), ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
}

/// Every credential of `c` works on `app`.
async fn assert_all_accepted(app: &TestApp, c: &Customer, what: &str) {
    app.assert_accepted(&c.admin, &format!("{what}: admin token"))
        .await;
    app.assert_accepted(&c.key, &format!("{what}: access key"))
        .await;
    assert_me_works(app, &c.agent, &format!("{what}: agent token")).await;
    assert_me_works(app, &c.manager, &format!("{what}: manager token")).await;
}

/// Every credential of `c` is refused on `app`.
async fn assert_all_refused(app: &TestApp, c: &Customer, what: &str) {
    app.assert_refused(&c.admin, &format!("{what}: admin token"))
        .await;
    app.assert_refused(&c.key, &format!("{what}: access key"))
        .await;
    assert_me_refused(app, &c.agent, &format!("{what}: agent token")).await;
    assert_me_refused(app, &c.manager, &format!("{what}: manager token")).await;
}

const PASSWORD: &str = "a-long-password";

#[tokio::test]
async fn a_freeze_refuses_every_credential_on_every_replica_and_deletes_nothing() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "frz").await;
    let other = customer(&app, &admin, "frzo").await;

    // Accepted first on both servers, so that both have them cached.
    assert_all_accepted(&app, &c, "before, here").await;
    assert_all_accepted(&replica, &c, "before, on the replica").await;

    let body = freeze(&app, Some(&admin), &c.id).await;
    let row = frozen(&body);
    assert_eq!(row["id"], c.id.as_str());
    assert_eq!(row["status"], "FROZEN", "{body}");
    assert!(row["tmFreeze"].is_string(), "{body}");
    assert!(row["tmUpdate"].is_string(), "{body}");
    assert_eq!(row["tmDelete"], Value::Null, "{body}");

    // At once, with no waiting: the freeze answered after every server forgot.
    assert_all_refused(&replica, &c, "frozen, on the replica").await;
    assert_all_refused(&app, &c, "frozen, here").await;
    for username in [c.username.clone(), format!("{}.agent", c.username)] {
        app.assert_login_refused(&username, PASSWORD, "frozen login")
            .await;
        replica
            .assert_login_refused(&username, PASSWORD, "frozen login on the replica")
            .await;
    }
    let rest = crate::harness::send(
        replica
            .http()
            .get(format!("{}/v1.0/customer", replica.address))
            .bearer_auth(&c.key),
    )
    .await;
    assert_eq!(rest.status, 401, "REST refuses too: {:?}", rest.body);

    // Another customer is untouched.
    assert_all_accepted(&replica, &other, "other customer").await;

    // Nothing was deleted or revoked.
    let live_agents = app
        .count(
            "SELECT count(*) FROM agents WHERE customer_id = $1::text::uuid AND tm_delete IS NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(live_agents, 3, "guest, agent and manager stay");
    let live_keys = app
        .count(
            "SELECT count(*) FROM access_keys WHERE customer_id = $1::text::uuid AND tm_delete IS NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(live_keys, 1);
    let revoked = app
        .count(
            "SELECT count(*) FROM sessions s JOIN agents a ON a.id = s.agent_id
             WHERE a.customer_id = $1::text::uuid AND s.tm_revoke IS NOT NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(revoked, 0, "no login session is revoked by a freeze");

    // Its own admin can no longer change it; a super admin still reads and
    // updates it, and it stays frozen.
    let body = update(&app, Some(&c.admin), json!({ "id": c.id, "name": "mine" })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let body = update(&app, Some(&c.key), json!({ "name": "mine" })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let body = update(
        &app,
        Some(&admin),
        json!({ "id": c.id, "name": "by admin" }),
    )
    .await;
    assert_eq!(updated(&body)["name"], "by admin");
    let now = read(&replica, &admin, &c.id).await;
    assert_eq!(now["status"], "FROZEN");
    assert_eq!(now["name"], "by admin");
    assert_eq!(
        now["tmFreeze"], row["tmFreeze"],
        "an update does not move tmFreeze"
    );
}

#[tokio::test]
async fn freezing_a_frozen_customer_returns_it_unchanged() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_customer_ok(&admin, &unique("twice"), PASSWORD)
        .await;
    let body = freeze(&app, Some(&admin), &id).await;
    let first = frozen(&body).clone();
    let body = freeze(&app, Some(&admin), &id).await;
    let second = frozen(&body);
    assert_eq!(&first, second, "the second freeze changed nothing");
    assert_eq!(read(&app, &admin, &id).await, first);
}

#[tokio::test]
async fn recovering_a_frozen_customer_lets_its_old_credentials_in_again_everywhere() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "rcv").await;
    // A key never used before the freeze, tried only while frozen.
    let guest = app.token(&c.username, PASSWORD).await;
    let (_, fresh_key) = app
        .create_access_key_ok(&guest, json!({ "name": "fresh" }))
        .await;
    assert_all_accepted(&replica, &c, "before").await;

    let body = freeze(&app, Some(&admin), &c.id).await;
    let at_freeze = frozen(&body).clone();
    // Tried while frozen, on both servers: refused, and must not be
    // remembered as a key that does not exist.
    for server in [&app, &replica] {
        assert_all_refused(server, &c, "frozen").await;
        server.assert_refused(&fresh_key, "fresh key, frozen").await;
        server
            .assert_refused(&fresh_key, "fresh key, frozen, again")
            .await;
    }

    let body = recover(&app, Some(&admin), &c.id).await;
    let row = recovered(&body);
    assert_eq!(row["status"], "ACTIVE", "{body}");
    assert_eq!(row["tmFreeze"], Value::Null, "{body}");
    assert_eq!(row["tmDelete"], Value::Null, "{body}");
    assert!(
        row["tmUpdate"].as_str() > at_freeze["tmUpdate"].as_str(),
        "tmUpdate advances: {body} after {at_freeze}"
    );

    for server in [&app, &replica] {
        assert_all_accepted(server, &c, "recovered").await;
        server
            .assert_accepted(&fresh_key, "fresh key, recovered")
            .await;
        server
            .assert_accepted(&guest, "token issued before the freeze")
            .await;
        server
            .assert_login_works(&c.username, PASSWORD, "recovered login")
            .await;
    }
    let body = update(
        &app,
        Some(&c.admin),
        json!({ "id": c.id, "detail": "mine again" }),
    )
    .await;
    assert_eq!(updated(&body)["detail"], "mine again");

    // Recovering an active customer returns it unchanged.
    let before = read(&app, &admin, &c.id).await;
    let body = recover(&app, Some(&admin), &c.id).await;
    assert_eq!(recovered(&body), &before, "{body}");
}

#[tokio::test]
async fn who_may_freeze_and_recover() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "pfa").await;
    let b = customer(&app, &admin, "pfb").await;
    let target = app
        .create_customer_ok(&admin, &unique("pft"), PASSWORD)
        .await;

    let refused: [(&str, Option<&str>, &str); 11] = [
        ("own admin", Some(a.admin.as_str()), "FORBIDDEN"),
        ("own access key", Some(a.key.as_str()), "FORBIDDEN"),
        ("own plain agent", Some(a.agent.as_str()), "FORBIDDEN"),
        ("own manager", Some(a.manager.as_str()), "FORBIDDEN"),
        (
            "other customer's admin",
            Some(b.admin.as_str()),
            "FORBIDDEN",
        ),
        ("other customer's key", Some(b.key.as_str()), "FORBIDDEN"),
        (
            "other customer's agent",
            Some(b.agent.as_str()),
            "FORBIDDEN",
        ),
        (
            "other customer's manager",
            Some(b.manager.as_str()),
            "FORBIDDEN",
        ),
        ("no credential", None, "UNAUTHENTICATED"),
        ("made-up key", Some("vb_not-a-real-key"), "UNAUTHENTICATED"),
        ("made-up token", Some("a.b.c"), "UNAUTHENTICATED"),
    ];
    // Freezing `a` (as its own people would freeze themselves) and `target`.
    for (what, token, code) in refused {
        for id in [&a.id, &target] {
            let body = freeze(&app, token, id).await;
            assert_eq!(error_code(&body), code, "freeze by {what}: {body}");
            assert!(body["data"].is_null(), "{what}: {body}");
        }
    }
    assert_eq!(read(&app, &admin, &a.id).await["status"], "ACTIVE");
    assert_eq!(read(&app, &admin, &target).await["status"], "ACTIVE");
    assert_all_accepted(&app, &a, "after refused freezes").await;

    let body = freeze(&app, Some(&admin), &target).await;
    assert_eq!(frozen(&body)["status"], "FROZEN");
    // Recovering the frozen `target`: nobody but a super admin.
    for (what, token, code) in refused {
        let body = recover(&app, token, &target).await;
        assert_eq!(error_code(&body), code, "recover by {what}: {body}");
    }
    assert_eq!(read(&app, &admin, &target).await["status"], "FROZEN");

    // A frozen customer's own people cannot recover it: their credentials
    // no longer work at all.
    let body = freeze(&app, Some(&admin), &a.id).await;
    frozen(&body);
    for (what, token) in [
        ("admin", &a.admin),
        ("key", &a.key),
        ("manager", &a.manager),
    ] {
        let body = recover(&app, Some(token), &a.id).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    }
    assert_eq!(read(&app, &admin, &a.id).await["status"], "FROZEN");

    // Recovering a deleted customer is a super admin's too.
    let deleted = app
        .create_customer_ok(&admin, &unique("pfd"), PASSWORD)
        .await;
    app.delete_customer(&admin, &deleted).await;
    for (what, token) in [("other admin", &b.admin), ("other key", &b.key)] {
        let body = recover(&app, Some(token), &deleted).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{what}: {body}");
    }
    assert_eq!(read(&app, &admin, &deleted).await["status"], "DELETED");

    for id in [&target, &a.id, &deleted] {
        let body = recover(&app, Some(&admin), id).await;
        assert_eq!(recovered(&body)["status"], "ACTIVE", "{body}");
    }
}

#[tokio::test]
async fn what_cannot_be_frozen_or_recovered() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let platform = app.own_customer_id(&admin).await;

    let body = freeze(&app, Some(&admin), &platform).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.assert_accepted(&admin, "the platform is not frozen")
        .await;
    assert_eq!(read(&app, &admin, &platform).await["status"], "ACTIVE");
    // Recovering the (active) platform customer changes nothing.
    let before = read(&app, &admin, &platform).await;
    let body = recover(&app, Some(&admin), &platform).await;
    assert_eq!(recovered(&body), &before, "{body}");

    let missing = uuid::Uuid::new_v4().to_string();
    for body in [
        freeze(&app, Some(&admin), &missing).await,
        recover(&app, Some(&admin), &missing).await,
    ] {
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }

    let deleted = app
        .create_customer_ok(&admin, &unique("gone"), PASSWORD)
        .await;
    app.delete_customer(&admin, &deleted).await;
    let before = read(&app, &admin, &deleted).await;
    let body = freeze(&app, Some(&admin), &deleted).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let after = read(&app, &admin, &deleted).await;
    assert_eq!(after, before, "a refused freeze changes nothing");
    assert_eq!(after["tmFreeze"], Value::Null);

    // Not a UUID: refused before any service code runs.
    let body = app
        .gql(
            Some(&admin),
            "mutation { freezeCustomer(input: {id: \"nope\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    assert!(
        body["data"].is_null() && body["errors"].is_array(),
        "{body}"
    );
}

#[tokio::test]
async fn recovering_a_deleted_customer_restores_what_was_deleted_with_it() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "rst").await;
    let client = app.db.client().await;

    // Deleted on their own, before the customer: they stay deleted.
    let gone_agent = format!("{}.gone", c.username);
    app.seed_agent(&c.username, &gone_agent, 16).await;
    client
        .execute(
            "UPDATE agents SET tm_delete = now() - interval '1 hour' WHERE username = $1",
            &[&gone_agent],
        )
        .await
        .unwrap();
    let (gone_key_id, gone_key) = app
        .create_access_key_ok(&c.admin, json!({ "name": "revoked" }))
        .await;
    let body = app.delete_access_key(&c.admin, &gone_key_id).await;
    assert!(body["errors"].is_null(), "{body}");

    assert_all_accepted(&replica, &c, "before").await;
    let body = app.delete_customer(&admin, &c.id).await;
    let deleted_at = body["data"]["deleteCustomer"]["customer"]["tmUpdate"].clone();
    assert!(deleted_at.is_string(), "{body}");
    assert_all_refused(&replica, &c, "deleted").await;
    app.assert_login_refused(&c.username, PASSWORD, "deleted")
        .await;

    let body = recover(&app, Some(&admin), &c.id).await;
    let row = recovered(&body);
    assert_eq!(row["status"], "ACTIVE", "{body}");
    assert_eq!(row["tmDelete"], Value::Null, "{body}");
    assert_eq!(row["username"], c.username.as_str());
    assert!(
        row["tmUpdate"].as_str() > deleted_at.as_str(),
        "tmUpdate advances past the delete's: {body}"
    );

    for server in [&app, &replica] {
        // The access key deleted with the customer works again.
        server.assert_accepted(&c.key, "restored key").await;
        // Login sessions revoked by the delete stay revoked...
        server.assert_refused(&c.admin, "old admin token").await;
        assert_me_refused(server, &c.agent, "old agent token").await;
        assert_me_refused(server, &c.manager, "old manager token").await;
        // ...but the agents log in afresh.
        for username in [
            c.username.clone(),
            format!("{}.agent", c.username),
            format!("{}.manager", c.username),
        ] {
            server
                .assert_login_works(&username, PASSWORD, "restored agent")
                .await;
        }
        // What was deleted before the customer stays deleted.
        server
            .assert_refused(&gone_key, "key revoked on its own")
            .await;
        server
            .assert_login_refused(&gone_agent, PASSWORD, "agent deleted on its own")
            .await;
    }
    let fresh = app.token(&c.username, PASSWORD).await;
    let body = update(&app, Some(&fresh), json!({ "detail": "back" })).await;
    assert_eq!(updated(&body)["detail"], "back");

    let listed = app
        .gql(
            Some(&admin),
            "{ customers(first: 100) { nodes { id status } totalCount } }",
            json!({}),
        )
        .await;
    let nodes = listed["data"]["customers"]["nodes"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .any(|n| n["id"] == c.id.as_str() && n["status"] == "ACTIVE"),
        "listed again: {listed}"
    );
    assert_eq!(
        listed["data"]["customers"]["totalCount"],
        json!(nodes.len()),
        "{listed}"
    );
}

#[tokio::test]
async fn a_customer_deleted_longer_ago_than_the_retention_is_not_restored() {
    let app = TestApp::spawn_with(|config| config.customer_restore_days = 0).await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "late").await;
    app.delete_customer(&admin, &c.id).await;
    let before = read(&app, &admin, &c.id).await;

    let body = recover(&app, Some(&admin), &c.id).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(read(&app, &admin, &c.id).await, before, "nothing changed");
    app.assert_refused(&c.key, "key of the unrestored customer")
        .await;
    app.assert_login_refused(&c.username, PASSWORD, "unrestored")
        .await;
}

#[tokio::test]
async fn the_default_retention_is_thirty_days() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let recent = customer(&app, &admin, "d29").await;
    let old = customer(&app, &admin, "d31").await;
    for c in [&recent, &old] {
        app.delete_customer(&admin, &c.id).await;
    }
    // Move each deletion back in time, keeping what was deleted with it
    // (its agents and keys share its tm_delete).
    let client = app.db.client().await;
    for (c, days) in [(&recent, 29), (&old, 31)] {
        let shift = format!("{days} days");
        for table in ["customers", "agents", "access_keys"] {
            let column = if table == "customers" {
                "id"
            } else {
                "customer_id"
            };
            client
                .execute(
                    &format!(
                        "UPDATE {table} SET tm_delete = tm_delete - $2::text::interval
                         WHERE {column} = $1::text::uuid AND tm_delete IS NOT NULL"
                    ),
                    &[&c.id, &shift],
                )
                .await
                .unwrap();
        }
    }
    let body = recover(&app, Some(&admin), &old.id).await;
    assert_eq!(error_code(&body), "CONFLICT", "31 days: {body}");
    assert_eq!(read(&app, &admin, &old.id).await["status"], "DELETED");

    let body = recover(&app, Some(&admin), &recent.id).await;
    assert_eq!(recovered(&body)["status"], "ACTIVE", "29 days: {body}");
    app.assert_accepted(&recent.key, "restored after 29 days")
        .await;
}

#[tokio::test]
async fn a_restore_whose_username_was_taken_meanwhile_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "taken").await;
    app.delete_customer(&admin, &c.id).await;
    let before = read(&app, &admin, &c.id).await;

    // Case-insensitively the same username, now a live customer's.
    let newcomer = app
        .create_customer_ok(&admin, &c.username.to_uppercase(), "another-password")
        .await;
    let body = recover(&app, Some(&admin), &c.id).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(read(&app, &admin, &c.id).await, before, "nothing changed");
    let live = app
        .count(
            "SELECT count(*) FROM agents WHERE customer_id = $1::text::uuid AND tm_delete IS NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(live, 0, "no agent of the old customer was restored");
    app.assert_refused(&c.key, "the old customer's key").await;
    app.assert_login_works(
        &c.username,
        "another-password",
        "the newcomer keeps its login",
    )
    .await;
    app.assert_login_refused(
        &format!("{}.agent", c.username),
        PASSWORD,
        "old agent not restored",
    )
    .await;
    assert_eq!(read(&app, &admin, &newcomer).await["status"], "ACTIVE");
}

#[tokio::test]
async fn a_restore_whose_agents_username_was_taken_meanwhile_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "agtaken").await;
    app.delete_customer(&admin, &c.id).await;
    let before = read(&app, &admin, &c.id).await;

    // The old customer's plain agent's username is now a new customer's
    // (and its guest agent's).
    let agent_name = format!("{}.agent", c.username);
    app.create_customer_ok(&admin, &agent_name, "another-password")
        .await;
    let body = recover(&app, Some(&admin), &c.id).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(read(&app, &admin, &c.id).await, before, "nothing changed");
    let live = app
        .count(
            "SELECT count(*) FROM agents WHERE customer_id = $1::text::uuid AND tm_delete IS NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(live, 0, "no agent of the old customer was restored");
    app.assert_refused(&c.key, "the old customer's key").await;
    app.assert_login_refused(&c.username, PASSWORD, "old guest not restored")
        .await;
    app.assert_login_works(&agent_name, "another-password", "the newcomer")
        .await;
}

#[tokio::test]
async fn a_frozen_customer_deleted_and_recovered_comes_back_active() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "fdel").await;
    frozen(&freeze(&app, Some(&admin), &c.id).await);
    let body = app.delete_customer(&admin, &c.id).await;
    assert!(body["errors"].is_null(), "{body}");
    let row = read(&app, &admin, &c.id).await;
    assert_eq!(row["status"], "DELETED", "deleted wins over frozen");
    assert!(row["tmFreeze"].is_string());

    let body = recover(&app, Some(&admin), &c.id).await;
    let row = recovered(&body);
    assert_eq!(row["status"], "ACTIVE", "{body}");
    assert_eq!(row["tmFreeze"], Value::Null, "{body}");
    app.assert_accepted(&c.key, "restored and unfrozen key")
        .await;
}

/// Holds the customer's row lock in a transaction of its own, as a slow
/// writer would, so that requests queue behind it in a known order.
async fn hold_row_lock<'a>(
    client: &'a mut tokio_postgres::Client,
    id: &str,
) -> tokio_postgres::Transaction<'a> {
    let holding = client.transaction().await.unwrap();
    holding
        .execute(
            "SELECT 1 FROM customers WHERE id = $1::text::uuid FOR UPDATE",
            &[&id],
        )
        .await
        .unwrap();
    holding
}

#[tokio::test]
async fn an_own_update_queued_behind_a_freeze_is_refused_and_not_applied() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "qfrz").await;
    app.assert_accepted(&c.admin, "before").await;

    let mut client = app.db.client().await;
    let holding = hold_row_lock(&mut client, &c.id).await;
    let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": c.id }));
    app.until_statements_wait_on_locks(1).await;
    // Its credential is checked now, while the customer is not yet frozen.
    let updating = app.spawn_gql(
        Some(&c.admin),
        UPDATE,
        json!({ "input": { "id": c.id, "detail": "too late" } }),
    );
    app.until_statements_wait_on_locks(2).await;
    holding.rollback().await.unwrap();

    let body = freezing.await.unwrap();
    assert_eq!(frozen(&body)["status"], "FROZEN");
    let body = updating.await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let row = read(&app, &admin, &c.id).await;
    assert_eq!(row["detail"], "", "the refused update was not applied");
}

#[tokio::test]
async fn an_own_update_queued_before_a_freeze_is_applied_then_frozen() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "qupd").await;

    let mut client = app.db.client().await;
    let holding = hold_row_lock(&mut client, &c.id).await;
    let updating = app.spawn_gql(
        Some(&c.admin),
        UPDATE,
        json!({ "input": { "id": c.id, "detail": "in time" } }),
    );
    app.until_statements_wait_on_locks(1).await;
    let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": c.id }));
    app.until_statements_wait_on_locks(2).await;
    holding.rollback().await.unwrap();

    let body = updating.await.unwrap();
    let applied = updated(&body).clone();
    assert_eq!(applied["detail"], "in time");
    let body = freezing.await.unwrap();
    let row = frozen(&body);
    assert_eq!(row["detail"], "in time", "the freeze saw the update");
    assert!(
        applied["tmUpdate"].as_str() < row["tmFreeze"].as_str(),
        "the update came first: {applied} {row}"
    );
    app.assert_refused(&c.admin, "frozen after the update")
        .await;
}

/// Unsynchronised races: whatever the interleaving, the update either landed
/// before the freeze (and is kept) or was refused (and left no trace).
#[tokio::test]
async fn an_own_update_racing_a_freeze_has_one_clear_outcome() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "rfrz").await;
    let (mut applied, mut refused) = (0, 0);
    for round in 0..12 {
        let detail = format!("round {round}");
        let updating = app.spawn_gql(
            Some(&c.key),
            UPDATE,
            json!({ "input": { "id": c.id, "detail": detail } }),
        );
        let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": c.id }));
        let (update_body, freeze_body) = (updating.await.unwrap(), freezing.await.unwrap());
        let row = frozen(&freeze_body).clone();
        let now = read(&app, &admin, &c.id).await;
        assert_eq!(now["status"], "FROZEN", "round {round}");
        if update_body["errors"].is_null() {
            applied += 1;
            let done = updated(&update_body);
            assert_eq!(now["detail"], detail.as_str(), "round {round}: kept");
            assert!(
                done["tmUpdate"].as_str() < now["tmFreeze"].as_str(),
                "round {round}: applied before the freeze: {done} {now}"
            );
        } else {
            refused += 1;
            assert_eq!(
                error_code(&update_body),
                "UNAUTHENTICATED",
                "round {round}: {update_body}"
            );
            assert_ne!(now["detail"], detail.as_str(), "round {round}: not applied");
            assert_eq!(
                now["tmUpdate"], row["tmUpdate"],
                "round {round}: nothing after the freeze"
            );
        }
        recovered(&recover(&app, Some(&admin), &c.id).await);
    }
    println!("updates applied before the freeze: {applied}, refused: {refused}");
}

#[tokio::test]
async fn a_freeze_queued_behind_a_delete_is_not_found_and_the_customer_stays_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "qdel").await;

    let mut client = app.db.client().await;
    let holding = hold_row_lock(&mut client, &c.id).await;
    let deleting = app.spawn_gql(
        Some(&admin),
        "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id tmDelete } } }",
        json!({ "id": c.id }),
    );
    app.until_statements_wait_on_locks(1).await;
    let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": c.id }));
    app.until_statements_wait_on_locks(2).await;
    holding.rollback().await.unwrap();

    let body = deleting.await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let body = freezing.await.unwrap();
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let row = read(&app, &admin, &c.id).await;
    assert_eq!(row["status"], "DELETED");
    assert_eq!(
        row["tmFreeze"],
        Value::Null,
        "a deleted customer was not frozen"
    );
    assert_all_refused(&app, &c, "deleted").await;
}

#[tokio::test]
async fn a_delete_queued_behind_a_freeze_deletes_the_frozen_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "qfd").await;

    let mut client = app.db.client().await;
    let holding = hold_row_lock(&mut client, &c.id).await;
    let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": c.id }));
    app.until_statements_wait_on_locks(1).await;
    let deleting = app.spawn_gql(
        Some(&admin),
        "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id tmDelete } } }",
        json!({ "id": c.id }),
    );
    app.until_statements_wait_on_locks(2).await;
    holding.rollback().await.unwrap();

    frozen(&freezing.await.unwrap());
    let body = deleting.await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let row = read(&app, &admin, &c.id).await;
    assert_eq!(row["status"], "DELETED");
    assert!(row["tmFreeze"].is_string());
    assert_all_refused(&app, &c, "frozen and deleted").await;
    let unrevoked = app
        .count(
            "SELECT count(*) FROM sessions s JOIN agents a ON a.id = s.agent_id
             WHERE a.customer_id = $1::text::uuid AND s.tm_revoke IS NULL",
            &[&c.id],
        )
        .await;
    assert_eq!(
        unrevoked, 0,
        "the delete revoked the sessions of the frozen customer"
    );
}

#[tokio::test]
async fn a_freeze_racing_a_delete_ends_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for round in 0..6 {
        let id = app
            .create_customer_ok(&admin, &unique(&format!("rfd{round}")), PASSWORD)
            .await;
        let deleting = app.spawn_gql(
            Some(&admin),
            "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id tmDelete } } }",
            json!({ "id": id }),
        );
        let freezing = app.spawn_gql(Some(&admin), &freeze_query(), json!({ "id": id }));
        let (deleted, froze) = (deleting.await.unwrap(), freezing.await.unwrap());
        assert!(deleted["errors"].is_null(), "round {round}: {deleted}");
        let row = read(&app, &admin, &id).await;
        assert_eq!(row["status"], "DELETED", "round {round}");
        if froze["errors"].is_null() {
            assert_eq!(frozen(&froze)["status"], "FROZEN", "round {round}");
            assert!(row["tmFreeze"].is_string(), "round {round}");
        } else {
            assert_eq!(error_code(&froze), "NOT_FOUND", "round {round}: {froze}");
            assert_eq!(row["tmFreeze"], Value::Null, "round {round}");
        }
    }
}
