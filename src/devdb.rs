//! A private PostgreSQL for development, so that `cargo run` works with no
//! configuration on a machine that has PostgreSQL installed but no server
//! where `DATABASE_URL` points by default.
//!
//! The cluster lives in `<project>/.pgdata` (git-ignored). It is created on
//! first use by the machine's own `initdb`, started and stopped by its own
//! `pg_ctl`, and keeps its data between runs. It uses trust authentication,
//! which is why it listens on 127.0.0.1 only; its Unix socket goes into the
//! data directory because an ordinary user cannot write the system's socket
//! directory (`/var/run/postgresql` on Debian).
//!
//! PostgreSQL refuses to run as root. When this process is root, `initdb` and
//! `pg_ctl` run as the `postgres` system user that the distribution packages
//! create, and the data directory belongs to that user.
//!
//! # Why not a crate
//!
//! `initdb` and `pg_ctl` are PostgreSQL's own maintained tools for exactly
//! this job; what is left is choosing the binaries, the user and the port.
//! The crates that wrap them were tried here (November 2026) and did not fit:
//!
//! - `postgresql_embedded` 0.22 can use installed binaries
//!   (`trust_installation_dir`), but runs `initdb` and `pg_ctl` as the calling
//!   user with no way to switch, so as root both abort ("cannot be run as
//!   root"). It initialises with password authentication and a new random
//!   password per process (a kept cluster would need that password kept too),
//!   takes any `postmaster.pid` for a running server, pulls in sqlx and a
//!   reqwest stack for downloading PostgreSQL (over 30 crates this project
//!   does not build otherwise) and needs Rust 1.94 where this crate promises
//!   1.85.
//! - `pgtemp` 0.7 always runs `initdb` into a new temporary directory (its
//!   `persist` option keeps the directory but never reuses it), becomes the
//!   `postgres` user through `sudo`, which Debian does not install by default,
//!   panics instead of returning errors, and turns off fsync and full-page
//!   writes: right for throw-away test databases, wrong for data kept between
//!   runs.
//!
//! # Sharing, crashes and signals
//!
//! Several processes may use one cluster (two servers with different
//! `LISTEN_ADDR`s, say). Starting and stopping are serialised by an exclusive
//! `flock` on the data directory, and every process using the server holds a
//! shared `flock` on `customer-api.lock` inside it for as long as it runs; the
//! one that stops and finds no other holder stops the server. The kernel
//! drops the locks of a killed process, so a server left behind by a
//! `kill -9`ed process is adopted by the next one and stopped when that one
//! stops. A server that was itself killed leaves a stale `postmaster.pid`,
//! which `pg_ctl start` gets past (with crash recovery, as after a power
//! cut) once the dead server is reaped; until then it is a zombie that
//! `pg_ctl` takes for alive, so its lock files are removed here first.
//!
//! `pg_ctl` starts the server in a session of its own, so Ctrl-C in the
//! terminal reaches only this process: the database stays up while requests
//! drain, and is stopped after that.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Name of the cluster's directory inside the project directory.
pub const DATA_DIR_NAME: &str = ".pgdata";

/// Port tried first: the one after PostgreSQL's default (5432, where main.rs
/// looks for a server before it asks for this one), as a second cluster on
/// Debian gets. A stable port lets `psql -p 5433` find it between runs.
pub const DEFAULT_PREFERRED_PORT: u16 = 5433;

/// The database role the cluster is created with, as on a packaged server.
const SUPERUSER: &str = "postgres";
/// The system account the distribution packages create to run PostgreSQL.
const SYSTEM_USER: &str = "postgres";
const SERVER_LOG: &str = "server.log";
const USERS_LOCK: &str = "customer-api.lock";
/// The log is appended to on every start; beyond this it is moved aside once.
const LOG_ROTATE_BYTES: u64 = 16 << 20;
/// Starts retried after a taken port or a previous server still exiting.
const START_ATTEMPTS: u32 = 5;
/// `sun_path` is 108 bytes on Linux and 104 on macOS, terminating NUL included.
const MAX_SOCKET_PATH: usize = 103;
/// Variables that would point `pg_ctl`/`initdb` at some other cluster or
/// server than ours: a developer's shell often has them set for another one.
const FOREIGN_PG_VARIABLES: &[&str] = &[
    "PGDATA",
    "PGPORT",
    "PGHOST",
    "PGHOSTADDR",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
];

/// How to find, create and start the development cluster.
#[derive(Clone, Debug)]
pub struct DevClusterOptions {
    /// Port tried first when the server has to be started; another free one
    /// is used when it is taken. `0` means any free port.
    pub preferred_port: u16,
    /// Directory holding `initdb`, `pg_ctl` and `postgres`; searched for when
    /// `None` (`/usr/lib/postgresql/*/bin`, `pg_config --bindir`, `PATH`).
    pub bin_dir: Option<PathBuf>,
    /// Database named in [`DevCluster::url`]. It is not created here: the
    /// server creates its database itself (`db::create_database_if_missing`).
    pub database: String,
    /// Longest wait for the server to start or stop, and for another process
    /// that is starting or stopping it.
    pub timeout: Duration,
}

