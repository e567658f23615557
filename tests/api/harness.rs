//! Test harness: a fresh database per test, cloned from a template migrated
//! once, and the real application served over HTTP on port 0.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use customer_api::config::Secret;
use customer_api::{AppState, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_postgres::NoTls;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";

fn server_url() -> String {
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

/// Every log line the application writes during the test run, at TRACE.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_log_capture() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let buffer = LOGS.get_or_init(Default::default).clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("customer_api=trace,async_graphql=trace")
            .with_ansi(false)
            .with_writer(move || LogWriter(buffer.clone()))
            .try_init();
    });
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    /// Shared by replicas; dropped (with the database) by the last of them.
    pub db: Arc<TestDb>,
    client: reqwest::Client,
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
        adjust(&mut config);
        Self::start(Arc::new(db), config).await
    }

    /// A second server process on the same database with the same settings,
    /// as another replica behind a load balancer would be.
    pub async fn replica(&self) -> Self {
        Self::start(self.db.clone(), self.state.config.clone()).await
    }

    async fn start(db: Arc<TestDb>, config: Config) -> Self {
        let state = customer_api::startup::start(config)
            .await
            .expect("start the application");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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

    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.address)
    }

    /// POSTs one GraphQL operation and returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send GraphQL request");
        assert_eq!(
            response.status(),
            200,
            "GraphQL over application/json answers 200"
        );
        response.json().await.expect("JSON body")
    }

    pub async fn login(&self, username: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token expiresAt agent { id username customerId permission permissions } } }",
            json!({ "u": username, "p": password }),
        )
        .await
    }

    /// Logs in and returns the token, failing the test if login fails.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let body = self.login(username, password).await;
        body["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    /// Creates a customer through the API; returns the response body.
    pub async fn create_customer(&self, token: &str, input: Value) -> Value {
        self.gql(
            Some(token),
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete guestAgent { id customerId username name permission permissions } } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// Creates a customer and returns its id, failing the test on error.
    pub async fn create_customer_ok(&self, token: &str, username: &str, password: &str) -> String {
        let body = self
            .create_customer(token, json!({ "username": username, "password": password }))
            .await;
        body["data"]["createCustomer"]["customer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createCustomer failed: {body}"))
            .to_owned()
    }

    pub async fn delete_customer(&self, token: &str, id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id username tmUpdate tmDelete } } }",
            json!({ "id": id }),
        )
        .await
    }

    pub fn statements(&self) -> u64 {
        self.state.statements.get()
    }

    /// POSTs one GraphQL operation with one extra request header.
    pub async fn gql_with_header(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        header: (&str, &str),
    ) -> Value {
        let mut request = self
            .client
            .post(self.graphql_url())
            .header(header.0, header.1)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send GraphQL request");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON body")
    }

    /// Logs in with an `X-Forwarded-For` header naming the client address
    /// (honoured only by servers configured to trust it).
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> Value {
        self.gql_with_header(
            None,
            "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token agent { id } } }",
            json!({ "u": username, "p": password }),
            ("x-forwarded-for", address),
        )
        .await
    }

    /// Creates an access key; returns the whole response body.
    pub async fn create_access_key(&self, token: &str, input: Value) -> Value {
        self.gql(
            Some(token),
            "mutation($input: CreateAccessKeyInput!) { createAccessKey(input: $input) { token accessKey { id customerId name detail tokenPrefix tmExpire tmLastUsed tmCreate tmUpdate tmDelete } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// Creates an access key and returns `(id, key)`, failing the test on error.
    pub async fn create_access_key_ok(&self, token: &str, input: Value) -> (String, String) {
        let body = self.create_access_key(token, input).await;
        let payload = &body["data"]["createAccessKey"];
        match (
            payload["accessKey"]["id"].as_str(),
            payload["token"].as_str(),
        ) {
            (Some(id), Some(key)) => (id.to_owned(), key.to_owned()),
            _ => panic!("createAccessKey failed: {body}"),
        }
    }

    pub async fn delete_access_key(&self, token: &str, id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!) { deleteAccessKey(input: {id: $id}) { accessKey { id customerId name tmUpdate tmDelete } } }",
            json!({ "id": id }),
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> Value {
        self.gql(Some(token), "mutation { logout { revoked } }", json!({}))
            .await
    }

    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { agent { id username } } }",
            json!({ "c": current, "n": new }),
        )
        .await
    }

    pub async fn set_agent_password(&self, token: &str, agent_id: &str, password: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!, $p: String!) { setAgentPassword(input: {agentId: $id, password: $p}) { agent { id username } } }",
            json!({ "id": agent_id, "p": password }),
        )
        .await
    }

    /// Adds an agent straight into the database, in the customer of the agent
    /// `like_username` and with its password; returns the new agent's id.
    pub async fn seed_agent(&self, like_username: &str, username: &str, permission: i32) -> String {
        let client = self.db.client().await;
        client
            .query_one(
                "INSERT INTO agents (id, customer_id, username, password_hash, permission)
                 SELECT gen_random_uuid(), customer_id, $2, password_hash, $3
                   FROM agents WHERE username = $1 AND tm_delete IS NULL
                 RETURNING id::text",
                &[&like_username, &username, &permission],
            )
            .await
            .expect("seed an agent")
            .get(0)
    }

    /// The customer id of the caller behind `token`.
    pub async fn own_customer_id(&self, token: &str) -> String {
        let body = self
            .gql(Some(token), "{ me { customer { id } } }", json!({}))
            .await;
        body["data"]["me"]["customer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("me failed: {body}"))
            .to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The `extensions.code` of the first error in a response body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {body}"))
}

pub fn error_field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a field, got {body}"))
}

