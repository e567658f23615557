//! The private development PostgreSQL (the `devdb` crate) against the
//! PostgreSQL installed on the machine: created in a project directory, kept
//! between runs, shared between users, and recovered after `kill -9`.
//!
//! Every cluster here is asked for any free port, so that the system cluster
//! on 5432 (which CI keeps running) and parallel tests are never in the way.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use devdb::{DATA_DIR_NAME, DevCluster, DevClusterOptions, server_answers};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};
use tokio_postgres::{Client, NoTls};

fn options() -> DevClusterOptions {
    DevClusterOptions {
        preferred_port: 0,
        timeout: Duration::from_secs(30),
        ..DevClusterOptions::default()
    }
}

/// A project directory of its own per test, with a space and a quote in its
/// name because `pg_ctl` passes paths through the shell. Removing it stops
/// any server a failed test left running in it.
struct TempProject(PathBuf);

impl TempProject {
    fn new(test: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "customer-api devdb's {test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn data_dir(&self) -> PathBuf {
        self.0.canonicalize().unwrap().join(DATA_DIR_NAME)
    }

    fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for TempProject {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            // SIGQUIT: immediate shutdown, for a server a failed test left.
            let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
            wait_until_gone(pid, Duration::from_secs(10));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn process_exists(pid: i32) -> bool {
    // No signal: only whether the process exists.
    kill(Pid::from_raw(pid), None).is_ok()
}

fn wait_until_gone(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while process_exists(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// What the server does on its first start, which this module leaves to it.
async fn create_database(cluster: &DevCluster) {
    connect(&cluster.url_for("postgres"))
        .await
        .batch_execute("CREATE DATABASE customer_api")
        .await
        .unwrap();
}

async fn notes(cluster: &DevCluster) -> Vec<String> {
    connect(cluster.url())
        .await
        .query("SELECT body FROM notes ORDER BY body", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn answers(url: &str) -> bool {
    server_answers(url, Duration::from_secs(2)).await
}

#[tokio::test]
async fn a_private_cluster_keeps_its_data_between_runs() {
    let project = TempProject::new("keeps data");
    let first = DevCluster::start(project.path(), options()).await.unwrap();
    assert!(first.started_here());
    assert_eq!(first.data_dir(), project.data_dir());
    assert!(first.data_dir().join("PG_VERSION").is_file());
    assert_ne!(first.port(), 5432, "never the system cluster's port");
    assert_eq!(
        first.url(),
        format!(
            "postgres://postgres@127.0.0.1:{}/customer_api",
            first.port()
        )
    );

    // Only loopback, and the Unix socket inside the data directory.
    let pid_file = std::fs::read_to_string(first.data_dir().join("postmaster.pid")).unwrap();
    assert_eq!(pid_file.lines().nth(5), Some("127.0.0.1"), "{pid_file}");
    let socket = first.data_dir().join(format!(".s.PGSQL.{}", first.port()));
    assert!(socket.exists(), "{}", socket.display());

    if geteuid().is_root() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(first.data_dir()).unwrap().uid();
        assert_ne!(owner, 0, "as root, the data belongs to the postgres user");
    }

    create_database(&first).await;
    connect(first.url())
        .await
        .batch_execute("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
        .await
        .unwrap();
    let url = first.url().to_owned();
    first.stop().await.unwrap();
    assert!(!answers(&url).await, "stopped");

    let second = DevCluster::start(project.path(), options()).await.unwrap();
    assert!(second.started_here());
    assert_eq!(notes(&second).await, ["kept"]);
    let url = second.url().to_owned();
    drop(second);
    assert!(!answers(&url).await, "dropping the handle stops the server");
}

#[tokio::test]
async fn a_second_user_shares_the_server_and_the_last_one_stops_it() {
    let project = TempProject::new("shared");
    let first = DevCluster::start(project.path(), options()).await.unwrap();
    let second = DevCluster::start(project.path(), options()).await.unwrap();
    assert!(first.started_here());
    assert!(!second.started_here(), "joined the running server");
    assert_eq!(second.port(), first.port());

    let url = first.url_for("postgres");
    second.stop().await.unwrap();
    assert!(answers(&url).await, "still used by the first");
    first.stop().await.unwrap();
    assert!(!answers(&url).await, "stopped by the last user");
}

#[tokio::test]
async fn a_server_killed_with_sigkill_starts_again_with_its_data() {
    let project = TempProject::new("killed server");
    let cluster = DevCluster::start(project.path(), options()).await.unwrap();
    create_database(&cluster).await;
    connect(cluster.url())
        .await
        .batch_execute("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('committed')")
        .await
        .unwrap();

    let pid = project.postmaster_pid().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    // No waiting: until init reaps it (1-2 s on this kind of machine), the
    // killed server is a zombie that `kill(pid, 0)` still finds.
    assert!(
        project.data_dir().join("postmaster.pid").exists(),
        "a stale postmaster.pid is the case under test"
    );
    // This process's handle finds the server gone and is content.
    cluster.stop().await.unwrap();

    let restarted = DevCluster::start(project.path(), options()).await.unwrap();
    assert!(restarted.started_here());
    assert_eq!(notes(&restarted).await, ["committed"]);
    restarted.stop().await.unwrap();
}
