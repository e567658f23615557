//! A client-side load balancer, as small as a real one's contract: requests
//! go round-robin over the servers in rotation, and a connection attempt
//! that is refused (the server is gone, or not listening yet) moves on to
//! the next server. Nothing else is retried: once a request may have left,
//! whatever happens to it is the server's answer, and any failure counts.
//!
//! A server leaves the rotation before it is told to stop, and only once
//! the requests already sent to it are answered, as a Kubernetes pod leaves
//! its Service's endpoints during the manifests' `preStop` pause: a server
//! that closes an idle kept-alive connection races a request the client
//! sends on it at that instant (HTTP/1.1 cannot tell the two apart), so no
//! balancer keeps sending to a server it is stopping.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// Longer than any request takes; a request that hangs is a failure, not a
/// hung test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Default, Debug)]
pub struct Tally {
    /// Requests answered 200 with data and no errors.
    pub answered: u64,
    /// Of those, answered by a server after it left the rotation (sent
    /// before), while the balancer waited to stop it.
    pub answered_while_draining: u64,
    /// Connection attempts refused, each followed by a try on the next server.
    pub refused_before_sending: u64,
    /// Everything else that went wrong, one line each.
    pub failures: Vec<String>,
}

pub struct Balancer {
    http: reqwest::Client,
    rotation: Mutex<Vec<String>>,
    draining: Mutex<HashSet<String>>,
    /// Requests sent to each server and not yet answered; counted under the
    /// `rotation` lock, so that one taken out of rotation gets no more.
    outstanding: Mutex<HashMap<String, usize>>,
    turn: AtomicUsize,
    tally: Mutex<Tally>,
}

/// One request on its way to a server, uncounted when it ends.
struct Sent<'a> {
    balancer: &'a Balancer,
    server: String,
}

impl Drop for Sent<'_> {
    fn drop(&mut self) {
        if let Some(n) = self
            .balancer
            .outstanding
            .lock()
            .unwrap()
            .get_mut(&self.server)
        {
            *n -= 1;
        }
    }
}

/// Refused at connect: the request provably never left the client.
fn refused(error: &reqwest::Error) -> bool {
    if !error.is_connect() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The error and its causes on one line, for the failure list.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

impl Balancer {
    pub fn new(servers: Vec<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                // Below the servers' keep-alive timeout, as README.md asks of a
                // balancer that reuses connections: otherwise a server closing
                // an idle connection races the balancer's next request on it.
                .pool_idle_timeout(Duration::from_secs(2))
                .no_proxy()
                .build()
                .unwrap(),
            rotation: Mutex::new(servers),
            draining: Mutex::new(HashSet::new()),
            outstanding: Mutex::new(HashMap::new()),
            turn: AtomicUsize::new(0),
            tally: Mutex::new(Tally::default()),
        }
    }

    pub fn add(&self, server: &str) {
        self.rotation.lock().unwrap().push(server.to_owned());
    }

    /// Takes `server` out of rotation and waits until the requests already
    /// sent to it are answered: then it may be told to stop.
    pub async fn retire(&self, server: &str) {
        self.remove(server);
        self.draining.lock().unwrap().insert(server.to_owned());
        crate::harness::eventually(
            "the requests sent to a retiring server are answered",
            REQUEST_TIMEOUT,
            || async {
                let outstanding = self.outstanding.lock().unwrap();
                (outstanding.get(server).copied().unwrap_or(0) == 0).then_some(())
            },
        )
        .await;
    }

    /// Counts a request to `server`, unless it has left the rotation.
    fn send_to(&self, server: &str) -> Option<Sent<'_>> {
        let rotation = self.rotation.lock().unwrap();
        if !rotation.iter().any(|s| s == server) {
            return None;
        }
        *self
            .outstanding
            .lock()
            .unwrap()
            .entry(server.to_owned())
            .or_default() += 1;
        Some(Sent {
            balancer: self,
            server: server.to_owned(),
        })
    }

    /// Takes an exited server out of rotation.
    pub fn remove(&self, server: &str) {
        self.rotation.lock().unwrap().retain(|s| s != server);
    }

    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap()
    }

    fn fail(&self, failure: String) {
        self.tally().failures.push(failure);
    }

    /// The servers in the order this request tries them: round-robin, with
    /// `avoid` (when given and there is another) left for last.
    fn candidates(&self, avoid: Option<&str>) -> Vec<String> {
        let rotation = self.rotation.lock().unwrap().clone();
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<String> = (0..rotation.len())
            .map(|i| rotation[(start + i) % rotation.len()].clone())
            .collect();
        if let Some(avoid) = avoid {
            order.sort_by_key(|server| server == avoid);
        }
        order
    }

    /// Sends one GraphQL operation; the server that answered and the
    /// `data`, or `None` (with the failure recorded) if anything but a
    /// clean answer came back.
    pub async fn graphql(
        &self,
        what: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
        avoid: Option<&str>,
    ) -> Option<(String, Value)> {
        for server in self.candidates(avoid) {
            let Some(_sent) = self.send_to(&server) else {
                continue;
            };
            let mut request = self
                .http
                .post(format!("{server}/graphql"))
                .json(&json!({ "query": query, "variables": variables }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) if refused(&error) => {
                    self.tally().refused_before_sending += 1;
                    continue;
                }
                Err(error) => {
                    self.fail(format!("{what} on {server}: sent, then {}", chain(&error)));
                    return None;
                }
            };
            let status = response.status();
            let text = match response.text().await {
                Ok(text) => text,
                Err(error) => {
                    self.fail(format!(
                        "{what} on {server}: {status}, then the body failed: {}",
                        chain(&error)
                    ));
                    return None;
                }
            };
            let body: Value = match serde_json::from_str(&text) {
                Ok(body) if status == 200 => body,
                _ => {
                    self.fail(format!("{what} on {server}: {status} {text}"));
                    return None;
                }
            };
            if !body["errors"].is_null() || body["data"].is_null() {
                self.fail(format!("{what} on {server}: {body}"));
                return None;
            }
            let draining = self.draining.lock().unwrap().contains(&server);
            let mut tally = self.tally();
            tally.answered += 1;
            tally.answered_while_draining += u64::from(draining);
            return Some((server, body["data"].clone()));
        }
        self.fail(format!("{what}: every server refused the connection"));
        None
    }
}
