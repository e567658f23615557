//! The REST compatibility layer: the seed tutorial's requests replayed with
//! real ids and tokens and compared field by field with the tutorial's
//! responses; errors and their statuses; paging through tied `tm_create`
//! values; the three ways to present a credential; REST and GraphQL agreeing
//! on one customer; and the checked-in `openapi.json`.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, captured_logs};

const UNSET: &str = "9999-01-01 00:00:00.000000";

/// The tutorial's `GET /v1.0/customers` response.
fn tutorial_list() -> Value {
    json!({
        "result": [tutorial_customer()],
        "next_page_token": "2022-02-01 00:00:00.000000"
    })
}

/// The tutorial's `GET /v1.0/customers/{id}` response.
fn tutorial_customer() -> Value {
    json!({
        "id": "5e4a0680-804e-11ec-8477-2fea5968d85b",
        "username": "admin",
        "name": "admin",
        "detail": "admin account",
        "webhook_method": "POST",
        "webhook_uri": "https://en7evajwhmqbt.x.pipedream.net",
        "line_secret": "ba5f0575d826d5b4a0512a145ef1391",
        "line_token": "tsfIiDB/2cGI5sssaIop7S3SS4KsbElJ/ukQKs6LpHY1XoG2pTMHqdiyLNu8aMda2pi3vTXscCKp8XGEvfl6dmIT1nfTTdMkmY84iRLIOIAl85iG/XZueI1WBRvchfV8TlZwDmECbSSzL+Wuv+jO+gdB04t89/1O/w1cDnyilFU=",
        "permission_ids": ["03796e14-7cb4-11ec-9dba-e72023efd1c6"],
        "tm_create": "2022-02-01 00:00:00.000000",
        "tm_update": "2022-06-16 08:37:16.952738",
        "tm_delete": "9999-01-01 00:00:00.000000"
    })
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

/// The tutorial's response to that request (and, with `tm_delete` set, to
/// the `DELETE` of the same customer).
fn tutorial_created(tm_delete: &str) -> Value {
    json!({
        "id": "ff424526-f65d-483f-bc36-3b2357c6c6a9",
        "username": "test1",
        "name": "test 1",
        "detail": "test user 1",
        "webhook_method": "POST",
        "webhook_uri": "https://en7evajwhm11qbt.x.pipedream.net",
        "line_secret": "ba5f0575d826d5b4a051112a145ef1391",
        "line_token": "tsfIiDB/2cGI5sssaIop7S311SS4KsbElJ/ukQKs6LpHY1XoG2pTMHqdiyLNu8aMda2pi3vTXscCKp8XGEvfl6dmIT1nfTTdMkmY84iRLIOIAl85iG/XZueI1WBRvchfV8TlZwDmECbSSzL+Wuv+jO+gdB04t89/1O/w1cDnyilFU=",
        "permission_ids": [],
        "tm_create": "2022-11-02 15:57:08.368093",
        "tm_update": "9999-01-01 00:00:00.000000",
        "tm_delete": tm_delete
    })
}

/// One HTTP exchange, with a JSON body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("the body of a {status} is not JSON: {text:?}"));
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{headers:?}"
    );
    Reply {
        status,
        headers,
        body,
    }
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
    send(
        app.http()
            .post(url(app, "/auth/login", &[]))
            .json(&json!({ "username": username, "password": password })),
    )
    .await
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

fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 26
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            _ => b.is_ascii_digit(),
        })
        && chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.6f").is_ok()
}

/// What kind of string a value is, as far as a client parsing it cares.
fn string_format(key: &str, text: &str) -> &'static str {
    if key == "next_page_token" {
        // Ours carry a tie-breaker after the timestamp the tutorial shows.
        return if text.get(..26).is_some_and(is_timestamp) {
            "starts with a timestamp"
        } else {
            "other"
        };
    }
    if key == "webhook_method" {
        return if ["", "GET", "POST", "PUT", "DELETE"].contains(&text) {
            "webhook method"
        } else {
            "other"
        };
    }
    if is_timestamp(text) {
        "timestamp"
    } else if uuid::Uuid::try_parse(text).is_ok() && text.len() == 36 && text == text.to_lowercase()
    {
        "uuid"
    } else {
        "string"
    }
}

