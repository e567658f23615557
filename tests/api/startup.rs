//! Start-up as operators run it: real processes of the built binary, several
//! at once on one database (replicas rolled out together), and start-up
//! failures as they read on the command line and in log files.

use std::process::Command;
use std::sync::Barrier;

use crate::harness::{ADMIN_USERNAME, TestDb};
use crate::process::{Process, command};

const REPLICAS: usize = 3;

/// Starts `REPLICAS` processes at the same moment: each thread builds its
/// command, then all wait at a barrier and spawn together.
fn start_together(make: impl Fn() -> Command + Sync) -> Vec<Process> {
    let barrier = Barrier::new(REPLICAS);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..REPLICAS)
            .map(|_| {
                scope.spawn(|| {
                    let command = make();
                    barrier.wait();
                    Process::spawn(command)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// A database name no other test uses; `TestDb` drops it at the end (if it
/// exists by then), even when the test panics.
fn unused_database() -> TestDb {
    TestDb {
        name: format!("customer_api_startup_{}", uuid::Uuid::new_v4().simple()),
    }
}

async fn create_empty(db: &TestDb) {
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_path("/postgres");
    let (client, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {}", db.name))
        .await
        .unwrap();
}

/// Every embedded migration's version, from the migrations directory
/// (`2026-11-27-000001_create_customers` is version `20261127000001`).
fn migration_versions() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().replace('-', "")
        })
        .collect();
    versions.sort();
    versions
}

async fn applied_versions(db: &TestDb) -> Vec<String> {
    db.client()
        .await
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

async fn live_super_admins(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT a.username FROM agents a JOIN customers c ON c.id = a.customer_id \
             WHERE c.is_platform AND c.tm_delete IS NULL AND a.tm_delete IS NULL \
               AND a.permission & 1 <> 0",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// How many of the processes' logs together contain `line`.
fn occurrences(logs: &[String], line: &str) -> usize {
    logs.iter().map(|log| log.matches(line).count()).sum()
}

/// Three replicas started together on `db`: every one comes up and answers
/// `/readyz`, the schema is applied once and one super admin is created.
async fn three_replicas_come_up(db: &TestDb) {
    let url = db.url();
    let mut replicas = start_together(|| command(&url, &["serve"]));
    let http = reqwest::Client::new();
    for replica in &mut replicas {
        let base = replica.base_url().await;
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{base}/readyz:\n{}", replica.stderr());
    }
    let logs: Vec<String> = replicas.iter().map(Process::stderr).collect();
    for log in &logs {
        assert!(!log.contains("ERROR"), "{log}");
    }

    let versions = migration_versions();
    assert_eq!(applied_versions(db).await, versions);
    for version in &versions {
        let line = format!("applied migration version={version}");
        assert_eq!(occurrences(&logs, &line), 1, "{line}:\n{}", logs.join("\n"));
    }
    assert_eq!(live_super_admins(db).await, [ADMIN_USERNAME]);
    assert_eq!(
        occurrences(&logs, "created super admin"),
        1,
        "{}",
        logs.join("\n")
    );
}

#[tokio::test]
async fn replicas_started_together_on_a_missing_database_all_come_up() {
    let db = unused_database();
    three_replicas_come_up(&db).await;
}

#[tokio::test]
async fn replicas_started_together_on_an_empty_database_all_come_up() {
    let db = unused_database();
    create_empty(&db).await;
    three_replicas_come_up(&db).await;
}

#[tokio::test]
async fn migrate_commands_run_together_all_succeed() {
    let db = unused_database();
    let url = db.url();
    let processes = start_together(|| command(&url, &["migrate"]));
    let mut logs = Vec::new();
    for process in processes {
        let (status, log) = process.finish().await;
        assert!(status.success(), "{status}:\n{log}");
        logs.push(log);
    }
    let versions = migration_versions();
    assert_eq!(applied_versions(&db).await, versions);
    assert_eq!(occurrences(&logs, "created database"), 1, "{logs:?}");
    for version in &versions {
        let line = format!("applied migration version={version}");
        assert_eq!(occurrences(&logs, &line), 1, "{line}: {logs:?}");
    }
}

#[tokio::test]
async fn start_up_failures_name_what_failed_in_plain_text() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = "not-this-password-anywhere";
    let url = format!("postgres://postgres:{password}@127.0.0.1:{port}/customer_api");
    for args in [&["serve"][..], &["migrate"], &["migrate", "--revert"]] {
        let (status, stderr) = Process::spawn(command(&url, args)).finish().await;
        assert!(!status.success(), "{args:?} exits non-zero:\n{stderr}");
        assert!(
            !stderr.contains('\x1b'),
            "{args:?}: no colour codes when stderr is not a terminal:\n{stderr:?}"
        );
        assert!(
            !stderr.to_lowercase().contains("internal server error"),
            "{args:?}: the client-facing wording is not for operators:\n{stderr}"
        );
        assert!(!stderr.contains(password), "{args:?}:\n{stderr}");
        let expected = format!(
            "cannot reach PostgreSQL at 127.0.0.1:{port} (database customer_api): connection refused"
        );
        assert!(
            stderr.contains(&expected),
            "{args:?} says {expected:?}:\n{stderr}"
        );
    }
}
