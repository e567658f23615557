//! `POST /v1.0/customers/{id}/freeze` and `…/recover`: the REST shapes of
//! freezing and recovering, the `status` of REST customer objects, 401s for
//! a frozen customer's credentials, and who may do either.

use serde_json::{Value, json};

use super::{customer, rest};
use crate::harness::{Reply, TestApp, send, unique};

async fn post(app: &TestApp, path: &str, token: Option<&str>) -> Reply {
    send(rest(app, reqwest::Method::POST, path, token)).await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Reply {
    send(rest(app, reqwest::Method::GET, path, token)).await
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    &reply.body
}

#[tokio::test]
async fn rest_freeze_and_recover_answer_the_customer_with_its_status() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let c = customer(&app, &admin, "rfz").await;
    let base = format!("/v1.0/customers/{}", c.id);

    let own = get(&replica, "/v1.0/customer", Some(&c.key)).await;
    assert_eq!(ok(&own)["status"], "active");

    let reply = post(&app, &format!("{base}/freeze"), Some(&admin)).await;
    let body = ok(&reply).clone();
    assert_eq!(body["id"], c.id.as_str());
    assert_eq!(body["status"], "frozen");
    assert_eq!(body["tm_delete"], "9999-01-01 00:00:00.000000");
    let read = get(&replica, &base, Some(&admin)).await;
    assert_eq!(ok(&read), &body, "GET reads what the freeze answered");
    // Freezing again changes nothing.
    let again = post(&replica, &format!("{base}/freeze"), Some(&admin)).await;
    assert_eq!(ok(&again), &body);

    // The frozen customer's credentials get 401 over REST, on both servers.
    for server in [&app, &replica] {
        for (what, token) in [
            ("key", &c.key),
            ("admin", &c.admin),
            ("manager", &c.manager),
        ] {
            let reply = get(server, "/v1.0/customer", Some(token)).await;
            assert_eq!(reply.status, 401, "{what}: {:?}", reply.body);
            assert_eq!(reply.body["error"]["code"], "UNAUTHENTICATED", "{what}");
            let reply = send(
                rest(server, reqwest::Method::PUT, "/v1.0/customer", Some(token))
                    .json(&json!({ "detail": "x" })),
            )
            .await;
            assert_eq!(reply.status, 401, "{what}: {:?}", reply.body);
        }
        let login = server.rest_login(&c.username, "a-long-password").await;
        assert_eq!(login.status, 401, "{:?}", login.body);
    }

    // The listing shows it frozen.
    let listed = get(&app, "/v1.0/customers?page_size=100", Some(&admin)).await;
    let listed = ok(&listed);
    let row = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == c.id.as_str())
        .unwrap_or_else(|| panic!("frozen customers are listed: {listed}"));
    assert_eq!(row["status"], "frozen");

    let reply = post(&app, &format!("{base}/recover"), Some(&admin)).await;
    let recovered = ok(&reply).clone();
    assert_eq!(recovered["status"], "active");
    assert!(
        recovered["tm_update"].as_str() > body["tm_update"].as_str(),
        "{recovered} {body}"
    );
    for server in [&app, &replica] {
        let own = get(server, "/v1.0/customer", Some(&c.key)).await;
        assert_eq!(ok(&own)["status"], "active");
        let own = get(server, "/v1.0/customer", Some(&c.admin)).await;
        assert_eq!(ok(&own)["id"], c.id.as_str());
    }
    let again = post(&app, &format!("{base}/recover"), Some(&admin)).await;
    assert_eq!(ok(&again), &recovered, "recovering an active customer");
}

#[tokio::test]
async fn who_may_freeze_and_recover_over_rest() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "rpa").await;
    let b = customer(&app, &admin, "rpb").await;
    let base = format!("/v1.0/customers/{}", a.id);

    for action in ["freeze", "recover"] {
        for (what, token, status, code) in [
            ("own admin", Some(a.admin.as_str()), 403, "FORBIDDEN"),
            ("own access key", Some(a.key.as_str()), 403, "FORBIDDEN"),
            ("plain agent", Some(a.agent.as_str()), 403, "FORBIDDEN"),
            ("manager", Some(a.manager.as_str()), 403, "FORBIDDEN"),
            (
                "other customer's admin",
                Some(b.admin.as_str()),
                403,
                "FORBIDDEN",
            ),
            (
                "other customer's key",
                Some(b.key.as_str()),
                403,
                "FORBIDDEN",
            ),
            ("no credential", None, 401, "UNAUTHENTICATED"),
        ] {
            let reply = post(&app, &format!("{base}/{action}"), token).await;
            assert_eq!(reply.status, status, "{action} by {what}: {:?}", reply.body);
            assert_eq!(reply.body["error"]["code"], code, "{action} by {what}");
        }
    }
    let read = get(&app, &base, Some(&admin)).await;
    assert_eq!(
        ok(&read)["status"],
        "active",
        "refused freezes changed nothing"
    );

    let platform = app.own_customer_id(&admin).await;
    let reply = post(
        &app,
        &format!("/v1.0/customers/{platform}/freeze"),
        Some(&admin),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    let missing = uuid::Uuid::new_v4();
    for action in ["freeze", "recover"] {
        let reply = post(
            &app,
            &format!("/v1.0/customers/{missing}/{action}"),
            Some(&admin),
        )
        .await;
        assert_eq!(reply.status, 404, "{action}: {:?}", reply.body);
        let reply = post(
            &app,
            &format!("/v1.0/customers/not-a-uuid/{action}"),
            Some(&admin),
        )
        .await;
        assert_eq!(reply.status, 400, "{action}: {:?}", reply.body);
    }

    let deleted = app
        .create_customer_ok(&admin, &unique("rpd"), "a-long-password")
        .await;
    app.delete_customer(&admin, &deleted).await;
    let reply = post(
        &app,
        &format!("/v1.0/customers/{deleted}/freeze"),
        Some(&admin),
    )
    .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    let reply = post(
        &app,
        &format!("/v1.0/customers/{deleted}/recover"),
        Some(&admin),
    )
    .await;
    let restored = ok(&reply);
    assert_eq!(restored["status"], "active");
    assert_eq!(restored["tm_delete"], "9999-01-01 00:00:00.000000");
}

#[tokio::test]
async fn rest_recover_past_the_retention_is_409() {
    let app = TestApp::spawn_with(|config| config.customer_restore_days = 0).await;
    let admin = app.admin_token().await;
    let id = app
        .create_customer_ok(&admin, &unique("r409"), "a-long-password")
        .await;
    app.delete_customer(&admin, &id).await;
    let reply = post(&app, &format!("/v1.0/customers/{id}/recover"), Some(&admin)).await;
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "CONFLICT");
    let read = get(&app, &format!("/v1.0/customers/{id}"), Some(&admin)).await;
    assert_eq!(ok(&read)["status"], "deleted");
}
