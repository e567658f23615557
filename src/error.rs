//! The one domain error type. Every failure a client can cause is one of these
//! variants; `graphql::errors` turns them into GraphQL errors in one place.

use std::borrow::Cow;

use serde::Serialize;
use strum::{IntoStaticStr, VariantArray};
use utoipa::ToSchema;

/// The error codes of the API contract.
// Sent by both surfaces under these names: GraphQL's `extensions.code`
// (`as_str`) and REST's `error.code` (serde); a unit test holds the two equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema, IntoStaticStr, VariantArray)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    BadUserInput,
    ServiceUnavailable,
    InternalServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credential, a bad, expired or revoked one, or a failed login. One
    /// message for all, so that nobody learns which part was wrong.
    #[error(
        "not authenticated: the credential is missing, invalid or expired, or the username or password is wrong"
    )]
    Unauthenticated,

    /// Too many failed logins lately: refused without checking the password.
    #[error("too many failed logins: try again later")]
    TooManyFailures { retry_after_seconds: u64 },

    #[error("not allowed to perform this operation")]
    Forbidden,

    #[error("{0} not found")]
    NotFound(&'static str),

    #[error("{message}")]
    Conflict {
        field: Option<&'static str>,
        message: Cow<'static, str>,
    },

    #[error("{message}")]
    BadUserInput {
        field: Cow<'static, str>,
        message: Cow<'static, str>,
    },

    /// A deadlock or serialization failure: the transaction may succeed if
    /// run again (see `db::retrying`); if it still fails, the client may retry.
    #[error("the service is temporarily unavailable, try again shortly")]
    Transient(#[source] diesel::result::Error),

    /// Too much work of one kind is queued (password hashing): refused at
    /// once rather than queued without bound; the client may retry.
    #[error("the server is busy, try again shortly")]
    Overloaded { retry_after_seconds: u64 },

    /// The database could not be reached in time; the client may retry.
    #[error("the service is temporarily unavailable, try again shortly")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// Anything unexpected. The cause is logged once and never shown to clients.
    #[error("internal server error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated | Self::TooManyFailures { .. } => ErrorCode::Unauthenticated,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::Unavailable(_) | Self::Transient(_) | Self::Overloaded { .. } => {
                ErrorCode::ServiceUnavailable
            }
            Self::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    pub fn bad_input(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// The same validation error, reported against another input field name.
    pub fn for_field(self, field: &'static str) -> Self {
        match self {
            Self::BadUserInput { message, .. } => Self::BadUserInput {
                field: field.into(),
                message: message.replace("`password`", &format!("`{field}`")).into(),
            },
            other => other,
        }
    }

    /// When the client may retry, for `extensions.retryAfterSeconds`.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::TooManyFailures {
                retry_after_seconds,
            }
            | Self::Overloaded {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// The input field the error is about, for `extensions.field`.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadUserInput { field, .. } => Some(field),
            Self::Conflict { field, .. } => *field,
            _ => None,
        }
    }
}

/// Names of the unique indexes whose violation means "username taken".
const USERNAME_CONSTRAINTS: [&str; 2] = ["customers_username_live_key", "agents_username_live_key"];

/// PostgreSQL messages (diesel does not expose SQLSTATE codes) of failures
/// that mean "the database is not available right now".
const UNAVAILABLE_MESSAGES: [&str; 5] = [
    "canceling statement due to statement timeout",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "sorry, too many clients already",
];

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
                if info
                    .constraint_name()
                    .is_some_and(|c| USERNAME_CONSTRAINTS.contains(&c)) =>
            {
                Self::Conflict {
                    field: Some("username"),
                    message: "the username is already taken".into(),
                }
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Self::Transient(error)
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if info.message().contains("deadlock detected") =>
            {
                Self::Transient(error)
            }
            // Connection-level failures: closed, unreachable, or mid-restart.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )
            | Error::BrokenTransactionManager => Self::Unavailable(error.into()),
            Error::DatabaseError(_, ref info)
                if UNAVAILABLE_MESSAGES
                    .iter()
                    .any(|m| info.message().contains(m)) =>
            {
                Self::Unavailable(error.into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// An error and all its causes on one line, for the logs and the command line
/// (never for clients). The client-facing wording of the variants that hide
/// their cause ("internal server error", "temporarily unavailable") tells an
/// operator nothing, so the line starts with the cause instead.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let (mut text, mut source) = match error.downcast_ref::<AppError>() {
        Some(AppError::Internal(cause)) => (cause.to_string(), cause.source()),
        Some(AppError::Unavailable(cause)) => {
            (format!("database unavailable: {cause}"), cause.source())
        }
        Some(AppError::Transient(cause)) => (
            format!("transaction conflict (deadlock or serialization failure): {cause}"),
            std::error::Error::source(cause),
        ),
        _ => (error.to_string(), error.source()),
    };
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_contract_code() {
        let io = || Box::new(std::io::Error::other("x"));
        let cases = [
            (AppError::Unauthenticated, "UNAUTHENTICATED"),
            (
                AppError::TooManyFailures {
                    retry_after_seconds: 3,
                },
                "UNAUTHENTICATED",
            ),
            (AppError::Forbidden, "FORBIDDEN"),
            (AppError::NotFound("customer"), "NOT_FOUND"),
            (
                AppError::Conflict {
                    field: None,
                    message: "x".into(),
                },
                "CONFLICT",
            ),
            (AppError::bad_input("username", "x"), "BAD_USER_INPUT"),
            (AppError::Unavailable(io()), "SERVICE_UNAVAILABLE"),
            (AppError::Internal(io()), "INTERNAL_SERVER_ERROR"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code().as_str(), code, "{error:?}");
        }
    }

    #[test]
    fn both_surfaces_send_the_same_code_names() {
        for code in ErrorCode::VARIANTS {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn internal_errors_do_not_reveal_their_cause() {
        let error = AppError::internal(std::io::Error::other(
            "relation \"agents\" SELECT password_hash",
        ));
        assert_eq!(error.to_string(), "internal server error");
    }

    #[test]
    fn error_chains_name_the_cause_not_the_client_wording() {
        let error = AppError::internal(std::io::Error::other("cannot reach PostgreSQL"));
        assert_eq!(error_chain(&error), "cannot reach PostgreSQL");
        let error = AppError::Unavailable(Box::new(std::io::Error::other("timed out")));
        assert_eq!(error_chain(&error), "database unavailable: timed out");
        assert_eq!(
            error_chain(&AppError::Forbidden),
            AppError::Forbidden.to_string()
        );
    }
}
