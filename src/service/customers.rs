//! Customers: list, read, create (with its guest agent), update and soft-delete.

use async_graphql::Enum;
use chrono::{DateTime, Datelike, Utc};
use diesel_async::AsyncConnection;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

use super::events::{self, EventType, Resource};
use super::pagination::{Page, PageRequest};
use super::revoking;
use super::validate;
use super::{now_micros, retrying};
use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::db::models::access_key;
use crate::db::models::agent::{self, AgentRow, NewAgent};
use crate::db::models::customer::{
    self, CustomerChanges, CustomerRow, CustomerSelection, NewCustomer,
};
use crate::db::models::session;
use crate::error::{AppError, AppResult};

pub const MAX_PERMISSION_IDS: usize = 64;

/// HTTP method used to deliver a customer's webhook events.
// The one definition of the methods: GraphQL shows this enum as it is; the
// database and REST (`rest::customers`) hold the strum names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// HTTP GET.
    Get,
    /// HTTP POST.
    Post,
    /// HTTP PUT.
    Put,
    /// HTTP DELETE.
    Delete,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The method a customer row stores; text naming none of ours reads as none.
    pub fn of(row: &CustomerRow) -> Option<Self> {
        row.webhook_method.as_deref()?.parse().ok()
    }
}

/// Everything needed to create a customer. `password` is write-only.
#[derive(Clone, Default)]
pub struct NewCustomerInput {
    pub username: String,
    pub password: String,
    pub name: String,
    pub detail: String,
    pub webhook_method: Option<WebhookMethod>,
    pub webhook_uri: String,
    pub line_secret: String,
    pub line_token: String,
    pub permission_ids: Vec<Uuid>,
}

impl std::fmt::Debug for NewCustomerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCustomerInput")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl NewCustomerInput {
    fn validate(&self) -> AppResult<()> {
        validate::username(&self.username)?;
        validate::password(&self.password)?;
        validate::max_chars("name", &self.name, 255)?;
        validate::max_chars("detail", &self.detail, 4096)?;
        validate::webhook_uri(&self.webhook_uri)?;
        validate_line_info(&self.line_secret, &self.line_token)?;
        validate_permission_ids(&self.permission_ids)
    }
}

fn validate_line_info(secret: &str, token: &str) -> AppResult<()> {
    validate::max_chars("lineSecret", secret, 1023)?;
    validate::max_chars("lineToken", token, 1023)
}

fn validate_permission_ids(ids: &[Uuid]) -> AppResult<()> {
    if ids.len() > MAX_PERMISSION_IDS {
        return Err(AppError::bad_input(
            "permissionIds",
            format!("`permissionIds` may hold at most {MAX_PERMISSION_IDS} entries"),
        ));
    }
    Ok(())
}

/// The ids in their first order, each once.
fn distinct(ids: &[Uuid]) -> Vec<Option<Uuid>> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .map(Some)
        .collect()
}

/// Where a customer is in its lifecycle; follows from its timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum CustomerStatus {
    /// Live, and its agents and access keys authenticate.
    Active,
    /// Live, but none of its agents and access keys authenticate until a
    /// super admin recovers it (`tmFreeze` set).
    Frozen,
    /// Soft-deleted (`tmDelete` set); restorable for a while.
    Deleted,
}

impl CustomerStatus {
    pub fn of(row: &CustomerRow) -> Self {
        if row.is_deleted() {
            Self::Deleted
        } else if row.is_frozen() {
            Self::Frozen
        } else {
            Self::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which customers to list. Everything unset: every live customer.
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    /// Case-insensitive substring of the username or the name.
    pub search: Option<String>,
    /// Only customers in this state; unset, every live (not deleted) one.
    pub status: Option<CustomerStatus>,
    /// Only customers created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only customers created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

pub const MAX_SEARCH_CHARS: usize = 255;

impl CustomerFilter {
    fn selection(&self) -> AppResult<CustomerSelection> {
        let pattern = match self.search.as_deref() {
            Some(search) if !search.is_empty() => {
                validate::max_chars("search", search, MAX_SEARCH_CHARS)?;
                Some(format!("%{}%", escape_like(search)))
            }
            _ => None,
        };
        for (field, time) in [
            ("createdAfter", self.created_after),
            ("createdBefore", self.created_before),
        ] {
            if time.is_some_and(|t| !(1..=9999).contains(&t.year())) {
                return Err(AppError::bad_input(
                    field,
                    format!("`{field}` must be within the years 1 to 9999"),
                ));
            }
        }
        Ok(CustomerSelection {
            deleted: self.status == Some(CustomerStatus::Deleted),
            frozen: match self.status {
                Some(CustomerStatus::Active) => Some(false),
                Some(CustomerStatus::Frozen) => Some(true),
                _ => None,
            },
            pattern,
            created_from: self.created_after,
            created_before: self.created_before,
        })
    }
}

/// `text` as a `LIKE` pattern that matches exactly it (`\` is the escape).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The orders customers can be listed in: those the keyset indexes serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub enum CustomerOrder {
    /// Newest first (by `tmCreate`, then id).
    #[default]
    TmCreateDesc,
    /// Oldest first (by `tmCreate`, then id).
    TmCreateAsc,
}

/// Customers matching `filter`, in `order`. Super admins only.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &CustomerFilter,
    order: CustomerOrder,
    request: PageRequest,
) -> AppResult<Page<CustomerRow>> {
    principal.require_super_admin()?;
    let selection = filter.selection()?;
    let window = match order {
        CustomerOrder::TmCreateDesc => request.window(),
        CustomerOrder::TmCreateAsc => request.window().reversed(),
    };
    let rows = customer::page(&mut *state.conn().await?, &selection, window).await?;
    Ok(Page::from_overfetched(&request, rows))
}

/// How many customers match `filter`. Super admins only. The count of all
/// live customers is shared by concurrent callers (and between replicas).
pub async fn count(
    state: &AppState,
    principal: &Principal,
    filter: &CustomerFilter,
) -> AppResult<i64> {
    principal.require_super_admin()?;
    let selection = filter.selection()?;
    if !selection.is_everything_live() {
        return Ok(customer::count(&mut *state.conn().await?, &selection).await?);
    }
    state
        .customer_count
        .get(&state.credentials, || async {
            Ok(customer::count(&mut *state.conn().await?, &selection).await?)
        })
        .await
}

/// One customer: super admins see any, deleted ones included; a customer's
/// own admins and managers see theirs.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> AppResult<Option<CustomerRow>> {
    principal.require_customer_reader(id)?;
    let found = customer::find(&mut *state.conn().await?, id).await?;
    Ok(found.filter(|row| principal.is_super_admin() || !row.is_deleted()))
}

