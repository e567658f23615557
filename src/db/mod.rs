//! The database: connection pool, embedded migrations, and a statement counter
//! that lets tests and benchmarks see how many SQL statements a request costs.

pub mod coalesce;
pub mod login_limits;
pub mod models;
pub mod replicas;
pub mod schema;
pub mod shared_count;

use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult, error_chain};
pub use crate::metrics::StatementCounter;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type DbPool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
pub type DbConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

impl From<PoolError> for AppError {
    fn from(error: PoolError) -> Self {
        Self::Unavailable(error.into())
    }
}

struct CountingInstrumentation {
    counter: StatementCounter,
    /// The span of the statement under way, with traces on.
    statement: Option<tracing::Span>,
}

impl CountingInstrumentation {
    fn new(counter: StatementCounter) -> Self {
        Self {
            counter,
            statement: None,
        }
    }
}

impl Instrumentation for CountingInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                self.counter.increment();
                let traced = crate::telemetry::traces::enabled();
                if traced || tracing::enabled!(target: "customer_api::sql", tracing::Level::TRACE) {
                    // Bind values may be password hashes: the SQL text only.
                    let text = query.to_string();
                    let sql = text.split(" -- binds: ").next().unwrap_or_default();
                    tracing::trace!(target: "customer_api::sql", sql, "statement");
                    // The server never pipelines statements on one
                    // connection, so a span still open here is that of a
                    // statement whose future was dropped: it ends now.
                    self.statement = traced.then(|| crate::telemetry::traces::sql_span(sql));
                }
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some(span) = self.statement.take()
                    && error.is_some()
                {
                    crate::telemetry::traces::sql_failed(&span);
                }
            }
            _ => {}
        }
    }
}

/// The most statements, COMMIT included, that any transaction of the
/// server runs after the one that stamps a listed row's `tm_create` begins
/// (creating an access key: lock the customer, count its keys, insert, commit).
pub const MAX_STATEMENTS_PER_WRITE: u32 = 4;

/// How late a row can become visible after its `tm_create` (the start of its
/// transaction): each statement and each pause before it is cut at the
/// statement timeout, and a cut transaction rolls back. Pollers of a
/// newest-first listing re-read this far back (see README, "Design notes").
pub fn max_commit_lag(statement_timeout: Duration) -> Duration {
    statement_timeout * 2 * MAX_STATEMENTS_PER_WRITE
}

pub struct PoolSettings {
    pub max_size: usize,
    pub timeout: Duration,
    pub statement_timeout: Duration,
}

/// Builds the pool. Connections are opened lazily, so this succeeds even while
/// the database is down. Every new connection gets a `statement_timeout`,
/// and the same bound on pauses inside a transaction: PostgreSQL then ends
/// every transaction of the server within `MAX_STATEMENTS_PER_WRITE` times
/// twice that, whatever happens to the process, which is what bounds how
/// late a row can commit after its `tm_create` (see `max_commit_lag`).
pub fn build_pool(
    database_url: &str,
    settings: &PoolSettings,
    counter: StatementCounter,
) -> AppResult<DbPool> {
    let statement_timeout_ms = settings.statement_timeout.as_millis();
    let mut manager_config = ManagerConfig::default();
    // The default (`Verified`) sends a `SELECT 1` on every checkout, doubling
    // the statements of a request; a broken connection is instead detected
    // by the error of its first real statement, and then discarded.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let counter = counter.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.set_instrumentation(CountingInstrumentation::new(counter));
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; \
                 SET idle_in_transaction_session_timeout = {statement_timeout_ms}"
            ))
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        database_url,
        manager_config,
    );
    DbPool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(AppError::internal)
}

