//! `customers(filter:, orderBy:)`: search, status and creation-time filters,
//! `totalCount` under the filter, exact paging in both orders and both
//! directions, input limits, and who may list.
//!
//! Customers are seeded straight into the database with controlled names,
//! states and `tm_create`; expectations for searches and pages are computed
//! from the database with plain SQL, never by the code under test.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::customer;
use crate::harness::{TestApp, error_code, error_field, insert_customers, sql_column, unique};

const LIST: &str = r#"query($filter: CustomerFilter, $orderBy: CustomerOrder! = TM_CREATE_DESC,
                       $first: Int, $after: String, $last: Int, $before: String) {
  customers(filter: $filter, orderBy: $orderBy, first: $first, after: $after,
            last: $last, before: $before) {
    edges { cursor node { id username name status tmFreeze tmDelete } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}"#;

async fn list(app: &TestApp, token: Option<&str>, variables: Value) -> Value {
    app.gql(token, LIST, variables).await
}

fn connection(body: &Value) -> &Value {
    assert!(body["errors"].is_null(), "unexpected errors: {body}");
    let connection = &body["data"]["customers"];
    assert!(connection["edges"].is_array(), "{body}");
    connection
}

fn ids(body: &Value) -> Vec<String> {
    connection(body)["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn total(body: &Value) -> i64 {
    connection(body)["totalCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no totalCount: {body}"))
}

/// Lists everything `filter` selects in one page (there are never more
/// than 100 in these tests) and checks `totalCount` against it.
async fn all(app: &TestApp, admin: &str, filter: Value) -> BTreeSet<String> {
    let body = list(app, Some(admin), json!({ "filter": filter, "first": 100 })).await;
    assert!(
        !connection(&body)["pageInfo"]["hasNextPage"]
            .as_bool()
            .unwrap()
    );
    let found = ids(&body);
    assert_eq!(
        total(&body),
        found.len() as i64,
        "totalCount: {filter}: {body}"
    );
    let set: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(set.len(), found.len(), "no duplicates: {body}");
    set
}

/// Inserts a customer; `state` is "active", "frozen", "deleted" or
/// "frozen+deleted". Returns its id.
async fn seed(
    client: &tokio_postgres::Client,
    username: &str,
    name: &str,
    tm_create: &str,
    state: &str,
) -> String {
    client
        .query_one(
            "INSERT INTO customers (id, username, name, tm_create, tm_freeze, tm_delete)
             VALUES (gen_random_uuid(), $1, $2, $3::text::timestamptz,
                     CASE WHEN $4 LIKE 'frozen%' THEN now() END,
                     CASE WHEN $4 LIKE '%deleted' THEN now() END)
             RETURNING id::text",
            &[&username, &name, &tm_create, &state],
        )
        .await
        .unwrap_or_else(|e| panic!("seed {username}: {e}"))
        .get(0)
}

/// What a search for `term` must find among live customers, by plain
/// substring tests (no LIKE at all).
async fn substring_oracle(client: &tokio_postgres::Client, term: &str) -> BTreeSet<String> {
    sql_column(
        client,
        "SELECT id::text FROM customers WHERE tm_delete IS NULL
           AND (strpos(lower(username), lower($1)) > 0 OR strpos(lower(name), lower($1)) > 0)",
        &[&term],
    )
    .await
    .into_iter()
    .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).clone()).collect()
}

