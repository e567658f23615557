//! Password guessing through every door: batches and aliases of `login`
//! and `changePassword`, Unicode look-alike usernames, floods of unknown
//! usernames from one address, and correct-password session minting. Each
//! password check is counted before it is hashed, so concurrency cannot
//! multiply attempts past the limits.

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, error_code, metric, retry_after};

fn hashed_failures(app: &TestApp) -> f64 {
    metric(
        app,
        "customer_api_login_failures_total{reason=\"credentials\"}",
    )
}

async fn batch(app: &TestApp, token: Option<&str>, operations: Vec<Value>) -> Vec<Value> {
    let body = app.post_graphql(token, &json!(operations)).await;
    body.as_array()
        .unwrap_or_else(|| panic!("a batch answer: {body}"))
        .clone()
}

/// Every error of every answer in a batch.
fn errors(answers: &[Value]) -> Vec<Value> {
    answers
        .iter()
        .flat_map(|a| a["errors"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn batched_and_aliased_change_password_guesses_stop_at_the_limit() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 5;
        c.login_max_failures_per_address = 100;
    })
    .await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "victim", "the-right-password")
        .await;
    let token = app.token("victim", "the-right-password").await;

    // 10 operations × 3 aliased guesses, the right one among the last.
    let operations: Vec<Value> = (0..10)
        .map(|op| {
            let fields: String = (0..3)
                .map(|alias| {
                    let guess = if op == 9 && alias == 2 {
                        "the-right-password".to_owned()
                    } else {
                        format!("guess-{op}-{alias}")
                    };
                    format!(
                        "g{alias}: changePassword(input: {{currentPassword: \"{guess}\", newPassword: \"attacker-chosen-1\"}}) {{ agent {{ id }} }} "
                    )
                })
                .collect();
            json!({ "query": format!("mutation {{ {fields} }}") })
        })
        .collect();
    let answers = batch(&app, Some(&token), operations).await;
    let errors = errors(&answers);
    let limited = errors
        .iter()
        .filter(|e| e["extensions"]["retryAfterSeconds"].is_u64())
        .count();
    println!(
        "30 guesses: {} errors, {limited} refused unhashed",
        errors.len()
    );
    assert!(
        hashed_failures(&app) <= 5.0,
        "at most the limit was hashed: {}",
        hashed_failures(&app)
    );
    assert!(limited >= 24, "{errors:?}");
    // The right guess came after the limit: refused, the password unchanged.
    assert!(
        answers.iter().all(|a| a["data"]
            .as_object()
            .is_none_or(|d| d.values().all(Value::is_null))),
        "no change succeeded: {answers:?}"
    );
    let body = app.login("victim", "attacker-chosen-1").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn batched_and_aliased_logins_stop_at_the_limit() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 5;
        c.login_max_failures_per_address = 100;
    })
    .await;
    let operations: Vec<Value> = (0..10)
        .map(|op| {
            let fields: String = (0..3)
                .map(|alias| format!("l{alias}: login(input: {{username: \"admin\", password: \"guess-{op}-{alias}\"}}) {{ token }} "))
                .collect();
            json!({ "query": format!("mutation {{ {fields} }}") })
        })
        .collect();
    let answers = batch(&app, None, operations).await;
    assert_eq!(errors(&answers).len(), 30);
    assert!(
        hashed_failures(&app) <= 5.0,
        "{} guesses were hashed",
        hashed_failures(&app)
    );
}

#[tokio::test]
async fn look_alike_usernames_do_not_log_in_or_dodge_the_limit() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_address = 100;
    })
    .await;
    // U+0130 (İ): lower-cased differently by Rust and by PostgreSQL.
    for look_alike in ["adm\u{130}n", "ADM\u{130}N", "adm\u{131}n", "admin\u{200b}"] {
        let body = app.login(look_alike, ADMIN_PASSWORD).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{look_alike}: {body}");
    }
    // Case variants share one bucket.
    for variant in ["Admin", "ADMIN", "aDmIn"] {
        let body = app.login(variant, "wrong-password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(
        retry_after(&body).is_some(),
        "the fourth attempt on admin, in any case, is refused: {body}"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_usernames_hashes_no_more_than_the_address_limit() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 20;
    })
    .await;
    let floods = (0..20).map(|connection| {
        let operations: Vec<Value> = (0..10)
            .map(|op| json!({
                "query": "mutation($u: String!) { login(input: {username: $u, password: \"guess-guess\"}) { token } }",
                "variables": { "u": format!("nobody-{connection}-{op}") },
            }))
            .collect();
        batch(&app, None, operations)
    });
    let answers: Vec<Value> = futures_util::future::join_all(floods)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(errors(&answers).len(), 200);
    let hashed = hashed_failures(&app);
    let limited = metric(
        &app,
        "customer_api_login_failures_total{reason=\"limited\"}",
    );
    println!("200 concurrent unknown-username logins: {hashed} hashed, {limited} refused unhashed");
    assert!(hashed <= 20.0, "{hashed} were hashed");
    assert!(limited >= 180.0, "{limited}");
}

#[tokio::test]
async fn correct_password_logins_are_limited_per_address_too() {
    let app = TestApp::spawn_with(|c| c.login_max_attempts_per_address = 8).await;
    let mut issued = 0;
    for _ in 0..12 {
        let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
        if body["data"]["login"]["token"].is_string() {
            issued += 1;
        } else {
            assert!(retry_after(&body).is_some(), "{body}");
        }
    }
    assert_eq!(issued, 8, "sessions minted from one address");
}

#[tokio::test]
async fn clients_that_hang_up_leave_no_hashing_behind() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 1_000;
        c.login_max_failures_per_address = 1_000;
        c.login_max_attempts_per_address = 1_000;
    })
    .await;
    let hashes = |app: &TestApp| metric(app, "customer_api_password_hashes_total");
    // The dummy hash for unknown usernames, made once.
    let _ = app.login("warm-up-user", "guess-guess").await;
    let before = hashes(&app);
    assert!(before >= 1.0, "the warm-up login was hashed and counted");
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(30))
        .build()
        .unwrap();
    let gone = (0..100).map(|n| {
        impatient
            .post(app.graphql_url())
            .json(&json!({
                "query": "mutation($u: String!) { login(input: {username: $u, password: \"guess-guess\"}) { token } }",
                "variables": { "u": format!("impatient-{n}") },
            }))
            .send()
    });
    let answered = futures_util::future::join_all(gone)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    // Wait until the hashing pool is idle: the count stops moving.
    let mut last = hashes(&app);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = hashes(&app);
        if now == last {
            break;
        }
        last = now;
    }
    let computed = last - before;
    println!("100 clients hung up ({answered} were answered first): {computed} hashes computed");
    assert!(
        computed < 60.0,
        "{computed} hashes were computed for 100 clients that had gone"
    );
}
