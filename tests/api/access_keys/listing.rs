//! accessKeys: the live keys of one customer, newest first, in pages, to
//! that customer's admins and its keys (and to super admins).

use serde_json::json;

use super::{LIST, LIST_WITH_COUNT, customer_with_admin, list_ids, live_keys_in_order};
use crate::harness::{TestApp, error_code, error_field};

#[tokio::test]
async fn access_keys_lists_the_live_keys_of_the_callers_customer_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alpha, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (beta, beta_admin) = customer_with_admin(&app, &admin, "beta").await;
    let mut alpha_keys = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..4 {
        let (id, key) = app
            .create_access_key_ok(&alpha_admin, json!({ "name": format!("alpha {n}") }))
            .await;
        alpha_keys.push(id);
        secrets.push(key);
    }
    let (beta_key, _) = app.create_access_key_ok(&beta_admin, json!({})).await;
    let deleted = app.delete_access_key(&alpha_admin, &alpha_keys[1]).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    let db = app.db.client().await;
    db.execute(
        "UPDATE access_keys SET tm_expire = now() - interval '1 day' WHERE id = $1::text::uuid",
        &[&alpha_keys[2]],
    )
    .await
    .unwrap();

    let expected = vec![
        alpha_keys[3].clone(),
        alpha_keys[2].clone(),
        alpha_keys[0].clone(),
    ];
    assert_eq!(live_keys_in_order(&db, &alpha).await, expected);

    let as_admin = app.gql(Some(&alpha_admin), LIST, json!({})).await;
    assert_eq!(list_ids(&as_admin), expected, "newest first, live only");
    for edge in as_admin["data"]["accessKeys"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["customerId"], alpha.as_str());
        assert!(edge["node"]["tmDelete"].is_null());
    }
    let own_id = app
        .gql(Some(&alpha_admin), LIST, json!({ "customerId": alpha }))
        .await;
    assert_eq!(list_ids(&own_id), expected, "naming its own customer");
    let as_key = app.gql(Some(&secrets[0]), LIST, json!({})).await;
    assert_eq!(
        list_ids(&as_key),
        expected,
        "a key of the customer lists too"
    );
    let as_super = app
        .gql(Some(&admin), LIST, json!({ "customerId": alpha }))
        .await;
    assert_eq!(
        list_ids(&as_super),
        expected,
        "super admins list any customer's"
    );
    let beta_list = app.gql(Some(&beta_admin), LIST, json!({})).await;
    assert_eq!(list_ids(&beta_list), vec![beta_key.clone()]);
    let beta_by_super = app
        .gql(Some(&admin), LIST, json!({ "customerId": beta }))
        .await;
    assert_eq!(list_ids(&beta_by_super), vec![beta_key]);
    let platform = app.gql(Some(&admin), LIST_WITH_COUNT, json!({})).await;
    assert_eq!(
        list_ids(&platform),
        Vec::<String>::new(),
        "without customerId a super admin lists the platform's own keys"
    );
    assert_eq!(platform["data"]["accessKeys"]["totalCount"], 0);

    let counted = app
        .gql(Some(&alpha_admin), LIST_WITH_COUNT, json!({}))
        .await;
    assert_eq!(counted["data"]["accessKeys"]["totalCount"], 3, "{counted}");

    for body in [&as_admin, &own_id, &as_key, &as_super] {
        let text = body.to_string();
        for secret in &secrets {
            assert!(!text.contains(&secret[10..]), "key in a listing: {text}");
        }
    }
}

