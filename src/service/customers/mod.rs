//! Customers: read, create (with its guest agent) and soft-delete them, and
//! the types every customer operation shares. Listing and search are in
//! `listing`, freezing and recovering in `lifecycle`, changes to a live
//! customer in `changes`.

mod changes;
mod lifecycle;
mod listing;

use async_graphql::Enum;
use diesel_async::AsyncConnection;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

pub use self::changes::{
    CustomerUpdate, rotate_webhook_secret, set_password, update, update_line_info,
    update_permission_ids,
};
pub use self::lifecycle::{freeze, recover};
pub use self::listing::{CustomerFilter, CustomerOrder, MAX_SEARCH_CHARS, count, list};
use super::events::{self, EventType, Resource};
use super::revoking;
use super::validate;
use super::{now_micros, retrying};
use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::db::coalesce::{Coalescer, PointRead};
use crate::db::models::access_key;
use crate::db::models::agent::{self, AgentRow, NewAgent};
use crate::db::models::customer::{self, CustomerRow, NewCustomer};
use crate::db::models::session;
use crate::db::replicas::Freshness;
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

/// One customer: super admins see any, deleted ones included; a customer's
/// own admins and managers see theirs.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> AppResult<Option<CustomerRow>> {
    Ok(get_with_guest(state, principal, id)
        .await?
        .map(|(row, _)| row))
}

/// `get`, with the customer's guest agent. Concurrent reads of customers
/// by id share statements (`db::coalesce`).
pub async fn get_with_guest(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> AppResult<Option<(CustomerRow, Option<AgentRow>)>> {
    principal.require_customer_reader(id)?;
    let freshness = state.replicas.freshness(Some(principal.credential));
    let found = Coalescer::<CustomerById>::read(state, freshness, id).await?;
    Ok(found.filter(|(row, _)| visible(principal, row)))
}

/// Customers (with their guest agents) by id, read together.
pub struct CustomerById;

impl PointRead for CustomerById {
    type Source = AppState;
    type Key = Uuid;
    type Row = (CustomerRow, Option<AgentRow>);

    fn coalescer(state: &AppState) -> &Coalescer<Self> {
        &state.customer_reads
    }

    async fn read_many(
        state: &AppState,
        freshness: Freshness,
        ids: Vec<Uuid>,
    ) -> AppResult<Vec<(Uuid, Self::Row)>> {
        let rows = state
            .read_as_fresh_as(freshness, |mut conn| {
                let ids = &ids;
                async move { Ok(customer::find_many_with_guest(&mut conn, ids).await?) }
            })
            .await?;
        Ok(rows.into_iter().map(|row| (row.0.id, row)).collect())
    }
}

/// Deleted customers are for super admins' eyes only.
fn visible(principal: &Principal, row: &CustomerRow) -> bool {
    principal.is_super_admin() || !row.is_deleted()
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