impl Default for DevClusterOptions {
    fn default() -> Self {
        Self {
            preferred_port: DEFAULT_PREFERRED_PORT,
            bin_dir: None,
            database: "customer_api".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevDbError {
    #[error(
        "no PostgreSQL server programs (initdb, pg_ctl and postgres side by side) in {searched}: \
         install them (Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install \
         postgresql-server`; macOS: `brew install postgresql`) or set DATABASE_URL to a server \
         you have"
    )]
    BinariesNotFound { searched: String },

    #[error(
        "{data_dir} holds a PostgreSQL {major} cluster, but the PostgreSQL installed here is {found}: \
         install PostgreSQL {major} (Debian/Ubuntu: `apt-get install postgresql-{major}`), or move \
         {data_dir} away to start with an empty database"
    )]
    VersionNotInstalled {
        data_dir: PathBuf,
        major: String,
        found: String,
    },

    #[error(
        "this process runs as root, which PostgreSQL refuses, and there is no `postgres` system \
         user to run it as (the Debian/Ubuntu `postgresql` package creates one): create that \
         user, run as an ordinary user, or set DATABASE_URL"
    )]
    NoSystemUser,

    #[error(
        "{path} belongs to user id {owner}, but PostgreSQL would run as {runner}: remove it (its \
         data goes with it) or give it to that user"
    )]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        runner: String,
    },

    #[error(
        "{path} exists but holds no PostgreSQL cluster (no PG_VERSION; an interrupted first \
         start?): remove it to have it created afresh"
    )]
    NotADataDirectory { path: PathBuf },

    #[error(
        "cannot keep a PostgreSQL cluster in {path}: pg_ctl passes that path to the shell in double \
         quotes, so it must be UTF-8 without \", $, ` or \\"
    )]
    UnsupportedPath { path: PathBuf },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("initdb failed for {data_dir} ({status}): {stderr}{hint}")]
    InitDb {
        data_dir: PathBuf,
        status: String,
        stderr: String,
        hint: String,
    },

    #[error(
        "PostgreSQL did not start from {data_dir}: {stderr}{hint}\nthe end of its log ({log}):\n{log_tail}"
    )]
    Start {
        data_dir: PathBuf,
        stderr: String,
        hint: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("{program} failed for {data_dir} ({status}): {stderr}")]
    Command {
        program: &'static str,
        data_dir: PathBuf,
        status: String,
        stderr: String,
    },

    #[error(
        "another process has been starting or stopping the PostgreSQL in {data_dir} for over {} s: \
         wait for it to finish, or end it",
        .waited.as_secs()
    )]
    Busy { data_dir: PathBuf, waited: Duration },

    #[error(
        "the PostgreSQL in {data_dir} does not accept connections on 127.0.0.1:{port} after {} s: \
         {last_error} (its log: {log})",
        .waited.as_secs()
    )]
    NotAccepting {
        data_dir: PathBuf,
        port: u16,
        waited: Duration,
        last_error: String,
        log: PathBuf,
    },

    #[error("the development database task failed: {0}")]
    Task(String),
}

/// Starts (or joins) the development cluster in `<project_dir>/.pgdata`, with
/// the default options. See [`DevCluster::start`].
pub async fn private_cluster(project_dir: &Path) -> Result<DevCluster, DevDbError> {
    DevCluster::start(project_dir, DevClusterOptions::default()).await
}

/// Whether a PostgreSQL server answers at `url` within `timeout`. A server
/// that refuses the login or lacks the database still answers: main.rs asks
/// this to decide whether a server is there, not whether it is ready.
pub async fn server_answers(url: &str, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, tokio_postgres::connect(url, tokio_postgres::NoTls)).await {
        Ok(Ok((client, connection))) => {
            drop(client);
            let _ = connection.await;
            true
        }
        Ok(Err(error)) => error.as_db_error().is_some(),
        Err(_) => false,
    }
}

/// A running development cluster, used by this process until [`stop`] or
/// drop, which stop the server unless another process still uses it.
///
/// [`stop`]: DevCluster::stop
#[derive(Debug)]
pub struct DevCluster {
    server: Server,
    port: u16,
    url: String,
    started_here: bool,
    /// Shared lock that tells other processes this one uses the server;
    /// `None` once stopped.
    users_lock: Option<File>,
    /// The exclusive startup lock, held until the server answers.
    startup_lock: Option<File>,
}