/// Fails unless `actual` has exactly `expected`'s keys, with values of the
/// same JSON types and string formats, recursively; every element of an
/// array is compared with the expected array's first element.
fn assert_same_shape(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let e_keys: BTreeSet<_> = e.keys().collect();
            let a_keys: BTreeSet<_> = a.keys().collect();
            assert_eq!(a_keys, e_keys, "keys of {at}");
            for (key, value) in e {
                assert_same_shape(value, &a[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(first) = e.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(first, item, &format!("{at}[{i}]"));
                }
            }
        }
        (Value::String(e), Value::String(a)) => {
            let key = at.rsplit('.').next().unwrap_or_default();
            let key = key.split('[').next().unwrap_or_default();
            assert_eq!(
                string_format(key, a),
                string_format(key, e),
                "format of {at}: {a:?} against the tutorial's {e:?}"
            );
        }
        (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{at}: expected a value like {expected}, got {actual}"),
    }
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

#[tokio::test]
async fn tutorial_requests_answer_in_the_tutorial_shapes() {
    let app = TestApp::spawn().await;

    // Prerequisites: a token from POST /auth/login.
    let login = rest_login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_same_shape(
        &json!({ "username": "admin", "token": "x" }),
        &login.body,
        "login",
    );
    assert_eq!(login.body["username"], ADMIN_USERNAME);
    assert_eq!(login.headers["cache-control"], "no-store");
    let token = login.body["token"].as_str().unwrap().to_owned();

    // Create a new customer.
    let request = tutorial_create_request();
    let before = Utc::now();
    let created = create(&app, &token, &request).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_same_shape(&tutorial_created(UNSET), &created.body, "create");
    for field in [
        "username",
        "name",
        "detail",
        "webhook_method",
        "webhook_uri",
        "line_secret",
        "line_token",
        "permission_ids",
    ] {
        assert_eq!(created.body[field], request[field], "{field}");
    }
    assert_eq!(created.body["tm_update"], UNSET);
    assert_eq!(created.body["tm_delete"], UNSET);
    let tm_create = rest_time(created.body["tm_create"].as_str().unwrap());
    assert!(
        (tm_create - before).num_seconds().abs() < 60,
        "tm_create {tm_create} is now, in UTC"
    );
    let body_text = created.body.to_string();
    assert!(
        !body_text.contains("password")
            && !body_text.contains(request["password"].as_str().unwrap())
    );
    let id = created.body["id"].as_str().unwrap().to_owned();

    // The new customer logs in at once, as its guest agent.
    let guest = rest_login(&app, "test1", request["password"].as_str().unwrap()).await;
    assert_eq!(guest.status, 200, "{}", guest.body);
    assert_eq!(guest.body["username"], "test1");

    // Get list of customers.
    let list = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_same_shape(&tutorial_list(), &list.body, "list");
    let result = list.body["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "test1 and the platform's own customer");
    assert_eq!(result[0], created.body, "newest first");
    let last = result.last().unwrap();
    assert_eq!(
        list.body["next_page_token"],
        format!(
            "{}_{}",
            last["tm_create"].as_str().unwrap(),
            last["id"].as_str().unwrap()
        )
    );

    // Get detail of customer.
    let detail = get(&app, &format!("/v1.0/customers/{id}"), &[("token", &token)]).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_same_shape(&tutorial_customer(), &detail.body, "detail");
    assert_eq!(detail.body, created.body);

    // Delete customer.
    let deleted = send(app.http().delete(url(
        &app,
        &format!("/v1.0/customers/{id}"),
        &[("token", &token)],
    )))
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_same_shape(
        &tutorial_created("2022-11-02 15:59:08.368093"),
        &deleted.body,
        "delete",
    );
    let tm_delete = deleted.body["tm_delete"].as_str().unwrap();
    assert_ne!(tm_delete, UNSET);
    assert!(rest_time(tm_delete) >= tm_create);
    for field in ["id", "username", "name", "webhook_uri", "tm_create"] {
        assert_eq!(deleted.body[field], created.body[field], "{field}");
    }

    // A deleted customer leaves the list, and still reads (to a super admin) as deleted.
    let list = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    let ids: Vec<_> = list.body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&id.as_str()), "{ids:?}");
    let detail = get(&app, &format!("/v1.0/customers/{id}"), &[("token", &token)]).await;
    assert_eq!(detail.body["tm_delete"], tm_delete);
}

