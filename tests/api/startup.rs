//! Start-up as operators run it: real processes of the built binary, several
//! at once on one database (replicas rolled out together), and start-up
//! failures as they read on the command line and in log files.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestDb};

const BINARY: &str = env!("CARGO_BIN_EXE_customer-api");
const REPLICAS: usize = 3;
const DEADLINE: Duration = Duration::from_secs(60);

/// The binary with `DATABASE_URL` set (so that it never starts its private
/// development PostgreSQL), plain text logs at `info`, and a working
/// directory of its own (so that no `.env` applies).
fn command(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("ADMIN_USERNAME", ADMIN_USERNAME)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        // tracing-subscriber honours NO_COLOR by itself: without it, colour
        // is up to the binary's own terminal check, which is under test.
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A running process of the binary, with its stderr collected by a thread.
/// Dropping it kills the process, so that a failed test leaves none behind.
struct Process {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start the binary");
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the "listening on http://…/graphql" line and returns the
    /// server's base URL; fails if the process exits first.
    async fn base_url(&mut self) -> String {
        let started = Instant::now();
        loop {
            let log = self.stderr();
            if let Some(rest) = log.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                return url.trim_end_matches("/graphql").to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited with {status} before listening:\n{log}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the server did not listen within {DEADLINE:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit (killing it past the deadline) and
    /// returns its status and everything it wrote to stderr.
    async fn finish(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "still running after {DEADLINE:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.stderr())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
