//! The database: connection pool, embedded migrations, and a statement counter
//! that lets tests and benchmarks see how many SQL statements a request costs.

pub mod models;
pub mod schema;

use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type DbPool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
pub type DbConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// Counts the SQL statements sent over every connection of one pool; it is
/// also exported as the `customer_api_db_statements_total` metric.
#[derive(Clone, Debug, Default)]
pub struct StatementCounter(prometheus_client::metrics::counter::Counter);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    pub fn as_metric(&self) -> prometheus_client::metrics::counter::Counter {
        self.0.clone()
    }
}

struct CountingInstrumentation(StatementCounter);

impl Instrumentation for CountingInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            self.0.0.inc();
            if tracing::enabled!(target: "customer_api::sql", tracing::Level::TRACE) {
                // Bind values may be password hashes: log the SQL text only.
                let text = query.to_string();
                let sql = text.split(" -- binds: ").next().unwrap_or_default();
                tracing::trace!(target: "customer_api::sql", sql, "statement");
            }
        }
    }
}

pub struct PoolSettings {
    pub max_size: usize,
    pub timeout: Duration,
    pub statement_timeout: Duration,
}

/// Builds the pool. Connections are opened lazily, so this succeeds even while
/// the database is down; every new connection gets a `statement_timeout`.
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
            conn.set_instrumentation(CountingInstrumentation(counter));
            conn.batch_execute(&format!("SET statement_timeout = {statement_timeout_ms}"))
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
/// runs on the blocking pool over its own connection.
pub async fn run_migrations(database_url: &str) -> AppResult<()> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || -> AppResult<()> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(AppError::internal)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(AppError::Internal)?;
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
    tokio::task::spawn_blocking(move || -> AppResult<String> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(AppError::internal)?;
        let version = conn
            .revert_last_migration(MIGRATIONS)
            .map_err(AppError::Internal)?;
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

/// Creates the database named in `database_url` when it does not exist yet, by
/// connecting to the server's `postgres` maintenance database.
pub async fn create_database_if_missing(database_url: &str) -> AppResult<()> {
    let mut url = url::Url::parse(database_url).map_err(AppError::internal)?;
    let name = url.path().trim_start_matches('/').to_owned();
    if name.is_empty() || name == "postgres" {
        return Ok(());
    }
    url.set_path("/postgres");
    let mut conn = AsyncPgConnection::establish(url.as_str())
        .await
        .map_err(AppError::internal)?;

    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await?;
    if found.exists {
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
        // Another process created it between our check and our CREATE.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
