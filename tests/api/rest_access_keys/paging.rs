//! Paging through keys that share a `tm_create`.

use super::*;

#[tokio::test]
async fn accesskeys_pages_are_exact_across_ties() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, _, own) = customer_with_admin(&app, &admin).await;
    for n in 0..7 {
        create_ok(&app, Cred::Bearer(&own), json!({"name": format!("k{n}")})).await;
    }
    // Ties in tm_create, so a page boundary falls between equal timestamps.
    let db = app.db.client().await;
    db.execute(
        "UPDATE access_keys SET tm_create = '2024-01-01 00:00:00+00' WHERE customer_id = $1::text::uuid AND name IN ('k1', 'k2', 'k3', 'k4')",
        &[&customer],
    )
    .await
    .unwrap();
    let expected: Vec<String> = db
        .query(
            "SELECT id::text FROM access_keys WHERE customer_id = $1::text::uuid ORDER BY tm_create DESC, id DESC",
            &[&customer],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(expected.len(), 7);

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut sizes = Vec::new();
    loop {
        let mut params = vec![("page_size", "3")];
        if !token.is_empty() {
            params.push(("page_token", token.as_str()));
        }
        let reply = call(
            &app,
            Method::GET,
            "/v1.0/accesskeys",
            Cred::Token(&own),
            &params,
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let page = reply.body["result"].as_array().unwrap().clone();
        sizes.push(page.len());
        let next = reply.body["next_page_token"].as_str().unwrap().to_owned();
        if page.is_empty() {
            assert_eq!(next, "");
            break;
        }
        let last = page.last().unwrap();
        assert_eq!(
            next,
            format!(
                "{}_{}",
                last["tm_create"].as_str().unwrap(),
                last["id"].as_str().unwrap()
            )
        );
        seen.extend(page.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        token = next;
    }
    assert_eq!(sizes, [3, 3, 1, 0]);
    assert_eq!(seen, expected, "every key once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    let default = call(
        &app,
        Method::GET,
        "/v1.0/accesskeys",
        Cred::Token(&own),
        &[],
        None,
    )
    .await;
    assert_eq!(
        default.body["result"].as_array().unwrap().len(),
        7,
        "the default page (10) holds them all"
    );
}
