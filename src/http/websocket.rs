//! GraphQL over WebSocket at `/graphql`: the `graphql-transport-ws`
//! protocol (and the older `graphql-ws`), for subscriptions above all.
//! async-graphql's protocol state machine speaks the messages; this module
//! owns the socket around it:
//! - the credential comes in `connection_init` (`{"Authorization": "Bearer …"}`),
//!   is checked before the acknowledgement (refused: close `4403`), and
//!   counts against `SUBSCRIPTION_MAX_CONNECTIONS_PER_CREDENTIAL`;
//!   no `connection_init` within `WEBSOCKET_INIT_TIMEOUT_MS`: close `4408`;
//! - every operation goes through the same executor as HTTP (document
//!   limits, caches, error codes), at most `SUBSCRIPTION_MAX_PER_CONNECTION`
//!   at once;
//! - the server pings every `WEBSOCKET_PING_INTERVAL_MS` and closes a socket
//!   that has sent nothing for two intervals (`3008`);
//! - when the server drains, sockets are closed with `1001` (going away),
//!   which clients take as a cue to reconnect elsewhere.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::http::{ClientMessage, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};

use super::server::ConnectionScope;
use crate::app::AppState;
use crate::extract::{ClientAddress, Credential};
use crate::feed::ConnectionSlot;
use crate::graphql::limits::Limit;
use crate::graphql::{GraphqlExecutor, RequestAuth, per_request_data};

/// Close codes of `graphql-transport-ws`, and WebSocket's own.
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const TIMEOUT: u16 = 3008;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const TOO_MANY_CONNECTIONS: u16 = 4429;
}

/// How long the closing handshake may take.
const CLOSING_TIME: Duration = Duration::from_secs(1);

/// Answers a WebSocket upgrade on `/graphql`.
pub fn upgrade(
    upgrade: WebSocketUpgrade,
    app: AppState,
    graphql: GraphqlExecutor,
    client: ClientAddress,
    scope: Option<Arc<ConnectionScope>>,
) -> HttpResponse {
    let upgrade = upgrade
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .max_message_size(app.config.max_body_bytes)
        .max_frame_size(app.config.max_body_bytes);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(|p| p.parse::<WebSocketProtocols>().ok());
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "a GraphQL WebSocket must ask for the graphql-transport-ws subprotocol",
        )
            .into_response();
    };
    upgrade.on_upgrade(move |socket| async move {
        let stopping = scope.as_ref().map(|scope| scope.stopping.clone());
        serve(socket, protocol, app, graphql, client, stopping).await;
        drop(scope);
    })
}

/// One connection's state, shared by the socket loop and the executor.
struct Session {
    app: AppState,
    client: ClientAddress,
    /// Set by a `connection_init` whose credential was accepted.
    credential: OnceLock<String>,
    /// Why the `connection_init` was refused, for the close code.
    refusal: OnceLock<(u16, &'static str)>,
    initialised: AtomicBool,
    /// Counted against the credential's connection cap while open.
    slot: Mutex<Option<ConnectionSlot>>,
    running: AtomicUsize,
}

impl Session {
    /// Checks the credential of `connection_init`. The error's message is
    /// not what the client sees: the socket closes with `refusal`'s reason.
    async fn init(self: Arc<Self>, payload: serde_json::Value) -> async_graphql::Result<Data> {
        self.initialised.store(true, Ordering::Relaxed);
        let authorization = payload
            .as_object()
            .and_then(|fields| {
                fields
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            })
            .and_then(|(_, value)| value.as_str());
        let token = match authorization.map(Credential::of_authorization) {
            Some(Credential::Bearer(token)) => token,
            _ => return Err(self.refuse(close::FORBIDDEN, "Forbidden")),
        };
        let principal = match crate::service::auth::resolve_credential(&self.app, &token).await {
            Ok(principal) => principal,
            Err(crate::error::AppError::Unauthenticated) => {
                return Err(self.refuse(close::FORBIDDEN, "Forbidden"));
            }
            Err(error) => {
                tracing::warn!(error = %crate::error::error_chain(&error), "could not check a WebSocket's credential");
                return Err(self.refuse(1011, "try again later"));
            }
        };
        let max = self.app.config.subscription_max_connections_per_credential as usize;
        let Some(slot) = self
            .app
            .event_hub
            .open_connection(principal.credential, max)
        else {
            return Err(self.refuse(
                close::TOO_MANY_CONNECTIONS,
                "too many WebSocket connections for this credential",
            ));
        };
        *self.slot.lock().expect("never poisoned") = Some(slot);
        let _ = self.credential.set(token);
        Ok(Data::default())
    }