impl DevCluster {
    /// Finds the installed PostgreSQL, creates the cluster in
    /// `<project_dir>/.pgdata` if there is none, starts it on 127.0.0.1 (or
    /// joins it when another process already runs it), and waits until it
    /// accepts connections.
    pub async fn start(project_dir: &Path, options: DevClusterOptions) -> Result<Self, DevDbError> {
        let project_dir = project_dir.to_owned();
        let timeout = options.timeout;
        let mut cluster = blocking(move || open(&project_dir, &options)).await?;
        if let Err(last_error) = wait_until_accepting(&cluster.url_for("postgres"), timeout).await {
            let error = DevDbError::NotAccepting {
                data_dir: cluster.server.data_dir.clone(),
                port: cluster.port,
                waited: timeout,
                last_error,
                log: cluster.log_file(),
            };
            blocking(move || {
                drop(cluster);
                Ok(())
            })
            .await?;
            return Err(error);
        }
        cluster.startup_lock = None;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`, trust authentication.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of another database of the same server (e.g. `postgres`).
    pub fn url_for(&self, database: &str) -> String {
        database_url(self.port, database)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory, `<project_dir>/.pgdata`.
    pub fn data_dir(&self) -> &Path {
        &self.server.data_dir
    }

    /// The server's log file (appended to by every start).
    pub fn log_file(&self) -> PathBuf {
        self.server.log_file()
    }

    /// Whether this process started the server, rather than joining one that
    /// was running already (another process's, or one left by a killed one).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server (`pg_ctl stop -m fast`) unless another process still
    /// uses it. Call it after the HTTP server has drained; dropping the
    /// handle does the same, blocking the calling thread meanwhile.
    pub async fn stop(mut self) -> Result<(), DevDbError> {
        blocking(move || self.stop_blocking()).await
    }

    fn stop_blocking(&mut self) -> Result<(), DevDbError> {
        // Still held when starting failed or was cancelled; stopping takes
        // it anew below, and another open file of ours would conflict.
        self.startup_lock = None;
        let Some(users) = self.users_lock.take() else {
            return Ok(());
        };
        let data_dir = &self.server.data_dir;
        let _startup = lock_directory(data_dir, Instant::now() + self.server.timeout)?;
        // Converting our shared lock succeeds only when no one else holds one.
        let last_user = try_flock(&users, libc::LOCK_EX).map_err(|source| DevDbError::Io {
            action: "cannot lock",
            path: data_dir.join(USERS_LOCK),
            source,
        })?;
        if last_user {
            self.server.stop()?;
            tracing::info!(data_dir = %data_dir.display(), "stopped the development PostgreSQL");
        } else {
            tracing::info!(
                data_dir = %data_dir.display(),
                "left the development PostgreSQL running: another process uses it"
            );
        }
        Ok(())
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop_blocking() {
            tracing::warn!(%error, "could not stop the development PostgreSQL");
        }
    }
}

/// Everything up to a started (or joined) server, under the startup lock,
/// which the returned handle holds until the server answers.
fn open(project_dir: &Path, options: &DevClusterOptions) -> Result<DevCluster, DevDbError> {
    let project_dir = fs::canonicalize(project_dir).map_err(|source| DevDbError::Io {
        action: "cannot find the project directory",
        path: project_dir.to_owned(),
        source,
    })?;
    let data_dir = project_dir.join(DATA_DIR_NAME);
    check_path_for_shell(&data_dir)?;
    let run_as = RunAs::detect()?;
    prepare_data_dir(&data_dir, &run_as)?;

    let deadline = Instant::now() + options.timeout;
    let startup_lock = lock_directory(&data_dir, deadline)?;
    let existing_major = read_pg_version(&data_dir)?;
    if existing_major.is_none() && !is_empty_dir(&data_dir)? {
        return Err(DevDbError::NotADataDirectory { path: data_dir });
    }
    let bins = find_binaries(
        options.bin_dir.as_deref(),
        existing_major.as_deref(),
        &data_dir,
    )?;
    let server = Server {
        bins,
        run_as,
        data_dir,
        timeout: options.timeout,
    };
    if existing_major.is_none() {
        server.initdb()?;
        tracing::info!(
            data_dir = %server.data_dir.display(),
            version = %server.bins.version,
            "created a PostgreSQL cluster for development"
        );
    }

    let users_lock = server.open_users_lock()?;
    // Only a stopping process holds this one exclusively, and it does so
    // under the startup lock, which is ours now: this wait is for a process
    // that is no customer-api.
    flock_until(
        &users_lock,
        libc::LOCK_SH,
        &server.data_dir,
        &server.data_dir.join(USERS_LOCK),
        deadline,
    )?;

    let (port, started_here) = if server.is_running()? {
        let port = server.running_port()?;
        tracing::info!(
            data_dir = %server.data_dir.display(),
            port,
            "joined the development PostgreSQL that was already running"
        );
        (port, false)
    } else {
        server.rotate_log();
        let port = server.start(options.preferred_port)?;
        tracing::info!(
            data_dir = %server.data_dir.display(),
            port,
            "started the development PostgreSQL"
        );
        (port, true)
    };
    Ok(DevCluster {
        url: database_url(port, &options.database),
        server,
        port,
        started_here,
        users_lock: Some(users_lock),
        startup_lock: Some(startup_lock),
    })
}

fn database_url(port: u16, database: &str) -> String {
    let mut url = url::Url::parse("postgres://127.0.0.1").expect("a valid constant URL");
    url.set_username(SUPERUSER).expect("a URL with a host");
    url.set_port(Some(port)).expect("a URL with a host");
    url.path_segments_mut()
        .expect("a URL with a host")
        .push(database);
    url.into()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DevDbError> + Send + 'static,
) -> Result<T, DevDbError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| DevDbError::Task(error.to_string()))?
}

/// Connects until a query succeeds: `pg_ctl start -w` has waited already, but
/// a joined server may still be starting or recovering.
async fn wait_until_accepting(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            let result = client.simple_query("SELECT 1").await.map(drop);
            drop(client);
            let _ = connection.await;
            result
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let last_error =
            match tokio::time::timeout(remaining.min(Duration::from_secs(5)), attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "connecting timed out".to_owned(),
            };
        if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
            return Err(last_error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The account `initdb`, `pg_ctl` and so the server run as.
#[derive(Clone, Debug)]
enum RunAs {
    CurrentUser { uid: u32 },
    SystemUser { uid: u32, gid: u32, home: PathBuf },
}

impl RunAs {
    fn detect() -> Result<Self, DevDbError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Ok(Self::CurrentUser { uid: euid });
        }
        match lookup_user(SYSTEM_USER) {
            Ok(Some(user)) if user.uid != 0 => Ok(Self::SystemUser {
                uid: user.uid,
                gid: user.gid,
                home: user.home,
            }),
            Ok(_) => Err(DevDbError::NoSystemUser),
            Err(source) => Err(DevDbError::Io {
                action: "cannot look up the user",
                path: PathBuf::from(SYSTEM_USER),
                source,
            }),
        }
    }

    fn uid(&self) -> u32 {
        match self {
            Self::CurrentUser { uid } | Self::SystemUser { uid, .. } => *uid,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::CurrentUser { uid } => format!("this process's user (uid {uid})"),
            Self::SystemUser { uid, .. } => format!("the `{SYSTEM_USER}` user (uid {uid})"),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for variable in FOREIGN_PG_VARIABLES {
            command.env_remove(variable);
        }
        // Every path passed is absolute; "/" is a working directory that the
        // `postgres` user can always enter, unlike root's.
        command.current_dir("/").stdin(Stdio::null());
        if let Self::SystemUser { uid, gid, home } = self {
            // std drops root's supplementary groups when it switches the uid.
            command
                .uid(*uid)
                .gid(*gid)
                .env("HOME", home)
                .env("USER", SYSTEM_USER)
                .env("LOGNAME", SYSTEM_USER);
        }
        command
    }

    /// What to add to an error whose cause may be that the `postgres` user
    /// cannot reach the project directory (e.g. a project under `/root`).
    fn permission_hint(&self, stderr: &str, data_dir: &Path) -> String {
        match self {
            Self::SystemUser { .. } if stderr.contains("Permission denied") => format!(
                " (as root, PostgreSQL runs as the `{SYSTEM_USER}` user, which must be able to \
                 reach {}: every directory above it needs o+x; or keep the project elsewhere)",
                data_dir.display()
            ),
            _ => String::new(),
        }
    }
}

struct SystemAccount {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

fn lookup_user(name: &str) -> io::Result<Option<SystemAccount>> {
    let name = CString::new(name).map_err(io::Error::other)?;
    let mut buffer = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids); it
        // is only read after getpwnam_r has filled it in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and `buffer.len()` is
        // the true size of the buffer the strings are written into.
        let code = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if code == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if code != 0 {
            return Err(io::Error::from_raw_os_error(code));
        }
        if found.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_dir points to a NUL-terminated string inside
        // `buffer`, which is still alive here.
        let home = unsafe { CStr::from_ptr(entry.pw_dir) };
        return Ok(Some(SystemAccount {
            uid: entry.pw_uid,
            gid: entry.pw_gid,
            home: PathBuf::from(OsStr::from_bytes(home.to_bytes())),
        }));
    }
}

fn check_path_for_shell(path: &Path) -> Result<(), DevDbError> {
    match path.to_str() {
        Some(text) if !text.contains(['"', '$', '`', '\\']) => Ok(()),
        _ => Err(DevDbError::UnsupportedPath {
            path: path.to_owned(),
        }),
    }
}

