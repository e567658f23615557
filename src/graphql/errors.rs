//! The one place where errors become GraphQL errors. Resolvers return
//! `AppError` with a bare `?`; async-graphql keeps it as the error's source,
//! and `assign_code` (run by `GraphqlExecutor` on every response) reads it
//! back to set `extensions.code` (and `field`), replace internal messages,
//! and log internal causes once.

use std::sync::Arc;

use async_graphql::ServerError;

use super::limits::{Limit, tag};
use crate::error::{AppError, ErrorCode, error_chain};

fn app_error(error: &ServerError) -> Option<&AppError> {
    error
        .source::<AppError>()
        .or_else(|| error.source::<Arc<AppError>>().map(|e| &**e))
}

/// Gives `error` its `extensions.code`. Errors we raised carry an `AppError`;
/// any other error with a source is an unexpected failure and is hidden;
/// errors without a source come from parsing, validation or input coercion,
/// i.e. from the client's document or variables.
pub fn assign_code(error: &mut ServerError) {
    let mut extra: Vec<(&str, async_graphql::Value)> = Vec::new();
    let code = match app_error(error) {
        Some(app) => {
            if matches!(
                app,
                AppError::Internal(_) | AppError::Unavailable(_) | AppError::Transient(_)
            ) {
                tracing::error!(error = %error_chain(app), path = ?error.path, "request failed");
            }
            if let Some(field) = app.field() {
                extra.push(("field", field.into()));
            }
            if let Some(seconds) = app.retry_after_seconds() {
                extra.push(("retryAfterSeconds", seconds.into()));
            }
            let (code, message) = (app.code(), app.to_string());
            error.message = message;
            code
        }
        None if error.source.is_some() => {
            tracing::error!(message = %error.message, path = ?error.path, "request failed with an unexpected error");
            error.message = AppError::internal("unexpected").to_string();
            ErrorCode::InternalServerError
        }
        None => {
            let has_code = error
                .extensions
                .as_ref()
                .is_some_and(|ext| ext.get("code").is_some());
            if has_code {
                return;
            }
            // The APQ protocol: clients resend the document on this code.
            if error.message == "PersistedQueryNotFound" {
                let extensions = error.extensions.get_or_insert_with(Default::default);
                extensions.set("code", "PERSISTED_QUERY_NOT_FOUND");
                return;
            }
            if let Some(limit) = Limit::of_validation_message(&error.message) {
                tag(error, limit);
                return;
            }
            ErrorCode::BadUserInput
        }
    };
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code.as_str());
    for (name, value) in extra {
        extensions.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver_error(error: AppError) -> ServerError {
        async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default())
    }

    fn code_of(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn app_errors_raised_with_question_mark_keep_their_code_and_field() {
        let mut error = resolver_error(AppError::bad_input("username", "too short"));
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"BAD_USER_INPUT\"");
        assert_eq!(
            error
                .extensions
                .as_ref()
                .unwrap()
                .get("field")
                .unwrap()
                .to_string(),
            "\"username\""
        );

        let mut error = resolver_error(AppError::Forbidden);
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"FORBIDDEN\"");
    }

    #[test]
    fn refused_logins_tell_when_to_retry() {
        let mut error = resolver_error(AppError::TooManyFailures {
            retry_after_seconds: 42,
        });
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"UNAUTHENTICATED\"");
        let retry = error
            .extensions
            .as_ref()
            .unwrap()
            .get("retryAfterSeconds")
            .unwrap();
        assert_eq!(retry.to_string(), "42");
    }

    #[test]
    fn loader_errors_shared_in_an_arc_keep_their_code() {
        let mut error = async_graphql::Error::from(Arc::new(AppError::NotFound("customer")))
            .into_server_error(async_graphql::Pos::default());
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"NOT_FOUND\"");
    }

    #[test]
    fn internal_and_unknown_errors_hide_their_message() {
        let mut error = resolver_error(AppError::internal("SELECT password_hash FROM agents"));
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"INTERNAL_SERVER_ERROR\"");
        assert!(!error.message.contains("SELECT"));

        let mut error = async_graphql::Error::from(std::io::Error::other("disk /var/secret full"))
            .into_server_error(async_graphql::Pos::default());
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"INTERNAL_SERVER_ERROR\"");
        assert!(!error.message.contains("secret"));
    }

    #[test]
    fn document_errors_are_bad_user_input() {
        let mut error = ServerError::new("Unknown field \"nope\"", None);
        assign_code(&mut error);
        assert_eq!(code_of(&error), "\"BAD_USER_INPUT\"");
        assert!(error.message.contains("nope"));
    }
}
