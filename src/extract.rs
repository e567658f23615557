//! What both API surfaces read from an HTTP request: the client's address
//! (for the login limiter) and the credential in its `Authorization` header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::AppState;

/// The client's IP address: the TCP peer, or behind a trusted proxy
/// (`TRUST_FORWARDED_FOR`) the last `X-Forwarded-For` entry, the one that
/// proxy appended; earlier entries are the client's say-so.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    pub fn of(trust_forwarded_for: bool, headers: &HeaderMap, peer: Option<SocketAddr>) -> Self {
        if trust_forwarded_for {
            let last = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last();
            if let Some(forwarded) = last.and_then(|entry| entry.trim().parse::<IpAddr>().ok()) {
                return Self(Some(forwarded));
            }
        }
        Self(peer.map(|peer| peer.ip()))
    }
}

impl<S> FromRequestParts<S> for ClientAddress
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        Ok(Self::of(
            app.config.trust_forwarded_for,
            &parts.headers,
            peer,
        ))
    }
}

/// What the request presented in its `Authorization` header.
#[derive(Clone)]
pub enum Credential {
    None,
    Bearer(String),
    /// A header that is not `Bearer <token>`.
    Malformed,
}

impl Credential {
    pub fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Self::None;
        };
        let Ok(value) = value.to_str() else {
            return Self::Malformed;
        };
        Self::of_authorization(value)
    }

    /// The credential in the value of an `Authorization` header (or what
    /// stands for one: a WebSocket's `connection_init` payload).
    pub fn of_authorization(value: &str) -> Self {
        match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Self::Bearer(token.trim().to_owned())
            }
            _ => Self::Malformed,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Credential {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "Credential::None",
            Self::Bearer(_) => "Credential::Bearer([redacted])",
            Self::Malformed => "Credential::Malformed",
        })
    }
}
