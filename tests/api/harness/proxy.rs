//! Faults on the way to PostgreSQL, switched on and off by the test.

use std::sync::{Arc, Mutex};

use customer_api::config::Secret;

use super::db::server_url;

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
