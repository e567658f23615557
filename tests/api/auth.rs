//! login, me, the tokens login issues, and bootstrap.

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, captured_logs, error_code};

const ME: &str =
    "{ me { agent { id username permissions } customer { id username } permissions } }";

#[tokio::test]
async fn login_returns_a_token_that_authenticates_me() {
    let app = TestApp::spawn().await;
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let login = &body["data"]["login"];
    assert_eq!(login["agent"]["username"], ADMIN_USERNAME, "{body}");
    assert_eq!(
        login["agent"]["permissions"],
        json!(["PROJECT_SUPER_ADMIN", "CUSTOMER_ADMIN"])
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(login["expiresAt"].as_str().unwrap()).unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!(
        (604_700..=604_800).contains(&ttl),
        "default lifetime is 7 days, got {ttl}s"
    );

    let me = app.gql(login["token"].as_str(), ME, json!({})).await;
    assert_eq!(
        me["data"]["me"]["agent"]["id"], login["agent"]["id"],
        "{me}"
    );
    assert_eq!(me["data"]["me"]["customer"]["username"], ADMIN_USERNAME);
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["PROJECT_SUPER_ADMIN", "CUSTOMER_ADMIN"])
    );
}

#[tokio::test]
async fn login_is_case_insensitive_on_the_username() {
    let app = TestApp::spawn().await;
    let body = app.login("ADMIN", ADMIN_PASSWORD).await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn login_fails_the_same_way_for_wrong_passwords_and_unknown_users() {
    let app = TestApp::spawn().await;
    let wrong_password = app.login(ADMIN_USERNAME, "not-the-password").await;
    let unknown_user = app.login("nobody-here", "not-the-password").await;
    let absurd = app.login(&"x".repeat(10_000), "p").await;
    for body in [&wrong_password, &unknown_user, &absurd] {
        assert_eq!(error_code(body), "UNAUTHENTICATED", "{body}");
        assert!(body["data"].is_null());
    }
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_user["errors"][0]["message"]
    );
}

#[tokio::test]
async fn login_token_lifetime_follows_the_configuration() {
    let app = TestApp::spawn_with(|config| config.token_ttl_seconds = 3600).await;
    let body = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["data"]["login"]["expiresAt"].as_str().unwrap())
            .unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn me_needs_a_valid_credential() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    for credential in [None, Some("garbage"), Some(forged.as_str())] {
        let body = app.gql(credential, ME, json!({})).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "{credential:?}: {body}"
        );
    }
    // A header that is not a bearer credential is refused too.
    let response = app
        .http()
        .post(app.graphql_url())
        .header("authorization", format!("Basic {token}"))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

/// HMAC-SHA256 (RFC 2104), written here so that the test signs tokens
/// independently of the server's JWT library.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64url_json(part: &str) -> serde_json::Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("{part} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

