//! Traces of the real binary, exported over OTLP/HTTP (protobuf) to the
//! test's receiver: the caller's `traceparent` is the parent, the response
//! returns the request's own, and spans nest HTTP → GraphQL operation →
//! SQL statements and argon2 work, with no secret anywhere.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};

use super::otlp::{Receiver, attribute, hex};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestDb, eventually};
use crate::process::{Process, command};

/// `bytes` random bytes (at most 16) as lowercase hex.
fn random_hex(bytes: usize) -> String {
    hex(&uuid::Uuid::new_v4().as_bytes()[..bytes])
}

/// `00-<trace id>-<span id>-<flags>`, split.
fn parse_traceparent(value: &str) -> (String, String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value}");
    assert_eq!(parts[0], "00", "traceparent {value}");
    assert_eq!(parts[1].len(), 32, "traceparent {value}");
    assert_eq!(parts[2].len(), 16, "traceparent {value}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

struct Traced {
    trace_id: String,
    /// The span id the response's `traceparent` names.
    span_id: String,
    body: Value,
}

/// POSTs `body` to `url` with a new `traceparent` (a sampled caller span).
async fn traced_post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (Traced, String) {
    let trace_id = random_hex(16);
    let caller_span = random_hex(8);
    let mut request = client
        .post(url)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .header("tracestate", "vendor=opaque")
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let header = response
        .headers()
        .get("traceparent")
        .expect("a traceparent in the response")
        .to_str()
        .unwrap()
        .to_owned();
    let (returned_trace, span_id, flags) = parse_traceparent(&header);
    assert_eq!(
        returned_trace, trace_id,
        "the response continues the caller's trace"
    );
    assert_eq!(flags, "01");
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a {status} whose body is not JSON: {text:?}"));
    (
        Traced {
            trace_id,
            span_id,
            body,
        },
        caller_span,
    )
}

/// The spans of one trace, once the span named `root_name` has arrived.
async fn trace(receiver: &Receiver, trace_id: &str, root_name: &str) -> Vec<Span> {
    eventually(
        &format!("the spans of {root_name} arrive"),
        Duration::from_secs(30),
        || async {
            let spans: Vec<Span> = receiver
                .spans()
                .into_iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .collect();
            spans.iter().any(|s| s.name == root_name).then_some(spans)
        },
    )
    .await
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} among {:?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

const SQL_NAMES: [&str; 5] = ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"];

#[tokio::test]
async fn traces_are_exported_over_otlp_with_the_callers_parent_and_nested_spans() {
    let receiver = Receiver::start().await;
    let db = TestDb::create().await;
    let mut server = command(&db.url(), &[]);
    server
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("LOG_FORMAT", "json")
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_SDK_DISABLED");
    let mut server = Process::spawn(server);
    // `base_url` reads text logs; in a JSON line the URL ends at the quote.
    let base = server.base_url().await;
    let base = base
        .split('"')
        .next()
        .unwrap()
        .trim_end_matches("/graphql")
        .to_owned();
    let client = reqwest::Client::new();
    let graphql = format!("{base}/graphql");

    // Logging in: HTTP → GraphQL operation → SQL statements and argon2.
    let (login, caller_span) = traced_post(
        &client,
        &graphql,
        None,
        &json!({
            "query": "mutation SignIn($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
            "operationName": "SignIn",
            "variables": { "u": ADMIN_USERNAME, "p": ADMIN_PASSWORD },
        }),
    )
    .await;
    let token = login.body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {}", login.body))
        .to_owned();
    let spans = trace(&receiver, &login.trace_id, "POST /graphql").await;
    let http = named(&spans, "POST /graphql");
    assert_eq!(
        hex(&http.parent_span_id),
        caller_span,
        "a child of the caller's span"
    );
    assert_eq!(
        hex(&http.span_id),
        login.span_id,
        "the response names the request's span"
    );
    assert_eq!(http.kind, SpanKind::Server as i32);
    assert_eq!(attribute(http, "http.route").as_deref(), Some("/graphql"));
    assert_eq!(
        attribute(http, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attribute(http, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(http.trace_state, "vendor=opaque");

    let operation = named(&spans, "mutation login");
    assert_eq!(operation.parent_span_id, http.span_id);
    assert_eq!(
        attribute(operation, "graphql.operation.name").as_deref(),
        Some("SignIn")
    );
    assert_eq!(
        attribute(operation, "graphql.operation.type").as_deref(),
        Some("mutation")
    );
    let under_operation = children(&spans, operation);
    let argon2 = under_operation
        .iter()
        .find(|s| s.name == "argon2 verify")
        .unwrap_or_else(|| panic!("no argon2 span under the operation: {:?}", names(&spans)));
    assert!(argon2.end_time_unix_nano > argon2.start_time_unix_nano);
    let statements: Vec<&&Span> = under_operation
        .iter()
        .filter(|s| SQL_NAMES.contains(&s.name.as_str()))
        .collect();
    assert!(
        !statements.is_empty(),
        "no SQL span under the operation: {:?}",
        names(&spans)
    );
    for statement in &statements {
        assert_eq!(statement.kind, SpanKind::Client as i32);
        assert_eq!(
            attribute(statement, "db.system.name").as_deref(),
            Some("postgresql")
        );
        let text = attribute(statement, "db.query.text").expect("the statement's text");
        assert!(!text.contains("binds"), "bind values in {text}");
    }
    assert!(
        statements
            .iter()
            .filter_map(|s| attribute(s, "db.query.text"))
            .any(|text| text.contains("$1")),
        "the login's statements take their values as placeholders"
    );

    // Creating a customer hashes its password and writes it (a bind value).
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let (created, _) = traced_post(
        &client,
        &graphql,
        Some(&token),
        &json!({
            "query": "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } } }",
            "variables": { "input": {
                "username": format!("traced-{}", &password[3..15]),
                "password": password,
                "webhookMethod": "POST",
                "webhookUri": format!("{}/hook", receiver.endpoint),
            } },
        }),
    )
    .await;
    let customer_id = created.body["data"]["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCustomer failed: {}", created.body))
        .to_owned();
    let spans = trace(&receiver, &created.trace_id, "POST /graphql").await;
    let operation = named(&spans, "mutation createCustomer");
    assert!(
        children(&spans, operation)
            .iter()
            .any(|s| s.name == "argon2 hash"),
        "{:?}",
        names(&spans)
    );
    assert!(
        spans.iter().any(|s| s.name == "INSERT"
            && s.parent_span_id == operation.span_id
            && attribute(s, "db.query.text").is_some_and(|t| t.contains("$1"))),
        "{:?}",
        names(&spans)
    );

    // DataLoaders batch in tasks of their own: their statements stay in the trace.
    let (listed, _) = traced_post(
        &client,
        &graphql,
        Some(&token),
        &json!({ "query": "{ customers(first: 5) { edges { node { id guestAgent { id } } } } }" }),
    )
    .await;
    assert!(listed.body["errors"].is_null(), "{}", listed.body);
    let spans = trace(&receiver, &listed.trace_id, "POST /graphql").await;
    let operation = named(&spans, "query customers");
    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| SQL_NAMES.contains(&s.name.as_str()))
        .collect();
    assert!(
        statements
            .iter()
            .any(|s| attribute(s, "db.query.text").is_some_and(|t| t.contains("ANY"))),
        "no batched statement: {:?}",
        names(&spans)
    );
    assert!(
        statements
            .iter()
            .all(|s| s.parent_span_id == operation.span_id),
        "every statement is a child of the operation: {:?}",
        names(&spans)
    );

    // REST: named by the route template, not the path.
    let rest = client
        .get(format!("{base}/v1.0/customers/{customer_id}"))
        .bearer_auth(&token)
        .header(
            "traceparent",
            format!("00-{}-{}-01", random_hex(16), random_hex(8)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    let (rest_trace, _, _) =
        parse_traceparent(rest.headers().get("traceparent").unwrap().to_str().unwrap());
    let spans = trace(&receiver, &rest_trace, "GET /v1.0/customers/{id}").await;
    let http = named(&spans, "GET /v1.0/customers/{id}");
    assert!(
        spans
            .iter()
            .any(|s| SQL_NAMES.contains(&s.name.as_str()) && s.parent_span_id == http.span_id),
        "{:?}",
        names(&spans)
    );

    // The customer's creation is delivered to its webhook, in a trace of its own.
    let delivery = eventually(
        "the webhook delivery's span arrives",
        Duration::from_secs(30),
        || async {
            receiver
                .spans()
                .into_iter()
                .find(|s| s.name == "webhook delivery")
        },
    )
    .await;
    assert!(delivery.parent_span_id.is_empty());
    assert_eq!(delivery.kind, SpanKind::Client as i32);
    assert_eq!(
        attribute(&delivery, "http.response.status_code").as_deref(),
        Some("204")
    );
    assert_eq!(
        attribute(&delivery, "customer_api.webhook.outcome").as_deref(),
        Some("delivered")
    );
    assert!(attribute(&delivery, "customer_api.event_id").is_some());
    // The endpoint got the attempt's own traceparent, to continue its trace.
    let sent = receiver.hook_traceparents();
    assert!(
        sent.iter()
            .map(|t| parse_traceparent(t))
            .any(|(trace, parent, _)| {
                trace == hex(&delivery.trace_id) && parent == hex(&delivery.span_id)
            }),
        "a webhook carries the delivery span's traceparent: {sent:?}"
    );
    let spans = trace(&receiver, &hex(&delivery.trace_id), "webhook delivery").await;
    assert!(
        spans
            .iter()
            .any(|s| SQL_NAMES.contains(&s.name.as_str()) && s.parent_span_id == delivery.span_id),
        "the delivery is settled under its span: {:?}",
        names(&spans)
    );

    // A request without a traceparent starts a trace of its own.
    let plain = client.get(format!("{base}/healthz")).send().await.unwrap();
    let (plain_trace, _, _) = parse_traceparent(
        plain
            .headers()
            .get("traceparent")
            .unwrap()
            .to_str()
            .unwrap(),
    );
    assert_ne!(plain_trace, login.trace_id);
    let spans = trace(&receiver, &plain_trace, "GET /healthz").await;
    assert!(named(&spans, "GET /healthz").parent_span_id.is_empty());

    // No secret in anything exported: passwords, the token.
    let raw = receiver.raw();
    for secret in [ADMIN_PASSWORD, password.as_str(), token.as_str()] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret was exported"
        );
    }
    assert!(
        receiver.service_names().iter().all(|n| n == "customer-api"),
        "{:?}",
        receiver.service_names()
    );

    // The request's log lines carry its trace id.
    let log = server.stderr();
    let marker = format!("\"trace_id\":\"{}\"", login.trace_id);
    assert!(
        log.lines()
            .any(|line| line.contains(&marker) && line.contains("graphql operation")),
        "no log line of the login with its trace id:\n{log}"
    );
}
