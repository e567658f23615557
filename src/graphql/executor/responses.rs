//! What every response gets on its way out: capped errors, each with its
//! code, and parse errors that never quote the document.

use std::sync::Arc;

use async_graphql::{Response, ServerError};

use crate::error::AppError;
use crate::graphql::errors::assign_code;

/// One operation's answer: async-graphql's response, or a successful one
/// (data, no errors) that the fast path wrote as JSON from the rows.
pub enum GraphqlResponse {
    General(Response),
    /// The response's JSON, `{"data":…}`.
    Written(Vec<u8>),
}

/// The answers to one HTTP request: one operation's, or a batch's.
pub enum BatchAnswer {
    Single(GraphqlResponse),
    Batch(Vec<GraphqlResponse>),
}

impl GraphqlResponse {
    pub fn errors(&self) -> &[ServerError] {
        match self {
            Self::General(response) => &response.errors,
            Self::Written(_) => &[],
        }
    }

    /// Failed before execution: unparsable, over a limit, or invalid.
    pub fn refused_before_execution(&self) -> bool {
        match self {
            Self::General(response) => refused_before_execution(response),
            Self::Written(_) => false,
        }
    }

    /// As async-graphql's response, for what speaks its protocol (the
    /// WebSocket transport). Written JSON is read back into values: the
    /// same keys in the same order, the same strings and numbers.
    pub fn into_response(self) -> Response {
        match self {
            Self::General(response) => response,
            Self::Written(json) => match serde_json::from_slice::<Response>(&json) {
                Ok(response) => response,
                Err(error) => {
                    let cause = format!("the fast path wrote JSON it cannot read back: {error}");
                    let mut response =
                        Response::from_errors(vec![failure(AppError::internal(cause))]);
                    finish_errors(&mut response);
                    response
                }
            },
        }
    }
}

impl BatchAnswer {
    pub fn responses(&self) -> &[GraphqlResponse] {
        match self {
            Self::Single(response) => std::slice::from_ref(response),
            Self::Batch(responses) => responses,
        }
    }

    pub fn responses_mut(&mut self) -> &mut [GraphqlResponse] {
        match self {
            Self::Single(response) => std::slice::from_mut(response),
            Self::Batch(responses) => responses,
        }
    }
}

/// Errors one response carries at most; the rest are summed up in one more.
/// Invalid documents can draw an error per token, and nobody reads the 21st.
pub const MAX_ERRORS_PER_RESPONSE: usize = 20;

/// An error of the server's own raised outside any resolver: it carries
/// its `AppError`, so that `assign_code` gives it its code (and logs the
/// cause of an internal one) as for any resolver's.
pub(super) fn failure(error: AppError) -> ServerError {
    let mut server_error = ServerError::new(error.to_string(), None);
    server_error.source = Some(Arc::new(error));
    server_error
}

/// Failed before execution: unparsable, over a limit, or invalid (no data,
/// and no error belongs to a field).
pub fn refused_before_execution(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && response.is_err()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A parse error with its position and reason only: pest's own message
/// quotes the offending line, which may hold a password in a literal.
pub(super) fn parse_error(error: async_graphql::parser::Error) -> ServerError {
    use async_graphql::parser::Error;
    let positions: Vec<async_graphql::Pos> = error.positions().collect();
    let message = match &error {
        Error::Syntax { message, .. } => {
            // pest ends its message with `= expected …` (grammar rule names).
            let reason = message
                .lines()
                .last()
                .and_then(|line| line.trim().strip_prefix("= "))
                .map(|reason| reason.replace('_', " "))
                .filter(|reason| reason.len() <= 200)
                .unwrap_or_else(|| "unexpected input".to_owned());
            format!("syntax error: {reason}")
        }
        other => other.to_string(),
    };
    let mut error = ServerError::new(message, positions.first().copied());
    error.locations = positions;
    error
}

/// Orders and caps a response's errors and gives each its code.
pub(super) fn finish_errors(response: &mut Response) {
    in_document_order(&mut response.errors);
    cap_errors(&mut response.errors);
    for error in &mut response.errors {
        assign_code(error);
    }
}

/// Sorts errors by where they are in the document, then by path: async-graphql
/// reports them as fields complete (and its validation in hash-map order),
/// so the same request could list them differently each time.
fn in_document_order(errors: &mut [ServerError]) {
    use async_graphql::PathSegment;
    if errors.len() < 2 {
        return;
    }
    errors.sort_by_cached_key(|error| {
        let at = error.locations.first().map(|p| (p.line, p.column));
        let path: Vec<(usize, String)> = error
            .path
            .iter()
            .map(|segment| match segment {
                PathSegment::Index(index) => (*index, String::new()),
                PathSegment::Field(name) => (usize::MAX, name.clone()),
            })
            .collect();
        (at, path, error.message.clone())
    });
}

/// Keeps the first errors and sums up the rest in one more.
fn cap_errors(errors: &mut Vec<ServerError>) {
    if errors.len() <= MAX_ERRORS_PER_RESPONSE {
        return;
    }
    let omitted = errors.len() - MAX_ERRORS_PER_RESPONSE;
    errors.truncate(MAX_ERRORS_PER_RESPONSE);
    errors.push(ServerError::new(
        format!("{omitted} more errors were left out of this response"),
        None,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(response: &Response) -> String {
        let extensions = response.errors[0].extensions.as_ref().expect("extensions");
        extensions.get("code").expect("a code").to_string()
    }

    /// Raised outside any resolver, the server's own failures still get
    /// their code, and an internal one never shows its cause.
    #[test]
    fn the_servers_own_failures_get_their_codes() {
        let mut internal =
            Response::from_errors(vec![failure(AppError::internal("a secret cause"))]);
        finish_errors(&mut internal);
        assert_eq!(code(&internal), "\"INTERNAL_SERVER_ERROR\"");
        assert!(!internal.errors[0].message.contains("secret"));

        let mut stopping = Response::from_errors(vec![failure(AppError::Unavailable(
            "the server is shutting down".into(),
        ))]);
        finish_errors(&mut stopping);
        assert_eq!(code(&stopping), "\"SERVICE_UNAVAILABLE\"");
    }
}
