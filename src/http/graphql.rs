//! GraphQL over HTTP at `/graphql`: POST (single operations and batches),
//! GET (queries only; GraphiQL for browsers), the status codes and media
//! types of the GraphQL-over-HTTP spec, and the request's credential and
//! client address handed to the executor.

use async_graphql::{BatchRequest, ServerError};
use async_graphql_axum::GraphQLBatchRequest;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::server::ConnectionScope;
use crate::app::AppState;
use crate::extract::{ClientAddress, Credential};
use crate::graphql::limits::Limit;
use crate::graphql::{
    BatchAnswer, GraphqlExecutor, GraphqlResponse, RequestAuth, per_request_data,
    refused_before_execution,
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

const MALFORMED_REQUEST: &str = "the request is not a valid GraphQL-over-HTTP request: \
     expected `query` (a string) with optional `operationName` (a string) and \
     `variables` and `extensions` (JSON objects)";

#[derive(Clone)]
struct HttpState {
    app: AppState,
    graphql: GraphqlExecutor,
}

impl axum::extract::FromRef<HttpState> for AppState {
    fn from_ref(state: &HttpState) -> Self {
        state.app.clone()
    }
}

/// `/graphql`, and GraphiQL's assets.
pub fn routes<S>(app: AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let graphql = GraphqlExecutor::new(app.clone());
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .with_state(HttpState { app, graphql })
        .merge(crate::graphiql::routes())
}

/// Whether the client asked for the GraphQL-over-HTTP media type, which lets
/// us use HTTP status codes for request errors.
fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE_JSON))
}

fn error_response(status: StatusCode, message: &str, code: &str, headers: &HeaderMap) -> Response {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    json_response(status, refusal(error), headers)
}

/// The answer to a request refused before any operation ran.
fn refusal(error: ServerError) -> BatchAnswer {
    BatchAnswer::Single(GraphqlResponse::General(
        async_graphql::Response::from_errors(vec![error]),
    ))
}

/// Serialises a GraphQL response, with the request id in every error.
fn json_response(status: StatusCode, mut body: BatchAnswer, headers: &HeaderMap) -> Response {
    let request_id = headers
        .get(&super::request_id::REQUEST_ID)
        .and_then(|v| v.to_str().ok());
    if let Some(id) = request_id {
        for response in body.responses_mut() {
            if let GraphqlResponse::General(response) = response {
                for error in &mut response.errors {
                    error
                        .extensions
                        .get_or_insert_with(Default::default)
                        .set("requestId", id);
                }
            }
        }
    }
    let content_type = if wants_graphql_response(headers) {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    let refused = refused_limits(&body);
    let mut response = match wire_bytes(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    response.extensions_mut().insert(refused);
    response
}

/// The body: one response, or a batch's as a list.
fn wire_bytes(body: BatchAnswer) -> serde_json::Result<Vec<u8>> {
    match body {
        // Written by the fast path: already the body.
        BatchAnswer::Single(GraphqlResponse::Written(json)) => Ok(json),
        BatchAnswer::Single(response) => {
            let mut out = Vec::new();
            write_wire(&mut out, &response)?;
            Ok(out)
        }
        BatchAnswer::Batch(responses) => {
            let mut out = vec![b'['];
            for (index, response) in responses.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_wire(&mut out, response)?;
            }
            out.push(b']');
            Ok(out)
        }
    }
}

fn write_wire(out: &mut Vec<u8>, response: &GraphqlResponse) -> serde_json::Result<()> {
    match response {
        GraphqlResponse::General(response) => serde_json::to_writer(out, &WireResponse(response)),
        GraphqlResponse::Written(json) => {
            out.extend_from_slice(json);
            Ok(())
        }
    }
}

/// A response as it goes on the wire. One that failed before execution
/// (unparsable, over a limit, invalid) has no `data` entry at all, as the
/// GraphQL spec and GraphQL over HTTP ask, rather than `"data": null`.
struct WireResponse<'a>(&'a async_graphql::Response);

impl serde::Serialize for WireResponse<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let response = self.0;
        let refused = refused_before_execution(response);
        // An operation whose every root field was skipped (`@skip`,
        // `@include`) executed and selected nothing: its data is `{}`, which
        // async-graphql writes as `null`.
        let selected_nothing =
            !refused && response.data == async_graphql::Value::Null && response.errors.is_empty();
        if !refused && !selected_nothing {
            return response.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        if selected_nothing {
            map.serialize_entry("data", &serde_json::Map::new())?;
        } else {
            map.serialize_entry("errors", &response.errors)?;
        }
        if !response.extensions.is_empty() {
            map.serialize_entry("extensions", &response.extensions)?;
        }
        map.end()
    }
}

