//! The invariants every reply must keep, and how far each request got.

use serde_json::Value;

use super::documents::Expect;
use super::values::clip;

/// The error codes of the API contract (README, "Errors"; APQ's code).
pub const CODES: [&str; 7] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "BAD_USER_INPUT",
    "SERVICE_UNAVAILABLE",
    "PERSISTED_QUERY_NOT_FOUND",
];

/// The limits a refusal may name in `extensions.limit`.
const LIMITS: [&str; 12] = [
    "DEPTH",
    "COMPLEXITY",
    "ALIASES",
    "ROOT_FIELDS",
    "INTROSPECTION",
    "INTROSPECTION_DEPTH",
    "NESTING",
    "TOKENS",
    "SELECTIONS",
    "BATCH",
    "BODY_SIZE",
    "MUTATION_OVER_GET",
];

/// One response objects carries at most 20 errors and a summary.
const MAX_ERRORS: usize = 21;

/// How far a request got, least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Refused by the HTTP layer (media type, malformed request, method).
    Transport,
    /// Refused before execution: unparsable, invalid, unknown persisted query.
    Invalid,
    /// Refused by a documented limit.
    Limit,
    /// Reached the resolvers (GraphQL: data, or an error with a path) or
    /// the service layer (REST).
    Executed,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, clip(&self.text(), 1500))
    }
}

/// No secret the fuzzer sent (password or credential) comes back.
pub fn no_secrets(reply: &Reply, secrets: &[String]) -> Result<(), String> {
    let text = reply.text();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            return Err(format!(
                "the reply carries a secret the fuzzer sent ({}…)",
                &secret[..secret.len().min(12)]
            ));
        }
    }
    Ok(())
}

fn errors(object: &Value) -> &[Value] {
    object
        .get("errors")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn has_path(error: &Value) -> bool {
    error
        .get("path")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty())
}

fn limit_of(error: &Value) -> Option<&str> {
    error.pointer("/extensions/limit").and_then(Value::as_str)
}

fn code_of(error: &Value) -> Option<&str> {
    error.pointer("/extensions/code").and_then(Value::as_str)
}

pub fn limits(object: &Value) -> Vec<String> {
    errors(object)
        .iter()
        .filter_map(limit_of)
        .map(str::to_owned)
        .collect()
}

pub fn codes(object: &Value) -> Vec<&str> {
    errors(object).iter().filter_map(code_of).collect()
}

/// Refused before execution: on the wire, no `data` entry at all.
pub fn refused(object: &Value) -> bool {
    object.get("data").is_none()
}

/// The status, media type and body of a `/graphql` reply; returns its
/// response objects (one, or one per operation of a batch).
pub fn graphql(reply: &Reply) -> Result<Vec<Value>, String> {
    if ![200, 400, 405, 413, 415, 503].contains(&reply.status) {
        return Err(format!("unexpected status {}", reply.status));
    }
    if !reply.header("content-type").contains("json") {
        return Err(format!(
            "content type {:?} is not JSON",
            reply.header("content-type")
        ));
    }
    let body: Value =
        serde_json::from_slice(&reply.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let objects = match body {
        Value::Array(items) => {
            if reply.status != 200 {
                return Err(format!("a batch answered with status {}", reply.status));
            }
            items
        }
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(format!(
                "the body is neither an object nor an array: {other}"
            ));
        }
    };
    for object in &objects {
        response(object)?;
    }
    let all: Vec<&Value> = objects.iter().flat_map(errors).collect();
    let any_code = |code: &str| all.iter().any(|e| code_of(e) == Some(code));
    let any_limit = |limit: &str| all.iter().any(|e| limit_of(e) == Some(limit));
    match reply.status {
        503 if !any_code("SERVICE_UNAVAILABLE") => {
            return Err("503 without SERVICE_UNAVAILABLE".into());
        }
        405 if !any_limit("MUTATION_OVER_GET") || reply.header("allow") != "POST" => {
            return Err("405 that is not a refused mutation over GET".into());
        }
        413 if !any_limit("BODY_SIZE") => return Err("413 without the BODY_SIZE limit".into()),
        415 if !any_code("BAD_USER_INPUT") => return Err("415 without BAD_USER_INPUT".into()),
        _ => {}
    }
    Ok(objects)
}

