//! What every response gets on its way out: capped errors, each with its
//! code, and parse errors that never quote the document.

use async_graphql::{Response, ServerError};

use crate::graphql::errors::assign_code;

/// Errors one response carries at most; the rest are summed up in one more.
/// Invalid documents can draw an error per token, and nobody reads the 21st.
pub const MAX_ERRORS_PER_RESPONSE: usize = 20;

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
