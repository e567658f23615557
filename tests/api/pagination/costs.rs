//! What a page costs in SQL: `totalCount` only when asked, counted once for
//! many, and guest agents in one batch per page whatever its size.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::{
    PAGE_WITH_COUNT, PAGE_WITH_GUESTS, PAGE_WITHOUT_COUNT, live_ids_in_order, seed_customers,
    walk_forward, warm_the_pool,
};
use crate::harness::as_in_production;
use crate::harness::{TestApp, sql_count};

#[tokio::test]
async fn customers_total_count_counts_live_customers_only_when_asked() {
    let app = TestApp::spawn_with(as_in_production).await;
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
    let live = sql_count(
        &client,
        "SELECT count(*) FROM customers WHERE tm_delete IS NULL",
        &[],
    )
    .await;
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

    warm_the_pool(&app, &token, PAGE_WITH_COUNT).await;

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
    let app = TestApp::spawn_with(as_in_production).await;
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
    let page_with_guests = |size: usize, after: Option<String>| {
        app.gql(
            Some(&token),
            PAGE_WITH_GUESTS,
            json!({ "first": size, "after": after }),
        )
    };
    // Every seeded node's guest agent, across the whole list.
    let mut after: Option<String> = None;
    for from in (0..expected.len()).step_by(31) {
        let size = 31.min(expected.len() - from);
        let body = page_with_guests(size, after).await;
        after = Some(check_page(&body, from, size));
    }

    warm_the_pool(&app, &token, PAGE_WITH_GUESTS).await;

    let deep_cursor = check_page(&page_with_guests(60, None).await, 0, 60);
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
        let body = page_with_guests(size, after).await;
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
async fn a_flood_of_total_counts_costs_one_count_and_leaves_the_pool_to_others() {
    let app = TestApp::spawn_with(|c| c.db_pool_size = 8).await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "counted", "a-long-password-1")
        .await;
    let fields: String = (0..20)
        .map(|i| format!("c{i}: customers(first: 1) {{ totalCount }} "))
        .collect();
    let batch = json!(
        (0..10)
            .map(|_| json!({ "query": format!("{{ {fields} }}") }))
            .collect::<Vec<Value>>()
    );
    let before = app.statements();
    let (answers, light) = tokio::join!(app.post_graphql(Some(&admin), &batch), async {
        let started = Instant::now();
        let body = app
            .gql(Some(&admin), "{ me { permissions } }", json!({}))
            .await;
        (body, started.elapsed())
    });
    let statements = app.statements() - before;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 10);
    for answer in answers {
        assert!(answer["errors"].is_null(), "{answer}");
        assert_eq!(answer["data"]["c19"]["totalCount"], 2, "{answer}");
    }
    assert!(light.0["errors"].is_null(), "{}", light.0);
    println!(
        "200 aliased totalCounts: {statements} SQL statements; a concurrent `me` took {:?}",
        light.1
    );
    // 200 pages (one statement each) and a few shared counts (a count read
    // while a notification moves the epoch is not kept), not 200 counts.
    assert!(statements < 220, "{statements} statements");
    // A change shows at once in the next count.
    app.create_customer_ok(&admin, "counted-too", "a-long-password-1")
        .await;
    let body = app
        .gql(Some(&admin), "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(body["data"]["customers"]["totalCount"], 3, "{body}");
}
