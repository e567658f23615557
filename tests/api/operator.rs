//! What operators and client libraries script against: the CLI, `.env`,
//! migrations, and automatic persisted queries.

use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TestApp, TestDb, error_code};
use crate::process::BINARY;

#[test]
fn help_documents_every_setting_with_its_variable() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "DATABASE_URL",
        "LISTEN_ADDR",
        "TOKEN_SECRET",
        "TOKEN_TTL_SECONDS",
        "ADMIN_USERNAME",
        "ADMIN_PASSWORD",
        "LOGIN_MAX_FAILURES",
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        "LOGIN_FAILURE_WINDOW_SECONDS",
        "TRUST_FORWARDED_FOR",
        "DB_POOL_SIZE",
        "DB_POOL_TIMEOUT_MS",
        "DB_STATEMENT_TIMEOUT_MS",
        "REQUEST_TIMEOUT_MS",
        "DRAIN_TIMEOUT_MS",
        "MAX_BODY_BYTES",
        "MAX_BATCH_SIZE",
        "MAX_QUERY_DEPTH",
        "MAX_QUERY_COMPLEXITY",
        "MAX_ALIASES",
        "MAX_ROOT_FIELDS",
        "CORS_ALLOWED_ORIGINS",
        "INTROSPECTION",
        "LOG_FORMAT",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "--help lacks {variable}:\n{help}"
        );
    }
    for command in ["serve", "print-schema", "migrate"] {
        assert!(help.contains(command), "--help lacks {command}");
    }
    assert!(
        help.contains("[default: 127.0.0.1:8080]"),
        "defaults are shown"
    );
}

#[test]
fn print_schema_prints_the_checked_in_schema() {
    let output = Command::new(BINARY).arg("print-schema").output().unwrap();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), checked_in);
}

async fn applied_versions(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    client
        .query(
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn migrate_reads_dotenv_and_reverts_the_last_migration() {
    let db = TestDb::create().await;
    let all = applied_versions(&db).await;
    let dir = std::env::temp_dir().join(format!("customer-api-dotenv-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), format!("DATABASE_URL={}\n", db.url())).unwrap();
    let run = |args: &[&str]| {
        Command::new(BINARY)
            .args(args)
            .current_dir(&dir)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };

    let reverted = run(&["migrate", "--revert"]);
    assert!(
        reverted.status.success(),
        "{}",
        String::from_utf8_lossy(&reverted.stderr)
    );
    assert_eq!(applied_versions(&db).await, all[..all.len() - 1].to_vec());

    let migrated = run(&["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(applied_versions(&db).await, all);
    std::fs::remove_dir_all(dir).unwrap();
}

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn persisted_queries_are_accepted_by_hash_after_the_first_use() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let query = "{ me { agent { username } } }";
    let persisted = |with_query: bool| {
        let mut body = json!({
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256(query) } }
        });
        if with_query {
            body["query"] = json!(query);
        }
        app.http()
            .post(app.graphql_url())
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let unknown: Value = persisted(false).await.unwrap().json().await.unwrap();
    assert_eq!(
        error_code(&unknown),
        "PERSISTED_QUERY_NOT_FOUND",
        "{unknown}"
    );
    let registered: Value = persisted(true).await.unwrap().json().await.unwrap();
    assert_eq!(
        registered["data"]["me"]["agent"]["username"], "admin",
        "{registered}"
    );
    let by_hash: Value = persisted(false).await.unwrap().json().await.unwrap();
    assert_eq!(
        by_hash["data"]["me"]["agent"]["username"], "admin",
        "{by_hash}"
    );
}

#[tokio::test]
async fn get_refuses_persisted_mutations_too() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mutation = "mutation { createAccessKey(input: { name: \"via-get\" }) { token } }";
    let hash = sha256(mutation);
    // Registered through POST, which may run it...
    let body = json!({
        "query": mutation,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } }
    });
    let posted: Value = app
        .http()
        .post(app.graphql_url())
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        posted["data"]["createAccessKey"]["token"].is_string(),
        "{posted}"
    );
    // ...but never run by its hash over GET.
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string();
    let response = app
        .http()
        .get(app.graphql_url())
        .query(&[("extensions", extensions.as_str())])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["limit"], "MUTATION_OVER_GET",
        "{body}"
    );
    let db = app.db.client().await;
    let keys: i64 = db
        .query_one(
            "SELECT count(*) FROM access_keys WHERE name = 'via-get'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "only the POST created a key");
}