/// Creates the data directory (mode 0700, as `initdb` wants it) owned by the
/// account that will run the server, or checks that an existing one is.
fn prepare_data_dir(data_dir: &Path, run_as: &RunAs) -> Result<(), DevDbError> {
    let io_error = |action| {
        move |source| DevDbError::Io {
            action,
            path: data_dir.to_owned(),
            source,
        }
    };
    match DirBuilder::new().mode(0o700).create(data_dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io_error("cannot create")(error)),
    }
    let metadata = fs::metadata(data_dir).map_err(io_error("cannot read"))?;
    if !metadata.is_dir() {
        return Err(DevDbError::NotADataDirectory {
            path: data_dir.to_owned(),
        });
    }
    if metadata.uid() == run_as.uid() {
        return Ok(());
    }
    match run_as {
        // Root made it (now or in an interrupted first run): hand it over
        // while it is still empty. A full one is left alone.
        RunAs::SystemUser { uid, gid, .. } if is_empty_dir(data_dir)? => {
            std::os::unix::fs::chown(data_dir, Some(*uid), Some(*gid))
                .map_err(io_error("cannot change the owner of"))?;
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
                .map_err(io_error("cannot change the mode of"))
        }
        _ => Err(DevDbError::WrongOwner {
            path: data_dir.to_owned(),
            owner: metadata.uid(),
            runner: run_as.describe(),
        }),
    }
}

fn is_empty_dir(path: &Path) -> Result<bool, DevDbError> {
    let mut entries = fs::read_dir(path).map_err(|source| DevDbError::Io {
        action: "cannot list",
        path: path.to_owned(),
        source,
    })?;
    Ok(entries.next().is_none())
}

/// The major version that created the cluster, `None` when there is none yet.
fn read_pg_version(data_dir: &Path) -> Result<Option<String>, DevDbError> {
    let path = data_dir.join("PG_VERSION");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DevDbError::Io {
            action: "cannot read",
            path,
            source,
        }),
    }
}

/// Takes the exclusive startup lock (an `flock` on the data directory
/// itself, which exists before `initdb` and gets no extra file), waiting for
/// another process that is starting or stopping the server.
fn lock_directory(data_dir: &Path, deadline: Instant) -> Result<File, DevDbError> {
    // Rust opens every file close-on-exec, so neither `pg_ctl` nor the server
    // inherits this lock (nor the users lock) and keeps it after we exit.
    let directory = File::open(data_dir).map_err(|source| DevDbError::Io {
        action: "cannot open",
        path: data_dir.to_owned(),
        source,
    })?;
    flock_until(&directory, libc::LOCK_EX, data_dir, data_dir, deadline)?;
    Ok(directory)
}

