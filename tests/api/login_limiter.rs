//! The login limiter: failures per username and per client address within
//! a sliding window, which address a request comes from (behind a trusted
//! proxy or not), and how its refusals are told and counted.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, error_code, metric, retry_after, send,
};

/// An app allowing `per_username` failed logins per username and
/// `per_address` per client address within `window_seconds`.
async fn limited(
    per_username: usize,
    per_address: usize,
    window_seconds: u64,
    trust_forwarded_for: bool,
) -> TestApp {
    TestApp::spawn_with(|c| {
        c.login_max_failures = per_username;
        c.login_max_failures_per_address = per_address;
        c.login_failure_window_seconds = window_seconds;
        c.trust_forwarded_for = trust_forwarded_for;
    })
    .await
}

fn logged_in(body: &Value) -> bool {
    body["data"]["login"]["token"].is_string()
}

/// Fails unless the limiter (not the password) refused this login; returns
/// its `retryAfterSeconds`.
fn limited_for(body: &Value) -> u64 {
    assert!(!logged_in(body), "{body}");
    assert_eq!(error_code(body), "UNAUTHENTICATED", "{body}");
    let seconds = retry_after(body).unwrap_or_else(|| panic!("no retryAfterSeconds in {body}"));
    assert!(seconds > 0, "{body}");
    seconds
}

/// Fails unless this login fails for its password, the limiter not yet
/// involved; `from` is the `X-Forwarded-For` header, if any.
async fn fail_login(app: &TestApp, from: Option<&str>, username: &str, password: &str) {
    let body = match from {
        Some(address) => app.login_from(address, username, password).await,
        None => app.login(username, password).await,
    };
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(retry_after(&body), None, "not yet limited: {body}");
}

#[tokio::test]
async fn login_refuses_a_username_after_too_many_failures_until_the_window_passes() {
    // Three failed logins and the refused one must fit in the window: each
    // verifies a password (argon2), which takes far longer on a busy
    // machine, so the window is a few seconds rather than one.
    let app = limited(3, 100, 3, false).await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "target", "target-password")
        .await;
    for n in 0..3 {
        fail_login(&app, None, "target", &format!("guess-{n}")).await;
    }
    let refused = app.login("target", "target-password").await;
    let seconds = limited_for(&refused);
    assert!(seconds <= 3, "no longer than the window: {refused}");
    let other = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(logged_in(&other), "other usernames are unaffected: {other}");

    // Nothing signals the end of a window but the clock.
    tokio::time::sleep(Duration::from_millis(3_250)).await;
    let body = app.login("target", "target-password").await;
    assert!(logged_in(&body), "allowed again after the window: {body}");
}

