//! Per-request data: the caller's credential, resolved into a `Principal`
//! at most once per HTTP request (shared by every operation of a batch) and
//! only if a field needs it, and fresh loaders.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use tokio::sync::OnceCell;

use super::loaders::{GuestAgentLoader, GuestAgents};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::extract::{ClientAddress, Credential};
use crate::service;

/// The credential of one HTTP request and what it resolved to. A refused
/// credential is remembered too, so that a batch of operations with a bad
/// credential costs one lookup, not one per operation.
pub struct RequestAuth {
    credential: Credential,
    principal: OnceCell<Result<Principal, Refused>>,
}

/// The credential was checked and is not valid.
#[derive(Clone, Copy, Debug)]
struct Refused;

impl RequestAuth {
    pub fn new(credential: Credential) -> Arc<Self> {
        Arc::new(Self {
            credential,
            principal: OnceCell::new(),
        })
    }

    /// The caller, if a field has resolved the credential and it was valid.
    pub fn resolved(&self) -> Option<&Principal> {
        self.principal.get()?.as_ref().ok()
    }
}

/// Attaches what every operation of one request needs.
pub fn per_request_data(
    request: async_graphql::Request,
    state: &AppState,
    auth: Arc<RequestAuth>,
    client: ClientAddress,
) -> async_graphql::Request {
    let loader: GuestAgents = DataLoader::with_cache(
        GuestAgentLoader::new(state.clone(), auth.clone()),
        crate::app::spawn_for_request,
        HashMapCache::default(),
    );
    request.data(auth).data(loader).data(client)
}

pub fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// Marks a request whose operation is a mutation: each of its fields checks
/// the credential again (warm, that costs no SQL), so that a credential
/// revoked while a long mutation runs stops the fields that come after.
pub struct MutationOperation;

/// The authenticated caller, or `UNAUTHENTICATED`. In a mutation, the
/// credential is checked again on every call (see `MutationOperation`).
pub async fn principal<'a>(ctx: &Context<'a>) -> AppResult<&'a Principal> {
    let auth = ctx
        .data::<Arc<RequestAuth>>()
        .map_err(|_| AppError::Unauthenticated)?;
    let principal = auth.principal(state(ctx)).await?;
    if ctx.data_opt::<MutationOperation>().is_some()
        && let Credential::Bearer(token) = &auth.credential
    {
        // Still valid now? The answer is cached per process and dropped on
        // every revocation, so this is a lookup, not a query, when warm.
        let now = service::auth::resolve_credential(state(ctx), token).await?;
        if now.credential != principal.credential {
            return Err(AppError::Unauthenticated);
        }
    }
    Ok(principal)
}

impl RequestAuth {
    /// The caller, resolved once per HTTP request, or `UNAUTHENTICATED`.
    pub async fn principal(&self, state: &AppState) -> AppResult<&Principal> {
        let token = match &self.credential {
            Credential::Bearer(token) => token,
            Credential::None | Credential::Malformed => return Err(AppError::Unauthenticated),
        };
        let resolved = self
            .principal
            .get_or_try_init(|| async {
                match service::auth::resolve_credential(state, token).await {
                    Ok(principal) => Ok(Ok(principal)),
                    Err(AppError::Unauthenticated) => Ok(Err(Refused)),
                    // Not a verdict on the credential (the database is away): not remembered.
                    Err(other) => Err(other),
                }
            })
            .await?;
        resolved
            .as_ref()
            .map_err(|Refused| AppError::Unauthenticated)
    }
}

/// The bearer credential the operation presented, for work that outlives
/// the operation's context and must check the credential again later
/// (subscriptions).
pub fn bearer<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    match &ctx.data::<Arc<RequestAuth>>().ok()?.credential {
        Credential::Bearer(token) => Some(token),
        Credential::None | Credential::Malformed => None,
    }
}