#[tokio::test]
async fn search_is_a_case_insensitive_substring_of_username_or_name_with_wildcards_literal() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = app.db.client().await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let at = "2024-01-01T00:00:00Z";

    let alpha = seed(&client, &format!("{tag}-Alpha"), "first", at, "active").await;
    let named = seed(
        &client,
        "zz-named",
        &format!("Has {} inside", tag.to_uppercase()),
        at,
        "active",
    )
    .await;
    let pct = seed(
        &client,
        &format!("pct1-{tag}"),
        "save 100% now",
        at,
        "active",
    )
    .await;
    let pctx = seed(
        &client,
        &format!("pct2-{tag}"),
        "save 100x now",
        at,
        "active",
    )
    .await;
    let und = seed(&client, &format!("und1-{tag}"), "a_b", at, "active").await;
    let undx = seed(&client, &format!("und2-{tag}"), "axb", at, "active").await;
    let bs = seed(&client, &format!("bs1-{tag}"), "back\\slash", at, "active").await;
    let bsx = seed(&client, &format!("bs2-{tag}"), "backslash", at, "active").await;
    let frozen = seed(&client, &format!("frz-{tag}"), "", at, "frozen").await;
    let deleted = seed(&client, &format!("del-{tag}"), "", at, "deleted").await;
    let _other = seed(&client, "unrelated", "nothing here", at, "active").await;

    let everything_with_tag = set(&[&alpha, &named, &pct, &pctx, &und, &undx, &bs, &bsx, &frozen]);
    for (term, expected) in [
        (tag.to_uppercase(), everything_with_tag.clone()),
        (tag.clone(), everything_with_tag.clone()),
        (format!("{tag}-aLPHa"), set(&[&alpha])),
        ("HAS ".to_owned(), set(&[&named])),
        ("100%".to_owned(), set(&[&pct])),
        ("a_b".to_owned(), set(&[&und])),
        ("k\\s".to_owned(), set(&[&bs])),
        ("\\".to_owned(), set(&[&bs])),
        (format!("del-{tag}"), BTreeSet::new()),
        ("no such thing".to_owned(), BTreeSet::new()),
    ] {
        let found = all(&app, &admin, json!({ "search": term })).await;
        assert_eq!(found, expected, "search {term:?}");
    }
    // Every wildcard-bearing term finds what a plain substring test finds.
    for term in ["%", "_", "\\", "%_", "0%", "_b", "\\s", "%%", "__"] {
        let found = all(&app, &admin, json!({ "search": term })).await;
        assert_eq!(
            found,
            substring_oracle(&client, term).await,
            "search {term:?}"
        );
    }
    assert!(
        all(&app, &admin, json!({ "search": "%" }))
            .await
            .contains(&pct)
    );

    // Empty, or omitted: everything live.
    let live: BTreeSet<String> = sql_column(
        &client,
        "SELECT id::text FROM customers WHERE tm_delete IS NULL",
        &[],
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(all(&app, &admin, json!({ "search": "" })).await, live);
    assert_eq!(all(&app, &admin, json!({})).await, live);
    assert!(!live.contains(&deleted));

    // With a status, among the deleted ones too.
    assert_eq!(
        all(&app, &admin, json!({ "search": tag, "status": "DELETED" })).await,
        set(&[&deleted])
    );
    assert_eq!(
        all(&app, &admin, json!({ "search": tag, "status": "FROZEN" })).await,
        set(&[&frozen])
    );
}

#[tokio::test]
async fn status_selects_active_frozen_or_deleted_and_omitted_lists_every_live_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = app.db.client().await;
    let platform = app.own_customer_id(&admin).await;
    let at = "2024-02-01T00:00:00Z";
    let active = seed(&client, &unique("act"), "", at, "active").await;
    let frozen = seed(&client, &unique("frz"), "", at, "frozen").await;
    let deleted = seed(&client, &unique("del"), "", at, "deleted").await;
    let both = seed(&client, &unique("both"), "", at, "frozen+deleted").await;
    // One frozen through the API, as an operator would.
    let via_api = app
        .create_customer_ok(&admin, &unique("api"), "a-long-password")
        .await;
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": via_api }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    assert_eq!(
        all(&app, &admin, json!({})).await,
        set(&[&platform, &active, &frozen, &via_api]),
        "omitted: live, frozen included"
    );
    assert_eq!(
        all(&app, &admin, json!({ "status": "ACTIVE" })).await,
        set(&[&platform, &active])
    );
    assert_eq!(
        all(&app, &admin, json!({ "status": "FROZEN" })).await,
        set(&[&frozen, &via_api])
    );
    assert_eq!(
        all(&app, &admin, json!({ "status": "DELETED" })).await,
        set(&[&deleted, &both])
    );
    // No filter at all, and the status each node reports.
    let body = list(&app, Some(&admin), json!({ "first": 100 })).await;
    assert_eq!(total(&body), 4, "{body}");
    for (status, filter) in [
        ("ACTIVE", "ACTIVE"),
        ("FROZEN", "FROZEN"),
        ("DELETED", "DELETED"),
    ] {
        let body = list(
            &app,
            Some(&admin),
            json!({ "filter": { "status": filter }, "first": 100 }),
        )
        .await;
        for edge in connection(&body)["edges"].as_array().unwrap() {
            assert_eq!(edge["node"]["status"], status, "{body}");
        }
    }
    let body = list(
        &app,
        Some(&admin),
        json!({ "filter": { "status": "DELETED" }, "first": 100 }),
    )
    .await;
    let node = connection(&body)["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == both.as_str())
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert!(node["node"]["tmFreeze"].is_string() && node["node"]["tmDelete"].is_string());

    // Recovering moves the customer between the listings at once.
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { recoverCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": via_api }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        all(&app, &admin, json!({ "status": "FROZEN" })).await,
        set(&[&frozen])
    );
    assert!(
        all(&app, &admin, json!({ "status": "ACTIVE" }))
            .await
            .contains(&via_api)
    );
}

