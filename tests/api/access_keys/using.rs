//! What a request made with an access key may do, and when the key stops
//! working.

use serde_json::json;

use super::{LIST, OWN_CUSTOMER, assert_confined_to_its_customer, customer_with_admin, list_ids};
use crate::harness::{ME, TestApp, eventually};

#[tokio::test]
async fn access_key_acts_as_customer_admin_of_its_own_customer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (holder, _) = customer_with_admin(&app, &admin, "keyholder").await;
    let neighbour = app
        .create_customer_ok(&admin, "neighbour", "password1")
        .await;
    let (key_id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": holder }))
        .await;

    let me = app.gql(Some(&key), ME, json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
    assert!(
        me["data"]["me"]["agent"].is_null(),
        "no agent for a key: {me}"
    );
    assert_eq!(me["data"]["me"]["customer"]["id"], holder.as_str());
    assert_eq!(me["data"]["me"]["permissions"], json!(["CUSTOMER_ADMIN"]));

    let own = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": holder }))
        .await;
    assert_eq!(own["data"]["customer"]["id"], holder.as_str(), "{own}");
    let listed = app.gql(Some(&key), LIST, json!({})).await;
    assert_eq!(list_ids(&listed), vec![key_id]);

    assert_confined_to_its_customer(&app, &key, &neighbour).await;
}

#[tokio::test]
async fn access_key_of_the_platform_customer_is_not_a_super_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let platform = app.own_customer_id(&admin).await;
    let other = app
        .create_customer_ok(&admin, "bystander", "password1")
        .await;
    let (_, key) = app.create_access_key_ok(&admin, json!({})).await;

    let me = app.gql(Some(&key), ME, json!({})).await;
    assert_eq!(
        me["data"]["me"]["customer"]["id"],
        platform.as_str(),
        "{me}"
    );
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["CUSTOMER_ADMIN"]),
        "never PROJECT_SUPER_ADMIN: {me}"
    );
    assert_confined_to_its_customer(&app, &key, &other).await;
}

/// Two server processes on one database, and a key about to expire.
struct Expiring {
    app: TestApp,
    replica: TestApp,
    admin: String,
    customer: String,
    id: String,
    key: String,
}

impl Expiring {
    async fn start() -> Self {
        let app = TestApp::spawn().await;
        let replica = app.replica().await;
        let admin = app.admin_token().await;
        let (customer, _) = customer_with_admin(&app, &admin, "expiring").await;
        let (id, key) = app
            .create_access_key_ok(&admin, json!({ "customerId": customer }))
            .await;
        Self {
            app,
            replica,
            admin,
            customer,
            id,
            key,
        }
    }

    async fn assert_refused_everywhere(&self) {
        for (server, name) in [(&self.app, "app"), (&self.replica, "replica")] {
            server.assert_refused(&self.key, name).await;
        }
    }
}

#[tokio::test]
async fn access_key_expired_is_unauthenticated_but_still_listed() {
    let expiring = Expiring::start().await;
    let app = &expiring.app;
    app.db
        .client()
        .await
        .execute(
            "UPDATE access_keys SET tm_expire = now() - interval '1 second' WHERE id = $1::text::uuid",
            &[&expiring.id],
        )
        .await
        .unwrap();
    expiring.assert_refused_everywhere().await;
    let listed = app
        .gql(
            Some(&expiring.admin),
            LIST,
            json!({ "customerId": expiring.customer }),
        )
        .await;
    assert_eq!(
        list_ids(&listed),
        vec![expiring.id.clone()],
        "expired keys are still listed"
    );
}

/// An operator's direct SQL change reaches warm caches through the trigger's
/// NOTIFY, which is asynchronous: it must land within moments, not at once.
/// Each server acknowledges it once its cache is dropped; from then on the
/// very next request is refused. (Changes made through the API wait for
/// every replica's acknowledgement: see
/// `delete_access_key_is_refused_at_once_on_every_replica`.)
#[tokio::test]
async fn access_key_expired_by_sql_stops_working_on_warm_caches_promptly() {
    let expiring = Expiring::start().await;
    for (server, name) in [(&expiring.app, "app"), (&expiring.replica, "replica")] {
        server.assert_accepted(&expiring.key, name).await;
    }
    // Waits (at most 5 s) for both servers' acknowledgements.
    let expired = expiring
        .app
        .change_credentials_in_sql(
            "access_keys",
            "UPDATE access_keys SET tm_expire = now() - interval '1 second' \
             WHERE id = $1::text::uuid RETURNING id::text",
            &[&expiring.id],
        )
        .await;
    assert_eq!(expired, vec![expiring.id.clone()]);
    expiring.assert_refused_everywhere().await;
}

#[tokio::test]
async fn access_key_use_sets_tm_last_used_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (customer, _) = customer_with_admin(&app, &admin, "lastused").await;
    let (id, key) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    let db = app.db.client().await;
    let last_used = |id: String| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT tm_last_used::text, tm_last_used > now() - interval '10 seconds' FROM access_keys WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .map(|row| (row.get::<_, Option<String>>(0), row.get::<_, Option<bool>>(1)))
            .unwrap()
        }
    };
    assert_eq!(last_used(id.clone()).await, (None, None), "unused so far");

    let body = app
        .gql(Some(&key), OWN_CUSTOMER, json!({ "id": customer }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // The write happens in the background, possibly after the response.
    let first = eventually(
        "the first use sets tm_last_used",
        std::time::Duration::from_secs(10),
        || async {
            let found = last_used(id.clone()).await;
            found.0.is_some().then_some(found)
        },
    )
    .await;
    assert_eq!(first.1, Some(true), "tm_last_used is now: {first:?}");

    for _ in 0..3 {
        let body = app.gql(Some(&key), ME, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // A write those uses queued in the background could land after their
    // responses. The first use of another key queues one after them: once
    // it has landed, theirs would have too.
    let (fence_id, fence) = app
        .create_access_key_ok(&admin, json!({ "customerId": customer }))
        .await;
    let body = app.gql(Some(&fence), ME, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    eventually(
        "the other key's first use sets its tm_last_used",
        std::time::Duration::from_secs(10),
        || async { last_used(fence_id.clone()).await.0 },
    )
    .await;
    assert_eq!(
        last_used(id.clone()).await,
        first,
        "uses within the minute write nothing"
    );

    let listed = app
        .gql(Some(&admin), LIST, json!({ "customerId": customer }))
        .await;
    let shown = listed["data"]["accessKeys"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["node"]["id"] == id.as_str())
        .map(|edge| edge["node"]["tmLastUsed"].clone())
        .unwrap_or_else(|| panic!("{id} listed: {listed}"));
    assert!(shown.is_string(), "tmLastUsed is exposed: {listed}");
}
