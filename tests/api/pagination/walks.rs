//! Walking the whole list, forward and backward, while it changes.

use std::collections::HashSet;

use serde_json::json;

use super::{
    assert_cursors_consistent, keys, live_ids_in_order, page, seed_around_the_platform,
    seed_customers, walk_forward,
};
use crate::harness::{TestApp, error_code, sql_count};

#[tokio::test]
async fn customers_pages_forward_without_skips_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let expected = seed_around_the_platform(&app.db.client().await).await;

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
    let expected = seed_around_the_platform(&app.db.client().await).await;

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
            let live = sql_count(
                &client,
                "SELECT count(*) FROM customers WHERE id = $1::text::uuid AND tm_delete IS NULL",
                &[id],
            )
            .await;
            if live == 0 {
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
