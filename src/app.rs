//! Shared application state: configuration, database pool, hasher, token signer.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{PasswordHasher, TokenSigner};
use crate::config::{Config, Secret};
use crate::db::{self, DbConn, DbPool, PoolSettings, StatementCounter};
use crate::error::AppResult;

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub pool: DbPool,
    pub hasher: PasswordHasher,
    pub tokens: TokenSigner,
    /// SQL statements sent by this process, for tests and benchmarks.
    pub statements: StatementCounter,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Creates the database if needed, migrates it, builds the pool and makes
    /// sure a super admin exists.
    pub async fn start(config: Config) -> AppResult<Self> {
        let url = config.database_url.expose().to_owned();
        db::create_database_if_missing(&url).await?;
        db::run_migrations(&url).await?;

        let timeout = Duration::from_millis(config.db_pool_timeout_ms);
        let statements = StatementCounter::default();
        let pool = db::build_pool(
            &url,
            &PoolSettings {
                max_size: config.db_pool_size,
                timeout,
                statement_timeout: Duration::from_millis(config.db_statement_timeout_ms),
            },
            statements.clone(),
        )?;

        let secret = config.token_secret.clone().unwrap_or_else(|| {
            tracing::warn!(
                "TOKEN_SECRET is not set: signing tokens with a random key, so they end with this process \
                 and are not accepted by other replicas"
            );
            let bytes: [u8; 32] = rand::random();
            Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        });
        let tokens = TokenSigner::new(&secret, config.token_ttl_seconds);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let state = Self(Arc::new(AppInner {
            config,
            pool,
            hasher: PasswordHasher::new(cores),
            tokens,
            statements,
        }));
        crate::service::bootstrap::ensure_super_admin(&state).await?;
        Ok(state)
    }

    pub async fn conn(&self) -> AppResult<DbConn> {
        Ok(self.pool.get().await?)
    }
}
