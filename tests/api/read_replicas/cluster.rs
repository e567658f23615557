//! A PostgreSQL primary and one streaming replica of it, private to this
//! test process: `initdb` and `pg_basebackup` from the binaries installed on
//! the machine, on free ports under a temporary directory, so that the
//! machine's own cluster (which allows no replication connections) is left
//! untouched. Started once per test process, on first use; a watchdog shell
//! stops both servers and removes the directory when the process is gone
//! (test binaries run no destructors for statics).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

pub struct Pair {
    pub dir: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
}

pub struct ReplayPaused<'a>(&'a Pair);

impl Drop for ReplayPaused<'_> {
    fn drop(&mut self) {
        self.0.psql_on_replica("SELECT pg_wal_replay_resume()");
    }
}

const TEMPLATE: &str = "customer_api_rr_template";

/// The pair, started (and its template database migrated) on first use.
pub async fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    static TEMPLATE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    // Tests asking at once wait for the one that starts it.
    let pair = tokio::task::spawn_blocking(|| PAIR.get_or_init(Pair::start))
        .await
        .unwrap();
    TEMPLATE_READY
        .get_or_init(|| async {
            let admin = connect(&pair.primary_url("postgres")).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                .await
                .unwrap();
            customer_api::db::run_migrations(&pair.primary_url(TEMPLATE))
                .await
                .expect("migrate the replica tests' template");
        })
        .await;
    pair
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

impl Pair {
    pub fn primary_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.primary_port
        )
    }

    pub fn replica_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.replica_port
        )
    }

    /// A new database on the primary, cloned from the migrated template,
    /// once the replica has it too.
    pub async fn database(&self) -> String {
        let name = format!("rr_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&self.primary_url("postgres")).await;
        let mut attempt = 0;
        loop {
            match admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
                .await
            {
                Ok(()) => break,
                // Another test cloning the template at the same moment.
                Err(e) if attempt < 50 && e.to_string().contains("being accessed") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => panic!("create a test database: {e}"),
            }
        }
        let url = self.replica_url(&name);
        let started = Instant::now();
        loop {
            if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                tokio::spawn(connection);
                if client
                    .query_one("SELECT count(*) FROM __diesel_schema_migrations", &[])
                    .await
                    .is_ok()
                {
                    return name;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the replica never got database {name}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn replica_dir(&self) -> PathBuf {
        self.dir.join("replica")
    }

    /// Stops the replica (fast shutdown: its sessions are cut).
    pub fn stop_replica(&self) {
        self.pg_ctl(
            &["stop", "-m", "fast", "-w", "-D"],
            &self.replica_dir(),
            &[],
        );
    }

    pub fn start_replica(&self) {
        let dir = self.replica_dir();
        let options = server_options(self.replica_port, &self.dir);
        let log = self.dir.join("replica.log");
        self.pg_ctl(
            &["start", "-w", "-t", "60", "-D"],
            &dir,
            &["-l", log.to_str().unwrap(), "-o", &options],
        );
    }

    /// Pauses the replica's replay of WAL (it keeps receiving it) until
    /// the returned guard is dropped, also by a failing assertion.
    pub fn pause_replay(&self) -> ReplayPaused<'_> {
        self.psql_on_replica("SELECT pg_wal_replay_pause()");
        ReplayPaused(self)
    }

    fn psql_on_replica(&self, sql: &str) {
        let port = self.replica_port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-Atc",
                sql,
            ],
        );
    }

    fn start() -> Self {
        let bin = binaries();
        let run_as = run_as();
        let dir = std::env::temp_dir().join(format!(
            "customer-api-read-replicas-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let pair = Self {
            primary_port: free_port(),
            replica_port: free_port(),
            dir,
            bin,
            run_as,
        };
        pair.spawn_watchdog();
        let primary = pair.dir.join("primary");
        pair.run(
            "initdb",
            &[
                "-D",
                primary.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let log = pair.dir.join("primary.log");
        pair.pg_ctl(
            &["start", "-w", "-t", "60", "-D"],
            &primary,
            &[
                "-l",
                log.to_str().unwrap(),
                "-o",
                &server_options(pair.primary_port, &pair.dir),
            ],
        );
        // initdb's pg_hba.conf allows replication from 127.0.0.1 with the
        // --auth it was given (trust), and wal_level=replica is the default.
        pair.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pair.primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                pair.replica_dir().to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        pair.start_replica();
        pair
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        for variable in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            command.env_remove(variable);
        }
        command.current_dir("/").stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, before_dir: &[&str], dir: &Path, after: &[&str]) {
        let mut args: Vec<&str> = before_dir.to_vec();
        args.push(dir.to_str().unwrap());
        args.extend_from_slice(after);
        // pg_ctl start keeps no pipe of ours open: the server's output goes to the log.
        self.run("pg_ctl", &args);
    }

    /// Stops both servers and removes the directory once this process has
    /// ended, however it ends.
    fn spawn_watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; \
             '{pg_ctl}' stop -m immediate -D '{dir}/replica' >/dev/null 2>&1; \
             '{pg_ctl}' stop -m immediate -D '{dir}/primary' >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            dir = self.dir.display(),
        );
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        // It is meant to outlive this process, which never waits for it.
        #[allow(clippy::zombie_processes)]
        command.spawn().expect("start the clean-up watchdog");
    }
}

fn server_options(port: u16, socket_dir: &Path) -> String {
    format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200 \
         -c hot_standby=on",
        socket_dir.display()
    )
}

/// The newest installed PostgreSQL's binaries (Debian keeps them per version).
fn binaries() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_unstable();
    let version = versions
        .last()
        .expect("PostgreSQL's binaries under /usr/lib/postgresql/<version>/bin");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"))
}

/// PostgreSQL refuses to run as root: root hands it to the `postgres` user.
fn run_as() -> Option<(u32, u32)> {
    let output = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&output.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|line| line.starts_with("postgres:"))
        .expect("a postgres user to run PostgreSQL as");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