/// A TCP proxy in front of PostgreSQL that a test can cut, as an outage or a
/// network partition would: open connections are closed and new ones refused
/// until it is restored. It can also stall some connections: their bytes
/// are held, in both directions, while the connections stay open, as a
/// network that drops packets without resetting anything would.
pub struct Proxy {
    pub address: std::net::SocketAddr,
    open: Arc<std::sync::atomic::AtomicBool>,
    /// Connections whose start-up message contains these bytes are stalled.
    stalled: Arc<Mutex<Option<Vec<u8>>>>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let upstream = url::Url::parse(&server_url()).unwrap();
        let upstream = format!(
            "{}:{}",
            upstream.host_str().unwrap_or("127.0.0.1"),
            upstream.port().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stalled: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepting = {
            let (open, links, stalled) = (open.clone(), links.clone(), stalled.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let stalled = stalled.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(server) = tokio::net::TcpStream::connect(&upstream).await {
                            let startup: Arc<Mutex<Vec<u8>>> = Arc::default();
                            let (from_client, to_client) = client.into_split();
                            let (from_server, to_server) = server.into_split();
                            tokio::join!(
                                forward(from_client, to_server, &startup, &stalled, true),
                                forward(from_server, to_client, &startup, &stalled, false),
                            );
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Self {
            address,
            open,
            stalled,
            links,
            accepting,
        }
    }

    /// `database_url`, reached through this proxy.
    pub fn route(&self, database_url: &Secret) -> Secret {
        let mut url = url::Url::parse(database_url.expose()).unwrap();
        url.set_host(Some(&self.address.ip().to_string())).unwrap();
        url.set_port(Some(self.address.port())).unwrap();
        Secret::new(url.to_string())
    }

    /// Holds every byte to and from the connections whose start-up message
    /// names `application_name`, until `unstall`.
    pub fn stall_application(&self, application_name: &str) {
        *self.stalled.lock().unwrap() = Some(application_name.as_bytes().to_vec());
    }

    pub fn unstall(&self) {
        *self.stalled.lock().unwrap() = None;
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, recording the first bytes the client sends (its
/// start-up message) and holding what it has read while the link is stalled.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    startup: &Mutex<Vec<u8>>,
    stalled: &Mutex<Option<Vec<u8>>>,
    from_client: bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const STARTUP_BYTES: usize = 1024;
    let is_stalled = || {
        let pattern = stalled.lock().unwrap().clone();
        pattern.is_some_and(|pattern| {
            let startup = startup.lock().unwrap();
            startup
                .windows(pattern.len())
                .any(|window| window == pattern)
        })
    };
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if from_client {
            let mut startup = startup.lock().unwrap();
            let room = STARTUP_BYTES.saturating_sub(startup.len()).min(n);
            startup.extend_from_slice(&buf[..room]);
        }
        while is_stalled() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// Polls `probe` every 10 ms until it answers `Some`, failing the test with
/// `what` if that takes longer than `limit`: for states reached in the
/// background, with a deadline generous enough for a loaded machine.
pub async fn eventually<T, F, Fut>(what: &str, limit: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not reached within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Where each server's credential listener acknowledges a change it has
/// applied to its cache, as `<listener id>|<table>:<row id>` (see
/// `src/auth/cache.rs`).
const CREDENTIAL_ACK_CHANNEL: &str = "credential_change_acks";

impl TestDb {
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
}

impl TestApp {
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
        let ids: Vec<String> = client
            .query(sql, params)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
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

    /// Waits (at most 30 s) until `count` statements on this app's database
    /// wait for a lock: the requests that sent them are provably in flight.
    pub async fn until_statements_wait_on_locks(&self, count: i64) {
        let observer = self.db.client().await;
        eventually(
            &format!("{count} statements waiting on locks"),
            std::time::Duration::from_secs(30),
            || async {
                let waiting: i64 = observer
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                (waiting >= count).then_some(())
            },
        )
        .await
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
