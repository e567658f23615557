use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why the development cluster could not be had; each message says what to
/// install, remove or set instead.
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