#[tokio::test]
async fn created_after_is_inclusive_and_created_before_exclusive() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = app.db.client().await;
    let tag = unique("range");
    let mut t = Vec::new();
    for hour in 0..5 {
        let at = format!("2020-01-01T0{hour}:00:00Z");
        t.push(seed(&client, &format!("{tag}-{hour}"), "", &at, "active").await);
    }
    let cases = [
        (
            json!({ "createdAfter": "2020-01-01T01:00:00Z" }),
            vec![1, 2, 3, 4],
        ),
        (
            json!({ "createdAfter": "2020-01-01T01:00:00.000001Z" }),
            vec![2, 3, 4],
        ),
        (
            json!({ "createdBefore": "2020-01-01T03:00:00Z" }),
            vec![0, 1, 2],
        ),
        (
            json!({ "createdBefore": "2020-01-01T03:00:00.000001Z" }),
            vec![0, 1, 2, 3],
        ),
        (
            json!({ "createdAfter": "2020-01-01T01:00:00Z", "createdBefore": "2020-01-01T03:00:00Z" }),
            vec![1, 2],
        ),
        // The same instants written with an offset.
        (
            json!({ "createdAfter": "2020-01-01T02:00:00+01:00", "createdBefore": "2020-01-01T04:00:00+01:00" }),
            vec![1, 2],
        ),
        (
            json!({ "createdAfter": "2020-01-01T02:00:00Z", "createdBefore": "2020-01-01T02:00:00Z" }),
            vec![],
        ),
        (
            json!({ "createdAfter": "2020-01-01T03:00:00Z", "createdBefore": "2020-01-01T01:00:00Z" }),
            vec![],
        ),
    ];
    for (range, expected) in cases {
        let mut filter = range.clone();
        filter["search"] = json!(tag);
        let found = all(&app, &admin, filter).await;
        let expected: BTreeSet<String> = expected.iter().map(|i: &usize| t[*i].clone()).collect();
        assert_eq!(found, expected, "{range}");
    }

    // In order, both ways.
    let filter = json!({ "search": tag, "createdAfter": "2020-01-01T01:00:00Z" });
    let body = list(
        &app,
        Some(&admin),
        json!({ "filter": filter, "orderBy": "TM_CREATE_ASC" }),
    )
    .await;
    assert_eq!(
        ids(&body),
        vec![t[1].clone(), t[2].clone(), t[3].clone(), t[4].clone()]
    );
    let body = list(&app, Some(&admin), json!({ "filter": filter })).await;
    assert_eq!(
        ids(&body),
        vec![t[4].clone(), t[3].clone(), t[2].clone(), t[1].clone()]
    );
}

/// Walks the whole listing page by page, forward (`first`/`after`) or
/// backward (`last`/`before`), checking each page's `pageInfo` and
/// `totalCount`; returns the ids in listing order.
async fn walk(
    app: &TestApp,
    admin: &str,
    filter: &Value,
    order: &str,
    size: i64,
    forward: bool,
    expected_total: i64,
) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let variables = if forward {
            json!({ "filter": filter, "orderBy": order, "first": size, "after": cursor })
        } else {
            json!({ "filter": filter, "orderBy": order, "last": size, "before": cursor })
        };
        let body = list(app, Some(admin), variables).await;
        let page = ids(&body);
        let info = &connection(&body)["pageInfo"];
        assert_eq!(total(&body), expected_total, "{body}");
        assert!(page.len() as i64 <= size, "{body}");
        let (more, came_from) = if forward {
            (
                info["hasNextPage"].as_bool().unwrap(),
                info["hasPreviousPage"].as_bool().unwrap(),
            )
        } else {
            (
                info["hasPreviousPage"].as_bool().unwrap(),
                info["hasNextPage"].as_bool().unwrap(),
            )
        };
        assert_eq!(
            came_from,
            cursor.is_some(),
            "{order} forward={forward}: {body}"
        );
        if more {
            assert_eq!(
                page.len() as i64,
                size,
                "a page with more beyond is full: {body}"
            );
        }
        let edges = connection(&body)["edges"].as_array().unwrap();
        if forward {
            seen.extend(page);
            cursor = info["endCursor"].as_str().map(str::to_owned);
            if let Some(last) = edges.last() {
                assert_eq!(info["endCursor"], last["cursor"], "{body}");
            }
        } else {
            let mut earlier = page;
            earlier.extend(seen);
            seen = earlier;
            cursor = info["startCursor"].as_str().map(str::to_owned);
            if let Some(first) = edges.first() {
                assert_eq!(info["startCursor"], first["cursor"], "{body}");
            }
        }
        if !more {
            return seen;
        }
        assert!(cursor.is_some(), "more pages but no cursor: {body}");
    }
    panic!("the walk did not end");
}

