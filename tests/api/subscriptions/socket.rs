//! A `graphql-transport-ws` client for the tests, over a real WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::TestApp;

/// How long a test waits for a message it expects.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct Socket {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent, as the tests look at it.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>, String),
}

impl Socket {
    /// Opens a WebSocket on `/graphql` asking for `protocol`.
    pub async fn open_with(app: &TestApp, protocol: &str) -> Self {
        let url = format!("{}/graphql", app.address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_str(protocol).unwrap(),
        );
        let (inner, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            response
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        Self { inner }
    }

    pub async fn open(app: &TestApp) -> Self {
        Self::open_with(app, "graphql-transport-ws").await
    }

    /// Opens and initialises a connection with `token`; panics unless acknowledged.
    pub async fn connect(app: &TestApp, token: &str) -> Self {
        let mut socket = Self::open(app).await;
        socket
            .send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
            .await;
        let ack = socket.receive().await;
        assert!(
            matches!(&ack, Received::Json(m) if m["type"] == "connection_ack"),
            "{ack:?}"
        );
        socket
    }

    pub async fn send(&mut self, message: Value) {
        self.inner
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send a message");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.inner.send(message).await.expect("send a frame");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next message (pings are answered by the library and skipped),
    /// or how the connection closed.
    pub async fn receive(&mut self) -> Received {
        self.receive_within(PATIENCE)
            .await
            .expect("a message within the test's patience")
    }

    /// Like `receive`, but `None` when nothing arrives within `limit`.
    pub async fn receive_within(&mut self, limit: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(Message::Text(text))) => {
                    Received::Json(serde_json::from_str(&text).expect("JSON message"))
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(frame) => {
                        Received::Closed(Some(u16::from(frame.code)), frame.reason.to_string())
                    }
                    None => Received::Closed(None, String::new()),
                },
                Some(Ok(_)) => continue,
                Some(Err(error)) => Received::Closed(None, error.to_string()),
                None => Received::Closed(None, "stream ended".into()),
            });
        }
    }

    /// The next `next` message for subscription `id`: its payload.
    pub async fn next_payload(&mut self, id: &str) -> Value {
        loop {
            match self.receive().await {
                Received::Json(message) if message["type"] == "next" && message["id"] == id => {
                    return message["payload"].clone();
                }
                Received::Json(message) if message["type"] == "ping" => {
                    self.send(json!({"type": "pong"})).await;
                }
                other => panic!("expected a result for {id}, got {other:?}"),
            }
        }
    }

    /// Waits until the connection closes; the close code.
    pub async fn closed(&mut self) -> (Option<u16>, String) {
        loop {
            if let Received::Closed(code, reason) = self.receive().await {
                return (code, reason);
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .inner
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}
