//! Reads of customers by id that arrive together share statements
//! (`db::coalesce`): each still gets the answer it would get alone.

use serde_json::{Value, json};

use crate::harness::{TestApp, as_in_production, error_code};

const PASSWORD: &str = "point-reads-password";
const QUERY: &str =
    "query($id: UUID!) { customer(id: $id) { id username tmDelete guestAgent { username } } }";

#[derive(Clone, Copy, Debug)]
enum Expect {
    Customer(&'static str),
    Deleted,
    Null,
    Forbidden,
}

fn check(body: &Value, id: &str, expect: Expect) {
    let customer = &body["data"]["customer"];
    match expect {
        Expect::Customer(username) => {
            assert_eq!(customer["id"], id, "{body}");
            assert_eq!(customer["username"], username, "{body}");
            assert_eq!(customer["guestAgent"]["username"], username, "{body}");
            assert!(customer["tmDelete"].is_null(), "{body}");
        }
        Expect::Deleted => {
            assert_eq!(customer["id"], id, "{body}");
            assert!(customer["tmDelete"].is_string(), "{body}");
        }
        Expect::Null => {
            assert!(customer.is_null() && body.get("errors").is_none(), "{body}")
        }
        Expect::Forbidden => assert_eq!(error_code(body), "FORBIDDEN", "{body}"),
    }
}

#[tokio::test]
async fn concurrent_reads_by_id_each_get_their_own_answer() {
    // The fast path on, as in production: its reads and the general path's
    // (a document's first requests) share the same statements.
    let app = TestApp::spawn_with(as_in_production).await;
    let admin = app.admin_token().await;
    let a = app.create_customer_ok(&admin, "reads-a", PASSWORD).await;
    let b = app.create_customer_ok(&admin, "reads-b", PASSWORD).await;
    let gone = app.create_customer_ok(&admin, "reads-gone", PASSWORD).await;
    app.delete_customer(&admin, &gone).await;
    let missing = uuid::Uuid::new_v4().to_string();
    let own_admin = app.token("reads-a", PASSWORD).await;

    let cases = [
        (&admin, &a, Expect::Customer("reads-a")),
        (&admin, &b, Expect::Customer("reads-b")),
        (&admin, &gone, Expect::Deleted),
        (&admin, &missing, Expect::Null),
        (&own_admin, &a, Expect::Customer("reads-a")),
        (&own_admin, &b, Expect::Forbidden),
    ];
    let mut reads = Vec::new();
    for _ in 0..10 {
        for (token, id, expect) in cases {
            let read = app.spawn_gql(Some(token), QUERY, json!({ "id": id }));
            reads.push((id.clone(), expect, read));
        }
    }
    for (id, expect, read) in reads {
        check(&read.await.unwrap(), &id, expect);
    }
}

#[tokio::test]
async fn a_customer_is_read_at_once_after_it_is_created_while_reads_queue() {
    let app = TestApp::spawn_with(as_in_production).await;
    let admin = app.admin_token().await;
    let a = app.create_customer_ok(&admin, "queued-a", PASSWORD).await;
    // Reads keep the statements busy (and the reads after them queued)
    // while the customer is created and read.
    let busy: Vec<_> = (0..64)
        .map(|_| app.spawn_gql(Some(&admin), QUERY, json!({ "id": a })))
        .collect();
    let created = app.create_customer_ok(&admin, "queued-new", PASSWORD).await;
    let read = app.gql(Some(&admin), QUERY, json!({ "id": created })).await;
    check(&read, &created, Expect::Customer("queued-new"));
    for read in busy {
        check(&read.await.unwrap(), &a, Expect::Customer("queued-a"));
    }
}
