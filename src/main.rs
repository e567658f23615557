use std::process::ExitCode;

use clap::{Parser, Subcommand};
use customer_api::{Config, telemetry};

// A page of customers allocates thousands of small values (the response
// tree, rows, strings); mimalloc serves them markedly faster than glibc's
// malloc (measured with bench/run.sh, see README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// GraphQL API server for managing the customers of the VoIPbin platform.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the API (the default).
    Serve,
    /// Print the GraphQL schema (SDL) to stdout.
    PrintSchema,
    /// Apply pending database migrations (creating the database if needed), then exit.
    Migrate {
        /// Revert the most recently applied migration instead.
        #[arg(long)]
        revert: bool,
    },
    /// Ask the server on `LISTEN_ADDR` (or `METRICS_LISTEN_ADDR` when set)
    /// for a probe, and exit 0 if it answers 200: a health check for
    /// container images that carry no HTTP client of their own.
    Probe {
        /// The probe's path.
        #[arg(default_value = "/readyz")]
        path: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Settings in a `.env` file apply unless the environment already has them.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let telemetry = telemetry::init(cli.config.log_format);
    if let Ok(path) = dotenv {
        tracing::debug!(path = %path.display(), "read settings from .env");
    }
    let outcome = match cli.command {
        Some(Command::PrintSchema) => {
            print!("{}", customer_api::graphql::sdl());
            Ok(())
        }
        Some(Command::Migrate { revert }) => migrate(&cli.config, revert).await,
        Some(Command::Probe { path }) => probe(&cli.config, &path).await,
        Some(Command::Serve) | None => serve(cli.config).await,
    };
    telemetry.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config, revert: bool) -> Result<(), Box<dyn std::error::Error>> {
    use customer_api::db;
    let url = config.database_url.expose();
    // Every error names what failed ("cannot reach PostgreSQL at …",
    // "migration failed: …"); none shows the URL's password.
    let failed = |e: customer_api::error::AppError| customer_api::error::error_chain(&e);
    if revert {
        let lock = db::StartupLock::acquire(url).await.map_err(failed)?;
        let version = db::revert_last_migration(url).await.map_err(failed)?;
        lock.release().await;
        tracing::info!(%version, "reverted migration");
    } else {
        db::create_database_if_missing(url).await.map_err(failed)?;
        let lock = db::StartupLock::acquire(url).await.map_err(failed)?;
        db::run_migrations(url).await.map_err(failed)?;
        lock.release().await;
        tracing::info!("database is up to date");
    }
    Ok(())
}

/// With no `DATABASE_URL` and nothing answering at the default one, a
/// private PostgreSQL for development, kept in `.pgdata/` at the project root.
#[cfg(unix)]
async fn private_database(
    config: &mut Config,
) -> Result<Option<devdb::DevCluster>, Box<dyn std::error::Error>> {
    let chosen = std::env::var_os("DATABASE_URL").is_some()
        || config.database_url.expose() != customer_api::config::DEFAULT_DATABASE_URL;
    if chosen
        || devdb::server_answers(
            config.database_url.expose(),
            std::time::Duration::from_secs(2),
        )
        .await
    {
        return Ok(None);
    }
    let cluster = devdb::private_cluster(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .await
        .map_err(|e| format!("no PostgreSQL at the default URL, and no private one either: {e}"))?;
    tracing::info!(
        data = %cluster.data_dir().display(),
        url = cluster.url(),
        "no PostgreSQL at the default URL: using a private one for development; its data is kept in the data folder"
    );
    config.database_url = customer_api::config::Secret::new(cluster.url());
    Ok(Some(cluster))
}

async fn serve(mut config: Config) -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(unix)]
    let private = private_database(&mut config).await?;
    let addr = config.listen_addr;
    let state = customer_api::startup::start(config)
        .await
        .map_err(|e| format!("start-up failed: {}", customer_api::error::error_chain(&e)))?;
    let listener = customer_api::http::server::listen(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    if let Some(metrics_addr) = state.config.metrics_listen_addr {
        let metrics = customer_api::http::server::listen(metrics_addr)
            .map_err(|e| format!("cannot listen on {metrics_addr}: {e}"))?;
        tracing::info!("serving metrics and probes on http://{metrics_addr}/metrics");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(error) = customer_api::serve_operations(metrics, state).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    tracing::info!("listening on http://{addr}/graphql");
    let stopping = state.clone();
    let signal = async move {
        shutdown_signal().await;
        // Webhook attempts in flight finish alongside the requests drained.
        stopping.webhooks.begin();
    };
    customer_api::serve(listener, state.clone(), signal).await?;
    state.webhooks.finished().await;
    drop(state);
    #[cfg(unix)]
    if let Some(cluster) = private {
        cluster.stop().await?;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn probe(config: &Config, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = config.metrics_listen_addr.unwrap_or(config.listen_addr);
    // A server listening on every interface answers on loopback too.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if !path.starts_with('/') {
        return Err(format!("the probe's path must start with /: {path}").into());
    }
    let url = format!("http://{addr}{path}");
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .build()?
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", customer_api::error::error_chain(&e)))?;
    match response.status() {
        reqwest::StatusCode::OK => Ok(()),
        status => Err(format!("{url} answered {status}").into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
