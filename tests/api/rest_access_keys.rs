//! `/v1.0/accesskeys` over real HTTP, and GraphQL's `accessKey` and
//! `updateAccessKey`: the key object's shape, who may do what, validation,
//! exact paging, the key shown once and never again, revocation on another
//! replica, and the seed tutorial's "use an access key" flow.

mod crud;
mod graphql;
mod paging;
mod permissions;
mod secrets;
mod tutorial;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Reply, TestApp, captured_logs, unique};

const UNSET: &str = "9999-01-01 00:00:00.000000";
const FIELDS: [&str; 10] = [
    "id",
    "customer_id",
    "name",
    "detail",
    "token_prefix",
    "tm_expire",
    "tm_last_used",
    "tm_create",
    "tm_update",
    "tm_delete",
];

/// How a request presents its credential.
#[derive(Clone, Copy)]
enum Cred<'a> {
    Nothing,
    Bearer(&'a str),
    Token(&'a str),
    AccessKey(&'a str),
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    cred: Cred<'_>,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut url = url::Url::parse(&format!("{}{path}", app.address)).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    match cred {
        Cred::Token(t) => drop(url.query_pairs_mut().append_pair("token", t)),
        Cred::AccessKey(k) => drop(url.query_pairs_mut().append_pair("accesskey", k)),
        Cred::Nothing | Cred::Bearer(_) => {}
    }
    let mut request = app.http().request(method, url);
    if let Cred::Bearer(t) = cred {
        request = request.bearer_auth(t);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    crate::harness::send(request).await
}

fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or("")
}

fn field(reply: &Reply) -> &str {
    reply.body["error"]["field"].as_str().unwrap_or("")
}

/// Creates a key over REST as `cred`, failing the test on error; returns
/// `(id, key)`.
async fn create_ok(app: &TestApp, cred: Cred<'_>, body: Value) -> (String, String) {
    let reply = call(app, Method::POST, "/v1.0/accesskeys", cred, &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    (id, reply.body["token"].as_str().unwrap().to_owned())
}

/// A customer whose guest agent (a CUSTOMER_ADMIN) is logged in: `(customer
/// id, username, login token)`.
async fn customer_with_admin(app: &TestApp, admin: &str) -> (String, String, String) {
    let username = unique("akc").replace('-', "");
    let id = app
        .create_customer_ok(admin, &username, "a-long-password")
        .await;
    let token = app.token(&username, "a-long-password").await;
    (id, username, token)
}

fn assert_key_shape(key: &Value) {
    let object = key.as_object().unwrap();
    for name in FIELDS {
        assert!(object.contains_key(name), "{name} missing: {key}");
    }
    for name in [
        "tm_expire",
        "tm_last_used",
        "tm_create",
        "tm_update",
        "tm_delete",
    ] {
        let text = key[name].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.6f").is_ok()
                && text.len() == 26,
            "{name}: {text}"
        );
    }
    assert!(!object.contains_key("token_hash"), "{key}");
}
