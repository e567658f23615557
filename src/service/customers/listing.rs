//! Listing customers: which ones (`CustomerFilter`), in which order, and
//! how many.

use async_graphql::Enum;
use chrono::{DateTime, Utc};

use super::CustomerStatus;
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::models::customer::{self, CustomerRow, CustomerSelection};
use crate::error::AppResult;
use crate::service::pagination::{Page, PageRequest};
use crate::service::validate;

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
        validate::time_window(self.created_after, self.created_before)?;
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
    let selection = &selection;
    let rows = state
        .read(Some(principal), |mut conn| async move {
            Ok(customer::page(&mut conn, selection, window).await?)
        })
        .await?;
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
        let selection = &selection;
        return state
            .read(Some(principal), |mut conn| async move {
                Ok(customer::count(&mut conn, selection).await?)
            })
            .await;
    }
    state
        .customer_count
        .get(&state.credentials, || async {
            Ok(customer::count(&mut *state.conn().await?, &selection).await?)
        })
        .await
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
