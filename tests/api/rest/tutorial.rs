//! The seed tutorial's requests and the shapes of its responses, and the
//! `openapi.json` that documents them.

use std::collections::BTreeSet;

use chrono::Utc;
use serde_json::{Value, json};

use super::{
    UNSET, create, delete_customer, get, get_customer, rest_login, rest_time,
    tutorial_create_request,
};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp};

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
        "tm_delete": "9999-01-01 00:00:00.000000",
        // Not in the tutorial: the contract adds the lifecycle status.
        "status": "active"
    })
}

/// The tutorial's response to that request (and, with `tm_delete` set, to
/// the `DELETE` of the same customer): the request's fields but the
/// password, with an id and timestamps.
fn tutorial_created(tm_delete: &str) -> Value {
    let mut created = tutorial_create_request();
    let fields = created.as_object_mut().unwrap();
    fields.remove("password");
    for (key, value) in [
        ("id", "ff424526-f65d-483f-bc36-3b2357c6c6a9"),
        ("tm_create", "2022-11-02 15:57:08.368093"),
        ("tm_update", "9999-01-01 00:00:00.000000"),
        ("tm_delete", tm_delete),
        (
            "status",
            if tm_delete == UNSET {
                "active"
            } else {
                "deleted"
            },
        ),
    ] {
        fields.insert(key.into(), json!(value));
    }
    created
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
    let detail = get_customer(&app, &token, &id).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_same_shape(&tutorial_customer(), &detail.body, "detail");
    assert_eq!(detail.body, created.body);

    // Delete customer.
    let deleted = delete_customer(&app, &token, &id).await;
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
    let detail = get_customer(&app, &token, &id).await;
    assert_eq!(detail.body["tm_delete"], tm_delete);
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
