//! Changes to a live customer: its profile, LINE info, permission ids,
//! webhook secret and password, each in one transaction under the
//! customer's row lock.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{WebhookMethod, distinct, validate_line_info, validate_permission_ids};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::models::agent;
use crate::db::models::customer::{self, CustomerChanges, CustomerRow};
use crate::error::{AppError, AppResult};
use crate::service::events::{self, EventType, Resource};
use crate::service::{now_micros, retrying, validate};

/// Changes to a customer's profile. `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct CustomerUpdate {
    pub name: Option<String>,
    pub detail: Option<String>,
    /// `Some(None)` removes the method.
    pub webhook_method: Option<Option<WebhookMethod>>,
    pub webhook_uri: Option<String>,
    /// `Some(expected)`: change the customer only if its `tm_update` is
    /// still `expected` (`Some(None)`: only if it was never changed).
    pub expected_tm_update: Option<Option<DateTime<Utc>>>,
}

impl CustomerUpdate {
    fn validate(&self) -> AppResult<()> {
        if let Some(name) = &self.name {
            validate::max_chars("name", name, 255)?;
        }
        if let Some(detail) = &self.detail {
            validate::max_chars("detail", detail, 4096)?;
        }
        if let Some(uri) = &self.webhook_uri {
            validate::webhook_uri(uri)?;
        }
        Ok(())
    }
}

/// Updates a customer's name, detail and webhook. `id` `None` means the
/// caller's own customer. Super admins, and the customer's own admins
/// (access keys included).
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: Option<Uuid>,
    update: CustomerUpdate,
) -> AppResult<CustomerRow> {
    let id = id.unwrap_or(principal.customer_id);
    principal.require_customer_admin(id)?;
    update.validate()?;
    let changes = CustomerChanges {
        name: update.name.as_deref(),
        detail: update.detail.as_deref(),
        webhook_method: update.webhook_method.map(|m| m.map(WebhookMethod::as_str)),
        webhook_uri: update.webhook_uri.as_deref(),
        ..Default::default()
    };
    let row = apply(state, principal, id, update.expected_tm_update, changes).await?;
    tracing::info!(customer_id = %id, "updated customer");
    Ok(row)
}

/// Replaces a customer's LINE channel secret and token. Super admins, and
/// the customer's own admins.
pub async fn update_line_info(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    line_secret: &str,
    line_token: &str,
) -> AppResult<CustomerRow> {
    principal.require_customer_admin(id)?;
    validate_line_info(line_secret, line_token)?;
    let changes = CustomerChanges {
        line_secret: Some(line_secret),
        line_token: Some(line_token),
        ..Default::default()
    };
    let row = apply(state, principal, id, None, changes).await?;
    tracing::info!(customer_id = %id, "updated customer's LINE info");
    Ok(row)
}

/// Replaces a customer's permission ids (duplicates dropped). Super admins only.
pub async fn update_permission_ids(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    permission_ids: &[Uuid],
) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    validate_permission_ids(permission_ids)?;
    let changes = CustomerChanges {
        permission_ids: Some(distinct(permission_ids)),
        ..Default::default()
    };
    let row = apply(state, principal, id, None, changes).await?;
    tracing::info!(customer_id = %id, "updated customer's permission ids");
    Ok(row)
}

/// A new webhook secret: 256 random bits, hex-encoded.
fn new_webhook_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces a customer's webhook secret; deliveries from then on are signed
/// with the new one. Super admins, and the customer's own admins.
pub async fn rotate_webhook_secret(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> AppResult<CustomerRow> {
    principal.require_customer_admin(id)?;
    let secret = new_webhook_secret();
    let changes = CustomerChanges {
        webhook_secret: Some(&secret),
        ..Default::default()
    };
    let row = apply(state, principal, id, None, changes).await?;
    tracing::info!(customer_id = %id, "rotated customer's webhook secret");
    Ok(row)
}

/// Sets the password of a customer's guest agent (the customer's own
/// login) with `auth::set_agent_password`, so its rules hold here too: super
/// admins or the customer's admin agents (not access keys), and every login
/// token of the guest agent is revoked.
pub async fn set_password(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    password: &str,
) -> AppResult<CustomerRow> {
    // Checked first so that a refusal does not tell whether the customer exists.
    principal.require_customer_admin(id)?;
    let (row, guest) = {
        let mut conn = state.conn().await?;
        let row = customer::find(&mut conn, id)
            .await?
            .filter(|row| !row.is_deleted())
            .ok_or(AppError::NotFound("customer"))?;
        let guest = agent::guests_of(&mut conn, &[id])
            .await?
            .into_iter()
            .find(|agent| agent.tm_delete.is_none())
            .ok_or(AppError::NotFound("customer"))?;
        (row, guest)
    };
    crate::service::auth::set_agent_password(state, principal, guest.id, password).await?;
    Ok(row)
}

/// Applies `changes` in one transaction that holds the customer's row lock,
/// the lock `delete` takes: an update queued behind a delete then sees the
/// customer deleted and answers NOT_FOUND rather than writing to it, and
/// the `expected` check cannot pass for two writers at once.
async fn apply(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    expected: Option<Option<DateTime<Utc>>>,
    changes: CustomerChanges<'_>,
) -> AppResult<CustomerRow> {
    retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let row = customer::find_for_update(conn, id)
                .await?
                .filter(|row| !row.is_deleted())
                .ok_or(AppError::NotFound("customer"))?;
            // The caller's credential was checked before the lock: a
            // customer frozen since then no longer lets its own people in.
            if row.is_frozen() && !principal.is_super_admin() {
                return Err(AppError::Unauthenticated);
            }
            if expected.is_some_and(|expected| expected != row.tm_update) {
                return Err(AppError::Conflict {
                    field: Some("expectedTmUpdate"),
                    message: "the customer was changed after `expectedTmUpdate`: read it again \
                              and retry"
                        .into(),
                });
            }
            let changes = CustomerChanges {
                tm_update: Some(next_tm_update(row.tm_update)),
                ..changes.clone()
            };
            let row = customer::update(conn, id, &changes).await?;
            let event = EventType::CustomerUpdated;
            events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
            Ok(row)
        })
        .await
    })
    .await
}

/// Now, but always after `previous`: `tm_update` is the version that
/// `expectedTmUpdate` compares, so two changes within one microsecond must
/// still differ.
pub(super) fn next_tm_update(previous: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let now = now_micros();
    match previous {
        Some(previous) if previous >= now => previous + chrono::Duration::microseconds(1),
        _ => now,
    }
}