/// Applies pending migrations. Diesel's migration harness is synchronous, so it
/// runs on the blocking pool over its own connection. Processes that may start
/// together on one database hold a [`StartupLock`] around it: diesel's
/// migrations do not serialise themselves.
pub async fn run_migrations(database_url: &str) -> AppResult<()> {
    let url = database_url.to_owned();
    let target = Target::parse(database_url)?;
    tokio::task::spawn_blocking(move || -> AppResult<()> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(|e| {
                    AppError::internal(format!("migration failed: cannot connect to {target}: {e}"))
                })?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| AppError::internal(format!("migration failed: {}", error_chain(&*e))))?;
        for version in applied {
            tracing::info!(%version, "applied migration");
        }
        Ok(())
    })
    .await
    .map_err(AppError::internal)?
}

/// Reverts the most recently applied migration (`customer-api migrate --revert`).
pub async fn revert_last_migration(database_url: &str) -> AppResult<String> {
    let url = database_url.to_owned();
    let target = Target::parse(database_url)?;
    tokio::task::spawn_blocking(move || -> AppResult<String> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(|e| {
                    AppError::internal(format!(
                        "reverting the last migration failed: cannot connect to {target}: {e}"
                    ))
                })?;
        let version = conn.revert_last_migration(MIGRATIONS).map_err(|e| {
            AppError::internal(format!(
                "reverting the last migration failed: {}",
                error_chain(&*e)
            ))
        })?;
        Ok(version.to_string())
    })
    .await
    .map_err(AppError::internal)?
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub async fn migrations_applied(conn: &mut AsyncPgConnection) -> AppResult<bool> {
    use diesel::migration::MigrationSource;
    use diesel::sql_types::Text;

    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let applied: Vec<Version> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .await?;
    let wanted =
        MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).map_err(AppError::Internal)?;
    Ok(wanted.iter().all(|m| {
        applied
            .iter()
            .any(|a| a.version == m.name().version().to_string())
    }))
}

/// Where a database URL points, for messages: host, port and database name,
/// never the user's password.
struct Target {
    config: tokio_postgres::Config,
}

impl Target {
    fn parse(database_url: &str) -> AppResult<Self> {
        let config = database_url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| {
                // The parser's message names the faulty part, never the whole URL.
                AppError::internal(format!(
                    "DATABASE_URL is not a PostgreSQL connection URL: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(Self { config })
    }

    /// The database's name; PostgreSQL defaults it to the user's name.
    fn database(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
    }

    async fn connect(&self, config: &tokio_postgres::Config) -> AppResult<tokio_postgres::Client> {
        Self::connect_raw(config)
            .await
            .map_err(|e| self.connect_failure(config, &e))
    }

    async fn connect_raw(
        config: &tokio_postgres::Config,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        // Runs until the client is dropped, which ends the session.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error_chain(&error), "start-up connection ended");
            }
        });
        Ok(client)
    }

    fn connect_failure(
        &self,
        config: &tokio_postgres::Config,
        error: &tokio_postgres::Error,
    ) -> AppError {
        let at = Self::describe(config, self.database_of(config));
        if let Some(db) = error.as_db_error() {
            return AppError::internal(format!(
                "cannot connect to PostgreSQL at {at}: {}",
                db.message()
            ));
        }
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                let reason = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                    std::io::ErrorKind::TimedOut => "connection timed out".to_owned(),
                    std::io::ErrorKind::NotFound => "no such server socket".to_owned(),
                    _ => io.to_string(),
                };
                return AppError::internal(format!("cannot reach PostgreSQL at {at}: {reason}"));
            }
            source = cause.source();
        }
        AppError::internal(format!(
            "cannot reach PostgreSQL at {at}: {}",
            error_chain(error)
        ))
    }

    fn database_of<'a>(&'a self, config: &'a tokio_postgres::Config) -> &'a str {
        config.get_dbname().unwrap_or_else(|| self.database())
    }

    fn describe(config: &tokio_postgres::Config, database: &str) -> String {
        use tokio_postgres::config::Host;
        let ports = config.get_ports();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                    Host::Tcp(name) => format!("{name}:{port}"),
                    #[cfg(unix)]
                    Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
                }
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "the default host".to_owned()
        } else {
            hosts.join(",")
        };
        format!("{hosts} (database {database})")
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Self::describe(&self.config, self.database()))
    }
}

