//! A `graphql-transport-ws` client that follows customer events on the
//! server it is told to, reading all the time (so that it answers pings and
//! the closing handshake as a real client does), and reports what it gets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http};

const EVENTS: &str =
    "subscription { customerEvents(types: [\"customer_created\"]) { id type customerId } }";

/// How long the test waits for an event or a close it expects.
const PATIENCE: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub enum Report {
    /// An event arrived on the socket to `server`.
    Event { server: String, event: Value },
    /// The socket to `server` ended: its close code, if it sent one.
    Closed {
        server: String,
        code: Option<u16>,
        reason: String,
    },
}

pub struct Subscriber {
    targets: mpsc::UnboundedSender<String>,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Subscriber {
    pub fn spawn(token: &str) -> Self {
        let (targets, mut next_target) = mpsc::unbounded_channel::<String>();
        let (report, reports) = mpsc::unbounded_channel();
        let token = token.to_owned();
        tokio::spawn(async move {
            while let Some(server) = next_target.recv().await {
                let (code, reason) = follow(&server, &token, &report).await;
                let _ = report.send(Report::Closed {
                    server,
                    code,
                    reason,
                });
            }
        });
        Self { targets, reports }
    }

    /// Connects to `server` (the previous socket has closed) and subscribes.
    pub fn follow(&self, server: &str) {
        self.targets.send(server.to_owned()).unwrap();
    }

    async fn report(&mut self) -> Report {
        tokio::time::timeout(PATIENCE, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("the subscriber reported nothing within {PATIENCE:?}"))
            .expect("the subscriber runs")
    }

    /// Waits for an event on `server`: the subscription there is live.
    pub async fn first_event(&mut self, server: &str) -> Value {
        match self.report().await {
            Report::Event {
                server: from,
                event,
            } if from == server => event,
            other => panic!("expected an event on {server}, got {other:?}"),
        }
    }

    /// Waits for the socket to `server` to close, skipping its events;
    /// returns the close code and how many events came meanwhile.
    pub async fn closed(&mut self, server: &str) -> (Option<u16>, String, usize) {
        let mut events = 0;
        loop {
            match self.report().await {
                Report::Event { server: from, .. } if from == server => events += 1,
                Report::Closed {
                    server: from,
                    code,
                    reason,
                } if from == server => return (code, reason, events),
                other => panic!("expected {server} to close, got {other:?}"),
            }
        }
    }
}

/// One socket's life: connects, subscribes, reports every event; returns
/// how it ended.
async fn follow(
    server: &str,
    token: &str,
    report: &mpsc::UnboundedSender<Report>,
) -> (Option<u16>, String) {
    let url = format!("{}/graphql", server.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static("graphql-transport-ws"),
    );
    let mut socket = match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => socket,
        Err(error) => return (None, format!("could not connect: {error}")),
    };
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } });
    for message in [init, subscribe] {
        if let Err(error) = socket.send(Message::Text(message.to_string().into())).await {
            return (None, format!("could not send: {error}"));
        }
    }
    loop {
        let message = match socket.next().await {
            Some(Ok(message)) => message,
            Some(Err(error)) => return (None, format!("the socket failed: {error}")),
            None => return (None, "ended without a close frame".into()),
        };
        match message {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                match message["type"].as_str() {
                    Some("connection_ack") => {}
                    Some("ping") => {
                        let pong = json!({ "type": "pong" }).to_string();
                        let _ = socket.send(Message::Text(pong.into())).await;
                    }
                    Some("next") if message["id"] == "1" => {
                        let event = message["payload"]["data"]["customerEvents"].clone();
                        assert_eq!(event["type"], "customer_created", "{message}");
                        let server = server.to_owned();
                        let _ = report.send(Report::Event { server, event });
                    }
                    _ => return (None, format!("unexpected message: {message}")),
                }
            }
            Message::Close(frame) => {
                // Reading on sends our half of the closing handshake.
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.next()).await;
                return match frame {
                    Some(frame) => (Some(u16::from(frame.code)), frame.reason.to_string()),
                    None => (None, "a close frame without a code".into()),
                };
            }
            _ => {}
        }
    }
}
