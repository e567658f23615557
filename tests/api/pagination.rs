//! `customers` as a Relay connection: keyset cursors in (tmCreate desc, id
//! desc) order, page bounds, bad cursors, `totalCount`, the SQL cost of a page
//! with its guest agents, and who may list.
//!
//! Large data sets are seeded straight into the database with controlled
//! `tm_create` values, several rows sharing each timestamp so that the `id`
//! tie-break decides their order. Every expectation is computed from the
//! database itself, never written down by hand.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, error_field};

const PAGE: &str = r#"query($first: Int, $after: String, $last: Int, $before: String) {
  customers(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id username } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

const PAGE_WITH_GUESTS: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id username guestAgent { id username } } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

const PAGE_WITH_COUNT: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id } }
    totalCount
  }
}"#;

const PAGE_WITHOUT_COUNT: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id } }
  }
}"#;

/// One page as the API returned it.
#[derive(Debug)]
struct Page {
    ids: Vec<String>,
    cursors: Vec<String>,
    has_next: bool,
    has_previous: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

fn parse_page(body: &Value) -> Page {
    assert!(body["errors"].is_null(), "unexpected errors: {body}");
    let connection = &body["data"]["customers"];
    let edges = connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {body}"));
    let info = &connection["pageInfo"];
    Page {
        ids: edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect(),
        cursors: edges
            .iter()
            .map(|e| e["cursor"].as_str().unwrap().to_owned())
            .collect(),
        has_next: info["hasNextPage"]
            .as_bool()
            .unwrap_or_else(|| panic!("no hasNextPage in {body}")),
        has_previous: info["hasPreviousPage"]
            .as_bool()
            .unwrap_or_else(|| panic!("no hasPreviousPage in {body}")),
        start_cursor: info["startCursor"].as_str().map(str::to_owned),
        end_cursor: info["endCursor"].as_str().map(str::to_owned),
    }
}

async fn page(app: &TestApp, token: &str, variables: Value) -> Page {
    parse_page(&app.gql(Some(token), PAGE, variables).await)
}

/// The page's own cursors agree with its pageInfo.
fn assert_cursors_consistent(page: &Page) {
    assert_eq!(page.ids.len(), page.cursors.len());
    assert_eq!(
        page.start_cursor.as_ref(),
        page.cursors.first(),
        "startCursor is the first edge's cursor"
    );
    assert_eq!(
        page.end_cursor.as_ref(),
        page.cursors.last(),
        "endCursor is the last edge's cursor"
    );
}

/// Inserts `count` customers named `{prefix}{n}`, three to a `tm_create`
/// (timestamps 1001 µs apart, so cursors must keep microseconds), starting
/// at `base` and going forward in time.
async fn seed_customers(client: &tokio_postgres::Client, prefix: &str, count: i32, base: &str) {
    client
        .execute(
            "INSERT INTO customers (id, username, tm_create)
             SELECT gen_random_uuid(), $1::text || g::text,
                    $3::text::timestamptz + (g / 3) * interval '1001 microseconds'
             FROM generate_series(1, $2::int) AS g",
            &[&prefix, &count, &base],
        )
        .await
        .unwrap();
}

/// Live customer ids in the listing order, as PostgreSQL orders them.
async fn live_ids_in_order(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query("SELECT id::text FROM customers WHERE tm_delete IS NULL ORDER BY tm_create DESC, id DESC", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The listing key of every customer (deleted ones too), as (µs, id) pairs
/// that compare the way the listing orders them (descending).
async fn keys(client: &tokio_postgres::Client) -> HashMap<String, (i64, String)> {
    client
        .query(
            "SELECT id::text, (extract(epoch FROM tm_create) * 1000000)::int8, id::text FROM customers",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect()
}

/// Walks forward with `first: size` from the start, checking pageInfo on every page.
async fn walk_forward(app: &TestApp, token: &str, size: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for index in 0.. {
        assert!(index < 1000, "the walk does not end");
        let page = page(app, token, json!({ "first": size, "after": after })).await;
        assert_cursors_consistent(&page);
        assert_eq!(
            page.has_previous,
            index > 0,
            "hasPreviousPage of forward page {index} (size {size})"
        );
        if page.has_next {
            assert_eq!(
                page.ids.len(),
                size,
                "a page with more after it is full (size {size})"
            );
        } else {
            assert!(page.ids.len() <= size);
        }
        seen.extend(page.ids);
        if !page.has_next {
            break;
        }
        after = page.end_cursor;
        assert!(after.is_some(), "a non-empty page has an endCursor");
    }
    seen
}

#[tokio::test]
async fn customers_pages_forward_without_skips_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    // Older than the platform customer, and a few in the future, so the
    // platform's own row lands in the middle of the list.
    seed_customers(&client, "old", 38, "2024-01-01T00:00:00.123456Z").await;
    seed_customers(&client, "future", 6, "2999-06-01T12:00:00Z").await;
    let expected = live_ids_in_order(&client).await;
    assert_eq!(expected.len(), 45, "44 seeded plus the platform customer");

    for size in [1, 4, 7, 9, 45, 100] {
        let seen = walk_forward(&app, &token, size).await;
        assert_eq!(
            seen, expected,
            "forward walk with first {size} matches the SQL order"
        );
    }

    // A forward page after the last cursor is empty and says so.
    let last = page(&app, &token, json!({ "first": 100 })).await;
    let beyond = page(
        &app,
        &token,
        json!({ "first": 5, "after": last.end_cursor }),
    )
    .await;
    assert!(
        beyond.ids.is_empty(),
        "nothing after the oldest row: {beyond:?}"
    );
    assert!(!beyond.has_next);
    assert!(beyond.has_previous, "an `after` cursor was given");
    assert_eq!(beyond.start_cursor, None);
    assert_eq!(beyond.end_cursor, None);
}

#[tokio::test]
async fn customers_pages_backward_in_the_same_order() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    seed_customers(&client, "old", 38, "2024-01-01T00:00:00.123456Z").await;
    seed_customers(&client, "future", 6, "2999-06-01T12:00:00Z").await;
    let expected = live_ids_in_order(&client).await;
    assert_eq!(expected.len(), 45);

    for size in [1, 4, 7, 45, 100] {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut before: Option<String> = None;
        for index in 0.. {
            assert!(index < 1000, "the walk does not end");
            let page = page(&app, &token, json!({ "last": size, "before": before })).await;
            assert_cursors_consistent(&page);
            assert_eq!(
                page.has_next,
                index > 0,
                "hasNextPage of backward page {index} (size {size})"
            );
            if page.has_previous {
                assert_eq!(
                    page.ids.len(),
                    size,
                    "a page with more before it is full (size {size})"
                );
            }
            let done = !page.has_previous;
            before = page.start_cursor.clone();
            pages.push(page.ids);
            if done {
                break;
            }
        }
        let seen: Vec<String> = pages.into_iter().rev().flatten().collect();
        assert_eq!(
            seen, expected,
            "backward walk with last {size} matches the SQL order"
        );
    }

    // From a cursor in the middle, `last` gives the rows just before it and
    // `first` the rows just after it.
    let all = page(&app, &token, json!({ "first": 100 })).await;
    for at in [1, 5, 13, 20, 44] {
        let cursor = &all.cursors[at];
        let before = page(&app, &token, json!({ "last": 4, "before": cursor })).await;
        let from = at.saturating_sub(4);
        assert_eq!(
            before.ids,
            expected[from..at],
            "last 4 before position {at}"
        );
        assert_eq!(
            before.has_previous,
            from > 0,
            "hasPreviousPage before position {at}"
        );
        assert!(before.has_next, "a `before` cursor was given");
        let after = page(&app, &token, json!({ "first": 4, "after": cursor })).await;
        let to = (at + 5).min(expected.len());
        assert_eq!(
            after.ids,
            expected[at + 1..to],
            "first 4 after position {at}"
        );
        assert_eq!(
            after.has_next,
            to < expected.len(),
            "hasNextPage after position {at}"
        );
    }
}

#[tokio::test]
async fn customers_pages_survive_inserts_and_deletes_between_fetches() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    let api_a = app
        .create_customer_ok(&token, "pager-a", "pager-a-password")
        .await;
    let api_b = app
        .create_customer_ok(&token, "pager-b", "pager-b-password")
        .await;
    seed_customers(&client, "old", 40, "2024-01-01T00:00:00.5Z").await;
    let initial = live_ids_in_order(&client).await;
    assert_eq!(initial.len(), 43);

    let size = 8;
    let mut seen: Vec<String> = Vec::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut inserted_older: Vec<String> = Vec::new();
    let mut inserted_newer: Vec<String> = Vec::new();
    let mut after: Option<String> = None;

    for round in 0.. {
        assert!(round < 100, "the walk does not end");
        let page = page(&app, &token, json!({ "first": size, "after": after })).await;
        assert_cursors_consistent(&page);
        for id in &page.ids {
            assert!(
                !deleted.contains(id),
                "customer {id} was deleted before its page was fetched, yet listed"
            );
        }
        seen.extend(page.ids.iter().cloned());
        if !page.has_next {
            break;
        }
        after = page.end_cursor.clone();
        let cursor_id = page.ids.last().unwrap().clone();

        // Between fetches: every kind of change around the cursor.
        let upcoming = live_ids_in_order(&client).await;
        let position = upcoming.iter().position(|id| *id == cursor_id);
        let ahead: Vec<String> = match position {
            Some(p) => upcoming[p + 1..].to_vec(),
            None => Vec::new(),
        };

        // 1. Rows newer than anything listed so far, and one sharing the
        //    cursor row's tm_create with a bigger id (so it sorts before it).
        let newer = client
            .query(
                "INSERT INTO customers (id, username, tm_create)
                 VALUES (gen_random_uuid(), $1, now() + interval '1 day'),
                        (('ffffffff-ffff-4fff-bfff-' || lpad($4::text, 12, '0'))::uuid, $2,
                         (SELECT tm_create FROM customers WHERE id = $3::text::uuid))
                 RETURNING id::text",
                &[
                    &format!("newer-{round}"),
                    &format!("tie-newer-{round}"),
                    &cursor_id,
                    &round.to_string(),
                ],
            )
            .await
            .unwrap();
        inserted_newer.extend(newer.iter().map(|row| row.get::<_, String>(0)));

        // 2. Rows older than the cursor: one sharing its tm_create with the
        //    smallest id, one just below its tm_create.
        let older = client
            .query(
                "INSERT INTO customers (id, username, tm_create)
                 SELECT gen_random_uuid(), $1, tm_create - interval '1 microsecond'
                   FROM customers WHERE id = $3::text::uuid
                 UNION ALL
                 SELECT ('00000000-0000-4000-8000-' || lpad($4::text, 12, '0'))::uuid, $2, tm_create
                   FROM customers WHERE id = $3::text::uuid
                 RETURNING id::text",
                &[
                    &format!("older-{round}"),
                    &format!("tie-older-{round}"),
                    &cursor_id,
                    &round.to_string(),
                ],
            )
            .await
            .unwrap();
        inserted_older.extend(older.iter().map(|row| row.get::<_, String>(0)));

        // 3. Delete the cursor row itself (the next page must still follow it),
        //    an already listed row, and the next two rows not yet listed: one
        //    through the API, one in SQL.
        let mut doomed = vec![cursor_id.clone()];
        if let Some(listed) = page.ids.first() {
            doomed.push(listed.clone());
        }
        doomed.extend(ahead.iter().take(2).cloned());
        for (n, id) in doomed.iter().enumerate() {
            if n % 2 == 0 {
                let body = app.delete_customer(&token, id).await;
                if body["errors"].is_null() {
                    assert!(
                        body["data"]["deleteCustomer"]["customer"]["tmDelete"].is_string(),
                        "{body}"
                    );
                } else {
                    // The platform's own customer cannot be deleted; anything else must be.
                    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
                    continue;
                }
            } else {
                client
                    .execute(
                        "UPDATE customers SET tm_delete = now() WHERE id = $1::text::uuid AND NOT is_platform",
                        &[id],
                    )
                    .await
                    .unwrap();
            }
            let live: bool = client
                .query_one(
                    "SELECT tm_delete IS NULL FROM customers WHERE id = $1::text::uuid",
                    &[id],
                )
                .await
                .unwrap()
                .get(0);
            if !live {
                deleted.insert(id.clone());
            }
        }
        // The two API-created customers go too, halfway through.
        if round == 2 {
            for id in [&api_a, &api_b] {
                let body = app.delete_customer(&token, id).await;
                assert!(body["errors"].is_null(), "{body}");
                deleted.insert(id.clone());
            }
        }
    }

    // No repeats, and strictly in listing order.
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a customer was listed twice: {seen:?}"
    );
    let keys = keys(&client).await;
    for pair in seen.windows(2) {
        assert!(
            keys[&pair[0]] > keys[&pair[1]],
            "{} listed before {} out of order",
            pair[0],
            pair[1]
        );
    }
    // No skips: every row live from start to end was listed.
    let live_now: HashSet<String> = live_ids_in_order(&client).await.into_iter().collect();
    for id in initial.iter().filter(|id| live_now.contains(*id)) {
        assert!(
            unique.contains(id),
            "customer {id}, live throughout, was skipped"
        );
    }
    // Rows inserted behind the cursor are reached; rows inserted in front of it are not.
    for id in inserted_older.iter().filter(|id| live_now.contains(*id)) {
        assert!(
            unique.contains(id),
            "customer {id}, inserted after the cursor, was skipped"
        );
    }
    for id in &inserted_newer {
        assert!(
            !unique.contains(id),
            "customer {id}, inserted before the cursor, was listed by a later page"
        );
    }
    assert!(
        deleted.len() > 10,
        "the walk deleted rows as it went ({} deleted)",
        deleted.len()
    );
    assert!(!inserted_older.is_empty() && !inserted_newer.is_empty());

