//! Paging through the REST listing, where many customers share one
//! `tm_create`, with page tokens old and new.

use super::{Reply, UNSET, admin_rest_token, get, send};
use crate::harness::{TestApp, insert_customers};

/// Inserts `count` customers `{prefix}0` on, three to each `tm_create`,
/// the groups 1 ms apart from `base` on.
async fn seed_tied_customers(
    client: &tokio_postgres::Client,
    prefix: &str,
    count: i32,
    base: &str,
) {
    insert_customers(client, prefix, 0..=count - 1, base, "1 millisecond").await
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
