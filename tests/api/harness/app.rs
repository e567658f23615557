//! The application under test: started in this process on a database of its
//! own, served on port 0, with replicas sharing that database.

use std::sync::Arc;

use customer_api::config::{FastPathMode, Secret};
use customer_api::{AppState, Config};
use tokio::sync::oneshot;

use super::db::TestDb;
use super::logs::init_log_capture;
use super::proxy::Proxy;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";

/// Where each server's credential listener acknowledges a change it has
/// applied to its cache, as `<listener id>|<table>:<row id>` (see
/// `src/auth/cache.rs`).
const CREDENTIAL_ACK_CHANNEL: &str = "credential_change_acks";

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    /// Shared by replicas; dropped (with the database) by the last of them.
    pub db: Arc<TestDb>,
    pub(super) client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        init_log_capture();
        let db = TestDb::create().await;
        let mut config = Config::with_database_url(db.url());
        config.admin_username = ADMIN_USERNAME.into();
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.token_secret = Some(Secret::new(format!("test-secret-{}", uuid::Uuid::new_v4())));
        config.db_pool_size = 8;
        // Tests give customers webhook URIs on hosts outside this machine,
        // which must never be contacted; the webhook tests turn it on, with
        // receivers of their own on 127.0.0.1.
        config.webhook_delivery = false;
        // Every query of the suite runs both ways; see `Drop`.
        config.graphql_fast_path = FastPathMode::Verify;
        adjust(&mut config);
        Self::start(Arc::new(db), config).await
    }

    /// A second server process on the same database with the same settings,
    /// as another replica behind a load balancer would be.
    pub async fn replica(&self) -> Self {
        Self::start(self.db.clone(), self.state.config.clone()).await
    }

    /// Like `replica`, with settings of its own.
    pub async fn replica_with(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.state.config.clone();
        adjust(&mut config);
        Self::start(self.db.clone(), config).await
    }

    async fn start(db: Arc<TestDb>, config: Config) -> Self {
        let state = customer_api::startup::start(config)
            .await
            .expect("start the application");
        let listener = customer_api::http::server::listen(([127, 0, 0, 1], 0).into()).unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = tokio::spawn(customer_api::serve(listener, state.clone(), async {
            let _ = stop.await;
        }));
        Self {
            address,
            state,
            db,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            serving: Some(serving),
        }
    }

    /// Signals shutdown, as SIGTERM does, and waits until the server has stopped.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.serving.take() {
            Some(serving) => serving.await.expect("the server task does not panic"),
            None => Ok(()),
        }
    }

    /// Like `spawn_with`, but the application reaches PostgreSQL through `proxy`.
    pub async fn spawn_through(proxy: &Proxy, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with(move |config| {
            config.database_url = proxy.route(&config.database_url);
            adjust(config);
        })
        .await
    }

    /// Like `replica`, but the new replica reaches PostgreSQL through `proxy`.
    pub async fn replica_through(&self, proxy: &Proxy) -> Self {
        let mut config = self.state.config.clone();
        config.database_url = proxy.route(&config.database_url);
        Self::start(self.db.clone(), config).await
    }

    /// SQL statements this process has sent so far.
    pub fn statements(&self) -> u64 {
        self.state.statements.get()
    }

    /// `sql_count` on a connection of its own to this app's database.
    pub async fn count(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> i64 {
        super::db::sql_count(&self.db.client().await, sql, params).await
    }

    /// The stored password hash of an agent.
    pub async fn password_hash(&self, agent_id: &str) -> String {
        self.db
            .client()
            .await
            .query_one(
                "SELECT password_hash FROM agents WHERE id = $1::text::uuid",
                &[&agent_id],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Runs `sql` on a direct connection, as an operator in psql would, then
    /// waits until every server process listening on the database (this one,
    /// its replicas) has acknowledged dropping its credential cache for each
    /// row changed. `sql` changes rows of `table` and returns their ids
    /// (`... RETURNING id::text`); they are returned. Fails the test if the
    /// acknowledgements take longer than 5 s (they take milliseconds).
    pub async fn change_credentials_in_sql(
        &self,
        table: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<String> {
        let (client, mut notes) = self.db.listener(&[CREDENTIAL_ACK_CHANNEL]).await;
        let listeners: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                &[&customer_api::auth::cache::LISTENER_APPLICATION_NAME],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            listeners > 0,
            "no server is listening for credential changes"
        );
        let ids = super::db::sql_column(&client, sql, params).await;
        let started = std::time::Instant::now();
        let mut pending: std::collections::HashMap<String, std::collections::HashSet<String>> = ids
            .iter()
            .map(|id| (format!("{table}:{id}"), Default::default()))
            .collect();
        let limit = std::time::Duration::from_secs(5);
        while pending
            .values()
            .any(|acked| (acked.len() as i64) < listeners)
        {
            let note = tokio::time::timeout(limit.saturating_sub(started.elapsed()), notes.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{listeners} listeners did not all acknowledge {pending:?} within {limit:?}"
                    )
                })
                .expect("the listening connection stays up");
            if let Some((listener, payload)) = note.1.split_once('|') {
                if let Some(acked) = pending.get_mut(payload) {
                    acked.insert(listener.to_owned());
                }
            }
        }
        println!(
            "{} change(s) to {table} reached {listeners} cache(s) in {:?}",
            ids.len(),
            started.elapsed()
        );
        ids
    }
}

/// For tests that count SQL statements: the fast path on, as in
/// production, rather than `verify`, which runs a query both ways and so
/// sends its statements twice.
pub fn as_in_production(config: &mut Config) {
    config.graphql_fast_path = FastPathMode::On;
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Under `verify`, a query the fast path answered differently from
        // async-graphql is counted (and logged at ERROR, with the operation).
        let mismatches = self.state.metrics.fast_path_mismatches();
        if mismatches > 0 && !std::thread::panicking() {
            panic!(
                "the fast path answered {mismatches} operation(s) differently from async-graphql"
            );
        }
    }
}

/// The value of the first metric line of `app` that starts with `line_start`
/// (name and labels), or 0 when there is none.
pub fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app.state.metrics.render(&app.state.pool.status());
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}