#[tokio::test]
async fn access_keys_pages_with_keyset_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, customer_admin) = customer_with_admin(&app, &admin, "paged").await;
    let db = app.db.client().await;
    // 25 keys, three sharing each timestamp so the id tie-break decides.
    db.execute(
        "INSERT INTO access_keys (id, customer_id, name, token_hash, token_prefix, tm_expire, tm_create)
         SELECT gen_random_uuid(), $1::text::uuid, 'seed ' || n,
                md5(random()::text) || md5(random()::text), 'vb_seeded',
                now() + interval '1 day',
                timestamptz '2024-01-01 00:00:00+00' + (n / 3) * interval '1 second'
           FROM generate_series(1, 25) AS n",
        &[&customer],
    )
    .await
    .unwrap();
    for n in 0..2 {
        app.create_access_key_ok(&customer_admin, json!({ "name": format!("api {n}") }))
            .await;
    }
    let expected = live_keys_in_order(&db, &customer).await;
    assert_eq!(expected.len(), 27);

    let default = app.gql(Some(&customer_admin), LIST, json!({})).await;
    assert_eq!(
        list_ids(&default),
        expected[..20],
        "default page: the 20 newest"
    );
    assert_eq!(
        default["data"]["accessKeys"]["pageInfo"]["hasNextPage"],
        true
    );

    // Forward in pages of 4, with a key created between two fetches.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = app
            .gql(
                Some(&customer_admin),
                LIST,
                json!({ "first": 4, "after": after }),
            )
            .await;
        let ids = list_ids(&body);
        let info = &body["data"]["accessKeys"]["pageInfo"];
        let edges = body["data"]["accessKeys"]["edges"].as_array().unwrap();
        assert_eq!(info["endCursor"], edges.last().unwrap()["cursor"], "{body}");
        seen.extend(ids);
        pages += 1;
        if pages == 1 {
            app.create_access_key_ok(&customer_admin, json!({ "name": "late" }))
                .await;
        }
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen, expected, "no key skipped or repeated going forward");

    // Backward in pages of 5, from the oldest end.
    let expected = live_keys_in_order(&db, &customer).await;
    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let body = app
            .gql(
                Some(&customer_admin),
                LIST,
                json!({ "last": 5, "before": before }),
            )
            .await;
        let mut ids = list_ids(&body);
        ids.extend(seen);
        seen = ids;
        let info = &body["data"]["accessKeys"]["pageInfo"];
        if info["hasPreviousPage"] != true {
            break;
        }
        before = info["startCursor"].as_str().map(str::to_owned);
        assert!(seen.len() <= expected.len(), "paging does not end");
    }
    assert_eq!(seen, expected, "backward gives the same order");
}

#[tokio::test]
async fn access_keys_bounds_page_sizes_and_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, customer_admin) = customer_with_admin(&app, &admin, "bounded").await;
    app.create_access_key_ok(&customer_admin, json!({})).await;
    let full = app
        .gql(Some(&customer_admin), LIST, json!({ "first": 100 }))
        .await;
    assert_eq!(list_ids(&full).len(), 1);
    let full = app
        .gql(Some(&customer_admin), LIST, json!({ "last": 100 }))
        .await;
    assert_eq!(list_ids(&full).len(), 1);
    for (variables, field) in [
        (json!({ "first": 101 }), Some("first")),
        (json!({ "first": -1 }), Some("first")),
        (json!({ "last": 101 }), Some("last")),
        (json!({ "last": -1 }), Some("last")),
        (json!({ "first": 1, "last": 1 }), None),
        (json!({ "after": "not-a-cursor" }), Some("after")),
        (json!({ "before": "bm90LWEtY3Vyc29y" }), Some("before")),
    ] {
        let body = app
            .gql(Some(&customer_admin), LIST, variables.clone())
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
        if let Some(field) = field {
            assert_eq!(error_field(&body), field, "{variables}: {body}");
        }
        assert!(body["data"].is_null(), "{variables}: {body}");
    }
}

#[tokio::test]
async fn access_keys_is_forbidden_to_other_customers_and_lesser_agents() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alpha_admin) = customer_with_admin(&app, &admin, "alpha").await;
    let (beta, beta_admin) = customer_with_admin(&app, &admin, "beta").await;
    app.create_access_key_ok(&beta_admin, json!({})).await;
    let (_, alpha_key) = app.create_access_key_ok(&alpha_admin, json!({})).await;
    app.seed_agent("alpha", "alpha-manager", 64).await;
    app.seed_agent("alpha", "alpha-agent", 16).await;
    let manager = app.token("alpha-manager", "alpha-password").await;
    let agent = app.token("alpha-agent", "alpha-password").await;

    for (token, variables, who) in [
        (
            &alpha_admin,
            json!({ "customerId": beta }),
            "another customer's admin",
        ),
        (
            &alpha_key,
            json!({ "customerId": beta }),
            "another customer's key",
        ),
        (&manager, json!({}), "a CUSTOMER_MANAGER"),
        (&agent, json!({}), "a CUSTOMER_AGENT"),
    ] {
        let body = app.gql(Some(token), LIST, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
        assert!(body["data"].is_null(), "{who}: {body}");
    }
    let body = app.gql(None, LIST, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}