/// Runs a GraphQL request; `read_only` ones (GET) may not hold a mutation.
async fn execute(
    state: &HttpState,
    batch: BatchRequest,
    headers: &HeaderMap,
    client: ClientAddress,
    read_only: bool,
) -> Response {
    let max = state.app.config.max_batch_size;
    let auth = RequestAuth::new(Credential::of(headers));
    let batch = match batch {
        BatchRequest::Batch(requests) if requests.len() > max => {
            let error = Limit::Batch.error(format!("a batch may hold at most {max} operations"));
            return json_response(StatusCode::BAD_REQUEST, refusal(error), headers);
        }
        BatchRequest::Single(request) => {
            BatchRequest::Single(per_request_data(request, &state.app, auth, client))
        }
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests
                .into_iter()
                .map(|r| per_request_data(r, &state.app, auth.clone(), client))
                .collect(),
        ),
    };
    let response = state.graphql.execute_batch(batch, read_only).await;
    // Under application/graphql-response+json, a request that failed before
    // execution (unparsable or invalid document: no data, and errors without
    // a path) is a 400; errors raised by fields still answer 200.
    let status = match &response {
        BatchAnswer::Single(r)
            if wants_graphql_response(headers) && r.refused_before_execution() =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    json_response(status, response, headers)
}

async fn graphql_post(
    State(state): State<HttpState>,
    client: ClientAddress,
    headers: HeaderMap,
    request: Result<GraphQLBatchRequest, async_graphql_axum::rejection::GraphQLRejection>,
) -> Response {
    if let Some(refusal) = unsupported_content_type(&headers) {
        return refusal;
    }
    match request {
        Ok(request) => execute(&state, request.into_inner(), &headers, client, false).await,
        Err(rejection) if rejection.0.to_string().contains("length limit exceeded") => {
            let error =
                Limit::BodySize.error("the request body is larger than this server accepts");
            json_response(StatusCode::PAYLOAD_TOO_LARGE, refusal(error), &headers)
        }
        // The parser's message quotes the input (a password in `variables`
        // would come back): say what is expected instead.
        Err(_) => error_response(
            StatusCode::BAD_REQUEST,
            MALFORMED_REQUEST,
            "BAD_USER_INPUT",
            &headers,
        ),
    }
}

async fn graphql_get(
    State(state): State<HttpState>,
    client: ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    socket: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    scope: Option<Extension<Arc<ConnectionScope>>>,
) -> Response {
    if is_websocket_upgrade(&headers) {
        return match socket {
            Ok(socket) => super::websocket::upgrade(
                socket,
                state.app.clone(),
                state.graphql.clone(),
                client,
                scope.map(|Extension(scope)| scope),
            ),
            Err(rejection) => rejection.into_response(),
        };
    }
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let query = query.unwrap_or_default();
    if accepts_html && !query.contains("query=") {
        return crate::graphiql::page();
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                MALFORMED_REQUEST,
                "BAD_USER_INPUT",
                &headers,
            );
        }
    };
    // GET must not change anything: the executor refuses mutations in the
    // document itself, so persisted (APQ) documents are covered too.
    let mut response = execute(
        &state,
        BatchRequest::Single(request),
        &headers,
        client,
        true,
    )
    .await;
    if is_refused_mutation(&response) {
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn is_refused_mutation(response: &Response) -> bool {
    response
        .extensions()
        .get::<RefusedLimits>()
        .is_some_and(|limits| limits.0.contains(&Limit::MutationOverGet))
}

/// The limits that refused a response's operations, for the handler to pick a status.
#[derive(Clone, Debug, Default)]
struct RefusedLimits(Vec<Limit>);

fn refused_limits(body: &BatchAnswer) -> RefusedLimits {
    RefusedLimits(
        body.responses()
            .iter()
            .flat_map(GraphqlResponse::errors)
            .filter_map(|e| e.extensions.as_ref()?.get("limit"))
            .filter_map(|v| match v {
                async_graphql::Value::String(name) => Limit::parse(name),
                _ => None,
            })
            .collect(),
    )
}

/// GraphQL over HTTP takes `application/json`; anything else is a 415 that says so.
fn unsupported_content_type(headers: &HeaderMap) -> Option<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        return None;
    }
    Some(error_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the request as Content-Type: application/json",
        "BAD_USER_INPUT",
        headers,
    ))
}