#[tokio::test]
async fn rest_errors_have_fitting_statuses_and_json_bodies() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let platform_id = app.own_customer_id(&token).await;
    let valid = json!({ "username": "errors1", "password": "errors1-password" });

    // 400, naming the field in snake_case.
    let with = |patch: Value| {
        let mut body = valid.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    for (body, field) in [
        (with(json!({ "username": "x" })), "username"),
        (with(json!({ "password": "short" })), "password"),
        (with(json!({ "name": "n".repeat(256) })), "name"),
        (with(json!({ "detail": 5 })), "detail"),
        (with(json!({ "webhook_method": "FETCH" })), "webhook_method"),
        (
            with(json!({ "webhook_uri": "ftp://example.com" })),
            "webhook_uri",
        ),
        (
            with(json!({ "line_secret": "s".repeat(1024) })),
            "line_secret",
        ),
        (
            with(json!({ "line_token": "t".repeat(1024) })),
            "line_token",
        ),
        (
            with(json!({ "permission_ids": ["not-a-uuid"] })),
            "permission_ids",
        ),
        (
            with(json!({ "permission_ids": vec![uuid::Uuid::new_v4(); 65] })),
            "permission_ids",
        ),
        (json!({ "password": "errors1-password" }), "username"),
        (json!(["not", "an", "object"]), "body"),
    ] {
        let reply = create(&app, &token, &body).await;
        assert_error(&reply, 400, "BAD_USER_INPUT", Some(field));
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("webhookUri") && !message.contains("lineSecret"),
            "{message}"
        );
    }
    let reply = create(&app, &token, &with(json!({ "webhook_uri": "nope" }))).await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`webhook_uri`"),
        "{}",
        reply.body
    );
    let not_json = send(
        app.http()
            .post(url(&app, "/v1.0/customers", &[("token", &token)]))
            .body("{\"username\": "),
    )
    .await;
    assert_error(&not_json, 400, "BAD_USER_INPUT", Some("body"));
    for (params, field) in [
        (vec![("page_size", "0")], "page_size"),
        (vec![("page_size", "101")], "page_size"),
        (vec![("page_size", "ten")], "page_size"),
        (vec![("page_token", "yesterday")], "page_token"),
        (
            vec![("page_token", "2022-02-01 00:00:00.000000_nope")],
            "page_token",
        ),
    ] {
        let mut params = params;
        params.push(("token", &token));
        let reply = get(&app, "/v1.0/customers", &params).await;
        assert_error(&reply, 400, "BAD_USER_INPUT", Some(field));
    }
    let reply = get(&app, "/v1.0/customers/not-a-uuid", &[("token", &token)]).await;
    assert_error(&reply, 400, "BAD_USER_INPUT", Some("id"));

    // 401: no, bad or malformed credentials, and failed logins, all alike.
    for reply in [
        get(&app, "/v1.0/customers", &[]).await,
        get(&app, "/v1.0/customers", &[("token", "not-a-token")]).await,
        get(&app, "/v1.0/customers", &[("accesskey", "vb_not-a-key")]).await,
        send(
            app.http()
                .get(url(&app, "/v1.0/customers", &[]))
                .header("authorization", format!("Basic {token}")),
        )
        .await,
        create(&app, "not-a-token", &valid).await,
    ] {
        assert_error(&reply, 401, "UNAUTHENTICATED", None);
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let wrong_password = rest_login(&app, ADMIN_USERNAME, "wrong-password").await;
    let unknown_user = rest_login(&app, "nobody-here", "wrong-password").await;
    assert_error(&wrong_password, 401, "UNAUTHENTICATED", None);
    assert_error(&unknown_user, 401, "UNAUTHENTICATED", None);
    assert_eq!(
        wrong_password.body, unknown_user.body,
        "one message for both"
    );
    let missing = send(
        app.http()
            .post(url(&app, "/auth/login", &[]))
            .json(&json!({ "username": "admin" })),
    )
    .await;
    assert_error(&missing, 400, "BAD_USER_INPUT", Some("password"));

    // 403: a customer's own admin may not list customers, and nobody may
    // delete the platform's own customer.
    app.create_customer_ok(&token, "someone", "someone-password")
        .await;
    let someone = rest_login(&app, "someone", "someone-password").await;
    let someone = someone.body["token"].as_str().unwrap();
    let reply = get(&app, "/v1.0/customers", &[("token", someone)]).await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = get(
        &app,
        &format!("/v1.0/customers/{platform_id}"),
        &[("token", someone)],
    )
    .await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = send(app.http().delete(url(
        &app,
        &format!("/v1.0/customers/{platform_id}"),
        &[("token", &token)],
    )))
    .await;
    assert_error(&reply, 403, "FORBIDDEN", None);

    // 404: unknown customers and unknown endpoints.
    let unknown = uuid::Uuid::new_v4().to_string();
    let reply = get(
        &app,
        &format!("/v1.0/customers/{unknown}"),
        &[("token", &token)],
    )
    .await;
    assert_error(&reply, 404, "NOT_FOUND", None);
    let reply = send(app.http().delete(url(
        &app,
        &format!("/v1.0/customers/{unknown}"),
        &[("token", &token)],
    )))
    .await;
    assert_error(&reply, 404, "NOT_FOUND", None);
    let reply = get(&app, "/v1.0/agents", &[("token", &token)]).await;
    assert_error(&reply, 404, "NOT_FOUND", None);

    // 405: there is no update yet.
    let reply = send(
        app.http()
            .put(url(
                &app,
                &format!("/v1.0/customers/{platform_id}"),
                &[("token", &token)],
            ))
            .json(&json!({ "name": "renamed" })),
    )
    .await;
    assert_error(&reply, 405, "BAD_USER_INPUT", None);
    let allow = reply.headers["allow"].to_str().unwrap();
    assert!(
        allow.contains("GET") && allow.contains("DELETE") && !allow.contains("PUT"),
        "{allow}"
    );

    // 409: the username is taken, in any case.
    assert_eq!(create(&app, &token, &valid).await.status, 200);
    let reply = create(
        &app,
        &token,
        &json!({ "username": "ERRORS1", "password": "another-password" }),
    )
    .await;
    assert_error(&reply, 409, "CONFLICT", Some("username"));
}

