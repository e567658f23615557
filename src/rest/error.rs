//! The one place where errors become REST responses: an HTTP status that fits
//! the error's code, and a JSON body
//! `{"error": {"code", "message", "field"?, "retry_after_seconds"?}}`.
//! Internal causes are logged here, once, and never shown.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response as ResponseDoc, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use crate::error::{AppError, ErrorCode, error_chain};

/// A failed REST request.
#[derive(Debug)]
pub enum RestError {
    App(AppError),
    /// The body is larger than the server accepts.
    BodyTooLarge,
    /// No endpoint at this path.
    NoSuchEndpoint,
    /// The endpoint exists but not for this method (the `Allow` header lists those it has).
    MethodNotAllowed,
    /// The request did not finish within the server's deadline.
    DeadlinePassed,
    /// The handler failed unexpectedly (it panicked).
    Crashed,
}

impl From<AppError> for RestError {
    fn from(error: AppError) -> Self {
        Self::App(error)
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: the same codes as the GraphQL API's `extensions.code`.
    pub code: ErrorCode,
    /// For people; never reveals internals, nor whether a username exists.
    pub message: String,
    /// The request field (body field or query parameter, in snake_case) the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// After a refused login: how long to wait before trying again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// The failures any endpoint may answer with, for its documented `responses`.
pub struct ServerFailures;

impl IntoResponses for ServerFailures {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        documented([
            ("500", "Internal error; nothing internal is shown."),
            ("503", "The database is unavailable; retry."),
        ])
    }
}

/// The refusal of an endpoint that needs a credential, for its documented `responses`.
pub struct CredentialRefused;

impl IntoResponses for CredentialRefused {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        documented([("401", "No valid credential.")])
    }
}

/// Error responses by status, each with an `ErrorBody`.
fn documented<const N: usize>(
    responses: [(&str, &str); N],
) -> BTreeMap<String, RefOr<ResponseDoc>> {
    responses
        .into_iter()
        .map(|(status, description)| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build();
            (status.to_owned(), response.into())
        })
        .collect()
}

fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The service layer names fields as the GraphQL API does (`webhookUri`);
/// REST clients know them in snake_case (`webhook_uri`).
fn snake_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 4);
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl RestError {
    fn parts(self) -> (StatusCode, ErrorDetail) {
        let transport = |status, code, message: &str, field: Option<&str>| {
            let detail = ErrorDetail {
                code,
                message: message.to_owned(),
                field: field.map(str::to_owned),
                retry_after_seconds: None,
            };
            (status, detail)
        };
        let app = match self {
            Self::App(app) => app,
            Self::BodyTooLarge => {
                return transport(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BadUserInput,
                    "the request body is too large",
                    Some("body"),
                );
            }
            Self::NoSuchEndpoint => {
                return transport(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "no such endpoint",
                    None,
                );
            }
            Self::DeadlinePassed => {
                return transport(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ServiceUnavailable,
                    "the request did not finish within the server's deadline; try again",
                    None,
                );
            }
            Self::Crashed => {
                return transport(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalServerError,
                    "internal server error",
                    None,
                );
            }
            Self::MethodNotAllowed => {
                return transport(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorCode::BadUserInput,
                    "this endpoint does not support this method; see the Allow header",
                    None,
                );
            }
        };
        // By code, not variant, so that any new kind of outage is logged too.
        if matches!(
            app.code(),
            ErrorCode::InternalServerError | ErrorCode::ServiceUnavailable
        ) {
            tracing::error!(error = %error_chain(&app), "REST request failed");
        }
        let mut message = app.to_string();
        let field = app.field().map(|field| {
            let rest = snake_case(field);
            if rest != field {
                message = message.replace(&format!("`{field}`"), &format!("`{rest}`"));
            }
            rest
        });
        let detail = ErrorDetail {
            code: app.code(),
            message,
            field,
            retry_after_seconds: app.retry_after_seconds(),
        };
        (status(app.code()), detail)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let (status, error) = self.parts();
        let retry_after = error.retry_after_seconds;
        let mut response = (status, Json(ErrorBody { error })).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(super) async fn no_such_endpoint() -> RestError {
    RestError::NoSuchEndpoint
}

pub(super) async fn method_not_allowed() -> RestError {
    RestError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(error: AppError) -> (StatusCode, serde_json::Value) {
        let (status, detail) = RestError::App(error).parts();
        (status, serde_json::to_value(detail).unwrap())
    }

    #[test]
    fn every_code_has_its_status_and_contract_name() {
        let io = || Box::new(std::io::Error::other("x"));
        let cases = [
            (AppError::Unauthenticated, 401),
            (
                AppError::TooManyFailures {
                    retry_after_seconds: 3,
                },
                401,
            ),
            (AppError::Forbidden, 403),
            (AppError::NotFound("customer"), 404),
            (
                AppError::Conflict {
                    field: Some("username"),
                    message: "taken".into(),
                },
                409,
            ),
            (AppError::bad_input("username", "x"), 400),
            (AppError::Unavailable(io()), 503),
            (AppError::Internal(io()), 500),
        ];
        for (error, expected) in cases {
            let code = error.code();
            let (status, body) = parts(error);
            assert_eq!(status.as_u16(), expected, "{code:?}");
            assert_eq!(body["code"], code.as_str(), "{code:?}");
        }
    }

    #[test]
    fn fields_and_messages_use_snake_case_names() {
        let (status, body) = parts(AppError::bad_input(
            "webhookUri",
            "`webhookUri` must be empty or an absolute http(s) URL",
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "webhook_uri");
        assert_eq!(
            body["message"],
            "`webhook_uri` must be empty or an absolute http(s) URL"
        );
        let (_, body) = parts(AppError::bad_input("permissionIds", "`permissionIds` x"));
        assert_eq!(body["field"], "permission_ids");
        let (_, body) = parts(AppError::bad_input("username", "`username` x"));
        assert_eq!(body["field"], "username");
        assert_eq!(body["message"], "`username` x");
    }

    #[test]
    fn internal_errors_show_nothing_internal() {
        let (status, body) = parts(AppError::internal(
            "relation \"agents\" SELECT password_hash",
        ));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["message"], "internal server error");
        assert!(!body.to_string().contains("password_hash"));
        assert!(body.get("field").is_none());
    }

    #[test]
    fn refused_logins_carry_retry_after() {
        let response = RestError::App(AppError::TooManyFailures {
            retry_after_seconds: 42,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
