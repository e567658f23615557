//! Page sizes, cursors and callers the listing refuses, and the bounds it
//! keeps to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{PAGE, PAGE_WITH_COUNT, live_ids_in_order, page, seed_customers};
use crate::harness::{TestApp, error_code, error_field};

#[tokio::test]
async fn customers_bounds_page_sizes() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    seed_customers(&client, "old", 129, "2024-01-01T00:00:00Z").await;
    let expected = live_ids_in_order(&client).await;
    assert_eq!(expected.len(), 130);

    let empty = page(&app, &token, json!({ "first": 0 })).await;
    assert!(empty.ids.is_empty(), "first 0 gives no edges: {empty:?}");
    assert!(empty.has_next, "first 0 with rows present: hasNextPage");
    assert!(!empty.has_previous);
    assert_eq!((empty.start_cursor, empty.end_cursor), (None, None));

    let empty = page(&app, &token, json!({ "last": 0 })).await;
    assert!(empty.ids.is_empty(), "last 0 gives no edges: {empty:?}");
    assert!(
        empty.has_previous,
        "last 0 with rows present: hasPreviousPage"
    );

    let full = page(&app, &token, json!({ "first": 100 })).await;
    assert_eq!(full.ids, expected[..100]);
    assert!(full.has_next);
    let full = page(&app, &token, json!({ "last": 100 })).await;
    assert_eq!(full.ids, expected[expected.len() - 100..]);
    assert!(full.has_previous);

    // Default page size: 20, from the newest end.
    let default = page(&app, &token, json!({})).await;
    assert_eq!(
        default.ids,
        expected[..20],
        "the default page is the 20 newest"
    );
    assert!(default.has_next);
    let default = page(&app, &token, json!({ "after": default.end_cursor })).await;
    assert_eq!(
        default.ids,
        expected[20..40],
        "the default page size applies after a cursor too"
    );

    for (variables, field) in [
        (json!({ "first": 101 }), "first"),
        (json!({ "first": -1 }), "first"),
        (json!({ "first": i32::MAX }), "first"),
        (json!({ "first": i32::MIN }), "first"),
        (json!({ "last": 101 }), "last"),
        (json!({ "last": -1 }), "last"),
    ] {
        let body = app.gql(Some(&token), PAGE, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
        assert_eq!(error_field(&body), field, "{variables}: {body}");
        assert!(
            body["data"]["customers"].is_null(),
            "no page with an error: {body}"
        );
    }
    for variables in [
        json!({ "first": 1, "last": 1 }),
        json!({ "first": 0, "last": 0 }),
    ] {
        let body = app.gql(Some(&token), PAGE, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
        let field = error_field(&body);
        assert!(
            field == "first" || field == "last",
            "{variables}: field {field} in {body}"
        );
    }
}

/// A cursor the server issued, decoded and re-encoded with changes.
fn tampered_cursors(valid: &str) -> Vec<(String, String)> {
    let text = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(valid)
            .expect("cursors are URL-safe base64"),
    )
    .unwrap();
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 3, "cursor layout changed: {text}");
    let encode = |s: String| URL_SAFE_NO_PAD.encode(s);
    let (version, micros, id) = (parts[0], parts[1], parts[2]);
    vec![
        ("version bumped".into(), encode(format!("c9:{micros}:{id}"))),
        ("no version".into(), encode(format!("{micros}:{id}"))),
        (
            "extra part".into(),
            encode(format!("{version}:{micros}:{id}:x")),
        ),
        (
            "id cut short".into(),
            encode(format!("{version}:{micros}:{}", &id[..30])),
        ),
        (
            "id not hex".into(),
            encode(format!(
                "{version}:{micros}:{}",
                id.replace(|c: char| c.is_ascii_hexdigit(), "z")
            )),
        ),
        (
            "time not a number".into(),
            encode(format!("{version}:{micros}x:{id}")),
        ),
        (
            "time beyond any date".into(),
            encode(format!("{version}:{}:{id}", i64::MAX)),
        ),
        ("padded".into(), format!("{valid}==")),
        (
            "one character dropped".into(),
            valid[..valid.len() - 1].to_owned(),
        ),
        ("spaces around".into(), format!(" {valid} ")),
        ("plain text".into(), text.clone()),
    ]
}

