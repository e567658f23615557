//! Page requests over the customers' listing order, and their limits.

use crate::db::models::{PageKey, PageWindow};
use crate::error::{AppError, AppResult};

/// The page size of a GraphQL listing given neither `first` nor `last`.
pub const GRAPHQL_DEFAULT_PAGE_SIZE: i64 = 20;
/// The page size of a REST listing given no `page_size`: the original API's,
/// which its clients rely on, hence not GraphQL's.
pub const REST_DEFAULT_PAGE_SIZE: i32 = 10;
/// The largest page either surface serves.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A validated request for one page, Relay-style: `first` rows after `after`,
/// or `last` rows before `before`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub after: Option<PageKey>,
    pub before: Option<PageKey>,
    pub size: i64,
    /// Whether the page is taken from the newest end of the window (`first`)
    /// or from its oldest end (`last`).
    pub from_newest: bool,
}

impl PageRequest {
    /// The rows this page needs: one more than asked, to tell whether more
    /// exist beyond the page.
    pub fn window(&self) -> PageWindow {
        PageWindow {
            after: self.after,
            before: self.before,
            from_newest: self.from_newest,
            limit: self.size + 1,
        }
    }

    pub fn new(
        first: Option<i32>,
        after: Option<PageKey>,
        last: Option<i32>,
        before: Option<PageKey>,
    ) -> AppResult<Self> {
        let checked = |field: &'static str, n: i32| {
            let n = i64::from(n);
            if (0..=MAX_PAGE_SIZE).contains(&n) {
                Ok(n)
            } else {
                Err(AppError::bad_input(
                    field,
                    format!("`{field}` must be between 0 and {MAX_PAGE_SIZE}"),
                ))
            }
        };
        let (size, from_newest) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "last",
                    "pass either `first` or `last`, not both",
                ));
            }
            (Some(n), None) => (checked("first", n)?, true),
            (None, Some(n)) => (checked("last", n)?, false),
            (None, None) => (GRAPHQL_DEFAULT_PAGE_SIZE, true),
        };
        Ok(Self {
            after,
            before,
            size,
            from_newest,
        })
    }
}

/// One page, in listing order.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// Builds the page from rows read with a limit of `size + 1`, in reading
    /// order: the extra row only tells that more exist beyond the page.
    pub fn from_overfetched(request: &PageRequest, mut rows: Vec<T>) -> Self {
        let size = usize::try_from(request.size).unwrap_or(0);
        let more_beyond = rows.len() > size;
        rows.truncate(size);
        if request.from_newest {
            // Whatever precedes the `after` cursor (at least its own row) is an
            // earlier page; that is known without asking the database.
            Page {
                items: rows,
                has_next_page: more_beyond,
                has_previous_page: request.after.is_some(),
            }
        } else {
            rows.reverse();
            Page {
                items: rows,
                has_next_page: request.before.is_some(),
                has_previous_page: more_beyond,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(
            PageRequest::new(None, None, None, None).unwrap().size,
            GRAPHQL_DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            PageRequest::new(Some(100), None, None, None).unwrap().size,
            100
        );
        for (first, last) in [
            (Some(101), None),
            (Some(-1), None),
            (None, Some(101)),
            (Some(1), Some(1)),
        ] {
            assert!(
                PageRequest::new(first, None, last, None).is_err(),
                "{first:?} {last:?}"
            );
        }
    }

    #[test]
    fn backward_pages_come_back_in_listing_order() {
        let request = PageRequest::new(None, None, Some(2), None).unwrap();
        let page = Page::from_overfetched(&request, vec![1, 2, 3]);
        assert_eq!(page.items, vec![2, 1]);
        assert!(page.has_previous_page);
        assert!(!page.has_next_page);
    }
}