    // A fresh listing shows exactly the live customers.
    let fresh = walk_forward(&app, &token, 100).await;
    assert_eq!(fresh, live_ids_in_order(&client).await);
    for id in &deleted {
        assert!(!fresh.contains(id), "deleted customer {id} is listed");
    }
}

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
async fn customers_total_count_counts_live_customers_only_when_asked() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    seed_customers(&client, "old", 33, "2024-01-01T00:00:00Z").await;
    let doomed = app
        .create_customer_ok(&token, "counted-then-gone", "counted-password")
        .await;
    app.create_customer_ok(&token, "counted-stays", "counted-password")
        .await;
    assert!(app.delete_customer(&token, &doomed).await["errors"].is_null());
    client
        .execute(
            "UPDATE customers SET tm_delete = now() WHERE username IN ('old3', 'old4', 'old17')",
            &[],
        )
        .await
        .unwrap();
    let live: i64 = client
        .query_one(
            "SELECT count(*) FROM customers WHERE tm_delete IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        live,
        1 + 33 + 1 - 3,
        "the platform, the seeded rows and one API customer, minus the deleted"
    );

    let listed = walk_forward(&app, &token, 10).await;
    assert_eq!(
        i64::try_from(listed.len()).unwrap(),
        live,
        "the listing agrees with the database"
    );

    // The same total whatever the page, its size, or its cursor.
    let first = app
        .gql(Some(&token), PAGE_WITH_COUNT, json!({ "first": 5 }))
        .await;
    assert!(first["errors"].is_null(), "{first}");
    assert_eq!(
        first["data"]["customers"]["totalCount"],
        json!(live),
        "{first}"
    );
    let cursor = first["data"]["customers"]["edges"][4]["cursor"].clone();
    for variables in [
        json!({ "first": 0 }),
        json!({ "first": 100 }),
        json!({ "first": 3, "after": cursor }),
    ] {
        let body = app
            .gql(Some(&token), PAGE_WITH_COUNT, variables.clone())
            .await;
        assert_eq!(
            body["data"]["customers"]["totalCount"],
            json!(live),
            "{variables}: {body}"
        );
    }

    // Warm the pool so that opening connections does not count below.
    for _ in 0..2 {
        futures_util::future::join_all(
            (0..4).map(|_| app.gql(Some(&token), PAGE_WITH_COUNT, json!({ "first": 5 }))),
        )
        .await;
    }

    let before = app.statements();
    let body = app
        .gql(Some(&token), PAGE_WITHOUT_COUNT, json!({ "first": 5 }))
        .await;
    let without = app.statements() - before;
    assert!(
        body["errors"].is_null() && body["data"]["customers"]["totalCount"].is_null(),
        "{body}"
    );

    // The count is shared until the data changes: start from none.
    app.state.customer_count.invalidate();
    let before = app.statements();
    let body = app
        .gql(Some(&token), PAGE_WITH_COUNT, json!({ "first": 5 }))
        .await;
    let with = app.statements() - before;
    assert_eq!(
        body["data"]["customers"]["totalCount"],
        json!(live),
        "{body}"
    );

    println!("statements for a page of 5: {without} without totalCount, {with} with it");
    assert!(
        with > without,
        "totalCount is computed only when selected ({without} without, {with} with)"
    );
    assert_eq!(
        without, 1,
        "without totalCount: 1 page query (the credential check is served from the warm cache)"
    );
    assert_eq!(
        with,
        without + 1,
        "totalCount costs exactly one more statement"
    );
    let before = app.statements();
    let body = app
        .gql(Some(&token), PAGE_WITH_COUNT, json!({ "first": 5 }))
        .await;
    assert_eq!(body["data"]["customers"]["totalCount"], json!(live));
    assert_eq!(
        app.statements() - before,
        without,
        "an unchanged count is not counted again"
    );
}

