//! `customers` as a Relay connection: keyset cursors in (tmCreate desc, id
//! desc) order, page bounds, bad cursors, `totalCount`, the SQL cost of a page
//! with its guest agents, and who may list.
//!
//! Large data sets are seeded straight into the database with controlled
//! `tm_create` values, several rows sharing each timestamp so that the `id`
//! tie-break decides their order. Every expectation is computed from the
//! database itself, never written down by hand.

mod bounds;
mod costs;
mod walks;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::{TestApp, insert_customers, sql_column};

pub(super) const PAGE: &str = r#"query($first: Int, $after: String, $last: Int, $before: String) {
  customers(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id username } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

pub(super) const PAGE_WITH_GUESTS: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id username guestAgent { id username } } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

pub(super) const PAGE_WITH_COUNT: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id } }
    totalCount
  }
}"#;

pub(super) const PAGE_WITHOUT_COUNT: &str = r#"query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id } }
  }
}"#;

/// One page as the API returned it.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) ids: Vec<String>,
    pub(super) cursors: Vec<String>,
    pub(super) has_next: bool,
    pub(super) has_previous: bool,
    pub(super) start_cursor: Option<String>,
    pub(super) end_cursor: Option<String>,
}

pub(super) fn parse_page(body: &Value) -> Page {
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

pub(super) async fn page(app: &TestApp, token: &str, variables: Value) -> Page {
    parse_page(&app.gql(Some(token), PAGE, variables).await)
}

/// The page's own cursors agree with its pageInfo.
pub(super) fn assert_cursors_consistent(page: &Page) {
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

/// Inserts `count` customers named `{prefix}1` on, three to a `tm_create`
/// (timestamps 1001 µs apart, so cursors must keep microseconds), starting
/// at `base` and going forward in time.
pub(super) async fn seed_customers(
    client: &tokio_postgres::Client,
    prefix: &str,
    count: i32,
    base: &str,
) {
    insert_customers(client, prefix, 1..=count, base, "1001 microseconds").await
}

/// Live customer ids in the listing order, as PostgreSQL orders them.
pub(super) async fn live_ids_in_order(client: &tokio_postgres::Client) -> Vec<String> {
    sql_column(
        client,
        "SELECT id::text FROM customers WHERE tm_delete IS NULL ORDER BY tm_create DESC, id DESC",
        &[],
    )
    .await
}

/// The listing key of every customer (deleted ones too), as (µs, id) pairs
/// that compare the way the listing orders them (descending).
pub(super) async fn keys(client: &tokio_postgres::Client) -> HashMap<String, (i64, String)> {
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
pub(super) async fn walk_forward(app: &TestApp, token: &str, size: usize) -> Vec<String> {
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

/// 38 customers older than the platform's own and 6 in the future, so that
/// the platform's row lands in the middle of the list; returns the live ids
/// in the listing order.
pub(super) async fn seed_around_the_platform(client: &tokio_postgres::Client) -> Vec<String> {
    seed_customers(client, "old", 38, "2024-01-01T00:00:00.123456Z").await;
    seed_customers(client, "future", 6, "2999-06-01T12:00:00Z").await;
    let expected = live_ids_in_order(client).await;
    assert_eq!(expected.len(), 45, "44 seeded plus the platform customer");
    expected
}

/// Runs `query` a few times, several at once, so that the pool has opened
/// the connections a measured request will use (opening one costs a
/// statement of its own).
pub(super) async fn warm_the_pool(app: &TestApp, token: &str, query: &str) {
    for _ in 0..2 {
        futures_util::future::join_all(
            (0..4).map(|_| app.gql(Some(token), query, json!({ "first": 5 }))),
        )
        .await;
    }
}