/// A JWT of `claims`, signed with HS256 under `key`.
fn sign_hs256(claims: &serde_json::Value, key: &[u8]) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = base64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = base64url(&hmac_sha256(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let hex = |bytes: [u8; 32]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// The token names a real, live session of this server: only the signature
/// tells a forgery apart, so a server that skipped the check (or consulted
/// its cache of sessions before it) would accept it.
#[tokio::test]
async fn tokens_signed_by_another_server_key_are_rejected() {
    let app = TestApp::spawn().await;
    let genuine = app.admin_token().await;
    let parts: Vec<&str> = genuine.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {genuine}");
    assert_eq!(base64url_json(parts[0])["alg"], "HS256");
    let claims = base64url_json(parts[1]);
    for claim in ["sub", "jti", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }
    let own_key = app.state.config.token_secrets()[0].expose().to_owned();
    // Another server's key, as the harness makes them: 48 bytes.
    let other_key = format!("test-secret-{}", uuid::Uuid::new_v4());
    assert!(other_key.len() >= 32);
    let resigned = sign_hs256(&claims, own_key.as_bytes());
    let forged = sign_hs256(&claims, other_key.as_bytes());
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims.to_string().as_bytes())
    );

    let refused = |token: &str, what: &str| {
        let (app, token, what) = (&app, token.to_owned(), what.to_owned());
        async move {
            let body = app.gql(Some(&token), ME, json!({})).await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
            assert!(body["data"].is_null(), "{what}: {body}");
        }
    };
    let works = |token: &str, what: &str| {
        let (app, token, what) = (&app, token.to_owned(), what.to_owned());
        async move {
            let body = app.gql(Some(&token), ME, json!({})).await;
            assert_eq!(
                body["data"]["me"]["agent"]["username"], ADMIN_USERNAME,
                "{what}: {body}"
            );
        }
    };
    refused(&forged, "forged, cold cache").await;
    refused(&unsigned, "alg none, cold cache").await;
    works(&genuine, "the genuine token").await;
    // The session is now cached: the signature must still be checked first.
    refused(&forged, "forged, warm cache").await;
    refused(&unsigned, "alg none, warm cache").await;
    // The same claims signed by this test with the server's own key pass:
    // the forgery differs in its key alone.
    works(&resigned, "re-signed with the server's key").await;
    works(&genuine, "the genuine token, still").await;
}

#[tokio::test]
async fn bootstrap_creates_one_super_admin_and_leaves_it_alone_after() {
    let app = TestApp::spawn().await;
    // A second start on the same database, with other credentials, changes nothing.
    let mut config = customer_api::Config::with_database_url(app.db.url());
    config.admin_username = "other-admin".into();
    config.admin_password = Some(customer_api::config::Secret::new("other-password"));
    customer_api::startup::start(config).await.unwrap();

    let admins = app
        .count("SELECT count(*) FROM agents WHERE permission & 1 <> 0", &[])
        .await;
    let platforms = app
        .count("SELECT count(*) FROM customers WHERE is_platform", &[])
        .await;
    assert_eq!((admins, platforms), (1, 1));
    assert_eq!(
        error_code(&app.login("other-admin", "other-password").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn bootstrap_without_a_password_generates_one_and_logs_it_once() {
    let username = format!("boot{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = TestApp::spawn_with(|c| {
        c.admin_username = username.clone();
        c.admin_password = None;
    })
    .await;
    // A restart on the same database (or another replica) finds the super
    // admin and neither generates nor logs a password again.
    let restarted = app.replica().await;

    let logs = captured_logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&format!("username={username} ")))
        .filter(|l| l.contains("password="))
        .collect();
    assert_eq!(lines.len(), 1, "one password line in all: {lines:#?}");
    assert!(lines[0].contains("generated password"), "{}", lines[0]);
    let password = lines[0]
        .split("password=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(password.len() >= 20, "{password}");

    // The logged password is the super admin's, on either process.
    for (server, what) in [(&app, "first start"), (&restarted, "restart")] {
        let body = server.login(&username, &password).await;
        assert!(body["data"]["login"]["token"].is_string(), "{what}: {body}");
        assert_eq!(
            body["data"]["login"]["agent"]["permissions"],
            json!(["PROJECT_SUPER_ADMIN", "CUSTOMER_ADMIN"]),
            "{what}: {body}"
        );
    }
    assert_eq!(
        captured_logs().matches(password.as_str()).count(),
        1,
        "the password is in the logs that once, and logins with it add no copy"
    );
}

#[tokio::test]
async fn start_up_purges_sessions_expired_for_over_a_day() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let db = app.db.client().await;
    db.execute(
        "INSERT INTO sessions (id, agent_id, tm_expire) \
         SELECT gen_random_uuid(), id, now() - interval '2 days' FROM agents LIMIT 1",
        &[],
    )
    .await
    .unwrap();
    let _replica = app.replica().await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE tm_expire < now()", &[])
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions", &[]).await,
        1,
        "the live session stays"
    );
    let me = app
        .gql(Some(&token), "{ me { permissions } }", json!({}))
        .await;
    assert!(me["errors"].is_null(), "{me}");
}