#[tokio::test]
async fn filtered_pages_walk_exactly_in_both_orders_and_both_directions() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = app.db.client().await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let walked = format!("walk-{tag}-");
    // Three to a tm_create, and the noise shares those very timestamps, so
    // that ties and rows outside the filter sit between the pages' bounds.
    insert_customers(
        &client,
        &walked,
        1..=26,
        "2021-06-01 00:00:00+00",
        "1 minute",
    )
    .await;
    insert_customers(
        &client,
        &format!("noise-{tag}-"),
        1..=26,
        "2021-06-01 00:00:00+00",
        "1 minute",
    )
    .await;
    // Frozen ones stay in the default listing; deleted ones leave it.
    client
        .execute(
            "UPDATE customers SET tm_freeze = now() WHERE username IN ($1 || '4', $1 || '5', $1 || '17')",
            &[&walked],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE customers SET tm_delete = now() WHERE username IN ($1 || '7', $1 || '20')",
            &[&walked],
        )
        .await
        .unwrap();
    let newest_first = sql_column(
        &client,
        "SELECT id::text FROM customers WHERE username LIKE $1 || '%' AND tm_delete IS NULL
         ORDER BY tm_create DESC, id DESC",
        &[&walked],
    )
    .await;
    assert_eq!(newest_first.len(), 24);
    let oldest_first: Vec<String> = newest_first.iter().rev().cloned().collect();
    let filter = json!({ "search": walked });

    for size in [1, 4, 7, 24, 100] {
        for (order, expected) in [
            ("TM_CREATE_DESC", &newest_first),
            ("TM_CREATE_ASC", &oldest_first),
        ] {
            for forward in [true, false] {
                let got = walk(&app, &admin, &filter, order, size, forward, 24).await;
                assert_eq!(&got, expected, "{order}, size {size}, forward {forward}");
            }
        }
    }

    // Deleted ones page by the same keys.
    let deleted_first = sql_column(
        &client,
        "SELECT id::text FROM customers WHERE username LIKE $1 || '%' AND tm_delete IS NOT NULL
         ORDER BY tm_create DESC, id DESC",
        &[&walked],
    )
    .await;
    let got = walk(
        &app,
        &admin,
        &json!({ "search": walked, "status": "DELETED" }),
        "TM_CREATE_DESC",
        1,
        true,
        2,
    )
    .await;
    assert_eq!(got, deleted_first);

    // A cursor is a position: one from the unfiltered listing (a noise row)
    // continues the filtered one from there, in either order.
    let body = list(&app, Some(&admin), json!({ "first": 30 })).await;
    let edge = connection(&body)["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["node"]["username"]
                .as_str()
                .unwrap()
                .starts_with("noise-")
        })
        .unwrap()
        .clone();
    let noise_id = edge["node"]["id"].as_str().unwrap().to_owned();
    let cursor = edge["cursor"].as_str().unwrap().to_owned();
    let older = sql_column(
        &client,
        "SELECT id::text FROM customers WHERE username LIKE $1 || '%' AND tm_delete IS NULL
           AND (tm_create, id) < (SELECT tm_create, id FROM customers WHERE id = $2::text::uuid)
         ORDER BY tm_create DESC, id DESC",
        &[&walked, &noise_id],
    )
    .await;
    let body = list(
        &app,
        Some(&admin),
        json!({ "filter": filter, "first": 100, "after": cursor }),
    )
    .await;
    assert_eq!(ids(&body), older);
    assert_eq!(total(&body), 24, "totalCount ignores the cursor");
    let newer = sql_column(
        &client,
        "SELECT id::text FROM customers WHERE username LIKE $1 || '%' AND tm_delete IS NULL
           AND (tm_create, id) > (SELECT tm_create, id FROM customers WHERE id = $2::text::uuid)
         ORDER BY tm_create ASC, id ASC",
        &[&walked, &noise_id],
    )
    .await;
    let body = list(
        &app,
        Some(&admin),
        json!({ "filter": filter, "orderBy": "TM_CREATE_ASC", "first": 100, "after": cursor }),
    )
    .await;
    assert_eq!(ids(&body), newer);
    assert_eq!(older.len() + newer.len(), 24);
}

