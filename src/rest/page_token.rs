//! `page_token`s of `GET /v1.0/customers`.
//!
//! The original API's token was the `tm_create` of a page's last item, and the
//! next page held the rows created strictly before it: rows sharing that
//! `tm_create` but not on the page were skipped. Our tokens start with the
//! same timestamp, so clients that read it still can, followed by `_` and the
//! last item's id, the tie-break of the listing order (`tm_create` desc, `id`
//! desc): `2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b`.
//! A bare timestamp, as older clients may hold, keeps its old meaning.

use uuid::Uuid;

use crate::db::models::PageKey;
use crate::error::{AppError, AppResult};
use crate::resources::time;

const SEPARATOR: char = '_';

/// The token of the page that follows the row with `key`.
pub fn encode(key: PageKey) -> String {
    format!("{}{SEPARATOR}{}", time::format(key.tm_create), key.id)
}

/// Where the page after `token` starts.
pub fn decode(token: &str) -> AppResult<PageKey> {
    let invalid = || {
        AppError::bad_input(
            "page_token",
            "`page_token` must be the `next_page_token` of an earlier page, \
             or a timestamp `YYYY-MM-DD HH:MM:SS.ffffff`",
        )
    };
    let (stamp, id) = match token.split_once(SEPARATOR) {
        Some((stamp, id)) => (stamp, Uuid::try_parse(id).map_err(|_| invalid())?),
        // No row sorts below the nil id, so "after (t, nil)" is exactly the
        // old "tm_create < t".
        None => (token, Uuid::nil()),
    };
    let tm_create = time::parse(stamp).ok_or_else(invalid)?;
    Ok(PageKey { tm_create, id })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn tokens_start_with_the_timestamp_and_round_trip() {
        let key = PageKey {
            tm_create: DateTime::from_timestamp_micros(1_643_673_600_000_001).unwrap(),
            id: Uuid::try_parse("5e4a0680-804e-11ec-8477-2fea5968d85b").unwrap(),
        };
        let token = encode(key);
        assert_eq!(
            token,
            "2022-02-01 00:00:00.000001_5e4a0680-804e-11ec-8477-2fea5968d85b"
        );
        assert_eq!(decode(&token).unwrap(), key);
    }

    #[test]
    fn bare_timestamps_mean_created_strictly_before() {
        let key = decode("2022-02-01 00:00:00.000000").unwrap();
        assert_eq!(key.id, Uuid::nil());
        assert_eq!(
            key.tm_create,
            DateTime::from_timestamp(1_643_673_600, 0).unwrap()
        );
    }

    #[test]
    fn anything_else_is_bad_input_on_page_token() {
        for bad in [
            "",
            "_",
            "yesterday",
            "2022-02-01 00:00:00.000000_",
            "2022-02-01 00:00:00.000000_not-a-uuid",
            "_5e4a0680-804e-11ec-8477-2fea5968d85b",
            "2022-02-01T00:00:00Z",
        ] {
            let error = decode(bad).unwrap_err();
            assert_eq!(error.field(), Some("page_token"), "{bad}");
        }
    }
}
