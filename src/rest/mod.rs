//! The original REST API of the platform's customers (`/v1.0/customers`,
//! `/v1.0/accesskeys`, `/auth/login`), kept for existing clients. A thin adapter: every handler
//! reads the original API's shapes, calls the same `service` function as the
//! GraphQL resolver, and writes the original shapes back; errors are mapped
//! to HTTP statuses in `error`. The OpenAPI document is generated from these
//! handlers and served at `/v1.0/openapi.json`.

mod access_keys;
mod auth;
mod customers;
mod error;
mod page_token;
mod request;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::app::AppState;

/// Replaces the bodiless refusals of the layers below (body limit,
/// deadline, caught panic) with REST's error body.
pub async fn refusals(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::StatusCode;
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return response;
    }
    let error = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => error::RestError::BodyTooLarge,
        StatusCode::SERVICE_UNAVAILABLE => error::RestError::DeadlinePassed,
        StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!("request handler panicked");
            error::RestError::Crashed
        }
        _ => return response,
    };
    error.into_response()
}

/// The REST routes, with their state applied, ready to merge into the
/// application's router whatever its own state is.
pub fn routes<S>(state: AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let v1 = Router::new()
        .route("/customers", get(customers::list).post(customers::create))
        .route(
            "/customers/{id}",
            get(customers::get)
                .put(customers::update)
                .delete(customers::delete),
        )
        .route(
            "/customers/{id}/line_info",
            put(customers::update_line_info),
        )
        .route(
            "/customers/{id}/permission_ids",
            put(customers::update_permission_ids),
        )
        .route("/customers/{id}/password", put(customers::update_password))
        .route("/customers/{id}/freeze", post(customers::freeze))
        .route("/customers/{id}/recover", post(customers::recover))
        .route(
            "/customer",
            get(customers::get_own).put(customers::update_own),
        )
        .route(
            "/accesskeys",
            get(access_keys::list).post(access_keys::create),
        )
        .route(
            "/accesskeys/{id}",
            get(access_keys::get)
                .put(access_keys::update)
                .delete(access_keys::delete),
        )
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::no_such_endpoint);
    let auth = Router::new()
        .route("/login", post(auth::login))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::no_such_endpoint);
    Router::new()
        .nest("/v1.0", v1)
        // A nested router's fallback does not see its prefix with a bare `/`.
        .route("/v1.0/", any(error::no_such_endpoint))
        .nest("/auth", auth)
        .route("/auth/", any(error::no_such_endpoint))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VoIPbin customer API: REST compatibility",
        description = "The original v1.0 REST endpoints for customers, served from the same \
            service layer as the GraphQL API (`/graphql`): same rules, validation and errors.\n\n\
            **Credentials**: `Authorization: Bearer <token>`, or `?token=<token>`, where the \
            token is a login token from `POST /auth/login` or an access key (`vb_…`); or \
            `?accesskey=<access key>`. Prefer the header: query strings end up in logs.\n\n\
            **Timestamps** are UTC, `YYYY-MM-DD HH:MM:SS.ffffff`; `9999-01-01 00:00:00.000000` \
            stands for a time that is not set.\n\n\
            **Paging** (`GET /v1.0/customers`): pass the `next_page_token` of a page as \
            `page_token` to get the next one, until `result` is empty. A token is \
            `YYYY-MM-DD HH:MM:SS.ffffff_<id>`: the `tm_create` of the page's last customer, \
            `_`, and that customer's id, so customers created at the same instant are never \
            skipped nor repeated. A bare timestamp is accepted too and lists the customers \
            created strictly before it, as the original API did.\n\n\
            **Errors** are `{\"error\": {\"code\", \"message\", \"field\"?, \
            \"retry_after_seconds\"?}}` with the HTTP status of the code: `BAD_USER_INPUT` \
            400 (`field` names the body field or query parameter), `UNAUTHENTICATED` 401, \
            `FORBIDDEN` 403, `NOT_FOUND` 404, `CONFLICT` 409, `INTERNAL_SERVER_ERROR` 500, \
            `SERVICE_UNAVAILABLE` 503."
    ),
    paths(
        customers::list,
        customers::get,
        customers::create,
        customers::delete,
        customers::update,
        customers::update_line_info,
        customers::update_permission_ids,
        customers::update_password,
        customers::freeze,
        customers::recover,
        customers::get_own,
        customers::update_own,
        auth::login,
        access_keys::list,
        access_keys::create,
        access_keys::get,
        access_keys::update,
        access_keys::delete
    ),
    modifiers(&Credentials),
    tags(
        (name = "customers", description = "Accounts of the platform."),
        (name = "auth", description = "Logging in."),
        (name = "accesskeys", description = "Long-lived credentials of a customer.")
    )
)]
struct ApiDoc;

/// The ways to present a credential.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A login token from `POST /auth/login`, or an access key (`vb_…`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A login token or an access key, as a query parameter.",
            ))),
        );
        components.add_security_scheme(
            "accesskey",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "accesskey",
                "An access key (`vb_…`), as a query parameter.",
            ))),
        );
    }
}

/// The OpenAPI document of the REST endpoints, as served and as checked in
/// at `openapi.json`.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// `GET /v1.0/openapi.json`.
async fn openapi() -> impl IntoResponse {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(openapi_json);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
}