/// One GraphQL response object.
pub fn response(object: &Value) -> Result<Class, String> {
    let Value::Object(map) = object else {
        return Err(format!("a response that is not an object: {object}"));
    };
    if let Some(errors) = map.get("errors") {
        let Some(errors) = errors.as_array() else {
            return Err("`errors` is not a list".into());
        };
        if errors.is_empty() {
            return Err("`errors` is present but empty".into());
        }
        if errors.len() > MAX_ERRORS {
            return Err(format!(
                "{} errors in one response (at most {MAX_ERRORS})",
                errors.len()
            ));
        }
        for error in errors {
            if !error.get("message").is_some_and(Value::is_string) {
                return Err(format!("an error without a message: {error}"));
            }
            match code_of(error) {
                None => return Err(format!("an error without extensions.code: {error}")),
                Some(code) if !CODES.contains(&code) => {
                    return Err(format!(
                        "an error with a code outside the contract: {error}"
                    ));
                }
                Some(_) => {}
            }
            if let Some(limit) = limit_of(error)
                && !LIMITS.contains(&limit)
            {
                return Err(format!("an unknown limit: {error}"));
            }
        }
    }
    let errors = errors(object);
    let with_path = errors.iter().any(has_path);
    match map.get("data") {
        None if errors.is_empty() => Err("neither data nor errors".into()),
        None if with_path => Err("errors with a path, but no data".into()),
        None => Ok(if errors.iter().any(|e| limit_of(e).is_some()) {
            Class::Limit
        } else {
            Class::Invalid
        }),
        // `{"data": null}` alone is what async-graphql answers when every
        // root field was skipped (`@skip`): executed, with nothing to show.
        Some(Value::Null) if !errors.is_empty() && !with_path => Err(
            "\"data\": null in a response that failed before execution (it must have no data entry)"
                .into(),
        ),
        Some(_) => Ok(Class::Executed),
    }
}

/// What the document's shape determines.
pub fn expectation(object: &Value, expect: &Expect) -> Result<(), String> {
    let limits = limits(object);
    let hit = |set: &[&str]| limits.iter().any(|l| set.contains(&l.as_str()));
    match expect {
        Expect::Any => Ok(()),
        Expect::Limit(set) if !hit(set) || !refused(object) => {
            Err(format!("expected a refusal by {set:?}"))
        }
        Expect::NotLimit(set) if hit(set) => Err(format!("refused by {limits:?}, not expected")),
        Expect::Refused if !refused(object) => Err("expected a refusal before execution".into()),
        Expect::RefusedWith(code) if !refused(object) || !codes(object).contains(code) => {
            Err(format!("expected a refusal with {code}"))
        }
        _ => Ok(()),
    }
}

/// A reply of the REST API.
pub fn rest(reply: &Reply) -> Result<Class, String> {
    if reply.status >= 500 && reply.status != 503 {
        return Err(format!("status {}", reply.status));
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("a REST reply that is not JSON ({e})"))?;
    if reply.status < 300 {
        if contains_key(&body, "password") || contains_key(&body, "password_hash") {
            return Err("a REST reply with a password field".into());
        }
        return Ok(Class::Executed);
    }
    let Some(code) = body.pointer("/error/code").and_then(Value::as_str) else {
        return Err("a REST error without error.code".into());
    };
    if !body.pointer("/error/message").is_some_and(Value::is_string) {
        return Err("a REST error without error.message".into());
    }
    let statuses: &[u16] = match code {
        "BAD_USER_INPUT" => &[400, 405, 413],
        "UNAUTHENTICATED" => &[401],
        "FORBIDDEN" => &[403],
        "NOT_FOUND" => &[404],
        "CONFLICT" => &[409],
        "SERVICE_UNAVAILABLE" => &[503],
        other => return Err(format!("a REST error code outside the contract: {other}")),
    };
    if !statuses.contains(&reply.status) {
        return Err(format!("{code} with status {}", reply.status));
    }
    if reply.status == 401 && reply.header("www-authenticate") != "Bearer" {
        return Err("401 without WWW-Authenticate: Bearer".into());
    }
    Ok(match reply.status {
        403 | 409 => Class::Executed,
        413 => Class::Limit,
        405 => Class::Transport,
        _ => Class::Invalid,
    })
}

pub fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == key || contains_key(v, key)),
        Value::Array(items) => items.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}
