//! Reading REST requests: query parameters, JSON bodies with errors that name
//! their field, and the caller's credential.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::RestError;
use crate::app::AppState;
use crate::auth::{Principal, access_key};
use crate::error::{AppError, AppResult};
use crate::extract::Credential;
use crate::service;

/// The query string's parameters. An empty value counts as absent, and the
/// first of repeated parameters wins.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }
}

/// The resource id in the path: a UUID, or `BAD_USER_INPUT` naming `id`.
pub fn path_id(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> AppResult<uuid::Uuid> {
    path.ok()
        .and_then(|axum::extract::Path(id)| uuid::Uuid::try_parse(&id).ok())
        .ok_or_else(|| AppError::bad_input("id", "`id` must be a UUID"))
}

/// The request body, or why it could not be read.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RestError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RestError::BodyTooLarge
        } else {
            AppError::bad_input("body", "the request body could not be read").into()
        }
    })
}

/// A JSON object body, read field by field so that each error names its
/// field. Fields it does not know are ignored, as the original API did.
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    pub fn parse(body: &[u8]) -> AppResult<Self> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(AppError::bad_input(
                "body",
                "the request body must be a JSON object",
            )),
            // Syntax errors tell where, never what: no input is echoed back.
            Err(error) => Err(AppError::bad_input(
                "body",
                format!("the request body is not valid JSON: {error}"),
            )),
        }
    }

    /// A field that must be present and not null.
    pub fn required<T: DeserializeOwned>(
        &mut self,
        field: &'static str,
        expected: &str,
    ) -> AppResult<T> {
        self.optional(field, expected)?
            .ok_or_else(|| AppError::bad_input(field, format!("`{field}` is required")))
    }

    /// A field that may be absent or null, both meaning "not given".
    pub fn optional<T: DeserializeOwned>(
        &mut self,
        field: &'static str,
        expected: &str,
    ) -> AppResult<Option<T>> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            // serde's own message would quote the value, which may be a password.
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|_| AppError::bad_input(field, format!("`{field}` must be {expected}"))),
        }
    }
}

/// The one credential the request presents: `Authorization: Bearer`, or the
/// original API's `?token=` (a login token or an access key) or
/// `?accesskey=` (an access key only).
fn presented_credential(bearer: &Credential, query: &QueryParams) -> AppResult<String> {
    let bearer = match bearer {
        Credential::None => None,
        Credential::Bearer(token) => Some(token.clone()),
        Credential::Malformed => return Err(AppError::Unauthenticated),
    };
    let access_key = query.get("accesskey");
    if access_key.is_some_and(|key| !access_key::is_access_key(key)) {
        return Err(AppError::Unauthenticated);
    }
    let mut presented = [
        bearer,
        query.get("token").map(str::to_owned),
        access_key.map(str::to_owned),
    ]
    .into_iter()
    .flatten();
    let first = presented.next().ok_or(AppError::Unauthenticated)?;
    // Two different credentials are a client bug; acting on either one would hide it.
    if presented.any(|other| other != first) {
        return Err(AppError::bad_input(
            "token",
            "send one credential: `Authorization: Bearer`, `token` or `accesskey`",
        ));
    }
    Ok(first)
}

/// The request's credential and query string, as read from its head.
/// Extracting it never fails, so that axum still reads the body: a refused
/// request leaves its connection usable. Handlers call `authenticate`
/// before checking anything else, so a credential error comes first.
pub struct Caller {
    bearer: Credential,
    pub query: QueryParams,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            bearer: Credential::of(&parts.headers),
            query: QueryParams::parse(parts.uri.query()),
        })
    }
}

impl Caller {
    /// The caller, as the GraphQL API would resolve the same credential.
    pub async fn authenticate(&self, state: &AppState) -> AppResult<Principal> {
        let credential = presented_credential(&self.bearer, &self.query)?;
        service::auth::resolve_credential(state, &credential).await
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::*;

    fn headers(authorization: Option<&str>) -> Credential {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        Credential::of(&headers)
    }

    #[test]
    fn query_params_decode_and_treat_empty_as_absent() {
        let query = QueryParams::parse(Some(
            "page_token=2022-02-01+00%3A00%3A00.000000&token=&page_size=5&page_size=7",
        ));
        assert_eq!(query.get("page_token"), Some("2022-02-01 00:00:00.000000"));
        assert_eq!(query.get("token"), None);
        assert_eq!(query.get("page_size"), Some("5"));
        assert_eq!(QueryParams::parse(None).get("token"), None);
    }

    #[test]
    fn one_credential_from_any_place() {
        let none = QueryParams::parse(None);
        assert_eq!(
            presented_credential(&headers(Some("Bearer abc")), &none).unwrap(),
            "abc"
        );
        assert_eq!(
            presented_credential(&headers(Some("bearer  abc ")), &none).unwrap(),
            "abc"
        );
        let token = QueryParams::parse(Some("token=abc"));
        assert_eq!(presented_credential(&headers(None), &token).unwrap(), "abc");
        let key = QueryParams::parse(Some("accesskey=vb_xyz"));
        assert_eq!(
            presented_credential(&headers(None), &key).unwrap(),
            "vb_xyz"
        );
        // The same credential twice is still one credential.
        assert_eq!(
            presented_credential(&headers(Some("Bearer abc")), &token).unwrap(),
            "abc"
        );
    }

    #[test]
    fn missing_malformed_or_conflicting_credentials_are_refused() {
        let none = QueryParams::parse(None);
        for header in [None, Some("Basic abc"), Some("Bearer "), Some("abc")] {
            let error = presented_credential(&headers(header), &none).unwrap_err();
            assert!(matches!(error, AppError::Unauthenticated), "{header:?}");
        }
        let not_a_key = QueryParams::parse(Some("accesskey=eyJhbGciOi"));
        assert!(matches!(
            presented_credential(&headers(None), &not_a_key).unwrap_err(),
            AppError::Unauthenticated
        ));
        let two = QueryParams::parse(Some("token=abc&accesskey=vb_xyz"));
        let error = presented_credential(&headers(None), &two).unwrap_err();
        assert_eq!(error.field(), Some("token"));
    }

    #[test]
    fn json_fields_name_themselves_in_errors() {
        let mut body =
            JsonObject::parse(br#"{"name": 5, "detail": null, "password": "secret-value"}"#)
                .unwrap();
        let error = body.optional::<String>("name", "a string").unwrap_err();
        assert_eq!(error.field(), Some("name"));
        assert!(!error.to_string().contains('5'));
        assert_eq!(body.optional::<String>("detail", "a string").unwrap(), None);
        let error = body.required::<String>("username", "a string").unwrap_err();
        assert_eq!(error.field(), Some("username"));
        let error = body.optional::<i32>("password", "a number").unwrap_err();
        assert!(!error.to_string().contains("secret-value"));

        for bad in [&b"[]"[..], b"\"x\"", b"{", b""] {
            let error = JsonObject::parse(bad).err().unwrap();
            assert_eq!(error.field(), Some("body"));
        }
    }
}