#[tokio::test]
async fn rest_login_refusals_are_401_with_retry_after() {
    let app = TestApp::spawn_with(|config| config.login_max_failures = 2).await;
    for _ in 0..2 {
        let reply = rest_login(&app, ADMIN_USERNAME, "wrong-password").await;
        assert_error(&reply, 401, "UNAUTHENTICATED", None);
        assert!(reply.headers.get("retry-after").is_none());
    }
    // Refused now, even with the right password.
    let reply = rest_login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    assert_eq!(reply.body["error"]["retry_after_seconds"], retry);
}

#[tokio::test]
async fn rest_database_stall_is_503_with_nothing_internal() {
    let app = TestApp::spawn_with(|config| config.db_statement_timeout_ms = 500).await;
    let token = admin_rest_token(&app).await;
    // Warm the credential cache, so that the stall hits the listing itself.
    assert_eq!(
        get(&app, "/v1.0/customers", &[("token", &token)])
            .await
            .status,
        200
    );

    let locker = app.db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let reply = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    locker.batch_execute("ROLLBACK").await.unwrap();

    assert_error(&reply, 503, "SERVICE_UNAVAILABLE", None);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("statement") && !message.contains("customers"),
        "{message}"
    );
    assert!(
        captured_logs()
            .lines()
            .any(|line| line.contains("REST request failed") && line.contains("statement timeout")),
        "the cause is logged"
    );
    assert_eq!(
        get(&app, "/v1.0/customers", &[("token", &token)])
            .await
            .status,
        200
    );
}