/// `flock` on `file` (the data directory or a file in it), polling until
/// `deadline`, since a blocking `flock` cannot time out.
fn flock_until(
    file: &File,
    operation: libc::c_int,
    data_dir: &Path,
    path: &Path,
    deadline: Instant,
) -> Result<(), DevDbError> {
    let started = Instant::now();
    loop {
        match try_flock(file, operation) {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(false) => {
                return Err(DevDbError::Busy {
                    data_dir: data_dir.to_owned(),
                    waited: started.elapsed(),
                });
            }
            Err(source) => {
                return Err(DevDbError::Io {
                    action: "cannot lock",
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}

/// `flock` without waiting: `Ok(false)` when another open file holds a
/// conflicting lock.
fn try_flock(file: &File, operation: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock only uses the descriptor, which `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// A PostgreSQL version as `postgres --version` prints it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PgVersion(Vec<u32>);

impl PgVersion {
    fn parse(version_output: &str) -> Option<Self> {
        let text = version_output
            .split_once("(PostgreSQL)")
            .map_or(version_output, |(_, rest)| rest);
        let token = text
            .split_whitespace()
            .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
        // "16beta1" is 16, "15.20" is 15.20.
        let parts: Vec<u32> = token
            .split('.')
            .map_while(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        (!parts.is_empty()).then_some(Self(parts))
    }

    /// The major version as `PG_VERSION` records it: "15", or "9.6" before 10.
    fn major(&self) -> String {
        match self.0.as_slice() {
            [first, ..] if *first >= 10 => first.to_string(),
            [first, second, ..] => format!("{first}.{second}"),
            [first] => format!("{first}.0"),
            [] => String::new(),
        }
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

#[derive(Clone, Debug)]
struct Binaries {
    dir: PathBuf,
    version: PgVersion,
}

const SEARCHED: &str = "/usr/lib/postgresql/*/bin, `pg_config --bindir` and PATH";

/// Where server programs may be: Debian and Ubuntu install every major
/// version side by side under /usr/lib/postgresql and put none on PATH;
/// `pg_config` knows a source or vendor build's; PATH has Homebrew's and
/// Fedora's.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.flatten().map(|entry| entry.path().join("bin")));
    }
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success());
    if let Some(output) = pg_config {
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The directory really holding the programs (PATH often has symlinks to
/// them), when `initdb`, `pg_ctl` and `postgres` are all there.
fn resolve_bin_dir(dir: &Path) -> Option<PathBuf> {
    let initdb = fs::canonicalize(dir.join("initdb")).ok()?;
    let real_dir = initdb.parent()?.to_owned();
    let executable = |name: &str| {
        fs::metadata(real_dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    (executable("initdb") && executable("pg_ctl") && executable("postgres")).then_some(real_dir)
}

fn installed_binaries(candidates: Vec<PathBuf>) -> Vec<Binaries> {
    let mut found: Vec<Binaries> = Vec::new();
    for dir in candidates.iter().filter_map(|dir| resolve_bin_dir(dir)) {
        if found.iter().any(|b| b.dir == dir) {
            continue;
        }
        // `--version` is answered before the server's root check.
        let version = Command::new(dir.join("postgres"))
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| PgVersion::parse(&String::from_utf8_lossy(&output.stdout)));
        if let Some(version) = version {
            found.push(Binaries { dir, version });
        }
    }
    found
}

/// The newest installation, or the one matching an existing cluster's major
/// version (a cluster is only usable by the major version that created it).
fn choose_binaries(
    mut installed: Vec<Binaries>,
    required_major: Option<&str>,
    data_dir: &Path,
    searched: &str,
) -> Result<Binaries, DevDbError> {
    // Stable: among equal versions the earlier-searched place wins.
    installed.sort_by(|a, b| b.version.cmp(&a.version));
    match required_major {
        None => installed
            .into_iter()
            .next()
            .ok_or_else(|| DevDbError::BinariesNotFound {
                searched: searched.to_owned(),
            }),
        Some(major) => {
            if installed.is_empty() {
                return Err(DevDbError::BinariesNotFound {
                    searched: searched.to_owned(),
                });
            }
            let found = installed
                .iter()
                .map(|b| format!("{} ({})", b.version, b.dir.display()))
                .collect::<Vec<_>>()
                .join(", ");
            installed
                .into_iter()
                .find(|b| b.version.major() == major)
                .ok_or_else(|| DevDbError::VersionNotInstalled {
                    data_dir: data_dir.to_owned(),
                    major: major.to_owned(),
                    found,
                })
        }
    }
}

fn find_binaries(
    explicit: Option<&Path>,
    required_major: Option<&str>,
    data_dir: &Path,
) -> Result<Binaries, DevDbError> {
    let (candidates, searched) = match explicit {
        Some(dir) => (vec![dir.to_owned()], dir.display().to_string()),
        None => (candidate_dirs(), SEARCHED.to_owned()),
    };
    choose_binaries(
        installed_binaries(candidates),
        required_major,
        data_dir,
        &searched,
    )
}

#[derive(Clone, Debug)]
struct Server {
    bins: Binaries,
    run_as: RunAs,
    data_dir: PathBuf,
    timeout: Duration,
}

impl Server {
    fn log_file(&self) -> PathBuf {
        self.data_dir.join(SERVER_LOG)
    }

    fn command(&self, program: &str) -> Command {
        self.run_as.command(&self.bins.dir.join(program))
    }

    fn timeout_seconds(&self) -> String {
        self.timeout.as_secs().max(1).to_string()
    }

    fn output(&self, mut command: Command, program: &'static str) -> Result<Output, DevDbError> {
        command.output().map_err(|source| DevDbError::Io {
            action: "cannot run",
            path: self.bins.dir.join(program),
            source,
        })
    }

    fn initdb(&self) -> Result<(), DevDbError> {
        // C.UTF-8 gives lower() and case-insensitive usernames all of Unicode,
        // as on a packaged server here; plain C (ASCII only) is the fallback
        // for systems without it.
        let locales = ["C.UTF-8", "C"];
        for (index, locale) in locales.iter().enumerate() {
            let mut command = self.command("initdb");
            command
                .arg("--pgdata")
                .arg(&self.data_dir)
                .args(["--username", SUPERUSER])
                .args(["--auth-local=trust", "--auth-host=trust"])
                .args(["--encoding=UTF8", &format!("--locale={locale}")]);
            let output = self.output(command, "initdb")?;
            if output.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if stderr.contains("invalid locale") && index + 1 < locales.len() {
                continue;
            }
            return Err(DevDbError::InitDb {
                data_dir: self.data_dir.clone(),
                status: output.status.to_string(),
                hint: self.run_as.permission_hint(&stderr, &self.data_dir),
                stderr,
            });
        }
        unreachable!("the last locale returns")
    }

    fn open_users_lock(&self) -> Result<File, DevDbError> {
        let path = self.data_dir.join(USERS_LOCK);
        let io_error = |action| {
            let path = path.clone();
            move |source| DevDbError::Io {
                action,
                path,
                source,
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("cannot open"))?;
        // Everything in the data directory belongs to the server's account,
        // so that its own tools (pg_basebackup, say) can read it all.
        if let RunAs::SystemUser { uid, gid, .. } = self.run_as {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(io_error("cannot change the owner of"))?;
        }
        Ok(file)
    }

    fn is_running(&self) -> Result<bool, DevDbError> {
        let mut command = self.command("pg_ctl");
        command.arg("status").arg("--pgdata").arg(&self.data_dir);
        let output = self.output(command, "pg_ctl")?;
        // pg_ctl status: 0 running, 3 not running (a stale postmaster.pid
        // included), 4 no accessible data directory.
        match output.status.code() {
            Some(0) => Ok(!self.pid_file_names_a_zombie()),
            Some(3) => Ok(false),
            _ => Err(self.command_error("pg_ctl status", &output)),
        }
    }

    /// Whether `postmaster.pid` names a server that was killed but not yet
    /// reaped. pg_ctl and the postmaster take a zombie for a running server
    /// (`kill(pid, 0)` succeeds); it lasts until init reaps it, which can be
    /// seconds, or forever in a container whose first process never reaps.
    fn pid_file_names_a_zombie(&self) -> bool {
        lock_file_names_a_zombie(&self.data_dir.join("postmaster.pid"))
    }

    /// Removes the lock files (`postmaster.pid`, and the socket's
    /// `.s.PGSQL.<port>.lock` beside it) of a killed server that is still a
    /// zombie: the new postmaster would refuse to start beside them. A zombie
    /// holds nothing; server processes that outlived it still hold the
    /// shared memory, which the postmaster checks for itself.
    fn remove_zombie_lock_files(&self) {
        let socket_locks = fs::read_dir(&self.data_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|name| name.starts_with(".s.PGSQL.") && name.ends_with(".lock"))
            });
        for lock in std::iter::once(self.data_dir.join("postmaster.pid")).chain(socket_locks) {
            if lock_file_names_a_zombie(&lock) {
                tracing::info!(lock = %lock.display(), "removing a lock file of a killed server");
                let _ = fs::remove_file(&lock);
            }
        }
    }

    fn running_port(&self) -> Result<u16, DevDbError> {
        let path = self.data_dir.join("postmaster.pid");
        let text = fs::read_to_string(&path).map_err(|source| DevDbError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        pid_file_port(&text).ok_or_else(|| DevDbError::Io {
            action: "found no port in",
            path,
            source: io::Error::from(io::ErrorKind::InvalidData),
        })
    }

    fn rotate_log(&self) {
        let log = self.log_file();
        if fs::metadata(&log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let _ = fs::rename(&log, log.with_extension("log.1"));
        }
    }

    fn start(&self, preferred_port: u16) -> Result<u16, DevDbError> {
        let log = self.log_file();
        let port_error = |source| DevDbError::Io {
            action: "cannot find a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        };
        let mut port = choose_port(preferred_port).map_err(port_error)?;
        self.remove_zombie_lock_files();
        let mut attempt = 1;
        loop {
            let log_start = fs::metadata(&log).map_or(0, |m| m.len());
            let mut command = self.command("pg_ctl");
            command
                .arg("start")
                .arg("--pgdata")
                .arg(&self.data_dir)
                .arg("--log")
                .arg(&log)
                .args(["--wait", "--silent", "--timeout", &self.timeout_seconds()])
                .arg("-o")
                .arg(server_options(port, &self.data_dir));
            let output = self.output(command, "pg_ctl")?;
            if output.status.success() {
                return Ok(port);
            }
            let log_tail = read_log_tail(&log, log_start);
            match classify_start_failure(&log_tail) {
                StartFailure::PortTaken if attempt < START_ATTEMPTS => {
                    tracing::info!(port, "port taken meanwhile; starting on another one");
                    port = free_port().map_err(port_error)?;
                }
                // The previous server was killed and its processes are still
                // exiting (they notice within a second or so).
                StartFailure::PreviousServerExiting if attempt < START_ATTEMPTS => {
                    std::thread::sleep(Duration::from_secs(1));
                }
                _ => {
                    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
                    return Err(DevDbError::Start {
                        data_dir: self.data_dir.clone(),
                        hint: self
                            .run_as
                            .permission_hint(&format!("{stderr}\n{log_tail}"), &self.data_dir),
                        stderr,
                        log,
                        log_tail,
                    });
                }
            }
            attempt += 1;
        }
    }

    fn stop(&self) -> Result<(), DevDbError> {
        // Already stopped (by hand, or it crashed) is what we wanted; and
        // pg_ctl would wait for a zombie to obey its signal.
        if !self.is_running()? {
            return Ok(());
        }
        let mut command = self.command("pg_ctl");
        command
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.data_dir)
            .args(["--mode", "fast", "--wait", "--silent"])
            .args(["--timeout", &self.timeout_seconds()]);
        let output = self.output(command, "pg_ctl")?;
        if output.status.success() || !self.is_running()? {
            return Ok(());
        }
        Err(self.command_error("pg_ctl stop", &output))
    }

    fn command_error(&self, program: &'static str, output: &Output) -> DevDbError {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        DevDbError::Command {
            program,
            data_dir: self.data_dir.clone(),
            status: output.status.to_string(),
            stderr,
        }
    }
}

/// PostgreSQL's lock files start with the owner's process id.
fn lock_file_names_a_zombie(lock: &Path) -> bool {
    fs::read_to_string(lock)
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse().ok())
        .is_some_and(is_zombie)
}

#[cfg(target_os = "linux")]
fn is_zombie(pid: u32) -> bool {
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces and parentheses.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Elsewhere (macOS) launchd reaps at once, so zombies are not worth a check.
#[cfg(not(target_os = "linux"))]
fn is_zombie(_pid: u32) -> bool {
    false
}

/// The port in `postmaster.pid`, whose fourth line it is.
fn pid_file_port(text: &str) -> Option<u16> {
    text.lines().nth(3)?.trim().parse().ok()
}

fn choose_port(preferred: u16) -> io::Result<u16> {
    if preferred != 0 && TcpListener::bind((Ipv4Addr::LOCALHOST, preferred)).is_ok() {
        return Ok(preferred);
    }
    free_port()
}

/// A port free now; the server may still lose it to someone else before it
/// binds, which `Server::start` notices in the log and retries.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The postgres options `pg_ctl -o` passes on. pg_ctl hands them to
/// `/bin/sh`, so each is single-quoted; the socket directory is a
/// comma-separated list to PostgreSQL, so it is double-quoted inside.
fn server_options(port: u16, socket_dir: &Path) -> String {
    let socket_dir = socket_dir.to_string_lossy();
    // A socket path that does not fit in `sun_path` would stop the server
    // from starting; TCP alone serves the application.
    let sockets =
        if socket_dir.len() + "/.s.PGSQL.".len() + port.to_string().len() <= MAX_SOCKET_PATH {
            format!("\"{}\"", socket_dir.replace('"', "\"\""))
        } else {
            String::new()
        };
    [
        "-p".to_owned(),
        port.to_string(),
        "-c".to_owned(),
        "listen_addresses=127.0.0.1".to_owned(),
        "-c".to_owned(),
        format!("unix_socket_directories={sockets}"),
    ]
    .iter()
    .map(|option| shell_quote(option))
    .collect::<Vec<_>>()
    .join(" ")
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The last lines the server logged since `from` (its size before this start).
fn read_log_tail(log: &Path, from: u64) -> String {
    let Ok(mut file) = File::open(log) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let from = if from > length { 0 } else { from };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[derive(Debug, PartialEq, Eq)]
enum StartFailure {
    PortTaken,
    PreviousServerExiting,
    Other,
}

fn classify_start_failure(log_tail: &str) -> StartFailure {
    if log_tail.contains("could not create any TCP/IP sockets")
        || log_tail.contains("Address already in use")
    {
        StartFailure::PortTaken
    } else if log_tail.contains("pre-existing shared memory block")
        || (log_tail.contains("lock file \"") && log_tail.contains("\" already exists"))
    {
        StartFailure::PreviousServerExiting
    } else {
        StartFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_postgres_prints_them() {
        let debian = PgVersion::parse("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n");
        assert_eq!(debian, Some(PgVersion(vec![15, 20])));
        assert_eq!(debian.unwrap().major(), "15");
        let old = PgVersion::parse("postgres (PostgreSQL) 9.6.24").unwrap();
        assert_eq!(old.major(), "9.6");
        assert_eq!(
            PgVersion::parse("postgres (PostgreSQL) 17beta2"),
            Some(PgVersion(vec![17]))
        );
        assert_eq!(PgVersion::parse("postgres: command not found"), None);
    }

    #[test]
    fn versions_order_numerically() {
        let mut versions = [
            PgVersion(vec![9, 6, 24]),
            PgVersion(vec![16, 1]),
            PgVersion(vec![15, 20]),
        ];
        versions.sort();
        assert_eq!(versions.last().unwrap().major(), "16");
        assert_eq!(versions.first().unwrap().major(), "9.6");
    }

    fn installed(versions: &[(&str, &[u32])]) -> Vec<Binaries> {
        versions
            .iter()
            .map(|(dir, version)| Binaries {
                dir: PathBuf::from(dir),
                version: PgVersion(version.to_vec()),
            })
            .collect()
    }

    #[test]
    fn the_newest_installation_is_chosen_for_a_new_cluster() {
        let chosen = choose_binaries(
            installed(&[
                ("/pg/13", &[13, 9]),
                ("/pg/16", &[16, 2]),
                ("/pg/15", &[15, 7]),
            ]),
            None,
            Path::new(".pgdata"),
            "here",
        )
        .unwrap();
        assert_eq!(chosen.dir, Path::new("/pg/16"));
    }

    #[test]
    fn an_existing_cluster_gets_its_own_major_version() {
        let chosen = choose_binaries(
            installed(&[("/pg/16", &[16, 2]), ("/pg/15", &[15, 7])]),
            Some("15"),
            Path::new(".pgdata"),
            "here",
        )
        .unwrap();
        assert_eq!(chosen.dir, Path::new("/pg/15"));

        let error = choose_binaries(
            installed(&[("/pg/16", &[16, 2])]),
            Some("14"),
            Path::new("/p/.pgdata"),
            "here",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("holds a PostgreSQL 14 cluster"), "{error}");
        assert!(error.contains("apt-get install postgresql-14"), "{error}");
        assert!(error.contains("16.2 (/pg/16)"), "{error}");
    }

    #[test]
    fn no_installation_names_the_package_to_install() {
        let error = choose_binaries(Vec::new(), None, Path::new(".pgdata"), SEARCHED)
            .unwrap_err()
            .to_string();
        assert!(error.contains("apt-get install postgresql"), "{error}");
        assert!(error.contains("/usr/lib/postgresql/*/bin"), "{error}");
    }

    #[test]
    fn a_directory_without_the_server_programs_is_not_an_installation() {
        let error = find_binaries(
            Some(Path::new("/nonexistent/bin")),
            None,
            Path::new(".pgdata"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("/nonexistent/bin"), "{error}");
        assert!(error.contains("apt-get install postgresql"), "{error}");
    }

    #[test]
    fn the_installed_postgresql_is_found() {
        // Every machine that runs this project's tests has PostgreSQL.
        let found = find_binaries(None, None, Path::new(".pgdata")).unwrap();
        for program in ["initdb", "pg_ctl", "postgres"] {
            assert!(found.dir.join(program).is_file(), "{}", found.dir.display());
        }
        assert!(found.version >= PgVersion(vec![10]), "{}", found.version);
    }

    #[test]
    fn server_options_survive_the_shell_and_postgres_list_parsing() {
        let options = server_options(5433, Path::new("/home/a b/it's/.pgdata"));
        assert_eq!(
            options,
            r#"'-p' '5433' '-c' 'listen_addresses=127.0.0.1' '-c' 'unix_socket_directories="/home/a b/it'\''s/.pgdata"'"#
        );
    }

    #[test]
    fn a_socket_path_too_long_for_sun_path_is_left_out() {
        let long = PathBuf::from(format!("/{}/.pgdata", "d".repeat(90)));
        let options = server_options(5433, &long);
        assert!(options.ends_with("'unix_socket_directories='"), "{options}");
    }

    #[test]
    fn paths_that_pg_ctl_cannot_quote_are_refused() {
        assert!(check_path_for_shell(Path::new("/home/a b/it's/.pgdata")).is_ok());
        for bad in ["/a\"b", "/a$b", "/a`b", "/a\\b"] {
            let error = check_path_for_shell(Path::new(bad)).unwrap_err();
            assert!(matches!(error, DevDbError::UnsupportedPath { .. }), "{bad}");
        }
    }

    #[test]
    fn the_port_is_read_from_postmaster_pid() {
        let pid_file = "29350\n/x/.pgdata\n1795760947\n5499\n/x/.pgdata\n127.0.0.1\n  10387574         9\nready   \n";
        assert_eq!(pid_file_port(pid_file), Some(5499));
        assert_eq!(pid_file_port("29350\n/x\n"), None);
    }

    #[test]
    fn a_taken_preferred_port_is_replaced_by_a_free_one() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let chosen = choose_port(taken_port).unwrap();
        assert_ne!(chosen, taken_port);
        drop(taken);
        assert_eq!(choose_port(taken_port).unwrap(), taken_port);
    }

    #[test]
    fn start_failures_are_told_apart_by_the_log() {
        let port_taken = "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                          FATAL:  could not create any TCP/IP sockets";
        assert_eq!(classify_start_failure(port_taken), StartFailure::PortTaken);
        let exiting =
            "FATAL:  pre-existing shared memory block (key 5432001, ID 3) is still in use";
        assert_eq!(
            classify_start_failure(exiting),
            StartFailure::PreviousServerExiting
        );
        let socket_lock = "FATAL:  lock file \"/p/.pgdata/.s.PGSQL.5433.lock\" already exists";
        assert_eq!(
            classify_start_failure(socket_lock),
            StartFailure::PreviousServerExiting
        );
        assert_eq!(
            classify_start_failure("FATAL:  data directory has invalid permissions"),
            StartFailure::Other
        );
    }

    #[test]
    fn urls_name_the_superuser_port_and_database() {
        assert_eq!(
            database_url(5433, "customer_api"),
            "postgres://postgres@127.0.0.1:5433/customer_api"
        );
        assert_eq!(
            database_url(1, "a b"),
            "postgres://postgres@127.0.0.1:1/a%20b"
        );
    }

    #[test]
    fn the_log_tail_starts_at_this_start() {
        let dir = std::env::temp_dir().join(format!("devdb-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        fs::write(&log, "old run\n").unwrap();
        let from = fs::metadata(&log).unwrap().len();
        fs::write(&log, "old run\nnew line 1\nnew line 2\n").unwrap();
        assert_eq!(read_log_tail(&log, from), "new line 1\nnew line 2");
        // A log rotated meanwhile is read from its start.
        assert_eq!(
            read_log_tail(&log, 10_000),
            "old run\nnew line 1\nnew line 2"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_unreaped_child_is_a_zombie() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!is_zombie(child.id()));
        child.kill().unwrap();
        // Not waited for yet: exited but unreaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_zombie(child.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_zombie(child.id()));
        child.wait().unwrap();
        assert!(!is_zombie(child.id()), "reaped: gone");
    }

    #[test]
    fn root_finds_the_postgres_account() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        match RunAs::detect().unwrap() {
            RunAs::SystemUser { uid, .. } => assert_ne!(uid, 0),
            other => panic!("root must not run PostgreSQL itself: {other:?}"),
        }
        assert!(lookup_user("no-such-user-here").unwrap().is_none());
    }
}