#[tokio::test]
async fn customers_loads_guest_agents_in_one_batch_per_page() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let client = app.db.client().await;
    for n in 0..3 {
        app.create_customer_ok(&token, &format!("batched-{n}"), "batched-password")
            .await;
    }
    seed_customers(&client, "old", 120, "2024-01-01T00:00:00Z").await;
    // Seeded customers get a guest agent of the same username (except every
    // seventh, which gets none) and a regular agent that must not be picked.
    client
        .batch_execute(
            "INSERT INTO agents (id, customer_id, username, password_hash, permission, is_guest)
             SELECT gen_random_uuid(), id, 'staff-' || username, 'x', 16, false
               FROM customers WHERE username LIKE 'old%';
             INSERT INTO agents (id, customer_id, username, password_hash, permission, is_guest)
             SELECT gen_random_uuid(), id, username, 'x', 32, true
               FROM customers WHERE username LIKE 'old%' AND substr(username, 4)::int % 7 <> 0;",
        )
        .await
        .unwrap();
    let guests: HashMap<String, (String, String)> = client
        .query(
            "SELECT customer_id::text, id::text, username FROM agents WHERE is_guest",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    let names: HashMap<String, String> = client
        .query("SELECT id::text, username FROM customers", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let expected = live_ids_in_order(&client).await;
    assert_eq!(expected.len(), 124);

    let check_page = |body: &Value, from: usize, size: usize| {
        assert!(body["errors"].is_null(), "{body}");
        let edges = body["data"]["customers"]["edges"].as_array().unwrap();
        let ids: Vec<&str> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            expected[from..from + size],
            "page of {size} from {from}"
        );
        for edge in edges {
            let node = &edge["node"];
            let id = node["id"].as_str().unwrap();
            assert_eq!(node["username"].as_str(), Some(names[id].as_str()));
            match guests.get(id) {
                Some((agent_id, agent_username)) => {
                    assert_eq!(
                        node["guestAgent"]["id"].as_str(),
                        Some(agent_id.as_str()),
                        "guest agent of {node}"
                    );
                    assert_eq!(
                        node["guestAgent"]["username"].as_str(),
                        Some(agent_username.as_str()),
                        "{node}"
                    );
                    assert_eq!(
                        agent_username, &names[id],
                        "a guest agent has its customer's username"
                    );
                }
                None => assert!(
                    node["guestAgent"].is_null(),
                    "{id} has no guest agent: {node}"
                ),
            }
        }
        body["data"]["customers"]["pageInfo"]["endCursor"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Every seeded node's guest agent, across the whole list.
    let mut after: Option<String> = None;
    for from in (0..expected.len()).step_by(31) {
        let size = 31.min(expected.len() - from);
        let body = app
            .gql(
                Some(&token),
                PAGE_WITH_GUESTS,
                json!({ "first": size, "after": after }),
            )
            .await;
        after = Some(check_page(&body, from, size));
    }

    // Warm the pool so that opening connections does not count below.
    for _ in 0..2 {
        futures_util::future::join_all(
            (0..4).map(|_| app.gql(Some(&token), PAGE_WITH_GUESTS, json!({ "first": 5 }))),
        )
        .await;
    }

    let deep_cursor = {
        let body = app
            .gql(Some(&token), PAGE_WITH_GUESTS, json!({ "first": 60 }))
            .await;
        check_page(&body, 0, 60)
    };
    // Each shape three times: whether a page's guest agents end up in one
    // batch must not depend on luck with timing.
    let mut costs = Vec::new();
    let shapes = [
        (5, None, 0),
        (50, None, 0),
        (100, None, 0),
        (50, Some(deep_cursor), 60),
    ];
    for (size, after, from) in shapes.iter().cycle().take(shapes.len() * 3).cloned() {
        let start = app.statements();
        let body = app
            .gql(
                Some(&token),
                PAGE_WITH_GUESTS,
                json!({ "first": size, "after": after }),
            )
            .await;
        let cost = app.statements() - start;
        check_page(&body, from, size);
        println!(
            "statements for a page of {size} customers with guestAgent (from position {from}): {cost}"
        );
        costs.push((size, from, cost));
    }
    assert!(
        costs.iter().all(|(_, _, cost)| *cost == costs[0].2),
        "the cost of a page does not depend on its size or depth (no N+1, one guest-agent batch): {costs:?}"
    );
    for (size, from, cost) in &costs {
        assert_eq!(
            *cost, 2,
            "a page of {size} from position {from} with guestAgent: 1 page query + 1 guest-agent batch (the credential check is served from the warm cache); all: {costs:?}"
        );
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
