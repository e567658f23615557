//! Reads of one customer by id share statements (`db::coalesce`); against a
//! real replica, each statement goes where its most demanding read must. A
//! writer's read is never answered by a replica that lacks the write, however
//! many other credentials' reads share its statement.

use serde_json::{Value, json};

use super::{DISRUPTION, PATIENCE, replica_statements, spawn_for_read_your_writes};
use crate::harness::eventually;
use crate::read_replicas::cluster::pair;

const QUERY: &str = "query($id: UUID!) { customer(id: $id) { username guestAgent { username } } }";

fn answered(body: &Value) -> &Value {
    assert!(body.get("errors").is_none(), "{body}");
    &body["data"]["customer"]
}

#[tokio::test]
async fn a_writers_reads_by_id_see_its_write_whatever_statement_they_share() {
    let pair = pair().await;
    let _alone = DISRUPTION.write().await;
    let (app, tokens) = spawn_for_read_your_writes(pair, 3).await;
    let (writer, readers) = (&tokens[0], &tokens[1..]);
    let paused = pair.pause_replay();
    let id = app
        .create_customer_ok(writer, "rr-point-read", "a-long-password")
        .await;

    // The writer's reads and the others', arriving together.
    let reads: Vec<_> = (0..60)
        .map(|i| {
            let token = if i % 3 == 0 { writer } else { &readers[i % 2] };
            let read = app.spawn_gql(Some(token), QUERY, json!({ "id": id }));
            (token == writer, read)
        })
        .collect();
    for (by_writer, read) in reads {
        let body = read.await.unwrap();
        let customer = answered(&body);
        if by_writer {
            assert_eq!(customer["username"], "rr-point-read", "{body}");
            assert_eq!(
                customer["guestAgent"]["username"], "rr-point-read",
                "{body}"
            );
        } else {
            // Either from the replica (not there yet) or from the primary,
            // where a writer's read in the same statement took it.
            assert!(
                customer.is_null() || customer["username"] == "rr-point-read",
                "{body}"
            );
        }
    }

    // The others alone: their statements go to the replica, which has not
    // replayed the create.
    let before = replica_statements(&app);
    let reads: Vec<_> = (0..40)
        .map(|i| app.spawn_gql(Some(&readers[i % 2]), QUERY, json!({ "id": id })))
        .collect();
    for read in reads {
        let body = read.await.unwrap();
        assert!(answered(&body).is_null(), "{body}");
    }
    assert!(
        replica_statements(&app) > before,
        "the others' reads were served by the replica"
    );

    drop(paused);
    eventually(
        "the others read the customer once replayed",
        PATIENCE,
        || async {
            let body = app.gql(Some(&readers[0]), QUERY, json!({ "id": id })).await;
            (answered(&body)["username"] == "rr-point-read").then_some(())
        },
    )
    .await;
}