/// Inserts `count` customers `{prefix}{n}`, three to each `tm_create`, the
/// groups 1 ms apart from `base` on.
async fn seed_tied_customers(
    client: &tokio_postgres::Client,
    prefix: &str,
    count: i32,
    base: &str,
) {
    client
        .execute(
            "INSERT INTO customers (id, username, tm_create)
             SELECT gen_random_uuid(), $1::text || n::text,
                    $3::text::timestamptz + (n / 3) * interval '1 millisecond'
             FROM generate_series(0, $2::int - 1) AS n",
            &[&prefix, &count, &base],
        )
        .await
        .unwrap();
}

/// Live customers as `(id, tm_create in the REST format)`, in the listing order.
async fn live_customers(client: &tokio_postgres::Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT id::text, to_char(tm_create AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
             FROM customers WHERE tm_delete IS NULL ORDER BY tm_create DESC, id DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn page_ids(reply: &Reply) -> Vec<String> {
    reply.body["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result in {}", reply.body))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rest_pages_through_tied_timestamps_without_skips_or_repeats() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let client = app.db.client().await;
    seed_tied_customers(&client, "tied", 30, "2024-03-01T10:00:00.25Z").await;
    let expected: Vec<String> = live_customers(&client)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(expected.len(), 31, "30 seeded plus the platform customer");

    let first = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    assert_eq!(page_ids(&first), expected[..10], "10 per page by default");

    // Page sizes that cut through the groups of three at every offset.
    for size in [1, 2, 4, 5, 7, 31, 100] {
        let size_text = size.to_string();
        let mut seen: Vec<String> = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            assert!(pages < 100, "the walk does not end");
            let mut params = vec![("token", token.as_str()), ("page_size", size_text.as_str())];
            if !page_token.is_empty() {
                params.push(("page_token", page_token.as_str()));
            }
            let reply = get(&app, "/v1.0/customers", &params).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let ids = page_ids(&reply);
            let next = reply.body["next_page_token"].as_str().unwrap().to_owned();
            if ids.is_empty() {
                assert_eq!(next, "", "an empty page has no next page");
                break;
            }
            assert!(ids.len() <= size);
            let last = reply.body["result"].as_array().unwrap().last().unwrap();
            assert_eq!(
                next,
                format!(
                    "{}_{}",
                    last["tm_create"].as_str().unwrap(),
                    last["id"].as_str().unwrap()
                ),
                "the token is the last item's tm_create, `_` and its id"
            );
            seen.extend(ids);
            page_token = next;
            pages += 1;
        }
        assert_eq!(
            seen, expected,
            "page size {size}: every customer once, in order"
        );
        assert_eq!(pages, expected.len().div_ceil(size), "page size {size}");
    }
}