/// Creates a customer and its guest agent in one transaction. Super admins only.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: NewCustomerInput,
) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    input.validate()?;
    let permission_ids = distinct(&input.permission_ids);

    // Hash before taking a connection: the slow part must not hold one.
    let password_hash = state.hasher.hash(&input.password).await?;
    let (customer, guest) = retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let customer = customer::insert(
                conn,
                &NewCustomer {
                    id: Uuid::now_v7(),
                    username: &input.username,
                    name: &input.name,
                    detail: &input.detail,
                    webhook_method: input.webhook_method.map(WebhookMethod::as_str),
                    webhook_uri: &input.webhook_uri,
                    line_secret: &input.line_secret,
                    line_token: &input.line_token,
                    permission_ids: permission_ids.clone(),
                    is_platform: false,
                },
            )
            .await?;
            let guest = insert_guest_agent(
                conn,
                &customer,
                &password_hash,
                Permission::CustomerAdmin.bit(),
            )
            .await?;
            let actor = Some(principal);
            events::append(
                conn,
                actor,
                EventType::CustomerCreated,
                Resource::Customer(&customer),
            )
            .await?;
            events::append(
                conn,
                actor,
                EventType::AgentCreated,
                Resource::Agent(&guest),
            )
            .await?;
            Ok((customer, guest))
        })
        .await
    })
    .await?;
    state.customer_count.invalidate();
    tracing::info!(customer_id = %customer.id, guest_agent_id = %guest.id, "created customer");
    Ok(customer)
}

pub(crate) async fn insert_guest_agent(
    conn: &mut diesel_async::AsyncPgConnection,
    customer: &CustomerRow,
    password_hash: &str,
    permission: i32,
) -> AppResult<AgentRow> {
    Ok(agent::insert(
        conn,
        &NewAgent {
            id: Uuid::now_v7(),
            customer_id: customer.id,
            username: &customer.username,
            password_hash,
            name: "guest",
            detail: "",
            permission,
            is_guest: true,
        },
    )
    .await?)
}

/// Soft-deletes a customer with its agents and access keys, and revokes its
/// agents' login sessions, in one transaction that holds the customer's row
/// lock (as `access_keys::create` does). Deleting a deleted customer returns
/// it unchanged. Super admins only; the platform's own customer cannot be deleted.
pub async fn delete(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    let (row, newly_deleted) = revoking(state, &format!("customers:{id}"), async {
        let (row, newly_deleted) = retrying(|| async {
            let mut conn = state.conn().await?;
            conn.transaction::<_, AppError, _>(async |conn| {
                let row = customer::find_for_update(conn, id)
                    .await?
                    .ok_or(AppError::NotFound("customer"))?;
                if row.is_platform {
                    return Err(AppError::Forbidden);
                }
                if row.is_deleted() {
                    return Ok((row, false));
                }
                let now = now_micros();
                session::revoke_all_of_customer(conn, id, now).await?;
                agent::mark_deleted_of_customer(conn, id, now).await?;
                access_key::mark_deleted_of_customer(conn, id, now).await?;
                let row = customer::mark_deleted(conn, id, now).await?;
                let event = EventType::CustomerDeleted;
                events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
                Ok((row, true))
            })
            .await
        })
        .await?;
        Ok(((row, newly_deleted), newly_deleted))
    })
    .await?;
    if newly_deleted {
        state.customer_count.invalidate();
        tracing::info!(customer_id = %row.id, "deleted customer");
    }
    Ok(row)
}