    fn refuse(&self, code: u16, reason: &'static str) -> async_graphql::Error {
        let _ = self.refusal.set((code, reason));
        async_graphql::Error::new(reason)
    }

    /// What every operation of the connection needs, as an HTTP request's
    /// operations get it: the credential (checked afresh per operation), loaders.
    fn attach(&self, request: Request) -> Request {
        let credential = match self.credential.get() {
            Some(token) => Credential::Bearer(token.clone()),
            None => Credential::None,
        };
        per_request_data(
            request,
            &self.app,
            RequestAuth::new(credential),
            self.client,
        )
    }
}

/// The executor the protocol runs operations with: the HTTP one, per
/// connection, with its cap on operations at once.
#[derive(Clone)]
struct SocketExecutor {
    graphql: GraphqlExecutor,
    session: Arc<Session>,
}

/// Counts an operation as running until its stream is dropped.
struct Running(Arc<Session>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl async_graphql::Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.graphql
            .execute(self.session.attach(request), false)
            .await
            .into_response()
    }

    fn execute_stream(
        &self,
        request: Request,
        _session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let max = self.session.app.config.subscription_max_per_connection as usize;
        if self.session.running.fetch_add(1, Ordering::Relaxed) >= max {
            self.session.running.fetch_sub(1, Ordering::Relaxed);
            let error = Limit::Subscriptions.error(format!(
                "a WebSocket connection may run at most {max} operations at once"
            ));
            return futures_util::stream::once(std::future::ready(Response::from_errors(vec![
                error,
            ])))
            .boxed();
        }
        let running = Running(self.session.clone());
        let answers = self.graphql.execute_stream(self.session.attach(request));
        crate::db::replicas::tracking_stream_writes(self.session.app.clone(), answers)
            .map(move |response| {
                let _ = &running;
                response
            })
            .boxed()
    }
}

