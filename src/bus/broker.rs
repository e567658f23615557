//! The broker side: one confirming channel per connection, and how a
//! trouble with it (or with the database) is logged.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::time::Instant;

use super::message::{PUBLISHER, message_body, properties};
use super::{CONFIRM_TIMEOUT, CONNECT_TIMEOUT};
use crate::db::models::event::FollowedEvent;
use crate::error::{AppError, AppResult};

/// Logs a trouble at warn once when it starts, at debug while it lasts,
/// and at info when it ends.
pub(super) struct Outage {
    what: &'static str,
    exchange: String,
    since: Option<Instant>,
}

impl Outage {
    pub(super) fn new(what: &'static str, exchange: &str) -> Self {
        Self {
            what,
            exchange: exchange.to_owned(),
            since: None,
        }
    }

    pub(super) fn failed(&mut self, error: &str) {
        let exchange = &self.exchange;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(%exchange, %error, "{}", self.what);
        } else {
            tracing::debug!(%exchange, %error, "{}", self.what);
        }
    }

    pub(super) fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                exchange = %self.exchange,
                lasted_ms = since.elapsed().as_millis() as u64,
                "{}: over",
                self.what.split(';').next().unwrap_or(self.what)
            );
        }
    }
}

/// A connection to the broker with one confirming channel, on which the
/// exchange is declared.
pub(super) struct Broker {
    connection: Connection,
    channel: lapin::Channel,
}

impl Broker {
    pub(super) async fn connect(url: &str, exchange: &str) -> AppResult<Self> {
        let connecting = async {
            let properties = ConnectionProperties::default()
                .with_connection_name(format!("{PUBLISHER} customer-api").into());
            let connection = Connection::connect(url, properties).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .exchange_declare(
                    exchange.into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(Self {
                connection,
                channel,
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(connected) => connected.map_err(AppError::internal),
            Err(_) => Err(AppError::internal("connecting to the broker timed out")),
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes `batch` in order and waits until the broker has confirmed
    /// every message of it.
    pub(super) async fn publish(&self, exchange: &str, batch: &[FollowedEvent]) -> AppResult<()> {
        let publishing = async {
            let mut confirms = Vec::with_capacity(batch.len());
            for followed in batch {
                let event = &followed.event;
                let confirm = self
                    .channel
                    .basic_publish(
                        exchange.into(),
                        event.type_.as_str().into(),
                        BasicPublishOptions::default(),
                        &message_body(&event.type_, &event.data),
                        properties(event),
                    )
                    .await
                    .map_err(AppError::internal)?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                let confirmation = confirm.await.map_err(AppError::internal)?;
                if !confirmation.is_ack() {
                    return Err(AppError::internal(
                        "the broker refused a message (nack); publishing it again",
                    ));
                }
            }
            Ok(())
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, publishing).await {
            Ok(published) => published,
            Err(_) => Err(AppError::internal(
                "the broker did not confirm in time; publishing again",
            )),
        }
    }
}
