//! The handle the binary holds: opening the cluster step by step under the
//! startup lock, and stopping the server when the last process using it
//! stops.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;

use crate::account::RunAs;
use crate::binaries::find_binaries;
use crate::data_dir::{check_path_for_shell, is_empty_dir, prepare_data_dir, read_pg_version};
use crate::error::DevDbError;
use crate::server::{SUPERUSER, Server};
use crate::{lock, probe};

/// Name of the cluster's directory inside the project directory.
pub const DATA_DIR_NAME: &str = ".pgdata";

/// Port tried first: the one after PostgreSQL's default (5432, where
/// customer-api looks for a server before it asks for this one), as a second
/// cluster on Debian gets. A stable port lets `psql -p 5433` find it between
/// runs.
pub const DEFAULT_PREFERRED_PORT: u16 = 5433;

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
    /// server creates its database itself (customer-api's
    /// `db::create_database_if_missing`).
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

/// Starts (or joins) the development cluster in `<project_dir>/.pgdata`, with
/// the default options. See [`DevCluster::start`].
pub async fn private_cluster(project_dir: &Path) -> Result<DevCluster, DevDbError> {
    DevCluster::start(project_dir, DevClusterOptions::default()).await
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
    users_lock: Option<Flock<File>>,
    /// The exclusive startup lock, held until the server answers.
    startup_lock: Option<Flock<File>>,
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
        if let Err(last_error) =
            probe::wait_until_accepting(&cluster.url_for("postgres"), timeout).await
        {
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
        let _startup = lock::lock_directory(data_dir, Instant::now() + self.server.timeout)?;
        let last_user = lock::is_last_user(&users).map_err(|source| DevDbError::Io {
            action: "cannot lock",
            path: data_dir.join(lock::USERS_LOCK),
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
    let startup_lock = lock::lock_directory(&data_dir, deadline)?;
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

    let users_lock = lock::join_users(&server.data_dir, &server.run_as, deadline)?;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
