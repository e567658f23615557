//! The REST compatibility layer: the seed tutorial's requests replayed with
//! real ids and tokens and compared field by field with the tutorial's
//! responses; errors and their statuses; paging through tied `tm_create`
//! values; the three ways to present a credential; REST and GraphQL agreeing
//! on one customer; and the checked-in `openapi.json`.

mod paging;
mod parity;
mod requests;
mod tutorial;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Reply, TestApp};

/// How REST writes a timestamp that is not set.
const UNSET: &str = "9999-01-01 00:00:00.000000";

/// Fails unless the reply is JSON, as every REST answer is.
fn json_reply(reply: Reply) -> Reply {
    assert!(
        reply.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        reply.headers
    );
    reply
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    json_reply(crate::harness::send(request).await)
}

fn url(app: &TestApp, path: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}{path}", app.address)).unwrap();
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    url.to_string()
}

async fn get(app: &TestApp, path: &str, params: &[(&str, &str)]) -> Reply {
    send(app.http().get(url(app, path, params))).await
}

async fn rest_login(app: &TestApp, username: &str, password: &str) -> Reply {
    json_reply(app.rest_login(username, password).await)
}

async fn admin_rest_token(app: &TestApp) -> String {
    let reply = rest_login(app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["token"].as_str().unwrap().to_owned()
}

async fn create(app: &TestApp, token: &str, body: &Value) -> Reply {
    send(
        app.http()
            .post(url(app, "/v1.0/customers", &[("token", token)]))
            .json(body),
    )
    .await
}

/// `GET /v1.0/customers/{id}`.
async fn get_customer(app: &TestApp, token: &str, id: &str) -> Reply {
    get(app, &format!("/v1.0/customers/{id}"), &[("token", token)]).await
}

/// `DELETE /v1.0/customers/{id}`.
async fn delete_customer(app: &TestApp, token: &str, id: &str) -> Reply {
    send(app.http().delete(url(
        app,
        &format!("/v1.0/customers/{id}"),
        &[("token", token)],
    )))
    .await
}

fn rest_time(at: &str) -> DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.6f")
        .unwrap_or_else(|_| panic!("not a REST timestamp: {at}"))
        .and_utc()
}

fn assert_error(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let keys: Vec<_> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{}", reply.body);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
    match field {
        Some(field) => assert_eq!(error["field"], field, "{}", reply.body),
        None => assert!(error.get("field").is_none(), "{}", reply.body),
    }
}

/// The tutorial's `POST /v1.0/customers` request body.
fn tutorial_create_request() -> Value {
    json!({
        "username": "test1",
        "password": "ee5f3d14-5ac6-11ed-808e-6f7d676a444b",
        "name": "test 1",
        "detail": "test user 1",
        "webhook_method": "POST",
        "webhook_uri": "https://en7evajwhm11qbt.x.pipedream.net",
        "line_secret": "ba5f0575d826d5b4a051112a145ef1391",
        "line_token": "tsfIiDB/2cGI5sssaIop7S311SS4KsbElJ/ukQKs6LpHY1XoG2pTMHqdiyLNu8aMda2pi3vTXscCKp8XGEvfl6dmIT1nfTTdMkmY84iRLIOIAl85iG/XZueI1WBRvchfV8TlZwDmECbSSzL+Wuv+jO+gdB04t89/1O/w1cDnyilFU=",
        "permission_ids": []
    })
}
