//! Each endpoint's happy path, validation with `field`, and the cap.

use super::*;

#[tokio::test]
async fn accesskeys_create_read_rename_list_and_delete_over_rest() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, _, own) = customer_with_admin(&app, &admin).await;

    let created = call(
        &app,
        Method::POST,
        "/v1.0/accesskeys",
        Cred::Bearer(&own),
        &[],
        Some(json!({"name": "ci", "detail": "for CI", "expire": 86400})),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    let key = &created.body;
    assert_key_shape(key);
    let token = key["token"].as_str().unwrap();
    assert!(token.starts_with("vb_") && token.starts_with(key["token_prefix"].as_str().unwrap()));
    assert_eq!(key["customer_id"], customer.as_str());
    assert_eq!(
        (key["name"].as_str(), key["detail"].as_str()),
        (Some("ci"), Some("for CI"))
    );
    for unset in ["tm_last_used", "tm_update", "tm_delete"] {
        assert_eq!(key[unset], UNSET, "{unset}");
    }
    let expire = chrono::NaiveDateTime::parse_from_str(
        key["tm_expire"].as_str().unwrap(),
        "%Y-%m-%d %H:%M:%S%.6f",
    )
    .unwrap();
    let create = chrono::NaiveDateTime::parse_from_str(
        key["tm_create"].as_str().unwrap(),
        "%Y-%m-%d %H:%M:%S%.6f",
    )
    .unwrap();
    assert!(
        (expire - create - chrono::Duration::seconds(86400))
            .num_seconds()
            .abs()
            <= 2
    );
    let id = key["id"].as_str().unwrap().to_owned();
    let path = format!("/v1.0/accesskeys/{id}");

    let read = call(&app, Method::GET, &path, Cred::Bearer(&own), &[], None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let mut expected = key.clone();
    expected.as_object_mut().unwrap().remove("token");
    assert_eq!(read.body, expected);

    let renamed = call(
        &app,
        Method::PUT,
        &path,
        Cred::Bearer(&own),
        &[],
        Some(json!({"name": "deploy"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "deploy");
    assert_eq!(
        renamed.body["detail"], "for CI",
        "a field left out keeps its value"
    );
    assert_ne!(renamed.body["tm_update"], UNSET);
    assert_eq!(renamed.body["tm_delete"], UNSET);

    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&own),
        &[],
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["result"], json!([renamed.body]));

    let deleted = call(&app, Method::DELETE, &path, Cred::Bearer(&own), &[], None).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_ne!(deleted.body["tm_delete"], UNSET);
    assert_eq!(deleted.body["name"], "deploy");
    let again = call(&app, Method::DELETE, &path, Cred::Bearer(&own), &[], None).await;
    assert_eq!(
        again.body, deleted.body,
        "revoking a revoked key changes nothing"
    );
    let read = call(&app, Method::GET, &path, Cred::Bearer(&own), &[], None).await;
    assert_eq!(read.body, deleted.body, "a revoked key can still be read");
    let renamed = call(
        &app,
        Method::PUT,
        &path,
        Cred::Bearer(&own),
        &[],
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!((renamed.status, code(&renamed)), (404, "NOT_FOUND"));
    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&own),
        &[],
        None,
    )
    .await;
    assert_eq!(listed.body, json!({"result": [], "next_page_token": ""}));
}

/// A request and the field its refusal must name.
type Case<'a> = (
    Method,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Option<Value>,
    &'a str,
);

#[tokio::test]
async fn accesskeys_validation_names_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = create_ok(&app, Cred::Bearer(&admin), json!({})).await;
    let path = format!("/v1.0/accesskeys/{id}");
    let long_name = "n".repeat(256);
    let long_detail = "d".repeat(4097);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"expire": 86399})),
            "expire",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"expire": 157680001})),
            "expire",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"expire": "a year"})),
            "expire",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"name": long_name})),
            "name",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"detail": long_detail})),
            "detail",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!({"customer_id": "nope"})),
            "customer_id",
        ),
        (
            Method::POST,
            "/v1.0/accesskeys",
            vec![],
            Some(json!(["not", "an", "object"])),
            "body",
        ),
        (
            Method::PUT,
            &path,
            vec![],
            Some(json!({"name": long_name})),
            "name",
        ),
        (
            Method::PUT,
            &path,
            vec![],
            Some(json!({"detail": 7})),
            "detail",
        ),
        (
            Method::GET,
            "/v1.0/accesskeys/not-a-uuid",
            vec![],
            None,
            "id",
        ),
        (
            Method::PUT,
            "/v1.0/accesskeys/not-a-uuid",
            vec![],
            Some(json!({})),
            "id",
        ),
        (
            Method::DELETE,
            "/v1.0/accesskeys/not-a-uuid",
            vec![],
            None,
            "id",
        ),
        (
            Method::GET,
            "/v1.0/accesskeys",
            vec![("customer_id", "nope")],
            None,
            "customer_id",
        ),
        (
            Method::GET,
            "/v1.0/accesskeys",
            vec![("page_size", "0")],
            None,
            "page_size",
        ),
        (
            Method::GET,
            "/v1.0/accesskeys",
            vec![("page_size", "101")],
            None,
            "page_size",
        ),
        (
            Method::GET,
            "/v1.0/accesskeys",
            vec![("page_token", "yesterday")],
            None,
            "page_token",
        ),
    ];
    for (method, path, params, body, expected) in cases {
        let reply = call(
            &app,
            method.clone(),
            path,
            Cred::Bearer(&admin),
            &params,
            body,
        )
        .await;
        assert_eq!(
            (reply.status, code(&reply), field(&reply)),
            (400, "BAD_USER_INPUT", expected),
            "{method} {path} {params:?}: {:?}",
            reply.body
        );
    }
    // Nothing was created by the refused requests.
    let listed = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Bearer(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(listed.body["result"].as_array().unwrap().len(), 1);

    let unknown = format!("/v1.0/accesskeys/{}", uuid::Uuid::now_v7());
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = call(
            &app,
            method.clone(),
            &unknown,
            Cred::Bearer(&admin),
            &[],
            Some(json!({})),
        )
        .await;
        assert_eq!((reply.status, code(&reply)), (404, "NOT_FOUND"), "{method}");
    }
    let gone = call(
        &app,
        Method::POST,
        "/v1.0/accesskeys",
        Cred::Bearer(&admin),
        &[],
        Some(json!({"customer_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!((gone.status, code(&gone)), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn create_accesskey_over_rest_stops_at_the_cap() {
    let app = TestApp::spawn_with(|config| config.max_access_keys_per_customer = 2).await;
    let admin = app.admin_token().await;
    for _ in 0..2 {
        create_ok(&app, Cred::Bearer(&admin), json!({})).await;
    }
    let refused = call(
        &app,
        Method::POST,
        "/v1.0/accesskeys",
        Cred::Bearer(&admin),
        &[],
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (409, "CONFLICT"),
        "{:?}",
        refused.body
    );
}