/// A frame over `max_message_size`: tungstenite's capacity error, which
/// axum only passes on as its text.
fn is_too_big(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    app: AppState,
    graphql: GraphqlExecutor,
    client: ClientAddress,
    stopping: Option<watch::Receiver<bool>>,
) {
    let ping_interval = Duration::from_millis(app.config.websocket_ping_interval_ms);
    let init_timeout = Duration::from_millis(app.config.websocket_init_timeout_ms);
    let metrics = app.metrics.clone();
    let session = Arc::new(Session {
        app,
        client,
        credential: OnceLock::new(),
        refusal: OnceLock::new(),
        initialised: AtomicBool::new(false),
        slot: Mutex::new(None),
        running: AtomicUsize::new(0),
    });
    let (mut sink, source) = socket.split();
    // Anything from the client counts as a sign of life, pongs included.
    let last_heard = Arc::new(Mutex::new(Instant::now()));
    let (frames, received) = mpsc::channel(16);
    let reader = tokio::spawn(read_frames(
        source,
        frames,
        last_heard.clone(),
        session.clone(),
    ));
    let messages = futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|bytes| (bytes, received))
    })
    .map({
        let session = session.clone();
        move |bytes| {
            let message = ClientMessage::from_bytes(bytes);
            // Subscribing before `connection_init` was accepted: the
            // protocol's 4401, rather than the library's generic close.
            if matches!(message, Ok(ClientMessage::Start { .. }))
                && session.credential.get().is_none()
            {
                let _ = session.refusal.set((close::UNAUTHORIZED, "Unauthorized"));
            }
            message
        }
    });
    let executor = SocketExecutor {
        graphql,
        session: session.clone(),
    };
    let init_session = session.clone();
    let mut protocol_stream = Box::pin(
        async_graphql::http::WebSocket::from_message_stream(executor, messages, protocol)
            .on_connection_init(move |payload| init_session.init(payload)),
    );

    // Without a server around it (tests), nothing ever stops it but the client.
    let (_never_stops, never) = watch::channel(false);
    let mut stopping = stopping.unwrap_or(never);
    if *stopping.borrow() {
        return;
    }
    let mut pings =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let init_deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(init_deadline);
    metrics.websocket_opened();
    let close: Option<(u16, String)> = loop {
        tokio::select! {
            message = protocol_stream.next() => match message {
                Some(WsMessage::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    // A refused `connection_init` closes with our code, not
                    // the library's generic one.
                    let (code, reason) = match session.refusal.get() {
                        Some((code, reason)) => (*code, (*reason).to_owned()),
                        None => (code, reason),
                    };
                    break Some((code, reason));
                }
                // The client went away, or sent what ends the connection.
                None => break session.refusal.get().map(|(code, reason)| (*code, (*reason).to_owned())),
            },
            () = &mut init_deadline, if !session.initialised.load(Ordering::Relaxed) => {
                break Some((close::INIT_TIMEOUT, "Connection initialisation timeout".into()));
            }
            _ = pings.tick() => {
                let silent = last_heard.lock().expect("never poisoned").elapsed();
                if silent >= ping_interval * 2 {
                    break Some((close::TIMEOUT, "no pong: the connection seems dead".into()));
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    break Some((close::GOING_AWAY, "the server is restarting".into()));
                }
            }
        }
    };
    // Ends the connection's operations now, not when the client has gone.
    drop(protocol_stream);
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The closing handshake: our close, then the client's answer (or
        // the end of the connection), so that nothing unread is left to
        // reset the connection before the client has read our close.
        if tokio::time::timeout(CLOSING_TIME, sink.send(Message::Close(Some(frame))))
            .await
            .is_ok_and(|sent| sent.is_ok())
        {
            let _ = tokio::time::timeout(CLOSING_TIME, &mut { reader }).await;
        }
    } else {
        // The client closed: answer its close.
        let _ = tokio::time::timeout(CLOSING_TIME, sink.close()).await;
        reader.abort();
    }
    metrics.websocket_closed();
}

/// Passes the client's messages on until it closes or sends what cannot be
/// read, recording when it was last heard from. It reads on after the
/// protocol has stopped listening, until the client's close arrives.
async fn read_frames(
    mut source: futures_util::stream::SplitStream<WebSocket>,
    frames: mpsc::Sender<Vec<u8>>,
    last_heard: Arc<Mutex<Instant>>,
    session: Arc<Session>,
) {
    while let Some(message) = source.next().await {
        *last_heard.lock().expect("never poisoned") = Instant::now();
        let bytes = match message {
            Ok(Message::Text(text)) => text.as_bytes().to_vec(),
            Ok(Message::Binary(bytes)) => bytes.to_vec(),
            Ok(Message::Close(_)) => return,
            Ok(_) => continue,
            Err(error) => {
                let refusal = if is_too_big(&error) {
                    (close::TOO_BIG, "message too big")
                } else {
                    (close::PROTOCOL_ERROR, "unreadable frame")
                };
                let _ = session.refusal.set(refusal);
                return;
            }
        };
        // Nobody listening any more: read on, for the close.
        let _ = frames.send(bytes).await;
    }
}