#[tokio::test]
async fn rest_bare_timestamp_tokens_keep_the_old_meaning() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let client = app.db.client().await;
    seed_tied_customers(&client, "old", 12, "2024-03-01T10:00:00Z").await;
    let live = live_customers(&client).await;

    // A timestamp three customers share: the old API listed those created
    // strictly before it, skipping the other two of its group.
    let (_, shared) = live
        .iter()
        .find(|(_, at)| live.iter().filter(|(_, other)| other == at).count() == 3)
        .unwrap()
        .clone();
    let older: Vec<String> = live
        .iter()
        .filter(|(_, at)| *at < shared)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!older.is_empty());

    let reply = get(
        &app,
        "/v1.0/customers",
        &[
            ("token", &token),
            ("page_token", &shared),
            ("page_size", "100"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(page_ids(&reply), older);

    // Percent-encoded spaces, as curl users write them, work the same.
    let raw = format!(
        "{}/v1.0/customers?token={token}&page_size=100&page_token={}",
        app.address,
        shared.replace(' ', "%20").replace(':', "%3A")
    );
    assert_eq!(page_ids(&send(app.http().get(raw)).await), older);

    // The sentinel "never" lists everything, newest first.
    let reply = get(
        &app,
        "/v1.0/customers",
        &[
            ("token", &token),
            ("page_token", UNSET),
            ("page_size", "100"),
        ],
    )
    .await;
    let all: Vec<String> = live.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(page_ids(&reply), all);
}

#[tokio::test]
async fn rest_accepts_token_bearer_and_accesskey_credentials() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let platform_id = app.own_customer_id(&token).await;
    let platform_path = format!("/v1.0/customers/{platform_id}");

    let by_query = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    let by_header = send(
        app.http()
            .get(url(&app, "/v1.0/customers", &[]))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(by_query.body, by_header.body);

    // The platform's access key acts as CUSTOMER_ADMIN of the platform's
    // customer: it reads that customer, and is no super admin.
    let body = app
        .gql(
            Some(&token),
            "mutation { createAccessKey(input: {}) { token accessKey { id } } }",
            json!({}),
        )
        .await;
    let key = body["data"]["createAccessKey"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("createAccessKey failed: {body}"))
        .to_owned();
    let key_id = body["data"]["createAccessKey"]["accessKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("vb_"));
    for reply in [
        get(&app, &platform_path, &[("accesskey", &key)]).await,
        get(&app, &platform_path, &[("token", &key)]).await,
        send(
            app.http()
                .get(url(&app, &platform_path, &[]))
                .bearer_auth(&key),
        )
        .await,
    ] {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["id"], platform_id);
    }
    let reply = get(&app, "/v1.0/customers", &[("accesskey", &key)]).await;
    assert_error(&reply, 403, "FORBIDDEN", None);
    let reply = create(
        &app,
        &key,
        &json!({ "username": "bykey", "password": "bykey-password" }),
    )
    .await;
    assert_error(&reply, 403, "FORBIDDEN", None);

    // `accesskey` takes access keys only; two different credentials are refused.
    let reply = get(&app, &platform_path, &[("accesskey", &token)]).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
    let reply = get(
        &app,
        &platform_path,
        &[("token", &token), ("accesskey", &key)],
    )
    .await;
    assert_error(&reply, 400, "BAD_USER_INPUT", Some("token"));
    let same_twice = send(
        app.http()
            .get(url(&app, &platform_path, &[("token", &token)]))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(same_twice.status, 200, "{}", same_twice.body);

    // A revoked key stops working on the next request.
    let revoked = app.delete_access_key(&token, &key_id).await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    let reply = get(&app, &platform_path, &[("accesskey", &key)]).await;
    assert_error(&reply, 401, "UNAUTHENTICATED", None);
}

const GRAPHQL_CUSTOMER: &str = "query($id: UUID!) { customer(id: $id) { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete } }";

/// A GraphQL customer written the REST way, field for field.
fn graphql_as_rest(customer: &Value) -> Value {
    let time = |value: &Value| match value.as_str() {
        None => UNSET.to_owned(),
        Some(at) => DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string(),
    };
    json!({
        "id": customer["id"],
        "username": customer["username"],
        "name": customer["name"],
        "detail": customer["detail"],
        "webhook_method": customer["webhookMethod"].as_str().unwrap_or(""),
        "webhook_uri": customer["webhookUri"],
        "line_secret": customer["lineSecret"],
        "line_token": customer["lineToken"],
        "permission_ids": customer["permissionIds"],
        "tm_create": time(&customer["tmCreate"]),
        "tm_update": time(&customer["tmUpdate"]),
        "tm_delete": time(&customer["tmDelete"]),
    })
}

async fn graphql_customer(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app
        .gql(Some(token), GRAPHQL_CUSTOMER, json!({ "id": id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["customer"].clone()
}

#[tokio::test]
async fn rest_and_graphql_show_the_same_customer() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;

    // Created through REST, read through both.
    let mut request = tutorial_create_request();
    request["permission_ids"] =
        json!(["03796e14-7cb4-11ec-9dba-e72023efd1c6", uuid::Uuid::new_v4()]);
    let created = create(&app, &token, &request).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let rest = get(&app, &format!("/v1.0/customers/{id}"), &[("token", &token)]).await;
    let graphql = graphql_customer(&app, &token, &id).await;
    assert_eq!(graphql["webhookMethod"], "POST");
    assert_eq!(graphql_as_rest(&graphql), rest.body);

    // Created through GraphQL without a webhook, read through both.
    let other = app
        .create_customer_ok(&token, "graphql-made", "graphql-made-password")
        .await;
    let rest = get(
        &app,
        &format!("/v1.0/customers/{other}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(rest.body["webhook_method"], "");
    assert_eq!(rest.body["tm_update"], UNSET);
    let graphql = graphql_customer(&app, &token, &other).await;
    assert!(graphql["webhookMethod"].is_null());
    assert_eq!(graphql_as_rest(&graphql), rest.body);

    // Deleted through REST: GraphQL sees the same deletion time.
    let deleted = send(app.http().delete(url(
        &app,
        &format!("/v1.0/customers/{id}"),
        &[("token", &token)],
    )))
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let graphql = graphql_customer(&app, &token, &id).await;
    assert!(graphql["tmDelete"].is_string(), "{graphql}");
    assert_eq!(graphql_as_rest(&graphql), deleted.body);

    // The REST list holds what the GraphQL list holds, in the same order.
    let rest = get(&app, "/v1.0/customers", &[("token", &token)]).await;
    let body = app
        .gql(
            Some(&token),
            "{ customers(first: 10) { nodes { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete } } }",
            json!({}),
        )
        .await;
    let graphql: Vec<Value> = body["data"]["customers"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(graphql_as_rest)
        .collect();
    assert_eq!(rest.body["result"], json!(graphql));
}

#[tokio::test]
async fn rest_keeps_secrets_out_of_logs_and_responses() {
    let app = TestApp::spawn().await;
    let token = admin_rest_token(&app).await;
    let (_, key) = app.create_access_key_ok(&token, json!({})).await;
    let password = format!("secret-{}", uuid::Uuid::new_v4());
    let bogus = format!("bogus-token-{}", uuid::Uuid::new_v4());

    let created = create(
        &app,
        &token,
        &json!({ "username": "secretive", "password": password }),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let failed = create(
        &app,
        &token,
        &json!({ "username": "secretive", "password": 42 }),
    )
    .await;
    assert_error(&failed, 400, "BAD_USER_INPUT", Some("password"));
    let wrong = rest_login(&app, "secretive", &format!("{password}-wrong")).await;
    assert_error(&wrong, 401, "UNAUTHENTICATED", None);
    let reply = get(&app, "/v1.0/customers", &[("accesskey", &key)]).await;
    assert_eq!(reply.status, 403);
    let reply = get(&app, "/v1.0/customers", &[("token", &bogus)]).await;
    assert_eq!(reply.status, 401);

    let mut seen = HashSet::new();
    for reply in [&created, &failed, &wrong] {
        seen.insert(reply.body.to_string());
    }
    for text in &seen {
        assert!(!text.contains(&password), "{text}");
        assert!(!text.contains("argon2"), "{text}");
    }
    let logs = captured_logs();
    assert!(logs.contains("created customer"), "the log capture works");
    for secret in [&token, &key, &password, &bogus] {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
    }
}

#[tokio::test]
async fn openapi_json_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = customer_api::rest::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}

#[tokio::test]
async fn openapi_json_is_served_and_documents_every_endpoint() {
    let app = TestApp::spawn().await;
    let reply = get(&app, "/v1.0/openapi.json", &[]).await;
    assert_eq!(reply.status, 200);
    let generated: Value = serde_json::from_str(&customer_api::rest::openapi_json()).unwrap();
    assert_eq!(reply.body, generated);

    let document = &reply.body;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, methods) in [
        ("/v1.0/customers", &["get", "post"][..]),
        ("/v1.0/customers/{id}", &["get", "delete"]),
        ("/auth/login", &["post"]),
    ] {
        for method in methods {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    let customer = &document["components"]["schemas"]["Customer"]["properties"];
    let fields: BTreeSet<&str> = customer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let tutorial = tutorial_customer();
    let expected: BTreeSet<&str> = tutorial
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, expected);
    assert_eq!(
        document["components"]["schemas"]["WebhookMethod"]["enum"],
        json!(["", "GET", "POST", "PUT", "DELETE"])
    );
    let page_token = document["paths"]["/v1.0/customers"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page_token")
        .unwrap();
    assert!(
        page_token["description"]
            .as_str()
            .unwrap()
            .contains("YYYY-MM-DD HH:MM:SS.ffffff")
    );
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    assert_eq!(
        schemes.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["accesskey", "bearer", "token"])
    );
}
