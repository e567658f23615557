//! A webhook receiver on 127.0.0.1, run by the test: it records every request
//! (method, path, headers, body) and answers as the test tells it to, one
//! connection per request (`Connection: close`), so that `down` leaves nothing
//! open that a sender could reuse.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    /// Sent as `Location` (for redirects).
    pub location: Option<String>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            location: None,
            delay: Duration::ZERO,
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            location: Some(location.to_owned()),
            ..Self::status(status)
        }
    }

    pub fn slow(status: u16, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::status(status)
        }
    }
}

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with; 0 for a slow answer (one delayed
    /// past the sender's timeout, as the tests use them).
    pub answered: u16,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }

    /// `X-VoIPBIN-Event-Id`, or "" when absent.
    pub fn event_id(&self) -> String {
        self.header("x-voipbin-event-id")
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Answers for the next requests, in order; then `default`.
    script: VecDeque<Answer>,
    default: Option<Answer>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    serving: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1 that answers 200.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0")
            .await
            .expect("listen on 127.0.0.1")
    }

    /// A receiver on `address` (`[::1]:0`, say), if it can listen there.
    pub async fn start_at(address: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            default: Some(Answer::status(200)),
            ..Default::default()
        }));
        let serving = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            port,
            shared,
            serving: Mutex::new(Some(serving)),
        })
    }

    /// `http://127.0.0.1:<port><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers the next requests with these, in order, before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.lock().unwrap().script.extend(answers);
    }

    /// Scripted answers not yet given.
    pub fn scripted_left(&self) -> usize {
        self.shared.lock().unwrap().script.len()
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Closes the listener and every open connection: connecting is refused
    /// until `up`.
    pub async fn down(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some(serving) = serving {
            serving.abort();
            let _ = serving.await;
        }
        // The port is closed: a connection is refused.
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await;
        assert!(refused.is_err(), "the receiver's port is still open");
    }

    /// Listens again, on the same port.
    pub async fn up(&self) {
        let started = Instant::now();
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind 127.0.0.1:{}: {e}", self.port),
            }
        };
        let serving = tokio::spawn(serve(listener, self.shared.clone()));
        *self.serving.lock().unwrap() = Some(serving);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.lock().unwrap().take() {
            serving.abort();
        }
    }
}

/// Accepts connections until aborted; aborting it aborts every connection.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(request, shared.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    request: hyper::Request<hyper::body::Incoming>,
    shared: Arc<Mutex<Shared>>,
) -> Result<hyper::Response<axum::body::Body>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(axum::body::Body::new(body), 16 << 20)
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    let answer = {
        let mut shared = shared.lock().unwrap();
        let answer = shared
            .script
            .pop_front()
            .or_else(|| shared.default.clone())
            .unwrap_or(Answer::status(200));
        shared.received.push(Received {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
            answered: if answer.delay.is_zero() {
                answer.status
            } else {
                0
            },
            at: Instant::now(),
        });
        answer
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = hyper::Response::builder()
        .status(answer.status)
        .header("connection", "close")
        .header("content-type", "text/plain");
    if let Some(location) = &answer.location {
        response = response.header("location", location);
    }
    Ok(response
        .body(axum::body::Body::from(format!(
            "answered {}",
            answer.status
        )))
        .unwrap())
}
