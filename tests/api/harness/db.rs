//! A database of its own for every test, cloned from a template that has
//! every migration applied.

use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

pub(super) fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&url).expect("DATABASE_URL is a URL");
    url.set_path("");
    url.to_string().trim_end_matches('/').to_owned()
}

fn database_url(name: &str) -> String {
    format!("{}/{name}", server_url())
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url("postgres"), NoTls)
        .await
        .expect("connect to the PostgreSQL server");
    tokio::spawn(connection);
    client
}

/// A name for the template that changes whenever a migration does.
fn template_name() -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut entries: Vec<_> = walk(std::path::Path::new(dir));
    entries.sort();
    for path in entries {
        path.hash(&mut hasher);
        std::fs::read(&path)
            .expect("read migration")
            .hash(&mut hasher);
    }
    format!("customer_api_template_{:016x}", hasher.finish())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read migrations dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

/// Creates (once per server, under an advisory lock so that concurrent test
/// processes agree) a database with every migration applied.
async fn ensure_template() -> String {
    let name = template_name();
    let client = admin_client().await;
    client
        .execute("SELECT pg_advisory_lock(727274)", &[])
        .await
        .unwrap();
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    if !exists {
        let building = format!("{name}_building");
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .unwrap();
        customer_api::db::run_migrations(&database_url(&building))
            .await
            .expect("migrate the template");
        client
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
            .await
            .unwrap();
        // Templates of older migration sets are of no further use.
        let stale = client
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'customer_api_template_%' AND datname <> $1",
                &[&name],
            )
            .await
            .unwrap();
        for row in stale {
            let stale: String = row.get(0);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {stale} WITH (FORCE)"))
                .await;
        }
    }
    client
        .execute("SELECT pg_advisory_unlock(727274)", &[])
        .await
        .unwrap();
    name
}

/// A database of its own for one test, dropped when the test ends (even by panic).
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let template = ensure_template().await;
        let name = format!("customer_api_test_{}", uuid::Uuid::new_v4().simple());
        let client = admin_client().await;
        // CREATE DATABASE ... TEMPLATE fails while anyone else is connected to
        // the template, e.g. a parallel test cloning it at the same moment.
        let mut attempt = 0;
        loop {
            match client
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
            {
                Ok(()) => break,
                Err(e)
                    if attempt < 50 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => panic!("create test database: {e}"),
            }
        }
        Self { name }
    }

    pub fn url(&self) -> String {
        database_url(&self.name)
    }

    /// A direct connection for seeding and inspecting rows.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A direct connection that LISTENs on `channels`; the notifications it
    /// hears arrive on the receiver as `(channel, payload)`.
    pub async fn listener(
        &self,
        channels: &[&str],
    ) -> (
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    ) {
        use futures_util::StreamExt;
        let (client, mut connection) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        let (heard, notes) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(note) = message {
                    let note = (note.channel().to_owned(), note.payload().to_owned());
                    if heard.send(note).is_err() {
                        break;
                    }
                }
            }
        });
        for channel in channels {
            client
                .batch_execute(&format!("LISTEN {channel}"))
                .await
                .unwrap();
        }
        (client, notes)
    }

    /// The versions of the migrations applied to this database, oldest first.
    pub async fn applied_versions(&self) -> Vec<String> {
        sql_column(
            &self.client().await,
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime's async context (or while unwinding),
        // so the cleanup gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = admin_client().await;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// The single `bigint` that `sql` (a `SELECT count(*) ...`) returns.
pub async fn sql_count(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> i64 {
    client
        .query_one(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The first column of every row `sql` returns, as text, in its order.
pub async fn sql_column(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Vec<String> {
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Inserts a customer `{prefix}{n}` for each n in `numbers`, three to a
/// `tm_create`: `base` plus `n / 3` times `step` (an interval), so that the
/// id tie-break decides the order within each group.
pub async fn insert_customers(
    client: &tokio_postgres::Client,
    prefix: &str,
    numbers: std::ops::RangeInclusive<i32>,
    base: &str,
    step: &str,
) {
    client
        .execute(
            "INSERT INTO customers (id, username, tm_create)
             SELECT gen_random_uuid(), $1::text || n::text,
                    $2::text::timestamptz + (n / 3) * $3::text::interval
             FROM generate_series($4::int, $5::int) AS n",
            &[&prefix, &base, &step, numbers.start(), numbers.end()],
        )
        .await
        .unwrap();
}
