//! Typed configuration, read from command-line flags or environment variables
//! (flags win). Each setting is described once, on its field below: that is
//! what `customer-api --help` prints, and the test
//! `readme_lists_every_setting_with_its_default` checks README's
//! "Configuration" table against it.

use std::fmt;
use std::net::SocketAddr;

use clap::{Args, ValueEnum};

/// A configuration value that must never be printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Where the server looks for PostgreSQL when told nothing: the local
/// server, with trust authentication. If nothing answers there, `cargo run`
/// starts a private development cluster instead (the `devdb` crate, in
/// `crates/devdb/`).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/customer_api";

/// How common queries are answered (see `graphql::fast`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FastPathMode {
    /// By the fast path where it applies.
    On,
    /// Always by async-graphql.
    Off,
    /// Both ways, answering with async-graphql's response and counting
    /// (and logging) every difference: for tests and for trying a new build.
    Verify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    /// Unset, and with nothing answering at the default, a private development
    /// PostgreSQL is started in `.pgdata/` from the installed binaries.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: Secret,

    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// A second address serving `/metrics` (and the probes) for operators;
    /// when set, `/metrics` is no longer served on `LISTEN_ADDR`.
    #[arg(long, env = "METRICS_LISTEN_ADDR")]
    pub metrics_listen_addr: Option<SocketAddr>,

    /// Keys that sign login tokens, comma-separated: the first signs, all
    /// verify, so a rotation lists the new key first and the old one after it
    /// until the old tokens have expired. Without it a random key is made per
    /// process (tokens then die with the process and do not work across replicas).
    #[arg(long, env = "TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<Secret>,

    /// Lifetime of a login token, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 604_800,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub token_ttl_seconds: u64,

    /// Username of the super admin created when the database has none.
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// Password of that super admin; without it a random one is printed once to the log.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Failed logins allowed per username within the window.
    #[arg(long, env = "LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: usize,

    /// Failed logins allowed per client address within the window.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 20)]
    pub login_max_failures_per_address: usize,

    /// Password checks (logins and `changePassword`) allowed per client
    /// address within the window, successful or not.
    #[arg(long, env = "LOGIN_MAX_ATTEMPTS_PER_ADDRESS", default_value_t = 100)]
    pub login_max_attempts_per_address: usize,

    /// Length of the sliding window that counts failed logins, in seconds.
    #[arg(long, env = "LOGIN_FAILURE_WINDOW_SECONDS", default_value_t = 300)]
    pub login_failure_window_seconds: u64,

    /// How long a deleted customer can still be restored by
    /// `recoverCustomer`, in days.
    #[arg(long, env = "CUSTOMER_RESTORE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub customer_restore_days: u32,

    /// How long events are kept, in days; older ones are pruned by the
    /// server, in batches.
    #[arg(long, env = "EVENT_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub event_retention_days: u32,

    /// Send webhook deliveries from this server; `false` leaves them queued
    /// for the other servers (or for later).
    #[arg(long, env = "WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,

    /// Let webhooks reach loopback, private and other non-public addresses
    /// (tests, on-premises receivers); off, such targets are refused.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private_targets: bool,

    /// Attempts per webhook delivery before it is given up.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_max_attempts: u32,

    /// Delay before a delivery's first retry, in milliseconds; doubled on
    /// each further one, with jitter.
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
    pub webhook_retry_base_ms: u64,

    /// Longest delay between two attempts of a delivery, in milliseconds.
    #[arg(long, env = "WEBHOOK_RETRY_MAX_MS", default_value_t = 3_600_000)]
    pub webhook_retry_max_ms: u64,

    /// Time allowed for one webhook attempt (connect, send, answer), in milliseconds.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub webhook_timeout_ms: u64,

    /// How often an idle server looks for due webhook deliveries, in milliseconds.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub webhook_poll_interval_ms: u64,

    /// Subscriptions one WebSocket connection may run at once.
    #[arg(long, env = "SUBSCRIPTION_MAX_PER_CONNECTION", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub subscription_max_per_connection: u32,

    /// WebSocket connections one credential may hold open on one server.
    #[arg(long, env = "SUBSCRIPTION_MAX_CONNECTIONS_PER_CREDENTIAL", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub subscription_max_connections_per_credential: u32,

    /// How often the server pings a WebSocket, in milliseconds; a client
    /// that sends nothing (not even a pong) for two intervals is disconnected.
    #[arg(long, env = "WEBSOCKET_PING_INTERVAL_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(100..=300_000))]
    pub websocket_ping_interval_ms: u64,

    /// Time a new WebSocket has to send `connection_init`, in milliseconds.
    #[arg(long, env = "WEBSOCKET_INIT_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub websocket_init_timeout_ms: u64,

    /// RabbitMQ to publish every event to (`amqp://user:password@host:5672/vhost`,
    /// or `amqps://`); unset, nothing is published. Logs name its host only.
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<Secret>,

    /// The topic exchange events are published to (declared durable if
    /// missing), with the event type as routing key; VoIPbin's naming.
    #[arg(
        long,
        env = "AMQP_EXCHANGE",
        default_value = "bin-manager.customer-manager.event"
    )]
    pub amqp_exchange: String,

    /// Take the client address from the last `X-Forwarded-For` entry (only
    /// behind a proxy that sets it); otherwise from the TCP connection.
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// Maximum number of database connections.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Streaming replicas of that PostgreSQL, comma-separated connection URLs
    /// (same database name), that serve the reads which tolerate lag. Logs
    /// name them by number and host only. Unset, every query goes to
    /// `DATABASE_URL`.
    #[arg(long, env = "DATABASE_REPLICA_URLS", hide_env_values = true)]
    pub database_replica_urls: Option<Secret>,

    /// A replica further behind the primary than this, in milliseconds, is
    /// not read from until it catches up.
    #[arg(long, env = "REPLICA_MAX_LAG_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub replica_max_lag_ms: u64,

    /// After a credential writes, its reads use only replicas known to have
    /// replayed that write, for this many milliseconds (otherwise the primary).
    #[arg(long, env = "READ_YOUR_WRITES_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub read_your_writes_ms: u64,

    /// Most database connections one HTTP request holds at once (its other
    /// fields wait for them), so that one batch cannot take the whole pool.
    #[arg(long, env = "DB_CONNECTIONS_PER_REQUEST", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub db_connections_per_request: u16,

    /// Longest wait for a pooled connection, and to open a new one, in milliseconds.
    #[arg(long, env = "DB_POOL_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_pool_timeout_ms: u64,

    /// PostgreSQL statement_timeout, and the same idle_in_transaction_session_timeout,
    /// set on every connection, in milliseconds; together they bound how late
    /// a row can commit after its tm_create (8 times this).
    #[arg(long, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_statement_timeout_ms: u64,

    /// Deadline of a whole HTTP request, in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// On shutdown, how long in-flight requests may run before they are cut off, in milliseconds.
    #[arg(long, env = "DRAIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub drain_timeout_ms: u64,

    /// The head of a request (request line and headers) must arrive within
    /// this many milliseconds of the server starting to wait for it.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub http_header_timeout_ms: u64,

    /// A connection with no request in flight and no traffic for this many
    /// milliseconds is closed.
    #[arg(long, env = "HTTP_KEEP_ALIVE_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub http_keep_alive_timeout_ms: u64,

    /// Most client connections open at once (lowered to fit the process's
    /// open-file limit); a further client takes the place of the connection
    /// idle the longest, or waits in the accept queue while every
    /// connection is serving a request.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1_024)]
    pub http_max_connections: usize,

    /// Largest accepted request body, in bytes (larger ones get 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 262_144)]
    pub max_body_bytes: usize,

    /// Most operations accepted in one batched (JSON array) request.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 10)]
    pub max_batch_size: usize,

    /// Deepest selection set accepted.
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Highest query complexity accepted (every field costs 1, lists cost their page size).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 5_000)]
    pub max_query_complexity: usize,

    /// Most aliases accepted in one document (alias floods multiply work).
    #[arg(long, env = "MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,

    /// Most root fields accepted in one operation.
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Deepest nesting of brackets (`{`, `[`, `(`) accepted in a document's
    /// text, checked before parsing: the parser recurses on nested values.
    #[arg(long, env = "MAX_NESTING", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_nesting: u16,

    /// Most lexical tokens accepted in one document, checked before parsing.
    #[arg(long, env = "MAX_TOKENS", default_value_t = 10_000)]
    pub max_tokens: usize,

    /// Most selections (fields, fragment spreads, inline fragments) one
    /// operation may expand to once its fragments are spread.
    #[arg(long, env = "MAX_SELECTIONS", default_value_t = 2_000)]
    pub max_selections: usize,

    /// Most live (not deleted, not expired) access keys one customer may
    /// hold; `createAccessKey` beyond it is refused with CONFLICT.
    #[arg(long, env = "MAX_ACCESS_KEYS_PER_CUSTOMER", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_access_keys_per_customer: u32,

    /// Origins allowed to call the API from a browser (CORS), comma-separated;
    /// `*` for any. None by default.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// `on`: customer pages and `customer(id)` are answered by the fast
    /// path (README, "Benchmarks"); `off`: always by async-graphql;
    /// `verify`: both, answering with async-graphql's and counting differences.
    #[arg(long, env = "GRAPHQL_FAST_PATH", value_enum, default_value_t = FastPathMode::On)]
    pub graphql_fast_path: FastPathMode,

    /// Whether introspection queries (`__schema`, `__type`) are answered.
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Log format: `text` for people, `json` for log pipelines. Levels come from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The token signing keys, in order; empty when none are configured.
    pub fn token_secrets(&self) -> Vec<Secret> {
        self.token_secret
            .iter()
            .flat_map(|s| s.expose().split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect()
    }

    /// The read replicas' URLs, in order; empty when none are configured.
    pub fn replica_urls(&self) -> Vec<Secret> {
        self.database_replica_urls
            .iter()
            .flat_map(|s| s.expose().split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect()
    }

    /// The defaults above (as overridden by the environment), pointed at
    /// `database_url`; command-line flags are ignored. For tests and embedders.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Defaults as clap::Parser>::parse_from(["customer-api"]).config;
        config.database_url = Secret::new(database_url);
        config
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::Config;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    /// README's "Configuration" table, as `VARIABLE -> default column`.
    fn readme_settings() -> BTreeMap<String, String> {
        let readme = include_str!("../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("README has a Configuration section");
        section
            .lines()
            .skip_while(|line| !line.starts_with("| Variable"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn readme_lists_every_setting_with_its_default() {
        let documented = readme_settings();
        let command = Cli::command();
        let mut settings = BTreeMap::new();
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            let default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            settings.insert(env, default);
        }
        assert!(
            settings.len() > 30,
            "every setting has an environment variable"
        );
        assert_eq!(
            settings.keys().collect::<Vec<_>>(),
            documented.keys().collect::<Vec<_>>(),
            "README's Configuration table lists exactly the settings of `--help`"
        );
        for (env, default) in &settings {
            let column = &documented[env];
            match default.as_slice() {
                [] => assert!(
                    !column.starts_with('`'),
                    "{env} has no default, but README gives one: {column}"
                ),
                [value] => assert!(
                    column.starts_with(&format!("`{value}`")),
                    "{env}: README says {column}, the code says `{value}`"
                ),
                values => panic!("{env} has several defaults: {values:?}"),
            }
        }
    }
}
