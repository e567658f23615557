//! The seed tutorial's "use an access key from `GET /accesskeys`".

use super::*;

/// The seed tutorial: log in over REST, create a key, find it in
/// `GET /accesskeys`, and use it with `?accesskey=`.
#[tokio::test]
async fn seed_tutorial_logs_in_creates_a_key_and_uses_it() {
    let app = TestApp::spawn().await;
    let admin = app.rest_login(ADMIN_USERNAME, ADMIN_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = call(
        &app,
        Method::POST,
        "/v1.0/customers",
        Cred::Token(&admin),
        &[],
        Some(json!({"username": "tutorial1", "password": "a-long-password", "name": "tutorial"})),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let customer = created.body["id"].as_str().unwrap();

    let login = app.rest_login("tutorial1", "a-long-password").await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["token"].as_str().unwrap();
    let (id, key) = create_ok(
        &app,
        Cred::Token(token),
        json!({"name": "tutorial", "expire": 2592000}),
    )
    .await;
    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Token(token),
        &[],
        None,
    )
    .await;
    assert_eq!(listed.body["result"][0]["id"], id.as_str());
    assert!(key.starts_with(listed.body["result"][0]["token_prefix"].as_str().unwrap()));

    let own = call(
        &app,
        Method::GET,
        &format!("/v1.0/customers/{customer}"),
        Cred::AccessKey(&key),
        &[],
        None,
    )
    .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(own.body["username"], "tutorial1");
    // A key is its customer's admin, never a super admin: the list of all
    // customers stays closed to it.
    let all = call(
        &app,
        Method::GET,
        "/v1.0/customers",
        Cred::AccessKey(&key),
        &[],
        None,
    )
    .await;
    assert_eq!((all.status, code(&all)), (403, "FORBIDDEN"));
    // The same key reads its own listing, as the tutorial's reader would next.
    let mine = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::AccessKey(&key),
        &[],
        None,
    )
    .await;
    assert_eq!(mine.body["result"][0]["id"], id.as_str());
}
