//! What goes on the wire: the message of an event, in VoIPbin's shape.

use lapin::BasicProperties;

use crate::db::models::event::EventRow;

/// Who the platform's consumers see as the publisher (VoIPbin's service name).
pub const PUBLISHER: &str = "customer-manager";
/// The one content type of `data`.
pub const DATA_TYPE: &str = "application/json";
/// The body of an event's message, VoIPbin's common event shape:
/// `{"type", "publisher", "data_type", "data"}`.
pub fn message_body(event_type: &str, data: &serde_json::Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Message<'a> {
        r#type: &'a str,
        publisher: &'a str,
        data_type: &'a str,
        data: &'a serde_json::Value,
    }
    serde_json::to_vec(&Message {
        r#type: event_type,
        publisher: PUBLISHER,
        data_type: DATA_TYPE,
        data,
    })
    .expect("a JSON value always serializes")
}

/// Persistent, typed, and identified by the event id so that consumers can
/// drop the duplicates that at-least-once implies.
pub(super) fn properties(event: &EventRow) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(DATA_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(event.id.to_string().into())
        .with_timestamp(u64::try_from(event.tm_create.timestamp()).unwrap_or(0))
        .with_type(event.type_.as_str().into())
        .with_app_id(PUBLISHER.into())
}

/// `host:port` of an AMQP URL, for logs: never its user or password.
/// `None` when it is not an `amqp://` or `amqps://` URL with a host.
pub fn broker_host(amqp_url: &str) -> Option<String> {
    let url = url::Url::parse(amqp_url).ok()?;
    let default_port = match url.scheme() {
        "amqp" => 5672,
        "amqps" => 5671,
        _ => return None,
    };
    let host = url.host_str().filter(|host| !host.is_empty())?;
    Some(format!("{host}:{}", url.port().unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_body_is_voipbins_event_shape() {
        let data = serde_json::json!({"id": "c1", "name": "acme", "nested": {"a": [1, 2]}});
        let body = message_body("customer_updated", &data);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "type": "customer_updated",
                "publisher": "customer-manager",
                "data_type": "application/json",
                "data": data,
            })
        );
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with(r#"{"type":"customer_updated","publisher":"customer-manager","data_type":"application/json","data":{"#),
            "fields in the documented order: {text}"
        );
    }

    #[test]
    fn logs_name_the_broker_by_host_only() {
        assert_eq!(
            broker_host("amqp://guest:s3cret@rabbit.internal:5673/%2f").as_deref(),
            Some("rabbit.internal:5673")
        );
        assert_eq!(
            broker_host("amqps://user:pw@rabbit.example.com/vhost").as_deref(),
            Some("rabbit.example.com:5671")
        );
        assert_eq!(
            broker_host("amqp://127.0.0.1").as_deref(),
            Some("127.0.0.1:5672")
        );
        assert_eq!(broker_host("http://rabbit:5672"), None);
        assert_eq!(broker_host("not a url"), None);
    }

    #[test]
    fn messages_are_persistent_and_identified_by_the_event() {
        let event = EventRow {
            id: Uuid::new_v4(),
            type_: "agent_created".into(),
            customer_id: None,
            actor_id: None,
            request_id: None,
            tm_create: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            data: serde_json::json!({}),
        };
        let properties = properties(&event);
        assert_eq!(properties.delivery_mode(), &Some(2));
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.as_str()),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(
            properties.kind().as_ref().map(|kind| kind.as_str()),
            Some("agent_created")
        );
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
        assert_eq!(properties.timestamp(), &Some(1_700_000_000));
    }
}
