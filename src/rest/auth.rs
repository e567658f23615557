//! `POST /auth/login`: the original API's login, over `service::auth::login`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ErrorBody, RestError, ServerFailures};
use super::request::{JsonObject, body};
use crate::app::AppState;
use crate::error::AppResult;
use crate::extract::ClientAddress;
use crate::service;

/// Credentials of an agent.
#[derive(ToSchema)]
pub struct LoginRequest {
    /// The agent's username (case-insensitive).
    #[schema(example = "admin")]
    username: String,
    /// The agent's password.
    #[schema(write_only)]
    password: String,
}

impl LoginRequest {
    fn parse(body: &[u8]) -> AppResult<Self> {
        let mut body = JsonObject::parse(body)?;
        Ok(Self {
            username: body.required("username", "a string")?,
            password: body.required("password", "a string")?,
        })
    }
}

/// A fresh login token.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// The agent that logged in.
    #[schema(example = "admin")]
    username: String,
    /// Send as `Authorization: Bearer <token>` (or `?token=`). Shown only this once.
    token: String,
}

/// Exchanges an agent's username and password for a login token. Every
/// failure is the same 401; after repeated failures for a username or from
/// an address, attempts are refused for a while with a `Retry-After` header.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = LoginResponse),
        (status = 400, description = "The body is not `{username, password}`.", body = ErrorBody),
        (status = 401, description = "Wrong username or password, or too many failures (with `Retry-After`).", body = ErrorBody),
        ServerFailures,
    )
)]
pub(super) async fn login(
    State(state): State<AppState>,
    client: ClientAddress,
    request: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let request = LoginRequest::parse(&body(request)?)?;
    let (issued, agent) =
        service::auth::login(&state, &request.username, &request.password, client.0).await?;
    let response = LoginResponse {
        username: agent.username,
        token: issued.token,
    };
    // The token is a credential: no cache on the way may keep it.
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, Json(response)).into_response())
}