/// Freezes a customer: its agents and access keys stop authenticating, on
/// every server, before this answers; nothing is deleted, and its login
/// tokens work again once it is recovered (if they have not expired). Takes
/// the customer's row lock, so an update racing the freeze either lands
/// first or sees the customer frozen. Freezing a frozen customer returns
/// it unchanged; a deleted one is NOT_FOUND. Super admins only; the
/// platform's own customer cannot be frozen.
pub async fn freeze(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    let (row, newly_frozen) = revoking(state, &format!("customers:{id}"), async {
        let (row, newly_frozen) = retrying(|| async {
            let mut conn = state.conn().await?;
            conn.transaction::<_, AppError, _>(async |conn| {
                let row = customer::find_for_update(conn, id)
                    .await?
                    .filter(|row| !row.is_deleted())
                    .ok_or(AppError::NotFound("customer"))?;
                if row.is_platform {
                    return Err(AppError::Forbidden);
                }
                if row.is_frozen() {
                    return Ok((row, false));
                }
                let tm_update = next_tm_update(row.tm_update);
                let changes = CustomerChanges {
                    tm_freeze: Some(Some(tm_update)),
                    tm_update: Some(tm_update),
                    ..Default::default()
                };
                let row = customer::update(conn, id, &changes).await?;
                let event = EventType::CustomerFrozen;
                events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
                Ok((row, true))
            })
            .await
        })
        .await?;
        Ok(((row, newly_frozen), newly_frozen))
    })
    .await?;
    if newly_frozen {
        tracing::info!(customer_id = %id, "froze customer");
    }
    Ok(row)
}

/// Brings a customer back: unfreezes it, and restores it if it was deleted
/// within `CUSTOMER_RESTORE_DAYS`, with the agents and access keys deleted
/// together with it (their login sessions stay revoked). A restore whose
/// username, or one of whose agents' usernames, has been taken since is
/// CONFLICT, and changes nothing. Recovering an active customer returns it
/// unchanged. Super admins only.
pub async fn recover(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<CustomerRow> {
    principal.require_super_admin()?;
    let retention = chrono::Duration::days(i64::from(state.config.customer_restore_days));
    let (row, restored, changed) = retrying(|| async {
        let mut conn = state.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let mut row = customer::find_for_update(conn, id)
                .await?
                .ok_or(AppError::NotFound("customer"))?;
            let restored = row.is_deleted();
            let changed = restored || row.is_frozen();
            if let Some(deleted_at) = row.tm_delete {
                if deleted_at + retention < now_micros() {
                    return Err(AppError::Conflict {
                        field: None,
                        message: format!(
                            "the customer was deleted more than {} days ago and can no longer \
                             be restored",
                            retention.num_days()
                        )
                        .into(),
                    });
                }
                row = customer::restore(conn, &row, next_tm_update(row.tm_update))
                    .await
                    .map_err(|error| match AppError::from(error) {
                        AppError::Conflict { field, .. } => AppError::Conflict {
                            field,
                            message: "the customer's username, or one of its agents', is now \
                                      taken by a live customer or agent"
                                .into(),
                        },
                        other => other,
                    })?;
            }
            if row.is_frozen() {
                let changes = CustomerChanges {
                    tm_freeze: Some(None),
                    tm_update: Some(next_tm_update(row.tm_update)),
                    ..Default::default()
                };
                row = customer::update(conn, id, &changes).await?;
            }
            if changed {
                let event = EventType::CustomerRecovered;
                events::append(conn, Some(principal), event, Resource::Customer(&row)).await?;
            }
            Ok((row, restored, changed))
        })
        .await
    })
    .await?;
    if restored {
        state.customer_count.invalidate();
    }
    if changed {
        tracing::info!(customer_id = %id, restored, "recovered customer");
    }
    Ok(row)
}

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
    super::auth::set_agent_password(state, principal, guest.id, password).await?;
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
fn next_tm_update(previous: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let now = now_micros();
    match previous {
        Some(previous) if previous >= now => previous + chrono::Duration::microseconds(1),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_wildcards_match_themselves() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
        let selection = CustomerFilter {
            search: Some("a_b".into()),
            ..Default::default()
        }
        .selection()
        .unwrap();
        assert_eq!(selection.pattern.as_deref(), Some("%a\\_b%"));
    }

    #[test]
    fn an_empty_filter_is_every_live_customer() {
        assert!(
            CustomerFilter::default()
                .selection()
                .unwrap()
                .is_everything_live()
        );
        let empty_search = CustomerFilter {
            search: Some(String::new()),
            ..Default::default()
        };
        assert!(empty_search.selection().unwrap().is_everything_live());
        let frozen = CustomerFilter {
            status: Some(CustomerStatus::Frozen),
            ..Default::default()
        };
        assert!(!frozen.selection().unwrap().is_everything_live());
    }

    #[test]
    fn times_postgresql_cannot_compare_are_bad_input() {
        let far = DateTime::<Utc>::MAX_UTC;
        let filter = CustomerFilter {
            created_before: Some(far),
            ..Default::default()
        };
        assert_eq!(
            filter.selection().unwrap_err().field(),
            Some("createdBefore")
        );
    }
}