/// Start-up lock key in the database being started (advisory locks are per
/// database, so one fixed key serves every database).
const STARTUP_LOCK_KEY: i64 = 0x5645_4950_6269_6e02;

/// Serialises what processes do before serving — migrations and the super
/// admin's bootstrap — across every process starting on one database: a
/// session-level `pg_advisory_lock` on a connection of its own, held until
/// [`StartupLock::release`] or drop (which ends the session, and so the lock,
/// also when start-up fails half-way).
pub struct StartupLock {
    client: Option<tokio_postgres::Client>,
}

impl StartupLock {
    /// Connects to the database in `database_url` and waits for its start-up
    /// lock. The database must exist (see [`create_database_if_missing`]).
    pub async fn acquire(database_url: &str) -> AppResult<Self> {
        let target = Target::parse(database_url)?;
        let client = target.connect(&target.config).await?;
        lock(&client, &target, STARTUP_LOCK_KEY, "start-up").await?;
        Ok(Self {
            client: Some(client),
        })
    }

    /// Releases the lock now rather than when the session's end reaches the server.
    pub async fn release(mut self) {
        if let Some(client) = self.client.take() {
            let client = &client; // tokio_postgres's `execute`, not diesel's
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&STARTUP_LOCK_KEY])
                .await;
        }
    }
}

/// Takes the session-level advisory lock `key`, saying so when another
/// process holds it. Waits as long as that process takes: a migration may be slow.
async fn lock(
    client: &tokio_postgres::Client,
    target: &Target,
    key: i64,
    what: &str,
) -> AppResult<()> {
    let failed = |e: tokio_postgres::Error| {
        AppError::internal(format!(
            "cannot take the {what} lock on {target}: {}",
            error_chain(&e)
        ))
    };
    // A server-wide statement_timeout must not cut the wait short.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .map_err(failed)?;
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .map_err(failed)?
        .get(0);
    if !got {
        tracing::info!(
            database = target.database(),
            "waiting for another process to finish its {what} step"
        );
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Creates the database named in `database_url` when it does not exist yet.
/// Processes doing so at the same moment take turns under an advisory lock
/// in the server's `postgres` maintenance database (the only place to take
/// one before the database exists), keyed by the database's name.
pub async fn create_database_if_missing(database_url: &str) -> AppResult<()> {
    let target = Target::parse(database_url)?;
    // The usual case: it exists, and the maintenance database is not needed.
    match Target::connect_raw(&target.config).await {
        Ok(_) => return Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {}
        Err(e) => return Err(target.connect_failure(&target.config, &e)),
    }
    let name = target.database().to_owned();
    let mut maintenance = target.config.clone();
    maintenance.dbname("postgres");
    let conn = target.connect(&maintenance).await?;
    let key = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("customer-api create database {name}"));
        i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
    };
    lock(&conn, &target, key, "create-database").await?;
    let exists = conn
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| {
            AppError::internal(format!(
                "cannot look for database {name}: {}",
                error_chain(&e)
            ))
        })?
        .is_some();
    if exists {
        return Ok(());
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match conn
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
        // Created meanwhile by a process that does not take the lock (an
        // older version, or by hand): reported as 42P04, or as a unique
        // violation of the catalog when both inserted their row at once.
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                || e.as_db_error().is_some_and(|db| {
                    db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                        && db.constraint() == Some("pg_database_datname_index")
                }) =>
        {
            Ok(())
        }
        Err(e) => Err(AppError::internal(format!(
            "cannot create database {name} on {target}: {}",
            e.as_db_error()
                .map_or_else(|| error_chain(&e), |db| db.message().to_owned())
        ))),
    }
}

/// How many server processes are listening for credential changes on this
/// database (their listener connections, named in `pg_stat_activity`).
pub async fn listening_servers(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    use diesel::sql_types::{BigInt, Text};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        listeners: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS listeners FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind::<Text, _>(crate::auth::cache::LISTENER_APPLICATION_NAME)
    .get_result(conn)
    .await?;
    Ok(usize::try_from(count.listeners).unwrap_or(0))
}