#[tokio::test]
async fn login_counts_only_failures_within_the_sliding_window() {
    let app = limited(3, 100, 1, false).await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "patient", "patient-password")
        .await;
    for n in 0..2 {
        fail_login(&app, None, "patient", &format!("early-{n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1_250)).await;
    for n in 0..2 {
        fail_login(&app, None, "patient", &format!("late-{n}")).await;
    }
    let body = app.login("patient", "patient-password").await;
    assert!(
        logged_in(&body),
        "two failures in the window are under the limit of three: {body}"
    );
}

#[tokio::test]
async fn login_refuses_an_address_after_too_many_failures_across_usernames() {
    let app = limited(100, 4, 60, false).await;
    for n in 0..4 {
        fail_login(&app, None, &format!("sprayed-{n}"), "guess").await;
    }
    let refused = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let seconds = limited_for(&refused);
    assert!(seconds <= 60, "no longer than the window: {refused}");
}

/// An attacker cannot dodge the per-address limit by inventing addresses.
#[tokio::test]
async fn login_ignores_x_forwarded_for_unless_trusted() {
    let app = limited(100, 3, 60, false).await;
    for n in 0..3 {
        let address = format!("192.0.2.{n}");
        fail_login(&app, Some(&address), &format!("rotating-{n}"), "guess").await;
    }
    let refused = app
        .login_from("192.0.2.200", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    limited_for(&refused);
}

#[tokio::test]
async fn login_limits_each_trusted_forwarded_address_separately() {
    let app = limited(100, 3, 60, true).await;
    for n in 0..3 {
        fail_login(&app, Some("203.0.113.7"), &format!("sprayed-{n}"), "guess").await;
    }
    let refused = app
        .login_from("203.0.113.7", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    limited_for(&refused);
    let elsewhere = app
        .login_from("198.51.100.9", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert!(
        logged_in(&elsewhere),
        "another address is not limited: {elsewhere}"
    );
}

#[tokio::test]
async fn login_lockout_spares_an_address_that_logged_in_before() {
    let app = limited(3, 100, 60, true).await;
    let admin = app.admin_token().await;
    app.create_customer_ok(&admin, "victim", "victim-password")
        .await;
    let before = app
        .login_from("198.51.100.9", "victim", "victim-password")
        .await;
    assert!(logged_in(&before), "{before}");

    for n in 0..5 {
        let body = app
            .login_from("203.0.113.7", "victim", &format!("guess-{n}"))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let attacker = app
        .login_from("203.0.113.7", "victim", "victim-password")
        .await;
    limited_for(&attacker);
    let stranger = app
        .login_from("192.0.2.55", "victim", "victim-password")
        .await;
    // The username is limited for addresses it never logged in from.
    limited_for(&stranger);

    let user = app
        .login_from("198.51.100.9", "victim", "victim-password")
        .await;
    assert!(
        logged_in(&user),
        "the real user's known address is not locked out: {user}"
    );
}

#[tokio::test]
async fn the_client_address_is_the_last_forwarded_for_entry() {
    let app = limited(100, 3, 60, true).await;
    let client = "203.0.113.7";
    // Whatever the client itself wrote comes first; the proxy appends the
    // address it saw.
    for n in 0..3 {
        let forwarded = format!("198.51.100.{n}, {client}");
        fail_login(
            &app,
            Some(&forwarded),
            &format!("sprayed-{n}"),
            "wrong-password",
        )
        .await;
    }
    let limited = app
        .login_from(
            &format!("198.51.100.99, {client}"),
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
        )
        .await;
    assert!(
        retry_after(&limited).is_some(),
        "a new first entry does not escape the limit: {limited}"
    );
    let forged = app
        .login_from(
            &format!("{client}, 198.51.100.50"),
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
        )
        .await;
    assert!(
        logged_in(&forged),
        "the limited address as a first entry is not the client's: {forged}"
    );

    // Several header lines are one list, in order.
    let two_lines = |first: &str, last: &str| {
        send(
            app.http()
                .post(app.graphql_url())
                .header("x-forwarded-for", first)
                .header("x-forwarded-for", last)
                .json(&json!({
                    "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
                    "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD },
                })),
        )
    };
    let last_line_limited = two_lines("198.51.100.60", client).await;
    assert!(
        retry_after(&last_line_limited.body).is_some(),
        "{last_line_limited:?}"
    );
    let first_line_limited = two_lines(client, "198.51.100.61").await;
    assert!(
        logged_in(&first_line_limited.body),
        "{first_line_limited:?}"
    );

    // REST's login reads the same entry.
    let rest = send(
        app.http()
            .post(format!("{}/auth/login", app.address))
            .header("x-forwarded-for", format!("198.51.100.62, {client}"))
            .json(&json!({ "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(rest.status, 401, "{rest:?}");
    assert!(rest.headers.contains_key("retry-after"), "{rest:?}");
}

#[tokio::test]
async fn each_refusal_by_the_login_limiter_is_counted_as_limited() {
    let app = limited(100, 2, 60, false).await;
    let admin = app.admin_token().await;
    let counts = |app: &TestApp| {
        (
            metric(
                app,
                "customer_api_login_failures_total{reason=\"credentials\"}",
            ),
            metric(app, "customer_api_login_failures_total{reason=\"limited\"}"),
        )
    };
    for n in 0..2 {
        fail_login(&app, None, &format!("nobody-{n}"), "wrong-password").await;
    }
    assert_eq!(counts(&app), (2.0, 0.0));

    // Past the limit, through every door that checks a password.
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert!(retry_after(&body).is_some(), "{body}");
    let rest = app.rest_login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(rest.status, 401, "{rest:?}");
    let body = app
        .change_password(&admin, ADMIN_PASSWORD, "another-long-password")
        .await;
    assert!(retry_after(&body).is_some(), "{body}");
    let operation = json!({
        "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
        "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD },
    });
    let batch = app.post_graphql(None, &json!([operation, operation])).await;
    for answer in batch.as_array().expect("a batch answer") {
        assert!(retry_after(answer).is_some(), "{answer}");
    }
    assert_eq!(
        counts(&app),
        (2.0, 5.0),
        "five refusals, none of them hashed"
    );
}