#[tokio::test]
async fn filter_input_is_bounded_and_named_in_the_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = app.db.client().await;
    let long_name = "é".repeat(255);
    let id = seed(
        &client,
        "longname",
        &long_name,
        "2024-01-01T00:00:00Z",
        "active",
    )
    .await;

    // 255 characters (510 bytes) is allowed, and finds it.
    let found = all(&app, &admin, json!({ "search": long_name })).await;
    assert_eq!(found, set(&[&id]));

    for search in [
        "a".repeat(256),
        "é".repeat(256),
        "ab\u{0}c".to_owned(),
        "\u{0}".to_owned(),
    ] {
        let body = list(
            &app,
            Some(&admin),
            json!({ "filter": { "search": search } }),
        )
        .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_field(&body), "search", "{body}");
        assert!(body["data"].is_null(), "{body}");
    }

    for (field, value) in [
        ("createdAfter", "0000-06-01T00:00:00Z"),
        ("createdAfter", "+10000-01-01T00:00:00Z"),
        ("createdAfter", "-0001-01-01T00:00:00Z"),
        ("createdBefore", "0000-06-01T00:00:00Z"),
        ("createdBefore", "+10000-01-01T00:00:00Z"),
    ] {
        let body = list(&app, Some(&admin), json!({ "filter": { field: value } })).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{field} {value}: {body}"
        );
        assert!(body["data"].is_null(), "{body}");
    }
    // The bounds of the range are accepted.
    for (field, value) in [
        ("createdAfter", "0001-01-01T00:00:00Z"),
        ("createdBefore", "9999-12-31T23:59:59.999999Z"),
    ] {
        let body = list(&app, Some(&admin), json!({ "filter": { field: value } })).await;
        assert!(body["errors"].is_null(), "{field} {value}: {body}");
    }
    let body = list(
        &app,
        Some(&admin),
        json!({ "filter": { "status": "GONE" } }),
    )
    .await;
    assert!(
        body["data"].is_null() && body["errors"].is_array(),
        "{body}"
    );
}

#[tokio::test]
async fn who_may_list_with_a_filter() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = customer(&app, &admin, "lsa").await;
    let b = customer(&app, &admin, "lsb").await;
    let f = customer(&app, &admin, "lsf").await;
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { freezeCustomer(input: {id: $id}) { customer { id } } }",
            json!({ "id": f.id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    let filters = [
        json!({ "search": a.username }),
        json!({ "status": "FROZEN" }),
        json!({ "status": "DELETED", "createdAfter": "2000-01-01T00:00:00Z" }),
        // Invalid input does not tell a caller who may not list anything more.
        json!({ "search": "x".repeat(300) }),
    ];
    for (what, token, code) in [
        ("own admin", Some(a.admin.as_str()), "FORBIDDEN"),
        ("own access key", Some(a.key.as_str()), "FORBIDDEN"),
        ("plain agent", Some(a.agent.as_str()), "FORBIDDEN"),
        ("manager", Some(a.manager.as_str()), "FORBIDDEN"),
        (
            "other customer's admin",
            Some(b.admin.as_str()),
            "FORBIDDEN",
        ),
        ("other customer's key", Some(b.key.as_str()), "FORBIDDEN"),
        (
            "frozen customer's admin",
            Some(f.admin.as_str()),
            "UNAUTHENTICATED",
        ),
        (
            "frozen customer's key",
            Some(f.key.as_str()),
            "UNAUTHENTICATED",
        ),
        ("no credential", None, "UNAUTHENTICATED"),
    ] {
        for filter in &filters {
            let body = list(
                &app,
                token,
                json!({ "filter": filter, "orderBy": "TM_CREATE_ASC" }),
            )
            .await;
            assert_eq!(error_code(&body), code, "{what}, {filter}: {body}");
            assert!(body["data"].is_null(), "{what}: {body}");
        }
    }

    let found = all(&app, &admin, json!({ "search": a.username })).await;
    assert_eq!(found, set(&[&a.id]));
    let found = all(&app, &admin, json!({ "status": "FROZEN" })).await;
    assert_eq!(found, set(&[&f.id]));
}