#[tokio::test]
async fn customers_rejects_bad_cursors_as_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    seed_customers(&app.db.client().await, "old", 5, "2024-01-01T00:00:00Z").await;
    let valid = page(&app, &token, json!({ "first": 3 }))
        .await
        .end_cursor
        .unwrap();

    let mut bad: Vec<(String, String)> = vec![
        ("empty".into(), String::new()),
        ("random text".into(), "not a cursor, honestly!".into()),
        (
            "base64 of junk".into(),
            URL_SAFE_NO_PAD.encode("hello world"),
        ),
        (
            "base64 of bytes".into(),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x80]),
        ),
        ("a uuid".into(), uuid::Uuid::new_v4().to_string()),
    ];
    bad.extend(tampered_cursors(&valid));

    for (what, cursor) in &bad {
        for (field, variables) in [
            ("after", json!({ "first": 2, "after": cursor })),
            ("before", json!({ "last": 2, "before": cursor })),
        ] {
            let body = app.gql(Some(&token), PAGE, variables).await;
            assert_eq!(
                error_code(&body),
                "BAD_USER_INPUT",
                "{what} cursor {cursor:?} as {field}: {body}"
            );
            assert_eq!(
                error_field(&body),
                field,
                "{what} cursor {cursor:?} as {field}: {body}"
            );
        }
    }

    // The untouched cursor still works in both directions.
    assert_eq!(
        page(&app, &token, json!({ "first": 2, "after": valid }))
            .await
            .ids
            .len(),
        2
    );
    assert_eq!(
        page(&app, &token, json!({ "last": 2, "before": valid }))
            .await
            .ids
            .len(),
        2
    );
}

#[tokio::test]
async fn customers_rejects_cursor_with_timestamp_outside_database_range() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let valid = page(&app, &token, json!({ "first": 1 }))
        .await
        .end_cursor
        .unwrap();
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&valid).unwrap()).unwrap();
    let id = text.rsplit(':').next().unwrap();
    // Representable as a chrono date (about 251,000 BC) but far before the
    // earliest timestamptz PostgreSQL stores (4713 BC). The server never
    // issues such a cursor, so a client sending one sent a malformed cursor.
    let cursor = URL_SAFE_NO_PAD.encode(format!("c1:-8000000000000000000:{id}"));
    for (field, variables) in [
        ("after", json!({ "first": 2, "after": cursor })),
        ("before", json!({ "last": 2, "before": cursor })),
    ] {
        let body = app.gql(Some(&token), PAGE, variables).await;
        assert!(
            body["errors"].is_array(),
            "{field}: expected an error, got {body}"
        );
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(error_field(&body), field, "{field}: {body}");
    }
}

#[tokio::test]
async fn customers_requires_a_super_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "plain-customer", "plain-customer-password")
        .await;
    let guest = app.token("plain-customer", "plain-customer-password").await;

    for query in [PAGE, PAGE_WITH_COUNT, "{ customers { totalCount } }"] {
        let body = app.gql(None, query, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "no token: {body}");
        assert!(body["data"]["customers"].is_null(), "{body}");

        let body = app.gql(Some("not-a-token"), query, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "a bad token: {body}");
        assert!(body["data"]["customers"].is_null(), "{body}");

        let body = app.gql(Some(&guest), query, json!({})).await;
        assert_eq!(
            error_code(&body),
            "FORBIDDEN",
            "a customer's guest agent: {body}"
        );
        assert!(body["data"]["customers"].is_null(), "{body}");
    }

    // And the admin token does list both customers.
    let listed = page(&app, &admin, json!({})).await;
    assert_eq!(
        listed.ids.len(),
        2,
        "the platform and the created customer: {listed:?}"
    );
}
